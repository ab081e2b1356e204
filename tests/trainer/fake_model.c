/* fake_model.c — the trainer tests' model (see fake_model.h).
 *
 * What generated code would contain, written by hand: hparams, a parameter
 * table with PyTorch-style names, logged values per stage, trainer defaults,
 * configure_optimizers, and the steps. Samples come from a batch source:
 * sample i of a stage is a pure function of (stage, i); the training order
 * is a permutation drawn from (seed, epoch) and each training sample gets
 * noise seeded by (seed, epoch, index) — the same contract as lgen/data.h,
 * so exact resume is tested the way the real loader is used.
 * hparams nan_at and sleep_ms make the train step fail or slow on purpose.
 */
#include "fake_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { D = 4, K = 3 };
enum { HP_LR, HP_OPTIMIZER, HP_MOMENTUM, HP_NAN_AT, HP_SLEEP_MS, HP_NOTE, HP_SEED, HP_COUNT };

static const lg_hparam hparams[HP_COUNT] = {
    {"lr", LG_HP_FLOAT, "0.1", 0, 10, LG_RANGE_LO_OPEN | LG_RANGE_HI, NULL, "learning rate"},
    {"optimizer", LG_HP_ENUM, "sgd", 0, 0, 0, "sgd|adam", "which optimizer"},
    {"momentum", LG_HP_FLOAT, "0.9", 0, 1, LG_RANGE_LO | LG_RANGE_HI_OPEN, NULL, "SGD momentum"},
    {"nan_at", LG_HP_INT, "-1", 0, 0, 0, NULL, "make the loss NaN at this step (-1: never)"},
    {"sleep_ms", LG_HP_INT, "0", 0, 1000, LG_RANGE_LO | LG_RANGE_HI, NULL, "sleep per step"},
    {"note", LG_HP_STR, "hello: world", 0, 0, 0, NULL, "a string hparam"},
    /* shadows the trainer's --seed, as specs/lenet.lmod's split seed does */
    {"seed", LG_HP_INT, "0", 0, 0, 0, NULL, "an hparam named like a trainer flag"},
};

/* Parameter block: fc.weight [3, 4] @0, fc.bias [3] @12 (trained), then
 * stats.running_mean [4] @15 and stats.num_batches_tracked [] @19. */
static const lg_param params[] = {
    {"fc.weight", 2, {K, D}, K * D, 0, LG_PARAM_TRAIN, 0, LG_INIT_KAIMING_UNIFORM, D, 0},
    {"fc.bias", 1, {K}, K, 12, LG_PARAM_TRAIN, 0, LG_INIT_FAN_IN_UNIFORM, D, 0},
    {"stats.running_mean", 1, {D}, D, 15, LG_PARAM_BUFFER, 0, LG_INIT_ZEROS, 0, 0},
    {"stats.num_batches_tracked", 0, {0}, 1, 19, LG_PARAM_BUFFER, 0, LG_INIT_ZEROS, 0, 1},
};

static const lg_metric train_logs[] = {
    {"train_loss", LG_LOG_STEP | LG_LOG_PROG_BAR},
    {"train_acc", LG_LOG_EPOCH},
};
static const lg_metric val_logs[] = {
    {"val_loss", LG_LOG_EPOCH | LG_LOG_PROG_BAR},
    {"val_acc", LG_LOG_EPOCH | LG_LOG_PROG_BAR},
};
static const lg_metric test_logs[] = {
    {"test_loss", LG_LOG_EPOCH},
    {"test_acc", LG_LOG_EPOCH},
};

static const lg_setting defaults[] = {
    {"max_epochs", "3"},
    {"log_every_n_steps", "2"},
    {"num_sanity_val_steps", "1"},
};

/* ---- data ---------------------------------------------------------------- */

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t x = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull) ^ (c << 17);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int64_t n_samples(void *self, lg_stage stage) {
    (void)self;
    return stage == LG_STAGE_TRAIN ? 100 : 40;
}

