/* runtime/cuda/detect.cu — launchers of the detection kernels: anchors, the
 * RPN loss and the Fast R-CNN loss, forward and backward, and RoIAlign's
 * ordered backward (lgen/cuda.h).
 *
 * Each kernel maps its grid onto a per-thread body of detect_body.h, which
 * tests/check_cuda_detect.c runs on the CPU against runtime/detect's
 * kernels. The loss sums are one block each, in double as the CPU sums, so
 * they do not depend on the launch; the backward kernels count the sampled
 * rows in the same block first. RoIAlign's ordered backward takes no
 * atomics: each thread owns a row of a gradient plane and sums in the CPU
 * kernel's order (kernels.cu has the atomic one). Everything is enqueued
 * on the compute stream; nothing synchronises, allocates or reads back.
 * Built by nvcc with -fmad=false (runtime/cuda/module.mk): no fused
 * multiply-adds, so the matcher's IoUs and RoIAlign's gradients are the
 * CPU's bit for bit.
 *
 * The RPN loss's workspace (lg_cuda_rpn_loss_workspace), per batch:
 *   gt boxes [N, M, 4], gt labels [N, M], gt count [N]   (lg_cuk_det_gt)
 *   iou [N, M, A], highest [N, M]
 *   matches [N, A], keep [N, A] (bytes)
 *   chunk offsets [N, C] x 2, totals [N, 2], pos [N, A], neg [N, A]
 */
#include "launch.cuh"
#include "detect_body.h"

#define REDUCE_THREADS 1024

static size_t align256(size_t n) {
    return (n + 255) / 256 * 256;
}

/* The RPN workspace's regions. */
struct RpnWs {
    float *gt, *iou, *highest;
    int32_t *gt_labels, *gt_count, *matches, *pos_n, *neg_n, *totals, *pos, *neg;
    uint8_t *keep;
};

static size_t rpn_layout(int N, int A, int M, char *base, RpnWs *w) {
    size_t n = (size_t)(N > 0 ? N : 1), a = (size_t)(A > 0 ? A : 1), m = (size_t)(M > 0 ? M : 1);
    size_t C = (size_t)lg_cuk_chunks(A > 0 ? A : 1), off = 0;
#define TAKE(field, type, count)                                                                  \
    do {                                                                                          \
        if (base)                                                                                 \
            w->field = (type *)(base + off);                                                      \
        off += align256((count) * sizeof(type));                                                  \
    } while (0)
    TAKE(gt, float, n * m * 4);
    TAKE(gt_labels, int32_t, n * m);
    TAKE(gt_count, int32_t, n);
    TAKE(iou, float, n * m * a);
    TAKE(highest, float, n * m);
    TAKE(matches, int32_t, n * a);
    TAKE(keep, uint8_t, n * a);
    TAKE(pos_n, int32_t, n * C);
    TAKE(neg_n, int32_t, n * C);
    TAKE(totals, int32_t, 2 * n);
    TAKE(pos, int32_t, n * a);
    TAKE(neg, int32_t, n * a);
#undef TAKE
    return off;
}

/* ---- kernels --------------------------------------------------------------------- */

static __global__ void anchors_kernel(lg_cuk_anchor_grid g, size_t total, float *anchors) {
    GRID_LOOP(i, total) lg_cuk_anchor(i, &g, anchors);
}

static __global__ void det_gt_kernel(lg_cuda_det_targets t, size_t N, float *boxes, int32_t *labels,
                                     int32_t *count) {
    GRID_LOOP(n, N) lg_cuk_det_gt(n, &t, boxes, labels, count);
}

static __global__ void rpn_iou_kernel(size_t total, int M, int A, const float *gt, const int32_t *count,
                                      const float *anchors, float *iou) {
    GRID_LOOP(i, total) lg_cuk_rpn_iou(i, M, A, gt, count, anchors, iou);
}

/* One block per ground truth slot (n, g): the highest IoU over the anchors
 * (slots past the image's count are never read). */
