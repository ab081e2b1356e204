/* ctx.h — the compilation context every pass receives.
 *
 * No globals: the arena, the source files, the diagnostic counters and the
 * command-line options travel in one Ctx (STYLE.md §1). A pass has the shape
 * `int pass(Ctx *ctx, Module *mod)` and returns the number of errors it found.
 */
#ifndef LGEN_CTX_H
#define LGEN_CTX_H

#include <stdbool.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"

#define LGEN_VERSION "0.1.0"

/* An hparam override from the command line (`-D name=value`): changes the
 * compile-time value of an hparam (the default the generated flag gets, and
 * the value structural uses such as a layer width are fixed to). */
typedef struct HparamOverride {
    const char *name;
    const char *value; /* .lmod literal syntax: 3, 0.5, true, "s", resnet50 */
    bool used;
} HparamOverride;

typedef struct Ctx {
    Arena arena;
    FILE *err;            /* where diagnostics go (stderr; tests use a memstream) */
    SrcFile **files;      /* registered sources; a Loc's file indexes this */
    int nfiles;
    int capfiles;
    int nerrors;
    int nwarnings;
    int max_errors;       /* stop reporting after this many errors (0 = 100) */
    bool warnings_as_errors;
    bool no_warnings;
    bool color;           /* reserved; output is plain text */
    const char **import_dirs; /* searched after the importing file's directory */
    int nimport_dirs;
    HparamOverride *overrides;
    int noverrides;
    int max_depth;        /* nesting limit for parser/sema recursion (0 = 256) */
    /* diagnostics already printed (a block called 16 times reports once) */
    unsigned long long *seen;
    int nseen, capseen;
    bool last_suppressed; /* notes follow their error or warning */
} Ctx;

void ctx_init(Ctx *ctx);
void ctx_free(Ctx *ctx);

#endif
