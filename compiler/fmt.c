/* fmt.c — `lgen fmt`: the canonical layout of a .lmod file, comments kept.
 *
 * Input: a registered source file that parses without errors. Output: new
 * text. The formatter works on the token stream, not the AST, so nothing a
 * user wrote can be lost: it keeps every token and comment in order and
 * decides only the whitespace between them —
 *   - line breaks where the source has them (at most one blank line in a
 *     row, none at the start or end of the file; `} else` joined);
 *   - indentation of 4 spaces for each line that left `{`, `(` or `[` open
 *     (brackets opened on one line share one level), plus one level for
 *     a line that continues a statement (starting with `|>`, `then` or an
 *     operator, or following a line that ended in one);
 *   - one space between tokens except inside `( )`, `[ ]`, before `,` `:`
 *     `;` `.` and after unary operators, calls and tensor types (`f(x)`,
 *     `f32[1, 28]`), around `..` none; two spaces before a trailing comment.
 * Since the output depends only on the tokens and on how many line breaks
 * separate them (capped at two), formatting formatted text changes nothing:
 * fmt is idempotent by construction.
 */
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "lex.h"
#include "parser.h"

typedef void *yyscan_t;
int lmod_lex_init_extra(LexState *extra, yyscan_t *scanner);
int lmod_lex_destroy(yyscan_t scanner);
void *lmod__scan_bytes(const char *bytes, int len, yyscan_t scanner);
int lmod_lex(LMOD_STYPE *lval, Loc *lloc, yyscan_t scanner);

typedef struct Item {
    int tok;   /* token kind, or 0 for a comment */
    int begin, end;
} Item;

typedef struct Buf {
    char *p;
    size_t len, cap;
} Buf;

