/* test_gradcheck.c — finite-difference checks of every backward, in the f64 build.
 *
 * For an op y = f(x, w) and a fixed random cotangent gy, the scalar L = <gy, y> has the gradient the
 * backward computes from dout = gy. Each input element is checked against the central difference
 * (L(x+h) - L(x-h)) / 2h with h = 1e-5 in double: truncation error ~h^2, so a correct backward agrees
 * to ~1e-9 relative to the gradient tensor's max-abs while a missing term is off by O(1).
 * Then the same for the whole model: every weight of two tiny configs (tied + GQA + head_dim != C/NH
 * + llama3 RoPE + left padding; untied MHA + right padding), and every parameter of every
 * adaptation method (alone, at non-trivial values, and composed) on the first of them.
 * Ends with "N passed, M failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "llama.h"
#include "ops.h"

#ifndef AFFIX_F64
#error "test_gradcheck needs the f64 build (-DAFFIX_F64)"
#endif

#define H 1e-5
#define TOL 1e-7

/* deterministic uniform(-1,1) from a 64-bit LCG state */
static double urand(unsigned long long *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(*s >> 11) / 9007199254740992.0) * 2.0 - 1.0;
}
static void fill(real *x, size_t n, unsigned long long *s, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = (real)(scale * urand(s));
}

/* compare an analytic gradient with finite differences of a scalar function of *x */
typedef double (*scalar_fn)(void *ctx);
/* How the Gemma 3 checks differ: its sandwich norms and sqrt(C) scale give the loss a curvature at
 * which the central difference's O(h^2) error reaches 1e-7, so they use Richardson's extrapolation
 * (4 D(h/2) - D(h)) / 3 (error O(h^4)); and, to keep the suite's time, at most `sample` evenly spaced
 * entries of each tensor (0 = every entry). Set once per group of checks in main. */
static struct { int richardson; size_t sample; } fd_mode;

static double central(real *x, size_t i, double h, scalar_fn f, void *ctx) {
    real keep = x[i];
    x[i] = (real)(keep + h);
    double lp = f(ctx);
    x[i] = (real)(keep - h);
    double lm = f(ctx);
    x[i] = keep;
    return (lp - lm) / (2 * h);
}

static void check_grad(const char *what, real *x, size_t n, const real *analytic, scalar_fn f, void *ctx) {
    double maxabs = 0, worst = 0;
    for (size_t i = 0; i < n; i++) if (fabs(analytic[i]) > maxabs) maxabs = fabs(analytic[i]);
    size_t step = fd_mode.sample && n > fd_mode.sample ? n / fd_mode.sample : 1;
    for (size_t i = 0; i < n; i += step) {
        double fd = central(x, i, H, f, ctx);
        if (fd_mode.richardson) fd = (4 * central(x, i, H / 2, f, ctx) - fd) / 3;
        double err = fabs(fd - analytic[i]);
        if (err > worst) worst = err;
    }
    double rel = worst / (maxabs > 0 ? maxabs : 1);
    int ok = rel <= TOL && maxabs > 0; // an all-zero gradient would make the check vacuous
    char detail[120];
    snprintf(detail, sizeof detail, "n=%zu max|g| %.3e  worst rel %.2e", n, maxabs, rel);
    check(ok, what, detail);
}

