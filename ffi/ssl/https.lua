-- ssl.https — LuaSec's ssl.https on LuaSocket's socket.http, secure by
-- default: the chain is verified against the system CA store (unless the
-- request gives cafile/capath) and the certificate must be valid for the host;
-- `verify = "none"` opts out.  Also follows redirects between https URLs and
-- goes through HTTP proxies with CONNECT.  Differences from LuaSec are listed
-- in docs/luasec.md.

local socket = require "socket"
local ltn12 = require "ltn12"
local http = require "socket.http"
local url = require "socket.url"
local mime = require "mime"
local ssl = require "ssl"
local client = require "ssl.client"

local try = socket.try

local _M = {
  _VERSION = ssl._VERSION,
  _COPYRIGHT = "ljssl's ssl.https, after LuaSec's by Pablo Musa and Tomas Guisasola (PUC-Rio)",
  PORT = 443,
  TIMEOUT = 60,
}

-- Defaults filled into the request's TLS parameters (LuaSec: verify = "none").
local cfg = {
  protocol = "any",
  options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1" },
  verify = "peer",
}

local function default_https_port(u)
  return url.build(url.parse(u, { port = _M.PORT }))
end

local function urlstring_totable(u, body, result_table)
  local t = {
    url = default_https_port(u),
    method = body and "POST" or "GET",
    sink = ltn12.sink.table(result_table),
  }
  if body then
    t.source = ltn12.source.string(body)
    t.headers = {
      ["content-length"] = #body,
      ["content-type"] = "application/x-www-form-urlencoded",
    }
  end
  return t
end

-- Forward the connection's methods from the wrapper LuaSocket's http uses.
local function reg(conn)
  local mt = getmetatable(conn.sock).__index
  for name, method in pairs(mt) do
    if type(method) == "function" then
      conn[name] = function(self, ...) return method(self.sock, ...) end
    end
  end
end

-- Asks an HTTP proxy for a tunnel to host:port on the connected sock.
local function tunnel(sock, host, port, proxy)
  local target = (host:find(":", 1, true) and "[" .. host .. "]" or host) .. ":" .. port
  local request = { "CONNECT ", target, " HTTP/1.1\r\nHost: ", target, "\r\n" }
  if proxy.user and proxy.password then
    request[#request + 1] = "Proxy-Authorization: Basic " ..
      mime.b64(url.unescape(proxy.user) .. ":" .. url.unescape(proxy.password)) .. "\r\n"
  end
  request[#request + 1] = "\r\n"
  local ok, err = sock:send(table.concat(request))
  if not ok then return nil, "proxy: " .. err end
  local status
  status, err = sock:receive("*l")
  if not status then return nil, "proxy: " .. err end
  repeat
    local line
    line, err = sock:receive("*l")
    if not line then return nil, "proxy: " .. err end
  until line == ""
  if not status:match("^HTTP/%d%.%d 200") then
    return nil, "proxy refused the tunnel: " .. status
  end
  return true
end

-- Returns a LuaSocket `create` function making TLS connections with these
-- parameters (filled with the defaults, mode forced to client, as LuaSec).
-- `proxy` (a URL string) sends the connections through an HTTP CONNECT proxy.
local function tcp(params, proxy)
  if params ~= nil and type(params) ~= "table" then
    error("bad argument #1 to 'tcp' (table expected, got " .. type(params) .. ")", 2)
  end
  params = params or {}
  for k, v in pairs(cfg) do
    if params[k] == nil then params[k] = v end
  end
  params.mode = "client"
  if type(proxy) == "string" then
    proxy = url.parse(proxy)
    proxy.port = proxy.port or 3128
  end
  local ctx
  return function()
    local conn = {}
    conn.sock = try(socket.tcp())
    local settimeout = getmetatable(conn.sock).__index.settimeout
    function conn:settimeout()
      return settimeout(self.sock, _M.TIMEOUT)
    end
    function conn:connect(host, port)
      if proxy then
        try(self.sock:connect(proxy.host, proxy.port))
        try(tunnel(self.sock, host, port, proxy))
      else
        try(self.sock:connect(host, port))
      end
      -- one context for every connection of the request (redirects included)
      if not ctx then ctx = try(client.context(params)) end
      self.sock = try(client.handshake(self.sock, ctx, host, _M.TIMEOUT))
      reg(self)
      return 1
    end
    return conn
  end
end

-- request(url[, body]) -> body, code, headers, status (string form) or
-- request(table) -> 1, code, headers, status, as LuaSec; nil, reason on failure.
local function request(u, body)
  if type(u) ~= "string" and type(u) ~= "table" then
    error("bad argument #1 to 'request' (string or table expected, got " .. (u == nil and "no value" or type(u)) .. ")", 2)
  end
  if body ~= nil and type(body) ~= "string" then
    error("bad argument #2 to 'request' (string expected, got " .. type(body) .. ")", 2)
  end
  local target = type(u) == "string" and u or u.url
  if type(target) ~= "string" or not url.parse(target) then return nil, "invalid URL" end
  local result_table = {}
  local stringrequest = type(u) == "string"
  if stringrequest then
    u = urlstring_totable(u, body, result_table)
  else
    u.url = default_https_port(u.url)
  end
  if u.create then return nil, "create function not permitted" end
  -- socket.http would send the request itself to the proxy; a tunnel is needed
  local proxy = u.proxy or http.PROXY
  u.proxy = nil
  u.create = tcp(u, proxy)
  local saved = http.PROXY
  http.PROXY = nil
  local ok, res, code, headers, status = pcall(http.request, u)
  http.PROXY = saved
  if not ok then error(res, 0) end
  if res and stringrequest then
    return table.concat(result_table), code, headers, status
  end
  return res, code, headers, status
end

_M.request = request
_M.tcp = tcp

return _M
