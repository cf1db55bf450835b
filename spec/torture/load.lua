-- spec/torture/load.lua — concurrent connections at full size (the reliability
-- issue, item 6b; spec/load_spec.lua runs 200 of them): 1000 TLS connections
-- open at once in one client process, under copas (LuaSec-face connections,
-- Debian's copas 1.1.7) and under the net face's own loop, each against an
-- echo server built on the net face and on copas; then 2000 net-face
-- connections, which puts both processes' descriptors above FD_SETSIZE (1024:
-- the net face polls, it never selects).  Every client sends its own
-- pseudo-random data, 6 chunks of 1..64 KiB, each echoed in full before the
-- next, and checks it byte for byte, by length and by checksum.  The copas
-- runs stay at 1000: copas 1.1.7 waits with socket.select, which refuses
-- descriptors from 1024 up.  The first two runs go three times over in one
-- process: with every connection closed, the Lua heap and the memory malloc
-- hands out must be where they were after the second time (glibc keeps what
-- it was given, so RSS itself stays near its peak).  Each run is a process of
-- its own; the first two are repeated without the C shim.  About 3 min.
--
--   TORTURE=load bash tools/run_torture
--   LOAD_SCALE=0.2 (a fifth of the connections: a quick check)
local helpers = require "helpers"
local churn = require "fixtures.churn_lib"

-- A child: one run.  load.lua --run CLIENT SERVER COUNT ROUNDS MAX_CHUNK WAVES
-- With WAVES > 2 the same load runs again in this process, and what it leaves
-- behind once every connection is closed (Lua heap, memory malloc hands out)
-- must not grow after the second wave.
if arg[1] == "--run" then
  local load = require "fixtures.load_lib"
  local client, server_face = arg[2], arg[3]
  local count, rounds, max_chunk = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
  local waves = tonumber(arg[7] or "1")
  local lib = require "ljssl.lib"
  io.write(("%d %s clients against a %s server, %d wave(s), %s\n"):format(count, client, server_face, waves,
    lib.shim and "with the C shim" or ("without the shim (" .. tostring(lib.shim_info) .. ")")))
  io.flush()
  churn.raise_nofile(count + 256)              -- inherited by the server
  local pki = helpers.pki()
  local port = helpers.free_port()
  local server = helpers.spawn(("%s spec/fixtures/load_echo_server.lua %s %d %s %s"):format(
    helpers.luajit(), server_face, port, pki.server, pki.server_key))
  local held = true
  local after = {}
  local ok, err = pcall(function()
    helpers.wait_port(port)
    for w = 1, waves do
      local r = load[client]({ port = port, ca = pki.ca, count = count, rounds = rounds,
                              max_chunk = max_chunk, seconds = 300 })
      io.write(load.report(("wave %d: %s clients, %s server"):format(w, client, server_face), r), "\n")
      held = held and r.ok and r.peak == count
      collectgarbage("collect")
      collectgarbage("collect")
      local malloc, arena = churn.malloc_in_use()
      after[w] = { heap = collectgarbage("count") * 1024, malloc = malloc or 0 }
      io.write(("  then, all closed: RSS %.0f KiB, Lua heap %.0f KiB, malloc in use %.0f KiB " ..
                "(holding %.0f KiB), %d descriptors\n"):format(churn.rss() / 1024, after[w].heap / 1024,
                after[w].malloc / 1024, (arena or 0) / 1024, churn.fd_count()))
      io.flush()
    end
  end)
  local out = server:output()
  server:stop()
  if not ok then
    io.write("FAILED: ", tostring(err), "\n", out, "\n")
    os.exit(1)
  end
  -- (from the second wave on: the first also warms up OpenSSL's and the
  -- JIT's own state)
  local base = math.min(2, #after)
  for _, k in ipairs({ "heap", "malloc" }) do
    for w = base + 1, #after do
      local first, now = after[base][k], after[w][k]
      if now > first * 1.1 + 65536 then
        held = false
        io.write(("  %s grew from %.0f KiB after wave %d to %.0f KiB after wave %d\n"):format(
          k == "heap" and "Lua heap" or "malloc in use", first / 1024, base, now / 1024, w))
      end
    end
  end
  -- the server reports each failed handshake; the probe that waited for it is one
  local _, failures = out:gsub("handshake failed", "")
  if failures > 1 then io.write("server output:\n", out, "\n") end
  held = held and failures <= 1
  io.write(held and "held\n" or "FAILED\n")
  os.exit(held and 0 or 1)
end

local scale = tonumber(os.getenv("LOAD_SCALE") or "1")
local function n(x) return math.max(math.floor(x * scale + 0.5), 1) end
-- client loop, server loop, connections, with the shim, waves
local runs = {
  { "copas", "net", 1000, true, 3 },
  { "net", "net", 1000, true, 3 },
  { "copas", "copas", 1000, true, 1 },
  { "net", "copas", 1000, true, 1 },
  { "net", "net", 2000, true, 1 },
  { "copas", "net", 1000, false, 1 },
  { "net", "net", 1000, false, 1 },
}


local passed, failed = 0, 0
local started = os.time()
for i, r in ipairs(runs) do
  io.write(("=== load run %d: "):format(i))
  io.flush()
  local ok = helpers.stream(("%s %s %s --run %s %s %d 6 65536 %d"):format(r[4] and "env -u LJSSL_SHIM" or "env LJSSL_SHIM=off",
    helpers.luajit(), arg[0], r[1], r[2], n(r[3]), r[5]))
  if ok then passed = passed + 1 else failed = failed + 1 end
end
io.write(("load: %d runs held, %d failed, %d s\n"):format(passed, failed, os.time() - started))
os.exit(failed == 0 and 0 or 1)
