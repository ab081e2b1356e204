/* ir.c — builds the IR (see ir.h): constructors used by the lowering below
 * and by the tests, a stable text dump, and the lowering itself, which turns
 * the checked AST (after sema and shapes) into one IrGraph per step.
 *
 * Input: the Module the front end checked; every value node carries its
 * static shape and every op call its lg_op_id and resolved attributes.
 * Output: an IrProgram, read by autodiff.c, plan.c and emit_c.c.
 */
#include "ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The compiler treats out-of-memory as an internal error (STYLE.md §2). */
static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "lgen: internal error at %s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    return q;
}

static void *xcalloc(size_t n) {
    void *q = calloc(1, n ? n : 1);
    if (!q) {
        fprintf(stderr, "lgen: internal error at %s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    return q;
}

/* Strings the IR keeps live until ir_program_free: a chained list owned by
 * the program, so that one call frees everything. */
struct IrString {
    struct IrString *next;
    char s[];
};

char *ir_strdup(IrProgram *p, const char *s) {
    size_t n = strlen(s) + 1;
    struct IrString *b = xcalloc(sizeof *b + n);
    memcpy(b->s, s, n);
    b->next = p->strings;
    p->strings = b;
    return b->s;
}

char *ir_fmt(IrProgram *p, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ir_strdup(p, buf);
}

#define GROW(arr, n, cap)                                                    \
    do {                                                                     \
        if ((n) == (cap)) {                                                  \
            (cap) = (cap) ? 2 * (cap) : 16;                                  \
            (arr) = xrealloc((arr), (size_t)(cap) * sizeof *(arr));          \
        }                                                                    \
    } while (0)

void ir_program_init(IrProgram *p, const char *model) {
    static const char *names[IR_STEP_COUNT] = {"train", "validate", "test", "predict"};
    memset(p, 0, sizeof *p);
    p->model = model;
    for (int i = 0; i < IR_STEP_COUNT; i++) {
        p->graphs[i].prog = p;
        p->graphs[i].step = (IrStepKind)i;
        p->graphs[i].name = names[i];
    }
}

void ir_program_free(IrProgram *p) {
    for (int i = 0; i < IR_STEP_COUNT; i++) {
        IrGraph *g = &p->graphs[i];
        for (int j = 0; j < g->nvalues; j++)
            free(g->values[j]);
        for (int j = 0; j < g->nops; j++)
            free(g->ops[j]);
        free(g->values);
        free(g->ops);
        free(g->paramvals);
        free(g->logs);
    }
    free(p->params);
    free(p->inputs);
    while (p->strings) {
        struct IrString *n = p->strings->next;
        free(p->strings);
        p->strings = n;
    }
    memset(p, 0, sizeof *p);
}

static size_t dims_numel(int ndim, const int *dim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)dim[i];
    return n;
}

int ir_add_param(IrProgram *p, const char *name, IrParamRole role, int ndim, const int *dim) {
    GROW(p->params, p->nparams, p->capparams);
    IrParam *q = &p->params[p->nparams];
    memset(q, 0, sizeof *q);
    q->name = ir_strdup(p, name);
    q->role = role;
    q->dtype = IR_F32;
    q->ndim = ndim;
    if (ndim)
        memcpy(q->dim, dim, (size_t)ndim * sizeof *dim);
    q->numel = dims_numel(ndim, dim);
    q->offset = p->param_floats;
    p->param_floats += q->numel;
    if (role == IR_TRAIN) {
        q->grad_offset = p->grad_floats;
        p->grad_floats += q->numel;
    }
    return p->nparams++;
}

int ir_add_input(IrProgram *p, const char *name, IrDtype dtype, int ndim, const int *dim) {
    for (int i = 0; i < p->ninputs; i++)
        if (!strcmp(p->inputs[i].name, name))
            return i;
    GROW(p->inputs, p->ninputs, p->capinputs);
    IrInput *in = &p->inputs[p->ninputs];
    memset(in, 0, sizeof *in);
    in->name = ir_strdup(p, name);
    in->dtype = dtype;
    in->ndim = ndim;
    if (ndim)
        memcpy(in->dim, dim, (size_t)ndim * sizeof *dim);
    return p->ninputs++;
}

IrValue *ir_value(IrGraph *g, const char *name, IrDtype dtype, int batched, int ndim, const int *dim) {
    IrValue *v = xcalloc(sizeof *v);
    v->id = g->nvalues;
    v->name = ir_strdup(g->prog, name);
    v->dtype = dtype;
    v->batched = batched;
    v->ndim = ndim;
    if (ndim)
        memcpy(v->dim, dim, (size_t)ndim * sizeof *dim);
    v->storage = IR_ST_ARENA;
    v->param = -1;
    v->input = -1;
    v->first = v->last = -1;
    GROW(g->values, g->nvalues, g->capvalues);
    g->values[g->nvalues++] = v;
    return v;
}

IrValue *ir_input_value(IrProgram *p, IrGraph *g, int input) {
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->storage == IR_ST_INPUT && g->values[i]->input == input)
            return g->values[i];
    IrInput *in = &p->inputs[input];
    IrValue *v = ir_value(g, in->name, in->dtype, 1, in->ndim, in->dim);
    v->storage = IR_ST_INPUT;
    v->input = input;
    return v;
}

IrValue *ir_param_value(IrProgram *p, IrGraph *g, int param, IrStorage st) {
    /* one value per (parameter, storage) and graph, found through a cache
     * (a scan of the values made lowering quadratic in the layers) */
    int slot = 2 * param + (st == IR_ST_GRAD);
    if (slot >= g->nparamvals) {
        int n = 2 * p->nparams > slot + 1 ? 2 * p->nparams : slot + 1;
        g->paramvals = xrealloc(g->paramvals, (size_t)n * sizeof *g->paramvals);
        memset(g->paramvals + g->nparamvals, 0, (size_t)(n - g->nparamvals) * sizeof *g->paramvals);
        g->nparamvals = n;
    }
    if (g->paramvals[slot])
        return g->paramvals[slot];
    IrParam *q = &p->params[param];
    IrValue *v = ir_value(g, st == IR_ST_GRAD ? ir_fmt(p, "%s.grad", q->name) : q->name, q->dtype, 0,
                          q->ndim, q->dim);
    v->storage = st;
    v->param = param;
    v->requires_grad = st == IR_ST_PARAM && q->role == IR_TRAIN;
    g->paramvals[slot] = v;
    return v;
}

IrOp *ir_op(IrGraph *g, IrKind kind, int nin, IrValue *const *in) {
    IrOp *op = xcalloc(sizeof *op);
    op->index = g->nops;
    op->kind = kind;
    op->nin = nin;
    op->param = -1;
    for (int i = 0; i < nin; i++)
        op->in[i] = in[i];
    GROW(g->ops, g->nops, g->capops);
    g->ops[g->nops++] = op;
    return op;
}

