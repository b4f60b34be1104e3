/* kernels.c — the SIMD kernel table, written once in the vocabulary of simd.h and compiled once per
 * ISA (kernels_avx2.o with -mavx2 -mfma, kernels_avx512.o with -mavx512f, kernels_neon.o on
 * AArch64), each object defining its table kernels_<isa> (and kernels_blas_<isa> with OpenBLAS).
 *
 * What it is: the entries of kernels.h with the semantics of their twins in ref/core/ops.c —
 *   GEMMs       packed panels + a register-blocked MR x NR micro-kernel (BLIS-style loops), one
 *               driver for the three products of a linear layer (NT forward, NN and TN backward);
 *               a dot-product path for a forward with a few rows (decoding)
 *   rmsnorm, rope, swiglu, softmax+cross-entropy backward, attention forward/backward
 *               vectorized along the contiguous dimension (C, HS/2, n, V, HS), masked tails.
 * What it is not: bitwise equal to ref (sums run in another order, exp is a float polynomial);
 * tests/test_kernels.c bounds the difference (NMSE <= 1e-10 elementwise, <= 1e-8 GEMMs).
 *
 * Threads: OpenMP over rows, heads and output tiles. Each output element is reduced in an order
 * fixed by the shapes alone (never by the thread count), so results are bitwise identical for
 * any number of threads. No allocation except the GEMM packing buffers (one block per call; when
 * that fails the call falls back to the scalar twin, so no entry can fail).
 */
#ifdef AFFIX_F64
#error "simd/ is float only: the f64 build is the pure reference"
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels_simd.h"
#include "ops.h"
#include "simd.h"

#if defined(__GNUC__)
#define SIMD_INLINE static inline __attribute__((always_inline))
#else
#define SIMD_INLINE static inline
#endif

#if defined(__GNUC__)
#define SIMD_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#define SIMD_PREFETCH_R(p) __builtin_prefetch((p), 0, 3)
#else
#define SIMD_PREFETCH_W(p) ((void)(p))
#define SIMD_PREFETCH_R(p) ((void)(p))
#endif

static int imin(int a, int b) { return a < b ? a : b; }

/* the first n floats of p as a vector (n >= VW: a full load) */
SIMD_INLINE vf vload_part(const float *p, int n) { return n >= VW ? VLOAD(p) : VLOADN(p, n); }
/* v with lanes n.. set to 0 */
SIMD_INLINE vf vkeep_first(vf v, int n) {
    if (n >= VW) return v;
    float t[VW];
    VSTORE(t, v);
    return VLOADN(t, n);
}
SIMD_INLINE void vstore_part(float *p, vf v, int n) {
    if (n >= VW) VSTORE(p, v);
    else VSTOREN(p, v, n);
}

/* ============================================================================================ */
/* small vector helpers: dot, weighted sums of rows                                              */

/* sum_i a[i] b[i]: four vector accumulators (latency), then a tail vector, then one reduction */
static float vdot(const float *a, const float *b, int n) {
    vf s0 = VZERO(), s1 = VZERO(), s2 = VZERO(), s3 = VZERO();
    int i = 0;
    for (; i + 4 * VW <= n; i += 4 * VW) {
        s0 = VFMA(VLOAD(a + i), VLOAD(b + i), s0);
        s1 = VFMA(VLOAD(a + i + VW), VLOAD(b + i + VW), s1);
        s2 = VFMA(VLOAD(a + i + 2 * VW), VLOAD(b + i + 2 * VW), s2);
        s3 = VFMA(VLOAD(a + i + 3 * VW), VLOAD(b + i + 3 * VW), s3);
    }
    for (; i + VW <= n; i += VW) s0 = VFMA(VLOAD(a + i), VLOAD(b + i), s0);
    if (i < n) s1 = VFMA(VLOADN(a + i, n - i), VLOADN(b + i, n - i), s1);
    return VHSUM(VADD(VADD(s0, s1), VADD(s2, s3)));
}

/* A weighted sum of rows: y[0:n] (+)= alpha * sum_g sum_{s < S, w != 0} w * rows[...] over G groups
 * of S terms, term (g, s) with weight w[g*wg + s*ws] and row rows + g*rg + s*rs; in that order
 * (g, then s), zero weights skipped. A block of up to four vectors of y stays in registers across
 * all the terms. add = 0 overwrites y. */
typedef struct {
    const float *w, *rows;
    size_t ws, wg, rs, rg;
    int S, G;
} wterms;

SIMD_INLINE void wsum_block(float *y, float alpha, wterms a, int nv, int last, int add) {
    // two accumulator sets, terms alternating between them (shorter FMA dependency chains);
    // which set a term goes to depends only on its position, so the order stays fixed
    vf acc[2][4] = {{VZERO(), VZERO(), VZERO(), VZERO()}, {VZERO(), VZERO(), VZERO(), VZERO()}};
    int par = 0;
    for (int g = 0; g < a.G; g++) {
        const float *w = a.w + (size_t)g * a.wg, *rows = a.rows + (size_t)g * a.rg;
        for (int s = 0; s < a.S; s++) {
            float wt = w[(size_t)s * a.ws];
            if (wt == 0) continue;
            vf ws = VSET1(wt);
            const float *r = rows + (size_t)s * a.rs;
            if (par) {
                SIMD_UNROLL for (int j = 0; j < 4; j++) if (j < nv)
                    acc[1][j] = VFMA(ws, j == nv - 1 ? vload_part(r + j * VW, last) : VLOAD(r + j * VW), acc[1][j]);
            } else {
                SIMD_UNROLL for (int j = 0; j < 4; j++) if (j < nv)
                    acc[0][j] = VFMA(ws, j == nv - 1 ? vload_part(r + j * VW, last) : VLOAD(r + j * VW), acc[0][j]);
            }
            par ^= 1;
        }
    }
    vf va = VSET1(alpha);
    SIMD_UNROLL for (int j = 0; j < 4; j++) if (j < nv) {
        int cnt = j == nv - 1 ? last : VW;
        vf v = VMUL(va, VADD(acc[0][j], acc[1][j]));
        if (add) v = VADD(vload_part(y + j * VW, cnt), v);
        vstore_part(y + j * VW, v, cnt);
    }
}

static void wsum(float *y, float alpha, wterms a, int n, int add) {
    for (int c0 = 0; c0 < n; c0 += 4 * VW) {
        int width = imin(4 * VW, n - c0), nv = (width + VW - 1) / VW, last = width - (nv - 1) * VW;
        wterms b = a;
        b.rows = a.rows + c0;
        switch (nv) { // constant block widths: the accumulators stay in registers
        case 1: wsum_block(y + c0, alpha, b, 1, last, add); break;
        case 2: wsum_block(y + c0, alpha, b, 2, last, add); break;
        case 3: wsum_block(y + c0, alpha, b, 3, last, add); break;
        default: wsum_block(y + c0, alpha, b, 4, last, add); break;
        }
    }
}

/* the common case: S contiguous weights, rows at a stride, one group */
static void wsum_rows(float *y, float alpha, const float *w, const float *rows, size_t stride, int S, int n,
                      int add) {
    wterms a = {w, rows, 1, 0, stride, 0, S, 1};
    wsum(y, alpha, a, n, add);
}

