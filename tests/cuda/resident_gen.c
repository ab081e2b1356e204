/* tests/cuda/resident_gen.c — a generated NAME_cuda.c's optimizer on the
 * device, run against tests/cuda/fake_device.c (a device in host memory).
 *
 * tests/cuda/check_resident_gen.sh compiles this file with the spec's
 * generated NAME.c included (SPEC_C; DEF names its model def) and links it
 * with NAME_cuda.c, the fake device and stubs for the layers' launchers.
 * For SGD (momentum, nesterov, weight decay), Adam (amsgrad, weight decay)
 * and RMSprop (momentum, centered), with one parameter group per group the
 * spec's parameters use (each with its own lr and weight decay), it asserts
 * through lg_cuda_trainer_steps and lg_cuda_resident_steps:
 *   - to_device places every tensor of the host block once, at 256-byte
 *     aligned offsets, zeros between them;
 *   - to_host gives back the weights, buffers and optimizer state that
 *     to_device sent, and keeps the host's num_batches_tracked;
 *   - an optimizer step (1/accumulate scaling, clipping by norm or value,
 *     the fused updates) leaves exactly what lg_optim_step leaves on the
 *     host from the same gradients (bit for bit), counts the step, and
 *     zeroes the gradients; a step the runtime skips changes nothing;
 *   - 16-mixed: gradients with an inf are skipped and halve the scale,
 *     finite ones (scaled) are unscaled and give the CPU's update, the
 *     growth tracker counts; scaler_set/get round trip; bf16-mixed and
 *     32-true report no scaler.
 * Prints one line per check; exit status 1 when one fails.
 */
#define main spec_unused_main
#include SPEC_C
#undef main

#include "lgen/cuda.h"
#include "lgen/cuda_optim.h"
#include "lgen/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char *fake_arena;
extern size_t fake_arena_bytes;

static int failures;
static lg_error err;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                        \
            printf(__VA_ARGS__);                                                               \
            printf("\n");                                                                      \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)
