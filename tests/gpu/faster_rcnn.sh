#!/bin/sh
# tests/gpu/faster_rcnn.sh — the Faster R-CNN CUDA trainer against the CPU path.
#
# tests/e2e/faster_rcnn_shapes.lmod (specs/faster_rcnn.lmod's networks,
# losses and steps on a small vocgen data set; 32 FPN channels, 64 RoIs per
# image) is generated with `--target all` and built with `make CUDA=1`; the
# same trainer then fits STEPS batches and validates twice from the same
# seed, `--accelerator cpu` and `--accelerator gpu` in 32-true, 16-mixed and
# bf16-mixed (NVIDIA_TF32_OVERRIDE=0 keeps cuDNN and cuBLAS in full float32;
# under mixed precision the detection ops run in float32 on converted
# inputs). The RPN's two losses sample anchors from the ground truth
# alone: the first step's must agree within TOL (relative; the same
# weights; MIXED_TOL under mixed precision), later ones within LATE_TOL. The box head's sample depends on
# the proposals, and one proposal that moves across the top-n cut changes
# which RoIs are drawn: loss_classifier and train_loss within LATE_TOL,
# loss_box_reg within BOX_TOL (relative, plus 0.02); val_map within MAP_TOL
# (absolute). The GPU run must say it used the GPU. `make check-gpu` runs
# it; without a device: SKIP, exit 0.
#
# Environment: BUILD (build), LGEN ($BUILD/lgen), VOCGEN ($BUILD/vocgen),
# STEPS (6), TOL (0.02), MIXED_TOL (0.05), LATE_TOL (0.15), BOX_TOL (0.5),
# MAP_TOL (0.15), PREBUILT=1 (use $BUILD/tests/gpu/specs/faster_rcnn_shapes/
# faster_rcnn_shapes as built elsewhere; it holds the sha256 of the data set
# that vocgen made there, so VOCGEN must be the same program).
set -u
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
LGEN=${LGEN:-$BUILD/lgen}
VOCGEN=${VOCGEN:-$BUILD/vocgen}
STEPS=${STEPS:-6}
TOL=${TOL:-0.02}
MIXED_TOL=${MIXED_TOL:-0.05}
LATE_TOL=${LATE_TOL:-0.15}
BOX_TOL=${BOX_TOL:-0.5}
MAP_TOL=${MAP_TOL:-0.15}
if ! [ -e /dev/nvidiactl ]; then
    echo "SKIP: no CUDA device (no /dev/nvidiactl)"
    exit 0
fi
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$VOCGEN" ] || { echo "FAIL: no $VOCGEN (make $VOCGEN)"; exit 1; }
mkdir -p "$tmp/data/shapes"
"$VOCGEN" --seed 2 --images 48 --size 128 --objects 2 --out "$tmp/data/shapes/shapes.tar" >"$tmp/vocgen.txt" ||
    { echo "FAIL: vocgen"; exit 1; }
sha=$(cut -d' ' -f1 "$tmp/vocgen.txt")
sed "s/sha256 \"[0-9a-f]*\"/sha256 \"$sha\"/" tests/e2e/faster_rcnn_shapes.lmod >"$tmp/faster_rcnn_shapes.lmod"
out=$BUILD/tests/gpu/specs/faster_rcnn_shapes
if [ "${PREBUILT:-0}" != 1 ]; then
    "$LGEN" -I specs -D fpn_channels=32 -D rois=64 "$tmp/faster_rcnn_shapes.lmod" -o "$out" --target all ||
        { echo "FAIL: lgen faster_rcnn_shapes --target all"; exit 1; }
    make -s -C "$out" CUDA=1 >"$tmp/make.out" 2>&1 || { echo "FAIL: make CUDA=1: $(tail -5 "$tmp/make.out")"; exit 1; }
fi
bin=$out/faster_rcnn_shapes
[ -x "$bin" ] || { echo "FAIL: no $bin (PREBUILT=1: build it where lgen and nvcc are)"; exit 1; }

run() { # run DIR ACCELERATOR PRECISION
    mkdir -p "$1"
    (cd "$1" && NVIDIA_TF32_OVERRIDE=0 "$bin" fit --accelerator "$2" --precision "$3" --max_epochs 1 --limit_train_batches "$STEPS" --limit_val_batches 3 \
        --log_every_n_steps 1 --seed 7 --num_workers 1 --enable_progress_bar false --enable_checkpointing false \
        --num_sanity_val_steps 0 --data_dir "$tmp/data" >out 2>err)
    rc=$?
    [ $rc -eq 0 ] || bad "faster_rcnn_shapes --accelerator $2 --precision $3 exited $rc: $(tail -3 "$1/err")"
    return $rc
}
run "$tmp/cpu" cpu 32-true || exit 1
cpu=$tmp/cpu/lightning_logs/version_0/metrics.csv
for prec in 32-true 16-mixed bf16-mixed; do
    tol=$TOL
    [ $prec = 32-true ] || tol=$MIXED_TOL
    run "$tmp/$prec" gpu $prec || continue
    grep -q "GPU available: True (cuda), used: True" "$tmp/$prec/out" ||
        bad "--accelerator gpu did not say it used the GPU: $(head -3 "$tmp/$prec/out")"
    gpu=$tmp/$prec/lightning_logs/version_0/metrics.csv
    [ -f "$cpu" ] && [ -f "$gpu" ] || { bad "$prec: no metrics.csv"; continue; }
    report=$(paste -d '|' "$cpu" "$gpu" | awk -F'|' -v tol=$tol -v late=$LATE_TOL -v box=$BOX_TOL -v map_tol=$MAP_TOL '
        NR == 1 { n = split($1, h, ","); next }
        {
            split($1, a, ","); split($2, b, ",")
            for (i = 1; i <= n; i++) {
                if (h[i] !~ /loss|^val_map$/ || a[i] == "" && b[i] == "") continue
                if (a[i] == "" || b[i] == "") { print "row " NR " " h[i] ": cpu \"" a[i] "\" gpu \"" b[i] "\""; bad++; continue }
                d = a[i] - b[i]; if (d < 0) d = -d
                m = a[i] < 0 ? -a[i] : a[i]
                if (h[i] == "val_map") lim = map_tol
                else if (h[i] == "loss_box_reg") lim = box * m + 0.02
                else if (h[i] ~ /^loss_(objectness|rpn_box_reg)$/) lim = (seen[h[i]] ? late : tol) * m + 1e-4
                else lim = late * m + 1e-4
                if (d > lim) { print "row " NR " " h[i] ": cpu " a[i] " gpu " b[i]; bad++ }
                if (d > worst[h[i]]) worst[h[i]] = d
                seen[h[i]]++
            }
        }
        END {
            for (k in seen) printf "%s: %d values, largest difference %.3g; ", k, seen[k], worst[k]
            if (!seen["train_loss"]) { print "no train_loss logged"; exit 1 }
            if (bad) { printf "\n%d outside the tolerance\n", bad; exit 1 }
        }')
    if [ $? -eq 0 ]; then
        echo "ok: faster_rcnn_shapes GPU ($prec) vs CPU: $report"
    else
        bad "faster_rcnn_shapes GPU ($prec) vs CPU: $(echo "$report" | head -6)"
    fi
done
exit $fail
