-- Session-ticket key rotation as libtls does it (issue 16): the newest key
-- encrypts, older keys still decrypt (and the ticket is renewed under the
-- newest), a ticket whose key was dropped makes a full handshake.  Servers and
-- clients are separate processes, as in a fleet rotating its keys: server A
-- issues tickets under K1; server B has K2 (newest) and K1, resumes A's
-- tickets and issues K2 tickets.  The spec runs with the shim and with
-- LJSSL_SHIM=off; with the shim the servers alternate between the C and the
-- Lua callback, so each reads the other's tickets.  The system libtls (the
-- oracle) rotated the same way resumes ljssl's tickets and drops them with
-- their key; it issues none itself on OpenSSL 3 (docs/libtls.md).
local socket = require "socket"
local ffi = require "ffi"
local helpers = require "helpers"
local lib = require "ljssl.lib"
local tls = require "libtls"
local config = require "libtls.config"
local oracle = require "oracle.libtls"

local dir, tmp
local running = {}            -- server processes to stop whatever happens
local serial = 0

local PROTOCOLS = {           -- parse_protocols text, openssl s_client flag
  ["TLS 1.3"] = { "tlsv1.3", "-tls1_3" },
  ["TLS 1.2"] = { "tlsv1.2", "-tls1_2" },
}

-- "shim": the spec's own setting (the shim when it is loaded); "lua": the
-- LuaJIT callback, LJSSL_SHIM=off.
local function env(mode) return mode == "lua" and "env LJSSL_SHIM=off" or "env" end

local function scratch(what)
  serial = serial + 1
  return ("%s/%d-%s.pem"):format(tmp, serial, what)
end

-- A server process (spec/fixtures/libtls_rotation_server.lua) serving `count`
-- connections with ticket keys `revs`; returns it once it listens.
local function server(impl, mode, protocols, revs, count)
  local port = helpers.free_port()
  local h = helpers.spawn(("%s timeout 60 %s spec/fixtures/libtls_rotation_server.lua %d %s %s %s %s %d")
    :format(env(mode), helpers.luajit(), port, dir, impl, protocols, revs, count))
  running[#running + 1] = h
  for _ = 1, 200 do                         -- up to 10 s
    local out = h:output()
    if out:find("listening", 1, true) then
      if impl == "ljssl" then
        local expected = (mode == "lua" or not lib.shim) and "Lua" or "C"
        assert.equal(expected, out:match("callback\t(%a+)"), out)
      end
      h.port = port
      return h
    end
    socket.sleep(0.05)
  end
  error("the server did not start: " .. h:output())
end

-- Stops a server; returns what it printed (a line "resumed\t<bool>" per connection).
local function stop(h)
  local out = h:output()
  h:stop()
  return out
end

local function count(s, what)
  local n = 0
  for _ in s:gmatch(what) do n = n + 1 end
  return n
end

-- A libtls client process with session file `session`; true if it resumed.
local function libtls_client(port, impl, mode, protocols, session)
  local ok, out = helpers.sh(("%s timeout 20 %s spec/fixtures/libtls_rotation_client.lua %d %s %s %s %s")
    :format(env(mode), helpers.luajit(), port, dir .. "/root.pem", impl, protocols, session))
  local resumed, line = out:match("resumed\t(%a+)\t([^\n]*)")
  assert(ok and resumed, out)
  assert.equal("hello", line)
  return resumed == "true"
end

-- openssl s_client offering the session in `sess_in` (if any) and keeping the
-- connection's last session in `sess_out` (if any; in TLS 1.3 the newest
-- ticket); "New" or "Reused".
local function s_client(port, flag, sess_in, sess_out)
  local _, out = helpers.sh(("timeout 20 openssl s_client %s -connect 127.0.0.1:%d -servername localhost " ..
    "-CAfile %s/root.pem -ign_eof%s%s </dev/null"):format(flag, port, dir,
    sess_in and " -sess_in " .. sess_in or "", sess_out and " -sess_out " .. sess_out or ""))
  local how = out:match("\n(New), ") or out:match("\n(Reused), ")
  assert(how, out)
  return how
end

-- The key revision a session's ticket names (libtls's layout: htonl(rev),
-- then 12 zero bytes), or nil without a ticket.
local function ticket_rev(file)
  local ok, out = helpers.sh("openssl sess_id -noout -text -in " .. file)
  if not ok then return nil end
  local line = out:match("TLS session ticket:%s*\n%s*0000 %- ([^\n]+)")
  if not line then return nil end
  local b = {}
  for x in line:gmatch("%x%x") do
    if #b < 16 then b[#b + 1] = tonumber(x, 16) end
  end
  for i = 5, 16 do assert.equal(0, b[i], "key name padding: " .. line) end
  return ((b[1] * 256 + b[2]) * 256 + b[3]) * 256 + b[4]
