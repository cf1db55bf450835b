-- The libtls face against the system libtls as an oracle: each scenario runs
-- with both ends on the oracle, then with an ljssl client against an oracle
-- server, an oracle client against an ljssl server, and both on ljssl; the
-- ljssl ends must report what the oracle's ends report (results, error strings,
-- every getter), except where docs/libtls.md lists a deliberate difference.
local socket = require "socket"
local helpers = require "helpers"
local oracle = require "oracle.libtls"

local ljssl = { name = "ljssl", config = require "libtls.config" }
do
  local tls = require "libtls"
  ljssl.client, ljssl.server = tls.client, tls.server
end

local dir

-- Error values become their messages, so results compare across the two.
local function msg(v)
  if type(v) == "table" then return v.message or "" end
  return v
end

local function norm(...)
  local out = { n = select("#", ...) }
  for i = 1, out.n do out[i] = msg((select(i, ...))) end
  return out
end

local GETTERS = { "peer_cert_provided", "peer_cert_hash", "peer_cert_subject", "peer_cert_issuer",
  "peer_cert_notbefore", "peer_cert_notafter", "peer_cert_chain_pem", "conn_version",
  "conn_cipher", "conn_cipher_strength", "conn_alpn_selected", "conn_servername",
  "conn_session_resumed", "peer_ocsp_url", "peer_ocsp_result", "peer_ocsp_cert_status",
  "peer_ocsp_crl_reason", "peer_ocsp_response_status", "peer_ocsp_this_update",
  "peer_ocsp_next_update", "peer_ocsp_revocation_time" }

local function getters(ctx)
  local t = {}
  for _, g in ipairs(GETTERS) do t[g] = ctx[g](ctx) end
  t.contains_localhost = ctx:peer_cert_contains_name("localhost")
  t.contains_other = ctx:peer_cert_contains_name("nope.example.test")
  return t
end

local function pending(ok, err) return ok == false and err == nil end

-- Runs one connection; `setup_c`/`setup_s` configure each side's config.
local function run(impl_c, impl_s, setup_c, setup_s, servername)
  local r = {}
  local scfg = impl_s.config.new()
  setup_s(scfg)
  local srv, serr = impl_s.server(scfg)
  if not srv then r.server_setup = msg(serr); return r end
  local ccfg = impl_c.config.new()
  setup_c(ccfg)
  local cli = assert(impl_c.client(ccfg))
  local c, s = helpers.tcp_pair()
  local ok, err = cli:connect_socket(c:getfd(), servername)
  if not ok then r.connect = msg(err); c:close(); s:close(); return r end
  local conn = assert(srv:accept_socket(s:getfd()))
  local a, ea, b, eb = false, nil, false, nil
  for _ = 1, 300 do
    if pending(a, ea) then a, ea = cli:handshake() end
    if pending(b, eb) then b, eb = conn:handshake() end
    if not pending(a, ea) and not pending(b, eb) then break end
    socket.select({ c, s }, nil, 0.02)
  end
  r.client, r.server = a == true or msg(ea), b == true or msg(eb)
  if a == true and b == true then
    r.client_info, r.server_info = getters(cli), getters(conn)
    local function recv(ctx)
      for _ = 1, 300 do
        local data, rerr = ctx:read(100)
        if data or rerr then return data or msg(rerr) end
        socket.select({ c, s }, nil, 0.02)
      end
    end
    cli:write("ping")
    r.server_read = recv(conn)
    conn:write("pong")
    r.client_read = recv(cli)
    r.client_close = norm(cli:close())
    for _ = 1, 50 do
      local x = norm(conn:read(100))
      if x.n ~= 4 or x[4] == nil then r.server_after_close = x; break end
      socket.select({ s }, nil, 0.02)
    end
    r.server_close = norm(conn:close())
  end
  c:close(); s:close()
  return r
end

