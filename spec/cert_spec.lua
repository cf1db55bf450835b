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

  it("gives the validity period in seconds since 1970, and any write as a string", function()
    local x = assert(cert.decode(assert(io.open(pki.server)):read("*a")))
    local now = os.time()
    assert.is_true(cert.not_before(x) <= now)
    assert.is_true(cert.not_after(x) > now)
    assert.equal(-1, cert.epoch(nil))
    assert.equal(cert.pem(x), cert.bio_string(lib.crypto.PEM_write_bio_X509, x))
  end)

  it("names subjects longer than any fixed buffer", function()
    local dir = helpers.tmpdir()
    local long = ("x"):rep(60)
    local subj = "/CN=" .. long
    for i = 1, 20 do subj = subj .. "/OU=" .. long .. i end
    assert(helpers.sh(("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
      "-keyout k.pem -out c.pem -days 1 -subj '%s' 2>&1"):format(dir, subj)))
    local x = assert(cert.decode(assert(io.open(dir .. "/c.pem")):read("*a")))
    local name = cert.subject(x)
    assert.is_true(#name > 1024)
    assert.equal(name, cert.issuer(x))
    os.execute("rm -rf " .. dir)
  end)

  it("takes its own reference to a borrowed certificate", function()
    local x = assert(cert.decode(assert(io.open(pki.ca)):read("*a")))
    local y = assert(cert.ref(x))
    x = nil
    collectgarbage(); collectgarbage()
    assert.matches("CN=", cert.subject(y))
  end)
end)
