/* emit_c.c — prints the generated trainer: one readable C file per spec.
 *
 * Input: the checked Module (tables: hparams, datasets, data, optimizer,
 * scheduler, trainer) and its IrProgram after autodiff and plan (the steps).
 * Output: <outdir>/<name>.c, written by emit.c's emit_program, which also
 * writes the Makefile from templates/.
 *
 * The file reads like llm.c's train_gpt2.c: a banner, named parameter
 * offsets, one static const dims struct per layer, then each step as one
 * function whose kernel calls carry a `// lenet.lmod:14` comment and the
 * output shape, the backward below the forward, then the tables of
 * lgen/trainer.h and lgen/data.h, and main(). Nothing depends on pointers or
 * time: the same spec gives the same bytes.
 */
#include "emit_internal.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "plan.h"

/* ---- output helpers ---------------------------------------------------------- */

static void out(Emit *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Emit *E, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(E->f, fmt, ap);
    va_end(ap);
}

/* A C identifier from a spec name: "layer1.0.conv1" -> "layer1_0_conv1". */
static char *c_ident(Emit *E, const char *s, int upper) {
    size_t n = strlen(s);
    char *r = malloc(n + 2);
    size_t j = 0;
    if (n == 0 || isdigit((unsigned char)s[0]))
        r[j++] = '_';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        r[j++] = isalnum(c) ? (char)(upper ? toupper(c) : c) : '_';
    }
    r[j] = 0;
    char *k = ir_strdup(E->p, r);
    free(r);
    return k;
}

/* A float literal C accepts: 0.286f, 1e-05f, 0.0f. */
static const char *flit(Emit *E, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", v);
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    return ir_fmt(E->p, "%sf", buf);
}

static const char *shape_comment(Emit *E, const IrValue *v) {
    char buf[128];
    size_t k = 0;
    k += (size_t)snprintf(buf + k, sizeof buf - k, "(");
    int first = 1;
    if (v->batched) {
        k += (size_t)snprintf(buf + k, sizeof buf - k, "B");
        first = 0;
    }
    for (int i = 0; i < v->ndim && k < sizeof buf; i++) {
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", first ? "" : ", ", v->dim[i]);
        first = 0;
    }
    if (k < sizeof buf)
        snprintf(buf + k, sizeof buf - k, ")");
    return ir_strdup(E->p, buf);
}

/* ---- names ---------------------------------------------------------------------- */

/* Per-graph C names of arena values: the spec's name, made unique. */
static int name_taken(IrGraph *g, int upto, const char *name) {
    /* names a C reader would trip over, or that the step function uses */
    static const char *reserved[] = {"b", "io", "n", "B", "st", "ctx", "params", "grads", "ws",
                                     "ws_bytes", "act", "fixed", "int", "float", "double",
                                     "return", "if", "for", "while", "main", "d"};
    for (size_t r = 0; r < sizeof reserved / sizeof *reserved; r++)
        if (!strcmp(name, reserved[r]))
            return 1;
    for (int j = 0; j < upto; j++)
        if (g->values[j]->cname && !strcmp(g->values[j]->cname, name))
            return 1;
    return 0;
}

/* Per-graph C names of the values a step declares: the spec's name, made
 * unique with _2, _3, ... in value order (so the same spec, the same names). */
static void name_values(Emit *E, IrGraph *g) {
    for (int i = 0; i < g->nvalues; i++) {
        IrValue *v = g->values[i];
        v->cname = NULL;
        if (v->storage != IR_ST_ARENA || v->first < 0)
            continue; /* not declared: a view, a parameter, a batch field, or absorbed by fusion */
        const char *base = c_ident(E, v->name, 0);
        const char *name = base;
        for (int k = 2; name_taken(g, i, name); k++)
            name = ir_fmt(E->p, "%s_%d", base, k);
        v->cname = name;
    }
}

static const char *param_const(Emit *E, int k) {
    return E->param_names[k];
}

/* The C expression of a value's memory. */
static const char *ptr(Emit *E, IrValue *v) {
    if (!v)
        return "NULL";
    IrValue *r = plan_root(v);
    switch (r->storage) {
    case IR_ST_PARAM:
        return ir_fmt(E->p, "params + %s", param_const(E, r->param));
    case IR_ST_GRAD:
        return ir_fmt(E->p, "grads + %s", param_const(E, r->param));
    case IR_ST_INPUT:
        return ir_fmt(E->p, "b->%s", c_ident(E, E->p->inputs[r->input].name, 0));
    default:
        return r->cname;
    }
}

static const char *fptr(Emit *E, IrValue *v) {
    return ptr(E, v);
}

/* ---- dims structs ---------------------------------------------------------------- */

static size_t numel(const IrValue *v) {
    return ir_numel(v);
}

/* The static dims struct of a layer op (shared by forward and backward and
 * by every step), declared once at file scope. */
static const char *dims_name(Emit *E, IrOp *op) {
    IrOp *f = op->fwd ? op->fwd : op;
    IrValue *x = f->in[0];
    IrValue *y = f->out[0];
    char body[512];
    const char *type = NULL;
    switch (f->kind) {
    case LG_OP_LINEAR:
        type = "lg_linear_dims";
        snprintf(body, sizeof body, "{.in_features = %d, .out_features = %d, .bias = %d}",
                 x->dim[x->ndim - 1], y->dim[y->ndim - 1], f->nin > 2);
        break;
    case LG_OP_CONV2D:
        type = "lg_conv2d_dims";
        snprintf(body, sizeof body,
                 "{\n    .c_in = %d, .h_in = %d, .w_in = %d,\n    .c_out = %d, .h_out = %d, .w_out = %d,\n"
                 "    .kh = %d, .kw = %d, .sh = %d, .sw = %d, .ph = %d, .pw = %d, .dh = %d, .dw = %d,\n"
                 "    .groups = %d, .bias = %d,\n}",
                 x->dim[0], x->dim[1], x->dim[2], y->dim[0], y->dim[1], y->dim[2], f->a.kh, f->a.kw,
                 f->a.sh, f->a.sw, f->a.ph, f->a.pw, f->a.dh, f->a.dw, f->a.groups, f->nin > 2);
        break;
    case LG_OP_MAX_POOL2D:
    case LG_OP_AVG_POOL2D:
        type = "lg_pool2d_dims";
        snprintf(body, sizeof body,
                 "{\n    .c = %d, .h_in = %d, .w_in = %d, .h_out = %d, .w_out = %d,\n"
                 "    .kh = %d, .kw = %d, .sh = %d, .sw = %d, .ph = %d, .pw = %d,\n"
                 "    .ceil_mode = %d, .count_include_pad = %d,\n}",
                 x->dim[0], x->dim[1], x->dim[2], y->dim[0 + 1], y->dim[2], f->a.kh, f->a.kw, f->a.sh,
                 f->a.sw, f->a.ph, f->a.pw, f->a.ceil_mode, f->a.count_include_pad);
        break;
    case LG_OP_ADAPTIVE_AVG_POOL2D:
        type = "lg_adaptive_pool2d_dims";
        snprintf(body, sizeof body, "{.c = %d, .h_in = %d, .w_in = %d, .h_out = %d, .w_out = %d}",
                 x->dim[0], x->dim[1], x->dim[2], y->dim[1], y->dim[2]);
        break;
    case LG_OP_BATCH_NORM: {
        size_t spatial = 1;
        for (int i = 1; i < x->ndim; i++)
            spatial *= (size_t)x->dim[i];
        type = "lg_batch_norm_dims";
        snprintf(body, sizeof body, "{.c = %d, .spatial = %zu, .eps = %s, .momentum = %s, .affine = %d}",
                 x->dim[0], spatial, flit(E, f->a.eps),
                 f->a.momentum < 0 ? "LG_BN_CUMULATIVE" : flit(E, f->a.momentum), f->a.affine);
        break;
    }
    case LG_OP_CROSS_ENTROPY:
        type = "lg_cross_entropy_dims";
        snprintf(body, sizeof body,
                 "{.classes = %d, .label_smoothing = %s, .ignore_index = %d, .reduction = %s}",
                 x->dim[x->ndim - 1], flit(E, f->a.label_smoothing), f->a.ignore_index,
                 f->a.reduction ? "LG_REDUCE_SUM" : "LG_REDUCE_MEAN");
        break;
    default:
        return NULL;
    }
    const char *stem = c_ident(E, f->layer ? f->layer : f->out[0]->name, 0);
    for (int i = 0; i < E->ndims; i++)
        if (!strcmp(E->dims[i].type, type) && !strcmp(E->dims[i].body, body))
            return E->dims[i].name;
    const char *name = ir_fmt(E->p, "%s_dims", stem);
    for (int i = 0; i < E->ndims; i++)
        if (!strcmp(E->dims[i].name, name))
            name = ir_fmt(E->p, "%s_dims_%d", stem, E->ndims);
    if (E->ndims == E->capdims) {
        E->capdims = E->capdims ? 2 * E->capdims : 16;
        E->dims = realloc(E->dims, (size_t)E->capdims * sizeof *E->dims);
    }
    EmitDims *d = &E->dims[E->ndims++];
    d->type = type;
    d->name = name;
    d->body = ir_strdup(E->p, body);
    d->file = f->file;
    d->line = f->line;
    d->is_conv = f->kind == LG_OP_CONV2D;
    d->is_linear = f->kind == LG_OP_LINEAR;
    return name;
}

