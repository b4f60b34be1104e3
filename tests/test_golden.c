/* test_golden.c — the golden suite: every case listed in golden/MANIFEST through the reference,
 * every stored tensor compared (tests/golden_check.c), then proof that a corrupt, truncated,
 * tampered or missing golden file makes the suite fail rather than pass.
 *
 * usage: test_golden [-v] [GOLDEN_DIR]        (default: golden)
 * Ends with "N passed, M failed"; exit 1 if anything failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "golden_check.h"
#include "safetensors.h"
#ifndef AFFIX_F64
#include "kernels_simd.h"
#endif

#define MAX_CASES 256

static int pass, fail;

static void check(int ok, const char *what, const char *detail) {
    if (ok) pass++; else fail++;
    printf("  %s  %s%s%s\n", ok ? "ok  " : "FAIL", what, detail && *detail ? ": " : "", detail ? detail : "");
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = sz > 0 ? malloc((size_t)sz) : NULL;
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) { free(buf); buf = NULL; }
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static int spit(const char *path, const unsigned char *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(buf, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Run a damaged copy; it must be refused (rc -1) or produce at least one mismatch. */
static void expect_failure(const char *what, const char *path) {
    golden_tally t = {0};
    t.quiet = 1;
    afx_err e = {{0}};
    int rc = golden_run_case(path, &t, &e);
    char detail[600];
    if (rc) snprintf(detail, sizeof detail, "refused: %s", e.msg);
    else if (t.fail) snprintf(detail, sizeof detail, "%d mismatches reported", t.fail);
    else snprintf(detail, sizeof detail, "the damaged file PASSED");
    check(rc != 0 || t.fail > 0, what, detail);
}

/* byte offset of a tensor's data inside the file */
static size_t data_offset(const unsigned char *buf, const st_tensor *s) { return (size_t)(s->data - buf); }

static void corruption_tests(const char *good_path) {
    size_t n;
    unsigned char *orig = slurp(good_path, &n);
    if (!orig) { check(0, "read a golden file for the corruption tests", good_path); return; }
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char bad[512];
    snprintf(bad, sizeof bad, "%s/affix_bad_golden_%ld.safetensors", tmpdir, (long)getpid());
    unsigned char *buf = malloc(n);
    st_file f = {0};
    afx_err e = {{0}};
    if (!buf || st_parse(&f, orig, n, good_path, &e)) {
        check(0, "parse the golden file for the corruption tests", e.msg);
        free(buf);
        free(orig);
        return;
    }

    expect_failure("missing golden file is refused", "golden/does-not-exist.safetensors");

    memcpy(buf, orig, n);
    if (spit(bad, buf, n / 2) == 0) expect_failure("truncated golden file is refused", bad);

    memcpy(buf, orig, n);
    buf[7] = 0x7f; // header length ~2^63
    if (spit(bad, buf, n) == 0) expect_failure("absurd header length is refused", bad);

    memcpy(buf, orig, n);
    buf[8] = 'X'; // the JSON header no longer starts with '{'
    if (spit(bad, buf, n) == 0) expect_failure("malformed JSON header is refused", bad);

    // a weight changed: the computed activations no longer match the stored ones
    const st_tensor *s = st_find(&f, "model.norm.weight");
    if (s) {
        memcpy(buf, orig, n);
        double three = 3.0;
        memcpy(buf + data_offset(orig, s), &three, sizeof three);
        if (spit(bad, buf, n) == 0) expect_failure("a tampered weight makes comparisons fail", bad);
    }
    // a stored activation nudged by 1e-3 must be caught
    s = st_find(&f, "act.logits");
    if (s) {
        memcpy(buf, orig, n);
        double v;
        memcpy(&v, orig + data_offset(orig, s), sizeof v);
        v += 1e-3;
        memcpy(buf + data_offset(orig, s), &v, sizeof v);
        if (spit(bad, buf, n) == 0) expect_failure("a logit off by 1e-3 is caught", bad);
    }
    // a stored gradient nudged by 1% of the tensor's scale must be caught
    s = st_find(&f, "grad.model.norm.weight");
    if (s) {
        memcpy(buf, orig, n);
        double v;
        memcpy(&v, orig + data_offset(orig, s), sizeof v);
        v = v * 1.01 + 1e-3;
        memcpy(buf + data_offset(orig, s), &v, sizeof v);
        if (spit(bad, buf, n) == 0) expect_failure("a gradient off by 1% is caught", bad);
    }
    // a tensor renamed in the header: missing where expected, and unknown extra tensor
    {
        memcpy(buf, orig, n);
        const char *key = "\"act.norm\"";
        size_t hl = 0;
        for (int i = 0; i < 8; i++) hl |= (size_t)orig[i] << (8 * i);
        char *hdr = (char *)buf + 8;
        char *hit = NULL;
        for (size_t i = 0; i + strlen(key) <= hl && !hit; i++)
            if (memcmp(hdr + i, key, strlen(key)) == 0) hit = hdr + i;
        if (hit) {
            hit[8] = 'n'; // "act.norn"
            if (spit(bad, buf, n) == 0) expect_failure("a renamed golden tensor is refused", bad);
        }
    }
    remove(bad);
    st_close(&f);
    free(buf);
    free(orig);
}

int main(int argc, char **argv) {
    const char *dir = "golden";
    golden_tally t = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) t.verbose = 1;
        else dir = argv[i];
    }
    if (getenv("AFFIX_VERBOSE")) t.verbose = 1;
    const char *kname = "ref";
#ifndef AFFIX_F64
    char kmsg[200]; // AFFIX_KERNELS picks the kernel table (default ref)
    const Kernels *K = kernels_from_env("ref", kmsg, sizeof kmsg);
    if (!K) {
        printf("  FAIL  AFFIX_KERNELS: %s\n0 passed, 1 failed\n", kmsg);
        return 1;
    }
    kname = K->name;
#endif
    printf("golden suite (%s build, kernels %s) on %s/MANIFEST\n", AFFIX_REAL_NAME, kname, dir);
    static char names[MAX_CASES][256];
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%.1000s/MANIFEST", dir);
    afx_err e = {{0}};
    int n = golden_read_manifest(mpath, names, MAX_CASES, &e);
    if (n < 0) {
        printf("  FAIL  %s\n0 passed, 1 failed\n", e.msg);
        return 1;
    }
    char first[1024] = "";
    int cases_ok = 0;
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%.700s/%.255s", dir, names[i]);
        if (!first[0]) snprintf(first, sizeof first, "%s", path);
        int before = t.fail;
        if (golden_run_case(path, &t, &e)) {
            t.fail++;
            printf("  FAIL  %s\n", e.msg);
        } else if (t.fail == before) {
            cases_ok++;
        }
        printf("case %-40s %s\n", names[i], t.fail == before ? "ok" : "FAILED");
    }
    pass = t.pass;
    fail = t.fail;
    check(n >= 8, "MANIFEST lists at least 8 golden cases", "");
    golden_print_summary(&t);
    corruption_tests(first);
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
