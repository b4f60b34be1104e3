/* optim.c — AdamW (torch.optim.AdamW semantics) and global-norm gradient clipping.
 * What it is: the update rules of optim.h on flat arrays (a whole arena at once). What it is not:
 * a scheduler or a parameter-group manager; the training loop owns those.
 */
#include "optim.h"

#include <math.h>

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

double grad_norm(const real *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

void grad_clip(real *g, size_t n, double max_norm, double total_norm) {
    double coef = max_norm / (total_norm + 1e-6);
    if (coef > 1.0) coef = 1.0; // clip_grad_norm_ multiplies by the clamped coefficient
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
