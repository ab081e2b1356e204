/* check_cuda_detect.c — the detection kernels' bodies (runtime/cuda/
 * detect_body.h) against runtime/detect's CPU kernels on the same inputs.
 *
 * Each body runs over its whole grid on the host, in the order the
 * launchers of runtime/cuda/detect.cu enqueue them, and the CPU kernel of
 * lgen/detect.h runs on the same inputs: the anchors of a five-level FPN
 * (bit for bit), the ground truth per image (label offset, difficult boxes
 * skipped or not), the RPN loss's labels (the Matcher with low-quality
 * matches and the seeded sampler: the very same anchors sampled, over
 * several chunks of anchors, with an image without boxes), box targets,
 * both losses and their gradients, and the Fast R-CNN loss with padding
 * rows forward and backward, and RoIAlign's ordered backward (bit for bit,
 * FPN levels and one map). (tests/gpu/gpu_detect.c runs the launchers on a
 * device against the CPU kernels.)
 */
#include "../runtime/cuda/detect_body.h"
#include "lgen/detect.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_close(const char *what, const float *a, const float *b, size_t n, double rtol,
                         double atol) {
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        ck_assert_msg(diff <= atol + rtol * fabs((double)b[i]), "%s[%zu]: body %.9g, CPU kernel %.9g",
                      what, i, (double)a[i], (double)b[i]);
    }
}

static unsigned rnd_state = 12345u;

static float uniform(float lo, float hi) {
    rnd_state = rnd_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rnd_state >> 8) / 16777216.0f;
}

/* faster_rcnn.lmod's anchor generator (sizes 32..512, one per level, ratios
 * 0.5, 1, 2) for a square image of side S: maps S/4 .. S/64. */
static lg_cuda_anchors fpn_anchors(int S) {
    static const float sizes[5] = {32, 64, 128, 256, 512}, ratios[3] = {0.5f, 1.0f, 2.0f};
    lg_cuda_anchors d = {.levels = 5, .image_h = S, .image_w = S};
    for (int l = 0; l < 5; l++) {
        lg_cuda_anchor_level *lv = &d.level[l];
        lv->feat_h = lv->feat_w = S >> (l + 2);
        lv->num_sizes = 1;
        lv->sizes[0] = sizes[l];
        lv->num_ratios = 3;
        memcpy(lv->aspect_ratios, ratios, sizeof ratios);
    }
    return d;
}

static void cpu_levels(const lg_cuda_anchors *d, lg_anchor_level *lv) {
    for (int l = 0; l < d->levels; l++)
        lv[l] = (lg_anchor_level){d->level[l].feat_h, d->level[l].feat_w, d->level[l].num_sizes,
                                  d->level[l].sizes, d->level[l].num_ratios, d->level[l].aspect_ratios};
}

/* The body's anchors, as lg_cuda_anchors_generate launches them. */
static int body_anchors(const lg_cuda_anchors *d, float **out) {
    lg_cuk_anchor_grid g;
    ck_assert_int_eq(lg_cuk_anchor_grid_init(d, &g), 0);
    int A = g.first[g.levels];
    *out = malloc((size_t)A * 4 * sizeof(float));
    for (size_t i = 0; i < (size_t)A; i++)
        lg_cuk_anchor(i, &g, *out);
    return A;
}

