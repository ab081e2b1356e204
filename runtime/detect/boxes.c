/* boxes.c — box arithmetic for detection: anchors, the box coder, IoU,
 * the matcher, the balanced sampler and NMS (see lgen/detect.h).
 *
 * Every function here follows torchvision's float32 arithmetic step by step
 * (same operation order, same rounding) so that results agree with the
 * fixtures that tests/fixtures/gen_detect.py writes from torchvision. The
 * proposal, RoI and loss code in rpn.c and roi.c is built from these pieces.
 */
#include "lgen/detect.h"
#include "detect_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t lg_detect_seed(uint64_t seed, uint64_t step, uint64_t image) {
    uint64_t s = lg_det_splitmix(&seed);
    s ^= step * 0x9E3779B97F4A7C15ull;
    s = lg_det_splitmix(&s);
    s ^= image * 0xC2B2AE3D27D4EB4Full;
    return lg_det_splitmix(&s);
}

/* ---- anchors ------------------------------------------------------------ */

int lg_anchors_count(const lg_anchor_level *levels, int num_levels) {
    long total = 0;
    for (int l = 0; l < num_levels; l++)
        total +=
            (long)levels[l].feat_h * levels[l].feat_w * levels[l].num_sizes * levels[l].num_ratios;
    return total > 0x7fffffff ? -1 : (int)total;
}

lg_status lg_anchors_generate(lg_ctx *ctx, const lg_anchor_level *levels, int num_levels,
                              int image_h, int image_w, float *anchors, int *anchors_per_level) {
    if (!levels || !anchors || num_levels < 1 || num_levels > LG_DETECT_MAX_LEVELS)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                            "anchors: expected 1 to %d feature levels, got %d",
                            LG_DETECT_MAX_LEVELS, num_levels);
    if (image_h < 1 || image_w < 1)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                            "anchors: image size %dx%d is not positive", image_h, image_w);
    size_t row = 0;
    for (int l = 0; l < num_levels; l++) {
        const lg_anchor_level *lv = &levels[l];
        if (lv->feat_h < 1 || lv->feat_w < 1 || lv->feat_h > image_h || lv->feat_w > image_w)
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "anchors: level %d feature map %dx%d does not fit image %dx%d", l,
                                lv->feat_h, lv->feat_w, image_h, image_w);
        if (lv->num_sizes < 1 || lv->num_ratios < 1 || lv->num_sizes * lv->num_ratios > 64 ||
            !lv->sizes || !lv->aspect_ratios)
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "anchors: level %d needs 1 to 64 sizes x aspect ratios", l);
        /* Cell anchors: ratio-major, then size, rounded half to even. */
        float cell[64][4];
        int a = 0;
        for (int r = 0; r < lv->num_ratios; r++) {
            if (!(lv->aspect_ratios[r] > 0))
                return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                    "anchors: aspect ratio %g is not positive",
                                    lv->aspect_ratios[r]);
            float h_ratio = sqrtf(lv->aspect_ratios[r]);
            float w_ratio = 1.0f / h_ratio;
            for (int s = 0; s < lv->num_sizes; s++, a++) {
                float ws = w_ratio * lv->sizes[s];
                float hs = h_ratio * lv->sizes[s];
                cell[a][0] = nearbyintf(-ws / 2.0f);
                cell[a][1] = nearbyintf(-hs / 2.0f);
                cell[a][2] = nearbyintf(ws / 2.0f);
                cell[a][3] = nearbyintf(hs / 2.0f);
            }
        }
        int stride_h = image_h / lv->feat_h, stride_w = image_w / lv->feat_w;
        size_t first = row;
        for (int y = 0; y < lv->feat_h; y++) {
            float sy = (float)(y * stride_h);
            for (int x = 0; x < lv->feat_w; x++) {
                float sx = (float)(x * stride_w);
                for (int k = 0; k < a; k++, row++) {
                    float *o = anchors + row * 4;
                    o[0] = sx + cell[k][0];
                    o[1] = sy + cell[k][1];
                    o[2] = sx + cell[k][2];
                    o[3] = sy + cell[k][3];
                }
            }
        }
        if (anchors_per_level)
            anchors_per_level[l] = (int)(row - first);
    }
    return LG_OK;
}

/* ---- box coder ----------------------------------------------------------- */

static lg_status check_coder(lg_ctx *ctx, const lg_box_coder *c, int n, const char *who) {
    if (!c || n < 0)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "%s: bad coder or count %d", who, n);
    if (!(c->wx > 0 && c->wy > 0 && c->ww > 0 && c->wh > 0))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "%s: box coder weights must be positive",
                            who);
    return LG_OK;
}

