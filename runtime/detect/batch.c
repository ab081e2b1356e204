/* batch.c — the detection ops over a batch of images (see "whole batches"
 * in lgen/detect.h).
 *
 * Generated step functions see a batch: the RPN head's outputs for N
 * images, lg_batch's padded ground truth (boxes [N, B, 4], 0-based labels,
 * counts), and a box head that runs on a RoI batch of fixed size. These
 * functions loop the per-image functions of rpn.c and roi.c over it,
 * shifting labels, seeding each image's sampler from (seed, step, image),
 * and laying RoIs out as rows (image, x1, y1, x2, y2). Proposals and
 * detections run one image per task on the pool; each image has its own
 * slice of the workspace, so the results do not depend on the threads.
 */
#include "lgen/detect.h"
#include "detect_internal.h"

#include <string.h>

/* The image-th image's ground truth as per-image arrays: boxes (copied to
 * box_buf without the difficult ones when t->skip_difficult) and, when
 * labels_out is given, shifted labels in label_buf. */
static lg_status image_targets(lg_ctx *ctx, const lg_det_targets *t, int image, int **labels_out,
                               int *label_buf, float *box_buf, const float **boxes, int *count) {
    int n = t->count[image];
    if (n < 0 || n > t->max_boxes)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "image %d has %d boxes of at most %d",
                            image, n, t->max_boxes);
    size_t first = (size_t)image * t->max_boxes;
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (t->skip_difficult && t->difficult && t->difficult[first + i])
            continue;
        memcpy(box_buf + 4 * kept, t->boxes + 4 * (first + i), 4 * sizeof(float));
        if (labels_out)
            label_buf[kept] = t->labels[first + i] + t->label_offset;
        kept++;
    }
    *boxes = box_buf;
    *count = kept;
    if (labels_out)
        *labels_out = label_buf;
    return LG_OK;
}

static lg_status check_targets(lg_ctx *ctx, const lg_det_targets *t, int N, const char *who) {
    if (!t || t->max_boxes < 0 || (N > 0 && !t->count) ||
        (t->max_boxes > 0 && (!t->boxes || !t->labels)))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "%s: bad ground truth", who);
    return LG_OK;
}

/* ---- RPN loss ---------------------------------------------------------------- */

size_t lg_rpn_loss_batch_workspace(int num_anchors, int max_boxes) {
    size_t B = (size_t)(max_boxes > 0 ? max_boxes : 1);
    return lg_det_align(lg_rpn_targets_workspace(num_anchors, max_boxes)) +
           lg_det_align(B * 4 * sizeof(float));
}

lg_status lg_rpn_loss_batch_forward(lg_ctx *ctx, const lg_rpn_loss_config *cfg,
                                    const float *objectness, const float *deltas,
                                    const float *anchors, int A, int N,
                                    const lg_det_targets *targets, uint64_t step, void *workspace,
                                    int *labels, float *box_targets, float *loss_objectness,
                                    float *loss_box) {
    if (!cfg || N < 0 || A < 0 || !labels || !box_targets || !workspace)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "rpn_loss: bad arguments");
    lg_status st = check_targets(ctx, targets, N, "rpn_loss");
    if (st)
        return st;
    float *box_buf = (float *)((char *)workspace +
                               lg_det_align(lg_rpn_targets_workspace(A, targets->max_boxes)));
    for (int n = 0; n < N; n++) {
        const float *gt = NULL;
        int ng = 0;
        if ((st = image_targets(ctx, targets, n, NULL, NULL, box_buf, &gt, &ng)) ||
            (st = lg_rpn_targets(ctx, &cfg->rpn, anchors, A, gt, ng,
                                 lg_detect_seed(cfg->seed, step, (uint64_t)n), workspace,
                                 labels + (size_t)n * A, box_targets + (size_t)n * A * 4)))
            return st;
    }
    return lg_rpn_loss_forward(ctx, objectness, deltas, labels, box_targets, N, A, cfg->beta,
                               loss_objectness, loss_box);
}

/* ---- proposals ------------------------------------------------------------------ */

typedef struct proposal_job {
    const lg_proposal_config *cfg;
    const float *objectness, *deltas, *anchors;
    const int *per_level;
    int num_levels, A, image_h, image_w;
    const int32_t *image_sizes;
    char *workspace;
    size_t ws_per_image;
    float *boxes, *scores;
    int *count;
    lg_status *status;
} proposal_job;

