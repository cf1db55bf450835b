-- spec/oracle/libtls.lua — the system libtls (Debian libtls-dev: libretls on
-- OpenSSL 3) behind the same Lua API as ljssl's libtls face, for differential
-- specs.  Test-only: ljssl itself never loads libtls.  Errors are plain strings
-- (tls_error / tls_config_error), the rest follows lua-libtls's conventions.
local ffi = require "ffi"
dofile("spec/oracle/cdefs/types.lua")
local area = dofile("spec/oracle/cdefs/tls.lua")
local K = area.const

local T = ffi.load("libtls.so")
assert(T.tls_init() == 0, "tls_init failed")

local oracle = { name = "system libtls", WANT_POLLIN = K.TLS_WANT_POLLIN, WANT_POLLOUT = K.TLS_WANT_POLLOUT }
oracle.const = K

local function str(p)
  return p ~= nil and ffi.string(p) or nil
end

-- config ---------------------------------------------------------------------------------

local Config = {}
Config.__index = Config
oracle.config = {}

function oracle.config.new()
  local p = T.tls_config_new()
  assert(p ~= nil)
  return setmetatable({ ptr = ffi.gc(p, T.tls_config_free) }, Config)
end

function oracle.config.parse_protocols(s)
  local out = ffi.new("uint32_t[1]")
  if T.tls_config_parse_protocols(out, s) ~= 0 then return -1 end
  return tonumber(out[0])
end

-- The protocol bits this libtls uses (spec/oracle/libtls.allow: they moved in
-- 3.8), and whether it folds TLS 1.0/1.1 into TLS 1.2 as 3.8 and later do.
oracle.protocols = {}
for _, name in ipairs({ "tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3", "tlsv1", "all" }) do
  oracle.protocols[name] = oracle.config.parse_protocols(name)
end
oracle.folds_tls10 = oracle.protocols["tlsv1.0"] == oracle.protocols["tlsv1.2"]

local function result(cfg, rc)
  if rc == 0 then return true end
  return false, str(T.tls_config_error(cfg.ptr))
end

local SIMPLE = {
  set_alpn = "tls_config_set_alpn", set_ca_file = "tls_config_set_ca_file",
  set_ca_path = "tls_config_set_ca_path", set_cert_file = "tls_config_set_cert_file",
  set_key_file = "tls_config_set_key_file", set_ciphers = "tls_config_set_ciphers",
  set_crl_file = "tls_config_set_crl_file", set_dheparams = "tls_config_set_dheparams",
  set_ecdhecurve = "tls_config_set_ecdhecurve", set_ecdhecurves = "tls_config_set_ecdhecurves",
  set_ocsp_staple_file = "tls_config_set_ocsp_staple_file",
}
for name, fn in pairs(SIMPLE) do
  Config[name] = function(cfg, s) return result(cfg, T[fn](cfg.ptr, s)) end
end

