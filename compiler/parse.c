/* parse.c — running the parser on a file, and the helpers its actions call.
 *
 * Input: a registered source file; output: its Module (ast.h). parser.y's
 * actions are one call each into the parse_* functions below, which build
 * AST nodes in the arena. Facts that are visible from syntax alone are
 * reported here: duplicate top-level blocks, unknown type names, malformed
 * dataset lines. Everything about meaning waits for sema.c.
 */
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "lex.h"
#include "parse_util.h"
#include "parser.h"

typedef void *yyscan_t;
int lmod_lex_init_extra(LexState *extra, yyscan_t *scanner);
int lmod_lex_destroy(yyscan_t scanner);
void *lmod__scan_bytes(const char *bytes, int len, yyscan_t scanner);

#define A (&lx->ctx->arena)

void parse_report(LexState *lx, Loc loc, const char *msg) {
    lx->syntax_errors++;
    if (strstr(msg, "memory exhausted")) {
        diag_error(lx->ctx, loc, "input is nested too deeply");
        return;
    }
    /* Bison says "syntax error, unexpected X, expecting Y"; keep it, it reads well. */
    diag_error(lx->ctx, loc, "%s", msg);
}

void parse_push(LexState *lx, PtrVec *v, void *item) {
    if (item)
        arena_vec_push(A, v, item);
}

static void *vec_to_array(LexState *lx, PtrVec *v, size_t elem, int *n) {
    /* Copies a vector of pointers to elem-sized records into a packed array. */
    *n = v ? v->len : 0;
    if (!v || v->len == 0)
        return NULL;
    char *out = arena_array(A, (size_t)v->len, elem);
    for (int i = 0; i < v->len; i++)
        memcpy(out + (size_t)i * elem, v->items[i], elem);
    return out;
}

static void **vec_ptrs(PtrVec *v, int *n) {
    *n = v ? v->len : 0;
    return v ? v->items : NULL;
}

static void duplicate(LexState *lx, Loc *first, Loc loc, const char *what) {
    if (first->file >= 0 && first->end > 0) {
        diag_error(lx->ctx, loc, "duplicate '%s' block", what);
        diag_note(lx->ctx, *first, "the first '%s' block is here", what);
        return;
    }
    *first = loc;
}

void parse_model(LexState *lx, Module *m, const char *name, Loc loc, const char *doc) {
    if (m->name) {
        diag_error(lx->ctx, loc, "duplicate 'model' line");
        diag_note(lx->ctx, m->name_loc, "the model was named here");
        return;
    }
    m->name = name;
    m->name_loc = loc;
    m->doc = doc;
}

void parse_import_item(LexState *lx, Module *m, const char *path, Loc loc) {
    (void)m;
    Import *im = arena_alloc(A, sizeof *im);
    im->path = path;
    im->loc = loc;
    arena_vec_push(A, &lx->imports, im);
}

void parse_hparams(LexState *lx, Module *m, PtrVec *list, Loc loc) {
    (void)m;
    (void)loc;
    for (int i = 0; i < list->len; i++)
        arena_vec_push(A, &lx->hparams, list->items[i]);
}

Hparam *parse_hparam(LexState *lx, const char *name, Loc loc, TypeSpec *type, Expr *dflt, RangeSpec *range,
                     const char *doc) {
    Hparam *h = arena_alloc(A, sizeof *h);
    h->name = name;
    h->loc = loc;
    h->type = type->type;
    h->type_loc = type->loc;
    h->choices = type->choices;
    h->nchoices = type->nchoices;
    h->dflt = dflt;
    h->lo = range->lo;
    h->hi = range->hi;
    h->lo_open = range->lo_open;
    h->hi_open = range->hi_open;
    h->doc = doc;
    return h;
}

