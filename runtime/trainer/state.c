/* state.c — everything that decides the next weights, and its checkpoints.
 *
 * setup: the def's optimizer description (kind + named arguments, parameter
 * groups, scheduler) becomes lgen/optim.h's optimizer and scheduler.
 * Checkpoints (lgen/checkpoint.h's safetensors files): parameters by their
 * PyTorch names, optimizer slots as "optimizer.state.<param>.<slot>", and
 * metadata strings holding JSON for hparams, optimizer and scheduler scalars,
 * the generator, the loop position and the callbacks' state, plus the spec's
 * hash, and for a 16-mixed GPU run GradScaler's state under Lightning's key
 * "MixedPrecision". Loading checks all of it (another spec's or a corrupt file is a clear
 * error) and restores it exactly; --ckpt_path last|best|URL is resolved here
 * (URLs through libcurl).
 */
#include "internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lgen/checkpoint.h"
#include "lgen/cuda_optim.h"

#define CKPT_FORMAT "lgen.checkpoint/1"

static int kw_num(const lg_kwargs *k, const char *name, double *v) {
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->arg[i].name, name) == 0) {
            *v = k->arg[i].num;
            return 1;
        }
    return 0;
}

static const char *kw_str(const lg_kwargs *k, const char *name) {
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->arg[i].name, name) == 0)
            return k->arg[i].str;
    return NULL;
}

static lg_status check_kwargs(lg_trainer *t, const char *what, const char *kind, const lg_kwargs *k,
                              const char *const *allowed) {
    for (int i = 0; i < k->n; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, k->arg[i].name) == 0 ||
                  (strcmp(*a, "m*") == 0 && k->arg[i].name[0] == 'm' &&
                   isdigit((unsigned char)k->arg[i].name[1]));
        if (!ok)
            return lg_tr_fail(t, LG_ERR_ARG, "%s '%s' has no argument '%s'", what, kind, k->arg[i].name);
    }
    return LG_OK;
}

