/* ops_internal.h — what the kernel sources share: argument checks that name
 * the op, the chunking of elementwise work, and the GEMM of the element type.
 * Included by ops_f32.c / ops_f64.c after they define LG_T and LG_FN, and by
 * dims.c. Not installed. */
#ifndef LG_OPS_INTERNAL_H
#define LG_OPS_INTERNAL_H

#include "lgen/kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Fails the calling kernel with LG_ERR_ARG and a message when cond is false. */
#define LG_CHECK(cond, ...)                                                             \
    do {                                                                                \
        if (!(cond))                                                                    \
            return lg_error_set((ctx) ? (ctx)->err : NULL, LG_ERR_ARG, __VA_ARGS__);     \
    } while (0)

/* Elementwise work is cut into chunks of this many elements; the cut depends
 * on the size only, so results never depend on the thread count. */
#define LG_CHUNK 32768

static inline size_t lg_chunks(size_t count, size_t chunk) {
    return (count + chunk - 1) / chunk;
}

#endif