TypeSpec parse_type_name(LexState *lx, const char *name, Loc loc, PtrVec *choices) {
    /* shape: a tuple of ints, e.g. a kernel size, for block parameters */
    static const char *const names[] = {"int", "float", "bool", "string", "enum", "shape"};
    static const Type types[] = {TY_INT, TY_FLOAT, TY_BOOL, TY_STRING, TY_ENUM, TY_TUPLE};
    TypeSpec t = {TY_NONE, NULL, 0, loc};
    for (int i = 0; i < 6; i++)
        if (strcmp(name, names[i]) == 0)
            t.type = types[i];
    if (t.type == TY_NONE) {
        diag_error(lx->ctx, loc, "unknown type '%s'", name);
        diag_suggest(lx->ctx, loc, name, names, 6);
        return t;
    }
    if (t.type == TY_ENUM && !choices) {
        diag_error(lx->ctx, loc, "an enum type lists its choices: enum(a, b, c)");
        t.type = TY_NONE;
    } else if (t.type != TY_ENUM && choices) {
        diag_error(lx->ctx, loc, "type '%s' takes no choices; only enum(...) does", name);
    }
    if (t.type == TY_ENUM) {
        t.nchoices = choices->len;
        t.choices = arena_array(A, (size_t)choices->len, sizeof *t.choices);
        for (int i = 0; i < choices->len; i++) {
            NameLoc *nl = choices->items[i];
            t.choices[i] = nl->name;
            for (int j = 0; j < i; j++)
                if (strcmp(t.choices[j], nl->name) == 0)
                    diag_error(lx->ctx, nl->loc, "enum choice '%s' listed twice", nl->name);
        }
    }
    return t;
}

NameLoc *parse_name(LexState *lx, const char *name, Loc loc) {
    NameLoc *n = arena_alloc(A, sizeof *n);
    n->name = name;
    n->loc = loc;
    return n;
}

DsItem *parse_ds_item(LexState *lx, DsItemKind kind, Loc loc, const char *str, Loc str_loc, const char *sha,
                      Expr *expr, PtrVec *args) {
    DsItem *d = arena_alloc(A, sizeof *d);
    d->kind = kind;
    d->loc = loc;
    d->str = str;
    d->str_loc = str_loc;
    d->sha256 = sha;
    d->expr = expr;
    if (args)
        d->args = *args;
    return d;
}

const char *parse_sha_key(LexState *lx, const char *key, Loc loc, const char *value) {
    if (strcmp(key, "sha256") != 0) {
        static const char *const keys[] = {"sha256"};
        diag_error(lx->ctx, loc, "expected 'sha256' after the file name, found '%s'", key);
        diag_suggest(lx->ctx, loc, key, keys, 1);
        return NULL;
    }
    return value;
}

void parse_dataset(LexState *lx, Module *m, const char *name, Loc loc, const char *doc, PtrVec *items) {
    (void)m;
    Dataset *d = arena_alloc(A, sizeof *d);
    d->name = name;
    d->loc = loc;
    d->doc = doc;
    d->format = FMT_NONE;
    d->csv_label_column = -1;
    int nm = 0, nf = 0, ns = 0;
    for (int i = 0; i < items->len; i++) {
        DsItem *it = items->items[i];
        nm += it->kind == DSI_MIRROR;
        nf += it->kind == DSI_FILE || it->kind == DSI_ARCHIVE;
        ns += it->kind == DSI_SPLIT;
    }
    d->mirrors = arena_array(A, (size_t)nm, sizeof *d->mirrors);
    d->mirror_locs = arena_array(A, (size_t)nm, sizeof *d->mirror_locs);
    d->files = arena_array(A, (size_t)nf, sizeof *d->files);
    d->splits = arena_array(A, (size_t)ns, sizeof *d->splits);
    for (int i = 0; i < items->len; i++) {
        DsItem *it = items->items[i];
        switch (it->kind) {
        case DSI_MIRROR:
            d->mirror_locs[d->nmirrors] = it->str_loc;
            d->mirrors[d->nmirrors++] = it->str;
            break;
        case DSI_FILE:
        case DSI_ARCHIVE: {
            DataFile *f = &d->files[d->nfiles++];
            f->name = it->str;
            f->sha256 = it->sha256;
            f->extract = it->kind == DSI_ARCHIVE;
            f->loc = it->str_loc;
            break;
        }
        case DSI_FORMAT:
            if (d->format_expr) {
                diag_error(lx->ctx, it->loc, "dataset '%s' has two 'format' lines", name);
                diag_note(lx->ctx, d->format_expr->loc, "the first is here");
            } else {
                d->format_expr = it->expr;
            }
            break;
        case DSI_SPLIT: {
            DatasetSplit *s = &d->splits[d->nsplits++];
            s->name = it->str;
            s->loc = it->loc;
            int n;
            Arg **args = (Arg **)vec_ptrs(&it->args, &n);
            s->args = arena_array(A, (size_t)n, sizeof *s->args);
            for (int k = 0; k < n; k++)
                s->args[k] = *args[k];
            s->nargs = n;
            break;
        }
        case DSI_DOC:
            if (d->doc)
                diag_error(lx->ctx, it->loc, "dataset '%s' already has a doc string", name);
            else
                d->doc = it->str;
            break;
        }
    }
    arena_vec_push(A, &lx->datasets, d);
}

