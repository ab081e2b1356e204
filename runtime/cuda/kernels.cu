/* runtime/cuda/kernels.cu — launchers for lgen's own CUDA kernels.
 *
 * Each kernel here maps its grid (grid-stride loops of 256 threads) onto
 * the per-thread body of the same name in body.h and does nothing else;
 * the bodies are what tests/check_cuda_body.c runs on the CPU. The few
 * reductions (a loss's sum, accuracy's mean) are block reductions here, as
 * they are a property of the launch rather than of one thread's work.
 * Everything is enqueued on the context's compute stream; no launcher
 * synchronises, allocates or reads back. Interface: lgen/cuda.h; the
 * context: internal.h / cuda.c. Compiled once by nvcc for sm_80 and sm_90.
 */
#include "launch.cuh"
#include "body.h"

/* The sum of v over the block (THREADS threads); valid in thread 0. */
static __device__ float block_sum(float v, float *shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    return shared[0];
}

/* ---- elementwise ---------------------------------------------------------------- */

static __global__ void act_forward_kernel(int act, float alpha, int dt, const void *x, void *y, size_t n) {
    GRID_LOOP(i, n) lg_cuk_store(y, i, dt, lg_cuk_act_forward(act, lg_cuk_load(x, i, dt), alpha));
}

static __global__ void act_backward_kernel(int act, float alpha, int dt, const void *x, const void *y,
                                    const void *dy, void *dx, size_t n) {
    /* x or y may be NULL: an activation's backward needs only one of them
     * (sigmoid and tanh read y, the others x) */
    GRID_LOOP(i, n) {
        float g = lg_cuk_act_backward(act, x ? lg_cuk_load(x, i, dt) : 0.0f, y ? lg_cuk_load(y, i, dt) : 0.0f,
                                      lg_cuk_load(dy, i, dt), alpha);
        lg_cuk_store(dx, i, dt, g);
    }
}

static __global__ void convert_kernel(int to, void *dst, int from, const void *src, size_t n) {
    GRID_LOOP(i, n) lg_cuk_store(dst, i, to, lg_cuk_load(src, i, from));
}

static __global__ void bias_add_kernel(int dt, void *y, const void *b, size_t n, size_t out) {
    GRID_LOOP(i, n) lg_cuk_bias_add(i, dt, y, b, out);
}

static __global__ void bias_grad_kernel(int dt, const void *dy, size_t N, size_t out, void *db, int acc) {
    GRID_LOOP(j, out) lg_cuk_bias_grad(j, dt, dy, N, out, db, acc);
}

static __global__ void conv_bias_grad_kernel(int dt, const void *dy, size_t N, size_t C, size_t HW,
                                             void *db, int acc) {
    GRID_LOOP(c, C) lg_cuk_conv_bias_grad(c, dt, dy, N, C, HW, db, acc);
}

/* ---- cross entropy and accuracy ------------------------------------------------------ */

/* Workspace layout (floats): row_loss[N], row_weight[N], lse[N], divisor. */
static __global__ void ce_row_kernel(lg_cuda_ce d, const float *logits, const int32_t *labels,
                              const float *weight, float *ws) {
    size_t N = (size_t)d.N;
    GRID_LOOP(i, N) lg_cuk_ce_row(i, &d, logits, labels, weight, ws, ws + N, ws + 2 * N);
}

static __global__ void ce_reduce_kernel(lg_cuda_ce d, float *ws, float *loss) {
    __shared__ float sh[THREADS];
    size_t N = (size_t)d.N;
    float l = 0.0f, w = 0.0f;
    for (size_t i = threadIdx.x; i < N; i += THREADS) {
        l += ws[i];
        w += ws[N + i];
    }
    float ls = block_sum(l, sh);
    __syncthreads();
    float wsum = block_sum(w, sh);
    if (threadIdx.x == 0)
        lg_cuk_ce_finish(&d, ls, wsum, loss, ws + 3 * N);
}

static __global__ void ce_backward_kernel(lg_cuda_ce d, const float *logits, const int32_t *labels,
                                   const float *weight, float weight_sum, const float *dloss,
                                   const float *ws, float *dlogits) {
    size_t N = (size_t)d.N;
    float g = *dloss, divisor = ws[3 * N];
    GRID_LOOP(idx, N * (size_t)d.C)
    lg_cuk_ce_backward(idx, &d, logits, labels, weight, weight_sum, ws + 2 * N, g, divisor, dlogits);
}

static __global__ void accuracy_row_kernel(const float *logits, const int32_t *labels, int N, int C,
                                    float *ws) {
    GRID_LOOP(i, (size_t)N) ws[i] = lg_cuk_accuracy_row(i, logits, labels, C);
}

