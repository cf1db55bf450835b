-- iomodules.tcp — net.Stream (the reading and writing API of every socket) and
-- net.TcpSocket: host lookup, connect (every address in turn, as Qt), CLOSING
-- until the output is flushed, Qt's remote-close order, and the socket I/O the
-- loop drives.
--
-- Bytes move between the kernel and string.buffers with read(2)/write(2) on
-- LuaSocket's descriptor (LuaSocket still creates, connects, accepts and closes
-- it): one read per readable event, no Lua string per chunk.  What the bytes
-- are is the object's transport, st.io: `tcp.plain` here, TLS from
-- iomodules.sslsocket.  A transport has
--   incoming(obj, st, ptr, n)   bytes from the network
--   write(obj, st, data)        write_string/write_bytes: bytes taken, or -1
--   pending(st)                 bytes_to_write
--   outgoing(st) → ptr, len     what to send next;  sent(st, n): n of it went
--   written(obj, n)?            after sent: the handlers (plain: bytes_written)
--   connected(obj, st)?         once connected, before connected_handler
--   closing(obj, st)?           disconnect(), before CLOSING
--   release(st)?                the connection is torn down

local ffi = require "ffi"
local bit = require "bit"
local socket = require "socket"
local strbuf = require "string.buffer"
local lib = require "ljssl.lib"
local names = require "ljssl.engine.names"
local loop = require "iomodules.loop"
local resolver = require "iomodules.resolver"
local kit = require "iomodules.kit"

local libc, K = lib.libc, lib.K
local S, fire, by_fd = kit.S, kit.fire, kit.by_fd
local ERRORS, STATES, OPEN_MODES, MODES = kit.ERRORS, kit.STATES, kit.OPEN_MODES, kit.MODES
local argerror, typename, optsize, optport = kit.argerror, kit.typename, kit.optsize, kit.optport
local EAGAIN, EWOULDBLOCK, EINTR = K.EAGAIN, K.EWOULDBLOCK or K.EAGAIN, K.EINTR
local CONNECTED, CLOSING, UNCONNECTED = STATES.CONNECTED_STATE, STATES.CLOSING_STATE, STATES.UNCONNECTED_STATE

local tcp = {}

-- Qt's QAbstractSocket texts
local ERROR_TEXT = {
  [0] = "Connection refused", [1] = "The remote host closed the connection",
  [2] = "Host not found", [5] = "Socket operation timed out", [7] = "Network unreachable",
  [8] = "The bound address is already in use",
}

-- Stream ----------------------------------------------------------------------------------

local Stream = kit.class("Stream")
kit.constants(Stream, OPEN_MODES)
local SM, SG = Stream.methods, Stream.getters

-- st.rbuf is a string.buffer: appending and consuming from the front cost what
-- they move, so reading a stream line by line is linear in its size (strings
-- rebuilt on every read made 3 MiB of lines take 43 s).

-- st.line caches the length of the first line (up to and including its
-- newline): nil when not known, false when no newline is buffered.  Taking
-- bytes forgets it; appending forgets only a false (can_read_line and then
-- read_line_string scan the buffer once).
local u8ptr = ffi.typeof("const uint8_t *")
local function line_length(st)
  local n = st.line
  if n == nil then
    local p, len = st.rbuf:ref()
    local nl = len > 0 and libc.memchr(p, 10, len) or nil
    n = nl ~= nil and tonumber(ffi.cast(u8ptr, nl) - p) + 1 or false
    st.line = n
  end
  return n
end

