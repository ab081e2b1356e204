/* runtime/cuda/accelerator.c — --accelerator / --devices: CPU or GPU.
 *
 * Part of liblgen.a (plain C, no CUDA): every trainer calls it, and only a
 * CUDA build passes a device-count function (lg_cuda_device_count from
 * liblgen_cuda.a), so a CPU-only binary asked for a GPU says it was built
 * without CUDA instead of failing to link. Its neighbours: lgen/cuda.h
 * (interface), cuda.c (the device query), the trainer's flag handling
 * (which prints the line and exits 1 on an error).
 */
#include "lgen/cuda.h"

#include <stdio.h>
#include <string.h>

lg_status lg_accelerator_select(const char *accelerator, int devices, lg_device_count_fn count,
                                lg_accel *out, int *device, char *line, size_t line_size,
                                lg_error *err) {
    char scratch[8];
    if (!line) {
        line = scratch;
        line_size = sizeof scratch;
    }
    *out = LG_ACCEL_CPU;
    *device = 0;
    line[0] = '\0';
    const char *a = accelerator ? accelerator : "auto";
    int want_gpu = !strcmp(a, "gpu") || !strcmp(a, "cuda");
    int want_auto = !strcmp(a, "auto");
    if (!want_gpu && !want_auto && strcmp(a, "cpu") != 0)
        return lg_error_set(err, LG_ERR_ARG,
                            "--accelerator '%s' is not one of 'cpu', 'gpu', 'cuda', 'auto'", a);
    if (devices == 0 || devices < -1)
        return lg_error_set(err, LG_ERR_ARG, "--devices %d: expected a positive count or -1 (auto)",
                            devices);
    if (devices > 1 && want_gpu)
        return lg_error_set(err, LG_ERR_UNSUPPORTED,
                            "--devices %d: this trainer runs on one GPU per process", devices);
    lg_error probe = {0};
    int n = 0;
    lg_status st;
    if (!count)
        st = lg_error_set(&probe, LG_ERR_UNSUPPORTED,
                          "no CUDA device: this trainer was built without CUDA (rebuild it with "
                          "`make CUDA=1`)");
    else
        st = count(&n, &probe);
    if (st != LG_OK) {
        if (want_gpu)
            return lg_error_set(err, st, "%s", probe.msg);
        /* Lightning's wording, with the reason */
        snprintf(line, line_size, "GPU available: False, used: False (%.200s)", probe.msg);
        return LG_OK;
    }
    if (!want_gpu && !want_auto) {
        snprintf(line, line_size, "GPU available: True (cuda), used: False");
        return LG_OK;
    }
    *out = LG_ACCEL_GPU;
    snprintf(line, line_size, "GPU available: True (cuda), used: True (device 0 of %d)", n);
    return LG_OK;
}
