-- spec/torture/fuzz.lua — the long fuzzing runs (`TORTURE=fuzz bash
-- tools/run_torture`, part of `make torture`): spec/fixtures/fuzz_run.lua in
-- child processes, so that a crash is an exit status, with the shim and
-- without it: 10^5 iterations in all (FUZZ_BASE, default 50 000, in each
-- configuration), then a longer run of FUZZ_LONG iterations (default 2 * 10^5)
-- in each.
-- Seeds come from the clock unless LJSSL_FUZZ_SEED is set; each run prints
-- its seed and figures, and any finding with the command that repeats it.
-- Exits 0 when every run ended with "fuzz ok".
local helpers = require "helpers"

local pki = helpers.pki()
local base = tonumber(os.getenv("LJSSL_FUZZ_SEED")) or os.time()
local long = tonumber(os.getenv("FUZZ_LONG")) or 200000
local first = tonumber(os.getenv("FUZZ_BASE")) or 50000
local runs = {
  { "shim", first, base },
  { "off", first, base + 1 },
  { "shim", long, base + 2 },
  { "off", long, base + 3 },
}
local failed, total = 0, 0
for _, r in ipairs(runs) do
  local env = r[1] == "off" and "LJSSL_SHIM=off" or ""
  local started = os.time()
  local ok, out, status = helpers.sh(("env %s timeout 7200 %s spec/fixtures/fuzz_run.lua %s %d %d"):format(
    env, helpers.luajit(), pki.dir, r[2], r[3]))
  local done = ok and out:find("\nfuzz ok", 1, true) and tonumber(out:match("\niterations (%d+)")) == r[2]
  io.write(("--- shim=%s iterations=%d seed=%d: %s (exit %s, %d s)\n"):format(
    r[1], r[2], r[3], done and "ok" or "FAILED", tostring(status), os.time() - started))
  io.write(out)
  if done then total = total + r[2] else failed = failed + 1 end
end
print(("fuzz: %d iterations without a finding, %d runs failed"):format(total, failed))
os.exit(failed == 0 and 0 or 1)