end

local function copy(from, to)
  helpers.writefile(to, helpers.readfile(from))
  assert(helpers.sh("chmod 600 " .. to))
end

-- The rotation across processes: A (ljssl, K1) -> B (K2 newest, K1) -> C (K2
-- alone) reads B's tickets -> D (K3, K2: K1 dropped) refuses A's.
local function rotation(proto, a_mode, b_impl, b_mode)
  local protocols, flag = PROTOCOLS[proto][1], PROTOCOLS[proto][2]
  local session, session_a, ticket_a, ticket_b = scratch("S"), scratch("SA"), scratch("TA"), scratch("TB")

  local a = server("ljssl", a_mode, protocols, "1", 2)
  assert.is_false(libtls_client(a.port, "ljssl", a_mode, protocols, session))
  assert.equal("New", s_client(a.port, flag, nil, ticket_a))
  assert.equal(2, count(stop(a), "resumed\tfalse"))
  assert.equal(1, ticket_rev(session))       -- A's newest (only) key
  assert.equal(1, ticket_rev(ticket_a))
  copy(session, session_a)

  local b = server(b_impl, b_mode, protocols, "1,2", 2)
  assert.is_true(libtls_client(b.port, "ljssl", b_mode, protocols, session))
  assert.equal("Reused", s_client(b.port, flag, ticket_a, ticket_b))
  assert.equal(2, count(stop(b), "resumed\ttrue"))   -- the server says so too

  if b_impl == "oracle" and proto == "TLS 1.3" then
    assert.is_nil(ticket_rev(ticket_b))       -- documented: libretls issues none on OpenSSL 3
  end
  if b_impl == "ljssl" then
    -- B's tickets are under K2: in TLS 1.3 the ones that follow the resumed
    -- handshake (s_client keeps the last), in TLS 1.2 the renewal of A's
    -- ticket, in the handshake (the libtls client's session file)
    local b_ticket = proto == "TLS 1.3" and ticket_b or session
    assert.equal(2, ticket_rev(b_ticket))
    local c = server(b_impl, b_mode, protocols, "2", 1)
    if proto == "TLS 1.3" then
      assert.equal("Reused", s_client(c.port, flag, ticket_b, nil))
    else
      assert.is_true(libtls_client(c.port, "ljssl", b_mode, protocols, session))
    end
    assert.equal(1, count(stop(c), "resumed\ttrue"))
  end

  local d = server(b_impl, b_mode, protocols, "2,3", 2)
  assert.is_false(libtls_client(d.port, "ljssl", b_mode, protocols, session_a))
  assert.equal("New", s_client(d.port, flag, ticket_a, nil))
  assert.equal(2, count(stop(d), "resumed\tfalse"))
end

describe("libtls ticket-key rotation across server processes", function()
  setup(function()
    dir = helpers.certs()
    tmp = helpers.tmpdir()
  end)
  teardown(function()
    if tmp then helpers.sh("rm -rf " .. tmp) end
  end)
  after_each(function()
    for _, h in ipairs(running) do h:stop() end
    running = {}
  end)

  -- with the shim, A and B on different callbacks (C and Lua), both ways
  local PAIRS = lib.shim and { { "shim", "lua" }, { "lua", "shim" } } or { { "lua", "lua" } }
  local NAMES = { shim = "the C shim", lua = "the Lua callback" }
  for _, proto in ipairs({ "TLS 1.3", "TLS 1.2" }) do
    for _, pair in ipairs(PAIRS) do
      it(("%s: B (%s) resumes A's (%s) tickets after the rotation, renews them under K2, " ..
          "and a dropped key means a full handshake"):format(proto, NAMES[pair[2]], NAMES[pair[1]]), function()
        rotation(proto, pair[1], "ljssl", pair[2])
      end)
    end

    it(proto .. ": the system libtls rotated the same way resumes ljssl's tickets and drops them with the key",
      function()
        local mode = lib.shim and "shim" or "lua"
        rotation(proto, mode, "oracle", mode)
      end)

    it(proto .. ": a running server rotates when keys are added to its config, as libtls's does", function()
      local protocols, flag = PROTOCOLS[proto][1], PROTOCOLS[proto][2]
      local mode = lib.shim and "shim" or "lua"
      local ticket_a = scratch("TA")
      local a = server("ljssl", mode, protocols, "1", 1)
      assert.equal("New", s_client(a.port, flag, nil, ticket_a))
      stop(a)
      local seen = {}
      for _, impl in ipairs({ "ljssl", "oracle" }) do
        -- K1; then K2 is added; then K3, K4 and K5, which push K1 out (4 keys)
        local r = server(impl, mode, protocols, "1/2/3,4,5", 3)
        local ticket_r = scratch("TR")
        seen[impl] = {
          s_client(r.port, flag, ticket_a, nil),
          s_client(r.port, flag, ticket_a, ticket_r),
          s_client(r.port, flag, ticket_a, nil),
        }
        stop(r)
        if impl == "ljssl" and proto == "TLS 1.3" then
          assert.equal(2, ticket_rev(ticket_r))       -- the key added while it ran
        end
      end
      assert.same({ "Reused", "Reused", "New" }, seen.ljssl)
      assert.same(seen.oracle, seen.ljssl)
    end)
  end

  it("TLS 1.2: a system libtls client resumes against an ljssl server after the rotation", function()
    -- (the system libtls client writes its session file after the handshake,
    -- before TLS 1.3's tickets arrive, so it resumes in TLS 1.2 only)
    local mode = lib.shim and "shim" or "lua"
    local session, session_a = scratch("S"), scratch("SA")
    local a = server("ljssl", mode, "tlsv1.2", "1", 1)
    assert.is_false(libtls_client(a.port, "oracle", mode, "tlsv1.2", session))
    stop(a)
    assert.equal(1, ticket_rev(session))
    copy(session, session_a)
    local b = server("ljssl", mode, "tlsv1.2", "1,2", 1)
    assert.is_true(libtls_client(b.port, "oracle", mode, "tlsv1.2", session))
    stop(b)
    assert.equal(2, ticket_rev(session))          -- renewed under the newest key
    local d = server("ljssl", mode, "tlsv1.2", "2,3", 1)
    assert.is_false(libtls_client(d.port, "oracle", mode, "tlsv1.2", session_a))
    stop(d)
  end)
end)

describe("libtls ticket keys in one process", function()
  setup(function()
    dir = helpers.certs()
    tmp = helpers.tmpdir()
  end)
  teardown(function()
    if tmp then helpers.sh("rm -rf " .. tmp) end
  end)

  ffi.cdef "int open(const char *, int, ...);"
  local function session_fd(path)
    local fd = ffi.C.open(path, 66, ffi.new("int", 384))   -- O_RDWR|O_CREAT, 0600
    assert(fd >= 0)
    return fd
  end

  local function server_cfg(protocols)
    local cfg = config.new()
    assert(cfg:set_keypair_file(dir .. "/valid-chain.pem", dir .. "/valid.key"))
    assert(cfg:set_protocols(config.parse_protocols(protocols)))
    assert(cfg:set_session_id("one process"))
    assert(cfg:set_session_lifetime(300))
    return cfg
  end

  -- One connection of an ljssl client with session fd `fd` to server `srv`;
  -- both handshake results, and whether the client resumed.
  local function connect(srv, protocols, fd)
    local ccfg = config.new()
    assert(ccfg:set_ca_file(dir .. "/root.pem"))
    assert(ccfg:set_protocols(config.parse_protocols(protocols)))
    assert(ccfg:set_session_fd(fd))
    local cli = tls.client(ccfg)
    local c, s = helpers.tcp_pair()
    assert(cli:connect_socket(c:getfd(), "localhost"))
    local conn = assert(srv:accept_socket(s:getfd()))
    local a, ea, b, eb = false, nil, false, nil
    for _ = 1, 300 do
      if a == false and ea == nil then a, ea = cli:handshake() end
      if b == false and eb == nil then b, eb = conn:handshake() end
      if (a or ea) and (b or eb) then break end
      socket.select({ c, s }, nil, 0.02)
    end
    local resumed = a == true and cli:conn_session_resumed()
    if a == true and b == true then
      conn:write("x")
      for _ = 1, 100 do                -- TLS 1.3's tickets come first
        if cli:read(10) then break end
        socket.select({ c }, nil, 0.02)
      end
    end
    cli:close(); conn:close(); c:close(); s:close()
    local function m(e) return type(e) == "table" and e.message or e end
    return a == true or m(ea), b == true or m(eb), resumed
  end

  for _, protocols in ipairs({ "tlsv1.3", "tlsv1.2" }) do
    it(protocols .. ": a key older than the session lifetime is not used, and no handshake fails for it", function()
      local path = scratch("S")
      local fd = session_fd(path)
      local fresh = server_cfg(protocols)
      assert(fresh:add_ticket_key(1, ("a"):rep(48)))
      local a, b, resumed = connect(assert(tls.server(fresh)), protocols, fd)
      assert.same({ true, true, false }, { a, b, resumed })
      assert.equal(1, ticket_rev(path))
      -- the same key, added (as far as the config knows) 1000 s ago
      local stale = server_cfg(protocols)
      assert(stale:add_ticket_key(1, ("a"):rep(48)))
      config.state[stale].ticket_keys[1].added = os.time() - 1000
      local before = helpers.readfile(path)
      a, b, resumed = connect(assert(tls.server(stale)), protocols, fd)
      -- (libretls's TLS 1.3 server fails here: "no valid ticket key found")
      assert.same({ true, true, false }, { a, b, resumed })
      -- and it issued no ticket: the client had no new session to keep
      assert.equal(before, helpers.readfile(path))
      ffi.C.close(fd)
    end)
  end

  it("TLS 1.3: once the newest key has outlived the session lifetime, no ticket (libretls fails the handshake)",
    function()
      local function server_for(impl)
        local cfg = impl.config.new()
        assert(cfg:set_keypair_file(dir .. "/valid-chain.pem", dir .. "/valid.key"))
        assert(cfg:set_session_lifetime(4))          -- the shortest libtls allows
        assert(cfg:add_ticket_key(1, ("a"):rep(48)))
        return assert(impl.server(cfg))
      end
      local ljssl_srv, oracle_srv = server_for({ config = config, server = tls.server }), server_for(oracle)
      socket.sleep(5.5)                             -- the key is now older than the lifetime
      local path = scratch("S")
      local fd = session_fd(path)
      local a, b, resumed = connect(ljssl_srv, "tlsv1.3", fd)
      assert.same({ true, true, false }, { a, b, resumed })
      assert.equal("", helpers.readfile(path))     -- no ticket, so no session to keep
      a, b = connect(oracle_srv, "tlsv1.3", fd)
      assert.is_true(a)
      assert.equal("no valid ticket key found", b)
      ffi.C.close(fd)
    end)

  it("adds keys as libtls does: a revision is its 32-bit name, the newest may be re-added", function()
    local function run(impl)
      local cfg = impl.config.new()
      local out = {}
      local function add(rev, key)
        local ok, err = cfg:add_ticket_key(rev, key)
        out[#out + 1] = ok and "ok" or (type(err) == "table" and err.message or err)
      end
      add(4294967295, ("a"):rep(48))
      add(4294967295, ("a"):rep(48))    -- the newest again, same key: fine
      add(-1, ("b"):rep(48))            -- the same name (htonl(0xffffffff)), another key
      add(7, ("c"):rep(48))
      add(4294967295, ("a"):rep(48))    -- no longer the newest
      add(8, ("d"):rep(48)); add(9, ("e"):rep(48)); add(10, ("f"):rep(48))
      add(4294967295, ("a"):rep(48))    -- pushed out of the 4 kept: new again
      return out
    end
    local expected = run(oracle)
    assert.same({ "ok", "ok", "ticket key already present", "ok", "ticket key already present",
                  "ok", "ok", "ok", "ok" }, expected)
    assert.same(expected, run({ config = config }))
  end)

  it("raises on malformed engine ticket keys (a programmer's mistake)", function()
    local engine = require "ljssl.engine.context"
    local e = assert(engine.new("server"))
    local good = { name = ("n"):rep(16), aes = ("a"):rep(32), hmac = ("h"):rep(16), added = os.time() }
    assert(e:set_ticket_keys({ good }, 300))
    assert(e:set_ticket_keys({}, 300))                 -- back to OpenSSL's own key
    assert.has_error(function() e:set_ticket_keys({ good, good, good, good, good }, 300) end)
    assert.has_error(function()
      e:set_ticket_keys({ { name = "short", aes = good.aes, hmac = good.hmac, added = 0 } }, 300)
    end)
    assert.has_error(function() e:set_ticket_keys({ good }, "300") end)
    e:free()
  end)
end)

describe("the ticket-key callback under the JIT", function()
  setup(function() dir = helpers.certs() end)

  local function hot(env_vars)
    return helpers.sh(("env %s timeout 120 %s spec/fixtures/libtls_ticket_hot.lua %s")
      :format(env_vars or "", helpers.luajit(), dir))
  end

  it("runs inside a compiled read loop (TLS 1.2 renegotiations offering tickets)", function()
    local ok, out = hot()
    assert.is_true(ok, out)
    assert.truthy(out:find("resumed 10 of 20", 1, true), out)   -- decrypted in the loop
    assert.truthy(out:find("\nok", 1, true), out)
  end)

  it("needs the jit.off guard only as a LuaJIT callback (the control)", function()
    local ok, out = hot("LJSSL_TEST_NO_GUARD=1")
    if lib.shim then
      assert.is_true(ok, out)                       -- the shim's C callback: nothing to guard
      assert.truthy(out:find("\nok", 1, true), out)
    else
      assert.is_false(ok)
      assert.truthy(out:find("bad callback", 1, true), out)
    end
  end)
end)
