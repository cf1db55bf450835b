-- Bad certificates, made by spec/fixtures/make_certs.sh, against all three
-- faces with verification on: expired, not yet valid, wrong host, self-signed,
-- a chain ending in an untrusted root, an unknown issuer, a missing
-- intermediate, revoked by a CRL, a 1024-bit RSA key (below OpenSSL's security
-- level 2), the wrong extended key usage, and a chain longer than `depth`.
-- Each face must reject each one with its own clear reason: the LuaSec face
-- (ssl.connect, ssl.https, ssl.wrap; with lsec_continue the handshake completes
-- and getpeerverification() lists the reasons, as the real LuaSec does), the
-- libtls face (the same errors as the system libtls) and the net face (Qt's
-- texts).  Servers presenting the certificates are openssl s_server; client
-- certificates come from openssl s_client, rejected by each face's server.
local socket = require "socket"
local ltn12 = require "ltn12"
local helpers = require "helpers"
local ssl = require "ssl"
local https = require "ssl.https"
local tls = require "libtls"
local tlsconfig = require "libtls.config"
local oracle = require "oracle.libtls"
local iomodules = require "iomodules"
local net, loop = iomodules.net, iomodules.loop

local dir
local ljssl_tls = { config = tlsconfig, client = tls.client, server = tls.server }

-- Server certificates.  cert: NAME.pem/NAME.key; chain: the file s_server sends
-- after the leaf (none: the leaf alone); ca: the client's trust anchor (root.pem
-- unless given); depth, crl: the client's settings.  reason: OpenSSL's words,
-- which ssl.connect, ssl.https and libtls show; connect: ssl.connect's whole
-- message when it is not "certificate verify failed: " .. reason; continued:
-- getpeerverification() with lsec_continue; qt: the net face's error_string
-- (false: the net face has no such setting).
local SERVER_CASES = {
  { name = "a valid chain (control)", cert = "valid", chain = "inter.pem", ok = true },
  { name = "a valid chain within depth 1 (control)", cert = "valid", chain = "inter.pem", depth = 1,
    ok = true, qt = false },
  { name = "expired", cert = "expired", chain = "inter.pem", reason = "certificate has expired",
    qt = "The certificate has expired" },
  { name = "not yet valid", cert = "notyet", chain = "inter.pem", reason = "certificate is not yet valid",
    qt = "The certificate is not yet valid" },
  { name = "wrong host", cert = "wronghost", chain = "inter.pem", reason = "hostname mismatch",
    connect = "host name mismatch: the certificate is not valid for localhost",
    libtls = "name `localhost' not present in server certificate",
    qt = "The host name did not match any of the valid hosts for this certificate" },
  { name = "self-signed", cert = "selfsigned", reason = "self-signed certificate",
    qt = "The certificate is self-signed, and untrusted" },
  { name = "a chain ending in an untrusted root", cert = "valid", chain = "inter-root.pem", ca = "other.pem",
    reason = "self-signed certificate in certificate chain", depth_of_error = 3,
    qt = "The root certificate of the certificate chain is self-signed, and untrusted" },
  { name = "an unknown issuer", cert = "unknownca", reason = "unable to get local issuer certificate",
    second = "unable to verify the first certificate",
    qt = "The issuer certificate of a locally looked up certificate could not be found" },
  { name = "a missing intermediate", cert = "valid", reason = "unable to get local issuer certificate",
    second = "unable to verify the first certificate",
    qt = "The issuer certificate of a locally looked up certificate could not be found" },
  { name = "revoked by a CRL", cert = "revoked", chain = "inter.pem", crl = true, reason = "certificate revoked",
    qt = false },
  { name = "a 1024-bit RSA key", cert = "weakrsa", chain = "inter.pem", opts = "-cipher DEFAULT@SECLEVEL=1",
    reason = "EE certificate key too weak", qt = "EE certificate key too weak" },
  { name = "the wrong extended key usage (clientAuth only)", cert = "clientonly", chain = "inter.pem",
    reason = "unsuitable certificate purpose", qt = "The certificate is invalid for the specified purpose" },
  { name = "a chain longer than depth 1", cert = "deep", chain = "deep-intermediates.pem", depth = 1,
    reason = "certificate chain too long", second = "unable to get local issuer certificate",
    depth_of_error = 3, qt = false },
}

-- getpeerverification()'s table for a case: {[depth + 1] = {reasons...}}
local function continued(case)
  return { [case.depth_of_error or 1] = { case.reason, case.second } }
end

