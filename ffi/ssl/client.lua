-- ssl.client — the LuaSec face's secure clients in one place: ssl.connect,
-- ssl.https and ssl.ngx build their contexts and make their handshakes here,
-- on the engine's client policy (ljssl.engine.policy), so that they cannot
-- drift apart again.  Internal: programs use those three.
--
-- Secure by default, unlike ssl.newcontext/ssl.wrap: verify = "peer" unless
-- given, the system CA store unless cafile/capath, SNI and the host name
-- checked in the handshake whenever the context verifies, which is decided by
-- the mode OpenSSL holds, so every LuaSec verify form with "peer" in it
-- ("peer", {"peer"}, {"client_once", "peer"}, ...) checks the name.

local ssl = require "ssl"

-- The engine is loaded by the first context or handshake, not by
-- `require "ssl.https"`.
local core, context, policy
local function engine()
  core = require "ssl.core"
  context = require "ssl.context"
  policy = require "ljssl.engine.policy"
  engine = function() end
end

local client = {}

-- newcontext params from the caller's flags: a copy (the caller's table is
-- left alone), mode "client", protocol "any" and verify "peer" unless given.
function client.params(flags)
  local params = {}
  for k, v in pairs(flags or {}) do params[k] = v end
  params.mode = "client"
  params.protocol = params.protocol or "any"
  if params.verify == nil then params.verify = "peer" end
  return params
end

-- A context for params: newcontext (LuaSec's keys and error strings), then
-- the system store when the context verifies and params name no CA of their
-- own.  ctx, or nil and a reason.
function client.context(params)
  engine()
  local ctx, err = ssl.newcontext(params)
  if not ctx then return nil, err end
  local ok, why = policy.context(context.state[ctx].engine,
                                 { system = not (params.cafile or params.capath) })
  if not ok then return nil, "cannot load the system CA store: " .. tostring(why) end
  return ctx
end

-- Wraps sock (a LuaSocket object or a transport) with ctx for `host`: SNI and
-- the host check by the policy, `timeout` (seconds, fd-based connections) and
-- the handshake.  conn, or nil and a reason ("certificate verify failed: ...",
-- "host name mismatch: ...", OpenSSL's alert texts).  Once wrapped, a failed
-- connection is closed (with its socket or transport); a failed wrap leaves
-- sock to the caller.
function client.handshake(sock, ctx, host, timeout)
  engine()
  local conn, err = ssl.wrap(sock, ctx)
  if not conn then return nil, err end
  local ok
  ok, err = policy.session(core.check(conn, "handshake").s, { host = host })
  if ok then
    if timeout then conn:settimeout(timeout) end
    ok, err = conn:dohandshake()
    if not ok and err == "certificate verify failed" then
      err = core.explain_verify_failure(conn, host)
    end
  end
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

return client
