/* errmsg.h — the pieces of the readers' error messages (err.h): a lower layer's message named by
 * the file it came from, a note appended to a message, and a shape as "[2,3]". */
#ifndef AFFIX_ERRMSG_H
#define AFFIX_ERRMSG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* e's message becomes "LABEL: <its message>". Returns -1, like afx_fail. */
int afx_relabel(afx_err *e, const char *label);

/* e's message becomes "<its message><the formatted text>", e.g. " (line 12)". Returns -1. */
int afx_annotate(afx_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* "[2,3]" (ndim sizes, no spaces; "[]" for a scalar) into buf[0..n), cut short if it does not
 * fit; returns buf. */
const char *afx_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

#endif
