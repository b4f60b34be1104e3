/* ops.c — scalar reference of every Llama-block operation, forward and backward.
 *
 * What it is: plain C11 loops that read like the equations of methods.md §1, one forward beside its
 * backward. What it is not: fast. No intrinsics, no fast-math, no allocation; the only concession to
 * speed is OpenMP over independent rows/heads, with every reduction in a fixed order so that a run
 * is bitwise reproducible for a given thread count (and identical to the single-thread result).
 * All backward functions accumulate (+=) into their gradient outputs (see ops.h).
 */
#include "ops.h"

#include <math.h>

/* -------------------------------------------------------------------------------------------- */
/* embedding                                                                                     */

void embedding_forward(real *out, const int *ids, const real *wte, int N, int C) {
    // out is (N,C), ids is (N), wte is (V,C)
    for (int n = 0; n < N; n++) {
        const real *row = wte + (size_t)ids[n] * C;
        real *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = row[c];
    }
}

void embedding_backward(real *dwte, const real *dout, const int *ids, int N, int C) {
    // dwte is (V,C); rows are visited in order n = 0..N-1, so repeated ids sum in a fixed order
    if (!dwte) return;
    for (int n = 0; n < N; n++) {
        real *d = dwte + (size_t)ids[n] * C;
        const real *g = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}

/* -------------------------------------------------------------------------------------------- */
/* RMSNorm                                                                                       */

void rmsnorm_forward(real *out, real *rstd, const real *inp, const real *w, int N, int C,
                     double eps) {
    // out, inp are (N,C); rstd is (N); w is (C)
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *o = out + (size_t)n * C;
        real ss = 0;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        real r = (real)(1.0 / sqrt((double)(ss / C) + eps));
        for (int c = 0; c < C; c++) o[c] = w[c] * (x[c] * r);
        rstd[n] = r;
    }
}

void rmsnorm_backward(real *dinp, real *dw, const real *dout, const real *inp, const real *w,
                      const real *rstd, int N, int C) {
    // forward: y_c = w_c * x_c * r,  r = (mean_j x_j^2 + eps)^(-1/2),  dr/dx_c = -r^3 x_c / C
    // so with u = g * w:  dx_c = r u_c - (r^3 / C) x_c sum_j u_j x_j ;  dw_c = sum_n g_c x_c r
    if (dinp) {
#pragma omp parallel for
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C;
            const real *g = dout + (size_t)n * C;
            real *dx = dinp + (size_t)n * C;
            real r = rstd[n];
            real dot = 0; // sum_j u_j x_j
            for (int c = 0; c < C; c++) dot += g[c] * w[c] * x[c];
            real k = r * r * r / C;
            for (int c = 0; c < C; c++) dx[c] += r * g[c] * w[c] - k * x[c] * dot;
        }
    }
    if (dw) {
        // columns are independent; each sums over n in order
#pragma omp parallel for
        for (int c = 0; c < C; c++) {
            real s = 0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * rstd[n];
            dw[c] += s;
        }
    }
}

/* -------------------------------------------------------------------------------------------- */
/* linear (no bias)                                                                              */

void matmul_forward(real *out, const real *inp, const real *w, int N, int IC, int OC) {
    // out (N,OC) = inp (N,IC) . w (OC,IC)^T
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * IC;
        for (int o = 0; o < OC; o++) {
            const real *wr = w + (size_t)o * IC;
            real s = 0;
            for (int i = 0; i < IC; i++) s += x[i] * wr[i];
            out[(size_t)n * OC + o] = s;
        }
    }
}

