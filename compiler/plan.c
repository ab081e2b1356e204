/* plan.c — fusion, in-place marking and arena offsets (see plan.h).
 *
 * Input: an IrGraph with forward and (for training) backward ops, after
 * autodiff.c. Output: the same graph with op->fused_relu, op->in_place and
 * op->dead set, views made for in-place results, every arena value's offset
 * and the arena sizes in the graph; emit_c.c turns offsets into pointers.
 */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN_FLOATS 16 /* 64 bytes per sample: every buffer starts on a cache line */

IrValue *plan_root(IrValue *v) {
    while (v && v->storage == IR_ST_VIEW)
        v = v->base;
    return v;
}

static size_t align_up(size_t n) {
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

static int is_arena(const IrValue *v) {
    return v && v->storage == IR_ST_ARENA;
}

/* How many live ops read each value directly, plus 1 for each view of it
 * and each time the step returns or logs it, by value id (once per graph:
 * counting per value made fusion quadratic in the layers). */
static int *use_counts(const IrGraph *g) {
    int *n = calloc((size_t)g->nvalues + 1, sizeof *n);
    if (!n)
        abort();
    for (int i = 0; i < g->nops; i++) {
        const IrOp *op = g->ops[i];
        if (op->dead)
            continue;
        for (int j = 0; j < op->nin; j++)
            if (op->in[j])
                n[op->in[j]->id]++;
    }
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->storage == IR_ST_VIEW && g->values[i]->base)
            n[g->values[i]->base->id]++;
    if (g->loss)
        n[g->loss->id]++;
    if (g->output)
        n[g->output->id]++;
    for (int i = 0; i < g->nlogs; i++)
        n[g->logs[i].value->id]++;
    return n;
}

/* relu after linear / conv2d / batch_norm, when the pre-activation has no
 * other reader: the producer writes the activation straight into the
 * relu's output (the backward of those layers needs their input, not their
 * output, and relu's backward needs only its output). */
static void fuse(IrGraph *g) {
    /* fusing one relu changes no other relu input's count */
    int *uses = use_counts(g);
    for (int i = 0; i < g->nops; i++) {
        IrOp *op = g->ops[i];
        if (op->dead || op->kind != LG_OP_RELU || op->backward)
            continue;
        IrValue *x = op->in[0];
        IrOp *prod = x->def;
        if (!prod || prod->dead || prod->fused_relu || prod->out[0] != x || !is_arena(x))
            continue;
        if (uses[x->id] != 1)
            continue;
        if (prod->kind != LG_OP_LINEAR && prod->kind != LG_OP_CONV2D && prod->kind != LG_OP_BATCH_NORM) {
            /* any other producer: the relu overwrites its input in place */
            IrValue *y = op->out[0];
            if (is_arena(y) && y->batched == x->batched) {
                y->storage = IR_ST_VIEW;
                y->base = x;
                op->in_place = 1;
                g->ninplace++;
            }
            continue;
        }
        prod->fused_relu = 1;
        op->out[0]->name = x->name; /* the layer's name: "conv1", not "relu2" */
        if (op->out[0]->grad)
            op->out[0]->grad->name = ir_fmt(g->prog, "%s_grad", x->name);
        prod->out[0] = op->out[0];
        op->out[0]->def = prod;
        op->dead = 1;
        x->def = NULL; /* the pre-activation no longer exists */
        g->nfused++;
    }
    free(uses);
}

/* Elementwise ops that may write their result over their first input. */
static int elementwise(IrKind k) {
    switch (k) {
    case IR_RELU_BWD:
    case IR_LEAKY_RELU_BWD:
    case IR_SIGMOID_BWD:
    case IR_TANH_BWD:
    case IR_GELU_BWD:
    case IR_SILU_BWD:
    case IR_DROPOUT_BWD:
    case IR_ACCUM:
        return 1;
    default:
        return 0;
    }
}

static void live_ranges(IrGraph *g) {
    for (int i = 0; i < g->nvalues; i++)
        g->values[i]->first = g->values[i]->last = -1;
    for (int i = 0; i < g->nops; i++) {
        IrOp *op = g->ops[i];
        if (op->dead)
            continue;
        for (int j = 0; j < op->nout; j++) {
            IrValue *r = plan_root(op->out[j]);
            if (r->first < 0)
                r->first = i;
            if (r->last < i)
                r->last = i;
        }
        for (int j = 0; j < op->nin; j++) {
            IrValue *r = plan_root(op->in[j]);
            if (r && r->last < i)
                r->last = i;
        }
    }
    IrValue *outs[3] = {g->loss, g->output, NULL};
    for (int k = 0; k < 2; k++)
        if (outs[k])
            plan_root(outs[k])->last = g->nops;
    for (int i = 0; i < g->nlogs; i++)
        plan_root(g->logs[i].value)->last = g->nops;
}

static void in_place(IrGraph *g) {
    for (int i = 0; i < g->nops; i++) {
        IrOp *op = g->ops[i];
        if (op->dead || !elementwise(op->kind) || op->nout != 1)
            continue;
        IrValue *a = op->in[0], *y = op->out[0];
        IrValue *ra = plan_root(a);
        if (!is_arena(ra) || !is_arena(y) || ra->last != i || ra->batched != y->batched)
            continue;
        if (ir_numel(ra) != ir_numel(y))
            continue;
        /* IR_ACCUM(a, b): b must not be a's memory as well */
        if (op->nin > 1 && plan_root(op->in[1]) == ra)
            continue;
        int ylast = y->last;
        y->storage = IR_ST_VIEW;
        y->base = a;
        ra->last = ylast > ra->last ? ylast : ra->last;
        op->in_place = 1;
        g->ninplace++;
    }
}

