/* prefix.c — prefix tuning (Li & Liang 2021; PEFT PrefixTuning), on any subset of layers.
 *
 * In each prefix layer l, P learned keys and values are put before the real ones:
 *     K_l = [Kpre_l ; RoPE(x Wk^T)]    V_l = [Vpre_l ; x Wv^T]          (S = P + T keys)
 * Kpre/Vpre live in KV space (NKV*HS wide, GQA-aware), are shared by the batch and are NOT rotated.
 * Every query sees all P prefix keys; real keys stay causal + padding-masked (llama.c builds the
 * mask). Real tokens sit at positions P..P+T-1 (HF/PEFT: the cache length), or 0..T-1 by option.
 * The table (P, n*2*KV) holds, for token p and the i-th prefix layer, key (s=0) and value (s=1) at
 *     flat index ((i*2 + s)*NKV + g)*HS + e                              (PEFT's layout)
 * It is either trained directly, or produced by the reparameterization
 *     table = W2 tanh(W1 emb + b1) + b2,   emb (P,KV), W1 (E,KV), W2 (n*2*KV, E)
 * Layers not in the subset are untouched — the paper's "top 30 of 32", which PEFT cannot express.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "ops.h"

typedef struct {
    PrefixOptions o;
    int P, n, KV, E;       /* tokens, prefix layers, NKV*HS, MLP width */
    int *slot;             /* (L) index i of layer l among the prefix layers, or -1 */
    /* activations (views into the adapter arena) */
    real *table;           /* (P, n*2*KV) */
    real *kv;              /* (n, 2, P, KV) per-layer keys and values, contiguous */
    real *hidden;          /* (P, E) tanh(W1 emb + b1), projection only */
    real *dtable;          /* (P, n*2*KV) gradient of the table */
    real *dhidden;         /* (P, E) */
} Prefix;

enum { EMB, W1, B1, W2, B2 }; /* parameter table order */

static int prefix_len(const Adapter *ad, int layer) {
    const Prefix *px = ad->priv;
    return layer >= 0 && layer < ad->cfg.L && px->slot[layer] >= 0 ? px->P : 0;
}

static int prefix_exempt(const Adapter *ad) { return ((const Prefix *)ad->priv)->o.always_visible; }

static int prefix_position_offset(const Adapter *ad) {
    const Prefix *px = ad->priv;
    return px->o.offset_zero ? 0 : px->P;
}

static int prefix_acts_views(Adapter *ad, int B, int T, int Tx, ArenaView *v) {
    Prefix *px = ad->priv;
    (void)B, (void)T, (void)Tx;
    size_t wide = (size_t)px->P * px->n * 2 * px->KV;
    v[0] = (ArenaView){(void **)&px->table, wide, sizeof(real)};
    v[1] = (ArenaView){(void **)&px->kv, wide, sizeof(real)};
    v[2] = (ArenaView){(void **)&px->dtable, wide, sizeof(real)};
    v[3] = (ArenaView){(void **)&px->hidden, (size_t)px->P * px->E, sizeof(real)};
    v[4] = (ArenaView){(void **)&px->dhidden, (size_t)px->P * px->E, sizeof(real)};
    return 5;
}

static void prefix_acts_bound(Adapter *ad, int B, int T, int Tx) {
    Prefix *px = ad->priv;
    (void)B, (void)T, (void)Tx;
    // named views for the golden tests: the table, and each prefix layer's keys and values
    ad->acts[0].w = px->table;
    for (int i = 0; i < px->n; i++) {
        ad->acts[1 + 2 * i].w = px->kv + (size_t)(2 * i) * px->P * px->KV;
        ad->acts[2 + 2 * i].w = px->kv + (size_t)(2 * i + 1) * px->P * px->KV;
    }
}

