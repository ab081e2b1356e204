/* tests/gpu/gpu_detect.c — the detection kernels of runtime/cuda/detect.cu on
 * a device, against runtime/detect's CPU kernels on the same inputs, at
 * specs/faster_rcnn.lmod's sizes (a 512 x 512 image: 65,472 anchors on five
 * FPN levels, 64 ground truth slots per image, 2 images, 1,024 RoIs of 21
 * classes):
 *   - anchors: bit for bit;
 *   - the RPN loss: the same labels for every anchor (the Matcher's IoUs
 *     without FMA contraction, and the sampler's splitmix64 draws), box
 *     targets, both losses and both gradients to 1e-5;
 *   - the Fast R-CNN loss and its gradients to 1e-5;
 *   - RoIAlign on the four FPN levels (LevelMapper), forward and the atomic
 *     backward to 1e-4 (nvcc contracts kernels.cu's bilinear weights), the
 *     ordered backward (detect.cu) bit for bit, and the time of each.
 * One line per check and the time of each launch sequence; exit status 0
 * when all pass. Without a device: "SKIP: ..." and exit 0. `make check-gpu`
 * runs it.
 */
#include "lgen/cuda.h"
#include "lgen/detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HARNESS_NAME "gpu_detect"
#include "harness.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static unsigned state = 7u;

static float uniform(float lo, float hi) {
    state = state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(state >> 8) / 16777216.0f;
}

enum { S = 512, N = 2, M = 64, L = 5 };

static lg_cuda_anchors anchor_desc(void) {
    static const float sizes[L] = {32, 64, 128, 256, 512}, ratios[3] = {0.5f, 1.0f, 2.0f};
    lg_cuda_anchors d = {.levels = L, .image_h = S, .image_w = S};
    for (int l = 0; l < L; l++) {
        d.level[l].feat_h = d.level[l].feat_w = S >> (l + 2);
        d.level[l].num_sizes = 1;
        d.level[l].sizes[0] = sizes[l];
        d.level[l].num_ratios = 3;
        memcpy(d.level[l].aspect_ratios, ratios, sizeof ratios);
    }
    return d;
}

