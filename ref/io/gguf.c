/* gguf.c — the validating GGUF reader (see gguf.h).
 *
 * What this is: one pass over the file with a bounds-checked cursor (every read asks first whether
 * the bytes are there), every count checked against what the rest of the file could hold before
 * anything is allocated, then the cross-checks that need the whole picture (duplicates, the data
 * section, tensor ranges). Numbers are decoded byte by byte, so the host's byte order and the
 * buffer's alignment do not matter. The half-precision decoders are safetensors.c's.
 * gguf_to_real dequantizes F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K
 * bit-for-bit as the gguf Python package does (tests/test_quant.c, tests/data/quant/).
 * What this is not: a writer, a model loader, or a dequantizer of the other types (Q2_K, Q3_K, the
 * i-quants, ...: their sizes are known so that a file holding them still parses; converting them is
 * refused by name).
 */
#define _POSIX_C_SOURCE 200809L

#include "gguf.h"

#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "files.h"
#include "quant.h"
#include "safetensors.h" /* st_f16_to_f64, st_bf16_to_f64 */

_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24 && FLT_MAX_EXP == 128, "IEEE binary32 float");

/* ---- the ggml tensor types: block size (elements) and block bytes ----------------------------- */

static const struct {
    const char *name;
    unsigned blck, bytes;
} TYPES[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 40},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},   [40] = {"NVFP4", 64, 36},
    [41] = {"Q1_0", 128, 18},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

const char *gguf_type_name(uint32_t type) {
    return type < N_TYPES && TYPES[type].name ? TYPES[type].name : "?";
}

/* ---- metadata value types --------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size; /* bytes of one value; 0 for string and array (variable) */
} VTYPES[] = {
    [GGUF_U8] = {"u8", 1},   [GGUF_I8] = {"i8", 1},      [GGUF_U16] = {"u16", 2}, [GGUF_I16] = {"i16", 2},
    [GGUF_U32] = {"u32", 4}, [GGUF_I32] = {"i32", 4},    [GGUF_F32] = {"f32", 4}, [GGUF_BOOL] = {"bool", 1},
    [GGUF_STRING] = {"string", 0}, [GGUF_ARRAY] = {"array", 0}, [GGUF_U64] = {"u64", 8},
    [GGUF_I64] = {"i64", 8}, [GGUF_F64] = {"f64", 8},
};
#define N_VTYPES (sizeof VTYPES / sizeof VTYPES[0])

const char *gguf_vtype_name(gguf_vtype t) { return (unsigned)t < N_VTYPES ? VTYPES[t].name : "?"; }

/* ---- little-endian loads, any alignment ------------------------------------------------------- */

static uint16_t ld16(const unsigned char *p) { return (uint16_t)((unsigned)p[0] | (unsigned)p[1] << 8); }
static uint32_t ld32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const unsigned char *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

/* two's complement of `bits` bits without implementation-defined conversions */
static int64_t as_signed(uint64_t u, int bits) {
    uint64_t sign = (uint64_t)1 << (bits - 1);
    if (u < sign) return (int64_t)u;
    uint64_t mag = ((bits == 64 ? ~(uint64_t)0 : (sign << 1) - 1) & ~u) + 1;
    return -(int64_t)(mag - 1) - 1;
}

