/* idx.c — the IDX format of the MNIST family (MNIST, Fashion-MNIST, KMNIST).
 *
 * A split is two files, images (magic 0x00000803: count, rows, cols, then
 * uint8 pixels) and labels (magic 0x00000801: count, then uint8 labels),
 * each possibly gzip-compressed (read directly through zlib). Both are read
 * into memory at open — the raw bytes, 47 MB for Fashion-MNIST's train set —
 * and checked: magic, dimensions, payload size against the header, equal
 * counts. get() converts one image to float in [0, 1].
 *
 * Start-up: inflating the 26 MB .gz took most of a trainer's time to its
 * first step, so the decoded bytes are kept beside it (NAME.gz ->
 * NAME.gz.raw, written once through a temporary file and a rename) with a
 * header naming the .gz's size and modification time and the payload size.
 * Later starts map that file (pages load as samples are read) when the
 * header still matches the .gz, and inflate again when it does not. A
 * cache that cannot be written (read-only directory) is skipped silently.
 */
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct idx_data {
    uint8_t *images, *labels;
    size_t images_size, labels_size;
    void *images_map, *labels_map; /* mapped .raw caches (else malloc'd) */
    size_t images_map_len, labels_map_len;
    int rows, cols;
} idx_data;

/* The header of a NAME.gz.raw cache; the payload starts at its end. */
typedef struct {
    char magic[8]; /* "LGENRAW1" */
    uint64_t gz_size, gz_mtime_ns, raw_size;
    uint8_t pad[32];
} raw_header;

static int raw_path(char *out, const char *path) {
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 3, ".gz") || n + 5 > LG_PATH_MAX)
        return 0;
    memcpy(out, path, n);
    memcpy(out + n, ".raw", 5);
    return 1;
}

static void raw_header_of(raw_header *h, const struct stat *gz, size_t raw_size) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, "LGENRAW1", 8);
    h->gz_size = (uint64_t)gz->st_size;
    h->gz_mtime_ns = (uint64_t)gz->st_mtim.tv_sec * 1000000000u + (uint64_t)gz->st_mtim.tv_nsec;
    h->raw_size = raw_size;
}

/* Maps PATH.raw when it matches PATH (a .gz); 0 when there is none. */
static int raw_map(const char *path, uint8_t **data, size_t *size, void **map, size_t *map_len) {
    char rp[LG_PATH_MAX];
    struct stat gz, st;
    if (!raw_path(rp, path) || stat(path, &gz) != 0)
        return 0;
    int fd = open(rp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    raw_header h, want;
    int ok = fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof h && pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h;
    if (ok) {
        raw_header_of(&want, &gz, (size_t)h.raw_size);
        ok = !memcmp(&h, &want, sizeof h) && (uint64_t)st.st_size == sizeof h + h.raw_size;
    }
    void *m = ok ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (m == MAP_FAILED)
        return 0;
    *map = m;
    *map_len = (size_t)st.st_size;
    *data = (uint8_t *)m + sizeof h;
    *size = (size_t)h.raw_size;
    return 1;
}

/* Writes PATH.raw after PATH (a .gz) was inflated; failures are ignored. */
static void raw_write(const char *path, const uint8_t *data, size_t size) {
    char rp[LG_PATH_MAX], tmp[LG_PATH_MAX + 32];
    struct stat gz;
    if (!raw_path(rp, path) || stat(path, &gz) != 0)
        return;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", rp, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    raw_header h;
    raw_header_of(&h, &gz, size);
    int ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(data, 1, size, f) == size;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, rp) != 0)
        unlink(tmp);
}

/* The file's bytes: from its .raw cache, or read (inflated) and cached. */
static lg_status idx_load(const char *path, size_t max_bytes, uint8_t **data, size_t *size, void **map,
                          size_t *map_len, lg_error *err) {
    if (raw_map(path, data, size, map, map_len))
        return LG_OK;
    lg_status st = lg_read_file(path, max_bytes, data, size, err);
    if (st == LG_OK)
        raw_write(path, *data, *size);
    return st;
}

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
        if (d->images_map)
            munmap(d->images_map, d->images_map_len);
        else
            free(d->images);
        if (d->labels_map)
            munmap(d->labels_map, d->labels_map_len);
        else
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
        (st = idx_load(ip, (size_t)8 << 30, &d->images, &d->images_size, &d->images_map, &d->images_map_len,
                       err)) ||
        (st = idx_load(lp, (size_t)1 << 30, &d->labels, &d->labels_size, &d->labels_map, &d->labels_map_len,
                       err)))
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
