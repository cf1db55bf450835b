-- iomodules.net — the net face: the Pharos IO modules socket API (a Lua skin
-- over Qt's QSslSocket) on ljssl's engine and the iomodules event loop.
--
-- Classes: Stream (the reading/writing API), TcpSocket, SslSocket, TcpServer,
-- SslServer, SslConfiguration, SslCertificate, SslKey, SslEncoding.  Objects are
-- tables: handlers are plain fields (socket.ready_read_handler = fn), properties
-- are computed on read (socket.state).  TLS runs on the engine's memory
-- transport: ciphertext moves between LuaSocket and the session in this file,
-- so OpenSSL never touches the socket.  Deviations from Qt/Pharos: docs/net.md.

local ffi = require "ffi"
local bit = require "bit"
local socket = require "socket"
local lib = require "ljssl.lib"
local engine = require "ljssl.engine.context"
local session = require "ljssl.engine.session"
local names = require "ljssl.engine.names"
local policy = require "ljssl.engine.policy"
local loop = require "iomodules.loop"
local resolver = require "iomodules.resolver"
local strbuf = require "string.buffer"

local C, crypto, K, libc = lib.ssl, lib.crypto, lib.K, lib.libc

local net = {}

-- Constants ---------------------------------------------------------------------------------

local OPEN_MODES = { NOT_OPEN_MODE = 0, READ_ONLY_MODE = 1, WRITE_ONLY_MODE = 2,
                     READ_WRITE_MODE = 3, APPEND_MODE = 4, TRUNCATE_MODE = 8 }
local ERRORS = {
  CONNECTION_REFUSED_ERROR = 0, REMOTE_HOST_CLOSED_ERROR = 1, HOST_NOT_FOUND_ERROR = 2,
  SOCKET_ACCESS_ERROR = 3, SOCKET_RESOURCE_ERROR = 4, SOCKET_TIMEOUT_ERROR = 5,
  DATAGRAM_TOO_LARGE_ERROR = 6, NETWORK_ERROR = 7, ADDRESS_IN_USE_ERROR = 8,
  UNSUPPORTED_SOCKET_OPERATION_ERROR = 10, UNFINISHED_SOCKET_OPERATION_ERROR = 11,
  SSL_HANDSHAKE_FAILED_ERROR = 13, OPERATION_ERROR = 19, SSL_INTERNAL_ERROR = 20,
  SSL_INVALID_USERDATA_ERROR = 21, TEMPORARY_ERROR = 22, UNKNOWN_ERROR = -1,
}
local STATES = { UNCONNECTED_STATE = 0, HOST_LOOKUP_STATE = 1, CONNECTING_STATE = 2,
                 CONNECTED_STATE = 3, BOUND_STATE = 4, LISTENING_STATE = 5, CLOSING_STATE = 6 }
local MODES = { UNENCRYPTED_MODE = 0, SSL_CLIENT_MODE = 1, SSL_SERVER_MODE = 2 }
local VERIFY = { VERIFY_NONE = 0, QUERY_PEER = 1, VERIFY_PEER = 2, AUTO_VERIFY_PEER = 3 }

-- Qt's QAbstractSocket texts
local ERROR_TEXT = {
  [0] = "Connection refused", [1] = "The remote host closed the connection",
  [2] = "Host not found", [5] = "Socket operation timed out", [7] = "Network unreachable",
  [8] = "The bound address is already in use",
}

-- Qt's QSslError texts for OpenSSL's verification results
local VERIFY_TEXT = {
  [K.X509_V_ERR_CERT_HAS_EXPIRED] = "The certificate has expired",
  [K.X509_V_ERR_CERT_NOT_YET_VALID] = "The certificate is not yet valid",
  [K.X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT] = "The certificate is self-signed, and untrusted",
  [K.X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN] =
    "The root certificate of the certificate chain is self-signed, and untrusted",
  [K.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY] =
    "The issuer certificate of a locally looked up certificate could not be found",
  [K.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT] = "The issuer certificate could not be found",
  [K.X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE] = "No certificates could be verified",
  [K.X509_V_ERR_CERT_REVOKED] = "The peer certificate has been revoked",
  [K.X509_V_ERR_INVALID_PURPOSE] = "The certificate is invalid for the specified purpose",
  [K.X509_V_ERR_CERT_UNTRUSTED] = "The root CA certificate is not trusted for this purpose",
  [K.X509_V_ERR_CERT_REJECTED] = "The root CA certificate is marked to reject the specified purpose",
  [K.X509_V_ERR_CERT_SIGNATURE_FAILURE] = "The signature of the certificate is invalid",
  [K.X509_V_ERR_HOSTNAME_MISMATCH] = "The host name did not match any of the valid hosts for this certificate",
  [K.X509_V_ERR_IP_ADDRESS_MISMATCH] = "The host name did not match any of the valid hosts for this certificate",
}

-- Classes ----------------------------------------------------------------------------------------
-- A class has methods, read-only properties (getters) and constants; objects
-- are plain tables, so handler fields can be set freely.

local function class(name, parent)
  local c = { methods = {}, getters = {}, consts = {}, name = name, parent = parent }
  -- the class and its ancestors, so that instance_of needs no loop (a loop in
  -- every method's check aborted the callers' JIT traces)
  c.is_a = { [c] = true }
  if parent then for k in pairs(parent.is_a) do c.is_a[k] = true end end
  if parent then
    setmetatable(c.methods, { __index = parent.methods })
    setmetatable(c.getters, { __index = parent.getters })
    setmetatable(c.consts, { __index = parent.consts })
  end
  c.mt = {
    __index = function(obj, k)
      local g = c.getters[k]
      if g then return g(obj) end
      local m = c.methods[k]
      if m ~= nil then return m end
      return c.consts[k]
    end,
    __tostring = function(obj) return ("net.%s: %s"):format(name, rawget(obj, "__id")) end,
  }
  c.mt.__class = c
  -- the public class table: constants and new()
  c.public = setmetatable({}, { __index = function(_, k) return c.consts[k] or c.methods[k] end })
  return c
end

-- True when v is an object of class c or of a class derived from it.
local function instance_of(v, c)
  local mt = type(v) == "table" and getmetatable(v)
  local oc = type(mt) == "table" and rawget(mt, "__class")
  return oc and oc.is_a[c] or false
end

-- A peer_verify_mode value: nil (the default) or one of the VERIFY constants.
-- Anything else would have left the handshake unverified.
local function verify_mode_ok(v)
  return v == nil or (type(v) == "number" and v == math.floor(v) and v >= 0 and v <= 3)
end

local function badvalue(k, v, expected)
  error(("bad value for %s (%s expected, got %s)"):format(k, expected,
    type(v) == "number" and tostring(v) or type(v)), 3)
end

local function new_object(c)
  local obj = setmetatable({}, c.mt)
  rawset(obj, "__id", tostring({}):match("0x%x+"))
  return obj
end

-- Every sync method gets an _async twin: the result goes to cb(obj, result,
-- error) on a later loop tick, as the Pharos playback thread would see it.
local function add_async(c, name)
  c.methods[name .. "_async"] = function(obj, ...)
    local args = { n = select("#", ...), ... }
    local cb = args[args.n]
    args.n = args.n - 1
    local ok, result = pcall(c.methods[name], obj, unpack(args, 1, args.n))
    if type(cb) == "function" then
      loop.defer(cb, obj, ok and result or nil, (not ok) and tostring(result) or nil)
    end
  end
end

-- State of every object, kept outside it so handler fields cannot clash.
local S = setmetatable({}, { __mode = "k" })

-- Programmer mistakes raise in lauxlib's words, blaming the caller.
local function argerror(n, fname, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), level or 3)
end

