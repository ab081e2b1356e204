#!/bin/sh
# tools/devrun/prep.sh — generate and `make CUDA=1` the trainers that
# tests/gpu/{compare_trainers,resident,faster_rcnn}.sh build on the spot, as
# those scripts do, so that they can run with PREBUILT=1 elsewhere.
set -eu
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
LGEN=${LGEN:-$BUILD/lgen}
VOCGEN=${VOCGEN:-$BUILD/vocgen}
for spec in specs/lenet.lmod specs/mlp.lmod tests/gpu/bnnet.lmod tests/gpu/actnet.lmod tests/cuda/structnet.lmod \
    tests/cuda/lossnet.lmod; do
    name=$(basename "$spec" .lmod)
    out=$BUILD/tests/gpu/specs/$name
    "$LGEN" "$spec" -o "$out" --target all
    make -s -C "$out" CUDA=1 -j2
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data/shapes"
"$VOCGEN" --seed 2 --images 48 --size 128 --objects 2 --out "$tmp/data/shapes/shapes.tar" >"$tmp/vocgen.txt"
sha=$(cut -d' ' -f1 "$tmp/vocgen.txt")
echo "vocgen sha256 $sha"
sed "s/sha256 \"[0-9a-f]*\"/sha256 \"$sha\"/" tests/e2e/faster_rcnn_shapes.lmod >"$tmp/faster_rcnn_shapes.lmod"
out=$BUILD/tests/gpu/specs/faster_rcnn_shapes
"$LGEN" -I specs -D fpn_channels=32 -D rois=64 "$tmp/faster_rcnn_shapes.lmod" -o "$out" --target all
make -s -C "$out" CUDA=1 -j2