IrValue *ir_op1(IrGraph *g, IrKind kind, int nin, IrValue *const *in, const char *name,
                IrDtype dtype, int batched, int ndim, const int *dim) {
    IrOp *op = ir_op(g, kind, nin, in);
    IrValue *v = ir_value(g, name, dtype, batched, ndim, dim);
    v->def = op;
    op->out[0] = v;
    op->nout = 1;
    for (int i = 0; i < nin; i++)
        if (in[i] && in[i]->requires_grad)
            v->requires_grad = 1;
    return v;
}

void ir_log(IrGraph *g, const char *name, IrValue *v) {
    GROW(g->logs, g->nlogs, g->caplogs);
    g->logs[g->nlogs].name = ir_strdup(g->prog, name);
    g->logs[g->nlogs].value = v;
    g->logs[g->nlogs].prog_bar = 0;
    g->nlogs++;
}

size_t ir_numel(const IrValue *v) {
    return dims_numel(v->ndim, v->dim);
}

const char *ir_kind_name(IrKind k) {
    static const char *extra[] = {
        [IR_LINEAR_BWD - IR_KIND_BASE] = "linear_backward",
        [IR_CONV2D_BWD - IR_KIND_BASE] = "conv2d_backward",
        [IR_RELU_BWD - IR_KIND_BASE] = "relu_backward",
        [IR_LEAKY_RELU_BWD - IR_KIND_BASE] = "leaky_relu_backward",
        [IR_SIGMOID_BWD - IR_KIND_BASE] = "sigmoid_backward",
        [IR_TANH_BWD - IR_KIND_BASE] = "tanh_backward",
        [IR_GELU_BWD - IR_KIND_BASE] = "gelu_backward",
        [IR_SILU_BWD - IR_KIND_BASE] = "silu_backward",
        [IR_DROPOUT_BWD - IR_KIND_BASE] = "dropout_backward",
        [IR_MAX_POOL2D_BWD - IR_KIND_BASE] = "max_pool2d_backward",
        [IR_AVG_POOL2D_BWD - IR_KIND_BASE] = "avg_pool2d_backward",
        [IR_GLOBAL_AVG_POOL_BWD - IR_KIND_BASE] = "global_avg_pool_backward",
        [IR_BATCH_NORM_BWD - IR_KIND_BASE] = "batch_norm_backward",
        [IR_SOFTMAX_BWD - IR_KIND_BASE] = "softmax_backward",
        [IR_LOG_SOFTMAX_BWD - IR_KIND_BASE] = "log_softmax_backward",
        [IR_MUL_BWD - IR_KIND_BASE] = "mul_backward",
        [IR_CROSS_ENTROPY_BWD - IR_KIND_BASE] = "cross_entropy_backward",
        [IR_MSE_LOSS_BWD - IR_KIND_BASE] = "mse_loss_backward",
        [IR_L1_LOSS_BWD - IR_KIND_BASE] = "l1_loss_backward",
        [IR_SMOOTH_L1_LOSS_BWD - IR_KIND_BASE] = "smooth_l1_loss_backward",
        [IR_BCE_WITH_LOGITS_BWD - IR_KIND_BASE] = "binary_cross_entropy_with_logits_backward",
        [IR_MEAN_BWD - IR_KIND_BASE] = "mean_backward",
        [IR_SUM_BWD - IR_KIND_BASE] = "sum_backward",
        [IR_ACCUM - IR_KIND_BASE] = "accumulate",
        [IR_COPY - IR_KIND_BASE] = "copy",
        [IR_SEED - IR_KIND_BASE] = "seed",
        [IR_LAYER_NORM_BWD - IR_KIND_BASE] = "layer_norm_backward",
        [IR_ADAPTIVE_AVG_POOL2D_BWD - IR_KIND_BASE] = "adaptive_avg_pool2d_backward",
        [IR_UPSAMPLE_NEAREST_BWD - IR_KIND_BASE] = "upsample_nearest_backward",
        [IR_TRANSPOSE_BWD - IR_KIND_BASE] = "transpose_backward",
        [IR_CONCAT_BWD - IR_KIND_BASE] = "concat_backward",
        [IR_SPLIT_BWD - IR_KIND_BASE] = "split_backward",
        [IR_ZERO - IR_KIND_BASE] = "zero",
        [IR_RPN_FLATTEN - IR_KIND_BASE] = "rpn_flatten",
        [IR_RPN_FLATTEN_BWD - IR_KIND_BASE] = "rpn_flatten_backward",
        [IR_ROIS_FROM_PROPOSALS - IR_KIND_BASE] = "rois_from_proposals",
        [IR_RPN_LOSS_BWD - IR_KIND_BASE] = "rpn_loss_backward",
        [IR_ROI_ALIGN_BWD - IR_KIND_BASE] = "roi_align_backward",
        [IR_FASTRCNN_LOSS_BWD - IR_KIND_BASE] = "fastrcnn_loss_backward",
    };
    /* from ops.def directly: lgen does not link the runtime's lg_op_name */
    static const char *ops[] = {
#define OP(ID, name, kind, min_in, max_in, grad, doc) [LG_OP_##ID] = name,
#include "lgen/ops.def"
    };
    if (k >= 0 && k < LG_OP_COUNT)
        return ops[k];
    if (k > IR_KIND_BASE && k < IR_KIND_END && extra[k - IR_KIND_BASE])
        return extra[k - IR_KIND_BASE];
    return "?";
}

int ir_count_params(const IrProgram *p, IrParamRole role, size_t *numel) {
    int n = 0;
    size_t total = 0;
    for (int i = 0; i < p->nparams; i++)
        if (p->params[i].role == role) {
            n++;
            total += p->params[i].numel;
        }
    if (numel)
        *numel = total;
    return n;
}

static void dump_shape(FILE *f, const IrValue *v) {
    fprintf(f, "%s[", v->dtype == IR_I32 ? "i32" : "f32");
    int first = 1;
    if (v->batched) {
        fputs("B", f);
        first = 0;
    }
    for (int i = 0; i < v->ndim; i++) {
        fprintf(f, "%s%d", first ? "" : ", ", v->dim[i]);
        first = 0;
    }
    fputs("]", f);
}

