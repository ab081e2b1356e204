/* lgen/cuda.h — the CUDA backend's runtime interface (build/liblgen_cuda.a).
 *
 * A generated CUDA trainer holds one lg_cuda context per device. At start-up
 * it creates the context (one cudaMalloc for the whole device arena whose
 * size the compiler planned, pinned staging buffers, two streams, the cuBLAS,
 * cuBLASLt and cuDNN handles) and one plan per cuBLASLt/cuDNN layer (where
 * algorithms and workspace sizes are chosen). The training loop then only
 * launches: no cudaMalloc, no host malloc, no host-device synchronisation
 * except to read the logged values. Device pointers are arena offsets turned
 * into pointers with lg_cuda_arena().
 *
 * Every function that can fail returns an lg_status and leaves its message
 * in err ("no CUDA device: <cudaGetErrorString>", or "<file>:<line>: cuDNN
 * error: <name>" around a failing library call). Nothing here exits.
 *
 * The project's own kernels (activations, elementwise arithmetic, dropout,
 * softmax, pooling, layer_norm, structure ops, losses and reductions,
 * accuracy, fused optimizer updates and clipping, fp16/bf16 conversion,
 * loss scaling, and the detection ops: box coder, IoU, matcher, NMS,
 * RoIAlign) are launchers over per-thread bodies in runtime/cuda/body.h,
 * which the host tests run on the CPU. This header needs no CUDA headers: a
 * C trainer includes it, and only liblgen_cuda.a is compiled against the
 * toolkit — except lg_accelerator_select, which is in liblgen.a so that
 * CPU-only trainers answer --accelerator too. docs/cuda.md has the
 * op-to-call table and the mixed-precision step.
 */
#ifndef LGEN_CUDA_H
#define LGEN_CUDA_H

#include "lgen/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types shared with the kernel bodies -------------------------------- */

typedef enum { LG_CUDA_F32 = 0, LG_CUDA_F16 = 1, LG_CUDA_BF16 = 2 } lg_cuda_dtype;

/* Bytes per element of a dtype. */
#define LG_CUDA_DTYPE_SIZE(dt) ((dt) == LG_CUDA_F32 ? 4u : 2u)

typedef enum {
    LG_CUDA_ACT_RELU,
    LG_CUDA_ACT_LEAKY_RELU, /* alpha = negative_slope */
    LG_CUDA_ACT_SIGMOID,
    LG_CUDA_ACT_TANH,
    LG_CUDA_ACT_GELU,      /* exact (erf) form */
    LG_CUDA_ACT_GELU_TANH, /* approximate = "tanh" */
    LG_CUDA_ACT_SILU,
} lg_cuda_act;

/* What lg_cuda_loss_* and lg_cuda_reduce compute per element. */
typedef enum {
    LG_CUDA_LOSS_BCE_WITH_LOGITS,
    LG_CUDA_LOSS_MSE,
    LG_CUDA_LOSS_L1,
    LG_CUDA_LOSS_SMOOTH_L1,
    LG_CUDA_REDUCE_SUM,     /* sum (or mean) of x */
    LG_CUDA_REDUCE_SQUARES, /* sum of x^2 */
} lg_cuda_reduce_kind;

/* F.cross_entropy over logits [N, C] and int32 labels [N]. */
typedef struct lg_cuda_ce {
    int N, C;
    float label_smoothing;
    int ignore_index;  /* -100 as in PyTorch */
    int reduction_sum; /* 0: mean over the (weighted) non-ignored rows; 1: sum */
} lg_cuda_ce;

/* torch.optim.SGD's hyperparameters. */
typedef struct lg_cuda_sgd {
    float lr, momentum, dampening, weight_decay;
    int nesterov, maximize;
} lg_cuda_sgd;

/* torch.optim.Adam (decoupled = 0) and AdamW (decoupled = 1). */
typedef struct lg_cuda_adam {
    float lr, beta1, beta2, eps, weight_decay;
    int decoupled, amsgrad, maximize;
} lg_cuda_adam;

/* Dynamic loss scaling, torch.cuda.amp.GradScaler's state. It lives in
 * device memory (the arena) so that no step needs to read it back. */
typedef struct lg_cuda_scaler {
    float scale;
    int32_t growth_tracker;
    float growth_factor, backoff_factor;
    int32_t growth_interval;
} lg_cuda_scaler;

/* GradScaler's defaults: init_scale 65536, growth 2 every 2000 clean steps,
 * backoff 0.5. */
#define LG_CUDA_SCALER_INIT {65536.0f, 0, 2.0f, 0.5f, 2000}

/* torchvision's BoxCoder: weights and the clamp on dw, dh (log(1000/16)):
 * the RPN uses (1, 1, 1, 1), the box head (10, 10, 5, 5). */
typedef struct lg_cuda_box_coder {
    float wx, wy, ww, wh;
    float clip;
} lg_cuda_box_coder;

/* torchvision's Matcher: a prediction's ground truth when its best IoU is
 * at least high; the marks below otherwise. */
typedef struct lg_cuda_matcher {
    float high, low;
    int allow_low_quality_matches;
} lg_cuda_matcher;
#define LG_CUDA_MATCH_BELOW_LOW (-1)
#define LG_CUDA_MATCH_BETWEEN (-2)

#define LG_CUDA_MAX_LEVELS 5

/* RoIAlign over one feature map, or several (MultiScaleRoIAlign: each RoI
 * goes to level k_min + l chosen by torchvision's LevelMapper). */
