/* runtime/cuda/boxes.cu — the device proposals, rois_from_proposals, RoI
 * sampling and detections of Faster R-CNN (lgen/cuda.h).
 *
 * One grid-stride kernel per body of boxes_body.h (LG_CUK_KERNEL below),
 * and the launch sequences of boxes_run.h with LG_CUK_LAUNCH as a launch
 * on the context's compute stream: the sequence tests/check_cuda_boxes.c
 * runs on the CPU. Sorting is a bitonic sort of 64-bit keys, one launch per
 * stage; NMS a bit-mask kernel and one thread per image walking it. Nothing
 * here allocates or synchronises; workspaces come from the arena. Compiled
 * with -fmad=false (runtime/cuda/module.mk) so the box arithmetic rounds
 * as the CPU kernels'.
 */
#include "launch.cuh"

#define LG_CUK_LAUNCH(q, body, n, ...)                                                            \
    do {                                                                                          \
        size_t n_ = (n);                                                                          \
        if (n_)                                                                                   \
            body##_kernel<<<grid_for(n_), THREADS, 0, (cudaStream_t)(q)>>>(n_, __VA_ARGS__);      \
    } while (0)

/* The boxes_run.h sequences call static functions of this file only. */
#include "boxes_body.h"

#define LG_EXPAND(...) __VA_ARGS__
/* A grid-stride kernel body##_kernel(n, params) calling lg_cuk_body(i, args). */
#define LG_CUK_KERNEL(body, params, args)                                                         \
    static __global__ void body##_kernel(size_t n, LG_EXPAND params) {                            \
        for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;                     \
             i += (size_t)blockDim.x * gridDim.x)                                                 \
            lg_cuk_##body(i, LG_EXPAND args);                                                     \
    }

LG_CUK_KERNEL(bitonic_step, (uint64_t *keys, size_t S, size_t k, size_t j), (keys, S, k, j))
LG_CUK_KERNEL(chunk_count, (const int32_t *flags, size_t len, size_t nch, int32_t *counts),
              (flags, len, nch, counts))
LG_CUK_KERNEL(chunk_scan, (int32_t *counts, size_t nch, int32_t *total), (counts, nch, total))
LG_CUK_KERNEL(chunk_scatter,
              (const int32_t *flags, size_t len, size_t nch, const int32_t *offsets, int32_t *index),
              (flags, len, nch, offsets, index))
LG_CUK_KERNEL(gather_candidates,
              (const int32_t *index, const int32_t *total, size_t C, const float *boxes,
               const float *scores, const int32_t *groups, float *ob, float *os, int32_t *og),
              (index, total, C, boxes, scores, groups, ob, os, og))
LG_CUK_KERNEL(nms_keys,
              (const float *scores, const int32_t *cnt, size_t C, size_t S, uint64_t *keys),
              (scores, cnt, C, S, keys))
LG_CUK_KERNEL(nms_gather,
              (const uint64_t *keys, const float *boxes, const int32_t *groups, const int32_t *cnt,
               size_t C, size_t S, float *sorted, int32_t *sorted_groups, int32_t *order),
              (keys, boxes, groups, cnt, C, S, sorted, sorted_groups, order))
LG_CUK_KERNEL(nms_seg_mask,
              (const float *sorted, const int32_t *groups, const int32_t *cnt, size_t C,
               size_t blocks, float thresh, uint64_t *mask),
              (sorted, groups, cnt, C, blocks, thresh, mask))
LG_CUK_KERNEL(nms_seg_reduce,
              (const uint64_t *mask, const int32_t *order, const int32_t *cnt, size_t C,
               size_t blocks, int max_keep, uint64_t *removed, int32_t *keep, int32_t *kept),
              (mask, order, cnt, C, blocks, max_keep, removed, keep, kept))
LG_CUK_KERNEL(prop_keys,
              (lg_cuda_proposals_cfg d, const float *objectness, size_t A, size_t S, int ibits,
               uint64_t *keys),
              (d, objectness, A, S, ibits, keys))
LG_CUK_KERNEL(prop_decode,
              (lg_cuda_proposals_cfg d, const uint64_t *keys, size_t S, int ibits,
               const float *objectness, const float *deltas, const float *anchors, size_t A,
               size_t C, float *boxes, float *scores, int32_t *levels, int32_t *flags),
              (d, keys, S, ibits, objectness, deltas, anchors, A, C, boxes, scores, levels, flags))
