/* emit.c — code generation driver: `lgen SPEC -o DIR`.
 *
 * Runs the back half of the compiler on a checked Module: ir_lower (AST
 * graphs to IR), ad_backward (the backward pass, at compile time),
 * plan_program (fusion and the activation arena), then prints DIR/NAME.c
 * (emit_c.c, emit_tables.c) and DIR/Makefile from templates/Makefile.in.
 * Files are rewritten only when their bytes change, and nothing in them
 * depends on time or pointers: the same spec gives the same bytes.
 *
 * Finding the runtime: lgen records where it lives. Run from the source tree
 * (build/lgen), the generated Makefile points at <src>/runtime/include and the
 * liblgen.a of the build directory lgen was built in; installed (PREFIX/bin/lgen next to
 * PREFIX/share/lgen/templates), at PREFIX/include and PREFIX/lib. So `make -C
 * DIR` works without arguments either way; LGEN_INCLUDE, LGEN_LIBDIR or
 * LGEN_PREFIX on the make command line override it.
 */
#include "emit.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autodiff.h"
#include "emit_cuda.h"
#include "emit_internal.h"
#include "plan.h"

#ifndef LGEN_SRCDIR
#define LGEN_SRCDIR "."
#endif
#ifndef LGEN_BUILDDIR
#define LGEN_BUILDDIR LGEN_SRCDIR "/build"
#endif

/* The link line of the runtime, from the top-level Makefile's RUNTIME_LIBS. */
#ifdef LGEN_RUNTIME_LIBS
#define RUNTIME_LIBS LGEN_RUNTIME_LIBS
#else
#define RUNTIME_LIBS "-ldnnl -lgomp -lopenblas -ljansson -lcurl -larchive -lxml2 -lpng -ljpeg -lpthread -lmvec -lm -lcrypto -lz"
#endif

/* ---- sha256 (FIPS 180-4), for the spec hash checkpoints carry ----------- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void emit_sha256_hex(const void *data, size_t n, char hex[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        sha256_block(h, p + i);
    unsigned char last[128] = {0};
    size_t rest = n - i;
    memcpy(last, p + i, rest);
    last[rest] = 0x80;
    size_t blocks = rest + 9 > 64 ? 2 : 1;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++)
        last[blocks * 64 - 1 - k] = (unsigned char)(bits >> (8 * k));
    for (size_t k = 0; k < blocks; k++)
        sha256_block(h, last + 64 * k);
    for (int k = 0; k < 8; k++)
        snprintf(hex + 8 * k, 9, "%08x", h[k]);
}

/* ---- files ------------------------------------------------------------------ */

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            buf = realloc(buf, cap);
        }
        size_t k = fread(buf + n, 1, 4096, f);
        n += k;
        if (k < 4096)
            break;
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

/* Writes text to path unless the file already holds exactly these bytes. */
static int write_if_changed(Ctx *ctx, const char *path, const char *text, size_t n) {
    size_t old_n;
    char *old = read_text(path, &old_n);
    int same = old && old_n == n && memcmp(old, text, n) == 0;
    free(old);
    if (same)
        return 0;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0) {
        fprintf(ctx->err, "lgen: error: cannot write '%s': %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int make_dirs(const char *dir) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return -1;
            *s = '/';
        }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return -1;
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where the templates and the runtime are (see the header comment). */
static void find_paths(char *templates, char *include, char *libdir, size_t size) {
    char exe[PATH_MAX] = "";
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0)
        exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    char installed[PATH_MAX + 32];
    snprintf(installed, sizeof installed, "%s/../share/lgen/templates", exe);
    const char *env = getenv("LGEN_TEMPLATES");
    char real[PATH_MAX];
    if (k > 0 && is_dir(installed) && realpath(exe, real)) {
        char *up = strrchr(real, '/');
        if (up)
            *up = 0;
        real[PATH_MAX - 32] = 0; /* room for the suffixes */
        snprintf(templates, size, "%.4000s/share/lgen/templates", real);
        snprintf(include, size, "%.4000s/include", real);
        snprintf(libdir, size, "%.4000s/lib", real);
    } else {
        snprintf(templates, size, "%s/templates", LGEN_SRCDIR);
        snprintf(include, size, "%s/runtime/include", LGEN_SRCDIR);
        snprintf(libdir, size, "%s", LGEN_BUILDDIR);
    }
    if (env && *env)
        snprintf(templates, size, "%s", env);
}

/* Replaces @KEY@ placeholders; keys[i] by vals[i]. */
static char *fill_template(const char *text, const char *const *keys, const char *const *vals, int n) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (const char *s = text; *s;) {
        int done = 0;
        if (*s == '@')
            for (int i = 0; i < n; i++) {
                size_t kl = strlen(keys[i]);
                if (!strncmp(s + 1, keys[i], kl) && s[1 + kl] == '@') {
                    fputs(vals[i], f);
                    s += kl + 2;
                    done = 1;
                    break;
                }
            }
        if (!done)
            fputc(*s++, f);
    }
    fclose(f);
    return buf;
}

/* ---- the driver --------------------------------------------------------------- */

static const char *tpl_keys[] = {"NAME", "VERSION", "SPEC", "HASH", "INCLUDE", "LIBDIR", "LIBS", "CUDA"};

void emit_banner(Emit *E) {
    char templates[PATH_MAX], include[PATH_MAX], libdir[PATH_MAX];
    find_paths(templates, include, libdir, sizeof templates);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/banner.c.in", templates);
    char *text = read_text(path, NULL);
    if (!text) {
        fprintf(E->f, "/* %s.c — generated by lgen %s from %s. Edit the spec, not this file. */\n",
                E->lower, LGEN_VERSION, E->mod->path);
        return;
    }
    const char *vals[] = {E->lower, LGEN_VERSION, E->mod->path, E->spec_hash, "", "", "", ""};
    char *b = fill_template(text, tpl_keys, vals, 8);
    fputs(b, E->f);
    free(b);
    free(text);
}