START_TEST(test_anchors_match_cpu) {
    const int sides[] = {64, 256, 320};
    for (int s = 0; s < 3; s++) {
        lg_cuda_anchors d = fpn_anchors(sides[s]);
        if (s == 2) { /* several sizes at one level, a ratio of 1/3, a non-square image */
            d.levels = 2;
            d.image_w = 2 * sides[s];
            d.level[0].num_sizes = 4;
            memcpy(d.level[0].sizes, (float[]){16, 24.5f, 40, 100}, 4 * sizeof(float));
            d.level[0].aspect_ratios[0] = 1.0f / 3.0f;
            d.level[0].feat_w = 2 * d.level[0].feat_h;
            d.level[1].feat_w = 2 * d.level[1].feat_h;
        }
        lg_anchor_level lv[5];
        cpu_levels(&d, lv);
        int A = lg_anchors_count(lv, d.levels);
        float *cpu = malloc((size_t)A * 4 * sizeof(float)), *body = NULL;
        ck_assert_int_eq(lg_anchors_generate(NULL, lv, d.levels, d.image_h, d.image_w, cpu, NULL), LG_OK);
        ck_assert_int_eq(body_anchors(&d, &body), A);
        ck_assert_msg(memcmp(cpu, body, (size_t)A * 4 * sizeof(float)) == 0, "anchors differ (side %d)",
                      sides[s]);
        free(cpu);
        free(body);
    }
    /* what the launcher refuses */
    lg_cuda_anchors d = fpn_anchors(64);
    lg_cuk_anchor_grid g;
    d.level[2].feat_h = 65; /* larger than the image */
    ck_assert_int_eq(lg_cuk_anchor_grid_init(&d, &g), -3);
    d = fpn_anchors(64);
    d.level[1].aspect_ratios[1] = 0.0f;
    ck_assert_int_eq(lg_cuk_anchor_grid_init(&d, &g), -2);
    d.levels = LG_CUDA_MAX_LEVELS + 1;
    ck_assert_int_eq(lg_cuk_anchor_grid_init(&d, &g), -100);
}
END_TEST

/* A batch of N images' ground truth, M slots each, as the loader pads it. */
typedef struct Truth {
    int N, M;
    float *boxes;
    int32_t *labels, *count;
    uint8_t *difficult;
} Truth;

static Truth make_truth(int N, int M, const int *counts, int S) {
    Truth t = {N, M, calloc((size_t)N * M * 4, sizeof(float)), malloc((size_t)N * M * sizeof(int32_t)),
               malloc((size_t)N * sizeof(int32_t)), calloc((size_t)N * M, 1)};
    for (int n = 0; n < N; n++) {
        t.count[n] = counts[n];
        for (int i = 0; i < M; i++) {
            size_t k = (size_t)n * M + i;
            t.labels[k] = -1;
            if (i >= counts[n])
                continue;
            float w = uniform(12, (float)S * 0.6f), h = uniform(12, (float)S * 0.6f);
            float x = uniform(-4, (float)S - w), y = uniform(-4, (float)S - h);
            float *b = t.boxes + 4 * k;
            b[0] = x, b[1] = y, b[2] = x + w, b[3] = y + h;
            t.labels[k] = (int32_t)(uniform(0, 20));
            t.difficult[k] = i % 3 == 1;
        }
    }
    return t;
}

static void free_truth(Truth *t) {
    free(t->boxes), free(t->labels), free(t->count), free(t->difficult);
}

START_TEST(test_ground_truth_matches_cpu_layout) {
    int counts[3] = {5, 0, 4};
    Truth t = make_truth(3, 6, counts, 128);
    for (int skip = 0; skip < 2; skip++) {
        lg_cuda_det_targets tg = {t.M, t.boxes, t.labels, t.difficult, t.count, 1, skip};
        float boxes[3 * 6 * 4];
        int32_t labels[3 * 6], count[3];
        for (size_t n = 0; n < 3; n++)
            lg_cuk_det_gt(n, &tg, boxes, labels, count);
        for (int n = 0; n < 3; n++) {
            int k = 0;
            for (int i = 0; i < counts[n]; i++) {
                size_t src = (size_t)n * 6 + i;
                if (skip && t.difficult[src])
                    continue;
                size_t dst = (size_t)n * 6 + k++;
                ck_assert(memcmp(boxes + 4 * dst, t.boxes + 4 * src, 4 * sizeof(float)) == 0);
                ck_assert_int_eq(labels[dst], t.labels[src] + 1);
            }
            ck_assert_int_eq(count[n], k);
        }
    }
    free_truth(&t);
}
END_TEST

