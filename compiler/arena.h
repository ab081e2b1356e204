/* arena.h — the compiler's memory: one arena per compilation.
 *
 * Everything the front end builds (source text, tokens' strings, the AST, the
 * elaborated graphs) and everything ir/plan/emit build on top of it lives in
 * one Arena and is released by one arena_free at exit: nothing is freed one by
 * one, so passes can share pointers freely (chibicc's never-free policy, made
 * clean for ASan and valgrind). Allocation failure is an internal error: the
 * arena prints "lgen: internal error: out of memory" and aborts, since a
 * compiler with no memory cannot report anything useful.
 */
#ifndef LGEN_ARENA_H
#define LGEN_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
    ArenaChunk *head;   /* newest chunk first */
    size_t total;       /* bytes handed out, for statistics */
} Arena;

void arena_init(Arena *a);
void arena_free(Arena *a);

/* Zeroed memory, aligned for any type. */
void *arena_alloc(Arena *a, size_t size);
/* A zeroed array of n elements of size each (overflow-checked). */
void *arena_array(Arena *a, size_t n, size_t size);
/* A copy of old (old_n elements) in a new array of new_n elements. */
void *arena_grow(Arena *a, void *old, size_t old_n, size_t new_n, size_t size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(Arena *a, const char *fmt, va_list ap);

/* A growable array of pointers in the arena (AST lists). */
typedef struct PtrVec {
    void **items;
    int len;
    int cap;
} PtrVec;

void arena_vec_push(Arena *a, PtrVec *v, void *item);

#endif
