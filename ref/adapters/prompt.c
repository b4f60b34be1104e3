/* prompt.c — soft prompt tuning (Lester et al. 2021; PEFT PromptTuning).
 *
 * Trains P virtual token embeddings E (P,C) placed before the input:
 *     inputs_embeds = [E ; embed(ids)]       (B, P+T, C)
 * The model then runs on P+T tokens: the virtual tokens are always visible (mask 1), sit at
 * positions 0..P-1 (real tokens at P..P+T-1) and carry label -100 — so when labels[0] != -100 the
 * last virtual token predicts it, a loss term the base model never has (PEFT does the same).
 * Backward: dE = sum over the batch of the gradient of the first P rows.
 * The model does the extension (llama.c: Tx = P + T); this file only fills and reads the rows.
 */
#include <stdlib.h>
#include <string.h>

#include "adapter.h"

typedef struct {
    PromptOptions o;
    int *init_ids; /* own copy of o.init_ids */
} Prompt;

static AdapterTensor *E_of(Adapter *ad) { return &ad->params[0]; } /* prompt_embeddings (P,C) */

static int prompt_virtual_tokens(const Adapter *ad) {
    return ((const Prompt *)ad->priv)->o.num_virtual_tokens;
}

static void prompt_embed_forward(Adapter *ad, real *x, int B, int Tx) {
    // x (B,Tx,C): x[b, p] = E[p] for p < P
    int P = prompt_virtual_tokens(ad), C = ad->cfg.C;
    const real *E = E_of(ad)->w;
    for (int b = 0; b < B; b++)
        memcpy(x + (size_t)b * Tx * C, E, (size_t)P * C * sizeof(real));
}

static void prompt_embed_backward(Adapter *ad, const real *dx, int B, int Tx) {
    // dE[p] += sum_b dx[b, p]
    int P = prompt_virtual_tokens(ad), C = ad->cfg.C;
    real *dE = E_of(ad)->g;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < (size_t)P * C; i++) dE[i] += dx[(size_t)b * Tx * C + i];
}

static int prompt_init_params(Adapter *ad, const LlamaParams *base, AfxRng *rng, afx_err *e) {
    Prompt *pt = ad->priv;
    int P = pt->o.num_virtual_tokens, C = ad->cfg.C, V = ad->cfg.V;
    real *E = E_of(ad)->w;
    for (int p = 0; p < P; p++) {
        real *row = E + (size_t)p * C;
        if (pt->o.init == PROMPT_INIT_RANDOM) { // nn.Embedding default: N(0,1)
            for (int c = 0; c < C; c++) row[c] = (real)afx_rng_normal(rng);
            continue;
        }
        int id;
        if (pt->o.init == PROMPT_INIT_VOCAB) { // a uniformly drawn row of the vocabulary
            id = (int)(afx_rng_uniform(rng) * V);
        } else { // TEXT: the init text's ids, repeated to length P
            if (pt->o.n_init_ids <= 0) return afx_fail(e, "prompt: text init needs at least one token id");
            id = pt->init_ids[p % pt->o.n_init_ids];
        }
        if (id < 0 || id >= V) return afx_fail(e, "prompt: init token id %d outside the vocabulary", id);
        // PEFT copies word_embeddings(id): for Gemma 3 the scaled row E[id] * sqrt(C); the virtual
        // rows themselves are never scaled again in the forward
        real es = llama_embed_scale(&ad->cfg);
        llama_embed_rows(base, &id, 1, row);
        for (int c = 0; c < C; c++) row[c] *= es;
    }
    return 0;
}

static void prompt_destroy(Adapter *ad) { free(((Prompt *)ad->priv)->init_ids); }

static const AdapterOps PROMPT_OPS = {
    .method = "prompt",
    .init = prompt_init_params,
    .virtual_tokens = prompt_virtual_tokens,
    .embed_forward = prompt_embed_forward,
    .embed_backward = prompt_embed_backward,
    .destroy = prompt_destroy,
};

int prompt_create(Adapter *ad, const LlamaConfig *c, const PromptOptions *o, afx_err *e) {
    memset(ad, 0, sizeof *ad);
    if (o->num_virtual_tokens <= 0) return afx_fail(e, "prompt: num_virtual_tokens must be positive");
    if (o->num_virtual_tokens >= c->max_pos)
        return afx_fail(e, "prompt: num_virtual_tokens %d leaves no positions", o->num_virtual_tokens);
    Prompt *pt = calloc(1, sizeof *pt);
    ad->params = calloc(1, sizeof *ad->params);
    if (!pt || !ad->params) {
        free(pt);
        free(ad->params);
        return afx_fail(e, "prompt: out of memory");
    }
    pt->o = *o;
    if (o->init == PROMPT_INIT_TEXT && o->n_init_ids > 0) {
        pt->init_ids = malloc((size_t)o->n_init_ids * sizeof(int));
        if (!pt->init_ids) {
            free(pt);
            free(ad->params);
            return afx_fail(e, "prompt: out of memory");
        }
        memcpy(pt->init_ids, o->init_ids, (size_t)o->n_init_ids * sizeof(int));
    }
    pt->o.init_ids = NULL;
    ad->ops = &PROMPT_OPS;
    ad->cfg = *c;
    ad->priv = pt;
    ad->n_params = 1;
    AdapterTensor *E = &ad->params[0];
    strcpy(E->name, "prompt_embeddings");
    E->ndim = 2;
    E->shape[0] = (size_t)o->num_virtual_tokens;
    E->shape[1] = (size_t)c->C;
    E->numel = E->shape[0] * E->shape[1];
    return 0;
}
