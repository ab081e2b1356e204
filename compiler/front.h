/* front.h — the front-end passes and commands, in the order the driver runs them.
 *
 *   int file = diag_load_file(ctx, path, true);
 *   Module *mod = parse_file(ctx, file);   // syntax; NULL only if the file is unreadable
 *   sema_check(ctx, mod);                  // names, types, ranges, imports: error count
 *   shape_check(ctx, mod);                 // graphs with shapes (ast.h): error count
 *
 * Each pass finds every error it can and returns how many; the driver stops
 * after a pass with errors. The commands (fmt, graph, summary) read the
 * results. Neighbours: lexer.l/parser.y (parse), sema.c, shapes.c, fmt.c,
 * graph.c, summary.c; emit.h takes over after shape_check.
 */
#ifndef LGEN_FRONT_H
#define LGEN_FRONT_H

#include <stdbool.h>
#include <stdio.h>

#include "ast.h"
#include "ctx.h"

/* Parses one registered source file into a Module (syntax errors reported,
 * recovered at `;`, newlines, `}` and `)`). Never NULL. */
Module *parse_file(Ctx *ctx, int file);

/* Loads and parses path (relative to the importing file's directory, then
 * ctx->import_dirs); the same file imported twice is parsed once. */
Module *parse_import(Ctx *ctx, const char *path, const char *from_path, Loc loc);

int sema_check(Ctx *ctx, Module *mod);
int shape_check(Ctx *ctx, Module *mod);

/* Runs parse, sema and shapes on path; *out gets the module (or NULL when
 * the file could not be read). Returns the error count (1 for unreadable). */
int front_run(Ctx *ctx, const char *path, Module **out);

/* Canonical layout of a source file's text (comments kept). Returns the new
 * text in the arena, or NULL after reporting a syntax error. */
char *fmt_source(Ctx *ctx, int file);

/* Graphviz DOT of every network of mod (after shape_check). */
void graph_write_dot(Ctx *ctx, Module *mod, FILE *out);

/* The per-layer table: name, op, output shape, params, FLOPs and activation
 * bytes per sample, and totals (after shape_check). */
void summary_write(Ctx *ctx, Module *mod, FILE *out);

/* `lgen ops`: Markdown reference of every op in ops.def (opsdoc.c). */
void opsdoc_write(FILE *out);
/* The shape rule of an op in words, or NULL if it has none (a bug). */
const char *opsdoc_shape_rule(lg_op_id id);

#endif
