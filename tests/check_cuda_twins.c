/* check_cuda_twins.c — the CUDA kernel bodies against the CPU runtime kernels.
 *
 * The CUDA backend and the CPU backend implement the same ops twice; a
 * trainer must not change its numbers when it moves to a GPU beyond
 * rounding. Here each per-thread body of runtime/cuda/body.h runs over its
 * whole grid on the host, and the CPU kernel of lgen/kernels.h or
 * lgen/optim.h runs on the same inputs: activations forward and backward,
 * cross entropy (weights, label smoothing, ignore_index, both reductions)
 * with its gradient, accuracy, SGD / Adam / AdamW over several steps,
 * add/mul/scale, dropout (the same elements dropped), softmax and
 * log_softmax, max/avg pooling (ceil_mode, padding, overlapping windows),
 * global and adaptive average pooling, layer_norm,
 * upsample_nearest, rpn_flatten, transpose, concat/split (also more pieces
 * than one launch takes), top-k accuracy, the elementwise losses, mean/sum
 * (the dense ops also in f16 and bf16: the body on rounded 16-bit inputs
 * against the CPU kernel on the same values, within the 16-bit rounding),
 * gradient clipping, and lgen/detect.h's box coder, box IoU, matcher, NMS,
 * batched NMS and RoIAlign
 * (one level and FPN levels, with a padding row).
 * (check_cuda_body.c compares the bodies with PyTorch; tests/gpu/ runs them
 * on a device.)
 */
#include "../runtime/cuda/body.h"
#include "lgen/detect.h"
#include "lgen/kernels.h"
#include "lgen/optim.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *random_floats(size_t n, unsigned seed, float scale) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = scale * ((float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f);
    }
    return v;
}

static void assert_close(const char *what, const float *a, const float *b, size_t n, double rtol,
                         double atol) {
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        ck_assert_msg(diff <= atol + rtol * fabs((double)b[i]), "%s[%zu]: body %.9g, CPU kernel %.9g",
                      what, i, (double)a[i], (double)b[i]);
    }
}

/* ---- mixed precision: the same inputs in f16/bf16 --------------------------------------- */

static const int dtypes[] = {LG_CUDA_F32, LG_CUDA_F16, LG_CUDA_BF16};
static const char *const dtype_names[] = {"f32", "f16", "bf16"};

/* A device-style buffer of n elements of dtype dt holding x rounded to it
 * (room for float32 either way). */
static void *dt_buffer(const float *x, size_t n, int dt) {
    void *b = malloc(n * 4 + 4);
    for (size_t i = 0; x && i < n; i++)
        lg_cuk_store(b, i, dt, x[i]);
    return b;
}

/* The buffer's values as float32 (what a CPU kernel sees of them). */
static float *dt_values(const void *b, size_t n, int dt) {
    float *v = malloc(n * 4 + 4);
    for (size_t i = 0; i < n; i++)
        v[i] = lg_cuk_load(b, i, dt);
    return v;
}

/* A body's dt results against the CPU kernel's float32 results on the same
 * (rounded) inputs: within rtol/atol plus half a unit in the last place of
 * the 16-bit type (the body rounds its float result once). */
static void assert_dt_close(const char *what, int dt, const void *got, const float *want, size_t n,
                            double rtol, double atol) {
    float *g = dt_values(got, n, dt);
    double half_ulp = dt == LG_CUDA_F16 ? 1.0 / 2048 : dt == LG_CUDA_BF16 ? 1.0 / 256 : 0.0;
    char name[96];
    snprintf(name, sizeof name, "%s (%s)", what, dtype_names[dt]);
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)g[i] - (double)want[i]);
        double tol = atol + (dt == LG_CUDA_F16 ? 6e-8 : 0.0) + (rtol + half_ulp) * fabs((double)want[i]);
        ck_assert_msg(diff <= tol, "%s[%zu]: body %.9g, CPU kernel %.9g", name, i, (double)g[i],
                      (double)want[i]);
    }
    free(g);
}

/* ---- activations ----------------------------------------------------------- */

static lg_status cpu_act_forward(lg_cuda_act act, size_t n, const float *x, float *y) {
    switch (act) {
    case LG_CUDA_ACT_RELU: return lg_relu_forward(NULL, n, x, y);
    case LG_CUDA_ACT_LEAKY_RELU: return lg_leaky_relu_forward(NULL, n, 0.1, x, y);
    case LG_CUDA_ACT_SIGMOID: return lg_sigmoid_forward(NULL, n, x, y);
    case LG_CUDA_ACT_TANH: return lg_tanh_forward(NULL, n, x, y);
    case LG_CUDA_ACT_GELU: return lg_gelu_forward(NULL, n, 0, x, y);
    case LG_CUDA_ACT_GELU_TANH: return lg_gelu_forward(NULL, n, 1, x, y);
    case LG_CUDA_ACT_SILU: return lg_silu_forward(NULL, n, x, y);
    }
    return LG_ERR_ARG;
}

static lg_status cpu_act_backward(lg_cuda_act act, size_t n, const float *x, const float *y,
                                  const float *dy, float *dx) {
    switch (act) {
    case LG_CUDA_ACT_RELU: return lg_relu_backward(NULL, n, x, y, dy, dx);
    case LG_CUDA_ACT_LEAKY_RELU: return lg_leaky_relu_backward(NULL, n, 0.1, x, y, dy, dx);
    case LG_CUDA_ACT_SIGMOID: return lg_sigmoid_backward(NULL, n, x, y, dy, dx);
    case LG_CUDA_ACT_TANH: return lg_tanh_backward(NULL, n, x, y, dy, dx);
    case LG_CUDA_ACT_GELU: return lg_gelu_backward(NULL, n, 0, x, y, dy, dx);
    case LG_CUDA_ACT_GELU_TANH: return lg_gelu_backward(NULL, n, 1, x, y, dy, dx);
    case LG_CUDA_ACT_SILU: return lg_silu_backward(NULL, n, x, y, dy, dx);
    }
    return LG_ERR_ARG;
}

START_TEST(test_activations_match_cpu) {
    const size_t n = 4001;
    float *x = random_floats(n, 1, 7.0f), *dy = random_floats(n, 2, 1.0f);
    float *y = malloc(n * 4), *dx = malloc(n * 4), *cy = malloc(n * 4), *cdx = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        if (x[i] == 0.0f)
            x[i] = 0.5f; /* the kink: subgradient conventions may differ */
    for (int a = LG_CUDA_ACT_RELU; a <= LG_CUDA_ACT_SILU; a++) {
        for (size_t i = 0; i < n; i++) {
            y[i] = lg_cuk_act_forward(a, x[i], 0.1f);
            dx[i] = lg_cuk_act_backward(a, x[i], y[i], dy[i], 0.1f);
        }
        ck_assert_int_eq(cpu_act_forward((lg_cuda_act)a, n, x, cy), LG_OK);
        ck_assert_int_eq(cpu_act_backward((lg_cuda_act)a, n, x, cy, dy, cdx), LG_OK);
        char what[32];
        snprintf(what, sizeof what, "act %d forward", a);
        assert_close(what, y, cy, n, 2e-6, 1e-6);
        snprintf(what, sizeof what, "act %d backward", a);
        assert_close(what, dx, cdx, n, 2e-6, 1e-6);
    }
    free(x), free(dy), free(y), free(dx), free(cy), free(cdx);
}
END_TEST

/* ---- cross entropy and accuracy ---------------------------------------------- */

