/* ast.h — the syntax tree of a .lmod file, and what sema and shapes add to it.
 *
 * The parser (parser.y) builds a Module per file with the ast_* helpers in
 * ast.c; everything lives in the Ctx's arena. Three passes then annotate the
 * same tree, and later passes (ir.c onwards) read only the annotated result:
 *
 *   parse   — syntax only: names are strings, expressions are trees.
 *   sema    — resolves names (hparams, datasets, splits, networks, blocks,
 *             ops, transforms, trainer keys), checks types and ranges, fills
 *             Hparam.value, Dataset/DataBlock descriptors, OptGroup,
 *             Scheduler phases, trainer settings (sema.c).
 *   shapes  — elaborates every network and step into a Graph: blocks
 *             instantiated, `for` unrolled, `if` decided, every op call a
 *             GNode with its lg_op_id, resolved attributes (defaults from
 *             ops.def filled in, typed), output shapes (per sample; the batch
 *             dimension B is implicit and symbolic), parameter names and
 *             shapes (shapes.c).
 *
 * Why a Graph and not shapes on the AST's call nodes: a block's body is one
 * piece of syntax but many layers (ResNet's bottleneck is called 16 times,
 * each time with other channel counts), so the resolved view is a separate,
 * flat graph per network and per step whose nodes point back at the AST call
 * (GNode.call / GNode.loc) for messages and `// spec.lmod:14` comments.
 *
 * Expressions in settings (optimizer, scheduler, trainer, data loader) stay
 * Expr trees that may refer to hparams (`lr: lr`); the generated trainer
 * evaluates them from its flags. Sema also stores their compile-time value
 * (Expr.cv) where one exists. Inside networks and steps, attribute values are
 * compile-time constants: an hparam used there is marked Hparam.is_static
 * (changing it needs a new `lgen -D name=value` run, not a flag).
 */
#ifndef LGEN_AST_H
#define LGEN_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "lgen/op.h"
#include "arena.h"
#include "diag.h"

typedef struct Ctx Ctx;
typedef struct Expr Expr;
typedef struct Stmt Stmt;
typedef struct Network Network;
typedef struct Dataset Dataset;
typedef struct Hparam Hparam;
typedef struct Graph Graph;
typedef struct GNode GNode;
typedef struct GValue GValue;
typedef struct Module Module;

/* ---- values and types ------------------------------------------------------ */

/* Element types of tensors. The batch's labels are i32 (lg_batch.label). */
typedef enum { DT_F32, DT_I32, DT_I64, DT_U8, DT_BOOL } DType;

/* Scalar types of hparams, block parameters and attribute values. */
typedef enum {
    TY_NONE,   /* not known / not a value (an error was reported) */
    TY_INT,
    TY_FLOAT,
    TY_BOOL,
    TY_STRING,
    TY_ENUM,   /* one of a list of identifiers */
    TY_TUPLE,  /* (a, b, ...) of scalars */
    TY_TENSOR, /* a named value in a network or step */
} Type;

#define SHAPE_MAX_RANK 8

/* A static per-sample shape. batched: the value has a leading batch dimension
 * B in front of dim[] (network values, batch fields); a loss or a metric is
 * an unbatched scalar (rank 0, batched false). */
typedef struct Shape {
    int rank;
    int64_t dim[SHAPE_MAX_RANK];
    bool batched;
} Shape;

/* A compile-time constant (sema's evaluation of an expression). */
typedef struct CValue {
    Type type;          /* TY_NONE: not constant */
    int64_t i;          /* TY_INT, TY_BOOL (0/1) */
    double f;           /* TY_FLOAT */
    const char *s;      /* TY_STRING, TY_ENUM (the identifier) */
    struct CValue *items; /* TY_TUPLE */
    int nitems;
} CValue;

/* ---- expressions ------------------------------------------------------------- */

