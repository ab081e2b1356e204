/* eval.c — compile-time values of expressions, and argument tables (eval.h).
 *
 * Integers are 64-bit with overflow checked; an int meets a float as a
 * float. Recursion follows the expression's nesting and stops with a
 * diagnostic beyond EVAL_MAX_DEPTH, so a pathological input cannot overflow
 * the stack.
 */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_MAX_DEPTH 2000

CValue cv_int(int64_t v) { return (CValue){.type = TY_INT, .i = v}; }
CValue cv_float(double v) { return (CValue){.type = TY_FLOAT, .f = v}; }
CValue cv_bool(bool v) { return (CValue){.type = TY_BOOL, .i = v}; }
CValue cv_string(const char *s) { return (CValue){.type = TY_STRING, .s = s}; }

bool cv_is_number(const CValue *v) { return v->type == TY_INT || v->type == TY_FLOAT; }
double cv_number(const CValue *v) { return v->type == TY_INT ? (double)v->i : v->f; }

static void cv_print(char *buf, size_t size, const CValue *v) {
    switch (v->type) {
    case TY_INT: snprintf(buf, size, "%lld", (long long)v->i); break;
    case TY_FLOAT: {
        if (fabs(v->f) < 1e15 && v->f == (double)(int64_t)v->f) {
            snprintf(buf, size, "%.1f", v->f);
            break;
        }
        snprintf(buf, size, "%.17g", v->f);
        /* shortest form that reads back the same */
        for (int p = 1; p <= 17; p++) {
            char t[64];
            snprintf(t, sizeof t, "%.*g", p, v->f);
            if (strtod(t, NULL) == v->f) {
                snprintf(buf, size, "%s%s", t, strpbrk(t, ".eEni") ? "" : ".0");
                break;
            }
        }
        break;
    }
    case TY_BOOL: snprintf(buf, size, "%s", v->i ? "true" : "false"); break;
    case TY_STRING: snprintf(buf, size, "\"%s\"", v->s); break;
    case TY_ENUM: snprintf(buf, size, "%s", v->s); break;
    case TY_TUPLE: {
        size_t n = 0;
        n += (size_t)snprintf(buf + n, size - n, "(");
        for (int i = 0; i < v->nitems && n < size - 1; i++) {
            char t[128];
            cv_print(t, sizeof t, &v->items[i]);
            n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", t);
        }
        if (n < size - 1)
            snprintf(buf + n, size - n, ")");
        break;
    }
    default: snprintf(buf, size, "?"); break;
    }
}

const char *cv_str(Ctx *ctx, const CValue *v) {
    char buf[512];
    cv_print(buf, sizeof buf, v);
    return arena_strdup(&ctx->arena, buf);
}

static const char *type_desc(const CValue *v) {
    switch (v->type) {
    case TY_INT: return "an int";
    case TY_FLOAT: return "a float";
    case TY_BOOL: return "a bool";
    case TY_STRING: return "a string";
    case TY_ENUM: return "a name";
    case TY_TUPLE: return "a tuple";
    case TY_TENSOR: return "a tensor";
    default: return "nothing";
    }
}

typedef struct Ev {
    Ctx *ctx;
    EvalScope *scope;
    bool quiet;
    int depth;
    bool deep_reported;
    bool enum_ok;   /* a bare unknown name is an enum literal here */
} Ev;

static CValue none(void) { return (CValue){0}; }

static void err(Ev *ev, Loc loc, const char *fmt, const char *a, const char *b) {
    if (ev->quiet)
        return;
    diag_error(ev->ctx, loc, fmt, a, b);
}

static bool lookup_global(EvalScope *sc, Expr *e, CValue *out) {
    Module *mod = sc->mod;
    if (!mod)
        return false;
    Hparam *h = ast_find_hparam(mod, e->str);
    if (h) {
        h->used = true;
        if (sc->mark_static)
            h->is_static = true;
        e->ref = REF_HPARAM;
        e->target = h;
        *out = h->value;
        return true;
    }
    if (sc->allow_trainer && mod->trainer) {
        for (int i = 0; i < mod->trainer->nsettings; i++) {
            Setting *s = &mod->trainer->settings[i];
            if (strcmp(s->key, e->str) == 0) {
                e->ref = REF_TRAINER;
                e->target = s;
                *out = s->value->cv.type ? s->value->cv : cv_int(0);
                return true;
            }
        }
        /* Trainer settings with Lightning's defaults may be named without
         * being set: max_epochs is 1000 in Lightning when unset. The last
         * two are known only when the run starts (the data set's size and
         * the limits): the value here is a stand-in for checking, and the
         * generated code reads the run's value (lg_fit_info). */
        static const struct { const char *name; int64_t v; } defaults[] = {
            {"max_epochs", 1000}, {"max_steps", -1}, {"min_epochs", 0}, {"accumulate_grad_batches", 1},
            {"steps_per_epoch", 1000}, {"estimated_stepping_batches", 1000},
        };
        for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
            if (strcmp(defaults[i].name, e->str) == 0) {
                e->ref = REF_TRAINER;
                *out = cv_int(defaults[i].v);
                return true;
            }
    }
    return false;
}

