/* emit_tables.c — the tables of the generated trainer (lgen/trainer.h and
 * lgen/data.h): hparam flags, the parameter table, logged metrics, trainer
 * defaults, configure_optimizers, the dataset and data-module descriptors and
 * the lg_model_def that ties them to the step functions emit_c.c printed.
 *
 * Input: the checked Module (sema filled in types, ranges, descriptors and
 * compile-time values) and the IrProgram's parameter table. Expressions that
 * name hparams (`lr: lr`, `batch_size = batch_size`) become C that reads the
 * parsed flags, so `--lr 0.01` changes them at run time; everything else is
 * printed as its compile-time value.
 */
#include "emit_internal.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void out(Emit *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Emit *E, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(E->f, fmt, ap);
    va_end(ap);
}

static void out_str(Emit *E, const char *s) {
    if (!s) {
        out(E, "NULL");
        return;
    }
    fputc('"', E->f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(E->f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", E->f);
        else if (c < 32 || c >= 127)
            fprintf(E->f, "\\%03o", c);
        else
            fputc(c, E->f);
    }
    fputc('"', E->f);
}

/* The shortest %g form that reads back as exactly v (0.05, not
 * 0.050000000000000003). */
static const char *short_g(Emit *E, double v) {
    char buf[64];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return ir_strdup(E->p, buf);
}

static const char *num_str(Emit *E, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", short_g(E, v));
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    return ir_strdup(E->p, buf);
}

static char *upper(Emit *E, const char *s) {
    char *r = ir_strdup(E->p, s);
    for (char *c = r; *c; c++)
        *c = (*c >= 'a' && *c <= 'z') ? (char)(*c - 'a' + 'A') : ((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) ? *c : '_';
    return r;
}

/* ---- expressions -------------------------------------------------------------------- */

static int depends_on_flags(const Expr *e) {
    if (!e)
        return 0;
    if (e->kind == EX_NAME && (e->ref == REF_HPARAM || e->ref == REF_TRAINER))
        return 1;
    if (depends_on_flags(e->lhs) || depends_on_flags(e->rhs) || depends_on_flags(e->cond))
        return 1;
    for (int i = 0; i < e->nitems; i++)
        if (depends_on_flags(e->items[i]))
            return 1;
    return 0;
}

static const char *cvalue_num(Emit *E, const CValue *cv) {
    switch (cv->type) {
    case TY_INT:
    case TY_BOOL:
        return num_str(E, (double)cv->i);
    case TY_FLOAT:
        return num_str(E, cv->f);
    default:
        return NULL;
    }
}

static int hparam_index(Emit *E, const Hparam *h) {
    for (int i = 0; i < E->mod->nhparams; i++)
        if (&E->mod->hparams[i] == h)
            return i;
    return -1;
}

static const char *trainer_ref(const char *name) {
    if (!strcmp(name, "max_epochs"))
        return "(double)fit->max_epochs";
    if (!strcmp(name, "max_steps"))
        return "(double)fit->max_steps";
    if (!strcmp(name, "steps_per_epoch"))
        return "(double)fit->steps_per_epoch";
    if (!strcmp(name, "estimated_stepping_batches"))
        return "(double)fit->estimated_stepping_batches";
    return NULL;
}

/* A C expression of type double for e. */
static const char *expr_c(Emit *E, const Expr *e) {
    if (!e)
        return "0.0";
    if (!depends_on_flags(e)) {
        const char *v = cvalue_num(E, &e->cv);
        if (v)
            return v;
        if (e->kind == EX_INT || e->kind == EX_BOOL)
            return num_str(E, (double)e->ival);
        if (e->kind == EX_FLOAT)
            return num_str(E, e->fval);
    }
    switch (e->kind) {
    case EX_NAME:
        if (e->ref == REF_HPARAM) {
            const Hparam *h = e->target;
            int k = hparam_index(E, h);
            const char *c = ir_fmt(E->p, "%s_HP_%s", E->prefix, upper(E, h->name));
            (void)k;
            if (h->type == TY_FLOAT)
                return ir_fmt(E->p, "hp[%s].f", c);
            if (h->type == TY_BOOL)
                return ir_fmt(E->p, "(double)hp[%s].b", c);
            return ir_fmt(E->p, "(double)hp[%s].i", c);
        }
        if (e->ref == REF_TRAINER) {
            const char *t = trainer_ref(e->str);
            if (t)
                return t;
            const char *v = cvalue_num(E, &e->cv);
            return v ? v : "0.0";
        }
        break;
    case EX_UNARY:
        return ir_fmt(E->p, e->op == OPR_NEG ? "(-%s)" : "(double)!(%s)", expr_c(E, e->lhs));
    case EX_BINARY: {
        const char *a = expr_c(E, e->lhs), *b = expr_c(E, e->rhs);
        switch (e->op) {
        case OPR_IDIV:
            return ir_fmt(E->p, "(double)((long long)(%s) / (long long)(%s))", a, b);
        case OPR_MOD:
            return ir_fmt(E->p, "(double)((long long)(%s) %% (long long)(%s))", a, b);
        default:
            return ir_fmt(E->p, "(%s %s %s)", a, ast_operator_name(e->op), b);
        }
    }
    case EX_COND:
        return ir_fmt(E->p, "(%s ? %s : %s)", expr_c(E, e->cond), expr_c(E, e->lhs), expr_c(E, e->rhs));
    default:
        break;
    }
    const char *v = cvalue_num(E, &e->cv);
    return v ? v : "0.0";
}

static const char *expr_str(const Expr *e) {
    if (!e)
        return NULL;
    if (e->kind == EX_STRING)
        return e->str;
    if (e->cv.type == TY_STRING || e->cv.type == TY_ENUM)
        return e->cv.s;
    if (e->kind == EX_NAME && (e->ref == REF_ENUM || e->ref == REF_NONE))
        return e->str;
    return NULL;
}

/* A flag-syntax string of a setting's compile-time value. */
static const char *expr_setting(Emit *E, const Expr *e) {
    const char *s = expr_str(e);
    if (s)
        return s;
    const CValue *cv = &e->cv;
    switch (cv->type) {
    case TY_INT:
        return ir_fmt(E->p, "%lld", (long long)cv->i);
    case TY_BOOL:
        return cv->i ? "true" : "false";
    case TY_FLOAT:
        return short_g(E, cv->f);
    default:
        break;
    }
    if (e->kind == EX_INT)
        return ir_fmt(E->p, "%lld", (long long)e->ival);
    if (e->kind == EX_FLOAT)
        return short_g(E, e->fval);
    if (e->kind == EX_BOOL)
        return e->ival ? "true" : "false";
    return "";
}

/* ---- hparams -------------------------------------------------------------------------- */

static const char *cvalue_flag(Emit *E, const CValue *cv) {
    switch (cv->type) {
    case TY_INT:
        return ir_fmt(E->p, "%lld", (long long)cv->i);
    case TY_BOOL:
        return cv->i ? "true" : "false";
    case TY_FLOAT:
        return short_g(E, cv->f);
    case TY_STRING:
    case TY_ENUM:
        return cv->s;
    default:
        return "";
    }
}

static double cvalue_double(const CValue *cv) {
    return cv->type == TY_FLOAT ? cv->f : (double)cv->i;
}

static void emit_hparams(Emit *E) {
    Module *m = E->mod;
    if (!m->nhparams)
        return;
    out(E, "/* hparams: each is a flag (--name VALUE), typed and range-checked. */\n");
    out(E, "enum {\n");
    for (int i = 0; i < m->nhparams; i++)
        out(E, "    %s_HP_%s = %d,\n", E->prefix, upper(E, m->hparams[i].name), i);
    out(E, "};\n\n");
    out(E, "static const lg_hparam %s_hparams[] = {\n", E->lower);
    for (int i = 0; i < m->nhparams; i++) {
        Hparam *h = &m->hparams[i];
        const char *type = h->type == TY_INT     ? "LG_HP_INT"
                           : h->type == TY_FLOAT ? "LG_HP_FLOAT"
                           : h->type == TY_BOOL  ? "LG_HP_BOOL"
                           : h->type == TY_ENUM  ? "LG_HP_ENUM"
                                                 : "LG_HP_STR";
        out(E, "    {");
        out_str(E, h->name);
        out(E, ", %s, ", type);
        out_str(E, cvalue_flag(E, &h->value));
        double lo = h->lo ? cvalue_double(&h->lo_value) : 0, hi = h->hi ? cvalue_double(&h->hi_value) : 0;
        const char *range = "LG_RANGE_NONE";
        if (h->lo && h->hi)
            range = ir_fmt(E->p, "%s | %s", h->lo_open ? "LG_RANGE_LO_OPEN" : "LG_RANGE_LO",
                           h->hi_open ? "LG_RANGE_HI_OPEN" : "LG_RANGE_HI");
        else if (h->lo)
            range = h->lo_open ? "LG_RANGE_LO_OPEN" : "LG_RANGE_LO";
        else if (h->hi)
            range = h->hi_open ? "LG_RANGE_HI_OPEN" : "LG_RANGE_HI";
        const char *doc = h->doc ? h->doc : "";
        if (h->is_static && (h->type == TY_INT || h->type == TY_FLOAT)) {
            /* a layer width or another compile-time use: the trainer was
             * built for this value, so the flag accepts only it */
            lo = hi = cvalue_double(&h->value);
            range = "LG_RANGE_LO | LG_RANGE_HI";
            doc = ir_fmt(E->p, "%s (compiled in: change it with lgen -D %s=VALUE)", doc, h->name);
        }
        out(E, ", %s, %s, %s, ", num_str(E, lo), num_str(E, hi), range);
        if (h->type == TY_ENUM && h->nchoices) {
            fputc('"', E->f);
            for (int c = 0; c < h->nchoices; c++)
                out(E, "%s%s", c ? "|" : "", h->choices[c]);
            fputc('"', E->f);
        } else {
            out(E, "NULL");
        }
        out(E, ", ");
        out_str(E, doc);
        out(E, "},\n");
    }
    out(E, "};\n\n");
}

/* ---- parameters ------------------------------------------------------------------------- */

static const char *leaf(const char *name) {
    const char *d = strrchr(name, '.');
    return d ? d + 1 : name;
}

static const char *init_kind(const IrParam *q) {
    const char *l = leaf(q->name);
    switch (q->owner) {
    case LG_OP_BATCH_NORM:
    case LG_OP_LAYER_NORM:
        if (!strcmp(l, "weight") || !strcmp(l, "running_var"))
            return "LG_INIT_ONES";
        return "LG_INIT_ZEROS";
    default:
        if (q->role == IR_BUFFER)
            return "LG_INIT_ZEROS";
        return q->ndim >= 2 ? "LG_INIT_KAIMING_UNIFORM" : "LG_INIT_FAN_IN_UNIFORM";
    }
}

/* The optimizer group of a parameter: the first `group` whose match glob
 * takes its name, else the default group 0. */
static int param_group(Emit *E, const char *name) {
    Optimizer *o = E->mod->optimizer;
    if (!o)
        return 0;
    for (int g = 0; g < o->ngroups; g++) {
        const char *m = o->groups[g].match;
        if (!m)
            continue;
        char *pats = ir_strdup(E->p, m);
        for (char *save = NULL, *pat = strtok_r(pats, "|", &save); pat; pat = strtok_r(NULL, "|", &save))
            if (fnmatch(pat, name, 0) == 0)
                return g + 1;
    }
    return 0;
}

static void emit_params(Emit *E) {
    IrProgram *p = E->p;
    out(E, "static const lg_param %s_params[] = {\n", E->lower);
    for (int i = 0; i < p->nparams; i++) {
        IrParam *q = &p->params[i];
        out(E, "    {");
        out_str(E, q->name);
        out(E, ", %d, {", q->ndim);
        for (int d = 0; d < q->ndim; d++)
            out(E, "%s%d", d ? ", " : "", q->dim[d]);
        if (!q->ndim)
            out(E, "0");
        out(E, "}, %zu, %s, %s, %d, %s, %d, %d},\n", q->numel, E->param_names[i],
            q->role == IR_TRAIN ? "LG_PARAM_TRAIN" : "LG_PARAM_BUFFER",
            q->role == IR_TRAIN ? param_group(E, q->name) : 0, init_kind(q), q->fan_in,
            q->dtype == IR_I32 && q->role == IR_BUFFER);
    }
    if (!p->nparams)
        out(E, "    {0},\n");
    out(E, "};\n\n");
}

/* ---- logs, defaults -------------------------------------------------------------------- */

static void emit_metrics(Emit *E) {
    static const char *stage[IR_STEP_COUNT] = {"train", "validate", "test", "predict"};
    for (int s = 0; s < IR_STEP_COUNT; s++) {
        IrGraph *g = &E->p->graphs[s];
        if (!g->present || !g->nlogs)
            continue;
        out(E, "static const lg_metric %s_%s_logs[] = {\n", E->lower, stage[s]);
        for (int i = 0; i < g->nlogs; i++) {
            out(E, "    {");
            out_str(E, g->logs[i].name);
            out(E, ", %s%s},\n", s == IR_STEP_TRAIN ? "LG_LOG_STEP" : "LG_LOG_EPOCH",
                g->logs[i].prog_bar ? " | LG_LOG_PROG_BAR" : "");
        }
        out(E, "};\n");
    }
    out(E, "\n");
}

static int emit_defaults(Emit *E) {
    Trainer *t = E->mod->trainer;
    int n = 0;
    if (!t)
        return 0;
    out(E, "/* The spec's trainer block: defaults that flags and --config override. */\n");
    out(E, "static const lg_setting %s_defaults[] = {\n", E->lower);
    for (int i = 0; i < t->nsettings; i++, n++) {
        out(E, "    {");
        out_str(E, t->settings[i].key);
        out(E, ", ");
        out_str(E, expr_setting(E, t->settings[i].value));
        out(E, "},\n");
    }
    for (int c = 0; c < t->ncallbacks; c++) {
        Callback *cb = &t->callbacks[c];
        for (int a = 0; a < cb->nargs; a++, n++) {
            out(E, "    {");
            out_str(E, ir_fmt(E->p, "%s.%s", cb->name, cb->args[a].key ? cb->args[a].key : "?"));
            out(E, ", ");
            out_str(E, expr_setting(E, cb->args[a].value));
            out(E, "},\n");
        }
    }
    if (!n)
        out(E, "    {NULL, NULL},\n");
    out(E, "};\n\n");
    return n;
}

/* ---- configure_optimizers ------------------------------------------------------------ */

static void emit_kwarg(Emit *E, const char *dst, const char *key, const Expr *v) {
    const char *s = expr_str(v);
    if (v && v->kind == EX_TUPLE) {
        /* betas: (0.9, 0.999) -> beta1, beta2; milestones: (a, b) -> m0, m1 */
        for (int i = 0; i < v->nitems; i++) {
            const char *k = !strcmp(key, "betas") ? ir_fmt(E->p, "beta%d", i + 1) : ir_fmt(E->p, "m%d", i);
            emit_kwarg(E, dst, k, v->items[i]);
        }
        return;
    }
    out(E, "    %s.arg[%s.n].name = ", dst, dst);
    out_str(E, key);
    out(E, ";\n");
    if (s && !(v->kind == EX_NAME && v->ref == REF_HPARAM)) {
        out(E, "    %s.arg[%s.n].str = ", dst, dst);
        out_str(E, s);
        out(E, ";\n");
    } else {
        out(E, "    %s.arg[%s.n].num = %s;\n", dst, dst, expr_c(E, v));
    }
    out(E, "    %s.n++;\n", dst);
}

static const char *sched_name(SchedKind k) {
    switch (k) {
    case SCHED_STEP: return "step";
    case SCHED_MULTISTEP: return "multistep";
    case SCHED_EXPONENTIAL: return "exponential";
    case SCHED_COSINE: return "cosine";
    case SCHED_LINEAR: return "linear";
    case SCHED_ONECYCLE: return "one_cycle";
    case SCHED_PLATEAU: return "reduce_on_plateau";
    default: return "none";
    }
}

static void emit_optimizers(Emit *E) {
    Module *m = E->mod;
    Optimizer *o = m->optimizer;
    out(E, "/* configure_optimizers: the spec's optimizer and scheduler, evaluated with\n"
           " * the hparams as parsed from the flags. */\n");
    out(E, "static lg_status %s_configure_optimizers(const lg_value *hp, const lg_fit_info *fit,\n"
           "                                        lg_optim_desc *out, lg_error *err) {\n", E->lower);
    out(E, "    (void)hp;\n    (void)fit;\n    (void)err;\n");
    out(E, "    memset(out, 0, sizeof *out);\n");
    out(E, "    out->optimizer = ");
    out_str(E, o ? ast_optim_name(o->kind) : "sgd");
    out(E, ";\n    out->n_groups = %d;\n", o ? 1 + o->ngroups : 1);
    if (o) {
        for (int i = 0; i < o->nargs; i++)
            emit_kwarg(E, "out->args", o->args[i].key ? o->args[i].key : "lr", o->args[i].value);
        for (int g = 0; g < o->ngroups && g + 1 < 8; g++)
            for (int i = 0; i < o->groups[g].nargs; i++) {
                Arg *a = &o->groups[g].args[i];
                if (a->key && !strcmp(a->key, "match"))
                    continue;
                emit_kwarg(E, ir_fmt(E->p, "out->group[%d]", g + 1), a->key ? a->key : "?", a->value);
            }
    } else {
        out(E, "    out->args.arg[0].name = \"lr\";\n    out->args.arg[0].num = 0.01;\n    out->args.n = 1;\n");
    }
    Scheduler *s = m->scheduler;
    if (s && s->nphases) {
        SchedPhase *main_phase = &s->phases[s->nphases - 1];
        out(E, "    out->scheduler = ");
        out_str(E, sched_name(main_phase->kind));
        out(E, ";\n");
        for (int p = 0; p < s->nphases; p++) {
            SchedPhase *ph = &s->phases[p];
            for (int i = 0; i < ph->nargs; i++) {
                const char *key = ph->args[i].key ? ph->args[i].key : "?";
                if (!strcmp(key, "interval"))
                    continue; /* sched_per_step below */
                if (ph->kind == SCHED_WARMUP) {
                    if (!strcmp(key, "steps"))
                        key = "warmup_steps";
                    else if (!strcmp(key, "start_factor"))
                        key = "warmup_start_factor";
                } else if (!strcmp(key, "steps") || !strcmp(key, "epochs")) {
                    continue; /* the length of a phase: only a warmup may precede the last */
                }
                emit_kwarg(E, "out->sched_args", key, ph->args[i].value);
            }
        }
        out(E, "    out->sched_per_step = %d;\n", s->interval && !strcmp(s->interval, "step"));
    }
    out(E, "    return LG_OK;\n}\n\n");
}

/* ---- data --------------------------------------------------------------------------------- */

static const char *format_enum(DataFormat f) {
    switch (f) {
    case FMT_IDX: return "LG_FORMAT_IDX";
    case FMT_CIFAR10: return "LG_FORMAT_CIFAR10";
    case FMT_CIFAR100: return "LG_FORMAT_CIFAR100";
    case FMT_IMAGE_FOLDER: return "LG_FORMAT_IMAGE_FOLDER";
    case FMT_CSV: return "LG_FORMAT_CSV";
    default: return "LG_FORMAT_VOC";
    }
}

static const char *tf_enum(TransformKind k) {
    static const char *n[] = {"LG_TF_TO_TENSOR", "LG_TF_NORMALIZE", "LG_TF_RESIZE", "LG_TF_CENTER_CROP",
                              "LG_TF_RANDOM_CROP", "LG_TF_RANDOM_RESIZED_CROP", "LG_TF_RANDOM_HFLIP",
                              "LG_TF_RANDOM_VFLIP", "LG_TF_COLOR_JITTER", "LG_TF_GRAYSCALE",
                              "LG_TF_LETTERBOX"};
    return k < TF_NONE ? n[k] : "LG_TF_TO_TENSOR";
}

static const char *ds_ident(Emit *E, const Dataset *d) {
    return ir_fmt(E->p, "%s_%s", E->lower, d->name);
}

static void emit_dataset(Emit *E, Dataset *d) {
    const char *id = ds_ident(E, d);
    out(E, "static const char *const %s_mirrors[] = {", id);
    for (int i = 0; i < d->nmirrors; i++) {
        out(E, "%s", i ? ", " : "");
        out_str(E, d->mirrors[i]);
    }
    out(E, "%s};\n", d->nmirrors ? "" : "NULL");
    out(E, "static const lg_file_desc %s_files[] = {\n", id);
    for (int i = 0; i < d->nfiles; i++) {
        out(E, "    {");
        out_str(E, d->files[i].name);
        out(E, ", ");
        out_str(E, d->files[i].sha256);
        out(E, ", %d},\n", d->files[i].extract);
    }
    if (!d->nfiles)
        out(E, "    {NULL, NULL, 0},\n");
    out(E, "};\n");
    for (int s = 0; s < d->nsplits; s++) {
        out(E, "static const char *const %s_%s_paths[] = {", id, d->splits[s].name);
        for (int i = 0; i < d->splits[s].npaths; i++) {
            out(E, "%s", i ? ", " : "");
            out_str(E, d->splits[s].paths[i]);
        }
        out(E, "%s};\n", d->splits[s].npaths ? "" : "NULL");
    }
    out(E, "static const lg_split_desc %s_splits[] = {\n", id);
    for (int s = 0; s < d->nsplits; s++) {
        out(E, "    {");
        out_str(E, d->splits[s].name);
        out(E, ", %s_%s_paths, %d, ", id, d->splits[s].name, d->splits[s].npaths);
        out_str(E, d->splits[s].set);
        out(E, "},\n");
    }
    if (!d->nsplits)
        out(E, "    {NULL, NULL, 0, NULL},\n");
    out(E, "};\n");
    if (d->nclasses) {
        out(E, "static const char *const %s_classes[] = {", id);
        for (int i = 0; i < d->nclasses; i++) {
            out(E, "%s", i ? ", " : "");
            out_str(E, d->classes[i]);
        }
        out(E, "};\n");
    }
    out(E, "static const lg_dataset_desc %s_dataset = {\n", id);
    out(E, "    .name = ");
    out_str(E, d->name);
    out(E, ",\n    .mirrors = %s_mirrors,\n    .n_mirrors = %d,\n", id, d->nmirrors);
    out(E, "    .files = %s_files,\n    .n_files = %d,\n", id, d->nfiles);
    out(E, "    .format = %s,\n", format_enum(d->format));
    out(E, "    .args = {.csv_header = %d, .csv_label_column = %d, .cifar_coarse = %d, "
           ".voc_skip_difficult = %d, .skip_bad = %d, .decode_channels = %d},\n",
        d->csv_header, d->csv_label_column, d->cifar_coarse, d->voc_skip_difficult, d->skip_bad,
        d->decode_channels);
    if (d->nclasses)
        out(E, "    .classes = %s_classes,\n    .n_classes = %d,\n", id, d->nclasses);
    out(E, "    .splits = %s_splits,\n    .n_splits = %d,\n};\n\n", id, d->nsplits);
}

static int stage_of(const char *name) {
    if (!strcmp(name, "train"))
        return 0;
    if (!strcmp(name, "val") || !strcmp(name, "validate") || !strcmp(name, "validation"))
        return 1;
    if (!strcmp(name, "test"))
        return 2;
    if (!strcmp(name, "predict"))
        return 3;
    return -1;
}

static int emit_data(Emit *E) {
    Module *m = E->mod;
    DataBlock *db = m->data;
    if (!db)
        return 0;
    out(E, "/* ---- data: the spec's dataset and data blocks (lgen/data.h) ---- */\n\n");
    for (int i = 0; i < m->ndatasets; i++)
        emit_dataset(E, m->datasets[i]);
    static const char *stages[] = {"LG_STAGE_TRAIN", "LG_STAGE_VALIDATE", "LG_STAGE_TEST", "LG_STAGE_PREDICT"};
    for (int s = 0; s < db->nsplits; s++) {
        DataSplit *sp = &db->splits[s];
        const char *id = ir_fmt(E->p, "%s_%s", E->lower, sp->name);
        if (sp->ntransforms) {
            out(E, "static const lg_transform_desc %s_transforms[] = {\n", id);
            for (int t = 0; t < sp->ntransforms; t++) {
                Transform *tf = &sp->transforms[t];
                out(E, "    {%s, {", tf_enum(tf->kind));
                for (int k = 0; k < 6; k++) {
                    char buf[64];
                    snprintf(buf, sizeof buf, "%.9g", tf->f[k]);
                    out(E, "%s%s%sf", k ? ", " : "", buf, strpbrk(buf, ".eEn") ? "" : ".0");
                }
                out(E, "}, {%d, %d, %d, %d}},\n", tf->i[0], tf->i[1], tf->i[2], tf->i[3]);
            }
            out(E, "};\n");
        }
        const Shape *sh = &sp->image_shape;
        int c = 1, h = 1, w = 1;
        if (sh->rank == 3) {
            c = (int)sh->dim[0];
            h = (int)sh->dim[1];
            w = (int)sh->dim[2];
        } else if (sh->rank == 2) {
            h = (int)sh->dim[0];
            w = (int)sh->dim[1];
        } else if (sh->rank == 1) {
            w = (int)sh->dim[0];
        }
        out(E, "static const lg_split_spec %s_split = {\n    .name = ", id);
        out_str(E, sp->name);
        out(E, ",\n    .dataset = %s,\n",
            sp->dataset ? ir_fmt(E->p, "&%s_dataset", ds_ident(E, sp->dataset)) : "NULL");
        out(E, "    .source = ");
        out_str(E, sp->source ? sp->source->name : sp->name);
        out(E, ",\n    .lo = %s,\n    .hi = %s,\n    .split_seed = %lluu,\n", short_g(E, sp->lo), short_g(E, sp->hi),
            (unsigned long long)sp->seed);
        if (sp->ntransforms)
            out(E, "    .transforms = %s_transforms,\n    .n_transforms = %d,\n", id, sp->ntransforms);
        out(E, "    .channels = %d,\n    .height = %d,\n    .width = %d,\n    .max_boxes = %d,\n};\n\n", c,
            h, w, sp->max_boxes);
    }
    /* loader options: constants, and a configure function for those that
     * name hparams */
    Expr *opts[4] = {db->batch_size, db->num_workers, db->shuffle, db->drop_last};
    const char *fields[4] = {"batch_size", "num_workers", "shuffle", "drop_last"};
    int dflt[4] = {1, 0, 0, 0};
    int dynamic = 0;
    for (int i = 0; i < 4; i++)
        dynamic |= depends_on_flags(opts[i]);
    if (dynamic) {
        out(E, "/* Loader options that follow the hparams (`batch_size = batch_size`). */\n");
        out(E, "static void %s_configure_data(const lg_value *hp, lg_loader_options *opt) {\n", E->lower);
        for (int i = 0; i < 4; i++)
            if (depends_on_flags(opts[i]))
                out(E, "    opt->%s = (int)%s;\n", fields[i], expr_c(E, opts[i]));
        out(E, "}\n\n");
    }
    out(E, "static const lg_data_def %s_data = {\n    .split = {\n", E->lower);
    for (int s = 0; s < db->nsplits; s++) {
        int st = stage_of(db->splits[s].name);
        if (st >= 0)
            out(E, "        [%s] = &%s_%s_split,\n", stages[st], E->lower, db->splits[s].name);
    }
    out(E, "    },\n    .options = {");
    for (int i = 0; i < 4; i++) {
        int v = dflt[i];
        if (opts[i] && opts[i]->cv.type != TY_NONE)
            v = (int)(opts[i]->cv.type == TY_FLOAT ? opts[i]->cv.f : opts[i]->cv.i);
        else if (opts[i] && (opts[i]->kind == EX_INT || opts[i]->kind == EX_BOOL))
            v = (int)opts[i]->ival;
        out(E, "%s.%s = %d", i ? ", " : "", fields[i], v);
    }
    out(E, "},\n");
    if (dynamic)
        out(E, "    .configure = %s_configure_data,\n", E->lower);
    out(E, "};\n\n");
    return 1;
}

/* ---- the model definition ------------------------------------------------------------- */

int emit_tables(Emit *E) {
    Module *m = E->mod;
    IrProgram *p = E->p;
    emit_hparams(E);
    emit_params(E);
    emit_metrics(E);
    int ndefaults = emit_defaults(E);
    emit_optimizers(E);
    int has_data = emit_data(E);
    static const char *stage[IR_STEP_COUNT] = {"train", "validate", "test", "predict"};
    static const char *stage_enum[IR_STEP_COUNT] = {"LG_STAGE_TRAIN", "LG_STAGE_VALIDATE",
                                                    "LG_STAGE_TEST", "LG_STAGE_PREDICT"};
    out(E, "/* Everything the trainer runtime needs; main() completes the arena size\n"
           " * (the kernels' workspace) and hands it to lg_main. */\n");
    out(E, "static lg_model_def %s_def = {\n", E->lower);
    out(E, "    .name = ");
    out_str(E, p->model);
    out(E, ",\n    .doc = ");
    out_str(E, m->doc ? m->doc : "");
    out(E, ",\n    .version = ");
    out_str(E, LGEN_VERSION);
    out(E, ",\n    .spec_path = ");
    out_str(E, m->path);
    out(E, ",\n    .spec_hash = ");
    out_str(E, E->spec_hash);
    out(E, ",\n");
    if (m->nhparams)
        out(E, "    .hparams = %s_hparams,\n    .n_hparams = %d,\n", E->lower, m->nhparams);
    out(E, "    .params = %s_params,\n    .n_params = %d,\n", E->lower, p->nparams);
    out(E, "    .n_floats = %s_N_FLOATS,\n    .n_train = %s_N_TRAIN,\n", E->prefix, E->prefix);
    out(E, "    .logs = {");
    int first = 1;
    for (int s = 0; s < IR_STEP_COUNT; s++)
        if (p->graphs[s].present && p->graphs[s].nlogs) {
            out(E, "%s[%s] = %s_%s_logs", first ? "" : ", ", stage_enum[s], E->lower, stage[s]);
            first = 0;
        }
    out(E, "},\n    .n_logs = {");
    first = 1;
    for (int s = 0; s < IR_STEP_COUNT; s++)
        if (p->graphs[s].present && p->graphs[s].nlogs) {
            out(E, "%s[%s] = %d", first ? "" : ", ", stage_enum[s], p->graphs[s].nlogs);
            first = 0;
        }
    out(E, "},\n");
    if (ndefaults)
        out(E, "    .defaults = %s_defaults,\n    .n_defaults = %d,\n", E->lower, ndefaults);
    out(E, "    .configure_optimizers = %s_configure_optimizers,\n", E->lower);
    if (has_data)
        out(E, "    .data = &%s_data,\n", E->lower);
    out(E, "    .arena_fixed = %s_FIXED_BYTES,\n", E->prefix);
    out(E, "    .arena_per_sample = %s_ACT_BYTES_PER_SAMPLE, // + the conv workspace, in main()\n", E->prefix);
    if (E->step_fn[IR_STEP_TRAIN])
        out(E, "    .train_step = %s,\n", E->step_fn[IR_STEP_TRAIN]);
    out(E, "    .eval_step = {");
    first = 1;
    for (int s = IR_STEP_VALIDATE; s <= IR_STEP_TEST; s++)
        if (E->step_fn[s]) {
            out(E, "%s[%s] = %s", first ? "" : ", ", stage_enum[s], E->step_fn[s]);
            first = 0;
        }
    out(E, "},\n");
    int voc = 0;
    for (int s = IR_STEP_VALIDATE; s <= IR_STEP_TEST; s++)
        for (int i = 0; p->graphs[s].present && i < p->graphs[s].nops; i++)
            voc |= p->graphs[s].ops[i]->kind == LG_OP_VOC_MAP;
    if (voc)
        out(E, "    .eval_begin = %s_eval_begin,\n    .eval_end = %s_eval_end,\n", E->lower, E->lower);
    IrGraph *pg = &p->graphs[IR_STEP_PREDICT];
    if (E->step_fn[IR_STEP_PREDICT] && pg->output && pg->output->def &&
        pg->output->def->kind == LG_OP_DETECTIONS) {
        /* a detector: D rows of (x1, y1, x2, y2, score, label) per image */
        int D = pg->output->dim[0], K = pg->output->def->in[0]->dim[1];
        out(E, "    .predict_step = %s,\n", E->step_fn[IR_STEP_PREDICT]);
        out(E, "    .predict_width = %d,\n    .predict_probs = 1,\n    .predict_detections = %d,\n", D * 6, D);
        const Dataset *ds = NULL;
        for (int i = 0; i < m->ndatasets && !ds; i++)
            if (m->datasets[i]->format == FMT_VOC && m->datasets[i]->nclasses == K - 1)
                ds = m->datasets[i];
        if (ds) {
            out(E, "    .class_names = (const char *const[]){\"__background__\"");
            for (int i = 0; i < ds->nclasses; i++) {
                out(E, ", ");
                out_str(E, ds->classes[i]);
            }
            out(E, "},\n    .n_class_names = %d,\n", K);
        }
    } else if (E->step_fn[IR_STEP_PREDICT] && pg->output) {
        out(E, "    .predict_step = %s,\n", E->step_fn[IR_STEP_PREDICT]);
        out(E, "    .predict_width = %zu,\n", ir_numel(pg->output));
        int probs = pg->output->def && pg->output->def->kind == LG_OP_SOFTMAX;
        out(E, "    .predict_probs = %d,\n", probs);
    }
    out(E, "};\n\n");
    return 0;
}
