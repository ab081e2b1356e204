/* loader.c — the DataLoader: order, workers, prefetch, batching.
 *
 * lg_loader_init picks the split's samples (a random split by fraction is a
 * permutation drawn from split_seed), allocates `prefetch` batch slots with
 * the static shapes of the split spec and starts num_workers threads that
 * live as long as the loader. An epoch's order is a function of (seed,
 * epoch); a worker fills a whole batch k into slot k % prefetch, drawing each
 * sample's random transforms from (seed, epoch, dataset index), so batches do
 * not depend on which thread made them. Workers stay at most `prefetch`
 * batches ahead of the consumer: memory is bounded by the window, not the
 * data set. The first error of a batch is kept in its slot and returned by
 * lg_loader_next on the caller's thread when that batch is due.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    lg_batch b;
    int64_t holds;   /* batch index filled in, -1 = none */
    lg_status status;
    lg_error err;
} slot;

struct lg_loader_state {
    const lg_split_spec *spec;
    lg_dataset *ds;
    lg_loader_options opt;
    uint64_t seed;
    int64_t n;          /* samples */
    int64_t *ids;       /* [n] dataset index of each split position */
    int64_t *order;     /* [n] this epoch's order of positions */
    int64_t epoch;
    int64_t n_batches;
    int P;
    slot *slots;
    lg_sample *samples; /* one per worker (or one for the caller) */
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work, ready;
    int stop;
    atomic_int gen;     /* bumped by lg_loader_start; stale work is dropped */
    int64_t next_fill;  /* next batch a worker takes */
    int64_t end;        /* one past the last batch of the epoch */
    int64_t released;   /* batches before this are consumed; their slots are free */
    int64_t cur;        /* next batch to hand out */
    int inflight;
    int started;
};

typedef struct worker_arg {
    struct lg_loader_state *s;
    int id;
} worker_arg;

static lg_status batch_alloc(lg_batch *b, const lg_split_spec *sp, int bs, lg_error *err) {
    memset(b, 0, sizeof *b);
    b->batch_size = bs;
    b->channels = sp->channels;
    b->height = sp->height;
    b->width = sp->width;
    b->max_boxes = sp->max_boxes;
    size_t img = (size_t)bs * sp->channels * sp->height * sp->width;
    size_t nb = (size_t)bs * (sp->max_boxes > 0 ? sp->max_boxes : 0);
    b->image = calloc(img ? img : 1, sizeof(float));
    b->label = calloc((size_t)bs, sizeof(int32_t));
    b->index = calloc((size_t)bs, sizeof(int64_t));
    if (nb) {
        b->boxes = calloc(nb * 4, sizeof(float));
        b->box_label = calloc(nb, sizeof(int32_t));
        b->box_difficult = calloc(nb, 1);
        b->box_mask = calloc(nb, 1);
        b->box_count = calloc((size_t)bs, sizeof(int32_t));
    }
    if (!b->image || !b->label || !b->index ||
        (nb && (!b->boxes || !b->box_label || !b->box_difficult || !b->box_mask ||
                !b->box_count)))
        return lg_error_set(err, LG_ERR_NOMEM,
                            "cannot allocate a batch of %d x %dx%dx%d floats for split '%s'; "
                            "try a smaller --batch_size",
                            bs, sp->channels, sp->height, sp->width, sp->name);
    return LG_OK;
}

static void batch_free(lg_batch *b) {
    free(b->image);
    free(b->label);
    free(b->index);
    free(b->boxes);
    free(b->box_label);
    free(b->box_difficult);
    free(b->box_mask);
    free(b->box_count);
    memset(b, 0, sizeof *b);
}

