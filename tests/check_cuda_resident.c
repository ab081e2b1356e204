/* check_cuda_resident.c — the trainer runtime with GPU steps that keep the
 * parameters, gradients and optimizer state on the device (lgen/cuda_optim.h,
 * lg_cuda_resident_steps), on any machine.
 *
 * The "device" is host memory owned by this test: a fake
 * lg_cuda_trainer_steps (one GPU) whose train step runs the trainer tests'
 * fake model on the device copy, and a fake lg_cuda_resident_steps whose
 * optimizer step does on that copy what NAME_cuda.c does on a GPU: the
 * 1/accumulate_grad_batches scaling, clipping, the skip on overflow with
 * GradScaler's update (body.h's lg_cuk_scaler_update), and the update
 * through lg_cuda_optim_hyper_for and the device body lg_cuo_update. Through
 * lg_main in process it asserts:
 *   - the host's block is not touched by the optimizer while the device
 *     holds the weights (the host optimizer does not run), to_device once
 *     per run, to_host before each checkpoint and at the end of fit;
 *   - the checkpoints of a GPU run equal a CPU run's, tensor for tensor and
 *     bit for bit (parameters, buffers, optimizer state), with SGD and
 *     Adam, gradient accumulation, and clipping by norm and by value;
 *   - a GPU checkpoint resumes on the CPU and a CPU checkpoint on the GPU,
 *     both ending where an uninterrupted run ends;
 *   - 16-mixed: GradScaler's state is saved under Lightning's key
 *     "MixedPrecision" (scale, growth_factor, backoff_factor,
 *     growth_interval, _growth_tracker) and given back on resume; an
 *     overflowing step is skipped (Adam's step count stays); 32-true writes
 *     no such key; the CPU resumes a 16-mixed checkpoint; a malformed key
 *     is refused with the file and the key named.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/cuda/optim_body.h"
#include "capture.h"
#include "fake_model.h"
#include "lgen/checkpoint.h"
#include "lgen/cuda_optim.h"
#include "lgen/optim.h"
#include "lgen/trainer.h"

#define NF 20 /* the fake model's block */
#define NTR 15

static struct {
    float p[NF], g[NF], slot[3][NF];
    float host_seen[NF]; /* the host's block at the last transfer */
    int scaling;
    lg_cuda_scaler scaler;
    float scale_at_step[64];
    int overflow_at;     /* train call that overflows (-1: none) */
    int calls, to_device, to_host, opt_steps, skipped, scaler_sets;
    int host_touched;    /* the host's trained floats changed between transfers */
    lg_model_def def;
} dev;

static lg_status fake_count(int *count, lg_error *err) {
    (void)err;
    *count = 1;
    return LG_OK;
}

static lg_status gpu_train_step(lg_step_io *io, const lg_batch *b) {
    if (memcmp(io->params, dev.host_seen, NTR * sizeof(float)) != 0)
        dev.host_touched = 1;
    lg_step_io d = *io;
    d.params = dev.p;
    d.grads = dev.g;
    lg_status st = fake_def.train_step(&d, b);
    io->loss = d.loss;
    if (dev.calls < 64)
        dev.scale_at_step[dev.calls] = dev.scaler.scale;
    if (dev.calls == dev.overflow_at)
        dev.g[3] = INFINITY; /* a scaled gradient that overflowed */
    dev.calls++;
    return st;
}

static lg_status fake_init(int device, const char *precision, int batch_size, const lg_model_def *cpu,
                           const lg_model_def **out, lg_error *err) {
    (void)device, (void)batch_size, (void)err;
    dev.scaling = strcmp(precision, "16-mixed") == 0;
    dev.scaler = (lg_cuda_scaler)LG_CUDA_SCALER_INIT;
    dev.def = *cpu;
    dev.def.train_step = gpu_train_step;
    *out = &dev.def;
    return LG_OK;
}

static void fake_free(void) {
}

const lg_cuda_trainer lg_cuda_trainer_steps = {
    .device_count = fake_count,
    .init = fake_init,
    .free = fake_free,
};