static double f32_bits(uint32_t u) {
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static double f64_bits(uint64_t u) {
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* ---- the cursor ------------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *buf;
    size_t size, pos;
    const char *label;
    afx_err *e;
} Cur;

static size_t left(const Cur *c) { return c->size - c->pos; }

/* n bytes at the cursor, or a "truncated" error naming what was being read */
static int need(Cur *c, size_t n, const char *what) {
    if (n <= left(c)) return 0;
    return afx_fail(c->e, "%s: truncated at byte %zu: %s needs %zu bytes, %zu left", c->label, c->pos, what, n,
                    left(c));
}

static int rd32(Cur *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    *v = ld32(c->buf + c->pos);
    c->pos += 4;
    return 0;
}

static int rd64(Cur *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    *v = ld64(c->buf + c->pos);
    c->pos += 8;
    return 0;
}

/* a string: u64 length then the bytes, kept in place */
static int rdstr(Cur *c, gguf_str *s, const char *what) {
    uint64_t n;
    size_t at = c->pos;
    if (rd64(c, &n, what)) return -1;
    if (n > left(c))
        return afx_fail(c->e, "%s: %s at byte %zu has length %" PRIu64 ", more than the %zu bytes left", c->label,
                        what, at, n, left(c));
    s->p = (const char *)c->buf + c->pos;
    s->n = (size_t)n;
    c->pos += (size_t)n;
    return 0;
}

/* a NUL-terminated copy of a key or name, refusing NUL bytes inside and lengths over max */
static int copy_name(Cur *c, const gguf_str *s, size_t max, const char *what, char **out) {
    if (s->n > max)
        return afx_fail(c->e, "%s: %s of %zu bytes is longer than %zu", c->label, what, s->n, max);
    if (s->n == 0) return afx_fail(c->e, "%s: %s is empty (byte %zu)", c->label, what, c->pos);
    if (memchr(s->p, 0, s->n)) return afx_fail(c->e, "%s: %s '%.*s' contains a NUL byte", c->label, what, 80, s->p);
    char *d = malloc(s->n + 1);
    if (!d) return afx_fail(c->e, "%s: out of memory", c->label);
    memcpy(d, s->p, s->n);
    d[s->n] = 0;
    *out = d;
    return 0;
}

/* ---- metadata --------------------------------------------------------------------------------- */

static int vtype_known(uint32_t t) { return t < N_VTYPES; }

/* Skip one value of scalar or string type t (no arrays); bools must be 0 or 1. */
static int skip_value(Cur *c, uint32_t t, const char *key) {
    if (t == GGUF_STRING) {
        gguf_str s;
        return rdstr(c, &s, "a string value");
    }
    if (need(c, VTYPES[t].size, "a value")) return -1;
    if (t == GGUF_BOOL && c->buf[c->pos] > 1)
        return afx_fail(c->e, "%s: key '%.200s': bool value %u is not 0 or 1", c->label, key, c->buf[c->pos]);
    c->pos += VTYPES[t].size;
    return 0;
}

static int parse_kv(Cur *c, gguf_kv *kv, size_t index) {
    gguf_str ks;
    char what[64];
    snprintf(what, sizeof what, "the key of metadata entry %zu", index);
    if (rdstr(c, &ks, what) || copy_name(c, &ks, GGUF_MAX_KEY_LEN, what, &kv->key)) return -1;
    const char *key = kv->key;
    uint32_t t;
    if (rd32(c, &t, "a value type")) return -1;
    if (!vtype_known(t))
        return afx_fail(c->e, "%s: key '%.200s': unknown value type %" PRIu32, c->label, key, t);
    kv->type = kv->elem = (gguf_vtype)t;
    kv->n = 1;
    if (t != GGUF_ARRAY) {
        kv->data = c->buf + c->pos;
        return skip_value(c, t, key);
    }

    uint32_t et;
    uint64_t n;
    if (rd32(c, &et, "an array element type") || rd64(c, &n, "an array length")) return -1;
    if (!vtype_known(et))
        return afx_fail(c->e, "%s: key '%.200s': unknown array element type %" PRIu32, c->label, key, et);
    if (et == GGUF_ARRAY) return afx_fail(c->e, "%s: key '%.200s': arrays of arrays are not supported", c->label, key);
    kv->elem = (gguf_vtype)et;
    size_t min = et == GGUF_STRING ? 8 : VTYPES[et].size; /* the least bytes one element takes */
    if (n > left(c) / min)
        return afx_fail(c->e, "%s: key '%.200s': array of %" PRIu64 " %s elements cannot fit in the %zu bytes left",
                        c->label, key, n, VTYPES[et].name, left(c));
    kv->n = n;
    kv->data = c->buf + c->pos;
    if (et != GGUF_STRING) {
        if (et == GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (kv->data[i] > 1)
                    return afx_fail(c->e, "%s: key '%.200s': bool element %" PRIu64 " is %u, not 0 or 1", c->label, key,
                                    i, kv->data[i]);
        c->pos += (size_t)n * min;
        return 0;
    }
    if (n == 0) return 0;
    kv->strs = malloc((size_t)n * sizeof *kv->strs);
    if (!kv->strs) return afx_fail(c->e, "%s: out of memory for %" PRIu64 " strings", c->label, n);
    for (uint64_t i = 0; i < n; i++) {
        snprintf(what, sizeof what, "string %" PRIu64 " of the array", i);
        if (rdstr(c, &kv->strs[i], what)) return afx_annotate(c->e, " (key '%.200s')", key);
    }
    return 0;
}

/* ---- tensor infos ----------------------------------------------------------------------------- */

static int parse_tensor_info(Cur *c, gguf_tensor *t, size_t index) {
    gguf_str ns;
    char what[64];
    snprintf(what, sizeof what, "the name of tensor %zu", index);
    if (rdstr(c, &ns, what) || copy_name(c, &ns, GGUF_MAX_NAME_LEN, what, &t->name)) return -1;
    const char *nm = t->name;
    uint32_t nd;
    if (rd32(c, &nd, "n_dims")) return -1;
    if (nd > GGUF_MAX_DIMS)
        return afx_fail(c->e, "%s: tensor '%.200s' has %" PRIu32 " dims, more than %d", c->label, nm, nd,
                        GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) t->ne[i] = 1;
    size_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < t->n_dims; i++) {
        uint64_t v;
        if (rd64(c, &v, "a dimension")) return -1;
        if (v > (uint64_t)INT64_MAX)
            return afx_fail(c->e, "%s: tensor '%.200s': dimension %d = %" PRIu64 " is negative as int64", c->label, nm,
                            i, v);
        t->ne[i] = (int64_t)v;
        if (v != 0 && numel > SIZE_MAX / v) overflow = 1; /* a later 0 makes it fine */
        else numel *= (size_t)v;
    }
    if (numel == 0) overflow = 0;
    uint32_t type;
    if (rd32(c, &type, "a tensor type") || rd64(c, &t->offset, "a tensor offset")) return -1;
    t->type = type;
    if (type >= N_TYPES || !TYPES[type].name)
        return afx_fail(c->e, "%s: tensor '%.200s' has unknown ggml type %" PRIu32, c->label, nm, type);
    if (overflow) return afx_fail(c->e, "%s: tensor '%.200s': the product of its dimensions overflows", c->label, nm);
    unsigned blck = TYPES[type].blck, bytes = TYPES[type].bytes;
    if (t->ne[0] % blck)
        return afx_fail(c->e,
                        "%s: tensor '%.200s' of type %s: ne[0] = %" PRId64 " is not a multiple of its block size %u",
                        c->label, nm, TYPES[type].name, t->ne[0], blck);
    size_t blocks = numel / blck;
    if (blocks > SIZE_MAX / bytes)
        return afx_fail(c->e, "%s: tensor '%.200s': its byte size overflows", c->label, nm);
    t->numel = numel;
    t->nbytes = blocks * bytes;
    return 0;
}

/* ---- cross-checks ----------------------------------------------------------------------------- */

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(gguf_kv *const *)a)->key, (*(gguf_kv *const *)b)->key);
}
static int cmp_tname(const void *a, const void *b) {
    return strcmp((*(gguf_tensor *const *)a)->name, (*(gguf_tensor *const *)b)->name);
}
static int cmp_toff(const void *a, const void *b) {
    const gguf_tensor *x = *(gguf_tensor *const *)a, *y = *(gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

static int build_indexes(gguf_file *f, const char *label, afx_err *e) {
    if (f->n_kv) {
        if (!(f->kv_sorted_ = malloc(f->n_kv * sizeof *f->kv_sorted_))) return afx_fail(e, "%s: out of memory", label);
        for (size_t i = 0; i < f->n_kv; i++) f->kv_sorted_[i] = &f->kvs[i];
        qsort(f->kv_sorted_, f->n_kv, sizeof *f->kv_sorted_, cmp_kv);
        for (size_t i = 1; i < f->n_kv; i++)
            if (!strcmp(f->kv_sorted_[i - 1]->key, f->kv_sorted_[i]->key))
                return afx_fail(e, "%s: duplicate metadata key '%.200s'", label, f->kv_sorted_[i]->key);
    }
    if (f->n_tensors) {
        if (!(f->t_sorted_ = malloc(f->n_tensors * sizeof *f->t_sorted_)))
            return afx_fail(e, "%s: out of memory", label);
        for (size_t i = 0; i < f->n_tensors; i++) f->t_sorted_[i] = &f->tensors[i];
        qsort(f->t_sorted_, f->n_tensors, sizeof *f->t_sorted_, cmp_tname);
        for (size_t i = 1; i < f->n_tensors; i++)
            if (!strcmp(f->t_sorted_[i - 1]->name, f->t_sorted_[i]->name))
                return afx_fail(e, "%s: duplicate tensor name '%.200s'", label, f->t_sorted_[i]->name);
    }
    return 0;
}

static int read_alignment(gguf_file *f, const char *label, afx_err *e) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    if (!kv) return 0;
    if (kv->type != GGUF_U32)
        return afx_fail(e, "%s: general.alignment has type %s, expected u32", label, gguf_vtype_name(kv->type));
    uint32_t a = ld32(kv->data);
    if (a == 0 || (a & (a - 1)))
        return afx_fail(e, "%s: general.alignment = %" PRIu32 " is not a power of two", label, a);
    f->alignment = a;
    return 0;
}

/* data section placement, then every tensor inside it, aligned and not overlapping another */
static int place_tensors(gguf_file *f, const unsigned char *buf, size_t size, size_t end_of_infos, const char *label,
                         afx_err *e) {
    size_t a = f->alignment, pad = (a - end_of_infos % a) % a;
    if (f->n_tensors == 0) { /* nothing to place: a vocabulary-only file may omit the padding */
        f->data_offset = end_of_infos + pad <= size ? end_of_infos + pad : size;
        return 0;
    }
    if (pad > size - end_of_infos)
        return afx_fail(e, "%s: truncated: the data section would start at byte %zu of a %zu-byte file", label,
                        end_of_infos + pad, size);
    f->data_offset = end_of_infos + pad;
    size_t data_size = size - f->data_offset;
    for (size_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % a)
            return afx_fail(e, "%s: tensor '%.200s': offset %" PRIu64 " is not a multiple of the alignment %zu", label,
                            t->name, t->offset, a);
        if (t->offset > data_size || t->nbytes > data_size - (size_t)t->offset)
            return afx_fail(e,
                            "%s: tensor '%.200s': bytes [%" PRIu64 ", +%zu) lie outside the data section of %zu bytes",
                            label, t->name, t->offset, t->nbytes, data_size);
        t->data = buf + f->data_offset + (size_t)t->offset;
    }
    gguf_tensor **by = malloc(f->n_tensors * sizeof *by);
    if (!by) return afx_fail(e, "%s: out of memory", label);
    for (size_t i = 0; i < f->n_tensors; i++) by[i] = &f->tensors[i];
    qsort(by, f->n_tensors, sizeof *by, cmp_toff);
    const gguf_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    int rc = 0;
    for (size_t i = 0; i < f->n_tensors && !rc; i++) {
        const gguf_tensor *t = by[i];
        if (t->nbytes == 0) continue;
        if (last && t->offset < last->offset + last->nbytes)
            rc = afx_fail(e, "%s: tensors '%.150s' [%" PRIu64 ", +%zu) and '%.150s' [%" PRIu64 ", +%zu) overlap", label,
                          last->name, last->offset, last->nbytes, t->name, t->offset, t->nbytes);
        if (!last || t->offset + t->nbytes > last->offset + last->nbytes) last = t;
    }
    free(by);
    return rc;
}

