/* lgen/detect.h — detection ops for Faster R-CNN (runtime/detect/).
 *
 * The pieces between a backbone and a VOC mAP, as torchvision builds them:
 * anchor generation, the box coder, IoU, the matcher, the balanced sampler,
 * RPN proposals (top-n, decode, clip, drop small, NMS per level), RPN and
 * Fast R-CNN losses with their gradients, RoIAlign (single and multi-scale)
 * forward and backward, post-processing into detections, and VOC AP/mAP.
 * Generated trainers call these (see the DETECT rows of lgen/ops.def);
 * convolutions, linear layers and plain losses live in lgen/kernels.h.
 *
 * Conventions. A box is four floats (x1, y1, x2, y2) in input-image pixels,
 * continuous coordinates (no +1). Variable counts are fixed maxima: the
 * caller sizes every buffer for the maximum and a function reports how many
 * rows it filled (`*count`); rows past the count are zeroed, labels there are
 * -1. Functions never allocate (except the VOC evaluator, an init/free
 * object that grows as images are added); those needing scratch space have a
 * `_workspace` function giving its size in bytes, allocated once by the
 * caller. As in lgen/kernels.h, the first argument is the compute context
 * (NULL: run on the calling thread, drop messages); bad arguments return
 * LG_ERR_ARG with a message in ctx->err; backward functions WRITE (=) their
 * input gradients. RoIAlign and the batch functions run on ctx's pool, with
 * results identical for any thread count. Defaults are torchvision's.
 * Randomness (the samplers) is a pure function of the seed passed in, so
 * runs are reproducible; see lg_detect_seed to mix a spec's seed with the
 * step and image.
 *
 * A Faster R-CNN training step with these (N images, FPN levels P2..P6,
 * every buffer and workspace allocated once at its maximum):
 *
 *     lg_anchors_generate(ctx, levels, 5, H, W, anchors, per_level);  // once
 *     // backbone + FPN + RPN head convs (kernels.h), then per level:
 *     lg_rpn_permute_forward(cls_l, N, A_l, 1, h_l, w_l, objectness, A, off_l);
 *     lg_rpn_permute_forward(box_l, N, A_l, 4, h_l, w_l, deltas, A, off_l);
 *     lg_rpn_loss_batch_forward(ctx, &rpn, objectness, deltas, anchors, A, N,
 *                               &truth, step, ws, labels, targets, &l_obj, &l_rpn);
 *     lg_proposals_batch(ctx, &train_cfg, objectness, deltas, anchors, per_level,
 *                        5, N, H, W, sizes, ws, props, scores, count);
 *     lg_roi_sample_batch(ctx, &roi, props, count, P, N, &truth, seed, step, ws,
 *                         rois, roi_labels, roi_targets);        // rois [N*512, 5]
 *     lg_multiscale_roi_align_forward(ctx, &pool, p2_to_p5, hs, ws_, N, 256,
 *                                     rois, N * 512, pooled);
 *     // TwoMLPHead + predictor (linear kernels) -> logits, box_regression
 *     lg_fastrcnn_loss_forward(ctx, logits, box_regression, roi_labels,
 *                              roi_targets, N * 512, K, 1.0f / 9, &l_cls, &l_box);
 *     // backward: lg_fastrcnn_loss_backward, linear backward,
 *     // lg_multiscale_roi_align_backward, lg_rpn_loss_backward,
 *     // lg_rpn_permute_backward, conv backward (proposals and sampling
 *     // carry no gradient, as in torchvision).
 *
 * Validation replaces the sampling with lg_rois_from_proposals (test
 * config), ends in lg_detections_batch and lg_voc_eval_add_batch, and
 * lg_voc_eval_compute at the end of the epoch gives val_map and per-class
 * AP; predict writes lg_detect_draw + lg_detect_write_png and
 * lg_detect_write_json.
 */
#ifndef LGEN_DETECT_H
#define LGEN_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "lgen/parallel.h"
#include "lgen/status.h"

