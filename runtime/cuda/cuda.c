/* runtime/cuda/cuda.c — the CUDA context, the device arena, batch staging,
 * and the cuBLAS(Lt) and cuDNN layers.
 *
 * Input: the sizes the compiler planned (arena bytes, batch bytes) and the
 * layer dimensions of the spec. Output: an lg_cuda context and one plan per
 * library-backed layer; everything is allocated here, at start-up, and the
 * per-step calls only enqueue work on the context's compute stream. The
 * project's own kernels are in kernels.cu (over the bodies of body.h); the
 * interface is lgen/cuda.h. Plain C compiled by $(CC) against the toolkit's
 * headers; only kernels.cu needs nvcc.
 *
 * Errors: every CUDA, cuBLAS and cuDNN status is checked and turned into an
 * lg_status with "file:line: <library> error: <name>" in err; nothing exits.
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

#define BLAS_TRY(call)                                                                         \
    do {                                                                                       \
        cublasStatus_t lg_s_ = (call);                                                         \
        if (lg_s_ != CUBLAS_STATUS_SUCCESS)                                                    \
            return lg_error_set(err, LG_ERR_DEVICE, "%s:%d: cuBLAS error: %s (%s)", __FILE__,   \
                                __LINE__, cublasGetStatusName(lg_s_), #call);                  \
    } while (0)

#define DNN_TRY(call)                                                                          \
    do {                                                                                       \
        cudnnStatus_t lg_s_ = (call);                                                          \
        if (lg_s_ != CUDNN_STATUS_SUCCESS)                                                     \
            return lg_error_set(err, LG_ERR_DEVICE, "%s:%d: cuDNN error: %s (%s)", __FILE__,    \
                                __LINE__, cudnnGetErrorString(lg_s_), #call);                  \
    } while (0)

static const float one = 1.0f, zero = 0.0f;

/* ---- device and context ----------------------------------------------------- */

lg_status lg_cuda_device_count(int *count, lg_error *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    *count = 0;
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the (non-sticky) error */
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "no CUDA device: %s%s", cudaGetErrorString(e),
                            e == cudaErrorInsufficientDriver
                                ? " (no NVIDIA driver is loaded, or it is older than this build's "
                                  "CUDA runtime)"
                                : "");
    }
    if (n <= 0)
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "no CUDA device: %s",
                            cudaGetErrorString(cudaErrorNoDevice));
    *count = n;
    return LG_OK;
}

