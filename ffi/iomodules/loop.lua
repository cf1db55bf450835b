-- iomodules.loop — the event loop the net face runs on: poll() over the
-- registered descriptors, timers, and calls deferred to a later tick.  Every
-- handler runs under pcall; an error is reported (loop.report) and the loop
-- goes on.  One loop per process, created on first use.

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"
local fdlib = require "ljssl.engine.fd"

local libc, K = lib.libc, lib.K

local loop = {}

-- The poll set persists between steps: pfds[0 .. nfds-1] holds every watched
-- fd, slot[fd] its index, and watch/unwatch edit it in place (a step no longer
-- rebuilds it from a table walk).  Handlers live in on_read/on_write by fd.
local pfds_size = 64
local pfds = ffi.new("struct ljssl_pollfd[?]", pfds_size)
local nfds = 0
local slot, on_read, on_write = {}, {}, {}
-- What one poll reported, copied out before any handler can edit the set.
local ready_fd = ffi.new("int[?]", pfds_size)
local ready_ev = ffi.new("short[?]", pfds_size)

-- Timers: a binary min-heap ordered by (at, id), so equal deadlines fire in
-- the order they were set; cancel() marks a timer dead in O(1) and the heap
-- drops it when it reaches the top.
local heap, live = {}, {}    -- live: id -> timer, for cancel()
local live_count = 0
local dead_count = 0        -- cancelled timers still in the heap
local deferred = {}         -- functions for the next tick
local next_id, running = 0, false

-- Programmer mistakes raise in lauxlib's words, blaming the caller (a bad
-- value stored here would otherwise fail later, inside some other step).
local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end
local function typename(v) return v == nil and "no value" or type(v) end
local function seconds_ok(v) return type(v) == "number" and v == v and v >= 0 end
local function fd_ok(v) return type(v) == "number" and v == math.floor(v) and v >= -2147483648 and v <= 2147483647 end

-- Reports an error raised by a handler; replace to log elsewhere.
function loop.report(err)
  io.stderr:write("iomodules: handler error: ", tostring(err), "\n")
end

-- Runs fn(...) for the loop; a raised error is reported, not propagated.
function loop.call(fn, ...)
  if not fn then return end
  local ok, err = xpcall(fn, debug.traceback, ...)
  if not ok then loop.report(err) end
end

local function set_events(fd)
  local events = (on_read[fd] and K.POLLIN or 0) + (on_write[fd] and K.POLLOUT or 0)
  local i = slot[fd]
  if events == 0 then
    if i then                        -- the last slot fills the hole
      nfds = nfds - 1
      if i ~= nfds then
        pfds[i].fd, pfds[i].events = pfds[nfds].fd, pfds[nfds].events
        slot[pfds[i].fd] = i
      end
      slot[fd] = nil
    end
    return
  end
  if not i then
    if nfds == pfds_size then
      local bigger = ffi.new("struct ljssl_pollfd[?]", pfds_size * 2)
      ffi.copy(bigger, pfds, ffi.sizeof("struct ljssl_pollfd") * nfds)
      pfds, pfds_size = bigger, pfds_size * 2
      ready_fd, ready_ev = ffi.new("int[?]", pfds_size), ffi.new("short[?]", pfds_size)
    end
    i, nfds = nfds, nfds + 1
    slot[fd] = i
    pfds[i].fd = fd
  end
  pfds[i].events = events
end

-- Interest in `fd` becoming readable/writable: fn(fd) or nil to stop.
function loop.watch(fd, kind, fn)
  if not fd_ok(fd) then argerror(1, "watch", "file descriptor expected, got " .. typename(fd)) end
  if kind ~= "read" and kind ~= "write" then argerror(2, "watch", "'read' or 'write' expected") end
  if fn ~= nil and type(fn) ~= "function" then argerror(3, "watch", "function expected, got " .. type(fn)) end
  if kind == "read" then on_read[fd] = fn else on_write[fd] = fn end
  set_events(fd)
end

function loop.unwatch(fd)
  if type(fd) ~= "number" or fd ~= fd then argerror(1, "unwatch", "file descriptor expected, got " .. typename(fd)) end
  on_read[fd], on_write[fd] = nil, nil
  set_events(fd)
end

local function earlier(a, b)
  return a.at < b.at or (a.at == b.at and a.id < b.id)
end

local function heap_push(t)
  local i = #heap + 1
  heap[i] = t
  while i > 1 do
    local parent = math.floor(i / 2)
    if not earlier(heap[i], heap[parent]) then break end
    heap[i], heap[parent] = heap[parent], heap[i]
    i = parent
  end
end

local function heap_pop()
  local top, n = heap[1], #heap
  local last = heap[n]
  heap[n] = nil               -- two statements: with n == 1 the order matters
  n = n - 1
  if n == 0 then return top end
  heap[1] = last
  local i = 1
  while true do
    local l, r, smallest = 2 * i, 2 * i + 1, i
    if l <= n and earlier(heap[l], heap[smallest]) then smallest = l end
    if r <= n and earlier(heap[r], heap[smallest]) then smallest = r end
    if smallest == i then break end
    heap[i], heap[smallest] = heap[smallest], heap[i]
    i = smallest
  end
  return top
