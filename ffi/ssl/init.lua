-- ssl — the LuaSec face of ljssl: `require "ssl"` as in LuaSec 1.3.2
-- (newcontext, wrap, loadcertificate, config), on the shared TLS engine.
-- Deliberate differences from LuaSec are listed in docs/luasec.md.

local lib = require "ljssl.lib"
local config = require "ssl.config"

-- `require "ssl"` costs no more than LuaSec's: it loads OpenSSL and reads its
-- version, and nothing else.  The functions that need the engine (ssl.core,
-- ssl.context and what they need) live in ssl.face, loaded with the engine by
-- the first call of one of them; certificates and the system store come by
-- their own first use, since most programs never call them.
local function on_first_use(module, name)
  local fn
  return function(...)
    fn = fn or require(module)[name]
    return fn(...)
  end
end

-- A transport from functions: send(data) -> bytes sent (or nil, err),
-- receive(n) -> data (or nil, err, partial), and optionally close().
local function transport(send, receive, close)
  assert(type(send) == "function" and type(receive) == "function", "send and receive functions expected")
  return {
    send = function(_, data) return send(data) end,
    receive = function(_, n) return receive(n) end,
    close = close and function() return close() end or nil,
  }
end

return {
  -- the LuaSec API level first, so version checks that parse it keep working
  _VERSION = "1.3.2 (ljssl 0.1 on " .. lib.version_text .. ")",
  -- ssl.core's copyright() (spec/startup_spec.lua checks that they agree)
  _COPYRIGHT = "ljssl - TLS for LuaJIT through the FFI, implementing the LuaSec 1.3.2 API",
  config = config,
  loadcertificate = on_first_use("ssl.x509", "load"),
  newcontext = on_first_use("ssl.face", "newcontext"),
  wrap = on_first_use("ssl.face", "wrap"),
  connect = on_first_use("ssl.face", "connect"),
  transport = transport,
  checkhostname = on_first_use("ssl.x509", "checkhostname"),
  checkhost = on_first_use("ssl.x509", "checkhost"),
  find_system_ca = on_first_use("ljssl.engine.trust", "find"),
  get_system_ca = on_first_use("ljssl.engine.trust", "get"),
  set_system_ca = on_first_use("ljssl.engine.trust", "set"),
  use_system_ca = on_first_use("ssl.face", "use_system_ca"),
  rawcontext = on_first_use("ssl.face", "rawcontext"),
  rawconnection = on_first_use("ssl.face", "rawconnection"),
}
