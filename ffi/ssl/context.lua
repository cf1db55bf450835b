-- ssl.context — LuaSec's context module: plain functions taking the context as
-- their first argument (ctx:setverifyext is the one method), with LuaSec 1.3.2's
-- return values and error strings, on the shared engine context.
--
-- A context is a userdata (type(ctx) == "userdata", as LuaSec's), whose state
-- lives in a weak-keyed table; ssl.wrap tells contexts from params tables by
-- that type, as LuaSec's callers do.

local ffi = require "ffi"
local bit = require "bit"
local lib = require "ljssl.lib"
local engine = require "ljssl.engine.context"
local cb = require "ljssl.engine.callbacks"
local args = require "ljssl.engine.args"
local object = require "ljssl.engine.object"

local K = lib.K

local context = {}

-- state: { engine = Context, mode = "client"|"server"|nil }
local class = object.class("SSL context")
local state, methods, check = class.state, class.methods, class.check
context.state = state
context.check = check

-- Protocols ---------------------------------------------------------------------------

local PROTOCOLS = {
  any = { 0, 0 }, sslv23 = { 0, 0 },
  tlsv1 = { K.TLS1_VERSION, K.TLS1_VERSION },
  tlsv1_1 = { K.TLS1_1_VERSION, K.TLS1_1_VERSION },
  tlsv1_2 = { K.TLS1_2_VERSION, K.TLS1_2_VERSION },
  tlsv1_3 = { K.TLS1_3_VERSION, K.TLS1_3_VERSION },
}
context.PROTOCOLS = PROTOCOLS

function context.create(protocol)
  protocol = args.string(protocol, 1, "create")
  local range = PROTOCOLS[protocol]
  if not range then return nil, ("invalid protocol (%s)"):format(protocol) end
  local e, err = engine.new("any", range[1], range[2])
  if not e then return nil, ("error creating context (%s)"):format(err) end
  -- as LuaSec: no session cache
  e:set_session_cache_mode(K.SSL_SESS_CACHE_OFF)
  return class.new({ engine = e }, e.ptr)
end

-- Unlike LuaSec 1.3.2, an invalid mode is an error here (LuaSec returned one
-- truthy string, so newcontext accepted it and only wrap failed).
function context.setmode(ctx, mode)
  local st = check(ctx, "setmode")
  mode = args.string(mode, 2, "setmode")
  if mode ~= "server" and mode ~= "client" then
    return false, ("invalid mode (%s)"):format(mode)
  end
  st.mode = mode
  return true
end

-- Keys and certificates ---------------------------------------------------------------------

-- password: a string, or a function returning one (called only if the key is
-- encrypted); nil leaves OpenSSL's own prompt in place, as LuaSec does (it
-- reads the terminal, or stdin without one); false (not in LuaSec) refuses an
-- encrypted key without prompting, for servers that must never block on it.
function context.loadkey(ctx, file, password)
  local st = check(ctx, "loadkey")
  file = args.string(file, 2, "loadkey")
  local t = type(password)
  if t ~= "nil" and t ~= "string" and t ~= "function" and password ~= false then
    error("invalid callback value", 2)
  end
  if password == nil then password = engine.PROMPT elseif password == false then password = nil end
  local ok, err = st.engine:use_key_file(file, password)
  if not ok then return false, ("error loading private key (%s)"):format(err) end
  return true
end

function context.loadcert(ctx, file)
  local st = check(ctx, "loadcert")
  file = args.string(file, 2, "loadcert")
  local ok, err = st.engine:use_certificate_chain_file(file)
  if not ok then return false, ("error loading certificate (%s)"):format(err) end
  return true
end

function context.checkkey(ctx)
  return check(ctx, "checkkey").engine:check_private_key()
end

function context.locations(ctx, cafile, capath)
  local st = check(ctx, "locations")
  cafile = args.optstring(cafile, 2, "locations")
  capath = args.optstring(capath, 3, "locations")
  if capath then
    -- OpenSSL takes any path as a hashed directory and only fails to verify
    -- later; a path that is not a directory is a mistake to report now
    local f, err = io.open(capath, "rb")
    local _, rerr = f and f:read(0)
    if f then f:close() end
    if not f then
      return false, ("error loading CA locations (%s)"):format((err:gsub("^[^:]*: ", "")))
    elseif rerr ~= "Is a directory" then
      return false, ("error loading CA locations (%s: Not a directory)"):format(capath)
    end
  end
  local ok, err = st.engine:load_verify_locations(cafile, capath)
  if not ok then return false, ("error loading CA locations (%s)"):format(err) end
  return true
