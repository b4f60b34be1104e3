/* st_write.h — write safetensors files (and small text files) atomically, with deterministic bytes.
 *
 * What this is: the writer twin of safetensors.h. A file is never half-written: the bytes go to a
 * temporary file in the target's directory (".NAME.tmp-PID-N", created O_EXCL), which is flushed
 * with fsync and then renamed over the target; the directory is fsync'ed after the rename. On any
 * failure the temporary file is removed and an existing target is left untouched. (A process killed
 * in the middle leaves its ".NAME.tmp-*" file behind; nothing reads those.)
 * Deterministic bytes: tensors sorted by name (strcmp), data in that order with no gaps, header
 * `{"__metadata__":{...},"NAME":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}` with no
 * whitespace, metadata keys sorted, then padded with spaces to a multiple of 8 bytes (as the format
 * allows, and as the reference `safetensors` package does). For F32 tensors and one metadata pair
 * this is byte for byte what Python's `safetensors.torch.save_file` writes.
 * Two-phase use: st_prepare / afx_text_prepare write and fsync the temporary file only; then
 * afx_pending_commit renames it into place (afx_pending_abort removes it instead). A caller that
 * writes several files (peft.c: tensors + config) prepares all of them before committing any.
 * What this is not: a writer of sharded models, or of integer tensors.
 * Errors follow err.h: 0 / -1 and one line "PATH: what is wrong".
 */
#ifndef AFFIX_ST_WRITE_H
#define AFFIX_ST_WRITE_H

#include <stddef.h>

#include "err.h"
#include "safetensors.h"

#define ST_WRITE_DEFAULT_DTYPE ST_F32

/* one tensor to write: numel = product of shape[0..ndim-1] elements held in memory as `src` */
typedef struct {
    const char *name;
    int ndim;                    /* 0..ST_MAX_DIMS (0: a scalar) */
    size_t shape[ST_MAX_DIMS];
    const void *data;
    st_dtype src;                /* ST_F32 (float) or ST_F64 (double) */
} st_wtensor;

/* the `src` of a real array (ST_F32 in the float build, ST_F64 in the f64 build) */
#define ST_REAL (sizeof(real) == sizeof(double) ? ST_F64 : ST_F32)

/* a prepared (written, fsync'ed) temporary file waiting to be renamed over its target */
typedef struct {
    char tmp[4096];
    char path[4096];
    int active;
} AfxPending;

/* Write tensors t[0..n) converted to `dtype` (ST_F32, ST_F64 or ST_BF16) plus string metadata
 * (keys[i] -> vals[i], n_meta pairs; none may be "__metadata__"-like duplicates) to path, atomically.
 * Conversions: F32 -> F64 exact; F64 -> F32 rounds to nearest (a finite value beyond the F32 range
 * is an error, not an infinity); -> BF16 goes through F32, then rounds to nearest even (PyTorch's
 * float32 -> bfloat16). Duplicate tensor names are refused. */
int st_write(const char *path, st_dtype dtype, const st_wtensor *t, size_t n, const char *const *keys,
             const char *const *vals, size_t n_meta, afx_err *e);

/* The same, stopping before the rename: on success *p holds the temporary file (commit or abort it). */
int st_prepare(AfxPending *p, const char *path, st_dtype dtype, const st_wtensor *t, size_t n,
               const char *const *keys, const char *const *vals, size_t n_meta, afx_err *e);

/* A text (or any byte) file: bytes[0..len) to a temporary file next to path. */
int afx_text_prepare(AfxPending *p, const char *path, const char *bytes, size_t len, afx_err *e);
int afx_text_write(const char *path, const char *bytes, size_t len, afx_err *e); /* prepare + commit */

/* Rename the temporary file over its target and fsync the directory. On failure the temporary file
 * is removed and the target is whatever it was. Harmless on an inactive p. */
int afx_pending_commit(AfxPending *p, afx_err *e);
/* Remove the temporary file (if any). Never fails. */
void afx_pending_abort(AfxPending *p);

/* fsync a directory (after renames inside it). */
int afx_sync_dir(const char *dir, afx_err *e);

/* Removes the ".NAME.tmp-PID-N" files that a process killed while writing NAME into dir left
 * behind (names[0..n_names)), except those of a live process; *removed (may be NULL) counts them.
 * A missing dir is fine. */
int afx_remove_stale_tmp(const char *dir, const char *const *names, int n_names, int *removed, afx_err *e);

#endif