typedef struct {
    size_t off, size;
} Block;

/* First fit among the live blocks (kept sorted by offset). */
static size_t place(Block *live, int *nlive, size_t size, size_t *high) {
    size_t at = 0;
    int k = 0;
    for (; k < *nlive; k++) {
        if (live[k].off >= at + size)
            break;
        if (live[k].off + live[k].size > at)
            at = live[k].off + live[k].size;
    }
    memmove(&live[k + 1], &live[k], (size_t)(*nlive - k) * sizeof *live);
    live[k].off = at;
    live[k].size = size;
    (*nlive)++;
    if (at + size > *high)
        *high = at + size;
    return at;
}

static void release(Block *live, int *nlive, size_t off) {
    for (int k = 0; k < *nlive; k++)
        if (live[k].off == off) {
            memmove(&live[k], &live[k + 1], (size_t)(*nlive - k - 1) * sizeof *live);
            (*nlive)--;
            return;
        }
}

/* relu then max_pool2d computes the same as max_pool2d then relu (relu is
 * monotone, so it commutes with max), and the gradients agree: where the
 * window's maximum is negative both give zero. Pooling first runs the relu
 * on a tensor kh * kw times smaller. Rewrites forward ops only, before
 * autodiff, when the relu's output has no other reader. */
void plan_rewrite(IrGraph *g) {
    /* a rewrite changes no other relu output's count; values it makes are
     * past the table and never a relu's output */
    int nv = g->nvalues;
    int *uses = use_counts(g);
    for (int i = 0; i + 1 < g->nops; i++) {
        IrOp *r = g->ops[i];
        if (r->dead || r->kind != LG_OP_RELU || r->backward)
            continue;
        IrValue *x = r->in[0], *rv = r->out[0];
        if (!is_arena(rv) || rv->id >= nv || uses[rv->id] != 1)
            continue;
        int j = i + 1;
        while (j < g->nops && !(g->ops[j]->nin && g->ops[j]->in[0] == rv))
            j++;
        if (j == g->nops)
            continue;
        IrOp *pool = g->ops[j];
        if (pool->kind != LG_OP_MAX_POOL2D || pool->a.ph || pool->a.pw || !is_arena(pool->out[0]))
            continue;
        IrValue *y = pool->out[0];
        IrValue *pre = ir_value(g, ir_fmt(g->prog, "%s_pre", y->name), IR_F32, y->batched, y->ndim, y->dim);
        pre->requires_grad = x->requires_grad;
        pre->def = pool;
        pool->in[0] = x;
        pool->out[0] = pre;
        r->in[0] = pre;
        r->out[0] = y;
        y->def = r;
        rv->def = NULL;
        r->file = pool->file;
        r->line = pool->line;
        /* move the relu to just after the pool */
        memmove(&g->ops[i], &g->ops[i + 1], (size_t)(j - i) * sizeof *g->ops);
        g->ops[j] = r;
        for (int k = i; k <= j; k++)
            g->ops[k]->index = k;
    }
    free(uses);
}

/* Outside training, dropout is the identity: its output is its input. */
static void eval_identities(IrGraph *g) {
    if (g->step == IR_STEP_TRAIN)
        return;
    for (int i = 0; i < g->nops; i++) {
        IrOp *op = g->ops[i];
        if (op->kind == LG_OP_DROPOUT && !op->dead && is_arena(op->out[0])) {
            op->out[0]->storage = IR_ST_VIEW;
            op->out[0]->base = op->in[0];
            op->in_place = 1;
        }
    }
}

void plan_graph(IrGraph *g) {
    g->nfused = g->ninplace = 0;
    eval_identities(g);
    fuse(g);
    live_ranges(g);
    in_place(g);
    live_ranges(g);

    /* values to free after op i: bucket by last use */
    Block *live = calloc((size_t)g->nvalues + 1, sizeof *live);
    size_t high = 0, fixed = 0, naive = 0;
    int nlive = 0;
    int *dies = malloc(((size_t)g->nops + 1) * sizeof *dies);
    int *next = malloc(((size_t)g->nvalues + 1) * sizeof *next);
    for (int i = 0; i <= g->nops; i++)
        dies[i] = -1;
    for (int i = 0; i < g->nops; i++) {
        IrOp *op = g->ops[i];
        if (op->dead)
            continue;
        for (int j = 0; j < op->nout; j++) {
            IrValue *v = op->out[j];
            if (!is_arena(v) || v->def != op)
                continue;
            size_t size = align_up(ir_numel(v));
            if (!v->batched) {
                v->offset = fixed;
                fixed += size;
                continue;
            }
            naive += size;
            v->offset = place(live, &nlive, size, &high);
            next[v->id] = dies[v->last];
            dies[v->last] = v->id;
        }
        for (int id = dies[i]; id >= 0; id = next[id])
            release(live, &nlive, g->values[id]->offset);
    }
    g->arena_per_sample = high;
    g->arena_fixed = fixed;
    g->naive_per_sample = naive;
    free(live);
    free(dies);
    free(next);
}

void plan_program(IrProgram *p) {
    for (int i = 0; i < IR_STEP_COUNT; i++)
        if (p->graphs[i].present)
            plan_graph(&p->graphs[i]);
}
