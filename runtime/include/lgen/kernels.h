/* lgen/kernels.h — the CPU kernels: every op's forward and backward.
 *
 * Generated trainers call these with shapes the compiler fixed; only the batch
 * size n is a run-time argument (the last batch may be smaller). The rules:
 *
 * - Buffers are the caller's: float32, NCHW (batch-major), contiguous. No
 *   kernel allocates. A kernel that needs scratch has a `_workspace` function
 *   giving the bytes for the largest n; the caller allocates once.
 * - Parameters use PyTorch's layouts: linear weight [out, in], conv weight
 *   OIHW, batch_norm running_mean / running_var, so a checkpoint maps one to
 *   one onto a state_dict.
 * - Backward kernels ACCUMULATE (+=) into parameter gradients (dweight, dbias:
 *   gradient accumulation over steps works; the trainer zeroes them) and
 *   WRITE (=) input gradients (dx). A value used twice gets two dx buffers
 *   that the generated code adds. Any dx may be NULL when not needed (the
 *   network input), any parameter gradient may be NULL (frozen).
 * - Every kernel returns an lg_status and validates its dimensions on every
 *   call (a few integer compares): a bad shape, stride or attribute gives
 *   LG_ERR_ARG and a message naming the op in ctx->err, e.g.
 *   "conv2d: in_channels 6 not divisible by groups 4". Never a crash.
 * - Letters: N batch, C channels, H/W height/width, K classes.
 *
 * Each kernel also exists in float64 with the suffix _f64 (the same code
 * compiled for double, same arguments with double for float): the gradient
 * checks use those. The prototypes are in lgen/kernels_proto.inc, included
 * twice below; read that file for the signatures.
 */
#ifndef LGEN_KERNELS_H
#define LGEN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "lgen/parallel.h"
#include "lgen/status.h"

typedef enum { LG_REDUCE_MEAN = 0, LG_REDUCE_SUM = 1 } lg_reduction;

/* linear: x [rows, in] -> y [rows, out]; rows = N times any leading dims. */
typedef struct {
    int in_features, out_features;
    int bias; /* 1: b [out] is added */
} lg_linear_dims;

/* conv2d: x [N, c_in, h_in, w_in] -> y [N, c_out, h_out, w_out];
 * weight [c_out, c_in / groups, kh, kw], bias [c_out].
 * h_out = (h_in + 2 ph - dh (kh - 1) - 1) / sh + 1 (lg_conv2d_dims_init
 * fills h_out and w_out; the kernels check them). */
typedef struct {
    int c_in, h_in, w_in;
    int c_out, h_out, w_out;
    int kh, kw, sh, sw, ph, pw, dh, dw;
    int groups;
    int bias;
} lg_conv2d_dims;

/* max_pool2d / avg_pool2d: x [N, c, h_in, w_in] -> y [N, c, h_out, w_out].
 * Output sizes follow PyTorch including ceil_mode (a window must start inside
 * the input or left padding). lg_pool2d_dims_init fills h_out and w_out. */
typedef struct {
    int c, h_in, w_in, h_out, w_out;
    int kh, kw, sh, sw, ph, pw;
    int ceil_mode;
    int count_include_pad; /* avg_pool2d only */
} lg_pool2d_dims;

/* adaptive_avg_pool2d: x [N, c, h_in, w_in] -> y [N, c, h_out, w_out], with
 * PyTorch's bins: start = floor(i h_in / h_out), end = ceil((i+1) h_in / h_out).
 * global_avg_pool is the 1x1 case. */
typedef struct {
    int c, h_in, w_in, h_out, w_out;
} lg_adaptive_pool2d_dims;

/* batch_norm: x [N, c, spatial] (spatial = H*W, or 1 for (N, C) input).
 * Training uses batch statistics and updates running_mean/var with the
 * unbiased variance (PyTorch): r = (1 - momentum) r + momentum batch_stat;
 * eval uses the running statistics. The caller keeps num_batches_tracked
 * (an int64 it increments per training call). momentum LG_BN_CUMULATIVE is
 * PyTorch's momentum=None (the spec's `momentum: none`): the running
 * statistics are the cumulative average of every batch's, so a training
 * call's factor is 1 / num_batches_tracked (counting this call), which
 * lg_batch_norm_step_dims puts in a copy of the dims. */