static __global__ void mean_kernel(const float *v, int n, float *out) {
    __shared__ float sh[THREADS];
    float s = 0.0f;
    for (int i = (int)threadIdx.x; i < n; i += THREADS)
        s += v[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        *out = s / (float)n;
}

/* ---- optimizers and loss scaling ------------------------------------------------------ */

static __global__ void sgd_kernel(lg_cuda_sgd h, int first, float *p, const float *g, float *buf, size_t n,
                           const int *skip) {
    GRID_LOOP(i, n) lg_cuk_sgd_update(i, &h, first, p, g, buf, skip);
}

static __global__ void adam_prepare_kernel(lg_cuda_adam h, lg_cuk_adam_step *st, const int *skip) {
    lg_cuk_adam_prepare(&h, st, skip);
}

static __global__ void adam_kernel(lg_cuda_adam h, const lg_cuk_adam_step *st, float *p, const float *g,
                            float *m, float *v, float *vmax, size_t n, const int *skip) {
    lg_cuk_adam_step s = *st;
    GRID_LOOP(i, n) lg_cuk_adam_update(i, &h, &s, p, g, m, v, vmax, skip);
}

static __global__ void scaler_seed_kernel(const lg_cuda_scaler *s, float *dloss) {
    *dloss = s->scale;
}

static __global__ void unscale_kernel(const lg_cuda_scaler *s, int dt, const void *grad, float *g32,
                               size_t n, int *found) {
    float inv = (float)(1.0 / (double)s->scale); /* GradScaler: double reciprocal */
    GRID_LOOP(i, n) g32[i] = lg_cuk_unscale(lg_cuk_load(grad, i, dt), inv, found);
}

static __global__ void scaler_update_kernel(lg_cuda_scaler *s, int *found) {
    lg_cuk_scaler_update(s, *found);
    *found = 0;
}

/* ---- elementwise arithmetic, dropout ---------------------------------------------- */

static __global__ void add_kernel(int dt, const void *a, const void *b, void *y, size_t n) {
    GRID_LOOP(i, n) lg_cuk_store(y, i, dt, lg_cuk_add(lg_cuk_load(a, i, dt), lg_cuk_load(b, i, dt)));
}

static __global__ void mul_kernel(int dt, const void *a, const void *b, void *y, size_t n) {
    GRID_LOOP(i, n) lg_cuk_store(y, i, dt, lg_cuk_mul(lg_cuk_load(a, i, dt), lg_cuk_load(b, i, dt)));
}

static __global__ void mul_backward_kernel(int dt, const void *a, const void *b, const void *dy,
                                           void *da, void *db, size_t n) {
    GRID_LOOP(i, n) {
        float g = lg_cuk_load(dy, i, dt);
        if (da)
            lg_cuk_store(da, i, dt, lg_cuk_mul(g, lg_cuk_load(b, i, dt)));
        if (db)
            lg_cuk_store(db, i, dt, lg_cuk_mul(g, lg_cuk_load(a, i, dt)));
    }
}

static __global__ void scale_kernel(int dt, float by, const void *x, void *y, size_t n) {
    GRID_LOOP(i, n) lg_cuk_store(y, i, dt, lg_cuk_mul(lg_cuk_load(x, i, dt), by));
}

static __global__ void accumulate_kernel(int dt, const void *x, void *y, size_t n) {
    GRID_LOOP(i, n) lg_cuk_store(y, i, dt, lg_cuk_add(lg_cuk_load(y, i, dt), lg_cuk_load(x, i, dt)));
}

static __global__ void dropout_kernel(int dt, uint64_t seed, uint64_t thresh, float scale,
                                      const void *x, void *y, uint8_t *mask, size_t n) {
    GRID_LOOP(i, n) lg_cuk_store(y, i, dt, lg_cuk_dropout(i, seed, thresh, scale, lg_cuk_load(x, i, dt), mask));
}

static __global__ void dropout_backward_kernel(int dt, float scale, const uint8_t *mask,
                                               const void *dy, void *dx, size_t n) {
    GRID_LOOP(i, n) lg_cuk_store(dx, i, dt, mask[i] ? lg_cuk_load(dy, i, dt) * scale : 0.0f);
}

/* ---- softmax, global average pooling -------------------------------------------------- */

static __global__ void softmax_kernel(int dt, int log_, size_t rows, size_t dim, size_t inner,
                                      const void *x, void *y) {
    GRID_LOOP(t, rows) lg_cuk_softmax_forward(t, dt, dim, inner, log_, x, y);
}

static __global__ void softmax_backward_kernel(int dt, int log_, size_t rows, size_t dim, size_t inner,
                                               const void *y, const void *dy, void *dx) {
    GRID_LOOP(t, rows) lg_cuk_softmax_backward(t, dt, dim, inner, log_, y, dy, dx);
}

static __global__ void gap_kernel(int dt, size_t planes, size_t hw, const void *x, void *y) {
    GRID_LOOP(p, planes) lg_cuk_global_avg_pool_forward(p, dt, hw, x, y);
}

static __global__ void gap_backward_kernel(int dt, size_t n, size_t hw, const void *dy, void *dx) {
    GRID_LOOP(i, n) lg_cuk_store(dx, i, dt, lg_cuk_global_avg_pool_backward(i, dt, hw, dy));
}

/* ---- layer_norm, pooling, structure ------------------------------------------------------ */

static __global__ void ln_forward_kernel(int dt, size_t rows, size_t D, float eps, const void *x,
                                         const void *w, const void *b, void *y, float *sm, float *si) {
    GRID_LOOP(r, rows) lg_cuk_layer_norm_forward(r, dt, D, eps, x, w, b, y, sm, si);
}

static __global__ void ln_backward_kernel(int dt, size_t rows, size_t D, const void *x, const void *w,
                                          const float *sm, const float *si, const void *dy, void *dx) {
    GRID_LOOP(r, rows) lg_cuk_layer_norm_backward(r, dt, D, x, w, sm, si, dy, dx);
}

static __global__ void ln_param_kernel(int dt, size_t rows, size_t D, const void *x, const float *sm,
                                       const float *si, const void *dy, void *dw, void *db) {
    GRID_LOOP(k, D) lg_cuk_layer_norm_param_grad(k, dt, rows, D, x, sm, si, dy, dw, db);
}

static __global__ void max_pool_kernel(lg_cuda_pool2d d, int dt, size_t n, const void *x, void *y,
                                       int32_t *argmax) {
    GRID_LOOP(i, n) lg_cuk_max_pool_forward(i, &d, dt, x, y, argmax);
}

static __global__ void max_pool_backward_kernel(lg_cuda_pool2d d, int dt, size_t n,
                                                const int32_t *argmax, const void *dy, void *dx) {
    GRID_LOOP(i, n) lg_cuk_max_pool_backward(i, &d, dt, argmax, dy, dx);
}

static __global__ void avg_pool_kernel(lg_cuda_pool2d d, int dt, size_t n, const void *x, void *y) {
    GRID_LOOP(i, n) lg_cuk_avg_pool_forward(i, &d, dt, x, y);
}

static __global__ void avg_pool_backward_kernel(lg_cuda_pool2d d, int dt, size_t n, const void *dy,
                                                void *dx) {
    GRID_LOOP(i, n) lg_cuk_avg_pool_backward(i, &d, dt, dy, dx);
}

static __global__ void adaptive_kernel(int dt, size_t n, size_t H, size_t W, size_t OH, size_t OW,
                                       const void *x, void *y) {
    GRID_LOOP(i, n) lg_cuk_adaptive_pool_forward(i, dt, H, W, OH, OW, x, y);
}

static __global__ void adaptive_backward_kernel(int dt, size_t n, size_t H, size_t W, size_t OH, size_t OW,
                                                const void *dy, void *dx) {
    GRID_LOOP(i, n) lg_cuk_adaptive_pool_backward(i, dt, H, W, OH, OW, dy, dx);
}

static __global__ void upsample_kernel(int dt, size_t n, size_t H, size_t W, int s, const void *x, void *y) {
    GRID_LOOP(i, n) lg_cuk_upsample_forward(i, dt, H, W, s, x, y);
}

static __global__ void upsample_backward_kernel(int dt, size_t n, size_t H, size_t W, int s, const void *dy,
                                                void *dx) {
    GRID_LOOP(i, n) lg_cuk_upsample_backward(i, dt, H, W, s, dy, dx);
}

/* dir 0: y[dst] = x[idx] (forward), 1: dx[idx] = dy[dst] (backward) */
static __global__ void rpn_flatten_kernel(int dt, int dir, size_t n, size_t A, size_t D, size_t hw,
                                          size_t total, size_t offset, const void *src, void *dst) {
    GRID_LOOP(i, n) {
        size_t j = lg_cuk_rpn_flatten_dst(i, A, D, hw, total, offset);
        if (dir == 0)
            lg_cuk_store(dst, j, dt, lg_cuk_load(src, i, dt));
        else
            lg_cuk_store(dst, i, dt, lg_cuk_load(src, j, dt));
    }
}

static __global__ void transpose_kernel(int dt, size_t n, size_t A, size_t mid, size_t B, size_t inner,
                                        const void *x, void *y) {
    GRID_LOOP(i, n) lg_cuk_store(y, i, dt, lg_cuk_load(x, lg_cuk_transpose_src(i, A, mid, B, inner), dt));
}

/* Up to LG_CUDA_MAX_CONCAT pieces per launch, by value: columns col0 ..
 * col0 + total - 1 of the whole tensor, whose rows are `stride` long. */
struct Pieces {
    const void *in[LG_CUDA_MAX_CONCAT];
    void *out[LG_CUDA_MAX_CONCAT];
    size_t sizes[LG_CUDA_MAX_CONCAT];
    size_t col0, stride;
};

static __global__ void concat_kernel(int dt, size_t n, int k, size_t total, Pieces p, void *y) {
    GRID_LOOP(i, n) {
        size_t src;
        int which = lg_cuk_concat_src(i, k, p.sizes, total, &src);
        lg_cuk_store(y, lg_cuk_concat_whole(i, total, p.stride, p.col0), dt, lg_cuk_load(p.in[which], src, dt));
    }
}

static __global__ void split_kernel(int dt, size_t n, int k, size_t total, Pieces p, const void *x) {
    GRID_LOOP(i, n) {
        size_t dst;
        int which = lg_cuk_concat_src(i, k, p.sizes, total, &dst);
        if (p.out[which]) /* NULL: a piece whose gradient nothing needs */
            lg_cuk_store(p.out[which], dst, dt, lg_cuk_load(x, lg_cuk_concat_whole(i, total, p.stride, p.col0), dt));
    }
}

static __global__ void topk_row_kernel(const float *logits, const int32_t *labels, int N, int C, int k,
                                float *ws) {
    GRID_LOOP(i, (size_t)N) ws[i] = lg_cuk_topk_row(i, logits, labels, C, k);
}

/* ---- reductions (two passes, fixed order: deterministic) ------------------------------- */

static __global__ void reduce_partial_kernel(int kind, float beta, int dt, const void *x, const void *t,
                                             size_t n, float *partial) {
    __shared__ float sh[THREADS];
    float s = 0.0f;
    GRID_LOOP(i, n) s += lg_cuk_reduce_term(kind, lg_cuk_load(x, i, dt), t ? lg_cuk_load(t, i, dt) : 0.0f, beta);
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = s;
}

/* mode 0: *out = sum (/ n when mean); mode 1: clipping — partial[B] gets
 * the clip factor and *out (if any) the norm. */
static __global__ void reduce_final_kernel(const float *partial, unsigned blocks, size_t n, int mean,
                                    int mode, double max_norm, float *coef, float *out) {
    __shared__ float sh[THREADS];
    float s = 0.0f;
    for (unsigned b = threadIdx.x; b < blocks; b += THREADS)
        s += partial[b];
    s = block_sum(s, sh);
    if (threadIdx.x != 0)
        return;
    if (mode == 0) {
        *out = mean ? (float)((double)s / (double)n) : s;
    } else {
        float norm;
        *coef = lg_cuk_clip_coef((double)s, max_norm, &norm);
        if (out)
            *out = norm;
    }
}

static __global__ void loss_backward_kernel(int kind, int mean, float beta, int dt, const void *x,
                                            const void *t, const float *dloss, void *dx, size_t n) {
    float g = mean ? (float)((double)*dloss / (double)n) : *dloss;
    GRID_LOOP(i, n) {
        float v = kind == LG_CUDA_REDUCE_SUM
                      ? g
                      : g * lg_cuk_loss_grad(kind, lg_cuk_load(x, i, dt), lg_cuk_load(t, i, dt), beta);
        lg_cuk_store(dx, i, dt, v);
    }
}

static __global__ void clip_scale_kernel(const float *coef, float *g, size_t n) {
    float k = *coef;
    GRID_LOOP(i, n) g[i] *= k;
}

static __global__ void clip_value_kernel(float v, float *g, size_t n) {
    GRID_LOOP(i, n) g[i] = lg_cuk_clip_value(g[i], v);
}

/* ---- NMS ----------------------------------------------------------------------------- */

struct NmsWs {
    uint64_t *mask, *removed;
    int *order, *groups;
    float *sorted;
};

static NmsWs nms_layout(void *ws, size_t n) {
    size_t blocks = (n + LG_CUK_NMS_BLOCK - 1) / LG_CUK_NMS_BLOCK;
    NmsWs w;
    w.mask = (uint64_t *)ws;
    w.removed = w.mask + n * blocks;
    w.order = (int *)(w.removed + blocks);
    w.groups = w.order + n;
    w.sorted = (float *)(w.groups + n);
    return w;
}

static __global__ void nms_rank_kernel(const float *scores, size_t n, int *order) {
    GRID_LOOP(i, n) order[lg_cuk_rank_desc(i, scores, n)] = (int)i;
}

static __global__ void nms_gather_kernel(const float *boxes, const int *groups, const int *order, size_t n,
                                  float *sorted, int *sorted_groups) {
    GRID_LOOP(k, 4 * n) {
        sorted[k] = boxes[4 * (size_t)order[k / 4] + k % 4];
        if (groups && k % 4 == 0)
            sorted_groups[k / 4] = groups[order[k / 4]];
    }
}

static __global__ void nms_mask_kernel(const float *sorted, const int *groups, size_t n, float thresh,
                                uint64_t *mask) {
    size_t blocks = (n + LG_CUK_NMS_BLOCK - 1) / LG_CUK_NMS_BLOCK;
    GRID_LOOP(t, n * blocks) lg_cuk_nms_mask(t / blocks, t % blocks, sorted, groups, n, thresh, mask);
}

static __global__ void box_decode_kernel(lg_cuda_box_coder cd, const float *deltas, const float *ref,
                                  size_t n, float *out) {
    GRID_LOOP(i, n) lg_cuk_box_decode(i, &cd, deltas, ref, out);
}

static __global__ void box_encode_kernel(lg_cuda_box_coder cd, const float *gt, const float *ref, size_t n,
                                  float *deltas) {
    GRID_LOOP(i, n) lg_cuk_box_encode(i, &cd, gt, ref, deltas);
}

static __global__ void box_clip_kernel(float *boxes, size_t n, float H, float W) {
    GRID_LOOP(i, n) lg_cuk_box_clip(i, boxes, H, W);
}

static __global__ void nms_reduce_kernel(size_t n, const uint64_t *mask, uint64_t *removed,
                                  const int *order, int *keep, int *num_keep, int max_keep) {
    lg_cuk_nms_reduce(n, mask, removed, order, keep, num_keep, max_keep);
}

/* ---- IoU and matching ------------------------------------------------------------------ */

static __global__ void box_iou_kernel(const float *a, const float *b, size_t total, size_t nb, float *iou) {
    GRID_LOOP(i, total) lg_cuk_box_iou(i, a, b, nb, iou);
}

static __global__ void match_highest_kernel(const float *iou, int num_gt, int num_pred, float *highest) {
    GRID_LOOP(g, (size_t)num_gt) lg_cuk_match_highest(g, iou, num_pred, highest);
}

static __global__ void match_kernel(lg_cuda_matcher m, const float *iou, int num_gt, int num_pred,
                             const float *highest, int *matches) {
    GRID_LOOP(p, (size_t)num_pred) matches[p] = lg_cuk_match(p, &m, iou, num_gt, num_pred, highest);
}

/* ---- RoIAlign ----------------------------------------------------------------------------- */

struct Levels {
    const float *p[LG_CUDA_MAX_LEVELS];
};
struct GradLevels {
    float *p[LG_CUDA_MAX_LEVELS];
};

static __global__ void roi_align_forward_kernel(lg_cuda_roi_align d, Levels f, const float *rois,
                                         size_t total, float *out) {
    GRID_LOOP(i, total) lg_cuk_roi_align_forward(i, &d, f.p, rois, out);
}

static __global__ void roi_align_backward_kernel(lg_cuda_roi_align d, GradLevels f, const float *rois,
                                          size_t total, const float *dout) {
    GRID_LOOP(i, total) lg_cuk_roi_align_backward(i, &d, f.p, rois, dout);
}

/* ---- the C interface ---------------------------------------------------------------------- */

extern "C" {

lg_status lg_cuda_act_forward(lg_cuda *c, lg_cuda_act act, float alpha, lg_cuda_dtype dt,
                              const void *x, void *y, size_t n, lg_error *err) {
    if (n == 0)
        return LG_OK;
    act_forward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)act, alpha, (int)dt, x, y, n);
    return launched("activation forward", err);
}

