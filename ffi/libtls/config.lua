-- libtls.config — lua-libtls's configuration objects with libtls semantics:
-- everything is kept as bytes and checked as libtls checks it; the SSL_CTX is
-- built from it by libtls (the client at connect time, the server at
-- libtls.server).  Errors are libtls.error values; the last one stays readable
-- until the next (tls_config_error is not cleared on success).

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"
local engine = require "ljssl.engine.context"
local object = require "ljssl.engine.object"
local cert = require "ljssl.engine.cert"
local E = require "libtls.error"

local crypto, K, libc = lib.crypto, lib.K, lib.libc

local config = {}

-- lua-libtls constants for protocols (tls.h, libtls 3.5 to 3.7)
local TLS_v10, TLS_v11, TLS_v12, TLS_v13 = 2, 4, 8, 16
local TLS_v1x = 30
local TLS_DEFAULT = 24
config.PROTOCOLS = { TLS_v10 = TLS_v10, TLS_v11 = TLS_v11, TLS_v12 = TLS_v12,
                     TLS_v13 = TLS_v13, TLS_v1x = TLS_v1x, TLS_DEFAULT = TLS_DEFAULT }
config.MAX_SESSION_ID_LENGTH = 32
config.TICKET_KEY_SIZE = 48

local class = object.class("libtls.config")
local methods, check = class.methods, class.check
config.check = check
config.state = class.state

-- Results ------------------------------------------------------------------------------

local function fail(st, op, msg)
  st.error = msg
  return false, E.new(op, msg)
end

