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
