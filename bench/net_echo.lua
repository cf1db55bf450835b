-- bench/net_echo.lua — line echo with many concurrent clients in one process,
-- against bench/c/tls_peer's server (ECHO mode, a thread per connection).
--
--   luajit bench/net_echo.lua net|luasec|ljssl PORT CLIENTS TRIPS
--
-- net: ljssl's net face (iomodules SslSocket handlers on iomodules.loop).
-- luasec, ljssl: the LuaSec API (LuaSec itself, or ljssl's LuaSec face) with
-- non-blocking sockets and socket.select, the usual LuaSec event loop.
--
-- Every client connects and completes its handshake first (not timed).  Then
-- each does TRIPS round trips: it sends a 47-byte line that names the client
-- and the trip, and checks that the echo is that line, byte for byte.  Prints
-- the round trips per second, then the seconds the round trips took (the last
-- line, which bench/run.lua reads).
local impl, port, clients, trips = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
if not (port and clients and trips) or (impl ~= "net" and impl ~= "luasec" and impl ~= "ljssl") then
  error("usage: net_echo.lua net|luasec|ljssl PORT CLIENTS TRIPS")
end
if impl ~= "luasec" then
  local root = arg[0]:match("^(.*)/bench/[^/]*$") or "."
  package.path = root .. "/ffi/?.lua;" .. root .. "/ffi/?/init.lua;" .. package.path
end
local socket = require "socket"
local clock = socket.gettime
local LIMIT = 120                      -- seconds: every loop below is bounded

-- The line client i sends on trip t (47 bytes with the "\n").
local function line(i, t)
  return ("%04d %08d this is a line of the echo bench\n"):format(i, t)
end
assert(#line(1, 1) == 47)

local elapsed

if impl == "net" then
  require "iomodules"
  local loop = iomodules.loop
  local SslSocket = iomodules.net.SslSocket
  local encrypted, finished, failure, start = 0, 0, nil, nil
  local sockets = {}
  local function fail(msg)
    failure = failure or msg
    loop.stop()
  end
  for i = 1, clients do
    local s = SslSocket.new()
    s.peer_verify_mode = SslSocket.VERIFY_NONE     -- tls_peer's certificate is self-signed
    local done, expect = 0, line(i, 1)
    s.encrypted_handler = function(sock)
      sock:write_string("ECHO\n")
      encrypted = encrypted + 1
      if encrypted == clients then           -- all connected: the round trips start
        start = clock()
        for j = 1, clients do sockets[j]:write_string(line(j, 1)) end
      end
    end
    s.ready_read_handler = function(sock)
      while sock.can_read_line do
        local got = sock:read_line_string()
        if got ~= expect then return fail(("client %d trip %d: got %q"):format(i, done + 1, got)) end
        done = done + 1
        if done < trips then
          expect = line(i, done + 1)
          sock:write_string(expect)
        else
          finished = finished + 1
          sock:disconnect()
          if finished == clients then elapsed = clock() - start end
          return
        end
      end
    end
    s.error_handler = function(sock, err)
      if done < trips then fail(("client %d: error %s: %s"):format(i, tostring(err), tostring(sock.error_string))) end
    end
    sockets[i] = s
    s:connect_encrypted("127.0.0.1", port)
  end
  loop.run_until(function() return elapsed or failure end, LIMIT)
  for i = 1, clients do sockets[i]:abort() end
  if failure then error(failure) end
  if not elapsed then error(("timed out: %d of %d clients encrypted, %d finished"):format(encrypted, clients, finished)) end
else
  local ssl = require "ssl"
  if impl == "ljssl" then assert(ssl._VERSION:find("ljssl", 1, true), "ljssl not loaded")
  else assert(not ssl._VERSION:find("ljssl", 1, true), "LuaSec not loaded") end
  local ctx = assert(ssl.newcontext({ mode = "client", protocol = "tlsv1_3", verify = "none" }))
  local conns, done, expect, partial = {}, {}, {}, {}
  for i = 1, clients do                       -- connect and handshake, one by one
    local tcp = assert(socket.tcp())
    tcp:settimeout(10)
    assert(tcp:connect("127.0.0.1", port))
    tcp:setoption("tcp-nodelay", true)
    local conn = assert(ssl.wrap(tcp, ctx))
    conn:settimeout(10)
    assert(conn:dohandshake())
    assert(conn:send("ECHO\n"))
    conn:settimeout(0)
    conns[i], done[i], partial[i] = conn, 0, ""
  end
  local index = {}                            -- conn -> client number
  for i, c in ipairs(conns) do index[c] = i end
  local live = {}
  for i = 1, clients do live[i] = conns[i] end
  local start, deadline = clock(), clock() + LIMIT
  for i = 1, clients do
    expect[i] = line(i, 1)
    assert(conns[i]:send(expect[i]))
  end
  local ready = {}
  while #live > 0 do
    if clock() > deadline then error("timed out") end
    -- what LuaSec has already decrypted does not show in select
    local n = 0
    for _, c in ipairs(live) do
      if c:dirty() then n = n + 1; ready[n] = c end
    end
    local list = ready
    if n == 0 then
      local err
      list, _, err = socket.select(live, nil, 10)
      if err then error("select: " .. err) end
      n = #list
    end
    local changed = false
    for k = 1, n do
      local c = list[k]
      local i = index[c]
      local got, err, part = c:receive("*l", partial[i])
      if got then
        partial[i] = ""
        if got .. "\n" ~= expect[i] then error(("client %d trip %d: got %q"):format(i, done[i] + 1, got)) end
        done[i] = done[i] + 1
        if done[i] < trips then
          expect[i] = line(i, done[i] + 1)
          local sent, serr = c:send(expect[i])
          if sent ~= #expect[i] then error(("client %d: send: %s"):format(i, tostring(serr))) end
        else
          c:close()
          index[c], changed = nil, true
        end
      elseif err == "timeout" or err == "wantread" then
        partial[i] = part or ""
      else
        error(("client %d: receive: %s"):format(i, tostring(err)))
      end
    end
    for k = 1, n do ready[k] = nil end
    if changed then
      local still = {}
      for _, c in ipairs(live) do if index[c] then still[#still + 1] = c end end
      live = still
    end
  end
  elapsed = clock() - start
end

print(("%.1f round trips/s (%d clients x %d)"):format(clients * trips / elapsed, clients, trips))
print(("%.6f"):format(elapsed))
