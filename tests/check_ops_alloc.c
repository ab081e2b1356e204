/* check_ops_alloc.c — kernel calls allocate nothing once their shapes are
 * prepared (issue 3: "no allocation inside a kernel call").
 *
 * This program interposes malloc, calloc, realloc and the aligned allocators
 * (they forward to glibc's __libc_* functions) and counts the calls made by
 * any thread while counting is on: liblgen's and libdnnl's (oneDNN's C++
 * operator new ends in malloc too). A training step's conv2d calls (forward,
 * backward-data, backward-weights, on the oneDNN layouts layout_of picks:
 * blocked, nhwc, Winograd, split by channels, and im2col + GEMM for the
 * stem's data gradient and the deep 7x7-stage backward), pooling and linear
 * layers run for a full batch and for short last batches after
 * lg_conv2d_prepare.
 *
 * What they may allocate: oneDNN 2.6's dnnl_primitive_execute builds a
 * std::unordered_map of its arguments on every call (a few nodes of at most
 * SMALL bytes, freed before it returns); its C API has no way around that.
 * Its Winograd kernels open an OpenMP parallel region (of one thread) per
 * call, for which libgomp allocates a team record (1568 bytes) and frees it
 * at the region's end (lg_ctx_init has each of its threads enter one region
 * first, so libgomp's per-thread records are not made inside a step). So a
 * step passes when every allocation made inside it was freed inside it and
 * none was larger than SMALL: no primitive, scratchpad or buffer is
 * created. A shape that was not prepared
 * fails exactly that on its first call (its primitives outlive the call, JIT
 * code and all): the second test proves the counter sees oneDNN creating a
 * primitive lazily. Under ASan (make check-sanitize) the sanitizer owns
 * malloc, so the suite says SKIP and passes.
 */
#include "lgen/kernels.h"

#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNTING 0
#endif
#endif
#ifndef COUNTING
#define COUNTING 1
#endif

#define SMALL 2048 /* bytes: the largest transient allocation a step may make */

static atomic_int counting;
static atomic_long allocations, frees, largest;

#if COUNTING
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void *memalign(size_t align, size_t size); /* <malloc.h> */

void __libc_free(void *p);

static void count_one(size_t size) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add(&allocations, 1);
        long was = atomic_load(&largest);
        while ((long)size > was && !atomic_compare_exchange_weak(&largest, &was, (long)size))
            ;
    }
}

void *malloc(size_t size) {
    count_one(size);
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_one(count * size);
    return __libc_calloc(count, size);
}

void *realloc(void *p, size_t size) {
    count_one(size);
    return __libc_realloc(p, size);
}

void *aligned_alloc(size_t align, size_t size) {
    count_one(size);
    return __libc_memalign(align, size);
}

void *memalign(size_t align, size_t size) {
    count_one(size);
    return __libc_memalign(align, size);
}

