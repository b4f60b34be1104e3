/* test_core.c — the contracts of the core that golden values cannot show: shape mismatches and
 * out-of-range inputs are refused with messages naming both sides; arenas bound to caller memory
 * stay inside it; a frozen base (no gradient buffers) works; runs are bitwise reproducible, also
 * across OpenMP thread counts; the tied embedding is one tensor.
 * Ends with "N passed, M failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "check.h"
#include "llama.h"
#include "optim.h"

static const LlamaConfig CFG = {.V = 17, .C = 16, .FF = 24, .L = 2, .NH = 4, .NKV = 2, .HS = 6,
                                .eps = 1e-5, .rope_theta = 10000, .tied = 1, .max_pos = 32};

static void fill(LlamaParams *w) {
    unsigned long long s = 7;
    for (size_t i = 0; i < w->count; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        w->mem[i] = (real)(((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.8);
    }
}

/* forward+backward; grads into g (zeroed first) */
static int run(const LlamaParams *w, LlamaParams *g, LlamaActs *a, LlamaActGrads *da, const int *ids,
               const int *mask, const int *labels, int B, int T, afx_err *e) {
    double sum;
    long cnt;
    if (g) memset(g->mem, 0, g->count * sizeof(real));
    if (llama_forward(w, NULL, a, ids, mask, NULL, B, T, e) || llama_loss(a, labels, B, T, &sum, &cnt, e)) return -1;
    return llama_backward(w, g, NULL, a, da, labels, 1.0 / (double)cnt, B, T, e);
}

int main(void) {
    afx_err e = {{0}};
    LlamaParams w, g;
    LlamaActs a;
    LlamaActGrads da;
    enum { B = 2, T = 5 };
    int ids[B * T] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0};
    int mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    int labels[B * T] = {1, 2, 3, 4, 5, -100, 7, 8, -100, -100};
    if (!require(!llama_params_alloc(&w, &CFG, &e) && !llama_params_alloc(&g, &CFG, &e) &&
                     !llama_acts_alloc(&a, &CFG, NULL, B, T, &e) && !llama_actgrads_alloc(&da, &CFG, NULL, B, T, &e),
                 "setup: allocate the model, its gradients and activations", e.msg))
        return check_summary();
    fill(&w);

    // config validation
    LlamaConfig bad = CFG;
    bad.NKV = 3;
    check(llama_config_check(&bad, &e) != 0 && strstr(e.msg, "num_key_value_heads"), "config: NH % NKV != 0 refused", e.msg);
    bad = CFG;
    bad.HS = 5;
    check(llama_config_check(&bad, &e) != 0 && strstr(e.msg, "head_dim"), "config: odd head_dim refused", e.msg);

    // tied embedding: one tensor, and the arena has no lm_head
    check(w.t[LT_LM_HEAD] == w.t[LT_EMBED], "tied lm_head is the embedding tensor", "");
    LlamaConfig untied = CFG;
    untied.tied = 0;
    check(llama_params_count(&untied) == llama_params_count(&CFG) + (size_t)CFG.V * CFG.C,
          "untied model has exactly V*C more parameters", "");

    // shape mismatch: message names both shapes
    int ids6[B * 6] = {0};
    int rc = llama_forward(&w, NULL, &a, ids6, NULL, NULL, B, 6, &e);
    check(rc != 0 && strstr(e.msg, "B=2, T=6") && strstr(e.msg, "B=2, T=5"), "forward shape mismatch names both shapes", e.msg);
    rc = llama_loss(&a, labels, 1, T, &(double){0}, &(long){0}, &e);
    check(rc != 0 && strstr(e.msg, "B=1, T=5") && strstr(e.msg, "B=2, T=5"), "loss shape mismatch names both shapes", e.msg);

    // out-of-range inputs
    int badids[B * T];
    memcpy(badids, ids, sizeof ids);
    badids[3] = CFG.V;
    check(llama_forward(&w, NULL, &a, badids, mask, NULL, B, T, &e) != 0 && strstr(e.msg, "vocabulary"), "token id >= V refused", e.msg);
    badids[3] = -1;
    check(llama_forward(&w, NULL, &a, badids, mask, NULL, B, T, &e) != 0, "negative token id refused", e.msg);
    int pos[B * T] = {0, 1, 2, 3, 40, 0, 1, 2, 3, 4};
    check(llama_forward(&w, NULL, &a, ids, mask, pos, B, T, &e) != 0 && strstr(e.msg, "position 40"), "position >= max_position_embeddings refused", e.msg);
    int badlab[B * T];
    memcpy(badlab, labels, sizeof labels);
    badlab[2] = 99;
    check(llama_loss(&a, badlab, B, T, &(double){0}, &(long){0}, &e) != 0 && strstr(e.msg, "label 99"), "label outside vocabulary refused", e.msg);

    // reproducibility: the same run twice is bitwise identical
    require(run(&w, &g, &a, &da, ids, mask, labels, B, T, &e) == 0, "forward/backward", e.msg);
    real *g1 = malloc(g.count * sizeof(real)), *l1 = malloc((size_t)B * T * CFG.V * sizeof(real));
    if (!require(g1 && l1, "setup: allocate the copies of gradients and logits", "out of memory")) return check_summary();
    memcpy(g1, g.mem, g.count * sizeof(real));
    memcpy(l1, a.logits, (size_t)B * T * CFG.V * sizeof(real));
    run(&w, &g, &a, &da, ids, mask, labels, B, T, &e);
    check(memcmp(g1, g.mem, g.count * sizeof(real)) == 0 && memcmp(l1, a.logits, (size_t)B * T * CFG.V * sizeof(real)) == 0,
          "two runs give bitwise identical logits and gradients", "");
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(nt > 1 ? 1 : 2);
    run(&w, &g, &a, &da, ids, mask, labels, B, T, &e);
    omp_set_num_threads(nt);
    check(memcmp(g1, g.mem, g.count * sizeof(real)) == 0, "1 and N OpenMP threads give bitwise identical gradients", "");
