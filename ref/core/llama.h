/* llama.h — the Llama-family decoder (HF LlamaForCausalLM semantics): config, named tensors,
 * arenas, forward, loss and backward over the whole model.
 *
 * Memory: every group of tensors lives in its own arena (one allocation, carved into named views):
 *   LlamaParams   — the base weights (frozen unless the method is full fine-tuning); the same
 *                   layout is reused for their gradients and AdamW moments when they are trained
 *   LlamaActs     — activations for one (B,T) shape, kept for the backward
 *   LlamaActGrads — activation gradients for one (B,T) shape (scratch reused across layers)
 * Every arena can be bound to caller-provided memory (llama_*_count + llama_*_bind) or allocated
 * (llama_*_alloc/free). Nothing here allocates during forward/backward.
 */
#ifndef AFFIX_LLAMA_H
#define AFFIX_LLAMA_H

#include <stddef.h>

#include "err.h"
#include "kernels.h"
#include "quant.h"
#include "real.h"

struct ModelHooks; /* hooks.h: the extension points the adaptation methods implement */

/* The block variant (design.md §2: a model family is a variant of the one block, chosen here).
 *   LLAMA:  x += o_proj(attn(rms(x) w));                x += down(silu(gate) * up)(rms(x) w)
 *   GEMMA3: x += rms(o_proj(attn(...)))(1+w), with rms(q)(1+w), rms(k)(1+w) per head before RoPE;
 *           x += rms(down(gelu_tanh(gate) * up)(rms(x)(1+w)))(1+w); embeddings scaled by sqrt(C);
 *           scores scaled by 1/sqrt(query_pre_attn_scalar); sliding-window layers with their own
 *           RoPE base (gemma3.md §4). Norm weights are kept as HF stores them (w; the multiplier is
 *           1 + w, formed once per forward). */
enum { AFX_ARCH_LLAMA = 0, AFX_ARCH_GEMMA3 = 1 };
#define AFX_MAX_LAYERS 256

typedef struct {
    int V, C, FF, L, NH, NKV, HS; /* vocab, hidden, intermediate, layers, heads, kv heads, head_dim */
    double eps;                   /* rms_norm_eps */
    double rope_theta;
    /* rope_scaling {"rope_type": "llama3"}: rope_factor > 0 turns it on */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor, rope_original_max_position;
    int tied;    /* tie_word_embeddings: lm_head IS embed_tokens */
    int max_pos; /* max_position_embeddings (positions must be below it) */
    int arch;    /* AFX_ARCH_LLAMA (0) or AFX_ARCH_GEMMA3 */
    /* Gemma 3 only (unused for Llama): */
    double query_pre_attn_scalar;           /* attention scores are scaled by 1/sqrt(this) */
    int sliding_window;                     /* W: a sliding layer's query sees index distance < W */
    double rope_local_theta;                /* RoPE base of the sliding layers (rope_theta: full) */
    unsigned char sliding[AFX_MAX_LAYERS];  /* 1 = layer l is a sliding-window layer */
} LlamaConfig;

/* the embedding multiplier: sqrt(C) rounded to the number type for Gemma 3, 1 for Llama */
real llama_embed_scale(const LlamaConfig *c);

/* 0 if the config is usable; otherwise a message naming the bad field. */
int llama_config_check(const LlamaConfig *c, afx_err *e);

/* ---- named tensors ---------------------------------------------------------------------------- */
enum {
    LT_EMBED,   /* model.embed_tokens.weight                  (V,C)            */
    LT_LN1,     /* model.layers.{l}.input_layernorm.weight     (L,C)            */
    LT_WQ,      /* model.layers.{l}.self_attn.q_proj.weight    (L,NH*HS,C)      */
    LT_WK,      /* model.layers.{l}.self_attn.k_proj.weight    (L,NKV*HS,C)     */
    LT_WV,      /* model.layers.{l}.self_attn.v_proj.weight    (L,NKV*HS,C)     */
    LT_WO,      /* model.layers.{l}.self_attn.o_proj.weight    (L,C,NH*HS)      */
    LT_LN2,     /* model.layers.{l}.post_attention_layernorm   (L,C)            */
    LT_WG,      /* model.layers.{l}.mlp.gate_proj.weight       (L,FF,C)         */
    LT_WU,      /* model.layers.{l}.mlp.up_proj.weight         (L,FF,C)         */
    LT_WD,      /* model.layers.{l}.mlp.down_proj.weight       (L,C,FF)         */
    /* Gemma 3 only (absent, 0 elements, for Llama). Gemma's LT_LN2 is pre_feedforward_layernorm. */
    LT_QNORM,   /* model.layers.{l}.self_attn.q_norm.weight    (L,HS)           */
    LT_KNORM,   /* model.layers.{l}.self_attn.k_norm.weight    (L,HS)           */
    LT_ONORM,   /* model.layers.{l}.post_attention_layernorm   (L,C) on the attention output */
    LT_MNORM,   /* model.layers.{l}.post_feedforward_layernorm (L,C) on the MLP output */
    LT_LNF,     /* model.norm.weight                           (C)              */
    LT_LM_HEAD, /* lm_head.weight                              (V,C), absent when tied */
    LT_COUNT
};

