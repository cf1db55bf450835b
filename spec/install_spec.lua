-- make install: the installed tree works on its own, shim included.
local helpers = require "helpers"

describe("make install", function()
  it("installs modules that load from anywhere, with the shim beside them", function()
    local prefix = helpers.tmpdir()
    local ok, out = helpers.sh(("make -s install PREFIX=%s"):format(prefix))
    assert.is_true(ok, out)
    local lua_dir = prefix .. "/share/lua/5.1"
    local script = ([[
      package.path = "%s/?.lua;%s/?/init.lua;" .. package.path
      local ssl = require "ssl"
      local lib = require "ssl.lib"
      print(lib.shim_info)
      print(ssl._VERSION)
      print(package.searchpath("ssl", package.path))
    ]]):format(lua_dir, lua_dir)
    helpers.writefile(prefix .. "/check.lua", script)
    ok, out = helpers.sh(("cd / && %s %s/check.lua"):format(helpers.luajit(), prefix))
    helpers.sh("rm -rf " .. prefix)
    assert.is_true(ok, out)
    local shim, version, path = out:match("^([^\n]*)\n([^\n]*)\n([^\n]*)")
    if os.getenv("LJSSL_SHIM") ~= "off" then
      assert.equal(lua_dir .. "/ssl/libljssl_shim.so", shim)
    end
    assert.truthy(version:match("^1%.3%.2 %(ljssl"), version)
    assert.equal(lua_dir .. "/ssl/init.lua", path)
  end)
end)
