#!/bin/sh
# gradcheck.sh [GENERATED.c NAME]... — the generated backward pass against
# central finite differences in float64 (see gradcheck.c). With no
# arguments it checks the LeNet trainer check_codegen_emit generated, and
# the specs' trainers when lgen can compile them.
set -eu
BUILD=${BUILD:-build}
CC=${CC:-cc}
LGEN=${LGEN:-$BUILD/lgen}
out=$BUILD/tests/gradcheck.$$
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT
. tests/e2e/san_flags.sh

check() { # generated.c name
    src=$1 name=$2
    # float -> double, kernels -> their _f64 twins; the loss and logs go to a
    # double slot of io->logs so that no float rounding hides in the difference
    sed -e 's/\bfloat\b/double/g' \
        -e 's/\(lg_[a-z0-9_]*\(forward\|backward\|accuracy\|accumulate\|workspace\)\)(/\1_f64(/g' \
        -e 's/io->loss = \(.*\);/((double *)(void *)io->logs)[15] = \1;/' \
        -e 's/io->logs\[\([0-9]*\)\]/((double *)(void *)io->logs)[\1]/g' \
        "$src" > "$out/${name}_f64.c"
    # -ldnnl -lgomp: main() prepares the float32 conv kernels (lg_conv2d_prepare)
    $CC -std=c11 -D_GNU_SOURCE -O1 -w $SAN_FLAGS -Iruntime/include -I"$out" \
        -DGEN_FILE="\"${name}_f64.c\"" -DGEN_DEF="${name}_def" \
        -o "$out/gradcheck_$name" tests/e2e/gradcheck.c "$BUILD/liblgen.a" -ldnnl -lgomp \
        -lopenblas -ljansson -lcurl -larchive -lxml2 -lpng -ljpeg -lpthread -lmvec -lm -lcrypto -lz
    echo "== gradcheck $name"
    "$out/gradcheck_$name"
}

if [ $# -gt 0 ]; then
    while [ $# -ge 2 ]; do check "$1" "$2"; shift 2; done
    exit 0
fi
gen=$BUILD/tests/codegen_emit/lenet.c
[ -f "$gen" ] || { echo "gradcheck: $gen missing (run build/tests/check_codegen_emit first)"; exit 1; }
check "$gen" lenet
check "$BUILD/tests/codegen_zoo/zoo.c" zoo
check "$BUILD/tests/codegen_zoo2/zoo2.c" zoo2
check "$BUILD/tests/codegen_zoo3/zoo3.c" zoo3
for spec in specs/mlp.lmod specs/lenet.lmod; do
    [ -f "$spec" ] || continue
    name=$(basename "$spec" .lmod)
    if "$LGEN" "$spec" -o "$out/spec_$name" 2>"$out/spec_$name.err"; then
        check "$out/spec_$name/$name.c" "$name"
    elif grep -q "not built yet" "$out/spec_$name.err"; then
        echo "SKIP: $LGEN is the placeholder driver; $spec not checked"
    else
        echo "gradcheck: lgen cannot compile $spec:"; cat "$out/spec_$name.err"; exit 1
    fi
done
