/* test_quant.c — gguf_to_real's dequantizers, bit for bit against the gguf Python package.
 *
 * What this is: for each of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K, the seeded random
 * blocks of tests/data/quant/<TYPE>.bin decoded by gguf_to_real and compared bit for bit with
 * tests/data/quant/<TYPE>.f32, what gguf.quants.dequantize makes of the same bytes (made by
 * tools/oracle/make_quant_vectors.py; see tests/data/quant/README.md). The float build must give
 * those float32 values exactly; the double build must give them widened, exactly. The blocks are
 * decoded at an odd address, from an exact-size heap copy, into an exact-size output, so the
 * sanitizers see any read or write outside them. Then the refusals: a tensor whose element count
 * is not whole blocks, or whose byte count disagrees with it, a type affix cannot convert (named),
 * an unknown type id (named by number); and a GGUF file built in memory holding a Q4_K tensor:
 * read whole, truncated, and with ne[0] not a multiple of 256.
 * What this is not: a test of the rest of the reader (test_models.c, fuzz_gguf.c). Test-only code:
 * one line per failed check, one line per type with its worst error; ends with "N passed, M failed".
 * Run from the repository root (make test does).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gguf.h"

#define DATA_DIR "tests/data/quant/"


/* the types under test, with their ids and block shapes as ggml defines them (independent of the
 * reader's own table) */
static const struct {
    const char *name;
    uint32_t id;
    size_t blck, bytes;
} TYPES[] = {
    {"F32", 0, 1, 4},      {"F16", 1, 1, 2},      {"BF16", 30, 1, 2},    {"Q8_0", 8, 32, 34},
    {"Q4_0", 2, 32, 18},   {"Q4_1", 3, 32, 20},   {"Q5_0", 6, 32, 22},   {"Q5_1", 7, 32, 24},
    {"Q4_K", 12, 256, 144}, {"Q5_K", 13, 256, 176}, {"Q6_K", 14, 256, 210},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

/* the whole file in an exact-size buffer (a 1-byte buffer for an empty file), or NULL */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *p = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc(len ? (size_t)len : 1)) != NULL &&
        fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) *n = (size_t)len;
    return p;
}

static float f32_le(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* a hand-made tensor over data (not from a file) */
static gguf_tensor tensor(const char *name, uint32_t type, size_t numel, const unsigned char *data, size_t nbytes) {
    gguf_tensor t;
    memset(&t, 0, sizeof t);
    t.name = (char *)name;
    t.n_dims = 1;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) t.ne[i] = 1;
    t.ne[0] = (int64_t)numel;
    t.type = type;
    t.numel = numel;
    t.nbytes = nbytes;
    t.data = data;
    return t;
}

/* ---- each type against its vectors --------------------------------------------------------- */

/* Decodes TYPES[k]'s blocks, compares them with the expected values; on success leaves the blocks
 * and values in *blocks / *want (the caller frees them) for the refusal tests. */
