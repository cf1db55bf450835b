-- ljssl.lib — the library layer: loads libssl, libcrypto and the optional shim,
-- checks the OpenSSL version, turns the error queue into messages, and gives
-- Lua forms of the calls OpenSSL only has as macros.  Everything above it (the
-- engine, the faces) reaches OpenSSL through this module.
--
--   local lib = require "ljssl.lib"
--   local C, K = lib.ssl, lib.K        -- libssl namespace, generated constants
--
-- Environment: LJSSL_LIBSSL / LJSSL_LIBCRYPTO name the shared objects to load;
-- LJSSL_SHIM names the shim (a path), or "off" to run without it.

local ffi = require "ffi"
local bit = require "bit"

local band, rshift = bit.band, bit.rshift
local ffi_string, ffi_cast = ffi.string, ffi.cast

-- Declarations and constants come by area (ffi/cdefs/<area>.lua).  Loading
-- this module declares only what it needs itself (the version and error
-- functions, the C library); the other areas are declared the first time a
-- module reaches for lib.ssl or lib.crypto, or for a constant outside the
-- areas declared so far, so that a face whose `require` touches neither (the
-- LuaSec face's `require "ssl"`) does not pay for parsing them.
local AREAS = { "err", "bio", "x509", "ssl", "ocsp", "libc" }
local areas = {
  err = require "cdefs.err",
  libc = require "cdefs.libc",
}

local lib = {}

-- Generated constants of every area, in one table.  A name is looked up in
-- the areas on its first use and kept (copying a thousand constants up front
-- would cost more than the lookups a program makes); a name none of the
-- declared areas has declares the rest first.  So K.NAME always answers, but
-- pairs(K) sees only the names used so far: iterate an area's `const`
-- (require("cdefs.ssl").const) to list constants.
local K = {}
local all_declared = false
local function declare_all()
  if all_declared then return end
  all_declared = true
  for _, name in ipairs(AREAS) do
    areas[name] = areas[name] or require("cdefs." .. name)
  end
end
local function find_const(name)
  for _, area in ipairs(AREAS) do
    local a = areas[area]
    local value = a and a.const[name]
    if value ~= nil then return value end
  end
end
setmetatable(K, { __index = function(_, name)
  local value = find_const(name)
  if value == nil and not all_declared then
    declare_all()
    value = find_const(name)
  end
  if value ~= nil then rawset(K, name, value) end
  return value
end })
lib.K = K

-- Loading ------------------------------------------------------------------------

local function load_library(env, names)
  local wanted = os.getenv(env)
  if wanted and wanted ~= "" then
    local ok, clib = pcall(ffi.load, wanted)
    if not ok then
      error(("ljssl: cannot load %s=%s: %s"):format(env, wanted, clib), 0)
    end
    return clib
  end
  local errors = {}
  for _, name in ipairs(names) do
    local ok, clib = pcall(ffi.load, name)
    if ok then return clib end
    errors[#errors + 1] = clib
  end
  error("ljssl: cannot load OpenSSL 3 (" .. table.concat(errors, "; ") ..
        "); install libssl3 or set " .. env, 0)
end

-- When the process already links OpenSSL (nginx/OpenResty), use that copy, so
-- that one process never runs two OpenSSLs; otherwise load libcrypto, then libssl.
local function in_process()
  if os.getenv("LJSSL_LIBSSL") or os.getenv("LJSSL_LIBCRYPTO") then return false end
  return pcall(function() return ffi.C.OpenSSL_version_num and ffi.C.SSL_CTX_new end)
end

local crypto, ssl
if in_process() then
  crypto, ssl = ffi.C, ffi.C
else
  crypto = load_library("LJSSL_LIBCRYPTO", { "libcrypto.so.3", "crypto" })
  ssl = load_library("LJSSL_LIBSSL", { "libssl.so.3", "ssl" })
end
lib.libc = ffi.C
-- lib.ssl and lib.crypto: the namespaces, given out (see the end of this file)
-- once every area is declared.

-- Version --------------------------------------------------------------------------

lib.version_number = tonumber(crypto.OpenSSL_version_num())
lib.version_text = ffi_string(crypto.OpenSSL_version(K.OPENSSL_VERSION))
if lib.version_number < 0x30000000 then
  error(("ljssl needs OpenSSL 3.0 or newer; the loaded library is %s"):format(
    lib.version_text), 0)
end
lib.version_major = tonumber(crypto.OPENSSL_version_major())
lib.version_minor = tonumber(crypto.OPENSSL_version_minor())

-- Functions newer than the 3.0 baseline the cdefs come from (`since` in
-- tools/cdefs.allow): lib.optional(name) gives the C function, or nil and
-- "needs OpenSSL X.Y" when the loaded library is older (or lacks it).  Looked
-- up on first use, never at load: an older OpenSSL still loads ljssl.
-- The same for the few deprecated functions (`deprecated`), which an OpenSSL
-- built with no-deprecated lacks: nil and "needs an OpenSSL built with its
-- deprecated APIs".
local optional_found = {}
local function deprecated_in(area, name)
  for _, n in ipairs(area.deprecated or {}) do
    if n == name then return true end
  end
  return false
end
function lib.optional(name)
  local fn = optional_found[name]
  if fn then return fn end
  declare_all()
  for _, area in pairs(areas) do
    if deprecated_in(area, name) then
      local namespace = area.lib == "ssl" and ssl or crypto
      local ok, found = pcall(function() return namespace[name] end)
      if not ok then return nil, "needs an OpenSSL built with its deprecated APIs" end
      optional_found[name] = found
      return found
    end
    local since = area.since and area.since[name]
    if since then
      local major, minor = since:match("^(%d+)%.(%d+)$")
      local needs = "needs OpenSSL " .. since
      if lib.version_number < tonumber(major) * 0x10000000 + tonumber(minor) * 0x100000 then
        return nil, needs
      end
      local namespace = area.lib == "ssl" and ssl or crypto
      local ok, found = pcall(function() return namespace[name] end)
      if not ok then return nil, needs end
      optional_found[name] = found
      return found
    end
  end
  error("ljssl: " .. tostring(name) .. " is not a `since` or `deprecated` function of tools/cdefs.allow", 2)
end

-- Errors ---------------------------------------------------------------------------

local errbuf = ffi.new("char[256]")

function lib.ERR_SYSTEM_ERROR(e)
  return band(e, K.ERR_SYSTEM_FLAG) ~= 0
end

function lib.ERR_GET_LIB(e)
  if lib.ERR_SYSTEM_ERROR(e) then return K.ERR_LIB_SYS end
  return band(rshift(e, K.ERR_LIB_OFFSET), K.ERR_LIB_MASK)
end

function lib.ERR_GET_REASON(e)
  if lib.ERR_SYSTEM_ERROR(e) then return band(e, K.ERR_SYSTEM_MASK) end
  return band(e, K.ERR_REASON_MASK)
end

-- Empties the queue before an SSL call so that a failure is judged only by its
-- own errors.  Peeking first is several times cheaper than ERR_clear_error,
-- which walks all sixteen slots, on the hot path where the queue is empty.
function lib.clear_errors()
  if crypto.ERR_peek_error() ~= 0 then crypto.ERR_clear_error() end
end

-- Drains the error queue and describes its earliest entry (the cause; later
-- entries are consequences).  Returns nil when the queue is empty, otherwise:
--   code    the packed error code, as a Lua number
--   reason  OpenSSL's reason text ("certificate verify failed"), or for a
--           system error the C library's text ("No such file or directory")
--   line    the full "error:0A000086:SSL routines::certificate verify failed"
function lib.pop_error()
  local e = tonumber(crypto.ERR_get_error())
  if e == 0 then return nil end
  crypto.ERR_clear_error()
  local reason
  if lib.ERR_SYSTEM_ERROR(e) then
    reason = ffi_string(ffi.C.strerror(lib.ERR_GET_REASON(e)))
  else
    local r = crypto.ERR_reason_error_string(e)
    reason = r ~= nil and ffi_string(r) or ("error %d"):format(lib.ERR_GET_REASON(e))
  end
  crypto.ERR_error_string_n(e, errbuf, 256)
  return e, reason, ffi_string(errbuf)
end

-- The one error check for calls off the hot path: runs `fn(...)` on an empty
-- queue and answers its result, or, when it failed (an int at or below 0, a
-- NULL pointer), nil, the reason (`fallback` when OpenSSL queued none), the
-- code and the full line, with the queue drained.  Hot paths (the session's
-- read/write) clear and pop by hand to avoid the indirect call.
function lib.check(fallback, fn, ...)
  if crypto.ERR_peek_error() ~= 0 then crypto.ERR_clear_error() end
  local r = fn(...)
  if r == nil or (type(r) == "number" and r <= 0) then
    local code, reason, line = lib.pop_error()
    return nil, reason or fallback, code, line
  end
  return r
end

-- Macros as Lua --------------------------------------------------------------------
-- Each mirrors the C macro of the same name, with the generated constants.

local stack_ptr = ffi.typeof("OPENSSL_STACK *")
local void_ptr = ffi.typeof("void *")
local x509_ptr = ffi.typeof("X509 *")
local general_name_ptr = ffi.typeof("GENERAL_NAME *")
local void_fn_ptr = ffi.typeof("void (*)(void)")

function lib.OPENSSL_free(p)
  crypto.CRYPTO_free(p, "ljssl", 0)
end

function lib.BIO_get_mem_data(b, pp)
  return crypto.BIO_ctrl(b, K.BIO_CTRL_INFO, 0, pp)
end

function lib.BIO_pending(b)
  return tonumber(crypto.BIO_ctrl(b, K.BIO_CTRL_PENDING, 0, nil))
end

function lib.BIO_wpending(b)
  return tonumber(crypto.BIO_ctrl(b, K.BIO_CTRL_WPENDING, 0, nil))
end

function lib.BIO_should_retry(b)
  return crypto.BIO_test_flags(b, K.BIO_FLAGS_SHOULD_RETRY) ~= 0
end

function lib.BIO_set_mem_eof_return(b, v)
  return crypto.BIO_ctrl(b, K.BIO_C_SET_BUF_MEM_EOF_RETURN, v, nil)
end

function lib.sk_X509_num(sk)
  if sk == nil then return 0 end
  return crypto.OPENSSL_sk_num(ffi_cast(stack_ptr, sk))
end

function lib.sk_X509_value(sk, i)
  return ffi_cast(x509_ptr, crypto.OPENSSL_sk_value(ffi_cast(stack_ptr, sk), i))
end

lib.sk_GENERAL_NAME_num = lib.sk_X509_num

function lib.sk_GENERAL_NAME_value(sk, i)
  return ffi_cast(general_name_ptr, crypto.OPENSSL_sk_value(ffi_cast(stack_ptr, sk), i))
end

-- The command constant is read at the first call (the ssl area is declared
-- by then: its SSL* or SSL_CTX* came through lib.ssl).
local function ctx_ctrl(name)
  local cmd
  return function(ctx, larg, parg)
    cmd = cmd or K[name]
    return ssl.SSL_CTX_ctrl(ctx, cmd, larg or 0, parg)
  end
end

local function ssl_ctrl(name)
  local cmd
  return function(s, larg, parg)
    cmd = cmd or K[name]
    return ssl.SSL_ctrl(s, cmd, larg or 0, parg)
  end
end

lib.SSL_CTX_set_mode = ctx_ctrl("SSL_CTRL_MODE")
lib.SSL_CTX_clear_mode = ctx_ctrl("SSL_CTRL_CLEAR_MODE")
lib.SSL_CTX_set_min_proto_version = ctx_ctrl("SSL_CTRL_SET_MIN_PROTO_VERSION")
lib.SSL_CTX_set_max_proto_version = ctx_ctrl("SSL_CTRL_SET_MAX_PROTO_VERSION")
lib.SSL_CTX_set_session_cache_mode = ctx_ctrl("SSL_CTRL_SET_SESS_CACHE_MODE")
lib.SSL_CTX_set_dh_auto = ctx_ctrl("SSL_CTRL_SET_DH_AUTO")
lib.SSL_set_mode = ssl_ctrl("SSL_CTRL_MODE")
lib.SSL_clear_mode = ssl_ctrl("SSL_CTRL_CLEAR_MODE")

function lib.SSL_CTX_get_mode(ctx)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_MODE, 0, nil)
end

function lib.SSL_get_mode(s)
  return ssl.SSL_ctrl(s, K.SSL_CTRL_MODE, 0, nil)
end

function lib.SSL_CTX_get_min_proto_version(ctx)
  return tonumber(ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_GET_MIN_PROTO_VERSION, 0, nil))