typedef struct {
    LlamaConfig cfg;
    real *t[LT_COUNT]; /* views into mem, indexed by LT_*; t[LT_LM_HEAD] == t[LT_EMBED] when tied */
    /* A kind kept in its file's block format (frozen weights, quant.h): q[kind][layer] (one entry for
     * the kinds that are not per layer), t[kind] NULL and no room in mem; set by the loader after
     * llama_params_bind_kept, owned by it. NULL: the kind is in mem. */
    const QMat *q[LT_COUNT];
    real *mem;         /* the arena */
    size_t count;      /* reals in the arena */
    int owns;          /* 1 if llama_params_alloc allocated mem */
} LlamaParams;

/* Per-layer tensors are stacked over L. For layer-wise kinds, `layer` selects one slice.
 * Writes the HF name and the shape of one tensor; returns 0, or -1 when the kind does not exist
 * (LT_LM_HEAD of a tied model) or the layer is out of range. */
int llama_tensor_info(const LlamaConfig *c, int kind, int layer, char *name, size_t namelen,
                      size_t shape[2], int *ndim);
int llama_tensor_is_per_layer(int kind);
/* 1 if the model has this tensor (not: a tied lm_head, Gemma's extra norms in a Llama model) */
int llama_tensor_exists(const LlamaConfig *c, int kind);
/* 1 for the norm weights (RMSNorm multipliers: w for Llama, 1 + w for Gemma 3) */
int llama_tensor_is_norm(int kind);
size_t llama_tensor_numel(const LlamaConfig *c, int kind); /* one layer's slice for per-layer kinds */
real *llama_tensor_ptr(const LlamaParams *p, int kind, int layer);

size_t llama_params_count(const LlamaConfig *c);
void llama_params_bind(LlamaParams *p, const LlamaConfig *c, real *mem);
/* the same without room for the kinds whose bit (1u << kind) is set in `kept` (their t[] is NULL;
 * the caller points q[] at them) */
size_t llama_params_count_kept(const LlamaConfig *c, unsigned kept);
void llama_params_bind_kept(LlamaParams *p, const LlamaConfig *c, real *mem, unsigned kept);
/* the block-format tensor (kind, layer), or NULL when it is in the arena */
const QMat *llama_tensor_q(const LlamaParams *p, int kind, int layer);
/* bytes of the weights as held: the arena's reals plus every kept tensor's blocks (once when tied) */
double llama_params_bytes(const LlamaParams *p);
/* y (N,OC) = x (N,IC) W^T for the matrix (kind, layer), in whatever form it is held */
void llama_linear_forward(const Kernels *K, const LlamaParams *w, int kind, int layer, real *y, const real *x,
                          int N, int IC, int OC);
/* dx (N,IC) += dy (N,OC) W for the matrix (kind, layer) (the input gradient; never dW) */
void llama_linear_backward_dx(const Kernels *K, const LlamaParams *w, int kind, int layer, real *dx, const real *dy,
                              int N, int IC, int OC);
/* rows ids[0..N-1] of the embedding matrix into out (N,C), decoded when it is kept in blocks */
void llama_embed_rows(const LlamaParams *w, const int *ids, int N, real *out);
int llama_params_alloc(LlamaParams *p, const LlamaConfig *c, afx_err *e); /* zero-filled */
void llama_params_free(LlamaParams *p);