static __attribute__((noinline)) void name_candidates(EvalScope *sc, const char **cands, int *n, int max) {
    for (EvalScope *s = sc; s; s = s->parent) {
        if (s->mod)
            for (int i = 0; i < s->mod->nhparams && *n < max; i++)
                cands[(*n)++] = s->mod->hparams[i].name;
        for (int i = 0; i < s->nextra && *n < max; i++)
            cands[(*n)++] = s->extra_names[i];
    }
}

static CValue eval(Ev *ev, Expr *e);

static __attribute__((noinline)) CValue eval_name(Ev *ev, Expr *e) {
    CValue v;
    for (EvalScope *s = ev->scope; s; s = s->parent) {
        if (s->lookup && s->lookup(s, e->str, &v))
            return v;
        if (!s->parent && lookup_global(s, e, &v))
            return v;
    }
    if (ev->scope->allow_enum || ev->enum_ok) {
        e->ref = REF_ENUM;
        CValue r = {.type = TY_ENUM, .s = e->str};
        return r;
    }
    if (!ev->quiet) {
        diag_error(ev->ctx, e->loc, "unknown name '%s'", e->str);
        const char *cands[512];
        int n = 0;
        name_candidates(ev->scope, cands, &n, 512);
        diag_suggest(ev->ctx, e->loc, e->str, cands, n);
    }
    return none();
}

static CValue arith(Ev *ev, Expr *e, CValue a, CValue b) {
    Operator op = e->op;
    if (op == OPR_AND || op == OPR_OR) {
        if (a.type != TY_BOOL || b.type != TY_BOOL) {
            err(ev, e->str_loc, "operator '%s' needs two bools, found %s", ast_operator_name(op),
                type_desc(a.type != TY_BOOL ? &a : &b));
            return none();
        }
        return cv_bool(op == OPR_AND ? (a.i && b.i) : (a.i || b.i));
    }
    if (op == OPR_EQ || op == OPR_NE) {
        bool eq;
        if (cv_is_number(&a) && cv_is_number(&b))
            eq = cv_number(&a) == cv_number(&b);
        else if (a.type == b.type && (a.type == TY_STRING || a.type == TY_ENUM))
            eq = strcmp(a.s, b.s) == 0;
        else if (a.type == TY_BOOL && b.type == TY_BOOL)
            eq = a.i == b.i;
        else if ((a.type == TY_STRING || a.type == TY_ENUM) && (b.type == TY_STRING || b.type == TY_ENUM))
            eq = strcmp(a.s, b.s) == 0;
        else {
            err(ev, e->str_loc, "cannot compare %s with %s", type_desc(&a), type_desc(&b));
            return none();
        }
        return cv_bool(op == OPR_EQ ? eq : !eq);
    }
    if (op == OPR_ADD && a.type == TY_STRING && b.type == TY_STRING)
        return cv_string(arena_printf(&ev->ctx->arena, "%s%s", a.s, b.s));
    if (!cv_is_number(&a) || !cv_is_number(&b)) {
        err(ev, e->str_loc, "operator '%s' needs numbers, found %s", ast_operator_name(op),
            type_desc(cv_is_number(&a) ? &b : &a));
        return none();
    }
    if (op == OPR_LT || op == OPR_LE || op == OPR_GT || op == OPR_GE) {
        double x = cv_number(&a), y = cv_number(&b);
        bool r = op == OPR_LT ? x < y : op == OPR_LE ? x <= y : op == OPR_GT ? x > y : x >= y;
        return cv_bool(r);
    }
    if (a.type == TY_INT && b.type == TY_INT && op != OPR_DIV) {
        int64_t r = 0;
        bool ovf = false;
        switch (op) {
        case OPR_ADD: ovf = __builtin_add_overflow(a.i, b.i, &r); break;
        case OPR_SUB: ovf = __builtin_sub_overflow(a.i, b.i, &r); break;
        case OPR_MUL: ovf = __builtin_mul_overflow(a.i, b.i, &r); break;
        case OPR_IDIV:
        case OPR_MOD:
            if (b.i == 0) {
                err(ev, e->str_loc, "division by zero%s%s", "", "");
                return none();
            }
            if (a.i == INT64_MIN && b.i == -1) {
                ovf = true;
                break;
            }
            if (op == OPR_IDIV) {
                r = a.i / b.i;
                if ((a.i % b.i != 0) && ((a.i < 0) != (b.i < 0)))
                    r--; /* floor division, as Python */
            } else {
                r = a.i % b.i;
                if (r != 0 && ((r < 0) != (b.i < 0)))
                    r += b.i;
            }
            break;
        default: break;
        }
        if (ovf) {
            err(ev, e->str_loc, "integer overflow in '%s'%s", ast_operator_name(op), "");
            return none();
        }
        return cv_int(r);
    }
    double x = cv_number(&a), y = cv_number(&b), r;
    switch (op) {
    case OPR_ADD: r = x + y; break;
    case OPR_SUB: r = x - y; break;
    case OPR_MUL: r = x * y; break;
    case OPR_DIV:
    case OPR_IDIV:
    case OPR_MOD:
        if (y == 0) {
            err(ev, e->str_loc, "division by zero%s%s", "", "");
            return none();
        }
        r = op == OPR_DIV ? x / y : op == OPR_IDIV ? floor(x / y) : x - floor(x / y) * y;
        break;
    default: r = 0; break;
    }
    return cv_float(r);
}

