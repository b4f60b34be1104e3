/* arena.c — see arena.h */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

size_t arena_layout(const ArenaView *v, int n, void *mem) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        off = (off + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
        if (mem) *v[i].slot = v[i].count ? (char *)mem + off : NULL;
        off += v[i].count * v[i].elem;
    }
    return off;
}

void *arena_alloc(size_t bytes) {
    size_t n = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    void *p = aligned_alloc(ARENA_ALIGN, n ? n : ARENA_ALIGN);
    if (p) memset(p, 0, n);
    return p;
}