lg_status lg_tr_setup_optimizer(lg_trainer *t, const lg_fit_info *fit) {
    const lg_model_def *def = t->def;
    lg_optim_desc d;
    memset(&d, 0, sizeof d);
    lg_status st;
    if (def->configure_optimizers) {
        if ((st = def->configure_optimizers(t->cfg->hp, fit, &d, t->err)) != LG_OK)
            return st;
    } else {
        d.optimizer = "sgd";
        d.args.n = 1;
        d.args.arg[0].name = "lr";
        d.args.arg[0].num = 0.01;
    }
    static const struct {
        const char *name, *cls;
        lg_optim_kind kind;
    } kinds[] = {{"sgd", "SGD", LG_OPTIM_SGD},
                 {"adam", "Adam", LG_OPTIM_ADAM},
                 {"adamw", "AdamW", LG_OPTIM_ADAMW},
                 {"rmsprop", "RMSprop", LG_OPTIM_RMSPROP}};
    int ki = -1;
    for (int i = 0; i < 4; i++)
        if (d.optimizer && strcasecmp(d.optimizer, kinds[i].name) == 0)
            ki = i;
    if (ki < 0)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "unknown optimizer '%s' (sgd, adam, adamw, rmsprop)",
                    d.optimizer ? d.optimizer : "(none)");
    t->optim_name = kinds[ki].cls;
    static const char *const oargs[] = {"lr", "momentum", "dampening", "nesterov", "weight_decay",
                                        "beta1", "beta2", "eps", "amsgrad", "alpha", "centered",
                                        "maximize", NULL};
    if ((st = check_kwargs(t, "optimizer", d.optimizer, &d.args, oargs)) != LG_OK)
        return st;
    lg_optim_config oc;
    lg_optim_config_default(&oc, kinds[ki].kind);
    double v;
    if (kw_num(&d.args, "lr", &v)) oc.lr = v;
    if (kw_num(&d.args, "momentum", &v)) oc.momentum = v;
    if (kw_num(&d.args, "dampening", &v)) oc.dampening = v;
    if (kw_num(&d.args, "nesterov", &v)) oc.nesterov = v != 0;
    if (kw_num(&d.args, "weight_decay", &v)) oc.weight_decay = v;
    if (kw_num(&d.args, "beta1", &v)) oc.beta1 = v;
    if (kw_num(&d.args, "beta2", &v)) oc.beta2 = v;
    if (kw_num(&d.args, "eps", &v)) oc.eps = v;
    if (kw_num(&d.args, "amsgrad", &v)) oc.amsgrad = v != 0;
    if (kw_num(&d.args, "alpha", &v)) oc.alpha = v;
    if (kw_num(&d.args, "centered", &v)) oc.centered = v != 0;
    if (kw_num(&d.args, "maximize", &v)) oc.maximize = v != 0;
    int ng = d.n_groups > 0 ? d.n_groups : 1;
    if (ng > LG_MAX_GROUPS)
        return lg_tr_fail(t, LG_ERR_ARG, "%d parameter groups (at most %d)", ng, LG_MAX_GROUPS);
    lg_optim_group groups[LG_MAX_GROUPS];
    static const char *const gargs[] = {"lr", "weight_decay", NULL};
    for (int g = 0; g < ng; g++) {
        groups[g].lr = oc.lr;
        groups[g].weight_decay = oc.weight_decay;
        if (g > 0) {
            if ((st = check_kwargs(t, "parameter group of", d.optimizer, &d.group[g], gargs)) != LG_OK)
                return st;
            if (kw_num(&d.group[g], "lr", &v)) groups[g].lr = v;
            if (kw_num(&d.group[g], "weight_decay", &v)) groups[g].weight_decay = v;
        }
        groups[g].initial_lr = 0;
    }
    int np = 0;
    lg_optim_param *ps = calloc((size_t)(def->n_params ? def->n_params : 1), sizeof *ps);
    if (!ps)
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    for (int k = 0; k < def->n_params; k++) {
        const lg_param *q = &def->params[k];
        if (q->role != LG_PARAM_TRAIN)
            continue;
        if (q->group < 0 || q->group >= ng) {
            free(ps);
            return lg_tr_fail(t, LG_ERR_ARG, "parameter '%s' is in group %d of %d", q->name, q->group, ng);
        }
        ps[np].offset = q->offset;
        ps[np].count = q->numel;
        ps[np].group = q->group;
        np++;
    }
    st = lg_optim_init(&t->optim, &oc, ng, groups, np, ps, def->n_floats, t->err);
    free(ps);
    if (st != LG_OK)
        return st;
    t->have_optim = 1;

    /* scheduler */
    double warm = 0;
    int has_warm = kw_num(&d.sched_args, "warmup_steps", &warm) && warm > 0;
    const char *sk = d.scheduler;
    if ((!sk || !*sk || strcasecmp(sk, "none") == 0) && !has_warm)
        return LG_OK;
    static const struct {
        const char *name;
        lg_sched_kind kind;
    } sks[] = {{"none", LG_SCHED_CONSTANT},       {"constant", LG_SCHED_CONSTANT},
               {"step", LG_SCHED_STEP},           {"multistep", LG_SCHED_MULTISTEP},
               {"exponential", LG_SCHED_EXPONENTIAL}, {"cosine", LG_SCHED_COSINE},
               {"linear", LG_SCHED_LINEAR},       {"one_cycle", LG_SCHED_ONE_CYCLE},
               {"reduce_on_plateau", LG_SCHED_PLATEAU}, {"plateau", LG_SCHED_PLATEAU}};
    int si = -1;
    if (!sk || !*sk)
        sk = "none";
    for (size_t i = 0; i < sizeof sks / sizeof sks[0]; i++)
        if (strcasecmp(sk, sks[i].name) == 0)
            si = (int)i;
    if (si < 0)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "unknown scheduler '%s'", sk);
    static const char *const sargs[] = {
        "step_size", "gamma", "milestones", "m*", "t_max", "eta_min", "start_factor", "end_factor",
        "total_iters", "max_lr", "total_steps", "pct_start", "div_factor", "final_div_factor",
        "anneal_strategy", "three_phase", "monitor", "mode", "factor", "patience", "threshold",
        "threshold_mode", "cooldown", "min_lr", "eps", "warmup_steps", "warmup_start_factor",
        "interval", NULL};
    if ((st = check_kwargs(t, "scheduler", sk, &d.sched_args, sargs)) != LG_OK)
        return st;
    lg_sched_config sc;
    lg_sched_config_default(&sc, sks[si].kind);
    const lg_kwargs *a = &d.sched_args;
    if (kw_num(a, "step_size", &v)) sc.step_size = (int)v;
    if (kw_num(a, "gamma", &v)) sc.gamma = v;
    for (int i = 0; i < LG_SCHED_MAX_MILESTONES; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        if (!kw_num(a, name, &v))
            break;
        sc.milestones[sc.nmilestones++] = (int)v;
    }
    if (kw_num(a, "t_max", &v)) sc.t_max = (int)v;
    if (kw_num(a, "eta_min", &v)) sc.eta_min = v;
    if (kw_num(a, "start_factor", &v)) sc.start_factor = v;
    if (kw_num(a, "end_factor", &v)) sc.end_factor = v;
    if (kw_num(a, "total_iters", &v)) sc.total_iters = (int)v;
    if (kw_num(a, "max_lr", &v)) sc.max_lr = v;
    if (kw_num(a, "total_steps", &v)) sc.total_steps = (int)v;
    if (kw_num(a, "pct_start", &v)) sc.pct_start = v;
    if (kw_num(a, "div_factor", &v)) sc.div_factor = v;
    if (kw_num(a, "final_div_factor", &v)) sc.final_div_factor = v;
    if (kw_str(a, "anneal_strategy")) sc.anneal_linear = strcmp(kw_str(a, "anneal_strategy"), "linear") == 0;
    if (kw_num(a, "three_phase", &v)) sc.three_phase = v != 0;
    if (kw_str(a, "mode")) sc.mode_max = strcmp(kw_str(a, "mode"), "max") == 0;
    if (kw_num(a, "factor", &v)) sc.factor = v;
    if (kw_num(a, "patience", &v)) sc.patience = (int)v;
    if (kw_num(a, "threshold", &v)) sc.threshold = v;
    if (kw_str(a, "threshold_mode")) sc.threshold_abs = strcmp(kw_str(a, "threshold_mode"), "abs") == 0;
    if (kw_num(a, "cooldown", &v)) sc.cooldown = (int)v;
    if (kw_num(a, "min_lr", &v)) sc.min_lr = v;
    if (kw_num(a, "eps", &v)) sc.plateau_eps = v;
    if (has_warm) sc.warmup_steps = (int)warm;
    if (kw_num(a, "warmup_start_factor", &v)) sc.warmup_start_factor = v;
    if (sc.kind == LG_SCHED_ONE_CYCLE && sc.total_steps <= 0)
        sc.total_steps = (int)fit->estimated_stepping_batches;
    const char *mon = kw_str(a, "monitor");
    snprintf(t->sched_monitor, sizeof t->sched_monitor, "%s", mon ? mon : "");
    if (sc.kind == LG_SCHED_PLATEAU && !t->sched_monitor[0])
        return lg_tr_fail(t, LG_ERR_ARG, "scheduler reduce_on_plateau needs a monitor");
    if ((st = lg_sched_init(&t->sched, &sc, &t->optim, t->err)) != LG_OK)
        return st;
    t->have_sched = 1;
    t->sched_per_step = d.sched_per_step || sc.kind == LG_SCHED_ONE_CYCLE;
    const char *iv = kw_str(a, "interval");
    if (iv)
        t->sched_per_step = strcmp(iv, "step") == 0;
    return LG_OK;
}

