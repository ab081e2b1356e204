/* runtime/cuda/launch.cuh — what every .cu file of liblgen_cuda.a launches
 * with: lgen/status.h with C linkage (it has no extern "C" block of its
 * own), the block size, the grid for n elements (capped; the kernels are
 * grid-stride loops), the loop itself, and the check after a launch that
 * turns a launch error into an lg_error naming the op. */
#ifndef LGEN_CUDA_LAUNCH_CUH
#define LGEN_CUDA_LAUNCH_CUH

extern "C" {
#include "lgen/status.h"
}
#include "internal.h"

#define THREADS 256

static inline unsigned grid_for(size_t n) {
    size_t b = (n + THREADS - 1) / THREADS;
    if (b < 1)
        b = 1;
    return (unsigned)(b > (1u << 20) ? (1u << 20) : b);
}

#define GRID_LOOP(i, n)                                                                         \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);                      \
         i += (size_t)blockDim.x * gridDim.x)

static inline lg_status launched(const char *what, lg_error *err) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return lg_error_set(err, LG_ERR_DEVICE, "launching %s: %s", what, cudaGetErrorString(e));
    return LG_OK;
}

#endif
