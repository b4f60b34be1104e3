/* train.h — one training step of the library: the loop every trainer runs (affix train, affix bench,
 * the tests), written once.
 *
 *   zero_grad -> for each micro-batch: forward -> loss -> backward (scale 1/targets of the whole step,
 *   HF Trainer's num_items_in_batch) -> global-norm clip -> AdamW
 *
 * The trainable set is chosen in one place (train_trainable): the adapters' arena, or for full
 * fine-tuning the base weights with their gradients and moments. A step whose loss or gradient norm
 * is not finite changes no parameter and says so (TrainStepResult.finite = 0).
 */
#ifndef AFFIX_TRAIN_H
#define AFFIX_TRAIN_H

#include "adapter.h"
#include "kernels.h"
#include "optim.h"

/* the trainable arena: values, gradients, AdamW moments (n reals each) */
typedef struct {
    real *w, *g, *m, *v;
    size_t n;
} TrainSet;
TrainSet train_trainable(AdapterSet *s);

/* activation memory, grown to the largest batch seen and re-carved for each batch's (B,T) */
typedef struct {
    void *acts;
    real *grads;
    size_t acts_cap, grads_cap; /* bytes */
} TrainWorkspace;
void train_workspace_free(TrainWorkspace *ws);

/* one micro-batch: ids, mask (1 = real; NULL: all real), labels (-100 = ignored), all (B,T) */
typedef struct {
    const int *ids, *mask, *labels;
    int B, T;
} TrainBatch;

/* forward on one batch (and, when backward, the backward of scale * loss_sum, accumulated into the
 * trainable gradients); *loss_sum and *count: the CE sum and the kept targets of this batch */
int train_batch(const LlamaParams *w, AdapterSet *s, TrainWorkspace *ws, const Kernels *k, const TrainBatch *b,
                int backward, double scale, double *loss_sum, long *count, afx_err *e);

typedef struct {
    double loss;      /* mean CE over the step's kept targets */
    double grad_norm; /* before clipping */
    long targets;     /* kept targets of the step */
    int finite;       /* 0: loss or gradient not finite; nothing was updated */
} TrainStepResult;

/* One optimizer step over n_mb micro-batches (n_mb >= 1, no upper limit). ac->lr is the learning
 * rate of this step; clip > 0 clips the global gradient norm to it; t = the step number from 1. */
int train_step(const LlamaParams *w, AdapterSet *s, TrainWorkspace *ws, const Kernels *k, const TrainBatch *mb,
               int n_mb, const AdamWConfig *ac, double clip, long t, TrainStepResult *r, afx_err *e);

#endif
