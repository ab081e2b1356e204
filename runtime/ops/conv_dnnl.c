/* conv_dnnl.c — conv2d in float32 through oneDNN (libdnnl): forward,
 * backward-data and backward-weights primitives. Our buffers keep PyTorch's
 * layouts (NCHW activations, OIHW weights); oneDNN's kernels run in its
 * blocked layouts (nChw16c, OIhw16i16o, ...), and cached reorder primitives
 * convert each chunk's tensors on the way in and out (weights too, once per
 * chunk: they change every step). layout_of() picks, per direction and
 * shape, blocked or im2col + GEMM (measured: bench/README.md).
 *
 * Threading: oneDNN is built on OpenMP here, and an OpenMP team next to our
 * own pool fights it for the cores (spinning workers). So oneDNN runs with
 * one OpenMP thread in whichever thread calls it, and the batch is cut into
 * a fixed number of chunks (SLOTS, or n when smaller) that run as tasks on
 * our pool: no OpenMP worker is ever started. The cut depends on n only, so
 * results do not depend on the thread count. Backward-weights writes one
 * partial gradient per chunk (SLOTS buffers the size of the largest weight);
 * they are added in chunk order.
 *
 * Primitives are created once per (direction, shape, chunk size) on first
 * use, with their reorders, memory objects and scratchpad needs (user mode:
 * one slot buffer per chunk holds the blocked tensors and scratchpads), and
 * kept in a process-wide cache that is freed at exit. So the first step (and
 * the first smaller last batch) creates them and later steps allocate
 * nothing. A call takes the cache's lock for its whole duration, so two
 * contexts in two threads never share a slot. Anything oneDNN refuses makes
 * the caller fall back to im2col + GEMM (dense.inc), which also is the
 * float64 path. LGEN_CONV=im2col in the environment turns this path off;
 * LGEN_CONV=FWD,DATA,WEIGHTS (each im2col, plain or blocked) forces a
 * layout per direction, for measuring. */
#include "ops_internal.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdatomic.h>

void omp_set_num_threads(int n); /* libgomp, which libdnnl uses */

#define SLOTS 4 /* batch chunks per call, at most */
#define NARGS 4 /* tensors of a convolution primitive, at most */

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_WEIGHTS };
enum { LAYOUT_IM2COL, LAYOUT_PLAIN, LAYOUT_BLOCKED };

/* One tensor argument of a primitive. When oneDNN wants another layout than
 * ours (blocked), the tensor lives in a slot buffer and a reorder converts it
 * on the way in (inputs) or out (outputs). */
typedef struct {
    int argk;
    int reorder;          /* 0: our buffer is bound; 1: reordered in before; 2: out after */
    size_t off;           /* the oneDNN-side buffer's offset in the slot buffer */
    dnnl_primitive_t ro;  /* the reorder (reorder != 0) */
    size_t ro_off, ro_bytes; /* its scratchpad in the slot buffer (bytes 0: none) */
    dnnl_memory_t user[SLOTS], inner[SLOTS], ro_scratch[SLOTS];
} conv_arg;

typedef struct conv_prim {
    struct conv_prim *next;
    int dir, mb, layout; /* key: direction, chunk size, layout ... */
    lg_conv2d_dims d;    /* ... and shape */
    dnnl_primitive_t prim; /* NULL: oneDNN refused it (fall back) */
    int nargs;
    conv_arg arg[NARGS];
    size_t scratch_off, scratch_bytes; /* the primitive's scratchpad in the slot buffer */
    dnnl_memory_t scratch[SLOTS];
    size_t slot_bytes; /* what it needs of each slot buffer */
} conv_prim;

static struct {
    pthread_mutex_t mu;
    int state;  /* 0: not started, 1: ready, -1: off */
    int layout[3]; /* per direction, LAYOUT_* from LGEN_CONV; -1: chosen per shape */
    dnnl_engine_t engine;
    dnnl_stream_t stream[SLOTS];
    conv_prim *prims;
    float *partial[SLOTS]; /* backward-weights: per chunk dweight then dbias */
    size_t partial_elems;
    char *slot[SLOTS]; /* per chunk: blocked tensors and scratchpads */
    size_t slot_bytes;
} dnn = {.mu = PTHREAD_MUTEX_INITIALIZER, .layout = {-1, -1, -1}};

/* oneDNN sizes its work by omp_get_max_threads() of the calling thread. */
static _Thread_local int omp_is_single;

