/* llama.c — the Llama decoder over the ops of ops.c: named tensors, arenas, forward, loss, backward.
 *
 * What it is: the whole-model forward and backward in the order of HF's LlamaForCausalLM
 * (embed -> L x [RMSNorm, attention, residual, RMSNorm, SwiGLU MLP, residual] -> RMSNorm -> lm_head).
 * What it is not: an I/O layer (weights arrive already in a LlamaParams; see ref/io) nor a fast path.
 */
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "arena.h"
#include "block.h"
#include "ops.h"

/* -------------------------------------------------------------------------------------------- */
/* config                                                                                        */

int llama_config_check(const LlamaConfig *c, afx_err *e) {
    if (c->V <= 0) return afx_fail(e, "config: vocab_size must be positive (got %d)", c->V);
    if (c->C <= 0) return afx_fail(e, "config: hidden_size must be positive (got %d)", c->C);
    if (c->FF <= 0) return afx_fail(e, "config: intermediate_size must be positive (got %d)", c->FF);
    if (c->L <= 0) return afx_fail(e, "config: num_hidden_layers must be positive (got %d)", c->L);
    if (c->NH <= 0) return afx_fail(e, "config: num_attention_heads must be positive (got %d)", c->NH);
    if (c->NKV <= 0 || c->NH % c->NKV != 0)
        return afx_fail(e, "config: num_key_value_heads %d must divide num_attention_heads %d", c->NKV,
                        c->NH);
    if (c->HS <= 0 || c->HS % 2 != 0)
        return afx_fail(e, "config: head_dim must be positive and even (got %d)", c->HS);
    if (!(c->eps > 0)) return afx_fail(e, "config: rms_norm_eps must be positive (got %g)", c->eps);
    if (!(c->rope_theta > 0))
        return afx_fail(e, "config: rope_theta must be positive (got %g)", c->rope_theta);
    if (c->rope_factor > 0 &&
        !(c->rope_high_freq_factor > c->rope_low_freq_factor && c->rope_low_freq_factor > 0 &&
          c->rope_original_max_position > 0))
        return afx_fail(e, "config: llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor "
                           "and original_max_position_embeddings > 0");
    if (c->max_pos <= 0)
        return afx_fail(e, "config: max_position_embeddings must be positive (got %d)", c->max_pos);
    if (c->arch != AFX_ARCH_LLAMA && c->arch != AFX_ARCH_GEMMA3)
        return afx_fail(e, "config: unknown architecture %d", c->arch);
    if (c->arch == AFX_ARCH_GEMMA3) {
        if (c->L > AFX_MAX_LAYERS)
            return afx_fail(e, "config: %d layers; Gemma 3 configs are limited to %d", c->L, AFX_MAX_LAYERS);
        if (!(c->query_pre_attn_scalar > 0))
            return afx_fail(e, "config: query_pre_attn_scalar must be positive (got %g)", c->query_pre_attn_scalar);
        if (!(c->rope_local_theta > 0))
            return afx_fail(e, "config: rope_local_base_freq must be positive (got %g)", c->rope_local_theta);
        if (c->rope_factor > 0) return afx_fail(e, "config: rope scaling is not supported for Gemma 3");
        int any = 0;
        for (int l = 0; l < c->L; l++) any |= c->sliding[l];
        if (any && c->sliding_window <= 0)
            return afx_fail(e, "config: sliding layers need sliding_window > 0 (got %d)", c->sliding_window);
    }
    /* sizes must fit comfortably in size_t arithmetic and int loop counters */
    // every weight: embedding (+ an untied lm_head), per layer q and o (NH*HS*C each), k and v
    // (NKV*HS*C each), gate, up and down (FF*C each); the three MLP matrices once counted only once
    double per_layer = 2.0 * c->NH * c->HS * c->C + 2.0 * c->NKV * c->HS * c->C + 3.0 * c->FF * c->C;
    double big = (double)c->V * c->C * (c->tied ? 1 : 2) + (double)c->L * per_layer;
    if (big > 1e12) return afx_fail(e, "config: model too large (%.3g parameters)", big);
    return 0;
}

/* -------------------------------------------------------------------------------------------- */
/* named tensors                                                                                 */

static const char *const tensor_fmt[LT_COUNT] = {
    "model.embed_tokens.weight",
    "model.layers.%d.input_layernorm.weight",
    "model.layers.%d.self_attn.q_proj.weight",
    "model.layers.%d.self_attn.k_proj.weight",
    "model.layers.%d.self_attn.v_proj.weight",
    "model.layers.%d.self_attn.o_proj.weight",
    "model.layers.%d.post_attention_layernorm.weight",
    "model.layers.%d.mlp.gate_proj.weight",
    "model.layers.%d.mlp.up_proj.weight",
    "model.layers.%d.mlp.down_proj.weight",
    "model.layers.%d.self_attn.q_norm.weight",
    "model.layers.%d.self_attn.k_norm.weight",
    "model.layers.%d.post_attention_layernorm.weight",
    "model.layers.%d.post_feedforward_layernorm.weight",
    "model.norm.weight",
    "lm_head.weight",
};

/* the HF name pattern of a tensor: Gemma's pre-MLP norm is pre_feedforward_layernorm, and its
 * post_attention_layernorm normalizes the attention output (LT_ONORM) */
static const char *tensor_name(const LlamaConfig *c, int kind) {
    if (c->arch == AFX_ARCH_GEMMA3 && kind == LT_LN2) return "model.layers.%d.pre_feedforward_layernorm.weight";
    return tensor_fmt[kind];
}

int llama_tensor_is_per_layer(int kind) { return kind >= LT_LN1 && kind <= LT_MNORM; }

int llama_tensor_is_norm(int kind) {
    return kind == LT_LN1 || kind == LT_LN2 || kind == LT_QNORM || kind == LT_KNORM || kind == LT_ONORM ||
           kind == LT_MNORM || kind == LT_LNF;
}

int llama_tensor_exists(const LlamaConfig *c, int kind) {
    if (kind < 0 || kind >= LT_COUNT) return 0;
    if (kind == LT_LM_HEAD) return !c->tied;
    if (kind >= LT_QNORM && kind <= LT_MNORM) return c->arch == AFX_ARCH_GEMMA3;
    return 1;
}

real llama_embed_scale(const LlamaConfig *c) {
    // Gemma3TextScaledWordEmbedding: embed_scale = sqrt(hidden_size), a buffer of the weights' dtype
    return c->arch == AFX_ARCH_GEMMA3 ? (real)sqrt((double)c->C) : (real)1;
}

