/* tests/gpu/gpu_kernels.c — every CUDA kernel against its CPU twin, on a device.
 *
 * `make check-gpu` runs it (it needs a GPU; without one it prints "SKIP: no
 * CUDA device" and exits 0). The project's kernels run through their
 * launchers (lgen/cuda.h) and are compared with the same bodies
 * (runtime/cuda/body.h) run over the grid on the host; the cuBLAS(Lt) and
 * cuDNN layers are compared with plain loops in double. Both fp32 and the
 * f16/bf16 paths of mixed precision are covered. Each check prints one line;
 * the exit status is the number of failed checks (0: all passed).
 */
#include "../../runtime/cuda/body.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HARNESS_NAME "gpu_kernels"
#include "harness.h"

static float *random_floats(size_t n, unsigned seed, float scale) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = scale * ((float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f);
    }
    return v;
}

/* ---- own kernels vs their bodies on the host ---------------------------------- */

static void check_activations(void) {
    const size_t n = 100003;
    float *x = random_floats(n, 1, 6.0f), *dy = random_floats(n, 2, 1.0f);
    float *y = malloc(n * sizeof *y), *dx = malloc(n * sizeof *dx);
    float *ry = malloc(n * sizeof *ry), *rdx = malloc(n * sizeof *rdx);
    static const char *const names[] = {"relu", "leaky_relu", "sigmoid", "tanh",
                                        "gelu", "gelu_tanh",  "silu"};
    for (int a = LG_CUDA_ACT_RELU; a <= LG_CUDA_ACT_SILU; a++) {
        arena_top = 0;
        void *dX = dcopy(x, n * 4), *dDY = dcopy(dy, n * 4), *dY = dalloc(n * 4), *dDX = dalloc(n * 4);
        TRY(lg_cuda_act_forward(cu, (lg_cuda_act)a, 0.1f, LG_CUDA_F32, dX, dY, n, &err));
        TRY(lg_cuda_act_backward(cu, (lg_cuda_act)a, 0.1f, LG_CUDA_F32, dX, dY, dDY, dDX, n, &err));
        fetch(y, dY, n * 4);
        fetch(dx, dDX, n * 4);
        for (size_t i = 0; i < n; i++) {
            ry[i] = lg_cuk_act_forward(a, x[i], 0.1f);
            rdx[i] = lg_cuk_act_backward(a, x[i], ry[i], dy[i], 0.1f);
        }
        char what[64];
        snprintf(what, sizeof what, "%s forward", names[a]);
        report(what, y, ry, n, 1e-5, 1e-6);
        snprintf(what, sizeof what, "%s backward", names[a]);
        report(what, dx, rdx, n, 1e-5, 1e-6);
    }
    /* the half path: f16 in, f16 out */
    arena_top = 0;
    uint16_t *xh = malloc(n * 2), *yh = malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        xh[i] = lg_cuk_f32_to_f16(x[i]);
    void *dX = dcopy(xh, n * 2), *dY = dalloc(n * 2);
    TRY(lg_cuda_act_forward(cu, LG_CUDA_ACT_GELU, 0, LG_CUDA_F16, dX, dY, n, &err));
    fetch(yh, dY, n * 2);
    for (size_t i = 0; i < n; i++) {
        y[i] = lg_cuk_f16_to_f32(yh[i]);
        ry[i] = lg_cuk_f16_to_f32(
            lg_cuk_f32_to_f16(lg_cuk_act_forward(LG_CUDA_ACT_GELU, lg_cuk_f16_to_f32(xh[i]), 0)));
    }
    report("gelu forward f16", y, ry, n, 1e-3, 1e-4);
    free(x), free(dy), free(y), free(dx), free(ry), free(rdx), free(xh), free(yh);
}

static void check_convert(void) {
    const size_t n = 1 << 16;
    arena_top = 0;
    /* every f16 pattern to f32 and back; random f32 to f16 and bf16 */
    uint16_t *h = malloc(n * 2), *back = malloc(n * 2), *b16 = malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        h[i] = (uint16_t)i;
    float *f = malloc(n * 4), *ref = malloc(n * 4), *r = random_floats(n, 9, 70000.0f);
    void *dH = dcopy(h, n * 2), *dF = dalloc(n * 4), *dB = dalloc(n * 2), *dR = dcopy(r, n * 4);
    TRY(lg_cuda_convert(cu, LG_CUDA_F32, dF, LG_CUDA_F16, dH, n, &err));
    fetch(f, dF, n * 4);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want = lg_cuk_f16_to_f32(h[i]);
        if (memcmp(&want, &f[i], 4) != 0 && !(isnan(want) && isnan(f[i])))
            bad++;
    }
    TRY(lg_cuda_convert(cu, LG_CUDA_F16, dB, LG_CUDA_F32, dR, n, &err));
    fetch(back, dB, n * 2);
    for (size_t i = 0; i < n; i++)
        bad += back[i] != lg_cuk_f32_to_f16(r[i]);
    TRY(lg_cuda_convert(cu, LG_CUDA_BF16, dB, LG_CUDA_F32, dR, n, &err));
    fetch(b16, dB, n * 2);
    for (size_t i = 0; i < n; i++)
        bad += b16[i] != lg_cuk_f32_to_bf16(r[i]);
    printf("%s %-28s (%d mismatches)\n", bad ? "FAIL" : "ok  ", "f16/bf16 conversions", bad);
    failures += bad != 0;
    free(h), free(back), free(b16), free(f), free(ref), free(r);
}

static void check_cross_entropy(void) {
    const int N = 777, C = 37;
    arena_top = 0;
    float *logits = random_floats((size_t)N * C, 3, 4.0f), *w = random_floats((size_t)C, 4, 0.4f);
    int32_t *labels = malloc((size_t)N * 4);
    float wsum = 0;
    for (int c = 0; c < C; c++)
        w[c] += 1.0f, wsum += w[c];
    for (int i = 0; i < N; i++)
        labels[i] = i % 11 == 0 ? -100 : (i * 7) % C;
    lg_cuda_ce d = {N, C, 0.1f, -100, 0};
    void *dL = dcopy(logits, (size_t)N * C * 4), *dY = dcopy(labels, (size_t)N * 4);
    void *dW = dcopy(w, (size_t)C * 4), *ws = dalloc(lg_cuda_cross_entropy_workspace(&d));
    float *dloss = dalloc(4), *dgrad = dalloc((size_t)N * C * 4), *dacc = dalloc(4);
    float two = 2.0f, *dscale = dcopy(&two, 4);
    TRY(lg_cuda_cross_entropy_forward(cu, &d, dL, dY, dW, dloss, ws, &err));
    TRY(lg_cuda_cross_entropy_backward(cu, &d, dL, dY, dW, wsum, dscale, ws, dgrad, &err));
    TRY(lg_cuda_accuracy(cu, dL, dY, N, C, dacc, dalloc((size_t)N * 4), &err));
    float loss, acc, *g = malloc((size_t)N * C * 4), *rg = malloc((size_t)N * C * 4);
    fetch(&loss, dloss, 4);
    fetch(&acc, dacc, 4);
    fetch(g, dgrad, (size_t)N * C * 4);
    float *rl = malloc((size_t)N * 4), *rw = malloc((size_t)N * 4), *lse = malloc((size_t)N * 4);
    for (size_t i = 0; i < (size_t)N; i++)
        lg_cuk_ce_row(i, &d, logits, labels, w, rl, rw, lse);
    double ls = 0, wsd = 0, racc = 0;
    for (int i = 0; i < N; i++)
        ls += rl[i], wsd += rw[i], racc += lg_cuk_accuracy_row((size_t)i, logits, labels, C);
    float rloss, div;
    lg_cuk_ce_finish(&d, (float)ls, (float)wsd, &rloss, &div);
    for (size_t idx = 0; idx < (size_t)N * C; idx++)
        lg_cuk_ce_backward(idx, &d, logits, labels, w, wsum, lse, 2.0f, div, rg);
    float raccf = (float)(racc / N);
    report("cross entropy loss", &loss, &rloss, 1, 1e-5, 0);
    report("cross entropy backward", g, rg, (size_t)N * C, 1e-4, 1e-7);
    report("accuracy", &acc, &raccf, 1, 0, 1e-6);
    free(logits), free(w), free(labels), free(g), free(rg), free(rl), free(rw), free(lse);
}

