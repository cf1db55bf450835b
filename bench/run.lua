-- bench/run.lua — `make bench`: runs each benchmark the same way through the
-- C/OpenSSL reference (bench/c/tls_peer), LuaSec and ljssl in one run,
-- alternating their order round by round, and prints medians and the ratios
-- ljssl/C and ljssl/LuaSec.  Never compare absolute figures across runs: the
-- machine is shared.  Writes bench/results.md unless BENCH_QUICK is set.
--
--   luajit bench/run.lua [PEER_BINARY]
--   BENCH_QUICK=1 (tiny amounts, one round: checks that the suite works)
--   BENCH_ROUNDS=N (default 5); BENCH_NO_CALLGRIND=1 skips the valgrind runs
local socket = require "socket"

local root = arg[0]:match("^(.*)/bench/[^/]*$") or "."
local peer = arg[1] or (root .. "/bench/.build/tls_peer")
local libtls_peer = root .. "/bench/.build/libtls_client"   -- the system libtls client (C)
local luajit = arg[-1] or "luajit"
local quick = os.getenv("BENCH_QUICK") ~= nil
local rounds = quick and 1 or tonumber(os.getenv("BENCH_ROUNDS") or 5)

local function sh(cmd)
  local p = io.popen("(" .. cmd .. ") 2>&1; echo __status=$?")
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  return status == 0, (out:gsub("__status=%d+%s*$", ""))
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  return n % 2 == 1 and s[(n + 1) / 2] or (s[n / 2] + s[n / 2 + 1]) / 2
end

local have_luasec = sh(luajit .. [[ -e 'assert(not require("ssl")._VERSION:find("ljssl"))']])

-- A fresh ECDSA P-256 certificate for the server.
local dir = os.tmpname()
os.remove(dir)
assert(sh("mkdir -p " .. dir))
assert(sh(("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
  "-keyout key.pem -out cert.pem -days 1 -subj /CN=localhost"):format(dir)))

local probe = assert(socket.bind("127.0.0.1", 0))
local _, port = probe:getsockname()
probe:close()
local server = io.popen(("%s server %d %s/cert.pem %s/key.pem >/dev/null 2>&1 & echo $!")
  :format(peer, port, dir, dir))
local server_pid = server:read("*l")
server:close()
for _ = 1, 100 do
  local c = socket.connect("127.0.0.1", port)
  if c then c:close(); break end
  socket.sleep(0.05)
end

local function finish()
  os.execute("kill " .. server_pid .. " 2>/dev/null")
  os.execute("rm -rf " .. dir)
end

-- Runs a client command; returns the seconds it printed last.
local function run_client(cmd)
  local ok, out = sh(cmd)
  if not ok then finish(); error(cmd .. " failed:\n" .. out) end
  return tonumber(out:match("([%d.]+)%s*$"))
end

-- Runs one client; returns its seconds.
local function client(impl, work, amount)
  return run_client(impl == "c" and ("%s client %d %s %d"):format(peer, port, work, amount)
    or ("%s %s/bench/client.lua %s %d %s %d"):format(luajit, root, impl, port, work, amount))
end

local impls = { "c", "ljssl" }
if have_luasec then table.insert(impls, 2, "luasec") end

local results = {}

-- Prints one row: the three figures with `decimals` places, then the ratios.
local function print_row(label, row, decimals, unit, note)
  local num = "%10." .. decimals .. "f"
  io.write(("%-28s C " .. num .. "   LuaSec %10s   ljssl " .. num .. " %-10s  ljssl/C %.3f  ljssl/LuaSec %s%s\n"):format(
    label, row.c, row.luasec and ("%." .. decimals .. "f"):format(row.luasec) or "-", row.ljssl, unit,
    row.ljssl / row.c, row.luasec and ("%.3f"):format(row.ljssl / row.luasec) or "-", note or ""))
  io.flush()
end

