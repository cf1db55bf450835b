-- The libtls face on its own: conventions, errors, connect by name, states,
-- EOF semantics, sendfile, load_file, and sessions (tickets shared between
-- server contexts, a client session file reused by a new process).
local ffi = require "ffi"
local socket = require "socket"
local helpers = require "helpers"
local tls = require "libtls"
local config = require "libtls.config"

local dir

local function server_ctx(extra)
  local cfg = config.new()
  assert(cfg:set_keypair_file(dir .. "/valid-chain.pem", dir .. "/valid.key"))
  if extra then extra(cfg) end
  return assert(tls.server(cfg)), cfg
end

local function client_cfg(extra)
  local cfg = config.new()
  assert(cfg:set_ca_file(dir .. "/root.pem"))
  if extra then extra(cfg) end
  return cfg
end

local tcp_pair = helpers.tcp_pair

local function pending(ok, err) return ok == false and err == nil end

local function handshake(cli, conn, c, s)
  local a, ea, b, eb = false, nil, false, nil
  for _ = 1, 300 do
    if pending(a, ea) then a, ea = cli:handshake() end
    if pending(b, eb) then b, eb = conn:handshake() end
    if not pending(a, ea) and not pending(b, eb) then break end
    socket.select({ c, s }, nil, 0.02)
  end
  return a, ea, b, eb
end

local function connected(client_extra, server_extra)
  local srv = server_ctx(server_extra)
  local cli = tls.client(client_cfg(client_extra))
  local c, s = tcp_pair()
  assert(cli:connect_socket(c:getfd(), "localhost"))
  local conn = assert(srv:accept_socket(s:getfd()))
  local a, ea, b, eb = handshake(cli, conn, c, s)
  assert(a == true and b == true, tostring(ea) .. " / " .. tostring(eb))
  return cli, conn, c, s, srv
end