/* ---- activations for one (B,T) --------------------------------------------------------------- */
/* T is the number of real tokens the caller passes; the model runs on Tx = P + T tokens when a
 * prompt-tuning adapter adds P virtual tokens (Tx = T otherwise). A layer with a prefix attends to
 * S_l = P_l + Tx keys; S is the largest S_l. */
typedef struct {
    LlamaConfig cfg;       /* the model these activations were made for */
    const Kernels *kern;   /* the kernels forward/backward run on (KERNELS_REF after bind) */
    int B, T, Tx, P, S;    /* batch, real tokens, model tokens, virtual tokens, max keys */
    int *ids;              /* (B,T) copy of the input ids, for the embedding backward */
    int *mask;             /* (B,Tx) 1 = real or virtual token, 0 = padding */
    int *pos;              /* (B,Tx) positions used by RoPE */
    int *labels;           /* (B,Tx) labels extended with -100 over virtual tokens */
    int *keymask;          /* (B,S) key mask of prefix layers: P_l ones, then mask */
    real *rope_cos;        /* (B,Tx,HS/2) cos of each token's position times inv_freq */
    real *rope_sin;        /* (B,Tx,HS/2) */
    real *rope_lcos, *rope_lsin; /* (B,Tx,HS/2) Gemma: the sliding layers' RoPE base */
    real *normg;           /* Gemma: every norm's multiplier 1 + w (see llama_norm_fill) */
    real *embed;           /* (B,Tx,C) residual stream entering layer 0 */
    real *ln1, *ln1_rstd;  /* (L,B,Tx,C), (L,B,Tx) */
    real *q, *k, *v;       /* (L,B,Tx,NH*HS), (L,B,Tx,NKV*HS) x2, before RoPE */
    real *qn, *qn_rstd;    /* Gemma: (L,B,Tx,NH*HS), (L,B*Tx*NH) q after q_norm */
    real *kn, *kn_rstd;    /* Gemma: (L,B,Tx,NKV*HS), (L,B*Tx*NKV) k after k_norm */
    real *q_rope, *k_rope; /* (L,B,Tx,NH*HS), (L,B,Tx,NKV*HS) after RoPE */
    real *kcat, *vcat;     /* (L,B,S,NKV*HS) [prefix ; real] keys and values of prefix layers */
    real *lse;             /* (L,B,NH,Tx) each query's log-sum-exp of its scaled scores (the backward
                              recomputes the probabilities from it) */
    real *att;             /* (L, B,NH,Tx,S_l) attention probabilities, layer l at l*B*NH*Tx*S: the plain
                              layout only (llama_acts_bind / _alloc, the golden path); NULL otherwise */
    real *att_out;         /* (L,B,Tx,NH*HS) P.V (+ adapter terms), the input of o_proj */
    real *o;               /* (L,B,Tx,C) o_proj output */
    real *on, *on_rstd;    /* Gemma: (L,B,Tx,C), (L,B*Tx) post_attention_layernorm(o) */
    real *res1;            /* (L,B,Tx,C) x + o (Gemma: x + on) */
    real *ln2, *ln2_rstd;  /* (L,B,Tx,C), (L,B,Tx) */
    real *gate, *up;       /* (L,B,Tx,FF) */
    real *swiglu;          /* (L,B,Tx,FF) act(gate) * up: SiLU (Llama), GELU-tanh (Gemma) */
    real *mlp;             /* (L,B,Tx,C) down_proj output */
    real *mn, *mn_rstd;    /* Gemma: (L,B,Tx,C), (L,B*Tx) post_feedforward_layernorm(mlp) */
    real *out;             /* (L,B,Tx,C) layer output: res1 + mlp (Gemma: res1 + mn) */
    real *lnf, *lnf_rstd;  /* (B,Tx,C), (B,Tx) final norm */
    real *logits;          /* (B,Tx,V); with rows_cap > 0: (rows_cap+1, V), the selected rows only */
    /* Logits only where they are used (rows_cap > 0, the _rows allocators): lm_head, softmax and
     * cross-entropy run on the rows whose shifted target is kept (llama_select_rows); no (B,Tx,V)
     * buffer exists. rows_cap = 0: every row, as HF computes them (golden tests, generation). */
    int rows_cap, n_rows;
    int *rows;             /* (rows_cap) the selected model rows b*Tx + t */
    int *rlabels;          /* (rows_cap+1) rlabels[r+1] = the target of row r (the loss's shift) */
    real *lnf_rows;        /* (rows_cap, C) the final norm's output on those rows */
    real *dlnf_rows;       /* (rows_cap, C) its gradient */
    /* The head in chunks (head_chunk > 0, the _chunk binders, when more rows than a chunk qualify):
     * the logits exist head_chunk rows at a time. llama_forward stops at lnf_rows; llama_loss runs
     * lm_head, the cross-entropy and its gradient chunk by chunk, leaving the unscaled gradient of
     * lnf_rows in dlnf_rows; llama_backward scales it. For a frozen lm_head only (no dW). */
    int head_chunk;
    real *dlogits_chunk;   /* (head_chunk+1, V) */
    /* Views the backward never reads share one layer's slot (LLAMA_ACTS_TRAIN, the _chunk binders):
     * a bit per view (LLAMA_SH_*) set = every layer writes the same (B,Tx,..) slice. */
    unsigned shared;
    const LlamaParams *head_w; /* the weights of the last llama_forward (the chunked head's lm_head) */
    void *mem;
    size_t bytes;
    int owns;
} LlamaActs;