#define TRY(call)                                                                              \
    do {                                                                                       \
        if ((call) != LG_OK) {                                                                 \
            printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, err.msg);                \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static unsigned rs = 99u;
static float rnd(void) {
    rs = rs * 1664525u + 1013904223u;
    return (float)(rs >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static const lg_model_def *def = &DEF;
static size_t *where;   /* host float -> device float */
static size_t n_dev;    /* the device block (floats) */
static const lg_cuda_resident *R = &lg_cuda_resident_steps;

static void start(const char *precision) {
    const lg_model_def *gpu = NULL;
    TRY(lg_cuda_trainer_steps.init(0, precision, 8, def, &gpu, &err));
    CHECK(gpu && gpu->train_step && gpu->train_step != def->train_step, "init did not return GPU steps");
}

static int counter(size_t i) { /* a num_batches_tracked float of the host block */
    for (int k = 0; k < def->n_params; k++)
        if (def->params[k].is_int64 && i >= def->params[k].offset && i < def->params[k].offset + def->params[k].numel)
            return 1;
    return 0;
}

/* The device layout, found by sending index-coded weights. */
static void map_layout(void) {
    size_t n = def->n_floats;
    float *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = (float)(i + 1);
    TRY(R->to_device(idx, NULL, &err));
    const float *a = (const float *)fake_arena;
    free(where);
    where = calloc(n, sizeof *where);
    size_t found = 0, last = 0, nonzero_gap = 0;
    for (size_t j = 0; j < n + 64 * (size_t)def->n_params + 64; j++) {
        if (a[j] == 0)
            continue;
        size_t h = (size_t)a[j] - 1;
        if (a[j] != (float)(h + 1) || h >= n || where[h]) {
            nonzero_gap++;
            continue;
        }
        where[h] = j;
        found++;
        last = j;
    }
    for (int k = 0; k < def->n_params; k++)
        CHECK(where[def->params[k].offset] % 64 == 0, "%s is at device float %zu, not on a 256-byte boundary",
              def->params[k].name, where[def->params[k].offset]);
    CHECK(found == n && nonzero_gap == 0, "to_device placed %zu of %zu floats (%zu stray values)", found, n,
          nonzero_gap);
    n_dev = (last + 1 + 63) / 64 * 64;
    free(idx);
}

static float *grads_dev(void) { /* the gradient block follows the parameters (NAME_GRADS_OFFSET) */
    return (float *)fake_arena + n_dev;
}

static void init_optim(lg_optim *o, const lg_optim_config *cfg) {
    int ng = 1;
    lg_optim_param ps[256];
    int np = 0;
    for (int k = 0; k < def->n_params; k++) {
        const lg_param *q = &def->params[k];
        if (q->role != LG_PARAM_TRAIN)
            continue;
        ps[np++] = (lg_optim_param){q->offset, q->numel, q->group};
        if (q->group + 1 > ng)
            ng = q->group + 1;
    }
    lg_optim_group g[LG_MAX_GROUPS];
    for (int i = 0; i < ng; i++)
        g[i] = (lg_optim_group){cfg->lr * (1 + i), 0, cfg->weight_decay * (i == 1 ? 0 : 1 + i)};
    TRY(lg_optim_init(o, cfg, ng, g, np, ps, def->n_floats, &err));
}

static void copy_state(lg_optim *dst, const lg_optim *src) {
    for (int s = 0; s < src->nslots; s++)
        memcpy(dst->slot[s], src->slot[s], src->total * sizeof(float));
    dst->step = src->step;
    for (int g = 0; g < src->ngroups; g++)
        dst->groups[g] = src->groups[g];
}

/* host-layout gradients g (trained floats) into the device's block */
static void put_grads(const float *g, float mul) {
    for (size_t i = 0; i < def->n_train; i++)
        grads_dev()[where[i]] = g[i] * mul;
}

static int same_block(const float *a, const float *b, int skip_counters) {
    for (size_t i = 0; i < def->n_floats; i++)
        if (!(skip_counters && counter(i)) && memcmp(&a[i], &b[i], sizeof(float)) != 0)
            return 0;
    return 1;
}

static int same_state(const lg_optim *a, const lg_optim *b) {
    for (int s = 0; s < a->nslots; s++)
        for (size_t i = 0; i < def->n_train; i++)
            if (memcmp(&a->slot[s][i], &b->slot[s][i], sizeof(float)) != 0)
                return 0;
    return a->step == b->step;
}

static void check_optimizer(const lg_optim_config *cfg, const char *what) {
    const size_t n = def->n_floats, nt = def->n_train;
    int before = failures;
    start("32-true");
    map_layout();
    float *p = malloc(n * sizeof *p), *q = malloc(n * sizeof *q), *ref = malloc(n * sizeof *ref);
    float *g = malloc(nt * sizeof *g);
    for (size_t i = 0; i < n; i++)
        p[i] = counter(i) ? 5.0f : rnd();
    lg_optim o, o2, oref;
    init_optim(&o, cfg);
    init_optim(&o2, cfg);
    init_optim(&oref, cfg);
    for (int s = 0; s < o.nslots; s++)
        for (size_t i = 0; i < nt; i++)
            o.slot[s][i] = cfg->kind == LG_OPTIM_SGD ? rnd() : fabsf(rnd()) * 0.01f; /* a resumed state */
    o.step = 3;
    /* the round trip */
    TRY(R->to_device(p, &o, &err));
    for (size_t i = 0; i < n; i++)
        q[i] = counter(i) ? 77.0f : 0.0f;
    TRY(R->to_host(q, &o2, &err));
    o2.step = o.step;
    CHECK(same_block(p, q, 1) && same_state(&o, &o2), "%s: to_host did not give back what to_device sent", what);
    for (size_t i = 0; i < n; i++)
        if (counter(i))
            CHECK(q[i] == 77.0f, "%s: to_host overwrote the host's num_batches_tracked", what);
    /* two optimizer steps, clipped by norm then by value, against the CPU */
    memcpy(ref, p, n * sizeof *ref);
    copy_state(&oref, &o);
    for (int step = 0; step < 2; step++) {
        for (size_t i = 0; i < nt; i++)
            g[i] = rnd() * 0.1f;
        put_grads(g, 1.0f);
        for (size_t i = 0; i < nt; i++)
            g[i] *= 0.5f; /* accumulate_grad_batches 2 */
        if (step == 0)
            lg_clip_grad_norm(NULL, g, nt, 0.05, 2.0, NULL);
        else
            lg_clip_grad_value(NULL, g, nt, 0.01);
        TRY(lg_optim_step(&oref, NULL, ref, g));
        int skipped = -1;
        TRY(R->optimizer_step(&o, 0.5f, step == 0 ? LG_CUDA_CLIP_NORM : LG_CUDA_CLIP_VALUE, step == 0 ? 0.05 : 0.01,
                              0, &skipped, &err));
        CHECK(skipped == 0 && o.step == oref.step, "%s: step %d skipped %d, step count %lld (CPU %lld)", what, step,
              skipped, (long long)o.step, (long long)oref.step);
        int zero = 1;
        for (size_t i = 0; i < nt; i++)
            zero &= grads_dev()[where[i]] == 0;
        CHECK(zero, "%s: the gradients were not zeroed after the step", what);
    }
    TRY(R->to_host(q, &o2, &err));
    o2.step = o.step;
    CHECK(same_block(ref, q, 1) && same_state(&oref, &o2),
          "%s: after two steps the device's weights or state differ from lg_optim_step's", what);
    /* a step the runtime skips (a micro-batch asked to) */
    for (size_t i = 0; i < nt; i++)
        g[i] = rnd();
    put_grads(g, 1.0f);
    int64_t steps = o.step;
    int skipped = 0;
    TRY(R->optimizer_step(&o, 1.0f, LG_CUDA_CLIP_NONE, 0, 1, &skipped, &err));
    TRY(R->to_host(q, &o2, &err));
    CHECK(skipped == 1 && o.step == steps && same_block(ref, q, 1), "%s: a skipped step changed something", what);
    if (failures == before)
        printf("ok   %s: round trip, two steps (accumulation, clipping by norm and value) equal to lg_optim_step "
               "bit for bit, a skipped step\n",
               what);
    lg_optim_free(&o), lg_optim_free(&o2), lg_optim_free(&oref);
    free(p), free(q), free(ref), free(g);
}

static void check_scaler(void) {
    const size_t n = def->n_floats, nt = def->n_train;
    int before = failures;
    lg_cuda_scaler s;
    int active = -1;
    start("bf16-mixed");
    TRY(R->scaler_get(&s, &active, &err));
    CHECK(active == 0, "bf16-mixed reports a loss scaler");
    start("32-true");
    TRY(R->scaler_get(&s, &active, &err));
    CHECK(active == 0, "32-true reports a loss scaler");
    start("16-mixed");
    map_layout();
    TRY(R->scaler_get(&s, &active, &err));
    CHECK(active == 1 && s.scale == 65536.0f && s.growth_tracker == 0 && s.growth_interval == 2000,
          "16-mixed: the scaler starts at %g (tracker %d, active %d), not GradScaler's defaults", (double)s.scale,
          (int)s.growth_tracker, active);
    lg_optim_config cfg;
    lg_optim_config_default(&cfg, LG_OPTIM_ADAMW);
    lg_optim o, o2, oref;
    init_optim(&o, &cfg);
    init_optim(&o2, &cfg);
    init_optim(&oref, &cfg);
    float *p = malloc(n * sizeof *p), *q = malloc(n * sizeof *q), *g = malloc(nt * sizeof *g);
    for (size_t i = 0; i < n; i++)
        p[i] = rnd();
    TRY(R->to_device(p, &o, &err));
    for (size_t i = 0; i < nt; i++)
        g[i] = rnd() * 0.01f;
    put_grads(g, 65536.0f);
    grads_dev()[where[nt / 2]] = INFINITY;
    int skipped = 0;
    TRY(R->optimizer_step(&o, 1.0f, LG_CUDA_CLIP_NONE, 0, 0, &skipped, &err));
    TRY(R->scaler_get(&s, &active, &err));
    TRY(R->to_host(q, &o2, &err));
    CHECK(skipped == 1 && o.step == 0 && same_block(p, q, 1), "16-mixed: an inf gradient did not skip the step");
    CHECK(s.scale == 32768.0f && s.growth_tracker == 0, "16-mixed: after an overflow the scale is %g (tracker %d)",
          (double)s.scale, (int)s.growth_tracker);
    /* finite gradients, scaled by 32768: unscaled exactly, then the CPU's update */
    put_grads(g, 32768.0f);
    TRY(R->optimizer_step(&o, 1.0f, LG_CUDA_CLIP_NONE, 0, 0, &skipped, &err));
    TRY(lg_optim_step(&oref, NULL, p, g));
    TRY(R->to_host(q, &o2, &err));
    o2.step = o.step;
    TRY(R->scaler_get(&s, &active, &err));
    CHECK(skipped == 0 && same_block(p, q, 1) && same_state(&oref, &o2),
          "16-mixed: an unscaled step differs from lg_optim_step's");
    CHECK(s.scale == 32768.0f && s.growth_tracker == 1, "16-mixed: after a clean step the scale is %g (tracker %d)",
          (double)s.scale, (int)s.growth_tracker);
    const lg_cuda_scaler saved = {1024.0f, 1999, 2.0f, 0.5f, 2000};
    TRY(R->scaler_set(&saved, &err));
    TRY(R->scaler_get(&s, &active, &err));
    CHECK(memcmp(&s, &saved, sizeof s) == 0, "16-mixed: scaler_set then scaler_get gave another state");
    if (failures == before)
        printf("ok   16-mixed: an inf gradient skips the step and halves the scale; scaled gradients give the "
               "CPU's update; the tracker counts; scaler_set/get; no scaler in 32-true and bf16-mixed\n");
    lg_optim_free(&o), lg_optim_free(&o2), lg_optim_free(&oref);
    free(p), free(q), free(g);
}

int main(void) {
    printf("%s (%s): %zu floats, %d tensors\n", def->name, def->spec_path, def->n_floats, def->n_params);
    lg_optim_config c;
    lg_optim_config_default(&c, LG_OPTIM_SGD);
    c.lr = 0.1, c.momentum = 0.9, c.nesterov = 1, c.weight_decay = 1e-3;
    check_optimizer(&c, "sgd nesterov");
    lg_optim_config_default(&c, LG_OPTIM_ADAM);
    c.amsgrad = 1, c.weight_decay = 1e-2;
    check_optimizer(&c, "adam amsgrad");
    lg_optim_config_default(&c, LG_OPTIM_RMSPROP);
    c.momentum = 0.5, c.centered = 1;
    check_optimizer(&c, "rmsprop momentum centered");
    check_scaler();
    lg_cuda_trainer_steps.free();
    free(where);
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
