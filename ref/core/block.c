/* block.c — the one decoder block (see block.h): Llama and Gemma 3 as variants of one layer body.
 *
 * What it is: the forward of one layer in HF order, with the adapters' hooks at their places; the
 * training forward (llama.c) and the KV-cache decode (decode.c) both call it, so the model exists
 * once. What it is not: the backward (llama.c) nor a fast path (the kernels come from r->K).
 */
#include "block.h"

#include <math.h>
#include <string.h>

#include "hooks.h"

/* ---- norm multipliers --------------------------------------------------------------------------- */

/* Gemma's normg layout: per layer [LN1 C | LN2 C | ONORM C | MNORM C | QNORM HS | KNORM HS], then LNF C */
size_t llama_norm_count(const LlamaConfig *c) {
    if (c->arch != AFX_ARCH_GEMMA3) return 0;
    return (size_t)c->L * (4 * (size_t)c->C + 2 * (size_t)c->HS) + (size_t)c->C;
}

static size_t norm_offset(const LlamaConfig *c, int kind, int l) {
    size_t C = c->C, HS = c->HS, per = 4 * C + 2 * HS, at = (size_t)l * per;
    switch (kind) {
    case LT_LN1: return at;
    case LT_LN2: return at + C;
    case LT_ONORM: return at + 2 * C;
    case LT_MNORM: return at + 3 * C;
    case LT_QNORM: return at + 4 * C;
    case LT_KNORM: return at + 4 * C + HS;
    default: return (size_t)c->L * per; /* LT_LNF */
    }
}

void llama_norm_fill(real *normg, const LlamaParams *w) {
    // Gemma3RMSNorm: out = rms(x) * (1 + w), the sum formed in the number type (HF: 1 + w.float())
    const LlamaConfig *c = &w->cfg;
    static const int kinds[] = {LT_LN1, LT_LN2, LT_ONORM, LT_MNORM, LT_QNORM, LT_KNORM};
    for (int l = 0; l < c->L; l++)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            const real *src = llama_tensor_ptr(w, kinds[k], l);
            real *dst = normg + norm_offset(c, kinds[k], l);
            for (size_t i = 0; i < llama_tensor_numel(c, kinds[k]); i++) dst[i] = (real)1 + src[i];
        }
    real *dst = normg + norm_offset(c, LT_LNF, 0);
    for (int i = 0; i < c->C; i++) dst[i] = (real)1 + w->t[LT_LNF][i];
}

const real *block_norm(const BlockRun *r, int kind, int l) {
    if (!r->normg) return llama_tensor_ptr(r->w, kind, l);
    return r->normg + norm_offset(&r->w->cfg, kind, l);
}

AttnSpec block_attn_spec(const LlamaConfig *c, int l, int exempt) {
    AttnSpec sp = {0, 0, 0}; // Llama: 1/sqrt(HS), no window
    if (c->arch == AFX_ARCH_GEMMA3) {
        sp.scale = 1.0 / sqrt(c->query_pre_attn_scalar);
        if (c->sliding[l]) {
            sp.window = c->sliding_window;
            sp.exempt = exempt;
        }
    }
    return sp;
}

int llama_rope_tables(const LlamaConfig *c, const int *pos, int N, real *cos, real *sin, real *lcos, real *lsin) {
    double inv_freq[512];
    if (c->HS / 2 > 512) return -1;
    rope_inv_freq(inv_freq, c->HS, c->rope_theta, c->rope_factor, c->rope_low_freq_factor,
                  c->rope_high_freq_factor, c->rope_original_max_position);
    rope_table(cos, sin, pos, inv_freq, N, c->HS);
    if (c->arch == AFX_ARCH_GEMMA3) { // sliding layers: their own base, no scaling (gemma3.md §4.1)
        rope_inv_freq(inv_freq, c->HS, c->rope_local_theta, 0, 0, 0, 0);
        rope_table(lcos, lsin, pos, inv_freq, N, c->HS);
    }
    return 0;
}

/* ---- the block ---------------------------------------------------------------------------------- */

/* linear layer + its adapters (LoRA): y = x W^T (+ adapter terms) */
static void linear(const BlockRun *r, int l, lin_site site, int kind, real *y, const real *x, size_t N, size_t IC,
                   size_t OC) {
    llama_linear_forward(r->K, r->w, kind, l, y, x, (int)N, (int)IC, (int)OC);
    hooks_linear_forward(r->s, l, site, y, x, (int)N);
}

