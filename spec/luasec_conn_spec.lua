-- LuaSec connection methods between two ljssl ends in this process, over
-- loopback TCP: LuaSocket buffer semantics, timeouts, errors and accessors.
local ffi = require "ffi"
local socket = require "socket"
local helpers = require "helpers"
local ssl = require "ssl"

local pki

local function params(mode, extra)
  local p = { mode = mode, protocol = "any" }
  if mode == "server" then
    p.key, p.certificate = pki.server_key, pki.server
  else
    p.cafile, p.verify = pki.ca, "peer"
  end
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- Two TCP ends on loopback, wrapped; returns client, server (not handshaken).
local function wrapped_pair(sparams, cparams)
  local c, s = helpers.tcp_pair(5)
  local sc = assert(ssl.wrap(s, sparams or params("server")))
  local cc = assert(ssl.wrap(c, cparams or params("client")))
  return cc, sc, c, s
end

local function pending(ok, err)
  return not ok and (err == "wantread" or err == "wantwrite")
end

-- Steps both handshakes without blocking until neither side is waiting (or a
-- bound is hit); returns each side's last result.
local function handshake(cc, sc)
  cc:settimeout(0)
  sc:settimeout(0)
  local a, ea, b, eb = false, "wantread", false, "wantread"
  for _ = 1, 200 do
    if pending(a, ea) then a, ea = cc:dohandshake() end
    if pending(b, eb) then b, eb = sc:dohandshake() end
    if not pending(a, ea) and not pending(b, eb) then break end
    socket.select({ cc, sc }, nil, 0.05)
  end
  cc:settimeout(5)
  sc:settimeout(5)
  return a, ea, b, eb
end

local function connected_pair(sparams, cparams)
  local cc, sc = wrapped_pair(sparams, cparams)
  local a, ea, b, eb = handshake(cc, sc)
  assert(a and b, tostring(ea) .. " / " .. tostring(eb))
  return cc, sc
end

