/* emit_internal.h — what the emitter's files share (emit.c drives,
 * emit_c.c prints the steps, emit_tables.c prints the trainer and data
 * tables). Not used outside compiler/emit*.c. */
#ifndef LGEN_EMIT_INTERNAL_H
#define LGEN_EMIT_INTERNAL_H

#include <stdio.h>

#include "ast.h"
#include "ctx.h"
#include "ir.h"

/* One static const dims struct of the generated file. */
typedef struct EmitDims {
    const char *type, *name, *body, *file;
    int line;
    int is_conv, is_linear; /* main() prepares their kernels (lg_conv2d_prepare, lg_linear_prepare) */
} EmitDims;

typedef struct Emit {
    Ctx *ctx;
    Module *mod;
    IrProgram *p;
    FILE *f;
    const char *lower;         /* "lenet": C prefix of functions and tables */
    const char *prefix;        /* "LENET": prefix of constants */
    const char *spec_hash;     /* hex sha256 of the spec source */
    const char **param_names;  /* enum constant of each parameter offset */
    const char *step_fn[IR_STEP_COUNT];
    EmitDims *dims;
    int ndims, capdims;
    /* detection: file-scope declarations the steps use (config structs,
     * anchor tables, the VOC evaluators) and workspace sizes for main() */
    const char **decls;
    int ndecls, capdecls;
    const char **ws_exprs;
    int nws, capws;
    int detect;                /* some step calls lgen/detect.h */
} Emit;

void emit_banner(Emit *E);
int emit_c_file(Emit *E);
int emit_tables(Emit *E);
/* Hex sha256 of n bytes into hex[65]. */
void emit_sha256_hex(const void *data, size_t n, char hex[65]);
/* transpose(x, d0, d1) over x's per-sample dims (negative ones count from
 * the end): x viewed as [outer, dim a, mid, dim b, inner] with a < b; v[0]
 * leaves the batch out (the callers print "n * outer"). */
void emit_transpose_view(const IrValue *x, int d0, int d1, size_t v[5]);

#endif
