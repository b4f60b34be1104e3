/* llama_adapter.c — Llama-Adapter: zero-init gated adaption prompts (Zhang et al. 2023; PEFT
 * AdaptionPrompt), in the top La layers.
 *
 * Layer l has an adaption prompt A_l (P,C) and a gate. Its P tokens go through the layer's FROZEN
 * key/value projections, without RoPE:
 *     Ka = A_l Wk^T,  Va = A_l Wv^T                              (P, NKV*HS)
 * Each query head h (KV head g = h/rep) attends to them with its own softmax, no mask:
 *     pa = softmax_p( RoPE(q)_h . Ka[p,g] / sqrt(HS) )          (B,NH,T,P)
 *     z_h = gate_h * sum_p pa_p Va[p,g]                          added to the attention output
 * before o_proj (PEFT adds o_proj(z); o_proj is linear, so this is the same).
 * gate_h = gate (PEFT: one raw scalar per layer) or tanh(gate[h]) (official code: one per head).
 * At init gate = 0: z = 0, the model is unchanged, and only the gate receives a gradient.
 *
 * Gemma 3 (PEFT has no AdaptionPrompt for it; this is affix's rule): the adapter keys are
 * normalized as the model's own keys, with the layer's k_norm and no RoPE,
 *     Ka = rms_head(A_l Wk^T) (1 + w_knorm),  Va = A_l Wv^T      (v is never normalized in Gemma)
 * the queries are the model's (q_norm'ed and rotated), and the scores are scaled like the model's,
 * by 1/sqrt(query_pre_attn_scalar). Everything else as above.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "ops.h"

typedef struct {
    LlamaAdapterOptions o;
    int P, La, first, KV, QD, rep;
    int B, Tx;
    /* activations, per adapted layer i (views into the adapter arena) */
    real *Ka, *Va;         /* (La, P, KV) */
    real *att;             /* (La, B, NH, Tx, P) adapter attention probabilities */
    real *u;               /* (La, B, Tx, NH*HS) sum_p pa Va, before the gate */
    real *z;               /* (La, B, Tx, NH*HS) gate * u */
    real *dKa, *dVa;       /* (P, KV) scratch of the backward */
    /* Gemma 3 only: k_norm of the adapter keys */
    real *Kraw, *krstd;    /* (La, P, KV) A Wk^T before the norm; (La, P*NKV) */
    real *kg, *dKraw;      /* (HS) the multiplier 1 + w_knorm; (P, KV) scratch */
} LAdapter;

static int is_gemma(const Adapter *ad) { return ad->cfg.arch == AFX_ARCH_GEMMA3; }
static double la_scale(const Adapter *ad) {
    return 1.0 / sqrt(is_gemma(ad) ? ad->cfg.query_pre_attn_scalar : (double)ad->cfg.HS);
}
/* the layer's k_norm multiplier 1 + w into la->kg (Gemma) */
static const real *knorm_mult(LAdapter *la, const LlamaParams *w, int layer, int HS) {
    const real *kw = llama_tensor_ptr(w, LT_KNORM, layer);
    for (int e = 0; e < HS; e++) la->kg[e] = (real)1 + kw[e];
    return la->kg;
}

/* parameters: [2i] = layers.{l}.adaption_prompt (P,C), [2i+1] = layers.{l}.adaption_gate */
static int slot_of(const LAdapter *la, int layer) { return layer >= la->first ? layer - la->first : -1; }

static double gate_value(const LAdapter *la, const real *gate, int h) {
    return la->o.gate == GATE_PEFT ? (double)gate[0] : tanh((double)gate[h]);
}

