/* loop.c — the Trainer's loops: fit, validate, test, predict.
 *
 * Input: the model def and a parsed lg_tconfig (flags.c). Output: trained
 * weights, lightning_logs/version_N/ (hparams.yaml, config.json,
 * metrics.csv, checkpoints/), predictions, and an exit status.
 *
 * The fit loop is Lightning's: per epoch, batches from the loader
 * (lgen/data.h) in an order fixed by (seed, epoch); train_step accumulates
 * gradients; every accumulate_grad_batches batches (and at the end of the
 * epoch) the gradients are averaged, clipped and the optimizer steps
 * (lgen/optim.h); validation runs on val_check_interval /
 * check_val_every_n_epoch; then ModelCheckpoint, EarlyStopping and the
 * scheduler. Everything that decides the next weights — parameters,
 * optimizer and scheduler state, the generator, the loop position — goes
 * into each checkpoint, and checkpoints are only taken at optimizer-step
 * boundaries, so a run resumed from any of them ends bit-identical to one
 * that never stopped.
 *
 * When the logger, the callbacks and checkpoints run is decided here; what
 * they do is in callbacks.c and state.c.
 *
 * On a GPU whose generated steps keep the weights and the optimizer on the
 * device (lgen/cuda_optim.h, t->res), the optimizer step is the device's;
 * the host's copies go up after the host set them (lg_tr_params_to_device)
 * and come back before it reads them (lg_tr_params_to_host: checkpoints,
 * the end of fit).
 *
 * Signals: SIGINT/SIGTERM set a flag; the loop saves last.ckpt at the next
 * step boundary and returns 130/143. A second signal exits at once (the
 * handler's _exit). The flag is the one global here: signal handlers have
 * no other way to talk to the loop.
 */
#include "internal.h"
#include "lgen/cuda.h"
#include "lgen/cuda_optim.h"
#include "lgen/detect.h"
#include "lgen/kernels.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>



/* ---- signals ------------------------------------------------------------- */

static volatile sig_atomic_t g_signal;

static void on_signal(int sig) {
    if (g_signal)
        _exit(128 + sig); /* second signal: at once */
    g_signal = sig;
}

static lg_status dataset_for(lg_trainer *t, const lg_split_spec *spec, lg_dataset **out) {
    for (int i = 0; i < t->n_dsc; i++)
        if (t->dsc[i].desc == spec->dataset && strcmp(t->dsc[i].source, spec->source) == 0) {
            *out = t->dsc[i].ds;
            return LG_OK;
        }
    if (t->n_dsc == MAX_DATASETS)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "more than %d dataset splits", MAX_DATASETS);
    int prepared = 0;
    for (int i = 0; i < t->n_dsc; i++)
        prepared |= t->dsc[i].desc == spec->dataset;
    lg_status st;
    if (!prepared && (st = lg_data_prepare(spec->dataset, &t->dcfg, t->err)) != LG_OK)
        return lg_error_wrap(t->err, "preparing dataset '%s'", spec->dataset->name);
    if ((st = lg_dataset_open(out, spec->dataset, spec->source, &t->dcfg, t->err)) != LG_OK)
        return lg_error_wrap(t->err, "opening split '%s' of dataset '%s'", spec->source,
                             spec->dataset->name);
    t->dsc[t->n_dsc].desc = spec->dataset;
    t->dsc[t->n_dsc].source = spec->source;
    t->dsc[t->n_dsc].ds = *out;
    t->n_dsc++;
    return LG_OK;
}

/* Opens the loader of `stage` reading `spec` (the train split for
 * overfit_batches' validation). */
static lg_status feed_open(lg_trainer *t, lg_feed *f, lg_stage stage, const lg_split_spec *spec,
                           int shuffle) {
    memset(f, 0, sizeof *f);
    f->stage = stage;
    f->spec = spec;
    f->opt = t->lopt;
    f->opt.shuffle = shuffle;
    if (stage != LG_STAGE_TRAIN)
        f->opt.drop_last = 0;
    /* The def's batch source serves the splits that name no dataset. */
    f->src = !spec->dataset && t->def->data ? t->def->data->source : NULL;
    if (!spec->dataset && !f->src)
        return lg_tr_fail(t, LG_ERR_ARG, "split '%s' names no dataset and the def has no batch source",
                          spec->name);
    int bs = f->opt.batch_size;
    if (f->src) {
        f->n_samples = f->src->n_samples(f->src->self, stage);
        f->n_batches = f->opt.drop_last ? f->n_samples / bs : (f->n_samples + bs - 1) / bs;
        size_t chw = (size_t)spec->channels * spec->height * spec->width, B = (size_t)spec->max_boxes;
        size_t bytes = bs * (chw * 4 + 4 + 8) + bs * B * (16 + 4 + 1 + 1) + bs * 4 + 64;
        f->buf = calloc(1, bytes);
        if (!f->buf)
            return lg_tr_fail(t, LG_ERR_NOMEM, "cannot allocate a batch of %d samples", bs);
        char *p = f->buf;
        lg_batch *b = &f->batch;
        b->batch_size = bs;
        b->channels = spec->channels;
        b->height = spec->height;
        b->width = spec->width;
        b->max_boxes = spec->max_boxes;
        b->index = (int64_t *)p, p += 8 * (size_t)bs;
        b->image = (float *)p, p += 4 * chw * bs;
        b->label = (int32_t *)p, p += 4 * (size_t)bs;
        if (B) {
            b->boxes = (float *)p, p += 16 * B * bs;
            b->box_label = (int32_t *)p, p += 4 * B * bs;
            b->box_count = (int32_t *)p, p += 4 * (size_t)bs;
            b->box_difficult = (uint8_t *)p, p += B * bs;
            b->box_mask = (uint8_t *)p, p += B * bs;
        }
        return LG_OK;
    }
    lg_dataset *ds;
    lg_status st = dataset_for(t, spec, &ds);
    if (st != LG_OK)
        return st;
    if ((st = lg_loader_init(&f->loader, spec, ds, &f->opt, (uint64_t)t->cfg->seed, t->err)) !=
        LG_OK)
        return lg_error_wrap(t->err, "loader of split '%s'", spec->name);
    f->have_loader = 1;
    f->n_samples = f->loader.n_samples;
    f->n_batches = f->loader.n_batches;
    return LG_OK;
}

static lg_status feed_start(lg_trainer *t, lg_feed *f, int64_t epoch, int64_t first) {
    f->epoch = epoch;
    f->next = first;
    if (f->have_loader)
        return lg_loader_start(&f->loader, epoch, first, t->err);
    return LG_OK;
}

static lg_status feed_next(lg_trainer *t, lg_feed *f, const lg_batch **out) {
    if (f->have_loader)
        return lg_loader_next(&f->loader, out, t->err);
    if (f->next >= f->n_batches) {
        *out = NULL;
        return LG_OK;
    }
    lg_batch *b = &f->batch;
    int64_t start = f->next * b->batch_size, left = f->n_samples - start;
    b->n = (int)(left < b->batch_size ? left : b->batch_size);
    b->batch_index = f->next;
    lg_status st = f->src->fill(f->src->self, f->stage, f->epoch, f->next, (uint64_t)t->cfg->seed,
                                &f->opt, b, t->err);
    if (st != LG_OK)
        return st;
    f->next++;
    *out = b;
    return LG_OK;
}

