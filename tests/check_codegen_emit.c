/* check_codegen_emit.c — the code generator on a hand-built checked module.
 *
 * Builds what sema and shapes produce for a LeNet-5 spec (the network graph
 * with shapes, attributes and parameters; train/validate/predict step graphs
 * that call it; hparams; a Fashion-MNIST dataset and data block; optimizer;
 * trainer block) without the front end, runs emit_program into a temporary
 * directory and checks: the C file and Makefile exist, contain the tables
 * and kernel calls they must (names, offsets, spec lines), compile with
 * -Wall -Wextra -Werror against the runtime headers, and are byte-identical
 * across two runs. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ast.h"
#include "ctx.h"
#include "emit.h"

static Ctx ctx;

#define CAP 64

static Graph *graph_new(const char *name) {
    Graph *g = arena_alloc(&ctx.arena, sizeof *g);
    g->name = name;
    g->nodes = arena_array(&ctx.arena, CAP, sizeof *g->nodes);
    g->values = arena_array(&ctx.arena, CAP, sizeof *g->values);
    g->inputs = arena_array(&ctx.arena, CAP, sizeof *g->inputs);
    g->outputs = arena_array(&ctx.arena, CAP, sizeof *g->outputs);
    g->params = arena_array(&ctx.arena, CAP, sizeof *g->params);
    g->log_names = arena_array(&ctx.arena, CAP, sizeof *g->log_names);
    g->log_values = arena_array(&ctx.arena, CAP, sizeof *g->log_values);
    return g;
}

static GValue *val(Graph *g, const char *name, DType dt, bool batched, int rank, ...) {
    GValue *v = arena_alloc(&ctx.arena, sizeof *v);
    v->id = g->nvalues;
    v->name = name;
    v->dtype = dt;
    v->shape.batched = batched;
    v->shape.rank = rank;
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++)
        v->shape.dim[i] = va_arg(ap, int);
    va_end(ap);
    g->values[g->nvalues++] = v;
    return v;
}

static int nattrs_of(lg_op_id op) {
    int k = 0;
#define ATTR(ID, name, type, dflt, lo, hi, doc) k += op == LG_OP_##ID;
#include "lgen/ops.def"
    return k;
}

static int attr_slot(lg_op_id op, const char *name) {
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

static GNode *node(Graph *g, GNodeKind kind, lg_op_id op, const char *layer, int line, int nin, ...) {
    GNode *n = arena_alloc(&ctx.arena, sizeof *n);
    n->id = g->nnodes;
    n->kind = kind;
    n->op = op;
    n->layer = layer;
    n->inputs = arena_array(&ctx.arena, 8, sizeof *n->inputs);
    n->outputs = arena_array(&ctx.arena, 4, sizeof *n->outputs);
    n->params = arena_array(&ctx.arena, 8, sizeof *n->params);
    va_list ap;
    va_start(ap, nin);
    for (int i = 0; i < nin; i++)
        n->inputs[n->ninputs++] = va_arg(ap, GValue *);
    va_end(ap);
    if (kind == GN_OP) {
        n->nattrs = nattrs_of(op);
        n->attrs = arena_array(&ctx.arena, (size_t)n->nattrs + 1, sizeof *n->attrs);
    }
    /* line L of the fake spec starts at byte 10 * (L - 1) */
    n->loc = (Loc){0, 10 * (line - 1), 10 * (line - 1) + 1};
    g->nodes[g->nnodes++] = n;
    return n;
}

static void out_of(GNode *n, GValue *v) {
    n->outputs[n->noutputs++] = v;
    v->producer = n;
}

static void set_int(GNode *n, const char *name, int v) {
    AttrValue *a = &n->attrs[attr_slot(n->op, name)];
    a->type = TY_INT;
    a->i = v;
    a->ints[0] = a->ints[1] = v;
    a->n = 2;
}

static void set_bool(GNode *n, const char *name, int v) {
    AttrValue *a = &n->attrs[attr_slot(n->op, name)];
    a->type = TY_BOOL;
    a->i = v;
}

static void add_param(Graph *g, GNode *n, const char *name, int rank, ...) {
    GParam *p = arena_alloc(&ctx.arena, sizeof *p);
    p->name = name;
    p->trainable = true;
    p->dtype = DT_F32;
    p->shape.rank = rank;
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++)
        p->shape.dim[i] = va_arg(ap, int);
    va_end(ap);
    p->node = n;
    n->params[n->nparams++] = p;
    g->params[g->nparams++] = p;
}

static GValue *op1(Graph *g, lg_op_id op, const char *layer, int line, GValue *x, GValue *y) {
    GNode *n = node(g, GN_OP, op, layer, line, 1, x);
    out_of(n, y);
    return y;
}

