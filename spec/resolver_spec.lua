-- iomodules.resolver: lookups through getaddrinfo_a that leave the loop
-- running, the one-minute cache, IP literals, failures and cancellation.
local resolver = require "iomodules.resolver"
local loop = require "iomodules.loop"

local function lookup(host)
  local result
  resolver.lookup(host, function(addresses, err) result = { addresses, err } end)
  assert.truthy(loop.run_until(function() return result end, 20), "no answer for " .. host)
  return result[1], result[2]
end

describe("iomodules.resolver", function()
  before_each(function() resolver.flush() end)

  it("resolves localhost while the loop keeps running, never inside lookup()", function()
    local ticks, result = 0, nil
    local function tick() ticks = ticks + 1; if not result then loop.after(0, tick) end end
    loop.after(0, tick)
    resolver.lookup("localhost", function(addresses) result = addresses end)
    assert.is_nil(result)                      -- answers come on a later tick
    assert.truthy(loop.run_until(function() return result end, 20))
    assert.is_true(ticks > 0)
    local set = {}
    for _, ip in ipairs(result) do set[ip] = true end
    assert.is_true(set["127.0.0.1"] or set["::1"], table.concat(result, " "))
  end)

  it("answers from its cache for a minute, with a copy the caller may change", function()
    local first = lookup("localhost")
    table.remove(first, 1)
    local hit
    resolver.lookup("localhost", function(addresses) hit = addresses end)
    assert.is_nil(hit)
    loop.step(0)                               -- a deferred call, no lookup
    assert.truthy(hit)
    assert.equal(#first + 1, #hit)
  end)

  it("passes IP literals through, without a lookup", function()
    assert.same({ "127.0.0.1" }, (lookup("127.0.0.1")))
    assert.same({ "::1" }, (lookup("::1")))
  end)

  it("reports a name that does not exist with getaddrinfo's words", function()
    local addresses, err = lookup("no-such-host.invalid")
    assert.is_nil(addresses)
    assert.equal("string", type(err))
    assert.truthy(#err > 0)
  end)

  it("never calls back after cancel", function()
    local called = false
    local h = resolver.lookup("localhost", function() called = true end)
    h:cancel()
    loop.run_until(function() return false end, 0.3)
    assert.is_false(called)
    local h2 = resolver.lookup("127.0.0.1", function() called = true end)
    h2:cancel()
    loop.step(0)
    assert.is_false(called)
  end)
end)
