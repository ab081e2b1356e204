/* check_detect.c — tests of the detection ops (runtime/detect/, lgen/detect.h).
 *
 * Each op is compared with torchvision on the fixtures that
 * tests/fixtures/gen_detect.py writes (forward 1e-5 relative, gradients
 * 1e-4; NMS, the matcher and labels exactly), RoIAlign's backward also with
 * central differences accumulated in double, the samplers by their
 * properties (counts, subsets, determinism), and VOC AP against the
 * reference devkit evaluation of tests/fixtures/voc_eval_ref.py. Fixtures
 * are safetensors files read by the small reader below; run from the top
 * directory (as `make check` does).
 */
#include "lgen/detect.h"
#include "../runtime/detect/detect_internal.h"

#include <png.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    char *buf;
    size_t len;
    json_t *header;
    size_t data_off;
} fixture;

static fixture *fx_open(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "tests/fixtures/detect/%s.safetensors", name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open fixture %s (run from the top directory)", path);
    fixture *fx = calloc(1, sizeof *fx);
    fseek(f, 0, SEEK_END);
    fx->len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    fx->buf = malloc(fx->len + 1);
    ck_assert(fread(fx->buf, 1, fx->len, f) == fx->len);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (unsigned char)fx->buf[i];
    ck_assert_msg(hlen + 8 <= fx->len, "fixture %s: bad header", path);
    json_error_t je;
    fx->header = json_loadb(fx->buf + 8, hlen, 0, &je);
    ck_assert_msg(fx->header != NULL, "fixture %s: %s", path, je.text);
    fx->data_off = 8 + hlen;
    return fx;
}

static void fx_close(fixture *fx) {
    if (!fx)
        return;
    json_decref(fx->header);
    free(fx->buf);
    free(fx);
}

/* A pointer to tensor `name` of dtype `dtype`; *count gets its element count
 * and shape[] (up to 4 entries, may be NULL) its dimensions. */
static const void *fx_get(fixture *fx, const char *name, const char *dtype, size_t elem,
                          size_t *count, int *shape) {
    json_t *t = json_object_get(fx->header, name);
    ck_assert_msg(t != NULL, "fixture has no tensor '%s'", name);
    ck_assert_msg(strcmp(json_string_value(json_object_get(t, "dtype")), dtype) == 0,
                  "tensor '%s' is not %s", name, dtype);
    json_t *sh = json_object_get(t, "shape"), *off = json_object_get(t, "data_offsets");
    size_t n = 1;
    for (size_t i = 0; i < json_array_size(sh); i++) {
        n *= (size_t)json_integer_value(json_array_get(sh, i));
        if (shape && i < 4)
            shape[i] = (int)json_integer_value(json_array_get(sh, i));
    }
    size_t b0 = (size_t)json_integer_value(json_array_get(off, 0));
    size_t b1 = (size_t)json_integer_value(json_array_get(off, 1));
    ck_assert_msg(b1 - b0 == n * elem && fx->data_off + b1 <= fx->len, "tensor '%s': bad range",
                  name);
    if (count)
        *count = n;
    return fx->buf + fx->data_off + b0;
}

static const float *fx_f32(fixture *fx, const char *name, size_t *count, int *shape) {
    return fx_get(fx, name, "F32", 4, count, shape);
}

static const int32_t *fx_i32(fixture *fx, const char *name, size_t *count, int *shape) {
    return fx_get(fx, name, "I32", 4, count, shape);
}

static const double *fx_f64(fixture *fx, const char *name, size_t *count, int *shape) {
    return fx_get(fx, name, "F64", 8, count, shape);
}

/* |got - want| <= atol + rtol * |want| elementwise, reporting the first miss. */
static void expect_close(const float *got, const float *want, size_t n, double rtol, double atol,
                         const char *what) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        ck_assert_msg(d <= atol + rtol * fabs((double)want[i]) && !isnan(got[i]),
                      "%s[%zu]: got %.9g, expected %.9g", what, i, got[i], want[i]);
    }
}

static void expect_ints(const int *got, const int32_t *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s[%zu]: got %d, expected %d", what, i, got[i], want[i]);
}

/* ---- anchors, coder, IoU, matcher, NMS ------------------------------------------ */

START_TEST(test_anchors_fpn) {
    fixture *fx = fx_open("anchors");
    static const float sizes[5] = {32, 64, 128, 256, 512}, ratios[3] = {0.5f, 1.0f, 2.0f};
    lg_anchor_level lv[5];
    for (int l = 0; l < 5; l++)
        lv[l] = (lg_anchor_level){128 >> (l + 2), 128 >> (l + 2), 1, &sizes[l], 3, ratios};
    size_t n;
    const float *want = fx_f32(fx, "fpn", &n, NULL);
    ck_assert_int_eq(lg_anchors_count(lv, 5) * 4, (int)n);
    float *got = malloc(n * sizeof *got);
    int per[5];
    ck_assert_int_eq(lg_anchors_generate(NULL, lv, 5, 128, 128, got, per), LG_OK);
    ck_assert_int_eq(per[0], 32 * 32 * 3);
    ck_assert_int_eq(per[4], 2 * 2 * 3);
    expect_close(got, want, n, 0, 0, "fpn anchors");
    free(got);
    fx_close(fx);
}
END_TEST

START_TEST(test_anchors_single_level) {
    fixture *fx = fx_open("anchors");
    static const float sizes[3] = {32, 64, 128}, ratios[3] = {0.5f, 1.0f, 2.0f};
    lg_anchor_level lv = {13, 17, 3, sizes, 3, ratios};
    size_t n;
    const float *want = fx_f32(fx, "single", &n, NULL);
    ck_assert_int_eq(lg_anchors_count(&lv, 1) * 4, (int)n);
    float *got = malloc(n * sizeof *got);
    ck_assert_int_eq(lg_anchors_generate(NULL, &lv, 1, 208, 272, got, NULL), LG_OK);
    expect_close(got, want, n, 0, 0, "single-level anchors");
    lg_error err = {0};
    lg_ctx ectx = {NULL, 1, &err};
    lv.feat_h = 300;
    ck_assert_int_eq(lg_anchors_generate(&ectx, &lv, 1, 208, 272, got, NULL), LG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not fit"));
    free(got);
    fx_close(fx);
}
END_TEST

START_TEST(test_box_coder) {
    fixture *fx = fx_open("box_coder");
    size_t n;
    const float *ref = fx_f32(fx, "ref", &n, NULL), *gt = fx_f32(fx, "gt", NULL, NULL);
    int rows = (int)(n / 4);
    float out[64 * 4];
    const char *names[2] = {"rpn", "roi"};
    lg_box_coder coders[2] = {LG_BOX_CODER_RPN, LG_BOX_CODER_ROI};
    for (int c = 0; c < 2; c++) {
        char key[64];
        snprintf(key, sizeof key, "%s_encoded", names[c]);
        ck_assert_int_eq(lg_box_encode(NULL, &coders[c], gt, ref, rows, out), LG_OK);
        expect_close(out, fx_f32(fx, key, NULL, NULL), n, 1e-5, 1e-6, key);
        snprintf(key, sizeof key, "%s_deltas", names[c]);
        const float *deltas = fx_f32(fx, key, NULL, NULL);
        ck_assert_int_eq(lg_box_decode(NULL, &coders[c], deltas, ref, rows, out), LG_OK);
        snprintf(key, sizeof key, "%s_decoded", names[c]);
        expect_close(out, fx_f32(fx, key, NULL, NULL), n, 1e-5, 1e-4, key);
    }
    lg_box_coder bad = {0, 1, 1, 1, 1};
    lg_error err = {0};
    lg_ctx ectx = {NULL, 1, &err};
    ck_assert_int_eq(lg_box_encode(&ectx, &bad, gt, ref, rows, out), LG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "weights"));
    fx_close(fx);
}
END_TEST

