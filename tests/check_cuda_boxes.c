/* check_cuda_boxes.c — the device proposals, RoI sampling and detections,
 * run on the CPU, against runtime/detect's CPU kernels.
 *
 * runtime/cuda/boxes_run.h is the launch sequence boxes.cu runs on a GPU;
 * here LG_CUK_LAUNCH is a plain loop over each body's whole grid, so this
 * runs the same bodies in the same order as the device. The results must be
 * the CPU kernels' bit for bit on the same inputs (lg_proposals_batch,
 * lg_rois_from_proposals, lg_roi_sample_batch, lg_detections_batch): the
 * same boxes kept in the same order, the same RoIs drawn for a seed. Also:
 * the score keys order as the CPU's comparator (NaN, -0, ties), the bitonic
 * sort, lg_detect_seed.
 */
#define LG_CUK_LAUNCH(q, body, n, ...)                                                             \
    do {                                                                                           \
        (void)(q);                                                                                 \
        for (size_t i_ = 0, n_ = (n); i_ < n_; i_++)                                               \
            lg_cuk_##body(i_, __VA_ARGS__);                                                        \
    } while (0)
#include "../runtime/cuda/boxes_run.h"
#include "lgen/detect.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned rng_state;

static float uniform(float lo, float hi) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng_state >> 8) / 16777216.0f;
}

static void *ws_alloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void assert_same_floats(const char *what, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0, "%s[%zu]: device %.9g, CPU %.9g", what,
                      i, (double)a[i], (double)b[i]);
}

static void assert_same_ints(const char *what, const int32_t *a, const int *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(a[i] == b[i], "%s[%zu]: device %d, CPU %d", what, i, a[i], b[i]);
}

/* ---- keys and the sort ------------------------------------------------------------ */

typedef struct scored {
    float score;
    uint32_t index;
} scored;

/* runtime/detect's order: decreasing score (NaN as -inf), then index. */
static int cmp_cpu(const void *pa, const void *pb) {
    const scored *a = pa, *b = pb;
    float sa = a->score == a->score ? a->score : -INFINITY;
    float sb = b->score == b->score ? b->score : -INFINITY;
    if (sa > sb)
        return -1;
    if (sa < sb)
        return 1;
    return (a->index > b->index) - (a->index < b->index);
}

START_TEST(test_keys_order_as_cpu) {
    enum { N = 3000 };
    static scored v[N];
    static uint64_t keys[4096];
    const float specials[] = {NAN, -0.0f, 0.0f, INFINITY, -INFINITY, 1e-40f, -1e-40f, 0.5f, 0.5f};
    rng_state = 7;
    for (uint32_t i = 0; i < N; i++) {
        float s = i % 5 == 0 ? specials[i % 9] : i % 3 ? uniform(-8, 8) : (float)(int)uniform(-3, 3);
        v[i] = (scored){s, i};
    }
    size_t S = lg_cuk_pow2(N, NULL);
    ck_assert_uint_eq(S, 4096);
    for (size_t i = 0; i < S; i++)
        keys[i] = i < N ? lg_cuk_score_key(v[i].score, v[i].index, 12, 0) : 0;
    lg_cuk_run_sort(NULL, keys, 1, S);
    qsort(v, N, sizeof v[0], cmp_cpu);
    for (size_t i = 0; i < N; i++) {
        ck_assert_uint_eq(lg_cuk_key_index(keys[i], 12), v[i].index);
        float s = v[i].score == v[i].score ? v[i].score : -INFINITY;
        float back = lg_cuk_key_score(keys[i], 12);
        ck_assert_msg(back == s, "key %zu decodes to %g, not %g", i, (double)back, (double)s);
    }
    for (size_t i = N; i < S; i++)
        ck_assert(keys[i] == 0);
}
END_TEST