/* ============================================================================================ */
/* GEMM: C (M,N) (+)= A (M,K) . B (K,N), any strides on A and B                                 */
/*
 * Loops (BLIS): jc over NC-column blocks of C, pc over KC-deep slices of K (B slice packed into
 * NR-wide panels), ic over MC-row blocks (A block packed into MR-tall panels), then the MR x NR
 * micro-tiles of the block, each one micro-kernel call over the whole slice. Packing zero-pads
 * panels to full MR / NR, so the micro-kernel has no tails; edge tiles go through a small buffer.
 * Threads: each owns one contiguous part of C (see gemm) and packs for itself: no barrier inside.
 * Order of a C element's sum: K slices in order; inside a slice p = 0..kc-1 in one accumulator
 * (FMA), added to C once per slice — fixed by the shapes, whatever the thread count.
 */
#if defined(SIMD_ISA_AVX512)
/* register budget (32 zmm): 12 x 2 accumulators (MR 12 rows x NR 32 floats) + 2 B vectors + 1
 * broadcast of A = 27 */
#define MR 12
#define NRV 2
#elif defined(SIMD_ISA_AVX2)
/* register budget (16 ymm): 6 x 2 accumulators (MR 6 x NR 16) + 2 B vectors + 1 broadcast = 15 */
#define MR 6
#define NRV 2
#else
/* register budget (32 q): 8 x 3 accumulators (MR 8 x NR 12) + 3 B vectors + 1 broadcast = 28 */
#define MR 8
#define NRV 3
#endif
#define NR (NRV * VW)
#ifndef KC_MAX
#define KC_MAX 256        /* a B panel KC x NR, the A block MC x KC: L1 / L2 sized */
#endif
#ifndef MC_MAX
#define MC_MAX (MR * 16)
#endif
#ifndef NC_MAX
#define NC_MAX 2048       /* the packed B slice KC x NC stays in L2/L3 */
#endif
#ifndef GEMV_MAX_ROWS
#define GEMV_MAX_ROWS 16  /* a forward with this few rows streams W once, one dot per output, instead of
                             the packed GEMM, whose transposing pack of W costs more than these rows'
                             arithmetic: decoding, and the lm_head on a training batch's answer rows
                             (Gemma 3 270M, 12 rows x 262144 x 640: 62 ms instead of 130 on 2 cores) */
#endif

typedef struct {
    const float *p;
    size_t rs, cs; /* element (i,j) at p[i*rs + j*cs] */
    const QMat *q; /* (B operand only) instead of p: a weight in its block format, decoded while packing;
                      rs == 1: B = W^T (forward), cs == 1: B = W (input gradient) */
} mat;

/* the micro-kernel: C[0:MR, 0:NR] (row stride ldc) = (add: +=) A panel (kc x MR) . B panel (kc x NR) */
static void ukernel(int kc, const float *restrict a, const float *restrict b, float *restrict c, size_t ldc,
                    int add) {
    vf acc[MR][NRV];
    // the C tile is touched once, after the loop: fetch its lines now (a miss there would stall)
    SIMD_UNROLL for (int i = 0; i < MR; i++) SIMD_UNROLL for (int j = 0; j < NR; j += 16)
        SIMD_PREFETCH_W(c + (size_t)i * ldc + j);
    SIMD_UNROLL for (int i = 0; i < MR; i++) SIMD_UNROLL for (int j = 0; j < NRV; j++) acc[i][j] = VZERO();
    for (int p = 0; p < kc; p++) {
        vf bv[NRV];
        SIMD_UNROLL for (int j = 0; j < NRV; j++) bv[j] = VLOAD(b + j * VW);
        SIMD_UNROLL for (int i = 0; i < MR; i++) {
            vf ai = VSET1(a[i]);
            SIMD_UNROLL for (int j = 0; j < NRV; j++) acc[i][j] = VFMA(ai, bv[j], acc[i][j]);
        }
        a += MR;
        b += NR;
    }
    SIMD_UNROLL for (int i = 0; i < MR; i++) SIMD_UNROLL for (int j = 0; j < NRV; j++) {
        float *ci = c + (size_t)i * ldc + j * VW;
        VSTORE(ci, add ? VADD(VLOAD(ci), acc[i][j]) : acc[i][j]);
    }
}

/* A rows i0..i0+mc-1, columns p0..p0+kc-1 -> ceil(mc/MR) MR-tall panels: panel r holds
 * dst[r*kc*MR + p*MR + i]; rows past mc are zero. Source lines are prefetched one panel / a few
 * rows ahead: A is often a large activation gradient that comes from memory (the logits'). */
static void pack_a_block(float *restrict dst, mat A, int i0, int mc, int p0, int kc) {
    int mpan = (mc + MR - 1) / MR;
    if (A.cs == 1) { // rows contiguous (NT, NN): read along a row, write strided
        for (int r = 0; r < mpan; r++) {
            int mr = imin(MR, mc - r * MR);
            float *d = dst + (size_t)r * kc * MR;
            if (r + 1 < mpan) // the next panel's rows
                for (int i = 0; i < imin(MR, mc - (r + 1) * MR); i++)
                    for (int p = 0; p < kc; p += 16) SIMD_PREFETCH_R(A.p + (size_t)(i0 + (r + 1) * MR + i) * A.rs + p0 + p);
            const float *s = A.p + (size_t)(i0 + r * MR) * A.rs + p0;
            if (mr == MR) {
                for (int p = 0; p < kc; p++) // write contiguously, read MR rows side by side
                    SIMD_UNROLL for (int i = 0; i < MR; i++) d[(size_t)p * MR + i] = s[(size_t)i * A.rs + p];
            } else {
                for (int p = 0; p < kc; p++)
                    for (int i = 0; i < MR; i++) d[(size_t)p * MR + i] = i < mr ? s[(size_t)i * A.rs + p] : 0;
            }
        }
    } else { // columns contiguous (TN: A = dout^T, A.rs == 1): one source row per p, across panels
        for (int p = 0; p < kc; p++) {
            const float *s = A.p + (size_t)i0 * A.rs + (size_t)(p0 + p) * A.cs;
            if (p + 8 < kc)
                for (int i = 0; i < mc; i += 16) SIMD_PREFETCH_R(s + 8 * A.cs + (size_t)i * A.rs);
            for (int r = 0; r < mpan; r++) {
                int mr = imin(MR, mc - r * MR);
                float *d = dst + (size_t)r * kc * MR + (size_t)p * MR;
                const float *sr = s + (size_t)r * MR * A.rs;
                if (A.rs == 1 && mr == MR) memcpy(d, sr, MR * sizeof(float));
                else {
                    for (int i = 0; i < mr; i++) d[i] = sr[(size_t)i * A.rs];
                    for (int i = mr; i < MR; i++) d[i] = 0;
                }
            }
        }
    }
}

/* ============================================================================================ */
/* block decoders: the values of ref/core/quant.c bit for bit (the same float operations, in vectors)
 * for the formats of common GGUF files (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K); the others go through
 * quant.c. Codes are unpacked 8 bytes at a time in 64-bit words (little-endian hosts; elsewhere
 * quant.c does it all), into padded local buffers that VCVT reads. */

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define QFAST 1
#else
#define QFAST 0
#endif
#define NIB 0x0F0F0F0F0F0F0F0FULL