LG_CUK_KERNEL(prop_output,
              (size_t P, size_t C, const int32_t *keep, const int32_t *kept, const float *cboxes,
               const float *cscores, float *boxes, float *scores, int32_t *count),
              (P, C, keep, kept, cboxes, cscores, boxes, scores, count))
LG_CUK_KERNEL(rois_from_proposals,
              (const float *boxes, const int32_t *count, size_t P, float *rois),
              (boxes, count, P, rois))
LG_CUK_KERNEL(sample_gt,
              (lg_cuda_det_targets tg, float *gt_boxes, int32_t *gt_labels, int32_t *num_gt),
              (tg, gt_boxes, gt_labels, num_gt))
LG_CUK_KERNEL(sample_boxes,
              (const float *proposals, const int32_t *count, size_t P, const float *gt_boxes,
               const int32_t *num_gt, size_t B, float *boxes),
              (proposals, count, P, gt_boxes, num_gt, B, boxes))
LG_CUK_KERNEL(sample_iou,
              (const float *gt_boxes, const float *boxes, const int32_t *count,
               const int32_t *num_gt, size_t P, size_t B, float *iou),
              (gt_boxes, boxes, count, num_gt, P, B, iou))
LG_CUK_KERNEL(sample_match,
              (lg_cuda_roi_sample_cfg d, const float *iou, const int32_t *count,
               const int32_t *num_gt, const int32_t *gt_labels, size_t B, int32_t *matches,
               int32_t *labels),
              (d, iou, count, num_gt, gt_labels, B, matches, labels))
LG_CUK_KERNEL(sample_pick,
              (lg_cuda_roi_sample_cfg d, size_t B, const int32_t *count, const int32_t *num_gt,
               int32_t *labels, uint64_t seed, uint64_t step, int32_t *pos, int32_t *neg,
               int32_t *rows, int32_t *nrows),
              (d, B, count, num_gt, labels, seed, step, pos, neg, rows, nrows))
LG_CUK_KERNEL(sample_output,
              (lg_cuda_roi_sample_cfg d, size_t B, const float *boxes, const int32_t *labels,
               const int32_t *matches, const float *gt_boxes, const int32_t *rows,
               const int32_t *nrows, float *rois, int32_t *out_labels, float *box_targets),
              (d, B, boxes, labels, matches, gt_boxes, rows, nrows, rois, out_labels, box_targets))
LG_CUK_KERNEL(det_valid, (const float *rois, size_t R, int32_t *valid), (rois, R, valid))
LG_CUK_KERNEL(det_candidates,
              (lg_cuda_detect_cfg d, const float *logits, const float *box_regression,
               const float *rois, const int32_t *valid, float *boxes, float *scores,
               int32_t *labels, int32_t *flags),
              (d, logits, box_regression, rois, valid, boxes, scores, labels, flags))
LG_CUK_KERNEL(det_output,
              (size_t D, size_t C, const int32_t *keep, const int32_t *kept, const float *cboxes,
               const float *cscores, const int32_t *clabels, float *boxes, float *scores,
               int32_t *labels, int32_t *count),
              (D, C, keep, kept, cboxes, cscores, clabels, boxes, scores, labels, count))

#include "boxes_run.h"

static int proposals_ok(const lg_cuda_proposals_cfg *d) {
    if (d->levels < 1 || d->levels > LG_CUDA_DET_MAX_LEVELS || d->pre_nms_top_n < 1 ||
        d->post_nms_top_n < 1 || d->image_h < 1 || d->image_w < 1)
        return 0;
    size_t A = 0;
    for (int l = 0; l < d->levels; l++) {
        if (d->per_level[l] < 0)
            return 0;
        A += (size_t)d->per_level[l];
    }
    return A < ((size_t)1 << 29); /* the index bits of a sort key */
}

extern "C" size_t lg_cuda_proposals_workspace(const lg_cuda_proposals_cfg *d, int N) {
    lg_cuk_prop_ws w;
    return d && proposals_ok(d) && N > 0 ? lg_cuk_prop_layout(d, (size_t)N, NULL, &w) : 0;
}