end

-- The next live timer (cancelled ones leave the heap here), or nil.
local function next_timer()
  while heap[1] and heap[1].dead do heap_pop(); dead_count = dead_count - 1 end
  return heap[1]
end

-- Cancelled timers wait in the heap for their deadline; when they are most
-- of it, the heap is rebuilt from the live ones, so many long timers set and
-- cancelled (handshake timeouts) do not pile up.
local function compact()
  local old = heap
  heap, dead_count = {}, 0
  for _, t in ipairs(old) do
    if not t.dead then heap_push(t) end
  end
end

-- Calls fn() once, `seconds` from now; returns an id for cancel().
function loop.after(seconds, fn)
  if not seconds_ok(seconds) then argerror(1, "after", "seconds expected, got " .. tostring(seconds)) end
  if type(fn) ~= "function" then argerror(2, "after", "function expected, got " .. typename(fn)) end
  next_id = next_id + 1
  local t = { at = fdlib.now() + seconds, fn = fn, id = next_id }
  heap_push(t)
  live[next_id] = t
  live_count = live_count + 1
  return next_id
end

function loop.cancel(id)
  local t = live[id]
  if not t then return false end
  t.dead, live[id] = true, nil
  live_count = live_count - 1
  dead_count = dead_count + 1
  if dead_count > 64 and dead_count > #heap / 2 then compact() end
  return true
end

-- Calls fn(...) on a later tick (the `_async` callbacks).
function loop.defer(fn, ...)
  if type(fn) ~= "function" then argerror(1, "defer", "function expected, got " .. typename(fn)) end
  local args = { n = select("#", ...), ... }
  deferred[#deferred + 1] = function() return fn(unpack(args, 1, args.n)) end
end

-- One round: deferred calls, then poll for at most `timeout` seconds (nil:
-- until something happens), then due timers.  Returns true if anything ran.
function loop.step(timeout)
  if timeout ~= nil and not seconds_ok(timeout) then
    argerror(1, "step", "seconds expected, got " .. tostring(timeout))
  end
  local did = false
  if #deferred > 0 then
    local now_deferred = deferred
    deferred = {}
    for _, fn in ipairs(now_deferred) do loop.call(fn) end
    did = true
  end
  local wait = timeout
  if #deferred > 0 then wait = 0 end
  local first = next_timer()
  if first then
    local until_timer = math.max(first.at - fdlib.now(), 0)
    wait = wait and math.min(wait, until_timer) or until_timer
  end
  local ms = wait and math.floor(wait * 1000 + 0.5) or -1
  if nfds > 0 or ms ~= 0 then
    local rc = libc.ljssl_poll(pfds, nfds, ms)
    if rc > 0 then
      local n = 0
      for j = 0, nfds - 1 do
        local rev = pfds[j].revents
        if rev ~= 0 then
          ready_fd[n], ready_ev[n] = pfds[j].fd, rev
          n = n + 1
        end
      end
      for j = 0, n - 1 do
        local fd, rev = ready_fd[j], ready_ev[j]
        local bad = bit.band(rev, K.POLLERR + K.POLLHUP + K.POLLNVAL) ~= 0
        local fn = on_read[fd]
        if fn and (bit.band(rev, K.POLLIN) ~= 0 or bad) then
          loop.call(fn, fd)
          did = true
        end
        fn = on_write[fd]
        if fn and (bit.band(rev, K.POLLOUT) ~= 0 or bad) then
          loop.call(fn, fd)
          did = true
        end
      end
    end
  end
  local now = fdlib.now()
  while true do
    local t = next_timer()
    if not t or t.at > now then break end
    heap_pop()
    live[t.id], live_count = nil, live_count - 1
    loop.call(t.fn)
    did = true
  end
  return did
end

-- Runs until stop() or until nothing is left to wait for.
function loop.run()
  running = true
  while running do
    if nfds == 0 and live_count == 0 and #deferred == 0 then break end
    loop.step(nil)
  end
  running = false
end

function loop.stop()
  running = false
end

-- Steps until cond() is true or `seconds` pass; returns cond()'s last value.
function loop.run_until(cond, seconds)
  if type(cond) ~= "function" then argerror(1, "run_until", "function expected, got " .. typename(cond)) end
  if seconds ~= nil and not seconds_ok(seconds) then
    argerror(2, "run_until", "seconds expected, got " .. tostring(seconds))
  end
  local deadline = fdlib.now() + (seconds or 10)
  while fdlib.now() < deadline do
    local v = cond()
    if v then return v end
    loop.step(math.min(0.05, math.max(deadline - fdlib.now(), 0)))
  end
  return cond()
end

return loop