void free(void *p) {
    if (p && atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add(&frees, 1);
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t size) {
    count_one(size);
    void *p = __libc_memalign(align, size);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}
#endif

/* Counting on, from zero: every allocation until counting is set back to 0. */
static void count_start(void) {
    atomic_store(&allocations, 0);
    atomic_store(&frees, 0);
    atomic_store(&largest, 0);
    atomic_store(&counting, 1);
}

static lg_error err;

static float *filled(size_t n, float scale) {
    float *p = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (float)((i * 7919u) % 113u) / 113.0f - scale / 2;
    return p;
}

/* A 2-thread context for a counting test; 0 (and SKIP) under a sanitizer,
 * which owns malloc. */
static int counting_ctx(lg_ctx *ctx) {
    if (!COUNTING) {
        printf("SKIP: allocation counting under a sanitizer\n");
        return 0;
    }
    ck_assert_int_eq(lg_ctx_init(ctx, 2, &err), LG_OK);
    return 1;
}

/* One conv layer of a "step": buffers for a batch of up to n_max. */
typedef struct {
    lg_conv2d_dims d;
    size_t n_max, ws_bytes;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
    void *ws;
} layer;

static void layer_init(layer *l, int c_in, int hw, int c_out, int k, int s, int p, size_t n_max) {
    memset(l, 0, sizeof *l);
    l->d = (lg_conv2d_dims){.c_in = c_in, .h_in = hw, .w_in = hw, .c_out = c_out, .kh = k, .kw = k, .sh = s,
                            .sw = s, .ph = p, .pw = p, .dh = 1, .dw = 1, .groups = 1, .bias = 1};
    ck_assert_int_eq(lg_conv2d_dims_init(&l->d, &err), LG_OK);
    size_t in = (size_t)c_in * (size_t)hw * (size_t)hw * n_max;
    size_t out = (size_t)c_out * (size_t)l->d.h_out * (size_t)l->d.w_out * n_max;
    size_t wsz = (size_t)c_out * (size_t)c_in * (size_t)k * (size_t)k;
    l->n_max = n_max;
    l->x = filled(in, 1), l->dx = filled(in, 1), l->y = filled(out, 1), l->dy = filled(out, 0.1f);
    l->w = filled(wsz, 0.2f), l->dw = filled(wsz, 0), l->b = filled((size_t)c_out, 0.1f);
    l->db = filled((size_t)c_out, 0);
    l->ws_bytes = lg_conv2d_workspace(&l->d, n_max);
    l->ws = malloc(l->ws_bytes ? l->ws_bytes : 1);
}

static void layer_free(layer *l) {
    free(l->x), free(l->dx), free(l->y), free(l->dy), free(l->w), free(l->dw), free(l->b), free(l->db);
    free(l->ws);
}

static void layer_step(lg_ctx *ctx, layer *l, size_t n, int want_dx) {
    ck_assert_int_eq(lg_conv2d_forward(ctx, &l->d, n, l->x, l->w, l->b, l->y, l->ws, l->ws_bytes), LG_OK);
    ck_assert_int_eq(lg_conv2d_backward(ctx, &l->d, n, l->x, l->w, l->dy, want_dx ? l->dx : NULL, l->dw, l->db,
                                        l->ws, l->ws_bytes),
                     LG_OK);
}

enum { NLAYERS = 8, BATCH = 8 };

START_TEST(prepared_step_allocates_nothing) {
    lg_ctx ctx;
    if (!counting_ctx(&ctx))
        return;
    layer l[NLAYERS];
    layer_init(&l[0], 3, 32, 16, 7, 2, 3, BATCH);   /* a stem: nhwc forward, im2col data gradient */
    layer_init(&l[1], 16, 16, 32, 3, 1, 1, BATCH);  /* blocked */
    layer_init(&l[2], 32, 16, 64, 3, 2, 1, BATCH);  /* stride 2: nhwc forward, blocked backward */
    layer_init(&l[3], 64, 8, 64, 3, 1, 1, BATCH);   /* >= 32 channels, small map: nhwc forward */
    layer_init(&l[4], 256, 6, 32, 3, 1, 1, BATCH);  /* K = 2304 over 36 pixels: im2col backward */
    layer_init(&l[5], 64, 28, 64, 3, 1, 1, BATCH);  /* 64 channels over 28x28: Winograd (AVX-512) */
    layer_init(&l[6], 256, 7, 256, 3, 1, 1, BATCH); /* 7x7, deep: split by channels (Sapphire Rapids) */
    layer_init(&l[7], 192, 10, 192, 3, 1, 1, BATCH); /* 1.3 MiB of weights: weights-gradient chunks of 4 (SPR) */
    lg_pool2d_dims pd = {.c = 64, .h_in = 8, .w_in = 8, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
    ck_assert_int_eq(lg_pool2d_dims_init(&pd, "max_pool2d", &err), LG_OK);
    lg_linear_dims ld = {.in_features = 64 * 16, .out_features = 10, .bias = 1};
    float *pooled = filled(BATCH * 64 * 16, 1), *dpooled = filled(BATCH * 64 * 16, 1);
    int32_t *argmax = calloc(BATCH * 64 * 16, sizeof(int32_t));
    float *lw = filled(10 * 64 * 16, 0.1f), *lb = filled(10, 0.1f), *ly = filled(BATCH * 10, 1);
    float *dlw = filled(10 * 64 * 16, 0), *dlb = filled(10, 0);

    /* set-up: what a generated trainer's main() does once */
    for (int i = 0; i < NLAYERS; i++)
        ck_assert_int_eq(lg_conv2d_prepare(&l[i].d, &err), LG_OK);

    /* steps: a full batch, short last batches of every size, a full batch */
    static const size_t sizes[] = {BATCH, 7, 5, 3, 2, 1, BATCH};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        count_start();
        for (int i = 0; i < NLAYERS; i++)
            layer_step(&ctx, &l[i], n, i > 0);
        ck_assert_int_eq(lg_max_pool2d_forward(&ctx, &pd, n, l[3].y, pooled, argmax), LG_OK);
        ck_assert_int_eq(lg_linear_forward(&ctx, &ld, n, pooled, lw, lb, ly), LG_OK);
        ck_assert_int_eq(lg_linear_backward(&ctx, &ld, n, pooled, lw, ly, dpooled, dlw, dlb), LG_OK);
        ck_assert_int_eq(lg_max_pool2d_backward(&ctx, &pd, n, argmax, dpooled, l[3].dy), LG_OK);
        atomic_store(&counting, 0);
        ck_assert_msg(atomic_load(&allocations) == atomic_load(&frees) && atomic_load(&largest) <= SMALL,
                      "step %zu (batch %zu) allocated %ld times (%ld freed, the largest %ld bytes)", s, n,
                      atomic_load(&allocations), atomic_load(&frees), atomic_load(&largest));
    }
    for (int i = 0; i < NLAYERS; i++)
        layer_free(&l[i]);
    free(pooled), free(dpooled), free(argmax), free(lw), free(lb), free(ly), free(dlw), free(dlb);
    lg_ctx_free(&ctx);
}
END_TEST

/* The counter works: an unprepared shape's first call creates its oneDNN
 * primitives (large allocations that outlive the call); its second call
 * makes only the transient small ones. */
START_TEST(unprepared_shape_allocates_on_first_call) {
    lg_ctx ctx;
    if (!counting_ctx(&ctx))
        return;
    layer l;
    layer_init(&l, 24, 12, 48, 3, 1, 1, 4);
    long kept[2], big[2];
    for (int call = 0; call < 2; call++) {
        count_start();
        ck_assert_int_eq(lg_conv2d_forward(&ctx, &l.d, 4, l.x, l.w, l.b, l.y, l.ws, l.ws_bytes), LG_OK);
        atomic_store(&counting, 0);
        kept[call] = atomic_load(&allocations) - atomic_load(&frees);
        big[call] = atomic_load(&largest);
    }
    ck_assert_msg(kept[0] > 0 && big[0] > SMALL,
                  "the first call of an unprepared shape kept %ld allocations, the largest %ld bytes: is the "
                  "counter blind?",
                  kept[0], big[0]);
    ck_assert_msg(kept[1] == 0 && big[1] <= SMALL, "the second call kept %ld allocations, the largest %ld bytes",
                  kept[1], big[1]);
    layer_free(&l);
    lg_ctx_free(&ctx);
}
END_TEST

/* A linear layer big enough for oneDNN's GEMM (runtime/ops/gemm_f32.c):
 * oneDNN packs its operands into a buffer it allocates and frees inside each
 * call, the one allocation of a step that is not ours. The rule for it:
 * nothing outlives the call, and the packing buffers stay below LINEAR_PACK
 * (they measured 74 KB - 1.2 MB on bench/'s linear layers), once
 * lg_linear_prepare(_batch) has compiled oneDNN's GEMM kernels. LGEN_GEMM=openblas
 * takes OpenBLAS's GEMM instead, which allocates nothing. */
#define LINEAR_PACK (4 << 20)

START_TEST(linear_on_onednn_gemm_keeps_nothing) {
    lg_ctx ctx;
    if (!counting_ctx(&ctx))
        return;
    enum { ROWS = 64, IN = 784, OUT = 256 }; /* bench's mlp.fc1: 2 tiles of 12.8 MFLOP */
    lg_linear_dims ld = {.in_features = IN, .out_features = OUT, .bias = 1};
    float *x = filled(ROWS * IN, 1), *dx = filled(ROWS * IN, 0), *w = filled(OUT * IN, 0.1f);
    float *dw = filled(OUT * IN, 0), *b = filled(OUT, 0.1f), *db = filled(OUT, 0), *y = filled(ROWS * OUT, 1);
    ck_assert_int_eq(lg_linear_prepare(&ld, &err), LG_OK);
    ck_assert_int_eq(lg_linear_prepare_batch(ROWS, &err), LG_OK); /* oneDNN's GEMM kernels, JIT-compiled once */
    for (int call = 0; call < 3; call++) {
        count_start();
        ck_assert_int_eq(lg_linear_forward(&ctx, &ld, ROWS, x, w, b, y), LG_OK);
        ck_assert_int_eq(lg_linear_backward(&ctx, &ld, ROWS, x, w, y, dx, dw, db), LG_OK);
        atomic_store(&counting, 0);
        ck_assert_msg(atomic_load(&allocations) == atomic_load(&frees) && atomic_load(&largest) <= LINEAR_PACK,
                      "linear call %d allocated %ld times (%ld freed, the largest %ld bytes)", call,
                      atomic_load(&allocations), atomic_load(&frees), atomic_load(&largest));
        ck_assert_msg(atomic_load(&largest) > SMALL,
                      "linear call %d made no packing buffer (largest %ld bytes): did it run on oneDNN's GEMM?",
                      call, atomic_load(&largest));
    }
    free(x), free(dx), free(w), free(dw), free(b), free(db), free(y);
    lg_ctx_free(&ctx);
}
END_TEST

START_TEST(prepare_rejects_bad_dims) {
    lg_conv2d_dims d = {.c_in = 3, .h_in = 2, .w_in = 2, .c_out = 4, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .dh = 1,
                        .dw = 1, .groups = 1};
    ck_assert_int_eq(lg_conv2d_prepare(&d, &err), LG_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "conv2d") != NULL, "message does not name the op: %s", err.msg);
    ck_assert_int_eq(lg_conv2d_prepare(NULL, &err), LG_ERR_ARG);
    ck_assert_str_eq(err.msg, "conv2d: no dimensions");
}
END_TEST

static Suite *alloc_suite(void) {
    Suite *s = suite_create("ops_alloc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, prepared_step_allocates_nothing);
    tcase_add_test(tc, unprepared_shape_allocates_on_first_call);
    tcase_add_test(tc, linear_on_onednn_gemm_keeps_nothing);
    tcase_add_test(tc, prepare_rejects_bad_dims);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
