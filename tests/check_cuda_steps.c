/* check_cuda_steps.c — how the trainer runtime uses a trainer's GPU steps
 * (runtime/trainer/loop.c with lgen/cuda.h's lg_cuda_trainer_steps), on any
 * machine.
 *
 * A generated NAME_cuda.c defines lg_cuda_trainer_steps, which liblgen.a
 * declares weak. This test defines its own: a fake device query (one GPU,
 * or "no driver") and a fake init that records what the runtime asked for
 * and returns the trainer tests' fake model (tests/trainer/fake_model.c)
 * with a train step that sets lg_step_io.skip_step on chosen steps, as a
 * 16-mixed step does when its gradients overflow. Through lg_main in
 * process, with stdout and stderr captured, it asserts: the accelerator
 * line, --precision and the batch size reaching init, the GPU steps being
 * the ones run, a skipped step leaving the parameters alone (and the next
 * one updating them), --devices 2 refused, init's error reported with exit
 * 1, "no CUDA device" with --accelerator gpu (exit 1) and the CPU with auto,
 * and free called at the end.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "fake_model.h"
#include "lgen/cuda.h"
#include "lgen/trainer.h"

/* ---- the fake device -------------------------------------------------------- */

static struct {
    int devices;             /* what the query finds; 0: "no driver" */
    int fail_init;
    int inits, frees, gpu_steps;
    char precision[32];
    int batch_size;
    int skip_every;          /* train calls with index % skip_every == 1 set skip_step */
    float before[64][20];    /* the parameter block each train call left */
    int skipped[64];
    int calls;
    lg_model_def def;
} dev;

static lg_status fake_count(int *count, lg_error *err) {
    if (!dev.devices)
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "no CUDA device: fake driver missing");
    *count = dev.devices;
    return LG_OK;
}

static lg_status gpu_train_step(lg_step_io *io, const lg_batch *b) {
    lg_status st = fake_def.train_step(io, b);
    int k = dev.calls++;
    if (k < 64) {
        memcpy(dev.before[k], io->params, sizeof dev.before[k]);
        dev.skipped[k] = dev.skip_every && k % dev.skip_every == 1;
    }
    io->skip_step = k < 64 && dev.skipped[k];
    dev.gpu_steps++;
    return st;
}

static lg_status fake_init(int device, const char *precision, int batch_size, const lg_model_def *cpu,
                           const lg_model_def **out, lg_error *err) {
    ck_assert_int_eq(device, 0);
    dev.inits++;
    snprintf(dev.precision, sizeof dev.precision, "%s", precision);
    dev.batch_size = batch_size;
    if (dev.fail_init)
        return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate 9.0 GiB of GPU memory (fake)");
    dev.def = *cpu;
    dev.def.train_step = gpu_train_step;
    *out = &dev.def;
    return LG_OK;
}

static void fake_free(void) {
    dev.frees++;
}

const lg_cuda_trainer lg_cuda_trainer_steps = {
    .device_count = fake_count,
    .init = fake_init,
    .free = fake_free,
};

/* ---- running the program ------------------------------------------------------ */

static char root[256];
static char out[1 << 16], err[1 << 16];

static void setup(void) {
    memset(&dev, 0, sizeof dev);
    dev.devices = 1;
    snprintf(root, sizeof root, "/tmp/lgcudasteps-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void) {
    capture_remove_tree(root);
}

/* `fake ARGS... --default_root_dir ROOT --enable_progress_bar false`. */
static int run(const char *first, ...) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = "fake";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc++] = "--default_root_dir";
    argv[argc++] = root;
    argv[argc++] = "--enable_progress_bar";
    argv[argc++] = "false";
    argv[argc] = NULL;
    return capture_main(&fake_def, argc, argv, root, out, sizeof out, err, sizeof err);
}

/* ---- tests ---------------------------------------------------------------------- */

/* the optimised parameters' bytes (the fake model's buffers change every step) */
#define TRAINED (fake_def.n_train * sizeof(float))

START_TEST(test_auto_uses_the_gpu) {
    ck_assert_int_eq(run("fit", "--max_steps", "3", "--batch_size", "8", NULL), 0);
    ck_assert_msg(strstr(out, "GPU available: True (cuda), used: True (device 0 of 1)"), "%s", out);
    ck_assert_int_eq(dev.inits, 1);
    ck_assert_str_eq(dev.precision, "32-true");
    ck_assert_int_eq(dev.batch_size, 8);
    ck_assert_int_eq(dev.gpu_steps, 3);
    ck_assert_int_eq(dev.frees, 1);
}
END_TEST