#define LG_DETECT_MAX_LEVELS 8
/* torchvision's clamp on dw, dh before exp: log(1000 / 16). */
#define LG_BBOX_XFORM_CLIP 4.135166556742356f
/* Matcher marks for predictions with no ground truth assigned. */
#define LG_MATCH_BELOW_LOW (-1)
#define LG_MATCH_BETWEEN (-2)

/* A well-mixed 64-bit seed from a spec seed, the global step and the image
 * index in the batch (splitmix64 of the three). */
uint64_t lg_detect_seed(uint64_t seed, uint64_t step, uint64_t image);

/* ---- anchors ------------------------------------------------------------ */

/* One feature level of the anchor generator: the feature map's size and the
 * anchor sizes (square root of the area, in pixels) and aspect ratios
 * (height / width) used at every location. The stride is image / feature
 * size, integer division, as torchvision computes it. */
typedef struct lg_anchor_level {
    int feat_h, feat_w;
    int num_sizes;
    const float *sizes;
    int num_ratios;
    const float *aspect_ratios;
} lg_anchor_level;

/* Number of anchors over all levels: sum of feat_h*feat_w*sizes*ratios. */
int lg_anchors_count(const lg_anchor_level *levels, int num_levels);

/* Writes anchors[count][4] in torchvision's AnchorGenerator order: level,
 * then row y, column x, then aspect ratio, then size; cell anchors are
 * rounded (half to even) before the shift. anchors_per_level[num_levels]
 * (may be NULL) receives each level's count. */
lg_status lg_anchors_generate(lg_ctx *ctx, const lg_anchor_level *levels, int num_levels,
                              int image_h, int image_w, float *anchors, int *anchors_per_level);

/* ---- box coder, IoU ------------------------------------------------------ */

/* torchvision's BoxCoder: weights (wx, wy, ww, wh) and the clamp on dw, dh.
 * The RPN uses (1, 1, 1, 1), the box head (10, 10, 5, 5). */
typedef struct lg_box_coder {
    float wx, wy, ww, wh;
    float clip;
} lg_box_coder;

#define LG_BOX_CODER_RPN ((lg_box_coder){1.0f, 1.0f, 1.0f, 1.0f, LG_BBOX_XFORM_CLIP})
#define LG_BOX_CODER_ROI ((lg_box_coder){10.0f, 10.0f, 5.0f, 5.0f, LG_BBOX_XFORM_CLIP})

/* deltas[n][4] that take reference boxes ref[n] to target boxes gt[n]. */
lg_status lg_box_encode(lg_ctx *ctx, const lg_box_coder *coder, const float *gt, const float *ref,
                        int n, float *deltas);
/* out[n][4] = ref[n] moved by deltas[n]; dw, dh clamped at coder->clip. */
lg_status lg_box_decode(lg_ctx *ctx, const lg_box_coder *coder, const float *deltas,
                        const float *ref, int n, float *out);
/* Clamps boxes[n] into [0, image_w] x [0, image_h] in place. */
void lg_boxes_clip(float *boxes, int n, int image_h, int image_w);

/* iou[na][nb] between boxes a[na] and b[nb] (torchvision box_iou). */
lg_status lg_box_iou(lg_ctx *ctx, const float *a, int na, const float *b, int nb, float *iou);

/* ---- matcher and sampler ------------------------------------------------- */

/* torchvision's Matcher. For each prediction p, the best ground truth by
 * iou[g][p] (first on ties); matches[p] = that g when its IoU >= high,
 * LG_MATCH_BETWEEN when low <= IoU < high, LG_MATCH_BELOW_LOW below low.
 * allow_low_quality_matches restores the best g for every prediction whose
 * IoU equals some ground truth's highest IoU. num_gt == 0 marks all
 * BELOW_LOW. */
typedef struct lg_matcher {
    float high, low;
    int allow_low_quality_matches;
} lg_matcher;

size_t lg_match_workspace(int num_gt);
lg_status lg_match(lg_ctx *ctx, const lg_matcher *m, const float *iou, int num_gt, int num_pred,
                   void *workspace, int *matches);

