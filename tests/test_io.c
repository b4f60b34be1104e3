/* test_io.c — tests of the file readers: safetensors.c, config.c, weights.c.
 *
 * What this is: safetensors byte buffers built in memory by a small writer below (valid files and
 * one malformed variant per validation rule), HF config.json texts, a Llama tensor round trip
 * through llama_params_load_st, a truncation sweep and a deterministic byte-flip fuzz. Every parse
 * runs on an exact-size heap copy so that the sanitizers see any read past the end.
 * What this is not: a test of the model numerics (test_core, test_golden). Test-only code: it prints
 * one line per failed check and ends with "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "json_read.h"
#include "config.h"
#include "llama.h"
#include "safetensors.h"
#include "weights.h"


/* ---- a tiny safetensors writer ------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} Buf;

static void put(Buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            fprintf(stderr, "test_io: out of memory\n");
            exit(2);
        }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_le(Buf *b, uint64_t v, int bytes) {
    unsigned char c[8];
    for (int i = 0; i < bytes; i++) c[i] = (unsigned char)(v >> (8 * i));
    put(b, c, (size_t)bytes);
}

static void put_f32(Buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_le(b, u, 4);
}

static void put_f64(Buf *b, double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    put_le(b, u, 8);
}

/* [u64 hlen][header][data] with an explicit length field (which may lie) */
static Buf raw_len(uint64_t hlen, const char *header, const Buf *data) {
    Buf b = {0};
    put_le(&b, hlen, 8);
    puts_(&b, header);
    if (data) put(&b, data->p, data->n);
    return b;
}

static Buf raw(const char *header, const Buf *data) { return raw_len(strlen(header), header, data); }

typedef struct {
    const char *name, *dtype;
    int ndim;
    int64_t shape[8];
    Buf data;
} WT;

/* A well-formed file: tensors packed in the given order (no alignment), header padded with spaces
 * to a multiple of 8 like the reference writer, optional metadata object text. */
static Buf build(const WT *ts, int n, const char *meta) {
    Buf h = {0}, data = {0};
    char tmp[512];
    puts_(&h, "{");
    if (meta) {
        puts_(&h, "\"__metadata__\":");
        puts_(&h, meta);
        if (n) puts_(&h, ",");
    }
    for (int i = 0; i < n; i++) {
        snprintf(tmp, sizeof tmp, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", ts[i].name, ts[i].dtype);
        puts_(&h, tmp);
        for (int d = 0; d < ts[i].ndim; d++) {
            snprintf(tmp, sizeof tmp, "%s%lld", d ? "," : "", (long long)ts[i].shape[d]);
            puts_(&h, tmp);
        }
        snprintf(tmp, sizeof tmp, "],\"data_offsets\":[%zu,%zu]}", data.n, data.n + ts[i].data.n);
        puts_(&h, tmp);
        put(&data, ts[i].data.p, ts[i].data.n);
    }
    puts_(&h, "}");
    while (h.n % 8) puts_(&h, " ");
    Buf b = {0};
    put_le(&b, h.n, 8);
    put(&b, h.p, h.n);
    put(&b, data.p, data.n);
    free(h.p);
    free(data.p);
    return b;
}

/* ---- parse helpers: exact-size heap copies ---------------------------------------------------- */

typedef struct {
    st_file f;
    unsigned char *copy;
} Parsed;

static int parse_copy(Parsed *ps, const unsigned char *p, size_t n, afx_err *e) {
    ps->copy = malloc(n ? n : 1);
    if (n) memcpy(ps->copy, p, n);
    return st_parse(&ps->f, ps->copy, n, "mem.safetensors", e);
}

static void parsed_free(Parsed *ps) {
    st_close(&ps->f);
    free(ps->copy);
}

/* The buffer must fail, with a message starting with the label and containing hint. */
static void expect_fail_at(const unsigned char *p, size_t n, const char *hint, int line) {
    Parsed ps;
    afx_err e = {{0}};
    int rc = parse_copy(&ps, p, n, &e);
    char what[AFX_ERR_LEN + 160];
    snprintf(what, sizeof what, "expected failure with '%s', got rc=%d msg='%s'", hint, rc, e.msg);
    check_at(rc == -1 && strncmp(e.msg, "mem.safetensors: ", 17) == 0 && strstr(e.msg, hint) != NULL &&
                 ps.f.n_tensors == 0 && ps.f.tensors == NULL,
             __FILE__, line, what, NULL);
    parsed_free(&ps);
}
#define EXPECT_FAIL(buf, hint)                                                                      \
    do {                                                                                            \
        Buf b_ = (buf);                                                                             \
        expect_fail_at(b_.p, b_.n, hint, __LINE__);                                                 \
        free(b_.p);                                                                                 \
    } while (0)

static void expect_ok_at(const Buf *b, size_t n_tensors, int line) {
    Parsed ps;
    afx_err e = {{0}};
    int rc = parse_copy(&ps, b->p, b->n, &e);
    char what[AFX_ERR_LEN + 80];
    snprintf(what, sizeof what, "expected success, got rc=%d msg='%s'", rc, e.msg);
    check_at(rc == 0 && ps.f.n_tensors == n_tensors, __FILE__, line, what, NULL);
    parsed_free(&ps);
}
#define EXPECT_OK(buf, n)                                                                           \
    do {                                                                                            \
        Buf b_ = (buf);                                                                             \
        expect_ok_at(&b_, n, __LINE__);                                                             \
        free(b_.p);                                                                                 \
    } while (0)

static int same_f64(double a, double b) { return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b)); }

/* ---- the valid file --------------------------------------------------------------------------- */

enum { NT = 13 };