START_TEST(test_precision_reaches_init) {
    ck_assert_int_eq(run("fit", "--max_steps", "1", "--accelerator", "gpu", "--precision", "16", NULL), 0);
    ck_assert_str_eq(dev.precision, "16-mixed");
    ck_assert_int_eq(run("fit", "--max_steps", "1", "--accelerator", "cuda", "--precision", "bf16-mixed",
                         NULL),
                     0);
    ck_assert_str_eq(dev.precision, "bf16-mixed");
    /* the CPU has no mixed precision */
    ck_assert_int_eq(run("fit", "--max_steps", "1", "--accelerator", "cpu", "--precision", "16-mixed", NULL), 1);
    ck_assert_msg(strstr(err, "precision '16-mixed' is not implemented on this build"), "%s", err);
    ck_assert_msg(strstr(out, "GPU available: True (cuda), used: False"), "%s", out);
}
END_TEST

START_TEST(test_skipped_steps_leave_the_parameters) {
    dev.skip_every = 2; /* calls 1, 3, 5 overflow */
    ck_assert_int_eq(run("fit", "--max_steps", "6", "--accelerator", "gpu", NULL), 0);
    ck_assert_int_eq(dev.calls, 6);
    for (int k = 0; k + 1 < dev.calls; k++) {
        int same = memcmp(dev.before[k], dev.before[k + 1], TRAINED) == 0;
        if (dev.skipped[k])
            ck_assert_msg(same, "step %d was skipped but the parameters changed", k);
        else
            ck_assert_msg(!same, "step %d was not skipped but the parameters stayed", k);
    }
    /* the skipped steps still count (Lightning's global_step) */
    ck_assert_msg(strstr(out, "fit done: 6 step(s)"), "%s", out);
}
END_TEST

START_TEST(test_skip_within_accumulation) {
    /* 2 micro-batches per optimizer step; the second call (index 1) overflows,
     * so the first optimizer step is skipped as a whole */
    dev.skip_every = 4; /* calls 1 and 5 */
    ck_assert_int_eq(run("fit", "--max_steps", "3", "--accumulate_grad_batches", "2", "--accelerator", "gpu",
                         NULL),
                     0);
    ck_assert_int_eq(dev.calls, 6);
    ck_assert(memcmp(dev.before[0], dev.before[2], TRAINED) == 0); /* step 1 skipped */
    ck_assert(memcmp(dev.before[2], dev.before[4], TRAINED) != 0); /* step 2 taken */
}
END_TEST

START_TEST(test_devices_and_errors) {
    ck_assert_int_eq(run("fit", "--max_steps", "1", "--accelerator", "gpu", "--devices", "2", NULL), 1);
    ck_assert_msg(strstr(err, "--devices 2: this trainer runs on one GPU per process"), "%s", err);
    ck_assert_int_eq(dev.inits, 0);
    ck_assert_int_eq(run("fit", "--max_steps", "1", "--devices", "2", NULL), 1);
    ck_assert_msg(strstr(err, "--devices 2: this trainer runs on one GPU per process"), "%s", err);
    dev.fail_init = 1;
    ck_assert_int_eq(run("fit", "--max_steps", "1", NULL), 1);
    ck_assert_msg(strstr(err, "fake: error: cannot allocate 9.0 GiB of GPU memory (fake)"), "%s", err);
    ck_assert_int_eq(dev.gpu_steps, 0);
}
END_TEST

START_TEST(test_no_device) {
    dev.devices = 0;
    ck_assert_int_eq(run("fit", "--max_steps", "1", "--accelerator", "gpu", NULL), 1);
    ck_assert_msg(strstr(err, "fake: error: no CUDA device: fake driver missing"), "%s", err);
    ck_assert_ptr_null(strstr(out, "fit done"));
    ck_assert_int_eq(run("fit", "--max_steps", "2", NULL), 0);
    ck_assert_msg(strstr(out, "GPU available: False, used: False (no CUDA device: fake driver missing)"), "%s",
                  out);
    ck_assert_int_eq(dev.inits, 0);
    ck_assert_int_eq(dev.gpu_steps, 0); /* the CPU steps ran */
    ck_assert_msg(strstr(out, "fit done: 2 step(s)"), "%s", out);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cuda_steps");
    TCase *tc = tcase_create("runtime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_auto_uses_the_gpu);
    tcase_add_test(tc, test_precision_reaches_init);
    tcase_add_test(tc, test_skipped_steps_leave_the_parameters);
    tcase_add_test(tc, test_skip_within_accumulation);
    tcase_add_test(tc, test_devices_and_errors);
    tcase_add_test(tc, test_no_device);
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