static void put(Ctx *ctx, Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = arena_grow(&ctx->arena, b->p, b->len, cap, 1);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static bool ends_value(int t) {
    return t == IDENT || t == INT || t == FLOAT || t == STRING || t == KW_TRUE || t == KW_FALSE || t == ')' ||
           t == ']';
}

static bool is_binop(int t) {
    switch (t) {
    case '+': case '*': case '/': case '%': case '<': case '>': case '=': case '?':
    case PIPE: case EQ: case NE: case LE: case GE: case AND: case OR: case IDIV: case KW_THEN:
        return true;
    default:
        return false;
    }
}

/* A line starting with t continues the previous statement. */
static bool starts_continuation(int t) {
    return t == PIPE || t == KW_THEN || (is_binop(t) && t != '=');
}

/* A line ending with t continues on the next line. */
static bool ends_continuation(int t) {
    return is_binop(t) || t == ARROW || t == ':' || t == '-' || t == '!' || t == DOTDOT;
}

static bool space_between(int p, int pp, int c, int ternary) {
    if (c == ')' || c == ']' || c == ',' || c == ';' || c == '.' || c == DOTDOT)
        return false;
    if (p == '(' || p == '[' || p == '.' || p == DOTDOT || p == '!')
        return false;
    if (p == '-' && !ends_value(pp))
        return false; /* unary minus */
    if (c == '(')
        return !(p == IDENT || p == KW_SPLIT || p == ')' || p == ']');
    if (c == '[')
        return !(p == IDENT || p == ')' || p == ']');
    if (c == ':')
        return ternary > 0;
    return true;
}

char *fmt_source(Ctx *ctx, int file) {
    /* Only a file that lexes and parses cleanly is reformatted: a dropped
     * stray character would otherwise vanish from the user's file. */
    Module *m = parse_file(ctx, file);
    if (m->has_errors || m->has_lex_errors)
        return NULL;
    const SrcFile *f = diag_file(ctx, file);
    LexState lx = {0};
    lx.ctx = ctx;
    lx.file = file;
    lx.text = f->text;
    lx.len = f->len;
    yyscan_t scanner;
    if (lmod_lex_init_extra(&lx, &scanner) != 0) {
        fputs("lgen: internal error: cannot start the lexer\n", stderr);
        abort();
    }
    lmod__scan_bytes(f->text, f->len, scanner);
    Item *items = NULL;
    int n = 0, cap = 0;
    LMOD_STYPE val;
    Loc loc;
    int t;
    while ((t = lmod_lex(&val, &loc, scanner)) != 0) {
        if (t == NL)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            items = arena_grow(&ctx->arena, items, (size_t)n, (size_t)cap, sizeof *items);
        }
        items[n++] = (Item){t, loc.begin, loc.end};
    }
    lmod_lex_destroy(scanner);
    /* Merge the comments in by position. */
    Item *all = arena_array(&ctx->arena, (size_t)(n + lx.ncomments) + 1, sizeof *all);
    int na = 0, i = 0, k = 0;
    while (i < n || k < lx.ncomments) {
        if (k < lx.ncomments && (i >= n || lx.comments[k].loc.begin < items[i].begin)) {
            all[na++] = (Item){0, lx.comments[k].loc.begin, lx.comments[k].loc.end};
            k++;
        } else {
            all[na++] = items[i++];
        }
    }
    Buf out = {0};
    put(ctx, &out, "", 0);
    int depth = 0, ternary = 0;
    /* bracket stack: whether each open bracket added an indent level */
    bool *adds = arena_array(&ctx->arena, (size_t)na + 1, sizeof *adds);
    int *open_line = arena_array(&ctx->arena, (size_t)na + 1, sizeof *open_line);
    int levels = 0, line_no = 0;
    int prev = 0, prevprev = 0; /* last two tokens (comments excluded) */
    int prev_end = 0;
    bool prev_comment = false;
    int line_first_depth = 0;
    bool line_continues = false;
    (void)line_first_depth;
    for (int j = 0; j < na; j++) {
        Item *it = &all[j];
        int nl = 0;
        for (int p = prev_end; p < it->begin; p++)
            nl += f->text[p] == '\n';
        if (j == 0)
            nl = 0;
        if (it->tok == KW_ELSE && prev == '}' && !prev_comment)
            nl = 0;
        if (nl > 0 || prev_comment) {
            if (nl == 0)
                nl = 1; /* a comment runs to the end of its line */
            put(ctx, &out, "\n\n", nl > 1 ? 2 : 1);
            line_no++;
            int d = levels;
            if ((it->tok == '}' || it->tok == ')' || it->tok == ']') && depth > 0 && adds[depth - 1])
                d--;
            bool cont = it->tok && (starts_continuation(it->tok) || (line_continues && !prev_comment));
            if (it->tok == 0 && line_continues)
                cont = true;
            d += cont;
            for (int s = 0; s < d; s++)
                put(ctx, &out, "    ", 4);
        } else if (j > 0) {
            if (it->tok == 0)
                put(ctx, &out, "  ", 2);
            else if (space_between(prev, prevprev, it->tok, ternary))
                put(ctx, &out, " ", 1);
        }
        /* the token or comment itself (comments without trailing blanks) */
        int e = it->end;
        if (it->tok == 0)
            while (e > it->begin && (f->text[e - 1] == ' ' || f->text[e - 1] == '\t' || f->text[e - 1] == '\r'))
                e--;
        put(ctx, &out, f->text + it->begin, (size_t)(e - it->begin));
        if (it->tok) {
            switch (it->tok) {
            case '{': case '(': case '[':
                adds[depth] = !(depth > 0 && open_line[depth - 1] == line_no);
                open_line[depth] = line_no;
                levels += adds[depth];
                depth++;
                break;
            case '}': case ')': case ']':
                if (depth > 0) {
                    depth--;
                    levels -= adds[depth];
                }
                break;
            case '?': ternary++; break;
            case ':': if (ternary > 0) ternary--; break;
            default: break;
            }
            prevprev = prev;
            prev = it->tok;
            /* does the next line continue this statement? (the lexer's rule) */
            line_continues = ends_continuation(it->tok) || (it->tok == ',' && depth == 0);
        }
        prev_comment = it->tok == 0;
        prev_end = it->end;
    }
    if (na > 0)
        put(ctx, &out, "\n", 1);
    return out.p;
}
