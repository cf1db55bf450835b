-- Non-blocking use as LuaSec programs do it: settimeout(0) with socket.select,
-- and copas (Debian's 1.1.7, which yields on "timeout": the adapter below maps
-- LuaSec's "wantread"/"wantwrite" onto it, as copas 2+ does internally).
local socket = require "socket"
local copas = require "copas"
local helpers = require "helpers"
local ssl = require "ssl"

local pki

local function sparams()
  return { mode = "server", protocol = "any", key = pki.server_key, certificate = pki.server }
end

local function cparams()
  return { mode = "client", protocol = "any", cafile = pki.ca, verify = "peer" }
end

describe("non-blocking LuaSec connections", function()
  setup(function() pki = helpers.pki() end)

  it("serve many clients from one select loop", function()
    local N, LINES = 20, 50
    local listener = assert(socket.bind("127.0.0.1", 0))
    local _, port = listener:getsockname()
    listener:settimeout(0)
    local sctx = assert(ssl.newcontext(sparams()))
    local cctx = assert(ssl.newcontext(cparams()))

    -- each peer is a coroutine that yields "read"/"write" when it must wait
    local peers = {}
    local function add(conn, fn)
      peers[#peers + 1] = { conn = conn, co = coroutine.create(fn), want = nil }
    end
    local function wait_for(err)
      coroutine.yield(err == "wantwrite" and "write" or "read")
    end
    local function handshake(conn)
      while true do
        local ok, err = conn:dohandshake()
        if ok then return end
        assert(err == "wantread" or err == "wantwrite", err)
        wait_for(err)
      end
    end
    local function send(conn, data)
      local i = 1
      while i <= #data do
        local last, err, partial = conn:send(data, i)
        i = (last or partial) + 1
        if not last then assert(err == "wantwrite" or err == "wantread", err); wait_for(err) end
      end
    end
    local function receive(conn)
      local part = ""
      while true do
        local line, err, partial = conn:receive("*l", part)
        if line then return line end
        assert(err == "wantread" or err == "wantwrite", err)
        part = partial
        wait_for(err)
      end
    end

    local results = {}
    for i = 1, N do
      local c = socket.tcp()
      c:settimeout(5)
      assert(c:connect("127.0.0.1", port))
      local conn = assert(ssl.wrap(c, cctx))
      conn:settimeout(0)
      add(conn, function()
        handshake(conn)
        local ok = 0
        for j = 1, LINES do
          local msg = ("client %d line %d"):format(i, j)
          send(conn, msg .. "\n")
          if receive(conn) == msg:upper() then ok = ok + 1 end
        end
        results[i] = ok
        conn:close()
      end)
    end

    local served = 0
    local deadline = socket.gettime() + 30
    while socket.gettime() < deadline do
      local s = listener:accept()
      if s then
        local conn = assert(ssl.wrap(s, sctx))
        conn:settimeout(0)
        add(conn, function()
          handshake(conn)
          for _ = 1, LINES do send(conn, receive(conn):upper() .. "\n") end
          served = served + 1
          conn:close()
        end)
      end
      local readers, writers = { listener }, {}
      local live = {}
      for _, p in ipairs(peers) do
        if coroutine.status(p.co) ~= "dead" then
          if not p.want or (p.want == "read" and p.conn:dirty()) or p.ready then
            p.ready = false
            local ok, want = coroutine.resume(p.co)
            assert(ok, want)
            p.want = want
          end
          if coroutine.status(p.co) ~= "dead" then
            live[#live + 1] = p
            if p.want == "write" then writers[#writers + 1] = p.conn
            else readers[#readers + 1] = p.conn end
          end
        end
      end
      peers = live
      if served == N and #peers == 0 then break end
      local r, w = socket.select(readers, writers, 0.05)
      for _, p in ipairs(peers) do
        if r[p.conn] or w[p.conn] then p.ready = true end
      end
    end
    listener:close()
    assert.equal(N, served)
    for i = 1, N do assert.equal(LINES, results[i]) end
  end)

  it("run under copas", function()
    -- copas 1.1.7 understands "timeout"; LuaSec connections say wantread/wantwrite
    local adapt = require("fixtures.load_lib").copas_adapter

    local N = 10
    local done, echoed = 0, 0
    local listener = assert(socket.bind("127.0.0.1", 0))
    local _, port = listener:getsockname()
    copas.addserver(listener, function(skt)
      local conn = assert(ssl.wrap(skt, sparams()))
      conn:settimeout(0)
      local a = adapt(conn)
      assert(a:handshake())
      while true do
        local line = copas.receive(a)
        if not line then break end
        copas.send(a, line:reverse() .. "\n")
      end
      conn:close()
    end)
    for i = 1, N do
      copas.addthread(function()
        local c = socket.tcp()
        copas.connect(c, "127.0.0.1", port)
        local conn = assert(ssl.wrap(c, cparams()))
        conn:settimeout(0)
        local a = adapt(conn)
        assert(a:handshake())
        for j = 1, 20 do
          local msg = ("copas %d/%d"):format(i, j)
          copas.send(a, msg .. "\n")
          if copas.receive(a) == msg:reverse() then echoed = echoed + 1 end
        end
        conn:close()
        done = done + 1
      end)
    end
    local deadline = socket.gettime() + 30
    while done < N and socket.gettime() < deadline do copas.step(0.05) end
    if copas.removeserver then copas.removeserver(listener) else listener:close() end
    assert.equal(N, done)
    assert.equal(N * 20, echoed)
  end)
end)