/* A double in checkpoint metadata: JSON has no inf or nan, so those are
 * strings ("inf", "-inf", "nan"); finite values print with 17 digits and
 * read back exactly. */
static json_t *jnum(double v) {
    if (isfinite(v))
        return json_real(v);
    return json_string(isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
}

static double jget(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return strtod(json_string_value(v), NULL);
    return json_number_value(v);
}

static char *json_text(json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(j);
    return s;
}

static json_t *callbacks_json(lg_trainer *t) {
    json_t *k = json_object();
    for (int i = 0; i < t->n_best; i++)
        json_object_set_new(k, t->best[i].path, jnum(t->best[i].score));
    json_t *mc = json_pack("{s:s, s:o, s:o, s:s}", "best_model_path",
                           t->best_path ? t->best_path : "", "best_model_score", jnum(t->best_score),
                           "best_k_models", k, "dirpath", t->ckdir ? t->ckdir : "");
    json_t *es = json_pack("{s:I, s:o, s:b}", "wait_count", (json_int_t)t->es_wait, "best_score",
                           jnum(t->es_has_best ? t->es_best : 0.0), "has_best", t->es_has_best);
    return json_pack("{s:o, s:o}", "ModelCheckpoint", mc, "EarlyStopping", es);
}

/* Lightning's MixedPrecision plugin saves GradScaler.state_dict() under its
 * class name; a 16-mixed run on the GPU has it on the device. NULL when the
 * run does not scale (a 32-true or bf16-mixed run, the CPU). */
static char *scaler_json(lg_trainer *t, lg_status *st) {
    lg_cuda_scaler s;
    int active = 0;
    *st = LG_OK;
    if (!t->res || !t->res->scaler_get || (*st = t->res->scaler_get(&s, &active, t->err)) != LG_OK || !active)
        return NULL;
    return json_text(json_pack("{s:o, s:o, s:o, s:I, s:I}", "scale", jnum(s.scale), "growth_factor",
                               jnum(s.growth_factor), "backoff_factor", jnum(s.backoff_factor),
                               "growth_interval", (json_int_t)s.growth_interval, "_growth_tracker",
                               (json_int_t)s.growth_tracker));
}

lg_status lg_tr_ckpt_save(lg_trainer *t, const char *path) {
    const lg_model_def *def = t->def;
    lg_status pst = lg_tr_params_to_host(t); /* the GPU's weights and state, when they live there */
    if (pst != LG_OK)
        return pst;
    int nslots = t->have_optim ? t->optim.nslots : 0;
    int n = def->n_params, cap = n + n * nslots;
    lg_st_tensor *ts = calloc((size_t)(cap ? cap : 1), sizeof *ts);
    int64_t **ints = calloc((size_t)(n ? n : 1), sizeof *ints);
    char **names = calloc((size_t)(cap ? cap : 1), sizeof *names);
    lg_status st = LG_OK;
    if (!ts || !ints || !names) {
        st = lg_tr_fail(t, LG_ERR_NOMEM, "out of memory saving '%s'", path);
        goto out;
    }
    int nt = 0;
    for (int k = 0; k < n; k++) {
        const lg_param *q = &def->params[k];
        lg_st_tensor *x = &ts[nt++];
        x->name = q->name;
        x->ndim = q->ndim;
        for (int d = 0; d < q->ndim; d++)
            x->shape[d] = q->shape[d];
        if (q->is_int64) {
            ints[k] = malloc(q->numel * sizeof(int64_t) + 1);
            if (!ints[k]) {
                st = lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < q->numel; i++)
                ints[k][i] = (int64_t)t->params[q->offset + i];
            x->dtype = LG_DT_I64;
            x->data = ints[k];
        } else {
            x->dtype = LG_DT_F32;
            x->data = t->params + q->offset;
        }
    }
    for (int s = 0; s < nslots; s++)
        for (int k = 0; k < n; k++) {
            const lg_param *q = &def->params[k];
            if (q->role != LG_PARAM_TRAIN)
                continue;
            size_t len = strlen(q->name) + 64;
            names[nt] = malloc(len);
            if (!names[nt]) {
                st = lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
                goto out;
            }
            snprintf(names[nt], len, "optimizer.state.%s.%s", q->name,
                     lg_optim_slot_name(&t->optim, s));
            lg_st_tensor *x = &ts[nt++];
            x->name = names[nt - 1];
            x->dtype = LG_DT_F32;
            x->ndim = q->ndim;
            for (int d = 0; d < q->ndim; d++)
                x->shape[d] = q->shape[d];
            x->data = t->optim.slot[s] + q->offset;
        }
    /* metadata */
    char epoch[32], step[32];
    snprintf(epoch, sizeof epoch, "%lld", (long long)t->epoch);
    snprintf(step, sizeof step, "%lld", (long long)t->global_step);
    json_t *hp = json_object();
    for (int k = 0; k < def->n_hparams; k++) {
        char val[512];
        lg_hparam_format(def, t->cfg, k, val, sizeof val);
        json_object_set_new(hp, def->hparams[k].name, json_string(val));
    }
    json_t *groups = json_array();
    for (int g = 0; t->have_optim && g < t->optim.ngroups; g++)
        json_array_append_new(groups, json_pack("{s:o, s:o, s:o}", "lr", jnum(t->optim.groups[g].lr),
                                                "initial_lr", jnum(t->optim.groups[g].initial_lr),
                                                "weight_decay", jnum(t->optim.groups[g].weight_decay)));
    json_t *slots = json_array();
    for (int s = 0; s < nslots; s++)
        json_array_append_new(slots, json_string(lg_optim_slot_name(&t->optim, s)));
    json_t *opt = json_pack("{s:s, s:I, s:o, s:o}", "type", t->optim_name ? t->optim_name : "",
                            "step", (json_int_t)(t->have_optim ? t->optim.step : 0), "param_groups",
                            groups, "state_slots", slots);
    json_t *sch = t->have_sched
                      ? json_pack("{s:I, s:o, s:I, s:I, s:o}", "last_epoch",
                                  (json_int_t)t->sched.st.last_epoch, "best", jnum(t->sched.st.best),
                                  "num_bad_epochs", (json_int_t)t->sched.st.num_bad_epochs,
                                  "cooldown_counter", (json_int_t)t->sched.st.cooldown_counter,
                                  "plateau_scale", jnum(t->sched.st.plateau_scale))
                      : json_object();
    char rs[4][20];
    for (int i = 0; i < 4; i++)
        snprintf(rs[i], sizeof rs[i], "%016llx", (unsigned long long)t->rng.s[i]);
    json_t *rng = json_pack("{s:I, s:[s,s,s,s]}", "seed", (json_int_t)t->cfg->seed, "xoshiro256",
                            rs[0], rs[1], rs[2], rs[3]);
    json_t *loop = json_pack("{s:I, s:I, s:b, s:I, s:I}", "epoch", (json_int_t)t->epoch,
                             "batches_done", (json_int_t)t->batch, "epoch_done", t->epoch_done,
                             "global_step", (json_int_t)t->global_step, "limit_train_batches",
                             (json_int_t)t->n_train);
    json_t *mets = json_object();
    for (int i = 0; i < t->latest.n; i++)
        if (isfinite(t->latest.value[i]))
            json_object_set_new(mets, t->latest.name[i], json_real(t->latest.value[i]));
    char *vals[9] = {json_text(hp), json_text(opt), json_text(sch), json_text(rng),
                     json_text(loop), json_text(callbacks_json(t)), json_text(mets), NULL, NULL};
    vals[7] = scaler_json(t, &pst);
    const char *keys[] = {"format",      "lgen_version", "model",         "spec_path",
                          "spec_hash",   "epoch",        "global_step",   "hparams",
                          "optimizer",   "lr_schedulers", "rng",          "loop",
                          "callbacks",   "metrics",      "MixedPrecision"};
    const char *values[] = {CKPT_FORMAT,
                            def->version ? def->version : "",
                            def->name ? def->name : "",
                            def->spec_path ? def->spec_path : "",
                            def->spec_hash ? def->spec_hash : "",
                            epoch,
                            step,
                            vals[0],
                            vals[1],
                            vals[2],
                            vals[3],
                            vals[4],
                            vals[5],
                            vals[6],
                            vals[7]};
    int ok = 1;
    for (int i = 0; i < 7; i++)
        ok &= vals[i] != NULL;
    if (pst != LG_OK)
        st = pst;
    else if (!ok)
        st = lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    else
        st = lg_st_write(path, ts, nt, keys, values, vals[7] ? 15 : 14, t->err);
    for (int i = 0; i < 8; i++)
        free(vals[i]);
out:
    for (int k = 0; ints && k < n; k++)
        free(ints[k]);
    for (int i = 0; names && i < cap; i++)
        free(names[i]);
    free(ints);
    free(names);
    free(ts);
    if (st == LG_OK) {
        free(t->last_saved);
        t->last_saved = lg_tr_xstrdup(path);
    }
    return st;
}

static lg_status download_url(lg_trainer *t, const char *url, const char *dest) {
    CURL *c = curl_easy_init();
    if (!c)
        return lg_tr_fail(t, LG_ERR_NET, "cannot start libcurl");
    FILE *f = fopen(dest, "wb");
    if (!f) {
        curl_easy_cleanup(c);
        return lg_tr_fail(t, LG_ERR_IO, "cannot create '%s': %s", dest, strerror(errno));
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (fclose(f) != 0 && rc == CURLE_OK)
        return lg_tr_fail(t, LG_ERR_IO, "cannot write '%s': %s", dest, strerror(errno));
    if (rc != CURLE_OK) {
        unlink(dest);
        return lg_tr_fail(t, LG_ERR_NET, "cannot download checkpoint '%s': %s", url,
                    curl_easy_strerror(rc));
    }
    return LG_OK;
}

/* Resolves --ckpt_path: a path, a URL (downloaded), last or best (from the
 * newest version_N that has a last.ckpt). *out is malloc'd. */
lg_status lg_tr_resolve_ckpt(lg_trainer *t, const char *spec, char **out) {
    *out = NULL;
    if (strcmp(spec, "last") == 0 && !t->cfg->logger) {
        /* without a logger, checkpoints live in <default_root_dir>/checkpoints */
        char *plain = lg_tr_path_join(t->cfg->default_root_dir, "checkpoints/last.ckpt");
        if (plain && access(plain, R_OK) == 0) {
            *out = plain;
            return LG_OK;
        }
        free(plain);
    }
    if (strcmp(spec, "last") == 0 || strcmp(spec, "best") == 0) {
        char *root = lg_tr_path_join(t->cfg->default_root_dir, "lightning_logs");
        if (!root)
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        for (int64_t v = lg_tr_max_version(root); v >= 0; v--) {
            char rel[96];
            snprintf(rel, sizeof rel, "version_%lld/checkpoints/last.ckpt", (long long)v);
            char *p = lg_tr_path_join(root, rel);
            if (p && access(p, R_OK) == 0) {
                free(root);
                if (strcmp(spec, "last") == 0) {
                    *out = p;
                    return LG_OK;
                }
                lg_st_file f;
                lg_status st = lg_st_open(&f, p, t->err);
                free(p);
                if (st != LG_OK)
                    return st;
                json_t *cb = json_loads(lg_st_meta(&f, "callbacks") ? lg_st_meta(&f, "callbacks") : "", 0, NULL);
                const char *bp = json_string_value(
                    json_object_get(json_object_get(cb, "ModelCheckpoint"), "best_model_path"));
                if (bp && *bp)
                    *out = lg_tr_xstrdup(bp);
                json_decref(cb);
                lg_st_close(&f);
                if (!*out)
                    return lg_tr_fail(t, LG_ERR_ARG, "--ckpt_path best: the last run recorded no best "
                                "checkpoint (set --checkpoint.monitor)");
                return LG_OK;
            }
            free(p);
        }
        /* --logger false keeps checkpoints in <default_root_dir>/checkpoints */
        char *plain = lg_tr_path_join(t->cfg->default_root_dir, "checkpoints/last.ckpt");
        if (plain && strcmp(spec, "last") == 0 && access(plain, R_OK) == 0) {
            free(root);
            *out = plain;
            return LG_OK;
        }
        free(plain);
        lg_status st = lg_tr_fail(t, LG_ERR_ARG, "--ckpt_path %s: no checkpoint under '%s'", spec, root);
        free(root);
        return st;
    }
    if (strstr(spec, "://")) {
        char tmpl[] = "/tmp/lgen-ckpt-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0)
            return lg_tr_fail(t, LG_ERR_IO, "cannot create a temporary file: %s", strerror(errno));
        close(fd);
        lg_status st = download_url(t, spec, tmpl);
        if (st != LG_OK)
            return st;
        *out = lg_tr_xstrdup(tmpl);
        return LG_OK;
    }
    *out = lg_tr_xstrdup(spec);
    return LG_OK;
}

static lg_status bad_ckpt(lg_trainer *t, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lg_status bad_ckpt(lg_trainer *t, const char *path, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lg_tr_fail(t, LG_ERR_FORMAT, "cannot resume from '%s': %s", path, msg);
}

static json_t *meta_json(lg_trainer *t, lg_st_file *f, const char *key) {
    const char *s = lg_st_meta(f, key);
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    if (!j)
        bad_ckpt(t, f->path, "metadata '%s' is missing or not JSON", key);
    return j;
}

/* The scaler back on resume, when this run scales and the file has one
 * (Lightning: restore_precision_plugin_state). */
static lg_status scaler_restore(lg_trainer *t, lg_st_file *f, const char *path) {
    lg_cuda_scaler s;
    int active = 0;
    const char *text = lg_st_meta(f, "MixedPrecision");
    if (!text || !t->res || !t->res->scaler_get || !t->res->scaler_set)
        return LG_OK;
    lg_status st = t->res->scaler_get(&s, &active, t->err);
    if (st != LG_OK || !active)
        return st; /* a run that does not scale ignores it, as Lightning's 32-true does */
    json_t *j = json_loads(text, 0, NULL);
    json_t *sc = json_object_get(j, "scale"), *gt = json_object_get(j, "_growth_tracker");
    if (!json_is_number(sc) || !json_is_integer(gt)) {
        json_decref(j);
        return bad_ckpt(t, path, "its MixedPrecision state (GradScaler's) is malformed: '%.200s'", text);
    }
    s.scale = (float)json_number_value(sc);
    s.growth_tracker = (int32_t)json_integer_value(gt);
    if (json_is_number(json_object_get(j, "growth_factor")))
        s.growth_factor = (float)json_number_value(json_object_get(j, "growth_factor"));
    if (json_is_number(json_object_get(j, "backoff_factor")))
        s.backoff_factor = (float)json_number_value(json_object_get(j, "backoff_factor"));
    if (json_is_integer(json_object_get(j, "growth_interval")))
        s.growth_interval = (int32_t)json_integer_value(json_object_get(j, "growth_interval"));
    json_decref(j);
    /* GradScaler's own constraints */
    if (!(isfinite(s.scale) && s.scale > 0) || !(s.growth_factor > 1) ||
        !(s.backoff_factor > 0 && s.backoff_factor < 1) || s.growth_interval < 1 || s.growth_tracker < 0)
        return bad_ckpt(t, path,
                        "its MixedPrecision state (GradScaler's) is out of range: scale %g, growth_factor %g, "
                        "backoff_factor %g, growth_interval %d, _growth_tracker %d",
                        (double)s.scale, (double)s.growth_factor, (double)s.backoff_factor,
                        (int)s.growth_interval, (int)s.growth_tracker);
    return t->res->scaler_set(&s, t->err);
}

/* Loads weights (and, with full, everything that resumes training). */
lg_status lg_tr_ckpt_load(lg_trainer *t, const char *path, int full) {
    const lg_model_def *def = t->def;
    lg_st_file f;
    lg_status st = lg_st_open(&f, path, t->err);
    if (st != LG_OK)
        return st;
    const char *fmt = lg_st_meta(&f, "format"), *hash = lg_st_meta(&f, "spec_hash");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0) {
        st = bad_ckpt(t, path, "not an lgen checkpoint (metadata format is '%s', expected '%s')",
                      fmt ? fmt : "missing", CKPT_FORMAT);
        goto out;
    }
    if (!hash || !def->spec_hash || strcmp(hash, def->spec_hash) != 0) {
        const char *m = lg_st_meta(&f, "model"), *sp = lg_st_meta(&f, "spec_path");
        st = bad_ckpt(t, path,
                      "it was written by another spec ('%s', %s, sha256 %.12s...); this trainer "
                      "is '%s' (%s, sha256 %.12s...)",
                      m ? m : "?", sp ? sp : "?", hash ? hash : "?", def->name ? def->name : "?",
                      def->spec_path ? def->spec_path : "?",
                      def->spec_hash ? def->spec_hash : "?");
        goto out;
    }
    for (int k = 0; k < def->n_params; k++) {
        const lg_param *q = &def->params[k];
        lg_dtype dt;
        int nd;
        int64_t shape[8];
        const void *data;
        if ((st = lg_st_get(&f, q->name, &dt, &nd, shape, &data, t->err)) != LG_OK) {
            st = bad_ckpt(t, path, "tensor '%s' is missing", q->name);
            goto out;
        }
        int same = nd == q->ndim && dt == (q->is_int64 ? LG_DT_I64 : LG_DT_F32);
        for (int d = 0; same && d < nd; d++)
            same = shape[d] == q->shape[d];
        if (!same) {
            st = bad_ckpt(t, path, "tensor '%s' has the wrong dtype or shape", q->name);
            goto out;
        }
        if (q->is_int64) {
            for (size_t i = 0; i < q->numel; i++) {
                int64_t x;
                memcpy(&x, (const char *)data + 8 * i, 8);
                t->params[q->offset + i] = (float)x;
            }
        } else {
            memcpy(t->params + q->offset, data, q->numel * sizeof(float));
        }
    }
    if (!full)
        goto out;
    /* optimizer */
    for (int s = 0; s < t->optim.nslots; s++)
        for (int k = 0; k < def->n_params; k++) {
            const lg_param *q = &def->params[k];
            if (q->role != LG_PARAM_TRAIN)
                continue;
            char name[512];
            snprintf(name, sizeof name, "optimizer.state.%s.%s", q->name,
                     lg_optim_slot_name(&t->optim, s));
            lg_dtype dt;
            int nd;
            int64_t shape[8];
            const void *data;
            if (lg_st_get(&f, name, &dt, &nd, shape, &data, t->err) != LG_OK || dt != LG_DT_F32 ||
                nd != q->ndim) {
                st = bad_ckpt(t, path, "optimizer state '%s' is missing or malformed", name);
                goto out;
            }
            memcpy(t->optim.slot[s] + q->offset, data, q->numel * sizeof(float));
        }
    json_t *opt = meta_json(t, &f, "optimizer"), *sch = NULL, *rng = NULL, *loop = NULL,
           *cb = NULL;
    if (!opt) {
        st = LG_ERR_FORMAT;
        goto out;
    }
    json_t *groups = json_object_get(opt, "param_groups");
    const char *otype = json_string_value(json_object_get(opt, "type"));
    if (!otype || strcmp(otype, t->optim_name) != 0 ||
        (int)json_array_size(groups) != t->optim.ngroups) {
        st = bad_ckpt(t, path, "its optimizer (%s, %zu groups) differs from this run's (%s, %d)",
                      otype ? otype : "?", json_array_size(groups), t->optim_name,
                      t->optim.ngroups);
        json_decref(opt);
        goto out;
    }
    t->optim.step = json_integer_value(json_object_get(opt, "step"));
    for (int g = 0; g < t->optim.ngroups; g++) {
        json_t *gj = json_array_get(groups, (size_t)g);
        t->optim.groups[g].lr = jget(gj, "lr");
        t->optim.groups[g].initial_lr = jget(gj, "initial_lr");
        t->optim.groups[g].weight_decay = jget(gj, "weight_decay");
    }
    json_decref(opt);
    if (!(sch = meta_json(t, &f, "lr_schedulers")) || !(rng = meta_json(t, &f, "rng")) ||
        !(loop = meta_json(t, &f, "loop")) || !(cb = meta_json(t, &f, "callbacks"))) {
        st = LG_ERR_FORMAT;
        goto out2;
    }
    if (t->have_sched) {
        if (!json_object_get(sch, "last_epoch")) {
            st = bad_ckpt(t, path, "it has no scheduler state, but this run has a scheduler");
            goto out2;
        }
        t->sched.st.last_epoch = json_integer_value(json_object_get(sch, "last_epoch"));
        t->sched.st.best = jget(sch, "best");
        t->sched.st.num_bad_epochs = json_integer_value(json_object_get(sch, "num_bad_epochs"));
        t->sched.st.cooldown_counter = json_integer_value(json_object_get(sch, "cooldown_counter"));
        t->sched.st.plateau_scale = jget(sch, "plateau_scale");
    }
    json_t *st4 = json_object_get(rng, "xoshiro256");
    for (int i = 0; i < 4; i++) {
        const char *h = json_string_value(json_array_get(st4, (size_t)i));
        if (!h) {
            st = bad_ckpt(t, path, "the generator state is malformed");
            goto out2;
        }
        t->rng.s[i] = strtoull(h, NULL, 16);
    }
    t->epoch = json_integer_value(json_object_get(loop, "epoch"));
    t->batch = json_integer_value(json_object_get(loop, "batches_done"));
    t->epoch_done = json_is_true(json_object_get(loop, "epoch_done"));
    t->global_step = json_integer_value(json_object_get(loop, "global_step"));
    if (t->epoch < 0 || t->batch < 0 || t->global_step < 0 || t->optim.step < 0 ||
        !json_is_integer(json_object_get(loop, "epoch")) ||
        !json_is_integer(json_object_get(loop, "global_step"))) {
        st = bad_ckpt(t, path, "the loop position in its metadata is malformed");
        goto out2;
    }
    json_t *mc = json_object_get(cb, "ModelCheckpoint"), *es = json_object_get(cb, "EarlyStopping");
    const char *bp = json_string_value(json_object_get(mc, "best_model_path"));
    free(t->best_path);
    t->best_path = bp && *bp ? lg_tr_xstrdup(bp) : NULL;
    t->best_score = jget(mc, "best_model_score");
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(mc, "best_k_models"), key, val) {
        lg_topk *nb = realloc(t->best, (size_t)(t->n_best + 1) * sizeof *nb);
        if (!nb)
            break;
        t->best = nb;
        t->best[t->n_best].path = lg_tr_xstrdup(key);
        t->best[t->n_best].score = json_is_string(val) ? strtod(json_string_value(val), NULL)
                                                        : json_number_value(val);
        t->n_best++;
    }
    t->es_wait = json_integer_value(json_object_get(es, "wait_count"));
    t->es_best = jget(es, "best_score");
    t->es_has_best = json_is_true(json_object_get(es, "has_best"));
    st = scaler_restore(t, &f, path);
out2:
    json_decref(sch);
    json_decref(rng);
    json_decref(loop);
    json_decref(cb);
out:
    lg_st_close(&f);
    return st;
}
