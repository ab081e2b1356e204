/* csv.c — tabular data: numeric feature columns and one integer label column.
 *
 * The whole file is parsed at open into a float matrix (rows x features) and
 * a label vector; every field is checked (strtof with end pointer, labels
 * whole numbers >= 0, the same column count on each line) and an error names
 * file:line:column. A sample is the feature vector as a 1 x 1 x F "image"
 * (the emitter's layout for a rank-1 shape f32[F]: channels = height = 1,
 * width = F). Blank lines are
 * skipped; fields may be quoted as RFC 4180 has it ("1.5", a header
 * "petal, width" with a comma, "" for a quote, line breaks inside quotes).
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

/* One record's fields, pointing into the text (unquoted in place). */
typedef struct csv_fields {
    char **v;
    unsigned char *quoted;
    int64_t *line;
    int *col;
    int n, cap;
} csv_fields;

static int csv_push(csv_fields *fl, char *v, int quoted, int64_t line, int col) {
    if (fl->n == fl->cap) {
        int cap = fl->cap ? fl->cap * 2 : 16;
        char **nv = realloc(fl->v, (size_t)cap * sizeof *nv);
        if (nv)
            fl->v = nv;
        unsigned char *nq = realloc(fl->quoted, (size_t)cap);
        if (nq)
            fl->quoted = nq;
        int64_t *nl = realloc(fl->line, (size_t)cap * sizeof *nl);
        if (nl)
            fl->line = nl;
        int *nc = realloc(fl->col, (size_t)cap * sizeof *nc);
        if (nc)
            fl->col = nc;
        if (!nv || !nq || !nl || !nc)
            return -1;
        fl->cap = cap;
    }
    fl->v[fl->n] = v;
    fl->quoted[fl->n] = (unsigned char)quoted;
    fl->line[fl->n] = line;
    fl->col[fl->n] = col;
    fl->n++;
    return 0;
}

/* Splits the record at *p into fields as RFC 4180 reads them: fields end at
 * a comma, records at LF or CRLF; a field that starts with '"' is quoted and
 * may hold commas, line breaks and "" (a quote). Leaves *p at the next
 * record and *line at its line number. */
static lg_status csv_record(char **p, int64_t *line, csv_fields *fl, const char *path,
                            lg_error *err) {
    fl->n = 0;
    char *s = *p, *line_start = s;
    for (;;) {
        int64_t fline = *line;
        int fcol = (int)(s - line_start) + 1;
        char *field = s, *w = s;
        int quoted = *s == '"';
        if (quoted) {
            s++;
            for (;;) {
                if (*s == '\0')
                    return lg_error_set(err, LG_ERR_FORMAT,
                                        "%s:%lld:%d: a quoted field is not closed", path,
                                        (long long)fline, fcol);
                if (*s == '"') {
                    if (s[1] == '"') {
                        *w++ = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                if (*s == '\n') {
                    ++*line;
                    line_start = s + 1;
                }
                *w++ = *s++;
            }
            if (*s != ',' && *s != '\n' && *s != '\0' && !(*s == '\r' && s[1] == '\n'))
                return lg_error_set(err, LG_ERR_FORMAT,
                                    "%s:%lld:%d: text after the closing quote of a field", path,
                                    (long long)*line, (int)(s - line_start) + 1);
        } else {
            while (*s && *s != ',' && *s != '\n')
                s++;
            w = s;
            if (*s == '\n' && w > field && w[-1] == '\r')
                w--;
        }
        char end = *s;
        if (end == '\r') /* CRLF after a quoted field */
            end = *++s;
        *w = '\0';
        if (csv_push(fl, field, quoted, fline, fcol))
            return lg_error_set(err, LG_ERR_NOMEM, "out of memory reading '%s'", path);
        if (end == ',') {
            s++;
            continue;
        }
        if (end == '\n') {
            s++;
            ++*line;
        }
        *p = s;
        return LG_OK;
    }
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
    int64_t rows = 0, cap = 0, line = 1;
    csv_fields fl = {0};
    char *p = text;
    while (*p && st == LG_OK) {
        int64_t at = line;
        st = csv_record(&p, &line, &fl, path, err);
        if (st)
            break;
        if (fl.n == 1 && strspn(fl.v[0], " \t") == strlen(fl.v[0]) && !fl.quoted[0])
            continue; /* a blank line */
        int cols = fl.n;
        if (ncols < 0) {
            ncols = cols;
            label_col = a->csv_label_column < 0 ? cols - 1 : a->csv_label_column;
            if (cols < 2 || label_col >= cols) {
                st = lg_error_set(err, LG_ERR_FORMAT,
                                  "%s:%lld: %d column%s, need features and label column %d", path,
                                  (long long)at, cols, cols == 1 ? "" : "s", label_col);
                break;
            }
            d->features = cols - 1;
            if (a->csv_header)
                continue;
        } else if (cols != ncols) {
            st = lg_error_set(err, LG_ERR_FORMAT, "%s:%lld: %d columns, expected %d", path,
                              (long long)at, cols, ncols);
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
        int k = 0;
        for (int c = 0; c < cols; c++) {
            const char *f = fl.v[c];
            char *end;
            errno = 0;
            float v = strtof(f, &end);
            while (*end == ' ' || *end == '\t')
                end++;
            if (end == f || *end != '\0' || errno == ERANGE || !isfinite(v)) {
                st = lg_error_set(err, LG_ERR_FORMAT, "%s:%lld:%d: '%s' is not a number", path,
                                  (long long)fl.line[c], fl.col[c], f);
                break;
            }
            if (c == label_col) {
                if (v < 0 || v != floorf(v) || v > 1e9f) {
                    st = lg_error_set(err, LG_ERR_FORMAT,
                                      "%s:%lld:%d: label '%g' is not a class index", path,
                                      (long long)fl.line[c], fl.col[c], v);
                    break;
                }
                d->y[rows] = (int32_t)v;
            } else {
                d->x[(size_t)rows * d->features + k++] = v;
            }
        }
        rows++;
    }
    free(fl.v);
    free(fl.quoted);
    free(fl.line);
    free(fl.col);
    free(text);
    if (st)
        return st;
    if (rows == 0)
        return lg_error_set(err, LG_ERR_FORMAT, "'%s' has no data rows", path);
    ds->n = rows;
    return LG_OK;
}
