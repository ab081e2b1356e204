/* shapes.c — elaborates networks and steps into graphs with static shapes.
 *
 * Input: a Module that passed sema. Output: Network.graph for every network
 * (not blocks) and Step.graph for every step (ast.h): blocks instantiated at
 * each call, `for` loops unrolled, `if`s decided, every op call a GNode with
 * its lg_op_id, attributes resolved against ops.def (defaults filled in,
 * typed, range-checked), output shapes per sample (the batch dimension B is
 * implicit), parameter names in PyTorch's state_dict style and their shapes,
 * FLOPs and activation bytes per sample.
 *
 * Layer names: a layer (an op of kind LAYER, or a block call) is named
 * after the value its statement assigns. When a scope (a network body or one
 * block instance) has one layer under that name, outside loops, the layer is
 * that name ("conv1"); otherwise the layers are "name.0", "name.1", ... in
 * order, like an nn.Sequential. `name: "fc"` on the call overrides it. A
 * block's layers are prefixed by the block call's name ("layer1.0.conv1"),
 * so a ResNet written with blocks has torchvision's parameter names.
 *
 * Recursion follows nesting only (block calls, expression trees); long
 * pipelines and statement lists are loops, and block nesting is bounded, so
 * a 100,000-layer spec runs in constant stack.
 */
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "front.h"
#include "optab.h"
#include "strmap.h"

#define A (&el->ctx->arena)
#define MAX_BLOCK_DEPTH 64

/* ---- values during elaboration ------------------------------------------------------- */

typedef enum { VK_NONE, VK_SCALAR, VK_TENSOR, VK_MULTI } ValKind;

typedef struct Val {
    ValKind kind;
    CValue cv;        /* VK_SCALAR */
    GValue *t;        /* VK_TENSOR */
    GValue **ts;      /* VK_MULTI */
    int nts;
} Val;

typedef struct Binding {
    const char *name;
    Val v;
    struct Binding *next;
} Binding;

/* A layer's name, resolved when its scope finishes (see the file comment). */
typedef struct NameSlot {
    struct NameSlot *parent;
    const char *base;
    bool in_loop;
    bool fixed;       /* name: given */
    const char *local;
    const char *full;
} NameSlot;

typedef struct Frame {
    Network *net;
    struct Frame *caller;
    Loc call_loc;
    StrMap vars;          /* name -> its latest Binding */
    NameSlot *slot;       /* this block instance's name (NULL at a graph's top) */
    NameSlot **slots;     /* layers named in this scope */
    int nslots, capslots;
    const char *stmt_base; /* the value the current statement assigns */
    int loop_depth;
    Step *step;
    DataSplit *split;     /* steps: the data split whose batches they see */
    int depth;
} Frame;

typedef struct El {
    Ctx *ctx;
    Module *mod;
    Graph *g;
    PtrVec nodes, values, params;
    int nerrors_at_start;
    int depth;            /* eval_val recursion */
} El;

/* ---- graph building --------------------------------------------------------------- */

static int64_t shape_numel(const Shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dim[i];
    return n;
}

static int dtype_size(DType t) {
    switch (t) {
    case DT_F32:
    case DT_I32: return 4;
    case DT_I64: return 8;
    default: return 1;
    }
}

static GValue *new_value(El *el, DType dt, Shape sh, const char *name, Loc loc) {
    GValue *v = arena_alloc(A, sizeof *v);
    v->id = el->values.len;
    v->dtype = dt;
    v->shape = sh;
    v->name = name;
    v->loc = loc;
    arena_vec_push(A, &el->values, v);
    return v;
}

static GNode *new_node(El *el, GNodeKind kind, Loc loc) {
    GNode *n = arena_alloc(A, sizeof *n);
    n->id = el->nodes.len;
    n->kind = kind;
    n->loc = loc;
    arena_vec_push(A, &el->nodes, n);
    return n;
}

static void node_outputs(El *el, GNode *n, int k) {
    n->noutputs = k;
    n->outputs = arena_array(A, (size_t)k, sizeof *n->outputs);
}

static GValue *node_out(El *el, GNode *n, int i, DType dt, Shape sh, const char *name) {
    GValue *v = new_value(el, dt, sh, name, n->loc);
    v->producer = n;
    v->index = i;
    n->outputs[i] = v;
    n->act_bytes += shape_numel(&sh) * dtype_size(dt);
    return v;
}

static const char *shape_str(El *el, const GValue *v) {
    const char *s = ast_shape_str(el->ctx, v->dtype, &v->shape);
    return v->shape.batched ? s : arena_printf(A, "%s (unbatched)", s);
}

/* A note at the line that produced v (STYLE.md: a shape error names both lines). */
static void note_producer(El *el, const GValue *v) {
    if (v->loc.file < 0)
        return;
    if (v->producer && v->producer->kind == GN_INPUT)
        diag_note(el->ctx, v->loc, "'%s' is %s, declared here", v->name ? v->name : "input", shape_str(el, v));
    else
        diag_note(el->ctx, v->loc, "%s%s%s is %s, produced here", v->name ? "'" : "", v->name ? v->name : "this value",
                  v->name ? "'" : "", shape_str(el, v));
}

/* ---- name scopes -------------------------------------------------------------------- */

/* The module whose hparams and blocks a frame sees: an imported block
 * reads its own file's names. */
static Module *frame_mod(El *el, Frame *f) {
    return f->net && f->net->module ? f->net->module : el->mod;
}

static Binding *lookup(Frame *f, const char *name) {
    return strmap_get(&f->vars, name);
}

static void bind(El *el, Frame *f, const char *name, Val v) {
    Binding *b = arena_alloc(A, sizeof *b);
    b->name = name;
    b->v = v;
    b->next = lookup(f, name);
    strmap_put(A, &f->vars, name, b);
}

typedef struct FrameScope {
    EvalScope sc;
    Frame *f;
    El *el;
} FrameScope;

static Val builtin_dim(El *el, Frame *f, Expr *call, Val *piped);

static bool frame_call(EvalScope *sc, Expr *call, CValue *out) {
    FrameScope *fs = (FrameScope *)sc;
    if (strcmp(call->str, "dim") != 0)
        return false;
    Val v = builtin_dim(fs->el, fs->f, call, NULL);
    *out = v.kind == VK_SCALAR ? v.cv : (CValue){0};
    return true;
}

static bool frame_lookup(EvalScope *sc, const char *name, CValue *out) {
    Frame *f = ((FrameScope *)sc)->f;
    Binding *b = lookup(f, name);
    if (b && (b->v.kind == VK_SCALAR || b->v.kind == VK_NONE)) { /* VK_NONE: an error already reported */
        *out = b->v.cv;
        return true;
    }
    return false;
}

static CValue scalar_eval(El *el, Frame *f, Expr *e, bool allow_enum) {
    FrameScope fs;
    memset(&fs, 0, sizeof fs);
    fs.sc.mod = frame_mod(el, f);
    fs.sc.lookup = frame_lookup;
    fs.sc.call = frame_call;
    fs.sc.allow_enum = allow_enum;
    fs.sc.mark_static = true;
    fs.f = f;
    fs.el = el;
    return eval_expr(el->ctx, &fs.sc, e, false);
}

static NameSlot *layer_slot(El *el, Frame *f, const char *explicit_name) {
    NameSlot *s = arena_alloc(A, sizeof *s);
    s->parent = f->slot;
    s->base = f->stmt_base ? f->stmt_base : "layer";
    s->in_loop = f->loop_depth > 0;
    if (explicit_name) {
        s->fixed = true;
        s->local = explicit_name;
    }
    if (f->nslots == f->capslots) {
        int cap = f->capslots ? f->capslots * 2 : 8;
        f->slots = arena_grow(A, f->slots, (size_t)f->nslots, (size_t)cap, sizeof *f->slots);
        f->capslots = cap;
    }
    f->slots[f->nslots++] = s;
    return s;
}

typedef struct SlotRef {
    NameSlot *slot;
    int order;
} SlotRef;

static int slot_cmp(const void *a, const void *b) {
    const SlotRef *x = a, *y = b;
    int c = strcmp(x->slot->base, y->slot->base);
    return c ? c : x->order - y->order;
}

/* Gives the layers of a finished scope their local names: sorted by base
 * name (then source order), so a scope of 100,000 layers is n log n. */
static void name_scope(El *el, Frame *f) {
    SlotRef *refs = arena_array(A, (size_t)f->nslots + 1, sizeof *refs);
    int n = 0;
    for (int i = 0; i < f->nslots; i++)
        if (!f->slots[i]->fixed)
            refs[n++] = (SlotRef){f->slots[i], i};
    qsort(refs, (size_t)n, sizeof *refs, slot_cmp);
    for (int i = 0; i < n;) {
        int j = i;
        bool loop = false;
        while (j < n && strcmp(refs[j].slot->base, refs[i].slot->base) == 0)
            loop |= refs[j++].slot->in_loop;
        if (j - i == 1 && !loop)
            refs[i].slot->local = refs[i].slot->base;
        else
            for (int k = i; k < j; k++)
                refs[k].slot->local = arena_printf(A, "%s.%d", refs[k].slot->base, k - i);
        i = j;
    }
}

/* name: "" on a block call adds no prefix (a block that only groups layers). */
static const char *full_name(El *el, NameSlot *s) {
    if (s->full)
        return s->full;
    const char *parent = s->parent ? full_name(el, s->parent) : "";
    if (!parent[0])
        s->full = s->local;
    else if (!s->local[0])
        s->full = parent;
    else
        s->full = arena_printf(A, "%s.%s", parent, s->local);
    return s->full;
}

/* ---- attributes ------------------------------------------------------------------------ */

static bool parse_default(const OpAttr *a, AttrValue *out) {
    const char *d = a->dflt;
    out->defaulted = true;
    switch (a->type) {
    case AT_INT: out->type = TY_INT; out->i = strtoll(d, NULL, 10); return true;
    case AT_FLOAT: out->type = TY_FLOAT; out->f = strtod(d, NULL); return true;
    case AT_FLOAT_NONE:
        if (strcmp(d, "none") == 0) {
            out->type = TY_ENUM, out->s = "none";
            return true;
        }
        out->type = TY_FLOAT, out->f = strtod(d, NULL);
        return true;
    case AT_BOOL: out->type = TY_BOOL; out->i = strcmp(d, "true") == 0; return true;
    case AT_STR:
    case AT_ENUM: out->type = a->type == AT_STR ? TY_STRING : TY_ENUM; out->s = d; return true;
    case AT_TENSOR: out->type = TY_TENSOR; out->tensor = NULL; return true;
    case AT_INT2:
    case AT_INTS:
    case AT_FLOATS: {
        out->type = TY_TUPLE;
        const char *p = d;
        if (*p == '(')
            p++;
        out->n = 0;
        while (*p && *p != ')' && out->n < SHAPE_MAX_RANK * 2) {
            char *end;
            double v = strtod(p, &end);
            if (end == p)
                return false; /* a reference such as "kernel": the caller copies */
            out->floats[out->n] = v;
            out->ints[out->n] = (int64_t)v;
            out->n++;
            p = end;
            while (*p == ',' || *p == ' ')
                p++;
        }
        if (a->type == AT_INT2 && out->n == 1) {
            out->ints[1] = out->ints[0];
            out->n = 2;
        }
        return true;
    }
    }
    return false;
}

