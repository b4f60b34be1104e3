/* train.h — one training step of the library: the loop every trainer runs (affix train, affix bench,
 * the tests), written once.
 *
 *   zero_grad -> for each micro-batch: forward -> loss -> backward (scale 1/targets of the whole step,
 *   HF Trainer's num_items_in_batch) -> global-norm clip -> AdamW
 *
 * Each micro-batch's gradient is computed from zero and then added to the sum of the earlier ones,
 * g = ((g_0 + g_1) + g_2) + ..., one addition per value and micro-batch. That is the order a data-
 * parallel caller reproduces (TrainComm below: process r computes g_r, the processes add in rank
 * order), so K processes of one micro-batch each equal one process of K micro-batches bitwise.
 *
 * The trainable set is chosen in one place (train_trainable): the adapters' arena, or for full
 * fine-tuning the base weights with their gradients and moments. A step whose loss or gradient norm
 * is not finite changes no parameter and says so (TrainStepResult.finite = 0); a step whose update
 * makes a parameter non-finite or larger than TRAIN_PARAM_MAX says so too (params_ok = 0).
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
    real *gsum;                 /* (trainable count) the earlier micro-batches' sum, with 2 or more */
    size_t gsum_cap;            /* reals */
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

/* The parameter guard: after every update the trainable values are checked (one pass: their norm
 * and largest magnitude). A non-finite value, or one above TRAIN_PARAM_MAX in magnitude, means the
 * run has diverged (a learning rate far too large: AdamW moves every value by about lr per step,
 * so --lr 1e30 gives values near 1e30 while the loss may stay finite); the caller must not save
 * such a state. No trained adapter or model weight comes anywhere near 1e6. */
#define TRAIN_PARAM_MAX 1e6

typedef struct {
    double loss;       /* mean CE over the step's kept targets */
    double grad_norm;  /* before clipping */
    long targets;      /* kept targets of the step */
    int finite;        /* 0: loss or gradient not finite; nothing was updated */
    int params_ok;     /* after the update: 1 every trainable value finite and within TRAIN_PARAM_MAX;
                          0 the update diverged (the values are changed: do not save them) */
    double param_norm; /* after the update: the L2 norm of the trainable values (NaN/Inf if any is) */
    double param_max;  /* after the update: the largest |value| (NaN if a value is NaN) */
} TrainStepResult;

/* the norm and largest magnitude of n values; returns 1 when all are finite and within max_abs */
int train_params_check(const real *w, size_t n, double max_abs, double *norm, double *absmax);

/* One optimizer step over n_mb micro-batches (n_mb >= 1, no upper limit). ac->lr is the learning
 * rate of this step; clip > 0 clips the global gradient norm to it; t = the step number from 1. */
int train_step(const LlamaParams *w, AdapterSet *s, TrainWorkspace *ws, const Kernels *k, const TrainBatch *mb,
               int n_mb, const AdamWConfig *ac, double clip, long t, TrainStepResult *r, afx_err *e);

/* Data parallelism without the core knowing how (tools/dist.c does it with MPI): each of several
 * processes runs train_step_comm on its share of the global batch; comm gives the sums over all of
 * them, the same values on every process, so every process makes the same update.
 *   sum_count: *targets = the sum of every process's kept targets (before the backward: the loss
 *              scale is 1 / the targets of the global batch, num_items_in_batch across processes)
 *   sum_grads: g[0..n) and *loss_sum = the sums over the processes, added in rank order from 0 */
typedef struct {
    void *ctx;
    int (*sum_count)(void *ctx, long *targets, afx_err *e);
    int (*sum_grads)(void *ctx, real *g, size_t n, double *loss_sum, afx_err *e);
} TrainComm;

/* train_step over this process's micro-batches; comm NULL: one process (= train_step) */
int train_step_comm(const LlamaParams *w, AdapterSet *s, TrainWorkspace *ws, const Kernels *k, const TrainBatch *mb,
                    int n_mb, const TrainComm *comm, const AdamWConfig *ac, double clip, long t, TrainStepResult *r,
                    afx_err *e);

#endif
