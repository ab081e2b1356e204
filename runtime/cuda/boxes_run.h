/* runtime/cuda/boxes_run.h — the launch sequences of the device proposals,
 * RoI sampling and detections, written once for two runners.
 *
 * Each function here is the whole pipeline of one op as a list of
 * LG_CUK_LAUNCH(q, body, n, args...) steps: "run body over indices 0..n-1".
 * boxes.cu defines LG_CUK_LAUNCH as a kernel launch on stream q (one
 * grid-stride kernel per body); tests/check_cuda_boxes.c as a plain loop on
 * the CPU. So the host test runs the very sequence the device runs, and
 * compares it with runtime/detect's CPU kernels. Launches on one stream run
 * in order, which is all the steps assume. Inputs and workspaces are laid
 * out by boxes_body.h's lg_cuk_*_layout.
 */
#ifndef LGEN_CUDA_BOXES_RUN_H
#define LGEN_CUDA_BOXES_RUN_H

#include "boxes_body.h"

#ifndef LG_CUK_LAUNCH
#error "define LG_CUK_LAUNCH(q, body, n, ...) before including boxes_run.h"
#endif

/* Sorts each of the N runs of S keys in keys descending. */
static void lg_cuk_run_sort(void *q, uint64_t *keys, size_t N, size_t S) {
    for (size_t k = 2; k <= S; k <<= 1)
        for (size_t j = k >> 1; j > 0; j >>= 1)
            LG_CUK_LAUNCH(q, bitonic_step, N * S / 2, keys, S, k, j);
}

/* NMS of the flagged candidates (w->flags over boxes, scores, groups [N, C])
 * per image: w->keep / w->kept get at most max_keep survivors, as indices
 * into the compacted w->cboxes, w->cscores, w->cgroups. */
static void lg_cuk_run_nms(void *q, lg_cuk_nms_ws *w, size_t N, const float *boxes,
                           const float *scores, const int32_t *groups, float thresh, int max_keep) {
    size_t C = w->C, S = w->S;
    /* the flagged candidates, in their order */
    LG_CUK_LAUNCH(q, chunk_count, N * w->nch, w->flags, C, w->nch, w->counts);
    LG_CUK_LAUNCH(q, chunk_scan, N, w->counts, w->nch, w->total);
    LG_CUK_LAUNCH(q, chunk_scatter, N * w->nch, w->flags, C, w->nch, w->counts, w->index);
    LG_CUK_LAUNCH(q, gather_candidates, N * C, w->index, w->total, C, boxes, scores, groups,
                  w->cboxes, w->cscores, w->cgroups);
    /* by decreasing score, then index */
    LG_CUK_LAUNCH(q, nms_keys, N * S, w->cscores, w->total, C, S, w->keys);
    lg_cuk_run_sort(q, w->keys, N, S);
    LG_CUK_LAUNCH(q, nms_gather, N * C, w->keys, w->cboxes, w->cgroups, w->total, C, S, w->sorted,
                  w->sorted_groups, w->order);
    /* who suppresses whom, then the greedy walk */
    LG_CUK_LAUNCH(q, nms_seg_mask, N * C * w->blocks, w->sorted, w->sorted_groups, w->total, C,
                  w->blocks, thresh, w->mask);
    LG_CUK_LAUNCH(q, nms_seg_reduce, N, w->mask, w->order, w->total, C, w->blocks, max_keep,
                  w->removed, w->keep, w->kept);
}

/* lg_proposals_batch: per image, each level's pre_nms_top_n best anchors
 * decoded, clipped, filtered, NMS per level, post_nms_top_n kept. */
static void lg_cuk_run_proposals(void *q, lg_cuda_proposals_cfg d, size_t N,
                                 const float *objectness, const float *deltas,
                                 const float *anchors, lg_cuk_prop_ws *w, float *boxes,
                                 float *scores, int32_t *count) {
    size_t A = w->A, S = w->S, C = w->C, P = (size_t)d.post_nms_top_n;
    LG_CUK_LAUNCH(q, prop_keys, N * S, d, objectness, A, S, w->ibits, w->keys);
    lg_cuk_run_sort(q, w->keys, N, S);
    LG_CUK_LAUNCH(q, prop_decode, N * C, d, w->keys, S, w->ibits, objectness, deltas, anchors, A, C,
                  w->boxes, w->scores, w->levels, w->nms.flags);
    lg_cuk_run_nms(q, &w->nms, N, w->boxes, w->scores, w->levels, d.nms_thresh,
                   d.post_nms_top_n);
    LG_CUK_LAUNCH(q, prop_output, N * P, P, C, w->nms.keep, w->nms.kept, w->nms.cboxes,
                  w->nms.cscores, boxes, scores, count);
}

/* lg_roi_sample_batch: per image, proposals and ground truth matched,
 * sampled with the CPU's draws, encoded. */
static void lg_cuk_run_roi_sample(void *q, lg_cuda_roi_sample_cfg d, size_t N,
                                  const float *proposals, const int32_t *count,
                                  lg_cuda_det_targets tg, uint64_t seed, uint64_t step,
                                  lg_cuk_sample_ws *w, float *rois, int32_t *labels,
                                  float *box_targets) {
    size_t B = w->B, T = w->T, P = (size_t)d.P, R = (size_t)d.R;
    LG_CUK_LAUNCH(q, sample_gt, N, tg, w->gt_boxes, w->gt_labels, w->num_gt);
    LG_CUK_LAUNCH(q, sample_boxes, N * T, proposals, count, P, w->gt_boxes, w->num_gt, B, w->boxes);
    LG_CUK_LAUNCH(q, sample_iou, N * B * T, w->gt_boxes, w->boxes, count, w->num_gt, P, B, w->iou);
    LG_CUK_LAUNCH(q, sample_match, N * T, d, w->iou, count, w->num_gt, w->gt_labels, B, w->matches,
                  w->labels);
    LG_CUK_LAUNCH(q, sample_pick, N, d, B, count, w->num_gt, w->labels, seed, step, w->pos, w->neg,
                  w->rows, w->nrows);
    LG_CUK_LAUNCH(q, sample_output, N * R, d, B, w->boxes, w->labels, w->matches, w->gt_boxes,
                  w->rows, w->nrows, rois, labels, box_targets);
}

/* lg_detections_batch: per image, class scores and boxes of the real RoIs,
 * NMS per class, the detections_per_img best. */
static void lg_cuk_run_detections(void *q, lg_cuda_detect_cfg d, size_t N, const float *logits,
                                  const float *box_regression, const float *rois,
                                  lg_cuk_det_ws *w, float *boxes, float *scores, int32_t *labels,
                                  int32_t *count) {
    size_t C = w->C, D = (size_t)d.detections_per_img;
    LG_CUK_LAUNCH(q, det_valid, N, rois, (size_t)d.R, w->valid);
    LG_CUK_LAUNCH(q, det_candidates, N * C, d, logits, box_regression, rois, w->valid, w->boxes,
                  w->scores, w->labels, w->nms.flags);
    lg_cuk_run_nms(q, &w->nms, N, w->boxes, w->scores, w->labels, d.nms_thresh,
                   d.detections_per_img);
    LG_CUK_LAUNCH(q, det_output, N * D, D, C, w->nms.keep, w->nms.kept, w->nms.cboxes,
                  w->nms.cscores, w->nms.cgroups, boxes, scores, labels, count);
}

#endif