static bool attr_in_range(const OpAttr *a, double x) {
    if (a->type == AT_ENUM || a->type == AT_BOOL || a->type == AT_STR || a->type == AT_TENSOR)
        return true;
    return x >= a->lo && x <= a->hi;
}

/* Converts a value to attribute a's type; false (after an error) when it does not fit. */
static bool set_attr(El *el, const OpInfo *op, const OpAttr *a, Val *v, Expr *e, AttrValue *out) {
    const CValue *c = &v->cv;
    const char *want = optab_attr_type_name(a->type);
    if (a->type == AT_TENSOR) {
        if (v->kind != VK_TENSOR) {
            diag_error(el->ctx, e->loc, "attribute '%s' of '%s' is a tensor (a named value)", a->name, op->name);
            return false;
        }
        out->type = TY_TENSOR;
        out->tensor = v->t;
        return true;
    }
    if (v->kind != VK_SCALAR) {
        diag_error(el->ctx, e->loc, "attribute '%s' of '%s' must be %s, found a tensor", a->name, op->name, want);
        return false;
    }
    bool ok = true;
    switch (a->type) {
    case AT_INT:
        ok = c->type == TY_INT;
        out->type = TY_INT, out->i = c->i;
        break;
    case AT_FLOAT_NONE:
        if ((c->type == TY_ENUM || c->type == TY_STRING) && strcmp(c->s, "none") == 0) {
            out->type = TY_ENUM, out->s = "none"; /* PyTorch's None; no range */
            return true;
        }
        ok = cv_is_number(c);
        out->type = TY_FLOAT, out->f = cv_number(c);
        break;
    case AT_FLOAT:
        ok = cv_is_number(c);
        out->type = TY_FLOAT, out->f = cv_number(c);
        break;
    case AT_BOOL:
        ok = c->type == TY_BOOL;
        out->type = TY_BOOL, out->i = c->i;
        break;
    case AT_STR:
        ok = c->type == TY_STRING;
        out->type = TY_STRING, out->s = c->s;
        break;
    case AT_ENUM: {
        ok = c->type == TY_ENUM || c->type == TY_STRING;
        if (!ok)
            break;
        out->type = TY_ENUM, out->s = c->s;
        const char *p = a->choices;
        bool found = false;
        const char *cands[16];
        int nc = 0;
        while (p && *p && nc < 16) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            char *choice = arena_strndup(A, p, len);
            cands[nc++] = choice;
            found |= strcmp(choice, c->s) == 0;
            p = bar ? bar + 1 : NULL;
        }
        if (!found) {
            diag_error(el->ctx, e->loc, "attribute '%s' of '%s' must be one of %s, found '%s'", a->name, op->name,
                       a->choices, c->s);
            diag_suggest(el->ctx, e->loc, c->s, cands, nc);
            return false;
        }
        return true;
    }
    case AT_INT2:
    case AT_INTS:
    case AT_FLOATS: {
        out->type = TY_TUPLE;
        out->n = 0;
        bool floats = a->type == AT_FLOATS;
        if (floats ? cv_is_number(c) : c->type == TY_INT) {
            out->ints[0] = c->type == TY_INT ? c->i : 0;
            out->floats[0] = cv_number(c);
            out->n = 1;
        } else if (c->type == TY_TUPLE && c->nitems <= SHAPE_MAX_RANK * 2) {
            for (int i = 0; i < c->nitems; i++) {
                const CValue *it = &c->items[i];
                if (floats ? !cv_is_number(it) : it->type != TY_INT)
                    ok = false;
                out->ints[i] = it->type == TY_INT ? it->i : 0;
                out->floats[i] = cv_is_number(it) ? cv_number(it) : 0;
            }
            out->n = c->nitems;
        } else {
            ok = false;
        }
        if (ok && a->type == AT_INT2) {
            if (out->n == 1)
                out->ints[1] = out->ints[0], out->n = 2;
            else if (out->n != 2)
                ok = false;
        }
        if (ok && out->n == 0) {
            diag_error(el->ctx, e->loc, "attribute '%s' of '%s' needs at least one value", a->name, op->name);
            return false;
        }
        break;
    }
    default: break;
    }
    if (!ok) {
        diag_error(el->ctx, e->loc, "attribute '%s' of '%s' must be %s, found %s", a->name, op->name, want,
                   cv_str(el->ctx, c));
        return false;
    }
    /* Ranges from ops.def (per element for tuples). */
    int n = out->type == TY_TUPLE ? out->n : 1;
    for (int i = 0; i < n; i++) {
        double x = out->type == TY_TUPLE ? (a->type == AT_FLOATS ? out->floats[i] : (double)out->ints[i])
                   : out->type == TY_INT ? (double)out->i : out->f;
        if (!attr_in_range(a, x)) {
            diag_error(el->ctx, e->loc, "attribute '%s' of '%s' is %g, outside [%g, %g]", a->name, op->name, x, a->lo,
                       a->hi);
            return false;
        }
    }
    return true;
}

/* ---- evaluation ------------------------------------------------------------------------ */

static Val eval_val(El *el, Frame *f, Expr *e);
static Val call_value(El *el, Frame *f, Expr *call, Val *piped, Loc piped_loc);

static Val scalar(CValue c) {
    Val v = {VK_SCALAR, c, NULL, NULL, 0};
    if (!c.type)
        v.kind = VK_NONE;
    return v;
}

static Val tensor(GValue *t) {
    Val v = {0};
    v.kind = t ? VK_TENSOR : VK_NONE;
    v.t = t;
    return v;
}

/* Whether an expression is tensor-valued, without evaluating it (so scalar
 * expressions go to eval.c with full arithmetic, and tensor arithmetic
 * becomes ops). */
static bool is_tensor_expr(El *el, Frame *f, Expr *e, int depth) {
    if (depth > 2000)
        return false;
    switch (e->kind) {
    case EX_NAME: {
        Binding *b = lookup(f, e->str);
        return b && (b->v.kind == VK_TENSOR || b->v.kind == VK_MULTI);
    }
    case EX_FIELD: return f->step != NULL;
    case EX_CALL: {
        const char *n = e->str;
        return optab_find(n) || ast_find_network(frame_mod(el, f), n);
    }
    case EX_PIPE: return true;
    case EX_BINARY:
        return is_tensor_expr(el, f, e->lhs, depth + 1) || is_tensor_expr(el, f, e->rhs, depth + 1);
    case EX_UNARY: return is_tensor_expr(el, f, e->lhs, depth + 1);
    case EX_COND: return is_tensor_expr(el, f, e->lhs, depth + 1) || is_tensor_expr(el, f, e->rhs, depth + 1);
    case EX_INDEX: return is_tensor_expr(el, f, e->lhs, depth + 1);
    default: return false;
    }
}

static GValue *need_tensor(El *el, Val v, Expr *e, const char *what) {
    if (v.kind == VK_TENSOR)
        return v.t;
    if (v.kind == VK_MULTI)
        diag_error(el->ctx, e->loc, "%s needs one tensor, found %d values; assign them with 'a, b = ...'", what, v.nts);
    else if (v.kind == VK_SCALAR)
        diag_error(el->ctx, e->loc, "%s needs a tensor, found %s", what, cv_str(el->ctx, &v.cv));
    return NULL;
}

static bool same_shape(const GValue *a, const GValue *b) {
    if (a->shape.rank != b->shape.rank || a->shape.batched != b->shape.batched)
        return false;
    for (int i = 0; i < a->shape.rank; i++)
        if (a->shape.dim[i] != b->shape.dim[i])
            return false;
    return true;
}

static GNode *make_op(El *el, lg_op_id id, GValue **ins, int nins, Loc loc, Expr *call);
static bool infer(El *el, GNode *n);

/* Builds a binary elementwise op (a + b, a * b) or a scale (c * x). */
static Val arith_op(El *el, Frame *f, Expr *e) {
    Val a = eval_val(el, f, e->lhs);
    Val b = eval_val(el, f, e->rhs);
    if (a.kind == VK_NONE || b.kind == VK_NONE)
        return (Val){0};
    Operator op = e->op;
    if (a.kind == VK_TENSOR && b.kind == VK_TENSOR && (op == OPR_ADD || op == OPR_MUL || op == OPR_SUB)) {
        GValue *rhs = b.t;
        if (op == OPR_SUB) {
            GNode *neg = make_op(el, LG_OP_SCALE, &rhs, 1, e->str_loc, NULL);
            neg->attrs[0].type = TY_FLOAT;
            neg->attrs[0].f = -1;
            if (!infer(el, neg))
                return (Val){0};
            rhs = neg->outputs[0];
        }
        GValue *ins[2] = {a.t, rhs};
        GNode *n = make_op(el, op == OPR_MUL ? LG_OP_MUL : LG_OP_ADD, ins, 2, e->str_loc, NULL);
        n->loc = e->loc;
        if (!infer(el, n))
            return (Val){0};
        return tensor(n->outputs[0]);
    }
    bool a_num = a.kind == VK_SCALAR && cv_is_number(&a.cv);
    bool b_num = b.kind == VK_SCALAR && cv_is_number(&b.cv);
    if ((op == OPR_MUL && ((a_num && b.kind == VK_TENSOR) || (b_num && a.kind == VK_TENSOR))) ||
        (op == OPR_DIV && a.kind == VK_TENSOR && b_num)) {
        GValue *t = a.kind == VK_TENSOR ? a.t : b.t;
        double c = a_num ? cv_number(&a.cv) : cv_number(&b.cv);
        if (op == OPR_DIV) {
            if (c == 0) {
                diag_error(el->ctx, e->str_loc, "division by zero");
                return (Val){0};
            }
            c = 1 / c;
        }
        GNode *n = make_op(el, LG_OP_SCALE, &t, 1, e->loc, NULL);
        n->attrs[0].type = TY_FLOAT;
        n->attrs[0].f = c;
        if (!infer(el, n))
            return (Val){0};
        return tensor(n->outputs[0]);
    }
    diag_error(el->ctx, e->str_loc, "operator '%s' is not defined between %s and %s", ast_operator_name(op),
               a.kind == VK_TENSOR ? shape_str(el, a.t) : cv_str(el->ctx, &a.cv),
               b.kind == VK_TENSOR ? shape_str(el, b.t) : cv_str(el->ctx, &b.cv));
    return (Val){0};
}

