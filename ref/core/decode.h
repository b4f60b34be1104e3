/* decode.h — inference with a KV cache: prefill a prompt, then one token at a time.
 *
 * The same block (block.c) and adapter hooks as llama_forward, without the activations kept for a
 * backward: each layer's rotated keys and values are appended to a cache and every new query
 * attends to the cache (HF semantics: cached keys are stored rotated and never re-rotated).
 * With adapters: prefix keys/values occupy the first P rows of the cache of their layers (masked
 * out in the other layers); a prompt's virtual tokens are prepended at the first call; LoRA and
 * Llama-Adapter act on every call. The logits equal llama_forward's on the same sequence.
 */
#ifndef AFFIX_DECODE_H
#define AFFIX_DECODE_H

#include "err.h"
#include "llama.h"

struct ModelHooks;

typedef struct {
    LlamaConfig cfg;
    const Kernels *kern; /* the kernels it runs on (KERNELS_REF after alloc) */
    int B;           /* rows decoded together */
    int cap;         /* cache rows per batch row (prefix + virtual + real tokens) */
    int chunk;       /* most tokens processed per call (longer inputs are split) */
    int P_prefix;    /* rows reserved for prefix keys/values */
    int P_prompt;    /* virtual tokens of a prompt adapter (added at the first call) */
    int used;        /* rows filled (prefix included) */
    int next_pos;    /* position of the next token */
    int last_only;   /* 1: logits only for the last token of each row (what generation reads); 0: all */
    /* an optional observer of the residual stream (representation probes): called with layer l's
     * input x (B, Tx, C) for l = 0..L-1 (l = 0: the scaled embeddings) and with l = L after the
     * last block, before the final norm; the first Pv rows of each batch row are virtual tokens */
    void (*observe)(void *ctx, int l, const real *x, int B, int Tx, int Pv);
    void *observe_ctx;
    real *k, *v;     /* (L, B, R, NKV*HS), R = P_prefix + cap slots per row: prefix rows, then tokens */
    int *keymask;    /* (B, R) 1 = the slot may be attended (prefix slots: 1) */
    /* scratch for one chunk of Tc <= chunk (+ virtual) tokens: the block's views (block.h) */
    int *pos;        /* (B, Tc) */
    real *rope_cos, *rope_sin, *rope_lcos, *rope_lsin; /* (B, Tc, HS/2) (local: Gemma) */
    real *normg;     /* Gemma: the norms' multipliers 1 + w */
    real *x;         /* (B, Tc, C) the residual stream (res1 and out alias it) */
    real *rstd, *ln, *q, *kp, *vp, *qn, *qn_rstd, *kn, *kn_rstd, *qr, *kr, *att_out, *o, *on, *on_rstd;
    real *gate, *up, *sw, *mlp, *mn, *mn_rstd; /* (B, Tc, ...) */
    real *lse;       /* (NH, Tc) one batch row at a time */
    real *logits;    /* (B, Tc, V) */
    void *mem;
} LlamaCache;

/* cap: total tokens per row the cache can hold (prompt + generated, not counting adapter rows);
 * chunk: at most this many tokens per llama_decode call are computed at once (0 = cap). */
int llama_cache_alloc(LlamaCache *c, const LlamaConfig *cfg, struct ModelHooks *s, int B, int cap, int chunk,
                      afx_err *e);
void llama_cache_free(LlamaCache *c);
/* forget every token (keeps the allocation); the next call starts a new sequence */
void llama_cache_reset(LlamaCache *c);

/* back to an earlier state of the same sequence: the first `used` rows (LlamaCache.used, read after
 * the call to return to) stay, later rows are forgotten; positions continue from there. Used to
 * score several continuations of one prompt without recomputing the prompt. */
int llama_cache_rewind(LlamaCache *c, int used, int next_pos, afx_err *e);

/* Feeds T new tokens per row: ids (B,T); mask (B,T) 1 = real (NULL: all real). Positions continue
 * from the previous call. On return c->logits holds (B, Tc, V) for the last chunk processed
 * (with last_only set, only the rows' last tokens are computed; the other rows are stale);
 * *last points to the logits of the last token of row 0 (row b: *last + b*Tc*V). */
int llama_decode(const LlamaParams *w, struct ModelHooks *s, LlamaCache *c, const int *ids, const int *mask,
                 int T, const real **last, int *Tc, afx_err *e);

#endif
