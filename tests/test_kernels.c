/* test_kernels.c — every entry of every optimized kernel table this machine can run, against its
 * scalar twin in ref/core/ops.c (KERNELS_REF), on fresh random inputs of awkward sizes (1, odd
 * lengths, tails past the vector width, M = 1 GEMMs, several K/N/M blocks, GQA, a key prefix,
 * padded and fully masked rows, NULL gradient outputs).
 *
 * For each case: outputs start from identical contents (NaN where the entry overwrites, random
 * values where it accumulates), with guard regions (canaries) before and after every output;
 *   - NMSE = sum (got - ref)^2 / sum ref^2 <= 1e-8 for the GEMM entries, <= 1e-10 for the others
 *     (design.md §4), and every value finite;
 *   - the canaries untouched;
 *   - bitwise reproducible: two runs with 2 OpenMP threads agree, and (SIMD entries, whose every
 *     reduction order is fixed by the shapes) so does a run with 1 thread.
 * Also kernels_select: names, the AFFIX_KERNELS variable, refusals with a message.
 *
 * usage: test_kernels [-v]     one line per case (default: failures + one summary line per entry)
 *        test_kernels --list   the names AFFIX_KERNELS accepts for the tables available here
 * Ends with "N passed, M failed"; exit 1 if anything failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "check.h"
#include "kernels_simd.h"
#include "ops.h"

/* ---- random inputs ---------------------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double urand(void) { // [0,1)
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static float *rnd(size_t n, double scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)((2 * urand() - 1) * scale);
    return p;
}

/* ---- guarded outputs -------------------------------------------------------------------------- */

#define GUARD 37 /* floats of canary before and after every output (odd: not a vector multiple) */
static const uint32_t CANARY = 0x7fc0dead; /* a quiet NaN with a payload: any write changes it */

typedef struct {
    float *base, *p;
    size_t n;
} gbuf;

static gbuf galloc(const float *init, size_t n) {
    gbuf b;
    b.n = n;
    b.base = malloc((n + 2 * GUARD) * sizeof(float));
    if (!require(b.base != NULL, "allocate a guarded output", "out of memory")) exit(check_summary());
    for (size_t i = 0; i < n + 2 * GUARD; i++) memcpy(b.base + i, &CANARY, 4);
    b.p = b.base + GUARD;
    memcpy(b.p, init, n * sizeof(float));
    return b;
}
static int guards_ok(const gbuf *b) {
    for (size_t i = 0; i < GUARD; i++)
        if (memcmp(b->base + i, &CANARY, 4) || memcmp(b->p + b->n + i, &CANARY, 4)) return 0;
    return 1;
}

/* ---- one case: an entry, its inputs, its outputs ---------------------------------------------- */

enum { E_MM_F, E_MM_B, E_RMS_F, E_RMS_B, E_ROPE_F, E_ROPE_B, E_ATT_F, E_ATT_B, E_SWI_F, E_SWI_B, E_GEG_F, E_GEG_B, E_CE_F, E_CE_B, E_COUNT };
static const char *ENTRY[E_COUNT] = {"matmul_forward", "matmul_backward", "rmsnorm_forward", "rmsnorm_backward",
                                     "rope_forward", "rope_backward", "attention_forward", "attention_backward",
                                     "swiglu_forward", "swiglu_backward", "geglu_forward", "geglu_backward",
                                     "crossentropy_forward", "crossentropy_backward"};

typedef struct Case {
    int entry;
    char dims[128];
    int nout;
    size_t outn[4];
    float *init[4]; /* initial contents of each output; NULL: the entry gets a NULL output */
    const char *outname[4];
    /* inputs */
    int N, IC, OC, C, NH, NKV, HS, B, T, S, V;
    size_t n;
    double eps, scale;
    float *a, *b, *c, *d, *e, *f;
    int *ints;
    AttnSpec spec; /* attention: scale, window (Gemma 3); zero = Llama */
} Case;

