#!/bin/sh
# tests/cuda/check_steps_gen.sh — generated CUDA trainers' steps, run on any
# machine: every dense op's device call as the emitter wires it.
#
# For specs/lenet.lmod, specs/mlp.lmod, tests/gpu/bnnet.lmod,
# tests/gpu/actnet.lmod, tests/cuda/structnet.lmod and tests/cuda/lossnet.lmod,
# `lgen --target all` writes NAME.c and NAME_cuda.c; they are linked with
# tests/cuda/fake_device.c (a device in host memory: arena, transfers, the
# optimizer) and tests/cuda/fake_layers.c (every layer and own kernel
# launcher: the bodies of runtime/cuda/body.h over the grid, the CPU
# kernels where the device calls cuBLAS/cuDNN or reduces) instead of
# liblgen_cuda.a. The trainer then fits a few Fashion-MNIST batches from one
# seed with --accelerator cpu and --accelerator gpu in 32-true, 16-mixed and
# bf16-mixed: the GPU run must say it used the GPU, and every train_loss and
# the validation metrics must equal the CPU's (32-true: relative 1e-5; the
# fake's launchers compute what the CPU kernels compute) or agree within
# MIXED_TOL (mixed precision: f16/bf16 activations). Needs no CUDA toolkit;
# skips (exit 0) without Debian's Fashion-MNIST files.
set -u
BUILD=${BUILD:-build}
LGEN=${LGEN:-$BUILD/lgen}
CC=${CC:-cc}
MIXED_TOL=${MIXED_TOL:-0.02}
STEPS=${STEPS:-4}
if ! [ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "SKIP: no /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)"
    exit 0
fi
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
flags="-std=c11 -D_GNU_SOURCE -O1 -Iruntime/include"
libs="$BUILD/liblgen.a -ldnnl -lgomp -lopenblas -ljansson -lcurl -larchive -lxml2 -lpng -ljpeg -lpthread -lmvec -lm -lcrypto -lz"
san=""
case "$BUILD" in *san*) san="-fsanitize=address,undefined -fno-omit-frame-pointer" ;; esac
for f in fake_device fake_layers; do
    $CC $flags $san -Wall -Wextra -Wshadow -Werror -Wstrict-prototypes -Wmissing-prototypes \
        -c tests/cuda/$f.c -o "$tmp/$f.o" || { echo "FAIL: tests/cuda/$f.c does not compile"; exit 1; }
done
data=$BUILD/tests/cuda/data
mkdir -p "$data"

run() { # run BIN DIR ACCELERATOR PRECISION
    mkdir -p "$2"
    (cd "$2" && "$1" fit --accelerator "$3" --precision "$4" --max_epochs 1 --limit_train_batches "$STEPS" \
        --limit_val_batches 2 --batch_size 32 --log_every_n_steps 1 --seed 7 --num_workers 0 \
        --enable_progress_bar false --enable_checkpointing false --data_dir "$data" >out 2>err)
}