static void check_optimizers(void) {
    const size_t n = 50001;
    float *p0 = random_floats(n, 5, 1.0f), *g = random_floats(n, 6, 0.1f);
    float *p = malloc(n * 4), *rp = malloc(n * 4), *rb = calloc(n, 4), *rm = calloc(n, 4),
          *rv = calloc(n, 4), *rvm = calloc(n, 4);
    lg_cuda_sgd sgd = {0.1f, 0.9f, 0.0f, 5e-4f, 1, 0};
    arena_top = 0;
    void *dP = dcopy(p0, n * 4), *dG = dcopy(g, n * 4), *dB = dalloc(n * 4);
    memcpy(rp, p0, n * 4);
    for (int s = 0; s < 3; s++) {
        TRY(lg_cuda_sgd_update(cu, &sgd, s == 0, dP, dG, dB, n, NULL, &err));
        for (size_t i = 0; i < n; i++)
            lg_cuk_sgd_update(i, &sgd, s == 0, rp, g, rb, NULL);
    }
    fetch(p, dP, n * 4);
    report("sgd nesterov, 3 steps", p, rp, n, 1e-6, 1e-7);

    lg_cuda_adam adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, 1, 1, 0};
    arena_top = 0;
    dP = dcopy(p0, n * 4), dG = dcopy(g, n * 4);
    void *dM = dalloc(n * 4), *dV = dalloc(n * 4), *dVM = dalloc(n * 4);
    void *st = dalloc(lg_cuda_adam_state_bytes());
    int zero = 0, one = 1;
    int *dskip = dcopy(&zero, 4);
    TRY(lg_cuda_memset(cu, dM, 0, n * 4, &err));
    TRY(lg_cuda_memset(cu, dV, 0, n * 4, &err));
    TRY(lg_cuda_memset(cu, dVM, 0, n * 4, &err));
    TRY(lg_cuda_memset(cu, st, 0, lg_cuda_adam_state_bytes(), &err));
    memcpy(rp, p0, n * 4);
    lg_cuk_adam_step rst = {0};
    for (int s = 0; s < 4; s++) {
        int skip = s == 2; /* one skipped (overflowed) step */
        TRY(lg_cuda_upload(cu, dskip, skip ? &one : &zero, 4, &err));
        TRY(lg_cuda_adam_prepare(cu, &adam, st, dskip, &err));
        TRY(lg_cuda_adam_update(cu, &adam, st, dP, dG, dM, dV, dVM, n, dskip, &err));
        lg_cuk_adam_prepare(&adam, &rst, &skip);
        for (size_t i = 0; i < n; i++)
            lg_cuk_adam_update(i, &adam, &rst, rp, g, rm, rv, rvm, &skip);
    }
    fetch(p, dP, n * 4);
    report("adamw amsgrad, 1 of 4 skipped", p, rp, n, 1e-6, 1e-7);
    free(p0), free(g), free(p), free(rp), free(rb), free(rm), free(rv), free(rvm);
}

static void check_loss_scaling(void) {
    arena_top = 0;
    lg_cuda_scaler s0 = LG_CUDA_SCALER_INIT, rs = LG_CUDA_SCALER_INIT;
    s0.growth_interval = rs.growth_interval = 2;
    lg_cuda_scaler *ds = dcopy(&s0, sizeof s0);
    int zero = 0;
    int *dfound = dcopy(&zero, 4);
    const size_t n = 4096;
    uint16_t *gh = malloc(n * 2);
    float *g = random_floats(n, 8, 30000.0f), *out = malloc(n * 4), *ref = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        gh[i] = lg_cuk_f32_to_f16(g[i]);
    void *dgh = dcopy(gh, n * 2);
    float *dg = dalloc(n * 4), *dloss = dalloc(4);
    int bad = 0;
    for (int step = 0; step < 5; step++) {
        int overflow = step == 3;
        if (overflow) { /* an inf gradient this step */
            uint16_t inf = 0x7c00;
            TRY(lg_cuda_upload(cu, (uint16_t *)dgh + 17, &inf, 2, &err));
        }
        TRY(lg_cuda_scaler_seed(cu, ds, dloss, &err));
        TRY(lg_cuda_unscale(cu, ds, LG_CUDA_F16, dgh, dg, n, dfound, &err));
        int found;
        float seed;
        fetch(&found, dfound, 4);
        fetch(&seed, dloss, 4);
        fetch(out, dg, n * 4);
        int rfound = 0;
        float inv = (float)(1.0 / (double)rs.scale);
        for (size_t i = 0; i < n; i++)
            ref[i] = lg_cuk_unscale(lg_cuk_f16_to_f32(i == 17 && overflow ? 0x7c00 : gh[i]), inv, &rfound);
        bad += found != rfound || seed != rs.scale;
        for (size_t i = 0; i < n; i++)
            bad += !(out[i] == ref[i] || (isinf(out[i]) && isinf(ref[i])));
        TRY(lg_cuda_scaler_update(cu, ds, dfound, &err));
        lg_cuk_scaler_update(&rs, rfound);
        lg_cuda_scaler s;
        fetch(&s, ds, sizeof s);
        fetch(&found, dfound, 4);
        bad += s.scale != rs.scale || s.growth_tracker != rs.growth_tracker || found != 0;
        if (overflow)
            TRY(lg_cuda_upload(cu, (uint16_t *)dgh + 17, gh + 17, 2, &err));
    }
    printf("%s %-28s (%d mismatches)\n", bad ? "FAIL" : "ok  ", "loss scaling, 5 steps", bad);
    failures += bad != 0;
    free(gh), free(g), free(out), free(ref);
}

