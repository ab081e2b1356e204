/* main.c — the lgen driver: command line, passes in order, exit codes.
 *
 *   lgen check SPEC...        diagnostics only
 *   lgen fmt [-w] SPEC...     canonical layout (prints, or rewrites with -w)
 *   lgen graph SPEC           Graphviz DOT of the networks
 *   lgen summary SPEC         per-layer table: shapes, parameters, FLOPs, memory
 *   lgen SPEC -o DIR          code generation (front end, then emit_program)
 *
 * Exit status: 0 success, 1 errors in a spec, 2 usage errors (STYLE.md §2).
 * The passes live in their own files (front.h); this file only dispatches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "emit.h"
#include "front.h"

static void usage(FILE *out) {
    fputs("usage: lgen [options] SPEC -o DIR     generate a C trainer from SPEC into DIR\n"
          "       lgen check [options] SPEC...   report every diagnostic; exit 1 on errors\n"
          "       lgen fmt [-w] SPEC...          print the canonical layout (-w: rewrite in place)\n"
          "       lgen graph [options] SPEC      Graphviz DOT of the networks (| dot -Tpng)\n"
          "       lgen summary [options] SPEC    per-layer shapes, parameters, FLOPs, activation memory\n"
          "       lgen ops                       the reference of every built-in op (Markdown)\n"
          "       lgen --help | --version\n"
          "\n"
          "options:\n"
          "  -o DIR            output directory of code generation\n"
          "  --target T        what code generation writes: c (NAME.c and a Makefile; the\n"
          "                    default), cuda (also NAME_cuda.c, the steps on a GPU, and\n"
          "                    a Makefile that builds with CUDA by default), all (both\n"
          "                    sources; `make CUDA=1` builds the GPU trainer)\n"
          "  -D NAME=VALUE     set an hparam's compile-time value (its default and any\n"
          "                    structural use such as a layer width)\n"
          "  -I DIR            search DIR for imported .lmod files (after the importing\n"
          "                    file's directory)\n"
          "  -Werror           treat warnings as errors\n"
          "  -w                (fmt) rewrite files in place; (others) suppress warnings\n"
          "  --max-errors N    stop after N errors (default 100)\n"
          "\n"
          "Diagnostics go to stderr as file:line:col: error: message, with the source\n"
          "line and a caret. Exit status: 0 ok, 1 errors in a spec, 2 usage error.\n"
          "The language is described in specs/LANGUAGE.md.\n",
          out);
}

typedef enum { CMD_GEN, CMD_CHECK, CMD_FMT, CMD_GRAPH, CMD_SUMMARY } Command;

static int usage_error(const char *fmt, const char *arg) {
    fputs("lgen: error: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'lgen --help' for more information.\n", stderr);
    return 2;
}

static int run_fmt(Ctx *ctx, const char *path, int write) {
    int file = diag_load_file(ctx, path, true);
    if (file < 0)
        return 1;
    char *text = fmt_source(ctx, file);
    if (!text)
        return 1;
    if (!write) {
        fputs(text, stdout);
        return 0;
    }
    const SrcFile *f = diag_file(ctx, file);
    if (strcmp(f->text, text) == 0)
        return 0;
    char *tmp = arena_printf(&ctx->arena, "%s.fmt-tmp", path);
    FILE *out = fopen(tmp, "wb");
    if (!out) {
        fprintf(stderr, "lgen: error: cannot write '%s': %s\n", tmp, strerror(errno));
        return 1;
    }
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, out) != n;
    bad |= fclose(out) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "lgen: error: cannot write '%s': %s\n", path, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    Ctx ctx;
    ctx_init(&ctx);
    Command cmd = CMD_GEN;
    int argi = 1;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "ops") == 0) {
        opsdoc_write(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lgen %s\n", LGEN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "check") == 0)
        cmd = CMD_CHECK, argi = 2;
    else if (strcmp(argv[1], "fmt") == 0)
        cmd = CMD_FMT, argi = 2;
    else if (strcmp(argv[1], "graph") == 0)
        cmd = CMD_GRAPH, argi = 2;
    else if (strcmp(argv[1], "summary") == 0)
        cmd = CMD_SUMMARY, argi = 2;

/* A usage error after the option tables exist: free them and exit 2. */
#define USAGE(...)                  \
    do {                            \
        rc = usage_error(__VA_ARGS__); \
        goto done;                  \
    } while (0)
    const char *outdir = NULL;
    int write = 0;
    int targets = EMIT_C;
    const char **specs = calloc((size_t)argc, sizeof *specs);
    ctx.overrides = calloc((size_t)argc, sizeof *ctx.overrides);
    ctx.import_dirs = calloc((size_t)argc, sizeof *ctx.import_dirs);
    if (!specs || !ctx.overrides || !ctx.import_dirs) {
        fputs("lgen: internal error: out of memory\n", stderr);
        abort();
    }
    int nspecs = 0;
    int rc = 0;
    for (int i = argi; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0) {
            if (++i >= argc)
                USAGE("option '%s' needs a directory", a);
            outdir = argv[i];
        } else if (strncmp(a, "-o", 2) == 0 && a[2]) {
            outdir = a + 2;
        } else if (strcmp(a, "-D") == 0 || (strncmp(a, "-D", 2) == 0 && a[2])) {
            const char *def = a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
            if (!def)
                USAGE("option '%s' needs NAME=VALUE", a);
            const char *eq = strchr(def, '=');
            if (!eq || eq == def)
                USAGE("option -D takes NAME=VALUE, found '%s'", def);
            HparamOverride *o = &ctx.overrides[ctx.noverrides++];
            o->name = arena_strndup(&ctx.arena, def, (size_t)(eq - def));
            o->value = eq + 1;
        } else if (strcmp(a, "-I") == 0 || (strncmp(a, "-I", 2) == 0 && a[2])) {
            const char *dir = a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
            if (!dir)
                USAGE("option '%s' needs a directory", a);
            ctx.import_dirs[ctx.nimport_dirs++] = dir;
        } else if (strcmp(a, "--target") == 0 || strncmp(a, "--target=", 9) == 0) {
            const char *t = a[8] == '=' ? a + 9 : (++i < argc ? argv[i] : NULL);
            if (!t)
                USAGE("option '%s' needs c, cuda or all", a);
            if (strcmp(t, "c") == 0)
                targets = EMIT_C;
            else if (strcmp(t, "cuda") == 0)
                targets = EMIT_C | EMIT_CUDA | EMIT_CUDA_DEFAULT;
            else if (strcmp(t, "all") == 0)
                targets = EMIT_C | EMIT_CUDA;
            else
                USAGE("--target takes c, cuda or all, found '%s'", t);
        } else if (strcmp(a, "-Werror") == 0) {
            ctx.warnings_as_errors = true;
        } else if (strcmp(a, "-w") == 0) {
            if (cmd == CMD_FMT)
                write = 1;
            else
                ctx.no_warnings = true;
        } else if (strcmp(a, "--max-errors") == 0) {
            if (++i >= argc)
                USAGE("option '%s' needs a number", a);
            char *end;
            long n = strtol(argv[i], &end, 10);
            if (*end || n < 1 || n > 1000000)
                USAGE("--max-errors takes a number from 1 to 1000000, found '%s'", argv[i]);
            ctx.max_errors = (int)n;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            goto done;
        } else if (a[0] == '-' && a[1]) {
            USAGE("unknown option '%s'", a);
        } else {
            specs[nspecs++] = a;
        }
    }
    if (nspecs == 0)
        USAGE("%s", "no spec given");
    if (cmd == CMD_GEN && !outdir)
        USAGE("no output directory for '%s'; use -o DIR (or 'lgen check' to only check it)", specs[0]);
    if ((cmd == CMD_GEN || cmd == CMD_GRAPH || cmd == CMD_SUMMARY) && nspecs > 1)
        USAGE("this command takes one spec; found another, '%s'", specs[1]);

    if (cmd == CMD_FMT) {
        for (int i = 0; i < nspecs; i++)
            rc |= run_fmt(&ctx, specs[i], write);
    } else {
        for (int i = 0; i < nspecs; i++) {
            Module *mod = NULL;
            int errs = front_run(&ctx, specs[i], &mod);
            if (errs) {
                rc = 1;
                continue;
            }
            if (cmd == CMD_GRAPH)
                graph_write_dot(&ctx, mod, stdout);
            else if (cmd == CMD_SUMMARY) {
                summary_write(&ctx, mod, stdout);
                /* a program (not a library of blocks): the memory plan too */
                if (mod->nsteps > 0) {
                    printf("\nmemory plan of the generated trainer (one arena per step, reused by lifetime):\n");
                    if (emit_plan_report(&ctx, mod, stdout) != 0)
                        rc = 1;
                }
            }
            else if (cmd == CMD_GEN && emit_program_targets(&ctx, mod, outdir, targets) != 0)
                rc = 1;
        }
        for (int i = 0; i < ctx.noverrides; i++)
            if (!ctx.overrides[i].used) {
                fprintf(ctx.err, "lgen: error: -D %s: no hparam of that name\n", ctx.overrides[i].name);
                rc = 1;
            }
    }
    if (ctx.nerrors)
        rc = 1;
done:
    free(specs);
    free(ctx.overrides);
    free(ctx.import_dirs);
    ctx_free(&ctx);
    return rc;
}
