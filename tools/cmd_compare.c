/* cmd_compare.c — affix compare A B [--tol X]: do two safetensors files hold the same tensors?
 *
 * For an adapter trained twice (on 1 and on K ranks, on two machines, by affix and by PEFT) or two
 * checkpoints: one row per tensor with its shape, max |a - b|, max |a| and their ratio (the error
 * relative to the tensor's largest value, as the golden tests measure it). Exit 0 when every tensor
 * is within --tol (default 0: identical values), 1 when one is not or the files hold different
 * names or shapes, 2 on a usage error. Values are compared as doubles, whatever the dtypes.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "safetensors.h"

static int usage(void) {
    fprintf(stderr, "usage: affix compare A.safetensors B.safetensors [--tol X (0: identical)] [--quiet]\n");
    return 2;
}

/* max |a - b| and max |a| over one tensor pair of n values; 1 when a NaN is on one side only */
static int tensor_diff(const double *a, const double *b, size_t n, double *diff, double *amax) {
    int nan_mismatch = 0;
    *diff = *amax = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) { nan_mismatch |= isnan(a[i]) != isnan(b[i]); continue; }
        double d = a[i] == b[i] ? 0 : fabs(a[i] - b[i]); // equal infinities are equal
        if (d > *diff) *diff = d;
        if (fabs(a[i]) > *amax) *amax = fabs(a[i]);
    }
    return nan_mismatch;
}

int cmd_compare(int argc, char **argv) {
    const char *path[2] = {NULL, NULL};
    double tol = 0;
    int quiet = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tol")) {
            if (i + 1 >= argc) { fprintf(stderr, "affix: error: --tol needs a value\n"); return 2; }
            if (cli_double("--tol", argv[++i], 0, DBL_MAX, &tol)) return 2;
        } else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage();
        else if (!strncmp(argv[i], "--", 2)) { fprintf(stderr, "affix: error: compare: unknown option '%s'\n", argv[i]); return 2; }
        else if (!path[0]) path[0] = argv[i];
        else if (!path[1]) path[1] = argv[i];
        else return usage();
    }
    if (!path[1]) return usage();
    st_file f[2];
    memset(f, 0, sizeof f);
    afx_err e = {{0}};
    for (int k = 0; k < 2; k++)
        if (st_open(&f[k], path[k], &e)) {
            fprintf(stderr, "affix: error: %s\n", e.msg);
            st_close(&f[0]);
            return 1;
        }
    int bad = 0, rc = 0;
    // names: both files are sorted by name (st_parse), so one merge finds the ones on one side
    for (size_t i = 0, j = 0; i < f[0].n_tensors || j < f[1].n_tensors;) {
        int c = i == f[0].n_tensors ? 1 : j == f[1].n_tensors ? -1 : strcmp(f[0].tensors[i].name, f[1].tensors[j].name);
        if (c) {
            const char *only = c < 0 ? f[0].tensors[i++].name : f[1].tensors[j++].name;
            printf("%-48s only in %s\n", only, path[c < 0 ? 0 : 1]);
            bad++;
            continue;
        }
        const st_tensor *a = &f[0].tensors[i++], *b = &f[1].tensors[j++];
        char shape[96] = "";
        for (int d = 0; d < a->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "x" : "", (long long)a->shape[d]);
        int same_shape = a->ndim == b->ndim;
        for (int d = 0; same_shape && d < a->ndim; d++) same_shape = a->shape[d] == b->shape[d];
        if (!same_shape) {
            printf("%-48s shapes differ (%s in %s)\n", a->name, shape, path[0]);
            bad++;
            continue;
        }
        double *va = malloc(sizeof(double) * (a->numel ? a->numel : 1)), *vb = malloc(sizeof(double) * (b->numel ? b->numel : 1));
        if (!va || !vb || st_to_f64(a, va, &e) || st_to_f64(b, vb, &e)) {
            fprintf(stderr, "affix: error: %s\n", va && vb ? e.msg : "out of memory");
            free(va), free(vb);
            rc = 1;
            break;
        }
        double diff, amax;
        int nan_mismatch = tensor_diff(va, vb, a->numel, &diff, &amax);
        free(va), free(vb);
        double rel = diff == 0 ? 0 : diff / (amax > 0 ? amax : 1);
        int ok = !nan_mismatch && rel <= tol;
        bad += !ok;
        if (!quiet || !ok)
            printf("%-48s %-14s max|a-b| %.3e  max|a| %.3e  rel %.3e%s%s\n", a->name, shape, diff, amax, rel,
                   nan_mismatch ? "  NaN on one side" : "", ok ? "" : "  DIFFERS");
    }
    if (!rc) printf("%s: %zu tensors, %d beyond --tol %g\n", bad ? "differ" : "same", f[0].n_tensors, bad, tol);
    st_close(&f[0]);
    st_close(&f[1]);
    return rc ? rc : bad ? 1 : 0;
}