static void call(const Kernels *K, const Case *c, float **o) {
    switch (c->entry) {
    case E_MM_F: K->matmul_forward(o[0], c->a, c->b, c->N, c->IC, c->OC); break;
    case E_MM_B: K->matmul_backward(o[0], o[1], c->c, c->a, c->b, c->N, c->IC, c->OC); break;
    case E_RMS_F: K->rmsnorm_forward(o[0], o[1], c->a, c->b, c->N, c->C, c->eps); break;
    case E_RMS_B: K->rmsnorm_backward(o[0], o[1], c->c, c->a, c->b, c->d, c->N, c->C); break;
    case E_ROPE_F: K->rope_forward(o[0], c->a, c->b, c->c, c->N, c->NH, c->HS); break;
    case E_ROPE_B: K->rope_backward(o[0], c->a, c->b, c->c, c->N, c->NH, c->HS); break;
    case E_ATT_F: // out, lse and (when its output is given) the probabilities
        K->attention_forward(o[0], o[1], o[2], c->a, c->b, c->c, c->ints, &c->spec, c->B, c->T, c->S, c->NH, c->NKV,
                             c->HS);
        break;
    case E_ATT_B: // (c->f: the scratch, whose contents are each table's own)
        K->attention_backward(o[0], o[1], o[2], c->f, c->e, c->a, c->b, c->c, c->d, c->ints, &c->spec, c->B, c->T, c->S,
                              c->NH, c->NKV, c->HS);
        break;
    case E_SWI_F: K->swiglu_forward(o[0], c->a, c->b, c->n); break;
    case E_SWI_B: K->swiglu_backward(o[0], o[1], c->c, c->a, c->b, c->n); break;
    case E_GEG_F: K->geglu_forward(o[0], c->a, c->b, c->n); break;
    case E_GEG_B: K->geglu_backward(o[0], o[1], c->c, c->a, c->b, c->n); break;
    case E_CE_F: { // the loss sum and the count, as floats (the sum is compared relatively)
        long cnt = -1;
        o[0][0] = (float)K->crossentropy_forward(&cnt, c->a, c->ints, c->B, c->T, c->V);
        o[0][1] = (float)cnt;
        break;
    }
    case E_CE_B: K->crossentropy_backward(o[0], c->a, c->ints, c->scale, c->B, c->T, c->V); break;
    }
}

#ifdef _OPENMP
#define HAVE_THREADS 1
#else
#define HAVE_THREADS 0
#endif

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static double worst[8][E_COUNT];

/* runs c on K and on ref, checks, frees nothing (free_case does) */
static void run_case(const Kernels *K, int ki, const Case *c) {
    gbuf r[4], g[4], g2[4], g1[4];
    float *pr[4] = {0}, *pg[4] = {0}, *pg2[4] = {0}, *pg1[4] = {0};
    for (int i = 0; i < c->nout; i++) {
        if (!c->init[i]) continue;
        r[i] = galloc(c->init[i], c->outn[i]);
        g[i] = galloc(c->init[i], c->outn[i]);
        g2[i] = galloc(c->init[i], c->outn[i]);
        g1[i] = galloc(c->init[i], c->outn[i]);
        pr[i] = r[i].p, pg[i] = g[i].p, pg2[i] = g2[i].p, pg1[i] = g1[i].p;
    }
    call(&KERNELS_REF, c, pr);
    set_threads(2);
    call(K, c, pg);
    call(K, c, pg2);
    set_threads(1);
    call(K, c, pg1);
    set_threads(2);
    int gemm = c->entry == E_MM_F || c->entry == E_MM_B;
    double tol = gemm ? 1e-8 : 1e-10;
    // OpenBLAS chooses its own partition per thread count: its GEMMs are only claimed run-to-run
    int claim_threads = !(gemm && !strncmp(K->name, "blas", 4));
    double nm = 0;
    int finite = 1, guards = 1, repro = 1, threads = 1;
    char bad[160] = "";
    for (int i = 0; i < c->nout; i++) {
        if (!c->init[i]) continue;
        double se = 0, sr = 0;
        for (size_t j = 0; j < c->outn[i]; j++) {
            double d = (double)pg[i][j] - (double)pr[i][j];
            if (!isfinite(pg[i][j]) && !(isnan(pr[i][j]) && isnan(pg[i][j]))) finite = 0;
            if (isfinite(d)) se += d * d;
            if (isfinite(pr[i][j])) sr += (double)pr[i][j] * pr[i][j];
        }
        double v = sr > 0 ? se / sr : se;
        if (v > nm || !(v == v)) nm = v;
        if (!guards_ok(&r[i]) || !guards_ok(&g[i]) || !guards_ok(&g2[i]) || !guards_ok(&g1[i])) {
            guards = 0;
            snprintf(bad, sizeof bad, "canary overwritten around %s", c->outname[i]);
        }
        if (memcmp(pg[i], pg2[i], c->outn[i] * sizeof(float))) repro = 0;
        if (memcmp(pg[i], pg1[i], c->outn[i] * sizeof(float))) threads = 0;
    }
    if (nm > worst[ki][c->entry]) worst[ki][c->entry] = nm;
    int ok = nm <= tol && finite && guards && repro && (threads || !claim_threads);
    char what[256], detail[400];
    snprintf(what, sizeof what, "%-7s %-21s %s", K->name, ENTRY[c->entry], c->dims);
    snprintf(detail, sizeof detail, "nmse %.1e (<= %.0e)%s%s%s%s%s", nm, tol, finite ? "" : ", NON-FINITE values",
             guards ? "" : ", ", bad, repro ? "" : ", two runs DIFFER",
             !HAVE_THREADS ? " (no OpenMP: one thread)" : threads ? ", 1 = 2 threads bitwise"
             : claim_threads ? ", 1 vs 2 threads DIFFER" : ", 1 vs 2 threads differ (not claimed)");
    check(ok, what, detail);
    for (int i = 0; i < c->nout; i++) {
        if (!c->init[i]) continue;
        free(r[i].base), free(g[i].base), free(g2[i].base), free(g1[i].base);
    }
}

