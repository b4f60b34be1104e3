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

#include "check.h"
#include "golden_check.h"
#include "safetensors.h"
#ifndef AFFIX_F64
#include "kernels_simd.h"
#endif

#define MAX_CASES 256

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

/* writes the damaged copy and runs it; a copy that cannot be written is a counted failure */
static void expect_failure_of(const char *what, const char *bad, const unsigned char *buf, size_t n) {
    char setup[300];
    snprintf(setup, sizeof setup, "%s: write the damaged copy", what);
    if (require(spit(bad, buf, n) == 0, setup, bad)) expect_failure(what, bad);
}

/* the tensor a corruption case changes; a golden file without it is a counted failure */
static const st_tensor *find_for(const st_file *f, const char *path, const char *name, const char *what) {
    const st_tensor *s = st_find(f, name);
    char setup[300];
    snprintf(setup, sizeof setup, "%s: the golden file has %s", what, name);
    return require(s != NULL, setup, path) ? s : NULL;
}

/* byte offset of a tensor's data inside the file */
static size_t data_offset(const unsigned char *buf, const st_tensor *s) { return (size_t)(s->data - buf); }

static void corruption_tests(const char *good_path) {
    size_t n;
    unsigned char *orig = slurp(good_path, &n);
    if (!require(orig != NULL, "read a golden file for the corruption tests", good_path)) return;
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char bad[512];
    snprintf(bad, sizeof bad, "%s/affix_bad_golden_%ld.safetensors", tmpdir, (long)getpid());
    unsigned char *buf = malloc(n);
    st_file f = {0};
    afx_err e = {{0}};
    if (!require(buf && !st_parse(&f, orig, n, good_path, &e), "parse the golden file for the corruption tests", e.msg)) {
        free(buf);
        free(orig);
        return;
    }

    expect_failure("missing golden file is refused", "golden/does-not-exist.safetensors");

    memcpy(buf, orig, n);
    expect_failure_of("truncated golden file is refused", bad, buf, n / 2);

    memcpy(buf, orig, n);
    buf[7] = 0x7f; // header length ~2^63
    expect_failure_of("absurd header length is refused", bad, buf, n);

    memcpy(buf, orig, n);
    buf[8] = 'X'; // the JSON header no longer starts with '{'
    expect_failure_of("malformed JSON header is refused", bad, buf, n);

    // a weight changed: the computed activations no longer match the stored ones
    const char *what = "a tampered weight makes comparisons fail";
    const st_tensor *s = find_for(&f, good_path, "model.norm.weight", what);
    if (s) {
        memcpy(buf, orig, n);
        double three = 3.0;
        memcpy(buf + data_offset(orig, s), &three, sizeof three);
        expect_failure_of(what, bad, buf, n);
    }
    // a stored activation nudged by 1e-3 must be caught
    what = "a logit off by 1e-3 is caught";
    s = find_for(&f, good_path, "act.logits", what);
    if (s) {
        memcpy(buf, orig, n);
        double v;
        memcpy(&v, orig + data_offset(orig, s), sizeof v);
        v += 1e-3;
        memcpy(buf + data_offset(orig, s), &v, sizeof v);
        expect_failure_of(what, bad, buf, n);
    }
    // a stored gradient nudged by 1% of the tensor's scale must be caught
    what = "a gradient off by 1% is caught";
    s = find_for(&f, good_path, "grad.model.norm.weight", what);
    if (s) {
        memcpy(buf, orig, n);
        double v;
        memcpy(&v, orig + data_offset(orig, s), sizeof v);
        v = v * 1.01 + 1e-3;
        memcpy(buf + data_offset(orig, s), &v, sizeof v);
        expect_failure_of(what, bad, buf, n);
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
        if (require(hit != NULL, "a renamed golden tensor is refused: the header names \"act.norm\"", good_path)) {
            hit[8] = 'n'; // "act.norn"
            expect_failure_of("a renamed golden tensor is refused", bad, buf, n);
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
    if (!require(K != NULL, "AFFIX_KERNELS", kmsg)) return check_summary();
    kname = K->name;
#endif
    printf("golden suite (%s build, kernels %s) on %s/MANIFEST\n", AFFIX_REAL_NAME, kname, dir);
    static char names[MAX_CASES][256];
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%.1000s/MANIFEST", dir);
    afx_err e = {{0}};
    int n = golden_read_manifest(mpath, names, MAX_CASES, &e);
    if (!require(n >= 0, "read the MANIFEST", e.msg)) return check_summary();
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
    check_add(t.pass, t.fail);
    check(n >= 8, "MANIFEST lists at least 8 golden cases", "");
    golden_print_summary(&t);
    corruption_tests(first);
    return check_summary();
}
