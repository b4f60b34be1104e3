/* simd.h — the macro vocabulary of simd/: one small set of names, mapped onto AVX2+FMA, AVX-512 and
 * NEON. simd/kernels.c is written once in this vocabulary and compiled once per ISA (the Makefile
 * defines exactly one of SIMD_ISA_AVX2 / SIMD_ISA_AVX512 / SIMD_ISA_NEON and passes that ISA's
 * flags to that object only), so one x86-64 binary carries every version and kernels_select()
 * picks one at run time.
 *
 * What it is not: a general SIMD library. Only float, only what the kernels use. Internal to simd/.
 *
 *   vf                  a vector of VW floats
 *   VZERO() VSET1(x)    all lanes 0 / x
 *   VLOAD(p) VSTORE(p,v)            VW floats, unaligned
 *   VLOADN(p,n) VSTOREN(p,v,n)      the first n (0 <= n <= VW) lanes; a load fills the rest with 0,
 *                                   a store leaves memory past p[n-1] untouched (tails)
 *   VADD VSUB VMUL VDIV VMIN VMAX   lane-wise, IEEE (no approximate reciprocals)
 *   VFMA(a,b,c)  = a*b + c          one rounding
 *   VFNMA(a,b,c) = c - a*b          one rounding
 *   VHSUM(v) VHMAX(v)               horizontal sum / max to a float (fixed order per ISA)
 *   VROUND(v)                       round to nearest integer (ties to even), as float
 *   VLDEXP(v,n)  = v * 2^n          n integer-valued in [-126, 127]
 *   VKEEP_GE(v,x,t)                 v where x >= t, else +0 (also where x is NaN)
 *   VTRANSPOSE(d,ds,s,ss)           a VW x VW block: d[i*ds + j] = s[j*ss + i] (exact: data moves only)
 *   SIMD_FN(name)                   name_avx2 / name_avx512 / name_neon: the ISA's copy of a symbol
 *   SIMD_ISA_NAME                   "avx2" / "avx512" / "neon"
 */
#ifndef AFFIX_SIMD_H
#define AFFIX_SIMD_H

#include <string.h>

#if defined(SIMD_ISA_AVX512)
/* ---- AVX-512F: 16 lanes, 32 zmm registers, native masks for tails ------------------------------ */
#include <immintrin.h>
typedef __m512 vf;
#define VW 16
#define SIMD_ISA_NAME "avx512"
#define SIMD_FN(name) name##_avx512
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VTAILMASK(n) ((__mmask16)((1u << (n)) - 1u))
#define VLOADN(p, n) _mm512_maskz_loadu_ps(VTAILMASK(n), (p))
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps((p), VTAILMASK(n), (v))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VDIV(a, b) _mm512_div_ps((a), (b))
#define VMIN(a, b) _mm512_min_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VFNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHMAX(v) _mm512_reduce_max_ps(v)
#define VROUND(v) _mm512_roundscale_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VLDEXP(v, n) _mm512_scalef_ps((v), (n))
#define VKEEP_GE(v, x, t) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((x), (t), _CMP_GE_OQ), (v))
/* VW bytes at p (unsigned / signed) as floats: the codes of a quantized block (exact) */
#define VCVT_U8(p) _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))))
#define VCVT_I8(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))))
/* 16 x 16 transpose in three rounds. Rows 4g..4g+3 first become, inside each 128-bit lane L, the
 * columns 4L+k of those 4 rows (u[g][k]: unpack + shuffle, a 4 x 4 transpose per lane); then output
 * column 4L+k is lane L of u[0][k], u[1][k], u[2][k], u[3][k] side by side (two lane shuffles). */
static inline void simd_transpose_avx512(float *d, size_t ds, const float *s, size_t ss) {
    __m512 u[4][4];
    for (int g = 0; g < 4; g++) {
        __m512 a = _mm512_loadu_ps(s + (size_t)(4 * g) * ss), b = _mm512_loadu_ps(s + (size_t)(4 * g + 1) * ss);
        __m512 c = _mm512_loadu_ps(s + (size_t)(4 * g + 2) * ss), e = _mm512_loadu_ps(s + (size_t)(4 * g + 3) * ss);
        __m512 t0 = _mm512_unpacklo_ps(a, b), t1 = _mm512_unpackhi_ps(a, b); // a0 b0 a1 b1 | a2 b2 a3 b3
        __m512 t2 = _mm512_unpacklo_ps(c, e), t3 = _mm512_unpackhi_ps(c, e);
        u[g][0] = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)); // a0 b0 c0 e0 (per lane)
        u[g][1] = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        u[g][2] = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        u[g][3] = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 4; k++) {
        __m512 x = _mm512_shuffle_f32x4(u[0][k], u[1][k], 0x44), y = _mm512_shuffle_f32x4(u[0][k], u[1][k], 0xEE);
        __m512 z = _mm512_shuffle_f32x4(u[2][k], u[3][k], 0x44), w = _mm512_shuffle_f32x4(u[2][k], u[3][k], 0xEE);
        _mm512_storeu_ps(d + (size_t)k * ds, _mm512_shuffle_f32x4(x, z, 0x88));        // lanes 0 of the 4 groups
        _mm512_storeu_ps(d + (size_t)(4 + k) * ds, _mm512_shuffle_f32x4(x, z, 0xDD));  // lanes 1
        _mm512_storeu_ps(d + (size_t)(8 + k) * ds, _mm512_shuffle_f32x4(y, w, 0x88));  // lanes 2
        _mm512_storeu_ps(d + (size_t)(12 + k) * ds, _mm512_shuffle_f32x4(y, w, 0xDD)); // lanes 3
    }
}
#define VTRANSPOSE(d, ds, s, ss) simd_transpose_avx512((d), (ds), (s), (ss))

