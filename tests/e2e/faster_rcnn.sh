#!/bin/sh
# faster_rcnn.sh — the detector end to end, as a user runs it on VOC:
#  1. specs/faster_rcnn.lmod (VOC, ResNet-50-FPN, torchvision's defaults)
#     generates a trainer that builds warning-free (it is not run: VOC cannot
#     be fetched here);
#  2. tools/vocgen makes a small VOC-layout tar; tests/e2e/faster_rcnn_shapes.lmod
#     (the same networks, losses and steps on the vocgen classes, its sha256
#     replaced by the one vocgen printed) is compiled and built; a loopback
#     HTTP server serves the tar and the trainer, run with --mirror and a
#     fresh --data_dir, downloads (sha256 checked), extracts, parses, trains
#     a CI-sized configuration and validates: exit status, metrics.csv
#     columns (the four losses, their sum, val_map, per-class AP),
#     checkpoints, and a val_map bar;
#  3. test and predict from the best checkpoint: test_map printed, detections
#     as JSON and PNG copies with boxes drawn;
#  4. resume: a run stopped after one epoch and resumed from last.ckpt ends
#     with the same weights as an uninterrupted run.
#
# Environment: LGEN, BUILD, CC (set by `make check`).
set -eu
BUILD=${BUILD:-build}
LGEN=${LGEN:-$BUILD/lgen}
VOCGEN=${VOCGEN:-$BUILD/vocgen}
out=$BUILD/tests/e2e/faster_rcnn.$$
rm -rf "$out"
mkdir -p "$out/www"
fail() { echo "e2e faster_rcnn: FAIL: $* (files in $out)"; exit 1; }
. tests/e2e/san_flags.sh
[ -x "$VOCGEN" ] || fail "no $VOCGEN (make $VOCGEN)"

# ---- 1. the VOC spec generates a trainer that builds -------------------------
"$LGEN" specs/faster_rcnn.lmod -o "$out/voc" || fail "lgen specs/faster_rcnn.lmod failed"
make -s -C "$out/voc" CC="${CC:-cc}" CFLAGS="-O0 -Werror $SAN_FLAGS" LDFLAGS="$SAN_FLAGS" >"$out/voc.log" 2>&1 ||
    { cat "$out/voc.log"; fail "the VOC trainer does not build warning-free"; }
# the generated C: the detection calls with their spec lines, the RPN head's
# convolutions sharing one weight over the 5 levels, the backward of both
# losses and of RoIAlign, the epoch-level mAP hooks
c=$out/voc/faster_rcnn.c
for call in lg_anchors_generate lg_proposals_batch lg_rpn_loss_batch_forward lg_roi_sample_batch \
            lg_multiscale_roi_align_forward lg_fastrcnn_loss_forward lg_fastrcnn_loss_backward \
            lg_multiscale_roi_align_backward lg_rpn_loss_backward lg_rpn_permute_backward \
            lg_detections_batch lg_voc_eval_add_batch lg_voc_eval_compute; do
    grep -q "$call(" "$c" || fail "the generated trainer calls no $call"
done
grep -q '// rpn_loss_cfg\|faster_rcnn.lmod:[0-9]*) -> ' "$c" || fail "the generated calls carry no spec line comments"
n=$(grep -c 'st = lg_conv2d_forward(ctx, &[a-z_0-9]*, n, [a-z_0-9]*, params + RPN_HEAD_CONV_0_0_WEIGHT' "$c")
[ "$n" = 20 ] || fail "expected the RPN head's 3x3 conv on 5 levels in 4 steps (20 calls), found $n"
"$out/voc/faster_rcnn" fit --help >"$out/voc_help.txt" 2>&1 || fail "faster_rcnn fit --help failed"
grep -q -- '--image_size' "$out/voc_help.txt" || fail "fit --help lists no --image_size"
echo "e2e faster_rcnn: specs/faster_rcnn.lmod builds warning-free"

# ---- 2. download, extract, parse, train, validate ---------------------------------
"$VOCGEN" --seed 2 --images 200 --size 128 --objects 2 --out "$out/www/shapes.tar" >"$out/vocgen.txt" ||
    fail "vocgen failed"