typedef struct lg_cuda_roi_align {
    int C, PH, PW;      /* channels, pooled height and width */
    int sampling_ratio; /* samples per bin side; <= 0: adaptive */
    int aligned;        /* half-pixel offset */
    int levels, k_min;  /* number of levels; log2 of the first level's stride */
    int H[LG_CUDA_MAX_LEVELS], W[LG_CUDA_MAX_LEVELS];
    float spatial_scale[LG_CUDA_MAX_LEVELS];
} lg_cuda_roi_align;

/* torchvision's AnchorGenerator over up to LG_CUDA_MAX_LEVELS feature maps
 * (lgen/detect.h's lg_anchor_level): per level the map's size and the
 * anchor sizes and aspect ratios (height / width) at every location. */
#define LG_CUDA_MAX_ANCHOR_CELLS 16
typedef struct lg_cuda_anchor_level {
    int feat_h, feat_w;
    int num_sizes, num_ratios; /* num_sizes * num_ratios <= LG_CUDA_MAX_ANCHOR_CELLS */
    float sizes[LG_CUDA_MAX_ANCHOR_CELLS];
    float aspect_ratios[LG_CUDA_MAX_ANCHOR_CELLS];
} lg_cuda_anchor_level;

typedef struct lg_cuda_anchors {
    int levels, image_h, image_w;
    lg_cuda_anchor_level level[LG_CUDA_MAX_LEVELS];
} lg_cuda_anchors;

/* The RPN's training loss over a batch (torchvision RegionProposalNetwork,
 * lgen/detect.h's lg_rpn_loss_batch_forward): N images of A anchors. */
typedef struct lg_cuda_rpn_loss {
    int N, A;
    float fg_iou_thresh, bg_iou_thresh; /* 0.7, 0.3 */
    int batch_size_per_image;           /* 256 */
    float positive_fraction;            /* 0.5 */
    float beta;                         /* smooth L1's, 1/9 */
    uint64_t seed, step;                /* image n samples with lg_detect_seed(seed, step, n) */
} lg_cuda_rpn_loss;

/* ---- accelerator choice (in liblgen.a: CPU-only trainers call it too) ---- */

typedef enum { LG_ACCEL_CPU = 0, LG_ACCEL_GPU = 1 } lg_accel;

/* A CUDA build passes lg_cuda_device_count; a CPU-only build passes NULL. */
typedef lg_status (*lg_device_count_fn)(int *count, lg_error *err);

/* Lightning's --accelerator / --devices: "cpu", "gpu" (or "cuda") or
 * "auto". "gpu" without CUDA in the binary, without a driver or without a
 * device fails with LG_ERR_UNSUPPORTED and a message ("no CUDA device:
 * ..."); main prints it and exits 1. "auto" picks the GPU when the binary
 * has CUDA and a device answers, else the CPU. devices: how many GPUs (1
 * here; more is the distributed issue's), or -1 for "auto" (1). *out gets
 * the choice, *device the GPU ordinal, and line (may be NULL) one line for
 * the trainer to print, in Lightning's words: "GPU available: True (cuda),
 * used: True (device 0 of 1)" or "GPU available: False, used: False (no
 * CUDA device: ...)". */
lg_status lg_accelerator_select(const char *accelerator, int devices, lg_device_count_fn count,
                                lg_accel *out, int *device, char *line, size_t line_size,
                                lg_error *err);

/* ---- device and context ------------------------------------------------- */

typedef struct lg_cuda lg_cuda;

/* The number of usable devices. No driver, no device, or a driver too old
 * for this build: LG_ERR_UNSUPPORTED with "no CUDA device: <reason>". */
lg_status lg_cuda_device_count(int *count, lg_error *err);

typedef struct lg_cuda_config {
    int device;           /* ordinal */
    size_t arena_bytes;   /* the compiler's device memory plan */
    size_t staging_bytes; /* bytes per pinned staging slot (one batch) */
    int staging_slots;    /* 2 lets loading overlap compute */
} lg_cuda_config;

lg_status lg_cuda_init(lg_cuda **out, const lg_cuda_config *cfg, lg_error *err);
void lg_cuda_free(lg_cuda *c); /* NULL is fine */

/* "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" */
const char *lg_cuda_describe(const lg_cuda *c);

/* The device address at an arena offset (NULL past the end). */
void *lg_cuda_arena(lg_cuda *c, size_t offset);
size_t lg_cuda_arena_size(const lg_cuda *c);

/* Waits for all work queued on the context's streams. */
lg_status lg_cuda_sync(lg_cuda *c, lg_error *err);

/* Synchronous copies for start-up (weights) and for reading logged values. */
lg_status lg_cuda_upload(lg_cuda *c, void *dev, const void *host, size_t bytes, lg_error *err);
lg_status lg_cuda_download(lg_cuda *c, void *host, const void *dev, size_t bytes, lg_error *err);
/* Asynchronous memset on the compute stream (gradient zeroing). */
lg_status lg_cuda_memset(lg_cuda *c, void *dev, int value, size_t bytes, lg_error *err);

/* ---- batch upload through pinned staging buffers -------------------------
 * Per batch, with slot = batch index % staging_slots and dev the arena's
 * batch buffer for that slot:
 *   lg_cuda_staging_wait(c, slot)     host waits until the slot's last copy
 *                                     has left the pinned buffer
 *   fill lg_cuda_staging(c, slot)     the loader writes the batch there
 *   lg_cuda_upload_async(c, slot, dev, bytes)
 *                                     copy stream: waits until the compute
 *                                     stream released dev, then copies
 *   lg_cuda_upload_wait(c, slot)      compute stream waits for that copy only
 *   ... the step's launches ...
 *   lg_cuda_upload_release(c, slot)   compute stream is done with dev
 * so batch i+1 is copied while batch i trains. */