void ir_dump(const IrProgram *p, const IrGraph *g, void *file) {
    FILE *f = file;
    (void)p;
    fprintf(f, "graph %s\n", g->name);
    for (int i = 0; i < g->nops; i++) {
        const IrOp *op = g->ops[i];
        if (op->dead)
            continue;
        fprintf(f, "  %3d %s", i, op->backward ? "bwd " : "fwd ");
        for (int j = 0; j < op->nout; j++) {
            fprintf(f, "%s%%%d:", j ? ", " : "", op->out[j]->id);
            dump_shape(f, op->out[j]);
        }
        fprintf(f, " = %s%s%s(", ir_kind_name(op->kind), op->fused_relu ? "+relu" : "",
                op->in_place ? "!" : "");
        for (int j = 0; j < op->nin; j++) {
            const IrValue *v = op->in[j];
            if (!v)
                fprintf(f, "%s_", j ? ", " : "");
            else if (v->storage == IR_ST_PARAM)
                fprintf(f, "%s%s", j ? ", " : "", v->name);
            else
                fprintf(f, "%s%%%d", j ? ", " : "", v->id);
        }
        fputs(")", f);
        if (op->layer)
            fprintf(f, "  # %s", op->layer);
        fputs("\n", f);
    }
    if (g->loss)
        fprintf(f, "  loss %%%d\n", g->loss->id);
    for (int i = 0; i < g->nlogs; i++)
        fprintf(f, "  log %s = %%%d\n", g->logs[i].name, g->logs[i].value->id);
}

/* ---- lowering: the elaborated graphs of ast.h to IR ---------------------- */

#include "ast.h"
#include "ctx.h"

#define LOWER_MAX_DEPTH 64 /* networks calling networks */

typedef struct Lower {
    Ctx *ctx;
    Module *mod;
    IrProgram *p;
    IrGraph *g;
    GParam **gparams; /* index i: the GParam behind p->params[i] */
    struct ParamRef *byptr; /* gparams sorted by address, for param_index */
    int errors;
} Lower;

/* The index of attribute `name` among op's ATTR rows, or -1. */
static int attr_index(lg_op_id op, const char *name) {
    int k = 0;
#define ATTR(ID, aname, type, dflt, lo, hi, doc)                                                   \
    if (op == LG_OP_##ID) {                                                                        \
        if (!strcmp(aname, name))                                                                  \
            return k;                                                                              \
        k++;                                                                                       \
    }
#include "lgen/ops.def"
    return -1;
}

static const AttrValue *attr(const GNode *n, const char *name) {
    int k = attr_index(n->op, name);
    if (k < 0 || k >= n->nattrs)
        return NULL;
    return &n->attrs[k];
}

static int attr_int(const GNode *n, const char *name, int dflt) {
    const AttrValue *a = attr(n, name);
    if (!a)
        return dflt;
    if (a->type == TY_FLOAT)
        return (int)a->f;
    return (int)a->i;
}

/* The word `none` (a FLOAT_OR_NONE attribute set to PyTorch's None). */
static bool attr_is_none(const GNode *n, const char *name) {
    const AttrValue *a = attr(n, name);
    return a && a->type == TY_ENUM && a->s && strcmp(a->s, "none") == 0;
}

static double attr_float(const GNode *n, const char *name, double dflt) {
    const AttrValue *a = attr(n, name);
    if (!a)
        return dflt;
    return a->type == TY_FLOAT ? a->f : (double)a->i;
}

/* INT2 attributes: (h, w); an unset pair (n == 0) takes the scalar i, or dflt. */
static void attr_pair(const GNode *n, const char *name, int dflt, int *h, int *w) {
    const AttrValue *a = attr(n, name);
    if (!a || a->type == TY_NONE) {
        *h = *w = dflt;
    } else if (a->n >= 2) {
        *h = (int)a->ints[0];
        *w = (int)a->ints[1];
    } else if (a->n == 1) {
        *h = *w = (int)a->ints[0];
    } else {
        *h = *w = (int)a->i;
    }
}

static int attr_enum(const GNode *n, const char *name, const char *second) {
    const AttrValue *a = attr(n, name);
    return a && a->s && !strcmp(a->s, second);
}

static IrDtype dtype_of(DType t) {
    return t == DT_F32 ? IR_F32 : IR_I32;
}

static void shape_dims(const Shape *s, int *ndim, int *dim) {
    *ndim = s->rank > IR_MAX_DIMS ? IR_MAX_DIMS : s->rank;
    for (int i = 0; i < *ndim; i++)
        dim[i] = (int)s->dim[i];
}

/* p->params index of a layer's GParam: a binary search in L->byptr (the
 * table sorted by GParam address), or -1. */
typedef struct ParamRef {
    const GParam *gp;
    int index;
} ParamRef;

static int ref_cmp(const void *a, const void *b) {
    const ParamRef *x = a, *y = b;
    return x->gp < y->gp ? -1 : x->gp > y->gp;
}

static int param_index(Lower *L, GParam *gp) {
    if (!L->byptr) {
        L->byptr = xcalloc(((size_t)L->p->nparams + 1) * sizeof *L->byptr);
        for (int i = 0; i < L->p->nparams; i++)
            L->byptr[i] = (ParamRef){L->gparams[i], i};
        qsort(L->byptr, (size_t)L->p->nparams, sizeof *L->byptr, ref_cmp);
    }
    ParamRef key = {gp, 0};
    ParamRef *r = bsearch(&key, L->byptr, (size_t)L->p->nparams, sizeof *L->byptr, ref_cmp);
    return r ? r->index : -1;
}

/* Every network a step calls contributes its parameters; with one network
 * the names are its state_dict names ("conv1.weight"), with several they are
 * prefixed by the network ("encoder.conv1.weight"), as attributes of a
 * LightningModule would be. */
static void collect_params(Lower *L) {
    Module *mod = L->mod;
    int nnets = 0;
    for (int i = 0; i < mod->nnetworks; i++)
        if (!mod->networks[i]->is_block && mod->networks[i]->graph &&
            mod->networks[i]->graph->nparams)
            nnets++;
    int total = 0;
    for (int i = 0; i < mod->nnetworks; i++)
        if (!mod->networks[i]->is_block && mod->networks[i]->graph)
            total += mod->networks[i]->graph->nparams;
    L->gparams = calloc((size_t)total + 1, sizeof *L->gparams);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < mod->nnetworks; i++) {
            Network *net = mod->networks[i];
            if (net->is_block || !net->graph)
                continue;
            for (int j = 0; j < net->graph->nparams; j++) {
                GParam *gp = net->graph->params[j];
                if (gp->trainable != (pass == 0))
                    continue;
                int ndim, dim[IR_MAX_DIMS];
                shape_dims(&gp->shape, &ndim, dim);
                const char *name = nnets > 1 ? ir_fmt(L->p, "%s.%s", net->name, gp->name) : gp->name;
                int k = ir_add_param(L->p, name, gp->trainable ? IR_TRAIN : IR_BUFFER, ndim, dim);
                IrParam *q = &L->p->params[k];
                q->owner = gp->node ? (IrKind)gp->node->op : -1;
                if (gp->trainable && gp->node && gp->node->ninputs > 0) {
                    /* fan_in = in_features, or in_channels / groups * kh * kw */
                    size_t fan = 1;
                    for (int d = 1; d < q->ndim; d++)
                        fan *= (size_t)q->dim[d];
                    q->fan_in = (int)fan;
                }
                if (gp->dtype == DT_I64)
                    q->dtype = IR_I32; /* num_batches_tracked: a counter */
                L->gparams[k] = gp;
            }
        }
    /* biases take the fan-in of their layer's weight */
    for (int i = 0; i < L->p->nparams; i++) {
        IrParam *q = &L->p->params[i];
        GParam *gp = L->gparams[i];
        if (q->ndim == 1 && q->role == IR_TRAIN && gp->node && gp->node->nparams > 0) {
            int w = param_index(L, gp->node->params[0]);
            if (w >= 0 && w != i)
                q->fan_in = L->p->params[w].fan_in;
        }
    }
}

