/* emit_cuda_detect.c — the CUDA target's calls for the detection ops of
 * Faster R-CNN (anchors, proposals, roi_sample, roi_align, the RPN and
 * Fast R-CNN losses, detections, voc_map): one lg_cuda_* call per op, as
 * emit_cuda.c does for the dense ops. An op with no call yet returns 1 and
 * emit_cuda.c reports it with its spec line. */
#include "emit_cuda_internal.h"

#include <math.h>

#include "lgen/cuda.h"

/* ---- proposals, RoI sampling, detections, VOC mAP (runtime/cuda/boxes.cu) ----
 * Each becomes one call over the whole batch, its configuration a local
 * constant spelled once (the same text sizes its workspace at init, a part
 * of the arena's det_ws). They compute in float32: under mixed precision
 * their batched inputs in the compute dtype go through in32 (below). */

/* The box head coder weights as emit_c.c's coder_body. */
static const char *box_coder(Emit *E, const IrAttrs *a) {
    double w[4] = {10, 10, 5, 5};
    for (int i = 0; i < 4 && i < a->nfloats; i++)
        w[i] = a->floats[i];
    return ir_fmt(E->p, "{%s, %s, %s, %s, 4.135166556742356f}", flit(E, w[0]), flit(E, w[1]), flit(E, w[2]),
                  flit(E, w[3]));
}

/* Mixed precision: the detection kernels compute in float32, so each
 * batched float input in the compute dtype (objectness, deltas, the FPN
 * maps, the box head's outputs, RoIAlign's incoming gradient) is
 * converted into a float32 slice of gpu.cvt_in before the call, and each
 * batched output the dense ops read (RoIAlign's output, the input
 * gradients) is written to a slice of gpu.cvt_out and converted back to
 * dt after it. Several values of one op take consecutive slices, `*off`
 * floats per sample into the buffer (a multiple of 64: every slice stays
 * 256-byte aligned); the arena's two buffers are sized for the largest
 * sum (X->cvt). Everything else (anchors, proposals, RoIs, labels, box
 * targets, detections, the losses) is float32 in every precision. */
static size_t cvt_slice(CudaEmit *X, const IrValue *v, size_t *off) {
    size_t at = *off;
    *off += (numel(v) + 63) / 64 * 64;
    if (*off > X->cvt)
        X->cvt = *off;
    return at;
}

/* A float32 view of v: v itself, or under mixed precision its conversion
 * into gpu.cvt_in (emitted here, before the call). */
static const char *in32(CudaEmit *X, IrValue *v, size_t *off) {
    Emit *E = X->E;
    if (!v || !v->batched)
        return dptr(E, v);
    size_t at = cvt_slice(X, v, off);
    const char *buf = ir_fmt(E->p, "gpu.cvt_in + n * %zu", at);
    out(E, "    if (dt != LG_CUDA_F32 && (st = lg_cuda_convert(c, LG_CUDA_F32, %s, dt, %s, %s, err)) != LG_OK)\n"
           "        return st;\n", buf, dptr(E, v), count(E, v));
    return ir_fmt(E->p, "(dt == LG_CUDA_F32 ? %s : %s)", dptr(E, v), buf);
}

/* Where a kernel writes v in float32: v itself, or under mixed precision
 * a slice of gpu.cvt_out that back_dt converts into v after the call. */
static const char *out32(CudaEmit *X, IrValue *v, size_t *off, size_t *at) {
    Emit *E = X->E;
    if (!v || !v->batched)
        return dptr(E, v);
    *at = cvt_slice(X, v, off);
    return ir_fmt(E->p, "(dt == LG_CUDA_F32 ? %s : gpu.cvt_out + n * %zu)", dptr(E, v), *at);
}

static void back_dt(CudaEmit *X, IrValue *v, size_t at) {
    Emit *E = X->E;
    if (!v || !v->batched)
        return;
    out(E, "    if (dt != LG_CUDA_F32 && (st = lg_cuda_convert(c, dt, %s, LG_CUDA_F32, gpu.cvt_out + n * %zu, %s, err)) != LG_OK)\n"
           "        return st;\n", dptr(E, v), at, count(E, v));
}

