-- iomodules.loop — the event loop the net face runs on: poll() over the
-- registered descriptors, timers, and calls deferred to a later tick.  Every
-- handler runs under pcall; an error is reported (loop.report) and the loop
-- goes on.  One loop per process, created on first use.

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ssl.lib"
local fdlib = require "ssl.engine.fd"

local libc, K = lib.libc, lib.K

local loop = {}

-- fd -> { read = fn|nil, write = fn|nil }
local watched = {}
local timers = {}           -- list of { at = seconds, fn = fn, id = n }, sorted by `at`
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

-- Interest in `fd` becoming readable/writable: fn(fd) or nil to stop.
function loop.watch(fd, kind, fn)
  if not fd_ok(fd) then argerror(1, "watch", "file descriptor expected, got " .. typename(fd)) end
  if kind ~= "read" and kind ~= "write" then argerror(2, "watch", "'read' or 'write' expected") end
  if fn ~= nil and type(fn) ~= "function" then argerror(3, "watch", "function expected, got " .. type(fn)) end
  local w = watched[fd]
  if not w then
    if not fn then return end
    w = {}
    watched[fd] = w
  end
  w[kind] = fn
  if not w.read and not w.write then watched[fd] = nil end
end

function loop.unwatch(fd)
  if type(fd) ~= "number" or fd ~= fd then argerror(1, "unwatch", "file descriptor expected, got " .. typename(fd)) end
  watched[fd] = nil
end

-- Calls fn() once, `seconds` from now; returns an id for cancel().
function loop.after(seconds, fn)
  if not seconds_ok(seconds) then argerror(1, "after", "seconds expected, got " .. tostring(seconds)) end
  if type(fn) ~= "function" then argerror(2, "after", "function expected, got " .. typename(fn)) end
  next_id = next_id + 1
  local t = { at = fdlib.now() + seconds, fn = fn, id = next_id }
  local i = #timers + 1
  while i > 1 and timers[i - 1].at > t.at do
    timers[i] = timers[i - 1]
    i = i - 1
  end
  timers[i] = t
  return next_id
end

function loop.cancel(id)
  for i, t in ipairs(timers) do
    if t.id == id then table.remove(timers, i); return true end
  end
  return false
end

-- Calls fn(...) on a later tick (the `_async` callbacks).
function loop.defer(fn, ...)
  if type(fn) ~= "function" then argerror(1, "defer", "function expected, got " .. typename(fn)) end
  local args = { n = select("#", ...), ... }
  deferred[#deferred + 1] = function() return fn(unpack(args, 1, args.n)) end
end

local pfds = ffi.new("struct ljssl_pollfd[?]", 64)
local pfds_size = 64

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
  if timers[1] then
    local until_timer = math.max(timers[1].at - fdlib.now(), 0)
    wait = wait and math.min(wait, until_timer) or until_timer
  end
  local n = 0
  for _ in pairs(watched) do n = n + 1 end
  if n > pfds_size then
    pfds_size = n * 2
    pfds = ffi.new("struct ljssl_pollfd[?]", pfds_size)
  end
  local i = 0
  for fd, w in pairs(watched) do
    pfds[i].fd = fd
    pfds[i].events = (w.read and K.POLLIN or 0) + (w.write and K.POLLOUT or 0)
    pfds[i].revents = 0
    i = i + 1
  end
  local ms = wait and math.floor(wait * 1000 + 0.5) or -1
  if n > 0 or ms ~= 0 then
    local rc = libc.ljssl_poll(pfds, n, ms)
    if rc > 0 then
      for j = 0, n - 1 do
        local rev = pfds[j].revents
        if rev ~= 0 then
          local w = watched[pfds[j].fd]
          local fd = pfds[j].fd
          local bad = bit.band(rev, K.POLLERR + K.POLLHUP + K.POLLNVAL) ~= 0
          if w and w.read and (bit.band(rev, K.POLLIN) ~= 0 or bad) then
            loop.call(w.read, fd)
            did = true
          end
          w = watched[fd]
          if w and w.write and (bit.band(rev, K.POLLOUT) ~= 0 or bad) then
            loop.call(w.write, fd)
            did = true
          end
        end
      end
    end
  end
  local now = fdlib.now()
  while timers[1] and timers[1].at <= now do
    local t = table.remove(timers, 1)
    loop.call(t.fn)
    did = true
  end
  return did
end

-- Runs until stop() or until nothing is left to wait for.
function loop.run()
  running = true
  while running do
    if not next(watched) and not timers[1] and #deferred == 0 then break end
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