end

-- Ciphers, verification, options ------------------------------------------------------------

function context.setcipher(ctx, list)
  local st = check(ctx, "setcipher")
  local ok, err = st.engine:set_cipher_list(args.string(list, 2, "setcipher"))
  if not ok then return false, ("error setting cipher list (%s)"):format(err) end
  return true
end

function context.setciphersuites(ctx, list)
  local st = check(ctx, "setciphersuites")
  local ok, err = st.engine:set_ciphersuites(args.string(list, 2, "setciphersuites"))
  if not ok then return false, ("error setting cipher list (%s)"):format(err) end
  return true
end

function context.setdepth(ctx, depth)
  local st = check(ctx, "setdepth")
  st.engine:set_verify_depth(args.integer(depth, 2, "setdepth", args.INT_MIN, args.INT_MAX))
  return true
end

local VERIFY = {
  none = K.SSL_VERIFY_NONE, peer = K.SSL_VERIFY_PEER,
  client_once = K.SSL_VERIFY_CLIENT_ONCE,
  fail_if_no_peer_cert = K.SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
}

function context.setverify(ctx, ...)
  local st = check(ctx, "setverify")
  local flag = 0
  for i = 1, select("#", ...) do
    local name = args.string((select(i, ...)), i + 1, "setverify")
    local v = VERIFY[name]
    if not v then return false, ("invalid verify option (%s)"):format(name) end
    flag = bit.bor(flag, v)
  end
  if flag ~= 0 then st.engine:set_verify(flag) end
  return true
end

-- LuaSec's option names, from the installed headers: SSL_OP_X -> "x".
local OPTIONS = {}
for name, value in pairs(require("cdefs.ssl").const) do
  if name:match("^SSL_OP_") and name ~= "SSL_OP_BIT" then
    OPTIONS[name:sub(8):lower()] = value
  end
end
context.OPTIONS = OPTIONS

function context.setoptions(ctx, ...)
  local st = check(ctx, "setoptions")
  local n = select("#", ...)
  if n == 0 then return true end
  local flag = 0ULL
  for i = 1, n do
    local name = args.string((select(i, ...)), i + 1, "setoptions")
    local v = OPTIONS[name]
    if not v then return false, ("invalid option (%s)"):format(name) end
    flag = bit.bor(flag, v)
  end
  st.engine:set_options(flag)
  return true
end

-- As LuaSec: fn becomes OpenSSL's temporary-DH callback, called during a
-- handshake only when a DHE suite is negotiated, as fn(is_export, keylength)
-- (false, 1024 on OpenSSL 3.0), and returns PEM DH parameters or nil (the
-- handshake then fails).  An error in fn fails the handshake the same way
-- (LuaSec would raise through OpenSSL).  Returns true, or false and a reason on
-- an OpenSSL built without the deprecated DH callback (LuaSec returns nothing).
function context.setdhparam(ctx, fn)
  local st = check(ctx, "setdhparam")
  if type(fn) ~= "function" then args.error(2, "setdhparam", "function expected") end
  local ok, err = st.engine:set_dh_function(fn)
  if not ok then return false, ("error setting DH parameters (%s)"):format(err) end
  return true
end

-- One curve, as LuaSec's `curve` key (OpenSSL 3 groups; no EC_KEY).
function context.setcurve(ctx, name)
  local st = check(ctx, "setcurve")
  name = args.string(name, 2, "setcurve")
  st.engine:set_options(K.SSL_OP_SINGLE_ECDH_USE)
  if name:find(":", 1, true) or not st.engine:set_groups(name) then
    return false, ("elliptic curve '%s' not supported"):format(name)
  end
  return true
end

function context.setcurveslist(ctx, list)
  local st = check(ctx, "setcurveslist")
  list = args.string(list, 2, "setcurveslist")
  st.engine:set_options(K.SSL_OP_SINGLE_ECDH_USE)
  if not st.engine:set_groups(list) then
    return false, ('unknown elliptic curve in "%s"'):format(list)
  end
  return true