lg_status lg_cuda_act_backward(lg_cuda *c, lg_cuda_act act, float alpha, lg_cuda_dtype dt,
                               const void *x, const void *y, const void *dy, void *dx, size_t n,
                               lg_error *err) {
    if (n == 0)
        return LG_OK;
    act_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)act, alpha, (int)dt, x, y, dy,
                                                                 dx, n);
    return launched("activation backward", err);
}

lg_status lg_cuda_convert(lg_cuda *c, lg_cuda_dtype to, void *dst, lg_cuda_dtype from,
                          const void *src, size_t n, lg_error *err) {
    if (n == 0)
        return LG_OK;
    convert_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)to, dst, (int)from, src, n);
    return launched("dtype conversion", err);
}

lg_status lg_cuda_bias_add(lg_cuda *c, lg_cuda_dtype dt, void *y, const void *b, size_t N,
                           size_t out, lg_error *err) {
    size_t n = N * out;
    if (n == 0)
        return LG_OK;
    bias_add_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, y, b, n, out);
    return launched("bias add", err);
}

lg_status lg_cuda_bias_grad(lg_cuda *c, lg_cuda_dtype dt, const void *dy, size_t N, size_t out,
                            void *db, int accumulate, lg_error *err) {
    bias_grad_kernel<<<grid_for(out), THREADS, 0, c->stream>>>((int)dt, dy, N, out, db, accumulate);
    return launched("bias gradient", err);
}

