/* gguf.h — a validating reader for GGUF files (versions 2 and 3, little-endian).
 *
 * The format (ggml's docs/gguf.md): "GGUF", u32 version, u64 tensor count, u64 metadata count;
 * the metadata key/value pairs (key = u64 length + bytes; u32 value type; the value, where an
 * array is u32 element type + u64 length + elements and a string is u64 length + bytes); the tensor
 * infos (name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset); padding up to the alignment
 * (metadata general.alignment, u32, default 32); the data section, where each tensor starts at its
 * offset (a multiple of the alignment). ne[0] is the fastest-moving dimension: a matrix stored with
 * ne = (in, out) is W[out][in] in row-major terms.
 *
 * What this is: a reader that trusts nothing in the file. gguf_parse checks everything before
 * returning (truncation anywhere, counts and lengths larger than the rest of the file can hold,
 * unknown value or tensor types, nested arrays, NUL bytes in keys or names, duplicate keys or
 * tensor names, dims overflow, offsets misaligned / out of range / overlapping), never reads
 * outside the buffer it was given, and copies only keys and tensor names. Values, strings and
 * tensor data point into the buffer (or the mmap of gguf_open), with no alignment promised.
 * gguf_to_real dequantizes F32, F16, BF16 and Q8_0; any other tensor type is refused by name.
 * What this is not: a writer, or a model loader (model.h maps the llama.* keys and tensors).
 * Errors follow err.h: 0 / -1 and one line "LABEL: what is wrong" in the caller's afx_err.
 */
#ifndef AFFIX_GGUF_H
#define AFFIX_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "real.h"

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_KEY_LEN 65535  /* the spec's limit on key length */
#define GGUF_MAX_NAME_LEN 255   /* ggml itself allows 63; anything longer is refused */

/* metadata value types (the numbers are the file's) */
typedef enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6,
    GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12
} gguf_vtype;

/* the ggml tensor types this reader can convert (the file may name others: see gguf_type_name) */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_BF16 = 30 };

typedef struct {
    const char *p; /* into the buffer, NOT NUL-terminated */
    size_t n;
} gguf_str;

typedef struct {
    char *key;                    /* NUL-terminated copy */
    gguf_vtype type;              /* a scalar type, GGUF_STRING, or GGUF_ARRAY */
    gguf_vtype elem;              /* arrays: the element type (never GGUF_ARRAY); else == type */
    uint64_t n;                   /* arrays: the element count; else 1 */
    const unsigned char *data;    /* the value's bytes (numbers: little-endian; strings: the u64
                                     length then the bytes; arrays: the first element) */
    gguf_str *strs;               /* arrays of strings: the n strings; NULL otherwise */
} gguf_kv;

typedef struct {
    char *name;                   /* NUL-terminated copy */
    int n_dims;                   /* 0..GGUF_MAX_DIMS */
    int64_t ne[GGUF_MAX_DIMS];    /* ne[0] fastest; 1 beyond n_dims */
    uint32_t type;                /* ggml type id */
    uint64_t offset;              /* from the start of the data section */
    size_t numel;                 /* product of ne */
    size_t nbytes;                /* numel / block size * block bytes */
    const unsigned char *data;    /* nbytes, any alignment */
} gguf_tensor;

typedef struct {
    uint32_t version;             /* 2 or 3 */
    gguf_kv *kvs;                 /* n_kv, in file order */
    size_t n_kv;
    gguf_tensor *tensors;         /* n_tensors, in file order */
    size_t n_tensors;
    size_t alignment;             /* general.alignment or 32 */
    size_t data_offset;           /* where the data section starts in the file */
    /* private */
    gguf_kv **kv_sorted_;         /* by key, for lookup */
    gguf_tensor **t_sorted_;      /* by name, for lookup */
    void *map_;
    size_t map_size_;
} gguf_file;

/* Parse a GGUF file held in buf[0..size). The buffer must outlive f. label names the source in
 * messages. On failure f is left empty (gguf_close is harmless). The fuzzing entry point: any bytes
 * give 0 or -1, never a bad read. */
int gguf_parse(gguf_file *f, const unsigned char *buf, size_t size, const char *label, afx_err *e);

/* Map path read-only and gguf_parse it; messages are labelled with the path. */
int gguf_open(gguf_file *f, const char *path, afx_err *e);

/* Free what gguf_parse/gguf_open made and zero f. Safe on a zeroed or already-closed gguf_file. */
void gguf_close(gguf_file *f);

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);             /* NULL if absent */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);    /* NULL if absent */

/* Scalar values. Each returns 0, or -1 when the value has another type (or does not fit):
 *   gguf_kv_int:    any integer type or BOOL (a U64 above INT64_MAX fails)
 *   gguf_kv_float:  F32, F64, or any integer type
 *   gguf_kv_string: STRING (the bytes stay in the buffer) */
int gguf_kv_int(const gguf_kv *kv, int64_t *out);
int gguf_kv_float(const gguf_kv *kv, double *out);
int gguf_kv_string(const gguf_kv *kv, gguf_str *out);
/* Element i < kv->n of an array, with the same rules. */
int gguf_kv_arr_int(const gguf_kv *kv, uint64_t i, int64_t *out);
int gguf_kv_arr_float(const gguf_kv *kv, uint64_t i, double *out);
int gguf_kv_arr_string(const gguf_kv *kv, uint64_t i, gguf_str *out);

const char *gguf_vtype_name(gguf_vtype t);   /* "u32", "string", "array", ... */
const char *gguf_type_name(uint32_t type);   /* "F32", "Q4_K", ...; "?" for an unknown id */
int gguf_type_supported(uint32_t type);      /* 1 for the types gguf_to_real converts */

/* Dequantize all numel elements of t into out (numel entries, in ggml order: ne[0] fastest).
 * Q8_0: blocks of 32 along ne[0], each an f16 scale d and 32 int8 q; the value is d*q (exact in
 * float). Fails naming the tensor and its type for a type other than F32, F16, BF16 and Q8_0. */
int gguf_to_real(const gguf_tensor *t, real *out, afx_err *e);

#endif
