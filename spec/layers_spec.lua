-- The house's layering, checked on the sources: cdefs → lib → engine → faces,
-- imports flowing downwards only, and no face reaching into another face.
-- Every `require` of a module name in ffi/ counts, including lazy ones inside
-- functions.

local function files(dir)
  local p = assert(io.popen("find ffi/" .. dir .. " -name '*.lua' | sort"))
  local list = {}
  for f in p:lines() do list[#list + 1] = f end
  p:close()
  return list
end

local function requires(path)
  local src = assert(io.open(path)):read("*a"):gsub("%-%-[^\n]*", "")   -- comments
  local found = {}
  for name in src:gmatch("require%s*%(?%s*[\"']([%w_.]+)[\"']") do found[#found + 1] = name end
  return found
end

local BUILTIN = { ffi = true, bit = true, jit = true, ["jit.util"] = true, ["string.buffer"] = true,
                  ["table.new"] = true, ["table.clear"] = true }

local function top(name) return name:match("^[^.]+") end

-- Which top-level module roots each layer may import (besides builtins).
local ALLOWED = {
  cdefs = { cdefs = true },
  ljssl = { cdefs = true, ljssl = true },
  ssl = { cdefs = true, ljssl = true, ssl = true, socket = true, mime = true, ltn12 = true },
  libtls = { cdefs = true, ljssl = true, libtls = true, socket = true },
  iomodules = { cdefs = true, ljssl = true, iomodules = true, socket = true },
}

describe("layers", function()
  for layer, allowed in pairs(ALLOWED) do
    it(layer .. " imports only from below or from itself", function()
      local bad = {}
      for _, f in ipairs(files(layer)) do
        for _, name in ipairs(requires(f)) do
          -- ngx.* exists only inside OpenResty, for the cosocket face (ssl.ngx)
          local ok = BUILTIN[name] or allowed[top(name)] or (layer == "ssl" and top(name) == "ngx")
          if not ok then bad[#bad + 1] = f .. " requires " .. name end
        end
      end
      assert.same({}, bad)
    end)
  end

  it("every module under ffi/ belongs to a known layer", function()
    local p = assert(io.popen("ls ffi"))
    for entry in p:lines() do
      assert.is_truthy(ALLOWED[entry], "unknown root ffi/" .. entry)
    end
    p:close()
  end)
  it("the libtls face runs beside the real LuaSec as `ssl` (the engine is not under ssl.*)", function()
    local helpers = require "helpers"
    local ok, out = helpers.sh([[luajit -e 'package.path = package.path .. ";ffi/?.lua;ffi/?/init.lua"
      local ssl = require "ssl"
      assert(not ssl._VERSION:find("ljssl"), "expected the system LuaSec")
      local tls = require "libtls"
      local cfg = require("libtls.config").new()
      local c = assert(tls.client(cfg))
      print(ssl._VERSION, c ~= nil)' 2>&1]])
    assert(ok, out)
    assert.matches("^1%.%d[%d.]*\ttrue", out)
  end)
end)
