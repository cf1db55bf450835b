-- ssl.ngx — ljssl over OpenResty cosockets (ngx.socket.tcp): TLS with ALPN,
-- a per-request client certificate, CA store, ciphers and protocol versions,
-- and the peer's chain, none of which cosocket:sslhandshake() offers.  The
-- connection is a LuaSec-face connection running over the cosocket
-- (ssl.wrap's transport path), so it never blocks nginx's event loop.
--
--   local ssl_ngx = require "ssl.ngx"
--   local conn, err = ssl_ngx.connect("example.org", 443, { alpn = "http/1.1" })

local ssl = require "ssl"

local M = {}

-- Wraps a connected cosocket with newcontext params.  Secure by default, as
-- ssl.connect: verify = "peer", the system CA store unless cafile/capath are
-- given, and the host name (params.hostname, or `host`) checked in the
-- handshake; verify = "none" opts out.  Returns conn, or nil and a reason.
function M.wrap(cosocket, params, host)
  if params ~= nil and type(params) ~= "table" then
    error("bad argument #2 to 'wrap' (table expected, got " .. type(params) .. ")", 2)
  end
  if host ~= nil and type(host) ~= "string" then
    error("bad argument #3 to 'wrap' (string expected, got " .. type(host) .. ")", 2)
  end
  local p = {}
  for k, v in pairs(params or {}) do p[k] = v end
  p.mode = "client"
  p.protocol = p.protocol or "any"
  if p.verify == nil then p.verify = "peer" end
  local name = p.hostname or host
  p.hostname = nil
  local verifying = p.verify == "peer" or (type(p.verify) == "table" and p.verify[1] == "peer")
  local ctx, err = ssl.newcontext(p)
  if not ctx then return nil, err end
  if verifying and not p.cafile and not p.capath then
    local ok, why = ssl.use_system_ca(ctx)
    if not ok then return nil, "cannot load the system CA store: " .. tostring(why) end
  end
  local conn
  conn, err = ssl.wrap(cosocket, ctx)
  if not conn then return nil, err end
  if name then
    if not require("ssl.engine.names").ip_literal(name) then conn:sni(name) end
    if verifying then
      local ok, herr = conn:sethost(name)
      if not ok then return nil, herr end
    end
  end
  local ok
  ok, err = conn:dohandshake()
  if not ok then
    if err == "certificate verify failed" then
      err = require("ssl.core").explain_verify_failure(conn, name)
    end
    conn:close()
    return nil, err
  end
  return conn
end

-- ngx.socket.tcp(), connect, wrap.  `timeout` (ms) applies to the cosocket.
function M.connect(host, port, params)
  if type(ngx) ~= "table" or type(ngx.socket) ~= "table" then
    error("ssl.ngx.connect needs OpenResty's ngx.socket.tcp (outside nginx, use ssl.connect)", 2)
  end
  if params ~= nil and type(params) ~= "table" then
    error("bad argument #3 to 'connect' (table expected, got " .. type(params) .. ")", 2)
  end
  local sock = ngx.socket.tcp()
  if params and params.timeout then sock:settimeout(params.timeout) end
  local ok, err = sock:connect(host, port)
  if not ok then return nil, err end
  return M.wrap(sock, params, host)
end

return M