static Stmt **stmt_array(PtrVec *v, int *n) {
    return (Stmt **)vec_ptrs(v, n);
}

void parse_data(LexState *lx, Module *m, PtrVec *stmts, Loc loc) {
    if (m->data) {
        duplicate(lx, &lx->data_loc, loc, "data");
        return;
    }
    lx->data_loc = loc;
    DataBlock *d = arena_alloc(A, sizeof *d);
    d->loc = loc;
    d->stmts = stmt_array(stmts, &d->nstmts);
    m->data = d;
}

/* A leading string statement is a doc string (Python's docstring rule). */
static const char *take_doc(Stmt ***body, int *n) {
    if (*n > 0 && (*body)[0]->kind == ST_EXPR && (*body)[0]->value->kind == EX_STRING && !(*body)[0]->value->parens) {
        const char *doc = (*body)[0]->value->str;
        (*body)++;
        (*n)--;
        return doc;
    }
    return NULL;
}

void parse_network(LexState *lx, Module *m, bool is_block, const char *name, Loc loc, PtrVec *params,
                   PtrVec *outs, PtrVec *body) {
    Network *n = arena_alloc(A, sizeof *n);
    n->name = name;
    n->loc = loc;
    n->is_block = is_block;
    n->params = vec_to_array(lx, params, sizeof *n->params, &n->nparams);
    n->outputs = vec_to_array(lx, outs, sizeof *n->outputs, &n->noutputs);
    n->body = stmt_array(body, &n->nbody);
    n->doc = take_doc(&n->body, &n->nbody);
    n->module = m;
    arena_vec_push(A, &lx->networks, n);
}

void parse_step(LexState *lx, Module *m, const char *name, Loc loc, const char *batch, Loc batch_loc,
                PtrVec *body) {
    (void)m;
    Step *s = arena_alloc(A, sizeof *s);
    s->name = name;
    s->loc = loc;
    s->batch = batch;
    s->batch_loc = batch_loc;
    s->body = stmt_array(body, &s->nbody);
    take_doc(&s->body, &s->nbody);
    arena_vec_push(A, &lx->steps, s);
}

static Arg *arg_array(LexState *lx, PtrVec *v, int *n) {
    int k;
    Arg **args = (Arg **)vec_ptrs(v, &k);
    Arg *out = arena_array(A, (size_t)k, sizeof *out);
    for (int i = 0; i < k; i++)
        out[i] = *args[i];
    *n = k;
    return out;
}

void parse_optimizer(LexState *lx, Module *m, const char *name, Loc loc, PtrVec *args, PtrVec *groups) {
    if (m->optimizer) {
        duplicate(lx, &lx->optimizer_loc, loc, "optimizer");
        return;
    }
    lx->optimizer_loc = loc;
    Optimizer *o = arena_alloc(A, sizeof *o);
    o->name = name;
    o->loc = loc;
    o->kind = OPTIM_NONE;
    o->args = arg_array(lx, args, &o->nargs);
    o->groups = vec_to_array(lx, groups, sizeof *o->groups, &o->ngroups);
    m->optimizer = o;
}

