/* lgen/data.h — the data pipeline: dataset descriptors, download cache, loader.
 *
 * The code generator turns a spec's `dataset`, `transform` and `data` blocks
 * into static const tables of the descriptor structs below; the trainer passes
 * them, with run-time options from flags (--data_dir, --mirror, --batch_size,
 * --num_workers, ...), to the functions at the bottom:
 *
 *     lg_data_prepare(&fashion, &cfg, &err);          // download, verify, extract (once)
 *     lg_dataset_open(&ds, &fashion, "train", &cfg, &err);
 *     lg_loader_init(&loader, &train_split, ds, &opt, seed, &err);
 *     for (epoch ...) {
 *         lg_loader_start(&loader, epoch, 0, &err);   // or first_batch = K to resume
 *         const lg_batch *b;
 *         while (lg_loader_next(&loader, &b, &err) == LG_OK && b) step(b);
 *     }
 *     lg_loader_free(&loader); lg_dataset_close(ds);
 *
 * Determinism: the order of an epoch is a function of (seed, epoch) only, and
 * every random transform of a sample is drawn from a generator seeded by
 * (seed, epoch, dataset index). So batches are bit-identical for any
 * num_workers, and a resume at batch K reproduces the rest of the epoch.
 *
 * Cache layout: <data_dir>/<dataset name>/<file name> for downloaded files
 * (with <file>.sha256 stamps once verified), archives extracted into the same
 * directory (marker .<file>.extracted). Format paths (lg_split_desc.paths) are
 * relative to <data_dir>/<dataset name>/.
 *
 * Neighbours: runtime/data/ implements it (download.c, extract.c, idx.c,
 * cifar.c, folder.c, csv.c, voc.c, image.c, transform.c, loader.c);
 * compiler/emit_* writes the tables; runtime/trainer/ calls the loader.
 */
#ifndef LGEN_DATA_H
#define LGEN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "lgen/status.h"

/* ---- descriptors (emitted as static const tables) ------------------------ */

typedef enum {
    LG_FORMAT_IDX,          /* paths: {images.idx[.gz], labels.idx[.gz]} (MNIST family) */
    LG_FORMAT_CIFAR10,      /* paths: binary batch files, 1 label byte + 3072 pixels per record */
    LG_FORMAT_CIFAR100,     /* paths: binary files, coarse + fine label bytes; args.cifar_coarse picks */
    LG_FORMAT_IMAGE_FOLDER, /* paths: {root}; root/<class>/<image>.png|.jpg, classes sorted by name
                             * unless classes[] is given */
    LG_FORMAT_CSV,          /* paths: {file.csv}; numeric feature columns + one integer label
                             * column; a sample is 1 x 1 x F (C x H x W) */
    LG_FORMAT_VOC,          /* paths: {root} (VOCdevkit/VOC2007); set = ImageSets/Main/<set>.txt;
                             * classes[] = object names in label order (required) */
} lg_data_format;

/* One file of a dataset: fetched from each mirror in turn as <mirror>/<name>,
 * checked against sha256, kept as <data_dir>/<dataset>/<name>. */
typedef struct lg_file_desc {
    const char *name;   /* file name under a mirror and in the cache */
    const char *sha256; /* 64 lower-case hex digits; NULL = not checked (a warning) */
    int extract;        /* 1: an archive (tar, tar.gz, tar.xz, zip, .gz) to extract in place */
} lg_file_desc;

/* A named split of a dataset ("train", "test", "val"), as the format reads it. */
typedef struct lg_split_desc {
    const char *name;
    const char *const *paths; /* format inputs, relative to <data_dir>/<dataset>/ */
    int n_paths;
    const char *set;          /* voc: image set name ("trainval"); else NULL */
} lg_split_desc;

/* Format arguments; zero is the default for every field. */
typedef struct lg_format_args {
    int csv_header;       /* csv: 1 if the first line holds column names */
    int csv_label_column; /* csv: 0-based label column; -1 = last column */
    int cifar_coarse;     /* cifar100: 1 = 20 coarse labels, 0 = 100 fine labels */
    int voc_skip_difficult; /* voc: drop boxes marked difficult */
    int skip_bad;         /* 1: a sample that cannot be read (corrupt image, bad XML) is
                           * skipped, counted and reported; 0: it is an error */
    int decode_channels;  /* image_folder/voc: 1 = decode as gray, 3 = RGB (0 = 3) */
} lg_format_args;

