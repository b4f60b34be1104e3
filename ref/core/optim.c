/* optim.c — AdamW (torch.optim.AdamW semantics) and global-norm gradient clipping.
 * What it is: the update rules of optim.h on flat arrays (a whole arena at once). What it is not:
 * a scheduler or a parameter-group manager; the training loop owns those.
 */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

void adamw_step(real *param, const real *grad, real *m, real *v, size_t n, const AdamWConfig *c,
                long t) {
    double bc1 = 1.0 - pow(c->beta1, (double)t); // bias corrections of step t (t >= 1)
    double bc2 = 1.0 - pow(c->beta2, (double)t);
    double step_size = c->lr / bc1;
    double bc2_sqrt = sqrt(bc2);
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        double g = grad[i];
        double p = (double)param[i] * (1.0 - c->lr * c->weight_decay); // decoupled weight decay
        double mi = c->beta1 * m[i] + (1.0 - c->beta1) * g;
        double vi = c->beta2 * v[i] + (1.0 - c->beta2) * g * g;
        m[i] = (real)mi;
        v[i] = (real)vi;
        double denom = sqrt(vi) / bc2_sqrt + c->eps;
        param[i] = (real)(p - step_size * mi / denom);
    }
}

/* Sums over a large array run in parallel but stay the same number whatever the thread count: the
 * array is cut into fixed chunks of OPTIM_CHUNK elements, each chunk summed in order, the chunk sums
 * added in order. */
#define OPTIM_CHUNK ((size_t)1 << 16)

double sum_squares(const real *g, size_t n) {
    size_t nc = (n + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
    if (nc <= 1) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
        return s;
    }
    double *part = malloc(nc * sizeof(double));
    if (!part) { // (no memory for the partial sums: one serial pass, the same chunked order)
        double s = 0;
        for (size_t c = 0; c < nc; c++) {
            double p = 0;
            for (size_t i = c * OPTIM_CHUNK; i < n && i < (c + 1) * OPTIM_CHUNK; i++) p += (double)g[i] * g[i];
            s += p;
        }
        return s;
    }
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nc; c++) {
        double p = 0;
        size_t end = (c + 1) * OPTIM_CHUNK < n ? (c + 1) * OPTIM_CHUNK : n;
        for (size_t i = c * OPTIM_CHUNK; i < end; i++) p += (double)g[i] * g[i];
        part[c] = p;
    }
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += part[c];
    free(part);
    return s;
}

double grad_norm(const real *g, size_t n) { return sqrt(sum_squares(g, n)); }

void grad_clip(real *g, size_t n, double max_norm, double total_norm) {
    double coef = max_norm / (total_norm + 1e-6);
    if (coef > 1.0) coef = 1.0; // clip_grad_norm_ multiplies by the clamped coefficient
    if (coef == 1.0) return;    // (g * 1.0 is g)
#pragma omp parallel for schedule(static) if (n > OPTIM_CHUNK)
    for (size_t i = 0; i < n; i++) g[i] = (real)(g[i] * coef);
}

double lr_factor(lr_schedule kind, long step, long warmup, long total) {
    if (step < warmup) return (double)step / (double)(warmup > 0 ? warmup : 1);
    if (kind == SCHED_CONSTANT) return 1.0;
    double span = (double)(total - warmup > 0 ? total - warmup : 1);
    double progress = (double)(step - warmup) / span;
    double f = kind == SCHED_LINEAR ? 1.0 - progress : 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    return f > 0 ? f : 0;
}
