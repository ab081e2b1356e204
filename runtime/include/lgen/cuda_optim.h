/* lgen/cuda_optim.h — the optimizer on the device: fused one-pass updates of
 * parameters kept in the device arena, with their gradients and optimizer
 * state (momentum buffers, Adam's moments, RMSprop's averages) beside them.
 *
 * The host keeps what is small: the lg_optim (lgen/optim.h) with the
 * configuration, the groups' lr and weight decay (the scheduler writes them)
 * and the step count. Per optimizer step, for each parameter group,
 * lg_cuda_optim_hyper_for turns that into plain floats (exactly the ones
 * runtime/optim/optim.c computes in double and rounds), and
 * lg_cuda_optim_update runs one kernel over the group's elements that reads
 * param, grad and state once and writes them once, in torch.optim's
 * arithmetic order (single-tensor path). optim.cu is compiled without FMA
 * contraction, so the device's update equals the CPU optimizer's bit for
 * bit on the same inputs.
 *
 * State slots are the host's, in the host's order (lg_optim_slot_name):
 * slot[s] on the device is the device layout of o->slot[s].
 *
 * lg_cuda_optim_hyper_for is plain C in liblgen.a (tests run it on any
 * machine); the launchers are in liblgen_cuda.a (runtime/cuda/optim.cu), the
 * per-element bodies in runtime/cuda/optim_body.h.
 */
#ifndef LGEN_CUDA_OPTIM_H
#define LGEN_CUDA_OPTIM_H

#include "lgen/cuda.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lg_optim;

/* One group's update for one step, as floats. kind is lg_optim_kind. */
typedef struct lg_cuda_optim_hyper {
    int kind;
    float sign;                  /* -1 with maximize */
    float lr, wd;                /* the group's */
    int use_wd;                  /* wd != 0 (SGD, Adam, RMSprop: wd * param added to the gradient) */
    /* SGD */
    float mom, damp;             /* momentum, 1 - dampening */
    int use_buf, first, nesterov;/* momentum buffer (slot 0); first step: buffer = gradient */
    /* Adam, AdamW */
    int decoupled, lerp_lo, amsgrad;
    float decay;                 /* AdamW: 1 - lr * wd */
    float w1, b2, w2;            /* 1 - beta1, beta2, 1 - beta2 */
    float step_size, bc2s, eps;  /* lr / (1 - beta1^t), sqrt(1 - beta2^t); eps (RMSprop too) */
    /* RMSprop */
    float alpha, wa;             /* alpha, 1 - alpha */
    int buf_slot, avg_slot;      /* momentum_buffer, grad_avg slots (-1: none) */
} lg_cuda_optim_hyper;

/* The hyperparameters of group g for the step o->step (call after counting
 * the step, as lg_optim_step does before its pass). */
void lg_cuda_optim_hyper_for(const struct lg_optim *o, int g, lg_cuda_optim_hyper *h);

/* One fused update of n elements: param, grad and the state slots (device;
 * slot[s] for s < the optimizer's slot count, NULL otherwise). */
lg_status lg_cuda_optim_update(lg_cuda *c, const lg_cuda_optim_hyper *h, float *param,
                               const float *grad, float *const slot[3], size_t n, lg_error *err);

/* dst[i] += src[i] (src in dt: a mixed-precision step's f16/bf16 gradient
 * added into the f32 gradient, which accumulates over micro-batches). */
lg_status lg_cuda_grad_accumulate(lg_cuda *c, lg_cuda_dtype dt, const void *src, float *dst,
                                  size_t n, lg_error *err);

/* ---- a generated trainer whose optimizer runs on the device ---------------
 * NAME_cuda.c defines lg_cuda_resident_steps beside lg_cuda_trainer_steps;
 * liblgen.a declares it weak. When it is there and the run is on the GPU,
 * the device holds the authoritative parameters, gradients (accumulated
 * over micro-batches there) and optimizer state, and the trainer runtime
 * (runtime/trainer/loop.c, state.c):
 *   - calls to_device after it set the host's copy (initial weights,
 *     --init_from, a checkpoint load or resume; o is NULL where there is no
 *     optimizer: validate, test, predict);
 *   - calls optimizer_step instead of scaling, clipping and stepping the
 *     host's gradients: grad_scale is 1/accumulate_grad_batches, clip one of
 *     LG_CUDA_CLIP_*, with clip_val Lightning's gradient_clip_val; skip is
 *     set when a step asked to skip (lg_step_io.skip_step). It counts
 *     o->step (as lg_optim_step does) unless the step is skipped, which it
 *     reports in *skipped (16-mixed: inf/NaN gradients after unscaling), and
 *     leaves the gradients zeroed;
 *   - calls to_host before it reads the parameters or the optimizer state
 *     (a checkpoint save, the end of fit), only when a train step ran since;
 *   - saves GradScaler's state (scaler_get; *active is 0 when the run does
 *     not scale: 32-true, bf16-mixed) under Lightning's checkpoint key
 *     "MixedPrecision", and gives it back on resume (scaler_set). */
enum { LG_CUDA_CLIP_NONE = 0, LG_CUDA_CLIP_NORM = 1, LG_CUDA_CLIP_VALUE = 2 };

typedef struct lg_cuda_resident {
    lg_status (*to_device)(const float *params, const struct lg_optim *o, lg_error *err);
    lg_status (*to_host)(float *params, struct lg_optim *o, lg_error *err);
    lg_status (*optimizer_step)(struct lg_optim *o, float grad_scale, int clip, double clip_val,
                                int skip, int *skipped, lg_error *err);
    lg_status (*scaler_get)(lg_cuda_scaler *s, int *active, lg_error *err);
    lg_status (*scaler_set)(const lg_cuda_scaler *s, lg_error *err);
} lg_cuda_resident;
extern const lg_cuda_resident lg_cuda_resident_steps __attribute__((weak));

#ifdef __cplusplus
}
#endif

#endif