#endif

    // frozen base: no gradient buffers at all
    check(run(&w, NULL, &a, &da, ids, mask, labels, B, T, &e) == 0, "backward with a frozen base (g = NULL)", e.msg);

    // arenas bound to caller memory stay inside it (guard bytes after the arena)
    size_t bytes = llama_acts_bytes(&CFG, NULL, B, T);
    unsigned char *mem = malloc(bytes + 64 + 256);
    if (!require(mem != NULL, "setup: allocate caller memory for the activations", "out of memory")) return check_summary();
    unsigned char *base = mem + (64 - ((size_t)mem % 64)) % 64;
    memset(base + bytes, 0xA5, 64);
    LlamaActs a2;
    llama_acts_bind(&a2, &CFG, NULL, B, T, base);
    llama_forward(&w, NULL, &a2, ids, mask, NULL, B, T, &e);
    int guard = 1;
    for (int i = 0; i < 64; i++) guard &= base[bytes + i] == 0xA5;
    check(guard && memcmp(l1, a2.logits, (size_t)B * T * CFG.V * sizeof(real)) == 0,
          "activations bound to caller memory: same logits, guard bytes intact", "");
    free(mem);

    // padding: a pad token's content cannot change a real token's logits
    int ids2[B * T];
    memcpy(ids2, ids, sizeof ids);
    ids2[8] = 11;
    ids2[9] = 3;
    llama_forward(&w, NULL, &a, ids2, mask, NULL, B, T, &e);
    check(memcmp(l1 + (size_t)(1 * T) * CFG.V, a.logits + (size_t)(1 * T) * CFG.V, 3 * CFG.V * sizeof(real)) == 0,
          "right padding: changing pad ids leaves real rows' logits bitwise unchanged", "");

    // clipping below the threshold is the identity; above it scales to max_norm
    real gv[3] = {3, 4, 0};
    grad_clip(gv, 3, 10.0, grad_norm(gv, 3));
    check(gv[0] == 3 && gv[1] == 4, "clip with norm < max_norm leaves gradients unchanged", "");
    grad_clip(gv, 3, 1.0, grad_norm(gv, 3));
    check(fabs(grad_norm(gv, 3) - 1.0) < 1e-5, "clip with norm > max_norm scales to max_norm", "");

    // learning-rate schedules (transformers' *_schedule_with_warmup)
    check(lr_factor(SCHED_COSINE, 0, 10, 110) == 0 && lr_factor(SCHED_COSINE, 5, 10, 110) == 0.5,
          "warmup: step 0 has factor 0, half-way 0.5", "");
    check(lr_factor(SCHED_COSINE, 10, 10, 110) == 1 && fabs(lr_factor(SCHED_COSINE, 60, 10, 110) - 0.5) < 1e-12 &&
              fabs(lr_factor(SCHED_COSINE, 110, 10, 110)) < 1e-12,
          "cosine: 1 after warmup, 0.5 half-way, 0 at the end", "");
    check(fabs(lr_factor(SCHED_LINEAR, 35, 10, 110) - 0.75) < 1e-12 && lr_factor(SCHED_LINEAR, 200, 10, 110) == 0,
          "linear: 0.75 a quarter of the way, never below 0", "");
    check(lr_factor(SCHED_CONSTANT, 3, 0, 10) == 1 && lr_factor(SCHED_CONSTANT, 3, 4, 10) == 0.75,
          "constant with and without warmup", "");

    free(g1);
    free(l1);
    llama_params_free(&w);
    llama_params_free(&g);
    llama_acts_free(&a);
    llama_actgrads_free(&da);
    return check_summary();
}