static lg_status to_device(const float *params, const lg_optim *o, lg_error *err) {
    (void)err;
    memcpy(dev.p, params, sizeof dev.p);
    memcpy(dev.host_seen, params, sizeof dev.host_seen);
    memset(dev.g, 0, sizeof dev.g);
    for (int s = 0; o && s < o->nslots; s++)
        memcpy(dev.slot[s], o->slot[s], o->total * sizeof(float));
    dev.to_device++;
    return LG_OK;
}

static lg_status to_host(float *params, lg_optim *o, lg_error *err) {
    (void)err;
    memcpy(params, dev.p, sizeof dev.p);
    memcpy(dev.host_seen, params, sizeof dev.host_seen);
    for (int s = 0; o && s < o->nslots; s++)
        memcpy(o->slot[s], dev.slot[s], o->total * sizeof(float));
    dev.to_host++;
    return LG_OK;
}

static lg_status optimizer_step(lg_optim *o, float grad_scale, int clip, double clip_val, int skip, int *skipped,
                                lg_error *err) {
    (void)err;
    int found = skip;
    for (int i = 0; i < NTR; i++)
        found |= !isfinite(dev.g[i]);
    if (!found) {
        if (grad_scale != 1.0f)
            for (int i = 0; i < NTR; i++)
                dev.g[i] *= grad_scale;
        if (clip == LG_CUDA_CLIP_NORM)
            lg_clip_grad_norm(NULL, dev.g, NTR, clip_val, 2.0, NULL);
        else if (clip == LG_CUDA_CLIP_VALUE)
            lg_clip_grad_value(NULL, dev.g, NTR, clip_val);
        o->step++;
        for (int k = 0; k < o->nparams; k++) {
            lg_cuda_optim_hyper h;
            lg_cuda_optim_hyper_for(o, o->params[k].group, &h);
            size_t off = o->params[k].offset;
            for (size_t i = 0; i < o->params[k].count; i++)
                lg_cuo_update(i, &h, dev.p + off, dev.g + off, dev.slot[0] + off, dev.slot[1] + off,
                              dev.slot[2] + off);
        }
        dev.opt_steps++;
    } else {
        dev.skipped++;
    }
    if (dev.scaling)
        lg_cuk_scaler_update(&dev.scaler, found);
    memset(dev.g, 0, sizeof dev.g);
    *skipped = found;
    return LG_OK;
}

static lg_status scaler_get(lg_cuda_scaler *s, int *active, lg_error *err) {
    (void)err;
    *s = dev.scaler;
    *active = dev.scaling;
    return LG_OK;
}

static lg_status scaler_set(const lg_cuda_scaler *s, lg_error *err) {
    (void)err;
    dev.scaler = *s;
    dev.scaler_sets++;
    return LG_OK;
}

const lg_cuda_resident lg_cuda_resident_steps = {
    .to_device = to_device,
    .to_host = to_host,
    .optimizer_step = optimizer_step,
    .scaler_get = scaler_get,
    .scaler_set = scaler_set,
};

/* ---- running the program ------------------------------------------------------ */

static char root[256];
static char out[1 << 16], err[1 << 16];

static void reset_dev(void) {
    memset(&dev, 0, sizeof dev);
    dev.overflow_at = -1;
}

static void setup(void) {
    reset_dev();
    snprintf(root, sizeof root, "/tmp/lgcudares-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void) {
    capture_remove_tree(root);
}

/* `fake ARGS... --default_root_dir ROOT/dir --enable_progress_bar false`;
 * the run's last checkpoint is ROOT/dir/lightning_logs/version_0/checkpoints/last.ckpt. */
static int run(const char *dir, const char *first, ...) {
    char *argv[64], rd[320];
    int argc = 0;
    snprintf(rd, sizeof rd, "%s/%s", root, dir);
    argv[argc++] = "fake";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc++] = "--default_root_dir";
    argv[argc++] = rd;
    argv[argc++] = "--enable_progress_bar";
    argv[argc++] = "false";
    argv[argc] = NULL;
    return capture_main(&fake_def, argc, argv, root, out, sizeof out, err, sizeof err);
}

static const char *ckpt(const char *dir) {
    static char p[2][400];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s/lightning_logs/version_0/checkpoints/last.ckpt", root, dir);
    return p[k];
}

