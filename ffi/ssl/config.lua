-- ssl.config — LuaSec's description of what this build supports: option and
-- protocol names, algorithms, curves, capabilities.  Loadable on its own
-- (LuaSec's crashes when loaded before ssl.context).  `options` and `curves`
-- are filled in on first access, so that `require "ssl"` does not load the
-- engine for them.

local lib = require "ljssl.lib"

local config = {
  protocols = { tlsv1 = true, tlsv1_1 = true, tlsv1_2 = true, tlsv1_3 = true },
  algorithms = { ec = true },
  capabilities = {
    alpn = true, curves_list = true, ecdh_auto = true, psk = true,
    dane = { no_ee_namechecks = true },
  },
}

-- Group names OpenSSL accepts for `curve`/`curveslist`, found by asking it;
-- computed on first use, since few programs look.
local CANDIDATES = {
  "P-256", "P-384", "P-521", "X25519", "X448", "prime256v1", "secp256r1",
  "secp384r1", "secp521r1", "secp256k1", "secp224r1", "secp192r1", "prime192v1",
  "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1",
  "brainpoolP256r1tls13", "brainpoolP384r1tls13", "brainpoolP512r1tls13",
  "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192",
}

setmetatable(config, { __index = function(t, k)
  if k == "options" then
    local options = {}
    for name in pairs(require("ssl.context").OPTIONS) do options[name] = true end
    rawset(t, "options", options)
    return options
  end
  if k ~= "curves" then return nil end
  local curves = {}
  local probe = require("ljssl.engine.context").new("any")
  for _, name in ipairs(CANDIDATES) do
    if probe and probe:set_groups(name) then curves[name] = true end
  end
  lib.clear_errors()
  if probe then probe:free() end
  rawset(t, "curves", curves)
  return curves
end })

return config