static void proposal_task(void *arg, size_t n) {
    const proposal_job *j = arg;
    size_t P = (size_t)j->cfg->post_nms_top_n;
    int h = j->image_sizes ? j->image_sizes[2 * n] : j->image_h;
    int w = j->image_sizes ? j->image_sizes[2 * n + 1] : j->image_w;
    j->status[n] =
        lg_proposals(NULL, j->cfg, j->objectness + n * j->A, j->deltas + n * j->A * 4, j->anchors,
                     j->per_level, j->num_levels, h, w, j->workspace + n * j->ws_per_image,
                     j->boxes + n * P * 4, j->scores + n * P, &j->count[n]);
}

static size_t proposal_ws(const lg_proposal_config *cfg, const int *per_level, int L) {
    return lg_det_align(lg_proposals_workspace(cfg, per_level, L));
}

size_t lg_proposals_batch_workspace(const lg_proposal_config *cfg, const int *anchors_per_level,
                                    int num_levels, int N) {
    if (!cfg || !anchors_per_level || num_levels < 1 || N < 1)
        return 0;
    return (size_t)N * proposal_ws(cfg, anchors_per_level, num_levels) +
           lg_det_align((size_t)N * sizeof(lg_status));
}

lg_status lg_proposals_batch(lg_ctx *ctx, const lg_proposal_config *cfg, const float *objectness,
                             const float *deltas, const float *anchors,
                             const int *anchors_per_level, int num_levels, int N, int image_h,
                             int image_w, const int32_t *image_sizes, void *workspace, float *boxes,
                             float *scores, int *count) {
    if (!cfg || !anchors_per_level || num_levels < 1 || num_levels > LG_DETECT_MAX_LEVELS ||
        N < 0 || !workspace || !count)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "proposals: bad arguments");
    int A = 0;
    for (int l = 0; l < num_levels; l++)
        A += anchors_per_level[l];
    size_t per = proposal_ws(cfg, anchors_per_level, num_levels);
    proposal_job j = {cfg,   objectness, deltas,  anchors,     anchors_per_level, num_levels,
                      A,     image_h,    image_w, image_sizes, workspace,         per,
                      boxes, scores,     count,   NULL};
    j.status = (lg_status *)((char *)workspace + (size_t)N * per);
    lg_parallel_for(ctx, (size_t)N, proposal_task, &j);
    for (int n = 0; n < N; n++)
        if (j.status[n]) /* again on this thread, for the message */
            return lg_proposals(
                ctx, cfg, objectness + (size_t)n * A, deltas + (size_t)n * A * 4, anchors,
                anchors_per_level, num_levels, image_sizes ? image_sizes[2 * n] : image_h,
                image_sizes ? image_sizes[2 * n + 1] : image_w, workspace, boxes, scores, count);
    return LG_OK;
}

void lg_rois_from_proposals(const float *boxes, const int *count, int N, int P, float *rois) {
    for (int n = 0; n < N; n++)
        for (int p = 0; p < P; p++) {
            float *r = rois + ((size_t)n * P + p) * 5;
            if (p < count[n]) {
                r[0] = (float)n;
                memcpy(r + 1, boxes + ((size_t)n * P + p) * 4, 4 * sizeof(float));
            } else {
                r[0] = -1.0f;
                r[1] = r[2] = r[3] = r[4] = 0.0f;
            }
        }
}

/* ---- RoI sampling ------------------------------------------------------------------ */

size_t lg_roi_sample_batch_workspace(const lg_roi_sample_config *cfg, int P, int max_boxes) {
    if (!cfg || cfg->batch_size_per_image < 1)
        return 0;
    size_t R = (size_t)cfg->batch_size_per_image;
    size_t B = (size_t)(max_boxes > 0 ? max_boxes : 1);
    return lg_det_align(lg_roi_sample_workspace(P, max_boxes)) +
           lg_det_align(R * 4 * sizeof(float)) + lg_det_align(B * sizeof(int)) +
           lg_det_align(B * 4 * sizeof(float));
}

