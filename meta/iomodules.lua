---@meta
-- LuaLS annotations for ljssl's net face (iomodules, iomodules.net, iomodules.loop).

local loop = {}
function loop.run() end
---@param timeout? number seconds
---@return boolean did
function loop.step(timeout) end
function loop.stop() end
---@return any
function loop.run_until(cond, seconds) end
---@return integer id
function loop.after(seconds, fn) end
---@return boolean
function loop.cancel(id) end
function loop.defer(fn, ...) end
function loop.watch(fd, kind, fn) end
function loop.unwatch(fd) end
function loop.call(fn, ...) end
function loop.report(err) end

---@class net.Stream
local Stream = {}
---@return string
function Stream:read_string(max) end
---@return integer[]
function Stream:read_bytes(max) end
---@return string
function Stream:read_line_string(max) end
---@return integer[]
function Stream:read_line_bytes(max) end
---@return string
function Stream:read_all_string() end
---@return integer[]
function Stream:read_all_bytes() end
---@return string
function Stream:peek_string(max) end
---@return integer[]
function Stream:peek_bytes(max) end
---@return integer
function Stream:write_string(s) end
---@return integer
function Stream:write_bytes(t) end
---@return boolean
function Stream:seek(pos) end
---@return boolean
function Stream:reset() end
---@return boolean
function Stream:open(mode) end
function Stream:close() end

---@class net.TcpSocket : net.Stream
local TcpSocket = {}
---@return net.TcpSocket
function TcpSocket.new() end
function TcpSocket:connect(host, port, mode) end
function TcpSocket:disconnect() end
function TcpSocket:abort() end
---@return boolean
function TcpSocket:bind(port) end

---@class net.SslSocket : net.TcpSocket
local SslSocket = {}
---@return net.SslSocket
function SslSocket.new() end
function SslSocket:connect_encrypted(host, port, mode) end
function SslSocket:start_client_encryption() end

---@class net.TcpServer
local TcpServer = {}
---@return net.TcpServer
function TcpServer.new() end
---@return boolean
function TcpServer:listen(port, address) end
function TcpServer:pause_accepting() end
function TcpServer:resume_accepting() end
---@return net.TcpSocket?
function TcpServer:next_pending_connection() end
function TcpServer:close() end

---@class net.SslServer : net.TcpServer
local SslServer = {}
---@return net.SslServer
function SslServer.new() end
---@return net.SslSocket?
function SslServer:next_pending_secure_connection() end

---@class net.SslConfiguration
local SslConfiguration = {}
---@return net.SslConfiguration
function SslConfiguration.new() end
function SslConfiguration:add_ca_certificate(cert) end

---@class net.SslCertificate
local SslCertificate = {}
---@return net.SslCertificate
function SslCertificate.new(encoded, format) end
---@return string?
function SslCertificate:to_pem() end

---@class net.SslKey
local SslKey = {}
---@return net.SslKey
function SslKey.new(encoded, algorithm, format, kind) end

---@class net.UdpSocket
local UdpSocket = {}
---@return net.UdpSocket
function UdpSocket.new() end
---@return boolean
function UdpSocket:bind(port, address) end
function UdpSocket:close() end
---@return {valid:boolean, data:string?, sender_address:string?, sender_port:integer?}
function UdpSocket:read_datagram_string() end
---@return {valid:boolean, data:integer[]?, sender_address:string?, sender_port:integer?}
function UdpSocket:read_datagram_bytes() end
---@return integer
function UdpSocket:write_datagram_string(data, host, port) end
---@return integer
function UdpSocket:write_datagram_bytes(t, host, port) end
---@return boolean
function UdpSocket:join_multicast_group(group) end
---@return boolean
function UdpSocket:leave_multicast_group(group) end
-- Every method X also has X_async(..., callback(object, result, error)).
