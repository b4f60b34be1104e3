/* test_methods.c — what the adaptation methods promise beyond matching the golden values:
 *   - at their true initialization (affix's own init), Llama-Adapter and LoRA leave the model's
 *     output bitwise unchanged, and exactly the expected gradients vanish (adaption prompt, lora_A)
 *     while the others (gate, lora_B) do not;
 *   - LoRA merge gives the same logits as the unmerged adapter; unmerge restores the weights;
 *   - full fine-tuning through the adapter set equals the plain model backward, bit for bit;
 *   - inits follow PEFT (N(0,1) prompts, U(+-1/sqrt(in)) lora_A, B = 0, zero gates, vocab rows);
 *   - combinations that make no sense are refused; shapes are checked;
 *   - the library training step (train.h): equal to the hand-written zero_grad/forward/loss/backward/
 *     AdamW sequence bit for bit; two micro-batches of one row = one batch of two rows; more than 64
 *     micro-batches are used (no cap); a non-finite step changes nothing and says so; on Gemma 3 a
 *     prompt's vocabulary init copies the scaled embedding rows.
 * Ends with "N passed, M failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "llama.h"
#include "train.h"

#ifdef AFFIX_F64
#define CLOSE 1e-12
#else
#define CLOSE 2e-5
#endif

static const LlamaConfig CFG = {.V = 19, .C = 16, .FF = 24, .L = 3, .NH = 4, .NKV = 2, .HS = 6, .eps = 1e-5,
                                .rope_theta = 10000, .tied = 0, .max_pos = 64};
enum { B = 2, T = 6 };
static const int IDS[B * T] = {1, 5, 7, 2, 9, 3, 0, 0, 4, 8, 11, 6};
static const int MASK[B * T] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1};
static const int LABELS[B * T] = {1, 5, 7, 2, 9, 3, -100, -100, -100, 8, 11, 6};

static void fill(real *x, size_t n, unsigned long long s, double scale) {
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (real)(scale * ((double)(s >> 11) / 9007199254740992.0 * 2 - 1));
    }
}

/* forward (+ backward into the set's gradients) with adapters s (NULL = base); logits copied out */
static int run(LlamaParams *w, AdapterSet *s, LlamaParams *g, real *logits, afx_err *e) {
    LlamaActs a;
    LlamaActGrads da;
    double sum;
    long cnt;
    int rc = -1;
    if (s && adapter_set_bind_acts(s, B, T, e)) return -1;
    if (llama_acts_alloc(&a, &w->cfg, adapter_hooks(s), B, T, e)) return -1;
    if (llama_actgrads_alloc(&da, &w->cfg, adapter_hooks(s), B, T, e)) { llama_acts_free(&a); return -1; }
    if (s) adapter_set_zero_grad(s);
    if (!llama_forward(w, adapter_hooks(s), &a, IDS, MASK, NULL, B, T, e) && !llama_loss(&a, LABELS, B, T, &sum, &cnt, e) &&
        !llama_backward(w, g, adapter_hooks(s), &a, &da, LABELS, 1.0 / (double)cnt, B, T, e)) {
        if (logits)
            for (int b = 0; b < B; b++) // the real rows only (a prompt adds P rows in front)
                memcpy(logits + (size_t)b * T * w->cfg.V, a.logits + ((size_t)b * a.Tx + a.P) * w->cfg.V,
                       (size_t)T * w->cfg.V * sizeof(real));
        rc = 0;
    }
    llama_acts_free(&a);
    llama_actgrads_free(&da);
    return rc;
}

static double maxabs(const real *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}

static double maxdiff(const real *x, const real *y, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs((double)x[i] - y[i]) > m) m = fabs((double)x[i] - y[i]);
    return m;
}


/* layer 0's attention output (the input of o_proj, adapter terms included) for the set s */
static int att0(LlamaParams *w, AdapterSet *s, real *out, afx_err *e) {
    LlamaActs a;
    if (s && adapter_set_bind_acts(s, B, T, e)) return -1;
    if (llama_acts_alloc(&a, &w->cfg, adapter_hooks(s), B, T, e)) return -1;
    int rc = llama_forward(w, adapter_hooks(s), &a, IDS, MASK, NULL, B, T, e);
    if (!rc) memcpy(out, a.att_out, sizeof(real) * (size_t)B * a.Tx * w->cfg.NH * w->cfg.HS);
    llama_acts_free(&a);
    return rc;
}

