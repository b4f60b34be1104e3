/* cmd_bench.c — affix bench: training, forward and decoding speed on three model shapes, per method,
 * beside PyTorch-CPU; GEMM GFLOP/s against the FMA peak; decoding against the weight-streaming bound.
 *
 *   affix bench [--configs 15M,110M,1B] [--methods prompt,prefix,llama-adapter,lora,full]
 *               [--steps N (2)] [--warmup N (1)] [--probe FILE] [--torch FILE] [--no-gemm] [--no-decode]
 *
 * `make bench` runs tools/bench/probe (FMA peak, STREAM triad: --probe) and tools/bench/torch_bench.py
 * (the same configurations and methods in PyTorch: --torch) first, then this, which prints the
 * markdown tables last. Without --probe the peak and bound columns say "n/a"; without --torch the
 * PyTorch column says "not installed".
 *
 * What is timed (tools/bench/torch_bench.py times the same): a training step is what `affix train`
 * does per optimizer step — zero_grad, forward on (B,T) random tokens (every token a target), loss,
 * backward, gradient norm + clipping at 1.0, AdamW — best of --steps steps after --warmup; tok/s =
 * B*T / step time (virtual tokens are not counted). forward = the plain model's logits on (B,T).
 * decode = batch 1 with a KV cache: a 16-token prompt, then 32 tokens one at a time (greedy).
 * Random weights: timing only. Methods: prompt P=10; prefix P=10 on all layers; llama-adapter len
 * 10 on all layers; lora r=8 alpha=8 on q,v; full (skipped when it would not fit in memory).
 *
 * FLOPs are what affix executes in its matrix products (elementwise work not counted), for N=B*Tx
 * rows (Tx = T + virtual tokens) and lin = the MACs per token of every linear layer + lm_head:
 *   forward   2 N lin + per layer 4 HS NH pairs          pairs = sum over rows of visible keys
 *   backward  2 N lin (input gradients) [+ 2 N lin weight gradients: full only] + 8 HS NH pairs
 *   + LoRA 2 N r (IC+OC) forward, 4 N r (IC+OC) backward per adapted linear; + Llama-Adapter's
 *   projections (4 P C KV each way) and adapter attention (4 / 8 HS NH Tx P per row).
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "adapter.h"
#include "cli.h"
#include "rng.h"
#include "train.h"
#include "decode.h"
#include "files.h"
#include "kernels_simd.h"
#include "llama.h"
#include "method_spec.h"
#include "arena.h"
#include "model.h"
#include "optim.h"

#define P_VIRTUAL 10
#define LORA_R 8
#define DEC_PROMPT 16
#define DEC_GEN 32

typedef struct {
    const char *name, *alias;
    LlamaConfig c;
    int B, T;
} BenchCfg;

static const BenchCfg CONFIGS[] = {
    {"stories15M", "15M", {.V = 32000, .C = 288, .FF = 768, .L = 6, .NH = 6, .NKV = 6, .HS = 48, .eps = 1e-5,
                           .rope_theta = 10000, .tied = 1, .max_pos = 1024}, 4, 256},
    {"stories110M", "110M", {.V = 32000, .C = 768, .FF = 2048, .L = 12, .NH = 12, .NKV = 12, .HS = 64, .eps = 1e-5,
                             .rope_theta = 10000, .tied = 1, .max_pos = 1024}, 2, 256},
    {"llama3.2-1B-2L", "1B", {.V = 128256, .C = 2048, .FF = 8192, .L = 2, .NH = 32, .NKV = 8, .HS = 64, .eps = 1e-5,
                              .rope_theta = 500000, .rope_factor = 32, .rope_low_freq_factor = 1,
                              .rope_high_freq_factor = 4, .rope_original_max_position = 8192, .tied = 1,
                              .max_pos = 131072}, 1, 256},
};
#define N_CONFIGS (int)(sizeof CONFIGS / sizeof CONFIGS[0])
static const char *const METHODS[] = {"prompt", "prefix", "llama-adapter", "lora", "full"};
#define N_METHODS 5
#define ROW_FORWARD N_METHODS /* results[cfg][ROW_FORWARD] */
#define N_ROWS (N_METHODS + 1)

typedef struct {
    int ran;        /* 0: not requested */
    double tok_s;   /* 0 with a note: did not run */
    double flops;   /* per step */
    double step_s;
    char note[96];
} Result;

typedef struct {
    double tok_s, bound_tok_s, weight_bytes;
    int ran;
    char note[96];
} DecodeResult;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int n_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- inputs: deterministic random weights and tokens ---------------------------------------- */

/* splitmix64 of rng.h over a caller's state */
static unsigned long long splitmix(unsigned long long *s) {
    AfxRng r = {*s};
    unsigned long long z = afx_rng_next(&r);
    *s = r.s;
    return z;
}

