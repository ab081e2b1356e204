/* check_ops.c — the CPU kernels (lgen/kernels.h) against PyTorch and against
 * finite differences.
 *
 * Parity: tests/fixtures/ops/ops.bin (written by tests/fixtures/gen_ops.py
 * with torch in float64) holds inputs, outputs and gradients for every op;
 * the float32 kernels must match within 1e-5 (forward) and 1e-4
 * (gradients), the float64 twins within 1e-9. "Within r" means
 * |got - want| <= r * (|want| + mean |want|): relative, with the tensor's
 * mean magnitude as the floor for values that cancel to near zero.
 * Gradient checks: the float64 backward against central differences.
 * Also: bad arguments give LG_ERR_ARG and a message naming the op; results
 * do not depend on the thread count; dropout is seeded and deterministic.
 */
#include "lgen/kernels.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_ops_fixture.h"

static fx_file fixture;
static lg_error test_err;
static lg_ctx test_ctx; /* one thread unless a test says otherwise */

typedef struct {
    const fx_file *fx;
    const char *name;
    const double *dims;
    int ninputs;
} case_ctx;

static void expect_close(const char *op, const char *what, size_t elem, const void *got, const double *want,
                         size_t n, double rtol) {
    double mean = 0;
    for (size_t i = 0; i < n; i++)
        mean += fabs(want[i]);
    mean = n ? mean / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        double g = elem == sizeof(float) ? ((const float *)got)[i] : ((const double *)got)[i];
        ck_assert_msg(fabs(g - want[i]) <= rtol * (fabs(want[i]) + mean),
                      "%s: %s[%zu] = %.9g, PyTorch %.9g (rtol %g)", op, what, i, g, want[i], rtol);
    }
}

static void setup(void) {
    ck_assert_msg(fx_load(&fixture, "tests/fixtures/ops/ops.bin") == 0,
                  "cannot read tests/fixtures/ops/ops.bin (run from the top directory)");
    memset(&test_err, 0, sizeof test_err);
    memset(&test_ctx, 0, sizeof test_ctx);
    test_ctx.threads = 1;
    test_ctx.err = &test_err;
}

static void teardown(void) {
    fx_free(&fixture);
}

#define T float
#define R(x) x##_f32
#define FN(x) x
#include "check_ops_cases.inc"
#undef T
#undef R
#undef FN
#define T double
#define R(x) x##_f64
#define FN(x) x##_f64
#include "check_ops_cases.inc"
#undef T
#undef R
#undef FN

#define NCASES ((int)(sizeof cases_f32 / sizeof cases_f32[0]))

START_TEST(parity_f32) {
    check_case_f32(_i, 1e-5, 1e-4, 0);
}
END_TEST

START_TEST(parity_f64_and_gradcheck) {
    check_case_f64(_i, 1e-9, 1e-9, 1);
}
END_TEST

START_TEST(parity_f32_two_threads) {
    /* the same cases on a 2-thread pool give the same bits as 1 thread */
    lg_ctx two;
    ck_assert_int_eq(lg_ctx_init(&two, 2, &test_err), LG_OK);
    const op_case_f32 *oc = &cases_f32[_i];
    case_ctx c = {&fixture, oc->name, NULL, oc->ninputs};
    const fx_tensor *dims = fx_find(&fixture, "%s/%s", oc->name, "dims");
    c.dims = dims ? dims->data : NULL;
    const char *const *names = input_names_f32[!strcmp(oc->name, "mul") || !strcmp(oc->name, "concat")];
    float *in[3] = {0}, *d1[3] = {0}, *d2[3] = {0};
    size_t nin[3] = {0};
    for (int k = 0; k < oc->ninputs; k++) {
        in[k] = load_f32(&c, names[k]);
        nin[k] = get_f32(&c, names[k])->count;
        d1[k] = calloc(nin[k], sizeof(float));
        d2[k] = calloc(nin[k], sizeof(float));
    }
    size_t ny = get_f32(&c, "y")->count;
    float *y1 = calloc(ny, sizeof(float)), *y2 = calloc(ny, sizeof(float)), *dy = load_f32(&c, "dy");
    oc->run(&c, in, y1, oc->has_backward ? dy : NULL, d1);
    lg_ctx one = test_ctx;
    test_ctx = two;
    oc->run(&c, in, y2, oc->has_backward ? dy : NULL, d2);
    test_ctx = one;
    ck_assert_msg(memcmp(y1, y2, ny * sizeof(float)) == 0, "%s: output differs between 1 and 2 threads", oc->name);
    for (int k = 0; k < oc->ninputs; k++) {
        ck_assert_msg(memcmp(d1[k], d2[k], nin[k] * sizeof(float)) == 0, "%s: d%s differs between 1 and 2 threads",
                      oc->name, names[k]);
        free(in[k]), free(d1[k]), free(d2[k]);
    }
    free(y1), free(y2), free(dy);
    lg_ctx_free(&two);
}
END_TEST

