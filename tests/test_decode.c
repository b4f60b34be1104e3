/* test_decode.c — generation with the KV cache against the full forward.
 *
 * For a tiny random model (GQA, head_dim != C/NH, llama3 RoPE), with no adapter and with every
 * method (prefix on a subset with both position offsets, prompt, Llama-Adapter, LoRA, LoRA + prefix):
 * the logits of each position computed by llama_decode — prefill of a few tokens then one token
 * per call, or in chunks — equal llama_forward's logits on the whole sequence. Then the sampler:
 * greedy, top-p limits, reproducibility by seed, frequencies of temperature sampling. And the
 * errors: a full cache, an id outside the vocabulary.
 * Ends with "N passed, M failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "decode.h"
#include "llama.h"
#include "model.h"
#include "sampler.h"


#ifdef AFFIX_F64
#define CLOSE 1e-12
#else
#define CLOSE 1e-5
#endif

static const LlamaConfig CFG = {.V = 23, .C = 16, .FF = 20, .L = 3, .NH = 4, .NKV = 2, .HS = 6, .eps = 1e-5,
                                .rope_theta = 10000, .rope_factor = 8, .rope_low_freq_factor = 1,
                                .rope_high_freq_factor = 4, .rope_original_max_position = 16, .tied = 0, .max_pos = 64};
/* Gemma 3 variant: multi-query, head_dim != C/NH, a window of 3 that cuts at T = 9 in the sliding
 * layers (all but layer 5), the scale 1/sqrt(8) != 1/sqrt(HS), two RoPE bases */
static LlamaConfig gemma_cfg(void) {
    LlamaConfig g = {.V = 23, .C = 16, .FF = 20, .L = 6, .NH = 4, .NKV = 1, .HS = 6, .eps = 1e-6,
                     .rope_theta = 1e6, .tied = 1, .max_pos = 64, .arch = AFX_ARCH_GEMMA3,
                     .query_pre_attn_scalar = 8, .sliding_window = 3, .rope_local_theta = 1e4};
    for (int l = 0; l < g.L; l++) g.sliding[l] = (l + 1) % 6 != 0;
    return g;
}
static const LlamaConfig *CUR = &CFG; /* the config the paths are compared on */
enum { B = 2, T = 9 };
static const int IDS[B * T] = {1, 5, 7, 2, 9, 3, 14, 22, 6, 4, 8, 11, 6, 0, 17, 3, 3, 19};

static void fill(real *x, size_t n, unsigned long long s, double scale) {
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (real)(scale * ((double)(s >> 11) / 9007199254740992.0 * 2 - 1));
    }
}

/* max |decode - forward| over every real position, relative to max(1, |logit|); -1 on error */
static double compare_paths(const LlamaParams *w, AdapterSet *s, int prefill, int chunk, afx_err *e) {
    LlamaActs a;
    LlamaCache c;
    int V = CUR->V;
    if (s && adapter_set_bind_acts(s, B, T, e)) return -1;
    if (llama_acts_alloc(&a, CUR, adapter_hooks(s), B, T, e)) return -1;
    if (llama_forward(w, adapter_hooks(s), &a, IDS, NULL, NULL, B, T, e)) { llama_acts_free(&a); return -1; }
    real *ref = malloc((size_t)B * T * V * sizeof(real));
    for (int b = 0; b < B; b++) // the real rows of the forward (a prompt puts P rows in front)
        memcpy(ref + (size_t)b * T * V, a.logits + ((size_t)b * a.Tx + a.P) * V, (size_t)T * V * sizeof(real));
    llama_acts_free(&a);
    if (llama_cache_alloc(&c, CUR, adapter_hooks(s), B, T, chunk, e)) { free(ref); return -1; }
    double worst = 0;
    int ids[B * T];
    for (int done = 0; done < T;) {
        int n = done == 0 ? prefill : 1;
        for (int b = 0; b < B; b++) memcpy(ids + b * n, IDS + b * T + done, (size_t)n * sizeof(int));
        const real *last;
        int Tc;
        if (llama_decode(w, adapter_hooks(s), &c, ids, NULL, n, &last, &Tc, e)) { worst = -1; break; }
        // the last min(n, Tc) real rows of this call's final chunk
        int real_rows = n < Tc ? n : Tc;
        for (int b = 0; b < B; b++)
            for (int r = 0; r < real_rows; r++) {
                int pos = done + n - real_rows + r;
                const real *got = c.logits + ((size_t)b * Tc + (Tc - real_rows + r)) * V;
                const real *want = ref + ((size_t)b * T + pos) * V;
                for (int v = 0; v < V; v++) {
                    double d = fabs((double)got[v] - want[v]) / fmax(1.0, fabs((double)want[v]));
                    if (d > worst) worst = d;
                }
            }
        done += n;
    }
    llama_cache_free(&c);
    free(ref);
    return worst;
}

