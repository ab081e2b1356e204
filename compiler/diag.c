/* diag.c — source files and gcc-style diagnostics (see diag.h).
 *
 * Output for a located diagnostic is three lines: the "file:line:col: level:
 * message" header, the source line with its number, and a caret line whose
 * `^~~~` spans the location's range on that line. Columns count tabs to the
 * next multiple of 8, as GNU tools do; the echoed line expands tabs the same
 * way so the caret lines up.
 */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

const Loc LOC_NONE = {-1, 0, 0};

void ctx_init(Ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    arena_init(&ctx->arena);
    ctx->err = stderr;
}

void ctx_free(Ctx *ctx) {
    arena_free(&ctx->arena);
    ctx->files = NULL;
    ctx->nfiles = 0;
}

int diag_add_file(Ctx *ctx, const char *path, const char *text, size_t len) {
    if (ctx->nfiles == ctx->capfiles) {
        int cap = ctx->capfiles ? ctx->capfiles * 2 : 8;
        ctx->files = arena_grow(&ctx->arena, ctx->files, (size_t)ctx->nfiles, (size_t)cap, sizeof *ctx->files);
        ctx->capfiles = cap;
    }
    SrcFile *f = arena_alloc(&ctx->arena, sizeof *f);
    f->path = arena_strdup(&ctx->arena, path);
    f->text = arena_strndup(&ctx->arena, text, len);
    f->len = (int)len;
    int n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    f->line_start = arena_array(&ctx->arena, (size_t)n + 1, sizeof *f->line_start);
    int k = 0;
    f->line_start[k++] = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n')
            f->line_start[k++] = (int)i + 1;
    f->nlines = n;
    ctx->files[ctx->nfiles] = f;
    return ctx->nfiles++;
}

int diag_load_file(Ctx *ctx, const char *path, bool report) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (report) {
            fprintf(ctx->err, "lgen: error: cannot open '%s': %s\n", path, strerror(errno));
            ctx->nerrors++;
        }
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        fputs("lgen: internal error: out of memory\n", stderr);
        abort();
    }
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            if (cap > (size_t)1 << 30) {
                break; /* larger than 1 GiB: reported below */
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                fputs("lgen: internal error: out of memory\n", stderr);
                abort();
            }
            buf = nb;
        }
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad || len >= ((size_t)1 << 30)) {
        free(buf);
        if (report) {
            fprintf(ctx->err, "lgen: error: cannot read '%s': %s\n", path,
                    bad ? "read error" : "file larger than 1 GiB");
            ctx->nerrors++;
        }
        return -1;
    }
    int id = diag_add_file(ctx, path, buf, len);
    free(buf);
    return id;
}

const SrcFile *diag_file(const Ctx *ctx, int file) {
    if (file < 0 || file >= ctx->nfiles)
        return NULL;
    return ctx->files[file];
}