/* Grows the shared workspace (start-up only: plans call it from *_init). */
static lg_status workspace_reserve(lg_cuda *c, size_t bytes, lg_error *err) {
    if (bytes <= c->ws_bytes)
        return LG_OK;
    if (c->ws)
        LG_CUDA_TRY(cudaFree(c->ws));
    c->ws = NULL;
    c->ws_bytes = 0;
    if (cudaMalloc(&c->ws, bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        return lg_error_set(err, LG_ERR_NOMEM,
                            "cannot allocate %.1f MiB of GPU memory for library workspace",
                            (double)bytes / (1024.0 * 1024.0));
    }
    c->ws_bytes = bytes;
    return LG_OK;
}

static lg_status context_setup(lg_cuda *c, const lg_cuda_config *cfg, lg_error *err) {
    int n;
    lg_status st = lg_cuda_device_count(&n, err);
    if (st != LG_OK)
        return st;
    if (cfg->device < 0 || cfg->device >= n)
        return lg_error_set(err, LG_ERR_ARG, "CUDA device %d does not exist (%d found)", cfg->device,
                            n);
    c->device = cfg->device;
    LG_CUDA_TRY(cudaSetDevice(c->device));
    struct cudaDeviceProp p;
    LG_CUDA_TRY(cudaGetDeviceProperties(&p, c->device));
    snprintf(c->desc, sizeof c->desc, "%.180s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / GIB);
    /* The library holds sm_80 and sm_90 code only (no PTX): sm_8x runs the
     * sm_80 code, sm_90 its own. */
    if (!(p.major == 8 || (p.major == 9 && p.minor == 0)))
        return lg_error_set(err, LG_ERR_UNSUPPORTED,
                            "GPU %s is sm_%d%d; this build has code for sm_80 and sm_90 only",
                            p.name, p.major, p.minor);
    LG_CUDA_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    LG_CUDA_TRY(cudaStreamCreateWithFlags(&c->copy_stream, cudaStreamNonBlocking));
    BLAS_TRY(cublasCreate(&c->blas));
    BLAS_TRY(cublasSetStream(c->blas, c->stream));
    BLAS_TRY(cublasLtCreate(&c->lt));
    DNN_TRY(cudnnCreate(&c->dnn));
    DNN_TRY(cudnnSetStream(c->dnn, c->stream));

    c->arena_bytes = cfg->arena_bytes;
    if (c->arena_bytes && cudaMalloc((void **)&c->arena, c->arena_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        size_t avail = 0, total = 0;
        (void)cudaMemGetInfo(&avail, &total);
        c->arena = NULL;
        return lg_error_set(err, LG_ERR_NOMEM,
                            "cannot allocate %.2f GiB of GPU memory for the arena (%.2f GiB free of "
                            "%.2f on %s); try a smaller --batch_size",
                            (double)c->arena_bytes / GIB, (double)avail / GIB, (double)total / GIB,
                            p.name);
    }

    LG_CUDA_TRY(cudaMalloc((void **)&c->reduce, LG_CUDA_REDUCE_SCRATCH * sizeof(float)));

    if (cfg->staging_slots < 0 || cfg->staging_slots > LG_CUDA_MAX_SLOTS)
        return lg_error_set(err, LG_ERR_ARG, "staging_slots %d is outside [0, %d]",
                            cfg->staging_slots, LG_CUDA_MAX_SLOTS);
    c->staging_bytes = cfg->staging_bytes;
    for (int i = 0; i < cfg->staging_slots; i++) {
        if (cudaHostAlloc(&c->staging[i], c->staging_bytes ? c->staging_bytes : 1,
                          cudaHostAllocDefault) != cudaSuccess) {
            (void)cudaGetLastError();
            c->staging[i] = NULL;
            return lg_error_set(err, LG_ERR_NOMEM, "cannot pin %.1f MiB of host memory for batches",
                                (double)c->staging_bytes / (1024.0 * 1024.0));
        }
        c->slots = i + 1;
        LG_CUDA_TRY(cudaEventCreateWithFlags(&c->copied[i], cudaEventDisableTiming));
        LG_CUDA_TRY(cudaEventCreateWithFlags(&c->released[i], cudaEventDisableTiming));
    }
    return LG_OK;
}

lg_status lg_cuda_init(lg_cuda **out, const lg_cuda_config *cfg, lg_error *err) {
    *out = NULL;
    lg_cuda *c = calloc(1, sizeof *c);
    if (!c)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory for the CUDA context");
    lg_status st = context_setup(c, cfg, err);
    if (st != LG_OK) {
        lg_cuda_free(c);
        return st;
    }
    *out = c;
    return LG_OK;
}

void lg_cuda_free(lg_cuda *c) {
    if (!c)
        return;
    if (c->stream)
        (void)cudaStreamSynchronize(c->stream);
    if (c->copy_stream)
        (void)cudaStreamSynchronize(c->copy_stream);
    for (int i = 0; i < c->slots; i++) {
        if (c->copied[i])
            (void)cudaEventDestroy(c->copied[i]);
        if (c->released[i])
            (void)cudaEventDestroy(c->released[i]);
        if (c->staging[i])
            (void)cudaFreeHost(c->staging[i]);
    }
    if (c->ws)
        (void)cudaFree(c->ws);
    if (c->arena)
        (void)cudaFree(c->arena);
    if (c->reduce)
        (void)cudaFree(c->reduce);
    if (c->bn_unit)
        (void)cudaFree(c->bn_unit);
    if (c->dnn)
        (void)cudnnDestroy(c->dnn);
    if (c->lt)
        (void)cublasLtDestroy(c->lt);
    if (c->blas)
        (void)cublasDestroy(c->blas);
    if (c->copy_stream)
        (void)cudaStreamDestroy(c->copy_stream);
    if (c->stream)
        (void)cudaStreamDestroy(c->stream);
    free(c);
}

const char *lg_cuda_describe(const lg_cuda *c) {
    return c->desc;
}

void *lg_cuda_arena(lg_cuda *c, size_t offset) {
    return offset < c->arena_bytes ? c->arena + offset : NULL;
}

size_t lg_cuda_arena_size(const lg_cuda *c) {
    return c->arena_bytes;
}

lg_status lg_cuda_sync(lg_cuda *c, lg_error *err) {
    LG_CUDA_TRY(cudaStreamSynchronize(c->copy_stream));
    LG_CUDA_TRY(cudaStreamSynchronize(c->stream));
    return LG_OK;
}

lg_status lg_cuda_upload(lg_cuda *c, void *dev, const void *host, size_t bytes, lg_error *err) {
    LG_CUDA_TRY(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, c->stream));
    LG_CUDA_TRY(cudaStreamSynchronize(c->stream));
    return LG_OK;
}

lg_status lg_cuda_download(lg_cuda *c, void *host, const void *dev, size_t bytes, lg_error *err) {
    LG_CUDA_TRY(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, c->stream));
    LG_CUDA_TRY(cudaStreamSynchronize(c->stream));
    return LG_OK;
}

lg_status lg_cuda_memset(lg_cuda *c, void *dev, int value, size_t bytes, lg_error *err) {
    LG_CUDA_TRY(cudaMemsetAsync(dev, value, bytes, c->stream));
    return LG_OK;
}

/* ---- staging ------------------------------------------------------------------ */

static lg_status check_slot(const lg_cuda *c, int slot, lg_error *err) {
    if (slot < 0 || slot >= c->slots)
        return lg_error_set(err, LG_ERR_ARG, "staging slot %d is outside [0, %d)", slot, c->slots);
    return LG_OK;
}

void *lg_cuda_staging(lg_cuda *c, int slot) {
    return slot >= 0 && slot < c->slots ? c->staging[slot] : NULL;
}

lg_status lg_cuda_staging_wait(lg_cuda *c, int slot, lg_error *err) {
    lg_status st = check_slot(c, slot, err);
    if (st != LG_OK)
        return st;
    LG_CUDA_TRY(cudaEventSynchronize(c->copied[slot]));
    return LG_OK;
}

lg_status lg_cuda_upload_async(lg_cuda *c, int slot, void *dev, size_t bytes, lg_error *err) {
    lg_status st = check_slot(c, slot, err);
    if (st != LG_OK)
        return st;
    if (bytes > c->staging_bytes)
        return lg_error_set(err, LG_ERR_ARG, "batch of %zu bytes is larger than the %zu-byte staging slot",
                            bytes, c->staging_bytes);
    LG_CUDA_TRY(cudaStreamWaitEvent(c->copy_stream, c->released[slot], 0));
    LG_CUDA_TRY(cudaMemcpyAsync(dev, c->staging[slot], bytes, cudaMemcpyHostToDevice, c->copy_stream));
    LG_CUDA_TRY(cudaEventRecord(c->copied[slot], c->copy_stream));
    return LG_OK;
}

lg_status lg_cuda_upload_wait(lg_cuda *c, int slot, lg_error *err) {
    lg_status st = check_slot(c, slot, err);
    if (st != LG_OK)
        return st;
    LG_CUDA_TRY(cudaStreamWaitEvent(c->stream, c->copied[slot], 0));
    return LG_OK;
}

lg_status lg_cuda_upload_release(lg_cuda *c, int slot, lg_error *err) {
    lg_status st = check_slot(c, slot, err);
    if (st != LG_OK)
        return st;
    LG_CUDA_TRY(cudaEventRecord(c->released[slot], c->stream));
    return LG_OK;
}

/* ---- linear: cuBLASLt forward with a bias epilogue, cuBLAS backward ------------ */

static cudaDataType_t blas_type(lg_cuda_dtype dt) {
    return dt == LG_CUDA_F16 ? CUDA_R_16F : dt == LG_CUDA_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static cudnnDataType_t dnn_type(lg_cuda_dtype dt) {
    return dt == LG_CUDA_F16 ? CUDNN_DATA_HALF : dt == LG_CUDA_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

#define LT_WORKSPACE (32u << 20)
#define LT_ALIGN 16u

struct lg_cuda_linear_plan {
    lg_cuda_linear d;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, y;
    cublasLtMatmulAlgo_t algo;
    size_t ws;
};

void lg_cuda_linear_free(lg_cuda_linear_plan *p) {
    if (!p)
        return;
    if (p->op)
        (void)cublasLtMatmulDescDestroy(p->op);
    if (p->a)
        (void)cublasLtMatrixLayoutDestroy(p->a);
    if (p->b)
        (void)cublasLtMatrixLayoutDestroy(p->b);
    if (p->y)
        (void)cublasLtMatrixLayoutDestroy(p->y);
    free(p);
}

/* Row-major y[N, out] = x[N, in] W[out, in]^T is, column-major,
 * y^T[out, N] = op_T(W as [in, out]) x^T[in, N]: m = out, n = N, k = in. */
static lg_status linear_setup(lg_cuda *c, lg_cuda_linear_plan *p, lg_error *err) {
    const lg_cuda_linear *d = &p->d;
    cudaDataType_t t = blas_type(d->dtype);
    BLAS_TRY(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    BLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    BLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    cublasLtEpilogue_t epi = d->bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    BLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    BLAS_TRY(cublasLtMatrixLayoutCreate(&p->a, t, (uint64_t)d->in, (uint64_t)d->out, d->in));
    BLAS_TRY(cublasLtMatrixLayoutCreate(&p->b, t, (uint64_t)d->in, (uint64_t)d->N, d->in));
    BLAS_TRY(cublasLtMatrixLayoutCreate(&p->y, t, (uint64_t)d->out, (uint64_t)d->N, d->out));

    cublasLtMatmulPreference_t pref;
    BLAS_TRY(cublasLtMatmulPreferenceCreate(&pref));
    size_t cap = LT_WORKSPACE;
    cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &cap, sizeof cap);
    /* algorithms that need no more than 16-byte aligned pointers; forward
     * checks the pointers and takes the plain GEMM path for others */
    uint32_t align = LT_ALIGN;
    const cublasLtMatmulPreferenceAttributes_t aligns[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0] && s == CUBLAS_STATUS_SUCCESS; i++)
        s = cublasLtMatmulPreferenceSetAttribute(pref, aligns[i], &align, sizeof align);
    cublasLtMatmulHeuristicResult_t r;
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(c->lt, p->op, p->a, p->b, p->y, p->y, pref, 1, &r, &found);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    BLAS_TRY(s);
    if (found < 1)
        return lg_error_set(err, LG_ERR_UNSUPPORTED,
                            "cuBLASLt has no algorithm for linear %d -> %d (batch %d)", d->in, d->out,
                            d->N);
    p->algo = r.algo;
    p->ws = r.workspaceSize;
    return workspace_reserve(c, p->ws, err);
}

lg_status lg_cuda_linear_init(lg_cuda *c, lg_cuda_linear_plan **out, const lg_cuda_linear *d,
                              lg_error *err) {
    *out = NULL;
    if (d->N < 1 || d->in < 1 || d->out < 1)
        return lg_error_set(err, LG_ERR_ARG, "linear dimensions must be positive (N %d, in %d, out %d)",
                            d->N, d->in, d->out);
    lg_cuda_linear_plan *p = calloc(1, sizeof *p);
    if (!p)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory for a linear plan");
    p->d = *d;
    lg_status st = linear_setup(c, p, err);
    if (st != LG_OK) {
        lg_cuda_linear_free(p);
        return st;
    }
    *out = p;
    return LG_OK;
}

static int aligned16(const void *a, const void *b, const void *c, const void *d) {
    return (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d) & (LT_ALIGN - 1)) == 0;
}

lg_status lg_cuda_linear_forward(lg_cuda *c, const lg_cuda_linear_plan *p, const void *x,
                                 const void *w, const void *b, void *y, lg_error *err) {
    const lg_cuda_linear *d = &p->d;
    if (!aligned16(x, w, y, d->bias ? b : NULL)) {
        cudaDataType_t t = blas_type(d->dtype);
        BLAS_TRY(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, d->out, d->N, d->in, &one, w, t,
                              d->in, x, t, d->in, &zero, y, t, d->out, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
        return d->bias ? lg_cuda_bias_add(c, d->dtype, y, b, (size_t)d->N, (size_t)d->out, err)
                       : LG_OK;
    }
    if (p->d.bias)
        BLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b,
                                                sizeof b));
    BLAS_TRY(cublasLtMatmul(c->lt, p->op, &one, w, p->a, x, p->b, &zero, y, p->y, y, p->y, &p->algo,
                            c->ws, p->ws, c->stream));
    return LG_OK;
}

