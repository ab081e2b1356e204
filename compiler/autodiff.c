/* autodiff.c — the backward pass, generated at compile time (see autodiff.h).
 *
 * Input: an IrProgram whose training graph holds the forward ops in execution
 * order and names its loss. Output: the same graph with backward ops appended
 * (op->backward = 1, op->fwd = the op they differentiate), in the order they
 * must run. plan.c assigns their buffers next; emit_c.c prints them.
 *
 * The walk visits forward ops last to first. Because the list is in
 * execution order, every consumer of a value has been visited before its
 * producer, so a value's gradient is complete when its producer's rule reads
 * it. A rule adds the gradient it computes for an input with add_grad, which
 * records it the first time and emits an accumulate op the next times (the
 * gradient sum at a fan-out, e.g. a residual connection). Parameter gradients
 * are not values of the graph: layer backward ops accumulate straight into
 * the gradient block, which the trainer zeroes before a (possibly
 * accumulated) optimizer step.
 */
#include "autodiff.h"

#include <stdio.h>
#include <string.h>

static int needs_grad(const IrValue *v) {
    return v && v->requires_grad && v->dtype == IR_F32 && v->storage != IR_ST_PARAM;
}

static IrValue *grad_like(IrGraph *g, const IrValue *x) {
    IrValue *d = ir_value(g, ir_fmt(g->prog, "%s_grad", x->name), IR_F32, x->batched, x->ndim, x->dim);
    return d;
}

static IrOp *bwd_op(IrGraph *g, IrKind kind, IrOp *fwd, int nin, IrValue *const *in) {
    IrOp *op = ir_op(g, kind, nin, in);
    op->backward = 1;
    op->fwd = fwd;
    if (fwd) {
        op->a = fwd->a;
        op->layer = fwd->layer;
        op->file = fwd->file;
        op->line = fwd->line;
        op->param = fwd->param;
        op->nparam = fwd->nparam;
    }
    return op;
}

/* Records d as (part of) x's gradient. */
static void add_grad(IrGraph *g, IrValue *x, IrValue *d, IrOp *fwd) {
    if (!x->grad) {
        x->grad = d;
        return;
    }
    IrValue *in[2] = {x->grad, d};
    IrOp *op = bwd_op(g, IR_ACCUM, fwd, 2, in);
    IrValue *sum = grad_like(g, x);
    sum->def = op;
    op->out[0] = sum;
    op->nout = 1;
    x->grad = sum;
}

/* An op with one fresh gradient output shaped like x, or NULL when x needs
 * no gradient (the rule still runs for its parameter gradients). */
static IrOp *emit_rule(IrGraph *g, IrKind kind, IrOp *fwd, IrValue *x, int nin, IrValue *const *in) {
    IrOp *op = bwd_op(g, kind, fwd, nin, in);
    if (needs_grad(x)) {
        IrValue *dx = grad_like(g, x);
        dx->def = op;
        op->out[0] = dx;
        op->nout = 1;
        add_grad(g, x, dx, fwd);
    }
    return op;
}

/* The parameter-gradient values a layer's backward accumulates into. */
static IrValue *pgrad(IrProgram *p, IrGraph *g, IrValue *param) {
    if (!param || param->storage != IR_ST_PARAM || p->params[param->param].role != IR_TRAIN)
        return NULL;
    return ir_param_value(p, g, param->param, IR_ST_GRAD);
}

/* split: the gradient is the concatenation of the pieces' gradients, zeros
 * for a piece nothing downstream used. */
static int differentiate_split(IrGraph *g, IrOp *op) {
    IrValue *x = op->in[0];
    int any = 0;
    for (int i = 0; i < op->nout; i++)
        any |= op->out[i]->grad != NULL;
    if (!any || !needs_grad(x))
        return 0;
    IrValue *in[IR_MAX_INPUTS];
    for (int i = 0; i < op->nout && i < IR_MAX_INPUTS; i++) {
        in[i] = op->out[i]->grad;
        if (!in[i]) {
            IrOp *z = bwd_op(g, IR_ZERO, op, 0, NULL);
            IrValue *zv = grad_like(g, op->out[i]);
            zv->def = z;
            z->out[0] = zv;
            z->nout = 1;
            in[i] = zv;
        }
    }
    emit_rule(g, IR_SPLIT_BWD, op, x, op->nout, in);
    return 0;
}

