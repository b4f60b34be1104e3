/* atomic.h — write a whole file so that readers see either the old file or the complete new one,
 * never a half-written one: a temporary file in the same directory, fsync, rename over the target,
 * fsync of the directory. On failure the temporary file is removed and the target is untouched. */
#ifndef AFFIX_ATOMIC_H
#define AFFIX_ATOMIC_H

#include <stddef.h>

#include "err.h"

int afx_write_file_atomic(const char *path, const void *data, size_t n, afx_err *e);
/* mkdir -p for one directory path (0755); fine if it exists */
int afx_mkdirs(const char *dir, afx_err *e);

#endif
