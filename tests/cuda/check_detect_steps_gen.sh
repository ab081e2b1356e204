#!/bin/sh
# tests/cuda/check_detect_steps_gen.sh — the Faster R-CNN trainer's generated
# CUDA steps, run on any machine.
#
# tests/e2e/faster_rcnn_shapes.lmod (specs/faster_rcnn.lmod's networks,
# losses and steps on a vocgen set; 16 FPN channels, 16 RoIs) is generated
# with `--target all`; NAME.c and NAME_cuda.c are linked with a device in
# host memory: tests/cuda/fake_device.c and fake_layers.c (context,
# transfers, optimizer, dense layers), fake_detect.c (anchors, the two
# losses and RoIAlign as runtime/detect's CPU functions) and boxes_host.c
# (proposals, roi_sample, rois_from_proposals and detections: boxes.cu's
# launch sequences over their bodies). The trainer fits STEPS batches and
# validates from one seed with --accelerator cpu and --accelerator gpu: the
# GPU run must say it used the GPU, every logged loss must equal the CPU's
# (relative 1e-5) and so must val_map and the per-class APs (the detections
# come back to NAME.c's evaluator); fitting again on the GPU in 16-mixed and
# bf16-mixed, every logged training loss must agree with the CPU's within
# MIXED_TOL (relative; f16/bf16 activations, the detection ops in float32
# between conversions); then `test` and `predict` from the CPU
# run's checkpoint give the same test_map and the same detections JSON on
# both. Needs no CUDA toolkit; build/vocgen (tests/detect.mk).
set -u
BUILD=${BUILD:-build}
LGEN=${LGEN:-$BUILD/lgen}
CC=${CC:-cc}
STEPS=${STEPS:-3}
MIXED_TOL=${MIXED_TOL:-0.03}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
VOCGEN=${VOCGEN:-$BUILD/vocgen}
[ -x "$VOCGEN" ] || { echo "FAIL: no $VOCGEN (make $VOCGEN)"; exit 1; }
tmp=$(mktemp -d); [ -n "${KEEP:-}" ] && echo "files in $tmp"
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
flags="-std=c11 -D_GNU_SOURCE -O1 -Iruntime/include"
libs="$BUILD/liblgen.a -ldnnl -lgomp -lopenblas -ljansson -lcurl -larchive -lxml2 -lpng -ljpeg -lpthread -lmvec -lm -lcrypto -lz"
san=""
case "$BUILD" in *san*) san="-fsanitize=address,undefined -fno-omit-frame-pointer" ;; esac
for f in fake_device fake_layers fake_detect boxes_host; do
    $CC $flags $san -Wall -Wextra -Wshadow -Werror -Wstrict-prototypes -Wmissing-prototypes \
        -c tests/cuda/$f.c -o "$tmp/$f.o" || { echo "FAIL: tests/cuda/$f.c does not compile"; exit 1; }
done

mkdir -p "$tmp/data/shapes"
"$VOCGEN" --seed 3 --images 24 --size 128 --objects 2 --out "$tmp/data/shapes/shapes.tar" >"$tmp/vocgen.txt" ||
    { echo "FAIL: vocgen"; exit 1; }
sha=$(cut -d' ' -f1 "$tmp/vocgen.txt")
# predict keeps every detection above 0.01 (the spec's 0.3 keeps none after a few steps)
sed -e "s/sha256 \"[0-9a-f]*\"/sha256 \"$sha\"/" -e "s/score_thresh: 0.3,/score_thresh: 0.01,/" \
    tests/e2e/faster_rcnn_shapes.lmod >"$tmp/faster_rcnn_shapes.lmod"
grep -q "score_thresh: 0.01," "$tmp/faster_rcnn_shapes.lmod" || { echo "FAIL: predict's score_thresh not found"; exit 1; }
d=$tmp/gen
name=faster_rcnn_shapes
"$LGEN" -I specs -D fpn_channels=16 -D rois=16 "$tmp/$name.lmod" -o "$d" --target all >/dev/null 2>"$tmp/lgen.err" ||
    { echo "FAIL: lgen $name --target all: $(head -3 "$tmp/lgen.err")"; exit 1; }
