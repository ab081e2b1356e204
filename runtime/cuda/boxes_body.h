/* runtime/cuda/boxes_body.h — per-thread bodies of the device proposals,
 * RoI sampling and detections (launchers: boxes.cu; interface: the
 * "proposals, RoI sampling, detections" part of lgen/cuda.h).
 *
 * As in body.h, each body computes one thread's share from an index and
 * plain pointers, compiles as plain C, and tests/check_cuda_boxes.c runs it
 * over its whole grid on the CPU against runtime/detect's kernels on the
 * same inputs: the same boxes kept in the same order, the same RoIs drawn
 * for a seed. The arithmetic is the CPU kernels' term for term
 * (lg_det_decode_one, lg_box_encode, lg_boxes_clip, nms_sorted's IoU), and
 * boxes.cu is compiled with -fmad=false, so only expf/logf may round
 * differently on a device.
 *
 * Bodies take their configuration by value (a kernel argument on the
 * device). The pieces:
 *   - keys: a score and an index in one uint64, larger for a better score,
 *     then for a lower index (NaN scores as -inf, -0 as +0): the CPU's
 *     total order (cmp_score_desc), so sorting keys descending is its sort;
 *   - a bitonic sort of a power-of-two run of keys per segment (image), one
 *     compare-exchange per thread and launch;
 *   - stable compaction of flagged elements per segment in chunks of
 *     LG_CUK_CHUNK: count per chunk, scan per segment, scatter per chunk;
 *   - segmented NMS: the sorted candidates' IoU bit masks (only within a
 *     group: a level or a class), then one thread per image walking them.
 */
#ifndef LGEN_CUDA_BOXES_BODY_H
#define LGEN_CUDA_BOXES_BODY_H

#include "body.h"

#define LG_CUK_CHUNK 256

/* ---- keys ------------------------------------------------------------------ */

