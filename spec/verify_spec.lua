-- The certificate set (spec/fixtures/make_certs.sh) against the secure
-- defaults: each server certificate accepted or rejected, with its reason, by
-- ssl.connect, ssl.https and ssl.wrap + verify.  Servers are openssl s_server
-- and gnutls-serv on loopback; the "system" store is the test root, chosen with
-- ssl.set_system_ca.
local socket = require "socket"
local helpers = require "helpers"
local ssl = require "ssl"
local https = require "ssl.https"

local dir

local with_server = helpers.with_server

local function s_server(cert, chain)
  return ("openssl s_server -quiet -www -accept 127.0.0.1:PORT -cert %s/%s.pem -key %s/%s.key %s")
    :format(dir, cert, dir, cert, chain and ("-cert_chain %s/inter.pem"):format(dir) or "")
end

local function wrap_verify(port, host, extra)
  local tcp = socket.tcp()
  tcp:settimeout(5)
  assert(tcp:connect("127.0.0.1", port))
  local params = { mode = "client", protocol = "any", verify = "peer",
                   cafile = dir .. "/root.pem", hostname = host }
  for k, v in pairs(extra or {}) do params[k] = v end
  local conn = assert(ssl.wrap(tcp, params))
  conn:settimeout(5)
  local ok, err = conn:dohandshake()
  conn:close()
  return ok, err
end

-- name, server cert, send intermediate, host to ask for, expected reason (nil: accepted)
local CASES = {
  { "valid", "valid", true, "localhost", nil },
  { "valid, by IP", "valid", true, "127.0.0.1", nil },
  { "missing intermediate", "valid", false, "localhost",
    "certificate verify failed: unable to get local issuer certificate" },
  { "expired", "expired", true, "localhost", "certificate verify failed: certificate has expired" },
  { "not yet valid", "notyet", true, "localhost", "certificate verify failed: certificate is not yet valid" },
  { "self-signed", "selfsigned", false, "localhost", "certificate verify failed: self-signed certificate" },
  { "unknown CA", "unknownca", false, "localhost",
    "certificate verify failed: unable to get local issuer certificate" },
  { "wrong host", "wronghost", true, "localhost",
    "host name mismatch: the certificate is not valid for localhost" },
  { "IP SAN", "ipsan", true, "127.0.0.1", nil },
  { "IP SAN, asked by name", "ipsan", true, "localhost",
    "host name mismatch: the certificate is not valid for localhost" },
}

describe("secure defaults against the certificate set", function()
  setup(function()
    dir = helpers.certs()
    assert(ssl.set_system_ca(dir .. "/root.pem"))
  end)
  teardown(function() ssl.set_system_ca(nil) end)

  for _, case in ipairs(CASES) do
    local name, cert, chain, host, reason = unpack(case)
    it(name .. ": " .. (reason or "accepted"), function()
      with_server(s_server(cert, chain), function(port)
        -- ssl.connect: system store + host name by default
        local conn, err = ssl.connect(host, port)
        if reason then
          assert.is_nil(conn)
          assert.equal(reason, err)
        else
          assert.is_not_nil(conn, err)
          assert.is_true(conn:getpeerverification())
          conn:close()
        end
        -- ssl.https
        local body, code = https.request(("https://%s:%d/"):format(host, port))
        if reason then
          assert.is_nil(body)
          assert.equal(reason, code)
        else
          assert.equal(200, code)
          assert.truthy(body:find("s_server", 1, true), body)
        end
        -- ssl.wrap + verify + hostname: LuaSec's plain reason
        local ok, werr = wrap_verify(port, host)
        if reason then
          assert.is_false(ok)
          assert.equal("certificate verify failed", werr)
        else
          assert.is_true(ok, werr)
        end
      end)
    end)
  end

  it("accepts anything with verify = none, and says so", function()
    with_server(s_server("expired", false), function(port)
      local conn, err = ssl.connect("localhost", port, { verify = "none" })
      assert.is_not_nil(conn, err)
      local ok, why = conn:getpeerverification()
      assert.is_false(ok)
      assert.is_string(why)
      conn:close()
      local body, code = https.request({ url = ("https://localhost:%d/"):format(port),
                                         verify = "none", sink = function() return 1 end })
      assert.equal(1, body)
      assert.equal(200, code)
    end)
  end)

  it("rejects a revoked certificate when CRLs are checked", function()
    with_server(s_server("revoked", true), function(port)
      local flags = { cafile = dir .. "/root-with-crls.pem", verifyext = "crl_check_chain" }
      local conn, err = ssl.connect("localhost", port, flags)
      assert.is_nil(conn)
      assert.equal("certificate verify failed: certificate revoked", err)
      -- without CRL checking the same certificate passes
      conn, err = ssl.connect("localhost", port, { cafile = dir .. "/root.pem" })
      assert.is_not_nil(conn, err)
      conn:close()
      local ok, werr = wrap_verify(port, "localhost", flags)
      assert.is_false(ok)
      assert.equal("certificate verify failed", werr)
    end)
  end)

  it("reports the same reasons against gnutls-serv", function()
    local cmd = ("gnutls-serv --http -p PORT --x509certfile %s/%%s-chain.pem --x509keyfile %s/%%s.key")
      :format(dir, dir)
    with_server(cmd:format("expired", "expired"), function(port)
      assert.same({ nil, "certificate verify failed: certificate has expired" },
                  { ssl.connect("localhost", port) })
    end)
    with_server(cmd:format("valid", "valid"), function(port)
      local conn, err = ssl.connect("localhost", port)
      assert.is_not_nil(conn, err)
      conn:close()
    end)
  end)

  it("explains a refused connection and a protocol mismatch", function()
    local port = helpers.free_port()
    assert.same({ nil, "connection refused" }, { ssl.connect("127.0.0.1", port) })
    with_server(s_server("valid", true) .. " -tls1_2", function(p)
      local conn, err = ssl.connect("localhost", p, { protocol = "tlsv1_3" })
      assert.is_nil(conn)
      assert.equal("tlsv1 alert protocol version", err)
    end)
  end)
end)