START_TEST(test_iou_and_matcher) {
    fixture *fx = fx_open("match");
    size_t ng, np;
    const float *gt = fx_f32(fx, "gt", &ng, NULL), *pred = fx_f32(fx, "pred", &np, NULL);
    int G = (int)(ng / 4), P = (int)(np / 4);
    float *iou = malloc(sizeof(float) * G * P);
    ck_assert_int_eq(lg_box_iou(NULL, gt, G, pred, P, iou), LG_OK);
    expect_close(iou, fx_f32(fx, "iou", NULL, NULL), (size_t)G * P, 1e-6, 1e-7, "iou");
    /* The matcher runs on torchvision's own IoU so that ties are identical. */
    const float *ref_iou = fx_f32(fx, "iou", NULL, NULL);
    struct {
        const char *key;
        lg_matcher m;
    } cases[3] = {{"matches_rpn", {0.7f, 0.3f, 1}},
                  {"matches_roi", {0.5f, 0.5f, 0}},
                  {"matches_mid", {0.4f, 0.1f, 1}}};
    int matches[64];
    char ws[256];
    ck_assert_uint_le(lg_match_workspace(G), sizeof ws);
    for (int c = 0; c < 3; c++) {
        ck_assert_int_eq(lg_match(NULL, &cases[c].m, ref_iou, G, P, ws, matches), LG_OK);
        expect_ints(matches, fx_i32(fx, cases[c].key, NULL, NULL), (size_t)P, cases[c].key);
    }
    /* No ground truth: everything is background. */
    ck_assert_int_eq(lg_match(NULL, &cases[0].m, NULL, 0, P, ws, matches), LG_OK);
    for (int p = 0; p < P; p++)
        ck_assert_int_eq(matches[p], LG_MATCH_BELOW_LOW);
    lg_matcher bad = {0.3f, 0.7f, 0};
    lg_error err = {0};
    lg_ctx ectx = {NULL, 1, &err};
    ck_assert_int_eq(lg_match(&ectx, &bad, ref_iou, G, P, ws, matches), LG_ERR_ARG);
    free(iou);
    fx_close(fx);
}
END_TEST

START_TEST(test_nms) {
    fixture *fx = fx_open("nms");
    size_t n, nk;
    const float *boxes = fx_f32(fx, "boxes", &n, NULL), *scores = fx_f32(fx, "scores", NULL, NULL);
    const int32_t *idxs = fx_i32(fx, "idxs", NULL, NULL);
    int N = (int)(n / 4), *keep = malloc(sizeof(int) * N), count = -1;
    void *ws = malloc(lg_nms_workspace(N));
    const struct {
        const char *key;
        float thresh;
    } cases[2] = {{"keep_05", 0.5f}, {"keep_03", 0.3f}};
    for (int c = 0; c < 2; c++) {
        const int32_t *want = fx_i32(fx, cases[c].key, &nk, NULL);
        ck_assert_int_eq(lg_nms(NULL, boxes, scores, N, cases[c].thresh, ws, keep, &count), LG_OK);
        ck_assert_int_eq(count, (int)nk);
        expect_ints(keep, want, nk, cases[c].key);
    }
    const int32_t *want = fx_i32(fx, "keep_batched", &nk, NULL);
    ck_assert_int_eq(
        lg_batched_nms(NULL, boxes, scores, (const int *)idxs, N, 0.5f, ws, keep, &count), LG_OK);
    ck_assert_int_eq(count, (int)nk);
    expect_ints(keep, want, nk, "keep_batched");
    free(ws);
    free(keep);
    fx_close(fx);
}
END_TEST

START_TEST(test_sampler) {
    enum { N = 1000 };
    int labels[N], a[N], b[N];
    for (int i = 0; i < N; i++)
        labels[i] = i % 10 == 0 ? 1 + i % 3 : i % 10 == 1 ? -1 : 0; /* 100 pos, 100 ignored */
    void *ws = malloc(lg_sample_workspace(N));
    lg_sampler s = {256, 0.25f};
    int np, nn;
    memcpy(a, labels, sizeof a);
    ck_assert_int_eq(lg_sample_balanced(NULL, &s, a, N, 42, ws, &np, &nn), LG_OK);
    ck_assert_int_eq(np, 64);
    ck_assert_int_eq(nn, 192);
    int cp = 0, cn = 0;
    for (int i = 0; i < N; i++) {
        if (a[i] >= 1) {
            ck_assert_int_eq(a[i], labels[i]); /* class ids survive */
            cp++;
        } else if (a[i] == 0) {
            ck_assert_int_eq(labels[i], 0);
            cn++;
        } else {
            ck_assert_int_eq(a[i], -1);
        }
    }
    ck_assert_int_eq(cp, 64);
    ck_assert_int_eq(cn, 192);
    /* Same seed, same sample; another seed, another sample. */
    memcpy(b, labels, sizeof b);
    lg_sample_balanced(NULL, &s, b, N, 42, ws, NULL, NULL);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    memcpy(b, labels, sizeof b);
    lg_sample_balanced(NULL, &s, b, N, lg_detect_seed(42, 1, 0), ws, NULL, NULL);
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
    /* Few positives: the negatives fill the batch. */
    for (int i = 0; i < N; i++)
        a[i] = i < 5 ? 1 : 0;
    lg_sample_balanced(NULL, &s, a, N, 7, ws, &np, &nn);
    ck_assert_int_eq(np, 5);
    ck_assert_int_eq(nn, 251);
    /* The positives are spread: over many seeds each is picked about as often. */
    int hits[100] = {0};
    for (int seed = 0; seed < 400; seed++) {
        for (int i = 0; i < 100; i++)
            a[i] = 1;
        lg_sampler half = {20, 0.5f};
        lg_sample_balanced(NULL, &half, a, 100, (uint64_t)seed, ws, NULL, NULL);
        for (int i = 0; i < 100; i++)
            hits[i] += a[i] == 1;
    }
    for (int i = 0; i < 100; i++)
        ck_assert_msg(hits[i] > 20 && hits[i] < 70, "index %d picked %d times of 400", i, hits[i]);
    free(ws);
}
END_TEST

START_TEST(test_select_top) {
    /* Quickselect + sort of the top k equals a full sort's first k, ties
     * (quantised scores) included, for many sizes. */
    enum { MAXN = 3000 };
    static lg_det_scored a[MAXN], b[MAXN];
    uint64_t state = 99;
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + (int)(lg_det_splitmix(&state) % MAXN);
        int k = (int)(lg_det_splitmix(&state) % (uint64_t)(n + 1));
        int levels = 1 + (int)(lg_det_splitmix(&state) % 50);
        for (int i = 0; i < n; i++) {
            float sc = (float)(lg_det_splitmix(&state) % (uint64_t)levels);
            a[i] = b[i] = (lg_det_scored){sc, i, 0};
        }
        lg_det_select_top(a, (size_t)n, (size_t)k);
        lg_det_sort_scored(a, (size_t)k);
        lg_det_sort_scored(b, (size_t)n);
        for (int i = 0; i < k; i++)
            ck_assert_msg(a[i].index == b[i].index && a[i].score == b[i].score,
                          "n %d k %d: row %d is %d, expected %d", n, k, i, a[i].index, b[i].index);
    }
}
END_TEST

/* ---- RPN ------------------------------------------------------------------------------ */

START_TEST(test_proposals) {
    fixture *fx = fx_open("rpn");
    size_t na;
    const float *anchors = fx_f32(fx, "anchors", &na, NULL);
    int A = (int)(na / 4);
    const int32_t *per = fx_i32(fx, "per_level", NULL, NULL);
    const int32_t *sizes = fx_i32(fx, "image_sizes", NULL, NULL);
    const float *obj = fx_f32(fx, "objectness", NULL, NULL),
                *deltas = fx_f32(fx, "deltas", NULL, NULL);
    lg_proposal_config cfg = {150, 100, 0.7f, 1e-3f, 0.0f};
    int per_level[5];
    for (int l = 0; l < 5; l++)
        per_level[l] = per[l];
    void *ws = malloc(lg_proposals_workspace(&cfg, per_level, 5));
    float boxes[100 * 4], scores[100];
    for (int i = 0; i < 2; i++) {
        int count = -1, shape[2];
        char key[32];
        snprintf(key, sizeof key, "boxes%d", i);
        const float *want = fx_f32(fx, key, NULL, shape);
        ck_assert_int_eq(lg_proposals(NULL, &cfg, obj + (size_t)i * A, deltas + (size_t)i * A * 4,
                                      anchors, per_level, 5, sizes[2 * i], sizes[2 * i + 1], ws,
                                      boxes, scores, &count),
                         LG_OK);
        ck_assert_int_eq(count, shape[0]);
        expect_close(boxes, want, (size_t)count * 4, 1e-5, 1e-4, key);
        snprintf(key, sizeof key, "scores%d", i);
        expect_close(scores, fx_f32(fx, key, NULL, NULL), (size_t)count, 1e-5, 1e-7, key);
    }
    free(ws);
    fx_close(fx);
}
END_TEST