lg_status lg_roi_sample_batch(lg_ctx *ctx, const lg_roi_sample_config *cfg, const float *proposals,
                              const int *proposal_count, int P, int N,
                              const lg_det_targets *targets, uint64_t seed, uint64_t step,
                              void *workspace, float *rois, int *labels, float *box_targets) {
    if (!cfg || cfg->batch_size_per_image < 1 || !proposal_count || P < 0 || N < 0 || !workspace ||
        !rois || !labels || !box_targets)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "roi_sample: bad arguments");
    lg_status st = check_targets(ctx, targets, N, "roi_sample");
    if (st)
        return st;
    int R = cfg->batch_size_per_image;
    char *base = workspace;
    void *ws = base;
    float *rois4 = (float *)(base + lg_det_align(lg_roi_sample_workspace(P, targets->max_boxes)));
    int *gt_labels = (int *)((char *)rois4 + lg_det_align((size_t)R * 4 * sizeof(float)));
    float *box_buf =
        (float *)((char *)gt_labels +
                  lg_det_align((size_t)(targets->max_boxes > 0 ? targets->max_boxes : 1) *
                               sizeof(int)));
    for (int n = 0; n < N; n++) {
        const float *gt = NULL;
        int ng = 0, *gl = NULL, count = 0;
        if (proposal_count[n] < 0 || proposal_count[n] > P)
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "roi_sample: image %d has %d proposals of at most %d", n,
                                proposal_count[n], P);
        if ((st = image_targets(ctx, targets, n, &gl, gt_labels, box_buf, &gt, &ng)) ||
            (st = lg_roi_sample(ctx, cfg, proposals + (size_t)n * P * 4, proposal_count[n], gt, gl,
                                ng, lg_detect_seed(seed, step, (uint64_t)n), ws, rois4,
                                labels + (size_t)n * R, box_targets + (size_t)n * R * 4, &count)))
            return st;
        for (int r = 0; r < R; r++) {
            float *o = rois + ((size_t)n * R + r) * 5;
            o[0] = r < count ? (float)n : -1.0f;
            memcpy(o + 1, rois4 + 4 * (size_t)r, 4 * sizeof(float));
        }
    }
    return LG_OK;
}

/* ---- detections --------------------------------------------------------------------- */

typedef struct detect_job {
    const lg_detect_config *cfg;
    const float *logits, *box_regression, *rois;
    int R, K, image_h, image_w;
    const int32_t *image_sizes;
    char *workspace;
    size_t ws_per_image;
    float *boxes, *scores;
    int *labels, *count;
    lg_status *status;
} detect_job;

static void detect_task(void *arg, size_t n) {
    const detect_job *j = arg;
    size_t R = (size_t)j->R, D = (size_t)j->cfg->detections_per_img;
    const float *rois = j->rois + n * R * 5;
    int valid = 0; /* real RoIs come first */
    while (valid < j->R && rois[5 * (size_t)valid] >= 0)
        valid++;
    j->status[n] = lg_det_detections_strided(
        NULL, j->cfg, j->logits + n * R * j->K, j->box_regression + n * R * j->K * 4, rois + 1, 5,
        valid, j->K, j->image_sizes ? j->image_sizes[2 * n] : j->image_h,
        j->image_sizes ? j->image_sizes[2 * n + 1] : j->image_w, j->workspace + n * j->ws_per_image,
        j->boxes + n * D * 4, j->scores + n * D, j->labels + n * D, &j->count[n]);
}

size_t lg_detections_batch_workspace(int R, int K, int N) {
    if (N < 1)
        return 0;
    return (size_t)N * lg_det_align(lg_detections_workspace(R, K)) +
           lg_det_align((size_t)N * sizeof(lg_status));
}

lg_status lg_detections_batch(lg_ctx *ctx, const lg_detect_config *cfg, const float *class_logits,
                              const float *box_regression, const float *rois, int N, int R, int K,
                              int image_h, int image_w, const int32_t *image_sizes, void *workspace,
                              float *boxes, float *scores, int *labels, int *count) {
    if (!cfg || N < 0 || R < 0 || K < 2 || !workspace || !rois || !count)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "detections: bad arguments");
    size_t per = lg_det_align(lg_detections_workspace(R, K));
    detect_job j = {cfg,     class_logits, box_regression, rois,      R,   K,
                    image_h, image_w,      image_sizes,    workspace, per, boxes,
                    scores,  labels,       count,          NULL};
    j.status = (lg_status *)((char *)workspace + (size_t)N * per);
    lg_parallel_for(ctx, (size_t)N, detect_task, &j);
    for (int n = 0; n < N; n++)
        if (j.status[n]) {
            size_t D = (size_t)cfg->detections_per_img;
            return lg_det_detections_strided(
                ctx, cfg, class_logits + (size_t)n * R * K, box_regression + (size_t)n * R * K * 4,
                rois + (size_t)n * R * 5 + 1, 5, R, K, image_sizes ? image_sizes[2 * n] : image_h,
                image_sizes ? image_sizes[2 * n + 1] : image_w, workspace, boxes + n * D * 4,
                scores + n * D, labels + n * D, &count[n]);
        }
    return LG_OK;
}