static uint64_t ld64u(const unsigned char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}
static void st64u(unsigned char *p, uint64_t x) { memcpy(p, &x, 8); }
static float h16(const unsigned char *p) { return quant_f16((uint16_t)(p[0] | p[1] << 8)); }
/* bit k of b (0..7) to bit 4 of byte k: the fifth bit of 8 Q5_0 codes, from a table built by the
 * preprocessor (S8(b) spells it out; R* repeat it over 0..255) */
#define S8(b) ((uint64_t)((b) & 1) << 4 | (uint64_t)((b) >> 1 & 1) << 12 | (uint64_t)((b) >> 2 & 1) << 20 | \
               (uint64_t)((b) >> 3 & 1) << 28 | (uint64_t)((b) >> 4 & 1) << 36 | (uint64_t)((b) >> 5 & 1) << 44 | \
               (uint64_t)((b) >> 6 & 1) << 52 | (uint64_t)((b) >> 7 & 1) << 60)
#define R4(b) S8(b), S8((b) + 1), S8((b) + 2), S8((b) + 3)
#define R16(b) R4(b), R4((b) + 4), R4((b) + 8), R4((b) + 12)
#define R64(b) R16(b), R16((b) + 16), R16((b) + 32), R16((b) + 48)
static const uint64_t BIT4[256] = {R64(0), R64(64), R64(128), R64(192)};
#undef S8
#undef R4
#undef R16
#undef R64

/* y[0..n) = d * (u - off) for n codes u (n a multiple of VW): quant.c's d * (float)(q - off) */
SIMD_INLINE void codes_to_floats(float *y, const unsigned char *u, int n, vf d, vf off) {
    SIMD_UNROLL for (int i = 0; i < n; i += VW) VSTORE(y + i, VMUL(d, VSUB(VCVT_U8(u + i), off)));
}

/* Each decoder turns nb consecutive blocks into nb * block elements. */
/* Q8_0: d * q */
static void dq_q8_0(const unsigned char *b, size_t nb, float *y) {
    for (size_t k = 0; k < nb; k++, b += 34, y += 32) {
        vf d = VSET1(h16(b));
#if defined(SIMD_ISA_NEON) // VCVT_I8 reads 8 bytes: the last 4 codes from a copy
        unsigned char c[32 + 8];
        memcpy(c, b + 2, 32);
        const unsigned char *q = c;
#else
        const unsigned char *q = b + 2;
#endif
        SIMD_UNROLL for (int i = 0; i < 32; i += VW) VSTORE(y + i, VMUL(d, VCVT_I8(q + i)));
    }
}
/* Q4_0: d * (q - 8), q the low nibbles of 16 bytes then their high nibbles */
static void dq_q4_0(const unsigned char *b, size_t nb, float *y) {
    unsigned char u[32 + 8];
    vf off = VSET1(8.0f);
    for (size_t k = 0; k < nb; k++, b += 18, y += 32) {
        for (int j = 0; j < 16; j += 8) {
            uint64_t x = ld64u(b + 2 + j);
            st64u(u + j, x & NIB), st64u(u + 16 + j, x >> 4 & NIB);
        }
        codes_to_floats(y, u, 32, VSET1(h16(b)), off);
    }
}
/* Q5_0: d * (u - 16), u = the Q4_0 nibble | bit i of qh << 4 */
static void dq_q5_0(const unsigned char *b, size_t nb, float *y) {
    unsigned char u[32 + 8];
    vf off = VSET1(16.0f);
    for (size_t k = 0; k < nb; k++, b += 22, y += 32) {
        for (int j = 0; j < 16; j += 8) {
            uint64_t x = ld64u(b + 6 + j);
            st64u(u + j, (x & NIB) | BIT4[b[2 + j / 8]]);
            st64u(u + 16 + j, (x >> 4 & NIB) | BIT4[b[4 + j / 8]]);
        }
        codes_to_floats(y, u, 32, VSET1(h16(b)), off);
    }
}
/* Q4_K: (d*sc_j) * q - (dmin*mn_j) per sub-block j of 32 */
static void dq_q4_k(const unsigned char *b, size_t nb, float *y) {
    unsigned char u[32 + 8];
    for (size_t k = 0; k < nb; k++, b += 144, y += 256) {
        float d = h16(b), dmin = h16(b + 2);
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            quant_k_scale_min(b + 4, j, &sc, &mn);
            float ds = d * (float)sc, dm = dmin * (float)mn;
            const unsigned char *g = b + 16 + 32 * (j / 2);
            for (int i = 0; i < 32; i += 8) st64u(u + i, ld64u(g + i) >> (4 * (j % 2)) & NIB);
            vf vds = VSET1(ds), vdm = VSET1(dm);
            SIMD_UNROLL for (int i = 0; i < 32; i += VW) VSTORE(y + 32 * j + i, VSUB(VMUL(vds, VCVT_U8(u + i)), vdm));
        }
    }
}
/* Q6_K: (d * scale_s) * (u - 32), u = 4 low bits (ql) | 2 high bits (qh) << 4, per quarter of a half */
static void dq_q6_k(const unsigned char *b, size_t nb, float *y) {
    unsigned char u[32 + 8];
    vf off = VSET1(32.0f);
    for (size_t k = 0; k < nb; k++, b += 210, y += 256) {
        const unsigned char *ql = b, *qh = b + 128, *sc = b + 192;
        float d = h16(b + 208);
        for (int h = 0; h < 2; h++)
            for (int q = 0; q < 4; q++) { // elements 128h + 32q + i
                for (int i = 0; i < 32; i += 8) {
                    uint64_t lo = ld64u(ql + 64 * h + 32 * (q & 1) + i) >> (4 * (q >> 1)) & NIB;
                    uint64_t hi = ld64u(qh + 32 * h + i) >> (2 * q) & 0x0303030303030303ULL;
                    st64u(u + i, lo | hi << 4);
                }
                for (int half = 0; half < 2; half++) // sub-blocks of 16 share a scale
                    codes_to_floats(y + 128 * h + 32 * q + 16 * half, u + 16 * half, 16,
                                    VSET1(d * (float)(signed char)sc[8 * h + 2 * q + half]), off);
            }
    }
}

static quant_blocks_fn qdec_of(int type) {
    if (!QFAST) return NULL;
    switch (type) {
    case QT_Q8_0: return dq_q8_0;
    case QT_Q4_0: return dq_q4_0;
    case QT_Q5_0: return dq_q5_0;
    case QT_Q4_K: return dq_q4_k;
    case QT_Q6_K: return dq_q6_k;
    default: return NULL;
    }
}

/* qmat_row with the decoders above */
static void qrow(const QMat *m, int r, int c0, int n, float *dst) { qmat_row_with(m, r, c0, n, dst, qdec_of(m->type)); }

/* The packs of a B held as blocks (B.q). The values packed are the decoded ones, bit for bit, laid
 * out as the fp32 packs lay them, so a product is the same as on the decoded matrix. */
static void pack_b_panel(float *restrict dst, mat B, int p0, int kc, int j0, int nr);
/* one panel of B = W^T: its nr rows of W (kc elements each) decoded, then the fp32 transposing pack */
static void pack_b_panel_q(float *restrict dst, mat B, int p0, int kc, int j0, int nr) {
    float rows[NR * KC_MAX];
    if (B.rs == 1) {
        for (int j = 0; j < nr; j++) qrow(B.q, j0 + j, p0, kc, rows + (size_t)j * kc);
        mat D = {rows, 1, (size_t)kc, NULL};
        pack_b_panel(dst, D, 0, kc, 0, nr);
    } else { // B = W (one panel; pack_b_slice decodes whole slices, this is for a lone panel)
        for (int p = 0; p < kc; p++) {
            float *d = dst + (size_t)p * NR;
            qrow(B.q, p0 + p, j0, nr, d);
            for (int j = nr; j < NR; j++) d[j] = 0;
        }
    }
}