void *lg_cuda_staging(lg_cuda *c, int slot);
lg_status lg_cuda_staging_wait(lg_cuda *c, int slot, lg_error *err);
lg_status lg_cuda_upload_async(lg_cuda *c, int slot, void *dev, size_t bytes, lg_error *err);
lg_status lg_cuda_upload_wait(lg_cuda *c, int slot, lg_error *err);
lg_status lg_cuda_upload_release(lg_cuda *c, int slot, lg_error *err);

/* ---- linear layers: cuBLASLt forward, cuBLAS backward --------------------
 * y[N, out] = x[N, in] W[out, in]^T + b, in dtype (f32, or f16/bf16 with
 * fp32 accumulation); the bias is fused into the GEMM's epilogue. The fast
 * path wants 16-byte aligned x, W, b and y (the arena plan should align
 * every tensor to 256 bytes, as cuDNN's tensor-core paths prefer too);
 * other pointers take a cuBLAS GEMM plus a bias kernel instead. */
typedef struct lg_cuda_linear {
    int N, in, out;
    int bias;
    lg_cuda_dtype dtype;
} lg_cuda_linear;

typedef struct lg_cuda_linear_plan lg_cuda_linear_plan;

lg_status lg_cuda_linear_init(lg_cuda *c, lg_cuda_linear_plan **out, const lg_cuda_linear *d,
                              lg_error *err);
void lg_cuda_linear_free(lg_cuda_linear_plan *p);
lg_status lg_cuda_linear_forward(lg_cuda *c, const lg_cuda_linear_plan *p, const void *x,
                                 const void *w, const void *b, void *y, lg_error *err);
/* dx (may be NULL) = dy W; dw (+)= dy^T x; db (+)= column sums of dy (may
 * be NULL); accumulate adds to dw and db instead of overwriting them. */
lg_status lg_cuda_linear_backward(lg_cuda *c, const lg_cuda_linear_plan *p, const void *x,
                                  const void *w, const void *dy, void *dx, void *dw, void *db,
                                  int accumulate, lg_error *err);

/* y [N, out] += b [out] (both dt). */
lg_status lg_cuda_bias_add(lg_cuda *c, lg_cuda_dtype dt, void *y, const void *b, size_t N,
                           size_t out, lg_error *err);

/* db (+)= column sums of dy [N, out] (both dt); the linear backward uses it. */
lg_status lg_cuda_bias_grad(lg_cuda *c, lg_cuda_dtype dt, const void *dy, size_t N, size_t out,
                            void *db, int accumulate, lg_error *err);

/* ---- cuDNN: convolution, pooling, batch norm -----------------------------
 * Plans choose algorithms with cuDNN's heuristics and size the shared
 * workspace at init; the context's workspace grows only inside *_init. */
typedef struct lg_cuda_conv {
    int N, C, H, W;   /* input */
    int K, R, S;      /* output channels, kernel height and width */
    int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, groups;
    int bias;
    lg_cuda_dtype dtype;
} lg_cuda_conv;

typedef struct lg_cuda_conv_plan lg_cuda_conv_plan;

lg_status lg_cuda_conv_init(lg_cuda *c, lg_cuda_conv_plan **out, const lg_cuda_conv *d,
                            lg_error *err);
void lg_cuda_conv_free(lg_cuda_conv_plan *p);
/* The output's height and width (PyTorch's formula). */
void lg_cuda_conv_out(const lg_cuda_conv_plan *p, int *P, int *Q);
lg_status lg_cuda_conv_forward(lg_cuda *c, const lg_cuda_conv_plan *p, const void *x,
                               const void *w, const void *b, void *y, lg_error *err);
lg_status lg_cuda_conv_backward(lg_cuda *c, const lg_cuda_conv_plan *p, const void *x,
                                const void *w, const void *dy, void *dx, void *dw, void *db,
                                int accumulate, lg_error *err);

typedef struct lg_cuda_pool {
    int N, C, H, W;
    int kh, kw, sh, sw, ph, pw;
    int max;               /* 1: max pooling, 0: average */
    int count_include_pad; /* average pooling only */
    lg_cuda_dtype dtype;
} lg_cuda_pool;

/* cuDNN pooling (the legacy API). Average pooling in bf16, for which it is
 * not documented, runs the own kernel below with the same windows. */
typedef struct lg_cuda_pool_plan lg_cuda_pool_plan;

lg_status lg_cuda_pool_init(lg_cuda *c, lg_cuda_pool_plan **out, const lg_cuda_pool *d,
                            lg_error *err);
void lg_cuda_pool_free(lg_cuda_pool_plan *p);
void lg_cuda_pool_out(const lg_cuda_pool_plan *p, int *P, int *Q);
lg_status lg_cuda_pool_forward(lg_cuda *c, const lg_cuda_pool_plan *p, const void *x, void *y,
                               lg_error *err);
lg_status lg_cuda_pool_backward(lg_cuda *c, const lg_cuda_pool_plan *p, const void *x,
                                const void *y, const void *dy, void *dx, lg_error *err);

/* The project's own pooling kernels, for what cuDNN cannot do (ceil_mode,
 * PyTorch's exact avg_pool2d divisor at the borders) and for results that
 * match the CPU kernels bit for bit: max pooling saves the arg-max (index
 * in the H*W plane) for backward, and both backward passes gather (no
 * atomics: deterministic). Over planes = N * C. */