typedef enum {
    EX_INT,     /* 42                          ival */
    EX_FLOAT,   /* 0.5, 1e-3                   fval */
    EX_STRING,  /* "text" (escapes decoded)    str */
    EX_BOOL,    /* true / false                ival */
    EX_NAME,    /* lr, x, max, resnet50        str; resolved into ref */
    EX_FIELD,   /* b.image, fashion.train      lhs . str */
    EX_CALL,    /* f(a, k: v)                  str (callee), args; callee may be
                 * an op, a block, a network, a transform, a builtin */
    EX_TUPLE,   /* (a, b)                      items */
    EX_UNARY,   /* -a, !a                      op, lhs */
    EX_BINARY,  /* a + b, a == b, a && b       op, lhs, rhs */
    EX_COND,    /* c ? a : b                   cond, lhs, rhs */
    EX_PIPE,    /* a |> f(args)                lhs (input), rhs (an EX_CALL or
                 * EX_NAME stage; the input becomes the call's first argument) */
    EX_RANGE,   /* a..b (for loops)            lhs, rhs */
    EX_INDEX,   /* t[i] (tuple element)        lhs, rhs */
} ExprKind;

/* Operators of EX_UNARY / EX_BINARY, named after their spelling. */
typedef enum {
    OPR_NEG, OPR_NOT,
    OPR_ADD, OPR_SUB, OPR_MUL, OPR_DIV, OPR_IDIV, OPR_MOD,
    OPR_EQ, OPR_NE, OPR_LT, OPR_LE, OPR_GT, OPR_GE, OPR_AND, OPR_OR,
} Operator;

const char *ast_operator_name(Operator op); /* "+", "==", ... */

/* One argument of a call: positional (key NULL) or keyword (key: value). */
typedef struct Arg {
    const char *key;
    Loc key_loc;
    Expr *value;
} Arg;

/* What a name refers to, once sema resolved it. */
typedef enum {
    REF_NONE,
    REF_HPARAM,     /* target: Hparam */
    REF_TRAINER,    /* a trainer setting (max_epochs): target: Setting */
    REF_DATASET,    /* target: Dataset */
    REF_NETWORK,    /* target: Network (also blocks) */
    REF_PARAM,      /* a block/network scalar parameter: target: BlockParam */
    REF_VALUE,      /* a tensor value in a network or step body */
    REF_LOOPVAR,    /* the variable of a `for` */
    REF_ENUM,       /* an enum literal (mode: max); Expr.str is the choice */
    REF_BATCH,      /* the batch parameter of a step (b) */
} RefKind;

struct Expr {
    ExprKind kind;
    Loc loc;
    int64_t ival;
    double fval;
    const char *str;
    Loc str_loc;   /* EX_FIELD: the field name; EX_CALL: the callee name */
    Operator op;
    Expr *lhs, *rhs, *cond;
    Arg *args;     /* EX_CALL */
    int nargs;
    Expr **items;  /* EX_TUPLE */
    int nitems;
    bool parens;   /* written in parentheses (fmt keeps them) */
    /* sema */
    RefKind ref;
    void *target;
    CValue cv;     /* compile-time value, when it has one */
};

/* ---- statements (network, block, step, data bodies) ---------------------------- */

typedef enum {
    ST_ASSIGN,  /* a = e; a, b = e (several outputs)  names, value */
    ST_LOG,     /* log name = e, prog_bar: true        names[0], value, opts */
    ST_RETURN,  /* return e, f                         values */
    ST_FOR,     /* for i in 0..n { body }              var, value (EX_RANGE), body */
    ST_IF,      /* if c { body } else { orelse }       value (cond), body, orelse */
    ST_EXPR,    /* train |> normalize(...) (data)      value */
} StmtKind;

struct Stmt {
    StmtKind kind;
    Loc loc;
    const char **names;  /* ST_ASSIGN targets, ST_LOG name */
    Loc *name_locs;
    int nnames;
    Expr *value;
    Expr **values;       /* ST_RETURN */
    int nvalues;
    Arg *opts;           /* ST_LOG options (prog_bar, on_step, on_epoch, sync_dist) */
    int nopts;
    const char *var;     /* ST_FOR */
    Loc var_loc;
    Stmt **body;         /* ST_FOR, ST_IF */
    int nbody;
    Stmt **orelse;       /* ST_IF (else may hold one ST_IF for `else if`) */
    int norelse;
};

/* ---- hparams ------------------------------------------------------------------ */

/* hparams { lr: float = 0.05 in (0, 10) "SGD learning rate" }
 * A range `in (lo, hi)` excludes its ends, `in [lo, hi]` includes them; the
 * brackets may be mixed: `in (0, 1]`. */
