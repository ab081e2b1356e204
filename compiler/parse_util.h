/* parse_util.h — the helpers parser.y's actions call (implemented in parse.c).
 *
 * Each grammar action is one parse_* call that builds or attaches an AST
 * node (ast.h); duplicate top-level items and malformed dataset lines are
 * reported here, since they are syntax-level facts.
 */
#ifndef LGEN_PARSE_UTIL_H
#define LGEN_PARSE_UTIL_H

#include "ast.h"
#include "lex.h"

typedef struct RangeSpec {
    Expr *lo, *hi;
    bool lo_open, hi_open;
    Loc loc;
} RangeSpec;

typedef struct TypeSpec {
    Type type;
    const char **choices;
    int nchoices;
    Loc loc;
} TypeSpec;

/* A name with its location (names, idents lists). */
typedef struct NameLoc {
    const char *name;
    Loc loc;
} NameLoc;

typedef enum { DSI_MIRROR, DSI_FILE, DSI_ARCHIVE, DSI_FORMAT, DSI_SPLIT, DSI_DOC } DsItemKind;

typedef struct DsItem {
    DsItemKind kind;
    Loc loc;
    const char *str;
    Loc str_loc;
    const char *sha256;
    Expr *expr;
    PtrVec args;
} DsItem;

void parse_report(LexState *lx, Loc loc, const char *msg);
void parse_push(LexState *lx, PtrVec *v, void *item);

void parse_model(LexState *lx, Module *m, const char *name, Loc loc, const char *doc);
void parse_import_item(LexState *lx, Module *m, const char *path, Loc loc);
void parse_hparams(LexState *lx, Module *m, PtrVec *list, Loc loc);
void parse_dataset(LexState *lx, Module *m, const char *name, Loc loc, const char *doc, PtrVec *items);
void parse_data(LexState *lx, Module *m, PtrVec *stmts, Loc loc);
void parse_network(LexState *lx, Module *m, bool is_block, const char *name, Loc loc, PtrVec *params,
                   PtrVec *outs, PtrVec *body);
void parse_step(LexState *lx, Module *m, const char *name, Loc loc, const char *batch, Loc batch_loc,
                PtrVec *body);
void parse_optimizer(LexState *lx, Module *m, const char *name, Loc loc, PtrVec *args, PtrVec *groups);
void parse_scheduler(LexState *lx, Module *m, Loc loc, PtrVec *phases);
void parse_trainer(LexState *lx, Module *m, Loc loc, PtrVec *stmts);

Hparam *parse_hparam(LexState *lx, const char *name, Loc loc, TypeSpec *type, Expr *dflt, RangeSpec *range,
                     const char *doc);
TypeSpec parse_type_name(LexState *lx, const char *name, Loc loc, PtrVec *choices);
NameLoc *parse_name(LexState *lx, const char *name, Loc loc);
DsItem *parse_ds_item(LexState *lx, DsItemKind kind, Loc loc, const char *str, Loc str_loc, const char *sha,
                      Expr *expr, PtrVec *args);
const char *parse_sha_key(LexState *lx, const char *key, Loc loc, const char *value);
BlockParam *parse_param(LexState *lx, const char *name, Loc loc, TensorType *tt, TypeSpec *st, Expr *dflt);
TensorType *parse_ttype(LexState *lx, const char *dtype, Loc dloc, PtrVec *dims, Loc loc);
Output *parse_output(LexState *lx, const char *name, Loc loc, TensorType *tt);

Stmt *parse_assign(LexState *lx, PtrVec *names, Expr *value, Loc loc);
Stmt *parse_log(LexState *lx, const char *name, Loc name_loc, Expr *value, PtrVec *opts, Loc loc);
Stmt *parse_return(LexState *lx, PtrVec *values, Loc loc);
Stmt *parse_for(LexState *lx, const char *var, Loc var_loc, Expr *range, PtrVec *body, Loc loc);
Stmt *parse_if(LexState *lx, Expr *cond, PtrVec *body, Stmt *orelse, Loc loc);
Stmt *parse_else(LexState *lx, PtrVec *body, Loc loc);
Stmt *parse_expr_stmt(LexState *lx, Expr *e);

OptGroup *parse_group(LexState *lx, const char *name, Loc loc, PtrVec *args);
SchedPhase *parse_phase(LexState *lx, const char *name, Loc loc, PtrVec *args);

Expr *parse_binary(LexState *lx, ExprKind kind, Operator op, Expr *l, Expr *r, Loc loc);
Expr *parse_cond(LexState *lx, Expr *c, Expr *a, Expr *b, Loc loc);
Expr *parse_unary(LexState *lx, Operator op, Expr *e, Loc loc);
Expr *parse_name_expr(LexState *lx, const char *name, Loc loc);
Expr *parse_call(LexState *lx, const char *name, Loc name_loc, PtrVec *args, Loc loc);
Expr *parse_int(LexState *lx, int64_t v, Loc loc);
Expr *parse_float(LexState *lx, double v, Loc loc);
Expr *parse_string(LexState *lx, const char *s, Loc loc);
Expr *parse_bool(LexState *lx, int v, Loc loc);
Expr *parse_field(LexState *lx, Expr *base, const char *name, Loc name_loc, Loc loc);
Expr *parse_parens(LexState *lx, Expr *e, Loc loc);
Expr *parse_tuple1(LexState *lx, Expr *e, Loc loc);
Expr *parse_tuple(LexState *lx, Expr *first, PtrVec *rest, Loc loc);
Arg *parse_arg(LexState *lx, const char *key, Loc key_loc, Expr *value);

#endif
