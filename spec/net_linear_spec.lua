-- The net face reads in time linear in what it reads: 100-byte lines through
-- an SslSocket, 4 MiB and then 32 MiB buffered in the same process and read
-- line by line, compared as a ratio of CPU time (other processes' load does
-- not count).  Linear is about 8; the old string-rebuilding buffer was quadratic
-- (3 MiB took 43 s), so a bound of 20 leaves room for noise and none for that.
local helpers = require "helpers"
local iomodules = require "iomodules"
local net, loop = iomodules.net, iomodules.loop

local LINE = ("x"):rep(99) .. "\n"
local CHUNK = LINE:rep(1000)              -- 100 000 bytes a write

-- Sends `total` bytes of lines from an SslServer to an SslSocket reading them
-- with read_line_string; returns the CPU seconds it took and the lines read.
local function transfer(dir, total)
  local server = net.SslServer.new()
  local cfg = net.SslConfiguration.new()
  cfg.local_certificate = net.SslCertificate.new(helpers.readfile(dir .. "/valid.pem"))
  cfg.local_certificate_chain = { net.SslCertificate.new(helpers.readfile(dir .. "/inter.pem")) }
  cfg.private_key = net.SslKey.new(helpers.readfile(dir .. "/valid.key"), net.SslKey.EC)
  server.configuration = cfg
  assert.is_true(server:listen(0, "127.0.0.1"))
  local sent = 0
  local function feed(c)
    -- keep about 1 MB queued: enough to stream, never the whole transfer
    while sent < total and c.bytes_to_write < 1000000 do
      c:write_string(CHUNK)
      sent = sent + #CHUNK
    end
  end
  server.new_connection_handler = function(s)
    local c = s:next_pending_secure_connection()
    -- bytes_written fires as the session takes plaintext, not as the socket
    -- drains it, so a timer tops the queue up
    local function tick()
      if sent >= total or c.state ~= net.TcpSocket.CONNECTED_STATE then return end
      feed(c)
      loop.after(0.001, tick)
    end
    tick()
  end
  local sock = net.SslSocket.new()
  local ccfg = net.SslConfiguration.new()
  ccfg:add_ca_certificate(net.SslCertificate.new(helpers.readfile(dir .. "/root.pem")))
  sock.configuration = ccfg
  local failure
  sock.error_handler = function(s) failure = s.error_string end
  -- everything arrives first: the buffer then holds the whole transfer, the
  -- case where rebuilding it on every read was quadratic
  sock:connect_encrypted("localhost", server.port)
  local arrived = loop.run_until(function() return sock.bytes_available >= total or failure end, 60)
  assert.truthy(arrived and not failure, ("received %d of %d bytes: %s"):format(
    sock.bytes_available, total, tostring(failure)))
  local lines, bad = 0, 0
  collectgarbage()
  collectgarbage("stop")          -- no collector pause inside a few milliseconds
  local start = os.clock()
  while sock.can_read_line do
    if sock:read_line_string() ~= LINE then bad = bad + 1 end
    lines = lines + 1
    if lines % 4096 == 0 and os.clock() - start > 30 then break end   -- bounded
  end
  local cpu = os.clock() - start
  collectgarbage("restart")
  sock:abort()
  server:close()
  assert.equal(0, bad)
  return cpu, lines
end

describe("net face reading", function()
  it("takes time linear in the bytes read (32 MiB of lines in about 8x the time of 4 MiB)", function()
    local dir = helpers.certs()
    transfer(dir, 10 * #CHUNK)                        -- warm up: JIT, buffers
    -- the least of three runs each: a read of a few milliseconds is easily
    -- interrupted, never made faster
    local small, big, small_lines, big_lines = math.huge, math.huge, nil, nil
    for _ = 1, 3 do
      local s_cpu, s_lines = transfer(dir, 42 * #CHUNK)      -- 4 MiB
      local b_cpu, b_lines = transfer(dir, 336 * #CHUNK)     -- 32 MiB
      small, big, small_lines, big_lines = math.min(small, s_cpu), math.min(big, b_cpu), s_lines, b_lines
    end
    assert.same({ 42000, 336000 }, { small_lines, big_lines })
    local ratio = big / small
    print(("\nnet face: 4 MiB of lines %.4f s CPU, 32 MiB %.4f s CPU, ratio %.1f"):format(small, big, ratio))
    assert.is_true(ratio < 20, ("32 MiB took %.1fx the CPU time of 4 MiB"):format(ratio))
  end)
end)
