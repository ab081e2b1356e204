/* flags.c — the trainer's flags: defaults, the spec's trainer block, --config
 * JSON and argv, in that order, into one lg_tconfig.
 *
 * Input: the model def (its hparam table and trainer defaults) and argv.
 * Output: a checked lg_tconfig, or a usage error (LG_ERR_ARG) whose message
 * names the flag, the bad value and, for a misspelling, the closest name.
 * The table below is the single list of trainer options: parsing, --help,
 * --print_config and the config.json saved with each run all read it.
 * Names and meanings are Lightning 2.x's Trainer arguments; the 1.x
 * spellings (--gpus, --resume_from_checkpoint, --precision 16, ...) are
 * translated on the way in. Neighbours: main.c calls lg_tconfig_parse,
 * loop.c reads the result.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    T_INT,
    T_FLOAT,
    T_BOOL,
    T_STR,
    T_ENUM,
    T_LIMIT,     /* int batches or a fraction */
    T_INT_NONE,  /* int, or none (stored as 0) */
    T_FDR,       /* fast_dev_run: bool or int */
    T_PRECISION,
    T_DEVICES,
    T_DETERMINISTIC, /* bool or "warn" */
} ftype;

enum { C_FIT = 1, C_VAL = 2, C_TEST = 4, C_PRED = 8, C_ALL = 15 };

typedef struct flag {
    const char *name;
    ftype type;
    size_t off;
    const char *dflt;
    const char *choices; /* ENUM */
    double lo, hi;       /* INT/FLOAT range (lo > hi: none) */
    int nullable;        /* "none"/null resets to the empty value */
    unsigned cmds;
    const char *section; /* trainer | data | checkpoint | early_stopping */
    const char *doc;
} flag;

#define OFF(f) offsetof(lg_tconfig, f)
#define NOR 1, 0 /* no range */

