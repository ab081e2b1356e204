/* cifar.c — CIFAR-10 and CIFAR-100 binary versions.
 *
 * A split is one or more files of fixed-size records: CIFAR-10 has 1 label
 * byte and 3072 pixel bytes (1024 R, 1024 G, 1024 B, each 32x32 row-major),
 * CIFAR-100 has a coarse and a fine label byte first. The files are read
 * into memory at open (the raw bytes: 150 MB for CIFAR-10's train set) and
 * their sizes checked to be whole numbers of records; labels are range
 * checked (10, 20 or 100 classes).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define CIFAR_PIXELS 3072

typedef struct cifar_data {
    uint8_t *bytes;   /* all records of all files, back to back */
    int rec, skip;    /* record size; label byte offset */
} cifar_data;

static lg_status cifar_get(lg_dataset *ds, int64_t i, lg_sample *s, lg_error *err) {
    cifar_data *d = ds->impl;
    const float *unit = lg_u8_to_unit();
    lg_status st = lg_sample_reserve(s, 3, 32, 32, err);
    if (st)
        return st;
    const uint8_t *r = d->bytes + (size_t)i * d->rec;
    s->label = r[d->skip];
    const uint8_t *px = r + d->rec - CIFAR_PIXELS;
    for (int k = 0; k < CIFAR_PIXELS; k++)
        s->img[k] = unit[px[k]];
    s->nbox = 0;
    return LG_OK;
}

static void cifar_close(lg_dataset *ds) {
    cifar_data *d = ds->impl;
    if (d)
        free(d->bytes);
    free(d);
}

lg_status lg_cifar_open(lg_dataset *ds, lg_error *err) {
    const lg_split_desc *sp = ds->split;
    int c100 = ds->desc->format == LG_FORMAT_CIFAR100;
    cifar_data *d = calloc(1, sizeof *d);
    if (!d)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    ds->impl = d;
    ds->get = cifar_get;
    ds->close = cifar_close;
    d->rec = CIFAR_PIXELS + (c100 ? 2 : 1);
    d->skip = c100 && !ds->desc->args.cifar_coarse ? 1 : 0;
    if (sp->n_paths < 1)
        return lg_error_set(err, LG_ERR_ARG, "cifar needs at least one file");
    size_t total = 0;
    for (int f = 0; f < sp->n_paths; f++) {
        char p[LG_PATH_MAX];
        uint8_t *buf;
        size_t n;
        lg_status st;
        if ((st = lg_path_join(p, sizeof p, ds->root, sp->paths[f], err)) ||
            (st = lg_read_file(p, (size_t)4 << 30, &buf, &n, err)))
            return st;
        if (n == 0 || n % (size_t)d->rec) {
            free(buf);
            return lg_error_set(err, LG_ERR_FORMAT,
                                "'%s': %zu bytes is not a whole number of %d-byte CIFAR-%d records",
                                p, n, d->rec, c100 ? 100 : 10);
        }
        for (size_t r = 0; r < n; r += (size_t)d->rec)
            for (int k = 0; k < (c100 ? 2 : 1); k++) {
                int lim = c100 ? (k == 0 ? 20 : 100) : 10;
                if (buf[r + k] >= lim) {
                    lg_error_set(err, LG_ERR_FORMAT, "'%s': record %zu has label %d, not in [0, %d)",
                                 p, r / d->rec, buf[r + k], lim);
                    free(buf);
                    return LG_ERR_FORMAT;
                }
            }
        uint8_t *nb = realloc(d->bytes, total + n);
        if (!nb) {
            free(buf);
            return lg_error_set(err, LG_ERR_NOMEM, "out of memory reading '%s'", p);
        }
        d->bytes = nb;
        memcpy(d->bytes + total, buf, n);
        total += n;
        free(buf);
    }
    ds->n = (int64_t)(total / (size_t)d->rec);
    return LG_OK;
}
