#!/bin/sh
# install.sh — after `make install PREFIX=DIR`, the installed lgen writes a
# Makefile that finds the installed runtime (DIR/include, DIR/lib) with no
# arguments, and the trainer builds warning-free from it; the source-tree
# lgen's Makefile points into the source tree instead.
set -eu
BUILD=${BUILD:-build}
LGEN=${LGEN:-$BUILD/lgen}
mkdir -p "$BUILD/tests/e2e"
out=$(cd "$BUILD" && pwd)/tests/e2e/install.$$
rm -rf "$out"
mkdir -p "$out"
fail() { echo "install: FAIL: $* (files in $out)"; exit 1; }
. tests/e2e/san_flags.sh

make -s install PREFIX="$out/prefix" BUILD="$BUILD" >"$out/install.log" 2>&1 ||
    { cat "$out/install.log"; fail "make install failed"; }
"$out/prefix/bin/lgen" specs/mlp.lmod -o "$out/gen" || fail "installed lgen failed"
grep -q "LGEN_INCLUDE ?= $out/prefix/include\$" "$out/gen/Makefile" || fail "Makefile does not use the installed headers"
grep -q "LGEN_LIBDIR  ?= $out/prefix/lib\$" "$out/gen/Makefile" || fail "Makefile does not use the installed library"
make -s -C "$out/gen" CC="${CC:-cc}" CFLAGS="-O1 -Werror $SAN_FLAGS" LDFLAGS="$SAN_FLAGS" >"$out/make.log" 2>&1 ||
    { cat "$out/make.log"; fail "the trainer does not build against the installed runtime"; }
"$out/gen/mlp" --version >/dev/null || fail "the installed-runtime trainer does not run"

"$LGEN" specs/mlp.lmod -o "$out/src" || fail "source-tree lgen failed"
grep -q "LGEN_INCLUDE ?= $(pwd)/runtime/include\$" "$out/src/Makefile" || fail "source-tree Makefile does not use runtime/include"
rm -rf "$out"
echo "install: PASS"