void matmul_backward(real *dinp, real *dw, const real *dout, const real *inp, const real *w, int N,
                     int IC, int OC) {
    // dinp (N,IC) += dout (N,OC) . w (OC,IC)
    if (dinp) {
#pragma omp parallel for
        for (int n = 0; n < N; n++) {
            const real *g = dout + (size_t)n * OC;
            real *dx = dinp + (size_t)n * IC;
            for (int o = 0; o < OC; o++) {
                const real *wr = w + (size_t)o * IC;
                real go = g[o];
                for (int i = 0; i < IC; i++) dx[i] += go * wr[i];
            }
        }
    }
    // dw (OC,IC) += dout^T (OC,N) . inp (N,IC); each thread owns whole rows of dw
    if (dw) {
#pragma omp parallel for
        for (int o = 0; o < OC; o++) {
            real *dwr = dw + (size_t)o * IC;
            for (int n = 0; n < N; n++) {
                real go = dout[(size_t)n * OC + o];
                const real *x = inp + (size_t)n * IC;
                for (int i = 0; i < IC; i++) dwr[i] += go * x[i];
            }
        }
    }
}

/* W decoded a chunk of QCHUNK elements of a row at a time (whole blocks of every type), the sums as
 * in matmul_forward / matmul_backward */
#define QCHUNK QUANT_MAX_BLOCK

void qmatmul_forward(real *out, const real *inp, const QMat *w, int N) {
    // out (N,OC) = inp (N,IC) . W (OC,IC)^T
    int IC = w->cols, OC = w->rows;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * IC;
        real wr[QCHUNK];
        for (int o = 0; o < OC; o++) {
            real s = 0;
            for (int c0 = 0; c0 < IC; c0 += QCHUNK) {
                int m = IC - c0 < QCHUNK ? IC - c0 : QCHUNK;
                qmat_row(w, o, c0, m, wr);
                for (int i = 0; i < m; i++) s += x[c0 + i] * wr[i];
            }
            out[(size_t)n * OC + o] = s;
        }
    }
}

void qmatmul_backward(real *dinp, const real *dout, const QMat *w, int N) {
    // dinp (N,IC) += dout (N,OC) . W (OC,IC)
    int IC = w->cols, OC = w->rows;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *g = dout + (size_t)n * OC;
        real *dx = dinp + (size_t)n * IC, wr[QCHUNK];
        for (int o = 0; o < OC; o++) {
            real go = g[o];
            for (int c0 = 0; c0 < IC; c0 += QCHUNK) {
                int m = IC - c0 < QCHUNK ? IC - c0 : QCHUNK;
                qmat_row(w, o, c0, m, wr);
                for (int i = 0; i < m; i++) dx[c0 + i] += go * wr[i];
            }
        }
    }
}

/* -------------------------------------------------------------------------------------------- */
/* RoPE                                                                                          */

void rope_inv_freq(double *inv_freq, int HS, double theta, double factor, double low_freq_factor,
                   double high_freq_factor, double original_max_position) {
    const double pi = 3.14159265358979323846;
    for (int j = 0; j < HS / 2; j++) {
        double f = 1.0 / pow(theta, (2.0 * j) / HS);
        if (factor > 0) { // "llama3" scaling (transformers modeling_rope_utils)
            double lo_wl = original_max_position / low_freq_factor;  // longest unscaled-ish band
            double hi_wl = original_max_position / high_freq_factor; // shorter wavelengths stay
            double wl = 2.0 * pi / f;
            if (wl < hi_wl) {
                // high frequency: unchanged
            } else if (wl > lo_wl) {
                f = f / factor; // low frequency: divided
            } else {            // smooth blend between the two
                double s = (original_max_position / wl - low_freq_factor) /
                           (high_freq_factor - low_freq_factor);
                f = (1.0 - s) * f / factor + s * f;
            }
        }
        inv_freq[j] = f;
    }
}

void rope_table(real *cos_t, real *sin_t, const int *pos, const double *inv_freq, int N, int HS) {
    // cos_t, sin_t are (N,HS/2)
    int H2 = HS / 2;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < H2; j++) {
            double a = (double)pos[n] * inv_freq[j];
            cos_t[(size_t)n * H2 + j] = (real)cos(a);
            sin_t[(size_t)n * H2 + j] = (real)sin(a);
        }
}