/* b.image, b.label, ...: the batch's fields, one input node each per graph. */
static Val batch_field(El *el, Frame *f, Expr *e) {
    if (e->lhs->kind != EX_NAME || strcmp(e->lhs->str, f->step->batch) != 0) {
        diag_error(el->ctx, e->loc, "expected a batch field such as '%s.image'", f->step->batch);
        return (Val){0};
    }
    for (int i = 0; i < el->g->ninputs; i++)
        if (strcmp(el->g->inputs[i]->producer->field, e->str) == 0)
            return tensor(el->g->inputs[i]);
    DataSplit *ds = f->split;
    int M = ds ? ds->max_boxes : 0;
    static const char *const fields[] = {"image", "label", "boxes", "box_labels", "box_mask", "targets"};
    int k = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(fields[i], e->str) == 0)
            k = i;
    if (k < 0 || (k >= 2 && M == 0)) {
        if (k >= 2)
            diag_error(el->ctx, e->str_loc, "batch field '%s' exists only for detection data (format voc)", e->str);
        else {
            diag_error(el->ctx, e->str_loc, "unknown batch field '%s'", e->str);
            diag_suggest(el->ctx, e->str_loc, e->str, fields, M ? 6 : 2);
        }
        return (Val){0};
    }
    Shape sh = {0};
    DType dt = DT_F32;
    switch (k) {
    case 0: sh = ds ? ds->image_shape : (Shape){3, {1, 28, 28}, true}; break;
    case 1: sh = (Shape){0, {0}, true}; dt = DT_I32; break;
    case 2:
    case 5: sh = (Shape){2, {M, 4}, true}; break;
    case 3: sh = (Shape){1, {M}, true}; dt = DT_I32; break;
    case 4: sh = (Shape){1, {M}, true}; dt = DT_U8; break;
    }
    sh.batched = true;
    GNode *n = new_node(el, GN_INPUT, e->loc);
    n->field = fields[k];
    node_outputs(el, n, 1);
    GValue *v = node_out(el, n, 0, dt, sh, arena_printf(A, "%s.%s", f->step->batch, fields[k]));
    /* The field's shape comes from the data split: point there in notes. */
    if (ds)
        v->loc = ds->loc;
    el->g->inputs = arena_grow(A, el->g->inputs, (size_t)el->g->ninputs, (size_t)el->g->ninputs + 1,
                               sizeof *el->g->inputs);
    el->g->inputs[el->g->ninputs++] = v;
    return tensor(v);
}

static Val eval_val_inner(El *el, Frame *f, Expr *e);

/* Expression nesting is bounded here (a + a + ... with 100,000 terms is a
 * tree that deep) so elaboration cannot overflow the stack. */
static Val eval_val(El *el, Frame *f, Expr *e) {
    if (el->depth >= 2000) {
        diag_error(el->ctx, e->loc, "expression nested more than 2000 levels deep");
        return (Val){0};
    }
    el->depth++;
    Val v = eval_val_inner(el, f, e);
    el->depth--;
    return v;
}

static Val eval_val_inner(El *el, Frame *f, Expr *e) {
    if (!is_tensor_expr(el, f, e, 0) && e->kind != EX_NAME) {
        if (e->kind == EX_CALL && strcmp(e->str, "dim") == 0)
            return call_value(el, f, e, NULL, e->loc);
        return scalar(scalar_eval(el, f, e, false));
    }
    switch (e->kind) {
    case EX_NAME: {
        Binding *b = lookup(f, e->str);
        if (b)
            return b->v;
        if (ast_find_hparam(frame_mod(el, f), e->str))
            return scalar(scalar_eval(el, f, e, false));
        if (optab_find(e->str) || ast_find_network(frame_mod(el, f), e->str)) {
            diag_error(el->ctx, e->loc, "'%s' is an op; call it ('%s(x)') or pipe into it ('x |> %s')", e->str, e->str,
                       e->str);
            return (Val){0};
        }
        return scalar(scalar_eval(el, f, e, false)); /* reports the unknown name */
    }
    case EX_FIELD:
        if (f->step)
            return batch_field(el, f, e);
        diag_error(el->ctx, e->loc, "fields ('a.b') are read from a step's batch only");
        return (Val){0};
    case EX_CALL: return call_value(el, f, e, NULL, e->loc);
    case EX_PIPE: {
        int n = 0;
        Expr *p = e;
        while (p->kind == EX_PIPE)
            p = p->lhs, n++;
        Val v = eval_val(el, f, p);
        Expr **st = arena_array(A, (size_t)n, sizeof *st);
        int k = n;
        for (p = e; p->kind == EX_PIPE; p = p->lhs)
            st[--k] = p->rhs;
        Loc vloc = p->loc;
        for (k = 0; k < n && v.kind != VK_NONE; k++) {
            Expr *stage = st[k];
            Expr call;
            if (stage->kind == EX_NAME) {
                call = *stage;
                call.kind = EX_CALL;
                call.args = NULL;
                call.nargs = 0;
                call.str_loc = stage->loc;
                stage = &call;
                v = call_value(el, f, stage, &v, vloc);
                /* the temporary call node must not be kept by GNode.call */
                if (v.kind == VK_TENSOR && v.t->producer && v.t->producer->call == &call)
                    v.t->producer->call = st[k];
                if (v.kind == VK_MULTI)
                    for (int i = 0; i < v.nts; i++)
                        if (v.ts[i]->producer && v.ts[i]->producer->call == &call)
                            v.ts[i]->producer->call = st[k];
            } else {
                v = call_value(el, f, stage, &v, vloc);
            }
            vloc = st[k]->loc;
        }
        return v;
    }
    case EX_BINARY: return arith_op(el, f, e);
    case EX_UNARY: {
        Val a = eval_val(el, f, e->lhs);
        if (a.kind != VK_TENSOR || e->op != OPR_NEG) {
            if (a.kind != VK_NONE)
                diag_error(el->ctx, e->loc, "operator '%s' is not defined on a tensor", ast_operator_name(e->op));
            return (Val){0};
        }
        GNode *n = make_op(el, LG_OP_SCALE, &a.t, 1, e->loc, NULL);
        n->attrs[0].type = TY_FLOAT;
        n->attrs[0].f = -1;
        return infer(el, n) ? tensor(n->outputs[0]) : (Val){0};
    }
    case EX_COND: {
        CValue c = scalar_eval(el, f, e->cond, false);
        if (!c.type)
            return (Val){0};
        if (c.type != TY_BOOL) {
            diag_error(el->ctx, e->cond->loc, "a condition must be a bool, found %s", cv_str(el->ctx, &c));
            return (Val){0};
        }
        return eval_val(el, f, c.i ? e->lhs : e->rhs);
    }
    case EX_INDEX: {
        Val a = eval_val(el, f, e->lhs);
        CValue i = scalar_eval(el, f, e->rhs, false);
        if (a.kind != VK_MULTI || i.type != TY_INT) {
            if (a.kind != VK_NONE && i.type)
                diag_error(el->ctx, e->loc, "indexing takes the values of a several-output op and an int");
            return (Val){0};
        }
        int64_t k = i.i < 0 ? i.i + a.nts : i.i;
        if (k < 0 || k >= a.nts) {
            diag_error(el->ctx, e->rhs->loc, "index %lld is out of range for %d outputs", (long long)i.i, a.nts);
            return (Val){0};
        }
        return tensor(a.ts[k]);
    }
    default: return scalar(scalar_eval(el, f, e, false));
    }
}

/* ---- calls: ops, blocks, networks, builtins -------------------------------------------- */

static GNode *make_op(El *el, lg_op_id id, GValue **ins, int nins, Loc loc, Expr *call) {
    const OpInfo *op = optab_get(id);
    GNode *n = new_node(el, GN_OP, loc);
    n->op = id;
    n->call = call;
    n->ninputs = nins;
    n->inputs = arena_array(A, (size_t)nins, sizeof *n->inputs);
    memcpy(n->inputs, ins, (size_t)nins * sizeof *ins);
    n->nattrs = op->nattrs;
    n->attrs = arena_array(A, (size_t)op->nattrs, sizeof *n->attrs);
    for (int i = 0; i < op->nattrs; i++)
        if (op->attrs[i].dflt && !parse_default(&op->attrs[i], &n->attrs[i]))
            memset(&n->attrs[i], 0, sizeof n->attrs[i]);
    for (int i = 0; i < nins; i++)
        ins[i]->uses++;
    return n;
}

static Val builtin_dim(El *el, Frame *f, Expr *call, Val *piped) {
    /* dim(x, i): the size of dimension i of x's per-sample shape */
    Val args[2];
    int na = 0;
    if (piped)
        args[na++] = *piped;
    for (int i = 0; i < call->nargs && na < 2; i++)
        args[na++] = eval_val(el, f, call->args[i].value);
    if (na != 2 || call->nargs + (piped ? 1 : 0) != 2) {
        diag_error(el->ctx, call->loc, "dim takes a tensor and a dimension: dim(x, 0)");
        return (Val){0};
    }
    if (args[0].kind != VK_TENSOR || args[1].kind != VK_SCALAR || args[1].cv.type != TY_INT) {
        if (args[0].kind != VK_NONE && args[1].kind != VK_NONE)
            diag_error(el->ctx, call->loc, "dim takes a tensor and an int: dim(x, 0)");
        return (Val){0};
    }
    const Shape *s = &args[0].t->shape;
    int64_t k = args[1].cv.i < 0 ? args[1].cv.i + s->rank : args[1].cv.i;
    if (k < 0 || k >= s->rank) {
        diag_error(el->ctx, call->loc, "dimension %lld is out of range for %s", (long long)args[1].cv.i,
                   shape_str(el, args[0].t));
        return (Val){0};
    }
    return scalar(cv_int(s->dim[k]));
}

