/* golden_check.h — run one golden case (a safetensors file from tools/oracle) through the
 * reference and compare every stored tensor with the tolerance table (tests/tolerances.h).
 *
 * Shared by the golden test programs of both builds (float and f64). Test-only code: it prints.
 */
#ifndef AFFIX_GOLDEN_CHECK_H
#define AFFIX_GOLDEN_CHECK_H

#include "err.h"
#include "tolerances.h"

typedef struct {
    int pass, fail;
    double worst[FAM_COUNT]; /* worst metric seen per family, over every case */
    int verbose;             /* 1: one line per tensor; 0: failures only */
    int quiet;               /* 1: print nothing (expected-failure runs) */
} golden_tally;

/* Runs every check of one golden file. Returns -1 (with a message) when the file cannot be used at
 * all — missing, truncated, malformed, wrong shapes, a stored tensor left unchecked — and 0 when it
 * ran; mismatches are counted in t->fail. */
int golden_run_case(const char *path, golden_tally *t, afx_err *e);

/* 1e-5-style threshold of a family for the build being compiled */
double golden_tol(int family, int gemma3); /* the tolerance of a family (Gemma 3 cases: their column) */

/* Worst-error summary per family (the numbers README's tolerance table quotes). */
void golden_print_summary(const golden_tally *t);

/* Reads the file names (first field of each non-comment line ending in .safetensors) listed in a
 * MANIFEST; returns how many (at most max), or -1 with a message. */
int golden_read_manifest(const char *path, char names[][256], int max, afx_err *e);

#endif
