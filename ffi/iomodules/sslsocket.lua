-- iomodules.sslsocket — net.SslSocket: the TLS adapter between a TcpSocket's
-- I/O and the engine pump (ljssl.engine.pump).  Ciphertext the socket reads
-- goes to pump:incoming; the pump decrypts straight into the stream's read
-- buffer (pump:read(st.rbuf)); writes go through pump:write, which keeps what
-- a renegotiation makes wait; the socket sends from pump:outgoing()/sent(n).
-- Here: Qt's handshake order and texts (mode_changed, encrypted, the
-- QSslError words for verification failures), writes queued until encrypted,
-- STARTTLS, and the session facts (protocol, cipher) asked of the session.

local strbuf = require "string.buffer"
local pump_lib = require "ljssl.engine.pump"
local session = require "ljssl.engine.session"
local policy = require "ljssl.engine.policy"
local lib = require "ljssl.lib"
local kit = require "iomodules.kit"
local tcp = require "iomodules.tcp"
local sslconfig = require "iomodules.sslconfig"

local K = lib.K
local S, fire = kit.S, kit.fire
local ERRORS, STATES, MODES, VERIFY = kit.ERRORS, kit.STATES, kit.MODES, kit.VERIFY
local set_error, shut, flush, plain = tcp.set_error, tcp.shut, tcp.flush, tcp.plain
local DONE, WANT_READ, WANT_WRITE = session.DONE, session.WANT_READ, session.WANT_WRITE
local CLOSED, EOF = session.CLOSED, session.EOF
local CONNECTED = STATES.CONNECTED_STATE
local UNENCRYPTED = MODES.UNENCRYPTED_MODE

local sslsocket = {}

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

local Ssl = kit.class("SslSocket", tcp.Tcp)
kit.constants(Ssl, MODES, VERIFY)
local LM, LG = Ssl.methods, Ssl.getters

local function set_mode(obj, mode)
  local st = S[obj]
  if st.mode == mode then return end
  st.mode = mode
  fire(obj, "mode_changed_handler", mode)
end

local function handshake_failed(obj, text)
  set_error(obj, ERRORS.SSL_HANDSHAKE_FAILED_ERROR, text)
  flush(obj)            -- the alert, if any
  shut(obj)
end