static void feed_close(lg_feed *f) {
    if (f->have_loader)
        lg_loader_free(&f->loader);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

static int64_t apply_limit(int64_t n, const lg_limit *l) {
    if (l->is_frac)
        return (int64_t)((double)n * l->frac);
    return l->n < n ? l->n : n;
}

static void step_io(lg_trainer *t, lg_step_io *io, int training) {
    memset(io, 0, sizeof *io);
    io->ctx = &t->ctx;
    io->params = t->params;
    io->grads = t->grads;
    io->arena = t->arena;
    io->hp = t->cfg->hp;
    io->training = training;
    io->seed = (uint64_t)t->cfg->seed;
    io->global_step = t->global_step;
    io->epoch = t->epoch;
    io->logs = t->logbuf;
    io->outputs = t->outbuf;
}

static lg_status step_failed(lg_trainer *t, const char *what, lg_status st) {
    if (st == LG_OK)
        st = LG_ERR_ARG;
    if (!t->err->msg[0])
        lg_error_set(t->err, st, "failed");
    return lg_error_wrap(t->err, "%s at step %lld (epoch %lld)", what, (long long)t->global_step,
                         (long long)t->epoch);
}

/* Runs n batches of an evaluation loop, averaging each logged value over the
 * samples (Lightning's on_epoch mean weighted by batch size). */
static lg_status run_eval(lg_trainer *t, lg_feed *f, int64_t n, lg_stage stage, const char *desc,
                          double *means) {
    const lg_model_def *def = t->def;
    int nl = def->n_logs[stage];
    lg_step_fn fn = def->eval_step[stage];
    double sums[MAX_METRICS] = {0};
    int64_t count = 0;
    if (!fn)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "the spec has no %s step",
                    stage == LG_STAGE_TEST ? "test" : "validate");
    lg_status st = feed_start(t, f, t->epoch, 0);
    if (st != LG_OK)
        return st;
    if (def->eval_begin && (st = def->eval_begin(stage, t->err)) != LG_OK)
        return st;
    lg_progress_begin(&t->bar, desc, n);
    for (int64_t i = 0; i < n; i++) {
        const lg_batch *b;
        if ((st = feed_next(t, f, &b)) != LG_OK)
            return st;
        if (!b)
            break;
        lg_step_io io;
        step_io(t, &io, 0);
        for (int k = 0; k < nl; k++)
            t->logbuf[k] = 0;
        if ((st = fn(&io, b)) != LG_OK)
            return step_failed(t, desc, st);
        for (int k = 0; k < nl && k < MAX_METRICS; k++)
            sums[k] += (double)t->logbuf[k] * b->n;
        count += b->n;
        lg_progress_update(&t->bar, i + 1, NULL, 0);
        if (g_signal)
            break;
    }
    for (int k = 0; k < nl && k < MAX_METRICS; k++)
        means[k] = count ? sums[k] / (double)count : NAN;
    /* epoch-level metrics (VOC mAP) replace their means */
    if (def->eval_end && (st = def->eval_end(stage, means, t->err)) != LG_OK)
        return st;
    size_t o = 0;
    for (int k = 0; k < nl && k < MAX_METRICS; k++) {
        if (o < sizeof t->bar.extra)
            o += (size_t)snprintf(t->bar.extra + o, sizeof t->bar.extra - o, "%s%s=%.4g",
                                  k ? ", " : "", def->logs[stage][k].name, means[k]);
    }
    lg_progress_end(&t->bar);
    return LG_OK;
}

static void print_results(lg_trainer *t, lg_stage stage, const double *means) {
    const lg_model_def *def = t->def;
    const char *title = stage == LG_STAGE_TEST ? "Test metric" : "Validate metric";
    const char *rule = "────────────────────────────────────────────────────────────";
    printf("%s\n%25s %28s\n%s\n", rule, title, "DataLoader 0", rule);
    for (int k = 0; k < def->n_logs[stage]; k++)
        printf("%25s %28.9g\n", def->logs[stage][k].name, means[k]);
    printf("%s\n", rule);
    fflush(stdout);
}

/* Validation inside fit: metrics, the log row, the monitors. */
static lg_status validate_in_fit(lg_trainer *t, lg_feed *val) {
    double means[MAX_METRICS];
    lg_status st = run_eval(t, val, t->n_val, LG_STAGE_VALIDATE, "Validation", means);
    if (st != LG_OK)
        return st;
    const lg_model_def *def = t->def;
    int nl = def->n_logs[LG_STAGE_VALIDATE];
    const char *names[MAX_METRICS];
    for (int k = 0; k < nl; k++) {
        names[k] = def->logs[LG_STAGE_VALIDATE][k].name;
        lg_tr_metric_set(&t->latest, names[k], means[k]);
    }
    lg_tr_log_row(t, t->global_step > 0 ? t->global_step - 1 : 0, nl, names, means);
    if (t->have_sched && t->sched.cfg.kind == LG_SCHED_PLATEAU) {
        double v;
        if (!lg_tr_metric_get(&t->latest, t->sched_monitor, &v))
            return lg_tr_fail(t, LG_ERR_ARG, "reduce_on_plateau monitors '%s', which is not logged",
                        t->sched_monitor);
        if ((st = lg_sched_step(&t->sched, &t->optim, v, t->err)) != LG_OK)
            return st;
    }
    lg_tr_early_stopping_check(t);
    return LG_OK;
}

static void prog_bar_text(lg_trainer *t, char *buf, size_t n) {
    const lg_model_def *def = t->def;
    size_t o = 0;
    buf[0] = '\0';
    for (int s = LG_STAGE_TRAIN; s <= LG_STAGE_VALIDATE; s++)
        for (int k = 0; k < def->n_logs[s]; k++) {
            const lg_metric *m = &def->logs[s][k];
            char name[128];
            double v;
            if (!(m->flags & LG_LOG_PROG_BAR))
                continue;
            if (s == LG_STAGE_TRAIN)
                lg_tr_train_metric_name(m, !(m->flags & LG_LOG_STEP), name, sizeof name);
            else
                snprintf(name, sizeof name, "%s", m->name);
            if (!lg_tr_metric_get(&t->latest, name, &v))
                continue;
            int w = snprintf(buf + o, n - o, "%s%s=%.3g", o ? ", " : "", name, v);
            if (w < 0 || (size_t)w >= n - o)
                return;
            o += (size_t)w;
        }
}

/* ModelSummary: the parameter table (PyTorch names and shapes) and counts. */
static void print_summary(const lg_model_def *def) {
    size_t train = 0, other = 0;
    int w = 4;
    for (int k = 0; k < def->n_params; k++) {
        int l = (int)strlen(def->params[k].name);
        w = l > w ? l : w;
    }
    if (w > 60)
        w = 60;
    printf("   | %-*s | %-18s | %-6s | Params\n", w, "Name", "Shape", "Role");
    for (int k = 0; k < def->n_params; k++) {
        const lg_param *q = &def->params[k];
        char shape[64] = "[";
        for (int d = 0; d < q->ndim; d++) {
            size_t l = strlen(shape);
            snprintf(shape + l, sizeof shape - l, "%s%lld", d ? ", " : "", (long long)q->shape[d]);
        }
        strncat(shape, "]", sizeof shape - strlen(shape) - 1);
        printf("%-2d | %-*s | %-18s | %-6s | %zu\n", k, w, q->name, shape,
               q->role == LG_PARAM_TRAIN ? "train" : "buffer", q->numel);
        if (q->role == LG_PARAM_TRAIN)
            train += q->numel;
        else
            other += q->numel;
    }
    printf("%-10zu Trainable params\n%-10zu Non-trainable params\n%-10zu Total params\n"
           "%-10.3f Total estimated model params size (MB)\n",
           train, other, train + other, (double)(train + other) * 4 / 1e6);
}

static lg_status stop_on_signal(lg_trainer *t, int *status) {
    int sig = g_signal;
    const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    if (t->ckdir && !t->cfg->fast_dev_run) {
        lg_status st = lg_tr_save_last(t);
        if (st != LG_OK)
            return st;
        printf("\nReceived %s: saved %s (epoch %lld, step %lld); resume with --ckpt_path last\n",
               name, t->last_saved, (long long)t->epoch, (long long)t->global_step);
    } else {
        printf("\nReceived %s: stopping\n", name);
    }
    fflush(stdout);
    *status = 128 + sig;
    return LG_OK;
}

