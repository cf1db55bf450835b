-- ljssl.engine.names — host names against certificates, by OpenSSL's rules
-- (X509_check_host, X509_check_ip_asc), for every face.

local lib = require "ljssl.lib"

local crypto, K = lib.crypto, lib.K

local names = {}

-- An IP literal (v4, or v6 with or without brackets), returned bare; or nil
-- for a host name.
function names.ip_literal(name)
  if name:match("^%d+%.%d+%.%d+%.%d+$") then return name end
  local bare = name:match("^%[(.*)%]$") or name
  if bare:find(":", 1, true) and bare:match("^[%x:%.]+$") then return bare end
  return nil
end

-- "example.org." names the same host as "example.org".
function names.strip_dot(name)
  return (name:gsub("([^.])%.$", "%1"))
end

-- True when the certificate (an X509*) is valid for `name`: SANs first, the
-- subject CN only without DNS SANs, wildcards as OpenSSL allows them under
-- `flags` (X509_CHECK_FLAG_*; default: no partial wildcards), any case.
function names.check(cert, name, flags)
  name = names.strip_dot(name)
  if name == "" then return false end
  local ip = names.ip_literal(name)
  local rc
  if ip then
    rc = crypto.X509_check_ip_asc(cert, ip, 0)
  else
    rc = crypto.X509_check_host(cert, name, #name, flags or K.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nil)
  end
  lib.clear_errors()
  return rc == 1
end

return names