/* anchors, then the RPN loss on them */
static void check_anchors_and_rpn_loss(void) {
    arena_top = 0;
    lg_cuda_anchors d = anchor_desc();
    lg_anchor_level lv[L];
    for (int l = 0; l < L; l++)
        lv[l] = (lg_anchor_level){d.level[l].feat_h, d.level[l].feat_w, 1, d.level[l].sizes, 3,
                                  d.level[l].aspect_ratios};
    int A = lg_anchors_count(lv, L);
    float *anchors = malloc((size_t)A * 16), *got = malloc((size_t)A * 16);
    TRY(lg_anchors_generate(NULL, lv, L, S, S, anchors, NULL));
    float *dA = dalloc((size_t)A * 16);
    TRY(lg_cuda_anchors_generate(cu, &d, dA, &err));
    fetch(got, dA, (size_t)A * 16);
    int same = memcmp(got, anchors, (size_t)A * 16) == 0;
    failures += !same;
    printf("%s %-30s (%d anchors, bit for bit)\n", same ? "ok  " : "FAIL", "anchors", A);

    /* the batch's ground truth as the loader pads it */
    float boxes[N * M * 4] = {0};
    int32_t labels[N * M], count[N] = {17, 5};
    uint8_t difficult[N * M] = {0};
    for (int n = 0; n < N; n++)
        for (int i = 0; i < M; i++) {
            labels[n * M + i] = -1;
            if (i >= count[n])
                continue;
            float w = uniform(16, 300), h = uniform(16, 300), x = uniform(0, S - w), y = uniform(0, S - h);
            float *b = boxes + 4 * (n * M + i);
            b[0] = x, b[1] = y, b[2] = x + w, b[3] = y + h;
            labels[n * M + i] = (int32_t)uniform(0, 20);
            difficult[n * M + i] = i % 5 == 4;
        }
    size_t NA = (size_t)N * A;
    float *obj = malloc(NA * 4), *del = malloc(NA * 16);
    for (size_t i = 0; i < NA; i++)
        obj[i] = uniform(-5, 5);
    for (size_t i = 0; i < 4 * NA; i++)
        del[i] = uniform(-0.5f, 0.5f);
    lg_cuda_det_targets tg = {M, dcopy(boxes, sizeof boxes), dcopy(labels, sizeof labels),
                              dcopy(difficult, sizeof difficult), dcopy(count, sizeof count), 1, 0};
    lg_cuda_rpn_loss rd = {N, A, 0.7f, 0.3f, 256, 0.5f, 1.0f / 9, 42, (uint64_t)1 << 32 | 5};
    float *dObj = dcopy(obj, NA * 4), *dDel = dcopy(del, NA * 16), *dT = dalloc(NA * 16), *dLoss = dalloc(256);
    int32_t *dLab = dalloc(NA * 4);
    void *ws = dalloc(lg_cuda_rpn_loss_workspace(N, A, M));
    TRY(lg_cuda_sync(cu, &err));
    double t0 = now();
    TRY(lg_cuda_rpn_loss_forward(cu, &rd, dObj, dDel, dA, &tg, ws, dLab, dT, dLoss, dLoss + 1, &err));
    TRY(lg_cuda_sync(cu, &err));
    double t1 = now();
    int32_t *lab = malloc(NA * 4);
    int *clab = malloc(NA * sizeof(int));
    float *tgt = malloc(NA * 16), *ctgt = malloc(NA * 16), loss[2], closs[2];
    fetch(lab, dLab, NA * 4);
    fetch(tgt, dT, NA * 16);
    fetch(loss, dLoss, sizeof loss);
    lg_rpn_loss_config c = {{0.7f, 0.3f, 256, 0.5f}, 1.0f / 9, 42};
    lg_det_targets ct = {M, boxes, labels, difficult, count, 1, 0};
    void *cws = malloc(lg_rpn_loss_batch_workspace(A, M));
    TRY(lg_rpn_loss_batch_forward(NULL, &c, obj, del, anchors, A, N, &ct, rd.step, cws, clab, ctgt, closs,
                                  closs + 1));
    size_t differ = 0, pos = 0;
    for (size_t i = 0; i < NA; i++)
        differ += lab[i] != clab[i], pos += lab[i] == 1;
    failures += differ != 0 || pos == 0;
    printf("%s %-30s (%zu anchors differ of %zu, %zu positives; %.3f ms)\n", differ || !pos ? "FAIL" : "ok  ",
           "rpn labels (sampled anchors)", differ, NA, pos, 1e3 * (t1 - t0));
    report("rpn box targets", tgt, ctgt, NA * 4, 1e-5, 1e-5);
    report("rpn losses", loss, closs, 2, 1e-5, 1e-7);

    float dl[2] = {0.5f, 2.0f};
    float *dDl = dcopy(dl, sizeof dl), *dGo = dalloc(NA * 4), *dGd = dalloc(NA * 16);
    float *go = malloc(NA * 4), *gd = malloc(NA * 16), *cgo = malloc(NA * 4), *cgd = malloc(NA * 16);
    TRY(lg_cuda_rpn_loss_backward(cu, &rd, dObj, dDel, dLab, dT, dDl, dDl + 1, dGo, dGd, &err));
    fetch(go, dGo, NA * 4);
    fetch(gd, dGd, NA * 16);
    TRY(lg_rpn_loss_backward(NULL, obj, del, clab, ctgt, N, A, 1.0f / 9, dl[0], dl[1], cgo, cgd));
    report("rpn d objectness", go, cgo, NA, 1e-5, 1e-9);
    report("rpn d deltas", gd, cgd, NA * 4, 1e-5, 1e-9);
    free(anchors), free(got), free(obj), free(del), free(lab), free(clab), free(tgt), free(ctgt), free(cws);
    free(go), free(gd), free(cgo), free(cgd);
}