static const flag flags[] = {
    {"max_epochs", T_INT, OFF(max_epochs), "-1", NULL, -1, 1e18, 0, C_FIT, "trainer",
     "stop after this many epochs (-1: 1000 unless --max_steps is set)"},
    {"min_epochs", T_INT, OFF(min_epochs), "0", NULL, 0, 1e18, 0, C_FIT, "trainer",
     "train at least this many epochs (early stopping waits)"},
    {"max_steps", T_INT, OFF(max_steps), "-1", NULL, -1, 1e18, 0, C_FIT, "trainer",
     "stop after this many optimizer steps (-1: no limit)"},
    {"limit_train_batches", T_LIMIT, OFF(limit_train_batches), "1.0", NULL, NOR, 0, C_FIT,
     "trainer", "train batches per epoch: an int, or a fraction of the loader"},
    {"limit_val_batches", T_LIMIT, OFF(limit_val_batches), "1.0", NULL, NOR, 0, C_FIT | C_VAL,
     "trainer", "validation batches: an int, or a fraction (0 disables validation)"},
    {"limit_test_batches", T_LIMIT, OFF(limit_test_batches), "1.0", NULL, NOR, 0, C_TEST,
     "trainer", "test batches: an int, or a fraction"},
    {"limit_predict_batches", T_LIMIT, OFF(limit_predict_batches), "1.0", NULL, NOR, 0, C_PRED,
     "trainer", "predict batches: an int, or a fraction"},
    {"overfit_batches", T_LIMIT, OFF(overfit_batches), "0.0", NULL, NOR, 0, C_FIT, "trainer",
     "train and validate on this many (unshuffled) training batches (0: off)"},
    {"val_check_interval", T_LIMIT, OFF(val_check_interval), "1.0", NULL, NOR, 0, C_FIT,
     "trainer", "validate every this many training batches (int) or fraction of an epoch"},
    {"check_val_every_n_epoch", T_INT_NONE, OFF(check_val_every_n_epoch), "1", NULL, 1, 1e18, 1,
     C_FIT, "trainer", "validate every n epochs (none: an int --val_check_interval counts all batches)"},
    {"num_sanity_val_steps", T_INT, OFF(num_sanity_val_steps), "2", NULL, -1, 1e18, 0, C_FIT,
     "trainer", "validation batches run before training (-1: all)"},
    {"fast_dev_run", T_FDR, OFF(fast_dev_run), "false", NULL, 0, 1e18, 0, C_ALL, "trainer",
     "run n (true: 1) batches of each loop once, without logs or checkpoints"},
    {"accumulate_grad_batches", T_INT, OFF(accumulate_grad_batches), "1", NULL, 1, 1e9, 0, C_FIT,
     "trainer", "batches whose gradients are summed before each optimizer step"},
    {"gradient_clip_val", T_FLOAT, OFF(gradient_clip_val), "0", NULL, 0, 1e300, 1, C_FIT,
     "trainer", "clip gradients at this value (0 or none: no clipping)"},
    {"gradient_clip_algorithm", T_ENUM, OFF(gradient_clip_algorithm), "norm", "norm|value", NOR, 0,
     C_FIT, "trainer", "clip the global 2-norm (norm) or each element (value)"},
    {"precision", T_PRECISION, OFF(precision), "32-true", NULL, NOR, 0, C_ALL, "trainer",
     "numeric precision: 32-true (32); 16-mixed (16), bf16-mixed (bf16), 64-true are not built"},
    {"accelerator", T_ENUM, OFF(accelerator), "auto", "cpu|gpu|cuda|auto", NOR, 0, C_ALL,
     "trainer", "hardware to run on"},
    {"devices", T_DEVICES, OFF(devices), "auto", NULL, NOR, 0, C_ALL, "trainer",
     "number of devices (auto, or a count; cpu trains in one process)"},
    {"deterministic", T_DETERMINISTIC, OFF(deterministic), "false", NULL, NOR, 0, C_ALL,
     "trainer", "deterministic algorithms (lgen's CPU kernels always are)"},
    {"seed", T_INT, OFF(seed), "42", NULL, 0, 4294967295.0, 0, C_ALL, "trainer",
     "seed of initialisation, data order and augmentation (alias --seed_everything)"},
    {"log_every_n_steps", T_INT, OFF(log_every_n_steps), "50", NULL, 1, 1e18, 0, C_FIT,
     "trainer", "write training metrics every n optimizer steps"},
    {"enable_progress_bar", T_BOOL, OFF(enable_progress_bar), "true", NULL, NOR, 0, C_ALL,
     "trainer", "show progress (a bar on a terminal, lines otherwise)"},
    {"enable_model_summary", T_BOOL, OFF(enable_model_summary), "true", NULL, NOR, 0, C_FIT,
     "trainer", "print the parameter table and counts before training"},
    {"enable_checkpointing", T_BOOL, OFF(enable_checkpointing), "true", NULL, NOR, 0, C_FIT,
     "trainer", "save checkpoints (ModelCheckpoint)"},
    {"logger", T_BOOL, OFF(logger), "true", NULL, NOR, 0, C_ALL, "trainer",
     "write lightning_logs/version_N/ (hparams.yaml, metrics.csv, config.json)"},
    {"tensorboard", T_BOOL, OFF(tensorboard), "true", NULL, NOR, 0, C_ALL, "trainer",
     "also write TensorBoard event files (events.out.tfevents.*) beside metrics.csv"},
    {"default_root_dir", T_STR, OFF(default_root_dir), ".", NULL, NOR, 0, C_ALL, "trainer",
     "directory of lightning_logs/"},
    {"ckpt_path", T_STR, OFF(ckpt_path), "", NULL, NOR, 1, C_ALL, "trainer",
     "checkpoint to resume or evaluate: a path, a URL, last or best (alias --resume_from_checkpoint)"},
    {"init_from", T_STR, OFF(init_from), "", NULL, NOR, 1, C_ALL, "trainer",
     "initialise parameters and buffers from a safetensors file with PyTorch names before the "
     "run (tensors whose names match; not when --ckpt_path gives the weights)"},
    {"init_prefix", T_STR, OFF(init_prefix), "", NULL, NOR, 1, C_ALL, "trainer",
     "prepended to --init_from's tensor names: with backbone.body. the file's conv1.weight "
     "initialises backbone.body.conv1.weight"},
    {"num_threads", T_INT, OFF(num_threads), "0", NULL, 0, 1024, 0, C_ALL, "trainer",
     "compute threads (0: every online CPU)"},
    {"predict_output", T_STR, OFF(predict_output), "predictions.csv", NULL, NOR, 0, C_PRED,
     "trainer", "file in the version directory for predictions (.csv or .json)"},
    {"predict_input", T_STR, OFF(predict_input), "", NULL, NOR, 1, C_PRED, "trainer",
     "predict these image files (or every image in a directory) instead of the predict split; "
     "repeat the flag for more"},
    {"data_dir", T_STR, OFF(data_dir), "", NULL, NOR, 1, C_ALL, "data",
     "dataset cache directory (default $LGEN_DATA_DIR, else ~/.cache/lgen)"},
    {"mirror", T_STR, OFF(mirror), "", NULL, NOR, 1, C_ALL, "data",
     "a base URL tried before the spec's mirrors"},
    {"batch_size", T_INT, OFF(batch_size), "1", NULL, 1, 1 << 24, 0, C_ALL, "data",
     "samples per batch"},
    {"num_workers", T_INT, OFF(num_workers), "0", NULL, 0, 256, 0, C_ALL, "data",
     "loader threads (0: load in the training thread)"},
    {"checkpoint.monitor", T_STR, OFF(ck_monitor), "", NULL, NOR, 1, C_FIT, "checkpoint",
     "logged value that ranks checkpoints (none: keep the latest)"},
    {"checkpoint.mode", T_ENUM, OFF(ck_mode), "min", "min|max", NOR, 0, C_FIT, "checkpoint",
     "whether a smaller or a larger monitored value is better"},
    {"checkpoint.save_top_k", T_INT, OFF(ck_save_top_k), "1", NULL, -1, 1e9, 0, C_FIT,
     "checkpoint", "best checkpoints kept (-1: all, 0: none)"},
    {"checkpoint.save_last", T_BOOL, OFF(ck_save_last), "true", NULL, NOR, 0, C_FIT,
     "checkpoint", "also keep last.ckpt, the latest state"},
    {"checkpoint.every_n_epochs", T_INT, OFF(ck_every_n_epochs), "1", NULL, 0, 1e9, 0, C_FIT,
     "checkpoint", "save at the end of every n-th epoch (0: never)"},
    {"checkpoint.every_n_train_steps", T_INT, OFF(ck_every_n_train_steps), "0", NULL, 0, 1e18,
     0, C_FIT, "checkpoint", "save every n optimizer steps, mid-epoch too (0: off)"},
    {"checkpoint.filename", T_STR, OFF(ck_filename), "{epoch}-{step}", NULL, NOR, 0, C_FIT,
     "checkpoint", "file name template: {epoch}, {step}, {metric} or {metric:.3f}"},
    {"early_stopping.monitor", T_STR, OFF(es_monitor), "", NULL, NOR, 1, C_FIT,
     "early_stopping", "logged value to watch (none: no early stopping)"},
    {"early_stopping.mode", T_ENUM, OFF(es_mode), "min", "min|max", NOR, 0, C_FIT,
     "early_stopping", "whether a smaller or a larger value is better"},
    {"early_stopping.patience", T_INT, OFF(es_patience), "3", NULL, 0, 1e9, 0, C_FIT,
     "early_stopping", "validation checks without improvement before stopping"},
    {"early_stopping.min_delta", T_FLOAT, OFF(es_min_delta), "0.0", NULL, 0, 1e300, 0, C_FIT,
     "early_stopping", "smallest change that counts as an improvement"},
    {"early_stopping.check_finite", T_BOOL, OFF(es_check_finite), "true", NULL, NOR, 0, C_FIT,
     "early_stopping", "stop when the monitored value is NaN or infinite"},
    {"lr_monitor.logging_interval", T_ENUM, OFF(lr_logging_interval), "step", "step|epoch", NOR, 0,
     C_FIT, "lr_monitor", "log the learning rate with every logged step, or once per epoch"},
};
#define N_FLAGS ((int)(sizeof flags / sizeof flags[0]))

