/* safetensors.c — the validating safetensors reader (see safetensors.h).
 *
 * What this is: bounds-checked parsing of the 8-byte length and the JSON header (via cJSON, on a
 * NUL-terminated copy of the header so cJSON never sees the raw buffer), a complete validation of
 * every tensor entry before anything is returned, and element-wise little-endian decoders that
 * do not depend on the host's byte order or on alignment. Half-precision formats are decoded by
 * hand from their bit fields.
 * What this is not: a writer, a loader of model layouts, or a zero-copy path for the fast code
 * (which may reinterpret `data` itself when dtype, byte order and alignment allow).
 */
#define _POSIX_C_SOURCE 200809L

#include "safetensors.h"

#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "errmsg.h"
#include "files.h"

/* F32 and F64 are decoded by reinterpreting their bits: the host must use IEEE binary32/64. */
_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24 && FLT_MAX_EXP == 128, "IEEE binary32 float");
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53 && DBL_MAX_EXP == 1024, "IEEE binary64 double");

#define JSON_MAX_EXACT 9007199254740992.0 /* 2^53: larger JSON numbers are not exact in a double */

/* ---- dtypes -------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
    int is_float;
} DTYPES[] = {
    [ST_F64] = {"F64", 8, 1}, [ST_F32] = {"F32", 4, 1}, [ST_F16] = {"F16", 2, 1},
    [ST_BF16] = {"BF16", 2, 1}, [ST_I64] = {"I64", 8, 0}, [ST_I32] = {"I32", 4, 0},
    [ST_I16] = {"I16", 2, 0}, [ST_I8] = {"I8", 1, 0}, [ST_U8] = {"U8", 1, 0},
    [ST_BOOL] = {"BOOL", 1, 0},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

size_t st_dtype_size(st_dtype d) { return (unsigned)d < N_DTYPES ? DTYPES[d].size : 0; }
const char *st_dtype_name(st_dtype d) { return (unsigned)d < N_DTYPES ? DTYPES[d].name : "?"; }
int st_dtype_is_float(st_dtype d) { return (unsigned)d < N_DTYPES && DTYPES[d].is_float; }

static int dtype_from_name(const char *s, st_dtype *d) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(s, DTYPES[i].name) == 0) {
            *d = (st_dtype)i;
            return 0;
        }
    return -1;
}

/* ---- little-endian loads, any alignment ------------------------------------------------------- */

static uint16_t ld16(const unsigned char *p) { return (uint16_t)((unsigned)p[0] | (unsigned)p[1] << 8); }

static uint32_t ld32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const unsigned char *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

/* two's complement without implementation-defined conversions */
static int64_t as_signed(uint64_t u, int bits) {
    uint64_t sign = (uint64_t)1 << (bits - 1);
    if (u < sign) return (int64_t)u;
    uint64_t mag = ((bits == 64 ? ~(uint64_t)0 : (sign << 1) - 1) & ~u) + 1; /* |value|, up to 2^(bits-1) */
    return -(int64_t)(mag - 1) - 1;
}

/* A binary floating-point value from its fields: `mbits` mantissa bits, exponent all-ones = inf/nan. */
static double decode_ieee(unsigned sign, unsigned ex, unsigned man, int mbits, int ebits) {
    int bias = (1 << (ebits - 1)) - 1;
    double v;
    if (ex == 0)
        v = ldexp((double)man, 1 - bias - mbits); /* zero and subnormals */
    else if (ex == (1u << ebits) - 1)
        v = man ? NAN : INFINITY;
    else
        v = ldexp((double)(man | 1u << mbits), (int)ex - bias - mbits);
    return sign ? -v : v;
}

double st_f16_to_f64(uint16_t h) { return decode_ieee(h >> 15, (h >> 10) & 0x1fu, h & 0x3ffu, 10, 5); }
double st_bf16_to_f64(uint16_t h) { return decode_ieee(h >> 15, (h >> 7) & 0xffu, h & 0x7fu, 7, 8); }

static double load_float(st_dtype d, const unsigned char *p) {
    switch (d) {
    case ST_F64: {
        uint64_t u = ld64(p);
        double v;
        memcpy(&v, &u, sizeof v);
        return v;
    }
    case ST_F32: {
        uint32_t u = ld32(p);
        float v;
        memcpy(&v, &u, sizeof v);
        return v;
    }
    case ST_F16: return st_f16_to_f64(ld16(p));
    case ST_BF16: return st_bf16_to_f64(ld16(p));
    default: return NAN;
    }
}

