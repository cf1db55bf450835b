-- examples/libtls_client.lua — a libtls-face client: connects by name (libtls
-- does DNS and connect, and owns the socket), verifies the server against a CA
-- file and its name, sends a line, prints the echo.
--   luajit examples/libtls_client.lua HOST PORT CA_FILE [MESSAGE]
package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
local tls = require "libtls"
local config = require "libtls.config"

local host, port, ca, message = arg[1] or "localhost", arg[2] or "8443", arg[3], arg[4] or "hello"
local cfg = config.new()
if ca then assert(cfg:set_ca_file(ca)) end       -- otherwise OpenSSL's default CA paths
assert(cfg:set_alpn("echo/1"))
local ctx = tls.client(cfg)
local ok, err = ctx:connect(host, port)
assert(ok, tostring(err))
ok, err = ctx:handshake()
assert(ok, tostring(err))
print(("connected: %s %s, peer %s"):format(ctx:conn_version(), ctx:conn_cipher(), ctx:peer_cert_subject()))
ctx:write(message .. " quit\n")
-- libtls reads can ask to be called again even on a blocking socket (a TLS 1.3
-- session ticket arrived instead of data)
local data, rerr, again
repeat data, rerr, again = ctx:read() until not again
print("echo: " .. tostring(data or rerr))
ctx:close()
