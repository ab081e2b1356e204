/* ir.h — lgen's intermediate representation: an op graph per step.
 *
 * The lowering pass (ir.c) turns the checked AST (every value with its static
 * shape, every call with its op id and resolved attributes) into an IrProgram:
 * one parameter table shared by all steps, and one IrGraph per step
 * (training, validation, test, predict). A graph is a list of ops in
 * execution order over values with static per-sample shapes; the batch
 * dimension B is the only symbolic one and is always the leading dimension of
 * a "batched" value.
 *
 * The next passes read and rewrite this structure: autodiff.c appends the
 * backward ops of the training graph (ordinary IrOps whose kinds are the
 * IR_*_BWD kinds below), plan.c marks in-place/fused ops and assigns every
 * activation and gradient an offset in one arena, and emit_c.c prints C.
 *
 * Op kinds: a forward op's kind is its lg_op_id from ops.def (LG_OP_CONV2D,
 * ...); the extra kinds that only the compiler creates (backward ops,
 * gradient sums, zero fills) start at IR_KIND_BASE.
 */
#ifndef LGEN_IR_H
#define LGEN_IR_H

#include <stddef.h>

#include "lgen/op.h"

#define IR_MAX_DIMS 6
#define IR_MAX_INPUTS 8
#define IR_MAX_OUTPUTS 8

typedef enum {
    IR_KIND_BASE = 1000,
    IR_LINEAR_BWD,      /* (dy, x, W) -> dx; accumulates dW, db */
    IR_CONV2D_BWD,      /* (dy, x, W) -> dx; accumulates dW, db */
    IR_RELU_BWD,        /* (dy, y) -> dx (y > 0 exactly where x > 0) */
    IR_LEAKY_RELU_BWD,  /* (dy, x) -> dx */
    IR_SIGMOID_BWD,     /* (dy, y) -> dx */
    IR_TANH_BWD,        /* (dy, y) -> dx */
    IR_GELU_BWD,        /* (dy, x) -> dx */
    IR_SILU_BWD,        /* (dy, x) -> dx */
    IR_DROPOUT_BWD,     /* (dy, mask) -> dx */
    IR_MAX_POOL2D_BWD,  /* (dy, argmax) -> dx; the forward's out[1] is the int32 arg-max */
    IR_AVG_POOL2D_BWD,  /* (dy) -> dx */
    IR_GLOBAL_AVG_POOL_BWD, /* (dy) -> dx */
    IR_BATCH_NORM_BWD,  /* (dy, x, W) -> dx; accumulates dW, db; uses saved stats */
    IR_SOFTMAX_BWD,     /* (dy, y) -> dx */
    IR_LOG_SOFTMAX_BWD, /* (dy, y) -> dx */
    IR_MUL_BWD,         /* (dy, a, b) -> da (a.k = 0) or db (a.k = 1) */
    IR_CROSS_ENTROPY_BWD, /* (dloss, logits, labels) -> dlogits */
    IR_MSE_LOSS_BWD,    /* (dloss, x, target) -> dx */
    IR_L1_LOSS_BWD,     /* (dloss, x, target) -> dx */
    IR_SMOOTH_L1_LOSS_BWD, /* (dloss, x, target) -> dx */
    IR_BCE_WITH_LOGITS_BWD, /* (dloss, x, target) -> dx */
    IR_MEAN_BWD,        /* (dy scalar) -> dx filled with dy / n */
    IR_SUM_BWD,         /* (dy scalar) -> dx filled with dy */
    IR_ACCUM,           /* (a, b) -> a + b (gradient sum at fan-out), may run in place */
    IR_COPY,            /* (x) -> x (a gradient passed through a view) */
    IR_SEED,            /* () -> 1 * grad_scale (the loss gradient) */
    IR_LAYER_NORM_BWD,  /* (dy, x, W, mean, invstd, dW, db) -> dx; forward out[1..2] are the stats */
    IR_ADAPTIVE_AVG_POOL2D_BWD, /* (dy) -> dx */
    IR_UPSAMPLE_NEAREST_BWD, /* (dy) -> dx */
    IR_TRANSPOSE_BWD,   /* (dy) -> dx */
    IR_CONCAT_BWD,      /* (dy) -> dx_0 .. dx_k-1 (a split) */
    IR_SPLIT_BWD,       /* (dy_0 .. dy_k-1) -> dx (a concat) */
    IR_ZERO,            /* () -> zeros (the gradient of an unused output) */
    /* detection (Faster R-CNN): rpn_head is lowered to per-level conv2d ops
     * sharing their parameters, and these */
    IR_RPN_FLATTEN,     /* forward: (level maps (A*D, h, w) ...) -> (total, D) in anchor order */
    IR_RPN_FLATTEN_BWD, /* (dy) -> d level maps */
    IR_ROIS_FROM_PROPOSALS, /* forward: (boxes (P, 4), count) -> RoI batch (P, 5) */
    IR_RPN_LOSS_BWD,    /* (dloss_obj, dloss_box, objectness, deltas, labels, box_targets) -> dobj, ddeltas */
    IR_ROI_ALIGN_BWD,   /* (dy, rois) -> d feature maps */
    IR_FASTRCNN_LOSS_BWD, /* (dloss_cls, dloss_box, logits, box_reg, labels, box_targets) -> dlogits, dbox_reg */
    IR_KIND_END
} IrExtraKind;