/* Lightning 1.x and LightningCLI spellings. */
static const struct {
    const char *from, *to;
} aliases[] = {
    {"resume_from_checkpoint", "ckpt_path"},
    {"seed_everything", "seed"},
    {"checkpoint_monitor", "checkpoint.monitor"},
    {"checkpoint_callback", "enable_checkpointing"},
};

static const char *const cmd_names[] = {"fit", "validate", "test", "predict"};
static const char *const cmd_docs[] = {
    "train the model (Lightning's trainer.fit), validating as it goes",
    "run the validation loop once and print its metrics",
    "run the test loop once and print its metrics",
    "write predictions (class and probabilities) for the predict split",
};

const char *lg_cmd_name(lg_cmd c) {
    return (unsigned)c < LG_CMD_COUNT ? cmd_names[c] : "?";
}

/* ---- small helpers ------------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[m];
}

const char *lg_suggest(const char *s, const char *const *names, int n) {
    const char *best = NULL;
    size_t bd = 99, limit = strlen(s) / 3 + 1;
    if (limit > 3)
        limit = 3;
    for (int i = 0; i < n; i++) {
        size_t d = edit_distance(s, names[i]);
        /* A prefix of a long name also counts ("--max_epoch"). */
        if (d < bd) {
            bd = d;
            best = names[i];
        }
    }
    return bd <= limit ? best : NULL;
}

static lg_status set_str(char **dst, const char *v) {
    char *c = strdup(v);
    if (!c)
        return LG_ERR_NOMEM;
    free(*dst);
    *dst = c;
    return LG_OK;
}

static int parse_bool(const char *v, int *out) {
    static const char *const t[] = {"true", "1", "yes", "on"}, *const f[] = {"false", "0", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, t[i]) == 0)
            return *out = 1, 1;
        if (strcasecmp(v, f[i]) == 0)
            return *out = 0, 1;
    }
    return 0;
}

static int parse_int(const char *v, int64_t *out) {
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return 0;
    *out = x;
    return 1;
}

static int parse_float(const char *v, double *out) {
    errno = 0;
    char *end;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        return 0;
    *out = x;
    return 1;
}

static int is_none(const char *v) {
    return strcasecmp(v, "none") == 0 || strcasecmp(v, "null") == 0;
}

/* Where a value came from, for messages: "" (command line) or " in run.json". */
typedef struct origin {
    const char *where;
} origin;

static lg_status bad_value(lg_error *err, const char *name, const char *v, const origin *o,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static lg_status bad_value(lg_error *err, const char *name, const char *v, const origin *o,
                           const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return lg_error_set(err, LG_ERR_ARG, "invalid value '%s' for --%s%s: %s", v, name, o->where,
                        why);
}

static lg_status set_flag(lg_tconfig *cfg, const flag *f, const char *v, const origin *o,
                          lg_error *err) {
    char *base = (char *)cfg + f->off;
    int64_t i;
    double d;
    int b;
    switch (f->type) {
    case T_INT:
    case T_INT_NONE:
        if (f->type == T_INT_NONE && is_none(v)) {
            *(int64_t *)base = 0;
            return LG_OK;
        }
        if (!parse_int(v, &i))
            return bad_value(err, f->name, v, o, "expected an integer%s",
                             f->type == T_INT_NONE ? " or none" : "");
        if (f->lo <= f->hi && ((double)i < f->lo || (double)i > f->hi))
            return bad_value(err, f->name, v, o, "must be in [%.0f, %.0f]", f->lo, f->hi);
        *(int64_t *)base = i;
        return LG_OK;
    case T_FLOAT:
        if (f->nullable && is_none(v)) {
            *(double *)base = 0;
            return LG_OK;
        }
        if (!parse_float(v, &d))
            return bad_value(err, f->name, v, o, "expected a number");
        if (f->lo <= f->hi && (d < f->lo || d > f->hi))
            return bad_value(err, f->name, v, o, "must be >= %g", f->lo);
        *(double *)base = d;
        return LG_OK;
    case T_BOOL:
        if (!parse_bool(v, &b))
            return bad_value(err, f->name, v, o, "expected true or false");
        *(int *)base = b;
        return LG_OK;
    case T_DETERMINISTIC:
        if (strcasecmp(v, "warn") == 0)
            b = 1;
        else if (!parse_bool(v, &b))
            return bad_value(err, f->name, v, o, "expected true, false or warn");
        *(int *)base = b;
        return LG_OK;
    case T_STR:
        if (f->nullable && is_none(v))
            v = "";
        return set_str((char **)base, v) == LG_OK
                   ? LG_OK
                   : lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    case T_ENUM: {
        size_t n = strlen(v);
        for (const char *c = f->choices; *c;) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && strncasecmp(c, v, n) == 0) {
                char tmp[64];
                snprintf(tmp, sizeof tmp, "%.*s", (int)len, c);
                if (strcmp(tmp, "cuda") == 0)
                    snprintf(tmp, sizeof tmp, "gpu");
                return set_str((char **)base, tmp) == LG_OK
                           ? LG_OK
                           : lg_error_set(err, LG_ERR_NOMEM, "out of memory");
            }
            if (!bar)
                break;
            c = bar + 1;
        }
        return bad_value(err, f->name, v, o, "expected one of %s", f->choices);
    }
    case T_LIMIT: {
        lg_limit *l = (lg_limit *)base;
        if (parse_int(v, &i)) {
            if (i < 0)
                return bad_value(err, f->name, v, o, "must be >= 0");
            l->is_frac = 0;
            l->n = i;
            l->frac = 0;
            return LG_OK;
        }
        if (!parse_float(v, &d) || d < 0)
            return bad_value(err, f->name, v, o,
                             "expected a number of batches (int) or a fraction in [0.0, 1.0]");
        if (d > 1.0)
            return bad_value(err, f->name, v, o,
                             "a fraction must be in [0.0, 1.0]; give an int for a number of batches");
        l->is_frac = 1;
        l->frac = d;
        l->n = 0;
        return LG_OK;
    }
    case T_FDR:
        if (parse_bool(v, &b) && !isdigit((unsigned char)v[0])) {
            *(int64_t *)base = b;
            return LG_OK;
        }
        if (!parse_int(v, &i) || i < 0)
            return bad_value(err, f->name, v, o, "expected true, false or a number of batches");
        *(int64_t *)base = i;
        return LG_OK;
    case T_PRECISION: {
        static const struct {
            const char *in, *out;
        } map[] = {{"32", "32-true"},          {"32-true", "32-true"},
                   {"16", "16-mixed"},         {"16-mixed", "16-mixed"},
                   {"bf16", "bf16-mixed"},     {"bf16-mixed", "bf16-mixed"},
                   {"16-true", "16-true"},     {"bf16-true", "bf16-true"},
                   {"64", "64-true"},          {"64-true", "64-true"},
                   {"double", "64-true"},      {"transformer-engine", "transformer-engine"}};
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
            if (strcasecmp(v, map[k].in) == 0)
                return set_str((char **)base, map[k].out) == LG_OK
                           ? LG_OK
                           : lg_error_set(err, LG_ERR_NOMEM, "out of memory");
        return bad_value(err, f->name, v, o,
                         "expected 32-true, 16-mixed, bf16-mixed, 16-true, bf16-true or 64-true "
                         "(or the 1.x spellings 32, 16, bf16, 64)");
    }
    case T_DEVICES:
        if (strcasecmp(v, "auto") == 0 || (parse_int(v, &i) && i >= -1))
            return set_str((char **)base, v) == LG_OK
                       ? LG_OK
                       : lg_error_set(err, LG_ERR_NOMEM, "out of memory");
        return bad_value(err, f->name, v, o, "expected auto or a number of devices");
    }
    return LG_OK;
}