describe("LuaSec connections", function()
  setup(function() pki = helpers.pki() end)

  it("steals the fd from the LuaSocket object", function()
    local cc, sc, c = wrapped_pair()
    assert.equal(-1, c:getfd())
    local ok, err = c:send("x")
    assert.is_nil(ok)
    assert.equal("closed", err)
    assert.is_true(cc:getfd() >= 0)
    cc:close(); sc:close()
  end)

  it("wraps any object with getfd and setfd", function()
    local c, s = helpers.tcp_pair(5)
    local fd = c:getfd()
    c:setfd(-1)                                     -- the object below now owns fd
    local plain = { fd = fd }
    function plain:getfd() return self.fd end
    function plain:setfd(n) self.fd = n end
    local cc = assert(ssl.wrap(plain, params("client")))
    assert.equal(-1, plain.fd)
    local sc = assert(ssl.wrap(s, params("server")))
    local a, ea, b, eb = handshake(cc, sc)
    assert.is_true(a, ea)
    assert.is_true(b, eb)
    cc:close(); sc:close()
  end)

  it("has LuaSec's shape: userdata, tostring, a plain __index table", function()
    local cc, sc = connected_pair()
    assert.equal("userdata", type(cc))
    assert.truthy(tostring(cc):match("^SSL connection: 0x%x+$"))
    local index = getmetatable(cc).__index
    assert.equal("table", type(index))
    for _, m in ipairs({ "dohandshake", "receive", "send", "settimeout", "close", "getfd",
                         "setfd", "dirty", "want", "getstats", "setstats", "info",
                         "getfinished", "getpeerfinished", "exportkeyingmaterial", "getalpn",
                         "sni", "getsniname", "getpeerverification", "getpeercertificate",
                         "getpeerchain", "getlocalcertificate", "getlocalchain", "setdane",
                         "settlsa" }) do
      assert.equal("function", type(index[m]), m)
    end
    cc:close()
    assert.truthy(tostring(cc):match("^SSL connection: 0x%x+ %(closed%)$"))
    sc:close()
  end)

  it("returns true on a second dohandshake, false+closed after close", function()
    local cc, sc = connected_pair()
    assert.is_true(cc:dohandshake())
    cc:close()
    assert.is_nil(cc:close())          -- idempotent, returns nothing
    assert.same({ false, "closed" }, { cc:dohandshake() })
    assert.equal(-1, cc:getfd())
    sc:close()
  end)

  describe("receive", function()
    it("follows LuaSocket's patterns and prefixes", function()
      local cc, sc = connected_pair()
      assert.equal(27, (cc:send("line one\r\nline\rtwo\nabcdefgh")))
      assert.same({ "line one" }, { sc:receive() })
      assert.equal("linetwo", sc:receive("*l"))
      assert.equal("abc", sc:receive(3))
      assert.equal("pre-de", sc:receive(6, "pre-"))
      assert.equal("xy", sc:receive(2, "xy"))       -- prefix already long enough
      assert.equal("", sc:receive(0))
      assert.equal("fg", sc:receive("2"))           -- numeric strings count
      cc:close()
      assert.same({ "h" }, { sc:receive("*a") })
      assert.same({ nil, "closed", "" }, { sc:receive("*a") })
      sc:close()
    end)

    it("returns everything until close with *a, and partial results on errors", function()
      local cc, sc = connected_pair()
      cc:send(("0123456789"):rep(5000) .. "tail")
      cc:close()
      local data, err = sc:receive("*a")
      assert.is_nil(err)
      assert.equal(50004, #data)
      sc:close()

      cc, sc = connected_pair()
      cc:send("partial line")
      sc:settimeout(0.1)
      local ok, e, partial = sc:receive()
      assert.same({ nil, "wantread", "partial line" }, { ok, e, partial })
      ok, e, partial = sc:receive(20, "got:")
      assert.same({ nil, "wantread", "got:" }, { ok, e, partial })
      cc:close(); sc:close()
    end)

    it("delivers a large transfer intact across many records", function()
      local cc, sc = connected_pair()
      local chunk = {}
      for i = 1, 4096 do chunk[i] = string.char(i % 256) end
      local blob = table.concat(chunk):rep(300)            -- 1.2 MB
      local sent, got = 0, {}
      cc:settimeout(0); sc:settimeout(0)
      local total = 0
      for _ = 1, 100000 do
        if sent < #blob then
          local last, err, partial = cc:send(blob, sent + 1)
          sent = last or partial
          assert(last or err == "wantwrite" or err == "wantread", err)
        end
        local data, err, partial = sc:receive(16384)
        local piece = data or partial
        if piece and #piece > 0 then got[#got + 1] = piece; total = total + #piece end
        assert(data or err == "wantread", err)
        if total == #blob then break end
      end
      assert.equal(#blob, total)
      assert.is_true(table.concat(got) == blob)
      local r, s = sc:getstats()
      assert.equal(#blob, r)
      r, s = cc:getstats()
      assert.equal(#blob, s)
      cc:close(); sc:close()
    end)

    it("rejects invalid patterns by raising", function()
      local cc, sc = connected_pair()
      assert.has_error(function() sc:receive("l") end,
        "bad argument #2 to 'receive' (invalid receive pattern)")
      assert.has_error(function() sc:receive(-1) end,
        "bad argument #2 to 'receive' (invalid receive pattern)")
      assert.has_error(function() sc.receive({}, "*l") end)
      cc:close(); sc:close()
    end)

    it("answers closed before the handshake and after close", function()
      local cc, sc = wrapped_pair()
      assert.same({ nil, "closed", "" }, { cc:receive() })
      assert.same({ nil, "closed", 0 }, { cc:send("abc") })
      cc:close()
      assert.same({ nil, "closed", "p" }, { cc:receive("*l", "p") })
      sc:close()
    end)
  end)

  describe("send", function()
    it("honours i and j as LuaSocket", function()
      local cc, sc = connected_pair()
      assert.same({ 5, nil, nil }, { cc:send("abcdefgh", 3, 5) })
      assert.equal("cde", sc:receive(3))
      assert.same({ 8, nil, nil }, { cc:send("abcdefgh", -2) })
      assert.equal("gh", sc:receive(2))
      assert.same({ 2, nil, nil }, { cc:send("abcdefgh", 3, 2) })   -- empty range
      assert.same({ 0, nil, nil }, { cc:send("") })
      cc:close(); sc:close()
    end)

    it("reports wantwrite and the last index sent when the peer does not read", function()
      local cc, sc = connected_pair()
      cc:settimeout(0.2)
      local blob = ("x"):rep(8 * 1024 * 1024)
      local last, err, partial = cc:send(blob)
      assert.is_nil(last)
      assert.equal("wantwrite", err)
      assert.is_true(partial > 0 and partial < #blob)
      cc:close(); sc:close()
    end)
  end)

  describe("timeouts", function()
    it("reports wantread from a silent peer after the block timeout", function()
      local cc, sc = wrapped_pair()
      cc:settimeout(0.2)
      local t0 = socket.gettime()
      local ok, err = cc:dohandshake()
      local elapsed = socket.gettime() - t0
      assert.same({ false, "wantread" }, { ok, err })
      assert.is_true(elapsed >= 0.15, "returned before the timeout")
      assert.is_true(elapsed < 5, "did not honour the timeout")
      cc:close(); sc:close()
    end)

    it("keeps timeout semantics after a read that had to wait (it then waits before reading)", function()
      local cc, sc = connected_pair()
      sc:settimeout(0.1)
      assert.same({ nil, "wantread", "" }, { sc:receive() })  -- waited, in vain
      cc:send("a\n")
      sc:settimeout(0)                                         -- no waiting at all now
      assert.equal("a", sc:receive())
      assert.same({ nil, "wantread", "" }, { sc:receive() })
      cc:send("b\nc")
      sc:settimeout(1)
      assert.equal("b", sc:receive())
      sc:settimeout(0.05)
      assert.same({ nil, "wantread", "c" }, { sc:receive() })
      cc:send("d\n")
      sc:settimeout(1)
      assert.equal("d", sc:receive())
      assert.equal(7, (sc:getstats()))
      cc:close(); sc:close()
    end)

    it("accepts modes b, t and r, and rejects others", function()
      local cc, sc = wrapped_pair()
      assert.equal(1, cc:settimeout(1))
      assert.equal(1, cc:settimeout(1, "t"))
      assert.equal(1, cc:settimeout(nil, "r"))
      assert.has_error(function() cc:settimeout(1, "x") end,
        "bad argument #3 to 'settimeout' (invalid timeout mode)")
      cc:close(); sc:close()
    end)
  end)

  it("answers dirty, want, stats", function()
    local cc, sc = connected_pair()
    cc:send("one\ntwo\n")
    assert.equal("one", sc:receive())
    assert.is_true(sc:dirty())                 -- "two" is buffered
    assert.equal("two", sc:receive())
    assert.is_false(sc:dirty())
    assert.equal("nothing", sc:want())
    sc:settimeout(0)
    sc:receive()
    assert.equal("read", sc:want())
    local r, s, age = cc:getstats()
    assert.same({ 0, 8 }, { r, s })
    assert.is_true(age >= 0)
    assert.equal(1, cc:setstats(10, 20, 30))
    r, s, age = cc:getstats()
    assert.same({ 10, 20 }, { r, s })
    assert.is_true(age >= 30 and age < 40)
    cc:close()
    assert.is_false(cc:dirty())
    assert.equal("nothing", cc:want())
    sc:close()
  end)

  it("describes the session with info()", function()
    local cc, sc = connected_pair()
    local info = cc:info()
    assert.equal("TLSv1.3", info.protocol)
    assert.truthy(info.cipher:match("^TLS_"))
    assert.equal("any", info.key)
    assert.equal("any", info.authentication)
    assert.equal("AEAD", info.mac)
    assert.is_false(info.export)
    assert.is_true(info.bits >= 128)
    assert.equal(info.cipher, cc:info("cipher"))
    assert.is_nil(cc:info("compression"))
    cc:close()
    assert.same({ nil, "closed" }, { cc:info() })
    sc:close()
  end)

  it("negotiates TLS 1.2 when asked, with its cipher description", function()
    local cc, sc = connected_pair(params("server"), params("client", { protocol = "tlsv1_2" }))
    local info = cc:info()
    assert.equal("TLSv1.2", info.protocol)
    assert.equal("ECDH", info.key)
    assert.equal("ECDSA", info.authentication)
    cc:close(); sc:close()
  end)

  it("refuses a protocol OpenSSL no longer allows, clearly", function()
    local cc, sc = wrapped_pair(params("server"), params("client", { protocol = "tlsv1" }))
    local a, ea, b, eb = handshake(cc, sc)
    assert.is_false(a)
    assert.is_false(b)
    -- OpenSSL's own words, never a timeout.  3.0 sends a TLS 1.0 ClientHello
    -- the server cannot sign for; later releases refuse to offer TLS 1.0 at
    -- the default security level before anything is sent
    if require("ljssl.lib").version_minor == 0 then
      assert.equal("tlsv1 alert internal error", ea)
      assert.equal("no suitable signature algorithm", eb)
    else
      assert.equal("no protocols available", ea)
      assert.equal("unexpected message", eb)     -- the client's plaintext alert
    end
    cc:close(); sc:close()
  end)

  it("exports Finished messages and keying material", function()
    local cc, sc = connected_pair()
    assert.equal(cc:getfinished(), sc:getpeerfinished())
    assert.equal(sc:getfinished(), cc:getpeerfinished())
    assert.equal(48, #cc:getfinished())
    local a = cc:exportkeyingmaterial("EXPERIMENTAL-ljssl", 32, "ctx")
    local b = sc:exportkeyingmaterial("EXPERIMENTAL-ljssl", 32, "ctx")
    assert.equal(32, #a)
    assert.equal(a, b)
    assert.are_not.equal(a, cc:exportkeyingmaterial("EXPERIMENTAL-ljssl", 32))
    cc:close()
    assert.same({ nil, "closed" }, { cc:getfinished() })
    assert.same({ nil, "closed" }, { cc:getpeerfinished() })
    assert.same({ nil, "closed" }, { cc:exportkeyingmaterial("x", 8) })
    sc:close()
  end)

  describe("ALPN", function()
    it("chooses from a server list in the server's order", function()
      local cc, sc = connected_pair(params("server", { alpn = { "h2", "http/1.1" } }),
                                    params("client", { alpn = { "http/1.1", "h2" } }))
      assert.equal("h2", cc:getalpn())
      assert.equal("h2", sc:getalpn())
      cc:close(); sc:close()
    end)

    it("asks a server function with the client's list", function()
      local offered
      local cc, sc = connected_pair(params("server", { alpn = function(list)
          offered = list
          return { "spdy/1", "http/1.1" }
        end }), params("client", { alpn = { "h2", "http/1.1" } }))
      assert.same({ "h2", "http/1.1" }, offered)
      assert.equal("http/1.1", cc:getalpn())
      cc:close(); sc:close()
    end)

    it("selects nothing, without failing, when the lists do not overlap", function()
      local cc, sc = connected_pair(params("server", { alpn = { "h2" } }),
                                    params("client", { alpn = "imap" }))
      assert.is_nil(cc:getalpn())
      cc:close(); sc:close()
    end)
  end)

  describe("SNI", function()
    local other
    setup(function()
      other = pki.dir .. "/other-host"
      assert(helpers.sh(("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
        "-keyout %s.key -out %s.csr -subj /CN=other.test && openssl x509 -req -in %s.csr " ..
        "-CA %s -CAkey %s -CAcreateserial -out %s.pem -days 2"):format(
        other, other, other, pki.ca, pki.ca_key, other)))
    end)

    local function sni_pair(name, strict)
      local cc, sc = wrapped_pair()
      local alt = assert(ssl.newcontext({ mode = "server", protocol = "any",
                                          key = other .. ".key", certificate = other .. ".pem" }))
      sc:sni({ ["other.test"] = alt }, strict)
      if name then cc:sni(name) end
      return cc, sc, handshake(cc, sc)
    end

    it("switches the server's context on a mapped name", function()
      local cc, sc, a, ea = sni_pair("other.test")
      assert.is_true(a, ea)
      assert.equal("other.test", sc:getsniname())
      assert.equal("other.test", cc:getsniname())
      local cn = cc:getpeercertificate():subject()
      assert.equal("other.test", cn[#cn].value)
      cc:close(); sc:close()
    end)

    it("keeps the default context for other names unless strict", function()
      local cc, sc, a = sni_pair("localhost")
      assert.is_true(a)
      local cn = cc:getpeercertificate():subject()
      assert.equal("localhost", cn[#cn].value)
      cc:close(); sc:close()
      local _, _, ok, err, _, serr
      cc, sc, ok, err, _, serr = sni_pair("unknown.test", true)
      assert.is_false(ok)
      assert.equal("tlsv1 unrecognized name", err)
      assert.equal("callback failed", serr)
      cc:close(); sc:close()
    end)

    it("raises when a server gets no table", function()
      local cc, sc = wrapped_pair()
      assert.has_error(function() sc:sni("name") end)
      cc:close(); sc:close()
    end)
  end)

  describe("verification", function()
    it("fails the handshake for an untrusted server", function()
      local cc, sc = wrapped_pair(params("server"), params("client", { cafile = pki.other_ca }))
      local a, ea = handshake(cc, sc)
      assert.is_false(a)
      assert.equal("certificate verify failed", ea)
      cc:close(); sc:close()
    end)

    it("continues with lsec_continue and lists the errors by depth", function()
      local cc, sc = connected_pair(params("server"),
        params("client", { cafile = pki.other_ca, verifyext = "lsec_continue" }))
      local ok, errs = cc:getpeerverification()
      assert.is_false(ok)
      assert.equal("table", type(errs))
      assert.same({ "unable to get local issuer certificate", "unable to verify the first certificate" },
                  errs[1])
      cc:close(); sc:close()
    end)

    it("reports true for a verified peer, and the reason string otherwise", function()
      local cc, sc = connected_pair()
      assert.is_true(cc:getpeerverification())
      local ok, reason = sc:getpeerverification()     -- the server did not ask
      assert.is_true(ok or type(reason) == "string")
      cc:close()
      assert.same({ false, "closed" }, { cc:getpeerverification() })
      sc:close()
    end)

    it("requires and verifies client certificates", function()
      local sp = params("server", { verify = { "peer", "fail_if_no_peer_cert" }, cafile = pki.ca })
      local cc, sc = connected_pair(sp, params("client", { key = pki.client_key, certificate = pki.client }))
      assert.is_true(sc:getpeerverification())
      local cert = sc:getpeercertificate()
      local subject = cert:subject()
      assert.equal("client", subject[#subject].value)
      -- the client's context knows the CA, so OpenSSL sends it along
      local chain = sc:getpeerchain()
      assert.equal(2, #chain)
      assert.equal("ljssl test CA", chain[2]:subject()[1].value)
      cc:close(); sc:close()

      cc, sc = wrapped_pair(sp, params("client"))
      local a, ea, b, eb = handshake(cc, sc)
      assert.is_false(b)
      assert.equal("peer did not return a certificate", eb)
      cc:close(); sc:close()
    end)
  end)

  it("returns peer and local certificates", function()
    local cc, sc = connected_pair()
    assert.same({ nil, "invalid certificate index" }, { cc:getpeercertificate(0) })
    local peer = cc:getpeercertificate()
    assert.truthy(tostring(peer):match("^X509 certificate: 0x%x+$"))
    assert.equal(sc:getlocalcertificate():pem(), peer:pem())
    assert.is_nil(cc:getpeercertificate(2))
    assert.equal(1, #cc:getpeerchain())
    assert.equal(1, #sc:getlocalchain())
    assert.is_nil(cc:getlocalcertificate())
    assert.equal(peer:digest("sha256"), sc:getlocalcertificate():digest("sha256"))
    cc:close()
    assert.same({ nil, "closed" }, { cc:getpeercertificate() })
    assert.same({ nil, "closed" }, { cc:getpeerchain() })
    sc:close()
  end)

  it("exposes the SSL* to other FFI code", function()
    local cc, sc = connected_pair()
    local raw = ssl.rawconnection(cc)
    assert.is_true(ffi.istype("SSL *", raw))
    local lib = require "ljssl.lib"
    assert.equal("TLSv1.3", ffi.string(lib.ssl.SSL_get_version(raw)))
    cc:close(); sc:close()
  end)

  it("frees a dropped connection and closes its fd", function()
    local cc, sc = connected_pair()
    local fd = cc:getfd()
    cc = nil
    collectgarbage(); collectgarbage()
    sc:settimeout(2)
    local ok, err = sc:receive()
    assert.is_nil(ok)
    assert.equal("closed", err)
    sc:close()
    return fd
  end)

  describe("a peer that vanishes without close_notify", function()
    local fdlib = require "ljssl.engine.fd"

    it("ends a read with closed, at once and every time after", function()
      local cc, sc = connected_pair()
      cc:send("last words\n")
      fdlib.close(cc:getfd())                -- TCP FIN, no TLS close_notify
      sc:settimeout(2)
      assert.equal("last words", sc:receive())
      local t0 = socket.gettime()
      assert.same({ nil, "closed", "" }, { sc:receive() })
      assert.same({ nil, "closed", "" }, { sc:receive("*a") })
      assert.is_true(socket.gettime() - t0 < 1.5)
      sc:close()
    end)

    it("fails a handshake with OpenSSL's reason", function()
      local cc, sc = wrapped_pair()
      fdlib.close(cc:getfd())
      sc:settimeout(2)
      assert.same({ false, "unexpected eof while reading" }, { sc:dohandshake() })
      assert.same({ false, "closed" }, { sc:dohandshake() })
      sc:close()
    end)
  end)

  it("authenticates with pre-shared keys (TLS 1.3 and TLS 1.2 with a hint)", function()
    local key = ("\1"):rep(32)
    local seen = {}
    local function server_psk(identity, max_psk)
      seen.identity, seen.max_psk = identity, max_psk
      return identity == "ljssl-client" and key or nil
    end
    local function client_psk(hint, max_identity, max_psk)
      seen.hint, seen.max_identity = hint, max_identity
      return "ljssl-client", key
    end
    local cc, sc = connected_pair(
      { mode = "server", protocol = "any", psk = { hint = "ljssl-hint", callback = server_psk } },
      { mode = "client", protocol = "any", psk = client_psk })
    assert.equal("ljssl-client", seen.identity)
    cc:send("psk\n")
    assert.equal("psk", sc:receive())
    cc:close(); sc:close()

    cc, sc = connected_pair(
      { mode = "server", protocol = "tlsv1_2", ciphers = "PSK-AES128-GCM-SHA256",
        psk = { hint = "ljssl-hint", callback = server_psk } },
      { mode = "client", protocol = "tlsv1_2", ciphers = "PSK-AES128-GCM-SHA256", psk = client_psk })
    assert.equal("ljssl-hint", seen.hint)
    assert.equal("PSK-AES128-GCM-SHA256", cc:info("cipher"))
    cc:close(); sc:close()

    local a, ea = handshake(wrapped_pair(
      { mode = "server", protocol = "any", psk = function() return ("\2"):rep(32) end },
      { mode = "client", protocol = "any", psk = client_psk }))
    assert.is_false(a)
    assert.is_string(ea)
  end)

  it("reports why an unverified peer failed, with verify none", function()
    local cc, sc = connected_pair(params("server"),
      params("client", { cafile = pki.other_ca, verify = "none" }))
    assert.same({ false, "unable to get local issuer certificate" }, { cc:getpeerverification() })
    cc:close(); sc:close()
  end)

  it("passes getpeername, getsockname, getoption and setoption to the socket", function()
    local cc, sc = connected_pair()
    local ip, port = cc:getpeername()
    assert.equal("127.0.0.1", ip)
    local sip, sport = sc:getsockname()
    assert.equal("127.0.0.1", sip)
    assert.equal(tonumber(port), tonumber(sport))
    assert.equal(1, cc:setoption("tcp-nodelay", true))
    assert.is_true(cc:getoption("tcp-nodelay"))
    assert.equal(1, cc:setoption("keepalive", true))
    -- the socket object still has no fd of its own
    cc:send("still works\n")
    assert.equal("still works", sc:receive())
    cc:close()
    assert.same({ nil, "closed" }, { cc:getpeername() })
    sc:close()
  end)

  it("does not keep the LuaSocket TCP object (its 8 KiB buffer), and leaks no fd lending", function()
    -- the lowest free fd number: 20 leaked fds would move it up by 20
    local function lowest_free_fd()
      local probe = socket.tcp4()
      local n = probe:getfd()
      probe:close()
      return n
    end
    for _, family in ipairs({ "inet", "inet6" }) do
      local listener = assert(family == "inet" and socket.bind("127.0.0.1", 0) or socket.bind("::1", 0))
      local host, port = listener:getsockname()
      local c = family == "inet" and socket.tcp() or socket.tcp6()
      assert(c:connect(host, port))
      local s = assert(listener:accept())
      listener:close()
      local weak = setmetatable({ c, s }, { __mode = "v" })
      local sc = assert(ssl.wrap(s, params("server")))
      local cc = assert(ssl.wrap(c, params("client")))
      c, s = nil, nil
      assert(handshake(cc, sc))
      collectgarbage(); collectgarbage()
      assert.is_nil(next(weak), "a wrapped TCP object is still referenced")
      local before = lowest_free_fd()
      for _ = 1, 20 do
        local ip, _, fam = cc:getpeername()
        assert.equal(host, ip)
        assert.equal(family, fam)
        local sip, sport, sfam = sc:getsockname()
        assert.same({ host, tonumber(port), family }, { sip, tonumber(sport), sfam })
        assert.is_true(cc:setoption("tcp-nodelay", true) == 1)
      end
      assert.is_true(lowest_free_fd() < before + 5, "the lent fds were not given back")
      cc:send("ok\n")
      assert.equal("ok", sc:receive())
      cc:close(); sc:close()
    end
  end)

  it("sends close_notify with shutdown() without closing", function()
    local cc, sc = connected_pair()
    assert.is_true(cc:shutdown())
    assert.same({ nil, "closed", "" }, { sc:receive() })
    assert.is_true(cc:getfd() >= 0)
    cc:close(); sc:close()
  end)

  it("checks DANE TLSA records", function()
    local cc, sc = wrapped_pair(params("server"), params("client", { dane = true }))
    assert.is_true(cc:setdane("localhost"))
    local der = helpers.sh("openssl x509 -in " .. pki.server .. " -outform DER | openssl dgst -sha256 -hex")
    local _, out = helpers.sh("openssl x509 -in " .. pki.server ..
      " -outform DER | openssl dgst -sha256 -binary | od -An -tx1 | tr -d ' \\n'")
    local hex = out:gsub("%s", "")
    local digest = hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
    assert.is_true(cc:settlsa(3, 0, 1, digest))      -- DANE-EE, full cert, SHA-256
    local a, ea = handshake(cc, sc)
    assert.is_true(a, ea)
    cc:close(); sc:close()
    return der
  end)
end)
