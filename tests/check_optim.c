/* check_optim.c — optimizers, schedulers and clipping (lgen/optim.h)
 * against PyTorch: tests/fixtures/ops/optim.bin (tests/fixtures/gen_optim.py)
 * holds 20-step trajectories of SGD/Adam/AdamW/RMSprop with two parameter
 * groups, the final optimizer state, 30-step lr curves of every scheduler
 * and clip_grad_norm_/clip_grad_value_ results. The configurations are
 * rebuilt here by case name. Also: state save/restore resumes exactly, the
 * step does not depend on the thread count, and bad settings give messages. */
#include "lgen/optim.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_ops_fixture.h"

static fx_file fixture;
static lg_error test_err;

enum { TOTAL = 22, STEPS = 20 };
static const lg_optim_param PARAMS[3] = {{0, 15, 0}, {15, 3, 0}, {18, 4, 1}};

static const fx_tensor *need(const char *a, const char *b) {
    const fx_tensor *t = fx_find(&fixture, b ? "%s/%s" : "%s", a, b);
    ck_assert_msg(t != NULL, "fixture %s/%s is missing", a, b ? b : "");
    return t;
}

static void setup(void) {
    ck_assert_msg(fx_load(&fixture, "tests/fixtures/ops/optim.bin") == 0,
                  "cannot read tests/fixtures/ops/optim.bin (run from the top directory)");
    memset(&test_err, 0, sizeof test_err);
}

static void teardown(void) {
    fx_free(&fixture);
}

/* The configurations of gen_optim.py's OPTS, by name. */
static const char *const OPT_NAMES[] = {"sgd_plain", "sgd_mom", "sgd_nesterov", "sgd_max", "adam",
                                        "adam_ams_wd", "adamw", "adamw_betas", "rmsprop", "rmsprop_full"};

static void opt_config(const char *name, lg_optim_config *c, lg_optim_group g[2]) {
    lg_optim_kind kind = !strncmp(name, "sgd", 3)      ? LG_OPTIM_SGD
                         : !strncmp(name, "adamw", 5)  ? LG_OPTIM_ADAMW
                         : !strncmp(name, "adam", 4)   ? LG_OPTIM_ADAM
                                                       : LG_OPTIM_RMSPROP;
    lg_optim_config_default(c, kind);
    double g1_lr = -1, g1_wd = -1;
    if (!strcmp(name, "sgd_plain")) {
        c->lr = 0.1;
    } else if (!strcmp(name, "sgd_mom")) {
        c->lr = 0.1, c->momentum = 0.9, c->dampening = 0.1, c->weight_decay = 1e-2, g1_lr = 0.05, g1_wd = 0;
    } else if (!strcmp(name, "sgd_nesterov")) {
        c->lr = 0.1, c->momentum = 0.9, c->nesterov = 1, c->weight_decay = 5e-4;
    } else if (!strcmp(name, "sgd_max")) {
        c->lr = 0.05, c->momentum = 0.9, c->maximize = 1;
    } else if (!strcmp(name, "adam")) {
        c->lr = 1e-2;
    } else if (!strcmp(name, "adam_ams_wd")) {
        c->lr = 1e-2, c->amsgrad = 1, c->weight_decay = 1e-2, g1_lr = 3e-3, g1_wd = 0.1;
    } else if (!strcmp(name, "adamw")) {
        c->lr = 1e-2, c->weight_decay = 0.05;
    } else if (!strcmp(name, "adamw_betas")) {
        c->lr = 2e-3, c->beta1 = 0.8, c->beta2 = 0.95, c->eps = 1e-6, g1_lr = 1e-3, g1_wd = 0;
    } else if (!strcmp(name, "rmsprop")) {
        c->lr = 1e-2;
    } else if (!strcmp(name, "rmsprop_full")) {
        c->lr = 1e-2, c->momentum = 0.5, c->centered = 1, c->weight_decay = 1e-3, c->alpha = 0.9;
    } else {
        ck_abort_msg("unknown optimizer case %s", name);
    }
    g[0] = (lg_optim_group){c->lr, 0, c->weight_decay};
    g[1] = (lg_optim_group){g1_lr >= 0 ? g1_lr : c->lr, 0, g1_wd >= 0 ? g1_wd : c->weight_decay};
}

