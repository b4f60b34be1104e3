/* err.h — how libaffix reports errors.
 *
 * The library never prints and never calls exit(). A function that can fail returns 0 on success
 * and -1 on failure, and writes one line (no trailing newline) into a caller-owned afx_err. Only the
 * command-line program prints it ("affix: error: <msg>") and chooses the exit code.
 */
#ifndef AFFIX_ERR_H
#define AFFIX_ERR_H

#define AFX_ERR_LEN 512

typedef struct {
    char msg[AFX_ERR_LEN];
} afx_err;

/* Format a message into e (if e is not NULL); always returns -1 so callers can `return afx_fail(...)`. */
int afx_fail(afx_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