static void set_loc(Lower *L, IrOp *op, Loc loc) {
    if (loc.file < 0)
        return;
    const SrcFile *f = diag_file(L->ctx, loc.file);
    int line, col;
    diag_line_col(L->ctx, loc, &line, &col);
    const char *base = f ? strrchr(f->path, '/') : NULL;
    op->file = f ? (base ? base + 1 : f->path) : NULL;
    op->line = line;
}

static const char *value_name(IrProgram *p, const GNode *n, const GValue *v, int k) {
    if (n->layer)
        return k ? ir_fmt(p, "%s_%d", n->layer, k) : n->layer;
    if (v->name)
        return v->name;
    return ir_fmt(p, "%s%d", ir_kind_name((IrKind)n->op), v->id);
}

static void lower_attrs(const GNode *n, IrAttrs *a) {
    switch (n->op) {
    case LG_OP_LINEAR:
        a->out_features = attr_int(n, "out_features", 0);
        a->bias = attr_int(n, "bias", 1);
        break;
    case LG_OP_CONV2D:
        a->out_features = attr_int(n, "out_channels", 0);
        attr_pair(n, "kernel", 1, &a->kh, &a->kw);
        attr_pair(n, "stride", 1, &a->sh, &a->sw);
        attr_pair(n, "padding", 0, &a->ph, &a->pw);
        attr_pair(n, "dilation", 1, &a->dh, &a->dw);
        a->groups = attr_int(n, "groups", 1);
        a->bias = attr_int(n, "bias", 1);
        break;
    case LG_OP_MAX_POOL2D:
    case LG_OP_AVG_POOL2D:
        attr_pair(n, "kernel", 1, &a->kh, &a->kw);
        attr_pair(n, "stride", 0, &a->sh, &a->sw);
        if (a->sh <= 0 || a->sw <= 0) {
            a->sh = a->kh;
            a->sw = a->kw;
        }
        attr_pair(n, "padding", 0, &a->ph, &a->pw);
        a->ceil_mode = attr_int(n, "ceil_mode", 0);
        a->count_include_pad = attr_int(n, "count_include_pad", 1);
        break;
    case LG_OP_ADAPTIVE_AVG_POOL2D:
        attr_pair(n, "output_size", 1, &a->out_h, &a->out_w);
        break;
    case LG_OP_UPSAMPLE_NEAREST:
        a->scale = attr_int(n, "scale", 2);
        break;
    case LG_OP_BATCH_NORM:
        a->eps = attr_float(n, "eps", 1e-5);
        /* momentum none (a cumulative average) is -1 here */
        a->momentum = attr_is_none(n, "momentum") ? -1 : attr_float(n, "momentum", 0.1);
        a->affine = attr_int(n, "affine", 1);
        break;
    case LG_OP_LAYER_NORM:
        a->eps = attr_float(n, "eps", 1e-5);
        a->affine = attr_int(n, "affine", 1);
        break;
    case LG_OP_LEAKY_RELU:
        a->slope = attr_float(n, "negative_slope", 0.01);
        break;
    case LG_OP_GELU:
        a->approximate = attr_enum(n, "approximate", "tanh");
        break;
    case LG_OP_DROPOUT:
        a->p = attr_float(n, "p", 0.5);
        break;
    case LG_OP_SOFTMAX:
    case LG_OP_LOG_SOFTMAX:
    case LG_OP_CONCAT:
    case LG_OP_SPLIT:
        a->dim = attr_int(n, "dim", n->op == LG_OP_SOFTMAX || n->op == LG_OP_LOG_SOFTMAX ? -1 : 0);
        break;
    case LG_OP_SCALE:
        a->by = attr_float(n, "by", 1);
        break;
    case LG_OP_TRANSPOSE:
        a->dim0 = attr_int(n, "dim0", 0);
        a->dim1 = attr_int(n, "dim1", 1);
        break;
    case LG_OP_CROSS_ENTROPY:
        a->label_smoothing = attr_float(n, "label_smoothing", 0);
        a->ignore_index = attr_int(n, "ignore_index", -100);
        a->reduction = attr_enum(n, "reduction", "sum");
        break;
    case LG_OP_SMOOTH_L1_LOSS:
        a->beta = attr_float(n, "beta", 1.0);
        a->reduction = attr_enum(n, "reduction", "sum");
        break;
    case LG_OP_MSE_LOSS:
    case LG_OP_L1_LOSS:
    case LG_OP_BCE_WITH_LOGITS:
        a->reduction = attr_enum(n, "reduction", "sum");
        break;
    case LG_OP_TOPK_ACCURACY:
        a->k = attr_int(n, "k", 5);
        break;
    default:
        break;
    }
}

/* Extra outputs that only the training graph keeps for its backward. */
static void add_saved(IrGraph *g, IrOp *op, int training) {
    IrValue *y = op->out[0];
    if (op->kind == LG_OP_MAX_POOL2D && training) {
        IrValue *am = ir_value(g, ir_fmt(g->prog, "%s_argmax", y->name), IR_I32, 1, y->ndim, y->dim);
        am->def = op;
        op->out[op->nout++] = am;
    } else if (op->kind == LG_OP_DROPOUT && training) {
        IrValue *m = ir_value(g, ir_fmt(g->prog, "%s_mask", y->name), IR_I32, 1, y->ndim, y->dim);
        m->def = op;
        op->out[op->nout++] = m;
    } else if (op->kind == LG_OP_LAYER_NORM) {
        /* mean and invstd of every normalised row: numel / D per sample */
        int rows = (int)(ir_numel(y) / (size_t)y->dim[y->ndim - 1]);
        IrValue *mean = ir_value(g, ir_fmt(g->prog, "%s_mean", y->name), IR_F32, y->batched, 1, &rows);
        IrValue *inv = ir_value(g, ir_fmt(g->prog, "%s_invstd", y->name), IR_F32, y->batched, 1, &rows);
        mean->def = inv->def = op;
        op->out[op->nout++] = mean;
        op->out[op->nout++] = inv;
    } else if (op->kind == LG_OP_BATCH_NORM && training) {
        int c = y->dim[0];
        IrValue *mean = ir_value(g, ir_fmt(g->prog, "%s_mean", y->name), IR_F32, 0, 1, &c);
        IrValue *inv = ir_value(g, ir_fmt(g->prog, "%s_invstd", y->name), IR_F32, 0, 1, &c);
        mean->def = inv->def = op;
        op->out[op->nout++] = mean;
        op->out[op->nout++] = inv;
    }
}

