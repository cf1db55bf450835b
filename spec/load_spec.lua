-- Churn and load, scaled down for `make test` (the full runs, 100 000
-- sequential and 1000 concurrent connections, are spec/torture/churn.lua and
-- spec/torture/load.lua): sequential connections on each face against an
-- ljssl server of the same face with both processes' resident sets flat,
-- concurrent connections under copas and the net face's loop with every byte
-- checked, descriptors above FD_SETSIZE, and the leaks these runs found.
-- LOAD_SPEC_VERBOSE=1 prints the figures.
local helpers = require "helpers"
local churn = require "fixtures.churn_lib"
local load = require "fixtures.load_lib"

local verbose = os.getenv("LOAD_SPEC_VERBOSE")
local pki

-- Starts spec/fixtures/NAME.lua FACE PORT CERT KEY; returns port, handle.
local function start(name, face)
  local port = helpers.free_port()
  local server = helpers.spawn(("%s spec/fixtures/%s.lua %s %d %s %s"):format(helpers.luajit(), name, face,
    port, pki.server, pki.server_key))
  local ok, err = pcall(helpers.wait_port, port)
  if not ok then
    local out = server:output()
    server:stop()
    error(tostring(err) .. "\n" .. out, 0)
  end
  return port, server
end

-- Runs fn(port) against a server, stops it, and raises fn's error if any.
local function with(name, face, fn)
  local port, server = start(name, face)
  local ok, err = pcall(fn, port)
  local out = server:output()
  server:stop()
  if not ok then error(tostring(err) .. (out ~= "" and ("\nserver output:\n" .. out) or ""), 0) end
end

describe("churn", function()
  setup(function() pki = helpers.pki() end)

  local cases = {
    { face = "luasec", count = 2000, warmup = 1000, every = 250 },
    { face = "libtls", count = 1500, warmup = 500, every = 250 },
    { face = "net", count = 1500, warmup = 500, every = 250 },
  }
  for _, case in ipairs(cases) do
    it(("%s face: %d sequential connections; client and server RSS flat, every answer checked")
       :format(case.face, case.count), function()
      with("churn_server", case.face, function(port)
        local r = churn.run({ face = case.face, port = port, ca = pki.ca, count = case.count,
                              warmup = case.warmup, every = case.every, abort_every = 50, seconds = 120 })
        local report = churn.report(case.face, r)
        if verbose then print("\n" .. report) end
        assert(r.ok, report)
        assert.equal(case.count, r.connections)
        assert.equal(case.count / 50, r.dropped)
      end)
    end)
  end

  -- Found by the churn runs: an SslServer kept every connection whose
  -- handshake failed (its `handshaking` table), about 1 KiB each.
  it("net SslServer: connections whose handshake fails are not kept", function()
    local iomodules = require "iomodules"
    local net, loop = iomodules.net, iomodules.loop
    local socket = require "socket"
    local cfg = net.SslConfiguration.new()
    cfg.local_certificate = net.SslCertificate.new(helpers.readfile(pki.server))
    cfg.private_key = net.SslKey.new(helpers.readfile(pki.server_key))
    local server = net.SslServer.new()
    server.configuration = cfg
    local failed = 0
    server.accept_error_handler = function() failed = failed + 1 end
    assert.is_true(server:listen(0, "127.0.0.1"))
    local function round(n)
      local target = failed + n
      for _ = 1, n do
        local c = socket.tcp()
        c:settimeout(5)
        assert(c:connect("127.0.0.1", server.port))
        c:send("\22\3\1\0\5hello")              -- not a ClientHello
        c:close()
      end
      assert.truthy(loop.run_until(function() return failed >= target end, 20))
      collectgarbage("collect")
      collectgarbage("collect")
      return collectgarbage("count")
    end
    round(100)                                   -- warm-up
    -- two rounds of 400: whatever fills once (caches, the JIT's own state,
    -- earlier specs' leftovers) lands in the first; kept connections would
    -- add about 400 KiB to each
    local before = round(400)
    local after = round(400)
    server:close()
    assert.is_true(after - before < 100, ("Lua heap grew %.0f KiB over 400 failed handshakes")
      :format(after - before))
  end)
end)

describe("load", function()
  setup(function()
    pki = helpers.pki()
    churn.raise_nofile(600)
  end)

  local cases = {
    { client = "copas", server = "net" },
    { client = "net", server = "copas" },
  }
  for _, case in ipairs(cases) do
    it(("200 concurrent %s clients against a %s server, every byte checked"):format(case.client, case.server),
      function()
        with("load_echo_server", case.server, function(port)
          local r = load[case.client]({ port = port, ca = pki.ca, count = 200, rounds = 3,
                                        max_chunk = 8192, seconds = 60 })
          local report = load.report(case.client .. " clients, " .. case.server .. " server", r)
          if verbose then print("\n" .. report) end
          assert(r.ok, report)
          assert.equal(200, r.done)
          assert.equal(200, r.peak)
        end)
      end)
  end

  -- poll(), never select(): connections work whatever their descriptor number
  it("each face works with descriptors above FD_SETSIZE (1024)", function()
    churn.raise_nofile(1400)
    local hold = {}
    for i = 1, 1100 do hold[i] = assert(io.open("/dev/null")) end
    local ok, err = pcall(with, "churn_server", "luasec", function(port)
      local socket = require "socket"
      local probe = socket.tcp()
      probe:settimeout(5)
      assert(probe:connect("127.0.0.1", port))
      local fd = probe:getfd()
      probe:close()
      assert.is_true(fd > 1024, "descriptor " .. fd)
      for _, face in ipairs({ "luasec", "libtls", "net" }) do
        local c = churn.clients[face]({ port = port, ca = pki.ca })
        for j = 1, 3 do
          local payload = ("%s %d"):format(face, j)
          local line, cerr = c.one(payload)
          assert.equal(payload:reverse(), line, face .. ": " .. tostring(cerr))
        end
      end
    end)
    for _, f in ipairs(hold) do f:close() end
    assert(ok, err)
  end)
end)
