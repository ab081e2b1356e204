/* lex.h — state shared by the flex lexer (lexer.l) and the parser (parser.y).
 *
 * The lexer turns a registered source file into tokens with byte-range
 * locations. Newlines end statements, so the lexer emits NL tokens, but not
 * inside parentheses or brackets, not after a token that cannot end a
 * statement (an operator, `,`, `=`, `{`, `(`, `->`, `:`), not twice in a row,
 * and not before a line that starts with `|>`, `else` or `then` (so pipelines
 * and else branches may continue on the next line). Comments do not reach the
 * parser; they are recorded in LexState.comments for fmt.
 */
#ifndef LGEN_LEX_H
#define LGEN_LEX_H

#include <stdbool.h>

#include "ctx.h"

typedef struct LexComment {
    Loc loc;
} LexComment;

typedef struct LexState {
    Ctx *ctx;
    int file;
    const char *text;
    int len;
    int offset;          /* byte offset of the next character flex reads */
    int depth;           /* open ( and [ */
    int last;            /* last token returned (0 at start) */
    bool keep_newlines;  /* fmt: every newline is a token boundary it sees itself */
    LexComment *comments;
    int ncomments;
    int capcomments;
    int errors;          /* lexical errors reported */
    int syntax_errors;   /* errors the parser reported */
    /* top-level items collected while parsing, copied into the Module at the end */
    PtrVec networks, datasets, steps, imports, hparams;
    Loc hparams_loc, data_loc, optimizer_loc, scheduler_loc, trainer_loc, model_loc;
} LexState;

#endif