START_TEST(test_rpn_targets) {
    fixture *fx = fx_open("rpn");
    size_t na;
    const float *anchors = fx_f32(fx, "anchors", &na, NULL);
    int A = (int)(na / 4);
    /* A batch large enough to keep everything: labels are the matcher's. */
    lg_rpn_config cfg = {0.7f, 0.3f, 1 << 20, 0.5f};
    void *ws = malloc(lg_rpn_targets_workspace(A, 8));
    int *labels = malloc(sizeof(int) * A);
    float *targets = malloc(sizeof(float) * 4 * A);
    for (int i = 0; i < 2; i++) {
        char key[32];
        size_t ng;
        snprintf(key, sizeof key, "gt%d", i);
        const float *gt = fx_f32(fx, key, &ng, NULL);
        ck_assert_int_eq(
            lg_rpn_targets(NULL, &cfg, anchors, A, gt, (int)(ng / 4), 5, ws, labels, targets),
            LG_OK);
        snprintf(key, sizeof key, "labels%d", i);
        const int32_t *want = fx_i32(fx, key, NULL, NULL);
        expect_ints(labels, want, (size_t)A, key);
        snprintf(key, sizeof key, "targets%d", i);
        const float *wt = fx_f32(fx, key, NULL, NULL);
        int positives = 0;
        for (int a = 0; a < A; a++)
            if (want[a] == 1) {
                expect_close(targets + 4 * a, wt + 4 * a, 4, 1e-5, 1e-5, key);
                positives++;
            }
        ck_assert_int_gt(positives, 0);
    }
    /* The default sample: at most 128 positives, 256 in all. */
    lg_rpn_config def = {0.7f, 0.3f, 256, 0.5f};
    size_t ng;
    const float *gt = fx_f32(fx, "gt0", &ng, NULL);
    lg_rpn_targets(NULL, &def, anchors, A, gt, (int)(ng / 4), 5, ws, labels, targets);
    int pos = 0, neg = 0;
    for (int a = 0; a < A; a++) {
        pos += labels[a] == 1;
        neg += labels[a] == 0;
    }
    ck_assert_int_le(pos, 128);
    ck_assert_int_eq(pos + neg, 256);
    free(ws);
    free(labels);
    free(targets);
    fx_close(fx);
}
END_TEST

START_TEST(test_rpn_loss) {
    fixture *fx = fx_open("rpn");
    int shape[3];
    const float *obj = fx_f32(fx, "objectness", NULL, shape);
    int N = shape[0], A = shape[1];
    const float *deltas = fx_f32(fx, "deltas", NULL, NULL);
    const int32_t *labels = fx_i32(fx, "loss_labels", NULL, NULL);
    const float *targets = fx_f32(fx, "loss_targets", NULL, NULL);
    float lo, lb;
    ck_assert_int_eq(lg_rpn_loss_forward(NULL, obj, deltas, (const int *)labels, targets, N, A,
                                         1.0f / 9, &lo, &lb),
                     LG_OK);
    expect_close(&lo, fx_f32(fx, "loss_objectness", NULL, NULL), 1, 1e-5, 0, "loss_objectness");
    expect_close(&lb, fx_f32(fx, "loss_box", NULL, NULL), 1, 1e-5, 0, "loss_box");
    float *go = malloc(sizeof(float) * N * A), *gd = malloc(sizeof(float) * N * A * 4);
    ck_assert_int_eq(lg_rpn_loss_backward(NULL, obj, deltas, (const int *)labels, targets, N, A,
                                          1.0f / 9, 0.7f, 1.3f, go, gd),
                     LG_OK);
    expect_close(go, fx_f32(fx, "grad_objectness", NULL, NULL), (size_t)N * A, 1e-4, 1e-9,
                 "grad_objectness");
    expect_close(gd, fx_f32(fx, "grad_deltas", NULL, NULL), (size_t)N * A * 4, 1e-4, 1e-9,
                 "grad_deltas");
    free(go);
    free(gd);
    fx_close(fx);
}
END_TEST

START_TEST(test_rpn_permute) {
    /* (N=2, A=3, D=4, H=2, W=5): out[n][offset + (y*W + x)*A + a][d] = x[n][a*D+d][y][x]. */
    enum { N = 2, A = 3, D = 4, H = 2, W = 5, TOTAL = 40, OFF = 7 };
    float x[N * A * D * H * W], out[N * TOTAL * D], back[N * A * D * H * W];
    for (int i = 0; i < N * A * D * H * W; i++)
        x[i] = (float)i;
    memset(out, 0, sizeof out);
    lg_rpn_permute_forward(x, N, A, D, H, W, out, TOTAL, OFF);
    for (int n = 0; n < N; n++)
        for (int a = 0; a < A; a++)
            for (int d = 0; d < D; d++)
                for (int y = 0; y < H; y++)
                    for (int xx = 0; xx < W; xx++)
                        ck_assert_float_eq(out[((n * TOTAL) + OFF + (y * W + xx) * A + a) * D + d],
                                           x[(((n * A + a) * D + d) * H + y) * W + xx]);
    lg_rpn_permute_backward(out, N, A, D, H, W, TOTAL, OFF, back);
    ck_assert_int_eq(memcmp(back, x, sizeof x), 0);
}
END_TEST

START_TEST(test_non_finite_inputs) {
    /* A diverged network must not crash the step: NaN and huge values in
     * the RPN outputs and RoIs give finite proposals and zero pooling. */
    fixture *fx = fx_open("rpn");
    size_t na;
    const float *anchors = fx_f32(fx, "anchors", &na, NULL);
    int A = (int)(na / 4);
    const int32_t *per = fx_i32(fx, "per_level", NULL, NULL);
    int per_level[5];
    for (int l = 0; l < 5; l++)
        per_level[l] = per[l];
    float *obj = malloc(sizeof(float) * A), *deltas = malloc(sizeof(float) * A * 4);
    memcpy(obj, fx_f32(fx, "objectness", NULL, NULL), sizeof(float) * A);
    memcpy(deltas, fx_f32(fx, "deltas", NULL, NULL), sizeof(float) * A * 4);
    for (int a = 0; a < A; a += 3) {
        obj[a] = NAN;
        deltas[4 * (a + 1)] = NAN;
        deltas[4 * (a + 2) + 2] = 1e30f;
    }
    lg_proposal_config cfg = {150, 100, 0.7f, 1e-3f, 0.0f};
    void *ws = malloc(lg_proposals_workspace(&cfg, per_level, 5));
    float boxes[400], scores[100];
    int count;
    ck_assert_int_eq(lg_proposals(NULL, &cfg, obj, deltas, anchors, per_level, 5, 64, 64, ws, boxes,
                                  scores, &count),
                     LG_OK);
    ck_assert_int_gt(count, 0);
    for (int i = 0; i < 4 * count; i++)
        ck_assert(isfinite(boxes[i]) && boxes[i] >= 0 && boxes[i] <= 64);
    for (int i = 1; i < count; i++)
        ck_assert(scores[i] <= scores[i - 1]);
    /* RoIs: NaN, infinite, huge, inverted. */
    float feat[2 * 3 * 8 * 8];
    for (int i = 0; i < 2 * 3 * 8 * 8; i++)
        feat[i] = 1.0f;
    float rois[5 * 5] = {0, NAN, 1, 4,     4,     1,    1,    1, INFINITY, 4, NAN, 1, 1,
                         4, 4,   0, -1e9f, -1e9f, 1e9f, 1e9f, 1, 6,        6, 2,   2};
    float out[5 * 3 * 2 * 2], grad[2 * 3 * 8 * 8], gout[5 * 3 * 2 * 2];
    for (int i = 0; i < 60; i++)
        gout[i] = 1.0f;
    lg_roi_align_config rc = {2, 2, 1.0f, -1, 0};
    ck_assert_int_eq(lg_roi_align_forward(NULL, &rc, feat, 2, 3, 8, 8, rois, 5, out), LG_OK);
    for (int i = 0; i < 36; i++) /* the three non-finite RoIs */
        ck_assert_float_eq(out[i], 0.0f);
    for (int i = 36; i < 60; i++)
        ck_assert(isfinite(out[i]));
    ck_assert_int_eq(lg_roi_align_backward(NULL, &rc, gout, 2, 3, 8, 8, rois, 5, grad), LG_OK);
    for (int i = 0; i < 2 * 3 * 8 * 8; i++)
        ck_assert(isfinite(grad[i]));
    lg_multiscale_roi_align ms = {2, {0.25f, 0.125f}, 2, 2, 2, 0, 224, 4};
    const float *feats[2] = {feat, feat};
    int hs[2] = {8, 8}, wd[2] = {8, 8}, levels[5];
    ck_assert_int_eq(lg_roi_levels(NULL, &ms, rois, 5, levels), LG_OK);
    for (int k = 0; k < 5; k++)
        ck_assert(levels[k] == 0 || levels[k] == 1);
    ck_assert_int_eq(lg_multiscale_roi_align_forward(NULL, &ms, feats, hs, wd, 2, 3, rois, 5, out),
                     LG_OK);
    free(ws);
    free(obj);
    free(deltas);
    fx_close(fx);
}
END_TEST

