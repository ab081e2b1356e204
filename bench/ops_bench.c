/* ops_bench.c — times lgen's CPU kernels on the conv shapes of LeNet,
 * ResNet-20 and a ResNet-18 backbone, a few linear layers, the fused
 * SGD/Adam steps, elementwise ops over a 32 MiB activation and a large
 * sgemm; for each conv also oneDNN's forward
 * (NCHW in and out, so no reorders, and its preferred blocked layout with
 * reorders excluded). Prints one tab-separated line per measurement:
 *   kind name what milliseconds [extra]
 * bench/ops_compare.py runs this and PyTorch in the same run and prints the
 * ratios. Threads: argv[1] (default 2) for our pool, OpenBLAS and oneDNN. */
#include "lgen/kernels.h"
#include "lgen/optim.h"

#include <cblas.h>
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef void (*bench_fn)(void *);

/* Best of 3 rounds; each round repeats fn for at least 0.15 s. Milliseconds. */
static double time_ms(bench_fn fn, void *arg) {
    fn(arg);
    double t0 = now();
    fn(arg);
    double once = now() - t0;
    int reps = once > 0.15 ? 1 : (int)(0.15 / (once > 1e-6 ? once : 1e-6)) + 1;
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        t0 = now();
        for (int i = 0; i < reps; i++)
            fn(arg);
        double t = (now() - t0) / reps;
        if (t < best)
            best = t;
    }
    return best * 1e3;
}

/* n random floats in [-0.5, 0.5), 64-byte aligned as the generated
 * trainers' activations (aligned_alloc) and PyTorch's tensors are: glibc's
 * malloc of a large block returns an address 16 bytes past a page, where
 * every other 512-bit access splits two cache lines. */
static float *rnd(size_t n) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

static lg_ctx ctx;
static lg_error err;