void block_forward(const BlockRun *r, int l, const BlockActs *a, const real *x, const KeyStore *ks) {
    const LlamaConfig *c = &r->w->cfg;
    const Kernels *K = r->K;
    int B = r->B, Tx = r->Tx, gemma = c->arch == AFX_ARCH_GEMMA3;
    size_t N = (size_t)B * Tx, C = c->C, FF = c->FF;
    size_t QD = (size_t)c->NH * c->HS, KD = (size_t)c->NKV * c->HS;
    int sliding = gemma && c->sliding[l];
    const real *cs = sliding ? r->lcos : r->cos, *sn = sliding ? r->lsin : r->sin;

    // ---- attention half: x + o_proj(Attn(norm(x)))   (Gemma: x + norm(o_proj(...)))
    K->rmsnorm_forward(a->ln1, a->ln1_rstd, x, block_norm(r, LT_LN1, l), (int)N, (int)C, c->eps);
    linear(r, l, LIN_Q, LT_WQ, a->q, a->ln1, N, C, QD);
    linear(r, l, LIN_K, LT_WK, a->k, a->ln1, N, C, KD);
    linear(r, l, LIN_V, LT_WV, a->v, a->ln1, N, C, KD);
    const real *q = a->q, *k = a->k;
    if (gemma) { // q_norm / k_norm: RMSNorm over head_dim of every head (rows of HS), before RoPE
        K->rmsnorm_forward(a->qn, a->qn_rstd, a->q, block_norm(r, LT_QNORM, l), (int)N * c->NH, c->HS, c->eps);
        K->rmsnorm_forward(a->kn, a->kn_rstd, a->k, block_norm(r, LT_KNORM, l), (int)N * c->NKV, c->HS, c->eps);
        q = a->qn, k = a->kn;
    }
    K->rope_forward(a->qr, q, cs, sn, (int)N, c->NH, c->HS);
    K->rope_forward(a->kr, k, cs, sn, (int)N, c->NKV, c->HS);
    AttnSpec sp = block_attn_spec(c, l, ks->exempt);
    int S = ks->row0 + Tx; // keys visible to this call's queries
    for (int b = 0; b < B; b++) {
        // this call's keys/values into their slots (unless they are computed in place)
        real *kd = ks->k + ((size_t)b * ks->stride + ks->row0) * KD, *vd = ks->v + ((size_t)b * ks->stride + ks->row0) * KD;
        if (kd != a->kr + (size_t)b * Tx * KD) memcpy(kd, a->kr + (size_t)b * Tx * KD, (size_t)Tx * KD * sizeof(real));
        if (vd != a->v + (size_t)b * Tx * KD) memcpy(vd, a->v + (size_t)b * Tx * KD, (size_t)Tx * KD * sizeof(real));
        real *lse = a->lse + (a->lse_shared ? 0 : (size_t)b * c->NH * Tx);
        real *att = a->att ? a->att + (size_t)b * c->NH * Tx * S : NULL;
        K->attention_forward(a->att_out + (size_t)b * Tx * QD, lse, att, a->qr + (size_t)b * Tx * QD,
                             ks->k + (size_t)b * ks->stride * KD, ks->v + (size_t)b * ks->stride * KD,
                             ks->mask + (size_t)b * ks->stride, &sp, 1, Tx, S, c->NH, c->NKV, c->HS);
    }
    hooks_attn_forward(r->s, r->w, l, a->att_out, a->qr, B, Tx);
    linear(r, l, LIN_O, LT_WO, a->o, a->att_out, N, QD, C);
    const real *branch = a->o;
    if (gemma) { // sandwich: the attention output is normalized before the residual add
        K->rmsnorm_forward(a->on, a->on_rstd, a->o, block_norm(r, LT_ONORM, l), (int)N, (int)C, c->eps);
        branch = a->on;
    }
    residual_forward(a->res1, x, branch, N * C);

    // ---- MLP half: res1 + down(act(gate(norm(res1))) * up(...))   (Gemma: + norm(down(...)))
    K->rmsnorm_forward(a->ln2, a->ln2_rstd, a->res1, block_norm(r, LT_LN2, l), (int)N, (int)C, c->eps);
    linear(r, l, LIN_GATE, LT_WG, a->gate, a->ln2, N, C, FF);
    linear(r, l, LIN_UP, LT_WU, a->up, a->ln2, N, C, FF);
    if (gemma) K->geglu_forward(a->act, a->gate, a->up, N * FF);
    else K->swiglu_forward(a->act, a->gate, a->up, N * FF);
    linear(r, l, LIN_DOWN, LT_WD, a->mlp, a->act, N, FF, C);
    branch = a->mlp;
    if (gemma) {
        K->rmsnorm_forward(a->mn, a->mn_rstd, a->mlp, block_norm(r, LT_MNORM, l), (int)N, (int)C, c->eps);
        branch = a->mn;
    }
    residual_forward(a->out, a->res1, branch, N * C);
}

const real *blocks_forward(const BlockRun *r, const real *x, BlockPlace place, void *ctx) {
    for (int l = 0; l < r->w->cfg.L; l++) {
        BlockActs a;
        KeyStore ks;
        place(ctx, l, &a, &ks);
        block_forward(r, l, &a, x, &ks);
        x = a.out;
    }
    return x;
}