static CValue eval_call(Ev *ev, Expr *e) {
    const char *f = e->str;
    for (EvalScope *s = ev->scope; s; s = s->parent) {
        CValue r;
        if (s->call && s->call(s, e, &r))
            return r;
    }
    bool minmax = strcmp(f, "min") == 0 || strcmp(f, "max") == 0;
    if (minmax || strcmp(f, "int") == 0 || strcmp(f, "float") == 0) {
        int want = minmax ? 2 : 1;
        if (e->nargs != want) {
            err(ev, e->loc, "'%s' takes %s", f, minmax ? "two arguments" : "one argument");
            return none();
        }
        for (int i = 0; i < e->nargs; i++)
            if (e->args[i].key) {
                err(ev, e->args[i].key_loc, "'%s' takes no keyword arguments%s", f, "");
                return none();
            }
        CValue a = eval(ev, e->args[0].value);
        if (!cv_is_number(&a)) {
            if (a.type)
                err(ev, e->args[0].value->loc, "'%s' needs a number, found %s", f, type_desc(&a));
            return none();
        }
        if (f[0] == 'i')
            return cv_int((int64_t)cv_number(&a));
        if (f[0] == 'f')
            return cv_float(cv_number(&a));
        CValue b = eval(ev, e->args[1].value);
        if (!cv_is_number(&b)) {
            if (b.type)
                err(ev, e->args[1].value->loc, "'%s' needs a number, found %s", f, type_desc(&b));
            return none();
        }
        bool pick_a = strcmp(f, "min") == 0 ? cv_number(&a) <= cv_number(&b) : cv_number(&a) >= cv_number(&b);
        if (a.type == TY_INT && b.type == TY_INT)
            return pick_a ? a : b;
        return cv_float(pick_a ? cv_number(&a) : cv_number(&b));
    }
    err(ev, e->loc, "'%s(...)' is not a constant here%s", f, "");
    return none();
}