void rope_forward(real *out, const real *inp, const real *cos_t, const real *sin_t, int N, int NH,
                  int HS) {
    // x_rot = x * cos + rotate_half(x) * sin, rotate_half([x1, x2]) = [-x2, x1]:
    //   out1 = x1 c - x2 s ;  out2 = x2 c + x1 s      (x1 = x[j], x2 = x[j + HS/2])
    int H2 = HS / 2;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *c = cos_t + (size_t)n * H2;
        const real *s = sin_t + (size_t)n * H2;
        for (int h = 0; h < NH; h++) {
            const real *x = inp + ((size_t)n * NH + h) * HS;
            real *o = out + ((size_t)n * NH + h) * HS;
            for (int j = 0; j < H2; j++) {
                real x1 = x[j], x2 = x[j + H2];
                o[j] = x1 * c[j] - x2 * s[j];
                o[j + H2] = x2 * c[j] + x1 * s[j];
            }
        }
    }
}

void rope_backward(real *dinp, const real *dout, const real *cos_t, const real *sin_t, int N,
                   int NH, int HS) {
    // the transpose of the rotation (rotation by -angle):
    //   dx1 = g1 c + g2 s ;  dx2 = g2 c - g1 s
    int H2 = HS / 2;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *c = cos_t + (size_t)n * H2;
        const real *s = sin_t + (size_t)n * H2;
        for (int h = 0; h < NH; h++) {
            const real *g = dout + ((size_t)n * NH + h) * HS;
            real *dx = dinp + ((size_t)n * NH + h) * HS;
            for (int j = 0; j < H2; j++) {
                real g1 = g[j], g2 = g[j + H2];
                dx[j] += g1 * c[j] + g2 * s[j];
                dx[j + H2] += g2 * c[j] - g1 * s[j];
            }
        }
    }
}

/* -------------------------------------------------------------------------------------------- */
/* attention                                                                                     */

/* z_s = q_t . k_s * scale, the scaled score of key s for query t of head h (KV head g) */
static real att_score(const real *q, const real *k, int b, int t, int h, int s, int g, int T, int S, int NH, int NKV,
                      int HS, real scale) {
    const real *qt = q + (((size_t)b * T + t) * NH + h) * HS, *ks = k + (((size_t)b * S + s) * NKV + g) * HS;
    real z = 0;
    for (int i = 0; i < HS; i++) z += qt[i] * ks[i];
    return z * scale;
}

void attention_forward(real *out, real *lse, real *att, const real *q, const real *k, const real *v,
                       const int *keymask, const AttnSpec *spec, int B, int T, int S, int NH, int NKV,
                       int HS) {
    // q (B,T,NH,HS); k, v (B,S,NKV,HS); lse (B,NH,T); att (B,NH,T,S) or NULL; out (B,T,NH,HS)
    // over the visible keys s of query t, scores recomputed in each pass (nothing of size T*S kept):
    // pass 1: m = max z_s; pass 2: l = sum exp(z_s - m), o = sum exp(z_s - m) v_s; out = o / l,
    // lse = m + log l. (The SIMD tables form the same softmax online, over blocks of keys.)
    int rep = NH / NKV;
    int off = S - T; // query t sits at key position t + off
    real scale = (real)attn_scale(spec, HS);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int g = h / rep; // the KV head serving query head h
            const int *km = keymask ? keymask + (size_t)b * S : NULL;
            for (int t = 0; t < T; t++) {
                real *o = out + (((size_t)b * T + t) * NH + h) * HS;
                real m = -INFINITY, l = 0;
                for (int s = 0; s < S; s++)
                    if (attn_visible(spec, km, t, s, off)) {
                        real z = att_score(q, k, b, t, h, s, g, T, S, NH, NKV, HS, scale);
                        if (z > m) m = z;
                    }
                for (int i = 0; i < HS; i++) o[i] = 0;
                for (int s = 0; s < S; s++) {
                    if (!attn_visible(spec, km, t, s, off)) continue;
                    real p = (real)exp((double)(att_score(q, k, b, t, h, s, g, T, S, NH, NKV, HS, scale) - m));
                    const real *vs = v + (((size_t)b * S + s) * NKV + g) * HS;
                    l += p;
                    for (int i = 0; i < HS; i++) o[i] += p * vs[i];
                }
                real *lt = lse + ((size_t)b * NH + h) * T + t;
                *lt = l > 0 ? m + (real)log((double)l) : 0; // no visible key: out = 0 (lse unused then)
                if (l > 0)
                    for (int i = 0; i < HS; i++) o[i] /= l;
                if (!att) continue;
                real *pr = att + (((size_t)b * NH + h) * T + t) * S; // the probabilities, from lse
                for (int s = 0; s < S; s++)
                    pr[s] = l > 0 && attn_visible(spec, km, t, s, off)
                                ? (real)exp((double)(att_score(q, k, b, t, h, s, g, T, S, NH, NKV, HS, scale) - *lt))
                                : 0;
            }
        }
}