/* Integer dtypes; returns -1 for a BOOL byte other than 0/1. */
static int load_int(st_dtype d, const unsigned char *p, int64_t *v) {
    switch (d) {
    case ST_I64: *v = as_signed(ld64(p), 64); return 0;
    case ST_I32: *v = as_signed(ld32(p), 32); return 0;
    case ST_I16: *v = as_signed(ld16(p), 16); return 0;
    case ST_I8: *v = as_signed(p[0], 8); return 0;
    case ST_U8: *v = p[0]; return 0;
    case ST_BOOL: *v = p[0]; return p[0] <= 1 ? 0 : -1;
    default: return -1;
    }
}

/* ---- conversions --------------------------------------------------------------------------- */

int st_to_f64(const st_tensor *t, double *out, afx_err *e) {
    size_t sz = st_dtype_size(t->dtype);
    for (size_t i = 0; i < t->numel; i++) {
        const unsigned char *p = t->data + i * sz;
        if (st_dtype_is_float(t->dtype)) {
            out[i] = load_float(t->dtype, p);
        } else {
            int64_t v;
            if (load_int(t->dtype, p, &v))
                return afx_fail(e, "tensor '%.200s': BOOL element %zu is %u, not 0 or 1", t->name, i, p[0]);
            out[i] = (double)v;
        }
    }
    return 0;
}

int st_to_real(const st_tensor *t, real *out, afx_err *e) {
    const unsigned char *p = t->data;
    size_t n = t->numel;
    /* one loop per dtype: this is the path that loads whole models */
    switch (t->dtype) {
    case ST_F32:
        for (size_t i = 0; i < n; i++) out[i] = (real)load_float(ST_F32, p + 4 * i);
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) out[i] = (real)st_bf16_to_f64(ld16(p + 2 * i));
        return 0;
    case ST_F16:
        for (size_t i = 0; i < n; i++) out[i] = (real)st_f16_to_f64(ld16(p + 2 * i));
        return 0;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double v = load_float(ST_F64, p + 8 * i);
            /* a float build cannot hold a finite double beyond FLT_MAX (the cast would be undefined) */
            if (sizeof(real) < sizeof(double) && isfinite(v) && fabs(v) > FLT_MAX)
                return afx_fail(e, "tensor '%.200s': element %zu = %g is outside the range of %s", t->name, i,
                                v, AFFIX_REAL_NAME);
            out[i] = (real)v;
        }
        return 0;
    default:
        return afx_fail(e, "tensor '%.200s' has dtype %s, expected a floating dtype", t->name,
                        st_dtype_name(t->dtype));
    }
}

int st_to_int(const st_tensor *t, int *out, afx_err *e) {
    if (st_dtype_is_float(t->dtype))
        return afx_fail(e, "tensor '%.200s' has dtype %s, expected an integer dtype", t->name,
                        st_dtype_name(t->dtype));
    size_t sz = st_dtype_size(t->dtype);
    for (size_t i = 0; i < t->numel; i++) {
        const unsigned char *p = t->data + i * sz;
        int64_t v;
        if (load_int(t->dtype, p, &v))
            return afx_fail(e, "tensor '%.200s': BOOL element %zu is %u, not 0 or 1", t->name, i, p[0]);
        if (v < INT_MIN || v > INT_MAX)
            return afx_fail(e, "tensor '%.200s': element %zu = %" PRId64 " does not fit an int", t->name, i, v);
        out[i] = (int)v;
    }
    return 0;
}

