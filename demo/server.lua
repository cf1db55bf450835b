-- demo/server.lua — the demo's TLS server: serves one client and exits.
-- usage: luajit demo/server.lua PORT CERT_DIR
package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
local socket = require "socket"
local ssl = require "ssl"

local port, dir = tonumber(arg[1]), arg[2]
local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(10)
local client = server:accept()
server:close()
if not client then os.exit(1) end
local conn = assert(ssl.wrap(client, {
  mode = "server", protocol = "any",
  key = dir .. "/server.key", certificate = dir .. "/server.pem",
  alpn = { "demo/1" },
}))
conn:settimeout(10)
assert(conn:dohandshake())
local line = conn:receive("*l")
conn:send(("hello, %s! (%s, %s)\n"):format(line and line:match("from an? (.*)") or "stranger",
  conn:info("protocol"), conn:getsniname() or "no SNI"))
conn:close()
