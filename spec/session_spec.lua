-- The engine on its own: contexts, sessions over the memory transport (the path
-- the net face and cosockets use), status codes, and JIT safety of callbacks.
local ffi = require "ffi"
local helpers = require "helpers"
local lib = require "ljssl.lib"
local engine = require "ljssl.engine.context"
local session = require "ljssl.engine.session"
local cb = require "ljssl.engine.callbacks"
local K = lib.K

local pki

local function server_ctx(opts)
  opts = opts or {}
  local ctx = assert(engine.new("server", opts.min, opts.max))
  assert(ctx:use_key_file(pki.server_key))
  assert(ctx:use_certificate_chain_file(pki.server))
  return ctx
end

local function client_ctx(opts)
  opts = opts or {}
  local ctx = assert(engine.new("client", opts.min, opts.max))
  assert(ctx:load_verify_locations(opts.ca or pki.ca))
  ctx:set_verify(K.SSL_VERIFY_PEER)
  return ctx
end

local buf = ffi.new("uint8_t[65536]")

-- Moves ciphertext from one memory session to the other; bytes moved.
local function pump(from, to)
  local moved = 0
  while true do
    local n = from:drain(buf, 65536)
    if n == 0 then return moved end
    assert(to:feed(buf, n) == n)
    moved = moved + n
  end
end

local function connect(cctx, sctx)
  local c = assert(session.new(cctx, false))
  local s = assert(session.new(sctx, true))
  assert(c:use_memory())
  assert(s:use_memory())
  return c, s
end

-- Drives both handshakes; returns the two final statuses and messages.
local function handshake(c, s)
  local cs, cm, ss, sm
  for _ = 1, 20 do
    cs, cm = c:handshake()
    pump(c, s)
    ss, sm = s:handshake()
    pump(s, c)
    if (cs == session.DONE and ss == session.DONE)
       or (cs ~= session.WANT_READ and cs ~= session.DONE)
       or (ss ~= session.WANT_READ and ss ~= session.DONE) then
      break
    end
  end
  return cs, cm, ss, sm
end