end

function lib.SSL_CTX_get_max_proto_version(ctx)
  return tonumber(ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_GET_MAX_PROTO_VERSION, 0, nil))
end

-- `list` is a Lua string; the call copies it before returning.
function lib.SSL_CTX_set1_groups_list(ctx, list)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_SET_GROUPS_LIST, 0, ffi_cast(void_ptr, list))
end

function lib.SSL_set_tlsext_host_name(s, name)
  return ssl.SSL_ctrl(s, K.SSL_CTRL_SET_TLSEXT_HOSTNAME, K.TLSEXT_NAMETYPE_host_name,
                      ffi_cast(void_ptr, name))
end

function lib.SSL_CTX_set_tlsext_servername_callback(ctx, cb)
  return ssl.SSL_CTX_callback_ctrl(ctx, K.SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                                   ffi_cast(void_fn_ptr, cb))
end

function lib.SSL_CTX_set_tlsext_servername_arg(ctx, arg)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, arg)
end

-- Takes ownership of x509 on success (disarm its finalizer first).
function lib.SSL_CTX_add_extra_chain_cert(ctx, x509)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_EXTRA_CHAIN_CERT, 0, x509)
end

-- Takes ownership of x509 on success (disarm its finalizer first).
function lib.SSL_CTX_add0_chain_cert(ctx, x509)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_CHAIN_CERT, 0, x509)
end

