-- iomodules.loop: the timer heap (order, ties, cancel) and the persistent
-- poll set (slots reused as descriptors come and go, handlers that change
-- the set while a step dispatches).
local loop = require "iomodules.loop"
local socket = require "socket"

describe("iomodules.loop", function()
  it("fires timers by deadline, ties in the order they were set, and cancels in O(1)", function()
    local fired = {}
    local ids = {}
    -- a fixed pseudo-random order of deadlines, many ties
    local x = 7
    for i = 1, 500 do
      x = (x * 1103515245 + 12345) % 2147483648
      local delay = (x % 20) / 1000
      ids[i] = loop.after(delay, function() fired[#fired + 1] = { delay = delay, i = i } end)
    end
    local cancelled, ncancelled = {}, 0
    for i = 3, 500, 7 do
      assert.is_true(loop.cancel(ids[i]))
      assert.is_false(loop.cancel(ids[i]))
      cancelled[i], ncancelled = true, ncancelled + 1
    end
    assert.truthy(loop.run_until(function() return #fired == 500 - ncancelled end, 5))
    loop.run_until(function() return false end, 0.05)        -- nothing more fires
    assert.equal(500 - ncancelled, #fired)
    for k = 2, #fired do
      local a, b = fired[k - 1], fired[k]
      -- deadlines come from the clock at after(): later i never fires earlier
      -- than an earlier i with a smaller or equal delay
      if a.delay == b.delay then assert.is_true(a.i < b.i) end
    end
    for _, f in ipairs(fired) do assert.is_nil(cancelled[f.i]) end
    assert.is_false(loop.cancel(ids[1]))      -- already fired
  end)

  it("does not keep cancelled timers: long timeouts set and cancelled by the thousand", function()
    local function churn(n)
      for _ = 1, n do loop.cancel(loop.after(60, function() end)) end
      collectgarbage("collect"); collectgarbage("collect")
      return collectgarbage("count")
    end
    churn(1000)
    local before = churn(1000)
    local after = churn(20000)
    -- kept, 20 000 of them would hold a few MiB
    assert.is_true(after - before < 100, ("Lua heap grew %.0f KiB"):format(after - before))
  end)

  it("runs a timer set from inside a timer, and one set for now before the poll waits", function()
    local order = {}
    loop.after(0, function()
      order[#order + 1] = "a"
      loop.after(0, function() order[#order + 1] = "c" end)
    end)
    loop.after(0, function() order[#order + 1] = "b" end)
    assert.truthy(loop.run_until(function() return #order == 3 end, 2))
    assert.same({ "a", "b", "c" }, order)
  end)

  it("keeps the poll set right as descriptors come and go, even from handlers", function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local port = select(2, server:getsockname())
    local pairs_ = {}
    for i = 1, 40 do
      local c = socket.tcp()
      assert(c:connect("127.0.0.1", port))
      local s = assert(server:accept())
      pairs_[i] = { c = c, s = s }
    end
    local got = {}
    for i, p in ipairs(pairs_) do
      loop.watch(p.s:getfd(), "read", function()
        local data = p.s:receive(1)
        got[i] = data
        loop.unwatch(p.s:getfd())
        -- a handler that drops another descriptor mid-step: its event, if
        -- it was also ready, must not run
        if i % 2 == 1 and pairs_[i + 1] then loop.unwatch(pairs_[i + 1].s:getfd()) end
      end)
    end
    -- drop every third before anything happens (slots move)
    for i = 3, 40, 3 do loop.unwatch(pairs_[i].s:getfd()) end
    for i, p in ipairs(pairs_) do
      if i % 3 ~= 0 then p.c:send("x") end
    end
    loop.run_until(function() return false end, 0.3)
    local count = 0
    for i = 1, 40 do
      if got[i] then
        count = count + 1
        assert.is_true(i % 3 ~= 0, "an unwatched descriptor's handler ran: " .. i)
      end
    end
    assert.is_true(count >= 14, "too few handlers ran: " .. count)
    -- nothing is watched any more: run() returns at once
    for _, p in ipairs(pairs_) do loop.unwatch(p.s:getfd()); p.c:close(); p.s:close() end
    server:close()
    loop.run()
  end)
end)
