/* sema.c — names, types and ranges of a parsed Module (and its imports).
 *
 * Input: the Module from parse_file with its imports loaded (front.c).
 * Output: the same tree with hparam values, dataset and data-module
 * descriptors, optimizer/scheduler/trainer kinds filled in (ast.h), and every
 * error it can find reported: unknown names with "did you mean", duplicate
 * names, hparam types and ranges, unknown keys of datasets, transforms,
 * optimizers, schedulers and callbacks, and — in network, block and step
 * bodies — unknown names and callees, and values assigned but never used
 * (warnings). Shapes, attribute values of ops and the elaborated graphs are
 * the next pass's job (shapes.c), since they need blocks instantiated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "front.h"
#include "optab.h"
#include "strmap.h"

#define A (&ctx->arena)

/* ---- small helpers ----------------------------------------------------------- */

typedef struct NameSet {
    const char **names;
    Loc *locs;
    int n, cap;
} NameSet;

static void names_add(Ctx *ctx, NameSet *s, const char *name, Loc loc) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        s->names = arena_grow(A, s->names, (size_t)s->n, (size_t)cap, sizeof *s->names);
        s->locs = arena_grow(A, s->locs, (size_t)s->n, (size_t)cap, sizeof *s->locs);
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->locs[s->n++] = loc;
}

static EvalScope global_scope(Module *mod) {
    EvalScope sc = {0};
    sc.mod = mod;
    return sc;
}

/* ---- hparams -------------------------------------------------------------------
 *   hparams { NAME: TYPE = DEFAULT [in (LO, HI)] ["doc"] ... }
 */

static bool hp_fits(Hparam *h, CValue *v) {
    switch (h->type) {
    case TY_INT: return v->type == TY_INT;
    case TY_FLOAT:
        if (v->type == TY_INT)
            *v = cv_float((double)v->i);
        return v->type == TY_FLOAT;
    case TY_BOOL: return v->type == TY_BOOL;
    case TY_STRING: return v->type == TY_STRING;
    case TY_ENUM:
        if (v->type != TY_ENUM && v->type != TY_STRING)
            return false;
        v->type = TY_ENUM;
        return true;
    default: return false;
    }
}

/* Parses a -D value in .lmod literal syntax for hparam h. */
static bool parse_override(Ctx *ctx, Hparam *h, const char *text, CValue *out) {
    char *end;
    switch (h->type) {
    case TY_INT: {
        long long v = strtoll(text, &end, 10);
        if (!*text || *end)
            return false;
        *out = cv_int(v);
        return true;
    }
    case TY_FLOAT: {
        double v = strtod(text, &end);
        if (!*text || *end)
            return false;
        *out = cv_float(v);
        return true;
    }
    case TY_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            *out = cv_bool(text[0] == 't');
            return true;
        }
        return false;
    case TY_STRING: {
        size_t n = strlen(text);
        if (n >= 2 && text[0] == '"' && text[n - 1] == '"')
            *out = cv_string(arena_strndup(A, text + 1, n - 2));
        else
            *out = cv_string(arena_strdup(A, text));
        return true;
    }
    case TY_ENUM:
        *out = (CValue){.type = TY_ENUM, .s = arena_strdup(A, text)};
        return true;
    default: return false;
    }
}

static void check_enum_choice(Ctx *ctx, Hparam *h, CValue *v, Loc loc) {
    for (int i = 0; i < h->nchoices; i++)
        if (strcmp(h->choices[i], v->s) == 0)
            return;
    diag_error(ctx, loc, "'%s' is not a choice of hparam '%s'", v->s, h->name);
    if (!diag_suggest(ctx, loc, v->s, h->choices, h->nchoices))
        diag_note(ctx, h->type_loc, "the choices are declared here");
    v->type = TY_NONE;
}

static void check_range(Ctx *ctx, Hparam *h, const CValue *v, Loc loc, const char *what) {
    if (!h->lo || !cv_is_number(v) || !cv_is_number(&h->lo_value) || !cv_is_number(&h->hi_value))
        return;
    double x = cv_number(v), lo = cv_number(&h->lo_value), hi = cv_number(&h->hi_value);
    bool bad = h->lo_open ? x <= lo : x < lo;
    bad |= h->hi_open ? x >= hi : x > hi;
    if (bad)
        diag_error(ctx, loc, "%s of hparam '%s' is %s, outside its range %c%s, %s%c", what, h->name,
                   cv_str(ctx, v), h->lo_open ? '(' : '[', cv_str(ctx, &h->lo_value), cv_str(ctx, &h->hi_value),
                   h->hi_open ? ')' : ']');
}

static void sema_hparams(Ctx *ctx, Module *mod) {
    for (int i = 0; i < mod->nhparams; i++) {
        Hparam *h = &mod->hparams[i];
        for (int j = 0; j < i; j++)
            if (strcmp(mod->hparams[j].name, h->name) == 0) {
                diag_error(ctx, h->loc, "duplicate hparam '%s'", h->name);
                diag_note(ctx, mod->hparams[j].loc, "'%s' was first declared here", h->name);
            }
        if (h->type == TY_NONE)
            continue;
        if (h->type == TY_TUPLE) {
            diag_error(ctx, h->type_loc, "an hparam is an int, float, bool, string or enum; 'shape' is for block "
                                         "parameters");
            h->type = TY_NONE;
            continue;
        }
        if (!h->doc)
            diag_warning(ctx, h->loc, "hparam '%s' has no doc string; its flag's --help line will be empty",
                         h->name);
        /* Defaults and ranges may use hparams declared before this one. */
        int saved = mod->nhparams;
        mod->nhparams = i;
        EvalScope sc = global_scope(mod);
        sc.allow_enum = h->type == TY_ENUM;
        CValue v = eval_expr(ctx, &sc, h->dflt, false);
        if (h->lo) {
            EvalScope rs = global_scope(mod);
            h->lo_value = eval_expr(ctx, &rs, h->lo, false);
            h->hi_value = eval_expr(ctx, &rs, h->hi, false);
        }
        mod->nhparams = saved;
        if (h->lo) {
            if (h->type != TY_INT && h->type != TY_FLOAT) {
                diag_error(ctx, h->lo->loc, "only int and float hparams take a range; '%s' is %s", h->name,
                           ast_type_name(h->type));
            } else if ((h->lo_value.type && !cv_is_number(&h->lo_value)) ||
                       (h->hi_value.type && !cv_is_number(&h->hi_value))) {
                diag_error(ctx, !cv_is_number(&h->lo_value) ? h->lo->loc : h->hi->loc,
                           "a range's ends must be numbers");
                h->lo_value.type = TY_NONE;
            } else if (cv_is_number(&h->lo_value) && cv_is_number(&h->hi_value) &&
                       cv_number(&h->lo_value) > cv_number(&h->hi_value)) {
                diag_error(ctx, diag_span(h->lo->loc, h->hi->loc), "empty range: %s is greater than %s",
                           cv_str(ctx, &h->lo_value), cv_str(ctx, &h->hi_value));
                h->lo_value.type = TY_NONE;
            } else if (h->type == TY_INT && (h->lo_value.type == TY_FLOAT || h->hi_value.type == TY_FLOAT)) {
                diag_error(ctx, h->lo->loc, "the range of int hparam '%s' must have int ends", h->name);
                h->lo_value.type = TY_NONE;
            }
        }
        if (!v.type)
            continue;
        if (!hp_fits(h, &v)) {
            diag_error(ctx, h->dflt->loc, "default of hparam '%s' must be %s %s, found %s", h->name,
                       h->type == TY_INT ? "an" : "a", ast_type_name(h->type), cv_str(ctx, &v));
            continue;
        }
        if (h->type == TY_ENUM)
            check_enum_choice(ctx, h, &v, h->dflt->loc);
        if (!v.type)
            continue;
        check_range(ctx, h, &v, h->dflt->loc, "the default");
        h->value = v;
        for (int k = 0; k < ctx->noverrides; k++) {
            HparamOverride *o = &ctx->overrides[k];
            if (strcmp(o->name, h->name) != 0 || mod->is_import)
                continue;
            o->used = true;
            CValue ov;
            if (!parse_override(ctx, h, o->value, &ov) || !hp_fits(h, &ov)) {
                fprintf(ctx->err, "lgen: error: -D %s=%s: hparam '%s' is %s %s\n", o->name, o->value, h->name,
                        h->type == TY_INT ? "an" : "a", ast_type_name(h->type));
                ctx->nerrors++;
                continue;
            }
            if (h->type == TY_ENUM)
                check_enum_choice(ctx, h, &ov, h->loc);
            if (ov.type) {
                int before = ctx->nerrors;
                check_range(ctx, h, &ov, h->loc, "the -D value");
                if (ctx->nerrors == before)
                    h->value = ov;
            }
        }
    }
}

/* ---- datasets -------------------------------------------------------------------
 *   dataset NAME ["doc"] { mirror URL; file NAME sha256 HEX; archive ...;
 *                          format FMT(args); split NAME(paths, set: ...) }
 */

static const char *const format_names[] = {"idx", "cifar10", "cifar100", "image_folder", "csv", "voc"};

static const KeySpec format_keys[] = {
    {"shape", KT_INTS, false, false, NULL, 1, 65536},
    {"classes", KT_ANY, false, false, NULL, 1, 0},
    {"coarse", KT_BOOL, false, false, NULL, 1, 0},
    {"header", KT_BOOL, false, false, NULL, 1, 0},
    {"label_column", KT_INT, false, false, NULL, -1, 1 << 20},
    {"features", KT_INT, false, false, NULL, 1, 1 << 24},
    {"skip_difficult", KT_BOOL, false, false, NULL, 1, 0},
    {"skip_bad", KT_BOOL, false, false, NULL, 1, 0},
    {"channels", KT_INT, false, false, NULL, 1, 3},
    {"max_boxes", KT_INT, false, false, NULL, 1, 4096},
};
enum { FK_SHAPE, FK_CLASSES, FK_COARSE, FK_HEADER, FK_LABEL_COLUMN, FK_FEATURES, FK_SKIP_DIFFICULT,
       FK_SKIP_BAD, FK_CHANNELS, FK_MAX_BOXES, FK_COUNT };

