/* runtime/cuda/detect_body.h — per-thread bodies of the detection kernels
 * in runtime/cuda/detect.cu: anchors, the RPN loss (ground truth per image,
 * IoU, Matcher, the balanced sampler, box targets, BCE + smooth L1) and the
 * Fast R-CNN loss, forward and backward.
 *
 * As in body.h (whose LG_BODY/LG_HD conventions these follow), each body
 * computes one thread's share from an index and plain pointers; detect.cu
 * maps its grid onto the index, and tests/check_cuda_detect.c runs the same
 * text over the whole grid on the CPU and compares it with runtime/detect's
 * CPU kernels on the same inputs. The arithmetic follows those kernels
 * operation by operation: detect.cu is compiled with -fmad=false, so the
 * IoUs the matcher compares (+, -, *, / and min/max only) are the CPU's bit
 * for bit, and with the same splitmix64 draws the sampler picks the very
 * anchors the CPU picks. Only expf/logf/log1p (targets, losses) may differ
 * from glibc's in the last bit.
 *
 * Layouts: N images, A anchors per image, M ground truth slots per image
 * (lg_cuda_det_targets.max_boxes), boxes (x1, y1, x2, y2).
 */
#ifndef LGEN_CUDA_DETECT_BODY_H
#define LGEN_CUDA_DETECT_BODY_H

#include "body.h"

/* ---- anchors (lg_anchors_generate) ----------------------------------------- */

/* What every thread needs, made once on the host from lg_cuda_anchors:
 * each level's first row, grid and strides, and its cell anchors (ratio
 * major, then size, rounded half to even) that the grid shifts. */
typedef struct lg_cuk_anchor_grid {
    int levels;
    int first[LG_CUDA_MAX_LEVELS + 1]; /* first[levels]: the total */
    int feat_w[LG_CUDA_MAX_LEVELS], stride_h[LG_CUDA_MAX_LEVELS], stride_w[LG_CUDA_MAX_LEVELS];
    int cells[LG_CUDA_MAX_LEVELS];
    float cell[LG_CUDA_MAX_LEVELS][LG_CUDA_MAX_ANCHOR_CELLS][4];
} lg_cuk_anchor_grid;

/* Fills g; returns -1 - l for level l's bad sizes (map larger than the
 * image, no or too many cells, a ratio that is not positive), -100 for a
 * bad level count or image size, else 0. */
LG_BODY int lg_cuk_anchor_grid_init(const lg_cuda_anchors *d, lg_cuk_anchor_grid *g) {
    if (d->levels < 1 || d->levels > LG_CUDA_MAX_LEVELS || d->image_h < 1 || d->image_w < 1)
        return -100;
    g->levels = d->levels;
    g->first[0] = 0;
    for (int l = 0; l < d->levels; l++) {
        const lg_cuda_anchor_level *lv = &d->level[l];
        if (lv->feat_h < 1 || lv->feat_w < 1 || lv->feat_h > d->image_h || lv->feat_w > d->image_w ||
            lv->num_sizes < 1 || lv->num_ratios < 1 ||
            lv->num_sizes * lv->num_ratios > LG_CUDA_MAX_ANCHOR_CELLS)
            return -1 - l;
        int a = 0;
        for (int r = 0; r < lv->num_ratios; r++) {
            if (!(lv->aspect_ratios[r] > 0))
                return -1 - l;
            float h_ratio = sqrtf(lv->aspect_ratios[r]);
            float w_ratio = 1.0f / h_ratio;
            for (int s = 0; s < lv->num_sizes; s++, a++) {
                float ws = w_ratio * lv->sizes[s];
                float hs = h_ratio * lv->sizes[s];
                g->cell[l][a][0] = nearbyintf(-ws / 2.0f);
                g->cell[l][a][1] = nearbyintf(-hs / 2.0f);
                g->cell[l][a][2] = nearbyintf(ws / 2.0f);
                g->cell[l][a][3] = nearbyintf(hs / 2.0f);
            }
        }
        g->cells[l] = a;
        g->feat_w[l] = lv->feat_w;
        g->stride_h[l] = d->image_h / lv->feat_h;
        g->stride_w[l] = d->image_w / lv->feat_w;
        g->first[l + 1] = g->first[l] + lv->feat_h * lv->feat_w * a;
    }
    return 0;
}

