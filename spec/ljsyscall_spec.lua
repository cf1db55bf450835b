-- ljssl and ljsyscall (Debian lua-ljsyscall) in one process, loaded in either
-- order: both declare the C library's pollfd, timespec and stat, and LuaJIT
-- refuses a second struct body, so ljssl keeps its own tags (struct
-- ljssl_pollfd) and binds poll, clock_gettime and fstat under ljssl_ names.
-- Each order runs in a fresh LuaJIT, which then uses both libraries.
local helpers = require "helpers"
local LJSYSCALL = ".deps/lua-ljsyscall/usr/share/lua/5.1"

local CHILD = [=[
local order, cert, key = arg[1], arg[2], arg[3]
local S, ssl
if order == "ljsyscall first" then
  S = require "syscall"; ssl = require "ssl"
else
  ssl = require "ssl"; S = require "syscall"
end
local libtls_config = require "libtls.config"
local loop = require("iomodules").loop
local socket = require "socket"

-- ljsyscall: its own timespec and pollfd
local ts = assert(S.clock_gettime("MONOTONIC"))
assert(ts.tv_sec >= 0)
local ok, _, rd, wr = S.pipe()
assert(ok and wr:write("x"))
local pfds = S.t.pollfds({ { fd = rd, events = "in" } })
assert(S.poll(pfds, 1000) == 1, "ljsyscall poll")
for _, pfd in ipairs(pfds) do assert(pfd.IN, "ljsyscall poll: readable") end

-- ljssl: poll and clock_gettime (timeouts of a TLS handshake and a line),
-- fstat (libtls.config.load_file) and the event loop's poll
local server = assert(socket.bind("127.0.0.1", 0))
local port = select(2, server:getsockname())
local a = socket.tcp(); assert(a:connect("127.0.0.1", port))
local b = assert(server:accept())
local sconn = assert(ssl.wrap(b, { mode = "server", protocol = "any", certificate = cert, key = key }))
local cconn = assert(ssl.wrap(a, { mode = "client", protocol = "any" }))
sconn:settimeout(0); cconn:settimeout(0)
local sdone, cdone
for _ = 1, 1000 do
  sdone = sdone or sconn:dohandshake()
  cdone = cdone or cconn:dohandshake()
  if sdone and cdone then break end
  socket.sleep(0.001)
end
assert(sdone and cdone, "handshake")
cconn:settimeout(2); sconn:settimeout(2)
assert(cconn:send("over both libraries\n"))
assert(sconn:receive("*l") == "over both libraries")
assert(#assert(libtls_config.load_file(cert)) > 0)
local ticked = false
loop.after(0.01, function() ticked = true end)
assert(loop.run_until(function() return ticked end, 2), "loop timer")
print("both work: " .. order)
]=]

describe("ljssl beside ljsyscall", function()
  local dir, pki
  setup(function()
    pki = helpers.pki()
    dir = helpers.tmpdir()
    helpers.writefile(dir .. "/child.lua", CHILD)
  end)
  teardown(function() helpers.sh("rm -rf " .. dir) end)

  for _, order in ipairs({ "ljsyscall first", "ljssl first" }) do
    it("loads and works with " .. order, function()
      -- ljsyscall's Lua files, unpacked by tools/install_deps (Debian 12's
      -- package would replace luajit2 with Debian's luajit)
      local ok, out = helpers.sh(("LUA_PATH='ffi/?.lua;ffi/?/init.lua;%s/?.lua;%s/?/init.lua;;' " ..
        "timeout 30 %s %s/child.lua '%s' %s %s"):format(LJSYSCALL, LJSYSCALL,
        helpers.luajit(), dir, order, pki.server, pki.server_key))
      assert.is_true(ok, out)
      assert.truthy(out:find("both work: " .. order, 1, true), out)
    end)
  end
end)