/* Which format keys each format accepts (bit per FK_*). */
static const unsigned format_allowed[] = {
    [FMT_IDX] = 1u << FK_SHAPE | 1u << FK_CLASSES | 1u << FK_SKIP_BAD,
    [FMT_CIFAR10] = 1u << FK_CLASSES | 1u << FK_SKIP_BAD,
    [FMT_CIFAR100] = 1u << FK_COARSE | 1u << FK_CLASSES | 1u << FK_SKIP_BAD,
    [FMT_IMAGE_FOLDER] = 1u << FK_CLASSES | 1u << FK_CHANNELS | 1u << FK_SKIP_BAD,
    [FMT_CSV] = 1u << FK_HEADER | 1u << FK_LABEL_COLUMN | 1u << FK_FEATURES | 1u << FK_CLASSES | 1u << FK_SKIP_BAD,
    [FMT_VOC] = 1u << FK_CLASSES | 1u << FK_SKIP_DIFFICULT | 1u << FK_CHANNELS | 1u << FK_MAX_BOXES |
                1u << FK_SKIP_BAD,
};

static bool is_hex64(const char *s) {
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void sema_format(Ctx *ctx, Module *mod, Dataset *d) {
    Expr *fe = d->format_expr;
    if (!fe) {
        diag_error(ctx, d->loc, "dataset '%s' has no 'format' line (one of idx, cifar10, cifar100, image_folder, "
                                "csv, voc)", d->name);
        return;
    }
    const char *fname = fe->kind == EX_NAME || fe->kind == EX_CALL ? fe->str : NULL;
    if (!fname) {
        diag_error(ctx, fe->loc, "expected a format such as idx or voc(classes: (...))");
        return;
    }
    d->format = FMT_NONE;
    for (int i = 0; i < 6; i++)
        if (strcmp(fname, format_names[i]) == 0)
            d->format = (DataFormat)i;
    if (d->format == FMT_NONE) {
        diag_error(ctx, fe->str_loc, "unknown dataset format '%s'", fname);
        diag_suggest(ctx, fe->str_loc, fname, format_names, 6);
        return;
    }
    Expr *vals[FK_COUNT];
    CValue cv[FK_COUNT];
    EvalScope sc = global_scope(mod);
    char *what = arena_printf(A, "format '%s'", fname);
    if (fe->kind == EX_CALL)
        eval_args(ctx, &sc, what, fe->loc, fe->args, fe->nargs, format_keys, FK_COUNT, vals, cv);
    else
        memset(vals, 0, sizeof vals), memset(cv, 0, sizeof cv);
    for (int k = 0; k < FK_COUNT; k++)
        if (vals[k] && !(format_allowed[d->format] & (1u << k)))
            diag_error(ctx, vals[k]->loc, "format '%s' takes no argument '%s'", fname, format_keys[k].name);
    /* Static facts of each format. */
    switch (d->format) {
    case FMT_IDX:
        d->sample_shape = (Shape){3, {1, 28, 28}, false};
        d->num_classes = 10;
        break;
    case FMT_CIFAR10:
        d->sample_shape = (Shape){3, {3, 32, 32}, false};
        d->num_classes = 10;
        break;
    case FMT_CIFAR100:
        d->sample_shape = (Shape){3, {3, 32, 32}, false};
        d->cifar_coarse = cv[FK_COARSE].type == TY_BOOL && cv[FK_COARSE].i;
        d->num_classes = d->cifar_coarse ? 20 : 100;
        break;
    case FMT_IMAGE_FOLDER:
    case FMT_VOC:
        d->decode_channels = cv[FK_CHANNELS].type ? (int)cv[FK_CHANNELS].i : 3;
        if (d->decode_channels != 1 && d->decode_channels != 3 && cv[FK_CHANNELS].type)
            diag_error(ctx, vals[FK_CHANNELS]->loc, "channels must be 1 or 3, found %d", d->decode_channels);
        d->sample_shape = (Shape){3, {d->decode_channels, 0, 0}, false}; /* size from transforms */
        d->max_boxes = d->format == FMT_VOC ? (cv[FK_MAX_BOXES].type ? (int)cv[FK_MAX_BOXES].i : 64) : 0;
        d->voc_skip_difficult = cv[FK_SKIP_DIFFICULT].type && cv[FK_SKIP_DIFFICULT].i;
        break;
    case FMT_CSV:
        d->csv_header = cv[FK_HEADER].type && cv[FK_HEADER].i;
        d->csv_label_column = cv[FK_LABEL_COLUMN].type ? (int)cv[FK_LABEL_COLUMN].i : -1;
        if (!vals[FK_FEATURES])
            diag_error(ctx, fe->loc, "format 'csv' needs argument 'features' (the number of feature columns)");
        d->features = cv[FK_FEATURES].type ? (int)cv[FK_FEATURES].i : 1;
        d->sample_shape = (Shape){1, {d->features}, false};
        break;
    default: break;
    }
    d->skip_bad = cv[FK_SKIP_BAD].type && cv[FK_SKIP_BAD].i;
    if (cv[FK_SHAPE].type) {
        CValue *s = &cv[FK_SHAPE];
        if (s->type != TY_TUPLE || s->nitems != 3)
            diag_error(ctx, vals[FK_SHAPE]->loc, "shape of an idx dataset is (channels, height, width)");
        else
            d->sample_shape = (Shape){3, {s->items[0].i, s->items[1].i, s->items[2].i}, false};
    }
    if (cv[FK_CLASSES].type) {
        CValue *c = &cv[FK_CLASSES];
        if (c->type == TY_INT && c->i >= 1) {
            d->num_classes = (int)c->i;
        } else if (c->type == TY_TUPLE && c->nitems > 0) {
            d->classes = arena_array(A, (size_t)c->nitems, sizeof *d->classes);
            for (int i = 0; i < c->nitems; i++) {
                if (c->items[i].type != TY_STRING) {
                    diag_error(ctx, vals[FK_CLASSES]->loc, "classes is a count or a tuple of class names");
                    break;
                }
                for (int j = 0; j < i; j++)
                    if (strcmp(d->classes[j], c->items[i].s) == 0)
                        diag_error(ctx, vals[FK_CLASSES]->loc, "class '%s' is listed twice", c->items[i].s);
                d->classes[d->nclasses++] = c->items[i].s;
            }
            d->num_classes = d->nclasses;
        } else {
            diag_error(ctx, vals[FK_CLASSES]->loc, "classes is a count or a tuple of class names");
        }
    }
    if (d->format == FMT_VOC && !d->nclasses)
        diag_error(ctx, fe->loc, "format 'voc' needs argument 'classes', the object names in label order");
}

static const KeySpec split_keys[] = {
    {"set", KT_STRING, false, false, NULL, 1, 0},
};

static void sema_dataset(Ctx *ctx, Module *mod, Dataset *d) {
    if (d->nmirrors == 0)
        diag_error(ctx, d->loc, "dataset '%s' has no 'mirror' line; give the base URL its files are fetched from",
                   d->name);
    for (int i = 0; i < d->nmirrors; i++) {
        const char *m = d->mirrors[i];
        if (strncmp(m, "http://", 7) != 0 && strncmp(m, "https://", 8) != 0 && strncmp(m, "file://", 7) != 0)
            diag_error(ctx, d->mirror_locs[i], "a mirror is an http://, https:// or file:// URL, found \"%s\"", m);
    }
    for (int i = 0; i < d->nfiles; i++) {
        DataFile *f = &d->files[i];
        if (!f->name[0] || f->name[0] == '/' || strstr(f->name, ".."))
            diag_error(ctx, f->loc, "a file name is relative to the mirror, without '..': \"%s\"", f->name);
        if (!f->sha256)
            diag_warning(ctx, f->loc, "file \"%s\" has no sha256; downloads will not be verified", f->name);
        else if (!is_hex64(f->sha256))
            diag_error(ctx, f->loc, "the sha256 of \"%s\" must be 64 lower-case hex digits", f->name);
        for (int j = 0; j < i; j++)
            if (strcmp(d->files[j].name, f->name) == 0) {
                diag_error(ctx, f->loc, "file \"%s\" is listed twice", f->name);
                diag_note(ctx, d->files[j].loc, "first listed here");
            }
    }
    if (d->nfiles == 0)
        diag_error(ctx, d->loc, "dataset '%s' lists no 'file' or 'archive'", d->name);
    sema_format(ctx, mod, d);
    if (d->nsplits == 0)
        diag_error(ctx, d->loc, "dataset '%s' has no 'split' line", d->name);
    bool has_archive = false;
    for (int i = 0; i < d->nfiles; i++)
        has_archive |= d->files[i].extract;
    for (int i = 0; i < d->nsplits; i++) {
        DatasetSplit *s = &d->splits[i];
        for (int j = 0; j < i; j++)
            if (strcmp(d->splits[j].name, s->name) == 0) {
                diag_error(ctx, s->loc, "split '%s' of dataset '%s' is defined twice", s->name, d->name);
                diag_note(ctx, d->splits[j].loc, "first defined here");
            }
        int npos = 0;
        for (int k = 0; k < s->nargs; k++)
            npos += s->args[k].key == NULL;
        s->paths = arena_array(A, (size_t)npos, sizeof *s->paths);
        s->path_locs = arena_array(A, (size_t)npos, sizeof *s->path_locs);
        for (int k = 0; k < s->nargs; k++) {
            Arg *a = &s->args[k];
            if (a->key) {
                if (strcmp(a->key, "set") != 0) {
                    diag_error(ctx, a->key_loc, "a split takes file paths and 'set:', not '%s'", a->key);
                    const char *c[] = {"set"};
                    diag_suggest(ctx, a->key_loc, a->key, c, 1);
                    continue;
                }
                EvalScope sc = global_scope(mod);
                CValue v = eval_expr(ctx, &sc, a->value, false);
                if (v.type == TY_STRING)
                    s->set = v.s;
                else if (v.type)
                    diag_error(ctx, a->value->loc, "'set' is a string, the image set's name");
                continue;
            }
            EvalScope sc = global_scope(mod);
            CValue v = eval_expr(ctx, &sc, a->value, false);
            if (v.type != TY_STRING) {
                if (v.type)
                    diag_error(ctx, a->value->loc, "a split's inputs are file paths (strings)");
                continue;
            }
            s->path_locs[s->npaths] = a->value->loc;
            s->paths[s->npaths++] = v.s;
            /* Without archives, every path must be one of the dataset's files. */
            if (!has_archive) {
                bool found = false;
                const char *cands[256];
                int nc = 0;
                for (int f = 0; f < d->nfiles; f++) {
                    found |= strcmp(d->files[f].name, v.s) == 0;
                    if (nc < 256)
                        cands[nc++] = d->files[f].name;
                }
                if (!found) {
                    diag_error(ctx, a->value->loc, "\"%s\" is not a file of dataset '%s'", v.s, d->name);
                    diag_suggest(ctx, a->value->loc, v.s, cands, nc);
                }
            }
        }
        (void)split_keys;
        int want_min = 1, want_max = 1 << 20;
        switch (d->format) {
        case FMT_IDX: want_min = want_max = 2; break;
        case FMT_IMAGE_FOLDER:
        case FMT_CSV:
        case FMT_VOC: want_min = want_max = 1; break;
        default: break;
        }
        if (d->format != FMT_NONE && (s->npaths < want_min || s->npaths > want_max)) {
            if (want_min == want_max)
                diag_error(ctx, s->loc, "a split of format '%s' reads %d path%s, found %d",
                           ast_format_name(d->format), want_min, want_min == 1 ? "" : "s (images, labels)",
                           s->npaths);
            else
                diag_error(ctx, s->loc, "a split of format '%s' reads at least one file",
                           ast_format_name(d->format));
        }
        if (d->format == FMT_VOC && !s->set)
            diag_error(ctx, s->loc, "a voc split needs 'set:', the image set (\"trainval\", \"test\")");
        if (d->format != FMT_VOC && s->set)
            diag_error(ctx, s->loc, "only voc splits take 'set:'");
    }
}

/* ---- data module ------------------------------------------------------------------
 *   data { train, val = split(ds.train, 0.9, seed: 42); test = ds.test
 *          train |> transform(...) |> ...; batch_size = ...; ... }
 */

typedef struct TfSpec {
    TransformKind kind;
    const char *name;
    KeySpec keys[4];
    int nkeys;
} TfSpec;

#define NOR 1, 0 /* no range */
static const TfSpec tf_specs[] = {
    {TF_TO_TENSOR, "to_tensor", {{0}}, 0},
    {TF_NORMALIZE, "normalize", {{"mean", KT_NUMBER_OR_TUPLE, true, true, NULL, NOR},
                                 {"std", KT_NUMBER_OR_TUPLE, true, true, NULL, 1e-12, 1e12}}, 2},
    {TF_RESIZE, "resize", {{"size", KT_SIZE, true, true, NULL, 1, 16384}, {"width", KT_INT, false, true, NULL, 1, 16384}}, 2},
    {TF_CENTER_CROP, "center_crop", {{"size", KT_SIZE, true, true, NULL, 1, 16384}, {"width", KT_INT, false, true, NULL, 1, 16384}}, 2},
    {TF_RANDOM_CROP, "random_crop", {{"size", KT_SIZE, true, true, NULL, 1, 16384}, {"width", KT_INT, false, true, NULL, 1, 16384},
                                     {"padding", KT_INT, false, false, NULL, 0, 4096}}, 3},
    {TF_RANDOM_RESIZED_CROP, "random_resized_crop", {{"size", KT_SIZE, true, true, NULL, 1, 16384},
                                                     {"scale", KT_FLOATS, false, false, NULL, 0, 1},
                                                     {"ratio", KT_FLOATS, false, false, NULL, 1e-6, 1e6}}, 3},
    {TF_RANDOM_HFLIP, "random_horizontal_flip", {{"p", KT_FLOAT, false, true, NULL, 0, 1}}, 1},
    {TF_RANDOM_VFLIP, "random_vertical_flip", {{"p", KT_FLOAT, false, true, NULL, 0, 1}}, 1},
    {TF_COLOR_JITTER, "color_jitter", {{"brightness", KT_FLOAT, false, true, NULL, 0, 1e6},
                                       {"contrast", KT_FLOAT, false, true, NULL, 0, 1e6},
                                       {"saturation", KT_FLOAT, false, true, NULL, 0, 1e6},
                                       {"hue", KT_FLOAT, false, true, NULL, 0, 0.5}}, 4},
    {TF_GRAYSCALE, "grayscale", {{"channels", KT_INT, false, true, NULL, 1, 3}}, 1},
    {TF_LETTERBOX, "letterbox", {{"size", KT_SIZE, true, true, NULL, 1, 16384}, {"width", KT_INT, false, true, NULL, 1, 16384},
                                 {"fill", KT_FLOAT, false, false, NULL, NOR}}, 3},
};
#define NTF ((int)(sizeof tf_specs / sizeof *tf_specs))

static void size_arg(const CValue *size, const CValue *width, int *h, int *w) {
    if (size->type == TY_TUPLE && size->nitems == 2) {
        *h = (int)size->items[0].i;
        *w = (int)size->items[1].i;
    } else {
        *h = (int)size->i;
        *w = width->type ? (int)width->i : *h;
    }
}

static void floats_arg(const CValue *v, float *out, int max, int *n) {
    *n = 0;
    if (cv_is_number(v)) {
        out[(*n)++] = (float)cv_number(v);
        return;
    }
    for (int i = 0; i < v->nitems && *n < max; i++)
        out[(*n)++] = (float)cv_number(&v->items[i]);
}

/* Resolves one pipeline stage into a Transform (lg_transform_desc layout). */
static bool sema_transform(Ctx *ctx, Module *mod, Expr *stage, Transform *t) {
    const char *name = stage->str;
    const TfSpec *spec = NULL;
    for (int i = 0; i < NTF; i++)
        if (strcmp(tf_specs[i].name, name) == 0)
            spec = &tf_specs[i];
    if (!spec) {
        const char *cands[NTF];
        for (int i = 0; i < NTF; i++)
            cands[i] = tf_specs[i].name;
        diag_error(ctx, stage->str_loc, "unknown transform '%s'", name);
        diag_suggest(ctx, stage->str_loc, name, cands, NTF);
        return false;
    }
    memset(t, 0, sizeof *t);
    t->kind = spec->kind;
    t->call = stage;
    t->loc = stage->loc;
    Expr *vals[4];
    CValue cv[4];
    EvalScope sc = global_scope(mod);
    char *what = arena_printf(A, "transform '%s'", name);
    Arg *args = stage->kind == EX_CALL ? stage->args : NULL;
    int nargs = stage->kind == EX_CALL ? stage->nargs : 0;
    if (eval_args(ctx, &sc, what, stage->loc, args, nargs, spec->keys, spec->nkeys, vals, cv))
        return false;
    int n;
    switch (t->kind) {
    case TF_NORMALIZE: {
        float mean[6], std[6];
        int nm, ns;
        floats_arg(&cv[0], mean, 6, &nm);
        floats_arg(&cv[1], std, 6, &ns);
        if ((nm != 1 && nm != 3) || nm != ns) {
            diag_error(ctx, stage->loc, "normalize takes one mean and std, or three of each (per channel); "
                                        "found %d and %d", nm, ns);
            return false;
        }
        for (int i = 0; i < 3; i++) {
            t->f[i] = mean[nm == 1 ? 0 : i];
            t->f[3 + i] = std[ns == 1 ? 0 : i];
        }
        t->i[0] = nm;
        break;
    }
    case TF_RESIZE:
    case TF_CENTER_CROP:
    case TF_RANDOM_CROP:
    case TF_LETTERBOX:
        size_arg(&cv[0], &cv[1], &t->i[0], &t->i[1]);
        if (t->kind == TF_RANDOM_CROP)
            t->i[2] = cv[2].type ? (int)cv[2].i : 0;
        if (t->kind == TF_LETTERBOX)
            t->f[0] = cv[2].type ? (float)cv[2].f : 0;
        break;
    case TF_RANDOM_RESIZED_CROP: {
        CValue none = {0};
        size_arg(&cv[0], &none, &t->i[0], &t->i[1]);
        t->f[0] = 0.08f, t->f[1] = 1.0f, t->f[2] = 3.0f / 4, t->f[3] = 4.0f / 3;
        float tmp[6];
        if (cv[1].type) {
            floats_arg(&cv[1], tmp, 6, &n);
            if (n != 2)
                diag_error(ctx, vals[1]->loc, "scale is a (low, high) pair");
            else
                t->f[0] = tmp[0], t->f[1] = tmp[1];
        }
        if (cv[2].type) {
            floats_arg(&cv[2], tmp, 6, &n);
            if (n != 2)
                diag_error(ctx, vals[2]->loc, "ratio is a (low, high) pair");
            else
                t->f[2] = tmp[0], t->f[3] = tmp[1];
        }
        break;
    }
    case TF_RANDOM_HFLIP:
    case TF_RANDOM_VFLIP: t->f[0] = cv[0].type ? (float)cv[0].f : 0.5f; break;
    case TF_COLOR_JITTER:
        for (int i = 0; i < 4; i++)
            t->f[i] = cv[i].type ? (float)cv[i].f : 0;
        break;
    case TF_GRAYSCALE:
        t->i[0] = cv[0].type ? (int)cv[0].i : 1;
        if (t->i[0] != 1 && t->i[0] != 3) {
            diag_error(ctx, vals[0]->loc, "grayscale makes 1 or 3 channels, found %d", t->i[0]);
            return false;
        }
        break;
    default: break;
    }
    return true;
}

static DataSplit *find_split(DataBlock *d, const char *name) {
    for (int i = 0; i < d->nsplits; i++)
        if (strcmp(d->splits[i].name, name) == 0)
            return &d->splits[i];
    return NULL;
}

static const char *const loader_names[] = {"train", "val", "test", "predict"};

/* Resolves `ds.split` in the data block into its dataset and split. */
static bool resolve_source(Ctx *ctx, Module *mod, Expr *e, DataSplit *out) {
    if (e->kind != EX_FIELD || e->lhs->kind != EX_NAME) {
        diag_error(ctx, e->loc, "expected a dataset split such as 'fashion.train'");
        return false;
    }
    Dataset *d = ast_find_dataset(mod, e->lhs->str);
    if (!d) {
        diag_error(ctx, e->lhs->loc, "unknown dataset '%s'", e->lhs->str);
        const char *cands[256];
        int n = 0;
        for (int i = 0; i < mod->ndatasets && n < 256; i++)
            cands[n++] = mod->datasets[i]->name;
        diag_suggest(ctx, e->lhs->loc, e->lhs->str, cands, n);
        return false;
    }
    e->lhs->ref = REF_DATASET;
    e->lhs->target = d;
    for (int i = 0; i < d->nsplits; i++)
        if (strcmp(d->splits[i].name, e->str) == 0) {
            out->dataset = d;
            out->source = &d->splits[i];
            return true;
        }
    diag_error(ctx, e->str_loc, "dataset '%s' has no split '%s'", d->name, e->str);
    const char *cands[256];
    int n = 0;
    for (int i = 0; i < d->nsplits && n < 256; i++)
        cands[n++] = d->splits[i].name;
    diag_suggest(ctx, e->str_loc, e->str, cands, n);
    return false;
}

static const KeySpec data_keys[] = {
    {"batch_size", KT_INT, false, false, NULL, 1, 1 << 24},
    {"val_batch_size", KT_INT, false, false, NULL, 1, 1 << 24},
    {"num_workers", KT_INT, false, false, NULL, 0, 1024},
    {"shuffle", KT_BOOL, false, false, NULL, 1, 0},
    {"drop_last", KT_BOOL, false, false, NULL, 1, 0},
};

static void add_split(Ctx *ctx, DataBlock *d, int *cap, DataSplit *s) {
    if (d->nsplits == *cap) {
        int n = *cap ? *cap * 2 : 4;
        d->splits = arena_grow(A, d->splits, (size_t)d->nsplits, (size_t)n, sizeof *d->splits);
        *cap = n;
    }
    d->splits[d->nsplits++] = *s;
}

/* A split whose definition had an error: its names exist (so pipelines and
 * steps naming it stay quiet) but it reads nothing. */
static void add_poisoned(Ctx *ctx, DataBlock *d, int *cap, Stmt *s) {
    for (int k = 0; k < s->nnames; k++) {
        if (find_split(d, s->names[k]))
            continue;
        DataSplit ds = {0};
        ds.name = s->names[k];
        ds.loc = s->name_locs[k];
        add_split(ctx, d, cap, &ds);
    }
}

static void check_loader_name(Ctx *ctx, const char *name, Loc loc) {
    for (int i = 0; i < 4; i++)
        if (strcmp(loader_names[i], name) == 0)
            return;
    diag_error(ctx, loc, "a data split is named train, val, test or predict, found '%s'", name);
    diag_suggest(ctx, loc, name, loader_names, 4);
}

static void sema_data(Ctx *ctx, Module *mod) {
    DataBlock *d = mod->data;
    int cap = 0;
    for (int i = 0; i < d->nstmts; i++) {
        Stmt *s = d->stmts[i];
        if (s->kind == ST_ASSIGN && s->value->kind == EX_CALL && strcmp(s->value->str, "split") == 0) {
            /* train, val = split(ds.train, 0.9, seed: 42) */
            Expr *c = s->value;
            Expr *src = NULL, *seed = NULL;
            Expr *fr[8];
            int nfr = 0;
            for (int k = 0; k < c->nargs; k++) {
                Arg *a = &c->args[k];
                if (a->key && strcmp(a->key, "seed") == 0)
                    seed = a->value;
                else if (a->key) {
                    diag_error(ctx, a->key_loc, "split() takes a source, fractions and 'seed:', not '%s'", a->key);
                    const char *cands[] = {"seed"};
                    diag_suggest(ctx, a->key_loc, a->key, cands, 1);
                } else if (!src)
                    src = a->value;
                else if (nfr < 8)
                    fr[nfr++] = a->value;
            }
            if (!src) {
                diag_error(ctx, c->loc, "split() needs a source split, e.g. split(fashion.train, 0.9, seed: 42)");
                continue;
            }
            DataSplit base = {0};
            if (!resolve_source(ctx, mod, src, &base)) {
                add_poisoned(ctx, d, &cap, s);
                continue;
            }
            double fracs[8];
            int nf = 0;
            bool ok = true;
            for (int k = 0; k < nfr; k++) {
                EvalScope sc = global_scope(mod);
                CValue v = eval_expr(ctx, &sc, fr[k], false);
                if (!cv_is_number(&v) || cv_number(&v) <= 0 || cv_number(&v) >= 1 + 1e-9) {
                    if (v.type)
                        diag_error(ctx, fr[k]->loc, "a split fraction is a number in (0, 1], found %s",
                                   cv_str(ctx, &v));
                    ok = false;
                    continue;
                }
                fracs[nf++] = cv_number(&v);
            }
            if (!ok) {
                add_poisoned(ctx, d, &cap, s);
                continue;
            }
            int nout = s->nnames;
            if (nf == nout - 1) {
                double sum = 0;
                for (int k = 0; k < nf; k++)
                    sum += fracs[k];
                if (sum >= 1 - 1e-9) {
                    diag_error(ctx, c->loc, "the fractions add up to %g, leaving nothing for '%s'", sum,
                               s->names[nout - 1]);
                    add_poisoned(ctx, d, &cap, s);
                    continue;
                }
                fracs[nf++] = 1 - sum;
            }
            if (nf != nout) {
                diag_error(ctx, c->loc, "split() into %d part%s needs %d or %d fractions, found %d", nout,
                           nout == 1 ? "" : "s", nout - 1, nout, nf);
                add_poisoned(ctx, d, &cap, s);
                continue;
            }
            double sum = 0;
            for (int k = 0; k < nf; k++)
                sum += fracs[k];
            if (sum > 1 + 1e-9) {
                diag_error(ctx, c->loc, "the fractions add up to %g, more than 1", sum);
                add_poisoned(ctx, d, &cap, s);
                continue;
            }
            uint64_t seedv = 0;
            if (seed) {
                EvalScope sc = global_scope(mod);
                CValue v = eval_expr(ctx, &sc, seed, false);
                if (v.type != TY_INT || v.i < 0) {
                    if (v.type)
                        diag_error(ctx, seed->loc, "seed is a non-negative int, found %s", cv_str(ctx, &v));
                } else {
                    seedv = (uint64_t)v.i;
                }
            }
            double lo = 0;
            for (int k = 0; k < nout; k++) {
                check_loader_name(ctx, s->names[k], s->name_locs[k]);
                if (find_split(d, s->names[k])) {
                    diag_error(ctx, s->name_locs[k], "data split '%s' is defined twice", s->names[k]);
                    continue;
                }
                DataSplit ds = base;
                ds.name = s->names[k];
                ds.loc = s->name_locs[k];
                ds.source_expr = src;
                ds.lo = lo;
                ds.hi = k == nout - 1 && sum > 1 - 1e-9 ? 1.0 : lo + fracs[k];
                lo = ds.hi;
                ds.seed = seedv;
                add_split(ctx, d, &cap, &ds);
            }
        } else if (s->kind == ST_ASSIGN && s->nnames == 1 && s->value->kind == EX_FIELD) {
            /* test = ds.test */
            DataSplit ds = {0};
            if (!resolve_source(ctx, mod, s->value, &ds)) {
                add_poisoned(ctx, d, &cap, s);
                continue;
            }
            check_loader_name(ctx, s->names[0], s->name_locs[0]);
            if (find_split(d, s->names[0])) {
                diag_error(ctx, s->name_locs[0], "data split '%s' is defined twice", s->names[0]);
                continue;
            }
            ds.name = s->names[0];
            ds.loc = s->name_locs[0];
            ds.source_expr = s->value;
            ds.lo = 0;
            ds.hi = 1;
            add_split(ctx, d, &cap, &ds);
        } else if (s->kind == ST_ASSIGN && s->nnames == 1) {
            /* batch_size = batch_size */
            int k = -1;
            for (int j = 0; j < (int)(sizeof data_keys / sizeof *data_keys); j++)
                if (strcmp(data_keys[j].name, s->names[0]) == 0)
                    k = j;
            if (k < 0) {
                diag_error(ctx, s->name_locs[0], "unknown data setting '%s'", s->names[0]);
                const char *cands[8];
                int n = 0;
                for (int j = 0; j < (int)(sizeof data_keys / sizeof *data_keys); j++)
                    cands[n++] = data_keys[j].name;
                diag_suggest(ctx, s->name_locs[0], s->names[0], cands, n);
                continue;
            }
            Arg a = {data_keys[k].name, s->name_locs[0], s->value};
            Expr *vals[5];
            CValue cv[5];
            EvalScope sc = global_scope(mod);
            if (eval_args(ctx, &sc, "the data block", s->loc, &a, 1, data_keys, 5, vals, cv))
                continue;
            Expr **slot[] = {&d->batch_size, &d->val_batch_size, &d->num_workers, &d->shuffle, &d->drop_last};
            if (*slot[k]) {
                diag_error(ctx, s->name_locs[0], "data setting '%s' is set twice", s->names[0]);
                continue;
            }
            *slot[k] = s->value;
        } else if (s->kind == ST_EXPR && s->value->kind == EX_PIPE) {
            /* train |> t1 |> t2: collect stages (iteratively: pipelines may be long) */
            int n = 0;
            Expr *e = s->value;
            while (e->kind == EX_PIPE)
                n++, e = e->lhs;
            if (e->kind != EX_NAME) {
                diag_error(ctx, e->loc, "a pipeline starts with a data split name (train, val, test, predict)");
                continue;
            }
            DataSplit *ds = find_split(d, e->str);
            if (!ds) {
                diag_error(ctx, e->loc, "unknown data split '%s'", e->str);
                const char *cands[64];
                int nc = 0;
                for (int k = 0; k < d->nsplits && nc < 64; k++)
                    cands[nc++] = d->splits[k].name;
                diag_suggest(ctx, e->loc, e->str, cands, nc);
                continue;
            }
            if (ds->ntransforms) {
                diag_error(ctx, e->loc, "split '%s' already has a pipeline", e->str);
                continue;
            }
            Expr **stages = arena_array(A, (size_t)n, sizeof *stages);
            int k = n;
            for (e = s->value; e->kind == EX_PIPE; e = e->lhs)
                stages[--k] = e->rhs;
            ds->transforms = arena_array(A, (size_t)n, sizeof *ds->transforms);
            for (k = 0; k < n; k++)
                if (sema_transform(ctx, mod, stages[k], &ds->transforms[ds->ntransforms]))
                    ds->ntransforms++;
        } else {
            diag_error(ctx, s->loc, "a data block holds splits ('train, val = split(...)', 'test = ds.test'), "
                                    "pipelines ('train |> ...') and settings ('batch_size = ...')");
        }
    }
    if (!find_split(d, "train"))
        diag_error(ctx, d->loc, "the data block defines no 'train' split");
    /* Per-sample image shapes after each pipeline. */
    for (int i = 0; i < d->nsplits; i++) {
        DataSplit *ds = &d->splits[i];
        if (!ds->dataset)
            continue;
        Shape sh = ds->dataset->sample_shape;
        ds->max_boxes = ds->dataset->max_boxes;
        for (int k = 0; k < ds->ntransforms; k++) {
            Transform *t = &ds->transforms[k];
            switch (t->kind) {
            case TF_RESIZE:
            case TF_LETTERBOX:
            case TF_RANDOM_RESIZED_CROP:
                if (sh.rank == 3)
                    sh.dim[1] = t->i[0], sh.dim[2] = t->i[1];
                break;
            case TF_CENTER_CROP:
            case TF_RANDOM_CROP:
                if (sh.rank == 3) {
                    if (sh.dim[1] && (t->i[0] > sh.dim[1] + 2 * t->i[2] || t->i[1] > sh.dim[2] + 2 * t->i[2]))
                        diag_error(ctx, t->loc, "crop of %dx%d is larger than the %lldx%lld image", t->i[0], t->i[1],
                                   (long long)sh.dim[1] + 2 * t->i[2], (long long)sh.dim[2] + 2 * t->i[2]);
                    sh.dim[1] = t->i[0], sh.dim[2] = t->i[1];
                }
                break;
            case TF_GRAYSCALE:
                if (sh.rank == 3)
                    sh.dim[0] = t->i[0];
                break;
            case TF_NORMALIZE:
                if (sh.rank == 3 && t->i[0] == 3 && sh.dim[0] != 3)
                    diag_error(ctx, t->loc, "normalize has 3 means and stds but the images have %lld channel%s",
                               (long long)sh.dim[0], sh.dim[0] == 1 ? "" : "s");
                break;
            default: break;
            }
            if (ds->max_boxes && (t->kind == TF_RANDOM_RESIZED_CROP || t->kind == TF_CENTER_CROP))
                diag_warning(ctx, t->loc, "'%s' may cut boxes of a detection sample; boxes leaving the image "
                                          "are dropped", ast_transform_name(t->kind));
        }
        if (sh.rank == 3 && (sh.dim[1] == 0 || sh.dim[2] == 0)) {
            diag_error(ctx, ds->loc, "the images of dataset '%s' have no fixed size; add resize(h, w) or "
                                     "letterbox(h, w) to the '%s' pipeline", ds->dataset->name, ds->name);
            sh.dim[1] = sh.dim[2] = 1;
        }
        sh.batched = true;
        ds->image_shape = sh;
    }
}

/* ---- networks, blocks and steps: names ----------------------------------------------
 * A static walk over every statement (both branches of an `if`, a loop body
 * once) that finds unknown names and callees and values never read. The
 * shapes pass later runs the bodies for real.
 */

typedef struct Walk {
    Stmt **body;         /* the whole body, for "assigned later" notes */
    int nbody;
    Ctx *ctx;
    Module *mod;
    Network *net;        /* NULL in a step */
    Step *step;
    NameSet defs;        /* names in scope: parameters, assigned values, loop vars */
    int *reads;          /* per def: explicit marks (loop variables) */
    int capreads;
    StrMap last_read;    /* name -> 1 + the number of defs when it was last read */
    StrMap defmap;       /* name -> (void *)1 once defined */
    bool *is_tensor;
    int depth;
} Walk;

static const char *const builtin_funcs[] = {"dim", "min", "max", "int", "float", "shape"};

static void walk_def(Walk *w, const char *name, Loc loc, bool tensor) {
    names_add(w->ctx, &w->defs, name, loc);
    if (w->defs.n > w->capreads) {
        int cap = w->defs.cap;
        w->reads = arena_grow(&w->ctx->arena, w->reads, (size_t)w->capreads, (size_t)cap, sizeof *w->reads);
        w->is_tensor = arena_grow(&w->ctx->arena, w->is_tensor, (size_t)w->capreads, (size_t)cap, sizeof *w->is_tensor);
        w->capreads = cap;
    }
    w->reads[w->defs.n - 1] = 0;
    w->is_tensor[w->defs.n - 1] = tensor;
    strmap_put(&w->ctx->arena, &w->defmap, name, (void *)1);
}

/* A read counts for every earlier definition of name: with `if` and loops
 * a read may see any of them, and a false "never used" is worse than a
 * missed one. So a definition is read when its name was read after it. */
static bool walk_read(Walk *w, const char *name) {
    if (!strmap_get(&w->defmap, name))
        return false;
    strmap_put(&w->ctx->arena, &w->last_read, name, (void *)(intptr_t)(w->defs.n + 1));
    return true;
}

static bool def_is_read(Walk *w, int i) {
    intptr_t t = (intptr_t)strmap_get(&w->last_read, w->defs.names[i]);
    return w->reads[i] > 0 || t - 1 > i;
}

/* Whether name is an enum-typed block parameter or hparam (its comparisons
 * take enum literals: arch == resnet50). */
static bool walk_is_enum(Walk *w, Expr *e) {
    if (e->kind != EX_NAME)
        return false;
    for (int i = 0; w->net && i < w->net->nparams; i++)
        if (strcmp(w->net->params[i].name, e->str) == 0)
            return w->net->params[i].type == TY_ENUM;
    Hparam *h = ast_find_hparam(w->mod, e->str);
    return h && h->type == TY_ENUM;
}

/* Where name is assigned in body (first assignment), searching nested bodies. */
static bool assigned_at(Stmt **body, int n, const char *name, Loc *at, int depth) {
    for (int i = 0; i < n && depth < 200; i++) {
        Stmt *s = body[i];
        for (int k = 0; s->kind == ST_ASSIGN && k < s->nnames; k++)
            if (strcmp(s->names[k], name) == 0) {
                *at = s->name_locs[k];
                return true;
            }
        if ((s->kind == ST_FOR || s->kind == ST_IF) &&
            (assigned_at(s->body, s->nbody, name, at, depth + 1) || assigned_at(s->orelse, s->norelse, name, at, depth + 1)))
            return true;
    }
    return false;
}

static void walk_candidates(Walk *w, const char **c, int *n, int max) {
    for (int i = 0; i < w->defs.n && *n < max; i++)
        c[(*n)++] = w->defs.names[i];
    for (int i = 0; i < w->mod->nhparams && *n < max; i++)
        c[(*n)++] = w->mod->hparams[i].name;
}

static void walk_expr(Walk *w, Expr *e);

/* Out of line: its candidate array must not sit in walk_expr's recursive frame. */
static __attribute__((noinline)) void walk_unknown(Walk *w, Expr *e) {
    diag_error(w->ctx, e->loc, "unknown name '%s'", e->str);
    Loc later = LOC_NONE;
    if (w->body && assigned_at(w->body, w->nbody, e->str, &later, 0) && later.begin > e->loc.begin) {
        diag_note(w->ctx, later, "'%s' is assigned later; values are computed top to bottom, so a value "
                                 "cannot be used before (or in a cycle with) its assignment", e->str);
        return;
    }
    const char *cands[1024];
    int n = 0;
    walk_candidates(w, cands, &n, 1024);
    diag_suggest(w->ctx, e->loc, e->str, cands, n);
}

static __attribute__((noinline)) void walk_callee(Walk *w, Expr *e) {
    const char *f = e->str;
    if (optab_find(f))
        return;
    Network *n = ast_find_network(w->mod, f);
    if (n) {
        n->used = true;
        return;
    }
    for (size_t i = 0; i < sizeof builtin_funcs / sizeof *builtin_funcs; i++)
        if (strcmp(builtin_funcs[i], f) == 0)
            return;
    diag_error(w->ctx, e->str_loc, "unknown op or block '%s'", f);
    const char *cands[LG_OP_COUNT + 512];
    int k = 0;
    const char *const *ops = optab_names();
    for (int i = 0; i < LG_OP_COUNT; i++)
        cands[k++] = ops[i];
    for (int i = 0; i < w->mod->nnetworks && k < LG_OP_COUNT + 256; i++)
        cands[k++] = w->mod->networks[i]->name;
    for (int m = 0; m < w->mod->nimports; m++) {
        Module *im = w->mod->imports[m].module;
        for (int i = 0; im && i < im->nnetworks && k < LG_OP_COUNT + 512; i++)
            cands[k++] = im->networks[i]->name;
    }
    diag_suggest(w->ctx, e->str_loc, f, cands, k);
}

static void walk_expr(Walk *w, Expr *e) {
    if (++w->depth > 2000) {
        if (w->depth == 2001)
            diag_error(w->ctx, e->loc, "expression nested more than 2000 levels deep");
        w->depth--;
        return;
    }
    switch (e->kind) {
    case EX_NAME:
        if (walk_read(w, e->str))
            break;
        if (ast_find_hparam(w->mod, e->str)) {
            ast_find_hparam(w->mod, e->str)->used = true;
            break;
        }
        if (w->step && strcmp(e->str, w->step->batch) == 0)
            break;
        /* A bare name may be a stage (x |> relu) or an op used as a value. */
        if (optab_find(e->str) || ast_find_network(w->mod, e->str))
            break;
        walk_unknown(w, e);
        break;
    case EX_FIELD:
        if (w->step && e->lhs->kind == EX_NAME && strcmp(e->lhs->str, w->step->batch) == 0)
            break; /* b.image: fields checked by shapes */
        walk_expr(w, e->lhs);
        break;
    case EX_CALL:
        walk_callee(w, e);
        for (int i = 0; i < e->nargs; i++) {
            Expr *v = e->args[i].value;
            /* keyword values that are bare names may be enum literals (mode: max) */
            if (e->args[i].key && v->kind == EX_NAME && !walk_read(w, v->str) && !ast_find_hparam(w->mod, v->str))
                continue;
            if (e->args[i].key && v->kind == EX_NAME && ast_find_hparam(w->mod, v->str))
                ast_find_hparam(w->mod, v->str)->used = true;
            if (!(e->args[i].key && v->kind == EX_NAME))
                walk_expr(w, v);
        }
        break;
    case EX_PIPE: {
        /* Long pipelines: iterate down the left spine. */
        Expr *p = e;
        int n = 0;
        while (p->kind == EX_PIPE)
            p = p->lhs, n++;
        walk_expr(w, p);
        Expr **st = arena_array(&w->ctx->arena, (size_t)n, sizeof *st);
        int k = n;
        for (p = e; p->kind == EX_PIPE; p = p->lhs)
            st[--k] = p->rhs;
        for (k = 0; k < n; k++) {
            if (st[k]->kind == EX_NAME) {
                Expr call = *st[k];
                call.kind = EX_CALL;
                call.str_loc = st[k]->loc;
                walk_callee(w, &call);
            } else {
                walk_expr(w, st[k]);
            }
        }
        break;
    }
    case EX_TUPLE:
        for (int i = 0; i < e->nitems; i++)
            walk_expr(w, e->items[i]);
        break;
    case EX_UNARY: walk_expr(w, e->lhs); break;
    case EX_BINARY:
        if ((e->op == OPR_EQ || e->op == OPR_NE) && (walk_is_enum(w, e->lhs) || walk_is_enum(w, e->rhs))) {
            walk_expr(w, walk_is_enum(w, e->lhs) ? e->lhs : e->rhs);
            Expr *other = walk_is_enum(w, e->lhs) ? e->rhs : e->lhs;
            if (other->kind != EX_NAME)
                walk_expr(w, other);
            break;
        }
        walk_expr(w, e->lhs);
        walk_expr(w, e->rhs);
        break;
    case EX_RANGE:
    case EX_INDEX:
        walk_expr(w, e->lhs);
        walk_expr(w, e->rhs);
        break;
    case EX_COND:
        walk_expr(w, e->cond);
        walk_expr(w, e->lhs);
        walk_expr(w, e->rhs);
        break;
    default: break;
    }
    w->depth--;
}

static void walk_body(Walk *w, Stmt **body, int n, int depth);

static void walk_stmt(Walk *w, Stmt *s, int depth) {
    switch (s->kind) {
    case ST_ASSIGN:
        walk_expr(w, s->value);
        for (int i = 0; i < s->nnames; i++)
            walk_def(w, s->names[i], s->name_locs[i], true);
        break;
    case ST_LOG:
        if (!w->step)
            diag_error(w->ctx, s->loc, "'log' belongs in a step, not in a network or block");
        walk_expr(w, s->value);
        break;
    case ST_RETURN:
        for (int i = 0; i < s->nvalues; i++)
            walk_expr(w, s->values[i]);
        break;
    case ST_FOR: {
        walk_expr(w, s->value);
        walk_def(w, s->var, s->var_loc, false);
        w->reads[w->defs.n - 1]++; /* loop variables need not be used */
        walk_body(w, s->body, s->nbody, depth + 1);
        /* A value assigned in the body is read by the next iteration: count
         * reads of names assigned inside a loop from inside it too. */
        break;
    }
    case ST_IF:
        walk_expr(w, s->value);
        walk_body(w, s->body, s->nbody, depth + 1);
        walk_body(w, s->orelse, s->norelse, depth + 1);
        break;
    case ST_EXPR:
        if (s->value->kind == EX_STRING)
            break;
        walk_expr(w, s->value);
        if (w->step || s->value->kind != EX_CALL)
            diag_warning(w->ctx, s->loc, "the value of this expression is not used");
        break;
    }
}

static void walk_body(Walk *w, Stmt **body, int n, int depth) {
    if (depth > 200) {
        if (n > 0)
            diag_error(w->ctx, body[0]->loc, "statements nested more than 200 levels deep");
        return;
    }
    for (int i = 0; i < n; i++)
        walk_stmt(w, body[i], depth);
}

static bool assigned_in(Stmt **body, int n, const char *name, int depth) {
    for (int i = 0; i < n && depth < 200; i++) {
        Stmt *s = body[i];
        for (int k = 0; k < s->nnames && s->kind == ST_ASSIGN; k++)
            if (strcmp(s->names[k], name) == 0)
                return true;
        if ((s->kind == ST_FOR || s->kind == ST_IF) &&
            (assigned_in(s->body, s->nbody, name, depth + 1) || assigned_in(s->orelse, s->norelse, name, depth + 1)))
            return true;
    }
    return false;
}

static bool in_loop(Stmt **body, int n, const char *name, Loc loc, bool inside, int depth) {
    for (int i = 0; i < n && depth < 200; i++) {
        Stmt *s = body[i];
        if (s->kind == ST_ASSIGN && inside)
            for (int k = 0; k < s->nnames; k++)
                if (strcmp(s->names[k], name) == 0 && s->name_locs[k].begin == loc.begin)
                    return true;
        if (s->kind == ST_FOR && in_loop(s->body, s->nbody, name, loc, true, depth + 1))
            return true;
        if (s->kind == ST_IF && (in_loop(s->body, s->nbody, name, loc, inside, depth + 1) ||
                                 in_loop(s->orelse, s->norelse, name, loc, inside, depth + 1)))
            return true;
    }
    return false;
}

static void walk_unused(Walk *w, Stmt **body, int n, int first_local) {
    for (int i = first_local; i < w->defs.n; i++) {
        if (def_is_read(w, i) || !w->is_tensor[i])
            continue;
        const char *name = w->defs.names[i];
        /* Reassigned later in the same scope, or assigned in a loop (read by
         * the next iteration): not unused. */
        if (in_loop(body, n, name, w->defs.locs[i], false, 0))
            continue;
        if (name[0] == '_')
            continue;
        diag_warning(w->ctx, w->defs.locs[i], "value '%s' is never used", name);
    }
    (void)assigned_in;
}

static void sema_network(Ctx *ctx, Module *mod, Network *n) {
    Walk w = {0};
    w.ctx = ctx;
    w.mod = mod;
    w.net = n;
    w.body = n->body;
    w.nbody = n->nbody;
    int ntensor = 0;
    for (int i = 0; i < n->nparams; i++) {
        BlockParam *p = &n->params[i];
        for (int j = 0; j < i; j++)
            if (strcmp(n->params[j].name, p->name) == 0)
                diag_error(ctx, p->loc, "parameter '%s' is declared twice", p->name);
        if (p->type == TY_TENSOR) {
            ntensor++;
            if (!n->is_block && !p->tensor)
                diag_error(ctx, p->loc, "an input of network '%s' needs a type, e.g. '%s: f32[1, 28, 28]'", n->name,
                           p->name);
        }
        if (p->type == TY_TENSOR && p->dflt)
            diag_error(ctx, p->dflt->loc, "a tensor input takes no default");
        walk_def(&w, p->name, p->loc, false);
        if (p->type == TY_TENSOR)
            w.is_tensor[w.defs.n - 1] = true;
    }
    if (ntensor == 0)
        diag_error(ctx, n->loc, "%s '%s' has no tensor input", n->is_block ? "block" : "network", n->name);
    walk_body(&w, n->body, n->nbody, 0);
    bool has_return = false;
    for (int i = 0; i < n->nbody; i++)
        if (n->body[i]->kind == ST_RETURN) {
            has_return = true;
            if (i + 1 < n->nbody)
                diag_warning(ctx, n->body[i + 1]->loc, "statements after 'return' are never run");
        }
    if (!has_return)
        diag_error(ctx, n->loc, "%s '%s' has no 'return'", n->is_block ? "block" : "network", n->name);
    /* Inputs that are never read get a warning too. */
    for (int i = 0; i < w.defs.n; i++)
        if (i < n->nparams && !def_is_read(&w, i) && n->params[i].type == TY_TENSOR)
            diag_warning(ctx, w.defs.locs[i], "input '%s' is never used", w.defs.names[i]);
    walk_unused(&w, n->body, n->nbody, n->nparams);
}

static const char *const step_names[] = {"train", "validate", "test", "predict"};

static void sema_step(Ctx *ctx, Module *mod, Step *s) {
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(step_names[i], s->name) == 0)
            k = i;
    if (k < 0) {
        diag_error(ctx, s->loc, "unknown step '%s'; steps are train, validate, test and predict", s->name);
        diag_suggest(ctx, s->loc, s->name, step_names, 4);
        return;
    }
    s->kind = (StepKind)k;
    for (int i = 0; i < mod->nsteps && mod->steps[i] != s; i++)
        if (strcmp(mod->steps[i]->name, s->name) == 0) {
            diag_error(ctx, s->loc, "step '%s' is defined twice", s->name);
            diag_note(ctx, mod->steps[i]->loc, "first defined here");
        }
    Walk w = {0};
    w.ctx = ctx;
    w.mod = mod;
    w.step = s;
    w.body = s->body;
    w.nbody = s->nbody;
    walk_body(&w, s->body, s->nbody, 0);
    int nret = 0;
    for (int i = 0; i < s->nbody; i++)
        if (s->body[i]->kind == ST_RETURN) {
            nret++;
            if (s->kind == STEP_TRAIN && s->body[i]->nvalues != 1)
                diag_error(ctx, s->body[i]->loc, "the train step returns one value, the loss");
        }
    if (s->kind == STEP_TRAIN && nret == 0)
        diag_error(ctx, s->loc, "step 'train' must return the loss ('return loss')");
    if ((s->kind == STEP_VALIDATE || s->kind == STEP_TEST) && nret)
        diag_warning(ctx, s->loc, "step '%s' returns a value that nothing reads; use 'log name = value'", s->name);
    walk_unused(&w, s->body, s->nbody, 0);
}

