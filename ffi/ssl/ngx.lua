-- ssl.ngx — ljssl over OpenResty cosockets (ngx.socket.tcp): TLS with ALPN,
-- a per-request client certificate, CA store, ciphers and protocol versions,
-- and the peer's chain, none of which cosocket:sslhandshake() offers.  The
-- connection is a LuaSec-face connection running over the cosocket
-- (ssl.wrap's transport path), so it never blocks nginx's event loop.
--
--   local ssl_ngx = require "ssl.ngx"
--   local conn, err = ssl_ngx.connect("example.org", 443, { alpn = "http/1.1" })

local client = require "ssl.client"

local M = {}

-- Wraps a connected cosocket with newcontext params.  Secure by default, as
-- ssl.connect (the same code, ssl.client): verify = "peer", the system CA
-- store unless cafile/capath are given, and the host name (params.hostname,
-- or `host`) checked in the handshake for every verify form that has "peer"
-- in it; verify = "none" opts out.  Returns conn, or nil and a reason.
function M.wrap(cosocket, params, host)
  if params ~= nil and type(params) ~= "table" then
    error("bad argument #2 to 'wrap' (table expected, got " .. type(params) .. ")", 2)
  end
  if host ~= nil and type(host) ~= "string" then
    error("bad argument #3 to 'wrap' (string expected, got " .. type(host) .. ")", 2)
  end
  if params and params.hostname ~= nil and type(params.hostname) ~= "string" then
    error("bad argument #2 to 'wrap' (hostname: string expected, got " .. type(params.hostname) .. ")", 2)
  end
  local p = client.params(params)
  -- an nginx worker must never stop at a pass-phrase prompt: an encrypted
  -- key without `password` is refused, as with password = false
  if p.password == nil then p.password = false end
  local ctx, err = client.context(p)
  if not ctx then return nil, err end
  return client.handshake(cosocket, ctx, p.hostname or host)
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
