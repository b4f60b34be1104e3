/* st_write.c — the atomic, deterministic safetensors writer (see st_write.h).
 *
 * What this is: a header built in memory (sorted names, JSON escaped by hand, space padding), the
 * data streamed through a small conversion buffer with write(2), and the temporary-file protocol
 * (O_EXCL create, fsync, rename, fsync of the directory; unlink on every failure path).
 * What this is not: a JSON library (names and metadata are the only strings written), or a reader.
 */
#define _POSIX_C_SOURCE 200809L

#include "st_write.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24, "IEEE binary32 float");
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53, "IEEE binary64 double");

/* a JSON string literal: '"' and '\' escaped, control characters as \b \f \n \r \t or \u00XX
 * (serde_json's choices); every other byte as is (UTF-8 passes through) */
static void put_json_string(afx_buf *b, const char *s) {
    afx_buf_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"': afx_buf_puts(b, "\\\""); break;
        case '\\': afx_buf_puts(b, "\\\\"); break;
        case '\b': afx_buf_puts(b, "\\b"); break;
        case '\f': afx_buf_puts(b, "\\f"); break;
        case '\n': afx_buf_puts(b, "\\n"); break;
        case '\r': afx_buf_puts(b, "\\r"); break;
        case '\t': afx_buf_puts(b, "\\t"); break;
        default:
            if (*c < 0x20) afx_buf_printf(b, "\\u%04x", *c);
            else afx_buf_put(b, c, 1);
        }
    }
    afx_buf_put(b, "\"", 1);
}

/* ---- element conversion -------------------------------------------------------------------------- */

static void st32(unsigned char *p, uint32_t u) {
    p[0] = (unsigned char)u, p[1] = (unsigned char)(u >> 8), p[2] = (unsigned char)(u >> 16), p[3] = (unsigned char)(u >> 24);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* float32 -> bfloat16, round to nearest even; NaN stays a (quiet) NaN */
static uint16_t bf16_of(float f) {
    uint32_t u = f32_bits(f);
    if (isnan(f)) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* element i of t as a double (exact for both sources) */
static double elem(const st_wtensor *t, size_t i) {
    return t->src == ST_F64 ? ((const double *)t->data)[i] : (double)((const float *)t->data)[i];
}

/* encode n elements from index i0 into out; -1 (message) on a value F32 cannot hold */
static int encode(const st_wtensor *t, st_dtype dtype, size_t i0, size_t n, unsigned char *out, const char *path,
                  afx_err *e) {
    for (size_t k = 0; k < n; k++) {
        double v = elem(t, i0 + k);
        if (dtype == ST_F64) {
            uint64_t u;
            memcpy(&u, &v, sizeof u);
            st32(out + 8 * k, (uint32_t)u);
            st32(out + 8 * k + 4, (uint32_t)(u >> 32));
            continue;
        }
        if (isfinite(v) && fabs(v) > FLT_MAX) /* (only from F64) the cast to float would be undefined */
            return afx_fail(e, "%s: tensor '%.200s': element %zu = %g is outside the range of %s", path, t->name,
                            i0 + k, v, st_dtype_name(dtype));
        float f = (float)v;
        if (dtype == ST_F32) {
            st32(out + 4 * k, f32_bits(f));
        } else {
            uint16_t h = bf16_of(f);
            out[2 * k] = (unsigned char)h, out[2 * k + 1] = (unsigned char)(h >> 8);
        }
    }
    return 0;
}

/* ---- files ----------------------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* directory part of path ("." when none) */
static void dir_of(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, n, ".");
    else if (slash == path) snprintf(dir, n, "/");
    else snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

int afx_sync_dir(const char *dir, afx_err *e) {
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return afx_fail(e, "%s: cannot open the directory to sync it: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* some file systems cannot fsync a directory (EINVAL): the rename is still done */
    if (rc != 0 && err != EINVAL) return afx_fail(e, "%s: cannot sync the directory: %s", dir, strerror(err));
    return 0;
}

/* create the temporary file next to path; returns the fd or -1 */
static int open_tmp(AfxPending *p, const char *path, afx_err *e) {
    memset(p, 0, sizeof *p);
    if (strlen(path) + 48 >= sizeof p->tmp) return afx_fail(e, "%.200s...: path too long", path);
    snprintf(p->path, sizeof p->path, "%s", path);
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path + 1) : 0;
    const char *base = path + dlen;
    if (!*base) return afx_fail(e, "%s: not a file name", path);
    /* the pid and the clock make collisions unlikely; O_EXCL makes them harmless */
    unsigned long nonce = (unsigned long)time(NULL) ^ ((unsigned long)clock() << 16);
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(p->tmp, sizeof p->tmp, "%.*s.%s.tmp-%ld-%lx", dlen, path, base, (long)getpid(),
                 (nonce + (unsigned long)attempt) & 0xffffffu);
        int fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            p->active = 1;
            return fd;
        }
        if (errno != EEXIST) {
            char dir[4096];
            dir_of(path, dir, sizeof dir);
            return afx_fail(e, "%s: cannot create a file in %s: %s", path, dir, strerror(errno));
        }
    }
    return afx_fail(e, "%s: cannot find a free temporary name", path);
}