/* The evaluator NAME.c keeps for a voc_map value (emit_c.c's det_name). */
static const char *voc_eval_name(Emit *E, IrGraph *g, IrOp *op) {
    const char *s = op->out[0]->name;
    char *id = ir_fmt(E->p, "%s%s", s[0] >= '0' && s[0] <= '9' ? "_" : "", s);
    for (char *q = id; *q; q++)
        if (!ident_char(*q))
            *q = '_';
    return ir_fmt(E->p, "%s_%s_eval", g->name, id);
}

static int emit_boxes_op(CudaEmit *X, IrGraph *g, IrOp *op) {
    Emit *E = X->E;
    IrValue *y = op->nout ? op->out[0] : NULL;
    IrValue *x = op->nin ? op->in[0] : NULL;
    switch (op->kind) {
    case LG_OP_PROPOSALS: {
        IrOp *anc = op->in[2]->def;
        char lv[256];
        size_t k = 0;
        for (int l = 0; l < anc->nin && k < sizeof lv; l++) {
            IrValue *m = anc->in[l];
            int ns = anc->nin == 1 ? anc->a.nsizes : 1;
            k += (size_t)snprintf(lv + k, sizeof lv - k, "%s%d", l ? ", " : "",
                                  m->dim[1] * m->dim[2] * ns * anc->a.nfloats);
        }
        const char *cfg = ir_fmt(E->p,
                                 "{.levels = %d, .per_level = {%s}, .pre_nms_top_n = %d, .post_nms_top_n = %d,\n"
                                 "            .nms_thresh = %s, .min_size = %s, .score_thresh = %s, .image_h = %d, .image_w = %d}",
                                 anc->nin, lv, op->a.top_n, op->a.post_top_n, flit(E, op->a.nms_thresh),
                                 flit(E, op->a.min_size), flit(E, op->a.thresh), op->a.image_h, op->a.image_w);
        add_det_ws(X, ir_fmt(E->p, "lg_cuda_proposals_workspace(&(const lg_cuda_proposals_cfg)%s, (int)Bp)", cfg));
        where(E, op, ir_fmt(E->p, "%s = proposals(%s, %s, %s): top-n per level, decode, NMS per level", y->name,
                            x->name, op->in[1]->name, op->in[2]->name));
        size_t off = 0;
        const char *obj = in32(X, x, &off), *deltas = in32(X, op->in[1], &off);
        out(E, "    {\n        static const lg_cuda_proposals_cfg d = %s;\n", cfg);
        out(E, "        st = lg_cuda_proposals(c, &d, (int)n, %s, %s, %s, det_ws, %s, %s, %s, err);\n    }\n",
            obj, deltas, dptr(E, op->in[2]), dptr(E, y), dptr(E, op->out[1]),
            dptr(E, op->out[2]));
        check(E);
        return 0;
    }
    case IR_ROIS_FROM_PROPOSALS:
        where(E, op, ir_fmt(E->p, "%s: the proposals as a RoI batch (image, x1, y1, x2, y2)", y->name));
        out(E, "    st = lg_cuda_rois_from_proposals(c, %s, %s, (int)n, %d, %s, err);\n", dptr(E, x),
            dptr(E, op->in[1]), x->dim[0], dptr(E, y));
        check(E);
        return 0;
    case LG_OP_ROI_SAMPLE: {
        int P = x->dim[0], R = op->a.per_image, B = op->in[1]->dim[0];
        const char *cfg = ir_fmt(E->p,
                                 "{.P = %d, .R = %d, .fg_iou_thresh = %s, .bg_iou_thresh = %s,\n"
                                 "            .positive_fraction = %s, .coder = %s}",
                                 P, R, flit(E, op->a.fg_iou), flit(E, op->a.bg_iou), flit(E, op->a.fraction),
                                 box_coder(E, &op->a));
        add_det_ws(X, ir_fmt(E->p, "lg_cuda_roi_sample_workspace(&(const lg_cuda_roi_sample_cfg)%s, (int)Bp, %d)",
                             cfg, B));
        where(E, op, ir_fmt(E->p, "%s, %s, %s = roi_sample(%s, targets): the CPU kernel's draws", y->name,
                            op->out[1]->name, op->out[2]->name, x->name));
        out(E, "    {\n        static const lg_cuda_roi_sample_cfg d = %s;\n", cfg);
        out(E, "        st = lg_cuda_roi_sample(c, &d, (int)n, %s, %s, %s, io->seed ^ %lluu,\n"
               "                                ((uint64_t)io->epoch << 32 | (uint64_t)b->batch_index), det_ws,\n"
               "                                %s, %s, %s, err);\n    }\n",
            dptr(E, x), dptr(E, op->in[2]), targets_arg(), (unsigned long long)op->a.seed, dptr(E, y),
            dptr(E, op->out[1]), dptr(E, op->out[2]));
        check(E);
        return 0;
    }
    case LG_OP_DETECTIONS: {
        IrValue *rois = op->in[2];
        const char *cfg = ir_fmt(E->p,
                                 "{.R = %d, .K = %d, .score_thresh = %s, .nms_thresh = %s, .detections_per_img = %d,\n"
                                 "            .min_size = %s, .coder = %s, .image_h = %d, .image_w = %d}",
                                 rois->dim[0], x->dim[1], flit(E, op->a.thresh), flit(E, op->a.nms_thresh),
                                 op->a.post_top_n, flit(E, op->a.min_size), box_coder(E, &op->a), op->a.image_h,
                                 op->a.image_w);
        add_det_ws(X, ir_fmt(E->p, "lg_cuda_detections_workspace(&(const lg_cuda_detect_cfg)%s, (int)Bp)", cfg));
        where(E, op, ir_fmt(E->p, "%s = detections(%s, %s, %s): boxes, scores, labels, count", y->name, x->name,
                            op->in[1]->name, rois->name));
        size_t off = 0;
        const char *logits = in32(X, x, &off), *box = in32(X, op->in[1], &off);
        out(E, "    {\n        static const lg_cuda_detect_cfg d = %s;\n", cfg);
        out(E, "        st = lg_cuda_detections(c, &d, (int)n, %s, %s, %s, det_ws, %s, %s, %s, %s, err);\n    }\n",
            logits, box, dptr(E, rois), dptr(E, y), dptr(E, op->out[1]), dptr(E, op->out[2]),
            dptr(E, op->out[3]));
        check(E);
        return 0;
    }
    case LG_OP_VOC_MAP: {
        int D = x->dim[0];
        const char *ev = voc_eval_name(E, g, op);
        where(E, op, ir_fmt(E->p, "%s = voc_map(%s, targets): the detections back to the host, image by image,\n"
                                  "    // into %s.c's evaluator",
                            y->name, x->name, E->lower));
        out(E, "    for (size_t i = 0; i < n; i++) {\n");
        out(E, "        extern lg_voc_eval %s;\n", ev);
        out(E, "        float boxes[%d * 4], scores[%d];\n        int labels[%d], count;\n", D, D, D);
        out(E, "        if ((st = lg_cuda_download(c, boxes, %s + i * %d, sizeof boxes, err)) != LG_OK ||\n"
               "            (st = lg_cuda_download(c, scores, %s + i * %d, sizeof scores, err)) != LG_OK ||\n"
               "            (st = lg_cuda_download(c, labels, %s + i * %d, sizeof labels, err)) != LG_OK ||\n"
               "            (st = lg_cuda_download(c, &count, %s + i, sizeof count, err)) != LG_OK)\n"
               "            return st;\n",
            dptr(E, x), D * 4, dptr(E, op->in[2]), D, dptr(E, op->in[3]), D, dptr(E, op->in[4]));
        out(E, "        const size_t M = (size_t)b->max_boxes;\n"
               "        const lg_det_targets tgi = {.max_boxes = b->max_boxes, .boxes = b->boxes + i * M * 4,\n"
               "                                    .labels = b->box_label + i * M,\n"
               "                                    .difficult = b->box_difficult ? b->box_difficult + i * M : NULL,\n"
               "                                    .count = b->box_count + i, .label_offset = 1, .skip_difficult = 0};\n");
        out(E, "        if ((st = lg_voc_eval_add_batch(&%s, boxes, scores, labels, &count, 1, %d, &tgi, err)) != LG_OK)\n"
               "            return st;\n    }\n",
            ev, D);
        out(E, "    // the epoch's mAP replaces it (%s_eval_end)\n", E->lower);
        out(E, "    if ((st = lg_cuda_memset(c, %s, 0, sizeof(float), err)) != LG_OK)\n        return st;\n", dptr(E, y));
        return 0;
    }
    default:
        return 1;
    }
}

