-- The host check on every face and transport, through the engine's one
-- client policy (ljssl.engine.policy): a certificate for another name is
-- refused for every LuaSec verify form with "peer" in it ("peer", {"peer"},
-- {"client_once", "peer"}, {"peer", "fail_if_no_peer_cert"}) and for the
-- default-verifying libtls and net configurations, and the right name is
-- accepted.  ssl.ngx once decided "verifying" from verify[1] alone and so never
-- checked the name for {"client_once", "peer"}.  Faces: ssl.connect,
-- ssl.https, ssl.wrap with hostname (over an fd and over a transport), ssl.ngx
-- in a real nginx, libtls, the net SslSocket (connect_encrypted and STARTTLS).
-- Peers are openssl s_server on loopback, started and stopped here, with the
-- leaves of spec/fixtures/make_certs.sh: "valid" (localhost, *.example.test,
-- 127.0.0.1) and "wronghost" (wrong.example.test), both under the test root.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local helpers = require "helpers"
local ssl = require "ssl"
local https = require "ssl.https"
local lib = require "ljssl.lib"
local context = require "ssl.context"
local policy = require "ljssl.engine.policy"
local tls = require "libtls"
local config = require "libtls.config"
local iomodules = require "iomodules"
local net, loop = iomodules.net, iomodules.loop

local FORMS = {
  { '"peer"', "peer" },
  { '{"peer"}', { "peer" } },
  { '{"client_once", "peer"}', { "client_once", "peer" } },
  { '{"peer", "fail_if_no_peer_cert"}', { "peer", "fail_if_no_peer_cert" } },
}

local function mismatch(host) return "host name mismatch: the certificate is not valid for " .. host end
local QT_MISMATCH = "The host name did not match any of the valid hosts for this certificate"

local dir, root
local valid, wrong          -- the two s_servers: { port =, peer = }

local function s_server(leaf)
  local port = helpers.free_port()
  local peer = helpers.spawn(("openssl s_server -quiet -www -accept 127.0.0.1:%d -cert %s/%s.pem " ..
    "-key %s/%s.key -cert_chain %s/inter.pem"):format(port, dir, leaf, dir, leaf, dir))
  helpers.wait_port(port)
  return { port = port, peer = peer }
end

-- The ways a LuaSec-face client names its CA: a file, or the system store
-- (the test root, chosen with ssl.set_system_ca in setup).
local function ca_modes(form)
  return {
    { "cafile", { verify = form, cafile = root } },
    { "system store", { verify = form } },
  }
end

local function copy(t, extra)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function verify_result(conn)
  return tonumber(lib.ssl.SSL_get_verify_result(ssl.rawconnection(conn)))
end

