-- Faults from a hostile local peer, for the three faces, on both sides: resets
-- and EOFs mid-handshake and mid-record, garbage instead of a hello, a peer that
-- dribbles its hello or never finishes it (slow-loris), a peer that stops
-- reading, renegotiation and key updates, and writes to a closed peer (no
-- SIGPIPE death, checked in child processes).  Each face must answer with its
-- documented error and never hang past its timeout.  The misbehaving peer is
-- spec/fixtures/hostile_peer.lua, alone or as a proxy in front of openssl
-- s_server/s_client; the libtls face is compared with the system libtls where
-- libtls defines the answer.
local socket = require "socket"
local helpers = require "helpers"
local ssl = require "ssl"
local tls = require "libtls"
local tlsconfig = require "libtls.config"
local oracle = require "oracle.libtls"
local iomodules = require "iomodules"
local net, loop = iomodules.net, iomodules.loop

local pki
local LJ = helpers.luajit()

-- Every process a test starts is stopped after it, whatever happened.
local started = {}
local function track(h)
  started[#started + 1] = h
  return h
end

local function wait_output(h, pattern, seconds)
  local deadline = socket.gettime() + (seconds or 5)
  repeat
    if h:output():find(pattern) then return true end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return false
end

-- hostile_peer.lua MODE PORT opts; server modes are waited for.
local function hostile(mode, port, opts)
  local h = track(helpers.spawn(("%s spec/fixtures/hostile_peer.lua %s %d %s")
    :format(LJ, mode, port, opts or "")))
  if mode ~= "client" then assert(wait_output(h, "listening"), "hostile peer did not start") end
  return h
end

-- openssl s_server reversing each line (-rev); returns its port.
local function s_server(extra)
  local port = helpers.free_port()
  track(helpers.spawn(("openssl s_server -quiet -rev -accept 127.0.0.1:%d -cert %s -key %s %s")
    :format(port, pki.server, pki.server_key, extra or "")))
  helpers.wait_port(port)
  return port
end

-- A hostile proxy in front of upstream `up`; returns the port to connect to.
local function proxy(up, opts)
  local port = helpers.free_port()
  hostile("proxy", port, ("up=%d %s"):format(up, opts))
  return port
end

-- An openssl command whose stdin the test writes (s_server/s_client commands).
local function interactive(cmd)
  local dir = helpers.tmpdir()
  local h = { log = dir .. "/log", pidfile = dir .. "/pid" }
  -- line-buffered, so what it prints (s_server's "SSL_do_handshake -> 1") shows at once
  h.f = assert(io.popen(("echo $$ > %s; exec stdbuf -oL -eL %s > %s 2>&1"):format(h.pidfile, cmd, h.log), "w"))
  for _ = 1, 250 do
    local ok, s = pcall(helpers.readfile, h.pidfile)
    h.pid = ok and tonumber(s:match("%d+"))
    if h.pid then break end
    socket.sleep(0.02)
  end
  function h:send(s) self.f:write(s); self.f:flush() end
  function h:output()
    local ok, s = pcall(helpers.readfile, self.log)
    return ok and s or ""
  end
  function h:stop()
    if self.stopped then return end
    self.stopped = true
    if self.pid then helpers.sh(("kill -KILL %d 2>/dev/null"):format(self.pid)) end
    pcall(self.f.close, self.f)
    os.remove(self.log)
    os.remove(self.pidfile)
    os.remove(dir)
  end
  return track(h)
end

-- A loopback listener for an ljssl server: port, accept().
local function listener()
  local l = assert(socket.bind("127.0.0.1", 0))
  l:settimeout(10)
  local _, port = l:getsockname()
  return tonumber(port), function()
    local s = assert(l:accept())
    l:close()
    return s
  end
end

-- openssl s_client (stdin ours) through a hostile proxy to `port`.
local function s_client_via(port, opts, extra)
  local pp = helpers.free_port()
  local px = hostile("proxy", pp, ("up=%d %s"):format(port, opts))
  return interactive(("openssl s_client -connect 127.0.0.1:%d %s"):format(pp, extra or "")), px
end

-- Runs step() until s_server reports that its renegotiation or key update
-- command is done (the client's reads drive a renegotiation); true when it is.
local function until_done(srv, step)
  for _ = 1, 50 do
    if srv:output():find("SSL_do_handshake %-> 1") then return true end
    step()
  end
  return false
end

local function bounded(seconds, fn)
  local t0 = socket.gettime()
  local r = { fn() }
  local took = socket.gettime() - t0
  assert.is_true(took < seconds, ("took %.1f s, past its timeout"):format(took))
  return unpack(r, 1, table.maxn(r))
end

-- LuaSec face ---------------------------------------------------------------------------

local function luasec_client(port, timeout, mode)
  local c = socket.tcp()
  c:settimeout(5)
  assert(c:connect("127.0.0.1", port))
  local conn = assert(ssl.wrap(c, { mode = "client", protocol = "any", cafile = pki.ca, verify = "peer" }))
  conn:settimeout(timeout or 5, mode)
  return conn
end

local function luasec_server(s, timeout, mode)
  local conn = assert(ssl.wrap(s, { mode = "server", protocol = "any",
    key = pki.server_key, certificate = pki.server }))
  conn:settimeout(timeout or 5, mode)
  return conn
end

-- libtls face --------------------------------------------------------------------------

local ljtls = { name = "ljssl", config = tlsconfig, client = tls.client, server = tls.server }

local function msg(v) return type(v) == "table" and v.message or v end

-- A client of `impl` (ljssl's face or the oracle) on a LuaSocket connection
-- (non-blocking fd, as LuaSocket makes them).
local function libtls_client(impl, port, name)
  local cfg = impl.config.new()
  assert(cfg:set_ca_file(pki.ca))
  local ctx = assert(impl.client(cfg))
  local c = socket.tcp()
  c:settimeout(5)
  assert(c:connect("127.0.0.1", port))
  assert(ctx:connect_socket(c:getfd(), name or "localhost"))
  return ctx, c
end

local function libtls_server(impl, s)
  local cfg = impl.config.new()
  assert(cfg:set_keypair_file(pki.server, pki.server_key))
  local srv = assert(impl.server(cfg))
  return assert(srv:accept_socket(s:getfd())), srv
end

-- Repeats a libtls call while it asks to be called again, polling the socket
-- (at most `seconds`); returns its last results, messages instead of errors.
local function again(seconds, c, fn)
  local deadline = socket.gettime() + (seconds or 5)
  while true do
    local r = { fn() }
    -- handshake, close: false, nil, want; read: nil, nil, true, want; write: 0, nil, true, want
    local want = (r[1] == false and r[2] == nil and r[3]) or (r[3] == true and r[4]) or nil
    if not want or socket.gettime() > deadline then
      r[2] = msg(r[2])
      return r
    end
    if want == tls.WANT_POLLOUT then socket.select(nil, { c }, 0.05) else socket.select({ c }, nil, 0.05) end
  end
end

local function hs(ctx, c, seconds) return again(seconds, c, function() return ctx:handshake() end) end
local function rd(ctx, c) return again(5, c, function() return ctx:read(20000) end) end

-- net face -------------------------------------------------------------------------------

local function net_recorder(sock, log)
  sock.error_handler = function(s, code)
    log[#log + 1] = ("error(%d, %s, state %d)"):format(code, s.error_string, s.state)
  end
  sock.disconnected_handler = function() log[#log + 1] = "disconnected" end
  sock.encrypted_handler = function() log[#log + 1] = "encrypted" end
  sock.ready_read_handler = function(s) log[#log + 1] = "read " .. s:read_all_string() end
end

local function net_client(port, log)
  local sock = net.SslSocket.new()
  local cfg = net.SslConfiguration.new()
  cfg:add_ca_certificate(net.SslCertificate.new(helpers.readfile(pki.ca)))
  sock.configuration = cfg
  net_recorder(sock, log)
  sock:connect_encrypted("127.0.0.1", port)
  return sock
end

local accepted = setmetatable({}, { __mode = "k" })   -- log -> the connection it records

local function net_server(log, timeout_ms)
  local server = net.SslServer.new()
  local cfg = net.SslConfiguration.new()
  cfg.local_certificate = net.SslCertificate.new(helpers.readfile(pki.server))
  cfg.private_key = net.SslKey.new(helpers.readfile(pki.server_key), net.SslKey.EC)
  server.configuration = cfg
  if timeout_ms then server.handshake_timeout = timeout_ms end
  assert.is_true(server:listen(0, "127.0.0.1"))
  server.accept_error_handler = function(s, code)
    log[#log + 1] = ("accept_error(%d, %s)"):format(code, s.error_string)
  end
  server.new_connection_handler = function(s)
    local c = s:next_pending_secure_connection()
    log[#log + 1] = "new"
    accepted[log] = c
    net_recorder(c, log)
  end
  return server
end

local function last_is(log, pattern)
  return function() return log[#log] and log[#log]:find(pattern) ~= nil end
end

describe("a hostile peer", function()
  setup(function() pki = helpers.pki() end)
  after_each(function()
    -- one shell for all: SIGKILL to each process and its children
    local cmds = {}
    for _, h in ipairs(started) do
      if h.pid and not h.stopped then
        cmds[#cmds + 1] = ("pkill -KILL -P %d; kill -KILL %d"):format(h.pid, h.pid)
      end
    end
    if #cmds > 0 then helpers.sh(table.concat(cmds, "; ") .. "; true") end
    for i = #started, 1, -1 do
      local h = started[i]
      if h.f then                         -- interactive: close its stdin pipe
        h.pid = nil
        h:stop()
      elseif not h.stopped then           -- helpers.spawn's handle, already killed
        h.stopped = true
        os.remove(h.log)
      end
      started[i] = nil
    end
  end)

  describe("against the LuaSec face, ljssl as client", function()
    it("resets mid-handshake: closed, and closed again", function()
      local conn = luasec_client(proxy(s_server(), "dir=down cut=60 action=reset"))
      assert.same({ false, "closed" }, { conn:dohandshake() })
      assert.same({ false, "closed" }, { conn:dohandshake() })
      conn:close()
    end)

    it("cuts the ServerHello short with a FIN: OpenSSL's reason", function()
      local conn = luasec_client(proxy(s_server(), "dir=down cut=60 action=close"))
      assert.same({ false, "unexpected eof while reading" }, { conn:dohandshake() })
      conn:close()
    end)

    it("answers with garbage instead of a ServerHello: wrong version number", function()
      for _, data in ipairs({ "http_response", "random", "zeros" }) do
        local port = helpers.free_port()
        hostile("garbage", port, "data=" .. data .. " then=hold")
        local conn = luasec_client(port)
        assert.same({ false, "wrong version number" }, { bounded(4, function() return conn:dohandshake() end) }, data)
        conn:close()
      end
    end)

    it("dribbles its handshake a byte at a time: wantread at the timeout", function()
      -- the server's flight takes ~40 s at this pace: only the timeout ends it
      local conn = luasec_client(proxy(s_server(), "dir=down dribble=0.05"), 0.3)
      assert.same({ false, "wantread" }, { bounded(4, function() return conn:dohandshake() end) })
      conn:close()
    end)

    it("cuts a record short, with a FIN or an RST: the stream ends with closed", function()
      for _, action in ipairs({ "close", "reset" }) do
        local conn = luasec_client(proxy(s_server(), "dir=down record=4000 action=" .. action))
        assert.is_true(conn:dohandshake())
        conn:send(("a"):rep(100) .. "\n")
        assert.equal(("a"):rep(100), conn:receive())        -- fine before the fault
        conn:send(("b"):rep(10000) .. "\n")                  -- the reply is cut halfway
        assert.same({ nil, "closed", "" }, { conn:receive() }, action)
        assert.same({ nil, "closed", "" }, { conn:receive("*a") }, action)
        assert.same({ nil, "closed", 0 }, { conn:send("more\n") }, action)
        conn:close()
      end
    end)

    it("ends the stream without close_notify on a record boundary: closed", function()
      local conn = luasec_client(proxy(s_server(), "dir=down record=4000 at=start action=close"))
      assert.is_true(conn:dohandshake())
      conn:send(("b"):rep(10000) .. "\n")
      assert.same({ nil, "closed", "" }, { conn:receive() })
      conn:close()
    end)

    it("stops reading: send reports wantwrite and how far it got", function()
      local conn = luasec_client(proxy(s_server(), "dir=up record=4000 action=stall"))
      assert.is_true(conn:dohandshake())
      conn:settimeout(0.5)
      local blob = ("z"):rep(16 * 1024 * 1024)
      local last, err, partial = bounded(5, function() return conn:send(blob) end)
      assert.is_nil(last)
      assert.equal("wantwrite", err)
      assert.is_true(partial > 0 and partial < #blob, tostring(partial))
      bounded(5, function() conn:close() end)
    end)

    it("renegotiates (TLS 1.2) and updates keys (TLS 1.3) when the server asks", function()
      for _, case in ipairs({ { "-tls1_2", "r" }, { "-tls1_2", "R" }, { "-tls1_3", "k" }, { "-tls1_3", "K" } }) do
        local port = helpers.free_port()
        local srv = interactive(("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s %s")
          :format(port, pki.server, pki.server_key, case[1]))
        helpers.wait_port(port)
        local c = socket.tcp()
        c:settimeout(5)
        assert(c:connect("127.0.0.1", port))
        local conn = assert(ssl.wrap(c, { mode = "client", protocol = "any", cafile = pki.ca,
          verify = "peer", certificate = pki.client, key = pki.client_key }))
        conn:settimeout(5)
        assert.is_true(conn:dohandshake())
        srv:send("before\n")
        assert.equal("before", conn:receive())
        local finished = conn:getfinished()
        -- s_server's renegotiation waits for the client's new handshake, which
        -- the client makes as it reads: read (nothing comes) until it is done
        srv:send(case[2] .. "\n")
        conn:settimeout(0.1)
        local done = until_done(srv, function() assert.same({ nil, "wantread", "" }, { conn:receive() }) end)
        assert.is_true(done, srv:output())
        conn:settimeout(5)
        srv:send("after\n")
        assert.equal("after", conn:receive(), case[2])
        assert.equal(12, conn:send("from client\n"))
        assert.is_true(wait_output(srv, "from client"), srv:output())
        if case[1] == "-tls1_2" then
          assert.are_not.equal(finished, conn:getfinished(), "no new handshake took place")
        end
        conn:close()
        srv:stop()
      end
    end)
  end)

  describe("against the LuaSec face, ljssl as server", function()
    it("gets a ClientHello a byte at a time, or never all of it: wantread at the timeout", function()
      -- dribbled: ~15 s at this pace; held: never.  Block and total timeouts.
      for _, case in ipairs({ { "dir=up dribble=0.05", "b" }, { "dir=up cut=60 action=hold", "t" },
                              { "dir=up dribble=0.05", "t" } }) do
        local port, accept = listener()
        s_client_via(port, case[1])
        local conn = luasec_server(accept(), 0.3, case[2])
        assert.same({ false, "wantread" }, { bounded(4, function() return conn:dohandshake() end) })
        conn:close()
      end
    end)

    it("gets garbage instead of a ClientHello: OpenSSL's reason", function()
      for _, case in ipairs({ { "http_request", "http request" }, { "random", "wrong version number" },
                              { "zeros", "wrong version number" } }) do
        local port, accept = listener()
        hostile("client", port, "data=" .. case[1] .. " then=hold")
        local conn = luasec_server(accept())
        assert.same({ false, case[2] }, { bounded(4, function() return conn:dohandshake() end) })
        conn:close()
      end
    end)

    it("gets a ClientHello cut by an RST or a FIN: closed, or OpenSSL's reason", function()
      for _, case in ipairs({ { "reset", "closed" }, { "close", "unexpected eof while reading" } }) do
        local port, accept = listener()
        s_client_via(port, "dir=up cut=60 action=" .. case[1])
        local conn = luasec_server(accept())
        assert.same({ false, case[2] }, { bounded(4, function() return conn:dohandshake() end) })
        conn:close()
      end
    end)

    it("gets a record cut short by an RST or a FIN: the stream ends with closed", function()
      for _, action in ipairs({ "reset", "close" }) do
        local port, accept = listener()
        local cl = s_client_via(port, "dir=up record=4000 action=" .. action)
        local conn = luasec_server(accept())
        assert.is_true(conn:dohandshake())
        cl:send("hello\n")
        assert.equal("hello", conn:receive())
        cl:send(("q"):rep(10000) .. "\n")
        assert.same({ nil, "closed", "" }, { conn:receive() }, action)
        assert.same({ nil, "closed", "" }, { conn:receive() }, action)
        conn:close()
      end
    end)

    it("refuses client-initiated renegotiation, as OpenSSL 3 does, with its alert", function()
      local port, accept = listener()
      local cl = interactive(("openssl s_client -connect 127.0.0.1:%d -tls1_2"):format(port))
      local conn = luasec_server(accept())
      assert.is_true(conn:dohandshake())
      cl:send("before\n")
      assert.equal("before", conn:receive())
      cl:send("R\n")
      assert.same({ nil, helpers.alert_text(40), "" }, { conn:receive() })   -- handshake_failure
      assert.truthy(wait_output(cl, "no renegotiation"), cl:output())
      assert.same({ nil, "closed", 0 }, { conn:send("x\n") })
      conn:close()
    end)

    it("follows key updates the client sends (k) or asks for (K)", function()
      for _, key in ipairs({ "k", "K" }) do
        local port, accept = listener()
        local cl = interactive(("openssl s_client -connect 127.0.0.1:%d -tls1_3"):format(port))
        local conn = luasec_server(accept())
        assert.is_true(conn:dohandshake())
        cl:send("before\n")
        assert.equal("before", conn:receive())
        cl:send(key .. "\n")
        assert.truthy(wait_output(cl, "KEYUPDATE"), cl:output())
        cl:send("after\n")
        assert.equal("after", conn:receive(), key)
        assert.equal(12, conn:send("from server\n"))
        assert.truthy(wait_output(cl, "from server"), cl:output())
        conn:close()
      end
    end)
  end)

  describe("against the libtls face, ljssl as client", function()
    it("fails the handshake as the system libtls does, and keeps failing", function()
      local cases = {
        { "dir=down cut=60 action=reset", "handshake failed: Connection reset by peer" },
        { "dir=down cut=60 action=close",
          "handshake failed: error:0A000126:SSL routines::unexpected eof while reading" },
        { "dir=down cut=0 action=garbage data=http_response",
          "handshake failed: error:0A00010B:SSL routines::wrong version number" },
      }
      for _, case in ipairs(cases) do
        local port = proxy(s_server(), case[1] .. " count=2")
        local octx, oc = libtls_client(oracle, port)
        local o = hs(octx, oc)
        oc:close()
        local ctx, c = libtls_client(ljtls, port)
        local r = hs(ctx, c)
        assert.same({ false, case[2] }, { o[1], o[2] }, "the oracle: " .. case[1])
        assert.same({ false, case[2] }, { r[1], r[2] }, case[1])
        -- and again, from handshake, read and write (libtls reruns the step)
        assert.equal(case[2], hs(ctx, c)[2])
        assert.equal(case[2], rd(ctx, c)[2])
        assert.equal(case[2], msg(select(2, ctx:write("x"))))
        assert.is_true(ctx:close())
        c:close()
      end
    end)

    it("never reads or writes after the server's name failed the check", function()
      for _, impl in ipairs({ oracle, ljtls }) do
        local ctx, c = libtls_client(impl, s_server(), "wrong.example.org")
        local want = "name `wrong.example.org' not present in server certificate"
        local r = hs(ctx, c)
        assert.same({ false, want }, { r[1], r[2] }, impl.name)
        local n, err = ctx:write("secret\n")
        assert.same({ nil, want }, { n, msg(err) }, impl.name)
        r = rd(ctx, c)
        assert.same({ nil, want }, { r[1], r[2] }, impl.name)
        c:close()
      end
    end)

    it("gets a record cut by an RST: the read fails, and so does every later call", function()
      local ctx, c = libtls_client(ljtls, proxy(s_server(), "dir=down record=4000 action=reset"))
      assert.is_true(hs(ctx, c)[1])
      assert.equal(10001, ctx:write(("b"):rep(10000) .. "\n"))
      local want = "read failed: Connection reset by peer"
      local r = rd(ctx, c)
      assert.same({ nil, want }, { r[1], r[2] })
      r = rd(ctx, c)
      assert.same({ nil, want }, { r[1], r[2] })      -- again: not a clean end of stream
      local n, err = ctx:write("x")
      assert.same({ nil, "write failed: Connection reset by peer" }, { n, msg(err) })
      assert.is_true(ctx:close())
      c:close()
    end)

    it("ends the stream without close_notify (mid-record or on a boundary): end of stream, then close says so", function()
      for _, opts in ipairs({ "record=4000 action=close", "record=4000 at=start action=close" }) do
        local ctx, c = libtls_client(ljtls, proxy(s_server(), "dir=down " .. opts))
        assert.is_true(hs(ctx, c)[1])
        ctx:write(("b"):rep(10000) .. "\n")
        assert.equal(0, #rd(ctx, c), opts)         -- no values: the end of the stream
        assert.equal(0, #rd(ctx, c), opts)
        local ok, err = ctx:close()
        assert.same({ false, "EOF without close notify" }, { ok, msg(err) }, opts)
        c:close()
      end
    end)

    it("stops reading: writes on a non-blocking socket ask for POLLOUT, close does not hang", function()
      local ctx, c = libtls_client(ljtls, proxy(s_server(), "dir=up record=4000 action=stall"))
      assert.is_true(hs(ctx, c)[1])
      -- partial writes (a record each, true, WANT_POLLOUT) until the buffers
      -- are full, then nothing goes: 0, nil, true, WANT_POLLOUT
      local chunk, total, last = ("w"):rep(65536), 0, nil
      for _ = 1, 4000 do                       -- up to 256 MiB, far more than the buffers hold
        last = { ctx:write(chunk) }
        total = total + (last[1] or 0)
        if last[1] == 0 then break end
        assert.same({ true, tls.WANT_POLLOUT }, { last[3] or #chunk == last[1], last[4] or tls.WANT_POLLOUT })
      end
      assert.same({ 0, nil, true, tls.WANT_POLLOUT }, last)
      assert.same({ 0, nil, true, tls.WANT_POLLOUT }, { ctx:write(chunk) })
      assert.is_true(total > 0)
      -- close cannot send close_notify either: it asks for POLLOUT, as libtls
      assert.same({ false, nil, tls.WANT_POLLOUT }, { bounded(5, function() return ctx:close() end) })
      c:close()
    end)

    it("follows renegotiation (TLS 1.2) and key updates (TLS 1.3) from the server", function()
      for _, case in ipairs({ { "-tls1_2", "r" }, { "-tls1_3", "K" } }) do
        local port = helpers.free_port()
        local srv = interactive(("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s %s")
          :format(port, pki.server, pki.server_key, case[1]))
        helpers.wait_port(port)
        local ctx, c = libtls_client(ljtls, port)
        assert.is_true(hs(ctx, c)[1])
        srv:send("before\n")
        assert.equal("before\n", rd(ctx, c)[1])
        srv:send(case[2] .. "\n")
        local done = until_done(srv, function()
          assert.same({ nil, nil, true, tls.WANT_POLLIN }, again(0.1, c, function() return ctx:read() end))
        end)
        assert.is_true(done, srv:output())
        srv:send("after\n")
        assert.equal("after\n", rd(ctx, c)[1], case[2])
        assert.equal(12, again(5, c, function() return ctx:write("from client\n") end)[1])
        assert.is_true(wait_output(srv, "from client"), srv:output())
        ctx:close()
        c:close()
        srv:stop()
      end
    end)
  end)

  describe("against the libtls face, ljssl as server", function()
    it("fails the handshake on garbage or a reset ClientHello as the system libtls does", function()
      local cases = {
        { "data=http_request then=hold", "handshake failed: error:0A00009C:SSL routines::http request" },
        { "data=random then=hold", "handshake failed: error:0A00010B:SSL routines::wrong version number" },
        { "data=hex:16030100 then=reset", "handshake failed: Connection reset by peer" },
        { "data=hex:16030100 then=close",
          "handshake failed: error:0A000126:SSL routines::unexpected eof while reading" },
      }
      for _, case in ipairs(cases) do
        for _, impl in ipairs({ oracle, ljtls }) do
          local port, accept = listener()
          hostile("client", port, case[1])
          local s = accept()
          local conn = libtls_server(impl, s)
          local r = hs(conn, s)
          assert.same({ false, case[2] }, { r[1], r[2] }, impl.name .. ": " .. case[1])
          s:close()
        end
      end
    end)

    it("keeps asking for POLLIN from a slow-loris client, never blocking", function()
      local port, accept = listener()
      s_client_via(port, "dir=up dribble=0.05")
      local s = accept()
      local conn = libtls_server(ljtls, s)
      local r = bounded(4, function() return hs(conn, s, 0.5) end)    -- the program's own deadline
      assert.same({ false, nil, tls.WANT_POLLIN }, { r[1], r[2], r[3] })
      assert.is_true(bounded(2, function() return conn:close() end))
      s:close()
    end)
  end)

  describe("against the net face, ljssl as client", function()
    it("closes mid-handshake (REMOTE_HOST_CLOSED_ERROR, as Qt) or answers garbage (SSL_HANDSHAKE_FAILED_ERROR)", function()
      local cases = {
        { "dir=down cut=60 action=reset", "The remote host closed the connection", 1 },
        { "dir=down cut=60 action=close", "The remote host closed the connection", 1 },
        { "dir=down cut=0 action=garbage data=http_response", "Error during SSL handshake: wrong version number", 13 },
      }
      for _, case in ipairs(cases) do
        local log = {}
        local sock = net_client(proxy(s_server(), case[1]), log)
        assert.truthy(loop.run_until(function() return sock.state == 0 end, 5), case[1])
        assert.same({ ("error(%d, %s, state 3)"):format(case[3], case[2]), "disconnected" }, log, case[1])
      end
    end)

    it("gets a record cut short (RST, FIN, or on a boundary): REMOTE_HOST_CLOSED_ERROR while connected", function()
      for _, opts in ipairs({ "record=4000 action=reset", "record=4000 action=close",
                              "record=4000 at=start action=close" }) do
        local log = {}
        local sock = net_client(proxy(s_server(), "dir=down " .. opts), log)
        sock:write_string("hello\n" .. ("b"):rep(10000) .. "\n")
        assert.truthy(loop.run_until(function() return sock.state == 0 end, 5), opts)
        assert.same({ "encrypted", "read olleh\n", "error(1, The remote host closed the connection, state 3)",
                      "disconnected" }, log, opts)
      end
    end)

    it("stops reading: the data waits in bytes_to_write, the loop runs on, abort drops it", function()
      local log = {}
      local sock = net_client(proxy(s_server(), "dir=up record=4000 action=stall"), log)
      assert.truthy(loop.run_until(function() return sock.encrypted end, 5))
      local blob = ("z"):rep(16 * 1024 * 1024)
      assert.equal(#blob, bounded(5, function() return sock:write_string(blob) end))
      local ticks = 0
      loop.after(0.3, function() ticks = ticks + 1 end)
      assert.truthy(loop.run_until(function() return ticks > 0 end, 5))   -- the loop is not stuck
      assert.is_true(sock.bytes_to_write > 0)
      assert.equal(3, sock.state)
      assert.same({ "encrypted" }, log)
      sock:abort()
      assert.equal(0, sock.state)
      assert.equal(0, sock.bytes_to_write)
      assert.same({ "encrypted", "disconnected" }, log)
    end)

    it("is aborted while a server dribbles its handshake", function()
      local log = {}
      local sock = net_client(proxy(s_server(), "dir=down dribble=0.05"), log)
      loop.after(0.3, function() sock:abort() end)
      assert.truthy(loop.run_until(function() return sock.state == 0 end, 5))
      assert.is_false(sock.encrypted)
      assert.same({ "disconnected" }, log)
    end)

    it("follows renegotiation (TLS 1.2) and key updates (TLS 1.3) from the server", function()
      for _, case in ipairs({ { "-tls1_2", "r" }, { "-tls1_3", "K" } }) do
        local port = helpers.free_port()
        local srv = interactive(("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s %s")
          :format(port, pki.server, pki.server_key, case[1]))
        helpers.wait_port(port)
        local log = {}
        local sock = net_client(port, log)
        assert.truthy(loop.run_until(function() return sock.encrypted end, 5))
        srv:send("before\n")
        assert.truthy(loop.run_until(last_is(log, "^read before"), 5))
        for round = 1, 3 do
          srv:send(case[2] .. "\n")
          assert.truthy(loop.run_until(function()
            return select(2, srv:output():gsub("SSL_do_handshake %-> 1", "")) >= round
          end, 5), srv:output())
          srv:send("after " .. round .. "\n")
          assert.truthy(loop.run_until(last_is(log, "^read after " .. round), 5), table.concat(log, "; "))
          -- written while the client's new handshake is often still under way
          -- (SSL_write wants to read first): the data must wait, not vanish
          local line = "from client " .. round .. "\n"
          assert.equal(#line, sock:write_string(line))
          assert.truthy(loop.run_until(function()
            return srv:output():find("from client " .. round, 1, true)
          end, 5), srv:output())
        end
        assert.same({ "encrypted", "read before\n", "read after 1\n", "read after 2\n", "read after 3\n" }, log)
        assert.equal(0, sock.bytes_to_write)
        sock:abort()
        srv:stop()
      end
    end)
  end)

  describe("against the net face, ljssl as server", function()
    it("gets garbage or a cut ClientHello: accept_error_handler with Qt's codes", function()
      local cases = {
        { "client", "data=http_request then=hold", "accept_error(13, Error during SSL handshake: http request)" },
        { "client", "data=random then=hold", "accept_error(13, Error during SSL handshake: wrong version number)" },
        { "proxy", "dir=up cut=60 action=reset", "accept_error(1, The remote host closed the connection)" },
        { "proxy", "dir=up cut=60 action=close", "accept_error(1, The remote host closed the connection)" },
      }
      for _, case in ipairs(cases) do
        local log = {}
        local server = net_server(log)
        if case[1] == "client" then hostile("client", server.port, case[2])
        else s_client_via(server.port, case[2]) end
        assert.truthy(loop.run_until(function() return #log > 0 end, 5), case[2])
        assert.same({ case[3] }, log)
        server:close()
      end
    end)

    it("drops a slow-loris client after handshake_timeout: SOCKET_TIMEOUT_ERROR", function()
      assert.equal(5000, net.SslServer.new().handshake_timeout)     -- Qt's QSslServer default
      for _, opts in ipairs({ "dir=up dribble=0.05", "dir=up cut=60 action=hold" }) do
        local log = {}
        local server = net_server(log, 300)
        local _, px = s_client_via(server.port, opts)
        assert.truthy(loop.run_until(function() return #log > 0 end, 4), opts)
        assert.same({ "accept_error(5, Socket operation timed out)" }, log)
        -- and the connection is gone: the proxy in front of the client sees it
        assert.truthy(wait_output(px, "upstream closed the connection"), px:output())
        server:close()
      end
    end)

    it("gets a record cut short after the handshake: REMOTE_HOST_CLOSED_ERROR on the connection", function()
      for _, action in ipairs({ "reset", "close" }) do
        local log = {}
        local server = net_server(log)
        local cl = s_client_via(server.port, "dir=up record=4000 action=" .. action)
        assert.truthy(loop.run_until(function() return accepted[log] end, 5))
        cl:send("hello\n")
        assert.truthy(loop.run_until(last_is(log, "^read hello"), 5))
        cl:send(("q"):rep(10000) .. "\n")
        assert.truthy(loop.run_until(last_is(log, "^disconnected"), 5), action)
        assert.same({ "new", "read hello\n", "error(1, The remote host closed the connection, state 3)",
                      "disconnected" }, log)
        server:close()
      end
    end)

    it("follows key updates from the client and turns down its renegotiation", function()
      for _, case in ipairs({ { "-tls1_3", "K" }, { "-tls1_2", "R" } }) do
        local log = {}
        local server = net_server(log)
        local cl = interactive(("openssl s_client -connect 127.0.0.1:%d %s"):format(server.port, case[1]))
        assert.truthy(loop.run_until(function() return accepted[log] end, 5))
        cl:send("before\n")
        assert.truthy(loop.run_until(last_is(log, "^read before"), 5))
        cl:send(case[2] .. "\n")
        if case[2] == "K" then
          assert.truthy(wait_output(cl, "KEYUPDATE"), cl:output())
          cl:send("after\n")
          assert.truthy(loop.run_until(last_is(log, "^read after"), 5), table.concat(log, "; "))
          accepted[log]:write_string("from server\n")
          assert.truthy(loop.run_until(function() return cl:output():find("from server") end, 5))
          accepted[log]:abort()
        else
          assert.truthy(loop.run_until(last_is(log, "^disconnected"), 5), table.concat(log, "; "))
          assert.same({ "new", "read before\n",
            "error(20, Error while reading: " .. helpers.alert_text(40) .. ", state 3)", "disconnected" }, log)
          assert.truthy(wait_output(cl, "no renegotiation"), cl:output())
        end
        server:close()
      end
    end)
  end)

  describe("writing to a peer that has gone", function()
    -- A child process writes to a connection whose peer closed: the write must
    -- fail with an error and the child live on.  The control run restores
    -- SIGPIPE's default action after loading everything: that child must die
    -- of SIGPIPE (exit status 141), which shows the writes do reach a dead
    -- socket and that a SIGPIPE death would be seen.
    local CHILD = [=[
local face, port, cafile, control = arg[1], tonumber(arg[2]), arg[3], arg[4] == "control"
local ffi = require "ffi"
local lib = require "ljssl.lib"
local function sleep(s) lib.libc.ljssl_poll(nil, 0, s * 1000) end
local write
if face == "luasec" then
  local socket = require "socket"
  local ssl = require "ssl"
  local c = socket.tcp(); c:settimeout(5); assert(c:connect("127.0.0.1", port))
  local conn = assert(ssl.wrap(c, { mode = "client", protocol = "any", cafile = cafile, verify = "peer" }))
  conn:settimeout(5)
  assert(conn:dohandshake())
  write = function(s) local n, err = conn:send(s); return tostring(n) .. "/" .. tostring(err) end
elseif face == "libtls" then
  -- a socket made here, without LuaSocket (which ignores SIGPIPE itself)
  pcall(ffi.cdef, [[
    struct faults_sin { uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8]; };
    int socket(int, int, int);
    int connect(int, const struct faults_sin *, unsigned int);
  ]])
  local tls, config = require "libtls", require "libtls.config"
  local fd = ffi.C.socket(2, 1, 0)
  local sa = ffi.new("struct faults_sin", 2, bit.bor(bit.lshift(bit.band(port, 255), 8), bit.rshift(port, 8)), 0x0100007f)
  assert(ffi.C.connect(fd, sa, ffi.sizeof(sa)) == 0)
  local cfg = config.new(); assert(cfg:set_ca_file(cafile))
  local ctx = tls.client(cfg)
  assert(ctx:connect_socket(fd, "localhost"))
  assert(ctx:handshake())
  write = function(s)
    local n, err = ctx:write(s)
    return tostring(n) .. "/" .. tostring(type(err) == "table" and err.message or err)
  end
else
  require "iomodules"
  local net, loop = iomodules.net, iomodules.loop
  local sock = net.SslSocket.new()
  local cfg = net.SslConfiguration.new()
  local f = assert(io.open(cafile)); cfg:add_ca_certificate(net.SslCertificate.new(f:read("*a"))); f:close()
  sock.configuration = cfg
  sock:connect_encrypted("127.0.0.1", port)
  assert(loop.run_until(function() return sock.encrypted end, 5))
  write = function(s) return ("%d/%d/%d"):format(sock:write_string(s), sock.error, sock.state) end
end
if control then ffi.C.signal(13, ffi.cast("__sighandler_t", 0)) end
local results = { write(("m"):rep(3000)) }      -- the peer closes on this
sleep(0.2)
for _ = 1, 5 do results[#results + 1] = write(("n"):rep(3000)); sleep(0.02) end
print("survived: " .. table.concat(results, " "))
print("luasocket loaded: " .. tostring(package.loaded.socket ~= nil))
]=]
    local child

    local function run_child(face, port, control)
      return helpers.sh(("LUA_PATH='ffi/?.lua;ffi/?/init.lua;;' timeout 20 %s %s %s %d %s %s")
        :format(LJ, child, face, port, pki.ca, control and "control" or ""))
    end

    local child_dir
    setup(function()
      child_dir = helpers.tmpdir()
      child = child_dir .. "/sigpipe_child.lua"
      helpers.writefile(child, CHILD)
    end)
    teardown(function()
      os.remove(child)
      os.remove(child_dir)
    end)

    -- libtls reports the error queue's first line when there is one, else
    -- strerror(errno); OpenSSL 3.0's socket BIO queues nothing for EPIPE,
    -- later releases queue a system error
    local epipe = require("ljssl.lib").version_minor == 0 and "Broken pipe"
      or "error:80000020:system library::Broken pipe"
    for _, case in ipairs({
      -- the first write after the peer closed is accepted (the peer's kernel
      -- answers it with an RST); the next meets the dead socket: EPIPE
      { "luasec", "3000/nil 3000/nil nil/Broken pipe nil/closed" },
      { "libtls", ("3000/nil 3000/nil nil/write failed: %s nil/write failed: %s"):format(epipe, epipe) },
      { "net", "3000/-1/3 3000/-1/3 3000/1/0 -1/1/0" },
    }) do
      it("returns an error and survives, from the " .. case[1] .. " face", function()
        -- 2500: above any ClientHello (OpenSSL 3.5's ML-KEM key share makes
        -- it about 1.6 KB), below the 3000-byte write's record
        local port = proxy(s_server(), "dir=up record=2500 action=close count=2")
        local ok, out, status = run_child(case[1], port)
        assert.is_true(ok, ("exit status %s: %s"):format(tostring(status), out))
        assert.truthy(out:find("survived: " .. case[2], 1, true), out)
        if case[1] == "libtls" then assert.truthy(out:find("luasocket loaded: false", 1, true), out) end
        local _, cout, cstatus = run_child(case[1], port, true)
        assert.equal(141, cstatus, "the control run did not die of SIGPIPE: " .. cout)
      end)
    end
  end)
end)
