-- ljssl.lib: loading, version, the error helper, macro helpers, the shim, SIGPIPE.
local ffi = require "ffi"
local helpers = require "helpers"
local lib = require "ljssl.lib"
local C, crypto, K = lib.ssl, lib.crypto, lib.K

local function new_ctx()
  local ctx = C.SSL_CTX_new(C.TLS_method())
  assert(ctx ~= nil)
  return ffi.gc(ctx, C.SSL_CTX_free)
end

-- Runs a Lua snippet in a child LuaJIT with ffi/ on the path.
local function child(code, env)
  local script = os.tmpname()
  helpers.writefile(script, 'package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path\n' .. code)
  local ok, out, status = helpers.sh(("env %s %s %s"):format(env or "", helpers.luajit(), script))
  os.remove(script)
  return ok, out, status
end

describe("ljssl.lib", function()
  it("loads OpenSSL 3 and reads its version at run time", function()
    assert.is_true(lib.version_number >= 0x30000000)
    assert.equal(3, lib.version_major)
    assert.truthy(lib.version_text:match("^OpenSSL 3%.%d+%.%d+"))
  end)

  it("names the library it could not load", function()
    local ok, out = child('require "ljssl.lib"', "LJSSL_LIBSSL=/nonexistent/libssl.so")
    assert.is_false(ok)
    assert.truthy(out:find("ljssl: cannot load LJSSL_LIBSSL=/nonexistent/libssl.so", 1, true), out)
  end)

  it("uses the shim exactly when it should", function()
    local expect = os.getenv("LJSSL_EXPECT_SHIM")
    if expect == "1" then
      assert.is_not_nil(lib.shim, lib.shim_info)
      assert.equal(require("cdefs.shim").const.LJSSL_SHIM_VERSION, lib.shim.ljssl_shim_version())
    elseif expect == "0" then
      assert.is_nil(lib.shim)
      assert.equal("disabled by LJSSL_SHIM", lib.shim_info)
    end
  end)

  it("explains a shim path that does not exist", function()
    local ok, out = child('local lib = require "ljssl.lib"; print(lib.shim, lib.shim_info)',
                          "LJSSL_SHIM=/nonexistent/shim.so")
    assert.is_true(ok, out)
    assert.truthy(out:find("nil\t/nonexistent/shim.so does not exist", 1, true), out)
  end)

  describe("pop_error", function()
    it("returns nil on an empty queue", function()
      lib.clear_errors()
      assert.is_nil(lib.pop_error())
    end)

    it("describes an OpenSSL error and drains the queue", function()
      local ctx = new_ctx()
      assert.equal(0, C.SSL_CTX_set_cipher_list(ctx, "NO-SUCH-CIPHER"))
      local code, reason, line = lib.pop_error()
      assert.equal("no cipher match", reason)
      assert.equal(K.ERR_LIB_SSL, lib.ERR_GET_LIB(code))
      assert.truthy(line:match("^error:%x+:SSL routines:"), line)
      assert.equal(0, tonumber(crypto.ERR_peek_error()))
    end)

    it("gives the C library's text for a system error", function()
      local ctx = new_ctx()
      assert.equal(0, C.SSL_CTX_use_certificate_chain_file(ctx, "/nonexistent/cert.pem"))
      local code, reason = lib.pop_error()
      assert.is_true(lib.ERR_SYSTEM_ERROR(code))
      assert.equal(K.ERR_LIB_SYS, lib.ERR_GET_LIB(code))
      assert.equal("No such file or directory", reason)
    end)

    it("splits reason codes as the C macros do", function()
      local code = 0x0A000126   -- SSL routines, unexpected eof while reading
      assert.equal(K.SSL_R_UNEXPECTED_EOF_WHILE_READING, lib.ERR_GET_REASON(code))
      assert.equal(K.ERR_LIB_SSL, lib.ERR_GET_LIB(code))
      assert.is_false(lib.ERR_SYSTEM_ERROR(code))
      assert.equal(2, lib.ERR_GET_REASON(bit.bor(K.ERR_SYSTEM_FLAG, 2)))
    end)
  end)

  describe("macro helpers", function()
    it("set and read modes and protocol bounds", function()
      local ctx = new_ctx()
      lib.SSL_CTX_set_mode(ctx, K.SSL_MODE_ENABLE_PARTIAL_WRITE)
      assert.is_true(bit.band(tonumber(lib.SSL_CTX_get_mode(ctx)), K.SSL_MODE_ENABLE_PARTIAL_WRITE) ~= 0)
      lib.SSL_CTX_clear_mode(ctx, K.SSL_MODE_ENABLE_PARTIAL_WRITE)
      assert.equal(0, bit.band(tonumber(lib.SSL_CTX_get_mode(ctx)), K.SSL_MODE_ENABLE_PARTIAL_WRITE))
      assert.equal(1, tonumber(lib.SSL_CTX_set_min_proto_version(ctx, K.TLS1_2_VERSION)))
      assert.equal(K.TLS1_2_VERSION, lib.SSL_CTX_get_min_proto_version(ctx))
      assert.equal(1, tonumber(lib.SSL_CTX_set_max_proto_version(ctx, K.TLS1_3_VERSION)))
      assert.equal(K.TLS1_3_VERSION, lib.SSL_CTX_get_max_proto_version(ctx))
    end)

    it("set a groups list from a Lua string", function()
      local ctx = new_ctx()
      assert.equal(1, tonumber(lib.SSL_CTX_set1_groups_list(ctx, "X25519:P-256")))
      assert.equal(0, tonumber(lib.SSL_CTX_set1_groups_list(ctx, "no-such-group")))
      lib.clear_errors()
    end)

    it("set the SNI host name on a connection", function()
      local ctx = new_ctx()
      local s = ffi.gc(C.SSL_new(ctx), C.SSL_free)
      assert.equal(1, tonumber(lib.SSL_set_tlsext_host_name(s, "example.test")))
      assert.equal("example.test", ffi.string(C.SSL_get_servername(s, K.TLSEXT_NAMETYPE_host_name)))
    end)

    it("read a memory BIO's contents", function()
      local b = ffi.gc(crypto.BIO_new(crypto.BIO_s_mem()), crypto.BIO_free)
      assert.equal(5, crypto.BIO_write(b, "hello", 5))
      assert.equal(5, lib.BIO_pending(b))
      local pp = ffi.new("char *[1]")
      local n = tonumber(lib.BIO_get_mem_data(b, pp))
      assert.equal("hello", ffi.string(pp[0], n))
      assert.is_false(lib.BIO_should_retry(b))
    end)
  end)

  describe("password callback", function()
    local pem

    setup(function()
      pem = helpers.readfile(helpers.pki().key_encrypted)
    end)

    local function load_key(password)
      local bio = crypto.BIO_new_mem_buf(pem, #pem)
      local pw = password and ffi.cast("void *", password) or nil
      local key = crypto.PEM_read_bio_PrivateKey(bio, nil, lib.password_cb(), pw)
      crypto.BIO_free(bio)
      if key == nil then return nil, select(2, lib.pop_error()) end
      crypto.EVP_PKEY_free(key)
      return true
    end

    it("is created once per process", function()
      assert.equal(lib.password_cb(), lib.password_cb())
    end)

    it("decrypts a key with the right password", function()
      assert.is_true(load_key("secret"))
    end)

    it("fails with the wrong password", function()
      local ok, err = load_key("wrong")
      assert.is_nil(ok)
      assert.is_string(err)
    end)

    it("refuses instead of prompting when no password is given", function()
      local ok, err = load_key(nil)
      assert.is_nil(ok)
      assert.is_string(err)
    end)
  end)

  describe("SIGPIPE", function()
    local writer = [[
      %s
      local p = io.popen("true", "w")
      os.execute("sleep 0.2")
      for _ = 1, 64 do p:write(("x"):rep(65536)) end
      p:flush()
      print("survived")
    ]]

    -- This process ignores SIGPIPE (it loaded ljssl.lib) and children inherit
    -- that, so each child starts with the default action restored.
    local default = "env --default-signal=PIPE"

    it("kills a plain LuaJIT writing to a closed pipe (the control)", function()
      local ok, out = child(writer:format(""), default)
      assert.is_false(ok)
      assert.falsy(out:find("survived", 1, true))
    end)

    it("cannot kill a process that loaded ljssl.lib", function()
      local ok, out = child(writer:format('require "ljssl.lib"'), default)
      assert.is_true(ok, out)
      assert.truthy(out:find("survived", 1, true))
    end)
  end)

  it("looks functions newer than the 3.0 baseline up lazily, by the loaded version", function()
    local lib = require "ljssl.lib"
    local fn, err = lib.optional("SSL_get0_group_name")
    if lib.version_number >= 0x30200000 then
      assert.equal("cdata", type(fn), err)
    else
      assert.same({ nil, "needs OpenSSL 3.2" }, { fn, err })
    end
    assert.has_error(function() lib.optional("SSL_new") end,
      "ljssl: SSL_new is not a `since` or `deprecated` function of tools/cdefs.allow")
  end)

  it("looks the few deprecated functions (`deprecated`) up lazily too", function()
    local lib = require "ljssl.lib"
    -- Debian's OpenSSL keeps its deprecated APIs; a no-deprecated build would
    -- answer nil, "needs an OpenSSL built with its deprecated APIs"
    assert.equal("cdata", type(lib.optional("SSL_CTX_set_tmp_dh_callback")))
    assert.equal("cdata", type(lib.optional("PEM_read_bio_DHparams")))
    assert.same({ "SSL_CTX_set_tmp_dh_callback" }, require("cdefs.ssl").deprecated)
  end)
  it("lib.check: a clean queue, the result, or nil and OpenSSL's reason", function()
    local lib = require "ljssl.lib"
    local C = lib.ssl
    local ctx = assert(lib.check("no context", C.SSL_CTX_new, C.TLS_method()))
    -- an int failure with the reason OpenSSL queued, and the full line
    local r, reason, code, line = lib.check("x", C.SSL_CTX_set_cipher_list, ctx, "NO-SUCH-CIPHER")
    assert.is_nil(r)
    assert.equal("no cipher match", reason)
    assert.is_number(code)
    assert.matches("^error:", line)
    assert.equal(0, tonumber(lib.crypto.ERR_peek_error()))     -- drained
    -- a `long` result (a ctrl macro): 0 is a failure too
    assert.is_nil((lib.check("x", lib.SSL_CTX_set1_groups_list, ctx, "nope")))
    assert.is_truthy(lib.check("x", lib.SSL_CTX_set1_groups_list, ctx, "P-256"))
    -- a NULL pointer with nothing queued: the fallback
    assert.same({ nil, "nothing here" }, { lib.check("nothing here", function() return nil end) })
    -- a stale error from before is not taken for this call's
    C.SSL_CTX_set_cipher_list(ctx, "NOPE")                        -- queues an error
    assert.is_true(tonumber(lib.crypto.ERR_peek_error()) ~= 0)
    assert.equal(1, lib.check("x", C.SSL_CTX_set_cipher_list, ctx, "DEFAULT"))
    assert.equal(0, tonumber(lib.crypto.ERR_peek_error()))
    lib.ssl.SSL_CTX_free(ctx)
  end)
end)