struct Hparam {
    const char *name;
    Loc loc;             /* the name */
    Type type;           /* TY_INT, TY_FLOAT, TY_BOOL, TY_STRING, TY_ENUM */
    Loc type_loc;
    const char **choices; /* TY_ENUM: enum(resnet18, resnet34, resnet50) */
    int nchoices;
    Expr *dflt;          /* required */
    Expr *lo, *hi;       /* NULL when there is no range */
    bool lo_open, hi_open; /* `(` / `)` exclusive ends */
    const char *doc;     /* doc string (may be NULL: a warning) */
    /* sema */
    CValue value;        /* the default (after -D overrides), type-checked */
    CValue lo_value, hi_value;
    bool is_static;      /* used where a compile-time value is needed */
    bool used;
};

/* ---- datasets ------------------------------------------------------------------- */

/* Formats, in lg_data_format's order (runtime/include/lgen/data.h). */
typedef enum { FMT_IDX, FMT_CIFAR10, FMT_CIFAR100, FMT_IMAGE_FOLDER, FMT_CSV, FMT_VOC, FMT_NONE } DataFormat;

const char *ast_format_name(DataFormat f); /* "idx", "cifar10", ... */

/*   file "train-images-idx3-ubyte.gz" sha256 "3aede38d..."
 *   archive "VOCtrainval_06-Nov-2007.tar" sha256 "7d8cd951..."   (extracted) */
typedef struct DataFile {
    const char *name;
    const char *sha256;  /* NULL when not given (a warning) */
    bool extract;        /* `archive` */
    Loc loc;
} DataFile;

/*   split train("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
 *   split trainval("VOCdevkit/VOC2007", set: "trainval")
 * paths are the format's inputs relative to the dataset's cache directory. */
typedef struct DatasetSplit {
    const char *name;
    Loc loc;
    const char **paths;
    Loc *path_locs;
    int npaths;
    const char *set;     /* voc image set */
    Arg *args;           /* as written */
    int nargs;
} DatasetSplit;

/*   dataset fashion "Fashion-MNIST" {
 *       mirror "file:///usr/share/datasets/fashion-mnist/"
 *       file ... sha256 ...
 *       format idx(shape: (1, 28, 28))
 *       split train(...)
 *   } */
struct Dataset {
    const char *name;
    Loc loc;
    const char *doc;
    const char **mirrors;
    Loc *mirror_locs;
    int nmirrors;
    DataFile *files;
    int nfiles;
    Expr *format_expr;   /* EX_NAME or EX_CALL as written */
    DatasetSplit *splits;
    int nsplits;
    /* sema, from format_expr: */
    DataFormat format;
    bool csv_header;
    int csv_label_column;     /* -1 = last */
    bool cifar_coarse;
    bool voc_skip_difficult;
    bool skip_bad;
    int decode_channels;      /* 0 = 3 */
    const char **classes;
    int nclasses;
    int num_classes;          /* classes known statically (10 for idx/cifar10...), 0 unknown */
    Shape sample_shape;       /* native image shape when static (idx 1x28x28); rank 0 unknown */
    int features;             /* csv: feature columns */
    int max_boxes;            /* voc: boxes per image (format arg, default 64) */
};

/* ---- data module ------------------------------------------------------------------ */

/* Transforms, in lg_transform_kind's order (runtime/include/lgen/data.h). */
typedef enum {
    TF_TO_TENSOR, TF_NORMALIZE, TF_RESIZE, TF_CENTER_CROP, TF_RANDOM_CROP,
    TF_RANDOM_RESIZED_CROP, TF_RANDOM_HFLIP, TF_RANDOM_VFLIP, TF_COLOR_JITTER,
    TF_GRAYSCALE, TF_LETTERBOX, TF_NONE
} TransformKind;

const char *ast_transform_name(TransformKind k); /* "normalize", "random_horizontal_flip", ... */

/* One stage of `train |> random_crop(28, padding: 2) |> normalize(0.286, 0.353)`,
 * resolved to lg_transform_desc's layout (f[], i[] as data.h documents). */
typedef struct Transform {
    TransformKind kind;
    Expr *call;          /* as written */
    Loc loc;
    float f[6];
    int i[4];
} Transform;

/* A loader of the data module: train, val, test or predict.
 *   train, val = split(fashion.train, 0.9, seed: 42)   -> train [0, 0.9), val [0.9, 1)
 *   test = fashion.test                                -> [0, 1), seed 0 */
