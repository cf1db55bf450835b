-- demo/demo.lua — `make demo`: real TLS with ljssl on this machine.
-- Makes a fresh CA and server certificate, starts a TLS server (a second LuaJIT
-- process running demo/server.lua), connects a verifying client to it over
-- loopback with the LuaSec API, exchanges a line and prints what was negotiated.
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
os.execute(("%s demo/server.lua %d %s &"):format(interpreter, port, dir))

print(("ljssl %s"):format(ssl._VERSION))
print(("server: demo/server.lua on 127.0.0.1:%d with a fresh certificate for localhost"):format(port))

local tcp
for _ = 1, 100 do
  tcp = socket.tcp()
  tcp:settimeout(5)
  if tcp:connect("127.0.0.1", port) then break end
  tcp:close()
  tcp = nil
  socket.sleep(0.05)
end
assert(tcp, "the demo server did not start")

local conn = assert(ssl.wrap(tcp, {
  mode = "client", protocol = "any",
  cafile = dir .. "/ca.pem", verify = "peer",   -- verify the chain against the demo CA
  alpn = { "demo/1" },
}))
conn:sni("localhost")
conn:settimeout(5)
assert(conn:dohandshake())

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
print("  verification: " .. (verified and "ok (chain and certificate trusted)" or tostring(why)))
print("  sent:         hello from an ljssl client")
print("  received:     " .. reply)
conn:close()
socket.sleep(0.2)
os.execute("rm -rf " .. dir)