-- s_server per server certificate, shared by the faces, stopped in teardown
local servers = {}
local function serve(case)
  local cmd = ("openssl s_server -quiet -www -accept 127.0.0.1:%%d -cert %s/%s.pem -key %s/%s.key %s %s")
    :format(dir, case.cert, dir, case.cert, case.chain and ("-cert_chain %s/%s"):format(dir, case.chain) or "",
            case.opts or "")
  if not servers[cmd] then
    local port = helpers.free_port()
    servers[cmd] = { port = port, handle = helpers.spawn(cmd:format(port)) }
    helpers.wait_port(port)
  end
  return servers[cmd].port
end
local function stop_servers()
  for cmd, s in pairs(servers) do
    s.handle:stop()
    servers[cmd] = nil
  end
end

-- The client's settings for a case, as LuaSec parameters.  `defaults`: leave
-- out cafile where the system store (set to root.pem) is what the case needs,
-- as ssl.connect and ssl.https are meant to be used.
local function luasec_flags(case, defaults)
  local cafile = case.crl and "root-with-crls.pem" or case.ca or "root.pem"
  return { cafile = (cafile ~= "root.pem" or not defaults) and dir .. "/" .. cafile or nil,
           depth = case.depth, verifyext = case.crl and "crl_check_chain" or nil }
end

