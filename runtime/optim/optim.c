/* optim.c — SGD, Adam, AdamW and RMSprop over one parameter block, each a
 * single fused pass per step (read param, grad and state once, write param
 * and state once), with PyTorch's arithmetic order (torch.optim's
 * single-tensor path) so trajectories match to float rounding. The block is
 * cut into tasks of at most LG_OPTIM_CHUNK floats inside one tensor, fixed
 * at init, and run on the context's pool. Neighbours: lgen/optim.h,
 * sched.c (writes the groups' lr), clip.c. */
#include "lgen/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LG_OPTIM_CHUNK 32768

void lg_optim_config_default(lg_optim_config *cfg, lg_optim_kind kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->lr = kind == LG_OPTIM_SGD ? 1e-3 : kind == LG_OPTIM_RMSPROP ? 1e-2 : 1e-3;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->alpha = 0.99;
    cfg->weight_decay = kind == LG_OPTIM_ADAMW ? 1e-2 : 0.0;
}

static const char *kind_name(lg_optim_kind k) {
    switch (k) {
    case LG_OPTIM_SGD: return "sgd";
    case LG_OPTIM_ADAM: return "adam";
    case LG_OPTIM_ADAMW: return "adamw";
    case LG_OPTIM_RMSPROP: return "rmsprop";
    }
    return "optimizer";
}

/* Slot layout per kind, by name. */
static int slot_names(const lg_optim_config *c, const char **names) {
    int n = 0;
    switch (c->kind) {
    case LG_OPTIM_SGD:
        if (c->momentum != 0)
            names[n++] = "momentum_buffer";
        break;
    case LG_OPTIM_ADAM:
    case LG_OPTIM_ADAMW:
        names[n++] = "exp_avg";
        names[n++] = "exp_avg_sq";
        if (c->amsgrad)
            names[n++] = "max_exp_avg_sq";
        break;
    case LG_OPTIM_RMSPROP:
        names[n++] = "square_avg";
        if (c->momentum > 0)
            names[n++] = "momentum_buffer";
        if (c->centered)
            names[n++] = "grad_avg";
        break;
    }
    return n;
}

const char *lg_optim_slot_name(const lg_optim *o, int slot) {
    const char *names[LG_OPTIM_MAX_SLOTS];
    int n = slot_names(&o->cfg, names);
    return slot >= 0 && slot < n ? names[slot] : NULL;
}

static int slot_index(const lg_optim *o, const char *name) {
    for (int i = 0; i < o->nslots; i++)
        if (strcmp(lg_optim_slot_name(o, i), name) == 0)
            return i;
    return -1;
}

/* The task table lives after the groups and params in one allocation. */
typedef struct {
    size_t begin, end;
    int group;
} optim_task;

typedef struct {
    lg_optim *o;
    float *p;
    const float *g;
    const optim_task *tasks;
    double bc1, bc2_sqrt;
    int first;
} step_job;

static lg_status check_config(const lg_optim_config *c, lg_error *err) {
    const char *k = kind_name(c->kind);
    if (c->kind < LG_OPTIM_SGD || c->kind > LG_OPTIM_RMSPROP)
        return lg_error_set(err, LG_ERR_ARG, "optimizer: unknown kind %d", (int)c->kind);
    if (!(c->lr >= 0))
        return lg_error_set(err, LG_ERR_ARG, "%s: invalid learning rate %g (must be >= 0)", k, c->lr);
    if (!(c->weight_decay >= 0))
        return lg_error_set(err, LG_ERR_ARG, "%s: invalid weight_decay %g (must be >= 0)", k, c->weight_decay);
    if (!(c->momentum >= 0))
        return lg_error_set(err, LG_ERR_ARG, "%s: invalid momentum %g (must be >= 0)", k, c->momentum);
    if (c->kind == LG_OPTIM_SGD && c->nesterov && (c->momentum <= 0 || c->dampening != 0))
        return lg_error_set(err, LG_ERR_ARG, "sgd: nesterov momentum requires a momentum and zero dampening");
    if (c->kind == LG_OPTIM_ADAM || c->kind == LG_OPTIM_ADAMW) {
        if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
            return lg_error_set(err, LG_ERR_ARG, "%s: betas (%g, %g) must be in [0, 1)", k, c->beta1, c->beta2);
    }
    if (c->kind != LG_OPTIM_SGD && !(c->eps >= 0))
        return lg_error_set(err, LG_ERR_ARG, "%s: invalid eps %g (must be >= 0)", k, c->eps);
    if (c->kind == LG_OPTIM_RMSPROP && !(c->alpha >= 0))
        return lg_error_set(err, LG_ERR_ARG, "rmsprop: invalid alpha %g (must be >= 0)", c->alpha);
    return LG_OK;
}

