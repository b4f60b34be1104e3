/* ops.h — the forward/backward pairs of the Llama block, scalar reference.
 *
 * Grammar (after llm.c):  op_forward(out, cache..., inp, params..., dims)
 *                         op_backward(dinp, dparams..., dout, inp, params, cache..., dims)
 * Every backward ACCUMULATES (+=) into its gradient outputs; the caller zeroes them. A gradient
 * output may be NULL when the caller does not need it (e.g. dw of a frozen weight).
 * Shapes use the alphabet of real.h. No function here allocates, prints or fails.
 */
#ifndef AFFIX_OPS_H
#define AFFIX_OPS_H

#include <math.h>
#include <stddef.h>

#include "quant.h"
#include "real.h"

/* ---- embedding: out[n] = wte[ids[n]] ------------------------------------------------------- */
void embedding_forward(real *out, const int *ids, const real *wte, int N, int C);
void embedding_backward(real *dwte, const real *dout, const int *ids, int N, int C);

/* ---- RMSNorm (HF LlamaRMSNorm): out = w * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps) ----------- */
void rmsnorm_forward(real *out, real *rstd, const real *inp, const real *w, int N, int C, double eps);
void rmsnorm_backward(real *dinp, real *dw, const real *dout, const real *inp, const real *w,
                      const real *rstd, int N, int C);

/* ---- linear without bias: out = inp W^T, W is (OC,IC) as nn.Linear stores it ----------------- */
void matmul_forward(real *out, const real *inp, const real *w, int N, int IC, int OC);
void matmul_backward(real *dinp, real *dw, const real *dout, const real *inp, const real *w, int N,
                     int IC, int OC);
/* the same with W kept in a block format (quant.h): W = decode(w), (OC,IC) = (w->rows, w->cols);
 * bit for bit matmul_forward / matmul_backward's dinp on the decoded matrix (a frozen W: no dW) */
void qmatmul_forward(real *out, const real *inp, const QMat *w, int N);
void qmatmul_backward(real *dinp, const real *dout, const QMat *w, int N);

/* ---- RoPE, HF rotate-half convention: pairs (j, j+HS/2) rotate by angle pos*inv_freq[j] -------- */
/* inv_freq (HS/2) in double from rope_theta, with the "llama3" frequency scaling when factor > 0. */
void rope_inv_freq(double *inv_freq, int HS, double theta, double factor, double low_freq_factor,
                   double high_freq_factor, double original_max_position);
/* cos/sin (N,HS/2) for the positions pos (N). */
void rope_table(real *cos_t, real *sin_t, const int *pos, const double *inv_freq, int N, int HS);
/* inp/out (N,NH,HS); out may not alias inp. */
void rope_forward(real *out, const real *inp, const real *cos_t, const real *sin_t, int N, int NH,
                  int HS);
void rope_backward(real *dinp, const real *dout, const real *cos_t, const real *sin_t, int N, int NH,
                   int HS);

/* ---- causal self-attention with GQA, padding mask and a key offset ---------------------------- */
/* The variant of a layer's attention (NULL = Llama: scale 1/sqrt(HS), no window).
 * Gemma 3: scale 1/sqrt(query_pre_attn_scalar); sliding layers see a key only while the index
 * distance (t + S - T) - s is below the window (so exactly `window` keys, the query's own included). */
typedef struct {
    double scale; /* scores = (q.k) * scale; 0 means 1/sqrt(HS) */
    int window;   /* > 0: key s visible to query t only if (t + S - T) - s < window */
    int exempt;   /* keys 0..exempt-1 are never cut by the window (a prefix kept visible) */
} AttnSpec;
/* 1 if key s is visible to query t under the causal rule, the window and keymask row km (or NULL) */
static inline int attn_visible(const AttnSpec *sp, const int *km, int t, int s, int off) {
    if (s > t + off || (km && !km[s])) return 0;
    return !(sp && sp->window > 0 && s >= sp->exempt && t + off - s >= sp->window);
}
static inline double attn_scale(const AttnSpec *sp, int HS) {
    return sp && sp->scale > 0 ? sp->scale : 1.0 / sqrt((double)HS);
}