#define CHECK(call)                                                             \
    do {                                                                        \
        if ((call) != LG_OK) {                                                  \
            fprintf(stderr, "ops_bench: %s\n", err.msg);                        \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

/* ---- conv ------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int n, ci, h, w, co, k, s, p;
} conv_case;

static const conv_case CONVS[] = {
    {"lenet.conv1", 64, 1, 28, 28, 6, 5, 1, 2},       {"lenet.conv2", 64, 6, 14, 14, 16, 5, 1, 0},
    {"resnet20.conv1", 128, 3, 32, 32, 16, 3, 1, 1},  {"resnet20.s1", 128, 16, 32, 32, 16, 3, 1, 1},
    {"resnet20.s2down", 128, 16, 32, 32, 32, 3, 2, 1}, {"resnet20.s2", 128, 32, 16, 16, 32, 3, 1, 1},
    {"resnet20.s3down", 128, 32, 16, 16, 64, 3, 2, 1}, {"resnet20.s3", 128, 64, 8, 8, 64, 3, 1, 1},
    {"resnet18.conv1", 8, 3, 224, 224, 64, 7, 2, 3},  {"resnet18.l1", 8, 64, 56, 56, 64, 3, 1, 1},
    {"resnet18.l2down", 8, 64, 56, 56, 128, 3, 2, 1}, {"resnet18.l2ds", 8, 64, 56, 56, 128, 1, 2, 0},
    {"resnet18.l2", 8, 128, 28, 28, 128, 3, 1, 1},    {"resnet18.l3down", 8, 128, 28, 28, 256, 3, 2, 1},
    {"resnet18.l3", 8, 256, 14, 14, 256, 3, 1, 1},    {"resnet18.l4down", 8, 256, 14, 14, 512, 3, 2, 1},
    {"resnet18.l4", 8, 512, 7, 7, 512, 3, 1, 1},
};

typedef struct {
    lg_conv2d_dims d;
    size_t n, wsb;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
    void *ws;
} conv_arg;

static void conv_fwd(void *a) {
    conv_arg *c = a;
    CHECK(lg_conv2d_forward(&ctx, &c->d, c->n, c->x, c->w, c->b, c->y, c->ws, c->wsb));
}

static void conv_bwd(void *a) {
    conv_arg *c = a;
    CHECK(lg_conv2d_backward(&ctx, &c->d, c->n, c->x, c->w, c->dy, c->dx, c->dw, c->db, c->ws, c->wsb));
}

/* oneDNN forward, plain NCHW/OIHW (what our buffers are) or "any" (blocked,
 * reorders excluded: the best case for oneDNN). */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_stream_t stream;
    dnnl_exec_arg_t args[4];
} dnnl_arg;

static void dnnl_run(void *a) {
    dnnl_arg *d = a;
    dnnl_primitive_execute(d->prim, d->stream, 4, d->args);
    dnnl_stream_wait(d->stream);
}

static double dnnl_conv(dnnl_engine_t eng, dnnl_stream_t stream, const conv_case *c, int any) {
    int oh = (c->h + 2 * c->p - c->k) / c->s + 1, ow = (c->w + 2 * c->p - c->k) / c->s + 1;
    dnnl_dims_t sd = {c->n, c->ci, c->h, c->w}, wd = {c->co, c->ci, c->k, c->k}, bd = {c->co},
                dd = {c->n, c->co, oh, ow};
    dnnl_dims_t strides = {c->s, c->s}, pad = {c->p, c->p};
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_nchw);
    dnnl_memory_desc_init_by_tag(&wmd, 4, wd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_nchw);
    dnnl_convolution_desc_t cd;
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &smd, &wmd, &bmd,
                                           &dmd, strides, pad, pad) != dnnl_success)
        return -1;
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL) != dnnl_success)
        return -1;
    dnnl_memory_t m[4];
    const dnnl_memory_desc_t *mds[4] = {dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                                        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
                                        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1),
                                        dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0)};
    int argk[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    dnnl_arg a = {.stream = stream};
    for (int i = 0; i < 4; i++) {
        dnnl_memory_create(&m[i], mds[i], eng, DNNL_MEMORY_ALLOCATE);
        void *h;
        dnnl_memory_get_data_handle(m[i], &h);
        memset(h, 0, dnnl_memory_desc_get_size(mds[i]));
        a.args[i] = (dnnl_exec_arg_t){argk[i], m[i]};
    }
    dnnl_primitive_create(&a.prim, pd);
    double ms = time_ms(dnnl_run, &a);
    dnnl_primitive_destroy(a.prim);
    for (int i = 0; i < 4; i++)
        dnnl_memory_destroy(m[i]);
    dnnl_primitive_desc_destroy(pd);
    return ms;
}

/* ---- linear, GEMM, optimizers, bandwidth ------------------------------------------ */

typedef struct {
    lg_linear_dims d;
    size_t rows;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} lin_arg;

static void lin_fwd(void *a) {
    lin_arg *l = a;
    CHECK(lg_linear_forward(&ctx, &l->d, l->rows, l->x, l->w, l->b, l->y));
}

static void lin_bwd(void *a) {
    lin_arg *l = a;
    CHECK(lg_linear_backward(&ctx, &l->d, l->rows, l->x, l->w, l->dy, l->dx, l->dw, l->db));
}

typedef struct {
    int n;
    float *a, *b, *c;
} gemm_arg;

static void gemm_run(void *p) {
    gemm_arg *g = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f,
                g->c, g->n);
}

/* ---- the machine's float32 peak: what the "% of peak" columns divide by --------
 * Each thread runs PEAK_CHAINS independent FMA chains (more than an FMA's
 * latency times the FMA units per core), 512 and 256 bits wide where the
 * CPU has them; the faster width counts (a core with one 512-bit FMA unit
 * does as much with two 256-bit ones). */
enum { PEAK_CHAINS = 12, PEAK_ITERS = 1 << 21 };

__attribute__((target("avx512f"))) static float fma_chains512(void) {
    __m512 acc[PEAK_CHAINS], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < PEAK_CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c);
    for (int i = 0; i < PEAK_ITERS; i++)