static void omp_single(void) {
    if (!omp_is_single) {
        omp_set_num_threads(1);
        omp_is_single = 1;
    }
}

static void prim_free(conv_prim *p) {
    for (int s = 0; s < SLOTS; s++) {
        for (int a = 0; a < p->nargs; a++) {
            conv_arg *g = &p->arg[a];
            if (g->user[s])
                dnnl_memory_destroy(g->user[s]);
            if (g->inner[s])
                dnnl_memory_destroy(g->inner[s]);
            if (g->ro_scratch[s])
                dnnl_memory_destroy(g->ro_scratch[s]);
        }
        if (p->scratch[s])
            dnnl_memory_destroy(p->scratch[s]);
    }
    for (int a = 0; a < p->nargs; a++)
        if (p->arg[a].ro)
            dnnl_primitive_destroy(p->arg[a].ro);
    if (p->prim)
        dnnl_primitive_destroy(p->prim);
    free(p);
}

static void dnn_free(void) {
    pthread_mutex_lock(&dnn.mu);
    while (dnn.prims) {
        conv_prim *p = dnn.prims;
        dnn.prims = p->next;
        prim_free(p);
    }
    for (int s = 0; s < SLOTS; s++) {
        if (dnn.stream[s])
            dnnl_stream_destroy(dnn.stream[s]);
        dnn.stream[s] = NULL;
        free(dnn.partial[s]);
        free(dnn.slot[s]);
        dnn.partial[s] = NULL;
        dnn.slot[s] = NULL;
    }
    if (dnn.engine)
        dnnl_engine_destroy(dnn.engine);
    dnn.engine = NULL;
    dnn.partial_elems = dnn.slot_bytes = 0;
    dnn.state = -1;
    pthread_mutex_unlock(&dnn.mu);
}

/* Under dnn.mu: the engine and streams on first use. */
static int dnn_ready(void) {
    if (dnn.state)
        return dnn.state > 0;
    dnn.state = -1;
    /* LGEN_CONV=LAYOUT or FWD,DATA,WEIGHTS (im2col, plain or blocked) */
    const char *env = getenv("LGEN_CONV");
    for (int dir = 0; env && *env && dir < 3; dir++) {
        static const char *const names[] = {"im2col", "plain", "blocked"};
        size_t len = strcspn(env, ",");
        for (int i = 0; i < 3; i++)
            if (len == strlen(names[i]) && !strncmp(env, names[i], len))
                dnn.layout[dir] = i;
        if (!env[len] && dir == 0)
            dnn.layout[1] = dnn.layout[2] = dnn.layout[0];
        env += len + (env[len] == ',');
    }
    omp_single();
    if (dnnl_engine_create(&dnn.engine, dnnl_cpu, 0) != dnnl_success)
        return 0;
    for (int s = 0; s < SLOTS; s++)
        if (dnnl_stream_create(&dnn.stream[s], dnn.engine, dnnl_stream_default_flags) != dnnl_success)
            return 0;
    atexit(dnn_free);
    dnn.state = 1;
    return 1;
}

/* Under dnn.mu: every slot buffer holds at least `bytes`. Grows on a
 * shape's first call only; the tasks set their handles on every call. */
static int slots_reserve(size_t bytes) {
    if (bytes <= dnn.slot_bytes)
        return 1;
    for (int s = 0; s < SLOTS; s++) {
        free(dnn.slot[s]);
        dnn.slot[s] = aligned_alloc(64, bytes);
    }
    for (int s = 0; s < SLOTS; s++)
        if (!dnn.slot[s]) {
            for (int t = 0; t < SLOTS; t++)
                free(dnn.slot[t]), dnn.slot[t] = NULL;
            dnn.slot_bytes = 0;
            return 0;
        }
    dnn.slot_bytes = bytes;
    return 1;
}

/* The memory descriptors of a chunk of mb samples, in our layouts. */
typedef struct {
    dnnl_memory_desc_t src, weights, bias, dst;
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} conv_descs;