static Buf valid_file(void) {
    WT t[NT] = {
        {"flag", "BOOL", 1, {3}, {0}},
        {"byte", "U8", 1, {2}, {0}},
        {"small", "I8", 1, {2}, {0}},
        {"w.f32", "F32", 2, {2, 3}, {0}},
        {"w.f16", "F16", 1, {11}, {0}},
        {"w.bf16", "BF16", 1, {9}, {0}},
        {"w.f64", "F64", 1, {4}, {0}},
        {"ids", "I64", 2, {2, 2}, {0}},
        {"big", "I64", 1, {1}, {0}},
        {"i32", "I32", 1, {2}, {0}},
        {"i16", "I16", 1, {2}, {0}},
        {"scalar", "F64", 0, {0}, {0}},
        {"empty", "F32", 2, {0, 4}, {0}},
    };
    put_le(&t[0].data, 0, 1), put_le(&t[0].data, 1, 1), put_le(&t[0].data, 1, 1);
    put_le(&t[1].data, 0, 1), put_le(&t[1].data, 255, 1);
    put_le(&t[2].data, 0x80, 1), put_le(&t[2].data, 0x7f, 1);
    const float f32[6] = {1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 1e-3f};
    for (int i = 0; i < 6; i++) put_f32(&t[3].data, f32[i]);
    /* f16: 1, -2, min subnormal, max subnormal, min normal, max, inf, -inf, nan, -0, 1/3 */
    const uint16_t f16[11] = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x8000, 0x3555};
    for (int i = 0; i < 11; i++) put_le(&t[4].data, f16[i], 2);
    /* bf16: 1, 1+2^-7, pi rounded (0x4049), -pi rounded (0xC049), min subnormal, max, -inf, nan, 0x3F7F */
    const uint16_t bf16[9] = {0x3F80, 0x3F81, 0x4049, 0xC049, 0x0001, 0x7F7F, 0xFF80, 0x7FC1, 0x3F7F};
    for (int i = 0; i < 9; i++) put_le(&t[5].data, bf16[i], 2);
    const double f64[4] = {1.0 / 3.0, -1e300, 4.9406564584124654e-324, 0.1};
    for (int i = 0; i < 4; i++) put_f64(&t[6].data, f64[i]);
    const int64_t ids[4] = {0, -100, 128255, -1};
    for (int i = 0; i < 4; i++) put_le(&t[7].data, (uint64_t)ids[i], 8);
    put_le(&t[8].data, (uint64_t)1 << 40, 8);
    put_le(&t[9].data, (uint64_t)(uint32_t)-5, 4), put_le(&t[9].data, (uint64_t)INT32_MAX, 4);
    put_le(&t[10].data, 0x8000, 2), put_le(&t[10].data, 0x7fff, 2);
    put_f64(&t[11].data, 2.5);
    Buf b = build(t, NT, "{\"format_version\":\"1\",\"case\":\"right\",\"config\":\"{\\\"a\\\": 1}\"}");
    for (int i = 0; i < NT; i++) free(t[i].data.p);
    return b;
}