static lg_status fit(lg_trainer *t, int *status) {
    const lg_model_def *def = t->def;
    lg_tconfig *c = t->cfg;
    const lg_data_def *dd = def->data;
    lg_status st;
    lg_feed train, val;
    const int lr_per_step = strcmp(c->lr_logging_interval, "epoch") != 0;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    if (!def->train_step)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "the spec has no train step");
    if (!dd || !dd->split[LG_STAGE_TRAIN])
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "the spec's data block has no train split");
    int overfit = c->overfit_batches.is_frac ? c->overfit_batches.frac > 0 : c->overfit_batches.n > 0;
    if ((st = feed_open(t, &train, LG_STAGE_TRAIN, dd->split[LG_STAGE_TRAIN],
                        overfit ? 0 : t->lopt.shuffle)) != LG_OK)
        goto out;
    t->n_train = apply_limit(train.n_batches, overfit ? &c->overfit_batches : &c->limit_train_batches);
    int64_t fdr = c->fast_dev_run;
    if (fdr && t->n_train > fdr)
        t->n_train = fdr;
    int val_enabled = def->eval_step[LG_STAGE_VALIDATE] &&
                      (overfit || dd->split[LG_STAGE_VALIDATE]) &&
                      !(c->limit_val_batches.is_frac ? c->limit_val_batches.frac == 0
                                                     : c->limit_val_batches.n == 0);
    if (val_enabled) {
        if (overfit)
            st = feed_open(t, &val, LG_STAGE_TRAIN, dd->split[LG_STAGE_TRAIN], 0);
        else
            st = feed_open(t, &val, LG_STAGE_VALIDATE, dd->split[LG_STAGE_VALIDATE], 0);
        if (st != LG_OK)
            goto out;
        t->n_val = overfit ? t->n_train : apply_limit(val.n_batches, &c->limit_val_batches);
        if (fdr && t->n_val > fdr)
            t->n_val = fdr;
        val_enabled = t->n_val > 0;
    }
    if (t->n_train <= 0) {
        printf("no training batches (the loader has %lld; see --limit_train_batches): "
               "nothing to fit\n",
               (long long)train.n_batches);
        goto out;
    }
    /* When validation runs. */
    t->val_every = t->n_train;
    if (val_enabled && !fdr) {
        const lg_limit *vi = &c->val_check_interval;
        if (vi->is_frac)
            t->val_every = (int64_t)((double)t->n_train * vi->frac);
        else
            t->val_every = vi->n;
        if (t->val_every < 1)
            t->val_every = 1;
        if (!vi->is_frac && c->check_val_every_n_epoch && vi->n > t->n_train) {
            st = lg_tr_usage(t, "--val_check_interval (%lld) must be at most the number of training "
                      "batches (%lld); to validate by total batches set "
                      "--check_val_every_n_epoch none",
                      (long long)vi->n, (long long)t->n_train);
            goto out;
        }
    }
    int64_t accum = c->accumulate_grad_batches;
    int64_t steps_per_epoch = (t->n_train + accum - 1) / accum;
    int64_t max_epochs = c->max_epochs, max_steps = c->max_steps;
    if (fdr) {
        max_epochs = 1;
        max_steps = -1;
    } else if (max_epochs < 0 && max_steps < 0) {
        max_epochs = 1000;
    }
    lg_fit_info fi = {max_epochs, max_steps, steps_per_epoch,
                      max_steps >= 0 ? (max_epochs >= 0 && max_epochs * steps_per_epoch < max_steps
                                            ? max_epochs * steps_per_epoch
                                            : max_steps)
                                     : max_epochs * steps_per_epoch};
    if ((st = lg_tr_setup_optimizer(t, &fi)) != LG_OK)
        goto out;
    if ((st = lg_tr_check_monitor(t, "checkpoint.monitor", c->ck_monitor)) != LG_OK ||
        (st = lg_tr_check_monitor(t, "early_stopping.monitor", c->es_monitor)) != LG_OK)
        goto out;
    /* Logger columns. */
    if (c->logger && !fdr) {
        const char *cols[MAX_METRICS];
        static char store[MAX_METRICS][128];
        int n = lg_tr_known_metrics(t, cols, store, MAX_METRICS);
        if ((st = lg_tr_logger_open(t, cols, n)) != LG_OK)
            goto out;
    }
    if (c->ckpt_path[0]) {
        char *path;
        if ((st = lg_tr_resolve_ckpt(t, c->ckpt_path, &path)) != LG_OK)
            goto out;
        st = lg_tr_ckpt_load(t, path, 1);
        if (strstr(c->ckpt_path, "://"))
            unlink(path); /* the downloaded copy */
        if (st == LG_OK) {
            printf("Restored all states from the checkpoint at %s (epoch %lld, step %lld)\n",
                   strstr(c->ckpt_path, "://") ? c->ckpt_path : path,
                   (long long)t->epoch, (long long)t->global_step);
            if (t->epoch_done) {
                t->epoch++;
                t->batch = 0;
                t->epoch_done = 0;
            }
        }
        free(path);
        if (st != LG_OK)
            goto out;
    }
    if (!t->ckdir && c->enable_checkpointing && !fdr && t->vdir)
        t->ckdir = lg_tr_path_join(t->vdir, "checkpoints");
    if (!c->logger && c->enable_checkpointing && !fdr) {
        /* Checkpoints without a logger go to default_root_dir/checkpoints. */
        t->ckdir = lg_tr_path_join(c->default_root_dir, "checkpoints");
    }
    if (c->enable_model_summary && !fdr)
        print_summary(def);
    /* GPU steps that keep the weights on the device start from the host's */
    if ((st = lg_tr_params_to_device(t)) != LG_OK)
        goto out;
    /* Sanity check. */
    if (val_enabled && c->num_sanity_val_steps != 0 && !fdr) {
        double means[MAX_METRICS];
        int64_t n = c->num_sanity_val_steps < 0 || c->num_sanity_val_steps > t->n_val
                        ? t->n_val
                        : c->num_sanity_val_steps;
        if ((st = run_eval(t, &val, n, LG_STAGE_VALIDATE, "Sanity Checking", means)) != LG_OK)
            goto out;
    }
    double lr_now[LG_MAX_GROUPS];
    char prog[512];
    for (;; t->epoch++, t->batch = 0) {
        if (max_epochs >= 0 && t->epoch >= max_epochs)
            break;
        if (max_steps >= 0 && t->global_step >= max_steps)
            break;
        if (t->should_stop && t->epoch >= c->min_epochs)
            break;
        t->epoch_done = 0;
        int val_epoch = val_enabled && (c->check_val_every_n_epoch == 0 ||
                                        (t->epoch + 1) % c->check_val_every_n_epoch == 0);
        if ((st = feed_start(t, &train, t->epoch, t->batch)) != LG_OK)
            goto out;
        char desc[64];
        snprintf(desc, sizeof desc, "Epoch %lld", (long long)t->epoch);
        lg_progress_begin(&t->bar, desc, t->n_train);
        lg_progress_update(&t->bar, t->batch, NULL, 0);
        int nl = def->n_logs[LG_STAGE_TRAIN];
        double ep_sum[MAX_METRICS] = {0};
        int64_t ep_count = 0, in_accum = 0;
        int stop_now = 0;
        int overflow = 0; /* a micro-batch of this optimizer step asked to skip it */
        while (t->batch < t->n_train) {
            const lg_batch *b;
            if ((st = feed_next(t, &train, &b)) != LG_OK)
                goto out;
            if (!b)
                break;
            lg_step_io io;
            step_io(t, &io, 1);
            for (int k = 0; k < nl; k++)
                t->logbuf[k] = 0;
            if ((st = def->train_step(&io, b)) != LG_OK) {
                st = step_failed(t, "train_step", st);
                goto out;
            }
            overflow |= io.skip_step;
            t->res_dirty = t->res != NULL;
            if (!isfinite(io.loss)) {
                lg_progress_end(&t->bar);
                st = lg_tr_fail(t, LG_ERR_NUMERIC,
                          "the loss is %s at step %lld (epoch %lld, batch %lld); training "
                          "stopped; %s%s",
                          isnan(io.loss) ? "nan" : "infinite", (long long)t->global_step,
                          (long long)t->epoch, (long long)t->batch,
                          t->last_saved ? "the last good checkpoint is " : "no checkpoint was saved yet",
                          t->last_saved ? t->last_saved : "");
                goto out;
            }
            for (int k = 0; k < nl && k < MAX_METRICS; k++) {
                const lg_metric *m = &def->logs[LG_STAGE_TRAIN][k];
                char name[128];
                if (m->flags & LG_LOG_EPOCH)
                    ep_sum[k] += (double)t->logbuf[k] * b->n;
                lg_tr_train_metric_name(m, 0, name, sizeof name);
                lg_tr_metric_set(&t->latest, name, t->logbuf[k]);
            }
            ep_count += b->n;
            t->batch++;
            in_accum++;
            if (in_accum == accum || t->batch == t->n_train) {
                for (int g = 0; g < t->optim.ngroups && g < LG_MAX_GROUPS; g++)
                    lr_now[g] = t->optim.groups[g].lr;
                if (t->res) {
                    /* parameters, gradients and state on the device: the
                     * same scaling, clipping, skip and update there */
                    int clip = c->gradient_clip_val <= 0 ? LG_CUDA_CLIP_NONE
                               : strcmp(c->gradient_clip_algorithm, "value") == 0 ? LG_CUDA_CLIP_VALUE
                                                                                    : LG_CUDA_CLIP_NORM;
                    int skipped = 0;
                    if ((st = t->res->optimizer_step(&t->optim, 1.0f / (float)accum, clip, c->gradient_clip_val,
                                                     overflow, &skipped, t->err)) != LG_OK) {
                        st = step_failed(t, "the optimizer step on the GPU", st);
                        goto out;
                    }
                } else {
                    /* Lightning scales each loss by 1/accumulate_grad_batches. */
                    if (accum > 1) {
                        float s = 1.0f / (float)accum;
                        for (size_t i = 0; i < def->n_train; i++)
                            t->grads[i] *= s;
                    }
                    if (c->gradient_clip_val > 0 && !overflow) {
                        if (strcmp(c->gradient_clip_algorithm, "value") == 0)
                            st = lg_clip_grad_value(&t->ctx, t->grads, def->n_train, c->gradient_clip_val);
                        else
                            st = lg_clip_grad_norm(&t->ctx, t->grads, def->n_train,
                                                   c->gradient_clip_val, 2.0, NULL);
                        if (st != LG_OK)
                            goto out;
                    }
                    /* GradScaler: a step whose gradients overflowed is skipped */
                    if (!overflow && (st = lg_optim_step(&t->optim, &t->ctx, t->params, t->grads)) != LG_OK)
                        goto out;
                    memset(t->grads, 0, def->n_train * sizeof(float)); /* buffers have none */
                }
                overflow = 0;
                in_accum = 0;
                t->global_step++;
                if (t->have_sched && t->sched_per_step && t->sched.cfg.kind != LG_SCHED_PLATEAU &&
                    (st = lg_sched_step(&t->sched, &t->optim, 0, t->err)) != LG_OK)
                    goto out;
                for (int g = 0; g < t->optim.ngroups; g++) {
                    char name[64];
                    lg_tr_lr_name(t, g, name, sizeof name);
                    lg_tr_metric_set(&t->latest, name, lr_now[g]);
                }
                if (t->global_step % c->log_every_n_steps == 0) {
                    const char *names[MAX_METRICS];
                    double vals[MAX_METRICS];
                    char store[MAX_METRICS][128];
                    int n = 0;
                    for (int k = 0; k < nl && n < MAX_METRICS - LG_MAX_GROUPS; k++) {
                        const lg_metric *m = &def->logs[LG_STAGE_TRAIN][k];
                        if (!(m->flags & LG_LOG_STEP))
                            continue;
                        lg_tr_train_metric_name(m, 0, store[n], 128);
                        names[n] = store[n];
                        vals[n++] = t->logbuf[k];
                    }
                    for (int g = 0; lr_per_step && g < t->optim.ngroups; g++) {
                        lg_tr_lr_name(t, g, store[n], 128);
                        names[n] = store[n];
                        vals[n++] = lr_now[g];
                    }
                    lg_tr_log_row(t, t->global_step - 1, n, names, vals);
                }
                if (max_steps >= 0 && t->global_step >= max_steps)
                    stop_now = 1;
                if (c->ck_every_n_train_steps > 0 &&
                    t->global_step % c->ck_every_n_train_steps == 0 &&
                    (st = lg_tr_checkpoint_now(t)) != LG_OK)
                    goto out;
            }
            prog_bar_text(t, prog, sizeof prog);
            lg_progress_update(&t->bar, t->batch, prog, 0);
            if (val_epoch && t->batch < t->n_train &&
                (c->check_val_every_n_epoch
                     ? t->batch % t->val_every == 0
                     : (t->epoch * t->n_train + t->batch) % t->val_every == 0)) {
                if ((st = validate_in_fit(t, &val)) != LG_OK)
                    goto out;
                if (t->should_stop && t->epoch + 1 >= c->min_epochs)
                    stop_now = 1;
            }
            if (g_signal && in_accum == 0) {
                lg_progress_end(&t->bar);
                st = stop_on_signal(t, status);
                goto out;
            }
            if (stop_now)
                break;
        }
        int finished = t->batch >= t->n_train;
        if (val_epoch && finished &&
            (c->check_val_every_n_epoch || (t->epoch * t->n_train + t->batch) % t->val_every == 0)) {
            prog_bar_text(t, prog, sizeof prog);
            lg_progress_update(&t->bar, t->batch, prog, 1);
            lg_progress_end(&t->bar);
            if ((st = validate_in_fit(t, &val)) != LG_OK)
                goto out;
        } else {
            prog_bar_text(t, prog, sizeof prog);
            lg_progress_update(&t->bar, t->batch, prog, 1);
            lg_progress_end(&t->bar);
        }
        if (!finished) {
            /* max_steps or early stopping in the middle of the epoch */
            if (t->ckdir && c->enable_checkpointing && c->ck_save_last &&
                (st = lg_tr_save_last(t)) != LG_OK)
                goto out;
            break;
        }
        /* Epoch end: epoch-level train metrics, the scheduler, checkpoints. */
        {
            const char *names[MAX_METRICS];
            double vals[MAX_METRICS];
            char store[MAX_METRICS][128];
            int n = 0;
            for (int k = 0; k < nl && k < MAX_METRICS; k++) {
                const lg_metric *m = &def->logs[LG_STAGE_TRAIN][k];
                if (!(m->flags & LG_LOG_EPOCH))
                    continue;
                lg_tr_train_metric_name(m, 1, store[n], 128);
                names[n] = store[n];
                vals[n] = ep_count ? ep_sum[k] / (double)ep_count : NAN;
                lg_tr_metric_set(&t->latest, names[n], vals[n]);
                n++;
            }
            /* LearningRateMonitor(logging_interval="epoch"): the rate the
             * epoch ended with, once */
            for (int g = 0; !lr_per_step && t->have_optim && g < t->optim.ngroups && n < MAX_METRICS;
                 g++) {
                lg_tr_lr_name(t, g, store[n], 128);
                names[n] = store[n];
                vals[n++] = t->optim.groups[g].lr;
            }
            if (n)
                lg_tr_log_row(t, t->global_step - 1, n, names, vals);
        }
        t->epoch_done = 1;
        if (t->have_sched && !t->sched_per_step && t->sched.cfg.kind != LG_SCHED_PLATEAU &&
            (st = lg_sched_step(&t->sched, &t->optim, 0, t->err)) != LG_OK)
            goto out;
        if (c->ck_every_n_epochs > 0 && (t->epoch + 1) % c->ck_every_n_epochs == 0 &&
            (st = lg_tr_checkpoint_now(t)) != LG_OK)
            goto out;
        if (stop_now)
            break;
        if (g_signal) {
            st = stop_on_signal(t, status);
            goto out;
        }
        if (t->should_stop && t->epoch + 1 >= c->min_epochs)
            break;
    }
    if ((st = lg_tr_params_to_host(t)) != LG_OK) /* the trained weights, on the host too */
        goto out;
    if (!fdr) {
        /* Lightning's closing line names what ended the run. */
        if (t->should_stop)
            printf("`Trainer.fit` stopped: early stopping (%s) after epoch %lld.\n", c->es_monitor,
                   (long long)t->epoch);
        else if (max_steps >= 0 && t->global_step >= max_steps)
            printf("`Trainer.fit` stopped: `max_steps=%lld` reached.\n", (long long)max_steps);
        else
            printf("`Trainer.fit` stopped: `max_epochs=%lld` reached.\n", (long long)max_epochs);
    }
    if (fdr)
        printf("fast_dev_run: ran %lld training batch(es)%s; no logs or checkpoints were written\n",
               (long long)t->n_train, val_enabled ? " and validation" : "");
    else if (t->vdir)
        printf("fit done: %lld step(s); logs in %s%s%s\n", (long long)t->global_step,
               t->vdir, t->best_path ? "; best checkpoint " : "",
               t->best_path ? t->best_path : "");