static Val op_call(El *el, Frame *f, const OpInfo *op, Expr *call, Val *piped, Loc piped_loc) {
    (void)piped_loc;
    /* In the arena, not on the stack: calls nest inside call arguments. */
    int maxins = (piped && piped->kind == VK_MULTI ? piped->nts : 1) + call->nargs * 8 + 1;
    if (maxins > 64)
        maxins = 64;
    GValue **ins = arena_array(A, (size_t)maxins, sizeof *ins);
    int nins = 0;
    int na = op->nattrs ? op->nattrs : 1;
    AttrValue *set = arena_array(A, (size_t)na, sizeof *set);
    bool *given = arena_array(A, (size_t)na, sizeof *given);
    Expr **given_at = arena_array(A, (size_t)na, sizeof *given_at);
    const char *explicit_name = NULL;
    bool bad = false;
    if (piped) {
        if (piped->kind == VK_MULTI) {
            for (int i = 0; i < piped->nts && nins < maxins; i++)
                ins[nins++] = piped->ts[i];
        } else if (piped->kind == VK_TENSOR) {
            ins[nins++] = piped->t;
        } else {
            diag_error(el->ctx, call->str_loc, "'%s' needs a tensor piped in", op->name);
            return (Val){0};
        }
    }
    int npos_attr = 0;
    for (int i = 0; i < call->nargs; i++) {
        Arg *a = &call->args[i];
        if (a->key && strcmp(a->key, "name") == 0) {
            CValue c = scalar_eval(el, f, a->value, false);
            if (c.type != TY_STRING) {
                if (c.type)
                    diag_error(el->ctx, a->value->loc, "'name' is a string");
                bad = true;
            } else if (op->kind != OPK_LAYER) {
                diag_error(el->ctx, a->key_loc, "'name' names a layer's parameters; '%s' has none", op->name);
                bad = true;
            } else {
                explicit_name = c.s;
            }
            continue;
        }
        int k = -1;
        if (a->key) {
            k = optab_attr_index(op, a->key);
            if (k < 0) {
                diag_error(el->ctx, a->key_loc, "op '%s' has no attribute '%s'", op->name, a->key);
                const char *cands[33];
                int nc = 0;
                for (int j = 0; j < op->nattrs; j++)
                    cands[nc++] = op->attrs[j].name;
                if (op->kind == OPK_LAYER)
                    cands[nc++] = "name";
                if (!diag_suggest(el->ctx, a->key_loc, a->key, cands, nc) && nc)
                    diag_note(el->ctx, a->key_loc, "'%s' takes %s%s", op->name, cands[0],
                              nc > 1 ? arena_printf(A, " ... %s", cands[nc - 1]) : "");
                bad = true;
                continue;
            }
        }
        /* `none` of a FLOAT_OR_NONE attribute reads as a word, like an enum choice */
        bool enum_ctx = k >= 0 && (op->attrs[k].type == AT_ENUM ||
                                   (op->attrs[k].type == AT_FLOAT_NONE && a->value->kind == EX_NAME &&
                                    strcmp(a->value->str, "none") == 0));
        Val v;
        if (enum_ctx || (k < 0 && !is_tensor_expr(el, f, a->value, 0) && a->value->kind == EX_NAME &&
                         !lookup(f, a->value->str) && !ast_find_hparam(frame_mod(el, f), a->value->str)))
            v = scalar(scalar_eval(el, f, a->value, true));
        else
            v = eval_val(el, f, a->value);
        if (v.kind == VK_NONE) {
            bad = true;
            continue;
        }
        if (!a->key && (v.kind == VK_TENSOR || v.kind == VK_MULTI)) {
            if (npos_attr > 0) {
                diag_error(el->ctx, a->value->loc, "tensor inputs come before attributes in a call to '%s'", op->name);
                bad = true;
                continue;
            }
            if (v.kind == VK_MULTI)
                for (int j = 0; j < v.nts && nins < maxins; j++)
                    ins[nins++] = v.ts[j];
            else if (nins < maxins)
                ins[nins++] = v.t;
            continue;
        }
        if (!a->key) {
            /* positional attribute: the next in ops.def order */
            int seen = 0;
            for (int j = 0; j < op->nattrs; j++)
                if (op->attrs[j].type != AT_TENSOR && seen++ == npos_attr)
                    k = j;
            npos_attr++;
            if (k < 0) {
                diag_error(el->ctx, a->value->loc, "too many arguments for '%s' (it takes %d attribute%s)", op->name,
                           op->nattrs, op->nattrs == 1 ? "" : "s");
                bad = true;
                continue;
            }
            if (a->value->kind == EX_NAME && (op->attrs[k].type == AT_ENUM || (op->attrs[k].type == AT_FLOAT_NONE &&
                                                                               strcmp(a->value->str, "none") == 0)))
                v = scalar(scalar_eval(el, f, a->value, true));
        }
        if (given[k]) {
            diag_error(el->ctx, a->value->loc, "attribute '%s' of '%s' is given twice", op->attrs[k].name, op->name);
            diag_note(el->ctx, given_at[k]->loc, "first given here");
            bad = true;
            continue;
        }
        memset(&set[k], 0, sizeof set[k]);
        if (!set_attr(el, op, &op->attrs[k], &v, a->value, &set[k])) {
            bad = true;
            continue;
        }
        given[k] = true;
        given_at[k] = a->value;
    }
    if (bad)
        return (Val){0};
    for (int k = 0; k < op->nattrs; k++)
        if (!given[k] && !op->attrs[k].dflt) {
            diag_error(el->ctx, call->loc, "op '%s' needs attribute '%s' (%s)", op->name, op->attrs[k].name,
                       op->attrs[k].doc);
            bad = true;
        }
    if (nins < op->min_in || (op->max_in >= 0 && nins > op->max_in)) {
        if (op->min_in == op->max_in)
            diag_error(el->ctx, call->loc, "op '%s' takes %d tensor input%s, found %d", op->name, op->min_in,
                       op->min_in == 1 ? "" : "s", nins);
        else if (op->max_in < 0)
            diag_error(el->ctx, call->loc, "op '%s' takes at least %d tensor inputs, found %d", op->name, op->min_in,
                       nins);
        else
            diag_error(el->ctx, call->loc, "op '%s' takes %d to %d tensor inputs, found %d", op->name, op->min_in,
                       op->max_in, nins);
        bad = true;
    }
    if (bad)
        return (Val){0};
    GNode *n = make_op(el, op->id, ins, nins, call->loc, call);
    for (int k = 0; k < op->nattrs; k++) {
        if (given[k]) {
            n->attrs[k] = set[k];
        } else if (op->attrs[k].dflt && !n->attrs[k].type) {
            /* a default naming another attribute (stride defaults to kernel) */
            int src = optab_attr_index(op, op->attrs[k].dflt);
            if (src >= 0) {
                n->attrs[k] = n->attrs[src];
                n->attrs[k].defaulted = true;
            }
        }
    }
    if (op->kind == OPK_LAYER && f->step) {
        diag_error(el->ctx, call->str_loc, "layer '%s' owns parameters, so it belongs in a network; call that network "
                                           "from the step", op->name);
        return (Val){0};
    }
    if (op->kind == OPK_LAYER)
        n->layer = (const char *)layer_slot(el, f, explicit_name); /* resolved to a string at the end */
    if (!infer(el, n))
        return (Val){0};
    /* Intermediate values are named after the statement that computes them
     * (summary rows, messages); the statement's final value keeps it too. */
    for (int i = 0; i < n->noutputs; i++)
        if (!n->outputs[i]->name && f->stmt_base)
            n->outputs[i]->name = f->stmt_base;
    if (n->noutputs == 1)
        return tensor(n->outputs[0]);
    Val v = {0};
    v.kind = VK_MULTI;
    v.ts = n->outputs;
    v.nts = n->noutputs;
    return v;
}

static Val run_body(El *el, Frame *f, Stmt **body, int n, bool *returned);

/* A block (or a network used inside a network): elaborated in place. */
static Val block_call(El *el, Frame *f, Network *blk, Expr *call, Val *piped) {
    if (f->depth >= MAX_BLOCK_DEPTH) {
        diag_error(el->ctx, call->loc, "blocks nested more than %d deep", MAX_BLOCK_DEPTH);
        return (Val){0};
    }
    Frame nf = {0};
    nf.net = blk;
    nf.caller = f;
    nf.call_loc = call->loc;
    nf.depth = f->depth + 1;
    nf.step = NULL;
    const char *explicit_name = NULL;
    Val *vals = arena_array(A, (size_t)blk->nparams, sizeof *vals);
    Expr **at = arena_array(A, (size_t)blk->nparams, sizeof *at);
    int next_tensor = 0, next_scalar = 0;
    bool bad = false;
    if (piped) {
        for (; next_tensor < blk->nparams && blk->params[next_tensor].type != TY_TENSOR; next_tensor++)
            ;
        if (next_tensor >= blk->nparams) {
            diag_error(el->ctx, call->loc, "'%s' has no tensor input to pipe into", blk->name);
            return (Val){0};
        }
        vals[next_tensor] = *piped;
        at[next_tensor] = call;
        next_tensor++;
    }
    for (int i = 0; i < call->nargs; i++) {
        Arg *a = &call->args[i];
        if (a->key && strcmp(a->key, "name") == 0) {
            CValue c = scalar_eval(el, f, a->value, false);
            if (c.type != TY_STRING) {
                if (c.type)
                    diag_error(el->ctx, a->value->loc, "'name' is a string");
                bad = true;
            } else {
                explicit_name = c.s;
            }
            continue;
        }
        int k = -1;
        if (a->key) {
            for (int j = 0; j < blk->nparams; j++)
                if (strcmp(blk->params[j].name, a->key) == 0)
                    k = j;
            if (k < 0) {
                diag_error(el->ctx, a->key_loc, "'%s' has no parameter '%s'", blk->name, a->key);
                const char *cands[64];
                int nc = 0;
                for (int j = 0; j < blk->nparams && nc < 64; j++)
                    cands[nc++] = blk->params[j].name;
                diag_suggest(el->ctx, a->key_loc, a->key, cands, nc);
                bad = true;
                continue;
            }
        }
        bool enum_ctx = k >= 0 && blk->params[k].type == TY_ENUM;
        Val v = enum_ctx ? scalar(scalar_eval(el, f, a->value, true)) : eval_val(el, f, a->value);
        if (v.kind == VK_NONE) {
            bad = true;
            continue;
        }
        if (k < 0) {
            bool is_t = v.kind == VK_TENSOR || v.kind == VK_MULTI;
            int *next = is_t ? &next_tensor : &next_scalar;
            for (; *next < blk->nparams && ((blk->params[*next].type == TY_TENSOR) != is_t || at[*next]); (*next)++)
                ;
            if (*next >= blk->nparams) {
                diag_error(el->ctx, a->value->loc, "too many %s arguments for '%s'", is_t ? "tensor" : "scalar",
                           blk->name);
                bad = true;
                continue;
            }
            k = (*next)++;
            if (!is_t && blk->params[k].type == TY_ENUM && a->value->kind == EX_NAME)
                v = scalar(scalar_eval(el, f, a->value, true));
        }
        if (at[k]) {
            diag_error(el->ctx, a->value->loc, "parameter '%s' of '%s' is given twice", blk->params[k].name, blk->name);
            bad = true;
            continue;
        }
        vals[k] = v;
        at[k] = a->value;
    }
    /* types, defaults */
    for (int k = 0; k < blk->nparams && !bad; k++) {
        BlockParam *p = &blk->params[k];
        if (!at[k]) {
            if (p->dflt) {
                vals[k] = scalar(scalar_eval(el, f, p->dflt, p->type == TY_ENUM));
                if (vals[k].kind == VK_NONE)
                    bad = true;
            } else {
                diag_error(el->ctx, call->loc, "'%s' needs %s '%s'", blk->name,
                           p->type == TY_TENSOR ? "input" : "parameter", p->name);
                diag_note(el->ctx, p->loc, "declared here");
                bad = true;
                continue;
            }
        }
        Val *v = &vals[k];
        Loc vloc = at[k] ? at[k]->loc : call->loc;
        if (p->type == TY_TENSOR) {
            if (v->kind != VK_TENSOR) {
                diag_error(el->ctx, vloc, "input '%s' of '%s' must be a tensor", p->name, blk->name);
                bad = true;
            }
            continue;
        }
        CValue *c = &v->cv;
        bool ok = v->kind == VK_SCALAR;
        if (ok) {
            switch (p->type) {
            case TY_INT: ok = c->type == TY_INT; break;
            case TY_FLOAT:
                ok = cv_is_number(c);
                if (ok)
                    *c = cv_float(cv_number(c));
                break;
            case TY_BOOL: ok = c->type == TY_BOOL; break;
            case TY_STRING: ok = c->type == TY_STRING; break;
            case TY_TUPLE: /* shape: an int or a tuple of ints (an int k means (k, k)) */
                if (c->type == TY_INT) {
                    CValue *items = arena_array(A, 2, sizeof *items);
                    items[0] = items[1] = *c;
                    *c = (CValue){.type = TY_TUPLE, .items = items, .nitems = 2};
                }
                ok = c->type == TY_TUPLE && c->nitems > 0;
                for (int j = 0; ok && j < c->nitems; j++)
                    ok = c->items[j].type == TY_INT;
                break;
            case TY_ENUM: {
                ok = c->type == TY_ENUM || c->type == TY_STRING;
                bool found = false;
                for (int j = 0; ok && j < p->nchoices; j++)
                    found |= strcmp(p->choices[j], c->s) == 0;
                if (ok && !found) {
                    diag_error(el->ctx, vloc, "'%s' is not a choice of parameter '%s' of '%s'", c->s, p->name,
                               blk->name);
                    diag_suggest(el->ctx, vloc, c->s, p->choices, p->nchoices);
                    bad = true;
                    continue;
                }
                if (ok)
                    c->type = TY_ENUM;
                break;
            }
            default: break;
            }
        }
        if (!ok) {
            diag_error(el->ctx, vloc, "parameter '%s' of '%s' must be %s, found %s", p->name, blk->name,
                       p->type == TY_TUPLE ? "a shape (a tuple of ints)" : ast_type_name(p->type),
                       v->kind == VK_SCALAR ? cv_str(el->ctx, c) : "a tensor");
            bad = true;
        }
    }
    if (bad)
        return (Val){0};
    /* The instance's name, and the shapes declared for a network's inputs. */
    nf.slot = layer_slot(el, f, explicit_name);
    for (int k = 0; k < blk->nparams; k++) {
        BlockParam *p = &blk->params[k];
        if (p->type == TY_TENSOR && p->tensor) {
            Shape want = {p->tensor->ndims, {0}, true};
            for (int d = 0; d < p->tensor->ndims; d++) {
                CValue c = scalar_eval(el, f, p->tensor->dims[d], false);
                want.dim[d] = c.type == TY_INT ? c.i : -1;
            }
            GValue tmp = *vals[k].t;
            tmp.shape = want;
            tmp.dtype = p->tensor->dtype;
            if (!same_shape(&tmp, vals[k].t) || tmp.dtype != vals[k].t->dtype) {
                diag_error(el->ctx, at[k] ? at[k]->loc : call->loc, "input '%s' of '%s' is %s, found %s", p->name,
                           blk->name, shape_str(el, &tmp), shape_str(el, vals[k].t));
                note_producer(el, vals[k].t);
                return (Val){0};
            }
        }
        bind(el, &nf, p->name, vals[k]);
    }
    bool returned = false;
    Val r = run_body(el, &nf, blk->body, blk->nbody, &returned);
    name_scope(el, &nf);
    if (!returned && r.kind == VK_NONE)
        return (Val){0};
    return r;
}

