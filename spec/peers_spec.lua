-- The LuaSec face against real peers on loopback: openssl s_server/s_client,
-- GnuTLS's gnutls-serv/gnutls-cli, and the real LuaSec in another process.
-- Every peer is started and stopped here; every wait is bounded.
local socket = require "socket"
local helpers = require "helpers"
local ssl = require "ssl"

local pki

local function client_params(extra)
  local p = { mode = "client", protocol = "any", cafile = pki.ca, verify = "peer" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- Connects and handshakes; returns the connection or nil, error.
local function connect(port, params, sni)
  local c = socket.tcp()
  c:settimeout(5)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then return nil, err end
  local conn = assert(ssl.wrap(c, params))
  if sni then conn:sni(sni) end
  conn:settimeout(5)
  local done, herr = conn:dohandshake()
  if not done then conn:close(); return nil, herr end
  return conn
end

-- Starts a server command with PORT substituted; stops it after fn.
local with_server = helpers.with_server

-- Listens on a fresh loopback port, then calls start(port), which starts the
-- client peer: the listener exists before the peer can try to connect (a peer
-- started first could find nothing listening on a loaded machine and give up).
-- Accepts one client with the ljssl server params and runs fn(conn, ok, err);
-- returns what start returned.
local function serve_once(start, params, fn)
  local listener = assert(socket.bind("127.0.0.1", 0))
  local _, port = listener:getsockname()
  local peer, input = start(tonumber(port))
  local ok, err = pcall(function()
    listener:settimeout(10)
    local s, aerr = listener:accept()
    listener:close()
    assert(s, aerr)
    local conn = assert(ssl.wrap(s, params))
    conn:settimeout(10)
    local hs, herr = conn:dohandshake()
    fn(conn, hs, herr)
    conn:close()
  end)
  listener:close()
  return ok, err, peer, input
end

-- Serves one client peer (started by start(port), reading the file `input`
-- it returns with its handle): expects "hello ljssl", answers "reply from
-- ljssl", checks the peer printed it, and the protocol when `expect_protocol`
-- is given.  Returns the peer's output.
local function serve_peer(start, params, expect_protocol)
  local received, proto
  local ok, err, peer, input = serve_once(start, params, function(conn, hs, herr)
    assert(hs, herr)
    proto = conn:info("protocol")
    received = conn:receive()
    conn:send("reply from ljssl\n")
  end)
  socket.sleep(0.2)
  local out = peer:output()
  peer:stop()
  os.remove(input)
  assert(ok, err)
  assert.equal("hello ljssl", received)
  if expect_protocol then assert.equal(expect_protocol, proto) end
  assert.truthy(out:find("reply from ljssl", 1, true), out)
  return out
end

local function server_params(extra)
  local p = { mode = "server", protocol = "any", key = pki.server_key, certificate = pki.server }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

describe("against openssl s_server", function()
  setup(function() pki = helpers.pki() end)

  local function s_server(args)
    return ("openssl s_server -quiet -rev -accept 127.0.0.1:PORT -cert %s -key %s %s")
      :format(pki.server, pki.server_key, args or "")
  end

  it("talks TLS 1.3 and TLS 1.2", function()
    for _, case in ipairs({ { "-tls1_3", "TLSv1.3" }, { "-tls1_2", "TLSv1.2" } }) do
      with_server(s_server(case[1]), function(port)
        local conn = assert(connect(port, client_params(), "localhost"))
        assert.equal(case[2], conn:info("protocol"))
        assert.is_true(conn:getpeerverification())
        conn:send("hello s_server\n")
        assert.equal("revres_s olleh", conn:receive())
        conn:close()
      end)
    end
  end)

  it("uses the cipher asked for", function()
    with_server(s_server("-tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305"), function(port)
      local conn = assert(connect(port, client_params({ protocol = "tlsv1_2",
        ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305" })))
      assert.equal("ECDHE-ECDSA-CHACHA20-POLY1305", conn:info("cipher"))
      conn:close()
    end)
    with_server(s_server("-tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256"), function(port)
      local conn = assert(connect(port, client_params({
        ciphersuites = "TLS_CHACHA20_POLY1305_SHA256" })))
      assert.equal("TLS_CHACHA20_POLY1305_SHA256", conn:info("cipher"))
      conn:close()
    end)
  end)

  it("negotiates ALPN", function()
    with_server(s_server("-alpn h2,http/1.1"), function(port)
      local conn = assert(connect(port, client_params({ alpn = { "http/1.1" } })))
      assert.equal("http/1.1", conn:getalpn())
      conn:close()
    end)
  end)

  it("presents a client certificate when asked, and fails without one", function()
    local args = ("-Verify 2 -verify_return_error -CAfile %s"):format(pki.ca)
    with_server(s_server(args), function(port)
      local conn = assert(connect(port, client_params({ key = pki.client_key, certificate = pki.client })))
      conn:send("with cert\n")
      assert.equal("trec htiw", conn:receive())
      conn:close()
    end)
    with_server(s_server(args), function(port)
      local conn = assert(connect(port, client_params()))
      -- TLS 1.3: the server's refusal arrives after the client's handshake
      local ok, err = conn:receive()
      assert.is_nil(ok)
      assert.equal("tlsv13 alert certificate required", err)
      conn:close()
    end)
  end)

  it("sends SNI and gets the matching certificate", function()
    local other = pki.dir .. "/sni-peer"
    assert(helpers.sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
      "-keyout %s.key -out %s.pem -days 2 -subj /CN=other.test"):format(other, other)))
    with_server(s_server(("-servername other.test -cert2 %s.pem -key2 %s.key"):format(other, other)),
      function(port)
        local conn = assert(connect(port, client_params({ verify = "none" }), "other.test"))
        local subject = conn:getpeercertificate():subject()
        assert.equal("other.test", subject[#subject].value)
        conn:close()
        conn = assert(connect(port, client_params(), "localhost"))
        subject = conn:getpeercertificate():subject()
        assert.equal("localhost", subject[#subject].value)
        conn:close()
      end)
  end)

  it("hears the server's alerts", function()
    -- a client certificate from a CA the server does not know (TLS 1.2, so the
    -- alert ends the handshake itself)
    local args = ("-tls1_2 -Verify 2 -verify_return_error -CAfile %s"):format(pki.ca)
    with_server(s_server(args), function(port)
      local conn, err = connect(port, client_params({ key = pki.dir .. "/other.key",
                                                      certificate = pki.other_ca }))
      assert.is_nil(conn)
      assert.equal("tlsv1 alert unknown ca", err)
    end)
    with_server(s_server("-tls1_2"), function(port)
      local conn, err = connect(port, client_params({ protocol = "tlsv1_3" }))
      assert.is_nil(conn)
      assert.equal("tlsv1 alert protocol version", err)
    end)
  end)

  it("rejects a server it does not trust", function()
    with_server(s_server(), function(port)
      local conn, err = connect(port, client_params({ cafile = pki.other_ca }))
      assert.is_nil(conn)
      assert.equal("certificate verify failed", err)
    end)
  end)

  it("reports a plaintext peer", function()
    with_server(helpers.luajit() .. " spec/fixtures/plain_server.lua PORT", function(port)
        local conn, err = connect(port, client_params())
        assert.is_nil(conn)
        assert.equal("wrong version number", err)
      end)
  end)
end)

describe("against openssl s_client", function()
  setup(function() pki = helpers.pki() end)

  local function s_client(port, args, input)
    local f = os.tmpname()
    helpers.writefile(f, input or "hello ljssl\n")
    local h = helpers.spawn(("timeout 20 openssl s_client -connect 127.0.0.1:%d -CAfile %s " ..
      "-ign_eof -verify_return_error -servername localhost %s < %s"):format(port, pki.ca, args or "", f))
    return h, f
  end

  local function serve(params, client_args, expect_protocol)
    return serve_peer(function(port) return s_client(port, client_args) end, params, expect_protocol)
  end

  it("serves TLS 1.3 and TLS 1.2 clients", function()
    serve(server_params(), "-tls1_3", "TLSv1.3")
    serve(server_params(), "-tls1_2", "TLSv1.2")
  end)

  it("verifies a client certificate", function()
    serve(server_params({ verify = { "peer", "fail_if_no_peer_cert" }, cafile = pki.ca }),
          ("-cert %s -key %s"):format(pki.client, pki.client_key))
  end)

  it("answers ALPN", function()
    local out = serve(server_params({ alpn = { "h2", "http/1.1" } }), "-alpn http/1.1")
    assert.truthy(out:find("ALPN protocol: http/1.1", 1, true), out)
  end)
end)

describe("against GnuTLS", function()
  setup(function() pki = helpers.pki() end)

  it("talks to gnutls-serv", function()
    with_server(("gnutls-serv --echo -p PORT --x509certfile %s --x509keyfile %s"):format(
      pki.server, pki.server_key), function(port)
      local conn = assert(connect(port, client_params(), "localhost"))
      conn:send("echo me\n")
      assert.equal("echo me", conn:receive())
      assert.is_true(conn:getpeerverification())
      conn:close()
    end)
  end)

  it("serves gnutls-cli", function()
    serve_peer(function(port)
      local input = os.tmpname()
      helpers.writefile(input, "hello ljssl\n")
      return helpers.spawn(("timeout 20 gnutls-cli --x509cafile %s -p %d " ..
        "--sni-hostname localhost localhost < %s"):format(pki.ca, port, input)), input
    end, server_params())
  end)
end)

describe("against the real LuaSec", function()
  setup(function() pki = helpers.pki() end)

  -- the peer runs with the system's paths only, never ffi/
  local function peer(role, port)
    return helpers.spawn(("cd / && timeout 20 %s %s/spec/fixtures/luasec_peer.lua %s %d %s"):format(
      helpers.luajit(), os.getenv("PWD"), role, port, pki.dir))
  end

  it("ljssl client, LuaSec server", function()
    local port = helpers.free_port()
    local server = peer("server", port)
    local ok, err = pcall(function()
      helpers.wait_port(port)
    end)
    assert(ok, err)
    -- wait_port's probe took LuaSec's only accept: start it again
    server:stop()
    server = peer("server", port)
    local conn
    for _ = 1, 100 do
      conn = connect(port, client_params(), "localhost")
      if conn then break end
      socket.sleep(0.05)
    end
    assert(conn, "could not connect to the LuaSec server")
    conn:send("shout\n")
    assert.equal("SHOUT", conn:receive())
    conn:close()
    socket.sleep(0.1)
    local out = server:output()
    server:stop()
    assert.truthy(out:find("luasec server done", 1, true), out)
    assert.truthy(out:find("implementation:\tLuaSec", 1, true), out)
  end)

  it("runs a LuaSec program unchanged on ljssl, against the real LuaSec", function()
    local port = helpers.free_port()
    local here = os.getenv("PWD")
    local server = helpers.spawn(("cd / && timeout 20 %s %s/spec/fixtures/luasec_peer.lua server %d %s")
      :format(helpers.luajit(), here, port, pki.dir))
    local client_out
    for _ = 1, 50 do
      local ok, out = helpers.sh(("cd / && LUA_PATH='%s/ffi/?.lua;%s/ffi/?/init.lua;;' timeout 20 %s " ..
        "%s/spec/fixtures/luasec_peer.lua client %d %s"):format(here, here, helpers.luajit(), here, port, pki.dir))
      if ok then client_out = out; break end
      socket.sleep(0.1)
    end
    socket.sleep(0.1)
    local server_out = server:output()
    server:stop()
    assert.truthy(client_out, "the ljssl-run client never succeeded")
    assert.truthy(client_out:find("implementation:\tljssl", 1, true), client_out)
    assert.truthy(client_out:find("reply:\tHELLO FROM LUASEC", 1, true), client_out)
    assert.truthy(server_out:find("implementation:\tLuaSec", 1, true), server_out)
  end)

  it("LuaSec client, ljssl server", function()
    local got
    local ok, err, client = serve_once(function(port)
      return helpers.spawn(("cd / && timeout 20 %s %s/spec/fixtures/luasec_peer.lua client %d %s")
        :format(helpers.luajit(), os.getenv("PWD"), port, pki.dir))
    end, server_params(), function(conn, hs, herr)
      assert(hs, herr)
      got = conn:receive()
      conn:send("hi luasec\n")
    end)
    socket.sleep(0.3)
    local out = client:output()
    client:stop()
    assert(ok, err)
    assert.equal("hello from luasec", got)
    assert.truthy(out:find("reply:\thi luasec", 1, true), out)
    assert.truthy(out:find("protocol:\tTLSv1.3", 1, true), out)
  end)
end)
