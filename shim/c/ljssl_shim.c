/* ljssl_shim.c — the optional C shim: OpenSSL callbacks that never enter Lua.
 *
 * Built by `make shim` into libljssl_shim.so.  ffi/ssl/lib.lua loads it when
 * present and otherwise installs equivalent LuaJIT callbacks, created once per
 * process.  See ljssl_shim.h for the contract every function here keeps. */
#include <string.h>

#include "ljssl_shim.h"

int ljssl_shim_version(void)
{
    return LJSSL_SHIM_VERSION;
}

int ljssl_password_cb(char *buf, int size, int rwflag, void *userdata)
{
    const char *password = userdata;
    size_t len;

    (void)rwflag;
    if (password == NULL || buf == NULL || size <= 0)
        return -1;
    len = strlen(password);
    if (len > (size_t)size)
        len = (size_t)size;
    memcpy(buf, password, len);
    return (int)len;
}