void parse_scheduler(LexState *lx, Module *m, Loc loc, PtrVec *phases) {
    if (m->scheduler) {
        duplicate(lx, &lx->scheduler_loc, loc, "scheduler");
        return;
    }
    lx->scheduler_loc = loc;
    Scheduler *s = arena_alloc(A, sizeof *s);
    s->loc = loc;
    s->phases = vec_to_array(lx, phases, sizeof *s->phases, &s->nphases);
    s->interval = "epoch";
    m->scheduler = s;
}

void parse_trainer(LexState *lx, Module *m, Loc loc, PtrVec *stmts) {
    if (m->trainer) {
        duplicate(lx, &lx->trainer_loc, loc, "trainer");
        return;
    }
    lx->trainer_loc = loc;
    Trainer *t = arena_alloc(A, sizeof *t);
    t->loc = loc;
    int n = 0;
    for (int i = 0; i < stmts->len; i++) {
        Stmt *s = stmts->items[i];
        n += s->kind == ST_ASSIGN || s->kind == ST_EXPR;
    }
    t->settings = arena_array(A, (size_t)n, sizeof *t->settings);
    t->callbacks = arena_array(A, (size_t)n, sizeof *t->callbacks);
    for (int i = 0; i < stmts->len; i++) {
        Stmt *s = stmts->items[i];
        if (s->kind == ST_ASSIGN && s->nnames == 1) {
            Setting *st = &t->settings[t->nsettings++];
            st->key = s->names[0];
            st->loc = s->name_locs[0];
            st->value = s->value;
        } else if (s->kind == ST_EXPR && s->value->kind == EX_CALL) {
            Callback *cb = &t->callbacks[t->ncallbacks++];
            cb->name = s->value->str;
            cb->loc = s->value->str_loc;
            cb->args = s->value->args;
            cb->nargs = s->value->nargs;
        } else {
            diag_error(lx->ctx, s->loc, "a trainer block holds 'key = value' settings and callbacks such as "
                                        "checkpoint(...)");
        }
    }
    m->trainer = t;
}

BlockParam *parse_param(LexState *lx, const char *name, Loc loc, TensorType *tt, TypeSpec *st, Expr *dflt) {
    BlockParam *p = arena_alloc(A, sizeof *p);
    p->name = name;
    p->loc = loc;
    if (st) {
        p->type = st->type;
        p->choices = st->choices;
        p->nchoices = st->nchoices;
    } else {
        p->type = TY_TENSOR;
        p->tensor = tt;
    }
    p->dflt = dflt;
    return p;
}

TensorType *parse_ttype(LexState *lx, const char *dtype, Loc dloc, PtrVec *dims, Loc loc) {
    static const char *const names[] = {"f32", "i32", "i64", "u8", "bool"};
    TensorType *t = arena_alloc(A, sizeof *t);
    t->loc = loc;
    int k = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(dtype, names[i]) == 0)
            k = i;
    if (k < 0) {
        diag_error(lx->ctx, dloc, "unknown element type '%s'", dtype);
        diag_suggest(lx->ctx, dloc, dtype, names, 5);
        k = 0;
    }
    t->dtype = (DType)k;
    t->dims = (Expr **)vec_ptrs(dims, &t->ndims);
    if (t->ndims > SHAPE_MAX_RANK) {
        diag_error(lx->ctx, loc, "a tensor type has at most %d dimensions, found %d", SHAPE_MAX_RANK, t->ndims);
        t->ndims = SHAPE_MAX_RANK;
    }
    return t;
}

Output *parse_output(LexState *lx, const char *name, Loc loc, TensorType *tt) {
    Output *o = arena_alloc(A, sizeof *o);
    o->name = name;
    o->loc = loc;
    o->type = *tt;
    return o;
}

