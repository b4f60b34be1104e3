/* weights.h — Llama tensors from safetensors files into a LlamaParams arena.
 *
 * What this is: the one place that maps the named tensors of llama.h (llama_tensor_info gives each
 * HF name and shape) onto safetensors files: find, check the shape exactly, convert any floating
 * dtype to `real`. The same loop loads a Hugging Face model directory (model.c: one file or the
 * shards of model.safetensors.index.json) and, from one file, the base weights (prefix ""),
 * gradients ("grad."), optimizer states ("adamw.step1.") and clipped gradients ("clip.grad.") of
 * the golden files (golden/README.md).
 * What this is not: a reader of the index (model.c locates the shards), of GGUF, or a writer.
 */
#ifndef AFFIX_WEIGHTS_H
#define AFFIX_WEIGHTS_H

#include <stddef.h>

#include "err.h"
#include "llama.h"
#include "safetensors.h"

/* The files the tensors are in, and which one holds a given tensor. */
typedef struct {
    const st_file *files;      /* n parsed files */
    const char *const *labels; /* n names for messages (their paths) */
    size_t n;
    /* *file = the index of the file that must hold tensor `name`; 0, or -1 with e set (a name the
     * index does not know). NULL: every tensor is in files[0]. */
    int (*locate)(const void *ctx, const char *name, size_t *file, afx_err *e);
    const void *ctx;
} st_source;

/* p is already allocated (or bound) for p->cfg. For every tensor of p->cfg (every layer of the
 * per-layer kinds; lm_head only when untied) find prefix+name in the file src locates, check its
 * shape exactly and convert it into llama_tensor_ptr(p, kind, layer). Tensors not asked for are
 * ignored. Messages are "LABEL: tensor 'NAME' ..." (missing, shape [..] instead of [..], dtype),
 * LABEL the file's. dtype (may be NULL; dtype_len bytes, "" on entry) receives the dtype of the
 * 2-D tensors (the matrices), or "mixed" (llama_dtype_note). */
int llama_params_load(LlamaParams *p, const st_source *src, const char *prefix, char *dtype, size_t dtype_len,
                      afx_err *e);
/* the same for every kind whose bit (1u << kind) is not set in `skip` (kinds kept in blocks) */
int llama_params_load_except(LlamaParams *p, const st_source *src, const char *prefix, unsigned skip, char *dtype,
                             size_t dtype_len, afx_err *e);

/* The same checks with nothing copied and nothing allocated: every tensor of config c is in src
 * with exactly its shape. What a loader runs before it allocates c's parameters, so that sizes in a
 * config are never trusted before the file's own tensors agree with them. */
int llama_params_check(const LlamaConfig *c, const st_source *src, const char *prefix, afx_err *e);

/* One tensor (kind, layer) of config c: found in src with exactly its shape (*t, and *label the
 * file's), or -1 with the message the loader gives ("LABEL: tensor 'NAME' is missing" / "has shape
 * [..], expected [..]"). *t = NULL (and 0) for a tensor c does not have (a tied lm_head). */
int llama_tensor_find(const LlamaConfig *c, const st_source *src, const char *prefix, int kind, int layer,
                      const st_tensor **t, const char **label, afx_err *e);

/* The same from one file f, labelled label ("safetensors" when NULL). */
int llama_params_load_st(LlamaParams *p, const st_file *f, const char *label, const char *prefix, afx_err *e);

/* acc ("" at first, n bytes) becomes dtype, or "mixed" once a second dtype is noted: what a
 * model's matrices were stored as (model.h's source_dtype). */
void llama_dtype_note(char *acc, size_t n, const char *dtype);

#endif
