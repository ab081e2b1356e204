/* check_data.c — the data pipeline's loader path: cache + sha256 over file://,
 * IDX (plain and .gz), transforms, shuffle, batching, workers, splits, resume.
 *
 * Fixtures are written by the tests themselves into a mkdtemp directory; the
 * Fashion-MNIST test reads Debian's dataset-fashion-mnist through a file://
 * mirror (skipped with a message when the package is missing).
 */
#include "../runtime/data/internal.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION "/usr/share/datasets/fashion-mnist"

static char tmpdir[256];

static void make_tmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lgen_check_data_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static int exists(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

/* n images of h x w whose pixel (y, x) of image i is (i * 7 + y * w + x) % 256,
 * label i % 10; gz picks gzip or plain. */
static void write_idx(const char *dir, int n, int h, int w, int gz) {
    char p[1024];
    size_t isz = 16 + (size_t)n * h * w;
    uint8_t *img = malloc(isz), *lab = malloc(8 + (size_t)n);
    be32(img, 0x803); be32(img + 4, n); be32(img + 8, h); be32(img + 12, w);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < h * w; k++)
            img[16 + (size_t)i * h * w + k] = (uint8_t)((i * 7 + k) % 256);
    be32(lab, 0x801); be32(lab + 4, n);
    for (int i = 0; i < n; i++)
        lab[8 + i] = (uint8_t)(i % 10);
    mkdir(dir, 0777);
    const char *names[2] = {gz ? "img.gz" : "img", gz ? "lab.gz" : "lab"};
    const uint8_t *bufs[2] = {img, lab};
    size_t sizes[2] = {isz, 8 + (size_t)n};
    for (int f = 0; f < 2; f++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[f]);
        if (gz) {
            gzFile g = gzopen(p, "wb");
            ck_assert_ptr_nonnull(g);
            ck_assert_int_eq(gzwrite(g, bufs[f], (unsigned)sizes[f]), (int)sizes[f]);
            gzclose(g);
        } else {
            FILE *fp = fopen(p, "wb");
            ck_assert_ptr_nonnull(fp);
            ck_assert_uint_eq(fwrite(bufs[f], 1, sizes[f], fp), sizes[f]);
            fclose(fp);
        }
    }
    free(img);
    free(lab);
}

/* ---- cache + Fashion-MNIST over file:// ---------------------------------- */

static const char *const fashion_mirrors[] = {"file://" FASHION "/"};
static const lg_file_desc fashion_files[] = {
    {"train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056", 0},
    {"t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa", 0},
    {"t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05", 0},
};
static const char *const fashion_test_paths[] = {"t10k-images-idx3-ubyte.gz",
                                                 "t10k-labels-idx1-ubyte.gz"};
static const lg_split_desc fashion_splits[] = {{"test", fashion_test_paths, 2, NULL}};
static const lg_dataset_desc fashion = {
    .name = "fashion", .mirrors = fashion_mirrors, .n_mirrors = 1,
    .files = fashion_files, .n_files = 3, .format = LG_FORMAT_IDX,
    .splits = fashion_splits, .n_splits = 1,
};