typedef struct DataSplit {
    const char *name;
    Loc loc;
    Expr *source_expr;
    Dataset *dataset;      /* sema */
    DatasetSplit *source;  /* sema: the dataset split it reads */
    double lo, hi;
    uint64_t seed;
    Transform *transforms; /* sema: the pipeline, in order */
    int ntransforms;
    Shape image_shape;     /* sema: per-sample image shape after the transforms */
    int max_boxes;         /* detection: 0 = none */
} DataSplit;

/* A `key = expr` line: data settings, trainer settings. */
typedef struct Setting {
    const char *key;
    Loc loc;
    Expr *value;
} Setting;

/* data { ... }: loaders, pipelines and loader options (batch_size,
 * num_workers, shuffle, drop_last: Expr, may name hparams). */
typedef struct DataBlock {
    Loc loc;
    Stmt **stmts;          /* as written (splits, pipelines, settings), for fmt */
    int nstmts;
    DataSplit *splits;     /* sema */
    int nsplits;
    Expr *batch_size, *num_workers, *shuffle, *drop_last; /* sema; NULL = default */
    Expr *val_batch_size;  /* optional; NULL = batch_size */
} DataBlock;

/* ---- networks and blocks -------------------------------------------------------- */

/* A tensor type `f32[1, 28, 28]`; dims may name hparams or block parameters. */
typedef struct TensorType {
    DType dtype;
    Expr **dims;
    int ndims;
    Loc loc;
} TensorType;

/* A parameter: a tensor input `x: f32[3, 32, 32]` (network) or `x` (block,
 * shape taken from the caller), or a scalar `planes: int`, `stride: int = 1`,
 * `kind: enum(basic, bottleneck)`, `kernel: shape = (3, 3)` (TY_TUPLE). */
typedef struct BlockParam {
    const char *name;
    Loc loc;
    Type type;           /* TY_TENSOR or a scalar type */
    TensorType *tensor;  /* TY_TENSOR with a declared type; NULL in blocks */
    const char **choices; /* TY_ENUM */
    int nchoices;
    Expr *dflt;          /* scalar default or NULL */
} BlockParam;

/* A declared output `-> f32[10]` or `-> (logits: f32[10], boxes: f32[100, 4])`. */
typedef struct Output {
    const char *name;    /* may be NULL */
    TensorType type;
    Loc loc;
} Output;

/*   network lenet(x: f32[1, 28, 28]) -> f32[10] { ... }
 *   block bottleneck(x, planes: int, stride: int = 1) { ... return relu(out + identity) }
 * A network is a block whose tensor inputs have declared shapes: it is
 * elaborated once into a Graph and owns parameters; a block is elaborated at
 * every call, its layers named under the call's name. */
struct Network {
    const char *name;
    Loc loc;
    const char *doc;
    bool is_block;
    BlockParam *params;
    int nparams;
    Output *outputs;     /* may be empty for blocks (inferred) */
    int noutputs;
    Stmt **body;
    int nbody;
    Module *module;      /* the file it was written in (imports) */
    /* shapes */
    Graph *graph;        /* networks only */
    bool used;
};

/* ---- steps ------------------------------------------------------------------------- */

typedef enum { STEP_TRAIN, STEP_VALIDATE, STEP_TEST, STEP_PREDICT } StepKind;

/*   step train(b) { loss = cross_entropy(lenet(b.image), b.label); log train_loss = loss; return loss } */
typedef struct Step {
    StepKind kind;
    const char *name;    /* "train", "validate", "test", "predict" */
    Loc loc;
    const char *batch;   /* the batch parameter's name */
    Loc batch_loc;
    Stmt **body;
    int nbody;
    /* shapes */
    Graph *graph;        /* inputs: batch fields; outputs: the returned values */
} Step;

/* ---- optimizer, scheduler, trainer ----------------------------------------------- */

typedef enum { OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW, OPTIM_RMSPROP, OPTIM_NONE } OptimKind;

const char *ast_optim_name(OptimKind k);

/* A parameter group: `group no_decay(match: "*.bias|*bn*.weight", weight_decay: 0)`.
 * match is a |-separated list of glob patterns over parameter names; the
 * first group that matches a parameter takes it; the rest keep the
 * optimizer's settings. */