/* BalancedPositiveNegativeSampler. labels[n]: >= 1 positive (a class id),
 * 0 negative, -1 ignored. Keeps at most batch_size_per_image *
 * positive_fraction positives (truncated) and fills the rest of the batch
 * with negatives, chosen uniformly at random from the seed; every label not
 * chosen becomes -1. Reports the numbers kept (either may be NULL). */
typedef struct lg_sampler {
    int batch_size_per_image;
    float positive_fraction;
} lg_sampler;

size_t lg_sample_workspace(int n);
lg_status lg_sample_balanced(lg_ctx *ctx, const lg_sampler *s, int *labels, int n, uint64_t seed,
                             void *workspace, int *num_pos, int *num_neg);

/* ---- NMS ------------------------------------------------------------------ */

/* Greedy NMS: keep[] receives indices into boxes[n], by decreasing score
 * (ties by index); a box is dropped when its IoU with a kept one is >
 * iou_thresh. lg_batched_nms only compares boxes with the same idxs[i]
 * (class or level), and merges the results by decreasing score. */
size_t lg_nms_workspace(int n);
lg_status lg_nms(lg_ctx *ctx, const float *boxes, const float *scores, int n, float iou_thresh,
                 void *workspace, int *keep, int *num_keep);
lg_status lg_batched_nms(lg_ctx *ctx, const float *boxes, const float *scores, const int *idxs,
                         int n, float iou_thresh, void *workspace, int *keep, int *num_keep);

/* ---- RPN ------------------------------------------------------------------ */

/* One level of an RPN head output, (N, A*D, H, W) with D = 1 (objectness) or
 * 4 (deltas), into anchor order rows out[N][total][D] starting at row
 * `offset` (torchvision's permute_and_flatten). Backward is the inverse
 * permutation, written (not accumulated) into grad_x. */
void lg_rpn_permute_forward(const float *x, int N, int A, int D, int H, int W, float *out,
                            int total, int offset);
void lg_rpn_permute_backward(const float *grad_out, int N, int A, int D, int H, int W, int total,
                             int offset, float *grad_x);

/* Proposal filtering for one image (torchvision RegionProposalNetwork
 * filter_proposals): per level the pre_nms_top_n highest logits, decoded on
 * their anchors (RPN coder), clipped, boxes narrower or shorter than
 * min_size dropped, sigmoid scores below score_thresh dropped, NMS per
 * level, then the post_nms_top_n best by score. boxes[post_nms_top_n][4]
 * and scores[post_nms_top_n] (probabilities) by decreasing score. */
typedef struct lg_proposal_config {
    int pre_nms_top_n;  /* 2000 training, 1000 testing */
    int post_nms_top_n; /* 2000 training, 1000 testing */
    float nms_thresh;   /* 0.7 */
    float min_size;     /* 1e-3 */
    float score_thresh; /* 0.0 */
} lg_proposal_config;

size_t lg_proposals_workspace(const lg_proposal_config *cfg, const int *anchors_per_level,
                              int num_levels);
lg_status lg_proposals(lg_ctx *ctx, const lg_proposal_config *cfg, const float *objectness,
                       const float *deltas, const float *anchors, const int *anchors_per_level,
                       int num_levels, int image_h, int image_w, void *workspace, float *boxes,
                       float *scores, int *count);

/* RPN training targets for one image: match anchors[A] to gt_boxes[num_gt]
 * (fg_iou 0.7, bg_iou 0.3, low-quality matches allowed), sample, encode.
 * labels[A]: 1 sampled positive, 0 sampled negative, -1 not sampled;
 * box_targets[A][4]: deltas to the matched box (zero where not positive). */
typedef struct lg_rpn_config {
    float fg_iou_thresh;      /* 0.7 */
    float bg_iou_thresh;      /* 0.3 */
    int batch_size_per_image; /* 256 */
    float positive_fraction;  /* 0.5 */
} lg_rpn_config;

size_t lg_rpn_targets_workspace(int num_anchors, int max_gt);
lg_status lg_rpn_targets(lg_ctx *ctx, const lg_rpn_config *cfg, const float *anchors,
                         int num_anchors, const float *gt_boxes, int num_gt, uint64_t seed,
                         void *workspace, int *labels, float *box_targets);