/* The inputs of the large cases: total values sin(step i), rounded to float,
 * as a double buffer (returned, for the float64 twin) and two float copies
 * (for a 1-thread and a 2-thread run). */
static double *twin_buffers(size_t total, double step, float *f[2]) {
    double *g = calloc(total, sizeof(double));
    ck_assert_ptr_nonnull(g);
    for (size_t i = 0; i < total; i++)
        g[i] = (double)(float)sin(step * (double)i);
    for (int t = 0; t < 2; t++) {
        f[t] = malloc(total * sizeof(float));
        ck_assert_ptr_nonnull(f[t]);
        for (size_t i = 0; i < total; i++)
            f[t][i] = (float)g[i];
    }
    return g;
}

/* A 3x3 padding-1 conv2d of c_in -> c_out channels over hw x hw pixels at
 * batch n, forward and backward: bit-equal on 1 and 2 threads, and equal to
 * the float64 twin within 1e-4 (the forward output within fwd_rtol). */
static void large_conv_case(const char *name, int c_in, int hw, int c_out, size_t n, double fwd_rtol) {
    lg_conv2d_dims d = {.c_in = c_in, .h_in = hw, .w_in = hw, .c_out = c_out, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                        .ph = 1, .pw = 1, .dh = 1, .dw = 1, .groups = 1, .bias = 1};
    ck_assert_int_eq(lg_conv2d_dims_init(&d, &test_err), LG_OK);
    size_t xs = n * (size_t)(c_in * hw * hw), ys = n * (size_t)(c_out * hw * hw), wsz = (size_t)(c_out * c_in * 9);
    size_t cb = (size_t)c_out, total = xs * 2 + ys * 2 + wsz * 2 + cb * 2;
    float *f[2];
    double *g = twin_buffers(total, 0.37, f);
    lg_ctx two;
    ck_assert_int_eq(lg_ctx_init(&two, 2, &test_err), LG_OK);
    for (int t = 0; t < 2; t++) {
        float *x = f[t], *dx = x + xs, *y = dx + xs, *dy = y + ys, *w = dy + ys, *dw = w + wsz, *b = dw + wsz,
              *db = b + cb;
        size_t wsb = lg_conv2d_workspace(&d, n);
        void *ws = malloc(wsb);
        lg_ctx *c = t ? &two : &test_ctx;
        ck_assert_int_eq(lg_conv2d_forward(c, &d, n, x, w, b, y, ws, wsb), LG_OK);
        ck_assert_int_eq(lg_conv2d_backward(c, &d, n, x, w, dy, dx, dw, db, ws, wsb), LG_OK);
        free(ws);
    }
    ck_assert_msg(memcmp(f[0], f[1], total * sizeof(float)) == 0, "%s: results differ between 1 and 2 threads", name);
    double *x = g, *dx = x + xs, *y = dx + xs, *dy = y + ys, *w = dy + ys, *dw = w + wsz, *b = dw + wsz, *db = b + cb;
    size_t wsb = lg_conv2d_workspace_f64(&d, n);
    void *ws = malloc(wsb);
    ck_assert_int_eq(lg_conv2d_forward_f64(&two, &d, n, x, w, b, y, ws, wsb), LG_OK);
    ck_assert_int_eq(lg_conv2d_backward_f64(&two, &d, n, x, w, dy, dx, dw, db, ws, wsb), LG_OK);
    expect_close(name, "all", sizeof(float), f[0], g, total, 1e-4);
    expect_close(name, "y", sizeof(float), f[0] + 2 * xs, y, ys, fwd_rtol);
    free(ws), free(f[0]), free(f[1]), free(g);
    lg_ctx_free(&two);
}