static int line_of(const SrcFile *f, int off) {
    int lo = 0, hi = f->nlines - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (f->line_start[mid] <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static int col_of(const SrcFile *f, int line, int off) {
    int col = 0;
    for (int i = f->line_start[line]; i < off && i < f->len; i++)
        col = f->text[i] == '\t' ? (col / 8 + 1) * 8 : col + 1;
    return col + 1;
}

void diag_line_col(const Ctx *ctx, Loc loc, int *line, int *col) {
    const SrcFile *f = diag_file(ctx, loc.file);
    if (!f) {
        *line = *col = 0;
        return;
    }
    int off = loc.begin < 0 ? 0 : loc.begin > f->len ? f->len : loc.begin;
    int l = line_of(f, off);
    *line = l + 1;
    *col = col_of(f, l, off);
}

Loc diag_span(Loc a, Loc b) {
    if (a.file < 0)
        return b;
    if (b.file != a.file)
        return a;
    Loc r = a;
    if (b.begin < r.begin)
        r.begin = b.begin;
    if (b.end > r.end)
        r.end = b.end;
    return r;
}

static const char *level_name(DiagLevel lv) {
    return lv == DIAG_ERROR ? "error" : lv == DIAG_WARNING ? "warning" : "note";
}

static void print_excerpt(Ctx *ctx, const SrcFile *f, Loc loc) {
    int off = loc.begin < 0 ? 0 : loc.begin > f->len ? f->len : loc.begin;
    int l = line_of(f, off);
    int start = f->line_start[l];
    int stop = start;
    while (stop < f->len && f->text[stop] != '\n')
        stop++;
    if (stop > start && f->text[stop - 1] == '\r')
        stop--;
    FILE *out = ctx->err;
    /* Very long lines (generated specs) are cut to keep messages readable. */
    int shown_stop = stop - start > 400 ? start + 400 : stop;
    fprintf(out, "%5d | ", l + 1);
    int col = 0;
    for (int i = start; i < shown_stop; i++) {
        unsigned char c = (unsigned char)f->text[i];
        if (c == '\t') {
            int next = (col / 8 + 1) * 8;
            for (; col < next; col++)
                fputc(' ', out);
        } else {
            fputc(c < 32 || c == 127 ? '?' : c, out);
            col++;
        }
    }
    fputc('\n', out);
    fputs("      | ", out);
    int c0 = col_of(f, l, off) - 1;
    int end = loc.end > off ? loc.end : off + 1;
    if (end > shown_stop)
        end = shown_stop > off ? shown_stop : off + 1;
    int c1 = col_of(f, l, end) - 1;
    if (c1 <= c0)
        c1 = c0 + 1;
    for (int i = 0; i < c0; i++)
        fputc(' ', out);
    fputc('^', out);
    for (int i = c0 + 1; i < c1; i++)
        fputc('~', out);
    fputc('\n', out);
}

/* FNV-1a over the level, location and message. */
static unsigned long long diag_hash(DiagLevel lv, Loc loc, const char *msg) {
    unsigned long long h = 1469598103934665603ull;
    const int head[4] = {(int)lv, loc.file, loc.begin, loc.end};
    const unsigned char *p = (const unsigned char *)head;
    for (size_t i = 0; i < sizeof head; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    for (p = (const unsigned char *)msg; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* True if this diagnostic was printed before (then it is skipped). */
static bool diag_seen(Ctx *ctx, DiagLevel lv, Loc loc, const char *msg) {
    unsigned long long h = diag_hash(lv, loc, msg);
    for (int i = 0; i < ctx->nseen; i++)
        if (ctx->seen[i] == h)
            return true;
    if (ctx->nseen == ctx->capseen) {
        int cap = ctx->capseen ? ctx->capseen * 2 : 64;
        ctx->seen = arena_grow(&ctx->arena, ctx->seen, (size_t)ctx->nseen, (size_t)cap, sizeof *ctx->seen);
        ctx->capseen = cap;
    }
    ctx->seen[ctx->nseen++] = h;
    return false;
}

static void diag_vreport(Ctx *ctx, DiagLevel lv, Loc loc, const char *fmt, va_list ap) {
    char msg[2048];
    va_list aq;
    va_copy(aq, ap);
    vsnprintf(msg, sizeof msg, fmt, aq);
    va_end(aq);
    int lim = ctx->max_errors > 0 ? ctx->max_errors : 100;
    if (ctx->nerrors > lim && lv != DIAG_WARNING) {
        if (lv == DIAG_ERROR)
            ctx->nerrors++;
        ctx->last_suppressed = true;
        return;
    }
    if (lv == DIAG_NOTE) {
        if (ctx->last_suppressed)
            return;
    } else {
        ctx->last_suppressed = ctx->nseen < 100000 && diag_seen(ctx, lv, loc, msg);
        if (ctx->last_suppressed) {
            /* not printed again, but still counted: a pass's error count
             * (and the exit status) must not depend on what came before */
            if (lv == DIAG_ERROR)
                ctx->nerrors++;
            return;
        }
    }
    int limit = ctx->max_errors > 0 ? ctx->max_errors : 100;
    if (lv == DIAG_WARNING && ctx->no_warnings) {
        ctx->last_suppressed = true;
        return;
    }
    if (lv == DIAG_WARNING && ctx->warnings_as_errors)
        lv = DIAG_ERROR;
    if (lv == DIAG_ERROR) {
        ctx->nerrors++;
        if (ctx->nerrors == limit + 1)
            fprintf(ctx->err, "lgen: error: too many errors (%d), stopping here\n", limit);
        if (ctx->nerrors > limit)
            return;
    } else if (lv == DIAG_WARNING) {
        ctx->nwarnings++;
    } else if (ctx->nerrors > limit) {
        return;
    }
    const SrcFile *f = diag_file(ctx, loc.file);
    if (f) {
        int line, col;
        diag_line_col(ctx, loc, &line, &col);
        fprintf(ctx->err, "%s:%d:%d: %s: ", f->path, line, col, level_name(lv));
    } else {
        fprintf(ctx->err, "lgen: %s: ", level_name(lv));
    }
    fputs(msg, ctx->err);
    fputc('\n', ctx->err);
    if (f)
        print_excerpt(ctx, f, loc);
}

void diag_error(Ctx *ctx, Loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(ctx, DIAG_ERROR, loc, fmt, ap);
    va_end(ap);
}

void diag_warning(Ctx *ctx, Loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(ctx, DIAG_WARNING, loc, fmt, ap);
    va_end(ap);
}

void diag_note(Ctx *ctx, Loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(ctx, DIAG_NOTE, loc, fmt, ap);
    va_end(ap);
}

/* Edit distance with adjacent transpositions (optimal string alignment:
 * "sdg" is one edit from "sgd"), capped: more than cap returns cap + 1. */
static int edit_distance(const char *a, const char *b, int cap) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la - lb > cap || lb - la > cap || lb > 256 || la > 256)
        return cap + 1;
    int rows[3][257];
    int *pp = rows[0], *prev = rows[1], *cur = rows[2];
    for (int j = 0; j <= lb; j++)
        prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        int best = i;
        for (int j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int m = prev[j - 1] + cost;
            if (prev[j] + 1 < m)
                m = prev[j] + 1;
            if (cur[j - 1] + 1 < m)
                m = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < m)
                m = pp[j - 2] + 1;
            cur[j] = m;
            if (m < best)
                best = m;
        }
        if (best > cap)
            return cap + 1;
        int *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *diag_closest(const char *name, const char *const *candidates, int n) {
    int len = (int)strlen(name);
    int cap = len / 3 > 1 ? len / 3 : 1;
    if (cap > 4)
        cap = 4;
    const char *best = NULL;
    int bestd = cap + 1;
    for (int i = 0; i < n; i++) {
        if (!candidates[i] || strcmp(candidates[i], name) == 0)
            continue;
        int d = edit_distance(name, candidates[i], cap);
        /* A candidate that extends the name (conv2 -> conv2d) is a good guess
         * even beyond the distance limit for short names. */
        if (d > cap && strncmp(candidates[i], name, (size_t)len) == 0 && len >= 3)
            d = cap;
        if (d < bestd) {
            bestd = d;
            best = candidates[i];
        }
    }
    return best;
}

const char *diag_suggest(Ctx *ctx, Loc loc, const char *name, const char *const *candidates, int n) {
    const char *s = diag_closest(name, candidates, n);
    if (s)
        diag_note(ctx, loc, "did you mean '%s'?", s);
    return s;
}