/* RPN loss over a batch of N images with A anchors each (torchvision
 * RegionProposalNetwork.compute_loss): objectness BCE-with-logits averaged
 * over the sampled anchors (labels >= 0) of all images, and smooth L1 (beta,
 * 1/9) summed over positives (labels == 1) divided by the number sampled.
 * Backward writes grad_objectness[N][A] = dloss_objectness * d/dobjectness
 * and grad_deltas[N][A][4] = dloss_box * d/ddeltas (either may be NULL).
 * With no anchor sampled both losses are 0 (torchvision would give NaN). */
lg_status lg_rpn_loss_forward(lg_ctx *ctx, const float *objectness, const float *deltas,
                              const int *labels, const float *box_targets, int N, int A, float beta,
                              float *loss_objectness, float *loss_box);
lg_status lg_rpn_loss_backward(lg_ctx *ctx, const float *objectness, const float *deltas,
                               const int *labels, const float *box_targets, int N, int A,
                               float beta, float dloss_objectness, float dloss_box,
                               float *grad_objectness, float *grad_deltas);

/* ---- RoI heads -------------------------------------------------------------- */

/* RoI sampling for one image (torchvision RoIHeads.select_training_samples):
 * the ground truth boxes are appended to proposals[num_proposals], matched
 * (fg 0.5, bg 0.5, no low-quality matches), sampled (512, 0.25) and encoded
 * with the RoI coder. Writes up to batch_size_per_image rows in proposal
 * index order: rois[][4], labels[] (class, 0 background, -1 padding) and
 * box_targets[][4]; *count rows are filled. */
typedef struct lg_roi_sample_config {
    float fg_iou_thresh;      /* 0.5 */
    float bg_iou_thresh;      /* 0.5 */
    int batch_size_per_image; /* 512 */
    float positive_fraction;  /* 0.25 */
    lg_box_coder coder;       /* LG_BOX_CODER_ROI */
} lg_roi_sample_config;

size_t lg_roi_sample_workspace(int num_proposals, int max_gt);
lg_status lg_roi_sample(lg_ctx *ctx, const lg_roi_sample_config *cfg, const float *proposals,
                        int num_proposals, const float *gt_boxes, const int *gt_labels, int num_gt,
                        uint64_t seed, void *workspace, float *rois, int *labels,
                        float *box_targets, int *count);

/* RoIAlign (torchvision.ops.roi_align) of rois[K][5] = (batch index, x1,
 * y1, x2, y2) on input[N][C][H][W] into output[K][C][pooled_h][pooled_w].
 * sampling_ratio <= 0 is adaptive (ceil(roi size / pooled size)). A RoI
 * whose batch index is negative is padding: zero output, no gradient.
 * Backward writes grad_input (all of it: zero where no RoI samples). */
typedef struct lg_roi_align_config {
    int pooled_h, pooled_w; /* 7, 7 */
    float spatial_scale;    /* 1 / feature stride */
    int sampling_ratio;     /* 2 in the box head; -1 adaptive */
    int aligned;            /* 0: torchvision's default, 1: half-pixel offset */
} lg_roi_align_config;

lg_status lg_roi_align_forward(lg_ctx *ctx, const lg_roi_align_config *cfg, const float *input,
                               int N, int C, int H, int W, const float *rois, int K, float *output);
lg_status lg_roi_align_backward(lg_ctx *ctx, const lg_roi_align_config *cfg,
                                const float *grad_output, int N, int C, int H, int W,
                                const float *rois, int K, float *grad_input);

/* MultiScaleRoIAlign over FPN levels: each RoI is pooled from the level
 * torchvision's LevelMapper picks, floor(4 + log2(sqrt(area) / 224) + 1e-6)
 * clamped to [k_min, k_max] where the levels' spatial scales are 2^-k_min
 * .. 2^-k_max (scales[] are those reciprocal strides, finest first). */
