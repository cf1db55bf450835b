-- TLS over transports other than a socket fd: a pair of functions, another
-- ljssl connection (TLS inside TLS through an HTTPS CONNECT proxy), and copas
-- sockets (100 concurrent clients, server and clients on the transport path).
local socket = require "socket"
local copas = require "copas"
local helpers = require "helpers"
local ssl = require "ssl"

local dir

local function client(extra)
  local p = { mode = "client", protocol = "any", cafile = dir .. "/root.pem", verify = "peer",
              hostname = "localhost" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

local function s_server(extra)
  return ("openssl s_server -quiet -rev -accept 127.0.0.1:PORT -cert %s/valid.pem -key %s/valid.key " ..
          "-cert_chain %s/inter.pem %s"):format(dir, dir, dir, extra or "")
end

describe("transports", function()
  setup(function() dir = helpers.certs() end)

  it("runs over a pair of functions, with the whole connection API", function()
    helpers.with_server(s_server("-alpn h2"), function(port)
      local tcp = socket.tcp()
      tcp:settimeout(5)
      assert(tcp:connect("127.0.0.1", port))
      local sent = 0
      local t = ssl.transport(function(d) sent = sent + #d; return tcp:send(d) end,
                              function(n) return tcp:receive(n) end,
                              function() tcp:close() end)
      local conn = assert(ssl.wrap(t, client({ alpn = "h2" })))
      assert.is_true(conn:dohandshake())
      assert.equal(-1, conn:getfd())
      assert.equal("TLSv1.3", conn:info("protocol"))
      assert.equal("h2", conn:getalpn())
      assert.is_true(conn:getpeerverification())
      assert.equal(2, #conn:getpeerchain())
      conn:send("line one\nline two\n")
      assert.equal("eno enil", conn:receive())
      assert.equal("owt enil", conn:receive("*l"))
      assert.is_true(sent > 0)
      conn:close()
    end)
  end)

  it("verifies the host name over a transport", function()
    helpers.with_server(s_server(), function(port)
      local tcp = socket.tcp()
      tcp:settimeout(5)
      assert(tcp:connect("127.0.0.1", port))
      local t = ssl.transport(function(d) return tcp:send(d) end, function(n) return tcp:receive(n) end)
      local conn = assert(ssl.wrap(t, client({ hostname = "not-this-host.test" })))
      assert.same({ false, "certificate verify failed" }, { conn:dohandshake() })
      conn:close()
      tcp:close()
    end)
  end)

  it("runs TLS inside TLS through an HTTPS CONNECT proxy, both hops verified", function()
    helpers.with_server(s_server(), function(target)
      local pport = helpers.free_port()
      local proxy = helpers.spawn(("%s spec/fixtures/tls_connect_proxy.lua %d %s"):format(
        helpers.luajit(), pport, dir))
      local ok, err = pcall(function()
        local tcp
        for _ = 1, 50 do
          tcp = socket.tcp()
          tcp:settimeout(5)
          if tcp:connect("127.0.0.1", pport) then break end
          tcp:close()
          socket.sleep(0.1)
        end
        -- hop 1: TLS to the proxy
        local outer = assert(ssl.wrap(tcp, client()))
        outer:settimeout(5)
        assert.is_true(outer:dohandshake())
        assert.is_true(outer:getpeerverification())
        outer:send(("CONNECT localhost:%d HTTP/1.1\r\nHost: localhost:%d\r\n\r\n"):format(target, target))
        assert.equal("HTTP/1.1 200 Connection established", outer:receive())
        assert.equal("", outer:receive())
        -- hop 2: TLS to the target, inside hop 1
        local inner = assert(ssl.wrap(outer, client()))
        assert.is_true(inner:dohandshake())
        assert.is_true(inner:getpeerverification())
        inner:send("deep inside\n")
        assert.equal("edisni peed", inner:receive())
        local r, s = outer:getstats()
        assert.is_true(r > 0 and s > 0)          -- the inner bytes went through the outer
        inner:close()
      end)
      socket.sleep(0.1)
      local out = proxy:output()
      proxy:stop()
      assert(ok, err)
      assert.truthy(out:find("CONNECT localhost:" .. target .. " over TLSv1.3", 1, true), out)
    end)
  end)

  it("gives what is available with receiveany", function()
    helpers.with_server(s_server(), function(port)
      local tcp = socket.tcp()
      tcp:settimeout(5)
      assert(tcp:connect("127.0.0.1", port))
      local conn = assert(ssl.wrap(tcp, client()))
      conn:settimeout(5)
      assert.is_true(conn:dohandshake())
      conn:send("abcdef\n")
      local got = conn:receiveany(3)
      assert.equal("fed", got)
      assert.equal("cba\n", conn:receiveany(100))
      assert.has_error(function() conn:receiveany(0) end)
      conn:close()
    end)
  end)

  it("serves 100 concurrent copas clients, both ends on copas sockets", function()
    local sparams = { mode = "server", protocol = "any", key = dir .. "/valid.key",
                      certificate = dir .. "/valid-chain.pem" }
    local listener = assert(socket.bind("127.0.0.1", 0, 256))
    local _, port = listener:getsockname()
    copas.addserver(listener, function(skt)
      local conn = assert(ssl.wrap(copas.wrap(skt), sparams))
      if not conn:dohandshake() then return end
      while true do
        local line = conn:receive()
        if not line then break end
        conn:send(line:upper() .. "\n")
      end
      conn:close()
    end)
    local N, done, failures = 100, 0, {}
    local cctx = assert(ssl.newcontext(client()))
    for i = 1, N do
      copas.addthread(function()
        local raw = socket.tcp()
        copas.connect(raw, "127.0.0.1", port)
        local conn = assert(ssl.wrap(copas.wrap(raw), cctx))
        conn:sni("localhost")
        local ok, err = conn:dohandshake()
        if not ok then failures[#failures + 1] = err; raw:close(); return end
        local msg = ("client %d %s"):format(i, ("z"):rep(i * 10))
        conn:send(msg .. "\n")
        if conn:receive() == msg:upper() then done = done + 1
        else failures[#failures + 1] = "bad echo " .. i end
        conn:close()
        raw:close()
      end)
    end
    local deadline = socket.gettime() + 60
    while done + #failures < N and socket.gettime() < deadline do copas.step(0.05) end
    listener:close()
    assert.same({}, failures)
    assert.equal(N, done)
  end)

  it("never prompts for a pass phrase in ssl.ngx: an encrypted key needs its password", function()
    local pki = helpers.pki()
    -- the pass phrase waits on stdin: OpenSSL's prompt would read it and succeed
    local script = ([[
      local ngx_ssl = require "ssl.ngx"
      local t = { send = function() end, receive = function() return nil, "closed" end }
      print(select(2, ngx_ssl.wrap(t, { certificate = %q, key = %q, cafile = %q }, "localhost")))
      print(select(2, ngx_ssl.wrap(t, { certificate = %q, key = %q, cafile = %q, password = "secret" }, "localhost")))
    ]]):format(pki.server, pki.key_encrypted, pki.ca, pki.server, pki.key_encrypted, pki.ca)
    local ok, out = helpers.sh(("echo secret | LUA_PATH='ffi/?.lua;ffi/?/init.lua;;' timeout 10 %s -e %q")
      :format(helpers.luajit(), script))
    assert.is_true(ok, out)
    local first, second = out:match("^([^\n]*)\n([^\n]*)")
    assert.equal("error loading private key (interrupted or cancelled)", first)
    assert.equal("closed", second)          -- the key loaded; the transport then closed
  end)
end)