START_TEST(test_cross_entropy_matches_cpu) {
    const int N = 57, C = 13;
    float *logits = random_floats((size_t)N * C, 3, 5.0f), *w = random_floats((size_t)C, 4, 0.5f);
    int32_t labels[57];
    float wsum = 0;
    for (int c = 0; c < C; c++)
        w[c] += 1.0f, wsum += w[c];
    for (int i = 0; i < N; i++)
        labels[i] = i % 9 == 4 ? -100 : (i * 5 + 3) % C;
    float rl[57], rw[57], lse[57], g[57 * 13], cg[57 * 13];
    for (int k = 0; k < 4; k++) {
        int weighted = k & 1, sum = k >> 1;
        float ls = k == 1 ? 0.0f : 0.15f;
        lg_cuda_ce d = {N, C, ls, -100, sum};
        lg_cross_entropy_dims cd = {C, ls, -100, sum ? LG_REDUCE_SUM : LG_REDUCE_MEAN};
        const float *wp = weighted ? w : NULL;
        for (size_t i = 0; i < (size_t)N; i++)
            lg_cuk_ce_row(i, &d, logits, labels, wp, rl, rw, lse);
        float lsum = 0, wts = 0, loss, div, closs, dloss = 3.0f;
        for (int i = 0; i < N; i++)
            lsum += rl[i], wts += rw[i];
        lg_cuk_ce_finish(&d, lsum, wts, &loss, &div);
        for (size_t idx = 0; idx < (size_t)N * C; idx++)
            lg_cuk_ce_backward(idx, &d, logits, labels, wp, weighted ? wsum : (float)C, lse, dloss, div, g);
        ck_assert_int_eq(lg_cross_entropy_forward(NULL, &cd, (size_t)N, logits, labels, wp, &closs),
                         LG_OK);
        ck_assert_int_eq(lg_cross_entropy_backward(NULL, &cd, (size_t)N, logits, labels, wp, &dloss, cg),
                         LG_OK);
        assert_close("cross entropy loss", &loss, &closs, 1, 1e-5, 1e-6);
        assert_close("cross entropy dlogits", g, cg, (size_t)N * C, 1e-5, 1e-6);
    }
    /* accuracy takes labels in [0, C) (the CPU kernel rejects others) */
    for (int i = 0; i < N; i++)
        if (labels[i] < 0)
            labels[i] = i % C;
    float acc = 0, cacc;
    for (size_t i = 0; i < (size_t)N; i++)
        acc += lg_cuk_accuracy_row(i, logits, labels, C);
    acc /= (float)N;
    ck_assert(acc > 0.0f); /* a test that can see a mismatch */
    ck_assert_int_eq(lg_accuracy(NULL, (size_t)N, C, logits, labels, &cacc), LG_OK);
    assert_close("accuracy", &acc, &cacc, 1, 0, 1e-6);
    free(logits), free(w);
}
END_TEST

/* ---- optimizers ------------------------------------------------------------------ */

/* Runs `steps` updates of the body and of lg_optim_step from the same start
 * and gradients; returns nothing, asserts the parameters agree. */
static void optim_twin(const char *what, const lg_optim_config *cfg, int steps) {
    const size_t n = 301;
    float *p0 = random_floats(n, 5, 1.0f), *grads = random_floats(n * (size_t)steps, 6, 0.3f);
    float *p = malloc(n * 4), *cp = malloc(n * 4), *b = calloc(n, 4), *m = calloc(n, 4),
          *v = calloc(n, 4), *vm = calloc(n, 4);
    memcpy(p, p0, n * 4);
    memcpy(cp, p0, n * 4);
    lg_optim o;
    lg_optim_param par = {0, n, 0};
    lg_error err = {0};
    ck_assert_msg(lg_optim_init(&o, cfg, 0, NULL, 1, &par, n, &err) == LG_OK, "%s", err.msg);
    lg_cuda_sgd sgd = {(float)cfg->lr, (float)cfg->momentum, (float)cfg->dampening,
                       (float)cfg->weight_decay, cfg->nesterov, cfg->maximize};
    lg_cuda_adam adam = {(float)cfg->lr, (float)cfg->beta1, (float)cfg->beta2, (float)cfg->eps,
                         (float)cfg->weight_decay, cfg->kind == LG_OPTIM_ADAMW, cfg->amsgrad,
                         cfg->maximize};
    lg_cuk_adam_step st = {0};
    for (int s = 0; s < steps; s++) {
        const float *g = grads + (size_t)s * n;
        if (cfg->kind == LG_OPTIM_SGD) {
            for (size_t i = 0; i < n; i++)
                lg_cuk_sgd_update(i, &sgd, s == 0, p, g, b, NULL);
        } else {
            lg_cuk_adam_prepare(&adam, &st, NULL);
            for (size_t i = 0; i < n; i++)
                lg_cuk_adam_update(i, &adam, &st, p, g, m, v, vm, NULL);
        }
        ck_assert_int_eq(lg_optim_step(&o, NULL, cp, g), LG_OK);
    }
    assert_close(what, p, cp, n, 1e-5, 1e-6);
    lg_optim_free(&o);
    free(p0), free(grads), free(p), free(cp), free(b), free(m), free(v), free(vm);
}

START_TEST(test_optimizers_match_cpu) {
    lg_optim_config cfg;
    lg_optim_config_default(&cfg, LG_OPTIM_SGD);
    cfg.lr = 0.05, cfg.momentum = 0.9, cfg.weight_decay = 5e-4, cfg.nesterov = 1;
    optim_twin("sgd nesterov", &cfg, 5);
    cfg.nesterov = 0, cfg.dampening = 0.2, cfg.maximize = 1;
    optim_twin("sgd dampening maximize", &cfg, 5);
    lg_optim_config_default(&cfg, LG_OPTIM_ADAM);
    cfg.lr = 0.01, cfg.weight_decay = 1e-2, cfg.amsgrad = 1;
    optim_twin("adam amsgrad", &cfg, 6);
    lg_optim_config_default(&cfg, LG_OPTIM_ADAMW);
    cfg.lr = 0.003;
    optim_twin("adamw", &cfg, 6);
}
END_TEST

/* ---- elementwise, dropout, softmax, pooling ----------------------------------------- */

START_TEST(test_elementwise_match_cpu) {
    const size_t n = 1001;
    float *a = random_floats(n, 7, 3.0f), *b = random_floats(n, 8, 2.0f), *dy = random_floats(n, 9, 1.0f);
    float *y = malloc(n * 4), *cy = malloc(n * 4), *da = malloc(n * 4), *db = malloc(n * 4),
          *cda = malloc(n * 4), *cdb = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        y[i] = lg_cuk_add(a[i], b[i]);
    ck_assert_int_eq(lg_add_forward(NULL, n, a, b, cy), LG_OK);
    assert_close("add", y, cy, n, 0, 0);
    for (size_t i = 0; i < n; i++)
        y[i] = lg_cuk_mul(a[i], b[i]), da[i] = lg_cuk_mul(dy[i], b[i]), db[i] = lg_cuk_mul(dy[i], a[i]);
    ck_assert_int_eq(lg_mul_forward(NULL, n, a, b, cy), LG_OK);
    ck_assert_int_eq(lg_mul_backward(NULL, n, a, b, dy, cda, cdb), LG_OK);
    assert_close("mul", y, cy, n, 0, 0);
    assert_close("mul da", da, cda, n, 0, 0);
    assert_close("mul db", db, cdb, n, 0, 0);
    for (size_t i = 0; i < n; i++)
        y[i] = lg_cuk_mul(a[i], -0.75f);
    ck_assert_int_eq(lg_scale_forward(NULL, n, -0.75, a, cy), LG_OK);
    assert_close("scale", y, cy, n, 0, 0);
    free(a), free(b), free(dy), free(y), free(cy), free(da), free(db), free(cda), free(cdb);
}
END_TEST

