/* rng.c — see rng.h */
#include "rng.h"

#include <math.h>

unsigned long long afx_rng_next(AfxRng *r) {
    unsigned long long z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double afx_rng_uniform(AfxRng *r) { return (double)(afx_rng_next(r) >> 11) / 9007199254740992.0; }

double afx_rng_normal(AfxRng *r) {
    double u1 = afx_rng_uniform(r), u2 = afx_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}