/* ---- one op ---------------------------------------------------------------------- */

static void call_end(Emit *E) {
    out(E, "    if (st) return st;\n");
}

static void where(Emit *E, IrOp *op, const char *what) {
    IrValue *y = op->nout ? op->out[0] : NULL;
    out(E, "    // %s", what);
    if (op->file)
        out(E, " (%s:%d)", op->file, op->line);
    if (y)
        out(E, " -> %s", shape_comment(E, y));
    out(E, "\n");
}

/* count expression for elementwise kernels: n * per-sample elements */
static const char *count_expr(Emit *E, const IrValue *v) {
    if (v->batched)
        return ir_fmt(E->p, "n * %zu", numel(v));
    return ir_fmt(E->p, "%zu", numel(v));
}

/* x viewed as [outer, dim, inner] for softmax along d (per-sample dims). */
static const char *axis_dims(Emit *E, const IrValue *x, int dim) {
    int nd = x->ndim;
    int d = dim < 0 ? nd + dim : dim;
    size_t outer = 1, inner = 1;
    for (int i = 0; i < d; i++)
        outer *= (size_t)x->dim[i];
    for (int i = d + 1; i < nd; i++)
        inner *= (size_t)x->dim[i];
    return ir_fmt(E->p, "{n * %zu, %d, %zu}", outer, x->dim[d], inner);
}

/* transpose dims of x (per-sample dims; dim0/dim1 may count from the end):
 * x viewed as [n * outer, a, mid, b, inner]. */
static const char *transpose_dims(Emit *E, const IrValue *x, int d0, int d1) {
    size_t v[5];
    emit_transpose_view(x, d0, d1, v);
    return ir_fmt(E->p, "{n * %zu, %zu, %zu, %zu, %zu}", v[0], v[1], v[2], v[3], v[4]);
}

/* concat/split along per-sample dim d of the op's pieces: outer (without n)
 * and the list of piece sizes (dim_i * inner). */
static void concat_layout(Emit *E, IrValue *const *pieces, int k, int d, size_t *outer, const char **sizes) {
    const IrValue *x = pieces[0];
    if (d < 0)
        d += x->ndim;
    size_t o = 1, inner = 1;
    for (int i = 0; i < d; i++)
        o *= (size_t)x->dim[i];
    for (int i = d + 1; i < x->ndim; i++)
        inner *= (size_t)x->dim[i];
    char buf[512] = "";
    size_t len = 0;
    for (int i = 0; i < k && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%zu", i ? ", " : "",
                                (size_t)pieces[i]->dim[d] * inner);
    *outer = o;
    *sizes = ir_strdup(E->p, buf);
}

/* ---- detection ops ------------------------------------------------------------------
 * Faster R-CNN's ops call the batch functions of lgen/detect.h. Their
 * configurations are file-scope constants (declared once, named after the
 * value), their scratch space is part of the step workspace (main() sizes
 * it from the runtime's _workspace functions), and the batch's ground truth
 * reaches them as one lg_det_targets `tg` made at the top of the step. */

static void add_decl(Emit *E, const char *text) {
    for (int i = 0; i < E->ndecls; i++)
        if (!strcmp(E->decls[i], text))
            return;
    if (E->ndecls == E->capdecls) {
        E->capdecls = E->capdecls ? 2 * E->capdecls : 16;
        E->decls = realloc(E->decls, (size_t)E->capdecls * sizeof *E->decls);
    }
    E->decls[E->ndecls++] = ir_strdup(E->p, text);
}

static void add_ws(Emit *E, const char *expr) {
    for (int i = 0; i < E->nws; i++)
        if (!strcmp(E->ws_exprs[i], expr))
            return;
    if (E->nws == E->capws) {
        E->capws = E->capws ? 2 * E->capws : 8;
        E->ws_exprs = realloc(E->ws_exprs, (size_t)E->capws * sizeof *E->ws_exprs);
    }
    E->ws_exprs[E->nws++] = ir_strdup(E->p, expr);
}

/* A file-scope name for op's configuration: <graph>_<value>_<what>. */
static const char *det_name(Emit *E, IrGraph *g, IrOp *op, const char *what) {
    IrOp *f = op->fwd ? op->fwd : op;
    return ir_fmt(E->p, "%s_%s_%s", g->name, c_ident(E, f->out[0]->name, 0), what);
}

static const char *src_comment(Emit *E, IrOp *op) {
    return op->file ? ir_fmt(E->p, " // %s:%d", op->file, op->line) : "";
}

/* The targets argument: the batch's ground truth. */
static const char *tgt(Emit *E, IrValue *v) {
    (void)E;
    (void)v;
    return "&tg";
}

/* The box coder weights of roi_sample / detections (torchvision's (10, 10, 5, 5)). */
static const char *coder_body(Emit *E, const IrAttrs *a) {
    double w[4] = {10, 10, 5, 5};
    for (int i = 0; i < 4 && i < a->nfloats; i++)
        w[i] = a->floats[i];
    return ir_fmt(E->p, "{%s, %s, %s, %s, LG_BBOX_XFORM_CLIP}", flit(E, w[0]), flit(E, w[1]), flit(E, w[2]),
                  flit(E, w[3]));
}

