/* csv.c — tabular data: numeric feature columns and one integer label column.
 *
 * The whole file is parsed at open into a float matrix (rows x features) and
 * a label vector; every field is checked (strtof with end pointer, labels
 * whole numbers >= 0, the same column count on each line) and an error names
 * file:line:column. A sample is the feature vector as a 1 x 1 x F "image"
 * (the emitter's layout for a rank-1 shape f32[F]: channels = height = 1,
 * width = F). Blank lines are
 * skipped; quoted fields are not supported and say so.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct csv_data {
    float *x;
    int32_t *y;
    int features;
} csv_data;

static lg_status csv_get(lg_dataset *ds, int64_t i, lg_sample *s, lg_error *err) {
    csv_data *d = ds->impl;
    lg_status st = lg_sample_reserve(s, 1, 1, d->features, err);
    if (st)
        return st;
    memcpy(s->img, d->x + (size_t)i * d->features, (size_t)d->features * sizeof(float));
    s->label = d->y[i];
    s->nbox = 0;
    return LG_OK;
}

static void csv_close(lg_dataset *ds) {
    csv_data *d = ds->impl;
    if (d) {
        free(d->x);
        free(d->y);
    }
    free(d);
}

lg_status lg_csv_open(lg_dataset *ds, lg_error *err) {
    const lg_split_desc *sp = ds->split;
    const lg_format_args *a = &ds->desc->args;
    if (sp->n_paths != 1)
        return lg_error_set(err, LG_ERR_ARG, "csv needs one file, got %d paths", sp->n_paths);
    csv_data *d = calloc(1, sizeof *d);
    if (!d)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    ds->impl = d;
    ds->get = csv_get;
    ds->close = csv_close;
    char path[LG_PATH_MAX];
    uint8_t *buf;
    size_t size;
    lg_status st;
    if ((st = lg_path_join(path, sizeof path, ds->root, sp->paths[0], err)) ||
        (st = lg_read_file(path, (size_t)4 << 30, &buf, &size, err)))
        return st;
    char *text = realloc(buf, size + 1);
    if (!text) {
        free(buf);
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    }
    text[size] = '\0';
    int ncols = -1, label_col = -1;
    int64_t rows = 0, cap = 0, line = 0;
    char *p = text;
    while (*p && st == LG_OK) {
        char *eol = strchr(p, '\n');
        char *next = eol ? eol + 1 : p + strlen(p);
        if (eol)
            *eol = '\0';
        if (eol > p && eol[-1] == '\r')
            eol[-1] = '\0';
        line++;
        char *ln = p;
        p = next;
        if (strspn(ln, " \t") == strlen(ln))
            continue;
        int cols = 1;
        for (char *q = ln; *q; q++)
            cols += *q == ',';
        if (strchr(ln, '"')) {
            st = lg_error_set(err, LG_ERR_FORMAT, "%s:%lld: quoted fields are not supported",
                              path, (long long)line);
            break;
        }
        if (ncols < 0) {
            ncols = cols;
            label_col = a->csv_label_column < 0 ? cols - 1 : a->csv_label_column;
            if (cols < 2 || label_col >= cols) {
                st = lg_error_set(err, LG_ERR_FORMAT,
                                  "%s:%lld: %d column%s, need features and label column %d", path,
                                  (long long)line, cols, cols == 1 ? "" : "s", label_col);
                break;
            }
            d->features = cols - 1;
            if (a->csv_header)
                continue;
        } else if (cols != ncols) {
            st = lg_error_set(err, LG_ERR_FORMAT, "%s:%lld: %d columns, expected %d", path,
                              (long long)line, cols, ncols);
            break;
        }
        if (rows == cap) {
            cap = cap ? cap * 2 : 1024;
            float *nx = realloc(d->x, (size_t)cap * d->features * sizeof(float));
            if (nx)
                d->x = nx;
            int32_t *ny = realloc(d->y, (size_t)cap * sizeof(int32_t));
            if (ny)
                d->y = ny;
            if (!nx || !ny) {
                st = lg_error_set(err, LG_ERR_NOMEM, "out of memory reading '%s'", path);
                break;
            }
        }
        char *f = ln;
        int k = 0;
        for (int c = 0; c < cols; c++) {
            char *end;
            errno = 0;
            float v = strtof(f, &end);
            while (*end == ' ' || *end == '\t')
                end++;
            if (end == f || (*end != ',' && *end != '\0') || errno == ERANGE || !isfinite(v)) {
                int len = (int)strcspn(f, ",");
                st = lg_error_set(err, LG_ERR_FORMAT, "%s:%lld:%d: '%.*s' is not a number", path,
                                  (long long)line, (int)(f - ln) + 1, len, f);
                break;
            }
            if (c == label_col) {
                if (v < 0 || v != floorf(v) || v > 1e9f) {
                    st = lg_error_set(err, LG_ERR_FORMAT,
                                      "%s:%lld:%d: label '%g' is not a class index", path,
                                      (long long)line, (int)(f - ln) + 1, v);
                    break;
                }
                d->y[rows] = (int32_t)v;
            } else {
                d->x[(size_t)rows * d->features + k++] = v;
            }
            f = *end ? end + 1 : end;
        }
        rows++;
    }
    free(text);
    if (st)
        return st;
    if (rows == 0)
        return lg_error_set(err, LG_ERR_FORMAT, "'%s' has no data rows", path);
    ds->n = rows;
    return LG_OK;
}