/* uniform(-a, a), std a/sqrt(3); chunked so that threads fill it in parallel, same values any way */
static void fill_uniform(real *x, size_t n, double a, unsigned long long seed) {
    const size_t chunk = 1 << 16;
    long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
    for (long k = 0; k < nchunks; k++) {
        unsigned long long s = seed * 0x100000001b3ULL + (unsigned long long)k;
        size_t end = ((size_t)k + 1) * chunk < n ? ((size_t)k + 1) * chunk : n;
        for (size_t i = (size_t)k * chunk; i < end; i++)
            x[i] = (real)(a * ((double)(splitmix(&s) >> 11) * 0x1.0p-53 * 2.0 - 1.0));
    }
}

static void init_weights(LlamaParams *w) {
    const LlamaConfig *c = &w->cfg;
    for (int k = 0; k < LT_COUNT; k++) {
        if (k == LT_LM_HEAD && c->tied) continue;
        size_t n = llama_tensor_numel(c, k) * (llama_tensor_is_per_layer(k) ? (size_t)c->L : 1);
        if (k == LT_LN1 || k == LT_LN2 || k == LT_LNF)
            for (size_t i = 0; i < n; i++) w->t[k][i] = 1;
        else
            fill_uniform(w->t[k], n, 0.02 * sqrt(3.0), 1000 + (unsigned long long)k);
    }
}

static void random_ids(int *ids, size_t n, int V, unsigned long long seed) {
    for (size_t i = 0; i < n; i++) ids[i] = (int)(splitmix(&seed) % (unsigned long long)V);
}

/* ---- FLOP counts (see the header) -------------------------------------------------------------- */

static double lin_macs(const LlamaConfig *c) { // per token: every linear of every layer + lm_head
    double C = c->C, QD = (double)c->NH * c->HS, KD = (double)c->NKV * c->HS, FF = c->FF;
    return c->L * (C * QD + 2 * C * KD + QD * C + 3 * C * FF) + C * c->V;
}

/* visible (query, key) pairs of one layer over the batch: causal over Tx rows, plus Pl prefix keys */
static double att_pairs(int B, int Tx, int Pl) { return (double)B * ((double)Tx * (Tx + 1) / 2 + (double)Tx * Pl); }

static double step_flops(const LlamaConfig *c, int method, int B, int T, int train) {
    int P = P_VIRTUAL, Tx = T + (method == METHOD_PROMPT ? P : 0);
    double N = (double)B * Tx, lin = lin_macs(c), HS = c->HS, NH = c->NH;
    double C = c->C, QD = NH * HS, KD = (double)c->NKV * HS;
    double pairs = att_pairs(B, Tx, method == METHOD_PREFIX ? P : 0) * c->L;
    double fwd = 2 * N * lin + 4 * HS * NH * pairs, bwd = 2 * N * lin + 8 * HS * NH * pairs;
    if (method == METHOD_FULL) bwd += 2 * N * lin;
    if (method == METHOD_LORA) { // q and v
        double io = (C + QD) + (C + KD);
        fwd += c->L * 2 * N * LORA_R * io;
        bwd += c->L * 4 * N * LORA_R * io;
    }
    if (method == METHOD_LLAMA_ADAPTER) {
        fwd += c->L * (4.0 * P * C * KD + 4 * HS * NH * N * P);
        bwd += c->L * (4.0 * P * C * KD + 8 * HS * NH * N * P);
    }
    return train ? fwd + bwd : fwd;
}

/* ---- memory -------------------------------------------------------------------------------------- */

