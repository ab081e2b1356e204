/* idx.c — the IDX format of the MNIST family (MNIST, Fashion-MNIST, KMNIST).
 *
 * A split is two files, images (magic 0x00000803: count, rows, cols, then
 * uint8 pixels) and labels (magic 0x00000801: count, then uint8 labels),
 * each possibly gzip-compressed (read directly through zlib). Both are read
 * into memory at open — the raw bytes, 47 MB for Fashion-MNIST's train set —
 * and checked: magic, dimensions, payload size against the header, equal
 * counts. get() converts one image to float in [0, 1].
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct idx_data {
    uint8_t *images, *labels;
    size_t images_size, labels_size;
    int rows, cols;
} idx_data;

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static lg_status idx_get(lg_dataset *ds, int64_t i, lg_sample *s, lg_error *err) {
    idx_data *d = ds->impl;
    const float *unit = lg_u8_to_unit();
    lg_status st = lg_sample_reserve(s, 1, d->rows, d->cols, err);
    if (st)
        return st;
    size_t n = (size_t)d->rows * d->cols;
    const uint8_t *p = d->images + 16 + (size_t)i * n;
    for (size_t k = 0; k < n; k++)
        s->img[k] = unit[p[k]];
    s->label = d->labels[8 + i];
    s->nbox = 0;
    return LG_OK;
}

static void idx_close(lg_dataset *ds) {
    idx_data *d = ds->impl;
    if (d) {
        free(d->images);
        free(d->labels);
        free(d);
    }
}

lg_status lg_idx_open(lg_dataset *ds, lg_error *err) {
    const lg_split_desc *sp = ds->split;
    if (sp->n_paths != 2)
        return lg_error_set(err, LG_ERR_ARG,
                            "dataset '%s' split '%s': idx needs 2 files (images, labels), got %d",
                            ds->desc->name, sp->name, sp->n_paths);
    idx_data *d = calloc(1, sizeof *d);
    if (!d)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    ds->impl = d;
    ds->close = idx_close;
    ds->get = idx_get;
    char ip[LG_PATH_MAX], lp[LG_PATH_MAX];
    lg_status st;
    if ((st = lg_path_join(ip, sizeof ip, ds->root, sp->paths[0], err)) ||
        (st = lg_path_join(lp, sizeof lp, ds->root, sp->paths[1], err)) ||
        (st = lg_read_file(ip, (size_t)8 << 30, &d->images, &d->images_size, err)) ||
        (st = lg_read_file(lp, (size_t)1 << 30, &d->labels, &d->labels_size, err)))
        return st;
    if (d->images_size < 16 || be32(d->images) != 0x00000803)
        return lg_error_set(err, LG_ERR_FORMAT,
                            "'%s' is not an IDX image file (magic 0x00000803 expected)", ip);
    if (d->labels_size < 8 || be32(d->labels) != 0x00000801)
        return lg_error_set(err, LG_ERR_FORMAT,
                            "'%s' is not an IDX label file (magic 0x00000801 expected)", lp);
    uint32_t n = be32(d->images + 4), rows = be32(d->images + 8), cols = be32(d->images + 12);
    uint32_t nl = be32(d->labels + 4);
    if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536)
        return lg_error_set(err, LG_ERR_FORMAT, "'%s': bad image size %ux%u", ip, rows, cols);
    if ((uint64_t)n * rows * cols != d->images_size - 16)
        return lg_error_set(err, LG_ERR_FORMAT,
                            "'%s': header says %u images of %ux%u (%llu bytes), payload has %zu "
                            "bytes",
                            ip, n, rows, cols, (unsigned long long)n * rows * cols,
                            d->images_size - 16);
    if ((uint64_t)nl != d->labels_size - 8)
        return lg_error_set(err, LG_ERR_FORMAT,
                            "'%s': header says %u labels, payload has %zu bytes", lp, nl,
                            d->labels_size - 8);
    if (n != nl)
        return lg_error_set(err, LG_ERR_FORMAT, "'%s' has %u images but '%s' has %u labels", ip,
                            n, lp, nl);
    d->rows = (int)rows;
    d->cols = (int)cols;
    ds->n = n;
    return LG_OK;
}