/* ---- RoI heads ------------------------------------------------------------------------- */

/* sum(output * gout) in double, for the finite differences. */
static double dot_output(const lg_roi_align_config *cfg, const float *input, int N, int C, int H,
                         int W, const float *rois, int K, const float *gout, float *out) {
    lg_roi_align_forward(NULL, cfg, input, N, C, H, W, rois, K, out);
    double s = 0;
    size_t n = (size_t)K * C * cfg->pooled_h * cfg->pooled_w;
    for (size_t i = 0; i < n; i++)
        s += (double)out[i] * gout[i];
    return s;
}

START_TEST(test_roi_align) {
    fixture *fx = fx_open("roi_align");
    int shape[4], rshape[2];
    const float *input = fx_f32(fx, "input", NULL, shape);
    const float *rois = fx_f32(fx, "rois", NULL, rshape);
    int N = shape[0], C = shape[1], H = shape[2], W = shape[3], K = rshape[0];
    const struct {
        const char *name;
        lg_roi_align_config cfg;
    } cases[5] = {{"a", {7, 7, 0.5f, 2, 0}},
                  {"b", {5, 4, 0.25f, -1, 1}},
                  {"c", {3, 3, 1.0f, 0, 0}},
                  {"d", {2, 3, 0.5f, 3, 1}},
                  {"e", {4, 4, 4.0f, -1, 0}}};
    size_t in_n = (size_t)N * C * H * W;
    float *grad = malloc(sizeof(float) * in_n), *x = malloc(sizeof(float) * in_n);
    float *out = malloc(sizeof(float) * K * C * 49);
    for (int c = 0; c < 5; c++) {
        const lg_roi_align_config *cfg = &cases[c].cfg;
        char key[64];
        size_t on;
        snprintf(key, sizeof key, "%s_output", cases[c].name);
        const float *want = fx_f32(fx, key, &on, NULL);
        ck_assert_int_eq(lg_roi_align_forward(NULL, cfg, input, N, C, H, W, rois, K, out), LG_OK);
        expect_close(out, want, on, 1e-5, 1e-6, key);
        snprintf(key, sizeof key, "%s_grad_output", cases[c].name);
        const float *gout = fx_f32(fx, key, NULL, NULL);
        memset(grad, 0, sizeof(float) * in_n);
        ck_assert_int_eq(lg_roi_align_backward(NULL, cfg, gout, N, C, H, W, rois, K, grad), LG_OK);
        snprintf(key, sizeof key, "%s_grad_input", cases[c].name);
        expect_close(grad, fx_f32(fx, key, NULL, NULL), in_n, 1e-4, 1e-6, key);
        /* Central differences; RoIAlign is linear in its input, so a unit
         * step is exact up to rounding of the double sum. */
        memcpy(x, input, sizeof(float) * in_n);
        for (size_t i = 0; i < in_n; i++) {
            float keep = x[i];
            x[i] = keep + 1.0f;
            double up = dot_output(cfg, x, N, C, H, W, rois, K, gout, out);
            x[i] = keep - 1.0f;
            double down = dot_output(cfg, x, N, C, H, W, rois, K, gout, out);
            x[i] = keep;
            double fd = (up - down) / 2.0;
            ck_assert_msg(fabs(fd - grad[i]) <= 1e-4 * (1 + fabs(fd)),
                          "case %s: finite difference %.7g vs backward %.7g at %zu", cases[c].name,
                          fd, grad[i], i);
        }
    }
    /* A padding RoI (negative batch index) pools zeros and takes no gradient. */
    float pad[5] = {-1, 1, 1, 5, 5};
    float pout[3 * 49];
    memset(pout, 0x7f, sizeof pout);
    ck_assert_int_eq(lg_roi_align_forward(NULL, &cases[0].cfg, input, N, C, H, W, pad, 1, pout),
                     LG_OK);
    for (int i = 0; i < 3 * 49; i++)
        ck_assert_float_eq(pout[i], 0.0f);
    float bad[5] = {2, 1, 1, 5, 5};
    lg_error err = {0};
    lg_ctx ectx = {NULL, 1, &err};
    ck_assert_int_eq(lg_roi_align_forward(&ectx, &cases[0].cfg, input, N, C, H, W, bad, 1, pout),
                     LG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "batch index"));
    free(grad);
    free(x);
    free(out);
    fx_close(fx);
}
END_TEST

START_TEST(test_multiscale_roi_align) {
    fixture *fx = fx_open("roi_align");
    int rshape[2], fshape[4][4];
    const float *rois = fx_f32(fx, "ms_rois", NULL, rshape);
    int K = rshape[0];
    const float *feats[4];
    float *grads[4];
    int heights[4], widths[4];
    for (int l = 0; l < 4; l++) {
        char key[32];
        snprintf(key, sizeof key, "ms_feat%d", l);
        feats[l] = fx_f32(fx, key, NULL, fshape[l]);
        heights[l] = fshape[l][2];
        widths[l] = fshape[l][3];
        grads[l] =
            calloc((size_t)fshape[l][0] * fshape[l][1] * heights[l] * widths[l], sizeof(float));
    }
    int N = fshape[0][0], C = fshape[0][1];
    lg_multiscale_roi_align cfg = {4, {0.125f, 0.0625f, 0.03125f, 0.015625f}, 7, 7, 2, 0, 224, 4};
    int levels[64];
    ck_assert_int_eq(lg_roi_levels(NULL, &cfg, rois, K, levels), LG_OK);
    expect_ints(levels, fx_i32(fx, "ms_levels", NULL, NULL), (size_t)K, "ms_levels");
    int used[4] = {0};
    for (int k = 0; k < K; k++)
        used[levels[k]]++;
    for (int l = 0; l < 4; l++)
        ck_assert_msg(used[l] > 0, "fixture leaves level %d unused", l);
    size_t on;
    const float *want = fx_f32(fx, "ms_output", &on, NULL);
    float *out = malloc(sizeof(float) * on);
    ck_assert_int_eq(
        lg_multiscale_roi_align_forward(NULL, &cfg, feats, heights, widths, N, C, rois, K, out),
        LG_OK);
    expect_close(out, want, on, 1e-5, 1e-6, "ms_output");
    ck_assert_int_eq(lg_multiscale_roi_align_backward(NULL, &cfg,
                                                      fx_f32(fx, "ms_grad_output", NULL, NULL),
                                                      heights, widths, N, C, rois, K, grads),
                     LG_OK);
    /* On a pool of threads: the same bits. */
    lg_ctx pool;
    ck_assert_int_eq(lg_ctx_init(&pool, 2, NULL), LG_OK);
    float *out2 = malloc(sizeof(float) * on), *g2[4];
    for (int l = 0; l < 4; l++)
        g2[l] = malloc(sizeof(float) * (size_t)N * C * heights[l] * widths[l]);
    ck_assert_int_eq(
        lg_multiscale_roi_align_forward(&pool, &cfg, feats, heights, widths, N, C, rois, K, out2),
        LG_OK);
    ck_assert_int_eq(memcmp(out, out2, sizeof(float) * on), 0);
    ck_assert_int_eq(lg_multiscale_roi_align_backward(&pool, &cfg,
                                                      fx_f32(fx, "ms_grad_output", NULL, NULL),
                                                      heights, widths, N, C, rois, K, g2),
                     LG_OK);
    for (int l = 0; l < 4; l++) {
        ck_assert_int_eq(
            memcmp(grads[l], g2[l], sizeof(float) * (size_t)N * C * heights[l] * widths[l]), 0);
        free(g2[l]);
    }
    free(out2);
    lg_ctx_free(&pool);
    for (int l = 0; l < 4; l++) {
        char key[32];
        snprintf(key, sizeof key, "ms_grad%d", l);
        expect_close(grads[l], fx_f32(fx, key, NULL, NULL), (size_t)N * C * heights[l] * widths[l],
                     1e-4, 1e-6, key);
        free(grads[l]);
    }
    lg_multiscale_roi_align skip = cfg;
    skip.scales[1] = 0.03125f;
    lg_error err = {0};
    lg_ctx ectx = {NULL, 1, &err};
    ck_assert_int_eq(lg_roi_levels(&ectx, &skip, rois, K, levels), LG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "halve"));
    skip.num_levels = 3;
    skip.scales[1] = 0.0625f;
    skip.scales[2] = 0.0078125f;
    ck_assert_int_eq(lg_roi_levels(&ectx, &skip, rois, K, levels), LG_ERR_ARG);
    skip.scales[2] = 0.03125f;
    ck_assert_int_eq(lg_roi_levels(&ectx, &skip, rois, K, levels), LG_OK);
    free(out);
    fx_close(fx);
}
END_TEST

