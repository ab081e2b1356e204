/* checkpoint.c — safetensors writer and validating reader (lgen/checkpoint.h).
 *
 * The trainer's checkpoints (loop.c) are safetensors files: tensors by
 * PyTorch names and a "__metadata__" map of strings for everything else.
 * This file knows the container only; what goes in it is loop.c's business.
 * The writer is atomic (temporary file, fsync, rename); the reader trusts
 * nothing it has not checked, so a truncated or hostile file is an error
 * message, never a crash.
 */
#include "lgen/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20) /* safetensors' own limit */

static const char *const dtype_names[] = {"F32", "F64", "I64", "I32", "U8"};
static const size_t dtype_sizes[] = {4, 8, 8, 4, 1};

size_t lg_dtype_size(lg_dtype t) {
    return (unsigned)t < 5 ? dtype_sizes[t] : 0;
}

const char *lg_dtype_name(lg_dtype t) {
    return (unsigned)t < 5 ? dtype_names[t] : "?";
}

static int dtype_parse(const char *s, lg_dtype *out) {
    for (int i = 0; i < 5; i++)
        if (strcmp(s, dtype_names[i]) == 0) {
            *out = (lg_dtype)i;
            return 1;
        }
    return 0;
}

static size_t numel_of(int ndim, const int64_t *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

static lg_status write_all(int fd, const void *p, size_t n, const char *path, lg_error *err) {
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return lg_error_set(err, LG_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        }
        c += w;
        n -= (size_t)w;
    }
    return LG_OK;
}

