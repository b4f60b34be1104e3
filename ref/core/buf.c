/* buf.c — the growing byte buffer (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* room for n more bytes and the NUL */
static int reserve(afx_buf *b, size_t n) {
    if (b->oom) return -1;
    if (n < b->cap - b->n) return 0; /* b->n + n + 1 <= b->cap */
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n <= n) {
        if (cap > (size_t)-1 / 2) return b->oom = 1, -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return b->oom = 1, -1;
    b->p = p, b->cap = cap;
    return 0;
}

int afx_buf_put(afx_buf *b, const void *s, size_t n) {
    if (reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

int afx_buf_puts(afx_buf *b, const char *s) { return afx_buf_put(b, s, strlen(s)); }

int afx_buf_printf(afx_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n)) return b->oom = 1, -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
    return 0;
}

void afx_buf_free(afx_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
