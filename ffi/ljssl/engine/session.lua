-- ljssl.engine.session — one TLS connection (an SSL) and its state machine, over
-- a transport that is either a socket fd or a pair of memory BIOs.  Every face
-- drives its connections through this module.
--
-- handshake, read, write and shutdown never wait and never raise: they return a
-- count (> 0) or a status below, plus, on failure, a message:
--   DONE (0)      the handshake or shutdown finished
--   WANT_READ     OpenSSL needs ciphertext from the peer (fd: wait readable;
--                 memory: feed() more)
--   WANT_WRITE    OpenSSL needs to send (fd: wait writable; memory: drain())
--   CLOSED        the peer sent close_notify
--   EOF           the transport ended without close_notify
--   ERROR         a TLS failure: message is OpenSSL's reason, 4th value the
--                 full "error:..." line
--   SYSCALL       a socket error: message is strerror(errno), 3rd value errno
--   OTHER         a state ljssl does not drive (x509 lookup, async, ...)
-- After EOF, ERROR or SYSCALL the session is `broken`: no close_notify is owed
-- and every call answers CLOSED.  After the peer's close_notify (`peer_closed`)
-- reads answer CLOSED, but writes still go out (TLS half-close, as LuaSec and
-- libtls allow) and shutdown() answers with our close_notify.  The memory transport is first-class: the net face and OpenResty
-- cosockets move the bytes themselves.

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"
local cb = require "ljssl.engine.callbacks"
local names = require "ljssl.engine.names"
local cert = require "ljssl.engine.cert"

local C, crypto, K = lib.ssl, lib.crypto, lib.K
local clear_errors = lib.clear_errors
local ffi_errno = ffi.errno

local session = {
  DONE = 0, ERROR = -1, WANT_READ = -2, WANT_WRITE = -3,
  CLOSED = -4, EOF = -5, SYSCALL = -6, OTHER = -7,
}
local DONE, ERROR, WANT_READ, WANT_WRITE = 0, -1, -2, -3
local CLOSED, EOF, SYSCALL, OTHER = -4, -5, -6, -7

local Session = {}
Session.__index = Session

local OTHER_NAMES = {
  [K.SSL_ERROR_WANT_X509_LOOKUP] = "Waiting for callback",
  [K.SSL_ERROR_WANT_CONNECT] = "'connect' not completed",
  [K.SSL_ERROR_WANT_ACCEPT] = "'accept' not completed",
}

-- Turns a failed SSL call's return value into a status and message, and drains
-- the error queue.  `errno` was read right after the call.
local function fail(self, rc, errno)
  local err = C.SSL_get_error(self.ptr, rc)
  if err == K.SSL_ERROR_WANT_READ then return WANT_READ end
  if err == K.SSL_ERROR_WANT_WRITE then return WANT_WRITE end
  if err == K.SSL_ERROR_ZERO_RETURN then
    self.peer_closed = true      -- our close_notify may still be sent
    return CLOSED, "closed"
  end
  if err == K.SSL_ERROR_SYSCALL or err == K.SSL_ERROR_SSL then
    self.broken = true
    local code, reason, line = lib.pop_error()
    if code then
      if lib.ERR_GET_LIB(code) == K.ERR_LIB_SSL
         and lib.ERR_GET_REASON(code) == K.SSL_R_UNEXPECTED_EOF_WHILE_READING then
        return EOF, reason, code, line
      end
      return ERROR, reason, code, line
    end
    -- SYSCALL with an empty queue: OpenSSL 1.1-style EOF, or a socket error
    if err == K.SSL_ERROR_SSL then return ERROR, "unknown TLS error" end
    if rc == 0 or errno == 0 then return EOF, "unexpected eof while reading" end
    return SYSCALL, ffi.string(lib.libc.strerror(errno)), errno
  end
  lib.clear_errors()
  return OTHER, OTHER_NAMES[err] or ("SSL error %d"):format(err)
end

local function free_ssl(p)
  cb.forget_ssl(p)
  C.SSL_free(p)
end

local choose     -- below: gives a session the copy of the I/O functions it may run

