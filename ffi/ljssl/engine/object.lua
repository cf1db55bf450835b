-- ljssl.engine.object — userdata objects for faces whose users expect userdata
-- (LuaSec's contexts, connections and certificates are userdata; code that
-- tells a context from a params table by type() depends on it).
--
-- Each object is a proxy sharing its class's metatable, so
-- getmetatable(obj).__index is the plain methods table.  Its state lives in a
-- weak-keyed table and must never refer back to the proxy (no ephemerons in
-- Lua 5.1: a back reference would keep it alive forever); what it owns is freed
-- by ffi.gc on its pointers, not by a __gc that might do I/O.

local ffi = require "ffi"
local args = require "ljssl.engine.args"

local object = {}

-- A class named `kind` ("SSL connection"); tostring gives "kind: 0x..." plus
-- suffix(state) when given.
function object.class(kind, suffix)
  local state = setmetatable({}, { __mode = "k" })
  local methods = {}
  local proto = newproxy(true)
  local mt = getmetatable(proto)
  mt.__index = methods
  mt.__tostring = function(self)
    local st = state[self]
    if not st then return kind .. ": (invalid)" end
    return kind .. ": " .. ("0x%x"):format(st.id) .. (suffix and suffix(st) or "")
  end

  local class = { state = state, methods = methods }

  -- A new object with state `st`, identified by the address of `ptr` (kept as
  -- a number: a formatted string per object cost an idle connection ~80 bytes).
  function class.new(st, ptr)
    st.id = tonumber(ffi.cast("uintptr_t", ptr))
    local obj = newproxy(proto)
    state[obj] = st
    return obj
  end

  -- The state of `obj`; raises a bad-argument error for anything else.
  function class.check(obj, fname)
    local st = state[obj]
    if not st then args.error(1, fname, kind .. " expected, got " .. type(obj)) end
    return st
  end

  return class
end

return object
