---@meta
-- LuaLS annotations for ljssl's LuaSec face (ssl, ssl.context, ssl.core,
-- ssl.x509, ssl.https, ssl.ngx).  Add meta/ to your workspace library.

---@class ssl.Params
---@field mode "client"|"server"
---@field protocol "any"|"sslv23"|"tlsv1"|"tlsv1_1"|"tlsv1_2"|"tlsv1_3"
---@field key? string path to a PEM key
---@field password? string|fun():string|false nil: OpenSSL prompts for an encrypted key (as LuaSec); false: refuse
---@field certificate? string path to a PEM chain
---@field certificates? {certificate:string, key:string, password?:string|fun():string|false}[]
---@field cafile? string
---@field capath? string
---@field ciphers? string
---@field ciphersuites? string
---@field verify? string|string[]
---@field options? string|string[]
---@field depth? integer
---@field dhparam? fun(is_export:boolean, keylength:integer):string? called in DHE handshakes: PEM DH parameters
---@field curve? string
---@field curveslist? string
---@field verifyext? string|string[]
---@field alpn? string|string[]|fun(client:string[]):string|string[]
---@field psk? function|{hint:string, callback:function}
---@field dane? boolean|string[]
---@field hostname? string (wrap only) SNI and name checked in the handshake
---@field timeout? number (ssl.connect only) seconds

---@class ssl.Context : userdata
local Context = {}
---@return boolean ok, string? err
function Context:setverifyext(...) end

---@class ssl.Transport
---@field send fun(self, data:string):integer?, string?, integer?
---@field receive fun(self, n:integer):string?, string?, string?
---@field close? fun(self)

---@class ssl.Connection : userdata
local Connection = {}
---@return boolean ok, string? err
function Connection:dohandshake() end
---@param pattern? "*l"|"*a"|integer
---@param prefix? string
---@return string? data, string? err, string? partial
function Connection:receive(pattern, prefix) end
---@param max integer
---@return string? data, string? err
function Connection:receiveany(max) end
---@param data string
---@param i? integer
---@param j? integer
---@return integer? last, string? err, integer? lastsent
function Connection:send(data, i, j) end
---@param t? number seconds; nil or negative blocks
---@param mode? "b"|"t"|"r"
---@return 1
function Connection:settimeout(t, mode) end
function Connection:close() end
---@return boolean ok, string? err
function Connection:shutdown() end
---@return integer fd
function Connection:getfd() end
---@param fd integer
function Connection:setfd(fd) end
---@return boolean
function Connection:dirty() end
---@return "nothing"|"read"|"write"|"x509lookup"
function Connection:want() end
---@return number received, number sent, number age
function Connection:getstats() end
---@return 1
function Connection:setstats(received, sent, age) end
---@param field? string
---@return table|any info, string? err
function Connection:info(field) end
---@return string? finished, string? err
function Connection:getfinished() end
---@return string? finished, string? err
function Connection:getpeerfinished() end
---@return string? material, string? err
function Connection:exportkeyingmaterial(label, length, context) end
---@return string?
function Connection:getalpn() end
---@param name_or_map string|table<string, ssl.Context>
---@param strict? boolean
function Connection:sni(name_or_map, strict) end
---@return string?
function Connection:getsniname() end
---@param name string
---@return boolean? ok, string? err
function Connection:sethost(name) end
---@return boolean ok, string|table? why
function Connection:getpeerverification() end
---@param n? integer
---@return ssl.Certificate? cert, string? err
function Connection:getpeercertificate(n) end
---@return ssl.Certificate[]? chain, string? err
function Connection:getpeerchain() end
---@param n? integer
---@return ssl.Certificate? cert, string? err
function Connection:getlocalcertificate(n) end
---@return ssl.Certificate[]? chain, string? err
function Connection:getlocalchain() end
---@return boolean
function Connection:setdane(basedomain) end
---@return boolean
function Connection:settlsa(usage, selector, mtype, data) end
---@return string? ip, integer|string? port, string? family
function Connection:getpeername() end
---@return string? ip, integer|string? port, string? family
function Connection:getsockname() end
---@return any value, string? err
function Connection:getoption(name) end
---@return 1? ok, string? err
function Connection:setoption(name, value) end
---@return nil, string err
function Connection:setkeepalive() end

---@class ssl.Certificate : userdata
local Certificate = {}
---@return string? pem
function Certificate:pem() end
---@return string? der
function Certificate:der() end
---@param alg? string "sha1" (default), "sha256", "sha512", any OpenSSL digest
---@return string? hex, string? err
function Certificate:digest(alg) end
---@return {oid:string, name:string, value:string}[]
function Certificate:subject() end
---@return {oid:string, name:string, value:string}[]
function Certificate:issuer() end
---@return table<string, table>
function Certificate:extensions() end
---@return string
function Certificate:notbefore() end
---@return string
function Certificate:notafter() end
---@param t number seconds since 1970
---@return boolean
function Certificate:validat(t) end
---@return string? pem, string? type, integer? bits
function Certificate:pubkey() end
---@return string? hex
function Certificate:serial() end
---@param encoding "ai5"|"utf8"
---@return boolean
function Certificate:setencode(encoding) end
---@return string?
function Certificate:getsignaturename() end
---@param subject ssl.Certificate
---@return true|nil ok, string? err
function Certificate:issued(subject, ...) end

