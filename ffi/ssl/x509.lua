-- ssl.x509 — LuaSec's certificate objects.  ssl.x509.load(pem) and the
-- objects connections return (getpeercertificate and friends).

local ffi = require "ffi"
local lib = require "ssl.lib"
local args = require "ssl.engine.args"
local object = require "ssl.engine.object"

local crypto, K = lib.crypto, lib.K
local ffi_string = ffi.string

local x509 = {}

local class = object.class("X509 certificate")
local methods, check = class.methods, class.check

-- A certificate object for an X509*; `owned` says whether this reference is
-- ours (get1/new) or borrowed (get0), in which case we take one.
function x509.wrap(p, owned)
  if not owned then crypto.X509_up_ref(p) end
  ffi.gc(p, crypto.X509_free)
  return class.new({ ptr = p, encode = "ai5" }, p)
end

function x509.ptr(cert)
  return check(cert, "ptr").ptr
end

-- The first certificate of a PEM string; nil (no message) when there is none,
-- as LuaSec.
function x509.load(pem)
  pem = args.string(pem, 1, "load")
  local bio = crypto.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return nil end
  local p = crypto.PEM_read_bio_X509(bio, nil, nil, nil)
  crypto.BIO_free(bio)
  lib.clear_errors()
  if p == nil then return nil end
  return x509.wrap(p, true)
end

local memdata = ffi.new("char *[1]")

function methods.pem(cert)
  local st = check(cert, "pem")
  local bio = crypto.BIO_new(crypto.BIO_s_mem())
  if bio == nil then return nil end
  local out
  if crypto.PEM_write_bio_X509(bio, st.ptr) == 1 then
    local n = tonumber(lib.BIO_get_mem_data(bio, memdata))
    out = ffi_string(memdata[0], n)
  end
  crypto.BIO_free(bio)
  lib.clear_errors()
  return out
end

local md_buf = ffi.new("unsigned char[?]", K.EVP_MAX_MD_SIZE)
local md_len = ffi.new("unsigned int[1]")

function methods.digest(cert, alg)
  local st = check(cert, "digest")
  alg = args.optstring(alg, 2, "digest", "sha1")
  local md = crypto.EVP_get_digestbyname(alg)
  if md == nil then return nil, ("digest algorithm not supported (%s)"):format(alg) end
  lib.clear_errors()
  if crypto.X509_digest(st.ptr, md, md_buf, md_len) ~= 1 then
    return nil, ("error processing the certificate (%s)"):format(select(2, lib.pop_error()) or "")
  end
  local raw = ffi_string(md_buf, md_len[0])
  return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function print_time(t)
  local bio = crypto.BIO_new(crypto.BIO_s_mem())
  if bio == nil then return nil end
  local out
  if crypto.ASN1_TIME_print(bio, t) == 1 then
    local n = tonumber(lib.BIO_get_mem_data(bio, memdata))
    out = ffi_string(memdata[0], n)
  end
  crypto.BIO_free(bio)
  return out
end

function methods.notbefore(cert)
  return print_time(crypto.X509_get0_notBefore(check(cert, "notbefore").ptr))
end

function methods.notafter(cert)
  return print_time(crypto.X509_get0_notAfter(check(cert, "notafter").ptr))
end

local time_box = ffi.new("time_t[1]")

-- notBefore < t <= notAfter, as LuaSec 1.0.2 and later.
function methods.validat(cert, t)
  local st = check(cert, "validat")
  time_box[0] = args.number(t, 2, "validat")
  local before = crypto.X509_cmp_time(crypto.X509_get0_notBefore(st.ptr), time_box)
  local after = crypto.X509_cmp_time(crypto.X509_get0_notAfter(st.ptr), time_box)
  return before < 0 and after >= 0
end

function methods.serial(cert)
  local st = check(cert, "serial")
  local bn = crypto.ASN1_INTEGER_to_BN(crypto.X509_get0_serialNumber(st.ptr), nil)
  if bn == nil then return nil end
  local hex = crypto.BN_bn2hex(bn)
  crypto.BN_free(bn)
  if hex == nil then return nil end
  local out = ffi_string(hex)
  lib.OPENSSL_free(hex)
  return out
end

function methods.getsignaturename(cert)
  local st = check(cert, "getsignaturename")
  local name = crypto.OBJ_nid2sn(crypto.X509_get_signature_nid(st.ptr))
  return name ~= nil and ffi_string(name) or nil
end

local oid_buf = ffi.new("char[128]")
local utf8_out = ffi.new("unsigned char *[1]")

local function name_entries(st, name)
  local list = {}
  for i = 0, crypto.X509_NAME_entry_count(name) - 1 do
    local entry = crypto.X509_NAME_get_entry(name, i)
    local obj = crypto.X509_NAME_ENTRY_get_object(entry)
    local data = crypto.X509_NAME_ENTRY_get_data(entry)
    crypto.OBJ_obj2txt(oid_buf, 128, obj, 1)
    local oid = ffi_string(oid_buf)
    crypto.OBJ_obj2txt(oid_buf, 128, obj, 0)
    local value
    if st.encode == "utf8" then
      local n = crypto.ASN1_STRING_to_UTF8(utf8_out, data)
      if n >= 0 then
        value = ffi_string(utf8_out[0], n)
        lib.OPENSSL_free(utf8_out[0])
      end
    else
      value = ffi_string(crypto.ASN1_STRING_get0_data(data), crypto.ASN1_STRING_length(data))
    end
    list[#list + 1] = { oid = oid, name = ffi_string(oid_buf), value = value }
  end
  return list
end

function methods.subject(cert)
  local st = check(cert, "subject")
  return name_entries(st, crypto.X509_get_subject_name(st.ptr))
end

function methods.issuer(cert)
  local st = check(cert, "issuer")
  return name_entries(st, crypto.X509_get_issuer_name(st.ptr))
end

function methods.setencode(cert, encode)
  local st = check(cert, "setencode")
  encode = args.string(encode, 2, "setencode")
  if encode ~= "ai5" and encode ~= "utf8" then return false end
  st.encode = encode
  return true
end

return x509
