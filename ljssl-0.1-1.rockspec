package = "ljssl"
version = "0.1-1"
-- TLS for LuaJIT through the FFI: Lua modules only (the C shim is optional
-- and built with `make shim`).  Generated list of modules: keep in step with
-- ffi/ (spec/install_spec.lua checks it).
source = { url = "git+https://example.invalid/ljssl.git", tag = "v0.1" }
description = {
  summary = "TLS for LuaJIT through the FFI over OpenSSL 3: LuaSec, libtls and net faces",
  license = "MIT",
}
dependencies = { "lua == 5.1", "luasocket" }
build = {
  type = "builtin",
  modules = {
    ["cdefs.bio"] = "ffi/cdefs/bio.lua",
    ["cdefs.err"] = "ffi/cdefs/err.lua",
    ["cdefs.libc"] = "ffi/cdefs/libc.lua",
    ["cdefs.ocsp"] = "ffi/cdefs/ocsp.lua",
    ["cdefs.shim"] = "ffi/cdefs/shim.lua",
    ["cdefs.ssl"] = "ffi/cdefs/ssl.lua",
    ["cdefs.types"] = "ffi/cdefs/types.lua",
    ["cdefs.x509"] = "ffi/cdefs/x509.lua",
    ["iomodules"] = "ffi/iomodules/init.lua",
    ["iomodules.loop"] = "ffi/iomodules/loop.lua",
    ["iomodules.net"] = "ffi/iomodules/net.lua",
    ["iomodules.resolver"] = "ffi/iomodules/resolver.lua",
    ["libtls.config"] = "ffi/libtls/config.lua",
    ["libtls.error"] = "ffi/libtls/error.lua",
    ["libtls"] = "ffi/libtls/init.lua",
    ["libtls.ocsp"] = "ffi/libtls/ocsp.lua",
    ["ssl.client"] = "ffi/ssl/client.lua",
    ["ssl.config"] = "ffi/ssl/config.lua",
    ["ssl.context"] = "ffi/ssl/context.lua",
    ["ssl.core"] = "ffi/ssl/core.lua",
    ["ssl.engine.args"] = "ffi/ssl/engine/args.lua",
    ["ssl.engine.callbacks"] = "ffi/ssl/engine/callbacks.lua",
    ["ssl.engine.context"] = "ffi/ssl/engine/context.lua",
    ["ssl.engine.fd"] = "ffi/ssl/engine/fd.lua",
    ["ssl.engine.names"] = "ffi/ssl/engine/names.lua",
    ["ssl.engine.object"] = "ffi/ssl/engine/object.lua",
    ["ssl.engine.policy"] = "ffi/ssl/engine/policy.lua",
    ["ssl.engine.session"] = "ffi/ssl/engine/session.lua",
    ["ssl.engine.trust"] = "ffi/ssl/engine/trust.lua",
    ["ssl.https"] = "ffi/ssl/https.lua",
    ["ssl"] = "ffi/ssl/init.lua",
    ["ssl.lib"] = "ffi/ssl/lib.lua",
    ["ssl.ngx"] = "ffi/ssl/ngx.lua",
    ["ssl.x509"] = "ffi/ssl/x509.lua",
  },
  install = { bin = { ljssl = "bin/ljssl" } },
  -- LuaLS annotations: point workspace.library at the installed meta/ folder
  copy_directories = { "meta", "docs" },
}
