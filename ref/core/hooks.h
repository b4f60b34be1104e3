/* hooks.h — the model's extension points: the places of the block where an adaptation method acts.
 *
 * The core owns this interface, as it owns the kernel table (kernels.h): the model (llama.c,
 * block.c, decode.c) calls it; ref/adapters implements it (AdapterSet, adapter.h) and depends on
 * the core, never the reverse. Every hook has a forward and, where it has parameters, a backward
 * that ACCUMULATES into their gradients, like every backward of ops.h.
 *
 *   tokens / embed_*      prompt tuning: P virtual tokens before the input
 *   prefix_len / kv_*     prefix tuning: P learned keys/values before a layer's real keys
 *   attn_*                Llama-Adapter: a gated attention over adapter tokens, added before o_proj
 *   linear_*              LoRA: y += s (x A^T) B^T at one of the seven linear sites
 *
 * A NULL ModelHooks* means the plain model; the hooks_* functions below handle it.
 */
#ifndef AFFIX_HOOKS_H
#define AFFIX_HOOKS_H

#include "err.h"
#include "llama.h"
#include "real.h"

/* the linear layers of a block, where LoRA may act */
typedef enum { LIN_Q, LIN_K, LIN_V, LIN_O, LIN_GATE, LIN_UP, LIN_DOWN, LIN_COUNT } lin_site;
extern const char *const LIN_SITE_NAMES[LIN_COUNT]; /* "q" "k" "v" "o" "gate" "up" "down" */

typedef struct ModelHooks ModelHooks;

typedef struct {
    /* shapes: model tokens for T real ones; first real position; prefix keys of a layer; whether a
     * sliding window may cut that prefix (0) or never does (1) */
    int (*tokens)(const ModelHooks *h, int T);
    int (*position_offset)(const ModelHooks *h);
    int (*prefix_len)(const ModelHooks *h, int layer);
    int (*prefix_exempt)(const ModelHooks *h, int layer);
    /* (re)bind the hooks' own activations for a (B,T) batch */
    int (*bind)(ModelHooks *h, int B, int T, afx_err *e);
    void (*begin_forward)(ModelHooks *h, const LlamaParams *w);
    /* x (B,Tx,C): write rows 0..P-1 of each batch row; dx: their gradient */
    void (*embed_forward)(ModelHooks *h, real *x, int B, int Tx);
    void (*embed_backward)(ModelHooks *h, const real *dx, int B, int Tx);
    /* kcat, vcat (B,S,NKV*HS): write slots 0..P-1 of each batch row */
    void (*kv_forward)(ModelHooks *h, int layer, real *kcat, real *vcat, int B, int S);
    void (*kv_backward)(ModelHooks *h, int layer, const real *dkcat, const real *dvcat, int B, int S);
    /* att_out (B,Tx,NH*HS) += the adapter term; q_rope (B,Tx,NH*HS) are the model's queries */
    void (*attn_forward)(ModelHooks *h, const LlamaParams *w, int layer, real *att_out, const real *q_rope, int B,
                         int Tx);
    void (*attn_backward)(ModelHooks *h, const LlamaParams *w, int layer, real *dq_rope, const real *datt_out,
                          const real *q_rope, int B, int Tx);
    /* y (N,OC) += the adapter term of x (N,IC) at one linear layer */
    void (*linear_forward)(ModelHooks *h, int layer, lin_site site, real *y, const real *x, int N);
    void (*linear_backward)(ModelHooks *h, int layer, lin_site site, real *dx, const real *dy, const real *x, int N);
    /* 1: some layer's linear_backward at this site reads its input x (the activations keep it) */
    int (*linear_reads)(const ModelHooks *h, lin_site site);
    void (*end_backward)(ModelHooks *h, const LlamaParams *w);
} ModelHookOps;

struct ModelHooks {
    const ModelHookOps *ops;
    int B, T; /* the (B,T) the hooks' activations are bound for (0,0: none yet) */
};

/* ---- NULL-safe dispatch (hooks.c): what the model calls ----------------------------------------- */
int hooks_tokens(const ModelHooks *h, int T);
int hooks_position_offset(const ModelHooks *h);
int hooks_prefix_len(const ModelHooks *h, int layer);
int hooks_prefix_exempt(const ModelHooks *h, int layer);
int hooks_bind(ModelHooks *h, int B, int T, afx_err *e);
void hooks_begin_forward(ModelHooks *h, const LlamaParams *w);
void hooks_embed_forward(ModelHooks *h, real *x, int B, int Tx);
void hooks_embed_backward(ModelHooks *h, const real *dx, int B, int Tx);
void hooks_kv_forward(ModelHooks *h, int layer, real *kcat, real *vcat, int B, int S);
void hooks_kv_backward(ModelHooks *h, int layer, const real *dkcat, const real *dvcat, int B, int S);
void hooks_attn_forward(ModelHooks *h, const LlamaParams *w, int layer, real *att_out, const real *q_rope, int B,
                        int Tx);
void hooks_attn_backward(ModelHooks *h, const LlamaParams *w, int layer, real *dq_rope, const real *datt_out,
                         const real *q_rope, int B, int Tx);
void hooks_linear_forward(ModelHooks *h, int layer, lin_site site, real *y, const real *x, int N);
void hooks_linear_backward(ModelHooks *h, int layer, lin_site site, real *dx, const real *dy, const real *x, int N);
int hooks_linear_reads(const ModelHooks *h, lin_site site);
void hooks_end_backward(ModelHooks *h, const LlamaParams *w);

#endif
