/* ops_f32.c — the float32 kernels (lgen/kernels.h): the type-generic kernel
 * bodies in dense.inc, pointwise.inc and norm_loss.inc compiled for float,
 * with the GEMM tile of gemm_f32.c. ops_f64.c compiles the same bodies for double. */
#include "ops_internal.h"

#include <tgmath.h>

#define LG_T float
#define LG_FN(name) name
#define LG_GEMM lg_sgemm_tile /* gemm_f32.c: OpenBLAS or oneDNN by shape */
#define LG_DNNL 1 /* conv2d through oneDNN first (conv_dnnl.c) */

#include "dense.inc"
#include "pointwise.inc"
#include "norm_loss.inc"
