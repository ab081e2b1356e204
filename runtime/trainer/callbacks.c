/* callbacks.c — what runs around the loop: the logger and the callbacks.
 *
 * The CSV/YAML logger writes lightning_logs/version_N/ (the next free N) with
 * hparams.yaml (sorted keys, as yaml.dump writes them), config.json (the
 * effective configuration) and metrics.csv in CSVLogger's layout (one row per
 * log event, the sorted union of columns, epoch and step in every row).
 * ModelCheckpoint keeps the top-k files by a monitored value (or the latest
 * k without one) plus last.ckpt; EarlyStopping counts validation checks
 * without improvement. Both keep their state in lg_trainer so checkpoints
 * (state.c) carry it across a resume. Also the small helpers every file of
 * runtime/trainer/ uses. loop.c decides when each of these runs.
 */
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

lg_status lg_tr_fail(lg_trainer *t, lg_status code, const char *fmt, ...) {
    char msg[sizeof t->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lg_error_set(t->err, code, "%s", msg);
}

lg_status lg_tr_usage(lg_trainer *t, const char *fmt, ...) {
    char msg[sizeof t->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->usage = 1;
    return lg_error_set(t->err, LG_ERR_ARG, "%s", msg);
}

char *lg_tr_xstrdup(const char *s) {
    return strdup(s ? s : "");
}

char *lg_tr_path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

lg_status lg_tr_mkdir_p(lg_trainer *t, const char *path) {
    char *p = lg_tr_xstrdup(path);
    if (!p)
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char keep = *c;
            *c = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                lg_status st = lg_tr_fail(t, LG_ERR_IO, "cannot create directory '%s': %s", p,
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

void lg_tr_metric_set(lg_metric_store *m, const char *name, double v) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->name[i], name) == 0) {
            m->value[i] = v;
            return;
        }
    if (m->n < MAX_METRICS && (m->name[m->n] = lg_tr_xstrdup(name)))
        m->value[m->n++] = v;
}

int lg_tr_metric_get(const lg_metric_store *m, const char *name, double *v) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->name[i], name) == 0) {
            *v = m->value[i];
            return 1;
        }
    return 0;
}

void lg_tr_metric_free(lg_metric_store *m) {
    for (int i = 0; i < m->n; i++)
        free(m->name[i]);
    m->n = 0;
}

/* The logged name of train metric k for a step row (epoch = 0) or an epoch
 * row (epoch = 1): Lightning adds _step/_epoch when a value is both. */
void lg_tr_train_metric_name(const lg_metric *m, int epoch, char *buf, size_t n) {
    int both = (m->flags & LG_LOG_STEP) && (m->flags & LG_LOG_EPOCH);
    snprintf(buf, n, "%s%s", m->name, both ? (epoch ? "_epoch" : "_step") : "");
}

void lg_tr_lr_name(lg_trainer *t, int g, char *buf, size_t n) {
    if (t->optim.ngroups > 1)
        snprintf(buf, n, "lr-%s/pg%d", t->optim_name, g + 1);
    else
        snprintf(buf, n, "lr-%s", t->optim_name);
}

/* Every name a monitor may use in this run. */
int lg_tr_known_metrics(lg_trainer *t, const char **names, char store[][128], int cap) {
    const lg_model_def *def = t->def;
    int n = 0;
    for (int k = 0; k < def->n_logs[LG_STAGE_TRAIN] && n + 2 < cap; k++) {
        const lg_metric *m = &def->logs[LG_STAGE_TRAIN][k];
        if (m->flags & LG_LOG_STEP)
            lg_tr_train_metric_name(m, 0, store[n], 128), names[n] = store[n], n++;
        if (m->flags & LG_LOG_EPOCH)
            lg_tr_train_metric_name(m, 1, store[n], 128), names[n] = store[n], n++;
        if (!(m->flags & (LG_LOG_STEP | LG_LOG_EPOCH)))
            snprintf(store[n], 128, "%s", m->name), names[n] = store[n], n++;
    }
    for (int k = 0; k < def->n_logs[LG_STAGE_VALIDATE] && n < cap; k++)
        snprintf(store[n], 128, "%s", def->logs[LG_STAGE_VALIDATE][k].name), names[n] = store[n],
                                                                             n++;
    for (int g = 0; t->have_optim && g < t->optim.ngroups && n < cap; g++)
        lg_tr_lr_name(t, g, store[n], 128), names[n] = store[n], n++;
    return n;
}

