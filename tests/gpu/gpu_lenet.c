/* tests/gpu/gpu_lenet.c — a whole LeNet training run on the GPU against the CPU path.
 *
 * The sequence of lg_cuda_* calls a generated CUDA trainer makes for
 * specs/lenet.lmod (conv 5x5 pad 2 -> relu -> max_pool 2 -> conv 5x5 ->
 * relu -> max_pool 2 -> linear 120 -> relu -> linear 84 -> relu -> linear
 * 10, cross entropy, SGD with momentum and weight decay), written by hand,
 * trained for a few steps on a fixed random batch; the same network runs on
 * the CPU kernels (lgen/kernels.h, lgen/optim.h) from the same initial
 * weights. The losses of every step and the final weights must agree to a
 * tolerance (cuDNN may use TF32 for fp32 convolutions, as PyTorch does).
 * It runs three times: precision "32", "16-mixed" (fp16 network, fp32
 * master weights, loss scaling) and "bf16-mixed", with looser tolerances
 * for the last two.
 * `make check-gpu` runs it; without a device it prints "SKIP: ..." and
 * exits 0. It is also the reference for what the code generator's CUDA
 * target emits (docs/cuda.md).
 */
#include "lgen/cuda.h"
#include "lgen/kernels.h"
#include "lgen/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 16, STEPS = 6, CLASSES = 10 };

static lg_error err;

#define TRY(call)                                                                              \
    do {                                                                                       \
        if ((call) != LG_OK) {                                                                 \
            fprintf(stderr, "gpu_lenet: error: %s:%d: %s\n", __FILE__, __LINE__, err.msg);     \
            exit(2);                                                                           \
        }                                                                                      \
    } while (0)

/* The parameter block, in state_dict order; offsets in floats. */
typedef struct {
    size_t w1, b1, w2, b2, w3, b3, w4, b4, w5, b5, total;
} Params;

/* Each tensor starts on a 256-byte boundary (64 floats), as the arena plan
 * should place them: cuBLASLt and cuDNN's tensor-core paths want aligned
 * pointers, in f16 as in f32. */
#define A64(o) (((o) + 63) & ~(size_t)63)

static Params layout(void) {
    Params p;
    size_t o = 0;
    p.w1 = o = A64(o), o += 6 * 1 * 25;
    p.b1 = o = A64(o), o += 6;
    p.w2 = o = A64(o), o += 16 * 6 * 25;
    p.b2 = o = A64(o), o += 16;
    p.w3 = o = A64(o), o += 120 * 400;
    p.b3 = o = A64(o), o += 120;
    p.w4 = o = A64(o), o += 84 * 120;
    p.b4 = o = A64(o), o += 84;
    p.w5 = o = A64(o), o += 10 * 84;
    p.b5 = o = A64(o), o += 10;
    p.total = A64(o);
    return p;
}

static float urand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static void init_params(const Params *p, float *w) {
    unsigned s = 12345;
    struct {
        size_t off, n;
        float fan_in;
    } t[] = {{p->w1, 150, 25},      {p->b1, 6, 25},    {p->w2, 2400, 150}, {p->b2, 16, 150},
             {p->w3, 48000, 400},   {p->b3, 120, 400}, {p->w4, 10080, 120}, {p->b4, 84, 120},
             {p->w5, 840, 84},      {p->b5, 10, 84}};
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
        for (size_t i = 0; i < t[k].n; i++)
            w[t[k].off + i] = urand(&s) / sqrtf(t[k].fan_in);
}

/* ---- the CPU path ---------------------------------------------------------------------- */

