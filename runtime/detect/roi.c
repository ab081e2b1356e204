/* roi.c — the RoI heads' plumbing (see lgen/detect.h): sampling RoIs from
 * proposals, RoIAlign forward and backward on one or several (FPN) feature
 * maps, the Fast R-CNN loss with its gradient, and post-processing of the
 * box head's outputs into detections.
 *
 * Proposals come from rpn.c; the box head between RoIAlign and the loss is
 * ordinary linear layers (lgen/kernels.h). The RoIAlign loops follow
 * torchvision's CPU kernel (roi_align_kernel.cpp) term for term, so that
 * forward values agree to float rounding; the backward is its adjoint.
 */
#include "lgen/detect.h"
#include "detect_internal.h"

#include <math.h>
#include <string.h>

/* ---- RoI sampling ---------------------------------------------------------------- */

typedef struct sample_ws {
    float *boxes, *iou;
    int *matches, *labels;
    void *match, *sample;
} sample_ws;

static size_t sample_layout(int num_proposals, int max_gt, char *base, sample_ws *ws) {
    size_t g = (size_t)(max_gt > 0 ? max_gt : 1);
    size_t t = (size_t)(num_proposals > 0 ? num_proposals : 0) + g;
    size_t off = 0;
#define TAKE(field, bytes)                                                                         \
    do {                                                                                           \
        if (base)                                                                                  \
            ws->field = (void *)(base + off);                                                      \
        off += lg_det_align(bytes);                                                                \
    } while (0)
    TAKE(boxes, t * 4 * sizeof(float));
    TAKE(iou, t * g * sizeof(float));
    TAKE(matches, t * sizeof(int));
    TAKE(labels, t * sizeof(int));
    TAKE(match, lg_match_workspace((int)g));
    TAKE(sample, lg_sample_workspace((int)t));
#undef TAKE
    return off;
}

size_t lg_roi_sample_workspace(int num_proposals, int max_gt) {
    return sample_layout(num_proposals, max_gt, NULL, NULL);
}

lg_status lg_roi_sample(lg_ctx *ctx, const lg_roi_sample_config *cfg, const float *proposals,
                        int num_proposals, const float *gt_boxes, const int *gt_labels, int num_gt,
                        uint64_t seed, void *workspace, float *rois, int *labels,
                        float *box_targets, int *count) {
    if (!cfg || num_proposals < 0 || num_gt < 0 || !workspace || !rois || !labels || !box_targets ||
        !count || (num_proposals && !proposals) || (num_gt && (!gt_boxes || !gt_labels)))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "roi_sample: bad arguments");
    int cap = cfg->batch_size_per_image;
    if (cap < 1)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "roi_sample: batch_size_per_image %d",
                            cap);
    sample_ws ws;
    sample_layout(num_proposals, num_gt, workspace, &ws);
    int total = num_proposals + num_gt;
    memcpy(ws.boxes, proposals, sizeof(float) * 4 * (size_t)num_proposals);
    memcpy(ws.boxes + 4 * (size_t)num_proposals, gt_boxes, sizeof(float) * 4 * (size_t)num_gt);
    lg_status st = lg_box_iou(ctx, gt_boxes, num_gt, ws.boxes, total, ws.iou);
    if (st)
        return st;
    lg_matcher m = {cfg->fg_iou_thresh, cfg->bg_iou_thresh, 0};
    if ((st = lg_match(ctx, &m, ws.iou, num_gt, total, ws.match, ws.matches)))
        return st;
    for (int i = 0; i < total; i++) {
        int mi = ws.matches[i];
        ws.labels[i] = mi >= 0 ? gt_labels[mi] : mi == LG_MATCH_BELOW_LOW ? 0 : -1;
        if (mi >= 0 && gt_labels[mi] < 1)
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "roi_sample: ground truth label %d (classes start at 1)",
                                gt_labels[mi]);
    }
    lg_sampler s = {cap, cfg->positive_fraction};
    if ((st = lg_sample_balanced(ctx, &s, ws.labels, total, seed, ws.sample, NULL, NULL)))
        return st;
    int n = 0;
    for (int i = 0; i < total && n < cap; i++) {
        if (ws.labels[i] < 0)
            continue;
        const float *b = ws.boxes + 4 * (size_t)i;
        memcpy(rois + 4 * (size_t)n, b, 4 * sizeof(float));
        labels[n] = ws.labels[i];
        float *t = box_targets + 4 * (size_t)n;
        if (ws.labels[i] > 0) {
            if ((st = lg_box_encode(ctx, &cfg->coder, gt_boxes + 4 * (size_t)ws.matches[i], b, 1,
                                    t)))
                return st;
        } else {
            t[0] = t[1] = t[2] = t[3] = 0.0f;
        }
        n++;
    }
    memset(rois + 4 * (size_t)n, 0, sizeof(float) * 4 * (size_t)(cap - n));
    memset(box_targets + 4 * (size_t)n, 0, sizeof(float) * 4 * (size_t)(cap - n));
    for (int i = n; i < cap; i++)
        labels[i] = -1;
    *count = n;
    return LG_OK;
}

