/* ops_f32.c — the float32 kernels (lgen/kernels.h): the type-generic kernel
 * bodies in dense.inc, pointwise.inc and norm_loss.inc compiled for float,
 * with OpenBLAS sgemm. ops_f64.c compiles the same bodies for double. */
#include "ops_internal.h"

#include <cblas.h>
#include <tgmath.h>

#define LG_T float
#define LG_FN(name) name
#define LG_GEMM cblas_sgemm
#define LG_DNNL 1 /* conv2d through oneDNN first (conv_dnnl.c) */

#include "dense.inc"
#include "pointwise.inc"
#include "norm_loss.inc"
