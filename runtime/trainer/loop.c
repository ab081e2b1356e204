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
 * Signals: SIGINT/SIGTERM set a flag; the loop saves last.ckpt at the next
 * step boundary and returns 130/143. A second signal exits at once (the
 * handler's _exit). The flag is the one global here: signal handlers have
 * no other way to talk to the loop.
 */
#include "internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgen/checkpoint.h"
#include "lgen/optim.h"

#define MAX_DATASETS 8
#define MAX_METRICS 128
#define CKPT_FORMAT "lgen.checkpoint/1"

/* ---- signals ------------------------------------------------------------- */

static volatile sig_atomic_t g_signal;

static void on_signal(int sig) {
    if (g_signal)
        _exit(128 + sig); /* second signal: at once */
    g_signal = sig;
}

/* ---- the trainer's state --------------------------------------------------- */

typedef struct feed {
    lg_stage stage;
    const lg_split_spec *spec;
    lg_loader loader;
    int have_loader;
    const lg_batch_source *src;
    lg_batch batch;
    void *buf;
    lg_loader_options opt;
    int64_t n_samples, n_batches;
    int64_t epoch, next;
} feed;

typedef struct metric_store {
    int n;
    char *name[MAX_METRICS];
    double value[MAX_METRICS];
} metric_store;

typedef struct topk {
    char *path;
    double score;
} topk;

typedef struct trainer {
    const lg_model_def *def;
    lg_tconfig *cfg;
    lg_error *err;
    const char *prog;
    lg_ctx ctx;
    int have_ctx;
    float *params, *grads;
    void *arena;
    lg_optim optim;
    int have_optim;
    lg_sched sched;
    int have_sched, sched_per_step;
    char sched_monitor[128];
    const char *optim_name;
    lg_prng rng;
    /* data */
    lg_data_config dcfg;
    lg_loader_options lopt;
    struct {
        const lg_dataset_desc *desc;
        const char *source;
        lg_dataset *ds;
    } dsc[MAX_DATASETS];
    int n_dsc;
    /* loop position */
    int64_t epoch, batch, global_step;
    int epoch_done;
    int64_t n_train, n_val, val_every;
    /* logs */
    char *root, *vdir, *ckdir;
    int64_t version;
    FILE *metrics;
    int n_cols;
    char **cols;
    metric_store latest;
    /* ModelCheckpoint */
    topk *best;
    int n_best;
    char *best_path;
    double best_score;
    char *last_saved;
    /* EarlyStopping */
    int64_t es_wait;
    double es_best;
    int es_has_best, should_stop;
    lg_progress bar;
    float *logbuf;
    float *outbuf;
    int usage; /* the error is the user's configuration: exit status 2 */
} trainer;

static lg_status fail(trainer *t, lg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lg_status fail(trainer *t, lg_status code, const char *fmt, ...) {
    char msg[sizeof t->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lg_error_set(t->err, code, "%s", msg);
}

/* An error in the run's configuration (exit status 2). */
static lg_status usage(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static lg_status usage(trainer *t, const char *fmt, ...) {
    char msg[sizeof t->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->usage = 1;
    return lg_error_set(t->err, LG_ERR_ARG, "%s", msg);
}

static char *xstrdup(const char *s) {
    return strdup(s ? s : "");
}

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static lg_status mkdir_p(trainer *t, const char *path) {
    char *p = xstrdup(path);
    if (!p)
        return fail(t, LG_ERR_NOMEM, "out of memory");
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char keep = *c;
            *c = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                lg_status st = fail(t, LG_ERR_IO, "cannot create directory '%s': %s", p,
                                    strerror(errno));
                free(p);
                return st;
            }
            *c = keep;
            if (!keep)
                break;
        }
    }
    free(p);
    return LG_OK;
}

/* ---- metrics ------------------------------------------------------------- */

static void metric_set(metric_store *m, const char *name, double v) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->name[i], name) == 0) {
            m->value[i] = v;
            return;
        }
    if (m->n < MAX_METRICS && (m->name[m->n] = xstrdup(name)))
        m->value[m->n++] = v;
}

static int metric_get(const metric_store *m, const char *name, double *v) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->name[i], name) == 0) {
            *v = m->value[i];
            return 1;
        }
    return 0;
}

static void metric_free(metric_store *m) {
    for (int i = 0; i < m->n; i++)
        free(m->name[i]);
    m->n = 0;
}

/* The logged name of train metric k for a step row (epoch = 0) or an epoch
 * row (epoch = 1): Lightning adds _step/_epoch when a value is both. */
static void train_metric_name(const lg_metric *m, int epoch, char *buf, size_t n) {
    int both = (m->flags & LG_LOG_STEP) && (m->flags & LG_LOG_EPOCH);
    snprintf(buf, n, "%s%s", m->name, both ? (epoch ? "_epoch" : "_step") : "");
}

static void lr_name(trainer *t, int g, char *buf, size_t n) {
    if (t->optim.ngroups > 1)
        snprintf(buf, n, "lr-%s/pg%d", t->optim_name, g + 1);
    else
        snprintf(buf, n, "lr-%s", t->optim_name);
}

/* Every name a monitor may use in this run. */
static int known_metrics(trainer *t, const char **names, char store[][128], int cap) {
    const lg_model_def *def = t->def;
    int n = 0;
    for (int k = 0; k < def->n_logs[LG_STAGE_TRAIN] && n + 2 < cap; k++) {
        const lg_metric *m = &def->logs[LG_STAGE_TRAIN][k];
        if (m->flags & LG_LOG_STEP)
            train_metric_name(m, 0, store[n], 128), names[n] = store[n], n++;
        if (m->flags & LG_LOG_EPOCH)
            train_metric_name(m, 1, store[n], 128), names[n] = store[n], n++;
        if (!(m->flags & (LG_LOG_STEP | LG_LOG_EPOCH)))
            snprintf(store[n], 128, "%s", m->name), names[n] = store[n], n++;
    }
    for (int k = 0; k < def->n_logs[LG_STAGE_VALIDATE] && n < cap; k++)
        snprintf(store[n], 128, "%s", def->logs[LG_STAGE_VALIDATE][k].name), names[n] = store[n],
                                                                             n++;
    for (int g = 0; t->have_optim && g < t->optim.ngroups && n < cap; g++)
        lr_name(t, g, store[n], 128), names[n] = store[n], n++;
    return n;
}

