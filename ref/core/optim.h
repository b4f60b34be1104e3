/* optim.h — AdamW with PyTorch's semantics and global-norm gradient clipping.
 *
 * adamw_step follows torch.optim.AdamW (amsgrad=False, maximize=False), step t counted from 1:
 *   p <- p * (1 - lr*wd)                                   (decoupled weight decay)
 *   m <- b1*m + (1-b1)*g ;  v <- b2*v + (1-b2)*g^2
 *   p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * grad_clip follows torch.nn.utils.clip_grad_norm_: coef = max_norm/(total_norm + 1e-6), applied
 * (times 1.0 at most) to every gradient.
 */
#ifndef AFFIX_OPTIM_H
#define AFFIX_OPTIM_H

#include <stddef.h>

#include "real.h"

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} AdamWConfig;

void adamw_step(real *param, const real *grad, real *m, real *v, size_t n, const AdamWConfig *c,
                long t);
/* Sum of squares of g (n values) in double: in fixed chunks of 65536 values, each in index order,
 * the chunk sums in order; the chunks run in parallel, and the value is the same for any number of
 * threads. */
double sum_squares(const real *g, size_t n);
/* L2 norm of g: sqrt(sum_squares). */
double grad_norm(const real *g, size_t n);
/* Scales g in place as clip_grad_norm_ does, given the total norm over all gradients. */
void grad_clip(real *g, size_t n, double max_norm, double total_norm);

/* Learning-rate schedules with linear warmup, as transformers' get_*_schedule_with_warmup: the
 * factor for optimizer step `step` (0-based) of `total`:
 *   step < warmup:  step / warmup                                  (so step 0 has lr 0 when warming up)
 *   constant:       1
 *   linear:         max(0, (total - step) / (total - warmup))
 *   cosine:         max(0, 0.5 (1 + cos(pi (step - warmup) / (total - warmup))))   */
typedef enum { SCHED_CONSTANT, SCHED_LINEAR, SCHED_COSINE } lr_schedule;
double lr_factor(lr_schedule kind, long step, long warmup, long total);

#endif
