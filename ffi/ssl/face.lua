-- ssl.face — the functions of the LuaSec face (ffi/ssl/init.lua) that run on
-- the engine: newcontext, wrap, connect, use_system_ca, rawcontext and
-- rawconnection.  `require "ssl"` does not load this module (nor the engine):
-- the first call of one of them does, so that `require "ssl"` costs no more
-- than LuaSec's.  Not a LuaSec module: reach these through `ssl`.

local unpack = table.unpack or unpack

-- The engine, loaded with this module.
local context = require "ssl.context"
local core = require "ssl.core"
local args = require "ljssl.engine.args"
local policy = require "ljssl.engine.policy"

-- Apply func(ctx, param) or func(ctx, unpack(param)), as LuaSec's optexec.
local function optexec(func, param, ctx)
  if param then
    if type(param) == "table" then return func(ctx, unpack(param)) end
    return func(ctx, param)
  end
  return true
end

local function array2wireformat(array)
  local parts = {}
  for _, v in ipairs(array) do
    if type(v) ~= "string" then return nil, "invalid ALPN name (string expected, got " .. type(v) .. ")" end
    if #v == 0 then return nil, "invalid ALPN name (empty string)" end
    if #v > 255 then return nil, "invalid ALPN name (length > 255)" end
    parts[#parts + 1] = string.char(#v) .. v
  end
  if #parts == 0 then return nil, "invalid ALPN list (empty)" end
  return table.concat(parts)
end

local function wireformat2array(str)
  local i, array = 1, {}
  while i < #str do
    local len = str:byte(i)
    array[#array + 1] = str:sub(i + 1, i + len)
    i = i + len + 1
  end
  return array
end

local function set_alpn(ctx, cfg)
  local alpn = cfg.alpn
  if cfg.mode == "server" then
    if type(alpn) == "function" then
      return context.setalpncb(ctx, function(wire)
        local protocols = alpn(wireformat2array(wire))
        if type(protocols) == "string" then protocols = { protocols }
        elseif type(protocols) ~= "table" then return nil end
        return (array2wireformat(protocols))
      end)
    elseif type(alpn) == "table" then
      local wire, msg = array2wireformat(alpn)
      if not wire then return nil, msg end
      return context.setalpnlist(ctx, wire)
    end
    return nil, "invalid ALPN parameter"
  end
  local wire, msg
  if type(alpn) == "string" then wire, msg = array2wireformat({ alpn })
  elseif type(alpn) == "table" then wire, msg = array2wireformat(alpn)
  else return nil, "invalid ALPN parameter" end
  if not wire then return nil, msg end
  return context.setalpn(ctx, wire)
end

local function set_psk(ctx, cfg)
  local psk = cfg.psk
  if cfg.mode == "client" then
    if type(psk) ~= "function" then return nil, "invalid PSK configuration" end
    return context.setclientpskcb(ctx, psk)
  end
  local fn, hint = psk, nil
  if type(psk) == "table" then fn, hint = psk.callback, psk.hint end
  if type(fn) ~= "function" or (hint ~= nil and type(hint) ~= "string") then
    return nil, "invalid PSK configuration"
  end
  if hint and not context.setpskhint(ctx, hint) then return nil, "invalid PSK configuration" end
  return context.setserverpskcb(ctx, fn)
end

-- LuaSec's newcontext: each key applied in LuaSec 1.3.2's order.
local function newcontext(cfg)
  if type(cfg) ~= "table" then args.error(1, "newcontext", "table expected, got " .. type(cfg)) end
  local ctx, msg = context.create(cfg.protocol)
  if not ctx then return nil, msg end
  local succ
  succ, msg = context.setmode(ctx, cfg.mode)
  if not succ then return nil, msg end

  local certificates = cfg.certificates
  if not certificates then
    certificates = { { certificate = cfg.certificate, key = cfg.key, password = cfg.password } }
  end
  if type(certificates) ~= "table" then return nil, "invalid certificates parameter (a list expected)" end
  for _, certificate in ipairs(certificates) do
    if type(certificate) ~= "table" then
      return nil, "invalid certificates parameter ({certificate=, key=} expected, got " .. type(certificate) .. ")"
    end
    if certificate.key then
      local pw = certificate.password
      if pw and type(pw) ~= "function" and type(pw) ~= "string" then
        return nil, "invalid password type"
      end
      succ, msg = context.loadkey(ctx, certificate.key, pw)
      if not succ then return nil, msg end
    end
    if certificate.certificate then
      succ, msg = context.loadcert(ctx, certificate.certificate)
      if not succ then return nil, msg end
      if certificate.key and not context.checkkey(ctx) then
        return nil, "private key does not match public key"
      end
    end
  end
  if cfg.cafile or cfg.capath then
    succ, msg = context.locations(ctx, cfg.cafile, cfg.capath)
    if not succ then return nil, msg end
  end
  if cfg.ciphers then
    succ, msg = context.setcipher(ctx, cfg.ciphers)
    if not succ then return nil, msg end
  end
  if cfg.ciphersuites then
    succ, msg = context.setciphersuites(ctx, cfg.ciphersuites)
    if not succ then return nil, msg end
  end
  succ, msg = optexec(context.setverify, cfg.verify, ctx)
  if not succ then return nil, msg end
  succ, msg = optexec(context.setoptions, cfg.options, ctx)
  if not succ then return nil, msg end
  if cfg.depth then
    succ, msg = context.setdepth(ctx, cfg.depth)
    if not succ then return nil, msg end
  end
  if cfg.dhparam then
    if type(cfg.dhparam) ~= "function" then return nil, "invalid DH parameter type" end
    succ, msg = context.setdhparam(ctx, cfg.dhparam)
    if not succ then return nil, msg end
  end
  if cfg.curveslist then
    succ, msg = context.setcurveslist(ctx, cfg.curveslist)
    if not succ then return nil, msg end
  elseif cfg.curve then
    succ, msg = context.setcurve(ctx, cfg.curve)
    if not succ then return nil, msg end
  end
  if cfg.verifyext then
    succ, msg = optexec(ctx.setverifyext, cfg.verifyext, ctx)
    if not succ then return nil, msg end
  end
  if cfg.alpn then
    succ, msg = set_alpn(ctx, cfg)
    if not succ then return nil, msg end
  end
  if cfg.psk then
    succ, msg = set_psk(ctx, cfg)
    if not succ then return nil, msg end
  end
  if cfg.dane then
    -- unlike LuaSec, a refused flag is not ignored
    if type(cfg.dane) == "table" then succ, msg = context.setdane(ctx, unpack(cfg.dane))
    else succ, msg = context.setdane(ctx) end
    if not succ then return nil, msg or "error enabling DANE" end
  end
  return ctx
end

-- Another ljssl connection, or an object without getfd/setfd (an OpenResty
-- cosocket, a copas socket, a pair of functions) is a transport: TLS runs over
-- its send and receive.  LuaSocket objects keep LuaSec's fd semantics.
local function is_transport(sock)
  if core.methods == (getmetatable(sock) or {}).__index then return true end
  return not (type(sock.getfd) == "function" and type(sock.setfd) == "function")
end

-- Takes over a LuaSocket TCP object's fd (or any object with getfd/setfd),
-- or runs over a transport (is_transport).
-- With params, `hostname` (not a LuaSec key) sets SNI and makes the handshake
-- check the peer's certificate against that name.
local function wrap(sock, cfg)
  local kind = type(sock)
  if kind ~= "table" and kind ~= "userdata" then
    args.error(1, "wrap", "socket or transport expected, got " .. kind)
  end
  local probed, transport = pcall(is_transport, sock)
  if not probed or (transport and (type(sock.send) ~= "function" or type(sock.receive) ~= "function")) then
    args.error(1, "wrap", "socket (getfd, setfd) or transport (send, receive) expected")
  end
  local ctx, msg
  if type(cfg) == "table" then
    ctx, msg = newcontext(cfg)
    if not ctx then return nil, msg end
  elseif context.state[cfg] then
    ctx = cfg
  else
    args.error(2, "wrap", "table or SSL context expected, got " .. type(cfg))
  end
  local conn
  conn, msg = core.create(ctx)
  if not conn then return nil, msg end
  if is_transport(sock) then
    core.settransport(conn, sock)
  else
    core.setfd(conn, sock:getfd())
    sock:setfd(core.SOCKET_INVALID)
    core.setsocket(conn, sock)
  end
  if type(cfg) == "table" and cfg.hostname ~= nil then
    -- opt-in, as the key is not LuaSec's; OpenSSL fails the handshake on a
    -- mismatch when the context verifies the peer
    local host = args.string(cfg.hostname, 2, "wrap")
    local ok, err = policy.session(core.check(conn, "wrap").s, { host = host, verify_name = host })
    if not ok then conn:close(); return nil, err end
  end
  return conn
end

-- Loads the system trust store into a context made by newcontext.
local function use_system_ca(ctx)
  return require("ljssl.engine.trust").load(context.check(ctx, "use_system_ca").engine)
end

-- Seed 004's ssl.connect, secure by default (ssl.client): verifies the chain
-- against the system CA store (unless flags give cafile/capath) and the host
-- name, unless flags.verify says "none".  Returns conn, sock or nil, reason.
local function connect(host, port, flags)
  host = args.string(host, 1, "connect")
  port = args.number(port, 2, "connect")
  if flags ~= nil and type(flags) ~= "table" then args.error(3, "connect", "table expected") end
  local client = require "ssl.client"    -- not at load time: it requires this module
  local params = client.params(flags)
  local ctx, err = client.context(params)
  if not ctx then return nil, err end
  local socket = require "socket"
  local sock = socket.tcp()
  local timeout = params.timeout or 60
  sock:settimeout(timeout)
  local ok
  ok, err = sock:connect(host, port)
  if not ok then sock:close(); return nil, err end
  local conn
  conn, err = client.handshake(sock, ctx, host, timeout)
  if not conn then sock:close(); return nil, err end
  return conn, sock
end

-- conn:info([field]), as LuaSec's ssl.lua builds it from ssl.core.
local function info(conn, field)
  core.check(conn, "info")
  local comp, err = core.compression(conn)
  if err then return comp, err end
  if field == "compression" then return comp end
  local t = { compression = comp }
  local str, bits, algbits, protocol = core.info(conn)
  if str then
    t.cipher, t.protocol, t.key, t.authentication, t.encryption, t.mac = str:match(
      "^(%S+)%s+(%S+)%s+Kx=(%S+)%s+Au=(%S+)%s+Enc=(%S+)%s+Mac=(%S+)")
    t.export = str:match("%sexport%s*$") ~= nil
    t.bits, t.algbits = bits, algbits
  end
  if protocol then t.protocol = protocol end
  if field then return t[field] end
  return next(t) and t
end
core.setmethod("info", info)

return {
  newcontext = newcontext,
  wrap = wrap,
  connect = connect,
  use_system_ca = use_system_ca,
  rawcontext = function(...) return context.rawcontext(...) end,
  rawconnection = function(...) return core.rawconnection(...) end,
}