typedef struct lg_cuda_pool2d {
    int H, W, OH, OW;
    int kh, kw, sh, sw, ph, pw;
    int ceil_mode, count_include_pad;
} lg_cuda_pool2d;

/* Fills OH and OW with PyTorch's formula (ceil_mode included); checks the
 * attributes (padding at most half the kernel). */
lg_status lg_cuda_pool2d_init(lg_cuda_pool2d *d, lg_error *err);
lg_status lg_cuda_max_pool2d_forward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt,
                                     size_t planes, const void *x, void *y, int32_t *argmax,
                                     lg_error *err);
lg_status lg_cuda_max_pool2d_backward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt,
                                      size_t planes, const int32_t *argmax, const void *dy,
                                      void *dx, lg_error *err);
lg_status lg_cuda_avg_pool2d_forward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt,
                                     size_t planes, const void *x, void *y, lg_error *err);
lg_status lg_cuda_avg_pool2d_backward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt,
                                      size_t planes, const void *dy, void *dx, lg_error *err);

/* Spatial batch norm over [N, C, H, W] in dtype; weight, bias, running
 * statistics and the saved mean / inverse std are float32 [C]. */
typedef struct lg_cuda_bn {
    int N, C, H, W;
    double eps, momentum;
    lg_cuda_dtype dtype;
} lg_cuda_bn;

typedef struct lg_cuda_bn_plan lg_cuda_bn_plan;

/* weight and bias NULL (and dweight, dbias NULL in backward): batch norm
 * without affine parameters (affine: false), a unit scale and zero shift. */
lg_status lg_cuda_bn_init(lg_cuda *c, lg_cuda_bn_plan **out, const lg_cuda_bn *d, lg_error *err);
void lg_cuda_bn_free(lg_cuda_bn_plan *p);
/* The running statistics' update factor of the next forward_train calls
 * (the plan's momentum until then); batch_norm with momentum none (a
 * cumulative average) sets 1 / num_batches_tracked before each, counting
 * the step, as PyTorch does. */
void lg_cuda_bn_set_momentum(lg_cuda_bn_plan *p, double momentum);
lg_status lg_cuda_bn_forward_train(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, void *y,
                                   const float *weight, const float *bias, float *running_mean,
                                   float *running_var, float *save_mean, float *save_invstd,
                                   lg_error *err);
lg_status lg_cuda_bn_forward_eval(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, void *y,
                                  const float *weight, const float *bias,
                                  const float *running_mean, const float *running_var,
                                  lg_error *err);
lg_status lg_cuda_bn_backward(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, const void *dy,
                              void *dx, const float *weight, float *dweight, float *dbias,
                              const float *save_mean, const float *save_invstd, int accumulate,
                              lg_error *err);

/* ---- the project's kernels ---------------------------------------------- */

lg_status lg_cuda_act_forward(lg_cuda *c, lg_cuda_act act, float alpha, lg_cuda_dtype dt,
                              const void *x, void *y, size_t n, lg_error *err);
/* dx from x, the forward output y and dy (all dt); sigmoid and tanh read
 * only y, the others only x (relu either): the other may be NULL. */
lg_status lg_cuda_act_backward(lg_cuda *c, lg_cuda_act act, float alpha, lg_cuda_dtype dt,
                               const void *x, const void *y, const void *dy, void *dx, size_t n,
                               lg_error *err);

/* Elementwise arithmetic over n elements of dtype dt (computed in float):
 * y = a + b, y = a * b (backward: da = dy * b, db = dy * a, either may be
 * NULL), y = by * x, y += x (summing the gradients of a value used twice).
 * The backward of add is a copy: lg_cuda_copy. */
lg_status lg_cuda_add(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b, void *y, size_t n,
                      lg_error *err);
lg_status lg_cuda_mul(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b, void *y, size_t n,
                      lg_error *err);
lg_status lg_cuda_mul_backward(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b,
                               const void *dy, void *da, void *db, size_t n, lg_error *err);
lg_status lg_cuda_scale(lg_cuda *c, lg_cuda_dtype dt, float by, const void *x, void *y, size_t n,
                        lg_error *err);
lg_status lg_cuda_accumulate(lg_cuda *c, lg_cuda_dtype dt, const void *x, void *y, size_t n,
                             lg_error *err);
/* Device-to-device copy on the compute stream. */
lg_status lg_cuda_copy(lg_cuda *c, void *dst, const void *src, size_t bytes, lg_error *err);

/* Dropout in training, as the CPU kernel lg_dropout_forward (the same
 * elements are dropped for the same seed, from lg_dropout_seed); mask [n]
 * is saved for the backward pass. */
lg_status lg_cuda_dropout_forward(lg_cuda *c, lg_cuda_dtype dt, double p, uint64_t seed,
                                  const void *x, void *y, uint8_t *mask, size_t n, lg_error *err);
lg_status lg_cuda_dropout_backward(lg_cuda *c, lg_cuda_dtype dt, double p, const uint8_t *mask,
                                   const void *dy, void *dx, size_t n, lg_error *err);

/* The dense ops below take their tensors in dtype dt (f32, or the f16/bf16
 * compute dtype of mixed precision) and compute in float; statistics
 * (layer_norm's save_mean/save_invstd) and scalars (losses, dloss) are
 * always float32. */

/* softmax / log_softmax of x viewed as [outer, dim, inner] along dim;
 * backward from the forward output y. */
