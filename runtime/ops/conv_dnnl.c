/* conv_dnnl.c — conv2d in float32 through oneDNN (libdnnl): forward,
 * backward-data and backward-weights primitives. Our buffers keep PyTorch's
 * layouts (NCHW activations, OIHW weights); oneDNN's kernels run in its
 * layouts (blocked nChw16c / OIhw16i16o, or channels-last for its brgemm
 * kernels), and cached reorder primitives convert each chunk's tensors on
 * the way in and out; the weights are reordered once per call (they change
 * every step). layout_of() picks, per direction and shape, blocked, nhwc,
 * Winograd (blocked tensors) or im2col + GEMM (measured: bench/README.md).
 *
 * Threading: oneDNN is built on OpenMP here, and an OpenMP team next to our
 * own pool fights it for the cores (spinning workers). So oneDNN runs with
 * one OpenMP thread in whichever thread calls it; the batch is cut into
 * chunks of a size fixed by the shape (chunk_mb; backward-weights of large
 * kernels: by the shape and n, run_mb) and the chunks run in
 * SLOTS lanes, tasks of our pool: no OpenMP worker is ever started. Lane t
 * runs chunks t, t + SLOTS, ...; the cut depends on n and the shape only,
 * so results do not depend on the thread count. Backward-weights sums each
 * lane's chunks into one partial gradient per lane, and the lanes are added
 * in order. Deep layers over small maps may run split instead (split_of):
 * lane t computes its part of the channels for every chunk of the batch,
 * reading and reordering only its part of the weights.
 *
 * Primitives are created once per (direction, shape, chunk size, split)
 * with their reorders, memory objects and scratchpad needs (user mode: one
 * slot buffer per lane holds the converted tensors and scratchpads), and
 * kept in a process-wide cache that is freed at exit. lg_conv2d_prepare
 * creates all of a shape's at set-up (every power of two up to the
 * shape's largest chunk), so no kernel call allocates; an unprepared shape is prepared on
 * its first call.
 * A call takes the cache's lock for its whole duration, so two contexts in
 * two threads never share a slot. Anything oneDNN refuses makes the caller
 * fall back to im2col + GEMM (dense.inc), which also is the float64 path.
 * LGEN_CONV=im2col in the environment turns this path off;
 * LGEN_CONV=FWD,DATA,WEIGHTS (each im2col, plain, blocked, nhwc or wino:
 * blocked tensors, Winograd's algorithm) forces a layout per direction, and
 * LGEN_CONV_SPLIT=0 or 1 the channel split off or on, for measuring;
 * LGEN_CONV_WINOGRAD=0 keeps every layer on direct kernels (Winograd rounds
 * differently: layout_of). */
#include "ops_internal.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdatomic.h>

void omp_set_num_threads(int n); /* libgomp, which libdnnl uses */

#define SLOTS 2 /* lanes: chunks that run at once (2 measured best on 2 cores: bench/README.md) */
#define NARGS 4 /* tensors of a convolution primitive, at most */

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_WEIGHTS };
/* plain: NCHW/OIHW as our buffers; blocked: oneDNN's choice for every
 * tensor (nChw16c, ...); nhwc: activations channels-last, weights oneDNN's
 * choice (what its brgemm convolution, brgconv, wants) */
enum { LAYOUT_IM2COL, LAYOUT_PLAIN, LAYOUT_BLOCKED, LAYOUT_NHWC, LAYOUT_WINO, LAYOUT_COUNT };

/* One tensor argument of a primitive. When oneDNN wants another layout than
 * ours (blocked), the tensor lives in a slot buffer and a reorder converts it
 * on the way in (inputs) or out (outputs). */
typedef struct {
    int argk;
    int reorder;          /* 0: our buffer is bound; 1: reordered in before; 2: out after */
    int shared;           /* weights: reordered once per call into dnn.wbuf, not per chunk */
    dnnl_memory_desc_t inner_md; /* oneDNN's layout of it */
    size_t off;           /* the oneDNN-side buffer's offset in the slot buffer */
    dnnl_primitive_t ro;  /* the reorder (reorder != 0) */
    size_t ro_off, ro_bytes; /* its scratchpad in the slot buffer (bytes 0: none) */
    dnnl_memory_t user[SLOTS], inner[SLOTS], ro_scratch[SLOTS];
} conv_arg;

typedef struct conv_prim {
    struct conv_prim *next;
    int dir, mb, layout, split; /* key: direction, chunk size, layout, split ... */
    lg_conv2d_dims d;    /* ... and shape */
    dnnl_primitive_t prim; /* NULL: oneDNN refused it (fall back) */
    int nargs;
    conv_arg arg[NARGS];
    size_t scratch_off, scratch_bytes; /* the primitive's scratchpad in the slot buffer */
    dnnl_memory_t scratch[SLOTS];
    size_t slot_bytes; /* what it needs of each slot buffer */
    /* backward-weights whose gradient oneDNN writes blocked (groups 1):
     * where element (o, i, kh, kw) lies in that layout, as the sum of one
     * entry per index: woff[o] + woff[O + i] + woff[O + I + kh] + woff[O +
     * I + KH + kw]; NULL: the gradient is reordered per chunk (wgrad_elems) */
    size_t *woff;
    size_t wgrad_elems; /* elements of the gradient in oneDNN's layout (padded) */
} conv_prim;