static GValue *conv(Graph *g, const char *layer, int line, GValue *x, int cin, int cout, int k, int pad,
                    int hw) {
    GNode *n = node(g, GN_OP, LG_OP_CONV2D, layer, line, 1, x);
    set_int(n, "out_channels", cout);
    set_int(n, "kernel", k);
    set_int(n, "stride", 1);
    set_int(n, "padding", pad);
    set_int(n, "dilation", 1);
    set_int(n, "groups", 1);
    set_bool(n, "bias", 1);
    add_param(g, n, arena_printf(&ctx.arena, "%s.weight", layer), 4, cout, cin, k, k);
    add_param(g, n, arena_printf(&ctx.arena, "%s.bias", layer), 1, cout);
    GValue *y = val(g, layer, DT_F32, true, 3, cout, hw, hw);
    out_of(n, y);
    return y;
}

static GValue *linear(Graph *g, const char *layer, int line, GValue *x, int in, int outf) {
    GNode *n = node(g, GN_OP, LG_OP_LINEAR, layer, line, 1, x);
    set_int(n, "out_features", outf);
    set_bool(n, "bias", 1);
    add_param(g, n, arena_printf(&ctx.arena, "%s.weight", layer), 2, outf, in);
    add_param(g, n, arena_printf(&ctx.arena, "%s.bias", layer), 1, outf);
    GValue *y = val(g, layer, DT_F32, true, 1, outf);
    out_of(n, y);
    return y;
}

static GValue *pool(Graph *g, int line, GValue *x, int c, int hw) {
    GNode *n = node(g, GN_OP, LG_OP_MAX_POOL2D, NULL, line, 1, x);
    set_int(n, "kernel", 2);
    set_int(n, "stride", 2);
    set_int(n, "padding", 0);
    set_bool(n, "ceil_mode", 0);
    GValue *y = val(g, NULL, DT_F32, true, 3, c, hw, hw);
    out_of(n, y);
    return y;
}

static GValue *opn(Graph *g, lg_op_id op, int line, GValue *a, GValue *b, GValue *y) {
    GNode *n = b ? node(g, GN_OP, op, NULL, line, 2, a, b) : node(g, GN_OP, op, NULL, line, 1, a);
    out_of(n, y);
    return y;
}

static void set_float(GNode *n, const char *name, double v) {
    AttrValue *a = &n->attrs[attr_slot(n->op, name)];
    a->type = TY_FLOAT;
    a->f = v;
}

/* A network of most trainable ops: batch_norm (+relu fusion), a residual
 * add (a gradient sum), tanh, avg_pool2d, a strided conv, silu, leaky_relu,
 * global_avg_pool, gelu * sigmoid (mul, another fan-out), dropout. */
static Network *zoo_network(void) {
    Network *net = arena_alloc(&ctx.arena, sizeof *net);
    net->name = "zoo";
    Graph *g = graph_new("zoo");
    net->graph = g;
    GNode *in = node(g, GN_INPUT, 0, NULL, 2, 0);
    GValue *x = val(g, "x", DT_F32, true, 3, 1, 28, 28);
    out_of(in, x);
    g->inputs[g->ninputs++] = x;
    GValue *c1 = conv(g, "conv1", 3, x, 1, 4, 3, 1, 28);
    GNode *bn = node(g, GN_OP, LG_OP_BATCH_NORM, "bn1", 4, 1, c1);
    set_float(bn, "eps", 1e-5);
    set_float(bn, "momentum", 0.1);
    set_bool(bn, "affine", 1);
    add_param(g, bn, "bn1.weight", 1, 4);
    add_param(g, bn, "bn1.bias", 1, 4);
    add_param(g, bn, "bn1.running_mean", 1, 4);
    add_param(g, bn, "bn1.running_var", 1, 4);
    add_param(g, bn, "bn1.num_batches_tracked", 0);
    for (int i = 2; i < 5; i++)
        bn->params[i]->trainable = false;
    bn->params[4]->dtype = DT_I64;
    GValue *b1 = val(g, "bn1", DT_F32, true, 3, 4, 28, 28);
    out_of(bn, b1);
    GValue *r1 = opn(g, LG_OP_RELU, 4, b1, NULL, val(g, "r1", DT_F32, true, 3, 4, 28, 28));
    GValue *c2 = conv(g, "conv2", 5, r1, 4, 4, 3, 1, 28);
    GValue *t2 = opn(g, LG_OP_TANH, 5, c2, NULL, val(g, "t2", DT_F32, true, 3, 4, 28, 28));
    GValue *sum = opn(g, LG_OP_ADD, 6, r1, t2, val(g, "res", DT_F32, true, 3, 4, 28, 28));
    GNode *ap = node(g, GN_OP, LG_OP_AVG_POOL2D, NULL, 7, 1, sum);
    set_int(ap, "kernel", 2);
    set_int(ap, "stride", 2);
    set_int(ap, "padding", 0);
    set_bool(ap, "count_include_pad", 1);
    GValue *p = val(g, "pool", DT_F32, true, 3, 4, 14, 14);
    out_of(ap, p);
    GNode *cn = node(g, GN_OP, LG_OP_CONV2D, "conv3", 8, 1, p);
    set_int(cn, "out_channels", 8);
    set_int(cn, "kernel", 3);
    set_int(cn, "stride", 2);
    set_int(cn, "padding", 1);
    set_int(cn, "dilation", 1);
    set_int(cn, "groups", 1);
    set_bool(cn, "bias", 1);
    add_param(g, cn, "conv3.weight", 4, 8, 4, 3, 3);
    add_param(g, cn, "conv3.bias", 1, 8);
    GValue *c3 = val(g, "conv3", DT_F32, true, 3, 8, 7, 7);
    out_of(cn, c3);
    GValue *a3 = opn(g, LG_OP_SILU, 8, c3, NULL, val(g, "a3", DT_F32, true, 3, 8, 7, 7));
    GNode *lk = node(g, GN_OP, LG_OP_LEAKY_RELU, NULL, 9, 1, a3);
    set_float(lk, "negative_slope", 0.1);
    GValue *l3 = val(g, "l3", DT_F32, true, 3, 8, 7, 7);
    out_of(lk, l3);
    GValue *gp = opn(g, LG_OP_GLOBAL_AVG_POOL, 10, l3, NULL, val(g, "gap", DT_F32, true, 1, 8));
    GValue *f1 = linear(g, "fc1", 11, gp, 8, 16);
    GValue *ge = opn(g, LG_OP_GELU, 12, f1, NULL, val(g, "ge", DT_F32, true, 1, 16));
    GValue *sg = opn(g, LG_OP_SIGMOID, 12, f1, NULL, val(g, "sg", DT_F32, true, 1, 16));
    GValue *m = opn(g, LG_OP_MUL, 12, ge, sg, val(g, "gated", DT_F32, true, 1, 16));
    GNode *dn = node(g, GN_OP, LG_OP_DROPOUT, NULL, 13, 1, m);
    set_float(dn, "p", 0.3);
    GValue *d = val(g, "drop", DT_F32, true, 1, 16);
    out_of(dn, d);
    GValue *f2 = linear(g, "fc2", 14, d, 16, 10);
    g->outputs[g->noutputs++] = f2;
    return net;
}

