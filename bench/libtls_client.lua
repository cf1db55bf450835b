-- bench/libtls_client.lua — bench/c/libtls_client.c's work through ljssl's
-- libtls face (`require "libtls"`), talking to bench/c/tls_peer's server.
-- Prints the seconds its work took.
--
--   luajit bench/libtls_client.lua PORT bulk BYTES|echo COUNT|hs COUNT|resume COUNT [PROTOCOLS]
--
-- bulk, echo and hs connect with ctx:connect; resume connects a socket of its
-- own with TCP_NODELAY as the C client does and uses ctx:connect_socket (a TLS 1.2 resumed handshake
-- ends with the client's Finished, and without TCP_NODELAY Nagle's algorithm
-- holds the PING until the server's delayed ACK).  resume fails if no
-- handshake resumed and prints how many did on stderr.  PROTOCOLS is parsed by
-- config.parse_protocols ("tlsv1.2", "tlsv1.3").
local root = arg[0]:match("^(.*)/bench/[^/]*$") or "."
package.path = root .. "/ffi/?.lua;" .. root .. "/ffi/?/init.lua;" .. package.path
local ffi = require "ffi"
local socket = require "socket"
local tls = require "libtls"
local config = require "libtls.config"

local port, work, amount, protocols = arg[1], arg[2], tonumber(arg[3]), arg[4]
if not (port and work and amount) then
  error("usage: libtls_client.lua PORT bulk|echo|hs|resume N [PROTOCOLS]")
end
for _, decl in ipairs({ "int mkstemp(char *);", "int unlink(const char *);", "int close(int);" }) do
  pcall(ffi.cdef, decl)        -- ljssl may have declared them already
end
-- the resume client's socket, made as bench/c/tls_peer's client makes its own
-- (socket, connect, TCP_NODELAY: a blocking fd and three system calls), so
-- that the comparison with C is of the TLS work; bound under names of the
-- bench's own, whatever ljssl declares
ffi.cdef [[
struct bench_sockaddr_in { uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8]; };
int bench_socket(int, int, int) __asm__("socket");
int bench_connect(int, const struct bench_sockaddr_in *, unsigned) __asm__("connect");
int bench_setsockopt(int, int, int, const int *, unsigned) __asm__("setsockopt");
]]
local C = ffi.C
local WANT_POLLIN, WANT_POLLOUT = tls.WANT_POLLIN, tls.WANT_POLLOUT
local clock = socket.gettime

local cfg = config.new()
cfg:insecure_noverifycert()
cfg:insecure_noverifyname()
if protocols then
  local p, err = config.parse_protocols(protocols)
  assert(p ~= -1, err)
  assert(cfg:set_protocols(p))
end

local function check(ok, err)
  if not ok then error(err and (err.message or tostring(err)) or "failed", 2) end
  return ok
end

local AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_NODELAY = 2, 1, 6, 1
local loopback = ffi.new("struct bench_sockaddr_in", { family = AF_INET,
  port = bit.rshift(bit.bswap(tonumber(port)), 16), addr = bit.bswap(0x7f000001) })
local one = ffi.new("const int[1]", 1)

-- A connected, handshaken client context; with nodelay, over a socket of the
-- client's own with TCP_NODELAY (its fd returned too, for the caller to close).
local function open_client(nodelay)
  local ctx = tls.client(cfg)
  local fd
  if nodelay then
    fd = C.bench_socket(AF_INET, SOCK_STREAM, 0)
    assert(fd >= 0, "socket")
    assert(C.bench_connect(fd, loopback, ffi.sizeof(loopback)) == 0, "connect")
    C.bench_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4)
    check(ctx:connect_socket(fd, "localhost"))
  else
    check(ctx:connect("127.0.0.1", port))
  end
  for _ = 1, 1000 do
    local ok, err = ctx:handshake()
    if ok then return ctx, fd end
    if err then error(err.message) end
  end
  error("handshake: no progress")
