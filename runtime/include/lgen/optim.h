/* lgen/optim.h — optimizers, learning-rate schedulers, gradient clipping.
 *
 * Parameters and gradients are one float block each (the plan fixes every
 * tensor's offset); an optimizer is told the trainable tensors as (offset,
 * count, group) and updates them in one fused pass per step. Semantics are
 * PyTorch's (torch.optim, single-tensor path): SGD with momentum, dampening,
 * nesterov and weight_decay; Adam and AdamW (with amsgrad); RMSprop (alpha,
 * momentum, centered). Parameter groups carry their own lr and weight decay.
 *
 * State is plain data so the checkpoint writer stores it by name: per-element
 * slots (float arrays as long as the parameter block, named like PyTorch's
 * state keys: "momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
 * "square_avg", "grad_avg") plus the step count; the slice of a slot at a
 * tensor's offset is that tensor's state[i][name] in a PyTorch state_dict.
 * Group lrs are in o->groups[g].lr (schedulers write them).
 *
 * Schedulers follow torch.optim.lr_scheduler and are stepped by the trainer
 * (per epoch or per step, Lightning's `interval`). A linear warmup composes
 * with any of them, as ChainedScheduler([LinearLR, X]) would.
 *
 * Clipping follows Lightning: gradient_clip_algorithm "norm" is
 * torch.nn.utils.clip_grad_norm_ (2-norm or inf over all gradients, scale
 * by max_norm / (norm + 1e-6) when that is below 1), "value" is
 * clip_grad_value_ (clamp each element to [-v, v]).
 */
#ifndef LGEN_OPTIM_H
#define LGEN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "lgen/parallel.h"
#include "lgen/status.h"

typedef enum { LG_OPTIM_SGD, LG_OPTIM_ADAM, LG_OPTIM_ADAMW, LG_OPTIM_RMSPROP } lg_optim_kind;

/* Hyperparameters; fields not used by the kind are ignored. Defaults (from
 * lg_optim_config_default) are PyTorch's: momentum 0, dampening 0, betas
 * (0.9, 0.999), eps 1e-8, alpha 0.99, weight_decay 0 (AdamW 1e-2). */
typedef struct {
    lg_optim_kind kind;
    double lr, weight_decay;
    double momentum, dampening; /* SGD, RMSprop (momentum) */
    int nesterov;               /* SGD */
    double beta1, beta2, eps;   /* Adam, AdamW; eps also RMSprop */
    int amsgrad;                /* Adam, AdamW */
    double alpha;               /* RMSprop smoothing */
    int centered;               /* RMSprop */
    int maximize;               /* all: ascend instead of descend */
} lg_optim_config;

void lg_optim_config_default(lg_optim_config *cfg, lg_optim_kind kind);

typedef struct {
    double lr;           /* current lr; schedulers write it */
    double initial_lr;   /* the base lr schedulers scale (PyTorch's initial_lr) */
    double weight_decay;
} lg_optim_group;

typedef struct {
    size_t offset, count; /* floats in the parameter (and gradient) block */
    int group;
} lg_optim_param;

#define LG_OPTIM_MAX_SLOTS 3

typedef struct lg_optim {
    lg_optim_config cfg;
    int ngroups;
    lg_optim_group *groups;
    int nparams;
    lg_optim_param *params;
    size_t total;               /* floats in the parameter block */
    int nslots;                 /* per-element state arrays for this kind */
    float *slot[LG_OPTIM_MAX_SLOTS]; /* each [total]; one allocation */
    int64_t step;               /* optimizer steps taken (Adam's "step") */
} lg_optim;

/* groups may be NULL (one group with cfg's lr and weight_decay); a group's
 * initial_lr 0 means "its lr". Allocates the state once (zeroed). */
lg_status lg_optim_init(lg_optim *o, const lg_optim_config *cfg, int ngroups,
                        const lg_optim_group *groups, int nparams, const lg_optim_param *params,
                        size_t total, lg_error *err);
void lg_optim_free(lg_optim *o);

/* One update of every parameter from its gradient; one pass over the memory.
 * Fails (LG_ERR_NUMERIC) on nothing: non-finite gradients propagate as in
 * PyTorch. */
lg_status lg_optim_step(lg_optim *o, lg_ctx *ctx, float *params, const float *grads);

