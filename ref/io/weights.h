/* weights.h — Llama tensors from a parsed safetensors file into a LlamaParams arena.
 *
 * What this is: the one place that maps the named tensors of llama.h (llama_tensor_info gives each
 * HF name and shape) onto a safetensors file. The same function loads base weights (prefix ""),
 * gradients ("grad."), optimizer states ("adamw.step1.") and clipped gradients ("clip.grad.") of
 * the golden files (golden/README.md), converting any floating dtype to `real`.
 * What this is not: a loader of sharded models or of GGUF, and not a writer.
 */
#ifndef AFFIX_WEIGHTS_H
#define AFFIX_WEIGHTS_H

#include "err.h"
#include "llama.h"
#include "safetensors.h"

/* p is already allocated (or bound) for p->cfg. For every tensor of p->cfg (every layer of the
 * per-layer kinds; lm_head only when untied) find prefix+name in f, check its shape exactly and
 * convert it into llama_tensor_ptr(p, kind, layer). Tensors of f that are not asked for are
 * ignored. Messages are "LABEL: tensor 'NAME' ..." (missing, shape [..] instead of [..], dtype). */
int llama_params_load_st(LlamaParams *p, const st_file *f, const char *label, const char *prefix, afx_err *e);

#endif