/* ---- hparams ------------------------------------------------------------- */

static lg_status set_hparam(lg_tconfig *cfg, const lg_model_def *def, int k, const char *v,
                            const origin *o, lg_error *err) {
    const lg_hparam *h = &def->hparams[k];
    lg_value *val = &cfg->hp[k];
    int64_t i;
    double d;
    switch (h->type) {
    case LG_HP_INT:
        if (!parse_int(v, &i))
            return bad_value(err, h->name, v, o, "expected an integer");
        d = (double)i;
        break;
    case LG_HP_FLOAT:
        if (!parse_float(v, &d))
            return bad_value(err, h->name, v, o, "expected a number");
        i = 0;
        break;
    case LG_HP_BOOL: {
        int b;
        if (!parse_bool(v, &b))
            return bad_value(err, h->name, v, o, "expected true or false");
        val->b = b;
        val->i = b;
        val->f = b;
        return LG_OK;
    }
    case LG_HP_STR:
        if (set_str((char **)&val->s, v) != LG_OK)
            return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
        return LG_OK;
    case LG_HP_ENUM: {
        int idx = 0;
        size_t n = strlen(v);
        for (const char *c = h->choices ? h->choices : ""; *c; idx++) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && strncmp(c, v, n) == 0) {
                val->i = idx;
                if (set_str((char **)&val->s, v) != LG_OK)
                    return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
                return LG_OK;
            }
            if (!bar)
                break;
            c = bar + 1;
        }
        return bad_value(err, h->name, v, o, "expected one of %s", h->choices ? h->choices : "");
    }
    default:
        return lg_error_set(err, LG_ERR_ARG, "hparam '%s' has an unknown type", h->name);
    }
    if (h->range & LG_RANGE_LO) {
        int open = (h->range & LG_RANGE_LO_OPEN) == LG_RANGE_LO_OPEN;
        if (open ? !(d > h->lo) : !(d >= h->lo))
            return bad_value(err, h->name, v, o, "must be %s %g", open ? ">" : ">=", h->lo);
    }
    if (h->range & LG_RANGE_HI) {
        int open = (h->range & LG_RANGE_HI_OPEN) == LG_RANGE_HI_OPEN;
        if (open ? !(d < h->hi) : !(d <= h->hi))
            return bad_value(err, h->name, v, o, "must be %s %g", open ? "<" : "<=", h->hi);
    }
    val->i = h->type == LG_HP_INT ? i : (int64_t)d;
    val->f = d;
    return LG_OK;
}

static int hparam_index(const lg_model_def *def, const char *name) {
    for (int k = 0; k < def->n_hparams; k++)
        if (strcmp(def->hparams[k].name, name) == 0)
            return k;
    return -1;
}

/* A trainer flag that an hparam of the same name shadows on the command
 * line: `--seed` sets the hparam, `--trainer.seed` (or an alias such as
 * --seed_everything, or the config's "trainer" section) the trainer's. */
static int shadowed(const lg_model_def *def, const flag *f) {
    return hparam_index(def, f->name) >= 0;
}

static const flag *find_flag(const lg_model_def *def, const char *name) {
    (void)def;
    for (size_t a = 0; a < sizeof aliases / sizeof aliases[0]; a++)
        if (strcmp(name, aliases[a].from) == 0)
            name = aliases[a].to;
    for (int k = 0; k < N_FLAGS; k++)
        if (strcmp(flags[k].name, name) == 0)
            return &flags[k];
    return NULL;
}

