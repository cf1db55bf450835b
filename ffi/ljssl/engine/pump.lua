-- ljssl.engine.pump — the one data path for a session whose face moves the
-- bytes itself (an event loop, a cosocket, any LuaSocket-shaped transport, TLS
-- inside TLS): the session runs on memory BIOs and the pump owns the buffers
-- between it and the transport.  Faces bring only their waiting policy.
--
--   ciphertext in    incoming(data[, len]) hands the peer's bytes to OpenSSL;
--                    incoming_eof() ends the stream.
--   ciphertext out   what OpenSSL wrote is collected into one string.buffer
--                    (`outgoing()` → pointer, length; `sent(n)`; or
--                    `take_outgoing()` → a string), read straight from the BIO
--                    into the buffer's reserved space, no staging copy.
--   plaintext in     read(into) decrypts everything available into a caller's
--                    string.buffer (reserve/commit: OpenSSL writes into it).
--   plaintext out    write(data) encrypts what the session takes and keeps the
--                    rest (a TLS 1.2 renegotiation can make SSL_write wait for
--                    the peer) to retry after the next incoming data; nothing
--                    is dropped.
--   pull transports  step(status, send, recv): the transport step a LuaSocket-
--                    shaped transport needs after a session call answered
--                    `status`: send everything queued, and for WANT_READ read
--                    one TLS record with receive(n).  Answers nil to retry the
--                    session call, or "wantread"/"wantwrite" (the transport
--                    would block), or the transport's error.
--
-- handshake/read/write/shutdown answer the session's statuses
-- (ljssl.engine.session) and never raise or wait.

local ffi = require "ffi"
local strbuf = require "string.buffer"
local lib = require "ljssl.lib"
local session = require "ljssl.engine.session"

local DONE, WANT_READ, WANT_WRITE = session.DONE, session.WANT_READ, session.WANT_WRITE
local BIO_pending = lib.BIO_pending
local cptr = ffi.typeof("const char *")

local RECORD = 16384            -- one TLS record's plaintext
local HEADER = 5                -- a TLS record header: type, version, length

local pump = {}
local Pump = {}
Pump.__index = Pump
pump.Pump = Pump

-- A pump over session `s`, which it switches to the memory transport.
function pump.new(s)
  local ok, err = s:use_memory()
  if not ok then return nil, err end
  return setmetatable({ s = s, out = strbuf.new(), plain = nil, record = nil,
                        ended = false }, Pump)
end

-- Ciphertext in ---------------------------------------------------------------------------

