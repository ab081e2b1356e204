#!/bin/sh
# tests/cuda/check_detect_target.sh — `lgen --target cuda` on a detection
# spec (specs/faster_rcnn.lmod): the ground truth and the detection ops of
# emit_cuda_detect.c in the generated NAME_cuda.c. Everywhere (no toolkit).
#   - faster_rcnn generates (exit 0) and its NAME_cuda.c compiles with
#     -Wall -Wextra -Werror against the runtime headers;
#   - b.targets is planned in the batch (boxes, labels, difficult, count at
#     aligned offsets), copied into the pinned slot, refused when a batch
#     has room for another number of boxes, and reaches the ops as `tg`;
#   - anchors, rpn_loss, roi_align and fastrcnn_loss (and their backward)
#     are one lg_cuda_* call each under a comment with their spec line
#     (roi_align's backward: the ordered one); the RPN loss's workspace
#     sizes the arena's det_ws; under mixed precision their batched inputs
#     in the compute dtype are converted to float32 slices of gpu.cvt_in
#     first, and RoIAlign's output and the input gradients written to
#     slices of gpu.cvt_out and converted back to dt (no refusal);
#   - a roi_align the device cannot map (canonical_scale 200) is refused:
#     exit 1, a note saying why and the op with its line.
set -u
LGEN=${LGEN:-build/lgen}
CC=${CC:-cc}
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$LGEN" specs/faster_rcnn.lmod -o "$tmp/f" --target cuda 2>"$tmp/err" || bad "faster_rcnn --target cuda: $(head -3 "$tmp/err")"
f=$tmp/f/faster_rcnn_cuda.c
[ -f "$f" ] || { echo "FAIL: no $f"; exit 1; }
$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iruntime/include -fsyntax-only "$f" 2>"$tmp/cc" ||
    bad "faster_rcnn_cuda.c does not compile warning-free: $(head -5 "$tmp/cc")"

# the ground truth: planned, staged, refused on a mismatch, declared
for want in 'FASTER_RCNN_BATCH_targets_BOXES(Bp)' 'FASTER_RCNN_BATCH_targets_LABELS(Bp)' \
    'FASTER_RCNN_BATCH_targets_DIFFICULT(Bp)' 'FASTER_RCNN_BATCH_targets_COUNT(Bp)' \
    'memcpy(pinned + FASTER_RCNN_BATCH_targets_BOXES(gpu.Bp), b->boxes, n \* 64 \* 4 \* sizeof(float));' \
    'memcpy(pinned + FASTER_RCNN_BATCH_targets_COUNT(gpu.Bp), b->box_count, n \* sizeof(int32_t));' \
    'if (b->boxes && b->max_boxes != 64)' 'const lg_cuda_det_targets tg = {.max_boxes = 64,'; do
    grep -q "$want" "$f" || bad "faster_rcnn_cuda.c lacks: $want"
done

# each op: the call right under its spec-line comment (the comment may sit a
# few lines up, above the conversions and the configuration's declaration)
call_after() { # call_after OP LINE CALL
    awk -v c="$1" -v l="($2)" -v call="$3" '
        index($0, "// ") && index($0, c) && index($0, l) { armed = 24 }
        armed && index($0, call) { found = 1 }
        armed { armed-- }
        END { exit !found }' "$f" || bad "no $3 under the comment of $1 at $2"
}
call_after "anchors(5 feature maps)" "faster_rcnn.lmod:95" "lg_cuda_anchors_generate(c, &d, anc, err);"
call_after "rpn_loss(objectness, deltas, anc, targets)" "faster_rcnn.lmod:97" "lg_cuda_rpn_loss_forward(c, &d, (dt == LG_CUDA_F32 ? objectness : gpu.cvt_in + n * 0), (dt == LG_CUDA_F32 ? deltas : gpu.cvt_in + n * 65472), anc, &tg, det_ws,"
call_after "d rpn_loss" "faster_rcnn.lmod:97" "lg_cuda_rpn_loss_backward(c, &d, (dt == LG_CUDA_F32 ? objectness : gpu.cvt_in + n * 0), (dt == LG_CUDA_F32 ? deltas : gpu.cvt_in + n * 65472), loss_objectness_labels, loss_objectness_box_targets, loss_grad, loss_grad, (dt == LG_CUDA_F32 ? objectness_grad : gpu.cvt_out + n * 0), (dt == LG_CUDA_F32 ? deltas_grad : gpu.cvt_out + n * 65472), err);"
call_after "roi_align(sampled, 4 feature maps)" "faster_rcnn.lmod:99" "lg_cuda_roi_align_forward(c, &d, maps, sampled, n * 512, (dt == LG_CUDA_F32 ? pooled : gpu.cvt_out + n * 0), err);"
call_after "roi_align(props_rois, 4 feature maps)" "faster_rcnn.lmod:117" "lg_cuda_roi_align_forward(c, &d, maps, props_rois, n * 512, (dt == LG_CUDA_F32 ? pooled : gpu.cvt_out + n * 0), err);"
call_after "d pooled: every level's map" "faster_rcnn.lmod:99" "lg_cuda_roi_align_backward_ordered(c, &d, (int)n, maps, sampled, n * 512, (dt == LG_CUDA_F32 ? h_grad : gpu.cvt_in + n * 0), err);"
call_after "fastrcnn_loss(" "faster_rcnn.lmod:101" "lg_cuda_fastrcnn_loss_forward(c, (dt == LG_CUDA_F32 ? box_predictor_cls_score : gpu.cvt_in + n * 0), (dt == LG_CUDA_F32 ? box_predictor_bbox_pred : gpu.cvt_in + n * 10752), labels, box_targets, (int)(n * 512), 21, 0.1111111f, loss_classifier, loss_box_reg, err);"
call_after "d fastrcnn_loss" "faster_rcnn.lmod:101" "lg_cuda_fastrcnn_loss_backward(c, (dt == LG_CUDA_F32 ? box_predictor_cls_score : gpu.cvt_in + n * 0), (dt == LG_CUDA_F32 ? box_predictor_bbox_pred : gpu.cvt_in + n * 10752), labels, box_targets, (int)(n * 512), 21,"
grep -q '.seed = io->seed ^ 0u, .step = ((uint64_t)io->epoch << 32 | (uint64_t)b->batch_index)}' "$f" ||
    bad "rpn_loss's sampler is not seeded as the CPU trainer's (io->seed, epoch << 32 | batch_index)"
