/* arena.c — see arena.h */
#include "arena.h"

size_t arena_layout(const ArenaView *v, int n, void *mem) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        off = (off + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
        if (mem) *v[i].slot = v[i].count ? (char *)mem + off : NULL;
        off += v[i].count * v[i].elem;
    }
    return off;
}