static double mem_available(void) { // bytes, from /proc/meminfo (0 when unknown)
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

/* ---- one training configuration -------------------------------------------------------------- */

static int make_method(Adapter *ad, int method, const LlamaConfig *c, afx_err *e) {
    MethodSpec spec;
    char len[16], layers[16];
    snprintf(len, sizeof len, "%d", P_VIRTUAL);
    snprintf(layers, sizeof layers, "%d", c->L);
    if (method_spec_init(&spec, METHODS[method], e)) return -1;
    int rc = 0;
    switch (method) {
    case METHOD_PROMPT:
    case METHOD_PREFIX: rc = method_spec_set(&spec, "num_virtual_tokens", len, e); break;
    case METHOD_LLAMA_ADAPTER:
        rc = method_spec_set(&spec, "adapter_len", len, e) || method_spec_set(&spec, "adapter_layers", layers, e);
        break;
    case METHOD_LORA: rc = method_spec_set(&spec, "r", "8", e) || method_spec_set(&spec, "alpha", "8", e); break;
    default: break;
    }
    return rc ? -1 : method_spec_create(ad, &spec, c, e);
}

static void bench_train(const BenchCfg *bc, LlamaParams *w, const Kernels *kern, int method, int steps, int warmup,
                        Result *r) {
    const LlamaConfig *c = &bc->c;
    int B = bc->B, T = bc->T;
    afx_err e = {{0}};
    Adapter ad;
    AdapterSet set;
    TrainWorkspace ws = {0};
    int have_ad = 0, have_set = 0;
    int *ids = malloc(sizeof(int) * (size_t)B * T);
    memset(&set, 0, sizeof set);
    r->ran = 1;
    r->flops = step_flops(c, method, B, T, 1);
    if (!ids) { snprintf(r->note, sizeof r->note, "out of memory"); return; }
    random_ids(ids, (size_t)B * T, c->V, 7);
    if (method == METHOD_FULL) { // gradients + two AdamW moments of every weight, plus activations
        double need = 3.0 * (double)llama_params_count(c) * sizeof(real) + (double)llama_acts_bytes(c, NULL, B, T) +
                      (double)llama_actgrads_count(c, NULL, B, T) * sizeof(real);
        double avail = mem_available();
        if (avail > 0 && need > 0.85 * avail) {
            snprintf(r->note, sizeof r->note, "skipped: needs %.1f GiB, %.1f GiB available", need / 1073741824.0,
                     avail / 1073741824.0);
            free(ids);
            return;
        }
    }
    if (make_method(&ad, method, c, &e)) goto fail;
    have_ad = 1;
    Adapter *ptr = &ad;
    if (adapter_set_init(&set, &ptr, 1, w, &e)) goto fail;
    have_set = 1;
    if (adapter_set_init_params(&set, 42, &e)) goto fail;
    // the library training step (train.h), as affix train runs it: labels = the ids, clip 1.0
    AdamWConfig ac = {.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0};
    TrainBatch tb = {ids, NULL, ids, B, T};
    double best = INFINITY;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now();
        TrainStepResult res;
        if (train_step(w, &set, &ws, kern, &tb, 1, &ac, 1.0, s + 1, &res, &e)) goto fail;
        double dt = now() - t0;
        if (s >= warmup && dt < best) best = dt;
    }
    r->step_s = best;
    r->tok_s = (double)B * T / best;
    goto done;
fail:
    snprintf(r->note, sizeof r->note, "error: %.80s", e.msg);
done:
    train_workspace_free(&ws);
    if (have_set) adapter_set_free(&set);
    if (have_ad) adapter_destroy(&ad);
    free(ids);
}

static void bench_forward(const BenchCfg *bc, const LlamaParams *w, const Kernels *kern, int steps, int warmup,
                          Result *r) {
    const LlamaConfig *c = &bc->c;
    int B = bc->B, T = bc->T;
    afx_err e = {{0}};
    LlamaActs a;
    r->ran = 1;
    r->flops = step_flops(c, -1, B, T, 0);
    int *ids = malloc(sizeof(int) * (size_t)B * T);
    // every row's logits, in the training layout (the plain one also writes the attention
    // probabilities, for the golden tests; a forward does not need them)
    void *mem = ids ? arena_alloc(llama_acts_bytes_chunk(c, NULL, B, T, 0, 0, LLAMA_ACTS_TRAIN)) : NULL;
    if (!mem) {
        snprintf(r->note, sizeof r->note, "error: out of memory");
        free(ids);
        return;
    }
    llama_acts_bind_chunk(&a, c, NULL, B, T, 0, 0, LLAMA_ACTS_TRAIN, mem);
    random_ids(ids, (size_t)B * T, c->V, 7);
    a.kern = kern;
    double best = INFINITY;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now();
        if (llama_forward(w, NULL, &a, ids, NULL, NULL, B, T, &e)) {
            snprintf(r->note, sizeof r->note, "error: %.80s", e.msg);
            break;
        }
        double dt = now() - t0;
        if (s >= warmup && dt < best) best = dt;
    }
    if (!r->note[0]) r->step_s = best, r->tok_s = (double)B * T / best;
    free(mem);
    free(ids);
}

static int argmax(const real *x, int n) {
    int k = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[k]) k = i;
    return k;
}

static void bench_decode(const BenchCfg *bc, const LlamaParams *w, const Kernels *kern, double triad_gbs,
                         DecodeResult *r) {
    const LlamaConfig *c = &bc->c;
    afx_err e = {{0}};
    LlamaCache cache;
    r->ran = 1;
    // bytes read per token: every layer weight, the final norm and lm_head (the embedding: one row)
    r->weight_bytes = llama_params_bytes(w);
    if (!c->tied) { // the embedding is read one row per token: not counted
        const QMat *qe = llama_tensor_q(w, LT_EMBED, 0);
        r->weight_bytes -= qe ? (double)qe->rows * (double)qe->row_bytes : (double)sizeof(real) * c->V * c->C;
    }
    r->bound_tok_s = triad_gbs > 0 ? triad_gbs * 1e9 / r->weight_bytes : 0;
    if (llama_cache_alloc(&cache, c, NULL, 1, DEC_PROMPT + DEC_GEN, 0, &e)) {
        snprintf(r->note, sizeof r->note, "error: %.80s", e.msg);
        return;
    }
    cache.kern = kern;
    int prompt[DEC_PROMPT];
    random_ids(prompt, DEC_PROMPT, c->V, 11);
    double dt = 0;
    for (int rep = 0; rep < 2 && !r->note[0]; rep++) { // the first pass (4 tokens) warms up
        const real *last;
        int Tc, gen = rep ? DEC_GEN : 4;
        llama_cache_reset(&cache);
        if (llama_decode(w, NULL, &cache, prompt, NULL, DEC_PROMPT, &last, &Tc, &e)) break;
        int tok = argmax(last, c->V);
        double t0 = now();
        for (int i = 0; i < gen; i++) {
            if (llama_decode(w, NULL, &cache, &tok, NULL, 1, &last, &Tc, &e)) {
                snprintf(r->note, sizeof r->note, "error: %.80s", e.msg);
                break;
            }
            tok = argmax(last, c->V);
        }
        dt = now() - t0;
    }
    if (e.msg[0] && !r->note[0]) snprintf(r->note, sizeof r->note, "error: %.80s", e.msg);
    if (!r->note[0]) r->tok_s = DEC_GEN / dt;
    llama_cache_free(&cache);
}

