/* peft.h — adapters saved and loaded in PEFT's own directory format; full fine-tuning as a Hugging
 * Face model directory.
 *
 * What this is: peft_save writes DIR/adapter_config.json (the fields and values PEFT's
 * save_pretrained writes, PEFT_FORMAT_VERSION, keys sorted, indent 2, no trailing newline) and
 * DIR/adapter_model.safetensors (PEFT's tensor names and shapes, metadata {"format":"pt"}); for
 * float32 tensors the safetensors file is byte for byte what PEFT writes for the same values.
 * peft_load reads such a directory — made by PEFT or by affix — back into a MethodSpec, an Adapter
 * and its values, refusing anything it would otherwise get wrong. Verified against the real peft
 * (tools/oracle/make_peft_interop.py, tests/test_peft.c):
 *
 *   method         peft_type        tensors (file name -> shape)
 *   prompt         PROMPT_TUNING    prompt_embeddings [P, C]
 *   prefix         PREFIX_TUNING    prompt_embeddings [P, L*2*KV]  (PEFT's flat layout, KV = NKV*HS;
 *                                   with prefix_projection PEFT keeps only the MLP's output: the
 *                                   table; affix also writes the MLP as affix.prefix.embedding.weight,
 *                                   affix.prefix.transform.{0,2}.{weight,bias}, which PEFT ignores)
 *   llama-adapter  ADAPTION_PROMPT  base_model.model.model.layers.{l}.self_attn.adaption_prompt [1,P,C]
 *                                   base_model.model.model.layers.{l}.self_attn.adaption_gate [1]
 *   lora           LORA             base_model.model.model.layers.{l}.{self_attn.q_proj,...,
 *                                   mlp.down_proj}.lora_A.weight [r,in], .lora_B.weight [out,r]
 *   full           (none)           an HF model directory: config.json + model.safetensors (HF
 *                                   names; no lm_head.weight when tied), what transformers'
 *                                   save_pretrained writes and from_pretrained loads
 *
 * What PEFT cannot load: three variants have no PEFT equivalent. affix saves them in the same
 * layout plus "affix_*" fields in adapter_config.json and an "affix_note" saying so:
 *   prefix on a layer subset     "affix_layers": [..]; the table is [P, n*2*KV] for the n layers.
 *                                PEFT refuses the file (size mismatch).
 *   prefix, position_offset zero "affix_position_offset": "zero". PEFT LOADS THIS WITH A WARNING
 *                                ("unexpected keyword arguments ... ignored") AND THEN COMPUTES WITH
 *                                POSITIONS P.. — different logits. Do not give it to PEFT.
 *   llama-adapter, official gate "affix_gate": "official"; adaption_gate is [NH]. PEFT refuses it.
 * and Llama-Adapter on a model with NH*HS != C (Mistral Small) is written as PEFT's format but PEFT's
 * own AdaptionPrompt cannot run on such a model. peft_expressible() tells which case a spec is.
 *
 * Loading a PEFT prefix_projection adapter (no affix MLP in the file) gives a prefix WITHOUT
 * projection holding PEFT's saved table: the same forward, but the reparameterization is gone
 * (PEFT's own inference mode does the same). The note says so.
 *
 * Atomicity: every file is written to a temporary file, fsync'ed and renamed (st_write.h). Both
 * files are fully written before either is renamed, so a failure while writing (disk full, I/O
 * error) leaves an existing directory as it was. The tensors are renamed first and the config
 * last: the config is the commit point (a new directory without it is not an adapter for PEFT or
 * affix). Only a crash between the two renames (microseconds, same directory) can pair new tensors
 * with an old config; that pair is refused at load when the shapes differ, and is equivalent when
 * the same adapter is saved again (the usual case: one training run saving into one directory).
 *
 * What this is not: a reader of adapter_model.bin (pickle), of multi-adapter directories, of LoRA
 * on a subset of layers/rank patterns/DoRA/biases (all refused with a message), or a model loader
 * (model.h) — the full-fine-tuning directory is read here only to round-trip what peft_save wrote.
 * Errors follow err.h; messages name the file ("DIR/adapter_config.json: ...").
 */
#ifndef AFFIX_PEFT_H
#define AFFIX_PEFT_H

#include <stddef.h>

#include "adapter.h"
#include "err.h"
#include "llama.h"
#include "method_spec.h"
#include "safetensors.h"

#define PEFT_FORMAT_VERSION "0.21.2" /* the PEFT version whose save_pretrained output this writes */

typedef struct {
    const char *base_model; /* base_model_name_or_path (NULL: null) */
    st_dtype dtype;         /* tensors: ST_F32 (PEFT's and HF's usual; the default), ST_F64 or ST_BF16 */
    int bos_id, eos_id;     /* full fine-tuning: bos/eos_token_id of config.json (-1: null) */
} PeftSaveOptions;

void peft_save_options_init(PeftSaveOptions *o);

/* 1 if PEFT (or, for full, transformers) can load what peft_save writes for this spec on this
 * model; 0 otherwise, with the reason in why[0..n) (may be NULL). */
int peft_expressible(const MethodSpec *s, const LlamaConfig *c, char *why, size_t n);

/* Save adapter ad (its values bound: after adapter_set_init, the parameter table points at them)
 * made from spec on the model ad->cfg, into directory dir (created if missing; its parent must
 * exist). The spec must be the one ad was made from (its parameter table is checked against it).
 * o may be NULL (defaults). */
int peft_save(const char *dir, const MethodSpec *spec, const Adapter *ad, const PeftSaveOptions *o, afx_err *e);

/* an adapter read from a directory */
typedef struct {
    MethodSpec spec;        /* the options, as method_spec understood adapter_config.json */
    Adapter ad;             /* made from spec (method_spec_create); bind it with adapter_set_init */
    real *values;           /* count values, in the order of ad's parameter table */
    size_t count;
    int peft_loadable;      /* 0: the directory uses affix_* extensions (see above) */
    char base_model[512];   /* base_model_name_or_path ("" when null or absent) */
    char note[512];         /* what was read but not kept (e.g. lora_dropout, a dropped projection) */
} PeftAdapter;

/* Read dir (an adapter directory, or a full fine-tuning model directory) for model cfg. Refuses:
 * an adapter for another model shape (naming both), an unknown peft_type or field value that would
 * change the computation, a missing, extra or wrongly shaped tensor, corrupt JSON or safetensors.
 * On failure *pa is left empty (peft_adapter_free is harmless). Do not copy *pa once it is bound:
 * an AdapterSet keeps &pa->ad. */
int peft_load(const char *dir, const LlamaConfig *cfg, PeftAdapter *pa, afx_err *e);
/* The same for an adapter held in memory (fuzzing; no files): adapter_config.json's text and
 * adapter_model.safetensors' bytes (the values are copied: both may be freed afterwards). label stands
 * for the directory in messages. */
int peft_load_buffers(const char *config_json, size_t config_len, const unsigned char *st, size_t st_len,
                      const LlamaConfig *cfg, PeftAdapter *pa, const char *label, afx_err *e);

/* Copy the values into the adapter's parameters, once adapter_set_init has bound them (for full
 * fine-tuning they are the base weights). */
int peft_adapter_apply(PeftAdapter *pa, afx_err *e);

void peft_adapter_free(PeftAdapter *pa);

#endif