static void free_case(Case *c) {
    for (int i = 0; i < c->nout; i++) free(c->init[i]);
    free(c->a), free(c->b), free(c->c), free(c->d), free(c->e), free(c->f), free(c->ints);
    memset(c, 0, sizeof *c);
}

static float *nans(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* ---- the cases of each entry ------------------------------------------------------------------ */

typedef void (*case_fn)(const Kernels *K, int ki);

static void cases_matmul(const Kernels *K, int ki) {
    // N rows, IC in, OC out: 1 row (dot path), tails, several K slices (> 256), several column
    // blocks (> 2048), several row blocks (> 192)
    static const int dims[][3] = {{1, 3, 5},     {1, 288, 77},  {3, 17, 33},    {4, 100, 50}, {5, 7, 3},
                                  {17, 69, 31},  {69, 67, 130}, {69, 300, 257}, {13, 40, 2100},
                                  {250, 33, 20}, {2, 1, 1},      {33, 512, 64}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        int N = dims[i][0], IC = dims[i][1], OC = dims[i][2];
        Case c = {.entry = E_MM_F, .N = N, .IC = IC, .OC = OC, .nout = 1};
        snprintf(c.dims, sizeof c.dims, "N=%d IC=%d OC=%d", N, IC, OC);
        c.a = rnd((size_t)N * IC, 1), c.b = rnd((size_t)OC * IC, 1 / sqrt(IC));
        c.outn[0] = (size_t)N * OC, c.init[0] = nans(c.outn[0]), c.outname[0] = "out";
        run_case(K, ki, &c);
        free_case(&c);
        for (int which = 0; which < 3; which++) { // both gradients, dinp only, dw only
            Case d = {.entry = E_MM_B, .N = N, .IC = IC, .OC = OC, .nout = 2};
            snprintf(d.dims, sizeof d.dims, "N=%d IC=%d OC=%d%s", N, IC, OC,
                     which == 1 ? " dw=NULL" : which == 2 ? " dinp=NULL" : "");
            d.a = rnd((size_t)N * IC, 1), d.b = rnd((size_t)OC * IC, 1 / sqrt(IC)), d.c = rnd((size_t)N * OC, 1);
            d.outn[0] = (size_t)N * IC, d.outn[1] = (size_t)OC * IC;
            d.init[0] = which == 2 ? NULL : rnd(d.outn[0], 0.3);
            d.init[1] = which == 1 ? NULL : rnd(d.outn[1], 0.3);
            d.outname[0] = "dinp", d.outname[1] = "dw";
            run_case(K, ki, &d);
            free_case(&d);
        }
    }
}

static void cases_rmsnorm(const Kernels *K, int ki) {
    static const int dims[][2] = {{1, 1}, {3, 17}, {17, 69}, {5, 288}, {69, 3}, {2, 100}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        int N = dims[i][0], C = dims[i][1];
        Case c = {.entry = E_RMS_F, .N = N, .C = C, .eps = 1e-5, .nout = 2};
        snprintf(c.dims, sizeof c.dims, "N=%d C=%d", N, C);
        c.a = rnd((size_t)N * C, 2), c.b = rnd((size_t)C, 1.5);
        c.outn[0] = (size_t)N * C, c.outn[1] = (size_t)N;
        c.init[0] = nans(c.outn[0]), c.init[1] = nans(c.outn[1]);
        c.outname[0] = "out", c.outname[1] = "rstd";
        run_case(K, ki, &c);
        free_case(&c);
        for (int which = 0; which < 3; which++) {
            Case d = {.entry = E_RMS_B, .N = N, .C = C, .nout = 2};
            snprintf(d.dims, sizeof d.dims, "N=%d C=%d%s", N, C, which == 1 ? " dw=NULL" : which == 2 ? " dinp=NULL" : "");
            d.a = rnd((size_t)N * C, 2), d.b = rnd((size_t)C, 1.5), d.c = rnd((size_t)N * C, 1);
            d.d = malloc((size_t)N * sizeof(float));
            float *tmp = malloc((size_t)N * C * sizeof(float));
            rmsnorm_forward(tmp, d.d, d.a, d.b, N, C, 1e-5);
            free(tmp);
            d.outn[0] = (size_t)N * C, d.outn[1] = (size_t)C;
            d.init[0] = which == 2 ? NULL : rnd(d.outn[0], 0.3);
            d.init[1] = which == 1 ? NULL : rnd(d.outn[1], 0.3);
            d.outname[0] = "dinp", d.outname[1] = "dw";
            run_case(K, ki, &d);
            free_case(&d);
        }
    }
}

static void cases_rope(const Kernels *K, int ki) {
    // HS odd: element HS-1 is not rotated (and not written) — the same in every table
    static const int dims[][3] = {{1, 1, 2}, {3, 2, 17}, {17, 3, 6}, {5, 4, 48}, {2, 1, 130}, {3, 2, 70}, {4, 3, 64}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        int N = dims[i][0], NH = dims[i][1], HS = dims[i][2], H2 = HS / 2;
        for (int bwd = 0; bwd < 2; bwd++) {
            Case c = {.entry = bwd ? E_ROPE_B : E_ROPE_F, .N = N, .NH = NH, .HS = HS, .nout = 1};
            snprintf(c.dims, sizeof c.dims, "N=%d NH=%d HS=%d", N, NH, HS);
            c.a = rnd((size_t)N * NH * HS, 1);
            c.b = malloc((size_t)N * H2 * sizeof(float) + 4), c.c = malloc((size_t)N * H2 * sizeof(float) + 4);
            for (int n = 0; n < N; n++)
                for (int j = 0; j < H2; j++) {
                    double ang = (n + 3) * pow(10000.0, -2.0 * j / HS);
                    c.b[(size_t)n * H2 + j] = (float)cos(ang), c.c[(size_t)n * H2 + j] = (float)sin(ang);
                }
            c.outn[0] = (size_t)N * NH * HS, c.init[0] = rnd(c.outn[0], 0.5), c.outname[0] = bwd ? "dinp" : "out";
            run_case(K, ki, &c);
            free_case(&c);
        }
    }
}

/* keymask (B,S): pad = 0 none, 1 left padding (row b masks its first b*2 keys: early queries see
 * no key at all), 2 NULL */
static int *make_mask(int B, int S, int pad) {
    if (pad == 2) return NULL;
    int *m = malloc((size_t)B * S * sizeof(int));
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) m[(size_t)b * S + s] = pad == 1 ? s >= 2 * b : 1;
    return m;
}

