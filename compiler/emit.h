/* emit.h — code generation entry: the driver calls emit_program after the
 * front end (sema, shapes) finished without errors. It writes the generated
 * trainer (C sources, Makefile) into outdir and returns the number of errors
 * (0 on success), reporting through the context's diagnostics. */
#ifndef LGEN_EMIT_H
#define LGEN_EMIT_H

typedef struct Ctx Ctx;
typedef struct Module Module;

int emit_program(Ctx *ctx, Module *mod, const char *outdir);

/* The compile-time memory plan of each step (ops, activation arena bytes per
 * sample and fixed, what reuse saved), one line per step, for `lgen summary`.
 * Returns the number of errors (a spec the code generator cannot lower). */
#include <stdio.h>
int emit_plan_report(Ctx *ctx, Module *mod, FILE *out);

#endif