/* shape (rows, cols) of one tensor, or one layer's slice; cols = 0 for vectors */
static void tensor_shape(const LlamaConfig *c, int kind, size_t *rows, size_t *cols) {
    size_t C = c->C, V = c->V, FF = c->FF, QD = (size_t)c->NH * c->HS, KD = (size_t)c->NKV * c->HS;
    if (kind >= LT_QNORM && kind <= LT_MNORM && c->arch != AFX_ARCH_GEMMA3) { // absent: no elements
        *rows = 0; *cols = 0;
        return;
    }
    switch (kind) {
    case LT_QNORM: case LT_KNORM: *rows = c->HS; *cols = 0; break;
    case LT_ONORM: case LT_MNORM: *rows = C; *cols = 0; break;
    case LT_EMBED: case LT_LM_HEAD: *rows = V; *cols = C; break;
    case LT_LN1: case LT_LN2: case LT_LNF: *rows = C; *cols = 0; break;
    case LT_WQ: *rows = QD; *cols = C; break;
    case LT_WK: case LT_WV: *rows = KD; *cols = C; break;
    case LT_WO: *rows = C; *cols = QD; break;
    case LT_WG: case LT_WU: *rows = FF; *cols = C; break;
    case LT_WD: *rows = C; *cols = FF; break;
    default: *rows = 0; *cols = 0;
    }
}

size_t llama_tensor_numel(const LlamaConfig *c, int kind) {
    size_t r, k;
    tensor_shape(c, kind, &r, &k);
    return k ? r * k : r;
}

int llama_tensor_info(const LlamaConfig *c, int kind, int layer, char *name, size_t namelen,
                      size_t shape[2], int *ndim) {
    if (!llama_tensor_exists(c, kind)) return -1;
    if (llama_tensor_is_per_layer(kind) && (layer < 0 || layer >= c->L)) return -1;
    if (name) {
        if (llama_tensor_is_per_layer(kind)) snprintf(name, namelen, tensor_name(c, kind), layer);
        else snprintf(name, namelen, "%s", tensor_name(c, kind));
    }
    size_t r, k;
    tensor_shape(c, kind, &r, &k);
    shape[0] = r;
    shape[1] = k;
    *ndim = k ? 2 : 1;
    return 0;
}

real *llama_tensor_ptr(const LlamaParams *p, int kind, int layer) {
    real *base = p->t[kind];
    if (!base) return NULL;
    if (llama_tensor_is_per_layer(kind)) return base + (size_t)layer * llama_tensor_numel(&p->cfg, kind);
    return base;
}

size_t llama_params_count_kept(const LlamaConfig *c, unsigned kept) {
    size_t n = 0;
    for (int k = 0; k < LT_COUNT; k++) {
        if (!llama_tensor_exists(c, k) || (kept >> k & 1u)) continue;
        n += llama_tensor_numel(c, k) * (llama_tensor_is_per_layer(k) ? (size_t)c->L : 1);
    }
    return n;
}

size_t llama_params_count(const LlamaConfig *c) { return llama_params_count_kept(c, 0); }

void llama_params_bind_kept(LlamaParams *p, const LlamaConfig *c, real *mem, unsigned kept) {
    memset(p, 0, sizeof *p);
    p->cfg = *c;
    p->mem = mem;
    p->count = llama_params_count_kept(c, kept);
    real *at = mem;
    for (int k = 0; k < LT_COUNT; k++) {
        if (!llama_tensor_exists(c, k) || (kept >> k & 1u)) continue;
        p->t[k] = at;
        at += llama_tensor_numel(c, k) * (llama_tensor_is_per_layer(k) ? (size_t)c->L : 1);
    }
    if (c->tied) p->t[LT_LM_HEAD] = p->t[LT_EMBED]; // one tensor, two uses
}

void llama_params_bind(LlamaParams *p, const LlamaConfig *c, real *mem) { llama_params_bind_kept(p, c, mem, 0); }

const QMat *llama_tensor_q(const LlamaParams *p, int kind, int layer) {
    int k = kind == LT_LM_HEAD && p->cfg.tied ? LT_EMBED : kind;
    if (!p->q[k]) return NULL;
    return p->q[k] + (llama_tensor_is_per_layer(k) ? layer : 0);
}

double llama_params_bytes(const LlamaParams *p) {
    double b = (double)p->count * sizeof(real);
    for (int k = 0; k < LT_COUNT; k++) {
        if (!p->q[k] || (k == LT_LM_HEAD && p->cfg.tied)) continue;
        int layers = llama_tensor_is_per_layer(k) ? p->cfg.L : 1;
        for (int l = 0; l < layers; l++) b += (double)p->q[k][l].rows * (double)p->q[k][l].row_bytes;
    }
    return b;
}

void llama_linear_forward(const Kernels *K, const LlamaParams *w, int kind, int layer, real *y, const real *x,
                          int N, int IC, int OC) {
    const QMat *q = llama_tensor_q(w, kind, layer);
    if (q) K->qmatmul_forward(y, x, q, N);
    else K->matmul_forward(y, x, llama_tensor_ptr(w, kind, layer), N, IC, OC);
}

void llama_linear_backward_dx(const Kernels *K, const LlamaParams *w, int kind, int layer, real *dx, const real *dy,
                              int N, int IC, int OC) {
    const QMat *q = llama_tensor_q(w, kind, layer);
    if (q) K->qmatmul_backward(dx, dy, q, N);
    else K->matmul_backward(dx, NULL, dy, NULL, llama_tensor_ptr(w, kind, layer), N, IC, OC);
}

void llama_embed_rows(const LlamaParams *w, const int *ids, int N, real *out) {
    int C = w->cfg.C;
    const QMat *q = llama_tensor_q(w, LT_EMBED, 0);
    if (!q) {
        embedding_forward(out, ids, w->t[LT_EMBED], N, C);
        return;
    }
    for (int n = 0; n < N; n++) qmat_row(q, ids[n], 0, C, out + (size_t)n * C);
}

int llama_params_alloc(LlamaParams *p, const LlamaConfig *c, afx_err *e) {
    if (llama_config_check(c, e)) return -1;
    size_t n = llama_params_count(c);
    real *mem = calloc(n, sizeof(real));
    if (!mem) return afx_fail(e, "out of memory allocating %zu parameters", n);
    llama_params_bind(p, c, mem);
    p->owns = 1;
    return 0;
}