#pragma GCC unroll 16 /* so that acc[] lives in registers */
        for (int c = 0; c < PEAK_CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    float s = 0;
    for (int c = 0; c < PEAK_CHAINS; c++)
        s += _mm512_reduce_add_ps(acc[c]);
    return s;
}

__attribute__((target("avx2,fma"))) static float fma_chains256(void) {
    __m256 acc[PEAK_CHAINS], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < PEAK_CHAINS; c++)
        acc[c] = _mm256_set1_ps((float)c);
    for (int i = 0; i < PEAK_ITERS; i++)
#pragma GCC unroll 16 /* so that acc[] lives in registers */
        for (int c = 0; c < PEAK_CHAINS; c++)
            acc[c] = _mm256_fmadd_ps(acc[c], m, a);
    float buf[8], s = 0;
    for (int c = 0; c < PEAK_CHAINS; c++) {
        _mm256_storeu_ps(buf, acc[c]);
        for (int l = 0; l < 8; l++)
            s += buf[l];
    }
    return s;
}

static volatile float peak_sink;
static int peak_width; /* 512 or 256 */

static void peak_task(void *arg, size_t t) {
    (void)arg, (void)t;
    peak_sink = peak_width == 512 ? fma_chains512() : fma_chains256();
}

static void peak_run(void *arg) {
    lg_parallel_for(&ctx, (size_t)*(int *)arg, peak_task, NULL);
}

static void bench_peak(int threads) {
    for (int w = 512; w >= 256; w /= 2) {
        if (w == 512 ? !__builtin_cpu_supports("avx512f") : !__builtin_cpu_supports("fma"))
            continue;
        peak_width = w;
        double ms = time_ms(peak_run, &threads);
        double gf = 2.0 * PEAK_CHAINS * (w / 32) * (double)PEAK_ITERS * threads / ms / 1e6;
        printf("peak\tfma%d\tfwd\t%.3f\t%.1f GFLOP/s\n", w, ms, gf);
    }
}

typedef struct {
    lg_optim o;
    float *p, *g;
} opt_arg;

static void opt_run(void *a) {
    opt_arg *o = a;
    CHECK(lg_optim_step(&o->o, &ctx, o->p, o->g));
}

typedef struct {
    size_t n;
    float *a, *b;
} copy_arg;

static void copy_task(void *arg, size_t t) {
    copy_arg *c = arg;
    size_t chunk = c->n / 64, b = t * chunk, e = t == 63 ? c->n : b + chunk;
    for (size_t i = b; i < e; i++)
        c->b[i] = c->a[i] * 1.0001f + c->b[i];
}

static void copy_run(void *a) {
    lg_parallel_for(&ctx, 64, copy_task, a);
}

/* ---- elementwise ops over one ResNet-20-sized activation ----------------------- */

enum { EW_N = 128, EW_C = 64, EW_HW = 32 * 32 }; /* 8.4M floats, 32 MiB: far beyond the caches */

typedef struct {
    int which;
    size_t count;
    float *x, *b, *y, *dy, *dx, *gamma, *beta, *rm, *rv, *sm, *si, *dg, *db;
    lg_batch_norm_dims bn;
    lg_axis_dims ax;
} ew_arg;

/* name, direction, bytes per element the op has to move at least */
static const struct {
    const char *name, *what;
    int bytes;
} EW[] = {{"relu", "fwd", 8},     {"relu", "bwd", 12},    {"sigmoid", "fwd", 8}, {"sigmoid", "bwd", 12},
          {"gelu", "fwd", 8},     {"gelu", "bwd", 12},    {"silu", "fwd", 8},    {"silu", "bwd", 12},
          {"add", "fwd", 12},     {"mul", "fwd", 12},     {"batch_norm", "fwd", 8}, {"batch_norm", "bwd", 12},
          {"softmax", "fwd", 8},  {"softmax", "bwd", 12}};

