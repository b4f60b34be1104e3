/* sampler.c — greedy, temperature and top-p sampling (see sampler.h). */
#include "sampler.h"

#include "rng.h"

#include <math.h>
#include <stdlib.h>

int sampler_init(Sampler *s, int V, double temperature, double top_p, unsigned long long seed, afx_err *e) {
    if (V <= 0) return afx_fail(e, "sampler: vocabulary size %d", V);
    if (!(temperature >= 0)) return afx_fail(e, "sampler: temperature must be >= 0 (got %g)", temperature);
    if (!(top_p > 0 && top_p <= 1)) return afx_fail(e, "sampler: top-p must be in (0, 1] (got %g)", top_p);
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng = seed;
    s->V = V;
    s->cand = malloc((size_t)V * sizeof *s->cand);
    if (!s->cand) {
        sampler_free(s);
        return afx_fail(e, "sampler: out of memory");
    }
    return 0;
}

void sampler_free(Sampler *s) {
    free(s->cand);
    s->cand = NULL;
}

int sampler_argmax(const real *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* uniform [0,1) from the sampler's state (rng.h) */
static double uniform(unsigned long long *state) {
    AfxRng r = {*state};
    double u = afx_rng_uniform(&r);
    *state = r.s;
    return u;
}

/* descending probability; ties: lower id first */
static int by_prob_desc(const void *a, const void *b) {
    const struct SamplerEntry *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

int sampler_next(Sampler *s, const real *logits) {
    int V = s->V;
    if (s->temperature == 0) return sampler_argmax(logits, V);
    // p = softmax(logits / temperature)
    double mx = logits[sampler_argmax(logits, V)], sum = 0;
    for (int i = 0; i < V; i++) {
        s->cand[i].id = i;
        sum += s->cand[i].p = exp(((double)logits[i] - mx) / s->temperature);
    }
    for (int i = 0; i < V; i++) s->cand[i].p /= sum;
    // nucleus: keep the most likely tokens until their mass reaches top_p (at least one)
    int keep = V;
    if (s->top_p < 1) {
        qsort(s->cand, (size_t)V, sizeof *s->cand, by_prob_desc);
        double cum = 0;
        for (keep = 0; keep < V;) {
            cum += s->cand[keep++].p;
            if (cum >= s->top_p) break;
        }
    }
    // draw among the kept tokens, proportionally to their probability
    double mass = 0;
    for (int k = 0; k < keep; k++) mass += s->cand[k].p;
    double u = uniform(&s->rng) * mass, acc = 0;
    for (int k = 0; k < keep; k++) {
        acc += s->cand[k].p;
        if (u < acc) return s->cand[k].id;
    }
    return s->cand[keep - 1].id;
}
