/* init_from.c — --init_from FILE [--init_prefix PREFIX]: start from weights
 * someone else trained.
 *
 * Input: a safetensors file whose tensors carry PyTorch's state_dict names
 * (torchvision's ImageNet ResNet converted by examples/convert_resnet.py, or
 * any lgen checkpoint) and the parameter table of the model def. Output: the
 * parameter block (parameters and buffers such as batch norm's running
 * statistics) overwritten wherever a name matches, after the def's own
 * initialisation; everything else keeps its initial value.
 *
 * Names: the file's tensor NAME lands on the model's tensor PREFIX + NAME,
 * so torchvision's "conv1.weight" becomes the detector's
 * "backbone.body.conv1.weight" under --init_prefix backbone.body. (an empty
 * prefix: names as they are). File tensors with no model tensor (a
 * classifier's fc.*, an lgen checkpoint's optimizer.state.*) are counted and
 * skipped; model tensors the file lacks are counted and named.
 *
 * Nothing is copied until every matching tensor has been checked: a dtype or
 * shape that differs from the model's is an error naming the tensor and both
 * shapes, a corrupt file is lg_st_open's error, and a file that matches no
 * tensor at all is an error that suggests a prefix when one would fit. A
 * resumed or evaluated checkpoint (--ckpt_path) replaces the weights anyway,
 * so --init_from is then skipped, and the trainer says so.
 *
 * Neighbours: flags.c holds the two flags, loop.c's setup() calls
 * lg_tr_init_from after the def's init, checkpoint.c reads the file.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgen/checkpoint.h"

#define SHOW_NAMES 5 /* names listed in the report before "..." */

static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape, lg_dtype dt) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (at < n)
        snprintf(buf + at, n - at, "] %s", lg_dtype_name(dt));
}

/* Appends name to a "a, b, c, ..." list of at most SHOW_NAMES names. */
static void list_add(char *buf, size_t n, int *count, const char *name) {
    size_t at = strlen(buf);
    if (*count < SHOW_NAMES)
        snprintf(buf + at, n - at, "%s'%s'", *count ? ", " : "", name);
    else if (*count == SHOW_NAMES)
        snprintf(buf + at, n - at, ", ...");
    (*count)++;
}

/* The model tensor whose name is prefix + file_name, or -1. */
static int find_param(const lg_model_def *def, const char *prefix, const char *file_name) {
    size_t pl = strlen(prefix);
    for (int k = 0; k < def->n_params; k++) {
        const char *m = def->params[k].name;
        if (strncmp(m, prefix, pl) == 0 && strcmp(m + pl, file_name) == 0)
            return k;
    }
    return -1;
}

/* File tensors that land on a model tensor under prefix. */
static int count_matches(const lg_model_def *def, const lg_st_file *f, const char *prefix) {
    int n = 0;
    for (int i = 0; i < f->n_tensors; i++)
        n += find_param(def, prefix, lg_st_name(f, i)) >= 0;
    return n;
}

/* When nothing matched: the prefix P (maybe empty) under which the most file
 * tensors would land, each candidate taken from a model name that ends in
 * "." + a file name (or equals it). Written into buf with its count; 0 when
 * there is none. */
static int guess_prefix(const lg_model_def *def, const lg_st_file *f, char *buf, size_t n) {
    enum { MAX_CANDIDATES = 32 };
    char cand[MAX_CANDIDATES][256];
    int nc = 0, best = 0;
    for (int i = 0; i < f->n_tensors && nc < MAX_CANDIDATES; i++) {
        const char *fn = lg_st_name(f, i);
        size_t fl = strlen(fn);
        for (int k = 0; k < def->n_params && nc < MAX_CANDIDATES; k++) {
            const char *m = def->params[k].name;
            size_t ml = strlen(m);
            if (ml < fl || strcmp(m + ml - fl, fn) != 0 || (ml > fl && m[ml - fl - 1] != '.') ||
                ml - fl >= sizeof cand[0])
                continue;
            int seen = 0;
            for (int c = 0; c < nc && !seen; c++)
                seen = strlen(cand[c]) == ml - fl && strncmp(cand[c], m, ml - fl) == 0;
            if (!seen)
                snprintf(cand[nc++], sizeof cand[0], "%.*s", (int)(ml - fl), m);
        }
    }
    int at = -1;
    for (int c = 0; c < nc; c++) {
        int hits = count_matches(def, f, cand[c]);
        if (hits > best) {
            best = hits;
            at = c;
        }
    }
    if (at >= 0) {
        size_t len = strlen(cand[at]);
        if (len >= n)
            return 0;
        memcpy(buf, cand[at], len + 1);
    }
    return best;
}

/* Copies tensor data (already checked against q) into the parameter block. */
static void copy_tensor(float *params, const lg_param *q, const void *data) {
    if (q->is_int64) {
        for (size_t i = 0; i < q->numel; i++) {
            int64_t x;
            memcpy(&x, (const char *)data + 8 * i, 8);
            params[q->offset + i] = (float)x;
        }
    } else {
        memcpy(params + q->offset, data, q->numel * sizeof(float));
    }
}

