/* rpn.c — the region proposal network's plumbing (see lgen/detect.h):
 * head outputs into anchor order, proposal filtering (top-n per level,
 * decode, clip, drop small, NMS per level), training targets (match,
 * sample, encode) and the two RPN losses with their gradients.
 *
 * Inputs are the RPN head's outputs (computed by lgen/kernels.h
 * convolutions), anchors from boxes.c and the ground truth of a batch; the
 * outputs feed roi.c (proposals) and the trainer (losses). torchvision's
 * RegionProposalNetwork is the reference, function by function.
 */
#include "lgen/detect.h"
#include "detect_internal.h"

#include <math.h>
#include <string.h>

void lg_rpn_permute_forward(const float *x, int N, int A, int D, int H, int W, float *out,
                            int total, int offset) {
    size_t hw = (size_t)H * W;
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * A * D * hw;
        float *on = out + ((size_t)n * total + offset) * D;
        for (int a = 0; a < A; a++)
            for (int d = 0; d < D; d++) {
                const float *plane = xn + ((size_t)a * D + d) * hw;
                for (size_t p = 0; p < hw; p++)
                    on[(p * A + a) * D + d] = plane[p];
            }
    }
}

void lg_rpn_permute_backward(const float *grad_out, int N, int A, int D, int H, int W, int total,
                             int offset, float *grad_x) {
    size_t hw = (size_t)H * W;
    for (int n = 0; n < N; n++) {
        float *gn = grad_x + (size_t)n * A * D * hw;
        const float *on = grad_out + ((size_t)n * total + offset) * D;
        for (int a = 0; a < A; a++)
            for (int d = 0; d < D; d++) {
                float *plane = gn + ((size_t)a * D + d) * hw;
                for (size_t p = 0; p < hw; p++)
                    plane[p] = on[(p * A + a) * D + d];
            }
    }
}

/* ---- proposals ---------------------------------------------------------------- */

/* Workspace layout: sorting scratch for the largest level, then the
 * candidates (boxes, scores, levels, keep) and the NMS workspace. */
typedef struct proposal_ws {
    lg_det_scored *sort;
    float *boxes, *scores;
    int *levels, *keep;
    void *nms;
} proposal_ws;

static size_t proposal_layout(const lg_proposal_config *cfg, const int *per_level, int num_levels,
                              char *base, proposal_ws *ws) {
    size_t max_level = 1, cand = 0;
    for (int l = 0; l < num_levels; l++) {
        size_t n = per_level[l] > 0 ? (size_t)per_level[l] : 0;
        if (n > max_level)
            max_level = n;
        cand += n < (size_t)cfg->pre_nms_top_n ? n : (size_t)cfg->pre_nms_top_n;
    }
    if (cand == 0)
        cand = 1;
    size_t off = 0;
#define TAKE(field, bytes)                                                                         \
    do {                                                                                           \
        if (base)                                                                                  \
            ws->field = (void *)(base + off);                                                      \
        off += lg_det_align(bytes);                                                                \
    } while (0)
    TAKE(sort, max_level * sizeof(lg_det_scored));
    TAKE(boxes, cand * 4 * sizeof(float));
    TAKE(scores, cand * sizeof(float));
    TAKE(levels, cand * sizeof(int));
    TAKE(keep, cand * sizeof(int));
    TAKE(nms, lg_nms_workspace((int)cand));
#undef TAKE
    return off;
}

size_t lg_proposals_workspace(const lg_proposal_config *cfg, const int *anchors_per_level,
                              int num_levels) {
    if (!cfg || !anchors_per_level || num_levels < 1)
        return 0;
    return proposal_layout(cfg, anchors_per_level, num_levels, NULL, NULL);
}

