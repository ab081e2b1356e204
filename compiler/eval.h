/* eval.h — compile-time evaluation of .lmod expressions, and checking
 * call arguments against a table of keys.
 *
 * Shared by sema.c (settings, hparams, datasets, transforms) and shapes.c
 * (attributes inside networks, loop bounds, `if` conditions). Names are
 * resolved through an EvalScope chain: local names first (block parameters,
 * loop variables), then the module's hparams and trainer settings.
 */
#ifndef LGEN_EVAL_H
#define LGEN_EVAL_H

#include "ast.h"
#include "ctx.h"

typedef struct EvalScope EvalScope;

/* Looks a name up in a local scope: returns true and sets *out when found. */
typedef bool (*EvalLookupFn)(EvalScope *scope, const char *name, CValue *out);
/* Evaluates a call the evaluator does not know (dim(x, 0) needs shapes):
 * returns true and sets *out when the scope handles it. */
typedef bool (*EvalCallFn)(EvalScope *scope, Expr *call, CValue *out);

struct EvalScope {
    Module *mod;          /* hparams and trainer settings */
    EvalLookupFn lookup;  /* local names, or NULL */
    EvalCallFn call;      /* scope-specific builtins, or NULL */
    EvalScope *parent;
    bool allow_enum;      /* an unknown bare name is an enum literal (TY_ENUM) */
    bool allow_trainer;   /* trainer settings (max_epochs) may be named */
    bool mark_static;     /* hparams named here become Hparam.is_static */
    const char *const *extra_names; /* more candidates for "did you mean" */
    int nextra;
};

/* Evaluates e; on failure reports (unless quiet) and returns TY_NONE. */
CValue eval_expr(Ctx *ctx, EvalScope *scope, Expr *e, bool quiet);

CValue cv_int(int64_t v);
CValue cv_float(double v);
CValue cv_bool(bool v);
CValue cv_string(const char *s);
bool cv_is_number(const CValue *v);
double cv_number(const CValue *v);
/* The value in .lmod syntax ("0.5", "(1, 2)", "max"), in the arena. */
const char *cv_str(Ctx *ctx, const CValue *v);

/* ---- argument tables ----------------------------------------------------- */

typedef enum {
    KT_INT, KT_FLOAT, KT_BOOL, KT_STRING, KT_ENUM, KT_INTS, KT_FLOATS, KT_STRINGS,
    KT_NUMBER_OR_TUPLE, /* a float or a tuple of floats (normalize) */
    KT_SIZE,            /* an int or (h, w) */
    KT_ANY,
} KeyType;

typedef struct KeySpec {
    const char *name;
    KeyType type;
    bool required;
    bool positional;     /* may be given by position, in table order */
    const char *choices; /* KT_ENUM: "a|b" */
    double lo, hi;       /* range for numbers (lo > hi: none) */
} KeySpec;

/* Matches args to specs: values[k] gets the Expr for spec k (or NULL), and
 * cvalues[k] its compile-time value when it has one. Reports unknown keys
 * (did you mean), duplicates, missing required keys, too many positional
 * arguments, type and range errors. what names the call in messages
 * ("optimizer 'sgd'"). Returns the number of errors. */
int eval_args(Ctx *ctx, EvalScope *scope, const char *what, Loc loc, Arg *args, int nargs,
              const KeySpec *specs, int nspecs, Expr **values, CValue *cvalues);

#endif