sha=$(cut -d' ' -f1 "$out/vocgen.txt")
sed "s/sha256 \"[0-9a-f]*\"/sha256 \"$sha\"/" tests/e2e/faster_rcnn_shapes.lmod >"$out/faster_rcnn_shapes.lmod"
# CI size (structural hparams are compile-time values): 32 FPN channels, 64 RoIs per image
"$LGEN" -I specs -D fpn_channels=32 -D rois=64 "$out/faster_rcnn_shapes.lmod" -o "$out/gen" || fail "lgen faster_rcnn_shapes.lmod failed"
make -s -C "$out/gen" CC="${CC:-cc}" CFLAGS="-O2 -Werror $SAN_FLAGS" LDFLAGS="$SAN_FLAGS" >"$out/make.log" 2>&1 ||
    { cat "$out/make.log"; fail "the generated trainer does not build warning-free"; }
exe=$out/gen/faster_rcnn_shapes

python3 tests/data/http_server.py "$out/www" "$out/port" "$out/requests.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT INT TERM
i=0
while [ ! -s "$out/port" ]; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "the test HTTP server did not start"
    sleep 0.05
done
url="http://127.0.0.1:$(cat "$out/port")/files/"
# 100 training images, 3 epochs of 25 steps (batch 4)
small="--warmup 25 --enable_progress_bar false --num_workers 2"
root=$out/r
# under the sanitizers (make check-sanitize, 3-5x slower) the run is short
# and the accuracy bars are off: that run is about memory, not learning
if [ -n "$SAN_FLAGS" ]; then
    train_len="--max_epochs 1 --limit_train_batches 6 --limit_val_batches 4 --log_every_n_steps 2"
    bar_val=0 bar_test=0 need_dets=0
else
    train_len="--max_epochs 3 --log_every_n_steps 5"
    bar_val=0.15 bar_test=0.05 need_dets=1
fi
"$exe" fit $small --mirror "$url" --data_dir "$out/cache" --default_root_dir "$root" $train_len \
    >"$out/fit.log" 2>&1 || { tail -20 "$out/fit.log"; fail "fit failed"; }
grep -q '^GET /files/shapes.tar' "$out/requests.log" || { cat "$out/requests.log"; fail "no download through --mirror"; }
[ -f "$out/cache/shapes/shapes.tar.sha256" ] || [ -n "$(find "$out/cache" -name '*.sha256')" ] ||
    fail "the tar has no verification stamp in --data_dir"
[ -n "$(find "$out/cache" -name 000001.xml)" ] || fail "the tar was not extracted into --data_dir"
v=$root/lightning_logs/version_0
csv=$v/metrics.csv
[ -f "$csv" ] || fail "no metrics.csv"
head -1 "$csv" | tr ',' '\n' >"$out/columns.txt"
for c in train_loss loss_classifier loss_box_reg loss_objectness loss_rpn_box_reg val_map val_ap_circle val_ap_cross; do
    grep -qx "$c" "$out/columns.txt" || { head -1 "$csv"; fail "metrics.csv has no $c column"; }
done
[ -f "$v/checkpoints/last.ckpt" ] || fail "no last.ckpt"
best=$(ls "$v"/checkpoints/epoch=*.ckpt 2>/dev/null | head -1)
[ -n "$best" ] || fail "no best (val_map monitored) checkpoint"
# the last validation's val_map
map=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "val_map") c = i; next }
               c && $c != "" { m = $c } END { print m }' "$csv")
[ -n "$map" ] || fail "no val_map value in metrics.csv"
# the four losses sum to train_loss on every logged step
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) k[$i] = i; next }
         $k["train_loss"] != "" { s = $k["loss_classifier"] + $k["loss_box_reg"] + $k["loss_objectness"] + $k["loss_rpn_box_reg"];
                                  d = s - $k["train_loss"]; if (d < 0) d = -d; if (d > 1e-4 * (1 + s)) bad = 1; n++ }
         END { exit bad || n < 3 }' "$csv" || fail "the four logged losses do not sum to train_loss"
echo "e2e faster_rcnn: downloaded, trained ($train_len); val_map $map"
awk -v m="$map" -v b=$bar_val 'BEGIN { exit !(m >= b) }' || fail "val_map $map below $bar_val"

