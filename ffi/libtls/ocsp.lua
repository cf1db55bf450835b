-- libtls.ocsp — libtls's OCSP handling on OpenSSL: the peer's responder URL,
-- and the verification of a response (stapled, or fetched by the program) with
-- libtls's rules and messages.  Used by the libtls face after a handshake.

local ffi = require "ffi"
local lib = require "ljssl.lib"
local cert = require "ljssl.engine.cert"

local crypto, K = lib.crypto, lib.K
local ffi_string = ffi.string

local ocsp = {}

local JITTER_SEC, MAXAGE_SEC = 60, 14 * 24 * 60 * 60


local check = lib.check

-- An ASN1_TIME (or GENERALIZEDTIME) as seconds since 1970, or -1.
ocsp.epoch = cert.epoch

-- The peer's OCSP details after a handshake of engine session `s` (`cert`, the
-- peer's certificate from s:peer_certificate(), when the caller has it):
-- { cert = X509 * (owned), session = s, url = "..." }, or nil and libtls's
-- message.
function ocsp.setup(s, cert)
  cert = cert or s:peer_certificate()
  if not cert then return nil, "no peer certificate for OCSP" end
  local urls = check(nil, crypto.X509_get1_ocsp, cert)
  if not urls then return nil, "no OCSP URLs in peer certificate" end
  local first = crypto.OPENSSL_sk_value(ffi.cast("OPENSSL_STACK *", urls), 0)
  local url = first ~= nil and ffi_string(ffi.cast("const char *", first)) or nil
  crypto.X509_email_free(urls)
  if not url then return nil, "no OCSP URLs in peer certificate" end
  return { cert = cert, session = s, url = url }
end

local function cstr(p) return p ~= nil and ffi_string(p) or nil end

local x509_stack = ffi.typeof("struct stack_st_X509 *")

-- The certificates the peer sent, as the STACK_OF(X509) OCSP wants (what
-- SSL_get_peer_cert_chain holds: a server's lacks the client's leaf).  The
-- stack borrows them from the engine's list; `state` keeps both.
local function peer_stack(state)
  local s = state.session
  local list = s:peer_chain()
  local sk = crypto.OPENSSL_sk_new_null()
  if sk == nil then return nil end
  ffi.gc(sk, crypto.OPENSSL_sk_free)
  for i = s.server and 2 or 1, #list do
    if crypto.OPENSSL_sk_push(sk, list[i]) <= 0 then return nil end
  end
  state.chain_list, state.chain_stack = list, sk
  return ffi.cast(x509_stack, sk)
end

-- The issuer's certificate id for the peer's certificate.
local function cert_id(state, chain, store)
  local cert = state.cert
  local issuer = crypto.X509_find_by_subject(chain, crypto.X509_get_issuer_name(cert))
  if issuer ~= nil then return check(nil, crypto.OCSP_cert_to_id, nil, cert, issuer) end
  local sctx = crypto.X509_STORE_CTX_new()
  if sctx == nil then return nil end
  local out = ffi.new("X509 *[1]")
  local id
  if check(nil, crypto.X509_STORE_CTX_init, sctx, store, cert, chain)
     and check(nil, crypto.X509_STORE_CTX_get1_issuer, out, sctx, cert) then
    id = check(nil, crypto.OCSP_cert_to_id, nil, cert, out[0])
    crypto.X509_free(out[0])
  end
  crypto.X509_STORE_CTX_free(sctx)
  return id
end

local status, reason = ffi.new("int[1]"), ffi.new("int[1]")
local revtime, thisupd, nextupd = ffi.new("ASN1_GENERALIZEDTIME *[1]"),
  ffi.new("ASN1_GENERALIZEDTIME *[1]"), ffi.new("ASN1_GENERALIZEDTIME *[1]")
local der_in = ffi.new("const unsigned char *[1]")

-- Verifies a DER OCSP response for the peer in `state`, against the trust
-- store of engine context `e`; fills state.result.  Returns true, or nil and
-- libtls's message ("ocsp verify failed: revoked cert - keyCompromise", ...).
function ocsp.process(state, der, e)
  der_in[0] = ffi.cast("const unsigned char *", der)
  local resp = check(nil, crypto.d2i_OCSP_RESPONSE, nil, der_in, #der)
  if not resp then return nil, "unable to parse OCSP response" end
  ffi.gc(resp, crypto.OCSP_RESPONSE_free)
  local br = check(nil, crypto.OCSP_response_get1_basic, resp)
  if not br then return nil, "cannot load ocsp reply" end
  ffi.gc(br, crypto.OCSP_BASICRESP_free)
  local chain = peer_stack(state)
  if not chain then return nil, "ocsp verify failed" end
  local store = e:cert_store()
  if not check(nil, crypto.OCSP_basic_verify, br, chain, store, K.OCSP_TRUSTOTHER) then
    return nil, "ocsp verify failed"
  end
  local response_status = crypto.OCSP_response_status(resp)
  if response_status ~= K.OCSP_RESPONSE_STATUS_SUCCESSFUL then
    return nil, "ocsp verify failed: response - " .. cstr(crypto.OCSP_response_status_str(response_status))
  end
  local id = cert_id(state, chain, store)
  if id == nil then return nil, "ocsp verify failed: no issuer cert" end
  ffi.gc(id, crypto.OCSP_CERTID_free)
  if not check(nil, crypto.OCSP_resp_find_status, br, id, status, reason, revtime, thisupd, nextupd) then
    return nil, "ocsp verify failed: no result for cert"
  end
  if not check(nil, crypto.OCSP_check_validity, thisupd[0], nextupd[0], JITTER_SEC, MAXAGE_SEC) then
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