static CValue eval(Ev *ev, Expr *e) {
    if (++ev->depth > EVAL_MAX_DEPTH) {
        ev->depth--;
        if (!ev->deep_reported && !ev->quiet)
            diag_error(ev->ctx, e->loc, "expression nested more than %d levels deep", EVAL_MAX_DEPTH);
        ev->deep_reported = true;
        return none();
    }
    CValue r = none();
    switch (e->kind) {
    case EX_INT: r = cv_int(e->ival); break;
    case EX_FLOAT: r = cv_float(e->fval); break;
    case EX_STRING: r = cv_string(e->str); break;
    case EX_BOOL: r = cv_bool(e->ival != 0); break;
    case EX_NAME: r = eval_name(ev, e); break;
    case EX_TUPLE: {
        r.type = TY_TUPLE;
        r.nitems = e->nitems;
        r.items = arena_array(&ev->ctx->arena, (size_t)e->nitems, sizeof *r.items);
        for (int i = 0; i < e->nitems; i++) {
            r.items[i] = eval(ev, e->items[i]);
            if (!r.items[i].type) {
                r = none();
                break;
            }
        }
        break;
    }
    case EX_UNARY: {
        CValue a = eval(ev, e->lhs);
        if (!a.type)
            break;
        if (e->op == OPR_NOT) {
            if (a.type != TY_BOOL)
                err(ev, e->loc, "operator '!' needs a bool, found %s%s", type_desc(&a), "");
            else
                r = cv_bool(!a.i);
        } else if (a.type == TY_INT) {
            if (a.i == INT64_MIN)
                err(ev, e->loc, "integer overflow in '-'%s%s", "", "");
            else
                r = cv_int(-a.i);
        } else if (a.type == TY_FLOAT) {
            r = cv_float(-a.f);
        } else {
            err(ev, e->loc, "operator '-' needs a number, found %s%s", type_desc(&a), "");
        }
        break;
    }
    case EX_BINARY: {
        CValue a, b;
        if ((e->op == OPR_EQ || e->op == OPR_NE) && e->rhs->kind == EX_NAME) {
            /* an enum compared with a bare name: the name is a choice */
            a = eval(ev, e->lhs);
            bool saved = ev->enum_ok;
            ev->enum_ok = a.type == TY_ENUM;
            b = eval(ev, e->rhs);
            ev->enum_ok = saved;
        } else {
            a = eval(ev, e->lhs);
            b = eval(ev, e->rhs);
        }
        if (a.type && b.type)
            r = arith(ev, e, a, b);
        break;
    }
    case EX_COND: {
        CValue c = eval(ev, e->cond);
        if (!c.type)
            break;
        if (c.type != TY_BOOL) {
            err(ev, e->cond->loc, "a condition must be a bool, found %s%s", type_desc(&c), "");
            break;
        }
        r = eval(ev, c.i ? e->lhs : e->rhs);
        break;
    }
    case EX_INDEX: {
        CValue a = eval(ev, e->lhs);
        CValue b = eval(ev, e->rhs);
        if (!a.type || !b.type)
            break;
        if (a.type != TY_TUPLE || b.type != TY_INT) {
            err(ev, e->loc, "indexing needs a tuple and an int, found %s and %s", type_desc(&a), type_desc(&b));
            break;
        }
        int64_t k = b.i < 0 ? b.i + a.nitems : b.i;
        if (k < 0 || k >= a.nitems) {
            if (!ev->quiet)
                diag_error(ev->ctx, e->rhs->loc, "index %lld is out of range for a tuple of %d", (long long)b.i,
                           a.nitems);
            break;
        }
        r = a.items[k];
        break;
    }
    case EX_CALL: r = eval_call(ev, e); break;
    case EX_FIELD:
    case EX_PIPE:
    case EX_RANGE:
        err(ev, e->loc, "expected a constant value here%s%s", "", "");
        break;
    }
    ev->depth--;
    if (r.type && r.type != TY_TUPLE)
        e->cv = r;
    else if (r.type == TY_TUPLE)
        e->cv = r;
    return r;
}

CValue eval_expr(Ctx *ctx, EvalScope *scope, Expr *e, bool quiet) {
    Ev ev = {ctx, scope, quiet, 0, false, false};
    return eval(&ev, e);
}

/* ---- argument tables --------------------------------------------------- */

static const char *keytype_desc(const KeySpec *k) {
    switch (k->type) {
    case KT_INT: return "an int";
    case KT_FLOAT: return "a number";
    case KT_BOOL: return "a bool";
    case KT_STRING: return "a string";
    case KT_ENUM: return "one of the names";
    case KT_INTS: return "a tuple of ints";
    case KT_FLOATS: return "a tuple of numbers";
    case KT_STRINGS: return "a tuple of strings";
    case KT_NUMBER_OR_TUPLE: return "a number or a tuple of numbers";
    case KT_SIZE: return "an int or (h, w)";
    default: return "a value";
    }
}