Stmt *parse_assign(LexState *lx, PtrVec *names, Expr *value, Loc loc) {
    Stmt *s = ast_stmt(lx->ctx, ST_ASSIGN, loc);
    s->nnames = names->len;
    s->names = arena_array(A, (size_t)names->len, sizeof *s->names);
    s->name_locs = arena_array(A, (size_t)names->len, sizeof *s->name_locs);
    for (int i = 0; i < names->len; i++) {
        NameLoc *nl = names->items[i];
        s->names[i] = nl->name;
        s->name_locs[i] = nl->loc;
    }
    s->value = value;
    return s;
}

Stmt *parse_log(LexState *lx, const char *name, Loc name_loc, Expr *value, PtrVec *opts, Loc loc) {
    Stmt *s = ast_stmt(lx->ctx, ST_LOG, loc);
    s->nnames = 1;
    s->names = arena_array(A, 1, sizeof *s->names);
    s->name_locs = arena_array(A, 1, sizeof *s->name_locs);
    s->names[0] = name;
    s->name_locs[0] = name_loc;
    s->value = value;
    if (opts)
        s->opts = arg_array(lx, opts, &s->nopts);
    return s;
}

Stmt *parse_return(LexState *lx, PtrVec *values, Loc loc) {
    Stmt *s = ast_stmt(lx->ctx, ST_RETURN, loc);
    s->values = (Expr **)vec_ptrs(values, &s->nvalues);
    return s;
}

Stmt *parse_for(LexState *lx, const char *var, Loc var_loc, Expr *range, PtrVec *body, Loc loc) {
    Stmt *s = ast_stmt(lx->ctx, ST_FOR, loc);
    s->var = var;
    s->var_loc = var_loc;
    s->value = range;
    s->body = stmt_array(body, &s->nbody);
    return s;
}

Stmt *parse_if(LexState *lx, Expr *cond, PtrVec *body, Stmt *orelse, Loc loc) {
    Stmt *s = ast_stmt(lx->ctx, ST_IF, loc);
    s->value = cond;
    s->body = stmt_array(body, &s->nbody);
    if (orelse) {
        if (orelse->kind == ST_IF && orelse->value == NULL) {
            /* a plain `else { }`: its body */
            s->orelse = orelse->body;
            s->norelse = orelse->nbody;
        } else {
            s->orelse = arena_array(A, 1, sizeof *s->orelse);
            s->orelse[0] = orelse;
            s->norelse = 1;
        }
    }
    return s;
}

Stmt *parse_else(LexState *lx, PtrVec *body, Loc loc) {
    Stmt *s = ast_stmt(lx->ctx, ST_IF, loc);
    s->body = stmt_array(body, &s->nbody);
    return s;
}

Stmt *parse_expr_stmt(LexState *lx, Expr *e) {
    Stmt *s = ast_stmt(lx->ctx, ST_EXPR, e->loc);
    s->value = e;
    return s;
}

OptGroup *parse_group(LexState *lx, const char *name, Loc loc, PtrVec *args) {
    OptGroup *g = arena_alloc(A, sizeof *g);
    g->name = name;
    g->loc = loc;
    g->args = arg_array(lx, args, &g->nargs);
    return g;
}

SchedPhase *parse_phase(LexState *lx, const char *name, Loc loc, PtrVec *args) {
    SchedPhase *p = arena_alloc(A, sizeof *p);
    p->name = name;
    p->loc = loc;
    p->kind = SCHED_NONE;
    if (args)
        p->args = arg_array(lx, args, &p->nargs);
    return p;
}

Expr *parse_binary(LexState *lx, ExprKind kind, Operator op, Expr *l, Expr *r, Loc loc) {
    Expr *e = ast_expr(lx->ctx, kind, diag_span(l->loc, r->loc));
    e->op = op;
    e->lhs = l;
    e->rhs = r;
    e->str_loc = loc; /* the operator (for messages about it) */
    return e;
}

Expr *parse_cond(LexState *lx, Expr *c, Expr *a, Expr *b, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_COND, loc);
    e->cond = c;
    e->lhs = a;
    e->rhs = b;
    return e;
}