lg_status lg_box_encode(lg_ctx *ctx, const lg_box_coder *coder, const float *gt, const float *ref,
                        int n, float *deltas) {
    lg_status st = check_coder(ctx, coder, n, "box_encode");
    if (st)
        return st;
    for (int i = 0; i < n; i++) {
        const float *p = ref + 4 * i, *g = gt + 4 * i;
        float ex_w = p[2] - p[0], ex_h = p[3] - p[1];
        float ex_cx = p[0] + 0.5f * ex_w, ex_cy = p[1] + 0.5f * ex_h;
        float gt_w = g[2] - g[0], gt_h = g[3] - g[1];
        float gt_cx = g[0] + 0.5f * gt_w, gt_cy = g[1] + 0.5f * gt_h;
        float *d = deltas + 4 * i;
        d[0] = coder->wx * (gt_cx - ex_cx) / ex_w;
        d[1] = coder->wy * (gt_cy - ex_cy) / ex_h;
        d[2] = coder->ww * logf(gt_w / ex_w);
        d[3] = coder->wh * logf(gt_h / ex_h);
    }
    return LG_OK;
}

void lg_det_decode_one(const lg_box_coder *c, const float *d, const float *b, float *o) {
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

lg_status lg_box_decode(lg_ctx *ctx, const lg_box_coder *coder, const float *deltas,
                        const float *ref, int n, float *out) {
    lg_status st = check_coder(ctx, coder, n, "box_decode");
    if (st)
        return st;
    for (int i = 0; i < n; i++)
        lg_det_decode_one(coder, deltas + 4 * i, ref + 4 * i, out + 4 * i);
    return LG_OK;
}

void lg_boxes_clip(float *boxes, int n, int image_h, int image_w) {
    float w = (float)image_w, h = (float)image_h;
    for (int i = 0; i < n; i++) {
        float *b = boxes + 4 * i;
        b[0] = lg_det_minf(lg_det_maxf(b[0], 0.0f), w);
        b[1] = lg_det_minf(lg_det_maxf(b[1], 0.0f), h);
        b[2] = lg_det_minf(lg_det_maxf(b[2], 0.0f), w);
        b[3] = lg_det_minf(lg_det_maxf(b[3], 0.0f), h);
    }
}

/* ---- IoU ------------------------------------------------------------------ */

lg_status lg_box_iou(lg_ctx *ctx, const float *a, int na, const float *b, int nb, float *iou) {
    if (na < 0 || nb < 0 || (na && !a) || (nb && !b) || (na && nb && !iou))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "box_iou: bad arguments (%d x %d boxes)",
                            na, nb);
    for (int i = 0; i < na; i++) {
        const float *p = a + 4 * i;
        float area_a = (p[2] - p[0]) * (p[3] - p[1]);
        for (int j = 0; j < nb; j++) {
            const float *q = b + 4 * j;
            float area_b = (q[2] - q[0]) * (q[3] - q[1]);
            float w = lg_det_maxf(lg_det_minf(p[2], q[2]) - lg_det_maxf(p[0], q[0]), 0.0f);
            float h = lg_det_maxf(lg_det_minf(p[3], q[3]) - lg_det_maxf(p[1], q[1]), 0.0f);
            float inter = w * h;
            iou[(size_t)i * nb + j] = inter / (area_a + area_b - inter);
        }
    }
    return LG_OK;
}

/* ---- matcher ------------------------------------------------------------------ */

size_t lg_match_workspace(int num_gt) {
    return (size_t)(num_gt > 0 ? num_gt : 1) * sizeof(float);
}