lg_status lg_cuda_conv_bias_grad(lg_cuda *c, lg_cuda_dtype dt, const void *dy, size_t N, size_t C,
                                 size_t HW, void *db, int accumulate, lg_error *err) {
    conv_bias_grad_kernel<<<grid_for(C), THREADS, 0, c->stream>>>((int)dt, dy, N, C, HW, db, accumulate);
    return launched("convolution bias gradient", err);
}

size_t lg_cuda_cross_entropy_workspace(const lg_cuda_ce *d) {
    return (3 * (size_t)d->N + 1) * sizeof(float);
}

lg_status lg_cuda_cross_entropy_forward(lg_cuda *c, const lg_cuda_ce *d, const float *logits,
                                        const int32_t *labels, const float *weight, float *loss,
                                        void *ws, lg_error *err) {
    ce_row_kernel<<<grid_for((size_t)d->N), THREADS, 0, c->stream>>>(*d, logits, labels, weight,
                                                                      (float *)ws);
    lg_status st = launched("cross entropy rows", err);
    if (st != LG_OK)
        return st;
    ce_reduce_kernel<<<1, THREADS, 0, c->stream>>>(*d, (float *)ws, loss);
    return launched("cross entropy reduction", err);
}

lg_status lg_cuda_cross_entropy_backward(lg_cuda *c, const lg_cuda_ce *d, const float *logits,
                                         const int32_t *labels, const float *weight,
                                         float weight_sum, const float *dloss, const void *ws,
                                         float *dlogits, lg_error *err) {
    size_t n = (size_t)d->N * (size_t)d->C;
    ce_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*d, logits, labels, weight, weight_sum,
                                                               dloss, (const float *)ws, dlogits);
    return launched("cross entropy backward", err);
}

lg_status lg_cuda_accuracy(lg_cuda *c, const float *logits, const int32_t *labels, int N, int C,
                           float *acc, void *ws, lg_error *err) {
    accuracy_row_kernel<<<grid_for((size_t)N), THREADS, 0, c->stream>>>(logits, labels, N, C,
                                                                         (float *)ws);
    lg_status st = launched("accuracy rows", err);
    if (st != LG_OK)
        return st;
    mean_kernel<<<1, THREADS, 0, c->stream>>>((const float *)ws, N, acc);
    return launched("accuracy mean", err);
}

lg_status lg_cuda_sgd_update(lg_cuda *c, const lg_cuda_sgd *h, int first_step, float *param,
                             const float *grad, float *momentum_buf, size_t n, const int *skip,
                             lg_error *err) {
    if (n == 0)
        return LG_OK;
    sgd_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*h, first_step, param, grad, momentum_buf, n,
                                                        skip);
    return launched("SGD update", err);
}

size_t lg_cuda_adam_state_bytes(void) {
    return sizeof(lg_cuk_adam_step);
}

