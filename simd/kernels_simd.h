/* kernels_simd.h — the optimized kernel tables of simd/ and their run-time selection.
 *
 * Every table has the entries of kernels.h with exactly the semantics of their scalar twins in
 * ref/core/ops.c (backward entries accumulate); tests/test_kernels.c checks each entry against its
 * twin and the golden suite runs once per table. Float build only: the f64 build is the pure
 * reference and never links simd/.
 *
 *   kernels_avx2, kernels_avx512, kernels_neon    every entry in SIMD (simd/kernels.c, one object
 *                                                  per ISA); GEMMs packed + register-blocked
 *   kernels_blas_<isa>, kernels_blas_ref           OpenBLAS sgemm for the two matmul entries, the
 *                                                  rest from that SIMD table (or ref)
 * A table exists in a binary only when the Makefile built it (AFFIX_HAVE_AVX2, AFFIX_HAVE_AVX512,
 * AFFIX_HAVE_NEON, AFFIX_BLAS); kernels_select() also checks that the CPU can run it.
 * Threads: OpenMP over rows / heads / output tiles; every reduction runs in an order fixed by the
 * shapes alone, so each SIMD table gives bitwise the same result for any thread count.
 */
#ifndef AFFIX_KERNELS_SIMD_H
#define AFFIX_KERNELS_SIMD_H

#include <stddef.h>

#include "kernels.h"

extern const Kernels kernels_avx2, kernels_avx512, kernels_neon;
extern const Kernels kernels_blas_avx2, kernels_blas_avx512, kernels_blas_neon, kernels_blas_ref;

/* The table called name: "ref", "avx2", "avx512", "neon" (that one, if built and the CPU has it),
 * "simd" (the best SIMD table here), "blas" (OpenBLAS GEMMs + the best SIMD table for the rest),
 * "auto" (the best SIMD table, else blas (+ref) when built with it, else ref: the SIMD tables are
 * as fast as OpenBLAS on the model's shapes and bitwise thread-count invariant). NULL or "" means
 * "auto". Returns NULL and writes why into msg (msglen bytes) when the name is unknown or the table
 * is not available in this build / on this CPU. No state: the CPU is asked on every call. */
const Kernels *kernels_select(const char *name, char *msg, size_t msglen);

/* kernels_select(getenv("AFFIX_KERNELS")), or kernels_select(fallback) when the variable is unset
 * or empty. */
const Kernels *kernels_from_env(const char *fallback, char *msg, size_t msglen);

/* The tables this binary can run on this CPU, "ref" first; returns how many (at most max). */
int kernels_available(const Kernels **list, int max);

/* Where the selectable names come from, for messages: "ref avx2 avx512 blas" etc. */
const char *kernels_built(void);

/* The OpenBLAS GEMM entries (simd/blas.c; only with AFFIX_BLAS): cblas_sgemm on the three
 * products of a linear layer, same semantics as matmul_forward / matmul_backward of ops.h. */
void blas_matmul_forward(float *out, const float *inp, const float *w, int N, int IC, int OC);
void blas_matmul_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N,
                          int IC, int OC);

#endif