static void sample(lg_stage stage, int64_t i, float *x, int32_t *y) {
    static const float w[K][D] = {{1, -1, 0.5f, 0}, {-0.5f, 1, 1, -1}, {0, 0.5f, -1, 1}};
    lg_prng r;
    lg_prng_seed(&r, mix((uint64_t)stage + 1, (uint64_t)i, 7));
    for (int d = 0; d < D; d++)
        x[d] = lg_prng_uniform(&r, -1, 1);
    int best = 0;
    float bv = -1e30f;
    for (int k = 0; k < K; k++) {
        float s = 0;
        for (int d = 0; d < D; d++)
            s += w[k][d] * x[d];
        if (s > bv)
            bv = s, best = k;
    }
    *y = best;
}

static lg_status fill(void *self, lg_stage stage, int64_t epoch, int64_t index, uint64_t seed,
                      const lg_loader_options *opt, lg_batch *b, lg_error *err) {
    (void)self;
    (void)err;
    int64_t n = n_samples(NULL, stage);
    int64_t perm[100];
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    if (opt->shuffle) {
        lg_prng r;
        lg_prng_seed(&r, mix(seed, (uint64_t)epoch, 1));
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(lg_prng_next(&r) % (uint64_t)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }
    for (int s = 0; s < b->batch_size; s++) {
        int64_t pos = index * b->batch_size + s;
        float *x = b->image + (size_t)s * D;
        if (s >= b->n) {
            memset(x, 0, D * sizeof *x);
            b->label[s] = -1;
            b->index[s] = -1;
            continue;
        }
        int64_t i = perm[pos];
        sample(stage, i, x, &b->label[s]);
        b->index[s] = i;
        if (stage == LG_STAGE_TRAIN && opt->shuffle) { /* augmentation */
            lg_prng r;
            lg_prng_seed(&r, mix(seed, (uint64_t)epoch, (uint64_t)i + 1000));
            for (int d = 0; d < D; d++)
                x[d] += lg_prng_uniform(&r, -0.05f, 0.05f);
        }
    }
    return LG_OK;
}

static const lg_batch_source source = {n_samples, fill, NULL};

static const lg_split_spec train_split = {"train", NULL, "train", 0, 1, 0, NULL, 0, 1, 1, D, 0};
static const lg_split_spec val_split = {"val", NULL, "val", 0, 1, 0, NULL, 0, 1, 1, D, 0};
static const lg_split_spec test_split = {"test", NULL, "test", 0, 1, 0, NULL, 0, 1, 1, D, 0};

static const lg_data_def data = {
    {&train_split, &val_split, &test_split, NULL},
    {16, 0, 1, 0, 0},
    NULL,
    &source,
};

/* ---- steps --------------------------------------------------------------- */

static void forward(const float *p, const float *x, float *logits) {
    for (int k = 0; k < K; k++) {
        float s = p[12 + k];
        for (int d = 0; d < D; d++)
            s += p[k * D + d] * x[d];
        logits[k] = s;
    }
}

/* Mean cross entropy and accuracy over the batch; with g, accumulates the
 * gradient of the mean loss. */
static void loss_acc(const lg_step_io *io, const lg_batch *b, float *g, float *loss, float *acc) {
    double L = 0;
    int right = 0;
    for (int s = 0; s < b->n; s++) {
        const float *x = b->image + (size_t)s * D;
        float z[K], m;
        forward(io->params, x, z);
        m = z[0];
        for (int k = 1; k < K; k++)
            m = z[k] > m ? z[k] : m;
        double sum = 0;
        for (int k = 0; k < K; k++)
            sum += exp((double)(z[k] - m));
        int y = b->label[s], arg = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[arg])
                arg = k;
        right += arg == y;
        L += log(sum) - (double)(z[y] - m);
        if (g)
            for (int k = 0; k < K; k++) {
                float d = (float)(exp((double)(z[k] - m)) / sum) - (k == y);
                d /= (float)b->n;
                for (int j = 0; j < D; j++)
                    g[k * D + j] += d * x[j];
                g[12 + k] += d;
            }
    }
    *loss = (float)(L / b->n);
    *acc = (float)right / (float)b->n;
}

static lg_status train_step(lg_step_io *io, const lg_batch *b) {
    if (io->hp[HP_SLEEP_MS].i > 0) {
        struct timespec ts = {0, (long)io->hp[HP_SLEEP_MS].i * 1000000L};
        nanosleep(&ts, NULL);
    }
    loss_acc(io, b, io->grads, &io->loss, &io->logs[1]);
    if (io->hp[HP_NAN_AT].i == io->global_step)
        io->loss = NAN;
    io->logs[0] = io->loss;
    /* buffers, as batch_norm would keep them */
    for (int d = 0; d < D; d++) {
        float mean = 0;
        for (int s = 0; s < b->n; s++)
            mean += b->image[(size_t)s * D + d];
        mean /= (float)b->n;
        io->params[15 + d] = 0.9f * io->params[15 + d] + 0.1f * mean;
    }
    io->params[19] += 1;
    return LG_OK;
}