static void ew_run(void *arg) {
    ew_arg *a = arg;
    size_t n = a->count;
    switch (a->which) {
    case 0: CHECK(lg_relu_forward(&ctx, n, a->x, a->y)); break;
    case 1: CHECK(lg_relu_backward(&ctx, n, a->x, NULL, a->dy, a->dx)); break;
    case 2: CHECK(lg_sigmoid_forward(&ctx, n, a->x, a->y)); break;
    case 3: CHECK(lg_sigmoid_backward(&ctx, n, NULL, a->y, a->dy, a->dx)); break;
    case 4: CHECK(lg_gelu_forward(&ctx, n, 0, a->x, a->y)); break;
    case 5: CHECK(lg_gelu_backward(&ctx, n, 0, a->x, NULL, a->dy, a->dx)); break;
    case 6: CHECK(lg_silu_forward(&ctx, n, a->x, a->y)); break;
    case 7: CHECK(lg_silu_backward(&ctx, n, a->x, NULL, a->dy, a->dx)); break;
    case 8: CHECK(lg_add_forward(&ctx, n, a->x, a->b, a->y)); break;
    case 9: CHECK(lg_mul_forward(&ctx, n, a->x, a->b, a->y)); break;
    case 10:
        CHECK(lg_batch_norm_forward(&ctx, &a->bn, EW_N, 1, a->x, a->gamma, a->beta, a->rm, a->rv, a->y, a->sm,
                                    a->si));
        break;
    case 11:
        CHECK(lg_batch_norm_backward(&ctx, &a->bn, EW_N, a->x, a->gamma, a->sm, a->si, a->dy, a->dx, a->dg,
                                     a->db));
        break;
    case 12: CHECK(lg_softmax_forward(&ctx, &a->ax, a->x, a->y)); break;
    case 13: CHECK(lg_softmax_backward(&ctx, &a->ax, a->y, a->dy, a->dx)); break;
    }
}