static int lower_graph(Lower *L, Graph *gr, IrValue **args, IrValue **results, int depth);

/* ---- detection ops ---------------------------------------------------------
 * Faster R-CNN's plumbing keeps static shapes: every variable count is a
 * maximum, and the ops carry the extra outputs the runtime's batch functions
 * write (proposal scores and counts, sampled labels, detection scores ...)
 * as values of the graph, so the plan places them like any activation. */

/* FLOATS attribute into a->floats (at most IR_MAX_DIMS * 2). */
static void attr_floats(const GNode *n, const char *name, IrAttrs *a) {
    const AttrValue *v = attr(n, name);
    a->nfloats = 0;
    for (int i = 0; v && i < v->n && i < IR_MAX_DIMS * 2; i++)
        a->floats[a->nfloats++] = v->floats[i];
}

/* A further output of op. */
static IrValue *add_out(IrGraph *g, IrOp *op, const char *name, IrDtype dt, int batched, int ndim, const int *dim) {
    IrValue *v = ir_value(g, name, dt, batched, ndim, dim);
    v->def = op;
    op->out[op->nout++] = v;
    return v;
}

/* The RoI batch (P, 5) of a proposals value (P, 4): made once, before its
 * first reader; a sampled RoI batch (roi_sample's first output) is one
 * already. */
static IrValue *roi_batch(Lower *L, IrValue *v) {
    IrGraph *g = L->g;
    if (!v->def || v->def->kind != LG_OP_PROPOSALS)
        return v;
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i]->kind == IR_ROIS_FROM_PROPOSALS && g->ops[i]->in[0] == v)
            return g->ops[i]->out[0];
    IrValue *in[2] = {v, v->def->out[2]};
    int dim[2] = {v->dim[0], 5};
    IrValue *r = ir_op1(g, IR_ROIS_FROM_PROPOSALS, 2, in, ir_fmt(L->p, "%s_rois", v->name), IR_F32, 1, 2, dim);
    r->requires_grad = 0;
    r->def->file = v->def->file;
    r->def->line = v->def->line;
    return r;
}

/* rpn_head over L levels: per level a 3x3 conv + relu and the two 1x1 convs
 * (the parameters shared by every level), then the per-level maps permuted
 * into anchor order (objectness (total), deltas (total, 4)). */
static int lower_rpn_head(Lower *L, GNode *n, IrValue **in, int nin, IrValue **outs) {
    IrGraph *g = L->g;
    int k0 = param_index(L, n->params[0]);
    if (n->nparams != 6 || k0 < 0) {
        diag_error(L->ctx, n->loc, "internal: rpn_head without its six parameters");
        return 1;
    }
    IrValue *w[6];
    for (int i = 0; i < 6; i++)
        w[i] = ir_param_value(L->p, g, k0 + i, IR_ST_PARAM);
    int A = attr_int(n, "num_anchors", 3);
    const char *layer = n->layer ? n->layer : "rpn_head";
    IrValue *cls[IR_MAX_INPUTS], *box[IR_MAX_INPUTS];
    for (int l = 0; l < nin; l++) {
        IrValue *x = in[l];
        int C = x->dim[0];
        struct {
            const char *leaf;
            int cout, k, pad;
            IrValue *src;
        } convs[3] = {{"conv.0.0", C, 3, 1, x}, {"cls_logits", A, 1, 0, NULL}, {"bbox_pred", 4 * A, 1, 0, NULL}};
        IrValue *t = NULL;
        for (int c = 0; c < 3; c++) {
            int dim[3] = {convs[c].cout, x->dim[1], x->dim[2]};
            IrValue *cin[3] = {c ? t : x, w[2 * c], w[2 * c + 1]};
            const char *name = ir_fmt(L->p, "%s.%s.%d", layer, convs[c].leaf, l);
            IrValue *y = ir_op1(g, LG_OP_CONV2D, 3, cin, name, IR_F32, 1, 3, dim);
            IrOp *op = y->def;
            op->layer = ir_fmt(L->p, "%s.%s", layer, convs[c].leaf);
            set_loc(L, op, n->loc);
            op->a.out_features = convs[c].cout;
            op->a.kh = op->a.kw = convs[c].k;
            op->a.sh = op->a.sw = op->a.dh = op->a.dw = op->a.groups = 1;
            op->a.ph = op->a.pw = convs[c].pad;
            op->a.bias = 1;
            op->param = k0 + 2 * c;
            op->nparam = 2;
            if (c == 0) {
                IrValue *rin[1] = {y};
                t = ir_op1(g, LG_OP_RELU, 1, rin, ir_fmt(L->p, "%s.relu.%d", layer, l), IR_F32, 1, 3, dim);
                set_loc(L, t->def, n->loc);
            } else if (c == 1) {
                cls[l] = y;
            } else {
                box[l] = y;
            }
        }
    }
    for (int d = 0; d < 2; d++) {
        int D = d ? 4 : 1;
        int total = 0;
        for (int l = 0; l < nin; l++)
            total += in[l]->dim[1] * in[l]->dim[2] * A;
        int dim[2] = {total, 4};
        GValue *o = n->outputs[d];
        IrValue *y = ir_op1(g, IR_RPN_FLATTEN, nin, d ? box : cls, o->name ? o->name : value_name(L->p, n, o, d),
                            IR_F32, 1, d ? 2 : 1,
                            dim);
        set_loc(L, y->def, n->loc);
        y->def->a.k = D;
        y->def->a.num_anchors = A;
        y->def->layer = layer;
        outs[d] = y;
    }
    return 0;
}

/* The detection ops other than rpn_head: one IR op each, with the extra
 * outputs and attributes the emitter needs. Returns -1 for other ops. */
