/* emit_cuda_internal.h — what emit_cuda.c's op emitters share: the
 * CudaEmit state, the layer plans and the small printing helpers (device
 * pointers, counts, the spec-line comment, the f32 conversions of mixed
 * precision). emit_cuda.c prints the file and the dense ops;
 * emit_cuda_detect.c the detection ops (Faster R-CNN). */
#ifndef LGEN_EMIT_CUDA_INTERNAL_H
#define LGEN_EMIT_CUDA_INTERNAL_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "emit_cuda.h"
#include "plan.h"

/* ---- plans: one per layer (shared by the steps and by forward/backward) ---- */

typedef struct Plan {
    char kind;          /* 'L' linear, 'C' conv, 'N' batch norm, 'P' own pooling */
    const char *field;  /* member of the generated gpu struct */
    const char *body;   /* designated initialiser; "n" is the batch size */
    const char *file;
    int line;
} Plan;

typedef struct CudaEmit {
    Emit *E;
    Plan *plans;
    int nplans, capplans;
    size_t round;       /* Bp is the batch size rounded up to a multiple of this */
    size_t cvt;         /* floats per sample of the f32 conversion buffers (mixed precision) */
    size_t half_input;  /* floats per sample of the batch's float field */
    const char *no_mixed; /* an op with no f16/bf16 path: mixed precision is refused */
    int uses_weight;      /* the steps call weight() / weight_grad() */
    const char *det_ws[32]; /* detection ops' workspace sizes (bytes; C expressions of Bp) */
    int ndet_ws;
} CudaEmit;

/* The plan member (gpu.FIELD) of op's layer, made on first use (emit_cuda.c). */
const char *plan_for(CudaEmit *X, IrOp *op);

/* A detection op's workspace: expr (bytes, a C expression of Bp, the
 * arena's batch size) joins the largest of them, the arena's det_ws
 * region (gpu.det_ws, `det_ws` in a step), sized once at init. */
static inline void add_det_ws(CudaEmit *X, const char *expr) {
    for (int i = 0; i < X->ndet_ws; i++)
        if (!strcmp(X->det_ws[i], expr))
            return;
    if (X->ndet_ws < (int)(sizeof X->det_ws / sizeof *X->det_ws))
        X->det_ws[X->ndet_ws++] = expr;
}

/* The ground truth argument of a detection op (`b.targets`): the step's
 * lg_cuda_det_targets `tg`, the batch's boxes on the device. */
static inline const char *targets_arg(void) {
    return "&tg";
}

/* One detection op (emit_cuda_detect.c); returns 1 when there is no call for it. */
int emit_cuda_detect_op(CudaEmit *X, IrGraph *g, IrOp *op);
/* A predict step returning detections: the rows of the CPU trainer's
 * outputs (x1, y1, x2, y2, score, label) from the device (emit_cuda_detect.c). */
void emit_cuda_detections_output(CudaEmit *X, IrValue *out0);

