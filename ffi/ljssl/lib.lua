-- ljssl.lib — the library layer: loads libssl, libcrypto and the optional shim,
-- checks the OpenSSL version, turns the error queue into messages, and gives
-- Lua forms of the calls OpenSSL only has as macros.  Everything above it (the
-- engine, the faces) reaches OpenSSL through this module.  This file holds
-- what loading needs; the rest (errors, macros, shim, callbacks) is in
-- ffi/ljssl/lib_more.lua, parsed the first time a module reaches for it.
--
--   local lib = require "ljssl.lib"
--   local C, K = lib.ssl, lib.K        -- libssl namespace, generated constants
--
-- Environment: LJSSL_LIBSSL / LJSSL_LIBCRYPTO name the shared objects to load;
-- LJSSL_SHIM names the shim (a path), or "off" to run without it.

local ffi = require "ffi"

local ffi_string, ffi_cast = ffi.string, ffi.cast

-- Declarations and constants come by area (ffi/cdefs/<area>.lua).  Loading
-- this module declares only what loading needs (the `version` and `signal`
-- areas); ljssl.lib_more declares the error functions and the C library, and
-- the other areas are declared the first time a module reaches for lib.ssl or
-- lib.crypto, or for a constant outside the areas declared so far, so that a
-- face whose `require` touches neither (the LuaSec face's `require "ssl"`)
-- does not pay for parsing them.
local AREAS = { "version", "signal", "err", "bio", "x509", "ssl", "ocsp", "libc" }
local areas = {
  version = require "cdefs.version",
  signal = require "cdefs.signal",
}

local lib = {}

-- Generated constants of every area, in one table.  A name is looked up in
-- the areas on its first use and kept (copying a thousand constants up front
-- would cost more than the lookups a program makes); a name none of the
-- declared areas has declares the rest first.  So K.NAME always answers, but
-- pairs(K) sees only the names used so far: iterate an area's `const`
-- (require("cdefs.ssl").const) to list constants.
local K = {}
local all_declared = false
local function declare(name)
  areas[name] = areas[name] or require("cdefs." .. name)
end
local function declare_all()
  if all_declared then return end
  all_declared = true
  for _, name in ipairs(AREAS) do declare(name) end
end
local function find_const(name)
  for _, area in ipairs(AREAS) do
    local a = areas[area]
    local value = a and a.const[name]
    if value ~= nil then return value end
  end
end
setmetatable(K, { __index = function(_, name)
  local value = find_const(name)
  if value == nil and not all_declared then
    declare_all()
    value = find_const(name)
  end
  if value ~= nil then rawset(K, name, value) end
  return value
end })
lib.K = K

-- Loading ------------------------------------------------------------------------

local function load_library(env, names)
  local wanted = os.getenv(env)
  if wanted and wanted ~= "" then
    local ok, clib = pcall(ffi.load, wanted)
    if not ok then
      error(("ljssl: cannot load %s=%s: %s"):format(env, wanted, clib), 0)
    end
    return clib
  end
  local errors = {}
  for _, name in ipairs(names) do
    local ok, clib = pcall(ffi.load, name)
    if ok then return clib end
    errors[#errors + 1] = clib
  end
  error("ljssl: cannot load OpenSSL 3 (" .. table.concat(errors, "; ") ..
        "); install libssl3 or set " .. env, 0)
end

-- When the process already links OpenSSL (nginx/OpenResty), use that copy, so
-- that one process never runs two OpenSSLs; otherwise load libcrypto, then libssl.
-- Only the version area is declared while loading, so libcrypto is found by
-- its version function now, and libssl in the process (ssl_namespace below)
-- once the ssl area is declared.
local function in_process()
  if os.getenv("LJSSL_LIBSSL") or os.getenv("LJSSL_LIBCRYPTO") then return false end
  return pcall(function() return ffi.C.OpenSSL_version_num end)
end

local crypto, ssl
if in_process() then
  crypto = ffi.C
else
  crypto = load_library("LJSSL_LIBCRYPTO", { "libcrypto.so.3", "crypto" })
  ssl = load_library("LJSSL_LIBSSL", { "libssl.so.3", "ssl" })
end

local function ssl_namespace()
  if ssl == nil then
    declare("ssl")
    ssl = pcall(function() return ffi.C.SSL_CTX_new end) and ffi.C
      or load_library("LJSSL_LIBSSL", { "libssl.so.3", "ssl" })
  end
  return ssl
end
-- lib.ssl and lib.crypto: the namespaces, given out (see the end of this file)
-- once every area is declared; lib.libc (ffi.C) once the libc area is.

-- Version --------------------------------------------------------------------------

lib.version_number = tonumber(crypto.OpenSSL_version_num())
lib.version_text = ffi_string(crypto.OpenSSL_version(K.OPENSSL_VERSION))
if lib.version_number < 0x30000000 then
  error(("ljssl needs OpenSSL 3.0 or newer; the loaded library is %s"):format(
    lib.version_text), 0)
end
lib.version_major = tonumber(crypto.OPENSSL_version_major())
lib.version_minor = tonumber(crypto.OPENSSL_version_minor())

-- Functions newer than the 3.0 baseline the cdefs come from (`since` in
-- tools/cdefs.allow): lib.optional(name) gives the C function, or nil and
-- "needs OpenSSL X.Y" when the loaded library is older (or lacks it).  Looked
-- up on first use, never at load: an older OpenSSL still loads ljssl.
-- The same for the few deprecated functions (`deprecated`), which an OpenSSL
-- built with no-deprecated lacks: nil and "needs an OpenSSL built with its
-- deprecated APIs".
local optional_found = {}
local function deprecated_in(area, name)
  for _, n in ipairs(area.deprecated or {}) do
    if n == name then return true end
  end
  return false
end
function lib.optional(name)
  local fn = optional_found[name]
  if fn then return fn end
  declare_all()
  for _, area in pairs(areas) do
    if deprecated_in(area, name) then
      local namespace = area.lib == "ssl" and ssl_namespace() or crypto
      local ok, found = pcall(function() return namespace[name] end)
      if not ok then return nil, "needs an OpenSSL built with its deprecated APIs" end
      optional_found[name] = found
      return found
    end
    local since = area.since and area.since[name]
    if since then
      local major, minor = since:match("^(%d+)%.(%d+)$")
      local needs = "needs OpenSSL " .. since
      if lib.version_number < tonumber(major) * 0x10000000 + tonumber(minor) * 0x100000 then
        return nil, needs
      end
      local namespace = area.lib == "ssl" and ssl_namespace() or crypto
      local ok, found = pcall(function() return namespace[name] end)
      if not ok then return nil, needs end
      optional_found[name] = found
      return found
    end
  end
  error("ljssl: " .. tostring(name) .. " is not a `since` or `deprecated` function of tools/cdefs.allow", 2)
end

-- SIGPIPE ---------------------------------------------------------------------------
-- A write to a socket the peer has closed raises SIGPIPE, whose default action
-- kills the process.  Ignore it, as LuaSocket does, unless the program has
-- installed a handler of its own.
do
  local sig_ign = ffi_cast("__sighandler_t", K.SIG_IGN)
  local sig_dfl = ffi_cast("__sighandler_t", K.SIG_DFL)
  local previous = ffi.C.signal(K.SIGPIPE, sig_ign)
  if previous ~= sig_dfl and previous ~= sig_ign then
    ffi.C.signal(K.SIGPIPE, previous)
  end
end

-- On first use ----------------------------------------------------------------------
-- lib.ssl, lib.crypto: the libssl and libcrypto namespaces, every area
-- declared.  lib.shim: the shim's namespace, nil when running without it;
-- lib.shim_info: the path loaded, or why none was.  lib.libc: ffi.C, with
-- the C library functions of the libc area declared.  The shim is looked for
-- the first time either is read.  Every other name (the error queue, the
-- macros as Lua, the callbacks) is defined by ljssl.lib_more, loaded the
-- first time a module reads a name this file has not defined.
local find_shim, shim_looked
setmetatable(lib, { __index = function(_, key)
  if key == "ssl" or key == "crypto" then
    declare_all()
    rawset(lib, "ssl", ssl_namespace())
    rawset(lib, "crypto", crypto)
    return rawget(lib, key)
  elseif key == "libc" then
    declare("libc")
    rawset(lib, "libc", ffi.C)
    return ffi.C
  end
  if not find_shim then
    find_shim = require("ljssl.lib_more")(lib, crypto, ssl_namespace(), K, declare)
  end
  if (key == "shim" or key == "shim_info") and not shim_looked then
    shim_looked = true
    local clib, info = find_shim()
    rawset(lib, "shim", clib)
    rawset(lib, "shim_info", info)
  end
  return rawget(lib, key)
end })

return lib
