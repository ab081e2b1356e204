/* lgen/trainer.h — the Trainer: what a generated program hands to the runtime.
 *
 * lgen turns a spec into model-specific C: shapes, the parameter table, the
 * forward and backward of each step, the data tables (lgen/data.h), the
 * optimizer description and the hparam flag table. All of it goes into one
 * static const lg_model_def, and the generated main() is one line:
 *
 *     int main(int argc, char **argv) { return lg_main(argc, argv, &lenet_def); }
 *
 * lg_main does everything Lightning's Trainer does around the model: the
 * subcommands fit | validate | test | predict, flags (Lightning 2.x names and
 * the 1.x spellings), --config JSON, the loop (accumulation, clipping,
 * validation schedule, limits, fast_dev_run, overfit_batches), callbacks
 * (ModelCheckpoint, EarlyStopping, LearningRateMonitor), loggers
 * (lightning_logs/version_N/ with hparams.yaml, metrics.csv, config.json and
 * a TensorBoard event file),
 * checkpoints (safetensors layout, exact resume), signals and the progress
 * bar. It returns the process exit status: 0 ok, 1 runtime error, 2 usage
 * error, 130/143 after SIGINT/SIGTERM (a checkpoint was saved).
 *
 * The parts the generated code writes are small on purpose: tables and four
 * step functions. Everything optional may be NULL/0.
 *
 * Flags: every hparam is a flag (--lr 0.01); the trainer's own flags are
 * Lightning's (max_epochs, ..., ckpt_path), the data ones (data_dir, mirror,
 * num_workers, batch_size) and the callbacks' as checkpoint.<option> and
 * early_stopping.<option>. An hparam may share a trainer flag's name (a
 * split "seed"): --seed then sets the hparam, --trainer.seed (and
 * --seed_everything) the trainer's, --model.NAME the hparam explicitly;
 * --config JSON uses LightningCLI's "model" / "trainer" / "data" sections.
 *
 * Neighbours: runtime/trainer/ implements this; lgen/data.h (loader),
 * lgen/optim.h (optimizers, schedulers, clipping) and lgen/parallel.h
 * (threads) are called from it; compiler/emit_*.c and templates/ fill it in.
 */
#ifndef LGEN_TRAINER_H
#define LGEN_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "lgen/data.h"
#include "lgen/parallel.h"
#include "lgen/status.h"

/* ---- hparams: typed flags generated from the spec ------------------------ */

typedef enum {
    LG_HP_INT,   /* value.i */
    LG_HP_FLOAT, /* value.f */
    LG_HP_BOOL,  /* value.b (0 or 1) */
    LG_HP_STR,   /* value.s */
    LG_HP_ENUM,  /* value.i = index into choices, value.s = the choice */
} lg_hparam_type;

/* One hparam, e.g. `lr: float = 0.05 in (0, 10) "SGD learning rate"`:
 *     { "lr", LG_HP_FLOAT, "0.05", 0, 10, LG_RANGE_LO_OPEN | LG_RANGE_HI_OPEN,
 *       NULL, "SGD learning rate" }
 * The default is written as on the command line ("0.05", "true", "adam"). */
enum {
    LG_RANGE_NONE = 0,        /* lo and hi ignored */
    LG_RANGE_LO = 1,          /* value >= lo (or > lo with LG_RANGE_LO_OPEN) */
    LG_RANGE_HI = 2,          /* value <= hi (or < hi with LG_RANGE_HI_OPEN) */
    LG_RANGE_LO_OPEN = 4 | 1,
    LG_RANGE_HI_OPEN = 8 | 2,
};
typedef struct lg_hparam {
    const char *name;
    lg_hparam_type type;
    const char *dflt;
    double lo, hi;
    int range;              /* LG_RANGE_* bits */
    const char *choices;    /* ENUM: "sgd|adam|adamw" */
    const char *doc;
} lg_hparam;

/* A parsed hparam. The runtime keeps an array of these in the order of the
 * def's hparam table; generated code reads hp[LENET_HP_LR].f. */