void llama_params_free(LlamaParams *p) {
    if (p->owns) free(p->mem);
    memset(p, 0, sizeof *p);
}

/* -------------------------------------------------------------------------------------------- */
/* activation arenas                                                                             */

/* model tokens Tx and max keys S for T real tokens under the adapters s */
static void shape_with(const LlamaConfig *c, const ModelHooks *s, int T, int *Tx, int *S, int *any_prefix) {
    *Tx = s ? hooks_tokens(s, T) : T;
    int pmax = 0;
    for (int l = 0; s && l < c->L; l++) {
        int p = hooks_prefix_len(s, l);
        if (p > pmax) pmax = p;
    }
    *S = *Tx + pmax;
    *any_prefix = pmax > 0;
}

/* the chunk the head runs in: only when more rows than one chunk are selected */
static int chunk_of(int rows_cap, int head_chunk) { return head_chunk > 0 && rows_cap > head_chunk ? head_chunk : 0; }

/* the views of a LLAMA_ACTS_* layout that share one layer's slot (see llama_acts_bind_chunk) */
static unsigned shared_views(const LlamaConfig *c, const ModelHooks *s, unsigned flags) {
    if (!(flags & LLAMA_ACTS_TRAIN)) return 0;
    unsigned sh = c->arch == AFX_ARCH_GEMMA3 ? LLAMA_SH_QN | LLAMA_SH_KN | LLAMA_SH_ON | LLAMA_SH_MN
                                             : LLAMA_SH_Q | LLAMA_SH_K; // (Gemma's norms read q and k)
    if (flags & LLAMA_ACTS_FROZEN) {
        if (!hooks_linear_reads(s, LIN_Q) && !hooks_linear_reads(s, LIN_K) && !hooks_linear_reads(s, LIN_V))
            sh |= LLAMA_SH_LN1;
        if (!hooks_linear_reads(s, LIN_GATE) && !hooks_linear_reads(s, LIN_UP)) sh |= LLAMA_SH_LN2;
        if (!hooks_linear_reads(s, LIN_DOWN)) sh |= LLAMA_SH_ACT;
    }
    return sh;
}

static int acts_table(LlamaActs *a, const LlamaConfig *c, const ModelHooks *s, int B, int T, int rows_cap,
                      int head_chunk, unsigned flags, ArenaView *list) {
    int Tx, S, pre;
    shape_with(c, s, T, &Tx, &S, &pre);
    a->shared = shared_views(c, s, flags);
    a->rows_cap = rows_cap;
    a->head_chunk = chunk_of(rows_cap, head_chunk);
    a->B = B;
    a->T = T;
    a->Tx = Tx;
    a->P = Tx - T;
    a->S = S;
    size_t N = (size_t)B * Tx, L = c->L, C = c->C, FF = c->FF;
    size_t QD = (size_t)c->NH * c->HS, KD = (size_t)c->NKV * c->HS, H2 = (size_t)c->HS / 2;
    int n = 0;
#define ADD(field, cnt, type) list[n++] = (ArenaView){(void **)&a->field, (cnt), sizeof(type)}
    ADD(ids, (size_t)B * T, int);
    ADD(mask, N, int);
    ADD(pos, N, int);
    ADD(labels, N, int);
    ADD(keymask, (size_t)B * S, int);
    ADD(rope_cos, N * H2, real);
    ADD(rope_sin, N * H2, real);
    size_t G = c->arch == AFX_ARCH_GEMMA3, NH = c->NH, NKV = c->NKV; // Gemma's extra tensors
    ADD(rope_lcos, G * N * H2, real);
    ADD(rope_lsin, G * N * H2, real);
    ADD(normg, llama_norm_count(c), real);
    ADD(embed, N * C, real);
    ADD(ln1, (a->shared & LLAMA_SH_LN1 ? 1 : L) * N * C, real);
    ADD(ln1_rstd, L * N, real);
    ADD(q, (a->shared & LLAMA_SH_Q ? 1 : L) * N * QD, real);
    ADD(k, (a->shared & LLAMA_SH_K ? 1 : L) * N * KD, real);
    ADD(v, L * N * KD, real);
    ADD(qn, G * (a->shared & LLAMA_SH_QN ? 1 : L) * N * QD, real);
    ADD(qn_rstd, G * L * N * NH, real);
    ADD(kn, G * (a->shared & LLAMA_SH_KN ? 1 : L) * N * KD, real);
    ADD(kn_rstd, G * L * N * NKV, real);
    ADD(q_rope, L * N * QD, real);
    ADD(k_rope, L * N * KD, real);
    ADD(kcat, pre ? L * (size_t)B * S * KD : 0, real);
    ADD(vcat, pre ? L * (size_t)B * S * KD : 0, real);
    ADD(lse, L * (size_t)B * c->NH * Tx, real);
    ADD(att, !flags && !rows_cap ? L * (size_t)B * c->NH * Tx * S : 0, real); // (the plain layout only)
    ADD(att_out, L * N * QD, real);
    ADD(o, L * N * C, real);
    ADD(on, G * (a->shared & LLAMA_SH_ON ? 1 : L) * N * C, real);
    ADD(on_rstd, G * L * N, real);
    ADD(res1, L * N * C, real);
    ADD(ln2, (a->shared & LLAMA_SH_LN2 ? 1 : L) * N * C, real);
    ADD(ln2_rstd, L * N, real);
    ADD(gate, L * N * FF, real);
    ADD(up, L * N * FF, real);
    ADD(swiglu, (a->shared & LLAMA_SH_ACT ? 1 : L) * N * FF, real);
    ADD(mlp, L * N * C, real);
    ADD(mn, G * (a->shared & LLAMA_SH_MN ? 1 : L) * N * C, real);
    ADD(mn_rstd, G * L * N, real);
    ADD(out, L * N * C, real);
    ADD(lnf, N * C, real);
    ADD(lnf_rstd, N, real);
    size_t R = (size_t)rows_cap, H = (size_t)a->head_chunk;
    ADD(logits, (H ? H + 1 : R ? R + 1 : N) * (size_t)c->V, real);
    ADD(dlogits_chunk, H ? (H + 1) * (size_t)c->V : 0, real);
    ADD(rows, R, int);
    ADD(rlabels, R ? R + 1 : 0, int);
    ADD(lnf_rows, R * C, real);
    ADD(dlnf_rows, R * C, real);
#undef ADD
    return n;
}