/* ---- optimizer, scheduler, trainer ------------------------------------------------------- */

#define OPT_COMMON {"lr", KT_FLOAT, true, false, NULL, 0, 1e6}, {"weight_decay", KT_FLOAT, false, false, NULL, 0, 1e6}
static const KeySpec sgd_keys[] = {OPT_COMMON, {"momentum", KT_FLOAT, false, false, NULL, 0, 1},
                                   {"dampening", KT_FLOAT, false, false, NULL, 0, 1},
                                   {"nesterov", KT_BOOL, false, false, NULL, 1, 0}};
static const KeySpec adam_keys[] = {OPT_COMMON, {"betas", KT_FLOATS, false, false, NULL, 0, 1},
                                    {"eps", KT_FLOAT, false, false, NULL, 0, 1},
                                    {"amsgrad", KT_BOOL, false, false, NULL, 1, 0}};
static const KeySpec rmsprop_keys[] = {OPT_COMMON, {"alpha", KT_FLOAT, false, false, NULL, 0, 1},
                                       {"eps", KT_FLOAT, false, false, NULL, 0, 1},
                                       {"momentum", KT_FLOAT, false, false, NULL, 0, 1},
                                       {"centered", KT_BOOL, false, false, NULL, 1, 0}};

static const KeySpec *optim_keys(OptimKind k, int *n) {
    switch (k) {
    case OPTIM_SGD: *n = 5; return sgd_keys;
    case OPTIM_ADAM:
    case OPTIM_ADAMW: *n = 5; return adam_keys;
    case OPTIM_RMSPROP: *n = 6; return rmsprop_keys;
    default: *n = 0; return NULL;
    }
}