-- Runs `work` through every implementation, `rounds` times, rotating the order;
-- `rate(seconds)` turns a time into the figure reported (bigger is better).
local function bench(name, unit, work, amount, rate)
  local times = {}
  for _, impl in ipairs(impls) do times[impl] = {} end
  for r = 1, rounds do
    for i = 0, #impls - 1 do
      local impl = impls[(r + i - 1) % #impls + 1]
      table.insert(times[impl], client(impl, work, amount))
    end
  end
  local row = { name = name, unit = unit }
  for _, impl in ipairs(impls) do row[impl] = rate(median(times[impl])) end
  results[#results + 1] = row
  print_row(name, row, 1, unit)
end

local MiB = 1024 * 1024
local bulk = quick and 4 * MiB or 512 * MiB
local echoes = quick and 200 or 20000
local handshakes = quick and 20 or 500

io.write(("ljssl benchmarks: %d round(s), loopback, TLS 1.3, ECDSA P-256; medians; bigger is better\n"):format(rounds))
bench("bulk (16 KiB reads)", "MiB/s", "bulk", bulk, function(s) return bulk / MiB / s end)
bench("line echo (*l)", "trips/s", "echo", echoes, function(s) return echoes / s end)
bench("full handshakes", "per s", "hs", handshakes, function(s) return handshakes / s end)

-- Each ljssl face against its own reference --------------------------------------------
-- Rows of the second table: { name, unit, ref_label, ref, face_label, face }.
local faces = {}

-- Runs the commands of `runs` ({ key, command }, ...) `rounds` times, rotating
-- the order; returns each key's median seconds.
local function medians(runs)
  local times = {}
  for _, r in ipairs(runs) do times[r[1]] = {} end
  for round = 1, rounds do
    for i = 0, #runs - 1 do
      local r = runs[(round + i - 1) % #runs + 1]
      table.insert(times[r[1]], run_client(r[2]))
    end
  end
  local m = {}
  for key, t in pairs(times) do m[key] = median(t) end
  return m
end

-- One comparison: `ref` and `face` are { label, command }; `rate(seconds)`
-- gives the figure (bigger is better); `short` names the ratio when printed.
local function compare(name, unit, short, ref, face, rate)
  local m = medians({ { "ref", ref[2] }, { "face", face[2] } })
  local row = { name = name, unit = unit, ref_label = ref[1], ref = rate(m.ref),
                face_label = face[1], face = rate(m.face) }
  faces[#faces + 1] = row
  io.write(("%-44s %s %10.1f   %s %10.1f %-8s %s %.3f\n"):format(name, ref[1], row.ref,
    face[1], row.face, unit, short, row.face / row.ref))
  io.flush()
end

-- The libtls face against the system libtls (libretls), both as clients of
-- tls_peer: bench/c/libtls_client.c and bench/libtls_client.lua.
local function libtls_cmds(work, amount, protocols)
  local extra = protocols and (" " .. protocols) or ""
  return { "system libtls", ("%s %d %s %d%s"):format(libtls_peer, port, work, amount, extra) },
         { "ljssl libtls face", ("%s %s/bench/libtls_client.lua %d %s %d%s"):format(
           luajit, root, port, work, amount, extra) }
end
local libtls_bulk = quick and 4 * MiB or 256 * MiB
local resumes = quick and 20 or 2000        -- long enough that start-up and noise weigh little
local have_libtls_peer = io.open(libtls_peer)
if have_libtls_peer then
  have_libtls_peer:close()
  local function row(name, unit, work, amount, rate, protocols)
    local ref, face = libtls_cmds(work, amount, protocols)
    compare("libtls face: " .. name, unit, "ljssl/libtls", ref, face, rate)
  end
  row("bulk (16 KiB reads)", "MiB/s", "bulk", libtls_bulk, function(s) return libtls_bulk / MiB / s end)
  row("line echo", "trips/s", "echo", echoes, function(s) return echoes / s end)
  row("full handshakes", "per s", "hs", handshakes, function(s) return handshakes / s end)
  -- libretls saves a client's session when the handshake ends, before a TLS
  -- 1.3 ticket arrives, so it resumes only TLS 1.2
  row("resumed handshakes (TLS 1.2)", "per s", "resume", resumes,
      function(s) return resumes / s end, "tlsv1.2")
else
  io.write("libtls face: skipped (no ", libtls_peer, ": make bench/.build/libtls_client)\n")
end
-- TLS 1.3 resumption: C/OpenSSL (tls_peer) against the libtls face, the only
-- ljssl face with a session API (LuaSec has none, so neither has its face).
do
  local _, face = libtls_cmds("resume", resumes, "tlsv1.3")
  compare("resumed handshakes (TLS 1.3)", "per s", "ljssl/C",
    { "C/OpenSSL", ("%s client %d resume %d"):format(peer, port, resumes) },
    { "ljssl libtls face", face[2] }, function(s) return resumes / s end)
end

-- The net face: 100 clients at once in one process, each doing line round
-- trips (bench/net_echo.lua), against the same through the LuaSec API with
-- socket.select: LuaSec's, and ljssl's LuaSec face.
do
  local clients, trips = 100, quick and 5 or 1000   -- 100 000 round trips a run: about 2 s
  local function cmd(impl)
    return ("%s %s/bench/net_echo.lua %s %d %d %d"):format(luajit, root, impl, port, clients, trips)
  end
  local runs = { { "net", cmd("net") }, { "ljssl", cmd("ljssl") } }
  if have_luasec then table.insert(runs, 1, { "luasec", cmd("luasec") }) end
  local m = medians(runs)
  local rate = {}
  for k, v in pairs(m) do rate[k] = clients * trips / v end
  local name = ("net face: line echo, %d clients"):format(clients)
  for _, ref in ipairs({ { "luasec", "LuaSec + socket.select" },
                         { "ljssl", "ljssl LuaSec face + socket.select" } }) do
    if rate[ref[1]] then
      faces[#faces + 1] = { name = name, unit = "trips/s", ref_label = ref[2], ref = rate[ref[1]],
                            face_label = "ljssl net face", face = rate.net }
    end
  end
  io.write(("%-44s LuaSec+select %10s   ljssl LuaSec face+select %10.1f   ljssl net face %10.1f trips/s" ..
    "  net/LuaSec %s  net/ljssl-LuaSec %.3f\n"):format(name,
    rate.luasec and ("%.1f"):format(rate.luasec) or "-", rate.ljssl, rate.net,
    rate.luasec and ("%.3f"):format(rate.net / rate.luasec) or "-", rate.net / rate.ljssl))
  io.flush()
end

-- Memory: the resident set each idle, established connection adds to the
-- client (1000 of them, or fewer if the fd limit is low).
do
  local _, limit = sh("ulimit -n")
  local count = math.min(quick and 20 or 1000, math.floor(((tonumber(limit) or 1024) - 64) / 2))
  local row = { name = ("RSS per idle connection (%d open)"):format(count), unit = "bytes", memory = true }
  for _, impl in ipairs(impls) do
    local values = {}
    for r = 1, quick and 1 or 3 do values[r] = client(impl, "idle", count) end
    row[impl] = median(values)
  end
  results[#results + 1] = row
  print_row("RSS per idle connection", row, 0, "bytes", " (smaller is better)")
  -- the least any library over OpenSSL can keep per idle connection: C with
  -- each connection's record buffers freed once it is idle
  local lean = {}
  for r = 1, quick and 1 or 3 do lean[r] = client("c", "idle-lean", count) end
  local floor = median(lean)
  faces[#faces + 1] = { name = "RSS per idle connection, against C/OpenSSL with its record buffers freed once idle " ..
      "(the least an idle OpenSSL connection keeps)", unit = "bytes", smaller = true,
    ref_label = "C/OpenSSL, buffers freed", ref = floor, face_label = "ljssl LuaSec face", face = row.ljssl,
    spread = "median of 3" }
  io.write(("%-44s C, buffers freed %.0f  ljssl %.0f  ljssl/C-lean %.3f%s\n"):format("RSS per idle connection",
    floor, row.ljssl, row.ljssl / floor,
    row.luasec and ("  C-lean/LuaSec %.3f"):format(floor / row.luasec) or ""))
end

-- Instructions per echo round trip in the client process (callgrind counts
-- user-space instructions, so this is stable on a noisy machine): the
-- difference between two run lengths, so that start-up cancels out.
local function instructions(impl, count)
  local out = os.tmpname()
  local cmd = impl == "c" and ("%s client %d echo %d"):format(peer, port, count)
    or impl == "system libtls" and ("%s %d echo %d"):format(libtls_peer, port, count)
    or impl == "ljssl libtls face" and ("%s %s/bench/libtls_client.lua %d echo %d"):format(luajit, root, port, count)
    or ("%s %s/bench/client.lua %s %d echo %d"):format(luajit, root, impl, port, count)
  local ok, log = sh(("valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=%s %s"):format(out, cmd))
  if not ok then finish(); error(cmd .. " failed under callgrind:\n" .. log) end
  local h = io.open(out)
  local text = h:read("*a")
  local total = tonumber(text:match("\nsummary: (%d+)") or text:match("\ntotals: (%d+)"))
  h:close()
  os.remove(out)
  return total
end
-- The main row counts only the measured round trips: the clients run
-- BENCH_WARMUP round trips first and toggle callgrind's collection around the
-- rest (bench/c/vgmark.c), so start-up and the JIT's compilation stay out.  (A
-- difference of two run lengths let the JIT's varying one-off work in: ljssl's
-- count moved between 14k and 19k from run to run.)
local vgmark = root .. "/bench/.build/vgmark.so"
local function measured_instructions(impl, warm, count)
  local cmd = impl == "c" and ("%s client %d echo %d"):format(peer, port, count)
    or ("%s %s/bench/client.lua %s %d echo %d"):format(luajit, root, impl, port, count)
  local ok, log = sh(("BENCH_WARMUP=%d BENCH_VGMARK=%s valgrind --tool=callgrind --collect-atstart=no " ..
    "--smc-check=all-non-file --callgrind-out-file=/dev/null %s"):format(warm, vgmark, cmd))
  if not ok then finish(); error(cmd .. " failed under callgrind:\n" .. log) end
  return assert(tonumber(log:match("Collected : (%d+)")), log) / count
end
if os.getenv("BENCH_NO_CALLGRIND") then
  io.write("instructions per echo: skipped (BENCH_NO_CALLGRIND)\n")
elseif sh("command -v valgrind") then
  local warm, count = quick and 100 or 2000, quick and 200 or 5000
  local row = { name = "echo round trip", unit = "instructions", smaller = true, spread = {} }
  for _, impl in ipairs(impls) do
    local counts = {}
    for i = 1, quick and 1 or 3 do
      counts[i] = measured_instructions(impl, warm, count)
    end
    row[impl] = median(counts)
    table.sort(counts)
    row.spread[impl] = ("%.0f..%.0f"):format(counts[1], counts[#counts])
  end
  results[#results + 1] = row
  print_row("instructions per echo", row, 0, "", " (smaller is better)")
  io.write(("%-28s ranges: C %s, LuaSec %s, ljssl %s\n"):format("", row.spread.c,
    row.spread.luasec or "-", row.spread.ljssl))
  -- The libtls face against the system libtls, the same way (libretls's
  -- count varies little: one measurement)
  if have_libtls_peer then
    local short, long = quick and 100 or 1000, quick and 300 or 4000
    local counts, ref = {}, nil
    ref = (instructions("system libtls", long) - instructions("system libtls", short)) / (long - short)
    for i = 1, quick and 1 or 3 do
      counts[i] = (instructions("ljssl libtls face", long) - instructions("ljssl libtls face", short)) / (long - short)
    end
    local face = median(counts)
    table.sort(counts)
    faces[#faces + 1] = { name = "libtls face: instructions per echo round trip (callgrind; ljssl: median of 3)",
      unit = "instructions", smaller = true, ref_label = "system libtls", ref = ref,
      face_label = "ljssl libtls face", face = face, spread = ("%.0f..%.0f"):format(counts[1], counts[#counts]) }
    io.write(("%-44s %s %10.0f   %s %10.0f (%s)  ljssl/libtls %.3f (smaller is better)\n"):format(
      "libtls face: instructions per echo", "system libtls", ref, "ljssl libtls face", face,
      faces[#faces].spread, face / ref))
  end
else
  io.write("instructions per echo: valgrind is not installed (apt-get install valgrind)\n")
end

-- Start-up: process wall time of a LuaJIT that requires the modules, minus a
-- bare LuaJIT's, medians of many runs.  ljssl is measured from the source tree
-- and from a `make install BYTECODE=1` tree (modules as LuaJIT bytecode).
local bytecode_dir = dir .. "/bytecode"
assert(sh(("cd %s && make -s install PREFIX=%s BYTECODE=1 LUAJIT=%s >/dev/null"):format(
  root, bytecode_dir, luajit)))
local lua_dirs = { ljssl = root .. "/ffi", ["ljssl bytecode"] = bytecode_dir .. "/share/lua/5.1" }
-- Medians of many runs of `code` under each implementation, the
-- implementations alternating run by run so that drift hits them alike.
local function startup(code, impls)
  local files, runs = {}, {}
  for _, impl in ipairs(impls) do
    local path = lua_dirs[impl] and ("package.path=%q..package.path;"):format(
      lua_dirs[impl] .. "/?.lua;" .. lua_dirs[impl] .. "/?/init.lua;") or ""
    if impl == "ljssl bytecode" then   -- the installed shim, as an installed program finds it
      path = path .. ("package.cpath=%q..package.cpath;"):format(bytecode_dir .. "/lib/lua/5.1/?.so;")
    end
    files[impl] = os.tmpname()
    local h = io.open(files[impl], "w"); h:write(path, impl == "bare" and "" or code); h:close()
    runs[impl] = {}
  end
  for i = 1, quick and 3 or 30 do
    for _, impl in ipairs(impls) do
      local t0 = socket.gettime()
      assert(sh(("%s %s"):format(luajit, files[impl])))
      runs[impl][i] = socket.gettime() - t0
    end
  end
  local ms = {}
  for _, impl in ipairs(impls) do
    os.remove(files[impl])
    ms[impl] = median(runs[impl]) * 1000
  end
  return ms
end
local function startup_row(name, code, with_luasec)
  local impls = { "bare", "ljssl", "ljssl bytecode" }
  if with_luasec and have_luasec then impls[#impls + 1] = "luasec" end
  local ms = startup(code, impls)
  for _, impl in ipairs({ "ljssl", "ljssl bytecode" }) do
    local row = { name = name .. (impl == "ljssl" and "" or ", bytecode install"), unit = "ms",
                  startup = true, ljssl = ms[impl] - ms.bare, luasec = ms.luasec and ms.luasec - ms.bare }
    results[#results + 1] = row
    io.write(("%-44s bare LuaJIT %.1f ms;%s  ljssl +%.1f ms  (smaller is better)\n"):format(
      row.name, ms.bare, row.luasec and ("  LuaSec +%.1f ms"):format(row.luasec) or "", row.ljssl))
  end
end
startup_row('require "ssl"', 'require "ssl"', true)
startup_row('require "ssl", "ssl.https"', 'require "ssl"; require "ssl.https"', true)
startup_row('require "libtls"', 'require "libtls"; require "libtls.config"')
startup_row('require "iomodules"', 'require "iomodules"')

finish()

if not quick then
  local lines = {
    "# Benchmark results",
    "",
    "Written by `make bench` (bench/run.lua). Figures are medians of " .. rounds ..
    " rounds in one run; only the ratios mean anything across machines.",
    "",
  }
  local _, uname = sh("uname -srm")
  local _, cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
  local _, nproc = sh("nproc")
  local _, openssl = sh("openssl version")
  local _, lj = sh(luajit .. " -v")
  local _, luasec = sh("dpkg-query -W -f '${Version}' lua-sec")
  for _, l in ipairs({
    "- date: " .. os.date("!%Y-%m-%d %H:%M UTC"),
    "- machine: " .. uname:gsub("%s+$", "") .. ", " .. cpu:gsub("^%s+", ""):gsub("%s+$", "") ..
      ", " .. nproc:gsub("%s+$", "") .. " CPUs (shared, noisy)",
    "- " .. openssl:gsub("%s+$", "") .. "; " .. lj:gsub("%s+$", "") .. "; LuaSec " ..
      (have_luasec and luasec or "not installed"),
    "",
    "| benchmark | C/OpenSSL | LuaSec | ljssl | ljssl / C | ljssl / LuaSec |",
    "|---|---|---|---|---|---|",
  }) do lines[#lines + 1] = l end
  -- a table row: the three figures with `decimals` places, then the ratios
  local function table_row(label, row, decimals)
    local num = "%." .. decimals .. "f"
    return ("| %s | " .. num .. " | %s | " .. num .. " | %.3f | %s |"):format(label,
      row.c, row.luasec and num:format(row.luasec) or "-", row.ljssl, row.ljssl / row.c,
      row.luasec and ("%.3f"):format(row.ljssl / row.luasec) or "-")
  end
  for _, row in ipairs(results) do
    if row.memory then
      lines[#lines + 1] = table_row(row.name .. " (bytes, smaller is better)", row, 0)
    elseif row.smaller then
      lines[#lines + 1] = ("| instructions per echo round trip (client, callgrind, after 2000 warm-up trips; median of 3, range) | %.0f (%s) | %s | %.0f (%s) | %.3f | %s |"):format(
        row.c, row.spread.c, row.luasec and ("%.0f (%s)"):format(row.luasec, row.spread.luasec) or "-",
        row.ljssl, row.spread.ljssl, row.ljssl / row.c,
        row.luasec and ("%.3f"):format(row.ljssl / row.luasec) or "-")
    elseif row.startup then
      lines[#lines + 1] = ("| %s (ms over a bare LuaJIT) | | %s | %.1f | | %s |"):format(row.name,
        row.luasec and ("%.1f"):format(row.luasec) or "", row.ljssl,
        row.luasec and ("%.2f"):format(row.ljssl / row.luasec) or "")
    else
      lines[#lines + 1] = table_row(("%s (%s)"):format(row.name, row.unit), row, 1)
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Each ljssl face against its own reference (bigger is better unless noted):"
  lines[#lines + 1] = ""
  lines[#lines + 1] = "| benchmark | reference | reference's figure | ljssl | ljssl's figure | ljssl / reference |"
  lines[#lines + 1] = "|---|---|---|---|---|---|"
  for _, row in ipairs(faces) do
    if row.smaller then
      lines[#lines + 1] = ("| %s (%s, smaller is better) | %s | %.0f | %s | %.0f (%s) | %.3f |"):format(row.name,
        row.unit, row.ref_label, row.ref, row.face_label, row.face, row.spread, row.face / row.ref)
    else
      lines[#lines + 1] = ("| %s (%s) | %s | %.1f | %s | %.1f | %.3f |"):format(row.name, row.unit,
        row.ref_label, row.ref, row.face_label, row.face, row.face / row.ref)
    end
  end
  -- Replace the figures between the markers; the notes around them are kept.
  local file = root .. "/bench/results.md"
  local h = io.open(file)
  local old = h and h:read("*a") or "# Benchmark results\n\n<!-- figures -->\n<!-- /figures -->\n"
  if h then h:close() end
  local figures = "<!-- figures -->\n" .. table.concat(lines, "\n", 3) .. "\n<!-- /figures -->"
  local new, n = old:gsub("<!%-%- figures %-%->.-<!%-%- /figures %-%->", function() return figures end)
  if n == 0 then new = old .. "\n" .. figures .. "\n" end
  h = assert(io.open(file, "w"))
  h:write(new)
  h:close()
  io.write("figures written to bench/results.md\n")

  -- The same ratios as a chart, turned so that above 1.0 means ljssl is better.
  package.path = root .. "/bench/?.lua;" .. package.path
  local bars = {}
  for _, row in ipairs(results) do
    local smaller = row.memory or row.smaller or row.startup
    local function turned(other)
      if not other or not row.ljssl or other == 0 or row.ljssl == 0 then return nil end
      return smaller and other / row.ljssl or row.ljssl / other
    end
    bars[#bars + 1] = { label = row.name, vs_c = turned(row.c), vs_luasec = turned(row.luasec) }
  end
  -- the faces' rows: a C reference as "vs C", LuaSec's API as "vs LuaSec"
  for _, row in ipairs(faces) do
    local lua_ref = row.ref_label:find("LuaSec", 1, true)
    local label = row.name:gsub("^libtls face: ", "libtls: "):gsub("^net face: line echo, ", "net echo, ") ..
      (row.ref_label == "system libtls" and " vs libtls" or lua_ref and (row.ref_label:find("ljssl") and
        " vs ljssl-LuaSec" or "") or "")
    if row.smaller then label = "libtls: instructions per echo vs libtls" end
    local bar = { label = label }
    bar[lua_ref and "vs_luasec" or "vs_c"] = row.smaller and row.ref / row.face or row.face / row.ref
    bars[#bars + 1] = bar
  end
  require("plot").write(root .. "/bench/ratios.png", bars)
  io.write("chart written to bench/ratios.png\n")
end
