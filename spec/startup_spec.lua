-- Start-up: what `require` loads and declares, proved by structure (which
-- modules are in package.loaded, which areas are declared), never by timing.
-- bench/run.lua measures the time itself.
local helpers = require "helpers"

-- Runs a Lua snippet in a child LuaJIT with ffi/ on the path; answers its output.
local function child(code)
  local script = os.tmpname()
  helpers.writefile(script, 'package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path\n' .. code)
  local ok, out = helpers.sh(("%s %s"):format(helpers.luajit(), script))
  os.remove(script)
  assert(ok, out)
  return out
end

-- Prints, one per line, which of these modules the snippet left loaded.
local PROBE = [[
for _, m in ipairs({ "ssl.core", "ssl.context", "ssl.x509", "ssl.client", "ljssl.engine.session",
                     "ljssl.engine.callbacks", "ljssl.engine.context", "ljssl.engine.trust",
                     "ljssl.engine.policy", "cdefs.ssl", "cdefs.x509", "cdefs.bio", "cdefs.ocsp",
                     "cdefs.shim", "ssl.face", "ljssl.lib_more" }) do
  print(m, package.loaded[m] ~= nil)
end
]]

local function loaded(out, m)
  return out:match("\n" .. m:gsub("%.", "%%.") .. "\t(%a+)") == "true"
    or out:match("^" .. m:gsub("%.", "%%.") .. "\t(%a+)") == "true"
end

describe("start-up", function()
  it('require "ssl" loads OpenSSL and nothing of the engine', function()
    local out = child('local ssl = require "ssl"; assert(ssl._VERSION:find("OpenSSL 3", 1, true))\n' .. PROBE)
    for _, m in ipairs({ "ssl.core", "ssl.context", "ssl.x509", "ljssl.engine.session",
                         "ljssl.engine.callbacks", "ljssl.engine.trust", "cdefs.ssl",
                         "cdefs.x509", "cdefs.bio", "cdefs.ocsp", "cdefs.shim", "ssl.face",
                         "ljssl.lib_more" }) do
      assert.is_false(loaded(out, m), m .. " loaded by require \"ssl\"\n" .. out)
    end
  end)

  it('require "ssl.https" does not load the engine either', function()
    local out = child('require "ssl"; require "ssl.https"\n' .. PROBE)
    assert.is_true(loaded(out, "ssl.client"), out)
    for _, m in ipairs({ "ssl.core", "ssl.context", "ljssl.engine.session", "cdefs.ssl", "ssl.face",
                         "ljssl.lib_more" }) do
      assert.is_false(loaded(out, m), m .. " loaded by require \"ssl.https\"\n" .. out)
    end
  end)

  it("the first newcontext loads the engine, and connections get conn:info", function()
    local out = child([[
local ssl = require "ssl"
local ctx = assert(ssl.newcontext({ mode = "client", protocol = "any" }))
assert(type(require("ssl.core").methods.info) == "function")
]] .. PROBE)
    for _, m in ipairs({ "ssl.core", "ssl.context", "ljssl.engine.callbacks", "cdefs.ssl", "ssl.face" }) do
      assert.is_true(loaded(out, m), m .. " not loaded by newcontext\n" .. out)
    end
    assert.is_false(loaded(out, "ssl.x509"), out)
  end)

  it("keeps LuaSec's fields: _COPYRIGHT as ssl.core says, config.options as ssl.context knows", function()
    local ssl = require "ssl"
    assert.equal(require("ssl.core").copyright(), ssl._COPYRIGHT)
    local names = {}
    for name in pairs(require("ssl.context").OPTIONS) do names[name] = true end
    assert.same(names, ssl.config.options)
    assert.is_true(ssl.config.options.no_ticket)
    for _, key in ipairs({ "newcontext", "wrap", "connect", "loadcertificate", "checkhostname",
                           "rawcontext", "rawconnection", "use_system_ca" }) do
      assert.equal("function", type(ssl[key]), key)
    end
  end)

  it("ljssl.lib declares the other areas on first reach, and K answers every constant", function()
    local out = child([[
local lib = require "ljssl.lib"
print("after lib", package.loaded["cdefs.ssl"] ~= nil, package.loaded["cdefs.x509"] ~= nil)
local op = lib.K.SSL_OP_NO_TICKET
print("SSL_OP_NO_TICKET", require("ffi").istype("uint64_t", op), package.loaded["cdefs.ssl"] ~= nil)
local same = true
for _, a in ipairs({ "err", "bio", "x509", "ssl", "ocsp", "libc" }) do
  for name, value in pairs(require("cdefs." .. a).const) do
    if lib.K[name] ~= value then same = false end
  end
end
print("K", same)
print("missing", lib.K.NO_SUCH_CONSTANT == nil)
]])
    assert.truthy(out:find("after lib\tfalse\tfalse", 1, true), out)
    assert.truthy(out:find("SSL_OP_NO_TICKET\ttrue\ttrue", 1, true), out)
    assert.truthy(out:find("K\ttrue", 1, true), out)
    assert.truthy(out:find("missing\ttrue", 1, true), out)
  end)

  it("ljssl.lib parses its error, macro and callback helpers on first reach", function()
    local out = child([[
local lib = require "ljssl.lib"
print("after lib", package.loaded["ljssl.lib_more"] ~= nil)
print("check", type(lib.check), type(lib.SSL_CTX_set_mode), type(lib.password_cb),
      package.loaded["ljssl.lib_more"] ~= nil, rawget(lib, "check") == lib.check)
print("none", lib.no_such_helper == nil)
]])
    assert.truthy(out:find("after lib\tfalse", 1, true), out)
    assert.truthy(out:find("check\tfunction\tfunction\tfunction\ttrue\ttrue", 1, true), out)
    assert.truthy(out:find("none\ttrue", 1, true), out)
  end)

  it("lib.ssl declares every area", function()
    local out = child([[
local lib = require "ljssl.lib"
local C = lib.ssl
assert(C.SSL_CTX_new ~= nil and lib.crypto.X509_new ~= nil and lib.crypto.OCSP_RESPONSE_free ~= nil)
print("ok", package.loaded["cdefs.ocsp"] ~= nil)
]])
    assert.truthy(out:find("ok\ttrue", 1, true), out)
  end)
end)
