/* method_spec.h — an adaptation method described by name/value option strings, turned into an
 * Adapter. One parser for every front end: the command line (`affix params`, later `affix train`)
 * and, later, a PEFT adapter_config.json (whose keys are accepted as aliases).
 *
 * What this is: option names, defaults, value checking, and the checks against a model config
 * that PEFT makes (adapter_layers <= layers, ...). Every problem is one line in an afx_err that
 * names the option and the value. Nothing here prints or keeps global state.
 * What this is not: the methods themselves (ref/adapters/), or a tokenizer (so a text init of a
 * soft prompt is refused for now).
 *
 * Methods and their options (defaults are PEFT's; '-' and '_' are interchangeable in names, a
 * leading "--" is optional for method_spec_set, and the PEFT key is accepted as an alias):
 *   prompt         --num-virtual-tokens P   required (PEFT has no default)       num_virtual_tokens
 *                  --prompt-init random|vocab   default random (text: refused)   prompt_tuning_init
 *   prefix         --num-virtual-tokens P   required (PEFT has no default)
 *                  --layers all|top:K|A-B|i,j,k   default all (PEFT: all only)
 *                  --prefix-projection      flag, default off                    prefix_projection
 *                  --encoder-hidden-size E  default the KV width (only with a projection)
 *                  --position-offset prefix|zero   real tokens at P.. (HF) or 0..
 *                  --prefix-window past|always      Gemma 3 sliding layers: the prefix leaves the
 *                                                   window like any past token (PEFT) or stays visible
 *   llama-adapter  --adapter-len P          default 10                           adapter_len
 *   (llama_adapter)--adapter-layers N       default 30, the top N layers         adapter_layers
 *                  --gate peft|official     default peft (one raw scalar per layer)
 *   lora           --r R                    default 8                            r
 *                  --alpha A                default 8                            lora_alpha
 *                  --rslora                 flag: scaling alpha/sqrt(r)          use_rslora
 *                  --targets q,v            any of q,k,v,o,gate,up,down (or q_proj, ...) or
 *                                           all-linear; default q,v              target_modules
 *   full           (no options)
 * A flag also takes an explicit value (--rslora=false). An option given twice is refused.
 */
#ifndef AFFIX_METHOD_SPEC_H
#define AFFIX_METHOD_SPEC_H

#include <stddef.h>

#include "adapter.h"
#include "err.h"
#include "llama.h"

typedef enum { METHOD_PROMPT, METHOD_PREFIX, METHOD_LLAMA_ADAPTER, METHOD_LORA, METHOD_FULL, METHOD_COUNT } method_kind;

/* the canonical name of a method: "prompt" "prefix" "llama-adapter" "lora" "full" */
extern const char *const METHOD_NAMES[METHOD_COUNT];

#define METHOD_SPEC_MAX_LAYERS 1024 /* the largest layer index a --layers list may name, plus one */
#define METHOD_SPEC_MAX_WIDTH 65536 /* the largest LoRA r and prefix encoder_hidden_size accepted */

typedef enum { LAYERS_ALL, LAYERS_TOP, LAYERS_SET } layers_kind;

typedef struct {
    method_kind method;
    unsigned given;               /* bit per option: set explicitly (repeats are refused) */
    /* prompt */
    int num_virtual_tokens;       /* P; 0 = not given (prompt and prefix require it) */
    prompt_init prompt_init;      /* RANDOM or VOCAB */
    /* prefix */
    layers_kind layers;           /* ALL, TOP (top_k highest layers) or SET (the bits below) */
    int top_k;
    unsigned char layer_bits[METHOD_SPEC_MAX_LAYERS / 8];
    int projection;
    int encoder_hidden_size;      /* 0 = the KV width (PEFT's default) */
    int offset_zero;
    int always_visible;           /* --prefix-window always: sliding layers never cut the prefix */
    /* llama-adapter */
    int adapter_len;
    int adapter_layers;
    gate_kind gate;
    /* lora */
    int r;
    double alpha;
    int rslora;
    int targets[LIN_COUNT];
} MethodSpec;

/* The method's defaults. method: a name above (also "llama_adapter"). */
int method_spec_init(MethodSpec *s, const char *method, afx_err *e);

/* One option by name ("r", "--r", "lora_alpha", "target-modules", ...). value may be NULL only for
 * a flag (meaning true). Unknown names, options of another method, bad values and repeats fail. */
int method_spec_set(MethodSpec *s, const char *name, const char *value, afx_err *e);

/* Command-line options: "--name value", "--name=value", or "--flag". Fails on the first bad one. */
int method_spec_parse_args(MethodSpec *s, int argc, char **argv, afx_err *e);

/* A hybrid: "lora+prefix", "lora+llama-adapter", "lora+prompt" (or a single method). Splits method
 * on '+' into *n specs (at most max) and gives each command-line option to the one component that
 * takes it (the methods of a hybrid share no option). Refused: full fine-tuning in a hybrid, a
 * method named twice, more than max parts, an option none of the parts takes. */
int method_spec_parse_hybrid(MethodSpec *specs, int max, int *n, const char *method, int argc, char **argv, afx_err *e);

/* Checks the spec against a model (required options, layer ranges, adapter_layers <= layers) and
 * every size before it is used: num_virtual_tokens below max_position_embeddings (the virtual
 * tokens take positions, or are keys every position attends to), r and encoder_hidden_size at most
 * METHOD_SPEC_MAX_WIDTH. Messages name the field and its value ("lora: r = 1000000000: ..."). */
int method_spec_check(const MethodSpec *s, const LlamaConfig *c, afx_err *e);

/* 0 if training adapter ad (values, gradients and two AdamW moments: 4 arrays of its parameters;
 * for full fine-tuning the 3 more copies of the base weights) fits in this machine's memory; else a
 * message with the sizes. Run before adapter_set_init allocates them. */
int method_spec_fits(const Adapter *ad, const MethodSpec *s, afx_err *e);

/* Checks, then builds the adapter with the method's constructor (no weights are allocated: the
 * parameter table has names and shapes; adapter_param_count works at once). */
int method_spec_create(Adapter *ad, const MethodSpec *s, const LlamaConfig *c, afx_err *e);

/* The whole path in one call: init + parse_args + create. */
int method_spec_create_from_args(Adapter *ad, const LlamaConfig *c, const char *method, int argc, char **argv,
                                 afx_err *e);

/* The options as understood, on one line ("lora r=4 alpha=8 scaling=2 rslora=false targets=q,v"),
 * with what depends on the model (resolved layers, default E) filled in from c. Returns the length
 * it needed (like snprintf). */
size_t method_spec_describe(const MethodSpec *s, const LlamaConfig *c, char *buf, size_t n);

#endif