/* Every tensor of a equals b's bit for bit, and both hold the same set. */
static void same_tensors(const char *a, const char *b) {
    lg_st_file fa, fb;
    lg_error e = {0};
    ck_assert_msg(lg_st_open(&fa, a, &e) == LG_OK, "%s", e.msg);
    ck_assert_msg(lg_st_open(&fb, b, &e) == LG_OK, "%s", e.msg);
    ck_assert_int_eq(fa.n_tensors, fb.n_tensors);
    ck_assert_int_gt(fa.n_tensors, 4); /* the optimizer's state is there too */
    for (int i = 0; i < fa.n_tensors; i++) {
        const char *name = lg_st_name(&fa, i);
        lg_dtype da, db;
        int na, nb;
        int64_t sa[8], sb[8];
        const void *xa, *xb;
        ck_assert(lg_st_get(&fa, name, &da, &na, sa, &xa, &e) == LG_OK);
        ck_assert_msg(lg_st_get(&fb, name, &db, &nb, sb, &xb, &e) == LG_OK, "%s: %s", b, e.msg);
        size_t n = lg_dtype_size(da);
        for (int d = 0; d < na; d++)
            n *= (size_t)sa[d];
        ck_assert_int_eq(da, db);
        ck_assert_msg(memcmp(xa, xb, n) == 0, "tensor '%s' differs between %s and %s", name, a, b);
    }
    const char *oa = lg_st_meta(&fa, "global_step"), *ob = lg_st_meta(&fb, "global_step");
    ck_assert_str_eq(oa, ob);
    lg_st_close(&fa);
    lg_st_close(&fb);
}

static json_t *meta(const char *path, const char *key) {
    lg_st_file f;
    lg_error e = {0};
    ck_assert_msg(lg_st_open(&f, path, &e) == LG_OK, "%s", e.msg);
    const char *v = lg_st_meta(&f, key);
    json_t *j = v ? json_loads(v, 0, NULL) : NULL;
    lg_st_close(&f);
    return j;
}

/* ---- tests ---------------------------------------------------------------------- */

START_TEST(test_sgd_same_as_cpu) {
    ck_assert_int_eq(run("cpu", "fit", "--accelerator", "cpu", "--max_epochs", "2", NULL), 0);
    ck_assert_int_eq(run("gpu", "fit", "--accelerator", "gpu", "--max_epochs", "2", NULL), 0);
    ck_assert_msg(strstr(out, "GPU available: True (cuda), used: True"), "%s", out);
    ck_assert_int_gt(dev.calls, 4);
    ck_assert_int_eq(dev.opt_steps, dev.calls);
    ck_assert_int_eq(dev.to_device, 1);
    ck_assert_int_ge(dev.to_host, 2); /* each epoch's checkpoint; the end of fit adds none (nothing newer) */
    ck_assert_msg(!dev.host_touched, "the host's weights changed while the device held them");
    same_tensors(ckpt("cpu"), ckpt("gpu"));
}
END_TEST

START_TEST(test_adam_accumulation_clipping) {
    static const char *const clip[][2] = {{"norm", "0.05"}, {"value", "0.01"}};
    for (int k = 0; k < 2; k++) {
        char c[16], g[16];
        snprintf(c, sizeof c, "cpu%d", k);
        snprintf(g, sizeof g, "gpu%d", k);
        ck_assert_int_eq(run(c, "fit", "--accelerator", "cpu", "--optimizer", "adam", "--max_epochs", "2",
                             "--accumulate_grad_batches", "2", "--gradient_clip_val", clip[k][1],
                             "--gradient_clip_algorithm", clip[k][0], NULL),
                         0);
        reset_dev();
        ck_assert_int_eq(run(g, "fit", "--accelerator", "gpu", "--optimizer", "adam", "--max_epochs", "2",
                             "--accumulate_grad_batches", "2", "--gradient_clip_val", clip[k][1],
                             "--gradient_clip_algorithm", clip[k][0], NULL),
                         0);
        ck_assert_int_lt(dev.opt_steps, dev.calls); /* two micro-batches per step */
        ck_assert_int_ge(2 * dev.opt_steps, dev.calls);
        same_tensors(ckpt(c), ckpt(g));
    }
}
END_TEST

