/* files.c — map a file, create directories (see files.h). */
#define _POSIX_C_SOURCE 200809L
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int afx_map_file(const char *path, const unsigned char **data, size_t *size, afx_err *e) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return afx_fail(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return afx_fail(e, "%s: cannot stat: %s", path, strerror(err));
    }
    const char *bad = !S_ISREG(sb.st_mode) ? "not a regular file" : sb.st_size <= 0 ? "empty file"
                      : (uintmax_t)sb.st_size > SIZE_MAX ? "file too large to map" : NULL;
    if (bad) {
        close(fd);
        return afx_fail(e, "%s: %s", path, bad);
    }
    size_t n = (size_t)sb.st_size;
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