/* ---- RoIAlign -------------------------------------------------------------------- */

/* One sampling point's bilinear weights and the four pixels they touch;
 * w == 0 and pos == -1 for a point outside the map. */
typedef struct bilinear {
    float w[4];
    int pos[4];
} bilinear;

static void bilinear_at(int H, int W, float y, float x, bilinear *b) {
    /* torchvision's y < -1 || y > H || ..., written so NaN is outside too. */
    if (!(y >= -1.0f && y <= (float)H && x >= -1.0f && x <= (float)W)) {
        *b = (bilinear){{0, 0, 0, 0}, {-1, -1, -1, -1}};
        return;
    }
    if (y <= 0)
        y = 0;
    if (x <= 0)
        x = 0;
    int y_low = (int)y, x_low = (int)x, y_high, x_high;
    if (y_low >= H - 1) {
        y_high = y_low = H - 1;
        y = (float)y_low;
    } else {
        y_high = y_low + 1;
    }
    if (x_low >= W - 1) {
        x_high = x_low = W - 1;
        x = (float)x_low;
    } else {
        x_high = x_low + 1;
    }
    float ly = y - (float)y_low, lx = x - (float)x_low;
    float hy = 1.0f - ly, hx = 1.0f - lx;
    b->w[0] = hy * hx;
    b->w[1] = hy * lx;
    b->w[2] = ly * hx;
    b->w[3] = ly * lx;
    b->pos[0] = y_low * W + x_low;
    b->pos[1] = y_low * W + x_high;
    b->pos[2] = y_high * W + x_low;
    b->pos[3] = y_high * W + x_high;
}

/* ceil(roi size / bins) points per bin side, at most MAX_ADAPTIVE_GRID so
 * that an absurd box (a diverged regression) cannot stall a step. */
#define MAX_ADAPTIVE_GRID 256

static int adaptive_grid(float size, int bins) {
    float g = ceilf(size / (float)bins);
    return g >= 0 && g <= MAX_ADAPTIVE_GRID ? (int)g
           : g > MAX_ADAPTIVE_GRID          ? MAX_ADAPTIVE_GRID
                                            : 0;
}

/* A RoI row that pools zeros and takes no gradient: padding (negative
 * image index) or non-finite coordinates. */
static int roi_skipped(const float *roi) {
    return !(roi[0] >= 0) || !isfinite(roi[1]) || !isfinite(roi[2]) || !isfinite(roi[3]) ||
           !isfinite(roi[4]);
}

typedef struct roi_geom {
    float start_h, start_w, bin_h, bin_w;
    int grid_h, grid_w;
    float count;
} roi_geom;

static void roi_geometry(int pooled_h, int pooled_w, float scale, int sampling_ratio, int aligned,
                         const float *roi, roi_geom *g) {
    float offset = aligned ? 0.5f : 0.0f;
    float sw = roi[1] * scale - offset, sh = roi[2] * scale - offset;
    float ew = roi[3] * scale - offset, eh = roi[4] * scale - offset;
    float rw = ew - sw, rh = eh - sh;
    if (!aligned) {
        rw = fmaxf(rw, 1.0f);
        rh = fmaxf(rh, 1.0f);
    }
    g->start_h = sh;
    g->start_w = sw;
    g->bin_h = rh / (float)pooled_h;
    g->bin_w = rw / (float)pooled_w;
    g->grid_h = sampling_ratio > 0 ? sampling_ratio : adaptive_grid(rh, pooled_h);
    g->grid_w = sampling_ratio > 0 ? sampling_ratio : adaptive_grid(rw, pooled_w);
    int c = g->grid_h * g->grid_w;
    g->count = (float)(c > 1 ? c : 1);
}

/* The sampling points of one RoI, bin by bin (ph, pw, iy, ix order), when
 * they fit in PRECALC_MAX; torchvision's pre_calc_for_bilinear_interpolate.
 * The forward visits them for a block of channels at a time, the backward
 * channel by channel (scattering into one plane); both measured faster
 * than torchvision's channel-outer loop with bench/detect_bench. RoIs with
 * more points (large adaptive grids) take the direct loops below. */