/* State by name, for checkpoints. */
const char *lg_optim_slot_name(const lg_optim *o, int slot);
/* Sets every group's lr (and initial_lr when reset_initial). */
void lg_optim_set_lr(lg_optim *o, double lr, int reset_initial);

/* ---- schedulers ----------------------------------------------------------- */

typedef enum {
    LG_SCHED_CONSTANT,     /* lr stays (only warmup, if any) */
    LG_SCHED_STEP,         /* StepLR(step_size, gamma) */
    LG_SCHED_MULTISTEP,    /* MultiStepLR(milestones, gamma) */
    LG_SCHED_EXPONENTIAL,  /* ExponentialLR(gamma) */
    LG_SCHED_COSINE,       /* CosineAnnealingLR(t_max, eta_min) */
    LG_SCHED_LINEAR,       /* LinearLR(start_factor, end_factor, total_iters) */
    LG_SCHED_ONE_CYCLE,    /* OneCycleLR(max_lr, total_steps, pct_start, ...) */
    LG_SCHED_PLATEAU,      /* ReduceLROnPlateau(mode, factor, patience, ...) */
} lg_sched_kind;

#define LG_SCHED_MAX_MILESTONES 32

typedef struct {
    lg_sched_kind kind;
    int step_size;                        /* STEP */
    double gamma;                         /* STEP, MULTISTEP, EXPONENTIAL */
    int milestones[LG_SCHED_MAX_MILESTONES], nmilestones; /* MULTISTEP, sorted */
    int t_max;                            /* COSINE */
    double eta_min;                       /* COSINE */
    double start_factor, end_factor;      /* LINEAR */
    int total_iters;                      /* LINEAR */
    /* ONE_CYCLE: PyTorch's defaults pct_start 0.3, anneal cos, div_factor 25,
     * final_div_factor 1e4, three_phase 0; momentum cycling is not done. */
    double max_lr, pct_start, div_factor, final_div_factor;
    int total_steps, anneal_linear, three_phase;
    /* PLATEAU: mode_max 0 (min) or 1; factor 0.1, patience 10, threshold
     * 1e-4, threshold_abs 0 (rel), cooldown 0, min_lr 0, eps 1e-8. */
    int mode_max, patience, threshold_abs, cooldown;
    double factor, threshold, min_lr, plateau_eps;
    /* Linear warmup composed with the above (multiplied, like
     * ChainedScheduler([LinearLR(warmup_start_factor, 1, warmup_steps), X])). */
    int warmup_steps;
    double warmup_start_factor;
} lg_sched_config;

void lg_sched_config_default(lg_sched_config *cfg, lg_sched_kind kind);

/* Everything a checkpoint needs to resume a scheduler (plain numbers). */
typedef struct {
    int64_t last_epoch;      /* PyTorch's last_epoch: steps taken */
    double best;             /* PLATEAU */
    int64_t num_bad_epochs;  /* PLATEAU */
    int64_t cooldown_counter;/* PLATEAU */
    double plateau_scale;    /* PLATEAU: accumulated reductions (lr = initial * scale, >= min_lr) */
} lg_sched_state;

typedef struct lg_sched {
    lg_sched_config cfg;
    lg_sched_state st;
} lg_sched;

/* Validates cfg and sets the groups' lr for step 0 (as constructing the
 * PyTorch scheduler does). */
lg_status lg_sched_init(lg_sched *s, const lg_sched_config *cfg, lg_optim *o, lg_error *err);
/* Writes the groups' lr for the scheduler's current state: after restoring
 * s->st (and the optimizer's initial_lr) from a checkpoint. */
void lg_sched_apply(lg_sched *s, lg_optim *o);
/* Advances one step (epoch or batch) and writes the groups' lr. metric is
 * read by PLATEAU only (the monitored value); others ignore it. */
lg_status lg_sched_step(lg_sched *s, lg_optim *o, double metric, lg_error *err);

/* ---- gradient clipping ------------------------------------------------------ */

/* norm_type 2.0 or INFINITY (any p >= 1 works). Returns the total norm
 * before clipping in *total_norm (may be NULL). */
lg_status lg_clip_grad_norm(lg_ctx *ctx, float *grads, size_t count, double max_norm,
                            double norm_type, double *total_norm);
lg_status lg_clip_grad_value(lg_ctx *ctx, float *grads, size_t count, double clip_value);

#endif
