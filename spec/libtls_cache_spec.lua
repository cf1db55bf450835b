-- The libtls face's client caches (ffi/libtls/init.lua): the engine context
-- kept per config and the session kept per config with the session file's
-- bytes.  libtls builds a client's SSL_CTX from the config as it is at each
-- connect and reads the session file at each connect; these specs show that a
-- config changed between connects, and a session file changed by someone
-- else, are honoured as if nothing were cached.
local ffi = require "ffi"
local socket = require "socket"
local helpers = require "helpers"
local tls = require "libtls"
local config = require "libtls.config"

pcall(ffi.cdef, "int fileno(void *);")

local dir

local function pending(ok, err) return ok == false and err == nil end

-- One connection of client config `ccfg` to server context `srv`: handshake,
-- the server says hello, the client reads it (and the TLS 1.3 ticket, so the
-- face saves the session), both close.  Returns the client's handshake
-- result and error, and what the client saw.
local function connect(ccfg, srv)
  local cli = tls.client(ccfg)
  local c, s = helpers.tcp_pair()
  assert(cli:connect_socket(c:getfd(), "localhost"))
  local conn = assert(srv:accept_socket(s:getfd()))
  local a, ea, b, eb = false, nil, false, nil
  for _ = 1, 300 do
    if pending(a, ea) then a, ea = cli:handshake() end
    if pending(b, eb) then b, eb = conn:handshake() end
    if not pending(a, ea) and not pending(b, eb) then break end
    socket.select({ c, s }, nil, 0.02)
  end
  local seen = {}
  if a == true and b == true then
    seen.version, seen.alpn, seen.cipher = cli:conn_version(), cli:conn_alpn_selected(), cli:conn_cipher()
    seen.resumed = cli:conn_session_resumed()
    assert(conn:write("hello\n"))
    local data
    for _ = 1, 300 do
      local again
      data, _, again = cli:read()
      if not again then break end
      socket.select({ c }, nil, 0.02)
    end
    seen.data = data
  end
  cli:close(); conn:close(); c:close(); s:close()
  return a, ea, seen
end

-- A client config (trusting the test root) with a fresh, empty 0600 session
-- file `name`; returns the config, the open file and its path.
local function session_file_client(name)
  local path = dir .. "/" .. name
  os.remove(path)
  helpers.writefile(path, "")
  assert(helpers.sh("chmod 600 " .. path))
  local f = assert(io.open(path, "r+b"))
  local cfg = config.new()
  assert(cfg:set_ca_file(dir .. "/root.pem"))
  assert(cfg:set_session_fd(ffi.C.fileno(f)))
  return cfg, f, path
end

-- One connection of `cfg` to `srv` that must succeed and deliver the hello;
-- answers whether it resumed.
local function resumes(cfg, srv)
  local ok, err, seen = connect(cfg, srv)
  assert.is_true(ok, err and err.message)
  assert.equal("hello\n", seen.data)
  return seen.resumed
end

local function ticket_server()
  local cfg = config.new()
  assert(cfg:set_keypair_file(dir .. "/valid-chain.pem", dir .. "/valid.key"))
  assert(cfg:set_session_id("cache spec"))
  assert(cfg:set_session_lifetime(300))
  assert(cfg:add_ticket_key(1, ("C"):rep(48)))
  assert(cfg:set_alpn("b,a"))
  return assert(tls.server(cfg))
end