#define PRECALC_MAX 1024
#define FORWARD_CHANNEL_BLOCK 16

static int precalc(const roi_geom *g, int pooled_h, int pooled_w, int H, int W, bilinear *pc) {
    int n = pooled_h * pooled_w * g->grid_h * g->grid_w;
    if (n > PRECALC_MAX)
        return -1;
    int i = 0;
    for (int ph = 0; ph < pooled_h; ph++)
        for (int pw = 0; pw < pooled_w; pw++)
            for (int iy = 0; iy < g->grid_h; iy++) {
                float y = g->start_h + (float)ph * g->bin_h +
                          (float)(iy + .5f) * g->bin_h / (float)g->grid_h;
                for (int ix = 0; ix < g->grid_w; ix++) {
                    float x = g->start_w + (float)pw * g->bin_w +
                              (float)(ix + .5f) * g->bin_w / (float)g->grid_w;
                    bilinear_at(H, W, y, x, &pc[i++]);
                }
            }
    return n;
}

/* Pools one RoI of feature (C, H, W) into out (C, ph, pw), channels
 * [c0, c1) only. */
static void roi_align_one(int pooled_h, int pooled_w, float scale, int sampling_ratio, int aligned,
                          const float *feat, int c0, int c1, int H, int W, const float *roi,
                          float *out) {
    roi_geom g;
    roi_geometry(pooled_h, pooled_w, scale, sampling_ratio, aligned, roi, &g);
    size_t hw = (size_t)H * W, bins = (size_t)pooled_h * pooled_w;
    int per_bin = g.grid_h * g.grid_w;
    bilinear pc[PRECALC_MAX];
    if (precalc(&g, pooled_h, pooled_w, H, W, pc) >= 0) {
        /* Blocks of channels: the block's planes stay in cache while every
         * sampling point is visited. */
        for (int cb = c0; cb < c1; cb += FORWARD_CHANNEL_BLOCK) {
            int ce = cb + FORWARD_CHANNEL_BLOCK < c1 ? cb + FORWARD_CHANNEL_BLOCK : c1;
            const bilinear *p = pc;
            for (size_t bin = 0; bin < bins; bin++) {
                for (int c = cb; c < ce; c++)
                    out[c * bins + bin] = 0.0f;
                for (int s = 0; s < per_bin; s++, p++) {
                    if (p->pos[0] < 0)
                        continue;
                    const float *f = feat + (size_t)cb * hw;
                    for (int c = cb; c < ce; c++, f += hw)
                        out[c * bins + bin] += p->w[0] * f[p->pos[0]] + p->w[1] * f[p->pos[1]] +
                                               p->w[2] * f[p->pos[2]] + p->w[3] * f[p->pos[3]];
                }
                for (int c = cb; c < ce; c++)
                    out[c * bins + bin] /= g.count;
            }
        }
        return;
    }
    for (int ph = 0; ph < pooled_h; ph++)
        for (int pw = 0; pw < pooled_w; pw++) {
            size_t bin = (size_t)ph * pooled_w + pw;
            for (int c = c0; c < c1; c++)
                out[c * bins + bin] = 0.0f;
            for (int iy = 0; iy < g.grid_h; iy++) {
                float y =
                    g.start_h + (float)ph * g.bin_h + (float)(iy + .5f) * g.bin_h / (float)g.grid_h;
                for (int ix = 0; ix < g.grid_w; ix++) {
                    float x = g.start_w + (float)pw * g.bin_w +
                              (float)(ix + .5f) * g.bin_w / (float)g.grid_w;
                    bilinear b;
                    bilinear_at(H, W, y, x, &b);
                    if (b.pos[0] < 0)
                        continue;
                    const float *f = feat + (size_t)c0 * hw;
                    for (int c = c0; c < c1; c++, f += hw)
                        out[c * bins + bin] += b.w[0] * f[b.pos[0]] + b.w[1] * f[b.pos[1]] +
                                               b.w[2] * f[b.pos[2]] + b.w[3] * f[b.pos[3]];
                }
            }
            for (int c = c0; c < c1; c++)
                out[c * bins + bin] /= g.count;
        }
}

/* Adjoint of roi_align_one: accumulates into grad (C, H, W), channels
 * [c0, c1). */
