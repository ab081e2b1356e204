/* internal.h — what the files of runtime/trainer/ share (not installed).
 *
 * flags.c turns argv, the spec's trainer defaults and --config JSON into an
 * lg_tconfig; main.c (lg_main) checks it and calls loop.c, which runs the
 * subcommand with the callbacks (callbacks.c), the CSV/YAML logger
 * (logger.c), checkpoints (lgen/checkpoint.h, checkpoint.c) and the progress
 * bar (progress.c). Tests include this header to reach the pieces.
 */
#ifndef LG_TRAINER_INTERNAL_H
#define LG_TRAINER_INTERNAL_H

#include <stdio.h>

#include "lgen/optim.h"
#include "lgen/trainer.h"

typedef enum { LG_CMD_FIT, LG_CMD_VALIDATE, LG_CMD_TEST, LG_CMD_PREDICT, LG_CMD_COUNT } lg_cmd;

/* A batch limit as Lightning takes it: an int counts batches, a float in
 * [0, 1] is a fraction of the loader. */
typedef struct lg_limit {
    int is_frac;
    double frac;
    int64_t n;
} lg_limit;

/* Every trainer option after defaults, spec, --config and argv. */
typedef struct lg_tconfig {
    lg_cmd cmd;
    int64_t max_epochs, min_epochs, max_steps;
    lg_limit limit_train_batches, limit_val_batches, limit_test_batches,
        limit_predict_batches, overfit_batches, val_check_interval;
    int64_t check_val_every_n_epoch; /* 0: None (val_check_interval counts all batches) */
    int64_t num_sanity_val_steps;
    int64_t fast_dev_run;
    int64_t accumulate_grad_batches;
    double gradient_clip_val;        /* 0: no clipping */
    char *gradient_clip_algorithm;   /* "norm" | "value" */
    char *precision;                 /* normalised: "32-true", "16-mixed", ... */
    char *accelerator;               /* cpu | gpu | auto */
    char *devices;                   /* "auto" or a count */
    int deterministic;
    int64_t seed;
    int64_t log_every_n_steps;
    int enable_progress_bar;
    int enable_checkpointing;
    int enable_model_summary;
    int logger;
    int tensorboard;
    char *default_root_dir;
    char *ckpt_path;                 /* PATH | URL | last | best | "" */
    char *init_from, *init_prefix;   /* --init_from FILE, --init_prefix PREFIX ("": none) */
    char *data_dir, *mirror;
    int64_t num_workers, batch_size, num_threads;
    char *predict_output;            /* file name under the version dir */
    char *predict_input;             /* image files or directories, '\n'-separated
                                      * (--predict_input may be repeated) */
    /* ModelCheckpoint */
    char *ck_monitor, *ck_mode, *ck_filename;
    int64_t ck_save_top_k, ck_every_n_epochs, ck_every_n_train_steps;
    int ck_save_last;
    /* EarlyStopping */
    char *es_monitor, *es_mode;
    int64_t es_patience;
    double es_min_delta;
    int es_check_finite;
    /* LearningRateMonitor */
    char *lr_logging_interval;       /* step | epoch */
    int print_config;
    char *config_path;
    /* hparams, in the def's order */
    int n_hp;
    lg_value *hp;
} lg_tconfig;

/* Fills cfg from the runtime defaults, def->defaults, --config and argv
 * (argv[0] is the program, argv[1] the subcommand). On a usage error returns
 * LG_ERR_ARG with the message (and a suggestion) in err; --help and
 * --version are reported through *exit_now (0 = go on) after printing. */
lg_status lg_tconfig_parse(lg_tconfig *cfg, const lg_model_def *def, int argc, char **argv,
                           int *exit_now, lg_error *err);
void lg_tconfig_free(lg_tconfig *cfg);
/* The effective configuration as a JSON text (caller frees), the same
 * layout --config reads. */
char *lg_tconfig_dump(const lg_tconfig *cfg, const lg_model_def *def);
const char *lg_cmd_name(lg_cmd c);
/* hparam i's value in flag syntax (for hparams.yaml); buf of size n. */
void lg_hparam_format(const lg_model_def *def, const lg_tconfig *cfg, int i, char *buf, size_t n);
/* The closest name to s among names (edit distance), or NULL. */
const char *lg_suggest(const char *s, const char *const *names, int n);

/* ---- the loop ------------------------------------------------------------ */

/* Runs cfg->cmd. Returns 0 ok, 1 error (message in err), 130/143 on a signal. */
int lg_run(const lg_model_def *def, lg_tconfig *cfg, lg_error *err);

/* ---- progress ------------------------------------------------------------ */

typedef struct lg_progress {
    int enabled, tty;
    double t0, last_draw;
    const char *desc;
    int64_t total, done;
    char extra[512];
    int64_t v_num;
} lg_progress;

double lg_now(void);
void lg_progress_begin(lg_progress *p, const char *desc, int64_t total);
void lg_progress_update(lg_progress *p, int64_t done, const char *extra, int force);
void lg_progress_end(lg_progress *p);

/* ---- TensorBoard event files (tensorboard.c) ------------------------------ */

typedef struct lg_tb {
    FILE *f;
} lg_tb;

