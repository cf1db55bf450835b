-- The engine's pump (ljssl.engine.pump) and the session's Lua-valued answers
-- (info, peer_chain, verify_result, ...): two engine sessions talk through
-- pumps, with the transports the faces bring (an event loop's push, a
-- LuaSocket-shaped pull transport that blocks, splits and ends).
local ffi = require "ffi"
local strbuf = require "string.buffer"
local helpers = require "helpers"
local lib = require "ljssl.lib"
local engine = require "ljssl.engine.context"
local session = require "ljssl.engine.session"
local pump = require "ljssl.engine.pump"
local K = lib.K

local pki

local function server_ctx(max)
  local ctx = assert(engine.new("server", nil, max))
  assert(ctx:use_key_file(pki.server_key))
  assert(ctx:use_certificate_chain_file(pki.server))
  return ctx
end

local function client_ctx(max)
  local ctx = assert(engine.new("client", nil, max))
  assert(ctx:load_verify_locations(pki.ca))
  ctx:set_verify(K.SSL_VERIFY_PEER)
  return ctx
end

local function pair(max)
  local c = assert(pump.new(assert(session.new(client_ctx(max), false))))
  local s = assert(pump.new(assert(session.new(server_ctx(max), true))))
  return c, s
end

-- Push transport, as an event loop: whatever one side sends arrives whole.
local function deliver(from, to)
  local moved = 0
  while true do
    local p, n = from:outgoing()
    if n == 0 then return moved end
    to:incoming(p, n)
    from:sent(n)
    moved = moved + n
  end
end

local function handshake(c, s)
  local cs, ss
  for _ = 1, 20 do
    cs = c:handshake(); deliver(c, s)
    ss = s:handshake(); deliver(s, c)
    if cs == session.DONE and ss == session.DONE then break end
    if (cs ~= session.DONE and cs ~= session.WANT_READ)
       or (ss ~= session.DONE and ss ~= session.WANT_READ) then break end
  end
  return cs, ss
end

