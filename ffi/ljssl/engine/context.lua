-- ljssl.engine.context — an SSL_CTX and the operations that configure it, shared
-- by every face.  Each operation returns true, or nil and OpenSSL's reason text
-- (faces wrap that in their own message conventions).  The object keeps alive
-- whatever OpenSSL borrows from Lua (ALPN lists, callback functions, contexts
-- used for SNI); connections keep their context object alive in turn.

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"
local cb = require "ljssl.engine.callbacks"

local C, crypto, K = lib.ssl, lib.crypto, lib.K

local Context = {}
Context.__index = Context

local context = {}

local function reason()
  local _, text = lib.pop_error()
  return text or "unknown error"
end

local function free_ctx(p)
  cb.forget_ctx(p)
  C.SSL_CTX_free(p)
end

-- A new context for "client", "server" or "any" use, TLS versions from `min`
-- to `max` (OpenSSL version numbers; 0 means the library's bound).
function context.new(role, min, max)
  lib.clear_errors()
  local method = role == "client" and C.TLS_client_method()
              or role == "server" and C.TLS_server_method() or C.TLS_method()
  local p = C.SSL_CTX_new(method)
  if p == nil then return nil, reason() end
  ffi.gc(p, free_ctx)
  local self = setmetatable({ ptr = p, role = role, anchors = {} }, Context)
  local ok, err = self:set_protocols(min or 0, max or 0)
  if not ok then return nil, err end
  return self
end

-- The trust store the context verifies with (borrowed: valid while the
-- context lives), for verifications of its own such as OCSP responses.
function Context:cert_store()
  return C.SSL_CTX_get_cert_store(self.ptr)
end

function Context:set_protocols(min, max)
  if lib.SSL_CTX_set_min_proto_version(self.ptr, min) ~= 1
     or lib.SSL_CTX_set_max_proto_version(self.ptr, max) ~= 1 then
    return nil, reason()
  end
  return true
end

-- Closes the context; connections made from it keep their own reference.
function Context:free()
  local p = self.ptr
  if p ~= nil then
    self.ptr = nil
    ffi.gc(p, nil)
    free_ctx(p)
  end
end

-- Keys and certificates ---------------------------------------------------------------

-- `password` of the key loaders: OpenSSL's own passphrase prompt
-- (PEM_def_callback: it reads the terminal, or stdin when the process has
-- none), which is what LuaSec leaves in place when no password is given.
context.PROMPT = setmetatable({}, { __tostring = function() return "ljssl.engine.context.PROMPT" end })

-- Runs load(callback, userdata), a function that makes OpenSSL read a key,
-- with the password callback installed; userdata is the password, or NULL so
-- that the callback refuses.  `password` is a string, a function returning one
-- (called only if the key turns out to be encrypted), context.PROMPT (no
-- callback: OpenSSL prompts), or nil/false (refuse, never prompt).
local function with_password(self, password, load)
  local ctx = self.ptr
  local pw = type(password) == "string" and password or nil
  local userdata = pw and ffi.cast("void *", pw) or nil
  local callback = password ~= context.PROMPT and lib.password_cb() or nil
  C.SSL_CTX_set_default_passwd_cb(ctx, callback)
  C.SSL_CTX_set_default_passwd_cb_userdata(ctx, userdata)
  lib.clear_errors()
  -- OpenSSL reads the password as a C string: "a\0b" would be "a"
  if pw and pw:find("\0", 1, true) then return nil, "the password contains a NUL byte" end
  local ok = load(callback, userdata)
  local why
  if not ok and type(password) == "function" then
    lib.clear_errors()
    local got = password()
    if type(got) ~= "string" then
      why = "the password function returned " .. (got == nil and "nothing" or "a " .. type(got))
    elseif got:find("\0", 1, true) then
      why = "the password contains a NUL byte"
    else
      pw = got
      userdata = ffi.cast("void *", pw)
      C.SSL_CTX_set_default_passwd_cb_userdata(ctx, userdata)
      ok = load(callback, userdata)
    end
  end
  C.SSL_CTX_set_default_passwd_cb(ctx, nil)
  C.SSL_CTX_set_default_passwd_cb_userdata(ctx, nil)
  if not ok then return nil, why or reason() end
  lib.clear_errors()
  return true
end
-- Loading a key may call the password callback; not a hot path.
jit.off(with_password)

-- nil and strerror when `path` cannot be read as a file: OpenSSL opens a
-- directory and then reports what its decoders made of nothing
-- ("unsupported", "no start line").
local function unreadable(path)
  local f, err = io.open(path, "rb")
  if not f then return (err:gsub("^[^:]*: ", "")) end
  local _, rerr = f:read(0)
  f:close()
  return rerr
end

function Context:use_key_file(path, password)
  local bad = unreadable(path)
  if bad then return nil, bad end
  return with_password(self, password, function()
    return C.SSL_CTX_use_PrivateKey_file(self.ptr, path, K.SSL_FILETYPE_PEM) == 1
  end)
end

function Context:use_key_pem(pem, password)
  return with_password(self, password, function(callback, userdata)
    local bio = crypto.BIO_new_mem_buf(pem, #pem)
    if bio == nil then return false end
    local key = crypto.PEM_read_bio_PrivateKey(bio, nil, callback, userdata)
    crypto.BIO_free(bio)
    if key == nil then return false end
    local ok = C.SSL_CTX_use_PrivateKey(self.ptr, key) == 1
    crypto.EVP_PKEY_free(key)
    return ok
  end)
end
-- The loaders above are closures that call OpenSSL with the password callback;
-- compiled after a run of unencrypted keys, the first encrypted key would call
-- back into compiled code ("bad callback").  Keep them, closures included, in
-- the interpreter (spec/callbacks_spec.lua).
jit.off(Context.use_key_file, true)
jit.off(Context.use_key_pem, true)

function Context:use_certificate_chain_file(path)
  local bad = unreadable(path)
  if bad then return nil, bad end
  local ok, why = lib.check("unknown error", C.SSL_CTX_use_certificate_chain_file, self.ptr, path)
  if not ok then return nil, why end
  return true
end

-- Reads PEM objects of one kind from a string: read(bio) returns the next
-- object or NULL; each is passed to take(obj), which owns it.  Stops at the end
-- (PEM "no start line").  Returns the number read, or nil and a reason.
local function each_pem(pem, read, take)
  lib.clear_errors()
  local bio = crypto.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return nil, reason() end
  local n = 0
  while true do
    local obj = read(bio)
    if obj == nil then break end
    local ok, err = take(obj)
    if not ok then crypto.BIO_free(bio); return nil, err end
    n = n + 1
  end
  crypto.BIO_free(bio)
  local code = tonumber(crypto.ERR_peek_last_error())
  if code ~= 0 and not (lib.ERR_GET_LIB(code) == K.ERR_LIB_PEM
                        and lib.ERR_GET_REASON(code) == K.PEM_R_NO_START_LINE) then
    return nil, reason()
  end
  lib.clear_errors()
  return n
end

-- A certificate chain from PEM: the first certificate is the context's, the
-- rest its chain.  (What SSL_CTX_use_certificate_chain_file does, from memory.)
function Context:use_certificate_chain_pem(pem)
  local ctx = self.ptr
  lib.clear_errors()
  local bio = crypto.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return nil, reason() end
  local leaf = crypto.PEM_read_bio_X509_AUX(bio, nil, nil, nil)
  crypto.BIO_free(bio)
  if leaf == nil then return nil, reason() end
  local ok = C.SSL_CTX_use_certificate(ctx, leaf) == 1    -- takes its own reference
  crypto.X509_free(leaf)
  if not ok then return nil, reason() end
  lib.SSL_CTX_clear_chain_certs(ctx)
  local first = true
  local n, err = each_pem(pem, function(b) return crypto.PEM_read_bio_X509(b, nil, nil, nil) end,
    function(x)
      if first then first = false; crypto.X509_free(x); return true end   -- the leaf again
      if lib.SSL_CTX_add0_chain_cert(ctx, x) ~= 1 then crypto.X509_free(x); return nil, reason() end
      return true
    end)
  if not n then return nil, err end
  return true
end

-- Trusted certificates and CRLs from PEM, added to the context's store.
function Context:add_trust_pem(pem)
  local store = C.SSL_CTX_get_cert_store(self.ptr)
  local certs, err = each_pem(pem, function(b) return crypto.PEM_read_bio_X509(b, nil, nil, nil) end,
    function(x)
      local ok = crypto.X509_STORE_add_cert(store, x) == 1
      crypto.X509_free(x)
      if not ok then return nil, reason() end
      return true
    end)
  if not certs then return nil, err end
  local crls
  crls, err = self:add_crl_pem(pem)
  if not crls then return nil, err end
  return certs + crls
end

-- CRLs from PEM into the store; CRL checks for the whole chain are switched
-- on when there were any.  Returns how many.
function Context:add_crl_pem(pem)
  local store = C.SSL_CTX_get_cert_store(self.ptr)
  local n, err = each_pem(pem, function(b) return crypto.PEM_read_bio_X509_CRL(b, nil, nil, nil) end,
    function(crl)
      local ok = crypto.X509_STORE_add_crl(store, crl) == 1
      crypto.X509_CRL_free(crl)
      if not ok then return nil, reason() end
      return true
    end)
  if not n then return nil, err end
  if n > 0 then
    crypto.X509_STORE_set_flags(store, bit.bor(K.X509_V_FLAG_CRL_CHECK, K.X509_V_FLAG_CRL_CHECK_ALL))
  end
  return n
end

-- X509_V_FLAG_* on the context's verification parameters.
function Context:set_verify_param_flags(flags)
  crypto.X509_VERIFY_PARAM_set_flags(C.SSL_CTX_get0_param(self.ptr), flags)
  return true
end

function Context:check_private_key()
  lib.clear_errors()
  local ok = C.SSL_CTX_check_private_key(self.ptr) == 1
  lib.clear_errors()
  return ok
end

-- Verification ----------------------------------------------------------------------------

function Context:load_verify_locations(cafile, capath)
  local bad = cafile and unreadable(cafile)
  if bad then return nil, bad end
  local ok, why = lib.check("unknown error", C.SSL_CTX_load_verify_locations, self.ptr, cafile, capath)
  if not ok then return nil, why end
  return true
end

function Context:set_default_verify_paths()
  local ok, why = lib.check("unknown error", C.SSL_CTX_set_default_verify_paths, self.ptr)
  if not ok then return nil, why end
  return true
end

-- mode: OR of SSL_VERIFY_* (keeps any verify callback already installed).
function Context:set_verify(mode)
  local flags = self.verify_flags or 0
  C.SSL_CTX_set_verify(self.ptr, mode, nil)
  if flags ~= 0 then cb.set_verify_flags(self.ptr, flags) end
  return true
end

function Context:set_verify_depth(depth)
  C.SSL_CTX_set_verify_depth(self.ptr, depth)
  return true
end

-- flags: cb.VERIFY_CONTINUE / cb.VERIFY_IGNORE_PURPOSE; store_flags: X509_V_FLAG_*.
function Context:set_verify_ext(flags, store_flags)
  self.verify_flags = flags
  cb.set_verify_flags(self.ptr, flags)
  if store_flags and store_flags ~= 0 then
    crypto.X509_STORE_set_flags(C.SSL_CTX_get_cert_store(self.ptr), store_flags)
  end
  return true
end

-- Protocol details ----------------------------------------------------------------------------

function Context:set_options(options)
  C.SSL_CTX_set_options(self.ptr, options)
  return true
end

function Context:set_cipher_list(list)
  local ok, why = lib.check("unknown error", C.SSL_CTX_set_cipher_list, self.ptr, list)
  if not ok then return nil, why end
  return true
end

function Context:set_ciphersuites(list)
  local ok, why = lib.check("unknown error", C.SSL_CTX_set_ciphersuites, self.ptr, list)
  if not ok then return nil, why end
  return true
end

function Context:set_groups(list)
  local ok, why = lib.check("unknown error", lib.SSL_CTX_set1_groups_list, self.ptr, list)
  if not ok then return nil, why end
  return true
end

-- DH parameters asked for during handshakes that negotiate a DHE suite:
-- fn(is_export, keylength) -> PEM "DH PARAMETERS" or nil (LuaSec's dhparam).
function Context:set_dh_function(fn)
  self.anchors.dhparam = fn
  return cb.set_dhparam(self.ptr, fn)
end

function Context:set_session_cache_mode(mode)
  lib.SSL_CTX_set_session_cache_mode(self.ptr, mode)
  return true
end

function Context:set_mode(mode)
  lib.SSL_CTX_set_mode(self.ptr, mode)
  return true
end

function Context:clear_mode(mode)
  lib.SSL_CTX_clear_mode(self.ptr, mode)
  return true
end

function Context:clear_options(options)
  C.SSL_CTX_clear_options(self.ptr, options)
  return true
end

-- Session lifetime in seconds, and the context id sessions are bound to.
function Context:set_session_timeout(seconds)
  C.SSL_CTX_set_timeout(self.ptr, seconds)
  return true
end

function Context:set_session_id_context(id)
  local ok, why = lib.check("unknown error", C.SSL_CTX_set_session_id_context, self.ptr, id, #id)
  if not ok then return nil, why end
  return true
end

-- Session-ticket keys shared by several servers (processes) so that each
-- resumes the others' sessions, rotating as libtls's do: `keys` lists at most
-- 4 keys, newest first, each { name = 16 bytes (carried by the ticket),
-- aes = 32 (AES-256-CBC), hmac = 16 (HMAC-SHA256), added = os.time() when
-- added }.  The newest encrypts, all decrypt, a ticket under an older key is
-- renewed; a key older than `lifetime` seconds (if > 0) is unused.  An empty
-- list gives OpenSSL's own random key back (ljssl.engine.callbacks).
function Context:set_ticket_keys(keys, lifetime)
  local ok, err = cb.set_ticket_keys(self.ptr, keys, lifetime or 0)
  if not ok then return nil, err end
  return true
end

-- DH parameters chosen by OpenSSL: 1 = auto (by key size), 2 = legacy 1024-bit.
function Context:set_dh_auto(mode)
  lib.SSL_CTX_set_dh_auto(self.ptr, mode)
  return true
end

-- ALPN: a client's offer, in wire format.
function Context:set_alpn_protos(wire)
  lib.clear_errors()
  -- returns 0 on success, unlike most of OpenSSL
  if C.SSL_CTX_set_alpn_protos(self.ptr, wire, #wire) ~= 0 then return nil, reason() end
  self.anchors.alpn = wire
  return true
end

-- ALPN on a server: a wire list, or fn(client_wire) -> wire list | nil.
function Context:set_alpn_select(list_or_fn)
  self.anchors.alpn_select = list_or_fn
  if type(list_or_fn) == "function" then
    return cb.set_alpn_function(self.ptr, list_or_fn)
  end
  return cb.set_alpn_list(self.ptr, list_or_fn)
end

-- A DER OCSP response stapled to this server context's handshakes.
function Context:set_ocsp_staple(der)
  self.anchors.staple = der
  return cb.set_ocsp_staple(self.ptr, der)
end

function Context:set_psk_client(fn)
  self.anchors.psk_client = fn
  return cb.set_psk_client(self.ptr, fn)
end

function Context:set_psk_server(fn, hint)
  self.anchors.psk_server = fn
  if hint then
    local ok, why = lib.check("unknown error", C.SSL_CTX_use_psk_identity_hint, self.ptr, hint)
    if not ok then return nil, why end
  end
  return cb.set_psk_server(self.ptr, fn)
end

-- flags: OR of DANE_FLAG_* (e.g. no_ee_namechecks).
function Context:dane_enable(flags)
  local ok, why = lib.check("unknown error", C.SSL_CTX_dane_enable, self.ptr)
  if not ok then return nil, why end
  if flags and flags ~= 0 then C.SSL_CTX_dane_set_flags(self.ptr, flags) end
  return true
end

context.Context = Context
context.reason = reason
return context