/* The RPN loss forward on the host in the launcher's order. */
static void body_rpn_forward(const lg_cuda_rpn_loss *d, const lg_cuda_det_targets *t, const float *objectness,
                             const float *deltas, const float *anchors, int32_t *labels, float *box_targets,
                             float *loss_obj, float *loss_box) {
    int N = d->N, A = d->A, M = t->max_boxes, C = lg_cuk_chunks(A);
    float *gt = malloc((size_t)N * M * 4 * sizeof(float)), *iou = malloc((size_t)N * M * A * sizeof(float));
    float *highest = malloc((size_t)N * M * sizeof(float));
    int32_t *gt_labels = malloc((size_t)N * M * sizeof(int32_t)), *count = malloc((size_t)N * sizeof(int32_t));
    int32_t *matches = malloc((size_t)N * A * sizeof(int32_t)), *pos = malloc((size_t)N * A * sizeof(int32_t));
    int32_t *neg = malloc((size_t)N * A * sizeof(int32_t)), *pos_n = malloc((size_t)N * C * sizeof(int32_t));
    int32_t *neg_n = malloc((size_t)N * C * sizeof(int32_t)), totals[16];
    uint8_t *keep = malloc((size_t)N * A);
    for (size_t n = 0; n < (size_t)N; n++)
        lg_cuk_det_gt(n, t, gt, gt_labels, count);
    for (size_t i = 0; i < (size_t)N * M * A; i++)
        lg_cuk_rpn_iou(i, M, A, gt, count, anchors, iou);
    for (size_t ng = 0; ng < (size_t)N * M; ng++)
        if ((int)(ng % (size_t)M) < count[ng / (size_t)M]) /* the launcher's block per slot, split in 3 parts */
            highest[ng] = fmaxf(fmaxf(lg_cuk_rpn_highest(ng, 0, 3, A, iou), lg_cuk_rpn_highest(ng, 1, 3, A, iou)),
                                lg_cuk_rpn_highest(ng, 2, 3, A, iou));
    for (size_t i = 0; i < (size_t)N * A; i++)
        lg_cuk_rpn_match(i, d, M, iou, highest, count, labels, matches, keep);
    for (size_t i = 0; i < (size_t)N * C; i++)
        lg_cuk_rpn_chunk_count(i, A, labels, pos_n, neg_n);
    for (size_t n = 0; n < (size_t)N; n++)
        lg_cuk_rpn_chunk_prefix(n, A, pos_n, neg_n, totals);
    for (size_t i = 0; i < (size_t)N * C; i++)
        lg_cuk_rpn_chunk_scatter(i, A, labels, pos_n, neg_n, pos, neg);
    for (size_t n = 0; n < (size_t)N; n++)
        lg_cuk_rpn_sample(n, d, totals, pos, neg, keep);
    for (size_t i = 0; i < (size_t)N * A; i++)
        lg_cuk_rpn_targets(i, M, A, anchors, gt, matches, keep, labels, box_targets);
    double obj = 0, box = 0;
    int sampled = 0;
    for (size_t i = 0; i < (size_t)N * A; i++)
        sampled += lg_cuk_rpn_loss_term(i, objectness, deltas, labels, box_targets, d->beta, &obj, &box);
    *loss_obj = sampled ? (float)(obj / sampled) : 0.0f;
    *loss_box = sampled ? (float)(box / sampled) : 0.0f;
    free(gt), free(iou), free(highest), free(gt_labels), free(count), free(matches), free(pos), free(neg);
    free(pos_n), free(neg_n), free(keep);
}