static double dot(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---- per-op checks ------------------------------------------------------------------------------ */

typedef struct { real *y, *rstd, *x, *w, *gy; int N, C; } NormCtx;
static double norm_loss(void *p) {
    NormCtx *c = p;
    rmsnorm_forward(c->y, c->rstd, c->x, c->w, c->N, c->C, 1e-5);
    return dot(c->y, c->gy, (size_t)c->N * c->C);
}
static void check_rmsnorm(unsigned long long *s) {
    enum { N = 3, C = 7 };
    real y[N * C], rstd[N], x[N * C], w[C], gy[N * C], dx[N * C] = {0}, dw[C] = {0};
    fill(x, N * C, s, 1.5); fill(w, C, s, 1); fill(gy, N * C, s, 1);
    NormCtx c = {y, rstd, x, w, gy, N, C};
    norm_loss(&c);
    rmsnorm_backward(dx, dw, gy, x, w, rstd, N, C);
    check_grad("rmsnorm d(input)", x, N * C, dx, norm_loss, &c);
    check_grad("rmsnorm d(weight)", w, C, dw, norm_loss, &c);
}

typedef struct { real *y, *x, *w, *gy; int N, IC, OC; } MatCtx;
static double mat_loss(void *p) {
    MatCtx *c = p;
    matmul_forward(c->y, c->x, c->w, c->N, c->IC, c->OC);
    return dot(c->y, c->gy, (size_t)c->N * c->OC);
}
static void check_matmul(unsigned long long *s) {
    enum { N = 3, IC = 5, OC = 4 };
    real y[N * OC], x[N * IC], w[OC * IC], gy[N * OC], dx[N * IC] = {0}, dw[OC * IC] = {0};
    fill(x, N * IC, s, 1); fill(w, OC * IC, s, 1); fill(gy, N * OC, s, 1);
    MatCtx c = {y, x, w, gy, N, IC, OC};
    matmul_backward(dx, dw, gy, x, w, N, IC, OC);
    check_grad("matmul d(input)", x, N * IC, dx, mat_loss, &c);
    check_grad("matmul d(weight)", w, OC * IC, dw, mat_loss, &c);
}

typedef struct { real *y, *x, *cs, *sn, *gy; int N, NH, HS; } RopeCtx;
static double rope_loss(void *p) {
    RopeCtx *c = p;
    rope_forward(c->y, c->x, c->cs, c->sn, c->N, c->NH, c->HS);
    return dot(c->y, c->gy, (size_t)c->N * c->NH * c->HS);
}
static void check_rope(unsigned long long *s) {
    enum { N = 3, NH = 2, HS = 6 };
    int pos[N] = {5, 17, 1000};
    double inv[HS / 2];
    rope_inv_freq(inv, HS, 10000.0, 8.0, 1.0, 4.0, 64.0);
    real cs[N * HS / 2], sn[N * HS / 2], y[N * NH * HS], x[N * NH * HS], gy[N * NH * HS], dx[N * NH * HS] = {0};
    rope_table(cs, sn, pos, inv, N, HS);
    fill(x, N * NH * HS, s, 1); fill(gy, N * NH * HS, s, 1);
    RopeCtx c = {y, x, cs, sn, gy, N, NH, HS};
    rope_backward(dx, gy, cs, sn, N, NH, HS);
    check_grad("rope d(input) (llama3 scaling, pos 5/17/1000)", x, N * NH * HS, dx, rope_loss, &c);
}

typedef struct { real *out, *lse, *att, *q, *k, *v, *gy; const int *mask; int B, T, S, NH, NKV, HS; const AttnSpec *sp; } AttCtx;
static double att_loss(void *p) {
    AttCtx *c = p;
    attention_forward(c->out, c->lse, c->att, c->q, c->k, c->v, c->mask, c->sp, c->B, c->T, c->S, c->NH, c->NKV, c->HS);
    return dot(c->out, c->gy, (size_t)c->B * c->T * c->NH * c->HS);
}
static void check_attention(unsigned long long *s, const AttnSpec *sp, const char *label) {
    // GQA (4 query heads on 2 KV heads), 2 keys of prefix before 4 tokens, and in row 1 the first 3
    // keys masked so that its query 0 sees nothing (a left-pad row); sp: Gemma's scale and window
    enum { B = 2, T = 4, S = 6, NH = 4, NKV = 2, HS = 3 };
    int mask[B * S] = {1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1};
    static real q[B * T * NH * HS], k[B * S * NKV * HS], v[B * S * NKV * HS], gy[B * T * NH * HS];
    static real out[B * T * NH * HS], lse[B * NH * T], att[B * NH * T * S], scratch[B * NKV * 2 * S];
    static real dq[B * T * NH * HS], dk[B * S * NKV * HS], dv[B * S * NKV * HS];
    fill(q, sizeof q / sizeof q[0], s, 1); fill(k, sizeof k / sizeof k[0], s, 1);
    fill(v, sizeof v / sizeof v[0], s, 1); fill(gy, sizeof gy / sizeof gy[0], s, 1);
    memset(dq, 0, sizeof dq); memset(dk, 0, sizeof dk); memset(dv, 0, sizeof dv);
    AttCtx c = {out, lse, att, q, k, v, gy, mask, B, T, S, NH, NKV, HS, sp};
    att_loss(&c);
    attention_backward(dq, dk, dv, scratch, gy, q, k, v, lse, mask, sp, B, T, S, NH, NKV, HS);
    char what[128];
    snprintf(what, sizeof what, "attention d(q) (%s)", label);
    check_grad(what, q, sizeof q / sizeof q[0], dq, att_loss, &c);
    snprintf(what, sizeof what, "attention d(k) (%s)", label);
    check_grad(what, k, sizeof k / sizeof k[0], dk, att_loss, &c);
    snprintf(what, sizeof what, "attention d(v) (%s)", label);
    check_grad(what, v, sizeof v / sizeof v[0], dv, att_loss, &c);
    // the fully masked query row has zero output
    double z = 0;
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < HS; i++) z += fabs(out[((1 * T + 0) * NH + h) * HS + i]);
    int ok = z == 0;
    check(ok, "attention row with no visible key is 0", "");
}