static void conv_descs_init(conv_descs *c, const lg_conv2d_dims *d, int mb, int any) {
    dnnl_dims_t src = {mb, d->c_in, d->h_in, d->w_in}, dst = {mb, d->c_out, d->h_out, d->w_out};
    dnnl_dims_t bias = {d->c_out};
    dnnl_memory_desc_init_by_tag(&c->src, 4, src, dnnl_f32, any ? dnnl_format_tag_any : dnnl_nchw);
    dnnl_memory_desc_init_by_tag(&c->dst, 4, dst, dnnl_f32, any ? dnnl_format_tag_any : dnnl_nchw);
    dnnl_memory_desc_init_by_tag(&c->bias, 1, bias, dnnl_f32, dnnl_x);
    if (d->groups == 1) {
        dnnl_dims_t w = {d->c_out, d->c_in, d->kh, d->kw};
        dnnl_memory_desc_init_by_tag(&c->weights, 4, w, dnnl_f32, any ? dnnl_format_tag_any : dnnl_oihw);
    } else { /* OIHW with groups is goihw: the groups' output channels are consecutive */
        dnnl_dims_t w = {d->groups, d->c_out / d->groups, d->c_in / d->groups, d->kh, d->kw};
        dnnl_memory_desc_init_by_tag(&c->weights, 5, w, dnnl_f32, any ? dnnl_format_tag_any : dnnl_goihw);
    }
    /* oneDNN counts dilation from 0; the right padding PyTorch implies
     * gives the same floor division as the left one */
    c->strides[0] = d->sh, c->strides[1] = d->sw;
    c->dilates[0] = d->dh - 1, c->dilates[1] = d->dw - 1;
    c->pad_l[0] = c->pad_r[0] = d->ph;
    c->pad_l[1] = c->pad_r[1] = d->pw;
}

static size_t align64(size_t n) {
    return (n + 63) / 64 * 64;
}

static dnnl_primitive_attr_t user_scratchpad(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    return attr;
}

/* The reorder of argument g between our layout `user` and oneDNN's `inner`,
 * its place in the slot buffer and its memory objects. */
static int arg_bind(conv_prim *p, conv_arg *g, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *inner,
                    int is_output) {
    int ok = 1;
    if (!dnnl_memory_desc_equal(user, inner)) {
        g->reorder = is_output ? 2 : 1;
        g->off = p->slot_bytes;
        p->slot_bytes += align64(dnnl_memory_desc_get_size(inner));
        dnnl_primitive_attr_t attr = user_scratchpad();
        dnnl_primitive_desc_t rpd = NULL;
        ok = attr && dnnl_reorder_primitive_desc_create(&rpd, is_output ? inner : user, dnn.engine,
                                                         is_output ? user : inner, dnn.engine, attr) == dnnl_success;
        if (attr)
            dnnl_primitive_attr_destroy(attr);
        const dnnl_memory_desc_t *smd = ok ? dnnl_primitive_desc_query_md(rpd, dnnl_query_scratchpad_md, 0) : NULL;
        g->ro_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
        g->ro_off = p->slot_bytes;
        p->slot_bytes += align64(g->ro_bytes);
        ok = ok && dnnl_primitive_create(&g->ro, rpd) == dnnl_success;
        for (int s = 0; s < SLOTS && ok; s++)
            ok = dnnl_memory_create(&g->inner[s], inner, dnn.engine, DNNL_MEMORY_NONE) == dnnl_success &&
                 (!g->ro_bytes ||
                  dnnl_memory_create(&g->ro_scratch[s], smd, dnn.engine, DNNL_MEMORY_NONE) == dnnl_success);
        if (rpd)
            dnnl_primitive_desc_destroy(rpd);
    }
    for (int s = 0; s < SLOTS && ok; s++)
        ok = dnnl_memory_create(&g->user[s], user, dnn.engine, DNNL_MEMORY_NONE) == dnnl_success;
    return ok;
}

/* Under dnn.mu: creates the primitive of (dir, d, mb, layout) with its
 * reorders and memory objects. Leaves p->prim NULL when oneDNN refuses. */
