/* util.c — small helpers of the data pipeline: paths, directories, whole-file
 * reads (plain or gzip, through zlib), sample buffers and the per-sample seed.
 * Everything here returns an lg_status with a message naming the file.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

lg_status lg_path_join(char *buf, size_t size, const char *a, const char *b, lg_error *err) {
    int n;
    if (!a || !*a)
        n = snprintf(buf, size, "%s", b);
    else if (a[strlen(a) - 1] == '/')
        n = snprintf(buf, size, "%s%s", a, b);
    else
        n = snprintf(buf, size, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= size)
        return lg_error_set(err, LG_ERR_ARG, "path too long: '%s/%s'", a, b);
    return LG_OK;
}

lg_status lg_mkdirs(const char *path, lg_error *err) {
    char buf[LG_PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return lg_error_set(err, LG_ERR_ARG, "path too long: '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return lg_error_set(err, LG_ERR_IO, "cannot create directory '%s': %s", buf,
                                    strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return lg_error_set(err, LG_ERR_IO, "'%s' is not a directory", path);
    return LG_OK;
}

/* gzread reads gzip and plain files alike, so .gz needs no special case. */
lg_status lg_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                       lg_error *err) {
    *data = NULL;
    *size = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return lg_error_set(err, LG_ERR_IO, "cannot open '%s': %s", path,
                            errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        gzclose(f);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate memory to read '%s'", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap >= max_bytes) {
                free(buf);
                gzclose(f);
                return lg_error_set(err, LG_ERR_FORMAT, "'%s' is larger than %zu bytes", path,
                                    max_bytes);
            }
            size_t ncap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            if (ncap == cap)
                ncap = cap + 1;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                gzclose(f);
                return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate %zu bytes to read '%s'",
                                    ncap, path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t want = cap - len;
        if (want > (1u << 30))
            want = 1u << 30;
        int got = gzread(f, buf + len, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            lg_error_set(err, LG_ERR_FORMAT, "cannot read '%s': %s", path,
                         zerr == Z_ERRNO ? strerror(errno) : msg);
            free(buf);
            gzclose(f);
            return LG_ERR_FORMAT;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    /* A truncated .gz reads as a short stream; zlib reports it at close. */
    int zerr;
    const char *msg = gzerror(f, &zerr);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
        lg_error_set(err, LG_ERR_FORMAT, "cannot read '%s': %s", path, msg);
        free(buf);
        gzclose(f);
        return LG_ERR_FORMAT;
    }
    if (zerr == Z_BUF_ERROR) {
        lg_error_set(err, LG_ERR_FORMAT, "'%s' is truncated (unexpected end of gzip stream)", path);
        free(buf);
        gzclose(f);
        return LG_ERR_FORMAT;
    }
    gzclose(f);
    *data = buf;
    *size = len;
    return LG_OK;
}

static lg_status grow(void **p, size_t *cap, size_t need, size_t elem, lg_error *err) {
    if (need <= *cap)
        return LG_OK;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, ncap * elem);
    if (!np)
        return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate %zu bytes for a sample",
                            ncap * elem);
    *p = np;
    *cap = ncap;
    return LG_OK;
}

lg_status lg_sample_reserve(lg_sample *s, int c, int h, int w, lg_error *err) {
    if (c <= 0 || h <= 0 || w <= 0 || (int64_t)c * h * w > 3 * LG_IMAGE_MAX_PIXELS)
        return lg_error_set(err, LG_ERR_FORMAT, "bad image size %dx%dx%d", c, h, w);
    lg_status st = grow((void **)&s->img, &s->img_cap, (size_t)c * h * w, sizeof(float), err);
    if (st)
        return st;
    s->c = c;
    s->h = h;
    s->w = w;
    return LG_OK;
}

lg_status lg_sample_reserve_tmp(lg_sample *s, size_t n, lg_error *err) {
    return grow((void **)&s->tmp, &s->tmp_cap, n, sizeof(float), err);
}

lg_status lg_sample_reserve_raw(lg_sample *s, size_t n, lg_error *err) {
    return grow((void **)&s->raw, &s->raw_cap, n, 1, err);
}

lg_status lg_sample_add_box(lg_sample *s, const float box[4], int32_t label, int difficult,
                            lg_error *err) {
    if (s->nbox == s->box_cap) {
        int ncap = s->box_cap ? s->box_cap * 2 : 16;
        float *b = realloc(s->boxes, (size_t)ncap * 4 * sizeof(float));
        if (b)
            s->boxes = b;
        int32_t *l = realloc(s->box_label, (size_t)ncap * sizeof(int32_t));
        if (l)
            s->box_label = l;
        uint8_t *d = realloc(s->box_difficult, (size_t)ncap);
        if (d)
            s->box_difficult = d;
        if (!b || !l || !d)
            return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate boxes");
        s->box_cap = ncap;
    }
    memcpy(s->boxes + 4 * s->nbox, box, 4 * sizeof(float));
    s->box_label[s->nbox] = label;
    s->box_difficult[s->nbox] = (uint8_t)(difficult != 0);
    s->nbox++;
    return LG_OK;
}

void lg_sample_free(lg_sample *s) {
    if (!s)
        return;
    free(s->img);
    free(s->tmp);
    free(s->raw);
    free(s->file);
    free(s->boxes);
    free(s->box_label);
    free(s->box_difficult);
    memset(s, 0, sizeof *s);
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t lg_rng_mix(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ull);
    h = mix64(h ^ (a + 0x632be59bd9b4e019ull));
    return mix64(h ^ (b + 0x85157af5ull));
}