static int prepare(Ctx *ctx, Module *mod, IrProgram *p) {
    int errors = ir_lower(ctx, mod, p);
    if (errors)
        return errors;
    for (int i = 0; i < IR_STEP_COUNT; i++)
        if (p->graphs[i].present)
            plan_rewrite(&p->graphs[i]);
    errors = ad_backward(p, ctx->err);
    ctx->nerrors += errors;
    if (errors)
        return errors;
    plan_program(p);
    return 0;
}

int emit_program(Ctx *ctx, Module *mod, const char *outdir) {
    return emit_program_targets(ctx, mod, outdir, EMIT_C);
}

int emit_program_targets(Ctx *ctx, Module *mod, const char *outdir, int targets) {
    IrProgram p;
    int errors = prepare(ctx, mod, &p);
    if (errors) {
        ir_program_free(&p);
        return errors;
    }
    Emit E = {.ctx = ctx, .mod = mod, .p = &p};
    char *lower = ir_strdup(&p, p.model);
    for (char *c = lower; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            *c = '_';
    char *upper = ir_strdup(&p, lower);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    E.lower = lower;
    E.prefix = upper;
    char hex[65];
    const SrcFile *src = diag_file(ctx, mod->file);
    emit_sha256_hex(src ? src->text : "", src ? (size_t)src->len : 0, hex);
    E.spec_hash = hex;

    if (make_dirs(outdir)) {
        fprintf(ctx->err, "lgen: error: cannot create '%s': %s\n", outdir, strerror(errno));
        ir_program_free(&p);
        return 1;
    }
    char *cbuf = NULL;
    size_t clen = 0;
    E.f = open_memstream(&cbuf, &clen);
    errors = emit_c_file(&E);
    fclose(E.f);
    char path[PATH_MAX + 64];
    if (!errors) {
        snprintf(path, sizeof path, "%s/%s.c", outdir, lower);
        errors += write_if_changed(ctx, path, cbuf, clen);
    }
    free(cbuf);
    /* the CUDA half reads the names emit_c_file gave the values and parameters */
    if (!errors && (targets & EMIT_CUDA)) {
        E.f = open_memstream(&cbuf, &clen);
        errors = emit_cuda_file(&E);
        fclose(E.f);
        snprintf(path, sizeof path, "%s/%s_cuda.c", outdir, lower);
        if (!errors)
            errors += write_if_changed(ctx, path, cbuf, clen);
        free(cbuf);
    }
    free(E.dims);
    free(E.param_names);

    char templates[PATH_MAX], include[PATH_MAX], libdir[PATH_MAX];
    find_paths(templates, include, libdir, sizeof templates);
    snprintf(path, sizeof path, "%s/Makefile.in", templates);
    char *tpl = read_text(path, NULL);
    if (!tpl) {
        fprintf(ctx->err, "lgen: error: cannot read the template '%s': %s\n", path, strerror(errno));
        errors++;
    } else if (!errors) {
        const char *vals[] = {lower, LGEN_VERSION, mod->path, hex, include, libdir, RUNTIME_LIBS,
                              targets & EMIT_CUDA_DEFAULT ? "1" : "0"};
        char *mk = fill_template(tpl, tpl_keys, vals, 8);
        snprintf(path, sizeof path, "%s/Makefile", outdir);
        errors += write_if_changed(ctx, path, mk, strlen(mk));
        free(mk);
    }
    free(tpl);
    ctx->nerrors += errors;
    ir_program_free(&p);
    return errors;
}

int emit_plan_report(Ctx *ctx, Module *mod, FILE *out) {
    IrProgram p;
    int errors = prepare(ctx, mod, &p);
    if (!errors)
        for (int i = 0; i < IR_STEP_COUNT; i++) {
            IrGraph *g = &p.graphs[i];
            if (!g->present)
                continue;
            int live = 0, backward = 0;
            for (int k = 0; k < g->nops; k++)
                if (!g->ops[k]->dead) {
                    live++;
                    backward += g->ops[k]->backward;
                }
            fprintf(out, "%s step: %d ops (%d backward), activation arena %zu bytes per sample + %zu bytes"
                         " (%zu per sample without reuse; %d fused, %d in place)\n",
                    g->name, live, backward, g->arena_per_sample * 4,
                    g->arena_fixed * 4, g->naive_per_sample * 4, g->nfused, g->ninplace);
        }
    fprintf(out, "parameters: %zu floats (%zu trainable)\n", p.param_floats, p.grad_floats);
    ir_program_free(&p);
    return errors;
}

void emit_transpose_view(const IrValue *x, int d0, int d1, size_t v[5]) {
    int nd = x->ndim;
    d0 = d0 < 0 ? d0 + nd : d0;
    d1 = d1 < 0 ? d1 + nd : d1;
    if (d0 > d1) {
        int t = d0;
        d0 = d1, d1 = t;
    }
    v[0] = v[2] = v[4] = 1;
    for (int i = 0; i < d0; i++)
        v[0] *= (size_t)x->dim[i];
    for (int i = d0 + 1; i < d1; i++)
        v[2] *= (size_t)x->dim[i];
    for (int i = d1 + 1; i < nd; i++)
        v[4] *= (size_t)x->dim[i];
    v[1] = (size_t)x->dim[d0];
    v[3] = (size_t)x->dim[d1];
}