static void prefix_begin_forward(Adapter *ad, const LlamaParams *w) {
    Prefix *px = ad->priv;
    int P = px->P, wide = px->n * 2 * px->KV;
    (void)w;
    if (!px->o.projection) {
        memcpy(px->table, ad->params[EMB].w, (size_t)P * wide * sizeof(real));
    } else {
        // hidden = tanh(emb W1^T + b1) (P,E);  table = hidden W2^T + b2 (P, n*2*KV)
        matmul_forward(px->hidden, ad->params[EMB].w, ad->params[W1].w, P, px->KV, px->E);
        for (int p = 0; p < P; p++)
            for (int j = 0; j < px->E; j++) {
                real *h = &px->hidden[(size_t)p * px->E + j];
                *h = (real)tanh((double)(*h + ad->params[B1].w[j]));
            }
        matmul_forward(px->table, px->hidden, ad->params[W2].w, P, px->E, wide);
        for (int p = 0; p < P; p++)
            for (int j = 0; j < wide; j++) px->table[(size_t)p * wide + j] += ad->params[B2].w[j];
    }
    // split the table into per-layer keys and values (P, KV) each
    for (int i = 0; i < px->n; i++)
        for (int s = 0; s < 2; s++)
            for (int p = 0; p < P; p++)
                memcpy(px->kv + ((size_t)(2 * i + s) * P + p) * px->KV,
                       px->table + (size_t)p * wide + (size_t)(2 * i + s) * px->KV, (size_t)px->KV * sizeof(real));
    memset(px->dtable, 0, (size_t)P * wide * sizeof(real)); // the coming backward accumulates here
}

static void prefix_kv_forward(Adapter *ad, int layer, real *kcat, real *vcat, int B, int S) {
    // kcat, vcat (B,S,KV): rows 0..P-1 of every batch row = Kpre_l, Vpre_l
    Prefix *px = ad->priv;
    int i = px->slot[layer];
    size_t blk = (size_t)px->P * px->KV;
    for (int b = 0; b < B; b++) {
        memcpy(kcat + (size_t)b * S * px->KV, px->kv + (size_t)(2 * i) * blk, blk * sizeof(real));
        memcpy(vcat + (size_t)b * S * px->KV, px->kv + (size_t)(2 * i + 1) * blk, blk * sizeof(real));
    }
}

static void prefix_kv_backward(Adapter *ad, int layer, const real *dkcat, const real *dvcat, int B, int S) {
    // the prefix is broadcast over the batch: its gradient is the sum over b of rows 0..P-1
    Prefix *px = ad->priv;
    int i = px->slot[layer], wide = px->n * 2 * px->KV;
    for (int b = 0; b < B; b++)
        for (int p = 0; p < px->P; p++)
            for (int j = 0; j < px->KV; j++) {
                size_t src = ((size_t)b * S + p) * px->KV + j;
                px->dtable[(size_t)p * wide + (size_t)(2 * i) * px->KV + j] += dkcat[src];
                px->dtable[(size_t)p * wide + (size_t)(2 * i + 1) * px->KV + j] += dvcat[src];
            }
}

static void prefix_end_backward(Adapter *ad, const LlamaParams *w) {
    Prefix *px = ad->priv;
    int P = px->P, wide = px->n * 2 * px->KV;
    (void)w;
    if (!px->o.projection) {
        for (size_t j = 0; j < (size_t)P * wide; j++) ad->params[EMB].g[j] += px->dtable[j];
        return;
    }
    // table = hidden W2^T + b2
    memset(px->dhidden, 0, (size_t)P * px->E * sizeof(real));
    matmul_backward(px->dhidden, ad->params[W2].g, px->dtable, px->hidden, ad->params[W2].w, P, px->E, wide);
    for (int p = 0; p < P; p++)
        for (int j = 0; j < wide; j++) ad->params[B2].g[j] += px->dtable[(size_t)p * wide + j];
    // hidden = tanh(pre): dpre = dhidden (1 - hidden^2), kept in dhidden
    for (size_t j = 0; j < (size_t)P * px->E; j++) px->dhidden[j] *= 1 - px->hidden[j] * px->hidden[j];
    for (int p = 0; p < P; p++)
        for (int j = 0; j < px->E; j++) ad->params[B1].g[j] += px->dhidden[(size_t)p * px->E + j];
    // pre = emb W1^T + b1
    matmul_backward(ad->params[EMB].g, ad->params[W1].g, px->dhidden, ad->params[EMB].w, ad->params[W1].w, P,
                    px->KV, px->E);
}

static int prefix_init(Adapter *ad, const LlamaParams *base, AfxRng *rng, afx_err *e) {
    (void)base, (void)e;
    // embedding: nn.Embedding default N(0,1); Linear layers: PyTorch default U(+-1/sqrt(fan_in))
    for (int k = 0; k < ad->n_params; k++) {
        AdapterTensor *t = &ad->params[k];
        double bound = k == EMB ? 0 : 1.0 / sqrt((double)(k <= B1 ? ((Prefix *)ad->priv)->KV : ((Prefix *)ad->priv)->E));
        for (size_t j = 0; j < t->numel; j++)
            t->w[j] = (real)(k == EMB ? afx_rng_normal(rng) : bound * (2 * afx_rng_uniform(rng) - 1));
    }
    return 0;
}