static void prim_create(conv_prim *p) {
    conv_descs user, c;
    conv_descs_init(&user, &p->d, p->mb, 0);
    conv_descs_init(&c, &p->d, p->mb, p->layout == LAYOUT_BLOCKED);
    const dnnl_memory_desc_t *bias = p->d.bias ? &c.bias : NULL;
    dnnl_convolution_desc_t fwd_desc, desc;
    dnnl_primitive_desc_t hint = NULL, pd = NULL;
    if (dnnl_dilated_convolution_forward_desc_init(&fwd_desc, dnnl_forward_training, dnnl_convolution_direct, &c.src,
                                                   &c.weights, bias, &c.dst, c.strides, c.dilates, c.pad_l,
                                                   c.pad_r) != dnnl_success)
        return;
    dnnl_primitive_attr_t attr = user_scratchpad();
    if (!attr)
        return;
    const dnnl_memory_desc_t *mds[NARGS];
    int ok = 0, out = 0; /* out: index of the output argument */
    switch (p->dir) {
    case DIR_FWD:
        ok = dnnl_primitive_desc_create(&pd, &fwd_desc, attr, dnn.engine, NULL) == dnnl_success;
        p->arg[0].argk = DNNL_ARG_SRC, mds[0] = &user.src;
        p->arg[1].argk = DNNL_ARG_WEIGHTS, mds[1] = &user.weights;
        p->arg[2].argk = DNNL_ARG_DST, mds[2] = &user.dst, out = 2;
        p->arg[3].argk = DNNL_ARG_BIAS, mds[3] = &user.bias;
        p->nargs = p->d.bias ? 4 : 3;
        break;
    case DIR_BWD_DATA:
        ok = dnnl_primitive_desc_create(&hint, &fwd_desc, NULL, dnn.engine, NULL) == dnnl_success &&
             dnnl_dilated_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &c.src, &c.weights,
                                                              &c.dst, c.strides, c.dilates, c.pad_l,
                                                              c.pad_r) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &desc, attr, dnn.engine, hint) == dnnl_success;
        p->arg[0].argk = DNNL_ARG_DIFF_SRC, mds[0] = &user.src, out = 0;
        p->arg[1].argk = DNNL_ARG_WEIGHTS, mds[1] = &user.weights;
        p->arg[2].argk = DNNL_ARG_DIFF_DST, mds[2] = &user.dst;
        p->nargs = 3;
        break;
    default:
        ok = dnnl_primitive_desc_create(&hint, &fwd_desc, NULL, dnn.engine, NULL) == dnnl_success &&
             dnnl_dilated_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &c.src,
                                                                 &c.weights, bias, &c.dst, c.strides, c.dilates,
                                                                 c.pad_l, c.pad_r) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &desc, attr, dnn.engine, hint) == dnnl_success;
        p->arg[0].argk = DNNL_ARG_SRC, mds[0] = &user.src;
        p->arg[1].argk = DNNL_ARG_DIFF_WEIGHTS, mds[1] = &user.weights, out = 1;
        p->arg[2].argk = DNNL_ARG_DIFF_DST, mds[2] = &user.dst;
        p->arg[3].argk = DNNL_ARG_DIFF_BIAS, mds[3] = &user.bias; /* bias gradient: index 3 too */
        p->nargs = p->d.bias ? 4 : 3;
        break;
    }
    dnnl_primitive_attr_destroy(attr);
    if (hint)
        dnnl_primitive_desc_destroy(hint);
    for (int a = 0; a < p->nargs && ok; a++) {
        const dnnl_memory_desc_t *inner = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, p->arg[a].argk);
        int is_out = a == out || p->arg[a].argk == DNNL_ARG_DIFF_BIAS;
        ok = inner && arg_bind(p, &p->arg[a], mds[a], inner, is_out);
    }
    const dnnl_memory_desc_t *smd = ok ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    p->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    p->scratch_off = p->slot_bytes;
    p->slot_bytes += align64(p->scratch_bytes);
    for (int s = 0; s < SLOTS && ok && p->scratch_bytes; s++)
        ok = dnnl_memory_create(&p->scratch[s], smd, dnn.engine, DNNL_MEMORY_NONE) == dnnl_success;
    ok = ok && slots_reserve(p->slot_bytes);
    if (ok && dnnl_primitive_create(&p->prim, pd) != dnnl_success)
        p->prim = NULL;
    if (pd)
        dnnl_primitive_desc_destroy(pd);
}

/* The layout a shape runs in by default (measured: bench/README.md). */
static int layout_of(int dir, const lg_conv2d_dims *d) {
    /* blocked (jit, AVX-512 or AVX2 by the CPU) wins everywhere except the
     * data gradient of stems (c_in 1 or 3), where oneDNN's kernels ran 2x
     * slower than im2col + GEMM (LeNet's conv2, c_in 6, is faster blocked) */
    if (dir == DIR_BWD_DATA && d->c_in / d->groups < 4)
        return LAYOUT_IM2COL;
    /* deep, small maps (ResNet-18's 7x7 stage: K = c_in kh kw >= 2048 over
     * at most 64 pixels): one big GEMM per sample beat oneDNN's backward
     * (28 vs 43 ms on resnet18.l4, 17 vs 27 on l4down, quiet run) */
    if (dir != DIR_FWD && d->h_out * d->w_out <= 64 && (d->c_in / d->groups) * d->kh * d->kw >= 2048)
        return LAYOUT_IM2COL;
    return LAYOUT_BLOCKED;
}