/* B rows p0..p0+kc-1, columns j0..j0+nr-1 -> one NR-wide panel: dst[p*NR + j], columns >= nr zero */
static void pack_b_panel(float *restrict dst, mat B, int p0, int kc, int j0, int nr) {
    if (B.q) {
        pack_b_panel_q(dst, B, p0, kc, j0, nr);
        return;
    }
    if (B.cs == 1) { // rows of B contiguous (NN, TN): vector copies with a masked tail
        for (int p = 0; p < kc; p++) {
            const float *s = B.p + (size_t)(p0 + p) * B.rs + j0;
            float *d = dst + (size_t)p * NR;
            SIMD_UNROLL for (int j = 0; j < NRV; j++) {
                int cnt = nr - j * VW;
                VSTORE(d + j * VW, cnt >= VW ? VLOAD(s + j * VW) : cnt > 0 ? VLOADN(s + j * VW, cnt) : VZERO());
            }
        }
    } else if (B.rs == 1) { // B = W^T of the forward: each column is a contiguous row of W
        int jv = nr / VW * VW, pv = kc / VW * VW;
        for (int jb = 0; jb < jv; jb += VW) { // VW rows of W at a time: VW x VW blocks in registers
            const float *s = B.p + (size_t)(j0 + jb) * B.cs + p0;
            for (int pb = 0; pb < pv; pb += VW) VTRANSPOSE(dst + (size_t)pb * NR + jb, NR, s + pb, B.cs);
            for (int j = 0; j < VW; j++)
                for (int p = pv; p < kc; p++) dst[(size_t)p * NR + jb + j] = s[(size_t)j * B.cs + p];
        }
        for (int j = jv; j < nr; j++) {
            const float *s = B.p + (size_t)(j0 + j) * B.cs + p0;
            for (int p = 0; p < kc; p++) dst[(size_t)p * NR + j] = s[p];
        }
    } else { // any other strides: element by element
        for (int j = 0; j < nr; j++) {
            const float *s = B.p + (size_t)(j0 + j) * B.cs + (size_t)p0 * B.rs;
            for (int p = 0; p < kc; p++) dst[(size_t)p * NR + j] = s[(size_t)p * B.rs];
        }
    }
    if (B.cs != 1) // (the transposing packs) columns past nr are zero
        for (int j = nr; j < NR; j++)
            for (int p = 0; p < kc; p++) dst[(size_t)p * NR + j] = 0;
}

/* the npan panels of B's rows pc..pc+kc-1, columns jc..jc+nc-1. B = W held as blocks: each row of
 * the slice is decoded once (a block is wider than a panel) and dealt out to the panels */
static void pack_b_slice(float *restrict Bp, mat B, int pc, int kc, int jc, int nc) {
    int npan = (nc + NR - 1) / NR;
    if (B.q && B.cs == 1 && nc <= NC_MAX) {
        float row[NC_MAX];
        for (int p = 0; p < kc; p++) {
            qrow(B.q, pc + p, jc, nc, row);
            for (int q = 0; q < npan; q++) {
                int nr = imin(NR, nc - q * NR);
                float *d = Bp + (size_t)q * kc * NR + (size_t)p * NR;
                memcpy(d, row + q * NR, (size_t)nr * sizeof(float));
                for (int j = nr; j < NR; j++) d[j] = 0;
            }
        }
        return;
    }
    for (int q = 0; q < npan; q++) pack_b_panel(Bp + (size_t)q * kc * NR, B, pc, kc, jc + q * NR, imin(NR, nc - q * NR));
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* One thread's part of C: rows i0..i0+M-1, columns j0..j0+N-1, the whole of K, serially (BLIS
 * loops). Ap / Bp are this thread's packing buffers (mcb x kcb, kcb x ncb floats). */
static void gemm_part(int i0, int M, int j0, int N, int K, mat A, mat B, float *C, size_t ldc, int add, int kcb,
                      int mcb, int ncb, float *Ap, float *Bp) {
    for (int jc = j0; jc < j0 + N; jc += ncb) {
        int nc = imin(ncb, j0 + N - jc), npan = (nc + NR - 1) / NR;
        for (int pc = 0; pc < K; pc += kcb) {
            int kc = imin(kcb, K - pc), acc = add || pc > 0;
            pack_b_slice(Bp, B, pc, kc, jc, nc);
            for (int ic = i0; ic < i0 + M; ic += mcb) {
                int mc = imin(mcb, i0 + M - ic), mpan = (mc + MR - 1) / MR;
                pack_a_block(Ap, A, ic, mc, pc, kc);
                for (int q = 0; q < npan; q++) // a B panel stays in L1 while the A panels stream from L2
                    for (int r = 0; r < mpan; r++) {
                        int nr = imin(NR, nc - q * NR), mr = imin(MR, mc - r * MR);
                        const float *ap = Ap + (size_t)r * kc * MR, *bp = Bp + (size_t)q * kc * NR;
                        float *c = C + (size_t)(ic + r * MR) * ldc + jc + q * NR;
                        if (mr == MR && nr == NR) {
                            ukernel(kc, ap, bp, c, ldc, acc);
                        } else { // edge tile: full tile into a buffer, the valid part into C
                            float tile[MR * NR];
                            ukernel(kc, ap, bp, tile, NR, 0);
                            for (int i = 0; i < mr; i++)
                                for (int j = 0; j < nr; j++) {
                                    float *cij = c + (size_t)i * ldc + j;
                                    *cij = acc ? *cij + tile[i * NR + j] : tile[i * NR + j];
                                }
                        }
                    }
            }
        }
    }
}

/* Threads split C into one contiguous part each, along M (whole MR panels) when it has at least as
 * many panels as N, else along N; each packs what its part needs into its own buffers, so there is
 * no barrier inside (robust when a thread is preempted). A duplicated packing costs ~K/(32 M_part)
 * of the arithmetic. Returns -1 (nothing written) when the buffers cannot be allocated. */
static int gemm(int M, int N, int K, mat A, mat B, float *C, size_t ldc, int add) {
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) {
        if (!add)
            for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        return 0;
    }
    int nth = 1;
#ifdef _OPENMP
    if ((double)M * N * K > 65536.0) nth = omp_get_max_threads();
