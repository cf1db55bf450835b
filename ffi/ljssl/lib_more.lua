-- ljssl.lib_more — the part of ljssl.lib (ffi/ljssl/lib.lua) that `require
-- "ljssl.lib"` does not parse: the error queue, the macros as Lua, the shim
-- and the callbacks.  ljssl.lib loads it the first time a module reads one of
-- these names from it (lib.check, lib.SSL_CTX_set_mode, lib.shim, ...), and
-- the names are then fields of ljssl.lib like the others.  Not a module to
-- require: it answers the function that fills ljssl.lib in.

local ffi = require "ffi"
local bit = require "bit"

local band, rshift = bit.band, bit.rshift
local ffi_string, ffi_cast = ffi.string, ffi.cast

-- lib: the ljssl.lib table; crypto, ssl: the library namespaces (their areas
-- are declared when a module reaches lib.crypto, lib.ssl); K: the constants;
-- declare(area): declares one area of ffi/cdefs now.  Answers find_shim.
return function(lib, crypto, ssl, K, declare)
declare("err")
declare("libc")

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
  -- a `long` (SSL_CTX_ctrl's macros) comes back as a 64-bit cdata integer;
  -- tonumber gives nil for a pointer
  local n = type(r) == "cdata" and tonumber(r) or r
  if r == nil or (type(n) == "number" and n <= 0) then
    local code, reason, line = lib.pop_error()
    return nil, reason or fallback, code, line
  end
  return r
end

-- Macros as Lua --------------------------------------------------------------------
-- Each mirrors the C macro of the same name, with the generated constants.

-- The stack and certificate types are the x509 area's: made at the first
-- call (the stack came from a function of that area, declared by then).
local stack_ptr, x509_ptr, general_name_ptr
local function stack_types()
  declare("x509")
  stack_ptr = ffi.typeof("OPENSSL_STACK *")
  x509_ptr = ffi.typeof("X509 *")
  general_name_ptr = ffi.typeof("GENERAL_NAME *")
  return stack_ptr
end
local void_ptr = ffi.typeof("void *")
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
  return crypto.OPENSSL_sk_num(ffi_cast(stack_ptr or stack_types(), sk))
end

function lib.sk_X509_value(sk, i)
  local stack = ffi_cast(stack_ptr or stack_types(), sk)
  return ffi_cast(x509_ptr, crypto.OPENSSL_sk_value(stack, i))
end

lib.sk_GENERAL_NAME_num = lib.sk_X509_num

function lib.sk_GENERAL_NAME_value(sk, i)
  local stack = ffi_cast(stack_ptr or stack_types(), sk)
  return ffi_cast(general_name_ptr, crypto.OPENSSL_sk_value(stack, i))
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

-- The shim -------------------------------------------------------------------------

local function here()
  local source = debug.getinfo(1, "S").source   -- this file sits next to lib.lua
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

return find_shim
end
