/* detect_bench.c — times the detection ops of one Faster R-CNN training
 * iteration: 2 images of 320x320, an FPN (strides 4 to 64, 256 channels),
 * torchvision's training defaults (RPN: 2000 proposals per level before
 * NMS, 2000 after, 256 anchors sampled; RoI heads: 512 RoIs per image, 21
 * classes), plus the evaluation path's post-processing.
 *
 * Prints one line per op, "name milliseconds" (the median of several
 * runs), for bench/detect_bench.py to put beside torchvision's times of the
 * same ops; run alone it is a plain report. Inputs are random with the same
 * distributions as the Python side. Usage: detect_bench [threads [cpu]]
 */
#include "lgen/detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IMG 320
#define BATCH 2
#define LEVELS 5      /* anchors and RPN: P2..P6 */
#define POOL_LEVELS 4 /* RoIAlign: P2..P5 */
#define CH 256
#define CLASSES 21
#define GT 5
#define REPS 7

/* Wall time, or with a second argument "cpu" the process's CPU time (for
 * comparing changes on a busy machine; not comparable with PyTorch's). */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(clock_id, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t state = 12345;

static float uniform(void) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((state >> 40) * (1.0 / 16777216.0));
}

static float gauss(void) {
    float u = uniform() + 1e-7f, v = uniform();
    return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "detect_bench: out of memory\n");
        exit(1);
    }
    return p;
}

