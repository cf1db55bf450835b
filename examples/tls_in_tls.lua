-- examples/tls_in_tls.lua — TLS inside TLS: an HTTPS proxy (TLS to the
-- proxy, verified), CONNECT to the target, then a second TLS session to the
-- target (verified) running over the first connection.
--   luajit examples/tls_in_tls.lua PROXY_PORT TARGET_HOST TARGET_PORT CA_FILE
package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
local socket = require "socket"
local ssl = require "ssl"

local proxy_port, host, port, ca = tonumber(arg[1]), arg[2], tonumber(arg[3]), arg[4]
local params = { mode = "client", protocol = "any", cafile = ca, verify = "peer" }

local tcp = assert(socket.connect("127.0.0.1", proxy_port))
params.hostname = "localhost"                         -- the proxy's name
local outer = assert(ssl.wrap(tcp, params))
assert(outer:dohandshake())
outer:send(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"):format(host, port, host, port))
local status = assert(outer:receive())
assert(status:match("^HTTP/1%.%d 200"), status)
repeat local line = outer:receive() until line == ""

params.hostname = host                                -- the target's name
local inner = assert(ssl.wrap(outer, params))         -- transport: the outer connection
assert(inner:dohandshake())
print("outer: " .. outer:info("protocol") .. ", inner: " .. inner:info("protocol"))
inner:send("hello through two TLS sessions\n")
print("reply: " .. tostring(inner:receive()))
inner:close()
