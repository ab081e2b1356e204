/* gradcheck.c — checks a generated trainer's backward pass against central
 * finite differences, in double precision.
 *
 * gradcheck.sh turns a generated NAME.c into its float64 twin (every float
 * becomes double, every kernel call its _f64 twin from lgen/kernels.h) and
 * compiles this file with it included (GEN_FILE, GEN_DEF = NAME_def). We then
 * draw parameters and a small batch, run the generated train step once for
 * the analytic gradients, and for a spread of entries of every trainable
 * tensor compare with (L(p + h) - L(p - h)) / 2h from the same step's loss.
 * Prints one line per tensor and exits 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lgen/trainer.h>

#define lg_main(argc, argv, def) ((void)(argc), (void)(argv), (void)(def), 0)
#define main generated_main
#include GEN_FILE
#undef main
#undef lg_main

static double urand(unsigned long long *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / (double)(1ULL << 53);
}

int main(void) {
    char *argv0[] = {"gradcheck", NULL};
    generated_main(1, argv0);
    lg_model_def *def = &GEN_DEF;
    const int N = 3;
    size_t arena_bytes = def->arena_fixed + def->arena_per_sample * (size_t)N;
    double *params = calloc(def->n_floats, sizeof(double));
    double *grads = calloc(def->n_floats, sizeof(double));
    void *arena = aligned_alloc(64, (arena_bytes + 63) / 64 * 64);
    const lg_split_spec *sp = def->data && def->data->split[LG_STAGE_TRAIN] ? def->data->split[LG_STAGE_TRAIN] : NULL;
    int c = sp ? sp->channels : 1, h = sp ? sp->height : 28, w = sp ? sp->width : 28;
    size_t img = (size_t)c * h * w;
    double *image = calloc((size_t)N * img, sizeof(double));
    int32_t label[3] = {1, 7, 3};
    unsigned long long seed = 12345;
    for (int i = 0; i < def->n_params; i++) {
        const lg_param *p = &def->params[i];
        double bound = p->fan_in ? 1.0 / sqrt((double)p->fan_in) : 0.5;
        for (size_t k = 0; k < p->numel; k++)
            params[p->offset + k] = p->role == LG_PARAM_TRAIN ? (2 * urand(&seed) - 1) * bound * 1.5
                                                             : (strstr(p->name, "running_var") ? 1 : 0);
    }
    for (size_t k = 0; k < (size_t)N * img; k++)
        image[k] = 2 * urand(&seed) - 1;
    lg_batch b = {.n = N, .batch_size = N, .channels = c, .height = h, .width = w};
    b.image = (float *)(void *)image;
    b.label = label;
    double logs[16];
    lg_error err = {0};
    lg_ctx kctx = {.pool = NULL, .threads = 1, .err = &err};
    lg_step_io io = {.ctx = &kctx, .params = (float *)(void *)params, .grads = (float *)(void *)grads,
                     .arena = arena, .training = 1, .logs = (float *)(void *)logs};
    memset(grads, 0, def->n_floats * sizeof(double));
    if (def->train_step(&io, &b)) {
        fprintf(stderr, "gradcheck: train step failed: %s\n", err.msg);
        return 1;
    }
    double *analytic = malloc(def->n_floats * sizeof(double));
    memcpy(analytic, grads, def->n_floats * sizeof(double));
    double *scratch = calloc(def->n_floats, sizeof(double));
    io.grads = (float *)(void *)scratch;
    int bad = 0, checked = 0;
    const double eps = 1e-5;
    for (int i = 0; i < def->n_params; i++) {
        const lg_param *p = &def->params[i];
        if (p->role != LG_PARAM_TRAIN)
            continue;
        double worst = 0;
        size_t stride = p->numel > 40 ? p->numel / 40 : 1;
        for (size_t k = 0; k < p->numel; k += stride) {
            size_t at = p->offset + k;
            double keep = params[at];
            params[at] = keep + eps;
            def->train_step(&io, &b);
            double up = logs[15]; /* gradcheck.sh routes the loss here, in double */
            params[at] = keep - eps;
            def->train_step(&io, &b);
            double down = logs[15];
            params[at] = keep;
            double num = (up - down) / (2 * eps);
            double diff = fabs(num - analytic[at]) / fmax(1e-3, fabs(num) + fabs(analytic[at]));
            if (diff > worst)
                worst = diff;
            checked++;
            if (diff > 1e-4) {
                if (bad < 10)
                    fprintf(stderr, "gradcheck: %s[%zu]: analytic %.10g, numeric %.10g\n", p->name, k,
                            analytic[at], num);
                bad++;
            }
        }
        printf("%-24s max relative error %.2e\n", p->name, worst);
    }
    printf("gradcheck: %d entries, %d mismatches\n", checked, bad);
    free(params);
    free(grads);
    free(arena);
    free(image);
    free(analytic);
    free(scratch);
    return bad ? 1 : 0;
}