/* ---- header parsing -------------------------------------------------------------------------- */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* A JSON number that is a non-negative integer small enough to be exact (<= 2^53). */
static int json_count(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= JSON_MAX_EXACT) || v != floor(v)) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Fill t from one header entry. data/data_size is the data region. */
static int parse_entry(st_tensor *t, const cJSON *j, const unsigned char *data, size_t data_size,
                       const char *label, afx_err *e) {
    const char *nm = t->name;
    if (!cJSON_IsObject(j)) return afx_fail(e, "%s: tensor '%.200s': entry is not a JSON object", label, nm);

    /* dtype */
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    if (!cJSON_IsString(jd)) return afx_fail(e, "%s: tensor '%.200s': \"dtype\" missing or not a string", label, nm);
    if (dtype_from_name(jd->valuestring, &t->dtype))
        return afx_fail(e, "%s: tensor '%.200s': unknown dtype \"%.40s\"", label, nm, jd->valuestring);

    /* shape and element count, overflow-checked */
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    if (!cJSON_IsArray(js)) return afx_fail(e, "%s: tensor '%.200s': \"shape\" missing or not an array", label, nm);
    int nd = cJSON_GetArraySize(js);
    if (nd > ST_MAX_DIMS)
        return afx_fail(e, "%s: tensor '%.200s': shape has %d dims, more than %d", label, nm, nd, ST_MAX_DIMS);
    size_t numel = 1;
    int overflow = 0, k = 0;
    for (const cJSON *d = js->child; d; d = d->next, k++) {
        uint64_t v;
        if (json_count(d, &v))
            return afx_fail(e, "%s: tensor '%.200s': shape element %d is not a non-negative integer", label, nm, k);
        t->shape[k] = (int64_t)v;
        if (v != 0 && numel > SIZE_MAX / v) overflow = 1; /* a later 0 makes it fine */
        else numel *= (size_t)v;
    }
    t->ndim = nd;
    char sbuf[160];
    size_t esz = DTYPES[t->dtype].size;
    if (numel == 0) overflow = 0;
    if (overflow || numel > SIZE_MAX / esz)
        return afx_fail(e, "%s: tensor '%.200s': shape %s is too large", label, nm,
                        afx_shape_str(sbuf, sizeof sbuf, nd, t->shape));
    t->numel = numel;
    t->nbytes = numel * esz;

    /* data_offsets: [begin, end) inside the data region, exactly nbytes long */
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || json_count(jo->child, &begin) ||
        json_count(jo->child->next, &end))
        return afx_fail(e, "%s: tensor '%.200s': \"data_offsets\" missing or not two non-negative integers",
                        label, nm);
    if (begin > end)
        return afx_fail(e, "%s: tensor '%.200s': data_offsets begin %" PRIu64 " > end %" PRIu64, label, nm,
                        begin, end);
    if (end > data_size)
        return afx_fail(e, "%s: tensor '%.200s': data_offsets end %" PRIu64 " past the data region of %zu bytes",
                        label, nm, end, data_size);
    if (end - begin != t->nbytes)
        return afx_fail(e, "%s: tensor '%.200s': data_offsets span %" PRIu64 " bytes but shape %s of %s needs %zu",
                        label, nm, end - begin, afx_shape_str(sbuf, sizeof sbuf, nd, t->shape),
                        DTYPES[t->dtype].name, t->nbytes);
    t->data = data + begin;
    return 0;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_by_data(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tensors sorted by name: no two equal; sorted by data: no two non-empty ranges sharing a byte. */
static int check_names_and_ranges(st_file *f, const unsigned char *data, const char *label, afx_err *e) {
    if (f->n_tensors < 2) return 0;
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_by_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return afx_fail(e, "%s: duplicate tensor name '%.200s'", label, f->tensors[i].name);

    const st_tensor **by = malloc(f->n_tensors * sizeof *by);
    if (!by) return afx_fail(e, "%s: out of memory for %zu tensors", label, f->n_tensors);
    for (size_t i = 0; i < f->n_tensors; i++) by[i] = &f->tensors[i];
    qsort(by, f->n_tensors, sizeof *by, cmp_by_data);
    const st_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    int rc = 0;
    for (size_t i = 0; i < f->n_tensors && !rc; i++) {
        const st_tensor *t = by[i];
        if (t->nbytes == 0) continue;
        if (last && t->data < last->data + last->nbytes) {
            size_t b0 = (size_t)(last->data - data), b1 = (size_t)(t->data - data);
            rc = afx_fail(e, "%s: tensors '%.150s' [%zu,%zu) and '%.150s' [%zu,%zu) overlap", label, last->name,
                          b0, b0 + last->nbytes, t->name, b1, b1 + t->nbytes);
        }
        if (!last || t->data + t->nbytes > last->data + last->nbytes) last = t;
    }
    free(by);
    return rc;
}

static int parse_metadata(st_file *f, const cJSON *jm, const char *label, afx_err *e) {
    if (cJSON_IsNull(jm)) return 0;
    if (!cJSON_IsObject(jm)) return afx_fail(e, "%s: \"__metadata__\" is not a JSON object", label);
    size_t n = 0;
    for (const cJSON *c = jm->child; c; c = c->next) n++;
    if (n == 0) return 0;
    f->meta_keys = calloc(n, sizeof *f->meta_keys);
    f->meta_vals = calloc(n, sizeof *f->meta_vals);
    if (!f->meta_keys || !f->meta_vals) return afx_fail(e, "%s: out of memory for %zu metadata entries", label, n);
    for (const cJSON *c = jm->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return afx_fail(e, "%s: metadata value of '%.200s' is not a string", label, c->string);
        size_t i = f->n_meta;
        f->meta_keys[i] = dup_str(c->string);
        f->meta_vals[i] = dup_str(c->valuestring);
        if (!f->meta_keys[i] || !f->meta_vals[i]) {
            free(f->meta_keys[i]);
            free(f->meta_vals[i]);
            return afx_fail(e, "%s: out of memory for metadata", label);
        }
        f->n_meta++;
    }
    /* duplicate keys: sort a copy of the key pointers */
    char **keys = malloc(n * sizeof *keys);
    if (!keys) return afx_fail(e, "%s: out of memory for metadata", label);
    memcpy(keys, f->meta_keys, n * sizeof *keys);
    qsort(keys, n, sizeof *keys, cmp_str_ptr);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) rc = afx_fail(e, "%s: duplicate metadata key '%.200s'", label, keys[i]);
    free(keys);
    return rc;
}

