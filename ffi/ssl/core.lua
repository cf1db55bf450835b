-- ssl.core — LuaSec's connection object on the shared engine: create, setfd,
-- and every connection method with LuaSec 1.3.2's return values, over
-- LuaSocket's buffer semantics (receive patterns, partial results, send
-- ranges, block/total timeouts).
--
-- A connection is a userdata whose metatable's __index is a plain table of
-- functions (ssl.https and copas copy it).  Its state lives in a weak-keyed
-- table and never refers back to the userdata, so dropping the connection frees
-- the SSL and closes the fd (both through ffi.gc, not through I/O in __gc).

local ffi = require "ffi"
local lib = require "ljssl.lib"
local session = require "ljssl.engine.session"
local pump = require "ljssl.engine.pump"
local fdlib = require "ljssl.engine.fd"
local args = require "ljssl.engine.args"
local object = require "ljssl.engine.object"
local contexts = require "ssl.context"

local K, libc = lib.K, lib.libc
local byte = string.byte
local ffi_string, ffi_cast = ffi.string, ffi.cast
local WANT_READ, WANT_WRITE = session.WANT_READ, session.WANT_WRITE
local CLOSED, EOF, SYSCALL = session.CLOSED, session.EOF, session.SYSCALL

local core = {}
core.SOCKET_INVALID = -1

local BUFSIZE = 16384     -- a full TLS record's plaintext
local STEPSIZE = 8192     -- LuaSocket's send step
local NEW, CONNECTED, CLOSED_STATE = 0, 1, 2

local u8ptr = ffi.typeof("uint8_t *")
local cptr = ffi.typeof("const char *")
local bufarray = ffi.typeof("uint8_t[?]")

local class = object.class("SSL connection", function(st)
  return st.state == CLOSED_STATE and " (closed)" or ""
end)
local methods, check = class.methods, class.check
core.methods = methods
core.check = check

-- An idle connection's Lua side is kept small: a connection's state table
-- holds at most 16 keys in the common case (LuaJIT sizes a table's hash part
-- in powers of two, 24 bytes a slot), and what only transports, timeouts or
-- SNI need is added by them.  The GC's pace follows the live heap, so each
-- byte kept per connection costs about two of resident memory.

function core.create(ctx)
  local cst = contexts.state[ctx]
  if not cst then args.error(1, "create", "invalid context") end
  if cst.mode ~= "client" and cst.mode ~= "server" then return nil, "invalid mode" end
  local s, err = session.new(cst.engine, cst.mode == "server")
  if not s then return nil, ("error creating SSL object (%s)"):format(err) end
  return class.new({
    s = s, ctx = ctx, fd = -1, state = NEW, first = 0, last = 0, waited = false,
    block = -1, total = -1, received = 0, sent = 0, birthday = fdlib.now(),
  }, s:raw())
end

-- The fd belongs to the SSL's socket BIO (BIO_CLOSE): SSL_free closes it, in
-- close() or when a connection dropped without close() is collected.
function core.setfd(conn, fd)
  local st = check(conn, "setfd")
  fd = args.integer(fd, 2, "setfd", core.SOCKET_INVALID, args.INT_MAX)
  if st.state ~= NEW then args.error(1, "setfd", "invalid SSL object state") end
  fdlib.set_blocking(fd, false)
  st.s:set_fd(fd, true)
  st.fd = fd
  return true
end
methods.setfd = core.setfd

-- Runs the connection over a transport object instead of an fd (see
-- "Transports" below).
function core.settransport(conn, transport)
  local st = check(conn, "settransport")
  if st.state ~= NEW then args.error(1, "settransport", "invalid SSL object state") end
  if type(transport) ~= "table" and type(transport) ~= "userdata" then
    args.error(2, "settransport", "transport expected, got " .. type(transport))
  end
  local p, err = pump.new(st.s)
  if not p then return nil, err end
  st.pump, st.transport = p, transport
  st.send = function(data) return transport:send(data) end
  st.recv = function(n) return transport:receive(n) end
  return true
