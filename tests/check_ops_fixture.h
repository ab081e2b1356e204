/* check_ops_fixture.h — reads the LGFX fixture files that
 * tests/fixtures/gen_ops.py and gen_optim.py write (see there for the
 * format): a list of named float64 tensors. Used by check_ops.c and
 * check_optim.c only. */
#ifndef CHECK_OPS_FIXTURE_H
#define CHECK_OPS_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[128];
    size_t ndim, dims[8], count;
    double *data;
} fx_tensor;

typedef struct {
    fx_tensor *t;
    size_t n;
} fx_file;

static int fx_load(fx_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    char magic[6];
    if (fread(magic, 1, 6, fp) != 6 || memcmp(magic, "LGFX1\n", 6)) {
        fclose(fp);
        return -1;
    }
    size_t cap = 0;
    for (;;) {
        uint32_t len, nd;
        if (fread(&len, 4, 1, fp) != 1)
            break;
        if (f->n == cap) {
            cap = cap ? cap * 2 : 64;
            f->t = realloc(f->t, cap * sizeof *f->t);
        }
        fx_tensor *t = &f->t[f->n];
        memset(t, 0, sizeof *t);
        if (len >= sizeof t->name || fread(t->name, 1, len, fp) != len || fread(&nd, 4, 1, fp) != 1 || nd > 8)
            goto bad;
        t->ndim = nd;
        t->count = 1;
        for (uint32_t i = 0; i < nd; i++) {
            uint64_t d;
            if (fread(&d, 8, 1, fp) != 1)
                goto bad;
            t->dims[i] = (size_t)d;
            t->count *= (size_t)d;
        }
        t->data = malloc((t->count ? t->count : 1) * sizeof(double));
        if (fread(t->data, sizeof(double), t->count, fp) != t->count) {
            free(t->data);
            goto bad;
        }
        f->n++;
    }
    fclose(fp);
    return 0;
bad:
    fclose(fp);
    return -1;
}

static void fx_free(fx_file *f) {
    for (size_t i = 0; i < f->n; i++)
        free(f->t[i].data);
    free(f->t);
    memset(f, 0, sizeof *f);
}

static const fx_tensor *fx_find(const fx_file *f, const char *fmt, const char *a, const char *b) {
    char name[256];
    snprintf(name, sizeof name, fmt, a, b);
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

#endif