/* ---- GEMMs ------------------------------------------------------------------------------------ */

typedef struct {
    int M, N, K;
    int kind; /* 0: forward NT  out = inp W^T; 1: input gradient NN; 2: weight gradient TN */
    char what[48];
    const Kernels *k;
    double gflops;
} Gemm;

static double time_gemm(const Kernels *k, const Gemm *g) {
    // forward: out (M=N_rows, N=OC) from inp (M, K=IC) and W (N, K)
    // NN: dinp (M=rows, N=IC) += dout (M, K=OC) W (K, N); TN: dW (M=OC, N=IC) += dout^T (M, K=rows) inp (K, N)
    size_t a = (size_t)g->M * g->K, b = (size_t)g->N * g->K, o = (size_t)g->M * g->N;
    real *A = malloc(a * sizeof(real)), *Bm = malloc(b * sizeof(real)), *O = calloc(o, sizeof(real));
    double best = 0;
    if (!A || !Bm || !O) goto out;
    fill_uniform(A, a, 1, 3);
    fill_uniform(Bm, b, 0.05, 4);
    double flops = 2.0 * g->M * g->N * g->K, total = 0;
    for (int rep = 0; rep < 100 && (rep < 3 || total < 0.2); rep++) {
        double t0 = now();
        if (g->kind == 0) k->matmul_forward(O, A, Bm, g->M, g->K, g->N);
        else if (g->kind == 1) k->matmul_backward(O, NULL, A, NULL, Bm, g->M, g->N, g->K);
        else k->matmul_backward(NULL, O, A, Bm, NULL, g->K, g->N, g->M);
        double dt = now() - t0;
        total += dt;
        if (rep > 0 && flops / dt > best) best = flops / dt; // the first call warms up
    }
out:
    free(A), free(Bm), free(O);
    return best * 1e-9;
}

static void add_gemm(Gemm *g, int *n, const BenchCfg *bc, int M, int N, int K, int kind, const char *what) {
    g[*n] = (Gemm){.M = M, .N = N, .K = K, .kind = kind, .k = NULL};
    snprintf(g[*n].what, sizeof g[*n].what, "%s %s", bc->alias, what);
    (*n)++;
}

/* the products of one config's linear layers: every forward shape, and the two backward products
 * of gate/up (the largest layer) */
static int gemm_shapes(const BenchCfg *bc, Gemm *g) {
    const LlamaConfig *c = &bc->c;
    int n = 0, rows = bc->B * bc->T, QD = c->NH * c->HS, KD = c->NKV * c->HS;
    add_gemm(g, &n, bc, rows, QD, c->C, 0, QD == c->C && KD == QD ? "q/k/v/o fwd" : "q/o fwd");
    if (KD != QD) add_gemm(g, &n, bc, rows, KD, c->C, 0, "k/v fwd");
    add_gemm(g, &n, bc, rows, c->FF, c->C, 0, "gate/up fwd");
    add_gemm(g, &n, bc, rows, c->C, c->FF, 0, "down fwd");
    add_gemm(g, &n, bc, rows, c->V, c->C, 0, "lm_head fwd");
    add_gemm(g, &n, bc, rows, c->C, c->FF, 1, "gate/up dX, NN");
    add_gemm(g, &n, bc, c->FF, c->C, rows, 2, "gate/up dW, TN");
    return n;
}

/* ---- the PyTorch results and the probe ------------------------------------------------------- */