static void bench_elementwise(const char *name) {
    size_t count = (size_t)EW_N * EW_C * EW_HW;
    ew_arg a = {.count = count, .x = rnd(count), .b = rnd(count), .y = rnd(count), .dy = rnd(count),
                .dx = rnd(count), .gamma = rnd(EW_C), .beta = rnd(EW_C), .rm = rnd(EW_C), .rv = rnd(EW_C),
                .sm = rnd(EW_C), .si = rnd(EW_C), .dg = rnd(EW_C), .db = rnd(EW_C)};
    for (int c = 0; c < EW_C; c++)
        a.rv[c] = 1.0f;
    a.bn = (lg_batch_norm_dims){.c = EW_C, .spatial = EW_HW, .eps = 1e-5, .momentum = 0.1, .affine = 1};
    a.ax = (lg_axis_dims){.outer = count / 1000, .dim = 1000, .inner = 1}; /* rows of 1000 logits */
    /* softmax backward reads a softmax output */
    CHECK(lg_softmax_forward(&ctx, &a.ax, a.x, a.y));
    for (a.which = 0; a.which < (int)(sizeof EW / sizeof EW[0]); a.which++) {
        if (name && strcmp(name, EW[a.which].name))
            continue;
        size_t n = a.which >= 12 ? a.ax.outer * 1000 : count;
        double ms = time_ms(ew_run, &a);
        printf("elementwise\t%s\t%s\t%.3f\t%.1f GB/s\n", EW[a.which].name, EW[a.which].what, ms,
               (double)EW[a.which].bytes * (double)n / ms / 1e6);
    }
    free(a.x), free(a.b), free(a.y), free(a.dy), free(a.dx), free(a.gamma), free(a.beta), free(a.rm), free(a.rv);
    free(a.sm), free(a.si), free(a.dg), free(a.db);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    const char *only = argc > 2 ? argv[2] : NULL;       /* a kind: peak gemm conv linear optim elementwise */
    const char *name = argc > 3 ? argv[3] : NULL;       /* one case of that kind */
    CHECK(lg_ctx_init(&ctx, threads, &err));
    printf("threads\t%d\n", threads);

    if (!only || !strcmp(only, "peak"))
        bench_peak(threads);
    if (!only || !strcmp(only, "gemm")) {
        gemm_arg g = {4096, rnd(4096 * 4096), rnd(4096 * 4096), rnd(4096 * 4096)};
        double ms = time_ms(gemm_run, &g);
        printf("gemm\tsgemm4096\tfwd\t%.3f\t%.1f GFLOP/s\n", ms, 2.0 * 4096 * 4096 * 4096 / ms / 1e6);
        /* what the kernels get: the same GEMM (x W^T) tiled on our pool,
         * single-threaded OpenBLAS per tile (lg_ctx_init sets it to 1
         * thread, so the cblas_sgemm line above runs on one core) */
        lin_arg l = {.d = {4096, 4096, 0}, .rows = 4096, .x = g.a, .w = g.b, .y = g.c};
        ms = time_ms(lin_fwd, &l);
        printf("gemm\tpool4096\tfwd\t%.3f\t%.1f GFLOP/s\n", ms, 2.0 * 4096 * 4096 * 4096 / ms / 1e6);
        free(g.a), free(g.b), free(g.c);
    }

    dnnl_engine_t eng = NULL;
    dnnl_stream_t stream = NULL;
    int with_dnnl = !getenv("LG_BENCH_NO_DNNL");
    if ((!only || !strcmp(only, "conv")) && with_dnnl) {
        dnnl_engine_create(&eng, dnnl_cpu, 0);
        dnnl_stream_create(&stream, eng, dnnl_stream_default_flags);
    }
    for (size_t i = 0; i < sizeof CONVS / sizeof CONVS[0] && (!only || !strcmp(only, "conv")); i++) {
        const conv_case *c = &CONVS[i];
        if (name && strcmp(name, c->name))
            continue;
        conv_arg a = {.n = (size_t)c->n};
        a.d = (lg_conv2d_dims){.c_in = c->ci, .h_in = c->h, .w_in = c->w, .c_out = c->co, .kh = c->k, .kw = c->k,
                               .sh = c->s, .sw = c->s, .ph = c->p, .pw = c->p, .dh = 1, .dw = 1, .groups = 1,
                               .bias = 1};
        CHECK(lg_conv2d_dims_init(&a.d, &err));
        size_t xs = a.n * (size_t)(c->ci * c->h * c->w), ys = a.n * (size_t)(c->co * a.d.h_out * a.d.w_out);
        size_t wsz = (size_t)c->co * (size_t)(c->ci * c->k * c->k);
        a.x = rnd(xs), a.dx = rnd(xs), a.w = rnd(wsz), a.dw = rnd(wsz), a.b = rnd((size_t)c->co);
        a.db = rnd((size_t)c->co), a.y = rnd(ys), a.dy = rnd(ys);
        a.wsb = lg_conv2d_workspace(&a.d, a.n);
        a.ws = malloc(a.wsb);
        double flops = 2.0 * (double)ys * (double)(c->ci * c->k * c->k);
        double f = time_ms(conv_fwd, &a), b = time_ms(conv_bwd, &a);
        printf("conv\t%s\tfwd\t%.3f\t%.1f GFLOP/s\n", c->name, f, flops / f / 1e6);
        printf("conv\t%s\tbwd\t%.3f\t%.1f GFLOP/s\n", c->name, b, 2 * flops / b / 1e6);
        if (with_dnnl) {
            printf("conv\t%s\tdnnl_nchw_fwd\t%.3f\n", c->name, dnnl_conv(eng, stream, c, 0));
            printf("conv\t%s\tdnnl_blocked_fwd\t%.3f\n", c->name, dnnl_conv(eng, stream, c, 1));
        }
        fflush(stdout);
        free(a.x), free(a.dx), free(a.w), free(a.dw), free(a.b), free(a.db), free(a.y), free(a.dy), free(a.ws);
    }
    if (stream)
        dnnl_stream_destroy(stream);
    if (eng)
        dnnl_engine_destroy(eng);

    static const struct {
        const char *name;
        int rows, in, out;
    } LIN[] = {{"mlp.fc1", 64, 784, 256}, {"lenet.fc1", 64, 400, 120}, {"resnet.fc", 128, 512, 1000},
               {"fc1024", 256, 1024, 1024}};
    for (size_t i = 0; i < sizeof LIN / sizeof LIN[0] && (!only || !strcmp(only, "linear")); i++) {
        if (name && strcmp(name, LIN[i].name))
            continue;
        lin_arg l = {.d = {LIN[i].in, LIN[i].out, 1}, .rows = (size_t)LIN[i].rows};
        size_t xs = l.rows * (size_t)LIN[i].in, ys = l.rows * (size_t)LIN[i].out;
        size_t ws = (size_t)LIN[i].in * (size_t)LIN[i].out;
        l.x = rnd(xs), l.dx = rnd(xs), l.w = rnd(ws), l.dw = rnd(ws), l.b = rnd((size_t)LIN[i].out);
        l.db = rnd((size_t)LIN[i].out), l.y = rnd(ys), l.dy = rnd(ys);
        double flops = 2.0 * (double)ys * LIN[i].in;
        double f = time_ms(lin_fwd, &l), b = time_ms(lin_bwd, &l);
        printf("linear\t%s\tfwd\t%.3f\t%.1f GFLOP/s\n", LIN[i].name, f, flops / f / 1e6);
        printf("linear\t%s\tbwd\t%.3f\t%.1f GFLOP/s\n", LIN[i].name, b, 2 * flops / b / 1e6);
        free(l.x), free(l.dx), free(l.w), free(l.dw), free(l.b), free(l.db), free(l.y), free(l.dy);
    }

    if (!only || !strcmp(only, "optim")) {
        /* ResNet-18's 11,689,512 parameters as 62 tensors */
        enum { NP = 62 };
        size_t total = 11689512;
        lg_optim_param params[NP];
        for (int i = 0; i < NP; i++) {
            params[i].offset = total / NP * (size_t)i;
            params[i].count = i == NP - 1 ? total - params[i].offset : total / NP;
            params[i].group = 0;
        }
        double ms;
        if (!name) {
            copy_arg c = {total, rnd(total), rnd(total)};
            ms = time_ms(copy_run, &c);
            printf("bandwidth\ttriad\tfwd\t%.3f\t%.1f GB/s\n", ms, 12.0 * (double)total / ms / 1e6);
            free(c.a), free(c.b);
        }
        static const struct {
            const char *name;
            lg_optim_kind kind;
            double momentum, wd;
            int bytes; /* per parameter moved through memory */
        } OPT[] = {{"sgd_momentum", LG_OPTIM_SGD, 0.9, 5e-4, 20}, {"adam", LG_OPTIM_ADAM, 0, 0, 28},
                   {"adamw", LG_OPTIM_ADAMW, 0, 1e-2, 28}};
        for (size_t k = 0; k < sizeof OPT / sizeof OPT[0]; k++) {
            if (name && strcmp(name, OPT[k].name))
                continue;
            opt_arg o = {.p = rnd(total), .g = rnd(total)};
            lg_optim_config cfg;
            lg_optim_config_default(&cfg, OPT[k].kind);
            cfg.lr = 1e-6, cfg.momentum = OPT[k].momentum, cfg.weight_decay = OPT[k].wd;
            CHECK(lg_optim_init(&o.o, &cfg, 0, NULL, NP, params, total, &err));
            ms = time_ms(opt_run, &o);
            printf("optim\t%s\tstep\t%.3f\t%.1f GB/s\n", OPT[k].name, ms, OPT[k].bytes * (double)total / ms / 1e6);
            lg_optim_free(&o.o);
            free(o.p), free(o.g);
        }
    }
    if (!only || !strcmp(only, "elementwise"))
        bench_elementwise(name);
    lg_ctx_free(&ctx);
    return 0;
}