out:
    feed_close(&train);
    feed_close(&val);
    return st;
}

lg_status lg_tr_params_to_device(lg_trainer *t) {
    if (!t->res)
        return LG_OK;
    t->res_dirty = 0;
    return t->res->to_device(t->params, t->have_optim ? &t->optim : NULL, t->err);
}

lg_status lg_tr_params_to_host(lg_trainer *t) {
    if (!t->res || !t->res_dirty)
        return LG_OK;
    t->res_dirty = 0;
    return t->res->to_host(t->params, t->have_optim ? &t->optim : NULL, t->err);
}

static lg_status load_for_eval(lg_trainer *t) {
    if (!t->cfg->ckpt_path[0]) {
        printf("no --ckpt_path given: using the %s weights\n",
               t->cfg->init_from[0] ? "--init_from" : "initial (untrained)");
        return lg_tr_params_to_device(t);
    }
    char *path;
    lg_status st = lg_tr_resolve_ckpt(t, t->cfg->ckpt_path, &path);
    if (st != LG_OK)
        return st;
    st = lg_tr_ckpt_load(t, path, 0);
    if (strstr(t->cfg->ckpt_path, "://"))
        unlink(path); /* the downloaded copy */
    if (st == LG_OK)
        printf("Loaded model weights from the checkpoint at %s\n",
               strstr(t->cfg->ckpt_path, "://") ? t->cfg->ckpt_path : path);
    free(path);
    return st == LG_OK ? lg_tr_params_to_device(t) : st;
}

