/* files.h — the file-system helpers the readers and the command line share: read or map a whole
 * file (the readers then validate the bytes), test for a regular file, join a path, and create a
 * directory path. POSIX. */
#ifndef AFFIX_FILES_H
#define AFFIX_FILES_H

#include <stddef.h>

#include "err.h"

/* Reads the whole of path into *buf (malloc'd, caller frees; a NUL follows the *len bytes, so text
 * can be used as a C string). Fails, naming the path, when it cannot be opened ("cannot open:
 * REASON") or read ("read error"), when memory runs out, or when it holds more than max bytes
 * ("larger than the limit of MAX bytes"; SIZE_MAX: no limit). len may be NULL. */
int afx_read_file(const char *path, size_t max, char **buf, size_t *len, afx_err *e);

/* Maps path read-only. Fails (naming the path) when it cannot be opened, is not a regular file,
 * is empty or too large to map. */
int afx_map_file(const char *path, const unsigned char **data, size_t *size, afx_err *e);
void afx_unmap_file(const unsigned char *data, size_t size);

/* 1 if path names a regular file (after links), else 0 */
int afx_is_file(const char *path);

/* "DIR/NAME" into out[0..n); fails ("DIR: path too long") when it does not fit */
int afx_path_join(char *out, size_t n, const char *dir, const char *name, afx_err *e);

/* mkdir -p (0755); fine if it exists */
int afx_mkdirs(const char *dir, afx_err *e);

#endif