lg_status lg_tr_init_from(lg_trainer *t) {
    const lg_model_def *def = t->def;
    const lg_tconfig *c = t->cfg;
    const char *path = c->init_from ? c->init_from : "";
    const char *prefix = c->init_prefix ? c->init_prefix : "";
    if (!path[0]) {
        if (prefix[0])
            return lg_tr_usage(t, "--init_prefix '%s' needs --init_from FILE", prefix);
        return LG_OK;
    }
    if (c->ckpt_path && c->ckpt_path[0]) {
        printf("--init_from %s skipped: the weights come from --ckpt_path %s\n", path,
               c->ckpt_path);
        return LG_OK;
    }
    lg_st_file f;
    lg_status st = lg_st_open(&f, path, t->err);
    if (st != LG_OK)
        return lg_error_wrap(t->err, "--init_from");

    /* Pass 1: match and check every file tensor; nothing is written yet. */
    int *slot = calloc((size_t)(f.n_tensors ? f.n_tensors : 1), sizeof *slot);
    char *hit = calloc((size_t)(def->n_params ? def->n_params : 1), 1);
    if (!slot || !hit) {
        st = lg_tr_fail(t, LG_ERR_NOMEM, "--init_from: out of memory");
        goto out;
    }
    char unused[512] = "";
    int n_unused = 0, n_loaded = 0;
    size_t n_values = 0;
    for (int i = 0; i < f.n_tensors; i++) {
        const char *fn = lg_st_name(&f, i);
        int k = find_param(def, prefix, fn);
        slot[i] = k;
        if (k < 0) {
            list_add(unused, sizeof unused, &n_unused, fn);
            continue;
        }
        const lg_param *q = &def->params[k];
        lg_dtype dt;
        int nd;
        int64_t shape[8];
        const void *data;
        if ((st = lg_st_get(&f, fn, &dt, &nd, shape, &data, t->err)) != LG_OK)
            goto out;
        lg_dtype want = q->is_int64 ? LG_DT_I64 : LG_DT_F32;
        int same = nd == q->ndim && dt == want;
        for (int d = 0; same && d < nd; d++)
            same = shape[d] == q->shape[d];
        if (!same) {
            char have[160], need[160], as[300] = "";
            shape_text(have, sizeof have, nd, shape, dt);
            shape_text(need, sizeof need, q->ndim, q->shape, want);
            if (prefix[0])
                snprintf(as, sizeof as, " (model tensor '%s')", q->name);
            st = lg_tr_fail(t, LG_ERR_FORMAT,
                            "--init_from '%s': tensor '%s'%s is %s in the file, but %s in the "
                            "model",
                            path, fn, as, have, need);
            goto out;
        }
        hit[k] = 1;
        n_loaded++;
        n_values += q->numel;
    }
    if (n_loaded == 0) {
        char guess[256], first_m[300] = "", first_f[300] = "";
        int nm = 0, nf = 0;
        for (int k = 0; k < def->n_params && k < SHOW_NAMES; k++)
            list_add(first_m, sizeof first_m, &nm, def->params[k].name);
        for (int i = 0; i < f.n_tensors && i < SHOW_NAMES; i++)
            list_add(first_f, sizeof first_f, &nf, lg_st_name(&f, i));
        int hits = guess_prefix(def, &f, guess, sizeof guess);
        if (hits)
            st = lg_tr_usage(t,
                             "--init_from '%s': no tensor name matches the model%s%s%s; %s%s%s "
                             "would match %d of its %d tensors",
                             path, prefix[0] ? " under --init_prefix '" : "", prefix,
                             prefix[0] ? "'" : "",
                             guess[0] ? "--init_prefix " : "no --init_prefix",
                             guess[0] ? guess : "", guess[0] ? "" : "", hits, f.n_tensors);
        else
            st = lg_tr_usage(t,
                             "--init_from '%s': none of its %d tensors (%s) is a tensor of the "
                             "model%s%s%s (%s)",
                             path, f.n_tensors, f.n_tensors ? first_f : "none",
                             prefix[0] ? " under --init_prefix '" : "", prefix,
                             prefix[0] ? "'" : "", first_m);
        goto out;
    }

    /* Pass 2: copy. */
    for (int i = 0; i < f.n_tensors; i++) {
        if (slot[i] < 0)
            continue;
        lg_dtype dt;
        int nd;
        int64_t shape[8];
        const void *data;
        lg_st_get(&f, lg_st_name(&f, i), &dt, &nd, shape, &data, t->err);
        copy_tensor(t->params, &def->params[slot[i]], data);
    }

    /* Report: what was loaded, what the model kept, what the file had extra. */
    char missing[512] = "";
    int n_missing = 0, n_outside = 0;
    size_t pl = strlen(prefix);
    for (int k = 0; k < def->n_params; k++) {
        if (hit[k])
            continue;
        if (strncmp(def->params[k].name, prefix, pl) != 0)
            n_outside++;
        else
            list_add(missing, sizeof missing, &n_missing, def->params[k].name);
    }
    printf("--init_from %s: loaded %d tensor%s (%zu values)%s%s%s\n", path, n_loaded,
           n_loaded == 1 ? "" : "s", n_values, pl ? " into " : "", prefix, pl ? "*" : "");
    if (n_missing)
        printf("  %d model tensor%s%s%s%s not in the file (initialised as usual): %s\n", n_missing,
               n_missing == 1 ? "" : "s", pl ? " under " : "", prefix, pl ? "*" : "", missing);
    if (n_outside)
        printf("  %d model tensor%s outside %s* initialised as usual\n", n_outside,
               n_outside == 1 ? "" : "s", prefix);
    if (n_unused)
        printf("  %d file tensor%s unused (no model tensor of that name): %s\n", n_unused,
               n_unused == 1 ? "" : "s", unused);
    if (!n_missing && !n_outside)
        printf("  every model tensor came from the file\n");
    st = LG_OK;
out:
    free(slot);
    free(hit);
    lg_st_close(&f);
    return st;
}