typedef struct {
    int c, spatial;
    float eps, momentum;
    int affine; /* 1: weight, bias [c] */
} lg_batch_norm_dims;

#define LG_BN_CUMULATIVE (-1.0f)

/* The dims of one training call: d itself, or with a cumulative average
 * (momentum LG_BN_CUMULATIVE) momentum = 1 / num_batches_tracked, where
 * num_batches_tracked already counts this call (PyTorch increments it
 * first). */
lg_batch_norm_dims lg_batch_norm_step_dims(const lg_batch_norm_dims *d, double num_batches_tracked);

/* layer_norm: x [rows, d] normalised over its last d elements. */
typedef struct {
    int rows, d;
    float eps;
    int affine; /* 1: weight, bias [d] */
} lg_layer_norm_dims;

/* transpose: x viewed as [outer, a, mid, b, inner] -> y [outer, b, mid, a, inner].
 * The backward of a transpose is the transpose with a and b exchanged. */
typedef struct {
    size_t outer, a, mid, b, inner;
} lg_transpose_dims;

/* softmax / log_softmax / concat / split: x viewed as [outer, dim, inner]. */
typedef struct {
    size_t outer, dim, inner;
} lg_axis_dims;

/* cross_entropy: logits [N, K], target [N] class indices (int32).
 * weight (per-class, [K]) may be NULL. With reduction mean the sum is divided
 * by the summed weights of the non-ignored targets (PyTorch). */
typedef struct {
    int classes;
    double label_smoothing;
    int ignore_index;
    lg_reduction reduction;
} lg_cross_entropy_dims;

/* Dimension helpers: fill the output sizes from the attributes, or fail with a
 * message naming the op when the output would be empty or the attributes are
 * out of range. */
lg_status lg_conv2d_dims_init(lg_conv2d_dims *d, lg_error *err);
lg_status lg_pool2d_dims_init(lg_pool2d_dims *d, const char *op, lg_error *err);

/* conv2d (float32): creates, at set-up, what the kernels of this shape use
 * for a batch of any size (oneDNN primitives for each direction and chunk
 * size, their scratch memory), so that no later lg_conv2d_forward/_backward
 * call allocates. Optional (an unprepared shape is prepared on its first
 * call); a generated trainer calls it once per conv layer before training.
 * Fails only when memory runs out or d is out of range. */
lg_status lg_conv2d_prepare(const lg_conv2d_dims *d, lg_error *err);

/* linear (float32): the same for linear layers, whose larger GEMMs run on
 * oneDNN's GEMM (its kernels are JIT-compiled once per process, on first
 * use). lg_linear_prepare registers a layer (a generated main() calls it for
 * each); lg_linear_prepare_batch(rows), called by the trainer once it knows
 * the batch size, compiles oneDNN's kernels if a registered layer's GEMMs
 * at that many rows will use them (about 50 ms, so not for small layers).
 * A layer called with more rows than that (several rows per sample) may
 * compile them in its first call. Optional; fail only when d is out of
 * range. */
lg_status lg_linear_prepare(const lg_linear_dims *d, lg_error *err);
lg_status lg_linear_prepare_batch(size_t rows, lg_error *err);

/* dropout: a keep mask derived from (seed, step, layer) and the element index
 * only (a counter-based generator), so a run is reproducible for any thread
 * count. This mixes the three into the seed the kernel takes. */
uint64_t lg_dropout_seed(uint64_t seed, uint64_t step, uint32_t layer);

/* Float32 kernels. */
#define LG_T float
#define LG_FN(name) name
#include "lgen/kernels_proto.inc"
#undef LG_T
#undef LG_FN

/* Float64 twins (name_f64). */
#define LG_T double
#define LG_FN(name) name##_f64
#include "lgen/kernels_proto.inc"
#undef LG_T
#undef LG_FN

#endif