/* Shapes big enough for tiled GEMMs and several conv batch chunks. */
START_TEST(large_conv_thread_independent) {
    large_conv_case("conv2d (large)", 16, 20, 96, 24, 1e-5);
}
END_TEST

/* 64 channels over 28x28 pixels: the shapes conv_dnnl.c runs by Winograd's
 * algorithm on AVX-512 (every direction), in chunks of 2, 2 and 1 images.
 * Its forward rounds to within 2e-5 (by expect_close's measure); direct
 * kernels, which LGEN_CONV_WINOGRAD=0 asks for (tests/ops/direct.sh), within
 * 3e-6, which Winograd's misses. */
START_TEST(large_conv_winograd) {
    const char *w = getenv("LGEN_CONV_WINOGRAD");
    large_conv_case("conv2d (Winograd)", 64, 28, 64, 5, w && *w == '0' ? 3e-6 : 2e-5);
}
END_TEST

/* 256 channels over 7x7 pixels: on Sapphire Rapids-class CPUs, forward and
 * backward-data run split by channels (conv_dnnl.c's split_of), the weights
 * gradient on im2col + GEMM; elsewhere in batch chunks. */
START_TEST(large_conv_deep) {
    large_conv_case("conv2d (deep, 7x7)", 256, 7, 256, 3, 1e-5);
}
END_TEST

/* 128 channels over 16x16 pixels, 576 KiB of weights: oneDNN writes the
 * weights gradient in its blocked layout and the lanes sum there
 * (conv_dnnl.c's wsum_task), lane 0 over a chunk of 2 and one of 1. */
START_TEST(large_conv_wide) {
    large_conv_case("conv2d (wide weights)", 128, 16, 128, 5, 1e-5);
}
END_TEST

/* A linear layer big enough that its GEMM tiles run on oneDNN's GEMM
 * (runtime/ops/gemm_f32.c: tiles of >= 8 MFLOP; here 2 tiles of 23.6):
 * bit-equal on 1 and 2 threads, and equal to the float64 twin (OpenBLAS's
 * dgemm) within 1e-5 forward, 1e-4 backward. */
START_TEST(large_linear_thread_independent) {
    enum { ROWS = 96, IN = 640, OUT = 384 };
    lg_linear_dims d = {IN, OUT, 1};
    size_t xs = ROWS * IN, ys = ROWS * OUT, ws = (size_t)OUT * IN;
    size_t total = 2 * xs + 2 * ys + 2 * ws + 2 * OUT; /* x dx y dy w dw b db */
    float *f[2];
    double *g = twin_buffers(total, 0.53, f);
    lg_ctx two;
    ck_assert_int_eq(lg_ctx_init(&two, 2, &test_err), LG_OK);
    for (int t = 0; t < 2; t++) {
        float *x = f[t], *dx = x + xs, *y = dx + xs, *dy = y + ys, *w = dy + ys, *dw = w + ws, *b = dw + ws,
              *db = b + OUT;
        lg_ctx *c = t ? &two : &test_ctx;
        ck_assert_int_eq(lg_linear_forward(c, &d, ROWS, x, w, b, y), LG_OK);
        ck_assert_int_eq(lg_linear_backward(c, &d, ROWS, x, w, dy, dx, dw, db), LG_OK);
    }
    ck_assert_msg(memcmp(f[0], f[1], total * sizeof(float)) == 0, "linear results differ between 1 and 2 threads");
    double *x = g, *dx = x + xs, *y = dx + xs, *dy = y + ys, *w = dy + ys, *dw = w + ws, *b = dw + ws, *db = b + OUT;
    ck_assert_int_eq(lg_linear_forward_f64(&two, &d, ROWS, x, w, b, y), LG_OK);
    ck_assert_int_eq(lg_linear_backward_f64(&two, &d, ROWS, x, w, dy, dx, dw, db), LG_OK);
    expect_close("linear (large)", "y", sizeof(float), f[0] + 2 * xs, y, ys, 1e-5);
    expect_close("linear (large)", "dx", sizeof(float), f[0] + xs, dx, xs, 1e-4);
    expect_close("linear (large)", "dweight", sizeof(float), f[0] + 2 * xs + 2 * ys + ws, dw, ws, 1e-4);
    expect_close("linear (large)", "dbias", sizeof(float), f[0] + 2 * xs + 2 * ys + 2 * ws + OUT, db, OUT, 1e-4);
    free(f[0]), free(f[1]), free(g);
    lg_ctx_free(&two);
}
END_TEST