-- The file's contents, or nil, strerror and what failed ("open" or "read": a
-- directory opens and then fails to read, as in libtls's tls_config_load_file).
local function readfile(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, (err:gsub("^[^:]*: ", "")), "open" end
  local data, rerr = f:read("*a")
  f:close()
  if not data then return nil, tostring(rerr), "read" end
  return data
end

-- new() ------------------------------------------------------------------------------------

local sid = ffi.new("unsigned char[32]")

function config.new()
  crypto.RAND_bytes(sid, 32)
  local st = {
    protocols = TLS_DEFAULT, ciphers = "HIGH:!aNULL", dheparams = 0, ecdhecurves = nil,
    verify_cert = true, verify_name = true, verify_time = true, verify_client = 0,
    verify_depth = 6, prefer_server = true, ocsp_require_stapling = false,
    keypairs = {}, ca_mem = nil, ca_path = nil, crl_mem = nil, alpn = nil,
    session_id = ffi.string(sid, 32), session_lifetime = 0, session_fd = -1, ticket_keys = {},
    -- server engine contexts made from this config -> their session lifetime
    ticket_servers = setmetatable({}, { __mode = "k" }),
  }
  local holder = ffi.new("char[1]")
  return class.new(st, holder)
end

-- parse_protocols ---------------------------------------------------------------------------

local PROTOCOL_NAMES = {
  ["tlsv1.0"] = TLS_v10, ["tlsv1.1"] = TLS_v11, ["tlsv1.2"] = TLS_v12, ["tlsv1.3"] = TLS_v13,
  tlsv1 = TLS_v1x, all = TLS_v1x, legacy = TLS_v1x, default = TLS_DEFAULT, secure = TLS_DEFAULT,
}

-- "tlsv1.2,tlsv1.3", "all:!tlsv1.0", ...: a protocol bitmask, or -1 and an error.
function config.parse_protocols(text)
  text = E.checkstring(text, 1)
  local protocols, first = 0, true
  for entry in (text .. ","):gmatch("([^,:]*)[,:]") do
    entry = entry:gsub("^[ \t]+", ""):lower()
    local negate = entry:sub(1, 1) == "!"
    if negate then entry = entry:sub(2) end
    local bits = PROTOCOL_NAMES[entry]
    if not bits then return -1, E.new("parse_protocols", nil) end
    if negate then
      if first then protocols = TLS_v1x end
      protocols = bit.band(protocols, bit.bnot(bits))
    else
      protocols = bit.bor(protocols, bits)
    end
    first = false
  end
  return protocols
end

function config.default_ca_cert_file()
  local p = crypto.X509_get_default_cert_file()
  return p ~= nil and ffi.string(p) or nil
end

local bio_string = cert.bio_string       -- the PEM of a key

-- A file's contents; with a password, the file is a private key, returned
-- decrypted as PEM.
function config.load_file(path, password)
  path = E.checkstring(path, 1)
  password = E.optstring(password, 2)
  local data, err = readfile(path)
  if not data then return nil, E.new("load_file", err) end
  if not password then return data end
  -- OpenSSL reads the password as a C string: "a\0b" would decrypt with "a"
  if password:find("\0", 1, true) then return nil, E.new("load_file", "failed to read private key") end
  local bio = crypto.BIO_new_mem_buf(data, #data)
  local key = crypto.PEM_read_bio_PrivateKey(bio, nil, lib.password_cb(), ffi.cast("void *", password))
  crypto.BIO_free(bio)
  if key == nil then
    lib.clear_errors()
    return nil, E.new("load_file", "failed to read private key")
  end
  local pem = bio_string(crypto.PEM_write_bio_PrivateKey, key, nil, nil, 0, nil, nil)
  crypto.EVP_PKEY_free(key)
  if not pem then return nil, E.new("load_file", "failed to write private key") end
  return pem
end
-- It runs the password callback, a LuaJIT callback without the shim: never
-- from compiled code ("bad callback").
jit.off(config.load_file)

-- Setters -------------------------------------------------------------------------------------

function methods.set_alpn(cfg, alpn)
  local st = check(cfg, "set_alpn")
  alpn = E.checkstring(alpn, 2)
  local parts, total = {}, 0
  for name in (alpn .. ","):gmatch("([^,]*),") do
    if #name == 0 then return fail(st, "config.set_alpn", "alpn protocol with zero length") end
    if #name > 255 then return fail(st, "config.set_alpn", "alpn protocol too long") end
    total = total + #name + 1
    if total > 65534 then return fail(st, "config.set_alpn", "alpn too large") end
    parts[#parts + 1] = string.char(#name) .. name
  end
  st.alpn = table.concat(parts)
  return true
end

local function file_setter(op, what, store)
  return function(cfg, path)
    local st = check(cfg, op)
    path = E.checkstring(path, 2)
    local data, err, how = readfile(path)
    if not data then
      return fail(st, "config." .. op, ("failed to %s %s file '%s': %s"):format(how, what, path, err))
    end
    return store(st, data, op)
  end
end

local function store_ca(st, data) st.ca_mem = data; return true end
local function store_crl(st, data) st.crl_mem = data; return true end

methods.set_ca_file = file_setter("set_ca_file", "CA", store_ca)
function methods.set_ca(cfg, pem) return store_ca(check(cfg, "set_ca"), E.checkstring(pem, 2)) end
function methods.set_ca_path(cfg, path)
  check(cfg, "set_ca_path").ca_path = E.checkstring(path, 2)
  return true
end
methods.set_crl_file = file_setter("set_crl_file", "CRL", store_crl)
function methods.set_crl(cfg, pem) return store_crl(check(cfg, "set_crl"), E.checkstring(pem, 2)) end

-- The default keypair (the first), created on demand.
local function keypair(st)
  st.keypairs[1] = st.keypairs[1] or {}
  return st.keypairs[1]
end

-- Checks that `pem` holds a certificate; returns nil or the error message.
local function parse_cert(pem)
  local bio, _, _, line = lib.check(nil, crypto.BIO_new_mem_buf, pem, #pem)
  local x
  if bio then
    x, _, _, line = lib.check(nil, crypto.PEM_read_bio_X509, bio, nil, nil, nil)
    crypto.BIO_free(bio)
  end
  if not x then return "failed to load certificate: " .. (line or "unknown error") end
  crypto.X509_free(x)
  return nil
end

local function store_cert(st, pem, op, kp)
  local err = parse_cert(pem)
  if err then return fail(st, "config." .. op, err) end
  (kp or keypair(st)).cert = pem
  return true
end

local function store_key(st, pem, _, kp)
  (kp or keypair(st)).key = pem
  return true
end

local function store_staple(st, der, _, kp)
  (kp or keypair(st)).ocsp = der
  return true
end

methods.set_cert_file = file_setter("set_cert_file", "certificate", store_cert)
function methods.set_cert(cfg, pem) return store_cert(check(cfg, "set_cert"), E.checkstring(pem, 2), "set_cert") end
methods.set_key_file = file_setter("set_key_file", "key", store_key)
function methods.set_key(cfg, pem) return store_key(check(cfg, "set_key"), E.checkstring(pem, 2)) end

-- set_ocsp_staple* use the bare op names, as lua-libtls
function methods.set_ocsp_staple_file(cfg, path)
  local st = check(cfg, "set_ocsp_staple_file")
  path = E.checkstring(path, 2)
  local data, err, how = readfile(path)
  if not data then return fail(st, "set_ocsp_staple", ("failed to %s OCSP staple file '%s': %s"):format(how, path, err)) end
  return store_staple(st, data)
end
function methods.set_ocsp_staple(cfg, der)
  return store_staple(check(cfg, "set_ocsp_staple"), E.checkstring(der, 2))
end

-- A keypair from (cert, key[, staple]) given as files or as memory.
local function keypair_setter(op, from_files, add)
  return function(cfg, cert, key, ...)
    local st = check(cfg, op)
    cert, key = E.checkstring(cert, 2), E.checkstring(key, 3)
    local staple = select("#", ...) > 0 and E.optstring((...), 4) or nil
    local kp = add and {} or keypair(st)
    local function get(path, what)
      if not from_files then return path end
      local data, err, how = readfile(path)
      if not data then
        return nil, ("failed to %s %s file '%s': %s"):format(how, what, path, err)
      end
      return data
    end
    local cdata, err = get(cert, "certificate")
    if not cdata then return fail(st, "config." .. op, err) end
    local ok, e = store_cert(st, cdata, op, kp)
    if not ok then return ok, e end
    local kdata
    kdata, err = get(key, "key")
    if not kdata then return fail(st, "config." .. op, err) end
    kp.key = kdata
    if staple then
      local sdata
      sdata, err = get(staple, "OCSP staple")
      if not sdata then return fail(st, "config." .. op, err) end
      kp.ocsp = sdata
    end
    if add then
      keypair(st)                          -- the default keypair always comes first
      st.keypairs[#st.keypairs + 1] = kp
    end
    return true
  end
end

methods.set_keypair_file = keypair_setter("set_keypair_file", true, false)
methods.set_keypair = keypair_setter("set_keypair", false, false)
methods.add_keypair_file = keypair_setter("add_keypair_file", true, true)
methods.add_keypair = keypair_setter("add_keypair", false, true)

local CIPHER_ALIASES = {
  secure = "HIGH:!aNULL", default = "HIGH:!aNULL", compat = "HIGH:!aNULL",
  legacy = "HIGH:MEDIUM:!aNULL", insecure = "ALL:!aNULL:!eNULL", all = "ALL:!aNULL:!eNULL",
}

function methods.set_ciphers(cfg, ciphers)
  local st = check(cfg, "set_ciphers")
  ciphers = E.checkstring(ciphers, 2)
  local list = CIPHER_ALIASES[ciphers:lower()] or ciphers
  local probe = engine.new("any")
  local ok = probe and probe:set_cipher_list(list)
  if probe then probe:free() end
  if not ok then return fail(st, "config.set_ciphers", ("no ciphers for '%s'"):format(ciphers)) end
  st.ciphers = list
  return true
end

local DHE = { none = 0, auto = -1, legacy = 1024 }

function methods.set_dheparams(cfg, params)
  local st = check(cfg, "set_dheparams")
  params = E.checkstring(params, 2)
  local v = DHE[params:lower()]
  if not v then return fail(st, "config.set_dheparams", ("invalid dhe param '%s'"):format(params)) end
  st.dheparams = v
  return true
end

-- A curve name as OpenSSL's groups list spells it, or nil.
local function curve_name(name)
  local nid = crypto.OBJ_sn2nid(name)
  if nid == K.NID_undef then nid = crypto.OBJ_ln2nid(name) end
  if nid == K.NID_undef then nid = crypto.EC_curve_nist2nid(name) end
  if nid == K.NID_undef then return nil end
  local sn = crypto.OBJ_nid2sn(nid)
  return sn ~= nil and ffi.string(sn) or nil
end

function methods.set_ecdhecurves(cfg, curves)
  local st = check(cfg, "set_ecdhecurves")
  curves = E.checkstring(curves, 2)
  local list = {}
  for name in (curves .. ","):gmatch("([^,:]*)[,:]") do
    if name:lower() == "default" then
      for _, c in ipairs({ "X25519", "prime256v1", "secp384r1" }) do list[#list + 1] = c end
    else
      local c = curve_name(name)
      if not c then return fail(st, "config.set_ecdhecurves", ("invalid ecdhe curve '%s'"):format(name)) end
      list[#list + 1] = c
    end
  end
  st.ecdhecurves = #list > 0 and table.concat(list, ":") or nil
  return true
end

function methods.set_ecdhecurve(cfg, name)
  local st = check(cfg, "set_ecdhecurve")
  name = E.checkstring(name, 2)
  if name:find("[,:]") then
    return fail(st, "config.set_ecdhecurve", ("invalid ecdhe curve '%s'"):format(name))
  end
  if name == "none" or name == "auto" then name = "default" end
  local ok, err = methods.set_ecdhecurves(cfg, name)
  if ok then return true end
  err.op = "config.set_ecdhecurve"
  return false, err
end

-- All integer arguments are ORed (nil counts as 0), as lua-libtls.
function methods.set_protocols(cfg, ...)
  local st = check(cfg, "set_protocols")
  local p = 0
  for i = 1, math.max(select("#", ...), 1) do
    p = bit.bor(p, E.optinteger((select(i, ...)), i + 1, 0))
  end
  st.protocols = p
  return true
end

function methods.set_verify_depth(cfg, depth)
  check(cfg, "set_verify_depth").verify_depth = E.checkinteger(depth, 2)
  return true
end

function methods.set_session_id(cfg, id)
  local st = check(cfg, "set_session_id")
  id = E.checkstring(id, 2)
  if #id > config.MAX_SESSION_ID_LENGTH then return fail(st, "set_session_id", "session ID too large") end
  st.session_id = id .. ("\0"):rep(config.MAX_SESSION_ID_LENGTH - #id)
  return true
end

function methods.set_session_lifetime(cfg, lifetime)
  local st = check(cfg, "set_session_lifetime")
  lifetime = E.checkinteger(lifetime, 2)
  if lifetime > 86400 then return fail(st, "set_session_lifetime", "session lifetime too large") end
  if lifetime ~= 0 and lifetime < 4 then return fail(st, "set_session_lifetime", "session lifetime too small") end
  st.session_lifetime = lifetime
  return true
end

-- libtls's ticket key layout (tls_config_add_ticket_key): the name is the
-- revision as a big-endian uint32 (htonl) padded with zeros to 16 bytes; the
-- 48 bytes are the AES-256 key (32) and then the HMAC-SHA256 key (16).  So
-- libtls and ljssl servers sharing keys read each other's tickets.
local function ticket_name(rev)
  local b = bit.band
  return string.char(b(bit.rshift(rev, 24), 255), b(bit.rshift(rev, 16), 255),
                     b(bit.rshift(rev, 8), 255), b(rev, 255)) .. ("\0"):rep(12)
end

-- Server contexts built from this config follow its ticket keys, as libtls's
-- read the config's keys at each handshake: `e` gets the keys now and again
-- whenever one is added.  (A no-op without keys: OpenSSL's own key serves.)
function config.follow_ticket_keys(st, e, lifetime)
  st.ticket_servers[e] = lifetime
  if not st.ticket_keys[1] then return true end
  return e:set_ticket_keys(st.ticket_keys, lifetime)
end

-- Up to 4 keys, newest first (the newest encrypts, all decrypt); a key is
-- valid for the session lifetime after it is added.  Auto-rekeying stops once
-- a key is added.
function methods.add_ticket_key(cfg, rev, key)
  local st = check(cfg, "add_ticket_key")
  rev = E.checkinteger(rev, 2)
  key = E.checkstring(key, 3)
  if #key ~= config.TICKET_KEY_SIZE then return fail(st, "add_ticket_key", "wrong amount of ticket key data") end
  local name = ticket_name(rev)
  for i, k in ipairs(st.ticket_keys) do
    if k.name == name then
      if i == 1 and k.key == key then return true end      -- re-adding the newest key
      return fail(st, "add_ticket_key", "ticket key already present")
    end
  end
  table.insert(st.ticket_keys, 1, { rev = rev, key = key, name = name, aes = key:sub(1, 32),
                                    hmac = key:sub(33, 48), added = os.time() })
  st.ticket_keys[5] = nil
  for e, lifetime in pairs(st.ticket_servers) do
    if e.ptr ~= nil and not e:set_ticket_keys(st.ticket_keys, lifetime) then
      return fail(st, "add_ticket_key", "failed to set the TLS ticket callback")
    end
  end
  return true
end

local stat = ffi.new("struct ljssl_stat[1]")

-- A client's session file: a regular file of ours, mode 0600; -1 disables it.
function methods.set_session_fd(cfg, fd)
  local st = check(cfg, "set_session_fd")
  fd = E.checkinteger(fd, 2)
  if fd ~= -1 then
    if libc.ljssl_fstat(fd, stat) ~= 0 then
      return fail(st, "config.set_session_fd", "failed to stat session file: " ..
        ffi.string(libc.strerror(ffi.errno())))
    end
    local s = stat[0]
    if bit.band(s.st_mode, K.S_IFMT) ~= K.S_IFREG then
      return fail(st, "config.set_session_fd", "session file is not a regular file")
    end
    local uid = libc.getuid()
    if s.st_uid ~= uid then
      return fail(st, "config.set_session_fd",
        ("session file has incorrect owner (uid %d != %d)"):format(tonumber(s.st_uid), tonumber(uid)))
    end
    local mode = bit.band(tonumber(s.st_mode), 511)
    if mode ~= 384 then     -- 0600
      return fail(st, "config.set_session_fd",
        ("session file has incorrect permissions (%o != 600)"):format(mode))
    end
  end
  st.session_fd, st.session_size = fd, nil   -- the size the face last saw in the file
  return true
end

-- Switches without results ------------------------------------------------------------------

local function switch(name, fn)
  methods[name] = function(cfg) fn(check(cfg, name)) end
end

switch("prefer_ciphers_client", function(st) st.prefer_server = false end)
switch("prefer_ciphers_server", function(st) st.prefer_server = true end)
switch("insecure_noverifycert", function(st) st.verify_cert = false end)
switch("insecure_noverifyname", function(st) st.verify_name = false end)
switch("insecure_noverifytime", function(st) st.verify_time = false end)
switch("verify", function(st) st.verify_cert, st.verify_name, st.verify_time = true, true, true end)
switch("ocsp_require_stapling", function(st) st.ocsp_require_stapling = true end)
switch("verify_client", function(st) st.verify_client = 1 end)
switch("verify_client_optional", function(st) st.verify_client = 2 end)
switch("clear_keys", function(st)
  for _, kp in ipairs(st.keypairs) do kp.key = nil end
end)

-- Helpers for the rest of the face, not public API.

-- The config's last error message (tls_config_error), for libtls contexts.
function config.error_of(cfg)
  return check(cfg, "error").error
end

return config