/* the cache rewound: prefill 4 tokens with last_only (only the last row's logits), a 3-token detour,
 * rewind to the prefill's state, then the real continuation in one call: every row read equals the
 * full forward; -1 on error */
static double compare_rewind(const LlamaParams *w, AdapterSet *s, afx_err *e) {
    LlamaActs a;
    LlamaCache c;
    int V = CUR->V, pre = 4, rest = T - pre;
    if (s && adapter_set_bind_acts(s, B, T, e)) return -1;
    if (llama_acts_alloc(&a, CUR, adapter_hooks(s), B, T, e)) return -1;
    if (llama_forward(w, adapter_hooks(s), &a, IDS, NULL, NULL, B, T, e)) { llama_acts_free(&a); return -1; }
    real *ref = malloc((size_t)B * T * V * sizeof(real));
    for (int b = 0; b < B; b++)
        memcpy(ref + (size_t)b * T * V, a.logits + ((size_t)b * a.Tx + a.P) * V, (size_t)T * V * sizeof(real));
    llama_acts_free(&a);
    if (llama_cache_alloc(&c, CUR, adapter_hooks(s), B, T, 0, e)) { free(ref); return -1; }
    double worst = 0;
    int ids[B * T], detour[B * 3];
    for (int b = 0; b < B; b++) {
        memcpy(ids + b * pre, IDS + b * T, (size_t)pre * sizeof(int));
        for (int t = 0; t < 3; t++) detour[b * 3 + t] = (IDS[b * T + t] + 7) % CUR->V;
    }
    const real *last;
    int Tc;
    c.last_only = 1;
    if (llama_decode(w, adapter_hooks(s), &c, ids, NULL, pre, &last, &Tc, e)) goto fail;
    for (int b = 0; b < B; b++) { // the last row of each batch row: the forward's position pre-1
        const real *got = c.logits + ((size_t)b * Tc + Tc - 1) * V, *want = ref + ((size_t)b * T + pre - 1) * V;
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs((double)got[v] - want[v]) / fmax(1.0, fabs((double)want[v])));
    }
    int used = c.used, pos = c.next_pos;
    c.last_only = 0;
    if (llama_decode(w, adapter_hooks(s), &c, detour, NULL, 3, &last, &Tc, e)) goto fail;
    if (llama_cache_rewind(&c, c.used + 1, c.next_pos, e) == 0) { worst = 2; goto done; } // a row never there: refused
    if (llama_cache_rewind(&c, used, pos, e)) goto fail;
    for (int b = 0; b < B; b++) memcpy(ids + b * rest, IDS + b * T + pre, (size_t)rest * sizeof(int));
    if (llama_decode(w, adapter_hooks(s), &c, ids, NULL, rest, &last, &Tc, e)) goto fail;
    for (int b = 0; b < B; b++)
        for (int r = 0; r < rest; r++) {
            const real *got = c.logits + ((size_t)b * Tc + r) * V, *want = ref + ((size_t)b * T + pre + r) * V;
            for (int v = 0; v < V; v++) worst = fmax(worst, fabs((double)got[v] - want[v]) / fmax(1.0, fabs((double)want[v])));
        }
done:
    llama_cache_free(&c);
    free(ref);
    return worst;
fail:
    worst = -1;
    goto done;
}

/* the residual-stream observer (affix probe): in one prefill, layer l's input must be the forward's
 * (embed for l = 0, out of layer l-1 after), for l = 0..L (L: the last block's output) */
typedef struct { const LlamaActs *a; int seen; double worst; } ObsCheck;
static void obs_check(void *ctx, int l, const real *x, int Bc, int Tx, int Pv) {
    ObsCheck *o = ctx;
    (void)Pv;
    size_t n = (size_t)Bc * Tx * CUR->C;
    const real *want = l == 0 ? o->a->embed : o->a->out + (size_t)(l - 1) * n;
    for (size_t i = 0; i < n; i++) o->worst = fmax(o->worst, fabs((double)x[i] - want[i]) / fmax(1.0, fabs((double)want[i])));
    o->seen |= 1 << l;
}

