/* emit_cuda.c — the CUDA half of code generation: DIR/NAME_cuda.c.
 *
 * `lgen SPEC -o DIR --target cuda` (or `all`) writes, beside emit_c.c's
 * NAME.c, a file with the same steps running on one GPU. It reads the same
 * IR, backward pass and memory plan (no second lowering): every op of a step
 * becomes one lg_cuda_* call (lgen/cuda.h: cuDNN convolutions and batch
 * norm, cuBLASLt/cuBLAS linear layers, the project's own kernels for the
 * rest), every arena value the same plan offset, in a device arena.
 *
 * The generated file is plain C compiled by $(CC) (the kernels live in
 * liblgen_cuda.a, built by nvcc). What it holds, in order:
 *   - the parameter offsets and the device arena's layout: parameters,
 *     gradients, the step scalars, two batch buffers (one per pinned
 *     staging slot), the activations at the plan's per-sample offsets
 *     times Bp (the batch size rounded up so that every
 *     offset, a multiple of 16 floats, lands on a 256-byte boundary), and
 *     the loss and metric workspaces. Its size is known once batch_size is:
 *     lg_cuda_init makes the one cudaMalloc; the steps never allocate;
 *   - the layer plans (cuBLASLt heuristics, cuDNN algorithms), made for the
 *     batch size and again when a batch of another size arrives (the last,
 *     short batch of an epoch), outside the steady state;
 *   - one function per step: it copies the batch from a pinned slot on the
 *     copy stream, runs forward and backward on the compute stream, and
 *     brings back the logged scalars only. The parameters, their gradients
 *     (accumulated over micro-batches, as the CPU kernels' `+=`) and the
 *     optimizer's state live in the arena;
 *   - the optimizer step on the device (lgen/cuda_optim.h): GradScaler's
 *     unscale and skip, the 1/accumulate_grad_batches scaling, clipping and
 *     one fused update per parameter group, with the lr the host's scheduler
 *     wrote; and the transfers the trainer runtime asks for when the host
 *     needs the weights (a checkpoint, the end of fit) or set them (initial
 *     weights, a checkpoint load);
 *   - lg_cuda_trainer_steps and lg_cuda_resident_steps, which
 *     runtime/trainer/loop.c finds (weak symbols) when the trainer is built
 *     with `make CUDA=1`.
 */
#include "emit_cuda_internal.h"

/* Whether avg_pool2d f goes through cuDNN: where cuDNN's windows are
 * PyTorch's, i.e. ceil_mode adds no window (every window lies inside the
 * padded input, so COUNT_INCLUDE_PADDING divides by kh*kw and
 * COUNT_EXCLUDE_PADDING by the input elements, as PyTorch does). Else the
 * own kernel (a last window hanging over the padding: PyTorch's divisor
 * counts only up to the padded edge). Max pooling always takes the own
 * kernel: it keeps PyTorch's arg-max (first maximum, NaN wins) for
 * backward, where cuDNN finds a maximum again from x and y, which one on
 * a tie being undocumented. */
static int avg_pool_cudnn(const IrOp *f) {
    const IrValue *x = f->in[0];
    int H = x->dim[1], W = x->dim[2];
    if (f->kind != LG_OP_AVG_POOL2D || !f->a.ceil_mode)
        return f->kind == LG_OP_AVG_POOL2D;
    return (H + 2 * f->a.ph - f->a.kh + f->a.sh - 1) / f->a.sh == (H + 2 * f->a.ph - f->a.kh) / f->a.sh &&
           (W + 2 * f->a.pw - f->a.kw + f->a.sw - 1) / f->a.sw == (W + 2 * f->a.pw - f->a.kw) / f->a.sw;
}

