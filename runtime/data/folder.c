/* folder.c — image_folder: one directory per class, like torchvision's
 * ImageFolder. Classes are the descriptor's list (label = position) or the
 * sorted subdirectory names; files ending in .png, .jpg or .jpeg (any case)
 * are listed at open, sorted by name within a class, and decoded on demand
 * by get() through image.c.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct folder_data {
    char **paths;  /* full paths, [n] */
    int32_t *labels;
    int64_t n, cap;
    char **classes;
    int n_classes;
} folder_data;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
                   !strcasecmp(dot, ".jpeg"));
}

/* Sorted names in dir that pass keep (NULL: subdirectories). */
static lg_status list_dir(const char *dir, int want_dirs, char ***out, int64_t *count,
                          lg_error *err) {
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return lg_error_set(err, LG_ERR_IO, "cannot open directory '%s': %s", dir,
                            strerror(errno));
    char **v = NULL;
    int64_t n = 0, cap = 0;
    struct dirent *e;
    lg_status st = LG_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[LG_PATH_MAX];
        if ((st = lg_path_join(p, sizeof p, dir, e->d_name, err)))
            break;
        struct stat sb;
        if (stat(p, &sb) != 0)
            continue;
        if (want_dirs ? !S_ISDIR(sb.st_mode) : !(S_ISREG(sb.st_mode) && is_image(e->d_name)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) {
                st = lg_error_set(err, LG_ERR_NOMEM, "out of memory listing '%s'", dir);
                break;
            }
            v = nv;
        }
        if (!(v[n] = strdup(e->d_name))) {
            st = lg_error_set(err, LG_ERR_NOMEM, "out of memory listing '%s'", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (st) {
        for (int64_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return st;
    }
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    *count = n;
    return LG_OK;
}

static lg_status folder_get(lg_dataset *ds, int64_t i, lg_sample *s, lg_error *err) {
    folder_data *d = ds->impl;
    int ch = ds->desc->args.decode_channels ? ds->desc->args.decode_channels : 3;
    lg_status st = lg_image_load(d->paths[i], ch, s, err);
    if (st)
        return st;
    s->label = d->labels[i];
    s->nbox = 0;
    return LG_OK;
}

static void folder_close(lg_dataset *ds) {
    folder_data *d = ds->impl;
    if (!d)
        return;
    for (int64_t i = 0; i < d->n; i++)
        free(d->paths[i]);
    for (int i = 0; i < d->n_classes; i++)
        free(d->classes[i]);
    free(d->paths);
    free(d->labels);
    free(d->classes);
    free(d);
}

lg_status lg_folder_open(lg_dataset *ds, lg_error *err) {
    const lg_split_desc *sp = ds->split;
    if (sp->n_paths != 1)
        return lg_error_set(err, LG_ERR_ARG, "image_folder needs one root directory, got %d paths",
                            sp->n_paths);
    folder_data *d = calloc(1, sizeof *d);
    if (!d)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    ds->impl = d;
    ds->get = folder_get;
    ds->close = folder_close;
    char root[LG_PATH_MAX];
    lg_status st = lg_path_join(root, sizeof root, ds->root, sp->paths[0], err);
    if (st)
        return st;
    int64_t nc = 0;
    if (ds->desc->n_classes > 0) {
        d->classes = calloc((size_t)ds->desc->n_classes, sizeof *d->classes);
        if (!d->classes)
            return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
        for (int i = 0; i < ds->desc->n_classes; i++) {
            if (!(d->classes[i] = strdup(ds->desc->classes[i])))
                return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
            d->n_classes = i + 1;
        }
    } else {
        if ((st = list_dir(root, 1, &d->classes, &nc, err)))
            return st;
        d->n_classes = (int)nc;
        if (nc == 0)
            return lg_error_set(err, LG_ERR_FORMAT, "'%s' has no class subdirectories", root);
    }
    for (int c = 0; c < d->n_classes; c++) {
        char cdir[LG_PATH_MAX];
        char **files;
        int64_t nf;
        if ((st = lg_path_join(cdir, sizeof cdir, root, d->classes[c], err)) ||
            (st = list_dir(cdir, 0, &files, &nf, err)))
            return st;
        for (int64_t k = 0; k < nf && st == LG_OK; k++) {
            if (d->n == d->cap) {
                int64_t ncap = d->cap ? d->cap * 2 : 256;
                char **np = realloc(d->paths, (size_t)ncap * sizeof *np);
                if (np)
                    d->paths = np;
                int32_t *nl = realloc(d->labels, (size_t)ncap * sizeof *nl);
                if (nl)
                    d->labels = nl;
                if (!np || !nl) {
                    st = lg_error_set(err, LG_ERR_NOMEM, "out of memory");
                    break;
                }
                d->cap = ncap;
            }
            char p[LG_PATH_MAX];
            if ((st = lg_path_join(p, sizeof p, cdir, files[k], err)))
                break;
            if (!(d->paths[d->n] = strdup(p))) {
                st = lg_error_set(err, LG_ERR_NOMEM, "out of memory");
                break;
            }
            d->labels[d->n++] = c;
        }
        for (int64_t k = 0; k < nf; k++)
            free(files[k]);
        free(files);
        if (st)
            return st;
    }
    if (d->n == 0)
        return lg_error_set(err, LG_ERR_FORMAT, "'%s' holds no .png or .jpg images", root);
    ds->n = d->n;
    return LG_OK;
}