/* a gated activation out = act(gate) * up: SwiGLU or GeGLU, with its backward */
typedef void (*gated_fwd)(real *out, const real *gate, const real *up, size_t n);
typedef void (*gated_bwd)(real *dgate, real *dup, const real *dout, const real *gate, const real *up, size_t n);
typedef struct { real *y, *g, *u, *gy; size_t n; gated_fwd fwd; } SwiCtx;
static double gated_loss(void *p) {
    SwiCtx *c = p;
    c->fwd(c->y, c->g, c->u, c->n);
    return dot(c->y, c->gy, c->n);
}
static void check_gated(unsigned long long *s, gated_fwd fwd, gated_bwd bwd, const char *name) {
    enum { n = 11 };
    real y[n], g[n], u[n], gy[n], dg[n] = {0}, du[n] = {0};
    fill(g, n, s, 3); fill(u, n, s, 1); fill(gy, n, s, 1);
    SwiCtx c = {y, g, u, gy, n, fwd};
    bwd(dg, du, gy, g, u, n);
    char what[64];
    snprintf(what, sizeof what, "%s d(gate)", name);
    check_grad(what, g, n, dg, gated_loss, &c);
    snprintf(what, sizeof what, "%s d(up)", name);
    check_grad(what, u, n, du, gated_loss, &c);
}
static void check_swiglu(unsigned long long *s) { check_gated(s, swiglu_forward, swiglu_backward, "swiglu"); }
static void check_geglu(unsigned long long *s) { check_gated(s, geglu_forward, geglu_backward, "geglu (gelu_tanh)"); }

typedef struct { real *z; const int *labels; int B, T, V; } CeCtx;
static double ce_loss(void *p) {
    CeCtx *c = p;
    long cnt;
    return crossentropy_forward(&cnt, c->z, c->labels, c->B, c->T, c->V) / 3.0;
}
static void check_crossentropy(unsigned long long *s) {
    enum { B = 2, T = 4, V = 5 };
    int labels[B * T] = {2, -100, 4, 0, -100, -100, 1, 3};
    real z[B * T * V], dz[B * T * V] = {0};
    fill(z, B * T * V, s, 3);
    CeCtx c = {z, labels, B, T, V};
    crossentropy_backward(dz, z, labels, 1.0 / 3.0, B, T, V);
    check_grad("cross-entropy d(logits) (shift, -100)", z, B * T * V, dz, ce_loss, &c);
}

/* ---- whole model ------------------------------------------------------------------------------ */

typedef struct {
    LlamaParams *w;
    LlamaActs *a;
    const int *ids, *mask, *labels;
    int B, T;
} ModelCtx;

static double model_loss(void *p) {
    ModelCtx *c = p;
    afx_err e;
    double sum;
    long cnt;
    if (llama_forward(c->w, NULL, c->a, c->ids, c->mask, NULL, c->B, c->T, &e) ||
        llama_loss(c->a, c->labels, c->B, c->T, &sum, &cnt, &e)) {
        printf("  FAIL  %s\n", e.msg);
        return NAN;
    }
    return sum / (double)cnt;
}