lg_status lg_proposals(lg_ctx *ctx, const lg_proposal_config *cfg, const float *objectness,
                       const float *deltas, const float *anchors, const int *anchors_per_level,
                       int num_levels, int image_h, int image_w, void *workspace, float *boxes,
                       float *scores, int *count) {
    if (!cfg || !objectness || !deltas || !anchors || !anchors_per_level || !workspace || !boxes ||
        !scores || !count || num_levels < 1 || num_levels > LG_DETECT_MAX_LEVELS)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "proposals: bad arguments");
    if (cfg->pre_nms_top_n < 1 || cfg->post_nms_top_n < 1 || image_h < 1 || image_w < 1)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                            "proposals: pre_nms_top_n %d, post_nms_top_n %d, image %dx%d",
                            cfg->pre_nms_top_n, cfg->post_nms_top_n, image_h, image_w);
    proposal_ws ws;
    proposal_layout(cfg, anchors_per_level, num_levels, workspace, &ws);
    lg_box_coder coder = LG_BOX_CODER_RPN;
    int n = 0;
    size_t first = 0;
    for (int l = 0; l < num_levels; l++) {
        int na = anchors_per_level[l];
        if (na < 0)
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "proposals: level %d has %d anchors",
                                l, na);
        for (int i = 0; i < na; i++) { /* NaN last, so the order stays total */
            float o = objectness[first + i];
            ws.sort[i] = (lg_det_scored){o == o ? o : -INFINITY, (int)(first + i), l};
        }
        int k = na < cfg->pre_nms_top_n ? na : cfg->pre_nms_top_n;
        lg_det_select_top(ws.sort, (size_t)na, (size_t)k);
        lg_det_sort_scored(ws.sort, (size_t)k);
        for (int i = 0; i < k; i++) {
            size_t a = (size_t)ws.sort[i].index;
            float *b = ws.boxes + 4 * (size_t)n;
            lg_det_decode_one(&coder, deltas + 4 * a, anchors + 4 * a, b);
            lg_boxes_clip(b, 1, image_h, image_w);
            float prob = 1.0f / (1.0f + expf(-ws.sort[i].score));
            /* remove_small_boxes keeps (w >= min) & (h >= min): NaN goes. */
            if (!(b[2] - b[0] >= cfg->min_size && b[3] - b[1] >= cfg->min_size))
                continue;
            if (prob < cfg->score_thresh)
                continue;
            ws.scores[n] = prob;
            ws.levels[n] = l;
            n++;
        }
        first += (size_t)na;
    }
    int kept = 0;
    lg_status st = lg_batched_nms(ctx, ws.boxes, ws.scores, ws.levels, n, cfg->nms_thresh, ws.nms,
                                  ws.keep, &kept);
    if (st)
        return st;
    if (kept > cfg->post_nms_top_n)
        kept = cfg->post_nms_top_n;
    for (int i = 0; i < kept; i++) {
        memcpy(boxes + 4 * (size_t)i, ws.boxes + 4 * (size_t)ws.keep[i], 4 * sizeof(float));
        scores[i] = ws.scores[ws.keep[i]];
    }
    memset(boxes + 4 * (size_t)kept, 0, 4 * sizeof(float) * (size_t)(cfg->post_nms_top_n - kept));
    memset(scores + kept, 0, sizeof(float) * (size_t)(cfg->post_nms_top_n - kept));
    *count = kept;
    return LG_OK;
}

/* ---- targets ---------------------------------------------------------------- */

size_t lg_rpn_targets_workspace(int num_anchors, int max_gt) {
    size_t a = (size_t)(num_anchors > 0 ? num_anchors : 1);
    size_t g = (size_t)(max_gt > 0 ? max_gt : 1);
    return lg_det_align(a * g * sizeof(float)) + lg_det_align(a * sizeof(int)) +
           lg_det_align(lg_match_workspace((int)g)) + lg_det_align(lg_sample_workspace((int)a));
}

