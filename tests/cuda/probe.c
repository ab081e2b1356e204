/* tests/cuda/probe.c — the smallest program linked against liblgen_cuda.a.
 *
 * It does what a generated trainer does first under `--accelerator gpu`:
 * query the devices, create a context (arena, streams, cuBLAS, cuBLASLt,
 * cuDNN handles) and launch one of the project's kernels. Without a driver
 * or a device it prints "lg_cuda_probe: error: no CUDA device: <reason>" on
 * stderr and exits 1, as the trainer must. tests/cuda/check_link.sh checks
 * that message, its exit status and that the binary links cuDNN and cuBLAS.
 */
#include "lgen/cuda.h"

#include <stdio.h>

static int fail(const lg_error *err) {
    fprintf(stderr, "lg_cuda_probe: error: %s\n", err->msg);
    return 1;
}

int main(void) {
    lg_error err = {0};
    int n = 0, device;
    lg_accel accel;
    char line[512];
    /* what a CUDA trainer does with --accelerator gpu --devices 1 */
    if (lg_accelerator_select("gpu", 1, lg_cuda_device_count, &accel, &device, line, sizeof line,
                              &err) != LG_OK)
        return fail(&err);
    printf("%s\n", line);
    if (lg_cuda_device_count(&n, &err) != LG_OK)
        return fail(&err);
    lg_cuda *c;
    lg_cuda_config cfg = {.device = device, .arena_bytes = 1 << 20, .staging_bytes = 1 << 16,
                          .staging_slots = 2};
    if (lg_cuda_init(&c, &cfg, &err) != LG_OK)
        return fail(&err);
    float x[8] = {-2, -1, 0, 1, 2, 3, -4, 5}, y[8];
    float *dx = lg_cuda_arena(c, 0), *dy = lg_cuda_arena(c, 256);
    if (lg_cuda_upload(c, dx, x, sizeof x, &err) != LG_OK ||
        lg_cuda_act_forward(c, LG_CUDA_ACT_RELU, 0, LG_CUDA_F32, dx, dy, 8, &err) != LG_OK ||
        lg_cuda_download(c, y, dy, sizeof y, &err) != LG_OK) {
        lg_cuda_free(c);
        return fail(&err);
    }
    int ok = y[0] == 0 && y[3] == 1 && y[7] == 5;
    printf("%d CUDA device(s); device 0: %s; relu kernel %s\n", n, lg_cuda_describe(c),
           ok ? "ok" : "WRONG");
    lg_cuda_free(c);
    return ok ? 0 : 1;
}
