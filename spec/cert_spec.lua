-- ljssl.engine.cert: the engine's certificate codec the faces share.
local helpers = require "helpers"
local lib = require "ljssl.lib"
local cert = require "ljssl.engine.cert"

describe("engine certificates", function()
  local pki
  setup(function() pki = helpers.pki() end)

  it("decodes PEM and DER, encodes both back, and names subject and issuer", function()
    local pem = assert(io.open(pki.server)):read("*a")
    local x = assert(cert.decode(pem))
    local der = assert(cert.der(x))
    assert.is_false(cert.is_pem(der))
    local y = assert(cert.decode(der))
    assert.equal(cert.pem(x), cert.pem(y))
    assert.equal(der, cert.der(y))
    assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE", cert.pem(x))
    assert.matches("CN=", cert.subject(x))
    assert.matches("CN=", cert.issuer(x))
    assert.is_true(cert.subject(x) ~= cert.issuer(x))
    assert.equal(32, #cert.digest(x, lib.crypto.EVP_sha256()))
  end)

  it("answers nil for what is not a certificate, and leaves no error behind", function()
    assert.is_nil(cert.decode("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
    assert.is_nil(cert.decode("\48\130garbage"))
    assert.is_nil(cert.decode(""))
    assert.equal(0, tonumber(lib.crypto.ERR_peek_error()))
  end)

  it("takes its own reference to a borrowed certificate", function()
    local x = assert(cert.decode(assert(io.open(pki.ca)):read("*a")))
    local y = assert(cert.ref(x))
    x = nil
    collectgarbage(); collectgarbage()
    assert.matches("CN=", cert.subject(y))
  end)
end)
