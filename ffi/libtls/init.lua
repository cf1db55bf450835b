-- libtls — the lua-libtls API with libtls semantics, on ljssl's engine.
--
--   local tls = require "libtls"
--   local config = require "libtls.config"
--
-- Contexts are "client", "server" (builds its SSL_CTX at libtls.server) and
-- "server connection" (from accept_*).  Return conventions and error strings
-- follow lua-libtls 3.5 over libretls; deliberate differences are listed in
-- docs/libtls.md.

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"
local engine = require "ljssl.engine.context"
local session = require "ljssl.engine.session"
local names = require "ljssl.engine.names"
local x509 = require "ljssl.engine.cert"
local policy = require "ljssl.engine.policy"
local cb = require "ljssl.engine.callbacks"
local fdlib = require "ljssl.engine.fd"
local object = require "ljssl.engine.object"
local config = require "libtls.config"
local ocsp = require "libtls.ocsp"
local E = require "libtls.error"

local C, crypto, K, libc = lib.ssl, lib.crypto, lib.K, lib.libc
local ffi_string = ffi.string
local WANT_READ, WANT_WRITE, DONE = session.WANT_READ, session.WANT_WRITE, session.DONE
local CLOSED, EOF = session.CLOSED, session.EOF

local tls = {
  WANT_POLLIN = -2, WANT_POLLOUT = -3,
  TLS_API = 20200120,
  MAX_SESSION_ID_LENGTH = config.MAX_SESSION_ID_LENGTH,
  TICKET_KEY_SIZE = config.TICKET_KEY_SIZE,
  OCSP_CERT_GOOD = 0, OCSP_CERT_REVOKED = 1, OCSP_CERT_UNKNOWN = 2,
  OCSP_RESPONSE_SUCCESSFUL = 0, OCSP_RESPONSE_MALFORMED = 1, OCSP_RESPONSE_INTERNALERROR = 2,
  OCSP_RESPONSE_TRYLATER = 3, OCSP_RESPONSE_SIGREQUIRED = 4, OCSP_RESPONSE_UNAUTHORIZED = 5,
  CRL_REASON_UNSPECIFIED = 0, CRL_REASON_KEY_COMPROMISE = 1, CRL_REASON_CA_COMPROMISE = 2,
  CRL_REASON_AFFILIATION_CHANGED = 3, CRL_REASON_SUPERSEDED = 4,
  CRL_REASON_CESSATION_OF_OPERATION = 5, CRL_REASON_CERTIFICATE_HOLD = 6,
  CRL_REASON_REMOVE_FROM_CRL = 8, CRL_REASON_PRIVILEGE_WITHDRAWN = 9, CRL_REASON_AA_COMPROMISE = 10,
  ERROR = E.ERROR,
}
for k, v in pairs(config.PROTOCOLS) do tls[k] = v end
local WANT_POLLIN, WANT_POLLOUT = tls.WANT_POLLIN, tls.WANT_POLLOUT

local BUFSIZ = 8192

local class = object.class("libtls")
local methods, check = class.methods, class.check

-- Errors: the message is kept as the context's tls_error until the next call.
local function fail(st, op, msg)
  st.error = msg
  return E.new(op, msg)
end

-- Building an SSL_CTX from a config ------------------------------------------------------

local VERSIONS = {
  { tls.TLS_v10, K.TLS1_VERSION, K.SSL_OP_NO_TLSv1 },
  { tls.TLS_v11, K.TLS1_1_VERSION, K.SSL_OP_NO_TLSv1_1 },
  { tls.TLS_v12, K.TLS1_2_VERSION, K.SSL_OP_NO_TLSv1_2 },
  { tls.TLS_v13, K.TLS1_3_VERSION, K.SSL_OP_NO_TLSv1_3 },
}

-- True when `pem` holds a private key OpenSSL can read without a password.
local function readable_key(pem)
  local bio = crypto.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return false end
  local pkey = crypto.PEM_read_bio_PrivateKey(bio, nil, lib.password_cb(), nil)
  crypto.BIO_free(bio)
  lib.clear_errors()
  if pkey == nil then return false end
  crypto.EVP_PKEY_free(pkey)
  return true
end
jit.off(readable_key)        -- the password callback may run (and refuse)

local function use_keypair(e, kp)
  if not kp or not kp.cert then return nil, "private/public key mismatch" end
  if not e:use_certificate_chain_pem(kp.cert) then return nil, "failed to load certificate" end
  -- as libtls: a key that does not parse cannot be read; one that parses but
  -- does not go with the certificate cannot be loaded
  if kp.key and not readable_key(kp.key) then return nil, "failed to read private key" end
  if not kp.key or not e:use_key_pem(kp.key) then return nil, "failed to load private key" end
  if not e:check_private_key() then return nil, "private/public key mismatch" end
  return true