const char *plan_for(CudaEmit *X, IrOp *op) {
    Emit *E = X->E;
    IrOp *f = op->fwd ? op->fwd : op;
    IrValue *x = f->in[0], *y = f->out[0];
    char body[512];
    char kind;
    switch (f->kind) {
    case LG_OP_LINEAR: {
        size_t rows = 1;
        for (int i = 0; i + 1 < x->ndim; i++)
            rows *= (size_t)x->dim[i];
        kind = 'L';
        snprintf(body, sizeof body,
                 "{.N = (int)(n * %zu), .in = %d, .out = %d, .bias = %d, .dtype = gpu.dt}", rows,
                 x->dim[x->ndim - 1], y->dim[y->ndim - 1], f->nin > 2);
        break;
    }
    case LG_OP_CONV2D:
        kind = 'C';
        snprintf(body, sizeof body,
                 "{.N = (int)n, .C = %d, .H = %d, .W = %d, .K = %d, .R = %d, .S = %d,\n"
                 "        .pad_h = %d, .pad_w = %d, .stride_h = %d, .stride_w = %d, .dil_h = %d, .dil_w = %d,\n"
                 "        .groups = %d, .bias = %d, .dtype = gpu.dt}",
                 x->dim[0], x->dim[1], x->dim[2], y->dim[0], f->a.kh, f->a.kw, f->a.ph, f->a.pw, f->a.sh,
                 f->a.sw, f->a.dh, f->a.dw, f->a.groups, f->nin > 2);
        break;
    case LG_OP_BATCH_NORM: {
        size_t spatial = 1;
        for (int i = 1; i < x->ndim; i++)
            spatial *= (size_t)x->dim[i];
        kind = 'N';
        snprintf(body, sizeof body,
                 "{.N = (int)n, .C = %d, .H = %zu, .W = 1, .eps = %.9g, .momentum = %.9g, .dtype = gpu.dt}",
                 x->dim[0], spatial, f->a.eps, f->a.momentum);
        break;
    }
    case LG_OP_MAX_POOL2D:
    case LG_OP_AVG_POOL2D:
        if (avg_pool_cudnn(f)) { /* cuDNN's average pooling */
            kind = 'Q';
            snprintf(body, sizeof body,
                     "{.N = (int)n, .C = %d, .H = %d, .W = %d, .kh = %d, .kw = %d, .sh = %d, .sw = %d,\n"
                     "        .ph = %d, .pw = %d, .max = 0, .count_include_pad = %d, .dtype = gpu.dt}",
                     x->dim[0], x->dim[1], x->dim[2], f->a.kh, f->a.kw, f->a.sh, f->a.sw, f->a.ph, f->a.pw,
                     f->a.count_include_pad);
            break;
        }
        kind = 'P';
        snprintf(body, sizeof body,
                 "{.H = %d, .W = %d, .kh = %d, .kw = %d, .sh = %d, .sw = %d, .ph = %d, .pw = %d,\n"
                 "        .ceil_mode = %d, .count_include_pad = %d}",
                 x->dim[1], x->dim[2], f->a.kh, f->a.kw, f->a.sh, f->a.sw, f->a.ph, f->a.pw, f->a.ceil_mode,
                 f->a.count_include_pad);
        break;
    default:
        return NULL;
    }
    for (int i = 0; i < X->nplans; i++)
        if (X->plans[i].kind == kind && !strcmp(X->plans[i].body, body))
            return X->plans[i].field;
    /* the member's name: the layer's, made a C identifier and unique */
    const char *stem = f->layer ? f->layer : y->name;
    char *id = ir_fmt(E->p, "%s_%s", kind == 'P' ? "pool" : kind == 'Q' ? "avgpool" : kind == 'N' ? "bn"
                                    : kind == 'C' ? "conv" : "linear",
                      stem);
    for (char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            *c = '_';
    const char *field = id;
    for (int i = 0; i < X->nplans; i++)
        if (!strcmp(X->plans[i].field, field))
            field = ir_fmt(E->p, "%s_%d", id, X->nplans);
    if (X->nplans == X->capplans) {
        X->capplans = X->capplans ? 2 * X->capplans : 16;
        X->plans = realloc(X->plans, (size_t)X->capplans * sizeof *X->plans);
    }
    X->plans[X->nplans++] = (Plan){kind, field, ir_strdup(E->p, body), f->file, f->line};
    return field;
}

/* transpose's view of x (per-sample dims d0, d1 swapped) as the launcher's
 * [outer, a, mid, b, inner]: "outer, a, mid, b, inner" with a and b
 * exchanged for the backward (dy is the forward's output). */
static const char *transpose_args(Emit *E, const IrValue *x, int d0, int d1, int backward) {
    size_t v[5];
    emit_transpose_view(x, d0, d1, v);
    return ir_fmt(E->p, "%s%zu, %zu, %zu, %zu, %zu", x->batched ? "n * " : "", v[0], v[backward ? 3 : 1], v[2],
                  v[backward ? 1 : 3], v[4]);
}

/* concat/split along per-sample dim d: a block declaring the pieces' sizes
 * (dim_i * inner) and pointers, then the call (fn: lg_cuda_concat joins
 * the pieces into whole, lg_cuda_split cuts whole into them). */
static void concat_call(Emit *E, const char *fn, IrValue *const *shapes, IrValue *const *pieces, int k, int d,
                        IrValue *whole) {
    const IrValue *x = shapes[0];
    d = d < 0 ? d + x->ndim : d;
    size_t outer = 1, inner = 1;
    for (int i = 0; i < d; i++)
        outer *= (size_t)x->dim[i];
    for (int i = d + 1; i < x->ndim; i++)
        inner *= (size_t)x->dim[i];
    int split = !strcmp(fn, "split");
    out(E, "    {\n        const size_t sizes[] = {");
    for (int i = 0; i < k; i++)
        out(E, "%s%zu", i ? ", " : "", (size_t)shapes[i]->dim[d] * inner);
    out(E, "};\n        %s pieces[] = {", split ? "void *const" : "const void *const");
    for (int i = 0; i < k; i++)
        out(E, "%s%s", i ? ", " : "", dptr(E, pieces[i]));
    const char *w = dptr(E, whole);
    out(E, "};\n        st = lg_cuda_%s(c, %s, %s%zu, %d, sizes, %s, %s, err);\n    }\n", fn, vdt(whole),
        whole->batched ? "n * " : "", outer, k, split ? w : "pieces", split ? "pieces" : w);
}

/* One op; returns 1 when the CUDA target has no call for it. */
static int emit_op(CudaEmit *X, IrGraph *g, IrOp *op) {
    Emit *E = X->E;
    IrValue *y = op->nout ? op->out[0] : NULL;
    IrValue *x = op->nin ? op->in[0] : NULL;
    int training = g->step == IR_STEP_TRAIN;
    const char *layer = op->layer ? op->layer : (y ? y->name : ir_kind_name(op->kind));
    switch (op->kind) {
    case LG_OP_LINEAR:
        where(E, op, ir_fmt(E->p, "%s = linear(%s)%s: cuBLASLt", layer, x->name, op->fused_relu ? " |> relu" : ""));
        out(E, "    st = lg_cuda_linear_forward(c, gpu.%s, %s, %s, %s, %s, err);\n", plan_for(X, op), dptr(E, x),
            wptr(E, op->in[1]), op->nin > 2 ? wptr(E, op->in[2]) : "NULL", dptr(E, y));
        check(E);
        break;
    case LG_OP_CONV2D:
        where(E, op, ir_fmt(E->p, "%s = conv2d(%s)%s: cuDNN", layer, x->name, op->fused_relu ? " |> relu" : ""));
        out(E, "    st = lg_cuda_conv_forward(c, gpu.%s, %s, %s, %s, %s, err);\n", plan_for(X, op), dptr(E, x),
            wptr(E, op->in[1]), op->nin > 2 ? wptr(E, op->in[2]) : "NULL", dptr(E, y));
        check(E);
        break;
    case LG_OP_BATCH_NORM:
        /* affine: false passes NULL weight and bias: a unit scale (lgen/cuda.h) */
        where(E, op, ir_fmt(E->p, "%s = batch_norm(%s)%s: cuDNN", layer, x->name, op->fused_relu ? " |> relu" : ""));
        if (training && op->a.momentum < 0 && op->nin > 5) /* momentum none: PyTorch's cumulative average */
            out(E, "    lg_cuda_bn_set_momentum(gpu.%s, 1.0 / (io->params[%zu] + 1.0)); // momentum none: "
                   "1 / num_batches_tracked, this batch counted\n",
                plan_for(X, op), E->p->params[plan_root(op->in[5])->param].offset);
        if (training)
            out(E, "    st = lg_cuda_bn_forward_train(c, gpu.%s, %s, %s, %s, %s, %s, %s, %s, %s, err);\n",
                plan_for(X, op), dptr(E, x), dptr(E, y), dptr(E, op->in[1]), dptr(E, op->in[2]),
                dptr(E, op->in[3]), dptr(E, op->in[4]), dptr(E, op->out[1]), dptr(E, op->out[2]));
        else
            out(E, "    st = lg_cuda_bn_forward_eval(c, gpu.%s, %s, %s, %s, %s, %s, %s, err);\n", plan_for(X, op),
                dptr(E, x), dptr(E, y), dptr(E, op->in[1]), dptr(E, op->in[2]), dptr(E, op->in[3]),
                dptr(E, op->in[4]));
        check(E);
        break;
    case LG_OP_RELU:
    case LG_OP_SIGMOID:
    case LG_OP_TANH:
    case LG_OP_SILU:
    case LG_OP_LEAKY_RELU:
        where(E, op, ir_fmt(E->p, "%s = %s(%s)", y->name, ir_kind_name(op->kind), x->name));
        out(E, "    st = lg_cuda_act_forward(c, %s, %s, dt, %s, %s, %s, err);\n", act_kind(op->kind),
            flit(E, op->kind == LG_OP_LEAKY_RELU ? op->a.slope : 0.0), dptr(E, x), dptr(E, y), count(E, y));
        check(E);
        break;
    case LG_OP_GELU:
        where(E, op, ir_fmt(E->p, "%s = gelu(%s)", y->name, x->name));
        out(E, "    st = lg_cuda_act_forward(c, %s, 0.0f, dt, %s, %s, %s, err);\n",
            op->a.approximate ? "LG_CUDA_ACT_GELU_TANH" : "LG_CUDA_ACT_GELU", dptr(E, x), dptr(E, y), count(E, y));
        check(E);
        break;
    case LG_OP_DROPOUT:
        if (!training) {
            where(E, op, ir_fmt(E->p, "%s = dropout(%s): the identity outside training", y->name, x->name));
            break;
        }
        where(E, op, ir_fmt(E->p, "%s = dropout(%s, p: %g): the CPU kernel's mask for the same seed", y->name,
                            x->name, op->a.p));
        out(E, "    st = lg_cuda_dropout_forward(c, dt, %.9g,\n"
               "                                 lg_dropout_seed(io->seed ^ ((uint64_t)io->epoch << 40), (uint64_t)b->batch_index, %d),\n"
               "                                 %s, %s, (uint8_t *)%s, %s, err);\n",
            op->a.p, op->index, dptr(E, x), dptr(E, y), dptr(E, op->out[1]), count(E, y));
        check(E);
        break;
    case LG_OP_MAX_POOL2D:
    case LG_OP_AVG_POOL2D: {
        int max = op->kind == LG_OP_MAX_POOL2D;
        if (avg_pool_cudnn(op)) {
            where(E, op, ir_fmt(E->p, "%s = avg_pool2d(%s): cuDNN", y->name, x->name));
            out(E, "    st = lg_cuda_pool_forward(c, gpu.%s, %s, %s, err);\n", plan_for(X, op), dptr(E, x), dptr(E, y));
            check(E);
            break;
        }
        where(E, op, ir_fmt(E->p, "%s = %s(%s)", y->name, ir_kind_name(op->kind), x->name));
        if (max)
            out(E, "    st = lg_cuda_max_pool2d_forward(c, &gpu.%s, dt, n * %d, %s, %s, %s, err);\n",
                plan_for(X, op), x->dim[0], dptr(E, x), dptr(E, y),
                op->nout > 1 ? ir_fmt(E->p, "(int32_t *)%s", dptr(E, op->out[1])) : "NULL");
        else
            out(E, "    st = lg_cuda_avg_pool2d_forward(c, &gpu.%s, dt, n * %d, %s, %s, err);\n",
                plan_for(X, op), x->dim[0], dptr(E, x), dptr(E, y));
        check(E);
        break;
    }
    case LG_OP_GLOBAL_AVG_POOL:
        where(E, op, ir_fmt(E->p, "%s = global_avg_pool(%s)", y->name, x->name));
        out(E, "    st = lg_cuda_global_avg_pool_forward(c, dt, n * %d, %zu, %s, %s, err);\n", x->dim[0],
            numel(x) / (size_t)x->dim[0], dptr(E, x), dptr(E, y));
        check(E);
        break;
    case LG_OP_FLATTEN:
    case LG_OP_RESHAPE:
        where(E, op, ir_fmt(E->p, "%s = %s(%s): the same memory", y->name, ir_kind_name(op->kind), x->name));
        break;
    case LG_OP_SOFTMAX:
    case LG_OP_LOG_SOFTMAX: {
        size_t o, m, in;
        axis(x, op->a.dim, &o, &m, &in);
        where(E, op, ir_fmt(E->p, "%s = %s(%s)", y->name, ir_kind_name(op->kind), x->name));
        out(E, "    st = lg_cuda_softmax_forward(c, %s, %d, %s, %zu, %zu, %s, %s, err);\n", vdt(x),
            op->kind == LG_OP_LOG_SOFTMAX, x->batched ? ir_fmt(E->p, "n * %zu", o) : ir_fmt(E->p, "%zu", o), m,
            in, dptr(E, x), dptr(E, y));
        check(E);
        break;
    }
    case LG_OP_ADD:
    case LG_OP_MUL:
        /* equal shapes (the language has no broadcasting): one elementwise call */
        where(E, op, ir_fmt(E->p, "%s = %s(%s, %s)", y->name, ir_kind_name(op->kind), x->name, op->in[1]->name));
        out(E, "    st = lg_cuda_%s(c, %s, %s, %s, %s, %s, err);\n", ir_kind_name(op->kind), vdt(y), dptr(E, x),
            dptr(E, op->in[1]), dptr(E, y), count(E, y));
        check(E);
        break;
    case LG_OP_SCALE:
        where(E, op, ir_fmt(E->p, "%s = %g * %s", y->name, op->a.by, x->name));
        out(E, "    st = lg_cuda_scale(c, %s, %s, %s, %s, %s, err);\n", vdt(y), flit(E, op->a.by), dptr(E, x),
            dptr(E, y), count(E, y));
        check(E);
        break;
    case LG_OP_MEAN:
    case LG_OP_SUM:
        where(E, op, ir_fmt(E->p, "%s = %s(%s)", y->name, ir_kind_name(op->kind), x->name));
        out(E, "    st = lg_cuda_reduce(c, LG_CUDA_REDUCE_SUM, %d, 0.0f, %s, %s, NULL, %s, %s, err);\n",
            op->kind == LG_OP_MEAN, vdt(x), dptr(E, x), count(E, x), dptr(E, y));
        check(E);
        break;
    case LG_OP_MSE_LOSS:
    case LG_OP_L1_LOSS:
    case LG_OP_SMOOTH_L1_LOSS:
    case LG_OP_BCE_WITH_LOGITS:
        where(E, op, ir_fmt(E->p, "%s = %s(%s, %s)", y->name, ir_kind_name(op->kind), x->name, op->in[1]->name));
        out(E, "    st = lg_cuda_reduce(c, %s, %d, %s, %s, %s, %s, %s, %s, err);\n", loss_kind(op->kind),
            !op->a.reduction, flit(E, op->kind == LG_OP_SMOOTH_L1_LOSS ? op->a.beta : 0.0), vdt(x), dptr(E, x),
            dptr(E, op->in[1]), count(E, x), dptr(E, y));
        check(E);
        break;
    case LG_OP_CROSS_ENTROPY:
        where(E, op, ir_fmt(E->p, "%s = cross_entropy(%s, %s)", y->name, x->name, op->in[1]->name));
        out(E, "    {\n        const lg_cuda_ce d = %s;\n", ce_desc(E, op));
        to_f32(X, x, "        ");
        out(E, "        st = lg_cuda_cross_entropy_forward(c, &d, %s, %s, NULL, %s, ce_ws, err);\n    }\n",
            f32(E, x), dptr(E, op->in[1]), dptr(E, y));
        check(E);
        break;
    case LG_OP_ACCURACY:
        where(E, op, ir_fmt(E->p, "%s = accuracy(%s, %s)", y->name, x->name, op->in[1]->name));
        to_f32(X, x, "    ");
        out(E, "    st = lg_cuda_accuracy(c, %s, %s, (int)n, %d, %s, metric_ws, err);\n", f32(E, x),
            dptr(E, op->in[1]), x->dim[x->ndim - 1], dptr(E, y));
        check(E);
        break;
    case LG_OP_TOPK_ACCURACY:
        where(E, op, ir_fmt(E->p, "%s = topk_accuracy(%s, %s, k: %d)", y->name, x->name, op->in[1]->name, op->a.k));
        to_f32(X, x, "    ");
        out(E, "    st = lg_cuda_topk_accuracy(c, %s, %s, (int)n, %d, %d, %s, metric_ws, err);\n", f32(E, x),
            dptr(E, op->in[1]), x->dim[x->ndim - 1], op->a.k, dptr(E, y));
        check(E);
        break;

    case LG_OP_LAYER_NORM: {
        size_t D = (size_t)x->dim[x->ndim - 1], rows = numel(x) / D;
        where(E, op, ir_fmt(E->p, "%s = layer_norm(%s): mean and 1/std per row kept for backward", layer, x->name));
        out(E, "    st = lg_cuda_layer_norm_forward(c, %s, %s%zu, %zu, %s, %s, %s, %s, %s, %s, %s, err);\n", vdt(x),
            x->batched ? "n * " : "", rows, D, flit(E, op->a.eps), dptr(E, x),
            op->nin > 1 ? wptr(E, op->in[1]) : "NULL", op->nin > 2 ? wptr(E, op->in[2]) : "NULL", dptr(E, y),
            dptr(E, op->out[1]), dptr(E, op->out[2]));
        check(E);
        break;
    }
    case LG_OP_ADAPTIVE_AVG_POOL2D:
        where(E, op, ir_fmt(E->p, "%s = adaptive_avg_pool2d(%s)", y->name, x->name));
        out(E, "    st = lg_cuda_adaptive_avg_pool_forward(c, %s, n * %d, %d, %d, %d, %d, %s, %s, err);\n", vdt(x),
            x->dim[0], x->dim[1], x->dim[2], y->dim[1], y->dim[2], dptr(E, x), dptr(E, y));
        check(E);
        break;
    case LG_OP_TRANSPOSE:
        where(E, op, ir_fmt(E->p, "%s = transpose(%s, %d, %d)", y->name, x->name, op->a.dim0, op->a.dim1));
        out(E, "    st = lg_cuda_transpose(c, %s, %s, %s, %s, err);\n", vdt(x),
            transpose_args(E, x, op->a.dim0, op->a.dim1, 0), dptr(E, x), dptr(E, y));
        check(E);
        break;
    case LG_OP_CONCAT:
        where(E, op, ir_fmt(E->p, "%s = concat(%d inputs, dim: %d)", y->name, op->nin, op->a.dim));
        concat_call(E, "concat", op->in, op->in, op->nin, op->a.dim, y);
        check(E);
        break;
    case LG_OP_SPLIT:
        where(E, op, ir_fmt(E->p, "split(%s) into %d pieces along dim %d", x->name, op->nout, op->a.dim));
        concat_call(E, "split", op->out, op->out, op->nout, op->a.dim, x);
        check(E);
        break;
    case LG_OP_UPSAMPLE_NEAREST:
        where(E, op, ir_fmt(E->p, "%s = upsample_nearest(%s, scale: %d)", y->name, x->name, op->a.scale));
        out(E, "    st = lg_cuda_upsample_nearest_forward(c, %s, n * %d, %d, %d, %d, %s, %s, err);\n", vdt(x),
            x->dim[0], x->dim[1], x->dim[2], op->a.scale, dptr(E, x), dptr(E, y));
        check(E);
        break;
    case IR_RPN_FLATTEN:
    case IR_RPN_FLATTEN_BWD: {
        /* each level's map [A * D, h, w] to its rows of (total, D), anchor order */
        IrOp *f = op->fwd ? op->fwd : op;
        int bwd = op->kind == IR_RPN_FLATTEN_BWD, D = f->a.k, A = f->a.num_anchors, total = f->out[0]->dim[0];
        if (bwd)
            where(E, op, ir_fmt(E->p, "d %s: back to the levels' maps", f->out[0]->name));
        else
            where(E, op, ir_fmt(E->p, "%s: %d levels' maps in anchor order (permute and flatten)", y->name, op->nin));
        for (int l = 0, off = 0; l < f->nin; l++) {
            IrValue *m = f->in[l];
            if (bwd && op->out[l])
                out(E, "    st = lg_cuda_rpn_flatten_backward(c, %s, n, %d, %d, %d, %d, %s, %d, %d, %s, err);\n",
                    vdt(m), A, D, m->dim[1], m->dim[2], dptr(E, op->in[0]), total, off, dptr(E, op->out[l]));
            else if (!bwd)
                out(E, "    st = lg_cuda_rpn_flatten_forward(c, %s, n, %d, %d, %d, %d, %s, %s, %d, %d, err);\n",
                    vdt(m), A, D, m->dim[1], m->dim[2], dptr(E, m), dptr(E, y), total, off);
            if (!bwd || op->out[l])
                check(E);
            off += m->dim[1] * m->dim[2] * A;
        }
        break;
    }

    /* ---- backward ---- */
    case IR_SEED:
        out(E, "    // d loss / d loss = 1 (the loss scale under 16-mixed)\n");
        out(E, "    st = gpu.scaling ? lg_cuda_scaler_seed(c, gpu.scaler, %s, err)\n"
               "                     : lg_cuda_copy(c, %s, one, sizeof(float), err);\n", dptr(E, y), dptr(E, y));
        check(E);
        break;
    case IR_CROSS_ENTROPY_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    {\n        const lg_cuda_ce d = %s;\n", ce_desc(E, op->fwd));
        to_f32(X, op->in[1], "        ");
        out(E, "        st = lg_cuda_cross_entropy_backward(c, &d, %s, %s, NULL, %d.0f, %s, ce_ws, %s, err);\n    }\n",
            f32(E, op->in[1]), dptr(E, op->in[2]), op->in[1]->dim[op->in[1]->ndim - 1], dptr(E, op->in[0]),
            f32_out(E, y));
        check(E);
        from_f32(X, y);
        break;
    case IR_MSE_LOSS_BWD:
    case IR_L1_LOSS_BWD:
    case IR_SMOOTH_L1_LOSS_BWD:
    case IR_BCE_WITH_LOGITS_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_cuda_loss_backward(c, %s, %d, %s, %s, %s, %s, %s, %s, %s, err);\n",
            loss_kind(op->fwd->kind), !op->fwd->a.reduction,
            flit(E, op->fwd->kind == LG_OP_SMOOTH_L1_LOSS ? op->fwd->a.beta : 0.0), vdt(op->in[1]),
            dptr(E, op->in[1]), dptr(E, op->in[2]), dptr(E, op->in[0]), dptr(E, y), count(E, op->in[1]));
        check(E);
        break;
    case IR_MEAN_BWD:
    case IR_SUM_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_cuda_loss_backward(c, LG_CUDA_REDUCE_SUM, %d, 0.0f, %s, NULL, NULL, %s, %s, %s, err);\n",
            op->kind == IR_MEAN_BWD, vdt(y), dptr(E, op->in[0]), dptr(E, y), count(E, y));
        check(E);
        break;
    case IR_LINEAR_BWD:
        where(E, op, ir_fmt(E->p, "d %s: weight and bias gradients += , input gradient = (cuBLAS)", layer));
        out(E, "    st = lg_cuda_linear_backward(c, gpu.%s, %s, %s, %s, %s, %s, %s, 1, err);\n", plan_for(X, op),
            dptr(E, op->in[1]), wptr(E, op->in[2]), dptr(E, op->in[0]), dptr(E, y), wptr(E, op->in[3]),
            wptr(E, op->in[4]));
        check(E);
        break;
    case IR_CONV2D_BWD:
        where(E, op, ir_fmt(E->p, "d %s: weight and bias gradients += , input gradient = (cuDNN)", layer));
        out(E, "    st = lg_cuda_conv_backward(c, gpu.%s, %s, %s, %s, %s, %s, %s, 1, err);\n", plan_for(X, op),
            dptr(E, op->in[1]), wptr(E, op->in[2]), dptr(E, op->in[0]), dptr(E, y), wptr(E, op->in[3]),
            wptr(E, op->in[4]));
        check(E);
        break;
    case IR_BATCH_NORM_BWD:
        where(E, op, ir_fmt(E->p, "d %s (cuDNN)", layer));
        out(E, "    st = lg_cuda_bn_backward(c, gpu.%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, err);\n", plan_for(X, op),
            dptr(E, op->in[1]), dptr(E, op->in[0]), dptr(E, y), dptr(E, op->in[2]), dptr(E, op->in[5]),
            dptr(E, op->in[6]), dptr(E, op->in[3]), dptr(E, op->in[4]));
        check(E);
        break;
    case IR_RELU_BWD:
        /* relu's output is positive exactly where its input is (as emit_c.c) */
        where(E, op, ir_fmt(E->p, "d relu -> %s", op->fwd->in[0]->name));
        out(E, "    st = lg_cuda_act_backward(c, LG_CUDA_ACT_RELU, 0.0f, dt, %s, %s, %s, %s, %s, err);\n",
            dptr(E, op->in[1]), dptr(E, op->in[1]), dptr(E, op->in[0]), dptr(E, y), count(E, op->in[1]));
        check(E);
        break;
    case IR_SIGMOID_BWD:
    case IR_TANH_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->kind == IR_SIGMOID_BWD ? "sigmoid" : "tanh"));
        out(E, "    st = lg_cuda_act_backward(c, %s, 0.0f, dt, NULL, %s, %s, %s, %s, err);\n",
            act_kind(op->kind), dptr(E, op->in[1]), dptr(E, op->in[0]), dptr(E, y), count(E, op->in[1]));
        check(E);
        break;
    case IR_SILU_BWD:
    case IR_LEAKY_RELU_BWD:
    case IR_GELU_BWD: {
        const char *k = op->kind == IR_GELU_BWD ? (op->a.approximate ? "LG_CUDA_ACT_GELU_TANH" : "LG_CUDA_ACT_GELU")
                                                : act_kind(op->kind);
        where(E, op, ir_fmt(E->p, "d %s", ir_kind_name(op->fwd->kind)));
        out(E, "    st = lg_cuda_act_backward(c, %s, %s, dt, %s, NULL, %s, %s, %s, err);\n", k,
            flit(E, op->kind == IR_LEAKY_RELU_BWD ? op->a.slope : 0.0), dptr(E, op->in[1]), dptr(E, op->in[0]),
            dptr(E, y), count(E, op->in[1]));
        check(E);
        break;
    }
    case IR_DROPOUT_BWD:
        where(E, op, "d dropout");
        out(E, "    st = lg_cuda_dropout_backward(c, dt, %.9g, (const uint8_t *)%s, %s, %s, %s, err);\n",
            op->a.p, dptr(E, op->in[1]), dptr(E, op->in[0]), dptr(E, y), count(E, op->in[0]));
        check(E);
        break;
    case IR_MAX_POOL2D_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_cuda_max_pool2d_backward(c, &gpu.%s, dt, n * %d, (const int32_t *)%s, %s, %s, err);\n",
            plan_for(X, op), op->fwd->in[0]->dim[0], dptr(E, op->in[1]), dptr(E, op->in[0]), dptr(E, y));
        check(E);
        break;
    case IR_AVG_POOL2D_BWD:
        if (avg_pool_cudnn(op->fwd)) {
            /* average pooling's backward reads dy only; x and y fill cuDNN's signature */
            where(E, op, ir_fmt(E->p, "d %s (cuDNN)", op->fwd->out[0]->name));
            out(E, "    st = lg_cuda_pool_backward(c, gpu.%s, %s, %s, %s, %s, err);\n", plan_for(X, op),
                dptr(E, op->fwd->in[0]), dptr(E, op->fwd->out[0]), dptr(E, op->in[0]), dptr(E, y));
            check(E);
            break;
        }
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_cuda_avg_pool2d_backward(c, &gpu.%s, dt, n * %d, %s, %s, err);\n",
            plan_for(X, op), op->fwd->in[0]->dim[0], dptr(E, op->in[0]), dptr(E, y));
        check(E);
        break;
    case IR_GLOBAL_AVG_POOL_BWD: {
        IrValue *fx = op->fwd->in[0];
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_cuda_global_avg_pool_backward(c, dt, n * %d, %zu, %s, %s, err);\n", fx->dim[0],
            numel(fx) / (size_t)fx->dim[0], dptr(E, op->in[0]), dptr(E, y));
        check(E);
        break;
    }
    case IR_SOFTMAX_BWD:
    case IR_LOG_SOFTMAX_BWD: {
        size_t o, m, in;
        axis(op->in[1], op->a.dim, &o, &m, &in);
        where(E, op, ir_fmt(E->p, "d %s", op->kind == IR_SOFTMAX_BWD ? "softmax" : "log_softmax"));
        out(E, "    st = lg_cuda_softmax_backward(c, %s, %d, %s, %zu, %zu, %s, %s, %s, err);\n", vdt(op->in[1]),
            op->kind == IR_LOG_SOFTMAX_BWD,
            op->in[1]->batched ? ir_fmt(E->p, "n * %zu", o) : ir_fmt(E->p, "%zu", o), m, in,
            dptr(E, op->in[1]), dptr(E, op->in[0]), dptr(E, y));
        check(E);
        break;
    }
    case IR_LAYER_NORM_BWD: {
        IrValue *fx = op->in[1];
        size_t D = (size_t)fx->dim[fx->ndim - 1], rows = numel(fx) / D;
        where(E, op, ir_fmt(E->p, "d %s: weight and bias gradients += , input gradient =", layer));
        out(E, "    st = lg_cuda_layer_norm_backward(c, %s, %s%zu, %zu, %s, %s, %s, %s, %s, %s, %s, %s, err);\n",
            vdt(fx), fx->batched ? "n * " : "", rows, D, dptr(E, fx), wptr(E, op->in[2]), dptr(E, op->in[3]),
            dptr(E, op->in[4]), dptr(E, op->in[0]), dptr(E, y), wptr(E, op->in[5]), wptr(E, op->in[6]));
        check(E);
        break;
    }
    case IR_ADAPTIVE_AVG_POOL2D_BWD: {
        IrValue *fx = op->fwd->in[0], *fy = op->fwd->out[0];
        where(E, op, ir_fmt(E->p, "d %s", fy->name));
        out(E, "    st = lg_cuda_adaptive_avg_pool_backward(c, %s, n * %d, %d, %d, %d, %d, %s, %s, err);\n",
            vdt(fx), fx->dim[0], fx->dim[1], fx->dim[2], fy->dim[1], fy->dim[2], dptr(E, op->in[0]), dptr(E, y));
        check(E);
        break;
    }
    case IR_TRANSPOSE_BWD:
        where(E, op, ir_fmt(E->p, "d %s: the transpose back", op->fwd->out[0]->name));
        out(E, "    st = lg_cuda_transpose(c, %s, %s, %s, %s, err);\n", vdt(op->fwd->in[0]),
            transpose_args(E, op->fwd->in[0], op->a.dim0, op->a.dim1, 1), dptr(E, op->in[0]), dptr(E, y));
        check(E);
        break;
    case IR_CONCAT_BWD:
        where(E, op, ir_fmt(E->p, "d %s: split into its pieces", op->fwd->out[0]->name));
        concat_call(E, "split", op->fwd->in, op->out, op->nout, op->a.dim, op->in[0]);
        check(E);
        break;
    case IR_SPLIT_BWD:
        where(E, op, ir_fmt(E->p, "d split: concatenate the pieces' gradients into d %s", op->fwd->in[0]->name));
        concat_call(E, "concat", op->fwd->out, op->in, op->nin, op->a.dim, y);
        check(E);
        break;
    case IR_MUL_BWD:
        /* one side's gradient per op: da = dy * b or db = dy * a */
        where(E, op, op->a.k ? "d mul, second input" : "d mul, first input");
        out(E, "    st = lg_cuda_mul_backward(c, %s, %s, %s, %s, %s, %s, %s, err);\n", vdt(op->in[0]),
            dptr(E, op->in[1]), dptr(E, op->in[2]), dptr(E, op->in[0]), op->a.k ? "NULL" : dptr(E, y),
            op->a.k ? dptr(E, y) : "NULL", count(E, op->in[0]));
        check(E);
        break;
    case IR_UPSAMPLE_NEAREST_BWD: {
        IrValue *fx = op->fwd->in[0];
        where(E, op, ir_fmt(E->p, "d %s: each input the sum of its %dx%d block", op->fwd->out[0]->name,
                            op->a.scale, op->a.scale));
        out(E, "    st = lg_cuda_upsample_nearest_backward(c, %s, n * %d, %d, %d, %d, %s, %s, err);\n", vdt(fx),
            fx->dim[0], fx->dim[1], fx->dim[2], op->a.scale, dptr(E, op->in[0]), dptr(E, y));
        check(E);
        break;
    }
    case IR_ACCUM:
        where(E, op, ir_fmt(E->p, "gradient sum for %s", op->fwd ? op->fwd->in[0]->name : "?"));
        if (op->in_place)
            out(E, "    st = lg_cuda_accumulate(c, %s, %s, %s, %s, err);\n", vdt(y), dptr(E, op->in[1]), dptr(E, y),
                count(E, y));
        else
            out(E, "    st = lg_cuda_add(c, %s, %s, %s, %s, %s, err);\n", vdt(y), dptr(E, op->in[0]),
                dptr(E, op->in[1]), dptr(E, y), count(E, y));
        check(E);
        break;
    case IR_COPY:
        where(E, op, ir_fmt(E->p, "%s: the gradient passed through", y->name));
        out(E, "    st = lg_cuda_copy(c, %s, %s, %s * LG_CUDA_DTYPE_SIZE(%s), err);\n", dptr(E, y),
            dptr(E, op->in[0]), count(E, y), vdt(y));
        check(E);
        break;
    case IR_ZERO:
        out(E, "    // %s: no use downstream, a zero gradient\n", y->name);
        out(E, "    st = lg_cuda_memset(c, %s, 0, %s * LG_CUDA_DTYPE_SIZE(%s), err);\n", dptr(E, y), count(E, y),
            vdt(y));
        check(E);
        break;
    default: /* the detection ops: emit_cuda_detect.c */
        return emit_cuda_detect_op(X, g, op);
    }
    if (op->fused_relu) {
        out(E, "    st = lg_cuda_act_forward(c, LG_CUDA_ACT_RELU, 0.0f, dt, %s, %s, %s, err);\n", dptr(E, y),
            dptr(E, y), count(E, y));
        check(E);
    }
    return 0;
}