extern "C" lg_status lg_cuda_proposals(lg_cuda *c, const lg_cuda_proposals_cfg *d, int N,
                                       const float *objectness, const float *deltas,
                                       const float *anchors, void *ws, float *boxes, float *scores,
                                       int32_t *count, lg_error *err) {
    if (!c || !d || !proposals_ok(d) || N < 0 || (N && (!objectness || !deltas || !anchors || !ws ||
                                                        !boxes || !scores || !count)))
        return lg_error_set(err, LG_ERR_ARG,
                            "proposals: bad arguments (%d images, %d levels, pre_nms_top_n %d, "
                            "post_nms_top_n %d)",
                            N, d ? d->levels : 0, d ? d->pre_nms_top_n : 0,
                            d ? d->post_nms_top_n : 0);
    if (N == 0)
        return LG_OK;
    lg_cuk_prop_ws w;
    lg_cuk_prop_layout(d, (size_t)N, ws, &w);
    lg_cuk_run_proposals(c->stream, *d, (size_t)N, objectness, deltas, anchors, &w, boxes, scores,
                         count);
    return launched("proposals", err);
}

extern "C" lg_status lg_cuda_rois_from_proposals(lg_cuda *c, const float *boxes,
                                                 const int32_t *count, int N, int P, float *rois,
                                                 lg_error *err) {
    if (!c || N < 0 || P < 1 || (N && (!boxes || !count || !rois)))
        return lg_error_set(err, LG_ERR_ARG, "rois_from_proposals: bad arguments (%d images, %d rows)",
                            N, P);
    LG_CUK_LAUNCH(c->stream, rois_from_proposals, (size_t)N * (size_t)P, boxes, count, (size_t)P,
                  rois);
    return launched("rois_from_proposals", err);
}

extern "C" size_t lg_cuda_roi_sample_workspace(const lg_cuda_roi_sample_cfg *d, int N,
                                               int max_boxes) {
    lg_cuk_sample_ws w;
    if (!d || d->P < 0 || d->R < 1 || N < 1 || max_boxes < 0)
        return 0;
    return lg_cuk_sample_layout(d, (size_t)N, (size_t)max_boxes, NULL, &w);
}

extern "C" lg_status lg_cuda_roi_sample(lg_cuda *c, const lg_cuda_roi_sample_cfg *d, int N,
                                        const float *proposals, const int32_t *count,
                                        const lg_cuda_det_targets *t, uint64_t seed,
                                        uint64_t step, void *ws, float *rois, int32_t *labels,
                                        float *box_targets, lg_error *err) {
    if (!c || !d || d->P < 0 || d->R < 1 || !(d->positive_fraction >= 0 && d->positive_fraction <= 1) ||
        !t || t->max_boxes < 0 || N < 0 ||
        (N && (!proposals || !count || !ws || !rois || !labels || !box_targets || !t->count ||
               (t->max_boxes && (!t->boxes || !t->labels)))))
        return lg_error_set(err, LG_ERR_ARG, "roi_sample: bad arguments (%d images, %d RoIs each)", N,
                            d ? d->R : 0);
    if (N == 0)
        return LG_OK;
    lg_cuk_sample_ws w;
    lg_cuk_sample_layout(d, (size_t)N, (size_t)t->max_boxes, ws, &w);
    lg_cuk_run_roi_sample(c->stream, *d, (size_t)N, proposals, count, *t, seed, step, &w, rois,
                          labels, box_targets);
    return launched("roi_sample", err);
}

extern "C" size_t lg_cuda_detections_workspace(const lg_cuda_detect_cfg *d, int N) {
    lg_cuk_det_ws w;
    if (!d || d->R < 1 || d->K < 2 || d->detections_per_img < 1 || N < 1)
        return 0;
    return lg_cuk_det_layout(d, (size_t)N, NULL, &w);
}

extern "C" lg_status lg_cuda_detections(lg_cuda *c, const lg_cuda_detect_cfg *d, int N,
                                        const float *class_logits, const float *box_regression,
                                        const float *rois, void *ws, float *boxes, float *scores,
                                        int32_t *labels, int32_t *count, lg_error *err) {
    if (!c || !d || d->R < 1 || d->K < 2 || d->detections_per_img < 1 || d->image_h < 1 ||
        d->image_w < 1 || N < 0 ||
        (N && (!class_logits || !box_regression || !rois || !ws || !boxes || !scores || !labels ||
               !count)))
        return lg_error_set(err, LG_ERR_ARG,
                            "detections: bad arguments (%d images, %d RoIs, %d classes)", N,
                            d ? d->R : 0, d ? d->K : 0);
    if (N == 0)
        return LG_OK;
    lg_cuk_det_ws w;
    lg_cuk_det_layout(d, (size_t)N, ws, &w);
    lg_cuk_run_detections(c->stream, *d, (size_t)N, class_logits, box_regression, rois, &w, boxes,
                          scores, labels, count);
    return launched("detections", err);
}
