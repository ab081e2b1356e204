/* sched.c — learning-rate schedulers with torch.optim.lr_scheduler's
 * semantics, in closed form: lr(t) = initial_lr * factor(t) for each group
 * (OneCycleLR and ReduceLROnPlateau have their own rules), multiplied by a
 * linear warmup factor when one is configured — what ChainedScheduler of
 * LinearLR and the scheduler computes. The trainer calls lg_sched_step once
 * per epoch or per batch. Neighbours: lgen/optim.h, optim.c (group lrs). */
#include "lgen/optim.h"

#include <math.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

void lg_sched_config_default(lg_sched_config *cfg, lg_sched_kind kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->gamma = 0.1;
    cfg->step_size = 1;
    cfg->start_factor = 1.0 / 3;
    cfg->end_factor = 1.0;
    cfg->total_iters = 5;
    cfg->pct_start = 0.3;
    cfg->div_factor = 25;
    cfg->final_div_factor = 1e4;
    cfg->factor = 0.1;
    cfg->patience = 10;
    cfg->threshold = 1e-4;
    cfg->plateau_eps = 1e-8;
    cfg->warmup_start_factor = 1.0 / 3;
}

static const char *sched_name(lg_sched_kind k) {
    static const char *const names[] = {"constant", "step", "multistep", "exponential", "cosine", "linear",
                                        "one_cycle", "reduce_on_plateau"};
    return (unsigned)k <= LG_SCHED_PLATEAU ? names[k] : "scheduler";
}

static lg_status check(const lg_sched_config *c, lg_error *err) {
    const char *k = sched_name(c->kind);
    switch (c->kind) {
    case LG_SCHED_CONSTANT: break;
    case LG_SCHED_STEP:
        if (c->step_size < 1)
            return lg_error_set(err, LG_ERR_ARG, "step: step_size %d must be >= 1", c->step_size);
        break;
    case LG_SCHED_MULTISTEP:
        if (c->nmilestones < 0 || c->nmilestones > LG_SCHED_MAX_MILESTONES)
            return lg_error_set(err, LG_ERR_ARG, "multistep: %d milestones (at most %d)", c->nmilestones,
                                LG_SCHED_MAX_MILESTONES);
        for (int i = 1; i < c->nmilestones; i++)
            if (c->milestones[i] < c->milestones[i - 1])
                return lg_error_set(err, LG_ERR_ARG, "multistep: milestones must be increasing (%d after %d)",
                                    c->milestones[i], c->milestones[i - 1]);
        break;
    case LG_SCHED_EXPONENTIAL: break;
    case LG_SCHED_COSINE:
        if (c->t_max < 1)
            return lg_error_set(err, LG_ERR_ARG, "cosine: t_max %d must be >= 1", c->t_max);
        break;
    case LG_SCHED_LINEAR:
        if (!(c->start_factor > 0 && c->start_factor <= 1) || !(c->end_factor >= 0 && c->end_factor <= 1) ||
            c->total_iters < 1)
            return lg_error_set(err, LG_ERR_ARG,
                                "linear: start_factor %g must be in (0, 1], end_factor %g in [0, 1], total_iters %d >= 1",
                                c->start_factor, c->end_factor, c->total_iters);
        break;
    case LG_SCHED_ONE_CYCLE:
        if (c->total_steps < 1 || !(c->max_lr > 0) || !(c->pct_start > 0 && c->pct_start < 1) ||
            !(c->div_factor > 0) || !(c->final_div_factor > 0))
            return lg_error_set(err, LG_ERR_ARG,
                                "one_cycle: total_steps %d >= 1, max_lr %g > 0, pct_start %g in (0, 1), div factors > 0",
                                c->total_steps, c->max_lr, c->pct_start);
        break;
    case LG_SCHED_PLATEAU:
        if (!(c->factor >= 0 && c->factor < 1) || c->patience < 0 || c->cooldown < 0 || !(c->min_lr >= 0))
            return lg_error_set(err, LG_ERR_ARG,
                                "reduce_on_plateau: factor %g must be in [0, 1), patience %d and cooldown %d >= 0",
                                c->factor, c->patience, c->cooldown);
        break;
    default:
        return lg_error_set(err, LG_ERR_ARG, "scheduler: unknown kind %d", (int)c->kind);
    }
    if (c->warmup_steps < 0 || (c->warmup_steps > 0 && !(c->warmup_start_factor > 0 && c->warmup_start_factor <= 1)))
        return lg_error_set(err, LG_ERR_ARG, "%s: warmup of %d steps from factor %g (must be in (0, 1])", k,
                            c->warmup_steps, c->warmup_start_factor);
    if (c->kind != LG_SCHED_CONSTANT && c->kind != LG_SCHED_PLATEAU && c->kind != LG_SCHED_LINEAR &&
        c->kind != LG_SCHED_COSINE && c->kind != LG_SCHED_ONE_CYCLE && !(c->gamma > 0))
        return lg_error_set(err, LG_ERR_ARG, "%s: gamma %g must be > 0", k, c->gamma);
    return LG_OK;
}