typedef struct lg_dataset_desc {
    const char *name;                /* cache subdirectory and messages */
    const char *const *mirrors;      /* base URLs (http, https, file), tried in order */
    int n_mirrors;
    const lg_file_desc *files;
    int n_files;
    lg_data_format format;
    lg_format_args args;
    const char *const *classes;      /* class names in label order (voc, image_folder) */
    int n_classes;
    const lg_split_desc *splits;
    int n_splits;
} lg_dataset_desc;

/* Transforms. Images flow through a pipeline as float32 CHW in [0, 1]
 * (decoders scale by 1/255), so to_tensor is accepted and is a no-op marker.
 * Geometric transforms move a detection sample's boxes with the pixels and
 * drop boxes that leave the image (or keep less than 1 px of either side).
 * Args per kind (f = float args, i = int args):
 *   TO_TENSOR               -
 *   NORMALIZE               f[0..2] mean per channel, f[3..5] std (a single
 *                           mean/std is repeated: i[0] = number given, 1 or 3)
 *   RESIZE                  i[0] = h, i[1] = w; bilinear with antialiasing when
 *                           shrinking, as torchvision's Resize; i[2] = 1: no
 *                           antialiasing (antialias=False)
 *   CENTER_CROP             i[0] = h, i[1] = w
 *   RANDOM_CROP             i[0] = h, i[1] = w, i[2] = padding (zero fill)
 *   RANDOM_RESIZED_CROP     i[0] = h, i[1] = w, i[2] as RESIZE; f[0..1] scale
 *                           range (0 = 0.08, 1), f[2..3] aspect ratio range
 *                           (0 = 3/4, 4/3)
 *   RANDOM_HFLIP, RANDOM_VFLIP  f[0] = p (probability)
 *   COLOR_JITTER            f[0] brightness, f[1] contrast, f[2] saturation, f[3] hue
 *                           (torchvision's factors; 0 = unchanged)
 *   GRAYSCALE               i[0] = output channels (1 or 3)
 *   LETTERBOX               i[0] = h, i[1] = w, i[2] as RESIZE; resize keeping the
 *                           aspect ratio, centre, pad with f[0]
 */
typedef enum {
    LG_TF_TO_TENSOR,
    LG_TF_NORMALIZE,
    LG_TF_RESIZE,
    LG_TF_CENTER_CROP,
    LG_TF_RANDOM_CROP,
    LG_TF_RANDOM_RESIZED_CROP,
    LG_TF_RANDOM_HFLIP,
    LG_TF_RANDOM_VFLIP,
    LG_TF_COLOR_JITTER,
    LG_TF_GRAYSCALE,
    LG_TF_LETTERBOX,
} lg_transform_kind;

typedef struct lg_transform_desc {
    lg_transform_kind kind;
    float f[6];
    int i[4];
} lg_transform_desc;

/* One loader of the data module (train, val, test, predict): which samples
 * and what happens to them. A random split takes the samples at positions
 * [round(lo * n), round(hi * n)) of a permutation of the source split drawn
 * from split_seed; lo = 0, hi = 1 with split_seed 0 takes the split as is
 * (lo = hi = 0 means the same). */
typedef struct lg_split_spec {
    const char *name;                /* "train", "val", "test", "predict" */
    const lg_dataset_desc *dataset;
    const char *source;              /* the dataset split it reads ("train") */
    double lo, hi;                   /* fraction range of a random split */
    uint64_t split_seed;
    const lg_transform_desc *transforms;
    int n_transforms;
    int channels, height, width;     /* static shape of batch.image per sample, after
                                      * transforms; a mismatch is an error naming it */
    int max_boxes;                   /* detection: boxes per image (0 = no boxes) */
} lg_split_spec;

/* ---- run-time options (from flags) -------------------------------------- */

typedef struct lg_data_config {
    const char *data_dir; /* --data_dir; NULL: $LGEN_DATA_DIR, else $XDG_CACHE_HOME/lgen,
                           * else $HOME/.cache/lgen */
    const char *mirror;   /* --mirror: a base URL tried before the spec's mirrors */
    int quiet;            /* 1: no progress line */
    int retries;          /* attempts per mirror (0 = 3) */
    long connect_timeout_s; /* 0 = 30 */
    long stall_timeout_s;   /* abort when under 1 byte/s for this long (0 = 60) */
} lg_data_config;

