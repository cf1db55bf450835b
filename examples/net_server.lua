-- examples/net_server.lua — a net-face TLS server (Pharos IO modules style):
-- an SslServer that answers each line with its upper-cased copy.
--   luajit examples/net_server.lua PORT CERT KEY [CHAIN]
-- Run from the repository root (or install ljssl and drop the package.path line).
package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
require "iomodules"                     -- defines the globals iomodules and net

local port, cert_file, key_file, chain_file = tonumber(arg[1] or 8443), arg[2], arg[3], arg[4]
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local config = net.SslConfiguration.new()
config.local_certificate = net.SslCertificate.new(read(cert_file))
if chain_file then config.local_certificate_chain = { net.SslCertificate.new(read(chain_file)) } end
config.private_key = net.SslKey.new(read(key_file), net.SslKey.EC)

local server = iomodules.net.SslServer.new()
server.configuration = config
server.new_connection_handler = function(srv)
  local client = srv:next_pending_secure_connection()
  print(("client %s:%d, %s"):format(client.remote_address, client.remote_port, client.session_protocol))
  client.ready_read_handler = function(sock)
    while sock.can_read_line do
      local line = sock:read_line_string()
      sock:write_string(line:upper())
      if line:find("^quit") then sock:disconnect() end
    end
  end
end
server.accept_error_handler = function(_, err) print("handshake failed: " .. err) end
assert(server:listen(port, "127.0.0.1"), server.error_string)
io.stdout:setvbuf("line")
print("listening on 127.0.0.1:" .. server.port)
iomodules.loop.run()