static void load_floats(const fx_tensor *t, size_t off, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)t->data[off + i];
}

static double mean_abs(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += fabs(v[i]);
    return s / n;
}

/* |got - want| <= rtol * (|want| + mean |want|), as in check_ops.c: PyTorch's
 * vector kernels may fuse multiply-adds, so single values that cancel to
 * near zero differ by a few float32 ulps of the tensor's magnitude. */
static void expect_traj(const char *name, int step, const float *got, const double *want, double rtol) {
    double floor = mean_abs(want, TOTAL);
    for (int i = 0; i < TOTAL; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= rtol * (fabs(want[i]) + floor),
                      "%s: step %d param[%d] = %.9g, PyTorch %.9g", name, step + 1, i, got[i], want[i]);
}

START_TEST(optimizer_trajectory) {
    const char *name = OPT_NAMES[_i];
    lg_optim_config cfg;
    lg_optim_group groups[2];
    opt_config(name, &cfg, groups);
    lg_optim o;
    ck_assert_int_eq(lg_optim_init(&o, &cfg, 2, groups, 3, PARAMS, TOTAL, &test_err), LG_OK);
    float p[TOTAL], g[TOTAL];
    load_floats(need("init", NULL), 0, p, TOTAL);
    const fx_tensor *grads = need("grads", NULL), *traj = need(name, "traj");
    for (int k = 0; k < STEPS; k++) {
        load_floats(grads, (size_t)k * TOTAL, g, TOTAL);
        ck_assert_int_eq(lg_optim_step(&o, NULL, p, g), LG_OK);
        expect_traj(name, k, p, traj->data + (size_t)k * TOTAL, 1e-5);
    }
    ck_assert_int_eq(o.step, STEPS);
    /* the state slots are PyTorch's state tensors, by name */
    for (int s = 0; s < o.nslots; s++) {
        const char *slot = lg_optim_slot_name(&o, s);
        const fx_tensor *want = need(name, slot);
        ck_assert_uint_eq(want->count, TOTAL);
        double floor = mean_abs(want->data, TOTAL);
        for (int i = 0; i < TOTAL; i++)
            ck_assert_msg(fabs(o.slot[s][i] - want->data[i]) <= 1e-5 * (fabs(want->data[i]) + floor),
                          "%s: %s[%d] = %.9g, PyTorch %.9g", name, slot, i, o.slot[s][i], want->data[i]);
    }
    lg_optim_free(&o);
}
END_TEST

