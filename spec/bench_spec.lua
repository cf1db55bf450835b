-- The benchmark suite runs (tiny amounts, one round, no callgrind) and prints a
-- ratio for every benchmark.  Timings are never asserted: only that each
-- implementation did the work and a figure came out.
local helpers = require "helpers"

describe("make bench", function()
  it("runs every benchmark through C, LuaSec and ljssl (and each face against its reference) and prints ratios", function()
    local ok, out = helpers.sh("make -s bench/.build/tls_peer bench/.build/libtls_client && " ..
      "BENCH_QUICK=1 BENCH_NO_CALLGRIND=1 timeout 300 " ..
      helpers.luajit() .. " bench/run.lua")
    assert.is_true(ok, out)
    for _, name in ipairs({ "bulk", "line echo", "full handshakes" }) do
      local line = out:match("\n(" .. name .. "[^\n]*)")
      assert.truthy(line, out)
      assert.truthy(line:match("ljssl/C %d+%.%d+"), line)
      assert.truthy(line:match("ljssl/LuaSec %d+%.%d+"), line)
    end
    -- each face against its own reference: the system libtls, C/OpenSSL for
    -- TLS 1.3 resumption, the LuaSec API with socket.select for the net face
    for _, row in ipairs({
      { "libtls face: bulk", "ljssl/libtls" }, { "libtls face: line echo", "ljssl/libtls" },
      { "libtls face: full handshakes", "ljssl/libtls" },
      { "libtls face: resumed handshakes %(TLS 1.2%)", "ljssl/libtls" },
      { "resumed handshakes %(TLS 1.3%)", "ljssl/C" },
      { "net face: line echo, 100 clients", "net/ljssl%-LuaSec" },
      { "net face: line echo, 100 clients", "net/LuaSec" },
    }) do
      local line = out:match("\n(" .. row[1] .. "[^\n]*)")
      assert.truthy(line, out)
      assert.truthy(line:match(row[2] .. " %d+%.%d+"), line)
    end
    assert.truthy(out:find('require "ssl", "ssl.https"', 1, true), out)
  end)
end)
