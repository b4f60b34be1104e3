/* files.h — the file-system helpers the readers and the command line share: read or map a whole
 * file (the readers then validate the bytes), test for a regular file, join a path, and create a
 * directory path. POSIX. */
#ifndef AFFIX_FILES_H
#define AFFIX_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

/* Overflow-safe size arithmetic for sizes computed from untrusted numbers (file headers, configs,
 * command-line counts): *out = a * b (a + b), or -1 when it does not fit in size_t. */
static inline int afx_size_mul(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}
static inline int afx_size_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}
/* a * b * c ..., SIZE_MAX on overflow (n factors) */
static inline size_t afx_size_prod(const size_t *f, int n) {
    size_t p = 1;
    for (int i = 0; i < n; i++)
        if (afx_size_mul(p, f[i], &p)) return SIZE_MAX;
    return p;
}

/* The physical memory of this machine in bytes (SIZE_MAX when unknown). */
size_t afx_phys_mem(void);
/* 0 if `bytes` fits in the machine's memory; else "WHAT needs X GiB, more than this machine's
 * memory (Y GiB)". bytes == SIZE_MAX stands for an overflowed size. */
int afx_mem_check(size_t bytes, const char *what, afx_err *e);

/* fopen(path, "rb") of a regular file only: a FIFO, device or directory is refused ("not a regular
 * file") without blocking in open(2). NULL with e set on failure. */
FILE *afx_fopen_regular(const char *path, afx_err *e);

/* Reads the whole of path into *buf (malloc'd, caller frees; a NUL follows the *len bytes, so text
 * can be used as a C string). Fails, naming the path, when it cannot be opened ("cannot open:
 * REASON") or read ("read error"), when memory runs out, or when it holds more than max bytes
 * ("larger than the limit of MAX bytes"; SIZE_MAX: no limit), or is not a regular file (a FIFO or a
 * device is refused without blocking). len may be NULL. */
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