START_TEST(optimizer_resume_and_threads) {
    /* 10 steps, save (slots + step + group lrs), restore into a new optimizer,
     * 10 more steps on a 2-thread context: bit-identical to 20 straight steps. */
    lg_optim_config cfg;
    lg_optim_group groups[2];
    opt_config("adam_ams_wd", &cfg, groups);
    enum { BIG = 100003 };
    lg_optim_param params[2] = {{0, 70001, 0}, {70001, BIG - 70001, 1}};
    float *p1 = malloc(BIG * sizeof(float)), *p2 = malloc(BIG * sizeof(float)), *g = malloc(BIG * sizeof(float));
    for (int i = 0; i < BIG; i++)
        p1[i] = p2[i] = sinf((float)i);
    lg_optim a, b;
    ck_assert_int_eq(lg_optim_init(&a, &cfg, 2, groups, 2, params, BIG, &test_err), LG_OK);
    ck_assert_int_eq(lg_optim_init(&b, &cfg, 2, groups, 2, params, BIG, &test_err), LG_OK);
    for (int k = 0; k < 10; k++) {
        for (int i = 0; i < BIG; i++)
            g[i] = cosf((float)(i * (k + 1)));
        ck_assert_int_eq(lg_optim_step(&a, NULL, p1, g), LG_OK);
        ck_assert_int_eq(lg_optim_step(&b, NULL, p2, g), LG_OK);
    }
    lg_optim c;
    ck_assert_int_eq(lg_optim_init(&c, &cfg, 2, groups, 2, params, BIG, &test_err), LG_OK);
    for (int s = 0; s < b.nslots; s++)
        memcpy(c.slot[s], b.slot[s], BIG * sizeof(float));
    c.step = b.step;
    lg_optim_free(&b);
    lg_ctx two;
    ck_assert_int_eq(lg_ctx_init(&two, 2, &test_err), LG_OK);
    for (int k = 10; k < 20; k++) {
        for (int i = 0; i < BIG; i++)
            g[i] = cosf((float)(i * (k + 1)));
        ck_assert_int_eq(lg_optim_step(&a, NULL, p1, g), LG_OK);
        ck_assert_int_eq(lg_optim_step(&c, &two, p2, g), LG_OK);
    }
    ck_assert_int_eq(memcmp(p1, p2, BIG * sizeof(float)), 0);
    lg_ctx_free(&two);
    lg_optim_free(&a);
    lg_optim_free(&c);
    free(p1), free(p2), free(g);
}
END_TEST