typedef struct OptGroup {
    const char *name;
    Loc loc;
    const char *match;
    Arg *args;           /* overrides (lr, weight_decay, momentum, ...), Expr values */
    int nargs;
} OptGroup;

/*   optimizer sgd(lr: lr, momentum: 0.9, weight_decay: 5e-4) { group ... } */
typedef struct Optimizer {
    OptimKind kind;
    const char *name;
    Loc loc;
    Arg *args;           /* Expr values, checked against the optimizer's keys */
    int nargs;
    OptGroup *groups;
    int ngroups;
} Optimizer;

typedef enum {
    SCHED_CONSTANT, SCHED_STEP, SCHED_MULTISTEP, SCHED_EXPONENTIAL, SCHED_COSINE,
    SCHED_LINEAR, SCHED_ONECYCLE, SCHED_PLATEAU, SCHED_WARMUP, SCHED_NONE
} SchedKind;

const char *ast_sched_name(SchedKind k);

/* One phase of `scheduler warmup(steps: 500, start_factor: 0.001) then cosine(t_max: max_epochs)`.
 * Phases run in order (Lightning's SequentialLR); a phase other than the last
 * has a length (steps: or epochs:). */
typedef struct SchedPhase {
    SchedKind kind;
    const char *name;
    Loc loc;
    Arg *args;
    int nargs;
} SchedPhase;

typedef struct Scheduler {
    Loc loc;
    SchedPhase *phases;
    int nphases;
    const char *interval; /* "epoch" (default) or "step" */
} Scheduler;

/* checkpoint(monitor: "val_acc", mode: max, save_top_k: 3, ...) and
 * early_stopping(monitor: "val_loss", mode: min, patience: 3, min_delta: 0). */
typedef struct Callback {
    const char *name;    /* "checkpoint", "early_stopping", "lr_monitor" */
    Loc loc;
    Arg *args;
    int nargs;
} Callback;

/*   trainer { max_epochs = 10; gradient_clip_val = 1.0; checkpoint(...) } */
typedef struct Trainer {
    Loc loc;
    Setting *settings;   /* Lightning's names; sema checks them */
    int nsettings;
    Callback *callbacks;
    int ncallbacks;
} Trainer;

/* ---- the module ---------------------------------------------------------------------- */

/*   import "resnet.lmod"   — blocks and networks of that file become visible. */
typedef struct Import {
    const char *path;    /* as written */
    Loc loc;
    Module *module;      /* sema: the parsed file (shared when imported twice) */
} Import;

/* Top-level items in source order, for fmt and for messages. */
typedef enum {
    IT_MODEL, IT_IMPORT, IT_HPARAMS, IT_DATASET, IT_DATA, IT_NETWORK, IT_STEP,
    IT_OPTIMIZER, IT_SCHEDULER, IT_TRAINER
} ItemKind;

/* The root of one .lmod file (struct tag Module, as emit.h expects). */
struct Module {
    int file;             /* source file id */
    const char *path;
    const char *name;     /* model NAME "doc" (NULL in a library file such as resnet.lmod) */
    const char *doc;
    Loc name_loc;
    Import *imports;
    int nimports;
    Hparam *hparams;
    int nhparams;
    Dataset **datasets;
    int ndatasets;
    DataBlock *data;      /* NULL when absent */
    Network **networks;   /* networks and blocks, in source order (is_block tells) */
    int nnetworks;
    Step **steps;
    int nsteps;
    Optimizer *optimizer; /* NULL when absent */
    Scheduler *scheduler;
    Trainer *trainer;
    bool is_import;       /* parsed because another file imports it */
    bool has_errors;      /* the parser reported syntax errors in this file */
    bool has_lex_errors;  /* the lexer reported errors (bad characters, numbers, strings) */
    bool checked;         /* sema ran on it (imports are checked once) */
};

/* ---- the elaborated graph (shapes.c) ---------------------------------------------------- */

/* A resolved attribute value: the slot for ops.def's ATTR row of the same
 * index for this op (GNode.attrs[k] is the op's k-th ATTR row). */