static void check_nms(void) {
    const size_t n = 1000;
    float *r = random_floats(4 * n, 10, 1.0f), *scores = random_floats(n, 11, 1.0f);
    float *boxes = malloc(4 * n * 4);
    for (size_t i = 0; i < n; i++) {
        float x = 100 + 100 * r[4 * i], y = 100 + 100 * r[4 * i + 1];
        boxes[4 * i] = x, boxes[4 * i + 1] = y;
        boxes[4 * i + 2] = x + 20 + 15 * r[4 * i + 2], boxes[4 * i + 3] = y + 20 + 15 * r[4 * i + 3];
    }
    arena_top = 0;
    void *dB = dcopy(boxes, 4 * n * 4), *dS = dcopy(scores, n * 4);
    int *dkeep = dalloc(n * 4), *dnum = dalloc(4);
    TRY(lg_cuda_nms(cu, dB, dS, n, 0.5f, dkeep, dnum, (int)n, dalloc(lg_cuda_nms_workspace(n)), &err));
    int num, *keep = malloc(n * 4);
    fetch(&num, dnum, 4);
    fetch(keep, dkeep, n * 4);
    /* the host twin: the same bodies in launch order */
    size_t blocks = (n + 63) / 64;
    int *order = malloc(n * 4), *rkeep = malloc(n * 4), rnum;
    float *sorted = malloc(4 * n * 4);
    uint64_t *mask = malloc(n * blocks * 8), *removed = malloc(blocks * 8);
    for (size_t i = 0; i < n; i++)
        order[lg_cuk_rank_desc(i, scores, n)] = (int)i;
    for (size_t k = 0; k < 4 * n; k++)
        sorted[k] = boxes[4 * (size_t)order[k / 4] + k % 4];
    for (size_t t = 0; t < n * blocks; t++)
        lg_cuk_nms_mask(t / blocks, t % blocks, sorted, NULL, n, 0.5f, mask);
    lg_cuk_nms_reduce(n, mask, removed, order, rkeep, &rnum, (int)n);
    int bad = num != rnum;
    for (int i = 0; !bad && i < num; i++)
        bad = keep[i] != rkeep[i];
    printf("%s %-28s (%d of %zu kept)\n", bad ? "FAIL" : "ok  ", "nms", num, n);
    failures += bad;
    /* batched: three groups */
    int *groups = malloc(n * 4), *sg = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        groups[i] = (int)(i % 3);
    int *dG = dcopy(groups, n * 4);
    TRY(lg_cuda_batched_nms(cu, dB, dS, dG, n, 0.5f, dkeep, dnum, (int)n,
                            dalloc(lg_cuda_nms_workspace(n)), &err));
    fetch(&num, dnum, 4);
    fetch(keep, dkeep, n * 4);
    for (size_t k = 0; k < n; k++)
        sg[k] = groups[order[k]];
    for (size_t t = 0; t < n * blocks; t++)
        lg_cuk_nms_mask(t / blocks, t % blocks, sorted, sg, n, 0.5f, mask);
    lg_cuk_nms_reduce(n, mask, removed, order, rkeep, &rnum, (int)n);
    bad = num != rnum;
    for (int i = 0; !bad && i < num; i++)
        bad = keep[i] != rkeep[i];
    printf("%s %-28s (%d of %zu kept)\n", bad ? "FAIL" : "ok  ", "batched nms", num, n);
    failures += bad;
    free(groups), free(sg);
    free(r), free(scores), free(boxes), free(keep), free(order), free(rkeep), free(sorted),
        free(mask), free(removed);
}

static void check_matcher(void) {
    const int G = 20, P = 20000;
    float *r = random_floats(4 * (size_t)(G + P), 50, 1.0f), *boxes = malloc(4 * (size_t)(G + P) * 4);
    for (int i = 0; i < G + P; i++) {
        float x = 300 + 300 * r[4 * i], y = 300 + 300 * r[4 * i + 1];
        boxes[4 * i] = x, boxes[4 * i + 1] = y;
        boxes[4 * i + 2] = x + 40 + 30 * r[4 * i + 2], boxes[4 * i + 3] = y + 40 + 30 * r[4 * i + 3];
    }
    const float *gt = boxes, *pred = boxes + 4 * G;
    arena_top = 0;
    float *dGt = dcopy(gt, (size_t)G * 16), *dPred = dcopy(pred, (size_t)P * 16);
    float *dIou = dalloc((size_t)G * P * 4), *dWs = dalloc((size_t)G * 4);
    int *dM = dalloc((size_t)P * 4);
    lg_cuda_matcher m = {0.7f, 0.3f, 1};
    TRY(lg_cuda_box_iou(cu, dGt, (size_t)G, dPred, (size_t)P, dIou, &err));
    TRY(lg_cuda_match(cu, &m, dIou, G, P, dWs, dM, &err));
    float *iou = malloc((size_t)G * P * 4), highest[20];
    int *got = malloc((size_t)P * 4), bad = 0;
    fetch(got, dM, (size_t)P * 4);
    for (size_t i = 0; i < (size_t)G * P; i++)
        lg_cuk_box_iou(i, gt, pred, (size_t)P, iou);
    for (size_t g = 0; g < (size_t)G; g++)
        lg_cuk_match_highest(g, iou, P, highest);
    for (size_t p = 0; p < (size_t)P; p++)
        bad += got[p] != lg_cuk_match(p, &m, iou, G, P, highest);
    printf("%s %-28s (%d mismatches)\n", bad ? "FAIL" : "ok  ", "box IoU + matcher", bad);
    failures += bad != 0;
    free(r), free(boxes), free(iou), free(got);
}