static double compare_observer(const LlamaParams *w, AdapterSet *s, afx_err *e) {
    LlamaActs a;
    LlamaCache c;
    if (s && adapter_set_bind_acts(s, B, T, e)) return -1;
    if (llama_acts_alloc(&a, CUR, adapter_hooks(s), B, T, e)) return -1;
    double r = -1;
    if (!llama_forward(w, adapter_hooks(s), &a, IDS, NULL, NULL, B, T, e) &&
        !llama_cache_alloc(&c, CUR, adapter_hooks(s), B, T, 0, e)) {
        ObsCheck o = {&a, 0, 0};
        c.observe = obs_check;
        c.observe_ctx = &o;
        const real *last;
        if (!llama_decode(w, adapter_hooks(s), &c, IDS, NULL, T, &last, NULL, e))
            r = o.seen == (1 << (CUR->L + 1)) - 1 ? o.worst : 3; // every depth once
        llama_cache_free(&c);
    }
    llama_acts_free(&a);
    return r;
}

static void check_paths(const char *name, const LlamaParams *w, Adapter **ads, int n) {
    afx_err e = {{0}};
    AdapterSet set, *s = NULL;
    if (n) {
        if (!require(adapter_set_init(&set, ads, n, (LlamaParams *)w, &e) == 0, name, e.msg)) return;
        fill(set.w, set.count, 77, 0.5); // away from init: gates and LoRA B non-zero
        s = &set;
    }
    char what[160], detail[600];
    double d1 = compare_paths(w, s, 4, 0, &e);      // prefill 4 tokens, then one at a time
    snprintf(what, sizeof what, "%s: cached decode (prefill 4, then 1 by 1) = full forward", name);
    snprintf(detail, sizeof detail, "worst %.2e %.500s", d1, d1 < 0 ? e.msg : "");
    check(d1 >= 0 && d1 <= CLOSE, what, detail);
    double d2 = compare_paths(w, s, T, 2, &e);      // the whole prompt, computed 2 tokens at a time
    snprintf(what, sizeof what, "%s: chunked prefill (chunk 2) = full forward", name);
    snprintf(detail, sizeof detail, "worst %.2e %.500s", d2, d2 < 0 ? e.msg : "");
    check(d2 >= 0 && d2 <= CLOSE, what, detail);
    double d3 = compare_rewind(w, s, &e);
    snprintf(what, sizeof what, "%s: last-row logits, a detour rewound, the continuation = full forward", name);
    snprintf(detail, sizeof detail, "worst %.2e %.500s", d3, d3 < 0 ? e.msg : "");
    check(d3 >= 0 && d3 <= CLOSE, what, detail);
    double d4 = compare_observer(w, s, &e);
    snprintf(what, sizeof what, "%s: the observer sees the forward's residual stream at every depth", name);
    snprintf(detail, sizeof detail, "worst %.2e %.500s", d4, d4 < 0 ? e.msg : "");
    check(d4 >= 0 && d4 <= CLOSE, what, detail);
    if (s) adapter_set_free(s);
}