lg_status lg_cuda_linear_backward(lg_cuda *c, const lg_cuda_linear_plan *p, const void *x,
                                  const void *w, const void *dy, void *dx, void *dw, void *db,
                                  int accumulate, lg_error *err) {
    const lg_cuda_linear *d = &p->d;
    cudaDataType_t t = blas_type(d->dtype);
    const float beta = accumulate ? 1.0f : 0.0f;
    /* dx^T[in, N] = W^T[in, out] dy^T[out, N] */
    if (dx)
        BLAS_TRY(cublasGemmEx(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, d->in, d->N, d->out, &one, w, t,
                              d->in, dy, t, d->out, &zero, dx, t, d->in, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    /* dW^T[in, out] = x^T[in, N] dy[N, out] */
    if (dw)
        BLAS_TRY(cublasGemmEx(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, d->in, d->out, d->N, &one, x, t,
                              d->in, dy, t, d->out, &beta, dw, t, d->in, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    if (db && d->bias)
        return lg_cuda_bias_grad(c, d->dtype, dy, (size_t)d->N, (size_t)d->out, db, accumulate, err);
    return LG_OK;
}

/* ---- convolution ------------------------------------------------------------------ */

struct lg_cuda_conv_plan {
    lg_cuda_conv d;
    int P, Q;
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws;
};

void lg_cuda_conv_free(lg_cuda_conv_plan *p) {
    if (!p)
        return;
    if (p->x)
        (void)cudnnDestroyTensorDescriptor(p->x);
    if (p->y)
        (void)cudnnDestroyTensorDescriptor(p->y);
    if (p->b)
        (void)cudnnDestroyTensorDescriptor(p->b);
    if (p->w)
        (void)cudnnDestroyFilterDescriptor(p->w);
    if (p->conv)
        (void)cudnnDestroyConvolutionDescriptor(p->conv);
    free(p);
}

static size_t max_size(size_t a, size_t b) {
    return a > b ? a : b;
}

static lg_status conv_setup(lg_cuda *c, lg_cuda_conv_plan *p, lg_error *err) {
    const lg_cuda_conv *d = &p->d;
    cudnnDataType_t t = dnn_type(d->dtype);
    DNN_TRY(cudnnCreateTensorDescriptor(&p->x));
    DNN_TRY(cudnnCreateTensorDescriptor(&p->y));
    DNN_TRY(cudnnCreateTensorDescriptor(&p->b));
    DNN_TRY(cudnnCreateFilterDescriptor(&p->w));
    DNN_TRY(cudnnCreateConvolutionDescriptor(&p->conv));
    DNN_TRY(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, t, d->N, d->C, d->H, d->W));
    DNN_TRY(cudnnSetFilter4dDescriptor(p->w, t, CUDNN_TENSOR_NCHW, d->K, d->C / d->groups, d->R, d->S));
    DNN_TRY(cudnnSetConvolution2dDescriptor(p->conv, d->pad_h, d->pad_w, d->stride_h, d->stride_w,
                                            d->dil_h, d->dil_w, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT));
    DNN_TRY(cudnnSetConvolutionGroupCount(p->conv, d->groups));
    /* PyTorch's defaults: TF32 allowed for fp32 convolutions, tensor cores
     * for half types. */
    DNN_TRY(cudnnSetConvolutionMathType(p->conv, d->dtype == LG_CUDA_F32 ? CUDNN_DEFAULT_MATH
                                                                        : CUDNN_TENSOR_OP_MATH));
    int n, k;
    DNN_TRY(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &k, &p->P, &p->Q));
    DNN_TRY(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, t, n, k, p->P, p->Q));
    DNN_TRY(cudnnSetTensor4dDescriptor(p->b, CUDNN_TENSOR_NCHW, t, 1, d->K, 1, 1));

    /* Algorithms by cuDNN's heuristics (no trial runs), the first that works. */
    int got = 0;
    cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    DNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, p->x, p->w, p->conv, p->y,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, fp));
    int i = 0;
    while (i < got && fp[i].status != CUDNN_STATUS_SUCCESS)
        i++;
    if (i == got)
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "cuDNN has no forward algorithm for this convolution");
    p->fwd = fp[i].algo;
    size_t ws = 0, need;
    DNN_TRY(cudnnGetConvolutionForwardWorkspaceSize(c->dnn, p->x, p->w, p->conv, p->y, p->fwd, &need));
    ws = max_size(ws, need);

    cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    DNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(c->dnn, p->w, p->y, p->conv, p->x,
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, dp));
    for (i = 0; i < got && dp[i].status != CUDNN_STATUS_SUCCESS; i++)
        ;
    if (i == got)
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "cuDNN has no backward-data algorithm for this convolution");
    p->bwd_data = dp[i].algo;
    DNN_TRY(cudnnGetConvolutionBackwardDataWorkspaceSize(c->dnn, p->w, p->y, p->conv, p->x,
                                                         p->bwd_data, &need));
    ws = max_size(ws, need);

    cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    DNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->dnn, p->x, p->y, p->conv, p->w,
                                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                          &got, wp));
    for (i = 0; i < got && wp[i].status != CUDNN_STATUS_SUCCESS; i++)
        ;
    if (i == got)
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "cuDNN has no backward-filter algorithm for this convolution");
    p->bwd_filter = wp[i].algo;
    DNN_TRY(cudnnGetConvolutionBackwardFilterWorkspaceSize(c->dnn, p->x, p->y, p->conv, p->w,
                                                           p->bwd_filter, &need));
    p->ws = max_size(ws, need);
    return workspace_reserve(c, p->ws, err);
}

