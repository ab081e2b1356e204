#!/bin/sh
# emitted.sh — the end-to-end checks of lenet.sh on the LeNet trainer that
# check_codegen_emit generated from a hand-built module (no front end
# involved): it builds warning-free, trains on Fashion-MNIST, tests, and
# resumes bit-identically from epoch-end and mid-epoch checkpoints.
set -eu
BUILD=${BUILD:-build}
gen=$BUILD/tests/codegen_emit
[ -f "$gen/lenet.c" ] || { echo "emitted: $gen/lenet.c missing (build/tests/check_codegen_emit writes it)"; exit 1; }
. tests/e2e/san_flags.sh
make -s -C "$gen" CC="${CC:-cc}" CFLAGS="-O2 -Werror $SAN_FLAGS" LDFLAGS="$SAN_FLAGS"
TRAINER=$gen exec tests/e2e/lenet.sh