-- st.rbuf gained bytes (tcp.plain here, the TLS adapter's pump:read).
local function appended(st)
  if st.line == false then st.line = nil end
end
tcp.appended = appended

-- Not `return st.rbuf:get(n)`: a function trace that ends in a tail call to a
-- fast function cannot stop at its return ("leaving loop in root trace"), and
-- read_line_string, called from the user's handlers, runs as such a trace.
local function take(st, n)
  st.line = nil
  local s = st.rbuf:get(n)
  return s
end

local bytes_of, string_of, checkbytes = kit.bytes_of, kit.string_of, kit.checkbytes

function SM.read_string(obj, max)
  local st = S[obj]
  local n, have = optsize(max, 2, "read_string"), #st.rbuf
  -- a huge max (2^53, inf) reads what there is: buffer:get takes only sizes
  if not n or n > have then n = have end
  return take(st, n)
end
function SM.read_bytes(obj, max) return bytes_of(SM.read_string(obj, max)) end
function SM.read_all_string(obj) return SM.read_string(obj) end
function SM.read_all_bytes(obj) return bytes_of(SM.read_string(obj)) end

function SM.read_line_string(obj, max)
  local st = S[obj]
  max = optsize(max, 2, "read_line_string")
  local n = line_length(st) or #st.rbuf
  if max and max < n then n = max end
  return take(st, n)
end
function SM.read_line_bytes(obj, max) return bytes_of(SM.read_line_string(obj, max)) end

function SM.peek_string(obj, max)
  local p, len = S[obj].rbuf:ref()
  return ffi.string(p, math.min(optsize(max, 2, "peek_string") or len, len))
end
function SM.peek_bytes(obj, max) return bytes_of(SM.peek_string(obj, max)) end

function SM.write_string(obj, s)
  if type(s) ~= "string" then argerror(2, "write_string", "string expected, got " .. typename(s)) end
  local st = S[obj]
  return st.io.write(obj, st, s)
end
function SM.write_bytes(obj, t)
  local data = string_of(checkbytes(t, "write_bytes"))
  local st = S[obj]
  return st.io.write(obj, st, data)
end

function SM.seek() return false end          -- sockets are sequential
function SM.reset() return false end

function SM.open(obj, mode)
  if mode ~= nil and (type(mode) ~= "number" or mode ~= math.floor(mode) or mode < 0 or mode > 15) then
    argerror(2, "open", "open mode expected, got " .. (type(mode) == "number" and tostring(mode) or type(mode)))
  end
  S[obj].open_mode = mode or OPEN_MODES.READ_WRITE_MODE
  return true
end

function SM.close(obj)
  fire(obj, "about_to_close_handler")
  if obj.disconnect then obj:disconnect() end
  S[obj].open_mode = 0
end

kit.add_async(Stream, { "read_string", "read_bytes", "read_all_string", "read_all_bytes",
                        "read_line_string", "read_line_bytes", "peek_string", "peek_bytes",
                        "write_string", "write_bytes", "seek", "reset", "open", "close" })

SG.is_open = function(obj) return S[obj].open_mode ~= 0 end
SG.open_mode = function(obj) return S[obj].open_mode end
SG.bytes_available = function(obj) return #S[obj].rbuf end
SG.bytes_to_write = function(obj)
  local st = S[obj]
  return st.io.pending(st)
end
SG.at_end = function(obj) return #S[obj].rbuf == 0 end
SG.pos = function() return 0 end
SG.readable = function(obj) return bit.band(S[obj].open_mode, 1) ~= 0 end
SG.writeable = function(obj) return bit.band(S[obj].open_mode, 2) ~= 0 end
SG.sequential = function() return true end
SG.can_read_line = function(obj) return line_length(S[obj]) ~= false end
SG.error_string = function(obj) return S[obj].error_string or "" end

-- TcpSocket --------------------------------------------------------------------------------

local Tcp = kit.class("TcpSocket", Stream)
kit.constants(Tcp, ERRORS, STATES)
local TM, TG = Tcp.methods, Tcp.getters

local plain = {}           -- the plain transport (below)
tcp.plain = plain

-- A connection's state; `io` is its transport when not encrypted (plain).
function tcp.new_state(io)
  io = io or plain
  return { rbuf = strbuf.new(), out = strbuf.new(), io = io, base_io = io, open_mode = 0,
           state = UNCONNECTED, error = ERRORS.UNKNOWN_ERROR, mode = MODES.UNENCRYPTED_MODE }
end

local function set_state(obj, state)
  local st = S[obj]
  if st.state == state then return end
  st.state = state
  fire(obj, "state_changed_handler", state)
end
tcp.set_state = set_state

local function set_error(obj, code, text)
  local st = S[obj]
  st.error, st.error_string = code, text or ERROR_TEXT[code] or "Unknown error"
  fire(obj, "error_handler", code)
end
tcp.set_error = set_error

-- Tears the connection down; disconnected fires when it was connected.
local function shut(obj)
  local st = S[obj]
  local was = st.state
  kit.drop_socket(st)
  if st.lookup then
    st.lookup:cancel()
    st.lookup = nil
  end
  local release = st.io.release
  if release then release(st) end
  st.out:reset()
  set_state(obj, UNCONNECTED)
  if was == CONNECTED or was == CLOSING then
    fire(obj, "disconnected_handler")
  end
end
tcp.shut = shut

local function remote_closed(obj)
  -- Qt: the error while still connected, then the disconnection.  A peer that
  -- goes away mid-handshake is, as in Qt, RemoteHostClosedError too (the
  -- transport's error), not SslHandshakeFailedError: no TLS failure was seen.
  set_error(obj, ERRORS.REMOTE_HOST_CLOSED_ERROR)
  shut(obj)
end
tcp.remote_closed = remote_closed

local flush

local on_writable = kit.on_fd(function(obj) flush(obj) end)

-- After a write that did not take everything (n bytes, or -1 and errno e):
-- sends on while the kernel takes it, then watches for writable.
local function flush_rest(obj, st, fd, n, e)
  while true do
    local io = st.io
    if n >= 0 then
      io.sent(st, n)
      if n > 0 and io.written then
        io.written(obj, n)            -- bytes_written_handler
        if st.fd ~= fd then return end  -- which may have closed the socket
      end
    elseif e == EAGAIN or e == EWOULDBLOCK then
      break
    elseif e ~= EINTR then
      return remote_closed(obj)
    end
    local p, len = st.io.outgoing(st)
    if len == 0 then break end
    n = tonumber(libc.write(fd, p, len))
    e = n < 0 and ffi.errno()
  end
  local _, len = st.io.outgoing(st)
  local waiting = len > 0
  if waiting ~= (st.wwatch or false) then
    st.wwatch = waiting
    kit.watch(obj, st, "write", waiting and on_writable or nil)
  end
  if not waiting and st.state == CLOSING then shut(obj) end
end

-- Sends what the transport has queued, as far as the kernel takes it; the
-- loop calls again when the socket is writable.  The common case, one write
-- that takes everything, has no loop (a loop here split the callers' traces).
function flush(obj)
  local st = S[obj]
  local fd = st.fd
  if not fd then return end
  local io = st.io
  local p, len = io.outgoing(st)
  if len == 0 then
    if st.wwatch or st.state == CLOSING then flush_rest(obj, st, fd, 0) end
    return
  end
  local n = tonumber(libc.write(fd, p, len))
  if n ~= len or st.wwatch then return flush_rest(obj, st, fd, n, n < 0 and ffi.errno()) end
  io.sent(st, n)
  if io.written then
    io.written(obj, n)
    if st.fd == fd and st.state == CLOSING then flush_rest(obj, st, fd, 0) end
  elseif st.state == CLOSING then
    flush_rest(obj, st, fd, 0)
  end
end
tcp.flush = flush

-- The plain transport: the bytes are the stream's.  incoming answers the
-- object whose ready_read_handler the caller fires (see on_readable).
function plain.incoming(obj, st, p, n)
  st.rbuf:putcdata(p, n)
  appended(st)
  return obj
end

function plain.write(obj, st, data)
  if st.state ~= CONNECTED then return -1 end
  st.out:put(data)
  flush(obj)
  return #data
end

function plain.pending(st) return #st.out end
function plain.outgoing(st) return st.out:ref() end
function plain.sent(st, n) st.out:skip(n) end
function plain.written(obj, n) fire(obj, "bytes_written_handler", n) end

-- One read(2) a readable event, into a buffer every socket shares (the poll
-- is level-triggered: what is left makes the fd readable again).
local READ = 65536
local scratch = ffi.new("uint8_t[?]", READ)

-- read(2) answered n <= 0: the peer's FIN, or an error other than "try again".
local function read_failed(obj, n)
  if n == 0 then return remote_closed(obj) end          -- the peer's FIN
  local e = ffi.errno()
  if e ~= EAGAIN and e ~= EWOULDBLOCK and e ~= EINTR then return remote_closed(obj) end
end

-- The I/O of a readable event: answers the object whose ready_read_handler
-- is to fire now, or nil (handlers that must run earlier, and the close
-- sequence, run inside).  It fires no handler on the common path and is
-- called from on_readable below, a Lua frame, so its JIT trace can end by
-- returning there (a trace returning into the loop's pcall cannot be
-- compiled; a trace through a user's handler stops at the handler's loops).
local function read_event(fd)
  local obj = by_fd[fd]
  local st = obj and S[obj]
  if not st or st.fd ~= fd then return nil end
  local n = tonumber(libc.read(fd, scratch, READ))
  if n > 0 then return st.io.incoming(obj, st, scratch, n) end
  return read_failed(obj, n)
end

local function on_readable(fd)
  local obj = read_event(fd)
  if obj then fire(obj, "ready_read_handler") end
end
-- Kept in the interpreter: it only calls read_event, whose trace returns
-- here, and the handler (a trace of this function could not return into the
-- loop's pcall, and would try the user's handler).
jit.off(on_readable)

-- Called once connected (client or accepted): start reading.
local function connected(obj)
  local st = S[obj]
  st.sock:settimeout(0)
  kit.attach(st, st.sock)
  kit.watch(obj, st, "read", on_readable)
  set_state(obj, CONNECTED)
  local start = st.io.connected
  if start then start(obj, st) end
  fire(obj, "connected_handler")
  flush(obj)
end
tcp.connected = connected

local start_connect

-- A failed attempt: the next address the lookup gave, as Qt tries them all;
-- the error only when none is left.
local function connect_failed(obj, err)
  local st = S[obj]
  if st.addresses and #st.addresses > 0 then
    kit.drop_socket(st)
    return start_connect(obj, table.remove(st.addresses, 1), true)
  end
  if err == "connection refused" then
    set_error(obj, ERRORS.CONNECTION_REFUSED_ERROR)
  else
    set_error(obj, ERRORS.NETWORK_ERROR, err)
  end
  shut(obj)
end

local function finish_connect(fd)
  local obj = by_fd[fd]
  local st = obj and S[obj]
  if not st or st.fd ~= fd then return end
  local ok, err = st.sock:connect(st.ip, st.port)
  if ok or err == "already connected" then
    loop.watch(fd, "write", nil)
    connected(obj)
  elseif err ~= "timeout" and err ~= "Operation already in progress" then
    loop.watch(fd, "write", nil)
    connect_failed(obj, err)
  end
end

function start_connect(obj, ip, retry)
  local st = S[obj]
  if not retry then
    fire(obj, "host_found_handler")
    set_state(obj, STATES.CONNECTING_STATE)
  end
  st.ip = ip
  local sock = ip:find(":", 1, true) and socket.tcp6() or socket.tcp()
  sock:settimeout(0)
  st.sock = sock
  local ok, err = sock:connect(ip, st.port)
  kit.attach(st, sock)                  -- LuaSocket creates the descriptor in connect
  if ok then return connected(obj) end
  if err ~= "timeout" then return connect_failed(obj, err) end
  kit.watch(obj, st, "write", finish_connect)
end

-- Host lookup through iomodules.resolver (getaddrinfo_a, answers cached for
-- a minute), never blocking the loop; then every address in turn, as Qt.
local function lookup(obj, host)
  local st = S[obj]
  if not names.ip_literal(host) and not host:match("^[%w%.%-_]+$") then
    loop.defer(function() set_error(obj, ERRORS.HOST_NOT_FOUND_ERROR); shut(obj) end)
    return
  end
  st.lookup = resolver.lookup(host, function(addresses)
    st.lookup = nil
    if not addresses then
      set_error(obj, ERRORS.HOST_NOT_FOUND_ERROR)
      return shut(obj)
    end
    st.addresses = addresses
    start_connect(obj, table.remove(addresses, 1))
  end)
end

function TM.connect(obj, host, port, mode)
  local st = S[obj]
  if type(host) ~= "string" then argerror(2, "connect", "string expected, got " .. typename(host)) end
  port = optport(port, 3, "connect")
  if port == nil then argerror(3, "connect", "port expected, got no value") end
  if mode ~= nil and type(mode) ~= "number" then argerror(4, "connect", "number expected, got " .. type(mode)) end
  if st.state ~= UNCONNECTED and st.state ~= STATES.BOUND_STATE then return end
  st.host, st.port = host, tonumber(port)
  st.open_mode = mode or OPEN_MODES.READ_WRITE_MODE
  set_state(obj, STATES.HOST_LOOKUP_STATE)
  lookup(obj, host)
end

function TM.disconnect(obj)
  local st = S[obj]
  if st.state == UNCONNECTED then return end
  if st.state ~= CONNECTED then return shut(obj) end
  local closing = st.io.closing
  if closing then closing(obj, st) end
  set_state(obj, CLOSING)
  flush(obj)
end

function TM.abort(obj)
  shut(obj)
end

function TM.bind(obj, port)
  local st = S[obj]
  port = optport(port, 2, "bind")
  local s = socket.tcp()
  local ok = s:bind("0.0.0.0", port or 0)
  if not ok then s:close(); return false end
  st.sock = s
  set_state(obj, STATES.BOUND_STATE)
  return true
end

kit.add_async(Tcp, { "connect", "disconnect", "abort", "bind" })

TG.error = function(obj) return S[obj].error end
TG.state = function(obj) return S[obj].state end
TG.valid = function(obj) return S[obj].sock ~= nil end
TG.local_address = function(obj)
  local st = S[obj]
  return st.sock and (select(1, st.sock:getsockname())) or ""
end
TG.local_port = function(obj)
  local st = S[obj]
  return st.sock and tonumber((select(2, st.sock:getsockname()))) or 0
end
TG.remote_address = function(obj)
  local st = S[obj]
  if not st.sock or st.state ~= CONNECTED then return "" end
  return (select(1, st.sock:getpeername())) or ""
end
TG.remote_port = function(obj)
  local st = S[obj]
  if not st.sock or st.state ~= CONNECTED then return 0 end
  return tonumber((select(2, st.sock:getpeername()))) or 0
end

function Tcp.public.new()
  local obj = kit.new_object(Tcp)
  S[obj] = tcp.new_state()
  return obj
end

-- Wraps an accepted LuaSocket connection in an object of class c (whose
-- state new_state gives); tcp.connected(obj) starts it.
function tcp.adopt(c, sock, new_state)
  local obj = kit.new_object(c)
  local st = (new_state or tcp.new_state)()
  st.sock = sock
  st.open_mode = OPEN_MODES.READ_WRITE_MODE
  S[obj] = st
  return obj
end

kit.guard(Stream)
kit.guard(Tcp)

tcp.Stream, tcp.Tcp = Stream, Tcp
return tcp