static int parse_header(st_file *f, const cJSON *root, const unsigned char *data, size_t data_size,
                        const char *label, afx_err *e) {
    if (!cJSON_IsObject(root)) return afx_fail(e, "%s: header is not a JSON object", label);
    size_t n = 0;
    const cJSON *meta = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") != 0) n++;
        else if (meta) return afx_fail(e, "%s: \"__metadata__\" appears twice", label);
        else meta = c;
    }
    if (n) {
        f->tensors = calloc(n, sizeof *f->tensors);
        if (!f->tensors) return afx_fail(e, "%s: out of memory for %zu tensors", label, n);
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta) continue;
        st_tensor *t = &f->tensors[f->n_tensors];
        if (!(t->name = dup_str(c->string))) return afx_fail(e, "%s: out of memory", label);
        f->n_tensors++; /* counted now so that st_close frees the name */
        if (parse_entry(t, c, data, data_size, label, e)) return -1;
    }
    if (check_names_and_ranges(f, data, label, e)) return -1;
    return meta ? parse_metadata(f, meta, label, e) : 0;
}

int st_parse(st_file *f, const unsigned char *buf, size_t size, const char *label, afx_err *e) {
    memset(f, 0, sizeof *f);
    if (!label) label = "safetensors";
    if (size < 8) return afx_fail(e, "%s: file is %zu bytes, too short for the 8-byte header length", label, size);
    uint64_t n = ld64(buf);
    if (n > size - 8)
        return afx_fail(e, "%s: header length %" PRIu64 " exceeds file size %zu", label, n, size);
    if (n > ST_MAX_HEADER)
        return afx_fail(e, "%s: header length %" PRIu64 " exceeds the limit of %" PRIu64 " bytes", label, n,
                        ST_MAX_HEADER);
    if (n < 2) return afx_fail(e, "%s: header length %" PRIu64 " is too short for a JSON object", label, n);
    const unsigned char *hdr = buf + 8;
    if (memchr(hdr, 0, (size_t)n)) return afx_fail(e, "%s: header contains a NUL byte", label);

    /* cJSON gets its own NUL-terminated copy; trailing whitespace (padding) is allowed */
    char *txt = malloc((size_t)n + 1);
    if (!txt) return afx_fail(e, "%s: out of memory for a header of %" PRIu64 " bytes", label, n);
    memcpy(txt, hdr, (size_t)n);
    txt[n] = '\0';
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithOpts(txt, &stop, 1);
    if (!root) {
        size_t at = stop && stop >= txt && stop <= txt + n ? (size_t)(stop - txt) : 0;
        free(txt);
        return afx_fail(e, "%s: header is not valid JSON (error near byte %zu of %" PRIu64 ")", label, at, n);
    }
    free(txt);

    int rc = parse_header(f, root, hdr + n, size - 8 - (size_t)n, label, e);
    cJSON_Delete(root);
    if (rc) st_close(f);
    return rc;
}

/* ---- files ------------------------------------------------------------------------------------ */

int st_open(st_file *f, const char *path, afx_err *e) {
    memset(f, 0, sizeof *f);
    const unsigned char *m;
    size_t size;
    if (afx_map_file(path, &m, &size, e)) return -1;
    if (st_parse(f, m, size, path, e)) {
        afx_unmap_file(m, size);
        return -1;
    }
    f->map_ = (void *)m;
    f->map_size_ = size;
    return 0;
}

void st_close(st_file *f) {
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    afx_unmap_file(f->map_, f->map_size_);
    memset(f, 0, sizeof *f);
}

/* ---- lookup ----------------------------------------------------------------------------------- */

static int cmp_key_tensor(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const st_tensor *)elem)->name);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    if (!f->n_tensors) return NULL;
    return bsearch(name, f->tensors, f->n_tensors, sizeof *f->tensors, cmp_key_tensor);
}

const char *st_meta(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}
