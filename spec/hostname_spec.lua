-- Host-name checks: ssl.checkhostname / ssl.checkhost (OpenSSL's matching,
-- never hand-rolled) on a table of cases, and the same rules in the handshake.
local helpers = require "helpers"
local ssl = require "ssl"
local x509 = require "ssl.x509"

local function make(name, subj, san)
  local dir = helpers.certs()
  local path = dir .. "/host-" .. name
  local ext = san and ("-addext 'subjectAltName=%s'"):format(san) or ""
  assert(helpers.sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
    "-keyout %s.key -out %s.pem -days 2 -subj '%s' %s"):format(path, path, subj, ext)))
  return assert(x509.loadfile(path .. ".pem"))
end

describe("host-name checks", function()
  local sans, nosan, ipsan
  setup(function()
    sans = make("sans", "/CN=cn-only.example.test",
      "DNS:www.example.test,DNS:*.wild.example.test,DNS:f*.partial.example.test,DNS:*.test," ..
      "DNS:xn--bcher-kva.example.test,DNS:*.idn.example.test,IP:192.0.2.7,IP:2001:db8::7")
    nosan = make("nosan", "/O=legacy/CN=legacy.example.test")
    ipsan = make("ipsan", "/CN=ip.example.test", "IP:192.0.2.9")
  end)

  local cases = {
    -- certificate, name, expected, why
    { "sans", "www.example.test", true, "exact DNS SAN" },
    { "sans", "WWW.Example.TEST", true, "case does not matter" },
    { "sans", "www.example.test.", true, "one trailing dot is the same host" },
    { "sans", "www.example.test..", false, "two trailing dots are not" },
    { "sans", "other.example.test", false, "not listed" },
    { "sans", "a.wild.example.test", true, "wildcard, one label" },
    { "sans", "wild.example.test", false, "a wildcard needs its label" },
    { "sans", "a.b.wild.example.test", false, "a wildcard covers one label only" },
    { "sans", "foo.partial.example.test", false, "partial wildcard refused" },
    { "sans", "anything.test", false, "*.tld refused" },
    { "sans", "xn--bcher-kva.example.test", true, "IDNA A-label, exact" },
    { "sans", "bücher.example.test", false, "U-labels are not A-labels" },
    { "sans", "xn--caf-dma.idn.example.test", true, "a whole-label wildcard covers an A-label" },
    { "sans", "192.0.2.7", true, "IPv4 SAN" },
    { "sans", "2001:db8::7", true, "IPv6 SAN" },
    { "sans", "[2001:db8::7]", true, "IPv6 SAN, bracketed" },
    { "sans", "2001:DB8:0:0:0:0:0:7", true, "IPv6 SAN, another spelling" },
    { "sans", "192.0.2.8", false, "another address" },
    { "sans", "cn-only.example.test", false, "the CN is ignored when there are SANs" },
    { "nosan", "legacy.example.test", true, "CN fallback without SANs" },
    { "nosan", "LEGACY.example.test", true, "CN fallback, any case" },
    { "nosan", "legacy", false, "no partial match" },
    { "ipsan", "192.0.2.9", true, "IP SAN only" },
    { "ipsan", "ip.example.test", true, "CN fallback: there is no DNS SAN" },
    { "ipsan", "192.0.2.10", false, "another address" },
    { "sans", "", false, "an empty name matches nothing" },
  }

  for _, case in ipairs(cases) do
    it(("%s: %q is %s (%s)"):format(case[1], case[2], tostring(case[3]), case[4]), function()
      local cert = ({ sans = sans, nosan = nosan, ipsan = ipsan })[case[1]]
      assert.equal(case[3], ssl.checkhostname(cert, case[2]))
    end)
  end

  it("takes LuaSec 2026's checkhost flags", function()
    assert.is_true(ssl.checkhost(sans, "a.wild.example.test"))
    assert.is_false(ssl.checkhost(sans, "a.wild.example.test", "no_wildcards"))
    assert.is_true(ssl.checkhost(sans, "foo.partial.example.test", "multi_label_wildcards"))
    assert.is_true(ssl.checkhost(ipsan, "ip.example.test"))
    assert.is_false(ssl.checkhost(ipsan, "ip.example.test", "never_check_subject"))
    assert.has_error(function() ssl.checkhost(sans, "x", "bogus_flag") end)
    assert.has_error(function() ssl.checkhostname("not a cert", "x") end)
  end)
end)
