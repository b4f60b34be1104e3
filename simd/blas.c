/* blas.c — the OpenBLAS backend: cblas_sgemm for the three products of a linear layer, and the
 * table kernels_blas_ref (OpenBLAS GEMMs + the scalar reference for everything else, for a CPU
 * without a SIMD table). The tables kernels_blas_<isa> live beside their SIMD entries in
 * simd/kernels.c. Compiled only when the Makefile found the OpenMP build of OpenBLAS (AFFIX_BLAS);
 * that build shares the program's OpenMP thread pool (the pthread build would fight it).
 * What it is not: bitwise reproducible across thread counts (OpenBLAS picks its own blocking and
 * threading; two runs with the same thread count agree).
 */
#ifdef AFFIX_F64
#error "simd/ is float only: the f64 build is the pure reference"
#endif

#include <cblas.h>

#include "kernels_simd.h"
#include "ops.h"

void blas_matmul_forward(float *out, const float *inp, const float *w, int N, int IC, int OC) {
    // out (N,OC) = inp (N,IC) . w (OC,IC)^T                 (NT, beta 0: out is not read)
    if (N <= 0 || OC <= 0) return;
    if (IC <= 0) {
        for (size_t i = 0; i < (size_t)N * OC; i++) out[i] = 0;
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, w, IC, 0.0f, out, OC);
}

void blas_matmul_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N,
                          int IC, int OC) {
    if (N <= 0 || IC <= 0 || OC <= 0) return;
    // dinp (N,IC) += dout (N,OC) . w (OC,IC)                  (NN)
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, w, IC, 1.0f, dinp, IC);
    // dw (OC,IC) += dout^T (OC,N) . inp (N,IC)                (TN)
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
}

const Kernels kernels_blas_ref = {
    .name = "blas+ref",
    .matmul_forward = blas_matmul_forward,
    .matmul_backward = blas_matmul_backward,
    .rmsnorm_forward = rmsnorm_forward,
    .rmsnorm_backward = rmsnorm_backward,
    .rope_forward = rope_forward,
    .rope_backward = rope_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .swiglu_forward = swiglu_forward,
    .swiglu_backward = swiglu_backward,
    .geglu_forward = geglu_forward,
    .geglu_backward = geglu_backward,
    .crossentropy_forward = crossentropy_forward,
    .crossentropy_backward = crossentropy_backward,
    .qmatmul_forward = qmatmul_forward,
    .qmatmul_backward = qmatmul_backward,
};
