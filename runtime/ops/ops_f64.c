/* ops_f64.c — the float64 twins (lgen/kernels.h): the type-generic kernel
 * bodies in dense.inc, pointwise.inc and norm_loss.inc compiled for double,
 * with OpenBLAS dgemm; the gradient checks use them. */
#include "ops_internal.h"

#include <cblas.h>
#include <tgmath.h>

#define LG_T double
#define LG_FN(name) name##_f64
#define LG_GEMM cblas_dgemm

#include "dense.inc"
#include "pointwise.inc"
#include "norm_loss.inc"