#elif defined(SIMD_ISA_AVX2)
/* ---- AVX2 + FMA: 8 lanes, 16 ymm registers, tails through maskload/maskstore -------------------- */
#include <immintrin.h>
typedef __m256 vf;
#define VW 8
#define SIMD_ISA_NAME "avx2"
#define SIMD_FN(name) name##_avx2
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
/* lanes i < n all-ones */
#define VTAILMASK(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define VLOADN(p, n) _mm256_maskload_ps((p), VTAILMASK(n))
#define VSTOREN(p, v, n) _mm256_maskstore_ps((p), VTAILMASK(n), (v))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VDIV(a, b) _mm256_div_ps((a), (b))
#define VMIN(a, b) _mm256_min_ps((a), (b))
#define VMAX(a, b) _mm256_max_ps((a), (b))
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VFNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
static inline float simd_hsum_avx2(__m256 v) { // ((0+4)+(2+6)) + ((1+5)+(3+7))
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float simd_hmax_avx2(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define VHSUM(v) simd_hsum_avx2(v)
#define VHMAX(v) simd_hmax_avx2(v)
#define VROUND(v) _mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VLDEXP(v, n) \
    _mm256_mul_ps((v), _mm256_castsi256_ps(_mm256_slli_epi32( \
                           _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)))
#define VKEEP_GE(v, x, t) _mm256_and_ps((v), _mm256_cmp_ps((x), (t), _CMP_GE_OQ))
#define VCVT_U8(p) _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p))))
#define VCVT_I8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p))))
/* 8 x 8 transpose: a 4 x 4 transpose inside each 128-bit lane for rows 0-3 and 4-7 (unpack +
 * shuffle), then output column k (k < 4) = the low lanes of both halves, column 4+k the high lanes. */
static inline void simd_transpose_avx2(float *d, size_t ds, const float *s, size_t ss) {
    __m256 u[2][4];
    for (int g = 0; g < 2; g++) {
        __m256 a = _mm256_loadu_ps(s + (size_t)(4 * g) * ss), b = _mm256_loadu_ps(s + (size_t)(4 * g + 1) * ss);
        __m256 c = _mm256_loadu_ps(s + (size_t)(4 * g + 2) * ss), e = _mm256_loadu_ps(s + (size_t)(4 * g + 3) * ss);
        __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
        __m256 t2 = _mm256_unpacklo_ps(c, e), t3 = _mm256_unpackhi_ps(c, e);
        u[g][0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        u[g][1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        u[g][2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        u[g][3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(d + (size_t)k * ds, _mm256_permute2f128_ps(u[0][k], u[1][k], 0x20));
        _mm256_storeu_ps(d + (size_t)(4 + k) * ds, _mm256_permute2f128_ps(u[0][k], u[1][k], 0x31));
    }
}
#define VTRANSPOSE(d, ds, s, ss) simd_transpose_avx2((d), (ds), (s), (ss))

#elif defined(SIMD_ISA_NEON)
/* ---- NEON (AArch64 Advanced SIMD): 4 lanes, 32 q registers, tails through a stack copy ---------- */
#include <arm_neon.h>
typedef float32x4_t vf;
#define VW 4
#define SIMD_ISA_NAME "neon"
#define SIMD_FN(name) name##_neon
#define VZERO() vdupq_n_f32(0.0f)
#define VSET1(x) vdupq_n_f32(x)
#define VLOAD(p) vld1q_f32(p)
#define VSTORE(p, v) vst1q_f32((p), (v))
static inline float32x4_t simd_loadn_neon(const float *p, int n) {
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, (size_t)n * sizeof(float));
    return vld1q_f32(t);
}
static inline void simd_storen_neon(float *p, float32x4_t v, int n) {
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}
#define VLOADN(p, n) simd_loadn_neon((p), (n))
#define VSTOREN(p, v, n) simd_storen_neon((p), (v), (n))
#define VADD(a, b) vaddq_f32((a), (b))
#define VSUB(a, b) vsubq_f32((a), (b))
#define VMUL(a, b) vmulq_f32((a), (b))
#define VDIV(a, b) vdivq_f32((a), (b))
#define VMIN(a, b) vminq_f32((a), (b))
#define VMAX(a, b) vmaxq_f32((a), (b))
#define VFMA(a, b, c) vfmaq_f32((c), (a), (b))
#define VFNMA(a, b, c) vfmsq_f32((c), (a), (b))
#define VHSUM(v) vaddvq_f32(v)
#define VHMAX(v) vmaxvq_f32(v)
#define VROUND(v) vrndnq_f32(v)
#define VLDEXP(v, n) \
    vmulq_f32((v), vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23)))
#define VKEEP_GE(v, x, t) vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), vcgeq_f32((x), (t))))
/* (reads 8 bytes: the callers' code buffers are padded) */
#define VCVT_U8(p) vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vld1_u8((const uint8_t *)(p))))))
#define VCVT_I8(p) vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8((const int8_t *)(p))))))
/* 4 x 4 transpose: trn1/trn2 on 32-bit pairs of rows (0,1) and (2,3), then the 64-bit halves */
static inline void simd_transpose_neon(float *d, size_t ds, const float *s, size_t ss) {
    float32x4_t a = vld1q_f32(s), b = vld1q_f32(s + ss), c = vld1q_f32(s + 2 * ss), e = vld1q_f32(s + 3 * ss);
    float32x4_t t0 = vtrn1q_f32(a, b), t1 = vtrn2q_f32(a, b); // a0 b0 a2 b2 | a1 b1 a3 b3
    float32x4_t t2 = vtrn1q_f32(c, e), t3 = vtrn2q_f32(c, e);
    float64x2_t p0 = vreinterpretq_f64_f32(t0), p1 = vreinterpretq_f64_f32(t1);
    float64x2_t p2 = vreinterpretq_f64_f32(t2), p3 = vreinterpretq_f64_f32(t3);
    vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(p0, p2)));          // a0 b0 c0 e0
    vst1q_f32(d + ds, vreinterpretq_f32_f64(vtrn1q_f64(p1, p3)));     // a1 b1 c1 e1
    vst1q_f32(d + 2 * ds, vreinterpretq_f32_f64(vtrn2q_f64(p0, p2))); // a2 b2 c2 e2
    vst1q_f32(d + 3 * ds, vreinterpretq_f32_f64(vtrn2q_f64(p1, p3))); // a3 b3 c3 e3
}
#define VTRANSPOSE(d, ds, s, ss) simd_transpose_neon((d), (ds), (s), (ss))

#else
#error "simd.h: define one of SIMD_ISA_AVX2, SIMD_ISA_AVX512, SIMD_ISA_NEON"
#endif

/* Loop unrolling hint for the fixed-trip loops of the micro-kernels (register tiles). */
#if defined(__clang__)
#define SIMD_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define SIMD_UNROLL _Pragma("GCC unroll 16")
#else
#define SIMD_UNROLL
#endif

/* ---- e^x on a vector --------------------------------------------------------------------------- */
/* e^x = 2^n e^r with n = round(x log2 e) and r = x - n ln2 in [-ln2/2, ln2/2] (ln2 split in a high
 * part exact in few bits and a low part, so r carries no cancellation error); e^r by its Taylor
 * series through r^7 (truncation < 6e-9 relative), Horner with FMAs. Total error ~1-2 ulp.
 * x >= 88 returns e^88 (finite); x < -87 (and -inf, NaN) returns exactly 0, where the double
 * reference gives a float denormal or 0 — below 1e-37 in every use here (softmax, sigmoid). */
static inline vf vexp(vf x) {
    vf lo = VSET1(-87.0f);
    vf xc = VMIN(VMAX(x, lo), VSET1(88.0f));
    vf n = VROUND(VMUL(xc, VSET1(1.44269504088896341f)));
    vf r = VFNMA(n, VSET1(0.693145751953125f), xc);
    r = VFNMA(n, VSET1(1.42860682028622677e-06f), r);
    vf p = VSET1(1.0f / 5040.0f);
    p = VFMA(p, r, VSET1(1.0f / 720.0f));
    p = VFMA(p, r, VSET1(1.0f / 120.0f));
    p = VFMA(p, r, VSET1(1.0f / 24.0f));
    p = VFMA(p, r, VSET1(1.0f / 6.0f));
    p = VFMA(p, r, VSET1(0.5f));
    p = VFMA(p, r, VSET1(1.0f));
    p = VFMA(p, r, VSET1(1.0f));
    return VKEEP_GE(VLDEXP(p, n), x, lo);
}

#endif
