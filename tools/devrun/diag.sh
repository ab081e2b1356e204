#!/bin/sh
# tools/devrun/diag.sh — metrics of the generated trainers, CPU and GPU runs from one seed, for reading back
# (run by run.sh with ONLY=diag; BUILD, MIRROR set there). Writes $OUT/diag.tar.gz.
set -u
d=$(mktemp -d)
for name in lenet mlp bnnet actnet structnet lossnet; do
    bin=$BUILD/tests/gpu/specs/$name/$name
    for cfg in "cpu 32-true x" "gpu 32-true x" "gpu 32-true 0" "gpu 16-mixed x" "gpu 16-mixed x2" "gpu bf16-mixed x" \
        "gpu 16-mixed 0"; do
        set -- $cfg
        dir=$d/$name-$1-$2-$3
        mkdir -p "$dir"
        ( cd "$dir" && if [ "$3" = 0 ]; then export NVIDIA_TF32_OVERRIDE=0; fi;
          "$bin" fit --accelerator $1 --precision $2 --max_epochs 1 --limit_train_batches 40 \
            --limit_val_batches 10 --log_every_n_steps 1 --seed 7 --num_workers 1 \
            --enable_progress_bar false --enable_checkpointing false \
            --mirror "$MIRROR" --data_dir "$d/data" >out 2>err ) || echo "FAIL $name $cfg: $(tail -2 "$dir/err")"
        cp "$dir/lightning_logs/version_0/metrics.csv" "$d/$name-$1-$2-$3.csv" 2>/dev/null
        rm -rf "$dir/lightning_logs"
    done
    echo "diag: $name done"
done
NVIDIA_TF32_OVERRIDE=0 sh tests/gpu/resident.sh > "$d/resident_notf32.txt" 2>&1; echo "resident.sh with NVIDIA_TF32_OVERRIDE=0: exit $?"
cat "$d/resident_notf32.txt"
NVIDIA_TF32_OVERRIDE=0 PRECISIONS=32-true sh tests/gpu/compare_trainers.sh > "$d/compare_notf32.txt" 2>&1; echo "compare 32-true with NVIDIA_TF32_OVERRIDE=0: exit $?"
cat "$d/compare_notf32.txt"
rm -rf "$d/data"
tar -czf "$OUT/diag.tar.gz" -C "$d" --exclude='*/err' --exclude='*/out' .
ls -la "$OUT"
