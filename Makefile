# crier - build, test, run. `make` builds build/crier; `make test` runs every test;
# `make run` builds and starts the gateway on its built-in defaults.

PKGS     := libwebsockets libmicrohttpd jansson hiredis libjwt libcrypto libcurl msgpack
CC       ?= cc
B        ?= build
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
# Library headers come in through -isystem so they cannot trip -Werror.
PKG_INC  := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS) 2>/dev/null))
# libev (no pkg-config file in Debian): the WebSocket workers' epoll loop (ws.c).
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lpthread
# The version (common/version.c): the VERSION file, plus "+g<commit>" in a
# git checkout ("+dirty" with local changes). $(B)/version.txt changes only
# when the string does, so version.o is rebuilt exactly then.
GIT_REV  := $(shell git rev-parse --short HEAD 2>/dev/null)
GIT_DIRTY := $(shell git diff --quiet HEAD -- 2>/dev/null || echo .dirty)
CRIER_VERSION ?= $(shell cat VERSION 2>/dev/null || echo unknown)$(if $(GIT_REV),+g$(GIT_REV)$(GIT_DIRTY))
CPPFLAGS := -D_GNU_SOURCE -I. $(PKG_INC)
CSTD     := -std=c11
OPT      ?= -O2 -g
SAN      := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# One folder per layer, pointing down only (README "How it works"; checked by
# tests/layers.sh): gateway/ -> transports/{carriers,plain,signalr}/ -> hub/ -> common/.
SRCS     := $(wildcard gateway/*.c common/*.c hub/*.c transports/*/*.c)
LIB_SRCS := $(filter-out gateway/main.c,$(SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
HDRS     := $(wildcard gateway/*.h common/*.h hub/*.h transports/*/*.h tests/unit/*.h)

OBJS      := $(SRCS:%.c=$(B)/obj/%.o)
TEST_OBJS := $(LIB_SRCS:%.c=$(B)/test/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/test/unit/%)

.PHONY: all deps test-deps test test-run unit layers integration run bench clean format format-check

# The public targets install what is missing first (scripts/setup.sh), then
# build in a fresh make, so that pkg-config sees the libraries just installed.
all: deps
	@$(MAKE) --no-print-directory $(B)/crier

deps:
	@bash scripts/setup.sh build

test-deps:
	@bash scripts/setup.sh test

$(B)/crier: $(OBJS)
	$(CC) $(OPT) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

VERSION_OBJS := $(B)/obj/common/version.o $(B)/test/obj/common/version.o \
                $(B)/tsan/obj/common/version.o $(B)/fuzz/obj/common/version.o
$(VERSION_OBJS): CPPFLAGS += -DCRIER_VERSION='"$(CRIER_VERSION)"'
$(VERSION_OBJS): $(B)/version.txt

.PHONY: FORCE
$(B)/version.txt: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CRIER_VERSION)' | cmp -s - $@ || echo '$(CRIER_VERSION)' > $@

# Where `make install` puts things (README "Operating crier"). PREFIX=/usr
# (the Debian package) puts the config in /etc and the unit in
# /lib/systemd/system; any other PREFIX keeps both under it. DESTDIR is
# prepended to every path at install time only.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
WEBDIR     := $(DATADIR)/crier/web

# web.root's default (gateway/web_root.c) knows the install prefix; about.c
# names the libjwt version built against. Rebuilt when these change, as
# version.o is.
WEBDIR_OBJS := $(VERSION_OBJS:common/version.o=gateway/web_root.o)
$(WEBDIR_OBJS): CPPFLAGS += -DCRIER_WEB_DIR='"$(WEBDIR)"'
$(WEBDIR_OBJS): $(B)/webdir.txt
$(B)/webdir.txt: FORCE
	@mkdir -p $(dir $@)
	@echo '$(WEBDIR)' | cmp -s - $@ || echo '$(WEBDIR)' > $@
ABOUT_OBJS := $(VERSION_OBJS:common/version.o=gateway/about.o)
$(ABOUT_OBJS): CPPFLAGS += -DCRIER_LIBJWT_VERSION='"$(shell pkg-config --modversion libjwt 2>/dev/null)"'

$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) $(CPPFLAGS) -c -o $@ $<

# The test build: ASan + UBSan, every module, every unit test.
$(B)/test/crier: $(B)/test/obj/gateway/main.o $(TEST_OBJS)
	$(CC) $(SAN) -o $@ $^ $(PKG_LIBS)

$(B)/test/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(SAN) $(WARN) $(CPPFLAGS) -c -o $@ $<

$(B)/test/libcrier.a: $(TEST_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/test/unit/%: tests/unit/%.c $(B)/test/libcrier.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(SAN) $(WARN) $(CPPFLAGS) -o $@ $< $(B)/test/libcrier.a $(PKG_LIBS)

# --- ThreadSanitizer build (issue #11): `make tsan` builds $(B)/tsan/crier,
# instrumented with -fsanitize=thread. The libraries (lws, MHD, jansson,
# hiredis) are not instrumented; TSan still intercepts their pthread calls.
# tests/run.sh runs the integration suite against it (integration-tsan,
# integration-redis-tsan); suppressions live in tests/tsan.supp.
TSAN     := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_OBJS := $(SRCS:%.c=$(B)/tsan/obj/%.o)

# Unit tests with threads are built under TSan too (tests/run.sh tsan runs them).
TSAN_UNIT_BINS := $(B)/tsan/unit/test_hub_threads $(B)/tsan/unit/test_access \
                  $(B)/tsan/unit/test_live

.PHONY: tsan
tsan: $(B)/tsan/crier $(TSAN_UNIT_BINS)

$(B)/tsan/crier: $(TSAN_OBJS)
	$(CC) $(TSAN) -o $@ $^ $(PKG_LIBS)

$(B)/tsan/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(TSAN) $(WARN) $(CPPFLAGS) -c -o $@ $<

$(B)/tsan/libcrier.a: $(filter-out $(B)/tsan/obj/gateway/main.o,$(TSAN_OBJS))
	rm -f $@ && ar rcs $@ $^

$(B)/tsan/unit/%: tests/unit/%.c $(B)/tsan/libcrier.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(TSAN) $(WARN) $(CPPFLAGS) -o $@ $< $(B)/tsan/libcrier.a $(PKG_LIBS)
# --- end ThreadSanitizer build

test: test-deps
	@$(MAKE) --no-print-directory test-run

test-run: $(B)/crier $(B)/test/crier $(B)/tsan/crier $(TSAN_UNIT_BINS) $(UNIT_BINS) $(B)/loadgen
	@bash tests/run.sh

# The load generator (tests/bench/): libc only.
$(B)/loadgen: tests/bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g $(WARN) -D_GNU_SOURCE -o $@ $<

# --- Fuzzing (tests/fuzz/, see README "Fuzzing") ------------------------------
# Every tests/fuzz/fuzz_<name>.c is a libFuzzer harness, linked with clang
# against the library objects built with coverage and ASan+UBSan. `make fuzz`
# runs each for FUZZ_SECONDS from a scratch copy of tests/fuzz/corpus/<name>/
# (build/fuzz/corpus/); a crash lands in build/fuzz/artifacts/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_OBJS    := $(LIB_SRCS:%.c=$(B)/fuzz/obj/%.o)
FUZZ_HDRS    := $(HDRS) $(wildcard tests/fuzz/*.h)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)
test-run: $(FUZZ_BINS) # tests/run.sh's fuzz suite

fuzz: $(FUZZ_BINS)
	@B=$(B) bash tests/fuzz/run.sh $(FUZZ_SECONDS)

$(B)/fuzz/obj/%.o: %.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined $(WARN) \
		$(CPPFLAGS) -c -o $@ $<

$(B)/fuzz/libcrier.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(B)/fuzz/libcrier.a $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $(WARN) $(CPPFLAGS) \
		-o $@ $< $(B)/fuzz/libcrier.a $(PKG_LIBS)

# --- Install, uninstall, Debian package (README "Operating crier") ----------
# `make install` builds $(B)/crier if needed and copies: the binary, the web
# pages, the man page, the systemd unit (its paths made those of this
# install) and config.example.json as $(SYSCONFDIR)/crier/config.json unless
# a config is there already. `make uninstall` removes all but the config.
.PHONY: install uninstall deb
install: $(B)/crier
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(WEBDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(SYSCONFDIR)/crier $(DESTDIR)$(UNITDIR)
	install -m 755 $(B)/crier $(DESTDIR)$(BINDIR)/crier
	find web -type f | while read -r f; do install -D -m 644 "$$f" "$(DESTDIR)$(WEBDIR)/$${f#web/}"; done
	install -m 644 docs/crier.1 $(DESTDIR)$(MANDIR)/man1/crier.1
	sed -e 's|/usr/bin/crier|$(BINDIR)/crier|g' -e 's|/etc/crier/|$(SYSCONFDIR)/crier/|g' \
		deploy/crier.service > $(DESTDIR)$(UNITDIR)/crier.service
	chmod 644 $(DESTDIR)$(UNITDIR)/crier.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/crier/config.json ] || \
		install -m 644 config.example.json $(DESTDIR)$(SYSCONFDIR)/crier/config.json

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/crier $(DESTDIR)$(MANDIR)/man1/crier.1 $(DESTDIR)$(UNITDIR)/crier.service
	rm -rf $(DESTDIR)$(DATADIR)/crier
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/crier/config.json (remove it by hand if unwanted)"

# `make deb`: a Debian package from a copy of the tree in $(B)/deb/, built
# with dpkg-buildpackage and debhelper (debian/); the .deb lands in $(B)/deb/.
# Its version is VERSION's, its binary reports $(CRIER_VERSION).
DEB_UPSTREAM := $(shell cat VERSION 2>/dev/null || echo 0)
DEB_SRC      := $(B)/deb/crier-$(DEB_UPSTREAM)
deb:
	rm -rf $(B)/deb && mkdir -p $(DEB_SRC)
	cp -r Makefile VERSION README.md config.example.json common gateway hub transports \
		web deploy docs debian $(DEB_SRC)/
	sed -i '1s/([^)]*)/($(DEB_UPSTREAM))/' $(DEB_SRC)/debian/changelog
	cd $(DEB_SRC) && CRIER_VERSION='$(CRIER_VERSION)' dpkg-buildpackage -b -us -uc
	@ls $(B)/deb/*.deb

unit: $(B)/test/crier $(UNIT_BINS)
	@bash tests/run.sh unit

# The folders point down only (tests/layers.sh); needs no build.
layers:
	@bash tests/run.sh layers

integration: $(B)/test/crier
	@bash tests/run.sh integration

run: deps
	@$(MAKE) --no-print-directory $(B)/crier
	./$(B)/crier $(ARGS)

bench: deps
	@$(MAKE) --no-print-directory $(B)/crier
	@bash tests/bench/run.sh

format:
	clang-format -i $(SRCS) $(HDRS) tests/unit/*.[ch] tests/bench/*.c tests/fuzz/*.c

format-check:
	@bash tests/format.sh

clean:
	rm -rf build
