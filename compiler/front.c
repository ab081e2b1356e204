/* front.c — running the front end on one spec, and loading imports.
 *
 * front_run is parse -> imports -> sema -> shapes, stopping after the first
 * stage with errors (a shape pass over a tree with unresolved names would
 * only repeat them). Imports are loaded here, before sema, so every pass sees
 * the whole program: each imported file is parsed once (keyed by path), and
 * an import cycle is an error at the import line that closes it.
 */
#include <string.h>

#include "front.h"

/* Import bookkeeping lives in the arena, reached through the Ctx's files:
 * a module per file id. */
typedef struct ImportTable {
    Module **by_file;
    int n;
    int *state; /* 0 unseen, 1 loading, 2 done */
} ImportTable;

static char *dir_of(Ctx *ctx, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return arena_strdup(&ctx->arena, ".");
    return arena_strndup(&ctx->arena, path, (size_t)(slash - path));
}

static int find_loaded(Ctx *ctx, const char *path) {
    for (int i = 0; i < ctx->nfiles; i++)
        if (strcmp(ctx->files[i]->path, path) == 0)
            return i;
    return -1;
}

static int load_imports(Ctx *ctx, Module *mod, ImportTable *tab, int depth);

static Module *import_one(Ctx *ctx, Module *from, Import *im, ImportTable *tab, int depth) {
    if (depth > 32) {
        diag_error(ctx, im->loc, "imports nested more than 32 deep");
        return NULL;
    }
    const char *cands[64];
    int nc = 0;
    if (im->path[0] == '/') {
        cands[nc++] = im->path;
    } else {
        cands[nc++] = arena_printf(&ctx->arena, "%s/%s", dir_of(ctx, from->path), im->path);
        for (int i = 0; i < ctx->nimport_dirs && nc < 64; i++)
            cands[nc++] = arena_printf(&ctx->arena, "%s/%s", ctx->import_dirs[i], im->path);
    }
    int file = -1;
    for (int i = 0; i < nc && file < 0; i++) {
        const char *p = cands[i];
        if (strncmp(p, "./", 2) == 0)
            p += 2;
        file = find_loaded(ctx, p);
        if (file < 0)
            file = diag_load_file(ctx, p, false);
    }
    if (file < 0) {
        diag_error(ctx, im->loc, "cannot find imported file '%s'", im->path);
        if (nc > 0)
            diag_note(ctx, im->loc, "looked in '%s'%s", dir_of(ctx, cands[0]),
                      ctx->nimport_dirs ? " and the -I directories" : "");
        return NULL;
    }
    if (file >= tab->n) {
        int n = file + 16;
        tab->by_file = arena_grow(&ctx->arena, tab->by_file, (size_t)tab->n, (size_t)n, sizeof *tab->by_file);
        tab->state = arena_grow(&ctx->arena, tab->state, (size_t)tab->n, (size_t)n, sizeof *tab->state);
        tab->n = n;
    }
    if (tab->state[file] == 1) {
        diag_error(ctx, im->loc, "import cycle: '%s' imports itself through this line", im->path);
        return NULL;
    }
    if (tab->state[file] == 2)
        return tab->by_file[file];
    tab->state[file] = 1;
    Module *m = parse_file(ctx, file);
    m->is_import = true;
    tab->by_file[file] = m;
    load_imports(ctx, m, tab, depth + 1);
    tab->state[file] = 2;
    return m;
}

static int load_imports(Ctx *ctx, Module *mod, ImportTable *tab, int depth) {
    int before = ctx->nerrors;
    for (int i = 0; i < mod->nimports; i++)
        mod->imports[i].module = import_one(ctx, mod, &mod->imports[i], tab, depth);
    return ctx->nerrors - before;
}

Module *parse_import(Ctx *ctx, const char *path, const char *from_path, Loc loc) {
    ImportTable tab = {0};
    Module from = {0};
    from.path = from_path;
    Import im = {path, loc, NULL};
    return import_one(ctx, &from, &im, &tab, 0);
}

int front_run(Ctx *ctx, const char *path, Module **out) {
    *out = NULL;
    int before = ctx->nerrors;
    int file = diag_load_file(ctx, path, true);
    if (file < 0)
        return 1;
    Module *mod = parse_file(ctx, file);
    *out = mod;
    ImportTable tab = {0};
    tab.n = ctx->nfiles + 16;
    tab.by_file = arena_array(&ctx->arena, (size_t)tab.n, sizeof *tab.by_file);
    tab.state = arena_array(&ctx->arena, (size_t)tab.n, sizeof *tab.state);
    tab.state[file] = 1;
    tab.by_file[file] = mod;
    load_imports(ctx, mod, &tab, 0);
    tab.state[file] = 2;
    bool syntax = mod->has_errors;
    for (int i = 0; i < tab.n; i++)
        syntax |= tab.by_file[i] && tab.by_file[i]->has_errors;
    bool missing = false;
    for (int i = 0; i < mod->nimports; i++)
        missing |= mod->imports[i].module == NULL;
    if (syntax || missing)
        return ctx->nerrors - before;
    sema_check(ctx, mod);
    if (ctx->nerrors > before)
        return ctx->nerrors - before;
    shape_check(ctx, mod);
    return ctx->nerrors - before;
}