static void test_valid(void) {
    Buf b = valid_file();
    Parsed ps;
    afx_err e = {{0}};
    int rc = parse_copy(&ps, b.p, b.n, &e);
    CHECK(rc == 0);
    if (rc) {
        printf("  message: %s\n", e.msg);
        parsed_free(&ps);
        free(b.p);
        return;
    }
    const st_file *f = &ps.f;
    CHECK(f->n_tensors == NT);
    for (size_t i = 1; i < f->n_tensors; i++) CHECK(strcmp(f->tensors[i - 1].name, f->tensors[i].name) < 0);
    CHECK(st_find(f, "nope") == NULL);
    CHECK(st_find(f, "") == NULL);
    CHECK(f->n_meta == 3);
    CHECK(st_meta(f, "format_version") && strcmp(st_meta(f, "format_version"), "1") == 0);
    CHECK(st_meta(f, "case") && strcmp(st_meta(f, "case"), "right") == 0);
    CHECK(st_meta(f, "config") && strcmp(st_meta(f, "config"), "{\"a\": 1}") == 0);
    CHECK(st_meta(f, "seed") == NULL);

    /* f32, with shape */
    const st_tensor *t = st_find(f, "w.f32");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6 &&
          t->nbytes == 24);
    if (t) {
        double d[6];
        real r[6];
        CHECK(st_to_f64(t, d, &e) == 0 && d[0] == 1 && d[1] == -2 && d[2] == 0.5 && d[3] == 3.25 &&
              same_f64(d[4], -0.0) && d[5] == (double)1e-3f);
        CHECK(st_to_real(t, r, &e) == 0 && r[3] == (real)3.25 && r[5] == (real)1e-3f);
        int iv[6];
        CHECK(st_to_int(t, iv, &e) == -1 && strstr(e.msg, "w.f32") && strstr(e.msg, "integer dtype"));
    }

    /* f16 by hand: subnormals, extremes, inf, nan, signed zero */
    t = st_find(f, "w.f16");
    CHECK(t && t->dtype == ST_F16 && t->numel == 11);
    if (t) {
        double d[11];
        CHECK(st_to_f64(t, d, &e) == 0);
        CHECK(d[0] == 1.0 && d[1] == -2.0);
        CHECK(d[2] == ldexp(1.0, -24));          /* smallest subnormal 5.96e-8 */
        CHECK(d[3] == 1023 * ldexp(1.0, -24));   /* largest subnormal */
        CHECK(d[4] == ldexp(1.0, -14));          /* smallest normal */
        CHECK(d[5] == 65504.0);
        CHECK(isinf(d[6]) && d[6] > 0 && isinf(d[7]) && d[7] < 0);
        CHECK(isnan(d[8]));
        CHECK(same_f64(d[9], -0.0));
        CHECK(d[10] == 1365 * ldexp(1.0, -12) && fabs(d[10] - 1.0 / 3.0) < 1e-3);
        real r[11];
        CHECK(st_to_real(t, r, &e) == 0 && r[2] == (real)ldexp(1.0, -24) && isinf(r[6]) && isnan(r[8]));
    }
    CHECK(st_f16_to_f64(0x3C01) == 1.0 + ldexp(1.0, -10));
    CHECK(st_f16_to_f64(0x8001) == -ldexp(1.0, -24));

    /* bf16: exact decodes of values produced by rounding float32 */
    t = st_find(f, "w.bf16");
    CHECK(t && t->dtype == ST_BF16 && t->numel == 9);
    if (t) {
        double d[9];
        CHECK(st_to_f64(t, d, &e) == 0);
        CHECK(d[0] == 1.0 && d[1] == 1.0 + ldexp(1.0, -7));
        CHECK(d[2] == 3.140625 && d[3] == -3.140625); /* pi and -pi rounded to nearest bf16 */
        CHECK(d[4] == ldexp(1.0, -133));              /* smallest bf16 subnormal */
        CHECK(d[5] == (double)0xFF * ldexp(1.0, 127 - 7) && d[5] < FLT_MAX);
        CHECK(isinf(d[6]) && d[6] < 0);
        CHECK(isnan(d[7]));
        CHECK(d[8] == 1.0 - ldexp(1.0, -8)); /* the bf16 just below 1 */
        real r[9];
        CHECK(st_to_real(t, r, &e) == 0 && r[4] == (real)ldexp(1.0, -133) && r[2] == (real)3.140625);
    }
    /* round-to-nearest-even of float32 -> bf16 lands on these codes; their decodes are exact */
    CHECK(st_bf16_to_f64(0x3F80) == 1.0 && st_bf16_to_f64(0x3F81) == 1.0078125);
    CHECK(st_bf16_to_f64(0x7F80) == INFINITY && st_bf16_to_f64(0x8000) == 0.0 && signbit(st_bf16_to_f64(0x8000)));

    /* f64, including a double subnormal and a value beyond float range */
    t = st_find(f, "w.f64");
    CHECK(t && t->dtype == ST_F64 && t->numel == 4);
    if (t) {
        double d[4];
        CHECK(st_to_f64(t, d, &e) == 0 && d[0] == 1.0 / 3.0 && d[1] == -1e300 && d[2] == 4.9406564584124654e-324 &&
              d[3] == 0.1);
        real r[4];
        int rr = st_to_real(t, r, &e);
        if (sizeof(real) == sizeof(float))
            CHECK(rr == -1 && strstr(e.msg, "w.f64") && strstr(e.msg, "outside the range"));
        else
            CHECK(rr == 0 && r[1] == -1e300 && r[0] == 1.0 / 3.0);
    }

    /* scalar and empty */
    t = st_find(f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 8);
    if (t) {
        double d = 0;
        CHECK(st_to_f64(t, &d, &e) == 0 && d == 2.5);
    }
    t = st_find(f, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 4 && t->numel == 0 && t->nbytes == 0);

    /* integers */
    t = st_find(f, "ids");
    CHECK(t && t->dtype == ST_I64 && t->numel == 4);
    if (t) {
        int iv[4];
        double d[4];
        CHECK(st_to_int(t, iv, &e) == 0 && iv[0] == 0 && iv[1] == -100 && iv[2] == 128255 && iv[3] == -1);
        CHECK(st_to_f64(t, d, &e) == 0 && d[1] == -100.0 && d[2] == 128255.0);
        real r[4];
        CHECK(st_to_real(t, r, &e) == -1 && strstr(e.msg, "ids") && strstr(e.msg, "floating dtype"));
    }
    t = st_find(f, "big");
    if (REQUIRE(t != NULL)) {
        int iv[1];
        double d[1];
        CHECK(st_to_int(t, iv, &e) == -1 && strstr(e.msg, "big") && strstr(e.msg, "does not fit"));
        CHECK(st_to_f64(t, d, &e) == 0 && d[0] == 1099511627776.0);
    }
    t = st_find(f, "i32");
    if (REQUIRE(t != NULL)) {
        int iv[2];
        CHECK(t->dtype == ST_I32 && st_to_int(t, iv, &e) == 0 && iv[0] == -5 && iv[1] == INT32_MAX);
    }
    t = st_find(f, "i16");
    if (REQUIRE(t != NULL)) {
        int iv[2];
        CHECK(t->dtype == ST_I16 && st_to_int(t, iv, &e) == 0 && iv[0] == -32768 && iv[1] == 32767);
    }
    t = st_find(f, "small");
    if (REQUIRE(t != NULL)) {
        int iv[2];
        CHECK(t->dtype == ST_I8 && st_to_int(t, iv, &e) == 0 && iv[0] == -128 && iv[1] == 127);
    }
    t = st_find(f, "byte");
    if (REQUIRE(t != NULL)) {
        int iv[2];
        CHECK(t->dtype == ST_U8 && st_to_int(t, iv, &e) == 0 && iv[0] == 0 && iv[1] == 255);
    }
    t = st_find(f, "flag");
    if (REQUIRE(t != NULL)) {
        int iv[3];
        double d[3];
        CHECK(t->dtype == ST_BOOL && st_to_int(t, iv, &e) == 0 && iv[0] == 0 && iv[1] == 1 && iv[2] == 1);
        CHECK(st_to_f64(t, d, &e) == 0 && d[2] == 1.0);
    }
    CHECK(st_dtype_size(ST_BF16) == 2 && st_dtype_size(ST_I64) == 8 && strcmp(st_dtype_name(ST_BF16), "BF16") == 0);
    parsed_free(&ps);
    st_close(&ps.f); /* a second close is harmless */
    free(b.p);

    /* small valid variants */
    EXPECT_OK(raw("{}", NULL), 0);
    EXPECT_OK(raw("{\"__metadata__\":null}  ", NULL), 0);
    EXPECT_OK(raw("{\"__metadata__\":{}}", NULL), 0);
    Buf d8 = {0};
    put_f64(&d8, 1.0);
    /* a gap in the data region and trailing bytes are tolerated; empty tensors may sit anywhere */
    EXPECT_OK(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                  "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[5,5]}}",
                  &d8),
              2);
    /* BOOL bytes other than 0/1 are rejected on conversion */
    Buf bb = {0};
    put_le(&bb, 2, 1);
    Buf b2 = raw("{\"f\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]}}", &bb);
    Parsed p2;
    CHECK(parse_copy(&p2, b2.p, b2.n, &e) == 0);
    if (REQUIRE(p2.f.n_tensors == 1)) {
        int iv[1];
        CHECK(st_to_int(&p2.f.tensors[0], iv, &e) == -1 && strstr(e.msg, "not 0 or 1"));
    }
    parsed_free(&p2);
    free(b2.p);
    free(bb.p);
    free(d8.p);
}