static EvalScope settings_scope(Module *mod) {
    EvalScope sc = global_scope(mod);
    sc.allow_trainer = true;
    return sc;
}

static void sema_optimizer(Ctx *ctx, Module *mod, Optimizer *o) {
    static const char *const names[] = {"sgd", "adam", "adamw", "rmsprop"};
    o->kind = OPTIM_NONE;
    for (int i = 0; i < 4; i++)
        if (strcmp(names[i], o->name) == 0)
            o->kind = (OptimKind)i;
    if (o->kind == OPTIM_NONE) {
        diag_error(ctx, o->loc, "unknown optimizer '%s'", o->name);
        diag_suggest(ctx, o->loc, o->name, names, 4);
        return;
    }
    int nk;
    const KeySpec *keys = optim_keys(o->kind, &nk);
    Expr *vals[8];
    CValue cv[8];
    EvalScope sc = settings_scope(mod);
    char *what = arena_printf(A, "optimizer '%s'", o->name);
    eval_args(ctx, &sc, what, o->loc, o->args, o->nargs, keys, nk, vals, cv);
    for (int g = 0; g < o->ngroups; g++) {
        OptGroup *grp = &o->groups[g];
        for (int j = 0; j < g; j++)
            if (strcmp(o->groups[j].name, grp->name) == 0)
                diag_error(ctx, grp->loc, "parameter group '%s' is defined twice", grp->name);
        KeySpec gkeys[9];
        gkeys[0] = (KeySpec){"match", KT_STRING, true, false, NULL, 1, 0};
        for (int i = 0; i < nk; i++) {
            gkeys[i + 1] = keys[i];
            gkeys[i + 1].required = false;
        }
        Expr *gv[9];
        CValue gc[9];
        char *gwhat = arena_printf(A, "parameter group '%s'", grp->name);
        eval_args(ctx, &sc, gwhat, grp->loc, grp->args, grp->nargs, gkeys, nk + 1, gv, gc);
        if (gc[0].type == TY_STRING) {
            grp->match = gc[0].s;
            if (!grp->match[0])
                diag_error(ctx, gv[0]->loc, "an empty pattern matches no parameter");
        }
    }
}