/* Anchor row i (of g->first[g->levels]). */
LG_BODY void lg_cuk_anchor(size_t i, const lg_cuk_anchor_grid *g, float *anchors) {
    int l = 0;
    while (l + 1 < g->levels && (int)i >= g->first[l + 1])
        l++;
    int j = (int)i - g->first[l];
    int k = j % g->cells[l], loc = j / g->cells[l];
    float sx = (float)(loc % g->feat_w[l] * g->stride_w[l]);
    float sy = (float)(loc / g->feat_w[l] * g->stride_h[l]);
    float *o = anchors + 4 * i;
    o[0] = sx + g->cell[l][k][0];
    o[1] = sy + g->cell[l][k][1];
    o[2] = sx + g->cell[l][k][2];
    o[3] = sy + g->cell[l][k][3];
}

/* ---- the ground truth of image n (batch.c's image_targets) ----------------- */

/* One thread per image: its real boxes (without the difficult ones when
 * skip_difficult), in order, into boxes [N, M, 4], their labels shifted by
 * label_offset into labels [N, M], and their number into count[n]. A count
 * outside [0, M] is taken as 0..M (the CPU kernel refuses it). */
LG_BODY void lg_cuk_det_gt(size_t n, const lg_cuda_det_targets *t, float *boxes, int32_t *labels,
                           int32_t *count) {
    int M = t->max_boxes, real = t->count[n];
    real = real < 0 ? 0 : real > M ? M : real;
    size_t first = n * (size_t)M;
    int kept = 0;
    for (int i = 0; i < real; i++) {
        if (t->skip_difficult && t->difficult && t->difficult[first + i])
            continue;
        for (int k = 0; k < 4; k++)
            boxes[4 * (first + kept) + k] = t->boxes[4 * (first + i) + k];
        labels[first + kept] = t->labels[first + i] + t->label_offset;
        kept++;
    }
    count[n] = kept;
}

/* ---- RPN targets (rpn.c's lg_rpn_targets, for every image at once) --------- */

/* iou [N, M, A]: element (n, g, a) for g < count[n] (the rest is never read):
 * box_iou(ground truth, anchors), with the ground truth first as in
 * lg_box_iou(gt, anchors). */
LG_BODY void lg_cuk_rpn_iou(size_t idx, int M, int A, const float *gt, const int32_t *count,
                            const float *anchors, float *iou) {
    size_t a = idx % (size_t)A, ng = idx / (size_t)A, n = ng / (size_t)M;
    if ((int)(ng % (size_t)M) >= count[n])
        return;
    iou[idx] = lg_cuk_iou(gt + 4 * ng, anchors + 4 * a);
}

/* The highest IoU of ground truth slot ng = (n, g) over the anchors a =
 * part, part + parts, ... (the device reduces the parts of a block; the
 * maximum does not depend on the order). */
LG_BODY float lg_cuk_rpn_highest(size_t ng, size_t part, size_t parts, int A, const float *iou) {
    const float *row = iou + ng * (size_t)A;
    float h = -INFINITY;
    for (size_t a = part; a < (size_t)A; a += parts)
        h = row[a] > h ? row[a] : h;
    return h;
}

/* Anchor (n, a): the Matcher (fg/bg thresholds, low-quality matches allowed)
 * into labels [N, A] (1 matched, 0 background, -1 between) and matches
 * [N, A] (the ground truth index); clears keep [N, A] for the sampler. */
LG_BODY void lg_cuk_rpn_match(size_t idx, const lg_cuda_rpn_loss *d, int M, const float *iou,
                              const float *highest, const int32_t *count, int32_t *labels,
                              int32_t *matches, uint8_t *keep) {
    size_t n = idx / (size_t)d->A, a = idx % (size_t)d->A;
    lg_cuda_matcher m = {d->fg_iou_thresh, d->bg_iou_thresh, 1};
    int mark = lg_cuk_match(a, &m, iou + n * (size_t)M * d->A, count[n], d->A, highest + n * (size_t)M);
    labels[idx] = mark >= 0 ? 1 : mark == LG_CUDA_MATCH_BELOW_LOW ? 0 : -1;
    matches[idx] = mark;
    keep[idx] = 0;
}

/* The sampler's lists: the positives (label 1) and negatives (label 0) of
 * each image in anchor order, built in chunks of LG_CUK_CHUNK anchors:
 * count, prefix over the chunks, scatter. */