typedef struct lg_multiscale_roi_align {
    int num_levels;
    float scales[LG_DETECT_MAX_LEVELS];
    int pooled_h, pooled_w;
    int sampling_ratio;
    int aligned;
    int canonical_scale; /* 224 */
    int canonical_level; /* 4 */
} lg_multiscale_roi_align;

/* levels[K] (0-based into scales) for rois[K][5]. */
lg_status lg_roi_levels(lg_ctx *ctx, const lg_multiscale_roi_align *cfg, const float *rois, int K,
                        int *levels);
/* features[l] is (N, C, heights[l], widths[l]); grad_features likewise,
 * written (every level, zero where no RoI samples). */
lg_status lg_multiscale_roi_align_forward(lg_ctx *ctx, const lg_multiscale_roi_align *cfg,
                                          const float *const *features, const int *heights,
                                          const int *widths, int N, int C, const float *rois, int K,
                                          float *output);
lg_status lg_multiscale_roi_align_backward(lg_ctx *ctx, const lg_multiscale_roi_align *cfg,
                                           const float *grad_output, const int *heights,
                                           const int *widths, int N, int C, const float *rois,
                                           int K, float *const *grad_features);

/* Fast R-CNN loss (torchvision fastrcnn_loss) over R rows:
 * class_logits[R][K], box_regression[R][K*4], labels[R] (-1 rows are
 * padding and count nowhere), box_targets[R][4]. loss_classifier is the
 * cross entropy averaged over the non-padding rows; loss_box_reg is smooth
 * L1 (beta) of the labelled class's deltas over foreground rows, summed and
 * divided by the non-padding count. Backward as for the RPN loss. */
lg_status lg_fastrcnn_loss_forward(lg_ctx *ctx, const float *class_logits,
                                   const float *box_regression, const int *labels,
                                   const float *box_targets, int R, int K, float beta,
                                   float *loss_classifier, float *loss_box_reg);
lg_status lg_fastrcnn_loss_backward(lg_ctx *ctx, const float *class_logits,
                                    const float *box_regression, const int *labels,
                                    const float *box_targets, int R, int K, float beta,
                                    float dloss_classifier, float dloss_box_reg, float *grad_logits,
                                    float *grad_box);

/* Post-processing for one image (torchvision RoIHeads.postprocess_detections):
 * softmax, decode every class's box on rois[R] (RoI coder), clip, drop the
 * background class, scores <= score_thresh and boxes under min_size, NMS
 * per class, keep the detections_per_img best. boxes[D][4], scores[D],
 * labels[D] (class ids >= 1) with D = detections_per_img. */
typedef struct lg_detect_config {
    float score_thresh;     /* 0.05 */
    float nms_thresh;       /* 0.5 */
    int detections_per_img; /* 100 */
    float min_size;         /* 1e-2 */
    lg_box_coder coder;     /* LG_BOX_CODER_ROI */
} lg_detect_config;

size_t lg_detections_workspace(int R, int K);
lg_status lg_detections(lg_ctx *ctx, const lg_detect_config *cfg, const float *class_logits,
                        const float *box_regression, const float *rois, int R, int K, int image_h,
                        int image_w, void *workspace, float *boxes, float *scores, int *labels,
                        int *count);

/* ---- whole batches ---------------------------------------------------------------- */

/* The functions above work on one image; these run a batch of N images the
 * way the generated step functions need (the ops.def rows), with the ground
 * truth as lg_batch (lgen/data.h) holds it. Detection class ids start at 1
 * (0 is background): label_offset is added to the batch's labels, 1 for a
 * data set whose classes are numbered from 0 (VOC), 0 when the class list
 * already starts with a background entry. A RoI batch is rois[N * R][5] =
 * (image, x1, y1, x2, y2), image R rows per image, padding rows with image
 * -1 after each image's real ones: RoIAlign and the box head take it as is.
 * Images run in parallel on ctx's pool where that pays (proposals,
 * detections); results do not depend on the thread count. */