size_t llama_acts_bytes_chunk(const LlamaConfig *c, const ModelHooks *s, int B, int T, int rows_cap, int head_chunk,
                              unsigned flags) {
    LlamaActs a;
    ArenaView list[64];
    int n = acts_table(&a, c, s, B, T, rows_cap, head_chunk, flags, list);
    return arena_layout(list, n, NULL);
}

size_t llama_acts_bytes_rows(const LlamaConfig *c, const ModelHooks *s, int B, int T, int rows_cap) {
    return llama_acts_bytes_chunk(c, s, B, T, rows_cap, 0, 0);
}

size_t llama_acts_bytes(const LlamaConfig *c, const ModelHooks *s, int B, int T) {
    return llama_acts_bytes_rows(c, s, B, T, 0);
}

void llama_acts_bind(LlamaActs *a, const LlamaConfig *c, const ModelHooks *s, int B, int T, void *mem) {
    llama_acts_bind_rows(a, c, s, B, T, 0, mem);
}

void llama_acts_bind_rows(LlamaActs *a, const LlamaConfig *c, const ModelHooks *s, int B, int T, int rows_cap,
                          void *mem) {
    llama_acts_bind_chunk(a, c, s, B, T, rows_cap, 0, 0, mem);
}

void llama_acts_bind_chunk(LlamaActs *a, const LlamaConfig *c, const ModelHooks *s, int B, int T, int rows_cap,
                           int head_chunk, unsigned flags, void *mem) {
    ArenaView list[64];
    memset(a, 0, sizeof *a);
    int n = acts_table(a, c, s, B, T, rows_cap, head_chunk, flags, list);
    a->bytes = arena_layout(list, n, mem);
    a->mem = mem;
    a->cfg = *c;
    a->kern = &KERNELS_REF;
}

int llama_acts_alloc(LlamaActs *a, const LlamaConfig *c, const ModelHooks *s, int B, int T, afx_err *e) {
    if (B <= 0 || T <= 0) return afx_fail(e, "activations: bad shape (B=%d, T=%d)", B, T);
    size_t bytes = llama_acts_bytes(c, s, B, T);
    void *mem = arena_alloc(bytes);
    if (!mem) return afx_fail(e, "out of memory allocating %zu bytes of activations", bytes);
    llama_acts_bind(a, c, s, B, T, mem);
    a->owns = 1;
    return 0;
}

void llama_acts_free(LlamaActs *a) {
    if (a->owns) free(a->mem);
    memset(a, 0, sizeof *a);
}

static int actgrads_table(LlamaActGrads *d, const LlamaConfig *c, const ModelHooks *s, int B, int T, int rows_cap,
                          int head_chunk, ArenaView *list) {
    int Tx, S, pre;
    shape_with(c, s, T, &Tx, &S, &pre);
    d->rows_cap = rows_cap;
    d->B = B;
    d->T = T;
    d->Tx = Tx;
    d->S = S;
    size_t N = (size_t)B * Tx, C = c->C, FF = c->FF;
    size_t QD = (size_t)c->NH * c->HS, KD = (size_t)c->NKV * c->HS;
    int n = 0;
#define ADD(field, cnt) list[n++] = (ArenaView){(void **)&d->field, (cnt), sizeof(real)}
    ADD(dres, N * C);
    ADD(dres1, N * C);
    ADD(dln, N * C);
    ADD(dq, N * QD);
    ADD(dk, N * KD);
    ADD(dv, N * KD);
    size_t G = c->arch == AFX_ARCH_GEMMA3;
    ADD(dqn, G * N * QD);
    ADD(dkn, G * N * KD);
    ADD(dbr, G * N * C);
    ADD(dq_rope, N * QD);
    ADD(dk_rope, N * KD);
    ADD(dkcat, pre ? (size_t)B * S * KD : 0);
    ADD(dvcat, pre ? (size_t)B * S * KD : 0);
    ADD(datt, attention_scratch_count(B, S, c->NKV));
    ADD(datt_out, N * QD);
    ADD(dgate, N * FF);
    ADD(dup, N * FF);
    ADD(dswiglu, N * FF);
    ADD(dlogits, chunk_of(rows_cap, head_chunk) ? 0 : (rows_cap ? (size_t)rows_cap + 1 : N) * (size_t)c->V);
#undef ADD
    return n;
}

size_t llama_actgrads_count_rows(const LlamaConfig *c, const ModelHooks *s, int B, int T, int rows_cap) {
    return llama_actgrads_count_chunk(c, s, B, T, rows_cap, 0);
}

size_t llama_actgrads_count_chunk(const LlamaConfig *c, const ModelHooks *s, int B, int T, int rows_cap, int head_chunk) {
    LlamaActGrads d;
    ArenaView list[64];
    int n = actgrads_table(&d, c, s, B, T, rows_cap, head_chunk, list);
    return (arena_layout(list, n, NULL) + sizeof(real) - 1) / sizeof(real);
}

size_t llama_actgrads_count(const LlamaConfig *c, const ModelHooks *s, int B, int T) {
    return llama_actgrads_count_rows(c, s, B, T, 0);
}

void llama_actgrads_bind(LlamaActGrads *d, const LlamaConfig *c, const ModelHooks *s, int B, int T,
                         real *mem) {
    llama_actgrads_bind_rows(d, c, s, B, T, 0, mem);
}

void llama_actgrads_bind_rows(LlamaActGrads *d, const LlamaConfig *c, const ModelHooks *s, int B, int T,
                              int rows_cap, real *mem) {
    llama_actgrads_bind_chunk(d, c, s, B, T, rows_cap, 0, mem);
}

void llama_actgrads_bind_chunk(LlamaActGrads *d, const LlamaConfig *c, const ModelHooks *s, int B, int T,
                               int rows_cap, int head_chunk, real *mem) {
    ArenaView list[64];
    memset(d, 0, sizeof *d);
    int n = actgrads_table(d, c, s, B, T, rows_cap, head_chunk, list);
    d->count = (arena_layout(list, n, mem) + sizeof(real) - 1) / sizeof(real);
    d->mem = mem;
    d->cfg = *c;
}

int llama_actgrads_alloc(LlamaActGrads *d, const LlamaConfig *c, const ModelHooks *s, int B, int T,
                         afx_err *e) {
    if (B <= 0 || T <= 0) return afx_fail(e, "activation gradients: bad shape (B=%d, T=%d)", B, T);
    size_t bytes = llama_actgrads_count(c, s, B, T) * sizeof(real);
    real *mem = arena_alloc(bytes);
    if (!mem) return afx_fail(e, "out of memory allocating %zu bytes of activation gradients", bytes);
    llama_actgrads_bind(d, c, s, B, T, mem);
    d->owns = 1;
    return 0;
}

