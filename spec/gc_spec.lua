-- GC torture, the fast version: spec/fixtures/gc_workload.lua in a child
-- process with the JIT off and a full collectgarbage("collect") on every line
-- (a debug line hook): handshakes, I/O and certificate work through the LuaSec
-- face (wrap, connect, https, x509, PSK/ALPN/DANE/client certificates), the
-- libtls face (handshake, read/write, OCSP, SNI, a session file, reset) and the
-- net face (SslSocket against SslServer), plus memory-BIO sessions, with
-- objects dropped without close so their finalizers run in whatever order the
-- collector picks (a connection after its context, a certificate after its
-- connection, a socket before its TLS context).  A use after free usually
-- crashes the child or fails one of its checks; every dropped object must also
-- have been collected by the end.  The same workload runs under valgrind in
-- spec/torture/gc_valgrind.lua (make torture).
local helpers = require "helpers"

local function workload(dir, rounds, gc, parts)
  return helpers.sh(("timeout 150 %s spec/fixtures/gc_workload.lua %s %d %s %s 2>&1")
    :format(helpers.luajit(), dir, rounds, gc, parts or ""))
end

describe("GC torture (JIT off, a full collection on every line)", function()
  local dir
  setup(function() dir = helpers.certs() end)

  it("runs every face with finalizers in any order, and collects everything dropped", function()
    local _, out, status = workload(dir, 1, "collect")
    assert.equal(0, status, out)
    assert.truthy(out:find("gc_workload: ok", 1, true), out)
    local figures = out:match("gc_workload: (parts=[^\n]*)")
    assert.truthy(figures, out)
    assert.equal("luasec+x509+https+libtls+net+membio", figures:match("parts=(%S+)"))
    -- the hook really ran: tens of thousands of lines, each with a full collection
    assert.is_true(tonumber(figures:match("hooked_lines=(%d+)")) > 10000, figures)
    assert.is_true(tonumber(figures:match("handshakes=(%d+)")) >= 16, figures)
    assert.is_true(tonumber(figures:match("dropped=(%d+)")) >= 40, figures)
    assert.is_true(tonumber(figures:match("ocsp=(%d+)")) >= 8, figures)
    local expect = os.getenv("LJSSL_EXPECT_SHIM")
    if expect then
      assert.equal(expect == "1" and "on" or "off", figures:match("shim=(%a+)"), figures)
    end
  end)

  it("fails when a dropped object is never collected", function()
    local _, out, status = workload(dir, 1, "collect", "control-survivor")
    assert.is_true(status ~= 0, out)
    assert.truthy(out:find("dropped but never collected: control survivor", 1, true), out)
  end)
end)
