/* kernels.h — the table through which the model calls its hot operations.
 *
 * ref/ fills it with the scalar twins of ops.h (KERNELS_REF); simd/ fills it with AVX2/AVX-512/NEON
 * versions and an OpenBLAS GEMM, selected at run time. The model code (llama.c, decode.c) is the
 * same for every table: it calls k->op(...). Every entry has exactly the signature and the
 * semantics of its ops.h twin (backward entries accumulate), which is what the kernel tests check.
 */
#ifndef AFFIX_KERNELS_H
#define AFFIX_KERNELS_H

#include <stddef.h>

#include "ops.h" /* AttnSpec */
#include "quant.h"
#include "real.h"

typedef struct {
    const char *name; /* "ref", "avx2", "avx512", "neon", "blas", ... */
    void (*matmul_forward)(real *out, const real *inp, const real *w, int N, int IC, int OC);
    void (*matmul_backward)(real *dinp, real *dw, const real *dout, const real *inp, const real *w, int N,
                            int IC, int OC);
    void (*rmsnorm_forward)(real *out, real *rstd, const real *inp, const real *w, int N, int C, double eps);
    void (*rmsnorm_backward)(real *dinp, real *dw, const real *dout, const real *inp, const real *w,
                             const real *rstd, int N, int C);
    void (*rope_forward)(real *out, const real *inp, const real *cos_t, const real *sin_t, int N, int NH, int HS);
    void (*rope_backward)(real *dinp, const real *dout, const real *cos_t, const real *sin_t, int N, int NH, int HS);
    void (*attention_forward)(real *out, real *lse, real *att, const real *q, const real *k, const real *v,
                              const int *keymask, const AttnSpec *spec, int B, int T, int S, int NH, int NKV, int HS);
    void (*attention_backward)(real *dq, real *dk, real *dv, real *scratch, const real *dout, const real *q,
                               const real *k, const real *v, const real *lse, const int *keymask, const AttnSpec *spec,
                               int B, int T, int S, int NH, int NKV, int HS);
    void (*swiglu_forward)(real *out, const real *gate, const real *up, size_t n);
    void (*swiglu_backward)(real *dgate, real *dup, const real *dout, const real *gate, const real *up, size_t n);
    void (*geglu_forward)(real *out, const real *gate, const real *up, size_t n);
    void (*geglu_backward)(real *dgate, real *dup, const real *dout, const real *gate, const real *up, size_t n);
    double (*crossentropy_forward)(long *count, const real *logits, const int *labels, int B, int T, int V);
    void (*crossentropy_backward)(real *dlogits, const real *logits, const int *labels, double scale, int B, int T,
                                  int V);
    /* a frozen weight kept in its file's block format (quant.h; W = the decoded (rows = OC, cols = IC)
     * matrix): the products of matmul_forward and of matmul_backward's input gradient with W, the same
     * sums in the same order as the fp32 entries of this table on the decoded matrix */
    void (*qmatmul_forward)(real *out, const real *inp, const QMat *w, int N);
    void (*qmatmul_backward)(real *dinp, const real *dout, const QMat *w, int N);
} Kernels;

/* the scalar reference: the functions of ops.h */
extern const Kernels KERNELS_REF;

#endif