/* ---- malformed files ---------------------------------------------------------------------------- */

static void test_malformed(void) {
    Buf d16 = {0};
    for (int i = 0; i < 16; i++) put_le(&d16, (uint64_t)i, 1);
    const char *e8 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    /* truncation */
    {
        Buf b = raw(e8, &d16);
        expect_fail_at(b.p, 0, "too short", __LINE__);
        expect_fail_at(b.p, 5, "too short", __LINE__);
        expect_fail_at(b.p, 8, "exceeds file size", __LINE__);        /* header cut */
        expect_fail_at(b.p, 8 + strlen(e8) - 3, "exceeds file size", __LINE__);
        expect_fail_at(b.p, 8 + strlen(e8) + 7, "past the data region", __LINE__); /* data cut */
        free(b.p);
    }
    EXPECT_FAIL(raw_len(1000, "{}", NULL), "header length 1000 exceeds file size 10");
    EXPECT_FAIL(raw_len((uint64_t)1 << 63, "{}", NULL), "header length 9223372036854775808 exceeds file size");
    EXPECT_FAIL(raw_len(UINT64_MAX, "{}", NULL), "exceeds file size");
    EXPECT_FAIL(raw(" ", NULL), "too short for a JSON object");
    EXPECT_FAIL(raw("", &d16), "too short for a JSON object");

    /* JSON level */
    EXPECT_FAIL(raw("{\"a\":", NULL), "not valid JSON");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",}}", NULL), "not valid JSON");
    EXPECT_FAIL(raw("{} x", NULL), "not valid JSON");
    EXPECT_FAIL(raw("[1,2]", NULL), "not a JSON object");
    EXPECT_FAIL(raw("\"str\"", NULL), "not a JSON object");
    {
        Buf b = raw("{\"a\":{}}", NULL);
        b.p[9] = 0; /* a NUL inside the header */
        EXPECT_FAIL(b, "NUL byte");
    }
    EXPECT_FAIL(raw("{\"a\":5}", NULL), "tensor 'a': entry is not a JSON object");

    /* dtype */
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", &d16), "unknown dtype \"F8_E4M3\"");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &d16), "unknown dtype");
    EXPECT_FAIL(raw("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", &d16), "\"dtype\" missing");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", &d16), "\"dtype\" missing or not a string");

    /* shape */
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", &d16), "shape element 0");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2.5],\"data_offsets\":[0,4]}}", &d16), "shape element 1");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,4]}}", &d16), "shape element 0");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e400],\"data_offsets\":[0,4]}}", &d16), "shape element 0");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[9007199254740994],\"data_offsets\":[0,4]}}", &d16),
                "shape element 0");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,4]}}", &d16), "\"shape\" missing or not an array");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", &d16), "\"shape\" missing");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", &d16),
                "9 dims, more than 8");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", &d16),
                "is too large");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", &d16),
                "is too large");
    /* a zero dimension cancels an overflowing product: an empty tensor */
    EXPECT_OK(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296,0],\"data_offsets\":[0,0]}}", &d16), 1);

    /* data_offsets */
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", &d16), "\"data_offsets\" missing");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", &d16), "data_offsets");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", &d16), "data_offsets");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", &d16), "data_offsets");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"b\":0}}}", &d16), "data_offsets");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4.5]}}", &d16), "data_offsets");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", &d16), "begin 8 > end 4");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}", &d16),
                "end 20 past the data region of 16 bytes");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,9007199254740992]}}", &d16),
                "past the data region");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", &d16),
                "span 8 bytes but shape [3] of F32 needs 12");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", &d16),
                "shape [2,2] of BF16 needs 8");

    /* overlaps and duplicates */
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", &d16),
                "'a' [0,8) and 'b' [4,12) overlap");
    EXPECT_FAIL(raw("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                    "\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[15,16]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", &d16),
                "overlap");
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", &d16),
                "overlap");
    EXPECT_OK(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]}}", &d16), 2);
    EXPECT_FAIL(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", &d16),
                "duplicate tensor name 'a'");

    /* metadata */
    EXPECT_FAIL(raw("{\"__metadata__\":{\"k\":1}}", NULL), "metadata value of 'k' is not a string");
    EXPECT_FAIL(raw("{\"__metadata__\":{\"k\":\"v\",\"n\":null}}", NULL), "metadata value of 'n'");
    EXPECT_FAIL(raw("{\"__metadata__\":[\"k\"]}", NULL), "\"__metadata__\" is not a JSON object");
    EXPECT_FAIL(raw("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", NULL), "duplicate metadata key 'k'");
    EXPECT_FAIL(raw("{\"__metadata__\":{},\"__metadata__\":{}}", NULL), "\"__metadata__\" appears twice");
    free(d16.p);
}