/* ---- parse ------------------------------------------------------------------------------------ */

static int parse(gguf_file *f, Cur *c) {
    const char *label = c->label;
    afx_err *e = c->e;
    if (need(c, 4, "the magic")) return -1;
    if (memcmp(c->buf, "GGUF", 4))
        return afx_fail(e, "%s: not a GGUF file (the first bytes are not \"GGUF\")", label);
    c->pos = 4;
    uint32_t v;
    if (rd32(c, &v, "the version")) return -1;
    if (v == 1) return afx_fail(e, "%s: GGUF version 1 is not supported (only 2 and 3)", label);
    if (v == 0x02000000u || v == 0x03000000u) return afx_fail(e, "%s: big-endian GGUF is not supported", label);
    if (v != 2 && v != 3) return afx_fail(e, "%s: unknown GGUF version %" PRIu32, label, v);
    f->version = v;

    uint64_t nt, nkv;
    if (rd64(c, &nt, "the tensor count") || rd64(c, &nkv, "the metadata count")) return -1;
    /* each entry takes at least: a KV 8 (key length) + 4 (type) + 1; a tensor info 8 + 4 + 4 + 8 */
    if (nkv > left(c) / 13)
        return afx_fail(e, "%s: metadata count %" PRIu64 " cannot fit in the %zu bytes left", label, nkv, left(c));
    if (nt > left(c) / 24)
        return afx_fail(e, "%s: tensor count %" PRIu64 " cannot fit in the %zu bytes left", label, nt, left(c));

    if (nkv && !(f->kvs = calloc((size_t)nkv, sizeof *f->kvs))) return afx_fail(e, "%s: out of memory", label);
    for (size_t i = 0; i < (size_t)nkv; i++) {
        f->n_kv = i + 1; /* counted now so that gguf_close frees what it holds */
        if (parse_kv(c, &f->kvs[i], i)) return -1;
    }
    if (nt && !(f->tensors = calloc((size_t)nt, sizeof *f->tensors))) return afx_fail(e, "%s: out of memory", label);
    for (size_t i = 0; i < (size_t)nt; i++) {
        f->n_tensors = i + 1;
        if (parse_tensor_info(c, &f->tensors[i], i)) return -1;
    }
    if (build_indexes(f, label, e) || read_alignment(f, label, e)) return -1;
    return place_tensors(f, c->buf, c->size, c->pos, label, e);
}