end

local function write_all(ctx, data)
  local tries = 0
  while #data > 0 do
    local n, err, again = ctx:write(data)
    if not n then error(err and err.message or "write: end of stream") end
    data = data:sub(n + 1)
    if again then
      tries = tries + 1
      if tries > 1000 then error("write: no progress") end
    end
  end
end

-- One read, retried while the face asks to be called again (a TLS 1.3 ticket
-- arrives as a read that gives no data): the data, or nil at the end of the stream.
local function read_some(ctx, size)
  for _ = 1, 1000 do
    local data, err, again = ctx:read(size)
    if data then return data end
    if err then error(err.message) end
    if not again then return nil end
  end
  error("read: no progress")
end

-- Reads until "\n" (the peer answers each line with one record).
local function read_line(ctx)
  local line = read_some(ctx, 16384)
  if not line then error("read_line: end of stream") end
  if line:byte(-1) == 10 then return line end
  local parts = { line }
  for _ = 1, 1000 do
    line = read_some(ctx, 16384)
    if not line then error("read_line: end of stream") end
    parts[#parts + 1] = line
    if line:byte(-1) == 10 then return table.concat(parts) end
  end
  error("read_line: line too long")
end

local function close_client(ctx, fd)
  for _ = 1, 1000 do
    local ok, _, want = ctx:close()
    if ok or not want then break end
  end
  if fd then C.close(fd) end
end

-- A handshake, PING and PONG, and close; returns whether it resumed.
local function ping(nodelay)
  local ctx, fd = open_client(nodelay)
  local resumed = ctx:conn_session_resumed()
  write_all(ctx, "PING\n")
  assert(read_line(ctx) == "PONG\n")     -- the ticket comes with it: the face saves the session
  close_client(ctx, fd)
  return resumed
end

local elapsed
if work == "bulk" then
  local ctx = open_client(false)
  local start = clock()
  write_all(ctx, ("BULK %d\n"):format(amount))
  local got = 0
  while got < amount do
    local data = read_some(ctx, 16384)
    if not data then break end
    got = got + #data
  end
  if got ~= amount then error("short bulk transfer") end
  elapsed = clock() - start
  close_client(ctx)
elseif work == "echo" then
  local ctx = open_client(false)
  local msg = "hello, this is one line of the echo benchmark\n"
  write_all(ctx, "ECHO\n")
  -- one round trip before the clock starts: ctx:connect's socket has no
  -- TCP_NODELAY, and the first line would wait for the ACK of "ECHO" (the
  -- server's delayed ACK, up to 40 ms)
  write_all(ctx, msg)
  if read_line(ctx) ~= msg then error("echo") end
  local start = clock()
  for _ = 1, amount do
    write_all(ctx, msg)
    if read_line(ctx) ~= msg then error("echo") end
  end
  elapsed = clock() - start
  close_client(ctx)
elseif work == "hs" then
  local start = clock()
  for _ = 1, amount do ping(false) end
  elapsed = clock() - start
elseif work == "resume" then
  local path = ffi.new("char[?]", 64, "/tmp/libtls_client_session.XXXXXX")
  local fd = C.mkstemp(path)               -- mode 0600, as libtls requires
  assert(fd >= 0, "mkstemp")
  C.unlink(path)
  check(cfg:set_session_fd(fd))
  ping(true)                               -- a full handshake gives the ticket
  local resumed = 0
  local start = clock()
  for _ = 1, amount do
    if ping(true) then resumed = resumed + 1 end
  end
  elapsed = clock() - start
  io.stderr:write(("resumed %d of %d\n"):format(resumed, amount))
  if resumed == 0 then io.stderr:write("libtls_client.lua: no handshake resumed\n"); os.exit(1) end
  C.close(fd)
else
  error("unknown work " .. tostring(work))
end
print(("%.6f"):format(elapsed))