START_TEST(optimizer_bad_config) {
    lg_optim_config cfg;
    lg_optim o;
    lg_optim_config_default(&cfg, LG_OPTIM_SGD);
    cfg.lr = -1;
    ck_assert_int_eq(lg_optim_init(&o, &cfg, 0, NULL, 3, PARAMS, TOTAL, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "sgd: invalid learning rate -1 (must be >= 0)");
    cfg.lr = 0.1, cfg.nesterov = 1;
    ck_assert_int_eq(lg_optim_init(&o, &cfg, 0, NULL, 3, PARAMS, TOTAL, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "sgd: nesterov momentum requires a momentum and zero dampening");
    lg_optim_config_default(&cfg, LG_OPTIM_ADAM);
    cfg.beta2 = 1.0;
    ck_assert_int_eq(lg_optim_init(&o, &cfg, 0, NULL, 3, PARAMS, TOTAL, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "adam: betas (0.9, 1) must be in [0, 1)");
    lg_optim_config_default(&cfg, LG_OPTIM_ADAM);
    lg_optim_group two[2] = {{1e-3, 0, 0}, {1e-3, 0, 0}};
    ck_assert_int_eq(lg_optim_init(&o, &cfg, 2, two, 3, PARAMS, 20, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "adam: parameter 2 [18, 22) is outside the block of 20 floats");
    ck_assert_int_eq(lg_optim_init(&o, &cfg, 1, NULL, 3, PARAMS, TOTAL, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "adam: parameter 2 is in group 1 of 1");
}
END_TEST

/* ---- schedulers ------------------------------------------------------------------ */

static const char *const SCHED_NAMES[] = {"step", "multistep", "exponential", "cosine", "linear", "onecycle",
                                          "onecycle3", "plateau", "plateau_max_abs", "warm_cosine", "warm_step"};

static void sched_config(const char *name, lg_sched_config *c) {
    if (!strcmp(name, "step")) {
        lg_sched_config_default(c, LG_SCHED_STEP);
        c->step_size = 7, c->gamma = 0.5;
    } else if (!strcmp(name, "multistep")) {
        lg_sched_config_default(c, LG_SCHED_MULTISTEP);
        c->nmilestones = 3, c->milestones[0] = 5, c->milestones[1] = 12, c->milestones[2] = 20, c->gamma = 0.3;
    } else if (!strcmp(name, "exponential")) {
        lg_sched_config_default(c, LG_SCHED_EXPONENTIAL);
        c->gamma = 0.9;
    } else if (!strcmp(name, "cosine")) {
        lg_sched_config_default(c, LG_SCHED_COSINE);
        c->t_max = 10, c->eta_min = 0.001;
    } else if (!strcmp(name, "linear")) {
        lg_sched_config_default(c, LG_SCHED_LINEAR);
        c->start_factor = 0.25, c->end_factor = 1.0, c->total_iters = 8;
    } else if (!strcmp(name, "onecycle")) {
        lg_sched_config_default(c, LG_SCHED_ONE_CYCLE);
        c->max_lr = 0.5, c->total_steps = 31;
    } else if (!strcmp(name, "onecycle3")) {
        lg_sched_config_default(c, LG_SCHED_ONE_CYCLE);
        c->max_lr = 0.4, c->total_steps = 31, c->pct_start = 0.25, c->anneal_linear = 1, c->three_phase = 1;
    } else if (!strcmp(name, "plateau")) {
        lg_sched_config_default(c, LG_SCHED_PLATEAU);
        c->factor = 0.5, c->patience = 2, c->threshold = 0.01, c->cooldown = 1, c->min_lr = 0.01;
    } else if (!strcmp(name, "plateau_max_abs")) {
        lg_sched_config_default(c, LG_SCHED_PLATEAU);
        c->mode_max = 1, c->factor = 0.3, c->patience = 1, c->threshold = 0.1, c->threshold_abs = 1;
    } else if (!strcmp(name, "warm_cosine")) {
        lg_sched_config_default(c, LG_SCHED_COSINE);
        c->t_max = 30, c->warmup_steps = 5, c->warmup_start_factor = 0.1;
    } else if (!strcmp(name, "warm_step")) {
        lg_sched_config_default(c, LG_SCHED_STEP);
        c->step_size = 6, c->gamma = 0.5, c->warmup_steps = 4, c->warmup_start_factor = 0.2;
    } else {
        ck_abort_msg("unknown scheduler case %s", name);
    }
}

START_TEST(scheduler_curve) {
    const char *name = SCHED_NAMES[_i];
    char key[64];
    snprintf(key, sizeof key, "sched_%s", name);
    const fx_tensor *want = need(key, NULL), *metrics = need("plateau_metrics", NULL);
    lg_optim_config cfg;
    lg_optim_config_default(&cfg, LG_OPTIM_SGD);
    cfg.lr = 0.1;
    lg_optim_group groups[2] = {{0.1, 0, 0}, {0.05, 0, 0}};
    lg_optim o;
    ck_assert_int_eq(lg_optim_init(&o, &cfg, 2, groups, 0, NULL, 0, &test_err), LG_OK);
    lg_sched_config sc;
    sched_config(name, &sc);
    lg_sched s;
    ck_assert_int_eq(lg_sched_init(&s, &sc, &o, &test_err), LG_OK);
    for (int k = 0; k <= 30; k++) {
        if (k > 0) {
            double m = metrics->data[k - 1];
            ck_assert_int_eq(lg_sched_step(&s, &o, sc.mode_max ? -m : m, &test_err), LG_OK);
        }
        for (int g = 0; g < 2; g++) {
            double w = want->data[k * 2 + g];
            ck_assert_msg(fabs(o.groups[g].lr - w) <= 1e-9 * (fabs(w) + 1e-6),
                          "%s: lr of group %d after %d steps = %.12g, PyTorch %.12g", name, g, k, o.groups[g].lr, w);
        }
    }
    /* resume: a new scheduler given the saved state reproduces the lrs */
    lg_sched r;
    ck_assert_int_eq(lg_sched_init(&r, &sc, &o, &test_err), LG_OK);
    r.st = s.st;
    lg_sched_apply(&r, &o);
    for (int g = 0; g < 2; g++) {
        double w = want->data[30 * 2 + g];
        ck_assert_msg(fabs(o.groups[g].lr - w) <= 1e-9 * (fabs(w) + 1e-6), "%s: resumed lr of group %d", name, g);
    }
    if (sc.kind == LG_SCHED_ONE_CYCLE) {
        ck_assert_int_eq(lg_sched_step(&s, &o, 0, &test_err), LG_ERR_ARG);
        ck_assert_str_eq(test_err.msg,
                         "one_cycle: tried to step 32 times, but total_steps is 31 (one per optimizer step)");
    }
    lg_optim_free(&o);
}
END_TEST

START_TEST(scheduler_bad_config) {
    lg_sched_config c;
    lg_sched s;
    lg_optim o;
    lg_optim_config cfg;
    lg_optim_config_default(&cfg, LG_OPTIM_SGD);
    ck_assert_int_eq(lg_optim_init(&o, &cfg, 0, NULL, 0, NULL, 0, &test_err), LG_OK);
    lg_sched_config_default(&c, LG_SCHED_COSINE);
    ck_assert_int_eq(lg_sched_init(&s, &c, &o, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "cosine: t_max 0 must be >= 1");
    lg_sched_config_default(&c, LG_SCHED_MULTISTEP);
    c.nmilestones = 2, c.milestones[0] = 5, c.milestones[1] = 3;
    ck_assert_int_eq(lg_sched_init(&s, &c, &o, &test_err), LG_ERR_ARG);
    ck_assert_str_eq(test_err.msg, "multistep: milestones must be increasing (3 after 5)");
    lg_optim_free(&o);
}
END_TEST

/* ---- clipping --------------------------------------------------------------------- */

START_TEST(clipping) {
    static const struct {
        const char *name;
        double max, p;
    } cases[] = {{"norm2", 0.5, 2}, {"norminf", 0.5, INFINITY}, {"norm3", 0.5, 3}, {"norm_noop", 100, 2},
                 {"value", 0.1, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float g[TOTAL];
        load_floats(need("clip_grads", NULL), 0, g, TOTAL);
        char key[64];
        snprintf(key, sizeof key, "clip_%s", cases[c].name);
        double total = -1;
        if (cases[c].p > 0) {
            ck_assert_int_eq(lg_clip_grad_norm(NULL, g, TOTAL, cases[c].max, cases[c].p, &total), LG_OK);
            char tk[80];
            snprintf(tk, sizeof tk, "%s_total", key);
            double want = need(tk, NULL)->data[0];
            ck_assert_msg(fabs(total - want) <= 1e-6 * want, "%s: total norm %.9g, PyTorch %.9g", key, total, want);
        } else {
            ck_assert_int_eq(lg_clip_grad_value(NULL, g, TOTAL, cases[c].max), LG_OK);
        }
        const fx_tensor *want = need(key, NULL);
        for (int i = 0; i < TOTAL; i++)
            ck_assert_msg(fabs(g[i] - want->data[i]) <= 1e-6 * (fabs(want->data[i]) + 1e-6),
                          "%s: grad[%d] = %.9g, PyTorch %.9g", key, i, g[i], want->data[i]);
    }
    float g[1] = {1};
    ck_assert_int_eq(lg_clip_grad_norm(NULL, g, 1, -1, 2, NULL), LG_ERR_ARG);
}
END_TEST

static Suite *optim_suite(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("parity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, optimizer_trajectory, 0, (int)(sizeof OPT_NAMES / sizeof OPT_NAMES[0]));
    tcase_add_test(tc, optimizer_resume_and_threads);
    tcase_add_test(tc, optimizer_bad_config);
    tcase_add_loop_test(tc, scheduler_curve, 0, (int)(sizeof SCHED_NAMES / sizeof SCHED_NAMES[0]));
    tcase_add_test(tc, scheduler_bad_config);
    tcase_add_test(tc, clipping);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(optim_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
