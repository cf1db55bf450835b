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
    ["cdefs.signal"] = "ffi/cdefs/signal.lua",
    ["cdefs.ssl"] = "ffi/cdefs/ssl.lua",
    ["cdefs.types"] = "ffi/cdefs/types.lua",
    ["cdefs.version"] = "ffi/cdefs/version.lua",
    ["cdefs.x509"] = "ffi/cdefs/x509.lua",
    ["iomodules"] = "ffi/iomodules/init.lua",
    ["iomodules.kit"] = "ffi/iomodules/kit.lua",
    ["iomodules.loop"] = "ffi/iomodules/loop.lua",
    ["iomodules.net"] = "ffi/iomodules/net.lua",
    ["iomodules.resolver"] = "ffi/iomodules/resolver.lua",
    ["iomodules.server"] = "ffi/iomodules/server.lua",
    ["iomodules.sslconfig"] = "ffi/iomodules/sslconfig.lua",
    ["iomodules.sslsocket"] = "ffi/iomodules/sslsocket.lua",
    ["iomodules.tcp"] = "ffi/iomodules/tcp.lua",
    ["iomodules.udp"] = "ffi/iomodules/udp.lua",
    ["libtls"] = "ffi/libtls/init.lua",
    ["libtls.config"] = "ffi/libtls/config.lua",
    ["libtls.error"] = "ffi/libtls/error.lua",
    ["libtls.ocsp"] = "ffi/libtls/ocsp.lua",
    ["ljssl.engine.args"] = "ffi/ljssl/engine/args.lua",
    ["ljssl.engine.callbacks"] = "ffi/ljssl/engine/callbacks.lua",
    ["ljssl.engine.cert"] = "ffi/ljssl/engine/cert.lua",
    ["ljssl.engine.context"] = "ffi/ljssl/engine/context.lua",
    ["ljssl.engine.fd"] = "ffi/ljssl/engine/fd.lua",
    ["ljssl.engine.names"] = "ffi/ljssl/engine/names.lua",
    ["ljssl.engine.object"] = "ffi/ljssl/engine/object.lua",
    ["ljssl.engine.policy"] = "ffi/ljssl/engine/policy.lua",
    ["ljssl.engine.pump"] = "ffi/ljssl/engine/pump.lua",
    ["ljssl.engine.session"] = "ffi/ljssl/engine/session.lua",
    ["ljssl.engine.trust"] = "ffi/ljssl/engine/trust.lua",
    ["ljssl.lib"] = "ffi/ljssl/lib.lua",
    ["ljssl.lib_more"] = "ffi/ljssl/lib_more.lua",
    ["ssl"] = "ffi/ssl/init.lua",
    ["ssl.client"] = "ffi/ssl/client.lua",
    ["ssl.config"] = "ffi/ssl/config.lua",
    ["ssl.context"] = "ffi/ssl/context.lua",
    ["ssl.core"] = "ffi/ssl/core.lua",
    ["ssl.face"] = "ffi/ssl/face.lua",
    ["ssl.https"] = "ffi/ssl/https.lua",
    ["ssl.ngx"] = "ffi/ssl/ngx.lua",
    ["ssl.x509"] = "ffi/ssl/x509.lua",
  },
  install = { bin = { ljssl = "bin/ljssl" } },
  -- LuaLS annotations: point workspace.library at the installed meta/ folder
  copy_directories = { "meta", "docs" },
}