/* q (B,T,NH,HS); k, v (B,S,NKV,HS) with S >= T; keymask (B,S) 1 = may be attended, or NULL.
 * Query t sits at position t + (S-T) in key space (HF cache positions: the first S-T keys are a
 * prefix/cache). Key s is visible to query t iff s <= t + (S-T) and keymask[b][s] != 0.
 * KV head g serves query heads g*NH/NKV .. (g+1)*NH/NKV-1 (HF repeat_kv).
 * No (T,S) probability matrix is needed: the scores are recomputed where they are used (the SIMD
 * tables form the softmax online over blocks of keys, flash-attention style: a running max, sum and
 * output, rescaled when the max grows), and lse (B,NH,T) gets each row's log-sum-exp of the scaled
 * scores, which is all the backward needs to recompute the probabilities p_s = exp(z_s - lse).
 * out (B,T,NH,HS). att (B,NH,T,S) may be NULL; when given it also gets the probabilities (0 where
 * not visible): the golden/debug path. A row that sees no key at all (a left-pad query) gets out = 0,
 * lse = 0 (and att = 0); its backward finds no visible key and adds nothing. */
void attention_forward(real *out, real *lse, real *att, const real *q, const real *k, const real *v,
                       const int *keymask, const AttnSpec *spec, int B, int T, int S, int NH, int NKV,
                       int HS);
/* The probabilities recomputed from lse, one query row at a time: scratch holds 2*S reals per
 * (b, KV head) task, B*NKV*2*S in all (overwritten): memory linear in S, not T*S. keymask and
 * spec as in the forward (the visible keys are those it attended).
 * dq (B,T,NH,HS), dk, dv (B,S,NKV,HS) accumulate. */
void attention_backward(real *dq, real *dk, real *dv, real *scratch, const real *dout, const real *q,
                        const real *k, const real *v, const real *lse, const int *keymask, const AttnSpec *spec,
                        int B, int T, int S, int NH, int NKV, int HS);
/* reals of attention_backward's scratch */
static inline size_t attention_scratch_count(int B, int S, int NKV) { return (size_t)B * NKV * 2 * S; }

/* ---- SwiGLU: out = silu(gate) * up, silu(a) = a * sigmoid(a) ------------------------------------- */
void swiglu_forward(real *out, const real *gate, const real *up, size_t n);
void swiglu_backward(real *dgate, real *dup, const real *dout, const real *gate, const real *up,
                     size_t n);

/* ---- GeGLU (Gemma 3 MLP): out = gelu_tanh(gate) * up,
 *      gelu_tanh(a) = 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3)))  (PyTorch gelu, approximate="tanh") */
void geglu_forward(real *out, const real *gate, const real *up, size_t n);
void geglu_backward(real *dgate, real *dup, const real *dout, const real *gate, const real *up,
                    size_t n);

/* ---- residual: out = a + b; its backward is dA += dout, dB += dout ------------------------------- */
void residual_forward(real *out, const real *a, const real *b, size_t n);
void residual_backward(real *da, real *db, const real *dout, size_t n);

/* ---- causal-LM cross-entropy (HF ForCausalLM loss) --------------------------------------------- */
/* logits (B,T,V), labels (B,T). Row t predicts target labels[t+1]; the last row and targets equal to
 * -100 are ignored. Returns the SUM of -log softmax(logits)[target] over kept rows (accumulated in
 * double) and writes the number of kept rows to *count. */
double crossentropy_forward(long *count, const real *logits, const int *labels, int B, int T, int V);
/* dlogits += scale * (softmax(logits) - onehot(target)) on kept rows. scale = 1/count for the mean,
 * 1/num_items for HF Trainer's sum/num_items_in_batch reduction. */
void crossentropy_backward(real *dlogits, const real *logits, const int *labels, double scale, int B,
                           int T, int V);

#endif
