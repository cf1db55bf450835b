-- iomodules.server — net.TcpServer and net.SslServer: a listening socket
-- accepting while fewer than max_pending_connections wait, paused and resumed;
-- SslServer hands a connection out once its handshake is done (Qt's
-- QSslServer), drops one that fails it or is not done by handshake_timeout
-- (SOCKET_TIMEOUT_ERROR), and tells accept_error_handler why.

local socket = require "socket"
local loop = require "iomodules.loop"
local kit = require "iomodules.kit"
local tcp = require "iomodules.tcp"
local sslsocket = require "iomodules.sslsocket"
local sslconfig = require "iomodules.sslconfig"

local S, fire = kit.S, kit.fire
local ERRORS = kit.ERRORS

local server_mod = {}

local Server = kit.class("TcpServer")
local VM, VG = Server.methods, Server.getters

local accept_ready
local on_acceptable = kit.on_fd(function(server) accept_ready(server) end)

function accept_ready(server)
  local st = S[server]
  while st.listening and not st.paused and #st.pending < st.max_pending do
    local c = st.sock:accept()
    if not c then break end
    server:_accepted(c)
  end
  if st.sock then
    kit.watch(server, st, "read",
      (st.listening and not st.paused and #st.pending < st.max_pending) and on_acceptable or nil)
  end
end

function VM._accepted(server, c)
  local st = S[server]
  local conn = tcp.adopt(tcp.Tcp, c)
  st.pending[#st.pending + 1] = conn
  tcp.connected(conn)
  fire(server, "new_connection_handler")
end

-- listen(port[, address]): address defaults to all interfaces.
function VM.listen(server, port, address)
  local st = S[server]
  port = kit.optport(port, 2, "listen")
  address = kit.optaddress(address, 3, "listen")
  local sock, err = socket.bind(address or "0.0.0.0", port or 0, 511)
  if not sock then st.error_string = err; return false end
  sock:settimeout(0)
  kit.attach(st, sock)
  st.listening = true
  accept_ready(server)
  return true
end

function VM.pause_accepting(server) S[server].paused = true; accept_ready(server) end
function VM.resume_accepting(server) S[server].paused = false; accept_ready(server) end

function VM.next_pending_connection(server)
  local st = S[server]
  local conn = table.remove(st.pending, 1)
  accept_ready(server)
  return conn
end

function VM.close(server)
  local st = S[server]
  kit.drop_socket(st)
  st.listening = false
end

kit.add_async(Server, { "listen", "pause_accepting", "resume_accepting", "next_pending_connection", "close" })

VG.listening = function(server) return S[server].listening == true end
VG.port = function(server)
  local st = S[server]
  return st.sock and tonumber((select(2, st.sock:getsockname()))) or 0
end
VG.has_pending_connections = function(server) return #S[server].pending > 0 end
VG.max_pending_connections = function(server) return S[server].max_pending end
VG.error_string = function(server) return S[server].error_string or "" end
local function pending_ok(v) return type(v) == "number" and v == v and v >= 0 end
Server.mt.__newindex = function(server, k, v)
  if k == "max_pending_connections" then
    if not pending_ok(v) then kit.badvalue(k, v, "a number >= 0") end
    S[server].max_pending = v
  else rawset(server, k, v) end
end

local function server_state()
  return { pending = {}, max_pending = 30 }
end

function Server.public.new()
  local server = kit.new_object(Server)
  S[server] = server_state()
  return server
end

local SslServer = kit.class("SslServer", Server)

-- A TLS connection joins the pending list once its handshake is done; a failed
-- handshake goes to accept_error_handler.
function SslServer.methods._accepted(server, c)
  local conn = tcp.adopt(sslsocket.Ssl, c, sslsocket.new_state)
  local st = S[conn]
  st.configuration = S[server].configuration
  -- the handshake timer goes once the handshake ends either way: pending, it
  -- held every connection for the whole delay (spec/load_spec.lua)
  local function stop_timer()
    if st.handshake_timer then loop.cancel(st.handshake_timer); st.handshake_timer = nil end
  end
  rawset(conn, "encrypted_handler", function()
    rawset(conn, "encrypted_handler", nil)
    rawset(conn, "error_handler", nil)
    stop_timer()
    local sst = S[server]
    sst.pending[#sst.pending + 1] = conn
    fire(server, "new_connection_handler")
  end)
  rawset(conn, "error_handler", function(_, code)
    stop_timer()
    S[server].handshaking[conn] = nil   -- the connection is shut: let it go
    S[server].error_string = S[conn].error_string    -- why, for accept_error_handler
    fire(server, "accept_error_handler", code)
  end)
  S[server].handshaking[conn] = true
  -- Qt's QSslServer::handshakeTimeout: a client that has not finished its
  -- handshake in time (a slow-loris) is dropped with SOCKET_TIMEOUT_ERROR
  local ms = S[server].handshake_timeout
  if ms > 0 then
    st.handshake_timer = loop.after(ms / 1000, function()
      local cst = S[conn]
      if cst.encrypted or not cst.tls then return end     -- finished, or failed already
      tcp.set_error(conn, ERRORS.SOCKET_TIMEOUT_ERROR)
      tcp.shut(conn)
    end)
  end
  tcp.connected(conn)
  sslsocket.begin_tls(conn, "server")
end

function SslServer.methods.next_pending_secure_connection(server)
  local conn = VM.next_pending_connection(server)
  if conn then S[server].handshaking[conn] = nil end
  return conn
end
kit.add_async(SslServer, { "next_pending_secure_connection" })

SslServer.mt.__newindex = function(server, k, v)
  if k == "configuration" then
    if v ~= nil and not kit.instance_of(v, sslconfig.Config) then kit.badvalue(k, v, "net.SslConfiguration") end
    S[server].configuration = v
  elseif k == "max_pending_connections" then
    if not pending_ok(v) then kit.badvalue(k, v, "a number >= 0") end
    S[server].max_pending = v
  elseif k == "handshake_timeout" then
    if type(v) ~= "number" or v ~= v then kit.badvalue(k, v, "milliseconds") end
    S[server].handshake_timeout = v
  else rawset(server, k, v) end
end
SslServer.getters.configuration = function(server) return S[server].configuration end
-- milliseconds, as Qt's QSslServer (default 5000); 0 or less: no limit
SslServer.getters.handshake_timeout = function(server) return S[server].handshake_timeout end

function SslServer.public.new()
  local server = kit.new_object(SslServer)
  local st = server_state()
  st.handshaking = {}                 -- strong references while handshaking
  st.handshake_timeout = 5000
  S[server] = st
  return server
end

kit.guard(Server)
kit.guard(SslServer)

server_mod.Server, server_mod.SslServer = Server, SslServer
return server_mod
