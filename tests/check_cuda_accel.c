/* check_cuda_accel.c — --accelerator / --devices (lg_accelerator_select).
 *
 * Runs everywhere: the device query is a function pointer, so the tests
 * pass fakes for "two GPUs", "no driver" and NULL for a CPU-only build.
 * What is asserted is what the issue asks: "gpu" without a device fails at
 * once with "no CUDA device: <reason>" (main exits 1), "auto" falls back to
 * the CPU and one line says which, bad flag values are argument errors.
 */
#include "lgen/cuda.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static lg_status two_gpus(int *count, lg_error *err) {
    (void)err;
    *count = 2;
    return LG_OK;
}

static lg_status no_driver(int *count, lg_error *err) {
    *count = 0;
    return lg_error_set(err, LG_ERR_UNSUPPORTED, "no CUDA device: %s",
                        "CUDA driver version is insufficient for CUDA runtime version");
}

START_TEST(test_gpu_with_a_device) {
    lg_accel a = LG_ACCEL_CPU;
    int dev = -1;
    char line[256];
    lg_error err = {0};
    ck_assert_int_eq(lg_accelerator_select("gpu", 1, two_gpus, &a, &dev, line, sizeof line, &err), LG_OK);
    ck_assert_int_eq(a, LG_ACCEL_GPU);
    ck_assert_int_eq(dev, 0);
    ck_assert_str_eq(line, "GPU available: True (cuda), used: True (device 0 of 2)");
    ck_assert_int_eq(lg_accelerator_select("auto", -1, two_gpus, &a, &dev, line, sizeof line, &err), LG_OK);
    ck_assert_int_eq(a, LG_ACCEL_GPU);
    ck_assert_int_eq(lg_accelerator_select("cuda", 1, two_gpus, &a, &dev, NULL, 0, &err), LG_OK);
    ck_assert_int_eq(a, LG_ACCEL_GPU);
    ck_assert_int_eq(lg_accelerator_select("cpu", 1, two_gpus, &a, &dev, line, sizeof line, &err), LG_OK);
    ck_assert_int_eq(a, LG_ACCEL_CPU);
    ck_assert_str_eq(line, "GPU available: True (cuda), used: False");
}
END_TEST

START_TEST(test_gpu_without_a_device_fails) {
    lg_accel a = LG_ACCEL_GPU;
    int dev;
    char line[256];
    lg_error err = {0};
    ck_assert_int_eq(lg_accelerator_select("gpu", 1, no_driver, &a, &dev, line, sizeof line, &err),
                     LG_ERR_UNSUPPORTED);
    ck_assert_str_eq(err.msg, "no CUDA device: CUDA driver version is insufficient for CUDA runtime version");
    ck_assert_int_eq(a, LG_ACCEL_CPU);
    /* a CPU-only binary says how to get a GPU build */
    ck_assert_int_eq(lg_accelerator_select("gpu", 1, NULL, &a, &dev, line, sizeof line, &err),
                     LG_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "no CUDA device: this trainer was built without CUDA"));
    ck_assert_ptr_nonnull(strstr(err.msg, "make CUDA=1"));
}
END_TEST

START_TEST(test_auto_falls_back_to_cpu) {
    lg_accel a = LG_ACCEL_GPU;
    int dev;
    char line[256];
    lg_error err = {0};
    ck_assert_int_eq(lg_accelerator_select("auto", -1, no_driver, &a, &dev, line, sizeof line, &err), LG_OK);
    ck_assert_int_eq(a, LG_ACCEL_CPU);
    ck_assert_str_eq(line, "GPU available: False, used: False (no CUDA device: CUDA driver version is "
                           "insufficient for CUDA runtime version)");
    ck_assert_int_eq(lg_accelerator_select(NULL, -1, NULL, &a, &dev, line, sizeof line, &err), LG_OK);
    ck_assert_int_eq(a, LG_ACCEL_CPU);
    ck_assert_ptr_nonnull(strstr(line, "used: False"));
}
END_TEST

START_TEST(test_bad_flags) {
    lg_accel a;
    int dev;
    lg_error err = {0};
    ck_assert_int_eq(lg_accelerator_select("tpu", 1, two_gpus, &a, &dev, NULL, 0, &err), LG_ERR_ARG);
    ck_assert_str_eq(err.msg, "--accelerator 'tpu' is not one of 'cpu', 'gpu', 'cuda', 'auto'");
    ck_assert_int_eq(lg_accelerator_select("gpu", 0, two_gpus, &a, &dev, NULL, 0, &err), LG_ERR_ARG);
    ck_assert_int_eq(lg_accelerator_select("gpu", 2, two_gpus, &a, &dev, NULL, 0, &err),
                     LG_ERR_UNSUPPORTED);
    ck_assert_str_eq(err.msg, "--devices 2: this trainer runs on one GPU per process");
}
END_TEST

int main(void) {
    Suite *s = suite_create("cuda_accel");
    TCase *tc = tcase_create("select");
    tcase_add_test(tc, test_gpu_with_a_device);
    tcase_add_test(tc, test_gpu_without_a_device_fails);
    tcase_add_test(tc, test_auto_falls_back_to_cpu);
    tcase_add_test(tc, test_bad_flags);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