typedef struct SchedSpec {
    SchedKind kind;
    const char *name;
    KeySpec keys[6];
    int nkeys;
} SchedSpec;

#define PHASE_KEYS {"steps", KT_INT, false, false, NULL, 1, 1e12}, {"epochs", KT_INT, false, false, NULL, 1, 1e9}, \
                   {"interval", KT_ENUM, false, false, "step|epoch", 1, 0}
static const SchedSpec sched_specs[] = {
    {SCHED_CONSTANT, "constant", {PHASE_KEYS, {"factor", KT_FLOAT, false, true, NULL, 0, 1e6}}, 4},
    {SCHED_STEP, "step", {PHASE_KEYS, {"step_size", KT_INT, true, true, NULL, 1, 1e12},
                          {"gamma", KT_FLOAT, false, false, NULL, 0, 1e6}}, 5},
    {SCHED_MULTISTEP, "multistep", {PHASE_KEYS, {"milestones", KT_INTS, true, true, NULL, 0, 1e12},
                                    {"gamma", KT_FLOAT, false, false, NULL, 0, 1e6}}, 5},
    {SCHED_EXPONENTIAL, "exponential", {PHASE_KEYS, {"gamma", KT_FLOAT, true, true, NULL, 0, 1e6}}, 4},
    {SCHED_COSINE, "cosine", {PHASE_KEYS, {"t_max", KT_INT, true, true, NULL, 1, 1e12},
                              {"eta_min", KT_FLOAT, false, false, NULL, 0, 1e6}}, 5},
    {SCHED_LINEAR, "linear", {PHASE_KEYS, {"start_factor", KT_FLOAT, false, false, NULL, 0, 1e6},
                              {"end_factor", KT_FLOAT, false, false, NULL, 0, 1e6},
                              {"total_iters", KT_INT, false, false, NULL, 1, 1e12}}, 6},
    {SCHED_ONECYCLE, "onecycle", {PHASE_KEYS, {"max_lr", KT_FLOAT, true, true, NULL, 0, 1e6},
                                  {"pct_start", KT_FLOAT, false, false, NULL, 0, 1},
                                  {"total_steps", KT_INT, false, false, NULL, 1, 1e12}}, 6},
    {SCHED_PLATEAU, "plateau", {{"monitor", KT_STRING, true, false, NULL, 1, 0},
                                {"mode", KT_ENUM, false, false, "min|max", 1, 0},
                                {"factor", KT_FLOAT, false, false, NULL, 0, 1},
                                {"patience", KT_INT, false, false, NULL, 0, 1e9},
                                {"min_lr", KT_FLOAT, false, false, NULL, 0, 1e6}}, 5},
    {SCHED_WARMUP, "warmup", {PHASE_KEYS, {"start_factor", KT_FLOAT, false, false, NULL, 0, 1}}, 4},
};
#define NSCHED ((int)(sizeof sched_specs / sizeof *sched_specs))

