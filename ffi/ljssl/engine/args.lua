-- ljssl.engine.args — argument checks for the faces, raising with Lua's own
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

-- luaL_checkinteger with the range of the C type the value goes to: a number
-- (or a string that converts), truncated as LuaSec's casts do; NaN, the
-- infinities and values outside [min, max] raise, where a cast would have
-- made some other number of them (an fd of 2^53 is fd 0).
function args.integer(v, n, fname, min, max)
  local x = tonumber(v)
  if not x or (type(v) ~= "number" and type(v) ~= "string") then
    error(("bad argument #%d to '%s' (number expected, got %s)"):format(n, fname, typename(v)), 3)
  end
  if x ~= x or x == math.huge or x == -math.huge then
    error(("bad argument #%d to '%s' (number has no integer representation)"):format(n, fname), 3)
  end
  x = math.floor(x)
  if (min and x < min) or (max and x > max) then
    error(("bad argument #%d to '%s' (value out of range)"):format(n, fname), 3)
  end
  return x
end

function args.optinteger(v, n, fname, default, min, max)
  if v == nil then return default end
  return args.integer(v, n, fname, min, max)   -- a tail call: error levels stay the caller's
end

args.INT_MIN, args.INT_MAX = -2147483648, 2147483647

return args