static int la_acts_views(Adapter *ad, int B, int T, int Tx, ArenaView *v) {
    LAdapter *la = ad->priv;
    (void)T;
    size_t pk = (size_t)la->P * la->KV, at = (size_t)B * ad->cfg.NH * Tx * la->P, bq = (size_t)B * Tx * la->QD;
    size_t g = is_gemma(ad), La = (size_t)la->La;
    la->B = B;
    la->Tx = Tx;
    int n = 0;
    v[n++] = (ArenaView){(void **)&la->Ka, La * pk, sizeof(real)};
    v[n++] = (ArenaView){(void **)&la->Va, La * pk, sizeof(real)};
    v[n++] = (ArenaView){(void **)&la->att, La * at, sizeof(real)};
    v[n++] = (ArenaView){(void **)&la->u, La * bq, sizeof(real)};
    v[n++] = (ArenaView){(void **)&la->z, La * bq, sizeof(real)};
    v[n++] = (ArenaView){(void **)&la->dKa, pk, sizeof(real)};
    v[n++] = (ArenaView){(void **)&la->dVa, pk, sizeof(real)};
    v[n++] = (ArenaView){(void **)&la->Kraw, g * La * pk, sizeof(real)};                       /* Gemma */
    v[n++] = (ArenaView){(void **)&la->krstd, g * La * la->P * ad->cfg.NKV, sizeof(real)};      /* Gemma */
    v[n++] = (ArenaView){(void **)&la->kg, g * ad->cfg.HS, sizeof(real)};                       /* Gemma */
    v[n++] = (ArenaView){(void **)&la->dKraw, g * pk, sizeof(real)};                            /* Gemma */
    return n;
}

static void la_acts_bound(Adapter *ad, int B, int T, int Tx) {
    LAdapter *la = ad->priv;
    (void)T;
    size_t at = (size_t)B * ad->cfg.NH * Tx * la->P, bq = (size_t)B * Tx * la->QD;
    for (int i = 0; i < la->La; i++) { // named views: adapter_att (B,NH,Tx,P), adapter_z (B,Tx,NH*HS)
        AdapterTensor *ta = &ad->acts[2 * i], *tz = &ad->acts[2 * i + 1];
        ta->w = la->att + i * at;
        ta->ndim = 4;
        ta->shape[0] = (size_t)B, ta->shape[1] = (size_t)ad->cfg.NH, ta->shape[2] = (size_t)Tx, ta->shape[3] = (size_t)la->P;
        ta->numel = at;
        tz->w = la->z + i * bq;
        tz->ndim = 3;
        tz->shape[0] = (size_t)B, tz->shape[1] = (size_t)Tx, tz->shape[2] = (size_t)la->QD;
        tz->numel = bq;
    }
}

static void la_attn_forward(Adapter *ad, const LlamaParams *w, int layer, real *att_out, const real *q_rope,
                            int B, int Tx) {
    LAdapter *la = ad->priv;
    int i = slot_of(la, layer);
    if (i < 0) return;
    const LlamaConfig *c = &ad->cfg;
    int P = la->P, HS = c->HS, NH = c->NH, NKV = c->NKV;
    const real *A = ad->params[2 * i].w, *gate = ad->params[2 * i + 1].w;
    real *Ka = la->Ka + (size_t)i * P * la->KV, *Va = la->Va + (size_t)i * P * la->KV;
    real *att = la->att + (size_t)i * B * NH * Tx * P;
    real *u = la->u + (size_t)i * B * Tx * la->QD, *z = la->z + (size_t)i * B * Tx * la->QD;
    // Ka = A Wk^T, Va = A Wv^T (P, KV): the frozen projections of this layer, no RoPE
    if (is_gemma(ad)) { // Gemma: Ka = k_norm(A Wk^T), per head
        real *Kr = la->Kraw + (size_t)i * P * la->KV;
        llama_linear_forward(&KERNELS_REF, w, LT_WK, layer, Kr, A, P, c->C, la->KV);
        rmsnorm_forward(Ka, la->krstd + (size_t)i * P * NKV, Kr, knorm_mult(la, w, layer, HS), P * NKV, HS, c->eps);
    } else {
        llama_linear_forward(&KERNELS_REF, w, LT_WK, layer, Ka, A, P, c->C, la->KV);
    }
    llama_linear_forward(&KERNELS_REF, w, LT_WV, layer, Va, A, P, c->C, la->KV);
    double scale = la_scale(ad);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int g = h / la->rep;
            double gh = gate_value(la, gate, h);
            for (int t = 0; t < Tx; t++) {
                const real *q = q_rope + ((size_t)b * Tx + t) * la->QD + (size_t)h * HS;
                real *pa = att + (((size_t)b * NH + h) * Tx + t) * P;
                // pa = softmax over the P adapter tokens of q . Ka / sqrt(HS)
                real mx = -INFINITY;
                for (int p = 0; p < P; p++) {
                    const real *k = Ka + (size_t)p * la->KV + (size_t)g * HS;
                    real d = 0;
                    for (int e = 0; e < HS; e++) d += q[e] * k[e];
                    pa[p] = (real)(d * scale);
                    if (pa[p] > mx) mx = pa[p];
                }
                real sum = 0;
                for (int p = 0; p < P; p++) sum += pa[p] = (real)exp((double)(pa[p] - mx));
                for (int p = 0; p < P; p++) pa[p] /= sum;
                // u = sum_p pa Va ;  z = gate_h u ;  att_out += z
                real *uh = u + ((size_t)b * Tx + t) * la->QD + (size_t)h * HS;
                real *zh = z + ((size_t)b * Tx + t) * la->QD + (size_t)h * HS;
                real *oh = att_out + ((size_t)b * Tx + t) * la->QD + (size_t)h * HS;
                for (int e = 0; e < HS; e++) {
                    real acc = 0;
                    for (int p = 0; p < P; p++) acc += pa[p] * Va[(size_t)p * la->KV + (size_t)g * HS + e];
                    uh[e] = acc;
                    zh[e] = (real)(gh * acc);
                    oh[e] += zh[e];
                }
            }
        }
}