int gguf_parse(gguf_file *f, const unsigned char *buf, size_t size, const char *label, afx_err *e) {
    memset(f, 0, sizeof *f);
    Cur c = {buf, size, 0, label ? label : "gguf", e};
    if (parse(f, &c)) {
        gguf_close(f);
        return -1;
    }
    return 0;
}

/* ---- files ------------------------------------------------------------------------------------ */

int gguf_open(gguf_file *f, const char *path, afx_err *e) {
    memset(f, 0, sizeof *f);
    const unsigned char *m;
    size_t size;
    if (afx_map_file(path, &m, &size, e)) return -1;
    if (gguf_parse(f, m, size, path, e)) {
        afx_unmap_file(m, size);
        return -1;
    }
    f->map_ = (void *)m;
    f->map_size_ = size;
    return 0;
}

void gguf_close(gguf_file *f) {
    for (size_t i = 0; i < f->n_kv; i++) {
        free(f->kvs[i].key);
        free(f->kvs[i].strs);
    }
    free(f->kvs);
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->kv_sorted_);
    free(f->t_sorted_);
    afx_unmap_file(f->map_, f->map_size_);
    memset(f, 0, sizeof *f);
}

/* ---- lookup ----------------------------------------------------------------------------------- */

static int cmp_key_kv(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(gguf_kv *const *)elem)->key);
}
static int cmp_key_t(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(gguf_tensor *const *)elem)->name);
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!f->n_kv || !f->kv_sorted_) return NULL;
    gguf_kv *const *p = bsearch(key, f->kv_sorted_, f->n_kv, sizeof *f->kv_sorted_, cmp_key_kv);
    return p ? *p : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f->n_tensors || !f->t_sorted_) return NULL;
    gguf_tensor *const *p = bsearch(name, f->t_sorted_, f->n_tensors, sizeof *f->t_sorted_, cmp_key_t);
    return p ? *p : NULL;
}