static void check_model(const char *name, const LlamaConfig *cfg, const int *ids, const int *mask,
                        const int *labels, int B, int T, unsigned long long *s) {
    LlamaParams w, g;
    LlamaActs a;
    LlamaActGrads da;
    afx_err e;
    if (!require(!llama_params_alloc(&w, cfg, &e) && !llama_params_alloc(&g, cfg, &e) &&
                     !llama_acts_alloc(&a, cfg, NULL, B, T, &e) && !llama_actgrads_alloc(&da, cfg, NULL, B, T, &e),
                 name, e.msg))
        return;
    fill(w.mem, w.count, s, 0.6);
    for (int l = 0; l < cfg->L; l++) // norm weights around 1
        for (int c = 0; c < cfg->C; c++) {
            llama_tensor_ptr(&w, LT_LN1, l)[c] += 1;
            llama_tensor_ptr(&w, LT_LN2, l)[c] += 1;
        }
    for (int c = 0; c < cfg->C; c++) w.t[LT_LNF][c] += 1;
    ModelCtx ctx = {&w, &a, ids, mask, labels, B, T};
    model_loss(&ctx);
    double sum;
    long cnt;
    require(llama_loss(&a, labels, B, T, &sum, &cnt, &e) == 0 &&
                llama_backward(&w, &g, NULL, &a, &da, labels, 1.0 / (double)cnt, B, T, &e) == 0,
            name, e.msg);
    for (int kind = 0; kind < LT_COUNT; kind++) {
        if (!llama_tensor_exists(cfg, kind)) continue;
        size_t n = llama_tensor_numel(cfg, kind) * (llama_tensor_is_per_layer(kind) ? (size_t)cfg->L : 1);
        char hf[160], what[200];
        size_t shp[2];
        int nd;
        llama_tensor_info(cfg, kind, 0, hf, sizeof hf, shp, &nd);
        snprintf(what, sizeof what, "%s %s%s", name, hf, llama_tensor_is_per_layer(kind) ? " (all layers)" : "");
        check_grad(what, w.t[kind], n, g.t[kind], model_loss, &ctx);
    }
    llama_params_free(&w);
    llama_params_free(&g);
    llama_acts_free(&a);
    llama_actgrads_free(&da);
}

/* ---- adaptation methods: every adapter parameter, base frozen ------------------------------------ */

typedef struct {
    LlamaParams *w;
    AdapterSet *s;
    LlamaActs *a;
    const int *ids, *mask, *labels;
    int B, T;
} AdCtx;

static double adapter_loss(void *p) {
    AdCtx *c = p;
    afx_err e;
    double sum;
    long cnt;
    if (llama_forward(c->w, adapter_hooks(c->s), c->a, c->ids, c->mask, NULL, c->B, c->T, &e) ||
        llama_loss(c->a, c->labels, c->B, c->T, &sum, &cnt, &e)) {
        printf("  FAIL  %s\n", e.msg);
        return NAN;
    }
    return sum / (double)cnt;
}

/* ads: created adapters (ownership stays with the caller); values are drawn non-trivially */
static void check_adapters(const char *name, LlamaParams *w, Adapter **ads, int n, const int *ids,
                           const int *mask, const int *labels, int B, int T, unsigned long long *seed) {
    AdapterSet s;
    LlamaActs a;
    LlamaActGrads da;
    afx_err e;
    if (!require(!adapter_set_init(&s, ads, n, w, &e) && !adapter_set_bind_acts(&s, B, T, &e) &&
                     !llama_acts_alloc(&a, &w->cfg, adapter_hooks(&s), B, T, &e) &&
                     !llama_actgrads_alloc(&da, &w->cfg, adapter_hooks(&s), B, T, &e),
                 name, e.msg))
        return;
    fill(s.w, s.count, seed, 0.5); // every parameter away from its init (gates, LoRA B != 0)
    AdCtx ctx = {w, &s, &a, ids, mask, labels, B, T};
    adapter_loss(&ctx);
    double sum;
    long cnt;
    int lossed = llama_loss(&a, labels, B, T, &sum, &cnt, &e) == 0;
    adapter_set_zero_grad(&s);
    require(lossed && llama_backward(w, NULL, adapter_hooks(&s), &a, &da, labels, 1.0 / (double)cnt, B, T, &e) == 0,
            name, e.msg);
    // one check per parameter tensor (all of a method's tensors of one kind are small here)
    for (int i = 0; i < n; i++)
        for (int k = 0; k < ads[i]->n_params; k++) {
            AdapterTensor *t = &ads[i]->params[k];
            char what[200];
            snprintf(what, sizeof what, "%s %s", name, t->name);
            check_grad(what, t->w, t->numel, t->g, adapter_loss, &ctx);
        }
    adapter_set_free(&s);
    llama_acts_free(&a);
    llama_actgrads_free(&da);
}