static void cases_attention(const Kernels *K, int ki) {
    // B T S NH NKV HS pad window exempt: S > T is a key prefix (prefix tuning / KV cache), GQA, odd HS,
    // masks; window > 0: Gemma 3's sliding layers (with a scale 1/sqrt(HS+3) instead of 1/sqrt(HS)),
    // exempt: prefix keys the window never cuts
    static const int dims[][9] = {{1, 1, 1, 1, 1, 1, 2, 0, 0},   {2, 5, 5, 4, 2, 6, 1, 0, 0},
                                  {2, 3, 7, 4, 1, 17, 0, 0, 0},  {1, 17, 17, 3, 3, 33, 2, 0, 0},
                                  {3, 9, 12, 6, 2, 48, 1, 0, 0}, {1, 4, 4, 2, 1, 130, 1, 0, 0},
                                  {2, 20, 20, 2, 2, 64, 0, 0, 0}, {2, 7, 7, 4, 1, 12, 1, 4, 0},
                                  {2, 7, 10, 4, 1, 12, 0, 4, 3}, {1, 9, 13, 4, 2, 17, 2, 3, 0},
                                  {1, 30, 30, 2, 1, 256, 0, 16, 0}, {1, 70, 150, 4, 1, 40, 1, 0, 0},
                                  {2, 130, 130, 2, 2, 16, 1, 0, 0}, {1, 100, 110, 2, 1, 16, 0, 40, 10}};
    // (S > 64: several key blocks of the SIMD online softmax, a later block holding a larger max)
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        int B = dims[i][0], T = dims[i][1], S = dims[i][2], NH = dims[i][3], NKV = dims[i][4], HS = dims[i][5];
        int pad = dims[i][6];
        AttnSpec sp = {dims[i][7] ? 1.0 / sqrt(HS + 3.0) : 0, dims[i][7], dims[i][8]};
        size_t nq = (size_t)B * T * NH * HS, nk = (size_t)B * S * NKV * HS, na = (size_t)B * NH * T * S;
        size_t nl = (size_t)B * NH * T;
        for (int with_att = 1; with_att >= 0; with_att--) { // (the forward without the probabilities too)
        Case c = {.entry = E_ATT_F, .B = B, .T = T, .S = S, .NH = NH, .NKV = NKV, .HS = HS, .nout = 3};
        c.spec = sp;
        snprintf(c.dims, sizeof c.dims, "B=%d T=%d S=%d NH=%d NKV=%d HS=%d mask=%s window=%d exempt=%d", B, T, S, NH,
                 NKV, HS, pad == 2 ? "NULL" : pad ? "leftpad" : "ones", sp.window, sp.exempt);
        c.a = rnd(nq, 1.5), c.b = rnd(nk, 1.5), c.c = rnd(nk, 1), c.ints = make_mask(B, S, pad);
        c.outn[0] = nq, c.outn[1] = nl, c.outn[2] = na, c.init[0] = nans(nq), c.init[1] = nans(nl);
        c.init[2] = with_att ? nans(na) : NULL;
        c.outname[0] = "out", c.outname[1] = "lse", c.outname[2] = "att";
        run_case(K, ki, &c);
        if (!with_att) { free_case(&c); continue; }
        // backward on the log-sum-exp of the reference forward
        Case d = {.entry = E_ATT_B, .B = B, .T = T, .S = S, .NH = NH, .NKV = NKV, .HS = HS, .nout = 3, .spec = sp};
        memcpy(d.dims, c.dims, sizeof d.dims);
        d.a = c.a, d.b = c.b, d.c = c.c, c.a = c.b = c.c = NULL;
        d.ints = c.ints ? malloc((size_t)B * S * sizeof(int)) : NULL;
        if (d.ints) memcpy(d.ints, c.ints, (size_t)B * S * sizeof(int));
        d.d = malloc(nl * sizeof(float));
        float *o = malloc(nq * sizeof(float));
        attention_forward(o, d.d, NULL, d.a, d.b, d.c, c.ints, &sp, B, T, S, NH, NKV, HS);
        free(o);
        d.e = rnd(nq, 1);
        d.f = nans(attention_scratch_count(B, S, NKV));
        d.outn[0] = nq, d.outn[1] = nk, d.outn[2] = nk;
        d.init[0] = rnd(nq, 0.3), d.init[1] = rnd(nk, 0.3), d.init[2] = rnd(nk, 0.3);
        d.outname[0] = "dq", d.outname[1] = "dk", d.outname[2] = "dv";
        run_case(K, ki, &d);
        free_case(&c);
        free_case(&d);
        }
    }
}

