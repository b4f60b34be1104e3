/* peft_save.c — peft_save: an adapter as a PEFT directory (adapter_config.json +
 * adapter_model.safetensors), full fine-tuning as an HF model directory (see peft.h).
 *
 * What this is: the fields PEFT's save_pretrained writes, per method, rendered in Python's
 * json.dumps(indent=2, sort_keys=True) style (pyjson.h); the tensors under PEFT's names
 * (peft_file_key); both files prepared completely before either is renamed (st_write.h).
 * What this is not: a reader (peft_load.c).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "peft_internal.h"
#include "pyjson.h"
#include "st_write.h"

void peft_save_options_init(PeftSaveOptions *o) {
    memset(o, 0, sizeof *o);
    o->dtype = ST_WRITE_DEFAULT_DTYPE;
    o->bos_id = o->eos_id = -1;
}

/* the method of an adapter, from its ops ("llama_adapter" == "llama-adapter") */
static int method_of(const Adapter *ad) {
    for (int m = 0; m < METHOD_COUNT; m++) {
        const char *a = ad->ops->method, *b = METHOD_NAMES[m];
        for (;; a++, b++) {
            char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;
            if (x != y) break;
            if (!x) return m;
        }
    }
    return -1;
}

static void common_fields(PjObj *o, int m, const PeftSaveOptions *opt) {
    pj_raw(o, "auto_mapping", "null");
    pj_str(o, "base_model_name_or_path", opt->base_model);
    pj_raw(o, "inference_mode", "true");
    pj_str(o, "peft_type", PEFT_TYPES[m]);
    pj_str(o, "peft_version", PEFT_FORMAT_VERSION);
    pj_raw(o, "revision", "null");
    pj_str(o, "task_type", "CAUSAL_LM");
}

static char *adapter_config_json(const MethodSpec *s, const LlamaConfig *c, const PeftSaveOptions *opt) {
    PjObj o = {.n = 0};
    int m = (int)s->method, KV = c->NKV * c->HS;
    char why[256];
    common_fields(&o, m, opt);
    if (!peft_expressible(s, c, why, sizeof why)) {
        char note[512];
        snprintf(note, sizeof note, "written by affix; PEFT cannot load this adapter: %s", why);
        pj_str(&o, "affix_note", note);
    }
    if (m == METHOD_PROMPT || m == METHOD_PREFIX) {
        pj_raw(&o, "modules_to_save", "null");
        pj_int(&o, "num_layers", c->L);
        pj_int(&o, "num_transformer_submodules", 1);
        pj_int(&o, "num_virtual_tokens", s->num_virtual_tokens);
    }
    if (m == METHOD_PROMPT) {
        pj_int(&o, "num_attention_heads", c->NH);
        pj_str(&o, "prompt_tuning_init", s->prompt_init == PROMPT_INIT_VOCAB ? "SAMPLE_VOCAB" : "RANDOM");
        pj_raw(&o, "prompt_tuning_init_text", "null");
        pj_int(&o, "token_dim", c->C);
        pj_raw(&o, "tokenizer_kwargs", "null");
        pj_raw(&o, "tokenizer_name_or_path", "null");
    } else if (m == METHOD_PREFIX) { /* PEFT >= 0.12 on GQA: the prefix lives in KV space */
        pj_int(&o, "num_attention_heads", c->NKV);
        pj_int(&o, "token_dim", KV);
        pj_int(&o, "encoder_hidden_size", s->projection && s->encoder_hidden_size ? s->encoder_hidden_size : KV);
        pj_raw(&o, "init_weights", "null");
        pj_raw(&o, "prefix_projection", s->projection ? "true" : "false");
        int layers[METHOD_SPEC_MAX_LAYERS], n = peft_spec_layers(s, c, layers);
        if (n != c->L) {
            char items[METHOD_SPEC_MAX_LAYERS][12];
            const char *ptr[METHOD_SPEC_MAX_LAYERS];
            for (int i = 0; i < n; i++) snprintf(items[i], sizeof items[i], "%d", layers[i]), ptr[i] = items[i];
            pj_list(&o, "affix_layers", ptr, n);
        }
        if (s->offset_zero) pj_str(&o, "affix_position_offset", "zero");
        if (s->always_visible) pj_str(&o, "affix_prefix_window", "always");
    } else if (m == METHOD_LLAMA_ADAPTER) {
        pj_int(&o, "adapter_layers", s->adapter_layers);
        pj_int(&o, "adapter_len", s->adapter_len);
        pj_str(&o, "target_modules", "self_attn");
        if (s->gate == GATE_OFFICIAL) pj_str(&o, "affix_gate", "official");
    } else if (m == METHOD_LORA) {
        /* every field of LoraConfig as PEFT 0.21.2 writes it; only r, lora_alpha, use_rslora and
         * target_modules carry affix's options, the rest are PEFT's defaults (features affix lacks) */
        static const char *const nulls[] = {"alora_invocation_tokens", "arrow_config", "corda_config", "eva_config",
                                            "exclude_modules", "kasa_config", "layer_replication", "layers_pattern",
                                            "layers_to_transform", "lora_ga_config", "megatron_config",
                                            "modules_to_save", "monteclora_config", "target_parameters",
                                            "trainable_token_indices", "use_bdlora", "velora_config"};
        for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) pj_raw(&o, nulls[i], "null");
        pj_raw(&o, "alpha_pattern", "{}");
        pj_raw(&o, "rank_pattern", "{}");
        pj_raw(&o, "loftq_config", "{}");
        pj_str(&o, "bias", "none");
        pj_raw(&o, "ensure_weight_tying", "false");
        pj_raw(&o, "fan_in_fan_out", "false");
        pj_raw(&o, "init_lora_weights", "true");
        pj_number(&o, "lora_alpha", s->alpha);
        pj_raw(&o, "lora_bias", "false");
        pj_float(&o, "lora_dropout", 0.0);
        pj_str(&o, "megatron_core", "megatron.core");
        pj_int(&o, "qalora_group_size", 16);
        pj_int(&o, "r", s->r);
        pj_raw(&o, "use_dora", "false");
        pj_raw(&o, "use_qalora", "false");
        pj_raw(&o, "use_rslora", s->rslora ? "true" : "false");
        /* sorted module names (PEFT writes a set, in no fixed order) */
        static const int alpha_order[LIN_COUNT] = {LIN_DOWN, LIN_GATE, LIN_K, LIN_O, LIN_Q, LIN_UP, LIN_V};
        char items[LIN_COUNT][16];
        const char *ptr[LIN_COUNT];
        int n = 0;
        for (int i = 0; i < LIN_COUNT; i++)
            if (s->targets[alpha_order[i]]) {
                snprintf(items[n], sizeof items[n], "\"%s\"", PEFT_LIN_MODULES[alpha_order[i]]);
                ptr[n] = items[n];
                n++;
            }
        pj_list(&o, "target_modules", ptr, n);
    }
    char *text = pj_render(&o, 0);
    pj_free(&o);
    return text;
}

