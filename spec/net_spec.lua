-- The net face (iomodules.net) driven by its event loop: handler order, the
-- Stream API, STARTTLS, queued writes, verification failures with Qt's codes
-- and strings, 200 concurrent TLS clients, and handler errors that do not stop
-- the loop.  Peers: openssl s_server, an SslServer, a STARTTLS fixture.
local helpers = require "helpers"
local iomodules = require "iomodules"
local net, loop = iomodules.net, iomodules.loop

local dir

local function read(path) return helpers.readfile(dir .. "/" .. path) end

local function client_config()
  local cfg = net.SslConfiguration.new()
  cfg:add_ca_certificate(net.SslCertificate.new(read("root.pem")))
  return cfg
end

local function server_config(name)
  local cfg = net.SslConfiguration.new()
  cfg.local_certificate = net.SslCertificate.new(read((name or "valid") .. ".pem"))
  cfg.local_certificate_chain = { net.SslCertificate.new(read("inter.pem")) }
  cfg.private_key = net.SslKey.new(read((name or "valid") .. ".key"), net.SslKey.EC)
  return cfg
end

-- An SslServer on loopback that upper-cases every line it gets.
local function echo_server()
  local server = net.SslServer.new()
  server.configuration = server_config()
  assert.is_true(server:listen(0, "127.0.0.1"))
  server.new_connection_handler = function(s)
    local c = s:next_pending_secure_connection()
    c.ready_read_handler = function(sock)
      while sock.can_read_line do sock:write_string(sock:read_line_string():upper()) end
    end
  end
  return server
end

