-- demo/demo.lua — `make demo`: real TLS with ljssl on this machine.
-- Makes a fresh CA and server certificate, starts a TLS server (a second LuaJIT
-- process running demo/server.lua, on ssl.wrap), connects to it over loopback
-- with ssl.connect — which verifies the chain and the host name by default —
-- exchanges a line and prints what was negotiated.
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
local interpreter = arg[-1] or "luajit"
local here = arg[0]:match("^(.*)/[^/]*$") or "."
os.execute(("%s %s/server.lua %d %s &"):format(interpreter, here, port, dir))

print(("ljssl %s"):format(ssl._VERSION))
print(("server: %s/server.lua on 127.0.0.1:%d with a fresh certificate for localhost"):format(here, port))

-- The demo CA is this run's trust anchor; without `cafile`, ssl.connect would
-- use the system's CA store.  Chain and host name ("localhost") are verified.
-- (Retried, bounded, while the server process starts listening.)
local conn, err
for _ = 1, 100 do
  conn, err = ssl.connect("localhost", port, { cafile = dir .. "/ca.pem", alpn = "demo/1" })
  if conn or err ~= "connection refused" then break end
  socket.sleep(0.05)
end
assert(conn, err)

conn:send("hello from an ljssl client\n")
local reply = assert(conn:receive("*l"))
local info = conn:info()
local cert = conn:getpeercertificate()
local subject = {}
for _, e in ipairs(cert:subject()) do subject[#subject + 1] = e.name .. "=" .. e.value end
local verified, why = conn:getpeerverification()

print("client: connected, handshake done")
print("  protocol:     " .. info.protocol)
print("  cipher:       " .. info.cipher .. " (" .. info.bits .. " bits)")
print("  ALPN:         " .. tostring(conn:getalpn()))
print("  peer subject: " .. table.concat(subject, ", "))
print("  peer SHA-256: " .. cert:digest("sha256"))
print("  verification: " .. (verified and "ok (chain trusted, valid for localhost)" or tostring(why)))
print("  sent:         hello from an ljssl client")
print("  received:     " .. reply)
conn:close()
socket.sleep(0.2)
os.execute("rm -rf " .. dir)