typedef struct {
    long hits[16];
} stress_arg;

static void stress_task(void *arg, size_t t) {
    ((stress_arg *)arg)->hits[t]++;
}

/* The pool under many short jobs back to back (the spin/sleep hand-off):
 * every task of every job runs exactly once. */
START_TEST(pool_stress) {
    for (int threads = 1; threads <= 3; threads++) {
        lg_ctx c;
        ck_assert_int_eq(lg_ctx_init(&c, threads, &test_err), LG_OK);
        stress_arg a = {{0}};
        long want[16] = {0};
        for (int i = 0; i < 20000; i++) {
            size_t n = 2 + (size_t)(i % 14);
            lg_parallel_for(&c, n, stress_task, &a);
            for (size_t t = 0; t < n; t++)
                want[t]++;
            if (i % 5000 == 4999)
                usleep(3000); /* let the workers fall asleep, then wake them */
        }
        for (int t = 0; t < 16; t++)
            ck_assert_int_eq(a.hits[t], want[t]);
        lg_ctx_free(&c);
    }
    lg_ctx bad;
    ck_assert_int_eq(lg_ctx_init(&bad, -1, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "threads: -1 is out of range [0, 1024]");
}
END_TEST

/* The small ops with closed-form results (not worth a fixture). */
START_TEST(arith_and_reductions) {
    double a[5] = {1, -2, 3.5, 0.25, -8}, b[5] = {2, 2, -1, 4, 0.5}, y[5], da[5], db[5], s, g = 3;
    ck_assert_int_eq(lg_add_forward_f64(&test_ctx, 5, a, b, y), LG_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_double_eq(y[i], a[i] + b[i]);
    ck_assert_int_eq(lg_add_backward_f64(&test_ctx, 5, b, da, db), LG_OK);
    ck_assert_int_eq(memcmp(da, b, sizeof b), 0);
    ck_assert_int_eq(memcmp(db, b, sizeof b), 0);
    ck_assert_int_eq(lg_scale_forward_f64(&test_ctx, 5, -0.5, a, y), LG_OK);
    ck_assert_int_eq(lg_scale_backward_f64(&test_ctx, 5, -0.5, b, da), LG_OK);
    for (int i = 0; i < 5; i++) {
        ck_assert_double_eq(y[i], -0.5 * a[i]);
        ck_assert_double_eq(da[i], -0.5 * b[i]);
    }
    memcpy(y, a, sizeof a);
    ck_assert_int_eq(lg_accumulate_f64(&test_ctx, 5, b, y), LG_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_double_eq(y[i], a[i] + b[i]);
    ck_assert_int_eq(lg_sum_forward_f64(&test_ctx, 5, a, &s), LG_OK);
    ck_assert_double_eq(s, -5.25);
    ck_assert_int_eq(lg_mean_forward_f64(&test_ctx, 5, a, &s), LG_OK);
    ck_assert_double_eq(s, -1.05);
    ck_assert_int_eq(lg_sum_backward_f64(&test_ctx, 5, &g, da), LG_OK);
    ck_assert_int_eq(lg_mean_backward_f64(&test_ctx, 5, &g, db), LG_OK);
    for (int i = 0; i < 5; i++) {
        ck_assert_double_eq(da[i], 3);
        ck_assert_double_eq(db[i], 0.6);
    }
    ck_assert_int_eq(lg_mean_forward_f64(&test_ctx, 0, a, &s), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "mean: the mean of zero elements is undefined");
    /* a large relu runs in several pool chunks: same as element by element */
    enum { N = 300001 };
    float *x = malloc(N * sizeof(float)), *r = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++)
        x[i] = (float)(((long)i * 7919) % 1001) - 500.0f;
    lg_ctx two;
    ck_assert_int_eq(lg_ctx_init(&two, 2, &test_err), LG_OK);
    ck_assert_int_eq(lg_relu_forward(&two, N, x, r), LG_OK);
    for (int i = 0; i < N; i++)
        ck_assert_float_eq(r[i], x[i] > 0 ? x[i] : 0.0f);
    lg_ctx_free(&two);
    free(x), free(r);
}
END_TEST

/* The float gelu, sigmoid and silu (inline polynomials, pointwise.inc),
 * and gelu's gradient, against their float64 twins over [-20, 20], far
 * tails and special values:
 * absolute errors the parity fixtures' few hundred random inputs would not
 * find. Run on two threads so the input spans several pool chunks and all
 * vector widths' tails. */
START_TEST(activations_float_range) {
    enum { N = 400001 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    double *xd = malloc(N * sizeof(double)), *yd = malloc(N * sizeof(double));
    for (int i = 0; i < N; i++)
        xd[i] = x[i] = -20.0f + 40.0f * (float)i / (float)(N - 1);
    lg_ctx two;
    ck_assert_int_eq(lg_ctx_init(&two, 2, &test_err), LG_OK);
    static const struct {
        const char *op;
        double atol;
    } ops[] = {{"gelu", 4e-7}, {"sigmoid", 1.5e-7}, {"silu", 1.5e-7}}; /* plus 3e-7 relative */
    for (int k = 0; k < 3; k++) {
        const char *op = ops[k].op;
        if (k == 0) {
            ck_assert_int_eq(lg_gelu_forward(&two, N, 0, x, y), LG_OK);
            ck_assert_int_eq(lg_gelu_forward_f64(&two, N, 0, xd, yd), LG_OK);
        } else if (k == 1) {
            ck_assert_int_eq(lg_sigmoid_forward(&two, N, x, y), LG_OK);
            ck_assert_int_eq(lg_sigmoid_forward_f64(&two, N, xd, yd), LG_OK);
        } else {
            ck_assert_int_eq(lg_silu_forward(&two, N, x, y), LG_OK);
            ck_assert_int_eq(lg_silu_forward_f64(&two, N, xd, yd), LG_OK);
        }
        for (int i = 0; i < N; i++)
            ck_assert_msg(fabs(y[i] - yd[i]) <= ops[k].atol + 3e-7 * fabs(yd[i]), "%s(%.9g) = %.9g, float64 %.9g", op,
                          x[i], y[i], yd[i]);
    }
    /* gelu's gradient (dy = 1) the same way */
    float *ones = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float));
    double *onesd = malloc(N * sizeof(double)), *gd = malloc(N * sizeof(double));
    for (int i = 0; i < N; i++)
        onesd[i] = ones[i] = 1.0f;
    ck_assert_int_eq(lg_gelu_forward(&two, N, 0, x, y), LG_OK);
    ck_assert_int_eq(lg_gelu_forward_f64(&two, N, 0, xd, yd), LG_OK);
    ck_assert_int_eq(lg_gelu_backward(&two, N, 0, x, y, ones, g), LG_OK);
    ck_assert_int_eq(lg_gelu_backward_f64(&two, N, 0, xd, yd, onesd, gd), LG_OK);
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(g[i] - gd[i]) <= 4e-7 + 3e-7 * fabs(gd[i]), "gelu'(%.9g) = %.9g, float64 %.9g", x[i], g[i],
                      gd[i]);
    free(ones), free(g), free(onesd), free(gd);
    /* gelu's edges: an exact relu far out, infinities, NaN */
    float sx[] = {INFINITY, -INFINITY, NAN, 13.0f, 100.0f, -13.0f, -14.0f, -100.0f, -1e30f, 0.0f};
    enum { NS = sizeof sx / sizeof *sx };
    float sy[NS];
    ck_assert_int_eq(lg_gelu_forward(&two, NS, 0, sx, sy), LG_OK);
    ck_assert_float_eq(sy[0], INFINITY);
    ck_assert_msg(sy[1] == 0.0f, "gelu(-inf) = %g", sy[1]);
    ck_assert_msg(isnan(sy[2]), "gelu(nan) = %g", sy[2]);
    ck_assert_float_eq(sy[3], 13.0f);
    ck_assert_float_eq(sy[4], 100.0f);
    for (int i = 5; i < 9; i++)
        ck_assert_msg(sy[i] <= 0.0f && sy[i] > -1e-36f, "gelu(%g) = %g", sx[i], sy[i]);
    ck_assert_float_eq(sy[9], 0.0f);
    float sdy[NS], sg[NS];
    for (int i = 0; i < NS; i++)
        sdy[i] = 1.0f;
    ck_assert_int_eq(lg_gelu_backward(&two, NS, 0, sx, sy, sdy, sg), LG_OK);
    ck_assert_float_eq(sg[0], 1.0f);
    ck_assert_msg(fabsf(sg[1]) < 1e-35f, "gelu'(-inf) = %g", sg[1]);
    ck_assert_msg(isnan(sg[2]), "gelu'(nan) = %g", sg[2]);
    ck_assert_float_eq(sg[4], 1.0f);
    ck_assert_float_eq(sg[9], 0.5f);
    lg_ctx_free(&two);
    free(x), free(y), free(xd), free(yd);
}
END_TEST

