/* files.c — read or map a file, test and join paths, create directories (see files.h). */
#define _POSIX_C_SOURCE 200809L
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* open(2) that never blocks on a FIFO or a device (O_NONBLOCK), then refuses what is not a regular
 * file; the descriptor is switched back to blocking reads. Returns the fd, or -1 with e set. */
static int open_regular(const char *path, size_t *size, afx_err *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return afx_fail(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return afx_fail(e, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return afx_fail(e, "%s: not a regular file", path);
    }
    if ((uintmax_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return afx_fail(e, "%s: file too large", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size) *size = (size_t)sb.st_size;
    return fd;
}

FILE *afx_fopen_regular(const char *path, afx_err *e) {
    int fd = open_regular(path, NULL, e);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int err = errno;
        close(fd);
        afx_fail(e, "%s: cannot open: %s", path, strerror(err));
    }
    return f;
}

int afx_read_file(const char *path, size_t max, char **buf, size_t *len, afx_err *e) {
    *buf = NULL;
    if (len) *len = 0;
    FILE *f = afx_fopen_regular(path, e);
    if (!f) return -1;
    char *p = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - n < 2) { /* room for one more byte and the NUL */
            size_t nc = cap ? 2 * cap : (size_t)1 << 16;
            char *q = nc > cap ? realloc(p, nc) : NULL;
            if (!q) {
                rc = afx_fail(e, "%s: out of memory", path);
                break;
            }
            p = q, cap = nc;
        }
        size_t room = cap - n - 1, left = max - n; /* n <= max here: read at most one byte past max */
        if (left < SIZE_MAX && room > left + 1) room = left + 1;
        size_t got = fread(p + n, 1, room, f);
        n += got;
        if (n > max) {
            rc = afx_fail(e, "%s: larger than the limit of %zu bytes", path, max);
            break;
        }
        if (got < room) {
            if (ferror(f)) rc = afx_fail(e, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(p);
        return -1;
    }
    p[n] = 0;
    *buf = p;
    if (len) *len = n;
    return 0;
}

int afx_map_file(const char *path, const unsigned char **data, size_t *size, afx_err *e) {
    *data = NULL;
    *size = 0;
    size_t n = 0;
    int fd = open_regular(path, &n, e);
    if (fd < 0) return -1;
    if (n == 0) {
        close(fd);
        return afx_fail(e, "%s: empty file", path);
    }
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (m == MAP_FAILED) return afx_fail(e, "%s: cannot mmap %zu bytes: %s", path, n, strerror(err));
    *data = m;
    *size = n;
    return 0;
}

void afx_unmap_file(const unsigned char *data, size_t size) {
    if (data) munmap((void *)data, size);
}

int afx_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int afx_path_join(char *out, size_t n, const char *dir, const char *name, afx_err *e) {
    int k = snprintf(out, n, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= n) return afx_fail(e, "%s: path too long", dir);
    return 0;
}

int afx_mkdirs(const char *dir, afx_err *e) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return afx_fail(e, "%s: path too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return afx_fail(e, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return afx_fail(e, "%s: cannot create: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return afx_fail(e, "%s: not a directory", buf);
    return 0;
}

size_t afx_phys_mem(void) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psize <= 0) return SIZE_MAX;
    size_t b;
    if (afx_size_mul((size_t)pages, (size_t)psize, &b)) return SIZE_MAX;
    return b;
}

int afx_mem_check(size_t bytes, const char *what, afx_err *e) {
    size_t have = afx_phys_mem();
    if (bytes == SIZE_MAX || bytes > have)
        return afx_fail(e, "%s needs %s%.3g GiB, more than this machine's memory (%.3g GiB)", what,
                        bytes == SIZE_MAX ? "more than " : "", (double)bytes / 1073741824.0, (double)have / 1073741824.0);
    return 0;
}