static Val call_value(El *el, Frame *f, Expr *call, Val *piped, Loc piped_loc) {
    const char *name = call->str;
    const OpInfo *op = optab_find(name);
    if (op)
        return op_call(el, f, op, call, piped, piped_loc);
    Network *n = ast_find_network(frame_mod(el, f), name);
    if (n && f->step && !n->is_block) {
        /* a step calls a network: one GN_CALL node */
        if (!n->graph) {
            diag_error(el->ctx, call->str_loc, "network '%s' has errors", name);
            return (Val){0};
        }
        GValue *ins[16];
        int nins = 0;
        if (piped && piped->kind == VK_TENSOR)
            ins[nins++] = piped->t;
        for (int i = 0; i < call->nargs; i++) {
            if (call->args[i].key) {
                diag_error(el->ctx, call->args[i].key_loc, "a network call takes its inputs by position");
                return (Val){0};
            }
            Val v = eval_val(el, f, call->args[i].value);
            GValue *t = need_tensor(el, v, call->args[i].value, arena_printf(A, "network '%s'", name));
            if (!t)
                return (Val){0};
            if (nins < 16)
                ins[nins++] = t;
        }
        Graph *cg = n->graph;
        if (nins != cg->ninputs) {
            diag_error(el->ctx, call->loc, "network '%s' takes %d input%s, found %d", name, cg->ninputs,
                       cg->ninputs == 1 ? "" : "s", nins);
            return (Val){0};
        }
        for (int i = 0; i < nins; i++)
            if (!same_shape(ins[i], cg->inputs[i]) || ins[i]->dtype != cg->inputs[i]->dtype) {
                diag_error(el->ctx, call->loc, "network '%s' expects input '%s' of %s, found %s", name,
                           cg->inputs[i]->name, shape_str(el, cg->inputs[i]), shape_str(el, ins[i]));
                note_producer(el, ins[i]);
                diag_note(el->ctx, cg->inputs[i]->loc, "'%s' is declared here", cg->inputs[i]->name);
                return (Val){0};
            }
        GNode *g = new_node(el, GN_CALL, call->loc);
        g->callee = n;
        g->call = call;
        g->ninputs = nins;
        g->inputs = arena_array(A, (size_t)nins, sizeof *g->inputs);
        for (int i = 0; i < nins; i++) {
            g->inputs[i] = ins[i];
            ins[i]->uses++;
        }
        node_outputs(el, g, cg->noutputs);
        for (int i = 0; i < cg->noutputs; i++)
            node_out(el, g, i, cg->outputs[i]->dtype, cg->outputs[i]->shape, arena_printf(A, "%s:%d", name, i));
        int64_t flops = 0;
        for (int i = 0; i < cg->nnodes; i++)
            flops += cg->nodes[i]->flops;
        g->flops = flops;
        if (cg->noutputs == 1)
            return tensor(g->outputs[0]);
        Val v = {0};
        v.kind = VK_MULTI;
        v.ts = g->outputs;
        v.nts = g->noutputs;
        return v;
    }
    if (n)
        return block_call(el, f, n, call, piped);
    if (strcmp(name, "dim") == 0)
        return builtin_dim(el, f, call, piped);
    if (piped) {
        diag_error(el->ctx, call->str_loc, "unknown op or block '%s'", name);
        return (Val){0};
    }
    return scalar(scalar_eval(el, f, call, false));
}

/* ---- statements ---------------------------------------------------------------------------- */

static Val run_stmt(El *el, Frame *f, Stmt *s, bool *returned) {
    switch (s->kind) {
    case ST_ASSIGN: {
        f->stmt_base = s->names[0];
        Val v = eval_val(el, f, s->value);
        f->stmt_base = NULL;
        if (v.kind == VK_NONE) {
            /* Bind the names anyway (to nothing) so later uses stay quiet. */
            for (int i = 0; i < s->nnames; i++)
                bind(el, f, s->names[i], v);
            break;
        }
        if (s->nnames > 1) {
            if (v.kind != VK_MULTI || v.nts != s->nnames) {
                diag_error(el->ctx, s->loc, "%d names for %d value%s", s->nnames, v.kind == VK_MULTI ? v.nts : 1,
                           v.kind == VK_MULTI && v.nts != 1 ? "s" : "");
                break;
            }
            for (int i = 0; i < s->nnames; i++) {
                if (!v.ts[i]->name || v.ts[i]->producer->kind != GN_INPUT)
                    v.ts[i]->name = s->names[i];
                bind(el, f, s->names[i], tensor(v.ts[i]));
            }
            break;
        }
        if (v.kind == VK_TENSOR && v.t->producer && v.t->producer->kind != GN_INPUT) {
            v.t->name = s->names[0];
            v.t->loc = s->loc;
        }
        bind(el, f, s->names[0], v);
        break;
    }
    case ST_LOG: {
        f->stmt_base = s->names[0];
        Val v = eval_val(el, f, s->value);
        f->stmt_base = NULL;
        GValue *t = v.kind == VK_NONE ? NULL : need_tensor(el, v, s->value, "log");
        if (!t)
            break;
        if (t->shape.rank != 0) {
            diag_error(el->ctx, s->value->loc, "'log %s' needs a scalar (a loss or a metric), found %s", s->names[0],
                       shape_str(el, t));
            note_producer(el, t);
            break;
        }
        Graph *g = el->g;
        for (int i = 0; i < g->nlogs; i++)
            if (strcmp(g->log_names[i], s->names[0]) == 0) {
                diag_error(el->ctx, s->name_locs[0], "'%s' is logged twice in step '%s'", s->names[0], g->name);
                break;
            }
        int n = g->nlogs + 1;
        g->log_names = arena_grow(A, g->log_names, (size_t)g->nlogs, (size_t)n, sizeof *g->log_names);
        g->log_values = arena_grow(A, g->log_values, (size_t)g->nlogs, (size_t)n, sizeof *g->log_values);
        g->log_stmts = arena_grow(A, g->log_stmts, (size_t)g->nlogs, (size_t)n, sizeof *g->log_stmts);
        g->log_names[g->nlogs] = s->names[0];
        g->log_values[g->nlogs] = t;
        g->log_stmts[g->nlogs] = s;
        g->nlogs = n;
        t->uses++;
        for (int i = 0; i < s->nopts; i++) {
            static const char *const keys[] = {"prog_bar", "on_step", "on_epoch", "sync_dist", "logger"};
            Arg *a = &s->opts[i];
            bool known = false;
            for (int k = 0; k < 5; k++)
                known |= a->key && strcmp(a->key, keys[k]) == 0;
            if (!known) {
                diag_error(el->ctx, a->key_loc, "unknown log option '%s'", a->key ? a->key : "?");
                if (a->key)
                    diag_suggest(el->ctx, a->key_loc, a->key, keys, 5);
                continue;
            }
            CValue c = scalar_eval(el, f, a->value, false);
            if (c.type && c.type != TY_BOOL)
                diag_error(el->ctx, a->value->loc, "log option '%s' is a bool", a->key);
        }
        break;
    }
    case ST_RETURN: {
        *returned = true;
        Val r = {0};
        GValue **ts = arena_array(A, (size_t)s->nvalues, sizeof *ts);
        for (int i = 0; i < s->nvalues; i++) {
            f->stmt_base = f->net && i < f->net->noutputs && f->net->outputs[i].name ? f->net->outputs[i].name : "out";
            Val v = eval_val(el, f, s->values[i]);
            f->stmt_base = NULL;
            if (v.kind == VK_NONE)
                return (Val){0};
            if (v.kind == VK_MULTI && s->nvalues == 1)
                return v;
            ts[i] = need_tensor(el, v, s->values[i], "return");
            if (!ts[i])
                return (Val){0};
        }
        if (s->nvalues == 1)
            return tensor(ts[0]);
        r.kind = VK_MULTI;
        r.ts = ts;
        r.nts = s->nvalues;
        return r;
    }
    case ST_FOR: {
        if (s->value->kind != EX_RANGE) {
            diag_error(el->ctx, s->value->loc, "a loop runs over a range 'a..b' (b excluded)");
            break;
        }
        CValue lo = scalar_eval(el, f, s->value->lhs, false);
        CValue hi = scalar_eval(el, f, s->value->rhs, false);
        if (lo.type != TY_INT || hi.type != TY_INT) {
            if (lo.type && hi.type)
                diag_error(el->ctx, s->value->loc, "a range's ends are ints");
            break;
        }
        if (hi.i - lo.i > 1000000) {
            diag_error(el->ctx, s->value->loc, "a loop of %lld iterations is too long", (long long)(hi.i - lo.i));
            break;
        }
        f->loop_depth++;
        for (int64_t i = lo.i; i < hi.i; i++) {
            bind(el, f, s->var, scalar(cv_int(i)));
            int before = el->ctx->nerrors;
            Val r = run_body(el, f, s->body, s->nbody, returned);
            if (*returned || el->ctx->nerrors > before) {
                f->loop_depth--;
                return r;
            }
        }
        f->loop_depth--;
        break;
    }
    case ST_IF: {
        CValue c = scalar_eval(el, f, s->value, false);
        if (!c.type)
            break;
        if (c.type != TY_BOOL) {
            diag_error(el->ctx, s->value->loc, "a condition must be a bool, found %s", cv_str(el->ctx, &c));
            break;
        }
        if (c.i)
            return run_body(el, f, s->body, s->nbody, returned);
        return run_body(el, f, s->orelse, s->norelse, returned);
    }
    case ST_EXPR:
        if (s->value->kind != EX_STRING)
            (void)eval_val(el, f, s->value);
        break;
    }
    return (Val){0};
}

