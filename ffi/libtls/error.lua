-- libtls.error — lua-libtls's error values and argument checks.
--
-- Errors are returned, not thrown: tables with type == libtls.ERROR, op, message,
-- code (-1), whose tostring is lua-error's
--   "<file>:<line>: in <where>: [libtls.ERROR:-1][<op>] Operation failure (<msg>)".
-- Argument mistakes are thrown in lauxhlib's words (no number-to-string
-- coercion; "integer expected").

local E = {}

E.ERROR = setmetatable({ name = "libtls.ERROR", code = -1, message = "Operation failure" },
  { __tostring = function() return "libtls.ERROR" end })

local errmt = {}
errmt.__tostring = function(e)
  return ("%s: in %s: [libtls.ERROR:-1][%s] Operation failure%s"):format(
    e.where, e.func, e.op, e.message and (" (" .. e.message .. ")") or "")
end

-- The first frame outside the libtls face: the caller to blame.
local function caller()
  for level = 3, 20 do
    local info = debug.getinfo(level, "Sln")
    if not info then break end
    if not (info.source or ""):find("/libtls/[%w_]+%.lua$") then return info end
  end
  return {}
end

-- An error value for operation `op`, blaming the code that called the face.
function E.new(op, message)
  local info = caller()
  local func = info.what == "main" and "main chunk"
    or info.name and ("function '" .. info.name .. "'")
    or ("function <%s:%d>"):format(info.short_src or "?", info.linedefined or 0)
  return setmetatable({
    type = E.ERROR, op = op, message = message, code = -1,
    where = ("%s:%d"):format(info.short_src or "?", info.currentline or 0), func = func,
  }, errmt)
end

function E.is(v)
  return getmetatable(v) == errmt
end

local function argerror(n, msg)
  error(("bad argument #%d to '?' (%s)"):format(n, msg), 3)
end

local function typename(v)
  return v == nil and "no value" or type(v)
end

function E.checkstring(v, n)
  if type(v) ~= "string" then argerror(n, "string expected, got " .. typename(v)) end
  return v
end

function E.optstring(v, n)
  if v == nil then return nil end
  return E.checkstring(v, n)
end

function E.checkinteger(v, n)
  if type(v) ~= "number" or v ~= math.floor(v) then
    argerror(n, "integer expected, got " .. (type(v) == "number" and "number" or typename(v)))
  end
  if v == math.huge or v == -math.huge then
    argerror(n, "number has no integer representation")     -- as Lua 5.3's lauxlib
  end
  return v
end

function E.optinteger(v, n, default)
  if v == nil then return default end
  return E.checkinteger(v, n)
end

E.argerror = argerror
return E