/* anchors: the level table, each level's anchor count (for proposals). */
static const char *anchor_tables(Emit *E, IrGraph *g, IrOp *op) {
    const char *lv = det_name(E, g, op, "levels");
    int L = op->nin;
    char buf[2048];
    size_t k = 0;
    k += (size_t)snprintf(buf + k, sizeof buf - k, "static const float %s_sizes[] = {", lv);
    for (int i = 0; i < op->a.nsizes; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", flit(E, op->a.sizes[i]));
    k += (size_t)snprintf(buf + k, sizeof buf - k, "};\nstatic const float %s_ratios[] = {", lv);
    for (int i = 0; i < op->a.nfloats; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", flit(E, op->a.floats[i]));
    k += (size_t)snprintf(buf + k, sizeof buf - k, "};%s\nstatic const lg_anchor_level %s[] = {\n", src_comment(E, op), lv);
    for (int l = 0; l < L; l++) {
        IrValue *x = op->in[l];
        int ns = L == 1 ? op->a.nsizes : 1;
        k += (size_t)snprintf(buf + k, sizeof buf - k,
                              "    {.feat_h = %d, .feat_w = %d, .num_sizes = %d, .sizes = %s_sizes + %d, "
                              ".num_ratios = %d, .aspect_ratios = %s_ratios},\n",
                              x->dim[1], x->dim[2], ns, lv, L == 1 ? 0 : l, op->a.nfloats, lv);
    }
    k += (size_t)snprintf(buf + k, sizeof buf - k, "};\nstatic const int %s_per_level[] = {", lv);
    for (int l = 0; l < L; l++) {
        IrValue *x = op->in[l];
        int ns = L == 1 ? op->a.nsizes : 1;
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", l ? ", " : "", x->dim[1] * x->dim[2] * ns * op->a.nfloats);
    }
    snprintf(buf + k, sizeof buf - k, "};");
    add_decl(E, buf);
    return lv;
}

/* The multi-scale RoIAlign configuration and level sizes of a roi_align op. */
static const char *roi_align_tables(Emit *E, IrGraph *g, IrOp *f) {
    const char *nm = det_name(E, g, f, "pool");
    int L = f->nin - 1;
    char buf[2048];
    size_t k = 0;
    k += (size_t)snprintf(buf + k, sizeof buf - k, "static const lg_multiscale_roi_align %s = {.num_levels = %d, .scales = {",
                          nm, L);
    for (int i = 0; i < L; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", flit(E, f->a.floats[i]));
    k += (size_t)snprintf(buf + k, sizeof buf - k,
                          "},\n    .pooled_h = %d, .pooled_w = %d, .sampling_ratio = %d, .aligned = %d, "
                          ".canonical_scale = %d, .canonical_level = %d};%s\n",
                          f->a.out_h, f->a.out_w, f->a.sampling_ratio, f->a.aligned, f->a.canonical_scale,
                          f->a.canonical_level, src_comment(E, f));
    k += (size_t)snprintf(buf + k, sizeof buf - k, "static const int %s_heights[] = {", nm);
    for (int i = 0; i < L; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", i ? ", " : "", f->in[i + 1]->dim[1]);
    k += (size_t)snprintf(buf + k, sizeof buf - k, "};\nstatic const int %s_widths[] = {", nm);
    for (int i = 0; i < L; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", i ? ", " : "", f->in[i + 1]->dim[2]);
    snprintf(buf + k, sizeof buf - k, "};");
    add_decl(E, buf);
    return nm;
}

/* The step's sample index for the samplers: epoch and batch position, so
 * that micro-batches differ and a resumed run draws the same samples. */
#define DET_STEP "((uint64_t)io->epoch << 32 | (uint64_t)b->batch_index)"

static int emit_detect(Emit *E, IrGraph *g, IrOp *op) {
    IrValue *y = op->nout ? op->out[0] : NULL;
    IrValue *x = op->nin ? op->in[0] : NULL;
    IrOp *f = op->fwd ? op->fwd : op;
    char buf[1024];
    E->detect = 1;
    switch (op->kind) {
    case LG_OP_ANCHORS: {
        const char *lv = anchor_tables(E, g, op);
        where(E, op, ir_fmt(E->p, "%s = anchors(%d feature maps)", y->name, op->nin));
        out(E, "    st = lg_anchors_generate(ctx, %s, %d, %d, %d, %s, NULL);\n", lv, op->nin, op->a.image_h,
            op->a.image_w, ptr(E, y));
        call_end(E);
        return 0;
    }
    case IR_RPN_FLATTEN:
    case IR_RPN_FLATTEN_BWD: {
        int bwd = op->kind == IR_RPN_FLATTEN_BWD;
        int D = f->a.k, A = f->a.num_anchors, total = f->out[0]->dim[0], off = 0;
        if (bwd)
            where(E, op, ir_fmt(E->p, "d %s: back to the levels' maps", f->out[0]->name));
        else
            where(E, op, ir_fmt(E->p, "%s: %d levels' maps in anchor order (permute and flatten)", y->name, op->nin));
        for (int l = 0; l < f->nin; l++) {
            IrValue *m = f->in[l];
            if (bwd && op->out[l])
                out(E, "    lg_rpn_permute_backward(%s, (int)n, %d, %d, %d, %d, %d, %d, %s);\n", ptr(E, op->in[0]), A,
                    D, m->dim[1], m->dim[2], total, off, ptr(E, op->out[l]));
            else if (!bwd)
                out(E, "    lg_rpn_permute_forward(%s, (int)n, %d, %d, %d, %d, %s, %d, %d);\n", ptr(E, m), A, D,
                    m->dim[1], m->dim[2], ptr(E, y), total, off);
            off += m->dim[1] * m->dim[2] * A;
        }
        return 0;
    }
    case LG_OP_PROPOSALS: {
        IrOp *anc = op->in[2]->def;
        const char *lv = anchor_tables(E, g, anc);
        const char *cfg = det_name(E, g, op, "cfg");
        snprintf(buf, sizeof buf,
                 "static const lg_proposal_config %s = {.pre_nms_top_n = %d, .post_nms_top_n = %d, "
                 ".nms_thresh = %s,\n    .min_size = %s, .score_thresh = %s};%s",
                 cfg, op->a.top_n, op->a.post_top_n, flit(E, op->a.nms_thresh), flit(E, op->a.min_size),
                 flit(E, op->a.thresh), src_comment(E, op));
        add_decl(E, buf);
        add_ws(E, ir_fmt(E->p, "lg_proposals_batch_workspace(&%s, %s_per_level, %d, 1)", cfg, lv, anc->nin));
        where(E, op, ir_fmt(E->p, "%s = proposals(%s, %s, %s)", y->name, x->name, op->in[1]->name, op->in[2]->name));
        out(E, "    st = lg_proposals_batch(ctx, &%s, %s, %s, %s, %s_per_level, %d, (int)n, %d, %d, NULL, ws,\n"
               "                            %s, %s, %s);\n",
            cfg, ptr(E, x), ptr(E, op->in[1]), ptr(E, op->in[2]), lv, anc->nin, op->a.image_h, op->a.image_w,
            ptr(E, y), ptr(E, op->out[1]), ptr(E, op->out[2]));
        call_end(E);
        return 0;
    }
    case IR_ROIS_FROM_PROPOSALS:
        where(E, op, ir_fmt(E->p, "%s: the proposals as a RoI batch (image, x1, y1, x2, y2)", y->name));
        out(E, "    lg_rois_from_proposals(%s, %s, (int)n, %d, %s);\n", ptr(E, x), ptr(E, op->in[1]), x->dim[0],
            ptr(E, y));
        return 0;
    case LG_OP_RPN_LOSS:
    case IR_RPN_LOSS_BWD: {
        const char *cfg = det_name(E, g, f, "cfg");
        snprintf(buf, sizeof buf,
                 "static const lg_rpn_loss_config %s = {\n    .rpn = {.fg_iou_thresh = %s, .bg_iou_thresh = %s, "
                 ".batch_size_per_image = %d, .positive_fraction = %s},\n    .beta = %s, .seed = %lluu};%s",
                 cfg, flit(E, f->a.fg_iou), flit(E, f->a.bg_iou), f->a.per_image, flit(E, f->a.fraction),
                 flit(E, f->a.beta), (unsigned long long)f->a.seed, src_comment(E, f));
        add_decl(E, buf);
        int A = f->in[0]->dim[0];
        if (op->kind == LG_OP_RPN_LOSS) {
            add_ws(E, ir_fmt(E->p, "lg_rpn_loss_batch_workspace(%d, %d)", A, op->in[3]->dim[0]));
            where(E, op, ir_fmt(E->p, "%s, %s = rpn_loss(%s, %s, %s, targets)", y->name, op->out[1]->name, x->name,
                                op->in[1]->name, op->in[2]->name));
            out(E, "    {\n        lg_rpn_loss_config c = %s;\n        c.seed ^= io->seed;\n", cfg);
            out(E, "        st = lg_rpn_loss_batch_forward(ctx, &c, %s, %s, %s, %d, (int)n, %s, %s, ws,\n"
                   "                                       %s, %s, %s, %s);\n    }\n",
                ptr(E, x), ptr(E, op->in[1]), ptr(E, op->in[2]), A, tgt(E, op->in[3]), DET_STEP,
                ptr(E, op->out[2]), ptr(E, op->out[3]), ptr(E, y), ptr(E, op->out[1]));
        } else {
            where(E, op, ir_fmt(E->p, "d rpn_loss: objectness and box deltas"));
            out(E, "    st = lg_rpn_loss_backward(ctx, %s, %s, %s, %s, (int)n, %d, %s, %s, %s, %s, %s);\n",
                ptr(E, op->in[2]), ptr(E, op->in[3]), ptr(E, op->in[4]), ptr(E, op->in[5]), A, flit(E, f->a.beta),
                op->in[0] ? ir_fmt(E->p, "%s[0]", ptr(E, op->in[0])) : "0.0f",
                op->in[1] ? ir_fmt(E->p, "%s[0]", ptr(E, op->in[1])) : "0.0f", ptr(E, op->out[0]),
                ptr(E, op->out[1]));
        }
        call_end(E);
        return 0;
    }
    case LG_OP_ROI_SAMPLE: {
        const char *cfg = det_name(E, g, op, "cfg");
        int P = x->dim[0], R = op->a.per_image;
        snprintf(buf, sizeof buf,
                 "static const lg_roi_sample_config %s = {.fg_iou_thresh = %s, .bg_iou_thresh = %s,\n"
                 "    .batch_size_per_image = %d, .positive_fraction = %s, .coder = %s};%s",
                 cfg, flit(E, op->a.fg_iou), flit(E, op->a.bg_iou), R, flit(E, op->a.fraction),
                 coder_body(E, &op->a), src_comment(E, op));
        add_decl(E, buf);
        add_ws(E, ir_fmt(E->p, "lg_roi_sample_batch_workspace(&%s, %d, %d)", cfg, P, op->in[1]->dim[0]));
        where(E, op, ir_fmt(E->p, "%s, %s, %s = roi_sample(%s, targets)", y->name, op->out[1]->name,
                            op->out[2]->name, x->name));
        out(E, "    st = lg_roi_sample_batch(ctx, &%s, %s, %s, %d, (int)n, %s, io->seed ^ %lluu, %s, ws,\n"
               "                             %s, %s, %s);\n",
            cfg, ptr(E, x), ptr(E, op->in[2]), P, tgt(E, op->in[1]), (unsigned long long)op->a.seed, DET_STEP,
            ptr(E, y), ptr(E, op->out[1]), ptr(E, op->out[2]));
        call_end(E);
        return 0;
    }
    case LG_OP_ROI_ALIGN:
    case IR_ROI_ALIGN_BWD: {
        const char *cfg = roi_align_tables(E, g, f);
        IrValue *rois = f->in[0];
        int C = f->in[1]->dim[0], R = rois->dim[0];
        if (op->kind == LG_OP_ROI_ALIGN) {
            where(E, op, ir_fmt(E->p, "%s = roi_align(%s, %d feature maps)", y->name, rois->name, op->nin - 1));
            out(E, "    {\n        const float *const maps[] = {");
            for (int i = 1; i < op->nin; i++)
                out(E, "%s%s", i > 1 ? ", " : "", ptr(E, op->in[i]));
            out(E, "};\n        st = lg_multiscale_roi_align_forward(ctx, &%s, maps, %s_heights, %s_widths, (int)n, %d,\n"
                   "                                             %s, (int)(n * %d), %s);\n    }\n",
                cfg, cfg, cfg, C, ptr(E, rois), R, ptr(E, y));
        } else {
            where(E, op, ir_fmt(E->p, "d %s: into every level's map", f->out[0]->name));
            out(E, "    {\n        float *const maps[] = {");
            for (int i = 0; i < op->nout; i++)
                out(E, "%s%s", i ? ", " : "", ptr(E, op->out[i]));
            out(E, "};\n        st = lg_multiscale_roi_align_backward(ctx, &%s, %s, %s_heights, %s_widths, (int)n, %d,\n"
                   "                                              %s, (int)(n * %d), maps);\n    }\n",
                cfg, ptr(E, op->in[0]), cfg, cfg, C, ptr(E, rois), R);
        }
        call_end(E);
        return 0;
    }
    case LG_OP_FASTRCNN_LOSS:
    case IR_FASTRCNN_LOSS_BWD: {
        IrValue *lg = f->in[0];
        int R = lg->dim[0], K = lg->dim[1];
        if (op->kind == LG_OP_FASTRCNN_LOSS) {
            where(E, op, ir_fmt(E->p, "%s, %s = fastrcnn_loss(%s, %s, %s, %s)", y->name, op->out[1]->name, x->name,
                                op->in[1]->name, op->in[2]->name, op->in[3]->name));
            out(E, "    st = lg_fastrcnn_loss_forward(ctx, %s, %s, %s, %s, (int)(n * %d), %d, %s, %s, %s);\n",
                ptr(E, x), ptr(E, op->in[1]), ptr(E, op->in[2]), ptr(E, op->in[3]), R, K, flit(E, op->a.beta),
                ptr(E, y), ptr(E, op->out[1]));
        } else {
            where(E, op, "d fastrcnn_loss: class logits and box regression");
            out(E, "    st = lg_fastrcnn_loss_backward(ctx, %s, %s, %s, %s, (int)(n * %d), %d, %s, %s, %s,\n"
                   "                                   %s, %s);\n",
                ptr(E, op->in[2]), ptr(E, op->in[3]), ptr(E, op->in[4]), ptr(E, op->in[5]), R, K, flit(E, f->a.beta),
                op->in[0] ? ir_fmt(E->p, "%s[0]", ptr(E, op->in[0])) : "0.0f",
                op->in[1] ? ir_fmt(E->p, "%s[0]", ptr(E, op->in[1])) : "0.0f", ptr(E, op->out[0]),
                ptr(E, op->out[1]));
        }
        call_end(E);
        return 0;
    }
    case LG_OP_DETECTIONS: {
        const char *cfg = det_name(E, g, op, "cfg");
        IrValue *rois = op->in[2];
        int R = rois->dim[0], K = x->dim[1], D = op->a.post_top_n;
        snprintf(buf, sizeof buf,
                 "static const lg_detect_config %s = {.score_thresh = %s, .nms_thresh = %s, "
                 ".detections_per_img = %d,\n    .min_size = %s, .coder = %s};%s",
                 cfg, flit(E, op->a.thresh), flit(E, op->a.nms_thresh), D, flit(E, op->a.min_size),
                 coder_body(E, &op->a), src_comment(E, op));
        add_decl(E, buf);
        add_ws(E, ir_fmt(E->p, "lg_detections_batch_workspace(%d, %d, 1)", R, K));
        where(E, op, ir_fmt(E->p, "%s = detections(%s, %s, %s): boxes, scores, labels, count", y->name, x->name,
                            op->in[1]->name, rois->name));
        out(E, "    st = lg_detections_batch(ctx, &%s, %s, %s, %s, (int)n, %d, %d, %d, %d, NULL, ws,\n"
               "                             %s, %s, %s, %s);\n",
            cfg, ptr(E, x), ptr(E, op->in[1]), ptr(E, rois), R, K, op->a.image_h, op->a.image_w, ptr(E, y),
            ptr(E, op->out[1]), ptr(E, op->out[2]), ptr(E, op->out[3]));
        call_end(E);
        return 0;
    }
    case LG_OP_VOC_MAP: {
        const char *ev = det_name(E, g, op, "eval");
        snprintf(buf, sizeof buf,
                 "/* %s's detections and ground truth of the epoch so far (%s_eval_begin / _end);\n"
                 " * %s_cuda.c's GPU steps, where built, add to it too. */\n"
                 "lg_voc_eval %s;",
                 y->name, E->lower, E->lower, ev);
        add_decl(E, buf);
        where(E, op, ir_fmt(E->p, "%s = voc_map(%s, targets): gathered over the epoch", y->name, x->name));
        out(E, "    st = lg_voc_eval_add_batch(&%s, %s, %s, %s, %s, (int)n, %d, %s, ctx->err);\n", ev, ptr(E, x),
            ptr(E, op->in[2]), ptr(E, op->in[3]), ptr(E, op->in[4]), x->dim[0], tgt(E, op->in[1]));
        call_end(E);
        out(E, "    %s[0] = 0.0f; // the epoch's mAP replaces it (%s_eval_end)\n", ptr(E, y), E->lower);
        return 0;
    }
    default:
        return 1;
    }
}

/* Does g read the batch's detection targets? */
static int reads_targets(const IrGraph *g) {
    for (int i = 0; i < g->nops; i++)
        for (int j = 0; j < g->ops[i]->nin; j++) {
            const IrValue *v = g->ops[i]->in[j];
            if (!g->ops[i]->dead && v && v->storage == IR_ST_INPUT && !strcmp(v->name, "targets"))
                return 1;
        }
    return 0;
}

static int emit_op(Emit *E, IrGraph *g, IrOp *op) {
    IrValue *y = op->nout ? op->out[0] : NULL;
    IrValue *x = op->nin ? op->in[0] : NULL;
    int training = g->step == IR_STEP_TRAIN;
    const char *layer = op->layer ? op->layer : (y ? y->name : ir_kind_name(op->kind));
    const char *dn = dims_name(E, op);
    switch (op->kind) {
    case LG_OP_LINEAR: {
        size_t rows = x->batched ? numel(x) / (size_t)x->dim[x->ndim - 1] : 1;
        where(E, op, ir_fmt(E->p, "%s = linear(%s)%s", layer, x->name, op->fused_relu ? " |> relu" : ""));
        out(E, "    st = lg_linear_forward(ctx, &%s, n * %zu, %s, %s, %s, %s);\n", dn, rows, fptr(E, x),
            ptr(E, op->in[1]), op->nin > 2 ? ptr(E, op->in[2]) : "NULL", ptr(E, y));
        call_end(E);
        break;
    }
    case LG_OP_CONV2D:
        where(E, op, ir_fmt(E->p, "%s = conv2d(%s)%s", layer, x->name, op->fused_relu ? " |> relu" : ""));
        out(E, "    st = lg_conv2d_forward(ctx, &%s, n, %s, %s, %s, %s, ws, ws_bytes);\n", dn, fptr(E, x),
            ptr(E, op->in[1]), op->nin > 2 ? ptr(E, op->in[2]) : "NULL", ptr(E, y));
        call_end(E);
        break;
    case LG_OP_BATCH_NORM:
        where(E, op, ir_fmt(E->p, "%s = batch_norm(%s)%s", layer, x->name, op->fused_relu ? " |> relu" : ""));
        bool cumulative = training && op->nin > 5 && op->a.momentum < 0;
        if (cumulative) {
            /* momentum none: this step's factor is 1 / num_batches_tracked,
             * counted first as PyTorch does */
            out(E, "    (%s)[0] += 1.0f; // num_batches_tracked\n", ptr(E, op->in[5]));
            out(E, "    { // momentum none: the running statistics average all batches so far\n");
            out(E, "        const lg_batch_norm_dims step = lg_batch_norm_step_dims(&%s, (%s)[0]);\n    ", dn,
                ptr(E, op->in[5]));
            dn = "step";
        }
        out(E, "    st = lg_batch_norm_forward(ctx, &%s, n, %d, %s, %s, %s, %s, %s, %s, %s, %s);\n", dn,
            training, ptr(E, x), op->in[1] ? ptr(E, op->in[1]) : "NULL",
            op->in[2] ? ptr(E, op->in[2]) : "NULL", ptr(E, op->in[3]), ptr(E, op->in[4]), ptr(E, y),
            training ? ptr(E, op->out[1]) : "NULL", training ? ptr(E, op->out[2]) : "NULL");
        if (cumulative)
            out(E, "    }\n");
        call_end(E);
        if (training && op->nin > 5 && op->a.momentum >= 0)
            out(E, "    (%s)[0] += 1.0f; // num_batches_tracked\n", ptr(E, op->in[5]));
        break;
    case LG_OP_RELU:
    case LG_OP_SIGMOID:
    case LG_OP_TANH:
    case LG_OP_SILU:
        where(E, op, ir_fmt(E->p, "%s = %s(%s)", y->name, ir_kind_name(op->kind), x->name));
        out(E, "    st = lg_%s_forward(ctx, %s, %s, %s);\n", ir_kind_name(op->kind), count_expr(E, y),
            ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_LEAKY_RELU:
        where(E, op, ir_fmt(E->p, "%s = leaky_relu(%s)", y->name, x->name));
        out(E, "    st = lg_leaky_relu_forward(ctx, %s, %.9g, %s, %s);\n", count_expr(E, y), op->a.slope,
            ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_GELU:
        where(E, op, ir_fmt(E->p, "%s = gelu(%s)", y->name, x->name));
        out(E, "    st = lg_gelu_forward(ctx, %s, %d, %s, %s);\n", count_expr(E, y), op->a.approximate,
            ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_DROPOUT:
        if (!training) {
            where(E, op, ir_fmt(E->p, "%s = dropout(%s): the identity outside training", y->name, x->name));
            break;
        }
        where(E, op, ir_fmt(E->p, "%s = dropout(%s, p: %g)", y->name, x->name, op->a.p));
        /* the mask follows (seed, epoch, batch, layer): distinct for every
         * batch, also the micro-batches of one accumulated step, and the
         * same again when a run resumes at that batch */
        out(E, "    st = lg_dropout_forward(ctx, %s, %.9g, %d,\n"
               "                            lg_dropout_seed(io->seed ^ ((uint64_t)io->epoch << 40), (uint64_t)b->batch_index, %d),\n"
               "                            %s, %s, %s);\n",
            count_expr(E, y), op->a.p, training, op->index, ptr(E, x), ptr(E, y),
            training ? ir_fmt(E->p, "(uint8_t *)%s", ptr(E, op->out[1])) : "NULL");
        call_end(E);
        break;
    case LG_OP_MAX_POOL2D:
        where(E, op, ir_fmt(E->p, "%s = max_pool2d(%s)", y->name, x->name));
        out(E, "    st = lg_max_pool2d_forward(ctx, &%s, n, %s, %s, %s);\n", dn, ptr(E, x), ptr(E, y),
            op->nout > 1 ? ptr(E, op->out[1]) : "NULL");
        call_end(E);
        break;
    case LG_OP_AVG_POOL2D:
        where(E, op, ir_fmt(E->p, "%s = avg_pool2d(%s)", y->name, x->name));
        out(E, "    st = lg_avg_pool2d_forward(ctx, &%s, n, %s, %s);\n", dn, ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_ADAPTIVE_AVG_POOL2D:
        where(E, op, ir_fmt(E->p, "%s = adaptive_avg_pool2d(%s)", y->name, x->name));
        out(E, "    st = lg_adaptive_avg_pool2d_forward(ctx, &%s, n, %s, %s);\n", dn, ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_GLOBAL_AVG_POOL:
        where(E, op, ir_fmt(E->p, "%s = global_avg_pool(%s)", y->name, x->name));
        out(E, "    st = lg_global_avg_pool_forward(ctx, n, %d, %zu, %s, %s);\n", x->dim[0],
            numel(x) / (size_t)x->dim[0], ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_LAYER_NORM: {
        size_t D = (size_t)x->dim[x->ndim - 1], rows = numel(x) / D;
        where(E, op, ir_fmt(E->p, "%s = layer_norm(%s)", layer, x->name));
        out(E, "    {\n        lg_layer_norm_dims d = {(int)(n * %zu), %zu, %s, %d};\n", rows, D,
            flit(E, op->a.eps), op->a.affine);
        out(E, "        st = lg_layer_norm_forward(ctx, &d, %s, %s, %s, %s, %s, %s);\n    }\n", ptr(E, x),
            op->nin > 1 ? ptr(E, op->in[1]) : "NULL", op->nin > 2 ? ptr(E, op->in[2]) : "NULL", ptr(E, y),
            ptr(E, op->out[1]), ptr(E, op->out[2]));
        call_end(E);
        break;
    }
    case LG_OP_UPSAMPLE_NEAREST:
        where(E, op, ir_fmt(E->p, "%s = upsample_nearest(%s, scale: %d)", y->name, x->name, op->a.scale));
        out(E, "    st = lg_upsample_nearest_forward(ctx, n, %d, %d, %d, %d, %s, %s);\n", x->dim[0], x->dim[1],
            x->dim[2], op->a.scale, ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_TRANSPOSE:
        where(E, op, ir_fmt(E->p, "%s = transpose(%s, %d, %d)", y->name, x->name, op->a.dim0, op->a.dim1));
        out(E, "    {\n        lg_transpose_dims d = %s;\n", transpose_dims(E, x, op->a.dim0, op->a.dim1));
        out(E, "        st = lg_transpose_forward(ctx, &d, %s, %s);\n    }\n", ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_CONCAT: {
        size_t outer;
        const char *sizes;
        concat_layout(E, op->in, op->nin, op->a.dim, &outer, &sizes);
        where(E, op, ir_fmt(E->p, "%s = concat(%d inputs, dim: %d)", y->name, op->nin, op->a.dim));
        out(E, "    {\n        const size_t sizes[] = {%s};\n        const float *const inputs[] = {", sizes);
        for (int i = 0; i < op->nin; i++)
            out(E, "%s%s", i ? ", " : "", ptr(E, op->in[i]));
        out(E, "};\n        st = lg_concat_forward(ctx, n * %zu, %d, sizes, inputs, %s);\n    }\n", outer, op->nin,
            ptr(E, y));
        call_end(E);
        break;
    }
    case LG_OP_SPLIT: {
        size_t outer;
        const char *sizes;
        concat_layout(E, op->out, op->nout, op->a.dim, &outer, &sizes);
        where(E, op, ir_fmt(E->p, "split(%s) into %d pieces along dim %d", x->name, op->nout, op->a.dim));
        out(E, "    {\n        const size_t sizes[] = {%s};\n        float *const outputs[] = {", sizes);
        for (int i = 0; i < op->nout; i++)
            out(E, "%s%s", i ? ", " : "", ptr(E, op->out[i]));
        out(E, "};\n        st = lg_split_forward(ctx, n * %zu, %d, sizes, %s, outputs);\n    }\n", outer, op->nout,
            ptr(E, x));
        call_end(E);
        break;
    }
    case LG_OP_FLATTEN:
    case LG_OP_RESHAPE:
        where(E, op, ir_fmt(E->p, "%s = %s(%s): the same memory", y->name, ir_kind_name(op->kind), x->name));
        break;
    case LG_OP_SOFTMAX:
    case LG_OP_LOG_SOFTMAX:
        where(E, op, ir_fmt(E->p, "%s = %s(%s)", y->name, ir_kind_name(op->kind), x->name));
        out(E, "    {\n        lg_axis_dims d = %s;\n", axis_dims(E, x, op->a.dim));
        out(E, "        st = lg_%s_forward(ctx, &d, %s, %s);\n    }\n", ir_kind_name(op->kind), ptr(E, x),
            ptr(E, y));
        call_end(E);
        break;
    case LG_OP_ADD:
    case LG_OP_MUL:
        where(E, op, ir_fmt(E->p, "%s = %s(%s, %s)", y->name, ir_kind_name(op->kind), x->name, op->in[1]->name));
        out(E, "    st = lg_%s_forward(ctx, %s, %s, %s, %s);\n", ir_kind_name(op->kind), count_expr(E, y),
            ptr(E, x), ptr(E, op->in[1]), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_SCALE:
        where(E, op, ir_fmt(E->p, "%s = %g * %s", y->name, op->a.by, x->name));
        out(E, "    st = lg_scale_%s(ctx, %s, %.17g, %s, %s);\n", op->backward ? "backward" : "forward",
            count_expr(E, y), op->a.by, ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_MEAN:
    case LG_OP_SUM:
        where(E, op, ir_fmt(E->p, "%s = %s(%s)", y->name, ir_kind_name(op->kind), x->name));
        out(E, "    st = lg_%s_forward(ctx, %s, %s, %s);\n", ir_kind_name(op->kind), count_expr(E, x),
            ptr(E, x), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_CROSS_ENTROPY:
        where(E, op, ir_fmt(E->p, "%s = cross_entropy(%s, %s)", y->name, x->name, op->in[1]->name));
        out(E, "    st = lg_cross_entropy_forward(ctx, &%s, n, %s, %s, NULL, %s);\n", dn, ptr(E, x),
            ptr(E, op->in[1]), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_MSE_LOSS:
    case LG_OP_L1_LOSS:
    case LG_OP_BCE_WITH_LOGITS:
    case LG_OP_SMOOTH_L1_LOSS: {
        const char *k = op->kind == LG_OP_BCE_WITH_LOGITS ? "bce_with_logits" : ir_kind_name(op->kind);
        where(E, op, ir_fmt(E->p, "%s = %s(%s, %s)", y->name, ir_kind_name(op->kind), x->name, op->in[1]->name));
        out(E, "    st = lg_%s_forward(ctx, %s, %s, ", k, count_expr(E, x),
            op->a.reduction ? "LG_REDUCE_SUM" : "LG_REDUCE_MEAN");
        if (op->kind == LG_OP_SMOOTH_L1_LOSS)
            out(E, "%.9g, ", op->a.beta);
        out(E, "%s, %s, %s);\n", ptr(E, x), ptr(E, op->in[1]), ptr(E, y));
        call_end(E);
        break;
    }
    case LG_OP_ACCURACY:
        where(E, op, ir_fmt(E->p, "%s = accuracy(%s, %s)", y->name, x->name, op->in[1]->name));
        out(E, "    st = lg_accuracy(ctx, n, %d, %s, %s, %s);\n", x->dim[x->ndim - 1], ptr(E, x),
            ptr(E, op->in[1]), ptr(E, y));
        call_end(E);
        break;
    case LG_OP_TOPK_ACCURACY:
        where(E, op, ir_fmt(E->p, "%s = topk_accuracy(%s, %s, k: %d)", y->name, x->name, op->in[1]->name, op->a.k));
        out(E, "    st = lg_topk_accuracy(ctx, n, %d, %d, %s, %s, %s);\n", x->dim[x->ndim - 1], op->a.k,
            ptr(E, x), ptr(E, op->in[1]), ptr(E, y));
        call_end(E);
        break;

    /* ---- backward ---- */
    case IR_SEED:
        out(E, "    // d loss / d loss = 1\n");
        out(E, "    %s[0] = 1.0f;\n", ptr(E, y));
        break;
    case IR_CROSS_ENTROPY_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_cross_entropy_backward(ctx, &%s, n, %s, %s, NULL, %s, %s);\n", dn, ptr(E, op->in[1]),
            ptr(E, op->in[2]), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_MSE_LOSS_BWD:
    case IR_L1_LOSS_BWD:
    case IR_BCE_WITH_LOGITS_BWD:
    case IR_SMOOTH_L1_LOSS_BWD: {
        IrKind fk = op->fwd->kind;
        const char *k = fk == LG_OP_BCE_WITH_LOGITS ? "bce_with_logits" : ir_kind_name(fk);
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_%s_backward(ctx, %s, %s, ", k, count_expr(E, op->in[1]),
            op->a.reduction ? "LG_REDUCE_SUM" : "LG_REDUCE_MEAN");
        if (fk == LG_OP_SMOOTH_L1_LOSS)
            out(E, "%.9g, ", op->a.beta);
        out(E, "%s, %s, %s, %s);\n", ptr(E, op->in[1]), ptr(E, op->in[2]), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    }
    case IR_LINEAR_BWD: {
        IrValue *fx = op->in[1];
        size_t rows = fx->batched ? numel(fx) / (size_t)fx->dim[fx->ndim - 1] : 1;
        where(E, op, ir_fmt(E->p, "d %s: weight and bias gradients += , input gradient =", layer));
        out(E, "    st = lg_linear_backward(ctx, &%s, n * %zu, %s, %s, %s, %s, %s, %s);\n", dn, rows,
            ptr(E, fx), ptr(E, op->in[2]), ptr(E, op->in[0]), ptr(E, y), ptr(E, op->in[3]),
            ptr(E, op->in[4]));
        call_end(E);
        break;
    }
    case IR_CONV2D_BWD:
        where(E, op, ir_fmt(E->p, "d %s: weight and bias gradients += , input gradient =", layer));
        out(E, "    st = lg_conv2d_backward(ctx, &%s, n, %s, %s, %s, %s, %s, %s, ws, ws_bytes);\n", dn,
            ptr(E, op->in[1]), ptr(E, op->in[2]), ptr(E, op->in[0]), ptr(E, y), ptr(E, op->in[3]),
            ptr(E, op->in[4]));
        call_end(E);
        break;
    case IR_BATCH_NORM_BWD:
        where(E, op, ir_fmt(E->p, "d %s", layer));
        out(E, "    st = lg_batch_norm_backward(ctx, &%s, n, %s, %s, %s, %s, %s, %s, %s, %s);\n", dn,
            ptr(E, op->in[1]), op->in[2] ? ptr(E, op->in[2]) : "NULL", ptr(E, op->in[3]),
            ptr(E, op->in[4]), ptr(E, op->in[0]), ptr(E, y), ptr(E, op->in[5]), ptr(E, op->in[6]));
        call_end(E);
        break;
    case IR_RELU_BWD:
        /* relu's output is positive exactly where its input is: it stands
         * for the input, which the fused producer did not keep */
        where(E, op, ir_fmt(E->p, "d relu -> %s", op->fwd->in[0]->name));
        out(E, "    st = lg_relu_backward(ctx, %s, %s, %s, %s, %s);\n", count_expr(E, op->in[1]),
            ptr(E, op->in[1]), ptr(E, op->in[1]), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_SIGMOID_BWD:
    case IR_TANH_BWD: {
        const char *k = op->kind == IR_SIGMOID_BWD ? "sigmoid" : "tanh";
        where(E, op, ir_fmt(E->p, "d %s", k));
        out(E, "    st = lg_%s_backward(ctx, %s, NULL, %s, %s, %s);\n", k, count_expr(E, op->in[1]),
            ptr(E, op->in[1]), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    }
    case IR_SILU_BWD:
        where(E, op, "d silu");
        out(E, "    st = lg_silu_backward(ctx, %s, %s, NULL, %s, %s);\n", count_expr(E, op->in[1]),
            ptr(E, op->in[1]), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_LEAKY_RELU_BWD:
        where(E, op, "d leaky_relu");
        out(E, "    st = lg_leaky_relu_backward(ctx, %s, %.9g, %s, NULL, %s, %s);\n", count_expr(E, op->in[1]),
            op->a.slope, ptr(E, op->in[1]), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_GELU_BWD:
        where(E, op, "d gelu");
        out(E, "    st = lg_gelu_backward(ctx, %s, %d, %s, NULL, %s, %s);\n", count_expr(E, op->in[1]),
            op->a.approximate, ptr(E, op->in[1]), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_DROPOUT_BWD:
        where(E, op, "d dropout");
        out(E, "    st = lg_dropout_backward(ctx, %s, %.9g, 1, (const uint8_t *)%s, %s, %s);\n",
            count_expr(E, op->in[0]), op->a.p, ptr(E, op->in[1]), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_SOFTMAX_BWD:
    case IR_LOG_SOFTMAX_BWD: {
        const char *k = op->kind == IR_SOFTMAX_BWD ? "softmax" : "log_softmax";
        where(E, op, ir_fmt(E->p, "d %s", k));
        out(E, "    {\n        lg_axis_dims d = %s;\n", axis_dims(E, op->in[1], op->a.dim));
        out(E, "        st = lg_%s_backward(ctx, &d, %s, %s, %s);\n    }\n", k, ptr(E, op->in[1]),
            ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    }
    case IR_MAX_POOL2D_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_max_pool2d_backward(ctx, &%s, n, %s, %s, %s);\n", dn, ptr(E, op->in[1]),
            ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_AVG_POOL2D_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_avg_pool2d_backward(ctx, &%s, n, %s, %s);\n", dn, ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_GLOBAL_AVG_POOL_BWD: {
        IrValue *fx = op->fwd->in[0];
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_global_avg_pool_backward(ctx, n, %d, %zu, %s, %s);\n", fx->dim[0],
            numel(fx) / (size_t)fx->dim[0], ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    }
    case IR_LAYER_NORM_BWD: {
        IrValue *fx = op->in[1];
        size_t D = (size_t)fx->dim[fx->ndim - 1], rows = numel(fx) / D;
        where(E, op, ir_fmt(E->p, "d %s", layer));
        out(E, "    {\n        lg_layer_norm_dims d = {(int)(n * %zu), %zu, %s, %d};\n", rows, D,
            flit(E, op->a.eps), op->a.affine);
        out(E, "        st = lg_layer_norm_backward(ctx, &d, %s, %s, %s, %s, %s, %s, %s, %s);\n    }\n",
            ptr(E, fx), op->in[2] ? ptr(E, op->in[2]) : "NULL", ptr(E, op->in[3]), ptr(E, op->in[4]),
            ptr(E, op->in[0]), ptr(E, y), ptr(E, op->in[5]), ptr(E, op->in[6]));
        call_end(E);
        break;
    }
    case IR_ADAPTIVE_AVG_POOL2D_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_adaptive_avg_pool2d_backward(ctx, &%s, n, %s, %s);\n", dn, ptr(E, op->in[0]),
            ptr(E, y));
        call_end(E);
        break;
    case IR_UPSAMPLE_NEAREST_BWD: {
        IrValue *fx = op->fwd->in[0];
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_upsample_nearest_backward(ctx, n, %d, %d, %d, %d, %s, %s);\n", fx->dim[0], fx->dim[1],
            fx->dim[2], op->a.scale, ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    }
    case IR_TRANSPOSE_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    {\n        lg_transpose_dims d = %s;\n",
            transpose_dims(E, op->fwd->in[0], op->a.dim0, op->a.dim1));
        out(E, "        st = lg_transpose_backward(ctx, &d, %s, %s);\n    }\n", ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_CONCAT_BWD: {
        size_t outer;
        const char *sizes;
        concat_layout(E, op->fwd->in, op->fwd->nin, op->a.dim, &outer, &sizes);
        where(E, op, ir_fmt(E->p, "d %s: split into its pieces", op->fwd->out[0]->name));
        out(E, "    {\n        const size_t sizes[] = {%s};\n        float *const outputs[] = {", sizes);
        for (int i = 0; i < op->nout; i++)
            out(E, "%s%s", i ? ", " : "", ptr(E, op->out[i]));
        out(E, "};\n        st = lg_split_forward(ctx, n * %zu, %d, sizes, %s, outputs);\n    }\n", outer, op->nout,
            ptr(E, op->in[0]));
        call_end(E);
        break;
    }
    case IR_ZERO:
        out(E, "    // %s: no use downstream, a zero gradient\n", y->name);
        out(E, "    memset(%s, 0, %s * sizeof(float));\n", ptr(E, y), count_expr(E, y));
        break;
    case IR_SPLIT_BWD: {
        size_t outer;
        const char *sizes;
        concat_layout(E, op->fwd->out, op->fwd->nout, op->a.dim, &outer, &sizes);
        where(E, op, ir_fmt(E->p, "d split: concatenate the pieces' gradients into d %s", op->fwd->in[0]->name));
        out(E, "    {\n        const size_t sizes[] = {%s};\n        const float *const inputs[] = {", sizes);
        for (int i = 0; i < op->nin; i++)
            out(E, "%s%s", i ? ", " : "", ptr(E, op->in[i]));
        out(E, "};\n        st = lg_concat_forward(ctx, n * %zu, %d, sizes, inputs, %s);\n    }\n", outer, op->nin,
            ptr(E, y));
        call_end(E);
        break;
    }
    case IR_MUL_BWD: {
        /* one side's gradient per op: da = dy * b or db = dy * a */
        where(E, op, op->a.k ? "d mul, second input" : "d mul, first input");
        out(E, "    st = lg_mul_backward(ctx, %s, %s, %s, %s, %s, %s);\n", count_expr(E, op->in[0]),
            ptr(E, op->in[1]), ptr(E, op->in[2]), ptr(E, op->in[0]), op->a.k ? "NULL" : ptr(E, y),
            op->a.k ? ptr(E, y) : "NULL");
        call_end(E);
        break;
    }
    case IR_MEAN_BWD:
    case IR_SUM_BWD:
        where(E, op, ir_fmt(E->p, "d %s", op->fwd->out[0]->name));
        out(E, "    st = lg_%s_backward(ctx, %s, %s, %s);\n", op->kind == IR_MEAN_BWD ? "mean" : "sum",
            count_expr(E, y), ptr(E, op->in[0]), ptr(E, y));
        call_end(E);
        break;
    case IR_ACCUM:
        where(E, op, ir_fmt(E->p, "gradient sum for %s", op->fwd ? op->fwd->in[0]->name : "?"));
        if (op->in_place)
            out(E, "    st = lg_accumulate(ctx, %s, %s, %s);\n", count_expr(E, y), ptr(E, op->in[1]), ptr(E, y));
        else
            out(E, "    st = lg_add_forward(ctx, %s, %s, %s, %s);\n", count_expr(E, y), ptr(E, op->in[0]),
                ptr(E, op->in[1]), ptr(E, y));
        call_end(E);
        break;
    default:
        return emit_detect(E, g, op);
    }
    /* a relu fused into its producer runs in place on the producer's output */
    if (op->fused_relu) {
        out(E, "    st = lg_relu_forward(ctx, %s, %s, %s);\n", count_expr(E, y), ptr(E, y), ptr(E, y));
        call_end(E);
    }
    return 0;
}

/* ---- steps ------------------------------------------------------------------------- */

static int uses_conv(const IrGraph *g) {
    for (int i = 0; i < g->nops; i++)
        if (!g->ops[i]->dead && (g->ops[i]->kind == LG_OP_CONV2D || g->ops[i]->kind == IR_CONV2D_BWD))
            return 1;
    return 0;
}

static int targets_max(const IrGraph *g) {
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i]->storage == IR_ST_INPUT && !strcmp(g->values[i]->name, "targets"))
            return g->values[i]->dim[0];
    return 0;
}

/* predict of a detector: rows (x1, y1, x2, y2, score, label) per detection,
 * label -1 past the image's count. */
static void emit_predict_detections(Emit *E, IrValue *out0) {
    IrOp *d = out0->def;
    int D = out0->dim[0];
    out(E, "    // outputs: per image %d rows (x1, y1, x2, y2, score, label), label -1 past its count\n", D);
    out(E, "    for (size_t i = 0; i < n * %d; i++) {\n", D);
    out(E, "        float *o = io->outputs + i * 6;\n");
    out(E, "        memcpy(o, %s + i * 4, 4 * sizeof(float));\n", ptr(E, d->out[0]));
    out(E, "        o[4] = %s[i];\n        o[5] = (float)%s[i];\n    }\n", ptr(E, d->out[1]), ptr(E, d->out[2]));
}

static int emit_step(Emit *E, IrGraph *g, const char *fn) {
    name_values(E, g);
    const char *m = E->prefix;
    out(E, "/* %s step (%s:%d): %d forward ops", g->name, g->file ? g->file : "?", g->line, g->nforward ? g->nforward : g->nops);
    if (g->nforward && g->nops > g->nforward)
        out(E, ", %d backward ops", g->nops - g->nforward);
    out(E, ".\n * Activations: %zu floats per sample (%zu without reuse), %d fused, %d in place. */\n",
        g->arena_per_sample, g->naive_per_sample, g->nfused, g->ninplace);
    out(E, "static lg_status %s(lg_step_io *io, const lg_batch *b) {\n", fn);
    out(E, "    lg_ctx *ctx = io->ctx;\n");
    out(E, "    const size_t n = (size_t)b->n;          // samples in this batch\n");
    out(E, "    const size_t B = (size_t)b->batch_size; // the arena's layout unit\n");
    int has_params = 0, has_grads = 0, has_fixed = 0, has_act = 0;
    for (int i = 0; i < g->nvalues; i++) {
        IrValue *v = g->values[i];
        if (v->first < 0 && v->storage == IR_ST_ARENA)
            continue;
        has_params |= v->storage == IR_ST_PARAM;
        has_grads |= v->storage == IR_ST_GRAD;
        has_fixed |= v->storage == IR_ST_ARENA && !v->batched && v->first >= 0;
        has_act |= v->storage == IR_ST_ARENA && v->batched && v->first >= 0;
    }
    if (has_params)
        out(E, "    float *params = io->params;\n");
    if (has_grads)
        out(E, "    float *grads = io->grads;\n");
    if (has_fixed)
        out(E, "    float *fixed = (float *)io->arena;\n");
    int conv = uses_conv(g);
    if (conv || has_act)
        out(E, "    char *ws = (char *)io->arena + %s_FIXED_BYTES;\n", m);
    if (conv)
        out(E, "    const size_t ws_bytes = %s_ws_per_sample * B;\n", m);
    if (has_act)
        out(E, "    float *act = (float *)(ws + %s_ws_per_sample * B);\n", m);
    if (!has_act && !conv)
        out(E, "    (void)B;\n");
    out(E, "    lg_status st;\n");
    for (int i = 0; i < g->nvalues; i++) {
        IrValue *v = g->values[i];
        if (v->storage != IR_ST_ARENA || v->first < 0)
            continue;
        const char *t = v->dtype == IR_I32 ? "int32_t" : "float";
        if (v->batched)
            out(E, "    %s *%s = %s(act + %zu * B); // %s\n", t, v->cname,
                v->dtype == IR_I32 ? "(int32_t *)" : "", v->offset, shape_comment(E, v));
        else
            out(E, "    %s *%s = %s(fixed + %zu); // %s\n", t, v->cname,
                v->dtype == IR_I32 ? "(int32_t *)" : "", v->offset, shape_comment(E, v));
    }
    if (reads_targets(g))
        out(E, "    // b.targets: the batch's ground truth boxes, at most %d per image; the data set's\n"
               "    // class k is detection class k + 1 (0 is the background)\n"
               "    const lg_det_targets tg = {.max_boxes = b->max_boxes, .boxes = b->boxes, .labels = b->box_label,\n"
               "                               .difficult = b->box_difficult, .count = b->box_count,\n"
               "                               .label_offset = 1, .skip_difficult = 0};\n",
            targets_max(g));
    out(E, "\n");
    int errors = 0;
    for (int i = 0; i < g->nops; i++) {
        IrOp *op = g->ops[i];
        if (op->dead)
            continue;
        if (i == g->nforward && g->nforward && g->nops > g->nforward)
            out(E, "\n    /* ---- backward: generated at compile time, last layer first ---- */\n");
        if (emit_op(E, g, op)) {
            fprintf(E->ctx->err, "%s:%d: error: the code generator has no kernel call for '%s' yet\n",
                    op->file ? op->file : "?", op->line, ir_kind_name(op->kind));
            errors++;
        }
    }
    out(E, "\n");
    if (g->loss)
        out(E, "    io->loss = %s[0];\n", ptr(E, g->loss));
    for (int i = 0; i < g->nlogs; i++)
        out(E, "    io->logs[%d] = %s[0]; // %s\n", i, ptr(E, g->logs[i].value), g->logs[i].name);
    if (g->step == IR_STEP_PREDICT && g->output && g->output->def && g->output->def->kind == LG_OP_DETECTIONS)
        emit_predict_detections(E, g->output);
    else if (g->step == IR_STEP_PREDICT && g->output)
        out(E, "    memcpy(io->outputs, %s, n * %zu * sizeof(float));\n", ptr(E, g->output),
            numel(g->output));
    out(E, "    return LG_OK;\n}\n\n");
    return errors;
}

/* ---- tables ------------------------------------------------------------------------- */

static void name_params(Emit *E) {
    IrProgram *p = E->p;
    E->param_names = calloc((size_t)p->nparams + 1, sizeof *E->param_names);
    for (int i = 0; i < p->nparams; i++) {
        const char *nm = c_ident(E, p->params[i].name, 1);
        for (int j = 0; j < i; j++)
            if (!strcmp(E->param_names[j], nm))
                nm = ir_fmt(E->p, "%s_%d", nm, i);
        E->param_names[i] = nm;
    }
}

static void emit_param_enum(Emit *E) {
    IrProgram *p = E->p;
    out(E, "/* Parameter block: every tensor's offset in floats, PyTorch's state_dict\n"
           " * names and order (trainable tensors first). Gradients use the same\n"
           " * offsets in the gradient block. */\n");
    out(E, "enum {\n");
    for (int i = 0; i < p->nparams; i++) {
        out(E, "    %s = %zu, // %s ", E->param_names[i], p->params[i].offset, p->params[i].name);
        out(E, "[");
        for (int d = 0; d < p->params[i].ndim; d++)
            out(E, "%s%d", d ? ", " : "", p->params[i].dim[d]);
        out(E, "]\n");
    }
    out(E, "    %s_N_FLOATS = %zu,\n", E->prefix, p->param_floats);
    out(E, "    %s_N_TRAIN = %zu,\n", E->prefix, p->grad_floats);
    out(E, "};\n\n");
}

static void emit_step_names(Emit *E) {
    static const char *fns[IR_STEP_COUNT] = {"train_step", "validation_step", "test_step", "predict_step"};
    for (int i = 0; i < IR_STEP_COUNT; i++)
        E->step_fn[i] = E->p->graphs[i].present ? ir_fmt(E->p, "%s_%s", E->lower, fns[i]) : NULL;
}

/* The VOC mAP of validation and test: the steps add each batch to a file-scope
 * evaluator; eval_begin starts it, eval_end computes the epoch's mAP and each
 * class's AP into the logged values (lg_model_def.eval_begin / eval_end). */
static void emit_eval_hooks(Emit *E) {
    IrProgram *p = E->p;
    int any = 0;
    for (int s = IR_STEP_VALIDATE; s <= IR_STEP_TEST; s++)
        for (int i = 0; p->graphs[s].present && i < p->graphs[s].nops; i++)
            any |= p->graphs[s].ops[i]->kind == LG_OP_VOC_MAP;
    if (!any)
        return;
    static const char *stage_enum[IR_STEP_COUNT] = {"LG_STAGE_TRAIN", "LG_STAGE_VALIDATE", "LG_STAGE_TEST",
                                                    "LG_STAGE_PREDICT"};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            out(E, "/* VOC mAP over a whole evaluation epoch: the trainer calls this before the\n"
                   " * first batch, the steps add every batch's detections and ground truth ... */\n"
                   "static lg_status %s_eval_begin(lg_stage stage, lg_error *err) {\n", E->lower);
        else
            out(E, "/* ... and this after the last: the epoch's mAP and each class's AP replace\n"
                   " * the logged values (means[], in the order of the stage's logs). */\n"
                   "static lg_status %s_eval_end(lg_stage stage, double *means, lg_error *err) {\n", E->lower);
        for (int s = IR_STEP_VALIDATE; s <= IR_STEP_TEST; s++) {
            IrGraph *g = &p->graphs[s];
            for (int i = 0; g->present && i < g->nops; i++) {
                IrOp *op = g->ops[i];
                if (op->kind != LG_OP_VOC_MAP)
                    continue;
                const char *ev = det_name(E, g, op, "eval");
                int K = op->a.k, li = -1;
                for (int k = 0; k < g->nlogs && li < 0; k++)
                    if (g->logs[k].value == op->out[0])
                        li = k;
                out(E, "    if (stage == %s) {%s\n", stage_enum[s], src_comment(E, op));
                if (pass == 0) {
                    out(E, "        lg_voc_eval_free(&%s);\n        lg_status st = lg_voc_eval_init(&%s, %d, err);\n"
                           "        if (st) return st;\n    }\n", ev, ev, K);
                    continue;
                }
                out(E, "        static const lg_voc_map_config cfg = {.iou_thresh = %s, .use_07_metric = %d, "
                       ".pixel_offset = %d};\n",
                    flit(E, op->a.thresh), op->a.use_07, op->a.pixel_offset);
                out(E, "        float ap[%d], map;\n", K);
                out(E, "        lg_status st = lg_voc_eval_compute(&%s, &cfg, ap, &map, err);\n", ev);
                out(E, "        lg_voc_eval_free(&%s);\n        if (st) return st;\n", ev);
                if (li >= 0) {
                    out(E, "        means[%d] = map; // %s\n", li, g->logs[li].name);
                    int c = 1;
                    for (int k = li + 1; k < g->nlogs && c < K && g->logs[k].value == op->out[0]; k++, c++)
                        out(E, "        means[%d] = ap[%d]; // %s\n", k, c, g->logs[k].name);
                }
                out(E, "        (void)ap;\n    }\n");
            }
        }
        out(E, "    (void)stage;\n    (void)err;%s\n    return LG_OK;\n}\n\n", pass ? "\n    (void)means;" : "");
    }
}

int emit_c_file(Emit *E) {
    IrProgram *p = E->p;
    emit_step_names(E);
    name_params(E);
    /* steps first into a buffer: they declare the dims structs */
    char *steps = NULL;
    size_t nsteps = 0;
    FILE *main_f = E->f;
    E->f = open_memstream(&steps, &nsteps);
    int errors = 0;
    for (int i = 0; i < IR_STEP_COUNT; i++)
        if (E->step_fn[i])
            errors += emit_step(E, &p->graphs[i], E->step_fn[i]);
    fclose(E->f);
    E->f = main_f;

    emit_banner(E);
    out(E, "#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n\n");
    out(E, "#include <lgen/data.h>\n%s#include <lgen/kernels.h>\n#include <lgen/trainer.h>\n\n",
        E->detect ? "#include <lgen/detect.h>\n" : "");
    size_t fixed = 0, per_sample = 0;
    for (int i = 0; i < IR_STEP_COUNT; i++) {
        if (!p->graphs[i].present)
            continue;
        if (p->graphs[i].arena_fixed > fixed)
            fixed = p->graphs[i].arena_fixed;
        if (p->graphs[i].arena_per_sample > per_sample)
            per_sample = p->graphs[i].arena_per_sample;
    }
    out(E, "/* The activation arena (lg_step_io.arena): scalars first, then the\n"
           " * convolution workspace, then the activations and gradients of a step at\n"
           " * the offsets the compile-time plan chose (per sample; times B). */\n");
    out(E, "#define %s_FIXED_BYTES (%zu * sizeof(float))\n", E->prefix, fixed);
    out(E, "#define %s_ACT_BYTES_PER_SAMPLE (%zu * sizeof(float))\n\n", E->prefix, per_sample);
    emit_param_enum(E);
    out(E, "/* Layer dimensions, fixed by the spec. */\n");
    for (int i = 0; i < E->ndims; i++) {
        out(E, "static const %s %s = %s;", E->dims[i].type, E->dims[i].name, E->dims[i].body);
        if (E->dims[i].file)
            out(E, " // %s:%d", E->dims[i].file, E->dims[i].line);
        out(E, "\n");
    }
    if (E->ndecls)
        out(E, "\n/* Detection: configurations (torchvision's defaults unless the spec sets them). */\n");
    for (int i = 0; i < E->ndecls; i++)
        out(E, "%s\n", E->decls[i]);
    out(E, "\n/* Convolution scratch per sample of a batch, from the kernels' own\n"
           " * workspace functions (set once by main before the trainer starts). */\n");
    out(E, "static size_t %s_ws_per_sample;\n\n", E->prefix);
    fwrite(steps, 1, nsteps, E->f);
    free(steps);
    emit_eval_hooks(E);
    emit_tables(E);
    /* main */
    out(E, "int main(int argc, char **argv) {\n");
    out(E, "    size_t ws = 0;\n");
    int nconv = 0;
    for (int i = 0; i < E->ndims; i++)
        if (E->dims[i].is_conv) {
            out(E, "    if (lg_conv2d_workspace(&%s, 1) > ws)\n        ws = lg_conv2d_workspace(&%s, 1);\n",
                E->dims[i].name, E->dims[i].name);
            nconv++;
        }
    if (E->nws)
        out(E, "    /* the detection ops' scratch (per image, or for one image of a batch) */\n");
    for (int i = 0; i < E->nws; i++)
        out(E, "    if (%s > ws)\n        ws = %s;\n", E->ws_exprs[i], E->ws_exprs[i]);
    out(E, "    %s_ws_per_sample = (ws + 63) / 64 * 64;\n", E->prefix);
    out(E, "    %s_def.arena_per_sample = %s_ACT_BYTES_PER_SAMPLE + %s_ws_per_sample;\n", E->lower,
        E->prefix, E->prefix);
    /* lg_conv2d_prepare / lg_linear_prepare: the kernels' oneDNN primitives
     * and JIT code exist before the first step, for a batch of any size
     * (kernels.h) */
    int nlinear = 0;
    for (int i = 0; i < E->ndims; i++)
        nlinear += E->dims[i].is_linear;
    if (nconv || nlinear) {
        out(E, "    /* create each conv and linear layer's kernels now (oneDNN primitives for a\n"
               "     * batch of any size, their scratch memory, JIT code), so that no training\n"
               "     * step allocates */\n");
        out(E, "    lg_error prepare_err = {0};\n");
        for (int i = 0; i < E->ndims; i++)
            if (E->dims[i].is_conv || E->dims[i].is_linear)
                out(E,
                    "    if (%s(&%s, &prepare_err) != LG_OK) {\n"
                    "        fprintf(stderr, \"%s: error: %%s\\n\", prepare_err.msg);\n"
                    "        return 1;\n"
                    "    }\n",
                    E->dims[i].is_conv ? "lg_conv2d_prepare" : "lg_linear_prepare", E->dims[i].name, E->lower);
    }
    out(E, "    return lg_main(argc, argv, &%s_def);\n}\n", E->lower);
    free(E->decls);
    free(E->ws_exprs);
    E->decls = E->ws_exprs = NULL;
    E->ndecls = E->nws = E->capdecls = E->capws = 0;
    return errors;
}