/* ---- a step ---------------------------------------------------------------- */

static int emit_step(CudaEmit *X, IrGraph *g, const char *fn, const char *cpu_fn) {
    Emit *E = X->E;
    IrProgram *p = E->p;
    const char *m = E->prefix;
    int errors = 0;
    /* the ops first, into a buffer: a step the target cannot lower is reported once per op */
    char *body = NULL;
    size_t nbody = 0;
    FILE *f = E->f;
    E->f = open_memstream(&body, &nbody);
    for (int i = 0; i < g->nops; i++) {
        IrOp *op = g->ops[i];
        if (op->dead)
            continue;
        if (i == g->nforward && g->nforward && g->nops > g->nforward)
            out(E, "\n    /* ---- backward: generated at compile time, last layer first ---- */\n");
        if (emit_op(X, g, op)) {
            fprintf(E->ctx->err, "%s:%d: error: the CUDA target has no device kernel call for '%s' yet\n",
                    op->file ? op->file : "?", op->line, ir_kind_name(op->kind));
            errors++;
        }
    }
    fclose(E->f);
    E->f = f;
    int training = g->step == IR_STEP_TRAIN;

    out(E, "/* %s step (%s:%d) on the GPU: the same ops as %s() in %s.c. */\n", g->name, g->file ? g->file : "?",
        g->line, cpu_fn, E->lower);
    out(E, "static lg_status %s(lg_step_io *io, const lg_batch *b) {\n", fn);
    out(E, "    lg_error *err = io->ctx->err;\n");
    out(E, "    lg_cuda *c = gpu.c;\n");
    out(E, "    const lg_cuda_dtype dt = gpu.dt; // f32, or f16/bf16 under mixed precision\n");
    out(E, "    const size_t n = (size_t)b->n; // samples in this batch\n");
    out(E, "    const size_t Bp = gpu.Bp;       // the arena's layout unit (batch_size rounded up)\n");
    out(E, "    const int slot = (int)(b->batch_index & 1);\n");
    out(E, "    lg_status st = %s_gpu_begin(io, b, slot, %d);\n", E->lower, training);
    out(E, "    if (st) return st;\n");
    /* declare what the ops use (the body is printed below) */
    if (mentions(body, "params"))
        out(E, "    float *params = gpu.params;\n");
    if (mentions(body, "grads"))
        out(E, "    float *grads = gpu.grads;\n");
    out(E, "    float *fixed = gpu.fixed;\n");
    int need_act = 0;
    for (int i = 0; i < g->nvalues; i++) {
        IrValue *v = g->values[i];
        need_act |= v->storage == IR_ST_ARENA && v->first >= 0 && v->cname && v->batched && mentions(body, v->cname);
    }
    if (need_act)
        out(E, "    float *act = gpu.act;\n");
    if (mentions(body, "ce_ws"))
        out(E, "    void *ce_ws = gpu.ce_ws;\n");
    if (mentions(body, "metric_ws"))
        out(E, "    void *metric_ws = gpu.metric_ws;\n");
    if (mentions(body, "one"))
        out(E, "    const float *one = gpu.one; // a device 1.0f, set at start-up\n");
    if (mentions(body, "det_ws"))
        out(E, "    void *det_ws = gpu.det_ws;\n");
    for (int k = 0; k < p->ninputs; k++) {
        if (strcmp(p->inputs[k].name, "targets") || !mentions(body, "tg"))
            continue;
        const char *t = ir_fmt(p, "%s_BATCH_targets", m);
        out(E, "    // b.targets: the batch's ground truth on the device, at most %d boxes per image;\n"
               "    // the data set's class k is detection class k + 1 (0 is the background)\n", p->inputs[k].dim[0]);
        out(E, "    const lg_cuda_det_targets tg = {.max_boxes = %d,\n"
               "                                .boxes = (const float *)(gpu.batch[slot] + %s_BOXES(Bp)),\n"
               "                                .labels = (const int32_t *)(gpu.batch[slot] + %s_LABELS(Bp)),\n"
               "                                .difficult = (const uint8_t *)(gpu.batch[slot] + %s_DIFFICULT(Bp)),\n"
               "                                .count = (const int32_t *)(gpu.batch[slot] + %s_COUNT(Bp)),\n"
               "                                .label_offset = 1, .skip_difficult = 0};\n",
            p->inputs[k].dim[0], t, t, t, t);
    }
    int float_inputs = 0;
    for (int k = 0; k < p->ninputs; k++) {
        if (!mentions(body, ir_fmt(p, "in_%s", p->inputs[k].name)) || !strcmp(p->inputs[k].name, "targets"))
            continue;
        out(E, "    %s *in_%s = (%s *)(gpu.batch[slot] + %s_BATCH_%s_OFFSET(Bp)); // b->%s\n",
            p->inputs[k].dtype == IR_I32 ? "int32_t" : "float", p->inputs[k].name,
            p->inputs[k].dtype == IR_I32 ? "int32_t" : "float", m, p->inputs[k].name, p->inputs[k].name);
        if (p->inputs[k].dtype == IR_I32)
            continue;
        size_t per = 1;
        for (int d = 0; d < p->inputs[k].ndim; d++)
            per *= (size_t)p->inputs[k].dim[d];
        if (per > X->half_input)
            X->half_input = per;
        if (float_inputs++ && !X->no_mixed)
            X->no_mixed = "a second float batch field";
        out(E, "    if (dt != LG_CUDA_F32) { // the batch in the compute dtype\n"
               "        if ((st = lg_cuda_convert(c, dt, gpu.half_input, LG_CUDA_F32, in_%s, n * %zu, err)) != LG_OK)\n"
               "            return st;\n        in_%s = gpu.half_input;\n    }\n",
            p->inputs[k].name, per, p->inputs[k].name);
    }
    for (int i = 0; i < g->nvalues; i++) {
        IrValue *v = g->values[i];
        if (v->storage != IR_ST_ARENA || v->first < 0 || !v->cname || !mentions(body, v->cname))
            continue;
        const char *t = v->dtype == IR_I32 ? "int32_t" : "float";
        if (v->batched)
            out(E, "    %s *%s = %s(act + %zu * Bp);\n", t, v->cname, v->dtype == IR_I32 ? "(int32_t *)" : "",
                v->offset);
        else
            out(E, "    %s *%s = %s(fixed + %zu);\n", t, v->cname, v->dtype == IR_I32 ? "(int32_t *)" : "",
                v->offset);
    }
    if (!need_act && !mentions(body, "Bp") && !p->ninputs)
        out(E, "    (void)Bp;\n");
    out(E, "\n");
    fwrite(body, 1, nbody, E->f);
    free(body);
    out(E, "\n    /* results back to the host: the logged scalars (the weights, gradients and\n"
           "     * running statistics stay here) */\n");
    out(E, "    if ((st = lg_cuda_upload_release(c, slot, err)) != LG_OK) return st;\n");
    /* only the span of the fixed region that holds them (it also holds
     * larger unbatched values, faster_rcnn's anchors) */
    size_t lo = (size_t)-1, hi = 0;
    for (int i = -1; i < g->nlogs; i++) {
        IrValue *r = i < 0 ? (g->loss ? plan_root(g->loss) : NULL) : plan_root(g->logs[i].value);
        if (r && r->storage == IR_ST_ARENA && !r->batched) {
            lo = r->offset < lo ? r->offset : lo;
            hi = r->offset + 1 > hi ? r->offset + 1 : hi;
        }
    }
    if (hi == 0)
        lo = 0, hi = 1;
    out(E, "    float host_fixed[%zu]; // fixed[%zu .. %zu)\n", hi - lo, lo, hi);
    out(E, "    if ((st = lg_cuda_download(c, host_fixed, fixed + %zu, sizeof host_fixed, err)) != LG_OK) return st;\n",
        lo);
    if (training)
        out(E, "    if ((st = %s_gpu_end_train(io)) != LG_OK) return st;\n", E->lower);
    if (g->loss)
        out(E, "    io->loss = host_fixed[%zu];\n", plan_root(g->loss)->offset - lo);
    for (int i = 0; i < g->nlogs; i++) {
        IrValue *r = plan_root(g->logs[i].value);
        if (r->storage == IR_ST_ARENA && !r->batched)
            out(E, "    io->logs[%d] = host_fixed[%zu]; // %s\n", i, r->offset - lo, g->logs[i].name);
        else
            errors++, fprintf(E->ctx->err, "%s:%d: error: the CUDA target logs only scalars ('%s')\n",
                              g->file ? g->file : "?", g->line, g->logs[i].name);
    }
    if (g->step == IR_STEP_PREDICT && g->output && g->output->def && g->output->def->kind == LG_OP_DETECTIONS) {
        emit_cuda_detections_output(X, g->output);
    } else if (g->step == IR_STEP_PREDICT && g->output) {
        need_cvt(X, g->output);
        out(E, "    if (dt != LG_CUDA_F32 && (st = lg_cuda_convert(c, LG_CUDA_F32, gpu.cvt_out, dt, %s, n * %zu, err)) != LG_OK)\n"
               "        return st;\n", dptr(E, g->output), numel(g->output));
        out(E, "    if ((st = lg_cuda_download(c, io->outputs, dt == LG_CUDA_F32 ? (void *)%s : gpu.cvt_out,\n"
               "                               n * %zu * sizeof(float), err)) != LG_OK)\n        return st;\n",
            dptr(E, g->output), numel(g->output));
    }
    /* batch norm's num_batches_tracked counts on the host, as it is a float of the block */
    if (training)
        for (int i = 0; i < g->nops; i++) {
            IrOp *op = g->ops[i];
            if (!op->dead && op->kind == LG_OP_BATCH_NORM && op->nin > 5)
                out(E, "    io->params[%zu] += 1.0f; // %s.num_batches_tracked (host block)\n",
                    E->p->params[plan_root(op->in[5])->param].offset, op->layer ? op->layer : "?");
        }
    out(E, "    return LG_OK;\n}\n\n");
    return errors;
}

