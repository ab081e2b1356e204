#!/bin/sh
# tests/gpu/compare_trainers.sh — generated CUDA trainers against the CPU path.
#
# For specs/lenet.lmod, specs/mlp.lmod and tests/gpu/bnnet.lmod (batch norm,
# a residual add, pooling, dropout; all on Fashion-MNIST): `lgen --target all`,
# `make CUDA=1`, then the same trainer fits one short epoch twice from the
# same seed, `--accelerator cpu` and `--accelerator gpu`; every step's
# train_loss and the epoch's val_loss and val_acc must agree (relative 2% on
# the losses, cuDNN may use TF32 for fp32 convolutions as PyTorch does;
# 0.02 on the accuracy), and the GPU run must say it used the GPU.
# `make check-gpu` runs it. Without a device it prints SKIP and exits 0.
#
# Environment: BUILD (build), LGEN ($BUILD/lgen), STEPS (40 training
# batches), MIRROR (where the Fashion-MNIST files are; default the spec's),
# PREBUILT=1 (use $BUILD/tests/gpu/specs/NAME/NAME as built elsewhere).
set -u
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
LGEN=${LGEN:-$BUILD/lgen}
STEPS=${STEPS:-40}
if ! [ -e /dev/nvidiactl ]; then
    echo "SKIP: no CUDA device (no /dev/nvidiactl)"
    exit 0
fi
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for spec in specs/lenet.lmod specs/mlp.lmod tests/gpu/bnnet.lmod; do
    name=$(basename "$spec" .lmod)
    out=$BUILD/tests/gpu/specs/$name
    if [ "${PREBUILT:-0}" != 1 ]; then
        "$LGEN" "$spec" -o "$out" --target all || { bad "lgen $name --target all"; continue; }
        make -s -C "$out" CUDA=1 >"$tmp/make.out" 2>&1 || { bad "make CUDA=1 $name: $(tail -5 "$tmp/make.out")"; continue; }
    fi
    bin=$out/$name
    for acc in cpu gpu; do
        mkdir -p "$tmp/$name-$acc"
        (cd "$tmp/$name-$acc" && "$bin" fit --accelerator "$acc" --max_epochs 1 --limit_train_batches "$STEPS" \
            --limit_val_batches 10 --log_every_n_steps 1 --seed 7 --num_workers 1 \
            --enable_progress_bar false --enable_checkpointing false \
            ${MIRROR:+--mirror "$MIRROR"} --data_dir "$tmp/data" >out 2>err)
        rc=$?
        [ $rc -eq 0 ] || bad "$name --accelerator $acc exited $rc: $(tail -3 "$tmp/$name-$acc/err")"
    done
    grep -q "GPU available: True (cuda), used: True" "$tmp/$name-gpu/out" ||
        bad "$name --accelerator gpu did not say it used the GPU: $(head -3 "$tmp/$name-gpu/out")"
    cpu=$tmp/$name-cpu/lightning_logs/version_0/metrics.csv
    gpu=$tmp/$name-gpu/lightning_logs/version_0/metrics.csv
    [ -f "$cpu" ] && [ -f "$gpu" ] || { bad "$name: no metrics.csv"; continue; }
    # same rows, same columns; compare the numbers column by column
    report=$(paste -d '|' "$cpu" "$gpu" | awk -F'|' -v tol=0.02 -v acc_tol=0.02 '
        NR == 1 { n = split($1, h, ","); next }
        {
            split($1, a, ","); split($2, b, ",")
            for (i = 1; i <= n; i++) {
                if (h[i] !~ /loss|acc/ || a[i] == "" && b[i] == "") continue
                if (a[i] == "" || b[i] == "") { print "row " NR " " h[i] ": cpu \"" a[i] "\" gpu \"" b[i] "\""; bad++; continue }
                d = a[i] - b[i]; if (d < 0) d = -d
                lim = h[i] ~ /acc/ ? acc_tol : tol * (a[i] < 0 ? -a[i] : a[i]) + 1e-4
                if (d > lim) { print "row " NR " " h[i] ": cpu " a[i] " gpu " b[i]; bad++ }
                if (d > worst[h[i]]) worst[h[i]] = d
                seen[h[i]]++
            }
        }
        END {
            for (k in seen) printf "%s: %d values, largest difference %.3g; ", k, seen[k], worst[k]
            if (bad) { printf "\n%d outside the tolerance\n", bad; exit 1 }
        }')
    if [ $? -eq 0 ]; then
        echo "ok: $name GPU vs CPU: $report"
    else
        bad "$name GPU vs CPU: $report"
    fi
done
exit $fail
