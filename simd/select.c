/* select.c — which kernel table runs: a pure function of a name, of what this binary was built
 * with (AFFIX_HAVE_AVX2 / AFFIX_HAVE_AVX512 / AFFIX_HAVE_NEON / AFFIX_BLAS, set by the Makefile) and
 * of the CPU (asked on every call: no cached state). Compiled on every architecture; a table that
 * was not built is simply never named here.
 */
#ifdef AFFIX_F64
#error "simd/ is float only: the f64 build is the pure reference"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#define SIMD_X86 1
#endif

static int cpu_avx2(void) {
#if defined(AFFIX_HAVE_AVX2) && defined(SIMD_X86)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int cpu_avx512(void) {
#if defined(AFFIX_HAVE_AVX512) && defined(SIMD_X86)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int cpu_neon(void) {
#if defined(AFFIX_HAVE_NEON) && defined(__aarch64__)
    return 1; /* Advanced SIMD is part of every AArch64 CPU */
#else
    return 0;
#endif
}

/* a built table by ISA name, or NULL; does not ask the CPU */
static const Kernels *simd_table(const char *isa) {
#ifdef AFFIX_HAVE_AVX512
    if (!strcmp(isa, "avx512")) return &kernels_avx512;
#endif
#ifdef AFFIX_HAVE_AVX2
    if (!strcmp(isa, "avx2")) return &kernels_avx2;
#endif
#ifdef AFFIX_HAVE_NEON
    if (!strcmp(isa, "neon")) return &kernels_neon;
#endif
    (void)isa;
    return NULL;
}

static const Kernels *best_simd(void) {
    if (cpu_avx512()) return simd_table("avx512");
    if (cpu_avx2()) return simd_table("avx2");
    if (cpu_neon()) return simd_table("neon");
    return NULL;
}

static const Kernels *best_blas(void) {
#ifdef AFFIX_BLAS
    const Kernels *s = best_simd();
#ifdef AFFIX_HAVE_AVX512
    if (s == &kernels_avx512) return &kernels_blas_avx512;
#endif
#ifdef AFFIX_HAVE_AVX2
    if (s == &kernels_avx2) return &kernels_blas_avx2;
#endif
#ifdef AFFIX_HAVE_NEON
    if (s == &kernels_neon) return &kernels_blas_neon;
#endif
    (void)s;
    return &kernels_blas_ref;
#else
    return NULL;
#endif
}

const char *kernels_built(void) {
    return "ref"
#ifdef AFFIX_HAVE_AVX2
           " avx2"
#endif
#ifdef AFFIX_HAVE_AVX512
           " avx512"
#endif
#ifdef AFFIX_HAVE_NEON
           " neon"
#endif
#ifdef AFFIX_BLAS
           " blas"
#endif
        ;
}

const Kernels *kernels_select(const char *name, char *msg, size_t msglen) {
    if (!name || !*name) name = "auto";
    const Kernels *k = NULL;
    const char *why = NULL;
    if (!strcmp(name, "ref")) {
        k = &KERNELS_REF;
    } else if (!strcmp(name, "avx2") || !strcmp(name, "avx512") || !strcmp(name, "neon")) {
        int cpu = !strcmp(name, "avx2") ? cpu_avx2() : !strcmp(name, "avx512") ? cpu_avx512() : cpu_neon();
        k = simd_table(name);
        if (!k) why = "was not built into this binary";
        else if (!cpu) k = NULL, why = "is not supported by this CPU";
    } else if (!strcmp(name, "simd")) {
        k = best_simd();
        if (!k) why = "has no table for this CPU";
    } else if (!strcmp(name, "blas")) {
        k = best_blas();
        if (!k) why = "was not built in (OpenBLAS, openmp build, not found by make)";
    } else if (!strcmp(name, "auto")) { // own SIMD first: as fast here, and thread-count invariant
        k = best_simd();
        if (!k) k = best_blas();
        if (!k) k = &KERNELS_REF;
    } else {
        why = "is unknown (ref|simd|blas|auto|avx2|avx512|neon)";
    }
    if (!k && msg && msglen)
        snprintf(msg, msglen, "kernels '%s' %s; built here: %s", name, why ? why : "is not available", kernels_built());
    return k;
}

const Kernels *kernels_from_env(const char *fallback, char *msg, size_t msglen) {
    const char *v = getenv("AFFIX_KERNELS");
    return kernels_select(v && *v ? v : fallback, msg, msglen);
}

int kernels_available(const Kernels **list, int max) {
    const Kernels *all[8];
    int n = 0;
    all[n++] = &KERNELS_REF;
    if (cpu_avx2()) all[n++] = simd_table("avx2");
    if (cpu_avx512()) all[n++] = simd_table("avx512");
    if (cpu_neon()) all[n++] = simd_table("neon");
    if (best_blas()) all[n++] = best_blas();
    int m = n < max ? n : max;
    for (int i = 0; i < m; i++) list[i] = all[i];
    return m;
}