static struct {
    pthread_mutex_t mu;
    int state;  /* 0: not started, 1: ready, -1: off */
    int layout[3]; /* per direction, LAYOUT_* from LGEN_CONV; -1: chosen per shape */
    int split;     /* LGEN_CONV_SPLIT: 0 never, 1 always (where it can), -1 chosen per shape */
    int no_wino;   /* LGEN_CONV_WINOGRAD=0: direct kernels only (layout_of) */
    dnnl_engine_t engine;
    dnnl_stream_t stream[SLOTS];
    conv_prim *prims;
    float *partial[2 * SLOTS]; /* backward-weights: per lane dweight then dbias, twice */
    size_t partial_elems;
    char *slot[SLOTS]; /* per lane: converted tensors and scratchpads */
    size_t slot_bytes;
    char *wbuf; /* the weights in oneDNN's layout, reordered once per call */
    size_t wbuf_bytes;
} dnn = {.mu = PTHREAD_MUTEX_INITIALIZER, .layout = {-1, -1, -1}, .split = -1};

int lg_dnnl_amx(void) {
    static atomic_int amx = -1;
    int a = atomic_load_explicit(&amx, memory_order_relaxed);
    if (a < 0) {
        a = (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
        atomic_store_explicit(&amx, a, memory_order_relaxed);
    }
    return a;
}

/* oneDNN sizes its work by omp_get_max_threads() of the calling thread. */
static _Thread_local int omp_is_single;

void lg_dnnl_single_thread(void) {
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
    free(p->woff);
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
        free(dnn.partial[SLOTS + s]);
        free(dnn.slot[s]);
        dnn.partial[s] = dnn.partial[SLOTS + s] = NULL;
        dnn.slot[s] = NULL;
    }
    free(dnn.wbuf);
    dnn.wbuf = NULL;
    if (dnn.engine)
        dnnl_engine_destroy(dnn.engine);
    dnn.engine = NULL;
    dnn.partial_elems = dnn.slot_bytes = dnn.wbuf_bytes = 0;
    dnn.state = -1;
    pthread_mutex_unlock(&dnn.mu);
}

