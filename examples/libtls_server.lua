-- examples/libtls_server.lua — a libtls-face echo server: one client at a time,
-- blocking, with the libtls API (lua-libtls).
--   luajit examples/libtls_server.lua PORT CERT_CHAIN KEY
-- Run from the repository root (or install ljssl and drop the package.path line).
package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
local socket = require "socket"
local tls = require "libtls"
local config = require "libtls.config"

io.stdout:setvbuf("line")
local port, cert, key = tonumber(arg[1] or 8443), arg[2], arg[3]
local cfg = config.new()
assert(cfg:set_keypair_file(cert, key))
assert(cfg:set_alpn("echo/1"))
local server = assert(tls.server(cfg))

local listener = assert(socket.bind("127.0.0.1", port))
print("listening on 127.0.0.1:" .. port)
-- LuaSocket's fds are non-blocking: wait for what libtls asks, then call again.
local function wait(sock, want)
  if want == tls.WANT_POLLIN then socket.select({ sock }, nil, 10)
  else socket.select(nil, { sock }, 10) end
end

local function handshake(conn, sock)
  while true do
    local ok, err, want = conn:handshake()
    if ok or err then return ok, err end
    wait(sock, want)
  end
end

local function read(conn, sock)
  while true do
    local data, err, again, want = conn:read()
    if not again then return data, err end
    wait(sock, want)
  end
end

while true do
  local sock = assert(listener:accept())
  local conn = assert(server:accept_socket(sock:getfd()))
  local ok, err = handshake(conn, sock)
  if ok then
    print(("client: %s, %s, ALPN %s"):format(conn:conn_version(), conn:conn_cipher(),
      tostring((conn:conn_alpn_selected()))))
    while true do
      local data, rerr = read(conn, sock)
      if not data then
        if rerr then print("read: " .. tostring(rerr)) end
        break
      end
      conn:write(data)
      if data:find("quit") then break end
    end
    conn:close()
  else
    print("handshake: " .. tostring(err))
  end
  sock:close()
end