/* ---- the file ---------------------------------------------------------------- */

static void emit_layout(CudaEmit *X, size_t fixed, size_t per_sample) {
    Emit *E = X->E;
    IrProgram *p = E->p;
    const char *m = E->prefix;
    out(E, "/* The parameters on the device: PyTorch's state_dict order as in %s.c's\n"
           " * block, but each tensor on a 256-byte boundary (64 floats), as cuBLASLt and\n"
           " * cuDNN's fast paths want. Offsets in floats; the gradients use the same. */\n", E->lower);
    out(E, "enum {\n");
    size_t dev = 0, dev_train = 0;
    size_t *devoff = calloc((size_t)p->nparams + 1, sizeof *devoff);
    for (int i = 0; i < p->nparams; i++) {
        dev = (dev + 63) / 64 * 64;
        devoff[i] = dev;
        out(E, "    %s = %zu, // %s (at %zu in the host block)\n", E->param_names[i], dev, p->params[i].name,
            p->params[i].offset);
        dev += p->params[i].numel;
        if (p->params[i].role == IR_TRAIN)
            dev_train = dev;
    }
    dev_train = (dev_train + 63) / 64 * 64;
    out(E, "    %s_N_FLOATS = %zu, // the host block: %zu floats, the first %zu trained\n", m,
        (dev + 63) / 64 * 64, p->param_floats, p->grad_floats);
    out(E, "    %s_N_TRAIN = %zu,\n", m, dev_train);
    out(E, "    %s_FIXED_FLOATS = %zu, // the steps' scalars (loss, logged values)\n", m, fixed ? fixed : 1);
    out(E, "    %s_ACT_FLOATS_PER_SAMPLE = %zu, // the plan's activations and gradients\n", m, per_sample);
    out(E, "    %s_CVT_FLOATS_PER_SAMPLE = %zu, // mixed precision: f32 copies for f32-only kernels\n", m,
        X->cvt ? X->cvt : 1);
    out(E, "    %s_HALF_INPUT_PER_SAMPLE = %zu, // mixed precision: the batch's image in f16/bf16\n};\n\n", m,
        X->half_input ? X->half_input : 1);
    out(E, "/* Each tensor's place in the host's block (the runtime's) and on the device.\n");
    out(E, " * Under mixed precision the layers' weights and gradients are f16/bf16\n"
           " * copies (half = 1); batch norm keeps f32 ones, as cuDNN wants. */\n");
    out(E, "static const struct {\n    size_t host, dev, numel;\n    int trained, half;\n} %s_tensors[] = {\n", E->lower);
    for (int i = 0; i < p->nparams; i++)
        out(E, "    {%zu, %s, %zu, %d, %d}, // %s\n", p->params[i].offset, E->param_names[i], p->params[i].numel,
            p->params[i].role == IR_TRAIN, p->params[i].owner != LG_OP_BATCH_NORM, p->params[i].name);
    out(E, "};\n\n");
    free(devoff);
    out(E, "/* The device arena, planned here (bytes, every region 256-byte aligned); Bp is\n"
           " * the batch size rounded up (see the init function). */\n");
    out(E, "#define %s_ALIGN(x) (((x) + 255) / 256 * 256)\n", m);
    out(E, "#define %s_PARAMS_OFFSET 0\n", m);
    out(E, "#define %s_GRADS_OFFSET %s_ALIGN(%s_N_FLOATS * sizeof(float))\n", m, m, m);
    out(E, "/* the optimizer's state: up to three slots shaped like the gradients\n"
           " * (momentum_buffer; exp_avg, exp_avg_sq, max_exp_avg_sq; square_avg, ...),\n"
           " * reserved for any optimizer as the hparams choose it at run time */\n");
    out(E, "#define %s_OPTIM_OFFSET(s) (%s_GRADS_OFFSET + (1 + (size_t)(s)) * %s_ALIGN(%s_N_TRAIN * sizeof(float)))\n", m,
        m, m, m);
    out(E, "#define %s_FIXED_OFFSET %s_OPTIM_OFFSET(3)\n", m, m);
    out(E, "#define %s_ONE_OFFSET (%s_FIXED_OFFSET + %s_ALIGN(%s_FIXED_FLOATS * sizeof(float)))\n", m, m, m, m);
    /* a batch: each field at an aligned offset */
    out(E, "/* one batch as the loader fills it: ");
    for (int k = 0; k < p->ninputs; k++)
        out(E, "%s%s", k ? ", " : "", p->inputs[k].name);
    out(E, " */\n");
    const char *prev = "0";
    for (int k = 0; k < p->ninputs; k++) {
        if (!strcmp(p->inputs[k].name, "targets")) {
            /* the ground truth: lg_batch's padded fields, M boxes per image */
            const char *t = ir_fmt(p, "%s_BATCH_targets", m);
            int M = p->inputs[k].dim[0];
            out(E, "/* b.targets: boxes [Bp, %d, 4] f32, labels [Bp, %d] i32, difficult [Bp, %d] u8, count [Bp] i32 */\n",
                M, M, M);
            out(E, "#define %s_OFFSET(Bp) (%s)\n", t, prev);
            out(E, "#define %s_BOXES(Bp) %s_OFFSET(Bp)\n", t, t);
            out(E, "#define %s_LABELS(Bp) (%s_BOXES(Bp) + %s_ALIGN((Bp) * %d * 4 * sizeof(float)))\n", t, t, m, M);
            out(E, "#define %s_DIFFICULT(Bp) (%s_LABELS(Bp) + %s_ALIGN((Bp) * %d * sizeof(int32_t)))\n", t, t, m, M);
            out(E, "#define %s_COUNT(Bp) (%s_DIFFICULT(Bp) + %s_ALIGN((Bp) * %d))\n", t, t, m, M);
            out(E, "#define %s_BYTES(Bp) (%s_COUNT(Bp) + (Bp) * sizeof(int32_t) - %s_OFFSET(Bp))\n", t, t, t);
            prev = ir_fmt(p, "%s_ALIGN(%s_OFFSET(Bp) + %s_BYTES(Bp))", m, t, t);
            continue;
        }
        size_t per = 1;
        for (int d = 0; d < p->inputs[k].ndim; d++)
            per *= (size_t)p->inputs[k].dim[d];
        out(E, "#define %s_BATCH_%s_OFFSET(Bp) (%s)\n", m, p->inputs[k].name, prev);
        out(E, "#define %s_BATCH_%s_BYTES(Bp) ((Bp) * %zu * sizeof(%s))\n", m, p->inputs[k].name, per,
            p->inputs[k].dtype == IR_I32 ? "int32_t" : "float");
        prev = ir_fmt(p, "%s_ALIGN(%s_BATCH_%s_OFFSET(Bp) + %s_BATCH_%s_BYTES(Bp))", m, m, p->inputs[k].name, m,
                      p->inputs[k].name);
    }
    out(E, "#define %s_BATCH_BYTES(Bp) (%s)\n", m, prev);
    out(E, "#define %s_BATCH_OFFSET(slot, Bp) (%s_ONE_OFFSET + 256 + (size_t)(slot) * %s_BATCH_BYTES(Bp))\n", m, m,
        m);
    out(E, "#define %s_ACT_OFFSET(Bp) %s_BATCH_OFFSET(2, Bp)\n", m, m);
    out(E, "#define %s_CE_WS_OFFSET(Bp) (%s_ACT_OFFSET(Bp) + %s_ALIGN((Bp) * %s_ACT_FLOATS_PER_SAMPLE * sizeof(float)))\n",
        m, m, m, m);
    out(E, "#define %s_METRIC_WS_OFFSET(Bp, ce_ws) (%s_CE_WS_OFFSET(Bp) + %s_ALIGN(ce_ws))\n", m, m, m);
    out(E, "/* mixed precision (unused under 32-true): the f16/bf16 copies of the parameters\n"
           " * and their gradients, the loss scaler and its found-inf flag, the batch's\n"
           " * image, and two f32 buffers around the f32-only kernels */\n");
    out(E, "#define %s_HALF_PARAMS_OFFSET(Bp, ce_ws) (%s_METRIC_WS_OFFSET(Bp, ce_ws) + %s_ALIGN((Bp) * sizeof(float)))\n",
        m, m, m);
    out(E, "#define %s_HALF_GRADS_OFFSET(Bp, ce_ws) (%s_HALF_PARAMS_OFFSET(Bp, ce_ws) + %s_ALIGN(%s_N_FLOATS * 2))\n",
        m, m, m, m);
    out(E, "#define %s_SCALER_OFFSET(Bp, ce_ws) (%s_HALF_GRADS_OFFSET(Bp, ce_ws) + %s_ALIGN(%s_N_TRAIN * 2))\n", m, m,
        m, m);
    out(E, "#define %s_HALF_INPUT_OFFSET(Bp, ce_ws) (%s_SCALER_OFFSET(Bp, ce_ws) + 256)\n", m, m);
    out(E, "#define %s_CVT_IN_OFFSET(Bp, ce_ws) (%s_HALF_INPUT_OFFSET(Bp, ce_ws) + %s_ALIGN((Bp) * %s_HALF_INPUT_PER_SAMPLE * 2))\n",
        m, m, m, m);
    out(E, "#define %s_CVT_OUT_OFFSET(Bp, ce_ws) (%s_CVT_IN_OFFSET(Bp, ce_ws) + %s_ALIGN((Bp) * %s_CVT_FLOATS_PER_SAMPLE * sizeof(float)))\n",
        m, m, m, m);
    if (X->ndet_ws) {
        out(E, "/* the detection ops' scratch space (det_ws bytes, sized at init) */\n");
        out(E, "#define %s_DET_WS_OFFSET(Bp, ce_ws) (%s_CVT_OUT_OFFSET(Bp, ce_ws) + %s_ALIGN((Bp) * %s_CVT_FLOATS_PER_SAMPLE * sizeof(float)))\n",
            m, m, m, m);
        out(E, "#define %s_ARENA_BYTES(Bp, ce_ws, det_ws) (%s_DET_WS_OFFSET(Bp, ce_ws) + %s_ALIGN(det_ws))\n\n", m, m, m);
    } else {
        out(E, "#define %s_ARENA_BYTES(Bp, ce_ws) (%s_CVT_OUT_OFFSET(Bp, ce_ws) + %s_ALIGN((Bp) * %s_CVT_FLOATS_PER_SAMPLE * sizeof(float)))\n\n",
            m, m, m, m);
    }
}