lg_status lg_match(lg_ctx *ctx, const lg_matcher *m, const float *iou, int num_gt, int num_pred,
                   void *workspace, int *matches) {
    if (!m || num_gt < 0 || num_pred < 0 || (num_pred && !matches) ||
        (num_gt && num_pred && (!iou || !workspace)))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "match: bad arguments (%d x %d)", num_gt,
                            num_pred);
    if (!(m->low <= m->high))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "match: low threshold %g above high %g",
                            m->low, m->high);
    if (num_gt == 0) {
        for (int p = 0; p < num_pred; p++)
            matches[p] = LG_MATCH_BELOW_LOW;
        return LG_OK;
    }
    float *highest = workspace;
    for (int g = 0; g < num_gt; g++) {
        const float *row = iou + (size_t)g * num_pred;
        float h = -INFINITY;
        for (int p = 0; p < num_pred; p++)
            if (row[p] > h)
                h = row[p];
        highest[g] = h;
    }
    for (int p = 0; p < num_pred; p++) {
        int best = 0;
        float val = iou[p];
        for (int g = 1; g < num_gt; g++) {
            float v = iou[(size_t)g * num_pred + p];
            if (v > val) {
                val = v;
                best = g;
            }
        }
        int mark = best;
        if (val < m->low)
            mark = LG_MATCH_BELOW_LOW;
        else if (val < m->high)
            mark = LG_MATCH_BETWEEN;
        if (mark < 0 && m->allow_low_quality_matches) {
            for (int g = 0; g < num_gt; g++)
                if (iou[(size_t)g * num_pred + p] == highest[g]) {
                    mark = best;
                    break;
                }
        }
        matches[p] = mark;
    }
    return LG_OK;
}

/* ---- sampler ------------------------------------------------------------------- */

size_t lg_sample_workspace(int n) {
    return (size_t)(n > 0 ? n : 1) * 2 * sizeof(int);
}

/* Moves k uniformly chosen entries of idx[n] to its front (partial
 * Fisher-Yates). */
static void choose(int *idx, int n, int k, uint64_t *state) {
    for (int i = 0; i < k; i++) {
        uint64_t r = lg_det_splitmix(state);
        int j = i + (int)(r % (uint64_t)(n - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

lg_status lg_sample_balanced(lg_ctx *ctx, const lg_sampler *s, int *labels, int n, uint64_t seed,
                             void *workspace, int *num_pos, int *num_neg) {
    if (!s || n < 0 || (n && (!labels || !workspace)))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "sample_balanced: bad arguments (n %d)",
                            n);
    if (s->batch_size_per_image < 1 || !(s->positive_fraction >= 0 && s->positive_fraction <= 1))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                            "sample_balanced: batch_size_per_image %d, positive_fraction %g",
                            s->batch_size_per_image, s->positive_fraction);
    int *pos = workspace, *neg = pos + (n > 0 ? n : 1);
    int np = 0, nn = 0;
    for (int i = 0; i < n; i++) {
        if (labels[i] >= 1)
            pos[np++] = i;
        else if (labels[i] == 0)
            neg[nn++] = i;
    }
    int want_pos = (int)(s->batch_size_per_image * s->positive_fraction);
    int kp = np < want_pos ? np : want_pos;
    int want_neg = s->batch_size_per_image - kp;
    int kn = nn < want_neg ? nn : want_neg;
    uint64_t state = seed;
    choose(pos, np, kp, &state);
    choose(neg, nn, kn, &state);
    /* Unchosen positives and negatives become "ignore". */
    for (int i = kp; i < np; i++)
        labels[pos[i]] = -1;
    for (int i = kn; i < nn; i++)
        labels[neg[i]] = -1;
    if (num_pos)
        *num_pos = kp;
    if (num_neg)
        *num_neg = kn;
    return LG_OK;
}

/* ---- NMS -------------------------------------------------------------------------- */

static int cmp_score_desc(const void *pa, const void *pb) {
    const lg_det_scored *a = pa, *b = pb;
    if (a->score > b->score)
        return -1;
    if (a->score < b->score)
        return 1;
    return (a->index > b->index) - (a->index < b->index);
}

static int cmp_group_score(const void *pa, const void *pb) {
    const lg_det_scored *a = pa, *b = pb;
    if (a->group != b->group)
        return (a->group > b->group) - (a->group < b->group);
    return cmp_score_desc(pa, pb);
}

void lg_det_sort_scored(lg_det_scored *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_score_desc);
}

/* Quickselect (Hoare partition, median-of-three pivot): moves the k best of
 * v[n] (in cmp_score_desc's total order, so the set is unique) to v[0..k). */
void lg_det_select_top(lg_det_scored *v, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the k-th best lies in [lo, hi) */
    while (k > lo && k < hi && hi - lo > 16) {
        size_t mid = lo + (hi - lo) / 2;
        lg_det_scored a = v[lo], b = v[mid], c = v[hi - 1], pivot;
        if (cmp_score_desc(&a, &b) < 0)
            pivot = cmp_score_desc(&b, &c) < 0 ? b : cmp_score_desc(&a, &c) < 0 ? c : a;
        else
            pivot = cmp_score_desc(&a, &c) < 0 ? a : cmp_score_desc(&b, &c) < 0 ? c : b;
        size_t i = lo, j = hi - 1;
        for (;;) {
            while (cmp_score_desc(&v[i], &pivot) < 0)
                i++;
            while (cmp_score_desc(&pivot, &v[j]) < 0)
                j--;
            if (i >= j)
                break;
            lg_det_scored t = v[i];
            v[i] = v[j];
            v[j] = t;
            i++;
            j--;
        }
        /* Now v[lo..j] <= pivot <= v[j+1..hi) in the order. */
        if (k <= j)
            hi = j + 1;
        else
            lo = j + 1;
    }
    if (k > lo && k < hi)
        qsort(v + lo, hi - lo, sizeof *v, cmp_score_desc);
}

size_t lg_nms_workspace(int n) {
    size_t m = (size_t)(n > 0 ? n : 1);
    return lg_det_align(m * sizeof(lg_det_scored)) + lg_det_align(m) +
           lg_det_align(5 * m * sizeof(float));
}

/* Greedy suppression over v[n], already sorted by decreasing score; keeps
 * survivors in v[0..return) in order. The boxes are first copied, in that
 * order, into columns (soa: x1, y1, x2, y2, area) so the inner loop runs
 * over contiguous floats without branches. */
#if defined(__GNUC__) && !defined(__clang__)
/* -O2 in GCC 12 only vectorizes loops without a remainder; this one pays. */
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#endif
static int
nms_sorted(const float *boxes, lg_det_scored *v, int n, float thresh, unsigned char *removed,
           float *soa) {
    float *x1 = soa, *y1 = x1 + n, *x2 = y1 + n, *y2 = x2 + n, *area = y2 + n;
    for (int i = 0; i < n; i++) {
        const float *b = boxes + 4 * (size_t)v[i].index;
        x1[i] = b[0];
        y1[i] = b[1];
        x2[i] = b[2];
        y2[i] = b[3];
        area[i] = (b[2] - b[0]) * (b[3] - b[1]);
        removed[i] = 0;
    }
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (removed[i])
            continue;
        float ax1 = x1[i], ay1 = y1[i], ax2 = x2[i], ay2 = y2[i], aa = area[i];
        for (int j = i + 1; j < n; j++) {
            float w = lg_det_maxf(0.0f, lg_det_minf(ax2, x2[j]) - lg_det_maxf(ax1, x1[j]));
            float h = lg_det_maxf(0.0f, lg_det_minf(ay2, y2[j]) - lg_det_maxf(ay1, y1[j]));
            float inter = w * h;
            removed[j] |= inter / (aa + area[j] - inter) > thresh;
        }
        v[kept++] = v[i];
    }
    return kept;
}