/* every parameter of ad at fixed non-zero values (LoRA B and the gates away from their zero init) */
static void fill_adapter(Adapter *ad, unsigned long long seed) {
    for (int k = 0; k < ad->n_params; k++) fill(ad->params[k].w, ad->params[k].numel, seed + (unsigned long long)k, 0.5);
}

/* LoRA + Llama-Adapter, affix's rule: the adaption prompt's keys and values come from the base k/v
 * projections (LoRA adapts the tokens' path only). With LoRA on k and v only (q untouched), layer 0's
 * adapter term is then the same with or without the LoRA: (hybrid - lora) = (llama-adapter - base).
 * Under the other rule (LoRA'd projections for the adaption prompt too, as PEFT would compute them)
 * the two differ. */
static void test_lora_llama_adapter_rule(LlamaParams *w) {
    afx_err e = {{0}};
    size_t n = (size_t)B * T * CFG.NH * CFG.HS;
    real *base = malloc(n * sizeof(real)), *lo = malloc(n * sizeof(real)), *la = malloc(n * sizeof(real)),
         *hy = malloc(n * sizeof(real));
    LoraOptions ro = {.r = 2, .alpha = 4, .targets = {0, 1, 1, 0, 0, 0, 0}};
    LlamaAdapterOptions lao = {.adapter_len = 3, .adapter_layers = CFG.L};
    Adapter a[4];
    AdapterSet s[3];
    int ok = base && lo && la && hy && !lora_create(&a[0], &CFG, &ro, &e) && !llama_adapter_create(&a[1], &CFG, &lao, &e) &&
             !lora_create(&a[2], &CFG, &ro, &e) && !llama_adapter_create(&a[3], &CFG, &lao, &e);
    Adapter *p0[1] = {&a[0]}, *p1[1] = {&a[1]}, *p2[2] = {&a[2], &a[3]};
    ok = ok && !adapter_set_init(&s[0], p0, 1, w, &e) && !adapter_set_init(&s[1], p1, 1, w, &e) &&
         !adapter_set_init(&s[2], p2, 2, w, &e);
    if (require(ok, "lora+llama-adapter rule: setup", e.msg)) {
        fill_adapter(&a[0], 100), fill_adapter(&a[2], 100); // the same LoRA values in both sets
        fill_adapter(&a[1], 200), fill_adapter(&a[3], 200); // the same Llama-Adapter values
        if (require(!att0(w, NULL, base, &e) && !att0(w, &s[0], lo, &e) && !att0(w, &s[1], la, &e) && !att0(w, &s[2], hy, &e),
                    "lora+llama-adapter rule: forwards", e.msg)) {
            double worst = 0, term = 0, lora_effect = 0;
            for (size_t i = 0; i < n; i++) {
                worst = fmax(worst, fabs((double)(hy[i] - lo[i]) - (double)(la[i] - base[i])));
                term = fmax(term, fabs((double)(la[i] - base[i])));
                lora_effect = fmax(lora_effect, fabs((double)(lo[i] - base[i])));
            }
            char d[160];
            snprintf(d, sizeof d, "worst %.2e; the adapter term %.2e, the LoRA's effect %.2e", worst, term, lora_effect);
            check(worst <= 1e-5 * fmax(1, term) && term > 1e-3 && lora_effect > 1e-3,
                  "lora+llama-adapter: the adaption prompt uses the base k/v projections (layer 0: hybrid - lora = adapter - base)", d);
        }
        for (int i = 0; i < 3; i++) adapter_set_free(&s[i]);
    }
    for (int i = 0; i < 4; i++) adapter_destroy(&a[i]);
    free(base), free(lo), free(la), free(hy);
}