uint32_t lg_crc32c(const void *data, size_t n);
lg_status lg_tb_open(lg_tb *tb, const char *dir, lg_error *err);
lg_status lg_tb_scalar(lg_tb *tb, const char *tag, double value, int64_t step, lg_error *err);
void lg_tb_close(lg_tb *tb);

/* ---- the trainer's state, shared by loop.c, callbacks.c and state.c ------ */

#define MAX_DATASETS 8
#define MAX_METRICS 128

/* One stage's batches: the data pipeline's loader, or the def's batch source. */
typedef struct lg_feed {
    lg_stage stage;
    const lg_split_spec *spec;
    lg_loader loader;
    int have_loader;
    const lg_batch_source *src;
    lg_batch batch;
    void *buf;
    lg_loader_options opt;
    int64_t n_samples, n_batches;
    int64_t epoch, next;
} lg_feed;

/* The latest value of every logged name (monitors, file names, metadata). */
typedef struct lg_metric_store {
    int n;
    char *name[MAX_METRICS];
    double value[MAX_METRICS];
} lg_metric_store;

typedef struct lg_topk {
    char *path;
    double score;
} lg_topk;

typedef struct lg_trainer {
    const lg_model_def *def;
    lg_tconfig *cfg;
    lg_error *err;
    lg_ctx ctx;
    int have_ctx;
    float *params, *grads;
    void *arena;
    lg_optim optim;
    int have_optim;
    lg_sched sched;
    int have_sched, sched_per_step;
    char sched_monitor[128];
    const char *optim_name;  /* PyTorch's class name: "SGD", "Adam", ... */
    /* GPU steps that keep parameters and optimizer state on the device
     * (lgen/cuda_optim.h); res_dirty: the device's are newer than params */
    const struct lg_cuda_resident *res;
    int res_dirty;
    lg_prng rng;
    /* data */
    lg_data_config dcfg;
    lg_loader_options lopt;
    struct {
        const lg_dataset_desc *desc;
        const char *source;
        lg_dataset *ds;
    } dsc[MAX_DATASETS];
    int n_dsc;
    /* loop position */
    int64_t epoch, batch, global_step;
    int epoch_done;
    int64_t n_train, n_val, val_every;
    /* logs */
    char *root, *vdir, *ckdir;
    int64_t version;
    FILE *metrics;
    lg_tb tb;
    int n_cols;
    char **cols;
    lg_metric_store latest;
    /* ModelCheckpoint */
    lg_topk *best;
    int n_best;
    char *best_path;
    double best_score;
    char *last_saved;
    /* EarlyStopping */
    int64_t es_wait;
    double es_best;
    int es_has_best, should_stop;
    lg_progress bar;
    float *logbuf;
    float *outbuf;
    int usage; /* the error is the user's configuration: exit status 2 */
} lg_trainer;

/* callbacks.c: helpers, metrics, the logger, ModelCheckpoint, EarlyStopping */
lg_status lg_tr_fail(lg_trainer *t, lg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error in the run's configuration (exit status 2). */
lg_status lg_tr_usage(lg_trainer *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *lg_tr_xstrdup(const char *s);
char *lg_tr_path_join(const char *a, const char *b);
lg_status lg_tr_mkdir_p(lg_trainer *t, const char *path);
void lg_tr_metric_set(lg_metric_store *m, const char *name, double v);
int lg_tr_metric_get(const lg_metric_store *m, const char *name, double *v);
void lg_tr_metric_free(lg_metric_store *m);
void lg_tr_train_metric_name(const lg_metric *m, int epoch, char *buf, size_t n);
void lg_tr_lr_name(lg_trainer *t, int g, char *buf, size_t n);
int lg_tr_known_metrics(lg_trainer *t, const char **names, char store[][128], int cap);
lg_status lg_tr_check_monitor(lg_trainer *t, const char *flag, const char *name);
int64_t lg_tr_max_version(const char *root);
lg_status lg_tr_logger_open(lg_trainer *t, const char *const *cols, int ncols);
void lg_tr_log_row(lg_trainer *t, int64_t step, int n, const char *const *names, const double *vals);
lg_status lg_tr_save_last(lg_trainer *t);
lg_status lg_tr_checkpoint_now(lg_trainer *t);
void lg_tr_early_stopping_check(lg_trainer *t);

/* state.c: optimizer setup, checkpoints (save, resolve, load) */
lg_status lg_tr_setup_optimizer(lg_trainer *t, const lg_fit_info *fit);
lg_status lg_tr_ckpt_save(lg_trainer *t, const char *path);
/* loop.c: the host's parameters (and optimizer state) to the device after
 * the host set them, and back before the host reads them (no-ops unless the
 * GPU steps keep them on the device). */
lg_status lg_tr_params_to_device(lg_trainer *t);
lg_status lg_tr_params_to_host(lg_trainer *t);
lg_status lg_tr_resolve_ckpt(lg_trainer *t, const char *spec, char **out);
lg_status lg_tr_ckpt_load(lg_trainer *t, const char *path, int full);

/* init_from.c: --init_from FILE [--init_prefix PREFIX] into t->params (after
 * the def's init; skipped, with a note, when --ckpt_path is set). */
lg_status lg_tr_init_from(lg_trainer *t);

#endif
