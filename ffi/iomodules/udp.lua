-- iomodules.udp — net.UdpSocket: bind, datagrams in (queued with their sender)
-- and out, multicast membership, over a LuaSocket UDP socket on the loop.

local socket = require "socket"
local kit = require "iomodules.kit"

local S, fire, by_fd = kit.S, kit.fire, kit.by_fd
local ERRORS, STATES = kit.ERRORS, kit.STATES
local argerror, typename, optport = kit.argerror, kit.typename, kit.optport

local udp = {}

local Udp = kit.class("UdpSocket")
kit.constants(Udp, ERRORS, STATES)
local UM, UG = Udp.methods, Udp.getters

local function udp_readable(fd)
  local obj = by_fd[fd]
  local st = obj and S[obj]
  if not st or not st.sock then return end
  local data, ip, port = st.sock:receivefrom()
  if data then
    st.datagrams[#st.datagrams + 1] = { data = data, ip = ip, port = port }
    fire(obj, "ready_read_handler")
  end
end

local function open(obj, st, sock)
  sock:settimeout(0)
  kit.attach(st, sock)
  kit.watch(obj, st, "read", udp_readable)
end

-- bind(port[, address]): address defaults to all interfaces.
function UM.bind(obj, port, address)
  local st = S[obj]
  port = optport(port, 2, "bind")
  address = kit.optaddress(address, 3, "bind")
  local sock = socket.udp()
  local ok, err = sock:setsockname(address or "0.0.0.0", port or 0)
  if not ok then
    sock:close()
    st.error, st.error_string = ERRORS.ADDRESS_IN_USE_ERROR, err
    fire(obj, "error_handler", ERRORS.ADDRESS_IN_USE_ERROR)
    return false
  end
  open(obj, st, sock)
  st.state = STATES.BOUND_STATE
  fire(obj, "state_changed_handler", STATES.BOUND_STATE)
  return true
end

function UM.close(obj)
  local st = S[obj]
  kit.drop_socket(st)
  if st.state ~= STATES.UNCONNECTED_STATE then
    st.state = STATES.UNCONNECTED_STATE
    fire(obj, "state_changed_handler", STATES.UNCONNECTED_STATE)
  end
end

local function datagram(obj, as_bytes)
  local d = table.remove(S[obj].datagrams, 1)
  if not d then return { valid = false } end
  return { valid = true, data = as_bytes and kit.bytes_of(d.data) or d.data,
           sender_address = d.ip, sender_port = tonumber(d.port) }
end

function UM.read_datagram_string(obj) return datagram(obj, false) end
function UM.read_datagram_bytes(obj) return datagram(obj, true) end

function UM.write_datagram_string(obj, data, host, port)
  local st = S[obj]
  if type(data) ~= "string" then argerror(2, "write_datagram_string", "string expected, got " .. typename(data)) end
  if type(host) ~= "string" then argerror(3, "write_datagram_string", "string expected, got " .. typename(host)) end
  port = optport(port, 4, "write_datagram_string")
  if port == nil then argerror(4, "write_datagram_string", "port expected, got no value") end
  if not st.sock then open(obj, st, socket.udp()) end
  local ok = st.sock:sendto(data, host, port)
  if not ok then return -1 end
  fire(obj, "bytes_written_handler", #data)
  return #data
end

function UM.write_datagram_bytes(obj, t, host, port)
  return UM.write_datagram_string(obj, kit.string_of(kit.checkbytes(t, "write_datagram_bytes")), host, port)
end

local function membership(obj, option, group, fname)
  if type(group) ~= "string" then argerror(2, fname, "string expected, got " .. typename(group), 4) end
  local st = S[obj]
  if not st.sock then return false end
  -- LuaSocket raises for an address it cannot parse: a false result here
  local ok, result = pcall(st.sock.setoption, st.sock, option, { multiaddr = group, interface = "0.0.0.0" })
  return ok and result == 1
end

function UM.join_multicast_group(obj, group)
  local ok = membership(obj, "ip-add-membership", group, "join_multicast_group")
  return ok
end
function UM.leave_multicast_group(obj, group)
  local ok = membership(obj, "ip-drop-membership", group, "leave_multicast_group")
  return ok
end

kit.add_async(Udp, { "bind", "close", "read_datagram_string", "read_datagram_bytes",
                     "write_datagram_string", "write_datagram_bytes",
                     "join_multicast_group", "leave_multicast_group" })

UG.has_pending_datagrams = function(obj) return #S[obj].datagrams > 0 end
UG.pending_datagram_size = function(obj)
  local d = S[obj].datagrams[1]
  return d and #d.data or -1
end
UG.state = function(obj) return S[obj].state end
UG.error = function(obj) return S[obj].error end
UG.error_string = function(obj) return S[obj].error_string or "" end
UG.local_port = function(obj)
  local st = S[obj]
  return st.sock and tonumber((select(2, st.sock:getsockname()))) or 0
end

function Udp.public.new()
  local obj = kit.new_object(Udp)
  S[obj] = { datagrams = {}, state = STATES.UNCONNECTED_STATE, error = ERRORS.UNKNOWN_ERROR }
  return obj
end

kit.guard(Udp)

udp.Udp = Udp
return udp
