/* diag.h — source files, locations and diagnostics.
 *
 * A location (Loc) is a file id plus a byte range [begin, end) in that file's
 * text, as jq does; line and column are computed from a line table only when
 * a diagnostic is printed. Output follows gcc/clang on GNU-standard terms
 * (lines and columns start at 1, tabs stop every 8):
 *
 *     specs/lenet.lmod:14:14: error: unknown op 'conv2'
 *        14 |     x = x |> conv2(6, kernel: 5, padding: 2) |> relu
 *           |              ^~~~~
 *     specs/lenet.lmod:14:14: note: did you mean 'conv2d'?
 *
 * Every pass reports through diag_error/diag_warning/diag_note and counts on
 * the Ctx (ctx->nerrors); the driver stops after a pass that found errors.
 * Messages start lower case and quote names.
 */
#ifndef LGEN_DIAG_H
#define LGEN_DIAG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct Ctx Ctx;

/* A source range. file < 0 means "no location" (command line, internal). */
typedef struct Loc {
    int file;
    int begin; /* byte offset of the first character */
    int end;   /* byte offset past the last character (end >= begin) */
} Loc;

extern const Loc LOC_NONE;

typedef struct SrcFile {
    const char *path; /* as given on the command line or resolved for an import */
    const char *text; /* NUL-terminated contents (may also contain NULs) */
    int len;
    int *line_start;  /* byte offset of each line's first character */
    int nlines;
} SrcFile;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

/* Registers text (copied into the arena) as a source file; returns its id. */
int diag_add_file(Ctx *ctx, const char *path, const char *text, size_t len);
/* Reads path and registers it; -1 (after an "lgen: error: cannot open" line
 * when report is true) if it cannot be read. */
int diag_load_file(Ctx *ctx, const char *path, bool report);
const SrcFile *diag_file(const Ctx *ctx, int file);

/* 1-based line and column (tabs to the next multiple of 8, plus 1). */
void diag_line_col(const Ctx *ctx, Loc loc, int *line, int *col);
/* A location spanning a and b (same file). */
Loc diag_span(Loc a, Loc b);

void diag_error(Ctx *ctx, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Ctx *ctx, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Ctx *ctx, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "did you mean 'x'?" note at loc when one of the n candidates is close to
 * name (edit distance at most a third of the length, at least 1). Returns the
 * suggestion or NULL. */
const char *diag_suggest(Ctx *ctx, Loc loc, const char *name, const char *const *candidates, int n);
/* The closest candidate within the threshold above, or NULL; no output. */
const char *diag_closest(const char *name, const char *const *candidates, int n);

#endif