static bool in_choices(const char *choices, const char *s) {
    size_t n = strlen(s);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static bool tuple_of(const CValue *v, Type t, bool allow_int_as_float) {
    if (v->type != TY_TUPLE)
        return false;
    for (int i = 0; i < v->nitems; i++) {
        Type it = v->items[i].type;
        if (it != t && !(allow_int_as_float && t == TY_FLOAT && it == TY_INT))
            return false;
    }
    return true;
}

/* Whether v fits k; converts ints to floats where a float is wanted. */
static bool fits(CValue *v, const KeySpec *k) {
    switch (k->type) {
    case KT_INT: return v->type == TY_INT;
    case KT_FLOAT:
        if (v->type == TY_INT)
            *v = cv_float((double)v->i);
        return v->type == TY_FLOAT;
    case KT_BOOL: return v->type == TY_BOOL;
    case KT_STRING: return v->type == TY_STRING;
    case KT_ENUM: return v->type == TY_ENUM || v->type == TY_STRING;
    case KT_INTS: return v->type == TY_INT || tuple_of(v, TY_INT, false);
    case KT_FLOATS: return cv_is_number(v) || tuple_of(v, TY_FLOAT, true);
    case KT_STRINGS: return v->type == TY_STRING || tuple_of(v, TY_STRING, false);
    case KT_NUMBER_OR_TUPLE: return cv_is_number(v) || tuple_of(v, TY_FLOAT, true);
    case KT_SIZE: return v->type == TY_INT || (tuple_of(v, TY_INT, false) && v->nitems == 2);
    default: return true;
    }
}

static bool out_of_range(const CValue *v, const KeySpec *k, double *bad) {
    if (k->lo > k->hi)
        return false;
    if (cv_is_number(v)) {
        double x = cv_number(v);
        *bad = x;
        return x < k->lo || x > k->hi;
    }
    if (v->type == TY_TUPLE)
        for (int i = 0; i < v->nitems; i++)
            if (out_of_range(&v->items[i], k, bad))
                return true;
    return false;
}

int eval_args(Ctx *ctx, EvalScope *scope, const char *what, Loc loc, Arg *args, int nargs,
              const KeySpec *specs, int nspecs, Expr **values, CValue *cvalues) {
    int before = ctx->nerrors;
    int npos = 0;
    Loc *where = arena_array(&ctx->arena, (size_t)nspecs + 1, sizeof *where);
    for (int k = 0; k < nspecs; k++) {
        values[k] = NULL;
        cvalues[k] = (CValue){0};
    }
    for (int i = 0; i < nargs; i++) {
        Arg *a = &args[i];
        int k = -1;
        if (!a->key) {
            int seen = 0;
            for (int j = 0; j < nspecs; j++)
                if (specs[j].positional && seen++ == npos)
                    k = j;
            npos++;
            if (k < 0) {
                diag_error(ctx, a->value->loc, "too many positional arguments for %s", what);
                continue;
            }
        } else {
            for (int j = 0; j < nspecs; j++)
                if (strcmp(specs[j].name, a->key) == 0)
                    k = j;
            if (k < 0) {
                if (strncmp(what, "the ", 4) == 0)
                    diag_error(ctx, a->key_loc, "unknown setting '%s' in %s", a->key, what);
                else
                    diag_error(ctx, a->key_loc, "%s has no argument '%s'", what, a->key);
                const char *cands[64];
                int n = 0;
                for (int j = 0; j < nspecs && n < 64; j++)
                    cands[n++] = specs[j].name;
                diag_suggest(ctx, a->key_loc, a->key, cands, n);
                continue;
            }
        }
        if (values[k]) {
            diag_error(ctx, a->key_loc, "argument '%s' of %s given twice", specs[k].name, what);
            diag_note(ctx, where[k], "first given here");
            continue;
        }
        values[k] = a->value;
        where[k] = a->key_loc;
        EvalScope sc = *scope;
        sc.allow_enum = specs[k].type == KT_ENUM;
        CValue v = eval_expr(ctx, &sc, a->value, false);
        if (!v.type)
            continue;
        if (!fits(&v, &specs[k])) {
            diag_error(ctx, a->value->loc, "%s '%s' of %s must be %s, found %s",
                       strncmp(what, "the ", 4) == 0 ? "setting" : "argument", specs[k].name, what,
                       keytype_desc(&specs[k]), type_desc(&v));
            continue;
        }
        if (specs[k].type == KT_ENUM && !in_choices(specs[k].choices, v.s)) {
            diag_error(ctx, a->value->loc, "argument '%s' of %s must be one of %s, found '%s'", specs[k].name,
                       what, specs[k].choices, v.s);
            continue;
        }
        double bad;
        if (out_of_range(&v, &specs[k], &bad)) {
            diag_error(ctx, a->value->loc, "argument '%s' of %s is %g, outside [%g, %g]", specs[k].name, what,
                       bad, specs[k].lo, specs[k].hi);
            continue;
        }
        cvalues[k] = v;
    }
    for (int k = 0; k < nspecs; k++)
        if (specs[k].required && !values[k])
            diag_error(ctx, loc, "%s needs argument '%s'", what, specs[k].name);
    return ctx->nerrors - before;
}