static void sema_scheduler(Ctx *ctx, Module *mod, Scheduler *s) {
    for (int i = 0; i < s->nphases; i++) {
        SchedPhase *p = &s->phases[i];
        const SchedSpec *spec = NULL;
        for (int k = 0; k < NSCHED; k++)
            if (strcmp(sched_specs[k].name, p->name) == 0)
                spec = &sched_specs[k];
        if (!spec) {
            const char *cands[NSCHED];
            for (int k = 0; k < NSCHED; k++)
                cands[k] = sched_specs[k].name;
            diag_error(ctx, p->loc, "unknown scheduler '%s'", p->name);
            diag_suggest(ctx, p->loc, p->name, cands, NSCHED);
            continue;
        }
        p->kind = spec->kind;
        Expr *vals[6];
        CValue cv[6];
        EvalScope sc = settings_scope(mod);
        char *what = arena_printf(A, "scheduler '%s'", p->name);
        if (eval_args(ctx, &sc, what, p->loc, p->args, p->nargs, spec->keys, spec->nkeys, vals, cv))
            continue;
        if (spec->kind != SCHED_PLATEAU) {
            bool has_len = vals[0] || vals[1];
            if (vals[0] && vals[1])
                diag_error(ctx, vals[1]->loc, "a phase lasts 'steps' or 'epochs', not both");
            if (i + 1 < s->nphases && !has_len)
                diag_error(ctx, p->loc, "scheduler phase '%s' is followed by another, so it needs a length "
                                        "('steps:' or 'epochs:')", p->name);
            if (cv[2].type)
                s->interval = cv[2].s;
        } else if (s->nphases > 1) {
            diag_error(ctx, p->loc, "'plateau' cannot be combined with other phases");
        }
    }
}

