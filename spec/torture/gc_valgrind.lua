-- spec/torture/gc_valgrind.lua — the GC torture under valgrind memcheck
-- (`TORTURE=gc_valgrind bash tools/run_torture`, part of `make torture`).
--
-- Runs spec/fixtures/gc_workload.lua (handshakes, I/O and certificate work
-- through the LuaSec, libtls and net faces and memory-BIO sessions, with the
-- JIT off, a full collectgarbage("collect") on every line, and objects dropped
-- without close so finalizers run in whatever order the collector picks) under
-- valgrind, with the shim and without it (LJSSL_SHIM=off), and requires:
--   - the workload's own checks passed (exit 0, "gc_workload: ok");
--   - no memcheck error: no invalid read or write, no invalid free, no use of
--     uninitialised memory outside LuaJIT (spec/torture/luajit.supp);
--   - nothing "definitely lost" or "indirectly lost" at exit (what OpenSSL or
--     LuaJIT still reach at exit is fine).
--
-- The host.  Stock LuaJIT allocates Lua strings and ffi.new buffers with its
-- own allocator on mmap'd memory, which valgrind cannot see into: OpenSSL
-- reading a Lua string the collector has freed goes unnoticed.  So the main
-- runs use a 40-line host, built here from the C text below and linked with
-- Debian's libluajit-5.1.so.2, that calls lua_newstate() with a realloc/free
-- allocator (allowed on GC64 builds): every Lua allocation is then a malloc
-- block that memcheck tracks, and every collection a free it checks.  One
-- more pass runs the stock `luajit` binary (with "step" collections, since it
-- cannot show Lua-owned frees anyway; it checks the real interpreter).
--
-- The controls.  Before the workload, the same valgrind command (same
-- suppressions) runs deliberate bugs that it must flag: a double free of an
-- X509 through the FFI (OpenSSL's frames, called from LuaJIT), OpenSSL reading
-- a Lua string after the collector freed it (the sysmalloc host), and Lua
-- reading freed OpenSSL memory.  A harness that flags none of them would pass
-- anything, so any control passing clean fails the whole run.
--
-- Environment: GC_VALGRIND_ROUNDS (workload rounds, each running every
-- variant of every part; default 1),
-- GC_VALGRIND_GC (collect|step, default collect), GC_VALGRIND_KEEP=1 keeps the
-- logs (printed paths).  Prints one line of figures per run and exits 0 when
-- everything held.
package.path = "ffi/?.lua;ffi/?/init.lua;spec/?.lua;" .. package.path
local helpers = require "helpers"
local sh = helpers.sh

local ROUNDS = tonumber(os.getenv("GC_VALGRIND_ROUNDS") or "1")
local GC = os.getenv("GC_VALGRIND_GC") or "collect"
local KEEP = os.getenv("GC_VALGRIND_KEEP") == "1"
local LUAJIT = helpers.luajit()
local SUPP = "spec/torture/luajit.supp"

local failures = 0
local function fail(msg)
  failures = failures + 1
  print("FAIL " .. msg)
end

if not sh("command -v valgrind >/dev/null") then
  print("FAIL valgrind is not installed (make torture installs it)")
  os.exit(1)
end

local work = helpers.tmpdir()
local certs = helpers.certs()

-- The sysmalloc host ---------------------------------------------------------------------------

local HOST_C = [[
/* LuaJIT with malloc/free as its allocator, for valgrind (gc_valgrind.lua). */
#include <stdio.h>
#include <stdlib.h>
typedef struct lua_State lua_State;
typedef void *(*lua_Alloc)(void *ud, void *ptr, size_t osize, size_t nsize);
lua_State *lua_newstate(lua_Alloc f, void *ud);
void luaL_openlibs(lua_State *L);
int luaL_loadfile(lua_State *L, const char *filename);
int lua_pcall(lua_State *L, int nargs, int nresults, int errfunc);
void lua_close(lua_State *L);
const char *lua_tolstring(lua_State *L, int idx, size_t *len);
void lua_createtable(lua_State *L, int narr, int nrec);
void lua_pushstring(lua_State *L, const char *s);
void lua_rawseti(lua_State *L, int idx, int n);
void lua_setfield(lua_State *L, int idx, const char *k);
void lua_getfield(lua_State *L, int idx, const char *k);
void lua_remove(lua_State *L, int idx);
#define LUA_GLOBALSINDEX (-10002)
static void *sysalloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud; (void)osize;
  if (nsize == 0) { free(ptr); return NULL; }
  return realloc(ptr, nsize);
}
int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s script [args]\n", argv[0]); return 2; }
  lua_State *L = lua_newstate(sysalloc, NULL);
  if (!L) { fprintf(stderr, "lua_newstate refused a custom allocator (not a GC64 LuaJIT)\n"); return 2; }
  luaL_openlibs(L);
  lua_createtable(L, argc, 0);                       /* arg, as luajit sets it */
  for (int i = 0; i < argc; i++) { lua_pushstring(L, argv[i]); lua_rawseti(L, -2, i - 1); }
  lua_setfield(L, LUA_GLOBALSINDEX, "arg");
  lua_getfield(L, LUA_GLOBALSINDEX, "debug");
  lua_getfield(L, -1, "traceback");
  lua_remove(L, -2);
  int status = luaL_loadfile(L, argv[1]);
  if (status == 0) {
    for (int i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
    status = lua_pcall(L, argc - 2, 0, 1);
  }
  if (status) fprintf(stderr, "%s: %s\n", argv[0], lua_tolstring(L, -1, NULL));
  lua_close(L);                                      /* runs every finalizer */
  return status ? 1 : 0;
}
]]