static __global__ void rpn_highest_kernel(int M, int A, const float *iou, const int32_t *count,
                                          float *highest) {
    __shared__ float sh[THREADS];
    size_t ng = blockIdx.x;
    if ((int)(ng % (size_t)M) >= count[ng / (size_t)M])
        return;
    sh[threadIdx.x] = lg_cuk_rpn_highest(ng, threadIdx.x, THREADS, A, iou);
    __syncthreads();
    for (unsigned s = THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s && sh[threadIdx.x + s] > sh[threadIdx.x])
            sh[threadIdx.x] = sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        highest[ng] = sh[0];
}

static __global__ void rpn_match_kernel(lg_cuda_rpn_loss d, int M, const float *iou, const float *highest,
                                        const int32_t *count, int32_t *labels, int32_t *matches,
                                        uint8_t *keep) {
    GRID_LOOP(i, (size_t)d.N * d.A) lg_cuk_rpn_match(i, &d, M, iou, highest, count, labels, matches, keep);
}

static __global__ void rpn_chunk_count_kernel(size_t total, int A, const int32_t *labels, int32_t *pos_n,
                                              int32_t *neg_n) {
    GRID_LOOP(i, total) lg_cuk_rpn_chunk_count(i, A, labels, pos_n, neg_n);
}

static __global__ void rpn_chunk_prefix_kernel(size_t N, int A, int32_t *pos_n, int32_t *neg_n,
                                               int32_t *totals) {
    GRID_LOOP(n, N) lg_cuk_rpn_chunk_prefix(n, A, pos_n, neg_n, totals);
}

static __global__ void rpn_chunk_scatter_kernel(size_t total, int A, const int32_t *labels,
                                                const int32_t *pos_n, const int32_t *neg_n, int32_t *pos,
                                                int32_t *neg) {
    GRID_LOOP(i, total) lg_cuk_rpn_chunk_scatter(i, A, labels, pos_n, neg_n, pos, neg);
}

static __global__ void rpn_sample_kernel(lg_cuda_rpn_loss d, const int32_t *totals, int32_t *pos,
                                         int32_t *neg, uint8_t *keep) {
    GRID_LOOP(n, (size_t)d.N) lg_cuk_rpn_sample(n, &d, totals, pos, neg, keep);
}

static __global__ void rpn_targets_kernel(size_t total, int M, int A, const float *anchors, const float *gt,
                                          const int32_t *matches, const uint8_t *keep, int32_t *labels,
                                          float *box_targets) {
    GRID_LOOP(i, total) lg_cuk_rpn_targets(i, M, A, anchors, gt, matches, keep, labels, box_targets);
}

/* Block sums of two doubles and a count (REDUCE_THREADS threads); valid in
 * every thread after the call. */
static __device__ void block_sums(double *a, double *b, int *k) {
    __shared__ double sa[REDUCE_THREADS], sb[REDUCE_THREADS];
    __shared__ int sk[REDUCE_THREADS];
    sa[threadIdx.x] = *a;
    sb[threadIdx.x] = *b;
    sk[threadIdx.x] = *k;
    __syncthreads();
    for (unsigned s = REDUCE_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            sa[threadIdx.x] += sa[threadIdx.x + s];
            sb[threadIdx.x] += sb[threadIdx.x + s];
            sk[threadIdx.x] += sk[threadIdx.x + s];
        }
        __syncthreads();
    }
    *a = sa[0];
    *b = sb[0];
    *k = sk[0];
}

/* One block: the two RPN losses, each sum / sampled (0 when none is). */
static __global__ void rpn_loss_kernel(size_t total, const float *objectness, const float *deltas,
                                       const int32_t *labels, const float *box_targets, float beta,
                                       float *loss_objectness, float *loss_box) {
    double obj = 0, box = 0;
    int sampled = 0;
    for (size_t i = threadIdx.x; i < total; i += REDUCE_THREADS)
        sampled += lg_cuk_rpn_loss_term(i, objectness, deltas, labels, box_targets, beta, &obj, &box);
    block_sums(&obj, &box, &sampled);
    if (threadIdx.x == 0) {
        if (loss_objectness)
            *loss_objectness = sampled ? (float)(obj / (double)sampled) : 0.0f;
        if (loss_box)
            *loss_box = sampled ? (float)(box / (double)sampled) : 0.0f;
    }
}