/* Under dnn.mu: the cached primitive, created on first use. */
static conv_prim *prim_get(int dir, const lg_conv2d_dims *d, int mb) {
    int layout = dnn.layout[dir] >= 0 ? dnn.layout[dir] : layout_of(dir, d);
    if (layout == LAYOUT_IM2COL)
        return NULL;
    for (conv_prim *p = dnn.prims; p; p = p->next)
        if (p->dir == dir && p->mb == mb && p->layout == layout && !memcmp(&p->d, d, sizeof *d))
            return p;
    conv_prim *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->dir = dir, p->mb = mb, p->layout = layout, p->d = *d;
    prim_create(p);
    p->next = dnn.prims;
    dnn.prims = p;
    return p;
}

typedef struct {
    const lg_conv2d_dims *d;
    conv_prim *big, *small; /* chunks of mb = base + 1 (the first n % chunks) and base */
    size_t n, chunks;
    const float *x, *w, *b, *dy;
    float *y, *dx;
    atomic_int failed;
} conv_run;

static void chunk_of(const conv_run *r, size_t t, size_t *n0, size_t *nb) {
    size_t base = r->n / r->chunks, extra = r->n % r->chunks;
    *nb = base + (t < extra);
    *n0 = t * base + (t < extra ? t : extra);
}

static int exec(dnnl_primitive_t prim, size_t t, int nargs, const dnnl_exec_arg_t *args) {
    return dnnl_primitive_execute(prim, dnn.stream[t], nargs, args) == dnnl_success &&
           dnnl_stream_wait(dnn.stream[t]) == dnnl_success;
}

static void conv_task(void *arg, size_t t) {
    conv_run *r = arg;
    size_t n0, nb;
    chunk_of(r, t, &n0, &nb);
    const conv_prim *p = nb == (size_t)r->big->mb ? r->big : r->small;
    const lg_conv2d_dims *d = r->d;
    size_t in = (size_t)d->c_in * (size_t)d->h_in * (size_t)d->w_in;
    size_t out = (size_t)d->c_out * (size_t)d->h_out * (size_t)d->w_out;
    size_t wsz = (size_t)d->c_out * (size_t)(d->c_in / d->groups) * (size_t)d->kh * (size_t)d->kw;
    void *h[NARGS];
    switch (p->dir) {
    case DIR_FWD:
        h[0] = (void *)(r->x + n0 * in), h[1] = (void *)r->w, h[2] = r->y + n0 * out, h[3] = (void *)r->b;
        break;
    case DIR_BWD_DATA:
        h[0] = r->dx + n0 * in, h[1] = (void *)r->w, h[2] = (void *)(r->dy + n0 * out);
        break;
    default:
        h[0] = (void *)(r->x + n0 * in), h[1] = dnn.partial[t], h[2] = (void *)(r->dy + n0 * out);
        h[3] = dnn.partial[t] + wsz;
        break;
    }
    omp_single();
    char *slot = dnn.slot[t];
    int ok = 1;
    dnnl_exec_arg_t args[NARGS + 1];
    for (int a = 0; a < p->nargs && ok; a++) {
        const conv_arg *g = &p->arg[a];
        ok = dnnl_memory_set_data_handle(g->user[t], h[a]) == dnnl_success;
        args[a] = (dnnl_exec_arg_t){g->argk, g->user[t]};
        if (ok && g->reorder) {
            ok = dnnl_memory_set_data_handle(g->inner[t], slot + g->off) == dnnl_success &&
                 (!g->ro_bytes || dnnl_memory_set_data_handle(g->ro_scratch[t], slot + g->ro_off) == dnnl_success);
            args[a].memory = g->inner[t];
        }
    }
    int nargs = p->nargs;
    if (ok && p->scratch_bytes) {
        ok = dnnl_memory_set_data_handle(p->scratch[t], slot + p->scratch_off) == dnnl_success;
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch[t]};
    }
    for (int pass = 1; pass <= 2 && ok; pass++) {
        for (int a = 0; a < p->nargs && ok; a++) {
            const conv_arg *g = &p->arg[a];
            if (g->reorder != pass)
                continue;
            dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, pass == 1 ? g->user[t] : g->inner[t]},
                                     {DNNL_ARG_TO, pass == 1 ? g->inner[t] : g->user[t]},
                                     {DNNL_ARG_SCRATCHPAD, g->ro_scratch[t]}};
            ok = exec(g->ro, t, g->ro_bytes ? 3 : 2, ra);
        }
        if (pass == 1 && ok) /* inputs are in place: the convolution */
            ok = exec(p->prim, t, nargs, args);
    }
    if (!ok)
        atomic_store(&r->failed, 1);
}