void emit_cuda_detections_output(CudaEmit *X, IrValue *out0) {
    Emit *E = X->E;
    IrOp *d = out0->def;
    int D = out0->dim[0];
    out(E, "    // outputs: per image %d rows (x1, y1, x2, y2, score, label), label -1 past its count\n", D);
    out(E, "    for (size_t i = 0; i < n; i++) {\n");
    out(E, "        float boxes[%d * 4], scores[%d];\n        int32_t labels[%d];\n", D, D, D);
    out(E, "        if ((st = lg_cuda_download(c, boxes, %s + i * %d, sizeof boxes, err)) != LG_OK ||\n"
           "            (st = lg_cuda_download(c, scores, %s + i * %d, sizeof scores, err)) != LG_OK ||\n"
           "            (st = lg_cuda_download(c, labels, %s + i * %d, sizeof labels, err)) != LG_OK)\n"
           "            return st;\n",
        dptr(E, d->out[0]), D * 4, dptr(E, d->out[1]), D, dptr(E, d->out[2]), D);
    out(E, "        for (size_t r = 0; r < %d; r++) {\n"
           "            float *o = io->outputs + (i * %d + r) * 6;\n"
           "            memcpy(o, boxes + 4 * r, 4 * sizeof(float));\n"
           "            o[4] = scores[r];\n            o[5] = (float)labels[r];\n        }\n    }\n",
        D, D);
}

