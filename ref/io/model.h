/* model.h — load a model the user already has: a Hugging Face directory (config.json +
 * model.safetensors, or sharded *.safetensors + model.safetensors.index.json) or a GGUF file
 * (v2/v3; F32, F16, BF16, Q8_0 dequantized on load). Weights end up in a LlamaParams in the HF
 * convention (rotate-half RoPE); GGUF's interleaved-RoPE q/k rows are permuted on load.
 * Every failure is one message "PATH: what is wrong"; nothing is half-loaded on failure.
 *
 * HF directory: config.json (config.h), bos/eos from its bos_token_id / eos_token_id (a list of
 * eos ids gives the first); model.safetensors, else model.safetensors.index.json whose
 * "weight_map" names the shard of every tensor (plain file names in the same directory; every
 * shard it names must open). Tensors beyond those of llama.h (rotary_emb.inv_freq, the lm_head of
 * a tied model) are ignored; dtypes F32/F16/BF16/F64.
 * GGUF: general.architecture must be "llama"; llama.* keys give the config (embedding_length,
 * feed_forward_length, block_count, attention.head_count(_kv), attention.layer_norm_rms_epsilon,
 * rope.freq_base (10000), attention.key_length or C/NH for head_dim, rope.dimension_count must
 * equal it, context_length (2048)); V is the row count of token_embd; no output.weight, or one
 * byte-identical to token_embd (llama2.c conversions), means tied. A rope_freqs tensor (llama.cpp's
 * form of Llama 3 rope scaling) is accepted when it equals llama3 scaling with factor = its largest
 * value, low_freq_factor 1, high_freq_factor 4 and original context 8192 (or the key
 * llama.rope.scaling.original_context_length); otherwise it is an error. Other rope scaling is an
 * error. ggml's ne = (in, out) is the HF (out, in) matrix; q/k rows are permuted per head from
 * the interleaved pairs (2i, 2i+1) to rotate-half: HF row a*HS/2 + i = GGUF row 2i + a.
 * bos/eos from tokenizer.ggml.bos_token_id / eos_token_id.
 */
#ifndef AFFIX_MODEL_H
#define AFFIX_MODEL_H

#include <stddef.h>

#include "err.h"
#include "llama.h"
#include "safetensors.h"

typedef enum { MODEL_HF_DIR, MODEL_GGUF } model_format;

typedef struct {
    model_format format;
    LlamaConfig cfg;
    LlamaParams w;          /* the weights, converted to real (those kept in blocks: w.q) */
    int bos_id, eos_id;     /* -1 when unknown */
    char source_dtype[16];  /* of the matrices (2-D tensors): "F32", "BF16", "F16", "Q8_0", ..., or
                               "mixed" (GGUF norms are F32 whatever the matrices are) */
    char path[1024];
    /* weights kept in their file's block format (ModelOpts.keep_blocks): */
    unsigned kept;          /* bit (1u << kind) for every kind held as blocks */
    QMat *qm;               /* the descriptors w.q points into */
    unsigned char *qown;    /* blocks that had to be rewritten (GGUF Llama q/k rows, permuted) */
    const unsigned char *map; /* the GGUF file, mapped read-only, while blocks point into it */
    size_t map_size;
    st_file *stf;           /* an HF model's safetensors files (mapped), kept open while blocks point in */
    size_t n_stf;
} Model;

typedef struct {
    /* 1: every matrix a GGUF file stores in a block format that quant.h decodes (Q8_0, Q5_0, Q4_K,
     * Q6_K, ..., F16, BF16), and every BF16 / F16 matrix of an HF model's safetensors, stays as the
     * file's bytes (mapped, not copied) and is decoded inside the kernels; the weights are then
     * frozen (no full fine-tuning). 0: everything converted to real. A kind is kept only when every
     * layer's tensor of it is in such a format. */
    int keep_blocks;
} ModelOpts;

/* path: a directory (HF) or a .gguf file. */
int model_load(Model *m, const char *path, afx_err *e);
int model_load_opts(Model *m, const char *path, const ModelOpts *o, afx_err *e);
void model_free(Model *m);

/* The tensor table of the file(s) at path (affix info), without loading anything: every tensor of
 * model.safetensors / of each shard (shard order of the index, by name inside a shard) / of the GGUF
 * (file order). shape is as the file stores it: safetensors row-major (out, in); GGUF ggml ne
 * order (ne0 first, i.e. (in, out)). *rows is malloc'd (free it). */
typedef struct {
    char name[256];
    char dtype[16];   /* "F32", "BF16", "Q8_0", ... */
    int ndim;
    long long shape[8];
    char file[256];   /* the file's base name */
} ModelTensor;
int model_list_tensors(const char *path, ModelTensor **rows, size_t *n, afx_err *e);

#endif
