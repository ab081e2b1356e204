#!/bin/sh
# lenet.sh — the end-to-end path on real Fashion-MNIST, in well under a
# minute: lgen compiles specs/lenet.lmod (twice: the same bytes), the
# generated Makefile builds it with -Werror, the trainer trains a few hundred
# steps and `test` must reach a (low) accuracy bar; then resume is checked on
# the real trainer: from an epoch-end checkpoint and from a mid-epoch one
# (every_n_train_steps), the final weights must be bit-identical to an
# uninterrupted run's.
#
# Environment: LGEN, BUILD, CC (set by `make check`); SPEC to try another spec;
# TRAINER to skip lgen and use an already generated trainer directory.
set -eu
BUILD=${BUILD:-build}
LGEN=${LGEN:-$BUILD/lgen}
SPEC=${SPEC:-specs/lenet.lmod}
name=$(basename "$SPEC" .lmod)
# one directory per run: several `make check` may share this tree
out=$BUILD/tests/e2e/$name.$$
rm -rf "$out"
mkdir -p "$out"
fail() { echo "e2e $name: FAIL: $* (files in $out)"; exit 1; }
. tests/e2e/san_flags.sh

if [ -n "${TRAINER:-}" ]; then
    gen=$TRAINER
else
    gen=$out/gen
    "$LGEN" "$SPEC" -o "$gen" || fail "lgen $SPEC failed"
    "$LGEN" "$SPEC" -o "$out/gen2" || fail "second lgen run failed"
    cmp "$gen/$name.c" "$out/gen2/$name.c" || fail "two runs of lgen gave different $name.c"
    cmp "$gen/Makefile" "$out/gen2/Makefile" || fail "two runs of lgen gave different Makefiles"
    echo "e2e $name: lgen output byte-identical across runs"
    make -s -C "$gen" CC="${CC:-cc}" CFLAGS="-O2 -Werror $SAN_FLAGS" LDFLAGS="$SAN_FLAGS" >"$out/make.log" 2>&1 ||
        { cat "$out/make.log"; fail "the generated trainer does not build warning-free"; }
fi
exe=$gen/$name
[ -x "$exe" ] || fail "no trainer at $exe"
data="--data_dir $BUILD/tests/e2e/data --enable_progress_bar false --num_workers 2"

# ---- train briefly, then test ------------------------------------------------
root=$out/train
"$exe" fit $data --default_root_dir "$root" --max_epochs 1 --limit_train_batches 300 \
    --limit_val_batches 20 >"$out/fit.log" 2>&1 || { tail -20 "$out/fit.log"; fail "fit failed"; }
[ -f "$root/lightning_logs/version_0/metrics.csv" ] || fail "no metrics.csv"
[ -f "$root/lightning_logs/version_0/checkpoints/last.ckpt" ] || fail "no last.ckpt"
"$exe" test $data --default_root_dir "$root" --ckpt_path "$root/lightning_logs/version_0/checkpoints/last.ckpt" \
    >"$out/test.log" 2>&1 || { tail -20 "$out/test.log"; fail "test failed"; }
acc=$(awk '/test_acc/ { print $2 }' "$out/test.log" | tail -1)
[ -n "$acc" ] || { cat "$out/test.log"; fail "test printed no test_acc"; }
echo "e2e $name: test_acc $acc after 300 steps"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.70) }' || fail "test accuracy $acc below 0.70"

# ---- LearningRateMonitor(logging_interval: epoch): the rate once per epoch --------
"$exe" fit $data --default_root_dir "$out/lrm" --max_epochs 1 --limit_train_batches 20 --limit_val_batches 2 \
    --log_every_n_steps 10 --lr_monitor.logging_interval epoch >"$out/lrm.log" 2>&1 ||
    { tail "$out/lrm.log"; fail "fit with --lr_monitor.logging_interval epoch failed"; }
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i ~ /^lr-/) c = i; if ($i == "train_loss") l = i }; next }
    $c != "" { lr++ } $l != "" && $c != "" { both++ } $l != "" { steps++ }
    END { exit !(c && l && lr == 1 && both == 0 && steps == 2) }' "$out/lrm/lightning_logs/version_0/metrics.csv" ||
    { cat "$out/lrm/lightning_logs/version_0/metrics.csv"; fail "lr column not once per epoch"; }
echo "e2e $name: learning rate logged once per epoch with --lr_monitor.logging_interval epoch"

# ---- bit-identical resume ------------------------------------------------------
common="$data --limit_train_batches 30 --limit_val_batches 4 --num_sanity_val_steps 0"
ckpt() { echo "$1/lightning_logs/version_0/checkpoints/last.ckpt"; }
# uninterrupted: 2 epochs of 30 steps
"$exe" fit $common --default_root_dir "$out/full" --max_epochs 2 >"$out/full.log" 2>&1 ||
    { tail "$out/full.log"; fail "uninterrupted fit failed"; }
# epoch end: stop after the first epoch (30 steps; max_epochs stays 2 so that
# schedules reading it are the same), then resume for the second
"$exe" fit $common --default_root_dir "$out/ep" --max_epochs 2 --max_steps 30 >"$out/ep1.log" 2>&1 ||
    fail "fit to the end of epoch 0 failed"
"$exe" fit $common --default_root_dir "$out/ep2" --max_epochs 2 --ckpt_path "$(ckpt "$out/ep")" \
    >"$out/ep2.log" 2>&1 || { tail "$out/ep2.log"; fail "resume from the epoch-end checkpoint failed"; }
python3 tests/e2e/ckpt_cmp.py "$(ckpt "$out/full")" "$(ckpt "$out/ep2")" || fail "epoch-end resume is not bit-identical"
# mid-epoch: stop after 45 steps (15 into epoch 1), resume from it
"$exe" fit $common --default_root_dir "$out/mid" --max_epochs 2 --max_steps 45 \
    --checkpoint.every_n_train_steps 15 >"$out/mid1.log" 2>&1 || fail "fit to step 45 failed"
"$exe" fit $common --default_root_dir "$out/mid2" --max_epochs 2 --ckpt_path "$(ckpt "$out/mid")" \
    >"$out/mid2.log" 2>&1 || { tail "$out/mid2.log"; fail "resume from the mid-epoch checkpoint failed"; }
python3 tests/e2e/ckpt_cmp.py "$(ckpt "$out/full")" "$(ckpt "$out/mid2")" || fail "mid-epoch resume is not bit-identical"
rm -rf "$out"
echo "e2e $name: PASS"