/* config.json of a Gemma 3 text model, the fields transformers 5 writes for Gemma3ForCausalLM
 * (model_type gemma3_text; rope_parameters per layer type; layer_types written out) */
static char *gemma3_config_json(const LlamaConfig *c, const PeftSaveOptions *opt) {
    PjObj o = {.n = 0}, rope = {.n = 0}, full = {.n = 0}, slide = {.n = 0};
    pj_list(&o, "architectures", (const char *const[]){"\"Gemma3ForCausalLM\""}, 1);
    pj_raw(&o, "attention_bias", "false");
    pj_float(&o, "attention_dropout", 0.0);
    pj_raw(&o, "attn_logit_softcapping", "null");
    if (opt->bos_id >= 0) pj_int(&o, "bos_token_id", opt->bos_id);
    else pj_raw(&o, "bos_token_id", "null");
    pj_str(&o, "dtype", opt->dtype == ST_F64 ? "float64" : opt->dtype == ST_BF16 ? "bfloat16" : "float32");
    if (opt->eos_id >= 0) pj_int(&o, "eos_token_id", opt->eos_id);
    else pj_raw(&o, "eos_token_id", "null");
    pj_raw(&o, "final_logit_softcapping", "null");
    pj_int(&o, "head_dim", c->HS);
    pj_str(&o, "hidden_activation", "gelu_pytorch_tanh");
    pj_int(&o, "hidden_size", c->C);
    pj_float(&o, "initializer_range", 0.02);
    pj_int(&o, "intermediate_size", c->FF);
    const char *types[AFX_MAX_LAYERS];
    for (int l = 0; l < c->L; l++) types[l] = c->sliding[l] ? "\"sliding_attention\"" : "\"full_attention\"";
    pj_list(&o, "layer_types", types, c->L);
    pj_int(&o, "max_position_embeddings", c->max_pos);
    pj_str(&o, "model_type", "gemma3_text");
    pj_int(&o, "num_attention_heads", c->NH);
    pj_int(&o, "num_hidden_layers", c->L);
    pj_int(&o, "num_key_value_heads", c->NKV);
    pj_raw(&o, "pad_token_id", "null");
    if (c->query_pre_attn_scalar == (double)(long long)c->query_pre_attn_scalar) // transformers wants an int
        pj_int(&o, "query_pre_attn_scalar", (long long)c->query_pre_attn_scalar);
    else pj_float(&o, "query_pre_attn_scalar", c->query_pre_attn_scalar);
    pj_float(&o, "rms_norm_eps", c->eps);
    pj_str(&full, "rope_type", "default");
    pj_float(&full, "rope_theta", c->rope_theta);
    pj_str(&slide, "rope_type", "default");
    pj_float(&slide, "rope_theta", c->rope_local_theta);
    char *rf = pj_render(&full, 4), *rs = pj_render(&slide, 4);
    if (rf && rs) {
        pj_raw(&rope, "full_attention", rf);
        pj_raw(&rope, "sliding_attention", rs);
    } else {
        o.oom = 1;
    }
    free(rf);
    free(rs);
    char *r = pj_render(&rope, 2);
    if (r) pj_raw(&o, "rope_parameters", r);
    else o.oom = 1;
    free(r);
    pj_int(&o, "sliding_window", c->sliding_window);
    pj_raw(&o, "tie_word_embeddings", c->tied ? "true" : "false");
    pj_raw(&o, "use_bidirectional_attention", "false");
    pj_raw(&o, "use_cache", "true");
    pj_int(&o, "vocab_size", c->V);
    char *text = pj_render(&o, 0);
    pj_free(&o);
    pj_free(&rope);
    pj_free(&full);
    pj_free(&slide);
    return text;
}