START_TEST(test_fashion_file_mirror) {
    if (access(FASHION "/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("SKIP: %s missing (apt-get install dataset-fashion-mnist)\n", FASHION);
        return;
    }
    make_tmp();
    lg_data_config cfg = {.data_dir = tmpdir, .quiet = 1};
    lg_error err = {0};
    ck_assert_msg(lg_data_prepare(&fashion, &cfg, &err) == LG_OK, "%s", err.msg);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fashion", tmpdir);
    ck_assert(exists(dir, "t10k-images-idx3-ubyte.gz"));
    ck_assert(exists(dir, "t10k-images-idx3-ubyte.gz.sha256"));
    ck_assert(!exists(dir, "t10k-images-idx3-ubyte.gz.part"));
    /* Offline second run: no mirrors at all, the verified cache is enough. */
    lg_dataset_desc offline = fashion;
    offline.n_mirrors = 0;
    ck_assert_msg(lg_data_prepare(&offline, &cfg, &err) == LG_OK, "%s", err.msg);
    lg_dataset *ds;
    ck_assert_msg(lg_dataset_open(&ds, &offline, "test", &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(lg_dataset_size(ds), 10000);
    /* torchvision FashionMNIST(train=False)[0]: label 9 (ankle boot); [1]: 2; [2]: 1. */
    lg_sample s = {0};
    ck_assert_int_eq(ds->get(ds, 0, &s, &err), LG_OK);
    ck_assert_int_eq(s.label, 9);
    ck_assert_int_eq(s.c, 1);
    ck_assert_int_eq(s.h, 28);
    ck_assert_int_eq(s.w, 28);
    ck_assert_int_eq(ds->get(ds, 1, &s, &err), LG_OK);
    ck_assert_int_eq(s.label, 2);
    ck_assert_int_eq(ds->get(ds, 2, &s, &err), LG_OK);
    ck_assert_int_eq(s.label, 1);
    lg_sample_free(&s);
    lg_dataset_close(ds);
    /* A cached file that was damaged is detected (stamp no longer matches),
     * deleted, and without a mirror that is a clear error. */
    char p[1024];
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    FILE *f = fopen(p, "ab");
    fputc('x', f);
    fclose(f);
    ck_assert_int_eq(lg_data_prepare(&offline, &cfg, &err), LG_ERR_NET);
    ck_assert_ptr_nonnull(strstr(err.msg, "t10k-labels-idx1-ubyte.gz"));
    ck_assert(!exists(dir, "t10k-labels-idx1-ubyte.gz"));
    ck_assert_msg(lg_data_prepare(&fashion, &cfg, &err) == LG_OK, "%s", err.msg);
    rm_tmp();
}
END_TEST

START_TEST(test_sha256_mismatch_keeps_nothing) {
    make_tmp();
    char src[512], url[600];
    snprintf(src, sizeof src, "%s/src", tmpdir);
    write_idx(src, 10, 4, 4, 0);
    snprintf(url, sizeof url, "file://%s", src);
    const char *mirrors[] = {url};
    lg_file_desc files[] = {{"img", "00000000000000000000000000000000000000000000000000000000000000ff", 0}};
    lg_dataset_desc d = {.name = "bad", .mirrors = mirrors, .n_mirrors = 1, .files = files,
                         .n_files = 1, .format = LG_FORMAT_IDX};
    lg_data_config cfg = {.data_dir = tmpdir, .quiet = 1};
    lg_error err = {0};
    ck_assert_int_eq(lg_data_prepare(&d, &cfg, &err), LG_ERR_CHECKSUM);
    ck_assert_ptr_nonnull(strstr(err.msg, "sha256 mismatch"));
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bad", tmpdir);
    ck_assert(!exists(dir, "img"));
    ck_assert(!exists(dir, "img.part"));
    ck_assert(!exists(dir, "img.sha256"));
    /* With the right hash it works, from the second mirror after a dead one. */
    char hex[65], p[1024];
    snprintf(p, sizeof p, "%s/img", src);
    ck_assert_int_eq(lg_sha256_file(p, hex, &err), LG_OK);
    files[0].sha256 = hex;
    const char *two[] = {"file:///nonexistent/lgen", url};
    d.mirrors = two;
    d.n_mirrors = 2;
    cfg.retries = 1;
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert(exists(dir, "img"));
    rm_tmp();
}
END_TEST

/* ---- loader ----------------------------------------------------------------- */

static const char *const small_paths[] = {"img.gz", "lab.gz"};
static const lg_split_desc small_splits[] = {{"train", small_paths, 2, NULL}};
static const lg_dataset_desc small = {
    .name = "small", .format = LG_FORMAT_IDX, .splits = small_splits, .n_splits = 1,
};
static const lg_transform_desc aug[] = {
    {.kind = LG_TF_RANDOM_CROP, .i = {8, 8, 2}},
    {.kind = LG_TF_RANDOM_HFLIP, .f = {0.5f}},
    {.kind = LG_TF_NORMALIZE, .f = {0.5f, 0, 0, 0.25f}, .i = {1}},
};

static lg_dataset *open_small(int n) {
    make_tmp();
    char dir[512];
    snprintf(dir, sizeof dir, "%s/small", tmpdir);
    write_idx(dir, n, 8, 8, 1);
    lg_data_config cfg = {.data_dir = tmpdir};
    lg_error err = {0};
    lg_dataset *ds = NULL;
    ck_assert_msg(lg_dataset_open(&ds, &small, "train", &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(lg_dataset_size(ds), n);
    return ds;
}

/* All batches of one epoch, concatenated: images, labels, indices, n per batch. */
typedef struct epoch_dump {
    float *img;
    int32_t *label;
    int64_t *index;
    int nb, rows;
    int n[64];
} epoch_dump;

static void dump_epoch(lg_dataset *ds, const lg_split_spec *sp, lg_loader_options opt,
                       int64_t epoch, int64_t first, epoch_dump *d) {
    lg_loader l;
    lg_error err = {0};
    ck_assert_msg(lg_loader_init(&l, sp, ds, &opt, 1234, &err) == LG_OK, "%s", err.msg);
    ck_assert_msg(lg_loader_start(&l, epoch, first, &err) == LG_OK, "%s", err.msg);
    size_t per = (size_t)sp->channels * sp->height * sp->width;
    d->img = calloc((size_t)(l.n_batches + 1) * opt.batch_size * per, sizeof(float));
    d->label = calloc((size_t)(l.n_batches + 1) * opt.batch_size, sizeof(int32_t));
    d->index = calloc((size_t)(l.n_batches + 1) * opt.batch_size, sizeof(int64_t));
    d->nb = 0;
    d->rows = 0;
    const lg_batch *b;
    for (;;) {
        ck_assert_msg(lg_loader_next(&l, &b, &err) == LG_OK, "%s", err.msg);
        if (!b)
            break;
        ck_assert_int_eq(b->batch_index, first + d->nb);
        ck_assert_int_lt(d->nb, 64);
        d->n[d->nb++] = b->n;
        memcpy(d->img + (size_t)d->rows * per, b->image, (size_t)b->n * per * sizeof(float));
        memcpy(d->label + d->rows, b->label, (size_t)b->n * sizeof(int32_t));
        memcpy(d->index + d->rows, b->index, (size_t)b->n * sizeof(int64_t));
        for (int j = b->n; j < b->batch_size; j++) {
            ck_assert_int_eq(b->label[j], -1);
            ck_assert_int_eq(b->index[j], -1);
        }
        d->rows += b->n;
    }
    /* The end stays the end. */
    ck_assert_int_eq(lg_loader_next(&l, &b, &err), LG_OK);
    ck_assert_ptr_null(b);
    lg_loader_free(&l);
}

static void dump_free(epoch_dump *d) {
    free(d->img);
    free(d->label);
    free(d->index);
}

static const lg_split_spec small_train = {
    .name = "train", .dataset = &small, .source = "train", .transforms = aug, .n_transforms = 3,
    .channels = 1, .height = 8, .width = 8,
};

START_TEST(test_same_batches_any_workers) {
    lg_dataset *ds = open_small(103);
    lg_loader_options opt = {.batch_size = 10, .shuffle = 1};
    epoch_dump ref, d;
    dump_epoch(ds, &small_train, opt, 3, 0, &ref);
    ck_assert_int_eq(ref.nb, 11);
    ck_assert_int_eq(ref.rows, 103);
    ck_assert_int_eq(ref.n[10], 3);
    /* Every sample exactly once, in a shuffled order. */
    int seen[103] = {0}, moved = 0;
    for (int i = 0; i < 103; i++) {
        seen[ref.index[i]]++;
        moved += ref.index[i] != i;
        ck_assert_int_eq(ref.label[i], ref.index[i] % 10);
    }
    for (int i = 0; i < 103; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_int_gt(moved, 50);
    int workers[] = {1, 4, 2};
    int prefetch[] = {0, 3, 1};
    for (int w = 0; w < 3; w++) {
        opt.num_workers = workers[w];
        opt.prefetch = prefetch[w];
        dump_epoch(ds, &small_train, opt, 3, 0, &d);
        ck_assert_int_eq(d.rows, 103);
        ck_assert_mem_eq(d.index, ref.index, 103 * sizeof(int64_t));
        ck_assert_mem_eq(d.label, ref.label, 103 * sizeof(int32_t));
        ck_assert_mem_eq(d.img, ref.img, 103 * 64 * sizeof(float));
        dump_free(&d);
    }
    /* Another epoch: another order, other augmentations. */
    opt.num_workers = 2;
    dump_epoch(ds, &small_train, opt, 4, 0, &d);
    ck_assert(memcmp(d.index, ref.index, 103 * sizeof(int64_t)) != 0);
    dump_free(&d);
    /* Resume at batch 4 of epoch 3: the rest of the same epoch, bit for bit. */
    dump_epoch(ds, &small_train, opt, 3, 4, &d);
    ck_assert_int_eq(d.nb, 7);
    ck_assert_mem_eq(d.index, ref.index + 40, 63 * sizeof(int64_t));
    ck_assert_mem_eq(d.img, ref.img + 40 * 64, 63 * 64 * sizeof(float));
    dump_free(&d);
    dump_free(&ref);
    lg_dataset_close(ds);
    rm_tmp();
}
END_TEST

START_TEST(test_no_shuffle_values_and_drop_last) {
    lg_dataset *ds = open_small(25);
    lg_transform_desc norm[] = {{.kind = LG_TF_TO_TENSOR},
                                {.kind = LG_TF_NORMALIZE, .f = {0.5f, 0, 0, 0.25f}, .i = {1}}};
    lg_split_spec sp = {.name = "val", .dataset = &small, .source = "train", .transforms = norm,
                        .n_transforms = 2, .channels = 1, .height = 8, .width = 8};
    lg_loader_options opt = {.batch_size = 4, .drop_last = 1, .num_workers = 2};
    epoch_dump d;
    dump_epoch(ds, &sp, opt, 0, 0, &d);
    ck_assert_int_eq(d.nb, 6);
    ck_assert_int_eq(d.rows, 24);
    for (int i = 0; i < 24; i++) {
        ck_assert_int_eq(d.index[i], i);
        for (int k = 0; k < 64; k += 9) {
            float want = (((i * 7 + k) % 256) / 255.0f - 0.5f) / 0.25f;
            ck_assert_float_eq_tol(d.img[i * 64 + k], want, 1e-6);
        }
    }
    dump_free(&d);
    lg_dataset_close(ds);
    rm_tmp();
}
END_TEST

START_TEST(test_random_split_disjoint) {
    lg_dataset *ds = open_small(50);
    lg_split_spec a = {.name = "train", .dataset = &small, .source = "train", .lo = 0, .hi = 0.9,
                       .split_seed = 42, .channels = 1, .height = 8, .width = 8};
    lg_split_spec b = a;
    b.name = "val";
    b.lo = 0.9;
    b.hi = 1.0;
    lg_loader_options opt = {.batch_size = 7, .num_workers = 1};
    epoch_dump da, db;
    dump_epoch(ds, &a, opt, 0, 0, &da);
    dump_epoch(ds, &b, opt, 0, 0, &db);
    ck_assert_int_eq(da.rows, 45);
    ck_assert_int_eq(db.rows, 5);
    int seen[50] = {0};
    for (int i = 0; i < 45; i++)
        seen[da.index[i]]++;
    for (int i = 0; i < 5; i++)
        seen[db.index[i]]++;
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(seen[i], 1);
    /* The split is random (not the last 5) and fixed by its seed. */
    int tail = 0;
    for (int i = 0; i < 5; i++)
        tail += db.index[i] >= 45;
    ck_assert_int_lt(tail, 5);
    epoch_dump again;
    dump_epoch(ds, &b, opt, 7, 0, &again);
    ck_assert_mem_eq(again.index, db.index, 5 * sizeof(int64_t));
    dump_free(&again);
    dump_free(&da);
    dump_free(&db);
    lg_dataset_close(ds);
    rm_tmp();
}
END_TEST

/* The inflated IDX bytes are kept beside the .gz (NAME.gz.raw) and mapped
 * by the next open; a .gz that changed makes the cache stale, and a cache
 * that does not match its header is ignored. */
START_TEST(test_idx_raw_cache) {
    lg_dataset *ds = open_small(12);
    char raw[1024], gz[1024];
    snprintf(raw, sizeof raw, "%s/small/img.gz.raw", tmpdir);
    snprintf(gz, sizeof gz, "%s/small/img.gz", tmpdir);
    struct stat st;
    ck_assert_int_eq(stat(raw, &st), 0);
    ck_assert_int_eq((long)st.st_size, 64 + 16 + 12 * 64); /* header + the IDX bytes */
    lg_dataset_close(ds);
    lg_data_config cfg = {.data_dir = tmpdir};
    lg_error err = {0};
    lg_sample s = {0};
    /* Second open: served from the cache, same values as write_idx made. */
    ck_assert_msg(lg_dataset_open(&ds, &small, "train", &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(lg_dataset_size(ds), 12);
    ck_assert_int_eq(ds->get(ds, 11, &s, &err), LG_OK);
    ck_assert_int_eq(s.label, 1);
    ck_assert_float_eq_tol(s.img[3], (float)((11 * 7 + 3) % 256) / 255.0f, 1e-6);
    lg_dataset_close(ds);
    /* A different .gz (now 20 images): the stale cache is not used. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/small", tmpdir);
    write_idx(dir, 20, 8, 8, 1);
    ck_assert_msg(lg_dataset_open(&ds, &small, "train", &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(lg_dataset_size(ds), 20);
    lg_dataset_close(ds);
    ck_assert_int_eq(stat(raw, &st), 0);
    ck_assert_int_eq((long)st.st_size, 64 + 16 + 20 * 64);
    /* A damaged cache (payload cut short) is ignored, not trusted. */
    ck_assert_int_eq(truncate(raw, 100), 0);
    ck_assert_msg(lg_dataset_open(&ds, &small, "train", &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(lg_dataset_size(ds), 20);
    ck_assert_int_eq(ds->get(ds, 19, &s, &err), LG_OK);
    ck_assert_float_eq_tol(s.img[63], (float)((19 * 7 + 63) % 256) / 255.0f, 1e-6);
    lg_sample_free(&s);
    lg_dataset_close(ds);
    rm_tmp();
}
END_TEST

START_TEST(test_shape_mismatch_and_bad_idx) {
    lg_dataset *ds = open_small(5);
    lg_split_spec sp = small_train;
    sp.height = 28;
    sp.width = 28;
    lg_loader_options opt = {.batch_size = 2, .num_workers = 2};
    lg_loader l;
    lg_error err = {0};
    ck_assert_int_eq(lg_loader_init(&l, &sp, ds, &opt, 1, &err), LG_OK);
    ck_assert_int_eq(lg_loader_start(&l, 0, 0, &err), LG_OK);
    const lg_batch *b;
    ck_assert_int_eq(lg_loader_next(&l, &b, &err), LG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "1x8x8 image but the network expects 1x28x28"));
    lg_loader_free(&l);
    lg_dataset_close(ds);
    /* A truncated image file: header promises more than is there. */
    char p[1024];
    snprintf(p, sizeof p, "%s/small/img.gz", tmpdir);
    gzFile g = gzopen(p, "wb");
    uint8_t hdr[20] = {0};
    be32(hdr, 0x803); be32(hdr + 4, 5); be32(hdr + 8, 8); be32(hdr + 12, 8);
    gzwrite(g, hdr, 20);
    gzclose(g);
    lg_data_config cfg = {.data_dir = tmpdir};
    ck_assert_int_eq(lg_dataset_open(&ds, &small, "train", &cfg, &err), LG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "header says 5 images of 8x8"));
    ck_assert_ptr_nonnull(strstr(err.msg, "img.gz"));
    rm_tmp();
}
END_TEST


START_TEST(test_restart_mid_epoch) {
    lg_dataset *ds = open_small(97);
    lg_loader_options opt = {.batch_size = 8, .shuffle = 1, .num_workers = 3, .prefetch = 5};
    epoch_dump ref;
    dump_epoch(ds, &small_train, opt, 1, 0, &ref);
    lg_loader l;
    lg_error err = {0};
    const lg_batch *b;
    ck_assert_int_eq(lg_loader_init(&l, &small_train, ds, &opt, 1234, &err), LG_OK);
    /* abandon epoch 0 after two batches, with workers still filling slots */
    ck_assert_int_eq(lg_loader_start(&l, 0, 0, &err), LG_OK);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(lg_loader_next(&l, &b, &err), LG_OK);
        ck_assert_ptr_nonnull(b);
    }
    ck_assert_int_eq(lg_loader_start(&l, 1, 3, &err), LG_OK);
    int row = 24;
    for (;;) {
        ck_assert_int_eq(lg_loader_next(&l, &b, &err), LG_OK);
        if (!b)
            break;
        ck_assert_mem_eq(b->index, ref.index + row, (size_t)b->n * sizeof(int64_t));
        ck_assert_mem_eq(b->image, ref.img + (size_t)row * 64, (size_t)b->n * 64 * sizeof(float));
        row += b->n;
    }
    ck_assert_int_eq(row, 97);
    ck_assert_int_eq(lg_loader_start(&l, 0, 99, &err), LG_ERR_ARG);
    lg_loader_free(&l);
    /* freeing mid-epoch joins the workers cleanly */
    ck_assert_int_eq(lg_loader_init(&l, &small_train, ds, &opt, 1, &err), LG_OK);
    ck_assert_int_eq(lg_loader_start(&l, 0, 0, &err), LG_OK);
    ck_assert_int_eq(lg_loader_next(&l, &b, &err), LG_OK);
    lg_loader_free(&l);
    lg_loader_free(&l); /* twice is fine */
    dump_free(&ref);
    lg_dataset_close(ds);
    rm_tmp();
}
END_TEST

static Suite *data_suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fashion_file_mirror);
    tcase_add_test(tc, test_sha256_mismatch_keeps_nothing);
    tcase_add_test(tc, test_same_batches_any_workers);
    tcase_add_test(tc, test_no_shuffle_values_and_drop_last);
    tcase_add_test(tc, test_random_split_disjoint);
    tcase_add_test(tc, test_idx_raw_cache);
    tcase_add_test(tc, test_shape_mismatch_and_bad_idx);
    tcase_add_test(tc, test_restart_mid_epoch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(data_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