/* The structural ops: adaptive_avg_pool2d, upsample_nearest, transpose,
 * concat (its backward is a split), reshape, layer_norm, log_softmax. */
static Network *zoo2_network(void) {
    Network *net = arena_alloc(&ctx.arena, sizeof *net);
    net->name = "zoo2";
    Graph *g = graph_new("zoo2");
    net->graph = g;
    GNode *in = node(g, GN_INPUT, 0, NULL, 2, 0);
    GValue *x = val(g, "x", DT_F32, true, 3, 1, 28, 28);
    out_of(in, x);
    g->inputs[g->ninputs++] = x;
    GValue *c1 = conv(g, "conv1", 3, x, 1, 4, 3, 1, 28);
    GNode *ap = node(g, GN_OP, LG_OP_ADAPTIVE_AVG_POOL2D, NULL, 4, 1, c1);
    set_int(ap, "output_size", 7);
    GValue *a = val(g, "pooled", DT_F32, true, 3, 4, 7, 7);
    out_of(ap, a);
    GNode *up = node(g, GN_OP, LG_OP_UPSAMPLE_NEAREST, NULL, 5, 1, a);
    set_int(up, "scale", 2);
    GValue *u = val(g, "up", DT_F32, true, 3, 4, 14, 14);
    out_of(up, u);
    GNode *tr = node(g, GN_OP, LG_OP_TRANSPOSE, NULL, 6, 1, u);
    set_int(tr, "dim0", 1);
    set_int(tr, "dim1", 2);
    GValue *t = val(g, "tr", DT_F32, true, 3, 4, 14, 14);
    out_of(tr, t);
    GNode *cat = node(g, GN_OP, LG_OP_CONCAT, NULL, 7, 2, u, t);
    set_int(cat, "dim", 0);
    GValue *c = val(g, "cat", DT_F32, true, 3, 8, 14, 14);
    out_of(cat, c);
    /* split (3, 5) and keep only the second piece: the first one's
     * gradient is zero */
    GNode *sp = node(g, GN_OP, LG_OP_SPLIT, NULL, 8, 1, c);
    set_int(sp, "dim", 0);
    GValue *p0 = val(g, "head", DT_F32, true, 3, 3, 14, 14);
    GValue *p1 = val(g, "tail", DT_F32, true, 3, 5, 14, 14);
    out_of(sp, p0);
    out_of(sp, p1);
    GNode *cat2 = node(g, GN_OP, LG_OP_CONCAT, NULL, 8, 2, p1, u);
    set_int(cat2, "dim", 0);
    GValue *c2 = val(g, "cat2", DT_F32, true, 3, 9, 14, 14);
    out_of(cat2, c2);
    GValue *r = opn(g, LG_OP_RESHAPE, 8, c2, NULL, val(g, "rows", DT_F32, true, 2, 9, 196));
    GNode *ln = node(g, GN_OP, LG_OP_LAYER_NORM, "ln", 9, 1, r);
    set_float(ln, "eps", 1e-5);
    set_bool(ln, "affine", 1);
    add_param(g, ln, "ln.weight", 1, 196);
    add_param(g, ln, "ln.bias", 1, 196);
    GValue *l = val(g, "ln", DT_F32, true, 2, 9, 196);
    out_of(ln, l);
    GValue *f = opn(g, LG_OP_FLATTEN, 10, l, NULL, val(g, "flat", DT_F32, true, 1, 1764));
    GValue *fc = linear(g, "fc", 11, f, 1764, 10);
    GNode *ls = node(g, GN_OP, LG_OP_LOG_SOFTMAX, NULL, 12, 1, fc);
    set_int(ls, "dim", -1);
    GValue *o = val(g, "logp", DT_F32, true, 1, 10);
    out_of(ls, o);
    g->outputs[g->noutputs++] = o;
    return net;
}

