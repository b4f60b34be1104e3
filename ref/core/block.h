/* block.h — the one decoder block forward, shared by the training forward (llama.c) and the
 * KV-cache decode (decode.c). Internal to ref/core.
 *
 * What it is: one layer of the model over Tx new tokens of B rows, whose keys and values are
 * written into a key store (the layer's own keys, the [prefix ; keys] concatenation of a prefix
 * layer, or a decode cache) and attended there. The Llama/Gemma 3 variant comes from the config.
 * What it is not: the backward (llama_backward walks the same views in reverse).
 */
#ifndef AFFIX_BLOCK_H
#define AFFIX_BLOCK_H

#include "llama.h"
#include "ops.h"

struct ModelHooks;

/* One layer's activations for N = B*Tx rows: views into LlamaActs (training) or decode scratch.
 * Gemma-only views are NULL for Llama. */
typedef struct {
    real *ln1, *ln1_rstd;        /* (N,C), (N)           input norm */
    real *q, *k, *v;             /* (N,QD), (N,KD) x2    projections */
    real *qn, *qn_rstd;          /* (N,QD), (N*NH)       Gemma: q_norm(q) */
    real *kn, *kn_rstd;          /* (N,KD), (N*NKV)      Gemma: k_norm(k) */
    real *qr, *kr;               /* (N,QD), (N,KD)       after RoPE */
    real *lse;                   /* (B,NH,Tx) log-sum-exp of each query's scores; lse_shared: one (NH,Tx) per row */
    int lse_shared;
    real *att;                   /* NULL, or (B,NH,Tx,S) the probabilities too (the golden/debug path) */
    real *att_out;               /* (N,QD)               P.V (+ adapter terms) */
    real *o;                     /* (N,C)                o_proj output */
    real *on, *on_rstd;          /* (N,C), (N)           Gemma: post_attention_layernorm(o) */
    real *res1;                  /* (N,C)                x + o (Gemma: x + on); may alias x */
    real *ln2, *ln2_rstd;        /* (N,C), (N)           pre-MLP norm */
    real *gate, *up, *act;       /* (N,FF)               act = silu/gelu_tanh(gate) * up */
    real *mlp;                   /* (N,C)                down_proj output */
    real *mn, *mn_rstd;          /* (N,C), (N)           Gemma: post_feedforward_layernorm(mlp) */
    real *out;                   /* (N,C)                res1 + mlp (Gemma: res1 + mn); may alias res1 */
} BlockActs;

/* Where a layer's keys/values live: row b's slot j is k + (b*stride + j)*KD. This call's Tx new keys
 * go to slots row0..row0+Tx-1 (not copied when they already are there); queries attend to slots
 * 0..row0+Tx-1, query t sitting at slot row0 + t (the window counts slots). */
typedef struct {
    real *k, *v;   /* (B,stride,KD) */
    int *mask;     /* (B,stride) 1 = may be attended */
    int stride;    /* slots between batch rows */
    int row0;      /* slot of this call's first token */
    int exempt;    /* leading slots a sliding window never cuts (a prefix kept visible) */
} KeyStore;

/* What every layer of one forward shares. */
typedef struct {
    const Kernels *K;
    const LlamaParams *w;
    const real *normg;            /* Gemma: the 1 + w multipliers (llama_norm_fill); NULL for Llama */
    const real *cos, *sin;        /* (N,HS/2) RoPE of the full-attention (Llama: every) layer */
    const real *lcos, *lsin;      /* (N,HS/2) Gemma: RoPE of the sliding layers */
    struct ModelHooks *s;         /* the adapters' hooks (NULL: none) */
    int B, Tx;
} BlockRun;

/* the norm multiplier of tensor `kind` (a norm) at layer l: w (Llama) or 1 + w (Gemma) */
const real *block_norm(const BlockRun *r, int kind, int l);
/* the attention variant of layer l (scale, window) */
AttnSpec block_attn_spec(const LlamaConfig *c, int l, int exempt);
/* one layer: a->out from x (N,C) */
void block_forward(const BlockRun *r, int l, const BlockActs *a, const real *x, const KeyStore *ks);

/* Where layer l's activations and keys live: the caller's answer (training: the layer's slices of
 * LlamaActs and its prefix concatenation; decoding: shared scratch and the cache). */
typedef void (*BlockPlace)(void *ctx, int l, BlockActs *a, KeyStore *ks);
/* THE layer loop: every layer in order from the residual stream x; returns the last layer's output */
const real *blocks_forward(const BlockRun *r, const real *x, BlockPlace place, void *ctx);

/* Gemma's multipliers 1 + w of every norm (count reals, layout of llama_norm_fill) */
size_t llama_norm_count(const LlamaConfig *c);
void llama_norm_fill(real *normg, const LlamaParams *w);
/* RoPE tables of positions pos (N): global (and local for Gemma); 0 or -1 for a head_dim too large */
int llama_rope_tables(const LlamaConfig *c, const int *pos, int N, real *cos, real *sin, real *lcos, real *lsin);

#endif
