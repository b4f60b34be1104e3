/* peak_x86.c — FMA-throughput loops for x86-64, compiled twice by the bench rule of the Makefile:
 * with -DPEAK_AVX2 -mavx2 -mfma (defines peak_avx2) and with -DPEAK_AVX512 -mavx512f -mfma
 * (defines peak_avx512). Intrinsics only; no asm.
 *
 * Each round issues CHAINS independent fused multiply-adds acc_i = acc_i * a + b. With a latency
 * of 4-5 cycles and two FMA pipes, 10+ chains keep every pipe busy; AVX2 has 16 registers (12
 * chains + 2 constants), AVX-512 has 32 (16 chains + 2 constants).
 */
#include <immintrin.h>

#include "peak.h"

#if defined(PEAK_AVX512)
#define VEC __m512
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define LANES 16
#define CHAINS 16
#define FN peak_avx512
static float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
#elif defined(PEAK_AVX2)
#define VEC __m256
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
#define LANES 8
#define CHAINS 12
#define FN peak_avx2
static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#else
#error "compile with -DPEAK_AVX2 or -DPEAK_AVX512"
#endif

double FN(long iters, float seed, float *sink) {
    VEC acc[CHAINS];
    VEC a = SET1(0.999999f), b = SET1(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = SET1(seed + (float)i);
    for (long it = 0; it < iters; it++) {
        /* written out so that every chain stays in a register */
        acc[0] = FMA(acc[0], a, b);
        acc[1] = FMA(acc[1], a, b);
        acc[2] = FMA(acc[2], a, b);
        acc[3] = FMA(acc[3], a, b);
        acc[4] = FMA(acc[4], a, b);
        acc[5] = FMA(acc[5], a, b);
        acc[6] = FMA(acc[6], a, b);
        acc[7] = FMA(acc[7], a, b);
        acc[8] = FMA(acc[8], a, b);
        acc[9] = FMA(acc[9], a, b);
        acc[10] = FMA(acc[10], a, b);
        acc[11] = FMA(acc[11], a, b);
#if CHAINS == 16
        acc[12] = FMA(acc[12], a, b);
        acc[13] = FMA(acc[13], a, b);
        acc[14] = FMA(acc[14], a, b);
        acc[15] = FMA(acc[15], a, b);
#endif
    }
    VEC s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = ADD(s, acc[i]);
    *sink = hsum(s);
    return 2.0 * LANES * CHAINS * (double)iters;
}