$CC $flags $san -w -o "$d/$name" "$d/$name.c" "$d/${name}_cuda.c" "$tmp/fake_device.o" "$tmp/fake_layers.o" \
    "$tmp/fake_detect.o" "$tmp/boxes_host.o" $libs 2>"$d/link.err" ||
    { echo "FAIL: $name: link with the fake device: $(grep -m3 error "$d/link.err")"; exit 1; }

common="--num_workers 0 --enable_progress_bar false --data_dir $tmp/data"
for acc in cpu gpu; do
    mkdir -p "$d/$acc"
    (cd "$d/$acc" && "$d/$name" fit --accelerator $acc --max_epochs 1 --limit_train_batches "$STEPS" \
        --limit_val_batches 2 --num_sanity_val_steps 0 --log_every_n_steps 1 --seed 7 $common >out 2>err) ||
        { bad "$name fit --accelerator $acc: $(tail -3 "$d/$acc/err")"; continue; }
done
grep -q "GPU available: True (cuda), used: True" "$d/gpu/out" ||
    bad "the fake GPU was not used: $(head -2 "$d/gpu/out")"
cpu=$d/cpu/lightning_logs/version_0/metrics.csv
gpu=$d/gpu/lightning_logs/version_0/metrics.csv
if [ -f "$cpu" ] && [ -f "$gpu" ]; then
    report=$(paste -d '|' "$cpu" "$gpu" | awk -F'|' '
        NR == 1 { n = split($1, h, ","); if ($1 != $2) { print "columns differ"; exit 1 } next }
        {
            split($1, a, ","); split($2, b, ",")
            for (i = 1; i <= n; i++) {
                if (h[i] !~ /loss|^val_map$|^val_ap_/ || a[i] == "" && b[i] == "") continue
                if (a[i] == "" || b[i] == "") { print "row " NR " " h[i] ": cpu \"" a[i] "\" gpu \"" b[i] "\""; bad++; continue }
                d = a[i] - b[i]; if (d < 0) d = -d
                if (d > 1e-5 * (a[i] < 0 ? -a[i] : a[i]) + 1e-6) { print "row " NR " " h[i] ": cpu " a[i] " gpu " b[i]; bad++ }
                if (d > worst) worst = d
                seen[h[i]]++
            }
        }
        END {
            printf "train_loss %d, val_map %d values, largest difference %.3g", seen["train_loss"], seen["val_map"], worst
            if (bad || seen["train_loss"] < '"$STEPS"' || !seen["val_map"]) exit 1
        }')
    if [ $? -eq 0 ]; then
        echo "ok: $name fit, fake GPU vs CPU: $report"
    else
        bad "$name fit, fake GPU vs CPU: $(echo "$report" | head -4)"
    fi
else
    bad "$name: no metrics.csv"
fi

# mixed precision: the detection ops compute in float32 between conversions
# of their inputs and input gradients (f16/bf16 activations elsewhere); every
# logged training loss within MIXED_TOL of the CPU's over the STEPS steps
# (validation runs too: proposals and detections on converted inputs)
for prec in 16-mixed bf16-mixed; do
    mkdir -p "$d/$prec"
    (cd "$d/$prec" && "$d/$name" fit --accelerator gpu --precision $prec --max_epochs 1 --limit_train_batches "$STEPS" \
        --limit_val_batches 2 --num_sanity_val_steps 0 --log_every_n_steps 1 --seed 7 $common >out 2>err) ||
        { bad "$name fit --precision $prec: $(tail -3 "$d/$prec/err")"; continue; }
    grep -q "GPU available: True (cuda), used: True" "$d/$prec/out" ||
        bad "$prec: the fake GPU was not used: $(head -2 "$d/$prec/out")"
    mp=$d/$prec/lightning_logs/version_0/metrics.csv
    [ -f "$mp" ] && [ -f "$cpu" ] || { bad "$name $prec: no metrics.csv"; continue; }
    report=$(paste -d '|' "$cpu" "$mp" | awk -F'|' -v tol="$MIXED_TOL" '
        NR == 1 { n = split($1, h, ","); m = split($2, g, ","); for (j = 1; j <= m; j++) col[g[j]] = j; next }
        {
            split($1, a, ","); split($2, b, ",")
            if (("val_map" in col) && b[col["val_map"]] != "") vm++
            for (i = 1; i <= n; i++) {
                if (h[i] !~ /loss/ || h[i] ~ /^val_/ || a[i] == "") continue
                if (!(h[i] in col) || b[col[h[i]]] == "") { print "row " NR " " h[i] ": cpu " a[i] ", none"; bad++; continue }
                x = b[col[h[i]]]; d = a[i] - x; if (d < 0) d = -d
                r = d / (a[i] < 0 ? -a[i] : a[i] + 1e-6)
                if (r > tol) { print "row " NR " " h[i] ": cpu " a[i] " gpu " x; bad++ }
                if (r > worst) worst = r
                if (h[i] == "train_loss") seen++
            }
        }
        END {
            printf "train_loss %d values, largest relative difference %.3g, val_map %d", seen, worst, vm
            if (bad || seen < '"$STEPS"' || !vm) exit 1
        }')
    if [ $? -eq 0 ]; then
        echo "ok: $name fit, fake GPU ($prec) vs CPU: $report"
    else
        bad "$name fit, fake GPU ($prec) vs CPU (tolerance $MIXED_TOL): $(echo "$report" | head -4)"
    fi
done

# test and predict from the CPU run's checkpoint, on both
ckpt=$d/cpu/lightning_logs/version_0/checkpoints/last.ckpt
[ -f "$ckpt" ] || ckpt=$(ls "$d"/cpu/lightning_logs/version_0/checkpoints/*.ckpt 2>/dev/null | head -1)
if [ -n "$ckpt" ] && [ -f "$ckpt" ]; then
    mkdir -p "$d/photos"
    for f in $(find "$tmp/data" -name '*.jpg' | sort | head -2); do cp "$f" "$d/photos/"; done
    for acc in cpu gpu; do
        (cd "$d/$acc" && "$d/$name" test --accelerator $acc --ckpt_path "$ckpt" --limit_test_batches 2 \
            --default_root_dir t $common >test.out 2>test.err) || bad "$name test --accelerator $acc: $(tail -2 "$d/$acc/test.err")"
        (cd "$d/$acc" && "$d/$name" predict --accelerator $acc --ckpt_path "$ckpt" --predict_input "$d/photos" \
            --default_root_dir p $common >pred.out 2>pred.err) ||
            bad "$name predict --accelerator $acc: $(tail -2 "$d/$acc/pred.err")"
    done
    tc=$(awk '$1 == "test_map" { print $2 }' "$d/cpu/test.out" | tail -1)
    tg=$(awk '$1 == "test_map" { print $2 }' "$d/gpu/test.out" | tail -1)
    [ -n "$tc" ] && [ "$tc" = "$tg" ] || bad "$name test_map: cpu '$tc', fake GPU '$tg'"
    jc=$d/cpu/p/lightning_logs/version_0/predictions.json
    jg=$d/gpu/p/lightning_logs/version_0/predictions.json
    if [ -f "$jc" ] && [ -f "$jg" ] && cmp -s "$jc" "$jg" && grep -q '"box"' "$jc"; then
        echo "ok: $name test (test_map $tc) and predict ($(grep -o '"box"' "$jc" | wc -l) detections in 2 images), fake GPU as the CPU"
    else
        bad "$name predict: the detections JSON of the fake GPU differs from the CPU's (or is missing, or empty)"
    fi
else
    bad "$name: no checkpoint from the CPU run"
fi
[ $fail -eq 0 ] && echo "ok: faster_rcnn's generated CUDA steps train, validate, test and predict on the fake device as on the CPU"
exit $fail
