-- ljssl.engine.trust — the system's trust store, for every face's secure
-- defaults.  Finds the distribution's CA bundle, lets the program choose
-- another (or none), and loads it into a context.  OpenSSL's SSL_CERT_FILE and
-- SSL_CERT_DIR environment variables win wherever the system store is used, as
-- they do for OpenSSL's own tools.

local ffi = require "ffi"
local lib = require "ljssl.lib"

local crypto = lib.crypto

local trust = {}

-- Where distributions keep their bundle, most common first.
trust.CANDIDATES = {
  "/etc/ssl/certs/ca-certificates.crt",                -- Debian, Ubuntu, Arch, Gentoo
  "/etc/pki/tls/certs/ca-bundle.crt",                  -- Fedora, RHEL, CentOS
  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", -- RHEL 7+
  "/etc/ssl/ca-bundle.pem",                            -- openSUSE
  "/etc/ssl/cert.pem",                                 -- Alpine, macOS, OpenBSD
}

local chosen          -- a path set by set(), or false (none), or nil (find)

local function readable(path)
  local f = io.open(path, "rb")
  if not f then return false end
  f:close()
  return true
end

local function env(name)
  local v = os.getenv(name)
  return v ~= "" and v or nil
end

-- The distribution's bundle: path, or nil and the paths tried.
function trust.find()
  local tried = {}
  local default = ffi.string(crypto.X509_get_default_cert_file())
  local candidates = { unpack(trust.CANDIDATES) }
  candidates[#candidates + 1] = default
  for _, path in ipairs(candidates) do
    if readable(path) then return path end
    tried[#tried + 1] = path
  end
  return nil, "no system CA bundle found (tried " .. table.concat(tried, ", ") .. ")"
end

-- What the system store currently means: a file path, or nil and why not.
-- The program's own choice (set) comes first, then SSL_CERT_FILE, then find().
function trust.get()
  if chosen == false then return nil, "the system CA store is disabled" end
  if chosen then return chosen end
  local file = env(ffi.string(crypto.X509_get_default_cert_file_env()))
  if file then return file end
  return trust.find()
end

-- path: use that bundle; nil: find the system's again; false: no system store.
function trust.set(path)
  if path == nil or path == false then
    chosen = path
    return true
  end
  if type(path) ~= "string" then error("bad argument #1 to 'set_system_ca' (string, nil or false expected)", 2) end
  if not readable(path) then return nil, ("cannot read CA bundle %s"):format(path) end
  chosen = path
  return true
end

-- The certificates of a bundle file, parsed once per process (loading a
-- distribution's bundle costs tens of milliseconds; adding parsed
-- certificates to a store is cheap).
local parsed = {}
local function bundle(path)
  if parsed[path] then return parsed[path] end
  local f = io.open(path, "rb")
  if not f then return nil end
  local pem = f:read("*a")
  f:close()
  local certs = {}
  local bio = crypto.BIO_new_mem_buf(pem, #pem)
  while true do
    local x = crypto.PEM_read_bio_X509(bio, nil, nil, nil)
    if x == nil then break end
    certs[#certs + 1] = ffi.gc(x, crypto.X509_free)
  end
  crypto.BIO_free(bio)
  lib.clear_errors()
  parsed[path] = certs
  return certs
end

-- Loads the system store into an engine context: the bundle from get(), plus
-- SSL_CERT_DIR when set (and the store is not the program's own choice).
-- Returns true, or nil and why not.
function trust.load(ctx)
  local dir = chosen == nil and env(ffi.string(crypto.X509_get_default_cert_dir_env())) or nil
  local file, err = trust.get()
  if not file and not dir then return nil, err end
  if dir then
    local ok, derr = ctx:load_verify_locations(nil, dir)
    if not ok then return nil, derr end
  end
  if file then
    local certs = bundle(file)
    if not certs then return ctx:load_verify_locations(file, nil) end  -- OpenSSL's own message
    local store = lib.ssl.SSL_CTX_get_cert_store(ctx.ptr)
    for _, x in ipairs(certs) do crypto.X509_STORE_add_cert(store, x) end  -- takes a reference
    lib.clear_errors()
  end
  return true
end

return trust
