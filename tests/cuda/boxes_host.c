/* tests/cuda/boxes_host.c — a host stand-in for the part of liblgen_cuda.a
 * that tests/gpu/gpu_boxes.c calls, so that `make check` runs that device
 * test on the CPU (build/tests/check_cuda_boxes_full): the arena is host
 * memory, upload/download are memcpy, and lg_cuda_proposals,
 * lg_cuda_rois_from_proposals, lg_cuda_roi_sample and lg_cuda_detections run
 * the launch sequences of runtime/cuda/boxes_run.h with LG_CUK_LAUNCH a loop
 * (boxes.cu runs the same sequences as kernel launches). It checks the
 * device test itself, and the bodies at faster_rcnn.lmod's sizes (65,472
 * anchors, 2000 proposals, 512 RoIs, 21 classes) against runtime/detect.
 * The context (arena in host memory, transfers) is tests/cuda/fake_device.c's,
 * as in tests/cuda/check_detect_steps_gen.sh, which links these four ops
 * into a generated Faster R-CNN trainer. */
#define LG_CUK_LAUNCH(q, body, n, ...)                                                             \
    do {                                                                                           \
        (void)(q);                                                                                 \
        for (size_t i_ = 0, n_ = (n); i_ < n_; i_++)                                               \
            lg_cuk_##body(i_, __VA_ARGS__);                                                        \
    } while (0)
#include "../../runtime/cuda/boxes_run.h"

size_t lg_cuda_proposals_workspace(const lg_cuda_proposals_cfg *d, int N) {
    lg_cuk_prop_ws w;
    return lg_cuk_prop_layout(d, (size_t)N, NULL, &w);
}

lg_status lg_cuda_proposals(lg_cuda *c, const lg_cuda_proposals_cfg *d, int N, const float *objectness,
                            const float *deltas, const float *anchors, void *ws, float *boxes,
                            float *scores, int32_t *count, lg_error *err) {
    (void)c, (void)err;
    lg_cuk_prop_ws w;
    lg_cuk_prop_layout(d, (size_t)N, ws, &w);
    lg_cuk_run_proposals(NULL, *d, (size_t)N, objectness, deltas, anchors, &w, boxes, scores, count);
    return LG_OK;
}

lg_status lg_cuda_rois_from_proposals(lg_cuda *c, const float *boxes, const int32_t *count, int N,
                                      int P, float *rois, lg_error *err) {
    (void)c, (void)err;
    LG_CUK_LAUNCH(NULL, rois_from_proposals, (size_t)N * (size_t)P, boxes, count, (size_t)P, rois);
    return LG_OK;
}

size_t lg_cuda_roi_sample_workspace(const lg_cuda_roi_sample_cfg *d, int N, int max_boxes) {
    lg_cuk_sample_ws w;
    return lg_cuk_sample_layout(d, (size_t)N, (size_t)max_boxes, NULL, &w);
}

lg_status lg_cuda_roi_sample(lg_cuda *c, const lg_cuda_roi_sample_cfg *d, int N,
                             const float *proposals, const int32_t *count,
                             const lg_cuda_det_targets *t, uint64_t seed, uint64_t step, void *ws,
                             float *rois, int32_t *labels, float *box_targets, lg_error *err) {
    (void)c, (void)err;
    lg_cuk_sample_ws w;
    lg_cuk_sample_layout(d, (size_t)N, (size_t)t->max_boxes, ws, &w);
    lg_cuk_run_roi_sample(NULL, *d, (size_t)N, proposals, count, *t, seed, step, &w, rois, labels,
                          box_targets);
    return LG_OK;
}

size_t lg_cuda_detections_workspace(const lg_cuda_detect_cfg *d, int N) {
    lg_cuk_det_ws w;
    return lg_cuk_det_layout(d, (size_t)N, NULL, &w);
}

lg_status lg_cuda_detections(lg_cuda *c, const lg_cuda_detect_cfg *d, int N, const float *class_logits,
                             const float *box_regression, const float *rois, void *ws, float *boxes,
                             float *scores, int32_t *labels, int32_t *count, lg_error *err) {
    (void)c, (void)err;
    lg_cuk_det_ws w;
    lg_cuk_det_layout(d, (size_t)N, ws, &w);
    lg_cuk_run_detections(NULL, *d, (size_t)N, class_logits, box_regression, rois, &w, boxes, scores,
                          labels, count);
    return LG_OK;
}