lg_status lg_cuda_softmax_forward(lg_cuda *c, lg_cuda_dtype dt, int log_softmax, size_t outer,
                                  size_t dim, size_t inner, const void *x, void *y, lg_error *err);
lg_status lg_cuda_softmax_backward(lg_cuda *c, lg_cuda_dtype dt, int log_softmax, size_t outer,
                                   size_t dim, size_t inner, const void *y, const void *dy, void *dx,
                                   lg_error *err);

/* layer_norm over rows of D; weight and bias [D] may be NULL (affine off);
 * save_mean and save_invstd [rows] are kept for backward, where dweight
 * and dbias accumulate (+=) and dx is written. */
lg_status lg_cuda_layer_norm_forward(lg_cuda *c, lg_cuda_dtype dt, size_t rows, size_t D, float eps,
                                     const void *x, const void *weight, const void *bias, void *y,
                                     float *save_mean, float *save_invstd, lg_error *err);
lg_status lg_cuda_layer_norm_backward(lg_cuda *c, lg_cuda_dtype dt, size_t rows, size_t D, const void *x,
                                      const void *weight, const float *save_mean,
                                      const float *save_invstd, const void *dy, void *dx,
                                      void *dweight, void *dbias, lg_error *err);

/* adaptive_avg_pool2d over planes = N * C: [planes, H, W] -> [planes, OH, OW]. */
lg_status lg_cuda_adaptive_avg_pool_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H,
                                            size_t W, size_t OH, size_t OW, const void *x, void *y,
                                            lg_error *err);
lg_status lg_cuda_adaptive_avg_pool_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H,
                                             size_t W, size_t OH, size_t OW, const void *dy, void *dx,
                                             lg_error *err);

/* upsample_nearest: [planes, H, W] -> [planes, H * scale, W * scale]. */
lg_status lg_cuda_upsample_nearest_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H,
                                           size_t W, int scale, const void *x, void *y, lg_error *err);
lg_status lg_cuda_upsample_nearest_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H,
                                            size_t W, int scale, const void *dy, void *dx, lg_error *err);

/* rpn_flatten, one level: the RPN head's map x [N, A * D, H, W] into rows
 * offset .. offset + H*W*A - 1 of y [N, total, D] (location-major, then
 * anchor: torchvision's permute_and_flatten); backward gathers dy's rows
 * back into dx [N, A * D, H, W] (written). */
lg_status lg_cuda_rpn_flatten_forward(lg_cuda *c, lg_cuda_dtype dt, size_t N, int A, int D, int H, int W,
                                      const void *x, void *y, size_t total, size_t offset, lg_error *err);
lg_status lg_cuda_rpn_flatten_backward(lg_cuda *c, lg_cuda_dtype dt, size_t N, int A, int D, int H,
                                       int W, const void *dy, size_t total, size_t offset, void *dx,
                                       lg_error *err);

/* transpose x [outer, a, mid, b, inner] -> y [outer, b, mid, a, inner]; the
 * backward is the same call with a and b exchanged. */
lg_status lg_cuda_transpose(lg_cuda *c, lg_cuda_dtype dt, size_t outer, size_t a, size_t mid, size_t b,
                            size_t inner, const void *x, void *y, lg_error *err);

/* concat k inputs (each [outer, sizes[i]]) into y [outer, sum sizes], and
 * split, its inverse (and each other's backward; a NULL output is skipped:
 * a piece whose gradient nothing needs); any k >= 1, in launches of
 * LG_CUDA_MAX_CONCAT pieces. */
#define LG_CUDA_MAX_CONCAT 8
lg_status lg_cuda_concat(lg_cuda *c, lg_cuda_dtype dt, size_t outer, int k, const size_t *sizes,
                         const void *const *inputs, void *y, lg_error *err);
lg_status lg_cuda_split(lg_cuda *c, lg_cuda_dtype dt, size_t outer, int k, const size_t *sizes,
                        const void *x, void *const *outputs, lg_error *err);

/* *acc (device) = the fraction of rows whose label is among the k largest
 * logits; ws: N floats. */
lg_status lg_cuda_topk_accuracy(lg_cuda *c, const float *logits, const int32_t *labels, int N,
                                int C, int k, float *acc, void *ws, lg_error *err);

/* global_avg_pool: x [N, C, hw] -> y [N, C], in dtype dt (summed in float). */
lg_status lg_cuda_global_avg_pool_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t hw,
                                          const void *x, void *y, lg_error *err);
lg_status lg_cuda_global_avg_pool_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t hw,
                                           const void *dy, void *dx, lg_error *err);

/* *out (device, float32) = the sum over n elements of the kind's term
 * (target may be NULL for REDUCE_SUM and REDUCE_SQUARES), divided by n when
 * mean is set; x and target in dtype dt, summed in float. Deterministic (a
 * fixed two-pass reduction). mean/sum over a tensor are REDUCE_SUM; the
 * elementwise losses are the LOSS_ kinds (beta: smooth L1). */
lg_status lg_cuda_reduce(lg_cuda *c, lg_cuda_reduce_kind kind, int mean, float beta,
                         lg_cuda_dtype dt, const void *x, const void *target, size_t n, float *out,
                         lg_error *err);
/* dx[i] (dtype dt) = dloss[0] (float32) * (1/n if mean) * the loss's
 * derivative at x[i]; for REDUCE_SUM it is the plain spread of dloss
 * (mean/sum backward). */
lg_status lg_cuda_loss_backward(lg_cuda *c, lg_cuda_reduce_kind kind, int mean, float beta,
                                lg_cuda_dtype dt, const void *x, const void *target, const float *dloss,
                                void *dx, size_t n, lg_error *err);