void llama_actgrads_free(LlamaActGrads *d) {
    if (d->owns) free(d->mem);
    memset(d, 0, sizeof *d);
}

/* -------------------------------------------------------------------------------------------- */
/* linear layers with their adapters (LoRA)                                                      */

static void linear_bwd(const Kernels *k, ModelHooks *s, const LlamaParams *w, int kind, int l, lin_site site, real *dx,
                       real *dW, const real *dy, const real *x, size_t N, size_t IC, size_t OC) {
    const QMat *q = llama_tensor_q(w, kind, l);
    if (!q) k->matmul_backward(dx, dW, dy, x, llama_tensor_ptr(w, kind, l), (int)N, (int)IC, (int)OC);
    else if (dx) k->qmatmul_backward(dx, dy, q, (int)N); // a kept weight is frozen: no dW
    hooks_linear_backward(s, l, site, dx, dy, x, (int)N);
}

/* -------------------------------------------------------------------------------------------- */
/* one layer's views into the activation arena                                                   */

static void block_views(const LlamaActs *a, int l, BlockActs *v) {
    const LlamaConfig *c = &a->cfg;
    size_t ll = (size_t)l, N = (size_t)a->B * a->Tx, C = c->C, FF = c->FF;
    size_t QD = (size_t)c->NH * c->HS, KD = (size_t)c->NKV * c->HS;
#define AT(f, n) (a->f ? a->f + ll * (n) : NULL)
#define ATS(f, n, bit) (a->f ? a->f + (a->shared & (bit) ? 0 : ll) * (n) : NULL) /* one slot for every layer */
    *v = (BlockActs){
        .ln1 = ATS(ln1, N * C, LLAMA_SH_LN1), .ln1_rstd = AT(ln1_rstd, N),
        .q = ATS(q, N * QD, LLAMA_SH_Q), .k = ATS(k, N * KD, LLAMA_SH_K), .v = AT(v, N * KD),
        .qn = ATS(qn, N * QD, LLAMA_SH_QN), .qn_rstd = AT(qn_rstd, N * c->NH), .kn = ATS(kn, N * KD, LLAMA_SH_KN),
        .kn_rstd = AT(kn_rstd, N * c->NKV),
        .qr = AT(q_rope, N * QD), .kr = AT(k_rope, N * KD),
        .lse = AT(lse, (size_t)a->B * c->NH * a->Tx), .lse_shared = 0, .att = AT(att, (size_t)a->B * c->NH * a->Tx * a->S),
        .att_out = AT(att_out, N * QD), .o = AT(o, N * C), .on = ATS(on, N * C, LLAMA_SH_ON), .on_rstd = AT(on_rstd, N),
        .res1 = AT(res1, N * C), .ln2 = ATS(ln2, N * C, LLAMA_SH_LN2), .ln2_rstd = AT(ln2_rstd, N),
        .gate = AT(gate, N * FF), .up = AT(up, N * FF), .act = ATS(swiglu, N * FF, LLAMA_SH_ACT),
        .mlp = AT(mlp, N * C), .mn = ATS(mn, N * C, LLAMA_SH_MN), .mn_rstd = AT(mn_rstd, N), .out = AT(out, N * C),
    };
#undef ATS
#undef AT
}

/* layer l in training: its slices of the activations; its keys in place, or for a prefix layer the
 * [K_pre ; RoPE(k)] concatenation, S_l = P_l + Tx slots per row */
typedef struct {
    LlamaActs *a;
    ModelHooks *s;
} TrainPlace;

/* the key mask of a layer with Pl prefix keys: (B, Pl + Tx), the prefix always visible */
static int *prefix_keymask(LlamaActs *a, int Pl) {
    int B = a->B, Tx = a->Tx, Sl = Pl + Tx;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < Sl; j++) a->keymask[(size_t)b * Sl + j] = j < Pl ? 1 : a->mask[(size_t)b * Tx + j - Pl];
    return a->keymask;
}

static void train_place(void *ctx, int l, BlockActs *ba, KeyStore *ks) {
    TrainPlace *tp = ctx;
    LlamaActs *a = tp->a;
    int B = a->B, Tx = a->Tx, Pl = hooks_prefix_len(tp->s, l);
    size_t KD = (size_t)a->cfg.NKV * a->cfg.HS;
    block_views(a, l, ba);
    *ks = (KeyStore){ba->kr, ba->v, a->mask, Tx, 0, 0}; // the layer's own keys, in place
    if (Pl > 0) {
        int Sl = Pl + Tx;
        real *kc = a->kcat + (size_t)l * B * a->S * KD, *vc = a->vcat + (size_t)l * B * a->S * KD;
        hooks_kv_forward(tp->s, l, kc, vc, B, Sl);
        *ks = (KeyStore){kc, vc, prefix_keymask(a, Pl), Sl, Pl, hooks_prefix_exempt(tp->s, l) ? Pl : 0};
    }
}

/* -------------------------------------------------------------------------------------------- */
/* forward                                                                                       */