/* A failed `if` or `for` ends its body: what follows would only repeat the
 * error in other words. A failed assignment does not (its names are bound
 * to nothing and stay quiet), so one run reports independent errors. */
static Val run_body(El *el, Frame *f, Stmt **body, int n, bool *returned) {
    for (int i = 0; i < n; i++) {
        int before = el->ctx->nerrors;
        Val r = run_stmt(el, f, body[i], returned);
        if (*returned)
            return r;
        if (el->ctx->nerrors > before && (body[i]->kind == ST_IF || body[i]->kind == ST_FOR)) {
            *returned = true;
            return (Val){0};
        }
    }
    return (Val){0};
}

/* ---- shape rules (one per op of ops.def) ------------------------------------------------- */

static bool fail(El *el, GNode *n, const char *msg) {
    diag_error(el->ctx, n->loc, "%s", msg);
    for (int i = 0; i < n->ninputs; i++)
        note_producer(el, n->inputs[i]);
    return false;
}

static Shape shp(int rank, bool batched) {
    Shape s = {0};
    s.rank = rank;
    s.batched = batched;
    return s;
}

static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    int64_t num = in + 2 * p - d * (k - 1) - 1;
    if (num < 0)
        return 0;
    int64_t o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p)
        o--;
    return o;
}

static GParam *add_param(El *el, GNode *n, const char *leaf, bool trainable, Shape sh) {
    GParam *p = arena_alloc(A, sizeof *p);
    p->leaf = leaf;
    p->trainable = trainable;
    p->shape = sh;
    p->shape.batched = false;
    p->dtype = strcmp(leaf, "num_batches_tracked") == 0 ? DT_I64 : DT_F32;
    p->node = n;
    n->params = arena_grow(A, n->params, (size_t)n->nparams, (size_t)n->nparams + 1, sizeof *n->params);
    n->params[n->nparams++] = p;
    arena_vec_push(A, &el->params, p);
    return p;
}

static Shape dims1(int64_t a) { Shape s = shp(1, false); s.dim[0] = a; return s; }
static Shape dims2(int64_t a, int64_t b) { Shape s = shp(2, false); s.dim[0] = a; s.dim[1] = b; return s; }
static Shape dims4(int64_t a, int64_t b, int64_t c, int64_t d) {
    Shape s = shp(4, false);
    s.dim[0] = a, s.dim[1] = b, s.dim[2] = c, s.dim[3] = d;
    return s;
}