function Pump:incoming(data, len)
  if self.s.rbio == nil then return 0 end
  return self.s:feed(data, len or #data)
end

function Pump:incoming_eof()
  self.ended = true
  if self.s.rbio ~= nil then self.s:feed_eof() end
end

-- Whether OpenSSL may still have something to read: ciphertext not yet
-- processed, or a record only partly returned.
local function more_inside(s)
  local rbio = s.rbio
  return rbio ~= nil and (BIO_pending(rbio) > 0 or s:has_pending())
end

-- Ciphertext out --------------------------------------------------------------------------

-- Moves what OpenSSL wrote into the out buffer, drained by the session
-- straight into its reserved space: a memory BIO hands out all it holds in
-- one read, so this is one BIO_pending and at most one BIO_read (no loop: a
-- loop here would abort the caller's trace).  Every method that calls the
-- session collects before returning, so the out buffer is always current.
local function collect(self)
  local s = self.s
  if s.wbio == nil then return end
  local n = s:outgoing()
  if n > 0 then
    local out = self.out
    out:commit(s:drain(out:reserve(n), n))
  end
end

-- Bytes waiting to be sent.
function Pump:outgoing_size()
  return #self.out
end

-- The ciphertext to send: a pointer and a length valid until the next call.
function Pump:outgoing()
  return self.out:ref()
end

function Pump:sent(n)
  self.out:skip(n)
end

-- All queued ciphertext as one string, emptying the queue.
function Pump:take_outgoing()
  if #self.out == 0 then return "" end
  return self.out:get()
end

-- The session, step by step ---------------------------------------------------------------

function Pump:handshake()
  local status, msg, a, b = self.s:handshake()
  collect(self)
  return status, msg, a, b
end

-- Plaintext the session could not take yet.
function Pump:pending_plain()
  return self.plain and #self.plain or 0
end

-- Writes as much of the queued plaintext as the session takes: nil when all of
-- it went, otherwise the status that stopped it (WANT_* keep the rest queued).
local function push_plain(self)
  local plain = self.plain
  while #plain > 0 do
    local p, len = plain:ref()
    local n, msg, a, b = self.s:write(p, len)
    if n <= 0 then
      collect(self)
      if n ~= WANT_READ and n ~= WANT_WRITE then plain:reset() end
      return n, msg, a, b
    end
    plain:skip(n)
  end
  collect(self)
  return nil
end

-- What a write could not finish: the rest is queued when the session must
-- first hear from the peer (WANT_*), or the failure is answered.
local function write_rest(self, p, len, off, n, msg, a, b)
  local s = self.s
  while n > 0 do
    off = off + n
    if off == len then collect(self); return len end
    n, msg, a, b = s:write(p + off, len - off)
  end
  collect(self)
  if n ~= WANT_READ and n ~= WANT_WRITE then
    if off > 0 then return off end
    return n, msg, a, b
  end
  self.plain = self.plain or strbuf.new()
  self.plain:putcdata(p + off, len - off)
  return len
end

-- Encrypts `data` (a string, or a pointer and `len`).  Answers the number of
-- bytes taken — all of them, queued when the session must first hear from
-- the peer — or a failure status and message (the queue is then dropped).
-- The common case, one SSL_write taking everything, has no loop (a loop here
-- would abort the traces of the face's callers).
function Pump:write(data, len)
  len = len or #data
  local plain = self.plain
  if plain and #plain > 0 then
    if type(data) == "string" then
      plain:put(len == #data and data or data:sub(1, len))
    else
      plain:putcdata(data, len)
    end
    local n, msg, a, b = push_plain(self)
    if n and n ~= WANT_READ and n ~= WANT_WRITE then return n, msg, a, b end
    return len
  end
  if len == 0 then return 0 end
  local p = type(data) == "string" and ffi.cast(cptr, data) or data
  local n, msg, a, b = self.s:write(p, len)
  if n == len then collect(self); return len end
  return write_rest(self, p, len, 0, n, msg, a, b)
end

-- Reads once into `into`: bytes (> 0) or a status.
local function read_once(s, into, room)
  local n, msg, a, b = s:read(into:reserve(room), room)
  into:commit(n > 0 and n or 0)
  return n, msg, a, b
end

local function read_rest(self, into, max, got)
  local s = self.s
  while true do
    local room = max and math.min(RECORD, max - got) or RECORD
    if room <= 0 then collect(self); return got, DONE end
    if got > 0 and not self.ended and not more_inside(s) then
      -- nothing left to decrypt: the read that would only say so is skipped
      collect(self)
      return got, WANT_READ
    end
    local n, msg, a, b = read_once(s, into, room)
    if n <= 0 then collect(self); return got, n, msg, a, b end
    got = got + n
  end
end

-- Decrypts everything available into the string.buffer `into` (at most `max`
-- bytes when given).  Answers the bytes appended and the status that ended
-- the reading (WANT_READ: needs more ciphertext; CLOSED, EOF, ERROR, ...) with
-- its message.  Queued plaintext is retried first: what it waited for may have
-- arrived.  The common case — one record in, nothing more inside — is one
-- SSL_read and no loop.
function Pump:read(into, max)
  if self.plain and #self.plain > 0 then
    local n, msg, a, b = push_plain(self)
    if n and n ~= WANT_READ and n ~= WANT_WRITE then return 0, n, msg, a, b end
  end
  local s = self.s
  local room = max and math.min(RECORD, max) or RECORD
  if room <= 0 then return 0, DONE end
  local n, msg, a, b = read_once(s, into, room)
  if n <= 0 then collect(self); return 0, n, msg, a, b end
  if n < room and not self.ended and not more_inside(s) then
    collect(self)
    return n, WANT_READ
  end
  return read_rest(self, into, max, n)
end

function Pump:shutdown()
  local status, msg, a, b = self.s:shutdown()
  collect(self)
  return status, msg, a, b
end

-- Pull transports -------------------------------------------------------------------------

local function would_block(err)
  return err == "timeout" or err == "wantread" or err == "wantwrite"
end

-- Sends everything queued with LuaSocket-shaped send(data) → last | nil, err,
-- partial: nil when all went, "wantwrite" when the transport would block,
-- otherwise its error.
function Pump:flush(send)
  collect(self)
  local out = self.out
  while #out > 0 do
    local last, err, partial = send(out:tostring())
    local n = tonumber(last) or tonumber(partial) or 0
    if n > 0 then out:skip(n) end
    if not last then
      if would_block(err) then return "wantwrite" end
      return err or "closed"
    end
  end
  return nil
end

-- Reads (part of) the next TLS record with LuaSocket-shaped receive(n) and
-- hands a complete record to OpenSSL: nil (retry the session call),
-- "wantread" when the transport would block, "closed" after its end.
function Pump:pull(recv)
  if self.ended then return "closed" end
  local rec = self.record
  if rec == nil then rec = strbuf.new(); self.record = rec end
  local have = #rec
  local need
  if have < HEADER then
    need = HEADER - have
  else
    local p = rec:ref()
    need = HEADER + p[3] * 256 + p[4] - have
  end
  local data, err, partial = recv(need)
  data = data or partial
  if data and #data > 0 then rec:put(data); have = #rec end
  if have >= HEADER then
    local p, len = rec:ref()
    if len == HEADER + p[3] * 256 + p[4] then
      self.s:feed(p, len)
      rec:reset()
      return nil
    end
  end
  if would_block(err) then return "wantread" end
  if err then self:incoming_eof() end     -- OpenSSL sees the end of the stream
  return nil
end

-- The transport step after a session call answered `status` (see the top).
function Pump:step(status, send, recv)
  local ferr = self:flush(send)            -- alerts and handshake flights go out first
  if status == WANT_READ then
    if ferr then return ferr end
    return self:pull(recv)
  end
  return ferr
end

return pump
