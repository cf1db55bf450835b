-- spec/helpers.lua — what the specs share: a scratch folder, shell commands, and a
-- fresh PKI (a CA, a server and a client certificate, an encrypted key) made with
-- the openssl command once per test run.

local helpers = {}

-- Runs a shell command; returns success, its output (stdout and stderr), and
-- its exit status.  (LuaJIT's popen:close() does not report the status.)
local function sh(cmd)
  local p = io.popen("{ " .. cmd .. "\n} 2>&1; echo \"__status=$?\"", "r")
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  out = out:gsub("__status=%d+%s*$", "")
  return status == 0, out, status
end
helpers.sh = sh

-- Runs a command, passing its output through as it comes (long runs show
-- their progress); true if it exits 0.
-- OpenSSL's own text for a received TLS alert (`code` as in RFC 8446 6):
-- the wording moves between releases ("sslv3 alert handshake failure" in 3.0,
-- "ssl/tls alert handshake failure" from 3.2), so specs ask the library.
function helpers.alert_text(code)
  local lib = require "ljssl.lib"
  local K = lib.K
  lib.ssl.OPENSSL_init_ssl(K.OPENSSL_INIT_LOAD_SSL_STRINGS, nil)   -- libssl's texts
  local packed = bit.bor(bit.lshift(bit.band(K.ERR_LIB_SSL, K.ERR_LIB_MASK), K.ERR_LIB_OFFSET),
                         K.SSL_AD_REASON_OFFSET + code)
  local text = lib.crypto.ERR_reason_error_string(packed)
  assert(text ~= nil, "OpenSSL has no text for alert " .. code)
  return require("ffi").string(text)
end

function helpers.stream(cmd)
  local p = io.popen(cmd .. " 2>&1; echo __status=$?")
  local status
  for line in p:lines() do
    local s = line:match("^__status=(%d+)$")
    if s then status = tonumber(s) else io.write(line, "\n"); io.flush() end
  end
  p:close()
  return status == 0
end

function helpers.tmpdir()
  local ok, out = sh("mktemp -d /tmp/ljssl-spec.XXXXXX")
  assert(ok, out)
  return (out:gsub("%s+$", ""))
end

function helpers.readfile(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function helpers.writefile(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

function helpers.luajit()
  -- the interpreter running the specs, so child processes use the same one
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return arg and arg[i] or "luajit"
end

local pki
-- Returns a table of file paths: ca, ca_key, server, server_key, client,
-- client_key, key_encrypted (password "secret"), other_ca (an unrelated CA),
-- dir.  Made once per process.
function helpers.pki()
  if pki then return pki end
  local dir = helpers.tmpdir()
  local function run(cmd)
    local ok, out = sh(("cd %s && %s"):format(dir, cmd))
    assert(ok, cmd .. "\n" .. out)
  end
  helpers.writefile(dir .. "/ext.cnf",
    "subjectAltName=DNS:localhost,DNS:*.example.test,IP:127.0.0.1\n")
  run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
      "-keyout ca.key -out ca.pem -days 30 -subj '/CN=ljssl test CA' " ..
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign")
  run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
      "-keyout other.key -out other.pem -days 30 -subj '/CN=unrelated CA'")
  for _, who in ipairs({ "server", "client" }) do
    run(("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key " ..
         "-out %s.csr -subj '/O=ljssl/CN=%s'"):format(who, who, who == "server" and "localhost" or "client"))
    run(("openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial " ..
         "-out %s.pem -days 30 -extfile ext.cnf"):format(who, who))
  end
  -- A wrong pass phrase decrypts to garbage whose padding is checked; for about
  -- one random salt in 200 the garbage passes that check and the error becomes
  -- the key decoder's ("unsupported") instead of "bad decrypt".  The specs try
  -- "wrong" and "" and expect "bad decrypt", so the key is encrypted again
  -- (bounded) until OpenSSL's own CLI says "bad decrypt" for both.
  for attempt = 1, 20 do
    run("openssl pkey -in server.key -aes256 -passout pass:secret -out server-enc.key")
    local typical = true
    for _, wrong in ipairs({ "wrong", "" }) do
      local _, out = sh(("cd %s && openssl pkey -in server-enc.key -passin pass:%s -noout 2>&1"):format(dir, wrong))
      typical = typical and out:find("bad decrypt", 1, true) ~= nil
    end
    if typical then break end
    assert(attempt < 20, "no encryption of the test key fails a wrong pass phrase with \"bad decrypt\"")
  end
  pki = {
    dir = dir,
    ca = dir .. "/ca.pem", ca_key = dir .. "/ca.key", other_ca = dir .. "/other.pem",
    server = dir .. "/server.pem", server_key = dir .. "/server.key",
    client = dir .. "/client.pem", client_key = dir .. "/client.key",
    key_encrypted = dir .. "/server-enc.key",
  }
  return pki
end

local certs
-- The certificate set of spec/fixtures/make_certs.sh, made once per process;
-- returns its folder.
function helpers.certs()
  if certs then return certs end
  local dir = helpers.tmpdir()
  local ok, out = sh("sh spec/fixtures/make_certs.sh " .. dir)
  assert(ok, out)
  certs = dir
  return certs
end

-- A loopback port nobody listens on right now.
function helpers.free_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Starts a shell command in the background, its output going to a file.
-- Returns a handle with :stop() and :output().
function helpers.spawn(cmd)
  local log = os.tmpname()
  local ok, out = sh(("(%s) >%s 2>&1 </dev/null & echo $!"):format(cmd, log))
  assert(ok, out)
  local pid = tonumber(out:match("(%d+)%s*$"))
  local h = { pid = pid, log = log }
  function h:output() return helpers.readfile(self.log) end
  function h:stop()
    if self.stopped then return end
    self.stopped = true
    -- the command runs under a subshell: stop its children too
    sh(("pkill -TERM -P %d; kill -TERM %d; sleep 0.05; pkill -KILL -P %d; kill -KILL %d")
       :format(pid, pid, pid, pid))
    os.remove(self.log)
  end
  return h
end

-- Waits (bounded) until something accepts TCP connections on the port.
function helpers.wait_port(port, seconds)
  local socket = require "socket"
  local deadline = socket.gettime() + (seconds or 10)
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.2)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return true end
    socket.sleep(0.05)
  end
  error("nothing listens on port " .. port)
end

-- Starts a server command with PORT replaced by a free port, waits until it
-- listens, runs fn(port, server), and stops the server whatever happens.
function helpers.with_server(cmd, fn)
  local port = helpers.free_port()
  local server = helpers.spawn((cmd:gsub("PORT", tostring(port))))
  local ok, err = pcall(function()
    helpers.wait_port(port)
    fn(port, server)
  end)
  server:stop()
  if not ok then error(err, 0) end
end

-- Two connected loopback TCP sockets (LuaSocket): client, server.  Both are
-- non-blocking unless `timeout` is given.
function helpers.tcp_pair(timeout)
  local socket = require "socket"
  local listener = assert(socket.bind("127.0.0.1", 0))
  local _, port = listener:getsockname()
  local c = socket.tcp()
  c:settimeout(5)
  assert(c:connect("127.0.0.1", port))
  listener:settimeout(5)
  local s = assert(listener:accept())
  listener:close()
  c:settimeout(timeout or 0)
  s:settimeout(timeout or 0)
  return c, s
end

return helpers