START_TEST(test_rpn_loss_matches_cpu) {
    const int S = 256, N = 4, M = 8;
    lg_cuda_anchors ad = fpn_anchors(S);
    float *anchors = NULL;
    int A = body_anchors(&ad, &anchors);
    ck_assert_int_gt(lg_cuk_chunks(A), 8); /* the lists are built over many chunks */
    int counts[4] = {6, 0, 8, 3};
    Truth t = make_truth(N, M, counts, S);
    /* boxes on anchors: positives at IoU 1 (and near-duplicates for low-quality ties) */
    memcpy(t.boxes + 4 * (size_t)(2 * M + 7), anchors + 4 * 1000, 4 * sizeof(float));
    memcpy(t.boxes + 4 * (size_t)(3 * M + 2), anchors + 4 * (size_t)(A - 5), 4 * sizeof(float));
    float *objectness = malloc((size_t)N * A * sizeof(float)), *deltas = malloc((size_t)N * A * 4 * sizeof(float));
    for (size_t i = 0; i < (size_t)N * A; i++)
        objectness[i] = uniform(-4, 4);
    for (size_t i = 0; i < (size_t)N * A * 4; i++)
        deltas[i] = uniform(-0.5f, 0.5f);
    int32_t *labels = malloc((size_t)N * A * sizeof(int32_t));
    int *clabels = malloc((size_t)N * A * sizeof(int));
    float *targets = malloc((size_t)N * A * 4 * sizeof(float)), *ctargets = malloc((size_t)N * A * 4 * sizeof(float));
    void *ws = malloc(lg_rpn_loss_batch_workspace(A, M));
    /* torchvision's (256, 0.5), and a small batch that truncates the positives */
    const int per_image[2] = {256, 24};
    for (int cfg = 0; cfg < 4; cfg++) {
        int skip = cfg >= 2;
        lg_cuda_rpn_loss d = {N, A, 0.7f, 0.3f, per_image[cfg % 2], 0.5f, 1.0f / 9, 0x5eedull ^ (uint64_t)cfg,
                              (uint64_t)3 << 32 | 17};
        lg_cuda_det_targets tg = {M, t.boxes, t.labels, t.difficult, t.count, 1, skip};
        float lo, lb, clo, clb;
        body_rpn_forward(&d, &tg, objectness, deltas, anchors, labels, targets, &lo, &lb);
        lg_rpn_loss_config c = {{0.7f, 0.3f, per_image[cfg % 2], 0.5f}, 1.0f / 9, d.seed};
        lg_det_targets ct = {M, t.boxes, t.labels, t.difficult, t.count, 1, skip};
        ck_assert_int_eq(lg_rpn_loss_batch_forward(NULL, &c, objectness, deltas, anchors, A, N, &ct, d.step, ws,
                                                   clabels, ctargets, &clo, &clb),
                         LG_OK);
        int pos = 0, sampled = 0;
        for (size_t i = 0; i < (size_t)N * A; i++) {
            ck_assert_msg(labels[i] == clabels[i], "config %d: anchor %zu of image %zu: body label %d, CPU %d",
                          cfg, i % (size_t)A, i / (size_t)A, labels[i], clabels[i]);
            pos += labels[i] == 1;
            sampled += labels[i] >= 0;
        }
        /* the sample is a real one: positives, and full batches where there is ground truth */
        ck_assert_int_gt(pos, 0);
        ck_assert_int_ge(sampled, 3 * per_image[cfg % 2]);
        assert_close("rpn box targets", targets, ctargets, (size_t)N * A * 4, 1e-6, 1e-6);
        assert_close("rpn loss_objectness", &lo, &clo, 1, 1e-6, 0);
        assert_close("rpn loss_box", &lb, &clb, 1, 1e-6, 0);
        /* backward: the block's count of sampled anchors, then every element */
        float dlo = 0.75f, dlb = cfg == 1 ? 0.0f : 1.5f;
        float *go = malloc((size_t)N * A * sizeof(float)), *gd = malloc((size_t)N * A * 4 * sizeof(float));
        float *cgo = malloc((size_t)N * A * sizeof(float)), *cgd = malloc((size_t)N * A * 4 * sizeof(float));
        float so = dlo / (float)sampled, sb = dlb / (float)sampled;
        for (size_t i = 0; i < (size_t)N * A; i++)
            lg_cuk_rpn_loss_grad(i, objectness, deltas, labels, targets, d.beta, so, sb, go, gd);
        ck_assert_int_eq(lg_rpn_loss_backward(NULL, objectness, deltas, clabels, ctargets, N, A, 1.0f / 9, dlo,
                                              dlb, cgo, cgd),
                         LG_OK);
        assert_close("rpn d objectness", go, cgo, (size_t)N * A, 1e-6, 1e-9);
        assert_close("rpn d deltas", gd, cgd, (size_t)N * A * 4, 1e-6, 1e-9);
        free(go), free(gd), free(cgo), free(cgd);
    }
    free(anchors), free(objectness), free(deltas), free(labels), free(clabels), free(targets), free(ctargets);
    free(ws);
    free_truth(&t);
}
END_TEST