START_TEST(test_fastrcnn_loss) {
    fixture *fx = fx_open("fastrcnn");
    int shape[2];
    const float *logits = fx_f32(fx, "logits", NULL, shape);
    int R = shape[0], K = shape[1];
    const float *box = fx_f32(fx, "box", NULL, NULL), *targets = fx_f32(fx, "targets", NULL, NULL);
    const int *labels = (const int *)fx_i32(fx, "labels", NULL, NULL);
    float lc, lb;
    ck_assert_int_eq(
        lg_fastrcnn_loss_forward(NULL, logits, box, labels, targets, R, K, 1.0f / 9, &lc, &lb),
        LG_OK);
    expect_close(&lc, fx_f32(fx, "loss_classifier", NULL, NULL), 1, 1e-5, 0, "loss_classifier");
    expect_close(&lb, fx_f32(fx, "loss_box_reg", NULL, NULL), 1, 1e-5, 0, "loss_box_reg");
    float *gl = malloc(sizeof(float) * R * K), *gb = malloc(sizeof(float) * R * K * 4);
    ck_assert_int_eq(lg_fastrcnn_loss_backward(NULL, logits, box, labels, targets, R, K, 1.0f / 9,
                                               0.6f, 1.7f, gl, gb),
                     LG_OK);
    /* torchvision saw only the non-padding rows; padding rows get zero. */
    const float *wl = fx_f32(fx, "grad_logits", NULL, NULL),
                *wb = fx_f32(fx, "grad_box", NULL, NULL);
    for (int r = 0; r < R; r++) {
        if (labels[r] < 0)
            for (int k = 0; k < K; k++)
                ck_assert_float_eq(wl[r * K + k], 0.0f);
    }
    expect_close(gl, wl, (size_t)R * K, 1e-4, 1e-8, "grad_logits");
    expect_close(gb, wb, (size_t)R * K * 4, 1e-4, 1e-8, "grad_box");
    free(gl);
    free(gb);
    fx_close(fx);
}
END_TEST

START_TEST(test_roi_sample) {
    fixture *fx = fx_open("roi_sample");
    size_t np, ng, nl;
    const float *props = fx_f32(fx, "proposals", &np, NULL), *gt = fx_f32(fx, "gt", &ng, NULL);
    const int *gl = (const int *)fx_i32(fx, "gt_labels", NULL, NULL);
    const int32_t *want = fx_i32(fx, "labels", &nl, NULL);
    const float *wt = fx_f32(fx, "targets", NULL, NULL);
    int P = (int)(np / 4), G = (int)(ng / 4);
    enum { CAP = 10000 };
    lg_roi_sample_config cfg = {0.5f, 0.5f, CAP, 0.25f, LG_BOX_CODER_ROI};
    void *ws = malloc(lg_roi_sample_workspace(P, G));
    float *rois = malloc(sizeof(float) * 4 * CAP), *tg = malloc(sizeof(float) * 4 * CAP);
    int *labels = malloc(sizeof(int) * CAP), count = -1;
    ck_assert_int_eq(
        lg_roi_sample(NULL, &cfg, props, P, gt, gl, G, 1, ws, rois, labels, tg, &count), LG_OK);
    ck_assert_int_eq(count, (int)nl); /* 0.5/0.5: nothing is ignored */
    expect_ints(labels, want, nl, "roi labels");
    ck_assert_int_eq(labels[count], -1);
    int fg = 0;
    for (int i = 0; i < count; i++) {
        const float *b = i < P ? props + 4 * i : gt + 4 * (i - P);
        expect_close(rois + 4 * i, b, 4, 0, 0, "rois");
        if (labels[i] > 0) {
            expect_close(tg + 4 * i, wt + 4 * i, 4, 1e-5, 1e-5, "roi targets");
            fg++;
        }
    }
    ck_assert_int_ge(fg, G);
    /* Default sizes: 512 * 0.25 caps the foreground. */
    lg_roi_sample_config small = {0.5f, 0.5f, 16, 0.25f, LG_BOX_CODER_ROI};
    ck_assert_int_eq(
        lg_roi_sample(NULL, &small, props, P, gt, gl, G, 3, ws, rois, labels, tg, &count), LG_OK);
    ck_assert_int_eq(count, 16);
    int pos = 0;
    for (int i = 0; i < 16; i++)
        pos += labels[i] > 0;
    ck_assert_int_le(pos, 4);
    free(ws);
    free(rois);
    free(tg);
    free(labels);
    fx_close(fx);
}
END_TEST

START_TEST(test_detections) {
    fixture *fx = fx_open("detections");
    int shape[2], dshape[2];
    const float *logits = fx_f32(fx, "logits", NULL, shape);
    int R = shape[0], K = shape[1];
    const float *want = fx_f32(fx, "boxes", NULL, dshape);
    lg_detect_config cfg = {0.05f, 0.5f, 25, 1e-2f, LG_BOX_CODER_ROI};
    void *ws = malloc(lg_detections_workspace(R, K));
    float boxes[25 * 4], scores[25];
    int labels[25], count = -1;
    ck_assert_int_eq(lg_detections(NULL, &cfg, logits, fx_f32(fx, "box", NULL, NULL),
                                   fx_f32(fx, "proposals", NULL, NULL), R, K, 110, 150, ws, boxes,
                                   scores, labels, &count),
                     LG_OK);
    ck_assert_int_eq(count, dshape[0]);
    expect_close(boxes, want, (size_t)count * 4, 1e-5, 1e-4, "det boxes");
    expect_close(scores, fx_f32(fx, "scores", NULL, NULL), (size_t)count, 1e-5, 1e-7, "det scores");
    expect_ints(labels, fx_i32(fx, "labels", NULL, NULL), (size_t)count, "det labels");
    free(ws);
    fx_close(fx);
}
END_TEST

/* ---- whole batches ----------------------------------------------------------------------- */

START_TEST(test_proposals_batch) {
    fixture *fx = fx_open("rpn");
    size_t na;
    const float *anchors = fx_f32(fx, "anchors", &na, NULL);
    ck_assert_uint_eq(na, 1023 * 4);
    const int32_t *per = fx_i32(fx, "per_level", NULL, NULL);
    const int32_t *sizes = fx_i32(fx, "image_sizes", NULL, NULL);
    const float *obj = fx_f32(fx, "objectness", NULL, NULL);
    const float *deltas = fx_f32(fx, "deltas", NULL, NULL);
    lg_proposal_config cfg = {150, 100, 0.7f, 1e-3f, 0.0f};
    int per_level[5];
    for (int l = 0; l < 5; l++)
        per_level[l] = per[l];
    void *ws = malloc(lg_proposals_batch_workspace(&cfg, per_level, 5, 2));
    float boxes[2][100 * 4], scores[2][100], boxes2[2][100 * 4], scores2[2][100];
    int count[2], count2[2];
    /* Each image clipped to its own size: torchvision's numbers. */
    ck_assert_int_eq(lg_proposals_batch(NULL, &cfg, obj, deltas, anchors, per_level, 5, 2, 64, 64,
                                        sizes, ws, &boxes[0][0], &scores[0][0], count),
                     LG_OK);
    for (int i = 0; i < 2; i++) {
        char key[32];
        int shape[2];
        snprintf(key, sizeof key, "boxes%d", i);
        const float *want = fx_f32(fx, key, NULL, shape);
        ck_assert_int_eq(count[i], shape[0]);
        expect_close(boxes[i], want, (size_t)count[i] * 4, 1e-5, 1e-4, key);
        snprintf(key, sizeof key, "scores%d", i);
        expect_close(scores[i], fx_f32(fx, key, NULL, NULL), (size_t)count[i], 1e-5, 1e-7, key);
    }
    /* On two threads: the same bits. */
    lg_ctx pool;
    ck_assert_int_eq(lg_ctx_init(&pool, 2, NULL), LG_OK);
    ck_assert_int_eq(lg_proposals_batch(&pool, &cfg, obj, deltas, anchors, per_level, 5, 2, 64, 64,
                                        sizes, ws, &boxes2[0][0], &scores2[0][0], count2),
                     LG_OK);
    ck_assert_int_eq(memcmp(boxes, boxes2, sizeof boxes), 0);
    ck_assert_int_eq(memcmp(scores, scores2, sizeof scores), 0);
    ck_assert_int_eq(memcmp(count, count2, sizeof count), 0);
    lg_ctx_free(&pool);
    /* RoI rows: (image, box), padding -1 after each image's real rows. */
    count[1] = 3;
    float *rois = malloc(sizeof(float) * 2 * 100 * 5);
    lg_rois_from_proposals(&boxes[0][0], count, 2, 100, rois);
    ck_assert_float_eq(rois[0], 0.0f);
    ck_assert_float_eq(rois[1], boxes[0][0]);
    ck_assert_float_eq(rois[(100 + 2) * 5], 1.0f);
    ck_assert_float_eq(rois[(100 + 2) * 5 + 4], boxes[1][2 * 4 + 3]);
    ck_assert_float_eq(rois[(100 + 3) * 5], -1.0f);
    free(rois);
    free(ws);
    fx_close(fx);
}
END_TEST