/* ---- anchors, the RPN and Fast R-CNN losses, RoIAlign (runtime/cuda/detect.cu,
 * runtime/cuda/kernels.cu) ----
 * One call each over the batch, in float32 as the ops above (in32, out32
 * and back_dt convert under mixed precision). The RPN
 * loss's scratch space is part of the arena's det_ws. */

/* The step's index for the samplers, as emit_c.c's: epoch and batch
 * position, so that micro-batches differ and a resumed run draws the same. */
#define DET_STEP "((uint64_t)io->epoch << 32 | (uint64_t)b->batch_index)"

/* Why op has no device call (emit_cuda.c then reports the op and its line). */
static void refuse(Emit *E, IrOp *op, const char *why) {
    fprintf(E->ctx->err, "%s:%d: note: %s\n", op->file ? op->file : "?", op->line, why);
}

/* An incoming loss gradient (a device scalar), or NULL: none. */
static const char *dloss(Emit *E, IrValue *v) {
    return v ? dptr(E, v) : "NULL";
}

/* anchors: the generator's levels as an lg_cuda_anchors initialiser. */
static const char *anchors_desc(Emit *E, IrOp *op) {
    int L = op->nin;
    char buf[4096];
    size_t k = (size_t)snprintf(buf, sizeof buf, "{.levels = %d, .image_h = %d, .image_w = %d, .level = {", L,
                                op->a.image_h, op->a.image_w);
    for (int l = 0; l < L; l++) {
        IrValue *x = op->in[l];
        int ns = L == 1 ? op->a.nsizes : 1; /* one size per map, or all of them on the one map */
        k += (size_t)snprintf(buf + k, sizeof buf - k, "\n            {.feat_h = %d, .feat_w = %d, .num_sizes = %d, .sizes = {",
                              x->dim[1], x->dim[2], ns);
        for (int s = 0; s < ns; s++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", s ? ", " : "",
                                  flit(E, op->a.sizes[L == 1 ? s : l]));
        k += (size_t)snprintf(buf + k, sizeof buf - k, "}, .num_ratios = %d, .aspect_ratios = {", op->a.nfloats);
        for (int r = 0; r < op->a.nfloats; r++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", r ? ", " : "", flit(E, op->a.floats[r]));
        k += (size_t)snprintf(buf + k, sizeof buf - k, "}}%s", l + 1 < L ? "," : "");
    }
    snprintf(buf + k, sizeof buf - k, "}}");
    return ir_strdup(E->p, buf);
}

/* rpn_loss: its configuration as an lg_cuda_rpn_loss initialiser. */
static const char *rpn_desc(Emit *E, IrOp *f) {
    return ir_fmt(E->p, "{.N = (int)n, .A = %d, .fg_iou_thresh = %s, .bg_iou_thresh = %s,\n"
                        "                                 .batch_size_per_image = %d, .positive_fraction = %s, .beta = %s,\n"
                        "                                 .seed = io->seed ^ %lluu, .step = " DET_STEP "}",
                  f->in[0]->dim[0], flit(E, f->a.fg_iou), flit(E, f->a.bg_iou), f->a.per_image,
                  flit(E, f->a.fraction), flit(E, f->a.beta), (unsigned long long)f->a.seed);
}

/* roi_align: the levels as an lg_cuda_roi_align initialiser, or NULL when
 * the device kernel cannot take them (it maps boxes with torchvision's
 * canonical 224 at level 4 onto consecutive power-of-two levels). */
static const char *roi_align_desc(Emit *E, IrOp *f) {
    int L = f->nin - 1;
    if (L < 1 || L > LG_CUDA_MAX_LEVELS || f->a.canonical_scale != 224 || f->a.canonical_level != 4)
        return NULL;
    int k_min = (int)lround(-log2(f->a.floats[0]));
    for (int l = 0; l < L; l++)
        if (fabs(f->a.floats[l] - ldexp(1.0, -(k_min + l))) > 1e-9)
            return NULL;
    char buf[1024];
    size_t k = (size_t)snprintf(buf, sizeof buf,
                                "{.C = %d, .PH = %d, .PW = %d, .sampling_ratio = %d, .aligned = %d, .levels = %d, .k_min = %d,\n"
                                "                                   .H = {",
                                f->in[1]->dim[0], f->a.out_h, f->a.out_w, f->a.sampling_ratio, f->a.aligned, L, k_min);
    for (int l = 0; l < L; l++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", l ? ", " : "", f->in[l + 1]->dim[1]);
    k += (size_t)snprintf(buf + k, sizeof buf - k, "}, .W = {");
    for (int l = 0; l < L; l++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", l ? ", " : "", f->in[l + 1]->dim[2]);
    k += (size_t)snprintf(buf + k, sizeof buf - k, "}, .spatial_scale = {");
    for (int l = 0; l < L; l++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", l ? ", " : "", flit(E, f->a.floats[l]));
    snprintf(buf + k, sizeof buf - k, "}}");
    return ir_strdup(E->p, buf);
}

static int emit_losses_op(CudaEmit *X, IrOp *op) {
    Emit *E = X->E;
    IrValue *y = op->nout ? op->out[0] : NULL;
    IrValue *x = op->nin ? op->in[0] : NULL;
    size_t off = 0;    /* floats per sample into gpu.cvt_in / cvt_out (in32, out32) */
    const char *a, *b; /* the losses' two float inputs in float32 */
    switch (op->kind) {
    case LG_OP_ANCHORS: /* (float32, as every unbatched value: no f16/bf16 question) */
        if (op->nin > LG_CUDA_MAX_LEVELS || op->a.nfloats < 1 || op->a.nfloats > LG_CUDA_MAX_ANCHOR_CELLS ||
            (op->nin == 1 ? op->a.nsizes : 1) * op->a.nfloats > LG_CUDA_MAX_ANCHOR_CELLS) {
            refuse(E, op, ir_fmt(E->p, "the device anchors take 1 to %d feature maps and 1 to %d sizes x aspect "
                                       "ratios per map (here %d maps, %d x %d)",
                                 LG_CUDA_MAX_LEVELS, LG_CUDA_MAX_ANCHOR_CELLS, op->nin,
                                 op->nin == 1 ? op->a.nsizes : 1, op->a.nfloats));
            return 1;
        }
        where(E, op, ir_fmt(E->p, "%s = anchors(%d feature maps): they depend on the shapes only", y->name, op->nin));
        out(E, "    {\n        const lg_cuda_anchors d = %s;\n", anchors_desc(E, op));
        out(E, "        st = lg_cuda_anchors_generate(c, &d, %s, err);\n    }\n", dptr(E, y));
        check(E);
        return 0;
    case LG_OP_RPN_LOSS: {
        int A = x->dim[0], M = op->in[3]->dim[0];
        add_det_ws(X, ir_fmt(E->p, "lg_cuda_rpn_loss_workspace((int)Bp, %d, %d)", A, M));
        where(E, op, ir_fmt(E->p, "%s, %s = rpn_loss(%s, %s, %s, targets): match, sample, encode, BCE + smooth L1",
                            y->name, op->out[1]->name, x->name, op->in[1]->name, op->in[2]->name));
        a = in32(X, x, &off), b = in32(X, op->in[1], &off);
        out(E, "    {\n        const lg_cuda_rpn_loss d = %s;\n", rpn_desc(E, op));
        out(E, "        st = lg_cuda_rpn_loss_forward(c, &d, %s, %s, %s, %s, det_ws, %s, %s, %s, %s, err);\n    }\n",
            a, b, dptr(E, op->in[2]), targets_arg(), dptr(E, op->out[2]),
            dptr(E, op->out[3]), dptr(E, y), dptr(E, op->out[1]));
        check(E);
        return 0;
    }
    case IR_RPN_LOSS_BWD: {
        where(E, op, "d rpn_loss: objectness and box deltas");
        size_t o0 = 0, o1 = 0;
        a = in32(X, op->in[2], &off), b = in32(X, op->in[3], &off);
        off = 0;
        const char *dobj = out32(X, op->out[0], &off, &o0), *ddeltas = out32(X, op->out[1], &off, &o1);
        out(E, "    {\n        const lg_cuda_rpn_loss d = {.N = (int)n, .A = %d, .beta = %s};\n", op->fwd->in[0]->dim[0],
            flit(E, op->fwd->a.beta));
        out(E, "        st = lg_cuda_rpn_loss_backward(c, &d, %s, %s, %s, %s, %s, %s, %s, %s, err);\n    }\n",
            a, b, dptr(E, op->in[4]), dptr(E, op->in[5]), dloss(E, op->in[0]), dloss(E, op->in[1]), dobj,
            ddeltas);
        check(E);
        back_dt(X, op->out[0], o0);
        back_dt(X, op->out[1], o1);
        return 0;
    }
    case LG_OP_ROI_ALIGN:
    case IR_ROI_ALIGN_BWD: {
        IrOp *f = op->fwd ? op->fwd : op;
        const char *d = roi_align_desc(E, f);
        IrValue *rois = f->in[0];
        if (!d) {
            refuse(E, op, ir_fmt(E->p, "the device RoIAlign takes 1 to %d maps whose spatial scales halve level by "
                                       "level, with canonical_scale 224 and canonical_level 4 (torchvision's)",
                                 LG_CUDA_MAX_LEVELS));
            return 1;
        }
        if (op->kind == LG_OP_ROI_ALIGN) {
            where(E, op, ir_fmt(E->p, "%s = roi_align(%s, %d feature maps): each RoI on the level LevelMapper picks",
                                y->name, rois->name, op->nin - 1));
            const char *m[LG_CUDA_MAX_LEVELS];
            for (int i = 1; i < op->nin; i++)
                m[i - 1] = in32(X, op->in[i], &off);
            size_t o = 0, oy = 0;
            const char *y32 = out32(X, y, &o, &oy);
            out(E, "    {\n        const lg_cuda_roi_align d = %s;\n", d);
            out(E, "        const float *const maps[] = {");
            for (int i = 1; i < op->nin; i++)
                out(E, "%s%s", i > 1 ? ",\n                                     " : "", m[i - 1]);
            out(E, "};\n        st = lg_cuda_roi_align_forward(c, &d, maps, %s, n * %d, %s, err);\n    }\n",
                dptr(E, rois), rois->dim[0], y32);
            check(E);
            back_dt(X, y, oy);
        } else {
            for (int i = 0; i < op->nout; i++)
                if (!op->out[i])
                    return 1;
            where(E, op, ir_fmt(E->p, "d %s: every level's map, each pixel summed in the CPU kernel's order (no atomics)",
                                f->out[0]->name));
            const char *dout = in32(X, op->in[0], &off);
            const char *m[LG_CUDA_MAX_LEVELS];
            size_t at[LG_CUDA_MAX_LEVELS], o = 0;
            for (int i = 0; i < op->nout; i++)
                m[i] = out32(X, op->out[i], &o, &at[i]);
            out(E, "    {\n        const lg_cuda_roi_align d = %s;\n", d);
            out(E, "        float *const maps[] = {");
            for (int i = 0; i < op->nout; i++)
                out(E, "%s%s", i ? ",\n                               " : "", m[i]);
            out(E, "};\n        st = lg_cuda_roi_align_backward_ordered(c, &d, (int)n, maps, %s, n * %d, %s, err);\n    }\n",
                dptr(E, rois), rois->dim[0], dout);
            check(E);
            for (int i = 0; i < op->nout; i++)
                back_dt(X, op->out[i], at[i]);
        }
        return 0;
    }
    case LG_OP_FASTRCNN_LOSS:
        where(E, op, ir_fmt(E->p, "%s, %s = fastrcnn_loss(%s, %s, %s, %s): cross entropy + smooth L1", y->name,
                            op->out[1]->name, x->name, op->in[1]->name, op->in[2]->name, op->in[3]->name));
        off = 0;
        a = in32(X, x, &off), b = in32(X, op->in[1], &off);
        out(E, "    st = lg_cuda_fastrcnn_loss_forward(c, %s, %s, %s, %s, (int)(n * %d), %d, %s, %s, %s, err);\n",
            a, b, dptr(E, op->in[2]), dptr(E, op->in[3]), x->dim[0], x->dim[1],
            flit(E, op->a.beta), dptr(E, y), dptr(E, op->out[1]));
        check(E);
        return 0;
    case IR_FASTRCNN_LOSS_BWD: {
        IrValue *lg = op->fwd->in[0];
        where(E, op, "d fastrcnn_loss: class logits and box regression");
        size_t o0 = 0, o1 = 0;
        off = 0;
        a = in32(X, op->in[2], &off), b = in32(X, op->in[3], &off);
        off = 0;
        const char *dlogits = out32(X, op->out[0], &off, &o0), *dbox = out32(X, op->out[1], &off, &o1);
        out(E, "    st = lg_cuda_fastrcnn_loss_backward(c, %s, %s, %s, %s, (int)(n * %d), %d, %s,\n"
               "                                        %s, %s, %s, %s, err);\n",
            a, b, dptr(E, op->in[4]), dptr(E, op->in[5]), lg->dim[0], lg->dim[1], flit(E, op->fwd->a.beta),
            dloss(E, op->in[0]), dloss(E, op->in[1]), dlogits, dbox);
        check(E);
        back_dt(X, op->out[0], o0);
        back_dt(X, op->out[1], o1);
        return 0;
    }
    default:
        return 1;
    }
}

int emit_cuda_detect_op(CudaEmit *X, IrGraph *g, IrOp *op) {
    switch (op->kind) {
    case LG_OP_PROPOSALS:
    case IR_ROIS_FROM_PROPOSALS:
    case LG_OP_ROI_SAMPLE:
    case LG_OP_DETECTIONS:
    case LG_OP_VOC_MAP:
        return emit_boxes_op(X, g, op);
    default: /* anchors, rpn_loss, roi_align, fastrcnn_loss and their backward */
        return emit_losses_op(X, op);
    }
}