/* ---- values ----------------------------------------------------------------------------------- */

static int int_at(gguf_vtype t, const unsigned char *p, int64_t *out) {
    switch (t) {
    case GGUF_U8: case GGUF_BOOL: *out = p[0]; return 0;
    case GGUF_I8: *out = as_signed(p[0], 8); return 0;
    case GGUF_U16: *out = ld16(p); return 0;
    case GGUF_I16: *out = as_signed(ld16(p), 16); return 0;
    case GGUF_U32: *out = ld32(p); return 0;
    case GGUF_I32: *out = as_signed(ld32(p), 32); return 0;
    case GGUF_I64: *out = as_signed(ld64(p), 64); return 0;
    case GGUF_U64: {
        uint64_t u = ld64(p);
        if (u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)u;
        return 0;
    }
    default: return -1;
    }
}

static int float_at(gguf_vtype t, const unsigned char *p, double *out) {
    int64_t v;
    if (t == GGUF_F32) *out = f32_bits(ld32(p));
    else if (t == GGUF_F64) *out = f64_bits(ld64(p));
    else if (t != GGUF_BOOL && int_at(t, p, &v) == 0) *out = (double)v;
    else return -1;
    return 0;
}

int gguf_kv_int(const gguf_kv *kv, int64_t *out) {
    return kv->type == GGUF_ARRAY ? -1 : int_at(kv->type, kv->data, out);
}
int gguf_kv_float(const gguf_kv *kv, double *out) {
    return kv->type == GGUF_ARRAY ? -1 : float_at(kv->type, kv->data, out);
}
int gguf_kv_string(const gguf_kv *kv, gguf_str *out) {
    if (kv->type != GGUF_STRING) return -1;
    out->n = (size_t)ld64(kv->data); /* checked against the buffer by the parser */
    out->p = (const char *)kv->data + 8;
    return 0;
}