static void roi_align_one_backward(int pooled_h, int pooled_w, float scale, int sampling_ratio,
                                   int aligned, const float *grad_out, int c0, int c1, int H, int W,
                                   const float *roi, float *grad) {
    roi_geom g;
    roi_geometry(pooled_h, pooled_w, scale, sampling_ratio, aligned, roi, &g);
    float count = (float)(g.grid_h * g.grid_w);
    size_t hw = (size_t)H * W, bins = (size_t)pooled_h * pooled_w;
    int per_bin = g.grid_h * g.grid_w;
    bilinear pc[PRECALC_MAX];
    int n = precalc(&g, pooled_h, pooled_w, H, W, pc);
    if (n >= 0) {
        /* Weights over count once, not a division per channel: the
         * gradient differs from torchvision's go * w / count by rounding. */
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 4; k++)
                pc[i].w[k] /= count;
        for (int c = c0; c < c1; c++) {
            float *gc = grad + (size_t)c * hw;
            const bilinear *p = pc;
            for (size_t bin = 0; bin < bins; bin++) {
                float go = grad_out[c * bins + bin];
                for (int s = 0; s < per_bin; s++, p++)
                    if (p->pos[0] >= 0) {
                        gc[p->pos[0]] += go * p->w[0];
                        gc[p->pos[1]] += go * p->w[1];
                        gc[p->pos[2]] += go * p->w[2];
                        gc[p->pos[3]] += go * p->w[3];
                    }
            }
        }
        return;
    }
    for (int ph = 0; ph < pooled_h; ph++)
        for (int pw = 0; pw < pooled_w; pw++) {
            size_t bin = (size_t)ph * pooled_w + pw;
            for (int iy = 0; iy < g.grid_h; iy++) {
                float y =
                    g.start_h + (float)ph * g.bin_h + (float)(iy + .5f) * g.bin_h / (float)g.grid_h;
                for (int ix = 0; ix < g.grid_w; ix++) {
                    float x = g.start_w + (float)pw * g.bin_w +
                              (float)(ix + .5f) * g.bin_w / (float)g.grid_w;
                    bilinear b;
                    bilinear_at(H, W, y, x, &b);
                    if (b.pos[0] < 0)
                        continue;
                    float *gc = grad + (size_t)c0 * hw;
                    for (int c = c0; c < c1; c++, gc += hw) {
                        float go = grad_out[c * bins + bin];
                        gc[b.pos[0]] += go * b.w[0] / count;
                        gc[b.pos[1]] += go * b.w[1] / count;
                        gc[b.pos[2]] += go * b.w[2] / count;
                        gc[b.pos[3]] += go * b.w[3] / count;
                    }
                }
            }
        }
}

/* One RoIAlign call, single- or multi-level, cut into tasks for the pool:
 * the forward by RoIs (each writes its own output), the backward by channel
 * blocks (each owns its gradient planes and visits the RoIs in order), so
 * the result does not depend on the thread count. */
#define ROIS_PER_TASK 8
#define CHANNELS_PER_TASK 32

typedef struct roi_job {
    int num_levels, k_min, k_max;
    const lg_multiscale_roi_align *ms; /* NULL: one level */
    float scales[LG_DETECT_MAX_LEVELS];
    const float *const *features; /* forward: [level] (N, C, H, W) */
    float *const *grads;          /* backward: [level] (N, C, H, W) */
    int heights[LG_DETECT_MAX_LEVELS], widths[LG_DETECT_MAX_LEVELS];
    int C, K, pooled_h, pooled_w, sampling_ratio, aligned;
    const float *rois;
    float *output;         /* forward */
    const float *grad_out; /* backward */
} roi_job;

static int job_level(const roi_job *j, const float *roi);

static void roi_forward_task(void *arg, size_t task) {
    const roi_job *j = arg;
    size_t per_roi = (size_t)j->C * j->pooled_h * j->pooled_w;
    int k1 = (int)((task + 1) * ROIS_PER_TASK);
    for (int k = (int)(task * ROIS_PER_TASK); k < k1 && k < j->K; k++) {
        const float *roi = j->rois + 5 * (size_t)k;
        float *out = j->output + per_roi * k;
        if (roi_skipped(roi)) {
            memset(out, 0, per_roi * sizeof(float));
            continue;
        }
        int l = job_level(j, roi), b = (int)roi[0];
        size_t plane = (size_t)j->heights[l] * j->widths[l];
        roi_align_one(j->pooled_h, j->pooled_w, j->scales[l], j->sampling_ratio, j->aligned,
                      j->features[l] + (size_t)b * j->C * plane, 0, j->C, j->heights[l],
                      j->widths[l], roi, out);
    }
}

