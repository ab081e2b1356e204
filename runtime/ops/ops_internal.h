/* ops_internal.h — what the kernel sources share: argument checks that name
 * the op, the chunking of elementwise work, and the GEMM of the element type.
 * Included by ops_f32.c / ops_f64.c after they define LG_T and LG_FN, and by
 * dims.c. Not installed. */
#ifndef LG_OPS_INTERNAL_H
#define LG_OPS_INTERNAL_H

#include "lgen/kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Fails the calling kernel with LG_ERR_ARG and a message when cond is false. */
#define LG_CHECK(cond, ...)                                                             \
    do {                                                                                \
        if (!(cond))                                                                    \
            return lg_error_set((ctx) ? (ctx)->err : NULL, LG_ERR_ARG, __VA_ARGS__);     \
    } while (0)

/* Elementwise work is cut into chunks of this many elements; the cut depends
 * on the size only, so results never depend on the thread count. */
#define LG_CHUNK 32768

static inline size_t lg_chunks(size_t count, size_t chunk) {
    return (count + chunk - 1) / chunk;
}

/* conv_dnnl.c: conv2d in float32 through oneDNN. Each returns 1 when it ran
 * the op and 0 when oneDNN is off or refused the shape: the caller then runs
 * im2col + GEMM (dense.inc). Arguments as lg_conv2d_forward / _backward,
 * already checked. */
int lg_dnnl_conv_forward(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *x, const float *w,
                         const float *b, float *y);
int lg_dnnl_conv_backward_data(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *w, const float *dy,
                               float *dx);
int lg_dnnl_conv_backward_weights(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *x, const float *dy,
                                  float *dw, float *db);

/* conv_dnnl.c: makes oneDNN run single-threaded in the calling thread (it
 * sizes its work by omp_get_max_threads()); cheap after the first call. */
void lg_dnnl_single_thread(void);

/* conv_dnnl.c: 1 on a Sapphire Rapids-class CPU (oneDNN's ISA
 * avx512_core_amx), where some kernel choices differ (measured there). */
int lg_dnnl_amx(void);

/* gemm_f32.c: C = alpha op(A) op(B) + beta C, row-major, one thread: the
 * float32 GEMM tile of dense.inc. OpenBLAS, or with onednn set oneDNN's GEMM
 * for tiles big enough that it is faster. */
void lg_sgemm_tile(int onednn, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);

#endif
