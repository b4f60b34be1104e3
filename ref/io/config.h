/* config.h — LlamaConfig from a Hugging Face config.json.
 *
 * What this is: a strict reader of the fields LlamaConfig needs (vocab_size, hidden_size,
 * intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim,
 * rms_norm_eps, rope_theta, rope_scaling / rope_parameters, tie_word_embeddings,
 * max_position_embeddings). Every field is type-checked; a missing required field, a wrong JSON
 * type, a non-positive size or an unsupported rope type is an error naming the field. Fields that
 * would silently change the model if ignored are also checked: hidden_act must be "silu" and
 * attention_bias / mlp_bias must be false when present. Other keys are ignored.
 * Defaults (HF LlamaConfig): num_key_value_heads = heads, head_dim = hidden/heads, rms_norm_eps
 * 1e-6, rope_theta 10000, no rope scaling, tie_word_embeddings false, max_position_embeddings 2048.
 * Rope: rope_scaling null / {"rope_type"|"type": "default"} or "llama3" with factor,
 * low_freq_factor, high_freq_factor, original_max_position_embeddings; transformers-5 style
 * "rope_parameters" {"rope_type", "rope_theta", ...} takes precedence over rope_scaling/rope_theta.
 * The result is passed through llama_config_check.
 * What this is not: a reader of generation_config.json, tokenizer files or the weights.
 */
#ifndef AFFIX_CONFIG_H
#define AFFIX_CONFIG_H

#include <stddef.h>

#include "err.h"
#include "llama.h"

/* The stated limits of a model's sizes (no published model comes near them; each guards the size
 * arithmetic and the allocations that follow from a config). Checked for config.json and GGUF. */
#define LLAMA_MAX_VOCAB (1 << 24)
#define LLAMA_MAX_HIDDEN (1 << 18)
#define LLAMA_MAX_FF (1 << 20)
#define LLAMA_MAX_LAYERS_ANY (1 << 12)
#define LLAMA_MAX_HEADS (1 << 12)
#define LLAMA_MAX_HEAD_DIM 1024 /* the RoPE tables' limit */
#define LLAMA_MAX_POSITIONS (1 << 24)

/* 0 if every size of c is within the limits above; otherwise "LABEL: FIELD = VALUE is above the
 * limit of N", FIELD named as the file spells it: names[] = vocab, hidden, intermediate, layers,
 * heads, kv heads, head_dim, max positions (NULL: config.json's names). */
int llama_config_limits(const LlamaConfig *c, const char *const *names, const char *label, afx_err *e);

/* json[0..len) need not be NUL-terminated. label names the source in messages. */
int llama_config_from_json(LlamaConfig *c, const char *json, size_t len, const char *label, afx_err *e);

/* Read a config.json file (at most LLAMA_CONFIG_MAX_BYTES) and parse it, labelled with the path. */
#define LLAMA_CONFIG_MAX_BYTES ((size_t)16 << 20)
int llama_config_load(LlamaConfig *c, const char *path, afx_err *e);

#endif