end

-- libtls's words for a trust anchor that would not load, by policy.trust's wish.
local CA_ERRORS = {
  ca_pem = "failed to load CA", capath = "failed to set CA path",
  system = "failed to load default CA paths",
}

local function configure_verify(e, cfg, server)
  -- as libtls (tls_configure_ssl_verify): the CA from memory, else the CA
  -- path, else the system store, loaded by the engine's policy as every
  -- face's; without certificate checks no CA or CRL is loaded.  (Loading the
  -- default CA file took 30 ms of every client connect, libretls none.)
  local anchors = { ca_pem = cfg.ca_mem, capath = not cfg.ca_mem and cfg.ca_path or nil }
  local ok, _, where = true, nil, nil
  if server then
    local mode = K.SSL_VERIFY_PEER
    if cfg.verify_client == 1 then mode = bit.bor(mode, K.SSL_VERIFY_FAIL_IF_NO_PEER_CERT) end
    e:set_verify(mode)
    if not cfg.verify_cert then e:set_verify_ext(cb.VERIFY_CONTINUE, 0) end
    if cfg.verify_cert then ok, _, where = policy.trust(e, anchors) end
  else
    anchors.verify = cfg.verify_cert
    ok, _, where = policy.context(e, anchors)
  end
  if not ok then return nil, CA_ERRORS[where] end
  if cfg.verify_cert and cfg.crl_mem and not e:add_crl_pem(cfg.crl_mem) then return nil, "failed to load CRL" end
  e:set_verify_depth(cfg.verify_depth)
  return true
end