static void check_roi_align(void) {
    enum { N = 2, C = 8, H0 = 50, W0 = 60, H1 = 25, W1 = 30, K = 64 };
    float *f0 = random_floats((size_t)N * C * H0 * W0, 12, 1.0f);
    float *f1 = random_floats((size_t)N * C * H1 * W1, 13, 1.0f);
    float *r = random_floats(4 * K, 14, 1.0f), rois[5 * K];
    for (int k = 0; k < K; k++) {
        float x = 120 + 110 * r[4 * k], y = 100 + 90 * r[4 * k + 1];
        float s = 20 + 100 * fabsf(r[4 * k + 2]);
        rois[5 * k] = (float)(k % N), rois[5 * k + 1] = x, rois[5 * k + 2] = y;
        rois[5 * k + 3] = x + s, rois[5 * k + 4] = y + s * (1 + 0.5f * r[4 * k + 3]);
    }
    lg_cuda_roi_align d = {.C = C, .PH = 7, .PW = 7, .sampling_ratio = 2, .aligned = 1, .levels = 2,
                           .k_min = 2};
    d.H[0] = H0, d.W[0] = W0, d.spatial_scale[0] = 0.25f;
    d.H[1] = H1, d.W[1] = W1, d.spatial_scale[1] = 0.125f;
    size_t nout = (size_t)K * C * 49, n0 = (size_t)N * C * H0 * W0, n1 = (size_t)N * C * H1 * W1;
    arena_top = 0;
    const float *dfeat[2] = {dcopy(f0, n0 * 4), dcopy(f1, n1 * 4)};
    float *dgrad[2] = {dalloc(n0 * 4), dalloc(n1 * 4)};
    void *dR = dcopy(rois, sizeof rois);
    float *dOut = dalloc(nout * 4), *dout = random_floats(nout, 15, 1.0f);
    void *dDout = dcopy(dout, nout * 4);
    TRY(lg_cuda_memset(cu, dgrad[0], 0, n0 * 4, &err));
    TRY(lg_cuda_memset(cu, dgrad[1], 0, n1 * 4, &err));
    TRY(lg_cuda_roi_align_forward(cu, &d, dfeat, dR, K, dOut, &err));
    TRY(lg_cuda_roi_align_backward(cu, &d, dgrad, dR, K, dDout, &err));
    float *out = malloc(nout * 4), *ref = malloc(nout * 4);
    float *g0 = malloc(n0 * 4), *g1 = malloc(n1 * 4), *rg0 = calloc(n0, 4), *rg1 = calloc(n1, 4);
    fetch(out, dOut, nout * 4);
    fetch(g0, dgrad[0], n0 * 4);
    fetch(g1, dgrad[1], n1 * 4);
    const float *hf[2] = {f0, f1};
    float *hg[2] = {rg0, rg1};
    for (size_t i = 0; i < nout; i++)
        lg_cuk_roi_align_forward(i, &d, hf, rois, ref);
    for (size_t i = 0; i < nout; i++)
        lg_cuk_roi_align_backward(i, &d, hg, rois, dout);
    /* nvcc contracts the sampling positions and bilinear weights into FMAs:
     * 6e-6 apart from the host body at 0.02 on an H200 */
    report("roi_align forward (2 levels)", out, ref, nout, 1e-4, 1e-5);
    report("roi_align backward level 0", g0, rg0, n0, 1e-4, 1e-5);
    report("roi_align backward level 1", g1, rg1, n1, 1e-4, 1e-5);
    free(f0), free(f1), free(r), free(dout), free(out), free(ref), free(g0), free(g1), free(rg0),
        free(rg1);
}

static void check_more_pointwise(void) {
    const size_t n = 70001;
    float *a = random_floats(n, 40, 3.0f), *b = random_floats(n, 41, 2.0f);
    float *y = malloc(n * 4), *ry = malloc(n * 4);
    uint8_t *mask = malloc(n), *rmask = malloc(n);
    arena_top = 0;
    float *dA = dcopy(a, n * 4), *dB = dcopy(b, n * 4), *dY = dalloc(n * 4);
    uint8_t *dM = dalloc(n);
    TRY(lg_cuda_mul(cu, LG_CUDA_F32, dA, dB, dY, n, &err));
    TRY(lg_cuda_accumulate(cu, LG_CUDA_F32, dA, dY, n, &err));
    fetch(y, dY, n * 4);
    for (size_t i = 0; i < n; i++)
        ry[i] = lg_cuk_add(lg_cuk_mul(a[i], b[i]), a[i]);
    report("mul + accumulate", y, ry, n, 0, 0);

    uint64_t seed = 0x1234abcdULL;
    TRY(lg_cuda_dropout_forward(cu, LG_CUDA_F32, 0.3, seed, dA, dY, dM, n, &err));
    fetch(y, dY, n * 4);
    fetch(mask, dM, n);
    for (size_t i = 0; i < n; i++)
        ry[i] = lg_cuk_dropout(i, seed, (uint64_t)(0.3 * 9007199254740992.0), (float)(1.0 / 0.7), a[i], rmask);
    report("dropout", y, ry, n, 0, 0);
    /* bf16 add: each sum rounded to bf16 */
    {
        uint16_t *ah = malloc(n * 2), *bh = malloc(n * 2), *yh = malloc(n * 2);
        for (size_t i = 0; i < n; i++)
            ah[i] = lg_cuk_f32_to_bf16(a[i]), bh[i] = lg_cuk_f32_to_bf16(b[i]);
        void *dAh = dcopy(ah, n * 2), *dBh = dcopy(bh, n * 2), *dYh = dalloc(n * 2);
        TRY(lg_cuda_add(cu, LG_CUDA_BF16, dAh, dBh, dYh, n, &err));
        fetch(yh, dYh, n * 2);
        int bad16 = 0;
        for (size_t i = 0; i < n; i++)
            bad16 += yh[i] != lg_cuk_f32_to_bf16(lg_cuk_bf16_to_f32(ah[i]) + lg_cuk_bf16_to_f32(bh[i]));
        printf("%s %-28s (%d mismatches)\n", bad16 ? "FAIL" : "ok  ", "add bf16", bad16);
        failures += bad16 != 0;
        free(ah), free(bh), free(yh);
    }
    int bad = memcmp(mask, rmask, n) != 0;
    printf("%s %-28s\n", bad ? "FAIL" : "ok  ", "dropout mask");
    failures += bad;

    const size_t outer = 64, dim = 1000, inner = 1;
    TRY(lg_cuda_softmax_forward(cu, LG_CUDA_F32, 1, outer, dim, inner, dA, dY, &err));
    fetch(y, dY, outer * dim * 4);
    for (size_t t = 0; t < outer * inner; t++)
        lg_cuk_softmax_forward(t, LG_CUDA_F32, dim, inner, 1, a, ry);
    report("log_softmax 64x1000", y, ry, outer * dim, 1e-5, 1e-5);

    float loss, rloss, *dloss = dalloc(4), one = 1.0f;
    TRY(lg_cuda_reduce(cu, LG_CUDA_LOSS_SMOOTH_L1, 1, 0.5f, LG_CUDA_F32, dA, dB, n, dloss, &err));
    fetch(&loss, dloss, 4);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += lg_cuk_reduce_term(LG_CUDA_LOSS_SMOOTH_L1, a[i], b[i], 0.5f);
    rloss = (float)(s / (double)n);
    report("smooth_l1 loss (reduction)", &loss, &rloss, 1, 1e-5, 0);
    TRY(lg_cuda_upload(cu, dloss, &one, 4, &err));
    TRY(lg_cuda_loss_backward(cu, LG_CUDA_LOSS_SMOOTH_L1, 1, 0.5f, LG_CUDA_F32, dA, dB, dloss, dY, n, &err));
    fetch(y, dY, n * 4);
    for (size_t i = 0; i < n; i++)
        ry[i] = (float)(1.0 / (double)n) * lg_cuk_loss_grad(LG_CUDA_LOSS_SMOOTH_L1, a[i], b[i], 0.5f);
    report("smooth_l1 backward", y, ry, n, 1e-6, 0);

    float norm, rnorm, *dnorm = dalloc(4);
    TRY(lg_cuda_clip_grad_norm(cu, dA, n, 1.0, dnorm, &err));
    fetch(y, dA, n * 4);
    fetch(&norm, dnorm, 4);
    s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * a[i];
    float coef = lg_cuk_clip_coef(s, 1.0, &rnorm);
    for (size_t i = 0; i < n; i++)
        ry[i] = a[i] * coef;
    report("clip_grad_norm norm", &norm, &rnorm, 1, 1e-5, 0);
    report("clip_grad_norm grads", y, ry, n, 1e-5, 1e-9);
    free(a), free(b), free(y), free(ry), free(mask), free(rmask);
}

