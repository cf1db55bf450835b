-- bench/client.lua — the Lua client of the benchmarks, one program for both
-- LuaSec and ljssl (the LuaSec API is the same; only the module path differs),
-- talking to bench/c/tls_peer's server.  Prints the seconds its work took.
--
--   luajit bench/client.lua luasec|ljssl PORT bulk BYTES|echo COUNT|hs COUNT|idle COUNT
-- (idle prints the resident memory each open, idle connection costs, in bytes)
local impl, port, work, amount = arg[1], tonumber(arg[2]), arg[3], tonumber(arg[4])
if impl == "ljssl" then
  local root = arg[0]:match("^(.*)/bench/[^/]*$") or "."
  package.path = root .. "/ffi/?.lua;" .. root .. "/ffi/?/init.lua;" .. package.path
elseif impl ~= "luasec" then
  error("usage: client.lua luasec|ljssl PORT WORK N")
end
local socket = require "socket"
local ssl = require "ssl"
if impl == "ljssl" then assert(ssl._VERSION:find("ljssl", 1, true), "ljssl not loaded")
else assert(not ssl._VERSION:find("ljssl", 1, true), "LuaSec not loaded") end

local ctx = assert(ssl.newcontext({ mode = "client", protocol = "tlsv1_3", verify = "none" }))
local clock = socket.gettime

local function connect()
  local tcp = assert(socket.tcp())
  assert(tcp:connect("127.0.0.1", port))
  tcp:setoption("tcp-nodelay", true)
  local conn = assert(ssl.wrap(tcp, ctx))
  assert(conn:dohandshake())
  return conn
end

local elapsed
if work == "bulk" then
  local conn = connect()
  local start = clock()
  conn:send(("BULK %d\n"):format(amount))
  local got, size = 0, 16384
  while got < amount do
    local data, err, partial = conn:receive(math.min(size, amount - got))
    data = data or partial
    if not data or #data == 0 then error("short bulk transfer: " .. tostring(err)) end
    got = got + #data
  end
  elapsed = clock() - start
  conn:close()
elseif work == "echo" then
  local conn = connect()
  local msg = "hello, this is one line of the echo benchmark"
  conn:send("ECHO\n")
  -- BENCH_WARMUP=W and BENCH_VGMARK=path/vgmark.so: W round trips first, and
  -- callgrind's collection toggled around the measured ones, so that start-up
  -- and JIT compilation stay out of the count
  local warm = tonumber(os.getenv("BENCH_WARMUP") or 0)
  local mark = warm > 0 and os.getenv("BENCH_VGMARK")
  if mark then
    local ffi = require "ffi"
    ffi.cdef "void vgmark_toggle(void);"
    mark = ffi.load(mark)
  end
  local start = clock()
  for i = 1, warm + amount do
    if mark and i == warm + 1 then mark.vgmark_toggle() end
    conn:send(msg .. "\n")
    assert(conn:receive("*l") == msg)
  end
  if mark then mark.vgmark_toggle() end
  elapsed = clock() - start
  conn:close()
elseif work == "hs" then
  local start = clock()
  for _ = 1, amount do
    local conn = connect()
    conn:send("PING\n")
    assert(conn:receive("*l") == "PONG")
    conn:close()
  end
  elapsed = clock() - start
elseif work == "idle" then
  local function rss()
    local f = assert(io.open("/proc/self/statm"))
    local resident = tonumber(f:read("*a"):match("^%d+ (%d+)"))
    f:close()
    return resident * 4096
  end
  collectgarbage("collect")
  local before, held = rss(), {}
  for i = 1, amount do
    local conn = connect()
    conn:send("HOLD\n")
    assert(conn:receive("*l") == "OK")
    held[i] = conn
  end
  collectgarbage("collect")
  print(("%.1f"):format((rss() - before) / amount))
  for i = 1, amount do held[i]:close() end
  os.exit(0)
else
  error("unknown work " .. tostring(work))
end
print(("%.6f"):format(elapsed))