static lg_status check_monitor(trainer *t, const char *flag, const char *name) {
    if (!name || !*name)
        return LG_OK;
    const char *names[MAX_METRICS];
    static char store[MAX_METRICS][128];
    int n = known_metrics(t, names, store, MAX_METRICS);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return LG_OK;
    char list[1024] = "";
    for (int i = 0; i < n; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", names[i]);
    }
    const char *s = lg_suggest(name, names, n);
    if (s)
        return usage(t, "--%s '%s' is not a logged value; did you mean '%s'? (logged: %s)",
                    flag, name, s, list);
    return usage(t, "--%s '%s' is not a logged value (logged: %s)", flag, name, list);
}

/* ---- logger: lightning_logs/version_N ------------------------------------ */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int64_t max_version(const char *root) {
    DIR *d = opendir(root);
    int64_t best = -1;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, "version_", 8) == 0) {
            long long v = strtoll(e->d_name + 8, &end, 10);
            if (*end == '\0' && end != e->d_name + 8 && v > best)
                best = v;
        }
    }
    closedir(d);
    return best;
}

static void yaml_scalar(FILE *f, const char *s) {
    int plain = *s && !strpbrk(s, ":#'\"{}[],&*!|>%@`\n") && !isspace((unsigned char)s[0]);
    double d;
    char *end;
    d = strtod(s, &end);
    (void)d;
    if (end != s && *end == '\0')
        plain = 0; /* a string that looks like a number */
    if (plain)
        fputs(s, f);
    else {
        fputc('\'', f);
        for (; *s; s++) {
            if (*s == '\'')
                fputc('\'', f);
            fputc(*s, f);
        }
        fputc('\'', f);
    }
}

