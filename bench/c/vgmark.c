/* bench/c/vgmark.c — lets the Lua benchmark client switch callgrind's
 * collection on and off around the measured round trips (a client request is
 * a special instruction sequence that LuaJIT's FFI cannot emit itself).  Run
 * outside valgrind it does nothing. */
#include <valgrind/callgrind.h>

void vgmark_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
