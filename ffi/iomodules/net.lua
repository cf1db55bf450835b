-- iomodules.net — the net face: the Pharos IO modules socket API (a Lua skin
-- over Qt's QSslSocket) on ljssl's engine and the iomodules event loop.  This
-- module is the namespace; the classes live in
--   iomodules.kit        the class kit, Qt's constants, the state table, argument checks
--   iomodules.tcp        Stream and TcpSocket: the connection and its socket I/O
--   iomodules.sslsocket  SslSocket: the TLS adapter over the engine pump
--   iomodules.sslconfig  SslEncoding, SslCertificate, SslKey, SslConfiguration, contexts
--   iomodules.server     TcpServer, SslServer
--   iomodules.udp        UdpSocket
-- Objects are tables: handlers are plain fields (socket.ready_read_handler =
-- fn), properties are computed on read (socket.state).  Deviations from
-- Qt/Pharos: docs/net.md.

local tcp = require "iomodules.tcp"
local sslsocket = require "iomodules.sslsocket"
local sslconfig = require "iomodules.sslconfig"
local server = require "iomodules.server"
local udp = require "iomodules.udp"

return {
  Stream = tcp.Stream.public,
  TcpSocket = tcp.Tcp.public,
  SslSocket = sslsocket.Ssl.public,
  TcpServer = server.Server.public,
  SslServer = server.SslServer.public,
  UdpSocket = udp.Udp.public,
  SslConfiguration = sslconfig.Config.public,
  SslCertificate = sslconfig.Cert.public,
  SslKey = sslconfig.Key.public,
  SslEncoding = sslconfig.SslEncoding,
}