/* fsync + close fd; on failure also remove the temporary file */
static int finish_tmp(AfxPending *p, int fd, afx_err *e) {
    if (fsync(fd) != 0) {
        int err = errno;
        close(fd);
        afx_pending_abort(p);
        return afx_fail(e, "%s: cannot flush to disk: %s", p->path, strerror(err));
    }
    if (close(fd) != 0) {
        int err = errno;
        afx_pending_abort(p);
        return afx_fail(e, "%s: cannot close: %s", p->path, strerror(err));
    }
    return 0;
}

void afx_pending_abort(AfxPending *p) {
    if (p->active) unlink(p->tmp);
    p->active = 0;
}

int afx_pending_commit(AfxPending *p, afx_err *e) {
    if (!p->active) return 0;
    if (rename(p->tmp, p->path) != 0) {
        int err = errno;
        afx_pending_abort(p);
        return afx_fail(e, "%s: cannot replace the file: %s", p->path, strerror(err));
    }
    p->active = 0;
    char dir[4096];
    dir_of(p->path, dir, sizeof dir);
    return afx_sync_dir(dir, e);
}

int afx_text_prepare(AfxPending *p, const char *path, const char *bytes, size_t len, afx_err *e) {
    int fd = open_tmp(p, path, e);
    if (fd < 0) return -1;
    if (write_all(fd, bytes, len) != 0) {
        int err = errno;
        close(fd);
        afx_pending_abort(p);
        return afx_fail(e, "%s: write failed: %s", path, strerror(err));
    }
    return finish_tmp(p, fd, e);
}

int afx_text_write(const char *path, const char *bytes, size_t len, afx_err *e) {
    AfxPending p;
    if (afx_text_prepare(&p, path, bytes, len, e)) return -1;
    return afx_pending_commit(&p, e);
}

/* ---- safetensors ----------------------------------------------------------------------------------- */

static int cmp_tensor(const void *a, const void *b) {
    return strcmp((*(const st_wtensor *const *)a)->name, (*(const st_wtensor *const *)b)->name);
}
static int cmp_index(const void *a, const void *b, const char *const *keys) {
    return strcmp(keys[*(const size_t *)a], keys[*(const size_t *)b]);
}

/* metadata indices sorted by key (insertion sort: a handful of keys) */
static void sort_meta(size_t *ix, size_t n, const char *const *keys) {
    for (size_t i = 0; i < n; i++) ix[i] = i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cmp_index(&ix[j - 1], &ix[j], keys) > 0; j--) {
            size_t t = ix[j];
            ix[j] = ix[j - 1];
            ix[j - 1] = t;
        }
}