static void check_own_pooling(void) {
    lg_cuda_pool2d d = {.H = 33, .W = 29, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1,
                        .ceil_mode = 1, .count_include_pad = 0};
    TRY(lg_cuda_pool2d_init(&d, &err));
    const size_t planes = 64, nin = planes * 33 * 29, nout = planes * (size_t)(d.OH * d.OW);
    float *x = random_floats(nin, 80, 1.0f), *dy = random_floats(nout, 81, 1.0f);
    float *y = malloc(nout * 4), *ry = malloc(nout * 4), *dx = malloc(nin * 4), *rdx = malloc(nin * 4);
    int32_t *am = malloc(nout * 4), *ram = malloc(nout * 4);
    arena_top = 0;
    void *dX = dcopy(x, nin * 4), *dDY = dcopy(dy, nout * 4), *dY = dalloc(nout * 4), *dDX = dalloc(nin * 4);
    int32_t *dAM = dalloc(nout * 4);
    TRY(lg_cuda_max_pool2d_forward(cu, &d, LG_CUDA_F32, planes, dX, dY, dAM, &err));
    TRY(lg_cuda_max_pool2d_backward(cu, &d, LG_CUDA_F32, planes, dAM, dDY, dDX, &err));
    fetch(y, dY, nout * 4);
    fetch(am, dAM, nout * 4);
    fetch(dx, dDX, nin * 4);
    for (size_t i = 0; i < nout; i++)
        lg_cuk_max_pool_forward(i, &d, LG_CUDA_F32, x, ry, ram);
    for (size_t i = 0; i < nin; i++)
        lg_cuk_max_pool_backward(i, &d, LG_CUDA_F32, ram, dy, rdx);
    report("max_pool2d ceil_mode (own)", y, ry, nout, 0, 0);
    report("max_pool2d backward (own)", dx, rdx, nin, 0, 0);
    int bad = memcmp(am, ram, nout * 4) != 0;
    printf("%s %-28s\n", bad ? "FAIL" : "ok  ", "max_pool2d argmax");
    failures += bad;
    TRY(lg_cuda_avg_pool2d_forward(cu, &d, LG_CUDA_F32, planes, dX, dY, &err));
    TRY(lg_cuda_avg_pool2d_backward(cu, &d, LG_CUDA_F32, planes, dDY, dDX, &err));
    fetch(y, dY, nout * 4);
    fetch(dx, dDX, nin * 4);
    for (size_t i = 0; i < nout; i++)
        lg_cuk_avg_pool_forward(i, &d, LG_CUDA_F32, x, ry);
    for (size_t i = 0; i < nin; i++)
        lg_cuk_avg_pool_backward(i, &d, LG_CUDA_F32, dy, rdx);
    report("avg_pool2d (own)", y, ry, nout, 1e-6, 1e-7);
    report("avg_pool2d backward (own)", dx, rdx, nin, 1e-6, 1e-7);
    free(x), free(dy), free(y), free(ry), free(dx), free(rdx), free(am), free(ram);
}

/* ---- cuBLAS(Lt) and cuDNN vs plain loops --------------------------------------- */

static void check_linear(void) {
    const int N = 33, IN = 70, OUT = 19;
    float *x = random_floats((size_t)N * IN, 20, 1.0f), *w = random_floats((size_t)OUT * IN, 21, 0.2f);
    float *b = random_floats((size_t)OUT, 22, 0.5f), *dy = random_floats((size_t)N * OUT, 23, 1.0f);
    lg_cuda_linear d = {N, IN, OUT, 1, LG_CUDA_F32};
    lg_cuda_linear_plan *p;
    TRY(lg_cuda_linear_init(cu, &p, &d, &err));
    arena_top = 0;
    void *dX = dcopy(x, (size_t)N * IN * 4), *dW = dcopy(w, (size_t)OUT * IN * 4);
    void *dB = dcopy(b, (size_t)OUT * 4), *dDY = dcopy(dy, (size_t)N * OUT * 4);
    void *dY = dalloc((size_t)N * OUT * 4), *dDX = dalloc((size_t)N * IN * 4);
    void *dDW = dalloc((size_t)OUT * IN * 4), *dDB = dalloc((size_t)OUT * 4);
    TRY(lg_cuda_linear_forward(cu, p, dX, dW, dB, dY, &err));
    TRY(lg_cuda_linear_backward(cu, p, dX, dW, dDY, dDX, dDW, dDB, 0, &err));
    float *y = malloc((size_t)N * OUT * 4), *dx = malloc((size_t)N * IN * 4);
    float *dw = malloc((size_t)OUT * IN * 4), *db = malloc((size_t)OUT * 4);
    fetch(y, dY, (size_t)N * OUT * 4);
    fetch(dx, dDX, (size_t)N * IN * 4);
    fetch(dw, dDW, (size_t)OUT * IN * 4);
    fetch(db, dDB, (size_t)OUT * 4);
    float *ry = malloc((size_t)N * OUT * 4), *rdx = malloc((size_t)N * IN * 4);
    float *rdw = malloc((size_t)OUT * IN * 4), *rdb = malloc((size_t)OUT * 4);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double s = b[o];
            for (int i = 0; i < IN; i++)
                s += (double)x[n * IN + i] * w[o * IN + i];
            ry[n * OUT + o] = (float)s;
        }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int o = 0; o < OUT; o++)
                s += (double)dy[n * OUT + o] * w[o * IN + i];
            rdx[n * IN + i] = (float)s;
        }
    for (int o = 0; o < OUT; o++) {
        double sb = 0;
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int n = 0; n < N; n++)
                s += (double)dy[n * OUT + o] * x[n * IN + i];
            rdw[o * IN + i] = (float)s;
        }
        for (int n = 0; n < N; n++)
            sb += dy[n * OUT + o];
        rdb[o] = (float)sb;
    }
    report("linear forward (cuBLASLt)", y, ry, (size_t)N * OUT, 1e-4, 1e-5);
    report("linear dx (cuBLAS)", dx, rdx, (size_t)N * IN, 1e-4, 1e-5);
    report("linear dw (cuBLAS)", dw, rdw, (size_t)OUT * IN, 1e-4, 1e-5);
    report("linear db", db, rdb, (size_t)OUT, 1e-4, 1e-5);
    /* pointers that are only 4-byte aligned take the cuBLAS + bias path */
    float *xo = dalloc(((size_t)N * IN + 1) * 4), *yo = dalloc(((size_t)N * OUT + 1) * 4);
    TRY(lg_cuda_upload(cu, xo + 1, x, (size_t)N * IN * 4, &err));
    TRY(lg_cuda_linear_forward(cu, p, xo + 1, dW, dB, yo + 1, &err));
    fetch(y, yo + 1, (size_t)N * OUT * 4);
    report("linear forward, unaligned", y, ry, (size_t)N * OUT, 1e-4, 1e-5);
    lg_cuda_linear_free(p);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(ry), free(rdx),
        free(rdw), free(rdb);
}