local ssl = {}
---@param params ssl.Params
---@return ssl.Context? ctx, string? err
function ssl.newcontext(params) end
---@param sock table|ssl.Transport|ssl.Connection
---@param params_or_ctx ssl.Params|ssl.Context
---@return ssl.Connection? conn, string? err
function ssl.wrap(sock, params_or_ctx) end
---@param host string
---@param port integer
---@param flags? ssl.Params
---@return ssl.Connection? conn, table|string sock_or_err
function ssl.connect(host, port, flags) end
---@param send fun(data:string):integer?, string?
---@param receive fun(n:integer):string?, string?, string?
---@param close? fun()
---@return ssl.Transport
function ssl.transport(send, receive, close) end
---@param data string PEM or DER
---@return ssl.Certificate?
function ssl.loadcertificate(data) end
---@return boolean
function ssl.checkhostname(cert, hostname) end
---@return boolean
function ssl.checkhost(cert, hostname, ...) end
---@return string? path, string? err
function ssl.find_system_ca() end
---@return string? path, string? err
function ssl.get_system_ca() end
---@param path string|nil|false
---@return boolean? ok, string? err
function ssl.set_system_ca(path) end
---@param ctx ssl.Context
---@return boolean? ok, string? err
function ssl.use_system_ca(ctx) end
---@param ctx ssl.Context
---@return ffi.cdata* SSL_CTX
function ssl.rawcontext(ctx) end
---@param conn ssl.Connection
---@return ffi.cdata* SSL
function ssl.rawconnection(conn) end

local context = {}
---@return ssl.Context? ctx, string? err
function context.create(protocol) end
---@return boolean ok, string? err
function context.setmode(ctx, mode) end
---@return boolean ok, string? err
function context.loadkey(ctx, file, password) end
---@return boolean ok, string? err
function context.loadcert(ctx, file) end
---@return boolean
function context.checkkey(ctx) end
---@return boolean ok, string? err
function context.locations(ctx, cafile, capath) end
---@return boolean ok, string? err
function context.setcipher(ctx, list) end
---@return boolean ok, string? err
function context.setciphersuites(ctx, list) end
---@return boolean
function context.setdepth(ctx, depth) end
---@return boolean ok, string? err
function context.setverify(ctx, ...) end
---@return boolean ok, string? err
function context.setoptions(ctx, ...) end
---@return boolean ok, string? err
function context.setdhparam(ctx, fn) end
---@return boolean ok, string? err
function context.setcurve(ctx, name) end
---@return boolean ok, string? err
function context.setcurveslist(ctx, list) end
---@return boolean ok, string? err
function context.setalpn(ctx, wire) end
---@return boolean
function context.setalpncb(ctx, fn) end
---@return boolean
function context.setalpnlist(ctx, wire) end
---@return boolean
function context.setpskhint(ctx, hint) end
---@return boolean
function context.setserverpskcb(ctx, fn) end
---@return boolean
function context.setclientpskcb(ctx, fn) end
---@return boolean
function context.setdane(ctx, ...) end
---@return ffi.cdata*
function context.rawcontext(ctx) end

local core = {}
---@return ssl.Connection? conn, string? err
function core.create(ctx) end
function core.setfd(conn, fd) end
function core.settransport(conn, transport) end
---@return string? desc, integer? bits, integer? algbits, string? protocol
function core.info(conn) end
---@return string? name, string? err
function core.compression(conn) end
function core.setmethod(name, fn) end
---@return string
function core.copyright() end
---@return ffi.cdata*
function core.rawconnection(conn) end

local x509 = {}
---@param data string PEM or DER
---@return ssl.Certificate?
function x509.load(data) end
---@return ssl.Certificate? cert, string? err
function x509.loadfile(path) end
---@return boolean
function x509.checkhost(cert, hostname, ...) end
---@return boolean
function x509.checkhostname(cert, hostname) end

local https = {}
---@param url string|table
---@param body? string
---@return any result, integer|string code, table? headers, string? status
function https.request(url, body) end
---@param params? table
---@param proxy? string
---@return function create
function https.tcp(params, proxy) end

local ngx = {}
---@return ssl.Connection? conn, string? err
function ngx.connect(host, port, params) end
---@return ssl.Connection? conn, string? err
function ngx.wrap(cosocket, params, host) end
