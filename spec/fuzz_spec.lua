-- Fuzzing in make test: spec/fixtures/fuzz_run.lua in a child process (a crash
-- is an exit status), a seeded, bounded run of random params tables at
-- ssl.newcontext, random setter sequences at libtls configs and net
-- configurations, random and mutated PEM/DER at certificate and key loading,
-- mutated handshake flights at sessions with every callback installed, and
-- random call sequences at connected LuaSec and libtls objects over cut and
-- corrupted transports.  The seed is printed by the child and in any failure;
-- LJSSL_FUZZ_SEED and LJSSL_FUZZ_ITERATIONS repeat a run.  The run of 10^5
-- iterations and a longer one are spec/torture/fuzz.lua (`make torture`).
local helpers = require "helpers"

describe("fuzzing", function()
  it("survives a seeded run with no crash and no unclear error", function()
    local pki = helpers.pki()
    local iterations = tonumber(os.getenv("LJSSL_FUZZ_ITERATIONS")) or 6000
    local seed = tonumber(os.getenv("LJSSL_FUZZ_SEED")) or os.time()
    local ok, out, status = helpers.sh(("timeout 300 %s spec/fixtures/fuzz_run.lua %s %d %d"):format(
      helpers.luajit(), pki.dir, iterations, seed))
    local report = ("seed %d, exit %s\n%s"):format(seed, tostring(status), out)
    assert.is_true(ok, report)
    assert.truthy(out:find("\nfuzz ok", 1, true), report)
    assert.equal(iterations, tonumber(out:match("\niterations (%d+)")), report)
    -- the run reached deep code: handshakes completed, plaintext checked
    assert.is_true(tonumber(out:match("completed (%d+)")) > 100, report)
    assert.is_true(tonumber(out:match("plaintext bytes checked (%d+)")) > 10000, report)
  end)

  it("sees a crash in the child as a failure (the control)", function()
    local ok, _, status = helpers.sh(helpers.luajit() ..
      [[ -e 'local ffi = require "ffi"; ffi.cast("int *", 0)[0] = 1']])
    assert.is_false(ok)
    assert.is_true(status ~= 0)
  end)
end)
