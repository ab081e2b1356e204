/* tests/gpu/harness.h — what the device tests (gpu_kernels, gpu_detect,
 * gpu_boxes) share: the context, the error, the failure count, TRY (exit 2
 * on a failed lg_cuda_* call), report() for a compared check, and device memory carved from the context's
 * arena, 256-byte aligned, reset per check by setting arena_top = 0.
 * Define HARNESS_NAME (the program's name, for messages) before including. */
#ifndef LGEN_TESTS_GPU_HARNESS_H
#define LGEN_TESTS_GPU_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lgen/cuda.h"

#ifndef HARNESS_NAME
#error "define HARNESS_NAME before including tests/gpu/harness.h"
/* One check's line: "ok" or "FAIL" with the worst element outside
 * atol + rtol * |want| (a failure counts in failures). */
static inline void report(const char *what, const float *got, const float *want, size_t n, double rtol,
                          double atol) {
    double worst = 0;
    size_t at = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= atol + rtol * fabs((double)want[i]))) {
            if (!bad || d > worst)
                worst = d, at = i;
            bad = 1;
        }
    }
    if (bad) {
        failures++;
        printf("FAIL %-30s [%zu] got %.9g want %.9g\n", what, at, (double)got[at], (double)want[at]);
    } else {
        printf("ok   %-30s (%zu values)\n", what, n);
    }
}

#endif

static lg_cuda *cu;
static lg_error err;
static size_t arena_top;
static int failures;

#define TRY(call)                                                                              \
    do {                                                                                       \
        if ((call) != LG_OK) {                                                                 \
            fprintf(stderr, HARNESS_NAME ": error: %s:%d: %s\n", __FILE__, __LINE__, err.msg);  \
            exit(2);                                                                           \
        }                                                                                      \
    } while (0)

static inline void *dalloc(size_t bytes) {
    void *p = lg_cuda_arena(cu, arena_top);
    arena_top += (bytes + 255) & ~(size_t)255;
    if (!p || arena_top > lg_cuda_arena_size(cu)) {
        fprintf(stderr, HARNESS_NAME ": error: test arena too small\n");
        exit(2);
    }
    return p;
}

static inline void *dcopy(const void *host, size_t bytes) {
    void *p = dalloc(bytes);
    TRY(lg_cuda_upload(cu, p, host, bytes, &err));
    return p;
}

static inline void fetch(void *host, const void *dev, size_t bytes) {
    TRY(lg_cuda_download(cu, host, dev, bytes, &err));
}

/* One check's line: "ok" or "FAIL" with the worst element outside
 * atol + rtol * |want| (a failure counts in failures). */
static inline void report(const char *what, const float *got, const float *want, size_t n, double rtol,
                          double atol) {
    double worst = 0;
    size_t at = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= atol + rtol * fabs((double)want[i]))) {
            if (!bad || d > worst)
                worst = d, at = i;
            bad = 1;
        }
    }
    if (bad) {
        failures++;
        printf("FAIL %-30s [%zu] got %.9g want %.9g\n", what, at, (double)got[at], (double)want[at]);
    } else {
        printf("ok   %-30s (%zu values)\n", what, n);
    }
}

#endif