static lg_status evaluate(lg_trainer *t, lg_stage stage) {
    const lg_model_def *def = t->def;
    lg_tconfig *c = t->cfg;
    const lg_split_spec *spec = def->data ? def->data->split[stage] : NULL;
    if (!spec)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "the spec's data block has no %s split",
                    stage == LG_STAGE_TEST ? "test" : "val");
    lg_status st;
    if (c->logger && !c->fast_dev_run) {
        const char *cols[MAX_METRICS];
        int n = 0;
        for (int k = 0; k < def->n_logs[stage] && n < MAX_METRICS; k++)
            cols[n++] = def->logs[stage][k].name;
        if ((st = lg_tr_logger_open(t, cols, n)) != LG_OK)
            return st;
    }
    if ((st = load_for_eval(t)) != LG_OK)
        return st;
    lg_feed f;
    if ((st = feed_open(t, &f, stage, spec, 0)) != LG_OK) {
        feed_close(&f);
        return st;
    }
    int64_t n = apply_limit(f.n_batches,
                            stage == LG_STAGE_TEST ? &c->limit_test_batches : &c->limit_val_batches);
    if (c->fast_dev_run && n > c->fast_dev_run)
        n = c->fast_dev_run;
    double means[MAX_METRICS];
    st = run_eval(t, &f, n, stage, stage == LG_STAGE_TEST ? "Testing" : "Validation", means);
    feed_close(&f);
    if (st != LG_OK)
        return st;
    const char *names[MAX_METRICS];
    for (int k = 0; k < def->n_logs[stage]; k++)
        names[k] = def->logs[stage][k].name;
    lg_tr_log_row(t, 0, def->n_logs[stage], names, means);
    print_results(t, stage, means);
    return LG_OK;
}

/* --predict_input: the given images (files, or every image of a directory)
 * become a transient image_folder dataset under dir/predict_input/all/, one
 * symlink per image named by its position, read with the transforms and
 * shape of the spec's predict (or test) split. files[i] is the i-th image. */
typedef struct predict_files {
    char **files;
    int64_t n;
    lg_dataset_desc desc;
    lg_split_desc split;
    lg_split_spec spec;
    const char *paths[1];
    char *dir;
} predict_files;

static int image_name(const char *p) {
    const char *dot = strrchr(p, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static lg_status add_file(lg_trainer *t, predict_files *pf, const char *path) {
    char *real = realpath(path, NULL);
    if (!real)
        return lg_tr_fail(t, LG_ERR_IO, "--predict_input '%s': %s", path, strerror(errno));
    char **nv = realloc(pf->files, (size_t)(pf->n + 1) * sizeof *nv);
    if (!nv) {
        free(real);
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    }
    pf->files = nv;
    pf->files[pf->n++] = real;
    return LG_OK;
}

static lg_status predict_files_open(lg_trainer *t, predict_files *pf, const lg_split_spec *like,
                                    const char *base) {
    lg_status st;
    char *list = lg_tr_xstrdup(t->cfg->predict_input), *save = NULL;
    if (!list)
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    for (char *item = strtok_r(list, "\n", &save); item; item = strtok_r(NULL, "\n", &save)) {
        struct stat sb;
        if (stat(item, &sb) != 0) {
            st = lg_tr_fail(t, LG_ERR_IO, "--predict_input '%s': %s", item, strerror(errno));
            free(list);
            return st;
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (!image_name(item)) {
                st = lg_tr_fail(t, LG_ERR_ARG, "--predict_input '%s' is not a .png or .jpg file", item);
                free(list);
                return st;
            }
            if ((st = add_file(t, pf, item)) != LG_OK) {
                free(list);
                return st;
            }
            continue;
        }
        DIR *d = opendir(item);
        struct dirent *e;
        char **names = NULL;
        size_t nn = 0;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.' || !image_name(e->d_name))
                continue;
            char **nv = realloc(names, (nn + 1) * sizeof *nv);
            if (!nv)
                break;
            names = nv;
            names[nn++] = lg_tr_path_join(item, e->d_name);
        }
        if (d)
            closedir(d);
        if (nn)
            qsort(names, nn, sizeof *names, cmp_cstr);
        st = LG_OK;
        for (size_t i = 0; i < nn; i++) {
            if (st == LG_OK && names[i])
                st = add_file(t, pf, names[i]);
            free(names[i]);
        }
        free(names);
        if (st != LG_OK) {
            free(list);
            return st;
        }
    }
    free(list);
    if (pf->n == 0)
        return lg_tr_fail(t, LG_ERR_ARG, "--predict_input names no .png or .jpg images");
    pf->dir = lg_tr_path_join(base, "predict_input/all");
    if (!pf->dir || (st = lg_tr_mkdir_p(t, pf->dir)) != LG_OK)
        return pf->dir ? st : lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < pf->n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%08lld%s", (long long)i, strrchr(pf->files[i], '.'));
        char *link = lg_tr_path_join(pf->dir, name);
        if (!link)
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        unlink(link);
        if (symlink(pf->files[i], link) != 0) {
            st = lg_tr_fail(t, LG_ERR_IO, "cannot link '%s': %s", link, strerror(errno));
            free(link);
            return st;
        }
        free(link);
    }
    pf->paths[0] = ".";
    pf->split = (lg_split_desc){"predict", pf->paths, 1, NULL};
    memset(&pf->desc, 0, sizeof pf->desc);
    pf->desc.name = "predict_input";
    pf->desc.format = LG_FORMAT_IMAGE_FOLDER;
    pf->desc.args.decode_channels = like->channels == 1 ? 1 : 3;
    pf->desc.splits = &pf->split;
    pf->desc.n_splits = 1;
    pf->spec = *like;
    pf->spec.name = "predict";
    pf->spec.dataset = &pf->desc;
    pf->spec.source = "predict";
    pf->spec.lo = 0;
    pf->spec.hi = 1;
    pf->spec.split_seed = 0;
    pf->spec.max_boxes = 0;
    t->dcfg.data_dir = base; /* the transient dataset lives under base */
    return LG_OK;
}

