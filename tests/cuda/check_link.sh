#!/bin/sh
# tests/cuda/check_link.sh — the CUDA library builds and links as issue 7 asks.
#
# Run by `make check` from the top directory with BUILD set. Where nvcc is
# found (PATH or $CUDA_HOME/bin, as runtime/cuda/module.mk looks), it checks
# that build/liblgen_cuda.a holds sm_80 and sm_90 code, that the probe
# program links libcudnn, libcublas, libcublasLt and libcudart and that they
# all resolve, and that the probe behaves like `--accelerator gpu`: on a
# machine without a driver or device it exits 1 with "error: no CUDA
# device: ...", with one it runs a kernel and exits 0. Once lgen can emit
# CUDA trainers, each spec's is built and checked the same way.
set -u
BUILD=${BUILD:-build}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
# From make, LGEN_NVCC is the nvcc runtime/cuda/module.mk found (empty: none).
if [ -n "${LGEN_NVCC+set}" ]; then
    nvcc=$LGEN_NVCC
else
    nvcc=$(command -v nvcc 2>/dev/null || { [ -x "$CUDA_HOME/bin/nvcc" ] && echo "$CUDA_HOME/bin/nvcc"; })
fi
if [ -z "$nvcc" ]; then
    echo "SKIP: no nvcc"
    exit 0
fi
fail=0
bad() { echo "FAIL: $*"; fail=1; }

case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
lib=$BUILD/liblgen_cuda.a
probe=$BUILD/tests/cuda/lg_cuda_probe
[ -f "$lib" ] || bad "$lib was not built"
[ -x "$probe" ] || bad "$probe was not built"
[ $fail -eq 0 ] || exit 1

# device code for both architectures, compiled once into the archive
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && ar x "$lib" kernels.o) || bad "no kernels.o in $lib"
objcopy -O binary --only-section=.nv_fatbin "$tmp/kernels.o" "$tmp/fatbin" 2>/dev/null ||
    bad "kernels.o has no .nv_fatbin section"
for arch in sm_80 sm_90; do
    strings "$tmp/fatbin" | grep -q -- "-arch $arch" || bad "no $arch code in kernels.o"
done

# only lg_ names are exported (weak C++ runtime references aside)
extra=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[TDBR]$/ && $3 !~ /^lg_/ {print $3}')
[ -z "$extra" ] || bad "$lib exports non-lg_ symbols: $(echo $extra | cut -c1-200)"

# the libraries a trainer needs are linked and resolve
needed=$(readelf -d "$probe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for l in libcudnn.so libcublas.so libcublasLt.so libcudart.so; do
    echo "$needed" | grep -q "^$l\." || bad "$probe does not link $l (NEEDED: $(echo $needed))"
done
if ldd "$probe" | grep -q "not found"; then
    bad "unresolved libraries: $(ldd "$probe" | grep 'not found' | tr -d '\t')"
fi

# behaviour with and without a device
"$probe" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ -e /dev/nvidia0 ] || [ -e /dev/nvidiactl ]; then
    [ $rc -eq 0 ] || bad "probe failed on a machine with a GPU (exit $rc): $(cat "$tmp/err")"
    grep -q "relu kernel ok" "$tmp/out" || bad "probe output: $(cat "$tmp/out")"
else
    [ $rc -eq 1 ] || bad "without a device the probe exited $rc, not 1"
    grep -q "^lg_cuda_probe: error: no CUDA device: ." "$tmp/err" ||
        bad "without a device the probe said: $(cat "$tmp/err")"
    [ -s "$tmp/out" ] && bad "the probe wrote to stdout on failure: $(cat "$tmp/out")"
fi

# Every spec's CUDA trainer, once lgen emits them (`--target cuda`): it
# builds with CUDA=1 and warnings as errors, links cuDNN and cuBLAS, and
# `fit --accelerator gpu` without a device fails at once with exit 1.
LGEN=${LGEN:-$BUILD/lgen}
if [ -x "$LGEN" ] && "$LGEN" --help 2>&1 | grep -q -- '--target'; then
    for spec in specs/*.lmod; do
        name=$(basename "$spec" .lmod)
        out=$BUILD/tests/cuda/specs/$name
        rm -rf "$out"
        if ! "$LGEN" "$spec" -o "$out" --target cuda >"$tmp/lgen.err" 2>&1; then
            bad "lgen $spec --target cuda: $(head -3 "$tmp/lgen.err")"
            continue
        fi
        if ! make -s -C "$out" CUDA=1 CFLAGS="-O2 -Werror" >"$tmp/make.out" 2>&1; then
            bad "make -C $out CUDA=1: $(tail -5 "$tmp/make.out")"
            continue
        fi
        bin=
        for f in "$out"/*; do
            [ -f "$f" ] && [ -x "$f" ] && readelf -h "$f" >/dev/null 2>&1 && bin=$f
        done
        [ -n "$bin" ] || { bad "no trainer binary in $out"; continue; }
        needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
        for l in libcudnn.so libcublas.so; do
            echo "$needed" | grep -q "^$l\." || bad "$bin does not link $l"
        done
        if ! [ -e /dev/nvidiactl ]; then
            (cd "$tmp" && "$bin" fit --accelerator gpu --max_epochs 1 >out.gpu 2>err.gpu)
            rc=$?
            [ $rc -eq 1 ] || bad "$bin fit --accelerator gpu without a device exited $rc, not 1"
            grep -q "no CUDA device" "$tmp/err.gpu" ||
                bad "$bin fit --accelerator gpu said: $(head -3 "$tmp/err.gpu")"
        fi
        echo "ok: $spec: CUDA trainer builds and links cuDNN/cuBLAS"
    done
else
    echo "note: lgen has no --target option yet: the specs' CUDA trainers are not built"
fi

[ $fail -eq 0 ] && echo "ok: liblgen_cuda.a (sm_80, sm_90) links cuDNN/cuBLAS(Lt); probe: $(cat "$tmp/err" "$tmp/out" | head -1)"
exit $fail