lg_status lg_optim_init(lg_optim *o, const lg_optim_config *cfg, int ngroups, const lg_optim_group *groups,
                        int nparams, const lg_optim_param *params, size_t total, lg_error *err) {
    memset(o, 0, sizeof *o);
    lg_status st = check_config(cfg, err);
    if (st)
        return st;
    const char *k = kind_name(cfg->kind);
    lg_optim_group one = {cfg->lr, cfg->lr, cfg->weight_decay};
    if (!groups) {
        groups = &one;
        ngroups = 1;
    }
    if (ngroups < 1 || nparams < 0 || (nparams > 0 && !params))
        return lg_error_set(err, LG_ERR_ARG, "%s: %d groups and %d parameters", k, ngroups, nparams);
    size_t ntasks = 0;
    for (int i = 0; i < nparams; i++) {
        const lg_optim_param *p = &params[i];
        if (p->group < 0 || p->group >= ngroups)
            return lg_error_set(err, LG_ERR_ARG, "%s: parameter %d is in group %d of %d", k, i, p->group, ngroups);
        if (p->offset > total || p->count > total - p->offset)
            return lg_error_set(err, LG_ERR_ARG, "%s: parameter %d [%zu, %zu) is outside the block of %zu floats", k,
                                i, p->offset, p->offset + p->count, total);
        ntasks += (p->count + LG_OPTIM_CHUNK - 1) / LG_OPTIM_CHUNK;
    }
    for (int g = 0; g < ngroups; g++)
        if (!(groups[g].lr >= 0) || !(groups[g].weight_decay >= 0))
            return lg_error_set(err, LG_ERR_ARG, "%s: group %d has lr %g and weight_decay %g (must be >= 0)", k, g,
                                groups[g].lr, groups[g].weight_decay);
    o->cfg = *cfg;
    o->groups = calloc((size_t)ngroups, sizeof *o->groups);
    o->params = calloc((size_t)nparams + ntasks + 1, sizeof *o->params + sizeof(optim_task));
    const char *names[LG_OPTIM_MAX_SLOTS];
    o->nslots = slot_names(cfg, names);
    float *state = o->nslots && total ? calloc(total * (size_t)o->nslots, sizeof(float)) : NULL;
    if (!o->groups || !o->params || (o->nslots && total && !state)) {
        free(state);
        lg_optim_free(o);
        return lg_error_set(err, LG_ERR_NOMEM, "%s: cannot allocate state for %zu parameters (%zu MiB)", k, total,
                            total * (size_t)o->nslots * sizeof(float) >> 20);
    }
    memcpy(o->groups, groups, (size_t)ngroups * sizeof *groups);
    for (int g = 0; g < ngroups; g++)
        if (o->groups[g].initial_lr == 0)
            o->groups[g].initial_lr = o->groups[g].lr;
    if (nparams > 0)
        memcpy(o->params, params, (size_t)nparams * sizeof *params);
    o->ngroups = ngroups;
    o->nparams = nparams;
    o->total = total;
    for (int s = 0; s < o->nslots; s++)
        o->slot[s] = state + (size_t)s * total;
    return LG_OK;
}

void lg_optim_free(lg_optim *o) {
    if (!o)
        return;
    free(o->slot[0]);
    free(o->groups);
    free(o->params);
    memset(o, 0, sizeof *o);
}

void lg_optim_set_lr(lg_optim *o, double lr, int reset_initial) {
    for (int g = 0; g < o->ngroups; g++) {
        o->groups[g].lr = lr;
        if (reset_initial)
            o->groups[g].initial_lr = lr;
    }
}