lg_status lg_cuda_conv_init(lg_cuda *c, lg_cuda_conv_plan **out, const lg_cuda_conv *d,
                            lg_error *err) {
    *out = NULL;
    if (d->groups < 1 || d->C % d->groups || d->K % d->groups)
        return lg_error_set(err, LG_ERR_ARG, "conv2d: %d input and %d output channels are not divisible by groups %d",
                            d->C, d->K, d->groups);
    lg_cuda_conv_plan *p = calloc(1, sizeof *p);
    if (!p)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory for a convolution plan");
    p->d = *d;
    lg_status st = conv_setup(c, p, err);
    if (st != LG_OK) {
        lg_cuda_conv_free(p);
        return st;
    }
    *out = p;
    return LG_OK;
}

void lg_cuda_conv_out(const lg_cuda_conv_plan *p, int *P, int *Q) {
    *P = p->P;
    *Q = p->Q;
}

lg_status lg_cuda_conv_forward(lg_cuda *c, const lg_cuda_conv_plan *p, const void *x,
                               const void *w, const void *b, void *y, lg_error *err) {
    DNN_TRY(cudnnConvolutionForward(c->dnn, &one, p->x, x, p->w, w, p->conv, p->fwd, c->ws, p->ws,
                                    &zero, p->y, y));
    if (p->d.bias && b)
        DNN_TRY(cudnnAddTensor(c->dnn, &one, p->b, b, &one, p->y, y));
    return LG_OK;
}

