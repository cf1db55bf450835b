-- The examples in examples/ run as documented.
local helpers = require "helpers"

describe("examples", function()
  it("libtls client and server talk to each other", function()
    local dir = helpers.certs()
    local port = helpers.free_port()
    local server = helpers.spawn(("timeout 20 %s examples/libtls_server.lua %d %s/valid-chain.pem %s/valid.key")
      :format(helpers.luajit(), port, dir, dir))
    local ok, out
    pcall(helpers.wait_port, port)
    -- wait_port's probe was the server's first client; this is the second
    for _ = 1, 20 do
      ok, out = helpers.sh(("timeout 20 %s examples/libtls_client.lua localhost %d %s/root.pem ping")
        :format(helpers.luajit(), port, dir))
      if ok then break end
      require("socket").sleep(0.1)
    end
    require("socket").sleep(0.1)
    local sout = server:output()
    server:stop()
    assert.is_true(ok, out)
    assert.truthy(out:find("connected: TLSv1.3", 1, true), out)
    assert.truthy(out:find("echo: ping quit", 1, true), out)
    assert.truthy(sout:find("ALPN echo/1", 1, true), sout)
  end)

  it("net client and server talk to each other", function()
    local dir = helpers.certs()
    local port = helpers.free_port()
    local server = helpers.spawn(("timeout 20 %s examples/net_server.lua %d %s/valid.pem %s/valid.key %s/inter.pem")
      :format(helpers.luajit(), port, dir, dir, dir))
    local ok, out
    for _ = 1, 50 do
      ok, out = helpers.sh(("timeout 20 %s examples/net_client.lua localhost %d %s/root.pem")
        :format(helpers.luajit(), port, dir))
      if out:find("reply:", 1, true) then break end
      require("socket").sleep(0.1)
    end
    require("socket").sleep(0.1)
    local sout = server:output()
    server:stop()
    assert.is_true(ok, out)
    assert.truthy(out:find("encrypted: TLSv1.3", 1, true), out)
    assert.truthy(out:find("reply: HELLO FROM THE NET FACE", 1, true), out)
    assert.truthy(out:find("reply: QUIT", 1, true), out)
    assert.truthy(sout:find("client 127.0.0.1:%d+, TLSv1.3"), sout)
  end)

  it("copas TLS over the transport path", function()
    local dir = helpers.certs()
    local ok, out = helpers.sh(("timeout 30 %s examples/copas_tls.lua %s/valid-chain.pem %s/valid.key %s/root.pem 5")
      :format(helpers.luajit(), dir, dir, dir))
    assert.is_true(ok, out)
    assert.truthy(out:find("HELLO FROM CLIENT 3", 1, true), out)
    assert.truthy(out:find("5 clients served", 1, true), out)
  end)

  it("TLS inside TLS through an HTTPS proxy", function()
    local dir = helpers.certs()
    helpers.with_server(("openssl s_server -quiet -rev -accept 127.0.0.1:PORT -cert %s/valid.pem -key %s/valid.key " ..
      "-cert_chain %s/inter.pem"):format(dir, dir, dir), function(target)
      local pport = helpers.free_port()
      local proxy = helpers.spawn(("%s spec/fixtures/tls_connect_proxy.lua %d %s"):format(helpers.luajit(), pport, dir))
      local ok, out
      for _ = 1, 50 do
        ok, out = helpers.sh(("timeout 20 %s examples/tls_in_tls.lua %d localhost %d %s/root.pem")
          :format(helpers.luajit(), pport, target, dir))
        if ok then break end
        require("socket").sleep(0.1)
      end
      proxy:stop()
      assert.is_true(ok, out)
      assert.truthy(out:find("outer: TLSv1.3, inner: TLSv1.3", 1, true), out)
      assert.truthy(out:find("reply: snoisses SLT owt hguorht olleh", 1, true), out)
    end)
  end)
end)