static lg_status write_text(trainer *t, const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f)
        return fail(t, LG_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    fputs(text, f);
    if (fclose(f) != 0)
        return fail(t, LG_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return LG_OK;
}

/* Creates version_N (the next free N), hparams.yaml, config.json and the
 * metrics.csv header with columns (sorted, as CSVLogger writes them). */
static lg_status logger_open(trainer *t, const char *const *cols, int ncols) {
    lg_status st;
    t->root = path_join(t->cfg->default_root_dir, "lightning_logs");
    if (!t->root)
        return fail(t, LG_ERR_NOMEM, "out of memory");
    if ((st = mkdir_p(t, t->root)) != LG_OK)
        return st;
    for (int64_t v = max_version(t->root) + 1;; v++) {
        char name[64];
        snprintf(name, sizeof name, "version_%lld", (long long)v);
        free(t->vdir);
        t->vdir = path_join(t->root, name);
        if (!t->vdir)
            return fail(t, LG_ERR_NOMEM, "out of memory");
        if (mkdir(t->vdir, 0755) == 0) {
            t->version = v;
            break;
        }
        if (errno != EEXIST)
            return fail(t, LG_ERR_IO, "cannot create '%s': %s", t->vdir, strerror(errno));
    }
    t->bar.v_num = t->version;
    t->ckdir = path_join(t->vdir, "checkpoints");
    /* hparams.yaml: sorted keys, as yaml.dump writes them. */
    char *path = path_join(t->vdir, "hparams.yaml");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        st = fail(t, LG_ERR_IO, "cannot create '%s': %s", path ? path : "hparams.yaml",
                  strerror(errno));
        free(path);
        return st;
    }
    int n = t->def->n_hparams;
    int *order = calloc((size_t)(n ? n : 1), sizeof *order);
    for (int i = 0; order && i < n; i++)
        order[i] = i;
    for (int i = 1; order && i < n; i++)
        for (int j = i; j > 0 && strcmp(t->def->hparams[order[j - 1]].name,
                                         t->def->hparams[order[j]].name) > 0;
             j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    if (n == 0)
        fputs("{}\n", f);
    for (int i = 0; order && i < n; i++) {
        int k = order[i];
        char val[512];
        lg_hparam_format(t->def, t->cfg, k, val, sizeof val);
        fprintf(f, "%s: ", t->def->hparams[k].name);
        lg_hparam_type ty = t->def->hparams[k].type;
        if (ty == LG_HP_STR || ty == LG_HP_ENUM)
            yaml_scalar(f, val);
        else
            fputs(val, f);
        fputc('\n', f);
    }
    free(order);
    if (fclose(f) != 0) {
        st = fail(t, LG_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        free(path);
        return st;
    }
    free(path);
    char *cfgtext = lg_tconfig_dump(t->cfg, t->def);
    path = path_join(t->vdir, "config.json");
    st = cfgtext && path ? write_text(t, path, cfgtext) : fail(t, LG_ERR_NOMEM, "out of memory");
    free(cfgtext);
    free(path);
    if (st != LG_OK)
        return st;
    /* metrics.csv */
    t->cols = calloc((size_t)ncols + 2, sizeof *t->cols);
    if (!t->cols)
        return fail(t, LG_ERR_NOMEM, "out of memory");
    t->cols[t->n_cols++] = xstrdup("epoch");
    t->cols[t->n_cols++] = xstrdup("step");
    for (int i = 0; i < ncols; i++) {
        int dup = 0;
        for (int j = 0; j < t->n_cols; j++)
            dup |= strcmp(t->cols[j], cols[i]) == 0;
        if (!dup)
            t->cols[t->n_cols++] = xstrdup(cols[i]);
    }
    qsort(t->cols, (size_t)t->n_cols, sizeof *t->cols, cmp_str);
    path = path_join(t->vdir, "metrics.csv");
    t->metrics = path ? fopen(path, "w") : NULL;
    if (!t->metrics) {
        st = fail(t, LG_ERR_IO, "cannot create '%s': %s", path ? path : "metrics.csv",
                  strerror(errno));
        free(path);
        return st;
    }
    free(path);
    for (int i = 0; i < t->n_cols; i++)
        fprintf(t->metrics, "%s%s", i ? "," : "", t->cols[i]);
    fputc('\n', t->metrics);
    fflush(t->metrics);
    return LG_OK;
}

/* One row of metrics.csv: the given (name, value) pairs plus epoch and step. */
static void log_row(trainer *t, int64_t step, int n, const char *const *names, const double *vals) {
    if (!t->metrics)
        return;
    for (int i = 0; i < t->n_cols; i++) {
        if (i)
            fputc(',', t->metrics);
        const char *c = t->cols[i];
        if (strcmp(c, "epoch") == 0) {
            fprintf(t->metrics, "%lld", (long long)t->epoch);
            continue;
        }
        if (strcmp(c, "step") == 0) {
            fprintf(t->metrics, "%lld", (long long)step);
            continue;
        }
        for (int k = 0; k < n; k++)
            if (strcmp(names[k], c) == 0) {
                fprintf(t->metrics, "%.9g", vals[k]);
                break;
            }
    }
    fputc('\n', t->metrics);
    fflush(t->metrics);
}

/* ---- data ---------------------------------------------------------------- */

static lg_status dataset_for(trainer *t, const lg_split_spec *spec, lg_dataset **out) {
    for (int i = 0; i < t->n_dsc; i++)
        if (t->dsc[i].desc == spec->dataset && strcmp(t->dsc[i].source, spec->source) == 0) {
            *out = t->dsc[i].ds;
            return LG_OK;
        }
    if (t->n_dsc == MAX_DATASETS)
        return fail(t, LG_ERR_UNSUPPORTED, "more than %d dataset splits", MAX_DATASETS);
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
static lg_status feed_open(trainer *t, feed *f, lg_stage stage, const lg_split_spec *spec,
                           int shuffle) {
    memset(f, 0, sizeof *f);
    f->stage = stage;
    f->spec = spec;
    f->opt = t->lopt;
    f->opt.shuffle = shuffle;
    if (stage != LG_STAGE_TRAIN)
        f->opt.drop_last = 0;
    f->src = t->def->data ? t->def->data->source : NULL;
    int bs = f->opt.batch_size;
    if (f->src) {
        f->n_samples = f->src->n_samples(f->src->self, stage);
        f->n_batches = f->opt.drop_last ? f->n_samples / bs : (f->n_samples + bs - 1) / bs;
        size_t chw = (size_t)spec->channels * spec->height * spec->width, B = (size_t)spec->max_boxes;
        size_t bytes = bs * (chw * 4 + 4 + 8) + bs * B * (16 + 4 + 1 + 1) + bs * 4 + 64;
        f->buf = calloc(1, bytes);
        if (!f->buf)
            return fail(t, LG_ERR_NOMEM, "cannot allocate a batch of %d samples", bs);
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

static lg_status feed_start(trainer *t, feed *f, int64_t epoch, int64_t first) {
    f->epoch = epoch;
    f->next = first;
    if (f->have_loader)
        return lg_loader_start(&f->loader, epoch, first, t->err);
    return LG_OK;
}

static lg_status feed_next(trainer *t, feed *f, const lg_batch **out) {
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

static void feed_close(feed *f) {
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

/* ---- optimizer ----------------------------------------------------------- */

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

static lg_status check_kwargs(trainer *t, const char *what, const char *kind, const lg_kwargs *k,
                              const char *const *allowed) {
    for (int i = 0; i < k->n; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, k->arg[i].name) == 0 ||
                  (strcmp(*a, "m*") == 0 && k->arg[i].name[0] == 'm' &&
                   isdigit((unsigned char)k->arg[i].name[1]));
        if (!ok)
            return fail(t, LG_ERR_ARG, "%s '%s' has no argument '%s'", what, kind, k->arg[i].name);
    }
    return LG_OK;
}

static lg_status setup_optimizer(trainer *t, const lg_fit_info *fit) {
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
        return fail(t, LG_ERR_UNSUPPORTED, "unknown optimizer '%s' (sgd, adam, adamw, rmsprop)",
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
        return fail(t, LG_ERR_ARG, "%d parameter groups (at most %d)", ng, LG_MAX_GROUPS);
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
        return fail(t, LG_ERR_NOMEM, "out of memory");
    for (int k = 0; k < def->n_params; k++) {
        const lg_param *q = &def->params[k];
        if (q->role != LG_PARAM_TRAIN)
            continue;
        if (q->group < 0 || q->group >= ng) {
            free(ps);
            return fail(t, LG_ERR_ARG, "parameter '%s' is in group %d of %d", q->name, q->group, ng);
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
        return fail(t, LG_ERR_UNSUPPORTED, "unknown scheduler '%s'", sk);
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
        return fail(t, LG_ERR_ARG, "scheduler reduce_on_plateau needs a monitor");
    if ((st = lg_sched_init(&t->sched, &sc, &t->optim, t->err)) != LG_OK)
        return st;
    t->have_sched = 1;
    t->sched_per_step = d.sched_per_step || sc.kind == LG_SCHED_ONE_CYCLE;
    const char *iv = kw_str(a, "interval");
    if (iv)
        t->sched_per_step = strcmp(iv, "step") == 0;
    return LG_OK;
}

/* ---- checkpoints --------------------------------------------------------- */

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

static json_t *callbacks_json(trainer *t) {
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

static lg_status ckpt_save(trainer *t, const char *path) {
    const lg_model_def *def = t->def;
    int nslots = t->have_optim ? t->optim.nslots : 0;
    int n = def->n_params, cap = n + n * nslots;
    lg_st_tensor *ts = calloc((size_t)(cap ? cap : 1), sizeof *ts);
    int64_t **ints = calloc((size_t)(n ? n : 1), sizeof *ints);
    char **names = calloc((size_t)(cap ? cap : 1), sizeof *names);
    lg_status st = LG_OK;
    if (!ts || !ints || !names) {
        st = fail(t, LG_ERR_NOMEM, "out of memory saving '%s'", path);
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
                st = fail(t, LG_ERR_NOMEM, "out of memory");
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
                st = fail(t, LG_ERR_NOMEM, "out of memory");
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
    const char *keys[] = {"format",      "lgen_version", "model",         "spec_path",
                          "spec_hash",   "epoch",        "global_step",   "hparams",
                          "optimizer",   "lr_schedulers", "rng",          "loop",
                          "callbacks",   "metrics"};
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
                            vals[6]};
    int ok = 1;
    for (int i = 0; i < 7; i++)
        ok &= vals[i] != NULL;
    if (!ok)
        st = fail(t, LG_ERR_NOMEM, "out of memory");
    else
        st = lg_st_write(path, ts, nt, keys, values, 14, t->err);
    for (int i = 0; i < 7; i++)
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
        t->last_saved = xstrdup(path);
    }
    return st;
}

static lg_status download_url(trainer *t, const char *url, const char *dest) {
    CURL *c = curl_easy_init();
    if (!c)
        return fail(t, LG_ERR_NET, "cannot start libcurl");
    FILE *f = fopen(dest, "wb");
    if (!f) {
        curl_easy_cleanup(c);
        return fail(t, LG_ERR_IO, "cannot create '%s': %s", dest, strerror(errno));
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
        return fail(t, LG_ERR_IO, "cannot write '%s': %s", dest, strerror(errno));
    if (rc != CURLE_OK) {
        unlink(dest);
        return fail(t, LG_ERR_NET, "cannot download checkpoint '%s': %s", url,
                    curl_easy_strerror(rc));
    }
    return LG_OK;
}

/* Resolves --ckpt_path: a path, a URL (downloaded), last or best (from the
 * newest version_N that has a last.ckpt). *out is malloc'd. */
static lg_status resolve_ckpt(trainer *t, const char *spec, char **out) {
    *out = NULL;
    if (strcmp(spec, "last") == 0 || strcmp(spec, "best") == 0) {
        char *root = path_join(t->cfg->default_root_dir, "lightning_logs");
        if (!root)
            return fail(t, LG_ERR_NOMEM, "out of memory");
        for (int64_t v = max_version(root); v >= 0; v--) {
            char rel[96];
            snprintf(rel, sizeof rel, "version_%lld/checkpoints/last.ckpt", (long long)v);
            char *p = path_join(root, rel);
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
                    *out = xstrdup(bp);
                json_decref(cb);
                lg_st_close(&f);
                if (!*out)
                    return fail(t, LG_ERR_ARG, "--ckpt_path best: the last run recorded no best "
                                "checkpoint (set --checkpoint.monitor)");
                return LG_OK;
            }
            free(p);
        }
        lg_status st = fail(t, LG_ERR_ARG, "--ckpt_path %s: no checkpoint under '%s'", spec, root);
        free(root);
        return st;
    }
    if (strstr(spec, "://")) {
        char tmpl[] = "/tmp/lgen-ckpt-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0)
            return fail(t, LG_ERR_IO, "cannot create a temporary file: %s", strerror(errno));
        close(fd);
        lg_status st = download_url(t, spec, tmpl);
        if (st != LG_OK)
            return st;
        *out = xstrdup(tmpl);
        return LG_OK;
    }
    *out = xstrdup(spec);
    return LG_OK;
}

static lg_status bad_ckpt(trainer *t, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lg_status bad_ckpt(trainer *t, const char *path, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(t, LG_ERR_FORMAT, "cannot resume from '%s': %s", path, msg);
}

static json_t *meta_json(trainer *t, lg_st_file *f, const char *key) {
    const char *s = lg_st_meta(f, key);
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    if (!j)
        bad_ckpt(t, f->path, "metadata '%s' is missing or not JSON", key);
    return j;
}

/* Loads weights (and, with full, everything that resumes training). */
static lg_status ckpt_load(trainer *t, const char *path, int full) {
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
    json_t *mc = json_object_get(cb, "ModelCheckpoint"), *es = json_object_get(cb, "EarlyStopping");
    const char *bp = json_string_value(json_object_get(mc, "best_model_path"));
    free(t->best_path);
    t->best_path = bp && *bp ? xstrdup(bp) : NULL;
    t->best_score = jget(mc, "best_model_score");
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(mc, "best_k_models"), key, val) {
        topk *nb = realloc(t->best, (size_t)(t->n_best + 1) * sizeof *nb);
        if (!nb)
            break;
        t->best = nb;
        t->best[t->n_best].path = xstrdup(key);
        t->best[t->n_best].score = json_is_string(val) ? strtod(json_string_value(val), NULL)
                                                        : json_number_value(val);
        t->n_best++;
    }
    t->es_wait = json_integer_value(json_object_get(es, "wait_count"));
    t->es_best = jget(es, "best_score");
    t->es_has_best = json_is_true(json_object_get(es, "has_best"));
out2:
    json_decref(sch);
    json_decref(rng);
    json_decref(loop);
    json_decref(cb);
out:
    lg_st_close(&f);
    return st;
}

/* ---- ModelCheckpoint ------------------------------------------------------ */

/* Fills the filename template: {epoch}, {step}, {name} and {name:fmt}. */
static void format_name(trainer *t, char *buf, size_t n) {
    const char *s = t->cfg->ck_filename;
    size_t o = 0;
    while (*s && o + 1 < n) {
        if (*s != '{') {
            buf[o++] = *s++;
            continue;
        }
        const char *close = strchr(s, '}');
        if (!close) {
            buf[o++] = *s++;
            continue;
        }
        char key[128], fmt[32] = "";
        size_t len = (size_t)(close - s - 1);
        if (len >= sizeof key)
            len = sizeof key - 1;
        memcpy(key, s + 1, len);
        key[len] = '\0';
        char *colon = strchr(key, ':');
        if (colon) {
            snprintf(fmt, sizeof fmt, "%%%s", colon + 1);
            *colon = '\0';
            /* only a plain numeric conversion is allowed */
            size_t fl = strlen(fmt);
            if (fl < 2 || !strchr("fegFEG", fmt[fl - 1]) || strspn(fmt + 1, "0123456789.") != fl - 2)
                fmt[0] = '\0';
        }
        double v = 0;
        char val[96];
        if (strcmp(key, "epoch") == 0)
            snprintf(val, sizeof val, "%lld", (long long)t->epoch);
        else if (strcmp(key, "step") == 0)
            snprintf(val, sizeof val, "%lld", (long long)t->global_step);
        else if (metric_get(&t->latest, key, &v)) {
            if (fmt[0])
                snprintf(val, sizeof val, fmt, v);
            else
                snprintf(val, sizeof val, "%.4f", v);
        } else
            snprintf(val, sizeof val, "nan");
        o += (size_t)snprintf(buf + o, n - o, "%s=%s", key, val);
        if (o >= n)
            o = n - 1;
        s = close + 1;
    }
    buf[o < n ? o : n - 1] = '\0';
}

static int better(const char *mode, double a, double b) {
    return strcmp(mode, "max") == 0 ? a > b : a < b;
}

static lg_status save_last(trainer *t) {
    lg_status st = mkdir_p(t, t->ckdir);
    if (st != LG_OK)
        return st;
    char *p = path_join(t->ckdir, "last.ckpt");
    st = p ? ckpt_save(t, p) : fail(t, LG_ERR_NOMEM, "out of memory");
    free(p);
    return st;
}

/* A checkpoint is due: top-k bookkeeping, the file, and last.ckpt. */
static lg_status checkpoint_now(trainer *t) {
    lg_tconfig *c = t->cfg;
    if (!t->ckdir || !c->enable_checkpointing)
        return LG_OK;
    lg_status st = mkdir_p(t, t->ckdir);
    if (st != LG_OK)
        return st;
    double score;
    const char *mode = c->ck_mode;
    int have = 1;
    if (c->ck_monitor[0]) {
        have = metric_get(&t->latest, c->ck_monitor, &score) && isfinite(score);
    } else {
        score = (double)t->global_step; /* keep the latest k */
        mode = "max";
    }
    if (have && c->ck_save_top_k != 0) {
        char name[512];
        format_name(t, name, sizeof name);
        strncat(name, ".ckpt", sizeof name - strlen(name) - 1);
        char *path = path_join(t->ckdir, name);
        if (!path)
            return fail(t, LG_ERR_NOMEM, "out of memory");
        int worst = -1;
        for (int i = 0; i < t->n_best; i++)
            if (worst < 0 || better(mode, t->best[worst].score, t->best[i].score))
                worst = i;
        int same = -1;
        for (int i = 0; i < t->n_best; i++)
            if (strcmp(t->best[i].path, path) == 0)
                same = i;
        int keep = c->ck_save_top_k < 0 || same >= 0 || t->n_best < c->ck_save_top_k ||
                   (worst >= 0 && better(mode, score, t->best[worst].score));
        if (keep) {
            if ((st = ckpt_save(t, path)) != LG_OK) {
                free(path);
                return st;
            }
            if (same >= 0) {
                t->best[same].score = score;
                free(path);
            } else if (c->ck_save_top_k > 0 && t->n_best >= c->ck_save_top_k) {
                unlink(t->best[worst].path);
                free(t->best[worst].path);
                t->best[worst].path = path;
                t->best[worst].score = score;
            } else {
                topk *nb = realloc(t->best, (size_t)(t->n_best + 1) * sizeof *nb);
                if (!nb) {
                    free(path);
                    return fail(t, LG_ERR_NOMEM, "out of memory");
                }
                t->best = nb;
                t->best[t->n_best].path = path;
                t->best[t->n_best].score = score;
                t->n_best++;
            }
            int bi = 0;
            for (int i = 1; i < t->n_best; i++)
                if (better(mode, t->best[i].score, t->best[bi].score))
                    bi = i;
            free(t->best_path);
            t->best_path = xstrdup(t->best[bi].path);
            t->best_score = t->best[bi].score;
        } else {
            free(path);
        }
    }
    if (c->ck_save_last)
        return save_last(t);
    return LG_OK;
}

/* ---- EarlyStopping ------------------------------------------------------- */

static void early_stopping_check(trainer *t) {
    lg_tconfig *c = t->cfg;
    double v;
    if (!c->es_monitor[0] || !metric_get(&t->latest, c->es_monitor, &v))
        return;
    if (!isfinite(v)) {
        if (c->es_check_finite) {
            printf("Monitored metric %s = %g is not finite. Signaling Trainer to stop.\n",
                   c->es_monitor, v);
            t->should_stop = 1;
        }
        return;
    }
    int improved;
    if (!t->es_has_best)
        improved = 1;
    else if (strcmp(c->es_mode, "max") == 0)
        improved = v > t->es_best + c->es_min_delta;
    else
        improved = v < t->es_best - c->es_min_delta;
    if (improved) {
        t->es_best = v;
        t->es_has_best = 1;
        t->es_wait = 0;
    } else if (++t->es_wait >= c->es_patience) {
        printf("Monitored metric %s did not improve in the last %lld records. Best score: %.3f. "
               "Signaling Trainer to stop.\n",
               c->es_monitor, (long long)t->es_wait, t->es_best);
        t->should_stop = 1;
    }
}

/* ---- steps --------------------------------------------------------------- */

static void step_io(trainer *t, lg_step_io *io, int training) {
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

static lg_status step_failed(trainer *t, const char *what, lg_status st) {
    if (st == LG_OK)
        st = LG_ERR_ARG;
    if (!t->err->msg[0])
        lg_error_set(t->err, st, "failed");
    return lg_error_wrap(t->err, "%s at step %lld (epoch %lld)", what, (long long)t->global_step,
                         (long long)t->epoch);
}

/* Runs n batches of an evaluation loop, averaging each logged value over the
 * samples (Lightning's on_epoch mean weighted by batch size). */
static lg_status run_eval(trainer *t, feed *f, int64_t n, lg_stage stage, const char *desc,
                          double *means) {
    const lg_model_def *def = t->def;
    int nl = def->n_logs[stage];
    lg_step_fn fn = def->eval_step[stage];
    double sums[MAX_METRICS] = {0};
    int64_t count = 0;
    if (!fn)
        return fail(t, LG_ERR_UNSUPPORTED, "the spec has no %s step",
                    stage == LG_STAGE_TEST ? "test" : "validate");
    lg_status st = feed_start(t, f, t->epoch, 0);
    if (st != LG_OK)
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
    size_t o = 0;
    for (int k = 0; k < nl && k < MAX_METRICS; k++) {
        means[k] = count ? sums[k] / (double)count : NAN;
        if (o < sizeof t->bar.extra)
            o += (size_t)snprintf(t->bar.extra + o, sizeof t->bar.extra - o, "%s%s=%.4g",
                                  k ? ", " : "", def->logs[stage][k].name, means[k]);
    }
    lg_progress_end(&t->bar);
    return LG_OK;
}

static void print_results(trainer *t, lg_stage stage, const double *means) {
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
static lg_status validate_in_fit(trainer *t, feed *val) {
    double means[MAX_METRICS];
    lg_status st = run_eval(t, val, t->n_val, LG_STAGE_VALIDATE, "Validation", means);
    if (st != LG_OK)
        return st;
    const lg_model_def *def = t->def;
    int nl = def->n_logs[LG_STAGE_VALIDATE];
    const char *names[MAX_METRICS];
    for (int k = 0; k < nl; k++) {
        names[k] = def->logs[LG_STAGE_VALIDATE][k].name;
        metric_set(&t->latest, names[k], means[k]);
    }
    log_row(t, t->global_step > 0 ? t->global_step - 1 : 0, nl, names, means);
    if (t->have_sched && t->sched.cfg.kind == LG_SCHED_PLATEAU) {
        double v;
        if (!metric_get(&t->latest, t->sched_monitor, &v))
            return fail(t, LG_ERR_ARG, "reduce_on_plateau monitors '%s', which is not logged",
                        t->sched_monitor);
        if ((st = lg_sched_step(&t->sched, &t->optim, v, t->err)) != LG_OK)
            return st;
    }
    early_stopping_check(t);
    return LG_OK;
}

static void prog_bar_text(trainer *t, char *buf, size_t n) {
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
                train_metric_name(m, !(m->flags & LG_LOG_STEP), name, sizeof name);
            else
                snprintf(name, sizeof name, "%s", m->name);
            if (!metric_get(&t->latest, name, &v))
                continue;
            int w = snprintf(buf + o, n - o, "%s%s=%.3g", o ? ", " : "", name, v);
            if (w < 0 || (size_t)w >= n - o)
                return;
            o += (size_t)w;
        }
}

/* ---- fit ----------------------------------------------------------------- */

static lg_status stop_on_signal(trainer *t, int *status) {
    int sig = g_signal;
    const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    if (t->ckdir && !t->cfg->fast_dev_run) {
        lg_status st = save_last(t);
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

static lg_status fit(trainer *t, int *status) {
    const lg_model_def *def = t->def;
    lg_tconfig *c = t->cfg;
    const lg_data_def *dd = def->data;
    lg_status st;
    feed train, val;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    if (!def->train_step)
        return fail(t, LG_ERR_UNSUPPORTED, "the spec has no train step");
    if (!dd || !dd->split[LG_STAGE_TRAIN])
        return fail(t, LG_ERR_UNSUPPORTED, "the spec's data block has no train split");
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
            st = usage(t, "--val_check_interval (%lld) must be at most the number of training "
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
    if ((st = setup_optimizer(t, &fi)) != LG_OK)
        goto out;
    if ((st = check_monitor(t, "checkpoint.monitor", c->ck_monitor)) != LG_OK ||
        (st = check_monitor(t, "early_stopping.monitor", c->es_monitor)) != LG_OK)
        goto out;
    /* Logger columns. */
    if (c->logger && !fdr) {
        const char *cols[MAX_METRICS];
        static char store[MAX_METRICS][128];
        int n = known_metrics(t, cols, store, MAX_METRICS);
        if ((st = logger_open(t, cols, n)) != LG_OK)
            goto out;
    }
    if (c->ckpt_path[0]) {
        char *path;
        if ((st = resolve_ckpt(t, c->ckpt_path, &path)) != LG_OK)
            goto out;
        st = ckpt_load(t, path, 1);
        if (st == LG_OK) {
            printf("Restored all states from the checkpoint at %s (epoch %lld, step %lld)\n", path,
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
        t->ckdir = path_join(t->vdir, "checkpoints");
    if (!c->logger && c->enable_checkpointing && !fdr) {
        /* Checkpoints without a logger go to default_root_dir/checkpoints. */
        t->ckdir = path_join(c->default_root_dir, "checkpoints");
    }
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
            if (!isfinite(io.loss)) {
                lg_progress_end(&t->bar);
                st = fail(t, LG_ERR_NUMERIC,
                          "the loss is %s at step %lld (epoch %lld, batch %lld); training "
                          "stopped. The last good checkpoint is %s",
                          isnan(io.loss) ? "nan" : "infinite", (long long)t->global_step,
                          (long long)t->epoch, (long long)t->batch,
                          t->last_saved ? t->last_saved : "none (none was saved yet)");
                goto out;
            }
            for (int k = 0; k < nl && k < MAX_METRICS; k++) {
                const lg_metric *m = &def->logs[LG_STAGE_TRAIN][k];
                char name[128];
                if (m->flags & LG_LOG_EPOCH)
                    ep_sum[k] += (double)t->logbuf[k] * b->n;
                train_metric_name(m, 0, name, sizeof name);
                metric_set(&t->latest, name, t->logbuf[k]);
            }
            ep_count += b->n;
            t->batch++;
            in_accum++;
            if (in_accum == accum || t->batch == t->n_train) {
                /* Lightning scales each loss by 1/accumulate_grad_batches. */
                if (accum > 1) {
                    float s = 1.0f / (float)accum;
                    for (size_t i = 0; i < def->n_train; i++)
                        t->grads[i] *= s;
                }
                if (c->gradient_clip_val > 0) {
                    if (strcmp(c->gradient_clip_algorithm, "value") == 0)
                        st = lg_clip_grad_value(&t->ctx, t->grads, def->n_train, c->gradient_clip_val);
                    else
                        st = lg_clip_grad_norm(&t->ctx, t->grads, def->n_train,
                                               c->gradient_clip_val, 2.0, NULL);
                    if (st != LG_OK)
                        goto out;
                }
                for (int g = 0; g < t->optim.ngroups && g < LG_MAX_GROUPS; g++)
                    lr_now[g] = t->optim.groups[g].lr;
                if ((st = lg_optim_step(&t->optim, &t->ctx, t->params, t->grads)) != LG_OK)
                    goto out;
                memset(t->grads, 0, def->n_floats * sizeof(float));
                in_accum = 0;
                t->global_step++;
                if (t->have_sched && t->sched_per_step && t->sched.cfg.kind != LG_SCHED_PLATEAU &&
                    (st = lg_sched_step(&t->sched, &t->optim, 0, t->err)) != LG_OK)
                    goto out;
                for (int g = 0; g < t->optim.ngroups; g++) {
                    char name[64];
                    lr_name(t, g, name, sizeof name);
                    metric_set(&t->latest, name, lr_now[g]);
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
                        train_metric_name(m, 0, store[n], 128);
                        names[n] = store[n];
                        vals[n++] = t->logbuf[k];
                    }
                    for (int g = 0; g < t->optim.ngroups; g++) {
                        lr_name(t, g, store[n], 128);
                        names[n] = store[n];
                        vals[n++] = lr_now[g];
                    }
                    log_row(t, t->global_step - 1, n, names, vals);
                }
                if (max_steps >= 0 && t->global_step >= max_steps)
                    stop_now = 1;
                if (c->ck_every_n_train_steps > 0 &&
                    t->global_step % c->ck_every_n_train_steps == 0 &&
                    (st = checkpoint_now(t)) != LG_OK)
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
                (st = save_last(t)) != LG_OK)
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
                train_metric_name(m, 1, store[n], 128);
                names[n] = store[n];
                vals[n] = ep_count ? ep_sum[k] / (double)ep_count : NAN;
                metric_set(&t->latest, names[n], vals[n]);
                n++;
            }
            if (n)
                log_row(t, t->global_step - 1, n, names, vals);
        }
        t->epoch_done = 1;
        if (t->have_sched && !t->sched_per_step && t->sched.cfg.kind != LG_SCHED_PLATEAU &&
            (st = lg_sched_step(&t->sched, &t->optim, 0, t->err)) != LG_OK)
            goto out;
        if (c->ck_every_n_epochs > 0 && (t->epoch + 1) % c->ck_every_n_epochs == 0 &&
            (st = checkpoint_now(t)) != LG_OK)
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

/* ---- validate / test / predict -------------------------------------------- */

static lg_status load_for_eval(trainer *t) {
    if (!t->cfg->ckpt_path[0]) {
        printf("no --ckpt_path given: using the initial (untrained) weights\n");
        return LG_OK;
    }
    char *path;
    lg_status st = resolve_ckpt(t, t->cfg->ckpt_path, &path);
    if (st != LG_OK)
        return st;
    st = ckpt_load(t, path, 0);
    if (st == LG_OK)
        printf("Loaded model weights from the checkpoint at %s\n", path);
    free(path);
    return st;
}

static lg_status evaluate(trainer *t, lg_stage stage) {
    const lg_model_def *def = t->def;
    lg_tconfig *c = t->cfg;
    const lg_split_spec *spec = def->data ? def->data->split[stage] : NULL;
    if (!spec)
        return fail(t, LG_ERR_UNSUPPORTED, "the spec's data block has no %s split",
                    stage == LG_STAGE_TEST ? "test" : "val");
    lg_status st;
    if (c->logger && !c->fast_dev_run) {
        const char *cols[MAX_METRICS];
        int n = 0;
        for (int k = 0; k < def->n_logs[stage] && n < MAX_METRICS; k++)
            cols[n++] = def->logs[stage][k].name;
        if ((st = logger_open(t, cols, n)) != LG_OK)
            return st;
    }
    if ((st = load_for_eval(t)) != LG_OK)
        return st;
    feed f;
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
    log_row(t, 0, def->n_logs[stage], names, means);
    print_results(t, stage, means);
    return LG_OK;
}

static lg_status predict(trainer *t) {
    const lg_model_def *def = t->def;
    lg_tconfig *c = t->cfg;
    const lg_data_def *dd = def->data;
    lg_stage from = LG_STAGE_PREDICT;
    const lg_split_spec *spec = dd ? dd->split[LG_STAGE_PREDICT] : NULL;
    if (!spec && dd && dd->split[LG_STAGE_TEST]) {
        spec = dd->split[LG_STAGE_TEST];
        from = LG_STAGE_TEST;
        printf("the spec has no predict split: predicting its test split\n");
    }
    if (!spec)
        return fail(t, LG_ERR_UNSUPPORTED, "the spec's data block has no predict or test split");
    if (!def->predict_step || def->predict_width <= 0)
        return fail(t, LG_ERR_UNSUPPORTED, "the spec has no predict step");
    lg_status st;
    if ((st = load_for_eval(t)) != LG_OK)
        return st;
    char *out = NULL;
    if (c->logger && !c->fast_dev_run) {
        if ((st = logger_open(t, NULL, 0)) != LG_OK)
            return st;
        out = path_join(t->vdir, c->predict_output);
    } else {
        out = xstrdup(c->predict_output);
    }
    if (!out)
        return fail(t, LG_ERR_NOMEM, "out of memory");
    size_t ol = strlen(out);
    int as_json = ol > 5 && strcmp(out + ol - 5, ".json") == 0;
    FILE *fp = fopen(out, "w");
    if (!fp) {
        st = fail(t, LG_ERR_IO, "cannot create '%s': %s", out, strerror(errno));
        free(out);
        return st;
    }
    feed f;
    if ((st = feed_open(t, &f, from, spec, 0)) != LG_OK)
        goto done;
    int64_t n = apply_limit(f.n_batches, &c->limit_predict_batches);
    if (c->fast_dev_run && n > c->fast_dev_run)
        n = c->fast_dev_run;
    int K = def->predict_width;
    if (as_json)
        fputs("[\n", fp);
    else {
        fputs("index,prediction", fp);
        for (int k = 0; k < K; k++) {
            if (def->class_names)
                fprintf(fp, ",%s", def->class_names[k]);
            else
                fprintf(fp, ",p%d", k);
        }
        fputs(",label\n", fp);
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
                fprintf(fp, "%s  {\"index\": %lld, \"prediction\": %d", rows ? ",\n" : "", idx, best);
                if (def->class_names)
                    fprintf(fp, ", \"class\": \"%s\"", def->class_names[best]);
                fputs(", \"probabilities\": [", fp);
                for (int k = 0; k < K; k++)
                    fprintf(fp, "%s%.6g", k ? ", " : "", p[k]);
                fprintf(fp, "], \"label\": %d}", b->label ? b->label[s] : -1);
            } else {
                fprintf(fp, "%lld,%d", idx, best);
                for (int k = 0; k < K; k++)
                    fprintf(fp, ",%.6g", p[k]);
                fprintf(fp, ",%d\n", b->label ? b->label[s] : -1);
            }
            rows++;
        }
        lg_progress_update(&t->bar, i + 1, NULL, 0);
        if (g_signal)
            break;
    }
    lg_progress_end(&t->bar);
    if (as_json)
        fputs(rows ? "\n]\n" : "]\n", fp);
    printf("wrote %lld predictions to %s\n", (long long)rows, out);
done:
    feed_close(&f);
    if (fclose(fp) != 0 && st == LG_OK)
        st = fail(t, LG_ERR_IO, "cannot write '%s': %s", out, strerror(errno));
    free(out);
    return st;
}

/* ---- setup and teardown --------------------------------------------------- */

static lg_status setup(trainer *t) {
    const lg_model_def *def = t->def;
    lg_tconfig *c = t->cfg;
    lg_status st;
    if (strcmp(c->precision, "32-true") != 0)
        return fail(t, LG_ERR_UNSUPPORTED,
                    "precision '%s' is not implemented on this build (only 32-true, also "
                    "spelled 32)",
                    c->precision);
    if (strcmp(c->accelerator, "gpu") == 0)
        return fail(t, LG_ERR_UNSUPPORTED,
                    "accelerator gpu: this trainer was built without CUDA (use --accelerator cpu)");
    if (strcmp(c->accelerator, "auto") == 0)
        printf("accelerator auto: using cpu (this trainer was built without CUDA)\n");
    if (strcmp(c->devices, "auto") != 0 && strcmp(c->devices, "1") != 0 &&
        strcmp(c->devices, "-1") != 0)
        return fail(t, LG_ERR_UNSUPPORTED,
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
        return fail(t, LG_ERR_NOMEM, "cannot allocate %zu parameters", def->n_floats);
    lg_prng_seed(&t->rng, (uint64_t)c->seed);
    if (def->init)
        def->init(t->params, &t->rng);
    else
        lg_init_params(def, t->params, &t->rng);
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
        return usage(t, "batch_size %d must be at least 1", t->lopt.batch_size);
    t->dcfg.data_dir = c->data_dir[0] ? c->data_dir : NULL;
    t->dcfg.mirror = c->mirror[0] ? c->mirror : NULL;
    t->dcfg.quiet = !c->enable_progress_bar;
    size_t arena = def->arena_fixed + def->arena_per_sample * (size_t)t->lopt.batch_size;
    arena = (arena + 63) / 64 * 64;
    t->arena = aligned_alloc(64, arena ? arena : 64);
    if (!t->arena)
        return fail(t, LG_ERR_NOMEM,
                    "cannot allocate %.1f MiB for activations (batch_size %d); try a smaller "
                    "--batch_size",
                    arena / 1048576.0, t->lopt.batch_size);
    int nl = 1;
    for (int s = 0; s < LG_STAGE_COUNT; s++)
        nl = def->n_logs[s] > nl ? def->n_logs[s] : nl;
    if (nl > MAX_METRICS)
        return fail(t, LG_ERR_UNSUPPORTED, "more than %d logged values", MAX_METRICS);
    t->logbuf = calloc((size_t)nl, sizeof(float));
    t->outbuf = calloc((size_t)t->lopt.batch_size * (size_t)(def->predict_width > 0 ? def->predict_width : 1),
                       sizeof(float));
    if (!t->logbuf || !t->outbuf)
        return fail(t, LG_ERR_NOMEM, "out of memory");
    return LG_OK;
}

static void teardown(trainer *t) {
    for (int i = 0; i < t->n_dsc; i++)
        lg_dataset_close(t->dsc[i].ds);
    if (t->have_optim)
        lg_optim_free(&t->optim);
    if (t->have_ctx)
        lg_ctx_free(&t->ctx);
    free(t->params);
    free(t->grads);
    free(t->arena);
    free(t->logbuf);
    free(t->outbuf);
    free(t->root);
    free(t->vdir);
    free(t->ckdir);
    if (t->metrics)
        fclose(t->metrics);
    for (int i = 0; i < t->n_cols; i++)
        free(t->cols[i]);
    free(t->cols);
    metric_free(&t->latest);
    for (int i = 0; i < t->n_best; i++)
        free(t->best[i].path);
    free(t->best);
    free(t->best_path);
    free(t->last_saved);
}

int lg_run(const lg_model_def *def, lg_tconfig *cfg, lg_error *err) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.def = def;
    t.cfg = cfg;
    t.err = err;
    t.prog = def->name ? def->name : "trainer";
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
        default: st = fail(&t, LG_ERR_ARG, "unknown subcommand"); break;
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