static cJSON *read_json(const char *path) {
    char *buf;
    if (afx_read_file(path, SIZE_MAX, &buf, NULL, NULL)) return NULL;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : 0;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* the PyTorch cell of one row: "123 (eager)", or why there is none; *tok = its tok/s (0: none) */
static void torch_cell(const cJSON *torch, const char *torch_why, const char *cfg, const char *row, char *cell,
                       size_t n, double *tok) {
    *tok = 0;
    if (!torch) { snprintf(cell, n, "%s", torch_why); return; }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
                                                          cJSON_GetObjectItemCaseSensitive(torch, "configs"), cfg), row);
    if (!r) { snprintf(cell, n, "not run"); return; }
    if (jstr(r, "skipped")) { snprintf(cell, n, "skipped (%s)", jstr(r, "skipped")); return; }
    if (jstr(r, "error")) { snprintf(cell, n, "error"); return; }
    *tok = jnum(r, "tok_s");
    snprintf(cell, n, "%.1f (%s)", *tok, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "compiled")) ? "compiled" : "eager");
}

/* "model name" of /proc/cpuinfo, with the x86 family/model numbers (a VM often hides the name) */
static void cpu_model(char *out, size_t n) {
    char name[160] = "unknown CPU", line[512];
    int family = -1, model = -1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        if (!strncmp(line, "model name", 10)) snprintf(name, sizeof name, "%s", v);
        else if (!strncmp(line, "cpu family", 10) && family < 0) family = atoi(v);
        else if (!strncmp(line, "model\t", 6) && model < 0) model = atoi(v);
        else if (!strncmp(line, "CPU part", 8) && !strcmp(name, "unknown CPU")) snprintf(name, sizeof name, "CPU part %s", v);
        if (!strncmp(line, "processor", 9) && strcmp(name, "unknown CPU") && family >= 0) break; // the next CPU
    }
    if (f) fclose(f);
    int k = family >= 0 && model >= 0 ? snprintf(out, n, "%s (family %d, model %d)", name, family, model)
                                      : snprintf(out, n, "%s", name);
    (void)k; /* a long name is cut: the table cell only shows it */
}

static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* ---- the command ------------------------------------------------------------------------------- */

static int usage(void) {
    fprintf(stderr, "usage: affix bench [--configs 15M,110M,1B] [--methods prompt,prefix,llama-adapter,lora,full]\n"
                    "                   [--steps N (2)] [--warmup N (1)] [--probe FILE] [--torch FILE]\n"
                    "                   [--no-gemm] [--no-decode]\n"
                    "       affix bench --model FILE --row METHOD|forward|prefill|decode [--seq T (256)] [--batch B (1)]\n"
                    "                   [--weights file|f32] [--steps N] [--warmup N]   (one JSON line: tok/s, peak RSS)\n"
                    "  `make bench` runs the probe (FMA peak, triad bandwidth) and the PyTorch side first.\n");
    return 2;
}

/* comma list -> selected[i] for names (or aliases) */
static int pick(const char *list, const char *const *names, const char *const *aliases, int n, int *sel, const char *what) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (int i = 0; i < n; i++) sel[i] = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(tok, names[i]) || (aliases && !strcmp(tok, aliases[i]))) sel[i] = found = 1;
        if (!found) {
            fprintf(stderr, "affix: error: bench: unknown %s '%s'\n", what, tok);
            return -1;
        }
    }
    return 0;
}

/* ---- a real model (--model): one row per process, for the driver tools/bench/model_bench.py ---- */