function lib.SSL_CTX_clear_chain_certs(ctx)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_CHAIN, 0, nil)
end

-- keys: 80 bytes (16 name, 32 HMAC key, 32 AES key); copied by OpenSSL.
function lib.SSL_CTX_set_tlsext_ticket_keys(ctx, keys, len)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_SET_TLSEXT_TICKET_KEYS, len, ffi_cast(void_ptr, keys))
end

function lib.SSL_set_tlsext_status_type(s, kind)
  return ssl.SSL_ctrl(s, K.SSL_CTRL_SET_TLSEXT_STATUS_REQ_TYPE, kind, nil)
end

-- pp: unsigned char *[1]; returns the response's length (or -1).
function lib.SSL_get_tlsext_status_ocsp_resp(s, pp)
  return tonumber(ssl.SSL_ctrl(s, K.SSL_CTRL_GET_TLSEXT_STATUS_REQ_OCSP_RESP, 0, pp))
end

-- Takes ownership of `resp` (allocated with CRYPTO_malloc) on success.
function lib.SSL_set_tlsext_status_ocsp_resp(s, resp, len)
  return ssl.SSL_ctrl(s, K.SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP, len, resp)
end

function lib.SSL_CTX_set_tlsext_status_cb(ctx, cb)
  return ssl.SSL_CTX_callback_ctrl(ctx, K.SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB, ffi_cast(void_fn_ptr, cb))