/* The same elements dropped as on the CPU, bit for bit, for several p. */
START_TEST(test_dropout_matches_cpu) {
    const size_t n = 20000;
    float *x = random_floats(n, 10, 1.0f), *y = malloc(n * 4), *cy = malloc(n * 4);
    float *dx = malloc(n * 4), *cdx = malloc(n * 4);
    uint8_t *mask = malloc(n), *cmask = malloc(n);
    const double ps[] = {0.1, 0.5, 0.9};
    for (int k = 0; k < 3; k++) {
        double p = ps[k];
        uint64_t seed = lg_dropout_seed(42, (uint64_t)k + 7, 3);
        uint64_t thresh = (uint64_t)(p * 9007199254740992.0);
        float scale = (float)(1.0 / (1.0 - p));
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            y[i] = lg_cuk_dropout(i, seed, thresh, scale, x[i], mask);
            kept += mask[i];
            dx[i] = mask[i] ? x[i] * scale : 0.0f; /* the backward launcher's body */
        }
        ck_assert_int_eq(lg_dropout_forward(NULL, n, p, 1, seed, x, cy, cmask), LG_OK);
        ck_assert_int_eq(lg_dropout_backward(NULL, n, p, 1, cmask, x, cdx), LG_OK);
        ck_assert_mem_eq(mask, cmask, n);
        assert_close("dropout", y, cy, n, 0, 0);
        assert_close("dropout backward", dx, cdx, n, 0, 0);
        double frac = (double)kept / (double)n;
        ck_assert_msg(fabs(frac - (1 - p)) < 0.02, "p %g kept %g", p, frac);
    }
    free(x), free(y), free(cy), free(dx), free(cdx), free(mask), free(cmask);
}
END_TEST

/* softmax / log_softmax in f32, f16 and bf16 (the backward from the
 * forward's rounded output, as a mixed-precision step keeps it). */
START_TEST(test_softmax_matches_cpu) {
    const size_t outer = 3, dim = 17, inner = 5, n = outer * dim * inner;
    float *x0 = random_floats(n, 11, 6.0f), *dy0 = random_floats(n, 12, 1.0f);
    float *cy = malloc(n * 4), *cdx = malloc(n * 4);
    lg_axis_dims d = {outer, dim, inner};
    for (int k = 0; k < 3; k++) {
        int dt = dtypes[k];
        void *x = dt_buffer(x0, n, dt), *dy = dt_buffer(dy0, n, dt), *y = dt_buffer(NULL, n, dt),
             *dx = dt_buffer(NULL, n, dt);
        float *xr = dt_values(x, n, dt), *dyr = dt_values(dy, n, dt);
        for (int lg = 0; lg < 2; lg++) {
            for (size_t t = 0; t < outer * inner; t++)
                lg_cuk_softmax_forward(t, dt, dim, inner, lg, x, y);
            for (size_t t = 0; t < outer * inner; t++)
                lg_cuk_softmax_backward(t, dt, dim, inner, lg, y, dy, dx);
            float *yr = dt_values(y, n, dt);
            if (lg) {
                ck_assert_int_eq(lg_log_softmax_forward(NULL, &d, xr, cy), LG_OK);
                ck_assert_int_eq(lg_log_softmax_backward(NULL, &d, yr, dyr, cdx), LG_OK);
            } else {
                ck_assert_int_eq(lg_softmax_forward(NULL, &d, xr, cy), LG_OK);
                ck_assert_int_eq(lg_softmax_backward(NULL, &d, yr, dyr, cdx), LG_OK);
            }
            assert_dt_close(lg ? "log_softmax" : "softmax", dt, y, cy, n, 1e-5, 1e-6);
            assert_dt_close(lg ? "log_softmax backward" : "softmax backward", dt, dx, cdx, n, 1e-5, 1e-6);
            free(yr);
        }
        free(x), free(dy), free(y), free(dx), free(xr), free(dyr);
    }
    free(x0), free(dy0), free(cy), free(cdx);
}
END_TEST

START_TEST(test_global_avg_pool_matches_cpu) {
    const size_t N = 2, C = 5, hw = 49, n = N * C * hw;
    float *x = random_floats(n, 13, 2.0f), *dy = random_floats(N * C, 14, 1.0f);
    float y[10], cy[10], *dx = malloc(n * 4), *cdx = malloc(n * 4);
    for (size_t p = 0; p < N * C; p++)
        lg_cuk_global_avg_pool_forward(p, LG_CUDA_F32, hw, x, y);
    for (size_t i = 0; i < n; i++)
        dx[i] = lg_cuk_global_avg_pool_backward(i, LG_CUDA_F32, hw, dy);
    ck_assert_int_eq(lg_global_avg_pool_forward(NULL, N, C, hw, x, cy), LG_OK);
    ck_assert_int_eq(lg_global_avg_pool_backward(NULL, N, C, hw, dy, cdx), LG_OK);
    assert_close("global_avg_pool", y, cy, N * C, 1e-6, 1e-7);
    assert_close("global_avg_pool backward", dx, cdx, n, 1e-6, 0);
    free(x), free(dy), free(dx), free(cdx);
}
END_TEST

/* ---- losses, reductions, clipping ----------------------------------------------------------- */

/* What lg_cuda_reduce computes, serially: x and t read in dtype dt. */
static float host_reduce(int kind, int mean, float beta, int dt, const void *x, const void *t, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += lg_cuk_reduce_term(kind, lg_cuk_load(x, i, dt), t ? lg_cuk_load(t, i, dt) : 0.0f, beta);
    return mean ? (float)((double)s / (double)n) : s;
}

/* The CPU kernels of the four elementwise losses, forward and backward. */
static void cpu_loss(int kind, size_t n, lg_reduction red, float beta, const float *x, const float *t,
                     float *loss, const float *dloss, float *dx) {
    lg_status a, b;
    switch (kind) {
    case LG_CUDA_LOSS_BCE_WITH_LOGITS:
        a = lg_bce_with_logits_forward(NULL, n, red, x, t, loss);
        b = lg_bce_with_logits_backward(NULL, n, red, x, t, dloss, dx);
        break;
    case LG_CUDA_LOSS_MSE:
        a = lg_mse_loss_forward(NULL, n, red, x, t, loss);
        b = lg_mse_loss_backward(NULL, n, red, x, t, dloss, dx);
        break;
    case LG_CUDA_LOSS_L1:
        a = lg_l1_loss_forward(NULL, n, red, x, t, loss);
        b = lg_l1_loss_backward(NULL, n, red, x, t, dloss, dx);
        break;
    default:
        a = lg_smooth_l1_loss_forward(NULL, n, red, beta, x, t, loss);
        b = lg_smooth_l1_loss_backward(NULL, n, red, beta, x, t, dloss, dx);
        break;
    }
    ck_assert_int_eq(a, LG_OK);
    ck_assert_int_eq(b, LG_OK);
}

/* The elementwise losses and mean/sum as lg_cuda_reduce and
 * lg_cuda_loss_backward compute them, with x, the target and dx in f32,
 * f16 and bf16 (the loss and dloss stay f32), against the CPU kernels on
 * the same (rounded) inputs. */
