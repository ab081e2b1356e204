/* emit.h — code generation entry: the driver calls emit_program after the
 * front end (sema, shapes) finished without errors. It writes the generated
 * trainer (C sources, Makefile) into outdir and returns the number of errors
 * (0 on success), reporting through the context's diagnostics. */
#ifndef LGEN_EMIT_H
#define LGEN_EMIT_H

typedef struct Ctx Ctx;
typedef struct Module Module;

int emit_program(Ctx *ctx, Module *mod, const char *outdir);

/* What `lgen SPEC -o DIR --target c|cuda|all` writes: EMIT_C is NAME.c and
 * the Makefile (always); EMIT_CUDA adds NAME_cuda.c (the steps on a GPU,
 * emit_cuda.c). `--target cuda` also makes CUDA=1 the Makefile's default. */
enum { EMIT_C = 1, EMIT_CUDA = 2, EMIT_CUDA_DEFAULT = 4 };
int emit_program_targets(Ctx *ctx, Module *mod, const char *outdir, int targets);

/* The compile-time memory plan of each step (ops, activation arena bytes per
 * sample and fixed, what reuse saved), one line per step, for `lgen summary`.
 * Returns the number of errors (a spec the code generator cannot lower). */
#include <stdio.h>
int emit_plan_report(Ctx *ctx, Module *mod, FILE *out);

#endif
