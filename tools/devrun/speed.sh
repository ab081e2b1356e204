#!/bin/sh
# tools/devrun/speed.sh — the generated lenet and mlp trainers' speed on the
# device machine (run by run.sh with ONLY=speed; BUILD, MIRROR set there):
# one epoch of Fashion-MNIST (844 training batches of 64, no validation),
# --accelerator gpu in 32-true and 16-mixed, and --accelerator cpu on its
# cores; wall time and samples/s.
set -u
d=$(mktemp -d)
for name in lenet mlp; do
    bin=$BUILD/tests/gpu/specs/$name/$name
    for cfg in "gpu 32-true" "gpu 16-mixed" "cpu 32-true"; do
        set -- $cfg
        mkdir -p "$d/$name-$1-$2"
        t0=$(date +%s.%N)
        (cd "$d/$name-$1-$2" && "$bin" fit --accelerator $1 --precision $2 --max_epochs 1 --limit_val_batches 0 \
            --num_sanity_val_steps 0 --seed 7 --num_workers 2 --enable_progress_bar false \
            --enable_checkpointing false --mirror "$MIRROR" --data_dir "$d/data" >out 2>err) ||
            echo "FAIL $name $cfg: $(tail -2 "$d/$name-$1-$2/err")"
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" -v n="$name" -v c="$cfg" \
            'BEGIN { printf "%-6s %-14s %6.2f s  %7.0f samples/s (54000 samples, start-up included)\n", n, c, b - a, 54000 / (b - a) }'
        grep -m1 "GPU available" "$d/$name-$1-$2/out"
    done
done
