/* model.h — load a model the user already has: a Hugging Face directory (config.json +
 * model.safetensors, or sharded *.safetensors + model.safetensors.index.json) or a GGUF file
 * (v2/v3; F32, F16, BF16, Q8_0 dequantized on load). Weights end up in a LlamaParams in the HF
 * convention (rotate-half RoPE); GGUF's interleaved-RoPE q/k rows are permuted on load.
 * Every failure is one message "PATH: what is wrong"; nothing is half-loaded on failure.
 */
#ifndef AFFIX_MODEL_H
#define AFFIX_MODEL_H

#include <stddef.h>

#include "err.h"
#include "llama.h"

typedef enum { MODEL_HF_DIR, MODEL_GGUF } model_format;

typedef struct {
    model_format format;
    LlamaConfig cfg;
    LlamaParams w;          /* the weights, converted to real */
    int bos_id, eos_id;     /* -1 when unknown */
    char source_dtype[16];  /* "F32", "BF16", "F16", "Q8_0", or "mixed" */
    char path[1024];
} Model;

/* path: a directory (HF) or a .gguf file. */
int model_load(Model *m, const char *path, afx_err *e);
void model_free(Model *m);

#endif