START_TEST(test_bitonic_segments) {
    enum { SEGS = 3, S = 1024 };
    static uint64_t keys[SEGS * S], ref[SEGS * S];
    rng_state = 11;
    for (size_t i = 0; i < SEGS * S; i++) {
        rng_state = rng_state * 1664525u + 1013904223u;
        ref[i] = keys[i] = ((uint64_t)rng_state << 32) | (i % 7 ? rng_state >> 3 : 0);
    }
    lg_cuk_run_sort(NULL, keys, SEGS, S);
    for (size_t s = 0; s < SEGS; s++)
        for (size_t i = 0; i < S; i++) { /* descending, and a permutation of the segment */
            if (i)
                ck_assert(keys[s * S + i - 1] >= keys[s * S + i]);
            size_t found = 0;
            for (size_t j = 0; j < S; j++)
                found += ref[s * S + j] == keys[s * S + i];
            ck_assert_uint_ge(found, 1);
        }
}
END_TEST

START_TEST(test_detect_seed) {
    for (uint64_t s = 0; s < 50; s++)
        ck_assert(lg_cuk_detect_seed(s * 977, s << 32 | s, s % 4) ==
                  lg_detect_seed(s * 977, s << 32 | s, s % 4));
}
END_TEST

START_TEST(test_compaction) {
    enum { SEGS = 2, LEN = 700 };
    static int32_t flags[SEGS * LEN], index[SEGS * LEN], counts[SEGS * 3], total[SEGS];
    rng_state = 3;
    for (size_t i = 0; i < SEGS * LEN; i++)
        flags[i] = uniform(0, 1) < 0.3f;
    size_t nch = (LEN + LG_CUK_CHUNK - 1) / LG_CUK_CHUNK;
    LG_CUK_LAUNCH(NULL, chunk_count, SEGS * nch, flags, (size_t)LEN, nch, counts);
    LG_CUK_LAUNCH(NULL, chunk_scan, SEGS, counts, nch, total);
    LG_CUK_LAUNCH(NULL, chunk_scatter, SEGS * nch, flags, (size_t)LEN, nch, counts, index);
    for (size_t s = 0; s < SEGS; s++) {
        int32_t r = 0;
        for (int32_t i = 0; i < LEN; i++)
            if (flags[s * LEN + (size_t)i])
                ck_assert_int_eq(index[s * LEN + (size_t)r++], i);
        ck_assert_int_eq(total[s], r);
    }
}
END_TEST

/* ---- proposals ------------------------------------------------------------------------ */

#define IMG 128
#define LEVELS 5

typedef struct rpn_case {
    int N, A;
    float *anchors, *objectness, *deltas;
    int per_level[LEVELS];
} rpn_case;

/* Anchors of a 128 x 128 image on five levels (strides 4..64, one size
 * and three ratios each), RPN outputs: objectness in (-6, 6) (or only
 * four distinct values: ties everywhere), small deltas, one NaN and one -0
 * logit and one huge delta. */
static rpn_case make_rpn(int N, unsigned seed, int ties) {
    static const float sizes[LEVELS] = {32, 64, 128, 256, 512}, ratios[3] = {0.5f, 1.0f, 2.0f};
    lg_anchor_level lv[LEVELS];
    rpn_case r = {.N = N};
    for (int l = 0; l < LEVELS; l++)
        lv[l] = (lg_anchor_level){IMG >> (l + 2), IMG >> (l + 2), 1, &sizes[l], 3, ratios};
    r.A = lg_anchors_count(lv, LEVELS);
    r.anchors = ws_alloc((size_t)r.A * 4 * sizeof(float));
    ck_assert_int_eq(lg_anchors_generate(NULL, lv, LEVELS, IMG, IMG, r.anchors, r.per_level), LG_OK);
    r.objectness = ws_alloc((size_t)N * r.A * sizeof(float));
    r.deltas = ws_alloc((size_t)N * r.A * 4 * sizeof(float));
    rng_state = seed;
    for (size_t i = 0; i < (size_t)N * r.A; i++)
        r.objectness[i] = ties ? (float)(int)uniform(0, 4) - 1.5f : uniform(-6, 6);
    for (size_t i = 0; i < (size_t)N * r.A * 4; i++)
        r.deltas[i] = uniform(-0.5f, 0.5f);
    r.objectness[5] = NAN;
    r.objectness[9] = -0.0f;
    r.objectness[10] = 0.0f;
    r.deltas[4 * 17 + 2] = 50.0f; /* clamped at log(1000 / 16) */
    return r;
}