/* The update loops are written once with their options as arguments and
 * instantiated with constant options (LG_INLINE), so that each instance is
 * a branch-free loop the compiler vectorises. */
#define LG_INLINE static inline __attribute__((always_inline))

LG_INLINE void sgd_loop(size_t b, size_t e, float *restrict p, const float *restrict g, float *restrict buf,
                        float lr, float wd, float mom, float damp, float sign, const int use_wd, const int use_buf,
                        const int first, const int nesterov) {
    for (size_t i = b; i < e; i++) {
        float d = sign * g[i];
        if (use_wd)
            d = d + wd * p[i];
        if (use_buf) {
            float bv = first ? d : buf[i] * mom + damp * d;
            buf[i] = bv;
            d = nesterov ? d + mom * bv : bv;
        }
        p[i] = p[i] + (-lr) * d;
    }
}

static void sgd_range(const step_job *j, const lg_optim_group *grp, size_t b, size_t e) {
    const lg_optim_config *c = &j->o->cfg;
    float lr = (float)grp->lr, wd = (float)grp->weight_decay, mom = (float)c->momentum;
    float damp = (float)(1.0 - c->dampening), sign = c->maximize ? -1.0f : 1.0f;
    float *buf = c->momentum != 0 ? j->o->slot[0] : NULL;
    int use_wd = wd != 0;
#define SGD(W, B, F, N) sgd_loop(b, e, j->p, j->g, buf, lr, wd, mom, damp, sign, W, B, F, N)
    if (!buf)
        use_wd ? SGD(1, 0, 0, 0) : SGD(0, 0, 0, 0);
    else if (j->first)
        use_wd ? SGD(1, 1, 1, c->nesterov) : SGD(0, 1, 1, c->nesterov);
    else if (c->nesterov)
        use_wd ? SGD(1, 1, 0, 1) : SGD(0, 1, 0, 1);
    else
        use_wd ? SGD(1, 1, 0, 0) : SGD(0, 1, 0, 0);
#undef SGD
}

LG_INLINE void adam_loop(size_t b, size_t e, float *restrict p, const float *restrict g, float *restrict m,
                         float *restrict v, float *restrict vmax, float wd, float decay, float w1, float b2,
                         float w2, float step_size, float bc2s, float eps, float sign, const int decoupled,
                         const int use_wd, const int lerp_lo, const int ams) {
    for (size_t i = b; i < e; i++) {
        float d = sign * g[i];
        float x = p[i];
        if (decoupled)
            x = x * decay;
        else if (use_wd)
            d = d + wd * x;
        /* exp_avg.lerp_(grad, 1 - beta1), PyTorch's two forms */
        float mi = lerp_lo ? m[i] + w1 * (d - m[i]) : d - (d - m[i]) * (1.0f - w1);
        float vi = v[i] * b2 + w2 * d * d;
        m[i] = mi;
        v[i] = vi;
        if (ams) {
            vi = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vi;
        }
        float denom = sqrtf(vi) / bc2s + eps;
        p[i] = x + (-step_size) * (mi / denom);
    }
}

static void adam_range(const step_job *j, const lg_optim_group *grp, size_t b, size_t e) {
    const lg_optim *o = j->o;
    const lg_optim_config *c = &o->cfg;
    float *vmax = c->amsgrad ? o->slot[2] : NULL;
    int decoupled = c->kind == LG_OPTIM_ADAMW;
    float wd = (float)grp->weight_decay, sign = c->maximize ? -1.0f : 1.0f;
    float decay = (float)(1.0 - grp->lr * grp->weight_decay);
    float w1 = (float)(1.0 - c->beta1), b2 = (float)c->beta2, w2 = (float)(1.0 - c->beta2);
    float step_size = (float)(grp->lr / j->bc1), bc2s = (float)j->bc2_sqrt, eps = (float)c->eps;
    int use_wd = wd != 0, lo = w1 < 0.5f;
#define ADAM(D, W, L, A)                                                                                        \
    adam_loop(b, e, j->p, j->g, o->slot[0], o->slot[1], vmax, wd, decay, w1, b2, w2, step_size, bc2s, eps, sign, \
              D, W, L, A)
    if (vmax)
        ADAM(decoupled, use_wd, lo, 1); /* amsgrad: the general instance */
    else if (decoupled)
        lo ? ADAM(1, 0, 1, 0) : ADAM(1, 0, 0, 0);
    else if (use_wd)
        lo ? ADAM(0, 1, 1, 0) : ADAM(0, 1, 0, 0);
    else
        lo ? ADAM(0, 0, 1, 0) : ADAM(0, 0, 0, 0);
#undef ADAM
}