/* Gradient clipping over a float32 gradient block, on the device:
 * clip_grad_norm_ (2-norm; *norm (device, may be NULL) gets the norm before
 * clipping) and clip_grad_value_. */
lg_status lg_cuda_clip_grad_norm(lg_cuda *c, float *grads, size_t n, double max_norm, float *norm,
                                 lg_error *err);
lg_status lg_cuda_clip_grad_value(lg_cuda *c, float *grads, size_t n, float clip_value,
                                  lg_error *err);

/* dst[i] = src[i] converted (round to nearest even); f32 master weights to
 * their f16/bf16 copies and gradients back. */
lg_status lg_cuda_convert(lg_cuda *c, lg_cuda_dtype to, void *dst, lg_cuda_dtype from,
                          const void *src, size_t n, lg_error *err);

/* Workspace bytes the cross entropy needs; it keeps per-row values the
 * backward pass reads, so keep it from forward to backward. */
size_t lg_cuda_cross_entropy_workspace(const lg_cuda_ce *d);
/* *loss (device) = the loss; weight may be NULL (no class weights). */
lg_status lg_cuda_cross_entropy_forward(lg_cuda *c, const lg_cuda_ce *d, const float *logits,
                                        const int32_t *labels, const float *weight, float *loss,
                                        void *ws, lg_error *err);
/* weight_sum: the sum of the class weights (C when weight is NULL);
 * dloss: the device scalar gradient of the loss (the loss scale). */
lg_status lg_cuda_cross_entropy_backward(lg_cuda *c, const lg_cuda_ce *d, const float *logits,
                                         const int32_t *labels, const float *weight,
                                         float weight_sum, const float *dloss, const void *ws,
                                         float *dlogits, lg_error *err);

/* *acc (device) = the fraction of rows whose first arg-max is the label;
 * ws: N floats. */
lg_status lg_cuda_accuracy(lg_cuda *c, const float *logits, const int32_t *labels, int N, int C,
                           float *acc, void *ws, lg_error *err);

/* Fused optimizer updates over n float32 elements. skip (device, may be
 * NULL) is the loss scaler's found-inf flag: when set the update does
 * nothing. first_step: SGD's momentum buffer starts as the gradient. */
lg_status lg_cuda_sgd_update(lg_cuda *c, const lg_cuda_sgd *h, int first_step, float *param,
                             const float *grad, float *momentum_buf, size_t n, const int *skip,
                             lg_error *err);

/* Adam's step count and bias corrections live in device memory
 * (lg_cuda_adam_state_bytes, zeroed at start): lg_cuda_adam_prepare once
 * per optimizer step, then lg_cuda_adam_update for each parameter block. */
size_t lg_cuda_adam_state_bytes(void);
lg_status lg_cuda_adam_prepare(lg_cuda *c, const lg_cuda_adam *h, void *state, const int *skip,
                               lg_error *err);
lg_status lg_cuda_adam_update(lg_cuda *c, const lg_cuda_adam *h, const void *state, float *param,
                              const float *grad, float *exp_avg, float *exp_avg_sq,
                              float *max_exp_avg_sq, size_t n, const int *skip, lg_error *err);

/* Mixed precision. Per step: lg_cuda_scaler_seed writes the loss gradient
 * (the scale) to dloss; backward runs in f16/bf16; lg_cuda_unscale turns
 * each gradient block into f32 divided by the scale and raises *found_inf on
 * inf/NaN; the optimizer updates get found_inf as `skip`; then
 * lg_cuda_scaler_update adjusts the scale and clears *found_inf. The scaler
 * and the flag are device memory. */
lg_status lg_cuda_scaler_seed(lg_cuda *c, const lg_cuda_scaler *scaler, float *dloss,
                              lg_error *err);
lg_status lg_cuda_unscale(lg_cuda *c, const lg_cuda_scaler *scaler, lg_cuda_dtype dt,
                          const void *grad, float *grad32, size_t n, int *found_inf,
                          lg_error *err);
lg_status lg_cuda_scaler_update(lg_cuda *c, lg_cuda_scaler *scaler, int *found_inf,
                                lg_error *err);

/* torchvision.ops.nms: boxes [n, 4] (x1, y1, x2, y2), scores [n]; keep
 * (device, max_keep ints) gets the survivors' indices by score, *num_keep
 * (device) their count. */
size_t lg_cuda_nms_workspace(size_t n);
lg_status lg_cuda_nms(lg_cuda *c, const float *boxes, const float *scores, size_t n,
                      float iou_thresh, int *keep, int *num_keep, int max_keep, void *ws,
                      lg_error *err);

/* Batched NMS (torchvision.ops.batched_nms): only boxes with the same
 * groups[i] (class or level) suppress each other; the survivors of all
 * groups come out together by decreasing score. Same workspace as lg_cuda_nms. */
lg_status lg_cuda_batched_nms(lg_cuda *c, const float *boxes, const float *scores,
                              const int *groups, size_t n, float iou_thresh, int *keep,
                              int *num_keep, int max_keep, void *ws, lg_error *err);

/* Box coder over n boxes: out = ref moved by deltas; deltas taking ref to
 * gt; boxes clamped into the image [0, W] x [0, H] in place. */
lg_status lg_cuda_box_decode(lg_cuda *c, const lg_cuda_box_coder *coder, const float *deltas,
                             const float *ref, size_t n, float *out, lg_error *err);