-- Encrypts data through the pump and sends what it gives.  bytes_written
-- fires for the plaintext the session took: the pump keeps what a TLS 1.2
-- renegotiation makes wait (SSL_write wanting the peer's next message) and
-- writes it after the next read.
local function write_plain(obj, st, data)
  local pump = st.pump
  local len = #data
  local before = pump:pending_plain()
  local n = pump:write(data, len)
  flush(obj)
  if n < 0 then return -1 end
  if n < len then return n end           -- the session failed after taking part of it
  local taken = before + len - pump:pending_plain()
  if taken > 0 then fire(obj, "bytes_written_handler", taken) end
  return len
end

-- Decrypts everything the session can give into the read buffer; then what
-- waited for the peer is written, and the handlers run: all but the last
-- ready_read here, which the caller fires when drain answers the object
-- (tcp's on_readable; see there why).
local function drain(obj)
  local st = S[obj]
  local pump = st.pump
  local before = pump:pending_plain()
  local got, status, msg = pump:read(st.rbuf)
  if got > 0 then tcp.appended(st) end
  if status == CLOSED or status == EOF then
    if got > 0 then fire(obj, "ready_read_handler") end
    tcp.remote_closed(obj)
    return nil
  elseif status ~= WANT_READ and status ~= WANT_WRITE then
    set_error(obj, ERRORS.SSL_INTERNAL_ERROR, "Error while reading: " .. tostring(msg))
    shut(obj)
    return nil
  end
  local taken = 0
  if before > 0 then
    -- pump:read retried the waiting plaintext before reading; once more now,
    -- after what the reads took in
    if pump:pending_plain() > 0 then pump:write("", 0) end
    taken = before - pump:pending_plain()
  end
  flush(obj)
  if taken > 0 then fire(obj, "bytes_written_handler", taken) end
  if got > 0 then return obj end
end

local function drain_now(obj)
  if drain(obj) then fire(obj, "ready_read_handler") end
end

local function step_handshake(obj)
  local st = S[obj]
  local status, msg = st.pump:handshake()
  flush(obj)
  if not st.pump then return end
  if status == DONE then
    -- the host name: checked by OpenSSL during the handshake (set_host)
    st.encrypted = true
    fire(obj, "encrypted_handler")
    if st.pump and #st.queued > 0 then write_plain(obj, st, st.queued:get()) end
    if st.pump then drain_now(obj) end
  elseif status ~= WANT_READ and status ~= WANT_WRITE then
    local text
    if msg == "certificate verify failed" then
      local code, why = st.tls:verify_result()
      text = VERIFY_TEXT[code] or why
    elseif msg == "peer did not return a certificate" then
      text = "The peer did not present any certificate"     -- Qt's NoPeerCertificate
    else
      text = "Error during SSL handshake: " .. tostring(msg)
    end
    handshake_failed(obj, text)
  end
end

-- Writes before encryption wait in st.queued, as Pharos documents (after
-- connect_encrypted, or once TLS has begun).
local function ssl_write(obj, st, data)
  if (st.encrypt_on_connect or st.mode ~= UNENCRYPTED) and not st.encrypted then
    st.queued:put(data)
    return #data
  end
  if st.pump then
    if st.state ~= CONNECTED then return -1 end
    return write_plain(obj, st, data)
  end
  return plain.write(obj, st, data)
end

local begin_tls

-- An SslSocket before TLS: the plain transport, with the queue and STARTTLS.
local unencrypted = {
  write = ssl_write,
  pending = function(st) return #st.out + #st.queued end,
  connected = function(obj, st) if st.encrypt_on_connect then begin_tls(obj, "client") end end,
}
for k, fn in pairs(plain) do
  if unencrypted[k] == nil then unencrypted[k] = fn end
end

-- The TLS transport.  Plaintext the socket had not sent when TLS began
-- (STARTTLS) goes out before the first ciphertext.
local encrypted = {
  write = ssl_write,
  incoming = function(obj, st, p, n)
    st.pump:incoming(p, n)
    if not st.encrypted then return step_handshake(obj) end
    return drain(obj)
  end,
  pending = function(st) return #st.out + #st.queued + st.pump:outgoing_size() + st.pump:pending_plain() end,
  outgoing = function(st)
    if #st.out > 0 then return st.out:ref() end
    return st.pump:outgoing()
  end,
  sent = function(st, n)
    if #st.out > 0 then st.out:skip(n) else st.pump:sent(n) end
  end,
  closing = function(obj, st)
    if st.encrypted then
      st.pump:shutdown()
      flush(obj)
    end
  end,
  release = function(st)
    st.tls:free()
    st.tls, st.pump, st.io = nil, nil, st.base_io
  end,
}

-- Starts TLS on the connected socket in `role`.
function begin_tls(obj, role)
  local st = S[obj]
  local mode = st.peer_verify_mode or sslconfig.verify_mode(st.configuration) or VERIFY.AUTO_VERIFY_PEER
  if mode == VERIFY.AUTO_VERIFY_PEER then
    mode = role == "client" and VERIFY.VERIFY_PEER or VERIFY.QUERY_PEER
  end
  local e, err = sslconfig.context_for(st.configuration, role, mode)
  if not e then
    set_error(obj, ERRORS.SSL_INVALID_USERDATA_ERROR, err)
    shut(obj)
    return nil
  end
  local s = session.new(e, role == "server")
  local p = s and pump_lib.new(s)
  if not p then
    if s then s:free() end
    set_error(obj, ERRORS.SSL_INTERNAL_ERROR, "cannot create an SSL session")
    shut(obj)
    return nil
  end
  st.tls, st.pump, st.io, st.encrypted = s, p, encrypted, false
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
sslsocket.begin_tls = begin_tls

function LM.connect_encrypted(obj, host, port, mode)
  if type(host) ~= "string" then
    kit.argerror(2, "connect_encrypted", "string expected, got " .. kit.typename(host))
  end
  if kit.optport(port, 3, "connect_encrypted") == nil then
    kit.argerror(3, "connect_encrypted", "port expected, got no value")
  end
  S[obj].encrypt_on_connect = true
  tcp.Tcp.methods.connect(obj, host, port, mode)
end

function LM.start_client_encryption(obj)
  local st = S[obj]
  if st.state ~= CONNECTED or st.mode ~= UNENCRYPTED then return end
  begin_tls(obj, "client")
end

kit.add_async(Ssl, { "connect_encrypted", "start_client_encryption" })

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
  return st.tls and st.encrypted and st.tls:protocol() or nil
end
LG.session_cipher = function(obj)
  local st = S[obj]
  if not (st.tls and st.encrypted) then return nil end
  return (st.tls:cipher())
end

Ssl.mt.__newindex = function(obj, k, v)
  if k == "configuration" then
    if v ~= nil and not kit.instance_of(v, sslconfig.Config) then kit.badvalue(k, v, "net.SslConfiguration") end
    S[obj][k] = v
  elseif k == "peer_verify_mode" then
    if not kit.verify_mode_ok(v) then kit.badvalue(k, v, "VERIFY_NONE, QUERY_PEER, VERIFY_PEER or AUTO_VERIFY_PEER") end
    S[obj][k] = v
  else rawset(obj, k, v) end
end

-- An SslSocket's state: a TcpSocket's, with the queue of writes made before
-- encryption.
local function new_state()
  local st = tcp.new_state(unencrypted)
  st.queued = strbuf.new()
  return st
end
sslsocket.new_state = new_state

function Ssl.public.new()
  local obj = kit.new_object(Ssl)
  S[obj] = new_state()
  return obj
end

kit.guard(Ssl)

sslsocket.Ssl = Ssl
return sslsocket