static void rmsprop_range(const step_job *j, const lg_optim_group *grp, size_t b, size_t e) {
    const lg_optim *o = j->o;
    const lg_optim_config *c = &o->cfg;
    float *p = j->p, *sq = o->slot[0];
    float *buf = c->momentum > 0 ? o->slot[slot_index(o, "momentum_buffer")] : NULL;
    float *ga = c->centered ? o->slot[slot_index(o, "grad_avg")] : NULL;
    const float *g = j->g;
    float lr = (float)grp->lr, wd = (float)grp->weight_decay, sign = c->maximize ? -1.0f : 1.0f;
    float a = (float)c->alpha, wa = (float)(1.0 - c->alpha), eps = (float)c->eps, mom = (float)c->momentum;
    for (size_t i = b; i < e; i++) {
        float d = sign * g[i];
        if (wd != 0)
            d = d + wd * p[i];
        sq[i] = sq[i] * a + wa * d * d;
        float avg;
        if (ga) {
            ga[i] = wa < 0.5f ? ga[i] + wa * (d - ga[i]) : d - (d - ga[i]) * (1.0f - wa);
            avg = sqrtf(sq[i] - ga[i] * ga[i]) + eps;
        } else {
            avg = sqrtf(sq[i]) + eps;
        }
        if (buf) {
            buf[i] = buf[i] * mom + d / avg;
            p[i] = p[i] + (-lr) * buf[i];
        } else {
            p[i] = p[i] + (-lr) * (d / avg);
        }
    }
}

static void step_task(void *arg, size_t t) {
    const step_job *j = arg;
    const optim_task *task = &j->tasks[t];
    const lg_optim_group *grp = &j->o->groups[task->group];
    switch (j->o->cfg.kind) {
    case LG_OPTIM_SGD: sgd_range(j, grp, task->begin, task->end); break;
    case LG_OPTIM_ADAM:
    case LG_OPTIM_ADAMW: adam_range(j, grp, task->begin, task->end); break;
    case LG_OPTIM_RMSPROP: rmsprop_range(j, grp, task->begin, task->end); break;
    }
}

lg_status lg_optim_step(lg_optim *o, lg_ctx *ctx, float *params, const float *grads) {
    lg_error *err = ctx ? ctx->err : NULL;
    if (!o || !o->groups)
        return lg_error_set(err, LG_ERR_ARG, "optimizer: not initialised");
    if (o->total && (!params || !grads))
        return lg_error_set(err, LG_ERR_ARG, "%s: missing parameter or gradient block", kind_name(o->cfg.kind));
    optim_task *tasks = (optim_task *)(o->params + o->nparams);
    size_t nt = 0;
    for (int i = 0; i < o->nparams; i++)
        for (size_t b = 0; b < o->params[i].count; b += LG_OPTIM_CHUNK) {
            size_t e = b + LG_OPTIM_CHUNK < o->params[i].count ? b + LG_OPTIM_CHUNK : o->params[i].count;
            tasks[nt++] = (optim_task){o->params[i].offset + b, o->params[i].offset + e, o->params[i].group};
        }
    o->step++;
    step_job j = {.o = o, .p = params, .g = grads, .tasks = tasks, .first = o->step == 1};
    j.bc1 = 1.0 - pow(o->cfg.beta1, (double)o->step);
    j.bc2_sqrt = sqrt(1.0 - pow(o->cfg.beta2, (double)o->step));
    lg_parallel_for(ctx, nt, step_task, &j);
    return LG_OK;
}
