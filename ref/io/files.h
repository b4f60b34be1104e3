/* files.h — the two file-system helpers the readers and the command line share: map a whole file
 * read-only (the readers then validate the bytes), and create a directory path. POSIX. */
#ifndef AFFIX_FILES_H
#define AFFIX_FILES_H

#include <stddef.h>

#include "err.h"

/* Maps path read-only. Fails (naming the path) when it cannot be opened, is not a regular file,
 * is empty or too large to map. */
int afx_map_file(const char *path, const unsigned char **data, size_t *size, afx_err *e);
void afx_unmap_file(const unsigned char *data, size_t size);

/* mkdir -p (0755); fine if it exists */
int afx_mkdirs(const char *dir, afx_err *e);

#endif
