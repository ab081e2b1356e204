/* ops_f32.c — the float32 kernels (lgen/kernels.h): the type-generic kernel
 * bodies in dense.inc, pointwise.inc and norm_loss.inc compiled for float,
 * with the GEMM tile of gemm_f32.c. ops_f64.c compiles the same bodies for double. */
#include "ops_internal.h"

#include <tgmath.h>

#define LG_T float
#define LG_FN(name) name
#define LG_GEMM lg_sgemm_tile /* gemm_f32.c: OpenBLAS or oneDNN by shape */
#define LG_DNNL 1 /* conv2d through oneDNN first (conv_dnnl.c) */

/* glibc's vector math (libmvec, linked with -lmvec): these declarations let
 * the vectoriser call expf and tanhf on 4, 8 or 16 lanes (at most 4
 * ULP from the scalar result, which PyTorch's Sleef kernels also allow);
 * glibc's own headers declare them only under -ffast-math, which we do not
 * use. The elementwise task is compiled for three instruction sets and the
 * loader picks the CPU's (pointwise.inc). */
__attribute__((__simd__("notinbranch"))) float expf(float);
__attribute__((__simd__("notinbranch"))) float tanhf(float);
#define LG_FAST_ERF 1 /* exp of x <= 0 and gelu's erf as inline polynomials (pointwise.inc) */
#define LG_PW_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))

#include "dense.inc"
#include "pointwise.inc"
#include "norm_loss.inc"