static void roi_backward_task(void *arg, size_t task) {
    const roi_job *j = arg;
    size_t per_roi = (size_t)j->C * j->pooled_h * j->pooled_w;
    int c0 = (int)(task * CHANNELS_PER_TASK);
    int c1 = c0 + CHANNELS_PER_TASK < j->C ? c0 + CHANNELS_PER_TASK : j->C;
    for (int k = 0; k < j->K; k++) {
        const float *roi = j->rois + 5 * (size_t)k;
        if (roi_skipped(roi))
            continue;
        int l = job_level(j, roi), b = (int)roi[0];
        size_t plane = (size_t)j->heights[l] * j->widths[l];
        roi_align_one_backward(j->pooled_h, j->pooled_w, j->scales[l], j->sampling_ratio,
                               j->aligned, j->grad_out + per_roi * k, c0, c1, j->heights[l],
                               j->widths[l], roi, j->grads[l] + (size_t)b * j->C * plane);
    }
}

static void run_forward(lg_ctx *ctx, roi_job *j) {
    lg_parallel_for(ctx, ((size_t)j->K + ROIS_PER_TASK - 1) / ROIS_PER_TASK, roi_forward_task, j);
}

static void run_backward(lg_ctx *ctx, roi_job *j, int N) {
    for (int l = 0; l < j->num_levels; l++)
        memset(j->grads[l], 0, sizeof(float) * (size_t)N * j->C * j->heights[l] * j->widths[l]);
    lg_parallel_for(ctx, ((size_t)j->C + CHANNELS_PER_TASK - 1) / CHANNELS_PER_TASK,
                    roi_backward_task, j);
}

static lg_status check_roi_align(lg_ctx *ctx, const lg_roi_align_config *cfg, const void *in, int N,
                                 int C, int H, int W, const float *rois, int K, const void *out) {
    if (!cfg || N < 1 || C < 1 || H < 1 || W < 1 || K < 0 || !in || (K && (!rois || !out)))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                            "roi_align: bad arguments (N %d, C %d, %dx%d, K %d)", N, C, H, W, K);
    if (cfg->pooled_h < 1 || cfg->pooled_w < 1 || !(cfg->spatial_scale > 0))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                            "roi_align: output %dx%d, spatial_scale %g", cfg->pooled_h,
                            cfg->pooled_w, cfg->spatial_scale);
    for (int k = 0; k < K; k++)
        if (rois[5 * (size_t)k] >= (float)N)
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "roi_align: RoI %d has batch index %g of %d", k,
                                rois[5 * (size_t)k], N);
    return LG_OK;
}

static roi_job single_job(const lg_roi_align_config *cfg, int C, int H, int W, const float *rois,
                          int K) {
    roi_job j = {.num_levels = 1,
                 .C = C,
                 .K = K,
                 .pooled_h = cfg->pooled_h,
                 .pooled_w = cfg->pooled_w,
                 .sampling_ratio = cfg->sampling_ratio,
                 .aligned = cfg->aligned,
                 .rois = rois};
    j.scales[0] = cfg->spatial_scale;
    j.heights[0] = H;
    j.widths[0] = W;
    return j;
}

lg_status lg_roi_align_forward(lg_ctx *ctx, const lg_roi_align_config *cfg, const float *input,
                               int N, int C, int H, int W, const float *rois, int K,
                               float *output) {
    lg_status st = check_roi_align(ctx, cfg, input, N, C, H, W, rois, K, output);
    if (st)
        return st;
    roi_job j = single_job(cfg, C, H, W, rois, K);
    j.features = &input;
    j.output = output;
    run_forward(ctx, &j);
    return LG_OK;
}

lg_status lg_roi_align_backward(lg_ctx *ctx, const lg_roi_align_config *cfg,
                                const float *grad_output, int N, int C, int H, int W,
                                const float *rois, int K, float *grad_input) {
    lg_status st = check_roi_align(ctx, cfg, grad_input, N, C, H, W, rois, K, grad_output);
    if (st)
        return st;
    roi_job j = single_job(cfg, C, H, W, rois, K);
    j.grads = &grad_input;
    j.grad_out = grad_output;
    run_backward(ctx, &j, N);
    return LG_OK;
}

/* ---- multi-scale RoIAlign ------------------------------------------------------------ */