START_TEST(test_losses_match_cpu) {
    const size_t n = 777;
    float *x0 = random_floats(n, 15, 3.0f), *t0 = random_floats(n, 16, 2.0f);
    float *cdx = malloc(n * 4), dloss = 1.5f;
    for (size_t i = 0; i < n; i++)
        if (i % 3 == 0)
            t0[i] = t0[i] > 0 ? 1.0f : 0.0f; /* BCE targets are probabilities */
    for (int k = 0; k < 3; k++) {
        int dt = dtypes[k];
        void *x = dt_buffer(x0, n, dt), *t = dt_buffer(t0, n, dt), *dx = dt_buffer(NULL, n, dt);
        float *xr = dt_values(x, n, dt), *tr = dt_values(t, n, dt);
        for (int kind = LG_CUDA_LOSS_BCE_WITH_LOGITS; kind <= LG_CUDA_LOSS_SMOOTH_L1; kind++) {
            for (int mean = 0; mean < 2; mean++) {
                float beta = 0.7f, loss = host_reduce(kind, mean, beta, dt, x, t, n), closs = 0;
                float g = mean ? (float)((double)dloss / (double)n) : dloss;
                for (size_t i = 0; i < n; i++)
                    lg_cuk_store(dx, i, dt, g * lg_cuk_loss_grad(kind, lg_cuk_load(x, i, dt), lg_cuk_load(t, i, dt), beta));
                cpu_loss(kind, n, mean ? LG_REDUCE_MEAN : LG_REDUCE_SUM, beta, xr, tr, &closs, &dloss, cdx);
                char what[48];
                snprintf(what, sizeof what, "loss %d mean %d (%s)", kind, mean, dtype_names[k]);
                assert_close(what, &loss, &closs, 1, 2e-5, 1e-6);
                assert_dt_close(what, dt, dx, cdx, n, 1e-5, 1e-7);
            }
        }
        /* mean and sum of a tensor, and their backward (dloss spread) */
        float m = host_reduce(LG_CUDA_REDUCE_SUM, 1, 0, dt, x, NULL, n), cm, su, csu;
        su = host_reduce(LG_CUDA_REDUCE_SUM, 0, 0, dt, x, NULL, n);
        ck_assert_int_eq(lg_mean_forward(NULL, n, xr, &cm), LG_OK);
        ck_assert_int_eq(lg_sum_forward(NULL, n, xr, &csu), LG_OK);
        assert_close("mean", &m, &cm, 1, 1e-5, 1e-6);
        assert_close("sum", &su, &csu, 1, 1e-5, 1e-5);
        for (size_t i = 0; i < n; i++)
            lg_cuk_store(dx, i, dt, (float)((double)dloss / (double)n));
        ck_assert_int_eq(lg_mean_backward(NULL, n, &dloss, cdx), LG_OK);
        assert_dt_close("mean backward", dt, dx, cdx, n, 1e-7, 0);
        free(x), free(t), free(dx), free(xr), free(tr);
    }
    free(x0), free(t0), free(cdx);
}
END_TEST

