-- ssl.x509 — LuaSec's certificate objects: ssl.x509.load (PEM or DER, from
-- memory; loadfile from a file) and the objects connections return
-- (getpeercertificate and friends), with LuaSec 1.3.2's methods and shapes.
-- Host-name checks go through OpenSSL (X509_check_host, X509_check_ip_asc).

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"
local args = require "ljssl.engine.args"
local object = require "ljssl.engine.object"
local certs = require "ljssl.engine.cert"

local crypto, K, libc = lib.crypto, lib.K, lib.libc
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

-- The X509* behind a certificate object (borrowed: valid while cert lives).
function x509.ptr(cert)
  return check(cert, "ptr").ptr
end

-- Loading ---------------------------------------------------------------------------------

-- The first certificate in `data`, PEM or DER.  nil (no message) when there is
-- none, as LuaSec.
function x509.load(data)
  local p = certs.decode(args.string(data, 1, "load"))
  if p == nil then return nil end
  return x509.wrap(p, true)
end

-- A certificate from a file (PEM or DER): cert, or nil and a reason.
function x509.loadfile(path)
  path = args.string(path, 1, "loadfile")
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data, rerr = f:read("*a")
  f:close()
  if not data then return nil, path .. ": " .. tostring(rerr) end     -- a directory, say
  local cert = x509.load(data)
  if not cert then return nil, path .. ": no certificate (PEM or DER) found" end
  return cert
end

-- Encodings ---------------------------------------------------------------------------------

function methods.pem(c)
  return certs.pem(check(c, "pem").ptr)
end

function methods.der(c)
  return certs.der(check(c, "der").ptr)
end

-- Lowercase hex; any digest OpenSSL knows (LuaSec: sha1, sha256, sha512).
function methods.digest(cert, alg)
  local st = check(cert, "digest")
  alg = args.optstring(alg, 2, "digest", "sha1")
  local md = crypto.EVP_get_digestbyname(alg)
  if md == nil then return nil, ("digest algorithm not supported (%s)"):format(alg) end
  local raw, why = certs.digest(st.ptr, md)
  if not raw then return nil, ("error processing the certificate (%s)"):format(why or "") end
  return certs.hex(raw)
end

-- Validity ----------------------------------------------------------------------------------

local function print_time(t)
  return certs.bio_string(crypto.ASN1_TIME_print, t)
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

-- Identity ----------------------------------------------------------------------------------

function methods.serial(cert)
  local st = check(cert, "serial")
  local bn = crypto.ASN1_INTEGER_to_BN(crypto.X509_get0_serialNumber(st.ptr), nil)
  if bn == nil then return nil end
  local text = crypto.BN_bn2hex(bn)
  crypto.BN_free(bn)
  if text == nil then return nil end
  local out = ffi_string(text)
  lib.OPENSSL_free(text)
  return out
end

function methods.getsignaturename(cert)
  local st = check(cert, "getsignaturename")
  local name = crypto.OBJ_nid2sn(crypto.X509_get_signature_nid(st.ptr))
  return name ~= nil and ffi_string(name) or nil
end

local KEY_TYPES = {
  [K.EVP_PKEY_RSA] = "RSA", [K.EVP_PKEY_DSA] = "DSA",
  [K.EVP_PKEY_DH] = "DH", [K.EVP_PKEY_EC] = "EC",
}

-- pem, type, bits.  type is LuaSec's RSA/DSA/DH/EC, or OpenSSL's short name
-- upper-cased for other keys ("ED25519"; LuaSec says "Unknown").
function methods.pubkey(cert)
  local st = check(cert, "pubkey")
  local key = crypto.X509_get_pubkey(st.ptr)
  if key == nil then return nil end
  ffi.gc(key, crypto.EVP_PKEY_free)
  local pem = certs.bio_string(crypto.PEM_write_bio_PUBKEY, key)
  local id = crypto.EVP_PKEY_get_base_id(key)
  local kind = KEY_TYPES[id]
  if not kind then
    local sn = crypto.OBJ_nid2sn(id)
    kind = sn ~= nil and ffi_string(sn):upper() or "Unknown"
  end
  return pem, kind, tonumber(crypto.EVP_PKEY_get_bits(key))
end

-- Strings under the certificate's encoding: "ai5" (raw bytes) or "utf8".
local utf8_out = ffi.new("unsigned char *[1]")
local function asn1_string(st, s)
  if st.encode == "utf8" then
    local n = crypto.ASN1_STRING_to_UTF8(utf8_out, s)
    if n < 0 then lib.clear_errors(); return nil end
    local out = ffi_string(utf8_out[0], n)
    lib.OPENSSL_free(utf8_out[0])
    return out
  end
  return ffi_string(crypto.ASN1_STRING_get0_data(s), crypto.ASN1_STRING_length(s))
end

local oid_buf = ffi.new("char[128]")
local function oid_text(obj, numeric)
  crypto.OBJ_obj2txt(oid_buf, 128, obj, numeric and 1 or 0)
  return ffi_string(oid_buf)
end

local function name_entries(st, name)
  local list = {}
  for i = 0, crypto.X509_NAME_entry_count(name) - 1 do
    local entry = crypto.X509_NAME_get_entry(name, i)
    local obj = crypto.X509_NAME_ENTRY_get_object(entry)
    list[#list + 1] = { oid = oid_text(obj, true), name = oid_text(obj, false),
                        value = asn1_string(st, crypto.X509_NAME_ENTRY_get_data(entry)) }
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

-- Extensions ----------------------------------------------------------------------------------

local gn_type = ffi.new("int[1]")
local ip_text = ffi.new("char[64]")
local gn_names = {
  [K.GEN_DNS] = "dNSName", [K.GEN_EMAIL] = "rfc822Name",
  [K.GEN_URI] = "uniformResourceIdentifier", [K.GEN_IPADD] = "iPAddress",
}