static void emit_state(CudaEmit *X) {
    Emit *E = X->E;
    out(E, "/* The device state: one context (streams, handles, the arena), the arena's\n"
           " * regions, and a plan per layer. File scope: a trainer process trains one\n"
           " * model on one device. */\n");
    out(E, "static struct {\n");
    out(E, "    lg_cuda *c;\n");
    out(E, "    size_t B, Bp;                 // batch_size, and rounded up for alignment\n");
    out(E, "    size_t n;                     // the batch size the plans are made for\n");
    out(E, "    float *params, *grads, *fixed, *act, *one;\n");
    out(E, "    char *batch[2];               // one per pinned staging slot\n");
    out(E, "    void *ce_ws, *metric_ws;\n");
    out(E, "    float *host_params;           // the device layout on the host side (transfers)\n");
    out(E, "    float *slot[3];               // the optimizer's state slots (lgen/cuda_optim.h)\n");
    out(E, "    float *norm;                  // clip_grad_norm's total norm\n");
    out(E, "    int half_stale;               // mixed precision: the f16/bf16 weights need converting\n");
    out(E, "    lg_model_def def;             // the model def with the GPU steps\n");
    out(E, "    lg_cuda_dtype dt;             // the compute dtype: f32, f16 (16-mixed), bf16 (bf16-mixed)\n");
    out(E, "    int scaling;                  // 16-mixed: dynamic loss scaling\n");
    out(E, "    void *half_params, *half_grads, *half_input;\n");
    out(E, "    float *cvt_in, *cvt_out;\n");
    out(E, "    lg_cuda_scaler *scaler;       // GradScaler's state, on the device\n");
    out(E, "    int *found_inf;\n");
    if (X->ndet_ws)
        out(E, "    void *det_ws;                 // the detection ops' scratch space\n");
    for (int i = 0; i < X->nplans; i++) {
        Plan *pl = &X->plans[i];
        const char *t = pl->kind == 'L' ? "lg_cuda_linear_plan *" : pl->kind == 'C' ? "lg_cuda_conv_plan *"
                      : pl->kind == 'N' ? "lg_cuda_bn_plan *" : pl->kind == 'Q' ? "lg_cuda_pool_plan *"
                      : "lg_cuda_pool2d ";
        out(E, "    %s%s; // %s:%d\n", t, pl->field, pl->file ? pl->file : "?", pl->line);
    }
    out(E, "} gpu;\n\n");
    if (X->uses_weight) {
        out(E, "/* A layer's weight or bias (or their gradients) in the compute dtype: the f32\n"
               " * block, or under mixed precision its f16/bf16 copy (2-byte elements at the\n"
               " * same offsets). */\n");
        out(E, "static void *weight(size_t off) {\n"
               "    return gpu.dt == LG_CUDA_F32 ? (void *)(gpu.params + off) : (void *)((uint16_t *)gpu.half_params + off);\n}\n\n");
        out(E, "static void *weight_grad(size_t off) {\n"
               "    return gpu.dt == LG_CUDA_F32 ? (void *)(gpu.grads + off) : (void *)((uint16_t *)gpu.half_grads + off);\n}\n\n");
    }
}