START_TEST(test_clipping_matches_cpu) {
    const size_t n = 5000;
    float *g = random_floats(n, 17, 0.5f), *cg = malloc(n * 4);
    const double max_norms[] = {1.0, 1e6}; /* clips; does not */
    for (int k = 0; k < 2; k++) {
        float *h = malloc(n * 4);
        memcpy(h, g, n * 4);
        memcpy(cg, g, n * 4);
        float norm, coef = lg_cuk_clip_coef((double)host_reduce(LG_CUDA_REDUCE_SQUARES, 0, 0, LG_CUDA_F32, h, NULL, n),
                                            max_norms[k], &norm);
        for (size_t i = 0; i < n; i++)
            h[i] *= coef;
        double cnorm;
        ck_assert_int_eq(lg_clip_grad_norm(NULL, cg, n, max_norms[k], 2.0, &cnorm), LG_OK);
        ck_assert_double_eq_tol(norm, cnorm, 1e-4 * cnorm);
        assert_close("clip_grad_norm", h, cg, n, 1e-5, 1e-7);
        ck_assert(k == 1 || coef < 0.1f); /* the first case really clips */
        free(h);
    }
    memcpy(cg, g, n * 4);
    ck_assert_int_eq(lg_clip_grad_value(NULL, cg, n, 0.2), LG_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert(lg_cuk_clip_value(g[i], 0.2f) == cg[i]);
    free(g), free(cg);
}
END_TEST

/* ---- layer_norm and structure ops -------------------------------------------------------- */

/* layer_norm in f32, f16 and bf16: x, the weight, the bias and their
 * gradients in the compute dtype, the saved statistics in f32. */
START_TEST(test_layer_norm_matches_cpu) {
    const size_t rows = 37, D = 50, n = rows * D;
    float *x0 = random_floats(n, 30, 3.0f), *w0 = random_floats(D, 31, 1.0f), *b0 = random_floats(D, 32, 0.5f);
    float *dy0 = random_floats(n, 33, 1.0f), *cy = malloc(n * 4), *cdx = malloc(n * 4);
    float sm[37], si[37], csm[37], csi[37];
    float *cdw = malloc(D * 4), *cdb = malloc(D * 4);
    for (int k = 0; k < 3; k++) {
        int dt = dtypes[k];
        void *x = dt_buffer(x0, n, dt), *w = dt_buffer(w0, D, dt), *b = dt_buffer(b0, D, dt);
        void *dy = dt_buffer(dy0, n, dt), *y = dt_buffer(NULL, n, dt), *dx = dt_buffer(NULL, n, dt);
        void *dw = dt_buffer(NULL, D, dt), *db = dt_buffer(NULL, D, dt);
        float *xr = dt_values(x, n, dt), *wr = dt_values(w, D, dt), *br = dt_values(b, D, dt);
        float *dyr = dt_values(dy, n, dt);
        for (int affine = 0; affine < 2; affine++) {
            lg_layer_norm_dims d = {(int)rows, (int)D, 1e-5f, affine};
            const void *wp = affine ? w : NULL, *bp = affine ? b : NULL;
            for (size_t i = 0; i < D; i++) { /* both accumulate */
                lg_cuk_store(dw, i, dt, 0.25f), lg_cuk_store(db, i, dt, -0.5f);
                cdw[i] = 0.25f, cdb[i] = -0.5f;
            }
            for (size_t r = 0; r < rows; r++)
                lg_cuk_layer_norm_forward(r, dt, D, 1e-5f, x, wp, bp, y, sm, si);
            for (size_t r = 0; r < rows; r++)
                lg_cuk_layer_norm_backward(r, dt, D, x, wp, sm, si, dy, dx);
            for (size_t j = 0; j < D; j++)
                lg_cuk_layer_norm_param_grad(j, dt, rows, D, x, sm, si, dy, dw, db);
            ck_assert_int_eq(lg_layer_norm_forward(NULL, &d, xr, affine ? wr : NULL, affine ? br : NULL, cy, csm,
                                                   csi),
                             LG_OK);
            ck_assert_int_eq(lg_layer_norm_backward(NULL, &d, xr, affine ? wr : NULL, csm, csi, dyr, cdx,
                                                    affine ? cdw : NULL, affine ? cdb : NULL),
                             LG_OK);
            assert_dt_close("layer_norm", dt, y, cy, n, 1e-6, 1e-6);
            assert_close("layer_norm mean", sm, csm, rows, 1e-6, 1e-7);
            assert_close("layer_norm invstd", si, csi, rows, 1e-6, 1e-7);
            assert_dt_close("layer_norm dx", dt, dx, cdx, n, 1e-5, 1e-6);
            if (affine) {
                assert_dt_close("layer_norm dweight", dt, dw, cdw, D, 1e-5, 1e-6);
                assert_dt_close("layer_norm dbias", dt, db, cdb, D, 1e-5, 1e-6);
            }
        }
        free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(xr), free(wr), free(br),
            free(dyr);
    }
    free(x0), free(w0), free(b0), free(dy0), free(cy), free(cdx), free(cdw), free(cdb);
}
END_TEST

/* adaptive average pooling, upsample_nearest, transpose, concat/split and
 * rpn_flatten in f32, f16 and bf16: the moves bit for bit, the sums within
 * the 16-bit type's rounding. */
START_TEST(test_pool_upsample_transpose_match_cpu) {
    /* adaptive average pooling with uneven bins: 10x7 -> 4x3 */
    const size_t N = 2, C = 3, H = 10, W = 7, OH = 4, OW = 3, nin = N * C * H * W, nout = N * C * OH * OW;
    const int S = 3;
    const size_t nup = nin * S * S;
    float *x0 = random_floats(nin, 34, 1.0f), *dy0 = random_floats(nout, 35, 1.0f), *du0 = random_floats(nup, 36, 1.0f);
    float *cy = malloc(nup * 4), *cdx = malloc(nin * 4);
    for (int k = 0; k < 3; k++) {
        int dt = dtypes[k];
        void *x = dt_buffer(x0, nin, dt), *dy = dt_buffer(dy0, nout, dt), *du = dt_buffer(du0, nup, dt);
        void *y = dt_buffer(NULL, nup, dt), *dx = dt_buffer(NULL, nin, dt);
        float *xr = dt_values(x, nin, dt), *dyr = dt_values(dy, nout, dt), *dur = dt_values(du, nup, dt);
        lg_adaptive_pool2d_dims ad = {(int)C, (int)H, (int)W, (int)OH, (int)OW};
        for (size_t i = 0; i < nout; i++)
            lg_cuk_adaptive_pool_forward(i, dt, H, W, OH, OW, x, y);
        for (size_t i = 0; i < nin; i++)
            lg_cuk_adaptive_pool_backward(i, dt, H, W, OH, OW, dy, dx);
        ck_assert_int_eq(lg_adaptive_avg_pool2d_forward(NULL, &ad, N, xr, cy), LG_OK);
        ck_assert_int_eq(lg_adaptive_avg_pool2d_backward(NULL, &ad, N, dyr, cdx), LG_OK);
        assert_dt_close("adaptive_avg_pool2d", dt, y, cy, nout, 1e-6, 1e-7);
        assert_dt_close("adaptive_avg_pool2d backward", dt, dx, cdx, nin, 1e-6, 1e-7);

        /* upsample_nearest x3 */
        for (size_t i = 0; i < nup; i++)
            lg_cuk_upsample_forward(i, dt, H, W, S, x, y);
        for (size_t i = 0; i < nin; i++)
            lg_cuk_upsample_backward(i, dt, H, W, S, du, dx);
        ck_assert_int_eq(lg_upsample_nearest_forward(NULL, N, C, H, W, S, xr, cy), LG_OK);
        ck_assert_int_eq(lg_upsample_nearest_backward(NULL, N, C, H, W, S, dur, cdx), LG_OK);
        assert_dt_close("upsample_nearest", dt, y, cy, nup, 0, 0);
        assert_dt_close("upsample_nearest backward", dt, dx, cdx, nin, 1e-6, 1e-7);

        /* transpose [2, 3, 5, 7, 1] (what the launcher does: a gather through
         * the body's index) and back */
        lg_transpose_dims td = {2, 3, 5, 7, 1};
        size_t nt = 2 * 3 * 5 * 7;
        void *back = dt_buffer(NULL, nt, dt);
        for (size_t i = 0; i < nt; i++)
            lg_cuk_store(y, i, dt, lg_cuk_load(x, lg_cuk_transpose_src(i, 3, 5, 7, 1), dt));
        ck_assert_int_eq(lg_transpose_forward(NULL, &td, xr, cy), LG_OK);
        assert_dt_close("transpose", dt, y, cy, nt, 0, 0);
        for (size_t i = 0; i < nt; i++) /* backward: a and b exchanged */
            lg_cuk_store(back, i, dt, lg_cuk_load(y, lg_cuk_transpose_src(i, 7, 5, 3, 1), dt));
        assert_dt_close("transpose back", dt, back, xr, nt, 0, 0);

        /* concat of three pieces, and split back */
        size_t sizes[3] = {4, 1, 6}, outer = 5, total = 11;
        float *p0 = random_floats(outer * 4, 37, 1.0f), *p1 = random_floats(outer, 38, 1.0f);
        float *p2 = random_floats(outer * 6, 39, 1.0f), ccat[55];
        void *q0 = dt_buffer(p0, outer * 4, dt), *q1 = dt_buffer(p1, outer, dt), *q2 = dt_buffer(p2, outer * 6, dt);
        float *r0 = dt_values(q0, outer * 4, dt), *r1 = dt_values(q1, outer, dt), *r2 = dt_values(q2, outer * 6, dt);
        const void *ins[3] = {q0, q1, q2};
        const float *rins[3] = {r0, r1, r2};
        for (size_t i = 0; i < outer * total; i++) {
            size_t src;
            int which = lg_cuk_concat_src(i, 3, sizes, total, &src);
            lg_cuk_store(y, i, dt, lg_cuk_load(ins[which], src, dt));
        }
        ck_assert_int_eq(lg_concat_forward(NULL, outer, 3, sizes, rins, ccat), LG_OK);
        assert_dt_close("concat", dt, y, ccat, outer * total, 0, 0);
        void *s0 = dt_buffer(NULL, 20, dt), *s1 = dt_buffer(NULL, 5, dt), *s2 = dt_buffer(NULL, 30, dt);
        void *outs[3] = {s0, s1, s2};
        for (size_t i = 0; i < outer * total; i++) {
            size_t dst;
            int which = lg_cuk_concat_src(i, 3, sizes, total, &dst);
            lg_cuk_store(outs[which], dst, dt, lg_cuk_load(y, i, dt));
        }
        assert_dt_close("split 0", dt, s0, r0, 20, 0, 0);
        assert_dt_close("split 1", dt, s1, r1, 5, 0, 0);
        assert_dt_close("split 2", dt, s2, r2, 30, 0, 0);

        /* rpn_flatten: two levels (A = 3, D = 4) into 5 + ... rows of (N, total, D) */
        const int A = 3, D = 4, lh[2] = {4, 2}, lw[2] = {5, 3};
        const int total_rows = A * (lh[0] * lw[0] + lh[1] * lw[1]);
        size_t nflat = N * (size_t)total_rows * D;
        void *flat = dt_buffer(NULL, nflat, dt);
        float *cflat = malloc(nflat * 4), *dflat0 = random_floats(nflat, 40, 1.0f);
        void *dflat = dt_buffer(dflat0, nflat, dt);
        float *dflatr = dt_values(dflat, nflat, dt);
        for (int l = 0, off = 0; l < 2; l++) {
            size_t hw = (size_t)(lh[l] * lw[l]), nl = N * (size_t)(A * D) * hw;
            float *m0 = random_floats(nl, 41 + (unsigned)l, 1.0f), *cdm = malloc(nl * 4);
            void *m = dt_buffer(m0, nl, dt), *dm = dt_buffer(NULL, nl, dt);
            float *mr = dt_values(m, nl, dt);
            for (size_t i = 0; i < nl; i++) { /* the launcher's two directions */
                size_t j = lg_cuk_rpn_flatten_dst(i, (size_t)A, (size_t)D, hw, (size_t)total_rows, (size_t)off);
                lg_cuk_store(flat, j, dt, lg_cuk_load(m, i, dt));
                lg_cuk_store(dm, i, dt, lg_cuk_load(dflat, j, dt));
            }
            lg_rpn_permute_forward(mr, (int)N, A, D, lh[l], lw[l], cflat, total_rows, off);
            lg_rpn_permute_backward(dflatr, (int)N, A, D, lh[l], lw[l], total_rows, off, cdm);
            assert_dt_close("rpn_flatten backward", dt, dm, cdm, nl, 0, 0);
            off += A * (int)hw;
            free(m0), free(cdm), free(m), free(dm), free(mr);
        }
        assert_dt_close("rpn_flatten", dt, flat, cflat, nflat, 0, 0);
        free(flat), free(cflat), free(dflat0), free(dflat), free(dflatr);
        free(x), free(dy), free(du), free(y), free(dx), free(xr), free(dyr), free(dur), free(back);
        free(p0), free(p1), free(p2), free(q0), free(q1), free(q2), free(r0), free(r1), free(r2), free(s0), free(s1),
            free(s2);
    }
    free(x0), free(dy0), free(du0), free(cy), free(cdx);
}
END_TEST

/* The own max/avg pooling kernels against the CPU ones, bit for bit,
 * over configurations cuDNN cannot do (ceil_mode) and overlapping windows. */
START_TEST(test_pooling_matches_cpu) {
    static const struct {
        int H, W, k, s, p, ceil, cip;
    } cfgs[] = {{28, 28, 2, 2, 0, 0, 1}, {13, 11, 3, 2, 1, 1, 1}, {13, 11, 3, 2, 1, 1, 0},
                {9, 10, 3, 1, 1, 0, 0},  {7, 7, 2, 3, 0, 1, 1},   {12, 9, 4, 2, 2, 1, 0}};
    const size_t planes = 6;
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        lg_cuda_pool2d d = {.H = cfgs[k].H, .W = cfgs[k].W, .kh = cfgs[k].k, .kw = cfgs[k].k,
                            .sh = cfgs[k].s, .sw = cfgs[k].s, .ph = cfgs[k].p, .pw = cfgs[k].p,
                            .ceil_mode = cfgs[k].ceil, .count_include_pad = cfgs[k].cip};
        lg_pool2d_dims cd = {.c = (int)planes, .h_in = d.H, .w_in = d.W, .kh = d.kh, .kw = d.kw,
                             .sh = d.sh, .sw = d.sw, .ph = d.ph, .pw = d.pw, .ceil_mode = d.ceil_mode,
                             .count_include_pad = d.count_include_pad};
        ck_assert_int_eq(lg_pool2d_dims_init(&cd, "max_pool2d", NULL), LG_OK);
        d.OH = lg_cuk_pool_out(d.H, d.kh, d.sh, d.ph, d.ceil_mode);
        d.OW = lg_cuk_pool_out(d.W, d.kw, d.sw, d.pw, d.ceil_mode);
        ck_assert_int_eq(d.OH, cd.h_out);
        ck_assert_int_eq(d.OW, cd.w_out);
        size_t nin = planes * (size_t)(d.H * d.W), nout = planes * (size_t)(d.OH * d.OW);
        float *x = random_floats(nin, 60 + (unsigned)k, 1.0f), *dy = random_floats(nout, 70 + (unsigned)k, 1.0f);
        x[5] = x[6]; /* a tie inside a window */
        float *y = malloc(nout * 4), *cy = malloc(nout * 4), *dx = malloc(nin * 4), *cdx = malloc(nin * 4);
        int32_t *am = malloc(nout * 4), *cam = malloc(nout * 4);
        for (size_t i = 0; i < nout; i++)
            lg_cuk_max_pool_forward(i, &d, LG_CUDA_F32, x, y, am);
        for (size_t i = 0; i < nin; i++)
            lg_cuk_max_pool_backward(i, &d, LG_CUDA_F32, am, dy, dx);
        ck_assert_int_eq(lg_max_pool2d_forward(NULL, &cd, 1, x, cy, cam), LG_OK);
        ck_assert_int_eq(lg_max_pool2d_backward(NULL, &cd, 1, cam, dy, cdx), LG_OK);
        assert_close("max_pool2d", y, cy, nout, 0, 0);
        ck_assert_mem_eq(am, cam, nout * 4);
        assert_close("max_pool2d backward", dx, cdx, nin, 0, 0);
        for (size_t i = 0; i < nout; i++)
            lg_cuk_avg_pool_forward(i, &d, LG_CUDA_F32, x, y);
        for (size_t i = 0; i < nin; i++)
            lg_cuk_avg_pool_backward(i, &d, LG_CUDA_F32, dy, dx);
        ck_assert_int_eq(lg_avg_pool2d_forward(NULL, &cd, 1, x, cy), LG_OK);
        ck_assert_int_eq(lg_avg_pool2d_backward(NULL, &cd, 1, dy, cdx), LG_OK);
        assert_close("avg_pool2d", y, cy, nout, 0, 0);
        assert_close("avg_pool2d backward", dx, cdx, nin, 1e-6, 1e-7);
        free(x), free(dy), free(y), free(cy), free(dx), free(cdx), free(am), free(cam);
    }
}
END_TEST

