-- examples/net_client.lua — a net-face TLS client, as seed 003 writes it:
-- connect_encrypted, data written before encryption is queued, handlers do
-- the rest.  Verifies the server against the system CAs plus CA_FILE, and the
-- host name.
--   luajit examples/net_client.lua HOST PORT [CA_FILE]
package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
require "iomodules"

local host, port, ca_file = arg[1] or "localhost", tonumber(arg[2] or 8443), arg[3]

local socket = iomodules.net.SslSocket.new()
if ca_file then
  local f = assert(io.open(ca_file, "rb"))
  local config = net.SslConfiguration.new()
  config:add_ca_certificate(net.SslCertificate.new(f:read("*a")))
  f:close()
  socket.configuration = config
end
socket.encrypted_handler = function(sock)
  print(("encrypted: %s, %s"):format(sock.session_protocol, sock.session_cipher))
end
socket.ready_read_handler = function(sock)
  while sock.can_read_line do io.write("reply: ", sock:read_line_string()) end
end
socket.error_handler = function(sock, err)
  print(("error %d: %s"):format(err, sock.error_string))
end
socket.disconnected_handler = function() iomodules.loop.stop() end

socket:connect_encrypted(host, port, net.Stream.READ_WRITE_MODE)
socket:write_string("hello from the net face\n")   -- queued until encrypted
socket:write_string("quit\n")
iomodules.loop.run()