static void check_conv_pool_bn(void) {
    const int N = 2, C = 3, H = 11, W = 9, K = 4, R = 3, S = 3, pad = 1, stride = 2;
    lg_cuda_conv d = {N, C, H, W, K, R, S, pad, pad, stride, stride, 1, 1, 1, 1, LG_CUDA_F32};
    lg_cuda_conv_plan *p;
    TRY(lg_cuda_conv_init(cu, &p, &d, &err));
    int P, Q;
    lg_cuda_conv_out(p, &P, &Q);
    size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * S, ny = (size_t)N * K * P * Q;
    float *x = random_floats(nx, 30, 1.0f), *w = random_floats(nw, 31, 0.3f);
    float *b = random_floats((size_t)K, 32, 0.1f);
    arena_top = 0;
    void *dX = dcopy(x, nx * 4), *dW = dcopy(w, nw * 4), *dB = dcopy(b, (size_t)K * 4);
    void *dY = dalloc(ny * 4);
    TRY(lg_cuda_conv_forward(cu, p, dX, dW, dB, dY, &err));
    float *y = malloc(ny * 4), *ry = malloc(ny * 4);
    fetch(y, dY, ny * 4);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            for (int oh = 0; oh < P; oh++)
                for (int ow = 0; ow < Q; ow++) {
                    double s = b[k];
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < R; r++)
                            for (int q = 0; q < S; q++) {
                                int ih = oh * stride - pad + r, iw = ow * stride - pad + q;
                                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                                    s += (double)x[((n * C + c) * H + ih) * W + iw] *
                                         w[((k * C + c) * R + r) * S + q];
                            }
                    ry[((n * K + k) * P + oh) * Q + ow] = (float)s;
                }
    report("conv2d forward (cuDNN)", y, ry, ny, 2e-3, 1e-3); /* TF32 allowed, as PyTorch */
    lg_cuda_conv_free(p);

    /* max pooling 2x2 over the conv input */
    lg_cuda_pool pd = {N, C, H, W, 2, 2, 2, 2, 0, 0, 1, 0, LG_CUDA_F32};
    lg_cuda_pool_plan *pp;
    TRY(lg_cuda_pool_init(cu, &pp, &pd, &err));
    int PP, PQ;
    lg_cuda_pool_out(pp, &PP, &PQ);
    size_t np = (size_t)N * C * PP * PQ;
    void *dP = dalloc(np * 4);
    TRY(lg_cuda_pool_forward(cu, pp, dX, dP, &err));
    float *pool = malloc(np * 4), *rpool = malloc(np * 4);
    fetch(pool, dP, np * 4);
    for (int nc = 0; nc < N * C; nc++)
        for (int i = 0; i < PP; i++)
            for (int j = 0; j < PQ; j++) {
                float m = -INFINITY;
                for (int a = 0; a < 2; a++)
                    for (int e = 0; e < 2; e++)
                        m = fmaxf(m, x[(nc * H + 2 * i + a) * W + 2 * j + e]);
                rpool[(nc * PP + i) * PQ + j] = m;
            }
    report("max_pool2d forward (cuDNN)", pool, rpool, np, 0, 0);
    lg_cuda_pool_free(pp);

    /* batch norm (training) over the conv input */
    lg_cuda_bn bd = {N, C, H, W, 1e-5, 0.1, LG_CUDA_F32};
    lg_cuda_bn_plan *bp;
    TRY(lg_cuda_bn_init(cu, &bp, &bd, &err));
    float ones[3] = {1, 1, 1}, zeros[3] = {0, 0, 0};
    float *dG = dcopy(ones, 12), *dBeta = dcopy(zeros, 12), *dRM = dcopy(zeros, 12);
    float *dRV = dcopy(ones, 12), *dSM = dalloc(12), *dSI = dalloc(12);
    void *dBN = dalloc(nx * 4);
    TRY(lg_cuda_bn_forward_train(cu, bp, dX, dBN, dG, dBeta, dRM, dRV, dSM, dSI, &err));
    float *bn = malloc(nx * 4), *rbn = malloc(nx * 4), rm[3], rrm[3];
    fetch(bn, dBN, nx * 4);
    fetch(rm, dRM, 12);
    int HW = H * W;
    for (int c = 0; c < C; c++) {
        double s = 0, s2 = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++)
                s += x[(n * C + c) * HW + i];
        double mean = s / (N * HW);
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                double v = x[(n * C + c) * HW + i] - mean;
                s2 += v * v;
            }
        double var = s2 / (N * HW);
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++)
                rbn[(n * C + c) * HW + i] =
                    (float)((x[(n * C + c) * HW + i] - mean) / sqrt(var + 1e-5));
        rrm[c] = (float)(0.1 * mean);
    }
    report("batch_norm forward (cuDNN)", bn, rbn, nx, 1e-4, 1e-4);
    report("batch_norm running_mean", rm, rrm, 3, 1e-4, 1e-6);
    /* affine: false (NULL weight and bias): the same as a unit scale, forward and backward */
    void *dBN0 = dalloc(nx * 4), *dDY = dcopy(x, nx * 4), *dDX = dalloc(nx * 4), *dDX0 = dalloc(nx * 4);
    float *dDG = dcopy(zeros, 12), *dDB = dcopy(zeros, 12);
    TRY(lg_cuda_bn_forward_train(cu, bp, dX, dBN0, NULL, NULL, dRM, dRV, dSM, dSI, &err));
    fetch(bn, dBN0, nx * 4);
    report("batch_norm affine: false", bn, rbn, nx, 1e-4, 1e-4);
    TRY(lg_cuda_bn_backward(cu, bp, dX, dDY, dDX, dG, dDG, dDB, dSM, dSI, 0, &err));
    TRY(lg_cuda_bn_backward(cu, bp, dX, dDY, dDX0, NULL, NULL, NULL, dSM, dSI, 1, &err));
    float *bx = malloc(nx * 4), *bx0 = malloc(nx * 4);
    fetch(bx, dDX, nx * 4);
    fetch(bx0, dDX0, nx * 4);
    report("batch_norm affine: false dx", bx0, bx, nx, 1e-6, 1e-7);
    free(bx), free(bx0);
    lg_cuda_bn_free(bp);
    free(x), free(w), free(b), free(y), free(ry), free(pool), free(rpool), free(bn), free(rbn);
}

/* A host copy of x in dtype dt (rounded) and its device copy. */
static void *dt_host(const float *x, size_t n, int dt) {
    void *h = malloc(n * 4 + 4);
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(h, i, dt, x[i]);
    return h;
}

/* Device results (dtype dt) against the host bodies' (the same dtype):
 * moves bit for bit (rtol 0), sums within rtol. */
static void report_dt(const char *what, int dt, const void *dev, const void *host, size_t n, double rtol,
                      double atol) {
    void *got = malloc(n * 4 + 4);
    float *g = malloc(n * 4 + 4), *w = malloc(n * 4 + 4);
    fetch(got, dev, n * LG_CUDA_DTYPE_SIZE(dt));
    for (size_t i = 0; i < n; i++)
        g[i] = lg_cuk_load(got, i, dt), w[i] = lg_cuk_load(host, i, dt);
    char name[64];
    snprintf(name, sizeof name, "%s %s", what, dt == LG_CUDA_F16 ? "f16" : dt == LG_CUDA_BF16 ? "bf16" : "f32");
    report(name, g, w, n, rtol, atol);
    free(got), free(g), free(w);
}