#endif
    int mpan = (M + MR - 1) / MR, npan = (N + NR - 1) / NR, split_m = mpan >= npan;
    if (nth > (split_m ? mpan : npan)) nth = split_m ? mpan : npan;
    // block sizes (they change no result: a C element's sum depends on kcb only, a function of K)
    int Mp = split_m ? (mpan + nth - 1) / nth * MR : M, Np = split_m ? N : (npan + nth - 1) / nth * NR;
    int nk = (K + KC_MAX - 1) / KC_MAX, kcb = (K + nk - 1) / nk;
    int nn = (Np + NC_MAX - 1) / NC_MAX, ncb = (int)round_up((size_t)((Np + nn - 1) / nn), NR);
    int nm = (Mp + MC_MAX - 1) / MC_MAX, mcb = (int)round_up((size_t)((Mp + nm - 1) / nm), MR);
    size_t abytes = round_up((size_t)mcb * kcb * sizeof(float), 64), bbytes = round_up((size_t)ncb * kcb * sizeof(float), 64);
    char *buf = aligned_alloc(64, (abytes + bbytes) * (size_t)nth);
    if (!buf) return -1;
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int tid = 0, T = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num(), T = omp_get_num_threads();
#endif
        float *Ap = (float *)(buf + (abytes + bbytes) * (size_t)tid), *Bp = (float *)((char *)Ap + abytes);
        int pan = split_m ? mpan : npan, p0 = (int)((long)pan * tid / T), p1 = (int)((long)pan * (tid + 1) / T);
        if (split_m) {
            int i0 = p0 * MR, i1 = imin(M, p1 * MR);
            if (i1 > i0) gemm_part(i0, i1 - i0, 0, N, K, A, B, C, ldc, add, kcb, mcb, ncb, Ap, Bp);
        } else {
            int j0 = p0 * NR, j1 = imin(N, p1 * NR);
            if (j1 > j0) gemm_part(0, M, j0, j1 - j0, K, A, B, C, ldc, add, kcb, mcb, ncb, Ap, Bp);
        }
    }
    free(buf);
    return 0;
}

/* ============================================================================================ */
/* linear layers                                                                                 */

static void matmul_forward_simd(float *out, const float *inp, const float *w, int N, int IC, int OC) {
    // out (N,OC) = inp (N,IC) . w (OC,IC)^T
    if (N <= GEMV_MAX_ROWS) { // a few rows (decoding): stream W once, one dot per output
        double work = (double)N * IC * OC;
        (void)work;
#pragma omp parallel for schedule(static) if (work > 32768.0)
        for (int o = 0; o < OC; o++)
            for (int n = 0; n < N; n++)
                out[(size_t)n * OC + o] = vdot(inp + (size_t)n * IC, w + (size_t)o * IC, IC);
        return;
    }
    mat A = {inp, (size_t)IC, 1, NULL}, B = {w, 1, (size_t)IC, NULL};
    if (gemm(N, OC, IC, A, B, out, (size_t)OC, 0)) matmul_forward(out, inp, w, N, IC, OC);
}

static void matmul_backward_simd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                 int N, int IC, int OC) {
    // dinp (N,IC) += dout (N,OC) . w (OC,IC)            (NN)
    if (dinp) {
        mat A = {dout, (size_t)OC, 1, NULL}, B = {w, (size_t)IC, 1, NULL};
        if (gemm(N, IC, OC, A, B, dinp, (size_t)IC, 1)) matmul_backward(dinp, NULL, dout, inp, w, N, IC, OC);
    }
    // dw (OC,IC) += dout^T (OC,N) . inp (N,IC)          (TN)
    if (dw) {
        mat A = {dout, 1, (size_t)OC, NULL}, B = {inp, (size_t)IC, 1, NULL};
        if (gemm(OC, IC, N, A, B, dw, (size_t)IC, 1)) matmul_backward(NULL, dw, dout, inp, w, N, IC, OC);
    }
}

#ifndef QROW_MAX
#define QROW_MAX 16384 /* the few-row path decodes one row of W on the stack */
#endif

static void qmatmul_forward_simd(float *out, const float *inp, const QMat *w, int N) {
    // out (N,OC) = inp (N,IC) . W (OC,IC)^T, W decoded while packed (the products of matmul_forward_simd)
    int IC = w->cols, OC = w->rows;
    if (N <= GEMV_MAX_ROWS && IC <= QROW_MAX) { // a few rows: decode each row of W once, one dot per output
        double work = (double)N * IC * OC;
        (void)work;
#pragma omp parallel for schedule(static) if (work > 32768.0)
        for (int o = 0; o < OC; o++) {
            float row[QROW_MAX];
            qrow(w, o, 0, IC, row);
            for (int n = 0; n < N; n++) out[(size_t)n * OC + o] = vdot(inp + (size_t)n * IC, row, IC);
        }
        return;
    }
    mat A = {inp, (size_t)IC, 1, NULL}, B = {NULL, 1, (size_t)IC, w};
    if (gemm(N, OC, IC, A, B, out, (size_t)OC, 0)) qmatmul_forward(out, inp, w, N);
}

static void qmatmul_backward_simd(float *dinp, const float *dout, const QMat *w, int N) {
    // dinp (N,IC) += dout (N,OC) . W (OC,IC)            (NN, W decoded while packed)
    int IC = w->cols, OC = w->rows;
    mat A = {dout, (size_t)OC, 1, NULL}, B = {NULL, (size_t)IC, 1, w};
    if (gemm(N, IC, OC, A, B, dinp, (size_t)IC, 1)) qmatmul_backward(dinp, dout, w, N);
}

/* ============================================================================================ */
/* RMSNorm                                                                                       */

static void rmsnorm_forward_simd(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                                 double eps) {
    // out, inp (N,C); rstd (N); w (C).  out = w * (x * r), the same products as ref
#pragma omp parallel for schedule(static) if (N * (size_t)C > 16384)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float ss = vdot(x, x, C);
        float r = (float)(1.0 / sqrt((double)(ss / C) + eps));
        vf vr = VSET1(r);
        int c = 0;
        for (; c + VW <= C; c += VW) VSTORE(o + c, VMUL(VLOAD(w + c), VMUL(VLOAD(x + c), vr)));
        if (c < C) VSTOREN(o + c, VMUL(VLOADN(w + c, C - c), VMUL(VLOADN(x + c, C - c), vr)), C - c);
        rstd[n] = r;
    }
}

static void rmsnorm_backward_simd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                  const float *rstd, int N, int C) {
    // u = g * w:  dx_c += r u_c - (r^3 / C) x_c sum_j u_j x_j ;  dw_c += sum_n g_c x_c r
    if (dinp) {
#pragma omp parallel for schedule(static) if (N * (size_t)C > 16384)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float r = rstd[n];
            vf s = VZERO();
            int c = 0;
            for (; c + VW <= C; c += VW) s = VFMA(VMUL(VLOAD(g + c), VLOAD(w + c)), VLOAD(x + c), s);
            if (c < C) s = VFMA(VMUL(VLOADN(g + c, C - c), VLOADN(w + c, C - c)), VLOADN(x + c, C - c), s);
            float dot = VHSUM(s);
            float k = r * r * r / C;
            vf vr = VSET1(r), vk = VSET1(k), vd = VSET1(dot);
            for (c = 0; c < C; c += VW) {
                int cnt = imin(VW, C - c);
                vf t = VSUB(VMUL(VMUL(vr, vload_part(g + c, cnt)), vload_part(w + c, cnt)),
                            VMUL(VMUL(vk, vload_part(x + c, cnt)), vd));
                vstore_part(dx + c, VADD(vload_part(dx + c, cnt), t), cnt);
            }
        }
    }
    if (dw) {
        // blocks of 4 vectors of columns; each sums over n in order (the products of ref, in ref's
        // order: (g x) r)
        int nb = (C + 4 * VW - 1) / (4 * VW);
#pragma omp parallel for schedule(static) if (N * (size_t)C > 16384)
        for (int blk = 0; blk < nb; blk++) {
            int c0 = blk * 4 * VW;
            for (int c = c0; c < imin(C, c0 + 4 * VW); c += VW) {
                int cnt = imin(VW, C - c);
                vf s = VZERO();
                for (int n = 0; n < N; n++)
                    s = VADD(s, VMUL(VMUL(vload_part(dout + (size_t)n * C + c, cnt), vload_part(inp + (size_t)n * C + c, cnt)),
                                     VSET1(rstd[n])));
                vstore_part(dw + c, VADD(vload_part(dw + c, cnt), s), cnt);
            }
        }
    }
}

