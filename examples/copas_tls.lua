-- examples/copas_tls.lua — a copas TLS echo server and clients in one
-- process; both ends run TLS over copas sockets (the transport path), so every
-- wait yields to copas instead of blocking.
--   luajit examples/copas_tls.lua CERT_CHAIN KEY CA_FILE [CLIENTS]
package.path = "ffi/?.lua;ffi/?/init.lua;" .. package.path
local socket = require "socket"
local copas = require "copas"
local ssl = require "ssl"

local chain, key, ca, n = arg[1], arg[2], arg[3], tonumber(arg[4] or 10)
local server_ctx = assert(ssl.newcontext({ mode = "server", protocol = "any", key = key, certificate = chain }))
local client_ctx = assert(ssl.newcontext({ mode = "client", protocol = "any", cafile = ca, verify = "peer" }))

local listener = assert(socket.bind("127.0.0.1", 0))
local _, port = listener:getsockname()
copas.addserver(listener, function(skt)
  local conn = assert(ssl.wrap(copas.wrap(skt), server_ctx))
  if not conn:dohandshake() then return end
  local line = conn:receive()
  if line then conn:send(line:upper() .. "\n") end
  conn:close()
end)

local done = 0
for i = 1, n do
  copas.addthread(function()
    local raw = socket.tcp()
    copas.connect(raw, "127.0.0.1", port)
    local conn = assert(ssl.wrap(copas.wrap(raw), client_ctx))
    conn:sni("localhost")
    assert(conn:dohandshake())
    conn:send(("hello from client %d\n"):format(i))
    print(conn:receive())
    conn:close()
    raw:close()
    done = done + 1
  end)
end
while done < n do copas.step(0.1) end
print(("%d clients served"):format(done))