START_TEST(topk_accuracy) {
    const fx_tensor *x = fx_find(&fixture, "%s/%s", "topk", "x"), *t = fx_find(&fixture, "%s/%s", "topk", "target");
    ck_assert_ptr_nonnull(x);
    float *xf = malloc(x->count * sizeof(float));
    int32_t *ti = malloc(t->count * sizeof(int32_t));
    for (size_t i = 0; i < x->count; i++)
        xf[i] = (float)x->data[i];
    for (size_t i = 0; i < t->count; i++)
        ti[i] = (int32_t)t->data[i];
    float acc;
    ck_assert_int_eq(lg_accuracy(&test_ctx, 50, 6, xf, ti, &acc), LG_OK);
    ck_assert_double_eq_tol(acc, fx_find(&fixture, "%s/%s", "topk", "acc1")->data[0], 1e-7);
    ck_assert_int_eq(lg_topk_accuracy(&test_ctx, 50, 6, 3, xf, ti, &acc), LG_OK);
    ck_assert_double_eq_tol(acc, fx_find(&fixture, "%s/%s", "topk", "acc3")->data[0], 1e-7);
    ti[7] = 6;
    ck_assert_int_eq(lg_accuracy(&test_ctx, 50, 6, xf, ti, &acc), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "accuracy: target 6 of sample 7 is out of range [0, 6)");
    free(xf), free(ti);
}
END_TEST