/* Row j of b: label -1, index -1, no boxes, zero image. */
static void clear_row(lg_batch *b, int j) {
    size_t img = (size_t)b->channels * b->height * b->width;
    memset(b->image + (size_t)j * img, 0, img * sizeof(float));
    b->label[j] = -1;
    b->index[j] = -1;
    if (b->max_boxes > 0) {
        size_t B = (size_t)b->max_boxes;
        memset(b->boxes + (size_t)j * B * 4, 0, B * 4 * sizeof(float));
        for (size_t k = 0; k < B; k++)
            b->box_label[j * B + k] = -1;
        memset(b->box_difficult + j * B, 0, B);
        memset(b->box_mask + j * B, 0, B);
        b->box_count[j] = 0;
    }
}

static lg_status fill_row(struct lg_loader_state *s, lg_batch *b, int j, int64_t idx,
                          lg_sample *smp, lg_error *err) {
    const lg_split_spec *sp = s->spec;
    lg_rng rng = {lg_rng_mix(s->seed, (uint64_t)s->epoch, (uint64_t)idx)};
    smp->nbox = 0;
    smp->label = -1;
    lg_status st = s->ds->get(s->ds, idx, smp, err);
    if (st == LG_OK)
        st = lg_transform_apply(sp->transforms, sp->n_transforms, smp, &rng, err);
    if (st) {
        if (s->ds->desc->args.skip_bad && (st == LG_ERR_FORMAT || st == LG_ERR_IO)) {
            atomic_fetch_add(&s->ds->skipped, 1);
            fprintf(stderr, "warning: split '%s': skipping sample %lld: %s\n", sp->name,
                    (long long)idx, err ? err->msg : "unreadable");
            clear_row(b, j);
            return LG_OK;
        }
        return lg_error_wrap(err, "split '%s', sample %lld", sp->name, (long long)idx);
    }
    if (smp->c != sp->channels || smp->h != sp->height || smp->w != sp->width)
        return lg_error_set(err, LG_ERR_ARG,
                            "split '%s', sample %lld: the transforms give a %dx%dx%d image but "
                            "the network expects %dx%dx%d (C x H x W)",
                            sp->name, (long long)idx, smp->c, smp->h, smp->w, sp->channels,
                            sp->height, sp->width);
    size_t img = (size_t)sp->channels * sp->height * sp->width;
    memcpy(b->image + (size_t)j * img, smp->img, img * sizeof(float));
    b->label[j] = smp->label;
    b->index[j] = idx;
    if (sp->max_boxes > 0) {
        size_t B = (size_t)sp->max_boxes;
        int nb = smp->nbox < sp->max_boxes ? smp->nbox : sp->max_boxes;
        for (size_t k = 0; k < B; k++) {
            int real = (int)k < nb;
            for (int q = 0; q < 4; q++)
                b->boxes[(j * B + k) * 4 + q] = real ? smp->boxes[4 * k + q] : 0.0f;
            b->box_label[j * B + k] = real ? smp->box_label[k] : -1;
            b->box_difficult[j * B + k] = real ? smp->box_difficult[k] : 0;
            b->box_mask[j * B + k] = (uint8_t)real;
        }
        b->box_count[j] = nb;
    }
    return LG_OK;
}

static lg_status fill_batch(struct lg_loader_state *s, slot *sl, int64_t k, int gen,
                            lg_sample *smp) {
    lg_batch *b = &sl->b;
    int bs = s->opt.batch_size;
    int64_t first = k * bs;
    int n = (int)(s->n - first < bs ? s->n - first : bs);
    b->n = n;
    b->batch_index = k;
    for (int j = 0; j < bs; j++) {
        if (atomic_load(&s->gen) != gen)
            return LG_OK; /* the epoch was restarted; this batch is dropped */
        if (j >= n) {
            clear_row(b, j);
            continue;
        }
        lg_status st = fill_row(s, b, j, s->ids[s->order[first + j]], smp, &sl->err);
        if (st)
            return st;
    }
    return LG_OK;
}