static void free_rpn(rpn_case *r) {
    free(r->anchors);
    free(r->objectness);
    free(r->deltas);
}

/* Runs both and compares; returns the device path's proposal count of
 * image 0 so callers can check the case is not trivial. */
static int compare_proposals(const rpn_case *r, int pre, int post, float nms, float min_size,
                             float score_thresh, float *props_out, int32_t *count_out) {
    lg_proposal_config cpu_cfg = {pre, post, nms, min_size, score_thresh};
    lg_cuda_proposals_cfg d = {.levels = LEVELS, .pre_nms_top_n = pre, .post_nms_top_n = post,
                               .nms_thresh = nms, .min_size = min_size,
                               .score_thresh = score_thresh, .image_h = IMG, .image_w = IMG};
    for (int l = 0; l < LEVELS; l++)
        d.per_level[l] = r->per_level[l];
    size_t N = (size_t)r->N, P = (size_t)post;
    float *cb = ws_alloc(N * P * 4 * sizeof(float)), *cs = ws_alloc(N * P * sizeof(float));
    float *gb = ws_alloc(N * P * 4 * sizeof(float)), *gs = ws_alloc(N * P * sizeof(float));
    int *cc = ws_alloc(N * sizeof(int));
    int32_t *gc = ws_alloc(N * sizeof(int32_t));
    void *cws = ws_alloc(lg_proposals_batch_workspace(&cpu_cfg, r->per_level, LEVELS, r->N));
    ck_assert_int_eq(lg_proposals_batch(NULL, &cpu_cfg, r->objectness, r->deltas, r->anchors,
                                        r->per_level, LEVELS, r->N, IMG, IMG, NULL, cws, cb, cs, cc),
                     LG_OK);
    lg_cuk_prop_ws w;
    void *gws = ws_alloc(lg_cuk_prop_layout(&d, N, NULL, &w));
    lg_cuk_prop_layout(&d, N, gws, &w);
    lg_cuk_run_proposals(NULL, d, N, r->objectness, r->deltas, r->anchors, &w, gb, gs, gc);
    assert_same_ints("count", gc, cc, N);
    assert_same_floats("boxes", gb, cb, N * P * 4);
    assert_same_floats("scores", gs, cs, N * P);
    int c0 = gc[0];
    if (props_out)
        memcpy(props_out, gb, N * P * 4 * sizeof(float));
    if (count_out)
        memcpy(count_out, gc, N * sizeof(int32_t));
    free(cb), free(cs), free(gb), free(gs), free(cc), free(gc), free(cws), free(gws);
    return c0;
}

START_TEST(test_proposals_as_cpu) {
    rpn_case r = make_rpn(2, 21, 0);
    ck_assert_int_eq(r.A, 4092);
    /* training-like: top 300 per level, keep 200 */
    int c = compare_proposals(&r, 300, 200, 0.7f, 1e-3f, 0.0f, NULL, NULL);
    ck_assert_int_eq(c, 200);
    /* fewer than pre_nms_top_n on the small levels, all of them kept, a tight NMS */
    c = compare_proposals(&r, 2000, 3000, 0.3f, 1e-3f, 0.0f, NULL, NULL);
    ck_assert_int_gt(c, 50);
    ck_assert_int_lt(c, 3000);
    /* a score threshold and a min_size that drop boxes */
    c = compare_proposals(&r, 500, 1000, 0.7f, 12.0f, 0.6f, NULL, NULL);
    ck_assert_int_gt(c, 0);
    free_rpn(&r);
}
END_TEST

START_TEST(test_proposals_ties) {
    /* four distinct logits: every top-n cut and NMS order is decided by index */
    rpn_case r = make_rpn(3, 5, 1);
    int c = compare_proposals(&r, 100, 150, 0.7f, 1e-3f, 0.0f, NULL, NULL);
    ck_assert_int_gt(c, 0);
    free_rpn(&r);
}
END_TEST