-- Runs a scenario four ways and checks the ljssl ends against the oracle's.
-- `after` marks scenarios where an ljssl client fails only after the
-- handshake (its OCSP check), so an ljssl server facing it sees a handshake.
local function differential(setup_c, setup_s, servername, after)
  local oo = run(oracle, oracle, setup_c, setup_s, servername)
  local lo = run(ljssl, oracle, setup_c, setup_s, servername)
  local ol = run(oracle, ljssl, setup_c, setup_s, servername)
  local ll = run(ljssl, ljssl, setup_c, setup_s, servername)
  assert.same(oo.server_setup, ol.server_setup, "server setup")
  if oo.server_setup then return oo end
  assert.same(oo.connect, lo.connect, "connect")
  if oo.connect then return oo end
  -- an ljssl client sees what the oracle's client sees, against the same server
  assert.same(oo.client, lo.client, "client handshake")
  assert.same(oo.server, ol.server, "server handshake")
  assert.same(oo.client_info, lo.client_info, "client getters")
  assert.same(oo.server_info, ol.server_info, "server getters")
  assert.same(oo.server_read, ol.server_read, "server read")
  assert.same(oo.client_read, lo.client_read, "client read")
  assert.same(oo.client_close, lo.client_close, "client close")
  assert.same(oo.server_after_close, ol.server_after_close, "server read after close")
  if after then
    assert.same(oo.client, ll.client, "ljssl on both ends")
  else
    assert.same({ oo.client, oo.server, oo.client_info, oo.server_info },
                { ll.client, ll.server, ll.client_info, ll.server_info }, "ljssl on both ends")
  end
  return oo
end

local function server_keypair(name)
  return function(cfg)
    assert(cfg:set_keypair_file(dir .. "/" .. name .. "-chain.pem", dir .. "/" .. name .. ".key"))
  end
end

local function client_trusting(extra)
  return function(cfg)
    assert(cfg:set_ca_file(dir .. "/root.pem"))
    if extra then extra(cfg) end
  end
end

