-- iomodules.resolver — host name lookups for the net face that never block
-- the event loop: glibc's getaddrinfo_a runs the lookup on its own thread
-- (no signal, no callback into Lua), and a loop timer asks gai_error whether
-- it has finished.  Answers are kept 60 seconds, as Qt's QHostInfo cache does,
-- so a client connecting again and again looks a name up once a minute.
--
--   local handle = resolver.lookup("example.org", function(addresses, err) ... end)
--   handle:cancel()        -- the function is then never called
--
-- `addresses` lists numeric addresses (IPv6 and IPv4) in getaddrinfo's order,
-- without repeats; on failure it is nil and `err` is gai_strerror's text.
-- The function always runs on a later loop tick, never inside lookup().

local ffi = require "ffi"
local lib = require "ljssl.lib"
local names = require "ljssl.engine.names"
local loop = require "iomodules.loop"

local libc, K = lib.libc, lib.K

local resolver = { TTL = 60 }

local cache = {}      -- host -> { addresses = {...}, expires = seconds }
local now = require("ljssl.engine.fd").now

local hostbuf = ffi.new("char[?]", K.NI_MAXHOST)
local gaicb_list = ffi.typeof("struct ljssl_gaicb *[1]")

local function copy(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  return out
end

-- The numeric addresses of a getaddrinfo result, then the result freed.
local function addresses_of(result)
  local list, seen = {}, {}
  local ai = result
  while ai ~= nil do
    if libc.getnameinfo(ai.ai_addr, ai.ai_addrlen, hostbuf, K.NI_MAXHOST, nil, 0, K.NI_NUMERICHOST) == 0 then
      local ip = ffi.string(hostbuf)
      if not seen[ip] then seen[ip] = true; list[#list + 1] = ip end
    end
    ai = ai.ai_next
  end
  libc.ljssl_freeaddrinfo(result)
  return list
end

local Handle = {}
Handle.__index = Handle

-- Stops waiting for the answer.  glibc may still be working on it: the
-- request then stays referenced (and polled) until it is done and freed.
function Handle:cancel()
  self.fn = nil
  if self.req and libc.ljssl_gai_cancel(self.req) == K.EAI_CANCELED then
    self.req = nil
  end
end

local function finish(handle, addresses, err)
  local fn = handle.fn
  handle.fn = nil
  if fn then loop.call(fn, addresses, err) end
end

local function poll(handle)
  local req = handle.req
  if not req then return end
  local rc = libc.ljssl_gai_error(req)
  if rc == K.EAI_INPROGRESS then
    handle.wait = math.min(handle.wait * 2, 0.05)
    loop.after(handle.wait, function() poll(handle) end)
    return
  end
  handle.req = nil
  if rc ~= 0 or req.ar_result == nil then
    if rc ~= K.EAI_CANCELED then
      finish(handle, nil, ffi.string(libc.gai_strerror(rc ~= 0 and rc or K.EAI_NONAME)))
    end
    return
  end
  local addresses = addresses_of(req.ar_result)
  req.ar_result = nil
  if #addresses == 0 then return finish(handle, nil, ffi.string(libc.gai_strerror(K.EAI_NONAME))) end
  cache[handle.host] = { addresses = addresses, expires = now() + resolver.TTL }
  finish(handle, copy(addresses))
end

-- Looks `host` up; fn(addresses) or fn(nil, message) runs on a later tick.
function resolver.lookup(host, fn)
  local handle = setmetatable({ host = host, fn = fn, wait = 0.0005 }, Handle)
  local ip = names.ip_literal(host)
  if ip then
    loop.defer(finish, handle, { ip })
    return handle
  end
  local hit = cache[host]
  if hit and hit.expires > now() then
    loop.defer(finish, handle, copy(hit.addresses))
    return handle
  end
  cache[host] = nil
  -- everything glibc reads while it works stays referenced by the handle
  handle.name = host
  handle.hints = ffi.new("struct ljssl_addrinfo")
  handle.hints.ai_family = K.AF_UNSPEC
  handle.hints.ai_socktype = K.SOCK_STREAM
  handle.req = ffi.new("struct ljssl_gaicb")
  handle.req.ar_name = handle.name
  handle.req.ar_request = handle.hints
  handle.list = gaicb_list(handle.req)
  local rc = libc.ljssl_getaddrinfo_a(K.GAI_NOWAIT, handle.list, 1, nil)
  if rc ~= 0 then
    handle.req = nil
    loop.defer(finish, handle, nil, ffi.string(libc.gai_strerror(rc)))
    return handle
  end
  loop.after(0, function() poll(handle) end)
  return handle
end

-- Forgets every cached answer (tests, or after the network changed).
function resolver.flush()
  cache = {}
end

return resolver