int st_prepare(AfxPending *p, const char *path, st_dtype dtype, const st_wtensor *t, size_t n,
               const char *const *keys, const char *const *vals, size_t n_meta, afx_err *e) {
    memset(p, 0, sizeof *p);
    if (dtype != ST_F32 && dtype != ST_F64 && dtype != ST_BF16)
        return afx_fail(e, "%s: cannot write dtype %s (F32, F64 or BF16)", path, st_dtype_name(dtype));
    const st_wtensor **order = malloc((n ? n : 1) * sizeof *order);
    size_t *mix = malloc((n_meta ? n_meta : 1) * sizeof *mix);
    afx_buf h = {0};
    int rc = -1, fd = -1;
    unsigned char *chunk = NULL;
    if (!order || !mix) {
        afx_fail(e, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = &t[i];
        if (!t[i].name || !*t[i].name || !strcmp(t[i].name, "__metadata__") || t[i].ndim < 0 ||
            t[i].ndim > ST_MAX_DIMS || (t[i].src != ST_F32 && t[i].src != ST_F64)) {
            afx_fail(e, "%s: tensor %zu ('%.200s') has a bad name, ndim or source type", path, i,
                     t[i].name ? t[i].name : "(null)");
            goto done;
        }
    }
    qsort(order, n, sizeof *order, cmp_tensor);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(order[i - 1]->name, order[i]->name)) {
            afx_fail(e, "%s: tensor '%.200s' is given twice", path, order[i]->name);
            goto done;
        }
    sort_meta(mix, n_meta, keys);
    for (size_t i = 1; i < n_meta; i++)
        if (!strcmp(keys[mix[i - 1]], keys[mix[i]])) {
            afx_fail(e, "%s: metadata key '%.200s' is given twice", path, keys[mix[i]]);
            goto done;
        }

    // header: {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...}
    size_t esize = st_dtype_size(dtype), off = 0;
    afx_buf_put(&h, "{", 1);
    if (n_meta) {
        afx_buf_puts(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) afx_buf_put(&h, ",", 1);
            put_json_string(&h, keys[mix[i]]);
            afx_buf_put(&h, ":", 1);
            put_json_string(&h, vals[mix[i]]);
        }
        afx_buf_put(&h, "}", 1);
    }
    for (size_t i = 0; i < n; i++) {
        const st_wtensor *w = order[i];
        size_t numel = 1;
        for (int d = 0; d < w->ndim; d++) {
            if (w->shape[d] && numel > SIZE_MAX / w->shape[d]) {
                afx_fail(e, "%s: tensor '%.200s' is too large", path, w->name);
                goto done;
            }
            numel *= w->shape[d];
        }
        if (n_meta || i) afx_buf_put(&h, ",", 1);
        put_json_string(&h, w->name);
        afx_buf_puts(&h, ":{\"dtype\":");
        put_json_string(&h, st_dtype_name(dtype));
        afx_buf_puts(&h, ",\"shape\":[");
        for (int d = 0; d < w->ndim; d++) afx_buf_printf(&h, "%s%zu", d ? "," : "", w->shape[d]);
        afx_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + numel * esize);
        off += numel * esize;
    }
    afx_buf_put(&h, "}", 1);
    while (!h.oom && h.n % 8) afx_buf_put(&h, " ", 1);
    if (h.oom) {
        afx_fail(e, "%s: out of memory for the header", path);
        goto done;
    }

    // the file: 8-byte little-endian header length, header, data
    fd = open_tmp(p, path, e);
    if (fd < 0) goto done;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    enum { CHUNK = 8192 };
    chunk = malloc(CHUNK * 8);
    if (!chunk) {
        afx_fail(e, "%s: out of memory", path);
        goto fail;
    }
    if (write_all(fd, len8, 8) || write_all(fd, h.p, h.n)) goto io_fail;
    for (size_t i = 0; i < n; i++) {
        const st_wtensor *w = order[i];
        size_t numel = 1;
        for (int d = 0; d < w->ndim; d++) numel *= w->shape[d];
        for (size_t i0 = 0; i0 < numel; i0 += CHUNK) {
            size_t k = numel - i0 < CHUNK ? numel - i0 : CHUNK;
            if (encode(w, dtype, i0, k, chunk, path, e)) goto fail;
            if (write_all(fd, chunk, k * esize)) goto io_fail;
        }
    }
    rc = finish_tmp(p, fd, e);
    fd = -1;
    goto done;
io_fail:
    afx_fail(e, "%s: write failed: %s", path, strerror(errno));
fail:
    if (fd >= 0) close(fd);
    fd = -1;
    afx_pending_abort(p);
done:
    free(order);
    free(mix);
    afx_buf_free(&h);
    free(chunk);
    return rc;
}

int st_write(const char *path, st_dtype dtype, const st_wtensor *t, size_t n, const char *const *keys,
             const char *const *vals, size_t n_meta, afx_err *e) {
    AfxPending p;
    if (st_prepare(&p, path, dtype, t, n, keys, vals, n_meta, e)) return -1;
    return afx_pending_commit(&p, e);
}

int afx_remove_stale_tmp(const char *dir, const char *const *names, int n_names, int *removed, afx_err *e) {
    if (removed) *removed = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : afx_fail(e, "%s: cannot list the directory: %s", dir, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        const char *nm = de->d_name;
        for (int i = 0; i < n_names; i++) {
            size_t k = strlen(names[i]);
            if (nm[0] != '.' || strncmp(nm + 1, names[i], k) || strncmp(nm + 1 + k, ".tmp-", 5)) continue;
            char *end;
            long pid = strtol(nm + 1 + k + 5, &end, 10);
            if (*end != '-' || pid <= 0) continue;                                  /* not our naming */
            if (pid == (long)getpid() || (kill((pid_t)pid, 0) == 0 && pid != 1)) continue; /* a live writer's */
            char path[4096];
            if (snprintf(path, sizeof path, "%s/%s", dir, nm) >= (int)sizeof path) continue;
            if (unlink(path) != 0 && errno != ENOENT) rc = afx_fail(e, "%s: cannot remove: %s", path, strerror(errno));
            else if (removed) (*removed)++;
            break;
        }
    }
    closedir(d);
    return rc;
}
