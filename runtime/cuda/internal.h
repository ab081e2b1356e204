/* runtime/cuda/internal.h — what cuda.c and kernels.cu share.
 *
 * The context struct behind the opaque lg_cuda of lgen/cuda.h, and the
 * check macro around CUDA runtime calls. cuda.c (plain C, compiled by $(CC)
 * against the toolkit's headers) owns the context, cuBLAS(Lt) and cuDNN;
 * kernels.cu (nvcc) launches the project's kernels on c->stream. Not
 * installed: users include lgen/cuda.h only.
 */
#ifndef LGEN_CUDA_INTERNAL_H
#define LGEN_CUDA_INTERNAL_H

#include "lgen/cuda.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

/* Device-side failures other than "no device" and out-of-memory: lg_status
 * has no device code yet, so they are reported as i/o errors with the CUDA
 * message. */
#define LG_ERR_DEVICE LG_ERR_IO

struct lg_cuda {
    int device;
    char desc[256];
    cudaStream_t stream;      /* compute */
    cudaStream_t copy_stream; /* batch uploads */
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    cudnnHandle_t dnn;
    char *arena;
    size_t arena_bytes;
    float *reduce; /* LG_CUDA_REDUCE_SCRATCH floats for two-pass reductions */
    void *ws; /* shared cuDNN / cuBLASLt workspace, sized by the plans */
    size_t ws_bytes;
    /* batch norm without affine parameters: ones[C], zeros[C] and scratch
     * for cuDNN's weight and bias gradients [2C], C the largest plan's */
    float *bn_unit;
    int bn_unit_C;
    int slots;
    size_t staging_bytes;
    void *staging[8];
    cudaEvent_t copied[8];   /* the slot's copy has finished */
    cudaEvent_t released[8]; /* the compute stream is done with the slot's batch */
};

#define LG_CUDA_MAX_SLOTS 8

/* Partial sums of a reduction: one per block of the first pass (at most
 * LG_CUDA_REDUCE_BLOCKS), then a few scalars. */
#define LG_CUDA_REDUCE_BLOCKS 1024
#define LG_CUDA_REDUCE_SCRATCH (LG_CUDA_REDUCE_BLOCKS + 4)

/* Returns from the calling function with an lg_status when a CUDA runtime
 * call fails; the function must have an `lg_error *err` in scope. */
#define LG_CUDA_TRY(call)                                                                      \
    do {                                                                                       \
        cudaError_t lg_e_ = (call);                                                            \
        if (lg_e_ != cudaSuccess)                                                              \
            return lg_error_set(err,                                                           \
                                lg_e_ == cudaErrorMemoryAllocation ? LG_ERR_NOMEM : LG_ERR_DEVICE, \
                                "%s:%d: CUDA error: %s (%s)", __FILE__, __LINE__,             \
                                cudaGetErrorString(lg_e_), #call);                             \
    } while (0)

/* A convolution's bias gradient over dy [N, C, HW] (kernels.cu; cuDNN has
 * no bf16 cudnnConvolutionBackwardBias). */
#ifdef __cplusplus
extern "C"
#endif
lg_status lg_cuda_conv_bias_grad(lg_cuda *c, lg_cuda_dtype dt, const void *dy, size_t N, size_t C,
                                 size_t HW, void *db, int accumulate, lg_error *err);

#endif