lg_status lg_cuda_adam_prepare(lg_cuda *c, const lg_cuda_adam *h, void *state, const int *skip,
                               lg_error *err) {
    adam_prepare_kernel<<<1, 1, 0, c->stream>>>(*h, (lg_cuk_adam_step *)state, skip);
    return launched("Adam step scalars", err);
}

lg_status lg_cuda_adam_update(lg_cuda *c, const lg_cuda_adam *h, const void *state, float *param,
                              const float *grad, float *exp_avg, float *exp_avg_sq,
                              float *max_exp_avg_sq, size_t n, const int *skip, lg_error *err) {
    if (n == 0)
        return LG_OK;
    adam_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*h, (const lg_cuk_adam_step *)state, param,
                                                         grad, exp_avg, exp_avg_sq, max_exp_avg_sq,
                                                         n, skip);
    return launched("Adam update", err);
}

lg_status lg_cuda_scaler_seed(lg_cuda *c, const lg_cuda_scaler *scaler, float *dloss,
                              lg_error *err) {
    scaler_seed_kernel<<<1, 1, 0, c->stream>>>(scaler, dloss);
    return launched("loss scale seed", err);
}

lg_status lg_cuda_unscale(lg_cuda *c, const lg_cuda_scaler *scaler, lg_cuda_dtype dt,
                          const void *grad, float *grad32, size_t n, int *found_inf,
                          lg_error *err) {
    if (n == 0)
        return LG_OK;
    unscale_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(scaler, (int)dt, grad, grad32, n,
                                                            found_inf);
    return launched("gradient unscale", err);
}

lg_status lg_cuda_scaler_update(lg_cuda *c, lg_cuda_scaler *scaler, int *found_inf,
                                lg_error *err) {
    scaler_update_kernel<<<1, 1, 0, c->stream>>>(scaler, found_inf);
    return launched("loss scale update", err);
}

lg_status lg_cuda_add(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b, void *y, size_t n,
                      lg_error *err) {
    if (n == 0)
        return LG_OK;
    add_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, a, b, y, n);
    return launched("add", err);
}

lg_status lg_cuda_mul(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b, void *y, size_t n,
                      lg_error *err) {
    if (n == 0)
        return LG_OK;
    mul_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, a, b, y, n);
    return launched("mul", err);
}

lg_status lg_cuda_mul_backward(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b,
                               const void *dy, void *da, void *db, size_t n, lg_error *err) {
    if (n == 0 || (!da && !db))
        return LG_OK;
    mul_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, a, b, dy, da, db, n);
    return launched("mul backward", err);
}

lg_status lg_cuda_scale(lg_cuda *c, lg_cuda_dtype dt, float by, const void *x, void *y, size_t n,
                        lg_error *err) {
    if (n == 0)
        return LG_OK;
    scale_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, by, x, y, n);
    return launched("scale", err);
}

lg_status lg_cuda_accumulate(lg_cuda *c, lg_cuda_dtype dt, const void *x, void *y, size_t n,
                             lg_error *err) {
    if (n == 0)
        return LG_OK;
    accumulate_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, x, y, n);
    return launched("accumulate", err);
}

lg_status lg_cuda_copy(lg_cuda *c, void *dst, const void *src, size_t bytes, lg_error *err) {
    if (bytes == 0 || dst == src)
        return LG_OK;
    LG_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
    return LG_OK;
}

lg_status lg_cuda_dropout_forward(lg_cuda *c, lg_cuda_dtype dt, double p, uint64_t seed,
                                  const void *x, void *y, uint8_t *mask, size_t n, lg_error *err) {
    if (!(p >= 0.0 && p <= 1.0))
        return lg_error_set(err, LG_ERR_ARG, "dropout: p %g is out of range [0, 1]", p);
    if (n == 0)
        return LG_OK;
    uint64_t thresh = (uint64_t)(p * 9007199254740992.0); /* p * 2^53, as the CPU kernel */
    float scale = (float)(p < 1.0 ? 1.0 / (1.0 - p) : 0.0);
    dropout_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, seed, thresh, scale, x, y, mask, n);
    return launched("dropout", err);
}

lg_status lg_cuda_dropout_backward(lg_cuda *c, lg_cuda_dtype dt, double p, const uint8_t *mask,
                                   const void *dy, void *dx, size_t n, lg_error *err) {
    if (!(p >= 0.0 && p <= 1.0))
        return lg_error_set(err, LG_ERR_ARG, "dropout: p %g is out of range [0, 1]", p);
    if (n == 0)
        return LG_OK;
    float scale = (float)(p < 1.0 ? 1.0 / (1.0 - p) : 0.0);
    dropout_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, scale, mask, dy, dx, n);
    return launched("dropout backward", err);
}

lg_status lg_cuda_softmax_forward(lg_cuda *c, lg_cuda_dtype dt, int log_softmax, size_t outer,
                                  size_t dim, size_t inner, const void *x, void *y, lg_error *err) {
    size_t rows = outer * inner;
    if (rows == 0 || dim == 0)
        return LG_OK;
    softmax_kernel<<<grid_for(rows), THREADS, 0, c->stream>>>((int)dt, log_softmax, rows, dim, inner, x, y);
    return launched("softmax", err);
}

lg_status lg_cuda_softmax_backward(lg_cuda *c, lg_cuda_dtype dt, int log_softmax, size_t outer,
                                   size_t dim, size_t inner, const void *y, const void *dy, void *dx,
                                   lg_error *err) {
    size_t rows = outer * inner;
    if (rows == 0 || dim == 0)
        return LG_OK;
    softmax_backward_kernel<<<grid_for(rows), THREADS, 0, c->stream>>>((int)dt, log_softmax, rows, dim,
                                                                       inner, y, dy, dx);
    return launched("softmax backward", err);
}

lg_status lg_cuda_global_avg_pool_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t hw,
                                          const void *x, void *y, lg_error *err) {
    if (planes == 0 || hw == 0)
        return LG_OK;
    gap_kernel<<<grid_for(planes), THREADS, 0, c->stream>>>((int)dt, planes, hw, x, y);
    return launched("global_avg_pool", err);
}

lg_status lg_cuda_global_avg_pool_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t hw,
                                           const void *dy, void *dx, lg_error *err) {
    size_t n = planes * hw;
    if (n == 0)
        return LG_OK;
    gap_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, n, hw, dy, dx);
    return launched("global_avg_pool backward", err);
}

