-- Installing: `make install PREFIX=...` and the rockspec's module layout both
-- give a tree that works with the checkout out of the path, demo included.
local helpers = require "helpers"

-- Runs `code` in a child LuaJIT from / with only `lua_dir` (and the system's
-- paths) to find modules, `lib_dir` for the shim.
local function run_from(lua_dir, lib_dir, code)
  local script = os.tmpname()
  helpers.writefile(script, code)
  local ok, out = helpers.sh(("cd / && LUA_PATH='%s/?.lua;%s/?/init.lua;;' LUA_CPATH='%s/?.so;;' %s %s")
    :format(lua_dir, lua_dir, lib_dir or "/nonexistent", helpers.luajit(), script))
  os.remove(script)
  return ok, out
end

describe("installation", function()
  it("make install: modules, the shim on package.cpath, the command, the demo", function()
    local prefix = helpers.tmpdir()
    local ok, out = helpers.sh(("make -s install PREFIX=%s"):format(prefix))
    assert.is_true(ok, out)
    local lua_dir, lib_dir = prefix .. "/share/lua/5.1", prefix .. "/lib/lua/5.1"
    ok, out = run_from(lua_dir, lib_dir, [[
      local ssl = require "ssl"
      print(require("ljssl.lib").shim_info)
      print(ssl._VERSION)
      print(package.searchpath("ssl", package.path))
      require "libtls"; require "iomodules"
      print("faces ok")
    ]])
    assert.is_true(ok, out)
    local shim, version, path = out:match("^([^\n]*)\n([^\n]*)\n([^\n]*)")
    if os.getenv("LJSSL_SHIM") ~= "off" then assert.equal(lib_dir .. "/libljssl_shim.so", shim) end
    assert.truthy(version:match("^1%.3%.2 %(ljssl"), version)
    assert.equal(lua_dir .. "/ssl/init.lua", path)
    assert.truthy(out:find("faces ok", 1, true))
    -- the demo and the command, run from the prefix
    ok, out = helpers.sh(("cd / && LUA_PATH='%s/?.lua;%s/?/init.lua;;' LUA_CPATH='%s/?.so;;' timeout 60 %s %s/share/ljssl/demo/demo.lua")
      :format(lua_dir, lua_dir, lib_dir, helpers.luajit(), prefix))
    assert.is_true(ok, out)
    assert.truthy(out:find("verification: ok", 1, true), out)
    ok, out = helpers.sh(("cd / && LUA_PATH='%s/?.lua;%s/?/init.lua;;' %s/bin/ljssl --help"):format(lua_dir, lua_dir, prefix))
    assert.is_true(ok, out)
    assert.truthy(out:find("usage: ljssl COMMAND", 1, true))
    for _, face in ipairs({ "ssl", "libtls", "iomodules" }) do
      assert.truthy(helpers.readfile(("%s/share/ljssl/meta/%s.lua"):format(prefix, face)), face)
    end
    helpers.sh("rm -rf " .. prefix)
  end)

  it("make install BYTECODE=1: bytecode modules that load, work and keep line numbers", function()
    local prefix = helpers.tmpdir()
    local ok, out = helpers.sh(("make -s install PREFIX=%s BYTECODE=1 LUAJIT=%s"):format(prefix, helpers.luajit()))
    assert.is_true(ok, out)
    local lua_dir, lib_dir = prefix .. "/share/lua/5.1", prefix .. "/lib/lua/5.1"
    for _, module in ipairs({ "ssl/init.lua", "ljssl/engine/session.lua", "cdefs/ssl.lua", "libtls/init.lua" }) do
      assert.equal("\27LJ", helpers.readfile(lua_dir .. "/" .. module):sub(1, 3), module)
    end
    ok, out = run_from(lua_dir, lib_dir, [[
      local ssl = require "ssl"
      local ctx = assert(ssl.newcontext({ mode = "client", protocol = "any" }))
      print(type(ctx), require("ljssl.lib").shim_info)
      local where = debug.getinfo(ssl.newcontext, "S")
      print(("defined at %s:%d"):format(where.short_src, where.linedefined))
      require "libtls"; require "iomodules"
      print("faces ok")
    ]])
    assert.is_true(ok, out)
    assert.truthy(out:find("userdata", 1, true), out)
    -- the shim is found next to the modules' recorded install path
    if os.getenv("LJSSL_SHIM") ~= "off" then
      assert.truthy(out:find(lib_dir .. "/libljssl_shim.so", 1, true), out)
    end
    -- tracebacks still name the file and line (-g keeps the debug information)
    assert.truthy(out:find("defined at [^\n]*ssl/init.lua:[1-9]%d*\n"), out)
    assert.truthy(out:find("faces ok", 1, true), out)
    helpers.sh("rm -rf " .. prefix)
  end)

  it("the rockspec lists every module, and its layout works", function()
    local rockspec = {}
    assert(setfenv(assert(loadfile("ljssl-0.1-1.rockspec")), rockspec))()
    local modules = rockspec.build.modules
    local ok, out = helpers.sh("cd ffi && find . -name '*.lua' | sort")
    assert.is_true(ok, out)
    local listed = 0
    for file in out:gmatch("%./([^\n]+)") do
      local name = file:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      assert.equal("ffi/" .. file, modules[name], name)
      listed = listed + 1
    end
    local count = 0
    for _ in pairs(modules) do count = count + 1 end
    assert.equal(listed, count)
    -- install as LuaRocks' builtin type would: module name -> path
    local tree = helpers.tmpdir()
    for name, file in pairs(modules) do
      local dest = tree .. "/" .. name:gsub("%.", "/") .. (file:find("/init%.lua$") and "/init.lua" or ".lua")
      assert(helpers.sh(("mkdir -p $(dirname %s) && cp %s %s"):format(dest, file, dest)))
    end
    ok, out = run_from(tree, nil, [[
      local ssl = require "ssl"
      assert(not require("ljssl.lib").shim)          -- no shim in a rockspec install
      local ctx = assert(ssl.newcontext({ mode = "client", protocol = "any" }))
      require "libtls"; require "iomodules"; require "ssl.https"
      print("rock ok")
    ]])
    helpers.sh("rm -rf " .. tree)
    assert.is_true(ok, out)
    assert.truthy(out:find("rock ok", 1, true), out)
  end)
end)