/* A float's bits in an order-preserving uint32 (NaN is the caller's). */
LG_BODY uint32_t lg_cuk_order_bits(float f) {
    if (f == 0.0f)
        f = 0.0f; /* -0 and +0 are equal scores */
    uint32_t u = lg_cuk_f2u(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

LG_BODY float lg_cuk_unorder_bits(uint32_t u) {
    return lg_cuk_u2f((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

/* The key of score s at index i of a run indexed with ibits bits, in
 * group rank g (a larger g sorts first). 0 is below every real key. */
LG_BODY uint64_t lg_cuk_score_key(float s, uint32_t i, int ibits, uint32_t g) {
    if (s != s)
        s = -INFINITY;
    uint64_t imax = ((uint64_t)1 << ibits) - 1;
    uint64_t key = ((uint64_t)lg_cuk_order_bits(s) << ibits) | (imax - i);
    return g ? key | (uint64_t)g << (32 + ibits) : key;
}

LG_BODY uint32_t lg_cuk_key_index(uint64_t key, int ibits) {
    uint64_t imax = ((uint64_t)1 << ibits) - 1;
    return (uint32_t)(imax - (key & imax));
}

LG_BODY float lg_cuk_key_score(uint64_t key, int ibits) {
    return lg_cuk_unorder_bits((uint32_t)(key >> ibits));
}

/* Smallest power of two >= n (at least 2), and its log2. */
LG_BODY size_t lg_cuk_pow2(size_t n, int *log2) {
    size_t s = 2;
    int b = 1;
    while (s < n)
        s <<= 1, b++;
    if (log2)
        *log2 = b;
    return s;
}

/* ---- bitonic sort (descending) ------------------------------------------------ */

/* One compare-exchange of stage (k, j) for segments of S keys; t runs over
 * segments * S / 2. The host runs for k = 2..S (doubling), j = k/2..1
 * (halving) every t; the device one launch per (k, j). */
LG_BODY void lg_cuk_bitonic_step(size_t t, uint64_t *keys, size_t S, size_t k, size_t j) {
    size_t half = S / 2, seg = t / half, p = t % half;
    size_t i = 2 * j * (p / j) + p % j; /* bit j of i is clear; its partner is i + j */
    uint64_t *v = keys + seg * S;
    uint64_t a = v[i], b = v[i + j];
    int descending = (i & k) == 0;
    if (descending ? a < b : a > b) {
        v[i] = b;
        v[i + j] = a;
    }
}

/* ---- stable compaction ------------------------------------------------------- */

/* counts[t] = flagged elements of chunk t (segments of seg_len flags,
 * chunks of LG_CUK_CHUNK, nch per segment). */
LG_BODY void lg_cuk_chunk_count(size_t t, const int32_t *flags, size_t seg_len, size_t nch,
                                int32_t *counts) {
    size_t s = t / nch, ch = t % nch, i0 = ch * LG_CUK_CHUNK;
    int32_t n = 0;
    for (size_t i = i0; i < i0 + LG_CUK_CHUNK && i < seg_len; i++)
        n += flags[s * seg_len + i] != 0;
    counts[t] = n;
}

/* Segment s: counts become exclusive offsets, total[s] the sum. */
LG_BODY void lg_cuk_chunk_scan(size_t s, int32_t *counts, size_t nch, int32_t *total) {
    int32_t sum = 0;
    for (size_t ch = 0; ch < nch; ch++) {
        int32_t n = counts[s * nch + ch];
        counts[s * nch + ch] = sum;
        sum += n;
    }
    total[s] = sum;
}

/* index[s * seg_len + rank] = the local index of the rank-th flagged
 * element of segment s (index order). */
LG_BODY void lg_cuk_chunk_scatter(size_t t, const int32_t *flags, size_t seg_len, size_t nch,
                                  const int32_t *offsets, int32_t *index) {
    size_t s = t / nch, ch = t % nch, i0 = ch * LG_CUK_CHUNK;
    int32_t pos = offsets[t];
    for (size_t i = i0; i < i0 + LG_CUK_CHUNK && i < seg_len; i++)
        if (flags[s * seg_len + i])
            index[s * seg_len + (size_t)pos++] = (int32_t)i;
}

/* ---- box arithmetic as runtime/detect does it ------------------------------------ */

LG_BODY float lg_cuk_det_max(float a, float b) {
    return a < b ? b : a;
}

LG_BODY float lg_cuk_det_min(float a, float b) {
    return b < a ? b : a;
}

/* lg_det_decode_one: d moves box b; o gets the result. */
LG_BODY void lg_cuk_det_decode(const lg_cuda_box_coder *c, const float *d, const float *b, float *o) {
    float w = b[2] - b[0], h = b[3] - b[1];
    float cx = b[0] + 0.5f * w, cy = b[1] + 0.5f * h;
    float dx = d[0] / c->wx, dy = d[1] / c->wy;
    float dw = d[2] / c->ww, dh = d[3] / c->wh;
    if (dw > c->clip)
        dw = c->clip;
    if (dh > c->clip)
        dh = c->clip;
    float pcx = dx * w + cx, pcy = dy * h + cy;
    float pw = expf(dw) * w, ph = expf(dh) * h;
    float hw = 0.5f * pw, hh = 0.5f * ph;
    o[0] = pcx - hw;
    o[1] = pcy - hh;
    o[2] = pcx + hw;
    o[3] = pcy + hh;
}

/* lg_boxes_clip of one box. */
LG_BODY void lg_cuk_det_clip(float *b, float H, float W) {
    b[0] = lg_cuk_det_min(lg_cuk_det_max(b[0], 0.0f), W);
    b[1] = lg_cuk_det_min(lg_cuk_det_max(b[1], 0.0f), H);
    b[2] = lg_cuk_det_min(lg_cuk_det_max(b[2], 0.0f), W);
    b[3] = lg_cuk_det_min(lg_cuk_det_max(b[3], 0.0f), H);
}

/* remove_small_boxes keeps (w >= min) & (h >= min): NaN goes. */
LG_BODY int lg_cuk_det_big_enough(const float *b, float min_size) {
    return b[2] - b[0] >= min_size && b[3] - b[1] >= min_size;
}

/* IoU of a and b as lg_box_iou and nms_sorted compute it. */
LG_BODY float lg_cuk_det_iou(const float *a, const float *b) {
    float area_a = (a[2] - a[0]) * (a[3] - a[1]);
    float area_b = (b[2] - b[0]) * (b[3] - b[1]);
    float w = lg_cuk_det_max(lg_cuk_det_min(a[2], b[2]) - lg_cuk_det_max(a[0], b[0]), 0.0f);
    float h = lg_cuk_det_max(lg_cuk_det_min(a[3], b[3]) - lg_cuk_det_max(a[1], b[1]), 0.0f);
    float inter = w * h;
    return inter / (area_a + area_b - inter);
}

/* IoU of an earlier box a and a later box b as nms_sorted computes it. */
LG_BODY float lg_cuk_nms_iou(const float *a, const float *b) {
    float aa = (a[2] - a[0]) * (a[3] - a[1]);
    float ab = (b[2] - b[0]) * (b[3] - b[1]);
    float w = lg_cuk_det_max(0.0f, lg_cuk_det_min(a[2], b[2]) - lg_cuk_det_max(a[0], b[0]));
    float h = lg_cuk_det_max(0.0f, lg_cuk_det_min(a[3], b[3]) - lg_cuk_det_max(a[1], b[1]));
    float inter = w * h;
    return inter / (aa + ab - inter);
}

/* lg_box_encode of one box: deltas taking ref to gt. */
LG_BODY void lg_cuk_det_encode(const lg_cuda_box_coder *c, const float *g, const float *p, float *d) {
    float ex_w = p[2] - p[0], ex_h = p[3] - p[1];
    float ex_cx = p[0] + 0.5f * ex_w, ex_cy = p[1] + 0.5f * ex_h;
    float gt_w = g[2] - g[0], gt_h = g[3] - g[1];
    float gt_cx = g[0] + 0.5f * gt_w, gt_cy = g[1] + 0.5f * gt_h;
    d[0] = c->wx * (gt_cx - ex_cx) / ex_w;
    d[1] = c->wy * (gt_cy - ex_cy) / ex_h;
    d[2] = c->ww * logf(gt_w / ex_w);
    d[3] = c->wh * logf(gt_h / ex_h);
}

/* ---- segmented NMS ----------------------------------------------------------- */
/* Segment n holds cnt[n] candidates (boxes [C, 4], scores [C], groups [C]
 * at n * C). keys: S per segment (a power of two >= C). */

/* Key of candidate t (over N * S): score then lower index; 0 past cnt. */
LG_BODY void lg_cuk_nms_keys(size_t t, const float *scores, const int32_t *cnt, size_t C, size_t S,
                             uint64_t *keys) {
    size_t n = t / S, i = t % S;
    keys[t] = i < (size_t)cnt[n] ? lg_cuk_score_key(scores[n * C + i], (uint32_t)i, 32, 0) : 0;
}

/* Rank q (over N * C) of segment n: the candidate's box and group in score
 * order; order[q] is its index. */
LG_BODY void lg_cuk_nms_gather(size_t t, const uint64_t *keys, const float *boxes,
                               const int32_t *groups, const int32_t *cnt, size_t C, size_t S,
                               float *sorted, int32_t *sorted_groups, int32_t *order) {
    size_t n = t / C, q = t % C;
    if (q >= (size_t)cnt[n])
        return;
    uint32_t i = lg_cuk_key_index(keys[n * S + q], 32);
    for (int k = 0; k < 4; k++)
        sorted[4 * t + k] = boxes[4 * (n * C + i) + k];
    sorted_groups[t] = groups[n * C + i];
    order[t] = (int32_t)i;
}

/* Word `block` of row q (t over N * C * blocks): bit k set when sorted box
 * q suppresses box block * 64 + k (later, same group, IoU > thresh). */
LG_BODY void lg_cuk_nms_seg_mask(size_t t, const float *sorted, const int32_t *groups,
                                 const int32_t *cnt, size_t C, size_t blocks, float thresh,
                                 uint64_t *mask) {
    size_t n = t / (C * blocks), q = t / blocks % C, block = t % blocks;
    size_t m = (size_t)cnt[n];
    uint64_t bits = 0;
    if (q < m) {
        const float *a = sorted + 4 * (n * C + q);
        for (size_t k = 0; k < LG_CUK_NMS_BLOCK; k++) {
            size_t j = block * LG_CUK_NMS_BLOCK + k;
            if (j >= m)
                break;
            if (j > q && groups[n * C + q] == groups[n * C + j] &&
                lg_cuk_nms_iou(a, sorted + 4 * (n * C + j)) > thresh)
                bits |= (uint64_t)1 << k;
        }
    }
    mask[t] = bits;
}

/* Segment n, one thread: the survivors in score order, at most max_keep:
 * keep[n * C + r] = their candidate indices, kept[n] their count.
 * removed: blocks words per segment. */
LG_BODY void lg_cuk_nms_seg_reduce(size_t n, const uint64_t *mask, const int32_t *order,
                                   const int32_t *cnt, size_t C, size_t blocks, int max_keep,
                                   uint64_t *removed, int32_t *keep, int32_t *kept) {
    size_t m = (size_t)cnt[n];
    uint64_t *rm = removed + n * blocks;
    const uint64_t *mk = mask + n * C * blocks;
    for (size_t b = 0; b < blocks; b++)
        rm[b] = 0;
    int32_t count = 0;
    for (size_t q = 0; q < m && count < max_keep; q++) {
        size_t b = q / LG_CUK_NMS_BLOCK, k = q % LG_CUK_NMS_BLOCK;
        if (rm[b] & ((uint64_t)1 << k))
            continue;
        keep[n * C + (size_t)count++] = order[n * C + q];
        for (size_t w = b; w < blocks; w++)
            rm[w] |= mk[q * blocks + w];
    }
    kept[n] = count;
}

/* ---- proposals ------------------------------------------------------------------ */

/* The level of anchor r (levels laid out one after another). */
LG_BODY int lg_cuk_level_of(lg_cuda_proposals_cfg d, size_t r, size_t *first) {
    size_t f = 0;
    int l = 0;
    while (l + 1 < d.levels && r >= f + (size_t)d.per_level[l])
        f += (size_t)d.per_level[l++];
    if (first)
        *first = f;
    return l;
}

/* Key t (over N * S): objectness of anchor r, its level first (level 0
 * sorts first), so the sorted run holds each level's anchors best first. */
LG_BODY void lg_cuk_prop_keys(size_t t, lg_cuda_proposals_cfg d, const float *objectness,
                              size_t A, size_t S, int ibits, uint64_t *keys) {
    size_t n = t / S, r = t % S;
    if (r >= A) {
        keys[t] = 0;
        return;
    }
    int l = lg_cuk_level_of(d, r, NULL);
    keys[t] = lg_cuk_score_key(objectness[n * A + r], (uint32_t)r, ibits,
                               (uint32_t)(LG_CUDA_DET_MAX_LEVELS - 1 - l));
}

/* Candidate t (over N * C; C = the sum of min(per_level, pre_nms_top_n)):
 * the level's next-best anchor decoded, clipped, scored; flag 1 when it
 * survives min_size and score_thresh. */
LG_BODY void lg_cuk_prop_decode(size_t t, lg_cuda_proposals_cfg d, const uint64_t *keys,
                                size_t S, int ibits, const float *objectness, const float *deltas,
                                const float *anchors, size_t A, size_t C, float *boxes,
                                float *scores, int32_t *levels, int32_t *flags) {
    size_t n = t / C, c = t % C, first = 0, cfirst = 0;
    int l = 0;
    for (;; l++) { /* candidates of level l: min(per_level, pre_nms_top_n) */
        size_t k = (size_t)d.per_level[l] < (size_t)d.pre_nms_top_n ? (size_t)d.per_level[l]
                                                                       : (size_t)d.pre_nms_top_n;
        if (c < cfirst + k || l + 1 == d.levels)
            break;
        cfirst += k;
        first += (size_t)d.per_level[l];
    }
    uint64_t key = keys[n * S + first + (c - cfirst)];
    size_t r = lg_cuk_key_index(key, ibits);
    if (key == 0 || r >= A) { /* no anchors at all: the one placeholder candidate */
        flags[t] = 0;
        return;
    }
    float o = objectness[n * A + r];
    if (o != o)
        o = -INFINITY;
    const lg_cuda_box_coder rpn = {1.0f, 1.0f, 1.0f, 1.0f, 4.135166556742356f};
    float *b = boxes + 4 * t;
    lg_cuk_det_decode(&rpn, deltas + 4 * (n * A + r), anchors + 4 * r, b);
    lg_cuk_det_clip(b, (float)d.image_h, (float)d.image_w);
    float prob = 1.0f / (1.0f + expf(-o));
    scores[t] = prob;
    levels[t] = l;
    flags[t] = lg_cuk_det_big_enough(b, d.min_size) && !(prob < d.score_thresh);
}

/* Compacted candidate t (over N * C): boxes, scores and levels of the
 * index-th flagged candidate, in candidate order. */
LG_BODY void lg_cuk_gather_candidates(size_t t, const int32_t *index, const int32_t *total,
                                      size_t C, const float *boxes, const float *scores,
                                      const int32_t *groups, float *out_boxes, float *out_scores,
                                      int32_t *out_groups) {
    size_t n = t / C, j = t % C;
    if (j >= (size_t)total[n])
        return;
    size_t i = n * C + (size_t)index[t];
    for (int k = 0; k < 4; k++)
        out_boxes[4 * t + k] = boxes[4 * i + k];
    out_scores[t] = scores[i];
    out_groups[t] = groups[i];
}

/* Output row t (over N * P) of lg_cuda_proposals: the r-th survivor, zero
 * past the count (at most P). */
LG_BODY void lg_cuk_prop_output(size_t t, size_t P, size_t C, const int32_t *keep,
                                const int32_t *kept, const float *cboxes, const float *cscores,
                                float *boxes, float *scores, int32_t *count) {
    size_t n = t / P, r = t % P;
    size_t m = (size_t)kept[n] < P ? (size_t)kept[n] : P;
    if (r == 0)
        count[n] = (int32_t)m;
    if (r < m) {
        size_t i = n * C + (size_t)keep[n * C + r];
        for (int k = 0; k < 4; k++)
            boxes[4 * t + k] = cboxes[4 * i + k];
        scores[t] = cscores[i];
    } else {
        for (int k = 0; k < 4; k++)
            boxes[4 * t + k] = 0.0f;
        scores[t] = 0.0f;
    }
}

/* ---- rois_from_proposals -------------------------------------------------------- */

/* Row t (over N * P). */
LG_BODY void lg_cuk_rois_from_proposals(size_t t, const float *boxes, const int32_t *count,
                                        size_t P, float *rois) {
    size_t n = t / P, p = t % P;
    float *r = rois + 5 * t;
    if (p < (size_t)count[n]) {
        r[0] = (float)n;
        for (int k = 0; k < 4; k++)
            r[1 + k] = boxes[4 * t + k];
    } else {
        r[0] = -1.0f;
        r[1] = r[2] = r[3] = r[4] = 0.0f;
    }
}

/* ---- RoI sampling ----------------------------------------------------------------- */

/* the samplers' seeds: lg_cuk_detect_seed in body.h */

/* Image n's proposal count, kept within [0, P] (the CPU kernel refuses
 * others; proposals never write them). */
LG_BODY size_t lg_cuk_sample_count(const int32_t *count, size_t n, size_t P) {
    int32_t c = count[n];
    return c < 0 ? 0 : (size_t)c > P ? P : (size_t)c;
}

/* Image n, one thread: its ground truth without the difficult boxes (when
 * skip_difficult), labels shifted: gt_boxes [N, B, 4], gt_labels [N, B],
 * num_gt [N]. */
LG_BODY void lg_cuk_sample_gt(size_t n, lg_cuda_det_targets tg, float *gt_boxes,
                              int32_t *gt_labels, int32_t *num_gt) {
    size_t B = (size_t)tg.max_boxes;
    int32_t m = tg.count[n] < 0 ? 0 : tg.count[n] > tg.max_boxes ? tg.max_boxes : tg.count[n];
    int32_t kept = 0;
    for (size_t i = 0; i < (size_t)m; i++) {
        size_t src = n * B + i;
        if (tg.skip_difficult && tg.difficult && tg.difficult[src])
            continue;
        for (int k = 0; k < 4; k++)
            gt_boxes[4 * (n * B + (size_t)kept) + k] = tg.boxes[4 * src + k];
        gt_labels[n * B + (size_t)kept] = tg.labels[src] + tg.label_offset;
        kept++;
    }
    num_gt[n] = kept;
}

/* Box i of image n's candidate list (t over N * T, T = P + B): the
 * proposals, then the ground truth. */
LG_BODY void lg_cuk_sample_boxes(size_t t, const float *proposals, const int32_t *count, size_t P,
                                 const float *gt_boxes, const int32_t *num_gt, size_t B,
                                 float *boxes) {
    size_t T = P + B, n = t / T, i = t % T, np = lg_cuk_sample_count(count, n, P);
    const float *src = NULL;
    if (i < np)
        src = proposals + 4 * (n * P + i);
    else if (i - np < (size_t)num_gt[n])
        src = gt_boxes + 4 * (n * B + (i - np));
    for (int k = 0; k < 4; k++)
        boxes[4 * t + k] = src ? src[k] : 0.0f;
}

/* iou [N, B, T] (t over it): ground truth g against candidate i. */
LG_BODY void lg_cuk_sample_iou(size_t t, const float *gt_boxes, const float *boxes,
                               const int32_t *count, const int32_t *num_gt, size_t P, size_t B,
                               float *iou) {
    size_t T = P + B, n = t / (B * T), g = t / T % B, i = t % T;
    size_t total = lg_cuk_sample_count(count, n, P) + (size_t)num_gt[n];
    iou[t] = g < (size_t)num_gt[n] && i < total
                 ? lg_cuk_det_iou(gt_boxes + 4 * (n * B + g), boxes + 4 * (n * T + i))
                 : 0.0f;
}

/* Candidate t (over N * T): matches [t] (lg_match with allow_low_quality
 * 0) and labels [t] (class, 0 background, -1 between the thresholds or
 * past the candidates). */
LG_BODY void lg_cuk_sample_match(size_t t, lg_cuda_roi_sample_cfg d, const float *iou,
                                 const int32_t *count, const int32_t *num_gt,
                                 const int32_t *gt_labels, size_t B, int32_t *matches,
                                 int32_t *labels) {
    size_t T = (size_t)d.P + B, n = t / T, i = t % T;
    int ng = num_gt[n];
    if (i >= lg_cuk_sample_count(count, n, (size_t)d.P) + (size_t)ng) {
        matches[t] = LG_CUDA_MATCH_BETWEEN;
        labels[t] = -1;
        return;
    }
    const lg_cuda_matcher m = {d.fg_iou_thresh, d.bg_iou_thresh, 0};
    int mi = lg_cuk_match(i, &m, iou + n * B * T, ng, (int)T, NULL);
    matches[t] = mi;
    labels[t] = mi >= 0 ? gt_labels[n * B + (size_t)mi] : mi == LG_CUDA_MATCH_BELOW_LOW ? 0 : -1;
}

/* Image n, one thread: lg_sample_balanced with lg_detect_seed(seed, step,
 * n) (positives and negatives in index order, a partial Fisher-Yates of
 * each), then rows[n * R + r] = the r-th chosen candidate in index order,
 * nrows[n] their count. pos, neg: T ints per image. */
LG_BODY void lg_cuk_sample_pick(size_t n, lg_cuda_roi_sample_cfg d, size_t B,
                                const int32_t *count, const int32_t *num_gt, int32_t *labels,
                                uint64_t seed, uint64_t step, int32_t *pos, int32_t *neg,
                                int32_t *rows, int32_t *nrows) {
    size_t T = (size_t)d.P + B, total = lg_cuk_sample_count(count, n, (size_t)d.P) + (size_t)num_gt[n];
    int32_t *lab = labels + n * T, *ps = pos + n * T, *ng = neg + n * T;
    int np = 0, nn = 0;
    for (size_t i = 0; i < total; i++) {
        if (lab[i] >= 1)
            ps[np++] = (int32_t)i;
        else if (lab[i] == 0)
            ng[nn++] = (int32_t)i;
    }
    int want_pos = (int)((float)d.R * d.positive_fraction);
    int kp = np < want_pos ? np : want_pos;
    int want_neg = d.R - kp;
    int kn = nn < want_neg ? nn : want_neg;
    uint64_t state = lg_cuk_detect_seed(seed, step, n);
    for (int pass = 0; pass < 2; pass++) {
        int32_t *idx = pass ? ng : ps;
        int m = pass ? nn : np, k = pass ? kn : kp;
        for (int i = 0; i < k; i++) {
            uint64_t r = lg_cuk_splitmix(&state);
            int j = i + (int)(r % (uint64_t)(m - i));
            int32_t tmp = idx[i];
            idx[i] = idx[j];
            idx[j] = tmp;
        }
    }
    for (int i = kp; i < np; i++)
        lab[ps[i]] = -1;
    for (int i = kn; i < nn; i++)
        lab[ng[i]] = -1;
    int32_t r = 0;
    for (size_t i = 0; i < total && r < d.R; i++)
        if (lab[i] >= 0)
            rows[n * (size_t)d.R + (size_t)r++] = (int32_t)i;
    nrows[n] = r;
}

/* Output row t (over N * R): the RoI (image, box), its label and box
 * target (deltas to its ground truth for a foreground row). */
LG_BODY void lg_cuk_sample_output(size_t t, lg_cuda_roi_sample_cfg d, size_t B,
                                  const float *boxes, const int32_t *labels,
                                  const int32_t *matches, const float *gt_boxes,
                                  const int32_t *rows, const int32_t *nrows, float *rois,
                                  int32_t *out_labels, float *box_targets) {
    size_t R = (size_t)d.R, T = (size_t)d.P + B, n = t / R, r = t % R;
    float *o = rois + 5 * t, *bt = box_targets + 4 * t;
    if (r >= (size_t)nrows[n]) {
        o[0] = -1.0f;
        o[1] = o[2] = o[3] = o[4] = 0.0f;
        out_labels[t] = -1;
        bt[0] = bt[1] = bt[2] = bt[3] = 0.0f;
        return;
    }
    size_t i = n * T + (size_t)rows[t];
    const float *b = boxes + 4 * i;
    o[0] = (float)n;
    for (int k = 0; k < 4; k++)
        o[1 + k] = b[k];
    out_labels[t] = labels[i];
    if (labels[i] > 0)
        lg_cuk_det_encode(&d.coder, gt_boxes + 4 * (n * B + (size_t)matches[i]), b, bt);
    else
        bt[0] = bt[1] = bt[2] = bt[3] = 0.0f;
}

/* ---- detections ------------------------------------------------------------------ */

/* Image n, one thread: the real RoIs come first (batch index >= 0). */
LG_BODY void lg_cuk_det_valid(size_t n, const float *rois, size_t R, int32_t *valid) {
    size_t v = 0;
    while (v < R && rois[5 * (n * R + v)] >= 0)
        v++;
    valid[n] = (int32_t)v;
}

/* Candidate t (over N * R * (K - 1)): class k = t % (K - 1) + 1 of RoI r:
 * its softmax probability, its box decoded on the RoI and clipped; flag 1
 * when above score_thresh and min_size. */
LG_BODY void lg_cuk_det_candidates(size_t t, lg_cuda_detect_cfg d, const float *logits,
                                   const float *box_regression, const float *rois,
                                   const int32_t *valid, float *boxes, float *scores,
                                   int32_t *labels, int32_t *flags) {
    size_t K = (size_t)d.K, R = (size_t)d.R, per = R * (K - 1);
    size_t n = t / per, r = t % per / (K - 1), k = t % (K - 1) + 1;
    flags[t] = 0;
    labels[t] = (int32_t)k;
    if (r >= (size_t)valid[n])
        return;
    const float *z = logits + (n * R + r) * K;
    float mx = z[0], sum = 0.0f;
    for (size_t j = 1; j < K; j++)
        mx = lg_cuk_det_max(mx, z[j]);
    for (size_t j = 0; j < K; j++)
        sum += expf(z[j] - mx);
    float p = expf(z[k] - mx) / sum;
    scores[t] = p;
    if (!(p > d.score_thresh))
        return;
    float *b = boxes + 4 * t;
    lg_cuk_det_decode(&d.coder, box_regression + ((n * R + r) * K + k) * 4,
                      rois + 5 * (n * R + r) + 1, b);
    lg_cuk_det_clip(b, (float)d.image_h, (float)d.image_w);
    flags[t] = lg_cuk_det_big_enough(b, d.min_size);
}

/* Output row t (over N * D). */
LG_BODY void lg_cuk_det_output(size_t t, size_t D, size_t C, const int32_t *keep,
                               const int32_t *kept, const float *cboxes, const float *cscores,
                               const int32_t *clabels, float *boxes, float *scores,
                               int32_t *labels, int32_t *count) {
    size_t n = t / D, r = t % D;
    size_t m = (size_t)kept[n] < D ? (size_t)kept[n] : D;
    if (r == 0)
        count[n] = (int32_t)m;
    if (r < m) {
        size_t i = n * C + (size_t)keep[n * C + r];
        for (int k = 0; k < 4; k++)
            boxes[4 * t + k] = cboxes[4 * i + k];
        scores[t] = cscores[i];
        labels[t] = clabels[i];
    } else {
        for (int k = 0; k < 4; k++)
            boxes[4 * t + k] = 0.0f;
        scores[t] = 0.0f;
        labels[t] = -1;
    }
}

/* ---- workspace layouts (host code: the launchers and the host tests) ---------- */

static inline size_t lg_cuk_take(char *base, size_t *off, size_t bytes, void **p) {
    size_t o = *off;
    if (p)
        *p = base ? base + o : NULL;
    *off = o + ((bytes + 255) & ~(size_t)255);
    return o;
}

/* NMS over N segments of C candidates (with S keys each, S >= C). */
typedef struct lg_cuk_nms_ws {
    size_t C, S, blocks, nch;
    int32_t *flags, *counts, *total, *index; /* compaction of the flagged candidates */
    float *cboxes, *cscores;                  /* compacted (the order the CPU numbers them) */
    int32_t *cgroups;
    uint64_t *keys;
    float *sorted;
    int32_t *sorted_groups, *order;
    uint64_t *mask, *removed;
    int32_t *keep, *kept;
} lg_cuk_nms_ws;

static inline void lg_cuk_nms_layout(char *base, size_t *off, size_t N, size_t C, uint64_t *keys,
                                     lg_cuk_nms_ws *w) {
    w->C = C;
    w->S = lg_cuk_pow2(C, NULL);
    w->blocks = (C + LG_CUK_NMS_BLOCK - 1) / LG_CUK_NMS_BLOCK;
    w->nch = (C + LG_CUK_CHUNK - 1) / LG_CUK_CHUNK;
    lg_cuk_take(base, off, N * C * sizeof(int32_t), (void **)&w->flags);
    lg_cuk_take(base, off, N * w->nch * sizeof(int32_t), (void **)&w->counts);
    lg_cuk_take(base, off, N * sizeof(int32_t), (void **)&w->total);
    lg_cuk_take(base, off, N * C * sizeof(int32_t), (void **)&w->index);
    lg_cuk_take(base, off, N * C * 4 * sizeof(float), (void **)&w->cboxes);
    lg_cuk_take(base, off, N * C * sizeof(float), (void **)&w->cscores);
    lg_cuk_take(base, off, N * C * sizeof(int32_t), (void **)&w->cgroups);
    if (keys)
        w->keys = keys; /* shares the caller's larger key buffer */
    else
        lg_cuk_take(base, off, N * w->S * sizeof(uint64_t), (void **)&w->keys);
    lg_cuk_take(base, off, N * C * 4 * sizeof(float), (void **)&w->sorted);
    lg_cuk_take(base, off, N * C * sizeof(int32_t), (void **)&w->sorted_groups);
    lg_cuk_take(base, off, N * C * sizeof(int32_t), (void **)&w->order);
    lg_cuk_take(base, off, N * C * w->blocks * sizeof(uint64_t), (void **)&w->mask);
    lg_cuk_take(base, off, N * w->blocks * sizeof(uint64_t), (void **)&w->removed);
    lg_cuk_take(base, off, N * C * sizeof(int32_t), (void **)&w->keep);
    lg_cuk_take(base, off, N * sizeof(int32_t), (void **)&w->kept);
}

/* Proposals: anchor keys (S per image), the candidates before filtering
 * (boxes, scores, levels; flags in nms), then the NMS part. */
typedef struct lg_cuk_prop_ws {
    size_t A, S, C;
    int ibits;
    uint64_t *keys;
    float *boxes, *scores;
    int32_t *levels;
    lg_cuk_nms_ws nms;
} lg_cuk_prop_ws;

static inline size_t lg_cuk_prop_layout(const lg_cuda_proposals_cfg *d, size_t N, void *base,
                                        lg_cuk_prop_ws *w) {
    size_t off = 0, A = 0, C = 0;
    for (int l = 0; l < d->levels; l++) {
        size_t na = d->per_level[l] > 0 ? (size_t)d->per_level[l] : 0;
        A += na;
        C += na < (size_t)d->pre_nms_top_n ? na : (size_t)d->pre_nms_top_n;
    }
    w->A = A;
    w->C = C ? C : 1;
    w->S = lg_cuk_pow2(A, &w->ibits);
    lg_cuk_take((char *)base, &off, N * w->S * sizeof(uint64_t), (void **)&w->keys);
    lg_cuk_take((char *)base, &off, N * w->C * 4 * sizeof(float), (void **)&w->boxes);
    lg_cuk_take((char *)base, &off, N * w->C * sizeof(float), (void **)&w->scores);
    lg_cuk_take((char *)base, &off, N * w->C * sizeof(int32_t), (void **)&w->levels);
    lg_cuk_nms_layout((char *)base, &off, N, w->C, w->keys, &w->nms);
    return off;
}

/* RoI sampling: T = P + B candidates per image. */
typedef struct lg_cuk_sample_ws {
    size_t B, T;
    float *gt_boxes, *boxes, *iou;
    int32_t *gt_labels, *num_gt, *matches, *labels, *pos, *neg, *rows, *nrows;
} lg_cuk_sample_ws;

static inline size_t lg_cuk_sample_layout(const lg_cuda_roi_sample_cfg *d, size_t N, size_t B,
                                          void *base, lg_cuk_sample_ws *w) {
    size_t off = 0;
    char *b = (char *)base;
    w->B = B ? B : 1;
    w->T = (size_t)d->P + w->B;
    size_t T = w->T;
    lg_cuk_take(b, &off, N * w->B * 4 * sizeof(float), (void **)&w->gt_boxes);
    lg_cuk_take(b, &off, N * w->B * sizeof(int32_t), (void **)&w->gt_labels);
    lg_cuk_take(b, &off, N * sizeof(int32_t), (void **)&w->num_gt);
    lg_cuk_take(b, &off, N * T * 4 * sizeof(float), (void **)&w->boxes);
    lg_cuk_take(b, &off, N * w->B * T * sizeof(float), (void **)&w->iou);
    lg_cuk_take(b, &off, N * T * sizeof(int32_t), (void **)&w->matches);
    lg_cuk_take(b, &off, N * T * sizeof(int32_t), (void **)&w->labels);
    lg_cuk_take(b, &off, N * T * sizeof(int32_t), (void **)&w->pos);
    lg_cuk_take(b, &off, N * T * sizeof(int32_t), (void **)&w->neg);
    lg_cuk_take(b, &off, N * (size_t)d->R * sizeof(int32_t), (void **)&w->rows);
    lg_cuk_take(b, &off, N * sizeof(int32_t), (void **)&w->nrows);
    return off;
}

/* Detections: C = R * (K - 1) candidates per image. */
typedef struct lg_cuk_det_ws {
    size_t C;
    int32_t *valid;
    float *boxes, *scores;
    int32_t *labels;
    lg_cuk_nms_ws nms;
} lg_cuk_det_ws;

static inline size_t lg_cuk_det_layout(const lg_cuda_detect_cfg *d, size_t N, void *base,
                                       lg_cuk_det_ws *w) {
    size_t off = 0;
    char *b = (char *)base;
    w->C = (size_t)(d->R > 0 ? d->R : 1) * (size_t)(d->K > 1 ? d->K - 1 : 1);
    lg_cuk_take(b, &off, N * sizeof(int32_t), (void **)&w->valid);
    lg_cuk_take(b, &off, N * w->C * 4 * sizeof(float), (void **)&w->boxes);
    lg_cuk_take(b, &off, N * w->C * sizeof(float), (void **)&w->scores);
    lg_cuk_take(b, &off, N * w->C * sizeof(int32_t), (void **)&w->labels);
    lg_cuk_nms_layout(b, &off, N, w->C, NULL, &w->nms);
    return off;
}

#endif
