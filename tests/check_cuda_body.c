/* check_cuda_body.c — the CUDA kernels' per-thread bodies, run on the CPU.
 *
 * runtime/cuda/body.h holds the body of every kernel the CUDA backend writes
 * itself; kernels.cu launches them on the GPU. Here each body runs over its
 * whole grid on the host (no GPU, no CUDA toolkit needed) and its results are
 * compared with PyTorch's on the same inputs (tests/cuda/fixtures/NAME.txt,
 * written by tests/cuda/gen_fixtures.py): fp16/bf16 conversions bit for bit,
 * activations, cross entropy, accuracy, SGD/Adam/AdamW over several steps,
 * GradScaler's update rule, torchvision's NMS and RoIAlign. The same bodies
 * run on a device in tests/gpu/ (make check-gpu).
 */
#include "../runtime/cuda/body.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures: lines of "key: v1 v2 ..." -------------------------------- */

static char *fixture_text(const char *name) {
    const char *dir = getenv("LGEN_SRCDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/cuda/fixtures/%s", dir ? dir : ".", name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open '%s': %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* The numbers after "key:" as doubles; *count gets how many. */
static double *fixture_values(const char *text, const char *key, size_t *count) {
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s: ", key);
    const char *p = strstr(text, pat);
    ck_assert_msg(p != NULL, "fixture key '%s' missing", key);
    p += strlen(pat);
    size_t cap = 64, n = 0;
    double *v = malloc(cap * sizeof *v);
    for (;;) {
        char *end;
        double d = strtod(p, &end);
        if (end == p)
            break;
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = d;
        p = end;
        if (*p == '\n')
            break;
    }
    *count = n;
    return v;
}

static float *fixture_floats(const char *text, const char *key, size_t expect) {
    size_t n;
    double *d = fixture_values(text, key, &n);
    if (expect)
        ck_assert_msg(n == expect, "'%s': %zu values, expected %zu", key, n, expect);
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    free(d);
    return f;
}

static int32_t *fixture_ints(const char *text, const char *key, size_t *count) {
    double *d = fixture_values(text, key, count);
    int32_t *v = malloc((*count ? *count : 1) * sizeof *v);
    for (size_t i = 0; i < *count; i++)
        v[i] = (int32_t)d[i];
    free(d);
    return v;
}

/* |a - b| <= atol + rtol |b|, else a failure naming the element. */
static void assert_close(const char *what, const float *a, const float *b, size_t n, double rtol,
                         double atol) {
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        ck_assert_msg(diff <= atol + rtol * fabs((double)b[i]), "%s[%zu]: got %.9g, expected %.9g",
                      what, i, (double)a[i], (double)b[i]);
    }
}

/* ---- fp16 / bf16 --------------------------------------------------------- */

START_TEST(test_f32_to_f16_matches_torch) {
    char *t = fixture_text("half.txt");
    size_t n, n16;
    double *bits = fixture_values(t, "f32_bits", &n);
    double *f16 = fixture_values(t, "f16_bits", &n16);
    ck_assert_uint_eq(n, n16);
    ck_assert_uint_gt(n, 5000);
    for (size_t i = 0; i < n; i++) {
        float x = lg_cuk_u2f((uint32_t)bits[i]);
        uint16_t h = lg_cuk_f32_to_f16(x);
        ck_assert_msg(h == (uint16_t)f16[i], "f16(%a = 0x%08x): got 0x%04x, torch 0x%04x", (double)x,
                      (unsigned)bits[i], h, (unsigned)f16[i]);
    }
    ck_assert_uint_eq(lg_cuk_f32_to_f16(NAN), 0x7e00);
    ck_assert_uint_eq(lg_cuk_f32_to_f16(-NAN), 0xfe00);
    free(bits), free(f16), free(t);
}
END_TEST

START_TEST(test_f32_to_bf16_matches_torch) {
    char *t = fixture_text("half.txt");
    size_t n, nb;
    double *bits = fixture_values(t, "f32_bits", &n);
    double *bf = fixture_values(t, "bf16_bits", &nb);
    ck_assert_uint_eq(n, nb);
    for (size_t i = 0; i < n; i++) {
        float x = lg_cuk_u2f((uint32_t)bits[i]);
        uint16_t b = lg_cuk_f32_to_bf16(x);
        ck_assert_msg(b == (uint16_t)bf[i], "bf16(%a): got 0x%04x, torch 0x%04x", (double)x, b,
                      (unsigned)bf[i]);
    }
    /* NaN stays NaN (torch's CPU path and CUDA pick different payloads). */
    ck_assert(isnan(lg_cuk_bf16_to_f32(lg_cuk_f32_to_bf16(NAN))));
    free(bits), free(bf), free(t);
}
END_TEST

/* Every one of the 65536 half patterns against an independent decoding. */
START_TEST(test_f16_to_f32_exhaustive) {
    for (uint32_t h = 0; h < 65536; h++) {
        int s = (int)(h >> 15), e = (int)(h >> 10) & 31, m = (int)(h & 1023);
        float got = lg_cuk_f16_to_f32((uint16_t)h);
        if (e == 31) {
            ck_assert(m ? isnan(got) : isinf(got));
            ck_assert_int_eq(!!signbit(got), s);
            continue;
        }
        double v = e == 0 ? ldexp((double)m, -24) : ldexp(1.0 + m / 1024.0, e - 15);
        v = s ? -v : v;
        ck_assert_msg((double)got == v && !!signbit(got) == s, "0x%04x: got %a, expected %a",
                      (unsigned)h, (double)got, v);
        ck_assert_uint_eq(lg_cuk_f32_to_f16(got), h); /* round trip */
    }
}
END_TEST

START_TEST(test_bf16_round_trip_exhaustive) {
    for (uint32_t b = 0; b < 65536; b++) {
        float f = lg_cuk_bf16_to_f32((uint16_t)b);
        if (isnan(f))
            continue;
        ck_assert_uint_eq(lg_cuk_f32_to_bf16(f), b);
    }
    /* ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 */
    ck_assert_uint_eq(lg_cuk_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    ck_assert_uint_eq(lg_cuk_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
}
END_TEST

START_TEST(test_load_store_by_dtype) {
    float f32[3] = {0};
    uint16_t h[3] = {0}, b[3] = {0};
    const float v[3] = {1.0f / 3.0f, -70000.0f, 1e-6f};
    for (size_t i = 0; i < 3; i++) {
        lg_cuk_store(f32, i, LG_CUDA_F32, v[i]);
        lg_cuk_store(h, i, LG_CUDA_F16, v[i]);
        lg_cuk_store(b, i, LG_CUDA_BF16, v[i]);
    }
    ck_assert(lg_cuk_load(f32, 0, LG_CUDA_F32) == v[0]);
    ck_assert(lg_cuk_load(h, 0, LG_CUDA_F16) == 0.333251953125f);
    ck_assert(isinf(lg_cuk_load(h, 1, LG_CUDA_F16)));
    ck_assert(lg_cuk_load(b, 1, LG_CUDA_BF16) == -70144.0f);
    ck_assert(lg_cuk_load(h, 2, LG_CUDA_F16) == 0x11p-24f); /* subnormal: 16.78 * 2^-24 -> 17 */
}
END_TEST

/* ---- activations --------------------------------------------------------- */

START_TEST(test_activations_match_torch) {
    static const struct {
        const char *name;
        lg_cuda_act act;
        float alpha;
    } acts[] = {
        {"relu", LG_CUDA_ACT_RELU, 0},       {"leaky_relu", LG_CUDA_ACT_LEAKY_RELU, 0.1f},
        {"sigmoid", LG_CUDA_ACT_SIGMOID, 0}, {"tanh", LG_CUDA_ACT_TANH, 0},
        {"gelu", LG_CUDA_ACT_GELU, 0},       {"gelu_tanh", LG_CUDA_ACT_GELU_TANH, 0},
        {"silu", LG_CUDA_ACT_SILU, 0},
    };
    char *t = fixture_text("act.txt");
    size_t n;
    double *xd = fixture_values(t, "x", &n);
    free(xd);
    float *x = fixture_floats(t, "x", n), *dy = fixture_floats(t, "dy", n);
    float *y = malloc(n * sizeof *y), *dx = malloc(n * sizeof *dx);
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        char key[64];
        snprintf(key, sizeof key, "%s_y", acts[a].name);
        float *ry = fixture_floats(t, key, n);
        snprintf(key, sizeof key, "%s_dx", acts[a].name);
        float *rdx = fixture_floats(t, key, n);
        for (size_t i = 0; i < n; i++) /* the grid */
            y[i] = lg_cuk_act_forward(acts[a].act, x[i], acts[a].alpha);
        for (size_t i = 0; i < n; i++)
            dx[i] = lg_cuk_act_backward(acts[a].act, x[i], y[i], dy[i], acts[a].alpha);
        assert_close(acts[a].name, y, ry, n, 2e-6, 1e-6);
        assert_close(acts[a].name, dx, rdx, n, 2e-6, 1e-6);
        free(ry), free(rdx);
    }
    ck_assert(isnan(lg_cuk_act_forward(LG_CUDA_ACT_RELU, NAN, 0))); /* torch propagates NaN */
    free(x), free(dy), free(y), free(dx), free(t);
}
END_TEST

START_TEST(test_bias_grad) {
    enum { N = 5, OUT = 3 };
    float dy[N * OUT], db[OUT] = {100, 100, 100};
    for (int i = 0; i < N * OUT; i++)
        dy[i] = (float)(i % 7) - 2.5f;
    for (size_t j = 0; j < OUT; j++)
        lg_cuk_bias_grad(j, LG_CUDA_F32, dy, N, OUT, db, 1);
    for (int j = 0; j < OUT; j++) {
        double s = 100;
        for (int n = 0; n < N; n++)
            s += dy[n * OUT + j];
        ck_assert_double_eq_tol(db[j], s, 1e-5);
    }
    uint16_t dyh[N * OUT], dbh[OUT];
    for (int i = 0; i < N * OUT; i++)
        dyh[i] = lg_cuk_f32_to_f16(dy[i]);
    for (size_t j = 0; j < OUT; j++)
        lg_cuk_bias_grad(j, LG_CUDA_F16, dyh, N, OUT, dbh, 0);
    for (int j = 0; j < OUT; j++)
        ck_assert_double_eq_tol(lg_cuk_f16_to_f32(dbh[j]), db[j] - 100, 1e-2);
    /* a convolution's bias gradient over NCHW (the bf16 path), accumulating */
    {
        enum { CN = 2, CC = 3, HW = 4 };
        float g[CN * CC * HW], cdb[CC] = {1, 2, 3};
        for (int i = 0; i < CN * CC * HW; i++)
            g[i] = (float)((i * 5) % 11) - 4.0f;
        for (size_t c = 0; c < CC; c++)
            lg_cuk_conv_bias_grad(c, LG_CUDA_F32, g, CN, CC, HW, cdb, 1);
        for (int c = 0; c < CC; c++) {
            double s = c + 1;
            for (int n = 0; n < CN; n++)
                for (int k = 0; k < HW; k++)
                    s += g[(n * CC + c) * HW + k];
            ck_assert_double_eq_tol(cdb[c], s, 1e-5);
        }
        uint16_t gb[CN * CC * HW], dbb[CC];
        for (int i = 0; i < CN * CC * HW; i++)
            gb[i] = lg_cuk_f32_to_bf16(g[i]);
        for (size_t c = 0; c < CC; c++)
            lg_cuk_conv_bias_grad(c, LG_CUDA_BF16, gb, CN, CC, HW, dbb, 0);
        for (int c = 0; c < CC; c++)
            ck_assert_double_eq_tol(lg_cuk_bf16_to_f32(dbb[c]), cdb[c] - (c + 1), 0.05);
    }
    /* the bias add of the unaligned linear path: y[n, j] += b[j] */
    float y[N * OUT], b[OUT] = {1.5f, -2.0f, 0.25f};
    memcpy(y, dy, sizeof y);
    for (size_t i = 0; i < N * OUT; i++)
        lg_cuk_bias_add(i, LG_CUDA_F32, y, b, OUT);
    for (int i = 0; i < N * OUT; i++)
        ck_assert_float_eq(y[i], dy[i] + b[i % OUT]);
}
END_TEST

/* ---- cross entropy and accuracy ------------------------------------------ */

START_TEST(test_cross_entropy_matches_torch) {
    char *t = fixture_text("ce.txt");
    size_t nd, nl;
    double *dims = fixture_values(t, "dims", &nd);
    int N = (int)dims[0], C = (int)dims[1];
    free(dims);
    float *logits = fixture_floats(t, "logits", (size_t)N * C);
    int32_t *labels = fixture_ints(t, "labels", &nl);
    ck_assert_uint_eq(nl, (size_t)N);
    float *weight = fixture_floats(t, "weight", (size_t)C);
    static const struct {
        const char *tag;
        int weighted;
        float ls;
        int sum;
    } cases[] = {{"plain", 0, 0.0f, 0}, {"smooth", 0, 0.1f, 0}, {"weighted", 1, 0.2f, 0},
                 {"sum", 1, 0.0f, 1}};
    float row_loss[64], row_w[64], lse[64], dl[64 * 8];
    for (size_t k = 0; k < 4; k++) {
        lg_cuda_ce d = {N, C, cases[k].ls, -100, cases[k].sum};
        const float *w = cases[k].weighted ? weight : NULL;
        for (size_t i = 0; i < (size_t)N; i++)
            lg_cuk_ce_row(i, &d, logits, labels, w, row_loss, row_w, lse);
        float ls = 0, ws = 0, loss, divisor;
        for (int i = 0; i < N; i++)
            ls += row_loss[i], ws += row_w[i];
        lg_cuk_ce_finish(&d, ls, ws, &loss, &divisor);
        float wsum = (float)C;
        if (w)
            for (int c = wsum = 0; c < C; c++)
                wsum += w[c];
        for (size_t idx = 0; idx < (size_t)N * C; idx++)
            lg_cuk_ce_backward(idx, &d, logits, labels, w, wsum, lse, 2.0f, divisor, dl);
        char key[64];
        snprintf(key, sizeof key, "%s_loss", cases[k].tag);
        float *rloss = fixture_floats(t, key, 1);
        snprintf(key, sizeof key, "%s_dlogits", cases[k].tag);
        float *rdl = fixture_floats(t, key, (size_t)N * C);
        assert_close(cases[k].tag, &loss, rloss, 1, 1e-6, 1e-6);
        assert_close(cases[k].tag, dl, rdl, (size_t)N * C, 1e-5, 1e-7);
        free(rloss), free(rdl);
    }
    /* a label out of range poisons the loss instead of reading out of bounds */
    lg_cuda_ce d = {N, C, 0, -100, 0};
    int32_t bad = C;
    lg_cuk_ce_row(0, &d, logits, &bad, NULL, row_loss, row_w, lse);
    ck_assert(isnan(row_loss[0]));
    /* accuracy: the row body, then the mean */
    float acc = 0;
    for (size_t i = 0; i < (size_t)N; i++)
        acc += lg_cuk_accuracy_row(i, logits, labels, C);
    acc /= (float)N;
    float *racc = fixture_floats(t, "accuracy", 1);
    assert_close("accuracy", &acc, racc, 1, 0, 1e-7);
    free(racc), free(logits), free(labels), free(weight), free(t);
}
END_TEST

/* ---- optimizers ----------------------------------------------------------- */

START_TEST(test_optimizers_match_torch) {
    char *t = fixture_text("optim.txt");
    size_t k;
    double *ns = fixture_values(t, "n_steps", &k);
    size_t n = (size_t)ns[0], steps = (size_t)ns[1];
    free(ns);
    float *p0 = fixture_floats(t, "param0", n), *grads = fixture_floats(t, "grads", n * steps);
    float p[64], buf[64], m[64], v[64], vmax[64];
    static const struct {
        const char *name;
        lg_cuda_sgd h;
    } sgds[] = {
        {"sgd", {0.1f, 0, 0, 0, 0, 0}},
        {"sgd_momentum", {0.1f, 0.9f, 0.1f, 5e-4f, 0, 0}},
        {"sgd_nesterov", {0.05f, 0.9f, 0, 1e-3f, 1, 0}},
    };
    for (size_t c = 0; c < 3; c++) {
        memcpy(p, p0, n * sizeof *p);
        for (size_t s = 0; s < steps; s++)
            for (size_t i = 0; i < n; i++)
                lg_cuk_sgd_update(i, &sgds[c].h, s == 0, p, grads + s * n, buf, NULL);
        float *ref = fixture_floats(t, sgds[c].name, n);
        assert_close(sgds[c].name, p, ref, n, 1e-6, 1e-7);
        free(ref);
    }
    static const struct {
        const char *name;
        lg_cuda_adam h;
    } adams[] = {
        {"adam", {0.01f, 0.9f, 0.999f, 1e-8f, 1e-2f, 0, 0, 0}},
        {"adam_amsgrad", {0.01f, 0.9f, 0.999f, 1e-8f, 0, 0, 1, 0}},
        {"adamw", {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 0, 0}},
    };
    for (size_t c = 0; c < 3; c++) {
        memcpy(p, p0, n * sizeof *p);
        memset(m, 0, sizeof m), memset(v, 0, sizeof v), memset(vmax, 0, sizeof vmax);
        lg_cuk_adam_step st = {0};
        for (size_t s = 0; s < steps; s++) {
            lg_cuk_adam_prepare(&adams[c].h, &st, NULL);
            for (size_t i = 0; i < n; i++)
                lg_cuk_adam_update(i, &adams[c].h, &st, p, grads + s * n, m, v, vmax, NULL);
        }
        ck_assert_int_eq(st.step, (int64_t)steps);
        float *ref = fixture_floats(t, adams[c].name, n);
        assert_close(adams[c].name, p, ref, n, 1e-6, 1e-7);
        free(ref);
    }
    free(p0), free(grads), free(t);
}
END_TEST

START_TEST(test_skipped_step_changes_nothing) {
    float p[4] = {1, 2, 3, 4}, g[4] = {1, 1, 1, 1}, b[4] = {5, 5, 5, 5}, m[4] = {0}, v[4] = {0};
    int skip = 1;
    lg_cuda_sgd sgd = {0.1f, 0.9f, 0, 0, 0, 0};
    lg_cuda_adam adam = {0.1f, 0.9f, 0.999f, 1e-8f, 0, 0, 0, 0};
    lg_cuk_adam_step st = {0};
    for (size_t i = 0; i < 4; i++)
        lg_cuk_sgd_update(i, &sgd, 0, p, g, b, &skip);
    lg_cuk_adam_prepare(&adam, &st, &skip);
    for (size_t i = 0; i < 4; i++)
        lg_cuk_adam_update(i, &adam, &st, p, g, m, v, NULL, &skip);
    ck_assert_int_eq(st.step, 0);
    ck_assert(p[0] == 1 && p[3] == 4 && b[0] == 5 && m[0] == 0);
    skip = 0;
    for (size_t i = 0; i < 4; i++)
        lg_cuk_sgd_update(i, &sgd, 0, p, g, b, &skip);
    ck_assert_float_eq_tol(b[0], 0.9f * 5 + 1, 1e-6f);
    ck_assert_float_eq_tol(p[0], 1 - 0.1f * (0.9f * 5 + 1), 1e-6f);
}
END_TEST

/* ---- loss scaling ---------------------------------------------------------- */

START_TEST(test_scaler_matches_torch) {
    char *t = fixture_text("scaler.txt");
    size_t n, k;
    int32_t *found = fixture_ints(t, "found_inf", &n);
    static const char *const tags[] = {"default", "huge"};
    for (size_t c = 0; c < 2; c++) {
        char key[64];
        snprintf(key, sizeof key, "%s_init", tags[c]);
        double *init = fixture_values(t, key, &k);
        lg_cuda_scaler s = LG_CUDA_SCALER_INIT;
        s.scale = (float)init[0];
        s.growth_interval = (int32_t)init[1];
        snprintf(key, sizeof key, "%s_scale", tags[c]);
        float *scales = fixture_floats(t, key, n);
        snprintf(key, sizeof key, "%s_tracker", tags[c]);
        int32_t *trackers = fixture_ints(t, key, &k);
        for (size_t i = 0; i < n; i++) {
            lg_cuk_scaler_update(&s, found[i]);
            ck_assert_msg(s.scale == scales[i] && s.growth_tracker == trackers[i],
                          "%s step %zu: scale %g tracker %d, torch %g %d", tags[c], i,
                          (double)s.scale, s.growth_tracker, (double)scales[i], trackers[i]);
        }
        free(init), free(scales), free(trackers);
    }
    free(found), free(t);
}
END_TEST

START_TEST(test_scaler_defaults_and_unscale) {
    lg_cuda_scaler s = LG_CUDA_SCALER_INIT;
    ck_assert(s.scale == 65536.0f && s.growth_factor == 2.0f && s.backoff_factor == 0.5f);
    ck_assert_int_eq(s.growth_interval, 2000);
    for (int i = 0; i < 1999; i++)
        lg_cuk_scaler_update(&s, 0);
    ck_assert(s.scale == 65536.0f);
    lg_cuk_scaler_update(&s, 0);
    ck_assert(s.scale == 131072.0f && s.growth_tracker == 0);
    lg_cuk_scaler_update(&s, 1);
    ck_assert(s.scale == 65536.0f);

    /* unscale an f16 gradient block: values divided, flag raised only by
     * inf/NaN (65520 overflows f16 to inf) */
    const float g[5] = {65536.0f, -32768.0f, 1.5f, 0.0f, 60000.0f};
    uint16_t gh[5];
    float out[5];
    int found = 0;
    for (size_t i = 0; i < 5; i++)
        gh[i] = lg_cuk_f32_to_f16(g[i] / 2.0f);
    for (size_t i = 0; i < 5; i++)
        out[i] = lg_cuk_unscale(lg_cuk_load(gh, i, LG_CUDA_F16), 1.0f / 32768.0f, &found);
    ck_assert_int_eq(found, 0);
    ck_assert(out[0] == 1.0f && out[1] == -0.5f && out[3] == 0.0f);
    gh[2] = lg_cuk_f32_to_f16(70000.0f);
    (void)lg_cuk_unscale(lg_cuk_load(gh, 2, LG_CUDA_F16), 1.0f, &found);
    ck_assert_int_eq(found, 1);
    found = 0;
    (void)lg_cuk_unscale(NAN, 1.0f, &found);
    ck_assert_int_eq(found, 1);
}
END_TEST

/* ---- detection -------------------------------------------------------------- */

/* The whole NMS pipeline as the launcher runs it: rank, scatter, gather,
 * mask, reduce. */
static int run_nms(const float *boxes, const float *scores, size_t n, float thresh, int *keep,
                   int max_keep) {
    size_t blocks = (n + LG_CUK_NMS_BLOCK - 1) / LG_CUK_NMS_BLOCK;
    int *order = malloc(n * sizeof *order);
    float *sorted = malloc(4 * n * sizeof *sorted);
    uint64_t *mask = malloc(n * blocks * sizeof *mask), *removed = malloc(blocks * sizeof *removed);
    for (size_t i = 0; i < n; i++)
        order[lg_cuk_rank_desc(i, scores, n)] = (int)i;
    for (size_t r = 0; r < n; r++)
        memcpy(sorted + 4 * r, boxes + 4 * (size_t)order[r], 4 * sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < blocks; b++)
            lg_cuk_nms_mask(i, b, sorted, NULL, n, thresh, mask);
    int num = -1;
    lg_cuk_nms_reduce(n, mask, removed, order, keep, &num, max_keep);
    free(order), free(sorted), free(mask), free(removed);
    return num;
}

START_TEST(test_nms_matches_torchvision) {
    char *t = fixture_text("detect.txt");
    size_t k, nk;
    double *nd = fixture_values(t, "n", &k);
    size_t n = (size_t)nd[0];
    free(nd);
    float *boxes = fixture_floats(t, "boxes", 4 * n), *scores = fixture_floats(t, "scores", n);
    int32_t *ref = fixture_ints(t, "nms_keep", &nk);
    int *keep = malloc(n * sizeof *keep);
    int num = run_nms(boxes, scores, n, 0.5f, keep, (int)n);
    ck_assert_int_eq(num, (int)nk);
    for (size_t i = 0; i < nk; i++)
        ck_assert_msg(keep[i] == ref[i], "keep[%zu]: got %d, torchvision %d", i, keep[i], ref[i]);
    /* max_keep truncates in score order */
    ck_assert_int_eq(run_nms(boxes, scores, n, 0.5f, keep, 5), 5);
    ck_assert_int_eq(keep[4], ref[4]);
    free(keep), free(ref), free(boxes), free(scores), free(t);
}
END_TEST

START_TEST(test_roi_align_matches_torchvision) {
    char *t = fixture_text("detect.txt");
    size_t k;
    double *dd = fixture_values(t, "roi_dims", &k);
    int N = (int)dd[0], C = (int)dd[1], H = (int)dd[2], W = (int)dd[3], K = (int)dd[4];
    free(dd);
    size_t nfeat = (size_t)N * C * H * W, nout = (size_t)K * C * 3 * 4;
    float *feat = fixture_floats(t, "feat", nfeat), *rois = fixture_floats(t, "rois", 5 * (size_t)K);
    float *out = malloc(nout * sizeof *out), *dout = malloc(nout * sizeof *dout);
    float *dfeat = malloc(nfeat * sizeof *dfeat);
    for (size_t i = 0; i < nout; i++) /* torch.linspace(-1, 1, n) */
        dout[i] = (float)(-1.0 + 2.0 * (double)i / (double)(nout - 1));
    static const struct {
        const char *tag;
        int aligned, sr;
    } cases[] = {{"a0s2", 0, 2}, {"a1s2", 1, 2}, {"a0s0", 0, 0}};
    for (size_t c = 0; c < 3; c++) {
        lg_cuda_roi_align d = {.C = C, .PH = 3, .PW = 4, .sampling_ratio = cases[c].sr,
                               .aligned = cases[c].aligned, .levels = 1, .k_min = 2};
        d.H[0] = H, d.W[0] = W, d.spatial_scale[0] = 0.25f;
        const float *levels[1] = {feat};
        float *dlevels[1] = {dfeat};
        for (size_t i = 0; i < nout; i++)
            lg_cuk_roi_align_forward(i, &d, levels, rois, out);
        memset(dfeat, 0, nfeat * sizeof *dfeat);
        for (size_t i = 0; i < nout; i++)
            lg_cuk_roi_align_backward(i, &d, dlevels, rois, dout);
        char key[64];
        snprintf(key, sizeof key, "%s_out", cases[c].tag);
        float *rout = fixture_floats(t, key, nout);
        snprintf(key, sizeof key, "%s_dfeat", cases[c].tag);
        float *rdf = fixture_floats(t, key, nfeat);
        assert_close(key, out, rout, nout, 1e-5, 1e-6);
        assert_close(key, dfeat, rdf, nfeat, 1e-5, 1e-6);
        free(rout), free(rdf);
    }
    free(feat), free(rois), free(out), free(dout), free(dfeat), free(t);
}
END_TEST

START_TEST(test_roi_levels_match_torchvision) {
    char *t = fixture_text("detect.txt");
    size_t n, nl;
    float *sizes = fixture_floats(t, "level_sizes", 0);
    double *cnt = fixture_values(t, "level_sizes", &n);
    free(cnt);
    int32_t *ref = fixture_ints(t, "levels", &nl);
    ck_assert_uint_eq(n, nl);
    lg_cuda_roi_align d = {.C = 1, .PH = 1, .PW = 1, .levels = 4, .k_min = 2};
    for (size_t i = 0; i < n; i++) {
        float roi[5] = {0, 0, 0, sizes[i], sizes[i]};
        ck_assert_msg(lg_cuk_roi_level(&d, roi) == ref[i], "box %g: level %d, torchvision %d",
                      (double)sizes[i], lg_cuk_roi_level(&d, roi), ref[i]);
    }
    free(sizes), free(ref), free(t);
}
END_TEST

/* Two levels: each RoI's output equals a single-level run on its level. */
START_TEST(test_roi_align_multilevel) {
    enum { C = 2, H0 = 16, W0 = 16, H1 = 8, W1 = 8 };
    float f0[C * H0 * W0], f1[C * H1 * W1];
    for (int i = 0; i < C * H0 * W0; i++)
        f0[i] = sinf(0.1f * (float)i);
    for (int i = 0; i < C * H1 * W1; i++)
        f1[i] = cosf(0.3f * (float)i);
    /* a 40-pixel box (level k=2) and a 200-pixel box (k=3) at strides 4, 8 */
    const float rois[10] = {0, 4, 4, 44, 44, 0, 10, 10, 210, 210};
    lg_cuda_roi_align d = {.C = C, .PH = 2, .PW = 2, .sampling_ratio = 2, .levels = 2, .k_min = 2};
    d.H[0] = H0, d.W[0] = W0, d.spatial_scale[0] = 0.25f;
    d.H[1] = H1, d.W[1] = W1, d.spatial_scale[1] = 0.125f;
    const float *both[2] = {f0, f1};
    float out[2 * C * 4], single[C * 4];
    for (size_t i = 0; i < 2 * C * 4; i++)
        lg_cuk_roi_align_forward(i, &d, both, rois, out);
    ck_assert_int_eq(lg_cuk_roi_level(&d, rois), 0);
    ck_assert_int_eq(lg_cuk_roi_level(&d, rois + 5), 1);
    for (int r = 0; r < 2; r++) {
        lg_cuda_roi_align one = d;
        one.levels = 1;
        one.H[0] = d.H[r], one.W[0] = d.W[r], one.spatial_scale[0] = d.spatial_scale[r];
        const float *lv[1] = {both[r]};
        for (size_t i = 0; i < C * 4; i++)
            lg_cuk_roi_align_forward(i, &one, lv, rois + 5 * r, single);
        assert_close("multilevel", out + r * C * 4, single, C * 4, 0, 0);
    }
}
END_TEST

/* ---- dense ops against PyTorch (fixtures/dense.txt) ----------------------------- */

/* layer_norm forward and backward in f32, and forward on f16 / bf16
 * inputs against torch's half and bfloat16 layer_norm (one rounding apart
 * at most: torch computes in float, the body in double). */
START_TEST(test_layer_norm_matches_torch) {
    enum { R = 6, D = 10 };
    char *t = fixture_text("dense.txt");
    float *x = fixture_floats(t, "ln_x", R * D), *w = fixture_floats(t, "ln_w", D), *b = fixture_floats(t, "ln_b", D);
    float *ry = fixture_floats(t, "ln_y", R * D), *dy = fixture_floats(t, "ln_dy", R * D);
    float *rdx = fixture_floats(t, "ln_dx", R * D), *rdw = fixture_floats(t, "ln_dw", D);
    float *rdb = fixture_floats(t, "ln_db", D);
    float y[R * D], dx[R * D], dw[D] = {0}, db[D] = {0}, sm[R], si[R];
    for (size_t r = 0; r < R; r++)
        lg_cuk_layer_norm_forward(r, LG_CUDA_F32, D, 1e-5f, x, w, b, y, sm, si);
    for (size_t r = 0; r < R; r++)
        lg_cuk_layer_norm_backward(r, LG_CUDA_F32, D, x, w, sm, si, dy, dx);
    for (size_t k = 0; k < D; k++)
        lg_cuk_layer_norm_param_grad(k, LG_CUDA_F32, R, D, x, sm, si, dy, dw, db);
    assert_close("layer_norm", y, ry, R * D, 1e-5, 1e-6);
    assert_close("layer_norm dx", dx, rdx, R * D, 1e-5, 1e-6);
    assert_close("layer_norm dweight", dw, rdw, D, 1e-5, 1e-6);
    assert_close("layer_norm dbias", db, rdb, D, 1e-5, 1e-6);
    static const struct {
        int dt;
        const char *key;
        double ulp;
    } half[] = {{LG_CUDA_F16, "ln_y_f16", 1.0 / 1024}, {LG_CUDA_BF16, "ln_y_bf16", 1.0 / 128}};
    for (int k = 0; k < 2; k++) {
        int dt = half[k].dt;
        uint16_t xh[R * D], wh[D], bh[D], yh[R * D];
        for (size_t i = 0; i < R * D; i++)
            lg_cuk_store(xh, i, dt, x[i]);
        for (size_t i = 0; i < D; i++)
            lg_cuk_store(wh, i, dt, w[i]), lg_cuk_store(bh, i, dt, b[i]);
        for (size_t r = 0; r < R; r++)
            lg_cuk_layer_norm_forward(r, dt, D, 1e-5f, xh, wh, bh, yh, sm, si);
        size_t n;
        int32_t *bits = fixture_ints(t, half[k].key, &n);
        ck_assert_uint_eq(n, R * D);
        float got[R * D], want[R * D];
        for (size_t i = 0; i < R * D; i++) {
            uint16_t u = (uint16_t)bits[i];
            got[i] = dt == LG_CUDA_F16 ? lg_cuk_f16_to_f32(yh[i]) : lg_cuk_bf16_to_f32(yh[i]);
            want[i] = dt == LG_CUDA_F16 ? lg_cuk_f16_to_f32(u) : lg_cuk_bf16_to_f32(u);
        }
        assert_close(half[k].key, got, want, R * D, half[k].ulp, 1e-3);
        free(bits);
    }
    free(x), free(w), free(b), free(ry), free(dy), free(rdx), free(rdw), free(rdb), free(t);
}
END_TEST

/* upsample_nearest x2, adaptive_avg_pool2d 10x7 -> 4x3, softmax and
 * log_softmax along a middle dimension, rpn_flatten of two levels
 * (torchvision's permute_and_flatten). */
START_TEST(test_structure_ops_match_torch) {
    char *t = fixture_text("dense.txt");
    /* upsample [2, 3, 4, 5] */
    enum { UP = 2 * 3 * 4 * 5 };
    float *x = fixture_floats(t, "up_x", UP), *ry = fixture_floats(t, "up_y", UP * 4);
    float *dy = fixture_floats(t, "up_dy", UP * 4), *rdx = fixture_floats(t, "up_dx", UP);
    float y[UP * 4], dx[UP];
    for (size_t i = 0; i < UP * 4; i++)
        lg_cuk_upsample_forward(i, LG_CUDA_F32, 4, 5, 2, x, y);
    for (size_t i = 0; i < UP; i++)
        lg_cuk_upsample_backward(i, LG_CUDA_F32, 4, 5, 2, dy, dx);
    assert_close("upsample_nearest", y, ry, UP * 4, 0, 0);
    assert_close("upsample_nearest backward", dx, rdx, UP, 1e-6, 1e-7);
    free(x), free(ry), free(dy), free(rdx);
    /* adaptive average pooling [2, 3, 10, 7] -> (4, 3) */
    enum { AIN = 2 * 3 * 10 * 7, AOUT = 2 * 3 * 4 * 3 };
    x = fixture_floats(t, "ad_x", AIN), ry = fixture_floats(t, "ad_y", AOUT);
    dy = fixture_floats(t, "ad_dy", AOUT), rdx = fixture_floats(t, "ad_dx", AIN);
    float ay[AOUT], adx[AIN];
    for (size_t i = 0; i < AOUT; i++)
        lg_cuk_adaptive_pool_forward(i, LG_CUDA_F32, 10, 7, 4, 3, x, ay);
    for (size_t i = 0; i < AIN; i++)
        lg_cuk_adaptive_pool_backward(i, LG_CUDA_F32, 10, 7, 4, 3, dy, adx);
    assert_close("adaptive_avg_pool2d", ay, ry, AOUT, 1e-6, 1e-7);
    assert_close("adaptive_avg_pool2d backward", adx, rdx, AIN, 1e-6, 1e-7);
    free(x), free(ry), free(dy), free(rdx);
    /* softmax / log_softmax of [3, 17, 5] along dim 1 */
    enum { SM = 3 * 17 * 5 };
    x = fixture_floats(t, "sm_x", SM), dy = fixture_floats(t, "sm_dy", SM);
    float sy[SM], sdx[SM];
    for (int lg = 0; lg < 2; lg++) {
        ry = fixture_floats(t, lg ? "log_softmax_y" : "softmax_y", SM);
        rdx = fixture_floats(t, lg ? "log_softmax_dx" : "softmax_dx", SM);
        for (size_t r = 0; r < 3 * 5; r++)
            lg_cuk_softmax_forward(r, LG_CUDA_F32, 17, 5, lg, x, sy);
        for (size_t r = 0; r < 3 * 5; r++)
            lg_cuk_softmax_backward(r, LG_CUDA_F32, 17, 5, lg, sy, dy, sdx);
        assert_close(lg ? "log_softmax" : "softmax", sy, ry, SM, 1e-5, 1e-6);
        assert_close(lg ? "log_softmax backward" : "softmax backward", sdx, rdx, SM, 1e-5, 1e-6);
        free(ry), free(rdx);
    }
    free(x), free(dy);
    /* rpn_flatten: N 2, A 3, D 4 on 4x5 and 2x3 maps: 78 rows per image */
    enum { N = 2, A = 3, D = 4, ROWS = A * (20 + 6) };
    float *m0 = fixture_floats(t, "rpn_map0", N * A * D * 20), *m1 = fixture_floats(t, "rpn_map1", N * A * D * 6);
    float *rflat = fixture_floats(t, "rpn_flat", N * ROWS * D), flat[N * ROWS * D], back[N * A * D * 20];
    for (size_t i = 0; i < N * A * D * 20; i++)
        flat[lg_cuk_rpn_flatten_dst(i, A, D, 20, ROWS, 0)] = m0[i];
    for (size_t i = 0; i < N * A * D * 6; i++)
        flat[lg_cuk_rpn_flatten_dst(i, A, D, 6, ROWS, A * 20)] = m1[i];
    assert_close("rpn_flatten", flat, rflat, N * ROWS * D, 0, 0);
    for (size_t i = 0; i < N * A * D * 20; i++) /* backward: the gather */
        back[i] = rflat[lg_cuk_rpn_flatten_dst(i, A, D, 20, ROWS, 0)];
    assert_close("rpn_flatten backward", back, m0, N * A * D * 20, 0, 0);
    free(m0), free(m1), free(rflat), free(t);
}
END_TEST

/* max and average pooling (the own kernels) against torch on values with
 * ties in the windows: ceil_mode output sizes, count_include_pad, and max
 * pooling's gradient on the same element torch picks (the first maximum). */
START_TEST(test_pooling_matches_torch) {
    enum { P = 2 * 3, H = 13, W = 11 };
    char *t = fixture_text("dense.txt");
    float *x = fixture_floats(t, "pool_x", P * H * W);
    size_t nc;
    int32_t *c = fixture_ints(t, "pool_cfgs", &nc);
    for (size_t k = 0; k < nc / 5; k++) {
        const int32_t *q = c + 5 * k;
        lg_cuda_pool2d d = {.H = H, .W = W, .kh = q[0], .kw = q[0], .sh = q[1], .sw = q[1], .ph = q[2],
                            .pw = q[2], .ceil_mode = q[3], .count_include_pad = q[4]};
        d.OH = lg_cuk_pool_out(H, d.kh, d.sh, d.ph, d.ceil_mode);
        d.OW = lg_cuk_pool_out(W, d.kw, d.sw, d.pw, d.ceil_mode);
        size_t no = (size_t)(P * d.OH * d.OW), n;
        char key[32];
        snprintf(key, sizeof key, "avg%zu_y", k);
        double *shape = fixture_values(t, key, &n);
        free(shape);
        ck_assert_msg(n == no, "pooling %zu: %zu outputs, torch has %zu (ceil_mode %d)", k, no, n, d.ceil_mode);
        float *ry = fixture_floats(t, key, no);
        snprintf(key, sizeof key, "pool%zu_dy", k);
        float *dy = fixture_floats(t, key, no);
        snprintf(key, sizeof key, "avg%zu_dx", k);
        float *rdx = fixture_floats(t, key, P * H * W);
        float *y = malloc(no * 4), dx[P * H * W];
        int32_t *am = malloc(no * 4);
        for (size_t i = 0; i < no; i++)
            lg_cuk_avg_pool_forward(i, &d, LG_CUDA_F32, x, y);
        for (size_t i = 0; i < P * H * W; i++)
            lg_cuk_avg_pool_backward(i, &d, LG_CUDA_F32, dy, dx);
        assert_close("avg_pool2d", y, ry, no, 1e-6, 1e-7);
        assert_close("avg_pool2d backward", dx, rdx, P * H * W, 1e-6, 1e-7);
        free(ry), free(rdx);
        snprintf(key, sizeof key, "max%zu_y", k);
        ry = fixture_floats(t, key, no);
        snprintf(key, sizeof key, "max%zu_dx", k);
        rdx = fixture_floats(t, key, P * H * W);
        for (size_t i = 0; i < no; i++)
            lg_cuk_max_pool_forward(i, &d, LG_CUDA_F32, x, y, am);
        for (size_t i = 0; i < P * H * W; i++)
            lg_cuk_max_pool_backward(i, &d, LG_CUDA_F32, am, dy, dx);
        assert_close("max_pool2d", y, ry, no, 0, 0);
        assert_close("max_pool2d backward (ties: torch's element)", dx, rdx, P * H * W, 1e-6, 0);
        free(ry), free(rdx), free(dy), free(y), free(am);
    }
    free(c), free(x), free(t);
}
END_TEST

/* The elementwise losses, mean and sum reductions, with dloss = -1 (torch's
 * linspace(-1, 1, 1)). */
START_TEST(test_losses_match_torch) {
    enum { N = 200 };
    static const struct {
        const char *name;
        int kind;
        float beta;
    } losses[] = {{"mse", LG_CUDA_LOSS_MSE, 0},
                  {"l1", LG_CUDA_LOSS_L1, 0},
                  {"smooth_l1", LG_CUDA_LOSS_SMOOTH_L1, 0.7f},
                  {"bce", LG_CUDA_LOSS_BCE_WITH_LOGITS, 0}};
    char *t = fixture_text("dense.txt");
    float *x = fixture_floats(t, "loss_x", N), *tg = fixture_floats(t, "loss_t", N);
    float *tb = fixture_floats(t, "loss_tb", N), dx[N];
    for (size_t k = 0; k < 4; k++)
        for (int mean = 0; mean < 2; mean++) {
            const float *target = losses[k].kind == LG_CUDA_LOSS_BCE_WITH_LOGITS ? tb : tg;
            char key[48];
            snprintf(key, sizeof key, "%s_%s", losses[k].name, mean ? "mean" : "sum");
            float *rl = fixture_floats(t, key, 1);
            snprintf(key, sizeof key, "%s_%s_dx", losses[k].name, mean ? "mean" : "sum");
            float *rdx = fixture_floats(t, key, N);
            double s = 0;
            for (size_t i = 0; i < N; i++)
                s += lg_cuk_reduce_term(losses[k].kind, x[i], target[i], losses[k].beta);
            float loss = (float)(mean ? s / N : s), g = mean ? -1.0f / N : -1.0f;
            for (size_t i = 0; i < N; i++)
                dx[i] = g * lg_cuk_loss_grad(losses[k].kind, x[i], target[i], losses[k].beta);
            assert_close(key, &loss, rl, 1, 1e-5, 1e-6);
            assert_close(key, dx, rdx, N, 1e-5, 1e-7);
            free(rl), free(rdx);
        }
    free(x), free(tg), free(tb), free(t);
}
END_TEST

static Suite *cuda_body_suite(void) {
    Suite *s = suite_create("cuda_body");
    TCase *tc = tcase_create("convert");
    tcase_add_test(tc, test_f32_to_f16_matches_torch);
    tcase_add_test(tc, test_f32_to_bf16_matches_torch);
    tcase_add_test(tc, test_f16_to_f32_exhaustive);
    tcase_add_test(tc, test_bf16_round_trip_exhaustive);
    tcase_add_test(tc, test_load_store_by_dtype);
    suite_add_tcase(s, tc);
    tc = tcase_create("layers");
    tcase_add_test(tc, test_activations_match_torch);
    tcase_add_test(tc, test_bias_grad);
    tcase_add_test(tc, test_cross_entropy_matches_torch);
    tcase_add_test(tc, test_layer_norm_matches_torch);
    tcase_add_test(tc, test_structure_ops_match_torch);
    tcase_add_test(tc, test_pooling_matches_torch);
    tcase_add_test(tc, test_losses_match_torch);
    suite_add_tcase(s, tc);
    tc = tcase_create("optim");
    tcase_add_test(tc, test_optimizers_match_torch);
    tcase_add_test(tc, test_skipped_step_changes_nothing);
    tcase_add_test(tc, test_scaler_matches_torch);
    tcase_add_test(tc, test_scaler_defaults_and_unscale);
    suite_add_tcase(s, tc);
    tc = tcase_create("detect");
    tcase_add_test(tc, test_nms_matches_torchvision);
    tcase_add_test(tc, test_roi_align_matches_torchvision);
    tcase_add_test(tc, test_roi_levels_match_torchvision);
    tcase_add_test(tc, test_roi_align_multilevel);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(cuda_body_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
