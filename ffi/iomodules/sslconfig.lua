-- iomodules.sslconfig — what a TLS socket is configured with: net.SslEncoding,
-- net.SslCertificate (through ljssl.engine.cert), net.SslKey, and
-- net.SslConfiguration (CA certificates, the local certificate, chain and key,
-- peer_verify_mode), and the engine contexts built from a configuration: once
-- per configuration state, role and verify mode, shared by every socket using
-- it (loading the system CA store is the costly part).

local bit = require "bit"
local lib = require "ljssl.lib"
local engine = require "ljssl.engine.context"
local cert = require "ljssl.engine.cert"
local policy = require "ljssl.engine.policy"
local kit = require "iomodules.kit"

local crypto, K = lib.crypto, lib.K
local S, VERIFY = kit.S, kit.VERIFY
local instance_of, badvalue = kit.instance_of, kit.badvalue

local sslconfig = {}

-- SslEncoding, SslCertificate, SslKey -----------------------------------------------------

local SslEncoding = { PEM = 0, DER = 1 }

local Cert = kit.class("SslCertificate")
function Cert.public.new(encoded, format)
  local obj = kit.new_object(Cert)
  local x = type(encoded) == "string" and cert.decode(encoded) or nil
  if x and cert.is_pem(encoded) ~= ((format or SslEncoding.PEM) == SslEncoding.PEM) then
    x = nil                              -- the data is not in the format given
  end
  S[obj] = { cert = x, encoded = x and cert.pem(x) or nil }
  return obj
end
Cert.getters.null = function(obj) return S[obj].cert == nil end
function Cert.methods.to_pem(obj) return S[obj].encoded end

local Key = kit.class("SslKey")
local KEY_ALGORITHMS = { RSA = 0, DSA = 1, EC = 2 }
local KEY_TYPES = { PUBLIC = 0, PRIVATE = 1 }
kit.constants(Key, KEY_ALGORITHMS, KEY_TYPES)

local key_ids = { [0] = K.EVP_PKEY_RSA, [1] = K.EVP_PKEY_DSA, [2] = K.EVP_PKEY_EC }

