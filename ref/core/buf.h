/* buf.h — a growing byte buffer: append bytes, strings or printf output; the contents stay
 * NUL-terminated.
 *
 * What this is: the one buffer the writers build their text in (safetensors headers, JSON, SVG,
 * predictions), the tokenizer builds its pieces in, and the task layer builds prompts in (in
 * ref/core so that every layer may include it). A failed growth sets oom and makes every
 * later append a no-op, so a writer may append freely and check once at the end, or check each
 * return value. Zero-initialize it (afx_buf b = {0}); reset it for reuse with b.n = 0.
 * What this is not: a string library (no insert, no search); libc only, no I/O.
 */
#ifndef AFFIX_BUF_H
#define AFFIX_BUF_H

#include <stddef.h>

typedef struct {
    char *p;      /* n bytes, then a NUL (NULL until the first append) */
    size_t n, cap;
    int oom;      /* an append failed for lack of memory: p holds what came before */
} afx_buf;

/* Each returns 0, or -1 when out of memory (now or at an earlier append). */
int afx_buf_put(afx_buf *b, const void *s, size_t n);
int afx_buf_puts(afx_buf *b, const char *s);
int afx_buf_printf(afx_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Frees the bytes and zeroes b. */
void afx_buf_free(afx_buf *b);

#endif
