-- Bad input to every public function of the three faces: wrong types, nil,
-- huge values, missing and unreadable files, bad PEM and DER, wrong passwords,
-- unknown names, use after close.  A programmer mistake raises a clear error
-- ("bad argument #n to 'name' (...)" or the face's own words), a runtime
-- failure returns nil/false and a message, never a crash, an internal error
-- ("attempt to index ...") or a silent success.
--
-- The walk is table-driven: every function listed in meta/*.lua has a case
-- below (a test fails when one is missing), and every argument of every case is
-- replaced in turn by each value of BAD.  The tests run as root, so a chmod 000
-- file is still readable: "unreadable" files are a directory and a path that
-- does not exist.
local ffi = require "ffi"
local socket = require "socket"
local helpers = require "helpers"
local ssl = require "ssl"
local context = require "ssl.context"
local core = require "ssl.core"
local x509 = require "ssl.x509"
local https = require "ssl.https"
local ssl_ngx = require "ssl.ngx"
local tls = require "libtls"
local config = require "libtls.config"
require "iomodules"
local net = require "iomodules.net"
local loop = require "iomodules.loop"

local pki, DIR, MISSING

local function readfile(path) return helpers.readfile(path) end

-- The values thrown at every argument, with labels for the messages.
local BAD = {
  { "nil", nil }, { "42", 42 }, { "-1", -1 }, { "2^53", 2 ^ 53 }, { "inf", math.huge },
  { "nan", 0 / 0 }, { "'bogus'", "bogus" }, { "''", "" }, { "'a\\0b'", "a\0b" },
  { "{}", {} }, { "function", function() end }, { "true", true },
  { "userdata", newproxy() }, { "cdata", ffi.new("int[1]") },
}

-- LuaSec connections over an in-memory transport pair (no fds, no waiting).
local function mem_pair(sp, cp)
  local q = { c2s = "", s2c = "" }
  local function ends(inkey, outkey)
    return ssl.transport(function(d) q[outkey] = q[outkey] .. d; return #d end,
      function(n)
        local b = q[inkey]
        if #b == 0 then return nil, "timeout", "" end
        q[inkey] = b:sub(n + 1)
        return b:sub(1, n)
      end)
  end
  local sc = assert(ssl.wrap(ends("c2s", "s2c"), sp or
    { mode = "server", protocol = "any", key = pki.server_key, certificate = pki.server }))
  local cc = assert(ssl.wrap(ends("s2c", "c2s"), cp or { mode = "client", protocol = "any" }))
  return cc, sc
end

local function connected()
  local cc, sc = mem_pair()
  local a, b
  for _ = 1, 20 do
    a = a or cc:dohandshake()
    b = b or sc:dohandshake()
    if a and b then break end
  end
  assert(a and b, "handshake")
  return cc, sc
end

local function client_ctx() return assert(ssl.newcontext({ mode = "client", protocol = "any" })) end
local function server_ctx()
  return assert(ssl.newcontext({ mode = "server", protocol = "any", key = pki.server_key,
                                 certificate = pki.server }))
end
local function cert() return assert(x509.loadfile(pki.server)) end
local function method(obj, name) return getmetatable(obj).__index[name] end

local function libtls_server()
  local cfg = config.new()
  assert(cfg:set_keypair_file(pki.server, pki.server_key))
  return assert(tls.server(cfg))
end

-- A fd this process owns and may close: one end of a fresh TCP pair.
local function own_fd()
  local c, s = helpers.tcp_pair()
  s:close()
  local fd = c:getfd()
  c:setfd(-1)
  return fd
end

-- Cases: name (as in meta/*.lua) -> function returning fn, args, options.
-- Options: self (argument 1 is the object: anything else must raise), skip
-- (label, pos) -> true to leave a value out (a valid fd or port, a DNS name),
-- cleanup(results...), raises (extra patterns a clear raise may match).
local CASES = {}
local function case(name, make) CASES[name] = make end
local function not_fd_or_port(label) return label == "42" end

-- LuaSec face --------------------------------------------------------------------------------

case("ssl.newcontext", function() return ssl.newcontext, { { mode = "client", protocol = "any" } } end)
case("ssl.wrap", function()
  local cc = mem_pair()
  return ssl.wrap, { cc, client_ctx() }
end)
case("ssl.connect", function()
  return ssl.connect, { "127.0.0.1", helpers.free_port(), { verify = "none", timeout = 1 } },
    { skip = function(label, pos) return pos == 1 and label == "'bogus'" or label == "42" end }
end)
case("ssl.transport", function()
  return ssl.transport, { function() end, function() end }, { raises = { "send and receive functions expected" } }
end)
case("ssl.loadcertificate", function() return ssl.loadcertificate, { readfile(pki.server) } end)
case("ssl.checkhostname", function() return ssl.checkhostname, { cert(), "localhost" }, { self = true } end)
case("ssl.checkhost", function() return ssl.checkhost, { cert(), "localhost", "no_wildcards" }, { self = true } end)
case("ssl.find_system_ca", function() return ssl.find_system_ca, {} end)
case("ssl.get_system_ca", function() return ssl.get_system_ca, {} end)
case("ssl.set_system_ca", function()
  return ssl.set_system_ca, { pki.ca }, { cleanup = function() ssl.set_system_ca(nil) end }
end)
case("ssl.use_system_ca", function() return ssl.use_system_ca, { client_ctx() }, { self = true } end)
case("ssl.rawcontext", function() return ssl.rawcontext, { client_ctx() }, { self = true } end)
case("ssl.rawconnection", function() return ssl.rawconnection, { (connected()) }, { self = true } end)

case("Context:setverifyext", function()
  local ctx = client_ctx()
  return method(ctx, "setverifyext"), { ctx, "lsec_continue" }, { self = true }
end)

local CONTEXT_ARGS = {
  create = function() return { "any" } end,
  setmode = function() return { client_ctx(), "client" } end,
  loadkey = function() return { server_ctx(), pki.server_key, "secret" } end,
  loadcert = function() return { server_ctx(), pki.server } end,
  checkkey = function() return { server_ctx() } end,
  locations = function() return { client_ctx(), pki.ca, pki.dir } end,
  setcipher = function() return { client_ctx(), "HIGH" } end,
  setciphersuites = function() return { client_ctx(), "TLS_AES_128_GCM_SHA256" } end,
  setdepth = function() return { client_ctx(), 3 } end,
  setverify = function() return { client_ctx(), "peer" } end,
  setoptions = function() return { client_ctx(), "no_ticket" } end,
  setdhparam = function() return { server_ctx(), function() end } end,
  setcurve = function() return { client_ctx(), "prime256v1" } end,
  setcurveslist = function() return { client_ctx(), "X25519:P-256" } end,
  setalpn = function() return { client_ctx(), "\2h2" } end,
  setalpncb = function() return { server_ctx(), function() end } end,
  setalpnlist = function() return { server_ctx(), "\2h2" } end,
  setpskhint = function() return { server_ctx(), "hint" } end,
  setserverpskcb = function() return { server_ctx(), function() end } end,
  setclientpskcb = function() return { client_ctx(), function() end } end,
  setdane = function() return { client_ctx() } end,
  rawcontext = function() return { client_ctx() } end,
}
for name, make_args in pairs(CONTEXT_ARGS) do
  case("context." .. name, function()
    return context[name], make_args(), { self = name ~= "create", raises = { "^invalid callback value$" } }
  end)
end

local CORE_ARGS = {
  create = function() return { client_ctx() } end,
  setfd = function() return { core.create(client_ctx()), -1 } end,
  settransport = function() return { core.create(client_ctx()), (mem_pair()) } end,
  info = function() return { (connected()) } end,
  compression = function() return { (connected()) } end,
  setmethod = function() return { "ljssl_badinput_spec", function() end } end,
  copyright = function() return {} end,
  rawconnection = function() return { (connected()) } end,
}
for name, make_args in pairs(CORE_ARGS) do
  case("core." .. name, function()
    return core[name], make_args(), { self = name ~= "setmethod" and name ~= "copyright", skip = not_fd_or_port,
      cleanup = name == "setmethod" and function()
        getmetatable(core.create(client_ctx())).__index.ljssl_badinput_spec = nil
      end or nil }
  end)
end

local CONNECTION_ARGS = {
  dohandshake = {}, receive = { "*l" }, receiveany = { 10 }, send = { "x", 1, 1 },
  settimeout = { 1, "b" }, close = {}, shutdown = {}, getfd = {}, setfd = "new", dirty = {},
  want = {}, getstats = {}, setstats = { 1, 2, 3 }, info = { "cipher" }, getfinished = {},
  getpeerfinished = {}, exportkeyingmaterial = { "EXPORTER-test", 16, "context" }, getalpn = {},
  sni = { "localhost" }, getsniname = {}, sethost = "new", getpeerverification = {},
  getpeercertificate = { 1 }, getpeerchain = {}, getlocalcertificate = { 1 }, getlocalchain = {},
  setdane = { "example.org" }, settlsa = { 3, 1, 1, ("\1"):rep(32) }, getpeername = {},
  getsockname = {}, getoption = { "tcp-nodelay" }, setoption = { "tcp-nodelay", true },
  setkeepalive = {},
}
for name, rest in pairs(CONNECTION_ARGS) do
  case("Connection:" .. name, function()
    local conn
    if rest == "new" then
      conn = core.create(client_ctx())
      rest = name == "setfd" and { -1 } or { "localhost" }
    else
      conn = connected()
    end
    local args = { conn }
    for i, v in ipairs(rest) do args[i + 1] = v end
    return method(conn, name), args, { self = true, skip = not_fd_or_port }
  end)
end

local CERT_ARGS = {
  pem = {}, der = {}, digest = { "sha256" }, subject = {}, issuer = {}, extensions = {},
  notbefore = {}, notafter = {}, validat = { os.time() }, pubkey = {}, serial = {},
  setencode = { "utf8" }, getsignaturename = {}, issued = "issued",
}
for name, rest in pairs(CERT_ARGS) do
  case("Certificate:" .. name, function()
    local c = cert()
    local args = { c }
    if rest == "issued" then args = { assert(x509.loadfile(pki.ca)), c }
    else for i, v in ipairs(rest) do args[i + 1] = v end end
    return method(c, name), args, { self = true }
  end)
end

case("x509.load", function() return x509.load, { readfile(pki.server) } end)
case("x509.loadfile", function() return x509.loadfile, { pki.server } end)
case("x509.checkhost", function() return x509.checkhost, { cert(), "localhost" }, { self = true } end)
case("x509.checkhostname", function() return x509.checkhostname, { cert(), "localhost" }, { self = true } end)
case("https.request", function()
  return https.request, { ("https://127.0.0.1:%d/"):format(helpers.free_port()) },
    { skip = function(label) return label == "'bogus'" or label == "'a\\0b'" end }
end)
case("https.tcp", function() return https.tcp, { { verify = "none" } } end)
case("ngx.connect", function()
  return ssl_ngx.connect, { "127.0.0.1", 443, {} }, { raises = { "needs OpenResty's ngx.socket.tcp" } }
end)
case("ngx.wrap", function()
  return ssl_ngx.wrap, { (mem_pair()), { verify = "none" }, "localhost" }
end)

-- libtls face --------------------------------------------------------------------------------

local CONFIG_ARGS = {
  set_alpn = { "h2" }, set_ca = "ca", set_ca_file = "ca_file", set_ca_path = "dir",
  set_cert = "cert", set_cert_file = "cert_file", set_key = "key", set_key_file = "key_file",
  set_keypair = "pair", set_keypair_file = "pair_file", add_keypair = "pair", add_keypair_file = "pair_file",
  set_ocsp_staple = { "\48\3\10\1\1" }, set_ocsp_staple_file = "cert_file",
  set_ciphers = { "secure" }, set_crl = { "" }, set_crl_file = "cert_file", set_dheparams = { "auto" },
  set_ecdhecurve = { "X25519" }, set_ecdhecurves = { "X25519,P-256" }, set_protocols = { 8, 16 },
  set_session_fd = { -1 }, set_session_id = { "id" }, set_session_lifetime = { 100 },
  add_ticket_key = { 1, ("k"):rep(48) }, set_verify_depth = { 3 }, insecure_noverifycert = {},
  insecure_noverifyname = {}, insecure_noverifytime = {}, verify = {}, verify_client = {},
  verify_client_optional = {}, ocsp_require_stapling = {}, prefer_ciphers_client = {},
  prefer_ciphers_server = {}, clear_keys = {},
}
for name, rest in pairs(CONFIG_ARGS) do
  case("Config:" .. name, function()
    local cfg = config.new()
    local values = {
      ca = { readfile(pki.ca) }, ca_file = { pki.ca }, dir = { pki.dir }, cert = { readfile(pki.server) },
      cert_file = { pki.server }, key = { readfile(pki.server_key) }, key_file = { pki.server_key },
      pair = { readfile(pki.server), readfile(pki.server_key) }, pair_file = { pki.server, pki.server_key },
    }
    local args = { cfg }
    for i, v in ipairs(type(rest) == "string" and values[rest] or rest) do args[i + 1] = v end
    return method(cfg, name), args, { self = true, skip = not_fd_or_port }
  end)
end

local CTX_ARGS = {
  connect = "connect", connect_servername = "connect", connect_socket = { "fd", "localhost" },
  connect_fds = { "fd", "fd", "localhost" }, accept_socket = "server", accept_fds = "server",
  handshake = {}, read = { 10 }, write = { "x" }, sendfile = { "fd", 10, 0 }, close = {}, reset = {},
  error = {}, peer_cert_provided = {}, peer_cert_contains_name = { "localhost" }, peer_cert_hash = {},
  peer_cert_issuer = {}, peer_cert_subject = {}, peer_cert_notbefore = {}, peer_cert_notafter = {},
  peer_cert_chain_pem = {}, conn_version = {}, conn_cipher = {}, conn_cipher_strength = {},
  conn_alpn_selected = {}, conn_servername = {}, conn_session_resumed = {},
  ocsp_process_response = { "\48\3\10\1\1" }, peer_ocsp_url = {}, peer_ocsp_result = {},
  peer_ocsp_cert_status = {}, peer_ocsp_crl_reason = {}, peer_ocsp_response_status = {},
  peer_ocsp_this_update = {}, peer_ocsp_next_update = {}, peer_ocsp_revocation_time = {},
}
for name, rest in pairs(CTX_ARGS) do
  case("Ctx:" .. name, function()
    local ctx, args = tls.client(config.new()), nil
    local port = tostring(helpers.free_port())
    if rest == "connect" then
      args = name == "connect" and { ctx, "127.0.0.1", port } or { ctx, "127.0.0.1", port, "localhost" }
    elseif rest == "server" then
      ctx = libtls_server()
      args = name == "accept_socket" and { ctx, -1 } or { ctx, -1, -1 }
    else
      args = { ctx }
      for i, v in ipairs(rest) do args[i + 1] = v == "fd" and -1 or v end
    end
    return method(ctx, name), args, { self = true, skip = function(label, pos)
      return label == "42" or (rest == "connect" and pos == 2 and label == "'bogus'")
    end }
  end)
end

case("libtls.client", function() return tls.client, { config.new() }, { self = true } end)
case("libtls.server", function()
  local cfg = config.new()
  assert(cfg:set_keypair_file(pki.server, pki.server_key))
  return tls.server, { cfg }, { self = true }
end)
case("config.new", function() return config.new, {} end)
case("config.parse_protocols", function() return config.parse_protocols, { "tlsv1.2,tlsv1.3" } end)
case("config.default_ca_cert_file", function() return config.default_ca_cert_file, {} end)
case("config.load_file", function() return config.load_file, { pki.key_encrypted, "secret" } end)

-- net face -----------------------------------------------------------------------------------

case("loop.run", function() return nil end)                -- no arguments; runs handlers
case("loop.stop", function() return loop.stop, {} end)
case("loop.step", function()
  return loop.step, { 0 }, { skip = function(label) return label == "nil" or label == "42" or label == "2^53"
    or label == "inf" end }                                 -- each of those waits
end)
case("loop.run_until", function() return loop.run_until, { function() return true end, 1 } end)
case("loop.after", function()
  return loop.after, { 0, function() end }, { cleanup = function(id) if type(id) == "number" then loop.cancel(id) end end }
end)
case("loop.cancel", function() return loop.cancel, { -1 } end)
case("loop.defer", function() return loop.defer, { function() end } end)
case("loop.watch", function()
  local fd = own_fd()
  return loop.watch, { fd, "read", function() end }, {
    skip = not_fd_or_port,
    cleanup = function() loop.unwatch(fd) end, finally = function() require("ljssl.lib").libc.close(fd) end }
end)
case("loop.unwatch", function() return loop.unwatch, { -1 } end)
case("loop.call", function() return loop.call, { function() end } end)
local real_report = loop.report
case("loop.report", function()
  -- writes any value to stderr (here /dev/null)
  return function(...)
    local stderr = io.stderr
    io.stderr = assert(io.open("/dev/null", "w"))
    local ok, err = pcall(real_report, ...)
    io.stderr:close()
    io.stderr = stderr
    if not ok then error(err, 0) end
  end, { "x" }
end)

local STREAM_ARGS = {
  read_string = { 3 }, read_bytes = { 3 }, read_line_string = { 3 }, read_line_bytes = { 3 },
  read_all_string = {}, read_all_bytes = {}, peek_string = { 3 }, peek_bytes = { 3 },
  write_string = { "x" }, write_bytes = { { 65 } }, seek = { 0 }, reset = {}, open = { 3 }, close = {},
}
for name, rest in pairs(STREAM_ARGS) do
  case("Stream:" .. name, function()
    local s = net.SslSocket.new()
    local args = { s }
    for i, v in ipairs(rest) do args[i + 1] = v end
    return net.Stream[name], args, { self = true }
  end)
end

local function no_dns(label, pos) return label == "42" or (pos == 2 and label == "'bogus'") end
case("TcpSocket.new", function() return net.TcpSocket.new, {} end)
case("TcpSocket:connect", function()
  return net.TcpSocket.connect, { net.TcpSocket.new(), "127.0.0.1", helpers.free_port() },
    { self = true, skip = no_dns }
end)
case("TcpSocket:disconnect", function() return net.TcpSocket.disconnect, { net.TcpSocket.new() }, { self = true } end)
case("TcpSocket:abort", function() return net.TcpSocket.abort, { net.TcpSocket.new() }, { self = true } end)
case("TcpSocket:bind", function()
  -- binds all interfaces (Pharos's signature): only values that must be refused
  return net.TcpSocket.bind, { net.TcpSocket.new(), "x" }, { self = true,
    skip = function(label) return label == "nil" or label == "42" end }
end)
case("SslSocket.new", function() return net.SslSocket.new, {} end)
case("SslSocket:connect_encrypted", function()
  return net.SslSocket.connect_encrypted, { net.SslSocket.new(), "127.0.0.1", helpers.free_port() },
    { self = true, skip = no_dns }
end)
case("SslSocket:start_client_encryption", function()
  return net.SslSocket.start_client_encryption, { net.SslSocket.new() }, { self = true }
end)
case("TcpServer.new", function() return net.TcpServer.new, {} end)
case("TcpServer:listen", function()
  local srv = net.TcpServer.new()
  return net.TcpServer.listen, { srv, 0, "127.0.0.1" }, { self = true, skip = function(label, pos)
    return label == "42" or (pos == 3 and label == "nil") end,   -- all interfaces
    cleanup = function() srv:close() end }
end)
case("TcpServer:pause_accepting", function() return net.TcpServer.pause_accepting, { net.TcpServer.new() }, { self = true } end)
case("TcpServer:resume_accepting", function() return net.TcpServer.resume_accepting, { net.TcpServer.new() }, { self = true } end)
case("TcpServer:next_pending_connection", function()
  return net.TcpServer.next_pending_connection, { net.TcpServer.new() }, { self = true }
end)
case("TcpServer:close", function() return net.TcpServer.close, { net.TcpServer.new() }, { self = true } end)
case("SslServer.new", function() return net.SslServer.new, {} end)
case("SslServer:next_pending_secure_connection", function()
  return net.SslServer.next_pending_secure_connection, { net.SslServer.new() }, { self = true }
end)
case("SslConfiguration.new", function() return net.SslConfiguration.new, {} end)
case("SslConfiguration:add_ca_certificate", function()
  return net.SslConfiguration.add_ca_certificate,
    { net.SslConfiguration.new(), net.SslCertificate.new(readfile(pki.ca)) }, { self = true }
end)
case("SslCertificate.new", function() return net.SslCertificate.new, { readfile(pki.ca), net.SslEncoding.PEM } end)
case("SslCertificate:to_pem", function()
  return net.SslCertificate.to_pem, { net.SslCertificate.new(readfile(pki.ca)) }, { self = true }
end)
case("SslKey.new", function() return net.SslKey.new, { readfile(pki.server_key), net.SslKey.EC } end)
case("UdpSocket.new", function() return net.UdpSocket.new, {} end)
local function udp_bound()
  local u = net.UdpSocket.new()
  assert(u:bind(0, "127.0.0.1"))
  return u
end
case("UdpSocket:bind", function()
  local u = net.UdpSocket.new()
  return net.UdpSocket.bind, { u, 0, "127.0.0.1" }, { self = true, skip = function(label, pos)
    return label == "42" or (pos == 3 and label == "nil") end, cleanup = function() u:close() end }
end)
case("UdpSocket:close", function() return net.UdpSocket.close, { net.UdpSocket.new() }, { self = true } end)
case("UdpSocket:read_datagram_string", function()
  return net.UdpSocket.read_datagram_string, { net.UdpSocket.new() }, { self = true }
end)
case("UdpSocket:read_datagram_bytes", function()
  return net.UdpSocket.read_datagram_bytes, { net.UdpSocket.new() }, { self = true }
end)
case("UdpSocket:write_datagram_string", function()
  local u = udp_bound()
  return net.UdpSocket.write_datagram_string, { u, "x", "127.0.0.1", u.local_port },
    { self = true, skip = no_dns, cleanup = function() u:close() end }
end)
case("UdpSocket:write_datagram_bytes", function()
  local u = udp_bound()
  return net.UdpSocket.write_datagram_bytes, { u, { 65 }, "127.0.0.1", u.local_port },
    { self = true, skip = no_dns, cleanup = function() u:close() end }
end)
case("UdpSocket:join_multicast_group", function()
  local u = udp_bound()
  return net.UdpSocket.join_multicast_group, { u, "224.0.0.251" }, { self = true, cleanup = function() u:close() end }
end)
case("UdpSocket:leave_multicast_group", function()
  local u = udp_bound()
  return net.UdpSocket.leave_multicast_group, { u, "224.0.0.251" }, { self = true, cleanup = function() u:close() end }
end)

-- The walk ----------------------------------------------------------------------------------------

-- Every function the annotation files list, as "owner.name" / "Class:name".
local function annotated()
  local names = {}
  for _, file in ipairs({ "meta/ssl.lua", "meta/libtls.lua", "meta/iomodules.lua" }) do
    for owner, sep, name in readfile(file):gmatch("\nfunction ([%w_]+)([%.:])([%w_]+)%(") do
      names[#names + 1] = owner .. sep .. name
    end
  end
  return names
end

local function short(name) return name:match("[%.:]([%w_]+)$") end
-- Functions that are another under a second name, as in LuaSec (ssl.newcontext
-- and ssl.wrap build the context with ssl.context.create's checks).
local ALIASES = { loadcertificate = "load", checkhostname = "checkhost", newcontext = "create", wrap = "create" }

-- A clear raise names the function called (or an alias) with the face's
-- words; Lua's own errors from inside ("attempt to index", "has no member
-- named", a LuaSocket or ffi function's "bad argument") never are.
local function clear_raise(msg, fname, opts)
  msg = tostring(msg):gsub("^[^\n]-:%d+: ", "")
  for _, p in ipairs(opts.raises or {}) do if msg:find(p) then return true end end
  local n, who = msg:match("^bad argument #(%d+) to '([^']+)' %(.+%)$")
  if who and (who == fname or who == "?" or who == (ALIASES[fname] or fname)
              or who == fname:gsub("_bytes$", "_string")) then
    return true
  end
  if msg:match("^bad value for ") then return true end
  return false, msg
end

local function describe_call(name, label, pos) return ("%s with %s as argument #%d"):format(name, label, pos) end

describe("bad input to every public function", function()
  setup(function()
    pki = helpers.pki()
    DIR, MISSING = pki.dir, pki.dir .. "/does-not-exist"
  end)

  it("has a case for every function in meta/*.lua", function()
    local missing = {}
    for _, name in ipairs(annotated()) do
      if not CASES[name] then missing[#missing + 1] = name end
    end
    assert.same({}, missing)
    assert.is_true(#annotated() > 200)
  end)

  it("answers each bad argument of each function with a clear error or a value, never an internal error", function()
    local problems, calls = {}, 0
    local saved_report = loop.report
    loop.report = function() end          -- loop.call reports what it catches
    for _, name in ipairs(annotated()) do
      local fname = short(name)
      -- one set of objects per function: bad calls may close them, which
      -- later calls must answer as well
      local fn, good, opts = CASES[name]()
      opts = opts or {}
      if fn then
        local nargs = math.max(#good, 1)
        for pos = 1, nargs do
          for _, b in ipairs(BAD) do
            local label, value = b[1], b[2]
            if not (opts.skip and opts.skip(label, pos)) then
              local args = { unpack(good, 1, nargs) }
              args[pos] = value
              calls = calls + 1
              local r = { pcall(fn, unpack(args, 1, nargs)) }
              if opts.cleanup then pcall(opts.cleanup, unpack(r, 2, 4)) end
              if r[1] then
                if opts.self and pos == 1 then
                  problems[#problems + 1] = describe_call(name, label, pos) .. ": accepted"
                end
              else
                local ok, msg = clear_raise(r[2], fname, opts)
                if not ok then
                  problems[#problems + 1] = describe_call(name, label, pos) .. ": " .. msg
                elseif opts.self and pos == 1 and not tostring(r[2]):find("bad argument #1", 1, true) then
                  problems[#problems + 1] = describe_call(name, label, pos) .. ": " .. tostring(r[2])
                end
              end
            end
          end
        end
        if opts.finally then opts.finally() end
      end
    end
    loop.report = saved_report
    collectgarbage()
    assert.same({}, problems)
    assert.is_true(calls > 2000, "calls: " .. calls)
  end)
end)

-- Specific bad inputs and the exact answers --------------------------------------------------

local scratch       -- files for the cases: garbage, truncated PEM, DER, a 0644 file

local function write(name, data)
  local path = scratch .. "/" .. name
  helpers.writefile(path, data)
  return path
end

local function prepare_files()
  scratch = helpers.tmpdir()
  local pem = readfile(pki.server)
  local files = {
    garbage = write("garbage.pem", "this is not PEM at all\n"),
    truncated = write("truncated.pem", pem:sub(1, math.floor(#pem / 2))),
    bad_base64 = write("bad-base64.pem", (pem:gsub("\n[A-Za-z0-9+/]", "\n!", 3))),
    empty = write("empty.pem", ""),
  }
  local ok, out = helpers.sh(("openssl x509 -in %s -outform der -out %s/server.der"):format(pki.server, scratch))
  assert(ok, out)
  files.der = scratch .. "/server.der"
  files.public = write("public.pem", (select(1, assert(x509.loadfile(pki.server)):pubkey())))
  return files
end

describe("bad input, LuaSec face", function()
  local F
  setup(function()
    pki = helpers.pki()
    DIR, MISSING = pki.dir, pki.dir .. "/does-not-exist"
    F = prepare_files()
  end)

  local function server(extra)
    local p = { mode = "server", protocol = "any", key = pki.server_key, certificate = pki.server }
    for k, v in pairs(extra) do p[k] = v end
    return p
  end
  local function fails(params, expected)
    local ctx, err = ssl.newcontext(params)
    assert.is_nil(ctx)
    if expected:sub(1, 1) == "^" then assert.truthy(err:match(expected), err)
    else assert.equal(expected, err) end
  end

  it("reports missing files, and directories (a root test cannot make a file unreadable)", function()
    fails(server({ key = MISSING }), "error loading private key (No such file or directory)")
    fails(server({ key = DIR }), "error loading private key (Is a directory)")
    fails(server({ certificate = MISSING }), "error loading certificate (No such file or directory)")
    fails(server({ certificate = DIR }), "error loading certificate (Is a directory)")
    fails({ mode = "client", protocol = "any", cafile = MISSING }, "error loading CA locations (No such file or directory)")
    fails({ mode = "client", protocol = "any", cafile = DIR }, "error loading CA locations (Is a directory)")
    fails({ mode = "client", protocol = "any", capath = MISSING }, "error loading CA locations (No such file or directory)")
    fails({ mode = "client", protocol = "any", capath = pki.ca },
      "error loading CA locations (" .. pki.ca .. ": Not a directory)")
    assert.same({ nil, MISSING .. ": No such file or directory" }, { x509.loadfile(MISSING) })
    assert.same({ nil, DIR .. ": Is a directory" }, { x509.loadfile(DIR) })
  end)

  it("reports bad PEM and DER in files", function()
    for _, f in ipairs({ F.garbage, F.truncated, F.empty, F.der, F.public }) do
      fails(server({ certificate = f }), "^error loading certificate %(.+%)$")
      fails(server({ key = f }), "^error loading private key %(.+%)$")
    end
    fails(server({ certificate = F.bad_base64 }), "^error loading certificate %(.+%)$")
    fails({ mode = "client", protocol = "any", cafile = F.garbage }, "^error loading CA locations %(.+%)$")
    fails(server({ key = pki.client_key }), "private key does not match public key")
    for _, f in ipairs({ F.garbage, F.truncated, F.empty, F.public }) do
      assert.same({ nil, f .. ": no certificate (PEM or DER) found" }, { x509.loadfile(f) })
    end
    assert.truthy(x509.loadfile(F.der))                         -- DER is fine
    assert.is_nil(x509.load(readfile(F.der):sub(1, 100)))        -- truncated DER
    assert.is_nil(x509.load(""))
  end)

  it("reports wrong passwords, and never prompts with password = false", function()
    local enc = pki.key_encrypted
    fails(server({ key = enc, password = false }), "^error loading private key %(.+%)$")
    fails(server({ key = enc, password = "wrong" }), "error loading private key (bad decrypt)")
    fails(server({ key = enc, password = "" }), "error loading private key (bad decrypt)")
    fails(server({ key = enc, password = function() return "wrong" end }), "error loading private key (bad decrypt)")
    fails(server({ key = enc, password = function() end }),
      "error loading private key (the password function returned nothing)")
    fails(server({ key = enc, password = function() return 42 end }),
      "error loading private key (the password function returned a number)")
    -- a NUL would end the C string: "secret\0x" must not open a key protected by "secret"
    fails(server({ key = enc, password = "secret\0x" }), "error loading private key (the password contains a NUL byte)")
    fails(server({ key = enc, password = 42 }), "invalid password type")
    assert.has_error(function() context.loadkey(assert(context.create("any")), enc, {}) end, "invalid callback value")
    assert.truthy(ssl.newcontext(server({ key = enc, password = "secret" })))
  end)

  it("rejects unknown names", function()
    local client = function(extra)
      local p = { mode = "client", protocol = "any" }
      for k, v in pairs(extra) do p[k] = v end
      return p
    end
    fails(client({ protocol = "sslv3" }), "invalid protocol (sslv3)")
    fails(client({ mode = "both" }), "invalid mode (both)")
    fails(client({ verify = { "peer", "bogus" } }), "invalid verify option (bogus)")
    fails(client({ options = { "no_ticket", "bogus" } }), "invalid option (bogus)")
    fails(client({ verifyext = "bogus" }), "invalid verify option (bogus)")
    fails(client({ curve = "bogus" }), "elliptic curve 'bogus' not supported")
    fails(client({ curve = "X25519:P-256" }), "elliptic curve 'X25519:P-256' not supported")
    fails(client({ curveslist = "X25519:bogus" }), 'unknown elliptic curve in "X25519:bogus"')
    fails(client({ ciphers = "bogus" }), "error setting cipher list (no cipher match)")
    fails(client({ ciphersuites = "bogus" }), "error setting cipher list (no cipher match)")
    fails(client({ dane = { "bogus" } }), "invalid DANE flag (bogus)")
    local c = assert(x509.loadfile(pki.server))
    assert.has_error(function() c:digest({}) end)
    assert.same({ nil, "digest algorithm not supported (bogus)" }, { c:digest("bogus") })
    assert.has_error(function() ssl.checkhost(c, "localhost", "bogus") end,
      "bad argument #3 to 'checkhost' (invalid flag 'bogus')")
    assert.is_false(c:setencode("bogus"))
  end)

  it("rejects bad parameter shapes with a message", function()
    local client = { mode = "client", protocol = "any" }
    assert.has_error(function() ssl.newcontext(nil) end, "bad argument #1 to 'newcontext' (table expected, got nil)")
    assert.has_error(function() ssl.newcontext("client") end, "bad argument #1 to 'newcontext' (table expected, got string)")
    fails({ mode = "client", protocol = "any", alpn = { "h2", 42 } }, "invalid ALPN name (string expected, got number)")
    fails({ mode = "client", protocol = "any", alpn = {} }, "invalid ALPN list (empty)")
    fails({ mode = "client", protocol = "any", alpn = ("x"):rep(256) }, "invalid ALPN name (length > 255)")
    fails({ mode = "server", protocol = "any", alpn = "h2" }, "invalid ALPN parameter")
    fails({ mode = "client", protocol = "any", psk = "key" }, "invalid PSK configuration")
    fails({ mode = "server", protocol = "any", psk = { hint = 42, callback = print } }, "invalid PSK configuration")
    fails({ mode = "server", protocol = "any", dhparam = "pem" }, "invalid DH parameter type")
    -- what a dhparam function returns (garbage, a table, an error) is seen by
    -- handshakes only, as in LuaSec: spec/dhparam_spec.lua
    fails({ mode = "server", protocol = "any", certificates = "x" }, "invalid certificates parameter (a list expected)")
    fails({ mode = "server", protocol = "any", certificates = { pki.server } },
      "invalid certificates parameter ({certificate=, key=} expected, got string)")
    local ctx = ssl.newcontext(client)
    assert.same({ false, "error setting ALPN (invalid protocol list)" }, { context.setalpnlist(ctx, "\5h2") })
    assert.same({ false, "error setting ALPN (invalid protocol list)" }, { context.setalpnlist(ctx, "\0") })
    assert.same({ false, "error setting ALPN (invalid protocol list)" }, { context.setalpnlist(ctx, "") })
    assert.has_error(function() ssl.wrap({}, ctx) end,
      "bad argument #1 to 'wrap' (socket (getfd, setfd) or transport (send, receive) expected)")
    assert.has_error(function() ssl.wrap(42, ctx) end, "bad argument #1 to 'wrap' (socket or transport expected, got number)")
    assert.has_error(function() ssl.wrap((mem_pair()), 42) end,
      "bad argument #2 to 'wrap' (table or SSL context expected, got number)")
  end)

  it("refuses values a C cast would turn into other values", function()
    local ctx = ssl.newcontext({ mode = "client", protocol = "any" })
    for _, v in ipairs({ 2 ^ 53, 2 ^ 31, math.huge, 0 / 0 }) do
      assert.has_error(function() context.setdepth(ctx, v) end)
      assert.has_error(function() core.setfd(core.create(ctx), v) end)   -- 2^53 would be fd 0
    end
    local cc = connected()
    assert.has_error(function() cc:settlsa(259, 1, 1, "x") end, "bad argument #2 to 'settlsa' (value out of range)")
    assert.has_error(function() cc:exportkeyingmaterial("EXPORTER-x", 2 ^ 40) end,
      "bad argument #3 to 'exportkeyingmaterial' (value out of range)")
    assert.has_error(function() cc:receive(0 / 0) end, "bad argument #2 to 'receive' (invalid receive pattern)")
    assert.has_error(function() cc:receive(math.huge) end, "bad argument #2 to 'receive' (invalid receive pattern)")
    assert.has_error(function() cc:receiveany(0 / 0) end)
    assert.has_error(function() cc:send("x", 0 / 0) end)
    assert.has_error(function() cc:settimeout(0 / 0) end)
    -- a NaN index reached OpenSSL's stack as INT_MIN and crashed (X509_up_ref(NULL))
    assert.has_error(function() cc:getpeercertificate(0 / 0) end,
      "bad argument #2 to 'getpeercertificate' (number has no integer representation)")
    assert.is_nil(cc:getpeercertificate(2 ^ 31 + 2))
    assert.is_nil(cc:getpeercertificate(-2 ^ 40))
    assert.is_nil(cc:getlocalcertificate(2 ^ 32 + 1))
    assert.same({ nil, "wantread", "ok" }, { cc:receive(2 ^ 40, "ok") })   -- nothing to read yet
  end)

  it("refuses host names OpenSSL would truncate or ignore", function()
    local conn = core.create(ssl.newcontext({ mode = "client", protocol = "any" }))
    assert.same({ nil, "invalid host name" }, { conn:sethost("localhost\0.evil.test") })
    assert.same({ nil, "invalid host name" }, { conn:sethost("") })
    assert.same({ nil, "invalid host name" }, { ssl.wrap((mem_pair()),
      { mode = "client", protocol = "any", hostname = "a\0b" }) })
    assert.is_false(ssl.checkhost(assert(x509.loadfile(pki.server)), "localhost\0.evil.test"))
  end)

  it("answers every method of a closed connection without crashing or succeeding", function()
    local cc, sc = connected()
    cc:close()
    cc:close()                                          -- twice is fine
    local falsy = { "dohandshake", "receive", "receiveany", "send", "shutdown", "getfinished",
      "getpeerfinished", "exportkeyingmaterial", "getpeercertificate", "getpeerchain",
      "getlocalcertificate", "getlocalchain", "getpeerverification", "sethost", "getpeername",
      "getsockname", "getoption", "setoption", "setkeepalive", "getalpn", "getsniname", "setdane",
      "settlsa", "dirty" }
    local is_falsy = {}
    for _, n in ipairs(falsy) do is_falsy[n] = true end
    for name, rest in pairs(CONNECTION_ARGS) do
      local args = type(rest) == "table" and rest or (name == "setfd" and { -1 } or { "localhost" })
      local r = { pcall(cc[name], cc, unpack(args)) }
      if r[1] then
        if is_falsy[name] then assert.falsy(r[2], name .. " succeeded on a closed connection") end
      else
        assert.truthy(tostring(r[2]):find("bad argument #1 to '" .. name .. "' (invalid SSL object state)", 1, true),
          name .. ": " .. tostring(r[2]))
      end
    end
    assert.same({ false, "closed" }, { cc:dohandshake() })
    assert.same({ nil, "closed", "" }, { cc:receive() })
    assert.same({ nil, "closed", 0 }, { cc:send("x") })
    assert.same({ nil, "closed" }, { cc:getpeercertificate() })
    assert.equal("nothing", cc:want())
    -- the peer sees the end of the stream
    assert.same({ nil, "closed", "" }, { sc:receive() })
    sc:close()
  end)
end)

describe("bad input, libtls face", function()
  local F
  setup(function()
    pki = helpers.pki()
    DIR, MISSING = pki.dir, pki.dir .. "/does-not-exist"
    F = F or prepare_files()
  end)

  local function err_of(ok, err)
    assert.falsy(ok)
    assert.equal(tls.ERROR, err.type)
    return err.message
  end

  it("reports missing files and directories as libtls does", function()
    local cfg = config.new()
    assert.equal(("failed to open CA file '%s': No such file or directory"):format(MISSING), err_of(cfg:set_ca_file(MISSING)))
    -- the system libtls says the same for a directory
    assert.equal(("failed to read CA file '%s': Is a directory"):format(DIR), err_of(cfg:set_ca_file(DIR)))
    assert.equal(("failed to open certificate file '%s': No such file or directory"):format(MISSING),
      err_of(cfg:set_keypair_file(MISSING, pki.server_key)))
    assert.equal(("failed to open key file '%s': No such file or directory"):format(MISSING),
      err_of(cfg:set_keypair_file(pki.server, MISSING)))
    assert.equal(("failed to read key file '%s': Is a directory"):format(DIR), err_of(cfg:set_key_file(DIR)))
    assert.equal(("failed to read OCSP staple file '%s': Is a directory"):format(DIR), err_of(cfg:set_ocsp_staple_file(DIR)))
    assert.equal("No such file or directory", err_of(config.load_file(MISSING)))
    assert.equal("Is a directory", err_of(config.load_file(DIR)))
  end)

  it("reports bad PEM, bad keys and wrong passwords", function()
    local cfg = config.new()
    for _, f in ipairs({ F.garbage, F.truncated, F.empty, F.der, F.bad_base64 }) do
      assert.truthy(err_of(cfg:set_cert_file(f)):match("^failed to load certificate: error:"), f)
    end
    assert.equal("failed to read private key", err_of(config.load_file(pki.key_encrypted, "wrong")))
    assert.equal("failed to read private key", err_of(config.load_file(pki.key_encrypted, "secret\0x")))
    assert.equal("failed to read private key", err_of(config.load_file(F.garbage, "secret")))
    local function server_with(cert, key)
      local c = config.new()
      assert(c:set_keypair(readfile(cert), key))
      return tls.server(c)
    end
    -- the system libtls's words: a key that does not parse cannot be read (an
    -- encrypted one has no password here); one that parses but belongs to
    -- another certificate cannot be loaded
    assert.equal("failed to read private key", err_of(server_with(pki.server, "garbage")))
    assert.equal("failed to read private key", err_of(server_with(pki.server, readfile(pki.key_encrypted))))
    assert.equal("failed to load private key", err_of(server_with(pki.server, readfile(pki.client_key))))
    assert.equal("private/public key mismatch", err_of(tls.server(config.new())))
  end)

  it("rejects unknown names and out-of-range values", function()
    local cfg = config.new()
    assert.equal("no ciphers for 'bogus'", err_of(cfg:set_ciphers("bogus")))
    assert.equal("invalid ecdhe curve 'bogus'", err_of(cfg:set_ecdhecurves("X25519,bogus")))
    assert.equal("invalid ecdhe curve 'a,b'", err_of(cfg:set_ecdhecurve("a,b")))
    assert.equal("invalid dhe param 'bogus'", err_of(cfg:set_dheparams("bogus")))
    assert.equal("alpn protocol with zero length", err_of(cfg:set_alpn("h2,,x")))
    assert.equal("alpn protocol too long", err_of(cfg:set_alpn(("x"):rep(256))))
    assert.equal("session ID too large", err_of(cfg:set_session_id(("x"):rep(33))))
    assert.equal("session lifetime too large", err_of(cfg:set_session_lifetime(86401)))
    assert.equal("session lifetime too small", err_of(cfg:set_session_lifetime(2)))
    assert.equal("wrong amount of ticket key data", err_of(cfg:add_ticket_key(1, "short")))
    assert.equal("failed to stat session file: Bad file descriptor", err_of(cfg:set_session_fd(99999)))
    local c, s = helpers.tcp_pair()
    assert.equal("session file is not a regular file", err_of(cfg:set_session_fd(c:getfd())))
    c:close(); s:close()
    local f = io.open(write("session", ""), "rb")
    assert.equal("session file has incorrect permissions (644 != 600)", err_of(cfg:set_session_fd(
      (function() helpers.sh("chmod 644 " .. scratch .. "/session"); return require("ljssl.lib").libc.fileno(f) end)())))
    f:close()
    assert.same({ -1 }, { (config.parse_protocols("tlsv1.2,bogus")) })
    for _, v in ipairs({ math.huge, -math.huge, 0 / 0, 1.5 }) do
      assert.has_error(function() cfg:set_protocols(v) end)
      assert.has_error(function() cfg:set_verify_depth(v) end)
      assert.has_error(function() cfg:set_session_lifetime(v) end)
    end
    assert.has_error(function() cfg:set_ca_file(42) end, "bad argument #2 to '?' (string expected, got number)")
  end)

  it("answers calls in the wrong state and after close and reset", function()
    local cli, srv = tls.client(config.new()), libtls_server()
    assert.equal("context not connected", err_of(cli:handshake()))
    assert.equal("context not connected", err_of(cli:read()))
    assert.equal("context not connected", err_of(cli:write("x")))
    assert.equal("not a server context", err_of(cli:accept_socket(0)))
    assert.equal("not a client context", err_of(srv:connect_socket(0, "x")))
    assert.equal("invalid file descriptors", err_of(cli:connect_fds(-1, 0, "x")))
    assert.equal("invalid file descriptors", err_of(cli:connect_fds(2 ^ 40, 2 ^ 40, "x")))
    assert.equal("invalid file descriptors", err_of(srv:accept_fds(2 ^ 40, 0)))
    assert.equal("invalid operation for context", err_of(srv:read()))
    assert.has_error(function() cli:sendfile(io.open(pki.ca), -1) end, "bad argument #3 to '?' (size out of range)")
    assert.has_error(function() cli:sendfile(io.open(pki.ca), 10, -1) end, "bad argument #4 to '?' (offset out of range)")
    assert.has_error(function() cli:sendfile(2 ^ 40, 10) end, "bad argument #2 to '?' (fd out of range)")
    -- a connected pair, closed, then used
    local sv = ffi.new("int[2]")
    local lib = require "ljssl.lib"
    assert(lib.libc.socketpair(lib.K.AF_UNIX, lib.K.SOCK_STREAM, 0, sv) == 0)
    require("ljssl.engine.fd").set_blocking(sv[0], false)
    require("ljssl.engine.fd").set_blocking(sv[1], false)
    local ccfg = config.new()
    assert(ccfg:set_ca_file(pki.ca))
    cli = tls.client(ccfg)
    assert(cli:connect_socket(sv[0], "localhost"))
    local conn = assert(srv:accept_socket(sv[1]))
    local a, b
    for _ = 1, 50 do
      a = a or cli:handshake()
      b = b or conn:handshake()
      if a and b then break end
    end
    assert(a and b)
    assert.equal("ok", (function() cli:write("ok"); for _ = 1, 20 do local d = conn:read(); if d then return d end end end)())
    assert.equal(5, (cli:read(2 ^ 40) or 0) + 5)                 -- a huge buffer size is bounded
    cli:close()
    local r = { cli:read() }
    assert.falsy(r[1])
    assert.falsy((cli:write("x")))
    cli:reset()
    assert.equal("context not connected", err_of(cli:read()))
    assert.equal("no peer certificate", err_of(cli:peer_cert_chain_pem()))
    assert.is_nil(cli:conn_version())
    assert.is_false(cli:peer_cert_provided())
    cli:reset()                                                    -- twice is fine
    conn:close()
    lib.libc.close(sv[0]); lib.libc.close(sv[1])
  end)
end)

describe("bad input, net face", function()
  setup(function()
    pki = helpers.pki()
  end)

  it("refuses a verify mode it does not know instead of not verifying", function()
    local s = net.SslSocket.new()
    for _, v in ipairs({ 99, -1, 1.5, "VERIFY_PEER", true, {} }) do
      assert.has_error(function() s.peer_verify_mode = v end)
      assert.has_error(function() net.SslConfiguration.new().peer_verify_mode = v end)
    end
    assert.equal(net.SslSocket.AUTO_VERIFY_PEER, s.peer_verify_mode)
    s.peer_verify_mode = net.SslSocket.VERIFY_NONE
    assert.equal(net.SslSocket.VERIFY_NONE, s.peer_verify_mode)
  end)

  it("checks the types of configuration properties when they are set", function()
    local s, cfg = net.SslSocket.new(), net.SslConfiguration.new()
    assert.has_error(function() s.configuration = {} end,
      "bad value for configuration (net.SslConfiguration expected, got table)")
    assert.has_error(function() net.SslServer.new().configuration = "x" end)
    assert.has_error(function() cfg.local_certificate = readfile(pki.server) end,
      "bad value for local_certificate (net.SslCertificate expected, got string)")
    assert.has_error(function() cfg.private_key = net.SslCertificate.new(readfile(pki.server)) end,
      "bad value for private_key (net.SslKey expected, got table)")
    assert.has_error(function() cfg.local_certificate_chain = { "pem" } end)
    assert.has_error(function() cfg:add_ca_certificate(readfile(pki.ca)) end,
      "bad argument #2 to 'add_ca_certificate' (net.SslCertificate expected, got string)")
    assert.has_error(function() net.TcpServer.new().max_pending_connections = -1 end)
    assert.has_error(function() s.read_string() end, "bad argument #1 to 'read_string' (net.Stream expected, got no value)")
    assert.has_error(function() s:read_string(-1) end, "bad argument #2 to 'read_string' (size expected, got -1)")
    assert.has_error(function() s:write_bytes({ 300 }) end,
      "bad argument #2 to 'write_bytes' (byte expected at index 1, got 300)")
  end)

  it("makes null certificates and keys of bad PEM, DER and passwords", function()
    local pem, key = readfile(pki.server), readfile(pki.server_key)
    local der = assert(x509.load(pem)):der()
    assert.is_false(net.SslCertificate.new(pem).null)
    assert.is_false(net.SslCertificate.new(der, net.SslEncoding.DER).null)
    for _, bad in ipairs({ "garbage", "", pem:sub(1, 200), pem:gsub("MII", "XXX"), der:sub(1, 50), 42 }) do
      assert.is_true(net.SslCertificate.new(bad).null)
    end
    assert.is_true(net.SslCertificate.new(der, net.SslEncoding.PEM).null)
    assert.is_true(net.SslCertificate.new(pem, net.SslEncoding.DER).null)
    assert.is_false(net.SslKey.new(key, net.SslKey.EC).null)
    assert.is_true(net.SslKey.new(key, net.SslKey.RSA).null)             -- not of that algorithm
    assert.is_true(net.SslKey.new(readfile(pki.key_encrypted)).null)     -- no password API: refused
    assert.is_true(net.SslKey.new(key:sub(1, 60)).null)
    assert.is_true(net.SslKey.new(pem).null)
  end)

  it("reports a certificate without its key, or with another key, when encryption starts", function()
    local function attempt(cert, key)
      local server = net.TcpServer.new()
      assert(server:listen(0, "127.0.0.1"))
      local cfg = net.SslConfiguration.new()
      cfg.local_certificate = cert
      cfg.private_key = key
      local s = net.SslSocket.new()
      s.configuration = cfg
      local code, text
      s.error_handler = function(sock, c) code, text = c, sock.error_string end
      s:connect_encrypted("127.0.0.1", server.port)
      loop.run_until(function() return code end, 5)
      s:abort()
      server:close()
      return code, text
    end
    local cert = net.SslCertificate.new(readfile(pki.client))
    assert.same({ net.SslSocket.SSL_INVALID_USERDATA_ERROR, "Cannot provide a certificate with no key" },
      { attempt(cert, nil) })
    assert.same({ net.SslSocket.SSL_INVALID_USERDATA_ERROR, "Error loading private key, key values mismatch" },
      { attempt(cert, net.SslKey.new(readfile(pki.server_key), net.SslKey.EC)) })
  end)

  it("answers calls on an aborted socket", function()
    local s = net.SslSocket.new()
    s:abort()
    s:abort()
    s:disconnect()
    assert.equal(-1, s:write_string("x"))
    assert.equal("", s:read_string())
    assert.same({}, s:read_bytes(10))
    assert.equal(net.SslSocket.UNCONNECTED_STATE, s.state)
    assert.is_false(s.encrypted)
    local u = net.UdpSocket.new()
    u:close()
    assert.same({ valid = false }, u:read_datagram_string())
    assert.is_false(u:join_multicast_group("224.0.0.251"))
    local srv = net.SslServer.new()
    srv:close()
    assert.is_nil(srv:next_pending_secure_connection())
  end)
end)