static void predict_files_free(predict_files *pf) {
    for (int64_t i = 0; i < pf->n; i++)
        free(pf->files[i]);
    free(pf->files);
    free(pf->dir);
}

/* predict of a detector (def->predict_detections = D): every image's rows
 * (x1, y1, x2, y2, score, label) gathered for one JSON file, and a PNG copy
 * of the network's input with the boxes and labels drawn. */
typedef struct det_out {
    int D;
    int64_t n, cap;
    float *boxes, *scores;
    int *labels, *count;
    char **names;
    char *png_dir;
    const float *mean, *std; /* the split's normalize, undone for the PNGs */
    unsigned char *rgb;
} det_out;

static void det_out_free(det_out *d) {
    for (int64_t i = 0; i < d->n; i++)
        free(d->names[i]);
    free(d->names);
    free(d->boxes);
    free(d->scores);
    free(d->labels);
    free(d->count);
    free(d->png_dir);
    free(d->rgb);
}

static lg_status det_out_add(lg_trainer *t, det_out *d, const lg_batch *b, const float *rows,
                             const predict_files *pf, int64_t first) {
    const lg_model_def *def = t->def;
    int D = d->D;
    if (d->n + b->n > d->cap) {
        int64_t cap = d->cap ? 2 * d->cap : 64;
        while (cap < d->n + b->n)
            cap *= 2;
        float *bx = realloc(d->boxes, (size_t)cap * D * 4 * sizeof *bx);
        if (bx)
            d->boxes = bx;
        float *sc = realloc(d->scores, (size_t)cap * D * sizeof *sc);
        if (sc)
            d->scores = sc;
        int *lb = realloc(d->labels, (size_t)cap * D * sizeof *lb);
        if (lb)
            d->labels = lb;
        int *ct = realloc(d->count, (size_t)cap * sizeof *ct);
        if (ct)
            d->count = ct;
        char **nm = realloc(d->names, (size_t)cap * sizeof *nm);
        if (nm)
            d->names = nm;
        if (!bx || !sc || !lb || !ct || !nm)
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        d->cap = cap;
    }
    int C = b->channels, H = b->height, W = b->width;
    if (!d->rgb && !(d->rgb = malloc((size_t)H * W * 3)))
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    for (int s = 0; s < b->n; s++) {
        int64_t k = d->n;
        const float *r = rows + (size_t)s * D * 6;
        int cnt = 0;
        for (int j = 0; j < D; j++) {
            d->boxes[((size_t)k * D + j) * 4 + 0] = r[j * 6 + 0];
            d->boxes[((size_t)k * D + j) * 4 + 1] = r[j * 6 + 1];
            d->boxes[((size_t)k * D + j) * 4 + 2] = r[j * 6 + 2];
            d->boxes[((size_t)k * D + j) * 4 + 3] = r[j * 6 + 3];
            d->scores[(size_t)k * D + j] = r[j * 6 + 4];
            d->labels[(size_t)k * D + j] = (int)r[j * 6 + 5];
            if (r[j * 6 + 5] >= 0)
                cnt = j + 1;
        }
        d->count[k] = cnt;
        long long idx = b->index ? (long long)b->index[s] : (long long)(first + s);
        char name[64];
        if (pf->n && idx >= 0 && idx < pf->n) {
            const char *base = strrchr(pf->files[idx], '/');
            base = base ? base + 1 : pf->files[idx];
            snprintf(name, sizeof name, "%08lld_%.40s", idx, base);
            char *dot = strrchr(name, '.');
            if (dot && dot > name + 8)
                *dot = 0;
        } else {
            snprintf(name, sizeof name, "%08lld", idx);
        }
        d->names[k] = pf->n && idx >= 0 && idx < pf->n ? lg_tr_xstrdup(pf->files[idx]) : lg_tr_xstrdup(name);
        if (!d->names[k])
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        d->n++;
        /* the PNG: the network's input, boxes and labels drawn */
        lg_status st = lg_detect_image_to_rgb(b->image + (size_t)s * C * H * W, C, H, W, d->mean, d->std,
                                              d->rgb, t->err);
        if (st == LG_OK)
            st = lg_detect_draw(d->rgb, H, W, d->boxes + (size_t)k * D * 4, d->scores + (size_t)k * D,
                                d->labels + (size_t)k * D, cnt, def->class_names, def->n_class_names,
                                t->err);
        char file[96];
        snprintf(file, sizeof file, "%s.png", name);
        char *path = lg_tr_path_join(d->png_dir, file);
        if (!path)
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        if (st == LG_OK)
            st = lg_detect_write_png(path, d->rgb, H, W, t->err);
        free(path);
        if (st != LG_OK)
            return st;
    }
    return LG_OK;
}

