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

/* Strings the IR keeps live until ir_program_free; a simple chained list so
 * that the IR owns them and one call frees everything. */
typedef struct StrBlock {
    struct StrBlock *next;
    char s[];
} StrBlock;
static StrBlock *str_blocks; /* constant-after-run: reset by ir_program_free */

char *ir_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    StrBlock *b = xcalloc(sizeof *b + n);
    memcpy(b->s, s, n);
    b->next = str_blocks;
    str_blocks = b;
    return b->s;
}

char *ir_fmt(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ir_strdup(buf);
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
        free(g->logs);
    }
    free(p->params);
    free(p->inputs);
    memset(p, 0, sizeof *p);
    while (str_blocks) {
        StrBlock *n = str_blocks->next;
        free(str_blocks);
        str_blocks = n;
    }
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
    q->name = ir_strdup(name);
    q->role = role;
    q->dtype = IR_F32;
    q->ndim = ndim;
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
    in->name = ir_strdup(name);
    in->dtype = dtype;
    in->ndim = ndim;
    memcpy(in->dim, dim, (size_t)ndim * sizeof *dim);
    return p->ninputs++;
}

IrValue *ir_value(IrGraph *g, const char *name, IrDtype dtype, int batched, int ndim, const int *dim) {
    IrValue *v = xcalloc(sizeof *v);
    v->id = g->nvalues;
    v->name = ir_strdup(name);
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
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->storage == st && g->values[i]->param == param)
            return g->values[i];
    IrParam *q = &p->params[param];
    IrValue *v = ir_value(g, st == IR_ST_GRAD ? ir_fmt("%s.grad", q->name) : q->name, q->dtype, 0,
                          q->ndim, q->dim);
    v->storage = st;
    v->param = param;
    v->requires_grad = st == IR_ST_PARAM && q->role == IR_TRAIN;
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
    g->logs[g->nlogs].name = ir_strdup(name);
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
    };
    if (k >= 0 && k < LG_OP_COUNT)
        return lg_op_name((lg_op_id)k);
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