static inline void out(Emit *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void out(Emit *E, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(E->f, fmt, ap);
    va_end(ap);
}

/* A float literal: 0.1f, 1e-05f, 1.0f. */
static inline const char *flit(Emit *E, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", v);
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    return ir_fmt(E->p, "%sf", buf);
}

/* ---- device pointers ------------------------------------------------------- */

static inline const char *dptr(Emit *E, IrValue *v) {
    if (!v)
        return "NULL";
    IrValue *r = plan_root(v);
    switch (r->storage) {
    case IR_ST_PARAM:
        return ir_fmt(E->p, "params + %s", E->param_names[r->param]);
    case IR_ST_GRAD:
        return ir_fmt(E->p, "grads + %s", E->param_names[r->param]);
    case IR_ST_INPUT:
        return ir_fmt(E->p, "in_%s", E->p->inputs[r->input].name);
    default:
        return r->cname;
    }
}

static inline size_t numel(const IrValue *v) {
    return ir_numel(v);
}

static inline const char *count(Emit *E, const IrValue *v) {
    return v->batched ? ir_fmt(E->p, "n * %zu", numel(v)) : ir_fmt(E->p, "%zu", numel(v));
}

static inline void where(Emit *E, IrOp *op, const char *what) {
    out(E, "    // %s", what);
    if (op->file)
        out(E, " (%s:%d)", op->file, op->line);
    if (op->nout && op->out[0]) {
        IrValue *y = op->out[0];
        out(E, " -> (%s", y->batched ? "B" : "");
        for (int i = 0; i < y->ndim; i++)
            out(E, "%s%d", i || y->batched ? ", " : "", y->dim[i]);
        out(E, ")");
    }
    out(E, "\n");
}

static inline int ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Whether text names the C identifier id (a whole word). */
static inline int mentions(const char *text, const char *id) {
    size_t n = strlen(id);
    for (const char *s = strstr(text, id); s; s = strstr(s + 1, id))
        if ((s == text || !ident_char(s[-1])) && !ident_char(s[n]))
            return 1;
    return 0;
}

/* The dtype a value is kept in on the device, as the generated code spells
 * it: a batched value (an activation or its gradient) is in the compute
 * dtype `dt` (f16/bf16 under mixed precision); an unbatched one (the
 * fixed region's losses, metrics and their gradients) is float32 always,
 * as the kernels that make them write it. */
static inline const char *vdt(const IrValue *v) {
    return v && v->batched ? "dt" : "LG_CUDA_F32";
}

static inline void check(Emit *E) {
    out(E, "    if (st) return st;\n");
}

/* x viewed as [outer, dim, inner] along d (outer counts the batch). */
static inline void axis(const IrValue *x, int dim, size_t *outer, size_t *mid, size_t *inner) {
    int d = dim < 0 ? x->ndim + dim : dim;
    *outer = 1, *inner = 1;
    for (int i = 0; i < d; i++)
        *outer *= (size_t)x->dim[i];
    for (int i = d + 1; i < x->ndim; i++)
        *inner *= (size_t)x->dim[i];
    *mid = (size_t)x->dim[d];
}

static inline const char *act_kind(IrKind k) {
    switch (k) {
    case LG_OP_RELU: case IR_RELU_BWD: return "LG_CUDA_ACT_RELU";
    case LG_OP_SIGMOID: case IR_SIGMOID_BWD: return "LG_CUDA_ACT_SIGMOID";
    case LG_OP_TANH: case IR_TANH_BWD: return "LG_CUDA_ACT_TANH";
    case LG_OP_SILU: case IR_SILU_BWD: return "LG_CUDA_ACT_SILU";
    case LG_OP_LEAKY_RELU: case IR_LEAKY_RELU_BWD: return "LG_CUDA_ACT_LEAKY_RELU";
    default: return NULL;
    }
}

static inline const char *loss_kind(IrKind k) {
    switch (k) {
    case LG_OP_MSE_LOSS: return "LG_CUDA_LOSS_MSE";
    case LG_OP_L1_LOSS: return "LG_CUDA_LOSS_L1";
    case LG_OP_SMOOTH_L1_LOSS: return "LG_CUDA_LOSS_SMOOTH_L1";
    case LG_OP_BCE_WITH_LOGITS: return "LG_CUDA_LOSS_BCE_WITH_LOGITS";
    default: return NULL;
    }
}

/* The cross entropy's description for this batch (N is the batch's n). */
static inline const char *ce_desc(Emit *E, IrOp *f) {
    IrValue *x = f->in[0];
    return ir_fmt(E->p, "{.N = (int)n, .C = %d, .label_smoothing = %s, .ignore_index = %d, .reduction_sum = %d}",
                  x->dim[x->ndim - 1], flit(E, f->a.label_smoothing), f->a.ignore_index, f->a.reduction);
}

/* Mixed precision: activations are f16/bf16 (gpu.dt) except where a kernel
 * is float32 only (cross entropy, accuracy, softmax); there the value goes
 * through gpu.cvt_in / gpu.cvt_out, two f32 buffers of the arena. */
static inline void need_cvt(CudaEmit *X, const IrValue *v) {
    size_t k = numel(v);
    if (k > X->cvt)
        X->cvt = k;
}

static inline void to_f32(CudaEmit *X, IrValue *v, const char *indent) {
    Emit *E = X->E;
    need_cvt(X, v);
    out(E, "%sif (dt != LG_CUDA_F32 && (st = lg_cuda_convert(c, LG_CUDA_F32, gpu.cvt_in, dt, %s, %s, err)) != LG_OK)\n"
           "%s    return st;\n", indent, dptr(E, v), count(E, v), indent);
}

static inline const char *f32(Emit *E, IrValue *v) {
    return ir_fmt(E->p, "(dt == LG_CUDA_F32 ? %s : gpu.cvt_in)", dptr(E, v));
}

static inline const char *f32_out(Emit *E, IrValue *v) {
    return ir_fmt(E->p, "(dt == LG_CUDA_F32 ? %s : gpu.cvt_out)", dptr(E, v));
}

static inline void from_f32(CudaEmit *X, IrValue *v) {
    Emit *E = X->E;
    need_cvt(X, v);
    out(E, "    if (dt != LG_CUDA_F32 && (st = lg_cuda_convert(c, dt, %s, LG_CUDA_F32, gpu.cvt_out, %s, err)) != LG_OK)\n"
           "        return st;\n", dptr(E, v), count(E, v));
}

/* A layer's weight, bias or their gradients in the compute dtype: the f32
 * block, or its f16/bf16 copy (weight() and weight_grad() in the file). */
static inline const char *wptr(Emit *E, IrValue *v) {
    IrValue *r = v ? plan_root(v) : NULL;
    if (r && r->storage == IR_ST_PARAM)
        return ir_fmt(E->p, "weight(%s)", E->param_names[r->param]);
    if (r && r->storage == IR_ST_GRAD)
        return ir_fmt(E->p, "weight_grad(%s)", E->param_names[r->param]);
    return dptr(E, v);
}

#endif