static lg_status predict(lg_trainer *t) {
    const lg_model_def *def = t->def;
    lg_tconfig *c = t->cfg;
    const lg_data_def *dd = def->data;
    lg_stage from = LG_STAGE_PREDICT;
    const lg_split_spec *spec = dd ? dd->split[LG_STAGE_PREDICT] : NULL;
    if (!spec && dd && dd->split[LG_STAGE_TEST]) {
        spec = dd->split[LG_STAGE_TEST];
        from = LG_STAGE_TEST;
        if (!c->predict_input[0])
            printf("the spec has no predict split: predicting its test split\n");
    }
    if (!spec)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "the spec's data block has no predict or test split");
    if (c->predict_input[0])
        from = LG_STAGE_PREDICT;
    if (!def->predict_step || def->predict_width <= 0)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "the spec has no predict step");
    lg_status st;
    if ((st = load_for_eval(t)) != LG_OK)
        return st;
    char *out = NULL;
    if (c->logger && !c->fast_dev_run) {
        if ((st = lg_tr_logger_open(t, NULL, 0)) != LG_OK)
            return st;
        out = lg_tr_path_join(t->vdir, c->predict_output);
    } else {
        out = lg_tr_xstrdup(c->predict_output);
    }
    if (!out)
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    size_t ol = strlen(out);
    int as_json = ol > 5 && strcmp(out + ol - 5, ".json") == 0;
    det_out det;
    memset(&det, 0, sizeof det);
    det.D = def->predict_detections;
    if (det.D > 0 && !as_json) {
        /* a detector writes JSON: predictions.csv becomes predictions.json */
        char *dot = strrchr(out, '.');
        char *slash = strrchr(out, '/');
        size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - out) : ol;
        char *j = malloc(stem + 6);
        if (!j) {
            free(out);
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        }
        memcpy(j, out, stem);
        memcpy(j + stem, ".json", 6);
        free(out);
        out = j;
        as_json = 1;
    }
    if (det.D > 0) {
        char *base = lg_tr_xstrdup(out);
        char *slash = base ? strrchr(base, '/') : NULL;
        if (slash)
            *slash = 0;
        det.png_dir = base ? lg_tr_path_join(slash ? base : ".", "predictions") : NULL;
        free(base);
        if (!det.png_dir) {
            free(out);
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        }
        if ((st = lg_tr_mkdir_p(t, det.png_dir)) != LG_OK) {
            free(out);
            det_out_free(&det);
            return st;
        }
        for (int k = 0; k < spec->n_transforms; k++)
            if (spec->transforms[k].kind == LG_TF_NORMALIZE && spec->transforms[k].i[0] == 3) {
                det.mean = spec->transforms[k].f;
                det.std = spec->transforms[k].f + 3;
            }
    }
    FILE *fp = fopen(out, "w");
    if (!fp) {
        st = lg_tr_fail(t, LG_ERR_IO, "cannot create '%s': %s", out, strerror(errno));
        free(out);
        return st;
    }
    lg_feed f;
    memset(&f, 0, sizeof f);
    predict_files pf;
    memset(&pf, 0, sizeof pf);
    if (c->predict_input[0]) {
        char *base = t->vdir ? lg_tr_xstrdup(t->vdir) : lg_tr_path_join(c->default_root_dir, ".lgen");
        st = base ? predict_files_open(t, &pf, spec, base) : lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        t->dcfg.data_dir = NULL;
        if (st == LG_OK) {
            t->dcfg.data_dir = base;
            spec = &pf.spec;
            st = feed_open(t, &f, from, spec, 0);
        }
        t->dcfg.data_dir = c->data_dir[0] ? c->data_dir : NULL;
        free(base);
        if (st != LG_OK)
            goto done;
    } else if ((st = feed_open(t, &f, from, spec, 0)) != LG_OK) {
        goto done;
    }
    int64_t n = apply_limit(f.n_batches, &c->limit_predict_batches);
    if (c->fast_dev_run && n > c->fast_dev_run)
        n = c->fast_dev_run;
    int K = def->predict_width;
    if (det.D > 0)
        ; /* written at the end (lg_detect_write_json) */
    else if (as_json)
        fputs("[\n", fp);
    else {
        fputs(pf.n ? "index,file,prediction" : "index,prediction", fp);
        for (int k = 0; k < K; k++) {
            if (def->class_names)
                fprintf(fp, ",%s", def->class_names[k]);
            else
                fprintf(fp, ",p%d", k);
        }
        fputs(pf.n ? "\n" : ",label\n", fp);
    }
    if ((st = feed_start(t, &f, 0, 0)) != LG_OK)
        goto done;
    lg_progress_begin(&t->bar, "Predicting", n);
    int64_t rows = 0;
    for (int64_t i = 0; i < n; i++) {
        const lg_batch *b;
        if ((st = feed_next(t, &f, &b)) != LG_OK)
            goto done;
        if (!b)
            break;
        lg_step_io io;
        step_io(t, &io, 0);
        if ((st = def->predict_step(&io, b)) != LG_OK) {
            st = step_failed(t, "predict_step", st);
            goto done;
        }
        if (det.D > 0) {
            if ((st = det_out_add(t, &det, b, t->outbuf, &pf, rows)) != LG_OK)
                goto done;
            rows += b->n;
            lg_progress_update(&t->bar, i + 1, NULL, 0);
            if (g_signal)
                break;
            continue;
        }
        for (int s = 0; s < b->n; s++) {
            float *p = t->outbuf + (size_t)s * K;
            if (!def->predict_probs) { /* softmax */
                float mx = p[0];
                for (int k = 1; k < K; k++)
                    mx = p[k] > mx ? p[k] : mx;
                double sum = 0;
                for (int k = 0; k < K; k++)
                    sum += exp((double)(p[k] - mx));
                for (int k = 0; k < K; k++)
                    p[k] = (float)(exp((double)(p[k] - mx)) / sum);
            }
            int best = 0;
            for (int k = 1; k < K; k++)
                if (p[k] > p[best])
                    best = k;
            long long idx = b->index ? (long long)b->index[s] : (long long)rows;
            if (as_json) {
                fprintf(fp, "%s  {\"index\": %lld, ", rows ? ",\n" : "", idx);
                if (pf.n && idx >= 0 && idx < pf.n) {
                    json_t *js = json_string(pf.files[idx]);
                    char *q = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
                    fprintf(fp, "\"file\": %s, ", q ? q : "null");
                    free(q);
                    json_decref(js);
                }
                fprintf(fp, "\"prediction\": %d", best);
                if (def->class_names)
                    fprintf(fp, ", \"class\": \"%s\"", def->class_names[best]);
                fputs(", \"probabilities\": [", fp);
                for (int k = 0; k < K; k++)
                    fprintf(fp, "%s%.6g", k ? ", " : "", p[k]);
                if (pf.n)
                    fputs("]}", fp);
                else
                    fprintf(fp, "], \"label\": %d}", b->label ? b->label[s] : -1);
            } else {
                fprintf(fp, "%lld", idx);
                if (pf.n)
                    fprintf(fp, ",%s", idx >= 0 && idx < pf.n ? pf.files[idx] : "");
                fprintf(fp, ",%d", best);
                for (int k = 0; k < K; k++)
                    fprintf(fp, ",%.6g", p[k]);
                if (pf.n)
                    fputc('\n', fp);
                else
                    fprintf(fp, ",%d\n", b->label ? b->label[s] : -1);
            }
            rows++;
        }
        lg_progress_update(&t->bar, i + 1, NULL, 0);
        if (g_signal)
            break;
    }
    lg_progress_end(&t->bar);
    if (det.D > 0) {
        st = lg_detect_write_json(out, (const char *const *)det.names, (int)det.n, det.boxes, det.scores,
                                  det.labels, det.count, det.D, def->class_names, def->n_class_names,
                                  t->err);
        if (st != LG_OK)
            goto done;
        printf("wrote the detections of %lld images to %s and their drawings to %s/\n", (long long)rows,
               out, det.png_dir);
    } else {
        if (as_json)
            fputs(rows ? "\n]\n" : "]\n", fp);
        printf("wrote %lld predictions to %s\n", (long long)rows, out);
    }
done:
    det_out_free(&det);
    feed_close(&f);
    predict_files_free(&pf);
    if (fclose(fp) != 0 && st == LG_OK)
        st = lg_tr_fail(t, LG_ERR_IO, "cannot write '%s': %s", out, strerror(errno));
    free(out);
    return st;
}

