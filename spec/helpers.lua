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
  run("openssl pkey -in server.key -aes256 -passout pass:secret -out server-enc.key")
  pki = {
    dir = dir,
    ca = dir .. "/ca.pem", ca_key = dir .. "/ca.key", other_ca = dir .. "/other.pem",
    server = dir .. "/server.pem", server_key = dir .. "/server.key",
    client = dir .. "/client.pem", client_key = dir .. "/client.key",
    key_encrypted = dir .. "/server-enc.key",
  }
  return pki
end

return helpers