describe("the system CA store", function()
  it("finds the distribution's bundle, or says where it looked", function()
    local path, err = ssl.find_system_ca()
    if path then
      assert.truthy(io.open(path), path)
    else
      assert.truthy(err:find("/etc/ssl/certs/ca-certificates.crt", 1, true), err)
    end
  end)

  it("can be replaced, disabled and restored", function()
    local dir2 = helpers.certs()
    assert.is_true(ssl.set_system_ca(dir2 .. "/root.pem"))
    assert.equal(dir2 .. "/root.pem", ssl.get_system_ca())
    assert.is_true(ssl.set_system_ca(false))
    local none, why = ssl.get_system_ca()
    assert.is_nil(none)
    assert.equal("the system CA store is disabled", why)
    local conn, err = ssl.connect("127.0.0.1", helpers.free_port())
    assert.is_nil(conn)
    assert.truthy(err:find("system CA store is disabled", 1, true), err)
    assert.same({ nil, "cannot read CA bundle /nonexistent.pem" }, { ssl.set_system_ca("/nonexistent.pem") })
    assert.is_true(ssl.set_system_ca(nil))
    local env = os.getenv("SSL_CERT_FILE")
    assert.equal(env ~= "" and env or ssl.find_system_ca(), ssl.get_system_ca())
  end)

  it("honours SSL_CERT_FILE and SSL_CERT_DIR, as OpenSSL's tools do", function()
    local certs = helpers.certs()
    with_server(("openssl s_server -quiet -www -accept 127.0.0.1:PORT -cert %s/valid.pem " ..
      "-key %s/valid.key -cert_chain %s/inter.pem"):format(certs, certs, certs), function(port)
      local script = ([[
        package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
        local ssl = require "ssl"
        local conn, err = ssl.connect("localhost", %d)
        print(conn and "accepted" or err)
      ]]):format(port)
      local file = os.tmpname()
      helpers.writefile(file, script)
      local ok, out = helpers.sh(("SSL_CERT_FILE=%s/root.pem %s %s"):format(certs, helpers.luajit(), file))
      assert.is_true(ok, out)
      assert.equal("accepted", out:match("%S+"))
      ok, out = helpers.sh(("SSL_CERT_FILE=%s/other.pem %s %s"):format(certs, helpers.luajit(), file))
      assert.truthy(out:find("unable to get local issuer certificate", 1, true), out)
      -- SSL_CERT_DIR: a hashed directory holding the root
      local hashed = certs .. "/hashed"
      assert(helpers.sh(("mkdir -p %s && cp %s/root.pem %s/ && openssl rehash %s"):format(
        hashed, certs, hashed, hashed)))
      ok, out = helpers.sh(("env -u SSL_CERT_FILE SSL_CERT_DIR=%s %s %s"):format(hashed, helpers.luajit(), file))
      os.remove(file)
      assert.is_true(ok, out)
      assert.equal("accepted", out:match("%S+"))
    end)
  end)
end)