static lg_status setup(lg_trainer *t) {
    const lg_model_def *def = t->def;
    lg_tconfig *c = t->cfg;
    lg_status st;
    /* The def is generated code; check the promises trainer.h asks of it. */
    for (int k = 0; k < def->n_params; k++) {
        const lg_param *q = &def->params[k];
        size_t numel = 1;
        for (int d = 0; d < q->ndim && d < 6; d++)
            numel *= (size_t)q->shape[d];
        if (q->ndim < 0 || q->ndim > 6 || numel != q->numel || q->offset + q->numel > def->n_floats ||
            (q->role == LG_PARAM_TRAIN ? q->offset + q->numel > def->n_train
                                       : q->offset < def->n_train))
            return lg_tr_fail(t, LG_ERR_ARG,
                              "internal error: parameter '%s' (offset %zu, %zu floats) does not fit "
                              "the model's parameter block (%zu floats, the first %zu trained)",
                              q->name, q->offset, q->numel, def->n_floats, def->n_train);
    }
    /* --accelerator/--devices: a trainer built with `make CUDA=1` links its
     * NAME_cuda.c, which defines lg_cuda_trainer_steps (a weak symbol: NULL
     * otherwise); lg_accelerator_select picks the GPU or the CPU and says which. */
    const lg_cuda_trainer *gpu = &lg_cuda_trainer_steps;
    lg_accel accel = LG_ACCEL_CPU;
    int device = 0;
    if (gpu) {
        long devices = strcmp(c->devices, "auto") == 0 ? -1 : strtol(c->devices, NULL, 10);
        char line[320];
        if ((st = lg_accelerator_select(c->accelerator, (int)devices, gpu->device_count, &accel,
                                        &device, line, sizeof line, t->err)) != LG_OK)
            return st;
        printf("%s\n", line);
        if (accel == LG_ACCEL_GPU && devices > 1)
            return lg_tr_fail(t, LG_ERR_UNSUPPORTED,
                              "--devices %ld: this trainer runs on one GPU per process (several "
                              "devices are distributed training, not built)",
                              devices);
    }
    if (accel == LG_ACCEL_CPU && strcmp(c->precision, "32-true") != 0)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED,
                    "precision '%s' is not implemented on this build (only 32-true, also "
                    "spelled 32)",
                    c->precision);
    if (!gpu && strcmp(c->accelerator, "gpu") == 0)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED,
                    "accelerator gpu: this trainer was built without CUDA (use --accelerator cpu)");
    if (!gpu && strcmp(c->accelerator, "auto") == 0)
        printf("accelerator auto: using cpu (this trainer was built without CUDA)\n");
    if (accel == LG_ACCEL_CPU && strcmp(c->devices, "auto") != 0 && strcmp(c->devices, "1") != 0 &&
        strcmp(c->devices, "-1") != 0)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED,
                    "--devices %s: this build trains in one CPU process (devices 1); data "
                    "parallel training is not built",
                    c->devices);
    if ((st = lg_ctx_init(&t->ctx, (int)c->num_threads, t->err)) != LG_OK)
        return st;
    t->have_ctx = 1;
    t->ctx.err = t->err;
    t->params = calloc(def->n_floats ? def->n_floats : 1, sizeof(float));
    t->grads = calloc(def->n_floats ? def->n_floats : 1, sizeof(float));
    if (!t->params || !t->grads)
        return lg_tr_fail(t, LG_ERR_NOMEM, "cannot allocate %zu parameters", def->n_floats);
    lg_prng_seed(&t->rng, (uint64_t)c->seed);
    if (def->init)
        def->init(t->params, &t->rng);
    else
        lg_init_params(def, t->params, &t->rng);
    if ((st = lg_tr_init_from(t)) != LG_OK)
        return st;
    /* data options */
    if (def->data) {
        t->lopt = def->data->options;
        t->lopt.batch_size = (int)c->batch_size;
        t->lopt.num_workers = (int)c->num_workers;
        if (def->data->configure)
            def->data->configure(c->hp, &t->lopt);
    } else {
        t->lopt.batch_size = (int)c->batch_size;
    }
    if (t->lopt.batch_size < 1)
        return lg_tr_usage(t, "batch_size %d must be at least 1", t->lopt.batch_size);
    if (accel == LG_ACCEL_GPU) {
        /* the same model with its steps on the GPU (NAME_cuda.c) */
        const lg_model_def *on_gpu = NULL;
        if ((st = gpu->init(device, c->precision, t->lopt.batch_size, def, &on_gpu, t->err)) != LG_OK)
            return st;
        t->def = def = on_gpu;
        if (&lg_cuda_resident_steps)
            t->res = &lg_cuda_resident_steps; /* the optimizer runs there too */
    }
    t->dcfg.data_dir = c->data_dir[0] ? c->data_dir : NULL;
    t->dcfg.mirror = c->mirror[0] ? c->mirror : NULL;
    t->dcfg.quiet = !c->enable_progress_bar;
    /* the linear layers' oneDNN GEMM kernels, if a batch this size uses them */
    if (accel != LG_ACCEL_GPU && (st = lg_linear_prepare_batch((size_t)t->lopt.batch_size, t->err)) != LG_OK)
        return st;
    size_t arena = def->arena_fixed + def->arena_per_sample * (size_t)t->lopt.batch_size;
    arena = (arena + 63) / 64 * 64;
    t->arena = aligned_alloc(64, arena ? arena : 64);
    if (!t->arena)
        return lg_tr_fail(t, LG_ERR_NOMEM,
                    "cannot allocate %.1f MiB for activations (batch_size %d); try a smaller "
                    "--batch_size",
                    arena / 1048576.0, t->lopt.batch_size);
    int nl = 1;
    for (int s = 0; s < LG_STAGE_COUNT; s++)
        nl = def->n_logs[s] > nl ? def->n_logs[s] : nl;
    if (nl > MAX_METRICS)
        return lg_tr_fail(t, LG_ERR_UNSUPPORTED, "more than %d logged values", MAX_METRICS);
    t->logbuf = calloc((size_t)nl, sizeof(float));
    t->outbuf = calloc((size_t)t->lopt.batch_size * (size_t)(def->predict_width > 0 ? def->predict_width : 1),
                       sizeof(float));
    if (!t->logbuf || !t->outbuf)
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    return LG_OK;
}

static void teardown(lg_trainer *t) {
    for (int i = 0; i < t->n_dsc; i++)
        lg_dataset_close(t->dsc[i].ds);
    if (t->have_optim)
        lg_optim_free(&t->optim);
    if (t->have_ctx)
        lg_ctx_free(&t->ctx);
    free(t->params);
    free(t->grads);
    free(t->arena);
    if (&lg_cuda_trainer_steps)
        lg_cuda_trainer_steps.free(); /* the GPU's, if init ran */
    free(t->logbuf);
    free(t->outbuf);
    free(t->root);
    free(t->vdir);
    free(t->ckdir);
    if (t->metrics)
        fclose(t->metrics);
    lg_tb_close(&t->tb);
    for (int i = 0; i < t->n_cols; i++)
        free(t->cols[i]);
    free(t->cols);
    lg_tr_metric_free(&t->latest);
    for (int i = 0; i < t->n_best; i++)
        free(t->best[i].path);
    free(t->best);
    free(t->best_path);
    free(t->last_saved);
}

int lg_run(const lg_model_def *def, lg_tconfig *cfg, lg_error *err) {
    lg_trainer t;
    memset(&t, 0, sizeof t);
    t.def = def;
    t.cfg = cfg;
    t.err = err;
    t.bar.enabled = cfg->enable_progress_bar;
    t.bar.tty = isatty(STDOUT_FILENO);
    t.bar.v_num = 0;
    if (cfg->fast_dev_run)
        t.cfg->enable_checkpointing = 0;
    g_signal = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int status = 0;
    lg_status st = setup(&t);
    if (st == LG_OK) {
        switch (cfg->cmd) {
        case LG_CMD_FIT: st = fit(&t, &status); break;
        case LG_CMD_VALIDATE: st = evaluate(&t, LG_STAGE_VALIDATE); break;
        case LG_CMD_TEST: st = evaluate(&t, LG_STAGE_TEST); break;
        case LG_CMD_PREDICT: st = predict(&t); break;
        default: st = lg_tr_fail(&t, LG_ERR_ARG, "unknown subcommand"); break;
        }
    }
    if (st == LG_OK && status == 0 && g_signal)
        status = 128 + g_signal;
    int was_usage = t.usage;
    teardown(&t);
    t.usage = was_usage;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    g_signal = 0;
    if (st != LG_OK)
        return t.usage ? 2 : 1;
    return status;
}