typedef struct lg_det_targets {
    int max_boxes;            /* B */
    const float *boxes;       /* [N, B, 4] */
    const int32_t *labels;    /* [N, B] (-1 padding) */
    const uint8_t *difficult; /* [N, B], or NULL */
    const int32_t *count;     /* [N] real boxes per image */
    int label_offset;         /* added to labels: 1 for 0-based class lists */
    int skip_difficult;       /* 1: training ignores difficult boxes (py-faster-rcnn's
                               * use_diff = False); evaluation always sees them */
} lg_det_targets;

/* RPN training loss of a batch: per image, targets from anchors[A] and the
 * ground truth (sampled with lg_detect_seed(seed, step, image)), then
 * lg_rpn_loss_forward. labels[N][A] and box_targets[N][A][4] are kept for
 * lg_rpn_loss_backward. */
typedef struct lg_rpn_loss_config {
    lg_rpn_config rpn;
    float beta;    /* 1/9 */
    uint64_t seed; /* the spec's seed */
} lg_rpn_loss_config;

size_t lg_rpn_loss_batch_workspace(int num_anchors, int max_boxes);
lg_status lg_rpn_loss_batch_forward(lg_ctx *ctx, const lg_rpn_loss_config *cfg,
                                    const float *objectness, const float *deltas,
                                    const float *anchors, int A, int N,
                                    const lg_det_targets *targets, uint64_t step, void *workspace,
                                    int *labels, float *box_targets, float *loss_objectness,
                                    float *loss_box);

/* Proposals of N images: boxes[N][P][4], scores[N][P], count[N] with
 * P = cfg->post_nms_top_n (the caller picks the training or test config).
 * Boxes are clipped to image_sizes[n] = (h, w) of each image before padding,
 * or to image_h x image_w when image_sizes is NULL. */
size_t lg_proposals_batch_workspace(const lg_proposal_config *cfg, const int *anchors_per_level,
                                    int num_levels, int N);
lg_status lg_proposals_batch(lg_ctx *ctx, const lg_proposal_config *cfg, const float *objectness,
                             const float *deltas, const float *anchors,
                             const int *anchors_per_level, int num_levels, int N, int image_h,
                             int image_w, const int32_t *image_sizes, void *workspace, float *boxes,
                             float *scores, int *count);

/* RoI batch from proposals (evaluation): rois[N * P][5] from boxes[N][P][4]
 * and count[N]. */
void lg_rois_from_proposals(const float *boxes, const int *count, int N, int P, float *rois);

/* RoI sampling of N images (training): from proposals boxes[N][P][4] and
 * count[N], seeded with lg_detect_seed(seed, step, image); writes the RoI
 * batch rois[N * R][5], labels[N * R] (-1 padding) and box_targets[N * R][4]
 * with R = cfg->batch_size_per_image. */
size_t lg_roi_sample_batch_workspace(const lg_roi_sample_config *cfg, int P, int max_boxes);
lg_status lg_roi_sample_batch(lg_ctx *ctx, const lg_roi_sample_config *cfg, const float *proposals,
                              const int *proposal_count, int P, int N,
                              const lg_det_targets *targets, uint64_t seed, uint64_t step,
                              void *workspace, float *rois, int *labels, float *box_targets);

/* Detections of N images from the box head's outputs on a RoI batch of R
 * rows per image: class_logits[N * R][K], box_regression[N * R][K * 4];
 * boxes[N][D][4], scores[N][D], labels[N][D] (class ids >= 1, -1 padding),
 * count[N] with D = cfg->detections_per_img; clipping as for
 * lg_proposals_batch. */
size_t lg_detections_batch_workspace(int R, int K, int N);
lg_status lg_detections_batch(lg_ctx *ctx, const lg_detect_config *cfg, const float *class_logits,
                              const float *box_regression, const float *rois, int N, int R, int K,
                              int image_h, int image_w, const int32_t *image_sizes, void *workspace,
                              float *boxes, float *scores, int *labels, int *count);

/* ---- predict output ----------------------------------------------------------------- */

/* An 8-bit RGB (H, W, 3) copy of a float image chw (C = 1 or 3, values in
 * [0, 1] after undoing normalisation: x * std[c] + mean[c]; mean and std
 * may be NULL). */