static void check_fastrcnn_loss(void) {
    arena_top = 0;
    const int R = N * 512, K = 21;
    float *lg = malloc((size_t)R * K * 4), *bx = malloc((size_t)R * K * 16), *tg = malloc((size_t)R * 16);
    int32_t *lab = malloc((size_t)R * 4);
    for (int r = 0; r < R; r++) {
        lab[r] = r % 512 >= 500 ? -1 : r % 4 ? (int32_t)uniform(1, K) : 0;
        for (int k = 0; k < 4; k++)
            tg[4 * r + k] = uniform(-1, 1);
    }
    for (size_t i = 0; i < (size_t)R * K; i++)
        lg[i] = uniform(-8, 8);
    for (size_t i = 0; i < (size_t)R * K * 4; i++)
        bx[i] = uniform(-1, 1);
    float *dL = dcopy(lg, (size_t)R * K * 4), *dB = dcopy(bx, (size_t)R * K * 16), *dT = dcopy(tg, (size_t)R * 16);
    int32_t *dLab = dcopy(lab, (size_t)R * 4);
    float *dLoss = dalloc(256), *dGl = dalloc((size_t)R * K * 4), *dGb = dalloc((size_t)R * K * 16);
    float loss[2], closs[2], dl[2] = {1.0f, 1.0f};
    float *dDl = dcopy(dl, sizeof dl);
    TRY(lg_cuda_fastrcnn_loss_forward(cu, dL, dB, dLab, dT, R, K, 1.0f / 9, dLoss, dLoss + 1, &err));
    TRY(lg_cuda_fastrcnn_loss_backward(cu, dL, dB, dLab, dT, R, K, 1.0f / 9, dDl, dDl + 1, dGl, dGb, &err));
    fetch(loss, dLoss, sizeof loss);
    TRY(lg_fastrcnn_loss_forward(NULL, lg, bx, lab, tg, R, K, 1.0f / 9, closs, closs + 1));
    report("fastrcnn losses", loss, closs, 2, 1e-5, 1e-7);
    float *gl = malloc((size_t)R * K * 4), *gb = malloc((size_t)R * K * 16);
    float *cgl = malloc((size_t)R * K * 4), *cgb = malloc((size_t)R * K * 16);
    fetch(gl, dGl, (size_t)R * K * 4);
    fetch(gb, dGb, (size_t)R * K * 16);
    TRY(lg_fastrcnn_loss_backward(NULL, lg, bx, lab, tg, R, K, 1.0f / 9, dl[0], dl[1], cgl, cgb));
    report("fastrcnn d logits", gl, cgl, (size_t)R * K, 1e-5, 1e-9);
    report("fastrcnn d box regression", gb, cgb, (size_t)R * K * 4, 1e-5, 1e-9);
    free(lg), free(bx), free(tg), free(lab), free(gl), free(gb), free(cgl), free(cgb);
}

/* multi-scale RoIAlign on faster_rcnn's four levels (C = 32 to keep it small):
 * forward and the atomic backward against lg_multiscale_roi_align_* */