int llama_forward(const LlamaParams *w, ModelHooks *s, LlamaActs *a, const int *ids, const int *mask,
                  const int *pos, int B, int T, afx_err *e) {
    const LlamaConfig *c = &w->cfg;
    const Kernels *K = a->kern;
    if (B != a->B || T != a->T)
        return afx_fail(e, "forward: input shape (B=%d, T=%d) does not match the activations' shape "
                           "(B=%d, T=%d)", B, T, a->B, a->T);
    if (s && (s->B != B || s->T != T))
        return afx_fail(e, "forward: input shape (B=%d, T=%d) does not match the adapters' activations "
                           "(B=%d, T=%d)", B, T, s->B, s->T);
    int Tx = a->Tx, P = a->P;
    int off = s ? hooks_position_offset(s) : 0; // first position of the real tokens
    size_t N = (size_t)B * Tx, C = c->C, V = c->V;
    // inputs of the model: P virtual tokens (always visible, positions 0..P-1), then the real ones
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Tx; t++) {
            size_t n = (size_t)b * Tx + t;
            if (t < P) { // virtual tokens: always visible, first positions
                a->mask[n] = 1;
                a->pos[n] = off + t;
                continue;
            }
            size_t r = (size_t)b * T + (t - P); // the real token
            if (ids[r] < 0 || ids[r] >= c->V)
                return afx_fail(e, "forward: token id %d at (b=%d, t=%d) is outside the vocabulary [0,%d)",
                                ids[r], b, t - P, c->V);
            a->mask[n] = mask ? mask[r] != 0 : 1;
            a->pos[n] = (pos ? pos[r] : t - P) + off + P;
            if (a->pos[n] < 0 || a->pos[n] >= c->max_pos)
                return afx_fail(e, "forward: position %d at (b=%d, t=%d) is outside [0,%d)", a->pos[n], b,
                                t - P, c->max_pos);
        }
    memcpy(a->ids, ids, (size_t)B * T * sizeof(int));

    // RoPE tables for each token's position (Gemma: one per base)
    if (llama_rope_tables(c, a->pos, (int)N, a->rope_cos, a->rope_sin, a->rope_lcos, a->rope_lsin))
        return afx_fail(e, "forward: head_dim %d above the supported 1024", c->HS);
    if (a->normg) llama_norm_fill(a->normg, w);

    hooks_begin_forward(s, w);

    // embeddings: real tokens at rows P.. (Gemma: times sqrt(C)), virtual tokens (prompt tuning) at
    // rows 0..P-1, unscaled (PEFT passes them as inputs_embeds)
    real es = llama_embed_scale(c);
    for (int b = 0; b < B; b++) {
        real *xb = a->embed + ((size_t)b * Tx + P) * C;
        llama_embed_rows(w, ids + (size_t)b * T, T, xb);
        if (es != 1)
            for (size_t i = 0; i < (size_t)T * C; i++) xb[i] *= es;
    }
    hooks_embed_forward(s, a->embed, B, Tx);

    BlockRun run = {K, w, a->normg, a->rope_cos, a->rope_sin, a->rope_lcos, a->rope_lsin, s, B, Tx};
    TrainPlace tp = {a, s};
    const real *x = blocks_forward(&run, a->embed, train_place, &tp); // (B,Tx,C) after the last layer
    K->rmsnorm_forward(a->lnf, a->lnf_rstd, x, block_norm(&run, LT_LNF, 0), (int)N, (int)C, c->eps);
    if (!a->rows_cap) {
        llama_linear_forward(K, w, LT_LM_HEAD, 0, a->logits, a->lnf, (int)N, (int)C, (int)V);
        return 0;
    }
    // logits only on the selected rows (llama_select_rows): gather them, then lm_head
    for (int r = 0; r < a->n_rows; r++)
        memcpy(a->lnf_rows + (size_t)r * C, a->lnf + (size_t)a->rows[r] * C, C * sizeof(real));
    if (a->n_rows && !a->head_chunk) llama_linear_forward(K, w, LT_LM_HEAD, 0, a->logits, a->lnf_rows, a->n_rows, (int)C, (int)V);
    a->head_w = w; // (the head in chunks runs in llama_loss)
    return 0;
}

/* -------------------------------------------------------------------------------------------- */
/* loss                                                                                          */

/* labels (B,T) of the real tokens -> a->labels (B,Tx) with -100 over the virtual tokens (PEFT) */
static int extend_labels(LlamaActs *a, const int *labels, int B, int T, afx_err *e) {
    if (B != a->B || T != a->T)
        return afx_fail(e, "loss: labels shape (B=%d, T=%d) does not match the activations' shape "
                           "(B=%d, T=%d)", B, T, a->B, a->T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < a->Tx; t++) {
            int y = t < a->P ? -100 : labels[(size_t)b * T + t - a->P];
            if (y != -100 && (y < 0 || y >= a->cfg.V))
                return afx_fail(e, "loss: label %d at (b=%d, t=%d) is neither -100 nor in [0,%d)", y, b,
                                t - a->P, a->cfg.V);
            a->labels[(size_t)b * a->Tx + t] = y;
        }
    return 0;
}

int llama_loss(LlamaActs *a, const int *labels, int B, int T, double *loss_sum, long *count, afx_err *e) {
    if (extend_labels(a, labels, B, T, e)) return -1;
    // selected rows: row r of the compact logits predicts rlabels[r+1] (the loss's own shift, B = 1)
    const Kernels *K = a->kern;
    if (a->head_chunk) { // lm_head, loss and the loss's gradient of lnf_rows, head_chunk rows at a time
        int H = a->head_chunk, C = a->cfg.C, V = a->cfg.V;
        *loss_sum = 0, *count = 0;
        for (int r0 = 0; r0 < a->n_rows; r0 += H) {
            int len = a->n_rows - r0 < H ? a->n_rows - r0 : H;
            long cnt = 0;
            const real *x = a->lnf_rows + (size_t)r0 * C;
            real *dx = a->dlnf_rows + (size_t)r0 * C;
            llama_linear_forward(K, a->head_w, LT_LM_HEAD, 0, a->logits, x, len, C, V);
            // row t of the chunk predicts rlabels[r0 + t + 1] (the shift as in the whole-rows call)
            *loss_sum += K->crossentropy_forward(&cnt, a->logits, a->rlabels + r0, 1, len + 1, V);
            *count += cnt;
            memset(a->dlogits_chunk, 0, (size_t)(len + 1) * V * sizeof(real)); // (the backward accumulates)
            K->crossentropy_backward(a->dlogits_chunk, a->logits, a->rlabels + r0, 1.0, 1, len + 1, V);
            memset(dx, 0, (size_t)len * C * sizeof(real));
            llama_linear_backward_dx(K, a->head_w, LT_LM_HEAD, 0, dx, a->dlogits_chunk, len, C, V);
        }
        return 0;
    }
    if (a->rows_cap) *loss_sum = K->crossentropy_forward(count, a->logits, a->rlabels, 1, a->n_rows + 1, a->cfg.V);
    else *loss_sum = K->crossentropy_forward(count, a->logits, a->labels, B, a->Tx, a->cfg.V);
    return 0;
}

long llama_count_targets(const int *labels, int B, int T, int P) {
    long n = 0;
    for (int b = 0; b < B; b++)
        for (int t = P > 0 ? -1 : 0; t + 1 < T; t++) n += labels[(size_t)b * T + t + 1] != -100;
    return n;
}

int llama_select_rows(LlamaActs *a, const int *labels, int B, int T, afx_err *e) {
    if (!a->rows_cap) return 0; // every row is computed
    if (extend_labels(a, labels, B, T, e)) return -1;
    int n = 0, Tx = a->Tx;
    a->rlabels[0] = -100;
    for (int b = 0; b < B; b++)
        for (int t = 0; t + 1 < Tx; t++) {
            int y = a->labels[(size_t)b * Tx + t + 1];
            if (y == -100) continue;
            if (n == a->rows_cap)
                return afx_fail(e, "forward: more than the %d rows with a kept target the activations were made for",
                                a->rows_cap);
            a->rows[n] = b * Tx + t;
            a->rlabels[n + 1] = y;
            n++;
        }
    a->n_rows = n;
    return 0;
}