lg_status lg_cuda_layer_norm_forward(lg_cuda *c, lg_cuda_dtype dt, size_t rows, size_t D, float eps,
                                     const void *x, const void *weight, const void *bias, void *y,
                                     float *save_mean, float *save_invstd, lg_error *err) {
    if (D == 0 || (!weight) != (!bias))
        return lg_error_set(err, LG_ERR_ARG, "layer_norm: D %zu, weight and bias both or neither", D);
    if (rows == 0)
        return LG_OK;
    ln_forward_kernel<<<grid_for(rows), THREADS, 0, c->stream>>>((int)dt, rows, D, eps, x, weight, bias, y,
                                                                  save_mean, save_invstd);
    return launched("layer_norm", err);
}

lg_status lg_cuda_layer_norm_backward(lg_cuda *c, lg_cuda_dtype dt, size_t rows, size_t D, const void *x,
                                      const void *weight, const float *save_mean,
                                      const float *save_invstd, const void *dy, void *dx,
                                      void *dweight, void *dbias, lg_error *err) {
    if (rows == 0 || D == 0)
        return LG_OK;
    if (dx)
        ln_backward_kernel<<<grid_for(rows), THREADS, 0, c->stream>>>((int)dt, rows, D, x, weight, save_mean,
                                                                       save_invstd, dy, dx);
    if (dweight || dbias)
        ln_param_kernel<<<grid_for(D), THREADS, 0, c->stream>>>((int)dt, rows, D, x, save_mean, save_invstd,
                                                                 dy, dweight, dbias);
    return launched("layer_norm backward", err);
}

lg_status lg_cuda_pool2d_init(lg_cuda_pool2d *d, lg_error *err) {
    if (d->H < 1 || d->W < 1 || d->kh < 1 || d->kw < 1 || d->sh < 1 || d->sw < 1 || d->ph < 0 ||
        d->pw < 0 || 2 * d->ph > d->kh || 2 * d->pw > d->kw)
        return lg_error_set(err, LG_ERR_ARG,
                            "pool2d: input (%d, %d), kernel (%d, %d), stride (%d, %d) must be >= 1 "
                            "and padding (%d, %d) at most half the kernel",
                            d->H, d->W, d->kh, d->kw, d->sh, d->sw, d->ph, d->pw);
    d->OH = lg_cuk_pool_out(d->H, d->kh, d->sh, d->ph, d->ceil_mode);
    d->OW = lg_cuk_pool_out(d->W, d->kw, d->sw, d->pw, d->ceil_mode);
    if (d->OH < 1 || d->OW < 1)
        return lg_error_set(err, LG_ERR_ARG, "pool2d: output size (%d, %d) is too small", d->OH, d->OW);
    return LG_OK;
}

lg_status lg_cuda_max_pool2d_forward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt,
                                     size_t planes, const void *x, void *y, int32_t *argmax,
                                     lg_error *err) {
    size_t n = planes * (size_t)d->OH * (size_t)d->OW;
    if (n == 0)
        return LG_OK;
    max_pool_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*d, (int)dt, n, x, y, argmax);
    return launched("max_pool2d", err);
}

lg_status lg_cuda_max_pool2d_backward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt,
                                      size_t planes, const int32_t *argmax, const void *dy,
                                      void *dx, lg_error *err) {
    size_t n = planes * (size_t)d->H * (size_t)d->W;
    if (n == 0)
        return LG_OK;
    max_pool_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*d, (int)dt, n, argmax, dy, dx);
    return launched("max_pool2d backward", err);
}

lg_status lg_cuda_avg_pool2d_forward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt,
                                     size_t planes, const void *x, void *y, lg_error *err) {
    size_t n = planes * (size_t)d->OH * (size_t)d->OW;
    if (n == 0)
        return LG_OK;
    avg_pool_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*d, (int)dt, n, x, y);
    return launched("avg_pool2d", err);
}

lg_status lg_cuda_avg_pool2d_backward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt,
                                      size_t planes, const void *dy, void *dx, lg_error *err) {
    size_t n = planes * (size_t)d->H * (size_t)d->W;
    if (n == 0)
        return LG_OK;
    avg_pool_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*d, (int)dt, n, dy, dx);
    return launched("avg_pool2d backward", err);
}

lg_status lg_cuda_adaptive_avg_pool_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H,
                                            size_t W, size_t OH, size_t OW, const void *x, void *y,
                                            lg_error *err) {
    if (!H || !W || !OH || !OW)
        return lg_error_set(err, LG_ERR_ARG, "adaptive_avg_pool2d: empty input or output");
    size_t n = planes * OH * OW;
    if (n == 0)
        return LG_OK;
    adaptive_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, n, H, W, OH, OW, x, y);
    return launched("adaptive_avg_pool2d", err);
}

lg_status lg_cuda_adaptive_avg_pool_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H,
                                             size_t W, size_t OH, size_t OW, const void *dy, void *dx,
                                             lg_error *err) {
    if (!H || !W || !OH || !OW)
        return lg_error_set(err, LG_ERR_ARG, "adaptive_avg_pool2d: empty input or output");
    size_t n = planes * H * W;
    if (n == 0)
        return LG_OK;
    adaptive_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, n, H, W, OH, OW, dy, dx);
    return launched("adaptive_avg_pool2d backward", err);
}

lg_status lg_cuda_upsample_nearest_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H,
                                           size_t W, int scale, const void *x, void *y, lg_error *err) {
    if (scale < 1)
        return lg_error_set(err, LG_ERR_ARG, "upsample_nearest: scale %d must be >= 1", scale);
    size_t n = planes * H * W * (size_t)scale * (size_t)scale;
    if (n == 0)
        return LG_OK;
    upsample_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, n, H, W, scale, x, y);
    return launched("upsample_nearest", err);
}

lg_status lg_cuda_upsample_nearest_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H,
                                            size_t W, int scale, const void *dy, void *dx, lg_error *err) {
    if (scale < 1)
        return lg_error_set(err, LG_ERR_ARG, "upsample_nearest: scale %d must be >= 1", scale);
    size_t n = planes * H * W;
    if (n == 0)
        return LG_OK;
    upsample_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, n, H, W, scale, dy, dx);
    return launched("upsample_nearest backward", err);
}

static lg_status rpn_flatten(lg_cuda *c, lg_cuda_dtype dt, int dir, size_t N, int A, int D, int H, int W,
                             size_t total, size_t offset, const void *src, void *dst, lg_error *err) {
    size_t hw = (size_t)H * (size_t)W;
    if (A < 1 || D < 1 || H < 1 || W < 1 || offset + hw * (size_t)A > total)
        return lg_error_set(err, LG_ERR_ARG,
                            "rpn_flatten: %d anchors x %d values on a %dx%d map at row %zu do not fit "
                            "in %zu rows", A, D, H, W, offset, total);
    size_t n = N * (size_t)A * (size_t)D * hw;
    if (n == 0)
        return LG_OK;
    rpn_flatten_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, dir, n, (size_t)A, (size_t)D, hw,
                                                                total, offset, src, dst);
    return launched(dir ? "rpn_flatten backward" : "rpn_flatten", err);
}

