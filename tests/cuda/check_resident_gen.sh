#!/bin/sh
# tests/cuda/check_resident_gen.sh — the optimizer on the device as lgen
# generates it (NAME_cuda.c's transfers and optimizer step), on any machine.
#
# For specs/lenet.lmod (one parameter group) and specs/resnet20.lmod (batch
# norm's buffers and counters, two parameter groups), `lgen --target cuda`
# writes NAME_cuda.c; it is compiled with the project's warnings and linked
# with tests/cuda/resident_gen.c (which includes NAME.c for the model def),
# tests/cuda/fake_device.c (a device in host memory: the arena, transfers,
# and the optimizer's launchers running their bodies) and stubs for the
# layers' launchers (listed from NAME_cuda.c: the steps are not run). The
# program's checks: see resident_gen.c. Needs no CUDA toolkit.
set -u
BUILD=${BUILD:-build}
LGEN=${LGEN:-$BUILD/lgen}
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
flags="-std=c11 -D_GNU_SOURCE -O1 -g -Iruntime/include"
warn="-Wall -Wextra -Wshadow -Werror"
libs="$BUILD/liblgen.a -ldnnl -lgomp -lopenblas -ljansson -lcurl -larchive -lxml2 -lpng -ljpeg -lpthread -lmvec -lm -lcrypto -lz"
san=""
case "$BUILD" in *san*) san="-fsanitize=address,undefined -fno-omit-frame-pointer" ;; esac

$CC $flags $san $warn -Wstrict-prototypes -Wmissing-prototypes -c tests/cuda/fake_device.c -o "$tmp/fake.o" ||
    { echo "FAIL: tests/cuda/fake_device.c does not compile"; exit 1; }
for spec in specs/lenet.lmod specs/resnet20.lmod; do
    name=$(basename "$spec" .lmod)
    d=$tmp/$name
    "$LGEN" "$spec" -o "$d" --target cuda >/dev/null || { bad "lgen $spec --target cuda"; continue; }
    $CC $flags $san $warn -Wstrict-prototypes -Wmissing-prototypes -c "$d/${name}_cuda.c" -o "$d/cuda.o" ||
        { bad "$name: ${name}_cuda.c does not compile"; continue; }
    $CC $flags $san $warn -Wno-unused-function -DSPEC_C="\"$d/$name.c\"" -DDEF=${name}_def \
        -c tests/cuda/resident_gen.c -o "$d/test.o" || { bad "$name: resident_gen.c does not compile"; continue; }
    # stubs for what NAME_cuda.c calls and neither the fake nor liblgen.a defines
    have=$( (nm -g --defined-only "$tmp/fake.o"; nm -g --defined-only "$BUILD/liblgen.a" 2>/dev/null) |
        awk 'NF == 3 {print $3}' | sort -u)
    grep -o 'lg_cuda_[a-z0-9_]*(' "$d/${name}_cuda.c" | tr -d '(' | sort -u | while read -r f; do
        echo "$have" | grep -qx "$f" || echo "long $f(void) { return 0; } /* a layer: not run here */"
    done >"$d/stubs.c"
    $CC $flags -c "$d/stubs.c" -o "$d/stubs.o" || { bad "$name: stubs"; continue; }
    $CC $san -o "$d/run" "$d/test.o" "$d/cuda.o" "$tmp/fake.o" "$d/stubs.o" $libs ||
        { bad "$name: link"; continue; }
    if "$d/run" >"$d/out" 2>&1; then
        sed "s/^/$name: /" "$d/out" | grep -v ' 0 failed$'
    else
        bad "$name: $(grep -v '^ok' "$d/out" | head -8)"
    fi
done
[ $fail -eq 0 ] && echo "ok: NAME_cuda.c's transfers and optimizer step on a fake device equal the CPU optimizer"
exit $fail