START_TEST(test_resume_across_devices) {
    /* uninterrupted: 3 epochs on the CPU */
    ck_assert_int_eq(run("straight", "fit", "--accelerator", "cpu", "--optimizer", "adam", "--max_epochs", "3",
                         NULL),
                     0);
    /* 1 epoch on the GPU, resumed on the CPU */
    ck_assert_int_eq(run("g1", "fit", "--accelerator", "gpu", "--optimizer", "adam", "--max_epochs", "1", NULL),
                     0);
    ck_assert_int_eq(run("g1c", "fit", "--accelerator", "cpu", "--optimizer", "adam", "--max_epochs", "3",
                         "--ckpt_path", ckpt("g1"), NULL),
                     0);
    ck_assert_msg(strstr(out, "Restored all states"), "%s", out);
    same_tensors(ckpt("straight"), ckpt("g1c"));
    /* 1 epoch on the CPU, resumed on the GPU: the state goes up once */
    ck_assert_int_eq(run("c1", "fit", "--accelerator", "cpu", "--optimizer", "adam", "--max_epochs", "1", NULL),
                     0);
    reset_dev();
    ck_assert_int_eq(run("c1g", "fit", "--accelerator", "gpu", "--optimizer", "adam", "--max_epochs", "3",
                         "--ckpt_path", ckpt("c1"), NULL),
                     0);
    ck_assert_int_eq(dev.to_device, 1);
    ck_assert_msg(!dev.host_touched, "the host's weights changed while the device held them");
    same_tensors(ckpt("straight"), ckpt("c1g"));
}
END_TEST

START_TEST(test_eval_uploads_the_checkpoint) {
    ck_assert_int_eq(run("c", "fit", "--accelerator", "cpu", "--max_epochs", "1", NULL), 0);
    reset_dev();
    ck_assert_int_eq(run("v", "validate", "--accelerator", "gpu", "--ckpt_path", ckpt("c"), NULL), 0);
    ck_assert_int_eq(dev.to_device, 1);
    ck_assert_int_eq(dev.to_host, 0);
    /* the loaded weights, not the initial ones, went up */
    lg_st_file f;
    lg_error e = {0};
    lg_dtype dt;
    int nd;
    int64_t sh[8];
    const void *x;
    ck_assert(lg_st_open(&f, ckpt("c"), &e) == LG_OK);
    ck_assert(lg_st_get(&f, "fc.weight", &dt, &nd, sh, &x, &e) == LG_OK);
    ck_assert(memcmp(x, dev.p, 12 * sizeof(float)) == 0);
    lg_st_close(&f);
}
END_TEST

START_TEST(test_scaler_in_checkpoint) {
    dev.overflow_at = 2;
    ck_assert_int_eq(run("m", "fit", "--accelerator", "gpu", "--precision", "16-mixed", "--optimizer", "adam",
                         "--max_epochs", "1", NULL),
                     0);
    ck_assert_int_eq(dev.skipped, 1);
    int clean = dev.calls - 3; /* the steps after the overflow */
    json_t *mp = meta(ckpt("m"), "MixedPrecision");
    ck_assert_msg(mp != NULL, "no MixedPrecision key in a 16-mixed checkpoint");
    ck_assert(json_number_value(json_object_get(mp, "scale")) == 32768.0);
    ck_assert_int_eq(json_integer_value(json_object_get(mp, "_growth_tracker")), clean);
    ck_assert(json_number_value(json_object_get(mp, "growth_factor")) == 2.0);
    ck_assert(json_number_value(json_object_get(mp, "backoff_factor")) == 0.5);
    ck_assert_int_eq(json_integer_value(json_object_get(mp, "growth_interval")), 2000);
    json_decref(mp);
    /* the skipped step did not count for Adam */
    json_t *opt = meta(ckpt("m"), "optimizer"), *loop = meta(ckpt("m"), "loop");
    ck_assert_int_eq(json_integer_value(json_object_get(opt, "step")),
                     json_integer_value(json_object_get(loop, "global_step")) - 1);
    json_decref(opt);
    json_decref(loop);
    /* resumed under 16-mixed: the scaler comes back before the first step */
    reset_dev();
    ck_assert_int_eq(run("m2", "fit", "--accelerator", "gpu", "--precision", "16-mixed", "--optimizer", "adam",
                         "--max_epochs", "2", "--ckpt_path", ckpt("m"), NULL),
                     0);
    ck_assert_int_eq(dev.scaler_sets, 1);
    ck_assert(dev.scale_at_step[0] == 32768.0f);
    mp = meta(ckpt("m2"), "MixedPrecision");
    ck_assert_int_eq(json_integer_value(json_object_get(mp, "_growth_tracker")), clean + dev.calls);
    json_decref(mp);
    /* the CPU resumes it (and ignores the scaler); 32-true writes no key */
    ck_assert_int_eq(run("mc", "fit", "--accelerator", "cpu", "--optimizer", "adam", "--max_epochs", "2",
                         "--ckpt_path", ckpt("m"), NULL),
                     0);
    ck_assert_ptr_null(meta(ckpt("mc"), "MixedPrecision"));
    reset_dev();
    ck_assert_int_eq(run("g32", "fit", "--accelerator", "gpu", "--max_epochs", "1", NULL), 0);
    ck_assert_ptr_null(meta(ckpt("g32"), "MixedPrecision"));
}
END_TEST