lg_status lg_detect_image_to_rgb(const float *chw, int C, int H, int W, const float *mean,
                                 const float *std, unsigned char *rgb, lg_error *err);
/* Draws count detections on rgb (H, W, 3): box outlines in a colour per
 * label and a tag "name score" (class_names[label] when label < num_names,
 * else the number; scores may be NULL) in a built-in 5x7 font. */
lg_status lg_detect_draw(unsigned char *rgb, int H, int W, const float *boxes, const float *scores,
                         const int *labels, int count, const char *const *class_names,
                         int num_names, lg_error *err);
lg_status lg_detect_write_png(const char *path, const unsigned char *rgb, int H, int W,
                              lg_error *err);
/* Detections of N images (as lg_detections_batch writes them, D per image)
 * as JSON: [{"image": name or index, "detections": [{"box": [x1, y1, x2,
 * y2], "score": s, "label": l, "class": name}, ...]}, ...]. */
lg_status lg_detect_write_json(const char *path, const char *const *image_names, int N,
                               const float *boxes, const float *scores, const int *labels,
                               const int *count, int D, const char *const *class_names,
                               int num_names, lg_error *err);

/* ---- VOC evaluation -------------------------------------------------------- */

/* The PASCAL VOC devkit's AP (voc_eval.py): per class, detections of all
 * images by decreasing score; a detection is a true positive when its best
 * IoU with a ground truth box of its class in its image is > iou_thresh and
 * that box is not yet taken; matching a `difficult` box counts neither way;
 * difficult boxes are not in the positives. AP is the area under the
 * interpolated precision/recall curve, or the VOC2007 11-point average.
 * pixel_offset adds the devkit's +1 to widths and heights (integer pixel
 * boxes); leave it 0 for continuous coordinates. */
typedef struct lg_voc_map_config {
    float iou_thresh;  /* 0.5 */
    int use_07_metric; /* 0: area under the curve, 1: 11-point */
    int pixel_offset;  /* 0 */
} lg_voc_map_config;

typedef struct lg_voc_det {
    size_t seq; /* order of arrival: the tie-break of equal scores */
    int image, label;
    float score;
    float box[4];
} lg_voc_det;

typedef struct lg_voc_gt {
    size_t seq; /* order of arrival (the devkit takes the first best box) */
    int image, label, difficult;
    float box[4];
} lg_voc_gt;

/* Accumulates detections and ground truth of a validation epoch. */
typedef struct lg_voc_eval {
    int num_classes;
    int num_images;
    lg_voc_det *dets;
    size_t num_dets, cap_dets;
    lg_voc_gt *gts;
    size_t num_gts, cap_gts;
} lg_voc_eval;

lg_status lg_voc_eval_init(lg_voc_eval *ev, int num_classes, lg_error *err);
/* Adds one image: det_boxes[num_det][4], det_scores, det_labels; gt_boxes
 * [num_gt][4], gt_labels, gt_difficult (lg_batch.box_difficult; may be
 * NULL: none difficult).
 * Labels outside [0, num_classes) are an error. */
lg_status lg_voc_eval_add(lg_voc_eval *ev, const float *det_boxes, const float *det_scores,
                          const int *det_labels, int num_det, const float *gt_boxes,
                          const int *gt_labels, const uint8_t *gt_difficult, int num_gt,
                          lg_error *err);
/* ap[num_classes]: each class's AP, NAN for a class without (non-difficult)
 * ground truth; *map: the mean over the other classes (NAN if none). */
lg_status lg_voc_eval_compute(lg_voc_eval *ev, const lg_voc_map_config *cfg, float *ap, float *map,
                              lg_error *err);
/* Adds N images: detections as lg_detections_batch writes them (D per
 * image) and the batch's ground truth (labels shifted by label_offset). */
lg_status lg_voc_eval_add_batch(lg_voc_eval *ev, const float *boxes, const float *scores,
                                const int *labels, const int *count, int N, int D,
                                const lg_det_targets *targets, lg_error *err);
void lg_voc_eval_reset(lg_voc_eval *ev);
void lg_voc_eval_free(lg_voc_eval *ev);

#endif