/* An autoencoder-like graph for the elementwise losses, scalar arithmetic
 * and reductions: mse + l1 + smooth_l1 + bce_with_logits of a reconstruction
 * against the (flattened) input, plus 0.5 * mean + sum. */
static Graph *zoo3_train_graph(void) {
    Graph *g = graph_new("train");
    GNode *ni = node(g, GN_INPUT, 0, NULL, 20, 0);
    ni->field = "image";
    GValue *img = val(g, "b.image", DT_F32, true, 3, 1, 28, 28);
    out_of(ni, img);
    g->inputs[g->ninputs++] = img;
    GValue *f = opn(g, LG_OP_FLATTEN, 21, img, NULL, val(g, "target", DT_F32, true, 1, 784));
    GValue *h = linear(g, "enc", 22, f, 784, 16);
    GValue *s = opn(g, LG_OP_SIGMOID, 22, h, NULL, val(g, "code", DT_F32, true, 1, 16));
    GValue *y = linear(g, "dec", 23, s, 16, 784);
    GValue *l1 = opn(g, LG_OP_MSE_LOSS, 24, y, f, val(g, "mse", DT_F32, false, 0));
    GValue *l2 = opn(g, LG_OP_L1_LOSS, 25, y, f, val(g, "l1", DT_F32, false, 0));
    GNode *sl = node(g, GN_OP, LG_OP_SMOOTH_L1_LOSS, NULL, 26, 2, y, f);
    set_float(sl, "beta", 0.5);
    GValue *l3 = val(g, "huber", DT_F32, false, 0);
    out_of(sl, l3);
    GNode *bce = node(g, GN_OP, LG_OP_BCE_WITH_LOGITS, NULL, 27, 2, y, f);
    AttrValue *red = &bce->attrs[attr_slot(LG_OP_BCE_WITH_LOGITS, "reduction")];
    red->type = TY_ENUM;
    red->s = "sum";
    GValue *l4 = val(g, "bce", DT_F32, false, 0);
    out_of(bce, l4);
    GValue *m = opn(g, LG_OP_MEAN, 28, y, NULL, val(g, "avg", DT_F32, false, 0));
    GNode *sc = node(g, GN_OP, LG_OP_SCALE, NULL, 28, 1, m);
    set_float(sc, "by", 0.5);
    GValue *hm = val(g, "half", DT_F32, false, 0);
    out_of(sc, hm);
    GValue *su = opn(g, LG_OP_SUM, 29, s, NULL, val(g, "total", DT_F32, false, 0));
    GValue *a1 = opn(g, LG_OP_ADD, 30, l1, l2, val(g, "a1", DT_F32, false, 0));
    GValue *a2 = opn(g, LG_OP_ADD, 30, a1, l3, val(g, "a2", DT_F32, false, 0));
    GValue *a3 = opn(g, LG_OP_ADD, 30, a2, l4, val(g, "a3", DT_F32, false, 0));
    GValue *a4 = opn(g, LG_OP_ADD, 30, a3, hm, val(g, "a4", DT_F32, false, 0));
    GValue *loss = opn(g, LG_OP_ADD, 30, a4, su, val(g, "loss", DT_F32, false, 0));
    g->loss = loss;
    g->log_names[g->nlogs] = "train_loss";
    g->log_values[g->nlogs++] = loss;
    g->outputs[g->noutputs++] = loss;
    return g;
}

static Network *lenet_network(void) {
    Network *net = arena_alloc(&ctx.arena, sizeof *net);
    net->name = "lenet";
    Graph *g = graph_new("lenet");
    net->graph = g;
    GNode *in = node(g, GN_INPUT, 0, NULL, 12, 0);
    GValue *x = val(g, "x", DT_F32, true, 3, 1, 28, 28);
    out_of(in, x);
    g->inputs[g->ninputs++] = x;
    x = conv(g, "conv1", 13, x, 1, 6, 5, 2, 28);
    x = op1(g, LG_OP_RELU, NULL, 13, x, val(g, NULL, DT_F32, true, 3, 6, 28, 28));
    x = pool(g, 13, x, 6, 14);
    x = conv(g, "conv2", 14, x, 6, 16, 5, 0, 10);
    x = op1(g, LG_OP_RELU, NULL, 14, x, val(g, NULL, DT_F32, true, 3, 16, 10, 10));
    x = pool(g, 14, x, 16, 5);
    x = op1(g, LG_OP_FLATTEN, NULL, 15, x, val(g, NULL, DT_F32, true, 1, 400));
    x = linear(g, "fc1", 15, x, 400, 120);
    x = op1(g, LG_OP_RELU, NULL, 15, x, val(g, NULL, DT_F32, true, 1, 120));
    x = linear(g, "fc2", 16, x, 120, 84);
    x = op1(g, LG_OP_RELU, NULL, 16, x, val(g, NULL, DT_F32, true, 1, 84));
    x = linear(g, "fc3", 17, x, 84, 10);
    g->outputs[g->noutputs++] = x;
    return net;
}