/* s = the adapters (NULL: the plain model); they change Tx and S */
size_t llama_acts_bytes(const LlamaConfig *c, const struct ModelHooks *s, int B, int T);
void llama_acts_bind(LlamaActs *a, const LlamaConfig *c, const struct ModelHooks *s, int B, int T,
                     void *mem);
int llama_acts_alloc(LlamaActs *a, const LlamaConfig *c, const struct ModelHooks *s, int B, int T,
                     afx_err *e);
/* the same with logits for at most rows_cap selected rows (0 = every row) */
size_t llama_acts_bytes_rows(const LlamaConfig *c, const struct ModelHooks *s, int B, int T, int rows_cap);
void llama_acts_bind_rows(LlamaActs *a, const LlamaConfig *c, const struct ModelHooks *s, int B, int T,
                          int rows_cap, void *mem);
/* the same with the head in chunks of head_chunk rows (0: not; see head_chunk), and the layout of
 * `flags`: LLAMA_ACTS_TRAIN keeps one layer's slot (not L) of each view the backward does not read
 * (Gemma's q_norm / k_norm / post-norm outputs, Llama's q and k before RoPE: their backwards need
 * only the norms' inputs and rstd); with LLAMA_ACTS_FROZEN too (the base has no gradient), also of
 * the inputs of the linear layers whose weight gradient is not formed (ln1, ln2, act) unless an
 * adapter's hook at that site reads its input (hooks_linear_reads: LoRA's A gradient). The
 * forward's results are the same; only intermediate views of earlier layers are overwritten. */
#define LLAMA_HEAD_CHUNK 64
enum { LLAMA_ACTS_TRAIN = 1, LLAMA_ACTS_FROZEN = 2 };
enum { LLAMA_SH_Q = 1, LLAMA_SH_K = 2, LLAMA_SH_QN = 4, LLAMA_SH_KN = 8, LLAMA_SH_ON = 16, LLAMA_SH_MN = 32,
       LLAMA_SH_LN1 = 64, LLAMA_SH_LN2 = 128, LLAMA_SH_ACT = 256 };
size_t llama_acts_bytes_chunk(const LlamaConfig *c, const struct ModelHooks *s, int B, int T, int rows_cap, int head_chunk,
                              unsigned flags);
void llama_acts_bind_chunk(LlamaActs *a, const LlamaConfig *c, const struct ModelHooks *s, int B, int T, int rows_cap,
                           int head_chunk, unsigned flags, void *mem);
/* Selects the rows whose logits the loss uses: those whose shifted target (labels, extended over
 * virtual tokens) is kept. Call before llama_forward on activations with rows_cap > 0, with the
 * labels that llama_loss and llama_backward will get; fails when more than rows_cap rows qualify. */
int llama_select_rows(LlamaActs *a, const int *labels, int B, int T, afx_err *e);
/* kept shifted targets of labels (B,T) with P virtual tokens in front (then labels[0] is a target
 * too, predicted by the last virtual token): the rows llama_select_rows picks */
long llama_count_targets(const int *labels, int B, int T, int P);
void llama_acts_free(LlamaActs *a);