lg_status lg_cuda_conv_backward(lg_cuda *c, const lg_cuda_conv_plan *p, const void *x,
                                const void *w, const void *dy, void *dx, void *dw, void *db,
                                int accumulate, lg_error *err) {
    const float beta = accumulate ? 1.0f : 0.0f;
    if (dx)
        DNN_TRY(cudnnConvolutionBackwardData(c->dnn, &one, p->w, w, p->y, dy, p->conv, p->bwd_data,
                                             c->ws, p->ws, &zero, p->x, dx));
    if (dw)
        DNN_TRY(cudnnConvolutionBackwardFilter(c->dnn, &one, p->x, x, p->y, dy, p->conv,
                                               p->bwd_filter, c->ws, p->ws, &beta, p->w, dw));
    if (db && p->d.bias && p->d.dtype == LG_CUDA_BF16) /* cuDNN: CUDNN_STATUS_NOT_SUPPORTED */
        return lg_cuda_conv_bias_grad(c, p->d.dtype, dy, (size_t)p->d.N, (size_t)p->d.K,
                                      (size_t)p->P * (size_t)p->Q, db, accumulate, err);
    if (db && p->d.bias)
        DNN_TRY(cudnnConvolutionBackwardBias(c->dnn, &one, p->y, dy, &beta, p->b, db));
    return LG_OK;
}