START_TEST(test_fastrcnn_loss_matches_cpu) {
    const int R = 2 * 48, K = 6;
    float *logits = malloc((size_t)R * K * sizeof(float)), *box = malloc((size_t)R * K * 4 * sizeof(float));
    float *targets = malloc((size_t)R * 4 * sizeof(float));
    int32_t *labels = malloc((size_t)R * sizeof(int32_t));
    for (int r = 0; r < R; r++) {
        labels[r] = r % 48 >= 40 ? -1 : r % 3 ? (int32_t)uniform(1, (float)K) : 0; /* padding after each image */
        for (int k = 0; k < 4; k++)
            targets[4 * r + k] = uniform(-1, 1);
    }
    for (size_t i = 0; i < (size_t)R * K; i++)
        logits[i] = uniform(-6, 6);
    for (size_t i = 0; i < (size_t)R * K * 4; i++)
        box[i] = uniform(-1.2f, 1.2f);
    double ce = 0, bx = 0;
    int rows = 0;
    for (size_t r = 0; r < (size_t)R; r++)
        rows += lg_cuk_fastrcnn_term(r, logits, box, labels, targets, K, 1.0f / 9, &ce, &bx);
    ck_assert_int_eq(rows, 80);
    float lc = (float)(ce / rows), lb = (float)(bx / rows), clc, clb;
    ck_assert_int_eq(lg_fastrcnn_loss_forward(NULL, logits, box, labels, targets, R, K, 1.0f / 9, &clc, &clb), LG_OK);
    assert_close("loss_classifier", &lc, &clc, 1, 1e-6, 0);
    assert_close("loss_box_reg", &lb, &clb, 1, 1e-6, 0);
    float *gl = malloc((size_t)R * K * sizeof(float)), *gb = malloc((size_t)R * K * 4 * sizeof(float));
    float *cgl = malloc((size_t)R * K * sizeof(float)), *cgb = malloc((size_t)R * K * 4 * sizeof(float));
    memset(gl, 0x7f, (size_t)R * K * sizeof(float)); /* written everywhere, padding rows included */
    memset(gb, 0x7f, (size_t)R * K * 4 * sizeof(float));
    for (size_t r = 0; r < (size_t)R; r++)
        lg_cuk_fastrcnn_grad(r, logits, box, labels, targets, K, 1.0f / 9, 0.5f / rows, 2.0f / rows, gl, gb);
    ck_assert_int_eq(lg_fastrcnn_loss_backward(NULL, logits, box, labels, targets, R, K, 1.0f / 9, 0.5f, 2.0f, cgl, cgb),
                     LG_OK);
    assert_close("d class_logits", gl, cgl, (size_t)R * K, 1e-6, 1e-9);
    assert_close("d box_regression", gb, cgb, (size_t)R * K * 4, 1e-6, 1e-9);
    free(logits), free(box), free(targets), free(labels), free(gl), free(gb), free(cgl), free(cgb);
}
END_TEST

/* RoIAlign's ordered backward over every row of every plane, against
 * runtime/detect's backward: bit for bit, on four FPN levels (LevelMapper)
 * and on one map, with padding rows, a NaN box, boxes off the map, tiny
 * and huge boxes (the adaptive grid's direct path past 1,024 points),
 * aligned and not, fixed and adaptive sampling. */