-- A new session on an engine context; `server` picks the accept side.
function session.new(ctx, server)
  lib.clear_errors()
  local p = C.SSL_new(ctx.ptr)
  if p == nil then return nil, (select(2, lib.pop_error())) or "SSL_new failed" end
  ffi.gc(p, free_ssl)
  lib.SSL_set_mode(p, bit.bor(K.SSL_MODE_ENABLE_PARTIAL_WRITE, K.SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
  if server then C.SSL_set_accept_state(p) else C.SSL_set_connect_state(p) end
  -- the session keeps its context (and what the context anchors) alive
  return choose(setmetatable({ ptr = p, ctx = ctx, server = server and true or false,
                               fd = -1, broken = false, done = false, epoch = -1 }, Session))
end

-- Transports ------------------------------------------------------------------------------

-- `owns`: the SSL's socket BIO closes the fd when the SSL is freed (BIO_CLOSE),
-- so a session dropped without close() still closes it, with no box of its own.
function Session:set_fd(fd, owns)
  local ok, why = lib.check("SSL_set_fd failed", C.SSL_set_fd, self.ptr, fd)
  if not ok then return nil, why end
  if owns and fd >= 0 then
    crypto.BIO_ctrl(C.SSL_get_rbio(self.ptr), K.BIO_CTRL_SET_CLOSE, K.BIO_CLOSE, nil)
  end
  self.fd = fd
  return true
end

-- Separate descriptors for reading and writing (a pipe pair, say).
function Session:set_fds(rfd, wfd)
  local ok, why = lib.check("SSL_set_rfd failed", C.SSL_set_rfd, self.ptr, rfd)
  if ok then ok, why = lib.check("SSL_set_wfd failed", C.SSL_set_wfd, self.ptr, wfd) end
  if not ok then return nil, why end
  self.fd = rfd
  return true
end

-- Memory transport: OpenSSL reads ciphertext from `rbio` (filled by feed) and
-- writes it to `wbio` (emptied by drain).  Both are owned by the SSL.
function Session:use_memory()
  local rbio = crypto.BIO_new(crypto.BIO_s_mem())
  local wbio = crypto.BIO_new(crypto.BIO_s_mem())
  if rbio == nil or wbio == nil then
    if rbio ~= nil then crypto.BIO_free(rbio) end
    if wbio ~= nil then crypto.BIO_free(wbio) end
    return nil, "out of memory"
  end
  -- an empty rbio means "no data yet" (retry), not end of stream
  lib.BIO_set_mem_eof_return(rbio, -1)
  C.SSL_set_bio(self.ptr, rbio, wbio)
  self.rbio, self.wbio = rbio, wbio
  return true
end

-- Hands ciphertext from the peer to OpenSSL (memory transport).
function Session:feed(data, len)
  return crypto.BIO_write(self.rbio, data, len or #data)
end

-- The peer's byte stream has ended (memory transport).
function Session:feed_eof()
  lib.BIO_set_mem_eof_return(self.rbio, 0)
end

-- Ciphertext OpenSSL wants sent, into buf (memory transport): bytes copied.
function Session:drain(buf, len)
  local n = crypto.BIO_read(self.wbio, buf, len)
  return n > 0 and n or 0
end

function Session:outgoing()
  return lib.BIO_pending(self.wbio)
end

-- Makes the handshake verify that the peer's certificate is valid for `name`
-- (a DNS name or an IP literal) by OpenSSL's rules.  A mismatch fails
-- verification with "hostname mismatch" (X509_V_ERR_HOSTNAME_MISMATCH or
-- X509_V_ERR_IP_ADDRESS_MISMATCH).
function Session:set_host(name)
  name = names.strip_dot(name)
  -- OpenSSL reads a C string: "a\0b" would check "a"; "" would clear the check
  if name == "" or name:find("\0", 1, true) then return nil, "invalid host name" end
  lib.clear_errors()
  local ok
  local ip = names.ip_literal(name)
  if ip then
    ok = crypto.X509_VERIFY_PARAM_set1_ip_asc(C.SSL_get0_param(self.ptr), ip) == 1
  else
    C.SSL_set_hostflags(self.ptr, K.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS)
    ok = C.SSL_set1_host(self.ptr, name) == 1
  end
  if not ok then return nil, (select(2, lib.pop_error())) or "invalid host name" end
  return true
end

-- The key-exchange group the handshake chose ("X25519", "X25519MLKEM768"), or
-- nil before one was.  SSL_get0_group_name names every group but is 3.2's;
-- on 3.0 the group's NID gives the names OpenSSL has objects for.
function session.group(ssl)
  local get0_group_name = lib.optional("SSL_get0_group_name")
  if get0_group_name then
    local name = get0_group_name(ssl)
    return name ~= nil and ffi.string(name) or nil
  end
  local nid = tonumber(C.SSL_ctrl(ssl, K.SSL_CTRL_GET_NEGOTIATED_GROUP, 0, nil))
  if nid <= 0 then return nil end
  local sn = crypto.OBJ_nid2sn(nid)
  return sn ~= nil and ffi.string(sn) or ("group %d"):format(bit.band(nid, 0xffff))
end
function Session:group() return session.group(self.ptr) end

-- What the handshake settled, as Lua values -------------------------------------------------
-- Faces answer their users from these instead of asking OpenSSL themselves, so
-- each query and its edge cases (before the handshake, after free, a server's
-- chain without the leaf) are written once.

local alpn_data = ffi.new("const unsigned char *[1]")
local alpn_len = ffi.new("unsigned int[1]")
local cipher_desc = ffi.new("char[256]")
local cipher_algbits = ffi.new("int[1]")
local u8buf = ffi.typeof("uint8_t[?]")

local function opt_string(p) return p ~= nil and ffi.string(p) or nil end

-- lib.check's answer as true, or nil and the reason.
local function succeeded(r, why)
  if r == nil then return nil, why end
  return true
end

-- The negotiated protocol ("TLSv1.3"), or nil before the handshake.
function Session:protocol()
  if self.ptr == nil or not self.done then return nil end
  return ffi.string(C.SSL_get_version(self.ptr))
end

-- The cipher suite's name, its secret bits and algorithm bits, and OpenSSL's
-- one-line description; nil before the handshake.
function Session:cipher()
  if self.ptr == nil then return nil end
  local c = C.SSL_get_current_cipher(self.ptr)
  if c == nil then return nil end
  local bits = C.SSL_CIPHER_get_bits(c, cipher_algbits)
  C.SSL_CIPHER_description(c, cipher_desc, 256)
  return ffi.string(C.SSL_CIPHER_get_name(c)), tonumber(bits), tonumber(cipher_algbits[0]),
    ffi.string(cipher_desc)
end

-- The compression method's name (none in any OpenSSL 3 build ljssl meets), or nil.
function Session:compression()
  if self.ptr == nil then return nil end
  local comp = C.SSL_get_current_compression(self.ptr)
  if comp == nil then return nil end
  return opt_string(C.SSL_COMP_get_name(comp))
end

-- The protocol ALPN selected, or nil.
function Session:alpn()
  if self.ptr == nil then return nil end
  C.SSL_get0_alpn_selected(self.ptr, alpn_data, alpn_len)
  if alpn_data[0] == nil or alpn_len[0] == 0 then return nil end
  return ffi.string(alpn_data[0], alpn_len[0])
end

-- The SNI name: a client's own, or the one a server was asked for; or nil.
function Session:servername()
  if self.ptr == nil then return nil end
  return opt_string(C.SSL_get_servername(self.ptr, K.TLSEXT_NAMETYPE_host_name))
end

-- Whether the handshake resumed a session.
function Session:reused()
  return self.ptr ~= nil and C.SSL_session_reused(self.ptr) == 1
end

-- Everything above in one table (nil before the handshake): protocol, cipher,
-- bits, algbits, description, alpn, servername, group, reused.
function Session:info()
  local name, bits, algbits, description = self:cipher()
  if not name or not self.done then return nil end
  return { protocol = self:protocol(), cipher = name, bits = bits, algbits = algbits,
           description = description, alpn = self:alpn(), servername = self:servername(),
           group = self:group(), reused = self:reused() }
end

-- OpenSSL's text for an X509_V_* code ("certificate has expired").
function session.verify_text(code)
  return ffi.string(crypto.X509_verify_cert_error_string(code))
end

-- The chain's verification result: OpenSSL's X509_V_* code (0 is success) and
-- its text.
function Session:verify_result()
  if self.ptr == nil then return nil end
  local code = tonumber(C.SSL_get_verify_result(self.ptr))
  return code, session.verify_text(code)
end

-- Every verification failure seen in the handshake, deepest first as OpenSSL
-- reported them: a list of { depth, code } (kept by the verify callback).
function Session:verify_errors()
  if self.ptr == nil then return {} end
  return cb.verify_errors(self.ptr)
end

-- The peer's certificate (an owned X509 *, freed by the GC), or nil.
function Session:peer_certificate()
  if self.ptr == nil then return nil end
  return cert.own(C.SSL_get1_peer_certificate(self.ptr))
end

-- The peer's chain, leaf first, as owned X509 pointers: the same list on both
-- sides (OpenSSL's server-side stack lacks the client's leaf; it is added).
function Session:peer_chain()
  local list = {}
  if self.ptr == nil then return list end
  if self.server then
    local leaf = self:peer_certificate()
    if leaf == nil then return list end
    list[1] = leaf
  end
  local chain = C.SSL_get_peer_cert_chain(self.ptr)
  if chain == nil then return list end
  for i = 0, lib.sk_X509_num(chain) - 1 do
    list[#list + 1] = cert.ref(lib.sk_X509_value(chain, i))
  end
  return list
end

local chain_out = ffi.new("struct stack_st_X509 *[1]")

-- Our own certificate and the chain sent with it, leaf first, as owned X509
-- pointers (empty without a certificate).
function Session:own_chain()
  local list = {}
  if self.ptr == nil then return list end
  local leaf = C.SSL_get_certificate(self.ptr)
  if leaf == nil then return list end
  list[1] = cert.ref(leaf)
  chain_out[0] = nil
  lib.SSL_get0_chain_certs(self.ptr, chain_out)
  local chain = chain_out[0]
  if chain ~= nil then
    for i = 0, lib.sk_X509_num(chain) - 1 do list[#list + 1] = cert.ref(lib.sk_X509_value(chain, i)) end
  end
  return list
end

-- SNI: the name a client asks for.
function Session:set_servername(name)
  if self.ptr == nil then return nil, "closed" end
  return succeeded(lib.check("invalid server name", lib.SSL_set_tlsext_host_name, self.ptr, name))
end

-- Server-side SNI over cb.set_sni: the session's own context and `contexts`
-- (engine contexts, kept alive by the session) are those it may switch to.
local function serve_sni(self, contexts, by_name, strict, by_cert)
  if self.ptr == nil then return nil, "closed" end
  local ctxs = { self.ctx.ptr }
  for i, e in ipairs(contexts) do ctxs[i + 1] = e.ptr end
  self.sni_contexts = contexts
  local ok, err = cb.set_sni(self.ptr, ctxs, by_name, strict, by_cert)
  choose(self)          -- a context SNI may switch to can run Lua callbacks
  return ok, err
end

-- SNI on a server: switch to the engine context `map[name]` for the name the
-- client asks for; `strict` refuses names not in the map.  The session keeps
-- the contexts alive.
function Session:serve_by_name(map, strict)
  local contexts, ptrs = {}, {}
  for name, e in pairs(map) do
    ptrs[name] = e.ptr
    contexts[#contexts + 1] = e
  end
  return serve_sni(self, contexts, ptrs, strict)
end

-- SNI on a server by certificate: switch to whichever of the engine contexts
-- `by_cert` holds a certificate valid for the name the client asks for.
function Session:serve_by_certificate(by_cert)
  local ptrs = {}
  for i, e in ipairs(by_cert) do ptrs[i] = e.ptr end
  return serve_sni(self, by_cert, {}, false, ptrs)
end

-- OCSP stapling, client side: ask the server for its staple, then read it
-- (DER) after the handshake; nil when none came.
function Session:request_ocsp_staple()
  if self.ptr == nil then return nil, "closed" end
  return succeeded(lib.check("cannot request OCSP stapling", lib.SSL_set_tlsext_status_type,
    self.ptr, K.TLSEXT_STATUSTYPE_ocsp))
end

local staple_out = ffi.new("unsigned char *[1]")
function Session:ocsp_staple()
  if self.ptr == nil then return nil end
  local len = tonumber(lib.SSL_get_tlsext_status_ocsp_resp(self.ptr, staple_out))
  if len <= 0 or staple_out[0] == nil then return nil end
  return ffi.string(staple_out[0], len)
end

-- DANE (RFC 6698): authenticate the peer by TLSA records for `basedomain`.
function Session:enable_dane(basedomain)
  if self.ptr == nil then return false end
  return lib.check(nil, C.SSL_dane_enable, self.ptr, basedomain) ~= nil
end

function Session:add_tlsa(usage, selector, mtype, data)
  if self.ptr == nil then return false end
  return lib.check(nil, C.SSL_dane_tlsa_add, self.ptr, usage, selector, mtype, data, #data) ~= nil
end

-- Hands OpenSSL's record buffers back (32 KiB while allocated) unless it holds
-- bytes not yet returned; they are allocated again at the next I/O.  Never
-- while data is pending, which also keeps clear of CVE-2024-4741 (OpenSSL
-- before 3.0.14).
function Session:release_buffers()
  local p = self.ptr
  if p ~= nil and C.SSL_has_pending(p) == 0 then C.SSL_free_buffers(p) end
end

-- The Finished messages (ours, the peer's) as strings, or nil before them.
local finished_buf = u8buf(128)
local function finished(self, get)
  if self.ptr == nil then return nil end
  local n = tonumber(get(self.ptr, finished_buf, 128))
  if n == 0 then return nil end
  return ffi.string(finished_buf, math.min(n, 128))
end
function Session:finished() return finished(self, C.SSL_get_finished) end
function Session:peer_finished() return finished(self, C.SSL_get_peer_finished) end

-- RFC 5705/8446 keying material: `len` bytes for `label` (and `context` when
-- given), or nil and a reason.
function Session:export_keying_material(label, len, context)
  if self.ptr == nil or not self.done then return nil, "closed" end
  local out = u8buf(math.max(len, 1))
  local ok, why = lib.check("error exporting keying material", C.SSL_export_keying_material,
    self.ptr, out, len, label, #label, context, context and #context or 0, context and 1 or 0)
  if not ok then return nil, why end
  return ffi.string(out, len)
end

-- The session to resume later (an owned SSL_SESSION *), or nil when the
-- handshake left none that can be resumed.
function Session:resumable_session()
  if self.ptr == nil then return nil end
  local sess = C.SSL_get1_session(self.ptr)
  if sess == nil then return nil end
  ffi.gc(sess, C.SSL_SESSION_free)
  if C.SSL_SESSION_is_resumable(sess) ~= 1 then return nil end
  return sess
end

-- Offers `sess` (from resumable_session) for resumption in the next handshake.
function Session:offer_session(sess)
  return succeeded(lib.check("SSL_set_session failed", C.SSL_set_session, self.ptr, sess))
end

-- The SSL pointer, for the faces' documented raw accessors (LuaSec's
-- rawconnection) and for code below the faces; faces answer users through
-- the methods above.
function Session:raw() return self.ptr end

-- The state machine -------------------------------------------------------------------------
-- handshake, read, write and shutdown call into OpenSSL in ways that can run
-- callbacks (verify, ALPN, SNI, PSK, DH parameters, session tickets,
-- post-handshake authentication).  A LuaJIT callback entered from a compiled
-- trace panics the VM, so these four exist twice (ljssl.engine.callbacks): the
-- factory below is called once as it is, and once more from a copy of its
-- bytecode, which gives new prototypes that jit.off can keep in the
-- interpreter without touching the first (jit.off marks the prototype).  A
-- session whose contexts run no LuaJIT callback uses the compiled copy; the
-- others the interpreted one.  Each copy first checks the epoch, so a session
-- whose context gained a Lua callback since it chose changes copies before
-- calling OpenSSL.  The factory has no upvalues: everything comes in as
-- arguments (a copy loaded from bytecode would see nil upvalues).
local function state_machine(C, clear_errors, fail, ffi_errno, epoch, rechoose)
  local DONE, CLOSED = 0, -4

  local function handshake(self)
    if self.epoch ~= epoch.n then return rechoose(self):handshake() end
    if self.done then return DONE end
    if self.broken or self.ptr == nil then return CLOSED, "closed" end
    clear_errors()
    local rc = C.SSL_do_handshake(self.ptr)
    if rc == 1 then
      self.done = true
      return DONE
    end
    return fail(self, rc, ffi_errno())
  end

  local function read(self, buf, len)
    if self.epoch ~= epoch.n then return rechoose(self):read(buf, len) end
    if self.broken or self.peer_closed or self.ptr == nil then return CLOSED, "closed" end
    clear_errors()
    local n = C.SSL_read(self.ptr, buf, len)
    if n > 0 then return n end
    return fail(self, n, ffi_errno())
  end

  local function write(self, ptr, len)
    if self.epoch ~= epoch.n then return rechoose(self):write(ptr, len) end
    if self.broken or self.ptr == nil then return CLOSED, "closed" end
    clear_errors()
    local n = C.SSL_write(self.ptr, ptr, len)
    if n > 0 then return n end
    return fail(self, n, ffi_errno())
  end

  -- Sends close_notify: DONE once the peer's close_notify has been received too,
  -- 1 when ours is sent and theirs not yet, or a status.
  local function shutdown(self)
    if self.epoch ~= epoch.n then return rechoose(self):shutdown() end
    if self.ptr == nil then return CLOSED, "closed" end
    if self.broken or not self.done then return DONE end
    clear_errors()
    local rc = C.SSL_shutdown(self.ptr)
    if rc == 1 then return DONE end
    if rc == 0 then return 1 end
    return fail(self, rc, ffi_errno())
  end

  return { handshake = handshake, read = read, write = write, shutdown = shutdown }
end
assert(debug.getupvalue(state_machine, 1) == nil, "state_machine must not have upvalues")

local compiled = state_machine(C, clear_errors, fail, ffi_errno, cb.epoch, function(self) return choose(self) end)
for name, fn in pairs(compiled) do Session[name] = fn end

function Session:pending()
  return self.ptr ~= nil and C.SSL_pending(self.ptr) or 0
end

-- True when OpenSSL holds bytes of this connection not yet returned by
-- read: decrypted data, or part of a record already taken from the transport.
function Session:has_pending()
  return self.ptr ~= nil and C.SSL_has_pending(self.ptr) == 1
end

function Session:want()
  return self.ptr ~= nil and C.SSL_want(self.ptr) or K.SSL_NOTHING
end

-- Frees the SSL (and the memory BIOs).  Idempotent.
function Session:free()
  local p = self.ptr
  if p ~= nil then
    self.ptr = nil
    self.rbio, self.wbio = nil, nil
    ffi.gc(p, nil)
    free_ssl(p)
  end
end

-- The method table of sessions that may run LuaJIT callbacks: the same
-- methods, with the interpreted copy of the state machine.
local Interpreted = {}
for name, fn in pairs(Session) do Interpreted[name] = fn end
Interpreted.__index = Interpreted
local interpreted = loadstring(string.dump(state_machine), "=ljssl.engine.session (interpreted copy)")(
  C, clear_errors, fail, ffi_errno, cb.epoch, function(self) return choose(self) end)
for name, fn in pairs(interpreted) do Interpreted[name] = cb.guard(fn) end

-- Gives `self` the method table its contexts allow, for the current epoch.
function choose(self)
  self.epoch = cb.epoch.n
  local ctx = self.ctx and self.ctx.ptr
  local mt = self.ptr ~= nil and cb.session_has_lua(self.ptr, ctx) and Interpreted or Session
  if getmetatable(self) ~= mt then setmetatable(self, mt) end
  return self
end

-- Whether this session runs the interpreted copy (for tests and diagnostics).
function Session:interpreted() return getmetatable(self) == Interpreted end
Interpreted.interpreted = Session.interpreted

session.Session = Session
session.Interpreted = Interpreted
return session