/* ---- pooling ------------------------------------------------------------------------- */

struct lg_cuda_pool_plan {
    lg_cuda_pool d;
    int P, Q;
    cudnnTensorDescriptor_t x, y;
    cudnnPoolingDescriptor_t pool;
    /* bf16 average pooling: the own kernel with the same windows (cuDNN's
     * legacy pooling is not documented for bf16) */
    int own;
    lg_cuda_pool2d own_d;
};

void lg_cuda_pool_free(lg_cuda_pool_plan *p) {
    if (!p)
        return;
    if (p->x)
        (void)cudnnDestroyTensorDescriptor(p->x);
    if (p->y)
        (void)cudnnDestroyTensorDescriptor(p->y);
    if (p->pool)
        (void)cudnnDestroyPoolingDescriptor(p->pool);
    free(p);
}

static lg_status pool_setup(lg_cuda_pool_plan *p, lg_error *err) {
    const lg_cuda_pool *d = &p->d;
    cudnnDataType_t t = dnn_type(d->dtype);
    cudnnPoolingMode_t mode = d->max ? CUDNN_POOLING_MAX_DETERMINISTIC
                              : d->count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                                     : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    DNN_TRY(cudnnCreateTensorDescriptor(&p->x));
    DNN_TRY(cudnnCreateTensorDescriptor(&p->y));
    DNN_TRY(cudnnCreatePoolingDescriptor(&p->pool));
    DNN_TRY(cudnnSetPooling2dDescriptor(p->pool, mode, CUDNN_PROPAGATE_NAN, d->kh, d->kw, d->ph, d->pw,
                                        d->sh, d->sw));
    DNN_TRY(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, t, d->N, d->C, d->H, d->W));
    int n, ch;
    DNN_TRY(cudnnGetPooling2dForwardOutputDim(p->pool, p->x, &n, &ch, &p->P, &p->Q));
    DNN_TRY(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, t, n, ch, p->P, p->Q));
    return LG_OK;
}