describe("the host check on every face", function()
  setup(function()
    dir = helpers.certs()
    root = dir .. "/root.pem"
    assert(ssl.set_system_ca(root))
    valid, wrong = s_server("valid"), s_server("wronghost")
  end)
  teardown(function()
    ssl.set_system_ca(nil)
    if valid then valid.peer:stop() end
    if wrong then wrong.peer:stop() end
  end)

  describe("the policy", function()
    it("reads whether a context verifies from OpenSSL, whatever the LuaSec form", function()
      local function verifies(verify)
        local ctx = assert(ssl.newcontext({ mode = "client", protocol = "any", verify = verify }))
        return policy.verifies(context.state[ctx].engine)
      end
      for _, form in ipairs(FORMS) do assert.is_true(verifies(form[2]), form[1]) end
      assert.is_true(verifies({ "none", "peer" }))
      assert.is_false(verifies(nil))
      assert.is_false(verifies("none"))
      assert.is_false(verifies("client_once"))
      assert.is_false(verifies({ "client_once", "fail_if_no_peer_cert" }))
    end)

    it("sends SNI for names without the trailing dot, never for IP literals", function()
      local function sni_seen(hostname)
        local q = { c2s = "", s2c = "" }
        local function ends(inkey, outkey)
          return ssl.transport(function(d) q[outkey] = q[outkey] .. d; return #d end,
            function(n)
              local b = q[inkey]
              if #b < n then return nil, "timeout", "" end
              q[inkey] = b:sub(n + 1)
              return b:sub(1, n)
            end)
        end
        local server = assert(ssl.wrap(ends("c2s", "s2c"), { mode = "server", protocol = "any",
          key = dir .. "/valid.key", certificate = dir .. "/valid-chain.pem" }))
        local client = assert(ssl.wrap(ends("s2c", "c2s"),
          { mode = "client", protocol = "any", hostname = hostname }))
        local a, b
        for _ = 1, 20 do
          if not a then a = client:dohandshake() end
          if not b then b = server:dohandshake() end
          if a and b then break end
        end
        assert(a and b, "handshake")
        local name = server:getsniname()
        client:close()
        server:close()
        return name
      end
      assert.equal("localhost", sni_seen("localhost"))
      assert.equal("localhost", sni_seen("localhost."))
      assert.is_nil(sni_seen("127.0.0.1"))
      assert.is_nil(sni_seen("::1"))
      assert.is_nil(sni_seen("[::1]"))
    end)
  end)

  for _, form in ipairs(FORMS) do
    describe("verify = " .. form[1], function()
      it("ssl.connect", function()
        for _, mode in ipairs(ca_modes(form[2])) do
          local conn, err = ssl.connect("localhost", wrong.port, mode[2])
          assert.is_nil(conn, mode[1])
          assert.equal(mismatch("localhost"), err, mode[1])
          conn, err = ssl.connect("127.0.0.1", wrong.port, mode[2])
          assert.is_nil(conn, mode[1])
          assert.equal(mismatch("127.0.0.1"), err, mode[1])
          conn, err = ssl.connect("localhost", valid.port, mode[2])
          assert.is_not_nil(conn, mode[1] .. ": " .. tostring(err))
          assert.is_true(conn:getpeerverification())
          conn:close()
        end
      end)

      it("ssl.https", function()
        for _, mode in ipairs(ca_modes(form[2])) do
          local function get(host, port)
            local body = {}
            local ok, code = https.request(copy(mode[2], {
              url = ("https://%s:%d/"):format(host, port), sink = ltn12.sink.table(body) }))
            return ok, code, table.concat(body)
          end
          local ok, err = get("localhost", wrong.port)
          assert.is_nil(ok, mode[1])
          assert.equal(mismatch("localhost"), err, mode[1])
          ok, err = get("127.0.0.1", wrong.port)
          assert.is_nil(ok, mode[1])
          assert.equal(mismatch("127.0.0.1"), err, mode[1])
          local code, body
          ok, code, body = get("localhost", valid.port)
          assert.equal(200, code, mode[1] .. ": " .. tostring(code))
          assert.truthy(body:find("s_server", 1, true), body)
        end
      end)

      -- the cosocket-facing code outside nginx: ssl.ngx.wrap takes any
      -- transport (the real nginx runs below)
      it("ssl.ngx.wrap over a transport", function()
        local ssl_ngx = require "ssl.ngx"
        for _, mode in ipairs(ca_modes(form[2])) do
          local function wrap(port, host)
            local tcp = socket.tcp()
            tcp:settimeout(5)
            assert(tcp:connect("127.0.0.1", port))
            local t = ssl.transport(function(d) return tcp:send(d) end, function(n) return tcp:receive(n) end,
                                    function() tcp:close() end)
            local conn, err = ssl_ngx.wrap(t, mode[2], host)
            if conn then conn:close() end
            tcp:close()
            return conn, err
          end
          local conn, err = wrap(wrong.port, "localhost")
          assert.is_nil(conn, mode[1])
          assert.equal(mismatch("localhost"), err, mode[1])
          conn, err = wrap(wrong.port, "127.0.0.1")
          assert.is_nil(conn, mode[1])
          assert.equal(mismatch("127.0.0.1"), err, mode[1])
          conn, err = wrap(wrong.port, "wrong.example.test")
          assert.is_not_nil(conn, mode[1] .. ": " .. tostring(err))
          conn, err = wrap(valid.port, "localhost")
          assert.is_not_nil(conn, mode[1] .. ": " .. tostring(err))
        end
      end)

      -- ssl.wrap keeps LuaSec's semantics (no system store, nothing checked
      -- unless asked): `hostname` is the opt-in, so the CA is given
      local transports = {
        { "over an fd", function(tcp) return tcp end },
        { "over a transport", function(tcp)
          return ssl.transport(function(d) return tcp:send(d) end, function(n) return tcp:receive(n) end,
                               function() tcp:close() end)
        end },
      }
      for _, transport in ipairs(transports) do
        it("ssl.wrap with hostname, " .. transport[1], function()
          local function handshake(hostname)
            local tcp = socket.tcp()
            tcp:settimeout(5)
            assert(tcp:connect("127.0.0.1", wrong.port))
            local conn = assert(ssl.wrap(transport[2](tcp), { mode = "client", protocol = "any",
              verify = form[2], cafile = root, hostname = hostname }))
            conn:settimeout(5)
            local ok, err = conn:dohandshake()
            local result = verify_result(conn)
            conn:close()
            tcp:close()
            return ok, err, result
          end
          local ok, err, result = handshake("localhost")
          assert.is_false(ok)
          assert.equal("certificate verify failed", err)
          assert.equal(lib.K.X509_V_ERR_HOSTNAME_MISMATCH, result)
          ok, err, result = handshake("127.0.0.1")
          assert.is_false(ok)
          assert.equal("certificate verify failed", err)
          assert.equal(lib.K.X509_V_ERR_IP_ADDRESS_MISMATCH, result)
          ok, err, result = handshake("wrong.example.test")
          assert.is_true(ok, err)
          assert.equal(lib.K.X509_V_OK, result)
        end)
      end
    end)
  end

  describe("libtls", function()
    local function handshake(cfg, name)
      local ctx = tls.client(cfg)
      assert(ctx:connect_servername("127.0.0.1", tostring(wrong.port), name))
      local ok, err
      for _ = 1, 100 do                   -- a blocking socket: one call, unless a WANT comes back
        ok, err = ctx:handshake()
        if ok or err then break end
      end
      ctx:close()
      return ok, err and err.message
    end
    local configs = {
      { "CA file", function()
        local cfg = config.new()
        assert(cfg:set_ca_file(root))
        return cfg
      end },
      { "CA in memory, verify() after insecure switches", function()
        local cfg = config.new()
        assert(cfg:set_ca(helpers.readfile(root)))
        cfg:insecure_noverifycert()
        cfg:insecure_noverifyname()
        cfg:verify()
        return cfg
      end },
      { "the system store", function() return config.new() end },
    }
    it("refuses a server name OpenSSL would truncate", function()
      local ctx = tls.client(config.new())
      local ok, err = ctx:connect_servername("127.0.0.1", tostring(wrong.port), "wrong.example.test\0.evil")
      assert.is_false(ok)
      assert.equal("server name indication failure", err.message)
    end)

    for _, c in ipairs(configs) do
      it("refuses a wrong name and accepts the right one: " .. c[1], function()
        local ok, err = handshake(c[2](), "localhost")
        assert.is_false(ok)
        assert.equal("name `localhost' not present in server certificate", err)
        ok, err = handshake(c[2](), "127.0.0.1")
        assert.is_false(ok)
        assert.equal("name `127.0.0.1' not present in server certificate", err)
        ok, err = handshake(c[2](), "wrong.example.test")
        assert.is_true(ok, err)
      end)
    end
  end)

  describe("net SslSocket", function()
    -- outcome: "encrypted", or the error_string of SSL_HANDSHAKE_FAILED_ERROR
    local function run(host, port, setup_socket, starttls)
      local sock = net.SslSocket.new()
      local outcome
      sock.encrypted_handler = function() outcome = "encrypted" end
      sock.error_handler = function(s, code)
        outcome = outcome or (code == net.SslSocket.SSL_HANDSHAKE_FAILED_ERROR and s.error_string
                              or ("error " .. tostring(code) .. ": " .. tostring(s.error_string)))
      end
      if starttls then
        sock.connected_handler = function(s) s:start_client_encryption() end
      end
      setup_socket(sock)
      if starttls then sock:connect(host, port) else sock:connect_encrypted(host, port) end
      assert.truthy(loop.run_until(function() return outcome ~= nil end, 10), host)
      sock:abort()
      return outcome
    end
    local function with_ca(sock)
      local cfg = net.SslConfiguration.new()
      cfg:add_ca_certificate(net.SslCertificate.new(helpers.readfile(root)))
      sock.configuration = cfg
    end
    local setups = {
      { "AUTO_VERIFY_PEER (the default), added CA", with_ca },
      { "VERIFY_PEER on the socket", function(sock)
        with_ca(sock)
        sock.peer_verify_mode = net.SslSocket.VERIFY_PEER
      end },
      { "VERIFY_PEER on the configuration", function(sock)
        with_ca(sock)
        sock.configuration.peer_verify_mode = net.SslSocket.VERIFY_PEER
      end },
      { "the system store", function(sock) sock.configuration = net.SslConfiguration.new() end },
    }
    for _, starttls in ipairs({ false, true }) do
      for _, s in ipairs(setups) do
        it((starttls and "start_client_encryption, " or "connect_encrypted, ") .. s[1], function()
          assert.equal(QT_MISMATCH, run("localhost", wrong.port, s[2], starttls))
          assert.equal(QT_MISMATCH, run("127.0.0.1", wrong.port, s[2], starttls))
          assert.equal("encrypted", run("localhost", valid.port, s[2], starttls))
        end)
      end
    end
  end)

  describe("ssl.ngx in nginx", function()
    local CONF = [[
worker_processes 1;
daemon off;
master_process off;
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/error.log info;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path @PREFIX@/tmp; proxy_temp_path @PREFIX@/tmp; fastcgi_temp_path @PREFIX@/tmp;
  uwsgi_temp_path @PREFIX@/tmp; scgi_temp_path @PREFIX@/tmp;
  lua_package_path "@REPO@/ffi/?.lua;@REPO@/ffi/?/init.lua;;";
  server {
    listen 127.0.0.1:@PORT@;
    location /check {
      content_by_lua_block {
        local ssl_ngx = require "ssl.ngx"
        local FORMS = { "peer", { "peer" }, { "client_once", "peer" }, { "peer", "fail_if_no_peer_cert" } }
        local params = { verify = FORMS[tonumber(ngx.var.arg_form)], hostname = ngx.var.arg_host,
                         timeout = 5000 }      -- connect by address: no resolver needed
        if ngx.var.arg_ca == "cafile" then
          params.cafile = "@ROOT@"
        else
          require("ssl").set_system_ca("@ROOT@")
        end
        local conn, err = ssl_ngx.connect("127.0.0.1", tonumber(ngx.var.arg_port), params)
        if not conn then return ngx.say("refused: ", err) end
        local subject = conn:getpeercertificate():subject()
        ngx.say("ok ", subject[#subject].value)
        conn:close()
      }
    }
  }
}
]]

    it("refuses a wrong name and accepts the right one for every verify form", function()
      local nginx_bin = io.open("/usr/sbin/nginx") and "/usr/sbin/nginx"
      assert(nginx_bin, "nginx is not installed (make test installs it)")
      local prefix = helpers.tmpdir()
      assert(helpers.sh("mkdir -p " .. prefix .. "/tmp " .. prefix .. "/logs"))
      local port = helpers.free_port()
      local conf = CONF:gsub("@(%u+)@", { PREFIX = prefix, REPO = os.getenv("PWD"), PORT = tostring(port),
                                          ROOT = root })
      helpers.writefile(prefix .. "/nginx.conf", conf)
      local nginx = helpers.spawn(("%s -p %s -c %s/nginx.conf"):format(nginx_bin, prefix, prefix))
      local ok, err = pcall(function()
        helpers.wait_port(port)
        local function check(form, ca, host)
          local body, code = http.request(("http://127.0.0.1:%d/check?form=%d&ca=%s&host=%s&port=%d")
            :format(port, form, ca, host, wrong.port))
          assert.equal(200, code, tostring(body))
          return (body:gsub("\n$", ""))
        end
        for i, form in ipairs(FORMS) do
          for _, ca in ipairs({ "cafile", "system" }) do
            local what = form[1] .. ", " .. ca
            assert.equal("refused: " .. mismatch("localhost"), check(i, ca, "localhost"), what)
            assert.equal("refused: " .. mismatch("127.0.0.1"), check(i, ca, "127.0.0.1"), what)
            assert.equal("ok wrong.example.test", check(i, ca, "wrong.example.test"), what)
          end
        end
      end)
      local output = nginx:output()          -- what nginx said before its log was open
      nginx:stop()
      local log = output .. (io.open(prefix .. "/error.log") and helpers.readfile(prefix .. "/error.log") or "")
      helpers.sh("rm -rf " .. prefix)
      assert(ok, tostring(err) .. "\n" .. log:sub(-2000))
    end)
  end)
end)