local function typename(v) return v == nil and "no value" or type(v) end

-- An optional size (read and peek maxima): nil, or a number >= 0.
local function optsize(v, n, fname)
  if v == nil then return nil end
  if type(v) ~= "number" then argerror(n, fname, "number expected, got " .. typename(v), 4) end
  if v ~= v or v < 0 then argerror(n, fname, "size expected, got " .. tostring(v), 4) end
  return math.floor(v)
end

-- An optional port: nil, or an integer 0..65535 (a numeric string converts).
local function optport(v, n, fname)
  if v == nil then return nil end
  local p = tonumber(v)
  if not p or (type(v) ~= "number" and type(v) ~= "string") or p ~= math.floor(p) or p < 0 or p > 65535 then
    argerror(n, fname, "port expected, got " .. (type(v) == "string" and ("'" .. v .. "'")
      or type(v) == "number" and tostring(v) or typename(v)), 4)
  end
  return p
end

local function fire(obj, handler, ...)
  local fn = rawget(obj, handler)
  if fn then loop.call(fn, obj, ...) end
end

-- Stream ----------------------------------------------------------------------------------------

local Stream = class("Stream")
for k, v in pairs(OPEN_MODES) do Stream.consts[k] = v end
local SM, SG = Stream.methods, Stream.getters

-- st.rbuf is a string.buffer: appending and consuming from the front cost what
-- they move, so reading a stream line by line is linear in its size (strings
-- rebuilt on every read made 3 MiB of lines take 43 s).
local function take(st, n)
  return st.rbuf:get(n)
end

-- Bytes up to and including the first newline, or nil when none is buffered.
local function line_length(rbuf)
  local p, len = rbuf:ref()
  if len == 0 then return nil end
  local nl = libc.memchr(p, 10, len)
  if nl == nil then return nil end
  return tonumber(ffi.cast("const uint8_t *", nl) - p) + 1
end

local function bytes_of(s)
  local t = {}
  for i = 1, #s do t[i] = s:byte(i) end
  return t
end

local function string_of(t)
  local parts = {}
  for i = 1, #t do parts[i] = string.char(t[i]) end
  return table.concat(parts)
end