static lg_status eval_step(lg_step_io *io, const lg_batch *b) {
    loss_acc(io, b, NULL, &io->logs[0], &io->logs[1]);
    return LG_OK;
}

static lg_status predict_step(lg_step_io *io, const lg_batch *b) {
    for (int s = 0; s < b->n; s++)
        forward(io->params, b->image + (size_t)s * D, io->outputs + (size_t)s * K);
    return LG_OK;
}

static lg_status configure_optimizers(const lg_value *hp, const lg_fit_info *fit, lg_optim_desc *o,
                                      lg_error *err) {
    (void)fit;
    (void)err;
    o->optimizer = hp[HP_OPTIMIZER].s;
    o->args.arg[o->args.n++] = (lg_kwarg){"lr", hp[HP_LR].f, NULL};
    if (strcmp(hp[HP_OPTIMIZER].s, "sgd") == 0) {
        o->args.arg[o->args.n++] = (lg_kwarg){"momentum", hp[HP_MOMENTUM].f, NULL};
        o->args.arg[o->args.n++] = (lg_kwarg){"weight_decay", 1e-3, NULL};
    }
    o->scheduler = "step";
    o->sched_args.arg[o->sched_args.n++] = (lg_kwarg){"step_size", 2, NULL};
    o->sched_args.arg[o->sched_args.n++] = (lg_kwarg){"gamma", 0.5, NULL};
    return LG_OK;
}

static const char *const class_names[K] = {"a", "b", "c"};

/* The same model fed by the real pipeline: a CSV file (4 features and a
 * label per row) that the test writes and serves with --mirror file://. */
static const lg_file_desc csv_files[] = {{"fake.csv", NULL, 0}};
static const char *const csv_paths[] = {"fake.csv"};
static const lg_split_desc csv_splits[] = {{"all", csv_paths, 1, NULL}};
static const char *const csv_mirrors[] = {"file:///nonexistent-lgen-mirror/"};
static const lg_dataset_desc csv_dataset = {
    "fakecsv", csv_mirrors, 1, csv_files, 1, LG_FORMAT_CSV,
    {.csv_header = 1, .csv_label_column = -1}, NULL, 0, csv_splits, 1};
static const lg_split_spec csv_train = {"train", &csv_dataset, "all", 0, 0.75, 42, NULL, 0, 1, 1, D, 0};
static const lg_split_spec csv_val = {"val", &csv_dataset, "all", 0.75, 1, 42, NULL, 0, 1, 1, D, 0};
static const lg_data_def csv_data = {
    {&csv_train, &csv_val, &csv_val, NULL},
    {16, 0, 1, 0, 0},
    NULL,
    NULL,
};

#define FAKE_DEF(HASH, DATA)                                                                     \
    {                                                                                            \
        .name = "fake", .doc = "a linear classifier for the trainer tests", .version = "test",   \
        .spec_path = "tests/trainer/fake.lmod", .spec_hash = HASH, .hparams = hparams,           \
        .n_hparams = HP_COUNT, .params = params, .n_params = 4, .n_floats = 20, .n_train = 15,   \
        .logs = {train_logs, val_logs, test_logs, NULL}, .n_logs = {2, 2, 2, 0},                 \
        .defaults = defaults, .n_defaults = 3, .configure_optimizers = configure_optimizers,     \
        .data = DATA, .train_step = train_step,                                                 \
        .eval_step = {NULL, eval_step, eval_step, NULL}, .predict_step = predict_step,           \
        .predict_width = K, .class_names = class_names,                                          \
    }

const lg_model_def fake_def =
    FAKE_DEF("f00d000000000000000000000000000000000000000000000000000000000001", &data);
const lg_model_def fake_other_def =
    FAKE_DEF("beef000000000000000000000000000000000000000000000000000000000002", &data);
const lg_model_def fake_csv_def =
    FAKE_DEF("c5v0000000000000000000000000000000000000000000000000000000000003", &csv_data);