/* concat/split of more pieces than one launch takes (LG_CUDA_MAX_CONCAT):
 * lg_cuda_concat's launches, each of its columns of the whole tensor, as
 * the host runs them, against the CPU kernels. */
START_TEST(test_many_pieces_concat_matches_cpu) {
    enum { K = 11 };
    const size_t outer = 4;
    size_t sizes[K], stride = 0;
    float *pieces[K], *back[K];
    for (int i = 0; i < K; i++) {
        sizes[i] = (size_t)(1 + (i * 7) % 5);
        stride += sizes[i];
        pieces[i] = random_floats(outer * sizes[i], 50 + (unsigned)i, 1.0f);
        back[i] = malloc(outer * sizes[i] * 4);
    }
    float *y = malloc(outer * stride * 4), *cy = malloc(outer * stride * 4);
    size_t col0 = 0;
    for (int first = 0; first < K; first += LG_CUDA_MAX_CONCAT) { /* kernels.cu's concat_split */
        int m = K - first < LG_CUDA_MAX_CONCAT ? K - first : LG_CUDA_MAX_CONCAT;
        size_t total = 0;
        for (int i = 0; i < m; i++)
            total += sizes[first + i];
        for (size_t i = 0; i < outer * total; i++) {
            size_t src;
            int which = first + lg_cuk_concat_src(i, m, sizes + first, total, &src);
            size_t w = lg_cuk_concat_whole(i, total, stride, col0);
            y[w] = pieces[which][src];
            back[which][src] = y[w]; /* split: the same map the other way */
        }
        col0 += total;
    }
    ck_assert_int_eq(lg_concat_forward(NULL, outer, K, sizes, (const float *const *)pieces, cy), LG_OK);
    assert_close("concat of 11", y, cy, outer * stride, 0, 0);
    for (int i = 0; i < K; i++) {
        assert_close("split into 11", back[i], pieces[i], outer * sizes[i], 0, 0);
        free(pieces[i]), free(back[i]);
    }
    free(y), free(cy);
}
END_TEST

START_TEST(test_topk_accuracy_matches_cpu) {
    const int N = 200, C = 10;
    float *logits = random_floats((size_t)N * C, 40, 1.0f);
    int32_t labels[200];
    for (int i = 0; i < N; i++)
        labels[i] = (i * 3) % C;
    logits[5 * C + 2] = logits[5 * C + 7]; /* a tie */
    for (int k = 1; k <= 5; k += 2) {
        float acc = 0, cacc;
        for (size_t i = 0; i < (size_t)N; i++)
            acc += lg_cuk_topk_row(i, logits, labels, C, k);
        acc /= (float)N;
        ck_assert_int_eq(lg_topk_accuracy(NULL, (size_t)N, C, k, logits, labels, &cacc), LG_OK);
        assert_close("topk_accuracy", &acc, &cacc, 1, 0, 1e-6);
        ck_assert(acc > 0.0f);
    }
    free(logits);
}
END_TEST

/* ---- detection -------------------------------------------------------------------------- */