/* ---- truncation sweep and byte-flip fuzz ------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint32_t rnd(void) { /* xorshift64*, fixed seed: deterministic */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717u) >> 32);
}

/* Decode every tensor of a file that parsed, to exercise the converters on hostile shapes. */
static void convert_all(const st_file *f) {
    afx_err e;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        size_t n = t->numel ? t->numel : 1;
        double *d = malloc(n * sizeof *d);
        real *r = malloc(n * sizeof *r);
        int *iv = malloc(n * sizeof *iv);
        if (d && r && iv) {
            (void)st_to_f64(t, d, &e);
            (void)st_to_real(t, r, &e);
            (void)st_to_int(t, iv, &e);
        }
        free(d);
        free(r);
        free(iv);
    }
}

static void test_sweep_and_fuzz(void) {
    Buf b = valid_file();
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        Parsed ps;
        afx_err e = {{0}};
        int rc = parse_copy(&ps, b.p, n, &e);
        if (rc != -1 || strncmp(e.msg, "mem.safetensors: ", 17) != 0 || ps.f.n_tensors != 0) {
            if (bad++ < 5) printf("  prefix %zu: rc=%d msg='%s'\n", n, rc, e.msg);
        }
        parsed_free(&ps);
    }
    CHECK(bad == 0); /* every strict prefix of a valid file fails cleanly */

    /* flip 1-4 random bytes (header-heavy) many times; each parse must succeed or fail cleanly */
    int ok = 0, failed_clean = 0, unclean = 0;
    unsigned char *m = malloc(b.n);
    for (int it = 0; it < 4000; it++) {
        memcpy(m, b.p, b.n);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (rnd() % 4) ? rnd() % (b.n < 400 ? b.n : 400) : rnd() % b.n;
            static const unsigned char interesting[] = {'{', '}', '[', ']', '"', ',', ':', '-', '0', '9', ' ', 0, 0xff, '.', 'e'};
            m[at] = (rnd() % 2) ? (unsigned char)rnd() : interesting[rnd() % sizeof interesting];
        }
        size_t n = (rnd() % 8) ? b.n : rnd() % (b.n + 1);
        Parsed ps;
        afx_err e = {{0}};
        int rc = parse_copy(&ps, m, n, &e);
        if (rc == 0) {
            ok++;
            convert_all(&ps.f);
        } else if (rc == -1 && strncmp(e.msg, "mem.safetensors: ", 17) == 0 && ps.f.n_tensors == 0) {
            failed_clean++;
        } else {
            unclean++;
        }
        parsed_free(&ps);
    }
    free(m);
    CHECK(unclean == 0);
    CHECK(ok > 0 && failed_clean > 0); /* the fuzz reaches both outcomes */
    free(b.p);
}

/* ---- st_open on real files ------------------------------------------------------------------- */

static int write_file(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t w = n ? fwrite(p, 1, n, fp) : 0;
    return (fclose(fp) == 0 && w == n) ? 0 : -1;
}

static void test_files(const char *dir) {
    char path[600], cpath[600], epath[600], missing[600];
    snprintf(path, sizeof path, "%s/valid.safetensors", dir);
    snprintf(epath, sizeof epath, "%s/empty.safetensors", dir);
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    snprintf(missing, sizeof missing, "%s/no-such-file.safetensors", dir);
    Buf b = valid_file();
    CHECK(write_file(path, b.p, b.n) == 0);
    CHECK(write_file(epath, "", 0) == 0);
    free(b.p);

    st_file f;
    afx_err e = {{0}};
    CHECK(st_open(&f, path, &e) == 0 && f.n_tensors == NT && st_find(&f, "w.f16") != NULL);
    const st_tensor *t = st_find(&f, "ids");
    int iv[4];
    CHECK(t && st_to_int(t, iv, &e) == 0 && iv[2] == 128255);
    st_close(&f);

    CHECK(st_open(&f, missing, &e) == -1 && strstr(e.msg, missing) == e.msg && strstr(e.msg, "cannot open"));
    CHECK(st_open(&f, epath, &e) == -1 && strstr(e.msg, epath) == e.msg && strstr(e.msg, "empty file"));
    CHECK(st_open(&f, dir, &e) == -1 && strstr(e.msg, dir) == e.msg && strstr(e.msg, "not a regular file"));
    st_close(&f);

    /* a broken file names its path */
    Buf bad = raw_len(99999, "{}", NULL);
    CHECK(write_file(path, bad.p, bad.n) == 0);
    free(bad.p);
    CHECK(st_open(&f, path, &e) == -1 && strstr(e.msg, path) == e.msg &&
          strstr(e.msg, "header length 99999 exceeds file size 10"));

    const char *cfg = "{\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1,"
                      " \"num_attention_heads\": 2}\n";
    LlamaConfig c;
    CHECK(write_file(cpath, cfg, strlen(cfg)) == 0);
    CHECK(llama_config_load(&c, cpath, &e) == 0 && c.V == 10 && c.HS == 4);
    CHECK(llama_config_load(&c, missing, &e) == -1 && strstr(e.msg, missing) == e.msg && strstr(e.msg, "cannot open"));
    CHECK(write_file(cpath, "{\"vocab_size\": 10", 17) == 0);
    CHECK(llama_config_load(&c, cpath, &e) == -1 && strstr(e.msg, cpath) == e.msg && strstr(e.msg, "not valid JSON"));
    remove(path);
    remove(epath);
    remove(cpath);
}

/* ---- config.json ---------------------------------------------------------------------------- */

