-- ssl.https: LuaSec's request (string and table forms) and tcp, verifying by
-- default, following redirects between https URLs, and tunnelling through an
-- HTTP proxy with CONNECT.  The server is spec/fixtures/https_server.lua
-- (ljssl), the proxy spec/fixtures/connect_proxy.lua; both on loopback.
local ltn12 = require "ltn12"
local helpers = require "helpers"
local ssl = require "ssl"
local https = require "ssl.https"

local dir

local function with_https_server(cert, fn)
  local port = helpers.free_port()
  local server = helpers.spawn(("%s spec/fixtures/https_server.lua %d %s/%s-chain.pem %s/%s.key")
    :format(helpers.luajit(), port, dir, cert, dir, cert))
  local ok, err = pcall(function()
    helpers.wait_port(port)
    fn(port)
  end)
  server:stop()
  if not ok then error(err, 0) end
end

describe("ssl.https", function()
  setup(function()
    dir = helpers.certs()
    assert(ssl.set_system_ca(dir .. "/root.pem"))
  end)
  teardown(function() ssl.set_system_ca(nil) end)

  it("fetches with the string form, verifying chain and host", function()
    with_https_server("valid", function(port)
      local body, code, headers, status = https.request(("https://localhost:%d/"):format(port))
      assert.equal("hello https", body)
      assert.equal(200, code)
      assert.equal("11", headers["content-length"])
      assert.equal("HTTP/1.1 200 OK", status)
    end)
  end)

  it("posts a body with the string form", function()
    with_https_server("valid", function(port)
      local body, code = https.request(("https://localhost:%d/echo"):format(port), "a=1&b=2")
      assert.equal(200, code)
      assert.equal("a=1&b=2", body)
    end)
  end)

  it("takes the table form with a sink and TLS parameters", function()
    with_https_server("valid", function(port)
      local out = {}
      local one, code = https.request({
        url = ("https://localhost:%d/"):format(port),
        sink = ltn12.sink.table(out),
        cafile = dir .. "/root.pem",             -- instead of the system store
        protocol = "tlsv1_3",
      })
      assert.equal(1, one)
      assert.equal(200, code)
      assert.equal("hello https", table.concat(out))
    end)
  end)

  it("follows a redirect between https URLs", function()
    with_https_server("valid", function(port)
      local body, code = https.request(("https://localhost:%d/redirect"):format(port))
      assert.equal(200, code)
      assert.equal("redirected", body)
      local _, code2, headers = https.request({ url = ("https://localhost:%d/redirect"):format(port),
                                                redirect = false, sink = ltn12.sink.null() })
      assert.equal(302, code2)
      assert.truthy(headers.location:find("/target", 1, true))
    end)
  end)

  it("goes through an HTTP proxy with CONNECT, still verifying the origin", function()
    with_https_server("valid", function(port)
      local pport = helpers.free_port()
      local proxy = helpers.spawn(("%s spec/fixtures/connect_proxy.lua %d"):format(helpers.luajit(), pport))
      local ok, err = pcall(function()
        helpers.wait_port(pport)
        local body, code = https.request({
          url = ("https://localhost:%d/"):format(port),
          proxy = ("http://127.0.0.1:%d"):format(pport),
          sink = ltn12.sink.table({}),
        })
        assert.equal(1, body)
        assert.equal(200, code)
        local http = require "socket.http"
        http.PROXY = ("http://127.0.0.1:%d"):format(pport)
        local text, code2 = https.request(("https://localhost:%d/"):format(port))
        http.PROXY = nil
        assert.equal(200, code2)
        assert.equal("hello https", text)
      end)
      require("socket").sleep(0.1)
      local out = proxy:output()
      proxy:stop()
      assert(ok, err)
      local _, tunnels = out:gsub("CONNECT localhost:" .. port, "")
      assert.equal(2, tunnels)
    end)
  end)

  it("reports an untrusted, expired or misnamed server, and opts out with verify = none", function()
    with_https_server("wronghost", function(port)
      assert.same({ nil, "host name mismatch: the certificate is not valid for localhost" },
                  { https.request(("https://localhost:%d/"):format(port)) })
      local body = https.request({ url = ("https://localhost:%d/"):format(port), verify = "none",
                                   sink = ltn12.sink.null() })
      assert.equal(1, body)
    end)
    with_https_server("expired", function(port)
      assert.same({ nil, "certificate verify failed: certificate has expired" },
                  { https.request(("https://localhost:%d/"):format(port)) })
    end)
    with_https_server("unknownca", function(port)
      assert.same({ nil, "certificate verify failed: self-signed certificate in certificate chain" },
                  { https.request(("https://localhost:%d/"):format(port)) })
    end)
  end)

  it("refuses a create function, as LuaSec", function()
    assert.same({ nil, "create function not permitted" },
                { https.request({ url = "https://localhost/", create = function() end }) })
  end)

  it("provides tcp() for LuaSocket's own http", function()
    with_https_server("valid", function(port)
      local http = require "socket.http"
      local out = {}
      local one, code = http.request({ url = ("https://localhost:%d/"):format(port),
                                       create = https.tcp({}), sink = ltn12.sink.table(out) })
      assert.equal(1, one)
      assert.equal(200, code)
      assert.equal("hello https", table.concat(out))
    end)
  end)
end)