/* a gated activation out = act(gate) * up (SwiGLU, GeGLU): forward, and backward with either output
 * NULL; the gate spans scale and the given extreme values (the sigmoid's / tanh's tails) */
static void cases_gated(const Kernels *K, int ki, int fwd, int bwd_entry, double scale, const float extreme[4]) {
    static const size_t ns[] = {1, 3, 17, 69, 4097, 12345};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t n = ns[i];
        for (int bwd = 0; bwd < 2; bwd++)
            for (int which = 0; which < (bwd ? 3 : 1); which++) {
                Case c = {.entry = bwd ? bwd_entry : fwd, .n = n, .nout = bwd ? 2 : 1};
                snprintf(c.dims, sizeof c.dims, "n=%zu%s", n, which == 1 ? " dup=NULL" : which == 2 ? " dgate=NULL" : "");
                c.a = rnd(n, scale), c.b = rnd(n, 2), c.c = rnd(n, 1);
                if (n > 8) memcpy(c.a, extreme, 4 * sizeof(float));
                c.outn[0] = c.outn[1] = n;
                c.init[0] = bwd ? (which == 2 ? NULL : rnd(n, 0.3)) : nans(n);
                if (bwd) c.init[1] = which == 1 ? NULL : rnd(n, 0.3);
                c.outname[0] = bwd ? "dgate" : "out", c.outname[1] = "dup";
                run_case(K, ki, &c);
                free_case(&c);
            }
    }
}

static void cases_swiglu(const Kernels *K, int ki) {
    static const float tails[4] = {95.f, -95.f, -87.5f, 0.f}; // the sigmoid's tails
    cases_gated(K, ki, E_SWI_F, E_SWI_B, 12, tails);
}

static void cases_geglu(const Kernels *K, int ki) {
    static const float tails[4] = {60.f, -60.f, 1e-4f, 0.f}; // tanh's saturation, and near 0
    cases_gated(K, ki, E_GEG_F, E_GEG_B, 6, tails);
}