/* Under dnn.mu: the engine and streams on first use. */
static int dnn_ready(void) {
    if (dnn.state)
        return dnn.state > 0;
    dnn.state = -1;
    /* LGEN_CONV=LAYOUT or FWD,DATA,WEIGHTS (im2col, plain, blocked, nhwc or wino) */
    const char *env = getenv("LGEN_CONV");
    for (int dir = 0; env && *env && dir < 3; dir++) {
        static const char *const names[LAYOUT_COUNT] = {"im2col", "plain", "blocked", "nhwc", "wino"};
        size_t len = strcspn(env, ",");
        for (int i = 0; i < LAYOUT_COUNT; i++)
            if (len == strlen(names[i]) && !strncmp(env, names[i], len))
                dnn.layout[dir] = i;
        if (!env[len] && dir == 0)
            dnn.layout[1] = dnn.layout[2] = dnn.layout[0];
        env += len + (env[len] == ',');
    }
    const char *split = getenv("LGEN_CONV_SPLIT");
    if (split && (*split == '0' || *split == '1'))
        dnn.split = *split - '0';
    const char *wino = getenv("LGEN_CONV_WINOGRAD");
    dnn.no_wino = wino && *wino == '0';
    lg_dnnl_single_thread();
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

/* Under dnn.mu: the weight buffer holds at least `bytes`. */
static int wbuf_reserve(size_t bytes) {
    if (bytes <= dnn.wbuf_bytes)
        return 1;
    free(dnn.wbuf);
    dnn.wbuf = aligned_alloc(64, bytes);
    dnn.wbuf_bytes = dnn.wbuf ? bytes : 0;
    return dnn.wbuf != NULL;
}

/* The memory descriptors of a chunk of mb samples, in our layouts. */
typedef struct {
    dnnl_memory_desc_t src, weights, bias, dst;
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} conv_descs;

static void conv_descs_init(conv_descs *c, const lg_conv2d_dims *d, int mb, int layout) {
    dnnl_dims_t src = {mb, d->c_in, d->h_in, d->w_in}, dst = {mb, d->c_out, d->h_out, d->w_out};
    dnnl_dims_t bias = {d->c_out};
    int blocked = layout == LAYOUT_BLOCKED || layout == LAYOUT_WINO;
    int any = blocked || layout == LAYOUT_NHWC; /* for the weights */
    dnnl_format_tag_t act = blocked ? dnnl_format_tag_any
                            : layout == LAYOUT_NHWC  ? dnnl_nhwc
                                                     : dnnl_nchw;
    dnnl_memory_desc_init_by_tag(&c->src, 4, src, dnnl_f32, act);
    dnnl_memory_desc_init_by_tag(&c->dst, 4, dst, dnnl_f32, act);
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

/* Split calls: the channels of its part (output channels forward, input
 * channels backward-data) a lane computes, and the dims of the part. */
static int split_channels(int dir, const lg_conv2d_dims *d) {
    return (dir == DIR_BWD_DATA ? d->c_in : d->c_out) / SLOTS;
}

static lg_conv2d_dims split_part(int dir, const lg_conv2d_dims *d) {
    lg_conv2d_dims h = *d;
    if (dir == DIR_BWD_DATA)
        h.c_in = split_channels(dir, d);
    else
        h.c_out = split_channels(dir, d);
    return h;
}

/* Our layouts of a part of a split call: its slice of the whole tensors'
 * channels (the output activation forward; the data gradient and the
 * weights' input channels backward-data) keeps the whole tensor's strides. */
static void split_user_descs(conv_descs *u, int dir, const lg_conv2d_dims *d, int mb) {
    int c = split_channels(dir, d);
    if (dir == DIR_FWD) {
        dnnl_dims_t dims = {mb, c, d->h_out, d->w_out};
        dnnl_dims_t st = {(dnnl_dim_t)d->c_out * d->h_out * d->w_out, (dnnl_dim_t)d->h_out * d->w_out, d->w_out, 1};
        dnnl_memory_desc_init_by_strides(&u->dst, 4, dims, dnnl_f32, st);
    } else {
        dnnl_dims_t dims = {mb, c, d->h_in, d->w_in};
        dnnl_dims_t st = {(dnnl_dim_t)d->c_in * d->h_in * d->w_in, (dnnl_dim_t)d->h_in * d->w_in, d->w_in, 1};
        dnnl_memory_desc_init_by_strides(&u->src, 4, dims, dnnl_f32, st);
        dnnl_dims_t wdims = {d->c_out, c, d->kh, d->kw};
        dnnl_dims_t wst = {(dnnl_dim_t)d->c_in * d->kh * d->kw, (dnnl_dim_t)d->kh * d->kw, d->kw, 1};
        dnnl_memory_desc_init_by_strides(&u->weights, 4, wdims, dnnl_f32, wst);
    }
}

/* Elements of d's weights (and of its weights gradient in our OIHW layout). */
static size_t weights_elems(const lg_conv2d_dims *d) {
    return (size_t)d->c_out * (size_t)(d->c_in / d->groups) * (size_t)d->kh * (size_t)d->kw;
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
    g->inner_md = *inner;
    if (!dnnl_memory_desc_equal(user, inner)) {
        g->reorder = is_output ? 2 : 1;
        /* input weights are the same for every chunk: one reorder per call
         * (a 512x512x3x3 tensor took 1.75 ms, once per chunk before) */
        g->shared = g->argk == DNNL_ARG_WEIGHTS;
        if (g->shared) /* split calls: each lane's part of the weights */
            ok = wbuf_reserve((p->split ? SLOTS : 1) * align64(dnnl_memory_desc_get_size(inner)));
        g->off = p->slot_bytes; /* also for shared weights: a chunk size whose
                                 * layout differs reorders them per chunk */
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

/* p->woff from oneDNN's blocked layout of the weights gradient (format
 * kind blocked, 4 dimensions: strides of the outer blocks, then the inner
 * blocks, outermost first): an index x of dimension d lies at (x / B) *
 * stride[d] plus, for each inner block k of d, its digit of x times the
 * product of the inner blocks after k (B: the product of d's inner blocks).
 * Leaves woff NULL (the per-chunk reorder) for any other layout. */
static void woff_init(conv_prim *p) {
    const dnnl_memory_desc_t *md = &p->arg[1].inner_md;
    if (md->ndims != 4 || md->format_kind != dnnl_blocked || md->data_type != dnnl_f32)
        return;
    const dnnl_blocking_desc_t *bk = &md->format_desc.blocking;
    size_t total = 0;
    for (int d = 0; d < 4; d++)
        total += (size_t)md->dims[d];
    p->woff = malloc(total * sizeof *p->woff);
    if (!p->woff)
        return;
    size_t *t = p->woff;
    for (int d = 0; d < 4; d++) {
        dnnl_dim_t B = 1;
        for (int k = 0; k < bk->inner_nblks; k++)
            if (bk->inner_idxs[k] == d)
                B *= bk->inner_blks[k];
        for (dnnl_dim_t x = 0; x < md->dims[d]; x++) {
            dnnl_dim_t off = (x / B) * bk->strides[d] + (d == 0 ? md->offset0 : 0), inner = 1, below = 1;
            for (int k = bk->inner_nblks - 1; k >= 0; k--) { /* innermost first */
                if (bk->inner_idxs[k] == d) {
                    off += ((x / below) % bk->inner_blks[k]) * inner;
                    below *= bk->inner_blks[k];
                }
                inner *= bk->inner_blks[k];
            }
            *t++ = (size_t)off;
        }
    }
    p->wgrad_elems = dnnl_memory_desc_get_size(md) / sizeof(float);
}

/* Under dnn.mu: creates the primitive of (dir, d, mb, layout) with its
 * reorders and memory objects. Leaves p->prim NULL when oneDNN refuses. */
static void prim_create(conv_prim *p) {
    conv_descs user, c;
    lg_conv2d_dims part = p->split ? split_part(p->dir, &p->d) : p->d;
    conv_descs_init(&user, &part, p->mb, LAYOUT_PLAIN);
    conv_descs_init(&c, &part, p->mb, p->layout);
    if (p->split)
        split_user_descs(&user, p->dir, &p->d, p->mb);
    const dnnl_memory_desc_t *bias = p->d.bias ? &c.bias : NULL;
    dnnl_convolution_desc_t fwd_desc, desc;
    dnnl_primitive_desc_t hint = NULL, pd = NULL;
    dnnl_alg_kind_t alg = p->layout == LAYOUT_WINO ? dnnl_convolution_winograd : dnnl_convolution_direct;
    if (dnnl_dilated_convolution_forward_desc_init(&fwd_desc, dnnl_forward_training, alg, &c.src,
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
             dnnl_dilated_convolution_backward_data_desc_init(&desc, alg, &c.src, &c.weights,
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
             dnnl_dilated_convolution_backward_weights_desc_init(&desc, alg, &c.src,
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
    size_t wsz = weights_elems(&p->d);
    /* the lanes sum in oneDNN's layout from 256 KiB of weights (wsum_task;
     * smaller ones measured 5% slower so, resnet20.conv1 0.79 -> 0.85 ms) */
    if (p->prim && p->dir == DIR_BWD_WEIGHTS && p->arg[1].reorder && p->d.groups == 1 &&
        wsz * sizeof(float) >= (256u << 10))
        woff_init(p);
    if (p->dir == DIR_BWD_WEIGHTS && !p->woff)
        p->wgrad_elems = wsz;
    if (pd)
        dnnl_primitive_desc_destroy(pd);
}

/* Whether a call of (dir, d) runs split: each lane computes its part of
 * the channels (forward: output channels; backward-data: input channels)
 * for the whole batch, instead of a part of the batch for all channels.
 * On Sapphire Rapids-class cores (oneDNN's ISA avx512_core_amx) the deep
 * layers over 7x7 maps measured 1.15-1.25x faster so: forward resnet18.l4
 * 5.9 -> 4.8 ms, l4down 2.8 -> 2.4; backward-data l4 5.7 -> 4.8 (each lane
 * reads and reorders half the weights, in parallel). Not measured on older
 * cores, which keep the batch split. */
static int split_of(int dir, const lg_conv2d_dims *d) {
    int c = dir == DIR_BWD_DATA ? d->c_in : d->c_out;
    if (dir == DIR_BWD_WEIGHTS || d->groups != 1 || c % (16 * SLOTS))
        return 0;
    if (dnn.split >= 0)
        return dnn.split;
    return lg_dnnl_amx() && d->h_out * d->w_out <= 49 && c >= 256;
}

/* The layout a shape runs in by default (measured: bench/README.md, on an
 * Ice Lake Xeon unless a rule names Sapphire Rapids, lg_dnnl_amx). */
static int layout_of(int dir, const lg_conv2d_dims *d) {
    /* blocked (jit, AVX-512 or AVX2 by the CPU) wins everywhere except the
     * data gradient of stems (c_in 1 or 3), where oneDNN's kernels ran 2x
     * slower than im2col + GEMM (LeNet's conv2, c_in 6, is faster blocked) */
    if (dir == DIR_BWD_DATA && d->c_in / d->groups < 4)
        return LAYOUT_IM2COL;
    /* forward: channels-last activations let oneDNN take its brgemm kernel
     * (brgconv), 1.2-1.7x its blocked one on stride-1 layers with >= 32
     * channels over at most 32x32 pixels, deep layers (K = c_in kh kw >=
     * 2048), the 7x7 stem and the stride-2 3x3 layers below; blocked stays
     * faster on wide maps (ResNet-18's 56x56 stage) and the 1x1 layers */
    int cin = d->c_in / d->groups, K = cin * d->kh * d->kw;
    /* 3x3 stride-1 layers of >= 64 channels over >= 28x28 pixels, every
     * direction: Winograd F(4x4, 3x3) (oneDNN's AVX-512 kernels) measured
     * on Sapphire Rapids (not yet on Ice Lake, which has the same kernels)
     * 1.3-1.7x the best direct kernel (resnet18.l1 at batch 8: forward 4.4
     * -> 2.8 ms, backward 10.1 -> 6.0; l2 4.3 -> 2.9, 9.3 -> 6.3), slower on
     * smaller maps or channel counts. It rounds differently: 4-5x direct's
     * error against float64 (rms relative 8e-7 to 1e-6; bench/README.md);
     * LGEN_CONV_WINOGRAD=0 keeps these layers direct. */
    if (!dnn.no_wino && d->groups == 1 && d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 && d->dh == 1 &&
        d->dw == 1 && cin >= 64 && d->c_out >= 64 && d->h_out * d->w_out >= 784)
        return LAYOUT_WINO;
    /* Sapphire Rapids: split calls (split_of) ran 1.05-1.1x faster blocked
     * than channels-last, and the 7x7 stem 1.2x (resnet18.conv1 5.2 against
     * 6.2 ms) */
    int amx = lg_dnnl_amx();
    if (amx && dir == DIR_FWD && (split_of(dir, d) || (cin < 4 && d->kh >= 7)))
        return LAYOUT_BLOCKED;
    /* ResNet's downsampling 3x3 up to 64 input channels: nhwc measured 1.1-1.5x blocked
     * (resnet20.s2down, s3down, resnet18.l2down); l3down (128) was slower */
    int strided = d->sh == 2 && d->sw == 2 && d->kh == 3 && cin >= 16 && cin <= 64;
    if (dir == DIR_FWD && d->groups == 1 &&
        ((d->sh == 1 && d->sw == 1 && cin >= 32 && d->h_out * d->w_out <= 1024) || K >= 2048 ||
         (cin < 4 && d->kh >= 7) || (strided && d->h_out * d->w_out <= 1024)))
        return LAYOUT_NHWC;
    /* the weights gradient of stride-1 layers with at least 4 input
     * channels and a 3x3 or larger kernel over at least 100 output pixels:
     * channels-last (oneDNN's brgemm backward-weights) measured 1.2-1.5x
     * the blocked kernel and im2col on an Ice Lake Xeon (backward
     * resnet18.l1 29.6 -> 24.5 ms, l2 27.6 -> 20.4, l3 26.1 -> 20.7,
     * resnet20.s1 10.1 -> 7.7, s2 8.6 -> 7.6, lenet.conv2 1.26 -> 0.84);
     * strided, 1x1 and 7x7-map layers were slower, and so were stems
     * (lenet.conv1 0.41-0.47 ms blocked, 0.50-0.52 channels-last) */
    if (dir == DIR_BWD_WEIGHTS && d->groups == 1 && cin >= 4 && d->sh == 1 && d->sw == 1 && d->kh >= 3 &&
        d->kw >= 3 && d->h_out * d->w_out >= 100)
        return LAYOUT_NHWC;
    /* deep, small maps (ResNet-18's 14x14 and 7x7 stages: K = c_in kh kw >=
     * 1024 over at most 196 pixels): one big GEMM beat oneDNN's backward
     * (28 vs 43 ms on resnet18.l4, 17 vs 27 on l4down, 24-28 vs 34 on l3,
     * 12.4-13.0 vs 14.0-14.5 on l3down). On Sapphire Rapids only the
     * weights gradient over 7x7 maps (l4 6.5 against 8.1-8.9 ms, l4down
     * 3.2 against 4.4); oneDNN's data gradients and the 14x14 stage's
     * weights gradient were 1.1-1.3x faster than im2col (l3 4.5 against 5.9
     * and 5.5 against 6.6, l3down 2.6 against 3.2 and 3.1 against 3.5) */
    if (amx ? dir == DIR_BWD_WEIGHTS && d->h_out * d->w_out <= 49 && K >= 1024
                : dir != DIR_FWD && d->h_out * d->w_out <= 196 && K >= 1024)
        return LAYOUT_IM2COL;
    return LAYOUT_BLOCKED;
}

/* Under dnn.mu: the cached primitive of (dir, d, mb, layout), created on
 * first use (its prim NULL when oneDNN refused it). */
static conv_prim *prim_find(int dir, const lg_conv2d_dims *d, int mb, int layout, int split) {
    for (conv_prim *p = dnn.prims; p; p = p->next)
        if (p->dir == dir && p->mb == mb && p->layout == layout && p->split == split && !memcmp(&p->d, d, sizeof *d))
            return p;
    conv_prim *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->dir = dir, p->mb = mb, p->layout = layout, p->split = split, p->d = *d;
    prim_create(p);
    p->next = dnn.prims;
    dnn.prims = p;
    return p;
}

/* Under dnn.mu: the primitive a call of (dir, d, mb) runs, or NULL for
 * im2col + GEMM. oneDNN has Winograd kernels for AVX-512 only: elsewhere
 * those shapes run blocked. */
static conv_prim *prim_get(int dir, const lg_conv2d_dims *d, int mb, int split) {
    int layout = dnn.layout[dir] >= 0 ? dnn.layout[dir] : layout_of(dir, d);
    if (layout == LAYOUT_IM2COL)
        return NULL;
    conv_prim *p = prim_find(dir, d, mb, layout, split);
    if (p && !p->prim && layout == LAYOUT_WINO)
        p = prim_find(dir, d, mb, LAYOUT_BLOCKED, split);
    return p;
}

/* The chunk size of a shape: the smallest power of two M >= 2 (at most MB_MAX)
 * whose chunk has at least 192 output pixels (M h_out w_out: oneDNN's
 * kernels lose efficiency below) and 16 MFLOP (a chunk's fixed cost, its
 * reorders and calls, stays small). It depends on the shape only, not on
 * the batch, so lg_conv2d_prepare creates every primitive a batch of any
 * size needs: n = q M + r runs as q chunks of M and then the binary digits
 * of r (r = 5: a chunk of 4, then 1). */
#define MB_MAX 32
#define MB_LOGS 6 /* M, M/2, ..., 1 */

static int chunk_mb(const lg_conv2d_dims *d) {
    double P = (double)d->h_out * d->w_out;
    double flops = 2.0 * P * d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
    int m = 2; /* single samples ran 10-30% slower (ResNet-18's 56x56 and 14x14 stages) */
    while (m < MB_MAX && (m * P < 192 || m * flops < 16e6))
        m *= 2;
    return m;
}

/* The largest chunk size of a shape in a direction: split calls take the
 * batch in chunks of up to MB_MAX (each lane reorders its part of the
 * weights once per call). Backward-weights of layers with >= 1 MiB of
 * weights up to 4x chunk_mb: each chunk after a lane's first costs a
 * reorder of its weights gradient and an add into the lane's sum, which
 * on resnet18.l3 (2.25 MiB of weights, 2 chunks of 2 a lane at batch 8)
 * took 0.5-0.6 of its 6.8 ms; run_prepare takes the larger chunks only
 * while both lanes still get one. */
static int run_mb(const lg_conv2d_dims *d, int dir, int split) {
    if (split)
        return MB_MAX;
    int m = chunk_mb(d);
    size_t wsz = weights_elems(d);
    if (dir == DIR_BWD_WEIGHTS && wsz * sizeof(float) >= (1u << 20))
        m = 4 * m < MB_MAX ? 4 * m : MB_MAX;
    return m;
}

typedef struct {
    const lg_conv2d_dims *d;
    int dir, split;
    size_t n, q, rem, nchunks; /* n = q M + rem; chunks: q, then rem's binary digits */
    int M;
    conv_prim *prim[MB_LOGS];  /* by log2(M / mb) */
    int wshare[MB_LOGS];       /* its weights are in the layout of wref's: use dnn.wbuf */
    const conv_prim *wref;     /* the call's largest chunk's primitive */
    int wfused;                /* backward-weights: lanes sum in oneDNN's layout (conv_prim.woff) */
    size_t welems;             /* backward-weights: a partial's weights gradient elements, then the bias's */
    const float *x, *w, *b, *dy;
    float *y, *dx;
    atomic_int failed;
} conv_run;

static int ilog2(int v) {
    int l = 0;
    while (v > 1)
        v /= 2, l++;
    return l;
}

/* Chunk c's first sample and size. */
static void chunk_of(const conv_run *r, size_t c, size_t *n0, int *nb) {
    if (c < r->q) {
        *n0 = c * (size_t)r->M, *nb = r->M;
        return;
    }
    size_t k = c - r->q, at = r->q * (size_t)r->M;
    for (int b = r->M / 2; b >= 1; b /= 2)
        if (r->rem & (size_t)b) {
            if (k-- == 0) {
                *n0 = at, *nb = b;
                return;
            }
            at += (size_t)b;
        }
    *n0 = at, *nb = 0; /* not reached */
}

/* Split calls: where lane t's part of the weights starts in our OIHW
 * buffer (elements), and where it goes in oneDNN's layout. */
static size_t split_weights_at(const conv_run *r, size_t t) {
    const lg_conv2d_dims *d = r->d;
    if (!r->split)
        return 0;
    size_t c = (size_t)split_channels(r->dir, d) * t, k = (size_t)d->kh * (size_t)d->kw;
    return r->dir == DIR_BWD_DATA ? c * k : c * (size_t)d->c_in * k;
}

static char *wbuf_of(const conv_run *r, size_t t) {
    return r->split ? dnn.wbuf + t * align64(dnnl_memory_desc_get_size(&r->wref->arg[1].inner_md)) : dnn.wbuf;
}

static int exec(dnnl_primitive_t prim, size_t t, int nargs, const dnnl_exec_arg_t *args) {
    return dnnl_primitive_execute(prim, dnn.stream[t], nargs, args) == dnnl_success &&
           dnnl_stream_wait(dnn.stream[t]) == dnnl_success;
}

/* One chunk in lane t (its slot buffer, stream and memory objects). */
static int conv_chunk_run(conv_run *r, size_t t, size_t c) {
    size_t n0;
    int nb;
    chunk_of(r, c, &n0, &nb);
    int log = ilog2(r->M / nb);
    const conv_prim *p = r->prim[log];
    const lg_conv2d_dims *d = r->d;
    size_t in = (size_t)d->c_in * (size_t)d->h_in * (size_t)d->w_in;
    size_t out = (size_t)d->c_out * (size_t)d->h_out * (size_t)d->w_out;
    /* backward-weights: the lane's first chunk writes its partial sum, the
     * next ones write the second buffer, added to it below */
    float *part = dnn.partial[t];
    if (p->dir == DIR_BWD_WEIGHTS && c >= SLOTS)
        part = dnn.partial[SLOTS + t];
    /* split calls: lane t's channels of y (forward) or dx (backward-data) */
    size_t ct = r->split ? (size_t)split_channels(r->dir, d) * t : 0, wt = split_weights_at(r, t);
    void *h[NARGS];
    switch (p->dir) {
    case DIR_FWD:
        h[0] = (void *)(r->x + n0 * in), h[1] = (void *)(r->w + wt);
        h[2] = r->y + n0 * out + ct * (size_t)d->h_out * (size_t)d->w_out, h[3] = (void *)(r->b ? r->b + ct : NULL);
        break;
    case DIR_BWD_DATA:
        h[0] = r->dx + n0 * in + ct * (size_t)d->h_in * (size_t)d->w_in, h[1] = (void *)(r->w + wt);
        h[2] = (void *)(r->dy + n0 * out);
        break;
    default:
        h[0] = (void *)(r->x + n0 * in), h[1] = part, h[2] = (void *)(r->dy + n0 * out);
        h[3] = part + r->welems;
        break;
    }
    char *slot = dnn.slot[t];
    int ok = 1;
    dnnl_exec_arg_t args[NARGS + 1];
    for (int a = 0; a < p->nargs && ok; a++) {
        const conv_arg *g = &p->arg[a];
        int shared = g->shared && r->wshare[log];
        ok = dnnl_memory_set_data_handle(g->user[t], h[a]) == dnnl_success;
        args[a] = (dnnl_exec_arg_t){g->argk, g->user[t]};
        if (ok && g->reorder && r->wfused && g->argk == DNNL_ARG_DIFF_WEIGHTS) {
            ok = dnnl_memory_set_data_handle(g->inner[t], h[a]) == dnnl_success; /* no reorder: wsum_task */
            args[a].memory = g->inner[t];
        } else if (ok && g->reorder) {
            ok = dnnl_memory_set_data_handle(g->inner[t], shared ? wbuf_of(r, t) : slot + g->off) == dnnl_success &&
                 (shared || !g->ro_bytes ||
                  dnnl_memory_set_data_handle(g->ro_scratch[t], slot + g->ro_off) == dnnl_success);
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
            if (g->reorder != pass || (g->shared && r->wshare[log]) || /* shared: weights_in did it */
                (r->wfused && g->argk == DNNL_ARG_DIFF_WEIGHTS))
                continue;
            dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, pass == 1 ? g->user[t] : g->inner[t]},
                                     {DNNL_ARG_TO, pass == 1 ? g->inner[t] : g->user[t]},
                                     {DNNL_ARG_SCRATCHPAD, g->ro_scratch[t]}};
            ok = exec(g->ro, t, g->ro_bytes ? 3 : 2, ra);
        }
        if (pass == 1 && ok) /* inputs are in place: the convolution */
            ok = exec(p->prim, t, nargs, args);
    }
    if (ok && part != dnn.partial[t]) {
        size_t count = r->welems + (p->d.bias ? (size_t)d->c_out : 0);
        for (size_t i = 0; i < count; i++)
            dnn.partial[t][i] += part[i];
    }
    return ok;
}

static int weights_in(const conv_run *r, size_t t);

/* Lane t runs chunks t, t + SLOTS, ... in order: which chunks a lane sums
 * never depends on the thread count. In a split call it reorders its part
 * of the weights and runs every chunk for its part of the channels. */
static void conv_lane(void *arg, size_t t) {
    conv_run *r = arg;
    lg_dnnl_single_thread();
    if (r->split && !weights_in(r, t)) {
        atomic_store(&r->failed, 1);
        return;
    }
    for (size_t c = r->split ? 0 : t; c < r->nchunks; c += r->split ? 1 : SLOTS)
        if (!conv_chunk_run(r, t, c)) {
            atomic_store(&r->failed, 1);
            return;
        }
}

typedef struct {
    float *dw;
    size_t count, lanes;
    const conv_prim *p; /* wsum_task: the layout's offsets */
} sum_job;

/* dweight += the lanes' partial gradients, in lane order. */
static void sum_task(void *arg, size_t t) {
    const sum_job *j = arg;
    size_t i0 = t * LG_CHUNK, i1 = i0 + LG_CHUNK < j->count ? i0 + LG_CHUNK : j->count;
    for (size_t i = i0; i < i1; i++) {
        float s = dnn.partial[0][i];
        for (size_t c = 1; c < j->lanes; c++)
            s += dnn.partial[c][i];
        j->dw[i] += s;
    }
}

/* The same from partials in oneDNN's layout (conv_prim.woff), task t
 * writing WSUM_TILE output channels of dweight in our OIHW order, in tiles
 * of WSUM_TILE input channels: oneDNN blocks 16 of each (OIhw16i16o and
 * the like), so a tile's partials (9 KiB a lane for 3x3) stay in L1 while
 * its rows of dweight are written in runs. The reorder this replaces ran
 * at 5-6 GB/s in each lane (resnet18.l3: 0.4-0.5 ms of a 6.4 ms weights
 * gradient). */
#define WSUM_TILE 16
_Static_assert(SLOTS == 2, "wsum_task adds two lanes' partials");

static void wsum_task(void *arg, size_t t) {
    const sum_job *j = arg;
    const lg_conv2d_dims *d = &j->p->d;
    size_t O = (size_t)d->c_out, I = (size_t)d->c_in, KH = (size_t)d->kh, KW = (size_t)d->kw;
    size_t o0 = t * WSUM_TILE, o1 = o0 + WSUM_TILE < O ? o0 + WSUM_TILE : O;
    const size_t *wo = j->p->woff, *wi = wo + O, *wh = wi + I, *ww = wh + KH;
    const float *p0 = dnn.partial[0], *p1 = dnn.partial[1];
    for (size_t i0 = 0; i0 < I; i0 += WSUM_TILE) {
        size_t i1 = i0 + WSUM_TILE < I ? i0 + WSUM_TILE : I;
        for (size_t o = o0; o < o1; o++) {
            float *dw = j->dw + (o * I + i0) * KH * KW;
            for (size_t i = i0; i < i1; i++)
                for (size_t kh = 0; kh < KH; kh++) {
                    size_t base = wo[o] + wi[i] + wh[kh];
                    if (j->lanes > 1)
                        for (size_t kw = 0; kw < KW; kw++)
                            *dw++ += p0[base + ww[kw]] + p1[base + ww[kw]];
                    else
                        for (size_t kw = 0; kw < KW; kw++)
                            *dw++ += p0[base + ww[kw]];
                }
        }
    }
}

/* Under dnn.mu: reorders the weights r->w once for the call into dnn.wbuf,
 * in the layout of the largest chunk's primitive, in the calling thread
 * (t 0); in a split call each lane t its part. */
static int weights_in(const conv_run *r, size_t t) {
    lg_dnnl_single_thread();
    const conv_prim *p = r->wref;
    for (int a = 0; a < p->nargs; a++) {
        const conv_arg *g = &p->arg[a];
        if (!g->shared)
            continue;
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, g->user[t]}, {DNNL_ARG_TO, g->inner[t]},
                                 {DNNL_ARG_SCRATCHPAD, g->ro_scratch[t]}};
        if (dnnl_memory_set_data_handle(g->user[t], (void *)(r->w + split_weights_at(r, t))) != dnnl_success ||
            dnnl_memory_set_data_handle(g->inner[t], wbuf_of(r, t)) != dnnl_success ||
            (g->ro_bytes && dnnl_memory_set_data_handle(g->ro_scratch[t], dnn.slot[t] + g->ro_off) != dnnl_success) ||
            !exec(g->ro, t, g->ro_bytes ? 3 : 2, ra))
            return 0;
    }
    return 1;
}

/* Under dnn.mu: the partial-gradient buffers of backward-weights hold p's
 * weights gradient (in oneDNN's layout when p->woff) and bias gradient. */
static int partial_reserve(const conv_prim *p) {
    size_t need = p->wgrad_elems + (size_t)p->d.c_out;
    if (need <= dnn.partial_elems)
        return 1;
    dnn.partial_elems = need;
    for (int s = 0; s < 2 * SLOTS; s++) {
        free(dnn.partial[s]);
        dnn.partial[s] = aligned_alloc(64, align64(need * sizeof(float)));
        if (!dnn.partial[s])
            dnn.partial_elems = 0;
    }
    return dnn.partial_elems != 0;
}

/* Under dnn.mu: the primitives of one call (created here when the shape was
 * not prepared), or 0 to fall back to im2col + GEMM. */
static int run_prepare(conv_run *r) {
    if (!dnn_ready() || r->n > (size_t)INT32_MAX)
        return 0;
    r->split = split_of(r->dir, r->d);
    r->M = run_mb(r->d, r->dir, r->split);
    /* backward-weights: no larger than both lanes can have (and no smaller than chunk_mb) */
    for (int m0 = chunk_mb(r->d); r->dir == DIR_BWD_WEIGHTS && r->M > m0 && (size_t)r->M * SLOTS > r->n;)
        r->M /= 2;
    r->q = r->n / (size_t)r->M;
    r->rem = r->n % (size_t)r->M;
    r->nchunks = r->q;
    for (int b = r->M / 2; b >= 1; b /= 2)
        r->nchunks += (r->rem & (size_t)b) != 0;
    r->wref = NULL;
    for (int log = 0; log < MB_LOGS; log++) {
        int mb = r->M >> log;
        r->prim[log] = NULL;
        if (mb < 1 || (log == 0 ? !r->q : !(r->rem & (size_t)mb)))
            continue;
        conv_prim *p = prim_get(r->dir, r->d, mb, r->split);
        if (!p || !p->prim)
            return 0;
        r->prim[log] = p;
        if (!r->wref)
            r->wref = p;
        /* arg 1 is the weights (forward, backward-data) */
        r->wshare[log] = p->arg[1].shared && dnnl_memory_desc_equal(&p->arg[1].inner_md, &r->wref->arg[1].inner_md);
    }
    if (r->dir == DIR_BWD_WEIGHTS) {
        /* the lanes sum in oneDNN's layout when every chunk size has it */
        r->wfused = 1;
        for (int log = 0; log < MB_LOGS; log++) {
            const conv_prim *p = r->prim[log];
            if (p && !(p->woff && dnnl_memory_desc_equal(&p->arg[1].inner_md, &r->wref->arg[1].inner_md)))
                r->wfused = 0;
        }
        r->welems = r->wfused ? r->wref->wgrad_elems : weights_elems(r->d);
        for (int log = 0; log < MB_LOGS; log++)
            if (r->prim[log] && !partial_reserve(r->prim[log]))
                return 0;
        return 1;
    }
    return r->split || weights_in(r, 0); /* split: each lane reorders its part */
}

/* Under dnn.mu: runs r (its n, direction and buffers set), or returns 0. */
static int run(lg_ctx *ctx, conv_run *r) {
    if (!run_prepare(r))
        return 0;
    lg_parallel_for(ctx, r->split || r->nchunks >= SLOTS ? SLOTS : r->nchunks, conv_lane, r);
    return !atomic_load(&r->failed);
}

lg_status lg_conv2d_prepare(const lg_conv2d_dims *d, lg_error *err) {
    if (!d)
        return lg_error_set(err, LG_ERR_ARG, "conv2d: no dimensions");
    lg_conv2d_dims e = *d;
    lg_status st = lg_conv2d_dims_init(&e, err);
    if (st)
        return st;
    pthread_mutex_lock(&dnn.mu);
    int ok = 1;
    if (dnn_ready()) {
        for (int dir = 0; dir < 3 && ok; dir++)
            for (int split = split_of(dir, &e), mb = run_mb(&e, dir, split); mb >= 1 && ok; mb /= 2) {
                conv_prim *p = prim_get(dir, &e, mb, split);
                /* NULL or p->prim NULL: im2col + GEMM, which allocates nothing */
                ok = !p || !p->prim || dir != DIR_BWD_WEIGHTS || partial_reserve(p);
            }
    }
    pthread_mutex_unlock(&dnn.mu);
    if (!ok)
        return lg_error_set(err, LG_ERR_NOMEM, "conv2d: cannot allocate the oneDNN buffers of a %dx%dx%dx%d kernel",
                            e.c_out, e.c_in / e.groups, e.kh, e.kw);
    return LG_OK;
}

int lg_dnnl_conv_forward(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *x, const float *w,
                         const float *b, float *y) {
    conv_run r = {.d = d, .dir = DIR_FWD, .n = n, .x = x, .w = w, .b = b, .y = y};
    pthread_mutex_lock(&dnn.mu);
    int ran = run(ctx, &r);
    pthread_mutex_unlock(&dnn.mu);
    return ran;
}

int lg_dnnl_conv_backward_data(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *w, const float *dy,
                               float *dx) {
    conv_run r = {.d = d, .dir = DIR_BWD_DATA, .n = n, .w = w, .dy = dy, .dx = dx};
    pthread_mutex_lock(&dnn.mu);
    int ran = run(ctx, &r);
    pthread_mutex_unlock(&dnn.mu);
    return ran;
}

int lg_dnnl_conv_backward_weights(lg_ctx *ctx, const lg_conv2d_dims *d, size_t n, const float *x, const float *dy,
                                  float *dw, float *db) {
    lg_conv2d_dims e = *d;
    e.bias = d->bias && db; /* diff_bias only when it is wanted */
    conv_run r = {.d = &e, .dir = DIR_BWD_WEIGHTS, .n = n, .x = x, .dy = dy};
    size_t wsz = weights_elems(d);
    pthread_mutex_lock(&dnn.mu);
    int ran = run(ctx, &r);
    size_t lanes = r.nchunks < SLOTS ? r.nchunks : SLOTS;
    if (ran && dw && r.wfused) {
        sum_job j = {dw, wsz, lanes, r.wref};
        lg_parallel_for(ctx, lg_chunks((size_t)d->c_out, WSUM_TILE), wsum_task, &j);
    } else if (ran && dw) {
        sum_job j = {dw, wsz, lanes, NULL};
        lg_parallel_for(ctx, lg_chunks(wsz, LG_CHUNK), sum_task, &j);
    }
    if (ran && e.bias)
        for (int c = 0; c < d->c_out; c++) {
            float s = dnn.partial[0][r.welems + (size_t)c];
            for (size_t t = 1; t < lanes; t++)
                s += dnn.partial[t][r.welems + (size_t)c];
            db[c] += s;
        }
    pthread_mutex_unlock(&dnn.mu);
    return ran;
}