static void check_methods(const LlamaConfig *cfg, const int *ids, const int *mask, const int *labels, int B, int T,
                          unsigned long long *seed) {
    LlamaParams w;
    afx_err e;
    if (!require(llama_params_alloc(&w, cfg, &e) == 0, "methods: allocate the model", e.msg)) return;
    fill(w.mem, w.count, seed, 0.6);
    Adapter ad[2];
    Adapter *p[2] = {&ad[0], &ad[1]};
    memset(ad, 0, sizeof ad); // adapter_destroy of one never created is harmless

    PromptOptions po = {.num_virtual_tokens = 2};
    if (require(prompt_create(&ad[0], cfg, &po, &e) == 0, "prompt: create", e.msg)) {
        check_adapters("prompt", &w, p, 1, ids, mask, labels, B, T, seed);
        adapter_destroy(&ad[0]);
    }
    PrefixOptions xo = {.num_virtual_tokens = 2};
    if (require(prefix_create(&ad[0], cfg, &xo, &e) == 0, "prefix: create", e.msg)) {
        check_adapters("prefix", &w, p, 1, ids, mask, labels, B, T, seed);
        adapter_destroy(&ad[0]);
    }
    int sub[2] = {0, 2};
    PrefixOptions xs = {.num_virtual_tokens = 3, .layers = sub, .n_layers = 2, .projection = 1,
                        .encoder_hidden_size = 5, .offset_zero = 1};
    if (require(prefix_create(&ad[0], cfg, &xs, &e) == 0, "prefix-subset-mlp-zero: create", e.msg)) {
        check_adapters("prefix-subset-mlp-zero", &w, p, 1, ids, mask, labels, B, T, seed);
        adapter_destroy(&ad[0]);
    }
    LlamaAdapterOptions lp = {.adapter_len = 3, .adapter_layers = 2, .gate = GATE_PEFT};
    if (require(llama_adapter_create(&ad[0], cfg, &lp, &e) == 0, "llama-adapter-peft: create", e.msg)) {
        check_adapters("llama-adapter-peft", &w, p, 1, ids, mask, labels, B, T, seed);
        adapter_destroy(&ad[0]);
    }
    LlamaAdapterOptions lo = {.adapter_len = 2, .adapter_layers = 3, .gate = GATE_OFFICIAL};
    if (require(llama_adapter_create(&ad[0], cfg, &lo, &e) == 0, "llama-adapter-official: create", e.msg)) {
        check_adapters("llama-adapter-official", &w, p, 1, ids, mask, labels, B, T, seed);
        adapter_destroy(&ad[0]);
    }
    LoraOptions ro = {.r = 2, .alpha = 3, .rslora = 1, .targets = {1, 1, 1, 1, 1, 1, 1}};
    if (require(lora_create(&ad[0], cfg, &ro, &e) == 0, "lora-all-rslora: create", e.msg)) {
        check_adapters("lora-all-rslora", &w, p, 1, ids, mask, labels, B, T, seed);
        adapter_destroy(&ad[0]);
    }
    // composed: LoRA on q,v + prefix on every layer + Llama-Adapter is not PEFT's, but must still be exact
    LoraOptions rq = {.r = 2, .alpha = 4, .targets = {1, 0, 1, 0, 0, 0, 0}};
    if (require(lora_create(&ad[0], cfg, &rq, &e) == 0 && prefix_create(&ad[1], cfg, &xo, &e) == 0,
                "lora+prefix: create", e.msg))
        check_adapters("lora+prefix", &w, p, 2, ids, mask, labels, B, T, seed);
    adapter_destroy(&ad[0]);
    adapter_destroy(&ad[1]);
    // LoRA on q,k,v + Llama-Adapter (affix's rule: the adaption prompt's keys/values use the base k/v
    // projections, LoRA acts on the tokens' path only)
    LoraOptions rkv = {.r = 2, .alpha = 4, .targets = {1, 1, 1, 0, 0, 0, 0}};
    LlamaAdapterOptions la2 = {.adapter_len = 2, .adapter_layers = cfg->L};
    if (require(lora_create(&ad[0], cfg, &rkv, &e) == 0 && llama_adapter_create(&ad[1], cfg, &la2, &e) == 0,
                "lora+llama-adapter: create", e.msg))
        check_adapters("lora+llama-adapter", &w, p, 2, ids, mask, labels, B, T, seed);
    adapter_destroy(&ad[0]);
    adapter_destroy(&ad[1]);
    llama_params_free(&w);
}