/* The lg_cuda_TYPE_init / _free / lg_cuda_TYPE of a library plan. */
static const char *plan_type(char kind) {
    return kind == 'L' ? "linear" : kind == 'C' ? "conv" : kind == 'Q' ? "pool" : "bn";
}

static void emit_plans(CudaEmit *X) {
    Emit *E = X->E;
    out(E, "/* The layer plans for batches of n samples (cuBLASLt heuristics, cuDNN\n"
           " * algorithms and workspace): at start-up, and again when a batch of\n"
           " * another size arrives (the last one of an epoch). */\n");
    out(E, "static void %s_plans_free(void) {\n", E->lower);
    for (int i = 0; i < X->nplans; i++) {
        Plan *pl = &X->plans[i];
        if (pl->kind == 'P')
            continue;
        out(E, "    lg_cuda_%s_free(gpu.%s);\n    gpu.%s = NULL;\n",
            plan_type(pl->kind), pl->field, pl->field);
    }
    out(E, "}\n\n");
    out(E, "static lg_status %s_plans(size_t n, lg_error *err) {\n", E->lower);
    out(E, "    lg_status st = LG_OK;\n");
    out(E, "    %s_plans_free();\n", E->lower);
    for (int i = 0; i < X->nplans; i++) {
        Plan *pl = &X->plans[i];
        if (pl->kind == 'P')
            continue;
        const char *t = plan_type(pl->kind);
        out(E, "    { // %s:%d\n        const lg_cuda_%s d = %s;\n", pl->file ? pl->file : "?", pl->line, t, pl->body);
        out(E, "        if ((st = lg_cuda_%s_init(gpu.c, &gpu.%s, &d, err)) != LG_OK) return st;\n    }\n", t,
            pl->field);
    }
    out(E, "    gpu.n = n;\n    return st;\n}\n\n");
}

/* Prints a block of generated code in which @l stands for the model's
 * lower-case name and @M for its upper-case prefix. */
static void tmpl(Emit *E, const char *t) {
    for (; *t; t++) {
        if (t[0] == '@' && t[1] == 'l')
            fputs(E->lower, E->f), t++;
        else if (t[0] == '@' && t[1] == 'M')
            fputs(E->prefix, E->f), t++;
        else
            fputc(*t, E->f);
    }
}