/* ---- activation gradients for one (B,T), reused layer after layer ----------------------------- */
typedef struct {
    LlamaConfig cfg;
    int B, T, Tx, S, rows_cap;
    real *dres;            /* (B,Tx,C) gradient of the residual stream */
    real *dres1;           /* (B,Tx,C) gradient w.r.t. res1 of the current layer */
    real *dln;             /* (B,Tx,C) gradient w.r.t. a norm output */
    real *dq, *dk, *dv;    /* (B,Tx,NH*HS), (B,Tx,NKV*HS) x2, before RoPE */
    real *dqn, *dkn;       /* Gemma: gradients of q_norm's / k_norm's outputs */
    real *dbr;             /* Gemma: (B,Tx,C) gradient of a branch output before its norm */
    real *dq_rope, *dk_rope;
    real *dkcat, *dvcat;   /* (B,S,NKV*HS) gradients of [prefix ; real] keys/values */
    real *datt;            /* (B,NKV,2,S) scratch of attention_backward (attention_scratch_count) */
    real *datt_out;        /* (B,Tx,NH*HS) */
    real *dgate, *dup, *dswiglu; /* (B,Tx,FF) */
    real *dlogits;         /* (B,Tx,V); (rows_cap+1, V) for activations with selected rows */
    real *mem;
    size_t count;
    int owns;
} LlamaActGrads;

size_t llama_actgrads_count(const LlamaConfig *c, const struct ModelHooks *s, int B, int T);
/* the same for activations with rows_cap selected rows (0 = every row) */
size_t llama_actgrads_count_rows(const LlamaConfig *c, const struct ModelHooks *s, int B, int T, int rows_cap);
void llama_actgrads_bind_rows(LlamaActGrads *d, const LlamaConfig *c, const struct ModelHooks *s, int B, int T,
                              int rows_cap, real *mem);
size_t llama_actgrads_count_chunk(const LlamaConfig *c, const struct ModelHooks *s, int B, int T, int rows_cap,
                                  int head_chunk);
void llama_actgrads_bind_chunk(LlamaActGrads *d, const LlamaConfig *c, const struct ModelHooks *s, int B, int T,
                               int rows_cap, int head_chunk, real *mem);
void llama_actgrads_bind(LlamaActGrads *d, const LlamaConfig *c, const struct ModelHooks *s, int B,
                         int T, real *mem);
int llama_actgrads_alloc(LlamaActGrads *d, const LlamaConfig *c, const struct ModelHooks *s, int B,
                         int T, afx_err *e);
void llama_actgrads_free(LlamaActGrads *d);

/* ---- the model ----------------------------------------------------------------------------- */
/* ids, mask, pos are (B,T) over the real tokens. mask (1 = real token) may be NULL (all real); pos
 * may be NULL, which means offset..offset+T-1 on every row (HF: position_ids = cache_position, not
 * derived from the mask; offset = 0, or P with a prefix, or P for the real tokens of a prompt).
 * s = the adapters (NULL: the plain model); their activations must be bound for the same (B,T).
 * Fails (with both shapes in the message) when (B,T) differs from the shape `a` was made for, and
 * when an id or a position is out of range. */
int llama_forward(const LlamaParams *w, struct ModelHooks *s, LlamaActs *a, const int *ids,
                  const int *mask, const int *pos, int B, int T, afx_err *e);

/* Causal-LM loss over a->logits for labels (B,T) of the real tokens (extended with -100 over
 * virtual tokens): *loss_sum = sum of CE over kept targets, *count = kept targets.
 * The mean loss is loss_sum/count; HF Trainer's variant is loss_sum/num_items. */
int llama_loss(LlamaActs *a, const int *labels, int B, int T, double *loss_sum, long *count,
               afx_err *e);

/* Backward of scale * loss_sum (scale = 1/count for the mean). Accumulates into g (same layout as
 * w; for a tied model the embedding receives both its uses) and into the adapters' gradients;
 * g may be NULL when the base is frozen. da is scratch. */
int llama_backward(const LlamaParams *w, LlamaParams *g, struct ModelHooks *s, LlamaActs *a,
                   LlamaActGrads *da, const int *labels, double scale, int B, int T, afx_err *e);

/* Number of labels != -100 on the UNshifted labels (HF Trainer's num_items_in_batch). */
long llama_count_items(const int *labels, int B, int T);

#endif
