/* checkpoint.h — resumable training checkpoints: one safetensors file, written atomically.
 *
 * What this is: everything a training run needs to continue bit for bit where it stopped — the
 * trainable parameters (the adapters' arena, or every base weight for full fine-tuning), the AdamW
 * moments m and v, the step count, the data position (epoch, index within the epoch, the seed of
 * the epoch's permutation), the training RNG's state and a caller's free text (e.g. the options it
 * was started with) — plus two fingerprints that make a resume with anything else fail: the model
 * config (every LlamaConfig field) and the methods (method_spec_describe of each, which includes
 * what the model resolves, e.g. the prefix layers). Values are stored in the build's own `real`
 * dtype (F32, or F64 in the f64 build), exactly as they are in memory; a checkpoint of the other
 * build is refused rather than converted.
 * File: tensors "<i>.w.<name>", "<i>.m.<name>", "<i>.v.<name>" for parameter <name> of the i-th
 * adapter of the set; metadata affix_checkpoint "1", real, config, methods, step, epoch, index,
 * perm_seed, rng, args. Gradients are not stored (a step starts from zero gradients).
 * What this is not: an adapter export (peft.h writes those, in PEFT's format), or a scheduler: the
 * caller decides what epoch/index/perm_seed mean and keeps the learning-rate schedule a function of
 * the step.
 */
#ifndef AFFIX_CHECKPOINT_H
#define AFFIX_CHECKPOINT_H

#include "adapter.h"
#include "err.h"
#include "method_spec.h"

typedef struct {
    long long step;               /* optimizer steps done (the next AdamW step is t = step + 1) */
    long long epoch;              /* the current epoch, from 0 */
    long long index;              /* the next position in this epoch's order of the data */
    unsigned long long perm_seed; /* seed of this epoch's permutation of the data */
    unsigned long long rng;       /* the training RNG's state (AfxRng.s) */
    char args[1024];              /* the caller's free text, kept as is ("" if none) */
} TrainState;

/* The ranges of the state's counters, checked on save and on load (a checkpoint's metadata is not
 * trusted): 0 <= step, epoch <= CKPT_MAX_STEP; 0 <= index <= CKPT_MAX_INDEX. */
#define CKPT_MAX_STEP 1000000000000LL
#define CKPT_MAX_INDEX 2147483647LL

/* Write the set's trainable values, AdamW moments and st to path (atomically: a failure leaves an
 * existing file as it was). specs[i] is the spec adapter s->ad[i] was made from. A state holding a
 * non-finite value (or a negative second moment) is refused: a checkpoint is always a good state. */
int ckpt_save(const char *path, const AdapterSet *s, const MethodSpec *specs, int n_specs, const TrainState *st,
              afx_err *e);

/* Restore into a set made the same way (same model config, same specs, adapter_set_init done).
 * Everything is checked before anything is copied (the counters' ranges, and every value finite):
 * on failure s and st are untouched. */
int ckpt_load(const char *path, AdapterSet *s, const MethodSpec *specs, int n_specs, TrainState *st, afx_err *e);
/* The same from a checkpoint held in buf[0..len) (fuzzing), labelled label in messages. */
int ckpt_load_buffer(const unsigned char *buf, size_t len, const char *label, AdapterSet *s, const MethodSpec *specs,
                     int n_specs, TrainState *st, afx_err *e);

#endif