typedef struct lg_loader_options {
    int batch_size;  /* --batch_size */
    int num_workers; /* --num_workers; 0 = load in the calling thread */
    int shuffle;     /* shuffle every epoch from (seed, epoch) */
    int drop_last;   /* drop a short last batch */
    int prefetch;    /* batches in flight; 0 = 2 * max(1, num_workers) */
} lg_loader_options;

/* ---- batches ------------------------------------------------------------- */

/* A batch with static shapes. N = batch_size, C/H/W = the split spec's shape,
 * B = max_boxes. Rows past n are zero (labels -1, masks 0). Boxes are x1, y1,
 * x2, y2 in pixels of the transformed image (VOC's 1-based xmin/ymin become
 * xmin - 1, ymin - 1). A sample skipped as unreadable (args.skip_bad; warned on
 * stderr, counted by lg_dataset_skipped) keeps its row inside n but looks
 * like padding: zero image, label -1, index -1, no boxes; losses should
 * ignore label -1. Owned by the loader, valid until the next lg_loader_next
 * or lg_loader_start. */
typedef struct lg_batch {
    int n;                 /* valid samples (short last batch unless drop_last) */
    int batch_size, channels, height, width, max_boxes;
    int64_t batch_index;   /* position in the epoch */
    float *image;          /* [N, C, H, W] */
    int32_t *label;        /* [N] class index (-1 where none) */
    int64_t *index;        /* [N] dataset index of each sample (-1 past n) */
    float *boxes;          /* [N, B, 4] (NULL when B = 0) */
    int32_t *box_label;    /* [N, B] class of each box (-1 padding) */
    uint8_t *box_difficult;/* [N, B] VOC difficult flag */
    uint8_t *box_mask;     /* [N, B] 1 = a real box */
    int32_t *box_count;    /* [N] real boxes per image */
} lg_batch;

/* ---- API ----------------------------------------------------------------- */

typedef struct lg_dataset lg_dataset; /* an opened split: readers + sample count */

/* The cache directory for cfg (resolving the defaults above) into buf. */
lg_status lg_data_dir(const lg_data_config *cfg, char *buf, size_t size, lg_error *err);

/* Makes every file of d present and verified in the cache, downloading
 * (cfg->mirror first, then d->mirrors) and extracting as needed. Safe to run
 * in several processes at once: a lock file lets one download while the
 * others wait. A second run with everything present needs no network. */
lg_status lg_data_prepare(const lg_dataset_desc *d, const lg_data_config *cfg, lg_error *err);

/* Opens a split of a prepared dataset (reading headers / indexes / lists). */
lg_status lg_dataset_open(lg_dataset **out, const lg_dataset_desc *d, const char *split,
                          const lg_data_config *cfg, lg_error *err);
int64_t lg_dataset_size(const lg_dataset *ds);
/* Samples skipped as unreadable so far (args.skip_bad). */
int64_t lg_dataset_skipped(const lg_dataset *ds);
void lg_dataset_close(lg_dataset *ds);

typedef struct lg_loader {
    int64_t n_samples;            /* samples of the split (after a random split) */
    int64_t n_batches;            /* batches per epoch */
    struct lg_loader_state *state; /* private */
} lg_loader;

/* Starts the worker threads; ds must outlive the loader. */
lg_status lg_loader_init(lg_loader *l, const lg_split_spec *spec, lg_dataset *ds,
                         const lg_loader_options *opt, uint64_t seed, lg_error *err);
/* Begins epoch `epoch` at batch first_batch (0 normally; K to resume). Any
 * batches of a previous epoch still in flight are discarded. */
lg_status lg_loader_start(lg_loader *l, int64_t epoch, int64_t first_batch, lg_error *err);
/* The next batch in *out, or *out = NULL at the end of the epoch; LG_OK in
 * both cases. An error in a worker is returned here, with its message. */
lg_status lg_loader_next(lg_loader *l, const lg_batch **out, lg_error *err);
/* Joins the workers and frees everything; a zeroed or failed loader is fine. */
void lg_loader_free(lg_loader *l);

#endif
