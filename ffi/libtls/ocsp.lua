-- libtls.ocsp — libtls's OCSP handling on OpenSSL: the peer's responder URL,
-- and the verification of a response (stapled, or fetched by the program) with
-- libtls's rules and messages.  Used by the libtls face after a handshake.

local ffi = require "ffi"
local lib = require "ljssl.lib"

local C, crypto, K = lib.ssl, lib.crypto, lib.K
local ffi_string = ffi.string

local ocsp = {}

local JITTER_SEC, MAXAGE_SEC = 60, 14 * 24 * 60 * 60

local epoch_time
local pday, psec = ffi.new("int[1]"), ffi.new("int[1]")

-- An ASN1_TIME (or GENERALIZEDTIME) as seconds since 1970, or -1.
function ocsp.epoch(t)
  if t == nil then return -1 end
  epoch_time = epoch_time or ffi.gc(crypto.ASN1_TIME_set(nil, 0), crypto.ASN1_TIME_free)
  if crypto.ASN1_TIME_diff(pday, psec, epoch_time, ffi.cast("const ASN1_TIME *", t)) ~= 1 then
    lib.clear_errors()
    return -1
  end
  return pday[0] * 86400 + psec[0]
end

-- The peer's certificate and OCSP URL after a handshake:
-- { cert = X509* (ours), chain = the peer's chain (borrowed from ssl), url = "..." },
-- or nil and libtls's message.
function ocsp.setup(ssl)
  local cert = C.SSL_get1_peer_certificate(ssl)
  if cert == nil then return nil, "no peer certificate for OCSP" end
  ffi.gc(cert, crypto.X509_free)
  local urls = crypto.X509_get1_ocsp(cert)
  if urls == nil then
    lib.clear_errors()
    return nil, "no OCSP URLs in peer certificate"
  end
  local first = crypto.OPENSSL_sk_value(ffi.cast("OPENSSL_STACK *", urls), 0)
  local url = first ~= nil and ffi_string(ffi.cast("const char *", first)) or nil
  crypto.X509_email_free(urls)
  if not url then return nil, "no OCSP URLs in peer certificate" end
  return { cert = cert, chain = C.SSL_get_peer_cert_chain(ssl), ssl = ssl, url = url }
end

local function cstr(p) return p ~= nil and ffi_string(p) or nil end

-- The issuer's certificate id for the peer's certificate.
local function cert_id(state, store)
  local cert = state.cert
  local issuer = crypto.X509_find_by_subject(state.chain, crypto.X509_get_issuer_name(cert))
  if issuer ~= nil then return crypto.OCSP_cert_to_id(nil, cert, issuer) end
  local sctx = crypto.X509_STORE_CTX_new()
  if sctx == nil then return nil end
  local out = ffi.new("X509 *[1]")
  local id
  if crypto.X509_STORE_CTX_init(sctx, store, cert, state.chain) == 1
     and crypto.X509_STORE_CTX_get1_issuer(out, sctx, cert) == 1 then
    id = crypto.OCSP_cert_to_id(nil, cert, out[0])
    crypto.X509_free(out[0])
  end
  crypto.X509_STORE_CTX_free(sctx)
  lib.clear_errors()
  return id
end

local status, reason = ffi.new("int[1]"), ffi.new("int[1]")
local revtime, thisupd, nextupd = ffi.new("ASN1_GENERALIZEDTIME *[1]"),
  ffi.new("ASN1_GENERALIZEDTIME *[1]"), ffi.new("ASN1_GENERALIZEDTIME *[1]")
local der_in = ffi.new("const unsigned char *[1]")

-- Verifies a DER OCSP response for the peer in `state`, against the trust
-- store of `ssl_ctx`; fills state.result.  Returns true, or nil and libtls's
-- message ("ocsp verify failed: revoked cert - keyCompromise", ...).
function ocsp.process(state, der, ssl_ctx)
  der_in[0] = ffi.cast("const unsigned char *", der)
  local resp = crypto.d2i_OCSP_RESPONSE(nil, der_in, #der)
  if resp == nil then
    lib.clear_errors()
    return nil, "unable to parse OCSP response"
  end
  ffi.gc(resp, crypto.OCSP_RESPONSE_free)
  local br = crypto.OCSP_response_get1_basic(resp)
  if br == nil then lib.clear_errors(); return nil, "cannot load ocsp reply" end
  ffi.gc(br, crypto.OCSP_BASICRESP_free)
  local store = C.SSL_CTX_get_cert_store(ssl_ctx)
  if crypto.OCSP_basic_verify(br, state.chain, store, K.OCSP_TRUSTOTHER) ~= 1 then
    lib.clear_errors()
    return nil, "ocsp verify failed"
  end
  local response_status = crypto.OCSP_response_status(resp)
  if response_status ~= K.OCSP_RESPONSE_STATUS_SUCCESSFUL then
    return nil, "ocsp verify failed: response - " .. cstr(crypto.OCSP_response_status_str(response_status))
  end
  local id = cert_id(state, store)
  if id == nil then return nil, "ocsp verify failed: no issuer cert" end
  ffi.gc(id, crypto.OCSP_CERTID_free)
  if crypto.OCSP_resp_find_status(br, id, status, reason, revtime, thisupd, nextupd) ~= 1 then
    lib.clear_errors()
    return nil, "ocsp verify failed: no result for cert"
  end
  if crypto.OCSP_check_validity(thisupd[0], nextupd[0], JITTER_SEC, MAXAGE_SEC) ~= 1 then
    lib.clear_errors()
    return nil, "ocsp verify failed: ocsp response not current"
  end
  local cert_status, crl_reason = status[0], reason[0]
  local msg
  if cert_status ~= K.V_OCSP_CERTSTATUS_REVOKED then
    msg = cstr(crypto.OCSP_cert_status_str(cert_status))
  else
    msg = cstr(crypto.OCSP_crl_reason_str(crl_reason))
  end
  state.result = {
    response_status = response_status, cert_status = cert_status, crl_reason = crl_reason,
    message = msg, revocation_time = ocsp.epoch(revtime[0]),
    this_update = ocsp.epoch(thisupd[0]), next_update = ocsp.epoch(nextupd[0]),
  }
  if cert_status ~= K.V_OCSP_CERTSTATUS_GOOD and cert_status ~= K.V_OCSP_CERTSTATUS_UNKNOWN then
    return nil, "ocsp verify failed: revoked cert - " .. cstr(crypto.OCSP_crl_reason_str(crl_reason))
  end
  return true
end

return ocsp