end

function lib.SSL_CTX_get_extra_chain_certs(ctx, pp)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_GET_EXTRA_CHAIN_CERTS, 0, pp)
end

function lib.SSL_CTX_get0_chain_certs(ctx, pp)
  return ssl.SSL_CTX_ctrl(ctx, K.SSL_CTRL_GET_CHAIN_CERTS, 0, pp)
end

function lib.SSL_get0_chain_certs(s, pp)
  return ssl.SSL_ctrl(s, K.SSL_CTRL_GET_CHAIN_CERTS, 0, pp)
end

function lib.SSL_CTX_get_ex_new_index(argl, argp, newf, dupf, freef)
  return crypto.CRYPTO_get_ex_new_index(K.CRYPTO_EX_INDEX_SSL_CTX, argl, argp, newf, dupf, freef)
end

function lib.SSL_get_ex_new_index(argl, argp, newf, dupf, freef)
  return crypto.CRYPTO_get_ex_new_index(K.CRYPTO_EX_INDEX_SSL, argl, argp, newf, dupf, freef)
end

-- SIGPIPE ---------------------------------------------------------------------------
-- A write to a socket the peer has closed raises SIGPIPE, whose default action
-- kills the process.  Ignore it, as LuaSocket does, unless the program has
-- installed a handler of its own.
do
  local sig_ign = ffi_cast("__sighandler_t", K.SIG_IGN)
  local sig_dfl = ffi_cast("__sighandler_t", K.SIG_DFL)
  local previous = ffi.C.signal(K.SIGPIPE, sig_ign)
  if previous ~= sig_dfl and previous ~= sig_ign then
    ffi.C.signal(K.SIGPIPE, previous)
  end
