-- iomodules — the net face's host environment: what a Pharos IO module sees.
--
--   local iomodules = require "iomodules"
--   local sock = iomodules.net.SslSocket.new()
--   ...
--   iomodules.loop.run()
--
-- Pharos provides `iomodules` and `net` as globals; requiring this module
-- defines them too (unless the program already has its own), so code written
-- for Pharos, such as seed 003's example, runs as it is.  Handlers run from the
-- loop (iomodules.loop.run/step), each under pcall.

local iomodules = {
  net = require "iomodules.net",
  loop = require "iomodules.loop",
}

if rawget(_G, "iomodules") == nil then rawset(_G, "iomodules", iomodules) end
if rawget(_G, "net") == nil then rawset(_G, "net", iomodules.net) end

return iomodules
