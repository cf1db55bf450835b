# ljssl — TLS for LuaJIT through the FFI.  `make demo` shows it working,
# `make test` runs every check (installing what is missing on Debian 12).

LUAJIT  ?= luajit
CC      ?= gcc
CFLAGS  ?= -O2 -g -Wall -Wextra
PREFIX  ?= /usr/local
LUADIR  ?= $(PREFIX)/share/lua/5.1

SHIM    := shim/c/libljssl_shim.so

.PHONY: all deps shim cdefs check-cdefs check-shim spec test demo bench torture matrix install clean

all: shim

deps:
	@sh tools/install_deps

shim: $(SHIM)

$(SHIM): shim/c/ljssl_shim.c shim/c/ljssl_shim.h
	$(CC) $(CFLAGS) -fPIC -shared -o $@ shim/c/ljssl_shim.c -lssl -lcrypto -lpthread

# Regenerate the declarations from the installed headers.
cdefs:
	$(LUAJIT) tools/gen_cdefs --out ffi/cdefs
	$(LUAJIT) tools/gen_cdefs --allow spec/oracle/libtls.allow --out spec/oracle/cdefs

check-cdefs: $(SHIM)
	$(LUAJIT) tools/check_cdefs --shim $(SHIM)
	$(LUAJIT) tools/check_cdefs --allow spec/oracle/libtls.allow --cdefs spec/oracle/cdefs

spec/c/check_shim: spec/c/check_shim.c $(SHIM)
	$(CC) $(CFLAGS) -Ishim/c $$(pkg-config --cflags check) -o $@ spec/c/check_shim.c \
	  -Lshim/c -Wl,-rpath,'$$ORIGIN/../../shim/c' -lljssl_shim $$(pkg-config --libs check) -lssl -lcrypto

check-shim: spec/c/check_shim
	./spec/c/check_shim

# The Lua specs, once with the shim and once without.
spec: $(SHIM)
	LJSSL_EXPECT_SHIM=1 $(LUAJIT) tools/busted
	LJSSL_SHIM=off LJSSL_EXPECT_SHIM=0 $(LUAJIT) tools/busted

test: deps
	@bash tools/run_tests

demo: deps $(SHIM)
	@$(LUAJIT) demo/demo.lua

bench/.build/tls_peer: bench/c/tls_peer.c
	@mkdir -p bench/.build
	$(CC) -O2 -Wall -pthread -o $@ $< $$(pkg-config --cflags --libs libssl libcrypto)

bench/.build/libtls_client: bench/c/libtls_client.c
	@mkdir -p bench/.build
	$(CC) -O2 -Wall -o $@ $< $$(pkg-config --cflags --libs libtls 2>/dev/null || echo -ltls)

# valgrind first: its callgrind.h marks the measured round trips in the clients
bench: deps $(SHIM)
	@sh tools/install_deps valgrind
	@$(MAKE) -s bench/.build/tls_peer bench/.build/libtls_client bench/.build/vgmark.so
	@$(LUAJIT) bench/run.lua

bench/.build/vgmark.so: bench/c/vgmark.c
	@mkdir -p bench/.build
	$(CC) -O2 -Wall -fPIC -shared -o $@ $<

# The long reliability runs (docs/reliability.md): GC torture under valgrind,
# 100 000 sequential connections, 1000 concurrent ones, long fuzzing.
torture: deps $(SHIM)
	@sh tools/install_deps valgrind socat libluajit2-5.1-2
	@bash tools/run_torture

# The whole `make test` on every OpenSSL 3 reachable here: this Debian (12,
# OpenSSL 3.0.x) and a Debian 13 root (OpenSSL 3.5.x) that tools/matrix builds
# with debootstrap from the host's own Debian mirror (docs/compatibility.md).
matrix:
	@bash tools/matrix

LIBDIR  ?= $(PREFIX)/lib/lua/5.1
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/ljssl

# Lua modules to share/lua/5.1, the optional shim to lib/lua/5.1 (found on
# package.cpath), the ljssl command to bin, the demo and the LuaLS annotations
# (point workspace.library at share/ljssl/meta) to share/ljssl.
# BYTECODE=1 installs the modules as LuaJIT bytecode (`luajit -bg`, line numbers
# kept), which loads in half the time of source; it runs only under a LuaJIT of
# the same build as $(LUAJIT) (GC64 or not), so compile with the one that runs it
# (OpenResty: its own luajit).
install: $(SHIM)
	mkdir -p $(DESTDIR)$(LUADIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/demo $(DESTDIR)$(DATADIR)/meta
	cp -R ffi/. $(DESTDIR)$(LUADIR)/
	@if [ "$(BYTECODE)" = 1 ]; then \
	  cd ffi && for f in $$(find . -name '*.lua'); do \
	    f=$${f#./}; $(LUAJIT) -bg -F $(LUADIR)/$$f $$f $(DESTDIR)$(LUADIR)/$$f || exit 1; done; \
	  echo "installed the modules as bytecode for $$($(LUAJIT) -v)"; fi
	cp $(SHIM) $(DESTDIR)$(LIBDIR)/libljssl_shim.so
	cp bin/ljssl $(DESTDIR)$(BINDIR)/ljssl
	cp demo/demo.lua $(DESTDIR)$(DATADIR)/demo/
	cp meta/*.lua $(DESTDIR)$(DATADIR)/meta/

clean:
	rm -f $(SHIM) spec/c/check_shim