static float *random_boxes(size_t n, unsigned seed, float extent, float size) {
    float *r = random_floats(4 * n, seed, 1.0f), *b = malloc(4 * n * sizeof *b);
    for (size_t i = 0; i < n; i++) {
        float x = extent * (0.5f + 0.5f * r[4 * i]), y = extent * (0.5f + 0.5f * r[4 * i + 1]);
        b[4 * i] = x, b[4 * i + 1] = y;
        b[4 * i + 2] = x + size * (1.2f + r[4 * i + 2]), b[4 * i + 3] = y + size * (1.2f + r[4 * i + 3]);
    }
    free(r);
    return b;
}

START_TEST(test_iou_and_matcher_match_cpu) {
    const int G = 7, P = 300;
    float *gt = random_boxes((size_t)G, 20, 100, 30), *pred = random_boxes((size_t)P, 21, 100, 25);
    float *iou = malloc((size_t)G * P * 4), *ciou = malloc((size_t)G * P * 4), highest[7];
    int *m = malloc((size_t)P * sizeof *m), *cm = malloc((size_t)P * sizeof *cm);
    for (size_t i = 0; i < (size_t)G * P; i++)
        lg_cuk_box_iou(i, gt, pred, (size_t)P, iou);
    ck_assert_int_eq(lg_box_iou(NULL, gt, G, pred, P, ciou), LG_OK);
    assert_close("box_iou", iou, ciou, (size_t)G * P, 0, 0);
    float ws[16];
    for (int low_quality = 0; low_quality < 2; low_quality++) {
        lg_cuda_matcher cfg = {0.5f, 0.3f, low_quality};
        lg_matcher ccfg = {0.5f, 0.3f, low_quality};
        for (size_t g = 0; g < (size_t)G; g++)
            lg_cuk_match_highest(g, iou, P, highest);
        int counts[3] = {0, 0, 0};
        for (size_t p = 0; p < (size_t)P; p++) {
            m[p] = lg_cuk_match(p, &cfg, iou, G, P, highest);
            counts[m[p] >= 0 ? 0 : -m[p]]++;
        }
        ck_assert_int_eq(lg_match(NULL, &ccfg, ciou, G, P, ws, cm), LG_OK);
        for (int p = 0; p < P; p++)
            ck_assert_msg(m[p] == cm[p], "match[%d]: body %d, CPU %d", p, m[p], cm[p]);
        /* the data exercise all three outcomes */
        ck_assert(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
    }
    ck_assert_int_eq(lg_cuk_match(0, &(lg_cuda_matcher){0.5f, 0.3f, 1}, iou, 0, P, highest),
                     LG_CUDA_MATCH_BELOW_LOW);
    ck_assert_int_eq(LG_CUDA_MATCH_BELOW_LOW, LG_MATCH_BELOW_LOW);
    ck_assert_int_eq(LG_CUDA_MATCH_BETWEEN, LG_MATCH_BETWEEN);
    free(gt), free(pred), free(iou), free(ciou), free(m), free(cm);
}
END_TEST

START_TEST(test_nms_matches_cpu) {
    const size_t n = 400;
    float *boxes = random_boxes(n, 22, 120, 20), *scores = random_floats(n, 23, 1.0f);
    scores[7] = scores[100]; /* a tie */
    size_t blocks = (n + 63) / 64;
    int *order = malloc(n * sizeof *order), *keep = malloc(n * sizeof *keep), *ckeep = malloc(n * sizeof *ckeep);
    float *sorted = malloc(4 * n * 4);
    uint64_t *mask = malloc(n * blocks * 8), removed[8];
    for (size_t i = 0; i < n; i++)
        order[lg_cuk_rank_desc(i, scores, n)] = (int)i;
    for (size_t k = 0; k < 4 * n; k++)
        sorted[k] = boxes[4 * (size_t)order[k / 4] + k % 4];
    for (size_t t = 0; t < n * blocks; t++)
        lg_cuk_nms_mask(t / blocks, t % blocks, sorted, NULL, n, 0.4f, mask);
    int num, cnum;
    lg_cuk_nms_reduce(n, mask, removed, order, keep, &num, (int)n);
    void *ws = malloc(lg_nms_workspace((int)n));
    ck_assert_int_eq(lg_nms(NULL, boxes, scores, (int)n, 0.4f, ws, ckeep, &cnum), LG_OK);
    ck_assert_int_eq(num, cnum);
    ck_assert_int_lt(num, (int)n); /* something was suppressed */
    for (int i = 0; i < num; i++)
        ck_assert_msg(keep[i] == ckeep[i], "keep[%d]: body %d, CPU %d", i, keep[i], ckeep[i]);
    free(boxes), free(scores), free(order), free(keep), free(ckeep), free(sorted), free(mask), free(ws);
}
END_TEST

/* What lg_cuda_batched_nms runs: rank, gather (boxes and groups), mask, reduce. */
static int host_batched_nms(const float *boxes, const float *scores, const int *groups, size_t n,
                            float thresh, int *keep) {
    size_t blocks = (n + 63) / 64;
    int *order = malloc(n * sizeof *order), *sg = malloc(n * sizeof *sg), num;
    float *sorted = malloc(4 * n * 4);
    uint64_t *mask = malloc(n * blocks * 8), *removed = malloc(blocks * 8);
    for (size_t i = 0; i < n; i++)
        order[lg_cuk_rank_desc(i, scores, n)] = (int)i;
    for (size_t k = 0; k < 4 * n; k++)
        sorted[k] = boxes[4 * (size_t)order[k / 4] + k % 4];
    for (size_t r = 0; r < n; r++)
        sg[r] = groups ? groups[order[r]] : 0;
    for (size_t t = 0; t < n * blocks; t++)
        lg_cuk_nms_mask(t / blocks, t % blocks, sorted, groups ? sg : NULL, n, thresh, mask);
    lg_cuk_nms_reduce(n, mask, removed, order, keep, &num, (int)n);
    free(order), free(sg), free(sorted), free(mask), free(removed);
    return num;
}

START_TEST(test_batched_nms_matches_cpu) {
    const size_t n = 500;
    float *boxes = random_boxes(n, 28, 100, 20), *scores = random_floats(n, 29, 1.0f);
    int *groups = malloc(n * sizeof *groups), *keep = malloc(n * sizeof *keep), *ckeep = malloc(n * sizeof *ckeep);
    for (size_t i = 0; i < n; i++)
        groups[i] = (int)(i * 7 % 5);
    void *ws = malloc(lg_nms_workspace((int)n));
    int cnum, num = host_batched_nms(boxes, scores, groups, n, 0.5f, keep);
    ck_assert_int_eq(lg_batched_nms(NULL, boxes, scores, groups, (int)n, 0.5f, ws, ckeep, &cnum), LG_OK);
    ck_assert_int_eq(num, cnum);
    for (int i = 0; i < num; i++)
        ck_assert_msg(keep[i] == ckeep[i], "keep[%d]: body %d, CPU %d", i, keep[i], ckeep[i]);
    /* grouping keeps more than plain NMS would */
    ck_assert_int_gt(num, host_batched_nms(boxes, scores, NULL, n, 0.5f, keep));
    free(boxes), free(scores), free(groups), free(keep), free(ckeep), free(ws);
}
END_TEST

START_TEST(test_box_coder_matches_cpu) {
    const size_t n = 300;
    float *ref = random_boxes(n, 41, 200, 30), *gt = random_boxes(n, 42, 200, 40);
    float *deltas = random_floats(4 * n, 43, 3.0f); /* some dw, dh beyond the clamp */
    float *out = malloc(4 * n * 4), *cout = malloc(4 * n * 4), *enc = malloc(4 * n * 4), *cenc = malloc(4 * n * 4);
    const lg_cuda_box_coder coders[2] = {{1, 1, 1, 1, LG_BBOX_XFORM_CLIP}, {10, 10, 5, 5, LG_BBOX_XFORM_CLIP}};
    const lg_box_coder ccoders[2] = {LG_BOX_CODER_RPN, LG_BOX_CODER_ROI};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n; i++) {
            lg_cuk_box_decode(i, &coders[k], deltas, ref, out);
            lg_cuk_box_encode(i, &coders[k], gt, ref, enc);
        }
        ck_assert_int_eq(lg_box_decode(NULL, &ccoders[k], deltas, ref, (int)n, cout), LG_OK);
        ck_assert_int_eq(lg_box_encode(NULL, &ccoders[k], gt, ref, (int)n, cenc), LG_OK);
        assert_close("box decode", out, cout, 4 * n, 1e-6, 1e-4);
        assert_close("box encode", enc, cenc, 4 * n, 1e-6, 1e-6);
    }
    for (size_t i = 0; i < n; i++)
        lg_cuk_box_clip(i, out, 120.0f, 150.0f);
    lg_boxes_clip(cout, (int)n, 120, 150);
    assert_close("box clip", out, cout, 4 * n, 0, 0);
    free(ref), free(gt), free(deltas), free(out), free(cout), free(enc), free(cenc);
}
END_TEST