static lg_status check_multiscale(lg_ctx *ctx, const lg_multiscale_roi_align *cfg,
                                  const int *heights, const int *widths, int N, int C,
                                  const float *rois, int K, int *k_min, int *k_max) {
    if (!cfg || cfg->num_levels < 1 || cfg->num_levels > LG_DETECT_MAX_LEVELS || N < 1 || C < 1 ||
        K < 0 || (K && !rois) || (heights && !widths))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "multiscale_roi_align: bad arguments");
    if (cfg->pooled_h < 1 || cfg->pooled_w < 1 || cfg->canonical_scale < 1)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "multiscale_roi_align: output %dx%d",
                            cfg->pooled_h, cfg->pooled_w);
    for (int l = 0; l < cfg->num_levels; l++) {
        if (!(cfg->scales[l] > 0 && cfg->scales[l] <= 1))
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "multiscale_roi_align: level %d scale %g", l, cfg->scales[l]);
        if (heights && (heights[l] < 1 || widths[l] < 1))
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "multiscale_roi_align: level %d is %dx%d", l, heights[l],
                                widths[l]);
    }
    *k_min = (int)lrintf(-log2f(cfg->scales[0]));
    *k_max = (int)lrintf(-log2f(cfg->scales[cfg->num_levels - 1]));
    int halving = *k_max - *k_min + 1 == cfg->num_levels;
    for (int l = 0; l < cfg->num_levels && halving; l++)
        halving = cfg->scales[l] == ldexpf(1.0f, -(*k_min + l));
    if (!halving)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                            "multiscale_roi_align: scales must halve level by level (got %d "
                            "levels spanning 2^-%d to 2^-%d)",
                            cfg->num_levels, *k_min, *k_max);
    for (int k = 0; k < K; k++)
        if (rois[5 * (size_t)k] >= (float)N)
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "roi_align: RoI %d has batch index %g of %d", k,
                                rois[5 * (size_t)k], N);
    return LG_OK;
}

static int level_of(const lg_multiscale_roi_align *cfg, const float *roi, int k_min, int k_max) {
    float area = (roi[3] - roi[1]) * (roi[4] - roi[2]);
    float s = sqrtf(area);
    float lvl =
        floorf((float)cfg->canonical_level + log2f(s / (float)cfg->canonical_scale) + 1e-6f);
    if (!(lvl >= (float)k_min)) /* NaN (an inverted box) too */
        lvl = (float)k_min;
    if (lvl > (float)k_max)
        lvl = (float)k_max;
    return (int)lvl - k_min;
}

static int job_level(const roi_job *j, const float *roi) {
    return j->ms ? level_of(j->ms, roi, j->k_min, j->k_max) : 0;
}

lg_status lg_roi_levels(lg_ctx *ctx, const lg_multiscale_roi_align *cfg, const float *rois, int K,
                        int *levels) {
    int k_min, k_max;
    lg_status st = check_multiscale(ctx, cfg, NULL, NULL, 1 << 30, 1, rois, K, &k_min, &k_max);
    if (st)
        return st;
    for (int k = 0; k < K; k++)
        levels[k] = level_of(cfg, rois + 5 * (size_t)k, k_min, k_max);
    return LG_OK;
}

static roi_job multiscale_job(const lg_multiscale_roi_align *cfg, int k_min, int k_max,
                              const int *heights, const int *widths, int C, const float *rois,
                              int K) {
    roi_job j = {.num_levels = cfg->num_levels,
                 .k_min = k_min,
                 .k_max = k_max,
                 .ms = cfg,
                 .C = C,
                 .K = K,
                 .pooled_h = cfg->pooled_h,
                 .pooled_w = cfg->pooled_w,
                 .sampling_ratio = cfg->sampling_ratio,
                 .aligned = cfg->aligned,
                 .rois = rois};
    for (int l = 0; l < cfg->num_levels; l++) {
        j.scales[l] = cfg->scales[l];
        j.heights[l] = heights[l];
        j.widths[l] = widths[l];
    }
    return j;
}

lg_status lg_multiscale_roi_align_forward(lg_ctx *ctx, const lg_multiscale_roi_align *cfg,
                                          const float *const *features, const int *heights,
                                          const int *widths, int N, int C, const float *rois, int K,
                                          float *output) {
    int k_min, k_max;
    lg_status st = check_multiscale(ctx, cfg, heights, widths, N, C, rois, K, &k_min, &k_max);
    if (st)
        return st;
    if (!features || !heights || (K && !output))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "multiscale_roi_align: missing buffers");
    roi_job j = multiscale_job(cfg, k_min, k_max, heights, widths, C, rois, K);
    j.features = features;
    j.output = output;
    run_forward(ctx, &j);
    return LG_OK;
}