grep -q 'k_min = 2,' "$f" && grep -q '.spatial_scale = {0.25f, 0.125f, 0.0625f, 0.03125f}' "$f" ||
    bad "roi_align's levels are not P2..P5"
grep -q 'lg_cuda_rpn_loss_workspace((int)Bp, 65472, 64) > det_ws' "$f" || bad "det_ws is not sized for the RPN loss"
# mixed precision: not refused; the f32 slices fit the arena's conversion
# buffers (the largest op's sum: RoIAlign's output, 512 x 256 x 7 x 7 per image),
# and every value converted into a slice is converted back after the call
grep -q "f16/bf16 path on the GPU yet (use 32-true)" "$f" && bad "mixed precision is still refused at start-up"
grep -q 'FASTER_RCNN_CVT_FLOATS_PER_SAMPLE = 6422528,' "$f" ||
    bad "the conversion buffers are not sized for RoIAlign's output: $(grep -m1 'CVT_FLOATS_PER_SAMPLE =' "$f")"
for want in 'lg_cuda_convert(c, LG_CUDA_F32, gpu.cvt_in + n * 5505024, dt, fpn_layer_blocks_3_0, n * 65536, err)' \
    'lg_cuda_convert(c, dt, pooled, LG_CUDA_F32, gpu.cvt_out + n * 0, n * 6422528, err)' \
    'lg_cuda_convert(c, dt, fpn_layer_blocks_3_0_grad, LG_CUDA_F32, gpu.cvt_out + n * 5505024, n * 65536, err)' \
    'lg_cuda_convert(c, dt, deltas_grad, LG_CUDA_F32, gpu.cvt_out + n * 65472, n * 261888, err)' \
    'lg_cuda_convert(c, dt, box_predictor_bbox_pred_grad, LG_CUDA_F32, gpu.cvt_out + n * 10752, n * 43008, err)' \
    'lg_cuda_detections(c, &d, (int)n, (dt == LG_CUDA_F32 ? box_predictor_cls_score : gpu.cvt_in + n * 0), (dt == LG_CUDA_F32 ? box_predictor_bbox_pred : gpu.cvt_in + n * 10752), props_rois,' \
    'lg_cuda_proposals(c, &d, (int)n, (dt == LG_CUDA_F32 ? objectness : gpu.cvt_in + n * 0), (dt == LG_CUDA_F32 ? deltas : gpu.cvt_in + n * 65472), anc,'; do
    grep -qF "$want" "$f" || bad "faster_rcnn_cuda.c lacks: $want"
done
n=$(grep -c 'lg_cuda_anchors_generate(' "$f")
[ "$n" -eq 4 ] || bad "expected anchors in 4 steps, found $n"

# a roi_align the device kernel cannot map
sed 's/spatial_scale: (0.25, 0.125, 0.0625, 0.03125))/spatial_scale: (0.25, 0.125, 0.0625, 0.03125), canonical_scale: 200)/' \
    specs/faster_rcnn.lmod >"$tmp/odd.lmod"
grep -q "canonical_scale: 200" "$tmp/odd.lmod" || bad "could not make the odd spec"
"$LGEN" -I specs "$tmp/odd.lmod" -o "$tmp/o" --target cuda >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] || bad "canonical_scale 200: exit $rc, expected 1"
grep -q "odd.lmod:99: note: the device RoIAlign takes 1 to 5 maps whose spatial scales halve level by level, with canonical_scale 224" "$tmp/out" ||
    bad "canonical_scale 200: no note saying why: $(head -2 "$tmp/out")"
grep -q "odd.lmod:99: error: the CUDA target has no device kernel call for 'roi_align' yet" "$tmp/out" ||
    bad "canonical_scale 200: roi_align not named with its line: $(head -2 "$tmp/out")"

[ $fail -eq 0 ] && echo "ok: faster_rcnn --target cuda: targets on the device, anchors/rpn_loss/roi_align/fastrcnn_loss calls, f32 conversions under mixed precision, an unmappable roi_align refused"
exit $fail