/* Every name a user may type, for suggestions. */
static int all_names(const lg_model_def *def, const char **names, int cap) {
    int n = 0;
    for (int k = 0; k < N_FLAGS && n < cap; k++)
        names[n++] = flags[k].name;
    for (int k = 0; k < def->n_hparams && n < cap; k++)
        names[n++] = def->hparams[k].name;
    static const char *const extra[] = {"gpus", "resume_from_checkpoint", "seed_everything",
                                        "checkpoint_callback",
                                        "config", "print_config", "help", "version",
                                        "progress_bar_refresh_rate"};
    for (size_t k = 0; k < sizeof extra / sizeof extra[0] && n < cap; k++)
        names[n++] = extra[k];
    return n;
}

/* Sets `name` to v (a flag, an alias or an hparam). */
static lg_status set_named(lg_tconfig *cfg, const lg_model_def *def, const char *name,
                           const char *v, const origin *o, lg_error *err) {
    if (strncmp(name, "trainer.", 8) == 0 && hparam_index(def, name + 8) < 0)
        name += 8; /* --trainer.gpus */
    if (strcmp(name, "gpus") == 0) { /* 1.x: --gpus N = accelerator gpu, devices N */
        int64_t n;
        if (!parse_int(v, &n) || n < -1)
            return bad_value(err, name, v, o, "expected a number of GPUs");
        lg_status st = set_str(&cfg->accelerator, n == 0 ? "cpu" : "gpu");
        if (st == LG_OK && n != 0)
            st = set_str(&cfg->devices, v);
        return st == LG_OK ? LG_OK : lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    }
    if (strcmp(name, "progress_bar_refresh_rate") == 0) { /* 1.x: 0 disables the bar */
        int64_t n;
        if (!parse_int(v, &n) || n < 0)
            return bad_value(err, name, v, o, "expected a non-negative integer");
        cfg->enable_progress_bar = n > 0;
        return LG_OK;
    }
    if (strcmp(name, "predict_input") == 0 && hparam_index(def, name) < 0 && !is_none(v) &&
        cfg->predict_input && cfg->predict_input[0]) {
        size_t n = strlen(cfg->predict_input) + strlen(v) + 2;
        char *joined = malloc(n);
        if (!joined)
            return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
        snprintf(joined, n, "%s\n%s", cfg->predict_input, v);
        free(cfg->predict_input);
        cfg->predict_input = joined;
        return LG_OK;
    }
    int only_hp = strncmp(name, "model.", 6) == 0;
    int only_flag = strncmp(name, "trainer.", 8) == 0 || strncmp(name, "data.", 5) == 0;
    const char *bare = only_hp ? name + 6 : only_flag ? strchr(name, '.') + 1 : name;
    int k = only_flag ? -1 : hparam_index(def, bare);
    if (k >= 0)
        return set_hparam(cfg, def, k, v, o, err);
    const flag *f = only_hp ? NULL : find_flag(def, bare);
    if (f)
        return set_flag(cfg, f, v, o, err);
    const char *names[256];
    int n = all_names(def, names, 256);
    const char *s = lg_suggest(name, names, n);
    if (s)
        return lg_error_set(err, LG_ERR_ARG, "unknown flag '--%s'%s; did you mean '--%s'?", name,
                            o->where, s);
    return lg_error_set(err, LG_ERR_ARG, "unknown flag '--%s'%s", name, o->where);
}

/* Whether flag `name` takes no value when the next word is not a bool. */
static int takes_optional_bool(const lg_model_def *def, const char *name) {
    if (strncmp(name, "trainer.", 8) == 0 || strncmp(name, "data.", 5) == 0) {
        const flag *f = find_flag(def, strchr(name, '.') + 1);
        return f && (f->type == T_BOOL || f->type == T_FDR || f->type == T_DETERMINISTIC);
    }
    if (strncmp(name, "model.", 6) == 0)
        name += 6;
    int k = hparam_index(def, name);
    if (k >= 0)
        return def->hparams[k].type == LG_HP_BOOL;
    const flag *f = find_flag(def, name);
    return f && (f->type == T_BOOL || f->type == T_FDR || f->type == T_DETERMINISTIC);
}

/* ---- --config JSON ------------------------------------------------------- */

static lg_status config_value(lg_tconfig *cfg, const lg_model_def *def, const char *key,
                              json_t *v, const origin *o, lg_error *err) {
    char buf[64];
    const char *s;
    switch (json_typeof(v)) {
    case JSON_STRING: s = json_string_value(v); break;
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        s = buf;
        break;
    case JSON_REAL:
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        if (!strpbrk(buf, ".eEn"))
            strcat(buf, ".0"); /* 1.0 stays a fraction */
        s = buf;
        break;
    case JSON_TRUE: s = "true"; break;
    case JSON_FALSE: s = "false"; break;
    case JSON_NULL: s = "none"; break;
    default:
        return lg_error_set(err, LG_ERR_ARG, "'%s'%s: expected a number, string, bool or null",
                            key, o->where);
    }
    return set_named(cfg, def, key, s, o, err);
}

static lg_status config_object(lg_tconfig *cfg, const lg_model_def *def, json_t *obj,
                               const char *prefix, const origin *o, lg_error *err) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", prefix, key);
        lg_status st;
        if (json_is_object(v)) {
            char sub[sizeof name + 2];
            /* LightningCLI's layout: "trainer", "model" and "data" sections
             * (which say whether a name is an hparam or a trainer flag);
             * checkpoint / early_stopping prefix their keys. */
            if (!*prefix && strcmp(key, "data") == 0)
                snprintf(sub, sizeof sub, "trainer.");
            else if (strcmp(prefix, "trainer.") == 0 || strcmp(prefix, "model.") == 0)
                snprintf(sub, sizeof sub, "%s%s.", prefix, key);
            else
                snprintf(sub, sizeof sub, "%s.", name);
            st = config_object(cfg, def, v, sub, o, err);
        } else {
            st = config_value(cfg, def, name, v, o, err);
        }
        if (st != LG_OK)
            return st;
    }
    return LG_OK;
}