/* One block: counts the sampled anchors, then writes every gradient. */
static __global__ void rpn_loss_backward_kernel(size_t total, const float *objectness, const float *deltas,
                                                const int32_t *labels, const float *box_targets, float beta,
                                                const float *dloss_objectness, const float *dloss_box,
                                                float *grad_objectness, float *grad_deltas) {
    double unused_a = 0, unused_b = 0;
    int sampled = 0;
    for (size_t i = threadIdx.x; i < total; i += REDUCE_THREADS)
        sampled += labels[i] >= 0;
    block_sums(&unused_a, &unused_b, &sampled);
    float go = dloss_objectness ? *dloss_objectness : 0.0f, gb = dloss_box ? *dloss_box : 0.0f;
    float so = sampled ? go / (float)sampled : 0.0f, sb = sampled ? gb / (float)sampled : 0.0f;
    for (size_t i = threadIdx.x; i < total; i += REDUCE_THREADS)
        lg_cuk_rpn_loss_grad(i, objectness, deltas, labels, box_targets, beta, so, sb, grad_objectness,
                             grad_deltas);
}

static __global__ void fastrcnn_loss_kernel(size_t R, int K, const float *logits, const float *box_regression,
                                            const int32_t *labels, const float *box_targets, float beta,
                                            float *loss_classifier, float *loss_box_reg) {
    double ce = 0, box = 0;
    int rows = 0;
    for (size_t r = threadIdx.x; r < R; r += REDUCE_THREADS)
        rows += lg_cuk_fastrcnn_term(r, logits, box_regression, labels, box_targets, K, beta, &ce, &box);
    block_sums(&ce, &box, &rows);
    if (threadIdx.x == 0) {
        if (loss_classifier)
            *loss_classifier = rows ? (float)(ce / rows) : 0.0f;
        if (loss_box_reg)
            *loss_box_reg = rows ? (float)(box / rows) : 0.0f;
    }
}

static __global__ void fastrcnn_backward_kernel(size_t R, int K, const float *logits,
                                                const float *box_regression, const int32_t *labels,
                                                const float *box_targets, float beta, const float *dloss_cls,
                                                const float *dloss_box, float *grad_logits, float *grad_box) {
    double unused_a = 0, unused_b = 0;
    int rows = 0;
    for (size_t r = threadIdx.x; r < R; r += REDUCE_THREADS)
        rows += labels[r] >= 0;
    block_sums(&unused_a, &unused_b, &rows);
    float gc = dloss_cls ? *dloss_cls : 0.0f, gb = dloss_box ? *dloss_box : 0.0f;
    float sc = rows ? gc / (float)rows : 0.0f, sb = rows ? gb / (float)rows : 0.0f;
    for (size_t r = threadIdx.x; r < R; r += REDUCE_THREADS)
        lg_cuk_fastrcnn_grad(r, logits, box_regression, labels, box_targets, K, beta, sc, sb, grad_logits,
                             grad_box);
}

struct RowLevels {
    float *p[LG_CUDA_MAX_LEVELS];
};

static __global__ void roi_align_backward_row_kernel(lg_cuda_roi_align d, int N, RowLevels f, const float *rois,
                                                     size_t K, const float *dout, size_t total) {
    GRID_LOOP(i, total) lg_cuk_roi_align_backward_row(i, &d, N, f.p, rois, K, dout);
}

/* ---- the C interface ---------------------------------------------------------------- */