describe("libtls face against the system libtls", function()
  setup(function() dir = helpers.certs() end)

  it("agrees on a verified TLS 1.3 connection, every getter and the data", function()
    local r = differential(client_trusting(), server_keypair("valid"), "localhost")
    assert.is_true(r.client)
    assert.equal("TLSv1.3", r.client_info.conn_version)
    assert.equal("ping", r.server_read)
  end)

  it("agrees on TLS 1.2 with ALPN", function()
    local r = differential(client_trusting(function(cfg)
      cfg:set_protocols(oracle.const.TLS_PROTOCOL_TLSv1_2)
      cfg:set_alpn("http/1.1,h2")
    end), function(cfg)
      server_keypair("valid")(cfg)
      cfg:set_alpn("h2,http/1.1")
    end, "localhost")
    assert.equal("TLSv1.2", r.client_info.conn_version)
    assert.equal("h2", r.client_info.conn_alpn_selected)
  end)

  for _, case in ipairs({
    { "expired", "expired" }, { "not yet valid", "notyet" }, { "unknown CA", "unknownca" },
    { "self-signed", "selfsigned" }, { "wrong host", "wronghost" },
  }) do
    it("agrees on rejecting a server certificate: " .. case[1], function()
      local r = differential(client_trusting(), server_keypair(case[2]), "localhost")
      assert.is_string(r.client)
    end)
  end

  it("agrees on the insecure switches", function()
    local r = differential(client_trusting(function(cfg) cfg:insecure_noverifycert() end),
                           server_keypair("unknownca"), "localhost")
    assert.is_true(r.client)
    r = differential(client_trusting(function(cfg) cfg:insecure_noverifytime() end),
                     server_keypair("expired"), "localhost")
    assert.is_true(r.client)
    r = differential(client_trusting(function(cfg) cfg:insecure_noverifyname() end),
                     server_keypair("wronghost"), "localhost")
    assert.is_true(r.client)
  end)

  it("agrees on client certificates, required and missing", function()
    local function server(cfg)
      server_keypair("valid")(cfg)
      assert(cfg:set_ca_file(dir .. "/root.pem"))
      cfg:verify_client()
    end
    local r = differential(client_trusting(function(cfg)
      assert(cfg:set_keypair_file(dir .. "/valid-chain.pem", dir .. "/valid.key"))
    end), server, "localhost")
    assert.is_true(r.server)
    assert.is_true(r.server_info.peer_cert_provided)
    r = differential(client_trusting(), server, "localhost")
    assert.is_string(r.server)
  end)

  it("agrees on a protocol mismatch", function()
    local r = differential(client_trusting(function(cfg)
      cfg:set_protocols(oracle.const.TLS_PROTOCOL_TLSv1_3)
    end), function(cfg)
      server_keypair("valid")(cfg)
      cfg:set_protocols(oracle.const.TLS_PROTOCOL_TLSv1_2)
    end, "localhost")
    assert.is_string(r.client)
    assert.is_string(r.server)
  end)

  it("agrees on SNI with an additional keypair", function()
    local other = dir .. "/sni-other"
    assert(helpers.sh(("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key " ..
      "-out %s.csr -subj /CN=other.test -addext subjectAltName=DNS:other.test && " ..
      "openssl x509 -req -in %s.csr -CA %s/inter.pem -CAkey %s/inter.key -CAcreateserial " ..
      "-copy_extensions copy -out %s.pem -days 2 && cat %s.pem %s/inter.pem > %s-chain.pem")
      :format(other, other, other, dir, dir, other, other, dir, other)))
    local function server(cfg)
      server_keypair("valid")(cfg)
      assert(cfg:add_keypair_file(other .. "-chain.pem", other .. ".key"))
    end
    local r = differential(client_trusting(), server, "other.test")
    assert.is_true(r.client)
    assert.equal("/CN=other.test", r.client_info.peer_cert_subject)
    assert.equal("other.test", r.server_info.conn_servername)
    r = differential(client_trusting(), server, "localhost")
    assert.equal("/CN=localhost/O=ljssl tests", r.client_info.peer_cert_subject)
  end)

  describe("OCSP", function()
    local function stapling(name)
      return function(cfg)
        server_keypair("valid")(cfg)
        if name then assert(cfg:set_ocsp_staple_file(dir .. "/" .. name .. ".ocsp")) end
      end
    end

    it("agrees on a good stapled response and every OCSP getter", function()
      local r = differential(client_trusting(), stapling("valid"), "localhost")
      assert.is_true(r.client)
      assert.equal("good", r.client_info.peer_ocsp_result)
      assert.equal(0, r.client_info.peer_ocsp_cert_status)
      assert.equal("http://127.0.0.1:9/ocsp", r.client_info.peer_ocsp_url)
    end)

    it("agrees on a stapled response for another certificate", function()
      local r = differential(client_trusting(), stapling("revoked"), "localhost", true)
      assert.is_string(r.client)
    end)

    it("agrees on a missing staple, required or not", function()
      local r = differential(client_trusting(function(cfg) cfg:ocsp_require_stapling() end),
                             stapling(nil), "localhost", true)
      assert.equal("no stapled OCSP response provided", r.client)
      r = differential(client_trusting(), stapling(nil), "localhost")
      assert.is_true(r.client)
      assert.equal("http://127.0.0.1:9/ocsp", r.client_info.peer_ocsp_url)
      assert.is_nil(r.client_info.peer_ocsp_result)
    end)
  end)

  it("agrees on a client without a server name", function()
    differential(client_trusting(), server_keypair("valid"), nil)
  end)
end)