typedef struct AttrValue {
    Type type;           /* TY_INT, TY_FLOAT, TY_BOOL, TY_STRING, TY_ENUM, TY_TUPLE, TY_TENSOR */
    int64_t i;           /* INT, BOOL; INT2 stores (h, w) in ints[0..1] */
    double f;
    const char *s;       /* STR, ENUM (the choice's spelling) */
    int64_t ints[SHAPE_MAX_RANK * 2]; /* INT2 (always 2, h then w), INTS */
    double floats[SHAPE_MAX_RANK * 2]; /* FLOATS */
    int n;               /* entries in ints/floats */
    GValue *tensor;      /* TENSOR attributes; NULL = none */
    bool defaulted;      /* from ops.def, not written */
} AttrValue;

/* A parameter or buffer a layer owns, as a state_dict names it. */
typedef struct GParam {
    const char *name;    /* "layer1.0.conv1.weight" (network prefix not included) */
    const char *leaf;    /* ops.def's PARAM name: "weight" */
    bool trainable;      /* PARAM role TRAIN; false for BUFFER */
    Shape shape;         /* batched false */
    DType dtype;         /* f32; num_batches_tracked is i64 */
    GNode *node;
} GParam;

typedef enum {
    GN_OP,       /* an op from ops.def: op, attrs */
    GN_INPUT,    /* a network input or a batch field: outputs[0] */
    GN_CALL,     /* a step calling a network: callee, inputs, outputs */
    GN_CONST,    /* reserved: not produced; a constant factor (0.5 * loss)
                  * becomes a `scale` op with attribute `by` */
} GNodeKind;

/* A value flowing in a graph: one output of one node. */
struct GValue {
    int id;              /* dense, per graph */
    const char *name;    /* the value its statement assigns ("conv1" for every op of
                          * `conv1 = x |> conv2d(...) |> relu`), "b.image", or NULL;
                          * not unique (x = x |> ... reuses names) */
    DType dtype;
    Shape shape;
    GNode *producer;
    int index;           /* which output of the producer */
    int uses;            /* consumers in this graph (0: unused) */
    Loc loc;
};

struct GNode {
    int id;              /* dense, per graph; nodes are in topological order */
    GNodeKind kind;
    lg_op_id op;         /* GN_OP */
    const char *layer;   /* GN_OP of a LAYER kind: "layer1.0.conv1"; else NULL */
    GValue **inputs;
    int ninputs;
    GValue **outputs;
    int noutputs;
    AttrValue *attrs;    /* GN_OP: one per ATTR row of op, in ops.def order */
    int nattrs;
    GParam **params;     /* GN_OP of a LAYER: its present PARAM rows, in order */
    int nparams;
    Network *callee;     /* GN_CALL */
    const char *field;   /* GN_INPUT of a step: "image", "label", "boxes", ... */
    CValue cval;         /* GN_CONST */
    Expr *call;          /* the AST call it came from (NULL for inputs) */
    Loc loc;
    int64_t flops;       /* per sample (forward multiply-adds x 2) */
    int64_t act_bytes;   /* per sample: bytes of its outputs */
};

struct Graph {
    const char *name;    /* network or step name */
    GNode **nodes;       /* topological order */
    int nnodes;
    GValue **values;
    int nvalues;
    GValue **inputs;     /* network inputs / batch fields, in signature order */
    int ninputs;
    GValue **outputs;    /* returned values, in order */
    int noutputs;
    GParam **params;     /* every parameter and buffer, state_dict order */
    int nparams;
    /* steps only */
    GValue *loss;        /* STEP_TRAIN: the returned loss */
    const char **log_names; /* `log name = value`, in order */
    GValue **log_values;
    Stmt **log_stmts;
    int nlogs;
};

/* ---- helpers used by the parser (ast.c) -------------------------------------------------- */

Module *ast_module_new(Ctx *ctx, int file);
Expr *ast_expr(Ctx *ctx, ExprKind kind, Loc loc);
Stmt *ast_stmt(Ctx *ctx, StmtKind kind, Loc loc);

/* The network or block called `name` visible from mod (its own, then imports). */
Network *ast_find_network(Module *mod, const char *name);
Dataset *ast_find_dataset(Module *mod, const char *name);
Hparam *ast_find_hparam(Module *mod, const char *name);

const char *ast_dtype_name(DType t);  /* "f32" */
const char *ast_type_name(Type t);    /* "int", "float", ... */
/* "f32[6, 28, 28]" (per sample; batched values print as such) into the arena. */
const char *ast_shape_str(Ctx *ctx, DType dt, const Shape *s);

#endif
