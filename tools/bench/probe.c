/* probe.c — the machine numbers `make bench` compares against, measured at bench time:
 *   - the FMA peak: peak_* loops (peak.h) run on every OpenMP thread at once, for each ISA this
 *     binary has and the CPU runs; best of 3 runs of ~0.2 s. Each thread's rate is its flops over
 *     its own CPU time (CLOCK_THREAD_CPUTIME_ID), summed over the threads: the peak of the cores
 *     while they run, which another process on the machine does not lower (it lowers the measured
 *     wall-clock rates of the GEMMs, which then show a smaller fraction: the load average is in the
 *     table's header). The wall-clock rate of the same loop is reported beside it (peak_wall_gflops);
 *   - the memory bandwidth: a STREAM-triad loop a[i] = b[i] + s*c[i] over three 128 MiB arrays
 *     (far beyond any last-level cache), counted as STREAM does: 12 bytes per element (two reads,
 *     one write; the write-allocate traffic is not counted); best of 5.
 * Prints one JSON object on stdout; `affix bench --probe FILE` reads it. `probe --threads` prints
 * the OpenMP thread count only (the Makefile passes it to the PyTorch side).
 * Built only by the bench rule of the Makefile (-DPROBE_HAVE_AVX2 / -DPROBE_HAVE_AVX512 when the
 * compiler has them; each peak_* file with its own ISA flags).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "peak.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }

static int threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

typedef double (*peak_fn)(long, float, float *);

/* GFLOP/s of fn on all threads at once: iterations calibrated to ~0.2 s, best of 3; *wall = the
 * same over wall-clock time */
static double measure_peak(peak_fn fn, double *wall) {
    static float sink[1024];
    long iters = 1 << 16;
    for (;;) { // calibrate on one thread
        double t0 = now();
        fn(iters, 1.0f, &sink[0]);
        double dt = now() - t0;
        if (dt > 0.02) {
            iters = (long)((double)iters * 0.2 / dt) + 1;
            break;
        }
        iters *= 4;
    }
    double best = 0;
    *wall = 0;
    for (int rep = 0; rep < 3; rep++) {
        double flops = 0, rate = 0, t0 = now();
#pragma omp parallel reduction(+ : flops, rate)
        {
            int id = 0;
#ifdef _OPENMP
            id = omp_get_thread_num();
#endif
            double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
            double f = fn(iters, 1.0f + (float)id, &sink[(id % 64) * 16]);
            flops += f;
            rate += f / (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e-9;
        }
        double g = flops / (now() - t0) * 1e-9;
        if (g > *wall) *wall = g;
        if (rate > best) best = rate;
    }
    return best;
}

/* STREAM triad, GB/s (10^9 bytes) */
static double measure_triad(void) {
    const long n = 1L << 25; // 32 Mi floats = 128 MiB per array
    float *a = aligned_alloc(64, (size_t)n * sizeof(float)), *b = aligned_alloc(64, (size_t)n * sizeof(float)),
          *c = aligned_alloc(64, (size_t)n * sizeof(float));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) a[i] = 0, b[i] = 1.0f, c[i] = 2.0f; // first touch by the thread that uses it
    double best = 0;
    const float s = 3.0f;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        double g = 12.0 * (double)n / (now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    volatile float keep = a[n / 2];
    (void)keep;
    free(a), free(b), free(c);
    return best;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--threads")) {
        printf("%d\n", threads());
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: probe [--threads]\n");
        return 2;
    }
    const char *isa = "generic";
    double w_generic, w = 0; // w: the wall-clock rate of each wider ISA
    double g_generic = measure_peak(peak_generic, &w_generic), g_avx2 = 0, g_avx512 = 0, peak = g_generic, wall = w_generic;
#if defined(__x86_64__) || defined(__i386__)
#ifdef PROBE_HAVE_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        g_avx2 = measure_peak(peak_avx2, &w);
        isa = "avx2", peak = g_avx2, wall = w;
    }
#endif
#ifdef PROBE_HAVE_AVX512
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
        g_avx512 = measure_peak(peak_avx512, &w);
        isa = "avx512", peak = g_avx512, wall = w;
    }
#endif
#endif
    (void)w;
    double bw = measure_triad();
    printf("{\"threads\": %d, \"peak_isa\": \"%s\", \"peak_gflops\": %.2f, \"peak_wall_gflops\": %.2f, "
           "\"peak_generic\": %.2f, \"peak_avx2\": %.2f, \"peak_avx512\": %.2f, \"triad_gbs\": %.2f}\n",
           threads(), isa, peak, wall, g_generic, g_avx2, g_avx512, bw);
    return 0;
}