static void la_attn_backward(Adapter *ad, const LlamaParams *w, int layer, real *dq_rope, const real *datt_out,
                             const real *q_rope, int B, int Tx) {
    LAdapter *la = ad->priv;
    int i = slot_of(la, layer);
    if (i < 0) return;
    const LlamaConfig *c = &ad->cfg;
    int P = la->P, HS = c->HS, NH = c->NH;
    const real *gate = ad->params[2 * i + 1].w; // (A enters only through Ka, Va)
    real *dA = ad->params[2 * i].g, *dgate = ad->params[2 * i + 1].g;
    const real *Ka = la->Ka + (size_t)i * P * la->KV, *Va = la->Va + (size_t)i * P * la->KV;
    const real *att = la->att + (size_t)i * B * NH * Tx * P, *u = la->u + (size_t)i * B * Tx * la->QD;
    double scale = la_scale(ad);
    memset(la->dKa, 0, (size_t)P * la->KV * sizeof(real));
    memset(la->dVa, 0, (size_t)P * la->KV * sizeof(real));
    for (int h = 0; h < NH; h++) {
        int g = h / la->rep;
        double gh = gate_value(la, gate, h), dg = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < Tx; t++) {
                size_t row = ((size_t)b * Tx + t) * la->QD + (size_t)h * HS;
                const real *dz = datt_out + row, *uh = u + row, *q = q_rope + row;
                const real *pa = att + (((size_t)b * NH + h) * Tx + t) * P;
                // z = gate_h u: d(gate_h) += dz . u ;  du = gate_h dz
                for (int e = 0; e < HS; e++) dg += (double)dz[e] * uh[e];
                // u = sum_p pa_p Va[p]: dpa_p = du . Va[p] ; dVa[p] += pa_p du
                real dpa[512], dot = 0;
                for (int p = 0; p < P; p++) {
                    const real *vp = Va + (size_t)p * la->KV + (size_t)g * HS;
                    real d = 0;
                    for (int e = 0; e < HS; e++) d += (real)(gh * dz[e]) * vp[e];
                    dpa[p] = d;
                    dot += pa[p] * d;
                    real *dvp = la->dVa + (size_t)p * la->KV + (size_t)g * HS;
                    for (int e = 0; e < HS; e++) dvp[e] += pa[p] * (real)(gh * dz[e]);
                }
                // pa = softmax(s): ds_p = pa_p (dpa_p - sum pa dpa); s = q.Ka/sqrt(HS)
                for (int p = 0; p < P; p++) {
                    real ds = pa[p] * (dpa[p] - dot) * (real)scale;
                    const real *kp = Ka + (size_t)p * la->KV + (size_t)g * HS;
                    real *dkp = la->dKa + (size_t)p * la->KV + (size_t)g * HS;
                    for (int e = 0; e < HS; e++) {
                        dq_rope[row + e] += ds * kp[e];
                        dkp[e] += ds * q[e];
                    }
                }
            }
        // gate_h = gate (peft, shared by every head) or tanh(gate[h]) (official)
        if (la->o.gate == GATE_PEFT) dgate[0] += (real)dg;
        else dgate[h] += (real)(dg * (1 - gh * gh));
    }
    // Ka = A Wk^T, Va = A Wv^T: dA += dKa Wk + dVa Wv (Wk, Wv frozen)
    const real *dK = la->dKa;
    if (is_gemma(ad)) { // Ka = k_norm(Kraw): through the norm first (its weight is frozen)
        memset(la->dKraw, 0, (size_t)P * la->KV * sizeof(real));
        rmsnorm_backward(la->dKraw, NULL, la->dKa, la->Kraw + (size_t)i * P * la->KV, knorm_mult(la, w, layer, HS),
                         la->krstd + (size_t)i * P * c->NKV, P * c->NKV, HS);
        dK = la->dKraw;
    }
    llama_linear_backward_dx(&KERNELS_REF, w, LT_WK, layer, dA, dK, P, c->C, la->KV);
    llama_linear_backward_dx(&KERNELS_REF, w, LT_WV, layer, dA, la->dVa, P, c->C, la->KV);
}

