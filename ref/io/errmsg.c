/* errmsg.c — relabelled messages and shape strings (see errmsg.h). */
#include "errmsg.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

int afx_relabel(afx_err *e, const char *label) {
    if (!e) return -1;
    char why[AFX_ERR_LEN];
    snprintf(why, sizeof why, "%s", e->msg);
    return afx_fail(e, "%s: %s", label, why);
}

int afx_annotate(afx_err *e, const char *fmt, ...) {
    if (!e) return -1;
    char more[AFX_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(more, sizeof more, fmt, ap);
    va_end(ap);
    char why[AFX_ERR_LEN];
    snprintf(why, sizeof why, "%s", e->msg);
    return afx_fail(e, "%s%s", why, more);
}

const char *afx_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    if (!n) return buf;
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? "," : "", shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}