lg_status lg_cuda_box_encode(lg_cuda *c, const lg_cuda_box_coder *coder, const float *gt,
                             const float *ref, size_t n, float *deltas, lg_error *err);
lg_status lg_cuda_box_clip(lg_cuda *c, float *boxes, size_t n, int H, int W, lg_error *err);

/* iou [na, nb] of boxes a [na, 4] and b [nb, 4] (torchvision box_iou). */
lg_status lg_cuda_box_iou(lg_cuda *c, const float *a, size_t na, const float *b, size_t nb,
                          float *iou, lg_error *err);
/* matches [num_pred] from iou [num_gt, num_pred]; ws: num_gt floats. */
lg_status lg_cuda_match(lg_cuda *c, const lg_cuda_matcher *m, const float *iou, int num_gt,
                        int num_pred, float *ws, int *matches, lg_error *err);

/* torchvision.ops.roi_align: feat[l] (device) per level, rois [K, 5]
 * (a negative batch index is a padding row: zero output, no gradient),
 * out [K, C, PH, PW]. Backward adds into dfeat[l], which the caller zeroes. */
lg_status lg_cuda_roi_align_forward(lg_cuda *c, const lg_cuda_roi_align *d,
                                    const float *const *feat, const float *rois, size_t K,
                                    float *out, lg_error *err);
lg_status lg_cuda_roi_align_backward(lg_cuda *c, const lg_cuda_roi_align *d, float *const *dfeat,
                                     const float *rois, size_t K, const float *dout,
                                     lg_error *err);

/* ---- detection: proposals, RoI sampling, detections (runtime/cuda/boxes.cu) ----
 * The batch versions of lgen/detect.h's lg_proposals_batch,
 * lg_rois_from_proposals, lg_roi_sample_batch and lg_detections_batch, with
 * the same inputs and outputs in device memory, and the same results (the
 * same boxes kept in the same order, the same RoIs sampled for a seed) up to
 * the device's expf/logf rounding. Every array is device memory; N is the
 * batch's image count, at most the N the workspace was sized for. Sorting
 * and top-n are bitonic sorts over 64-bit keys (score, then index); NMS is a
 * bit-mask IoU kernel and one thread per image walking the masks. Per-thread
 * bodies: runtime/cuda/boxes_body.h (tests/check_cuda_boxes.c). */

#define LG_CUDA_DET_MAX_LEVELS 8

/* A batch's ground truth on the device (lgen/detect.h's lg_det_targets). */
typedef struct lg_cuda_det_targets {
    int max_boxes;            /* B */
    const float *boxes;       /* [N, B, 4] */
    const int32_t *labels;    /* [N, B] (0-based class ids, -1 padding) */
    const uint8_t *difficult; /* [N, B], or NULL */
    const int32_t *count;     /* [N] */
    int label_offset;         /* added to labels (1: class 0 is the background) */
    int skip_difficult;       /* 1: training leaves difficult boxes out */
} lg_cuda_det_targets;

/* RPN proposals (lg_proposal_config) of images whose anchors [A, 4] come
 * level after level, per_level[l] of them. */
typedef struct lg_cuda_proposals_cfg {
    int levels;
    int per_level[LG_CUDA_DET_MAX_LEVELS];
    int pre_nms_top_n, post_nms_top_n;
    float nms_thresh, min_size, score_thresh;
    int image_h, image_w;
} lg_cuda_proposals_cfg;

size_t lg_cuda_proposals_workspace(const lg_cuda_proposals_cfg *d, int N);
/* objectness [N, A], deltas [N, A, 4] -> boxes [N, P, 4], scores [N, P],
 * count [N] (P = post_nms_top_n; rows past the count are zero). */
lg_status lg_cuda_proposals(lg_cuda *c, const lg_cuda_proposals_cfg *d, int N, const float *objectness,
                            const float *deltas, const float *anchors, void *ws, float *boxes,
                            float *scores, int32_t *count, lg_error *err);

/* rois [N * P, 5] = (image, box) from boxes [N, P, 4] and count [N];
 * (-1, 0, 0, 0, 0) past each image's count. */
lg_status lg_cuda_rois_from_proposals(lg_cuda *c, const float *boxes, const int32_t *count, int N,
                                      int P, float *rois, lg_error *err);

/* RoI sampling (lg_roi_sample_config) of P proposals per image. */
typedef struct lg_cuda_roi_sample_cfg {
    int P, R; /* proposals per image, RoIs per image (batch_size_per_image) */
    float fg_iou_thresh, bg_iou_thresh, positive_fraction;
    lg_cuda_box_coder coder;
} lg_cuda_roi_sample_cfg;

size_t lg_cuda_roi_sample_workspace(const lg_cuda_roi_sample_cfg *d, int N, int max_boxes);
/* proposals [N, P, 4] and count [N] -> rois [N * R, 5], labels [N * R]
 * (-1 padding), box_targets [N * R, 4]; image n draws with
 * lg_detect_seed(seed, step, n), as the CPU kernel. */
lg_status lg_cuda_roi_sample(lg_cuda *c, const lg_cuda_roi_sample_cfg *d, int N,
                             const float *proposals, const int32_t *count,
                             const lg_cuda_det_targets *t, uint64_t seed, uint64_t step, void *ws,
                             float *rois, int32_t *labels, float *box_targets, lg_error *err);

/* Post-processing (lg_detect_config) of the box head's outputs on R RoI
 * rows per image with K classes. */
typedef struct lg_cuda_detect_cfg {
    int R, K;
    float score_thresh, nms_thresh;
    int detections_per_img; /* D */
    float min_size;
    lg_cuda_box_coder coder;
    int image_h, image_w;
} lg_cuda_detect_cfg;