void attention_backward(real *dq, real *dk, real *dv, real *scratch, const real *dout, const real *q,
                        const real *k, const real *v, const real *lse, const int *keymask, const AttnSpec *spec,
                        int B, int T, int S, int NH, int NKV, int HS) {
    // forward: z = q.k * scale ; p = softmax(z) over visible keys = exp(z - lse) ; o = sum_s p_s v_s
    // backward: dp_s = do.v_s ; dz_s = p_s (dp_s - sum_s' p_s' dp_s') ; dq = sum_s dz_s k_s scale ;
    //           dk_s += dz_s q scale ; dv_s += p_s do.   Invisible keys have p = 0, so dz = 0 there.
    // p is recomputed from lse one query row at a time into the task's scratch (p, then dp).
    // One task per (b, KV head g): it owns dk/dv of head g, so the query heads of a group sum into
    // them in a fixed order (h, then t) with no race.
    int rep = NH / NKV, off = S - T;
    real scale = (real)attn_scale(spec, HS);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < NKV; g++) {
            real *p = scratch + ((size_t)b * NKV + g) * 2 * S, *dp = p + S;
            const int *km = keymask ? keymask + (size_t)b * S : NULL;
            for (int h = g * rep; h < (g + 1) * rep; h++)
                for (int t = 0; t < T; t++) {
                    real lt = lse[((size_t)b * NH + h) * T + t]; // (a row that saw no key: p = 0 below)
                    const real *dot = dout + (((size_t)b * T + t) * NH + h) * HS;
                    const real *qt = q + (((size_t)b * T + t) * NH + h) * HS;
                    real *dqt = dq + (((size_t)b * T + t) * NH + h) * HS;
                    // p_s again, dp_s and the row sum  sum_s p_s dp_s
                    real psum = 0;
                    for (int s = 0; s < S; s++) {
                        p[s] = dp[s] = 0;
                        if (!attn_visible(spec, km, t, s, off)) continue;
                        const real *ks = k + (((size_t)b * S + s) * NKV + g) * HS;
                        const real *vs = v + (((size_t)b * S + s) * NKV + g) * HS;
                        real z = 0, d = 0;
                        for (int i = 0; i < HS; i++) z += qt[i] * ks[i], d += dot[i] * vs[i];
                        p[s] = (real)exp((double)(z * scale - lt));
                        dp[s] = d;
                        psum += p[s] * d;
                    }
                    for (int s = 0; s < S; s++) {
                        if (p[s] == 0) continue;
                        real z = p[s] * (dp[s] - psum); // dz_s
                        const real *ks = k + (((size_t)b * S + s) * NKV + g) * HS;
                        real *dks = dk + (((size_t)b * S + s) * NKV + g) * HS;
                        real *dvs = dv + (((size_t)b * S + s) * NKV + g) * HS;
                        for (int i = 0; i < HS; i++) {
                            dqt[i] += z * ks[i] * scale;
                            dks[i] += z * qt[i] * scale;
                            dvs[i] += p[s] * dot[i];
                        }
                    }
                }
        }
}

/* -------------------------------------------------------------------------------------------- */
/* SwiGLU and residual                                                                          */