static const char *LLAMA32_1B =
    "{\n"
    "  \"architectures\": [\"LlamaForCausalLM\"],\n"
    "  \"attention_bias\": false,\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"bos_token_id\": 128000,\n"
    "  \"eos_token_id\": 128001,\n"
    "  \"head_dim\": 64,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 2048,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 8192,\n"
    "  \"max_position_embeddings\": 131072,\n"
    "  \"mlp_bias\": false,\n"
    "  \"model_type\": \"llama\",\n"
    "  \"num_attention_heads\": 32,\n"
    "  \"num_hidden_layers\": 16,\n"
    "  \"num_key_value_heads\": 8,\n"
    "  \"pretraining_tp\": 1,\n"
    "  \"rms_norm_eps\": 1e-05,\n"
    "  \"rope_scaling\": {\n"
    "    \"factor\": 32.0,\n"
    "    \"high_freq_factor\": 4.0,\n"
    "    \"low_freq_factor\": 1.0,\n"
    "    \"original_max_position_embeddings\": 8192,\n"
    "    \"rope_type\": \"llama3\"\n"
    "  },\n"
    "  \"rope_theta\": 500000.0,\n"
    "  \"tie_word_embeddings\": true,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.45.0.dev0\",\n"
    "  \"use_cache\": true,\n"
    "  \"vocab_size\": 128256\n"
    "}\n";

#define BASE "\"vocab_size\": 32, \"hidden_size\": 16, \"intermediate_size\": 24, \"num_hidden_layers\": 2, "

static int cfg_parse(LlamaConfig *c, const char *json, afx_err *e) {
    size_t n = strlen(json);
    char *copy = malloc(n ? n : 1); /* not NUL-terminated: the reader must respect len */
    if (n) memcpy(copy, json, n);
    int rc = llama_config_from_json(c, copy, n, "cfg.json", e);
    free(copy);
    return rc;
}

static void expect_cfg_fail_at(const char *json, const char *hint, int line) {
    LlamaConfig c;
    afx_err e = {{0}};
    int rc = cfg_parse(&c, json, &e);
    char what[AFX_ERR_LEN + 160];
    snprintf(what, sizeof what, "config: expected failure with '%s', got rc=%d msg='%s'", hint, rc, e.msg);
    check_at(rc == -1 && strncmp(e.msg, "cfg.json: ", 10) == 0 && strstr(e.msg, hint) != NULL, __FILE__, line, what, NULL);
}
#define EXPECT_CFG_FAIL(json, hint) expect_cfg_fail_at(json, hint, __LINE__)

/* JSON as Python reads it (json_read.h): a repeated key's last value; \u0000 refused */
static void test_json_python_rules(void) {
    LlamaConfig c;
    afx_err e = {{0}};
    CHECKM(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 2, \"num_attention_heads\": 4}", &e) == 0 && c.NH == 4, e.msg);
    CHECKM(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 4, \"rope_scaling\": {\"rope_type\": \"llama3\", "
                         "\"rope_type\": \"default\"}}", &e) == 0 && c.rope_factor == 0, e.msg); // nested objects too
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 4, \"model_type\": \"lla\\u0000ma\"}", "\\u0000");
    CHECKM(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 4, \"x\": \"a\\\\u0000\"}", &e) == 0, e.msg); // an escaped backslash, then text
    const char *dup = "{\"b\": 1, \"a\": 2, \"b\": 3, \"c\": {\"x\": 1, \"x\": 2, \"x\": 5}, \"a\": 4}";
    cJSON *j = cJSON_Parse(dup);
    size_t dropped = afx_json_last_wins(j);
    CHECK(dropped == 4 && cJSON_GetObjectItem(j, "a")->valueint == 4 && cJSON_GetObjectItem(j, "b")->valueint == 3 &&
          cJSON_GetObjectItem(cJSON_GetObjectItem(j, "c"), "x")->valueint == 5 && cJSON_GetArraySize(j) == 3);
    cJSON_Delete(j);
}

