-- ssl.newcontext and ssl.context: every LuaSec 1.3.2 key, its error strings,
-- and bad input that must give an error, never a crash.
local helpers = require "helpers"
local ssl = require "ssl"
local context = require "ssl.context"

describe("ssl.newcontext", function()
  local pki
  setup(function() pki = helpers.pki() end)

  local function server(extra)
    local p = { mode = "server", protocol = "any", key = pki.server_key, certificate = pki.server }
    for k, v in pairs(extra or {}) do p[k] = v end
    return ssl.newcontext(p)
  end

  it("makes a context that is a userdata with LuaSec's tostring", function()
    local ctx = assert(server())
    assert.equal("userdata", type(ctx))
    assert.truthy(tostring(ctx):match("^SSL context: 0x%x+$"))
    assert.equal("function", type(ctx.setverifyext))
  end)

  it("accepts every protocol name LuaSec knows", function()
    for _, p in ipairs({ "any", "sslv23", "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }) do
      assert.is_not_nil(ssl.newcontext({ mode = "client", protocol = p }), p)
    end
  end)

  it("rejects unknown protocols with LuaSec's message", function()
    local ctx, err = ssl.newcontext({ mode = "client", protocol = "sslv3" })
    assert.is_nil(ctx)
    assert.equal("invalid protocol (sslv3)", err)
  end)

  it("raises for a missing protocol, as LuaSec", function()
    assert.has_error(function() ssl.newcontext({ mode = "client" }) end,
      "bad argument #1 to 'create' (string expected, got no value)")
  end)

  it("rejects an invalid mode (LuaSec accepted it)", function()
    local ctx, err = ssl.newcontext({ mode = "sideways", protocol = "any" })
    assert.is_nil(ctx)
    assert.equal("invalid mode (sideways)", err)
  end)

  it("explains a missing key file", function()
    local ctx, err = server({ key = "/nonexistent/key.pem" })
    assert.is_nil(ctx)
    assert.equal("error loading private key (No such file or directory)", err)
  end)

  it("explains a missing certificate file", function()
    local ctx, err = server({ certificate = "/nonexistent/cert.pem" })
    assert.is_nil(ctx)
    assert.equal("error loading certificate (No such file or directory)", err)
  end)

  it("explains a file that is not PEM", function()
    local ctx, err = server({ certificate = pki.dir .. "/ext.cnf" })
    assert.is_nil(ctx)
    assert.equal("error loading certificate (no start line)", err)
    ctx, err = server({ key = pki.dir .. "/ext.cnf" })
    assert.is_nil(ctx)
    assert.truthy(err:match("^error loading private key %(.+%)$"), err)
  end)

  it("rejects a key that does not match the certificate", function()
    local ctx, err = server({ key = pki.client_key })
    assert.is_nil(ctx)
    assert.equal("private key does not match public key", err)
  end)

  describe("password", function()
    it("opens an encrypted key with a string", function()
      assert.is_not_nil(server({ key = pki.key_encrypted, password = "secret" }))
    end)

    it("opens an encrypted key with a function, called only when needed", function()
      local calls = 0
      local function pw() calls = calls + 1; return "secret" end
      assert.is_not_nil(server({ key = pki.key_encrypted, password = pw }))
      assert.equal(1, calls)
      assert.is_not_nil(server({ key = pki.server_key, password = pw }))
      assert.equal(1, calls)
    end)

    it("fails clearly with a wrong password", function()
      local ctx, err = server({ key = pki.key_encrypted, password = "wrong" })
      assert.is_nil(ctx)
      assert.truthy(err:match("^error loading private key %(.+%)$"), err)
    end)

    -- with no password at all OpenSSL prompts, as in LuaSec (spec/passphrase_spec.lua)
    it("fails instead of prompting with password = false", function()
      local ctx, err = server({ key = pki.key_encrypted, password = false })
      assert.is_nil(ctx)
      assert.truthy(err:match("^error loading private key"), err)
      assert.is_not_nil(server({ key = pki.server_key, password = false }))
    end)

    it("rejects other types", function()
      local ctx, err = server({ password = 42 })
      assert.is_nil(ctx)
      assert.equal("invalid password type", err)
    end)
  end)

  it("loads several certificate/key pairs", function()
    local rsa_key, rsa_cert = pki.dir .. "/rsa.key", pki.dir .. "/rsa.pem"
    assert(helpers.sh(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s " ..
      "-days 2 -subj /CN=localhost"):format(rsa_key, rsa_cert)))
    local ctx = ssl.newcontext({ mode = "server", protocol = "any", certificates = {
      { certificate = pki.server, key = pki.server_key },
      { certificate = rsa_cert, key = rsa_key },
    } })
    assert.is_not_nil(ctx)
  end)

  it("reports bad CA locations", function()
    local ctx, err = ssl.newcontext({ mode = "client", protocol = "any", cafile = "/nonexistent" })
    assert.is_nil(ctx)
    assert.truthy(err:match("^error loading CA locations %(.+%)$"), err)
  end)

  it("reports bad cipher lists and suites", function()
    local ctx, err = server({ ciphers = "NOT-A-CIPHER" })
    assert.is_nil(ctx)
    assert.equal("error setting cipher list (no cipher match)", err)
    ctx, err = server({ ciphersuites = "TLS_NOT_A_SUITE" })
    assert.is_nil(ctx)
    assert.truthy(err:match("^error setting cipher list %("), err)
    assert.is_not_nil(server({ ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256",
                               ciphersuites = "TLS_AES_128_GCM_SHA256" }))
  end)

  it("takes verify as a string or a list, and rejects unknown names", function()
    assert.is_not_nil(server({ verify = "peer" }))
    assert.is_not_nil(server({ verify = { "peer", "fail_if_no_peer_cert", "client_once" } }))
    local ctx, err = server({ verify = { "peer", "sometimes" } })
    assert.is_nil(ctx)
    assert.equal("invalid verify option (sometimes)", err)
  end)

  it("knows every option name of the installed OpenSSL, including zero-valued ones", function()
    local n = 0
    for name in pairs(ssl.config.options) do
      n = n + 1
      assert.is_not_nil(server({ options = name }), name)
    end
    assert.is_true(n >= 50)
    for _, name in ipairs({ "all", "no_sslv2", "no_sslv3", "no_tlsv1", "cipher_server_preference",
                            "single_dh_use", "no_ticket", "no_compression" }) do
      assert.is_true(ssl.config.options[name], name)
    end
    local ctx, err = server({ options = { "all", "no_such_option" } })
    assert.is_nil(ctx)
    assert.equal("invalid option (no_such_option)", err)
  end)

  it("applies depth and checks its type", function()
    assert.is_not_nil(server({ depth = 3 }))
    assert.has_error(function() server({ depth = "deep" }) end)
  end)

  -- the handshakes that call it: spec/dhparam_spec.lua
  it("takes DH parameters from a function, asked for only during handshakes", function()
    local seen
    local ctx = server({ dhparam = function(export, bits) seen = { export, bits } end })
    assert.is_not_nil(ctx)
    assert.is_nil(seen)                                   -- not called by newcontext
    -- what it returns is seen by the handshake only, as in LuaSec
    assert.is_not_nil(server({ dhparam = function() return "not pem" end }))
    local bad, err = server({ dhparam = "file.pem" })
    assert.is_nil(bad)
    assert.equal("invalid DH parameter type", err)
  end)

  it("takes a curve or a curves list and reports unknown ones", function()
    assert.is_not_nil(server({ curve = "P-256" }))
    assert.is_not_nil(server({ curveslist = "X25519:P-256:P-384" }))
    local ctx, err = server({ curve = "P-256:P-384" })
    assert.is_nil(ctx)
    assert.equal("elliptic curve 'P-256:P-384' not supported", err)
    ctx, err = server({ curveslist = "X25519:nope" })
    assert.is_nil(ctx)
    assert.equal('unknown elliptic curve in "X25519:nope"', err)
    assert.is_true(ssl.config.curves["P-256"])
    assert.is_true(ssl.config.curves.X25519)
  end)

  it("takes verifyext names and rejects others", function()
    assert.is_not_nil(server({ verifyext = { "lsec_continue", "lsec_ignore_purpose" } }))
    assert.is_not_nil(server({ verifyext = { "crl_check", "crl_check_chain" } }))
    local ctx, err = server({ verifyext = "lsec_maybe" })
    assert.is_nil(ctx)
    assert.equal("invalid verify option (lsec_maybe)", err)
  end)

  it("checks ALPN lists as LuaSec", function()
    assert.is_not_nil(server({ alpn = { "h2", "http/1.1" } }))
    assert.is_not_nil(server({ alpn = function() return "h2" end }))
    assert.is_not_nil(ssl.newcontext({ mode = "client", protocol = "any", alpn = "h2" }))
    local cases = {
      { { "" }, "invalid ALPN name (empty string)" },
      { { ("x"):rep(256) }, "invalid ALPN name (length > 255)" },
      { {}, "invalid ALPN list (empty)" },
      { 42, "invalid ALPN parameter" },
    }
    for _, case in ipairs(cases) do
      local ctx, err = ssl.newcontext({ mode = "client", protocol = "any", alpn = case[1] })
      assert.is_nil(ctx)
      assert.equal(case[2], err)
    end
    local ctx, err = server({ alpn = "h2" })
    assert.is_nil(ctx)
    assert.equal("invalid ALPN parameter", err)
  end)

  it("checks PSK configurations", function()
    assert.is_not_nil(ssl.newcontext({ mode = "client", protocol = "any",
                                       psk = function() return "id", "key" end }))
    assert.is_not_nil(ssl.newcontext({ mode = "server", protocol = "any",
                                       psk = { hint = "h", callback = function() return "k" end } }))
    local ctx, err = ssl.newcontext({ mode = "server", protocol = "any", psk = { hint = 1 } })
    assert.is_nil(ctx)
    assert.equal("invalid PSK configuration", err)
    ctx, err = ssl.newcontext({ mode = "client", protocol = "any", psk = "secret" })
    assert.is_nil(ctx)
    assert.equal("invalid PSK configuration", err)
  end)

  it("enables DANE", function()
    assert.is_not_nil(ssl.newcontext({ mode = "client", protocol = "any", dane = true }))
    assert.is_not_nil(ssl.newcontext({ mode = "client", protocol = "any", dane = { "no_ee_namechecks" } }))
  end)

  it("ssl.context functions check their first argument", function()
    assert.has_error(function() context.setcipher({}, "ALL") end)
    assert.has_error(function() context.loadkey(nil, "x") end)
    local ctx = assert(context.create("any"))
    assert.has_error(function() context.loadkey(ctx, pki.server_key, 42) end, "invalid callback value")
    assert.has_error(function() context.setverify(ctx, {}) end)
  end)

  it("exposes the SSL_CTX to other FFI code", function()
    local ffi = require "ffi"
    local ctx = assert(server())
    local raw = ssl.rawcontext(ctx)
    assert.is_true(ffi.istype("SSL_CTX *", raw))
    assert.is_true(raw ~= nil)
  end)
end)

describe("ssl.config", function()
  it("loads on its own and lists protocols and capabilities", function()
    local ok, out = helpers.sh(helpers.luajit() ..
      [[ -e 'package.path="ffi/?.lua;ffi/?/init.lua;"..package.path; local c = require "ssl.config"; print(c.protocols.tlsv1_3, c.capabilities.alpn, c.algorithms.ec)']])
    assert.is_true(ok, out)
    assert.equal("true\ttrue\ttrue", out:match("[^\n]+"))
  end)
end)
