/* safetensors.h — a validating reader for the safetensors format.
 *
 * The format: an 8-byte little-endian u64 header length N, N bytes of JSON header, then the data
 * region. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
 * (offsets relative to the data region) and may hold "__metadata__", an object of strings.
 *
 * What this is: a reader that trusts nothing in the file. st_parse checks the whole header before
 * anything is used (dtype known, shape of non-negative integers, offsets inside the data region,
 * byte size == numel * dtype size, no two tensors overlapping, no duplicate names, metadata values
 * all strings) with overflow-safe arithmetic, and never reads outside the buffer it was given.
 * Tensor data is not copied: st_tensor.data points into the buffer (or the mmap of st_open), with no
 * alignment promised; the st_to_* converters decode little-endian bytes one element at a time.
 * What this is not: a writer, and not a loader of sharded models (see weights.h for the model).
 * Errors follow err.h: 0 / -1 and one line "LABEL: what is wrong" in the caller's afx_err.
 */
#ifndef AFFIX_SAFETENSORS_H
#define AFFIX_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "real.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB, the limit of the reference implementation */

typedef enum { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

typedef struct {
    char *name;                    /* NUL-terminated copy of the header key */
    st_dtype dtype;
    int ndim;                      /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];    /* shape[0..ndim-1] */
    size_t numel;                  /* product of the shape (1 for a scalar) */
    const unsigned char *data;     /* nbytes of little-endian elements, any alignment */
    size_t nbytes;                 /* numel * st_dtype_size(dtype) */
} st_tensor;

typedef struct {
    st_tensor *tensors;            /* n_tensors entries, sorted by name (strcmp) */
    size_t n_tensors;
    char **meta_keys, **meta_vals; /* n_meta pairs of "__metadata__", in header order */
    size_t n_meta;
    /* private */
    void *map_;                    /* the mmap of st_open, NULL after st_parse */
    size_t map_size_;
} st_file;

/* Parse a safetensors file held in buf[0..size). The buffer must outlive f (tensors point into it).
 * label names the source in messages ("LABEL: ..."). On failure f is left empty (st_close is
 * harmless). This is also the fuzzing entry point: any bytes give 0 or -1, never a bad read. */
int st_parse(st_file *f, const unsigned char *buf, size_t size, const char *label, afx_err *e);

/* Map path read-only and st_parse it; messages are labelled with the path. */
int st_open(st_file *f, const char *path, afx_err *e);

/* Free what st_parse/st_open made and zero f. Safe on a zeroed or already-closed st_file. */
void st_close(st_file *f);

const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
const char *st_meta(const st_file *f, const char *key);       /* NULL if absent */

size_t st_dtype_size(st_dtype d);          /* bytes per element */
const char *st_dtype_name(st_dtype d);     /* "F64", "BF16", ... */
int st_dtype_is_float(st_dtype d);         /* F64 F32 F16 BF16 */

/* Decode all numel elements of t into out (out has t->numel entries). Messages name the tensor.
 * st_to_f64:  any dtype (integers and BOOL widened; I64 beyond 2^53 rounds).
 * st_to_real: floating dtypes only; with float `real`, a finite value beyond FLT_MAX is an error.
 * st_to_int:  integer dtypes and BOOL only, each value checked to fit an int (BOOL must be 0/1). */
int st_to_f64(const st_tensor *t, double *out, afx_err *e);
int st_to_real(const st_tensor *t, real *out, afx_err *e);
int st_to_int(const st_tensor *t, int *out, afx_err *e);

/* The half-precision decoders, exact (every f16 and bf16 value is a double). */
double st_f16_to_f64(uint16_t h);
double st_bf16_to_f64(uint16_t h);

#endif