#define LG_CUK_CHUNK 1024

LG_BODY int lg_cuk_chunks(int A) {
    return (A + LG_CUK_CHUNK - 1) / LG_CUK_CHUNK;
}

/* Chunk nc = (n, chunk): its positives and negatives into pos_n[nc], neg_n[nc]. */
LG_BODY void lg_cuk_rpn_chunk_count(size_t nc, int A, const int32_t *labels, int32_t *pos_n,
                                    int32_t *neg_n) {
    int C = lg_cuk_chunks(A);
    size_t n = nc / (size_t)C;
    int lo = (int)(nc % (size_t)C) * LG_CUK_CHUNK, hi = lo + LG_CUK_CHUNK < A ? lo + LG_CUK_CHUNK : A;
    int p = 0, q = 0;
    for (int a = lo; a < hi; a++) {
        int32_t l = labels[n * (size_t)A + a];
        p += l == 1;
        q += l == 0;
    }
    pos_n[nc] = p;
    neg_n[nc] = q;
}

/* Image n: the chunks' counts into exclusive offsets (in place), the totals
 * into totals[2n] (positives) and totals[2n + 1] (negatives). */
LG_BODY void lg_cuk_rpn_chunk_prefix(size_t n, int A, int32_t *pos_n, int32_t *neg_n, int32_t *totals) {
    int C = lg_cuk_chunks(A);
    int32_t p = 0, q = 0;
    for (int k = 0; k < C; k++) {
        int32_t a = pos_n[n * (size_t)C + k], b = neg_n[n * (size_t)C + k];
        pos_n[n * (size_t)C + k] = p;
        neg_n[n * (size_t)C + k] = q;
        p += a;
        q += b;
    }
    totals[2 * n] = p;
    totals[2 * n + 1] = q;
}

/* Chunk nc: its positives' and negatives' anchor indices, in order, into
 * pos [N, A] and neg [N, A] at the chunk's offsets. */
LG_BODY void lg_cuk_rpn_chunk_scatter(size_t nc, int A, const int32_t *labels, const int32_t *pos_n,
                                      const int32_t *neg_n, int32_t *pos, int32_t *neg) {
    int C = lg_cuk_chunks(A);
    size_t n = nc / (size_t)C;
    int lo = (int)(nc % (size_t)C) * LG_CUK_CHUNK, hi = lo + LG_CUK_CHUNK < A ? lo + LG_CUK_CHUNK : A;
    int32_t p = pos_n[nc], q = neg_n[nc];
    for (int a = lo; a < hi; a++) {
        int32_t l = labels[n * (size_t)A + a];
        if (l == 1)
            pos[n * (size_t)A + p++] = a;
        else if (l == 0)
            neg[n * (size_t)A + q++] = a;
    }
}