START_TEST(test_roi_align_backward_ordered_matches_cpu) {
    enum { N = 2, C = 3, K = 40, LV = 4 };
    const int hw[LV] = {64, 32, 16, 8};
    float *rois = malloc(K * 5 * sizeof(float));
    for (int k = 0; k < K; k++) {
        float *r = rois + 5 * k;
        float w = k % 7 == 3 ? uniform(0.2f, 2) : k % 7 == 5 || k % 4 == 1 ? uniform(200, 600) : uniform(4, 120);
        float h = k % 5 == 2 ? uniform(0.2f, 2) : k % 7 == 5 || k % 4 == 1 ? uniform(200, 600) : uniform(4, 200);
        float x = uniform(-20, 256 - w / 2), y = uniform(-20, 256 - h / 2);
        r[0] = k % 9 == 8 ? -1.0f : (float)(k % N);
        r[1] = x, r[2] = y, r[3] = x + w, r[4] = y + h;
    }
    rois[5 * 13 + 2] = NAN; /* a diverged box: no gradient */
    size_t nout = (size_t)K * C * 7 * 7;
    float *dout = malloc(nout * sizeof(float));
    for (size_t i = 0; i < nout; i++)
        dout[i] = uniform(-1, 1);
    for (int cfg = 0; cfg < 4; cfg++) {
        int aligned = cfg & 1, ratio = cfg & 2 ? -1 : 2, levels = cfg == 3 ? 1 : LV;
        lg_cuda_roi_align d = {.C = C, .PH = 7, .PW = 7, .sampling_ratio = ratio, .aligned = aligned,
                               .levels = levels, .k_min = 2};
        lg_multiscale_roi_align ms = {.num_levels = levels, .pooled_h = 7, .pooled_w = 7, .sampling_ratio = ratio,
                                      .aligned = aligned, .canonical_scale = 224, .canonical_level = 4};
        float *body[LV], *cpu[LV];
        size_t sz[LV];
        for (int l = 0; l < levels; l++) {
            d.H[l] = d.W[l] = hw[l];
            d.spatial_scale[l] = ms.scales[l] = 1.0f / (float)(4 << l);
            sz[l] = (size_t)N * C * hw[l] * hw[l];
            body[l] = malloc(sz[l] * sizeof(float));
            cpu[l] = malloc(sz[l] * sizeof(float));
            memset(body[l], 0x7f, sz[l] * sizeof(float)); /* every pixel written */
        }
        for (size_t i = 0; i < lg_cuk_roi_rows(&d, N); i++)
            lg_cuk_roi_align_backward_row(i, &d, N, body, rois, K, dout);
        if (levels == 1) {
            lg_roi_align_config one = {7, 7, d.spatial_scale[0], ratio, aligned};
            ck_assert_int_eq(lg_roi_align_backward(NULL, &one, dout, N, C, hw[0], hw[0], rois, K, cpu[0]), LG_OK);
        } else {
            ck_assert_int_eq(lg_multiscale_roi_align_backward(NULL, &ms, dout, hw, hw, N, C, rois, K, cpu), LG_OK);
        }
        for (int l = 0; l < levels; l++) {
            size_t nonzero = 0;
            for (size_t i = 0; i < sz[l]; i++) {
                ck_assert_msg(memcmp(&body[l][i], &cpu[l][i], sizeof(float)) == 0,
                              "config %d level %d [%zu]: body %.9g, CPU kernel %.9g", cfg, l, i,
                              (double)body[l][i], (double)cpu[l][i]);
                nonzero += cpu[l][i] != 0;
            }
            ck_assert_msg(nonzero > 0, "config %d: level %d takes no gradient", cfg, l);
            free(body[l]), free(cpu[l]);
        }
    }
    free(rois), free(dout);
}
END_TEST

START_TEST(test_detect_seed_matches_cpu) {
    for (uint64_t s = 0; s < 50; s++)
        ck_assert(lg_cuk_detect_seed(s * 977, s << 32 | 3, s % 7) == lg_detect_seed(s * 977, s << 32 | 3, s % 7));
}
END_TEST

static Suite *cuda_detect_suite(void) {
    Suite *s = suite_create("cuda_detect");
    TCase *tc = tcase_create("bodies");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_detect_seed_matches_cpu);
    tcase_add_test(tc, test_anchors_match_cpu);
    tcase_add_test(tc, test_ground_truth_matches_cpu_layout);
    tcase_add_test(tc, test_rpn_loss_matches_cpu);
    tcase_add_test(tc, test_fastrcnn_loss_matches_cpu);
    tcase_add_test(tc, test_roi_align_backward_ordered_matches_cpu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(cuda_detect_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