local function read_all(s)
  local out = {}
  while true do
    local n = s:read(buf, 65536)
    if n <= 0 then return table.concat(out), n end
    out[#out + 1] = ffi.string(buf, n)
  end
end

describe("engine sessions over memory BIOs", function()
  setup(function() pki = helpers.pki() end)

  it("handshake, exchange in both directions, close_notify", function()
    local c, s = connect(client_ctx(), server_ctx())
    assert.equal(session.DONE, (handshake(c, s)))
    assert.equal("TLSv1.3", ffi.string(lib.ssl.SSL_get_version(c.ptr)))
    assert.equal(5, c:write("hello", 5))
    pump(c, s)
    local got, last = read_all(s)
    assert.equal("hello", got)
    assert.equal(session.WANT_READ, last)
    local big = ("0123456789"):rep(10000)
    local off = 0
    while off < #big do
      local n = s:write(ffi.cast("const char *", big) + off, #big - off)
      assert.is_true(n > 0)
      off = off + n
    end
    pump(s, c)
    assert.equal(big, (read_all(c)))
    -- close_notify from the client: the server reads CLOSED
    assert.equal(1, c:shutdown())
    pump(c, s)
    local n, msg = s:read(buf, 100)
    assert.equal(session.CLOSED, n)
    assert.equal("closed", msg)
    assert.is_true(s.peer_closed)
    assert.equal(session.DONE, s:shutdown())     -- both close_notify seen
  end)

  it("reports EOF without close_notify as EOF", function()
    local c, s = connect(client_ctx(), server_ctx())
    handshake(c, s)
    s:feed_eof()
    local n = s:read(buf, 100)
    assert.equal(session.EOF, n)
    -- and never spins: the next read says closed at once
    assert.equal(session.CLOSED, (s:read(buf, 100)))
  end)

  it("reports a verification failure with OpenSSL's reason", function()
    local c, s = connect(client_ctx({ ca = pki.other_ca }), server_ctx())
    local cs, cm, _, _ = handshake(c, s)
    assert.equal(session.ERROR, cs)
    assert.equal("certificate verify failed", cm)
  end)

  it("reports a protocol mismatch", function()
    local c, s = connect(client_ctx({ min = K.TLS1_3_VERSION }),
                         server_ctx({ max = K.TLS1_2_VERSION }))
    local cs, cm, ss, sm = handshake(c, s)
    assert.is_true(cs == session.ERROR or ss == session.ERROR)
    local text = (cm or "") .. " / " .. (sm or "")
    assert.truthy(text:find("unsupported protocol", 1, true), text)
  end)

  it("reports garbage from the peer as a TLS error", function()
    local s = assert(session.new(server_ctx(), true))
    assert(s:use_memory())
    s:feed("GET / HTTP/1.0\r\n\r\n")
    local status, msg = s:handshake()
    assert.equal(session.ERROR, status)
    assert.equal("http request", msg)
  end)

  it("is idempotent on free and answers closed afterwards", function()
    local c = assert(session.new(client_ctx(), false))
    c:free()
    c:free()
    assert.equal(session.CLOSED, (c:handshake()))
    assert.equal(session.CLOSED, (c:read(buf, 1)))
  end)

  it("keeps its context alive after the caller drops it", function()
    local c, s = connect(client_ctx(), server_ctx())
    collectgarbage()
    collectgarbage()
    assert.equal(session.DONE, (handshake(c, s)))
  end)

  describe("callbacks under the JIT", function()
    -- Every kind of callback installed: verify (lsec_continue), ALPN from a list
    -- and from a function, SNI, PSK; a hot loop of handshakes and reads.
    it("survives a loop hot enough to be compiled", function()
      local sctx = server_ctx()
      local alt = server_ctx()
      sctx:set_alpn_select(("\2h2\8http/1.1"))
      alt:set_alpn_select(function(client) return "\8http/1.1" end)
      local cctx = client_ctx({ ca = pki.other_ca })   -- verification fails, continues
      cctx:set_verify_ext(cb.VERIFY_CONTINUE, 0)
      cctx:set_alpn_protos("\8http/1.1")
      local psk_server = assert(engine.new("server"))
      psk_server:set_psk_server(function(identity) return identity == "ljssl" and ("k"):rep(32) end, "hint")
      local psk_client = assert(engine.new("client"))
      psk_client:set_psk_client(function() return "ljssl", ("k"):rep(32) end)
      local seen, psk_done = 0, 0
      for i = 1, 300 do
        if i % 3 == 0 then
          local c, s = connect(psk_client, psk_server)
          if handshake(c, s) == session.DONE then psk_done = psk_done + 1 end
          c:free(); s:free()
        end
        local c, s = connect(cctx, i % 2 == 0 and sctx or alt)
        local lib_sni = lib.SSL_set_tlsext_host_name(c.ptr, "localhost")
        assert(lib_sni == 1)
        cb.set_sni(s.ptr, { sctx.ptr, alt.ptr }, { localhost = sctx.ptr }, false)
        local cs = handshake(c, s)
        assert.equal(session.DONE, cs)
        c:write("ping", 4)
        pump(c, s)
        local n = s:read(buf, 100)
        if n == 4 then seen = seen + 1 end
        local errs = cb.verify_errors(c.ptr)
        assert.is_true(#errs >= 1)
        c:free()
        s:free()
      end
      assert.equal(300, seen)
      assert.equal(100, psk_done)
      assert.is_true(cb.lua_callbacks_live())   -- PSK/ALPN functions are Lua
    end)

    -- The control proves the loop really reaches a callback from compiled code.
    local function run_fixture(env)
      return helpers.sh(("env %s %s spec/fixtures/jit_callbacks.lua %s"):format(
        env, helpers.luajit(), pki.dir))
    end

    it("panics without the jit.off guard (the control)", function()
      local ok, out = run_fixture("LJSSL_SHIM=off LJSSL_TEST_NO_GUARD=1")
      assert.is_false(ok)
      assert.truthy(out:find("bad callback", 1, true), out)
    end)

    it("does not panic with the guard, Lua callbacks firing inside SSL_read", function()
      local ok, out = run_fixture("LJSSL_SHIM=off")
      assert.is_true(ok, out)
      assert.truthy(out:find("lua callbacks live: true", 1, true), out)
      local errors = tonumber(out:match("ok%s+(%d+)"))
      assert.is_true(errors and errors > 2, out)     -- renegotiations verified too
    end)

    it("keeps the JIT on with the shim, whose callbacks are C", function()
      if not lib.shim then return pending("runs with the shim") end
      local ok, out = run_fixture("LJSSL_TEST_NO_GUARD=1")
      assert.is_true(ok, out)
      assert.truthy(out:find("lua callbacks live: false", 1, true), out)
    end)

    it("uses no LuaJIT callback for verify, ALPN lists and SNI when the shim is loaded", function()
      if not lib.shim then return pending("runs with the shim") end
      local code = [[
        package.path = "ffi/?.lua;ffi/?/init.lua;spec/?.lua;" .. package.path
        local cb = require "ljssl.engine.callbacks"
        local engine = require "ljssl.engine.context"
        local ctx = assert(engine.new("server"))
        ctx:set_alpn_select("\2h2")
        ctx:set_verify_ext(cb.VERIFY_CONTINUE, 0)
        print(cb.lua_callbacks_live())
      ]]
      local ok, out = helpers.sh(helpers.luajit() .. " -e '" .. code:gsub("'", "'\\''") .. "'")
      assert.is_true(ok, out)
      assert.equal("false", out:match("%S+"))
    end)
  end)
end)