long llama_count_items(const int *labels, int B, int T) {
    long n = 0;
    for (size_t i = 0; i < (size_t)B * T; i++) n += labels[i] != -100;
    return n;
}

/* -------------------------------------------------------------------------------------------- */
/* backward                                                                                      */

/* gradient slot of a tensor, or NULL when the base is frozen (g == NULL) */
static real *gslot(LlamaParams *g, int kind, int layer) {
    return g ? llama_tensor_ptr(g, kind, layer) : NULL;
}

/* the lm_head's backward: dx (N,C) += dlogits W; dW += dlogits^T x unless the weight is kept in blocks */
static void lm_head_bwd(const Kernels *K, const LlamaParams *w, real *dx, real *dW, const real *dlogits, const real *x,
                        int N) {
    const QMat *q = llama_tensor_q(w, LT_LM_HEAD, 0);
    if (q) K->qmatmul_backward(dx, dlogits, q, N);
    else K->matmul_backward(dx, dW, dlogits, x, w->t[LT_LM_HEAD], N, w->cfg.C, w->cfg.V);
}

int llama_backward(const LlamaParams *w, LlamaParams *g, ModelHooks *s, LlamaActs *a, LlamaActGrads *da,
                   const int *labels, double scale, int B, int T, afx_err *e) {
    const LlamaConfig *c = &w->cfg;
    const Kernels *K = a->kern;
    if (B != a->B || T != a->T || B != da->B || T != da->T || a->Tx != da->Tx || a->S != da->S)
        return afx_fail(e, "backward: shape (B=%d, T=%d) does not match the activations (B=%d, T=%d) "
                           "or their gradients (B=%d, T=%d)", B, T, a->B, a->T, da->B, da->T);
    if (extend_labels(a, labels, B, T, e)) return -1;
    int Tx = a->Tx, P = a->P, S = a->S;
    size_t N = (size_t)B * Tx, C = c->C, FF = c->FF, V = c->V;
    size_t QD = (size_t)c->NH * c->HS, KD = (size_t)c->NKV * c->HS;
    memset(da->mem, 0, da->count * sizeof(real));

    BlockRun run = {K, w, a->normg, a->rope_cos, a->rope_sin, a->rope_lcos, a->rope_lsin, s, B, Tx};
    int gemma = c->arch == AFX_ARCH_GEMMA3;

    // loss -> logits -> final norm
    if (!a->rows_cap) {
        K->crossentropy_backward(da->dlogits, a->logits, a->labels, scale, B, Tx, (int)V);
        lm_head_bwd(K, w, da->dln, gslot(g, LT_LM_HEAD, 0), da->dlogits, a->lnf, (int)N);
    } else if (a->head_chunk) { // llama_loss left the unscaled gradient of lnf_rows (a frozen lm_head)
        if (gslot(g, LT_LM_HEAD, 0))
            return afx_fail(e, "backward: the head ran in chunks, which leaves no gradient for a trained lm_head");
        for (int r = 0; r < a->n_rows; r++) {
            real *d = da->dln + (size_t)a->rows[r] * C;
            const real *src = a->dlnf_rows + (size_t)r * C;
            for (size_t i = 0; i < C; i++) d[i] = (real)(scale * src[i]);
        }
    } else if (a->n_rows) { // the selected rows only; the others' logits have no gradient
        if (da->rows_cap != a->rows_cap)
            return afx_fail(e, "backward: activation gradients for %d selected rows, activations for %d",
                            da->rows_cap, a->rows_cap);
        K->crossentropy_backward(da->dlogits, a->logits, a->rlabels, scale, 1, a->n_rows + 1, (int)V);
        memset(a->dlnf_rows, 0, (size_t)a->n_rows * C * sizeof(real));
        lm_head_bwd(K, w, a->dlnf_rows, gslot(g, LT_LM_HEAD, 0), da->dlogits, a->lnf_rows, a->n_rows);
        for (int r = 0; r < a->n_rows; r++) // scatter into the (zeroed) gradient of the final norm's output
            memcpy(da->dln + (size_t)a->rows[r] * C, a->dlnf_rows + (size_t)r * C, C * sizeof(real));
    }
    const real *x_last = a->out + (size_t)(c->L - 1) * N * C;
    K->rmsnorm_backward(da->dres, gslot(g, LT_LNF, 0), da->dln, x_last, block_norm(&run, LT_LNF, 0), a->lnf_rstd, (int)N, (int)C);

    for (int l = c->L - 1; l >= 0; l--) {
        size_t ll = (size_t)l;
        BlockActs ba;
        block_views(a, l, &ba);
        const real *x = l > 0 ? a->out + (ll - 1) * N * C : a->embed; // layer input
        int sliding = gemma && c->sliding[l];
        const real *cs = sliding ? a->rope_lcos : a->rope_cos, *sn = sliding ? a->rope_lsin : a->rope_sin;
        // da->dres holds d(loss)/d(out_l) on entry and d(loss)/d(x_l) on exit

        // out = res1 + mlp (Gemma: res1 + mn, mn = norm(mlp)): both get dres
        memcpy(da->dres1, da->dres, N * C * sizeof(real));
        const real *dmlp = da->dres;
        if (gemma) { // mn = rms(mlp) (1 + w)
            memset(da->dbr, 0, N * C * sizeof(real));
            K->rmsnorm_backward(da->dbr, gslot(g, LT_MNORM, l), da->dres, ba.mlp, block_norm(&run, LT_MNORM, l), ba.mn_rstd, (int)N, (int)C);
            dmlp = da->dbr;
        }
        // mlp = down(act); act = silu|gelu_tanh(gate) * up; gate, up = ln2 Wg^T, ln2 Wu^T
        memset(da->dswiglu, 0, N * FF * sizeof(real));
        linear_bwd(K, s, w, LT_WD, l, LIN_DOWN, da->dswiglu, gslot(g, LT_WD, l), dmlp, ba.act, N, FF, C);
        memset(da->dgate, 0, N * FF * sizeof(real));
        memset(da->dup, 0, N * FF * sizeof(real));
        if (gemma) K->geglu_backward(da->dgate, da->dup, da->dswiglu, ba.gate, ba.up, N * FF);
        else K->swiglu_backward(da->dgate, da->dup, da->dswiglu, ba.gate, ba.up, N * FF);
        memset(da->dln, 0, N * C * sizeof(real));
        linear_bwd(K, s, w, LT_WG, l, LIN_GATE, da->dln, gslot(g, LT_WG, l), da->dgate, ba.ln2, N, C, FF);
        linear_bwd(K, s, w, LT_WU, l, LIN_UP, da->dln, gslot(g, LT_WU, l), da->dup, ba.ln2, N, C, FF);
        // ln2 = norm(res1)
        K->rmsnorm_backward(da->dres1, gslot(g, LT_LN2, l), da->dln, ba.res1, block_norm(&run, LT_LN2, l), ba.ln2_rstd, (int)N, (int)C);

        // res1 = x + o (Gemma: x + on, on = norm(o)): dres (now for x) = dres1, the branch gets dres1
        memcpy(da->dres, da->dres1, N * C * sizeof(real));
        const real *dout_o = da->dres1;
        if (gemma) {
            memset(da->dbr, 0, N * C * sizeof(real));
            K->rmsnorm_backward(da->dbr, gslot(g, LT_ONORM, l), da->dres1, ba.o, block_norm(&run, LT_ONORM, l), ba.on_rstd, (int)N, (int)C);
            dout_o = da->dbr;
        }
        memset(da->datt_out, 0, N * QD * sizeof(real));
        linear_bwd(K, s, w, LT_WO, l, LIN_O, da->datt_out, gslot(g, LT_WO, l), dout_o, ba.att_out, N, QD, C);
        memset(da->dq_rope, 0, N * QD * sizeof(real));
        memset(da->dk_rope, 0, N * KD * sizeof(real));
        memset(da->dv, 0, N * KD * sizeof(real));
        // adapter terms added to att_out (Llama-Adapter) send gradient to q_rope and their params
        hooks_attn_backward(s, w, l, da->dq_rope, da->datt_out, ba.qr, B, Tx);
        int Pl = s ? hooks_prefix_len(s, l) : 0;
        AttnSpec sp = block_attn_spec(c, l, Pl > 0 && hooks_prefix_exempt(s, l) ? Pl : 0);
        if (Pl == 0) {
            K->attention_backward(da->dq_rope, da->dk_rope, da->dv, da->datt, da->datt_out, ba.qr, ba.kr, ba.v, ba.lse,
                                  a->mask, &sp, B, Tx, Tx, c->NH, c->NKV, c->HS);
        } else {
            // keys were [K_pre ; RoPE(k)]: split the gradient between the prefix and the real keys
            int Sl = Pl + Tx;
            const real *kc = a->kcat + ll * (size_t)B * S * KD, *vc = a->vcat + ll * (size_t)B * S * KD;
            memset(da->dkcat, 0, (size_t)B * Sl * KD * sizeof(real));
            memset(da->dvcat, 0, (size_t)B * Sl * KD * sizeof(real));
            K->attention_backward(da->dq_rope, da->dkcat, da->dvcat, da->datt, da->datt_out, ba.qr, kc, vc, ba.lse,
                                  prefix_keymask(a, Pl), &sp, B, Tx, Sl, c->NH, c->NKV, c->HS);
            hooks_kv_backward(s, l, da->dkcat, da->dvcat, B, Sl);
            for (int b = 0; b < B; b++)
                for (size_t j = 0; j < (size_t)Tx * KD; j++) {
                    da->dk_rope[(size_t)b * Tx * KD + j] += da->dkcat[((size_t)b * Sl + Pl) * KD + j];
                    da->dv[(size_t)b * Tx * KD + j] += da->dvcat[((size_t)b * Sl + Pl) * KD + j];
                }
        }
        memset(da->dq, 0, N * QD * sizeof(real));
        memset(da->dk, 0, N * KD * sizeof(real));
        if (gemma) { // q_rope = RoPE(q_norm(q)): through RoPE, then the per-head norms
            memset(da->dqn, 0, N * QD * sizeof(real));
            memset(da->dkn, 0, N * KD * sizeof(real));
            K->rope_backward(da->dqn, da->dq_rope, cs, sn, (int)N, c->NH, c->HS);
            K->rope_backward(da->dkn, da->dk_rope, cs, sn, (int)N, c->NKV, c->HS);
            K->rmsnorm_backward(da->dq, gslot(g, LT_QNORM, l), da->dqn, ba.q, block_norm(&run, LT_QNORM, l), ba.qn_rstd,
                                (int)N * c->NH, c->HS);
            K->rmsnorm_backward(da->dk, gslot(g, LT_KNORM, l), da->dkn, ba.k, block_norm(&run, LT_KNORM, l), ba.kn_rstd,
                                (int)N * c->NKV, c->HS);
        } else {
            K->rope_backward(da->dq, da->dq_rope, cs, sn, (int)N, c->NH, c->HS);
            K->rope_backward(da->dk, da->dk_rope, cs, sn, (int)N, c->NKV, c->HS);
        }
        memset(da->dln, 0, N * C * sizeof(real));
        linear_bwd(K, s, w, LT_WQ, l, LIN_Q, da->dln, gslot(g, LT_WQ, l), da->dq, ba.ln1, N, C, QD);
        linear_bwd(K, s, w, LT_WK, l, LIN_K, da->dln, gslot(g, LT_WK, l), da->dk, ba.ln1, N, C, KD);
        linear_bwd(K, s, w, LT_WV, l, LIN_V, da->dln, gslot(g, LT_WV, l), da->dv, ba.ln1, N, C, KD);
        // ln1 = norm(x)
        K->rmsnorm_backward(da->dres, gslot(g, LT_LN1, l), da->dln, x, block_norm(&run, LT_LN1, l), ba.ln1_rstd, (int)N, (int)C);
    }
    // embeddings: the virtual rows belong to the prompt adapter, the real rows to the table
    // (Gemma: x = E[id] * s, so dE[id] += s * dx)
    hooks_embed_backward(s, da->dres, B, Tx);
    real es = llama_embed_scale(c);
    for (int b = 0; b < B; b++) {
        real *dxb = da->dres + ((size_t)b * Tx + P) * C;
        if (es != 1)
            for (size_t i = 0; i < (size_t)T * C; i++) dxb[i] *= es;
        embedding_backward(gslot(g, LT_EMBED, 0), dxb, a->ids + (size_t)b * T, T, (int)C);
    }
    hooks_end_backward(s, w);
    return 0;
}