lg_status lg_nms(lg_ctx *ctx, const float *boxes, const float *scores, int n, float iou_thresh,
                 void *workspace, int *keep, int *num_keep) {
    return lg_batched_nms(ctx, boxes, scores, NULL, n, iou_thresh, workspace, keep, num_keep);
}

lg_status lg_batched_nms(lg_ctx *ctx, const float *boxes, const float *scores, const int *idxs,
                         int n, float iou_thresh, void *workspace, int *keep, int *num_keep) {
    if (n < 0 || !num_keep || (n && (!boxes || !scores || !workspace || !keep)))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "nms: bad arguments (n %d)", n);
    size_t m = (size_t)(n > 0 ? n : 1);
    lg_det_scored *v = workspace;
    unsigned char *removed = (unsigned char *)workspace + lg_det_align(m * sizeof *v);
    float *soa = (float *)(removed + lg_det_align(m));
    for (int i = 0; i < n; i++) /* NaN last, so the order stays total */
        v[i] =
            (lg_det_scored){scores[i] == scores[i] ? scores[i] : -INFINITY, i, idxs ? idxs[i] : 0};
    qsort(v, (size_t)n, sizeof *v, idxs ? cmp_group_score : cmp_score_desc);
    int kept = 0;
    for (int start = 0; start < n;) {
        int end = start + 1;
        while (end < n && v[end].group == v[start].group)
            end++;
        int k = nms_sorted(boxes, v + start, end - start, iou_thresh, removed, soa);
        memmove(v + kept, v + start, (size_t)k * sizeof *v);
        kept += k;
        start = end;
    }
    if (idxs)
        qsort(v, (size_t)kept, sizeof *v, cmp_score_desc);
    for (int i = 0; i < kept; i++)
        keep[i] = v[i].index;
    *num_keep = kept;
    return LG_OK;
}