START_TEST(test_rpn_loss_batch) {
    fixture *fx = fx_open("rpn");
    size_t na, n0, n1;
    const float *anchors = fx_f32(fx, "anchors", &na, NULL);
    int A = (int)(na / 4);
    const float *obj = fx_f32(fx, "objectness", NULL, NULL);
    const float *deltas = fx_f32(fx, "deltas", NULL, NULL);
    const float *gt0 = fx_f32(fx, "gt0", &n0, NULL), *gt1 = fx_f32(fx, "gt1", &n1, NULL);
    enum { B = 6 };
    float gt[2 * B * 4] = {0};
    int32_t gl[2 * B], gc[2] = {(int32_t)(n0 / 4), (int32_t)(n1 / 4)};
    memcpy(gt, gt0, n0 * sizeof(float));
    memcpy(gt + B * 4, gt1, n1 * sizeof(float));
    for (int i = 0; i < 2 * B; i++)
        gl[i] = i % B < gc[i / B] ? 0 : -1;
    lg_det_targets t = {B, gt, gl, NULL, gc, 1, 0};
    lg_rpn_loss_config cfg = {{0.7f, 0.3f, 256, 0.5f}, 1.0f / 9, 77};
    void *ws = malloc(lg_rpn_loss_batch_workspace(A, B));
    int *labels = malloc(sizeof(int) * 2 * A), *ref = malloc(sizeof(int) * 2 * A);
    float *tg = malloc(sizeof(float) * 8 * A), *rtg = malloc(sizeof(float) * 8 * A);
    float lo, lb, ro, rb;
    ck_assert_int_eq(lg_rpn_loss_batch_forward(NULL, &cfg, obj, deltas, anchors, A, 2, &t, 5, ws,
                                               labels, tg, &lo, &lb),
                     LG_OK);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(lg_rpn_targets(NULL, &cfg.rpn, anchors, A, gt + i * B * 4, gc[i],
                                        lg_detect_seed(77, 5, (uint64_t)i), ws, ref + i * A,
                                        rtg + (size_t)i * A * 4),
                         LG_OK);
    ck_assert_int_eq(memcmp(labels, ref, sizeof(int) * 2 * A), 0);
    ck_assert_int_eq(memcmp(tg, rtg, sizeof(float) * 8 * A), 0);
    lg_rpn_loss_forward(NULL, obj, deltas, ref, rtg, 2, A, 1.0f / 9, &ro, &rb);
    ck_assert_float_eq(lo, ro);
    ck_assert_float_eq(lb, rb);
    ck_assert(lo > 0 && lb > 0);
    /* Difficult boxes left out of training: image 1 as if it had none. */
    uint8_t diff[2 * B] = {0};
    for (int i = B; i < 2 * B; i++)
        diff[i] = 1;
    lg_det_targets td = t;
    td.difficult = diff;
    td.skip_difficult = 1;
    ck_assert_int_eq(lg_rpn_loss_batch_forward(NULL, &cfg, obj, deltas, anchors, A, 2, &td, 5, ws,
                                               labels, tg, &lo, &lb),
                     LG_OK);
    ck_assert_int_eq(lg_rpn_targets(NULL, &cfg.rpn, anchors, A, NULL, 0, lg_detect_seed(77, 5, 1),
                                    ws, ref + A, rtg + (size_t)A * 4),
                     LG_OK);
    ck_assert_int_eq(memcmp(labels, ref, sizeof(int) * 2 * A), 0);
    for (int a = 0; a < A; a++)
        ck_assert_int_le(labels[A + a], 0);
    /* Another step, another sample. */
    lg_rpn_loss_batch_forward(NULL, &cfg, obj, deltas, anchors, A, 2, &t, 6, ws, labels, tg, &lo,
                              &lb);
    ck_assert_int_ne(memcmp(labels, ref, sizeof(int) * 2 * A), 0);
    gc[1] = B + 1;
    lg_error err = {0};
    lg_ctx ectx = {NULL, 1, &err};
    ck_assert_int_eq(lg_rpn_loss_batch_forward(&ectx, &cfg, obj, deltas, anchors, A, 2, &t, 6, ws,
                                               labels, tg, &lo, &lb),
                     LG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "image 1 has 7 boxes"));
    free(ws);
    free(labels);
    free(ref);
    free(tg);
    free(rtg);
    fx_close(fx);
}
END_TEST

START_TEST(test_roi_sample_batch) {
    fixture *fx = fx_open("roi_sample");
    size_t np, ng;
    const float *props = fx_f32(fx, "proposals", &np, NULL), *gt = fx_f32(fx, "gt", &ng, NULL);
    const int32_t *gl = fx_i32(fx, "gt_labels", NULL, NULL);
    int P = (int)(np / 4), G = (int)(ng / 4);
    enum { B = 8, R = 32 };
    /* Two images: the fixture, and the same with its last proposals cut. */
    float *pb = malloc(sizeof(float) * 2 * P * 4), gtb[2 * B * 4] = {0};
    memcpy(pb, props, np * sizeof(float));
    memcpy(pb + P * 4, props, np * sizeof(float));
    int pc[2] = {P, P / 2};
    int32_t glb[2 * B], gc[2] = {G, G};
    for (int i = 0; i < 2 * B; i++)
        glb[i] = i % B < G ? gl[i % B] - 1 : -1; /* 0-based, as lg_batch has them */
    memcpy(gtb, gt, ng * sizeof(float));
    memcpy(gtb + B * 4, gt, ng * sizeof(float));
    lg_det_targets t = {B, gtb, glb, NULL, gc, 1, 0};
    lg_roi_sample_config cfg = {0.5f, 0.5f, R, 0.25f, LG_BOX_CODER_ROI};
    void *ws = malloc(lg_roi_sample_batch_workspace(&cfg, P, B));
    float rois[2 * R * 5], tg[2 * R * 4], r4[R * 4], rt[R * 4];
    int labels[2 * R], rl[R], count;
    ck_assert_int_eq(lg_roi_sample_batch(NULL, &cfg, pb, pc, P, 2, &t, 9, 3, ws, rois, labels, tg),
                     LG_OK);
    void *ws1 = malloc(lg_roi_sample_workspace(P, G));
    for (int n = 0; n < 2; n++) {
        ck_assert_int_eq(lg_roi_sample(NULL, &cfg, props, pc[n], gt, (const int *)gl, G,
                                       lg_detect_seed(9, 3, (uint64_t)n), ws1, r4, rl, rt, &count),
                         LG_OK);
        for (int r = 0; r < R; r++) {
            const float *row = rois + (n * R + r) * 5;
            ck_assert_float_eq(row[0], r < count ? (float)n : -1.0f);
            ck_assert_int_eq(memcmp(row + 1, r4 + 4 * r, 4 * sizeof(float)), 0);
            ck_assert_int_eq(labels[n * R + r], rl[r]);
        }
        ck_assert_int_eq(memcmp(tg + n * R * 4, rt, sizeof rt), 0);
    }
    free(ws1);
    free(ws);
    free(pb);
    fx_close(fx);
}
END_TEST