-- A LuaSec client: wraps a connection to port with verify = "peer" and
-- lsec_continue, prints the handshake's result and getpeerverification().  Run
-- by the real LuaSec in a child process and by ljssl here, so the two are
-- compared line for line.  Arguments: port cafile depth|- verifyext,...
local CONTINUE_CLIENT = [[
local socket = require "socket"
local ssl = require "ssl"
local function ser(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys, out = {}, {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do out[#out + 1] = "[" .. tostring(k) .. "]=" .. ser(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end
local port, cafile, depth, ext = tonumber(arg[1]), arg[2], tonumber(arg[3]), arg[4]
local verifyext = {}
for name in ext:gmatch("[^,]+") do verifyext[#verifyext + 1] = name end
local tcp = socket.tcp()
tcp:settimeout(5)
assert(tcp:connect("127.0.0.1", port))
local conn = assert(ssl.wrap(tcp, { mode = "client", protocol = "any", verify = "peer",
  cafile = cafile, depth = depth, verifyext = verifyext }))
conn:sni("localhost")
conn:settimeout(5)
local out = { "implementation " .. (package.loaded["ljssl.lib"] and "ljssl" or "LuaSec") }
local ok, err = conn:dohandshake()
out[2] = "handshake " .. tostring(ok) .. " " .. tostring(err)
local v, why = conn:getpeerverification()
out[3] = "verification " .. tostring(v) .. " " .. ser(why)
conn:close()
io.write(table.concat(out, "\n"), "\n")
]]

local function continue_args(case, port)
  -- the real LuaSec's crl_check_chain alone sets only X509_V_FLAG_CRL_CHECK_ALL,
  -- which OpenSSL ignores without CRL_CHECK: both get crl_check here
  local f = luasec_flags(case)
  return { tostring(port), f.cafile, tostring(case.depth or "-"), "lsec_continue" .. (case.crl and ",crl_check" or "") }
end

local function ljssl_continue_client(args)
  local written = {}
  local env = setmetatable({ arg = args, io = { write = function(...)
    for i = 1, select("#", ...) do written[#written + 1] = select(i, ...) end
  end } }, { __index = _G })
  local fn = assert(loadstring(CONTINUE_CLIENT, "=continue_client"))
  setfenv(fn, env)()
  return table.concat(written)
end

local script_file
local function real_luasec_continue_client(args)
  local ok, out = helpers.sh(("cd / && env -u LUA_PATH -u LUA_CPATH timeout 20 %s %s %s"):format(
    helpers.luajit(), script_file, table.concat(args, " ")))
  assert(ok, out)
  return out
end

-- openssl s_client presenting a client certificate (NAME, with chain CHAIN)
-- to port; it keeps its stdin open for a while, so it never hangs up first.
local function s_client(port, case)
  local cert = ""
  if case.cert then
    cert = ("-cert %s/%s.pem -key %s/%s.key"):format(dir, case.cert, dir, case.cert)
    if case.chain then cert = cert .. (" -cert_chain %s/%s"):format(dir, case.chain) end
  end
  return helpers.spawn(("sleep 10 | openssl s_client -connect 127.0.0.1:%d -servername localhost " ..
    "-CAfile %s/root.pem -cipher DEFAULT@SECLEVEL=1 %s"):format(port, dir, cert))
end

-- Client certificates presented to a verifying server.  ca: the server's trust
-- anchor; reason: OpenSSL's words; luasec: the LuaSec server's dohandshake error
-- when it is not "certificate verify failed"; qt: the net server's error_string
-- (false: no such setting in the net face).  Servers do not check client names.
local CLIENT_CASES = {
  { name = "a valid client certificate (control)", cert = "valid", chain = "inter.pem", ok = true },
  { name = "no client certificate", luasec = "peer did not return a certificate",
    libtls = "handshake failed: error:0A0000C7:SSL routines::peer did not return a certificate",
    qt = "The peer did not present any certificate" },
  { name = "expired", cert = "expired", chain = "inter.pem", reason = "certificate has expired",
    qt = "The certificate has expired" },
  { name = "not yet valid", cert = "notyet", chain = "inter.pem", reason = "certificate is not yet valid",
    qt = "The certificate is not yet valid" },
  { name = "self-signed", cert = "selfsigned", reason = "self-signed certificate",
    qt = "The certificate is self-signed, and untrusted" },
  { name = "a chain ending in an untrusted root", cert = "valid", chain = "inter-root.pem", ca = "other.pem",
    reason = "self-signed certificate in certificate chain", depth_of_error = 3,
    qt = "The root certificate of the certificate chain is self-signed, and untrusted" },
  { name = "an unknown issuer", cert = "unknownca", reason = "unable to get local issuer certificate",
    second = "unable to verify the first certificate",
    qt = "The issuer certificate of a locally looked up certificate could not be found" },
  { name = "a missing intermediate", cert = "valid", reason = "unable to get local issuer certificate",
    second = "unable to verify the first certificate",
    qt = "The issuer certificate of a locally looked up certificate could not be found" },
  { name = "revoked by a CRL", cert = "revoked", chain = "inter.pem", crl = true, reason = "certificate revoked",
    qt = false },
  { name = "a 1024-bit RSA key", cert = "weakrsa", chain = "inter.pem", reason = "EE certificate key too weak",
    qt = "EE certificate key too weak" },
  { name = "the wrong extended key usage (serverAuth only)", cert = "serveronly", chain = "inter.pem",
    reason = "unsuitable certificate purpose", qt = "The certificate is invalid for the specified purpose" },
  { name = "a chain longer than depth 1", cert = "deep", chain = "deep-intermediates.pem", depth = 1,
    reason = "certificate chain too long", second = "unable to get local issuer certificate",
    depth_of_error = 3, qt = false },
}

-- A listening LuaSocket server on loopback with an s_client for `case`
-- connected to it: returns the accepted socket, and the s_client to stop.
local function accept_s_client(case)
  local listener = assert(socket.bind("127.0.0.1", 0))
  local _, port = listener:getsockname()
  local client = s_client(tonumber(port), case)
  listener:settimeout(10)
  local s, err = listener:accept()
  listener:close()
  if not s then client:stop(); error("s_client never connected: " .. tostring(err)) end
  return s, client
end

describe("bad certificates", function()
  setup(function()
    dir = helpers.certs()
    script_file = os.tmpname()
    helpers.writefile(script_file, CONTINUE_CLIENT)
  end)
  teardown(function()
    stop_servers()
    if script_file then os.remove(script_file) end
  end)

  describe("LuaSec face, client side", function()
    setup(function() assert(ssl.set_system_ca(dir .. "/root.pem")) end)
    teardown(function() ssl.set_system_ca(nil) end)

    for _, case in ipairs(SERVER_CASES) do
      local expect = case.ok and "accepted" or (case.connect or ("certificate verify failed: " .. case.reason))
      it(case.name .. ": ssl.connect and ssl.https say " .. expect, function()
        local port = serve(case)
        local flags = luasec_flags(case, true)
        local conn, err = ssl.connect("localhost", port, next(flags) and flags or nil)
        if case.ok then
          assert.is_not_nil(conn, err)
          local verified = conn:getpeerverification()
          conn:close()
          assert.is_true(verified)
        else
          assert.is_nil(conn)
          assert.equal(expect, err)
        end
        local req = { url = ("https://localhost:%d/"):format(port), sink = ltn12.sink.null() }
        for k, v in pairs(flags) do req[k] = v end
        local one, code = https.request(req)
        if case.ok then
          assert.equal(1, one, code)
          assert.equal(200, code)
        else
          assert.is_nil(one)
          assert.equal(expect, code)
        end
      end)

      it(case.name .. ": ssl.wrap with verify = peer " .. (case.ok and "accepts" or "refuses") ..
         ", and lsec_continue completes with the reasons", function()
        local port = serve(case)
        local function wrap(extra)
          local tcp = socket.tcp()
          tcp:settimeout(5)
          assert(tcp:connect("127.0.0.1", port))
          local params = { mode = "client", protocol = "any", verify = "peer", hostname = "localhost" }
          for k, v in pairs(luasec_flags(case)) do params[k] = v end
          for k, v in pairs(extra or {}) do params[k] = v end
          local conn = assert(ssl.wrap(tcp, params))
          conn:settimeout(5)
          return conn, conn:dohandshake()
        end
        -- LuaSec's own reason: the plain OpenSSL one
        local conn, ok, err = wrap()
        conn:close()
        if case.ok then assert.is_true(ok, err) else assert.same({ false, "certificate verify failed" }, { ok, err }) end
        -- lsec_continue: connected, and the reasons by depth
        local ext = { "lsec_continue" }
        if case.crl then ext[2] = "crl_check_chain" end
        conn, ok, err = wrap({ verifyext = ext })
        local verified, why = conn:getpeerverification()
        conn:close()
        assert.is_true(ok, err)
        if case.ok then
          assert.same({ true }, { verified, why })
        else
          assert.is_false(verified)
          assert.same(continued(case), why)
        end
      end)

      it(case.name .. ": lsec_continue reports what the real LuaSec reports", function()
        local args = continue_args(case, serve(case))
        local mine = ljssl_continue_client(args)
        local real = real_luasec_continue_client(args)
        assert.equal("implementation LuaSec", real:match("^[^\n]*"), real)
        assert.equal("implementation ljssl", mine:match("^[^\n]*"))
        assert.equal((real:gsub("^[^\n]*\n", "")), (mine:gsub("^[^\n]*\n", "")))
        -- and it is not "all is well" where the chain is bad (no host name here)
        if not case.ok and case.cert ~= "wronghost" then
          assert.truthy(mine:find("verification false {", 1, true), mine)
        end
      end)
    end

    it("each rejection is about its property: the same servers pass with it relaxed", function()
      local function passes(case, flags)
        local conn, err = ssl.connect("localhost", serve(case), flags)
        if conn then conn:close() end
        assert.is_not_nil(conn, case.name .. ": " .. tostring(err))
      end
      local by_cert = {}
      for _, case in ipairs(SERVER_CASES) do by_cert[case.name] = case end
      passes(by_cert["a chain longer than depth 1"], { cafile = dir .. "/root.pem", depth = 2 })
      passes(by_cert["revoked by a CRL"], { cafile = dir .. "/root-with-crls.pem" })
      passes(by_cert["a 1024-bit RSA key"], { ciphers = "DEFAULT@SECLEVEL=1" })
      passes(by_cert["a chain ending in an untrusted root"], { cafile = dir .. "/root.pem" })
    end)

    it("refuses to load a 1024-bit RSA certificate of its own", function()
      for _, mode in ipairs({ "server", "client" }) do
        assert.same({ nil, "error loading certificate (ee key too small)" },
          { ssl.newcontext({ mode = mode, protocol = "any", key = dir .. "/weakrsa.key",
                             certificate = dir .. "/weakrsa-chain.pem" }) })
      end
    end)
  end)

  describe("LuaSec face, server side: client certificates", function()
    local function serve_one(case, continue)
      local s, client = accept_s_client(case)
      local ok, res = pcall(function()
        local ext = { continue or nil }
        if case.crl then ext[#ext + 1] = "crl_check_chain" end
        local conn = assert(ssl.wrap(s, { mode = "server", protocol = "any",
          key = dir .. "/valid.key", certificate = dir .. "/valid-chain.pem",
          cafile = dir .. "/" .. (case.crl and "root-with-crls.pem" or case.ca or "root.pem"),
          verify = { "peer", "fail_if_no_peer_cert" }, depth = case.depth, verifyext = ext }))
        conn:settimeout(5)
        local r = { conn:dohandshake() }
        if r[1] then r.verified, r.why = conn:getpeerverification() end
        conn:close()
        return r
      end)
      s:close()
      client:stop()
      assert(ok, res)
      return res
    end

    for _, case in ipairs(CLIENT_CASES) do
      local expect = case.ok and "accepted" or case.luasec or "certificate verify failed"
      it(case.name .. ": " .. expect .. (case.reason and ", or continues and lists it" or ""), function()
        local r = serve_one(case, false)
        if case.ok then
          assert.is_true(r[1], r[2])
          assert.is_true(r.verified)
        else
          assert.same({ false, expect }, { r[1], r[2] })
        end
        if case.reason then
          r = serve_one(case, "lsec_continue")
          assert.is_true(r[1], r[2])
          assert.is_false(r.verified)
          assert.same(continued(case), r.why)
        end
      end)
    end

    it("lsec_ignore_purpose accepts a serverAuth-only client certificate, as LuaSec's does", function()
      local case
      for _, c in ipairs(CLIENT_CASES) do if c.cert == "serveronly" then case = c end end
      local r = serve_one(case, "lsec_ignore_purpose")
      assert.is_true(r[1], r[2])
      assert.is_true(r.verified)
    end)
  end)

  describe("libtls face", function()
    local function client_handshake(impl, case, port)
      local cfg = impl.config.new()
      assert(cfg:set_ca_file(dir .. "/" .. (case.ca or "root.pem")))
      if case.crl then assert(cfg:set_crl_file(dir .. "/root-with-crls.pem")) end
      if case.depth then assert(cfg:set_verify_depth(case.depth)) end
      local cli = assert(impl.client(cfg))
      local c = socket.tcp()
      c:settimeout(5)
      assert(c:connect("127.0.0.1", port))
      local ok, err = cli:connect_socket(c:getfd(), "localhost")
      if ok then
        for _ = 1, 250 do
          ok, err = cli:handshake()
          if ok or err then break end
          socket.select({ c }, nil, 0.02)
        end
        cli:close()
      end
      c:close()
      if type(err) == "table" then err = err.message end
      return ok == true or err
    end

    for _, case in ipairs(SERVER_CASES) do
      local expect = case.ok and "accepted" or case.libtls or ("certificate verification failed: " .. case.reason)
      it("client, server certificate " .. case.name .. ": " .. expect .. ", as the system libtls", function()
        local port = serve(case)
        local mine = client_handshake(ljssl_tls, case, port)
        local theirs = client_handshake(oracle, case, port)
        assert.equal(case.ok or expect, mine)
        assert.equal(theirs, mine)
      end)
    end

    local function server_handshake(impl, case)
      local cfg = impl.config.new()
      assert(cfg:set_keypair_file(dir .. "/valid-chain.pem", dir .. "/valid.key"))
      assert(cfg:set_ca_file(dir .. "/" .. (case.ca or "root.pem")))
      if case.crl then assert(cfg:set_crl_file(dir .. "/root-with-crls.pem")) end
      if case.depth then assert(cfg:set_verify_depth(case.depth)) end
      cfg:verify_client()
      local srv = assert(impl.server(cfg))
      local s, client = accept_s_client(case)
      local ok, res = pcall(function()
        local conn = assert(srv:accept_socket(s:getfd()))
        local a, err
        for _ = 1, 250 do
          a, err = conn:handshake()
          if a or err then break end
          socket.select({ s }, nil, 0.02)
        end
        conn:close()
        if type(err) == "table" then err = err.message end
        return a == true or err
      end)
      s:close()
      client:stop()
      assert(ok, res)
      return res
    end

    for _, case in ipairs(CLIENT_CASES) do
      local expect = case.ok and "accepted" or case.libtls or ("certificate verification failed: " .. case.reason)
      it("server, client certificate " .. case.name .. ": " .. expect, function()
        local mine = server_handshake(ljssl_tls, case)
        assert.equal(case.ok or expect, mine)
        -- the system libtls says the same, or (its verify callback writes the
        -- reason on the listening context, not the connection) only the
        -- generic OpenSSL error
        local theirs = server_handshake(oracle, case)
        if case.reason then
          assert.equal("handshake failed: error:0A000086:SSL routines::certificate verify failed", theirs)
        else
          assert.equal(mine, theirs)
        end
      end)
    end

    it("refuses a 1024-bit RSA keypair of its own, as the system libtls", function()
      for _, impl in ipairs({ ljssl_tls, oracle }) do
        local cfg = impl.config.new()
        assert(cfg:set_keypair_file(dir .. "/weakrsa-chain.pem", dir .. "/weakrsa.key"))
        local srv, err = impl.server(cfg)
        assert.is_nil(srv)
        assert.equal("failed to load certificate", type(err) == "table" and err.message or err)
      end
    end)
  end)

  describe("net face", function()
    -- the trust anchors come from each configuration only
    setup(function() assert(ssl.set_system_ca(false)) end)
    teardown(function() ssl.set_system_ca(nil) end)

    local function cert(name) return net.SslCertificate.new(helpers.readfile(dir .. "/" .. name)) end

    for _, case in ipairs(SERVER_CASES) do
      if case.qt ~= false then
        local expect = case.ok and "encrypted" or ("SSL_HANDSHAKE_FAILED_ERROR, " .. case.qt)
        it("client, server certificate " .. case.name .. ": " .. expect, function()
          local port = serve(case)
          local sock = net.SslSocket.new()
          local cfg = net.SslConfiguration.new()
          cfg:add_ca_certificate(cert(case.ca or "root.pem"))
          sock.configuration = cfg
          local log = {}
          sock.error_handler = function(s, code)
            log[#log + 1] = ("error(%d, %s, state %d)"):format(code, s.error_string, s.state)
          end
          sock.encrypted_handler = function() log[#log + 1] = "encrypted" end
          sock.disconnected_handler = function() log[#log + 1] = "disconnected" end
          sock:connect_encrypted("localhost", port)
          local done = loop.run_until(function() return sock.encrypted or sock.state == 0 and #log > 0 end, 10)
          local before = { unpack(log) }       -- what happened before abort()
          sock:abort()
          assert.truthy(done, table.concat(before, " | "))
          if case.ok then
            assert.same({ "encrypted" }, before)
          else
            assert.same({ ("error(%d, %s, state 3)"):format(net.SslSocket.SSL_HANDSHAKE_FAILED_ERROR, case.qt),
                          "disconnected" }, before)
            assert.equal(case.qt, sock.error_string)
            assert.is_false(sock.encrypted)
          end
        end)
      end
    end

    it("refuses a 1024-bit RSA certificate of its own: SSL_INVALID_USERDATA_ERROR, with OpenSSL's reason", function()
      local sock = net.SslSocket.new()
      local cfg = net.SslConfiguration.new()
      cfg:add_ca_certificate(cert("root.pem"))
      cfg.local_certificate = cert("weakrsa.pem")
      cfg.private_key = net.SslKey.new(helpers.readfile(dir .. "/weakrsa.key"), net.SslKey.RSA)
      assert.is_false(cfg.private_key.null)
      sock.configuration = cfg
      local codes = {}
      sock.error_handler = function(s, code) codes[#codes + 1] = { code, s.error_string } end
      sock:connect_encrypted("localhost", serve(SERVER_CASES[1]))
      local done = loop.run_until(function() return #codes > 0 end, 10)
      sock:abort()
      assert.truthy(done)
      assert.same({ { net.SslSocket.SSL_INVALID_USERDATA_ERROR, "Error loading local certificate, ee key too small" } },
                  codes)
    end)

    for _, case in ipairs(CLIENT_CASES) do
      if case.qt ~= false then
        local expect = case.ok and "a secure connection" or ("accept_error_handler(SSL_HANDSHAKE_FAILED_ERROR), " ..
          case.qt)
        it("SslServer with VERIFY_PEER, client certificate " .. case.name .. ": " .. expect, function()
          local server = net.SslServer.new()
          local cfg = net.SslConfiguration.new()
          cfg.local_certificate = cert("valid.pem")
          cfg.local_certificate_chain = { cert("inter.pem") }
          cfg.private_key = net.SslKey.new(helpers.readfile(dir .. "/valid.key"), net.SslKey.EC)
          cfg:add_ca_certificate(cert(case.ca or "root.pem"))
          cfg.peer_verify_mode = net.SslSocket.VERIFY_PEER
          server.configuration = cfg
          assert.is_true(server:listen(0, "127.0.0.1"))
          local log = {}
          server.accept_error_handler = function(srv, code)
            log[#log + 1] = ("accept_error(%d, %s)"):format(code, srv.error_string)
          end
          server.new_connection_handler = function(srv)
            local conn = srv:next_pending_secure_connection()
            log[#log + 1] = "secure connection"
            conn:abort()
          end
          local client = s_client(server.port, case)
          local done = loop.run_until(function() return #log > 0 end, 10)
          client:stop()
          server:close()
          assert.truthy(done, "no connection and no error")
          if case.ok then
            assert.same({ "secure connection" }, log)
          else
            assert.same({ ("accept_error(%d, %s)"):format(net.SslSocket.SSL_HANDSHAKE_FAILED_ERROR, case.qt) }, log)
          end
        end)
      end
    end
  end)
end)
