-- iomodules.kit — what every class of the net face is built from: Qt's
-- constants, the class kit (class, instance_of, new_object, add_async, guard),
-- the state table S, handler dispatch (fire), the argument checks that raise
-- in lauxlib's words, and the fd registry through which the loop reaches a
-- socket's object without a closure per socket.
--
-- Objects are plain tables (handlers are plain fields); their state lives in
-- S[obj], outside them, so handler fields cannot clash with it.

local loop = require "iomodules.loop"

local kit = {}

-- Constants (Qt's values) -----------------------------------------------------------------

kit.OPEN_MODES = { NOT_OPEN_MODE = 0, READ_ONLY_MODE = 1, WRITE_ONLY_MODE = 2,
                   READ_WRITE_MODE = 3, APPEND_MODE = 4, TRUNCATE_MODE = 8 }
kit.ERRORS = {
  CONNECTION_REFUSED_ERROR = 0, REMOTE_HOST_CLOSED_ERROR = 1, HOST_NOT_FOUND_ERROR = 2,
  SOCKET_ACCESS_ERROR = 3, SOCKET_RESOURCE_ERROR = 4, SOCKET_TIMEOUT_ERROR = 5,
  DATAGRAM_TOO_LARGE_ERROR = 6, NETWORK_ERROR = 7, ADDRESS_IN_USE_ERROR = 8,
  UNSUPPORTED_SOCKET_OPERATION_ERROR = 10, UNFINISHED_SOCKET_OPERATION_ERROR = 11,
  SSL_HANDSHAKE_FAILED_ERROR = 13, OPERATION_ERROR = 19, SSL_INTERNAL_ERROR = 20,
  SSL_INVALID_USERDATA_ERROR = 21, TEMPORARY_ERROR = 22, UNKNOWN_ERROR = -1,
}
kit.STATES = { UNCONNECTED_STATE = 0, HOST_LOOKUP_STATE = 1, CONNECTING_STATE = 2,
               CONNECTED_STATE = 3, BOUND_STATE = 4, LISTENING_STATE = 5, CLOSING_STATE = 6 }
kit.MODES = { UNENCRYPTED_MODE = 0, SSL_CLIENT_MODE = 1, SSL_SERVER_MODE = 2 }
kit.VERIFY = { VERIFY_NONE = 0, QUERY_PEER = 1, VERIFY_PEER = 2, AUTO_VERIFY_PEER = 3 }

-- Copies constant tables into a class's constants.
function kit.constants(c, ...)
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do c.consts[k] = v end
  end
end

-- Classes ----------------------------------------------------------------------------------
-- A class has methods, read-only properties (getters) and constants; objects
-- are plain tables, so handler fields can be set freely.

local S = setmetatable({}, { __mode = "k" })
kit.S = S

-- Every class's member cache (below), emptied whenever a class changes.
local caches = {}
local function forget_members()
  for i = 1, #caches do
    local cache = caches[i]
    for k in pairs(cache) do cache[k] = nil end
  end
end

function kit.class(name, parent)
  local c = { methods = {}, getters = {}, consts = {}, name = name, parent = parent }
  -- the class and its ancestors, so that instance_of needs no loop (a loop in
  -- every method's check aborted the callers' JIT traces); `mts` holds the
  -- metatables of the class's objects and of its subclasses' (the guard's check)
  c.is_a = { [c] = true }
  c.mts = {}
  if parent then
    for k in pairs(parent.is_a) do c.is_a[k] = true end
    setmetatable(c.methods, { __index = parent.methods, __newindex = function(t, k, v) rawset(t, k, v); forget_members() end })
    setmetatable(c.getters, { __index = parent.getters, __newindex = function(t, k, v) rawset(t, k, v); forget_members() end })
    setmetatable(c.consts, { __index = parent.consts, __newindex = function(t, k, v) rawset(t, k, v); forget_members() end })
  else
    local changed = { __newindex = function(t, k, v) rawset(t, k, v); forget_members() end }
    setmetatable(c.methods, changed)
    setmetatable(c.getters, changed)
    setmetatable(c.consts, changed)
  end
  local getters, methods, consts = c.getters, c.methods, c.consts
  -- members[k]: a method or constant already looked up through the class
  -- chain (never a getter's name: getters come first), so that a method
  -- call costs one lookup instead of a walk up to three levels of getters,
  -- methods and constants.
  local members = {}
  caches[#caches + 1] = members
  c.mt = {
    __index = function(obj, k)
      local m = members[k]
      if m ~= nil then return m end
      local g = getters[k]
      if g then return g(obj) end
      m = methods[k]
      if m == nil then m = consts[k] end
      if m ~= nil then members[k] = m end
      return m
    end,
    __tostring = function(obj) return ("net.%s: %s"):format(name, rawget(obj, "__id")) end,
  }
  c.mt.__class = c
  for k in pairs(c.is_a) do k.mts[c.mt] = true end
  forget_members()
  -- the public class table: constants and new()
  c.public = setmetatable({}, { __index = function(_, k) return consts[k] or methods[k] end })
  return c
end

-- True when v is an object of class c or of a class derived from it.
function kit.instance_of(v, c)
  local mt = type(v) == "table" and getmetatable(v)
  local oc = type(mt) == "table" and rawget(mt, "__class")
  return oc and oc.is_a[c] or false
end

function kit.new_object(c)
  local obj = setmetatable({}, c.mt)
  rawset(obj, "__id", tostring({}):match("0x%x+"))
  return obj
end

-- Every sync method gets an _async twin: the result goes to cb(obj, result,
-- error) on a later loop tick, as the Pharos playback thread would see it.
function kit.add_async(c, names)
  for _, name in ipairs(names) do
    c.methods[name .. "_async"] = function(obj, ...)
      local args = { n = select("#", ...), ... }
      local cb = args[args.n]
      args.n = args.n - 1
      local ok, result = pcall(c.methods[name], obj, unpack(args, 1, args.n))
      if type(cb) == "function" then
        loop.defer(cb, obj, ok and result or nil, (not ok) and tostring(result) or nil)
      end
    end
  end
end

local function typename(v) return v == nil and "no value" or type(v) end
kit.typename = typename

-- Every public method checks its object first: obj.method() instead of
-- obj:method(), or another class's object, raises a clear error instead of
-- failing inside.  Called once a class's methods (and _async twins) are all
-- defined.
-- A method that is not vararg gets a wrapper with its own parameters (the
-- same call, since such a method cannot tell a missing argument from nil),
-- which the JIT can compile with the method; the check is one lookup of the
-- object's metatable.
function kit.guard(c)
  local mts = c.mts
  local cname = c.name
  for name, fn in pairs(c.methods) do          -- the class's own methods
    if type(fn) == "function" and name:sub(1, 1) ~= "_" then
      local info = debug.getinfo(fn, "u")
      local n = not info.isvararg and info.nparams or -1
      local wrapped
      if n == 1 or n == 0 then
        wrapped = function(obj)
          if not mts[getmetatable(obj)] then
            error(("bad argument #1 to '%s' (net.%s expected, got %s)"):format(name, cname, typename(obj)), 2)
          end
          return fn(obj)
        end
      elseif n == 2 then
        wrapped = function(obj, a)
          if not mts[getmetatable(obj)] then
            error(("bad argument #1 to '%s' (net.%s expected, got %s)"):format(name, cname, typename(obj)), 2)
          end
          return fn(obj, a)
        end
      elseif n == 3 then
        wrapped = function(obj, a, b)
          if not mts[getmetatable(obj)] then
            error(("bad argument #1 to '%s' (net.%s expected, got %s)"):format(name, cname, typename(obj)), 2)
          end
          return fn(obj, a, b)
        end
      elseif n == 4 then
        wrapped = function(obj, a, b, d)
          if not mts[getmetatable(obj)] then
            error(("bad argument #1 to '%s' (net.%s expected, got %s)"):format(name, cname, typename(obj)), 2)
          end
          return fn(obj, a, b, d)
        end
      else
        wrapped = function(obj, ...)
          if not mts[getmetatable(obj)] then
            error(("bad argument #1 to '%s' (net.%s expected, got %s)"):format(name, cname, typename(obj)), 2)
          end
          return fn(obj, ...)
        end
      end
      c.methods[name] = wrapped
    end
  end
  forget_members()
end

-- Handlers ---------------------------------------------------------------------------------

-- Runs obj's handler field, if set, under the loop's pcall.
function kit.fire(obj, handler, ...)
  local fn = rawget(obj, handler)
  if fn then loop.call(fn, obj, ...) end
end

-- Arguments --------------------------------------------------------------------------------
-- Programmer mistakes raise in lauxlib's words, blaming the caller.

local function argerror(n, fname, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), level or 3)
end
kit.argerror = argerror

-- A bad value stored in a read/write property.
function kit.badvalue(k, v, expected)
  error(("bad value for %s (%s expected, got %s)"):format(k, expected,
    type(v) == "number" and tostring(v) or type(v)), 3)
end

-- A peer_verify_mode value: nil (the default) or one of the VERIFY constants.
-- Anything else would have left the handshake unverified.
function kit.verify_mode_ok(v)
  return v == nil or (type(v) == "number" and v == math.floor(v) and v >= 0 and v <= 3)
end

-- An optional size (read and peek maxima): nil, or a number >= 0.
function kit.optsize(v, n, fname)
  if v == nil then return nil end
  if type(v) ~= "number" then argerror(n, fname, "number expected, got " .. typename(v), 4) end
  if v ~= v or v < 0 then argerror(n, fname, "size expected, got " .. tostring(v), 4) end
  return math.floor(v)
end

-- An optional port: nil, or an integer 0..65535 (a numeric string converts).
function kit.optport(v, n, fname)
  if v == nil then return nil end
  local p = tonumber(v)
  if not p or (type(v) ~= "number" and type(v) ~= "string") or p ~= math.floor(p) or p < 0 or p > 65535 then
    argerror(n, fname, "port expected, got " .. (type(v) == "string" and ("'" .. v .. "'")
      or type(v) == "number" and tostring(v) or typename(v)), 4)
  end
  return p
end

-- An optional local address (listen, bind): nil or a string.
function kit.optaddress(v, n, fname)
  if v ~= nil and type(v) ~= "string" then argerror(n, fname, "string expected, got " .. type(v), 4) end
  return v
end

-- A byte table (write_bytes): every entry an integer 0..255.
function kit.checkbytes(t, fname)
  if type(t) ~= "table" then argerror(2, fname, "table expected, got " .. typename(t), 4) end
  for i = 1, #t do
    local b = t[i]
    if type(b) ~= "number" or b ~= math.floor(b) or b < 0 or b > 255 then
      argerror(2, fname, ("byte expected at index %d, got %s"):format(i, tostring(b)), 4)
    end
  end
  return t
end

function kit.bytes_of(s)
  local t = {}
  for i = 1, #s do t[i] = s:byte(i) end
  return t
end

function kit.string_of(t)
  local parts = {}
  for i = 1, #t do parts[i] = string.char(t[i]) end
  return table.concat(parts)
end

-- Sockets ----------------------------------------------------------------------------------
-- by_fd[fd] is the object whose socket the loop watches on fd: the loop's
-- callbacks are module functions that look the object up here, so watching
-- creates no closure (a closure per flush aborted the hot loop's traces) and
-- the registry, like the loop before it, holds a watched object strongly.

local by_fd = {}
kit.by_fd = by_fd

-- A loop callback fn(fd) that calls fn(obj) for the object registered on fd.
function kit.on_fd(fn)
  return function(fd)
    local obj = by_fd[fd]
    if obj then return fn(obj) end
  end
end

-- Watches the object's socket (st.fd) for `kind` with fn(fd), or stops (nil).
function kit.watch(obj, st, kind, fn)
  by_fd[st.fd] = obj
  loop.watch(st.fd, kind, fn)
end

-- The LuaSocket object `sock` becomes st's socket.
function kit.attach(st, sock)
  st.sock, st.fd = sock, sock:getfd()
end

-- Stops watching the object's socket and closes it.
function kit.drop_socket(st)
  local sock = st.sock
  if sock then
    local fd = sock:getfd()
    if fd >= 0 then
      loop.unwatch(fd)
      by_fd[fd] = nil
    end
    sock:close()
    st.sock, st.fd, st.wwatch = nil, nil, nil
  end
end

return kit