static void test_config(void) {
    LlamaConfig c;
    afx_err e = {{0}};
    test_json_python_rules();
    int rc = cfg_parse(&c, LLAMA32_1B, &e);
    CHECK(rc == 0);
    if (rc) printf("  message: %s\n", e.msg);
    CHECK(c.V == 128256 && c.C == 2048 && c.FF == 8192 && c.L == 16 && c.NH == 32 && c.NKV == 8 && c.HS == 64);
    CHECK(c.eps == 1e-5 && c.rope_theta == 500000.0 && c.tied == 1 && c.max_pos == 131072);
    CHECK(c.rope_factor == 32.0 && c.rope_low_freq_factor == 1.0 && c.rope_high_freq_factor == 4.0 &&
          c.rope_original_max_position == 8192.0);

    /* defaults */
    CHECK(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 4}", &e) == 0);
    CHECK(c.NKV == 4 && c.HS == 4 && c.eps == 1e-6 && c.rope_theta == 10000.0 && c.rope_factor == 0 && c.tied == 0 &&
          c.max_pos == 2048);
    CHECK(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 4, \"num_key_value_heads\": null, \"head_dim\": null,"
                        " \"rope_scaling\": null, \"rms_norm_eps\": 1e-5}",
                    &e) == 0);
    CHECK(c.NKV == 4 && c.HS == 4 && c.eps == 1e-5 && c.rope_factor == 0);
    /* head_dim != hidden/heads, GQA, untied */
    CHECK(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 6,"
                        " \"tie_word_embeddings\": false, \"max_position_embeddings\": 64}",
                    &e) == 0);
    CHECK(c.NH == 4 && c.NKV == 2 && c.HS == 6 && c.tied == 0 && c.max_pos == 64);
    /* tied, llama3 under the older "type" key */
    CHECK(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 2, \"tie_word_embeddings\": true, \"rope_scaling\":"
                        " {\"type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4,"
                        " \"original_max_position_embeddings\": 16}}",
                    &e) == 0);
    CHECK(c.tied == 1 && c.rope_factor == 8 && c.rope_original_max_position == 16);
    /* rope_scaling "default" = none */
    CHECK(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 2, \"rope_scaling\": {\"rope_type\": \"default\"}}", &e) == 0 &&
          c.rope_factor == 0);
    /* transformers 5: rope_parameters carries the type and theta */
    CHECK(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 2, \"rope_parameters\": {\"rope_type\": \"llama3\","
                        " \"rope_theta\": 500000.0, \"factor\": 32.0, \"low_freq_factor\": 1.0,"
                        " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}}",
                    &e) == 0);
    CHECK(c.rope_theta == 500000.0 && c.rope_factor == 32.0 && c.rope_original_max_position == 8192);
    CHECK(cfg_parse(&c, "{" BASE "\"num_attention_heads\": 2, \"rope_parameters\": {\"rope_type\": \"default\","
                        " \"rope_theta\": 1000000.0}}",
                    &e) == 0 &&
          c.rope_theta == 1e6 && c.rope_factor == 0);

    /* errors, each naming the field */
    EXPECT_CFG_FAIL("{\"hidden_size\": 16, \"intermediate_size\": 24, \"num_hidden_layers\": 2, \"num_attention_heads\": 2}",
                    "'vocab_size' is missing");
    EXPECT_CFG_FAIL("{" BASE "\"foo\": 1}", "'num_attention_heads' is missing");
    EXPECT_CFG_FAIL("{\"vocab_size\": 32, \"hidden_size\": \"16\"}", "'hidden_size' must be an integer, not a string");
    EXPECT_CFG_FAIL("{\"vocab_size\": 32, \"hidden_size\": 16.5}", "'hidden_size' must be a positive integer");
    EXPECT_CFG_FAIL("{\"vocab_size\": 0}", "'vocab_size' must be a positive integer");
    EXPECT_CFG_FAIL("{\"vocab_size\": -3}", "'vocab_size' must be a positive integer");
    EXPECT_CFG_FAIL("{\"vocab_size\": 1e12}", "'vocab_size' must be a positive integer");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"tie_word_embeddings\": \"yes\"}",
                    "'tie_word_embeddings' must be true or false");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rms_norm_eps\": \"1e-5\"}", "'rms_norm_eps' must be a number");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rms_norm_eps\": 0}", "'rms_norm_eps' must be a positive number");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rope_theta\": -1}", "'rope_theta'");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 3}", "'head_dim' is missing and hidden_size 16");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 4, \"num_key_value_heads\": 3}", "num_key_value_heads");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"head_dim\": 5}", "head_dim");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}",
                    "rope_type 'yarn' is not supported");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}",
                    "'linear' is not supported");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rope_parameters\": {\"rope_type\": \"dynamic\"}}",
                    "rope_parameters rope_type 'dynamic'");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8,"
                    " \"low_freq_factor\": 1, \"original_max_position_embeddings\": 16}}",
                    "'rope_scaling.high_freq_factor' is missing");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rope_scaling\": {\"factor\": 8}}", "'rope_scaling' has no 'rope_type'");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"rope_scaling\": 8}", "'rope_scaling' must be an object");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"hidden_act\": \"gelu\"}", "'hidden_act' is \"gelu\"");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2, \"attention_bias\": true}", "'attention_bias' is true");
    EXPECT_CFG_FAIL("{" BASE "\"num_attention_heads\": 2,}", "not valid JSON");
    EXPECT_CFG_FAIL("", "not valid JSON");
    EXPECT_CFG_FAIL("[1, 2]", "not a JSON object");
    EXPECT_CFG_FAIL("{\"a\": 1} {}", "not valid JSON");

    /* every strict prefix of a real config is an error, never a crash */
    size_t n = strlen(LLAMA32_1B);
    int bad = 0;
    for (size_t k = 0; k + 1 < n; k++) { /* the last byte is a newline: dropping it stays valid */
        char *copy = malloc(k ? k : 1);
        memcpy(copy, LLAMA32_1B, k);
        afx_err e2 = {{0}};
        if (llama_config_from_json(&c, copy, k, "cfg.json", &e2) != -1 || strncmp(e2.msg, "cfg.json: ", 10) != 0)
            bad++;
        free(copy);
    }
    CHECK(bad == 0);
}

/* ---- weights: a Llama tensor table through safetensors -------------------------------------- */

static double weight_value(int kind, int layer, size_t i) { return kind * 1000.0 + layer * 100.0 + (double)i * 0.5; }

/* All tensors of cfg under prefix, as F64 (or F32 with f32=1); skip_kind/skip_layer leaves one out,
 * swap_kind writes that kind with its two dimensions swapped. */
