-- LuaSec's dhparam: OpenSSL's temporary-DH callback, called only when a DHE
-- suite is negotiated, during the handshake, with OpenSSL's (is_export,
-- keylength) — (false, 1024) on OpenSSL 3.0 — and the PEM it returns used for
-- that handshake.  LuaSec's own sample (spec/fixtures/dhparam_sample.lua) runs
-- as the server under the real LuaSec 1.2 and under ljssl, against a client
-- run by the real LuaSec, and both must print the same.  This run's
-- configuration (the shim, or LJSSL_SHIM=off) reaches the ljssl processes
-- through the environment.  Every peer is bounded by `timeout` and stopped.
local socket = require "socket"
local helpers = require "helpers"
local ssl = require "ssl"

local dir, here

local function readlines(text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    if not line:match("^implementation") then lines[#lines + 1] = line end
  end
  return lines
end

-- Runs the sample: server under `impl` ("LuaSec" or "ljssl"), client always
-- under the real LuaSec.  Returns the server's and the client's output.
local function sample(impl, protocol, dhfile, mode)
  local port = helpers.free_port()
  local path = impl == "ljssl" and ("LUA_PATH='%s/ffi/?.lua;%s/ffi/?/init.lua;;' "):format(here, here) or ""
  local server = helpers.spawn(("cd / && %stimeout 30 %s %s/spec/fixtures/dhparam_sample.lua server %d %s %s %s")
    :format(path, helpers.luajit(), here, port, dir, dhfile, mode or "bylength"))
  local _, client_out = helpers.sh(("cd / && timeout 30 %s %s/spec/fixtures/dhparam_sample.lua client %d %s")
    :format(helpers.luajit(), here, port, protocol))
  local server_out = ""
  for _ = 1, 200 do                      -- until the server has finished (bounded)
    server_out = server:output()
    if server_out:find("server done", 1, true) or server_out:find("luajit:", 1, true) then break end
    socket.sleep(0.05)
  end
  server:stop()
  assert.truthy(server_out:find("implementation\t" .. impl, 1, true), server_out)
  assert.truthy(client_out:find("implementation\tLuaSec", 1, true), client_out)
  return server_out, client_out
end

-- The sample under both implementations; asserts they print the same.
local function both(protocol, dhfile, mode)
  local ls, lc = sample("LuaSec", protocol, dhfile, mode)
  local js, jc = sample("ljssl", protocol, dhfile, mode)
  assert.same(readlines(ls), readlines(js), "server output differs:\n" .. ls .. "\n---\n" .. js)
  assert.same(readlines(lc), readlines(jc), "client output differs:\n" .. lc .. "\n---\n" .. jc)
  return js, jc
end

local function count(text, what)
  local n = 0
  for _ in text:gmatch(what) do n = n + 1 end
  return n
end

describe("dhparam, as LuaSec's temporary-DH callback", function()
  setup(function()
    here = os.getenv("PWD")
    dir = helpers.tmpdir()
    -- DHE suites of TLS 1.2 need an RSA (or DSA) certificate
    assert(helpers.sh(("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem " ..
      "-days 2 -subj /CN=localhost"):format(dir)))
    assert(helpers.sh(("cd %s && openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out dh-2048.pem")
      :format(dir)))
    -- a 1024-bit group, as the sample's params.sh makes (a safe prime: quick at this size)
    local ok, out = helpers.sh(("cd %s && timeout 120 openssl dhparam -2 -out dh-1024.pem 1024"):format(dir))
    assert(ok, out)
  end)
  teardown(function() helpers.sh("rm -rf " .. dir) end)

  it("TLS 1.2 EDH with a 2048-bit group: called once, lazily, with (false, 1024); DHE negotiated", function()
    local s, c = both("tlsv1_2", dir .. "/dh-2048.pem")
    assert.equal(1, count(s, "DH Callback"), s)
    assert.truthy(s:find("Export\tfalse\nKey length\t1024\n", 1, true), s)
    -- the function runs during the handshake, not when the context is made
    assert.truthy(s:find("context made\n.*DH Callback"), s)
    assert.truthy(s:find("handshake\ttrue", 1, true), s)
    assert.truthy(c:match("cipher\tDHE%-RSA%-"), c)
    assert.truthy(c:find("received\toneshot test", 1, true), c)
  end)

  it("TLS 1.2 EDH with a 1024-bit group: refused as OpenSSL refuses it", function()
    local s, c = both("tlsv1_2", dir .. "/dh-1024.pem")
    assert.equal(1, count(s, "DH Callback"), s)
    -- at Debian's default security level (2) OpenSSL refuses 1024-bit DH;
    -- wherever it accepts it, both accept it (the outputs are the same)
    if not s:find("handshake\ttrue", 1, true) then
      assert.truthy(s:find("handshake\tfalse\tdh key too small", 1, true), s)
      assert.truthy(c:find("handshake\tfalse\t", 1, true), c)
    end
  end)

  it("TLS 1.2 EDH with no parameters (nil) or a bad PEM: the handshake fails", function()
    for _, mode in ipairs({ "nil", "garbage" }) do
      local s, c = both("tlsv1_2", dir .. "/dh-2048.pem", mode)
      assert.equal(1, count(s, "DH Callback"), s)
      assert.truthy(s:find("handshake\tfalse", 1, true), s)
      assert.truthy(c:find("handshake\tfalse", 1, true), c)
    end
  end)

  it("TLS 1.3: never called (no DHE suite), the handshake succeeds", function()
    for _, dhfile in ipairs({ "/dh-1024.pem", "/dh-2048.pem" }) do
      local s, c = both("tlsv1_3", dir .. dhfile)
      assert.equal(0, count(s, "DH Callback"), s)
      assert.truthy(s:find("handshake\ttrue", 1, true), s)
      assert.truthy(c:find("cipher\tTLS_", 1, true), c)
    end
  end)

  it("ljssl client, real LuaSec server: DHE negotiated with the server's parameters", function()
    local port = helpers.free_port()
    local server = helpers.spawn(("cd / && timeout 30 %s %s/spec/fixtures/dhparam_sample.lua server %d %s %s bylength")
      :format(helpers.luajit(), here, port, dir, dir .. "/dh-2048.pem"))
    local conn
    for _ = 1, 200 do
      local tcp = socket.tcp()
      tcp:settimeout(5)
      if tcp:connect("127.0.0.1", port) then
        conn = assert(ssl.wrap(tcp, { mode = "client", protocol = "tlsv1_2", ciphers = "EDH" }))
        break
      end
      tcp:close()
      socket.sleep(0.05)
    end
    local ok, err, cipher, line
    if conn then
      conn:settimeout(10)
      ok, err = conn:dohandshake()
      cipher = conn:info("cipher")
      line = conn:receive("*l")
      conn:close()
    end
    socket.sleep(0.1)
    local out = server:output()
    server:stop()
    assert.truthy(conn, "no LuaSec server")
    assert.is_true(ok, err)
    assert.truthy(cipher:match("^DHE%-RSA%-"), cipher)
    assert.equal("oneshot test", line)
    assert.truthy(out:find("implementation\tLuaSec", 1, true), out)
  end)
end)

-- In one process, over memory: what the callback sees, how failures end, and
-- which context's function is asked after SNI.
describe("dhparam in ljssl", function()
  local pem2048

  setup(function()
    dir = helpers.tmpdir()
    assert(helpers.sh(("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key " ..
      "-out rsa.pem -days 2 -subj /CN=localhost"):format(dir)))
    assert(helpers.sh(("cd %s && openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out dh-2048.pem")
      :format(dir)))
    pem2048 = helpers.readfile(dir .. "/dh-2048.pem")
  end)
  teardown(function() helpers.sh("rm -rf " .. dir) end)

  local function mem_pair(sparams, cparams)
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
    return assert(ssl.wrap(ends("s2c", "c2s"), cparams)), assert(ssl.wrap(ends("c2s", "s2c"), sparams))
  end

  local function waiting(ok, err) return not ok and (err == "wantread" or err == "wantwrite") end

  local function handshake(c, s)
    local a, ea, b, eb = false, "wantread", false, "wantread"
    for _ = 1, 50 do
      if waiting(a, ea) then a, ea = c:dohandshake() end
      if waiting(b, eb) then b, eb = s:dohandshake() end
      if not waiting(a, ea) and not waiting(b, eb) then break end
    end
    return a, ea, b, eb
  end

  local function server(dhparam, extra)
    local p = { mode = "server", protocol = "any", key = dir .. "/rsa.key", certificate = dir .. "/rsa.pem",
                dhparam = dhparam }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end
  local client = { mode = "client", protocol = "tlsv1_2", ciphers = "EDH" }

  it("is called for each DHE handshake, with (false, 1024)", function()
    local calls = {}
    local ctx = assert(ssl.newcontext(server(function(export, keylength)
      calls[#calls + 1] = { export, keylength }
      return pem2048
    end)))
    assert.same({}, calls)
    for i = 1, 3 do
      local c, s = mem_pair(ctx, client)
      local a, ea, b, eb = handshake(c, s)
      assert.is_true(a, ea)
      assert.is_true(b, eb)
      assert.truthy(c:info("cipher"):match("^DHE%-RSA%-"))
      assert.equal(i, #calls)
      c:close(); s:close()
    end
    assert.same({ false, 1024 }, calls[1])
  end)

  it("fails the handshake closed when the function raises, returns a table or garbage; the context still works", function()
    local answer
    local ctx = assert(ssl.newcontext(server(function()
      if answer == "raise" then error("no parameters here") end
      return answer
    end)))
    for _, a in ipairs({ "raise", {}, 42, "", "garbage" }) do
      answer = a
      local c, s = mem_pair(ctx, client)
      local ok, _, sok, serr = handshake(c, s)
      assert.is_false(ok)
      assert.is_false(sok)
      assert.is_string(serr)
      c:close(); s:close()
    end
    answer = pem2048
    local c, s = mem_pair(ctx, client)
    local ok, err = handshake(c, s)
    assert.is_true(ok, err)
    c:close(); s:close()
  end)

  it("asks the function of the context SNI chose", function()
    local asked = {}
    local main = assert(ssl.newcontext(server(function() asked[#asked + 1] = "main"; return pem2048 end)))
    local alt = assert(ssl.newcontext(server(function() asked[#asked + 1] = "alt"; return pem2048 end)))
    local c, s = mem_pair(main, client)
    s:sni({ ["alt.example.test"] = alt })
    c:sni("alt.example.test")
    local ok, err = handshake(c, s)
    assert.is_true(ok, err)
    assert.same({ "alt" }, asked)
    c:close(); s:close()
  end)

  it("is not called over TLS 1.3 nor for ECDHE suites", function()
    local called = 0
    local ctx = assert(ssl.newcontext(server(function() called = called + 1; return pem2048 end)))
    for _, cp in ipairs({ { mode = "client", protocol = "tlsv1_3" },
                          { mode = "client", protocol = "tlsv1_2", ciphers = "ECDHE-RSA-AES128-GCM-SHA256" } }) do
      local c, s = mem_pair(ctx, cp)
      local ok, err = handshake(c, s)
      assert.is_true(ok, err)
      c:close(); s:close()
    end
    assert.equal(0, called)
  end)
end)