lg_status lg_cuda_pool_init(lg_cuda *c, lg_cuda_pool_plan **out, const lg_cuda_pool *d,
                            lg_error *err) {
    (void)c;
    *out = NULL;
    if (2 * d->ph > d->kh || 2 * d->pw > d->kw)
        return lg_error_set(err, LG_ERR_ARG, "pooling padding (%d, %d) is more than half the kernel (%d, %d)",
                            d->ph, d->pw, d->kh, d->kw);
    lg_cuda_pool_plan *p = calloc(1, sizeof *p);
    if (!p)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory for a pooling plan");
    p->d = *d;
    if (!d->max && d->dtype == LG_CUDA_BF16) {
        p->own = 1;
        p->own_d = (lg_cuda_pool2d){.H = d->H, .W = d->W, .kh = d->kh, .kw = d->kw, .sh = d->sh, .sw = d->sw,
                                    .ph = d->ph, .pw = d->pw, .count_include_pad = d->count_include_pad};
        lg_status st = lg_cuda_pool2d_init(&p->own_d, err);
        if (st != LG_OK) {
            lg_cuda_pool_free(p);
            return st;
        }
        p->P = p->own_d.OH, p->Q = p->own_d.OW;
        *out = p;
        return LG_OK;
    }
    lg_status st = pool_setup(p, err);
    if (st != LG_OK) {
        lg_cuda_pool_free(p);
        return st;
    }
    *out = p;
    return LG_OK;
}

void lg_cuda_pool_out(const lg_cuda_pool_plan *p, int *P, int *Q) {
    *P = p->P;
    *Q = p->Q;
}

lg_status lg_cuda_pool_forward(lg_cuda *c, const lg_cuda_pool_plan *p, const void *x, void *y,
                               lg_error *err) {
    if (p->own)
        return lg_cuda_avg_pool2d_forward(c, &p->own_d, p->d.dtype, (size_t)p->d.N * (size_t)p->d.C, x, y, err);
    DNN_TRY(cudnnPoolingForward(c->dnn, p->pool, &one, p->x, x, &zero, p->y, y));
    return LG_OK;
}

lg_status lg_cuda_pool_backward(lg_cuda *c, const lg_cuda_pool_plan *p, const void *x,
                                const void *y, const void *dy, void *dx, lg_error *err) {
    if (p->own)
        return lg_cuda_avg_pool2d_backward(c, &p->own_d, p->d.dtype, (size_t)p->d.N * (size_t)p->d.C, dy, dx, err);
    DNN_TRY(cudnnPoolingBackward(c->dnn, p->pool, &one, p->y, y, p->y, dy, p->x, x, &zero, p->x, dx));
    return LG_OK;
}

/* ---- batch norm ------------------------------------------------------------------------ */

struct lg_cuda_bn_plan {
    lg_cuda_bn d;
    cudnnTensorDescriptor_t x, stats;
};

void lg_cuda_bn_free(lg_cuda_bn_plan *p) {
    if (!p)
        return;
    if (p->x)
        (void)cudnnDestroyTensorDescriptor(p->x);
    if (p->stats)
        (void)cudnnDestroyTensorDescriptor(p->stats);
    free(p);
}

static lg_status bn_setup(lg_cuda_bn_plan *p, lg_error *err) {
    const lg_cuda_bn *d = &p->d;
    DNN_TRY(cudnnCreateTensorDescriptor(&p->x));
    DNN_TRY(cudnnCreateTensorDescriptor(&p->stats));
    DNN_TRY(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, dnn_type(d->dtype), d->N, d->C, d->H,
                                       d->W));
    DNN_TRY(cudnnDeriveBNTensorDescriptor(p->stats, p->x, CUDNN_BATCHNORM_SPATIAL));
    return LG_OK;
}