for spec in specs/lenet.lmod specs/mlp.lmod tests/gpu/bnnet.lmod tests/gpu/actnet.lmod tests/cuda/structnet.lmod \
    tests/cuda/lossnet.lmod; do
    name=$(basename "$spec" .lmod)
    d=$tmp/$name
    "$LGEN" "$spec" -o "$d" --target all >/dev/null 2>&1 || { bad "lgen $spec --target all"; continue; }
    $CC $flags $san -w -o "$d/$name" "$d/$name.c" "$d/${name}_cuda.c" "$tmp/fake_device.o" "$tmp/fake_layers.o" \
        $libs 2>"$d/link.err" || { bad "$name: link with the fake device: $(grep -m3 error "$d/link.err")"; continue; }
    run "$d/$name" "$d/cpu" cpu 32-true || { bad "$name --accelerator cpu: $(tail -2 "$d/cpu/err")"; continue; }
    cpu=$d/cpu/lightning_logs/version_0/metrics.csv
    for prec in 32-true 16-mixed bf16-mixed; do
        tol=1e-5
        [ $prec = 32-true ] || tol=$MIXED_TOL
        run "$d/$name" "$d/$prec" gpu $prec || { bad "$name --accelerator gpu --precision $prec: $(tail -2 "$d/$prec/err")"; continue; }
        grep -q "GPU available: True (cuda), used: True" "$d/$prec/out" ||
            bad "$name $prec: the fake GPU was not used: $(head -2 "$d/$prec/out")"
        gpu=$d/$prec/lightning_logs/version_0/metrics.csv
        report=$(paste -d '|' "$cpu" "$gpu" | awk -F'|' -v tol=$tol '
            NR == 1 { n = split($1, h, ","); if ($1 != $2) { print "columns differ"; exit 1 } next }
            {
                split($1, a, ","); split($2, b, ",")
                for (i = 1; i <= n; i++) {
                    if (h[i] !~ /loss|acc|rec|top/ || a[i] == "" && b[i] == "") continue
                    if (a[i] == "" || b[i] == "") { print "row " NR " " h[i] ": cpu \"" a[i] "\" gpu \"" b[i] "\""; bad++; continue }
                    d = a[i] - b[i]; if (d < 0) d = -d
                    lim = tol * (a[i] < 0 ? -a[i] : a[i]) + (h[i] ~ /acc|top/ ? 0.05 : 1e-6)
                    if (tol < 1e-3 && h[i] ~ /acc|top/) lim = 1e-6
                    if (d > lim) { print "row " NR " " h[i] ": cpu " a[i] " gpu " b[i]; bad++ }
                    if (d > worst) worst = d
                    seen++
                }
            }
            END { printf "%d values, largest difference %.3g", seen, worst; if (bad || !seen) exit 1 }')
        if [ $? -eq 0 ]; then
            echo "ok: $name fake GPU ($prec) vs CPU: $report"
        else
            bad "$name fake GPU ($prec) vs CPU: $(echo "$report" | head -4)"
        fi
    done
done
# predict on the fake GPU from a CPU checkpoint: the same probabilities
# (32-true to 1e-5, 16-mixed to 0.01) and the same number of rows
d=$tmp/structnet
if [ -x "$d/structnet" ]; then
    (cd "$d" && ./structnet fit --accelerator cpu --max_epochs 1 --limit_train_batches 2 --limit_val_batches 1 \
        --batch_size 32 --num_workers 0 --enable_progress_bar false --default_root_dir ckpt --data_dir "$data" \
        >/dev/null 2>&1)
    ckpt=$d/ckpt/lightning_logs/version_0/checkpoints/last.ckpt
    [ -f "$ckpt" ] || bad "structnet: no checkpoint to predict from"
    for run in cpu:32-true gpu:32-true gpu:16-mixed; do
        acc=${run%%:*} prec=${run#*:}
        mkdir -p "$d/pred-$acc-$prec"
        (cd "$d/pred-$acc-$prec" && "$d/structnet" predict --accelerator $acc --precision $prec --ckpt_path "$ckpt" \
            --limit_predict_batches 2 --batch_size 32 --num_workers 0 --enable_progress_bar false \
            --data_dir "$data" >out 2>err) || bad "structnet predict --accelerator $acc --precision $prec: $(tail -2 "$d/pred-$acc-$prec/err")"
    done
    ref=$d/pred-cpu-32-true/lightning_logs/version_0/predictions.csv
    for prec in 32-true 16-mixed; do
        tol=1e-5
        [ $prec = 32-true ] || tol=0.01
        got=$d/pred-gpu-$prec/lightning_logs/version_0/predictions.csv
        [ -f "$ref" ] && [ -f "$got" ] && [ "$(wc -l <"$ref")" -eq "$(wc -l <"$got")" ] && [ "$(wc -l <"$ref")" -gt 60 ] ||
            { bad "structnet predict $prec: no predictions or another count"; continue; }
        worst=$(paste -d, "$ref" "$got" | awk -F, 'NR > 1 { n = NF / 2; for (i = 3; i < n; i++) { d = $i - $(i + n); if (d < 0) d = -d; if (d > w) w = d } } END { printf "%.3g", w }')
        awk -v w="$worst" -v t=$tol 'BEGIN { exit !(w <= t) }' ||
            bad "structnet predict on the fake GPU ($prec): probabilities differ by $worst"
        echo "ok: structnet predict, fake GPU ($prec) vs CPU: $(($(wc -l <"$got") - 1)) rows, largest difference $worst"
    done
fi
[ $fail -eq 0 ] && echo "ok: the generated CUDA steps of six specs train on the fake device as on the CPU"
exit $fail