/* ============================================================================================ */
/* RoPE (rotate-half): the products of ref, lane-wise                                           */

static void rope_forward_simd(float *out, const float *inp, const float *cos_t, const float *sin_t, int N, int NH,
                              int HS) {
    // out1 = x1 c - x2 s ;  out2 = x2 c + x1 s   (x1 = x[j], x2 = x[j + HS/2]); x[HS-1] of an odd HS untouched
    int H2 = HS / 2;
#pragma omp parallel for schedule(static) if (N * (size_t)NH * HS > 16384)
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)n * H2, *s = sin_t + (size_t)n * H2;
        for (int h = 0; h < NH; h++) {
            const float *x = inp + ((size_t)n * NH + h) * HS;
            float *o = out + ((size_t)n * NH + h) * HS;
            for (int j = 0; j < H2; j += VW) {
                int cnt = imin(VW, H2 - j);
                vf x1 = vload_part(x + j, cnt), x2 = vload_part(x + j + H2, cnt);
                vf vc = vload_part(c + j, cnt), vs = vload_part(s + j, cnt);
                vstore_part(o + j, VSUB(VMUL(x1, vc), VMUL(x2, vs)), cnt);
                vstore_part(o + j + H2, VADD(VMUL(x2, vc), VMUL(x1, vs)), cnt);
            }
        }
    }
}

static void rope_backward_simd(float *dinp, const float *dout, const float *cos_t, const float *sin_t, int N,
                               int NH, int HS) {
    // the transposed rotation:  dx1 += g1 c + g2 s ;  dx2 += g2 c - g1 s
    int H2 = HS / 2;
#pragma omp parallel for schedule(static) if (N * (size_t)NH * HS > 16384)
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)n * H2, *s = sin_t + (size_t)n * H2;
        for (int h = 0; h < NH; h++) {
            const float *g = dout + ((size_t)n * NH + h) * HS;
            float *dx = dinp + ((size_t)n * NH + h) * HS;
            for (int j = 0; j < H2; j += VW) {
                int cnt = imin(VW, H2 - j);
                vf g1 = vload_part(g + j, cnt), g2 = vload_part(g + j + H2, cnt);
                vf vc = vload_part(c + j, cnt), vs = vload_part(s + j, cnt);
                vstore_part(dx + j, VADD(vload_part(dx + j, cnt), VADD(VMUL(g1, vc), VMUL(g2, vs))), cnt);
                vstore_part(dx + j + H2, VADD(vload_part(dx + j + H2, cnt), VSUB(VMUL(g2, vc), VMUL(g1, vs))), cnt);
            }
        }
    }
}

/* ============================================================================================ */
/* attention                                                                                     */

#define ATT_BK 64 /* keys per block of the online softmax */

static void attention_forward_simd(float *out, float *lse, float *att, const float *q, const float *k, const float *v,
                                   const int *keymask, const AttnSpec *spec, int B, int T, int S, int NH, int NKV,
                                   int HS) {
    // q (B,T,NH,HS); k, v (B,S,NKV,HS); lse (B,NH,T); att (B,NH,T,S) or NULL; out (B,T,NH,HS).
    // One task per (b, h). Flash style over blocks of ATT_BK keys: the block's scaled scores (-inf
    // where not visible), m = the running max, l = sum exp(z - m), out = sum exp(z - m) v; a block
    // with a larger max rescales l and out by exp(m_old - m_new). out /= l and lse = m + log l at the end.
    int rep = NH / NKV, off = S - T;
    float scale = (float)attn_scale(spec, HS);
    size_t kstride = (size_t)NKV * HS;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * NH * T * S * HS > 16384)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int g = h / rep;
            const float *kb = k + ((size_t)b * S * NKV + g) * HS, *vb = v + ((size_t)b * S * NKV + g) * HS;
            const int *km = keymask ? keymask + (size_t)b * S : NULL;
            float z[ATT_BK];
            for (int t = 0; t < T; t++) {
                const float *qt = q + (((size_t)b * T + t) * NH + h) * HS;
                float *o = out + (((size_t)b * T + t) * NH + h) * HS;
                int lim = t + off + 1; // causal: keys 0..lim-1 (lim <= S)
                float m = -INFINITY, l = 0;
                for (int i = 0; i < HS; i++) o[i] = 0;
                for (int s0 = 0; s0 < lim; s0 += ATT_BK) {
                    int n = imin(ATT_BK, lim - s0);
                    float bmax = -INFINITY;
                    for (int j = 0; j < n; j++) {
                        int s = s0 + j;
                        z[j] = attn_visible(spec, km, t, s, off) ? vdot(qt, kb + (size_t)s * kstride, HS) * scale : -INFINITY;
                        if (z[j] > bmax) bmax = z[j];
                    }
                    if (bmax == -INFINITY) continue; // nothing visible in this block
                    if (bmax > m) { // a new max: what was summed so far shrinks
                        float c = m == -INFINITY ? 0.0f : (float)exp((double)(m - bmax));
                        l *= c;
                        vf vc = VSET1(c);
                        for (int i = 0; i < HS; i += VW) {
                            int cnt = imin(VW, HS - i);
                            vstore_part(o + i, VMUL(vload_part(o + i, cnt), vc), cnt);
                        }
                        m = bmax;
                    }
                    vf vm = VSET1(m), acc = VZERO();
                    for (int j = 0; j < n; j += VW) { // exp(z - m): exactly 0 where z = -inf
                        int cnt = imin(VW, n - j);
                        vf e = vexp(VSUB(vload_part(z + j, cnt), vm));
                        vstore_part(z + j, e, cnt);
                        acc = VADD(acc, vkeep_first(e, cnt));
                    }
                    l += VHSUM(acc);
                    wsum_rows(o, 1.0f, z, vb + (size_t)s0 * kstride, kstride, n, HS, 1); // (zero weights skipped)
                }
                float *lt = lse + ((size_t)b * NH + h) * T + t;
                *lt = l > 0 ? m + (float)log((double)l) : 0; // no visible key: out stays 0 (lse unused then)
                if (l > 0) {
                    vf inv = VSET1(1.0f / l);
                    for (int i = 0; i < HS; i += VW) {
                        int cnt = imin(VW, HS - i);
                        vstore_part(o + i, VMUL(vload_part(o + i, cnt), inv), cnt);
                    }
                }
                if (!att) continue;
                float *pr = att + (((size_t)b * NH + h) * T + t) * S; // the probabilities, from lse
                for (int s = 0; s < S; s++)
                    pr[s] = l > 0 && s < lim && attn_visible(spec, km, t, s, off)
                                ? (float)exp((double)(vdot(qt, kb + (size_t)s * kstride, HS) * scale - *lt))
                                : 0.0f;
            }
        }
}

