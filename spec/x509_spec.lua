-- ssl.x509 certificate objects: every value compared with what the openssl
-- command reports for the same certificate.
local helpers = require "helpers"
local ssl = require "ssl"
local x509 = require "ssl.x509"

local dir

local function openssl(args)
  local ok, out = helpers.sh("openssl x509 " .. args)
  assert(ok, out)
  return out
end

-- IPv6 in one spelling: openssl prints 2001:DB8:0:0:0:0:0:1, LuaSec (inet_ntop)
-- 2001:db8::1.  IPv4 is returned as it is.
local function ipv6_full(v)
  if not v:find(":", 1, true) then return v end
  local head, tail = v:match("^(.-)::(.*)$")
  local groups = {}
  local function add(part)
    for g in part:gmatch("[^:]+") do groups[#groups + 1] = tonumber(g, 16) end
  end
  if head then
    add(head)
    local n = #groups
    local rest = {}
    for g in tail:gmatch("[^:]+") do rest[#rest + 1] = tonumber(g, 16) end
    for _ = 1, 8 - n - #rest do groups[#groups + 1] = 0 end
    for _, g in ipairs(rest) do groups[#groups + 1] = g end
  else
    add(v)
  end
  for i, g in ipairs(groups) do groups[i] = ("%x"):format(g) end
  return table.concat(groups, ":")
end

local function load(name)
  return assert(x509.loadfile(dir .. "/" .. name .. ".pem"))
end

local NAMES = { "rsa", "ed25519", "manysans", "unicode", "longserial", "expired", "ipsan", "valid", "nosan" }

describe("ssl.x509", function()
  setup(function() dir = helpers.certs() end)

  it("loads PEM and DER, from memory and from files", function()
    local pem = helpers.readfile(dir .. "/valid.pem")
    local a = assert(ssl.loadcertificate(pem))
    assert.truthy(tostring(a):match("^X509 certificate: 0x%x+$"))
    local der = a:der()
    local b = assert(x509.load(der))
    assert.equal(a:digest("sha256"), b:digest("sha256"))
    assert.equal(pem, b:pem())
    local derfile = dir .. "/valid.der"
    assert(helpers.sh(("openssl x509 -in %s/valid.pem -outform DER -out %s"):format(dir, derfile)))
    assert.equal(a:digest(), assert(x509.loadfile(derfile)):digest())
    assert.is_nil(x509.load("not a certificate"))
    assert.is_nil(x509.load(""))
    local none, err = x509.loadfile(dir .. "/nope.pem")
    assert.is_nil(none)
    assert.truthy(err:find("No such file", 1, true))
    assert.has_error(function() x509.load(nil) end)
  end)

  for _, name in ipairs(NAMES) do
    describe(name .. ".pem", function()
      local cert, path
      setup(function()
        path = dir .. "/" .. name .. ".pem"
        cert = load(name)
        cert:setencode("utf8")
      end)

      it("has openssl's subject and issuer, in order", function()
        for _, which in ipairs({ "subject", "issuer" }) do
          local out = openssl(("-in %s -noout -%s -nameopt sep_multiline,lname,utf8"):format(path, which))
          local expected = {}
          for k, v in out:gmatch("\n%s+([^=\n]+)=([^\n]*)") do expected[#expected + 1] = k .. "=" .. v end
          local got = {}
          for _, e in ipairs(cert[which](cert)) do
            got[#got + 1] = e.name .. "=" .. e.value
            assert.truthy(e.oid:match("^[%d.]+$"), e.oid)
          end
          assert.same(expected, got)
        end
      end)

      it("has openssl's serial, dates and fingerprints", function()
        assert.equal(openssl("-in " .. path .. " -noout -serial"):match("serial=(%x+)"), cert:serial())
        local dates = openssl("-in " .. path .. " -noout -dates")
        assert.equal(dates:match("notBefore=([^\n]+)"), cert:notbefore())
        assert.equal(dates:match("notAfter=([^\n]+)"), cert:notafter())
        for _, alg in ipairs({ "sha1", "sha256", "sha512" }) do
          local fp = openssl(("-in %s -noout -fingerprint -%s"):format(path, alg)):match("=([%x:]+)")
          assert.equal(fp:gsub(":", ""):lower(), cert:digest(alg))
        end
      end)

      it("has openssl's public key", function()
        local pem, kind, bits = cert:pubkey()
        assert.equal(openssl("-in " .. path .. " -noout -pubkey"), pem)
        local text = openssl("-in " .. path .. " -noout -text")
        local text_bits = tonumber(text:match("Public%-Key: %((%d+) bit%)"))
        if text_bits then
          assert.equal(text_bits, bits)
        else
          assert.equal(256, bits)      -- openssl prints no size for Ed25519 keys
        end
        local algorithm = text:match("Public Key Algorithm: (%S+)")
        local expected = ({ rsaEncryption = "RSA", id_ecPublicKey = "EC", ED25519 = "ED25519" })[
          algorithm:gsub("-", "_")]
        assert.equal(expected, kind)
      end)

      it("names openssl's signature algorithm", function()
        local text = openssl("-in " .. path .. " -noout -text")
        local long = text:match("Signature Algorithm: (%S+)")
        local ok, out = helpers.sh(helpers.luajit() .. [[ -e 'local ffi=require"ffi" ffi.cdef"int OBJ_ln2nid(const char*); const char *OBJ_nid2sn(int);" local c=ffi.load("crypto") io.write(ffi.string(c.OBJ_nid2sn(c.OBJ_ln2nid("]] .. long .. [[")))) ']])
        assert.is_true(ok, out)
        assert.equal(out, cert:getsignaturename())
      end)

      it("lists openssl's subjectAltName entries", function()
        local text = openssl("-in " .. path .. " -noout -ext subjectAltName")
        local expected = { dNSName = {}, iPAddress = {}, rfc822Name = {}, uniformResourceIdentifier = {} }
        local map = { DNS = "dNSName", ["IP Address"] = "iPAddress", email = "rfc822Name", URI = "uniformResourceIdentifier" }
        local body = text:match("Subject Alternative Name:%s*\n%s*([^\n]+)") or ""
        for item in body:gmatch("[^,]+") do
          local k, v = item:match("^%s*([^:]+):(.+)$")
          if k == "IP Address" then v = ipv6_full(v) end
          table.insert(expected[map[k]], v)
        end
        local ext = cert:extensions()
        local san = ext["2.5.29.17"]
        if body == "" then
          assert.is_nil(san)
        else
          assert.equal("X509v3 Subject Alternative Name", san.name)
          for key, list in pairs(expected) do
            local got = {}
            for i, v in ipairs(san[key] or {}) do got[i] = key == "iPAddress" and ipv6_full(v) or v end
            assert.same(list, got, key)
          end
        end
      end)
    end)
  end

  it("keeps raw bytes with setencode('ai5') and converts with 'utf8'", function()
    local cert = load("unicode")
    assert.is_true(cert:setencode("utf8"))
    local utf8 = cert:subject()[2].value
    assert.equal("Zürich", utf8)
    assert.is_true(cert:setencode("ai5"))
    assert.equal("Zürich", cert:subject()[2].value)       -- a UTF8String: same bytes
    assert.is_false(cert:setencode("latin1"))
  end)

  it("computes any digest OpenSSL knows, and refuses unknown ones", function()
    local cert = load("valid")
    assert.equal(64, #cert:digest("sha3-256"))
    assert.equal(40, #cert:digest())
    assert.same({ nil, "digest algorithm not supported (md99)" }, { cert:digest("md99") })
  end)

  it("answers validat at the edges of the validity period", function()
    local cert = load("expired")       -- 2020-01-01 .. 2020-02-01
    local jan15 = os.time({ year = 2020, month = 1, day = 15, hour = 12 })
    assert.is_true(cert:validat(jan15))
    assert.is_false(cert:validat(os.time()))
    assert.is_false(cert:validat(os.time({ year = 2019, month = 12, day = 1 })))
    assert.is_true(load("valid"):validat(os.time()))
  end)

  it("checks issuance with cert:issued", function()
    local root, inter, leaf = load("root"), load("inter"), load("valid")
    assert.is_true(root:issued(leaf, inter))
    assert.is_true(root:issued(inter))
    assert.same({ nil, "unable to get local issuer certificate" }, { root:issued(leaf) })
    assert.same({ nil, "unable to get local issuer certificate" }, { load("other"):issued(leaf, inter) })
    assert.has_error(function() root:issued("not a cert") end)
  end)
end)