START_TEST(test_roi_align_matches_cpu) {
    enum { N = 2, C = 3, H0 = 24, W0 = 32, H1 = 12, W1 = 16, K = 24, PH = 7, PW = 5 };
    size_t n0 = (size_t)N * C * H0 * W0, n1 = (size_t)N * C * H1 * W1, nout = (size_t)K * C * PH * PW;
    float *f0 = random_floats(n0, 24, 1.0f), *f1 = random_floats(n1, 25, 1.0f);
    float *b = random_boxes(K, 26, 70, 40), rois[5 * K];
    for (int k = 0; k < K; k++) {
        rois[5 * k] = k == 5 ? -1.0f : (float)(k % N); /* row 5 is padding */
        memcpy(rois + 5 * k + 1, b + 4 * k, 4 * sizeof(float));
    }
    rois[5 * 3 + 3] += 300, rois[5 * 3 + 4] += 300; /* a big box: the coarse level */
    float *out = malloc(nout * 4), *cout = malloc(nout * 4), *dout = random_floats(nout, 27, 1.0f);
    float *g0 = calloc(n0, 4), *g1 = calloc(n1, 4), *cg0 = malloc(n0 * 4), *cg1 = malloc(n1 * 4);
    for (int aligned = 0; aligned < 2; aligned++) {
        /* one level */
        lg_cuda_roi_align d = {.C = C, .PH = PH, .PW = PW, .sampling_ratio = aligned ? 0 : 2,
                               .aligned = aligned, .levels = 1, .k_min = 2};
        d.H[0] = H0, d.W[0] = W0, d.spatial_scale[0] = 0.25f;
        lg_roi_align_config cfg = {PH, PW, 0.25f, aligned ? 0 : 2, aligned};
        const float *lv[1] = {f0};
        float *gl[1] = {g0};
        memset(g0, 0, n0 * 4);
        for (size_t i = 0; i < nout; i++)
            lg_cuk_roi_align_forward(i, &d, lv, rois, out);
        for (size_t i = 0; i < nout; i++)
            lg_cuk_roi_align_backward(i, &d, gl, rois, dout);
        ck_assert_int_eq(lg_roi_align_forward(NULL, &cfg, f0, N, C, H0, W0, rois, K, cout), LG_OK);
        ck_assert_int_eq(lg_roi_align_backward(NULL, &cfg, dout, N, C, H0, W0, rois, K, cg0), LG_OK);
        assert_close("roi_align", out, cout, nout, 1e-5, 1e-6);
        assert_close("roi_align backward", g0, cg0, n0, 1e-5, 1e-6);

        /* two levels (strides 4 and 8) */
        lg_cuda_roi_align d2 = d;
        d2.levels = 2;
        d2.H[1] = H1, d2.W[1] = W1, d2.spatial_scale[1] = 0.125f;
        lg_multiscale_roi_align ms = {.num_levels = 2, .scales = {0.25f, 0.125f}, .pooled_h = PH,
                                      .pooled_w = PW, .sampling_ratio = d.sampling_ratio,
                                      .aligned = aligned, .canonical_scale = 224, .canonical_level = 4};
        const float *lv2[2] = {f0, f1};
        float *gl2[2] = {g0, g1};
        float *cgl2[2] = {cg0, cg1};
        int heights[2] = {H0, H1}, widths[2] = {W0, W1}, levels[K];
        memset(g0, 0, n0 * 4), memset(g1, 0, n1 * 4);
        for (size_t i = 0; i < nout; i++)
            lg_cuk_roi_align_forward(i, &d2, lv2, rois, out);
        for (size_t i = 0; i < nout; i++)
            lg_cuk_roi_align_backward(i, &d2, gl2, rois, dout);
        ck_assert_int_eq(lg_roi_levels(NULL, &ms, rois, K, levels), LG_OK);
        int coarse = 0;
        for (int k = 0; k < K; k++)
            if (rois[5 * k] >= 0) {
                ck_assert_int_eq(lg_cuk_roi_level(&d2, rois + 5 * k), levels[k]);
                coarse += levels[k] == 1;
            }
        ck_assert_int_gt(coarse, 0);
        ck_assert_int_eq(lg_multiscale_roi_align_forward(NULL, &ms, lv2, heights, widths, N, C, rois, K, cout),
                         LG_OK);
        ck_assert_int_eq(lg_multiscale_roi_align_backward(NULL, &ms, dout, heights, widths, N, C, rois, K, cgl2),
                         LG_OK);
        assert_close("multiscale roi_align", out, cout, nout, 1e-5, 1e-6);
        assert_close("multiscale backward level 0", g0, cg0, n0, 1e-5, 1e-6);
        assert_close("multiscale backward level 1", g1, cg1, n1, 1e-5, 1e-6);
    }
    free(f0), free(f1), free(b), free(out), free(cout), free(dout), free(g0), free(g1), free(cg0), free(cg1);
}
END_TEST

static Suite *cuda_twins_suite(void) {
    Suite *s = suite_create("cuda_twins");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, test_activations_match_cpu);
    tcase_add_test(tc, test_cross_entropy_matches_cpu);
    tcase_add_test(tc, test_optimizers_match_cpu);
    tcase_add_test(tc, test_elementwise_match_cpu);
    tcase_add_test(tc, test_dropout_matches_cpu);
    tcase_add_test(tc, test_softmax_matches_cpu);
    tcase_add_test(tc, test_global_avg_pool_matches_cpu);
    tcase_add_test(tc, test_losses_match_cpu);
    tcase_add_test(tc, test_clipping_matches_cpu);
    tcase_add_test(tc, test_layer_norm_matches_cpu);
    tcase_add_test(tc, test_pool_upsample_transpose_match_cpu);
    tcase_add_test(tc, test_many_pieces_concat_matches_cpu);
    tcase_add_test(tc, test_topk_accuracy_matches_cpu);
    tcase_add_test(tc, test_pooling_matches_cpu);
    tcase_add_test(tc, test_iou_and_matcher_match_cpu);
    tcase_add_test(tc, test_nms_matches_cpu);
    tcase_add_test(tc, test_batched_nms_matches_cpu);
    tcase_add_test(tc, test_box_coder_matches_cpu);
    tcase_add_test(tc, test_roi_align_matches_cpu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(cuda_twins_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
