/* tests/cuda/fake_detect.c — the detection launchers of liblgen_cuda.a on
 * the device in host memory of tests/cuda/fake_device.c, for
 * tests/cuda/check_detect_steps_gen.sh.
 *
 * The anchors, the RPN and Fast R-CNN losses and RoIAlign (runtime/cuda/
 * detect.cu, kernels.cu on a GPU) are runtime/detect's CPU functions here,
 * on the same arguments turned into lgen/detect.h's structs: what the test
 * checks with them is the generated steps' wiring (pointers, offsets,
 * seeds, the order of the calls), their bodies are checked elsewhere
 * (check_cuda_detect). Proposals, RoI sampling and detections come from
 * tests/cuda/boxes_host.c, the launch sequences of boxes.cu over their
 * bodies. */
#include "lgen/cuda.h"
#include "lgen/detect.h"

#include <limits.h>
#include <string.h>

static lg_det_targets host_targets(const lg_cuda_det_targets *t) {
    return (lg_det_targets){t->max_boxes, t->boxes,          t->labels,        t->difficult,
                            t->count,     t->label_offset,   t->skip_difficult};
}

lg_status lg_cuda_anchors_generate(lg_cuda *c, const lg_cuda_anchors *d, float *anchors, lg_error *err) {
    (void)c, (void)err;
    lg_anchor_level lv[LG_CUDA_MAX_LEVELS];
    for (int l = 0; l < d->levels; l++)
        lv[l] = (lg_anchor_level){d->level[l].feat_h, d->level[l].feat_w, d->level[l].num_sizes, d->level[l].sizes,
                                  d->level[l].num_ratios, d->level[l].aspect_ratios};
    return lg_anchors_generate(NULL, lv, d->levels, d->image_h, d->image_w, anchors, NULL);
}

size_t lg_cuda_rpn_loss_workspace(int N, int A, int max_boxes) {
    (void)N;
    return lg_rpn_loss_batch_workspace(A, max_boxes);
}

lg_status lg_cuda_rpn_loss_forward(lg_cuda *c, const lg_cuda_rpn_loss *d, const float *objectness,
                                   const float *deltas, const float *anchors, const lg_cuda_det_targets *t,
                                   void *ws, int32_t *labels, float *box_targets, float *loss_objectness,
                                   float *loss_box, lg_error *err) {
    (void)c, (void)err;
    const lg_rpn_loss_config cfg = {{d->fg_iou_thresh, d->bg_iou_thresh, d->batch_size_per_image, d->positive_fraction},
                                    d->beta, d->seed};
    const lg_det_targets tg = host_targets(t);
    return lg_rpn_loss_batch_forward(NULL, &cfg, objectness, deltas, anchors, d->A, d->N, &tg, d->step, ws, labels,
                                     box_targets, loss_objectness, loss_box);
}

lg_status lg_cuda_rpn_loss_backward(lg_cuda *c, const lg_cuda_rpn_loss *d, const float *objectness,
                                    const float *deltas, const int32_t *labels, const float *box_targets,
                                    const float *dloss_objectness, const float *dloss_box, float *grad_objectness,
                                    float *grad_deltas, lg_error *err) {
    (void)c, (void)err;
    return lg_rpn_loss_backward(NULL, objectness, deltas, labels, box_targets, d->N, d->A, d->beta,
                                dloss_objectness ? *dloss_objectness : 0.0f, dloss_box ? *dloss_box : 0.0f,
                                grad_objectness, grad_deltas);
}

lg_status lg_cuda_fastrcnn_loss_forward(lg_cuda *c, const float *class_logits, const float *box_regression,
                                        const int32_t *labels, const float *box_targets, int R, int K, float beta,
                                        float *loss_classifier, float *loss_box_reg, lg_error *err) {
    (void)c, (void)err;
    return lg_fastrcnn_loss_forward(NULL, class_logits, box_regression, labels, box_targets, R, K, beta,
                                    loss_classifier, loss_box_reg);
}

lg_status lg_cuda_fastrcnn_loss_backward(lg_cuda *c, const float *class_logits, const float *box_regression,
                                         const int32_t *labels, const float *box_targets, int R, int K, float beta,
                                         const float *dloss_classifier, const float *dloss_box_reg,
                                         float *grad_logits, float *grad_box, lg_error *err) {
    (void)c, (void)err;
    return lg_fastrcnn_loss_backward(NULL, class_logits, box_regression, labels, box_targets, R, K, beta,
                                     dloss_classifier ? *dloss_classifier : 0.0f,
                                     dloss_box_reg ? *dloss_box_reg : 0.0f, grad_logits, grad_box);
}

static lg_multiscale_roi_align multiscale(const lg_cuda_roi_align *d) {
    lg_multiscale_roi_align m = {.num_levels = d->levels, .pooled_h = d->PH, .pooled_w = d->PW,
                                 .sampling_ratio = d->sampling_ratio, .aligned = d->aligned,
                                 .canonical_scale = 224, .canonical_level = 4};
    for (int l = 0; l < d->levels; l++)
        m.scales[l] = d->spatial_scale[l];
    return m;
}

lg_status lg_cuda_roi_align_forward(lg_cuda *c, const lg_cuda_roi_align *d, const float *const *feat,
                                    const float *rois, size_t K, float *out, lg_error *err) {
    (void)c, (void)err;
    const lg_multiscale_roi_align m = multiscale(d);
    return lg_multiscale_roi_align_forward(NULL, &m, feat, d->H, d->W, INT_MAX / 2, d->C, rois, (int)K, out);
}

lg_status lg_cuda_roi_align_backward_ordered(lg_cuda *c, const lg_cuda_roi_align *d, int N,
                                             float *const *dfeat, const float *rois, size_t K,
                                             const float *dout, lg_error *err) {
    (void)c, (void)err;
    const lg_multiscale_roi_align m = multiscale(d);
    return lg_multiscale_roi_align_backward(NULL, &m, dout, d->H, d->W, N, d->C, rois, (int)K, dfeat);
}