static const KeySpec trainer_keys[] = {
    {"max_epochs", KT_INT, false, false, NULL, -1, 1e9},
    {"min_epochs", KT_INT, false, false, NULL, 0, 1e9},
    {"max_steps", KT_INT, false, false, NULL, -1, 1e12},
    {"min_steps", KT_INT, false, false, NULL, 0, 1e12},
    {"gradient_clip_val", KT_FLOAT, false, false, NULL, 0, 1e12},
    {"gradient_clip_algorithm", KT_ENUM, false, false, NULL, 1, 0},
    {"accumulate_grad_batches", KT_INT, false, false, NULL, 1, 1e6},
    {"precision", KT_INT, false, false, NULL, 16, 64},
    {"check_val_every_n_epoch", KT_INT, false, false, NULL, 1, 1e9},
    {"val_check_interval", KT_FLOAT, false, false, NULL, 0, 1e12},
    {"log_every_n_steps", KT_INT, false, false, NULL, 1, 1e9},
    {"limit_train_batches", KT_FLOAT, false, false, NULL, 0, 1e12},
    {"limit_val_batches", KT_FLOAT, false, false, NULL, 0, 1e12},
    {"limit_test_batches", KT_FLOAT, false, false, NULL, 0, 1e12},
    {"limit_predict_batches", KT_FLOAT, false, false, NULL, 0, 1e12},
    {"num_sanity_val_steps", KT_INT, false, false, NULL, -1, 1e9},
    {"seed", KT_INT, false, false, NULL, 0, 1e18},
    {"deterministic", KT_BOOL, false, false, NULL, 1, 0},
    {"enable_progress_bar", KT_BOOL, false, false, NULL, 1, 0},
    {"enable_checkpointing", KT_BOOL, false, false, NULL, 1, 0},
    {"default_root_dir", KT_STRING, false, false, NULL, 1, 0},
    {"fast_dev_run", KT_INT, false, false, NULL, 0, 1e9},
    {"overfit_batches", KT_FLOAT, false, false, NULL, 0, 1e12},
    {"accelerator", KT_ENUM, false, false, "cpu|cuda|gpu|auto", 1, 0},
    {"devices", KT_INT, false, false, NULL, 1, 4096},
    {"num_nodes", KT_INT, false, false, NULL, 1, 65536},
    {"strategy", KT_ENUM, false, false, "auto|ddp", 1, 0},
};
#define NTRAINER ((int)(sizeof trainer_keys / sizeof *trainer_keys))

static const KeySpec checkpoint_keys[] = {
    {"monitor", KT_STRING, false, false, NULL, 1, 0},
    {"mode", KT_ENUM, false, false, "min|max", 1, 0},
    {"save_top_k", KT_INT, false, false, NULL, -1, 1e6},
    {"save_last", KT_BOOL, false, false, NULL, 1, 0},
    {"every_n_epochs", KT_INT, false, false, NULL, 0, 1e9},
    {"every_n_train_steps", KT_INT, false, false, NULL, 0, 1e12},
    {"filename", KT_STRING, false, false, NULL, 1, 0},
    {"dirpath", KT_STRING, false, false, NULL, 1, 0},
    {"save_weights_only", KT_BOOL, false, false, NULL, 1, 0},
};
static const KeySpec early_keys[] = {
    {"monitor", KT_STRING, true, false, NULL, 1, 0},
    {"mode", KT_ENUM, false, false, "min|max", 1, 0},
    {"patience", KT_INT, false, false, NULL, 0, 1e9},
    {"min_delta", KT_FLOAT, false, false, NULL, 0, 1e12},
    {"check_finite", KT_BOOL, false, false, NULL, 1, 0},
    {"stopping_threshold", KT_FLOAT, false, false, NULL, 1, 0},
    {"divergence_threshold", KT_FLOAT, false, false, NULL, 1, 0},
};
static const KeySpec lrmon_keys[] = {
    {"logging_interval", KT_ENUM, false, false, "step|epoch", 1, 0},
};

/* Names logged by the steps, for checking `monitor:` (train_loss, val_acc...). */
static void logged_names(Module *mod, const char **out, int *n, int max) {
    for (int i = 0; i < mod->nsteps; i++)
        for (int k = 0; k < mod->steps[i]->nbody && *n < max; k++)
            if (mod->steps[i]->body[k]->kind == ST_LOG)
                out[(*n)++] = mod->steps[i]->body[k]->names[0];
}

static void check_monitor(Ctx *ctx, Module *mod, Expr *e, const CValue *v) {
    if (!e || v->type != TY_STRING)
        return;
    const char *names[512];
    int n = 0;
    logged_names(mod, names, &n, 512);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], v->s) == 0)
            return;
    diag_error(ctx, e->loc, "monitor \"%s\" is not logged by any step", v->s);
    if (!diag_suggest(ctx, e->loc, v->s, names, n) && n == 0)
        diag_note(ctx, e->loc, "log it in a step: 'log %s = ...'", v->s);
}