START_TEST(test_detections_batch) {
    fixture *fx = fx_open("detections");
    int shape[2], dshape[2];
    const float *logits = fx_f32(fx, "logits", NULL, shape);
    int R0 = shape[0], K = shape[1], R = R0 + 8; /* 8 padding rows per image */
    const float *box = fx_f32(fx, "box", NULL, NULL), *props = fx_f32(fx, "proposals", NULL, NULL);
    const float *want = fx_f32(fx, "boxes", NULL, dshape);
    float *lb = calloc((size_t)2 * R * K, sizeof(float));
    float *bb = calloc((size_t)2 * R * K * 4, sizeof(float));
    float *rois = calloc((size_t)2 * R * 5, sizeof(float));
    for (int n = 0; n < 2; n++) {
        memcpy(lb + (size_t)n * R * K, logits, sizeof(float) * R0 * K);
        memcpy(bb + (size_t)n * R * K * 4, box, sizeof(float) * R0 * K * 4);
        for (int r = 0; r < R; r++) {
            float *row = rois + (n * R + r) * 5;
            row[0] = r < R0 ? (float)n : -1.0f;
            if (r < R0)
                memcpy(row + 1, props + 4 * r, 4 * sizeof(float));
            else
                lb[((size_t)n * R + r) * K + 1] = 50.0f; /* would be detected if not padding */
        }
    }
    lg_detect_config cfg = {0.05f, 0.5f, 25, 1e-2f, LG_BOX_CODER_ROI};
    void *ws = malloc(lg_detections_batch_workspace(R, K, 2));
    float boxes[2 * 25 * 4], scores[2 * 25];
    int labels[2 * 25], count[2];
    lg_ctx pool;
    ck_assert_int_eq(lg_ctx_init(&pool, 2, NULL), LG_OK);
    ck_assert_int_eq(lg_detections_batch(&pool, &cfg, lb, bb, rois, 2, R, K, 110, 150, NULL, ws,
                                         boxes, scores, labels, count),
                     LG_OK);
    lg_ctx_free(&pool);
    for (int n = 0; n < 2; n++) {
        ck_assert_int_eq(count[n], dshape[0]);
        expect_close(boxes + n * 100, want, (size_t)count[n] * 4, 1e-5, 1e-4, "batch boxes");
        expect_close(scores + n * 25, fx_f32(fx, "scores", NULL, NULL), (size_t)count[n], 1e-5,
                     1e-7, "batch scores");
        expect_ints(labels + n * 25, fx_i32(fx, "labels", NULL, NULL), (size_t)count[n],
                    "batch labels");
    }
    /* Evaluated against its own boxes as ground truth (class - 1, 0-based):
     * every class present scores AP 1. */
    int32_t gl[2 * 25], gc[2] = {count[0], count[1]};
    for (int i = 0; i < 50; i++)
        gl[i] = labels[i] - 1;
    lg_det_targets t = {25, boxes, gl, NULL, gc, 1, 0};
    lg_voc_eval ev;
    lg_voc_eval_init(&ev, K, NULL);
    ck_assert_int_eq(lg_voc_eval_add_batch(&ev, boxes, scores, labels, count, 2, 25, &t, NULL),
                     LG_OK);
    float ap[8], map;
    lg_voc_map_config vc = {0.5f, 0, 0};
    ck_assert_int_eq(lg_voc_eval_compute(&ev, &vc, ap, &map, NULL), LG_OK);
    ck_assert(isnan(ap[0]));
    ck_assert_float_eq_tol(map, 1.0f, 1e-6f);
    lg_voc_eval_free(&ev);
    free(ws);
    free(lb);
    free(bb);
    free(rois);
    fx_close(fx);
}
END_TEST

/* ---- predict output ------------------------------------------------------------------ */

START_TEST(test_predict_output) {
    enum { H = 40, W = 64 };
    /* A grey float image, normalised with mean 0.5 / std 0.25. */
    float chw[3 * H * W];
    for (int i = 0; i < 3 * H * W; i++)
        chw[i] = (0.4f - 0.5f) / 0.25f;
    const float mean[3] = {0.5f, 0.5f, 0.5f}, stdv[3] = {0.25f, 0.25f, 0.25f};
    unsigned char rgb[H * W * 3];
    ck_assert_int_eq(lg_detect_image_to_rgb(chw, 3, H, W, mean, stdv, rgb, NULL), LG_OK);
    ck_assert_int_eq(rgb[0], 102); /* 0.4 * 255 */
    float boxes[8] = {5, 12, 30, 35, 40, 2, 60, 20};
    float scores[2] = {0.9f, 0.25f};
    int labels[2] = {1, 3};
    const char *names[2] = {"background", "circle"};
    ck_assert_int_eq(lg_detect_draw(rgb, H, W, boxes, scores, labels, 2, names, 2, NULL), LG_OK);
    const unsigned char *left = rgb + (20 * W + 5) * 3, *right = rgb + (20 * W + 29) * 3;
    ck_assert_int_eq(memcmp(left, right, 3), 0);
    ck_assert(left[0] != 102 || left[1] != 102 || left[2] != 102);
    ck_assert_int_eq(rgb[(25 * W + 15) * 3], 102); /* inside stays */
    ck_assert_int_eq(rgb[(25 * W + 3) * 3], 102);  /* outside stays */
    /* The tag sits above the box: its colour, with text pixels in it. */
    int tag = 0, ink = 0;
    for (int y = 3; y < 12; y++)
        for (int x = 5; x < 5 + 6 * 11; x++) {
            if (x >= W)
                break;
            const unsigned char *p = rgb + (y * W + x) * 3;
            tag += !memcmp(p, left, 3);
            ink += (p[0] == 0 && p[1] == 0 && p[2] == 0) ||
                   (p[0] == 255 && p[1] == 255 && p[2] == 255);
        }
    ck_assert_int_gt(tag, 100);
    ck_assert_int_gt(ink, 20);
    /* The second box's colour differs (another label). */
    ck_assert_int_ne(memcmp(rgb + (10 * W + 40) * 3, left, 3), 0);

    char dir[] = "/tmp/lgen_detect_XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/out.png", dir);
    ck_assert_int_eq(lg_detect_write_png(path, rgb, H, W, NULL), LG_OK);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    ck_assert(png_image_begin_read_from_file(&img, path));
    ck_assert_int_eq(img.width, W);
    ck_assert_int_eq(img.height, H);
    img.format = PNG_FORMAT_RGB;
    unsigned char back[H * W * 3];
    ck_assert(png_image_finish_read(&img, NULL, back, 0, NULL));
    ck_assert_int_eq(memcmp(back, rgb, sizeof rgb), 0);
    remove(path);
    lg_error err = {0};
    ck_assert_int_eq(lg_detect_write_png("/nonexistent/dir/x.png", rgb, H, W, &err), LG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/dir/x.png"));

    /* JSON: two images, D = 2 rows each, the second with one detection. */
    float jb[16] = {5, 12, 30, 35, 40, 2, 60, 20, 1.5f, 2.5f, 3.5f, 4.5f, 0, 0, 0, 0};
    float js[4] = {0.9f, 0.25f, 0.5f, 0};
    int jl[4] = {1, 3, 1, -1}, jc[2] = {2, 1};
    const char *image_names[2] = {"a.jpg", "b.jpg"};
    snprintf(path, sizeof path, "%s/out.json", dir);
    ck_assert_int_eq(lg_detect_write_json(path, image_names, 2, jb, js, jl, jc, 2, names, 2, NULL),
                     LG_OK);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(json_array_size(root), 2);
    json_t *i1 = json_array_get(root, 1);
    ck_assert_str_eq(json_string_value(json_object_get(i1, "image")), "b.jpg");
    json_t *d = json_array_get(json_object_get(i1, "detections"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(i1, "detections")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(d, "class")), "circle");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "label")), 1);
    ck_assert_float_eq_tol(json_real_value(json_array_get(json_object_get(d, "box"), 3)), 4.5,
                           1e-6);
    ck_assert_float_eq_tol(json_real_value(json_object_get(d, "score")), 0.5, 1e-6);
    json_t *d01 = json_array_get(json_object_get(json_array_get(root, 0), "detections"), 1);
    ck_assert_ptr_null(json_object_get(d01, "class")); /* label 3 has no name */
    json_decref(root);
    remove(path);
    rmdir(dir);
}
END_TEST