static void cpu_train(const Params *P, float *w, const float *x, const int32_t *y, float *losses) {
    lg_conv2d_dims c1 = {.c_in = 1, .h_in = 28, .w_in = 28, .c_out = 6, .kh = 5, .kw = 5, .sh = 1,
                         .sw = 1, .ph = 2, .pw = 2, .dh = 1, .dw = 1, .groups = 1, .bias = 1};
    lg_conv2d_dims c2 = {.c_in = 6, .h_in = 14, .w_in = 14, .c_out = 16, .kh = 5, .kw = 5, .sh = 1,
                         .sw = 1, .ph = 0, .pw = 0, .dh = 1, .dw = 1, .groups = 1, .bias = 1};
    lg_pool2d_dims p1 = {.c = 6, .h_in = 28, .w_in = 28, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
    lg_pool2d_dims p2 = {.c = 16, .h_in = 10, .w_in = 10, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
    TRY(lg_conv2d_dims_init(&c1, &err));
    TRY(lg_conv2d_dims_init(&c2, &err));
    TRY(lg_pool2d_dims_init(&p1, "max_pool2d", &err));
    TRY(lg_pool2d_dims_init(&p2, "max_pool2d", &err));
    lg_linear_dims l1 = {400, 120, 1}, l2 = {120, 84, 1}, l3 = {84, 10, 1};
    lg_cross_entropy_dims ce = {CLASSES, 0.0, -100, LG_REDUCE_MEAN};
    size_t ws1 = lg_conv2d_workspace(&c1, N), ws2 = lg_conv2d_workspace(&c2, N);
    size_t wsz = ws1 > ws2 ? ws1 : ws2;
    void *ws = malloc(wsz);
    float *a1 = malloc(N * 6 * 784 * 4), *r1 = malloc(N * 6 * 784 * 4), *q1 = malloc(N * 6 * 196 * 4);
    float *a2 = malloc(N * 16 * 100 * 4), *r2 = malloc(N * 16 * 100 * 4), *q2 = malloc(N * 400 * 4);
    float f1[N * 120], g1[N * 120], f2[N * 84], g2[N * 84], logits[N * 10], loss, one = 1.0f;
    int32_t *am1 = malloc(N * 6 * 196 * 4), *am2 = malloc(N * 400 * 4);
    float *grad = malloc(P->total * 4), dlog[N * 10], dg2[N * 84], df2[N * 84], dg1[N * 120],
          df1[N * 120];
    float *dq2 = malloc(N * 400 * 4), *dr2 = malloc(N * 1600 * 4), *da2 = malloc(N * 1600 * 4);
    float *dq1 = malloc(N * 6 * 196 * 4), *dr1 = malloc(N * 6 * 784 * 4), *da1 = malloc(N * 6 * 784 * 4);
    lg_optim o;
    lg_optim_config cfg;
    lg_optim_config_default(&cfg, LG_OPTIM_SGD);
    cfg.lr = 0.05, cfg.momentum = 0.9, cfg.weight_decay = 5e-4;
    lg_optim_param par = {0, P->total, 0};
    TRY(lg_optim_init(&o, &cfg, 0, NULL, 1, &par, P->total, &err));
    for (int s = 0; s < STEPS; s++) {
        TRY(lg_conv2d_forward(NULL, &c1, N, x, w + P->w1, w + P->b1, a1, ws, wsz));
        TRY(lg_relu_forward(NULL, N * 6 * 784, a1, r1));
        TRY(lg_max_pool2d_forward(NULL, &p1, N, r1, q1, am1));
        TRY(lg_conv2d_forward(NULL, &c2, N, q1, w + P->w2, w + P->b2, a2, ws, wsz));
        TRY(lg_relu_forward(NULL, N * 1600, a2, r2));
        TRY(lg_max_pool2d_forward(NULL, &p2, N, r2, q2, am2));
        TRY(lg_linear_forward(NULL, &l1, N, q2, w + P->w3, w + P->b3, f1));
        TRY(lg_relu_forward(NULL, N * 120, f1, g1));
        TRY(lg_linear_forward(NULL, &l2, N, g1, w + P->w4, w + P->b4, f2));
        TRY(lg_relu_forward(NULL, N * 84, f2, g2));
        TRY(lg_linear_forward(NULL, &l3, N, g2, w + P->w5, w + P->b5, logits));
        TRY(lg_cross_entropy_forward(NULL, &ce, N, logits, y, NULL, &loss));
        losses[s] = loss;
        memset(grad, 0, P->total * 4);
        TRY(lg_cross_entropy_backward(NULL, &ce, N, logits, y, NULL, &one, dlog));
        TRY(lg_linear_backward(NULL, &l3, N, g2, w + P->w5, dlog, dg2, grad + P->w5, grad + P->b5));
        TRY(lg_relu_backward(NULL, N * 84, f2, g2, dg2, df2));
        TRY(lg_linear_backward(NULL, &l2, N, g1, w + P->w4, df2, dg1, grad + P->w4, grad + P->b4));
        TRY(lg_relu_backward(NULL, N * 120, f1, g1, dg1, df1));
        TRY(lg_linear_backward(NULL, &l1, N, q2, w + P->w3, df1, dq2, grad + P->w3, grad + P->b3));
        TRY(lg_max_pool2d_backward(NULL, &p2, N, am2, dq2, dr2));
        TRY(lg_relu_backward(NULL, N * 1600, a2, r2, dr2, da2));
        TRY(lg_conv2d_backward(NULL, &c2, N, q1, w + P->w2, da2, dq1, grad + P->w2, grad + P->b2, ws, wsz));
        TRY(lg_max_pool2d_backward(NULL, &p1, N, am1, dq1, dr1));
        TRY(lg_relu_backward(NULL, N * 6 * 784, a1, r1, dr1, da1));
        TRY(lg_conv2d_backward(NULL, &c1, N, x, w + P->w1, da1, NULL, grad + P->w1, grad + P->b1, ws, wsz));
        TRY(lg_optim_step(&o, NULL, w, grad));
    }
    lg_optim_free(&o);
    free(ws), free(a1), free(r1), free(q1), free(a2), free(r2), free(q2), free(am1), free(am2),
        free(grad), free(dq2), free(dr2), free(da2), free(dq1), free(dr1), free(da1);
}

/* ---- the GPU path (what the generated CUDA trainer does) ---------------------------------- */

static size_t top;
static void *take(lg_cuda *c, size_t bytes) {
    void *p = lg_cuda_arena(c, top);
    top += (bytes + 255) & ~(size_t)255;
    if (!p || top > lg_cuda_arena_size(c)) {
        fprintf(stderr, "gpu_lenet: error: arena too small\n");
        exit(2);
    }
    return p;
}

/* dt LG_CUDA_F32: precision "32". dt LG_CUDA_F16 / LG_CUDA_BF16: "16-mixed"
 * / "bf16-mixed" — fp32 master weights and optimizer, the network in dt,
 * the loss in fp32; with F16, dynamic loss scaling. Returns the final loss
 * scale (0 without scaling). */
static float gpu_train(lg_cuda *c, const Params *P, lg_cuda_dtype dt, float *w_host,
                       const float *x_host, const int32_t *y_host, float *losses) {
    const int mixed = dt != LG_CUDA_F32, scaled = dt == LG_CUDA_F16;
    const size_t es = LG_CUDA_DTYPE_SIZE(dt);
#define AT(base, off) ((void *)((char *)(base) + (size_t)(off) * es))
    /* start-up: plans (algorithms, workspace) and the arena layout */
    lg_cuda_conv cd1 = {N, 1, 28, 28, 6, 5, 5, 2, 2, 1, 1, 1, 1, 1, 1, dt};
    lg_cuda_conv cd2 = {N, 6, 14, 14, 16, 5, 5, 0, 0, 1, 1, 1, 1, 1, 1, dt};
    lg_cuda_pool pd1 = {N, 6, 28, 28, 2, 2, 2, 2, 0, 0, 1, 0, dt};
    lg_cuda_pool pd2 = {N, 16, 10, 10, 2, 2, 2, 2, 0, 0, 1, 0, dt};
    lg_cuda_linear ld1 = {N, 400, 120, 1, dt}, ld2 = {N, 120, 84, 1, dt}, ld3 = {N, 84, 10, 1, dt};
    lg_cuda_conv_plan *conv1, *conv2;
    lg_cuda_pool_plan *pool1, *pool2;
    lg_cuda_linear_plan *fc1, *fc2, *fc3;
    TRY(lg_cuda_conv_init(c, &conv1, &cd1, &err));
    TRY(lg_cuda_conv_init(c, &conv2, &cd2, &err));
    TRY(lg_cuda_pool_init(c, &pool1, &pd1, &err));
    TRY(lg_cuda_pool_init(c, &pool2, &pd2, &err));
    TRY(lg_cuda_linear_init(c, &fc1, &ld1, &err));
    TRY(lg_cuda_linear_init(c, &fc2, &ld2, &err));
    TRY(lg_cuda_linear_init(c, &fc3, &ld3, &err));
    lg_cuda_ce ce = {N, CLASSES, 0.0f, -100, 0};
    lg_cuda_sgd sgd = {0.05f, 0.9f, 0.0f, 5e-4f, 0, 0};

    top = 0;
    float *w = take(c, P->total * 4), *g32 = take(c, P->total * 4), *mom = take(c, P->total * 4);
    void *wl = mixed ? take(c, P->total * es) : w, *gl = mixed ? take(c, P->total * es) : g32;
    float *x32 = take(c, N * 784 * 4);
    void *x = mixed ? take(c, N * 784 * es) : x32;
    void *a1 = take(c, N * 6 * 784 * es), *r1 = take(c, N * 6 * 784 * es), *q1 = take(c, N * 6 * 196 * es);
    void *a2 = take(c, N * 1600 * es), *r2 = take(c, N * 1600 * es), *q2 = take(c, N * 400 * es);
    void *f1 = take(c, N * 120 * es), *g1 = take(c, N * 120 * es), *f2 = take(c, N * 84 * es);
    void *g2 = take(c, N * 84 * es), *logits = take(c, N * 10 * es);
    float *logits32 = mixed ? take(c, N * 10 * 4) : logits;
    float *loss = take(c, 4), *dloss = take(c, 4), *cews = take(c, lg_cuda_cross_entropy_workspace(&ce));
    float *dlog32 = take(c, N * 10 * 4);
    void *dlog = mixed ? take(c, N * 10 * es) : dlog32;
    void *dg2 = take(c, N * 84 * es), *df2 = take(c, N * 84 * es), *dg1 = take(c, N * 120 * es);
    void *df1 = take(c, N * 120 * es), *dq2 = take(c, N * 400 * es), *dr2 = take(c, N * 1600 * es);
    void *da2 = take(c, N * 1600 * es), *dq1 = take(c, N * 6 * 196 * es);
    void *dr1 = take(c, N * 6 * 784 * es), *da1 = take(c, N * 6 * 784 * es);
    int32_t *y = take(c, N * 4);
    lg_cuda_scaler *scaler = take(c, sizeof(lg_cuda_scaler));
    int *found_inf = take(c, sizeof(int));
    lg_cuda_scaler s0 = LG_CUDA_SCALER_INIT;
    s0.scale = 1024.0f; /* room in fp16 for this small batch */
    float one = 1.0f;
    TRY(lg_cuda_upload(c, w, w_host, P->total * 4, &err));
    TRY(lg_cuda_upload(c, dloss, &one, 4, &err));
    TRY(lg_cuda_upload(c, scaler, &s0, sizeof s0, &err));
    TRY(lg_cuda_memset(c, found_inf, 0, sizeof(int), &err));
    /* the batch through a pinned staging slot, as the loader would */
    TRY(lg_cuda_staging_wait(c, 0, &err));
    memcpy(lg_cuda_staging(c, 0), x_host, N * 784 * 4);
    TRY(lg_cuda_upload_async(c, 0, x32, N * 784 * 4, &err));
    TRY(lg_cuda_upload_wait(c, 0, &err));
    if (mixed)
        TRY(lg_cuda_convert(c, dt, x, LG_CUDA_F32, x32, N * 784, &err));
    TRY(lg_cuda_upload(c, y, y_host, N * 4, &err));

    for (int s = 0; s < STEPS; s++) {
        if (mixed) /* the low-precision copy of the master weights */
            TRY(lg_cuda_convert(c, dt, wl, LG_CUDA_F32, w, P->total, &err));
        TRY(lg_cuda_conv_forward(c, conv1, x, AT(wl, P->w1), AT(wl, P->b1), a1, &err));
        TRY(lg_cuda_act_forward(c, LG_CUDA_ACT_RELU, 0, dt, a1, r1, N * 6 * 784, &err));
        TRY(lg_cuda_pool_forward(c, pool1, r1, q1, &err));
        TRY(lg_cuda_conv_forward(c, conv2, q1, AT(wl, P->w2), AT(wl, P->b2), a2, &err));
        TRY(lg_cuda_act_forward(c, LG_CUDA_ACT_RELU, 0, dt, a2, r2, N * 1600, &err));
        TRY(lg_cuda_pool_forward(c, pool2, r2, q2, &err));
        TRY(lg_cuda_linear_forward(c, fc1, q2, AT(wl, P->w3), AT(wl, P->b3), f1, &err));
        TRY(lg_cuda_act_forward(c, LG_CUDA_ACT_RELU, 0, dt, f1, g1, N * 120, &err));
        TRY(lg_cuda_linear_forward(c, fc2, g1, AT(wl, P->w4), AT(wl, P->b4), f2, &err));
        TRY(lg_cuda_act_forward(c, LG_CUDA_ACT_RELU, 0, dt, f2, g2, N * 84, &err));
        TRY(lg_cuda_linear_forward(c, fc3, g2, AT(wl, P->w5), AT(wl, P->b5), logits, &err));
        if (mixed)
            TRY(lg_cuda_convert(c, LG_CUDA_F32, logits32, dt, logits, N * 10, &err));
        TRY(lg_cuda_cross_entropy_forward(c, &ce, logits32, y, NULL, loss, cews, &err));

        TRY(lg_cuda_memset(c, gl, 0, P->total * es, &err));
        if (scaled)
            TRY(lg_cuda_scaler_seed(c, scaler, dloss, &err));
        TRY(lg_cuda_cross_entropy_backward(c, &ce, logits32, y, NULL, (float)CLASSES, dloss, cews,
                                           dlog32, &err));
        if (mixed)
            TRY(lg_cuda_convert(c, dt, dlog, LG_CUDA_F32, dlog32, N * 10, &err));
        TRY(lg_cuda_linear_backward(c, fc3, g2, AT(wl, P->w5), dlog, dg2, AT(gl, P->w5), AT(gl, P->b5), 1, &err));
        TRY(lg_cuda_act_backward(c, LG_CUDA_ACT_RELU, 0, dt, f2, g2, dg2, df2, N * 84, &err));
        TRY(lg_cuda_linear_backward(c, fc2, g1, AT(wl, P->w4), df2, dg1, AT(gl, P->w4), AT(gl, P->b4), 1, &err));
        TRY(lg_cuda_act_backward(c, LG_CUDA_ACT_RELU, 0, dt, f1, g1, dg1, df1, N * 120, &err));
        TRY(lg_cuda_linear_backward(c, fc1, q2, AT(wl, P->w3), df1, dq2, AT(gl, P->w3), AT(gl, P->b3), 1, &err));
        TRY(lg_cuda_pool_backward(c, pool2, r2, q2, dq2, dr2, &err));
        TRY(lg_cuda_act_backward(c, LG_CUDA_ACT_RELU, 0, dt, a2, r2, dr2, da2, N * 1600, &err));
        TRY(lg_cuda_conv_backward(c, conv2, q1, AT(wl, P->w2), da2, dq1, AT(gl, P->w2), AT(gl, P->b2), 1, &err));
        TRY(lg_cuda_pool_backward(c, pool1, r1, q1, dq1, dr1, &err));
        TRY(lg_cuda_act_backward(c, LG_CUDA_ACT_RELU, 0, dt, a1, r1, dr1, da1, N * 6 * 784, &err));
        TRY(lg_cuda_conv_backward(c, conv1, x, AT(wl, P->w1), da1, NULL, AT(gl, P->w1), AT(gl, P->b1), 1, &err));
        if (scaled) {
            TRY(lg_cuda_unscale(c, scaler, dt, gl, g32, P->total, found_inf, &err));
            TRY(lg_cuda_sgd_update(c, &sgd, s == 0, w, g32, mom, P->total, found_inf, &err));
            TRY(lg_cuda_scaler_update(c, scaler, found_inf, &err));
        } else {
            if (mixed)
                TRY(lg_cuda_convert(c, LG_CUDA_F32, g32, dt, gl, P->total, &err));
            TRY(lg_cuda_sgd_update(c, &sgd, s == 0, w, g32, mom, P->total, NULL, &err));
        }
        TRY(lg_cuda_download(c, &losses[s], loss, 4, &err)); /* logging reads the loss back */
    }
#undef AT
    lg_cuda_scaler s1;
    TRY(lg_cuda_download(c, &s1, scaler, sizeof s1, &err));
    TRY(lg_cuda_download(c, w_host, w, P->total * 4, &err));
    lg_cuda_conv_free(conv1), lg_cuda_conv_free(conv2), lg_cuda_pool_free(pool1),
        lg_cuda_pool_free(pool2), lg_cuda_linear_free(fc1), lg_cuda_linear_free(fc2),
        lg_cuda_linear_free(fc3);
    return scaled ? s1.scale : 0.0f;
}

/* Compares a GPU run with the CPU one; returns the number of failures. */
static int compare(const char *name, const float *lc, const float *lg, const float *wc,
                   const float *wg, size_t total, double ltol, double wtol) {
    int bad = 0;
    for (int i = 0; i < STEPS; i++) {
        int ok = fabs((double)lc[i] - lg[i]) <= ltol * fabs((double)lc[i]) + 1e-4;
        bad += !ok;
        printf("%s %s step %d loss: cpu %.6f gpu %.6f\n", ok ? "ok  " : "FAIL", name, i,
               (double)lc[i], (double)lg[i]);
    }
    double worst = 0, scale = 0;
    for (size_t i = 0; i < total; i++) {
        worst = fmax(worst, fabs((double)wc[i] - wg[i]));
        scale = fmax(scale, fabs((double)wc[i]));
    }
    int wok = worst <= wtol * scale;
    bad += !wok;
    printf("%s %s final weights: max |cpu - gpu| %.3g (max |w| %.3g)\n", wok ? "ok  " : "FAIL", name,
           worst, scale);
    int learns = lg[STEPS - 1] < lg[0];
    bad += !learns;
    printf("%s %s the loss falls (%.4f -> %.4f)\n", learns ? "ok  " : "FAIL", name, (double)lg[0],
           (double)lg[STEPS - 1]);
    return bad;
}

int main(void) {
    int ndev;
    if (lg_cuda_device_count(&ndev, &err) != LG_OK) {
        printf("SKIP: %s\n", err.msg);
        return 0;
    }
    lg_cuda *c;
    lg_cuda_config cfg = {.device = 0, .arena_bytes = (size_t)16 << 20, .staging_bytes = N * 784 * 4,
                          .staging_slots = 2};
    TRY(lg_cuda_init(&c, &cfg, &err));
    Params P = layout();
    float *w0 = calloc(P.total, 4), *wc = malloc(P.total * 4), *wg = malloc(P.total * 4); /* zero padding */
    float x[N * 784];
    int32_t y[N];
    unsigned s = 777;
    for (int i = 0; i < N * 784; i++)
        x[i] = urand(&s);
    for (int i = 0; i < N; i++)
        y[i] = i % CLASSES;
    init_params(&P, w0);
    memcpy(wc, w0, P.total * 4);
    memcpy(wg, w0, P.total * 4);
    float lc[STEPS], lgpu[STEPS];
    cpu_train(&P, wc, x, y, lc);
    gpu_train(c, &P, LG_CUDA_F32, wg, x, y, lgpu);
    int bad = compare("32", lc, lgpu, wc, wg, P.total, 2e-3, 1e-3);
    /* 16-mixed and bf16-mixed: looser, and no step may have been skipped */
    memcpy(wg, w0, P.total * 4);
    float scale = gpu_train(c, &P, LG_CUDA_F16, wg, x, y, lgpu);
    bad += compare("16-mixed", lc, lgpu, wc, wg, P.total, 2e-2, 2e-2);
    int sok = scale == 1024.0f;
    bad += !sok;
    printf("%s 16-mixed loss scale %g (no overflow, no growth within 2000 steps)\n",
           sok ? "ok  " : "FAIL", (double)scale);
    memcpy(wg, w0, P.total * 4);
    gpu_train(c, &P, LG_CUDA_BF16, wg, x, y, lgpu);
    bad += compare("bf16-mixed", lc, lgpu, wc, wg, P.total, 5e-2, 5e-2);
    printf("lenet on %s: %s\n", lg_cuda_describe(c), bad ? "FAILED" : "cpu and gpu agree");
    lg_cuda_free(c);
    free(w0), free(wc), free(wg);
    return bad ? 1 : 0;
}