/* The ones, zeros and gradient scratch batch norm without affine parameters
 * (weight NULL) hands cuDNN, for C channels; grown by the plans (start-up). */
static lg_status bn_unit_reserve(lg_cuda *c, int C, lg_error *err) {
    if (C <= c->bn_unit_C)
        return LG_OK;
    if (c->bn_unit)
        LG_CUDA_TRY(cudaFree(c->bn_unit));
    c->bn_unit = NULL, c->bn_unit_C = 0;
    LG_CUDA_TRY(cudaMalloc((void **)&c->bn_unit, 4 * (size_t)C * sizeof(float)));
    float *ones = malloc((size_t)C * sizeof(float));
    if (!ones)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory for batch norm's unit scale");
    for (int i = 0; i < C; i++)
        ones[i] = 1.0f;
    cudaError_t e = cudaMemcpy(c->bn_unit, ones, (size_t)C * sizeof(float), cudaMemcpyHostToDevice);
    free(ones);
    LG_CUDA_TRY(e);
    LG_CUDA_TRY(cudaMemset(c->bn_unit + C, 0, 3 * (size_t)C * sizeof(float)));
    c->bn_unit_C = C;
    return LG_OK;
}

lg_status lg_cuda_bn_init(lg_cuda *c, lg_cuda_bn_plan **out, const lg_cuda_bn *d, lg_error *err) {
    *out = NULL;
    lg_status st = bn_unit_reserve(c, d->C, err);
    if (st != LG_OK)
        return st;
    if (d->eps < CUDNN_BN_MIN_EPSILON)
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "batch_norm eps %g is below cuDNN's minimum %g",
                            d->eps, (double)CUDNN_BN_MIN_EPSILON);
    lg_cuda_bn_plan *p = calloc(1, sizeof *p);
    if (!p)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory for a batch norm plan");
    p->d = *d;
    st = bn_setup(p, err);
    if (st != LG_OK) {
        lg_cuda_bn_free(p);
        return st;
    }
    *out = p;
    return LG_OK;
}

void lg_cuda_bn_set_momentum(lg_cuda_bn_plan *p, double momentum) {
    if (p)
        p->d.momentum = momentum;
}

lg_status lg_cuda_bn_forward_train(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, void *y,
                                   const float *weight, const float *bias, float *running_mean,
                                   float *running_var, float *save_mean, float *save_invstd,
                                   lg_error *err) {
    if (!weight) /* affine: false */
        weight = c->bn_unit, bias = c->bn_unit + c->bn_unit_C;
    DNN_TRY(cudnnBatchNormalizationForwardTraining(
        c->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, p->x, x, p->x, y, p->stats, weight, bias,
        p->d.momentum, running_mean, running_var, p->d.eps, save_mean, save_invstd));
    return LG_OK;
}

lg_status lg_cuda_bn_forward_eval(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, void *y,
                                  const float *weight, const float *bias,
                                  const float *running_mean, const float *running_var,
                                  lg_error *err) {
    if (!weight) /* affine: false */
        weight = c->bn_unit, bias = c->bn_unit + c->bn_unit_C;
    DNN_TRY(cudnnBatchNormalizationForwardInference(c->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                    p->x, x, p->x, y, p->stats, weight, bias,
                                                    running_mean, running_var, p->d.eps));
    return LG_OK;
}

lg_status lg_cuda_bn_backward(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, const void *dy,
                              void *dx, const float *weight, float *dweight, float *dbias,
                              const float *save_mean, const float *save_invstd, int accumulate,
                              lg_error *err) {
    float beta = accumulate ? 1.0f : 0.0f;
    if (!weight) { /* affine: false: a unit scale, the parameter gradients into scratch */
        weight = c->bn_unit;
        dweight = c->bn_unit + 2 * c->bn_unit_C, dbias = c->bn_unit + 3 * c->bn_unit_C;
        beta = 0.0f;
    }
    DNN_TRY(cudnnBatchNormalizationBackward(c->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one,
                                            &beta, p->x, x, p->x, dy, p->x, dx, p->stats, weight,
                                            dweight, dbias, p->d.eps, save_mean, save_invstd));
    return LG_OK;
}