static void cases_crossentropy(const Kernels *K, int ki) {
    static const int dims[][3] = {{1, 2, 1}, {2, 3, 17}, {1, 5, 69}, {2, 4, 1000}, {1, 3, 32000}, {4, 33, 300}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        int B = dims[i][0], T = dims[i][1], V = dims[i][2];
        Case c = {.entry = E_CE_B, .B = B, .T = T, .V = V, .nout = 1};
        c.scale = 1.0 / 7;
        snprintf(c.dims, sizeof c.dims, "B=%d T=%d V=%d", B, T, V);
        c.a = rnd((size_t)B * T * V, 4);
        c.ints = malloc((size_t)B * T * sizeof(int));
        for (int j = 0; j < B * T; j++) c.ints[j] = j % 3 == 2 ? -100 : (int)(urand() * V);
        // a confident row: its target's p - 1 is tiny
        if (T > 1 && c.ints[1] != -100) c.a[c.ints[1]] = 40.f;
        c.outn[0] = (size_t)B * T * V, c.init[0] = rnd(c.outn[0], 0.01), c.outname[0] = "dlogits";
        run_case(K, ki, &c);
        Case f = {.entry = E_CE_F, .B = B, .T = T, .V = V, .nout = 1}; // the forward on the same logits
        snprintf(f.dims, sizeof f.dims, "B=%d T=%d V=%d", B, T, V);
        f.a = c.a, f.ints = c.ints, c.a = NULL, c.ints = NULL;
        f.outn[0] = 2, f.init[0] = nans(2), f.outname[0] = "loss_sum, count";
        run_case(K, ki, &f);
        free_case(&f);
        free_case(&c);
    }
}

/* ---- selection -------------------------------------------------------------------------------- */

/* ---- the block-format products: qmatmul_* against the fp32 entries on the decoded matrix -------- */

/* Every type: random blocks whose f16 scales (and F16/BF16 elements) are finite and moderate. On
 * every table the block entries must equal the same table's fp32 entries on the decoded matrix bit
 * for bit (the decoded values are what the fp32 GEMM would have packed; blas tables: their fp32
 * GEMM is OpenBLAS's, so within the GEMM tolerance), leave their canaries, and give 1 = 2 threads. */
static const struct {
    const char *name;
    int type, scales[2]; /* byte offsets of the block's f16 fields (-1: none) */
} QTYPES[] = {
    {"F16", QT_F16, {-1, -1}},   {"BF16", QT_BF16, {-1, -1}}, {"Q4_0", QT_Q4_0, {0, -1}}, {"Q4_1", QT_Q4_1, {0, 2}},
    {"Q5_0", QT_Q5_0, {0, -1}},  {"Q5_1", QT_Q5_1, {0, 2}},   {"Q8_0", QT_Q8_0, {0, -1}}, {"Q4_K", QT_Q4_K, {0, 2}},
    {"Q5_K", QT_Q5_K, {0, 2}},   {"Q6_K", QT_Q6_K, {208, -1}},
};

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)(v & 255), p[1] = (unsigned char)(v >> 8); }
/* a half with exponent field 7..11 (|x| in [2^-8, 2^-3)), random sign and mantissa */
static unsigned rnd_half(void) {
    return (urand() < 0.5 ? 0x8000u : 0) | (unsigned)(7 + (int)(urand() * 5)) << 10 | (unsigned)(urand() * 1024);
}

static unsigned char *rnd_qmat(QMat *m, int type, const int scales[2], int rows, int cols) {
    size_t be = (size_t)quant_block_elems(type), bb = quant_block_bytes(type), nb = (size_t)rows * cols / be;
    unsigned char *d = malloc(nb * bb + 1);
    for (size_t i = 0; i < nb * bb; i++) d[i] = (unsigned char)(urand() * 256);
    for (size_t b = 0; b < nb; b++) {
        unsigned char *blk = d + b * bb;
        if (type == QT_F16) put16(blk, rnd_half());
        else if (type == QT_BF16) put16(blk, (urand() < 0.5 ? 0x8000u : 0) | (unsigned)(119 + (int)(urand() * 5)) << 7 |
                                                 (unsigned)(urand() * 128));
        for (int k = 0; k < 2; k++)
            if (scales[k] >= 0) put16(blk + scales[k], rnd_half());
    }
    m->type = type, m->rows = rows, m->cols = cols, m->row_bytes = (size_t)cols / be * bb, m->data = d;
    return d;
}

