/* gemm_f32.c — one single-threaded float32 GEMM tile (row-major), what
 * dense.inc's tiled GEMMs call for each tile: OpenBLAS's sgemm, or oneDNN's
 * (dnnl_sgemm: its gemm:jit AVX-512 kernels) for tiles of at least
 * GEMM_DNNL_FLOPS, where it measured 1.1-1.4x faster than OpenBLAS's
 * SkylakeX kernels on the linear layers of bench/ (bench/README.md); below
 * that OpenBLAS's lower call overhead wins on Ice Lake (on Sapphire Rapids
 * oneDNN's won down to 1 MFLOP: dnnl_flops). The choice depends on the tile's
 * shape only, so results do not depend on the thread count.
 *
 * oneDNN's GEMM packs its operands into a buffer it allocates and frees
 * inside each call (74 KB - 1.2 MB on bench/'s shapes): the one allocation
 * a step makes that is not ours (tests/check_ops_alloc.c allows it and
 * checks that nothing outlives the call). Its kernels are JIT-compiled on
 * its first call, once per process: lg_linear_prepare_batch does that at
 * set-up, when a prepared layer will use them. LGEN_GEMM=openblas or onednn
 * in the environment forces one library for every tile, for measuring. */
#include "ops_internal.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdatomic.h>

#define GEMM_DNNL_FLOPS 8e6 /* the smallest tile oneDNN takes (Ice Lake) */
/* Sapphire Rapids: oneDNN's GEMM measured faster than OpenBLAS's (0.3.21,
 * SkylakeX kernels) down to LeNet's fc1 (64 x 400 x 120 in two tiles of
 * 3 MFLOP: 0.030-0.032 ms against 0.037-0.042) */
static double dnnl_flops(void) {
    return lg_dnnl_amx() ? 1e6 : GEMM_DNNL_FLOPS;
}

static atomic_int gemm_mode = -1; /* -1: not read yet, 0: by shape, 1: OpenBLAS, 2: oneDNN */

static int mode(void) {
    int m = atomic_load_explicit(&gemm_mode, memory_order_relaxed);
    if (m < 0) {
        const char *env = getenv("LGEN_GEMM");
        m = !env ? 0 : !strcmp(env, "openblas") ? 1 : !strcmp(env, "onednn") ? 2 : 0;
        atomic_store_explicit(&gemm_mode, m, memory_order_relaxed);
    }
    return m;
}

void lg_sgemm_tile(int onednn, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    int m = mode();
    if (m == 2 || (m == 0 && onednn && 2.0 * M * N * K >= dnnl_flops())) {
        lg_dnnl_single_thread();
        if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) ==
            dnnl_success)
            return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

/* oneDNN compiles all its GEMM kernels (every transposition, copy and
 * compute kernel) on its first call: one small call of each form linear
 * uses (NT forward, NN data gradient, TN weight gradient) does it. */
static void warm_onednn_gemm(void) {
    enum { S = 64 };
    float *buf = calloc(3 * S * S, sizeof(float));
    if (!buf)
        return; /* then the first real call compiles them */
    lg_dnnl_single_thread();
    for (int f = 0; f < 3; f++)
        dnnl_sgemm(f == 2 ? 'T' : 'N', f == 0 ? 'T' : 'N', S, S, S, 1.0f, buf, S, buf + S * S, S, 0.0f,
                   buf + 2 * S * S, S);
    free(buf);
}

/* The largest in_features * out_features of the linear layers prepared so
 * far: at r rows, no GEMM tile of theirs exceeds 2 r in out FLOP. */
static atomic_size_t prepared_io;

lg_status lg_linear_prepare(const lg_linear_dims *d, lg_error *err) {
    if (!d)
        return lg_error_set(err, LG_ERR_ARG, "linear: no dimensions");
    if (d->in_features < 1 || d->out_features < 1)
        return lg_error_set(err, LG_ERR_ARG, "linear: in_features %d and out_features %d must be >= 1",
                            d->in_features, d->out_features);
    size_t io = (size_t)d->in_features * (size_t)d->out_features, was = atomic_load(&prepared_io);
    while (io > was && !atomic_compare_exchange_weak(&prepared_io, &was, io))
        ;
    return LG_OK;
}

lg_status lg_linear_prepare_batch(size_t rows, lg_error *err) {
    (void)err;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    /* only when a tile can reach oneDNN's share: the JIT costs ~50 ms of
     * start-up, which LeNet's small layers would pay for nothing */
    if (mode() != 1 && 2.0 * (double)rows * (double)atomic_load(&prepared_io) >= dnnl_flops())
        pthread_once(&once, warm_onednn_gemm);
    return LG_OK;
}