static void emit_begin_end(Emit *E) {
    const char *m = E->prefix;
    IrProgram *p = E->p;
    out(E, "/* Before a step's launches: plans for this batch's size, under mixed\n"
           " * precision the f16/bf16 weights (after an update) and zeroed f16/bf16\n"
           " * gradients, and the batch: into the pinned slot, then to the device on\n"
           " * the copy stream, which the compute stream waits for. The f32 weights and\n"
           " * gradients stay in the arena (the gradients are zeroed after each\n"
           " * optimizer step, so micro-batches accumulate). */\n");
    out(E, "static lg_status %s_gpu_begin(lg_step_io *io, const lg_batch *b, int slot, int training) {\n", E->lower);
    out(E, "    lg_error *err = io->ctx->err;\n    lg_status st;\n");
    out(E, "    const size_t n = (size_t)b->n;\n");
    out(E, "    if (n != gpu.n && (st = %s_plans(n, err)) != LG_OK)\n        return st;\n", E->lower);
    out(E, "    if (gpu.dt != LG_CUDA_F32) { // mixed precision: the f16/bf16 copy of the weights\n");
    out(E, "        if (gpu.half_stale &&\n"
           "            (st = lg_cuda_convert(gpu.c, gpu.dt, gpu.half_params, LG_CUDA_F32, gpu.params, %s_N_FLOATS, err)) != LG_OK)\n"
           "            return st;\n", m);
    out(E, "        gpu.half_stale = 0;\n");
    out(E, "        if (training && (st = lg_cuda_memset(gpu.c, gpu.half_grads, 0, %s_N_TRAIN * 2, err)) != LG_OK)\n"
           "            return st;\n    }\n", m);
    out(E, "    if ((st = lg_cuda_staging_wait(gpu.c, slot, err)) != LG_OK)\n        return st;\n");
    out(E, "    char *pinned = lg_cuda_staging(gpu.c, slot);\n");
    for (int k = 0; k < p->ninputs; k++) {
        const char *nm = p->inputs[k].name;
        const char *fld = !strcmp(nm, "image") || !strcmp(nm, "label") ? nm : NULL;
        if (!strcmp(nm, "targets")) {
            const char *t = ir_fmt(p, "%s_BATCH_targets", m);
            int M = p->inputs[k].dim[0];
            out(E, "    /* b.targets: the loader's padded ground truth, %d boxes per image */\n", M);
            out(E, "    if (b->boxes && b->max_boxes != %d)\n"
                   "        return lg_error_set(err, LG_ERR_ARG, \"the batch has room for %%d boxes per image; this \"\n"
                   "                            \"trainer was generated for %d (the data set's max_boxes)\", b->max_boxes);\n", M, M);
            out(E, "    if (b->boxes) {\n");
            out(E, "        memcpy(pinned + %s_BOXES(gpu.Bp), b->boxes, n * %d * 4 * sizeof(float));\n", t, M);
            out(E, "        memcpy(pinned + %s_LABELS(gpu.Bp), b->box_label, n * %d * sizeof(int32_t));\n", t, M);
            out(E, "        if (b->box_difficult)\n"
                   "            memcpy(pinned + %s_DIFFICULT(gpu.Bp), b->box_difficult, n * %d);\n"
                   "        else\n"
                   "            memset(pinned + %s_DIFFICULT(gpu.Bp), 0, n * %d);\n", t, M, t, M);
            out(E, "        memcpy(pinned + %s_COUNT(gpu.Bp), b->box_count, n * sizeof(int32_t));\n", t);
            out(E, "    } else { // no ground truth in this batch (predict data): no boxes\n");
            out(E, "        memset(pinned + %s_COUNT(gpu.Bp), 0, n * sizeof(int32_t));\n    }\n", t);
            continue;
        }
        if (!fld) {
            fprintf(E->ctx->err, "lgen: error: the CUDA target reads only image, label and targets batches, not '%s'\n", nm);
            E->ctx->nerrors++;
            continue;
        }
        out(E, "    memcpy(pinned + %s_BATCH_%s_OFFSET(gpu.Bp), b->%s, %s_BATCH_%s_BYTES(n));\n", m, nm, fld, m, nm);
    }
    out(E, "    if ((st = lg_cuda_upload_async(gpu.c, slot, gpu.batch[slot], %s_BATCH_BYTES(gpu.Bp), err)) != LG_OK)\n"
           "        return st;\n", m);
    out(E, "    return lg_cuda_upload_wait(gpu.c, slot, err);\n}\n\n");

    static const char *const resident =
        "/* After a training step (one micro-batch). Under mixed precision its\n"
        " * f16/bf16 gradients are added into the f32 ones, in one pass over the\n"
        " * whole block (batch norm's gradients are f32 already: their f16/bf16\n"
        " * places hold zeros); they stay multiplied by the loss scale until the\n"
        " * optimizer step unscales them, as GradScaler does. Nothing comes back to\n"
        " * the host. */\n"
        "static lg_status @l_gpu_end_train(lg_step_io *io) {\n"
        "    if (gpu.dt == LG_CUDA_F32)\n"
        "        return LG_OK;\n"
        "    return lg_cuda_grad_accumulate(gpu.c, gpu.dt, gpu.half_grads, gpu.grads, @M_N_TRAIN, io->ctx->err);\n"
        "}\n"
        "\n"
        "/* ---- the optimizer on the device (lgen/cuda_optim.h) ----------------------\n"
        " * The trainer runtime calls these instead of its own optimizer: the arena\n"
        " * holds the weights, the gradients and the state; the host's copies are\n"
        " * brought up to date only when it asks (a checkpoint, the end of fit) and\n"
        " * sent here when it set them (initial weights, a checkpoint load). */\n"
        "\n"
        "/* The host's block (and optimizer state, o may be NULL) to the device\n"
        " * layout; zeroed gradients; state slots the optimizer lacks are zeroed. */\n"
        "static lg_status @l_gpu_to_device(const float *params, const lg_optim *o, lg_error *err) {\n"
        "    lg_status st;\n"
        "    memset(gpu.host_params, 0, @M_N_FLOATS * sizeof(float)); // the gaps stay zero\n"
        "    for (size_t k = 0; k < sizeof @l_tensors / sizeof *@l_tensors; k++)\n"
        "        memcpy(gpu.host_params + @l_tensors[k].dev, params + @l_tensors[k].host,\n"
        "               @l_tensors[k].numel * sizeof(float));\n"
        "    if ((st = lg_cuda_upload(gpu.c, gpu.params, gpu.host_params, @M_N_FLOATS * sizeof(float), err)) != LG_OK)\n"
        "        return st;\n"
        "    for (int s = 0; s < 3; s++) {\n"
        "        if (!o || s >= o->nslots) {\n"
        "            if ((st = lg_cuda_memset(gpu.c, gpu.slot[s], 0, @M_N_TRAIN * sizeof(float), err)) != LG_OK)\n"
        "                return st;\n"
        "            continue;\n"
        "        }\n"
        "        memset(gpu.host_params, 0, @M_N_TRAIN * sizeof(float));\n"
        "        for (size_t k = 0; k < sizeof @l_tensors / sizeof *@l_tensors; k++)\n"
        "            if (@l_tensors[k].trained)\n"
        "                memcpy(gpu.host_params + @l_tensors[k].dev, o->slot[s] + @l_tensors[k].host,\n"
        "                       @l_tensors[k].numel * sizeof(float));\n"
        "        if ((st = lg_cuda_upload(gpu.c, gpu.slot[s], gpu.host_params, @M_N_TRAIN * sizeof(float), err)) != LG_OK)\n"
        "            return st;\n"
        "    }\n"
        "    gpu.half_stale = 1;\n"
        "    return lg_cuda_memset(gpu.c, gpu.grads, 0, @M_N_TRAIN * sizeof(float), err);\n"
        "}\n"
        "\n"
        "/* The device's weights, buffers and optimizer state into the host's block\n"
        " * (batch norm's num_batches_tracked counts on the host: it is kept). */\n"
        "static lg_status @l_gpu_to_host(float *params, lg_optim *o, lg_error *err) {\n"
        "    lg_status st = lg_cuda_download(gpu.c, gpu.host_params, gpu.params, @M_N_FLOATS * sizeof(float), err);\n"
        "    if (st)\n"
        "        return st;\n"
        "    for (size_t k = 0; k < sizeof @l_tensors / sizeof *@l_tensors; k++)\n"
        "        if (!gpu.def.params[k].is_int64)\n"
        "            memcpy(params + @l_tensors[k].host, gpu.host_params + @l_tensors[k].dev,\n"
        "                   @l_tensors[k].numel * sizeof(float));\n"
        "    for (int s = 0; o && s < o->nslots && s < 3; s++) {\n"
        "        if ((st = lg_cuda_download(gpu.c, gpu.host_params, gpu.slot[s], @M_N_TRAIN * sizeof(float), err)) != LG_OK)\n"
        "            return st;\n"
        "        for (size_t k = 0; k < sizeof @l_tensors / sizeof *@l_tensors; k++)\n"
        "            if (@l_tensors[k].trained)\n"
        "                memcpy(o->slot[s] + @l_tensors[k].host, gpu.host_params + @l_tensors[k].dev,\n"
        "                       @l_tensors[k].numel * sizeof(float));\n"
        "    }\n"
        "    return LG_OK;\n"
        "}\n"
        "\n"
        "/* One optimizer step, Lightning's order: GradScaler.unscale_ (16-mixed: an\n"
        " * inf or NaN skips the step), the 1/accumulate_grad_batches scaling,\n"
        " * clipping, then one fused update per run of tensors in one parameter group\n"
        " * with the lr the host's scheduler wrote; GradScaler.update; the gradients\n"
        " * zeroed for the next micro-batches. One 4-byte read-back (the found-inf\n"
        " * flag) under 16-mixed, none otherwise. */\n"
        "static lg_status @l_gpu_optimizer_step(lg_optim *o, float grad_scale, int clip, double clip_val, int skip,\n"
        "                                       int *skipped, lg_error *err) {\n"
        "    lg_cuda *c = gpu.c;\n"
        "    lg_status st;\n"
        "    int found = skip;\n"
        "    if (gpu.scaling) {\n"
        "        int found_inf = 0;\n"
        "        if ((st = lg_cuda_unscale(c, gpu.scaler, LG_CUDA_F32, gpu.grads, gpu.grads, @M_N_TRAIN, gpu.found_inf,\n"
        "                                  err)) != LG_OK ||\n"
        "            (st = lg_cuda_download(c, &found_inf, gpu.found_inf, sizeof found_inf, err)) != LG_OK)\n"
        "            return st;\n"
        "        found |= found_inf;\n"
        "    }\n"
        "    if (!found) {\n"
        "        if (grad_scale != 1.0f &&\n"
        "            (st = lg_cuda_scale(c, LG_CUDA_F32, grad_scale, gpu.grads, gpu.grads, @M_N_TRAIN, err)) != LG_OK)\n"
        "            return st;\n"
        "        if (clip == LG_CUDA_CLIP_NORM)\n"
        "            st = lg_cuda_clip_grad_norm(c, gpu.grads, @M_N_TRAIN, clip_val, gpu.norm, err);\n"
        "        else if (clip == LG_CUDA_CLIP_VALUE)\n"
        "            st = lg_cuda_clip_grad_value(c, gpu.grads, @M_N_TRAIN, (float)clip_val, err);\n"
        "        if (st)\n"
        "            return st;\n"
        "        o->step++;\n"
        "        const size_t nt = sizeof @l_tensors / sizeof *@l_tensors;\n"
        "        for (size_t k = 0, j; k < nt; k = j) {\n"
        "            j = k + 1;\n"
        "            if (!@l_tensors[k].trained)\n"
        "                continue;\n"
        "            /* the following tensors of the same group: one launch (the gaps\n"
        "             * between them are zeros and stay zero) */\n"
        "            int g = gpu.def.params[k].group;\n"
        "            size_t b = @l_tensors[k].dev, e = b + @l_tensors[k].numel;\n"
        "            for (; j < nt && @l_tensors[j].trained && gpu.def.params[j].group == g; j++)\n"
        "                e = @l_tensors[j].dev + @l_tensors[j].numel;\n"
        "            lg_cuda_optim_hyper h;\n"
        "            lg_cuda_optim_hyper_for(o, g, &h);\n"
        "            float *const slot[3] = {o->nslots > 0 ? gpu.slot[0] + b : NULL, o->nslots > 1 ? gpu.slot[1] + b : NULL,\n"
        "                                    o->nslots > 2 ? gpu.slot[2] + b : NULL};\n"
        "            if ((st = lg_cuda_optim_update(c, &h, gpu.params + b, gpu.grads + b, slot, e - b, err)) != LG_OK)\n"
        "                return st;\n"
        "        }\n"
        "        gpu.half_stale = 1;\n"
        "    }\n"
        "    /* 16-mixed: the scale halves after an overflow and doubles after 2000\n"
        "     * clean steps; the flag is cleared */\n"
        "    if (gpu.scaling && (st = lg_cuda_scaler_update(c, gpu.scaler, gpu.found_inf, err)) != LG_OK)\n"
        "        return st;\n"
        "    *skipped = found;\n"
        "    return lg_cuda_memset(c, gpu.grads, 0, @M_N_TRAIN * sizeof(float), err);\n"
        "}\n"
        "\n"
        "/* GradScaler's state for checkpoints (16-mixed only). */\n"
        "static lg_status @l_gpu_scaler_get(lg_cuda_scaler *s, int *active, lg_error *err) {\n"
        "    *active = gpu.scaling;\n"
        "    return lg_cuda_download(gpu.c, s, gpu.scaler, sizeof *s, err);\n"
        "}\n"
        "\n"
        "static lg_status @l_gpu_scaler_set(const lg_cuda_scaler *s, lg_error *err) {\n"
        "    return lg_cuda_upload(gpu.c, gpu.scaler, s, sizeof *s, err);\n"
        "}\n"
        "\n";
    tmpl(E, resident);
}