-- The engine context for `cfg` (the config's state) as a client or a server,
-- using keypair `kp` for a server.  Returns it, or nil and libtls's message.
local function build(cfg, server, kp)
  local e = engine.new(server and "server" or "client")
  if not e then return nil, "ssl context failure" end
  local min, max, no = nil, nil, 0ULL
  for _, v in ipairs(VERSIONS) do
    if bit.band(cfg.protocols, v[1]) ~= 0 then
      min = min or v[2]
      max = v[2]
    else
      no = bit.bor(no, v[3])
    end
  end
  e:set_protocols(min or 0, max or 0)
  e:set_options(no)
  e:clear_mode(K.SSL_MODE_AUTO_RETRY)
  -- OpenSSL's record buffers (32 KiB) only while a record is in flight: a
  -- closed connection keeps its SSL until the collector finds it (libtls
  -- frees at tls_free), and the collector does not see OpenSSL's memory, so
  -- closed connections piled up holding their buffers (spec/load_spec.lua).
  -- Set on the context, every session made from it inherits it.
  e:set_mode(K.SSL_MODE_RELEASE_BUFFERS)
  e:set_session_cache_mode(K.SSL_SESS_CACHE_OFF)
  e:set_options(K.SSL_OP_NO_TICKET)
  if not e:set_cipher_list(cfg.ciphers) then return nil, "failed to set ciphers" end
  if cfg.ecdhecurves and not e:set_groups(cfg.ecdhecurves) then return nil, "failed to set ecdhe curves" end
  if not cfg.verify_time then e:set_verify_param_flags(K.X509_V_FLAG_NO_CHECK_TIME) end
  local ok, err
  if server then
    ok, err = use_keypair(e, kp)
    if not ok then return nil, err end
    if kp.ocsp and #kp.ocsp > 0 then e:set_ocsp_staple(kp.ocsp) end
    if cfg.alpn then e:set_alpn_select(cfg.alpn) end
    if cfg.prefer_server then e:set_options(K.SSL_OP_CIPHER_SERVER_PREFERENCE) end
    if cfg.dheparams == -1 then e:set_dh_auto(1)
    elseif cfg.dheparams == 1024 then e:set_dh_auto(2) end
    if cfg.verify_client ~= 0 then
      ok, err = configure_verify(e, cfg, true)
      if not ok then return nil, err end
    end
    if cfg.session_lifetime > 0 then
      e:set_session_timeout(cfg.session_lifetime)
      e:clear_options(K.SSL_OP_NO_TICKET)
      -- the config's keys rotate as libtls's: the newest encrypts, all decrypt,
      -- and keys added to the config later reach this context too
      if not config.follow_ticket_keys(cfg, e, cfg.session_lifetime) then
        return nil, "failed to set the TLS ticket callback"
      end
    end
    if not e:set_session_id_context(cfg.session_id) then return nil, "failed to set session id context" end
  else
    if cfg.alpn and not e:set_alpn_protos(cfg.alpn) then return nil, "failed to set alpn" end
    local k = cfg.keypairs[1]
    if k and k.cert then
      ok, err = use_keypair(e, k)
      if not ok then return nil, err end
    end
    ok, err = configure_verify(e, cfg, false)
    if not ok then return nil, err end
    if cfg.session_fd ~= -1 then e:clear_options(K.SSL_OP_NO_TICKET) end
  end
  return e
end

-- A client's engine context, kept per config while the config is unchanged.
-- libtls builds an SSL_CTX from the config at every connect; building one
-- (SSL_CTX_new, the cipher list, keys, CRL) cost about 1.2M instructions of a
-- resumed handshake's 5.6M.  A client engine is never changed after build (its
-- sessions are SSL objects of their own; OCSP only reads its store), so one
-- built from equal inputs can serve every connect: the inputs are compared
-- at each connect, which keeps libtls's "the config as it is at connect time".
-- The system store is an input when it is used (verify without a CA of the
-- config's own): ssl.set_system_ca or SSL_CERT_FILE/SSL_CERT_DIR may change it.
local trust = require "ljssl.engine.trust"

local function system_store(cfg)
  if not cfg.verify_cert or cfg.ca_mem or cfg.ca_path then return false end
  return tostring((trust.get())) .. "\0" .. tostring(os.getenv("SSL_CERT_DIR"))
end

-- Every config field build(cfg, false) reads, and the system store.
local CLIENT_INPUTS = { "protocols", "ciphers", "ecdhecurves", "verify_time", "alpn",
                        "verify_cert", "ca_mem", "ca_path", "crl_mem", "verify_depth" }

local function client_inputs_equal(c, cfg)
  for i = 1, #CLIENT_INPUTS do
    local k = CLIENT_INPUTS[i]
    if c[k] ~= cfg[k] then return false end
  end
  local kp = cfg.keypairs[1]
  -- a keypair table is changed in place by set_cert/set_key: compare its fields
  if c.kp ~= kp or (kp and (c.cert ~= kp.cert or c.key ~= kp.key)) then return false end
  return c.tickets == (cfg.session_fd ~= -1) and c.system == system_store(cfg)
end

local function client_engine(cfg)
  local c = cfg.client_engine
  if c and client_inputs_equal(c, cfg) then return c.engine end
  cfg.client_engine = nil
  local e, err = build(cfg, false)
  if not e then return nil, err end
  c = { engine = e, kp = cfg.keypairs[1], tickets = cfg.session_fd ~= -1, system = system_store(cfg) }
  for i = 1, #CLIENT_INPUTS do c[CLIENT_INPUTS[i]] = cfg[CLIENT_INPUTS[i]] end
  if c.kp then c.cert, c.key = c.kp.cert, c.kp.key end
  cfg.client_engine = c
  return e
end

-- Contexts -------------------------------------------------------------------------------

local function new_context(kind, cfg_obj)
  return class.new({ kind = kind, cfg = cfg_obj, fd = -1, owned = false, state = {} },
                   ffi.new("char[1]"))
end

-- A client's SSL_CTX is built at connect time, from the config as it is then.
function tls.client(cfg)
  config.check(cfg, "client")
  return new_context("client", cfg)
end

function tls.server(cfg)
  local cst = config.check(cfg, "server")
  local ctx = new_context("server", cfg)
  local st = class.state[ctx]
  local e, err = build(cst, true, cst.keypairs[1])
  if not e then return nil, fail(st, "server", err) end
  st.engine = e
  st.sni = {}
  for i = 2, #cst.keypairs do
    local extra
    extra, err = build(cst, true, cst.keypairs[i])
    if not extra then return nil, fail(st, "server", err) end
    st.sni[#st.sni + 1] = extra
  end
  return ctx
end

-- Connecting -----------------------------------------------------------------------------

local stat = ffi.new("struct ljssl_stat[1]")

-- The session file's last contents and their SSL_SESSION, kept per config
-- (cst.session_cache = { pem = string, sess = SSL_SESSION * }).  Decoding
-- the PEM (mostly the peer certificate's key) cost 1.6M instructions per
-- resumed handshake; the file is still read at every connect (another process
-- or the system libtls may have written it), and the bytes are compared: equal
-- bytes decode to the same session, so only changed contents are decoded.
-- After a save the cache holds the live session whose PEM was written (what a
-- decode of those bytes would give back), so resuming needs no decode at all.
-- The file read buffer is shared and grown as needed.
local file_buf, file_buf_size = nil, 0

-- Replaces the cache (pem and sess, or nothing); the old session's reference
-- is dropped at once rather than at a collection (a session holds the peer's
-- certificate, memory the Lua collector does not see).
local function set_session_cache(cst, pem, sess)
  local old = cst.session_cache
  cst.session_cache = pem and { pem = pem, sess = sess } or nil
  if old and old.sess ~= sess then C.SSL_SESSION_free(ffi.gc(old.sess, nil)) end
end

-- A session from its PEM bytes (an owned SSL_SESSION *), or nil.  The engine
-- hands sessions over and takes them back (Session:resumable_session,
-- offer_session); their file form is the face's.
local function session_from_pem(buf, size)
  local bio = crypto.BIO_new_mem_buf(buf, size)
  if bio == nil then lib.clear_errors(); return nil end
  local sess = lib.check(nil, C.PEM_read_bio_SSL_SESSION, bio, nil, nil, nil)
  crypto.BIO_free(bio)
  return sess and ffi.gc(sess, C.SSL_SESSION_free)
end

-- Reads the client's saved session (PEM) from its session fd, if any, and
-- offers it for resumption.  One pread into the shared buffer reads a file
-- smaller than it (a short read of a regular file is its end); only a file
-- that fills the buffer costs an fstat and a second read.
local function load_session(st, cst)
  local fd = cst.session_fd
  if fd == -1 then return end
  if file_buf == nil then file_buf, file_buf_size = ffi.new("char[?]", 8192), 8192 end
  local size = tonumber(libc.pread(fd, file_buf, file_buf_size, 0))
  if size == file_buf_size then
    if libc.ljssl_fstat(fd, stat) ~= 0 then return end
    size = tonumber(stat[0].st_size)
    if size > file_buf_size then file_buf, file_buf_size = ffi.new("char[?]", size), size end
    if libc.pread(fd, file_buf, size, 0) ~= size then return end
  end
  cst.session_size = size
  if size <= 0 then return end
  local pem = ffi_string(file_buf, size)
  local cached = cst.session_cache
  if not (cached and cached.pem == pem) then
    local sess = session_from_pem(file_buf, size)
    set_session_cache(cst, sess and pem, sess)      -- the cache's reference
    cached = cst.session_cache
  end
  if cached then st.s:offer_session(cached.sess) end  -- the SSL takes one of its own
end

-- Writes the client's session to its session fd once it can be resumed (in TLS
-- 1.3 that is after the server's ticket, which arrives after the handshake).
-- The bytes written and the session become the cache, so that the next
-- connect of this config needs no decode while the file keeps them.  The file
-- is cut to the new length after the write, and not at all when the read at
-- connect found it that long already (a session's PEM rarely changes length).
local function save_session(st)
  local cst = config.state[st.cfg]
  if st.kind ~= "client" or cst.session_fd == -1 or st.session_saved then return end
  local sess = st.s:resumable_session()
  if not sess then return end
  local pem = x509.bio_string(C.PEM_write_bio_SSL_SESSION, sess)
  if not pem then return end
  local fd, n = cst.session_fd, #pem
  if libc.pwrite(fd, pem, n, 0) == n and (cst.session_size == n or libc.ftruncate(fd, n) == 0) then
    st.session_saved, cst.session_size = true, n
    set_session_cache(cst, pem, sess)
  else
    cst.session_size = nil
    set_session_cache(cst, nil)  -- the file's contents are unknown now
  end
end

function methods.connect_fds(ctx, fdr, fdw, servername)
  local st = check(ctx, "connect_fds")
  fdr, fdw = E.checkinteger(fdr, 2), E.checkinteger(fdw, 3)
  servername = E.optstring(servername, 4)
  st.error = nil
  if st.kind ~= "client" then return false, fail(st, "connect_fds", "not a client context") end
  if fdr < 0 or fdw < 0 or fdr > 2147483647 or fdw > 2147483647 then return false, fail(st, "connect_fds", "invalid file descriptors") end
  local cst = config.state[st.cfg]
  if servername then servername = names.strip_dot(servername) end
  if cst.verify_name and not servername then
    return false, fail(st, "connect_fds", "server name not specified")
  end
  local e, err = client_engine(cst)
  if not e then return false, fail(st, "connect_fds", err) end
  local s = session.new(e, false)
  if not s then return false, fail(st, "connect_fds", "ssl connection failure") end
  s:set_fds(fdr, fdw)
  -- SNI by the engine's policy (never for IP literals); the name itself is
  -- checked after the handshake (try_handshake), as libtls does, so that a
  -- certificate error is reported before a name mismatch
  if not policy.session(s, { host = servername, verify_name = false }) then
    return false, fail(st, "connect_fds", "server name indication failure")
  end
  st.engine, st.s, st.servername, st.fd = e, s, servername, fdr
  st.state = { connected = true }
  s:request_ocsp_staple()                -- the server's OCSP staple
  load_session(st, cst)
  return true
end

function methods.connect_socket(ctx, fd, servername)
  check(ctx, "connect_socket")
  fd = E.checkinteger(fd, 2)
  servername = E.optstring(servername, 3)
  local ok, err = methods.connect_fds(ctx, fd, fd, servername)
  if not ok then err.op = "connect_socket" end
  return ok, err
end

-- "host", "host:port", "[v6]:port" -> host, port
local function split_host(host, port)
  if port then return host, port end
  local h, p = host:match("^%[(.+)%]:([^:]+)$")
  if h then return h, p end
  h, p = host:match("^([^:]+):([^:]+)$")
  return h, p
end

function methods.connect_servername(ctx, host, port, servername)
  local st = check(ctx, "connect_servername")
  host = E.checkstring(host, 2)
  port = E.optstring(port, 3)
  servername = E.optstring(servername, 4)
  st.error = nil
  if st.kind ~= "client" then return false, fail(st, "connect", "not a client context") end
  local h, p = split_host(host, port)
  if not h or not p then return false, fail(st, "connect", "no port provided") end
  local socket = require "socket"
  local tcp = h:find(":", 1, true) and socket.tcp6() or socket.tcp()
  local ok, err = tcp:connect(h, tonumber(p) or p)
  if not ok then
    tcp:close()
    return false, fail(st, "connect", "connect: " .. tostring(err))
  end
  local fd = tcp:getfd()
  tcp:setfd(-1)
  -- LuaSocket's sockets are non-blocking; libtls's own (socket(2), connect(2))
  -- are blocking, so that a handshake there runs to its end in one call
  -- (spec/libtls_connect_spec.lua, against the system libtls)
  fdlib.set_blocking(fd, true)
  local ok2, err2 = methods.connect_fds(ctx, fd, fd, servername or h)
  if not ok2 then
    libc.close(fd)
    err2.op = "connect"
    return false, err2
  end
  st.owned = true
  return true
end

function methods.connect(ctx, host, port)
  check(ctx, "connect")
  host = E.checkstring(host, 2)
  port = E.optstring(port, 3)
  local ok, err = methods.connect_servername(ctx, host, port, nil)
  return ok, err
end

-- Accepting -------------------------------------------------------------------------------

function methods.accept_fds(ctx, fdr, fdw)
  local st = check(ctx, "accept_fds")
  fdr, fdw = E.checkinteger(fdr, 2), E.checkinteger(fdw, 3)
  st.error = nil
  if st.kind ~= "server" then return nil, fail(st, "accept_fds", "not a server context") end
  if fdr < 0 or fdw < 0 or fdr > 2147483647 or fdw > 2147483647 then return nil, fail(st, "accept_fds", "invalid file descriptors") end
  local conn = new_context("server_conn", st.cfg)
  local cs = class.state[conn]
  local s = session.new(st.engine, true)
  if not s then return nil, fail(st, "accept_fds", "ssl failure") end
  s:set_fds(fdr, fdw)
  if #st.sni > 0 then
    -- the extra keypairs' contexts, chosen by their certificates' names
    s:serve_by_certificate(st.sni)
  end
  cs.engine, cs.s, cs.fd, cs.server_ctx = st.engine, s, fdr, ctx
  cs.state = { connected = true }
  return conn
end

function methods.accept_socket(ctx, fd)
  check(ctx, "accept_socket")
  fd = E.checkinteger(fd, 2)
  local conn, err = methods.accept_fds(ctx, fd, fd)
  if not conn then err.op = "accept_socket" end
  return conn, err
end

-- The connection ----------------------------------------------------------------------------

-- A client's check of the server's stapled OCSP response, after the handshake
-- (libtls does it from a callback during the handshake).  Without a staple the
-- OCSP setup still runs, and its complaint is kept as the context's error.
local function check_staple(st, cst, peer)
  local staple = st.s:ocsp_staple()
  if not staple and cst.ocsp_require_stapling then return false, "no stapled OCSP response provided" end
  local err
  st.ocsp, err = ocsp.setup(st.s, peer)
  if not staple then
    if not st.ocsp then st.error = err end
    return true
  end
  if not st.ocsp then return false, err end
  if not cst.verify_cert or not cst.verify_time then return true end
  return ocsp.process(st.ocsp, staple, st.engine)
end

-- libtls's handshake step: true, or nil and WANT_POLLIN/OUT, or false and a message.
local function try_handshake(st, op)
  local s = st.s
  local status, msg, _, line = s:handshake()
  if status == DONE then
    st.state.need_shutdown = true
    local cst = config.state[st.cfg]
    -- the peer's certificate, as libtls keeps it for the getters
    local peer = s:peer_certificate()
    st.peer = peer
    if st.kind == "client" then
      local ok, err = check_staple(st, cst, peer)
      if not ok then return false, err end
    else
      -- as libtls: the peer's OCSP details are looked up on servers too
      local err
      st.ocsp, err = ocsp.setup(s, peer)
      if not st.ocsp then st.error = err end
    end
    if st.kind == "client" and cst.verify_name then
      if not peer or not names.check(peer, st.servername) then
        return false, ("name `%s' not present in server certificate"):format(st.servername)
      end
    end
    -- complete only once every check passed: reads and writes never reach a
    -- peer that failed them
    st.state.handshake_done = true
    save_session(st)
    return true
  end
  if status == WANT_READ then return nil, WANT_POLLIN end
  if status == WANT_WRITE then return nil, WANT_POLLOUT end
  if msg == "certificate verify failed" then
    local _, text = s:verify_result()
    return false, "certificate verification failed: " .. text
  end
  if status == EOF and not line then return false, op .. " failed: unexpected EOF" end
  return false, op .. " failed: " .. (line or msg or "unknown error")
end

-- A failed handshake stays failed: handshake, read and write report the same
-- message again (libtls reruns the failing step and gets it again).
local function step_handshake(st, op)
  if st.state.handshake_done then return true end
  if st.state.failed then return false, st.state.failed end
  local ok, detail = try_handshake(st, op)
  if ok == false then st.state.failed = detail end
  return ok, detail
end

local function operable(st, op)
  if st.kind == "server" then return fail(st, op, "invalid operation for context") end
  if not st.state.connected or not st.s then return fail(st, op, "context not connected") end
  return nil
end

function methods.handshake(ctx)
  local st = check(ctx, "handshake")
  st.error = nil
  local err = operable(st, "handshake")
  if err then return false, err end
  if st.state.handshake_done then return false, fail(st, "handshake", "handshake already completed") end
  local ok, detail = step_handshake(st, "handshake")
  if ok then return true end
  if ok == nil then return false, nil, detail end
  return false, fail(st, "handshake", detail)
end

-- One read buffer for every context (a read copies its bytes out at once),
-- grown to the largest size asked: a buffer of its own cost each context an
-- 8 KiB zero-filled allocation, and each read of more than 8 KiB a new one
-- (bulk 16 KiB reads were 15% slower than libretls's).
local readbuf, readsize = ffi.new("uint8_t[?]", BUFSIZ), BUFSIZ

function methods.read(ctx, bufsize)
  local st = check(ctx, "read")
  bufsize = E.optinteger(bufsize, 2, BUFSIZ)
  if bufsize < 0 then bufsize = BUFSIZ end
  st.error = nil
  local err = operable(st, "read")
  if err then return nil, err end
  local ok, detail = step_handshake(st, "handshake")
  if ok == nil then return nil, nil, true, detail end
  if not ok then return nil, fail(st, "read", detail) end
  -- a read returns at most bufsize bytes (one record is at most 16 KiB): a
  -- huge bufsize is read with a bounded buffer, not allocated
  if bufsize > 1048576 then bufsize = 1048576 end
  if bufsize > readsize then readbuf, readsize = ffi.new("uint8_t[?]", bufsize), bufsize end
  local buf = readbuf
  local n, msg, _, line = st.s:read(buf, bufsize)
  if n > 0 then
    save_session(st)
    return ffi_string(buf, n)
  end
  if n == WANT_READ then save_session(st); return nil, nil, true, WANT_POLLIN end
  if n == WANT_WRITE then return nil, nil, true, WANT_POLLOUT end
  if n == CLOSED then
    -- after a failure the session answers "closed": report the failure again,
    -- not a clean end of stream
    if st.state.fatal then return nil, fail(st, "read", "read failed: " .. st.state.fatal) end
    return
  end
  if n == EOF then
    -- libtls's documented semantics (OpenSSL 3's libretls reports an error):
    -- EOF without close_notify reads as end of stream; close() reports it
    st.state.eof_no_close_notify = true
    return
  end
  st.state.fatal = line or msg
  return nil, fail(st, "read", "read failed: " .. st.state.fatal)
end

function methods.write(ctx, data)
  local st = check(ctx, "write")
  data = E.checkstring(data, 2)
  st.error = nil
  local err = operable(st, "write")
  if err then return nil, err end
  local ok, detail = step_handshake(st, "handshake")
  if ok == nil then return 0, nil, true, detail end
  if not ok then return nil, fail(st, "write", detail) end
  if #data == 0 then return end
  local n, msg, _, line = st.s:write(data, #data)
  if n > 0 then
    if n < #data then return n, nil, true, WANT_POLLOUT end
    return n
  end
  if n == WANT_READ then return 0, nil, true, WANT_POLLIN end
  if n == WANT_WRITE then return 0, nil, true, WANT_POLLOUT end
  if n == CLOSED then
    if st.state.fatal then return nil, fail(st, "write", "write failed: " .. st.state.fatal) end
    return
  end
  st.state.fatal = line or msg
  return nil, fail(st, "write", "write failed: " .. st.state.fatal)
end

local filebuf = ffi.new("uint8_t[?]", 16384)

-- Sends `bytes` of a file (an fd or a Lua file) from `offset`, as reads and
-- writes (kernel TLS is not used): len, err, again, want as write().
function methods.sendfile(ctx, f, bytes, offset)
  local st = check(ctx, "sendfile")
  bytes = E.checkinteger(bytes, 3)
  offset = E.optinteger(offset, 4, 0)
  -- size_t and off_t in sendfile(2): a negative count would be huge, and a
  -- failed seek would send from wherever the file was
  if bytes < 0 then E.argerror(3, "size out of range") end
  if offset < 0 then E.argerror(4, "offset out of range") end
  local chunk
  if type(f) == "number" then
    if f ~= math.floor(f) or f < -2147483648 or f > 2147483647 then E.argerror(2, "fd out of range") end
    local n = tonumber(libc.pread(f, filebuf, math.min(bytes, 16384), offset))
    if n < 0 then return nil, fail(st, "sendfile", ffi_string(libc.strerror(ffi.errno()))) end
    chunk = ffi_string(filebuf, n)
  elseif io.type(f) == "file" then
    local pos, serr = f:seek("set", offset)
    if not pos then return nil, fail(st, "sendfile", tostring(serr)) end
    chunk = f:read(math.min(bytes, 16384)) or ""
  else
    E.argerror(2, "integer or file expected, got " .. type(f))
  end
  if #chunk == 0 then return 0 end
  local n, err, again, want = methods.write(ctx, chunk)
  if n and n < bytes and not again then return n, nil, true, WANT_POLLOUT end
  return n, err, again, want
end

function methods.close(ctx)
  local st = check(ctx, "close")
  st.error = nil
  if st.kind == "server" then return true end
  local result, err = true, nil
  local s = st.s
  if s and st.state.need_shutdown and not s.broken then
    local status, msg, _, line = s:shutdown()
    if status == WANT_READ then return false, nil, WANT_POLLIN end
    if status == WANT_WRITE then return false, nil, WANT_POLLOUT end
    if status ~= DONE and status ~= 1 then
      result, err = false, fail(st, "close", "shutdown failed: " .. (line or msg))
    end
    st.state.need_shutdown = false
  end
  if st.owned and st.fd >= 0 then
    libc.shutdown(st.fd, K.SHUT_RDWR)
    libc.close(st.fd)
    st.fd, st.owned = -1, false
  end
  if result and st.state.eof_no_close_notify then
    result, err = false, fail(st, "close", "EOF without close notify")
  end
  if result then return true end
  return false, err
end

function methods.reset(ctx)
  local st = check(ctx, "reset")
  if st.owned and st.fd >= 0 then libc.close(st.fd) end
  if st.s then st.s:free() end
  st.s, st.fd, st.owned, st.error, st.servername, st.ocsp, st.peer = nil, -1, false, nil, nil, nil, nil
  st.state = {}
  if st.kind ~= "server" then st.engine = nil end
end

-- Information --------------------------------------------------------------------------------

local function done(st)
  return st.s and st.state.handshake_done
end

-- The peer's certificate (kept from the handshake), or nil.
local function peer_cert(st)
  return done(st) and st.peer or nil
end

function methods.peer_cert_provided(ctx)
  return peer_cert(check(ctx, "peer_cert_provided")) ~= nil
end

function methods.peer_cert_contains_name(ctx, name)
  local st = check(ctx, "peer_cert_contains_name")
  name = E.checkstring(name, 2)
  local p = peer_cert(st)
  if not p then return false end
  return names.check(p, name)
end

-- The session, once the handshake is complete, or nil.
local function live(st)
  return done(st) and st.s or nil
end

-- Defines methods[name]: get(x), x being what of(st) gives (the peer's
-- certificate, the session); `default` when there is none or get answers
-- nil; no value for a nil default (as lua-libtls, which pushes nothing).
local function getter(name, of, default, get)
  methods[name] = function(ctx)
    local x = of(check(ctx, name))
    local v
    if x then v = get(x) end
    if v == nil then v = default end
    if v ~= nil then return v end
  end
end

getter("peer_cert_hash", peer_cert, nil, function(p)
  local digest = x509.digest(p, crypto.EVP_sha256())
  if digest then return "SHA256:" .. x509.hex(digest) end
end)
getter("peer_cert_subject", peer_cert, nil, x509.subject)
getter("peer_cert_issuer", peer_cert, nil, x509.issuer)
getter("peer_cert_notbefore", peer_cert, -1, x509.not_before)
getter("peer_cert_notafter", peer_cert, -1, x509.not_after)

-- The peer's leaf, then the chain it sent without the leaf.
function methods.peer_cert_chain_pem(ctx)
  local st = check(ctx, "peer_cert_chain_pem")
  local p = peer_cert(st)
  if not p then return nil, fail(st, "peer_cert_chain_pem", "no peer certificate") end
  local parts = { x509.pem(p) }
  local chain = st.s:peer_chain()          -- leaf first on both sides
  for i = 2, #chain do
    if crypto.X509_cmp(chain[i], p) ~= 0 then parts[#parts + 1] = x509.pem(chain[i]) end
  end
  return table.concat(parts)
end

getter("conn_version", live, nil, function(s) return s:protocol() end)
getter("conn_cipher", live, nil, function(s) return (s:cipher()) end)
getter("conn_cipher_strength", live, 0, function(s) return (select(2, s:cipher())) end)
getter("conn_alpn_selected", live, nil, function(s) return s:alpn() end)
getter("conn_session_resumed", live, false, function(s) return s:reused() end)

-- A client's is the name it was given; a server's the one its client asked for.
function methods.conn_servername(ctx)
  local st = check(ctx, "conn_servername")
  if st.kind == "client" then return st.servername end
  return st.s and st.s:servername() or nil
end

-- OCSP ---------------------------------------------------------------------------------------

-- A response fetched by the program, checked like a stapled one.
function methods.ocsp_process_response(ctx, der)
  local st = check(ctx, "ocsp_process_response")
  der = E.checkstring(der, 2)
  if not done(st) then return false, E.new("ocsp_process_response", nil) end
  local err
  if not st.ocsp then
    st.ocsp, err = ocsp.setup(st.s, st.peer)
    if not st.ocsp then return false, fail(st, "ocsp_process_response", err) end
  end
  local ok
  ok, err = ocsp.process(st.ocsp, der, st.engine)
  if not ok then return false, fail(st, "ocsp_process_response", err) end
  return true
end

local function ocsp_error(st, op)
  return E.new(op, st.error)
end

function methods.peer_ocsp_url(ctx)
  local st = check(ctx, "peer_ocsp_url")
  if st.ocsp then return st.ocsp.url end
  return nil, ocsp_error(st, "peer_ocsp_url")
end

function methods.peer_ocsp_result(ctx)
  local st = check(ctx, "peer_ocsp_result")
  local r = st.ocsp and st.ocsp.result
  if r then return r.message end
  return nil, ocsp_error(st, "peer_ocsp_result")
end

local OCSP_FIELDS = {
  peer_ocsp_response_status = "response_status", peer_ocsp_cert_status = "cert_status",
  peer_ocsp_crl_reason = "crl_reason", peer_ocsp_this_update = "this_update",
  peer_ocsp_next_update = "next_update", peer_ocsp_revocation_time = "revocation_time",
}
for name, field in pairs(OCSP_FIELDS) do
  methods[name] = function(ctx)
    local st = check(ctx, name)
    local r = st.ocsp and st.ocsp.result
    local v = r and r[field] or -1
    if v == -1 then return nil, ocsp_error(st, name) end
    return v
  end
end

-- The context's last error message (tls_error), or nil.
function methods.error(ctx)
  return check(ctx, "error").error
end

return tls