static void test_vectors(size_t k, unsigned char **blocks, size_t *nb, float **want, size_t *nw) {
    const char *name = TYPES[k].name;
    size_t blck = TYPES[k].blck, bytes = TYPES[k].bytes;
    char path[256], tname[64];
    *blocks = NULL, *want = NULL;

    CHECKM(gguf_type_supported(TYPES[k].id) && !strcmp(gguf_type_name(TYPES[k].id), name), name);

    snprintf(path, sizeof path, DATA_DIR "%s.bin", name);
    size_t nbin = 0, nf32 = 0;
    unsigned char *bin = slurp(path, &nbin);
    CHECKM(bin != NULL, path);
    snprintf(path, sizeof path, DATA_DIR "%s.f32", name);
    unsigned char *f32 = slurp(path, &nf32);
    CHECKM(f32 != NULL, path);
    size_t numel = nf32 / 4, nblocks = numel / blck;
    int sizes_ok = bin && f32 && nf32 % 4 == 0 && numel > 0 && numel % blck == 0 && nbin == nblocks * bytes;
    CHECKM(sizes_ok, name);
    if (!sizes_ok) {
        printf("  %-5s SETUP FAILED: %s.bin (%zu bytes) and %s.f32 (%zu bytes) missing or inconsistent\n", name, name,
               nbin, name, nf32);
        free(bin), free(f32);
        return;
    }

    float *exp = malloc(numel * sizeof *exp);
    unsigned char *odd = malloc(nbin + 1); /* the blocks at an odd address, ending the allocation */
    real *out = malloc(numel * sizeof *out);
    if (!exp || !odd || !out) {
        fprintf(stderr, "test_quant: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < numel; i++) exp[i] = f32_le(f32 + 4 * i);
    memcpy(odd + 1, bin, nbin);

    snprintf(tname, sizeof tname, "quant.%s", name);
    gguf_tensor t = tensor(tname, TYPES[k].id, numel, odd + 1, nbin);
    afx_err e = {{0}};
    for (size_t i = 0; i < numel; i++) out[i] = (real)-12345;
    int rc = gguf_to_real(&t, out, &e);
    CHECKM(rc == 0, e.msg);
    size_t differ = 0;
    double worst = 0;
    for (size_t i = 0; i < numel && rc == 0; i++) {
        real w = (real)exp[i]; /* the float32 value, widened in the f64 build: exact */
        if (memcmp(&w, &out[i], sizeof w)) {
            if (differ < 3)
                printf("      %s element %zu: got %.9g, gguf-py %.9g\n", name, i, (double)out[i], (double)exp[i]);
            differ++;
        }
        double err = fabs((double)out[i] - (double)exp[i]);
        if (!(err <= worst)) worst = err; /* a NaN makes worst NaN */
    }
    CHECKM(rc == 0 && differ == 0, name);
    printf("  %-5s %zu blocks, %5zu elements: %zu not bit-identical, worst |error| %g\n", name, nblocks, numel,
           rc ? numel : differ, rc ? NAN : worst);

    free(odd), free(out), free(f32);
    *blocks = bin, *nb = nbin;
    *want = exp, *nw = numel;
}

/* ---- refusals --------------------------------------------------------------------------------- */

/* a tensor over n bytes of an exact-size heap copy of src; gguf_to_real must fail naming it */
static void expect_refused(uint32_t type, size_t numel, const unsigned char *src, size_t n, const char *what,
                           int line) {
    unsigned char *p = malloc(n ? n : 1);
    real *out = malloc((numel ? numel : 1) * sizeof *out);
    if (!p || !out) {
        fprintf(stderr, "test_quant: out of memory\n");
        exit(2);
    }
    if (n) memcpy(p, src, n);
    gguf_tensor t = tensor("blk.7.bad", type, numel, p, n);
    afx_err e = {{0}};
    int rc = gguf_to_real(&t, out, &e);
    int ok = rc == -1 && strstr(e.msg, "'blk.7.bad'") && (!what || strstr(e.msg, what)) && !strchr(e.msg, '\n');
    check_at(ok, __FILE__, line, what ? what : "refused", NULL);
    if (!ok) printf("      rc = %d, message: %s\n", rc, e.msg);
    free(p), free(out);
}

static void test_refusals(size_t k, const unsigned char *blocks, size_t nb) {
    size_t blck = TYPES[k].blck, bytes = TYPES[k].bytes, nblocks = nb / bytes;
    uint32_t id = TYPES[k].id;
    const char *name = TYPES[k].name;
    /* one byte short of the last block */
    expect_refused(id, nblocks * blck, blocks, nb - 1, name, __LINE__);
    /* one block's bytes short */
    expect_refused(id, nblocks * blck, blocks, nb - bytes, name, __LINE__);
    /* a byte too many */
    unsigned char *more = malloc(nb + 1);
    if (!more) exit(2);
    memcpy(more, blocks, nb);
    more[nb] = 0;
    expect_refused(id, nblocks * blck, more, nb + 1, name, __LINE__);
    free(more);
    if (blck > 1) {
        /* an element count that is not whole blocks, with the bytes of the whole blocks, or one more */
        expect_refused(id, nblocks * blck - 1, blocks, nb, "not a whole number", __LINE__);
        expect_refused(id, blck + 1, blocks, 2 * bytes, "not a whole number", __LINE__);
        expect_refused(id, blck / 2, blocks, bytes, "not a whole number", __LINE__);
    }
}

static void test_unsupported(void) {
    unsigned char zeros[292] = {0};
    /* known to the reader, not convertible: named */
    expect_refused(16, 256, zeros, 66, "IQ2_XXS", __LINE__);
    expect_refused(10, 256, zeros, 84, "Q2_K", __LINE__);
    expect_refused(15, 256, zeros, 292, "Q8_K", __LINE__);
    expect_refused(9, 32, zeros, 40, "Q8_1", __LINE__);
    CHECK(!gguf_type_supported(16) && !gguf_type_supported(10) && !gguf_type_supported(9));
    /* ids the reader does not know: named by number */
    expect_refused(99, 32, zeros, 32, "unknown ggml type 99,", __LINE__);
    expect_refused(4, 32, zeros, 32, "unknown ggml type 4,", __LINE__); /* the retired Q4_2 */
    expect_refused(0xFFFFFFFFu, 1, zeros, 4, "unknown ggml type 4294967295,", __LINE__);
    CHECK(!gguf_type_supported(99) && !gguf_type_supported(4) && !gguf_type_supported(0xFFFFFFFFu));
}

/* ---- a Q4_K tensor in a GGUF file --------------------------------------------------------------- */

static size_t put_le(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
    return (size_t)bytes;
}

/* GGUF v3, no metadata, one tensor "blk.0.ffn_down.weight" of type Q4_K and ne = (ne0, 2); data
 * bytes of payload (copied from blocks, as many as given). Returns the file's size. */
static size_t gguf_q4k(unsigned char *f, uint64_t ne0, const unsigned char *blocks, size_t payload) {
    const char *nm = "blk.0.ffn_down.weight";
    size_t n = 0;
    memcpy(f, "GGUF", 4), n += 4;
    n += put_le(f + n, 3, 4);
    n += put_le(f + n, 1, 8); /* tensors */
    n += put_le(f + n, 0, 8); /* metadata */
    n += put_le(f + n, strlen(nm), 8);
    memcpy(f + n, nm, strlen(nm)), n += strlen(nm);
    n += put_le(f + n, 2, 4);
    n += put_le(f + n, ne0, 8);
    n += put_le(f + n, 2, 8);
    n += put_le(f + n, 12, 4); /* Q4_K */
    n += put_le(f + n, 0, 8);  /* offset */
    while (n % GGUF_DEFAULT_ALIGNMENT) f[n++] = 0;
    memcpy(f + n, blocks, payload), n += payload;
    return n;
}

static void test_file(const unsigned char *q4k, size_t nb, const float *want, size_t nw) {
    if (!require_at(q4k && nb >= 4 * 144 && nw >= 4 * 256, __FILE__, __LINE__, "the Q4_K vectors are needed for the file test",
                    NULL))
        return;
    static unsigned char img[128 + 4 * 144];
    struct {
        uint64_t ne0;
        size_t payload;
        const char *error; /* NULL: must parse and decode */
    } cases[] = {
        {512, 4 * 144, NULL},
        {512, 4 * 144 - 1, "outside the data section"},
        {512, 3 * 144, "outside the data section"},
        {500, 4 * 144, "not a multiple of its block size 256"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = gguf_q4k(img, cases[c].ne0, q4k, cases[c].payload);
        unsigned char *copy = malloc(n);
        if (!copy) exit(2);
        memcpy(copy, img, n);
        gguf_file f;
        afx_err e = {{0}};
        int rc = gguf_parse(&f, copy, n, "mem.gguf", &e);
        if (cases[c].error) {
            int ok = rc == -1 && strstr(e.msg, "'blk.0.ffn_down.weight'") && strstr(e.msg, cases[c].error);
            CHECKM(ok, e.msg);
        } else {
            CHECKM(rc == 0, e.msg);
            const gguf_tensor *t = rc == 0 ? gguf_find_tensor(&f, "blk.0.ffn_down.weight") : NULL;
            CHECK(t && t->type == 12 && t->numel == 1024 && t->nbytes == 4 * 144);
            real *out = malloc(1024 * sizeof *out);
            if (!out) exit(2);
            size_t differ = 0;
            if (t && gguf_to_real(t, out, &e) == 0) {
                for (size_t i = 0; i < 1024; i++) {
                    real w = (real)want[i];
                    differ += memcmp(&w, &out[i], sizeof w) != 0;
                }
            } else {
                differ = 1024;
            }
            CHECKM(differ == 0, "Q4_K from a GGUF file");
            free(out);
        }
        gguf_close(&f);
        free(copy);
    }
}

int main(void) {
    printf("gguf_to_real against gguf.quants.dequantize (%s build):\n", sizeof(real) == 8 ? "double" : "float");
    unsigned char *q4k = NULL;
    size_t q4k_n = 0, q4k_w = 0;
    float *q4k_want = NULL;
    for (size_t k = 0; k < N_TYPES; k++) {
        unsigned char *blocks;
        float *want;
        size_t nb = 0, nw = 0;
        test_vectors(k, &blocks, &nb, &want, &nw);
        if (blocks) test_refusals(k, blocks, nb);
        if (blocks && TYPES[k].id == 12) {
            q4k = blocks, q4k_n = nb, q4k_want = want, q4k_w = nw;
        } else {
            free(blocks), free(want);
        }
    }
    test_unsupported();
    test_file(q4k, q4k_n, q4k_want, q4k_w);
    free(q4k), free(q4k_want);
    return check_summary();
}