/* config.json of a Llama model, the fields transformers 5 writes for LlamaForCausalLM */
static char *hf_config_json(const LlamaConfig *c, const PeftSaveOptions *opt) {
    if (c->arch == AFX_ARCH_GEMMA3) return gemma3_config_json(c, opt);
    PjObj o = {.n = 0}, rope = {.n = 0};
    pj_list(&o, "architectures", (const char *const[]){"\"LlamaForCausalLM\""}, 1);
    pj_raw(&o, "attention_bias", "false");
    pj_float(&o, "attention_dropout", 0.0);
    if (opt->bos_id >= 0) pj_int(&o, "bos_token_id", opt->bos_id);
    else pj_raw(&o, "bos_token_id", "null");
    pj_str(&o, "dtype", opt->dtype == ST_F64 ? "float64" : opt->dtype == ST_BF16 ? "bfloat16" : "float32");
    if (opt->eos_id >= 0) pj_int(&o, "eos_token_id", opt->eos_id);
    else pj_raw(&o, "eos_token_id", "null");
    pj_int(&o, "head_dim", c->HS);
    pj_str(&o, "hidden_act", "silu");
    pj_int(&o, "hidden_size", c->C);
    pj_float(&o, "initializer_range", 0.02);
    pj_int(&o, "intermediate_size", c->FF);
    pj_int(&o, "max_position_embeddings", c->max_pos);
    pj_raw(&o, "mlp_bias", "false");
    pj_str(&o, "model_type", "llama");
    pj_int(&o, "num_attention_heads", c->NH);
    pj_int(&o, "num_hidden_layers", c->L);
    pj_int(&o, "num_key_value_heads", c->NKV);
    pj_raw(&o, "pad_token_id", "null");
    pj_int(&o, "pretraining_tp", 1);
    pj_float(&o, "rms_norm_eps", c->eps);
    pj_float(&rope, "rope_theta", c->rope_theta);
    if (c->rope_factor > 0) {
        pj_str(&rope, "rope_type", "llama3");
        pj_float(&rope, "factor", c->rope_factor);
        pj_float(&rope, "low_freq_factor", c->rope_low_freq_factor);
        pj_float(&rope, "high_freq_factor", c->rope_high_freq_factor);
        pj_int(&rope, "original_max_position_embeddings", (long long)c->rope_original_max_position);
    } else {
        pj_str(&rope, "rope_type", "default");
    }
    char *r = pj_render(&rope, 2);
    if (r) pj_raw(&o, "rope_parameters", r);
    else o.oom = 1;
    free(r);
    pj_raw(&o, "tie_word_embeddings", c->tied ? "true" : "false");
    pj_raw(&o, "use_cache", "true");
    pj_int(&o, "vocab_size", c->V);
    char *text = pj_render(&o, 0);
    pj_free(&o);
    pj_free(&rope);
    return text;
}