static void emit_init(CudaEmit *X, const char *const *gpu_fn) {
    Emit *E = X->E;
    const char *m = E->prefix, *l = E->lower;
    static const char *slot[IR_STEP_COUNT] = {"train_step", "eval_step[LG_STAGE_VALIDATE]",
                                              "eval_step[LG_STAGE_TEST]", "predict_step"};
    out(E, "static void %s_gpu_free(void) {\n", l);
    out(E, "    %s_plans_free();\n    lg_cuda_free(gpu.c);\n    free(gpu.host_params);\n", l);
    out(E, "    memset(&gpu, 0, sizeof gpu);\n}\n\n");
    out(E, "/* Start-up on GPU `device`: the context with the one arena, the plans, and\n"
           " * the model def whose steps run here. */\n");
    out(E, "static lg_status %s_gpu_init(int device, const char *precision, int batch_size,\n"
           "                               const lg_model_def *cpu, const lg_model_def **out, lg_error *err) {\n", l);
    out(E, "    lg_cuda_dtype dt = LG_CUDA_F32;\n");
    out(E, "    if (strcmp(precision, \"16-mixed\") == 0)\n        dt = LG_CUDA_F16;\n");
    out(E, "    else if (strcmp(precision, \"bf16-mixed\") == 0)\n        dt = LG_CUDA_BF16;\n");
    out(E, "    else if (strcmp(precision, \"32-true\") != 0)\n");
    out(E, "        return lg_error_set(err, LG_ERR_UNSUPPORTED, \"precision '%%s' is not built for the GPU \"\n"
           "                            \"(32-true, 16-mixed and bf16-mixed are)\", precision);\n");
    if (X->no_mixed)
        out(E, "    if (dt != LG_CUDA_F32) // %s has a float32 kernel only\n"
               "        return lg_error_set(err, LG_ERR_UNSUPPORTED, \"precision '%%s': this model's '%s' has no \"\n"
               "                            \"f16/bf16 path on the GPU yet (use 32-true)\", precision);\n",
            X->no_mixed, X->no_mixed);
    out(E, "    %s_gpu_free();\n", l);
    out(E, "    gpu.dt = dt;\n    gpu.scaling = dt == LG_CUDA_F16;\n");
    out(E, "    gpu.B = (size_t)batch_size;\n");
    out(E, "    gpu.Bp = (gpu.B + %zu) / %zu * %zu; // every plan offset times Bp: a multiple of 64 floats\n",
        X->round - 1, X->round, X->round);
    out(E, "    /* the cross entropy's workspace (kept from forward to backward) */\n");
    out(E, "    size_t ce_ws = 0;\n");
    /* the largest cross entropy workspace of the program */
    int seen[16], nseen = 0;
    for (int s = 0; s < IR_STEP_COUNT; s++) {
        IrGraph *g = &E->p->graphs[s];
        for (int i = 0; g->present && i < g->nops; i++)
            if (g->ops[i]->kind == LG_OP_CROSS_ENTROPY && !g->ops[i]->dead) {
                IrValue *x = g->ops[i]->in[0];
                int classes = x->dim[x->ndim - 1], dup = 0;
                for (int k = 0; k < nseen; k++)
                    dup |= seen[k] == classes;
                if (dup)
                    continue;
                if (nseen < 16)
                    seen[nseen++] = classes;
                out(E, "    {\n        const lg_cuda_ce d = {.N = (int)gpu.Bp, .C = %d};\n", classes);
                out(E, "        if (lg_cuda_cross_entropy_workspace(&d) > ce_ws)\n"
                       "            ce_ws = lg_cuda_cross_entropy_workspace(&d);\n    }\n");
            }
    }
    if (X->ndet_ws) {
        out(E, "    /* the detection ops' scratch space: the largest of their workspaces */\n");
        out(E, "    size_t det_ws = 0;\n    {\n        const size_t Bp = gpu.Bp;\n");
        for (int i = 0; i < X->ndet_ws; i++)
            out(E, "        if (%s > det_ws)\n            det_ws = %s;\n", X->det_ws[i], X->det_ws[i]);
        out(E, "    }\n");
        out(E, "    const lg_cuda_config cfg = {.device = device, .arena_bytes = %s_ARENA_BYTES(gpu.Bp, ce_ws, det_ws),\n"
               "                                .staging_bytes = %s_BATCH_BYTES(gpu.Bp), .staging_slots = 2};\n", m, m);
    } else {
        out(E, "    const lg_cuda_config cfg = {.device = device, .arena_bytes = %s_ARENA_BYTES(gpu.Bp, ce_ws),\n"
               "                                .staging_bytes = %s_BATCH_BYTES(gpu.Bp), .staging_slots = 2};\n", m, m);
    }
    out(E, "    lg_status st = lg_cuda_init(&gpu.c, &cfg, err);\n");
    out(E, "    if (st) return st;\n");
    out(E, "    gpu.params = lg_cuda_arena(gpu.c, %s_PARAMS_OFFSET);\n", m);
    out(E, "    gpu.grads = lg_cuda_arena(gpu.c, %s_GRADS_OFFSET);\n", m);
    out(E, "    gpu.fixed = lg_cuda_arena(gpu.c, %s_FIXED_OFFSET);\n", m);
    out(E, "    gpu.one = lg_cuda_arena(gpu.c, %s_ONE_OFFSET);\n", m);
    out(E, "    gpu.batch[0] = lg_cuda_arena(gpu.c, %s_BATCH_OFFSET(0, gpu.Bp));\n", m);
    out(E, "    gpu.batch[1] = lg_cuda_arena(gpu.c, %s_BATCH_OFFSET(1, gpu.Bp));\n", m);
    out(E, "    gpu.act = lg_cuda_arena(gpu.c, %s_ACT_OFFSET(gpu.Bp));\n", m);
    out(E, "    gpu.ce_ws = lg_cuda_arena(gpu.c, %s_CE_WS_OFFSET(gpu.Bp));\n", m);
    out(E, "    gpu.metric_ws = lg_cuda_arena(gpu.c, %s_METRIC_WS_OFFSET(gpu.Bp, ce_ws));\n", m);
    out(E, "    gpu.half_params = lg_cuda_arena(gpu.c, %s_HALF_PARAMS_OFFSET(gpu.Bp, ce_ws));\n", m);
    out(E, "    gpu.half_grads = lg_cuda_arena(gpu.c, %s_HALF_GRADS_OFFSET(gpu.Bp, ce_ws));\n", m);
    out(E, "    gpu.scaler = lg_cuda_arena(gpu.c, %s_SCALER_OFFSET(gpu.Bp, ce_ws));\n", m);
    out(E, "    gpu.found_inf = (int *)((char *)gpu.scaler + 128);\n");
    out(E, "    gpu.half_input = lg_cuda_arena(gpu.c, %s_HALF_INPUT_OFFSET(gpu.Bp, ce_ws));\n", m);
    out(E, "    gpu.cvt_in = lg_cuda_arena(gpu.c, %s_CVT_IN_OFFSET(gpu.Bp, ce_ws));\n", m);
    out(E, "    gpu.cvt_out = lg_cuda_arena(gpu.c, %s_CVT_OUT_OFFSET(gpu.Bp, ce_ws));\n", m);
    if (X->ndet_ws)
        out(E, "    gpu.det_ws = lg_cuda_arena(gpu.c, %s_DET_WS_OFFSET(gpu.Bp, ce_ws));\n", m);
    out(E, "    for (int s = 0; s < 3; s++)\n        gpu.slot[s] = lg_cuda_arena(gpu.c, %s_OPTIM_OFFSET(s));\n", m);
    out(E, "    gpu.norm = (float *)((char *)gpu.scaler + 192);\n");
    out(E, "    gpu.half_stale = 1;\n");
    out(E, "    gpu.host_params = calloc(%s_N_FLOATS + 1, sizeof(float));\n", m);
    out(E, "    if (!gpu.host_params)\n        return lg_error_set(err, LG_ERR_NOMEM, \"out of memory\");\n");
    out(E, "    static const float one = 1.0f;\n");
    out(E, "    if ((st = lg_cuda_upload(gpu.c, gpu.one, &one, sizeof one, err)) != LG_OK)\n        return st;\n");
    out(E, "    /* GradScaler's defaults under 16-mixed; a fixed scale of 1 under bf16-mixed */\n");
    out(E, "    const lg_cuda_scaler scaler = LG_CUDA_SCALER_INIT, unit = {1.0f, 0, 2.0f, 0.5f, 2000};\n");
    out(E, "    const int zero = 0;\n");
    out(E, "    if ((st = lg_cuda_upload(gpu.c, gpu.scaler, gpu.scaling ? &scaler : &unit, sizeof scaler, err)) != LG_OK ||\n"
           "        (st = lg_cuda_upload(gpu.c, gpu.found_inf, &zero, sizeof zero, err)) != LG_OK)\n        return st;\n");
    for (int i = 0; i < X->nplans; i++) {
        Plan *pl = &X->plans[i];
        if (pl->kind != 'P')
            continue;
        out(E, "    gpu.%s = (lg_cuda_pool2d)%s; // %s:%d\n", pl->field, pl->body, pl->file ? pl->file : "?", pl->line);
        out(E, "    if ((st = lg_cuda_pool2d_init(&gpu.%s, err)) != LG_OK)\n        return st;\n", pl->field);
    }
    out(E, "    if ((st = %s_plans(gpu.B, err)) != LG_OK)\n        return st;\n", l);
    out(E, "    gpu.def = *cpu;\n");
    for (int s = 0; s < IR_STEP_COUNT; s++)
        if (gpu_fn[s])
            out(E, "    gpu.def.%s = %s;\n", slot[s], gpu_fn[s]);
    out(E, "    *out = &gpu.def;\n    return LG_OK;\n}\n\n");
    out(E, "/* What runtime/trainer/loop.c looks for (a weak symbol in liblgen.a). */\n");
    out(E, "const lg_cuda_trainer lg_cuda_trainer_steps = {\n");
    out(E, "    .device_count = lg_cuda_device_count,\n    .init = %s_gpu_init,\n    .free = %s_gpu_free,\n};\n\n", l, l);
    out(E, "/* The same: the weights and the optimizer live on the device. */\n");
    out(E, "const lg_cuda_resident lg_cuda_resident_steps = {\n");
    out(E, "    .to_device = %s_gpu_to_device,\n    .to_host = %s_gpu_to_host,\n"
           "    .optimizer_step = %s_gpu_optimizer_step,\n    .scaler_get = %s_gpu_scaler_get,\n"
           "    .scaler_set = %s_gpu_scaler_set,\n};\n", l, l, l, l, l);
}

int emit_cuda_file(Emit *E) {
    IrProgram *p = E->p;
    CudaEmit X = {.E = E};
    static const char *fns[IR_STEP_COUNT] = {"train_step", "validation_step", "test_step", "predict_step"};
    size_t fixed = 0, per_sample = 0;
    for (int i = 0; i < IR_STEP_COUNT; i++) {
        if (!p->graphs[i].present)
            continue;
        if (p->graphs[i].arena_fixed > fixed)
            fixed = p->graphs[i].arena_fixed;
        if (p->graphs[i].arena_per_sample > per_sample)
            per_sample = p->graphs[i].arena_per_sample;
    }
    /* Bp: the plan's per-sample offsets times Bp must be multiples of 64
     * floats (256 bytes); with offsets that are multiples of 16, Bp = 4k */
    size_t g64 = 64;
    for (int i = 0; i < IR_STEP_COUNT; i++)
        for (int k = 0; p->graphs[i].present && k < p->graphs[i].nvalues; k++) {
            IrValue *v = p->graphs[i].values[k];
            if (v->storage == IR_ST_ARENA && v->batched && v->first >= 0)
                while (v->offset % g64)
                    g64 /= 2;
        }
    X.round = 64 / g64;
    /* steps first (they collect the plans) */
    char *steps = NULL;
    size_t nsteps = 0;
    FILE *f = E->f;
    E->f = open_memstream(&steps, &nsteps);
    const char *gpu_fn[IR_STEP_COUNT] = {0};
    int errors = 0;
    for (int i = 0; i < IR_STEP_COUNT; i++) {
        if (!p->graphs[i].present)
            continue;
        gpu_fn[i] = ir_fmt(p, "%s_gpu_%s", E->lower, fns[i]);
        errors += emit_step(&X, &p->graphs[i], gpu_fn[i], ir_fmt(p, "%s_%s", E->lower, fns[i]));
    }
    fclose(E->f);
    E->f = f;
    X.uses_weight = mentions(steps, "weight") || mentions(steps, "weight_grad");

    out(E, "/* %s_cuda.c — the %s trainer's steps on a GPU, generated by lgen %s from %s\n"
           " * (sha256 %s).\n *\n"
           " * Edit the spec, not this file: `lgen %s -o DIR --target cuda` writes it again.\n"
           " * `make CUDA=1` compiles it with %s.c and links liblgen_cuda.a, cuDNN and\n"
           " * cuBLAS; then `./%s fit --accelerator gpu` (or auto) runs these steps.\n *\n"
           " * Every op is the one of %s.c, with the spec line it comes from; values sit at\n"
           " * the same plan offsets in one device arena (B -> Bp, the batch size rounded\n"
           " * up to 4, keeps them 256-byte aligned). The parameters, their gradients\n"
           " * and the optimizer's state live there too: a step uploads the batch\n"
           " * (pinned slot, copy stream), runs forward and backward here and brings\n"
           " * back the logged values; the optimizer step runs here as well, and the\n"
           " * trainer runtime asks for the weights when it saves a checkpoint.\n */\n",
        E->lower, E->lower, LGEN_VERSION, E->mod->path, E->spec_hash, E->mod->path, E->lower, E->lower, E->lower);
    out(E, "#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    out(E, "#include <lgen/cuda.h>\n#include <lgen/cuda_optim.h>\n");
    if (mentions(steps, "lg_det_targets")) /* voc_map, predict's detections: runtime/detect on the host */
        out(E, "#include <lgen/detect.h>\n");
    out(E, "#include <lgen/kernels.h>\n#include <lgen/optim.h>\n#include <lgen/trainer.h>\n\n");
    emit_layout(&X, fixed, per_sample);
    emit_state(&X);
    emit_plans(&X);
    emit_begin_end(E);
    fwrite(steps, 1, nsteps, E->f);
    free(steps);
    emit_init(&X, gpu_fn);
    free(X.plans);
    return errors;
}
