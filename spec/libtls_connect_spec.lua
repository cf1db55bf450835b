-- The sockets of the libtls face's connects, against the system libtls as an
-- oracle.  libtls's tls_connect_servername (and tls_connect, which calls it)
-- makes its own socket with getaddrinfo, socket(2) and connect(2) and never
-- changes its mode, so the context owns a blocking socket: a handshake there
-- runs to its end in one call.  tls_connect_socket and tls_connect_fds take
-- the caller's descriptors as they are: a non-blocking fd stays non-blocking
-- (and its handshake asks to be called again), a blocking one stays blocking.
-- The face connects through LuaSocket, whose sockets are non-blocking, and
-- makes its own socket blocking again (ffi/libtls/init.lua connect_servername).
local ffi = require "ffi"
local socket = require "socket"
local helpers = require "helpers"

-- the two implementations, each with config.new and client
local oracle = require "oracle.libtls"
local ljssl = { config = require "libtls.config", client = require("libtls").client }

pcall(ffi.cdef, "int fcntl(int, int, ...);")
local F_GETFD, F_SETFL, F_GETFL = 1, 4, 3
local O_NONBLOCK, FD_CLOEXEC = 2048, 1

local dir

-- The descriptors open in this process now (a set), probed with fcntl: no
-- listing of /proc, which would open one of its own.
local function open_fds()
  local set = {}
  for fd = 0, 1023 do
    if ffi.C.fcntl(fd, F_GETFD) ~= -1 then set[fd] = true end
  end
  return set
end

-- What a descriptor's flags say: non-blocking, close-on-exec.
local function mode(fd)
  return { nonblocking = bit.band(ffi.C.fcntl(fd, F_GETFL), O_NONBLOCK) ~= 0,
           cloexec = bit.band(ffi.C.fcntl(fd, F_GETFD), FD_CLOEXEC) ~= 0 }
end

local function client_config(impl)
  local cfg = impl.config.new()
  assert(cfg:set_ca_file(dir .. "/root.pem"))
  return cfg
end

-- A one-client libtls-face server in its own process (it handshakes, says
-- "hello\n" and closes), so that a blocking client in this one can talk to it.
local function with_server(fn)
  local port = helpers.free_port()
  local server = helpers.spawn(("timeout 20 %s spec/fixtures/libtls_ticket_server.lua %d %s")
    :format(helpers.luajit(), port, dir))
  local ok, err = pcall(function()
    for _ = 1, 400 do                 -- until the server listens (bounded)
      if server:output():find("listening", 1, true) then break end
      socket.sleep(0.05)
    end
    fn(port)
  end)
  server:stop()
  if not ok then error(err, 0) end
end

-- connect(ctx, port) through `impl`; the socket the context made, its mode,
-- the first handshake call's result and what the server said.
local function own_socket(impl, connect)
  local r = {}
  with_server(function(port)
    local ctx = assert(impl.client(client_config(impl)))
    local before = open_fds()
    local ok, err = connect(ctx, tostring(port))
    assert(ok, err and (err.message or err))
    local new = {}
    for fd in pairs(open_fds()) do
      if not before[fd] then new[#new + 1] = fd end
    end
    r.new_fds = #new
    if #new == 1 then r.mode = mode(new[1]) end
    r.handshake = { ctx:handshake() }
    local data
    for _ = 1, 100 do
      local again
      data, _, again = ctx:read()
      if not again then break end
    end
    r.data = data
    ctx:close()
  end)
  return r
end

describe("libtls face sockets against the system libtls", function()
  setup(function() dir = helpers.certs() end)

  local connects = {
    connect_servername = function(ctx, port) return ctx:connect_servername("127.0.0.1", port, "localhost") end,
    connect = function(ctx, port) return ctx:connect("localhost", port) end,
  }
  for name, connect in pairs(connects) do
    it(name .. " makes a blocking socket of its own: the handshake completes in one call", function()
      local want = own_socket(oracle, connect)
      assert.same({ new_fds = 1, mode = { nonblocking = false, cloexec = false },
                    handshake = { true }, data = "hello\n" }, want)
      assert.same(want, own_socket(ljssl, connect))
    end)
  end

  for _, blocking in ipairs({ false, true }) do
    local how = blocking and "blocking" or "non-blocking"
    it("connect_socket leaves a " .. how .. " fd as it is", function()
      local function run(impl)
        local c, s = helpers.tcp_pair()
        local fd = c:getfd()
        local flags = ffi.C.fcntl(fd, F_GETFL)
        flags = blocking and bit.band(flags, bit.bnot(O_NONBLOCK)) or bit.bor(flags, O_NONBLOCK)
        assert(ffi.C.fcntl(fd, F_SETFL, ffi.new("int", flags)) == 0)
        local ctx = assert(impl.client(client_config(impl)))
        local r = { connect = ctx:connect_socket(fd, "localhost") }
        r.mode = mode(fd)
        -- a peer that never answers: a non-blocking handshake asks to be
        -- called again (a blocking one would wait for ever)
        if not blocking then r.handshake = { ctx:handshake() } end
        c:close(); s:close()
        return r
      end
      local want = run(oracle)
      assert.same({ nonblocking = not blocking, cloexec = false }, want.mode)
      if not blocking then assert.same({ false, nil, oracle.WANT_POLLIN }, want.handshake) end
      assert.same(want, run(ljssl))
    end)
  end
end)
