/* peft.c — what the PEFT format calls affix's things (see peft.h, peft_internal.h): the names of
 * the methods and modules, the one map from affix's parameter tables to PEFT's file names and shapes
 * (peft_file_key, used by both directions), the table of a projection prefix, and which specs PEFT
 * can express. Writing is peft_save.c (with pyjson.c), reading peft_load.c.
 *
 * What this is not: any method's math. The one derived tensor (the prefix table of a projection)
 * is computed by prefix.c itself, through a temporary adapter set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peft_internal.h"

const char *const PEFT_TYPES[METHOD_COUNT] = {"PROMPT_TUNING", "PREFIX_TUNING", "ADAPTION_PROMPT", "LORA", NULL};
const char *const PEFT_LIN_MODULES[LIN_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};

/* the prefix layers of a spec on c, ascending; returns their number */
int peft_spec_layers(const MethodSpec *s, const LlamaConfig *c, int *out) {
    int n = 0;
    for (int l = 0; l < c->L; l++) {
        int on = s->layers == LAYERS_ALL ? 1
                 : s->layers == LAYERS_TOP ? l >= c->L - s->top_k
                 : l < METHOD_SPEC_MAX_LAYERS && ((s->layer_bits[l / 8] >> (l % 8)) & 1);
        if (on) out[n++] = l;
    }
    return n;
}

/* File name and shape of parameter k of ad (method m; a prefix with its MLP keeps affix.* names). */
void peft_file_key(const Adapter *ad, int m, int k, char *key, size_t n, size_t shape[4], int *ndim) {
    const AdapterTensor *t = &ad->params[k];
    *ndim = t->ndim;
    memcpy(shape, t->shape, sizeof t->shape);
    switch (m) {
    case METHOD_PROMPT:
        snprintf(key, n, "prompt_embeddings");
        break;
    case METHOD_PREFIX: /* without the MLP the table is PEFT's prompt_embeddings; the MLP is affix's */
        if (ad->n_params == 1) snprintf(key, n, "prompt_embeddings");
        else snprintf(key, n, "affix.%s", t->name);
        break;
    case METHOD_LLAMA_ADAPTER: { /* layers.{l}.adaption_prompt [P,C] -> ...self_attn.adaption_prompt [1,P,C] */
        int l = atoi(t->name + strlen("layers."));
        const char *leaf = strrchr(t->name, '.') + 1;
        snprintf(key, n, "base_model.model.model.layers.%d.self_attn.%s", l, leaf);
        if (!strcmp(leaf, "adaption_prompt")) {
            *ndim = 3;
            shape[0] = 1, shape[1] = t->shape[0], shape[2] = t->shape[1];
        }
        break;
    }
    case METHOD_LORA:
        snprintf(key, n, "base_model.model.%s", t->name);
        break;
    default: /* full: the HF name itself */
        snprintf(key, n, "%s", t->name);
    }
}

/* The table (P, n*2*KV) that a projection prefix's MLP produces from values (parameter order):
 * prefix.c computes it, on a temporary adapter made from the same spec. */
int peft_prefix_table(const MethodSpec *spec, const LlamaConfig *c, const real *values, real *table, afx_err *e) {
    Adapter tmp;
    Adapter *p = &tmp;
    AdapterSet s;
    if (method_spec_create(&tmp, spec, c, e)) return -1;
    if (adapter_set_init(&s, &p, 1, NULL, e)) {
        adapter_destroy(&tmp);
        return -1;
    }
    memcpy(s.w, values, s.count * sizeof(real));
    int rc = adapter_set_bind_acts(&s, 1, 1, e);
    if (!rc) {
        adapters_begin_forward(&s, NULL);
        const AdapterTensor *t = &tmp.acts[0]; /* prefix_table */
        memcpy(table, t->w, t->shape[0] * t->shape[1] * sizeof(real));
    }
    adapter_set_free(&s);
    adapter_destroy(&tmp);
    return rc;
}

/* ---- what PEFT can express -------------------------------------------------------------------------- */

int peft_expressible(const MethodSpec *s, const LlamaConfig *c, char *why, size_t n) {
    char dummy[8];
    if (!why) why = dummy, n = sizeof dummy;
    why[0] = 0;
    int layers[METHOD_SPEC_MAX_LAYERS];
    if (s->method == METHOD_PREFIX && peft_spec_layers(s, c, layers) != c->L) {
        snprintf(why, n, "PEFT prefix tuning has no layer subset (it puts a prefix in every layer)");
        return 0;
    }
    if (s->method == METHOD_PREFIX && s->offset_zero) {
        snprintf(why, n, "PEFT prefix tuning puts the real tokens at positions P.. (no position_offset zero)");
        return 0;
    }
    if (s->method == METHOD_PREFIX && s->always_visible) {
        snprintf(why, n, "PEFT's prefix is ordinary past: it leaves a sliding window (no prefix_window always)");
        return 0;
    }
    if (s->method == METHOD_LLAMA_ADAPTER && c->arch == AFX_ARCH_GEMMA3) {
        snprintf(why, n, "PEFT AdaptionPrompt refuses Gemma 3 (affix's own rule is used)");
        return 0;
    }
    if (s->method == METHOD_LLAMA_ADAPTER && s->gate == GATE_OFFICIAL) {
        snprintf(why, n, "PEFT AdaptionPrompt has one raw gate per layer (no official per-head tanh gate)");
        return 0;
    }
    if (s->method == METHOD_LLAMA_ADAPTER && c->NH * c->HS != c->C) {
        snprintf(why, n, "PEFT AdaptionPrompt needs num_heads*head_dim == hidden_size (%d*%d != %d)", c->NH, c->HS,
                 c->C);
        return 0;
    }
    return 1;
}