lg_status lg_cuda_rpn_flatten_forward(lg_cuda *c, lg_cuda_dtype dt, size_t N, int A, int D, int H, int W,
                                      const void *x, void *y, size_t total, size_t offset, lg_error *err) {
    return rpn_flatten(c, dt, 0, N, A, D, H, W, total, offset, x, y, err);
}

lg_status lg_cuda_rpn_flatten_backward(lg_cuda *c, lg_cuda_dtype dt, size_t N, int A, int D, int H,
                                       int W, const void *dy, size_t total, size_t offset, void *dx,
                                       lg_error *err) {
    return rpn_flatten(c, dt, 1, N, A, D, H, W, total, offset, dy, dx, err);
}

lg_status lg_cuda_transpose(lg_cuda *c, lg_cuda_dtype dt, size_t outer, size_t a, size_t mid, size_t b,
                            size_t inner, const void *x, void *y, lg_error *err) {
    size_t n = outer * a * mid * b * inner;
    if (n == 0)
        return LG_OK;
    transpose_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, n, a, mid, b, inner, x, y);
    return launched("transpose", err);
}

/* concat (dir 0) or split (dir 1) of k pieces, LG_CUDA_MAX_CONCAT per launch. */
static lg_status concat_split(lg_cuda *c, lg_cuda_dtype dt, int dir, size_t outer, int k, const size_t *sizes,
                              const void *const *in, void *const *out, void *whole, const void *cwhole,
                              lg_error *err) {
    if (k < 1)
        return lg_error_set(err, LG_ERR_ARG, "%s of %d pieces", dir ? "split" : "concat", k);
    size_t stride = 0;
    for (int i = 0; i < k; i++)
        stride += sizes[i];
    size_t col0 = 0;
    for (int first = 0; first < k; first += LG_CUDA_MAX_CONCAT) {
        Pieces p = {};
        int m = k - first < LG_CUDA_MAX_CONCAT ? k - first : LG_CUDA_MAX_CONCAT;
        size_t total = 0;
        for (int i = 0; i < m; i++) {
            p.sizes[i] = sizes[first + i];
            total += p.sizes[i];
            if (dir)
                p.out[i] = out[first + i];
            else
                p.in[i] = in[first + i];
        }
        p.col0 = col0, p.stride = stride;
        size_t n = outer * total;
        if (n && dir)
            split_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, n, m, total, p, cwhole);
        else if (n)
            concat_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, n, m, total, p, whole);
        col0 += total;
    }
    return launched(dir ? "split" : "concat", err);
}

lg_status lg_cuda_concat(lg_cuda *c, lg_cuda_dtype dt, size_t outer, int k, const size_t *sizes,
                         const void *const *inputs, void *y, lg_error *err) {
    return concat_split(c, dt, 0, outer, k, sizes, inputs, NULL, y, NULL, err);
}

lg_status lg_cuda_split(lg_cuda *c, lg_cuda_dtype dt, size_t outer, int k, const size_t *sizes,
                        const void *x, void *const *outputs, lg_error *err) {
    return concat_split(c, dt, 1, outer, k, sizes, NULL, outputs, NULL, x, err);
}

lg_status lg_cuda_topk_accuracy(lg_cuda *c, const float *logits, const int32_t *labels, int N,
                                int C, int k, float *acc, void *ws, lg_error *err) {
    if (N < 1 || C < 1 || k < 1)
        return lg_error_set(err, LG_ERR_ARG, "topk_accuracy: N %d, classes %d and k %d must be >= 1",
                            N, C, k);
    topk_row_kernel<<<grid_for((size_t)N), THREADS, 0, c->stream>>>(logits, labels, N, C, k,
                                                                     (float *)ws);
    lg_status st = launched("top-k accuracy rows", err);
    if (st != LG_OK)
        return st;
    mean_kernel<<<1, THREADS, 0, c->stream>>>((const float *)ws, N, acc);
    return launched("top-k accuracy mean", err);
}

static unsigned reduce_blocks(size_t n) {
    unsigned b = grid_for(n);
    return b > LG_CUDA_REDUCE_BLOCKS ? LG_CUDA_REDUCE_BLOCKS : b;
}

lg_status lg_cuda_reduce(lg_cuda *c, lg_cuda_reduce_kind kind, int mean, float beta,
                         lg_cuda_dtype dt, const void *x, const void *target, size_t n, float *out,
                         lg_error *err) {
    if (n == 0 && mean)
        return lg_error_set(err, LG_ERR_ARG, "mean of zero elements is undefined");
    if (kind < LG_CUDA_REDUCE_SUM && !target)
        return lg_error_set(err, LG_ERR_ARG, "loss: missing target");
    unsigned blocks = reduce_blocks(n);
    reduce_partial_kernel<<<blocks, THREADS, 0, c->stream>>>((int)kind, beta, (int)dt, x, target, n,
                                                             c->reduce);
    reduce_final_kernel<<<1, THREADS, 0, c->stream>>>(c->reduce, blocks, n, mean, 0, 0.0, NULL, out);
    return launched("reduction", err);
}

lg_status lg_cuda_loss_backward(lg_cuda *c, lg_cuda_reduce_kind kind, int mean, float beta,
                                lg_cuda_dtype dt, const void *x, const void *target, const float *dloss,
                                void *dx, size_t n, lg_error *err) {
    if (n == 0)
        return LG_OK;
    if (kind == LG_CUDA_REDUCE_SQUARES)
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "no backward for a sum of squares");
    if (kind < LG_CUDA_REDUCE_SUM && !target)
        return lg_error_set(err, LG_ERR_ARG, "loss: missing target");
    loss_backward_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)kind, mean, beta, (int)dt, x, target,
                                                                 dloss, dx, n);
    return launched("loss backward", err);
}

lg_status lg_cuda_clip_grad_norm(lg_cuda *c, float *grads, size_t n, double max_norm, float *norm,
                                 lg_error *err) {
    if (!(max_norm >= 0.0))
        return lg_error_set(err, LG_ERR_ARG, "clip_grad_norm: max_norm %g must be >= 0", max_norm);
    unsigned blocks = reduce_blocks(n);
    float *coef = c->reduce + LG_CUDA_REDUCE_BLOCKS;
    reduce_partial_kernel<<<blocks, THREADS, 0, c->stream>>>((int)LG_CUDA_REDUCE_SQUARES, 0.0f, (int)LG_CUDA_F32,
                                                             grads, NULL, n, c->reduce);
    reduce_final_kernel<<<1, THREADS, 0, c->stream>>>(c->reduce, blocks, n, 0, 1, max_norm, coef, norm);
    if (n)
        clip_scale_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(coef, grads, n);
    return launched("clip_grad_norm", err);
}

