# lgen — the top-level build.
#
# `make` builds the compiler (build/lgen) and the runtime library
# (build/liblgen.a); `make check` builds and runs every test; `make install
# PREFIX=DIR` installs bin/lgen, lib/liblgen.a, include/lgen/ and share/lgen/.
# Each part of the tree adds its sources and tests through a small fragment
# (compiler/compiler.mk, runtime/*/module.mk, tests/*.mk, bench/bench.mk), so
# this file only holds what is common. Outputs go to build/.

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   := build
PYTHON  ?= python3

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS  ?= -O2 -g
ifeq ($(SANITIZE),1)
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iruntime/include -I$(BUILD)/gen

# Libraries the runtime links; the generated Makefile uses the same list.
RUNTIME_LIBS = -ldnnl -lgomp -lopenblas -ljansson -lcurl -larchive -lxml2 -lpng -ljpeg -lpthread -lmvec -lm
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)
XML_CFLAGS   = $(shell pkg-config --cflags libxml-2.0 2>/dev/null || echo -I/usr/include/libxml2)
ALL_CFLAGS  += $(XML_CFLAGS)

# Filled in by the fragments.
LGEN_SRCS     :=   # compiler sources (main.c last, kept out of the test library)
RUNTIME_SRCS  :=   # runtime library sources
CHECK_PROGS   :=   # Check test binaries under build/tests/, run by `make check`
CHECK_SCRIPTS :=   # shell tests, run by `make check` from the top directory
BENCH_TARGETS :=   # what `make bench` runs

# The outputs, named before the fragments are read: a fragment's rule
# prerequisites are expanded as it is read, so these must already be set.
LIBLGEN  := $(BUILD)/liblgen.a
LIBLGENC := $(BUILD)/liblgenc.a
LGEN     := $(BUILD)/lgen

# `make` builds `all` even when a fragment (read first, bench/ sorts before
# compiler/) defines a rule of its own.
.DEFAULT_GOAL := all
include $(sort $(wildcard compiler/*.mk runtime/*/module.mk tests/*.mk bench/*.mk))

RUNTIME_OBJS := $(RUNTIME_SRCS:%.c=$(BUILD)/obj/%.o)
LGEN_OBJS    := $(filter-out %/main.o,$(LGEN_SRCS:%.c=$(BUILD)/obj/%.o)) $(LGEN_GEN_OBJS)

.PHONY: all check check-sanitize install clean demo bench fuzz deps
all: $(LGEN) $(LIBLGEN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIBLGEN): $(RUNTIME_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBLGENC): $(LGEN_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LGEN): $(BUILD)/obj/compiler/main.o $(LIBLGENC)
	$(CC) $(LDFLAGS) -o $@ $^ -lm

# A Check test links the compiler library, the runtime library and Check.
$(BUILD)/tests/%: tests/%.c $(LIBLGENC) $(LIBLGEN)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icompiler -I$(BUILD)/gen -o $@ $< $(LIBLGENC) $(LIBLGEN) $(LDFLAGS) $(CHECK_LIBS) $(RUNTIME_LIBS)

# Every test binary and script runs, even after a failure; the last line
# sums them up as "N passed, N failed".
check: all $(CHECK_PROGS)
	@pass=0; fail=0; failed=""; \
	for t in $(CHECK_PROGS) $(CHECK_SCRIPTS); do \
	    echo "== $$t"; \
	    case $$t in /*) run=$$t;; *) run=./$$t;; esac; \
	    if LGEN=$(LGEN) BUILD=$(BUILD) CC="$(CC)" $$run; then pass=$$((pass+1)); \
	    else fail=$$((fail+1)); failed="$$failed $$t"; fi; \
	done; \
	[ -z "$$failed" ] || echo "failed:$$failed"; \
	echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]

check-sanitize:
	$(MAKE) BUILD=build/san SANITIZE=1 check

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/lgen $(DESTDIR)$(PREFIX)/share/lgen
	install -m 755 $(LGEN) $(DESTDIR)$(PREFIX)/bin/lgen
	install -m 644 $(LIBLGEN) $(DESTDIR)$(PREFIX)/lib/liblgen.a
	install -m 644 runtime/include/lgen/* $(DESTDIR)$(PREFIX)/include/lgen/
	cp -r templates $(DESTDIR)$(PREFIX)/share/lgen/

deps:
	scripts/install-deps.sh

bench: all $(BENCH_TARGETS)

clean:
	rm -rf $(BUILD)

-include $(RUNTIME_OBJS:.o=.d) $(LGEN_OBJS:.o=.d) $(BUILD)/obj/compiler/main.d