typedef int IrKind; /* an lg_op_id or an IrExtraKind */

typedef enum { IR_F32, IR_I32 } IrDtype;

/* Where a value lives at run time. */
typedef enum {
    IR_ST_ARENA,  /* the activation arena, offset chosen by plan.c */
    IR_ST_PARAM,  /* the parameter block (a parameter tensor) */
    IR_ST_GRAD,   /* the gradient block (a parameter's gradient) */
    IR_ST_INPUT,  /* a field of the batch (image, label, ...) */
    IR_ST_VIEW,   /* the same memory as `base` (flatten, reshape) */
} IrStorage;

typedef struct IrValue IrValue;
typedef struct IrOp IrOp;

struct IrValue {
    int id;
    const char *name;       /* C identifier stem: "conv1", "conv1_grad" */
    IrDtype dtype;
    int batched;            /* 1: the leading dimension B is implied */
    int ndim;               /* per-sample rank (batch excluded) */
    int dim[IR_MAX_DIMS];
    IrStorage storage;
    int param;              /* IR_ST_PARAM/GRAD: index into IrProgram.params */
    int input;              /* IR_ST_INPUT: index of the batch field */
    IrValue *base;          /* IR_ST_VIEW: the value whose memory this is */
    IrOp *def;              /* the op that produced it (NULL for inputs, params) */
    int requires_grad;      /* depends on a trainable parameter */
    IrValue *grad;          /* autodiff: the accumulated gradient of this value */
    /* plan.c */
    int first, last;        /* live from op index first to op index last */
    size_t offset;          /* IR_ST_ARENA: offset in floats (per sample if batched) */
    const char *cname;      /* emit_c.c: its C name in the step function */
};

/* Resolved attributes of an op; only the fields its kind reads are set. */
typedef struct IrAttrs {
    int out_features;           /* linear; conv2d: out_channels */
    int bias;                   /* linear, conv2d */
    int kh, kw, sh, sw, ph, pw, dh, dw, groups; /* conv2d, pools */
    int ceil_mode, count_include_pad;
    int out_h, out_w;           /* adaptive_avg_pool2d */
    int scale;                  /* upsample_nearest */
    double eps, momentum;       /* batch_norm, layer_norm; momentum -1: none (cumulative average) */
    int affine;
    double p;                   /* dropout */
    double slope;               /* leaky_relu */
    int approximate;            /* gelu: 0 none, 1 tanh */
    int dim, dim0, dim1;        /* softmax, concat, split, transpose */
    int nsizes, sizes[IR_MAX_DIMS]; /* split */
    double by;                  /* scale */
    double label_smoothing, beta;
    int ignore_index;
    int reduction;              /* 0 mean, 1 sum */
    int k;                      /* topk_accuracy; rpn_flatten: D (1 or 4) */
    /* detection (ops.def's names) */
    int image_h, image_w;       /* anchors, proposals, detections */
    int nfloats;                /* anchors: aspect ratios; roi_align: spatial scales; */
    double floats[IR_MAX_DIMS * 2]; /* roi_sample, detections: box coder weights */
    int top_n, post_top_n;      /* proposals: pre/post NMS top n; detections: per image */
    double fg_iou, bg_iou, fraction; /* rpn_loss, roi_sample */
    int per_image;              /* rpn_loss, roi_sample: batch_size_per_image */
    double thresh, nms_thresh, min_size; /* score / IoU thresholds */
    int sampling_ratio, aligned, canonical_scale, canonical_level; /* roi_align */
    int use_07, pixel_offset;   /* voc_map */
    long long seed;             /* rpn_loss, roi_sample */
    int num_anchors;            /* rpn_flatten: A */
} IrAttrs;

struct IrOp {
    int index;                  /* position in the graph's op list */
    IrKind kind;
    int nin, nout;
    IrValue *in[IR_MAX_INPUTS];
    IrValue *out[IR_MAX_OUTPUTS];
    IrAttrs a;
    int param;                  /* layers: first parameter's index, else -1 */
    int nparam;                 /* how many consecutive parameters it owns */
    const char *layer;          /* PyTorch module path: "features.0", "fc1" */
    const char *file;           /* spec file (base name) and line, for comments */
    int line;
    int backward;               /* 1: part of the backward pass */
    IrOp *fwd;                  /* a backward op: the forward op it differentiates */
    int fused_relu;             /* plan.c: a following relu runs inside this op */
    int in_place;               /* plan.c: out[0] shares in[0]'s memory */
    int dead;                   /* plan.c: absorbed by fusion, emits nothing */
};

