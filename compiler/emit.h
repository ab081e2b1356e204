/* emit.h — code generation entry: the driver calls emit_program after the
 * front end (sema, shapes) finished without errors. It writes the generated
 * trainer (C sources, Makefile) into outdir and returns the number of errors
 * (0 on success), reporting through the context's diagnostics. */
#ifndef LGEN_EMIT_H
#define LGEN_EMIT_H

typedef struct Ctx Ctx;
typedef struct Module Module;

int emit_program(Ctx *ctx, Module *mod, const char *outdir);

#endif