lg_status lg_multiscale_roi_align_backward(lg_ctx *ctx, const lg_multiscale_roi_align *cfg,
                                           const float *grad_output, const int *heights,
                                           const int *widths, int N, int C, const float *rois,
                                           int K, float *const *grad_features) {
    int k_min, k_max;
    lg_status st = check_multiscale(ctx, cfg, heights, widths, N, C, rois, K, &k_min, &k_max);
    if (st)
        return st;
    if (!grad_features || !heights || (K && !grad_output))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "multiscale_roi_align: missing buffers");
    roi_job j = multiscale_job(cfg, k_min, k_max, heights, widths, C, rois, K);
    j.grads = grad_features;
    j.grad_out = grad_output;
    run_backward(ctx, &j, N);
    return LG_OK;
}

/* ---- Fast R-CNN loss ------------------------------------------------------------------ */

static lg_status check_fastrcnn(lg_ctx *ctx, const float *logits, const float *box,
                                const int *labels, const float *targets, int R, int K, float beta) {
    if (R < 0 || K < 2 || !(beta >= 0))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "fastrcnn_loss: R %d, classes %d, beta %g",
                            R, K, beta);
    if (R && (!logits || !box || !labels || !targets))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "fastrcnn_loss: missing input");
    for (int r = 0; r < R; r++)
        if (labels[r] >= K)
            return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                                "fastrcnn_loss: label %d of %d classes", labels[r], K);
    return LG_OK;
}

lg_status lg_fastrcnn_loss_forward(lg_ctx *ctx, const float *class_logits,
                                   const float *box_regression, const int *labels,
                                   const float *box_targets, int R, int K, float beta,
                                   float *loss_classifier, float *loss_box_reg) {
    lg_status st =
        check_fastrcnn(ctx, class_logits, box_regression, labels, box_targets, R, K, beta);
    if (st)
        return st;
    double ce = 0, box = 0;
    int n = 0;
    for (int r = 0; r < R; r++) {
        if (labels[r] < 0)
            continue;
        n++;
        const float *z = class_logits + (size_t)r * K;
        float mx = z[0], sum = 0;
        for (int k = 1; k < K; k++)
            mx = lg_det_maxf(mx, z[k]);
        for (int k = 0; k < K; k++)
            sum += expf(z[k] - mx);
        ce += (double)mx + (double)logf(sum) - (double)z[labels[r]];
        if (labels[r] > 0) {
            const float *d = box_regression + ((size_t)r * K + labels[r]) * 4;
            for (int k = 0; k < 4; k++)
                box += lg_det_smooth_l1(d[k] - box_targets[4 * (size_t)r + k], beta);
        }
    }
    if (loss_classifier)
        *loss_classifier = n ? (float)(ce / n) : 0.0f;
    if (loss_box_reg)
        *loss_box_reg = n ? (float)(box / n) : 0.0f;
    return LG_OK;
}

lg_status lg_fastrcnn_loss_backward(lg_ctx *ctx, const float *class_logits,
                                    const float *box_regression, const int *labels,
                                    const float *box_targets, int R, int K, float beta,
                                    float dloss_classifier, float dloss_box_reg, float *grad_logits,
                                    float *grad_box) {
    lg_status st =
        check_fastrcnn(ctx, class_logits, box_regression, labels, box_targets, R, K, beta);
    if (st)
        return st;
    int n = 0;
    for (int r = 0; r < R; r++)
        n += labels[r] >= 0;
    float sc = n ? dloss_classifier / (float)n : 0.0f, sb = n ? dloss_box_reg / (float)n : 0.0f;
    for (int r = 0; r < R; r++) {
        const float *z = class_logits + (size_t)r * K;
        if (grad_logits) {
            float *g = grad_logits + (size_t)r * K;
            if (labels[r] < 0) {
                memset(g, 0, sizeof(float) * (size_t)K);
            } else {
                float mx = z[0], sum = 0;
                for (int k = 1; k < K; k++)
                    mx = lg_det_maxf(mx, z[k]);
                for (int k = 0; k < K; k++)
                    sum += (g[k] = expf(z[k] - mx));
                float scale = sc / sum;
                for (int k = 0; k < K; k++)
                    g[k] *= scale;
                g[labels[r]] -= sc;
            }
        }
        if (grad_box) {
            float *g = grad_box + (size_t)r * K * 4;
            memset(g, 0, sizeof(float) * 4 * (size_t)K);
            if (labels[r] > 0) {
                const float *d = box_regression + ((size_t)r * K + labels[r]) * 4;
                for (int k = 0; k < 4; k++)
                    g[4 * labels[r] + k] =
                        lg_det_smooth_l1_grad(d[k] - box_targets[4 * (size_t)r + k], beta) * sb;
            }
        }
    }
    return LG_OK;
}