static int lower_detect(Lower *L, GNode *n, IrValue **in, int nin, IrValue **outs) {
    IrGraph *g = L->g;
    IrProgram *p = L->p;
    GValue *o0 = n->outputs[0];
    const char *name = value_name(p, n, o0, 0);
    int dim[IR_MAX_DIMS], ndim;
    IrValue *y = NULL;
    IrAttrs a;
    memset(&a, 0, sizeof a);
    switch (n->op) {
    case LG_OP_RPN_HEAD:
        return lower_rpn_head(L, n, in, nin, outs);
    case LG_OP_ANCHORS: {
        const AttrValue *sz = attr(n, "sizes");
        a.nsizes = 0;
        for (int i = 0; sz && i < sz->n && i < IR_MAX_DIMS; i++)
            a.sizes[a.nsizes++] = (int)sz->ints[i];
        attr_floats(n, "aspect_ratios", &a);
        attr_pair(n, "image_size", 0, &a.image_h, &a.image_w);
        if (nin != a.nsizes && nin != 1) {
            diag_error(L->ctx, n->loc, "'anchors' takes one size per feature map (at most %d)", IR_MAX_DIMS);
            return 1;
        }
        shape_dims(&o0->shape, &ndim, dim);
        y = ir_op1(g, LG_OP_ANCHORS, nin, in, name, IR_F32, 0, ndim, dim);
        break;
    }
    case LG_OP_PROPOSALS: {
        a.top_n = attr_int(n, "pre_nms_top_n", 2000);
        a.post_top_n = attr_int(n, "post_nms_top_n", 2000);
        a.nms_thresh = attr_float(n, "nms_thresh", 0.7);
        a.min_size = attr_float(n, "min_size", 1e-3);
        a.thresh = attr_float(n, "score_thresh", 0);
        attr_pair(n, "image_size", 0, &a.image_h, &a.image_w);
        if (in[2]->def == NULL || in[2]->def->kind != LG_OP_ANCHORS) {
            diag_error(L->ctx, n->loc, "'proposals' needs the anchors op's output as its third input");
            return 1;
        }
        int P = a.post_top_n, one = 1;
        dim[0] = P;
        dim[1] = 4;
        y = ir_op1(g, LG_OP_PROPOSALS, 3, in, name, IR_F32, 1, 2, dim);
        add_out(g, y->def, ir_fmt(p, "%s_scores", name), IR_F32, 1, 1, &P);
        add_out(g, y->def, ir_fmt(p, "%s_count", name), IR_I32, 1, 1, &one);
        break;
    }
    case LG_OP_RPN_LOSS: {
        a.fg_iou = attr_float(n, "fg_iou_thresh", 0.7);
        a.bg_iou = attr_float(n, "bg_iou_thresh", 0.3);
        a.per_image = attr_int(n, "batch_size_per_image", 256);
        a.fraction = attr_float(n, "positive_fraction", 0.5);
        a.beta = attr_float(n, "beta", 1.0 / 9);
        a.seed = attr_int(n, "seed", 0);
        if (!in[2]->def || in[2]->def->kind != LG_OP_ANCHORS || in[3]->storage != IR_ST_INPUT) {
            diag_error(L->ctx, n->loc, "'rpn_loss' needs the anchors op's output and the batch's targets (b.targets)");
            return 1;
        }
        int A = in[0]->dim[0], dim2[2] = {A, 4};
        y = ir_op1(g, LG_OP_RPN_LOSS, 4, in, name, IR_F32, 0, 0, dim);
        add_out(g, y->def, value_name(p, n, n->outputs[1], 1), IR_F32, 0, 0, dim)->requires_grad = y->requires_grad;
        add_out(g, y->def, ir_fmt(p, "%s_labels", name), IR_I32, 1, 1, &A);
        add_out(g, y->def, ir_fmt(p, "%s_box_targets", name), IR_F32, 1, 2, dim2);
        break;
    }
    case LG_OP_ROI_SAMPLE: {
        a.fg_iou = attr_float(n, "fg_iou_thresh", 0.5);
        a.bg_iou = attr_float(n, "bg_iou_thresh", 0.5);
        a.per_image = attr_int(n, "batch_size_per_image", 512);
        a.fraction = attr_float(n, "positive_fraction", 0.25);
        a.seed = attr_int(n, "seed", 0);
        attr_floats(n, "weights", &a);
        if (!in[0]->def || in[0]->def->kind != LG_OP_PROPOSALS || in[1]->storage != IR_ST_INPUT) {
            diag_error(L->ctx, n->loc, "'roi_sample' needs the proposals op's output and the batch's targets (b.targets)");
            return 1;
        }
        int R = a.per_image, d5[2] = {R, 5}, d4[2] = {R, 4};
        IrValue *sin[3] = {in[0], in[1], in[0]->def->out[2]};
        y = ir_op1(g, LG_OP_ROI_SAMPLE, 3, sin, name, IR_F32, 1, 2, d5);
        add_out(g, y->def, value_name(p, n, n->outputs[1], 1), IR_I32, 1, 1, &R);
        add_out(g, y->def, value_name(p, n, n->outputs[2], 2), IR_F32, 1, 2, d4);
        break;
    }
    case LG_OP_ROI_ALIGN: {
        attr_pair(n, "output_size", 7, &a.out_h, &a.out_w);
        attr_floats(n, "spatial_scale", &a);
        a.sampling_ratio = attr_int(n, "sampling_ratio", 2);
        a.aligned = attr_int(n, "aligned", 0);
        a.canonical_scale = attr_int(n, "canonical_scale", 224);
        a.canonical_level = attr_int(n, "canonical_level", 4);
        if (nin - 1 > 8 || nin - 1 != a.nfloats) {
            diag_error(L->ctx, n->loc, "'roi_align' takes one spatial scale per feature map (at most 8 maps)");
            return 1;
        }
        in[0] = roi_batch(L, in[0]);
        shape_dims(&o0->shape, &ndim, dim);
        y = ir_op1(g, LG_OP_ROI_ALIGN, nin, in, name, IR_F32, 1, ndim, dim);
        break;
    }
    case LG_OP_FASTRCNN_LOSS:
        a.beta = attr_float(n, "beta", 1.0 / 9);
        y = ir_op1(g, LG_OP_FASTRCNN_LOSS, 4, in, name, IR_F32, 0, 0, dim);
        add_out(g, y->def, value_name(p, n, n->outputs[1], 1), IR_F32, 0, 0, dim)->requires_grad = y->requires_grad;
        break;
    case LG_OP_DETECTIONS: {
        a.thresh = attr_float(n, "score_thresh", 0.05);
        a.nms_thresh = attr_float(n, "nms_thresh", 0.5);
        a.post_top_n = attr_int(n, "detections_per_img", 100);
        a.min_size = attr_float(n, "min_size", 1e-2);
        attr_floats(n, "weights", &a);
        attr_pair(n, "image_size", 0, &a.image_h, &a.image_w);
        in[2] = roi_batch(L, in[2]);
        int D = a.post_top_n, d4[2] = {D, 4}, one = 1;
        y = ir_op1(g, LG_OP_DETECTIONS, 3, in, name, IR_F32, 1, 2, d4);
        add_out(g, y->def, ir_fmt(p, "%s_scores", name), IR_F32, 1, 1, &D);
        add_out(g, y->def, ir_fmt(p, "%s_labels", name), IR_I32, 1, 1, &D);
        add_out(g, y->def, ir_fmt(p, "%s_count", name), IR_I32, 1, 1, &one);
        y->requires_grad = 0;
        break;
    }
    case LG_OP_VOC_MAP: {
        a.thresh = attr_float(n, "iou_thresh", 0.5);
        a.use_07 = attr_int(n, "use_07_metric", 0);
        a.pixel_offset = attr_int(n, "pixel_offset", 0);
        IrOp *d = in[0]->def;
        if (!d || d->kind != LG_OP_DETECTIONS || in[1]->storage != IR_ST_INPUT) {
            diag_error(L->ctx, n->loc, "'voc_map' needs the detections op's output and the batch's targets (b.targets)");
            return 1;
        }
        IrValue *vin[5] = {d->out[0], in[1], d->out[1], d->out[2], d->out[3]};
        y = ir_op1(g, LG_OP_VOC_MAP, 5, vin, name, IR_F32, 0, 0, dim);
        a.k = d->in[0]->dim[1]; /* classes, background included */
        break;
    }
    default:
        return -1;
    }
    IrOp *op = y->def;
    op->a = a;
    op->layer = n->layer;
    set_loc(L, op, n->loc);
    if (n->op != LG_OP_RPN_LOSS && n->op != LG_OP_FASTRCNN_LOSS && n->op != LG_OP_ROI_ALIGN)
        for (int i = 0; i < op->nout; i++)
            op->out[i]->requires_grad = 0;
    if (n->op == LG_OP_RPN_LOSS)
        op->out[2]->requires_grad = op->out[3]->requires_grad = 0;
    for (int i = 0; i < n->noutputs && i < op->nout; i++)
        outs[i] = op->out[i];
    return 0;
}


