-- Every public function of the three faces has a LuaLS annotation in meta/.
local helpers = require "helpers"

local meta = helpers.readfile("meta/ssl.lua") .. helpers.readfile("meta/libtls.lua")
  .. helpers.readfile("meta/iomodules.lua")

-- internal helpers the modules export for each other; not public API
local INTERNAL = {
  ["context.check"] = true, ["core.check"] = true, ["core.setsocket"] = true,
  ["core.context_of"] = true, ["core.explain_verify_failure"] = true,
  ["x509.ptr"] = true, ["x509.wrap"] = true, ["config.check"] = true, ["config.error_of"] = true,
  ["config.follow_ticket_keys"] = true,
}

local function annotated(qualifier, name)
  return meta:find("\nfunction " .. qualifier .. "[.:]" .. name .. "%(") ~= nil
end

local function check(qualifier, t, missing, skip_async)
  for name, v in pairs(t) do
    if type(v) == "function" and not name:match("^_") and not INTERNAL[qualifier .. "." .. name]
       and not (skip_async and name:match("_async$")) then
      if not annotated(qualifier, name) then missing[#missing + 1] = qualifier .. "." .. name end
    end
  end
end

describe("LuaLS annotations", function()
  it("cover every public function of the LuaSec face", function()
    local ssl = require "ssl"
    local missing = {}
    check("ssl", ssl, missing)
    check("context", require "ssl.context", missing)
    check("core", require "ssl.core", missing)
    check("Connection", require("ssl.core").methods, missing)
    check("x509", require "ssl.x509", missing)
    local cert = ssl.loadcertificate(helpers.readfile(helpers.certs() .. "/valid.pem"))
    check("Certificate", getmetatable(cert).__index, missing)
    check("https", require "ssl.https", missing)
    check("ngx", require "ssl.ngx", missing)
    local ctx = ssl.newcontext({ mode = "client", protocol = "any" })
    check("Context", getmetatable(ctx).__index, missing)
    assert.same({}, missing)
  end)

  it("cover every public function of the libtls face", function()
    local tls, config = require "libtls", require "libtls.config"
    local missing = {}
    check("libtls", tls, missing)
    check("config", config, missing)
    check("Config", getmetatable(config.new()).__index, missing)
    check("Ctx", getmetatable(tls.client(config.new())).__index, missing)
    assert.same({}, missing)
  end)

  it("cover every public function of the net face", function()
    local iomodules = require "iomodules"
    local net = iomodules.net
    local missing = {}
    check("loop", iomodules.loop, missing)
    local objects = {
      TcpSocket = net.TcpSocket.new(), SslSocket = net.SslSocket.new(), TcpServer = net.TcpServer.new(),
      SslServer = net.SslServer.new(), SslConfiguration = net.SslConfiguration.new(),
      UdpSocket = net.UdpSocket.new(),
    }
    for class, obj in pairs(objects) do
      -- every method an object answers, through its class and parents
      local seen = {}
      for _, m in ipairs({ "read_string", "read_bytes", "read_line_string", "read_line_bytes",
                           "read_all_string", "read_all_bytes", "peek_string", "peek_bytes",
                           "write_string", "write_bytes", "seek", "reset", "open", "close",
                           "connect", "disconnect", "abort", "bind", "connect_encrypted",
                           "start_client_encryption", "listen", "pause_accepting", "resume_accepting",
                           "next_pending_connection", "next_pending_secure_connection",
                           "add_ca_certificate", "read_datagram_string", "read_datagram_bytes",
                           "write_datagram_string", "write_datagram_bytes", "join_multicast_group",
                           "leave_multicast_group" }) do
        if type(obj[m]) == "function" and not seen[m] then
          seen[m] = true
          local found = false
          for _, q in ipairs({ class, "Stream", "TcpSocket", "TcpServer" }) do
            if annotated(q, m) then found = true end
          end
          if not found then missing[#missing + 1] = class .. "." .. m end
          if class ~= "SslConfiguration" then -- configuration is not I/O: no _async twins
            assert.equal("function", type(obj[m .. "_async"]), class .. "." .. m .. "_async")
          end
        end
      end
      assert.is_true(annotated(class, "new"), class .. ".new")
    end
    assert.same({}, missing)
  end)
end)
