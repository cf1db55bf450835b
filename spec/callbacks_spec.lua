-- Callbacks: LuaJIT's callback slots (a fixed number per process) and callbacks
-- under the JIT for the libtls and net faces.  Each case runs in a child process
-- (slots cannot be given back to LuaJIT, and a "bad callback" panic kills the
-- process), under this run's configuration: with the shim, or LJSSL_SHIM=off.
local helpers = require "helpers"
local lib = require "ljssl.lib"

local pki

local function run(fixture, args, env)
  return helpers.sh(("env %s %s spec/fixtures/%s %s %s"):format(
    env or "", helpers.luajit(), fixture, pki.dir, args))
end

-- "kind <name>: ok" / "kind <name>: error <message>" lines -> { name = result }
local function kinds(out)
  local t = {}
  for name, result in out:gmatch("kind ([^\n]-): ([^\n]*)") do t[name] = result end
  return t
end

-- LuaJIT callbacks ljssl makes, once per process: with the shim only those
-- whose behaviour is a user's Lua function (ALPN function, PSK client and
-- server, DH parameters); without it also verify, certificate verify, ALPN
-- list, SNI, OCSP, password, ticket keys.
local NEEDED = lib.shim and 4 or 10
local LUA_KINDS = {                      -- the kinds that need a LuaJIT callback with the shim
  ["luasec ALPN function"] = true, ["luasec PSK"] = true, ["luasec dhparam (DHE-PSK)"] = true,
}

describe("LuaJIT callback slots", function()
  setup(function() pki = helpers.pki() end)

  it("with every slot taken: ljssl loads, each callback kind works or fails clearly", function()
    local ok, out = run("callbacks_slots.lua", "none")
    assert.is_true(ok, out)
    assert.truthy(out:find("\ndone", 1, true), out)
    assert.equal("0", out:match("free before loading%s+(%d+)"), out)
    assert.equal("0", out:match("free after loading%s+(%d+)"), out)   -- loading needs none
    local results = kinds(out)
    local n = 0
    for name, result in pairs(results) do
      n = n + 1
      if lib.shim and not LUA_KINDS[name] then
        assert.equal("ok", result, name)            -- C callbacks: no slot needed
      else
        -- a clear error naming the callback, never a crash or a bare LuaJIT message
        assert.truthy(result:match("^error ljssl: cannot create the [%w ]+ callback: too many callbacks"),
          name .. ": " .. result)
      end
    end
    assert.equal(15, n, out)
  end)

  it("uses a fixed handful of slots, once per process, for every callback kind", function()
    -- two more slots than ljssl needs are free; 20 rounds of every kind of
    -- connection through the three faces must leave exactly two free
    local ok, out = run("callbacks_slots.lua", ("few %d 20"):format(NEEDED + 2))
    assert.is_true(ok, out)
    assert.truthy(out:find("\ndone", 1, true), out)
    local results = kinds(out)
    for name, result in pairs(results) do assert.equal("ok", result, name) end
    local rounds = 0
    for r, free in out:gmatch("round (%d+) free (%d+)") do
      rounds = rounds + 1
      assert.equal(2, tonumber(free), "free slots after round " .. r .. "\n" .. out)
    end
    assert.equal(20, rounds, out)
  end)

  it("fails clearly when one slot is missing, and works again in a process that has it", function()
    local ok, out = run("callbacks_slots.lua", ("few %d 2"):format(NEEDED - 1))
    assert.is_true(ok, out)
    assert.truthy(out:find("\ndone", 1, true), out)
    local failed = 0
    for name, result in pairs(kinds(out)) do
      if result ~= "ok" then
        failed = failed + 1
        assert.truthy(result:match("^error ljssl: cannot create the [%w ]+ callback"), name .. ": " .. result)
      end
    end
    assert.is_true(failed >= 1, out)
  end)
end)

describe("callbacks under the JIT", function()
  setup(function() pki = helpers.pki() end)

  for _, mode in ipairs({ "libtls", "net" }) do
    it(("runs the %s face's hot I/O loop with its callbacks firing inside SSL_read"):format(mode), function()
      local ok, out = run("callbacks_hot.lua", mode)
      assert.is_true(ok, out)
      assert.truthy(out:find("\nok", 1, true), out)
      assert.equal("20", out:match("renegotiated%s+(%d+)"), out)
      assert.equal(tostring(not lib.shim), out:match("lua callbacks live%s+(%S+)"), out)
    end)

    it(("panics in the %s face's loop without the jit.off guard (the control)"):format(mode), function()
      if lib.shim then return pending("runs without the shim (Lua callbacks)") end
      local ok, out = run("callbacks_hot.lua", mode, "LJSSL_TEST_NO_GUARD=1")
      assert.is_false(ok)
      assert.truthy(out:find("bad callback", 1, true), out)
    end)
  end

  it("keeps the JIT on with the shim, every callback of those loops being C", function()
    if not lib.shim then return pending("runs with the shim") end
    for _, mode in ipairs({ "libtls", "net" }) do
      local ok, out = run("callbacks_hot.lua", mode, "LJSSL_TEST_NO_GUARD=1")
      assert.is_true(ok, out)
      assert.truthy(out:find("lua callbacks live%s+false"), out)
    end
  end)

  -- A bug found here: the key loaders were compiled after a run of
  -- unencrypted keys, and the first encrypted key called the password callback
  -- from compiled code.
  it("loads an encrypted key after a hot loop of unencrypted ones", function()
    local ok, out = run("callbacks_hot.lua", "loadkey")
    assert.is_true(ok, out)
    assert.truthy(out:find("ok", 1, true), out)
    if not lib.shim then
      ok, out = run("callbacks_hot.lua", "loadkey", "LJSSL_TEST_NO_GUARD=1")
      assert.is_false(ok)
      assert.truthy(out:find("bad callback", 1, true), out)
    end
  end)
end)