lg_status lg_st_write(const char *path, const lg_st_tensor *t, int n, const char *const *keys,
                      const char *const *values, int n_meta, lg_error *err) {
    json_t *h = json_object();
    json_t *meta = json_object();
    for (int i = 0; i < n_meta; i++)
        json_object_set_new(meta, keys[i], json_string(values[i] ? values[i] : ""));
    json_object_set_new(h, "__metadata__", meta);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = numel_of(t[i].ndim, t[i].shape) * lg_dtype_size(t[i].dtype);
        json_t *e = json_object(), *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        json_object_set_new(e, "dtype", json_string(lg_dtype_name(t[i].dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[II]", (json_int_t)off, (json_int_t)(off + bytes)));
        if (json_object_get(h, t[i].name)) {
            json_decref(h);
            return lg_error_set(err, LG_ERR_ARG, "checkpoint '%s': tensor '%s' given twice", path,
                                t[i].name);
        }
        json_object_set_new(h, t[i].name, e);
        off += bytes;
    }
    char *text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    if (!text)
        return lg_error_set(err, LG_ERR_NOMEM, "cannot encode the header of '%s'", path);
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;

    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (!tmp) {
        free(text);
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory writing '%s'", path);
    }
    snprintf(tmp, plen, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        lg_status st = lg_error_set(err, LG_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        free(text);
        return st;
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    lg_status st = write_all(fd, le, 8, tmp, err);
    if (st == LG_OK)
        st = write_all(fd, text, hlen, tmp, err);
    if (st == LG_OK && padded > hlen)
        st = write_all(fd, "        ", padded - hlen, tmp, err);
    free(text);
    for (int i = 0; st == LG_OK && i < n; i++)
        st = write_all(fd, t[i].data, numel_of(t[i].ndim, t[i].shape) * lg_dtype_size(t[i].dtype),
                       tmp, err);
    if (st == LG_OK && fsync(fd) != 0)
        st = lg_error_set(err, LG_ERR_IO, "cannot flush '%s': %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == LG_OK)
        st = lg_error_set(err, LG_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
    if (st == LG_OK && rename(tmp, path) != 0)
        st = lg_error_set(err, LG_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(errno));
    if (st != LG_OK) {
        unlink(tmp);
    } else {
        /* Make the rename itself durable. */
        char *dcopy = strdup(path);
        if (dcopy) {
            int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dcopy);
        }
    }
    free(tmp);
    return st;
}

/* ---- reader -------------------------------------------------------------- */

typedef struct entry {
    const char *name;
    size_t begin, end;
} entry;

static int entry_cmp(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return strcmp(x->name, y->name); /* empty tensors share an offset */
}

static lg_status bad(lg_st_file *f, lg_error *err, const char *what) {
    lg_status st = lg_error_set(err, LG_ERR_FORMAT, "'%s' is not a valid checkpoint: %s", f->path,
                                what);
    lg_st_close(f);
    return st;
}

lg_status lg_st_open(lg_st_file *f, const char *path, lg_error *err) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return lg_error_set(err, LG_ERR_IO, "cannot open checkpoint '%s': %s", path,
                            strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return lg_error_set(err, LG_ERR_IO, "checkpoint '%s' is not a regular file", path);
    }
    f->path = strdup(path);
    f->size = (size_t)sb.st_size;
    f->buf = malloc(f->size ? f->size : 1);
    if (!f->path || !f->buf) {
        fclose(fp);
        lg_st_close(f);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate %zu bytes for '%s'",
                            (size_t)sb.st_size, path);
    }
    size_t got = fread(f->buf, 1, f->size, fp);
    fclose(fp);
    if (got != f->size)
        return bad(f, err, "short read");
    if (f->size < 8)
        return bad(f, err, "shorter than the 8-byte header size");
    uint64_t hsize = 0;
    for (int i = 0; i < 8; i++)
        hsize |= (uint64_t)f->buf[i] << (8 * i);
    if (hsize > MAX_HEADER || hsize > f->size - 8) {
        char msg[160];
        snprintf(msg, sizeof msg, "header size %llu does not fit in a file of %zu bytes",
                 (unsigned long long)hsize, f->size);
        return bad(f, err, msg);
    }
    f->data_start = 8 + (size_t)hsize;
    json_error_t jerr;
    json_t *h = json_loadb((const char *)f->buf + 8, (size_t)hsize, JSON_REJECT_DUPLICATES, &jerr);
    if (!h || !json_is_object(h)) {
        char msg[300];
        snprintf(msg, sizeof msg, "header is not a JSON object (%s)", h ? "not an object" : jerr.text);
        json_decref(h);
        return bad(f, err, msg);
    }
    f->header = h;
    size_t data_size = f->size - f->data_start;
    size_t count = json_object_size(h);
    entry *ents = calloc(count ? count : 1, sizeof *ents);
    if (!ents)
        return bad(f, err, "out of memory");
    int n = 0;
    const char *key;
    json_t *val;
    char msg[400];
    json_object_foreach(h, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) {
                free(ents);
                return bad(f, err, "__metadata__ is not an object");
            }
            json_object_foreach(val, mk, mv) if (!json_is_string(mv)) {
                snprintf(msg, sizeof msg, "metadata '%.100s' is not a string", mk);
                free(ents);
                return bad(f, err, msg);
            }
            continue;
        }
        json_t *dt = json_object_get(val, "dtype"), *shape = json_object_get(val, "shape"),
               *offs = json_object_get(val, "data_offsets");
        lg_dtype dtype;
        if (!json_is_object(val) || !json_is_string(dt) || !json_is_array(shape) ||
            !json_is_array(offs) || json_array_size(offs) != 2 ||
            !json_is_integer(json_array_get(offs, 0)) || !json_is_integer(json_array_get(offs, 1))) {
            snprintf(msg, sizeof msg, "tensor '%.100s' lacks dtype, shape or data_offsets", key);
            free(ents);
            return bad(f, err, msg);
        }
        if (!dtype_parse(json_string_value(dt), &dtype)) {
            snprintf(msg, sizeof msg, "tensor '%.100s' has unsupported dtype '%.20s'", key,
                     json_string_value(dt));
            free(ents);
            return bad(f, err, msg);
        }
        size_t ndim = json_array_size(shape), numel = 1;
        int ok = ndim <= 8;
        for (size_t d = 0; ok && d < ndim; d++) {
            json_t *s = json_array_get(shape, d);
            json_int_t v = json_is_integer(s) ? json_integer_value(s) : -1;
            if (v < 0 || (v > 0 && numel > ((size_t)1 << 48) / (size_t)v))
                ok = 0;
            else
                numel *= (size_t)v;
        }
        json_int_t b = json_integer_value(json_array_get(offs, 0)),
                   e = json_integer_value(json_array_get(offs, 1));
        if (!ok || b < 0 || e < b || (size_t)e > data_size ||
            (size_t)(e - b) != numel * lg_dtype_size(dtype)) {
            snprintf(msg, sizeof msg,
                     "tensor '%.100s': shape or data_offsets [%lld, %lld] do not match its %zu "
                     "bytes of data",
                     key, (long long)b, (long long)e, data_size);
            free(ents);
            return bad(f, err, msg);
        }
        ents[n].name = key;
        ents[n].begin = (size_t)b;
        ents[n].end = (size_t)e;
        n++;
    }
    qsort(ents, (size_t)n, sizeof *ents, entry_cmp);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (ents[i].begin != at) {
            snprintf(msg, sizeof msg, "tensor '%.100s' starts at %zu, expected %zu", ents[i].name,
                     ents[i].begin, at);
            free(ents);
            return bad(f, err, msg);
        }
        at = ents[i].end;
    }
    if (at != data_size) {
        free(ents);
        snprintf(msg, sizeof msg, "tensors cover %zu of %zu data bytes", at, data_size);
        return bad(f, err, msg);
    }
    f->names = malloc((size_t)(n ? n : 1) * sizeof *f->names);
    if (!f->names) {
        free(ents);
        return bad(f, err, "out of memory");
    }
    for (int i = 0; i < n; i++)
        f->names[i] = ents[i].name;
    free(ents);
    f->n_tensors = n;
    return LG_OK;
}

void lg_st_close(lg_st_file *f) {
    if (!f)
        return;
    json_decref(f->header);
    free(f->names);
    free(f->buf);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const char *lg_st_meta(const lg_st_file *f, const char *key) {
    json_t *m = json_object_get(f->header, "__metadata__");
    return json_string_value(json_object_get(m, key));
}

lg_status lg_st_get(const lg_st_file *f, const char *name, lg_dtype *dtype, int *ndim,
                    int64_t shape[8], const void **data, lg_error *err) {
    json_t *e = strcmp(name, "__metadata__") ? json_object_get(f->header, name) : NULL;
    if (!e)
        return lg_error_set(err, LG_ERR_FORMAT, "checkpoint '%s' has no tensor '%s'", f->path,
                            name);
    /* Validated by lg_st_open. */
    dtype_parse(json_string_value(json_object_get(e, "dtype")), dtype);
    json_t *s = json_object_get(e, "shape");
    *ndim = (int)json_array_size(s);
    for (int d = 0; d < *ndim; d++)
        shape[d] = json_integer_value(json_array_get(s, (size_t)d));
    *data = f->buf + f->data_start +
            (size_t)json_integer_value(json_array_get(json_object_get(e, "data_offsets"), 0));
    return LG_OK;
}

const char *lg_st_name(const lg_st_file *f, int i) {
    return i >= 0 && i < f->n_tensors ? f->names[i] : NULL;
}