static Buf llama_file(const LlamaConfig *cfg, const char *prefix, int f32, int skip_kind, int skip_layer, int swap_kind) {
    WT ts[64];
    char names[64][128];
    int n = 0;
    for (int kind = 0; kind < LT_COUNT; kind++) {
        int layers = llama_tensor_is_per_layer(kind) ? cfg->L : 1;
        for (int l = 0; l < layers; l++) {
            char nm[96];
            size_t shape[2];
            int ndim;
            if (llama_tensor_info(cfg, kind, l, nm, sizeof nm, shape, &ndim)) continue;
            if (kind == skip_kind && l == skip_layer) continue;
            WT *t = &ts[n];
            memset(t, 0, sizeof *t);
            snprintf(names[n], sizeof names[n], "%s%s", prefix, nm);
            t->name = names[n];
            t->dtype = f32 ? "F32" : "F64";
            t->ndim = ndim;
            t->shape[0] = (int64_t)shape[ndim == 2 && kind == swap_kind ? 1 : 0];
            if (ndim == 2) t->shape[1] = (int64_t)shape[kind == swap_kind ? 0 : 1];
            size_t numel = ndim == 2 ? shape[0] * shape[1] : shape[0];
            for (size_t i = 0; i < numel; i++) {
                if (f32) put_f32(&t->data, (float)weight_value(kind, l, i));
                else put_f64(&t->data, weight_value(kind, l, i));
            }
            n++;
        }
    }
    WT extra = {"input_ids", "I64", 1, {1}, {0}};
    put_le(&extra.data, 7, 8);
    ts[n++] = extra;
    Buf b = build(ts, n, "{\"case\":\"weights\"}");
    for (int i = 0; i < n; i++) free(ts[i].data.p);
    return b;
}

static int params_match(const LlamaParams *p) {
    for (int kind = 0; kind < LT_COUNT; kind++) {
        if (!llama_tensor_exists(&p->cfg, kind)) continue;
        int layers = llama_tensor_is_per_layer(kind) ? p->cfg.L : 1;
        for (int l = 0; l < layers; l++) {
            const real *x = llama_tensor_ptr(p, kind, l);
            size_t n = llama_tensor_numel(&p->cfg, kind);
            for (size_t i = 0; i < n; i++)
                if (x[i] != (real)weight_value(kind, l, i)) return 0;
        }
    }
    return 1;
}

static int load_buf(LlamaParams *p, const Buf *b, const char *prefix, afx_err *e) {
    Parsed ps;
    int rc = parse_copy(&ps, b->p, b->n, e);
    if (rc == 0) rc = llama_params_load_st(p, &ps.f, "model.safetensors", prefix, e);
    parsed_free(&ps);
    return rc;
}

static void test_weights(void) {
    LlamaConfig cfg = {.V = 7, .C = 8, .FF = 12, .L = 2, .NH = 2, .NKV = 1, .HS = 6, .eps = 1e-5,
                       .rope_theta = 10000, .max_pos = 64};
    afx_err e = {{0}};
    for (int tied = 0; tied <= 1; tied++) {
        cfg.tied = tied;
        LlamaParams p;
        if (!REQUIREM(llama_params_alloc(&p, &cfg, &e) == 0, e.msg)) return;
        Buf b = llama_file(&cfg, "", 0, -1, -1, -1);
        CHECK(load_buf(&p, &b, "", &e) == 0 && params_match(&p));
        free(b.p);
        memset(p.mem, 0, p.count * sizeof(real));
        b = llama_file(&cfg, "grad.", 1, -1, -1, -1); /* F32 storage, with a prefix */
        CHECK(load_buf(&p, &b, "grad.", &e) == 0 && params_match(&p));
        CHECK(load_buf(&p, &b, "", &e) == -1 && strstr(e.msg, "model.safetensors: tensor 'model.embed_tokens.weight' is missing"));
        free(b.p);

        b = llama_file(&cfg, "adamw.step1.", 0, LT_WU, 1, -1);
        CHECK(load_buf(&p, &b, "adamw.step1.", &e) == -1 &&
              strstr(e.msg, "model.safetensors: tensor 'adamw.step1.model.layers.1.mlp.up_proj.weight' is missing"));
        free(b.p);
        b = llama_file(&cfg, "", 0, -1, -1, LT_WO);
        CHECK(load_buf(&p, &b, "", &e) == -1 &&
              strstr(e.msg, "model.safetensors: tensor 'model.layers.0.self_attn.o_proj.weight' has shape [12,8], expected [8,12]"));
        free(b.p);
        llama_params_free(&p);
    }
    /* an untied model needs lm_head */
    cfg.tied = 0;
    LlamaParams p;
    if (REQUIREM(llama_params_alloc(&p, &cfg, &e) == 0, e.msg)) {
        Buf b = llama_file(&cfg, "", 0, LT_LM_HEAD, 0, -1);
        CHECK(load_buf(&p, &b, "", &e) == -1 && strstr(e.msg, "tensor 'lm_head.weight' is missing"));
        free(b.p);
        /* an integer tensor where a weight belongs */
        Buf d = {0};
        for (int i = 0; i < 8; i++) put_le(&d, 1, 8);
        b = raw("{\"model.embed_tokens.weight\":{\"dtype\":\"I64\",\"shape\":[1,8],\"data_offsets\":[0,64]}}", &d);
        cfg.V = 1;
        LlamaParams q;
        if (REQUIREM(llama_params_alloc(&q, &cfg, &e) == 0, e.msg)) {
            CHECK(load_buf(&q, &b, "", &e) == -1 && strstr(e.msg, "model.safetensors: tensor 'model.embed_tokens.weight'") &&
                  strstr(e.msg, "floating dtype"));
            llama_params_free(&q);
        }
        free(b.p);
        free(d.p);
        llama_params_free(&p);
    }
}

int main(void) {
    char dir[] = "/tmp/affix_test_io_XXXXXX";
    const char *tmp = getenv("TMPDIR");
    char dirbuf[512];
    if (tmp && *tmp) snprintf(dirbuf, sizeof dirbuf, "%s/affix_test_io_XXXXXX", tmp);
    else snprintf(dirbuf, sizeof dirbuf, "%s", dir);

    test_valid();
    test_malformed();
    test_sweep_and_fuzz();
    test_config();
    test_weights();
    if (require_at(mkdtemp(dirbuf) != NULL, __FILE__, __LINE__, "create a temporary directory", dirbuf)) {
        test_files(dirbuf);
        rmdir(dirbuf);
    }
    return check_summary();
}