START_TEST(dropout_seeded) {
    enum { N = 100000 };
    float *x = malloc(N * sizeof(float)), *y1 = malloc(N * sizeof(float)), *y2 = malloc(N * sizeof(float));
    uint8_t *m1 = malloc(N), *m2 = malloc(N);
    for (int i = 0; i < N; i++)
        x[i] = 1.0f + (float)(i % 7);
    uint64_t seed = lg_dropout_seed(42, 3, 1);
    ck_assert_int_eq(lg_dropout_forward(&test_ctx, N, 0.3, 1, seed, x, y1, m1), LG_OK);
    lg_ctx two;
    ck_assert_int_eq(lg_ctx_init(&two, 2, &test_err), LG_OK);
    ck_assert_int_eq(lg_dropout_forward(&two, N, 0.3, 1, seed, x, y2, m2), LG_OK);
    lg_ctx_free(&two);
    ck_assert_msg(memcmp(y1, y2, N * sizeof(float)) == 0 && memcmp(m1, m2, N) == 0,
                  "dropout differs between 1 and 2 threads");
    size_t kept = 0;
    for (int i = 0; i < N; i++) {
        kept += m1[i];
        ck_assert_float_eq(y1[i], m1[i] ? x[i] * (float)(1.0 / 0.7) : 0.0f);
    }
    /* keep rate 0.7 within 5 standard deviations (sd 0.00145) */
    ck_assert_msg(fabs((double)kept / N - 0.7) < 0.0073, "keep rate %g", (double)kept / N);
    /* another step or another layer gives another mask */
    ck_assert_int_eq(lg_dropout_forward(&test_ctx, N, 0.3, 1, lg_dropout_seed(42, 4, 1), x, y2, m2), LG_OK);
    ck_assert_int_ne(memcmp(m1, m2, N), 0);
    ck_assert_uint_ne(lg_dropout_seed(42, 3, 1), lg_dropout_seed(42, 3, 2));
    /* backward uses the mask; eval is the identity */
    ck_assert_int_eq(lg_dropout_backward(&test_ctx, N, 0.3, 1, m1, x, y2), LG_OK);
    ck_assert_int_eq(memcmp(y1, y2, N * sizeof(float)), 0);
    ck_assert_int_eq(lg_dropout_forward(&test_ctx, N, 0.3, 0, seed, x, y2, NULL), LG_OK);
    ck_assert_int_eq(memcmp(x, y2, N * sizeof(float)), 0);
    free(x), free(y1), free(y2), free(m1), free(m2);
}
END_TEST

