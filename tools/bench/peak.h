/* peak.h — the machine probes of `make bench` (tools/bench/probe.c): FMA throughput loops, one per
 * ISA, each in its own file compiled with that ISA's flags by the Makefile's bench rule.
 *
 * Each peak_* function runs `iters` rounds of independent FMA chains on the calling thread and
 * returns the number of floating-point operations it did (2 per lane per FMA). The chains are
 * independent (enough of them to cover the FMA latency on every pipe), so the loop runs at the
 * FMA throughput of the core. `seed` keeps the compiler from folding the loop; the result is
 * written to *sink.
 */
#ifndef AFFIX_BENCH_PEAK_H
#define AFFIX_BENCH_PEAK_H

double peak_generic(long iters, float seed, float *sink);
double peak_avx2(long iters, float seed, float *sink);   /* only with PROBE_HAVE_AVX2 */
double peak_avx512(long iters, float seed, float *sink); /* only with PROBE_HAVE_AVX512 */

#endif