static void prefix_destroy(Adapter *ad) { free(((Prefix *)ad->priv)->slot); }

static const AdapterOps PREFIX_OPS = {
    .method = "prefix",
    .init = prefix_init,
    .acts_views = prefix_acts_views,
    .acts_bound = prefix_acts_bound,
    .prefix_len = prefix_len,
    .prefix_exempt = prefix_exempt,
    .position_offset = prefix_position_offset,
    .begin_forward = prefix_begin_forward,
    .kv_forward = prefix_kv_forward,
    .kv_backward = prefix_kv_backward,
    .end_backward = prefix_end_backward,
    .destroy = prefix_destroy,
};

static void set_tensor(AdapterTensor *t, const char *name, int ndim, size_t d0, size_t d1) {
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->numel = ndim == 1 ? d0 : d0 * d1;
}

int prefix_create(Adapter *ad, const LlamaConfig *c, const PrefixOptions *o, afx_err *e) {
    memset(ad, 0, sizeof *ad);
    if (o->num_virtual_tokens <= 0) return afx_fail(e, "prefix: num_virtual_tokens must be positive");
    Prefix *px = calloc(1, sizeof *px);
    int *slot = malloc((size_t)c->L * sizeof(int));
    int n = o->layers ? 0 : c->L;
    if (!px || !slot) {
        afx_fail(e, "prefix: out of memory");
        goto fail;
    }
    for (int l = 0; l < c->L; l++) slot[l] = o->layers ? -1 : l;
    for (int i = 0; o->layers && i < o->n_layers; i++) {
        int l = o->layers[i];
        if (l < 0 || l >= c->L || (i > 0 && l <= o->layers[i - 1])) {
            afx_fail(e, "prefix: layers must be ascending indices in [0,%d) (got %d)", c->L, l);
            goto fail;
        }
        slot[l] = n++;
    }
    if (n == 0) {
        afx_fail(e, "prefix: no layer selected");
        goto fail;
    }
    px->o = *o;
    px->o.layers = NULL;
    px->P = o->num_virtual_tokens;
    px->n = n;
    px->KV = c->NKV * c->HS;
    px->E = o->projection ? (o->encoder_hidden_size > 0 ? o->encoder_hidden_size : px->KV) : 0;
    px->slot = slot;
    int np = o->projection ? 5 : 1;
    ad->params = calloc((size_t)np, sizeof *ad->params);
    ad->acts = calloc((size_t)(1 + 2 * n), sizeof *ad->acts);
    if (!ad->params || !ad->acts) {
        afx_fail(e, "prefix: out of memory");
        goto fail;
    }
    ad->ops = &PREFIX_OPS;
    ad->cfg = *c;
    ad->priv = px;
    ad->n_params = np;
    size_t P = (size_t)px->P, KV = (size_t)px->KV, wide = (size_t)n * 2 * KV, E = (size_t)px->E;
    if (!o->projection) {
        set_tensor(&ad->params[EMB], "prefix.embedding.weight", 2, P, wide);
    } else {
        set_tensor(&ad->params[EMB], "prefix.embedding.weight", 2, P, KV);
        set_tensor(&ad->params[W1], "prefix.transform.0.weight", 2, E, KV);
        set_tensor(&ad->params[B1], "prefix.transform.0.bias", 1, E, 0);
        set_tensor(&ad->params[W2], "prefix.transform.2.weight", 2, wide, E);
        set_tensor(&ad->params[B2], "prefix.transform.2.bias", 1, wide, 0);
    }
    ad->n_acts = 1 + 2 * n;
    set_tensor(&ad->acts[0], "prefix_table", 2, P, wide);
    for (int l = 0; l < c->L; l++) {
        if (slot[l] < 0) continue;
        char name[64];
        snprintf(name, sizeof name, "layers.%d.prefix_k", l);
        set_tensor(&ad->acts[1 + 2 * slot[l]], name, 2, P, KV);
        snprintf(name, sizeof name, "layers.%d.prefix_v", l);
        set_tensor(&ad->acts[2 + 2 * slot[l]], name, 2, P, KV);
    }
    return 0;
fail: // one cleanup for every early failure
    free(ad->params);
    free(ad->acts);
    memset(ad, 0, sizeof *ad);
    free(px);
    free(slot);
    return -1;
}