static double peak_rss_mb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? 0 : (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* prefill: a T-token prompt into an empty KV cache, logits of its last token only (what generation
 * does before its first sampled token); tok/s = T / the best of `steps` passes after `warmup` */
static void bench_prefill(const LlamaConfig *c, const LlamaParams *w, const Kernels *kern, int T, int steps,
                          int warmup, double *tok_s, char *note, size_t nn) {
    afx_err e = {{0}};
    LlamaCache cache;
    int *ids = malloc(sizeof(int) * (size_t)T);
    if (!ids || llama_cache_alloc(&cache, c, NULL, 1, T, 0, &e)) {
        snprintf(note, nn, "error: %.80s", ids ? e.msg : "out of memory");
        free(ids);
        return;
    }
    cache.kern = kern;
    cache.last_only = 1;
    random_ids(ids, T, c->V, 13);
    double best = 0;
    for (int rep = 0; rep < warmup + steps; rep++) {
        const real *last;
        int Tc;
        llama_cache_reset(&cache);
        double t0 = now();
        if (llama_decode(w, NULL, &cache, ids, NULL, T, &last, &Tc, &e)) {
            snprintf(note, nn, "error: %.80s", e.msg);
            break;
        }
        double dt = now() - t0;
        if (rep >= warmup && (best == 0 || dt < best)) best = dt;
    }
    if (best > 0) *tok_s = T / best;
    llama_cache_free(&cache);
    free(ids);
}

/* row: a method name, "forward", "prefill" or "decode"; prints one JSON line on stdout */
static int bench_model(const char *path, const char *weights, const char *row, int B, int T, int steps, int warmup,
                       const Kernels *kern) {
    afx_err e = {{0}};
    Model m;
    ModelOpts mo;
    int method = -1;
    for (int k = 0; k < N_METHODS; k++)
        if (!strcmp(row, METHODS[k])) method = k;
    if (method < 0 && strcmp(row, "forward") && strcmp(row, "prefill") && strcmp(row, "decode")) {
        fprintf(stderr, "affix: error: bench: --row '%s' is not a method, forward, prefill or decode\n", row);
        return 2;
    }
    if (cli_weights(weights, NULL, method == METHOD_FULL, &mo)) return 2;
    double t0 = now();
    if (model_load_opts(&m, path, &mo, &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        return 1;
    }
    double load_s = now() - t0;
    BenchCfg bc = {"model", "model", m.cfg, B, T};
    double tok_s = 0, wbytes = llama_params_bytes(&m.w);
    char note[128] = "";
    if (method >= 0) {
        Result r;
        memset(&r, 0, sizeof r);
        bench_train(&bc, &m.w, kern, method, steps, warmup, &r);
        tok_s = r.tok_s;
        snprintf(note, sizeof note, "%s", r.note);
    } else if (!strcmp(row, "forward")) {
        Result r;
        memset(&r, 0, sizeof r);
        bench_forward(&bc, &m.w, kern, steps, warmup, &r);
        tok_s = r.tok_s;
        snprintf(note, sizeof note, "%s", r.note);
    } else if (!strcmp(row, "prefill")) {
        bench_prefill(&m.cfg, &m.w, kern, T, steps, warmup, &tok_s, note, sizeof note);
    } else {
        DecodeResult d;
        memset(&d, 0, sizeof d);
        bench_decode(&bc, &m.w, kern, 0, &d);
        tok_s = d.tok_s, wbytes = d.weight_bytes;
        snprintf(note, sizeof note, "%s", d.note);
    }
    printf("{\"row\": \"%s\", \"B\": %d, \"T\": %d, \"weights\": \"%s\", \"kernels\": \"%s\", \"threads\": %d, "
           "\"tok_s\": %.3f, \"peak_rss_mb\": %.1f, \"weight_bytes\": %.0f, \"load_s\": %.2f, \"note\": \"%s\"}\n",
           row, B, T, mo.keep_blocks ? "file" : "f32", kern->name, n_threads(), tok_s, peak_rss_mb(), wbytes, load_s, note);
    model_free(&m);
    return note[0] ? 1 : 0;
}

int cmd_bench(int argc, char **argv) {
    int steps = 2, warmup = 1, do_gemm = 1, do_decode = 1;
    int sel_cfg[N_CONFIGS], sel_m[N_METHODS];
    const char *probe_path = NULL, *torch_path = NULL, *model_path = NULL, *weights = NULL, *mrow = "prefix";
    int mB = 1, mT = 256;
    const char *cfg_names[N_CONFIGS], *cfg_alias[N_CONFIGS];
    for (int i = 0; i < N_CONFIGS; i++) cfg_names[i] = CONFIGS[i].name, cfg_alias[i] = CONFIGS[i].alias, sel_cfg[i] = 1;
    for (int i = 0; i < N_METHODS; i++) sel_m[i] = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        if (!strcmp(a, "--no-gemm")) { do_gemm = 0; continue; }
        if (!strcmp(a, "--no-decode")) { do_decode = 0; continue; }
        if (!v) { fprintf(stderr, "affix: error: bench: %s needs a value\n", a); return usage(); }
        i++;
        if (!strcmp(a, "--configs")) {
            if (pick(v, cfg_names, cfg_alias, N_CONFIGS, sel_cfg, "config")) return 2;
        } else if (!strcmp(a, "--methods")) {
            if (pick(v, METHODS, NULL, N_METHODS, sel_m, "method")) return 2;
        } else if (!strcmp(a, "--steps") || !strcmp(a, "--warmup")) {
            char *end;
            long x = strtol(v, &end, 10);
            if (*end || x < (a[2] == 's' ? 1 : 0) || x > 1000) {
                fprintf(stderr, "affix: error: bench: %s '%s' is not a small integer\n", a, v);
                return 2;
            }
            *(a[2] == 's' ? &steps : &warmup) = (int)x;
        } else if (!strcmp(a, "--probe")) probe_path = v;
        else if (!strcmp(a, "--torch")) torch_path = v;
        else if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--weights")) weights = v;
        else if (!strcmp(a, "--row")) mrow = v;
        else if (!strcmp(a, "--seq") || !strcmp(a, "--batch")) {
            if (cli_int(a, v, 1, 1 << 16, a[2] == 's' ? &mT : &mB)) return 2;
        } else { fprintf(stderr, "affix: error: bench: unknown option '%s'\n", a); return usage(); }
    }
    char kmsg[256];
    const Kernels *kern = kernels_from_env("auto", kmsg, sizeof kmsg);
    if (!kern) { fprintf(stderr, "affix: error: AFFIX_KERNELS: %s\n", kmsg); return 2; }
    const Kernels *simd = kernels_select("simd", kmsg, sizeof kmsg); // NULL where no SIMD table runs
    if (model_path) return bench_model(model_path, weights, mrow, mB, mT, steps, warmup, kern);

    // the machine numbers (tools/bench/probe) and the PyTorch side (tools/bench/torch_bench.py)
    double peak = 0, triad = 0;
    const char *peak_isa = "?";
    cJSON *probe = probe_path ? read_json(probe_path) : NULL;
    if (probe_path && !probe) fprintf(stderr, "affix: warning: bench: cannot read the probe results %s\n", probe_path);
    if (probe) {
        triad = jnum(probe, "triad_gbs");
        peak = jnum(probe, "peak_gflops");
        peak_isa = jstr(probe, "peak_isa") ? jstr(probe, "peak_isa") : "?";
        // the widest ISA the kernel table uses, when the probe measured it
        const char *isas[] = {"avx512", "avx2"};
        for (int i = 0; i < 2; i++) {
            char key[32];
            snprintf(key, sizeof key, "peak_%s", isas[i]);
            if (strstr(kern->name, isas[i]) && jnum(probe, key) > 0) {
                peak = jnum(probe, key), peak_isa = isas[i];
                break;
            }
        }
    }
    const char *torch_why = "not installed";
    cJSON *torch = NULL;
    if (torch_path) {
        torch = read_json(torch_path);
        if (!torch) torch_why = "no result";
        else if (jstr(torch, "error")) torch_why = "failed", cJSON_Delete(torch), torch = NULL;
    }

    double load0 = loadavg();
    time_t t_start = time(NULL);
    Result res[N_CONFIGS][N_ROWS];
    DecodeResult dec[N_CONFIGS];
    Gemm gemms[N_CONFIGS * 16];
    int n_gemm = 0;
    memset(res, 0, sizeof res);
    memset(dec, 0, sizeof dec);
    fprintf(stderr, "affix bench: kernels %s, %d threads, best of %d steps after %d warmup\n", kern->name, n_threads(),
            steps, warmup);
    for (int ci = 0; ci < N_CONFIGS; ci++) {
        if (!sel_cfg[ci]) continue;
        const BenchCfg *bc = &CONFIGS[ci];
        afx_err e = {{0}};
        LlamaParams w;
        if (llama_params_alloc(&w, &bc->c, &e)) {
            fprintf(stderr, "affix: error: bench: %s: %s\n", bc->name, e.msg);
            continue;
        }
        init_weights(&w);
        for (int m = 0; m < N_METHODS; m++) {
            if (!sel_m[m]) continue;
            Result *r = &res[ci][m];
            bench_train(bc, &w, kern, m, steps, warmup, r);
            fprintf(stderr, "  %-15s %-14s %9.1f tok/s  %7.1f GFLOP/s  %s\n", bc->name, METHODS[m], r->tok_s,
                    r->tok_s > 0 ? r->flops / r->step_s * 1e-9 : 0, r->note);
        }
        bench_forward(bc, &w, kern, steps, warmup, &res[ci][ROW_FORWARD]);
        fprintf(stderr, "  %-15s %-14s %9.1f tok/s  %s\n", bc->name, "forward", res[ci][ROW_FORWARD].tok_s,
                res[ci][ROW_FORWARD].note);
        if (do_decode) {
            bench_decode(bc, &w, kern, triad, &dec[ci]);
            fprintf(stderr, "  %-15s %-14s %9.1f tok/s  %s\n", bc->name, "decode", dec[ci].tok_s, dec[ci].note);
        }
        llama_params_free(&w);
        for (int t = 0; do_gemm && t < 2; t++) { // the table in use, and affix's own SIMD GEMM when it is another
            const Kernels *gk = t == 0 ? kern : simd;
            if (!gk || (t == 1 && gk == kern)) continue;
            int k = gemm_shapes(bc, gemms + n_gemm);
            for (int i = n_gemm; i < n_gemm + k; i++) {
                gemms[i].k = gk;
                gemms[i].gflops = time_gemm(gk, &gemms[i]);
                fprintf(stderr, "  gemm %dx%dx%d (%s; %s): %.1f GFLOP/s\n", gemms[i].M, gemms[i].N, gemms[i].K,
                        gemms[i].what, gk->name, gemms[i].gflops);
            }
            n_gemm += k;
        }
    }
    double load1 = loadavg();

    // ---- the tables ----
    char cpu[160], date[64], pk[32];
    cpu_model(cpu, sizeof cpu);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&t_start));
    if (peak > 0) snprintf(pk, sizeof pk, "%.1f", peak);
    else snprintf(pk, sizeof pk, "n/a");
    printf("\n### affix bench — %s\n\n", date);
    printf("Machine: %s, %ld cores, %d OpenMP threads (PyTorch: the same); load average %.2f at the start, %.2f at "
           "the end.  \n", cpu, sysconf(_SC_NPROCESSORS_ONLN), n_threads(), load0, load1);
    printf("affix: kernels `%s`, %s, " "compiler %s.  \n", kern->name, AFFIX_REAL_NAME,
#ifdef __VERSION__
           __VERSION__
#else
           "?"
#endif
    );
    if (probe)
        printf("Measured now: FMA peak %s GFLOP/s (%s FMA loop on %d threads, over each thread's CPU time; %.1f over wall "
               "time), STREAM triad %.1f GB/s.  \n", pk, peak_isa, (int)jnum(probe, "threads"),
               jnum(probe, "peak_wall_gflops"), triad);
    else printf("FMA peak and triad bandwidth: not measured (run `make bench`, or pass --probe).  \n");
    if (torch)
        printf("PyTorch %s CPU, %d threads, %s; compile mode `%s` (each cell says eager or compiled).  \n",
               jstr(torch, "torch") ? jstr(torch, "torch") : "?", (int)jnum(torch, "threads"),
               jstr(torch, "impl") ? jstr(torch, "impl") : "", jstr(torch, "compile") ? jstr(torch, "compile") : "?");
    else printf("PyTorch: %s.  \n", torch_why);
    printf("Training: tokens of one optimizer step (B*T: forward, loss, backward, clip, AdamW) per second, best of %d "
           "after %d warmup; forward: logits of the plain model.\n\n", steps, warmup);
    printf("| config | method | affix tok/s | torch tok/s | ratio | affix GFLOP/s | peak fraction |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int ci = 0; ci < N_CONFIGS; ci++)
        for (int m = 0; m < N_ROWS; m++) {
            const Result *r = &res[ci][m];
            if (!r->ran) continue;
            const char *row = m == ROW_FORWARD ? "forward" : METHODS[m];
            char tc[64], at[64], ratio[32], gf[32], fr[32];
            double ttok;
            torch_cell(torch, torch_why, CONFIGS[ci].name, row, tc, sizeof tc, &ttok);
            if (r->tok_s > 0) snprintf(at, sizeof at, "%.1f", r->tok_s);
            else snprintf(at, sizeof at, "%s", r->note);
            if (r->tok_s > 0 && ttok > 0) snprintf(ratio, sizeof ratio, "%.2f", r->tok_s / ttok);
            else snprintf(ratio, sizeof ratio, "—");
            double g = r->tok_s > 0 ? r->flops / r->step_s * 1e-9 : 0;
            if (g > 0) snprintf(gf, sizeof gf, "%.1f", g);
            else snprintf(gf, sizeof gf, "—");
            if (g > 0 && peak > 0) snprintf(fr, sizeof fr, "%.2f", g / peak);
            else snprintf(fr, sizeof fr, "—");
            printf("| %s | %s | %s | %s | %s | %s | %s |\n", CONFIGS[ci].name, row, at, tc, ratio, gf, fr);
        }
    if (n_gemm) {
        printf("\n| gemm MxNxK | affix GFLOP/s | peak GFLOP/s | fraction |\n|---|---|---|---|\n");
        for (int i = 0; i < n_gemm; i++) {
            char fr[32];
            if (peak > 0 && gemms[i].gflops > 0) snprintf(fr, sizeof fr, "%.2f", gemms[i].gflops / peak);
            else snprintf(fr, sizeof fr, "—");
            printf("| gemm %dx%dx%d (%s; `%s`) | %.1f | %s | %s |\n", gemms[i].M, gemms[i].N, gemms[i].K, gemms[i].what,
                   gemms[i].k->name, gemms[i].gflops, pk, fr);
        }
    }
    if (do_decode) {
        printf("\n| decode (B=1) | affix tok/s | torch tok/s | ratio | weights MB | bound tok/s | fraction |\n"
               "|---|---|---|---|---|---|---|\n");
        for (int ci = 0; ci < N_CONFIGS; ci++) {
            const DecodeResult *d = &dec[ci];
            if (!d->ran) continue;
            char tc[64], at[96], ratio[32], bd[32], fr[32];
            double ttok;
            torch_cell(torch, torch_why, CONFIGS[ci].name, "decode", tc, sizeof tc, &ttok);
            if (d->tok_s > 0) snprintf(at, sizeof at, "%.1f", d->tok_s);
            else snprintf(at, sizeof at, "%s", d->note);
            if (d->tok_s > 0 && ttok > 0) snprintf(ratio, sizeof ratio, "%.2f", d->tok_s / ttok);
            else snprintf(ratio, sizeof ratio, "—");
            if (d->bound_tok_s > 0) snprintf(bd, sizeof bd, "%.1f", d->bound_tok_s);
            else snprintf(bd, sizeof bd, "n/a");
            if (d->bound_tok_s > 0 && d->tok_s > 0) snprintf(fr, sizeof fr, "%.2f", d->tok_s / d->bound_tok_s);
            else snprintf(fr, sizeof fr, "—");
            printf("| %s | %s | %s | %s | %.0f | %s | %s |\n", CONFIGS[ci].name, at, tc, ratio, d->weight_bytes / 1e6,
                   bd, fr);
        }
    }
    cJSON_Delete(probe);
    cJSON_Delete(torch);
    return 0;
}