local function build_host()
  local ok, lib = sh("ldconfig -p | awk '/libluajit-5\\.1\\.so\\.2 /{print $NF; exit}'")
  lib = ok and lib:gsub("%s+$", "") or ""
  if lib == "" then return nil, "libluajit-5.1.so.2 not found (package libluajit2-5.1-2 or libluajit-5.1-2)" end
  helpers.writefile(work .. "/host.c", HOST_C)
  local built, out = sh(("gcc -O1 -g -o %s/lj_sysmalloc %s/host.c %s -lm -ldl"):format(work, work, lib))
  if not built then return nil, "cannot build the host: " .. out end
  local runs, rout = sh(work .. "/lj_sysmalloc spec/fixtures/gc_workload.lua " .. certs .. " 1 none x509")
  if not runs then return nil, "the host does not run the workload: " .. rout end
  return work .. "/lj_sysmalloc", lib
end

local host, host_info = build_host()
if host then
  print("host: " .. host .. " (LuaJIT from " .. host_info .. ", malloc allocator)")
else
  fail("sysmalloc host: " .. host_info)
end

-- One valgrind run ------------------------------------------------------------------------

local VALGRIND = "valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect " ..
  "--errors-for-leak-kinds=definite,indirect --num-callers=40 --error-limit=no " ..
  "--child-silent-after-fork=yes --suppressions=" .. SUPP

local nrun = 0
-- Runs the workload under valgrind; returns a table of figures.
local function valgrind(interp, rounds, gc, parts, shim)
  nrun = nrun + 1
  local log = ("%s/run%d.log"):format(work, nrun)
  local env = "GC_WORKLOAD_WAIT=900 " .. (shim and "" or "LJSSL_SHIM=off ")
  local cmd = ("%stimeout 3000 %s --log-file=%s %s spec/fixtures/gc_workload.lua %s %d %s %s")
    :format(env, VALGRIND, log, interp, certs, rounds, gc, parts)
  local t0 = os.time()
  local _, out, status = sh(cmd)
  local text = helpers.readfile(log)
  local r = { status = status, out = out, log = log, text = text, seconds = os.time() - t0 }
  r.errors, r.contexts, r.suppressed = text:match("ERROR SUMMARY: ([%d,]+) errors from ([%d,]+) contexts %(suppressed: ([%d,]+)")
  local function num(s) return s and tonumber((s:gsub(",", ""))) end
  r.errors, r.suppressed = num(r.errors), num(r.suppressed)
  r.definite = num(text:match("definitely lost: ([%d,]+) bytes")) or 0
  r.indirect = num(text:match("indirectly lost: ([%d,]+) bytes")) or 0
  r.reachable = num(text:match("still reachable: ([%d,]+) bytes")) or 0
  r.allocs = num(text:match("total heap usage: ([%d,]+) allocs"))
  r.figures = out:match("gc_workload: (parts=[^\n]*)")
  r.ok = out:find("gc_workload: ok", 1, true) ~= nil
  return r