extern "C" {

lg_status lg_cuda_anchors_generate(lg_cuda *c, const lg_cuda_anchors *d, float *anchors, lg_error *err) {
    lg_cuk_anchor_grid g;
    int bad = lg_cuk_anchor_grid_init(d, &g);
    if (bad == -100)
        return lg_error_set(err, LG_ERR_ARG, "anchors: %d feature levels (1 to %d) on a %dx%d image", d->levels,
                            LG_CUDA_MAX_LEVELS, d->image_h, d->image_w);
    if (bad < 0)
        return lg_error_set(err, LG_ERR_ARG,
                            "anchors: level %d: a %dx%d map on a %dx%d image with %d sizes x %d ratios "
                            "(at most %d, ratios positive)",
                            -1 - bad, d->level[-1 - bad].feat_h, d->level[-1 - bad].feat_w, d->image_h,
                            d->image_w, d->level[-1 - bad].num_sizes, d->level[-1 - bad].num_ratios,
                            LG_CUDA_MAX_ANCHOR_CELLS);
    size_t total = (size_t)g.first[g.levels];
    anchors_kernel<<<grid_for(total), THREADS, 0, c->stream>>>(g, total, anchors);
    return launched("anchors", err);
}

size_t lg_cuda_rpn_loss_workspace(int N, int A, int max_boxes) {
    return rpn_layout(N, A, max_boxes, NULL, NULL);
}

lg_status lg_cuda_rpn_loss_forward(lg_cuda *c, const lg_cuda_rpn_loss *d, const float *objectness,
                                   const float *deltas, const float *anchors, const lg_cuda_det_targets *t,
                                   void *ws, int32_t *labels, float *box_targets, float *loss_objectness,
                                   float *loss_box, lg_error *err) {
    if (d->N < 0 || d->A < 1 || !t || t->max_boxes < 1 || !ws || d->batch_size_per_image < 1 ||
        !(d->positive_fraction >= 0 && d->positive_fraction <= 1) || !(d->beta >= 0) ||
        !(d->bg_iou_thresh <= d->fg_iou_thresh))
        return lg_error_set(err, LG_ERR_ARG,
                            "rpn_loss: %d images of %d anchors, %d boxes per image, %d per image sampled "
                            "(positive fraction %g), IoU thresholds %g / %g, beta %g",
                            d->N, d->A, t ? t->max_boxes : -1, d->batch_size_per_image,
                            (double)d->positive_fraction, (double)d->fg_iou_thresh,
                            (double)d->bg_iou_thresh, (double)d->beta);
    if (d->N == 0)
        return LG_OK;
    RpnWs w;
    int M = t->max_boxes, A = d->A;
    rpn_layout(d->N, A, M, (char *)ws, &w);
    size_t N = (size_t)d->N, NA = N * A, NC = N * (size_t)lg_cuk_chunks(A), NMA = N * M * (size_t)A;
    cudaStream_t s = c->stream;
    det_gt_kernel<<<grid_for(N), THREADS, 0, s>>>(*t, N, w.gt, w.gt_labels, w.gt_count);
    rpn_iou_kernel<<<grid_for(NMA), THREADS, 0, s>>>(NMA, M, A, w.gt, w.gt_count, anchors, w.iou);
    rpn_highest_kernel<<<(unsigned)(N * M), THREADS, 0, s>>>(M, A, w.iou, w.gt_count, w.highest);
    rpn_match_kernel<<<grid_for(NA), THREADS, 0, s>>>(*d, M, w.iou, w.highest, w.gt_count, labels, w.matches,
                                                       w.keep);
    rpn_chunk_count_kernel<<<grid_for(NC), THREADS, 0, s>>>(NC, A, labels, w.pos_n, w.neg_n);
    rpn_chunk_prefix_kernel<<<grid_for(N), THREADS, 0, s>>>(N, A, w.pos_n, w.neg_n, w.totals);
    rpn_chunk_scatter_kernel<<<grid_for(NC), THREADS, 0, s>>>(NC, A, labels, w.pos_n, w.neg_n, w.pos, w.neg);
    rpn_sample_kernel<<<grid_for(N), THREADS, 0, s>>>(*d, w.totals, w.pos, w.neg, w.keep);
    rpn_targets_kernel<<<grid_for(NA), THREADS, 0, s>>>(NA, M, A, anchors, w.gt, w.matches, w.keep, labels,
                                                         box_targets);
    rpn_loss_kernel<<<1, REDUCE_THREADS, 0, s>>>(NA, objectness, deltas, labels, box_targets, d->beta,
                                                  loss_objectness, loss_box);
    return launched("RPN loss", err);
}

lg_status lg_cuda_rpn_loss_backward(lg_cuda *c, const lg_cuda_rpn_loss *d, const float *objectness,
                                    const float *deltas, const int32_t *labels, const float *box_targets,
                                    const float *dloss_objectness, const float *dloss_box,
                                    float *grad_objectness, float *grad_deltas, lg_error *err) {
    if (d->N < 0 || d->A < 0 || !(d->beta >= 0))
        return lg_error_set(err, LG_ERR_ARG, "rpn_loss backward: %d images of %d anchors, beta %g", d->N,
                            d->A, (double)d->beta);
    size_t total = (size_t)d->N * d->A;
    if (total == 0 || (!grad_objectness && !grad_deltas))
        return LG_OK;
    rpn_loss_backward_kernel<<<1, REDUCE_THREADS, 0, c->stream>>>(total, objectness, deltas, labels,
                                                                   box_targets, d->beta, dloss_objectness,
                                                                   dloss_box, grad_objectness, grad_deltas);
    return launched("RPN loss backward", err);
}

lg_status lg_cuda_fastrcnn_loss_forward(lg_cuda *c, const float *class_logits, const float *box_regression,
                                        const int32_t *labels, const float *box_targets, int R, int K,
                                        float beta, float *loss_classifier, float *loss_box_reg,
                                        lg_error *err) {
    if (R < 0 || K < 2 || !(beta >= 0))
        return lg_error_set(err, LG_ERR_ARG, "fastrcnn_loss: %d rows, %d classes, beta %g", R, K,
                            (double)beta);
    fastrcnn_loss_kernel<<<1, REDUCE_THREADS, 0, c->stream>>>((size_t)R, K, class_logits, box_regression,
                                                               labels, box_targets, beta, loss_classifier,
                                                               loss_box_reg);
    return launched("Fast R-CNN loss", err);
}

lg_status lg_cuda_fastrcnn_loss_backward(lg_cuda *c, const float *class_logits, const float *box_regression,
                                         const int32_t *labels, const float *box_targets, int R, int K,
                                         float beta, const float *dloss_classifier,
                                         const float *dloss_box_reg, float *grad_logits, float *grad_box,
                                         lg_error *err) {
    if (R < 0 || K < 2 || !(beta >= 0))
        return lg_error_set(err, LG_ERR_ARG, "fastrcnn_loss backward: %d rows, %d classes, beta %g", R, K,
                            (double)beta);
    if (R == 0 || (!grad_logits && !grad_box))
        return LG_OK;
    fastrcnn_backward_kernel<<<1, REDUCE_THREADS, 0, c->stream>>>((size_t)R, K, class_logits, box_regression,
                                                                   labels, box_targets, beta, dloss_classifier,
                                                                   dloss_box_reg, grad_logits, grad_box);
    return launched("Fast R-CNN loss backward", err);
}

lg_status lg_cuda_roi_align_backward_ordered(lg_cuda *c, const lg_cuda_roi_align *d, int N, float *const *dfeat,
                                             const float *rois, size_t K, const float *dout, lg_error *err) {
    if (d->levels < 1 || d->levels > LG_CUDA_MAX_LEVELS || N < 0 || d->C < 1 || d->PH < 1 || d->PW < 1)
        return lg_error_set(err, LG_ERR_ARG, "roi_align backward: %d levels (1 to %d), %d images, %d channels, "
                            "%dx%d bins", d->levels, LG_CUDA_MAX_LEVELS, N, d->C, d->PH, d->PW);
    RowLevels f = {};
    for (int l = 0; l < d->levels; l++)
        f.p[l] = dfeat[l];
    size_t total = lg_cuk_roi_rows(d, N);
    if (total == 0)
        return LG_OK;
    roi_align_backward_row_kernel<<<grid_for(total), THREADS, 0, c->stream>>>(*d, N, f, rois, K, dout, total);
    return launched("RoIAlign backward (ordered)", err);
}

} /* extern "C" */