lg_status lg_cuda_clip_grad_value(lg_cuda *c, float *grads, size_t n, float clip_value,
                                  lg_error *err) {
    if (!(clip_value >= 0.0f))
        return lg_error_set(err, LG_ERR_ARG, "clip_grad_value: clip_value %g must be >= 0",
                            (double)clip_value);
    if (n == 0)
        return LG_OK;
    clip_value_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(clip_value, grads, n);
    return launched("clip_grad_value", err);
}

size_t lg_cuda_nms_workspace(size_t n) {
    size_t blocks = (n + LG_CUK_NMS_BLOCK - 1) / LG_CUK_NMS_BLOCK;
    return (n * blocks + blocks) * sizeof(uint64_t) + 2 * n * sizeof(int) + 4 * n * sizeof(float);
}

lg_status lg_cuda_nms(lg_cuda *c, const float *boxes, const float *scores, size_t n,
                      float iou_thresh, int *keep, int *num_keep, int max_keep, void *ws,
                      lg_error *err) {
    return lg_cuda_batched_nms(c, boxes, scores, NULL, n, iou_thresh, keep, num_keep, max_keep, ws,
                               err);
}

lg_status lg_cuda_batched_nms(lg_cuda *c, const float *boxes, const float *scores,
                              const int *groups, size_t n, float iou_thresh, int *keep,
                              int *num_keep, int max_keep, void *ws, lg_error *err) {
    if (n == 0) {
        LG_CUDA_TRY(cudaMemsetAsync(num_keep, 0, sizeof(int), c->stream));
        return LG_OK;
    }
    NmsWs w = nms_layout(ws, n);
    size_t blocks = (n + LG_CUK_NMS_BLOCK - 1) / LG_CUK_NMS_BLOCK;
    nms_rank_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(scores, n, w.order);
    nms_gather_kernel<<<grid_for(4 * n), THREADS, 0, c->stream>>>(boxes, groups, w.order, n, w.sorted,
                                                                  w.groups);
    nms_mask_kernel<<<grid_for(n * blocks), THREADS, 0, c->stream>>>(w.sorted, groups ? w.groups : NULL,
                                                                     n, iou_thresh, w.mask);
    nms_reduce_kernel<<<1, 1, 0, c->stream>>>(n, w.mask, w.removed, w.order, keep, num_keep, max_keep);
    return launched("NMS", err);
}

lg_status lg_cuda_box_decode(lg_cuda *c, const lg_cuda_box_coder *coder, const float *deltas,
                             const float *ref, size_t n, float *out, lg_error *err) {
    if (n == 0)
        return LG_OK;
    box_decode_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*coder, deltas, ref, n, out);
    return launched("box decode", err);
}

lg_status lg_cuda_box_encode(lg_cuda *c, const lg_cuda_box_coder *coder, const float *gt,
                             const float *ref, size_t n, float *deltas, lg_error *err) {
    if (n == 0)
        return LG_OK;
    box_encode_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*coder, gt, ref, n, deltas);
    return launched("box encode", err);
}

lg_status lg_cuda_box_clip(lg_cuda *c, float *boxes, size_t n, int H, int W, lg_error *err) {
    if (n == 0)
        return LG_OK;
    box_clip_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(boxes, n, (float)H, (float)W);
    return launched("box clip", err);
}

lg_status lg_cuda_box_iou(lg_cuda *c, const float *a, size_t na, const float *b, size_t nb,
                          float *iou, lg_error *err) {
    size_t total = na * nb;
    if (total == 0)
        return LG_OK;
    box_iou_kernel<<<grid_for(total), THREADS, 0, c->stream>>>(a, b, total, nb, iou);
    return launched("box IoU", err);
}

lg_status lg_cuda_match(lg_cuda *c, const lg_cuda_matcher *m, const float *iou, int num_gt,
                        int num_pred, float *ws, int *matches, lg_error *err) {
    if (num_gt < 0 || num_pred < 0 || !(m->low <= m->high))
        return lg_error_set(err, LG_ERR_ARG, "match: bad arguments (%d x %d, low %g, high %g)",
                            num_gt, num_pred, (double)m->low, (double)m->high);
    if (num_pred == 0)
        return LG_OK;
    if (num_gt > 0)
        match_highest_kernel<<<grid_for((size_t)num_gt), THREADS, 0, c->stream>>>(iou, num_gt,
                                                                                 num_pred, ws);
    match_kernel<<<grid_for((size_t)num_pred), THREADS, 0, c->stream>>>(*m, iou, num_gt, num_pred, ws,
                                                                       matches);
    return launched("matcher", err);
}

lg_status lg_cuda_roi_align_forward(lg_cuda *c, const lg_cuda_roi_align *d,
                                    const float *const *feat, const float *rois, size_t K,
                                    float *out, lg_error *err) {
    if (d->levels < 1 || d->levels > LG_CUDA_MAX_LEVELS)
        return lg_error_set(err, LG_ERR_ARG, "roi_align: %d levels (1 to %d supported)", d->levels,
                            LG_CUDA_MAX_LEVELS);
    Levels f = {};
    for (int l = 0; l < d->levels; l++)
        f.p[l] = feat[l];
    size_t total = K * (size_t)d->C * (size_t)d->PH * (size_t)d->PW;
    if (total == 0)
        return LG_OK;
    roi_align_forward_kernel<<<grid_for(total), THREADS, 0, c->stream>>>(*d, f, rois, total, out);
    return launched("RoIAlign forward", err);
}

lg_status lg_cuda_roi_align_backward(lg_cuda *c, const lg_cuda_roi_align *d, float *const *dfeat,
                                     const float *rois, size_t K, const float *dout,
                                     lg_error *err) {
    if (d->levels < 1 || d->levels > LG_CUDA_MAX_LEVELS)
        return lg_error_set(err, LG_ERR_ARG, "roi_align: %d levels (1 to %d supported)", d->levels,
                            LG_CUDA_MAX_LEVELS);
    GradLevels f = {};
    for (int l = 0; l < d->levels; l++)
        f.p[l] = dfeat[l];
    size_t total = K * (size_t)d->C * (size_t)d->PH * (size_t)d->PW;
    if (total == 0)
        return LG_OK;
    roi_align_backward_kernel<<<grid_for(total), THREADS, 0, c->stream>>>(*d, f, rois, total, dout);
    return launched("RoIAlign backward", err);
}

} /* extern "C" */