static lg_status load_config(lg_tconfig *cfg, const lg_model_def *def, const char *path,
                             lg_error *err) {
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && jerr.line > 0)
        return lg_error_set(err, LG_ERR_ARG, "cannot read --config '%s': %s (line %d)", path,
                            jerr.text, jerr.line);
    if (!root)
        return lg_error_set(err, LG_ERR_ARG, "cannot read --config '%s': %s", path, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return lg_error_set(err, LG_ERR_ARG, "--config '%s': expected a JSON object", path);
    }
    char where[300];
    snprintf(where, sizeof where, " in '%s'", path);
    origin o = {where};
    lg_status st = config_object(cfg, def, root, "", &o, err);
    json_decref(root);
    return st;
}

/* ---- help ---------------------------------------------------------------- */

static const char *type_word(ftype t) {
    switch (t) {
    case T_INT: return "INT";
    case T_FLOAT: return "FLOAT";
    case T_BOOL: return "BOOL";
    case T_STR: return "STR";
    case T_ENUM: return "CHOICE";
    case T_LIMIT: return "INT|FLOAT";
    case T_INT_NONE: return "INT|none";
    case T_FDR: return "BOOL|INT";
    case T_PRECISION: return "PRECISION";
    case T_DEVICES: return "auto|INT";
    case T_DETERMINISTIC: return "BOOL|warn";
    }
    return "?";
}

static const char *hp_type_word(lg_hparam_type t) {
    switch (t) {
    case LG_HP_INT: return "INT";
    case LG_HP_FLOAT: return "FLOAT";
    case LG_HP_BOOL: return "BOOL";
    case LG_HP_STR: return "STR";
    case LG_HP_ENUM: return "CHOICE";
    }
    return "?";
}

static void print_opt(const char *name, const char *type, const char *doc, const char *dflt,
                      const char *extra) {
    char left[128];
    snprintf(left, sizeof left, "  --%s %s", name, type);
    printf("%-40s %s", left, doc ? doc : "");
    if (dflt)
        printf(" (default %s%s)", *dflt ? dflt : "none", extra ? extra : "");
    printf("\n");
}

static const char *spec_default(const lg_model_def *def, const char *name) {
    for (int k = 0; k < def->n_defaults; k++)
        if (strcmp(def->defaults[k].key, name) == 0)
            return def->defaults[k].value;
    return NULL;
}

static void print_help(const lg_model_def *def, int cmd) {
    const char *prog = def->name ? def->name : "trainer";
    if (cmd < 0) {
        printf("usage: %s {fit,validate,test,predict} [flags]\n\n", prog);
        if (def->doc)
            printf("%s\n\n", def->doc);
        printf("subcommands:\n");
        for (int c = 0; c < LG_CMD_COUNT; c++)
            printf("  %-10s %s\n", cmd_names[c], cmd_docs[c]);
        printf("\n  %s SUBCOMMAND --help lists the flags of each.\n"
               "  --version                print the version and the spec's hash\n",
               prog);
        return;
    }
    printf("usage: %s %s [flags]\n\n%s.\n", prog, cmd_names[cmd], cmd_docs[cmd]);
    if (def->n_hparams) {
        printf("\nhparams (%s%s%s):\n", def->name ? def->name : "", def->doc ? ": " : "",
               def->doc ? def->doc : "");
        for (int k = 0; k < def->n_hparams; k++) {
            const lg_hparam *h = &def->hparams[k];
            char range[160] = "";
            if (h->type == LG_HP_ENUM && h->choices)
                snprintf(range, sizeof range, ", one of %s", h->choices);
            else if (h->range & (LG_RANGE_LO | LG_RANGE_HI)) {
                char lo[40] = "-inf", hi[40] = "inf";
                if (h->range & LG_RANGE_LO)
                    snprintf(lo, sizeof lo, "%g", h->lo);
                if (h->range & LG_RANGE_HI)
                    snprintf(hi, sizeof hi, "%g", h->hi);
                snprintf(range, sizeof range, ", in %c%s, %s%c",
                         (h->range & LG_RANGE_LO_OPEN) == LG_RANGE_LO_OPEN ? '(' : '[', lo, hi,
                         (h->range & LG_RANGE_HI_OPEN) == LG_RANGE_HI_OPEN ? ')' : ']');
            }
            print_opt(h->name, hp_type_word(h->type), h->doc, h->dflt ? h->dflt : "", range);
        }
    }
    static const char *const sections[] = {"trainer", "data", "checkpoint", "early_stopping",
                                           "lr_monitor"};
    static const char *const titles[] = {"trainer", "data", "ModelCheckpoint",
                                         "EarlyStopping", "LearningRateMonitor"};
    for (int s = 0; s < 5; s++) {
        int any = 0;
        for (int k = 0; k < N_FLAGS; k++) {
            const flag *f = &flags[k];
            if (strcmp(f->section, sections[s]) || !(f->cmds & (1u << cmd)))
                continue;
            if (!any++)
                printf("\n%s:\n", titles[s]);
            const char *d = spec_default(def, f->name);
            char data_dflt[32];
            if (!d && def->data && (!strcmp(f->name, "batch_size") || !strcmp(f->name, "num_workers"))) {
                /* the spec's data block sets these */
                const lg_loader_options *lo = &def->data->options;
                snprintf(data_dflt, sizeof data_dflt, "%d",
                         f->name[0] == 'b' ? (lo->batch_size > 0 ? lo->batch_size : 1) : lo->num_workers);
                d = data_dflt;
            }
            char choice[96];
            const char *t = type_word(f->type);
            if (f->type == T_ENUM) {
                snprintf(choice, sizeof choice, "{%s}", f->choices);
                for (char *c = choice; *c; c++)
                    if (*c == '|')
                        *c = ',';
                t = choice;
            }
            char shown[96];
            snprintf(shown, sizeof shown, "%s%s", shadowed(def, f) ? "trainer." : "", f->name);
            print_opt(shown, t, f->doc, d ? d : f->dflt, d ? ", from the spec" : NULL);
        }
    }
    printf("\nconfiguration:\n");
    print_opt("config", "FILE", "read flags from a JSON file; flags on the command line win",
              NULL, NULL);
    print_opt("print_config", "", "print the effective configuration as JSON and exit", NULL,
              NULL);
    printf("\n1.x spellings: --gpus N, --resume_from_checkpoint PATH, --precision 16|bf16,\n"
           "--progress_bar_refresh_rate 0, --checkpoint_callback BOOL, --seed_everything N.\n");
}

