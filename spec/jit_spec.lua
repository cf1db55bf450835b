-- Callback safety per connection: a session whose contexts have no LuaJIT
-- callback runs the compiled copy of the I/O functions, the others the copy
-- kept in the interpreter, and nothing is flushed when a Lua callback appears
-- (ljssl.engine.callbacks, ljssl.engine.session).  The trace checks run in a child
-- process (spec/fixtures/jit_traces.lua) under this run's configuration: with
-- the shim, or LJSSL_SHIM=off.
local helpers = require "helpers"
local lib = require "ljssl.lib"
local engine = require "ljssl.engine.context"
local session = require "ljssl.engine.session"
local cb = require "ljssl.engine.callbacks"
local K = lib.K

local pki, dh

local function run(env)
  return helpers.sh(("env %s %s spec/fixtures/jit_traces.lua %s %s"):format(
    env or "", helpers.luajit(), pki.dir, dh))
end

describe("callbacks and the JIT, per connection", function()
  setup(function()
    pki = helpers.pki()
    dh = pki.dir .. "/jit-dh.pem"
    assert(helpers.sh("openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out " .. dh))
  end)

  it("keeps the traces of a callback-free connection and of the program while a Lua-callback connection runs hot", function()
    local ok, out = run()
    assert.is_true(ok, out)
    assert.truthy(out:find("\nok", 1, true), out)
    assert.equal("0", out:match("flushes%s+(%d+)"), out)
    local alive, total = out:match("traces alive%s+(%d+)%s+of%s+(%d+)")
    assert.is_true(tonumber(total) >= 2, out)
    assert.equal(total, alive, out)
    -- the proof's own check: over the interpreted copy the same loop never compiles
    assert.equal("0", out:match("interpreted loop traces%s+(%d+)"), out)
    -- the PSK and DH functions ran inside the compiled loop's reads, without a panic
    assert.equal("21", out:match("dh calls%s+(%d+)"), out)
  end)

  it("panics in that loop without the jit.off copy (the control)", function()
    local ok, out = run("LJSSL_TEST_NO_GUARD=1")
    assert.is_false(ok)
    assert.truthy(out:find("bad callback", 1, true), out)
    -- the traces of the first part were there before the panic
    assert.truthy(out:match("plain loop traces%s+[1-9]"), out)
  end)

  describe("which copy a session runs", function()
    local function server_ctx()
      local ctx = assert(engine.new("server"))
      assert(ctx:use_key_file(pki.server_key))
      assert(ctx:use_certificate_chain_file(pki.server))
      return ctx
    end

    it("the compiled one without Lua callbacks, the interpreted one with a Lua function", function()
      local plain = assert(session.new(server_ctx(), true))
      assert.is_false(plain:interpreted())
      local ctx = server_ctx()
      assert(ctx:set_psk_server(function() return nil end))
      local s = assert(session.new(ctx, true))
      assert.is_true(s:interpreted())
      assert.is_false(plain:interpreted())          -- another context's callback changes nothing
    end)

    it("changes copies at its next call when its context gains a Lua callback", function()
      local ctx = server_ctx()
      local s = assert(session.new(ctx, true))
      assert(s:use_memory())
      assert.is_false(s:interpreted())
      local epoch = cb.epoch.n
      assert(ctx:set_alpn_select(function() return nil end))
      assert.is_true(cb.epoch.n > epoch)
      assert.equal(session.WANT_READ, (s:handshake()))   -- the call re-chooses first
      assert.is_true(s:interpreted())
    end)

    it("the interpreted one when SNI can switch it to a context with a Lua callback", function()
      local main, alt = server_ctx(), server_ctx()
      assert(alt:set_dh_function(function() return nil end))
      local s = assert(session.new(main, true))
      assert(s:use_memory())
      assert.is_false(s:interpreted())
      cb.set_sni(s.ptr, { main.ptr, alt.ptr }, { ["alt.example.test"] = alt.ptr }, false)
      s:handshake()
      assert.is_true(s:interpreted())
    end)

    it("with the shim, verification, ALPN lists, SNI and OCSP stay compiled", function()
      local ctx = server_ctx()
      ctx:set_verify(K.SSL_VERIFY_PEER)
      ctx:set_verify_ext(cb.VERIFY_CONTINUE, 0)
      assert(ctx:set_alpn_select("\2h2"))
      assert(ctx:set_ocsp_staple("\48\3\10\1\1"))
      local s = assert(session.new(ctx, true))
      cb.set_sni(s.ptr, { ctx.ptr }, { localhost = ctx.ptr }, false)
      s:use_memory()
      s:handshake()
      -- without the shim these are LuaJIT callbacks
      assert.equal(lib.shim == nil, s:interpreted())
    end)
  end)
end)
