/* internal.h — what the files of runtime/data/ share and nobody else sees.
 *
 * A dataset split is a reader (a `get` function filling an lg_sample) behind
 * the public lg_dataset; the loader runs get + the transform pipeline per
 * sample on its worker threads. Helpers for paths, hashing, the per-sample
 * random generator and image decoding live here too. The tests include this
 * header to reach the pieces (decoders, transforms) directly.
 */
#ifndef LG_DATA_INTERNAL_H
#define LG_DATA_INTERNAL_H

#include "lgen/data.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define LG_PATH_MAX 4096

/* A sample on its way through the pipeline: a float32 CHW image in [0, 1]
 * plus, for detection, boxes (x1, y1, x2, y2 in pixels). Buffers grow on
 * demand and are reused from sample to sample by one worker. */
typedef struct lg_sample {
    int c, h, w;
    float *img;
    size_t img_cap;  /* floats */
    float *tmp;      /* scratch for transforms, same capacity rules */
    size_t tmp_cap;
    uint8_t *raw;    /* scratch for decoders (file bytes, 8-bit pixels) */
    size_t raw_cap;
    uint8_t *file;   /* scratch for a file's bytes (image_folder, voc) */
    size_t file_cap;
    int32_t label;
    int nbox, box_cap;
    float *boxes;
    int32_t *box_label;
    uint8_t *box_difficult;
} lg_sample;

void lg_sample_free(lg_sample *s);
/* Makes room for a c x h x w image in s->img (and sets c, h, w). */
lg_status lg_sample_reserve(lg_sample *s, int c, int h, int w, lg_error *err);
/* Makes room for n floats in s->tmp. */
lg_status lg_sample_reserve_tmp(lg_sample *s, size_t n, lg_error *err);
lg_status lg_sample_reserve_raw(lg_sample *s, size_t n, lg_error *err);
lg_status lg_sample_add_box(lg_sample *s, const float box[4], int32_t label, int difficult,
                            lg_error *err);

struct lg_dataset {
    const lg_dataset_desc *desc;
    const lg_split_desc *split;
    char root[LG_PATH_MAX]; /* <data_dir>/<dataset name> */
    int64_t n;
    atomic_llong skipped;
    /* Thread-safe: fills s with sample i (label, image, boxes). */
    lg_status (*get)(lg_dataset *ds, int64_t i, lg_sample *s, lg_error *err);
    void (*close)(lg_dataset *ds);
    void *impl;
};

/* Readers: each fills ds->n, ds->get, ds->close, ds->impl. */
lg_status lg_idx_open(lg_dataset *ds, lg_error *err);
lg_status lg_cifar_open(lg_dataset *ds, lg_error *err);
lg_status lg_folder_open(lg_dataset *ds, lg_error *err);
lg_status lg_csv_open(lg_dataset *ds, lg_error *err);
lg_status lg_voc_open(lg_dataset *ds, lg_error *err);

/* Joins root and a relative path into buf; an error if it does not fit. */
lg_status lg_path_join(char *buf, size_t size, const char *a, const char *b, lg_error *err);
/* mkdir -p */
lg_status lg_mkdirs(const char *path, lg_error *err);
/* Reads a whole file (a .gz one decompressed) into a malloc'd buffer;
 * max_bytes bounds the result. */
lg_status lg_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                       lg_error *err);

/* sha256 of a file as 64 lower-case hex digits. */
lg_status lg_sha256_file(const char *path, char hex[65], lg_error *err);
/* Fetches url into dest (via dest.part, resumed when it exists); when sha256
 * is not NULL the result must match or nothing is kept. */
lg_status lg_download(const char *url, const char *dest, const char *sha256,
                      const lg_data_config *cfg, lg_error *err);
/* Extracts an archive into dir, refusing paths that escape it. */
typedef struct lg_extract_limits {
    int64_t max_entries;  /* 0 = 1,000,000 */
    int64_t max_bytes;    /* total uncompressed size; 0 = 64 GiB */
} lg_extract_limits;
lg_status lg_extract(const char *archive, const char *dir, const lg_extract_limits *lim,
                     lg_error *err);

/* Per-sample random numbers: splitmix64 seeded from (seed, epoch, index). */
typedef struct lg_rng {
    uint64_t s;
} lg_rng;
uint64_t lg_rng_mix(uint64_t seed, uint64_t a, uint64_t b);
static inline uint64_t lg_rng_next(lg_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Uniform in [0, 1). */
static inline double lg_rng_uniform(lg_rng *r) {
    return (double)(lg_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
/* Uniform integer in [0, n). */
static inline uint64_t lg_rng_below(lg_rng *r, uint64_t n) {
    return n ? lg_rng_next(r) % n : 0;
}

/* Applies a pipeline to s in place. */
lg_status lg_transform_apply(const lg_transform_desc *tf, int n, lg_sample *s, lg_rng *rng,
                             lg_error *err);

/* One deterministic colour adjustment, torchvision.transforms.functional's
 * adjust_brightness (op 0), adjust_contrast (1), adjust_saturation (2) and
 * adjust_hue (3, factor in turns, [-0.5, 0.5]). */
lg_status lg_color_adjust(lg_sample *s, int op, float factor, lg_error *err);

/* The table i -> i / 255.0f (bit-exact with torchvision's ToTensor). */
const float *lg_u8_to_unit(void);

/* Image decoding into s->img (float CHW in [0, 1]); channels 1 or 3 (0 = as stored,
 * gray or RGB). `name` is used in messages. */
#define LG_IMAGE_MAX_PIXELS (64ll * 1024 * 1024)
lg_status lg_png_decode(const uint8_t *data, size_t size, int channels, lg_sample *s,
                        const char *name, lg_error *err);
lg_status lg_jpeg_decode(const uint8_t *data, size_t size, int channels, lg_sample *s,
                         const char *name, lg_error *err);
/* By magic number: PNG or JPEG. */
lg_status lg_image_decode(const uint8_t *data, size_t size, int channels, lg_sample *s,
                          const char *name, lg_error *err);
lg_status lg_image_load(const char *path, int channels, lg_sample *s, lg_error *err);

#endif