static char *msgf(El *el, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *msgf(El *el, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = arena_vprintf(A, fmt, ap);
    va_end(ap);
    return s;
}

static bool need_rank(El *el, GNode *n, int k, int rank, const char *what) {
    GValue *x = n->inputs[k];
    if (x->shape.rank == rank && x->dtype == DT_F32)
        return true;
    return fail(el, n, msgf(el, "'%s' needs %s, found %s", optab_get(n->op)->name, what, shape_str(el, x)));
}

static bool infer(El *el, GNode *n) {
    const OpInfo *op = optab_get(n->op);
    GValue **in = n->inputs;
    AttrValue *at = n->attrs;
    GValue *x = n->ninputs ? in[0] : NULL;
    Shape s = x ? x->shape : shp(0, false);
    DType dt = DT_F32;
    int64_t flops = x ? shape_numel(&x->shape) : 0;
    int nout = 1;
    Shape outs[4];
    DType odt[4] = {DT_F32, DT_F32, DT_F32, DT_F32};
    switch (n->op) {
    case LG_OP_LINEAR: {
        if (s.rank < 1 || x->dtype != DT_F32)
            return fail(el, n, msgf(el, "'linear' needs a float input with at least one dimension, found %s",
                                    shape_str(el, x)));
        int64_t inf = s.dim[s.rank - 1], outf = at[0].i;
        int64_t rows = shape_numel(&s) / (inf ? inf : 1);
        s.dim[s.rank - 1] = outf;
        flops = 2 * rows * inf * outf;
        add_param(el, n, "weight", true, dims2(outf, inf));
        if (at[1].i)
            add_param(el, n, "bias", true, dims1(outf));
        break;
    }
    case LG_OP_CONV2D: {
        if (!need_rank(el, n, 0, 3, "a (C, H, W) input"))
            return false;
        int64_t C = s.dim[0], H = s.dim[1], W = s.dim[2], O = at[0].i, g = at[5].i;
        int64_t kh = at[1].ints[0], kw = at[1].ints[1];
        if (C % g || O % g)
            return fail(el, n, msgf(el, "'conv2d' with groups %lld needs channels divisible by it; in %lld, out %lld",
                                    (long long)g, (long long)C, (long long)O));
        int64_t Ho = pool_out(H, kh, at[2].ints[0], at[3].ints[0], at[4].ints[0], false);
        int64_t Wo = pool_out(W, kw, at[2].ints[1], at[3].ints[1], at[4].ints[1], false);
        if (Ho < 1 || Wo < 1)
            return fail(el, n, msgf(el, "'conv2d' kernel %lldx%lld does not fit the %lldx%lld input (padding %lld)",
                                    (long long)kh, (long long)kw, (long long)H, (long long)W, (long long)at[3].ints[0]));
        s.dim[0] = O, s.dim[1] = Ho, s.dim[2] = Wo;
        flops = 2 * O * Ho * Wo * (C / g) * kh * kw;
        add_param(el, n, "weight", true, dims4(O, C / g, kh, kw));
        if (at[6].i)
            add_param(el, n, "bias", true, dims1(O));
        break;
    }
    case LG_OP_BATCH_NORM: {
        if (s.rank < 1 || x->dtype != DT_F32)
            return fail(el, n, msgf(el, "'batch_norm' needs a (C, ...) input, found %s", shape_str(el, x)));
        int64_t C = s.dim[0];
        flops = 2 * shape_numel(&s);
        if (at[2].i) {
            add_param(el, n, "weight", true, dims1(C));
            add_param(el, n, "bias", true, dims1(C));
        }
        add_param(el, n, "running_mean", false, dims1(C));
        add_param(el, n, "running_var", false, dims1(C));
        add_param(el, n, "num_batches_tracked", false, shp(0, false));
        break;
    }
    case LG_OP_LAYER_NORM: {
        if (s.rank < 1)
            return fail(el, n, msgf(el, "'layer_norm' needs at least one dimension, found %s", shape_str(el, x)));
        int64_t D = s.dim[s.rank - 1];
        flops = 5 * shape_numel(&s);
        if (at[1].i) {
            add_param(el, n, "weight", true, dims1(D));
            add_param(el, n, "bias", true, dims1(D));
        }
        break;
    }
    case LG_OP_MAX_POOL2D:
    case LG_OP_AVG_POOL2D: {
        if (!need_rank(el, n, 0, 3, "a (C, H, W) input"))
            return false;
        int64_t kh = at[0].ints[0], kw = at[0].ints[1];
        int64_t ph = at[2].ints[0], pw = at[2].ints[1];
        if (ph * 2 > kh || pw * 2 > kw)
            return fail(el, n, msgf(el, "padding %lld is more than half the kernel %lld", (long long)ph, (long long)kh));
        int64_t Ho = pool_out(s.dim[1], kh, at[1].ints[0], ph, 1, at[3].i);
        int64_t Wo = pool_out(s.dim[2], kw, at[1].ints[1], pw, 1, at[3].i);
        if (Ho < 1 || Wo < 1)
            return fail(el, n, msgf(el, "'%s' window %lldx%lld does not fit the %lldx%lld input", op->name,
                                    (long long)kh, (long long)kw, (long long)s.dim[1], (long long)s.dim[2]));
        s.dim[1] = Ho, s.dim[2] = Wo;
        flops = shape_numel(&s) * kh * kw;
        break;
    }
    case LG_OP_ADAPTIVE_AVG_POOL2D:
        if (!need_rank(el, n, 0, 3, "a (C, H, W) input"))
            return false;
        s.dim[1] = at[0].ints[0], s.dim[2] = at[0].ints[1];
        break;
    case LG_OP_GLOBAL_AVG_POOL:
        if (!need_rank(el, n, 0, 3, "a (C, H, W) input"))
            return false;
        s.rank = 1;
        break;
    case LG_OP_UPSAMPLE_NEAREST:
        if (!need_rank(el, n, 0, 3, "a (C, H, W) input"))
            return false;
        s.dim[1] *= at[0].i, s.dim[2] *= at[0].i;
        flops = 0;
        break;
    case LG_OP_RELU:
    case LG_OP_LEAKY_RELU:
    case LG_OP_SIGMOID:
    case LG_OP_TANH:
    case LG_OP_GELU:
    case LG_OP_SILU:
    case LG_OP_DROPOUT:
    case LG_OP_SCALE:
        if (x->dtype != DT_F32)
            return fail(el, n, msgf(el, "'%s' needs a float input, found %s", op->name, shape_str(el, x)));
        break;
    case LG_OP_SOFTMAX:
    case LG_OP_LOG_SOFTMAX: {
        int64_t d = at[0].i;
        if (d < -s.rank || d >= s.rank || s.rank == 0)
            return fail(el, n, msgf(el, "'%s' dim %lld is out of range for %s", op->name, (long long)d,
                                    shape_str(el, x)));
        flops = 3 * shape_numel(&s);
        break;
    }
    case LG_OP_ADD:
    case LG_OP_MUL:
        if (!same_shape(in[0], in[1]) || in[0]->dtype != in[1]->dtype)
            return fail(el, n, msgf(el, "shape mismatch: '%s' needs equal shapes, found %s and %s", op->name,
                                    shape_str(el, in[0]), shape_str(el, in[1])));
        break;
    case LG_OP_CONCAT: {
        int64_t d = at[0].i;
        if (d < 0)
            d += s.rank;
        if (d < 0 || d >= s.rank)
            return fail(el, n, msgf(el, "'concat' dim %lld is out of range for %s", (long long)at[0].i,
                                    shape_str(el, x)));
        int64_t total = 0;
        for (int i = 0; i < n->ninputs; i++) {
            GValue *v = in[i];
            bool ok = v->shape.rank == s.rank && v->shape.batched == s.batched && v->dtype == x->dtype;
            for (int k = 0; ok && k < s.rank; k++)
                ok = k == d || v->shape.dim[k] == s.dim[k];
            if (!ok)
                return fail(el, n, msgf(el, "shape mismatch: 'concat' along dim %lld needs the other dimensions equal, "
                                        "found %s and %s", (long long)d, shape_str(el, x), shape_str(el, v)));
            total += v->shape.dim[d];
        }
        s.dim[d] = total;
        flops = 0;
        break;
    }
    case LG_OP_SPLIT: {
        int64_t d = at[1].i;
        if (d < 0)
            d += s.rank;
        if (d < 0 || d >= s.rank)
            return fail(el, n, msgf(el, "'split' dim %lld is out of range for %s", (long long)at[1].i,
                                    shape_str(el, x)));
        int64_t total = 0;
        for (int i = 0; i < at[0].n; i++)
            total += at[0].ints[i];
        if (total != s.dim[d])
            return fail(el, n, msgf(el, "'split' sizes add up to %lld but dim %lld of %s is %lld", (long long)total,
                                    (long long)d, shape_str(el, x), (long long)s.dim[d]));
        nout = at[0].n > 4 ? 4 : at[0].n;
        if (at[0].n > 4)
            return fail(el, n, "'split' makes at most 4 pieces");
        for (int i = 0; i < nout; i++) {
            outs[i] = s;
            outs[i].dim[d] = at[0].ints[i];
            odt[i] = x->dtype;
        }
        flops = 0;
        break;
    }
    case LG_OP_FLATTEN:
        s.dim[0] = shape_numel(&s);
        s.rank = 1;
        flops = 0;
        dt = x->dtype;
        break;
    case LG_OP_RESHAPE: {
        int64_t numel = shape_numel(&s), prod = 1;
        int neg = -1;
        if (at[0].n > SHAPE_MAX_RANK)
            return fail(el, n, "'reshape' shape has too many dimensions");
        Shape r = shp(at[0].n, s.batched);
        for (int i = 0; i < at[0].n; i++) {
            r.dim[i] = at[0].ints[i];
            if (r.dim[i] == -1) {
                if (neg >= 0)
                    return fail(el, n, "'reshape' takes at most one -1");
                neg = i;
            } else if (r.dim[i] < 1) {
                return fail(el, n, msgf(el, "'reshape' sizes are positive (or one -1), found %lld", (long long)r.dim[i]));
            } else {
                prod *= r.dim[i];
            }
        }
        if (neg >= 0 && prod && numel % prod == 0)
            r.dim[neg] = numel / prod, prod *= r.dim[neg];
        if (prod != numel)
            return fail(el, n, msgf(el, "'reshape' of %s (%lld elements) into %lld elements", shape_str(el, x),
                                    (long long)numel, (long long)prod));
        s = r;
        flops = 0;
        dt = x->dtype;
        break;
    }
    case LG_OP_TRANSPOSE: {
        int64_t a = at[0].i < 0 ? at[0].i + s.rank : at[0].i, b = at[1].i < 0 ? at[1].i + s.rank : at[1].i;
        if (a < 0 || a >= s.rank || b < 0 || b >= s.rank)
            return fail(el, n, msgf(el, "'transpose' dims %lld, %lld are out of range for %s", (long long)at[0].i,
                                    (long long)at[1].i, shape_str(el, x)));
        int64_t t = s.dim[a];
        s.dim[a] = s.dim[b];
        s.dim[b] = t;
        flops = 0;
        break;
    }
    case LG_OP_MEAN:
    case LG_OP_SUM: s = shp(0, false); break;
    case LG_OP_CROSS_ENTROPY: {
        GValue *lg = in[0], *tg = in[1];
        bool ok = lg->dtype == DT_F32 && (tg->dtype == DT_I32 || tg->dtype == DT_I64) && lg->shape.rank >= 1 &&
                  tg->shape.rank == lg->shape.rank - 1 && tg->shape.batched == lg->shape.batched;
        for (int k = 0; ok && k < tg->shape.rank; k++)
            ok = tg->shape.dim[k] == lg->shape.dim[k];
        if (!ok)
            return fail(el, n, msgf(el, "'cross_entropy' needs logits (..., C) and integer class indices (...), "
                                    "found %s and %s", shape_str(el, lg), shape_str(el, tg)));
        if (at[2].tensor && (at[2].tensor->shape.rank != 1 || at[2].tensor->shape.dim[0] != lg->shape.dim[lg->shape.rank - 1]))
            return fail(el, n, "'cross_entropy' weight must have one value per class");
        s = shp(0, false);
        flops = 4 * shape_numel(&lg->shape);
        break;
    }
    case LG_OP_BCE_WITH_LOGITS:
    case LG_OP_MSE_LOSS:
    case LG_OP_L1_LOSS:
    case LG_OP_SMOOTH_L1_LOSS:
        if (!same_shape(in[0], in[1]) || in[0]->dtype != DT_F32 || in[1]->dtype != DT_F32)
            return fail(el, n, msgf(el, "shape mismatch: '%s' needs input and target of one float shape, found %s and %s",
                                    op->name, shape_str(el, in[0]), shape_str(el, in[1])));
        s = shp(0, false);
        break;
    case LG_OP_ACCURACY:
    case LG_OP_TOPK_ACCURACY: {
        GValue *lg = in[0], *tg = in[1];
        if (lg->shape.rank != 1 || tg->shape.rank != 0 || (tg->dtype != DT_I32 && tg->dtype != DT_I64))
            return fail(el, n, msgf(el, "'%s' needs logits (C) and integer labels, found %s and %s", op->name,
                                    shape_str(el, lg), shape_str(el, tg)));
        if (n->op == LG_OP_TOPK_ACCURACY && at[0].i > lg->shape.dim[0])
            return fail(el, n, msgf(el, "'topk_accuracy' k %lld is more than the %lld classes", (long long)at[0].i,
                                    (long long)lg->shape.dim[0]));
        s = shp(0, false);
        break;
    }
    /* ---- detection ---- */
    case LG_OP_ANCHORS: {
        int L = n->ninputs;
        int ns = at[0].n, nr = at[1].n;
        if (L != ns && L != 1)
            return fail(el, n, msgf(el, "'anchors' has %d feature maps and %d sizes; give one size per map, or one map",
                                    L, ns));
        int64_t total = 0;
        for (int i = 0; i < L; i++) {
            if (in[i]->shape.rank != 3)
                return fail(el, n, msgf(el, "'anchors' needs (C, H, W) feature maps, found %s", shape_str(el, in[i])));
            total += in[i]->shape.dim[1] * in[i]->shape.dim[2] * (L == 1 ? ns : 1) * nr;
        }
        s = dims2(total, 4);
        flops = 0;
        break;
    }
    case LG_OP_RPN_HEAD: {
        int64_t C = in[0]->shape.rank == 3 ? in[0]->shape.dim[0] : -1, total = 0, na = at[0].i;
        for (int i = 0; i < n->ninputs; i++) {
            if (in[i]->shape.rank != 3 || in[i]->shape.dim[0] != C)
                return fail(el, n, msgf(el, "'rpn_head' needs (C, H, W) maps with one channel count, found %s and %s",
                                        shape_str(el, in[0]), shape_str(el, in[i])));
            total += in[i]->shape.dim[1] * in[i]->shape.dim[2] * na;
            flops += 2 * in[i]->shape.dim[1] * in[i]->shape.dim[2] * (C * C * 9 + C * na * 5);
        }
        nout = 2;
        outs[0] = dims1(total);
        outs[0].batched = true;
        outs[1] = dims2(total, 4);
        outs[1].batched = true;
        add_param(el, n, "conv.0.0.weight", true, dims4(C, C, 3, 3));
        add_param(el, n, "conv.0.0.bias", true, dims1(C));
        add_param(el, n, "cls_logits.weight", true, dims4(na, C, 1, 1));
        add_param(el, n, "cls_logits.bias", true, dims1(na));
        add_param(el, n, "bbox_pred.weight", true, dims4(4 * na, C, 1, 1));
        add_param(el, n, "bbox_pred.bias", true, dims1(4 * na));
        break;
    }
    case LG_OP_PROPOSALS: {
        GValue *obj = in[0], *del = in[1], *anc = in[2];
        int64_t Aa = anc->shape.dim[0];
        if (anc->shape.rank != 2 || obj->shape.rank != 1 || obj->shape.dim[0] != Aa || del->shape.rank != 2 ||
            del->shape.dim[0] != Aa)
            return fail(el, n, msgf(el, "'proposals' needs objectness (A), deltas (A, 4) and anchors (A, 4) of one A, "
                                    "found %s, %s and %s", shape_str(el, obj), shape_str(el, del), shape_str(el, anc)));
        s = dims2(at[1].i, 4);
        s.batched = true;
        flops = 0;
        break;
    }
    case LG_OP_RPN_LOSS:
        if (in[3]->shape.rank != 2 || in[3]->shape.dim[1] != 4 || in[0]->shape.dim[0] != in[2]->shape.dim[0])
            return fail(el, n, msgf(el, "'rpn_loss' needs (objectness, deltas, anchors, targets) with targets (M, 4), "
                                    "found %s, %s, %s and %s", shape_str(el, in[0]), shape_str(el, in[1]),
                                    shape_str(el, in[2]), shape_str(el, in[3])));
        /* (loss_objectness, loss_rpn_box_reg), as torchvision's RPN returns them */
        nout = 2;
        outs[0] = outs[1] = shp(0, false);
        break;
    case LG_OP_ROI_SAMPLE: {
        if (in[0]->shape.rank != 2 || in[0]->shape.dim[1] != 4 || in[1]->shape.rank != 2 || in[1]->shape.dim[1] != 4)
            return fail(el, n, msgf(el, "'roi_sample' needs proposals (R, 4) and targets (M, 4), found %s and %s",
                                    shape_str(el, in[0]), shape_str(el, in[1])));
        int64_t R = at[2].i;
        nout = 3;
        outs[0] = dims2(R, 4);
        outs[1] = dims1(R);
        odt[1] = DT_I32;
        outs[2] = dims2(R, 4);
        for (int i = 0; i < 3; i++)
            outs[i].batched = true;
        flops = 0;
        break;
    }
    case LG_OP_ROI_ALIGN: {
        GValue *rois = in[0];
        int L = n->ninputs - 1;
        if (rois->shape.rank != 2 || rois->shape.dim[1] != 4)
            return fail(el, n, msgf(el, "'roi_align' takes the boxes (R, 4) first, then feature maps; found %s",
                                    shape_str(el, rois)));
        if (at[1].n != L)
            return fail(el, n, msgf(el, "'roi_align' has %d feature maps but %d spatial scales", L, at[1].n));
        int64_t C = in[1]->shape.dim[0];
        for (int i = 1; i < n->ninputs; i++)
            if (in[i]->shape.rank != 3 || in[i]->shape.dim[0] != C)
                return fail(el, n, msgf(el, "'roi_align' needs (C, H, W) maps with one channel count, found %s",
                                        shape_str(el, in[i])));
        s = dims4(rois->shape.dim[0], C, at[0].ints[0], at[0].ints[1]);
        s.batched = true;
        flops = shape_numel(&s) * 4 * at[2].i * at[2].i;
        break;
    }
    case LG_OP_FASTRCNN_LOSS: {
        GValue *cl = in[0], *br = in[1];
        if (cl->shape.rank != 2 || br->shape.rank != 2 || br->shape.dim[1] != 4 * cl->shape.dim[1] ||
            cl->shape.dim[0] != br->shape.dim[0])
            return fail(el, n, msgf(el, "'fastrcnn_loss' needs class logits (R, K) and box regression (R, 4K), found "
                                    "%s and %s", shape_str(el, cl), shape_str(el, br)));
        /* (loss_classifier, loss_box_reg), as torchvision's RoIHeads returns them */
        nout = 2;
        outs[0] = outs[1] = shp(0, false);
        break;
    }
    case LG_OP_DETECTIONS: {
        GValue *cl = in[0], *br = in[1], *rois = in[2];
        if (cl->shape.rank != 2 || br->shape.rank != 2 || br->shape.dim[1] != 4 * cl->shape.dim[1] ||
            rois->shape.rank != 2 || rois->shape.dim[0] != cl->shape.dim[0])
            return fail(el, n, msgf(el, "'detections' needs class logits (R, K), box regression (R, 4K) and boxes "
                                    "(R, 4), found %s, %s and %s", shape_str(el, cl), shape_str(el, br),
                                    shape_str(el, rois)));
        s = dims2(at[2].i, 6);
        s.batched = true;
        flops = 0;
        break;
    }
    case LG_OP_VOC_MAP:
        if (in[0]->shape.rank != 2 || in[0]->shape.dim[1] != 6)
            return fail(el, n, msgf(el, "'voc_map' needs detections (D, 6) and targets, found %s", shape_str(el, in[0])));
        s = shp(0, false);
        break;
    default:
        return fail(el, n, msgf(el, "internal: no shape rule for '%s'", op->name));
    }
    if (nout == 1) {
        outs[0] = s;
        odt[0] = dt;
    }
    node_outputs(el, n, nout);
    for (int i = 0; i < nout; i++)
        node_out(el, n, i, odt[i], outs[i], NULL);
    n->flops = flops;
    return true;
}

/* ---- graphs ------------------------------------------------------------------------------------ */

static Graph *finish_graph(El *el, Graph *g) {
    g->nodes = (GNode **)el->nodes.items;
    g->nnodes = el->nodes.len;
    g->values = (GValue **)el->values.items;
    g->nvalues = el->values.len;
    g->params = (GParam **)el->params.items;
    g->nparams = el->params.len;
    return g;
}

static void name_params(El *el, Graph *g) {
    for (int i = 0; i < g->nnodes; i++) {
        GNode *n = g->nodes[i];
        if (n->kind != GN_OP || !n->layer)
            continue;
        NameSlot *s = (NameSlot *)n->layer;
        n->layer = full_name(el, s);
        for (int k = 0; k < n->nparams; k++)
            n->params[k]->name = arena_printf(A, "%s.%s", n->layer, n->params[k]->leaf);
    }
    /* Two layers with one name would collide in a checkpoint. */
    StrMap seen = {0};
    for (int i = 0; i < g->nparams; i++) {
        GParam *other = strmap_get(&seen, g->params[i]->name);
        if (other) {
            diag_error(el->ctx, g->params[i]->node->loc, "two layers are both named '%s'", g->params[i]->node->layer);
            diag_note(el->ctx, other->node->loc, "the other is here");
            return;
        }
        strmap_put(A, &seen, g->params[i]->name, g->params[i]);
    }
}

/* The values a body returned, as an array in the arena: a single value lives
 * in the Val itself, which is on the caller's stack. */
static GValue **returned_values(El *el, const Val *r, int nr) {
    if (r->kind == VK_MULTI)
        return r->ts;
    GValue **rs = arena_array(A, (size_t)nr, sizeof *rs);
    rs[0] = r->t;
    return rs;
}

static void elaborate_network(Ctx *ctx, Module *mod, Network *net) {
    El el_ = {ctx, mod, NULL, {0}, {0}, {0}, ctx->nerrors, 0};
    El *el = &el_;
    Graph *g = arena_alloc(A, sizeof *g);
    g->name = net->name;
    el->g = g;
    Frame f = {0};
    f.net = net;
    int ntensor = 0;
    for (int i = 0; i < net->nparams; i++)
        ntensor += net->params[i].type == TY_TENSOR;
    g->inputs = arena_array(A, (size_t)ntensor, sizeof *g->inputs);
    for (int i = 0; i < net->nparams; i++) {
        BlockParam *p = &net->params[i];
        if (p->type != TY_TENSOR) {
            CValue c = p->dflt ? scalar_eval(el, &f, p->dflt, p->type == TY_ENUM) : (CValue){0};
            if (!p->dflt)
                diag_error(ctx, p->loc, "a network's scalar parameter needs a default ('%s: int = 3')", p->name);
            bind(el, &f, p->name, scalar(c));
            continue;
        }
        TensorType *tt = p->tensor;
        Shape sh = shp(tt ? tt->ndims : 0, true);
        for (int d = 0; tt && d < tt->ndims; d++) {
            CValue c = scalar_eval(el, &f, tt->dims[d], false);
            if (c.type != TY_INT || c.i < 1) {
                if (c.type)
                    diag_error(ctx, tt->dims[d]->loc, "a dimension is a positive int, found %s", cv_str(ctx, &c));
                return;
            }
            sh.dim[d] = c.i;
        }
        GNode *in = new_node(el, GN_INPUT, p->loc);
        node_outputs(el, in, 1);
        GValue *v = node_out(el, in, 0, tt ? tt->dtype : DT_F32, sh, p->name);
        v->loc = tt ? diag_span(p->loc, tt->loc) : p->loc;
        g->inputs[g->ninputs++] = v;
        bind(el, &f, p->name, tensor(v));
    }
    if (ctx->nerrors > el->nerrors_at_start)
        return;
    bool returned = false;
    Val r = run_body(el, &f, net->body, net->nbody, &returned);
    name_scope(el, &f);
    if (!returned || r.kind == VK_NONE)
        return;
    int nr = r.kind == VK_MULTI ? r.nts : 1;
    GValue **rs = returned_values(el, &r, nr);
    if (net->noutputs == 0) {
        /* No declared outputs: they are what the body returns. */
        g->outputs = rs;
        g->noutputs = nr;
        for (int i = 0; i < nr; i++)
            rs[i]->uses++;
        finish_graph(el, g);
        name_params(el, g);
        if (ctx->nerrors == el->nerrors_at_start)
            net->graph = g;
        return;
    }
    if (nr != net->noutputs) {
        diag_error(ctx, net->loc, "network '%s' declares %d output%s but returns %d", net->name, net->noutputs,
                   net->noutputs == 1 ? "" : "s", nr);
        return;
    }
    g->outputs = arena_array(A, (size_t)nr, sizeof *g->outputs);
    for (int i = 0; i < nr; i++) {
        Output *o = &net->outputs[i];
        GValue want = {0};
        want.dtype = o->type.dtype;
        want.shape = shp(o->type.ndims, true);
        for (int d = 0; d < o->type.ndims; d++) {
            CValue c = scalar_eval(el, &f, o->type.dims[d], false);
            want.shape.dim[d] = c.type == TY_INT ? c.i : -1;
        }
        if (!same_shape(&want, rs[i]) || want.dtype != rs[i]->dtype) {
            diag_error(ctx, o->loc, "network '%s' declares output %s but returns %s", net->name, shape_str(el, &want),
                       shape_str(el, rs[i]));
            note_producer(el, rs[i]);
            return;
        }
        if (o->name)
            rs[i]->name = rs[i]->name ? rs[i]->name : o->name;
        rs[i]->uses++;
        g->outputs[g->noutputs++] = rs[i];
    }
    finish_graph(el, g);
    name_params(el, g);
    if (ctx->nerrors == el->nerrors_at_start)
        net->graph = g;
}

static DataSplit *step_split(Module *mod, Step *s) {
    if (!mod->data)
        return NULL;
    static const char *const want[][2] = {{"train", NULL}, {"val", "test"}, {"test", "val"}, {"predict", "test"}};
    for (int k = 0; k < 2; k++)
        for (int i = 0; want[s->kind][k] && i < mod->data->nsplits; i++)
            if (strcmp(mod->data->splits[i].name, want[s->kind][k]) == 0)
                return &mod->data->splits[i];
    return NULL;
}

static void elaborate_step(Ctx *ctx, Module *mod, Step *s) {
    El el_ = {ctx, mod, NULL, {0}, {0}, {0}, ctx->nerrors, 0};
    El *el = &el_;
    Graph *g = arena_alloc(A, sizeof *g);
    g->name = s->name;
    el->g = g;
    Frame f = {0};
    f.step = s;
    f.split = step_split(mod, s);
    if (!f.split && s->kind != STEP_TRAIN) {
        static const char *const want[] = {"train", "val", "test", "predict"};
        diag_error(ctx, s->loc, "step '%s' has no data: add a '%s' split to the data block", s->name, want[s->kind]);
        return;
    }
    bool returned = false;
    Val r = run_body(el, &f, s->body, s->nbody, &returned);
    if (ctx->nerrors > el->nerrors_at_start)
        return;
    if (returned && r.kind != VK_NONE) {
        int nr = r.kind == VK_MULTI ? r.nts : 1;
        GValue **rs = returned_values(el, &r, nr);
        g->outputs = rs;
        g->noutputs = nr;
        for (int i = 0; i < nr; i++)
            rs[i]->uses++;
        if (s->kind == STEP_TRAIN) {
            GValue *loss = rs[0];
            if (loss->shape.rank != 0 || loss->dtype != DT_F32) {
                diag_error(ctx, s->loc, "the train step must return a scalar loss, found %s", shape_str(el, loss));
                note_producer(el, loss);
                return;
            }
            g->loss = loss;
        }
    }
    finish_graph(el, g);
    s->graph = g;
}

/* A parameter group whose pattern matches no parameter is almost always a
 * typo ("*.bais"): warn, naming a parameter for comparison. Names are as the
 * trainer sees them: prefixed by the network when there are several. */
static void check_groups(Ctx *ctx, Module *mod) {
    Optimizer *o = mod->optimizer;
    if (!o)
        return;
    int nnets = 0;
    for (int i = 0; i < mod->nnetworks; i++)
        nnets += !mod->networks[i]->is_block && mod->networks[i]->graph != NULL;
    for (int g = 0; g < o->ngroups; g++) {
        OptGroup *grp = &o->groups[g];
        if (!grp->match)
            continue;
        char *pats = arena_strdup(&ctx->arena, grp->match);
        const char *example = NULL;
        for (char *save = NULL, *pat = strtok_r(pats, "|", &save); pat; pat = strtok_r(NULL, "|", &save)) {
            bool hit = false;
            for (int i = 0; i < mod->nnetworks && !hit; i++) {
                Network *net = mod->networks[i];
                if (net->is_block || !net->graph)
                    continue;
                for (int j = 0; j < net->graph->nparams && !hit; j++) {
                    GParam *p = net->graph->params[j];
                    const char *name = nnets > 1 ? arena_printf(&ctx->arena, "%s.%s", net->name, p->name) : p->name;
                    if (!example && p->trainable)
                        example = name;
                    hit = p->trainable && fnmatch(pat, name, 0) == 0;
                }
            }
            if (!hit) {
                diag_warning(ctx, grp->loc, "pattern '%s' of parameter group '%s' matches no trainable parameter", pat,
                             grp->name);
                if (example)
                    diag_note(ctx, grp->loc, "parameters are named like '%s'", example);
            }
        }
    }
}

int shape_check(Ctx *ctx, Module *mod) {
    int before = ctx->nerrors;
    /* Networks in dependency order: a network calling another elaborates it
     * inline, so order only matters for steps, which run last. */
    for (int i = 0; i < mod->nnetworks; i++)
        if (!mod->networks[i]->is_block)
            elaborate_network(ctx, mod, mod->networks[i]);
    for (int m = 0; m < mod->nimports; m++) {
        Module *im = mod->imports[m].module;
        for (int i = 0; im && i < im->nnetworks; i++)
            if (!im->networks[i]->is_block && !im->networks[i]->graph && im->networks[i]->used)
                elaborate_network(ctx, mod, im->networks[i]);
    }
    if (ctx->nerrors > before)
        return ctx->nerrors - before;
    for (int i = 0; i < mod->nsteps; i++)
        elaborate_step(ctx, mod, mod->steps[i]);
    check_groups(ctx, mod);
    return ctx->nerrors - before;
}