static void qmatmul_case(const Kernels *K, int qt, int N, int OC, int IC) {
    QMat m;
    unsigned char *data = rnd_qmat(&m, QTYPES[qt].type, QTYPES[qt].scales, OC, IC);
    float *W = malloc((size_t)OC * IC * sizeof(float));
    for (int o = 0; o < OC; o++) qmat_row(&m, o, 0, IC, W + (size_t)o * IC);
    float *x = rnd((size_t)N * IC, 1.0), *dout = rnd((size_t)N * OC, 1.0), *dinit = rnd((size_t)N * IC, 1.0);
    float *nanout = nans((size_t)N * OC);
    gbuf fq = galloc(nanout, (size_t)N * OC), ff = galloc(nanout, (size_t)N * OC), f1 = galloc(nanout, (size_t)N * OC);
    gbuf bq = galloc(dinit, (size_t)N * IC), bf = galloc(dinit, (size_t)N * IC), b1 = galloc(dinit, (size_t)N * IC);
    set_threads(2);
    K->qmatmul_forward(fq.p, x, &m, N);
    K->matmul_forward(ff.p, x, W, N, IC, OC);
    K->qmatmul_backward(bq.p, dout, &m, N);
    K->matmul_backward(bf.p, NULL, dout, x, W, N, IC, OC);
    set_threads(1);
    K->qmatmul_forward(f1.p, x, &m, N);
    K->qmatmul_backward(b1.p, dout, &m, N);
    set_threads(2);
    int blas = !strncmp(K->name, "blas", 4);
    for (int pass = 0; pass < 2; pass++) {
        gbuf *q = pass ? &bq : &fq, *f = pass ? &bf : &ff, *one = pass ? &b1 : &f1;
        size_t n = q->n, differ = 0;
        double se = 0, sr = 0;
        int finite = 1;
        for (size_t j = 0; j < n; j++) {
            double d = (double)q->p[j] - (double)f->p[j];
            if (!isfinite(q->p[j])) finite = 0;
            se += d * d, sr += (double)f->p[j] * f->p[j];
            if (memcmp(&q->p[j], &f->p[j], sizeof(float))) differ++;
        }
        double nm = sr > 0 ? se / sr : se;
        int guards = guards_ok(q) && guards_ok(one), threads = !memcmp(q->p, one->p, n * sizeof(float));
        int ok = finite && guards && threads && (blas ? nm <= 1e-8 : differ == 0);
        char what[160], detail[256];
        snprintf(what, sizeof what, "%-7s %-18s %-4s N=%d OC=%d IC=%d", K->name,
                 pass ? "qmatmul_backward" : "qmatmul_forward", QTYPES[qt].name, N, OC, IC);
        snprintf(detail, sizeof detail, "%zu of %zu values differ from the fp32 entry on the decoded matrix (nmse %.1e%s)%s%s%s",
                 differ, n, nm, blas ? ", <= 1e-8 claimed" : ", bitwise claimed", finite ? "" : ", NON-FINITE",
                 guards ? "" : ", canary overwritten", threads ? "" : ", 1 vs 2 threads DIFFER");
        check(ok, what, detail);
    }
    free(fq.base), free(ff.base), free(f1.base), free(bq.base), free(bf.base), free(b1.base);
    free(nanout), free(x), free(dout), free(dinit), free(W), free(data);
}

/* qmat_row on any range equals the same range of the whole decoded row */
static void qmat_row_tests(void) {
    for (size_t qt = 0; qt < sizeof QTYPES / sizeof QTYPES[0]; qt++) {
        QMat m;
        int cols = 768;
        unsigned char *data = rnd_qmat(&m, QTYPES[qt].type, QTYPES[qt].scales, 3, cols);
        float whole[768], part[768];
        qmat_row(&m, 2, 0, cols, whole);
        static const int ranges[][2] = {{0, 768}, {1, 5}, {31, 2}, {255, 258}, {256, 256}, {100, 600}, {767, 1}, {32, 0}};
        int bad = 0;
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            int c0 = ranges[r][0], n = ranges[r][1];
            for (int j = 0; j < 768; j++) part[j] = -1;
            qmat_row(&m, 2, c0, n, part);
            if (memcmp(part, whole + c0, (size_t)n * sizeof(float)) || (c0 + n < 768 && part[n] != -1)) bad++;
        }
        char what[96];
        snprintf(what, sizeof what, "qmat_row %-4s: any range = that range of the whole row", QTYPES[qt].name);
        check(bad == 0, what, bad ? "a range differs or writes past its end" : "8 ranges");
        free(data);
    }
}