size_t lg_cuda_detections_workspace(const lg_cuda_detect_cfg *d, int N);
/* class_logits [N * R, K], box_regression [N * R, K * 4], rois [N * R, 5]
 * -> boxes [N, D, 4], scores [N, D], labels [N, D] (-1 padding), count [N]. */
lg_status lg_cuda_detections(lg_cuda *c, const lg_cuda_detect_cfg *d, int N, const float *class_logits,
                             const float *box_regression, const float *rois, void *ws, float *boxes,
                             float *scores, int32_t *labels, int32_t *count, lg_error *err);

/* ---- detection losses and anchors (runtime/cuda/detect.cu) ----------------
 * The device twins of lgen/detect.h's anchors, RPN loss and Fast R-CNN loss,
 * float32, over per-thread bodies in runtime/cuda/detect_body.h. Inputs and
 * outputs are device pointers; the losses are device scalars, and so are
 * the backward's incoming gradients (NULL: zero). The sampler draws what the
 * CPU kernel draws for the same seed, so the same anchors are sampled. */

/* anchors [A, 4] in AnchorGenerator's order (lg_anchors_generate's). */
lg_status lg_cuda_anchors_generate(lg_cuda *c, const lg_cuda_anchors *d, float *anchors,
                                   lg_error *err);

/* The RPN loss: per image, IoU of the ground truth (t) with anchors [A, 4],
 * Matcher (fg/bg thresholds, low-quality matches allowed), the balanced
 * sampler, box targets (RPN coder); labels [N, A] (1 / 0 sampled, -1 not)
 * and box_targets [N, A, 4] are kept for backward. objectness [N, A],
 * deltas [N, A, 4]. ws: lg_cuda_rpn_loss_workspace bytes. */
size_t lg_cuda_rpn_loss_workspace(int N, int A, int max_boxes);
lg_status lg_cuda_rpn_loss_forward(lg_cuda *c, const lg_cuda_rpn_loss *d, const float *objectness,
                                   const float *deltas, const float *anchors,
                                   const lg_cuda_det_targets *t, void *ws, int32_t *labels,
                                   float *box_targets, float *loss_objectness, float *loss_box,
                                   lg_error *err);
/* Writes grad_objectness [N, A] and grad_deltas [N, A, 4] (either may be NULL). */
lg_status lg_cuda_rpn_loss_backward(lg_cuda *c, const lg_cuda_rpn_loss *d, const float *objectness,
                                    const float *deltas, const int32_t *labels,
                                    const float *box_targets, const float *dloss_objectness,
                                    const float *dloss_box, float *grad_objectness,
                                    float *grad_deltas, lg_error *err);

/* RoIAlign's backward without atomics: every level's gradient [N, C, H_l,
 * W_l] written (zero where no RoI samples), each pixel's sum taken in
 * runtime/detect's order (RoIs, bins, sampling points, corners), so it is
 * the same in every run and equal to lg_multiscale_roi_align_backward's
 * (up to the device's log2f in the level choice). A thread per row of
 * each gradient plane, skipping the RoIs that cannot touch it; unlike
 * lg_cuda_roi_align_backward's atomic scatter it needs no zeroed
 * gradients and sums in one order. */
lg_status lg_cuda_roi_align_backward_ordered(lg_cuda *c, const lg_cuda_roi_align *d, int N,
                                             float *const *dfeat, const float *rois, size_t K,
                                             const float *dout, lg_error *err);

/* Fast R-CNN loss over R rows (lg_fastrcnn_loss_forward): class_logits
 * [R, K], box_regression [R, K * 4], labels [R] (-1 padding), box_targets
 * [R, 4]. Backward writes grad_logits and grad_box (either may be NULL). */
lg_status lg_cuda_fastrcnn_loss_forward(lg_cuda *c, const float *class_logits,
                                        const float *box_regression, const int32_t *labels,
                                        const float *box_targets, int R, int K, float beta,
                                        float *loss_classifier, float *loss_box_reg,
                                        lg_error *err);
lg_status lg_cuda_fastrcnn_loss_backward(lg_cuda *c, const float *class_logits,
                                         const float *box_regression, const int32_t *labels,
                                         const float *box_targets, int R, int K, float beta,
                                         const float *dloss_classifier, const float *dloss_box_reg,
                                         float *grad_logits, float *grad_box, lg_error *err);

/* ---- a generated trainer's GPU steps ---------------------------------------
 * `lgen SPEC -o DIR --target cuda` writes DIR/NAME_cuda.c, which defines
 * lg_cuda_trainer_steps; `make CUDA=1` links it into the trainer. The
 * runtime's setup (runtime/trainer/loop.c) finds it through this weak
 * declaration (its address is NULL in a CPU-only trainer), chooses with
 * lg_accelerator_select and device_count, and on a GPU calls init, which
 * prepares the device for batches of up to batch_size and returns a copy of
 * the model def whose steps run there; free releases it (safe to call when
 * init never ran). */
struct lg_model_def;
typedef struct lg_cuda_trainer {
    lg_device_count_fn device_count;
    lg_status (*init)(int device, const char *precision, int batch_size,
                      const struct lg_model_def *cpu, const struct lg_model_def **gpu,
                      lg_error *err);
    void (*free)(void);
} lg_cuda_trainer;
extern const lg_cuda_trainer lg_cuda_trainer_steps __attribute__((weak));

#ifdef __cplusplus
}
#endif

#endif
