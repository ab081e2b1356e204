/* parallel.c — the runtime's own thread pool and the compute context.
 *
 * One persistent pool per lg_ctx: workers sleep on a condition variable until
 * lg_parallel_for publishes a job, then take task indices from an atomic
 * counter; the calling thread works too and waits for the last task. Tasks
 * are cut by the kernels from the problem size only, so which thread runs a
 * task never changes a result. OpenBLAS (pthread build) keeps its own
 * threads for GEMM; lg_ctx_init sets its count to ours. Neighbours:
 * lgen/parallel.h (interface), runtime/ops (the callers).
 */
#include "lgen/parallel.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads); /* from OpenBLAS's cblas.h */

struct lg_pool {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t *workers;
    int nworkers;
    /* the current job */
    uint64_t generation;
    lg_task_fn fn;
    void *arg;
    size_t ntasks;
    atomic_size_t next;
    int busy; /* workers still inside the current job */
    int quit;
};

static void pool_run_tasks(lg_pool *p, lg_task_fn fn, void *arg, size_t ntasks) {
    for (;;) {
        size_t t = atomic_fetch_add(&p->next, 1);
        if (t >= ntasks)
            break;
        fn(arg, t);
    }
}

static void *pool_worker(void *opaque) {
    lg_pool *p = opaque;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        lg_task_fn fn = p->fn;
        void *arg = p->arg;
        size_t ntasks = p->ntasks;
        pthread_mutex_unlock(&p->mu);
        pool_run_tasks(p, fn, arg, ntasks);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_free(lg_pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

lg_status lg_ctx_init(lg_ctx *ctx, int threads, lg_error *err) {
    memset(ctx, 0, sizeof *ctx);
    ctx->err = err;
    if (threads < 0 || threads > 1024)
        return lg_error_set(err, LG_ERR_ARG, "threads: %d is out of range [0, 1024]", threads);
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    ctx->threads = threads;
    /* OpenBLAS's own threads spin after each call and fight our pool on 2
     * cores; GEMMs are tiled onto the pool instead (runtime/ops/dense.inc). */
    openblas_set_num_threads(1);
    if (threads == 1)
        return LG_OK;
    lg_pool *p = calloc(1, sizeof *p);
    if (!p)
        return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate the thread pool");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    p->workers = calloc((size_t)threads - 1, sizeof *p->workers);
    if (!p->workers) {
        pool_free(p);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate the thread pool");
    }
    for (int i = 0; i < threads - 1; i++) {
        int rc = pthread_create(&p->workers[i], NULL, pool_worker, p);
        if (rc != 0) {
            pool_free(p);
            return lg_error_set(err, LG_ERR_NOMEM, "cannot start worker thread %d: %s", i,
                                strerror(rc));
        }
        p->nworkers++;
    }
    ctx->pool = p;
    return LG_OK;
}

void lg_ctx_free(lg_ctx *ctx) {
    if (!ctx)
        return;
    pool_free(ctx->pool);
    ctx->pool = NULL;
}

void lg_parallel_for(lg_ctx *ctx, size_t ntasks, lg_task_fn fn, void *arg) {
    lg_pool *p = ctx ? ctx->pool : NULL;
    if (!p || ntasks <= 1) {
        for (size_t t = 0; t < ntasks; t++)
            fn(arg, t);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store(&p->next, 0);
    p->busy = p->nworkers;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pool_run_tasks(p, fn, arg, ntasks);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
