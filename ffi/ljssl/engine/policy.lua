-- ljssl.engine.policy — the client policy every face and transport applies:
-- the verify mode, the trust anchors a verifying context loads (CA files, a
-- hashed directory, PEM text, the system store), the SNI a client sends and
-- the host name its handshake checks.
--
-- It is written once, here, because the faces' own copies drifted: ssl.ngx
-- decided "verifying" from verify[1] alone, so verify = {"client_once",
-- "peer"} verified the chain but never the host name.  Whether a context
-- verifies is therefore read back from OpenSSL (SSL_CTX_get_verify_mode),
-- whatever list of LuaSec names or libtls/net settings produced the mode.
--
-- Faces keep their own wording of failures: each function returns true, or
-- nil and OpenSSL's reason (plus, for trust, which wish failed), and the face
-- turns that into its LuaSec string, libtls error or Qt error text.

local bit = require "bit"
local lib = require "ljssl.lib"
local names = require "ljssl.engine.names"

local C, K = lib.ssl, lib.K

local policy = {}

local NONE = {}

-- True when the engine context verifies the peer's certificate.  Under
-- LuaSec's semantics that is "peer" anywhere in the verify list (the names
-- are ORed into one mode), which the mode records exactly.
function policy.verifies(e)
  return bit.band(C.SSL_CTX_get_verify_mode(e.ptr), K.SSL_VERIFY_PEER) ~= 0
end

-- Loads trust anchors into an engine context.  Wishes:
--   cafile, capath  a PEM bundle, a hashed directory (OpenSSL's lookups)
--   ca_pem          PEM text: certificates, and CRLs (which turn on CRL checks)
--   system          the system store (ljssl.engine.trust: ssl.set_system_ca,
--                   SSL_CERT_FILE/SSL_CERT_DIR, the distribution's bundle):
--                   nil = only when none of the above is given, true = as
--                   well (Qt's "system CAs plus the added ones"), false = never
-- The system store comes last, so a face that tolerates its absence (net)
-- still has the explicit anchors loaded.  Returns true, or nil, the reason
-- and which wish failed: "cafile", "capath", "ca_pem" or "system".
function policy.trust(e, w)
  local ok, err
  if w.cafile then
    ok, err = e:load_verify_locations(w.cafile, nil)
    if not ok then return nil, err, "cafile" end
  end
  if w.capath then
    ok, err = e:load_verify_locations(nil, w.capath)
    if not ok then return nil, err, "capath" end
  end
  if w.ca_pem then
    ok, err = e:add_trust_pem(w.ca_pem)
    if not ok then return nil, err, "ca_pem" end
  end
  local system = w.system
  if system == nil then system = not (w.cafile or w.capath or w.ca_pem) end
  if system then
    ok, err = require("ljssl.engine.trust").load(e)   -- the system store: on first use
    if not ok then return nil, err, "system" end
  end
  return true
end

-- Configures an engine context for verifying clients.  Wishes:
--   verify  true: verify the peer's chain (SSL_VERIFY_PEER); false: do not
--           (SSL_VERIFY_NONE); nil: keep the mode the face already set
--           (ssl.newcontext's `verify` list)
--   and those of policy.trust.
-- Anchors are loaded only when the context verifies: an unverified peer needs
-- none, and the system bundle is the costly part of a context (as libtls,
-- which loads no CA under insecure_noverifycert).  Returns what trust returns.
function policy.context(e, w)
  w = w or NONE
  if w.verify ~= nil then e:set_verify(w.verify and K.SSL_VERIFY_PEER or K.SSL_VERIFY_NONE) end
  if not policy.verifies(e) then return true end
  return policy.trust(e, w)
end

-- Prepares a client session (before its handshake).  Wishes:
--   host         the name the client connects to, sent as SNI without a
--                trailing dot, and never for an IP literal (RFC 6066 allows
--                host names only); nil or "": no SNI
--   verify_name  the name the peer's certificate must be valid for, checked
--                by OpenSSL in the handshake (a mismatch fails verification
--                with X509_V_ERR_HOSTNAME_MISMATCH or IP_ADDRESS_MISMATCH);
--                nil: `host` when the context verifies; false: no check here
--                (libtls checks the name itself after the handshake)
-- Returns true, or nil and "invalid host name" (a NUL byte, at which OpenSSL
-- would truncate the name, or an empty name to check) or OpenSSL's reason.
function policy.session(s, w)
  local host, name = w.host, w.verify_name
  if name == nil then name = host ~= nil and policy.verifies(s.ctx) and host end
  if host and host:find("\0", 1, true) then return nil, "invalid host name" end
  if host and host ~= "" then
    local sni = names.strip_dot(host)
    if not names.ip_literal(sni) then
      lib.clear_errors()
      if lib.SSL_set_tlsext_host_name(s.ptr, sni) ~= 1 then
        return nil, (select(2, lib.pop_error())) or "invalid host name"
      end
    end
  end
  if name then return s:set_host(name) end
  return true
end

return policy