static void *worker_main(void *p) {
    worker_arg *wa = p;
    struct lg_loader_state *s = wa->s;
    lg_sample *smp = &s->samples[wa->id];
    free(wa);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && !(s->next_fill < s->end && s->next_fill < s->released + s->P))
            pthread_cond_wait(&s->work, &s->mu);
        if (s->stop)
            break;
        int64_t k = s->next_fill++;
        int gen = atomic_load(&s->gen);
        slot *sl = &s->slots[k % s->P];
        s->inflight++;
        pthread_mutex_unlock(&s->mu);
        lg_status st = fill_batch(s, sl, k, gen, smp);
        pthread_mutex_lock(&s->mu);
        s->inflight--;
        if (atomic_load(&s->gen) == gen) {
            sl->status = st;
            sl->holds = k;
        }
        pthread_cond_broadcast(&s->ready);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Fisher-Yates over [0, n) from a generator seeded by key. */
static void permute(int64_t *a, int64_t n, uint64_t key) {
    lg_rng r = {key};
    for (int64_t i = 0; i < n; i++)
        a[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)lg_rng_below(&r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

lg_status lg_loader_init(lg_loader *l, const lg_split_spec *spec, lg_dataset *ds,
                         const lg_loader_options *opt, uint64_t seed, lg_error *err) {
    memset(l, 0, sizeof *l);
    if (opt->batch_size < 1)
        return lg_error_set(err, LG_ERR_ARG, "batch_size must be at least 1, got %d",
                            opt->batch_size);
    if (opt->num_workers < 0 || opt->num_workers > 256)
        return lg_error_set(err, LG_ERR_ARG, "num_workers must be in [0, 256], got %d",
                            opt->num_workers);
    if (spec->channels < 1 || spec->height < 1 || spec->width < 1 || spec->max_boxes < 0)
        return lg_error_set(err, LG_ERR_ARG, "split '%s': bad batch shape %dx%dx%d",
                            spec->name, spec->channels, spec->height, spec->width);
    double lo = spec->lo, hi = spec->hi;
    if (lo == 0 && hi == 0)
        hi = 1;
    if (!(lo >= 0 && lo <= hi && hi <= 1))
        return lg_error_set(err, LG_ERR_ARG, "split '%s': bad fraction range [%g, %g)",
                            spec->name, lo, hi);
    struct lg_loader_state *s = calloc(1, sizeof *s);
    if (!s)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    l->state = s;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->ready, NULL);
    s->spec = spec;
    s->ds = ds;
    s->opt = *opt;
    s->seed = seed;
    int64_t total = lg_dataset_size(ds);
    int64_t a = (int64_t)(lo * total + 0.5), z = (int64_t)(hi * total + 0.5);
    s->n = z - a;
    s->ids = malloc((size_t)(total ? total : 1) * sizeof(int64_t));
    s->order = malloc((size_t)(s->n ? s->n : 1) * sizeof(int64_t));
    if (!s->ids || !s->order)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory for %lld sample ids",
                            (long long)total);
    if (spec->split_seed || lo > 0 || hi < 1)
        permute(s->ids, total, lg_rng_mix(spec->split_seed, 0x5eed, 0x5971));
    else
        for (int64_t i = 0; i < total; i++)
            s->ids[i] = i;
    memmove(s->ids, s->ids + a, (size_t)s->n * sizeof(int64_t));
    int64_t bs = opt->batch_size;
    s->n_batches = opt->drop_last ? s->n / bs : (s->n + bs - 1) / bs;
    l->n_samples = s->n;
    l->n_batches = s->n_batches;
    s->nthreads = opt->num_workers;
    s->P = opt->prefetch > 0 ? opt->prefetch : 2 * (s->nthreads > 0 ? s->nthreads : 1);
    if (s->nthreads == 0)
        s->P = 1;
    s->slots = calloc((size_t)s->P, sizeof(slot));
    s->samples = calloc((size_t)(s->nthreads ? s->nthreads : 1), sizeof(lg_sample));
    if (!s->slots || !s->samples)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->P; i++) {
        s->slots[i].holds = -1;
        lg_status st = batch_alloc(&s->slots[i].b, spec, opt->batch_size, err);
        if (st)
            return st;
    }
    s->end = 0;
    if (s->nthreads) {
        s->threads = calloc((size_t)s->nthreads, sizeof(pthread_t));
        if (!s->threads)
            return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
        for (int i = 0; i < s->nthreads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa)
                return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
            wa->s = s;
            wa->id = i;
            if (pthread_create(&s->threads[i], NULL, worker_main, wa) != 0) {
                free(wa);
                s->nthreads = i; /* join what started */
                return lg_error_set(err, LG_ERR_NOMEM, "cannot start data worker thread %d",
                                    i);
            }
        }
    }
    return LG_OK;
}

