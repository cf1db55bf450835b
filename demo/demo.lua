-- demo/demo.lua — `make demo`: real TLS with ljssl on this machine.
-- Makes a fresh CA and server certificate, starts a TLS echo server (the ljssl
-- command, `ljssl serve`, in a second process), connects to it over loopback
-- with ssl.connect — which verifies the chain and the host name by default —
-- exchanges a line and prints what was negotiated; then does the same with
-- `ljssl connect`, which also shows the peer chain.
package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
local socket = require "socket"
local ssl = require "ssl"

local function run(cmd)
  local ok = os.execute("(" .. cmd .. ") >/dev/null 2>&1")
  if ok ~= 0 and ok ~= true then error("failed: " .. cmd) end
end

local dir = os.tmpname()
os.remove(dir)
run("mkdir -p " .. dir)
run(("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
     "-keyout ca.key -out ca.pem -days 1 -subj '/CN=ljssl demo CA' " ..
     "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign"):format(dir))
run(("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
     "-keyout server.key -out server.csr -subj '/O=ljssl demo/CN=localhost' && " ..
     "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && " ..
     "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial " ..
     "-out server.pem -days 1 -extfile ext.cnf"):format(dir))

local probe = assert(socket.bind("127.0.0.1", 0))
local _, port = probe:getsockname()
probe:close()

-- The ljssl command: bin/ljssl in a checkout, $PREFIX/bin/ljssl once installed.
local interpreter = arg[-1] or "luajit"
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local command
for _, candidate in ipairs({ here .. "/../bin/ljssl", here .. "/../../../bin/ljssl" }) do
  local f = io.open(candidate)
  if f then f:close(); command = interpreter .. " " .. candidate; break end
end
assert(command, "the ljssl command is not next to the demo")

local server = io.popen(("%s serve %d --cert %s/server.pem --key %s/server.key --alpn demo/1 " ..
  ">/dev/null 2>&1 & echo $!"):format(command, port, dir, dir))
local server_pid = server:read("*l")
server:close()

print(("ljssl %s"):format(ssl._VERSION))
print(("server: `ljssl serve %d` (a TLS echo server) with a fresh certificate for localhost"):format(port))

-- The demo CA is this run's trust anchor; without `cafile`, ssl.connect would
-- use the system's CA store.  Chain and host name ("localhost") are verified.
-- (Retried, bounded, while the server process starts listening.)
local conn, err
for _ = 1, 100 do
  conn, err = ssl.connect("localhost", port, { cafile = dir .. "/ca.pem", alpn = "demo/1" })
  if conn or err ~= "connection refused" then break end
  socket.sleep(0.05)
end
if not conn then os.execute("kill " .. server_pid) end
assert(conn, err)

conn:settimeout(10)
conn:send("hello from an ljssl client\n")
local reply = assert(conn:receive("*l"))
local info = conn:info()
local cert = conn:getpeercertificate()
local subject = {}
for _, e in ipairs(cert:subject()) do subject[#subject + 1] = e.name .. "=" .. e.value end
local verified, why = conn:getpeerverification()

print("client 1, ssl.connect from Lua: handshake done")
print("  protocol:     " .. info.protocol)
print("  cipher:       " .. info.cipher .. " (" .. info.bits .. " bits)")
print("  ALPN:         " .. tostring(conn:getalpn()))
print("  peer subject: " .. table.concat(subject, ", "))
print("  peer SHA-256: " .. cert:digest("sha256"))
print("  verification: " .. (verified and "ok (chain trusted, valid for localhost)" or tostring(why)))
print("  sent:         hello from an ljssl client")
print("  received:     " .. reply)
conn:close()

-- The same server, through the command line tool: what `ljssl connect` shows.
print(("client 2, `ljssl connect localhost:%d --cafile ca.pem --alpn demo/1`:"):format(port))
local cli = io.popen(("printf 'hello from the ljssl command\\n' | %s connect localhost:%d " ..
  "--cafile %s/ca.pem --alpn demo/1 2>&1; echo __status=$?"):format(command, port, dir))
local output = cli:read("*a")
cli:close()
os.execute("kill " .. server_pid)
os.execute("rm -rf " .. dir)
local status = tonumber(output:match("__status=(%d+)"))
io.write((output:gsub("__status=%d+\n?$", ""):gsub("[^\n]+", "  %0")))
assert(status == 0, "ljssl connect failed")
