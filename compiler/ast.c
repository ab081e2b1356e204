/* ast.c — constructors and small queries over the syntax tree (ast.h).
 *
 * The parser's actions call these so that parser.y stays one call per rule.
 * Names shared with the runtime's tables (formats, transforms) are spelled
 * here once, in the order of runtime/include/lgen/data.h's enums.
 */
#include "ast.h"

#include <stdio.h>
#include <string.h>

#include "ctx.h"

Module *ast_module_new(Ctx *ctx, int file) {
    Module *m = arena_alloc(&ctx->arena, sizeof *m);
    m->file = file;
    const SrcFile *f = diag_file(ctx, file);
    m->path = f ? f->path : "<none>";
    return m;
}

Expr *ast_expr(Ctx *ctx, ExprKind kind, Loc loc) {
    Expr *e = arena_alloc(&ctx->arena, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    e->str_loc = loc;
    return e;
}

Stmt *ast_stmt(Ctx *ctx, StmtKind kind, Loc loc) {
    Stmt *s = arena_alloc(&ctx->arena, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    return s;
}

/* Imports are searched depth-first in order; a cycle is cut by the visited
 * mark the depth bound gives (imports form a DAG after sema reports cycles). */
static Network *find_network(Module *mod, const char *name, int depth) {
    if (!mod || depth > 64)
        return NULL;
    for (int i = 0; i < mod->nnetworks; i++)
        if (strcmp(mod->networks[i]->name, name) == 0)
            return mod->networks[i];
    for (int i = 0; i < mod->nimports; i++) {
        Network *n = find_network(mod->imports[i].module, name, depth + 1);
        if (n)
            return n;
    }
    return NULL;
}

Network *ast_find_network(Module *mod, const char *name) {
    return find_network(mod, name, 0);
}

Dataset *ast_find_dataset(Module *mod, const char *name) {
    for (int i = 0; i < mod->ndatasets; i++)
        if (strcmp(mod->datasets[i]->name, name) == 0)
            return mod->datasets[i];
    return NULL;
}

Hparam *ast_find_hparam(Module *mod, const char *name) {
    for (int i = 0; i < mod->nhparams; i++)
        if (strcmp(mod->hparams[i].name, name) == 0)
            return &mod->hparams[i];
    return NULL;
}

const char *ast_operator_name(Operator op) {
    static const char *const names[] = {
        [OPR_NEG] = "-", [OPR_NOT] = "!", [OPR_ADD] = "+", [OPR_SUB] = "-",
        [OPR_MUL] = "*", [OPR_DIV] = "/", [OPR_IDIV] = "//", [OPR_MOD] = "%",
        [OPR_EQ] = "==", [OPR_NE] = "!=", [OPR_LT] = "<", [OPR_LE] = "<=",
        [OPR_GT] = ">", [OPR_GE] = ">=", [OPR_AND] = "&&", [OPR_OR] = "||",
    };
    return (unsigned)op < sizeof names / sizeof *names ? names[op] : "?";
}

const char *ast_format_name(DataFormat f) {
    static const char *const names[] = {"idx", "cifar10", "cifar100", "image_folder", "csv", "voc"};
    return (unsigned)f < sizeof names / sizeof *names ? names[f] : "?";
}

const char *ast_transform_name(TransformKind k) {
    static const char *const names[] = {
        "to_tensor", "normalize", "resize", "center_crop", "random_crop",
        "random_resized_crop", "random_horizontal_flip", "random_vertical_flip",
        "color_jitter", "grayscale", "letterbox",
    };
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

const char *ast_optim_name(OptimKind k) {
    static const char *const names[] = {"sgd", "adam", "adamw", "rmsprop"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

const char *ast_sched_name(SchedKind k) {
    static const char *const names[] = {
        "constant", "step", "multistep", "exponential", "cosine", "linear",
        "onecycle", "plateau", "warmup",
    };
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

const char *ast_dtype_name(DType t) {
    static const char *const names[] = {"f32", "i32", "i64", "u8", "bool"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

const char *ast_type_name(Type t) {
    static const char *const names[] = {"none", "int", "float", "bool", "string", "enum", "tuple", "tensor"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

const char *ast_shape_str(Ctx *ctx, DType dt, const Shape *s) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s[", ast_dtype_name(dt));
    for (int i = 0; i < s->rank && n < (int)sizeof buf - 32; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    snprintf(buf + n, sizeof buf - (size_t)n, "]");
    return arena_strdup(&ctx->arena, buf);
}
