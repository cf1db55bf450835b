/* ljssl_shim.h — the optional C shim's interface.
 *
 * The shim holds the OpenSSL callbacks that would otherwise be LuaJIT callbacks:
 * with it loaded, OpenSSL never re-enters Lua from a handshake, a read or a key
 * load.  Every function here follows lua-resty-core's FFI contract: no Lua, no
 * allocation the caller must free, state kept only in what the caller passes
 * (userdata pointers, ex_data slots).  tools/gen_cdefs turns this header into
 * ffi/cdefs/shim.lua, so the Lua side and the C side cannot drift. */
#ifndef LJSSL_SHIM_H
#define LJSSL_SHIM_H

#include <openssl/ssl.h>

/* Interface version; bumped whenever a function is added or changed. */
#define LJSSL_SHIM_VERSION 1

int ljssl_shim_version(void);

/* pem_password_cb: `userdata` is a NUL-terminated password.  Copies at most
 * size-1 bytes and returns the length copied, or -1 (refuse) when userdata is
 * NULL, so a missing password never falls back to a TTY prompt. */
int ljssl_password_cb(char *buf, int size, int rwflag, void *userdata);

#endif