end

-- The first error reports of a log (for the failure message).
local function first_errors(text, n)
  local lines, taking, blocks = {}, false, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local body = line:gsub("^==%d+== ?", "")
    if body:match("^Invalid") or body:match("^Conditional") or body:match("^Use of uninit")
       or body:match("^Mismatched") or body:match("^Syscall param") or body:match("lost in loss record")
       or body:match("^Source and destination overlap") then
      blocks = blocks + 1
      if blocks > n then break end
      taking = true
    elseif body == "" then
      taking = false
    end
    if taking then lines[#lines + 1] = "    " .. body end
  end
  return table.concat(lines, "\n")
end

local function describe(r)
  return ("errors=%s suppressed=%s definitely_lost=%dB indirectly_lost=%dB still_reachable=%dB allocs=%s %ds")
    :format(tostring(r.errors), tostring(r.suppressed), r.definite, r.indirect, r.reachable,
            tostring(r.allocs), r.seconds)
end

-- The controls: each must be flagged, by a report whose stack shows where ------------------

local controls = {
  { "control-double-free", "luajit", LUAJIT, "libcrypto" },
}
if host then
  table.insert(controls, 1, { "control-double-free", "sysmalloc host", host, "libcrypto" })
  controls[#controls + 1] = { "control-lua-uaf", "sysmalloc host", host, "libcrypto" }
  controls[#controls + 1] = { "control-ffi-uaf", "sysmalloc host", host, "free'd" }
end
for _, c in ipairs(controls) do
  local name, hostname, interp, where = c[1], c[2], c[3], c[4]
  local r = valgrind(interp, 1, "collect", name, true)
  local report = first_errors(r.text, 1)
  local flagged = (r.errors or 0) > 0 and r.status == 99 and report:find(where, 1, true) ~= nil
  print(("%-7s %s (%s): %s"):format(flagged and "flagged" or "MISSED", name, hostname, describe(r)))
  if not flagged then
    fail(("the harness did not flag the deliberate bug %s (%s); status %s\n%s\n%s")
      :format(name, hostname, tostring(r.status), report, r.out))
  end
end

-- The workload -------------------------------------------------------------------------------

local runs = {}
if host then
  runs[#runs + 1] = { "sysmalloc host", host, ROUNDS, GC, true }
  runs[#runs + 1] = { "sysmalloc host", host, ROUNDS, GC, false }
end
runs[#runs + 1] = { "luajit", LUAJIT, 1, "step", true }
runs[#runs + 1] = { "luajit", LUAJIT, 1, "step", false }

local total = { handshakes = 0, seconds = 0 }
for _, run in ipairs(runs) do
  local hostname, interp, rounds, gc, shim = run[1], run[2], run[3], run[4], run[5]
  local r = valgrind(interp, rounds, gc, "luasec,x509,https,libtls,net,membio", shim)
  local label = ("%s, shim %s, %d round(s), gc %s"):format(hostname, shim and "on" or "off", rounds, gc)
  local clean = r.status == 0 and r.ok and r.errors == 0 and r.definite == 0 and r.indirect == 0
  print(("%-7s %s: %s"):format(clean and "clean" or "DIRTY", label, describe(r)))
  print("        " .. tostring(r.figures))
  total.seconds = total.seconds + r.seconds
  total.handshakes = total.handshakes + tonumber(r.figures and r.figures:match("handshakes=(%d+)") or 0)
  if not clean then
    fail(("%s: status %s, workload %s\n%s\n%s\nlog: %s"):format(label, tostring(r.status),
      r.ok and "ok" or "FAILED", first_errors(r.text, 5), r.out:sub(-3000), r.log))
    KEEP = true
  end
end

print(("gc_valgrind: %d runs, %d handshakes under valgrind in %ds, %d failure(s)")
  :format(#runs, total.handshakes, total.seconds, failures))
if KEEP then print("logs kept in " .. work) else sh("rm -rf " .. work .. " " .. certs) end
os.exit(failures == 0 and 0 or 1)