static real sigmoidr(real a) { return (real)(1.0 / (1.0 + exp(-(double)a))); }

void swiglu_forward(real *out, const real *gate, const real *up, size_t n) {
    // out = silu(gate) * up
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = gate[i] * sigmoidr(gate[i]) * up[i];
}

void swiglu_backward(real *dgate, real *dup, const real *dout, const real *gate, const real *up,
                     size_t n) {
    // silu'(a) = sigma(a) (1 + a (1 - sigma(a)))
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        real a = gate[i], sg = sigmoidr(a);
        if (dgate) dgate[i] += dout[i] * up[i] * sg * (1 + a * (1 - sg));
        if (dup) dup[i] += dout[i] * a * sg;
    }
}

/* -------------------------------------------------------------------------------------------- */
/* GeGLU (Gemma 3)                                                                               */

#define GELU_K0 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_K1 0.044715

void geglu_forward(real *out, const real *gate, const real *up, size_t n) {
    // out = gelu_tanh(gate) * up ; gelu_tanh(a) = 0.5 a (1 + tanh(k0 (a + k1 a^3)))
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        double a = gate[i];
        out[i] = (real)(0.5 * a * (1.0 + tanh(GELU_K0 * (a + GELU_K1 * a * a * a)))) * up[i];
    }
}

void geglu_backward(real *dgate, real *dup, const real *dout, const real *gate, const real *up,
                    size_t n) {
    // d/da gelu_tanh(a) = 0.5 (1 + th) + 0.5 a (1 - th^2) k0 (1 + 3 k1 a^2),  th = tanh(k0 (a + k1 a^3))
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        double a = gate[i], th = tanh(GELU_K0 * (a + GELU_K1 * a * a * a));
        if (dgate) {
            double d = 0.5 * (1.0 + th) + 0.5 * a * (1.0 - th * th) * GELU_K0 * (1.0 + 3.0 * GELU_K1 * a * a);
            dgate[i] += dout[i] * up[i] * (real)d;
        }
        if (dup) dup[i] += dout[i] * (real)(0.5 * a * (1.0 + th));
    }
}

void residual_forward(real *out, const real *a, const real *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void residual_backward(real *da, real *db, const real *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}

/* -------------------------------------------------------------------------------------------- */
/* causal-LM cross-entropy                                                                      */

/* target of row (b,t) after HF's shift, or -100 */
static int shifted_target(const int *labels, int b, int t, int T) {
    return t + 1 < T ? labels[(size_t)b * T + t + 1] : -100;
}

double crossentropy_forward(long *count, const real *logits, const int *labels, int B, int T, int V) {
    // loss_sum = sum over kept rows of  logsumexp(z) - z[target], accumulated in double
    double sum = 0;
    long kept = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int y = shifted_target(labels, b, t, T);
            if (y == -100) continue;
            const real *z = logits + ((size_t)b * T + t) * V;
            double m = z[0];
            for (int i = 1; i < V; i++) if (z[i] > m) m = z[i];
            double se = 0;
            for (int i = 0; i < V; i++) se += exp((double)z[i] - m);
            sum += m + log(se) - (double)z[y];
            kept++;
        }
    *count = kept;
    return sum;
}

void crossentropy_backward(real *dlogits, const real *logits, const int *labels, double scale, int B,
                           int T, int V) {
    // d(loss)/dz_i = scale * (softmax(z)_i - [i == target]) on kept rows, 0 elsewhere
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int y = shifted_target(labels, b, t, T);
            if (y == -100) continue;
            const real *z = logits + ((size_t)b * T + t) * V;
            real *dz = dlogits + ((size_t)b * T + t) * V;
            double m = z[0];
            for (int i = 1; i < V; i++) if (z[i] > m) m = z[i];
            double se = 0;
            for (int i = 0; i < V; i++) se += exp((double)z[i] - m);
            for (int i = 0; i < V; i++) {
                double p = exp((double)z[i] - m) / se;
                dz[i] += (real)(scale * (p - (i == y ? 1.0 : 0.0)));
            }
        }
}
