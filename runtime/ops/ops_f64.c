/* ops_f64.c — the float64 twins (lgen/kernels.h): the type-generic kernel
 * bodies in dense.inc, pointwise.inc and norm_loss.inc compiled for double,
 * with OpenBLAS dgemm; the gradient checks use them. */
#include "ops_internal.h"

#include <cblas.h>
#include <tgmath.h>

#define LG_T double
#define LG_FN(name) name##_f64
#define LG_GEMM dgemm_tile

static void dgemm_tile(int onednn, int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda,
                       const double *B, int ldb, double beta, double *C, int ldc) {
    (void)onednn; /* oneDNN has no float64 GEMM */
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

#include "dense.inc"
#include "pointwise.inc"
#include "norm_loss.inc"