describe("libtls face", function()
  setup(function() dir = helpers.certs() end)

  it("has lua-libtls's object shapes", function()
    local cfg = config.new()
    assert.truthy(tostring(cfg):match("^libtls.config: 0x%x+$"))
    local ctx = tls.client(cfg)
    assert.truthy(tostring(ctx):match("^libtls: 0x%x+$"))
    assert.equal("userdata", type(ctx))
  end)

  it("returns error values with type, op, message and lua-error's text", function()
    local cfg = config.new()
    local ok, err = cfg:set_ca_file("/nonexistent/ca.pem")
    assert.is_false(ok)
    assert.equal(tls.ERROR, err.type)
    assert.equal("config.set_ca_file", err.op)
    assert.equal("failed to open CA file '/nonexistent/ca.pem': No such file or directory", err.message)
    assert.equal(-1, err.code)
    assert.truthy(tostring(err):match(
      "^spec/libtls_spec%.lua:%d+: in .-: %[libtls%.ERROR:%-1%]%[config%.set_ca_file%] " ..
      "Operation failure %(failed to open CA file '/nonexistent/ca%.pem': No such file or directory%)$"),
      tostring(err))
  end)

  it("throws argument mistakes in lauxhlib's words", function()
    local cfg = config.new()
    assert.has_error(function() cfg:set_alpn() end, "bad argument #2 to '?' (string expected, got no value)")
    assert.has_error(function() cfg:set_alpn(42) end, "bad argument #2 to '?' (string expected, got number)")
    assert.has_error(function() cfg:set_verify_depth(1.5) end, "bad argument #2 to '?' (integer expected, got number)")
    assert.has_error(function() cfg:set_protocols(tls.TLS_v12, "x") end)
    assert.has_error(function() tls.client({}) end)
  end)

  it("ORs every protocol argument", function()
    local cfg = config.new()
    assert.is_true(cfg:set_protocols(tls.TLS_v12, tls.TLS_v13))
    assert.equal(24, config.state[cfg].protocols)
  end)

  it("refuses operations in the wrong state, with libtls's messages", function()
    local srv = server_ctx()
    local ok, err = srv:handshake()
    assert.is_false(ok)
    assert.equal("invalid operation for context", err.message)
    local cli = tls.client(client_cfg())
    ok, err = cli:handshake()
    assert.equal("context not connected", err.message)
    ok, err = cli:accept_socket(0)
    assert.equal("not a server context", err.message)
    local conn
    conn, err = srv:connect_socket(0, "x")
    assert.is_false(conn)
    assert.equal("not a client context", err.message)
    ok, err = cli:connect_fds(-1, 3, "localhost")
    assert.equal("invalid file descriptors", err.message)
    local bare = assert(tls.server(config.new()) == nil or true)
    local nokey, kerr = tls.server(config.new())
    assert.is_nil(nokey)
    assert.equal("private/public key mismatch", kerr.message)
    return bare
  end)

  it("says so when the handshake is done already, and reads and writes after it", function()
    local cli, conn, c, s = connected()
    local ok, err = cli:handshake()
    assert.is_false(ok)
    assert.equal("handshake already completed", err.message)
    -- nothing to read yet: would block
    local data, rerr, again, want = conn:read()
    assert.same({ nil, nil, true, tls.WANT_POLLIN }, { data, rerr, again, want })
    assert.equal(5, cli:write("hello"))
    socket.select({ s }, nil, 1)
    assert.equal("hello", conn:read(100))
    assert.same({}, { cli:write("") })
    assert.is_true(cli:close())
    socket.select({ s }, nil, 1)
    assert.same({}, { conn:read() })      -- close_notify: no values
    assert.is_true(conn:close())
    c:close(); s:close()
  end)

  it("still writes after the peer's close_notify (TLS half-close, as libtls)", function()
    local cli, conn, c, s = connected()
    local ok
    for _ = 1, 50 do                          -- the server's close_notify goes out
      ok = conn:close()
      if ok then break end
      socket.select({ s }, { s }, 0.05)
    end
    assert.is_true(ok)
    local r
    for _ = 1, 50 do
      r = { cli:read() }
      if r[3] ~= true then break end
      socket.select({ c }, nil, 0.05)
    end
    assert.same({}, r)                        -- the end of the stream
    assert.equal(4, cli:write("late"))        -- and the client may still write
    socket.select({ s }, nil, 1)
    local raw = s:receive(5)                  -- a TLS record header arrives
    assert.equal(23, raw and raw:byte(1), "an application data record")
    c:close(); s:close()
    return cli
  end)

  it("reads EOF without close_notify as the end, and close() reports it (libtls semantics)", function()
    local cli, conn, c, s = connected()
    c:shutdown("send")                      -- the TCP stream ends, no close_notify
    socket.select({ s }, nil, 1)
    local r
    for _ = 1, 50 do
      r = { conn:read() }
      if r[3] ~= true then break end
      socket.select({ s }, nil, 0.05)
    end
    assert.same({}, r)
    local ok, err = conn:close()
    assert.is_false(ok)
    assert.equal("EOF without close notify", err.message)
    c:close(); s:close()
    return cli
  end)

  it("connects by name and port with a blocking socket it owns", function()
    -- the server is another process: libtls's own sockets block
    local port = helpers.free_port()
    local server = helpers.spawn(("timeout 20 %s examples/libtls_server.lua %d %s/valid-chain.pem %s/valid.key")
      :format(helpers.luajit(), port, dir, dir))
    local ok, err
    local cli
    for _ = 1, 50 do
      cli = tls.client(client_cfg())
      ok, err = cli:connect("localhost:" .. port)
      if ok then break end
      socket.sleep(0.1)
    end
    local ok2, err2 = pcall(function()
      assert.is_true(ok, err and err.message)
      local hs, herr = cli:handshake()
      assert.is_true(hs, herr and herr.message)
      assert.equal("localhost", cli:conn_servername())
      assert.equal(9, cli:write("hi there\n"))
      local data, rerr, again
      repeat data, rerr, again = cli:read() until not again
      assert.equal("hi there\n", data)
      assert.is_true(cli:close())
    end)
    server:stop()
    assert(ok2, err2)
    local bad = tls.client(client_cfg())
    ok, err = bad:connect("localhost")
    assert.is_false(ok)
    assert.equal("no port provided", err.message)
    ok, err = bad:connect("127.0.0.1", tostring(helpers.free_port()))
    assert.is_false(ok)
    assert.truthy(err.message:match("^connect: "), err.message)
  end)

  it("can be reset and used for a new connection", function()
    local cli, conn, c, s, srv = connected()
    cli:close(); conn:close(); c:close(); s:close()
    cli:reset()
    assert.is_nil(cli:conn_version())
    local c2, s2 = tcp_pair()
    assert(cli:connect_socket(c2:getfd(), "localhost"))
    local conn2 = assert(srv:accept_socket(s2:getfd()))
    local a, ea, b, eb = handshake(cli, conn2, c2, s2)
    assert.is_true(a, ea and ea.message)
    assert.is_true(b, eb and eb.message)
    assert.equal("TLSv1.3", cli:conn_version())
    cli:close(); conn2:close(); c2:close(); s2:close()
  end)

  it("checks an OCSP response the program fetched", function()
    local pre = tls.client(client_cfg())
    local ok, err = pre:ocsp_process_response("x")
    assert.is_false(ok)
    assert.is_nil(err.message)                     -- libtls: -1 and no message before the handshake
    local cli, conn, c, s = connected()
    ok, err = cli:ocsp_process_response(helpers.readfile(dir .. "/valid.ocsp"))
    assert.is_true(ok, err and err.message)
    assert.equal("good", cli:peer_ocsp_result())
    assert.equal(tls.OCSP_CERT_GOOD, cli:peer_ocsp_cert_status())
    assert.equal(tls.OCSP_RESPONSE_SUCCESSFUL, cli:peer_ocsp_response_status())
    assert.is_true(cli:peer_ocsp_next_update() > cli:peer_ocsp_this_update())
    local none, why = cli:peer_ocsp_revocation_time()
    assert.is_nil(none)
    assert.equal(tls.ERROR, why.type)
    ok, err = cli:ocsp_process_response(helpers.readfile(dir .. "/revoked.ocsp"))
    assert.is_false(ok)
    assert.equal("ocsp verify failed: no result for cert", err.message)
    ok, err = cli:ocsp_process_response("not DER")
    assert.equal("unable to parse OCSP response", err.message)
    cli:close(); conn:close(); c:close(); s:close()
  end)

  it("works over a socketpair and over two pipes (connect_fds/accept_fds)", function()
    local lib = require "ljssl.lib"
    local K = lib.K
    local sv = ffi.new("int[2]")
    assert(lib.libc.socketpair(K.AF_UNIX, K.SOCK_STREAM, 0, sv) == 0)
    local srv = server_ctx()
    local cli = tls.client(client_cfg())
    assert(cli:connect_socket(sv[0], "localhost"))
    local conn = assert(srv:accept_socket(sv[1]))
    require("ljssl.engine.fd").set_blocking(sv[0], false)
    require("ljssl.engine.fd").set_blocking(sv[1], false)
    local a, b = false, false
    for _ = 1, 100 do
      if not a then a = cli:handshake() end
      if not b then b = conn:handshake() end
      if a and b then break end
    end
    assert.is_true(a and b)
    cli:write("over a socketpair")
    local data
    for _ = 1, 100 do data = conn:read(); if data then break end end
    assert.equal("over a socketpair", data)
    lib.libc.close(sv[0]); lib.libc.close(sv[1])
    -- two pipes: client writes to c2s, reads s2c
    local c2s, s2c = ffi.new("int[2]"), ffi.new("int[2]")
    assert(lib.libc.pipe(c2s) == 0 and lib.libc.pipe(s2c) == 0)
    for _, fd in ipairs({ c2s[0], c2s[1], s2c[0], s2c[1] }) do
      require("ljssl.engine.fd").set_blocking(fd, false)
    end
    cli = tls.client(client_cfg())
    assert(cli:connect_fds(s2c[0], c2s[1], "localhost"))
    conn = assert(srv:accept_fds(c2s[0], s2c[1]))
    a, b = false, false
    for _ = 1, 100 do
      if not a then a = cli:handshake() end
      if not b then b = conn:handshake() end
      if a and b then break end
    end
    assert.is_true(a and b)
    conn:write("over pipes")
    for _ = 1, 100 do data = cli:read(); if data then break end end
    assert.equal("over pipes", data)
    for _, fd in ipairs({ c2s[0], c2s[1], s2c[0], s2c[1] }) do lib.libc.close(fd) end
  end)

  describe("against openssl", function()
    it("fetches from s_server -www as a client", function()
      local port = helpers.free_port()
      local server = helpers.spawn(("openssl s_server -quiet -www -accept 127.0.0.1:%d -cert %s/valid.pem " ..
        "-key %s/valid.key -cert_chain %s/inter.pem"):format(port, dir, dir, dir))
      local ok, err, cli
      for _ = 1, 50 do
        cli = tls.client(client_cfg())
        ok, err = cli:connect("localhost", tostring(port))
        if ok then break end
        socket.sleep(0.1)
      end
      local ok2, e2 = pcall(function()
        assert.is_true(ok, err and err.message)
        assert.is_true((cli:handshake()))
        cli:write("GET / HTTP/1.0\r\n\r\n")
        local parts = {}
        for _ = 1, 200 do
          local data, rerr, again = cli:read()
          if data then parts[#parts + 1] = data
          elseif not again then break end
        end
        local page = table.concat(parts)
        assert.truthy(page:find("HTTP/1.0 200 ok", 1, true), page)
        assert.truthy(page:find("s_server", 1, true), page)
        cli:close()
      end)
      server:stop()
      assert(ok2, e2)
    end)

    it("serves s_client as a server", function()
      -- listening before the client starts, so that it always finds the port open
      local listener = assert(socket.bind("127.0.0.1", 0))
      local _, port = listener:getsockname()
      local input = os.tmpname()
      helpers.writefile(input, "hello from s_client\n")
      local client = helpers.spawn(("timeout 20 openssl s_client -connect 127.0.0.1:%d -CAfile %s/root.pem " ..
        "-verify_return_error -servername localhost -ign_eof < %s"):format(port, dir, input))
      local srv = server_ctx()
      listener:settimeout(10)
      local s = assert(listener:accept())
      listener:close()
      s:settimeout(0)
      local conn = assert(srv:accept_socket(s:getfd()))
      local got
      for _ = 1, 500 do
        local ok, err = conn:handshake()
        if ok then break end
        assert(err == nil, tostring(err))
        socket.select({ s }, nil, 0.02)
      end
      for _ = 1, 500 do
        local data, err, again = conn:read()
        if data then got = data; break end
        assert(again, tostring(err))
        socket.select({ s }, nil, 0.02)
      end
      conn:write("hello from libtls\n")
      conn:close()
      s:close()
      socket.sleep(0.3)
      local out = client:output()
      client:stop()
      os.remove(input)
      assert.equal("hello from s_client\n", got)
      assert.truthy(out:find("hello from libtls", 1, true), out)
      assert.truthy(out:find("Verification: OK", 1, true), out)
    end)
  end)

  it("sends a file with sendfile", function()
    local cli, conn, c, s = connected()
    local path = dir .. "/sendfile.txt"
    helpers.writefile(path, ("0123456789"):rep(100))
    local f = assert(io.open(path, "rb"))
    local n = cli:sendfile(f, 50, 10)
    assert.equal(50, n)
    f:close()
    local got = {}
    for _ = 1, 100 do
      local data = conn:read(1000)
      if data then got[#got + 1] = data end
      if #table.concat(got) >= 50 then break end
      socket.select({ s }, nil, 0.05)
    end
    assert.equal(("0123456789"):rep(5), table.concat(got))
    cli:close(); conn:close(); c:close(); s:close()
  end)

  it("loads files, decrypting keys with a password", function()
    local data = assert(config.load_file(dir .. "/valid.pem"))
    assert.truthy(data:find("BEGIN CERTIFICATE", 1, true))
    local enc = dir .. "/valid-enc.key"
    assert(helpers.sh(("openssl pkey -in %s/valid.key -aes256 -passout pass:pw -out %s"):format(dir, enc)))
    local key = assert(config.load_file(enc, "pw"))
    assert.truthy(key:find("BEGIN PRIVATE KEY", 1, true))
    local none, err = config.load_file(enc, "wrong")
    assert.is_nil(none)
    assert.equal("failed to read private key", err.message)
    none, err = config.load_file("/nonexistent")
    assert.equal("No such file or directory", err.message)
    assert.is_string(config.default_ca_cert_file())
  end)

  describe("sessions", function()
    -- The client runs in its own process each time, so resumption goes through
    -- the session file only.
    local function client_process(port, session_file)
      local script = dir .. "/session_client.lua"
      helpers.writefile(script, ([[
        package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
        local tls = require "libtls"
        local config = require "libtls.config"
        local ffi = require "ffi"
        ffi.cdef "int open(const char *, int, ...);"
        local fd = ffi.C.open(%q, 66, ffi.new("int", 384))   -- O_RDWR|O_CREAT, 0600
        local cfg = config.new()
        assert(cfg:set_ca_file(%q))
        assert(cfg:set_session_fd(fd))
        local ctx = tls.client(cfg)
        assert(ctx:connect("localhost", "%d"))
        while true do
          local ok, err = ctx:handshake()
          if ok then break end
          assert(err == nil, err and err.message)
        end
        local data
        repeat data = ctx:read() until data
        print("resumed", ctx:conn_session_resumed(), data)
        ctx:close()
      ]]):format(session_file, dir .. "/root.pem", port))
      -- runs to its end (bounded), however slow the machine is
      local _, out = helpers.sh(("timeout 20 %s %s"):format(helpers.luajit(), script))
      return out
    end

    it("resumes across client processes and between server processes sharing a ticket key", function()
      local session_file = dir .. "/session.pem"
      os.remove(session_file)
      local outs = {}
      for i = 1, 2 do                       -- server A, then server B: two processes
        local port = helpers.free_port()
        local server = helpers.spawn(("timeout 20 %s spec/fixtures/libtls_ticket_server.lua %d %s")
          :format(helpers.luajit(), port, dir))
        for _ = 1, 400 do                   -- until the server listens (bounded)
          if server:output():find("listening", 1, true) then break end
          socket.sleep(0.05)
        end
        outs[i] = client_process(port, session_file)
        server:stop()
      end
      assert.truthy(outs[1] and outs[1]:find("resumed\tfalse\thello", 1, true), tostring(outs[1]))
      assert.truthy(outs[2] and outs[2]:find("resumed\ttrue\thello", 1, true), tostring(outs[2]))
    end)

    it("checks a session file as libtls does", function()
      local cfg = config.new()
      local ok, err = cfg:set_session_fd(9999)
      assert.is_false(ok)
      assert.equal("failed to stat session file: Bad file descriptor", err.message)
      local path = dir .. "/session-perm"
      helpers.writefile(path, "")
      assert(helpers.sh("chmod 644 " .. path))
      local f = io.open(path, "rb")
      ffi.cdef "int fileno(void *);"
      ok, err = cfg:set_session_fd(ffi.C.fileno(f))
      assert.is_false(ok)
      assert.equal("session file has incorrect permissions (644 != 600)", err.message)
      f:close()
      if ffi.C.getuid() == 0 then               -- root can make a file that is not its own
        assert(helpers.sh("chmod 600 " .. path .. " && chown nobody " .. path))
        f = io.open(path, "rb")
        ok, err = cfg:set_session_fd(ffi.C.fileno(f))
        assert.is_false(ok)
        assert.truthy(err.message:match("^session file has incorrect owner %(uid %d+ != 0%)$"), err.message)
        f:close()
      end
    end)
  end)
end)