/* The dense ops' launchers (layer_norm, adaptive and cuDNN average pooling,
 * upsample_nearest, rpn_flatten, transpose, concat/split of 11 pieces,
 * softmax and the losses in the compute dtypes) against their bodies on
 * the host. */
static void check_dense_ops(void) {
    const size_t N = 3, C = 4, H = 10, W = 7, nin = N * C * H * W;
    float *x = random_floats(nin * 9, 80, 2.0f), *g = random_floats(nin * 9, 81, 1.0f);
    for (int dt = LG_CUDA_F32; dt <= LG_CUDA_BF16; dt++) {
        double tol = dt == LG_CUDA_F32 ? 1e-5 : dt == LG_CUDA_F16 ? 2e-3 : 1.6e-2;
        arena_top = 0;
        void *hx = dt_host(x, nin * 9, dt), *hg = dt_host(g, nin * 9, dt), *ref = malloc(nin * 9 * 4 + 4);
        void *dX = dcopy(hx, nin * 9 * 4), *dG = dcopy(hg, nin * 9 * 4), *dY = dalloc(nin * 9 * 4);
        /* layer_norm over rows of W, affine, with its gradients */
        size_t rows = nin / W;
        float *sm = dalloc(rows * 4), *si = dalloc(rows * 4), *hsm = malloc(rows * 4), *hsi = malloc(rows * 4);
        void *hw = dt_host(g, W, dt), *hb = dt_host(x, W, dt);
        void *dWt = dcopy(hw, W * 4), *dBs = dcopy(hb, W * 4), *dDW = dalloc(W * 4), *dDB = dalloc(W * 4);
        TRY(lg_cuda_memset(cu, dDW, 0, W * 4, &err));
        TRY(lg_cuda_memset(cu, dDB, 0, W * 4, &err));
        TRY(lg_cuda_layer_norm_forward(cu, (lg_cuda_dtype)dt, rows, W, 1e-5f, dX, dWt, dBs, dY, sm, si, &err));
        for (size_t r = 0; r < rows; r++)
            lg_cuk_layer_norm_forward(r, dt, W, 1e-5f, hx, hw, hb, ref, hsm, hsi);
        report_dt("layer_norm", dt, dY, ref, nin, tol, 1e-5);
        TRY(lg_cuda_layer_norm_backward(cu, (lg_cuda_dtype)dt, rows, W, dX, dWt, sm, si, dG, dY, dDW, dDB, &err));
        for (size_t r = 0; r < rows; r++)
            lg_cuk_layer_norm_backward(r, dt, W, hx, hw, hsm, hsi, hg, ref);
        report_dt("layer_norm dx", dt, dY, ref, nin, tol, 1e-5);
        void *hdw = dt_host(g, W, dt), *hdb = dt_host(g, W, dt);
        memset(hdw, 0, W * 4), memset(hdb, 0, W * 4);
        for (size_t k = 0; k < W; k++)
            lg_cuk_layer_norm_param_grad(k, dt, rows, W, hx, hsm, hsi, hg, hdw, hdb);
        report_dt("layer_norm dweight", dt, dDW, hdw, W, tol, 1e-4);
        report_dt("layer_norm dbias", dt, dDB, hdb, W, tol, 1e-4);
        /* adaptive average pooling 10x7 -> 4x3 */
        TRY(lg_cuda_adaptive_avg_pool_forward(cu, (lg_cuda_dtype)dt, N * C, H, W, 4, 3, dX, dY, &err));
        for (size_t i = 0; i < N * C * 12; i++)
            lg_cuk_adaptive_pool_forward(i, dt, H, W, 4, 3, hx, ref);
        report_dt("adaptive_avg_pool2d", dt, dY, ref, N * C * 12, tol, 1e-6);
        TRY(lg_cuda_adaptive_avg_pool_backward(cu, (lg_cuda_dtype)dt, N * C, H, W, 4, 3, dG, dY, &err));
        for (size_t i = 0; i < nin; i++)
            lg_cuk_adaptive_pool_backward(i, dt, H, W, 4, 3, hg, ref);
        report_dt("adaptive_avg_pool2d backward", dt, dY, ref, nin, tol, 1e-6);
        /* upsample_nearest x3 */
        TRY(lg_cuda_upsample_nearest_forward(cu, (lg_cuda_dtype)dt, N * C, H, W, 3, dX, dY, &err));
        for (size_t i = 0; i < nin * 9; i++)
            lg_cuk_upsample_forward(i, dt, H, W, 3, hx, ref);
        report_dt("upsample_nearest", dt, dY, ref, nin * 9, 0, 0);
        TRY(lg_cuda_upsample_nearest_backward(cu, (lg_cuda_dtype)dt, N * C, H, W, 3, dG, dY, &err));
        for (size_t i = 0; i < nin; i++)
            lg_cuk_upsample_backward(i, dt, H, W, 3, hg, ref);
        report_dt("upsample_nearest backward", dt, dY, ref, nin, tol, 1e-6);
        /* rpn_flatten of one level (A = 2, D = 2: C = 4) at row 5 of 150 */
        size_t total = 150, nflat = N * total * 2;
        TRY(lg_cuda_memset(cu, dY, 0, nflat * 4, &err));
        memset(ref, 0, nflat * 4);
        TRY(lg_cuda_rpn_flatten_forward(cu, (lg_cuda_dtype)dt, N, 2, 2, (int)H, (int)W, dX, dY, total, 5, &err));
        for (size_t i = 0; i < nin; i++)
            lg_cuk_store(ref, lg_cuk_rpn_flatten_dst(i, 2, 2, H * W, total, 5), dt, lg_cuk_load(hx, i, dt));
        report_dt("rpn_flatten", dt, dY, ref, nflat, 0, 0);
        TRY(lg_cuda_rpn_flatten_backward(cu, (lg_cuda_dtype)dt, N, 2, 2, (int)H, (int)W, dG, total, 5, dY, &err));
        for (size_t i = 0; i < nin; i++)
            lg_cuk_store(ref, i, dt, lg_cuk_load(hg, lg_cuk_rpn_flatten_dst(i, 2, 2, H * W, total, 5), dt));
        report_dt("rpn_flatten backward", dt, dY, ref, nin, 0, 0);
        /* transpose [N, C, H, W] -> [N, W, H, C] */
        TRY(lg_cuda_transpose(cu, (lg_cuda_dtype)dt, N, C, H, W, 1, dX, dY, &err));
        for (size_t i = 0; i < nin; i++)
            lg_cuk_store(ref, i, dt, lg_cuk_load(hx, lg_cuk_transpose_src(i, C, H, W, 1), dt));
        report_dt("transpose", dt, dY, ref, nin, 0, 0);
        /* concat of 11 pieces (two launches) and split back */
        enum { K = 11 };
        size_t sizes[K], stride = 0, off = 0;
        const void *ins[K];
        void *outs[K];
        for (int i = 0; i < K; i++) {
            sizes[i] = (size_t)(1 + i % 4);
            ins[i] = (const char *)dX + off * LG_CUDA_DTYPE_SIZE(dt);
            outs[i] = (char *)dG + off * LG_CUDA_DTYPE_SIZE(dt); /* dG is not read again below */
            off += 5 * sizes[i];
            stride += sizes[i];
        }
        TRY(lg_cuda_concat(cu, (lg_cuda_dtype)dt, 5, K, sizes, ins, dY, &err));
        for (size_t o = 0, col = 0; o < 5; o++)
            for (int i = 0; i < K; i++)
                for (size_t j = 0; j < sizes[i]; j++, col++) {
                    size_t before = 0;
                    for (int q = 0; q < i; q++)
                        before += 5 * sizes[q];
                    lg_cuk_store(ref, col, dt, lg_cuk_load(hx, before + o * sizes[i] + j, dt));
                }
        report_dt("concat of 11", dt, dY, ref, 5 * stride, 0, 0);
        TRY(lg_cuda_split(cu, (lg_cuda_dtype)dt, 5, K, sizes, dY, outs, &err));
        report_dt("split into 11", dt, dG, hx, off, 0, 0);
        TRY(lg_cuda_upload(cu, dG, hg, nin * 9 * LG_CUDA_DTYPE_SIZE(dt), &err));
        /* log_softmax over rows of 70, and its backward */
        TRY(lg_cuda_softmax_forward(cu, (lg_cuda_dtype)dt, 1, N * C, H * W, 1, dX, dY, &err));
        for (size_t t = 0; t < N * C; t++)
            lg_cuk_softmax_forward(t, dt, H * W, 1, 1, hx, ref);
        report_dt("log_softmax", dt, dY, ref, nin, tol, 1e-5);
        void *hy = malloc(nin * 4);
        fetch(hy, dY, nin * LG_CUDA_DTYPE_SIZE(dt));
        void *dX2 = dalloc(nin * 4);
        TRY(lg_cuda_softmax_backward(cu, (lg_cuda_dtype)dt, 1, N * C, H * W, 1, dY, dG, dX2, &err));
        for (size_t t = 0; t < N * C; t++)
            lg_cuk_softmax_backward(t, dt, H * W, 1, 1, hy, hg, ref);
        report_dt("log_softmax backward", dt, dX2, ref, nin, tol, 1e-4);
        /* mse over the tensor and its backward (loss and dloss float32) */
        float *dLoss = dalloc(4), loss, rloss, dl = 2.0f;
        TRY(lg_cuda_reduce(cu, LG_CUDA_LOSS_MSE, 1, 0.0f, (lg_cuda_dtype)dt, dX, dG, nin, dLoss, &err));
        fetch(&loss, dLoss, 4);
        double sum = 0;
        for (size_t i = 0; i < nin; i++)
            sum += lg_cuk_reduce_term(LG_CUDA_LOSS_MSE, lg_cuk_load(hx, i, dt), lg_cuk_load(hg, i, dt), 0.0f);
        rloss = (float)(sum / (double)nin);
        report(dt == LG_CUDA_F32 ? "mse loss f32" : dt == LG_CUDA_F16 ? "mse loss f16" : "mse loss bf16", &loss,
               &rloss, 1, 1e-5, 0);
        TRY(lg_cuda_upload(cu, dLoss, &dl, 4, &err));
        TRY(lg_cuda_loss_backward(cu, LG_CUDA_LOSS_MSE, 1, 0.0f, (lg_cuda_dtype)dt, dX, dG, dLoss, dY, nin, &err));
        for (size_t i = 0; i < nin; i++)
            lg_cuk_store(ref, i, dt, (float)((double)dl / (double)nin) *
                                         lg_cuk_loss_grad(LG_CUDA_LOSS_MSE, lg_cuk_load(hx, i, dt), lg_cuk_load(hg, i, dt), 0.0f));
        report_dt("mse backward", dt, dY, ref, nin, 1e-6, 0);
        /* average pooling through cuDNN against the own kernel (PyTorch's
         * windows): 3x3, stride 2, padding 1, with and without the padding counted */
        for (int cip = 0; cip < 2; cip++) {
            lg_cuda_pool pd = {(int)N, (int)C, (int)H, (int)W, 3, 3, 2, 2, 1, 1, 0, cip, (lg_cuda_dtype)dt};
            lg_cuda_pool2d od = {.H = (int)H, .W = (int)W, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1,
                                 .ceil_mode = 0, .count_include_pad = cip};
            lg_cuda_pool_plan *pp;
            TRY(lg_cuda_pool_init(cu, &pp, &pd, &err));
            TRY(lg_cuda_pool2d_init(&od, &err));
            size_t np = N * C * (size_t)(od.OH * od.OW);
            void *dP = dalloc(np * 4), *dP2 = dalloc(np * 4), *dB1 = dalloc(nin * 4), *dB2 = dalloc(nin * 4);
            TRY(lg_cuda_pool_forward(cu, pp, dX, dP, &err));
            TRY(lg_cuda_avg_pool2d_forward(cu, &od, (lg_cuda_dtype)dt, N * C, dX, dP2, &err));
            fetch(ref, dP2, np * LG_CUDA_DTYPE_SIZE(dt));
            report_dt(cip ? "avg_pool2d cuDNN (pad counted)" : "avg_pool2d cuDNN (pad not counted)", dt, dP, ref, np,
                      tol, 1e-6);
            TRY(lg_cuda_pool_backward(cu, pp, dX, dP, dG, dB1, &err));
            TRY(lg_cuda_avg_pool2d_backward(cu, &od, (lg_cuda_dtype)dt, N * C, dG, dB2, &err));
            fetch(ref, dB2, nin * LG_CUDA_DTYPE_SIZE(dt));
            report_dt(cip ? "avg_pool2d cuDNN backward (pad)" : "avg_pool2d cuDNN backward (no pad)", dt, dB1, ref,
                      nin, tol, 1e-6);
            lg_cuda_pool_free(pp);
        }
        free(hx), free(hg), free(ref), free(hsm), free(hsi), free(hw), free(hb), free(hdw), free(hdb), free(hy);
    }
    free(x), free(g);
}

int main(void) {
    int n = 0;
    if (lg_cuda_device_count(&n, &err) != LG_OK) {
        printf("SKIP: %s\n", err.msg);
        return 0;
    }
    lg_cuda_config cfg = {.device = 0, .arena_bytes = (size_t)64 << 20, .staging_bytes = 1 << 20,
                          .staging_slots = 2};
    TRY(lg_cuda_init(&cu, &cfg, &err));
    printf("device: %s\n", lg_cuda_describe(cu));
    check_activations();
    check_convert();
    check_cross_entropy();
    check_optimizers();
    check_loss_scaling();
    check_nms();
    check_matcher();
    check_roi_align();
    check_more_pointwise();
    check_own_pooling();
    check_linear();
    check_conv_pool_bn();
    check_dense_ops();
    lg_cuda_free(cu);
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