end

-- ALPN ------------------------------------------------------------------------------------

-- A client's ALPN offer, in wire format.
function context.setalpn(ctx, wire)
  local st = check(ctx, "setalpn")
  local ok, err = st.engine:set_alpn_protos(args.string(wire, 2, "setalpn"))
  if not ok then return false, ("error setting ALPN (%s)"):format(err) end
  return true
end

-- A server's choice: fn(client_wire) -> server wire list.  ssl.newcontext uses
-- the engine's fixed-list path for a table, which needs no Lua callback.
function context.setalpncb(ctx, fn)
  local st = check(ctx, "setalpncb")
  if type(fn) ~= "function" then args.error(2, "setalpncb", "function expected") end
  st.engine:set_alpn_select(fn)
  return true
end

-- A well-formed wire list (length-prefixed names, none empty): OpenSSL's
-- SSL_select_next_proto trusts the server's list and would read past it.
local function valid_wire(wire)
  local i = 1
  if #wire == 0 then return false end
  while i <= #wire do
    local len = wire:byte(i)
    if len == 0 or i + len > #wire then return false end
    i = i + len + 1
  end
  return true
end

function context.setalpnlist(ctx, wire)
  local st = check(ctx, "setalpnlist")
  wire = args.string(wire, 2, "setalpnlist")
  if not valid_wire(wire) then return false, "error setting ALPN (invalid protocol list)" end
  st.engine:set_alpn_select(wire)
  return true
end

-- PSK ------------------------------------------------------------------------------------

function context.setpskhint(ctx, hint)
  local st = check(ctx, "setpskhint")
  lib.clear_errors()
  local ok = lib.ssl.SSL_CTX_use_psk_identity_hint(st.engine.ptr, args.string(hint, 2, "setpskhint")) == 1
  lib.clear_errors()
  return ok
end

function context.setserverpskcb(ctx, fn)
  local st = check(ctx, "setserverpskcb")
  if type(fn) ~= "function" then args.error(2, "setserverpskcb", "function expected") end
  st.engine:set_psk_server(fn)
  return true
end

function context.setclientpskcb(ctx, fn)
  local st = check(ctx, "setclientpskcb")
  if type(fn) ~= "function" then args.error(2, "setclientpskcb", "function expected") end
  st.engine:set_psk_client(fn)
  return true
end

-- DANE -------------------------------------------------------------------------------------

local DANE_FLAGS = { no_ee_namechecks = K.DANE_FLAG_NO_DANE_EE_NAMECHECKS }
context.DANE_FLAGS = DANE_FLAGS

function context.setdane(ctx, ...)
  local st = check(ctx, "setdane")
  local flags = 0
  for i = 1, select("#", ...) do
    local name = args.string((select(i, ...)), i + 1, "setdane")
    local v = DANE_FLAGS[name]
    if not v then return false, ("invalid DANE flag (%s)"):format(name) end
    flags = bit.bor(flags, v)
  end
  return st.engine:dane_enable(flags) and true or false
end

-- The one method: ctx:setverifyext(name, ...) ---------------------------------------------

local VERIFYEXT = {
  lsec_continue = { cb.VERIFY_CONTINUE, 0 },
  lsec_ignore_purpose = { cb.VERIFY_IGNORE_PURPOSE, 0 },
  crl_check = { 0, K.X509_V_FLAG_CRL_CHECK },
  crl_check_chain = { 0, bit.bor(K.X509_V_FLAG_CRL_CHECK, K.X509_V_FLAG_CRL_CHECK_ALL) },
}

function methods.setverifyext(ctx, ...)
  local st = check(ctx, "setverifyext")
  local flags, store = 0, 0
  for i = 1, select("#", ...) do
    local name = args.string((select(i, ...)), i + 1, "setverifyext")
    local v = VERIFYEXT[name]
    if not v then return false, ("invalid verify option (%s)"):format(name) end
    flags, store = bit.bor(flags, v[1]), bit.bor(store, v[2])
  end
  st.engine:set_verify_ext(flags, store)
  return true
end

-- For ssl.rawcontext: the SSL_CTX* (valid while ctx is referenced).
function context.rawcontext(ctx)
  return check(ctx, "rawcontext").engine.ptr
end

return context
