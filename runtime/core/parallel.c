/* parallel.c — the runtime's own thread pool and the compute context.
 *
 * One persistent pool per lg_ctx: workers spin briefly, then sleep on a
 * condition variable until lg_parallel_for publishes a job, then take task
 * indices from an atomic counter; the calling thread works too and waits
 * for the last task. Tasks
 * are cut by the kernels from the problem size only, so which thread runs a
 * task never changes a result. OpenBLAS (pthread build) keeps its own
 * threads for GEMM; lg_ctx_init sets its count to ours. Neighbours:
 * lgen/parallel.h (interface), runtime/ops (the callers).
 */
#include "lgen/parallel.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads); /* from OpenBLAS's cblas.h */
void omp_set_num_threads(int n);                 /* libgomp (oneDNN's OpenMP) */
void GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags); /* its parallel region */

struct lg_pool {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t *workers;
    int nworkers;
    int quit;       /* under mu */
    /* the current job: fn, arg and ntasks are written under mu before
     * generation moves; ticket = generation << 32 | next task index, so a
     * worker holding an old job can never claim a task of a newer one */
    lg_task_fn fn;
    void *arg;
    size_t ntasks;
    atomic_uint_least64_t generation, ticket;
    atomic_size_t finished; /* tasks of the current job that are done */
    atomic_int started;     /* workers past their set-up */
};

/* Workers and the caller spin this long for the next job or the last task
 * before sleeping: a training step calls dozens of short kernels back to
 * back, with serial work (the loss, a batch handed over by the loader)
 * between them, and a condition-variable wake-up costs more than many of
 * them take. A count of pause instructions was no measure of time (14 ns
 * each on the Ice Lake bench machine, ~40 on Skylake-SP): 2000 of them,
 * 28 us there, let LeNet's pool sleep and wake ~30 times a step (strace);
 * 250 us by the clock ran its 600 steps in 1.97 s instead of 2.34. The
 * caller never waits for a worker that has not joined: only for claimed
 * tasks. */
#define POOL_SPIN_NS 250000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

typedef struct {
    uint64_t end; /* 0 until the first clock reading */
    unsigned n;
} spin;

/* One round of spinning: a pause, and every 64 rounds a look at the clock
 * (~25 ns); 0 once POOL_SPIN_NS have passed since the first look. */
static inline int spin_more(spin *s) {
    cpu_relax();
    if (++s->n & 63)
        return 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (!s->end)
        s->end = t + POOL_SPIN_NS;
    return t < s->end;
}

/* Claims the next task of job `gen`, or returns -1 when it has none left. */
static long pool_claim(lg_pool *p, uint64_t gen, size_t ntasks) {
    uint64_t v = atomic_load(&p->ticket);
    for (;;) {
        if (v >> 32 != (gen & 0xffffffffu) || (v & 0xffffffffu) >= ntasks)
            return -1;
        if (atomic_compare_exchange_weak(&p->ticket, &v, v + 1))
            return (long)(v & 0xffffffffu);
    }
}

static void pool_run_tasks(lg_pool *p, uint64_t gen, lg_task_fn fn, void *arg, size_t ntasks) {
    long t;
    while ((t = pool_claim(p, gen, ntasks)) >= 0) {
        fn(arg, (size_t)t);
        if (atomic_fetch_add(&p->finished, 1) + 1 == ntasks) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void omp_noop(void *arg) {
    (void)arg;
}

/* oneDNN (runtime/ops/conv_dnnl.c) runs single-threaded in whichever
 * thread calls it, and some of its kernels (Winograd) open a parallel
 * region of that one thread on every call. Setting the thread count and
 * entering one region now makes libgomp allocate this thread's state and
 * its region bookkeeping here rather than inside a kernel call (each
 * region's team record is then allocated and freed within the call). */
static void omp_thread_setup(void) {
    omp_set_num_threads(1);
    GOMP_parallel(omp_noop, NULL, 1, 0);
}

static void *pool_worker(void *opaque) {
    lg_pool *p = opaque;
    uint64_t seen = 0;
    omp_thread_setup();
    atomic_fetch_add(&p->started, 1);
    for (;;) {
        spin s = {0, 0};
        while (atomic_load(&p->generation) == seen && spin_more(&s))
            ;
        pthread_mutex_lock(&p->mu);
        while (!p->quit && atomic_load(&p->generation) == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = atomic_load(&p->generation);
        lg_task_fn fn = p->fn;
        void *arg = p->arg;
        size_t ntasks = p->ntasks;
        pthread_mutex_unlock(&p->mu);
        pool_run_tasks(p, seen, fn, arg, ntasks);
    }
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
    omp_thread_setup(); /* the calling thread runs kernels too */
    if (threads == 1)
        return LG_OK;
    lg_pool *p = calloc(1, sizeof *p);
    if (!p)
        return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate the thread pool");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->finished, 0);
    atomic_init(&p->started, 0);
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
    /* lg_ctx_init returns with every worker set up (nothing of theirs is
     * allocated later, during a kernel call) */
    while (atomic_load(&p->started) < p->nworkers)
        sched_yield();
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
    if (!p || ntasks <= 1 || ntasks > 0xffffffffu) {
        for (size_t t = 0; t < ntasks; t++)
            fn(arg, t);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store(&p->finished, 0);
    uint64_t gen = atomic_load(&p->generation) + 1;
    atomic_store(&p->ticket, (gen & 0xffffffffu) << 32);
    atomic_store(&p->generation, gen);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pool_run_tasks(p, gen, fn, arg, ntasks);
    spin s = {0, 0};
    while (atomic_load(&p->finished) < ntasks && spin_more(&s))
        ;
    if (atomic_load(&p->finished) < ntasks) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->finished) < ntasks)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
