/* arena.h — named views over one allocation: one table declares them, the same table sizes the
 * arena and binds it, so the size and the carving cannot disagree. Used by the activations and
 * their gradients (llama.c), the decode cache (decode.c) and every adapter's activations.
 *
 *   ArenaView v[] = {{(void **)&a->x, n_x, sizeof(real)}, ...};
 *   size_t bytes = arena_layout(v, n, NULL);   // how much
 *   arena_layout(v, n, mem);                   // bind: *slot = its place in mem (NULL when empty)
 * Every view starts on a 64-byte boundary.
 */
#ifndef AFFIX_ARENA_H
#define AFFIX_ARENA_H

#include <stddef.h>

#define ARENA_ALIGN 64

typedef struct {
    void **slot;  /* where the view's pointer goes */
    size_t count; /* elements */
    size_t elem;  /* bytes per element */
} ArenaView;

size_t arena_layout(const ArenaView *v, int n, void *mem);
/* bytes of zeroed memory aligned to ARENA_ALIGN (NULL when out of memory); release with free() */
void *arena_alloc(size_t bytes);

#endif