START_TEST(test_rois_from_proposals) {
    enum { N = 2, P = 6 };
    float boxes[N * P * 4], ref[N * P * 5], out[N * P * 5];
    int count[N] = {4, 0};
    int32_t count32[N] = {4, 0};
    for (int i = 0; i < N * P * 4; i++)
        boxes[i] = (float)i;
    lg_rois_from_proposals(boxes, count, N, P, ref);
    LG_CUK_LAUNCH(NULL, rois_from_proposals, (size_t)N * P, boxes, count32, (size_t)P, out);
    assert_same_floats("rois", out, ref, N * P * 5);
}
END_TEST

/* ---- RoI sampling -------------------------------------------------------------------------- */

START_TEST(test_roi_sample_as_cpu) {
    enum { N = 3, B = 6, POST = 300 };
    rpn_case r = make_rpn(N, 33, 0);
    float *props = ws_alloc((size_t)N * POST * 4 * sizeof(float));
    int32_t pcount[N];
    compare_proposals(&r, 400, POST, 0.7f, 1e-3f, 0.0f, props, pcount);
    pcount[2] = 40; /* a short list */
    /* ground truth: some proposals moved a little (positives), some boxes elsewhere;
     * image 1 has none, one box of image 0 is difficult */
    float gt[N * B * 4] = {0};
    int32_t labels[N * B], count[N] = {5, 0, 3};
    uint8_t difficult[N * B] = {0};
    rng_state = 99;
    for (int n = 0; n < N; n++)
        for (int b = 0; b < B; b++) {
            float *g = gt + 4 * (n * B + b);
            const float *p = props + 4 * ((size_t)n * POST + (size_t)b * 7);
            if (b < count[n])
                for (int k = 0; k < 4; k++)
                    g[k] = p[k] + uniform(-2, 2);
            if (g[2] <= g[0] + 1)
                g[2] = g[0] + 8;
            if (g[3] <= g[1] + 1)
                g[3] = g[1] + 8;
            labels[n * B + b] = b < count[n] ? (n + b) % 20 : -1;
        }
    difficult[1] = 1;
    for (int skip = 0; skip < 2; skip++) {
        const lg_det_targets ct = {B, gt, labels, difficult, count, 1, skip};
        const lg_cuda_det_targets dt = {B, gt, labels, difficult, count, 1, skip};
        for (int R = 16; R <= 512; R *= 32) { /* few RoIs (sampled), more RoIs than candidates */
            lg_roi_sample_config cc = {0.5f, 0.5f, R, 0.25f, LG_BOX_CODER_ROI};
            lg_cuda_roi_sample_cfg d = {.P = POST, .R = R, .fg_iou_thresh = 0.5f, .bg_iou_thresh = 0.5f,
                                        .positive_fraction = 0.25f,
                                        .coder = {10.0f, 10.0f, 5.0f, 5.0f, LG_BBOX_XFORM_CLIP}};
            size_t rows = (size_t)N * R;
            float *crois = ws_alloc(rows * 5 * sizeof(float)), *grois = ws_alloc(rows * 5 * sizeof(float));
            float *ct4 = ws_alloc(rows * 4 * sizeof(float)), *gt4 = ws_alloc(rows * 4 * sizeof(float));
            int *cl = ws_alloc(rows * sizeof(int));
            int32_t *gl = ws_alloc(rows * sizeof(int32_t));
            int ccount[N] = {pcount[0], pcount[1], pcount[2]};
            void *cws = ws_alloc(lg_roi_sample_batch_workspace(&cc, POST, B));
            ck_assert_int_eq(lg_roi_sample_batch(NULL, &cc, props, ccount, POST, N, &ct, 1234, 77, cws,
                                                 crois, cl, ct4),
                             LG_OK);
            lg_cuk_sample_ws w;
            void *gws = ws_alloc(lg_cuk_sample_layout(&d, N, B, NULL, &w));
            lg_cuk_sample_layout(&d, N, B, gws, &w);
            lg_cuk_run_roi_sample(NULL, d, N, props, pcount, dt, 1234, 77, &w, grois, gl, gt4);
            assert_same_floats("rois", grois, crois, rows * 5);
            assert_same_ints("labels", gl, cl, rows);
            assert_same_floats("box_targets", gt4, ct4, rows * 4);
            int fg = 0, bg = 0;
            for (size_t i = 0; i < rows; i++)
                fg += gl[i] > 0, bg += gl[i] == 0;
            ck_assert_int_gt(fg, 0); /* the case samples both kinds */
            ck_assert_int_gt(bg, 0);
            free(crois), free(grois), free(ct4), free(gt4), free(cl), free(gl), free(cws), free(gws);
        }
    }
    free(props);
    free_rpn(&r);
}
END_TEST