static void sema_trainer(Ctx *ctx, Module *mod, Trainer *t) {
    KeySpec keys[NTRAINER];
    memcpy(keys, trainer_keys, sizeof keys);
    keys[5].choices = "norm|value";
    for (int i = 0; i < t->nsettings; i++) {
        Setting *s = &t->settings[i];
        for (int j = 0; j < i; j++)
            if (strcmp(t->settings[j].key, s->key) == 0) {
                diag_error(ctx, s->loc, "trainer setting '%s' is set twice", s->key);
                diag_note(ctx, t->settings[j].loc, "first set here");
            }
        Arg a = {s->key, s->loc, s->value};
        Expr *vals[NTRAINER];
        CValue cv[NTRAINER];
        EvalScope sc = global_scope(mod);
        eval_args(ctx, &sc, "the trainer", s->loc, &a, 1, keys, NTRAINER, vals, cv);
    }
    for (int i = 0; i < t->ncallbacks; i++) {
        Callback *cb = &t->callbacks[i];
        const KeySpec *ks;
        int nk;
        if (strcmp(cb->name, "checkpoint") == 0)
            ks = checkpoint_keys, nk = (int)(sizeof checkpoint_keys / sizeof *checkpoint_keys);
        else if (strcmp(cb->name, "early_stopping") == 0)
            ks = early_keys, nk = (int)(sizeof early_keys / sizeof *early_keys);
        else if (strcmp(cb->name, "lr_monitor") == 0)
            ks = lrmon_keys, nk = 1;
        else {
            static const char *const cbs[] = {"checkpoint", "early_stopping", "lr_monitor"};
            diag_error(ctx, cb->loc, "unknown callback '%s'", cb->name);
            diag_suggest(ctx, cb->loc, cb->name, cbs, 3);
            continue;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(t->callbacks[j].name, cb->name) == 0 && strcmp(cb->name, "checkpoint") != 0)
                diag_error(ctx, cb->loc, "callback '%s' is given twice", cb->name);
        Expr *vals[9];
        CValue cv[9];
        EvalScope sc = global_scope(mod);
        char *what = arena_printf(A, "callback '%s'", cb->name);
        eval_args(ctx, &sc, what, cb->loc, cb->args, cb->nargs, ks, nk, vals, cv);
        if (ks != lrmon_keys)
            check_monitor(ctx, mod, vals[0], &cv[0]);
    }
}

/* ---- the module ------------------------------------------------------------------------- */

static void check_network_names(Ctx *ctx, Module *mod) {
    for (int i = 0; i < mod->nnetworks; i++) {
        Network *n = mod->networks[i];
        for (int j = 0; j < i; j++)
            if (strcmp(mod->networks[j]->name, n->name) == 0) {
                diag_error(ctx, n->loc, "'%s' is defined twice", n->name);
                diag_note(ctx, mod->networks[j]->loc, "first defined here");
            }
        if (optab_find(n->name))
            diag_error(ctx, n->loc, "'%s' is the name of a built-in op; choose another name", n->name);
        for (int m = 0; m < mod->nimports; m++) {
            Module *im = mod->imports[m].module;
            Network *o = im ? ast_find_network(im, n->name) : NULL;
            if (o) {
                diag_error(ctx, n->loc, "'%s' is also defined in imported file '%s'", n->name, mod->imports[m].path);
                diag_note(ctx, o->loc, "defined there");
            }
        }
    }
    for (int i = 0; i < mod->ndatasets; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(mod->datasets[i]->name, mod->datasets[j]->name) == 0) {
                diag_error(ctx, mod->datasets[i]->loc, "dataset '%s' is defined twice", mod->datasets[i]->name);
                diag_note(ctx, mod->datasets[j]->loc, "first defined here");
            }
}

/* ---- call cycles --------------------------------------------------------------------
 * Blocks and networks may call each other but not in a cycle (the graph
 * would be infinite). A depth-first search over the call graph finds one
 * and reports it with the path.
 */

typedef struct CallEdge {
    Network *callee;
    Loc loc;
} CallEdge;

static void collect_calls(Ctx *ctx, Module *mod, Expr *e, PtrVec *out, int depth) {
    if (!e || depth > 2000)
        return;
    if (e->kind == EX_CALL || (e->kind == EX_NAME && depth == -1)) {
        Network *n = ast_find_network(mod, e->str);
        if (n) {
            CallEdge *c = arena_alloc(A, sizeof *c);
            c->callee = n;
            c->loc = e->str_loc;
            arena_vec_push(A, out, c);
        }
        for (int i = 0; i < e->nargs; i++)
            collect_calls(ctx, mod, e->args[i].value, out, depth + 1);
        return;
    }
    if (e->kind == EX_PIPE) {
        /* iterate down the spine; each stage is a call or a bare name */
        for (Expr *p = e; ; p = p->lhs) {
            if (p->kind != EX_PIPE) {
                collect_calls(ctx, mod, p, out, depth + 1);
                break;
            }
            Expr *st = p->rhs;
            if (st->kind == EX_NAME) {
                Network *n = ast_find_network(mod, st->str);
                if (n) {
                    CallEdge *c = arena_alloc(A, sizeof *c);
                    c->callee = n;
                    c->loc = st->loc;
                    arena_vec_push(A, out, c);
                }
            } else {
                collect_calls(ctx, mod, st, out, depth + 1);
            }
        }
        return;
    }
    collect_calls(ctx, mod, e->lhs, out, depth + 1);
    collect_calls(ctx, mod, e->rhs, out, depth + 1);
    collect_calls(ctx, mod, e->cond, out, depth + 1);
    for (int i = 0; i < e->nitems; i++)
        collect_calls(ctx, mod, e->items[i], out, depth + 1);
}

static void collect_body(Ctx *ctx, Module *mod, Stmt **body, int n, PtrVec *out, int depth) {
    for (int i = 0; i < n && depth < 200; i++) {
        Stmt *s = body[i];
        collect_calls(ctx, mod, s->value, out, 0);
        for (int k = 0; k < s->nvalues; k++)
            collect_calls(ctx, mod, s->values[k], out, 0);
        collect_body(ctx, mod, s->body, s->nbody, out, depth + 1);
        collect_body(ctx, mod, s->orelse, s->norelse, out, depth + 1);
    }
}

/* state: 0 unvisited, 1 on the stack, 2 done (kept in Network.used's
 * neighbour field would be cleaner; a small side table is enough). */
static bool find_cycle(Ctx *ctx, Network *n, Network **stack, Loc *locs, int depth, Network **done, int *ndone) {
    for (int i = 0; i < *ndone; i++)
        if (done[i] == n)
            return false;
    for (int i = 0; i < depth; i++)
        if (stack[i] == n) {
            char path[1024];
            size_t len = 0;
            for (int k = i; k < depth && len < sizeof path - 64; k++)
                len += (size_t)snprintf(path + len, sizeof path - len, "%s -> ", stack[k]->name);
            snprintf(path + len, sizeof path - len, "%s", n->name);
            diag_error(ctx, locs[depth - 1], "'%s' calls itself through a cycle: %s", n->name, path);
            return true;
        }
    if (depth >= 64)
        return false;
    stack[depth] = n;
    PtrVec calls = {0};
    collect_body(ctx, n->module, n->body, n->nbody, &calls, 0);
    for (int i = 0; i < calls.len; i++) {
        CallEdge *c = calls.items[i];
        locs[depth] = c->loc;
        if (find_cycle(ctx, c->callee, stack, locs, depth + 1, done, ndone))
            return true;
    }
    if (*ndone < 4096)
        done[(*ndone)++] = n;
    return false;
}

static void check_cycles(Ctx *ctx, Module *mod) {
    Network *stack[64];
    Loc locs[64];
    Network **done = arena_array(A, 4096, sizeof *done);
    int ndone = 0;
    for (int i = 0; i < mod->nnetworks; i++)
        if (find_cycle(ctx, mod->networks[i], stack, locs, 0, done, &ndone))
            return;
}

static int sema_module(Ctx *ctx, Module *mod, int depth);

int sema_check(Ctx *ctx, Module *mod) {
    return sema_module(ctx, mod, 0);
}

static int sema_module(Ctx *ctx, Module *mod, int depth) {
    int before = ctx->nerrors;
    if (depth > 32)
        return 0;
    /* Imported files first (their blocks are checked where they are written). */
    for (int i = 0; i < mod->nimports; i++) {
        Module *im = mod->imports[i].module;
        if (im && !im->checked) {
            im->checked = true;
            sema_module(ctx, im, depth + 1);
        }
    }
    /* An imported file lends its blocks and networks (with its own hparams);
     * its datasets, steps and settings are its own business when it is
     * checked as a model itself. */
    /* A file of blocks and networks alone (no model line, no data, steps or
     * settings) is a library: `lgen check` checks what it defines. */
    bool model_parts = mod->ndatasets || mod->data || mod->nsteps || mod->optimizer || mod->scheduler || mod->trainer;
    bool library = mod->is_import || (!mod->name && !model_parts);
    if (!library && !mod->name)
        diag_error(ctx, (Loc){mod->file, 0, 0}, "missing 'model NAME \"doc\"' line");
    sema_hparams(ctx, mod);
    check_network_names(ctx, mod);
    check_cycles(ctx, mod);
    if (library) {
        for (int i = 0; i < mod->nnetworks; i++)
            sema_network(ctx, mod, mod->networks[i]);
        return ctx->nerrors - before;
    }
    for (int i = 0; i < mod->ndatasets; i++)
        sema_dataset(ctx, mod, mod->datasets[i]);
    if (mod->trainer)
        sema_trainer(ctx, mod, mod->trainer);
    if (mod->data)
        sema_data(ctx, mod);
    for (int i = 0; i < mod->nnetworks; i++)
        sema_network(ctx, mod, mod->networks[i]);
    for (int i = 0; i < mod->nsteps; i++)
        sema_step(ctx, mod, mod->steps[i]);
    if (!library) {
        if (!mod->data)
            diag_error(ctx, mod->name ? mod->name_loc : (Loc){mod->file, 0, 0}, "model '%s' has no data block",
                       mod->name ? mod->name : "?");
        bool has_train = false;
        for (int i = 0; i < mod->nsteps; i++)
            has_train |= strcmp(mod->steps[i]->name, "train") == 0;
        if (!has_train)
            diag_error(ctx, mod->name_loc, "model '%s' has no 'step train(b) { ... }'", mod->name ? mod->name : "?");
        if (!mod->optimizer)
            diag_error(ctx, mod->name_loc, "model '%s' has no optimizer", mod->name ? mod->name : "?");
    }
    if (mod->optimizer)
        sema_optimizer(ctx, mod, mod->optimizer);
    if (mod->scheduler)
        sema_scheduler(ctx, mod, mod->scheduler);
    if (!library && ctx->nerrors == before)
        for (int i = 0; i < mod->nhparams; i++)
            if (!mod->hparams[i].used)
                diag_warning(ctx, mod->hparams[i].loc, "hparam '%s' is never used", mod->hparams[i].name);
    return ctx->nerrors - before;
}