/* step NAME(b) { y = lenet(b.image); loss/acc ...; log ... } */
static Step *step(Network *net, StepKind kind, const char *name, int line) {
    Step *s = arena_alloc(&ctx.arena, sizeof *s);
    s->kind = kind;
    s->name = name;
    s->loc = (Loc){0, 10 * (line - 1), 10 * (line - 1) + 1};
    Graph *g = graph_new(name);
    s->graph = g;
    GNode *ni = node(g, GN_INPUT, 0, NULL, line, 0);
    ni->field = "image";
    GValue *img = val(g, "b.image", DT_F32, true, 3, 1, 28, 28);
    out_of(ni, img);
    g->inputs[g->ninputs++] = img;
    GNode *call = node(g, GN_CALL, 0, NULL, line, 1, img);
    call->callee = net;
    GValue *y = val(g, "y", DT_F32, true, 1, 10);
    out_of(call, y);
    if (kind == STEP_PREDICT) {
        GNode *sm = node(g, GN_OP, LG_OP_SOFTMAX, NULL, line, 1, y);
        sm->attrs[attr_slot(LG_OP_SOFTMAX, "dim")].type = TY_INT;
        sm->attrs[attr_slot(LG_OP_SOFTMAX, "dim")].i = -1;
        GValue *p = val(g, "probs", DT_F32, true, 1, 10);
        out_of(sm, p);
        g->outputs[g->noutputs++] = p;
        return s;
    }
    GNode *nl = node(g, GN_INPUT, 0, NULL, line, 0);
    nl->field = "label";
    GValue *lab = val(g, "b.label", DT_I32, true, 0);
    out_of(nl, lab);
    g->inputs[g->ninputs++] = lab;
    GNode *ce = node(g, GN_OP, LG_OP_CROSS_ENTROPY, NULL, line + 1, 2, y, lab);
    AttrValue *red = &ce->attrs[attr_slot(LG_OP_CROSS_ENTROPY, "reduction")];
    red->type = TY_ENUM;
    red->s = "mean";
    ce->attrs[attr_slot(LG_OP_CROSS_ENTROPY, "ignore_index")].i = -100;
    GValue *loss = val(g, "loss", DT_F32, false, 0);
    out_of(ce, loss);
    GNode *acc = node(g, GN_OP, LG_OP_ACCURACY, NULL, line + 2, 2, y, lab);
    GValue *a = val(g, "acc", DT_F32, false, 0);
    out_of(acc, a);
    g->loss = kind == STEP_TRAIN ? loss : NULL;
    const char *pre = kind == STEP_TRAIN ? "train" : kind == STEP_VALIDATE ? "val" : "test";
    g->log_names[g->nlogs] = arena_printf(&ctx.arena, "%s_loss", pre);
    g->log_values[g->nlogs++] = loss;
    g->log_names[g->nlogs] = arena_printf(&ctx.arena, "%s_acc", pre);
    g->log_values[g->nlogs++] = a;
    if (kind == STEP_TRAIN)
        g->outputs[g->noutputs++] = loss;
    return s;
}

static Expr *num(double v, bool is_int) {
    Expr *e = ast_expr(&ctx, is_int ? EX_INT : EX_FLOAT, LOC_NONE);
    e->ival = (int64_t)v;
    e->fval = v;
    e->cv.type = is_int ? TY_INT : TY_FLOAT;
    e->cv.i = (int64_t)v;
    e->cv.f = v;
    return e;
}

static Module *zoo_module(int which) {
    char text[401];
    for (int i = 0; i < 40; i++)
        memcpy(text + 10 * i, "# line...\n", 10);
    text[400] = 0;
    static const char *paths[] = {"tests/zoo.lmod", "tests/zoo2.lmod", "tests/zoo3.lmod"};
    int file = diag_add_file(&ctx, paths[which], text, 400);
    Module *m = ast_module_new(&ctx, file);
    m->path = paths[which];
    m->name = which == 2 ? "zoo3" : which ? "zoo2" : "zoo";
    if (which == 2) {
        /* parameters come from a network's graph: the autoencoder's layers
         * live in a network that the step graph inlines by hand here */
        Network *ae = arena_alloc(&ctx.arena, sizeof *ae);
        ae->name = "zoo3";
        ae->graph = graph_new("zoo3");
        Graph *tg = zoo3_train_graph();
        for (int i = 0; i < tg->nnodes; i++)
            for (int k = 0; k < tg->nodes[i]->nparams; k++)
                ae->graph->params[ae->graph->nparams++] = tg->nodes[i]->params[k];
        m->networks = arena_array(&ctx.arena, 1, sizeof *m->networks);
        m->networks[0] = ae;
        m->nnetworks = 1;
        Step *st = arena_alloc(&ctx.arena, sizeof *st);
        st->kind = STEP_TRAIN;
        st->name = "train";
        st->loc = (Loc){0, 190, 191};
        st->graph = tg;
        m->steps = arena_array(&ctx.arena, 1, sizeof *m->steps);
        m->steps[m->nsteps++] = st;
        return m;
    }
    Network *net = which ? zoo2_network() : zoo_network();
    m->networks = arena_array(&ctx.arena, 1, sizeof *m->networks);
    m->networks[0] = net;
    m->nnetworks = 1;
    m->steps = arena_array(&ctx.arena, 2, sizeof *m->steps);
    m->steps[m->nsteps++] = step(net, STEP_TRAIN, "train", 20);
    m->steps[m->nsteps++] = step(net, STEP_VALIDATE, "validate", 24);
    return m;
}