Expr *parse_unary(LexState *lx, Operator op, Expr *x, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_UNARY, loc);
    e->op = op;
    e->lhs = x;
    return e;
}

Expr *parse_name_expr(LexState *lx, const char *name, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_NAME, loc);
    e->str = name;
    return e;
}

Expr *parse_call(LexState *lx, const char *name, Loc name_loc, PtrVec *args, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_CALL, loc);
    e->str = name;
    e->str_loc = name_loc;
    e->args = arg_array(lx, args, &e->nargs);
    return e;
}

Expr *parse_int(LexState *lx, int64_t v, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_INT, loc);
    e->ival = v;
    return e;
}

Expr *parse_float(LexState *lx, double v, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_FLOAT, loc);
    e->fval = v;
    return e;
}

Expr *parse_string(LexState *lx, const char *s, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_STRING, loc);
    e->str = s;
    return e;
}

Expr *parse_bool(LexState *lx, int v, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_BOOL, loc);
    e->ival = v;
    return e;
}

Expr *parse_field(LexState *lx, Expr *base, const char *name, Loc name_loc, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_FIELD, loc);
    e->lhs = base;
    e->str = name;
    e->str_loc = name_loc;
    return e;
}

Expr *parse_parens(LexState *lx, Expr *e, Loc loc) {
    (void)lx;
    (void)loc;
    e->parens = true;
    return e;
}

Expr *parse_tuple1(LexState *lx, Expr *x, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_TUPLE, loc);
    e->items = arena_array(A, 1, sizeof *e->items);
    e->items[0] = x;
    e->nitems = 1;
    return e;
}

Expr *parse_tuple(LexState *lx, Expr *first, PtrVec *rest, Loc loc) {
    Expr *e = ast_expr(lx->ctx, EX_TUPLE, loc);
    int n = (first ? 1 : 0) + (rest ? rest->len : 0);
    e->items = arena_array(A, (size_t)n, sizeof *e->items);
    if (first)
        e->items[e->nitems++] = first;
    for (int i = 0; rest && i < rest->len; i++)
        e->items[e->nitems++] = rest->items[i];
    return e;
}

Arg *parse_arg(LexState *lx, const char *key, Loc key_loc, Expr *value) {
    Arg *a = arena_alloc(A, sizeof *a);
    a->key = key;
    a->key_loc = key ? key_loc : value->loc;
    a->value = value;
    return a;
}

/* ---- running the parser ---------------------------------------------------- */

Module *parse_file(Ctx *ctx, int file) {
    const SrcFile *f = diag_file(ctx, file);
    Module *m = ast_module_new(ctx, file);
    if (!f)
        return m;
    LexState lx = {0};
    lx.ctx = ctx;
    lx.file = file;
    lx.text = f->text;
    lx.len = f->len;
    lx.data_loc = lx.optimizer_loc = lx.scheduler_loc = lx.trainer_loc = lx.hparams_loc = lx.model_loc = LOC_NONE;
    yyscan_t scanner;
    if (lmod_lex_init_extra(&lx, &scanner) != 0) {
        fputs("lgen: internal error: cannot start the lexer\n", stderr);
        abort();
    }
    lmod__scan_bytes(f->text, f->len, scanner);
    lmod_parse(scanner, &lx, m);
    lmod_lex_destroy(scanner);
    int n;
    void **p = vec_ptrs(&lx.networks, &n);
    m->networks = (Network **)p;
    m->nnetworks = n;
    m->datasets = (Dataset **)vec_ptrs(&lx.datasets, &m->ndatasets);
    m->steps = (Step **)vec_ptrs(&lx.steps, &m->nsteps);
    m->imports = vec_to_array(&lx, &lx.imports, sizeof *m->imports, &m->nimports);
    m->hparams = vec_to_array(&lx, &lx.hparams, sizeof *m->hparams, &m->nhparams);
    /* Only syntax errors make the tree unusable; a lexical error or an
     * unknown type name leaves a tree sema can still check. */
    m->has_errors = lx.syntax_errors > 0;
    m->has_lex_errors = lx.errors > 0;
    return m;
}
