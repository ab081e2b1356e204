/* strmap.h — a string-keyed hash map in the arena (names -> pointers).
 *
 * Name lookups in bodies of 100,000 statements must not be linear scans;
 * sema's name walk and the shape elaborator's scopes use this. Keys are not
 * copied (they live in the arena already); values are void pointers.
 */
#ifndef LGEN_STRMAP_H
#define LGEN_STRMAP_H

#include "arena.h"

typedef struct StrMap {
    const char **keys;
    void **vals;
    int cap; /* a power of two, or 0 */
    int len;
} StrMap;

void *strmap_get(const StrMap *m, const char *key);
void strmap_put(Arena *a, StrMap *m, const char *key, void *val);

#endif