/* ---- VOC mAP ------------------------------------------------------------------------ */

/* Feeds the reference case to an evaluator, image by image. */
static void feed_voc(fixture *fx, lg_voc_eval *ev) {
    size_t nd, ng;
    const int32_t *di = fx_i32(fx, "det_image", &nd, NULL), *gi = fx_i32(fx, "gt_image", &ng, NULL);
    const int *dl = (const int *)fx_i32(fx, "det_label", NULL, NULL);
    const int *gl = (const int *)fx_i32(fx, "gt_label", NULL, NULL);
    size_t ndiff;
    const int32_t *gd32 = fx_i32(fx, "gt_difficult", &ndiff, NULL);
    uint8_t gd[256];
    ck_assert_uint_le(ndiff, sizeof gd);
    for (size_t i = 0; i < ndiff; i++)
        gd[i] = (uint8_t)gd32[i];
    const float *ds = fx_f32(fx, "det_score", NULL, NULL), *db = fx_f32(fx, "det_box", NULL, NULL);
    const float *gb = fx_f32(fx, "gt_box", NULL, NULL);
    int images = 0;
    for (size_t i = 0; i < nd; i++)
        images = di[i] + 1 > images ? di[i] + 1 : images;
    for (size_t i = 0; i < ng; i++)
        images = gi[i] + 1 > images ? gi[i] + 1 : images;
    size_t d = 0, g = 0;
    for (int im = 0; im < images; im++) {
        size_t d1 = d, g1 = g;
        while (d1 < nd && di[d1] == im)
            d1++;
        while (g1 < ng && gi[g1] == im)
            g1++;
        ck_assert_int_eq(lg_voc_eval_add(ev, db + 4 * d, ds + d, dl + d, (int)(d1 - d), gb + 4 * g,
                                         gl + g, gd + g, (int)(g1 - g), NULL),
                         LG_OK);
        d = d1;
        g = g1;
    }
    ck_assert_uint_eq(d, nd);
    ck_assert_uint_eq(g, ng);
}

START_TEST(test_voc_map) {
    fixture *fx = fx_open("voc_map");
    lg_voc_eval ev;
    ck_assert_int_eq(lg_voc_eval_init(&ev, 5, NULL), LG_OK);
    const struct {
        const char *key;
        lg_voc_map_config cfg;
    } cases[4] = {{"auc_px0", {0.5f, 0, 0}},
                  {"auc_px1", {0.5f, 0, 1}},
                  {"07_px0", {0.5f, 1, 0}},
                  {"07_px1", {0.5f, 1, 1}}};
    for (int c = 0; c < 4; c++) {
        /* Each variant on a fresh accumulation, the last one twice (reset). */
        lg_voc_eval_reset(&ev);
        feed_voc(fx, &ev);
        float ap[5], map;
        ck_assert_int_eq(lg_voc_eval_compute(&ev, &cases[c].cfg, ap, &map, NULL), LG_OK);
        char key[32];
        snprintf(key, sizeof key, "ap_%s", cases[c].key);
        const double *want = fx_f64(fx, key, NULL, NULL);
        for (int k = 0; k < 5; k++) {
            if (isnan(want[k])) {
                ck_assert_msg(isnan(ap[k]), "%s class %d: got %g, expected NaN", key, k, ap[k]);
                continue;
            }
            ck_assert_msg(fabs(ap[k] - want[k]) < 1e-6, "%s class %d: got %.8f, expected %.8f", key,
                          k, ap[k], want[k]);
        }
        snprintf(key, sizeof key, "map_%s", cases[c].key);
        double wm = fx_f64(fx, key, NULL, NULL)[0];
        ck_assert_msg(fabs(map - wm) < 1e-6, "%s: got %.8f, expected %.8f", key, map, wm);
    }
    lg_error err = {0};
    int bad_label = 7;
    float box[4] = {0, 0, 1, 1}, score = 1;
    ck_assert_int_eq(lg_voc_eval_add(&ev, box, &score, &bad_label, 1, NULL, NULL, NULL, 0, &err),
                     LG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "label 7"));
    lg_voc_eval_free(&ev);
    fx_close(fx);
}
END_TEST

START_TEST(test_voc_map_small_cases) {
    /* Hand-checked: two gts of class 1, one difficult of class 1. */
    lg_voc_eval ev;
    lg_voc_eval_init(&ev, 2, NULL);
    float gt[12] = {0, 0, 10, 10, 20, 20, 30, 30, 40, 40, 50, 50};
    int gl[3] = {1, 1, 1};
    uint8_t gd[3] = {0, 0, 1};
    /* d0 hits gt0 (tp), d1 hits the difficult box (ignored), d2 duplicate of
     * gt0 (fp), d3 hits gt1 (tp). Precision/recall after each: (1, .5)
     * (1, .5) (1/2, .5) (2/3, 1) -> AUC = .5 * 1 + .5 * 2/3 = .8333;
     * 11-point: (6 * 1 + 5 * 2/3) / 11 = .848485. */
    float det[16] = {0, 0, 10, 10, 40, 40, 50, 50, 1, 1, 10, 10, 20, 20, 30, 30};
    float sc[4] = {0.9f, 0.8f, 0.7f, 0.6f};
    int dl[4] = {1, 1, 1, 1};
    lg_voc_eval_add(&ev, det, sc, dl, 4, gt, gl, gd, 3, NULL);
    float ap[2], map;
    lg_voc_map_config auc = {0.5f, 0, 0}, p11 = {0.5f, 1, 0};
    lg_voc_eval_compute(&ev, &auc, ap, &map, NULL);
    ck_assert(isnan(ap[0]));
    ck_assert_float_eq_tol(ap[1], 0.5f + 0.5f * 2 / 3, 1e-6f);
    ck_assert_float_eq_tol(map, 0.5f + 0.5f * 2 / 3, 1e-6f);
    lg_voc_eval_compute(&ev, &p11, ap, &map, NULL);
    ck_assert_float_eq_tol(ap[1], (6 + 5 * 2.0f / 3) / 11, 1e-6f);
    /* Computing again (the other variant, then this one) changes nothing. */
    lg_voc_eval_compute(&ev, &auc, ap, &map, NULL);
    ck_assert_float_eq_tol(ap[1], 0.5f + 0.5f * 2 / 3, 1e-6f);
    lg_voc_eval_free(&ev);
}
END_TEST

static Suite *detect_suite(void) {
    Suite *s = suite_create("detect");
    TCase *boxes = tcase_create("boxes");
    tcase_add_test(boxes, test_anchors_fpn);
    tcase_add_test(boxes, test_anchors_single_level);
    tcase_add_test(boxes, test_box_coder);
    tcase_add_test(boxes, test_iou_and_matcher);
    tcase_add_test(boxes, test_nms);
    tcase_add_test(boxes, test_sampler);
    tcase_add_test(boxes, test_select_top);
    suite_add_tcase(s, boxes);
    TCase *rpn = tcase_create("rpn");
    tcase_add_test(rpn, test_proposals);
    tcase_add_test(rpn, test_rpn_targets);
    tcase_add_test(rpn, test_rpn_loss);
    tcase_add_test(rpn, test_rpn_permute);
    tcase_add_test(rpn, test_non_finite_inputs);
    suite_add_tcase(s, rpn);
    TCase *roi = tcase_create("roi");
    tcase_set_timeout(roi, 60);
    tcase_add_test(roi, test_roi_align);
    tcase_add_test(roi, test_multiscale_roi_align);
    tcase_add_test(roi, test_fastrcnn_loss);
    tcase_add_test(roi, test_roi_sample);
    tcase_add_test(roi, test_detections);
    suite_add_tcase(s, roi);
    TCase *batch = tcase_create("batch");
    tcase_add_test(batch, test_proposals_batch);
    tcase_add_test(batch, test_rpn_loss_batch);
    tcase_add_test(batch, test_roi_sample_batch);
    tcase_add_test(batch, test_detections_batch);
    suite_add_tcase(s, batch);
    TCase *out = tcase_create("predict");
    tcase_add_test(out, test_predict_output);
    suite_add_tcase(s, out);
    TCase *voc = tcase_create("voc_map");
    tcase_add_test(voc, test_voc_map);
    tcase_add_test(voc, test_voc_map_small_cases);
    suite_add_tcase(s, voc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(detect_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