int gguf_kv_arr_int(const gguf_kv *kv, uint64_t i, int64_t *out) {
    if (kv->type != GGUF_ARRAY || i >= kv->n || kv->elem == GGUF_STRING) return -1;
    return int_at(kv->elem, kv->data + (size_t)i * VTYPES[kv->elem].size, out);
}
int gguf_kv_arr_float(const gguf_kv *kv, uint64_t i, double *out) {
    if (kv->type != GGUF_ARRAY || i >= kv->n || kv->elem == GGUF_STRING) return -1;
    return float_at(kv->elem, kv->data + (size_t)i * VTYPES[kv->elem].size, out);
}
int gguf_kv_arr_string(const gguf_kv *kv, uint64_t i, gguf_str *out) {
    if (kv->type != GGUF_ARRAY || i >= kv->n || kv->elem != GGUF_STRING) return -1;
    *out = kv->strs[i];
    return 0;
}

/* ---- dequantization --------------------------------------------------------------------------- */

/* The block decoders are the core's (ref/core/quant.c: the kernels decode the same blocks when a
 * frozen weight stays in its file format); F32 is read here. */

int gguf_type_supported(uint32_t type) { return type < N_TYPES && quant_supported((int)type); }

#define SUPPORTED_LIST "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"

int gguf_to_real(const gguf_tensor *t, real *out, afx_err *e) {
    const unsigned char *p = t->data;
    size_t n = t->numel;
    const char *nm = t->name ? t->name : "?";
    if (!gguf_type_supported(t->type)) {
        if (t->type >= N_TYPES || !TYPES[t->type].name)
            return afx_fail(e, "tensor '%.200s' has unknown ggml type %" PRIu32 ", which affix cannot convert (supported: "
                            SUPPORTED_LIST ")", nm, t->type);
        return afx_fail(e, "tensor '%.200s' has type %s, which affix cannot convert (supported: " SUPPORTED_LIST ")", nm,
                        gguf_type_name(t->type));
    }
    /* the parser guarantees this for the tensors of a file; a gguf_tensor made by hand may not */
    size_t blck = TYPES[t->type].blck, bytes = TYPES[t->type].bytes;
    if (n % blck)
        return afx_fail(e, "tensor '%.200s' of type %s: %zu elements are not a whole number of %zu-element blocks", nm,
                        gguf_type_name(t->type), n, blck);
    if (n / blck > SIZE_MAX / bytes || t->nbytes != n / blck * bytes)
        return afx_fail(e, "tensor '%.200s' of type %s: %zu elements need %zu blocks of %zu bytes, but it has %zu bytes",
                        nm, gguf_type_name(t->type), n, n / blck, bytes, t->nbytes);
    switch (t->type) {
    case GGML_F32:
        for (size_t i = 0; i < n; i++) out[i] = (real)f32_bits(ld32(p + 4 * i));
        return 0;
    case GGML_F16:
        for (size_t i = 0; i < n; i++) out[i] = (real)st_f16_to_f64(ld16(p + 2 * i));
        return 0;
    case GGML_BF16:
        for (size_t i = 0; i < n; i++) out[i] = (real)st_bf16_to_f64(ld16(p + 2 * i));
        return 0;
    default:
        quant_decode((int)t->type, p, n / blck, out);
        return 0;
    }
}