typedef enum { IR_TRAIN, IR_BUFFER } IrParamRole;

typedef struct IrParam {
    const char *name;           /* PyTorch state_dict name: "conv1.weight" */
    IrParamRole role;
    IrDtype dtype;
    int ndim;
    int dim[IR_MAX_DIMS];
    size_t numel;
    size_t offset;              /* in floats, in the parameter block */
    size_t grad_offset;         /* in floats, in the gradient block (IR_TRAIN) */
    int fan_in;                 /* for PyTorch's default init */
    IrKind owner;               /* the layer kind, for init rules */
    const char *file;
    int line;
} IrParam;

/* A batch field the steps read: "image" (f32, per-sample shape) or "label". */
typedef struct IrInput {
    const char *name;
    IrDtype dtype;
    int ndim;
    int dim[IR_MAX_DIMS];
} IrInput;

/* A named scalar a step logs (`log val_acc = accuracy(y, b.label)`). */
typedef struct IrLog {
    const char *name;
    IrValue *value;
    int prog_bar;
} IrLog;

typedef enum { IR_STEP_TRAIN, IR_STEP_VALIDATE, IR_STEP_TEST, IR_STEP_PREDICT, IR_STEP_COUNT } IrStepKind;

typedef struct IrProgram IrProgram;

typedef struct IrGraph {
    IrProgram *prog;            /* the program it belongs to (its string pool) */
    IrStepKind step;
    const char *name;           /* "train", "validate", ... */
    int present;
    const char *file;
    int line;
    IrValue **values;
    int nvalues, capvalues;
    IrOp **ops;
    int nops, capops;
    IrValue *loss;              /* train: the returned scalar */
    IrValue *output;            /* predict: the logits/probabilities it returns */
    IrLog *logs;
    int nlogs, caplogs;
    int nforward;               /* ops before autodiff appended the backward */
    IrValue **paramvals;        /* ir_param_value's cache: [2 * param + (grad)] */
    int nparamvals;
    /* plan.c */
    size_t arena_per_sample;    /* floats per sample */
    size_t arena_fixed;         /* floats independent of B (scalars) */
    size_t naive_per_sample;    /* without reuse, for the summary */
    int nfused, ninplace;
} IrGraph;

struct IrProgram {
    const char *model;          /* the model's name: "lenet" */
    const char *spec_path;
    IrParam *params;
    int nparams, capparams;
    size_t param_floats;        /* size of the parameter block */
    size_t grad_floats;         /* size of the gradient block */
    IrInput *inputs;
    int ninputs, capinputs;
    IrGraph graphs[IR_STEP_COUNT];
    struct IrString *strings;   /* every string the IR made, freed with it */
};

/* Building (used by ir.c's lowering and by tests that build graphs by hand). */
void ir_program_init(IrProgram *p, const char *model);
void ir_program_free(IrProgram *p);
int ir_add_param(IrProgram *p, const char *name, IrParamRole role, int ndim, const int *dim);
int ir_add_input(IrProgram *p, const char *name, IrDtype dtype, int ndim, const int *dim);
IrValue *ir_value(IrGraph *g, const char *name, IrDtype dtype, int batched, int ndim, const int *dim);
IrValue *ir_input_value(IrProgram *p, IrGraph *g, int input);
IrValue *ir_param_value(IrProgram *p, IrGraph *g, int param, IrStorage st);
IrOp *ir_op(IrGraph *g, IrKind kind, int nin, IrValue *const *in);
/* Adds op with one output of the given shape and returns that output. */
IrValue *ir_op1(IrGraph *g, IrKind kind, int nin, IrValue *const *in, const char *name,
                IrDtype dtype, int batched, int ndim, const int *dim);
void ir_log(IrGraph *g, const char *name, IrValue *v);
/* Strings owned by p (freed by ir_program_free). */
char *ir_strdup(IrProgram *p, const char *s);
char *ir_fmt(IrProgram *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

size_t ir_numel(const IrValue *v);  /* per sample if batched */
const char *ir_kind_name(IrKind k); /* "conv2d", "conv2d_backward", ... */
int ir_count_params(const IrProgram *p, IrParamRole role, size_t *numel);

/* Lowers the checked module (after shape_check) into p: parameters of every
 * network the steps call (trainable first, then buffers, each group in
 * state_dict order), batch fields, and one graph per step. Returns the
 * number of errors reported through ctx's diagnostics. */
typedef struct Ctx Ctx;
typedef struct Module Module;
int ir_lower(Ctx *ctx, Module *mod, IrProgram *p);

/* Dumps a graph in a stable, readable text form (tests, `lgen ir`). */
void ir_dump(const IrProgram *p, const IrGraph *g, void *file);

#endif