local function recorder(sock, log)
  for _, h in ipairs({ "state_changed_handler", "host_found_handler", "connected_handler",
                       "mode_changed_handler", "encrypted_handler", "disconnected_handler" }) do
    sock[h] = function(_, arg) log[#log + 1] = h:gsub("_handler", "") .. (arg and ("(" .. arg .. ")") or "") end
  end
  sock.error_handler = function(s, code)
    log[#log + 1] = ("error(%d, %s, state %d)"):format(code, s.error_string, s.state)
  end
end

describe("net face", function()
  setup(function() dir = helpers.certs() end)

  it("exposes the seed's globals and constants", function()
    assert.equal(iomodules, rawget(_G, "iomodules"))
    assert.equal(net, rawget(_G, "net"))
    assert.equal(3, net.Stream.READ_WRITE_MODE)
    assert.equal(6, net.TcpSocket.CLOSING_STATE)
    assert.equal(13, net.SslSocket.SSL_HANDSHAKE_FAILED_ERROR)
    assert.equal(2, net.SslSocket.SSL_SERVER_MODE)
    assert.equal(3, net.SslSocket.AUTO_VERIFY_PEER)
    assert.equal(1, net.SslEncoding.DER)
  end)

  it("connects, encrypts in Qt's handler order, and talks to an SslServer", function()
    local server = echo_server()
    local sock = net.SslSocket.new()
    sock.configuration = client_config()
    local log, got = {}, ""
    recorder(sock, log)
    sock.ready_read_handler = function(s) got = got .. s:read_all_string() end
    sock:connect_encrypted("localhost", server.port, net.Stream.READ_WRITE_MODE)
    -- written before encryption: queued until encrypted
    assert.equal(#"first line\n", sock:write_string("first line\n"))
    assert.is_true(sock.bytes_to_write > 0)
    assert.truthy(loop.run_until(function() return got == "FIRST LINE\n" end, 10))
    assert.same({ "state_changed(1)", "host_found", "state_changed(2)", "state_changed(3)",
                  "mode_changed(1)", "connected", "encrypted" }, log)
    assert.is_true(sock.encrypted)
    assert.equal(net.SslSocket.SSL_CLIENT_MODE, sock.mode)
    assert.equal("TLSv1.3", sock.session_protocol)
    assert.equal("127.0.0.1", sock.remote_address)
    assert.equal(server.port, sock.remote_port)
    sock:write_bytes({ 104, 105, 10 })
    assert.truthy(loop.run_until(function() return got:find("HI\n", 1, true) end, 5))
    sock:disconnect()
    assert.truthy(loop.run_until(function() return sock.state == net.TcpSocket.UNCONNECTED_STATE end, 5))
    assert.equal("disconnected", log[#log])
    server:close()
  end)

  it("talks to openssl s_server and verifies it", function()
    local port = helpers.free_port()
    local peer = helpers.spawn(("openssl s_server -quiet -rev -accept 127.0.0.1:%d -cert %s/valid.pem " ..
      "-key %s/valid.key -cert_chain %s/inter.pem"):format(port, dir, dir, dir))
    local ok, err = pcall(function()
      helpers.wait_port(port)
      local sock = net.SslSocket.new()
      sock.configuration = client_config()
      local got = ""
      sock.ready_read_handler = function(s) got = got .. s:read_all_string() end
      sock:connect_encrypted("localhost", port)
      sock:write_string("hello s_server\n")
      assert.truthy(loop.run_until(function() return got:find("\n", 1, true) end, 10))
      assert.equal("revres_s olleh\n", got)
      sock:abort()
    end)
    peer:stop()
    assert(ok, err)
  end)

  describe("verification failures", function()
    local cases = {
      { "expired", "expired", true, "localhost", "The certificate has expired" },
      { "not yet valid", "notyet", true, "localhost", "The certificate is not yet valid" },
      { "wrong host", "wronghost", true, "localhost",
        "The host name did not match any of the valid hosts for this certificate" },
      { "self-signed", "selfsigned", false, "localhost", "The certificate is self-signed, and untrusted" },
      { "missing intermediate", "valid", false, "localhost",
        "The issuer certificate of a locally looked up certificate could not be found" },
      { "unknown root", "unknownca", false, "localhost",
        "The issuer certificate of a locally looked up certificate could not be found" },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. ": SSL_HANDSHAKE_FAILED_ERROR, " .. case[5], function()
        local port = helpers.free_port()
        local peer = helpers.spawn(("openssl s_server -quiet -rev -accept 127.0.0.1:%d -cert %s/%s.pem " ..
          "-key %s/%s.key %s"):format(port, dir, case[2], dir, case[2],
          case[3] and ("-cert_chain " .. dir .. "/inter.pem") or ""))
        local ok, err = pcall(function()
          helpers.wait_port(port)
          local sock = net.SslSocket.new()
          sock.configuration = client_config()
          local log = {}
          recorder(sock, log)
          sock:connect_encrypted(case[4], port)
          assert.truthy(loop.run_until(function() return sock.state == 0 and #log > 4 end, 10))
          local code = net.SslSocket.SSL_HANDSHAKE_FAILED_ERROR
          assert.truthy(table.concat(log, "|"):find(("error(%d, %s, state 3)"):format(code, case[5]), 1, true),
                        table.concat(log, "|"))
          assert.equal(code, sock.error)
          assert.equal(case[5], sock.error_string)
          assert.is_false(sock.encrypted)
        end)
        peer:stop()
        assert(ok, err)
      end)
    end

    it("connects anyway with VERIFY_NONE", function()
      local port = helpers.free_port()
      local peer = helpers.spawn(("openssl s_server -quiet -rev -accept 127.0.0.1:%d -cert %s/expired.pem " ..
        "-key %s/expired.key"):format(port, dir, dir))
      local ok, err = pcall(function()
        helpers.wait_port(port)
        local sock = net.SslSocket.new()
        sock.peer_verify_mode = net.SslSocket.VERIFY_NONE
        sock:connect_encrypted("localhost", port)
        assert.truthy(loop.run_until(function() return sock.encrypted end, 10))
        sock:abort()
      end)
      peer:stop()
      assert(ok, err)
    end)
  end)

  it("reports bad certificates and keys as SSL_INVALID_USERDATA_ERROR", function()
    assert.is_true(net.SslCertificate.new("garbage").null)
    assert.is_false(net.SslCertificate.new(read("valid.pem")).null)
    assert.is_true(net.SslKey.new("garbage", net.SslKey.EC).null)
    assert.is_true(net.SslKey.new(read("valid.key"), net.SslKey.RSA).null)   -- not an RSA key
    local server = echo_server()
    local sock = net.SslSocket.new()
    local cfg = client_config()
    cfg.local_certificate = net.SslCertificate.new(read("valid.pem"))       -- no key
    sock.configuration = cfg
    local codes = {}
    sock.error_handler = function(s, code) codes[#codes + 1] = code end
    sock:connect_encrypted("localhost", server.port)
    assert.truthy(loop.run_until(function() return #codes > 0 end, 5))
    assert.equal(net.SslSocket.SSL_INVALID_USERDATA_ERROR, codes[1])
    server:close()
  end)

  it("upgrades a plain line protocol with STARTTLS", function()
    local port = helpers.free_port()
    local peer = helpers.spawn(("%s spec/fixtures/starttls_server.lua %d %s"):format(helpers.luajit(), port, dir))
    local ok, err = pcall(function()
      local sock, connected
      for _ = 1, 50 do
        sock = net.SslSocket.new()
        sock.configuration = client_config()
        local failed = false
        sock.error_handler = function() failed = true end
        sock.connected_handler = function() connected = true end
        sock:connect("localhost", port)
        loop.run_until(function() return connected or failed end, 2)
        if connected then break end
        require("socket").sleep(0.1)
      end
      assert.is_true(connected)
      local lines = {}
      sock.ready_read_handler = function(s)
        while s.can_read_line do lines[#lines + 1] = s:read_line_string() end
      end
      sock:write_string("HELLO\n")
      assert.truthy(loop.run_until(function() return lines[1] end, 5))
      assert.equal("HI\n", lines[1])
      assert.equal(net.SslSocket.UNENCRYPTED_MODE, sock.mode)
      sock:write_string("STARTTLS\n")
      assert.truthy(loop.run_until(function() return lines[2] end, 5))
      assert.equal("OK\n", lines[2])
      sock:start_client_encryption()
      sock:write_string("secret\n")                      -- queued until encrypted
      assert.truthy(loop.run_until(function() return lines[3] end, 10))
      assert.is_true(sock.encrypted)
      assert.equal("terces\n", lines[3])
      sock:disconnect()
      loop.run_until(function() return sock.state == 0 end, 5)
    end)
    peer:stop()
    assert(ok, err)
  end)

  it("serves 200 concurrent TLS clients with every byte checked", function()
    local server = echo_server()
    local N, done, bad = 200, 0, 0
    for i = 1, N do
      local sock = net.SslSocket.new()
      sock.configuration = client_config()
      local expect = ("client %d: %s\n"):format(i, ("x"):rep(i))
      local got = ""
      sock.ready_read_handler = function(s)
        got = got .. s:read_all_string()
        if #got >= #expect then
          if got == expect:upper() then done = done + 1 else bad = bad + 1 end
          s:disconnect()
        end
      end
      sock.error_handler = function() bad = bad + 1 end
      sock:connect_encrypted("127.0.0.1", server.port)
      sock:write_string(expect)
    end
    assert.truthy(loop.run_until(function() return done + bad >= N end, 60))
    assert.equal(0, bad)
    assert.equal(N, done)
    server:close()
  end)

  it("keeps running when a handler raises", function()
    local reported = {}
    local saved = loop.report
    loop.report = function(e) reported[#reported + 1] = tostring(e) end
    local server = echo_server()
    local sock = net.SslSocket.new()
    sock.configuration = client_config()
    local got = ""
    sock.encrypted_handler = function() error("boom in a handler") end
    sock.ready_read_handler = function(s) got = got .. s:read_all_string() end
    sock:connect_encrypted("localhost", server.port)
    sock:write_string("still here\n")
    local ok = loop.run_until(function() return got == "STILL HERE\n" end, 10)
    loop.report = saved
    assert.is_true(ok)
    assert.truthy(reported[1] and reported[1]:find("boom in a handler", 1, true))
    sock:abort()
    server:close()
  end)

  it("exchanges datagrams with UdpSocket", function()
    local a, b = net.UdpSocket.new(), net.UdpSocket.new()
    assert.is_true(a:bind(0, "127.0.0.1"))
    assert.equal(net.UdpSocket.BOUND_STATE, a.state)
    local got
    a.ready_read_handler = function(s) got = s:read_datagram_string() end
    assert.equal(5, b:write_datagram_string("hello", "127.0.0.1", a.local_port))
    assert.truthy(loop.run_until(function() return got end, 5))
    assert.is_true(got.valid)
    assert.equal("hello", got.data)
    assert.equal("127.0.0.1", got.sender_address)
    assert.same({ valid = false }, a:read_datagram_string())
    assert.equal(3, b:write_datagram_bytes({ 1, 2, 3 }, "127.0.0.1", a.local_port))
    got = nil
    a.ready_read_handler = function(s)
      assert.is_true(s.has_pending_datagrams)
      assert.equal(3, s.pending_datagram_size)
      got = s:read_datagram_bytes()
    end
    assert.truthy(loop.run_until(function() return got end, 5))
    assert.same({ 1, 2, 3 }, got.data)
    a:close(); b:close()
  end)

  it("checks the encoding of certificates", function()
    local der = require("ssl.x509").load(read("valid.pem")):der()
    assert.is_false(net.SslCertificate.new(der, net.SslEncoding.DER).null)
    assert.is_true(net.SslCertificate.new(der).null)                         -- PEM expected
    assert.is_true(net.SslCertificate.new(read("valid.pem"), net.SslEncoding.DER).null)
  end)

  describe("TcpSocket", function()
    it("reports the remote close as an error while connected, then disconnects", function()
      local server = net.TcpServer.new()
      assert.is_true(server:listen(0, "127.0.0.1"))
      local accepted
      server.new_connection_handler = function(s) accepted = s:next_pending_connection() end
      local sock = net.TcpSocket.new()
      local log = {}
      recorder(sock, log)
      sock:connect("127.0.0.1", server.port)
      assert.truthy(loop.run_until(function() return accepted and sock.state == 3 end, 5))
      accepted:write_string("line one\nline two\npartial")
      assert.truthy(loop.run_until(function() return sock.bytes_available >= 25 end, 5))
      assert.is_true(sock.can_read_line)
      assert.equal("line", sock:peek_string(4))
      assert.equal("line one\n", sock:read_line_string())
      assert.same({ 108, 105 }, sock:read_bytes(2))
      assert.equal("ne two\npartial", sock:read_all_string())
      assert.is_true(sock.at_end)
      accepted:abort()
      assert.truthy(loop.run_until(function() return sock.state == 0 end, 5))
      assert.equal("error(1, The remote host closed the connection, state 3)", log[#log - 2])
      assert.equal("disconnected", log[#log])
      server:close()
    end)

    it("reports refused connections and unknown hosts", function()
      local sock = net.TcpSocket.new()
      local codes = {}
      sock.error_handler = function(s, code) codes[#codes + 1] = { code, s.error_string } end
      sock:connect("127.0.0.1", helpers.free_port())
      assert.truthy(loop.run_until(function() return #codes > 0 end, 5))
      assert.same({ 0, "Connection refused" }, codes[1])
      local other = net.TcpSocket.new()
      other.error_handler = sock.error_handler
      other:connect("no-such-host.invalid", 80)
      assert.truthy(loop.run_until(function() return #codes > 1 end, 10))
      assert.same({ 2, "Host not found" }, codes[2])
    end)

    it("finds a line that arrives in pieces, and the next one after a read", function()
      local server = net.TcpServer.new()
      assert.is_true(server:listen(0, "127.0.0.1"))
      local accepted
      server.new_connection_handler = function(s) accepted = s:next_pending_connection() end
      local sock = net.TcpSocket.new()
      local written = 0
      sock:connect("127.0.0.1", server.port)
      assert.truthy(loop.run_until(function() return accepted and sock.state == 3 end, 5))
      accepted.bytes_written_handler = function(_, n) written = written + n end
      local function send(s, total)
        accepted:write_string(s)
        assert.truthy(loop.run_until(function() return sock.bytes_available >= total end, 5))
      end
      send("ab", 2)
      assert.is_false(sock.can_read_line)           -- no newline yet (remembered ...)
      assert.equal("", sock:read_line_string(0))
      send("c\nde", 6)
      assert.is_true(sock.can_read_line)            -- ... and forgotten when bytes came
      assert.equal("abc\n", sock:read_line_string())
      assert.is_false(sock.can_read_line)
      send("f\ng\n", 6)
      assert.equal("def\n", sock:read_line_string())
      assert.is_true(sock.can_read_line)
      assert.equal("g", sock:read_string(1))      -- a partial read: the line is found again
      assert.equal("\n", sock:read_line_string())
      assert.is_false(sock.can_read_line)
      assert.equal(10, written)                     -- bytes_written for every byte sent
      assert.equal(0, accepted.bytes_to_write)
      sock:abort()
      accepted:abort()
      server:close()
    end)

    it("defers _async callbacks to a later tick", function()
      local server = net.TcpServer.new()
      local results = {}
      server:listen_async(0, "127.0.0.1", function(s, ok, err) results[#results + 1] = { ok, err } end)
      assert.same({}, results)                 -- not yet: a later tick
      loop.step(0)
      assert.same({ { true } }, results)
      server:close()
    end)
  end)
end)
