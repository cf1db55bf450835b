-- spec/torture/churn.lua — sequential connection churn at full size (the
-- reliability issue, item 6a; spec/load_spec.lua runs it scaled down):
--   100 000 LuaSec-face connections (ssl.wrap, dohandshake, send, receive,
--   close), then 20 000 on the libtls face and 20 000 on the net face, each
--   against an ljssl server of the same face in a child process (server-side
--   churn), with the C shim; then 20 000 per face without it.  About 10-16 min.
-- Each connection sends a pseudo-random line the server returns reversed; one
-- in 100 is dropped during the handshake on purpose.  Both processes' RSS is
-- sampled (after a full GC) every 2500 or 1000 connections and must stay
-- within 5 % of its size at the end of the 5000-connection warm-up;
-- descriptors must not grow.  At the end of the warm-up both processes stop
-- compiling new JIT traces (the traces made so far keep running): left alone,
-- the JIT adds a trace every thousand connections or two for the whole run
-- (the libtls server: 37 after 2000 connections, 118 after 20 000), and with
-- them Lua heap, machine code and, through the collector's pacing, closed
-- connections awaiting collection: up to +11 % RSS on the libtls server, flat
-- with the JIT off (churn_lib.freeze_jit).  Each run is a process of its
-- own, so that each starts fresh.
--
--   TORTURE=churn bash tools/run_torture
--   CHURN_SCALE=0.1 (a tenth of every count, warm-up included: a quick check)
--   CHURN_RUNS=1,4 (only those runs, numbered as printed)
local helpers = require "helpers"
local churn = require "fixtures.churn_lib"

-- A child: one run.  churn.lua --run FACE COUNT WARMUP EVERY
if arg[1] == "--run" then
  local face, count, warmup, every = arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
  local lib = require "ljssl.lib"
  io.write(("%s face, %d connections, %s\n"):format(face, count,
    lib.shim and "with the C shim" or ("without the shim (" .. tostring(lib.shim_info) .. ")")))
  churn.raise_nofile(256)
  local pki = helpers.pki()
  local port = helpers.free_port()
  local server = helpers.spawn(("%s spec/fixtures/churn_server.lua %s %d %s %s"):format(helpers.luajit(),
    face, port, pki.server, pki.server_key))
  local ok, r = pcall(function()
    helpers.wait_port(port)
    return churn.run({ face = face, port = port, ca = pki.ca, count = count, warmup = warmup,
      every = every, abort_every = 100, seconds = count / 20 + 120,
      log = function(s)
        io.write(("  %6d connections %6.1f s  client RSS %6.0f KiB, Lua heap %5.0f KiB, malloc %5.0f/%5.0f KiB, " ..
          "%3d traces, fds %d;  server RSS %6.0f KiB, Lua heap %5.0f KiB, malloc %5.0f/%5.0f KiB, %3d traces, fds %s\n")
          :format(s.n, s.t, s.rss / 1024, s.heap / 1024, s.malloc / 1024, s.arena / 1024, s.traces, s.fds,
          (s.server_rss or 0) / 1024, (s.server_heap or 0) / 1024, (s.server_malloc or 0) / 1024,
          (s.server_arena or 0) / 1024, s.server_traces or 0, tostring(s.server_fds)))
        io.flush()
      end })
  end)
  local out = server:output()
  server:stop()
  if not ok then
    io.write("FAILED: ", tostring(r), "\n", out, "\n")
    os.exit(1)
  end
  io.write(churn.report(face, r), "\n")
  if out ~= "" then io.write("server output:\n", out, "\n") end
  io.write(r.ok and "held\n" or "FAILED\n")
  os.exit(r.ok and 0 or 1)
end

-- The parent: every run in a child process, with or without the shim.
local scale = tonumber(os.getenv("CHURN_SCALE") or "1")
local function n(x) return math.max(math.floor(x * scale + 0.5), 1) end
-- face, connections, warm-up, sampling period, with the shim
local runs = {
  { "luasec", 100000, 5000, 2500, true },
  { "libtls", 20000, 5000, 1000, true },
  { "net", 20000, 5000, 1000, true },
  { "luasec", 20000, 5000, 1000, false },
  { "libtls", 20000, 5000, 1000, false },
  { "net", 20000, 5000, 1000, false },
}
local only
if os.getenv("CHURN_RUNS") then
  only = {}
  for i in os.getenv("CHURN_RUNS"):gmatch("%d+") do only[tonumber(i)] = true end
end


local passed, failed = 0, 0
local started = os.time()
for i, r in ipairs(runs) do
  if not only or only[i] then
    local face, count, warmup, every, shim = r[1], n(r[2]), n(r[3]), n(r[4]), r[5]
    warmup = math.max(math.floor(warmup / every), 1) * every
    io.write(("=== churn run %d: "):format(i))
    io.flush()
    local ok = helpers.stream(("%s %s %s --run %s %d %d %d"):format(shim and "env -u LJSSL_SHIM" or "env LJSSL_SHIM=off",
      helpers.luajit(), arg[0], face, count, warmup, every))
    if ok then passed = passed + 1 else failed = failed + 1 end
  end
end
io.write(("churn: %d runs held, %d failed, %d s\n"):format(passed, failed, os.time() - started))
os.exit(failed == 0 and passed > 0 and 0 or 1)