/* A backward op with one fresh gradient output per listed input that
 * needs one (NULL where it does not: the runtime function skips it). */
static IrOp *multi_rule(IrGraph *g, IrKind kind, IrOp *fwd, int nx, IrValue *const *xs, int nin,
                        IrValue *const *in) {
    IrOp *op = bwd_op(g, kind, fwd, nin, in);
    op->nout = nx;
    for (int i = 0; i < nx; i++) {
        op->out[i] = NULL;
        if (!needs_grad(xs[i]))
            continue;
        IrValue *dx = grad_like(g, xs[i]);
        dx->def = op;
        op->out[i] = dx;
    }
    for (int i = 0; i < nx; i++)
        if (op->out[i])
            add_grad(g, xs[i], op->out[i], fwd);
    return op;
}

/* Detection ops: the two-output losses take both losses' gradients (either
 * may be unused, NULL: zero); anchors, proposals, sampling, detections and
 * the mAP carry none (as in torchvision). */
/* The backward of an op that joins its inputs into one output (concat,
 * rpn_flatten): one op of `kind` cuts dy into a gradient per input, and the
 * inputs that need one receive it. */
static void pieces_backward(IrGraph *g, IrOp *op, IrKind kind, IrValue *dy) {
    IrValue *in[1] = {dy};
    IrOp *b = bwd_op(g, kind, op, 1, in);
    b->nout = op->nin;
    for (int i = 0; i < op->nin; i++) {
        IrValue *dx = grad_like(g, op->in[i]);
        dx->def = b;
        b->out[i] = dx;
    }
    for (int i = 0; i < op->nin; i++)
        if (needs_grad(op->in[i]))
            add_grad(g, op->in[i], b->out[i], op);
}

static int differentiate_detect(IrGraph *g, IrOp *op) {
    switch (op->kind) {
    case LG_OP_RPN_LOSS:
    case LG_OP_FASTRCNN_LOSS: {
        IrValue *d0 = op->out[0]->grad, *d1 = op->out[1]->grad;
        if (!d0 && !d1)
            return 0;
        int rpn = op->kind == LG_OP_RPN_LOSS;
        /* rpn: labels and box targets are the forward's saved outputs;
         * fastrcnn: roi_sample's, passed in */
        IrValue *in[6] = {d0, d1, op->in[0], op->in[1], rpn ? op->out[2] : op->in[2],
                          rpn ? op->out[3] : op->in[3]};
        IrValue *xs[2] = {op->in[0], op->in[1]};
        multi_rule(g, rpn ? IR_RPN_LOSS_BWD : IR_FASTRCNN_LOSS_BWD, op, 2, xs, 6, in);
        return 0;
    }
    case LG_OP_ROI_ALIGN: {
        IrValue *dy = op->out[0]->grad;
        if (!dy)
            return 0;
        IrValue *in[2] = {dy, op->in[0]};
        /* the runtime writes every level's gradient */
        IrOp *b = bwd_op(g, IR_ROI_ALIGN_BWD, op, 2, in);
        b->nout = op->nin - 1;
        for (int i = 1; i < op->nin; i++) {
            IrValue *dx = grad_like(g, op->in[i]);
            dx->def = b;
            b->out[i - 1] = dx;
        }
        for (int i = 1; i < op->nin; i++)
            if (needs_grad(op->in[i]))
                add_grad(g, op->in[i], b->out[i - 1], op);
        return 0;
    }
    case IR_RPN_FLATTEN: {
        IrValue *dy = op->out[0]->grad;
        if (!dy)
            return 0;
        pieces_backward(g, op, IR_RPN_FLATTEN_BWD, dy);
        return 0;
    }
    default: /* anchors, proposals, roi_sample, detections, voc_map */
        return 0;
    }
}