static Module *lenet_module(void) {
    /* the fake spec: 40 lines of 9 characters + newline */
    char text[401];
    for (int i = 0; i < 40; i++)
        memcpy(text + 10 * i, "# line...\n", 10);
    text[400] = 0;
    int file = diag_add_file(&ctx, "specs/lenet.lmod", text, 400);
    Module *m = ast_module_new(&ctx, file);
    m->path = "specs/lenet.lmod";
    m->name = "lenet";
    m->doc = "LeNet-5 for 28x28 \"grayscale\" images";
    Hparam *hp = arena_array(&ctx.arena, 2, sizeof *hp);
    hp[0] = (Hparam){.name = "lr", .type = TY_FLOAT, .doc = "SGD learning rate"};
    hp[0].value = (CValue){.type = TY_FLOAT, .f = 0.05};
    hp[0].lo = num(0, false);
    hp[0].hi = num(10, false);
    hp[0].lo_value = (CValue){.type = TY_FLOAT, .f = 0};
    hp[0].hi_value = (CValue){.type = TY_FLOAT, .f = 10};
    hp[0].lo_open = hp[0].hi_open = true;
    hp[1] = (Hparam){.name = "batch_size", .type = TY_INT, .doc = "samples per batch"};
    hp[1].value = (CValue){.type = TY_INT, .i = 64};
    m->hparams = hp;
    m->nhparams = 2;

    Network *net = lenet_network();
    m->networks = arena_array(&ctx.arena, 1, sizeof *m->networks);
    m->networks[0] = net;
    m->nnetworks = 1;
    m->steps = arena_array(&ctx.arena, 4, sizeof *m->steps);
    m->steps[m->nsteps++] = step(net, STEP_TRAIN, "train", 20);
    m->steps[m->nsteps++] = step(net, STEP_VALIDATE, "validate", 24);
    m->steps[m->nsteps++] = step(net, STEP_PREDICT, "predict", 28);
    m->steps[m->nsteps++] = step(net, STEP_TEST, "test", 32);

    Dataset *d = arena_alloc(&ctx.arena, sizeof *d);
    d->name = "fashion";
    static const char *mirrors[] = {"file:///usr/share/datasets/fashion-mnist/"};
    d->mirrors = mirrors;
    d->nmirrors = 1;
    d->files = arena_array(&ctx.arena, 4, sizeof *d->files);
    d->files[0] = (DataFile){.name = "train-images-idx3-ubyte.gz"};
    d->files[1] = (DataFile){.name = "train-labels-idx1-ubyte.gz"};
    d->files[2] = (DataFile){.name = "t10k-images-idx3-ubyte.gz"};
    d->files[3] = (DataFile){.name = "t10k-labels-idx1-ubyte.gz"};
    d->nfiles = 4;
    d->splits = arena_array(&ctx.arena, 2, sizeof *d->splits);
    static const char *paths[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"};
    static const char *tpaths[] = {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    d->splits[0] = (DatasetSplit){.name = "train", .paths = paths, .npaths = 2};
    d->splits[1] = (DatasetSplit){.name = "test", .paths = tpaths, .npaths = 2};
    d->nsplits = 2;
    d->format = FMT_IDX;
    m->datasets = arena_array(&ctx.arena, 1, sizeof *m->datasets);
    m->datasets[0] = d;
    m->ndatasets = 1;
    DataBlock *db = arena_alloc(&ctx.arena, sizeof *db);
    db->splits = arena_array(&ctx.arena, 3, sizeof *db->splits);
    Shape img = {.rank = 3, .dim = {1, 28, 28}};
    db->splits[0] = (DataSplit){.name = "train", .dataset = d, .source = &d->splits[0], .lo = 0, .hi = 0.9,
                                .seed = 42, .image_shape = img};
    db->splits[1] = (DataSplit){.name = "val", .dataset = d, .source = &d->splits[0], .lo = 0.9, .hi = 1,
                                .seed = 42, .image_shape = img};
    Transform *tf = arena_alloc(&ctx.arena, sizeof *tf);
    *tf = (Transform){.kind = TF_NORMALIZE, .f = {0.286f, 0, 0, 0.353f, 0, 0}, .i = {1}};
    db->splits[2] = (DataSplit){.name = "test", .dataset = d, .source = &d->splits[1], .lo = 0, .hi = 1,
                                .image_shape = img};
    db->splits[0].transforms = db->splits[1].transforms = db->splits[2].transforms = tf;
    db->splits[0].ntransforms = db->splits[1].ntransforms = db->splits[2].ntransforms = 1;
    db->nsplits = 3;
    Expr *bs = ast_expr(&ctx, EX_NAME, LOC_NONE);
    bs->str = "batch_size";
    bs->ref = REF_HPARAM;
    bs->target = &hp[1];
    bs->cv = hp[1].value;
    db->batch_size = bs;
    db->shuffle = num(1, true);
    m->data = db;

    Optimizer *o = arena_alloc(&ctx.arena, sizeof *o);
    o->kind = OPTIM_SGD;
    o->args = arena_array(&ctx.arena, 2, sizeof *o->args);
    Expr *lr = ast_expr(&ctx, EX_NAME, LOC_NONE);
    lr->str = "lr";
    lr->ref = REF_HPARAM;
    lr->target = &hp[0];
    lr->cv = hp[0].value;
    o->args[0] = (Arg){.key = "lr", .value = lr};
    o->args[1] = (Arg){.key = "momentum", .value = num(0.9, false)};
    o->nargs = 2;
    m->optimizer = o;
    Trainer *t = arena_alloc(&ctx.arena, sizeof *t);
    t->settings = arena_array(&ctx.arena, 1, sizeof *t->settings);
    t->settings[0] = (Setting){.key = "max_epochs", .value = num(2, true)};
    t->nsettings = 1;
    m->trainer = t;
    return m;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t k = fread(b, 1, (size_t)n, f);
    b[k] = 0;
    fclose(f);
    return b;
}

static const char *outdir_of(const char *what) {
    const char *b = getenv("BUILD");
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/tests/%s", b ? b : "build", what);
    return dir;
}

static const char *outdir(void) {
    return outdir_of("codegen_emit");
}

/* Every op kind of the zoo lowers, differentiates and emits; the result
 * compiles warning-free (tests/e2e/gradcheck.sh checks its gradients). */
START_TEST(test_emit_zoo) {
    ctx_init(&ctx);
    Module *m = zoo_module(0);
    char path[600], cmd[2048];
    const char *dir = outdir_of("codegen_zoo");
    ck_assert_int_eq(emit_program(&ctx, m, dir), 0);
    snprintf(path, sizeof path, "%s/zoo.c", dir);
    char *c = slurp(path);
    ck_assert_ptr_nonnull(c);
    static const char *calls[] = {"lg_batch_norm_backward", "lg_accumulate", "lg_tanh_backward",
                                  "lg_avg_pool2d_backward", "lg_silu_backward", "lg_leaky_relu_backward",
                                  "lg_global_avg_pool_backward", "lg_gelu_backward", "lg_sigmoid_backward",
                                  "lg_mul_backward", "lg_dropout_backward", "num_batches_tracked"};
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++)
        if (!strstr(c, calls[i]))
            ck_abort_msg("zoo.c has no %s", calls[i]);
    ck_assert_ptr_nonnull(strstr(c, "{\"bn1.running_var\", 1, {4}, 4, BN1_RUNNING_VAR, LG_PARAM_BUFFER, 0, LG_INIT_ONES"));
    ck_assert_ptr_nonnull(strstr(c, "{\"bn1.num_batches_tracked\", 0, {0}, 1, BN1_NUM_BATCHES_TRACKED, LG_PARAM_BUFFER, 0, LG_INIT_ZEROS, 0, 1}"));
    snprintf(cmd, sizeof cmd,
             "%s -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iruntime/include -fsyntax-only %s",
             getenv("CC") ? getenv("CC") : "cc", path);
    ck_assert_int_eq(system(cmd), 0);
    free(c);
    ctx_free(&ctx);
}
END_TEST

START_TEST(test_emit_lenet) {
    ctx_init(&ctx);
    Module *m = lenet_module();
    char path[600], cmd[2048];
    ck_assert_int_eq(emit_program(&ctx, m, outdir()), 0);
    snprintf(path, sizeof path, "%s/lenet.c", outdir());
    char *c = slurp(path);
    ck_assert_ptr_nonnull(c);
    /* tables with PyTorch names and offsets */
    ck_assert_ptr_nonnull(strstr(c, "CONV1_WEIGHT = 0, // conv1.weight [6, 1, 5, 5]"));
    ck_assert_ptr_nonnull(strstr(c, "FC3_BIAS = 61696, // fc3.bias [10]"));
    ck_assert_ptr_nonnull(strstr(c, "LENET_N_FLOATS = 61706"));
    ck_assert_ptr_nonnull(strstr(c, "{\"lr\", LG_HP_FLOAT, \"0.05\""));
    ck_assert_ptr_nonnull(strstr(c, "out->args.arg[out->args.n].num = hp[LENET_HP_LR].f;"));
    ck_assert_ptr_nonnull(strstr(c, "opt->batch_size = (int)(double)hp[LENET_HP_BATCH_SIZE].i;"));
    ck_assert_ptr_nonnull(strstr(c, "{\"max_epochs\", \"2\"}"));
    /* kernel calls with spec lines and shapes; backward generated */
    ck_assert_ptr_nonnull(strstr(c, "// conv1 = conv2d(image) (lenet.lmod:13) -> (B, 6, 28, 28)"));
    /* relu moved after the pool, in place on its output */
    ck_assert_ptr_nonnull(strstr(c, "// max_pool2d3 = relu(max_pool2d3_pre) (lenet.lmod:13) -> (B, 6, 14, 14)"));
    ck_assert_ptr_nonnull(strstr(c, "lg_conv2d_backward(ctx, &conv1_dims, n, b->image"));
    ck_assert_ptr_nonnull(strstr(c, "lg_cross_entropy_backward"));
    ck_assert_ptr_nonnull(strstr(c, "{\"val_acc\", LG_LOG_EPOCH},"));
    ck_assert_ptr_nonnull(strstr(c, ".predict_probs = 1"));
    /* the first conv's input gradient is not computed */
    ck_assert_ptr_nonnull(strstr(c, "b->image, params + CONV1_WEIGHT, conv1_grad, NULL, grads + CONV1_WEIGHT"));
    ck_assert_ptr_null(strstr(c, "b->image_grad"));
    /* warning-free against the runtime headers */
    snprintf(cmd, sizeof cmd,
             "%s -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iruntime/include -fsyntax-only %s",
             getenv("CC") ? getenv("CC") : "cc", path);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/Makefile", outdir());
    char *mk = slurp(path);
    ck_assert_ptr_nonnull(mk);
    ck_assert_ptr_nonnull(strstr(mk, "lenet: lenet.c $(LGEN_LIBDIR)/liblgen.a"));
    ck_assert_ptr_null(strstr(mk, "@NAME@"));
    /* the plan report `lgen summary` prints */
    char rep[2048] = "";
    FILE *rf = fmemopen(rep, sizeof rep, "w");
    ck_assert_int_eq(emit_plan_report(&ctx, m, rf), 0);
    fclose(rf);
    ck_assert_ptr_nonnull(strstr(rep, "train step: 25 ops (13 backward), activation arena 28288 bytes per sample"));
    ck_assert_ptr_nonnull(strstr(rep, "parameters: 61706 floats (61706 trainable)"));
    /* same spec, same bytes */
    ck_assert_int_eq(emit_program(&ctx, m, outdir()), 0);
    snprintf(path, sizeof path, "%s/lenet.c", outdir());
    char *c2 = slurp(path);
    ck_assert_str_eq(c, c2);
    free(c);
    free(c2);
    free(mk);
    ctx_free(&ctx);
}
END_TEST

static void emit_zoo(int which, const char *const *calls, size_t ncalls) {
    ctx_init(&ctx);
    Module *m = zoo_module(which);
    char path[600], cmd[2048];
    const char *dir = outdir_of(which == 2 ? "codegen_zoo3" : "codegen_zoo2");
    ck_assert_int_eq(emit_program(&ctx, m, dir), 0);
    snprintf(path, sizeof path, "%s/%s.c", dir, which == 2 ? "zoo3" : "zoo2");
    char *c = slurp(path);
    ck_assert_ptr_nonnull(c);
    for (size_t i = 0; i < ncalls; i++)
        if (!strstr(c, calls[i]))
            ck_abort_msg("%s has no %s", path, calls[i]);
    snprintf(cmd, sizeof cmd,
             "%s -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iruntime/include -fsyntax-only %s",
             getenv("CC") ? getenv("CC") : "cc", path);
    ck_assert_int_eq(system(cmd), 0);
    free(c);
    ctx_free(&ctx);
}

/* adaptive_avg_pool2d, upsample_nearest, transpose, concat, split (one piece
 * unused: a zero gradient), reshape,
 * layer_norm, log_softmax (tests/e2e/gradcheck.sh checks the gradients). */
START_TEST(test_emit_zoo2) {
    static const char *calls[] = {"lg_adaptive_avg_pool2d_backward", "lg_upsample_nearest_backward",
                                  "lg_transpose_backward", "lg_split_forward", "lg_concat_forward",
                                  "lg_layer_norm_backward", "lg_log_softmax_backward",
                                  "a zero gradient"};
    emit_zoo(1, calls, sizeof calls / sizeof *calls);
}
END_TEST

/* the elementwise losses, scalar add/scale, mean and sum */
START_TEST(test_emit_zoo3) {
    static const char *calls[] = {"lg_mse_loss_backward", "lg_l1_loss_backward", "lg_smooth_l1_loss_backward",
                                  "lg_bce_with_logits_backward", "lg_mean_backward", "lg_sum_backward",
                                  "lg_scale_backward", "LG_REDUCE_SUM"};
    emit_zoo(2, calls, sizeof calls / sizeof *calls);
}
END_TEST

int main(void) {
    Suite *s = suite_create("codegen_emit");
    TCase *tc = tcase_create("lenet");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_emit_lenet);
    tcase_add_test(tc, test_emit_zoo);
    tcase_add_test(tc, test_emit_zoo2);
    tcase_add_test(tc, test_emit_zoo3);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