# ---- 3. test and predict from the best checkpoint ---------------------------------
cache="--mirror $url --data_dir $out/cache"
"$exe" test $small $cache --default_root_dir "$out/t" --ckpt_path "$best" >"$out/test.log" 2>&1 ||
    { tail -20 "$out/test.log"; fail "test failed"; }
tmap=$(awk '$1 == "test_map" { print $2 }' "$out/test.log" | tail -1)
[ -n "$tmap" ] || { cat "$out/test.log"; fail "test printed no test_map"; }
awk -v m="$tmap" -v b=$bar_test 'BEGIN { exit !(m >= b) }' || fail "test_map $tmap below $bar_test"
mkdir -p "$out/photos"
for f in $(find "$out/cache" -name '*.jpg' | sort | head -3); do cp "$f" "$out/photos/"; done
"$exe" predict $small --default_root_dir "$out/p" --ckpt_path "$best" --predict_input "$out/photos" \
    >"$out/predict.log" 2>&1 || { tail -20 "$out/predict.log"; fail "predict failed"; }
pv=$out/p/lightning_logs/version_0
python3 - "$pv" $need_dets <<'PY' || fail "predict's JSON or PNG files are wrong"
import json, os, struct, sys, zlib
v = sys.argv[1]
dets = json.load(open(os.path.join(v, "predictions.json")))
assert len(dets) == 3, len(dets)
pngs = sorted(os.listdir(os.path.join(v, "predictions")))
assert len(pngs) == 3, pngs
found = 0
for img in dets:
    assert img["image"].endswith(".jpg"), img["image"]
    for d in img["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 <= x2 <= 128 and 0 <= y1 <= y2 <= 128, d
        assert d["score"] >= 0.3 and 1 <= d["label"] <= 5, d
        assert d["class"] in ("circle", "square", "triangle", "diamond", "cross"), d
    found += len(img["detections"])
assert found > 0 or sys.argv[2] == "0", "no detection in 3 images"
for p in pngs:  # decode: chunks, CRCs, IDAT inflates to 128 rows of 1 + 128 * 3 bytes
    b = open(os.path.join(v, "predictions", p), "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", p
    i, idat, w = 8, b"", None
    while i < len(b):
        n, = struct.unpack(">I", b[i:i + 4]); t = b[i + 4:i + 8]; body = b[i + 8:i + 8 + n]
        assert struct.unpack(">I", b[i + 8 + n:i + 12 + n])[0] == zlib.crc32(t + body), p
        if t == b"IHDR": w, h = struct.unpack(">II", body[:8])
        if t == b"IDAT": idat += body
        i += 12 + n
    assert (w, h) == (128, 128) and len(zlib.decompress(idat)) == 128 * (1 + 128 * 3), p
print(f"predict: 3 images, {found} detections, 3 PNGs decoded")
PY

# ---- 4. resume: stopped after epoch 0, resumed, equals the uninterrupted run ------------
res="$small $cache --limit_train_batches 4 --limit_val_batches 2 --num_sanity_val_steps 0"
ckpt() { echo "$1/lightning_logs/version_0/checkpoints/last.ckpt"; }
"$exe" fit $res --default_root_dir "$out/full" --max_epochs 2 >"$out/full.log" 2>&1 ||
    { tail "$out/full.log"; fail "uninterrupted fit failed"; }
"$exe" fit $res --default_root_dir "$out/half" --max_epochs 2 --max_steps 4 >"$out/half.log" 2>&1 ||
    { tail "$out/half.log"; fail "fit to the end of epoch 0 failed"; }
"$exe" fit $res --default_root_dir "$out/resumed" --max_epochs 2 --ckpt_path "$(ckpt "$out/half")" \
    >"$out/resumed.log" 2>&1 || { tail "$out/resumed.log"; fail "resume failed"; }
grep -q "step" "$out/resumed/lightning_logs/version_0/metrics.csv" || fail "the resumed run logged nothing"
python3 tests/e2e/ckpt_cmp.py "$(ckpt "$out/full")" "$(ckpt "$out/resumed")" ||
    fail "the resumed detector's weights differ from the uninterrupted run's"
echo "e2e faster_rcnn: test_map $tmap; predict JSON + PNGs; resume bit-identical"

echo "e2e faster_rcnn: PASS"
rm -rf "$out"