#define TIME(name, body)                                                                           \
    do {                                                                                           \
        double t_[REPS];                                                                           \
        for (int r_ = 0; r_ < REPS; r_++) {                                                        \
            double t0_ = now_ms();                                                                 \
            body;                                                                                  \
            t_[r_] = now_ms() - t0_;                                                               \
        }                                                                                          \
        qsort(t_, REPS, sizeof t_[0], cmp_double);                                                 \
        printf("%-28s %9.3f\n", name, t_[REPS / 2]);                                               \
        total += t_[REPS / 2];                                                                     \
    } while (0)

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != LG_OK) {                                                                     \
            fprintf(stderr, "detect_bench: %s failed: %s\n", #call, err.msg);                      \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2 && !strcmp(argv[2], "cpu"))
        clock_id = CLOCK_PROCESS_CPUTIME_ID;
    lg_error err = {0};
    lg_ctx ctx;
    if (lg_ctx_init(&ctx, threads, &err) != LG_OK) {
        fprintf(stderr, "detect_bench: %s\n", err.msg);
        return 1;
    }
    ctx.err = &err;
    double total = 0;

    /* Anchors for the FPN. */
    static const float sizes[LEVELS] = {32, 64, 128, 256, 512}, ratios[3] = {0.5f, 1, 2};
    lg_anchor_level lv[LEVELS];
    for (int l = 0; l < LEVELS; l++)
        lv[l] = (lg_anchor_level){IMG >> (l + 2), IMG >> (l + 2), 1, &sizes[l], 3, ratios};
    int A = lg_anchors_count(lv, LEVELS), per_level[LEVELS];
    float *anchors = xmalloc(sizeof(float) * 4 * A);
    TIME("anchors", CHECK(lg_anchors_generate(&ctx, lv, LEVELS, IMG, IMG, anchors, per_level)));

    /* Ground truth as lg_batch holds it: GT boxes per image, 0-based labels. */
    float gt[BATCH * GT * 4];
    int32_t gt_labels[BATCH * GT], gt_count[BATCH];
    for (int b = 0; b < BATCH; b++) {
        gt_count[b] = GT;
        for (int g = 0; g < GT; g++) {
            float w = 30 + uniform() * 150, h = 30 + uniform() * 150;
            float x = uniform() * (IMG - w), y = uniform() * (IMG - h);
            float *o = gt + (b * GT + g) * 4;
            o[0] = x, o[1] = y, o[2] = x + w, o[3] = y + h;
            gt_labels[b * GT + g] = (int)(uniform() * (CLASSES - 1));
        }
    }
    lg_det_targets truth = {GT, gt, gt_labels, NULL, gt_count, 1, 0};

    /* RPN head outputs. */
    float *obj = xmalloc(sizeof(float) * BATCH * A),
          *deltas = xmalloc(sizeof(float) * BATCH * A * 4);
    for (size_t i = 0; i < (size_t)BATCH * A; i++)
        obj[i] = gauss();
    for (size_t i = 0; i < (size_t)BATCH * A * 4; i++)
        deltas[i] = 0.1f * gauss();

    /* RPN targets (match, sample 256, encode) and loss, then its backward. */
    lg_rpn_loss_config rcfg = {{0.7f, 0.3f, 256, 0.5f}, 1.0f / 9, 1};
    void *rws = xmalloc(lg_rpn_loss_batch_workspace(A, GT));
    int *labels = xmalloc(sizeof(int) * BATCH * A);
    float *targets = xmalloc(sizeof(float) * BATCH * A * 4);
    float lo, lb, *gobj = xmalloc(sizeof(float) * BATCH * A),
                  *gdel = xmalloc(sizeof(float) * BATCH * A * 4);
    TIME("rpn_targets+loss", CHECK(lg_rpn_loss_batch_forward(&ctx, &rcfg, obj, deltas, anchors, A,
                                                             BATCH, &truth, 0, rws, labels,
                                                             targets, &lo, &lb)));
    TIME("rpn_loss bwd", CHECK(lg_rpn_loss_backward(&ctx, obj, deltas, labels, targets, BATCH, A,
                                                    1.0f / 9, 1, 1, gobj, gdel)));

    /* Proposals (training: 2000 per level before NMS, 2000 after). */
    lg_proposal_config pcfg = {2000, 2000, 0.7f, 1e-3f, 0.0f};
    void *pws = xmalloc(lg_proposals_batch_workspace(&pcfg, per_level, LEVELS, BATCH));
    float *props = xmalloc(sizeof(float) * BATCH * 2000 * 4),
          *pscores = xmalloc(sizeof(float) * BATCH * 2000);
    int pcount[BATCH];
    TIME("proposals (top-n, NMS)",
         CHECK(lg_proposals_batch(&ctx, &pcfg, obj, deltas, anchors, per_level, LEVELS, BATCH, IMG,
                                  IMG, NULL, pws, props, pscores, pcount)));

    /* RoI sampling: 512 per image, into (image, box) rows. */
    lg_roi_sample_config scfg = {0.5f, 0.5f, 512, 0.25f, LG_BOX_CODER_ROI};
    void *sws = xmalloc(lg_roi_sample_batch_workspace(&scfg, 2000, GT));
    int K = BATCH * 512;
    float *rois = xmalloc(sizeof(float) * K * 5), *rtg = xmalloc(sizeof(float) * K * 4);
    int *rlabels = xmalloc(sizeof(int) * K);
    TIME("roi_sample", CHECK(lg_roi_sample_batch(&ctx, &scfg, props, pcount, 2000, BATCH, &truth,
                                                 2, 0, sws, rois, rlabels, rtg)));

    /* Multi-scale RoIAlign over P2..P5, forward and backward. */
    lg_multiscale_roi_align mcfg = {
        POOL_LEVELS, {0.25f, 0.125f, 0.0625f, 0.03125f}, 7, 7, 2, 0, 224, 4};
    int heights[POOL_LEVELS], widths[POOL_LEVELS];
    float *feats[POOL_LEVELS], *grads[POOL_LEVELS];
    for (int l = 0; l < POOL_LEVELS; l++) {
        heights[l] = widths[l] = IMG >> (l + 2);
        size_t n = (size_t)BATCH * CH * heights[l] * widths[l];
        feats[l] = xmalloc(sizeof(float) * n);
        grads[l] = xmalloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++)
            feats[l][i] = gauss();
    }
    size_t pooled = (size_t)K * CH * 49;
    float *pool_out = xmalloc(sizeof(float) * pooled), *pool_grad = xmalloc(sizeof(float) * pooled);
    for (size_t i = 0; i < pooled; i++)
        pool_grad[i] = gauss();
    TIME("roi_align fwd (1024 RoIs)",
         CHECK(lg_multiscale_roi_align_forward(&ctx, &mcfg, (const float *const *)feats, heights,
                                               widths, BATCH, CH, rois, K, pool_out)));
    TIME("roi_align bwd (1024 RoIs)",
         CHECK(lg_multiscale_roi_align_backward(&ctx, &mcfg, pool_grad, heights, widths, BATCH, CH,
                                                rois, K, grads)));

    /* Box head outputs, loss and post-processing. */
    float *logits = xmalloc(sizeof(float) * K * CLASSES),
          *breg = xmalloc(sizeof(float) * K * CLASSES * 4);
    float *glog = xmalloc(sizeof(float) * K * CLASSES),
          *gbox = xmalloc(sizeof(float) * K * CLASSES * 4);
    for (int i = 0; i < K * CLASSES; i++)
        logits[i] = gauss();
    for (int i = 0; i < K * CLASSES * 4; i++)
        breg[i] = 0.1f * gauss();
    float lc, lr;
    TIME("fastrcnn_loss fwd+bwd", {
        CHECK(lg_fastrcnn_loss_forward(&ctx, logits, breg, rlabels, rtg, K, CLASSES, 1.0f / 9, &lc,
                                       &lr));
        CHECK(lg_fastrcnn_loss_backward(&ctx, logits, breg, rlabels, rtg, K, CLASSES, 1.0f / 9, 1,
                                        1, glog, gbox));
    });
    lg_detect_config dcfg = {0.05f, 0.5f, 100, 1e-2f, LG_BOX_CODER_ROI};
    void *dws = xmalloc(lg_detections_batch_workspace(512, CLASSES, BATCH));
    float dboxes[BATCH * 100 * 4], dscores[BATCH * 100];
    int dlabels[BATCH * 100], dcount[BATCH];
    TIME("detections (eval)",
         CHECK(lg_detections_batch(&ctx, &dcfg, logits, breg, rois, BATCH, 512, CLASSES, IMG, IMG,
                                   NULL, dws, dboxes, dscores, dlabels, dcount)));
    printf("%-28s %9.3f\n", "total", total);
    fprintf(stderr, "proposals per image: %d %d; detections %d %d; losses %.4f %.4f %.4f %.4f\n",
            pcount[0], pcount[1], dcount[0], dcount[1], lo, lb, lc, lr);
    lg_ctx_free(&ctx);
    return 0;
}