static int la_init(Adapter *ad, const LlamaParams *base, AfxRng *rng, afx_err *e) {
    (void)base, (void)e;
    for (int k = 0; k < ad->n_params; k++) { // prompt N(0,1) like nn.Embedding; gate 0 (zero-init)
        AdapterTensor *t = &ad->params[k];
        for (size_t j = 0; j < t->numel; j++) t->w[j] = k % 2 == 0 ? (real)afx_rng_normal(rng) : 0;
    }
    return 0;
}

static const AdapterOps LLAMA_ADAPTER_OPS = {
    .method = "llama_adapter",
    .init = la_init,
    .acts_views = la_acts_views,
    .acts_bound = la_acts_bound,
    .attn_forward = la_attn_forward,
    .attn_backward = la_attn_backward,
};

int llama_adapter_create(Adapter *ad, const LlamaConfig *c, const LlamaAdapterOptions *o, afx_err *e) {
    memset(ad, 0, sizeof *ad);
    if (o->adapter_len <= 0 || o->adapter_len > 512)
        return afx_fail(e, "llama_adapter: adapter_len must be in 1..512 (got %d)", o->adapter_len);
    if (o->adapter_layers <= 0 || o->adapter_layers > c->L)
        return afx_fail(e, "llama_adapter: adapter_layers %d must be in 1..%d (the model's layers)",
                        o->adapter_layers, c->L);
    LAdapter *la = calloc(1, sizeof *la);
    ad->params = calloc(2 * (size_t)o->adapter_layers, sizeof *ad->params);
    ad->acts = calloc(2 * (size_t)o->adapter_layers, sizeof *ad->acts);
    if (!la || !ad->params || !ad->acts) {
        free(la);
        free(ad->params);
        free(ad->acts);
        return afx_fail(e, "llama_adapter: out of memory");
    }
    la->o = *o;
    la->P = o->adapter_len;
    la->La = o->adapter_layers;
    la->first = c->L - o->adapter_layers;
    la->KV = c->NKV * c->HS;
    la->QD = c->NH * c->HS;
    la->rep = c->NH / c->NKV;
    ad->ops = &LLAMA_ADAPTER_OPS;
    ad->cfg = *c;
    ad->priv = la;
    ad->n_params = ad->n_acts = 2 * la->La;
    for (int i = 0; i < la->La; i++) {
        int l = la->first + i;
        AdapterTensor *A = &ad->params[2 * i], *G = &ad->params[2 * i + 1];
        snprintf(A->name, sizeof A->name, "layers.%d.adaption_prompt", l);
        A->ndim = 2, A->shape[0] = (size_t)la->P, A->shape[1] = (size_t)c->C, A->numel = A->shape[0] * A->shape[1];
        snprintf(G->name, sizeof G->name, "layers.%d.adaption_gate", l);
        G->ndim = 1, G->shape[0] = o->gate == GATE_PEFT ? 1 : (size_t)c->NH, G->numel = G->shape[0];
        snprintf(ad->acts[2 * i].name, sizeof ad->acts[0].name, "layers.%d.adapter_att", l);
        snprintf(ad->acts[2 * i + 1].name, sizeof ad->acts[0].name, "layers.%d.adapter_z", l);
    }
    return 0;
}