static void qmatmul_tests(const Kernels *const *tabs, int nt) {
    qmat_row_tests();
    /* (N, OC, IC): one row; the few-row path's edge (16) and the GEMM's (17); several K slices and N
     * panels with tails; an input gradient wider than one B slice (NC_MAX 2048) */
    static const int shapes[][3] = {{1, 37, 256}, {5, 64, 768}, {16, 33, 512}, {17, 40, 256}, {45, 70, 1024}, {20, 24, 2304}};
    static const int small[][3] = {{3, 29, 96}, {19, 50, 608}}; /* 32-element blocks and plain halves only */
    for (int k = 0; k < nt; k++) {
        int before = check_fail;
        rng = 0x51a7e5ULL; // every table sees the same matrices
        for (size_t qt = 0; qt < sizeof QTYPES / sizeof QTYPES[0]; qt++) {
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                qmatmul_case(tabs[k], (int)qt, shapes[s][0], shapes[s][1], shapes[s][2]);
            if (quant_block_elems(QTYPES[qt].type) <= 32)
                for (size_t s = 0; s < sizeof small / sizeof small[0]; s++)
                    qmatmul_case(tabs[k], (int)qt, small[s][0], small[s][1], small[s][2]);
        }
        printf("table %-12s block-format products (10 types) %s\n", tabs[k]->name, check_fail == before ? "ok" : "FAILED");
    }
}

static void selection_tests(void) {
    char msg[256] = "";
    check(kernels_select("ref", msg, sizeof msg) == &KERNELS_REF, "kernels_select(\"ref\") is the reference", "");
    const Kernels *a = kernels_select("auto", msg, sizeof msg);
    check(a != NULL, "kernels_select(\"auto\") always finds a table", a ? a->name : msg);
    check(kernels_select(NULL, msg, sizeof msg) == a, "kernels_select(NULL) is auto", "");
    msg[0] = 0;
    check(!kernels_select("fastest", msg, sizeof msg) && strstr(msg, "fastest"), "an unknown name is refused with a message", msg);
#if defined(__x86_64__) || defined(__i386__)
    msg[0] = 0;
    check(!kernels_select("neon", msg, sizeof msg) && strstr(msg, "neon"), "neon is refused on x86 with a message", msg);
#else
    msg[0] = 0;
    check(!kernels_select("avx2", msg, sizeof msg) && strstr(msg, "avx2"), "avx2 is refused off x86 with a message", msg);
#endif
    const Kernels *s = kernels_select("simd", msg, sizeof msg);
    check(!s || (strcmp(s->name, "ref") && strncmp(s->name, "blas", 4)), "kernels_select(\"simd\") is a SIMD table",
          s ? s->name : msg);
    const char *old = getenv("AFFIX_KERNELS");
    char *keep = old ? strdup(old) : NULL;
    setenv("AFFIX_KERNELS", "ref", 1);
    check(kernels_from_env("auto", msg, sizeof msg) == &KERNELS_REF, "AFFIX_KERNELS=ref selects the reference", "");
    unsetenv("AFFIX_KERNELS");
    check(kernels_from_env("ref", msg, sizeof msg) == &KERNELS_REF, "AFFIX_KERNELS unset: the fallback", "");
    setenv("AFFIX_KERNELS", "nonsense", 1);
    check(kernels_from_env("ref", msg, sizeof msg) == NULL, "AFFIX_KERNELS=nonsense is refused", msg);
    if (keep) setenv("AFFIX_KERNELS", keep, 1);
    else unsetenv("AFFIX_KERNELS");
    free(keep);
}

/* the name AFFIX_KERNELS takes for a table */
static const char *select_name(const Kernels *k) { return strncmp(k->name, "blas", 4) ? k->name : "blas"; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); // progress shows line by line (slow emulators)
    const Kernels *tabs[8];
    int nt = kernels_available(tabs, 8);
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            for (int k = 0; k < nt; k++) printf("%s%s", k ? " " : "", select_name(tabs[k]));
            printf("\n");
            return 0;
        }
        if (!strcmp(argv[i], "-v")) verbose = 1;
    }
    if (getenv("AFFIX_VERBOSE")) verbose = 1;
    check_quiet = !verbose; // one line per case with -v; failures only otherwise
    printf("kernel tables built: %s; runnable here:", kernels_built());
    for (int k = 0; k < nt; k++) printf(" %s", tabs[k]->name);
    printf("\n");
    selection_tests();
    static const case_fn fns[] = {cases_matmul, cases_rmsnorm, cases_rope, cases_attention, cases_swiglu,
                                  cases_geglu, cases_crossentropy};
    for (int k = 1; k < nt; k++) { // tabs[0] is ref itself
        int before = check_fail;
        for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
            rng = 0x9e3779b97f4a7c15ULL + 0x100000001b3ULL * f; // every table sees the same inputs per entry
            fns[f](tabs[k], k);
        }
        printf("table %-12s %s; worst NMSE per entry:\n", tabs[k]->name, check_fail == before ? "ok" : "FAILED");
        for (int e = 0; e < E_COUNT; e++) printf("    %-22s %.1e\n", ENTRY[e], worst[k][e]);
    }
    qmatmul_tests(tabs, nt);
    if (nt == 1) printf("(no optimized table runs on this machine: only the selection was tested)\n");
    return check_summary();
}