/* ---- detections ------------------------------------------------------------------------------ */

START_TEST(test_detections_as_cpu) {
    enum { N = 2, R = 64, K = 6 };
    rng_state = 5;
    static float rois[N * R * 5], logits[N * R * K], reg[N * R * K * 4];
    for (int n = 0; n < N; n++)
        for (int r = 0; r < R; r++) {
            float *o = rois + 5 * (n * R + r);
            int real = r < (n ? 20 : 64);
            float x = uniform(0, 100), y = uniform(0, 100);
            o[0] = real ? (float)n : -1.0f;
            o[1] = real ? x : 0, o[2] = real ? y : 0;
            o[3] = real ? x + uniform(4, 40) : 0, o[4] = real ? y + uniform(4, 40) : 0;
        }
    for (size_t i = 0; i < N * R * K; i++)
        logits[i] = uniform(-3, 3) + (i % K == 2 ? 2.0f : 0.0f);
    logits[7] = logits[8]; /* equal scores */
    for (size_t i = 0; i < N * R * K * 4; i++)
        reg[i] = uniform(-1, 1);
    const float threshs[] = {0.05f, 0.3f};
    for (int ti = 0; ti < 2; ti++)
        for (int D = 10; D <= 300; D *= 30) {
            lg_detect_config cc = {threshs[ti], 0.5f, D, 1e-2f, LG_BOX_CODER_ROI};
            lg_cuda_detect_cfg d = {.R = R, .K = K, .score_thresh = threshs[ti], .nms_thresh = 0.5f,
                                    .detections_per_img = D, .min_size = 1e-2f,
                                    .coder = {10.0f, 10.0f, 5.0f, 5.0f, LG_BBOX_XFORM_CLIP},
                                    .image_h = IMG, .image_w = IMG};
            size_t rows = (size_t)N * D;
            float *cb = ws_alloc(rows * 4 * sizeof(float)), *gb = ws_alloc(rows * 4 * sizeof(float));
            float *cs = ws_alloc(rows * sizeof(float)), *gs = ws_alloc(rows * sizeof(float));
            int *cl = ws_alloc(rows * sizeof(int)), cc_count[N];
            int32_t *gl = ws_alloc(rows * sizeof(int32_t)), gc[N];
            void *cws = ws_alloc(lg_detections_batch_workspace(R, K, N));
            ck_assert_int_eq(lg_detections_batch(NULL, &cc, logits, reg, rois, N, R, K, IMG, IMG, NULL, cws,
                                                 cb, cs, cl, cc_count),
                             LG_OK);
            lg_cuk_det_ws w;
            void *gws = ws_alloc(lg_cuk_det_layout(&d, N, NULL, &w));
            lg_cuk_det_layout(&d, N, gws, &w);
            lg_cuk_run_detections(NULL, d, N, logits, reg, rois, &w, gb, gs, gl, gc);
            assert_same_ints("count", gc, cc_count, N);
            assert_same_floats("boxes", gb, cb, rows * 4);
            assert_same_floats("scores", gs, cs, rows);
            assert_same_ints("labels", gl, cl, rows);
            ck_assert_int_gt(gc[0], 0);
            ck_assert_int_gt(gc[1], 0);
            free(cb), free(gb), free(cs), free(gs), free(cl), free(gl), free(cws), free(gws);
        }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cuda_boxes");
    TCase *tc = tcase_create("bodies");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_keys_order_as_cpu);
    tcase_add_test(tc, test_bitonic_segments);
    tcase_add_test(tc, test_detect_seed);
    tcase_add_test(tc, test_compaction);
    tcase_add_test(tc, test_proposals_as_cpu);
    tcase_add_test(tc, test_proposals_ties);
    tcase_add_test(tc, test_rois_from_proposals);
    tcase_add_test(tc, test_roi_sample_as_cpu);
    tcase_add_test(tc, test_detections_as_cpu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