/* the parameter table of ad must be the one spec makes on ad->cfg, with values bound */
static int check_table(const MethodSpec *spec, const Adapter *ad, afx_err *e) {
    if (!ad->ops || method_of(ad) != (int)spec->method)
        return afx_fail(e, "peft_save: the adapter is %s but the spec is %s", ad->ops ? ad->ops->method : "(none)",
                        METHOD_NAMES[spec->method]);
    Adapter ref;
    if (method_spec_create(&ref, spec, &ad->cfg, e)) return -1;
    int ok = ref.n_params == ad->n_params;
    for (int k = 0; ok && k < ref.n_params; k++)
        ok = !strcmp(ref.params[k].name, ad->params[k].name) && ref.params[k].numel == ad->params[k].numel;
    adapter_destroy(&ref);
    if (!ok) return afx_fail(e, "peft_save: the adapter's parameters are not those of its spec");
    for (int k = 0; k < ad->n_params; k++)
        if (!ad->params[k].w)
            return afx_fail(e, "peft_save: parameter '%s' has no values (bind the adapter with adapter_set_init)",
                            ad->params[k].name);
    return 0;
}

int peft_save(const char *dir, const MethodSpec *spec, const Adapter *ad, const PeftSaveOptions *o, afx_err *e) {
    PeftSaveOptions def;
    if (!o) peft_save_options_init(&def), o = &def;
    if (check_table(spec, ad, e)) return -1;
    if (o->dtype != ST_F32 && o->dtype != ST_F64 && o->dtype != ST_BF16)
        return afx_fail(e, "%s: cannot save tensors as %s (F32, F64 or BF16)", dir, st_dtype_name(o->dtype));
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return afx_fail(e, "%s: cannot create: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return afx_fail(e, "%s: not a directory", dir);

    int m = (int)spec->method, full = m == METHOD_FULL, proj = m == METHOD_PREFIX && spec->projection;
    const LlamaConfig *c = &ad->cfg;
    int nt = ad->n_params + proj;
    st_wtensor *t = calloc((size_t)nt, sizeof *t);
    char (*keys)[192] = calloc((size_t)nt, sizeof *keys);
    real *table = NULL, *vals = NULL;
    char *json = NULL, path_t[4096], path_c[4096];
    AfxPending pt = {.active = 0}, pc = {.active = 0};
    int rc = -1;
    if (!t || !keys) {
        afx_fail(e, "%s: out of memory", dir);
        goto done;
    }
    for (int k = 0; k < ad->n_params; k++) {
        peft_file_key(ad, m, k, keys[k], sizeof keys[k], t[k].shape, &t[k].ndim);
        t[k].name = keys[k];
        t[k].data = ad->params[k].w;
        t[k].src = ST_REAL;
    }
    if (proj) { /* PEFT's prompt_embeddings: the MLP's output, the table PEFT's inference uses */
        size_t count = adapter_param_count(ad), off = 0;
        vals = malloc(count * sizeof(real));
        int ntab = (int)ad->params[3].shape[0];
        table = malloc((size_t)spec->num_virtual_tokens * (size_t)ntab * sizeof(real));
        if (!vals || !table) {
            afx_fail(e, "%s: out of memory", dir);
            goto done;
        }
        for (int k = 0; k < ad->n_params; off += ad->params[k].numel, k++)
            memcpy(vals + off, ad->params[k].w, ad->params[k].numel * sizeof(real));
        if (peft_prefix_table(spec, c, vals, table, e)) goto done;
        st_wtensor *tt = &t[ad->n_params];
        snprintf(keys[ad->n_params], sizeof keys[0], "prompt_embeddings");
        tt->name = keys[ad->n_params];
        tt->ndim = 2;
        tt->shape[0] = (size_t)spec->num_virtual_tokens;
        tt->shape[1] = (size_t)ntab;
        tt->data = table;
        tt->src = ST_REAL;
    }
    json = full ? hf_config_json(c, o) : adapter_config_json(spec, c, o);
    if (!json) {
        afx_fail(e, "%s: out of memory", dir);
        goto done;
    }
    snprintf(path_t, sizeof path_t, "%s/%s", dir, full ? "model.safetensors" : "adapter_model.safetensors");
    snprintf(path_c, sizeof path_c, "%s/%s", dir, full ? "config.json" : "adapter_config.json");
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    // both files written completely before either replaces anything; the config is renamed last
    if (st_prepare(&pt, path_t, o->dtype, t, (size_t)nt, mk, mv, 1, e)) goto done;
    if (afx_text_prepare(&pc, path_c, json, strlen(json), e)) goto done;
    if (afx_pending_commit(&pt, e)) goto done;
    rc = afx_pending_commit(&pc, e);
done:
    afx_pending_abort(&pt);
    afx_pending_abort(&pc);
    free(t);
    free(keys);
    free(table);
    free(vals);
    free(json);
    return rc;
}