int main(void) {
    unsigned long long s = 42;
    printf("finite-difference gradient checks (f64 build, h=%g, tol %g of max|g|)\n", H, TOL);
    check_rmsnorm(&s);
    check_matmul(&s);
    check_rope(&s);
    check_attention(&s, NULL, "GQA, offset keys, padding");
    // Gemma 3's variants draw from their own stream, so the cases after them keep their inputs
    unsigned long long sg = 0x6a3c5e7d1b2f4e9bULL;
    AttnSpec gemma_window = {1.0 / sqrt(5.0), 3, 0}, gemma_exempt = {0.7, 2, 2};
    check_attention(&sg, &gemma_window, "scale 1/sqrt(5), window 3");
    check_attention(&sg, &gemma_exempt, "scale 0.7, window 2, 2 prefix keys exempt");
    check_swiglu(&s);
    check_geglu(&sg);
    check_crossentropy(&s);

    // tied, GQA 4/2, head_dim 6 != 12/4, llama3 RoPE with all bands in use, left-padded row
    LlamaConfig c1 = {.V = 13, .C = 12, .FF = 10, .L = 3, .NH = 4, .NKV = 2, .HS = 6, .eps = 1e-5,
                      .rope_theta = 10000, .rope_factor = 8, .rope_low_freq_factor = 1,
                      .rope_high_freq_factor = 4, .rope_original_max_position = 64, .tied = 1,
                      .max_pos = 128};
    int ids1[2 * 5] = {3, 7, 1, 12, 5, 0, 0, 9, 2, 4};
    int mask1[2 * 5] = {1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    int lab1[2 * 5] = {3, 7, 1, 12, 5, -100, -100, -100, 2, 4};
    check_model("tied-gqa-llama3", &c1, ids1, mask1, lab1, 2, 5, &s);

    // untied MHA, right-padded row
    LlamaConfig c2 = {.V = 11, .C = 8, .FF = 12, .L = 2, .NH = 2, .NKV = 2, .HS = 4, .eps = 1e-6,
                      .rope_theta = 500000, .tied = 0, .max_pos = 64};
    int ids2[2 * 4] = {1, 2, 3, 4, 5, 6, 0, 0};
    int mask2[2 * 4] = {1, 1, 1, 1, 1, 1, 0, 0};
    int lab2[2 * 4] = {-100, 2, 3, 4, -100, 6, -100, -100};
    check_model("untied-mha", &c2, ids2, mask2, lab2, 2, 4, &s);

    // every method, on the tied/GQA/llama3 config with its left-padded batch
    check_methods(&c1, ids1, mask1, lab1, 2, 5, &s);

    // Gemma 3: multi-query, head_dim 8 != 12/2, scale 1/sqrt(5), window 3 cutting at T = 7 in the
    // sliding layers 0-4 (layer 5 full), both RoPE bases, a left-padded row; the whole model, then
    // every method (own seed stream)
    LlamaConfig cg = {.V = 13, .C = 12, .FF = 10, .L = 6, .NH = 2, .NKV = 1, .HS = 8, .eps = 1e-6,
                      .rope_theta = 1e6, .tied = 1, .max_pos = 64, .arch = AFX_ARCH_GEMMA3,
                      .query_pre_attn_scalar = 5, .sliding_window = 3, .rope_local_theta = 1e4};
    for (int l = 0; l < cg.L; l++) cg.sliding[l] = (l + 1) % 6 != 0;
    fd_mode.richardson = 1;
    fd_mode.sample = 40;
    int idsg[2 * 7] = {3, 7, 1, 12, 5, 8, 2, 0, 0, 9, 2, 4, 11, 6};
    int maskg[2 * 7] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
    int labg[2 * 7] = {-100, 7, 1, 12, 5, 8, 2, -100, -100, -100, 2, 4, 11, 6};
    check_model("gemma3", &cg, idsg, maskg, labg, 2, 7, &sg);
    check_methods(&cg, idsg, maskg, labg, 2, 7, &sg);

    return check_summary();
}
