/* strmap.c — open addressing with linear probing (see strmap.h). */
#include "strmap.h"

#include <stdint.h>
#include <string.h>

static uint32_t hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void *strmap_get(const StrMap *m, const char *key) {
    if (!m->cap)
        return NULL;
    for (uint32_t i = hash(key) & (uint32_t)(m->cap - 1);; i = (i + 1) & (uint32_t)(m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    }
}

static void insert(StrMap *m, const char *key, void *val) {
    for (uint32_t i = hash(key) & (uint32_t)(m->cap - 1);; i = (i + 1) & (uint32_t)(m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->len++;
            return;
        }
        if (strcmp(m->keys[i], key) == 0) {
            m->vals[i] = val;
            return;
        }
    }
}

void strmap_put(Arena *a, StrMap *m, const char *key, void *val) {
    if ((m->len + 1) * 2 > m->cap) {
        StrMap n = {0};
        n.cap = m->cap ? m->cap * 2 : 16;
        n.keys = arena_array(a, (size_t)n.cap, sizeof *n.keys);
        n.vals = arena_array(a, (size_t)n.cap, sizeof *n.vals);
        for (int i = 0; i < m->cap; i++)
            if (m->keys[i])
                insert(&n, m->keys[i], m->vals[i]);
        *m = n;
    }
    insert(m, key, val);
}