lg_status lg_rpn_targets(lg_ctx *ctx, const lg_rpn_config *cfg, const float *anchors,
                         int num_anchors, const float *gt_boxes, int num_gt, uint64_t seed,
                         void *workspace, int *labels, float *box_targets) {
    if (!cfg || num_anchors < 0 || num_gt < 0 || !workspace ||
        (num_anchors && (!anchors || !labels || !box_targets)) || (num_gt && !gt_boxes))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "rpn_targets: bad arguments");
    size_t a = (size_t)(num_anchors > 0 ? num_anchors : 1);
    size_t g = (size_t)(num_gt > 0 ? num_gt : 1);
    char *base = workspace;
    float *iou = (float *)base;
    int *matches = (int *)(base + lg_det_align(a * g * sizeof(float)));
    char *match_ws = (char *)matches + lg_det_align(a * sizeof(int));
    char *sample_ws = match_ws + lg_det_align(lg_match_workspace((int)g));
    lg_status st = lg_box_iou(ctx, gt_boxes, num_gt, anchors, num_anchors, iou);
    if (st)
        return st;
    lg_matcher m = {cfg->fg_iou_thresh, cfg->bg_iou_thresh, 1};
    if ((st = lg_match(ctx, &m, iou, num_gt, num_anchors, match_ws, matches)))
        return st;
    for (int i = 0; i < num_anchors; i++)
        labels[i] = matches[i] >= 0 ? 1 : matches[i] == LG_MATCH_BELOW_LOW ? 0 : -1;
    lg_sampler s = {cfg->batch_size_per_image, cfg->positive_fraction};
    if ((st = lg_sample_balanced(ctx, &s, labels, num_anchors, seed, sample_ws, NULL, NULL)))
        return st;
    lg_box_coder coder = LG_BOX_CODER_RPN;
    for (int i = 0; i < num_anchors; i++) {
        float *t = box_targets + 4 * (size_t)i;
        if (labels[i] == 1)
            lg_box_encode(NULL, &coder, gt_boxes + 4 * (size_t)matches[i], anchors + 4 * (size_t)i,
                          1, t);
        else
            t[0] = t[1] = t[2] = t[3] = 0.0f;
    }
    return LG_OK;
}

/* ---- losses -------------------------------------------------------------------- */

static lg_status check_rpn(lg_ctx *ctx, const float *objectness, const float *deltas,
                           const int *labels, const float *box_targets, int N, int A, float beta) {
    if (N < 0 || A < 0 || !(beta >= 0))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "rpn_loss: N %d, A %d, beta %g", N, A,
                            beta);
    if (N > 0 && A > 0 && (!objectness || !deltas || !labels || !box_targets))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "rpn_loss: missing input");
    return LG_OK;
}

static size_t count_sampled(const int *labels, size_t n) {
    size_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += labels[i] >= 0;
    return s;
}

lg_status lg_rpn_loss_forward(lg_ctx *ctx, const float *objectness, const float *deltas,
                              const int *labels, const float *box_targets, int N, int A, float beta,
                              float *loss_objectness, float *loss_box) {
    lg_status st = check_rpn(ctx, objectness, deltas, labels, box_targets, N, A, beta);
    if (st)
        return st;
    size_t total = (size_t)N * A, sampled = count_sampled(labels, total);
    double obj = 0, box = 0;
    for (size_t i = 0; i < total; i++) {
        if (labels[i] < 0)
            continue;
        double x = objectness[i], y = labels[i] > 0 ? 1.0 : 0.0;
        obj += fmax(x, 0.0) - x * y + log1p(exp(-fabs(x)));
        if (labels[i] > 0)
            for (int k = 0; k < 4; k++)
                box += lg_det_smooth_l1(deltas[4 * i + k] - box_targets[4 * i + k], beta);
    }
    if (loss_objectness)
        *loss_objectness = sampled ? (float)(obj / (double)sampled) : 0.0f;
    if (loss_box)
        *loss_box = sampled ? (float)(box / (double)sampled) : 0.0f;
    return LG_OK;
}

lg_status lg_rpn_loss_backward(lg_ctx *ctx, const float *objectness, const float *deltas,
                               const int *labels, const float *box_targets, int N, int A,
                               float beta, float dloss_objectness, float dloss_box,
                               float *grad_objectness, float *grad_deltas) {
    lg_status st = check_rpn(ctx, objectness, deltas, labels, box_targets, N, A, beta);
    if (st)
        return st;
    size_t total = (size_t)N * A, sampled = count_sampled(labels, total);
    float so = sampled ? dloss_objectness / (float)sampled : 0.0f;
    float sb = sampled ? dloss_box / (float)sampled : 0.0f;
    for (size_t i = 0; i < total; i++) {
        if (grad_objectness) {
            float g = 0.0f;
            if (labels[i] >= 0) {
                float p = 1.0f / (1.0f + expf(-objectness[i]));
                g = (p - (labels[i] > 0 ? 1.0f : 0.0f)) * so;
            }
            grad_objectness[i] = g;
        }
        if (grad_deltas)
            for (int k = 0; k < 4; k++)
                grad_deltas[4 * i + k] =
                    labels[i] > 0
                        ? lg_det_smooth_l1_grad(deltas[4 * i + k] - box_targets[4 * i + k], beta) *
                              sb
                        : 0.0f;
    }
    return LG_OK;
}