static void attention_backward_simd(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                                    const float *k, const float *v, const float *lse, const int *keymask,
                                    const AttnSpec *spec, int B, int T, int S, int NH, int NKV, int HS) {
    // p_s = exp(z_s - lse) recomputed ; dp_s = do.v_s ; dz_s = p_s (dp_s - sum_s' p_s' dp_s') ;
    // dq += scale sum_s dz_s k_s ; dk_s += scale dz_s q ; dv_s += p_s do.  One task per (b, KV head g):
    // it owns dk/dv of head g and its scratch (p and dz of one query row, 2S floats), and walks the
    // query rows in the order h, then t (the order of every dk/dv sum, whatever the thread count).
    int rep = NH / NKV, off = S - T;
    float scale = (float)attn_scale(spec, HS);
    size_t kstride = (size_t)NKV * HS;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * NH * T * S * HS > 16384)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < NKV; g++) {
            const float *kb = k + ((size_t)b * S * NKV + g) * HS, *vb = v + ((size_t)b * S * NKV + g) * HS;
            float *dkb = dk + ((size_t)b * S * NKV + g) * HS, *dvb = dv + ((size_t)b * S * NKV + g) * HS;
            const int *km = keymask ? keymask + (size_t)b * S : NULL;
            float *p = scratch + ((size_t)b * NKV + g) * 2 * S, *dz = p + S;
            for (int h = g * rep; h < (g + 1) * rep; h++)
                for (int t = 0; t < T; t++) {
                    float lt = lse[((size_t)b * NH + h) * T + t]; // (a row that saw no key: p = 0 below)
                    const float *dot = dout + (((size_t)b * T + t) * NH + h) * HS;
                    const float *qt = q + (((size_t)b * T + t) * NH + h) * HS;
                    float *dqt = dq + (((size_t)b * T + t) * NH + h) * HS;
                    int lim = t + off + 1;
                    for (int s = 0; s < lim; s++) // scores (-inf where not visible), then p = exp(z - lse)
                        p[s] = attn_visible(spec, km, t, s, off) ? vdot(qt, kb + (size_t)s * kstride, HS) * scale : -INFINITY;
                    vf vl = VSET1(lt);
                    for (int s = 0; s < lim; s += VW) {
                        int cnt = imin(VW, lim - s);
                        vstore_part(p + s, vexp(VSUB(vload_part(p + s, cnt), vl)), cnt);
                    }
                    float psum = 0;
                    for (int s = 0; s < lim; s++) {
                        if (p[s] == 0) { dz[s] = 0; continue; }
                        dz[s] = vdot(dot, vb + (size_t)s * kstride, HS);
                        psum += p[s] * dz[s];
                    }
                    for (int s = 0; s < lim; s++)
                        if (p[s] != 0) dz[s] = p[s] * (dz[s] - psum);
                    wsum_rows(dqt, scale, dz, kb, kstride, lim, HS, 1);
                    for (int s = 0; s < lim; s++) { // dk_s += scale dz_s q, dv_s += p_s do
                        if (p[s] == 0) continue;
                        vf zk = VSET1(scale * dz[s]), pv = VSET1(p[s]);
                        float *dks = dkb + (size_t)s * kstride, *dvs = dvb + (size_t)s * kstride;
                        for (int i = 0; i < HS; i += VW) {
                            int cnt = imin(VW, HS - i);
                            vstore_part(dks + i, VFMA(zk, vload_part(qt + i, cnt), vload_part(dks + i, cnt)), cnt);
                            vstore_part(dvs + i, VFMA(pv, vload_part(dot + i, cnt), vload_part(dvs + i, cnt)), cnt);
                        }
                    }
                }
        }
}

/* ============================================================================================ */
/* SwiGLU                                                                                        */

#define ELEM_CHUNK 4096 /* elements per OpenMP work item of the elementwise ops */

SIMD_INLINE vf vsigmoid(vf a) { return VDIV(VSET1(1.0f), VADD(VSET1(1.0f), vexp(VSUB(VZERO(), a)))); }

static void swiglu_forward_simd(float *out, const float *gate, const float *up, size_t n) {
    // out = silu(gate) * up = (gate sigma(gate)) up
    long nchunk = (long)((n + ELEM_CHUNK - 1) / ELEM_CHUNK);
#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (long ch = 0; ch < nchunk; ch++) {
        size_t i0 = (size_t)ch * ELEM_CHUNK, i1 = i0 + ELEM_CHUNK < n ? i0 + ELEM_CHUNK : n;
        for (size_t i = i0; i < i1; i += VW) {
            int cnt = (int)(i1 - i < VW ? i1 - i : VW);
            vf a = vload_part(gate + i, cnt);
            vstore_part(out + i, VMUL(VMUL(a, vsigmoid(a)), vload_part(up + i, cnt)), cnt);
        }
    }
}

static void swiglu_backward_simd(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                                 size_t n) {
    // silu'(a) = sigma(a) (1 + a (1 - sigma(a)))
    long nchunk = (long)((n + ELEM_CHUNK - 1) / ELEM_CHUNK);
#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (long ch = 0; ch < nchunk; ch++) {
        size_t i0 = (size_t)ch * ELEM_CHUNK, i1 = i0 + ELEM_CHUNK < n ? i0 + ELEM_CHUNK : n;
        vf one = VSET1(1.0f);
        for (size_t i = i0; i < i1; i += VW) {
            int cnt = (int)(i1 - i < VW ? i1 - i : VW);
            vf a = vload_part(gate + i, cnt), sg = vsigmoid(a), g = vload_part(dout + i, cnt);
            if (dgate) {
                vf d = VMUL(VMUL(VMUL(g, vload_part(up + i, cnt)), sg), VADD(one, VMUL(a, VSUB(one, sg))));
                vstore_part(dgate + i, VADD(vload_part(dgate + i, cnt), d), cnt);
            }
            if (dup) vstore_part(dup + i, VADD(vload_part(dup + i, cnt), VMUL(VMUL(g, a), sg)), cnt);
        }
    }
}

/* ============================================================================================ */
/* GeGLU (Gemma 3): out = gelu_tanh(gate) * up                                                   */

/* tanh(u) = 1 - 2 / (exp(2u) + 1): exact limits +-1 (vexp saturates at e^88 and flushes below e^-87) */
SIMD_INLINE vf vtanh(vf u) {
    vf one = VSET1(1.0f);
    return VSUB(one, VDIV(VSET1(2.0f), VADD(vexp(VADD(u, u)), one)));
}
#define GELU_K0F 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1F 0.044715f

static void geglu_forward_simd(float *out, const float *gate, const float *up, size_t n) {
    long nchunk = (long)((n + ELEM_CHUNK - 1) / ELEM_CHUNK);
#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (long ch = 0; ch < nchunk; ch++) {
        size_t i0 = (size_t)ch * ELEM_CHUNK, i1 = i0 + ELEM_CHUNK < n ? i0 + ELEM_CHUNK : n;
        vf half = VSET1(0.5f), one = VSET1(1.0f), k0 = VSET1(GELU_K0F), k1 = VSET1(GELU_K1F);
        for (size_t i = i0; i < i1; i += VW) {
            int cnt = (int)(i1 - i < VW ? i1 - i : VW);
            vf a = vload_part(gate + i, cnt);
            vf th = vtanh(VMUL(k0, VADD(a, VMUL(k1, VMUL(a, VMUL(a, a))))));
            vstore_part(out + i, VMUL(VMUL(VMUL(half, a), VADD(one, th)), vload_part(up + i, cnt)), cnt);
        }
    }
}