end

-- The shim -------------------------------------------------------------------------

local function here()
  local source = debug.getinfo(1, "S").source
  return source:match("^@(.*)/[^/]*$") or "."
end

local function find_shim()
  local shim_const = require("cdefs.shim").const   -- declares the shim's functions
  local wanted = os.getenv("LJSSL_SHIM")
  if wanted == "off" or wanted == "0" then return nil, "disabled by LJSSL_SHIM" end
  local candidates = {}
  if wanted and wanted ~= "" then
    candidates[1] = wanted
  else
    local dir = here()
    candidates[1] = dir .. "/libljssl_shim.so"
    candidates[2] = dir .. "/../../shim/c/libljssl_shim.so"
    local found = package.searchpath and package.searchpath("libljssl_shim", package.cpath)
    candidates[3] = found
  end
  local why = "not built (run `make shim`)"
  for _, path in ipairs(candidates) do
    local f = io.open(path, "rb")
    if f then
      f:close()
      local ok, clib = pcall(ffi.load, path)
      if not ok then return nil, clib end
      local version = clib.ljssl_shim_version()
      local wanted_version = shim_const.LJSSL_SHIM_VERSION
      if version ~= wanted_version then
        return nil, ("%s has interface version %d, ljssl needs %d; rebuild it"):format(
          path, version, wanted_version)
      end
      return clib, path
    elseif wanted then
      why = wanted .. " does not exist"
    end
  end
  return nil, why
end

-- Callbacks --------------------------------------------------------------------------
-- Each is created once per process.  With the shim it is a C function; without
-- it, a LuaJIT callback that must never raise.

-- A LuaJIT callback of C type `ctype` for `fn`.  LuaJIT has a fixed number of
-- callback slots per process (about 900); when the program has used them all,
-- this raises a clear error (as running out of memory would) instead of
-- LuaJIT's bare "too many callbacks" from deep inside ljssl.
function lib.new_callback(ctype, fn, what)
  local ok, made = pcall(ffi_cast, ctype, fn)
  if ok then return made end
  error(("ljssl: cannot create the %s callback: %s (every LuaJIT callback slot is in use%s)")
    :format(what, tostring(made), lib.shim and "" or "; the C shim needs none: make shim"), 0)
end

local password_cb
-- A pem_password_cb whose userdata is a NUL-terminated password (a Lua string
-- cast to void*; keep the string alive while OpenSSL may call back).
function lib.password_cb()
  if password_cb then return password_cb end
  local shim = lib.shim
  if shim then
    password_cb = shim.ljssl_password_cb
  else
    password_cb = lib.new_callback("pem_password_cb *", function(buf, size, _, userdata)
      if userdata == nil or size <= 0 then return -1 end
      local password = ffi_cast("const char *", userdata)
      local len = math.min(tonumber(ffi.C.strlen(password)), size)
      ffi.copy(buf, password, len)
      return len
    end, "password")
  end
  return password_cb
end

-- On first use ----------------------------------------------------------------------
-- lib.ssl, lib.crypto: the libssl and libcrypto namespaces, every area
-- declared.  lib.shim: the shim's namespace, nil when running without it;
-- lib.shim_info: the path loaded, or why none was.  The shim is looked for
-- the first time either is read.
local shim_looked = false
setmetatable(lib, { __index = function(_, key)
  if key == "ssl" or key == "crypto" then
    declare_all()
    rawset(lib, "ssl", ssl)
    rawset(lib, "crypto", crypto)
    return rawget(lib, key)
  elseif (key == "shim" or key == "shim_info") and not shim_looked then
    shim_looked = true
    local clib, info = find_shim()
    rawset(lib, "shim", clib)
    rawset(lib, "shim_info", info)
    return rawget(lib, key)
  end
end })

return lib