lg_status lg_tr_check_monitor(lg_trainer *t, const char *flag, const char *name) {
    if (!name || !*name)
        return LG_OK;
    const char *names[MAX_METRICS];
    static char store[MAX_METRICS][128];
    int n = lg_tr_known_metrics(t, names, store, MAX_METRICS);
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
        return lg_tr_usage(t, "--%s '%s' is not a logged value; did you mean '%s'? (logged: %s)",
                    flag, name, s, list);
    return lg_tr_usage(t, "--%s '%s' is not a logged value (logged: %s)", flag, name, list);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int64_t lg_tr_max_version(const char *root) {
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

static lg_status write_text(lg_trainer *t, const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f)
        return lg_tr_fail(t, LG_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    fputs(text, f);
    if (fclose(f) != 0)
        return lg_tr_fail(t, LG_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return LG_OK;
}

/* Creates version_N (the next free N), hparams.yaml, config.json and the
 * metrics.csv header with columns (sorted, as CSVLogger writes them). */
lg_status lg_tr_logger_open(lg_trainer *t, const char *const *cols, int ncols) {
    lg_status st;
    t->root = lg_tr_path_join(t->cfg->default_root_dir, "lightning_logs");
    if (!t->root)
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    if ((st = lg_tr_mkdir_p(t, t->root)) != LG_OK)
        return st;
    for (int64_t v = lg_tr_max_version(t->root) + 1;; v++) {
        char name[64];
        snprintf(name, sizeof name, "version_%lld", (long long)v);
        free(t->vdir);
        t->vdir = lg_tr_path_join(t->root, name);
        if (!t->vdir)
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
        if (mkdir(t->vdir, 0755) == 0) {
            t->version = v;
            break;
        }
        if (errno != EEXIST)
            return lg_tr_fail(t, LG_ERR_IO, "cannot create '%s': %s", t->vdir, strerror(errno));
    }
    t->bar.v_num = t->version;
    t->ckdir = lg_tr_path_join(t->vdir, "checkpoints");
    /* hparams.yaml: sorted keys, as yaml.dump writes them. */
    char *path = lg_tr_path_join(t->vdir, "hparams.yaml");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        st = lg_tr_fail(t, LG_ERR_IO, "cannot create '%s': %s", path ? path : "hparams.yaml",
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
        st = lg_tr_fail(t, LG_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        free(path);
        return st;
    }
    free(path);
    char *cfgtext = lg_tconfig_dump(t->cfg, t->def);
    path = lg_tr_path_join(t->vdir, "config.json");
    st = cfgtext && path ? write_text(t, path, cfgtext) : lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    free(cfgtext);
    free(path);
    if (st != LG_OK)
        return st;
    /* metrics.csv */
    t->cols = calloc((size_t)ncols + 2, sizeof *t->cols);
    if (!t->cols)
        return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    t->cols[t->n_cols++] = lg_tr_xstrdup("epoch");
    t->cols[t->n_cols++] = lg_tr_xstrdup("step");
    for (int i = 0; i < ncols; i++) {
        int dup = 0;
        for (int j = 0; j < t->n_cols; j++)
            dup |= strcmp(t->cols[j], cols[i]) == 0;
        if (!dup)
            t->cols[t->n_cols++] = lg_tr_xstrdup(cols[i]);
    }
    qsort(t->cols, (size_t)t->n_cols, sizeof *t->cols, cmp_str);
    path = lg_tr_path_join(t->vdir, "metrics.csv");
    t->metrics = path ? fopen(path, "w") : NULL;
    if (!t->metrics) {
        st = lg_tr_fail(t, LG_ERR_IO, "cannot create '%s': %s", path ? path : "metrics.csv",
                  strerror(errno));
        free(path);
        return st;
    }
    free(path);
    if (t->cfg->tensorboard && (st = lg_tb_open(&t->tb, t->vdir, t->err)) != LG_OK)
        return st;
    for (int i = 0; i < t->n_cols; i++)
        fprintf(t->metrics, "%s%s", i ? "," : "", t->cols[i]);
    fputc('\n', t->metrics);
    fflush(t->metrics);
    return LG_OK;
}

/* One row of metrics.csv: the given (name, value) pairs plus epoch and step. */
void lg_tr_log_row(lg_trainer *t, int64_t step, int n, const char *const *names, const double *vals) {
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
    for (int k = 0; k < n; k++)
        if (lg_tb_scalar(&t->tb, names[k], vals[k], step, t->err) != LG_OK) {
            /* a full disk stops the event file, not the run (metrics.csv has it all) */
            fprintf(stderr, "warning: %s; TensorBoard logging stops\n", t->err->msg);
            lg_tb_close(&t->tb);
            break;
        }
    if (t->tb.f && n > 0) {
        char ep[16] = "epoch";
        lg_tb_scalar(&t->tb, ep, (double)t->epoch, step, NULL);
    }
}

/* Fills the filename template: {epoch}, {step}, {name} and {name:fmt}. */
static void format_name(lg_trainer *t, char *buf, size_t n) {
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
        else if (lg_tr_metric_get(&t->latest, key, &v)) {
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

lg_status lg_tr_save_last(lg_trainer *t) {
    lg_status st = lg_tr_mkdir_p(t, t->ckdir);
    if (st != LG_OK)
        return st;
    char *p = lg_tr_path_join(t->ckdir, "last.ckpt");
    st = p ? lg_tr_ckpt_save(t, p) : lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
    free(p);
    return st;
}

/* A checkpoint is due: top-k bookkeeping, the file, and last.ckpt. */
lg_status lg_tr_checkpoint_now(lg_trainer *t) {
    lg_tconfig *c = t->cfg;
    if (!t->ckdir || !c->enable_checkpointing)
        return LG_OK;
    lg_status st = lg_tr_mkdir_p(t, t->ckdir);
    if (st != LG_OK)
        return st;
    double score;
    const char *mode = c->ck_mode;
    int have = 1;
    if (c->ck_monitor[0]) {
        have = lg_tr_metric_get(&t->latest, c->ck_monitor, &score) && isfinite(score);
    } else {
        score = (double)t->global_step; /* keep the latest k */
        mode = "max";
    }
    if (have && c->ck_save_top_k != 0) {
        char name[512];
        format_name(t, name, sizeof name);
        strncat(name, ".ckpt", sizeof name - strlen(name) - 1);
        char *path = lg_tr_path_join(t->ckdir, name);
        if (!path)
            return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
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
            if ((st = lg_tr_ckpt_save(t, path)) != LG_OK) {
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
                lg_topk *nb = realloc(t->best, (size_t)(t->n_best + 1) * sizeof *nb);
                if (!nb) {
                    free(path);
                    return lg_tr_fail(t, LG_ERR_NOMEM, "out of memory");
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
            t->best_path = lg_tr_xstrdup(t->best[bi].path);
            t->best_score = t->best[bi].score;
        } else {
            free(path);
        }
    }
    if (c->ck_save_last)
        return lg_tr_save_last(t);
    return LG_OK;
}

void lg_tr_early_stopping_check(lg_trainer *t) {
    lg_tconfig *c = t->cfg;
    double v;
    if (!c->es_monitor[0] || !lg_tr_metric_get(&t->latest, c->es_monitor, &v))
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
