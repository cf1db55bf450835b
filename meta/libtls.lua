---@meta
-- LuaLS annotations for ljssl's libtls face (libtls, libtls.config).

---@class libtls.Error
---@field type table libtls.ERROR
---@field op string
---@field message string?
---@field code integer -1

---@class libtls.Config : userdata
local Config = {}
---@return boolean ok, libtls.Error? err
function Config:set_alpn(alpn) end
---@return boolean ok, libtls.Error? err
function Config:set_ca(pem) end
---@return boolean ok, libtls.Error? err
function Config:set_ca_file(path) end
---@return boolean ok, libtls.Error? err
function Config:set_ca_path(path) end
---@return boolean ok, libtls.Error? err
function Config:set_cert(pem) end
---@return boolean ok, libtls.Error? err
function Config:set_cert_file(path) end
---@return boolean ok, libtls.Error? err
function Config:set_key(pem) end
---@return boolean ok, libtls.Error? err
function Config:set_key_file(path) end
---@return boolean ok, libtls.Error? err
function Config:set_keypair(cert, key, staple) end
---@return boolean ok, libtls.Error? err
function Config:set_keypair_file(cert, key, staple) end
---@return boolean ok, libtls.Error? err
function Config:add_keypair(cert, key, staple) end
---@return boolean ok, libtls.Error? err
function Config:add_keypair_file(cert, key, staple) end
---@return boolean ok, libtls.Error? err
function Config:set_ocsp_staple(der) end
---@return boolean ok, libtls.Error? err
function Config:set_ocsp_staple_file(path) end
---@return boolean ok, libtls.Error? err
function Config:set_ciphers(ciphers) end
---@return boolean ok, libtls.Error? err
function Config:set_crl(pem) end
---@return boolean ok, libtls.Error? err
function Config:set_crl_file(path) end
---@return boolean ok, libtls.Error? err
function Config:set_dheparams(params) end
---@return boolean ok, libtls.Error? err
function Config:set_ecdhecurve(name) end
---@return boolean ok, libtls.Error? err
function Config:set_ecdhecurves(names) end
---@param protocol integer
---@return boolean
function Config:set_protocols(protocol, ...) end
---@return boolean ok, libtls.Error? err
function Config:set_session_fd(fd) end
---@return boolean ok, libtls.Error? err
function Config:set_session_id(sid) end
---@return boolean ok, libtls.Error? err
function Config:set_session_lifetime(seconds) end
---@return boolean ok, libtls.Error? err
function Config:add_ticket_key(rev, key) end
---@return boolean
function Config:set_verify_depth(depth) end
function Config:insecure_noverifycert() end
function Config:insecure_noverifyname() end
function Config:insecure_noverifytime() end
function Config:verify() end
function Config:verify_client() end
function Config:verify_client_optional() end
function Config:ocsp_require_stapling() end
function Config:prefer_ciphers_client() end
function Config:prefer_ciphers_server() end
function Config:clear_keys() end

---@class libtls.Context : userdata
local Ctx = {}
---@return boolean ok, libtls.Error? err
function Ctx:connect(host, port) end
---@return boolean ok, libtls.Error? err
function Ctx:connect_servername(host, port, servername) end
---@return boolean ok, libtls.Error? err
function Ctx:connect_socket(fd, servername) end
---@return boolean ok, libtls.Error? err
function Ctx:connect_fds(fdr, fdw, servername) end
---@return libtls.Context? conn, libtls.Error? err
function Ctx:accept_socket(fd) end
---@return libtls.Context? conn, libtls.Error? err
function Ctx:accept_fds(fdr, fdw) end
---@return boolean ok, libtls.Error? err, integer? want
function Ctx:handshake() end
---@return string? data, libtls.Error? err, boolean? again, integer? want
function Ctx:read(bufsize) end
---@return integer? len, libtls.Error? err, boolean? again, integer? want
function Ctx:write(msg) end
---@return integer? len, libtls.Error? err, boolean? again, integer? want
function Ctx:sendfile(f, bytes, offset) end
---@return boolean ok, libtls.Error? err, integer? want
function Ctx:close() end
function Ctx:reset() end
---@return string? message
function Ctx:error() end
---@return boolean
function Ctx:peer_cert_provided() end
---@return boolean
function Ctx:peer_cert_contains_name(name) end
---@return string?
function Ctx:peer_cert_hash() end
---@return string?
function Ctx:peer_cert_issuer() end
---@return string?
function Ctx:peer_cert_subject() end
---@return integer
function Ctx:peer_cert_notbefore() end
---@return integer
function Ctx:peer_cert_notafter() end
---@return string? pem, libtls.Error? err
function Ctx:peer_cert_chain_pem() end
---@return string?
function Ctx:conn_version() end
---@return string?
function Ctx:conn_cipher() end
---@return integer
function Ctx:conn_cipher_strength() end
---@return string?
function Ctx:conn_alpn_selected() end
---@return string?
function Ctx:conn_servername() end
---@return boolean
function Ctx:conn_session_resumed() end
---@return boolean ok, libtls.Error? err
function Ctx:ocsp_process_response(der) end
---@return string? url, libtls.Error? err
function Ctx:peer_ocsp_url() end
---@return string? result, libtls.Error? err
function Ctx:peer_ocsp_result() end
---@return integer? status, libtls.Error? err
function Ctx:peer_ocsp_cert_status() end
---@return integer? reason, libtls.Error? err
function Ctx:peer_ocsp_crl_reason() end
---@return integer? status, libtls.Error? err
function Ctx:peer_ocsp_response_status() end
---@return integer? epoch, libtls.Error? err
function Ctx:peer_ocsp_this_update() end
---@return integer? epoch, libtls.Error? err
function Ctx:peer_ocsp_next_update() end
---@return integer? epoch, libtls.Error? err
function Ctx:peer_ocsp_revocation_time() end

local libtls = {}
---@return libtls.Context
function libtls.client(cfg) end
---@return libtls.Context? ctx, libtls.Error? err
function libtls.server(cfg) end

local config = {}
---@return libtls.Config
function config.new() end
---@return integer protocols, libtls.Error? err
function config.parse_protocols(text) end
---@return string?
function config.default_ca_cert_file() end
---@return string? data, libtls.Error? err
function config.load_file(path, password) end