/* OneCycleLR's lr at step t (PyTorch's phases and annealing). */
static double one_cycle_lr(const lg_sched_config *c, double t) {
    double initial = c->max_lr / c->div_factor, min_lr = initial / c->final_div_factor;
    double T = c->total_steps, p = c->pct_start;
    double ends[3], starts_lr[3], ends_lr[3];
    int n;
    if (c->three_phase) {
        n = 3;
        ends[0] = p * T - 1, starts_lr[0] = initial, ends_lr[0] = c->max_lr;
        ends[1] = 2 * p * T - 2, starts_lr[1] = c->max_lr, ends_lr[1] = initial;
        ends[2] = T - 1, starts_lr[2] = initial, ends_lr[2] = min_lr;
    } else {
        n = 2;
        ends[0] = p * T - 1, starts_lr[0] = initial, ends_lr[0] = c->max_lr;
        ends[1] = T - 1, starts_lr[1] = c->max_lr, ends_lr[1] = min_lr;
    }
    double start_step = 0;
    for (int i = 0; i < n; i++) {
        if (t <= ends[i] || i == n - 1) {
            double pct = (t - start_step) / (ends[i] - start_step);
            if (c->anneal_linear)
                return (ends_lr[i] - starts_lr[i]) * pct + starts_lr[i];
            return ends_lr[i] + (starts_lr[i] - ends_lr[i]) / 2.0 * (cos(PI * pct) + 1);
        }
        start_step = ends[i];
    }
    return min_lr;
}

static double factor_at(const lg_sched_config *c, int64_t t) {
    double f = 1.0;
    switch (c->kind) {
    case LG_SCHED_STEP: f = pow(c->gamma, (double)(t / c->step_size)); break;
    case LG_SCHED_MULTISTEP: {
        int k = 0;
        for (int i = 0; i < c->nmilestones; i++)
            k += t >= c->milestones[i];
        f = pow(c->gamma, k);
        break;
    }
    case LG_SCHED_EXPONENTIAL: f = pow(c->gamma, (double)t); break;
    case LG_SCHED_LINEAR: {
        double u = t < c->total_iters ? (double)t : (double)c->total_iters;
        f = c->start_factor + (c->end_factor - c->start_factor) * u / c->total_iters;
        break;
    }
    default: break;
    }
    if (c->warmup_steps > 0) {
        double u = t < c->warmup_steps ? (double)t : (double)c->warmup_steps;
        f *= c->warmup_start_factor + (1.0 - c->warmup_start_factor) * u / c->warmup_steps;
    }
    return f;
}

static void apply(lg_sched *s, lg_optim *o) {
    const lg_sched_config *c = &s->cfg;
    int64_t t = s->st.last_epoch;
    for (int g = 0; g < o->ngroups; g++) {
        double base = o->groups[g].initial_lr, lr;
        switch (c->kind) {
        case LG_SCHED_COSINE:
            lr = c->eta_min + (base - c->eta_min) * (1 + cos(PI * (double)t / c->t_max)) / 2;
            lr *= factor_at(c, t);
            break;
        case LG_SCHED_ONE_CYCLE: lr = one_cycle_lr(c, (double)t) * factor_at(c, t); break;
        case LG_SCHED_PLATEAU:
            lr = base * s->st.plateau_scale;
            if (lr < c->min_lr)
                lr = c->min_lr;
            lr *= factor_at(c, t);
            break;
        default: lr = base * factor_at(c, t); break;
        }
        o->groups[g].lr = lr;
    }
}

void lg_sched_apply(lg_sched *s, lg_optim *o) {
    apply(s, o);
}

lg_status lg_sched_init(lg_sched *s, const lg_sched_config *cfg, lg_optim *o, lg_error *err) {
    memset(s, 0, sizeof *s);
    lg_status st = check(cfg, err);
    if (st)
        return st;
    s->cfg = *cfg;
    s->st.best = cfg->mode_max ? -INFINITY : INFINITY;
    s->st.plateau_scale = 1.0;
    if (cfg->kind == LG_SCHED_ONE_CYCLE)
        for (int g = 0; g < o->ngroups; g++)
            o->groups[g].initial_lr = cfg->max_lr / cfg->div_factor;
    apply(s, o);
    return LG_OK;
}

static int plateau_better(const lg_sched_config *c, double a, double best) {
    if (!c->mode_max && !c->threshold_abs)
        return a < best * (1 - c->threshold);
    if (!c->mode_max)
        return a < best - c->threshold;
    if (!c->threshold_abs)
        return a > best * (c->threshold + 1);
    return a > best + c->threshold;
}

lg_status lg_sched_step(lg_sched *s, lg_optim *o, double metric, lg_error *err) {
    const lg_sched_config *c = &s->cfg;
    if (c->kind == LG_SCHED_ONE_CYCLE && s->st.last_epoch + 1 >= c->total_steps)
        return lg_error_set(err, LG_ERR_ARG,
                            "one_cycle: tried to step %lld times, but total_steps is %d (one per optimizer step)",
                            (long long)s->st.last_epoch + 2, c->total_steps);
    s->st.last_epoch++;
    if (c->kind == LG_SCHED_PLATEAU) {
        if (isnan(metric))
            return lg_error_set(err, LG_ERR_NUMERIC, "reduce_on_plateau: the monitored metric is NaN");
        if (plateau_better(c, metric, s->st.best)) {
            s->st.best = metric;
            s->st.num_bad_epochs = 0;
        } else {
            s->st.num_bad_epochs++;
        }
        if (s->st.cooldown_counter > 0) {
            s->st.cooldown_counter--;
            s->st.num_bad_epochs = 0;
        }
        if (s->st.num_bad_epochs > c->patience) {
            double base = o->ngroups ? o->groups[0].initial_lr : 0;
            double old = base * s->st.plateau_scale, nw = old * c->factor;
            if (old < c->min_lr)
                old = c->min_lr;
            if (nw < c->min_lr)
                nw = c->min_lr;
            if (old - nw > c->plateau_eps)
                s->st.plateau_scale *= c->factor;
            s->st.cooldown_counter = c->cooldown;
            s->st.num_bad_epochs = 0;
        }
    }
    apply(s, o);
    return LG_OK;
}
