/* peak_generic.c — the FMA-throughput loop in plain C, for a machine without an x86 SIMD table
 * (e.g. AArch64, where the compiler vectorizes it into NEON FMAs: the bench rule compiles it with
 * -O3 -ffp-contract=fast). On x86-64 it measures the baseline (SSE2) ceiling, which no table
 * here uses when AVX2 is present; probe.c then reports the widest ISA instead.
 */
#include "peak.h"

#define W 64 /* 64 independent accumulators: 16 vectors of 4 lanes */

double peak_generic(long iters, float seed, float *sink) {
    float acc[W];
    const float a = 0.999999f, b = 1e-7f;
    for (int i = 0; i < W; i++) acc[i] = seed + (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < W; i++) acc[i] = acc[i] * a + b;
    float s = 0;
    for (int i = 0; i < W; i++) s += acc[i];
    *sink = s;
    return 2.0 * W * (double)iters;
}