lg_status lg_loader_start(lg_loader *l, int64_t epoch, int64_t first_batch, lg_error *err) {
    struct lg_loader_state *s = l->state;
    if (!s)
        return lg_error_set(err, LG_ERR_ARG, "loader not initialised");
    if (first_batch < 0 || first_batch > s->n_batches)
        return lg_error_set(err, LG_ERR_ARG,
                            "cannot start split '%s' at batch %lld: it has %lld batches",
                            s->spec->name, (long long)first_batch, (long long)s->n_batches);
    pthread_mutex_lock(&s->mu);
    atomic_fetch_add(&s->gen, 1);
    s->end = 0; /* no new work while the old epoch drains */
    while (s->inflight > 0)
        pthread_cond_wait(&s->ready, &s->mu);
    s->epoch = epoch;
    if (s->opt.shuffle)
        permute(s->order, s->n, lg_rng_mix(s->seed, (uint64_t)epoch, 0x5bd1e995u));
    else
        for (int64_t i = 0; i < s->n; i++)
            s->order[i] = i;
    for (int i = 0; i < s->P; i++)
        s->slots[i].holds = -1;
    s->next_fill = s->released = s->cur = first_batch;
    s->end = s->n_batches;
    s->started = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    return LG_OK;
}

lg_status lg_loader_next(lg_loader *l, const lg_batch **out, lg_error *err) {
    struct lg_loader_state *s = l->state;
    *out = NULL;
    if (!s || !s->started)
        return lg_error_set(err, LG_ERR_ARG, "lg_loader_next before lg_loader_start");
    int64_t k = s->cur;
    slot *sl = &s->slots[k % s->P];
    if (s->nthreads == 0) {
        if (k >= s->end)
            return LG_OK;
        sl->status = fill_batch(s, sl, k, atomic_load(&s->gen), &s->samples[0]);
    } else {
        pthread_mutex_lock(&s->mu);
        s->released = k; /* the previous batch is done with */
        pthread_cond_broadcast(&s->work);
        if (k >= s->end) {
            pthread_mutex_unlock(&s->mu);
            return LG_OK;
        }
        while (sl->holds != k)
            pthread_cond_wait(&s->ready, &s->mu);
        pthread_mutex_unlock(&s->mu);
    }
    if (sl->status != LG_OK) {
        if (err)
            *err = sl->err;
        return sl->status;
    }
    s->cur = k + 1;
    *out = &sl->b;
    return LG_OK;
}

void lg_loader_free(lg_loader *l) {
    struct lg_loader_state *s = l ? l->state : NULL;
    if (!s)
        return;
    if (s->threads) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        atomic_fetch_add(&s->gen, 1);
        pthread_cond_broadcast(&s->work);
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < s->nthreads; i++)
            pthread_join(s->threads[i], NULL);
        free(s->threads);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->ready);
    if (s->slots)
        for (int i = 0; i < s->P; i++)
            batch_free(&s->slots[i].b);
    if (s->samples)
        for (int i = 0; i < (s->nthreads ? s->nthreads : 1); i++)
            lg_sample_free(&s->samples[i]);
    free(s->slots);
    free(s->samples);
    free(s->ids);
    free(s->order);
    free(s);
    l->state = NULL;
}