START_TEST(bad_arguments) {
    float buf[64] = {0};
    lg_conv2d_dims cd = {.c_in = 6, .h_in = 8, .w_in = 8, .c_out = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                         .dh = 1, .dw = 1, .groups = 4};
    ck_assert_int_eq(lg_conv2d_dims_init(&cd, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "conv2d: in_channels 6 and out_channels 4 must be divisible by groups 4");
    cd.groups = 2;
    ck_assert_int_eq(lg_conv2d_dims_init(&cd, &test_err), LG_OK);
    ck_assert_int_eq(cd.h_out, 6);
    cd.h_out = 7;
    ck_assert_int_eq(lg_conv2d_forward(&test_ctx, &cd, 1, buf, buf, NULL, buf, buf, sizeof buf), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg,
                     "conv2d: output size (7, 6) does not match the input and attributes, which give (6, 6)");
    cd.h_out = 6;
    ck_assert_int_eq(lg_conv2d_forward(&test_ctx, &cd, 1, buf, buf, NULL, buf, buf, sizeof buf), LG_ERR_ARG);
    ck_assert_msg(strstr(test_err.msg, "conv2d: workspace of 256 bytes is smaller than") == test_err.msg, "%s",
                  test_err.msg);
    cd.sh = 0;
    ck_assert_int_eq(lg_conv2d_dims_init(&cd, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "conv2d: kernel (3, 3), stride (0, 1), dilation (1, 1) must be >= 1 and padding (0, 0) >= 0");
    lg_pool2d_dims pd = {.c = 1, .h_in = 4, .w_in = 4, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .ph = 2};
    ck_assert_int_eq(lg_pool2d_dims_init(&pd, "max_pool2d", &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "max_pool2d: padding (2, 0) must be >= 0 and at most half the kernel (2, 2)");
    lg_linear_dims ld = {0, 3, 1};
    ck_assert_int_eq(lg_linear_forward(&test_ctx, &ld, 2, buf, buf, buf, buf), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "linear: in_features 0 and out_features 3 must be >= 1");
    ld.in_features = 2;
    ck_assert_int_eq(lg_linear_forward(&test_ctx, &ld, 2, buf, buf, NULL, buf), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "linear: bias is on but no bias buffer was given");
    lg_cross_entropy_dims ce = {3, 0, -100, LG_REDUCE_MEAN};
    int32_t target[2] = {1, 3};
    ck_assert_int_eq(lg_cross_entropy_forward(&test_ctx, &ce, 2, buf, target, NULL, buf), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "cross_entropy: target 3 of sample 1 is out of range [0, 3)");
    lg_batch_norm_dims bd = {2, 1, 1e-5f, 0.1f, 0};
    ck_assert_int_eq(lg_batch_norm_forward(&test_ctx, &bd, 1, 1, buf, NULL, NULL, buf, buf, buf, buf, buf),
                     LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg,
                     "batch_norm: expected more than 1 value per channel when training, got batch 1 of spatial size 1");
    ck_assert_int_eq(lg_dropout_forward(&test_ctx, 4, 1.5, 1, 0, buf, buf, NULL), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "dropout: p 1.5 is out of range [0, 1]");
    ck_assert_int_eq(lg_upsample_nearest_forward(&test_ctx, 1, 1, 2, 2, 0, buf, buf), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "upsample_nearest: scale 0 is out of range [1, 64]");
    /* a NULL context still fails cleanly */
    ck_assert_int_eq(lg_relu_forward(NULL, 4, NULL, buf), LG_ERR_ARG);
}
END_TEST

static Suite *ops_suite(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("parity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, parity_f32, 0, NCASES);
    tcase_add_loop_test(tc, parity_f64_and_gradcheck, 0, NCASES);
    tcase_add_loop_test(tc, parity_f32_two_threads, 0, NCASES);
    tcase_add_test(tc, large_conv_thread_independent);
    tcase_add_test(tc, large_conv_winograd);
    tcase_add_test(tc, large_conv_deep);
    tcase_add_test(tc, large_conv_wide);
    tcase_add_test(tc, large_linear_thread_independent);
    tcase_add_test(tc, pool_stress);
    tcase_add_test(tc, arith_and_reductions);
    tcase_add_test(tc, activations_float_range);
    tcase_add_test(tc, topk_accuracy);
    tcase_add_test(tc, dropout_seeded);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