describe("libtls face client caches", function()
  setup(function() dir = helpers.certs() end)

  it("honour a config changed between connects", function()
    local srv = ticket_server()
    local cfg = config.new()
    -- no CA of the config's own: the system store, which does not know the specs' root
    local ok, err = connect(cfg, srv)
    assert.is_false(ok)
    assert.truthy(err.message:find("certificate", 1, true), err.message)
    assert(cfg:set_ca_file(dir .. "/root.pem"))
    local seen
    ok, err, seen = connect(cfg, srv)
    assert.is_true(ok, err and err.message)
    assert.equal("TLSv1.3", seen.version)
    assert(cfg:set_protocols(tls.TLS_v12))
    ok, err, seen = connect(cfg, srv)
    assert.is_true(ok, err and err.message)
    assert.equal("TLSv1.2", seen.version)
    assert(cfg:set_protocols(tls.TLS_v13))
    assert(cfg:set_alpn("a"))
    ok, err, seen = connect(cfg, srv)
    assert.is_true(ok, err and err.message)
    assert.equal("TLSv1.3", seen.version)
    assert.equal("a", seen.alpn)
    assert(cfg:set_alpn("b"))
    ok, err, seen = connect(cfg, srv)
    assert.is_true(ok, err and err.message)
    assert.equal("b", seen.alpn)
    assert(cfg:set_ca_file(dir .. "/valid.pem"))     -- not the root: verification fails
    ok, err = connect(cfg, srv)
    assert.is_false(ok)
    assert.truthy(err.message:find("certificate", 1, true), err.message)
    assert(cfg:set_ca_file(dir .. "/root.pem"))
    assert(cfg:insecure_noverifycert() == nil)
    ok, err = connect(cfg, srv)
    assert.is_true(ok, err and err.message)
    assert(cfg:set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256"))
    assert(cfg:set_protocols(tls.TLS_v12))
    ok, err, seen = connect(cfg, srv)
    assert.is_true(ok, err and err.message)
    assert.equal("ECDHE-ECDSA-AES128-GCM-SHA256", seen.cipher)
    assert(cfg:set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384"))
    ok, err, seen = connect(cfg, srv)
    assert.is_true(ok, err and err.message)
    assert.equal("ECDHE-ECDSA-AES256-GCM-SHA384", seen.cipher)
  end)

  it("honour a session file changed between connects", function()
    local srv = ticket_server()
    local cfg, f, path = session_file_client("cache-session")
    local function resumed() return resumes(cfg, srv) end
    assert.is_false(resumed())                   -- no session yet
    local first = helpers.readfile(path)
    assert.truthy(first:find("BEGIN SSL SESSION PARAMETERS", 1, true))
    assert.is_true(resumed())                    -- the file's session (kept in memory)
    assert.is_true(resumed())
    helpers.writefile(path, "")                  -- emptied by someone else
    assert.is_false(resumed())
    helpers.writefile(path, "-----BEGIN SSL SESSION PARAMETERS-----\nAAAA\n-----END SSL SESSION PARAMETERS-----\n")
    assert.is_false(resumed())                   -- garbage: a full handshake
    helpers.writefile(path, first)               -- an older session, written back
    assert.is_true(resumed())
    -- a session the server cannot read (another ticket key): a full handshake
    local other_srv = (function()
      local c2 = config.new()
      assert(c2:set_keypair_file(dir .. "/valid-chain.pem", dir .. "/valid.key"))
      assert(c2:set_session_id("cache spec"))
      assert(c2:set_session_lifetime(300))
      assert(c2:add_ticket_key(2, ("D"):rep(48)))
      return assert(tls.server(c2))
    end)()
    local ok, err, seen = connect(cfg, other_srv)
    assert.is_true(ok, err and err.message)
    assert.is_false(seen.resumed)
    local theirs = helpers.readfile(path)
    assert.is_true(resumed() == false)           -- other_srv's ticket means nothing to srv
    helpers.writefile(path, theirs)
    ok, err, seen = connect(cfg, other_srv)
    assert.is_true(ok, err and err.message)
    assert.is_true(seen.resumed)                 -- the file's bytes decide, not the memory
    f:close()
    os.remove(path)
  end)

  it("read a session file of any length and leave exactly the new session in it", function()
    local srv = ticket_server()
    local cfg, f, path = session_file_client("cache-session-long")
    local function resumed() return resumes(cfg, srv) end
    assert.is_false(resumed())
    local session = helpers.readfile(path)
    -- PEM readers skip text before the block: 20 000 bytes of it put the
    -- session past the first read (the face reads 8 KiB, then the rest)
    local long = ("not a session, only text before one\n"):rep(540) .. session
    assert.is_true(#long > 20000)
    helpers.writefile(path, long)
    assert.is_true(resumed())
    -- the session written back replaced all of it: no tail of the longer file
    local now = helpers.readfile(path)
    assert.equal(1, now:find("-----BEGIN SSL SESSION PARAMETERS-----", 1, true))
    assert.equal(select(2, now:gsub("BEGIN SSL SESSION", "")), 1)
    assert.is_true(#now < #long)
    assert.is_true(resumed())
    -- and a file longer than the session after it (trailing text) is cut too
    helpers.writefile(path, now .. ("\n"):rep(3000))
    assert.is_true(resumed())
    assert.is_nil(helpers.readfile(path):find("\n\n", 1, true))
    f:close()
    os.remove(path)
  end)
end)