/* ---- the whole parse ----------------------------------------------------- */

void lg_tconfig_free(lg_tconfig *cfg) {
    if (!cfg)
        return;
    for (int k = 0; k < N_FLAGS; k++) {
        ftype t = flags[k].type;
        if (t == T_STR || t == T_ENUM || t == T_PRECISION || t == T_DEVICES)
            free(*(char **)((char *)cfg + flags[k].off));
    }
    for (int k = 0; k < cfg->n_hp; k++)
        free((char *)cfg->hp[k].s);
    free(cfg->hp);
    free(cfg->config_path);
    memset(cfg, 0, sizeof *cfg);
}

static lg_status apply_defaults(lg_tconfig *cfg, const lg_model_def *def, lg_error *err) {
    origin o = {" (built-in default)"};
    for (int k = 0; k < N_FLAGS; k++) {
        lg_status st = set_flag(cfg, &flags[k], flags[k].dflt, &o, err);
        if (st != LG_OK)
            return st;
    }
    if (def->data) {
        cfg->batch_size = def->data->options.batch_size > 0 ? def->data->options.batch_size : 1;
        cfg->num_workers = def->data->options.num_workers;
    } else {
        cfg->batch_size = 1;
    }
    cfg->n_hp = def->n_hparams;
    cfg->hp = calloc((size_t)(def->n_hparams ? def->n_hparams : 1), sizeof *cfg->hp);
    if (!cfg->hp)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    origin os = {" (the spec's hparam default)"};
    for (int k = 0; k < def->n_hparams; k++) {
        const lg_hparam *h = &def->hparams[k];
        if (h->type == LG_HP_STR || h->type == LG_HP_ENUM)
            cfg->hp[k].s = strdup("");
        lg_status st = set_hparam(cfg, def, k, h->dflt ? h->dflt : "", &os, err);
        if (st != LG_OK)
            return st;
    }
    origin sp = {" (the spec's trainer block)"};
    for (int k = 0; k < def->n_defaults; k++) {
        char key[256];
        snprintf(key, sizeof key, "trainer.%s", def->defaults[k].key);
        lg_status st = set_named(cfg, def, key, def->defaults[k].value, &sp, err);
        if (st != LG_OK)
            return st;
    }
    return LG_OK;
}

lg_status lg_tconfig_parse(lg_tconfig *cfg, const lg_model_def *def, int argc, char **argv,
                           int *exit_now, lg_error *err) {
    memset(cfg, 0, sizeof *cfg);
    *exit_now = 0;
    const char *prog = def->name ? def->name : "trainer";
    if (argc < 2)
        return lg_error_set(err, LG_ERR_ARG,
                            "missing subcommand (fit, validate, test or predict); see '%s --help'",
                            prog);
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        print_help(def, -1);
        *exit_now = 1;
        return LG_OK;
    }
    if (strcmp(sub, "--version") == 0) {
        printf("%s (lgen %s)\nspec %s sha256:%s\n", prog, def->version ? def->version : "?",
               def->spec_path ? def->spec_path : "?", def->spec_hash ? def->spec_hash : "?");
        *exit_now = 1;
        return LG_OK;
    }
    int cmd = -1;
    for (int c = 0; c < LG_CMD_COUNT; c++)
        if (strcmp(sub, cmd_names[c]) == 0)
            cmd = c;
    if (cmd < 0) {
        const char *s = lg_suggest(sub, cmd_names, LG_CMD_COUNT);
        if (sub[0] == '-')
            return lg_error_set(err, LG_ERR_ARG,
                                "expected a subcommand (fit, validate, test or predict) before "
                                "'%s'; see '%s --help'",
                                sub, prog);
        if (s)
            return lg_error_set(err, LG_ERR_ARG, "unknown subcommand '%s'; did you mean '%s'?",
                                sub, s);
        return lg_error_set(err, LG_ERR_ARG,
                            "unknown subcommand '%s' (expected fit, validate, test or predict)",
                            sub);
    }
    for (int a = 2; a < argc; a++)
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            print_help(def, cmd);
            *exit_now = 1;
            return LG_OK;
        }
    cfg->cmd = (lg_cmd)cmd;
    lg_status st = apply_defaults(cfg, def, err);
    if (st != LG_OK)
        return st;
    /* --config first, whatever its position: the command line wins. */
    for (int a = 2; a < argc; a++) {
        const char *path = NULL;
        if (strcmp(argv[a], "--config") == 0) {
            if (a + 1 >= argc)
                return lg_error_set(err, LG_ERR_ARG, "--config needs a file name");
            path = argv[a + 1];
        } else if (strncmp(argv[a], "--config=", 9) == 0) {
            path = argv[a] + 9;
        }
        if (path) {
            if ((st = load_config(cfg, def, path, err)) != LG_OK)
                return st;
            if (set_str(&cfg->config_path, path) != LG_OK)
                return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
        }
    }
    origin cli = {""};
    for (int a = 2; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return lg_error_set(err, LG_ERR_ARG, "unexpected argument '%s' (flags look like "
                                "--name value)", arg);
        char name[256];
        const char *eq = strchr(arg, '='), *value = NULL;
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (len >= sizeof name)
            return lg_error_set(err, LG_ERR_ARG, "flag '%.40s...' is too long", arg);
        memcpy(name, arg + 2, len);
        name[len] = '\0';
        for (char *c = name; *c; c++)
            if (*c == '-' && strcmp(name, "print-config") != 0)
                *c = '_'; /* --max-epochs == --max_epochs */
        if (strcmp(name, "print_config") == 0 || strcmp(name, "print-config") == 0) {
            cfg->print_config = 1;
            continue;
        }
        if (eq) {
            value = eq + 1;
        } else if (a + 1 < argc) {
            int dummy;
            const char *next = argv[a + 1];
            if (takes_optional_bool(def, name) && !parse_bool(next, &dummy) &&
                !(isdigit((unsigned char)next[0]) && strcmp(name, "fast_dev_run") == 0) &&
                strcasecmp(next, "warn") != 0)
                value = "true";
            else
                value = argv[++a];
        } else if (takes_optional_bool(def, name)) {
            value = "true";
        } else {
            const char *bare = strchr(name, '.') && strncmp(name, "checkpoint.", 11) &&
                                       strncmp(name, "early_stopping.", 15)
                                   ? strchr(name, '.') + 1
                                   : name;
            if (!find_flag(def, bare) && hparam_index(def, bare) < 0 && strcmp(name, "gpus") &&
                strcmp(name, "config"))
                return set_named(cfg, def, name, "", &cli, err); /* unknown: suggestion */
            return lg_error_set(err, LG_ERR_ARG, "flag '--%s' needs a value", name);
        }
        if (strcmp(name, "config") == 0)
            continue; /* read above */
        if ((st = set_named(cfg, def, name, value, &cli, err)) != LG_OK)
            return st;
    }
    return LG_OK;
}