static int lg_op_kind_is_detect(int op) {
    switch (op) {
    case LG_OP_ANCHORS:
    case LG_OP_RPN_HEAD:
    case LG_OP_PROPOSALS:
    case LG_OP_RPN_LOSS:
    case LG_OP_ROI_SAMPLE:
    case LG_OP_ROI_ALIGN:
    case LG_OP_FASTRCNN_LOSS:
    case LG_OP_DETECTIONS:
    case LG_OP_VOC_MAP:
        return 1;
    default:
        return 0;
    }
}

static int lower_node(Lower *L, GNode *n, IrValue **env, int depth) {
    IrGraph *g = L->g;
    int training = g->step == IR_STEP_TRAIN;
    if (n->kind == GN_INPUT)
        return 0; /* bound by the caller */
    if (n->kind == GN_CONST) {
        diag_error(L->ctx, n->loc, "constants in steps are not supported by the code generator yet");
        return 1;
    }
    IrValue *in[IR_MAX_INPUTS];
    int nin = n->ninputs > IR_MAX_INPUTS ? IR_MAX_INPUTS : n->ninputs;
    for (int i = 0; i < nin; i++) {
        in[i] = env[n->inputs[i]->id];
        if (!in[i]) {
            diag_error(L->ctx, n->loc, "internal: input %d of this call has no value", i);
            return 1;
        }
    }
    if (n->kind == GN_CALL) {
        IrValue *res[IR_MAX_OUTPUTS] = {0};
        if (!n->callee || !n->callee->graph) {
            diag_error(L->ctx, n->loc, "internal: call of a network without a graph");
            return 1;
        }
        if (depth >= LOWER_MAX_DEPTH) {
            diag_error(L->ctx, n->loc, "networks nested deeper than %d", LOWER_MAX_DEPTH);
            return 1;
        }
        int e = lower_graph(L, n->callee->graph, in, res, depth + 1);
        for (int i = 0; i < n->noutputs && i < IR_MAX_OUTPUTS; i++)
            env[n->outputs[i]->id] = res[i];
        return e;
    }
    /* GN_OP */
    if (lg_op_kind_is_detect(n->op)) {
        IrValue *res[IR_MAX_OUTPUTS] = {0};
        int e = lower_detect(L, n, in, nin, res);
        for (int k = 0; k < n->noutputs && k < IR_MAX_OUTPUTS; k++)
            env[n->outputs[k]->id] = res[k];
        return e;
    }
    GValue *out0 = n->outputs[0];
    int ndim, dim[IR_MAX_DIMS];
    shape_dims(&out0->shape, &ndim, dim);
    int nall = nin;
    /* batch_norm keeps its inputs' places (x, weight, bias, running_mean,
     * running_var, num_batches_tracked): without affine parameters (three
     * of them) weight and bias are NULL, as the emitters and autodiff read them */
    if (n->op == LG_OP_BATCH_NORM && n->nparams == 3 && nall + 2 <= IR_MAX_INPUTS) {
        in[nall++] = NULL;
        in[nall++] = NULL;
    }
    for (int i = 0; i < n->nparams && nall < IR_MAX_INPUTS; i++) {
        int k = param_index(L, n->params[i]);
        if (k < 0) {
            diag_error(L->ctx, n->loc, "internal: parameter '%s' not in the table", n->params[i]->name);
            return 1;
        }
        in[nall++] = ir_param_value(L->p, g, k, IR_ST_PARAM);
    }
    IrValue *y = ir_op1(g, (IrKind)n->op, nall, in, value_name(L->p, n, out0, 0), dtype_of(out0->dtype),
                        out0->shape.batched, ndim, dim);
    IrOp *op = y->def;
    op->layer = n->layer;
    set_loc(L, op, n->loc);
    lower_attrs(n, &op->a);
    if (n->nparams) {
        op->param = param_index(L, n->params[0]);
        op->nparam = n->nparams;
    }
    if (n->op == LG_OP_FLATTEN || n->op == LG_OP_RESHAPE) {
        y->storage = IR_ST_VIEW;
        y->base = in[0];
    }
    if (n->op == LG_OP_ACCURACY || n->op == LG_OP_TOPK_ACCURACY)
        y->requires_grad = 0;
    for (int k = 1; k < n->noutputs && k < IR_MAX_OUTPUTS; k++) {
        GValue *o = n->outputs[k];
        shape_dims(&o->shape, &ndim, dim);
        IrValue *v = ir_value(g, value_name(L->p, n, o, k), dtype_of(o->dtype), o->shape.batched, ndim, dim);
        v->def = op;
        v->requires_grad = y->requires_grad;
        op->out[op->nout++] = v;
    }
    add_saved(g, op, training);
    env[out0->id] = y;
    for (int k = 1; k < n->noutputs && k < IR_MAX_OUTPUTS; k++)
        env[n->outputs[k]->id] = op->out[k];
    return 0;
}