function SM.read_string(obj, max)
  local st = S[obj]
  return take(st, optsize(max, 2, "read_string") or #st.rbuf)
end
function SM.read_bytes(obj, max) return bytes_of(SM.read_string(obj, max)) end
function SM.read_all_string(obj) return SM.read_string(obj) end
function SM.read_all_bytes(obj) return bytes_of(SM.read_string(obj)) end

function SM.read_line_string(obj, max)
  local st = S[obj]
  max = optsize(max, 2, "read_line_string")
  local n = line_length(st.rbuf) or #st.rbuf
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
  return obj:_write(s)
end
local function checkbytes(t, fname)
  if type(t) ~= "table" then argerror(2, fname, "table expected, got " .. typename(t), 4) end
  for i = 1, #t do
    local b = t[i]
    if type(b) ~= "number" or b ~= math.floor(b) or b < 0 or b > 255 then
      argerror(2, fname, ("byte expected at index %d, got %s"):format(i, tostring(b)), 4)
    end
  end
  return t
end
function SM.write_bytes(obj, t) return obj:_write(string_of(checkbytes(t, "write_bytes"))) end

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

for _, m in ipairs({ "read_string", "read_bytes", "read_all_string", "read_all_bytes",
                     "read_line_string", "read_line_bytes", "peek_string", "peek_bytes",
                     "write_string", "write_bytes", "seek", "reset", "open", "close" }) do
  add_async(Stream, m)
end

SG.is_open = function(obj) return S[obj].open_mode ~= 0 end
SG.open_mode = function(obj) return S[obj].open_mode end
SG.bytes_available = function(obj) return #S[obj].rbuf end
SG.bytes_to_write = function(obj) return obj:_pending_write() end
SG.at_end = function(obj) return #S[obj].rbuf == 0 end
SG.pos = function() return 0 end
SG.readable = function(obj) return bit.band(S[obj].open_mode, 1) ~= 0 end
SG.writeable = function(obj) return bit.band(S[obj].open_mode, 2) ~= 0 end
SG.sequential = function() return true end
SG.can_read_line = function(obj) return line_length(S[obj].rbuf) ~= nil end
SG.error_string = function(obj) return S[obj].error_string or "" end

-- TcpSocket --------------------------------------------------------------------------------------

local Tcp = class("TcpSocket", Stream)
for k, v in pairs(ERRORS) do Tcp.consts[k] = v end
for k, v in pairs(STATES) do Tcp.consts[k] = v end
local TM, TG = Tcp.methods, Tcp.getters

local function new_state()
  return { rbuf = strbuf.new(), out = "", open_mode = 0, state = STATES.UNCONNECTED_STATE,
           error = ERRORS.UNKNOWN_ERROR, mode = MODES.UNENCRYPTED_MODE }
end

local function set_state(obj, state)
  local st = S[obj]
  if st.state == state then return end
  st.state = state
  fire(obj, "state_changed_handler", state)
end

local function set_error(obj, code, text)
  local st = S[obj]
  st.error, st.error_string = code, text or ERROR_TEXT[code] or "Unknown error"
  fire(obj, "error_handler", code)
end

-- Stops watching the object's socket and closes it.
local function drop_socket(st)
  if st.sock then
    loop.unwatch(st.sock:getfd())
    st.sock:close()
    st.sock = nil
  end
end

-- Tears the connection down; `notify` fires disconnected when it was connected.
local function shut(obj)
  local st = S[obj]
  local was = st.state
  drop_socket(st)
  if st.lookup then
    st.lookup:cancel()
    st.lookup = nil
  end
  if st.tls then st.tls:free(); st.tls = nil end
  st.out = ""
  set_state(obj, STATES.UNCONNECTED_STATE)
  if was == STATES.CONNECTED_STATE or was == STATES.CLOSING_STATE then
    fire(obj, "disconnected_handler")
  end
end

local function flush(obj)
  local st = S[obj]
  if not st.sock then return end
  while #st.out > 0 do
    local last, err, partial = st.sock:send(st.out)
    local n = last or partial or 0
    if n > 0 then
      st.out = st.out:sub(n + 1)
      if not st.tls then fire(obj, "bytes_written_handler", n) end
    end
    if not last then
      if err == "timeout" then break end
      set_error(obj, ERRORS.REMOTE_HOST_CLOSED_ERROR)
      shut(obj)
      return
    end
  end
  local fd = st.sock:getfd()
  loop.watch(fd, "write", #st.out > 0 and function() flush(obj) end or nil)
  if #st.out == 0 and st.state == STATES.CLOSING_STATE then shut(obj) end
end

-- Bytes from the network: plaintext for a TcpSocket (SslSocket overrides).
function TM._incoming(obj, data)
  local st = S[obj]
  st.rbuf:put(data)
  fire(obj, "ready_read_handler")
end

function TM._write(obj, data)
  local st = S[obj]
  if st.state ~= STATES.CONNECTED_STATE then return -1 end
  st.out = st.out .. data
  flush(obj)
  return #data
end

function TM._pending_write(obj) return #S[obj].out end

local function on_readable(obj)
  local st = S[obj]
  if not st.sock then return end
  local data, err, partial = st.sock:receive(65536)
  data = data or partial
  if data and #data > 0 then obj:_incoming(data) end
  st = S[obj]
  if err == "closed" and st.sock then
    obj:_remote_closed()
  end
end

function TM._remote_closed(obj)
  -- Qt: the error while still connected, then the disconnection
  set_error(obj, ERRORS.REMOTE_HOST_CLOSED_ERROR)
  shut(obj)
end

-- Called once connected (client or accepted): start reading.
function TM._connected(obj)
  local st = S[obj]
  st.sock:settimeout(0)
  local fd = st.sock:getfd()
  loop.watch(fd, "read", function() on_readable(obj) end)
  set_state(obj, STATES.CONNECTED_STATE)
  if obj._starting_encryption then obj:_starting_encryption() end
  fire(obj, "connected_handler")
  flush(obj)
end

local start_connect

-- A failed attempt: the next address the lookup gave, as Qt tries them all;
-- the error only when none is left.
local function connect_failed(obj, err)
  local st = S[obj]
  if st.addresses and #st.addresses > 0 then
    drop_socket(st)
    return start_connect(obj, table.remove(st.addresses, 1), true)
  end
  if err == "connection refused" then
    set_error(obj, ERRORS.CONNECTION_REFUSED_ERROR)
  else
    set_error(obj, ERRORS.NETWORK_ERROR, err)
  end
  shut(obj)
end

local function finish_connect(obj)
  local st = S[obj]
  local ok, err = st.sock:connect(st.ip, st.port)
  if ok or err == "already connected" then
    loop.watch(st.sock:getfd(), "write", nil)
    obj:_connected()
  elseif err ~= "timeout" and err ~= "Operation already in progress" then
    loop.watch(st.sock:getfd(), "write", nil)
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
  st.sock = ip:find(":", 1, true) and socket.tcp6() or socket.tcp()
  st.sock:settimeout(0)
  local ok, err = st.sock:connect(ip, st.port)
  if ok then return obj:_connected() end
  if err ~= "timeout" then return connect_failed(obj, err) end
  loop.watch(st.sock:getfd(), "write", function() finish_connect(obj) end)
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
  if st.state ~= STATES.UNCONNECTED_STATE and st.state ~= STATES.BOUND_STATE then return end
  st.host, st.port = host, tonumber(port)
  st.open_mode = mode or OPEN_MODES.READ_WRITE_MODE
  set_state(obj, STATES.HOST_LOOKUP_STATE)
  lookup(obj, host)
end

function TM.disconnect(obj)
  local st = S[obj]
  if st.state == STATES.UNCONNECTED_STATE then return end
  if st.state ~= STATES.CONNECTED_STATE then return shut(obj) end
  if obj._closing_tls then obj:_closing_tls() end
  set_state(obj, STATES.CLOSING_STATE)
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

for _, m in ipairs({ "connect", "disconnect", "abort", "bind" }) do add_async(Tcp, m) end

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
  if not st.sock or st.state ~= STATES.CONNECTED_STATE then return "" end
  return (select(1, st.sock:getpeername())) or ""
end
TG.remote_port = function(obj)
  local st = S[obj]
  if not st.sock or st.state ~= STATES.CONNECTED_STATE then return 0 end
  return tonumber((select(2, st.sock:getpeername()))) or 0
end

function Tcp.public.new()
  local obj = new_object(Tcp)
  S[obj] = new_state()
  return obj
end

-- Wraps an accepted LuaSocket connection.
local function adopt(c, sock)
  local obj = new_object(c)
  local st = new_state()
  st.sock = sock
  st.open_mode = OPEN_MODES.READ_WRITE_MODE
  S[obj] = st
  return obj
end

-- SslEncoding, SslCertificate, SslKey ---------------------------------------------------------

local SslEncoding = { PEM = 0, DER = 1 }

local Cert = class("SslCertificate")
function Cert.public.new(encoded, format)
  local obj = new_object(Cert)
  local x509 = require "ssl.x509"
  local c = type(encoded) == "string" and x509.load(encoded) or nil
  local is_pem = c and encoded:find("-----BEGIN", 1, true) ~= nil
  if c and is_pem ~= ((format or SslEncoding.PEM) == SslEncoding.PEM) then
    c = nil                              -- the data is not in the format given
  end
  S[obj] = { cert = c, encoded = c and c:pem() or nil }
  return obj
end
Cert.getters.null = function(obj) return S[obj].cert == nil end
function Cert.methods.to_pem(obj) return S[obj].encoded end

local Key = class("SslKey")
local KEY_ALGORITHMS = { RSA = 0, DSA = 1, EC = 2 }
local KEY_TYPES = { PUBLIC = 0, PRIVATE = 1 }
for k, v in pairs(KEY_ALGORITHMS) do Key.consts[k] = v end
for k, v in pairs(KEY_TYPES) do Key.consts[k] = v end

local key_ids = { [0] = K.EVP_PKEY_RSA, [1] = K.EVP_PKEY_DSA, [2] = K.EVP_PKEY_EC }

function Key.public.new(encoded, algorithm, format, kind)
  local obj = new_object(Key)
  local pem
  if type(encoded) == "string" and (kind or KEY_TYPES.PRIVATE) == KEY_TYPES.PRIVATE then
    local bio = crypto.BIO_new_mem_buf(encoded, #encoded)
    local pkey = crypto.PEM_read_bio_PrivateKey(bio, nil, lib.password_cb(), nil)
    crypto.BIO_free(bio)
    if pkey ~= nil then
      local id = crypto.EVP_PKEY_get_base_id(pkey)
      if algorithm == nil or key_ids[algorithm] == id then pem = encoded end
      crypto.EVP_PKEY_free(pkey)
    end
    lib.clear_errors()
  end
  S[obj] = { pem = pem }
  return obj
end
-- PEM_read_bio_PrivateKey may call the password callback, a LuaJIT callback
-- without the shim: never from compiled code ("bad callback").
jit.off(Key.public.new)
Key.getters.null = function(obj) return S[obj].pem == nil end

-- SslConfiguration ------------------------------------------------------------------------------

local Config = class("SslConfiguration")

function Config.public.new()
  local obj = new_object(Config)
  S[obj] = { ca = {}, chain = {}, peer_verify_mode = VERIFY.AUTO_VERIFY_PEER }
  return obj
end

function Config.methods.add_ca_certificate(obj, cert)
  if not instance_of(cert, Cert) then
    argerror(2, "add_ca_certificate", "net.SslCertificate expected, got " .. typename(cert))
  end
  local cst = S[cert]
  if cst and cst.cert then
    table.insert(S[obj].ca, cst.encoded)
    S[obj].contexts = nil                -- rebuilt at the next handshake
  end
end

-- read/write properties live in the state, through __newindex
local CONFIG_FIELDS = { local_certificate = true, local_certificate_chain = true,
                        private_key = true, peer_verify_mode = true }
local function certificates(v)
  if type(v) ~= "table" then return false end
  for _, c in ipairs(v) do if not instance_of(c, Cert) then return false end end
  return true
end
Config.mt.__newindex = function(obj, k, v)
  if CONFIG_FIELDS[k] then
    if k == "peer_verify_mode" and not verify_mode_ok(v) then
      badvalue(k, v, "VERIFY_NONE, QUERY_PEER, VERIFY_PEER or AUTO_VERIFY_PEER")
    elseif k == "local_certificate" and v ~= nil and not instance_of(v, Cert) then
      badvalue(k, v, "net.SslCertificate")
    elseif k == "private_key" and v ~= nil and not instance_of(v, Key) then
      badvalue(k, v, "net.SslKey")
    elseif k == "local_certificate_chain" and v ~= nil and not certificates(v) then
      badvalue(k, v, "a table of net.SslCertificate")
    end
    S[obj][k] = v
    S[obj].contexts = nil                -- rebuilt at the next handshake
  else
    rawset(obj, k, v)
  end
end
for k in pairs(CONFIG_FIELDS) do Config.getters[k] = function(obj) return S[obj][k] end end

-- An engine context from a configuration for `role`; nil and a message on bad
-- user data (certificate, key).
local build_context

-- The context for a configuration, built once per configuration state (loading
-- the system CA store is the costly part) and shared by its sockets.
local default_contexts = {}
local function context_for(cfg, role, verify_mode)
  local cache
  if cfg then
    S[cfg].contexts = S[cfg].contexts or {}
    cache = S[cfg].contexts
  else
    cache = default_contexts
  end
  local key = role .. verify_mode
  if not cache[key] then
    local e, err = build_context(cfg, role, verify_mode)
    if not e then return nil, err end
    cache[key] = e
  end
  return cache[key]
end

function build_context(cfg, role, verify_mode)
  local cs = cfg and S[cfg] or { ca = {}, chain = {} }
  local e = engine.new(role, K.TLS1_2_VERSION, 0)
  if not e then return nil, "cannot create an SSL context" end
  if cs.local_certificate or cs.private_key then
    local cert = cs.local_certificate and S[cs.local_certificate]
    local key = cs.private_key and S[cs.private_key]
    if not cert or not cert.cert or not key or not key.pem then
      return nil, "Cannot provide a certificate with no key"
    end
    local chain = { cert.encoded }
    for _, c in ipairs(cs.local_certificate_chain or {}) do
      if S[c] and S[c].encoded then chain[#chain + 1] = S[c].encoded end
    end
    local loaded, why = e:use_certificate_chain_pem(table.concat(chain))
    if not loaded then     -- Qt's text, with OpenSSL's reason (e.g. "ee key too small")
      return nil, why and "Error loading local certificate, " .. why or "Invalid or empty certificate"
    end
    local keyed, kwhy = e:use_key_pem(key.pem)
    if not keyed then     -- Qt's text, with OpenSSL's reason (e.g. "key values mismatch")
      return nil, kwhy and "Error loading private key, " .. kwhy or "Invalid or empty private key"
    end
    if not e:check_private_key() then return nil, "Private key does not certify public key" end
  end
  if verify_mode ~= VERIFY.VERIFY_NONE then
    -- Qt's CA list: the system store plus the added certificates.  Neither
    -- failing is user data at fault: without anchors the handshake fails
    -- verification with Qt's text
    policy.trust(e, { ca_pem = #cs.ca > 0 and table.concat(cs.ca) or nil, system = true })
  end
  if role == "server" then
    -- a server that asks for certificates cannot resume a session (TLS 1.3
    -- ticket, TLS 1.2 renegotiation) without a session id context: OpenSSL
    -- fails the handshake with "session id context uninitialized"
    e:set_session_id_context("ljssl net")
  end
  if verify_mode == VERIFY.VERIFY_PEER then
    e:set_verify(role == "server"
      and bit.bor(K.SSL_VERIFY_PEER, K.SSL_VERIFY_FAIL_IF_NO_PEER_CERT) or K.SSL_VERIFY_PEER)
  elseif verify_mode == VERIFY.QUERY_PEER then
    -- ask for a certificate, accept whatever comes (the result stays readable)
    e:set_verify(K.SSL_VERIFY_PEER)
    e:set_verify_ext(require("ljssl.engine.callbacks").VERIFY_CONTINUE, 0)
  end
  return e
end

-- SslSocket -------------------------------------------------------------------------------------

local Ssl = class("SslSocket", Tcp)
for k, v in pairs(MODES) do Ssl.consts[k] = v end
for k, v in pairs(VERIFY) do Ssl.consts[k] = v end
local LM, LG = Ssl.methods, Ssl.getters

local cipherbuf = ffi.new("uint8_t[65536]")

local function set_mode(obj, mode)
  local st = S[obj]
  if st.mode == mode then return end
  st.mode = mode
  fire(obj, "mode_changed_handler", mode)
end

-- Moves ciphertext the session produced to the socket's output.
local function pump_out(obj)
  local st = S[obj]
  if not st.tls then return end
  -- one concatenation: appending chunk by chunk copied the whole output once
  -- per 64 KiB (a 32 MiB write_string held the loop for seconds)
  local parts
  while true do
    local n = st.tls:drain(cipherbuf, 65536)
    if n == 0 then break end
    parts = parts or { st.out }
    parts[#parts + 1] = ffi.string(cipherbuf, n)
  end
  if parts then st.out = table.concat(parts) end
  flush(obj)
end

local function handshake_failed(obj, text)
  set_error(obj, ERRORS.SSL_HANDSHAKE_FAILED_ERROR, text)
  pump_out(obj)         -- the alert, if any
  shut(obj)
end

-- Writes what was queued before encryption, through the session.
-- What the session cannot take yet waits in st.plain: during a TLS 1.2
-- renegotiation SSL_write wants the peer's next handshake message first
-- (WANT_READ); drain_plain writes it once more ciphertext has come in.
local function write_plain(obj, data)
  local st = S[obj]
  local all = st.plain .. data
  local off = 0
  while off < #all do
    local n = st.tls:write(ffi.cast("const char *", all) + off, #all - off)
    if n <= 0 then
      if n ~= session.WANT_READ and n ~= session.WANT_WRITE then
        st.plain = ""
        pump_out(obj)
        return off > 0 and off or -1
      end
      break
    end
    off = off + n
  end
  st.plain = all:sub(off + 1)
  pump_out(obj)
  if off > 0 then fire(obj, "bytes_written_handler", off) end
  return #data
end

local function drain_plain(obj)
  local st = S[obj]
  local got = false
  while st.tls do
    local n, msg = st.tls:read(cipherbuf, 65536)
    if n > 0 then
      st.rbuf:putcdata(cipherbuf, n)
      got = true
    else
      if n == session.CLOSED or n == session.EOF then
        if got then fire(obj, "ready_read_handler") end
        return obj:_remote_closed()
      elseif n ~= session.WANT_READ and n ~= session.WANT_WRITE then
        set_error(obj, ERRORS.SSL_INTERNAL_ERROR, "Error while reading: " .. tostring(msg))
        return shut(obj)
      end
      break
    end
  end
  if st.tls and #st.plain > 0 then write_plain(obj, "") end
  pump_out(obj)
  if got then fire(obj, "ready_read_handler") end
end

local function step_handshake(obj)
  local st = S[obj]
  local status, msg = st.tls:handshake()
  pump_out(obj)
  st = S[obj]
  if not st.tls then return end
  if status == session.DONE then
    -- the host name: checked by OpenSSL during the handshake (set_host)
    st.encrypted = true
    fire(obj, "encrypted_handler")
    st = S[obj]
    if st.tls and #st.queued > 0 then
      local q = st.queued
      st.queued = ""
      write_plain(obj, q)
    end
    if st.tls then drain_plain(obj) end
  elseif status ~= session.WANT_READ and status ~= session.WANT_WRITE then
    local text = msg
    if msg == "certificate verify failed" then
      local r = tonumber(C.SSL_get_verify_result(st.tls.ptr))
      text = VERIFY_TEXT[r] or ffi.string(crypto.X509_verify_cert_error_string(r))
    elseif msg == "peer did not return a certificate" then
      text = "The peer did not present any certificate"     -- Qt's NoPeerCertificate
    else
      text = "Error during SSL handshake: " .. tostring(msg)
    end
    handshake_failed(obj, text)
  end
end

function LM._incoming(obj, data)
  local st = S[obj]
  if not st.tls then return TM._incoming(obj, data) end
  st.tls:feed(data, #data)
  if not st.encrypted then return step_handshake(obj) end
  drain_plain(obj)
end

-- A peer that goes away mid-handshake is, as in Qt, RemoteHostClosedError
-- (the transport's error), not SslHandshakeFailedError: no TLS failure was seen.
function LM._remote_closed(obj)
  TM._remote_closed(obj)
end

function LM._write(obj, data)
  local st = S[obj]
  if (st.encrypt_on_connect or st.mode ~= MODES.UNENCRYPTED_MODE) and not st.encrypted then
    st.queued = st.queued .. data        -- until encrypted, as Pharos documents
    return #data
  end
  if st.tls then
    if st.state ~= STATES.CONNECTED_STATE then return -1 end
    return write_plain(obj, data)
  end
  return TM._write(obj, data)
end

function LM._pending_write(obj)
  local st = S[obj]
  return #st.out + #st.queued + #(st.plain or "")
end

-- Starts TLS on the connected socket in `role`.
local function begin_tls(obj, role)
  local st = S[obj]
  local mode = st.peer_verify_mode or (st.configuration and S[st.configuration].peer_verify_mode)
    or VERIFY.AUTO_VERIFY_PEER
  if mode == VERIFY.AUTO_VERIFY_PEER then
    mode = role == "client" and VERIFY.VERIFY_PEER or VERIFY.QUERY_PEER
  end
  local e, err = context_for(st.configuration, role, mode)
  if not e then
    set_error(obj, ERRORS.SSL_INVALID_USERDATA_ERROR, err)
    return shut(obj)
  end
  local s = session.new(e, role == "server")
  s:use_memory()
  st.tls, st.encrypted, st.plain = s, false, ""
  if role == "client" then
    -- SNI and the host check by the engine's policy; only VERIFY_PEER checks
    -- the name (QUERY_PEER accepts whatever certificate comes)
    local host = st.host or ""
    local check = mode == VERIFY.VERIFY_PEER and host ~= "" and (st.verify_name or host)
    if not policy.session(s, { host = host, verify_name = check }) then
      return handshake_failed(obj, "The host name did not match any of the valid hosts for this certificate")
    end
  end
  set_mode(obj, role == "client" and MODES.SSL_CLIENT_MODE or MODES.SSL_SERVER_MODE)
  step_handshake(obj)
end

function LM._starting_encryption(obj)
  if S[obj].encrypt_on_connect then begin_tls(obj, "client") end
end

function LM._closing_tls(obj)
  local st = S[obj]
  if st.tls and st.encrypted then
    st.tls:shutdown()
    pump_out(obj)
  end
end

function LM.connect_encrypted(obj, host, port, mode)
  if type(host) ~= "string" then argerror(2, "connect_encrypted", "string expected, got " .. typename(host)) end
  if optport(port, 3, "connect_encrypted") == nil then
    argerror(3, "connect_encrypted", "port expected, got no value")
  end
  S[obj].encrypt_on_connect = true
  TM.connect(obj, host, port, mode)
end

function LM.start_client_encryption(obj)
  local st = S[obj]
  if st.state ~= STATES.CONNECTED_STATE or st.mode ~= MODES.UNENCRYPTED_MODE then return end
  begin_tls(obj, "client")
end

for _, m in ipairs({ "connect_encrypted", "start_client_encryption" }) do add_async(Ssl, m) end

LG.encrypted = function(obj) return S[obj].encrypted == true end
LG.mode = function(obj) return S[obj].mode end
LG.configuration = function(obj) return S[obj].configuration end
LG.peer_verify_mode = function(obj)
  local st = S[obj]
  return st.peer_verify_mode or VERIFY.AUTO_VERIFY_PEER
end
-- extensions (Qt has them; Pharos does not document them)
LG.session_protocol = function(obj)
  local st = S[obj]
  return st.tls and st.encrypted and ffi.string(C.SSL_get_version(st.tls.ptr)) or nil
end
LG.session_cipher = function(obj)
  local st = S[obj]
  if not (st.tls and st.encrypted) then return nil end
  return ffi.string(C.SSL_CIPHER_get_name(C.SSL_get_current_cipher(st.tls.ptr)))
end

Ssl.mt.__newindex = function(obj, k, v)
  if k == "configuration" then
    if v ~= nil and not instance_of(v, Config) then badvalue(k, v, "net.SslConfiguration") end
    S[obj][k] = v
  elseif k == "peer_verify_mode" then
    if not verify_mode_ok(v) then badvalue(k, v, "VERIFY_NONE, QUERY_PEER, VERIFY_PEER or AUTO_VERIFY_PEER") end
    S[obj][k] = v
  else rawset(obj, k, v) end
end

local function ssl_state()
  local st = new_state()
  st.queued = ""
  return st
end

function Ssl.public.new()
  local obj = new_object(Ssl)
  S[obj] = ssl_state()
  return obj
end

-- TcpServer, SslServer ---------------------------------------------------------------------------

local Server = class("TcpServer")
local VM, VG = Server.methods, Server.getters

local function accept_ready(server)
  local st = S[server]
  while st.listening and not st.paused and #st.pending < st.max_pending do
    local c = st.sock:accept()
    if not c then break end
    server:_accepted(c)
  end
  if st.sock then
    loop.watch(st.sock:getfd(), "read",
      (st.listening and not st.paused and #st.pending < st.max_pending)
      and function() accept_ready(server) end or nil)
  end
end

function VM._accepted(server, c)
  local st = S[server]
  local conn = adopt(Tcp, c)
  st.pending[#st.pending + 1] = conn
  conn:_connected()
  fire(server, "new_connection_handler")
end

-- listen(port[, address]): address defaults to all interfaces.
function VM.listen(server, port, address)
  local st = S[server]
  port = optport(port, 2, "listen")
  if address ~= nil and type(address) ~= "string" then
    argerror(3, "listen", "string expected, got " .. type(address))
  end
  local sock, err = socket.bind(address or "0.0.0.0", port or 0, 511)
  if not sock then st.error_string = err; return false end
  sock:settimeout(0)
  st.sock, st.listening = sock, true
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
  drop_socket(st)
  st.listening = false
end

for _, m in ipairs({ "listen", "pause_accepting", "resume_accepting", "next_pending_connection", "close" }) do
  add_async(Server, m)
end

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
    if not pending_ok(v) then badvalue(k, v, "a number >= 0") end
    S[server].max_pending = v
  else rawset(server, k, v) end
end

local function server_state()
  return { pending = {}, max_pending = 30 }
end

function Server.public.new()
  local server = new_object(Server)
  S[server] = server_state()
  return server
end

local SslServer = class("SslServer", Server)

-- A TLS connection joins the pending list once its handshake is done; a failed
-- handshake goes to accept_error_handler.
function SslServer.methods._accepted(server, c)
  local conn = adopt(Ssl, c)
  local st = S[conn]
  st.queued = ""
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
      set_error(conn, ERRORS.SOCKET_TIMEOUT_ERROR)
      shut(conn)
    end)
  end
  conn:_connected()
  begin_tls(conn, "server")
end

function SslServer.methods.next_pending_secure_connection(server)
  local conn = VM.next_pending_connection(server)
  if conn then S[server].handshaking[conn] = nil end
  return conn
end
add_async(SslServer, "next_pending_secure_connection")

SslServer.mt.__newindex = function(server, k, v)
  if k == "configuration" then
    if v ~= nil and not instance_of(v, Config) then badvalue(k, v, "net.SslConfiguration") end
    S[server].configuration = v
  elseif k == "max_pending_connections" then
    if not pending_ok(v) then badvalue(k, v, "a number >= 0") end
    S[server].max_pending = v
  elseif k == "handshake_timeout" then
    if type(v) ~= "number" or v ~= v then badvalue(k, v, "milliseconds") end
    S[server].handshake_timeout = v
  else rawset(server, k, v) end
end
SslServer.getters.configuration = function(server) return S[server].configuration end
-- milliseconds, as Qt's QSslServer (default 5000); 0 or less: no limit
SslServer.getters.handshake_timeout = function(server) return S[server].handshake_timeout end

function SslServer.public.new()
  local server = new_object(SslServer)
  local st = server_state()
  st.handshaking = {}                 -- strong references while handshaking
  st.handshake_timeout = 5000
  S[server] = st
  return server
end

-- UdpSocket -----------------------------------------------------------------------------------------

local Udp = class("UdpSocket")
for k, v in pairs(ERRORS) do Udp.consts[k] = v end
for k, v in pairs(STATES) do Udp.consts[k] = v end
local UM, UG = Udp.methods, Udp.getters

local function udp_readable(obj)
  local st = S[obj]
  if not st.sock then return end
  local data, ip, port = st.sock:receivefrom()
  if data then
    st.datagrams[#st.datagrams + 1] = { data = data, ip = ip, port = port }
    fire(obj, "ready_read_handler")
  end
end

-- bind(port[, address]): address defaults to all interfaces.
function UM.bind(obj, port, address)
  local st = S[obj]
  port = optport(port, 2, "bind")
  if address ~= nil and type(address) ~= "string" then
    argerror(3, "bind", "string expected, got " .. type(address))
  end
  local sock = socket.udp()
  local ok, err = sock:setsockname(address or "0.0.0.0", port or 0)
  if not ok then
    sock:close()
    st.error, st.error_string = ERRORS.ADDRESS_IN_USE_ERROR, err
    fire(obj, "error_handler", ERRORS.ADDRESS_IN_USE_ERROR)
    return false
  end
  sock:settimeout(0)
  st.sock = sock
  loop.watch(sock:getfd(), "read", function() udp_readable(obj) end)
  st.state = STATES.BOUND_STATE
  fire(obj, "state_changed_handler", STATES.BOUND_STATE)
  return true
end

function UM.close(obj)
  local st = S[obj]
  drop_socket(st)
  if st.state ~= STATES.UNCONNECTED_STATE then
    st.state = STATES.UNCONNECTED_STATE
    fire(obj, "state_changed_handler", STATES.UNCONNECTED_STATE)
  end
end

local function datagram(obj, as_bytes)
  local d = table.remove(S[obj].datagrams, 1)
  if not d then return { valid = false } end
  return { valid = true, data = as_bytes and bytes_of(d.data) or d.data,
           sender_address = d.ip, sender_port = tonumber(d.port) }
end

function UM.read_datagram_string(obj) return datagram(obj, false) end
function UM.read_datagram_bytes(obj) return datagram(obj, true) end

function UM.write_datagram_string(obj, data, host, port)
  local st = S[obj]
  if type(data) ~= "string" then argerror(2, "write_datagram_string", "string expected, got " .. typename(data)) end
  if type(host) ~= "string" then argerror(3, "write_datagram_string", "string expected, got " .. typename(host)) end
  port = optport(port, 4, "write_datagram_string")
  if port == nil then argerror(4, "write_datagram_string", "port expected, got no value") end
  if not st.sock then
    local sock = socket.udp()
    sock:settimeout(0)
    st.sock = sock
    loop.watch(sock:getfd(), "read", function() udp_readable(obj) end)
  end
  local ok = st.sock:sendto(data, host, port)
  if not ok then return -1 end
  fire(obj, "bytes_written_handler", #data)
  return #data
end

function UM.write_datagram_bytes(obj, t, host, port)
  return UM.write_datagram_string(obj, string_of(checkbytes(t, "write_datagram_bytes")), host, port)
end

local function membership(obj, option, group, fname)
  if type(group) ~= "string" then argerror(2, fname, "string expected, got " .. typename(group), 4) end
  local st = S[obj]
  if not st.sock then return false end
  -- LuaSocket raises for an address it cannot parse: a false result here
  local ok, result = pcall(st.sock.setoption, st.sock, option, { multiaddr = group, interface = "0.0.0.0" })
  return ok and result == 1
end

function UM.join_multicast_group(obj, group)
  local ok = membership(obj, "ip-add-membership", group, "join_multicast_group")
  return ok
end
function UM.leave_multicast_group(obj, group)
  local ok = membership(obj, "ip-drop-membership", group, "leave_multicast_group")
  return ok
end

for _, m in ipairs({ "bind", "close", "read_datagram_string", "read_datagram_bytes",
                     "write_datagram_string", "write_datagram_bytes",
                     "join_multicast_group", "leave_multicast_group" }) do
  add_async(Udp, m)
end

UG.has_pending_datagrams = function(obj) return #S[obj].datagrams > 0 end
UG.pending_datagram_size = function(obj)
  local d = S[obj].datagrams[1]
  return d and #d.data or -1
end
UG.state = function(obj) return S[obj].state end
UG.error = function(obj) return S[obj].error end
UG.error_string = function(obj) return S[obj].error_string or "" end
UG.local_port = function(obj)
  local st = S[obj]
  return st.sock and tonumber((select(2, st.sock:getsockname()))) or 0
end

function Udp.public.new()
  local obj = new_object(Udp)
  S[obj] = { datagrams = {}, state = STATES.UNCONNECTED_STATE, error = ERRORS.UNKNOWN_ERROR }
  return obj
end

-- Every public method checks its object first: obj.method() instead of
-- obj:method(), or another class's object, raises a clear error instead of
-- failing inside.
for _, c in ipairs({ Stream, Tcp, Ssl, Server, SslServer, Udp, Config, Cert, Key }) do
  for name, fn in pairs(c.methods) do          -- the class's own methods
    if type(fn) == "function" and name:sub(1, 1) ~= "_" then
      c.methods[name] = function(obj, ...)
        if not instance_of(obj, c) then
          error(("bad argument #1 to '%s' (net.%s expected, got %s)"):format(name, c.name, typename(obj)), 2)
        end
        return fn(obj, ...)
      end
    end
  end
end

-- The namespace ------------------------------------------------------------------------------------

net.Stream = Stream.public
net.TcpSocket = Tcp.public
net.SslSocket = Ssl.public
net.TcpServer = Server.public
net.SslServer = SslServer.public
net.UdpSocket = Udp.public
net.SslConfiguration = Config.public
net.SslCertificate = Cert.public
net.SslKey = Key.public
net.SslEncoding = SslEncoding

return net
