-- ljssl.engine.callbacks — the OpenSSL callbacks ljssl installs, behind one
-- interface whether the C shim is loaded or not.
--
-- With the shim, verification, ALPN-from-a-list and SNI are C functions that
-- keep their state in OpenSSL ex_data: OpenSSL never re-enters Lua during a
-- handshake or a read.  Without it, the same behaviour comes from LuaJIT
-- callbacks, each created once per process and dispatching on the SSL/SSL_CTX
-- pointer.  Callbacks whose behaviour is a user's Lua function (PSK, ALPN
-- chosen by a function, LuaSec's dhparam) are LuaJIT callbacks either way.
--
-- A LuaJIT callback fired from inside a JIT-compiled FFI call panics the VM
-- ("bad callback").  The functions that call SSL_do_handshake, SSL_read,
-- SSL_write and SSL_shutdown (ljssl.engine.session) exist twice: a compiled copy,
-- and a copy registered here with `guard`, kept in the interpreter by jit.off
-- (a trace that reaches it stops there, so no trace contains those FFI calls).
-- A session runs the compiled copy only while no context it can run on (its
-- own, and those SNI can switch it to) has a LuaJIT callback: installing one
-- marks its SSL_CTX here (`lazy_callback`'s getter takes the context), and the
-- first mark of a context moves `cb.epoch` on, which every copy checks before
-- calling OpenSSL, so each session chooses again at its next call.  Nothing is
-- flushed: connections of contexts without Lua callbacks, and the rest of the
-- program (an nginx worker's own traces), stay compiled.  Callbacks never
-- raise: their bodies run under pcall and fail closed.

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"

local C, crypto, K, shim = lib.ssl, lib.crypto, lib.K, lib.shim
local ffi_cast, ffi_string = ffi.cast, ffi.string

local cb = {}
cb.native = shim ~= nil
cb.VERIFY_CONTINUE = require("cdefs.shim").const.LJSSL_VERIFY_CONTINUE
cb.VERIFY_IGNORE_PURPOSE = require("cdefs.shim").const.LJSSL_VERIFY_IGNORE_PURPOSE
local MAX_VERIFY_ERRORS = require("cdefs.shim").const.LJSSL_MAX_VERIFY_ERRORS

local uintptr = ffi.typeof("uintptr_t")
local function key(p) return tonumber(ffi_cast(uintptr, p)) end
cb.key = key

-- Per-object state for the Lua implementations, keyed by pointer value.  The
-- owners (engine context and session) call forget_* when they free the pointer,
-- so an address reused by OpenSSL never finds stale state.
local ctx_state, ssl_state = {}, {}

local function state_of(tbl, p, create)
  local k = key(p)
  local s = tbl[k]
  if not s and create then
    s = {}
    tbl[k] = s
  end
  return s
end

function cb.forget_ctx(ctx) ctx_state[key(ctx)] = nil end
function cb.forget_ssl(ssl) ssl_state[key(ssl)] = nil end

-- JIT protection -------------------------------------------------------------------

-- epoch.n changes whenever a session may have to change copies; a table, so
-- that compiled code reads the current value.
local epoch = { n = 0 }
cb.epoch = epoch
local lua_callbacks_live, everywhere = false, false

-- Keeps an I/O function (the session's second copy) in the interpreter.
function cb.guard(fn)
  jit.off(fn)
  return fn
end

-- OpenSSL may now call a LuaJIT callback on `ctx` (an SSL_CTX *).  Without a
-- context (a caller that cannot name one), every session takes the
-- interpreted copy from its next call on.
local function lua_callback_on(ctx)
  lua_callbacks_live = true
  if ctx == nil then
    if not everywhere then everywhere = true; epoch.n = epoch.n + 1 end
    return
  end
  local s = state_of(ctx_state, ctx, true)
  if not s.lua then
    s.lua = true
    epoch.n = epoch.n + 1
  end
end
cb.lua_callback_on = lua_callback_on

local function ctx_has_lua(ctx)
  if everywhere then return true end
  local s = ctx ~= nil and ctx_state[key(ctx)]
  return s and s.lua or false
end
cb.ctx_has_lua = ctx_has_lua

-- True when a LuaJIT callback can run inside this connection's SSL calls: on
-- its context `ctx`, the SSL's current one, or one SNI can switch it to.
function cb.session_has_lua(ssl, ctx)
  if ctx_has_lua(ctx) then return true end
  if ssl == nil then return false end
  if ctx_has_lua(C.SSL_get_SSL_CTX(ssl)) then return true end
  local s = ssl_state[key(ssl)]
  for _, target in ipairs(s and s.sni_ctxs or {}) do
    if ctx_has_lua(target) then return true end
  end
  return false
end

-- Whether any LuaJIT callback has been installed in this process.
function cb.lua_callbacks_live() return lua_callbacks_live end

-- Runs `fn(...)` for a callback; any Lua error gives `failure` instead.
local function protected(failure, fn, ...)
  local ok, result = pcall(fn, ...)
  if ok and result ~= nil then return result end
  return failure
end

-- One LuaJIT callback of C type `ctype`, created on first use (a clear error
-- when no callback slot is free; nothing is installed then).  The getter takes
-- the SSL_CTX the callback is about to be installed on, which is marked as
-- running Lua (no argument marks every context).
local function lazy_callback(ctype, body, what)
  local made
  return function(ctx)
    if not made then
      made = lib.new_callback(ctype, body, what)
    end
    lua_callback_on(ctx)
    return made
  end
end

-- Verification -------------------------------------------------------------------

local store_idx
local function store_ssl(store)
  store_idx = store_idx or C.SSL_get_ex_data_X509_STORE_CTX_idx()
  return ffi_cast("SSL *", crypto.X509_STORE_CTX_get_ex_data(store, store_idx))
end

local function lua_verify(ok, store)
  if ok == 1 then return 1 end
  local ssl = store_ssl(store)
  if ssl == nil then return ok end
  local err = crypto.X509_STORE_CTX_get_error(store)
  local s = state_of(ssl_state, ssl, true)
  s.errors = s.errors or {}
  if err ~= K.X509_V_OK and #s.errors < MAX_VERIFY_ERRORS then
    s.errors[#s.errors + 1] = { crypto.X509_STORE_CTX_get_error_depth(store), err }
  end
  local cs = state_of(ctx_state, C.SSL_get_SSL_CTX(ssl))
  local flags = cs and cs.verify_flags or 0
  return bit.band(flags, cb.VERIFY_CONTINUE) ~= 0 and 1 or ok
end

local function lua_cert_verify(store)
  local ssl = store_ssl(store)
  if ssl ~= nil then
    local cs = state_of(ctx_state, C.SSL_get_SSL_CTX(ssl))
    if cs and bit.band(cs.verify_flags or 0, cb.VERIFY_IGNORE_PURPOSE) ~= 0 then
      local param = crypto.X509_STORE_CTX_get0_param(store)
      if param ~= nil then
        crypto.X509_VERIFY_PARAM_set_purpose(param, K.X509_PURPOSE_SSL_SERVER)
        crypto.X509_VERIFY_PARAM_set_trust(param, K.X509_TRUST_SSL_SERVER)
      end
    end
  end
  return crypto.X509_verify_cert(store)
end

local verify_callback = lazy_callback("SSL_verify_cb", function(ok, store)
  return protected(0, lua_verify, ok, store)
end, "verify")
local cert_verify_callback = lazy_callback("int (*)(X509_STORE_CTX *, void *)", function(store)
  return protected(0, lua_cert_verify, store)
end, "certificate verify")

-- Installs LuaSec's verifyext behaviour (flags: VERIFY_CONTINUE and/or
-- VERIFY_IGNORE_PURPOSE; 0 removes it) on top of the context's verify mode.
function cb.set_verify_flags(ctx, flags)
  local mode = C.SSL_CTX_get_verify_mode(ctx)
  if flags == 0 then
    C.SSL_CTX_set_verify(ctx, mode, nil)
    C.SSL_CTX_set_cert_verify_callback(ctx, nil, nil)
  elseif shim then
    shim.ljssl_ctx_set_verify_flags(ctx, flags)
    C.SSL_CTX_set_verify(ctx, mode, shim.ljssl_verify_cb)
    C.SSL_CTX_set_cert_verify_callback(ctx, shim.ljssl_cert_verify_cb, nil)
  else
    state_of(ctx_state, ctx, true).verify_flags = flags
    C.SSL_CTX_set_verify(ctx, mode, verify_callback(ctx))
    C.SSL_CTX_set_cert_verify_callback(ctx, cert_verify_callback(ctx), nil)
  end
  return true
end

local depths = ffi.new("int[?]", MAX_VERIFY_ERRORS)
local errors = ffi.new("int[?]", MAX_VERIFY_ERRORS)
-- The verification errors recorded for a connection: { {depth, code}, ... }.
function cb.verify_errors(ssl)
  local list = {}
  if shim then
    local n = math.min(shim.ljssl_verify_errors(ssl, depths, errors, MAX_VERIFY_ERRORS),
                       MAX_VERIFY_ERRORS)
    for i = 0, n - 1 do list[#list + 1] = { depths[i], errors[i] } end
  else
    local s = state_of(ssl_state, ssl)
    for i, e in ipairs(s and s.errors or {}) do list[i] = { e[1], e[2] } end
  end
  return list
end

-- ALPN on a server ----------------------------------------------------------------

local select_out = ffi.new("unsigned char *[1]")

local function choose(out, outlen, server, server_len, client, client_len)
  if C.SSL_select_next_proto(select_out, outlen, server, server_len, client, client_len)
     ~= K.OPENSSL_NPN_NEGOTIATED then
    return K.SSL_TLSEXT_ERR_NOACK
  end
  out[0] = select_out[0]
  return K.SSL_TLSEXT_ERR_OK
end

local function lua_alpn_select(ssl, out, outlen, client, client_len)
  local cs = state_of(ctx_state, C.SSL_get_SSL_CTX(ssl))
  if not cs then return K.SSL_TLSEXT_ERR_NOACK end
  local wire = cs.alpn
  if cs.alpn_fn then
    wire = cs.alpn_fn(ffi_string(client, client_len))
    if type(wire) ~= "string" or #wire == 0 then return K.SSL_TLSEXT_ERR_NOACK end
    -- *out must stay valid after we return: keep the string with the context
    cs.alpn_last = wire
  end
  if not wire then return K.SSL_TLSEXT_ERR_NOACK end
  return choose(out, outlen, wire, #wire, client, client_len)
end

local alpn_callback = lazy_callback("SSL_CTX_alpn_select_cb_func",
  function(ssl, out, outlen, client, client_len)
    return protected(K.SSL_TLSEXT_ERR_NOACK, lua_alpn_select, ssl, out, outlen, client, client_len)
  end, "ALPN")

-- Server ALPN from a fixed list, in wire format; chosen in the server's order.
function cb.set_alpn_list(ctx, wire)
  if shim then
    if shim.ljssl_ctx_set_alpn(ctx, wire, #wire) ~= 1 then return nil, "out of memory" end
    C.SSL_CTX_set_alpn_select_cb(ctx, shim.ljssl_alpn_select_cb, nil)
  else
    state_of(ctx_state, ctx, true).alpn = wire
    C.SSL_CTX_set_alpn_select_cb(ctx, alpn_callback(ctx), nil)
  end
  return true
end

-- Server ALPN chosen by fn(client_wire) -> server wire list (or nil: no ALPN).
-- A Lua function, so a LuaJIT callback even with the shim.
function cb.set_alpn_function(ctx, fn)
  local cs = state_of(ctx_state, ctx, true)
  cs.alpn_fn = fn
  C.SSL_CTX_set_alpn_select_cb(ctx, alpn_callback(ctx), nil)
  return true
end

-- SNI on a server connection ---------------------------------------------------------

local function lua_sni(ssl, alert)
  local name = C.SSL_get_servername(ssl, K.TLSEXT_NAMETYPE_host_name)
  local s = state_of(ssl_state, ssl)
  if name == nil or not s or not s.sni then return K.SSL_TLSEXT_ERR_NOACK end
  local target = s.sni[ffi_string(name)]
  if not target then
    for _, ctx in ipairs(s.sni_by_cert or {}) do
      local cert = C.SSL_CTX_get0_certificate(ctx)
      if cert ~= nil and crypto.X509_check_host(cert, name, 0, 0, nil) == 1 then
        target = ctx
        break
      end
    end
  end
  if target then
    C.SSL_set_SSL_CTX(ssl, target)
    return K.SSL_TLSEXT_ERR_OK
  end
  if s.sni_strict then
    alert[0] = K.SSL_AD_UNRECOGNIZED_NAME
    return K.SSL_TLSEXT_ERR_ALERT_FATAL
  end
  return K.SSL_TLSEXT_ERR_OK
end

local sni_callback = lazy_callback("int (*)(SSL *, int *, void *)", function(ssl, alert)
  return protected(K.SSL_TLSEXT_ERR_ALERT_FATAL, lua_sni, ssl, alert)
end, "SNI")

-- Maps host names to contexts for one server connection.  `map` is
-- { [name] = SSL_CTX* }; `by_cert` (optional) lists contexts chosen when their
-- certificate is valid for the name asked, tried in order after the map.  The
-- caller keeps the contexts alive for the connection's life (the shim also
-- up-references them).
function cb.set_sni(ssl, ctxs, map, strict, by_cert)
  -- the contexts this connection can run on from now: if one runs Lua and the
  -- connection's own does not, the session must change copies
  local s = state_of(ssl_state, ssl, true)
  s.sni_ctxs = ctxs
  if not ctx_has_lua(C.SSL_get_SSL_CTX(ssl)) then
    for _, ctx in ipairs(ctxs) do
      if ctx_has_lua(ctx) then epoch.n = epoch.n + 1; break end
    end
  end
  if shim then
    for name, target in pairs(map) do
      if shim.ljssl_ssl_add_sni(ssl, name, target) ~= 1 then return nil, "out of memory" end
    end
    for _, target in ipairs(by_cert or {}) do
      if shim.ljssl_ssl_add_sni(ssl, nil, target) ~= 1 then return nil, "out of memory" end
    end
    shim.ljssl_ssl_set_sni_strict(ssl, strict and 1 or 0)
    for _, ctx in ipairs(ctxs) do
      lib.SSL_CTX_set_tlsext_servername_callback(ctx, shim.ljssl_sni_cb)
    end
  else
    s.sni, s.sni_strict, s.sni_by_cert = map, strict and true or false, by_cert
    for _, ctx in ipairs(ctxs) do lib.SSL_CTX_set_tlsext_servername_callback(ctx, sni_callback(ctx)) end
  end
  return true
end

-- OCSP stapling on a server ------------------------------------------------------------

local function lua_ocsp_staple(ssl)
  if C.SSL_is_server(ssl) == 0 then return 1 end
  local cs = state_of(ctx_state, C.SSL_get_SSL_CTX(ssl))
  local der = cs and cs.staple
  if not der then return K.SSL_TLSEXT_ERR_NOACK end
  local copy = crypto.CRYPTO_malloc(#der, "ljssl", 0)     -- OpenSSL frees it
  if copy == nil then return K.SSL_TLSEXT_ERR_ALERT_FATAL end
  ffi.copy(copy, der, #der)
  if lib.SSL_set_tlsext_status_ocsp_resp(ssl, copy, #der) ~= 1 then
    crypto.CRYPTO_free(copy, "ljssl", 0)
    return K.SSL_TLSEXT_ERR_ALERT_FATAL
  end
  return K.SSL_TLSEXT_ERR_OK
end

local ocsp_callback = lazy_callback("int (*)(SSL *, void *)", function(ssl)
  return protected(K.SSL_TLSEXT_ERR_ALERT_FATAL, lua_ocsp_staple, ssl)
end, "OCSP")

-- Staples this DER OCSP response to server handshakes on ctx.
function cb.set_ocsp_staple(ctx, der)
  if shim then
    if shim.ljssl_ctx_set_ocsp_staple(ctx, der, #der) ~= 1 then return nil, "out of memory" end
    lib.SSL_CTX_set_tlsext_status_cb(ctx, shim.ljssl_ocsp_staple_cb)
  else
    state_of(ctx_state, ctx, true).staple = der
    lib.SSL_CTX_set_tlsext_status_cb(ctx, ocsp_callback(ctx))
  end
  return true
end

-- PSK ---------------------------------------------------------------------------------
-- client: fn(hint|nil, max_identity_len, max_psk_len) -> identity, psk
-- server: fn(identity, max_psk_len) -> psk

local function lua_psk_client(ssl, hint, identity, max_identity, psk, max_psk)
  local cs = state_of(ctx_state, C.SSL_get_SSL_CTX(ssl))
  if not cs or not cs.psk_client then return 0 end
  local id, key = cs.psk_client(hint ~= nil and ffi_string(hint) or nil,
                                tonumber(max_identity), tonumber(max_psk))
  if type(id) ~= "string" or type(key) ~= "string" then return 0 end
  if #id + 1 > max_identity or #key > max_psk then return 0 end
  ffi.copy(identity, id)          -- copies the terminating NUL too
  ffi.copy(psk, key, #key)
  return #key
end

local function lua_psk_server(ssl, identity, psk, max_psk)
  local cs = state_of(ctx_state, C.SSL_get_SSL_CTX(ssl))
  if not cs or not cs.psk_server then return 0 end
  local key = cs.psk_server(identity ~= nil and ffi_string(identity) or nil, tonumber(max_psk))
  if type(key) ~= "string" or #key > max_psk then return 0 end
  ffi.copy(psk, key, #key)
  return #key
end

local psk_client_callback = lazy_callback("SSL_psk_client_cb_func",
  function(ssl, hint, identity, max_identity, psk, max_psk)
    return protected(0, lua_psk_client, ssl, hint, identity, max_identity, psk, max_psk)
  end, "PSK client")
local psk_server_callback = lazy_callback("SSL_psk_server_cb_func",
  function(ssl, identity, psk, max_psk)
    return protected(0, lua_psk_server, ssl, identity, psk, max_psk)
  end, "PSK server")

function cb.set_psk_client(ctx, fn)
  state_of(ctx_state, ctx, true).psk_client = fn
  C.SSL_CTX_set_psk_client_callback(ctx, psk_client_callback(ctx))
  return true
end

function cb.set_psk_server(ctx, fn)
  state_of(ctx_state, ctx, true).psk_server = fn
  C.SSL_CTX_set_psk_server_callback(ctx, psk_server_callback(ctx))
  return true
end

-- DH parameters during the handshake (LuaSec's dhparam) ------------------------------------
-- fn(is_export, keylength) -> PEM "DH PARAMETERS" | nil, called by OpenSSL's
-- temporary-DH callback only when a DHE suite is negotiated (OpenSSL 3.0
-- passes false, 1024).  No parameters, a bad PEM or an error in fn: the
-- callback answers NULL and the handshake fails, as LuaSec's does for nil.
-- The function is Lua, so a LuaJIT callback either way; with the shim it only
-- hands over the PEM and the C trampoline parses and keeps the DH.

-- The PEM fn gives for this connection, and the state of its context (after
-- SNI, as LuaSec looks the function up on SSL_get_SSL_CTX).
local function dh_pem(ssl, is_export, keylength)
  local cs = state_of(ctx_state, C.SSL_get_SSL_CTX(ssl))
  if not cs or not cs.dhparam then return nil end
  local pem = cs.dhparam(is_export ~= 0, tonumber(keylength))
  if type(pem) ~= "string" or #pem == 0 then return nil end
  return pem, cs
end

local function lua_tmp_dh(ssl, is_export, keylength)
  local pem, cs = dh_pem(ssl, is_export, keylength)
  if not pem then return nil end
  local bio = crypto.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return nil end
  local dh = lib.optional("PEM_read_bio_DHparams")(bio, nil, nil, nil)
  crypto.BIO_free(bio)
  if dh == nil then return nil end
  -- OpenSSL takes its own reference and expects the callback to keep one: the
  -- context keeps the last parameters, as LuaSec's does
  cs.dh = ffi.gc(dh, lib.optional("DH_free"))
  return dh
end

local function lua_dh_pem(ssl, is_export, keylength, len)
  local pem, cs = dh_pem(ssl, is_export, keylength)
  if not pem then return nil end
  cs.dh_pem = pem          -- the shim reads the string after we return
  len[0] = #pem
  return pem
end

local tmp_dh_callback = lazy_callback("DH *(*)(SSL *, int, int)", function(ssl, is_export, keylength)
  return protected(nil, lua_tmp_dh, ssl, is_export, keylength)
end, "DH parameters")
local dh_pem_callback = lazy_callback("ljssl_dh_pem_fn", function(ssl, is_export, keylength, len)
  return protected(nil, lua_dh_pem, ssl, is_export, keylength, len)
end, "DH parameters")

-- Installs fn as the context's source of DH parameters.  Returns true, or nil
-- and why (an OpenSSL built without its deprecated APIs has no DH callback).
function cb.set_dhparam(ctx, fn)
  if shim then
    state_of(ctx_state, ctx, true).dhparam = fn
    if shim.ljssl_ctx_set_dh_pem_cb(ctx, dh_pem_callback(ctx)) ~= 1 then return nil, "out of memory" end
    return true
  end
  local set_callback, why = lib.optional("SSL_CTX_set_tmp_dh_callback")
  if not set_callback or not lib.optional("PEM_read_bio_DHparams") or not lib.optional("DH_free") then
    return nil, why or "needs an OpenSSL built with its deprecated APIs"
  end
  state_of(ctx_state, ctx, true).dhparam = fn
  set_callback(ctx, tmp_dh_callback(ctx))
  return true
end

-- Ticket keys --------------------------------------------------------------------------
-- Session-ticket keys that rotate as libtls's do: the newest valid key
-- encrypts new tickets, every valid key decrypts, and a ticket under an
-- older key is renewed (the callback answers 2); a key is valid for
-- `lifetime` seconds after it was added (when lifetime > 0).  With the shim
-- the keys live in C (ex_data on the SSL_CTX) and the callback is C: no Lua
-- runs during a handshake.  Without it, the keys are copied into cdata
-- buffers that are cleansed when replaced or collected, and one LuaJIT
-- callback serves every context.

local shim_const = require("cdefs.shim").const
local TICKET_NAME = shim_const.LJSSL_TICKET_NAME_LEN
local TICKET_AES = shim_const.LJSSL_TICKET_AES_LEN
local TICKET_HMAC = shim_const.LJSSL_TICKET_HMAC_LEN
local TICKET_KEY = shim_const.LJSSL_TICKET_KEY_LEN
local MAX_TICKET_KEYS = shim_const.LJSSL_MAX_TICKET_KEYS
cb.MAX_TICKET_KEYS = MAX_TICKET_KEYS

local function cleanse(buf) crypto.OPENSSL_cleanse(buf, ffi.sizeof(buf)) end

-- A copy of key material that is cleansed before LuaJIT frees it.
local function secret(s)
  local buf = ffi.new("unsigned char[?]", #s)
  ffi.copy(buf, s, #s)
  return ffi.gc(buf, cleanse)
end

local function cleanse_keys(keys)
  for _, k in ipairs(keys or {}) do
    cleanse(k.aes)
    cleanse(k.hmac)
  end
end

-- The HMAC's parameters ({ digest = "SHA256" }, OSSL_MAC_PARAM_DIGEST), built
-- once: the MAC context OpenSSL hands the callback has neither key nor digest.
local hmac_params
local function get_hmac_params()
  if hmac_params then return hmac_params end
  local bld = crypto.OSSL_PARAM_BLD_new()
  if bld == nil then return nil end
  local params
  if crypto.OSSL_PARAM_BLD_push_utf8_string(bld, "digest", "SHA256", 0) == 1 then
    params = crypto.OSSL_PARAM_BLD_to_param(bld)
  end
  crypto.OSSL_PARAM_BLD_free(bld)
  if params == nil then return nil end
  hmac_params = ffi.gc(params, crypto.OSSL_PARAM_free)
  return hmac_params
end

-- The first valid key (the newest) when `name` is nil, else the valid key of
-- that name; and its place in the list.  (Key names are not secret: tickets
-- carry them in clear.)
local function find_ticket_key(keys, lifetime, name)
  local now = os.time()
  for i = 1, #keys do
    local k = keys[i]
    if not (lifetime > 0 and now - lifetime > k.added) and (name == nil or name == k.name) then
      return k, i
    end
  end
end

local function lua_ticket_key(ssl, key_name, iv, cctx, hctx, enc)
  local cs = state_of(ctx_state, C.SSL_get_SSL_CTX(ssl))
  local keys = cs and cs.ticket_keys
  -- 0: no ticket is issued (enc) or the ticket is not accepted; the
  -- connection goes on with a full handshake either way
  if not keys then return 0 end
  local k, index = find_ticket_key(keys, cs.ticket_lifetime,
                                   enc == 0 and ffi_string(key_name, TICKET_NAME) or nil)
  if not k then return 0 end
  local params = get_hmac_params()
  if params == nil then return -1 end
  if enc ~= 0 then
    ffi.copy(key_name, k.name, TICKET_NAME)
    -- OpenSSL's iv buffer is EVP_MAX_IV_LENGTH bytes, AES-CBC's iv length
    if crypto.RAND_bytes(iv, K.EVP_MAX_IV_LENGTH) ~= 1
       or crypto.EVP_EncryptInit_ex(cctx, crypto.EVP_aes_256_cbc(), nil, k.aes, iv) ~= 1 then
      return -1
    end
  elseif crypto.EVP_DecryptInit_ex(cctx, crypto.EVP_aes_256_cbc(), nil, k.aes, iv) ~= 1 then
    return -1
  end
  if crypto.EVP_MAC_init(hctx, k.hmac, TICKET_HMAC, params) ~= 1 then return -1 end
  -- a ticket under an older key is renewed under the newest
  return (enc ~= 0 or index == 1) and 1 or 2
end

local ticket_key_callback = lazy_callback(
  "int (*)(SSL *, unsigned char *, unsigned char *, EVP_CIPHER_CTX *, EVP_MAC_CTX *, int)",
  function(ssl, key_name, iv, cctx, hctx, enc)
    -- a Lua error refuses the ticket (or issues none): a full handshake
    return protected(0, lua_ticket_key, ssl, key_name, iv, cctx, hctx, enc)
  end, "ticket key")

local function check_ticket_keys(keys, lifetime)
  if type(keys) ~= "table" or #keys > MAX_TICKET_KEYS then
    error(("ticket keys: a list of at most %d keys expected"):format(MAX_TICKET_KEYS), 3)
  end
  for i, k in ipairs(keys) do
    if type(k) ~= "table" or type(k.name) ~= "string" or #k.name ~= TICKET_NAME
       or type(k.aes) ~= "string" or #k.aes ~= TICKET_AES
       or type(k.hmac) ~= "string" or #k.hmac ~= TICKET_HMAC or type(k.added) ~= "number" then
      error(("ticket key %d: { name = %d bytes, aes = %d, hmac = %d, added = seconds } expected")
        :format(i, TICKET_NAME, TICKET_AES, TICKET_HMAC), 3)
    end
  end
  if type(lifetime) ~= "number" then error("ticket key lifetime: seconds expected", 3) end
end

-- Installs `keys` (newest first: { name = 16 bytes, aes = 32, hmac = 16,
-- added = os.time() when added }) on ctx; keys older than `lifetime` seconds
-- (if > 0) are not used.  An empty list gives OpenSSL's own key back.  The
-- keys are those of the connection's current context (after SNI), so a
-- server installs the same keys on each of its contexts.
function cb.set_ticket_keys(ctx, keys, lifetime)
  check_ticket_keys(keys, lifetime)
  local n = #keys
  local fn = nil
  if shim then
    local blob = ffi.new("unsigned char[?]", math.max(n, 1) * TICKET_KEY)
    local added = ffi.new("time_t[?]", math.max(n, 1))
    for i, k in ipairs(keys) do
      local at = blob + (i - 1) * TICKET_KEY
      ffi.copy(at, k.name, TICKET_NAME)
      ffi.copy(at + TICKET_NAME, k.aes, TICKET_AES)
      ffi.copy(at + TICKET_NAME + TICKET_AES, k.hmac, TICKET_HMAC)
      added[i - 1] = k.added
    end
    local ok = shim.ljssl_ctx_set_ticket_keys(ctx, blob, added, n, lifetime)
    cleanse(blob)              -- the shim keeps its own copy
    if ok ~= 1 then return nil, "out of memory" end
    if n > 0 then fn = shim.ljssl_ticket_key_cb end
  else
    local cs = state_of(ctx_state, ctx, true)
    cleanse_keys(cs.ticket_keys)
    cs.ticket_keys, cs.ticket_lifetime = nil, nil
    if n > 0 then
      local copies = {}
      for i, k in ipairs(keys) do
        copies[i] = { name = k.name, aes = secret(k.aes), hmac = secret(k.hmac), added = k.added }
      end
      cs.ticket_keys, cs.ticket_lifetime = copies, lifetime
      fn = ticket_key_callback(ctx)
    end
  end
  lib.clear_errors()
  if C.SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, fn) ~= 1 then
    local _, reason = lib.pop_error()
    return nil, reason or "failed to set the ticket key callback"
  end
  return true
end

return cb