typedef struct lg_value {
    int64_t i;
    double f;
    int b;
    const char *s; /* STR and ENUM; owned by the runtime */
} lg_value;

/* ---- parameters --------------------------------------------------------- */

typedef enum {
    LG_PARAM_TRAIN,  /* optimised: has a gradient, the optimizer updates it */
    LG_PARAM_BUFFER, /* saved, not optimised (running_mean, num_batches_tracked) */
} lg_param_role;

/* How the runtime initialises a parameter when the def has no init function:
 * PyTorch's defaults for its layers. */
typedef enum {
    LG_INIT_NONE,            /* left as zeros */
    LG_INIT_ZEROS,
    LG_INIT_ONES,
    LG_INIT_KAIMING_UNIFORM, /* nn.Linear/Conv weight: kaiming_uniform(a = sqrt(5)),
                              * i.e. U(-b, b) with b = 1 / sqrt(fan_in) */
    LG_INIT_FAN_IN_UNIFORM,  /* nn.Linear/Conv bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
} lg_init_kind;

/* One tensor of the model, named as in PyTorch's state_dict. All tensors live
 * in one float block (the "parameter block") at fixed offsets; gradients live
 * in a second block of the same layout (only TRAIN entries are used).
 * TRAIN tensors must come first: the block's first n_train floats are exactly
 * the optimised ones, so the optimizer makes one pass over them. */
typedef struct lg_param {
    const char *name;        /* "conv1.weight" */
    int ndim;
    int64_t shape[6];
    size_t numel;
    size_t offset;           /* in floats, into the parameter block */
    lg_param_role role;
    int group;               /* optimizer parameter group (0 = the default group) */
    lg_init_kind init;
    int64_t fan_in;          /* for the uniform inits */
    int is_int64;            /* stored as float in the block, saved as I64
                              * (num_batches_tracked) */
} lg_param;

/* ---- logged values ------------------------------------------------------- */

typedef enum {
    LG_STAGE_TRAIN,
    LG_STAGE_VALIDATE,
    LG_STAGE_TEST,
    LG_STAGE_PREDICT,
    LG_STAGE_COUNT
} lg_stage;

enum {
    LG_LOG_STEP = 1,     /* logged every log_every_n_steps (train) */
    LG_LOG_EPOCH = 2,    /* averaged over the epoch, weighted by batch size */
    LG_LOG_PROG_BAR = 4, /* shown in the progress bar */
};

/* `log val_acc = accuracy(y, b.label)` in a step: one entry, in the order the
 * step writes them into lg_step_io.logs. Lightning's defaults: train
 * LG_LOG_STEP, validate/test LG_LOG_EPOCH; both usually with LG_LOG_PROG_BAR. */
typedef struct lg_metric {
    const char *name;
    int flags;
} lg_metric;

/* ---- optimizer and scheduler -------------------------------------------- */

/* A named argument as written in the spec: sgd(lr: lr, momentum: 0.9). */
typedef struct lg_kwarg {
    const char *name;
    double num;
    const char *str; /* non-NULL for string/enum arguments ("max", "cos") */
} lg_kwarg;

#define LG_MAX_KWARGS 16
#define LG_MAX_GROUPS 8

typedef struct lg_kwargs {
    int n;
    lg_kwarg arg[LG_MAX_KWARGS];
} lg_kwargs;

/* What configure_optimizers returns. Kinds and argument names are the spec's
 * (PyTorch's): optimizer "sgd" (lr, momentum, dampening, nesterov,
 * weight_decay), "adam"/"adamw" (lr, beta1, beta2, eps, weight_decay,
 * amsgrad), "rmsprop" (lr, alpha, eps, momentum, weight_decay, centered);
 * scheduler NULL/"none", "step" (step_size, gamma), "multistep"
 * (milestones as m0, m1, ..., gamma), "exponential" (gamma), "cosine"
 * (t_max, eta_min), "one_cycle" (max_lr, total_steps, pct_start, ...),
 * "reduce_on_plateau" (monitor, mode, factor, patience, threshold, min_lr);
 * any scheduler may add warmup_steps / warmup_start_factor. group[g] holds
 * the overrides of parameter group g (lr, weight_decay) for g >= 1. */
typedef struct lg_optim_desc {
    const char *optimizer;
    lg_kwargs args;
    int n_groups;                   /* 1 + number of extra groups */
    lg_kwargs group[LG_MAX_GROUPS];
    const char *scheduler;
    lg_kwargs sched_args;
    int sched_per_step;             /* 1: scheduler steps every optimizer step
                                     * (Lightning interval "step"), 0: every epoch */
} lg_optim_desc;

/* What configure_optimizers may read besides the hparams. */
typedef struct lg_fit_info {
    int64_t max_epochs;             /* -1: none */
    int64_t max_steps;              /* -1: none */
    int64_t steps_per_epoch;        /* optimizer steps per epoch after limits */
    int64_t estimated_stepping_batches; /* Lightning's trainer.estimated_stepping_batches */
} lg_fit_info;

/* ---- data ---------------------------------------------------------------- */

/* A source of batches for the splits that name no dataset (tests, custom
 * data); splits with a dataset go through the data pipeline.
 * fill() writes batch number `index` of `epoch` for stage into b (whose
 * buffers the runtime allocated for batch_size samples of the split's shape)
 * and must depend only on its arguments, so resume is exact. */
typedef struct lg_batch_source {
    int64_t (*n_samples)(void *self, lg_stage stage);
    lg_status (*fill)(void *self, lg_stage stage, int64_t epoch, int64_t index,
                      uint64_t seed, const lg_loader_options *opt, lg_batch *b,
                      lg_error *err);
    void *self;
} lg_batch_source;

/* The spec's data block. A stage whose split is NULL has no loader
 * (validation is skipped without a val split; test/predict then fail with a
 * clear message). */
typedef struct lg_data_def {
    const lg_split_spec *split[LG_STAGE_COUNT];
    lg_loader_options options;      /* the data block's batch_size, num_workers,
                                     * shuffle (train only), drop_last */
    /* Optional: sets options from hparams (batch_size = batch_size). */
    void (*configure)(const lg_value *hp, lg_loader_options *opt);
    const lg_batch_source *source;  /* optional: serves splits with dataset NULL */
} lg_data_def;

/* ---- steps --------------------------------------------------------------- */

/* What a step function reads and writes. The runtime owns every buffer. */
typedef struct lg_step_io {
    lg_ctx *ctx;               /* threads and error messages for kernels.h */
    float *params;             /* the parameter block */
    float *grads;              /* the gradient block (train: accumulate into it) */
    void *arena;               /* activations, arena_fixed + arena_per_sample * N bytes,
                                * 64-byte aligned; free to reuse between calls */
    const lg_value *hp;        /* hparams in table order */
    int training;              /* 1 in train_step, 0 otherwise (batch_norm, dropout) */
    uint64_t seed;             /* --seed: mix with global_step and a layer id for dropout */
    int64_t global_step;       /* optimizer steps taken so far */
    int64_t epoch;
    float loss;                /* train_step writes the loss here */
    float *logs;               /* [n_logs of the stage]: the step writes its logged
                                * values (batch means); the runtime averages them */
    float *outputs;            /* predict: [N, predict_width] per-sample scores */
    int skip_step;             /* train_step sets it to skip this optimizer step (mixed
                                * precision: inf/NaN gradients under loss scaling) */
} lg_step_io;

typedef lg_status (*lg_step_fn)(lg_step_io *io, const lg_batch *b);

/* ---- the runtime's generator (init, shuffles the runtime owns) ----------- */

/* xoshiro256**, seeded with splitmix64; its state goes into checkpoints. */
typedef struct lg_prng {
    uint64_t s[4];
} lg_prng;

void lg_prng_seed(lg_prng *r, uint64_t seed);
uint64_t lg_prng_next(lg_prng *r);
/* Uniform in [lo, hi) as a float, from the top 24 bits. */
float lg_prng_uniform(lg_prng *r, float lo, float hi);

/* U(-bound, bound) for n floats: generated init functions may call it. */
void lg_init_uniform(float *p, size_t n, float bound, lg_prng *rng);

/* ---- the model ----------------------------------------------------------- */

/* A trainer default from the spec's trainer block, in flag syntax:
 * { "max_epochs", "10" }, { "checkpoint.monitor", "val_acc" },
 * { "checkpoint.mode", "max" }, { "early_stopping.patience", "3" }. The keys
 * are the flag names `<prog> fit --help` lists. */
typedef struct lg_setting {
    const char *key;
    const char *value;
} lg_setting;

typedef struct lg_model_def {
    const char *name;          /* program and model name ("lenet") */
    const char *doc;           /* the model's doc string */
    const char *version;       /* the lgen version that generated it */
    const char *spec_path;     /* "specs/lenet.lmod" */
    const char *spec_hash;     /* hex sha256 of the spec's source: checkpoints of
                                * another spec are refused */

    const lg_hparam *hparams;
    int n_hparams;

    const lg_param *params;
    int n_params;
    size_t n_floats;           /* size of the parameter block */
    size_t n_train;            /* leading floats that are optimised */

    const lg_metric *logs[LG_STAGE_COUNT]; /* logged values of each step */
    int n_logs[LG_STAGE_COUNT];

    const lg_setting *defaults; /* the spec's trainer block */
    int n_defaults;

    /* Returns the optimizer and scheduler (the spec's optimizer/scheduler
     * blocks evaluated with the hparams). NULL: SGD with lr 0.01. */
    lg_status (*configure_optimizers)(const lg_value *hp, const lg_fit_info *fit,
                                      lg_optim_desc *out, lg_error *err);

    const lg_data_def *data;

    size_t arena_fixed;        /* activation arena: fixed bytes ... */
    size_t arena_per_sample;   /* ... plus these per sample of a batch */

    /* Optional: initialises the parameter block (already zeroed) from the
     * runtime's generator; NULL: each lg_param's init kind is applied in
     * table order with lg_init_params. */
    void (*init)(float *params, lg_prng *rng);

    lg_step_fn train_step;     /* forward + backward: loss, logs, grads += */
    lg_step_fn eval_step[LG_STAGE_COUNT]; /* [LG_STAGE_VALIDATE], [LG_STAGE_TEST]: logs */
    lg_step_fn predict_step;   /* outputs: [N, predict_width] */
    int predict_width;         /* per-sample outputs (class scores or probabilities) */
    int predict_probs;         /* 1: outputs are probabilities already;
                                * 0: the runtime applies softmax for the file */
    const char *const *class_names; /* optional, predict_width entries (a detector:
                                * its classes, background first) */
    int predict_detections;    /* a detector: D > 0 detections per image, its outputs
                                * rows (x1, y1, x2, y2, score, label), label -1 past
                                * the image's count; predict writes JSON and PNG copies */
    int n_class_names;         /* a detector: entries of class_names */

    /* Optional: metrics of a whole evaluation epoch (VOC mAP). eval_begin runs
     * before the first batch of a validation or test loop, eval_end after the
     * last; it may overwrite means[k], the epoch values of the stage's logs
     * (otherwise the batch-size weighted means). */
    lg_status (*eval_begin)(lg_stage stage, lg_error *err);
    lg_status (*eval_end)(lg_stage stage, double *means, lg_error *err);
} lg_model_def;

/* The whole program: parses argv, runs the subcommand, returns the exit status. */
int lg_main(int argc, char **argv, const lg_model_def *def);

/* Applies each parameter's lg_init_kind in table order (what def->init = NULL
 * means). */
void lg_init_params(const lg_model_def *def, float *params, lg_prng *rng);

#endif
