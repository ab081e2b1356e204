/* runtime/cuda/optim.cu — launchers of the device optimizer
 * (lgen/cuda_optim.h): grid-stride loops around the bodies of optim_body.h,
 * enqueued on the context's compute stream; nothing here synchronises,
 * allocates or reads back. Compiled by nvcc with -fmad=false (see
 * runtime/cuda/module.mk): the update's arithmetic then rounds exactly as
 * runtime/optim/optim.c does on the CPU.
 */
#include "launch.cuh"
#include "optim_body.h"

/* the hyperparameters by value: a kernel argument, no device copy needed */
static __global__ void optim_update_kernel(lg_cuda_optim_hyper h, float *p, const float *g, float *s0,
                                           float *s1, float *s2, size_t n) {
    GRID_LOOP(i, n) lg_cuo_update(i, &h, p, g, s0, s1, s2);
}

static __global__ void grad_accumulate_kernel(int dt, const void *src, float *dst, size_t n) {
    GRID_LOOP(i, n) lg_cuo_grad_accumulate(i, dt, src, dst);
}

extern "C" lg_status lg_cuda_optim_update(lg_cuda *c, const lg_cuda_optim_hyper *h, float *param,
                                          const float *grad, float *const slot[3], size_t n,
                                          lg_error *err) {
    if (h->kind < LG_CUO_SGD || h->kind > LG_CUO_RMSPROP)
        return lg_error_set(err, LG_ERR_ARG, "optimizer update: unknown kind %d", h->kind);
    int need = h->kind == LG_CUO_SGD ? h->use_buf
             : h->kind == LG_CUO_RMSPROP ? 1 + (h->buf_slot > 0) + (h->avg_slot > 0)
                                         : 2 + h->amsgrad;
    for (int s = 0; s < need; s++)
        if (!slot || !slot[s])
            return lg_error_set(err, LG_ERR_ARG, "optimizer update: state slot %d is missing", s);
    if (n == 0)
        return LG_OK;
    optim_update_kernel<<<grid_for(n), THREADS, 0, c->stream>>>(*h, param, grad, slot ? slot[0] : NULL,
                                                                slot ? slot[1] : NULL,
                                                                slot ? slot[2] : NULL, n);
    return launched("optimizer update", err);
}

extern "C" lg_status lg_cuda_grad_accumulate(lg_cuda *c, lg_cuda_dtype dt, const void *src, float *dst,
                                             size_t n, lg_error *err) {
    if (n == 0)
        return LG_OK;
    grad_accumulate_kernel<<<grid_for(n), THREADS, 0, c->stream>>>((int)dt, src, dst, n);
    return launched("gradient accumulation", err);
}
