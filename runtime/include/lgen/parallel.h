/* lgen/parallel.h — the compute context every kernel takes: threads and errors.
 *
 * The runtime owns its threading: one small persistent pool whose workers
 * sleep on a condition variable between jobs. OpenBLAS is set to one thread
 * (its pthread workers spin after each call and fought the pool on 2
 * cores); large GEMMs are cut into tiles that run on the pool.
 *
 * Work is always cut into chunks whose boundaries depend on the problem size
 * only, never on the thread count, and partial sums are combined in chunk
 * order: results are bit-identical for any number of threads. That is the
 * "deterministic mode", and it is always on (it costs nothing measurable).
 *
 * Kernel calls never allocate. lg_ctx_init allocates the pool once.
 */
#ifndef LGEN_PARALLEL_H
#define LGEN_PARALLEL_H

#include <stddef.h>

#include "lgen/status.h"

typedef struct lg_pool lg_pool;

/* What a kernel needs from its caller besides buffers. A NULL lg_ctx is fine
 * everywhere: the kernel runs on the calling thread and drops error messages
 * (it still returns the status). */
typedef struct lg_ctx {
    lg_pool *pool;  /* NULL: run everything on the calling thread */
    int threads;    /* threads used for GEMM and by the pool (>= 1) */
    lg_error *err;  /* where kernels leave their messages; may be NULL */
} lg_ctx;

/* Starts a pool of `threads` workers (the caller counts as one; 0 means the
 * number of online CPUs) and sets OpenBLAS to one thread (process-wide). */
lg_status lg_ctx_init(lg_ctx *ctx, int threads, lg_error *err);
void lg_ctx_free(lg_ctx *ctx);

/* Runs fn(arg, task) for task in [0, ntasks) on the pool and the calling
 * thread, and returns when all are done. Tasks must be independent. */
typedef void (*lg_task_fn)(void *arg, size_t task);
void lg_parallel_for(lg_ctx *ctx, size_t ntasks, lg_task_fn fn, void *arg);

#endif