START_TEST(test_malformed_scaler_refused) {
    ck_assert_int_eq(run("m", "fit", "--accelerator", "gpu", "--precision", "16-mixed", "--max_epochs", "1", NULL),
                     0);
    /* rewrite the checkpoint with a broken MixedPrecision value */
    lg_st_file f;
    lg_error e = {0};
    ck_assert(lg_st_open(&f, ckpt("m"), &e) == LG_OK);
    const char *keys[32], *vals[32];
    int nk = 0;
    json_t *h = f.header, *md = json_object_get(h, "__metadata__");
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v) {
        keys[nk] = k;
        vals[nk++] = strcmp(k, "MixedPrecision") == 0 ? "{\"scale\": \"big\"}" : json_string_value(v);
    }
    lg_st_tensor ts[64];
    int nt = 0;
    for (int i = 0; i < f.n_tensors && nt < 64; i++, nt++) {
        ts[nt].name = lg_st_name(&f, i);
        ck_assert(lg_st_get(&f, ts[nt].name, &ts[nt].dtype, &ts[nt].ndim, ts[nt].shape, &ts[nt].data,
                            &e) == LG_OK);
    }
    char bad[400];
    snprintf(bad, sizeof bad, "%s/bad.ckpt", root);
    ck_assert_msg(lg_st_write(bad, ts, nt, keys, vals, nk, &e) == LG_OK, "%s", e.msg);
    ck_assert_int_eq(run("m3", "fit", "--accelerator", "gpu", "--precision", "16-mixed", "--max_epochs", "2",
                         "--ckpt_path", bad, NULL),
                     1);
    ck_assert_msg(strstr(err, "bad.ckpt") && strstr(err, "MixedPrecision"), "%s", err);
    /* well formed but out of GradScaler's range */
    for (int i = 0; i < nk; i++)
        if (strcmp(keys[i], "MixedPrecision") == 0)
            vals[i] = "{\"scale\": -1.0, \"_growth_tracker\": 0}";
    ck_assert_msg(lg_st_write(bad, ts, nt, keys, vals, nk, &e) == LG_OK, "%s", e.msg);
    ck_assert_int_eq(run("m4", "fit", "--accelerator", "gpu", "--precision", "16-mixed", "--max_epochs", "2",
                         "--ckpt_path", bad, NULL),
                     1);
    ck_assert_msg(strstr(err, "bad.ckpt") && strstr(err, "out of range: scale -1"), "%s", err);
    lg_st_close(&f);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cuda_resident");
    TCase *tc = tcase_create("runtime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sgd_same_as_cpu);
    tcase_add_test(tc, test_adam_accumulation_clipping);
    tcase_add_test(tc, test_resume_across_devices);
    tcase_add_test(tc, test_eval_uploads_the_checkpoint);
    tcase_add_test(tc, test_scaler_in_checkpoint);
    tcase_add_test(tc, test_malformed_scaler_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