static int differentiate(IrProgram *p, IrGraph *g, IrOp *op, FILE *errs) {
    if (op->kind == LG_OP_SPLIT)
        return differentiate_split(g, op);
    switch (op->kind) {
    case LG_OP_ANCHORS:
    case LG_OP_PROPOSALS:
    case LG_OP_RPN_LOSS:
    case LG_OP_ROI_SAMPLE:
    case LG_OP_ROI_ALIGN:
    case LG_OP_FASTRCNN_LOSS:
    case LG_OP_DETECTIONS:
    case LG_OP_VOC_MAP:
    case IR_RPN_FLATTEN:
    case IR_ROIS_FROM_PROPOSALS:
        return differentiate_detect(g, op);
    default:
        break;
    }
    IrValue *y = op->out[0];
    IrValue *dy = y ? y->grad : NULL;
    IrValue *x = op->in[0];
    if (!dy)
        return 0; /* nothing downstream needs this op's gradient */
    switch (op->kind) {
    case LG_OP_LINEAR:
    case LG_OP_CONV2D: {
        IrValue *in[5] = {dy, x, op->in[1], pgrad(p, g, op->in[1]),
                          op->nin > 2 ? pgrad(p, g, op->in[2]) : NULL};
        emit_rule(g, op->kind == LG_OP_LINEAR ? IR_LINEAR_BWD : IR_CONV2D_BWD, op, x, 5, in);
        return 0;
    }
    case LG_OP_BATCH_NORM: {
        /* in: x, weight, bias, running_mean, running_var; out: y, mean, invstd */
        IrValue *in[7] = {dy, x, op->in[1], op->out[1], op->out[2],
                          pgrad(p, g, op->in[1]), pgrad(p, g, op->in[2])};
        emit_rule(g, IR_BATCH_NORM_BWD, op, x, 7, in);
        return 0;
    }
    case LG_OP_LAYER_NORM: {
        /* in: x, weight, bias; out: y, mean, invstd */
        IrValue *w = op->nin > 1 ? op->in[1] : NULL;
        IrValue *in[7] = {dy, x, w, op->out[1], op->out[2], pgrad(p, g, w),
                          op->nin > 2 ? pgrad(p, g, op->in[2]) : NULL};
        emit_rule(g, IR_LAYER_NORM_BWD, op, x, 7, in);
        return 0;
    }
    case LG_OP_ADAPTIVE_AVG_POOL2D:
    case LG_OP_UPSAMPLE_NEAREST:
    case LG_OP_TRANSPOSE: {
        IrValue *in[1] = {dy};
        IrKind k = op->kind == LG_OP_ADAPTIVE_AVG_POOL2D ? IR_ADAPTIVE_AVG_POOL2D_BWD
                   : op->kind == LG_OP_UPSAMPLE_NEAREST ? IR_UPSAMPLE_NEAREST_BWD
                                                        : IR_TRANSPOSE_BWD;
        emit_rule(g, k, op, x, 1, in);
        return 0;
    }
    case LG_OP_CONCAT: {
        /* the gradient of a concatenation is a split of dy: one op writes
         * every piece (pieces of inputs without a gradient are dropped) */
        int any = 0;
        for (int i = 0; i < op->nin; i++)
            any |= needs_grad(op->in[i]);
        if (!any)
            return 0;
        pieces_backward(g, op, IR_CONCAT_BWD, dy);
        return 0;
    }
    case LG_OP_RELU:
    case LG_OP_SIGMOID:
    case LG_OP_TANH:
    case LG_OP_SOFTMAX:
    case LG_OP_LOG_SOFTMAX: {
        static const IrKind k[] = {[LG_OP_RELU] = IR_RELU_BWD, [LG_OP_SIGMOID] = IR_SIGMOID_BWD,
                                   [LG_OP_TANH] = IR_TANH_BWD, [LG_OP_SOFTMAX] = IR_SOFTMAX_BWD,
                                   [LG_OP_LOG_SOFTMAX] = IR_LOG_SOFTMAX_BWD};
        IrValue *in[2] = {dy, y};
        emit_rule(g, k[op->kind], op, x, 2, in);
        return 0;
    }
    case LG_OP_LEAKY_RELU:
    case LG_OP_GELU:
    case LG_OP_SILU: {
        IrKind k = op->kind == LG_OP_LEAKY_RELU ? IR_LEAKY_RELU_BWD
                   : op->kind == LG_OP_GELU     ? IR_GELU_BWD
                                                : IR_SILU_BWD;
        IrValue *in[2] = {dy, x};
        emit_rule(g, k, op, x, 2, in);
        return 0;
    }
    case LG_OP_DROPOUT: {
        IrValue *in[2] = {dy, op->out[1]}; /* the mask */
        emit_rule(g, IR_DROPOUT_BWD, op, x, 2, in);
        return 0;
    }
    case LG_OP_MAX_POOL2D: {
        IrValue *in[2] = {dy, op->out[1]}; /* the saved arg-max (int32) */
        emit_rule(g, IR_MAX_POOL2D_BWD, op, x, 2, in);
        return 0;
    }
    case LG_OP_AVG_POOL2D:
    case LG_OP_GLOBAL_AVG_POOL: {
        IrValue *in[1] = {dy};
        emit_rule(g, op->kind == LG_OP_AVG_POOL2D ? IR_AVG_POOL2D_BWD : IR_GLOBAL_AVG_POOL_BWD, op,
                  x, 1, in);
        return 0;
    }
    case LG_OP_FLATTEN:
    case LG_OP_RESHAPE:
        /* A view forward, a view backward: dx is dy's memory with x's shape. */
        if (needs_grad(x)) {
            IrValue *dx = grad_like(g, x);
            dx->storage = IR_ST_VIEW;
            dx->base = dy;
            add_grad(g, x, dx, op);
        }
        return 0;
    case LG_OP_ADD:
        for (int i = 0; i < 2; i++)
            if (needs_grad(op->in[i]))
                add_grad(g, op->in[i], dy, op);
        return 0;
    case LG_OP_MUL:
        for (int i = 0; i < 2; i++) {
            IrValue *in[3] = {dy, op->in[0], op->in[1]};
            if (needs_grad(op->in[i])) {
                IrOp *b = emit_rule(g, IR_MUL_BWD, op, op->in[i], 3, in);
                b->a.k = i; /* which input's gradient */
            }
        }
        return 0;
    case LG_OP_SCALE: {
        IrValue *in[1] = {dy};
        emit_rule(g, LG_OP_SCALE, op, x, 1, in);
        return 0;
    }
    case LG_OP_MEAN:
    case LG_OP_SUM: {
        IrValue *in[1] = {dy};
        emit_rule(g, op->kind == LG_OP_MEAN ? IR_MEAN_BWD : IR_SUM_BWD, op, x, 1, in);
        return 0;
    }
    case LG_OP_CROSS_ENTROPY:
    case LG_OP_MSE_LOSS:
    case LG_OP_L1_LOSS:
    case LG_OP_SMOOTH_L1_LOSS:
    case LG_OP_BCE_WITH_LOGITS: {
        IrKind k = op->kind == LG_OP_CROSS_ENTROPY  ? IR_CROSS_ENTROPY_BWD
                   : op->kind == LG_OP_MSE_LOSS     ? IR_MSE_LOSS_BWD
                   : op->kind == LG_OP_L1_LOSS      ? IR_L1_LOSS_BWD
                   : op->kind == LG_OP_SMOOTH_L1_LOSS ? IR_SMOOTH_L1_LOSS_BWD
                                                    : IR_BCE_WITH_LOGITS_BWD;
        IrValue *in[3] = {dy, x, op->in[1]};
        emit_rule(g, k, op, x, 3, in);
        return 0;
    }
    default:
        if (errs)
            fprintf(errs, "%s:%d: error: no backward rule for '%s' yet\n", op->file ? op->file : "?",
                    op->line, ir_kind_name(op->kind));
        return 1;
    }
}

int ad_backward(IrProgram *p, void *errs) {
    IrGraph *g = &p->graphs[IR_STEP_TRAIN];
    if (!g->present || !g->loss)
        return 0;
    g->nforward = g->nops;
    if (!g->loss->requires_grad)
        return 0; /* nothing to train: the optimizer step sees zero gradients */
    IrOp *seed = ir_op(g, IR_SEED, 0, NULL);
    seed->backward = 1;
    seed->file = g->file;
    seed->line = g->line;
    IrValue *d = ir_value(g, "loss_grad", IR_F32, 0, 0, NULL);
    d->def = seed;
    seed->out[0] = d;
    seed->nout = 1;
    g->loss->grad = d;
    int errors = 0;
    for (int i = g->nforward - 1; i >= 0; i--)
        if (g->ops[i]->kind < LG_OP_COUNT || g->ops[i]->kind == IR_RPN_FLATTEN)
            errors += differentiate(p, g, g->ops[i], errs);
    return errors;
}
