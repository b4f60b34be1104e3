/* sampler.h — next-token choice from logits, as HF generate does it: temperature, then top-p
 * (nucleus: the smallest set of most likely tokens whose probability reaches p), then a draw.
 * Temperature 0 is greedy (the first maximal logit, like torch.argmax). The random state lives in
 * the Sampler (seeded), so a run is reproducible and there are no globals.
 */
#ifndef AFFIX_SAMPLER_H
#define AFFIX_SAMPLER_H

#include "err.h"
#include "real.h"

typedef struct {
    double temperature;    /* 0 = greedy */
    double top_p;          /* 1 = off */
    unsigned long long rng;/* state; set from the seed */
    int V;
    struct SamplerEntry { double p; int id; } *cand; /* (V) scratch: candidates and probabilities */
} Sampler;

int sampler_init(Sampler *s, int V, double temperature, double top_p, unsigned long long seed, afx_err *e);
void sampler_free(Sampler *s);
int sampler_argmax(const real *logits, int V);
int sampler_next(Sampler *s, const real *logits);

#endif
