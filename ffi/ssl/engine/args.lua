-- ssl.engine.args — argument checks for the faces, raising with Lua's own
-- wording ("bad argument #2 to 'receive' (invalid receive pattern)") so that
-- programmer mistakes read as they do from a C module.

local args = {}

function args.error(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local function typename(v)
  return v == nil and "no value" or type(v)
end

-- luaL_checklstring: strings, and numbers converted to strings.
function args.string(v, n, fname)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname, typename(v)), 3)
end

function args.optstring(v, n, fname, default)
  if v == nil then return default end
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname, typename(v)), 3)
end

-- luaL_checknumber: numbers, and strings that convert.
function args.number(v, n, fname)
  local x = tonumber(v)
  if x and (type(v) == "number" or type(v) == "string") then return x end
  error(("bad argument #%d to '%s' (number expected, got %s)"):format(n, fname, typename(v)), 3)
end

function args.optnumber(v, n, fname, default)
  if v == nil then return default end
  local x = tonumber(v)
  if x and (type(v) == "number" or type(v) == "string") then return x end
  error(("bad argument #%d to '%s' (number expected, got %s)"):format(n, fname, typename(v)), 3)
end

return args
