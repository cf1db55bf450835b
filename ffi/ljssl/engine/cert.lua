-- ljssl.engine.cert — certificates as the engine hands them to faces: decode
-- PEM or DER into an owned X509 * (freed by the GC), encode back, and the few
-- facts every face shows (subject, issuer, validity, digest).  The LuaSec
-- face's ssl.x509 objects, libtls's peer-certificate queries and the net
-- face's SslCertificate all sit on it, so no face calls another face.

local ffi = require "ffi"
local lib = require "ljssl.lib"

local crypto, K = lib.crypto, lib.K
local ffi_string = ffi.string

local cert = {}

local der_in = ffi.new("const unsigned char *[1]")
local der_out = ffi.new("unsigned char *[1]")
local memdata = ffi.new("char *[1]")
local ucptr = ffi.typeof("const unsigned char *")
local md_buf = ffi.new("unsigned char[?]", K.EVP_MAX_MD_SIZE)
local md_len = ffi.new("unsigned int[1]")

-- Takes ownership of `x` (from a get1/new call), or nil for NULL.
function cert.own(x)
  if x == nil then return nil end
  return ffi.gc(x, crypto.X509_free)
end

-- A new reference to a borrowed (get0) X509 *.
function cert.ref(x)
  if x == nil or crypto.X509_up_ref(x) ~= 1 then return nil end
  return cert.own(x)
end

-- Whether `data` looks like PEM rather than DER.
function cert.is_pem(data)
  return data:find("-----BEGIN", 1, true) ~= nil
end

-- The first certificate in `data` (PEM or DER) as an owned X509 *, or nil.
function cert.decode(data)
  local x
  lib.clear_errors()
  if cert.is_pem(data) then
    local bio = crypto.BIO_new_mem_buf(data, #data)
    if bio == nil then return nil end
    x = crypto.PEM_read_bio_X509(bio, nil, nil, nil)
    crypto.BIO_free(bio)
  else
    der_in[0] = ffi.cast(ucptr, data)
    x = crypto.d2i_X509(nil, der_in, #data)
  end
  lib.clear_errors()
  return cert.own(x)
end

-- What write(bio, ...) writes into a fresh memory BIO (PEM_write_bio_X509,
-- PEM_write_bio_PrivateKey, ...), as a string; nil when it fails.
function cert.bio_string(write, ...)
  local bio = crypto.BIO_new(crypto.BIO_s_mem())
  if bio == nil then lib.clear_errors(); return nil end
  local out
  if lib.check(nil, write, bio, ...) then
    local n = tonumber(lib.BIO_get_mem_data(bio, memdata))
    out = ffi_string(memdata[0], n)
  end
  crypto.BIO_free(bio)
  return out
end

function cert.pem(x)
  return cert.bio_string(crypto.PEM_write_bio_X509, x)
end

function cert.der(x)
  der_out[0] = nil
  local n = lib.check(nil, crypto.i2d_X509, x, der_out)
  if not n then return nil end
  local out = ffi_string(der_out[0], n)
  lib.OPENSSL_free(der_out[0])
  return out
end

-- "/C=../CN=.." one-line names, as OpenSSL's X509_NAME_oneline writes them,
-- of any length (with no buffer OpenSSL allocates one).
local function oneline(name)
  if name == nil then return nil end
  local p = crypto.X509_NAME_oneline(name, nil, 0)
  if p == nil then lib.clear_errors(); return nil end
  local out = ffi_string(p)
  lib.OPENSSL_free(p)
  return out
end
function cert.subject(x) return oneline(crypto.X509_get_subject_name(x)) end
function cert.issuer(x) return oneline(crypto.X509_get_issuer_name(x)) end

-- An ASN1_TIME (or GENERALIZEDTIME) as seconds since 1970, or -1.
local epoch_zero
local pday, psec = ffi.new("int[1]"), ffi.new("int[1]")
local asn1_time_ptr = ffi.typeof("const ASN1_TIME *")
function cert.epoch(t)
  if t == nil then return -1 end
  epoch_zero = epoch_zero or ffi.gc(crypto.ASN1_TIME_set(nil, 0), crypto.ASN1_TIME_free)
  if not lib.check(nil, crypto.ASN1_TIME_diff, pday, psec, epoch_zero, ffi.cast(asn1_time_ptr, t)) then
    return -1
  end
  return pday[0] * 86400 + psec[0]
end

-- The validity period's ends, in seconds since 1970 (-1 when unreadable).
function cert.not_before(x) return cert.epoch(crypto.X509_get0_notBefore(x)) end
function cert.not_after(x) return cert.epoch(crypto.X509_get0_notAfter(x)) end

-- The digest of the DER encoding with `md` (an EVP_MD *, e.g. EVP_sha256()),
-- as raw bytes; or nil and OpenSSL's reason (when it queued one).
function cert.digest(x, md)
  local ok, why = lib.check(nil, crypto.X509_digest, x, md, md_buf, md_len)
  if not ok then return nil, why end
  return ffi_string(md_buf, md_len[0])
end

-- Bytes as lowercase hex ("a1b2..."), as fingerprints are written.
function cert.hex(raw)
  return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

return cert
