#!/bin/sh
# tools/devrun/mkbundle.sh — pack the check-gpu binaries (stripped) and
# their shared-library closure (less glibc, libstdc++, libgcc_s and CUDA's)
# into .devrun/bundle.tar.xz (ICU_STUB=0 keeps Debian's libicudata.so.72, 7 MB
# more); Fashion-MNIST goes to .devrun/data as is. Run tools/devrun/prep.sh first.
set -eu
B=build
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/devrun
mkdir -p "$root/lib"
bins="$B/lgen $B/vocgen $B/tests/gpu/gpu_kernels $B/tests/gpu/gpu_detect $B/tests/gpu/gpu_boxes $B/tests/gpu/gpu_lenet
      $B/tests/gpu/gpu_optim $B/tests/gpu/ckpt_diff"
for n in lenet mlp bnnet actnet structnet lossnet faster_rcnn_shapes; do
    bins="$bins $B/tests/gpu/specs/$n/$n"
done
for b in $bins; do
    [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
    mkdir -p "$root/$(dirname "$b")"
    cp "$b" "$root/$b"
    strip --strip-unneeded "$root/$b"
    echo "$b" >>"$root/BINARIES"
done
for b in $bins; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libpthread|libdl|librt|libmvec|libresolv|libutil|libnsl|libanl|ld-linux[^/]*|libstdc\+\+|libgcc_s|libcudnn[^/]*|libcublas[^/]*|libcudart|libcuda)\.so' |
    while read -r l; do cp -L "$l" "$root/lib/$(basename "$l")"; echo "$(basename "$l") <- $l" >>"$root/LIBS"; done
# ICU's data (30 MB, libxml2's through libicuuc) replaced by ICU's empty stub
if [ -f "$root/lib/libicudata.so.72" ] && [ "${ICU_STUB:-1}" = 1 ]; then
    cc -shared -fPIC -O2 -Wl,-soname,libicudata.so.72 -o "$root/lib/libicudata.so.72" tools/devrun/icudata_stub.c
    echo "libicudata.so.72 <- tools/devrun/icudata_stub.c (ICU's empty stub data)" >>"$root/LIBS"
fi
git rev-parse HEAD >"$root/COMMIT"
git status --short --untracked-files=no >>"$root/COMMIT"
mkdir -p .devrun/data
cp /usr/share/datasets/fashion-mnist/*.gz .devrun/data/
(cd "$stage" && XZ_OPT='-9e -T2' tar -cJf - devrun) >.devrun/bundle.tar.xz
ls -l .devrun/bundle.tar.xz