function Key.public.new(encoded, algorithm, format, kind)
  local obj = kit.new_object(Key)
  local pem
  if type(encoded) == "string" and (kind or KEY_TYPES.PRIVATE) == KEY_TYPES.PRIVATE then
    local bio = crypto.BIO_new_mem_buf(encoded, #encoded)
    local pkey = crypto.PEM_read_bio_PrivateKey(bio, nil, lib.password_cb(), nil)
    crypto.BIO_free(bio)
    if pkey ~= nil then
      local id = crypto.EVP_PKEY_get_base_id(pkey)
      if algorithm == nil or key_ids[algorithm] == id then pem = encoded end
      crypto.EVP_PKEY_free(pkey)
    end
    lib.clear_errors()
  end
  S[obj] = { pem = pem }
  return obj
end
-- PEM_read_bio_PrivateKey may call the password callback, a LuaJIT callback
-- without the shim: never from compiled code ("bad callback").
jit.off(Key.public.new)
Key.getters.null = function(obj) return S[obj].pem == nil end

-- SslConfiguration -------------------------------------------------------------------------

local Config = kit.class("SslConfiguration")

function Config.public.new()
  local obj = kit.new_object(Config)
  S[obj] = { ca = {}, chain = {}, peer_verify_mode = VERIFY.AUTO_VERIFY_PEER }
  return obj
end

function Config.methods.add_ca_certificate(obj, c)
  if not instance_of(c, Cert) then
    kit.argerror(2, "add_ca_certificate", "net.SslCertificate expected, got " .. kit.typename(c))
  end
  local cst = S[c]
  if cst and cst.cert then
    table.insert(S[obj].ca, cst.encoded)
    S[obj].contexts = nil                -- rebuilt at the next handshake
  end
end

-- read/write properties live in the state, through __newindex
local CONFIG_FIELDS = { local_certificate = true, local_certificate_chain = true,
                        private_key = true, peer_verify_mode = true }
local function certificates(v)
  if type(v) ~= "table" then return false end
  for _, c in ipairs(v) do if not instance_of(c, Cert) then return false end end
  return true
end
Config.mt.__newindex = function(obj, k, v)
  if CONFIG_FIELDS[k] then
    if k == "peer_verify_mode" and not kit.verify_mode_ok(v) then
      badvalue(k, v, "VERIFY_NONE, QUERY_PEER, VERIFY_PEER or AUTO_VERIFY_PEER")
    elseif k == "local_certificate" and v ~= nil and not instance_of(v, Cert) then
      badvalue(k, v, "net.SslCertificate")
    elseif k == "private_key" and v ~= nil and not instance_of(v, Key) then
      badvalue(k, v, "net.SslKey")
    elseif k == "local_certificate_chain" and v ~= nil and not certificates(v) then
      badvalue(k, v, "a table of net.SslCertificate")
    end
    S[obj][k] = v
    S[obj].contexts = nil                -- rebuilt at the next handshake
  else
    rawset(obj, k, v)
  end
end
for k in pairs(CONFIG_FIELDS) do Config.getters[k] = function(obj) return S[obj][k] end end

-- Contexts ---------------------------------------------------------------------------------

-- An engine context from a configuration for `role`; nil and Qt's message on
-- bad user data (certificate, key).
local function build_context(cfg, role, verify_mode)
  local cs = cfg and S[cfg] or { ca = {}, chain = {} }
  local e = engine.new(role, K.TLS1_2_VERSION, 0)
  if not e then return nil, "cannot create an SSL context" end
  if cs.local_certificate or cs.private_key then
    local c = cs.local_certificate and S[cs.local_certificate]
    local key = cs.private_key and S[cs.private_key]
    if not c or not c.cert or not key or not key.pem then
      return nil, "Cannot provide a certificate with no key"
    end
    local chain = { c.encoded }
    for _, link in ipairs(cs.local_certificate_chain or {}) do
      if S[link] and S[link].encoded then chain[#chain + 1] = S[link].encoded end
    end
    local loaded, why = e:use_certificate_chain_pem(table.concat(chain))
    if not loaded then     -- Qt's text, with OpenSSL's reason (e.g. "ee key too small")
      return nil, why and "Error loading local certificate, " .. why or "Invalid or empty certificate"
    end
    local keyed, kwhy = e:use_key_pem(key.pem)
    if not keyed then     -- Qt's text, with OpenSSL's reason (e.g. "key values mismatch")
      return nil, kwhy and "Error loading private key, " .. kwhy or "Invalid or empty private key"
    end
    if not e:check_private_key() then return nil, "Private key does not certify public key" end
  end
  if verify_mode ~= VERIFY.VERIFY_NONE then
    -- Qt's CA list: the system store plus the added certificates.  Neither
    -- failing is user data at fault: without anchors the handshake fails
    -- verification with Qt's text
    policy.trust(e, { ca_pem = #cs.ca > 0 and table.concat(cs.ca) or nil, system = true })
  end
  if role == "server" then
    -- a server that asks for certificates cannot resume a session (TLS 1.3
    -- ticket, TLS 1.2 renegotiation) without a session id context: OpenSSL
    -- fails the handshake with "session id context uninitialized"
    e:set_session_id_context("ljssl net")
  end
  if verify_mode == VERIFY.VERIFY_PEER then
    e:set_verify(role == "server"
      and bit.bor(K.SSL_VERIFY_PEER, K.SSL_VERIFY_FAIL_IF_NO_PEER_CERT) or K.SSL_VERIFY_PEER)
  elseif verify_mode == VERIFY.QUERY_PEER then
    -- ask for a certificate, accept whatever comes (the result stays readable)
    e:set_verify(K.SSL_VERIFY_PEER)
    e:set_verify_ext(require("ljssl.engine.callbacks").VERIFY_CONTINUE, 0)
  end
  return e
end

-- The context for a configuration (nil: the default one), `role` and verify
-- mode: built once per configuration state and shared by its sockets.
local default_contexts = {}
function sslconfig.context_for(cfg, role, verify_mode)
  local cache
  if cfg then
    S[cfg].contexts = S[cfg].contexts or {}
    cache = S[cfg].contexts
  else
    cache = default_contexts
  end
  local key = role .. verify_mode
  if not cache[key] then
    local e, err = build_context(cfg, role, verify_mode)
    if not e then return nil, err end
    cache[key] = e
  end
  return cache[key]
end

-- The peer_verify_mode a configuration asks for (nil: none).
function sslconfig.verify_mode(cfg)
  return cfg and S[cfg].peer_verify_mode
end

kit.guard(Config)
kit.guard(Cert)
kit.guard(Key)

sslconfig.SslEncoding, sslconfig.Cert, sslconfig.Key, sslconfig.Config = SslEncoding, Cert, Key, Config
return sslconfig
