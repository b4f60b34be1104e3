/* rng.h — the one random number generator: splitmix64 (Steele, Lea, Flood 2014), deterministic and
 * stateless apart from the caller's 64-bit state (no global state). Used for initialization (the
 * adapters), sampling (sampler.c) and the benchmarks' random weights. */
#ifndef AFFIX_RNG_H
#define AFFIX_RNG_H

typedef struct {
    unsigned long long s;
} AfxRng;

unsigned long long afx_rng_next(AfxRng *r); /* 64 random bits */
double afx_rng_uniform(AfxRng *r);          /* [0,1), 53 bits */
double afx_rng_normal(AfxRng *r);           /* N(0,1), Box-Muller */

#endif