typedef struct {
    float *dw;
    size_t count, chunks;
} sum_job;

/* dweight += the chunks' partial gradients, in chunk order. */
static void sum_task(void *arg, size_t t) {
    const sum_job *j = arg;
    size_t i0 = t * LG_CHUNK, i1 = i0 + LG_CHUNK < j->count ? i0 + LG_CHUNK : j->count;
    for (size_t i = i0; i < i1; i++) {
        float s = dnn.partial[0][i];
        for (size_t c = 1; c < j->chunks; c++)
            s += dnn.partial[c][i];
        j->dw[i] += s;
    }
}

/* Under dnn.mu: the primitives of one call, or 0 to fall back. */
static int run_prepare(conv_run *r, int dir) {
    if (!dnn_ready() || r->n > (size_t)INT32_MAX)
        return 0;
    r->chunks = r->n < SLOTS ? r->n : SLOTS;
    size_t base = r->n / r->chunks;
    r->big = prim_get(dir, r->d, (int)(base + (r->n % r->chunks != 0)));
    r->small = prim_get(dir, r->d, (int)base);
    return r->big && r->small && r->big->prim && r->small->prim;
}

int lg_dnnl_conv_forward(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *x, const float *w,
                         const float *b, float *y) {
    conv_run r = {.d = d, .n = n, .x = x, .w = w, .b = b, .y = y};
    pthread_mutex_lock(&dnn.mu);
    int ran = run_prepare(&r, DIR_FWD);
    if (ran) {
        lg_parallel_for(ctx, r.chunks, conv_task, &r);
        ran = !atomic_load(&r.failed);
    }
    pthread_mutex_unlock(&dnn.mu);
    return ran;
}

int lg_dnnl_conv_backward_data(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *w, const float *dy,
                               float *dx) {
    conv_run r = {.d = d, .n = n, .w = w, .dy = dy, .dx = dx};
    pthread_mutex_lock(&dnn.mu);
    int ran = run_prepare(&r, DIR_BWD_DATA);
    if (ran) {
        lg_parallel_for(ctx, r.chunks, conv_task, &r);
        ran = !atomic_load(&r.failed);
    }
    pthread_mutex_unlock(&dnn.mu);
    return ran;
}

int lg_dnnl_conv_backward_weights(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *x, const float *dy,
                                  float *dw, float *db) {
    lg_conv2d_dims e = *d;
    e.bias = d->bias && db; /* diff_bias only when it is wanted */
    conv_run r = {.d = &e, .n = n, .x = x, .dy = dy};
    size_t wsz = (size_t)d->c_out * (size_t)(d->c_in / d->groups) * (size_t)d->kh * (size_t)d->kw;
    size_t need = wsz + (size_t)d->c_out;
    pthread_mutex_lock(&dnn.mu);
    int ran = run_prepare(&r, DIR_BWD_WEIGHTS);
    if (ran && need > dnn.partial_elems) { /* grows on a shape's first call only */
        dnn.partial_elems = need;
        for (int s = 0; s < SLOTS; s++) {
            free(dnn.partial[s]);
            dnn.partial[s] = aligned_alloc(64, align64(need * sizeof(float)));
            if (!dnn.partial[s])
                dnn.partial_elems = 0, ran = 0;
        }
    }
    if (ran) {
        lg_parallel_for(ctx, r.chunks, conv_task, &r);
        ran = !atomic_load(&r.failed);
    }
    if (ran && dw) {
        sum_job j = {dw, wsz, r.chunks};
        lg_parallel_for(ctx, lg_chunks(wsz, LG_CHUNK), sum_task, &j);
    }
    if (ran && e.bias)
        for (int c = 0; c < d->c_out; c++) {
            float s = dnn.partial[0][wsz + (size_t)c];
            for (size_t t = 1; t < r.chunks; t++)
                s += dnn.partial[t][wsz + (size_t)c];
            db[c] += s;
        }
    pthread_mutex_unlock(&dnn.mu);
    return ran;
}
