#!/bin/sh
# tests/gpu/resident.sh — the optimizer on the device (lgen/cuda_optim.h) in
# generated trainers, on a GPU, against the CPU path.
#
# specs/lenet.lmod (SGD with momentum and weight decay, a cosine schedule
# per step) and specs/mlp.lmod (Adam) are generated with `--target all` and
# built with `make CUDA=1`; then on Fashion-MNIST, from one seed:
#   1. 20 optimizer steps (40 batches, accumulate_grad_batches 2, clipping
#      by norm 1.0) on the CPU and on the GPU: the checkpoints' weights and
#      optimizer state agree within TOL (relative to 1 + |value|), with TF32
#      off (NVIDIA_TF32_OVERRIDE=0: cuDNN would otherwise round fp32
#      convolutions' inputs to TF32, and on an H200 lenet's momentum buffers
#      then drifted 0.0065 apart over 20 steps; in full float32 they agree);
#   2. resume across devices: the GPU checkpoint continued on the CPU and the
#      CPU checkpoint continued on the GPU, to 30 steps, both agree with 30
#      uninterrupted CPU steps within TOL;
#   3. 16-mixed: the checkpoint holds Lightning's "MixedPrecision" key with
#      GradScaler's state (scale, growth_factor, backoff_factor,
#      growth_interval, _growth_tracker); resumed under 16-mixed, the
#      tracker goes on counting from the saved value; a 32-true checkpoint
#      has no such key; the 16-mixed checkpoint resumes on the CPU.
# `make check-gpu` runs it. Without a device it prints SKIP and exits 0.
#
# Environment: BUILD (build), LGEN ($BUILD/lgen), TOL (0.005), MIRROR (where
# the Fashion-MNIST files are; default the spec's), PREBUILT=1 (use the
# trainers compare_trainers.sh built in $BUILD/tests/gpu/specs).
set -u
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
LGEN=${LGEN:-$BUILD/lgen}
TOL=${TOL:-0.005}
DIFF=$BUILD/tests/gpu/ckpt_diff
if ! [ -e /dev/nvidiactl ]; then
    echo "SKIP: no CUDA device (no /dev/nvidiactl)"
    exit 0
fi
export NVIDIA_TF32_OVERRIDE=0 # full float32 in cuDNN and cuBLAS, like the CPU (see 1. above)
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fit() { # fit DIR ARGS...: a fit in $tmp/DIR; 0 when it exited 0
    d=$tmp/$1
    shift
    mkdir -p "$d"
    (cd "$d" && "$bin" fit "$@" --limit_train_batches 40 --limit_val_batches 5 --num_sanity_val_steps 0 \
        --seed 7 --num_workers 1 --enable_progress_bar false ${MIRROR:+--mirror "$MIRROR"} \
        --data_dir "$tmp/data" >out 2>err)
    rc=$?
    [ $rc -eq 0 ] || bad "$name fit $* exited $rc: $(tail -3 "$d/err")"
    return $rc
}
ck() { echo "$tmp/$1/lightning_logs/version_0/checkpoints/last.ckpt"; }
header() { # the checkpoint's safetensors header (JSON), its inner quotes unescaped for grep
    f=$(ck "$1")
    n=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
    tail -c +9 "$f" | head -c "$n" | tr -d '\\'
}
same() { # same A B WHAT: A's and B's checkpoints agree within TOL
    if "$DIFF" "$(ck "$1")" "$(ck "$2")" "$TOL" >"$tmp/diff" 2>&1; then
        echo "ok: $name $3: $(grep -c '^ok' "$tmp/diff") tensors within $TOL ($(sort -k7 -g "$tmp/diff" | awk '/^ok/ {w = $NF} END {print "largest difference " w}'))"
    else
        bad "$name $3: $(grep -v '^ok' "$tmp/diff" | head -5)"
    fi
}

for spec in specs/lenet.lmod specs/mlp.lmod; do
    name=$(basename "$spec" .lmod)
    out=$BUILD/tests/gpu/specs/$name
    if [ "${PREBUILT:-0}" != 1 ]; then
        "$LGEN" "$spec" -o "$out" --target all || { bad "lgen $name --target all"; continue; }
        make -s -C "$out" CUDA=1 >"$tmp/make.out" 2>&1 || { bad "make CUDA=1 $name: $(tail -5 "$tmp/make.out")"; continue; }
    fi
    bin=$out/$name
    steps="--accumulate_grad_batches 2 --gradient_clip_val 1.0"
    fit $name-cpu20 --accelerator cpu --max_steps 20 $steps || continue
    fit $name-gpu20 --accelerator gpu --max_steps 20 $steps || continue
    grep -q "GPU available: True (cuda), used: True" "$tmp/$name-gpu20/out" ||
        bad "$name --accelerator gpu did not say it used the GPU"
    same $name-cpu20 $name-gpu20 "GPU vs CPU after 20 steps (weights and optimizer state)"
    fit $name-cpu30 --accelerator cpu --max_steps 30 $steps &&
        fit $name-g2c --accelerator cpu --max_steps 30 $steps --ckpt_path "$(ck $name-gpu20)" &&
        same $name-cpu30 $name-g2c "a GPU checkpoint resumed on the CPU"
    fit $name-c2g --accelerator gpu --max_steps 30 $steps --ckpt_path "$(ck $name-cpu20)" &&
        same $name-cpu30 $name-c2g "a CPU checkpoint resumed on the GPU"
    header $name-gpu20 | grep -q MixedPrecision && bad "$name: a 32-true checkpoint has a MixedPrecision key"
    fit $name-m16 --accelerator gpu --precision 16-mixed --max_steps 10 || continue
    h=$(header $name-m16)
    for k in scale growth_factor backoff_factor growth_interval _growth_tracker; do
        echo "$h" | grep -q "\"MixedPrecision\": *\"{[^}]*\"$k\":" || bad "$name 16-mixed: no MixedPrecision.$k in the checkpoint"
    done
    t1=$(echo "$h" | sed -n 's/.*"MixedPrecision": *"{[^}]*"_growth_tracker":\([0-9]*\).*/\1/p')
    fit $name-m16r --accelerator gpu --precision 16-mixed --max_steps 15 --ckpt_path "$(ck $name-m16)" || continue
    t2=$(header $name-m16r | sed -n 's/.*"MixedPrecision": *"{[^}]*"_growth_tracker":\([0-9]*\).*/\1/p')
    if [ -n "$t1" ] && [ -n "$t2" ] && [ "$t2" -gt "$t1" ]; then
        echo "ok: $name 16-mixed: GradScaler's state in the checkpoint (_growth_tracker $t1), resumed ($t2 after 5 more steps)"
    else
        bad "$name 16-mixed: _growth_tracker '$t1' then '$t2' after resuming"
    fi
    fit $name-m16c --accelerator cpu --max_steps 15 --ckpt_path "$(ck $name-m16)" &&
        echo "ok: $name a 16-mixed checkpoint resumes on the CPU"
done
exit $fail