/* ---- post-processing ---------------------------------------------------------------- */

typedef struct detect_ws {
    float *boxes, *scores, *prob;
    int *labels, *keep;
    void *nms;
} detect_ws;

static size_t detect_layout(int R, int K, char *base, detect_ws *ws) {
    size_t n = (size_t)(R > 0 ? R : 1) * (size_t)(K > 1 ? K - 1 : 1);
    size_t off = 0;
#define TAKE(field, bytes)                                                                         \
    do {                                                                                           \
        if (base)                                                                                  \
            ws->field = (void *)(base + off);                                                      \
        off += lg_det_align(bytes);                                                                \
    } while (0)
    TAKE(boxes, n * 4 * sizeof(float));
    TAKE(scores, n * sizeof(float));
    TAKE(prob, (size_t)(K > 0 ? K : 1) * sizeof(float));
    TAKE(labels, n * sizeof(int));
    TAKE(keep, n * sizeof(int));
    TAKE(nms, lg_nms_workspace((int)n));
#undef TAKE
    return off;
}

size_t lg_detections_workspace(int R, int K) {
    return detect_layout(R, K, NULL, NULL);
}

lg_status lg_detections(lg_ctx *ctx, const lg_detect_config *cfg, const float *class_logits,
                        const float *box_regression, const float *rois, int R, int K, int image_h,
                        int image_w, void *workspace, float *boxes, float *scores, int *labels,
                        int *count) {
    return lg_det_detections_strided(ctx, cfg, class_logits, box_regression, rois, 4, R, K, image_h,
                                     image_w, workspace, boxes, scores, labels, count);
}

lg_status lg_det_detections_strided(lg_ctx *ctx, const lg_detect_config *cfg,
                                    const float *class_logits, const float *box_regression,
                                    const float *rois, int roi_stride, int R, int K, int image_h,
                                    int image_w, void *workspace, float *boxes, float *scores,
                                    int *labels, int *count) {
    if (!cfg || R < 0 || K < 2 || image_h < 1 || image_w < 1 || !workspace || !boxes || !scores ||
        !labels || !count || (R && (!class_logits || !box_regression || !rois)))
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG,
                            "detections: bad arguments (R %d, classes %d)", R, K);
    if (cfg->detections_per_img < 1)
        return lg_error_set(LG_DET_ERR(ctx), LG_ERR_ARG, "detections: detections_per_img %d",
                            cfg->detections_per_img);
    detect_ws ws;
    detect_layout(R, K, workspace, &ws);
    int n = 0;
    for (int r = 0; r < R; r++) {
        const float *z = class_logits + (size_t)r * K;
        float mx = z[0], sum = 0;
        for (int k = 1; k < K; k++)
            mx = lg_det_maxf(mx, z[k]);
        for (int k = 0; k < K; k++)
            sum += (ws.prob[k] = expf(z[k] - mx));
        for (int k = 1; k < K; k++) {
            float p = ws.prob[k] / sum;
            if (!(p > cfg->score_thresh))
                continue;
            float *b = ws.boxes + 4 * (size_t)n;
            lg_det_decode_one(&cfg->coder, box_regression + ((size_t)r * K + k) * 4,
                              rois + (size_t)roi_stride * r, b);
            lg_boxes_clip(b, 1, image_h, image_w);
            /* remove_small_boxes keeps (w >= min) & (h >= min): NaN goes. */
            if (!(b[2] - b[0] >= cfg->min_size && b[3] - b[1] >= cfg->min_size))
                continue;
            ws.scores[n] = p;
            ws.labels[n] = k;
            n++;
        }
    }
    int kept = 0;
    lg_status st = lg_batched_nms(ctx, ws.boxes, ws.scores, ws.labels, n, cfg->nms_thresh, ws.nms,
                                  ws.keep, &kept);
    if (st)
        return st;
    int D = cfg->detections_per_img;
    if (kept > D)
        kept = D;
    for (int i = 0; i < kept; i++) {
        memcpy(boxes + 4 * (size_t)i, ws.boxes + 4 * (size_t)ws.keep[i], 4 * sizeof(float));
        scores[i] = ws.scores[ws.keep[i]];
        labels[i] = ws.labels[ws.keep[i]];
    }
    memset(boxes + 4 * (size_t)kept, 0, sizeof(float) * 4 * (size_t)(D - kept));
    memset(scores + kept, 0, sizeof(float) * (size_t)(D - kept));
    for (int i = kept; i < D; i++)
        labels[i] = -1;
    *count = kept;
    return LG_OK;
}