local MEM = {
  set_ca = "tls_config_set_ca_mem", set_cert = "tls_config_set_cert_mem",
  set_key = "tls_config_set_key_mem", set_crl = "tls_config_set_crl_mem",
  set_ocsp_staple = "tls_config_set_ocsp_staple_mem",
}
for name, fn in pairs(MEM) do
  Config[name] = function(cfg, s) return result(cfg, T[fn](cfg.ptr, s, #s)) end
end

function Config:set_keypair_file(c, k) return result(self, T.tls_config_set_keypair_file(self.ptr, c, k)) end
function Config:add_keypair_file(c, k) return result(self, T.tls_config_add_keypair_file(self.ptr, c, k)) end
function Config:set_keypair(c, k) return result(self, T.tls_config_set_keypair_mem(self.ptr, c, #c, k, #k)) end
function Config:add_keypair(c, k) return result(self, T.tls_config_add_keypair_mem(self.ptr, c, #c, k, #k)) end
function Config:set_protocols(p) return result(self, T.tls_config_set_protocols(self.ptr, p)) end
function Config:set_verify_depth(n) return result(self, T.tls_config_set_verify_depth(self.ptr, n)) end
function Config:set_session_id(s) return result(self, T.tls_config_set_session_id(self.ptr, s, #s)) end
function Config:set_session_lifetime(n) return result(self, T.tls_config_set_session_lifetime(self.ptr, n)) end
function Config:set_session_fd(fd) return result(self, T.tls_config_set_session_fd(self.ptr, fd)) end
function Config:add_ticket_key(rev, key)
  return result(self, T.tls_config_add_ticket_key(self.ptr, rev, ffi.cast("unsigned char *", key), #key))
end
for _, name in ipairs({ "insecure_noverifycert", "insecure_noverifyname", "insecure_noverifytime",
                        "verify", "verify_client", "verify_client_optional", "ocsp_require_stapling",
                        "prefer_ciphers_client", "prefer_ciphers_server", "clear_keys" }) do
  Config[name] = function(cfg) T["tls_config_" .. name](cfg.ptr) end
end

-- contexts ----------------------------------------------------------------------------------

local Ctx = {}
Ctx.__index = Ctx

local function wrap(p, cfg)
  return setmetatable({ ptr = ffi.gc(p, T.tls_free), cfg = cfg }, Ctx)
end

local function ctx_error(ctx) return str(T.tls_error(ctx.ptr)) end

function oracle.client(cfg)
  local ctx = wrap(T.tls_client(), cfg)
  if T.tls_configure(ctx.ptr, cfg.ptr) ~= 0 then return nil, ctx_error(ctx) end
  return ctx
end

function oracle.server(cfg)
  local ctx = wrap(T.tls_server(), cfg)
  if T.tls_configure(ctx.ptr, cfg.ptr) ~= 0 then return nil, ctx_error(ctx) end
  return ctx
end

-- libtls makes the socket itself (getaddrinfo, socket, connect) and owns it.
function Ctx:connect(host, port)
  if T.tls_connect(self.ptr, host, port) ~= 0 then return false, ctx_error(self) end
  return true
end

function Ctx:connect_servername(host, port, servername)
  if T.tls_connect_servername(self.ptr, host, port, servername) ~= 0 then return false, ctx_error(self) end
  return true
end

function Ctx:connect_socket(fd, servername)
  if T.tls_connect_socket(self.ptr, fd, servername) ~= 0 then return false, ctx_error(self) end
  return true
end

function Ctx:accept_socket(fd)
  local out = ffi.new("struct tls *[1]")
  if T.tls_accept_socket(self.ptr, out, fd) ~= 0 then return nil, ctx_error(self) end
  return wrap(out[0], self.cfg)
end

function Ctx:handshake()
  local rc = T.tls_handshake(self.ptr)
  if rc == 0 then return true end
  if rc == K.TLS_WANT_POLLIN or rc == K.TLS_WANT_POLLOUT then return false, nil, rc end
  return false, ctx_error(self)
end

local buf = ffi.new("uint8_t[16384]")
function Ctx:read(n)
  n = math.min(n or 8192, 16384)
  local rc = tonumber(T.tls_read(self.ptr, buf, n))
  if rc > 0 then return ffi.string(buf, rc) end
  if rc == 0 then return end
  if rc == K.TLS_WANT_POLLIN or rc == K.TLS_WANT_POLLOUT then return nil, nil, true, rc end
  return nil, ctx_error(self)
end

function Ctx:write(s)
  local rc = tonumber(T.tls_write(self.ptr, s, #s))
  if rc == #s and rc > 0 then return rc end
  if rc > 0 then return rc, nil, true, K.TLS_WANT_POLLOUT end
  if rc == 0 then return end
  if rc == K.TLS_WANT_POLLIN or rc == K.TLS_WANT_POLLOUT then return 0, nil, true, rc end
  return nil, ctx_error(self)
end

function Ctx:close()
  local rc = T.tls_close(self.ptr)
  if rc == 0 then return true end
  if rc == K.TLS_WANT_POLLIN or rc == K.TLS_WANT_POLLOUT then return false, nil, rc end
  return false, ctx_error(self)
end

function Ctx:peer_cert_provided() return T.tls_peer_cert_provided(self.ptr) == 1 end
function Ctx:peer_cert_contains_name(n) return T.tls_peer_cert_contains_name(self.ptr, n) == 1 end
function Ctx:peer_cert_hash() return str(T.tls_peer_cert_hash(self.ptr)) end
function Ctx:peer_cert_issuer() return str(T.tls_peer_cert_issuer(self.ptr)) end
function Ctx:peer_cert_subject() return str(T.tls_peer_cert_subject(self.ptr)) end
function Ctx:peer_cert_notbefore() return tonumber(T.tls_peer_cert_notbefore(self.ptr)) end
function Ctx:peer_cert_notafter() return tonumber(T.tls_peer_cert_notafter(self.ptr)) end
function Ctx:peer_cert_chain_pem()
  local len = ffi.new("size_t[1]")
  local p = T.tls_peer_cert_chain_pem(self.ptr, len)
  if p == nil then return nil, ctx_error(self) end
  return ffi.string(p, len[0])
end
function Ctx:conn_version() return str(T.tls_conn_version(self.ptr)) end
function Ctx:conn_cipher() return str(T.tls_conn_cipher(self.ptr)) end
function Ctx:conn_cipher_strength() return T.tls_conn_cipher_strength(self.ptr) end
function Ctx:conn_alpn_selected() return str(T.tls_conn_alpn_selected(self.ptr)) end
function Ctx:conn_servername() return str(T.tls_conn_servername(self.ptr)) end
function Ctx:conn_session_resumed() return T.tls_conn_session_resumed(self.ptr) == 1 end
function Ctx:peer_ocsp_url() return str(T.tls_peer_ocsp_url(self.ptr)) end
function Ctx:peer_ocsp_result() return str(T.tls_peer_ocsp_result(self.ptr)) end
for _, name in ipairs({ "peer_ocsp_cert_status", "peer_ocsp_crl_reason", "peer_ocsp_response_status",
                        "peer_ocsp_this_update", "peer_ocsp_next_update", "peer_ocsp_revocation_time" }) do
  Ctx[name] = function(ctx)
    local v = tonumber(T["tls_" .. name](ctx.ptr))
    if v == -1 then return nil end
    return v
  end
end
function Ctx:ocsp_process_response(der)
  if T.tls_ocsp_process_response(self.ptr, der, #der) ~= 0 then return false, ctx_error(self) end
  return true
end

return oracle