describe("engine pump", function()
  setup(function() pki = helpers.pki() end)

  it("handshakes and moves data both ways into the caller's buffers", function()
    local c, s = pair()
    local cs, ss = handshake(c, s)
    assert.equal(session.DONE, cs)
    assert.equal(session.DONE, ss)
    assert.equal(5, c:write("hello"))
    deliver(c, s)
    local into = strbuf.new()
    local got, status = s:read(into)
    assert.equal(5, got)
    assert.equal(session.WANT_READ, status)
    assert.equal("hello", into:tostring())
    -- a message larger than many records, as a pointer and a length
    local big = ("0123456789abcdef"):rep(64 * 1024)       -- 1 MiB
    assert.equal(#big, s:write(ffi.cast("const char *", big), #big))
    assert.is_true(s:outgoing_size() > #big)
    deliver(s, c)
    local back = strbuf.new()
    got = c:read(back)
    assert.equal(#big, got)
    assert.equal(big, back:tostring())
  end)

  it("reads at most max bytes, and close_notify ends the stream", function()
    local c, s = pair()
    handshake(c, s)
    c:write("abcdefgh"); deliver(c, s)
    local into = strbuf.new()
    assert.equal(3, (s:read(into, 3)))
    assert.equal("abc", into:get())
    assert.equal(5, (s:read(into)))
    assert.equal("defgh", into:get())
    assert.equal(1, c:shutdown())
    deliver(c, s)
    local got, status = s:read(into)
    assert.equal(0, got)
    assert.equal(session.CLOSED, status)
  end)

  it("answers a failed handshake with the session's status and reason", function()
    local c = assert(pump.new(assert(session.new(client_ctx(), false))))
    local s = assert(pump.new(assert(session.new(assert(engine.new("server")), true))))
    -- a server without a certificate: no shared cipher
    local cs, ss = handshake(c, s)
    assert.equal(session.ERROR, ss)
    assert.is_true(cs ~= session.DONE)
    -- the alert went out: the client hears why
    local _, msg = c:handshake()
    assert.is_string(msg)
    assert.matches("handshake failure", msg)
  end)

  it("runs over a LuaSocket-shaped pull transport that splits, blocks and ends", function()
    -- a byte pipe per direction; receive(n) hands out at most 3 bytes and
    -- answers "timeout" every other call; send takes at most 7 bytes a call
    local function pipe()
      local q = strbuf.new()
      local toggle = false
      local ends = {}
      return {
        send = function(data)
          toggle = not toggle
          if toggle then return nil, "timeout", 0 end
          local n = math.min(7, #data)
          q:put(data:sub(1, n))
          if n < #data then return nil, "timeout", n end
          return n
        end,
        receive = function(n)
          if #q == 0 then return nil, ends.closed and "closed" or "timeout", "" end
          local k = math.min(n, 3, #q)
          local part = q:get(k)
          if k < n then return nil, "timeout", part end
          return part
        end,
        finish = function() ends.closed = true end,
      }
    end
    local c2s, s2c = pipe(), pipe()
    local c, s = pair()
    local function drive(p, send, recv, call)
      for _ = 1, 100000 do
        local status, msg = call()
        if status >= 0 and status ~= session.WANT_READ then return status, msg end
        if status ~= session.WANT_READ and status ~= session.WANT_WRITE then return status, msg end
        local err = p:step(status, send, recv)
        if err and err ~= "wantread" and err ~= "wantwrite" then return err end
        if err then coroutine.yield(err) end
      end
      error("no progress")
    end
    local cdone, sdone
    local cco = coroutine.wrap(function()
      cdone = drive(c, c2s.send, s2c.receive, function() return c:handshake() end)
      repeat until c:flush(c2s.send) == nil or coroutine.yield()
      c:write("ping over a pull transport")
      repeat until c:flush(c2s.send) == nil or coroutine.yield()
      return "end"
    end)
    local got = strbuf.new()
    local sco = coroutine.wrap(function()
      sdone = drive(s, s2c.send, c2s.receive, function() return s:handshake() end)
      repeat until s:flush(s2c.send) == nil or coroutine.yield()
      while #got < 26 do
        local _, status = s:read(got)
        if status == session.WANT_READ then
          local err = s:step(status, s2c.send, c2s.receive)
          if err then coroutine.yield(err) end
        end
      end
      return "end"
    end)
    local cr, sr
    for _ = 1, 10000 do
      if cr ~= "end" then cr = cco() end
      if sr ~= "end" then sr = sco() end
      if cr == "end" and sr == "end" then break end
    end
    assert.equal(session.DONE, cdone)
    assert.equal(session.DONE, sdone)
    assert.equal("ping over a pull transport", got:tostring())
    -- the transport ends: pull reports it and the session sees EOF
    c2s.finish()
    local _, status = s:read(got)
    assert.equal(session.WANT_READ, status)
    assert.is_nil(s:pull(c2s.receive))
    _, status = s:read(got)
    assert.equal(session.EOF, status)
    assert.equal("closed", s:pull(c2s.receive))
  end)

  it("keeps plaintext a renegotiating session cannot take yet, and sends it later", function()
    local c, s = pair(K.TLS1_2_VERSION)
    handshake(c, s)
    -- the server asks for a renegotiation; the client writes before reading
    assert.equal(1, lib.ssl.SSL_renegotiate(s.s:raw()))
    s:handshake(); deliver(s, c)
    local into = strbuf.new()
    c:read(into); deliver(c, s)                -- the client answers the HelloRequest
    local total, queued = 0, 0
    for _ = 1, 50 do
      assert.equal(1000, c:write(("x"):rep(999) .. "\n"))
      queued = math.max(queued, c:pending_plain())
      total = total + 1000
      deliver(c, s); s:read(into); deliver(s, c); c:read(strbuf.new()); deliver(c, s)
    end
    for _ = 1, 20 do s:read(into); deliver(s, c); c:read(strbuf.new()); deliver(c, s) end
    assert.is_true(queued > 0)            -- some writes had to wait for the renegotiation
    assert.equal(0, c:pending_plain())
    assert.equal(total, #into)
  end)
end)

describe("engine session answers in Lua values", function()
  setup(function() pki = helpers.pki() end)

  it("info, verify_result, peer_chain, finished, keying material, resumption", function()
    local cctx, sctx = client_ctx(), server_ctx()
    local c = assert(pump.new(assert(session.new(cctx, false))))
    local s = assert(pump.new(assert(session.new(sctx, true))))
    assert.is_nil(c.s:info())
    assert.is_nil(c.s:protocol())
    assert.same({}, c.s:peer_chain())
    handshake(c, s)
    local info = c.s:info()
    assert.equal("TLSv1.3", info.protocol)
    assert.matches("^TLS_", info.cipher)
    assert.is_true(info.bits >= 128)
    assert.is_false(info.reused)
    assert.same(info.protocol, s.s:info().protocol)
    local code, text = c.s:verify_result()
    assert.equal(0, code)
    assert.equal("ok", text)
    local chain = c.s:peer_chain()
    assert.is_true(#chain >= 1)
    assert.is_not_nil(c.s:peer_certificate())
    assert.same({}, s.s:peer_chain())          -- the client sent no certificate
    assert.equal(c.s:finished(), s.s:peer_finished())
    assert.equal(c.s:peer_finished(), s.s:finished())
    local km = assert(c.s:export_keying_material("EXPORTER-test", 32, "ctx"))
    assert.equal(32, #km)
    assert.equal(km, s.s:export_keying_material("EXPORTER-test", 32, "ctx"))
    -- the TLS 1.3 tickets arrive after the handshake; read takes them
    deliver(s, c)
    c:read(strbuf.new())
    local sess = assert(c.s:resumable_session())
    local c2 = assert(pump.new(assert(session.new(cctx, false))))
    assert.is_true(c2.s:offer_session(sess))
    local s2 = assert(pump.new(assert(session.new(sctx, true))))
    handshake(c2, s2)
    assert.is_true(c2.s:info().reused)
    -- after free every answer is the empty one, nothing crashes
    c.s:free()
    assert.is_nil(c.s:info())
    assert.is_nil(c.s:verify_result())
    assert.same({}, c.s:peer_chain())
    assert.is_nil(c.s:export_keying_material("x", 8))
  end)

  it("names a failed verification by code and text", function()
    -- a client that trusts no CA at all
    local cctx = assert(engine.new("client"))
    cctx:set_verify(K.SSL_VERIFY_PEER)
    local c = assert(pump.new(assert(session.new(cctx, false))))
    local s = assert(pump.new(assert(session.new(server_ctx(), true))))
    handshake(c, s)
    local code, text = c.s:verify_result()
    assert.is_true(code ~= 0)
    assert.is_string(text)
    assert.is_true(#text > 0)
  end)
end)