local function ip_string(s)
  local len = crypto.ASN1_STRING_length(s)
  local family = len == 4 and K.AF_INET or len == 16 and K.AF_INET6 or nil
  if not family then return nil end
  if libc.inet_ntop(family, crypto.ASN1_STRING_get0_data(s), ip_text, 64) == nil then return nil end
  return ffi_string(ip_text)
end

-- LuaSec's shape: only subjectAltName, as
-- { ["2.5.29.17"] = { name = "X509v3 Subject Alternative Name",
--                     dNSName = {...}, rfc822Name = {...}, iPAddress = {...},
--                     uniformResourceIdentifier = {...} } }.
-- otherName, x400Address, directoryName, ediPartyName and registeredID are
-- skipped, as in LuaSec (otherName values are not readable without the struct).
function methods.extensions(cert)
  local st = check(cert, "extensions")
  local result = {}
  local names = crypto.X509_get_ext_d2i(st.ptr, K.NID_subject_alt_name, nil, nil)
  if names == nil then lib.clear_errors(); return result end
  names = ffi.cast("GENERAL_NAMES *", names)
  local san = { name = "X509v3 Subject Alternative Name" }
  for i = 0, lib.sk_GENERAL_NAME_num(names) - 1 do
    local value = crypto.GENERAL_NAME_get0_value(lib.sk_GENERAL_NAME_value(names, i), gn_type)
    local key = gn_names[gn_type[0]]
    if key then
      local s = ffi.cast("ASN1_STRING *", value)
      local text = key == "iPAddress" and ip_string(s) or asn1_string(st, s)
      if text then
        san[key] = san[key] or {}
        san[key][#san[key] + 1] = text
      end
    end
  end
  crypto.GENERAL_NAMES_free(names)
  result["2.5.29.17"] = san
  return result
end

-- Verification ----------------------------------------------------------------------------------

-- cert:issued(subject, chaincert...): true if `subject` verifies against
-- `cert` as the trusted issuer, with the other certificates as untrusted
-- intermediates; otherwise nil and OpenSSL's reason.
function methods.issued(cert, subject, ...)
  local issuer = check(cert, "issued").ptr
  local subj = check(subject, "issued").ptr
  local extra = { ... }
  for i, c in ipairs(extra) do extra[i] = check(c, "issued").ptr end
  local store = crypto.X509_STORE_new()
  local ctx = crypto.X509_STORE_CTX_new()
  if store == nil or ctx == nil then
    if store ~= nil then crypto.X509_STORE_free(store) end
    if ctx ~= nil then crypto.X509_STORE_CTX_free(ctx) end
    return nil, "X509_STORE_new() or X509_STORE_CTX_new() error"
  end
  ffi.gc(store, crypto.X509_STORE_free)
  ffi.gc(ctx, crypto.X509_STORE_CTX_free)
  if crypto.X509_STORE_add_cert(store, issuer) ~= 1 then
    lib.clear_errors()
    return nil, "X509_STORE_add_cert() error"
  end
  local chain = crypto.OPENSSL_sk_new_null()
  ffi.gc(chain, crypto.OPENSSL_sk_free)       -- the stack only borrows the certificates
  for _, p in ipairs(extra) do crypto.OPENSSL_sk_push(chain, p) end
  if crypto.X509_STORE_CTX_init(ctx, store, subj, ffi.cast("struct stack_st_X509 *", chain)) ~= 1 then
    lib.clear_errors()
    return nil, "X509_STORE_CTX_init() error"
  end
  local ok = crypto.X509_verify_cert(ctx)
  local err = crypto.X509_STORE_CTX_get_error(ctx)
  lib.clear_errors()
  if ok ~= 1 then return nil, ffi_string(crypto.X509_verify_cert_error_string(err)) end
  return true
end

-- Host names ---------------------------------------------------------------------------------

local CHECK_FLAGS = {
  no_wildcards = K.X509_CHECK_FLAG_NO_WILDCARDS,
  no_partial_wildcards = K.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
  multi_label_wildcards = K.X509_CHECK_FLAG_MULTI_LABEL_WILDCARDS,
  single_label_subdomains = K.X509_CHECK_FLAG_SINGLE_LABEL_SUBDOMAINS,
  never_check_subject = K.X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
  always_check_subject = K.X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT,
}
x509.CHECK_FLAGS = CHECK_FLAGS

local names = require "ljssl.engine.names"

-- True when the certificate is valid for `hostname` (a DNS name or an IP
-- literal), by OpenSSL's rules: SANs first, the subject CN only when there is
-- no DNS SAN, wildcards only as a whole left-most label (unless flags say
-- otherwise), case-insensitive; one trailing dot is dropped first.  Flags are names
-- from CHECK_FLAGS (LuaSec 2026's checkhost names).
function x509.checkhost(cert, hostname, ...)
  local p = check(cert, "checkhost").ptr
  hostname = args.string(hostname, 2, "checkhost")
  local flags = K.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS
  for i = 1, select("#", ...) do
    local name = args.string((select(i, ...)), i + 2, "checkhost")
    local f = CHECK_FLAGS[name]
    if not f then args.error(i + 2, "checkhost", "invalid flag '" .. name .. "'") end
    if name == "multi_label_wildcards" then
      flags = bit.band(flags, bit.bnot(K.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
    end
    flags = bit.bor(flags, f)
  end
  return names.check(p, hostname, flags)
end

-- Seed 004's ssl.checkhostname(cert, hostname), with OpenSSL's default rules.
function x509.checkhostname(cert, hostname)
  return x509.checkhost(cert, hostname)
end

return x509