/* boxes.c's choose: k of idx[n] to its front by a partial Fisher-Yates. */
LG_BODY void lg_cuk_choose(int32_t *idx, int n, int k, uint64_t *state) {
    for (int i = 0; i < k; i++) {
        uint64_t r = lg_cuk_splitmix(state);
        int j = i + (int)(r % (uint64_t)(n - i));
        int32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* Image n (lg_sample_balanced): at most batch_size_per_image *
 * positive_fraction positives, the rest of the batch negatives, drawn from
 * lg_detect_seed(seed, step, n); the chosen anchors get keep = 1. */
LG_BODY void lg_cuk_rpn_sample(size_t n, const lg_cuda_rpn_loss *d, const int32_t *totals,
                               int32_t *pos, int32_t *neg, uint8_t *keep) {
    int np = totals[2 * n], nn = totals[2 * n + 1];
    int want_pos = (int)(d->batch_size_per_image * d->positive_fraction);
    int kp = np < want_pos ? np : want_pos;
    int want_neg = d->batch_size_per_image - kp;
    int kn = nn < want_neg ? nn : want_neg;
    uint64_t state = lg_cuk_detect_seed(d->seed, d->step, (uint64_t)n);
    int32_t *p = pos + n * (size_t)d->A, *q = neg + n * (size_t)d->A;
    lg_cuk_choose(p, np, kp, &state);
    lg_cuk_choose(q, nn, kn, &state);
    uint8_t *k = keep + n * (size_t)d->A;
    for (int i = 0; i < kp; i++)
        k[p[i]] = 1;
    for (int i = 0; i < kn; i++)
        k[q[i]] = 1;
}

/* Anchor (n, a): a label the sampler did not choose becomes -1; a sampled
 * positive gets the RPN coder's deltas to its ground truth, the others zero
 * box targets [N, A, 4]. */
LG_BODY void lg_cuk_rpn_targets(size_t idx, int M, int A, const float *anchors, const float *gt,
                                const int32_t *matches, const uint8_t *keep, int32_t *labels,
                                float *box_targets) {
    size_t n = idx / (size_t)A, a = idx % (size_t)A;
    if (labels[idx] >= 0 && !keep[idx])
        labels[idx] = -1;
    float *t = box_targets + 4 * idx;
    if (labels[idx] != 1) {
        t[0] = t[1] = t[2] = t[3] = 0.0f;
        return;
    }
    const float *p = anchors + 4 * a, *g = gt + 4 * (n * (size_t)M + (size_t)matches[idx]);
    float ex_w = p[2] - p[0], ex_h = p[3] - p[1];
    float ex_cx = p[0] + 0.5f * ex_w, ex_cy = p[1] + 0.5f * ex_h;
    float gt_w = g[2] - g[0], gt_h = g[3] - g[1];
    float gt_cx = g[0] + 0.5f * gt_w, gt_cy = g[1] + 0.5f * gt_h;
    t[0] = 1.0f * (gt_cx - ex_cx) / ex_w;
    t[1] = 1.0f * (gt_cy - ex_cy) / ex_h;
    t[2] = 1.0f * logf(gt_w / ex_w);
    t[3] = 1.0f * logf(gt_h / ex_h);
}

/* ---- the losses (rpn.c, roi.c) --------------------------------------------- */

/* Smooth L1 of one difference (torch's formula), in double as the CPU sums. */
LG_BODY double lg_cuk_smooth_l1d(float diff, float beta) {
    double n = fabs((double)diff);
    return n < beta ? 0.5 * n * n / beta : n - 0.5 * beta;
}

LG_BODY float lg_cuk_smooth_l1_grad(float diff, float beta) {
    if (fabsf(diff) < beta)
        return diff / beta;
    return diff > 0 ? 1.0f : diff < 0 ? -1.0f : 0.0f;
}

/* Anchor i of [N * A]: adds its BCE-with-logits term to *obj and its smooth
 * L1 terms to *box; returns 1 when it is sampled (label >= 0). */
LG_BODY int lg_cuk_rpn_loss_term(size_t i, const float *objectness, const float *deltas,
                                 const int32_t *labels, const float *box_targets, float beta,
                                 double *obj, double *box) {
    if (labels[i] < 0)
        return 0;
    double x = objectness[i], y = labels[i] > 0 ? 1.0 : 0.0;
    *obj += fmax(x, 0.0) - x * y + log1p(exp(-fabs(x)));
    if (labels[i] > 0)
        for (int k = 0; k < 4; k++)
            *box += lg_cuk_smooth_l1d(deltas[4 * i + k] - box_targets[4 * i + k], beta);
    return 1;
}

/* Anchor i's gradients, given so = dloss_objectness / sampled and sb =
 * dloss_box / sampled (0 when nothing is sampled). */
LG_BODY void lg_cuk_rpn_loss_grad(size_t i, const float *objectness, const float *deltas,
                                  const int32_t *labels, const float *box_targets, float beta,
                                  float so, float sb, float *grad_objectness, float *grad_deltas) {
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
                labels[i] > 0 ? lg_cuk_smooth_l1_grad(deltas[4 * i + k] - box_targets[4 * i + k], beta) * sb
                              : 0.0f;
}

/* Fast R-CNN row r of R: adds its cross entropy to *ce and the smooth L1 of
 * its labelled class's deltas to *box; returns 1 for a real row (label in
 * [0, K); -1 is padding, and a label >= K, which the CPU kernel refuses,
 * counts nowhere). */
LG_BODY int lg_cuk_fastrcnn_term(size_t r, const float *logits, const float *box_regression,
                                 const int32_t *labels, const float *box_targets, int K, float beta,
                                 double *ce, double *box) {
    int l = labels[r];
    if (l < 0 || l >= K)
        return 0;
    const float *z = logits + r * (size_t)K;
    float mx = z[0], sum = 0;
    for (int k = 1; k < K; k++)
        mx = mx < z[k] ? z[k] : mx;
    for (int k = 0; k < K; k++)
        sum += expf(z[k] - mx);
    *ce += (double)mx + (double)logf(sum) - (double)z[l];
    if (l > 0) {
        const float *dl = box_regression + (r * (size_t)K + (size_t)l) * 4;
        for (int k = 0; k < 4; k++)
            *box += lg_cuk_smooth_l1d(dl[k] - box_targets[4 * r + k], beta);
    }
    return 1;
}

/* Row r's gradients (written: zero for padding rows), given sc =
 * dloss_classifier / rows and sb = dloss_box_reg / rows. */
LG_BODY void lg_cuk_fastrcnn_grad(size_t r, const float *logits, const float *box_regression,
                                  const int32_t *labels, const float *box_targets, int K, float beta,
                                  float sc, float sb, float *grad_logits, float *grad_box) {
    int l = labels[r];
    int real = l >= 0 && l < K;
    const float *z = logits + r * (size_t)K;
    if (grad_logits) {
        float *g = grad_logits + r * (size_t)K;
        if (!real) {
            for (int k = 0; k < K; k++)
                g[k] = 0.0f;
        } else {
            float mx = z[0], sum = 0;
            for (int k = 1; k < K; k++)
                mx = mx < z[k] ? z[k] : mx;
            for (int k = 0; k < K; k++)
                sum += (g[k] = expf(z[k] - mx));
            float scale = sc / sum;
            for (int k = 0; k < K; k++)
                g[k] *= scale;
            g[l] -= sc;
        }
    }
    if (grad_box) {
        float *g = grad_box + r * (size_t)K * 4;
        for (int k = 0; k < 4 * K; k++)
            g[k] = 0.0f;
        if (real && l > 0) {
            const float *dl = box_regression + (r * (size_t)K + (size_t)l) * 4;
            for (int k = 0; k < 4; k++)
                g[4 * l + k] = lg_cuk_smooth_l1_grad(dl[k] - box_targets[4 * r + k], beta) * sb;
        }
    }
}

/* ---- RoIAlign backward without atomics (roi.c's order) --------------------- */
/* body.h's lg_cuk_roi_align_backward scatters with atomic adds, so a
 * gradient pixel's sum comes in a different order from run to run. Here a
 * thread owns one row of one gradient plane (level l, image n, channel c),
 * zeroes it, and visits the RoIs, bins, sampling points and corners in the
 * CPU kernel's order (roi.c's roi_backward_task and roi_align_one_backward,
 * its weights and roundings included), adding only what falls in its row:
 * every pixel's sum is the CPU's, term for term. RoIs and sampling rows
 * that cannot touch the row are skipped before any arithmetic. Threads:
 * N x C x (the levels' heights summed). */

/* roi.c's roi_skipped: padding (negative image) or a non-finite box. */
LG_BODY int lg_cuk_roi_skipped(const float *roi) {
    return !(roi[0] >= 0) || !lg_cuk_finite(roi[1]) || !lg_cuk_finite(roi[2]) || !lg_cuk_finite(roi[3]) ||
           !lg_cuk_finite(roi[4]);
}

/* roi.c's level_of (LevelMapper, canonical 224 at level 4; NaN to the first). */
LG_BODY int lg_cuk_roi_level_of(const lg_cuda_roi_align *d, const float *roi) {
    float area = (roi[3] - roi[1]) * (roi[4] - roi[2]);
    float s = sqrtf(area);
    float lvl = floorf(4.0f + log2f(s / 224.0f) + 1e-6f);
    float lo = (float)d->k_min, hi = (float)(d->k_min + d->levels - 1);
    if (!(lvl >= lo))
        lvl = lo;
    if (lvl > hi)
        lvl = hi;
    return (int)lvl - d->k_min;
}

/* roi.c's adaptive_grid: ceil(size / bins), at most 256. */
LG_BODY int lg_cuk_roi_adaptive_grid(float size, int bins) {
    float g = ceilf(size / (float)bins);
    return g >= 0 && g <= 256 ? (int)g : g > 256 ? 256 : 0;
}

/* The number of rows the threads own: N x C x the levels' heights. */
LG_BODY size_t lg_cuk_roi_rows(const lg_cuda_roi_align *d, int N) {
    size_t h = 0;
    for (int l = 0; l < d->levels; l++)
        h += (size_t)d->H[l];
    return (size_t)N * d->C * h;
}

LG_BODY void lg_cuk_roi_align_backward_row(size_t idx, const lg_cuda_roi_align *d, int N,
                                           float *const *dfeat, const float *rois, size_t K,
                                           const float *dout) {
    int l = 0;
    while (l + 1 < d->levels && idx >= (size_t)N * d->C * d->H[l]) {
        idx -= (size_t)N * d->C * d->H[l];
        l++;
    }
    int H = d->H[l], W = d->W[l], PH = d->PH, PW = d->PW;
    int r = (int)(idx % (size_t)H);
    int c = (int)(idx / (size_t)H % (size_t)d->C), n = (int)(idx / ((size_t)H * d->C));
    float *plane = dfeat[l] + ((size_t)n * d->C + c) * (size_t)H * W;
    for (int i = 0; i < W; i++)
        plane[(size_t)r * W + i] = 0.0f;
    float scale = d->spatial_scale[l], offset = d->aligned ? 0.5f : 0.0f;
    size_t bins = (size_t)PH * PW;
    for (size_t k = 0; k < K; k++) {
        const float *roi = rois + 5 * k;
        if (lg_cuk_roi_skipped(roi) || (int)roi[0] != n || (d->levels > 1 && lg_cuk_roi_level_of(d, roi) != l))
            continue;
        /* roi.c's roi_geometry */
        float sw = roi[1] * scale - offset, sh = roi[2] * scale - offset;
        float ew = roi[3] * scale - offset, eh = roi[4] * scale - offset;
        float rw = ew - sw, rh = eh - sh;
        if (!d->aligned) {
            rw = fmaxf(rw, 1.0f);
            rh = fmaxf(rh, 1.0f);
        }
        /* its samples lie in [sh, sh + rh]: rows below floor(sh) - 1 or past
         * sh + rh + 1 take nothing from it */
        if ((float)r < floorf(sh) - 1.0f || (float)r > sh + rh + 1.0f)
            continue;
        float bin_h = rh / (float)PH, bin_w = rw / (float)PW;
        int gh = d->sampling_ratio > 0 ? d->sampling_ratio : lg_cuk_roi_adaptive_grid(rh, PH);
        int gw = d->sampling_ratio > 0 ? d->sampling_ratio : lg_cuk_roi_adaptive_grid(rw, PW);
        float count = (float)(gh * gw);
        int precalc = PH * PW * gh * gw <= 1024; /* roi.c's two paths round differently */
        const float *go_k = dout + (k * (size_t)d->C + (size_t)c) * bins;
        for (int ph = 0; ph < PH; ph++)
            for (int pw = 0; pw < PW; pw++) {
                float go = go_k[(size_t)ph * PW + pw];
                for (int iy = 0; iy < gh; iy++) {
                    float y = sh + (float)ph * bin_h + (float)(iy + .5f) * bin_h / (float)gh;
                    /* roi.c's bilinear_at, rows first */
                    if (!(y >= -1.0f && y <= (float)H))
                        continue;
                    float yy = y <= 0 ? 0 : y;
                    int y_low = (int)yy, y_high;
                    if (y_low >= H - 1) {
                        y_high = y_low = H - 1;
                        yy = (float)y_low;
                    } else {
                        y_high = y_low + 1;
                    }
                    if (y_low != r && y_high != r)
                        continue;
                    float ly = yy - (float)y_low, hy = 1.0f - ly;
                    for (int ix = 0; ix < gw; ix++) {
                        float x = sw + (float)pw * bin_w + (float)(ix + .5f) * bin_w / (float)gw;
                        if (!(x >= -1.0f && x <= (float)W))
                            continue;
                        float xx = x <= 0 ? 0 : x;
                        int x_low = (int)xx, x_high;
                        if (x_low >= W - 1) {
                            x_high = x_low = W - 1;
                            xx = (float)x_low;
                        } else {
                            x_high = x_low + 1;
                        }
                        float lx = xx - (float)x_low, hx = 1.0f - lx;
                        float w[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
                        int row[4] = {y_low, y_low, y_high, y_high};
                        int col[4] = {x_low, x_high, x_low, x_high};
                        for (int j = 0; j < 4; j++)
                            if (row[j] == r)
                                plane[(size_t)r * W + col[j]] += precalc ? go * (w[j] / count) : go * w[j] / count;
                    }
                }
            }
    }
}

#endif