static void geglu_backward_simd(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                                size_t n) {
    // gelu'(a) = 0.5 (1 + th) + 0.5 a (1 - th^2) k0 (1 + 3 k1 a^2)
    long nchunk = (long)((n + ELEM_CHUNK - 1) / ELEM_CHUNK);
#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (long ch = 0; ch < nchunk; ch++) {
        size_t i0 = (size_t)ch * ELEM_CHUNK, i1 = i0 + ELEM_CHUNK < n ? i0 + ELEM_CHUNK : n;
        vf half = VSET1(0.5f), one = VSET1(1.0f), k0 = VSET1(GELU_K0F), k1 = VSET1(GELU_K1F), k3 = VSET1(3.0f * GELU_K1F);
        for (size_t i = i0; i < i1; i += VW) {
            int cnt = (int)(i1 - i < VW ? i1 - i : VW);
            vf a = vload_part(gate + i, cnt), g = vload_part(dout + i, cnt), a2 = VMUL(a, a);
            vf th = vtanh(VMUL(k0, VADD(a, VMUL(k1, VMUL(a, a2)))));
            vf ha = VMUL(half, a);
            if (dgate) {
                vf d = VADD(VMUL(half, VADD(one, th)),
                            VMUL(VMUL(ha, VSUB(one, VMUL(th, th))), VMUL(k0, VADD(one, VMUL(k3, a2)))));
                vstore_part(dgate + i, VADD(vload_part(dgate + i, cnt), VMUL(VMUL(g, vload_part(up + i, cnt)), d)), cnt);
            }
            if (dup) vstore_part(dup + i, VADD(vload_part(dup + i, cnt), VMUL(g, VMUL(ha, VADD(one, th)))), cnt);
        }
    }
}

/* ============================================================================================ */
/* causal-LM cross-entropy                                                                      */

/* one row's max and sum of exp(z - max): exp in float, the sum in float blocks of 16 vectors added
 * in double (forward and backward share it, so both see the same softmax) */
static double row_sumexp(const float *z, int V, float *max) {
    vf vmx = VSET1(z[0]);
    int i = 0;
    for (; i + VW <= V; i += VW) vmx = VMAX(vmx, VLOAD(z + i));
    float m = VHMAX(vmx);
    for (; i < V; i++) m = z[i] > m ? z[i] : m;
    vf vm = VSET1(m);
    double se = 0;
    for (int i0 = 0; i0 < V; i0 += 16 * VW) {
        int i1 = imin(V, i0 + 16 * VW);
        vf acc = VZERO();
        for (i = i0; i < i1; i += VW) {
            int cnt = imin(VW, i1 - i);
            acc = VADD(acc, vkeep_first(vexp(VSUB(vload_part(z + i, cnt), vm)), cnt));
        }
        se += VHSUM(acc);
    }
    *max = m;
    return se;
}

static double crossentropy_forward_simd(long *count, const float *logits, const int *labels, int B, int T, int V) {
    // loss_sum = sum over kept rows of logsumexp(z) - z[target]; the rows in parallel, each row's
    // term into its slot, then the slots added in row order (the same sum for any thread count)
    size_t R = (size_t)B * T;
    double *term = malloc((R ? R : 1) * sizeof(double));
    if (!term) return crossentropy_forward(count, logits, labels, B, T, V);
#pragma omp parallel for schedule(static) if (R * (size_t)V > 16384)
    for (size_t r = 0; r < R; r++) {
        int t = (int)(r % (size_t)T);
        int y = t + 1 < T ? labels[r + 1] : -100;
        term[r] = NAN; // (not a target)
        if (y == -100) continue;
        const float *z = logits + r * V;
        float m;
        double se = row_sumexp(z, V, &m);
        term[r] = (double)m + log(se) - (double)z[y];
    }
    double sum = 0;
    long kept = 0;
    for (size_t r = 0; r < R; r++) {
        int t = (int)(r % (size_t)T);
        if (t + 1 < T && labels[r + 1] != -100) sum += term[r], kept++;
    }
    free(term);
    *count = kept;
    return sum;
}

static void crossentropy_backward_simd(float *dlogits, const float *logits, const int *labels, double scale, int B,
                                       int T, int V) {
    // dz_i += scale (softmax(z)_i - [i == target]) on kept rows. exp in float; the sum of the exps
    // in float blocks of 16 vectors added in double; the target's entry recomputed in double (its
    // p - 1 cancels when the model is confident).
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * T * V > 16384)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int y = t + 1 < T ? labels[(size_t)b * T + t + 1] : -100;
            if (y == -100) continue;
            const float *z = logits + ((size_t)b * T + t) * V;
            float *dz = dlogits + ((size_t)b * T + t) * V;
            float m;
            double se = row_sumexp(z, V, &m);
            vf vm = VSET1(m);
            int i;
            float dy = dz[y];
            vf vsc = VSET1((float)(scale / se));
            for (i = 0; i < V; i += VW) {
                int cnt = imin(VW, V - i);
                vf e = vexp(VSUB(vload_part(z + i, cnt), vm));
                vstore_part(dz + i, VFMA(vsc, e, vload_part(dz + i, cnt)), cnt);
            }
            dz[y] = dy + (float)(scale * (exp((double)z[y] - m) / se - 1.0));
        }
}

/* ============================================================================================ */
/* the tables                                                                                    */

const Kernels SIMD_FN(kernels) = {
    .name = SIMD_ISA_NAME,
    .matmul_forward = matmul_forward_simd,
    .matmul_backward = matmul_backward_simd,
    .rmsnorm_forward = rmsnorm_forward_simd,
    .rmsnorm_backward = rmsnorm_backward_simd,
    .rope_forward = rope_forward_simd,
    .rope_backward = rope_backward_simd,
    .attention_forward = attention_forward_simd,
    .attention_backward = attention_backward_simd,
    .swiglu_forward = swiglu_forward_simd,
    .swiglu_backward = swiglu_backward_simd,
    .geglu_forward = geglu_forward_simd,
    .geglu_backward = geglu_backward_simd,
    .crossentropy_forward = crossentropy_forward_simd,
    .crossentropy_backward = crossentropy_backward_simd,
    .qmatmul_forward = qmatmul_forward_simd,
    .qmatmul_backward = qmatmul_backward_simd,
};

#ifdef AFFIX_BLAS
const Kernels SIMD_FN(kernels_blas) = {
    .name = "blas+" SIMD_ISA_NAME,
    .matmul_forward = blas_matmul_forward,
    .matmul_backward = blas_matmul_backward,
    .rmsnorm_forward = rmsnorm_forward_simd,
    .rmsnorm_backward = rmsnorm_backward_simd,
    .rope_forward = rope_forward_simd,
    .rope_backward = rope_backward_simd,
    .attention_forward = attention_forward_simd,
    .attention_backward = attention_backward_simd,
    .swiglu_forward = swiglu_forward_simd,
    .swiglu_backward = swiglu_backward_simd,
    .geglu_forward = geglu_forward_simd,
    .geglu_backward = geglu_backward_simd,
    .crossentropy_forward = crossentropy_forward_simd,
    .crossentropy_backward = crossentropy_backward_simd,
    .qmatmul_forward = qmatmul_forward_simd,
    .qmatmul_backward = qmatmul_backward_simd,
};
#endif