describe("libtls.config against the system libtls", function()
  local cases = {
    { "set_alpn", "" }, { "set_alpn", "a,,b" }, { "set_alpn", ("x"):rep(256) },
    { "set_alpn", "h2,http/1.1" },
    { "set_ca_file", "/nonexistent/ca.pem" }, { "set_cert_file", "/nonexistent/cert.pem" },
    { "set_key_file", "/nonexistent/key.pem" }, { "set_crl_file", "/nonexistent/crl.pem" },
    { "set_ciphers", "bogus-cipher" }, { "set_ciphers", "secure" }, { "set_ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256" },
    { "set_dheparams", "bogus" }, { "set_dheparams", "auto" }, { "set_dheparams", "legacy" },
    { "set_ecdhecurves", "bogus" }, { "set_ecdhecurves", "X25519,P-256" }, { "set_ecdhecurves", "default" },
    { "set_ecdhecurve", "P-256:X25519" }, { "set_ecdhecurve", "secp384r1" },
    { "set_session_id", ("s"):rep(33) }, { "set_session_id", "short" },
    { "set_session_lifetime", 2 }, { "set_session_lifetime", 100000 }, { "set_session_lifetime", 3600 },
    { "add_ticket_key", 1, ("k"):rep(47) }, { "add_ticket_key", 1, ("k"):rep(48) },
    { "set_session_fd", 9999 },
    { "set_cert", "not a PEM certificate" }, { "set_ca", "" }, { "set_key", "" },
  }
  for _, case in ipairs(cases) do
    local method, a, b = unpack(case)
    it(("%s(%s) gives the same result"):format(method, tostring(a):sub(1, 20)), function()
      local o = oracle.config.new()
      local l = ljssl.config.new()
      local expected = norm(o[method](o, a, b))
      local got = norm(l[method](l, a, b))
      if method == "set_cert" and type(expected[2]) == "string" then
        -- documented: libtls appends a stale strerror(errno) here, ljssl does not
        expected[2] = expected[2]:gsub(": [^:]+$", "")
      end
      assert.same(expected, got)
    end)
  end

  -- libtls 3.8 and later (Debian 13's libretls 3.8.1) fold TLS 1.0 and 1.1
  -- into TLS 1.2's bit; ljssl keeps the 3.7 values lua-libtls documents
  -- (docs/libtls.md), so against such an oracle its bits are compared folded.
  local function as_oracle(bits)
    if not oracle.folds_tls10 or bits < 0 then return bits end
    local old = bit.band(bits, 6)
    return bit.bor(bit.band(bits, bit.bnot(6)), old ~= 0 and 8 or 0)
  end

  it("parses protocol strings the same way", function()
    for _, s in ipairs({ "tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3", "tlsv1", "all", "default",
                         "secure", "legacy", "!tlsv1.0", "tlsv1.2:tlsv1.3", "TLSv1.2,!tlsv1.3",
                         " tlsv1.2", "foo", "", "all,!tlsv1.1" }) do
      if oracle.folds_tls10 and s:find("!tlsv1.[01]") then
        -- there "!tlsv1.0" takes TLS 1.2 away too; ljssl only TLS 1.0
        assert.is_true(bit.band(oracle.config.parse_protocols(s), 8) == 0, s)
        assert.is_true(bit.band(ljssl.config.parse_protocols(s), 8) ~= 0, s)
      else
        assert.equal(oracle.config.parse_protocols(s), as_oracle((ljssl.config.parse_protocols(s))), s)
      end
    end
  end)

  it("exports libtls's constants", function()
    local tls = require "libtls"
    local K = oracle.const
    assert.equal(K.TLS_WANT_POLLIN, tls.WANT_POLLIN)
    assert.equal(K.TLS_WANT_POLLOUT, tls.WANT_POLLOUT)
    assert.equal(K.TLS_API, tls.TLS_API)
    local P = oracle.protocols
    assert.equal(P["tlsv1.0"], as_oracle(tls.TLS_v10))
    assert.equal(P["tlsv1.1"], as_oracle(tls.TLS_v11))
    assert.equal(P["tlsv1"], as_oracle(tls.TLS_v1x))
    assert.same({ 2, 4, 30 }, { tls.TLS_v10, tls.TLS_v11, tls.TLS_v1x })   -- libtls 3.7's values
    assert.equal(K.TLS_PROTOCOL_TLSv1_2, tls.TLS_v12)
    assert.equal(K.TLS_PROTOCOL_TLSv1_3, tls.TLS_v13)
    assert.equal(K.TLS_PROTOCOLS_DEFAULT, tls.TLS_DEFAULT)
    assert.equal(K.TLS_MAX_SESSION_ID_LENGTH, tls.MAX_SESSION_ID_LENGTH)
    assert.equal(K.TLS_TICKET_KEY_SIZE, tls.TICKET_KEY_SIZE)
    for name, value in pairs(K) do
      local short = name:match("^TLS_(OCSP_.+)$") or name:match("^TLS_(CRL_REASON_.+)$")
      if short then assert.equal(value, tls[short], short) end
    end
  end)
end)