end

-- Timeouts, as LuaSocket's timeout.c ------------------------------------------------------

-- Without timeouts (LuaSocket's default) retry() never reads the start time.
local function markstart(st)
  if st.block >= 0 or st.total >= 0 then st.start = fdlib.now() end
end

-- Seconds left for the current operation; -1 waits forever.
local function retry(st)
  local block, total = st.block, st.total
  if block < 0 and total < 0 then return -1 end
  local elapsed = fdlib.now() - st.start
  if block < 0 then return math.max(total - elapsed, 0) end
  if total < 0 then return math.max(block - elapsed, 0) end
  return math.min(block, math.max(total - elapsed, 0))
end

function methods.settimeout(conn, t, mode)
  local st = check(conn, "settimeout")
  t = args.optnumber(t, 2, "settimeout", -1)
  if t ~= t then args.error(2, "settimeout", "number expected, got nan") end
  mode = args.optstring(mode, 3, "settimeout", "b")
  local m = mode:sub(1, 1)
  if m == "b" then st.block = t
  elseif m == "r" or m == "t" then st.total = t
  else args.error(3, "settimeout", "invalid timeout mode") end
  return 1
end

-- Errors ---------------------------------------------------------------------------------------

-- LuaSocket's socket_strerror for the errno values it names.
local ERRNO_TEXT = {
  [K.EADDRINUSE] = "address already in use", [K.EISCONN] = "already connected",
  [K.EACCES] = "permission denied", [K.ECONNREFUSED] = "connection refused",
  [K.ECONNABORTED] = "closed", [K.ECONNRESET] = "closed", [K.ETIMEDOUT] = "timeout",
}

-- Transports ----------------------------------------------------------------------------------
-- A connection over a transport object (anything with LuaSocket-shaped send
-- and receive: an OpenResty cosocket, a copas socket, another ljssl
-- connection, a pair of functions) runs the session on memory BIOs and moves
-- the ciphertext itself: what OpenSSL wrote goes out with send; what it needs
-- comes in one TLS record at a time with receive(n), which any transport can
-- do, blocking or yielding as it likes.

-- The pump (ljssl.engine.pump) owns the ciphertext buffers; the connection
-- brings the transport's send and receive.
local function flush_out(st)
  return st.pump:flush(st.send)
end

local discard = bufarray(BUFSIZE)       -- close() reads unread records into it

-- The LuaSec message for a failed step; nil means "wait and retry".
local function step_error(st, status, msg, errno, for_handshake)
  if st.transport then
    if status == WANT_READ or status == WANT_WRITE then
      return st.pump:step(status, st.send, st.recv)
    end
    flush_out(st)                          -- the alert goes out first
  elseif status == WANT_READ or status == WANT_WRITE then
    local ok, werr = fdlib.wait(st.fd, status == WANT_WRITE, retry(st))
    if ok then return nil end
    if werr == "timeout" then return status == WANT_READ and "wantread" or "wantwrite" end
    return werr
  end
  if status == CLOSED then return "closed" end
  if status == EOF then
    -- after the handshake a bare EOF ends the stream, as it did with OpenSSL 1.1
    return for_handshake and msg or "closed"
  end
  if status == SYSCALL then return ERRNO_TEXT[errno] or msg end
  return msg
end

-- OpenSSL's record buffers ----------------------------------------------------------------
-- The connection that did I/O last keeps OpenSSL's record buffers (16 KiB for
-- reading, 16 KiB for writing); when another connection starts I/O, the
-- previous one's are freed.  SSL_MODE_RELEASE_BUFFERS would free and allocate
-- them around every record (about 1k instructions per request and reply, a
-- sixth of what ljssl adds to OpenSSL's own work), and on OpenSSL 3.0 it
-- still keeps the read buffer of a connection whose last SSL_read processed
-- the TLS 1.3 session tickets and then data (16 KiB per idle connection).
-- SSL_free_buffers is not called while OpenSSL holds bytes not yet returned
-- (SSL_has_pending), which also keeps clear of CVE-2024-4741 on OpenSSL
-- before 3.0.14.  The reference is weak: it never keeps a connection alive.
local recent = setmetatable({}, { __mode = "v" })

local function switch_to(st)
  local prev = recent[1]
  recent[1] = st
  if prev then prev.s:release_buffers() end
end

-- Handshake --------------------------------------------------------------------------------------

local function handshake(st)
  markstart(st)
  if recent[1] ~= st then switch_to(st) end
  local s = st.s
  while true do
    local status, msg, errno = s:handshake()
    if status == 0 then
      if st.transport then
        local err = flush_out(st)         -- our last flight
        if err then return false, err end
      end
      st.state = CONNECTED
      return true
    end
    local err = step_error(st, status, msg, errno, true)
    if err then return false, err end
  end
end

function methods.dohandshake(conn)
  local st = check(conn, "dohandshake")
  if st.state == CLOSED_STATE then return false, "closed" end
  if st.state == CONNECTED then return true end
  return handshake(st)
end

-- Receiving ---------------------------------------------------------------------------------------

-- The hot paths (fill, receive_line, send) are written without loops where
-- the common case needs none: a loop inside a function called from the
-- caller's own loop aborts the caller's trace ("inner loop in root trace"),
-- and the JIT then leaves the whole round trip to the interpreter.  The
-- loops live in *_slow functions reached only when the fast case fails.

local function filled(st, n)
  st.first, st.last = 0, n
  st.received = st.received + n
  if st.transport and st.s:outgoing() > 0 then flush_out(st) end
  return nil
end

-- Read buffers are lent to a connection only while it holds unread data, so
-- an idle connection costs no 16 KiB buffer (OpenSSL's own record buffers are
-- given back after the reads, see above).  One is kept for reuse.
local spare = nil

local function lend_buffer(st)
  local buf = spare
  spare = nil
  if buf == nil then buf = bufarray(BUFSIZE) end
  st.buf = buf
  return buf
end

-- Marks n buffered bytes as consumed; an emptied buffer goes back.
local function consume(st, n)
  local first = st.first + n
  st.first = first
  if first == st.last then
    spare = st.buf
    st.buf, st.first, st.last = nil, 0, 0
  end
end

local function fill_slow(st, n, msg, errno)
  local s = st.s
  while true do
    local err = step_error(st, n, msg, errno, false)
    if err then return err end
    n, msg, errno = s:read(st.buf, BUFSIZE)
    if n > 0 then return filled(st, n) end
  end
end

-- Refills the (empty) buffer with one record; returns nil or an error string.
-- Fast case: the record is there, or arrives after one wait.  After a short
-- record (request and reply) wait before reading: a read that can only find
-- nothing costs OpenSSL SSL_get_error and the error queue a visit.  A full
-- record means a stream, where the next one is usually there already: read
-- first.  The choice depends on the record's size only, not on whether the
-- last read found its record already there: that depends on timing, and a
-- loop whose trace was recorded on one answer and then ran on the other
-- left every round trip on a side trace (about 900 more instructions each).
-- A wait that times out still lets the read try once.
local function fill(st)
  if st.state ~= CONNECTED then return "closed" end
  if recent[1] ~= st then switch_to(st) end
  local s = st.s
  if st.buf == nil then lend_buffer(st) end
  local prewait = st.waited and not st.transport and not s:has_pending()
  if prewait then fdlib.wait(st.fd, false, retry(st)) end
  local n, msg, errno = s:read(st.buf, BUFSIZE)
  if n > 0 then
    st.waited = n < BUFSIZE
    return filled(st, n)
  end
  st.waited = true
  local err = step_error(st, n, msg, errno, false)
  if err then return err end
  n, msg, errno = s:read(st.buf, BUFSIZE)
  if n > 0 then return filled(st, n) end
  return fill_slow(st, n, msg, errno)
end

local function take(st, n)
  local data = ffi_string(st.buf + st.first, n)
  consume(st, n)
  return data
end

local function strip_cr(line)
  if line:find("\r", 1, true) then return (line:gsub("\r", "")) end
  return line
end

local function receive_line_slow(st)
  local parts, err
  while true do
    local avail = st.last - st.first
    if avail > 0 then
      local start = st.buf + st.first
      local nl = libc.memchr(start, 10, avail)
      if nl ~= nil then
        local len = ffi_cast(u8ptr, nl) - start
        local line = ffi_string(start, len)
        consume(st, len + 1)      -- with the '\n'
        if parts then
          parts[#parts + 1] = line
          line = table.concat(parts)
        end
        return strip_cr(line)
      end
      parts = parts or {}
      parts[#parts + 1] = take(st, avail)
    end
    err = fill(st)
    if err then
      return nil, err, parts and strip_cr(table.concat(parts)) or ""
    end
  end
end

-- Fast case: a whole line in the buffer, perhaps after refilling it once.
local function receive_line(st)
  if st.last - st.first == 0 then
    local err = fill(st)
    if err then return nil, err, "" end
  end
  local start = st.buf + st.first
  local nl = libc.memchr(start, 10, st.last - st.first)
  if nl == nil then return receive_line_slow(st) end
  -- one consume for the line and its '\n': called twice per line, consume
  -- became hot before the caller's loop and its root trace's side exit (an
  -- emptied buffer every other call) could not be compiled, leaving some
  -- runs interpreted
  local len = ffi_cast(u8ptr, nl) - start
  local line = ffi_string(start, len)
  consume(st, len + 1)
  return strip_cr(line)
end

local function receive_all(st)
  local parts, total = {}, 0
  while true do
    local avail = st.last - st.first
    if avail > 0 then
      parts[#parts + 1] = take(st, avail)
      total = total + avail
    end
    local err = fill(st)
    if err then
      local data = table.concat(parts)
      if err == "closed" and total > 0 then return data end
      return nil, err, data
    end
  end
end

local function receive_count_slow(st, wanted)
  local parts, got = nil, 0
  while true do
    local avail = st.last - st.first
    if avail > 0 then
      local n = math.min(avail, wanted - got)
      local chunk = take(st, n)
      got = got + n
      if got == wanted and not parts then return chunk end
      parts = parts or {}
      parts[#parts + 1] = chunk
      if got == wanted then return table.concat(parts) end
    end
    local err = fill(st)
    if err then return nil, err, parts and table.concat(parts) or "" end
  end
end

-- Fast case: the buffer (refilled once if empty) holds all that is wanted.
local function receive_count(st, wanted)
  if st.last - st.first == 0 then
    local err = fill(st)
    if err then return nil, err, "" end
  end
  if st.last - st.first >= wanted then return take(st, wanted) end
  return receive_count_slow(st, wanted)
end

function methods.receive(conn, pattern, prefix)
  local st = check(conn, "receive")
  -- argument checks inline on the hot paths: a call to a tiny checker that
  -- returns into the caller's loop became a root trace whose side exit the JIT
  -- could not compile ("loop unroll limit reached"), sending every round
  -- trip through the interpreter in some runs
  if prefix == nil then prefix = "" elseif type(prefix) ~= "string" then
    prefix = args.optstring(prefix, 3, "receive", "")
  end
  markstart(st)
  local data, err, partial
  -- tonumber("*l") would be NYI for the JIT on the hottest path: only numbers
  -- and strings that do not start with '*' can be counts
  local count
  if type(pattern) == "number" then
    count = pattern
  elseif type(pattern) == "string" and byte(pattern, 1) ~= 42 then
    count = tonumber(pattern)
  end
  if count then
    -- NaN and infinite counts are patterns no read can satisfy
    if count < 0 or count ~= count or count == math.huge then
      args.error(2, "receive", "invalid receive pattern")
    end
    count = math.floor(count)
    if #prefix >= count and #prefix > 0 then return prefix, nil, nil end
    if count - #prefix == 0 then return prefix, nil, nil end
    data, err, partial = receive_count(st, count - #prefix)
  else
    pattern = args.optstring(pattern, 2, "receive", "*l")
    local p = pattern:sub(1, 2)
    if p == "*l" then
      data, err, partial = receive_line(st)
    elseif p == "*a" then
      data, err, partial = receive_all(st)
    else
      args.error(2, "receive", "invalid receive pattern")
    end
  end
  if data then
    if #prefix > 0 then data = prefix .. data end
    return data, nil, nil
  end
  return nil, err, prefix .. partial
end

-- Sending ------------------------------------------------------------------------------------

-- Goes on from a first write that did not take everything: writes in
-- LuaSocket's steps, waiting as the timeout allows.  Returns sent, err.
local function send_slow(st, base, count, n, msg, errno)
  local s, sent, err = st.s, 0, nil
  while true do
    if n > 0 then
      sent = sent + n
      if st.transport then
        err = flush_out(st)
        if err then break end
      end
      if sent >= count then break end
    else
      err = step_error(st, n, msg, errno, false)
      if err then break end
    end
    local step = count - sent
    if step > STEPSIZE then step = STEPSIZE end
    n, msg, errno = s:write(base + sent, step)
  end
  return sent, err
end

function methods.send(conn, data, i, j)
  local st = check(conn, "send")
  if type(data) ~= "string" then data = args.string(data, 2, "send") end
  local size = #data
  local first = i == nil and 1 or args.optinteger(i, 3, "send", 1)
  local last = j == nil and -1 or args.optinteger(j, 4, "send", -1)
  if first < 0 then first = size + first + 1 end
  if last < 0 then last = size + last + 1 end
  if first < 1 then first = 1 end
  if last > size then last = size end
  markstart(st)
  local sent, err = 0, nil
  if first <= last then
    if st.state ~= CONNECTED then
      err = "closed"
    else
      if recent[1] ~= st then switch_to(st) end
      local base = ffi_cast(cptr, data) + (first - 1)
      local count = last - first + 1
      local step = count
      if step > STEPSIZE then step = STEPSIZE end
      local n, msg, errno = st.s:write(base, step)
      if n == count then                   -- fast case: all of it in one write
        sent = n
        if st.transport then err = flush_out(st) end
      else
        sent, err = send_slow(st, base, count, n, msg, errno)
      end
      st.sent = st.sent + sent
    end
  end
  if err then return nil, err, sent + first - 1 end
  return sent + first - 1, nil, nil
end

-- Closing --------------------------------------------------------------------------------------

-- Returns nothing, as LuaSec.  A connected session gets one non-blocking
-- attempt at close_notify (LuaSec switches the socket to blocking for it and
-- can hang there).
function methods.close(conn)
  local st = check(conn, "close")
  if st.state == CLOSED_STATE then return end
  if st.state == CONNECTED then
    -- Read what has arrived unread (TLS 1.3 session tickets, say): closing a
    -- socket with unread input makes the kernel send RST instead of FIN, and
    -- an RST can destroy data the peer has not read yet.
    if not st.transport then
      for _ = 1, 16 do
        if st.s:read(discard, BUFSIZE) <= 0 then break end
      end
    end
    st.s:shutdown()
    if st.transport then flush_out(st) end
  end
  st.state = CLOSED_STATE
  st.s:free()
  if st.transport and type(st.transport.close) == "function" then st.transport:close() end
  st.fd = -1                  -- closed by SSL_free: its socket BIO owns the fd
  st.first, st.last = 0, 0
end

-- Sends close_notify without closing the socket, without blocking: true when
-- sent (or already done), false and "wantwrite"/"wantread" to call again.
function methods.shutdown(conn)
  local st = check(conn, "shutdown")
  if st.state ~= CONNECTED then return false, "closed" end
  if recent[1] ~= st then switch_to(st) end
  local status, msg = st.s:shutdown()
  if st.transport then
    local err = flush_out(st)
    if err then return false, err end
  end
  if status == 0 or status == 1 then return true end
  if status == WANT_READ then return false, "wantread" end
  if status == WANT_WRITE then return false, "wantwrite" end
  return false, msg
end

-- OpenResty's connection pool cannot hold a TLS session that lives in Lua;
-- a clear refusal rather than a pooled socket with stale TLS state.
function methods.setkeepalive(conn)
  check(conn, "setkeepalive")
  return nil, "keepalive is not supported for ljssl connections: close() instead"
end

-- Plain accessors ------------------------------------------------------------------------------

function methods.getfd(conn)
  return check(conn, "getfd").fd
end

-- What is available, up to `max` bytes (at least one, waiting as receive
-- does): data, or nil, err.  OpenResty's receiveany; lets another connection
-- use this one as its transport efficiently.
function methods.receiveany(conn, max)
  local st = check(conn, "receiveany")
  max = args.integer(max, 2, "receiveany")
  if max <= 0 then args.error(2, "receiveany", "bad max argument") end
  markstart(st)
  if st.last == st.first then
    local err = fill(st)
    if err then return nil, err end
  end
  return take(st, math.min(max, st.last - st.first))
end

function methods.dirty(conn)
  local st = check(conn, "dirty")
  if st.state == CLOSED_STATE then return false end
  return st.last > st.first or st.s:pending() > 0
end

local WANT_NAMES = {
  [K.SSL_NOTHING] = "nothing", [K.SSL_READING] = "read",
  [K.SSL_WRITING] = "write", [K.SSL_X509_LOOKUP] = "x509lookup",
}

function methods.want(conn)
  local st = check(conn, "want")
  if st.state == CLOSED_STATE then return "nothing" end
  return WANT_NAMES[st.s:want()] or "nothing"
end

function methods.getstats(conn)
  local st = check(conn, "getstats")
  return st.received, st.sent, fdlib.now() - st.birthday
end

function methods.setstats(conn, received, sent, age)
  local st = check(conn, "setstats")
  st.received = args.optnumber(received, 2, "setstats", st.received)
  st.sent = args.optnumber(sent, 3, "setstats", st.sent)
  if age ~= nil then st.birthday = fdlib.now() - args.number(age, 4, "setstats") end
  return 1
end

local function connected(st)
  return st.state == CONNECTED and st.s:raw() ~= nil
end

-- core.info / core.compression, used by ssl.info -----------------------------------------------

function core.compression(conn)
  local st = check(conn, "compression")
  if not connected(st) then return nil, "closed" end
  return st.s:compression()
end

function core.info(conn)
  local st = check(conn, "info")
  if not connected(st) then return end
  local _, bits, algbits, description = st.s:cipher()
  if not bits then return end
  return description, bits, algbits, st.s:protocol()
end

-- Handshake results --------------------------------------------------------------------------------

function methods.getfinished(conn)
  local st = check(conn, "getfinished")
  if not connected(st) then return nil, "closed" end
  return st.s:finished()
end

function methods.getpeerfinished(conn)
  local st = check(conn, "getpeerfinished")
  if not connected(st) then return nil, "closed" end
  return st.s:peer_finished()
end

function methods.exportkeyingmaterial(conn, label, olen, context)
  local st = check(conn, "exportkeyingmaterial")
  label = args.string(label, 2, "exportkeyingmaterial")
  olen = args.integer(olen, 3, "exportkeyingmaterial", 0, args.INT_MAX)
  context = args.optstring(context, 4, "exportkeyingmaterial")
  if not connected(st) then return nil, "closed" end
  if olen < 0 then args.error(3, "exportkeyingmaterial", "invalid length") end
  local km = st.s:export_keying_material(label, olen, context)
  if not km then return nil, "error exporting keying material" end     -- LuaSec's words
  return km
end

function methods.getalpn(conn)
  return check(conn, "getalpn").s:alpn()
end

-- SNI: a client names the host; a server maps names to contexts.
function methods.sni(conn, arg, strict)
  local st = check(conn, "sni")
  if st.s:raw() == nil then return end
  if not st.s.server then
    st.s:set_servername(args.string(arg, 2, "sni"))
    return
  end
  if type(arg) ~= "table" then args.error(2, "sni", "table expected, got " .. type(arg)) end
  local map = {}
  for name, ctx in pairs(arg) do
    local cst = contexts.state[ctx]
    if type(name) ~= "string" or not cst then args.error(2, "sni", "invalid SNI map") end
    map[name] = cst.engine
    st.anchors = st.anchors or {}
    st.anchors[#st.anchors + 1] = ctx
  end
  st.s:serve_by_name(map, strict)
end

function methods.getsniname(conn)
  return check(conn, "getsniname").s:servername()
end

function methods.getpeerverification(conn)
  local st = check(conn, "getpeerverification")
  if not connected(st) then return false, "closed" end
  local result, text = st.s:verify_result()
  if result == K.X509_V_OK then return true end
  local errors = st.s:verify_errors()
  if #errors == 0 then return false, text end
  local by_depth = {}
  for _, e in ipairs(errors) do
    local list = by_depth[e[1] + 1] or {}
    by_depth[e[1] + 1] = list
    list[#list + 1] = session.verify_text(e[2])
  end
  return false, by_depth
end

-- Certificates ---------------------------------------------------------------------------------------

local x509   -- ssl.x509, loaded on first use
local function cert_object(p, owned)
  x509 = x509 or require "ssl.x509"
  return x509.wrap(p, owned)
end

function methods.getpeercertificate(conn, n)
  local st = check(conn, "getpeercertificate")
  n = args.optinteger(n, 2, "getpeercertificate", 1)
  if not connected(st) then return nil, "closed" end
  if n < 1 then return nil, "invalid certificate index" end
  if n == 1 then
    local cert = st.s:peer_certificate()
    return cert and cert_object(cert, true)
  end
  local cert = st.s:peer_chain()[n]
  return cert and cert_object(cert, true)
end

local function objects(chain)
  for i, x in ipairs(chain) do chain[i] = cert_object(x, true) end
  return chain
end

function methods.getpeerchain(conn)
  local st = check(conn, "getpeerchain")
  if not connected(st) then return nil, "closed" end
  return objects(st.s:peer_chain())
end

function methods.getlocalcertificate(conn, n)
  local st = check(conn, "getlocalcertificate")
  n = args.optinteger(n, 2, "getlocalcertificate", 1)
  if not connected(st) then return nil, "closed" end
  if n < 1 then return nil, "invalid certificate index" end
  local cert = st.s:own_chain()[n]
  return cert and cert_object(cert, true)
end

function methods.getlocalchain(conn)
  local st = check(conn, "getlocalchain")
  if not connected(st) then return nil, "closed" end
  return objects(st.s:own_chain())
end

-- Host names and the wrapped socket ----------------------------------------------------

-- The handshake fails unless the peer's certificate is valid for `name` (a DNS
-- name or an IP literal); OpenSSL does the matching.  Not in LuaSec 1.3.2.
function methods.sethost(conn, name)
  local st = check(conn, "sethost")
  name = args.string(name, 2, "sethost")
  if st.state ~= NEW then return nil, "the handshake has started" end
  return st.s:set_host(name)
end

-- After a handshake failed with "certificate verify failed", the reason in
-- words: "certificate verify failed: certificate has expired", or
-- "host name mismatch: ..." when the name check failed.
function core.explain_verify_failure(conn, host)
  local st = check(conn, "explain_verify_failure")
  local result, text = st.s:verify_result()
  if not result then return "certificate verify failed" end
  if result == K.X509_V_ERR_HOSTNAME_MISMATCH or result == K.X509_V_ERR_IP_ADDRESS_MISMATCH then
    return ("host name mismatch: the certificate is not valid for %s"):format(host or "this host")
  end
  return "certificate verify failed: " .. text
end

-- The object ssl.wrap took the fd from, for the passthroughs below.  A
-- LuaSocket TCP object is not kept: it carries an 8 KiB buffer, as much again
-- as an idle connection costs, so its family is noted and a fresh object of
-- that family stands in for each (rare) passthrough call.
local TCP_FOR_FAMILY = { inet4 = "tcp4", inet6 = "tcp6" }

function core.setsocket(conn, sock)
  local st = check(conn, "setsocket")
  local family = tostring(sock):match("^tcp{") and type(sock.getfamily) == "function"
    and sock:getfamily()
  if TCP_FOR_FAMILY[family] then
    st.sock, st.sockfamily = nil, family
  else
    st.sock, st.sockfamily = sock, nil
  end
end

local function stand_in(st)
  local socket = require "socket"
  local sock = assert(socket[TCP_FOR_FAMILY[st.sockfamily]]())
  sock:close()                   -- the fd it made for itself; ours is lent below
  return sock
end

-- getpeername, getsockname, getoption, setoption: LuaSocket's own methods, run
-- on the wrapped object with the fd lent back to it for the call.
local function passthrough(name)
  methods[name] = function(conn, ...)
    local st = check(conn, name)
    if st.fd < 0 then return nil, "closed" end
    local sock = st.sock or (st.sockfamily and stand_in(st))
    if not sock or type(sock.setfd) ~= "function" or type(sock[name]) ~= "function" then
      return nil, name .. " is not supported by the wrapped object"
    end
    sock:setfd(st.fd)
    local result = { pcall(sock[name], sock, ...) }
    sock:setfd(-1)
    if not result[1] then error(result[2], 2) end
    return unpack(result, 2, table.maxn(result))
  end
end
passthrough("getpeername")
passthrough("getsockname")
passthrough("getoption")
passthrough("setoption")

-- DANE -------------------------------------------------------------------------------------------

function methods.setdane(conn, basedomain)
  local st = check(conn, "setdane")
  basedomain = args.string(basedomain, 2, "setdane")
  return st.s:enable_dane(basedomain)
end

function methods.settlsa(conn, usage, selector, mtype, data)
  local st = check(conn, "settlsa")
  -- uint8_t in OpenSSL: 259 would silently be usage 3
  usage = args.integer(usage, 2, "settlsa", 0, 255)
  selector = args.integer(selector, 3, "settlsa", 0, 255)
  mtype = args.integer(mtype, 4, "settlsa", 0, 255)
  data = args.string(data, 5, "settlsa")
  return st.s:add_tlsa(usage, selector, mtype, data)
end

-- ssl.core extras -------------------------------------------------------------------------------

function core.setmethod(name, fn)
  methods[args.string(name, 1, "setmethod")] = fn
end

function core.copyright()
  return "ljssl - TLS for LuaJIT through the FFI, implementing the LuaSec 1.3.2 API"
end

-- For ssl.rawconnection: the SSL* (valid until close or collection).
function core.rawconnection(conn)
  return check(conn, "rawconnection").s:raw()
end

-- For ssl.wrap: keeps ctx alive as long as conn (state already does).
function core.context_of(conn)
  return check(conn, "context_of").ctx
end

return core