static void check_roi_align_fpn(void) {
    arena_top = 0;
    enum { C = 32, R = 512, LV = 4 };
    const int hw[LV] = {128, 64, 32, 16};
    lg_cuda_roi_align d = {.C = C, .PH = 7, .PW = 7, .sampling_ratio = 2, .aligned = 0, .levels = LV, .k_min = 2,
                           .H = {128, 64, 32, 16}, .W = {128, 64, 32, 16},
                           .spatial_scale = {0.25f, 0.125f, 0.0625f, 0.03125f}};
    lg_multiscale_roi_align ms = {.num_levels = LV, .scales = {0.25f, 0.125f, 0.0625f, 0.03125f}, .pooled_h = 7,
                                  .pooled_w = 7, .sampling_ratio = 2, .aligned = 0, .canonical_scale = 224,
                                  .canonical_level = 4};
    float *feat[LV], *dfeat[LV], *cgrad[LV], *ggrad[LV];
    const float *cfeat[LV];
    size_t sz[LV];
    for (int l = 0; l < LV; l++) {
        sz[l] = (size_t)N * C * hw[l] * hw[l];
        float *h = malloc(sz[l] * 4);
        for (size_t i = 0; i < sz[l]; i++)
            h[i] = uniform(-1, 1);
        cfeat[l] = h;
        feat[l] = dcopy(h, sz[l] * 4);
        dfeat[l] = dalloc(sz[l] * 4);
        TRY(lg_cuda_memset(cu, dfeat[l], 0, sz[l] * 4, &err));
        cgrad[l] = malloc(sz[l] * 4);
        ggrad[l] = malloc(sz[l] * 4);
    }
    float *rois = malloc((size_t)N * R * 20);
    for (int k = 0; k < N * R; k++) {
        float w = uniform(2, 400), h = uniform(2, 400), x = uniform(0, S - w), y = uniform(0, S - h);
        float *r = rois + 5 * k;
        r[0] = k % R >= R - 20 ? -1.0f : (float)(k / R); /* padding rows after each image's RoIs */
        r[1] = x, r[2] = y, r[3] = x + w, r[4] = y + h;
    }
    size_t nout = (size_t)N * R * C * 49;
    float *dout = malloc(nout * 4), *out = malloc(nout * 4), *cout = malloc(nout * 4);
    for (size_t i = 0; i < nout; i++)
        dout[i] = uniform(-1, 1);
    float *dR = dcopy(rois, (size_t)N * R * 20), *dO = dalloc(nout * 4), *dDO = dcopy(dout, nout * 4);
    TRY(lg_cuda_sync(cu, &err));
    double t0 = now();
    TRY(lg_cuda_roi_align_forward(cu, &d, (const float *const *)feat, dR, (size_t)N * R, dO, &err));
    TRY(lg_cuda_sync(cu, &err));
    double t1 = now();
    TRY(lg_cuda_roi_align_backward(cu, &d, dfeat, dR, (size_t)N * R, dDO, &err));
    TRY(lg_cuda_sync(cu, &err));
    double t2 = now();
    fetch(out, dO, nout * 4);
    TRY(lg_multiscale_roi_align_forward(NULL, &ms, cfeat, hw, hw, N, C, rois, N * R, cout));
    TRY(lg_multiscale_roi_align_backward(NULL, &ms, dout, hw, hw, N, C, rois, N * R, cgrad));
    float *dfeat2[LV];
    for (int l = 0; l < LV; l++)
        dfeat2[l] = dalloc(sz[l] * 4);
    TRY(lg_cuda_roi_align_backward_ordered(cu, &d, N, dfeat2, dR, (size_t)N * R, dDO, &err));
    TRY(lg_cuda_sync(cu, &err));
    double t3 = now();
    printf("     roi_align (4 levels, %d RoIs, C %d): forward %.3f ms, backward %.3f ms (atomic), %.3f ms (ordered)\n",
           N * R, C, 1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2));
    report("roi_align fpn forward", out, cout, nout, 1e-4, 1e-5);
    for (int l = 0; l < LV; l++) {
        char what[64];
        fetch(ggrad[l], dfeat[l], sz[l] * 4);
        snprintf(what, sizeof what, "roi_align fpn backward P%d", l + 2);
        report(what, ggrad[l], cgrad[l], sz[l], 1e-4, 1e-5);
        fetch(ggrad[l], dfeat2[l], sz[l] * 4);
        size_t differ = 0;
        for (size_t i = 0; i < sz[l]; i++)
            differ += memcmp(&ggrad[l][i], &cgrad[l][i], 4) != 0;
        failures += differ != 0;
        printf("%s %-30s (%zu of %zu values not bit-equal)\n", differ ? "FAIL" : "ok  ", "ordered backward", differ,
               sz[l]);
        free((void *)cfeat[l]), free(cgrad[l]), free(ggrad[l]);
    }
    free(rois), free(dout), free(out), free(cout);
}

int main(void) {
    int n = 0;
    if (lg_cuda_device_count(&n, &err) != LG_OK) {
        printf("SKIP: %s\n", err.msg);
        return 0;
    }
    lg_cuda_config cfg = {.device = 0, .arena_bytes = (size_t)256 << 20, .staging_bytes = 1 << 20,
                          .staging_slots = 2};
    TRY(lg_cuda_init(&cu, &cfg, &err));
    printf("device: %s\n", lg_cuda_describe(cu));
    check_anchors_and_rpn_loss();
    check_fastrcnn_loss();
    check_roi_align_fpn();
    lg_cuda_free(cu);
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