int main(void) {
    afx_err e = {{0}};
    char msg[256];
    LlamaParams w;
    size_t NL = (size_t)B * T * CFG.V;
    real *base_logits = malloc(NL * sizeof(real)), *logits = malloc(NL * sizeof(real));
    if (!require(!llama_params_alloc(&w, &CFG, &e) && base_logits && logits, "setup: allocate the model and logits", e.msg))
        return check_summary();
    fill(w.mem, w.count, 3, 0.5);
    check(run(&w, NULL, NULL, base_logits, &e) == 0, "base forward/backward", e.msg);

    // ---- Llama-Adapter at its true init: output unchanged, only the gates learn at step 0 ----
    {
        Adapter ad;
        Adapter *p = &ad;
        AdapterSet s;
        LlamaAdapterOptions o = {.adapter_len = 4, .adapter_layers = 2, .gate = GATE_PEFT};
        if (require(!llama_adapter_create(&ad, &CFG, &o, &e) && !adapter_set_init(&s, &p, 1, &w, &e) &&
                        !adapter_set_init_params(&s, 11, &e) && !run(&w, &s, NULL, logits, &e),
                    "llama-adapter setup", e.msg)) {
            check(memcmp(logits, base_logits, NL * sizeof(real)) == 0, "llama-adapter at init (gate 0): logits bitwise equal to the base", "");
            double prompt_g = 0, gate_g = 0, prompt_w = 0;
            for (int k = 0; k < ad.n_params; k++) {
                if (k % 2 == 0) prompt_g = fmax(prompt_g, maxabs(ad.params[k].g, ad.params[k].numel)),
                                prompt_w = fmax(prompt_w, maxabs(ad.params[k].w, ad.params[k].numel));
                else gate_g = fmax(gate_g, maxabs(ad.params[k].g, ad.params[k].numel));
            }
            snprintf(msg, sizeof msg, "max |d prompt| = %g, max |d gate| = %g", prompt_g, gate_g);
            check(prompt_g == 0 && gate_g > 0, "llama-adapter at init: adaption_prompt gradient is exactly 0, the gate's is not", msg);
            check(prompt_w > 0.5, "llama-adapter init: prompts drawn N(0,1), gates 0", "");
            adapter_set_free(&s);
        }
        adapter_destroy(&ad);
    }

    // ---- LoRA at its true init: output unchanged, dA = 0, dB != 0; then merge/unmerge ----
    {
        Adapter ad;
        Adapter *p = &ad;
        AdapterSet s;
        LoraOptions o = {.r = 3, .alpha = 6, .targets = {1, 1, 1, 1, 1, 1, 1}};
        if (require(!lora_create(&ad, &CFG, &o, &e) && !adapter_set_init(&s, &p, 1, &w, &e) &&
                        !adapter_set_init_params(&s, 12, &e) && !run(&w, &s, NULL, logits, &e),
                    "lora setup", e.msg)) {
            check(memcmp(logits, base_logits, NL * sizeof(real)) == 0, "lora at init (B = 0): logits bitwise equal to the base", "");
            double ga = 0, gb = 0, bound_ok = 1;
            for (int k = 0; k < ad.n_params; k += 2) {
                ga = fmax(ga, maxabs(ad.params[k].g, ad.params[k].numel));
                gb = fmax(gb, maxabs(ad.params[k + 1].g, ad.params[k + 1].numel));
                double bound = 1 / sqrt((double)ad.params[k].shape[1]);
                if (maxabs(ad.params[k].w, ad.params[k].numel) > bound || maxabs(ad.params[k].w, ad.params[k].numel) < 0.5 * bound ||
                    maxabs(ad.params[k + 1].w, ad.params[k + 1].numel) != 0)
                    bound_ok = 0;
            }
            snprintf(msg, sizeof msg, "max |dA| = %g, max |dB| = %g", ga, gb);
            check(ga == 0 && gb > 0, "lora at init: lora_A gradient is exactly 0, lora_B's is not", msg);
            check(bound_ok, "lora init: A ~ U(+-1/sqrt(in)), B = 0", "");

            // give B values, then: merged base without adapter == base + adapter
            fill(s.w, s.count, 5, 0.3);
            LlamaParams merged;
            real *mlog = malloc(NL * sizeof(real));
            if (require(mlog && !run(&w, &s, NULL, logits, &e) && !llama_params_alloc(&merged, &CFG, &e),
                        "lora merge setup: forward with B != 0, allocate the merged model", e.msg)) {
                memcpy(merged.mem, w.mem, w.count * sizeof(real));
                lora_merge(&ad, &merged, +1);
                if (require(run(&merged, NULL, NULL, mlog, &e) == 0, "lora merge setup: forward of the merged model", e.msg)) {
                    double d = maxdiff(mlog, logits, NL), m = maxabs(logits, NL);
                    snprintf(msg, sizeof msg, "max |diff| %.2e of max |logit| %.2e", d, m);
                    check(d <= CLOSE * (m > 1 ? m : 1) && maxdiff(logits, base_logits, NL) > 1e-3,
                          "lora merge: merged weights give the adapter's logits", msg);
                }
                lora_merge(&ad, &merged, -1);
                double d = maxdiff(merged.mem, w.mem, w.count);
                snprintf(msg, sizeof msg, "max |W - W0| = %.2e", d);
                check(d <= CLOSE, "lora unmerge restores the base weights", msg);
                llama_params_free(&merged);
            }
            free(mlog);
            adapter_set_free(&s);
        }
        adapter_destroy(&ad);
    }

    // ---- full fine-tuning through the adapter set == the plain backward ----
    {
        Adapter ad;
        Adapter *p = &ad;
        AdapterSet s;
        LlamaParams g;
        if (require(!llama_params_alloc(&g, &CFG, &e) && !run(&w, NULL, &g, NULL, &e), "full setup: the plain backward", e.msg)) {
            if (require(!full_create(&ad, &CFG, &e) && !adapter_set_init(&s, &p, 1, &w, &e) && !run(&w, &s, &s.base_g, NULL, &e),
                        "full setup", e.msg)) {
                check(memcmp(g.mem, s.base_g.mem, g.count * sizeof(real)) == 0, "full: gradients bitwise equal to the plain backward", "");
                check(adapter_set_param_count(&s) == llama_params_count(&CFG), "full: every base weight is trainable", "");
                check(ad.params[0].w == w.t[LT_EMBED] && ad.params[0].g == s.base_g.t[LT_EMBED],
                      "full: its parameter table views the base weights and their gradients", "");
                adapter_set_free(&s);
            }
            adapter_destroy(&ad);
            llama_params_free(&g);
        }
    }

    // ---- prompt init from the vocabulary copies embedding rows; random init is N(0,1) ----
    {
        Adapter ad;
        Adapter *p = &ad;
        AdapterSet s;
        PromptOptions o = {.num_virtual_tokens = 5, .init = PROMPT_INIT_VOCAB};
        if (require(!prompt_create(&ad, &CFG, &o, &e) && !adapter_set_init(&s, &p, 1, &w, &e) && !adapter_set_init_params(&s, 13, &e),
                    "prompt setup", e.msg)) {
            int all_rows = 1;
            for (int r = 0; r < 5; r++) {
                int found = 0;
                for (int v = 0; v < CFG.V && !found; v++)
                    found = !memcmp(ad.params[0].w + (size_t)r * CFG.C, w.t[LT_EMBED] + (size_t)v * CFG.C, CFG.C * sizeof(real));
                all_rows &= found;
            }
            check(all_rows, "prompt vocab init: every virtual token is a row of the embedding", "");
            check(run(&w, &s, NULL, NULL, &e) == 0 && maxabs(ad.params[0].g, ad.params[0].numel) > 0,
                  "prompt: the virtual tokens receive a gradient", e.msg);
            adapter_set_free(&s);
        }
        adapter_destroy(&ad);
        PromptOptions r = {.num_virtual_tokens = 64, .init = PROMPT_INIT_RANDOM};
        LlamaConfig big = CFG;
        big.max_pos = 128;
        if (require(prompt_create(&ad, &big, &r, &e) == 0 && adapter_set_init(&s, &p, 1, &w, &e) == 0 &&
                        adapter_set_init_params(&s, 14, &e) == 0,
                    "prompt random init setup", e.msg)) {
            double m = 0, v = 0;
            size_t n = ad.params[0].numel;
            for (size_t i = 0; i < n; i++) m += ad.params[0].w[i];
            m /= (double)n;
            for (size_t i = 0; i < n; i++) v += (ad.params[0].w[i] - m) * (ad.params[0].w[i] - m);
            v /= (double)n;
            snprintf(msg, sizeof msg, "mean %.3f, variance %.3f over %zu values", m, v, n);
            check(fabs(m) < 0.1 && fabs(v - 1) < 0.1, "prompt random init is N(0,1) (PEFT default)", msg);
            adapter_set_free(&s);
        }
        adapter_destroy(&ad);
    }

    // ---- what is refused ----
    {
        Adapter a1, a2;
        Adapter *p[2] = {&a1, &a2};
        AdapterSet s;
        PromptOptions o = {.num_virtual_tokens = 2};
        if (require(!prompt_create(&a1, &CFG, &o, &e) && !prompt_create(&a2, &CFG, &o, &e), "refusals setup: two prompts", e.msg))
            check(adapter_set_init(&s, p, 2, &w, &e) != 0 && strstr(e.msg, "two prompt"), "two prompt adapters are refused", e.msg);
        adapter_destroy(&a2);
        if (require(full_create(&a2, &CFG, &e) == 0, "refusals setup: full", e.msg))
            check(adapter_set_init(&s, p, 2, &w, &e) != 0 && strstr(e.msg, "full"), "full fine-tuning + another method is refused", e.msg);
        adapter_destroy(&a1);
        adapter_destroy(&a2);
        LlamaAdapterOptions lo = {.adapter_len = 4, .adapter_layers = 4};
        check(llama_adapter_create(&a1, &CFG, &lo, &e) != 0 && strstr(e.msg, "adapter_layers 4"), "llama-adapter: more layers than the model is refused", e.msg);
        int bad[2] = {2, 1};
        PrefixOptions xo = {.num_virtual_tokens = 2, .layers = bad, .n_layers = 2};
        check(prefix_create(&a1, &CFG, &xo, &e) != 0 && strstr(e.msg, "ascending"), "prefix: unordered layer list is refused", e.msg);
        LoraOptions ro = {.r = 0, .alpha = 1, .targets = {1}};
        check(lora_create(&a1, &CFG, &ro, &e) != 0 && strstr(e.msg, "r must be positive"), "lora: r = 0 is refused", e.msg);

        // adapter activations bound for another shape
        PrefixOptions po = {.num_virtual_tokens = 2};
        LlamaActs a;
        Adapter *q = &a1;
        if (require(!prefix_create(&a1, &CFG, &po, &e) && !adapter_set_init(&s, &q, 1, &w, &e), "refusals setup: a prefix", e.msg)) {
            if (require(!adapter_set_bind_acts(&s, 1, T, &e) && !llama_acts_alloc(&a, &CFG, adapter_hooks(&s), B, T, &e),
                        "refusals setup: bind for B=1, allocate for B=2", e.msg)) {
                int rc = llama_forward(&w, adapter_hooks(&s), &a, IDS, MASK, NULL, B, T, &e);
                check(rc != 0 && strstr(e.msg, "B=2, T=6") && strstr(e.msg, "B=1, T=6"),
                      "forward with adapter activations of another shape names both", e.msg);
                llama_acts_free(&a);
            }
            adapter_set_free(&s);
        }
        adapter_destroy(&a1);
    }

    free(base_logits);
    free(logits);
    // ---- the library training step ----
    {
        e.msg[0] = 0;
        Adapter ad[2];
        Adapter *p = &ad[0], *q = &ad[1];
        AdapterSet s1, s2;
        LoraOptions lo = {.r = 2, .alpha = 4, .targets = {1, 0, 1, 0, 0, 0, 0}};
        AdamWConfig ac = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
        TrainWorkspace ws = {0};
        TrainStepResult r;
        if (require(!lora_create(&ad[0], &CFG, &lo, &e) && !lora_create(&ad[1], &CFG, &lo, &e) &&
                        !adapter_set_init(&s1, &p, 1, &w, &e) && !adapter_set_init(&s2, &q, 1, &w, &e),
                    "train step: setup", e.msg)) {
            fill(s1.w, s1.count, 11, 0.3);
            memcpy(s2.w, s1.w, s1.count * sizeof(real));
            // by hand: zero_grad, forward, loss, backward (mean), AdamW
            int ok = run(&w, &s1, NULL, NULL, &e) == 0;
            adamw_step(s1.w, s1.g, s1.m, s1.v, s1.count, &ac, 1);
            TrainBatch bt = {IDS, MASK, LABELS, B, T};
            ok = ok && train_step(&w, &s2, &ws, &KERNELS_REF, &bt, 1, &ac, 0, 1, &r, &e) == 0 && r.finite;
            check(ok && maxdiff(s1.w, s2.w, s1.count) == 0, "train_step = zero_grad/forward/loss/backward/AdamW, bitwise",
                  e.msg);
            // accumulation: rows as two micro-batches of one row = the batch of two rows
            memcpy(s1.w, s2.w, s1.count * sizeof(real));
            memcpy(s1.m, s2.m, s1.count * sizeof(real));
            memcpy(s1.v, s2.v, s1.count * sizeof(real));
            TrainBatch rows[2] = {{IDS, MASK, LABELS, 1, T}, {IDS + T, MASK + T, LABELS + T, 1, T}};
            TrainStepResult r1, r2;
            ok = train_step(&w, &s1, &ws, &KERNELS_REF, rows, 2, &ac, 0.5, 2, &r1, &e) == 0 &&
                 train_step(&w, &s2, &ws, &KERNELS_REF, &bt, 1, &ac, 0.5, 2, &r2, &e) == 0;
            snprintf(msg, sizeof msg, "params %.2e, loss %.2e (targets %ld/%ld)", maxdiff(s1.w, s2.w, s1.count),
                     fabs(r1.loss - r2.loss), r1.targets, r2.targets);
            check(ok && r1.targets == r2.targets && maxdiff(s1.w, s2.w, s1.count) <= CLOSE &&
                      fabs(r1.loss - r2.loss) <= CLOSE,
                  "two micro-batches of 1 row = one batch of 2 rows (clipped step)", msg);
            // 65 micro-batches: the 65th counts (the CLI once capped accumulation at 64 silently)
            TrainBatch many[65];
            for (int i = 0; i < 65; i++) many[i] = rows[0];
            memcpy(s2.w, s1.w, s1.count * sizeof(real));
            memcpy(s2.m, s1.m, s1.count * sizeof(real));
            memcpy(s2.v, s1.v, s1.count * sizeof(real));
            ok = train_step(&w, &s1, &ws, &KERNELS_REF, many, 64, &ac, 0, 3, &r1, &e) == 0 &&
                 train_step(&w, &s2, &ws, &KERNELS_REF, many, 65, &ac, 0, 3, &r2, &e) == 0;
            snprintf(msg, sizeof msg, "targets %ld vs %ld", r1.targets, r2.targets);
            check(ok && r2.targets == r1.targets / 64 * 65, "65 micro-batches count 65 times the targets of one", msg);
            // a non-finite step: nothing changes
            real keep = s1.w[0];
            s1.w[0] = (real)NAN;
            memcpy(s2.w, s1.w, s1.count * sizeof(real));
            ok = train_step(&w, &s1, &ws, &KERNELS_REF, &bt, 1, &ac, 0, 4, &r, &e) == 0;
            int same = 1;
            for (size_t i = 1; i < s1.count; i++) same &= s1.w[i] == s2.w[i];
            check(ok && !r.finite && same, "a non-finite step is reported and updates nothing", e.msg);
            s1.w[0] = keep;
            adapter_set_free(&s1);
            adapter_set_free(&s2);
        }
        adapter_destroy(&ad[0]);
        adapter_destroy(&ad[1]);
        train_workspace_free(&ws);
    }

    // ---- Gemma 3: a prompt's vocabulary init copies word_embeddings(id) = E[id] * sqrt(C) ----
    {
        LlamaConfig gc = CFG;
        gc.arch = AFX_ARCH_GEMMA3;
        gc.tied = 1;
        gc.NKV = 1;
        gc.query_pre_attn_scalar = 6;
        gc.rope_local_theta = 1e4;
        gc.sliding_window = 4;
        LlamaParams gw;
        Adapter ad;
        Adapter *p = &ad;
        AdapterSet s;
        PromptOptions po = {.num_virtual_tokens = 3, .init = PROMPT_INIT_TEXT, .init_ids = (int[]){4, 7}, .n_init_ids = 2};
        if (require(!llama_params_alloc(&gw, &gc, &e) && !prompt_create(&ad, &gc, &po, &e) &&
                        !adapter_set_init(&s, &p, 1, &gw, &e) && !adapter_set_init_params(&s, 1, &e),
                    "gemma3 prompt init: setup", e.msg)) {
            fill(gw.mem, gw.count, 5, 0.5);
            int ok = adapter_set_init_params(&s, 1, &e) == 0; // again: the text init copies the filled rows
            real es = llama_embed_scale(&gc);
            ok = ok && es != 1;
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < gc.C; c++) ok &= s.w[(size_t)r * gc.C + c] == gw.t[LT_EMBED][(size_t)(r % 2 ? 7 : 4) * gc.C + c] * es;
            check(ok, "gemma3: text init of a prompt = the scaled embedding rows E[id] * sqrt(C)", "");
            adapter_set_free(&s);
            adapter_destroy(&ad);
            llama_params_free(&gw);
        }
    }

    test_lora_llama_adapter_rule(&w);
    llama_params_free(&w);
    return check_summary();
}
