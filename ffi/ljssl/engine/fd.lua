-- ljssl.engine.fd — what the engine needs of file descriptors: non-blocking mode,
-- waiting with poll() under a deadline, a monotonic clock, errno texts.  Faces
-- that own an fd (LuaSec's wrap, libtls) use it; the memory transport does not.

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"

local libc, K = lib.libc, lib.K
local band, bor, bnot = bit.band, bit.bor, bit.bnot

local fd = {}

local pfd = ffi.new("struct ljssl_pollfd[1]")
local ts = ffi.new("struct ljssl_timespec[1]")

-- Seconds on a monotonic clock, as a Lua number.
function fd.now()
  libc.ljssl_clock_gettime(K.CLOCK_MONOTONIC, ts)
  return tonumber(ts[0].tv_sec) + tonumber(ts[0].tv_nsec) * 1e-9
end

function fd.strerror(errno)
  return ffi.string(libc.strerror(errno))
end

function fd.set_blocking(n, blocking)
  local flags = libc.fcntl(n, K.F_GETFL)
  if flags < 0 then return nil, fd.strerror(ffi.errno()) end
  local wanted = blocking and band(flags, bnot(K.O_NONBLOCK)) or bor(flags, K.O_NONBLOCK)
  if wanted ~= flags and libc.fcntl(n, K.F_SETFL, ffi.new("int", wanted)) < 0 then
    return nil, fd.strerror(ffi.errno())
  end
  return true
end

-- Waits until `n` is readable (or writable when `for_write`), for at most
-- `timeout` seconds (negative: forever).  Returns true, or nil and "timeout",
-- or nil and an errno text.
local function poll_ms(deadline)
  if not deadline then return -1 end
  local ms = math.floor((deadline - fd.now()) * 1000 + 0.5)
  if ms < 0 then ms = 0 end
  return ms
end

-- Retries after EINTR, in its own function so that the common case in
-- fd.wait has no loop (a loop there would abort the callers' traces).
local function wait_slow(deadline)
  while true do
    local errno = ffi.errno()
    if errno ~= K.EINTR then return nil, fd.strerror(errno) end
    pfd[0].revents = 0
    local rc = libc.ljssl_poll(pfd, 1, poll_ms(deadline))
    if rc > 0 then return true end
    if rc == 0 then return nil, "timeout" end
  end
end

function fd.wait(n, for_write, timeout)
  if timeout == 0 then return nil, "timeout" end
  pfd[0].fd = n
  pfd[0].events = for_write and K.POLLOUT or K.POLLIN
  pfd[0].revents = 0
  local deadline = timeout > 0 and fd.now() + timeout or nil
  local rc = libc.ljssl_poll(pfd, 1, poll_ms(deadline))
  if rc > 0 then return true end
  if rc == 0 then return nil, "timeout" end
  return wait_slow(deadline)
end

function fd.close(n)
  if n >= 0 then libc.close(n) end
end

return fd