/* ---- output -------------------------------------------------------------- */

static json_t *limit_json(const lg_limit *l) {
    return l->is_frac ? json_real(l->frac) : json_integer(l->n);
}

static json_t *flag_json(const lg_tconfig *cfg, const flag *f) {
    const char *base = (const char *)cfg + f->off;
    switch (f->type) {
    case T_INT: return json_integer(*(const int64_t *)base);
    case T_INT_NONE: {
        int64_t v = *(const int64_t *)base;
        return v ? json_integer(v) : json_null();
    }
    case T_FLOAT: {
        double v = *(const double *)base;
        return f->nullable && v == 0 ? json_null() : json_real(v);
    }
    case T_BOOL:
    case T_DETERMINISTIC: return json_boolean(*(const int *)base);
    case T_FDR: {
        int64_t v = *(const int64_t *)base;
        return v <= 1 ? json_boolean(v) : json_integer(v);
    }
    case T_LIMIT: return limit_json((const lg_limit *)base);
    case T_STR:
    case T_ENUM:
    case T_PRECISION:
    case T_DEVICES: {
        const char *s = *(char *const *)base;
        return f->nullable && (!s || !*s) ? json_null() : json_string(s ? s : "");
    }
    }
    return json_null();
}

static json_t *hparam_json(const lg_model_def *def, const lg_tconfig *cfg, int k) {
    const lg_value *v = &cfg->hp[k];
    switch (def->hparams[k].type) {
    case LG_HP_INT: return json_integer(v->i);
    case LG_HP_FLOAT: return json_real(v->f);
    case LG_HP_BOOL: return json_boolean(v->b);
    default: return json_string(v->s ? v->s : "");
    }
}

char *lg_tconfig_dump(const lg_tconfig *cfg, const lg_model_def *def) {
    json_t *root = json_object();
    json_t *sec[4];
    static const char *const names[] = {"trainer", "data", "checkpoint", "early_stopping"};
    json_t *model = json_object();
    for (int k = 0; k < def->n_hparams; k++)
        json_object_set_new(model, def->hparams[k].name, hparam_json(def, cfg, k));
    json_object_set_new(root, "model", model);
    for (int s = 0; s < 4; s++) {
        sec[s] = json_object();
        json_object_set_new(root, names[s], sec[s]);
    }
    for (int k = 0; k < N_FLAGS; k++) {
        const flag *f = &flags[k];
        for (int s = 0; s < 4; s++)
            if (strcmp(f->section, names[s]) == 0) {
                const char *key = strchr(f->name, '.') ? strchr(f->name, '.') + 1 : f->name;
                json_object_set_new(sec[s], key, flag_json(cfg, f));
            }
    }
    /* 15 digits: what a person typed prints back as typed (0.05, not
     * 0.050000000000000003) and reads back to the same text */
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(root);
    return text;
}

void lg_hparam_format(const lg_model_def *def, const lg_tconfig *cfg, int i, char *buf, size_t n) {
    const lg_value *v = &cfg->hp[i];
    switch (def->hparams[i].type) {
    case LG_HP_INT: snprintf(buf, n, "%lld", (long long)v->i); break;
    case LG_HP_FLOAT: {
        /* Shortest text that reads back to the same double, as Python prints. */
        for (int p = 1; p <= 17; p++) {
            snprintf(buf, n, "%.*g", p, v->f);
            if (strtod(buf, NULL) == v->f)
                break;
        }
        if (!strpbrk(buf, ".eEn") && strlen(buf) + 2 < n)
            strcat(buf, ".0");
        break;
    }
    case LG_HP_BOOL: snprintf(buf, n, "%s", v->b ? "true" : "false"); break;
    default: snprintf(buf, n, "%s", v->s ? v->s : ""); break;
    }
}