int main(void) {
    afx_err e = {{0}};
    LlamaParams w;
    if (!require(llama_params_alloc(&w, &CFG, &e) == 0, "setup: allocate the model", e.msg)) return check_summary();
    fill(w.mem, w.count, 9, 0.5);
    for (int l = 0; l < CFG.L; l++)
        for (int c = 0; c < CFG.C; c++) llama_tensor_ptr(&w, LT_LN1, l)[c] += 1, llama_tensor_ptr(&w, LT_LN2, l)[c] += 1;

    Adapter ad[2];
    Adapter *p[2] = {&ad[0], &ad[1]};
    check_paths("base", &w, NULL, 0);
    int sub[2] = {1, 2};
    PrefixOptions xo = {.num_virtual_tokens = 3, .layers = sub, .n_layers = 2};
    if (require(prefix_create(&ad[0], &CFG, &xo, &e) == 0, "prefix on layers 1,2: create", e.msg))
        check_paths("prefix on layers 1,2", &w, p, 1);
    adapter_destroy(&ad[0]);
    xo.offset_zero = 1;
    xo.projection = 1;
    if (require(prefix_create(&ad[0], &CFG, &xo, &e) == 0, "prefix MLP, offset 0: create", e.msg))
        check_paths("prefix MLP, offset 0", &w, p, 1);
    adapter_destroy(&ad[0]);
    PromptOptions po = {.num_virtual_tokens = 2};
    if (require(prompt_create(&ad[0], &CFG, &po, &e) == 0, "prompt: create", e.msg)) check_paths("prompt", &w, p, 1);
    adapter_destroy(&ad[0]);
    LlamaAdapterOptions lo = {.adapter_len = 3, .adapter_layers = 2, .gate = GATE_OFFICIAL};
    if (require(llama_adapter_create(&ad[0], &CFG, &lo, &e) == 0, "llama-adapter: create", e.msg))
        check_paths("llama-adapter", &w, p, 1);
    adapter_destroy(&ad[0]);
    LoraOptions ro = {.r = 2, .alpha = 4, .targets = {1, 1, 1, 1, 1, 1, 1}};
    int lora_ok = require(lora_create(&ad[0], &CFG, &ro, &e) == 0, "lora (all targets): create", e.msg);
    if (lora_ok) check_paths("lora (all targets)", &w, p, 1);
    PrefixOptions xa = {.num_virtual_tokens = 2};
    if (require(prefix_create(&ad[1], &CFG, &xa, &e) == 0, "lora + prefix: create the prefix", e.msg) && lora_ok)
        check_paths("lora + prefix", &w, p, 2);
    adapter_destroy(&ad[0]);
    adapter_destroy(&ad[1]);

    // ---- the same paths on a Gemma 3 block (the window cuts, the prefix leaves it or stays) ----
    {
        LlamaConfig gc = gemma_cfg();
        LlamaParams gw;
        if (require(llama_params_alloc(&gw, &gc, &e) == 0, "gemma3: allocate", e.msg)) {
            CUR = &gc;
            fill(gw.mem, gw.count, 19, 0.5);
            check_paths("gemma3 base", &gw, NULL, 0);
            PrefixOptions gx = {.num_virtual_tokens = 2};
            if (require(prefix_create(&ad[0], &gc, &gx, &e) == 0, "gemma3 prefix: create", e.msg))
                check_paths("gemma3 prefix (PEFT: leaves the window)", &gw, p, 1);
            adapter_destroy(&ad[0]);
            gx.always_visible = 1;
            if (require(prefix_create(&ad[0], &gc, &gx, &e) == 0, "gemma3 prefix (always visible): create", e.msg))
                check_paths("gemma3 prefix (always visible)", &gw, p, 1);
            adapter_destroy(&ad[0]);
            if (require(prompt_create(&ad[0], &gc, &po, &e) == 0, "gemma3 prompt: create", e.msg))
                check_paths("gemma3 prompt", &gw, p, 1);
            adapter_destroy(&ad[0]);
            LlamaAdapterOptions gl = {.adapter_len = 3, .adapter_layers = 2, .gate = GATE_PEFT};
            if (require(llama_adapter_create(&ad[0], &gc, &gl, &e) == 0, "gemma3 llama-adapter: create", e.msg))
                check_paths("gemma3 llama-adapter", &gw, p, 1);
            adapter_destroy(&ad[0]);
            if (require(lora_create(&ad[0], &gc, &ro, &e) == 0, "gemma3 lora: create", e.msg))
                check_paths("gemma3 lora (all targets)", &gw, p, 1);
            adapter_destroy(&ad[0]);
            CUR = &CFG;
            llama_params_free(&gw);
        }
        // a head_dim whose RoPE table would not fit is refused, not a stack overflow (decode.c had
        // no guard): head_dim 2048 passes llama_config_check
        LlamaConfig big = {.V = 5, .C = 4, .FF = 4, .L = 1, .NH = 1, .NKV = 1, .HS = 2048, .eps = 1e-5,
                           .rope_theta = 1e4, .max_pos = 8};
        LlamaParams bw;
        LlamaCache c;
        const real *last;
        int id = 1;
        if (require(!llama_params_alloc(&bw, &big, &e) && !llama_cache_alloc(&c, &big, NULL, 1, 2, 0, &e),
                    "head_dim 2048: allocate", e.msg)) {
            check(llama_decode(&bw, NULL, &c, &id, NULL, 1, &last, NULL, &e) != 0 && strstr(e.msg, "head_dim"),
                  "decode with head_dim 2048 is refused with a message", e.msg);
            llama_cache_free(&c);
            llama_params_free(&bw);
        }
        e.msg[0] = 0;
    }

    // ---- errors ----
    {
        LlamaCache c;
        const real *last;
        int ids[3] = {1, 2, 3};
        if (require(llama_cache_alloc(&c, &CFG, NULL, 1, 4, 0, &e) == 0, "errors: allocate a cache of 4", e.msg)) {
            check(llama_decode(&w, NULL, &c, ids, NULL, 3, &last, NULL, &e) == 0, "decode 3 tokens into a cache of 4", e.msg);
            check(llama_decode(&w, NULL, &c, ids, NULL, 2, &last, NULL, &e) != 0 && strstr(e.msg, "do not fit"),
                  "a full cache is refused with a message", e.msg);
            llama_cache_reset(&c);
            ids[1] = CFG.V;
            check(llama_decode(&w, NULL, &c, ids, NULL, 3, &last, NULL, &e) != 0 && strstr(e.msg, "vocabulary"),
                  "an id outside the vocabulary is refused", e.msg);
            llama_cache_free(&c);
        }
    }

    // ---- sampler ----
    {
        enum { NV = 6 };
        real logits[NV] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 0.0f};
        Sampler s;
        if (require(sampler_init(&s, NV, 0, 1, 1, &e) == 0, "sampler: init (temperature 0)", e.msg)) {
            check(sampler_next(&s, logits) == 1, "temperature 0 is greedy (first maximum, like argmax)", "");
            sampler_free(&s);
        }
        if (require(sampler_init(&s, NV, 1.0, 1e-9, 5, &e) == 0, "sampler: init (top-p 1e-9)", e.msg)) {
            int always = 1;
            for (int i = 0; i < 50; i++) always &= sampler_next(&s, logits) == 1;
            check(always, "top-p -> 0 keeps only the most likely token", "");
            sampler_free(&s);
        }
        // frequencies of temperature sampling follow softmax(logits / t)
        if (require(sampler_init(&s, NV, 0.7, 1, 42, &e) == 0, "sampler: init (temperature 0.7)", e.msg)) {
            int counts[NV] = {0}, n = 20000;
            for (int i = 0; i < n; i++) counts[sampler_next(&s, logits)]++;
            double z = 0, worst = 0;
            for (int i = 0; i < NV; i++) z += exp(logits[i] / 0.7);
            for (int i = 0; i < NV; i++) worst = fmax(worst, fabs(counts[i] / (double)n - exp(logits[i] / 0.7) / z));
            char d[80];
            snprintf(d, sizeof d, "max |freq - p| = %.4f over %d draws", worst, n);
            check(worst < 0.01, "temperature 0.7: frequencies match softmax(logits/t)", d);
            sampler_free(&s);
        }
        // top-p 0.6: only the two tied best tokens (p = 0.31 each) can come out
        if (require(sampler_init(&s, NV, 1.0, 0.6, 3, &e) == 0, "sampler: init (top-p 0.6)", e.msg)) {
            int only = 1, seen1 = 0, seen3 = 0;
            for (int i = 0; i < 2000; i++) {
                int t = sampler_next(&s, logits);
                only &= t == 1 || t == 3;
                seen1 |= t == 1;
                seen3 |= t == 3;
            }
            check(only && seen1 && seen3, "top-p 0.6 samples only the nucleus {1, 3}", "");
            sampler_free(&s);
        }
        // the same seed gives the same sequence
        Sampler s1, s2;
        if (require(!sampler_init(&s1, NV, 1.3, 0.9, 123, &e) && !sampler_init(&s2, NV, 1.3, 0.9, 123, &e),
                    "sampler: init two with seed 123", e.msg)) {
            int same = 1;
            for (int i = 0; i < 100; i++) same &= sampler_next(&s1, logits) == sampler_next(&s2, logits);
            check(same, "the same seed gives the same draws", "");
            sampler_free(&s1);
            sampler_free(&s2);
        }
        check(sampler_init(&s, NV, 1, 1.5, 1, &e) != 0 && strstr(e.msg, "top-p"), "top-p > 1 is refused", e.msg);
    }
    // ---- a real model: stories260K greedy from BOS with the cache = the reference ids ----
    {
        static const int REF[64] = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                                    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
                                    328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267,
                                    337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};
        Model m;
        LlamaCache c;
        e.msg[0] = 0;
        if (require(!model_load(&m, "tests/data/stories260K/stories260K.gguf", &e) &&
                        !llama_cache_alloc(&c, &m.cfg, NULL, 1, 65, 0, &e),
                    "stories260K: load and allocate a cache", e.msg)) {
            int id = 1, same = 1; // BOS
            const real *last;
            for (int i = 0; i < 64 && same; i++) {
                if (llama_decode(&m.w, NULL, &c, &id, NULL, 1, &last, NULL, &e)) { same = 0; break; }
                id = sampler_argmax(last, m.cfg.V);
                same = id == REF[i];
            }
            check(same, "stories260K: 64 greedy ids from BOS with the KV cache equal the reference", e.msg);
            llama_cache_free(&c);
            model_free(&m);
        }
    }
    llama_params_free(&w);
    return check_summary();
}