/* A logged voc_map is followed by one log per class, "<name>_<class>" (the
 * classes of the spec's voc data set), which the epoch's per-class AP fills
 * (emit_c.c's eval_end). */
static void per_class_logs(Lower *L) {
    IrGraph *g = L->g;
    const Dataset *ds = NULL;
    for (int i = 0; i < L->mod->ndatasets; i++)
        if (L->mod->datasets[i]->format == FMT_VOC && !ds)
            ds = L->mod->datasets[i];
    for (int k = 0; k < g->nlogs; k++) {
        IrValue *v = g->logs[k].value;
        if (!v->def || v->def->kind != LG_OP_VOC_MAP)
            continue;
        int K = v->def->a.k;
        /* val_map -> val_ap_<class> */
        const char *base = g->logs[k].name, *m = strstr(base, "map");
        if (m)
            base = ir_fmt(L->p, "%.*sap%s", (int)(m - base), base, m + 3);
        else
            base = ir_fmt(L->p, "%s_ap", base);
        for (int c = 1; c < K; c++) {
            const char *cls = ds && ds->nclasses == K - 1 ? ds->classes[c - 1] : ir_fmt(L->p, "class%d", c);
            ir_log(g, ir_fmt(L->p, "%s_%s", base, cls), v);
            /* move it to k + c */
            IrLog t = g->logs[g->nlogs - 1];
            memmove(&g->logs[k + c + 1], &g->logs[k + c], (size_t)(g->nlogs - 1 - (k + c)) * sizeof *g->logs);
            g->logs[k + c] = t;
        }
        k += K - 1;
    }
}

static int lower_graph(Lower *L, Graph *gr, IrValue **args, IrValue **results, int depth) {
    IrValue **env = calloc((size_t)gr->nvalues + 1, sizeof *env);
    int errors = 0;
    for (int i = 0; i < gr->ninputs; i++)
        env[gr->inputs[i]->id] = args[i];
    for (int i = 0; i < gr->nnodes && !errors; i++)
        errors += lower_node(L, gr->nodes[i], env, depth);
    for (int i = 0; i < gr->noutputs && i < IR_MAX_OUTPUTS && !errors; i++)
        results[i] = gr->outputs[i] ? env[gr->outputs[i]->id] : NULL;
    if (!errors && L->g->step != IR_STEP_COUNT && depth == 0) {
        /* a step: its loss, logs and outputs */
        if (gr->loss)
            L->g->loss = env[gr->loss->id];
        for (int i = 0; i < gr->nlogs; i++)
            if (env[gr->log_values[i]->id]) {
                ir_log(L->g, gr->log_names[i], env[gr->log_values[i]->id]);
                Stmt *st = gr->log_stmts ? gr->log_stmts[i] : NULL;
                for (int k = 0; st && k < st->nopts; k++)
                    if (st->opts[k].key && !strcmp(st->opts[k].key, "prog_bar") && st->opts[k].value)
                        L->g->logs[L->g->nlogs - 1].prog_bar =
                            st->opts[k].value->kind == EX_BOOL ? (int)st->opts[k].value->ival
                                                               : (int)st->opts[k].value->cv.i;
            }
        if (gr->noutputs && gr->outputs[0])
            L->g->output = env[gr->outputs[0]->id];
        per_class_logs(L);
    }
    free(env);
    return errors;
}

/* Lightning's predict_step defaults to forward(batch): a spec without a
 * `step predict` whose one network reads the batch's image predicts with
 * that network's output (the runtime turns logits into probabilities). */
static int default_predict(Lower *L) {
    IrProgram *p = L->p;
    IrGraph *g = &p->graphs[IR_STEP_PREDICT];
    if (g->present)
        return 0;
    Network *net = NULL;
    int nnets = 0;
    for (int i = 0; i < L->mod->nnetworks; i++)
        if (!L->mod->networks[i]->is_block && L->mod->networks[i]->graph) {
            net = L->mod->networks[i];
            nnets++;
        }
    if (nnets != 1 || net->graph->ninputs != 1 || net->graph->noutputs < 1 || !net->graph->outputs[0])
        return 0;
    int image = -1;
    for (int i = 0; i < p->ninputs; i++)
        if (!strcmp(p->inputs[i].name, "image"))
            image = i;
    GValue *x = net->graph->inputs[0];
    if (image < 0 || x->dtype != DT_F32 || x->shape.rank != p->inputs[image].ndim)
        return 0;
    for (int d = 0; d < x->shape.rank; d++)
        if (x->shape.dim[d] != p->inputs[image].dim[d])
            return 0;
    g->present = 1;
    L->g = g;
    const char *base = strrchr(L->mod->path, '/');
    g->file = base ? base + 1 : L->mod->path;
    int col;
    diag_line_col(L->ctx, net->loc, &g->line, &col);
    IrValue *args[1] = {ir_input_value(p, g, image)};
    IrValue *res[IR_MAX_OUTPUTS] = {0};
    return lower_graph(L, net->graph, args, res, 0);
}

static IrStepKind step_kind(StepKind k) {
    switch (k) {
    case STEP_TRAIN: return IR_STEP_TRAIN;
    case STEP_VALIDATE: return IR_STEP_VALIDATE;
    case STEP_TEST: return IR_STEP_TEST;
    default: return IR_STEP_PREDICT;
    }
}

int ir_lower(Ctx *ctx, Module *mod, IrProgram *p) {
    Lower L = {.ctx = ctx, .mod = mod, .p = p};
    const char *base = strrchr(mod->path, '/');
    ir_program_init(p, mod->name ? mod->name : "model");
    p->spec_path = mod->path;
    collect_params(&L);
    for (int s = 0; s < mod->nsteps; s++) {
        Step *st = mod->steps[s];
        if (!st->graph)
            continue;
        IrGraph *g = &p->graphs[step_kind(st->kind)];
        g->present = 1;
        L.g = g;
        g->file = base ? base + 1 : mod->path;
        int col;
        diag_line_col(ctx, st->loc, &g->line, &col);
        Graph *gr = st->graph;
        IrValue **args = calloc((size_t)gr->ninputs + 1, sizeof *args);
        for (int i = 0; i < gr->ninputs; i++) {
            GValue *v = gr->inputs[i];
            GNode *n = v->producer;
            const char *field = n && n->field ? n->field : v->name;
            int ndim, dim[IR_MAX_DIMS];
            shape_dims(&v->shape, &ndim, dim);
            int k = ir_add_input(p, field, dtype_of(v->dtype), ndim, dim);
            args[i] = ir_input_value(p, g, k);
        }
        IrValue *res[IR_MAX_OUTPUTS] = {0};
        L.errors += lower_graph(&L, gr, args, res, 0);
        free(args);
    }
    if (!L.errors)
        L.errors += default_predict(&L);
    free(L.gparams);
    free(L.byptr);
    return L.errors;
}
