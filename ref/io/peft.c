/* peft.c — PEFT adapter directories and HF model directories (see peft.h).
 *
 * What this is: one map from affix's parameter tables to PEFT's file names and shapes (file_key,
 * used by both directions), a writer of adapter_config.json / config.json in Python's
 * json.dumps(indent=2, sort_keys=True) style, and a strict reader that turns PEFT's fields into
 * method_spec options and checks every tensor.
 * What this is not: any method's math. The one derived tensor (the prefix table of a projection)
 * is computed by prefix.c itself, through a temporary adapter set.
 */
#define _POSIX_C_SOURCE 200809L

#include "peft.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "st_write.h"

#define MAX_JSON_BYTES ((size_t)16 << 20)

static const char *const PEFT_TYPES[METHOD_COUNT] = {"PROMPT_TUNING", "PREFIX_TUNING", "ADAPTION_PROMPT", "LORA",
                                                     NULL};
static const char *const LIN_MODULES[LIN_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                   "gate_proj", "up_proj", "down_proj"};

void peft_save_options_init(PeftSaveOptions *o) {
    memset(o, 0, sizeof *o);
    o->dtype = ST_WRITE_DEFAULT_DTYPE;
    o->bos_id = o->eos_id = -1;
}

/* ---- small helpers ------------------------------------------------------------------------------ */

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

/* the prefix layers of a spec on c, ascending; returns their number */
static int spec_layers(const MethodSpec *s, const LlamaConfig *c, int *out) {
    int n = 0;
    for (int l = 0; l < c->L; l++) {
        int on = s->layers == LAYERS_ALL ? 1
                 : s->layers == LAYERS_TOP ? l >= c->L - s->top_k
                 : l < METHOD_SPEC_MAX_LAYERS && ((s->layer_bits[l / 8] >> (l % 8)) & 1);
        if (on) out[n++] = l;
    }
    return n;
}

static void shape_str(char *buf, size_t n, int ndim, const size_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%zu", i ? "," : "", shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static void note_add(PeftAdapter *pa, const char *fmt, const char *what) {
    size_t k = strlen(pa->note);
    if (k + 3 >= sizeof pa->note) return;
    snprintf(pa->note + k, sizeof pa->note - k, "%s", k ? "; " : "");
    k = strlen(pa->note);
    snprintf(pa->note + k, sizeof pa->note - k, fmt, what);
}

/* File name and shape of parameter k of ad (method m; proj: a prefix with its MLP). */
static void file_key(const Adapter *ad, int m, int k, char *key, size_t n, size_t shape[4], int *ndim) {
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
static int prefix_table(const MethodSpec *spec, const LlamaConfig *c, const real *values, real *table, afx_err *e) {
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

/* ---- JSON in Python's json.dumps(indent=2, sort_keys=True) style ------------------------------------ */

typedef struct {
    char key[64];
    char *val; /* rendered for a field at depth 1 (nested lines indented by 4, closing by 2) */
} JField;

typedef struct {
    JField f[64];
    int n, oom;
} JObj;

static void jraw(JObj *o, const char *key, const char *val) {
    if (o->n >= 64) {
        o->oom = 1;
        return;
    }
    size_t len = strlen(val) + 1;
    char *v = malloc(len);
    if (!v) {
        o->oom = 1;
        return;
    }
    memcpy(v, val, len);
    snprintf(o->f[o->n].key, sizeof o->f[0].key, "%s", key);
    o->f[o->n++].val = v;
}

static void jfree(JObj *o) {
    for (int i = 0; i < o->n; i++) free(o->f[i].val);
    o->n = 0;
}

/* a JSON string literal ('"', '\' and control characters escaped) into out[0..n) */
static void jquote(char *out, size_t n, const char *s) {
    size_t k = 0;
    if (n < 3) return;
    out[k++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c && k + 8 < n; c++) {
        if (*c == '"' || *c == '\\') out[k++] = '\\', out[k++] = (char)*c;
        else if (*c == '\n') out[k++] = '\\', out[k++] = 'n';
        else if (*c == '\t') out[k++] = '\\', out[k++] = 't';
        else if (*c == '\r') out[k++] = '\\', out[k++] = 'r';
        else if (*c < 0x20) k += (size_t)snprintf(out + k, n - k, "\\u%04x", *c);
        else out[k++] = (char)*c;
    }
    out[k++] = '"';
    out[k] = 0;
}

static void jstr(JObj *o, const char *key, const char *s) {
    char buf[2048];
    if (!s) {
        jraw(o, key, "null");
        return;
    }
    jquote(buf, sizeof buf, s);
    jraw(o, key, buf);
}

static void jint(JObj *o, const char *key, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    jraw(o, key, buf);
}

/* Python's repr of a float: the shortest digits that round-trip; fixed notation for exponents -4..15
 * (with ".0" when integral), otherwise d.ddde+XX */
static void py_float(char *out, size_t n, double x) {
    char buf[40], digits[24];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, x);
        if (strtod(buf, NULL) == x) break;
    }
    const char *s = buf;
    int neg = *s == '-', nd = 0;
    if (neg) s++;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    int ex = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    size_t k = (size_t)snprintf(out, n, "%s", neg ? "-" : "");
    if (ex >= -4 && ex < 16) {
        if (ex < 0) {
            k += (size_t)snprintf(out + k, n - k, "0.");
            for (int i = 0; i < -ex - 1; i++) k += (size_t)snprintf(out + k, n - k, "0");
            snprintf(out + k, n - k, "%s", digits);
        } else {
            for (int i = 0; i <= ex; i++) k += (size_t)snprintf(out + k, n - k, "%c", i < nd ? digits[i] : '0');
            snprintf(out + k, n - k, ".%s", nd > ex + 1 ? digits + ex + 1 : "0");
        }
    } else {
        k += (size_t)snprintf(out + k, n - k, "%c", digits[0]);
        if (nd > 1) k += (size_t)snprintf(out + k, n - k, ".%s", digits + 1);
        snprintf(out + k, n - k, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    }
}

static void jfloat(JObj *o, const char *key, double v) {
    char buf[48];
    py_float(buf, sizeof buf, v);
    jraw(o, key, buf);
}

/* a number as PEFT's users usually give it: an integer when integral (lora_alpha = 16) */
static void jnumber(JObj *o, const char *key, double v) {
    if (v == floor(v) && fabs(v) < 1e15) jint(o, key, (long long)v);
    else jfloat(o, key, v);
}

/* a list of n items (already rendered) at depth 1 */
static void jlist(JObj *o, const char *key, const char *const *items, int n) {
    if (n == 0) {
        jraw(o, key, "[]");
        return;
    }
    size_t len = 8;
    for (int i = 0; i < n; i++) len += strlen(items[i]) + 8;
    char *buf = malloc(len);
    if (!buf) {
        o->oom = 1;
        return;
    }
    size_t k = (size_t)snprintf(buf, len, "[\n");
    for (int i = 0; i < n; i++) k += (size_t)snprintf(buf + k, len - k, "    %s%s\n", items[i], i + 1 < n ? "," : "");
    snprintf(buf + k, len - k, "  ]");
    jraw(o, key, buf);
    free(buf);
}

static int cmp_field(const void *a, const void *b) { return strcmp(((const JField *)a)->key, ((const JField *)b)->key); }

/* the object, keys sorted; indent = the depth's indentation (0 top level, 2 for a nested value) */
static char *jrender(JObj *o, int indent) {
    if (o->oom) return NULL;
    qsort(o->f, (size_t)o->n, sizeof o->f[0], cmp_field);
    size_t len = 8;
    for (int i = 0; i < o->n; i++) len += strlen(o->f[i].key) + strlen(o->f[i].val) * 2 + 16 + (size_t)indent;
    char *buf = malloc(len);
    if (!buf) return NULL;
    size_t k = (size_t)snprintf(buf, len, "{\n");
    for (int i = 0; i < o->n; i++) {
        k += (size_t)snprintf(buf + k, len - k, "%*s\"%s\": ", indent + 2, "", o->f[i].key);
        for (const char *v = o->f[i].val; *v; v++) { /* nested lines move by indent */
            buf[k++] = *v;
            if (*v == '\n') k += (size_t)snprintf(buf + k, len - k, "%*s", indent, "");
        }
        k += (size_t)snprintf(buf + k, len - k, "%s\n", i + 1 < o->n ? "," : "");
    }
    snprintf(buf + k, len - k, "%*s}", indent, "");
    return buf;
}

/* ---- what PEFT can express -------------------------------------------------------------------------- */

int peft_expressible(const MethodSpec *s, const LlamaConfig *c, char *why, size_t n) {
    char dummy[8];
    if (!why) why = dummy, n = sizeof dummy;
    why[0] = 0;
    int layers[METHOD_SPEC_MAX_LAYERS];
    if (s->method == METHOD_PREFIX && spec_layers(s, c, layers) != c->L) {
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

/* ---- writing ---------------------------------------------------------------------------------------- */

static void common_fields(JObj *o, int m, const PeftSaveOptions *opt) {
    jraw(o, "auto_mapping", "null");
    jstr(o, "base_model_name_or_path", opt->base_model);
    jraw(o, "inference_mode", "true");
    jstr(o, "peft_type", PEFT_TYPES[m]);
    jstr(o, "peft_version", PEFT_FORMAT_VERSION);
    jraw(o, "revision", "null");
    jstr(o, "task_type", "CAUSAL_LM");
}

static char *adapter_config_json(const MethodSpec *s, const LlamaConfig *c, const PeftSaveOptions *opt) {
    JObj o = {.n = 0};
    int m = (int)s->method, KV = c->NKV * c->HS;
    char why[256];
    common_fields(&o, m, opt);
    if (!peft_expressible(s, c, why, sizeof why)) {
        char note[512];
        snprintf(note, sizeof note, "written by affix; PEFT cannot load this adapter: %s", why);
        jstr(&o, "affix_note", note);
    }
    if (m == METHOD_PROMPT || m == METHOD_PREFIX) {
        jraw(&o, "modules_to_save", "null");
        jint(&o, "num_layers", c->L);
        jint(&o, "num_transformer_submodules", 1);
        jint(&o, "num_virtual_tokens", s->num_virtual_tokens);
    }
    if (m == METHOD_PROMPT) {
        jint(&o, "num_attention_heads", c->NH);
        jstr(&o, "prompt_tuning_init", s->prompt_init == PROMPT_INIT_VOCAB ? "SAMPLE_VOCAB" : "RANDOM");
        jraw(&o, "prompt_tuning_init_text", "null");
        jint(&o, "token_dim", c->C);
        jraw(&o, "tokenizer_kwargs", "null");
        jraw(&o, "tokenizer_name_or_path", "null");
    } else if (m == METHOD_PREFIX) { /* PEFT >= 0.12 on GQA: the prefix lives in KV space */
        jint(&o, "num_attention_heads", c->NKV);
        jint(&o, "token_dim", KV);
        jint(&o, "encoder_hidden_size", s->projection && s->encoder_hidden_size ? s->encoder_hidden_size : KV);
        jraw(&o, "init_weights", "null");
        jraw(&o, "prefix_projection", s->projection ? "true" : "false");
        int layers[METHOD_SPEC_MAX_LAYERS], n = spec_layers(s, c, layers);
        if (n != c->L) {
            char items[METHOD_SPEC_MAX_LAYERS][12];
            const char *ptr[METHOD_SPEC_MAX_LAYERS];
            for (int i = 0; i < n; i++) snprintf(items[i], sizeof items[i], "%d", layers[i]), ptr[i] = items[i];
            jlist(&o, "affix_layers", ptr, n);
        }
        if (s->offset_zero) jstr(&o, "affix_position_offset", "zero");
        if (s->always_visible) jstr(&o, "affix_prefix_window", "always");
    } else if (m == METHOD_LLAMA_ADAPTER) {
        jint(&o, "adapter_layers", s->adapter_layers);
        jint(&o, "adapter_len", s->adapter_len);
        jstr(&o, "target_modules", "self_attn");
        if (s->gate == GATE_OFFICIAL) jstr(&o, "affix_gate", "official");
    } else if (m == METHOD_LORA) {
        /* every field of LoraConfig as PEFT 0.21.2 writes it; only r, lora_alpha, use_rslora and
         * target_modules carry affix's options, the rest are PEFT's defaults (features affix lacks) */
        static const char *const nulls[] = {"alora_invocation_tokens", "arrow_config", "corda_config", "eva_config",
                                            "exclude_modules", "kasa_config", "layer_replication", "layers_pattern",
                                            "layers_to_transform", "lora_ga_config", "megatron_config",
                                            "modules_to_save", "monteclora_config", "target_parameters",
                                            "trainable_token_indices", "use_bdlora", "velora_config"};
        for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) jraw(&o, nulls[i], "null");
        jraw(&o, "alpha_pattern", "{}");
        jraw(&o, "rank_pattern", "{}");
        jraw(&o, "loftq_config", "{}");
        jstr(&o, "bias", "none");
        jraw(&o, "ensure_weight_tying", "false");
        jraw(&o, "fan_in_fan_out", "false");
        jraw(&o, "init_lora_weights", "true");
        jnumber(&o, "lora_alpha", s->alpha);
        jraw(&o, "lora_bias", "false");
        jfloat(&o, "lora_dropout", 0.0);
        jstr(&o, "megatron_core", "megatron.core");
        jint(&o, "qalora_group_size", 16);
        jint(&o, "r", s->r);
        jraw(&o, "use_dora", "false");
        jraw(&o, "use_qalora", "false");
        jraw(&o, "use_rslora", s->rslora ? "true" : "false");
        /* sorted module names (PEFT writes a set, in no fixed order) */
        static const int alpha_order[LIN_COUNT] = {LIN_DOWN, LIN_GATE, LIN_K, LIN_O, LIN_Q, LIN_UP, LIN_V};
        char items[LIN_COUNT][16];
        const char *ptr[LIN_COUNT];
        int n = 0;
        for (int i = 0; i < LIN_COUNT; i++)
            if (s->targets[alpha_order[i]]) {
                snprintf(items[n], sizeof items[n], "\"%s\"", LIN_MODULES[alpha_order[i]]);
                ptr[n] = items[n];
                n++;
            }
        jlist(&o, "target_modules", ptr, n);
    }
    char *text = jrender(&o, 0);
    jfree(&o);
    return text;
}

/* config.json of a Llama model, the fields transformers 5 writes for LlamaForCausalLM */
static char *hf_config_json(const LlamaConfig *c, const PeftSaveOptions *opt) {
    JObj o = {.n = 0}, rope = {.n = 0};
    jlist(&o, "architectures", (const char *const[]){"\"LlamaForCausalLM\""}, 1);
    jraw(&o, "attention_bias", "false");
    jfloat(&o, "attention_dropout", 0.0);
    if (opt->bos_id >= 0) jint(&o, "bos_token_id", opt->bos_id);
    else jraw(&o, "bos_token_id", "null");
    jstr(&o, "dtype", opt->dtype == ST_F64 ? "float64" : opt->dtype == ST_BF16 ? "bfloat16" : "float32");
    if (opt->eos_id >= 0) jint(&o, "eos_token_id", opt->eos_id);
    else jraw(&o, "eos_token_id", "null");
    jint(&o, "head_dim", c->HS);
    jstr(&o, "hidden_act", "silu");
    jint(&o, "hidden_size", c->C);
    jfloat(&o, "initializer_range", 0.02);
    jint(&o, "intermediate_size", c->FF);
    jint(&o, "max_position_embeddings", c->max_pos);
    jraw(&o, "mlp_bias", "false");
    jstr(&o, "model_type", "llama");
    jint(&o, "num_attention_heads", c->NH);
    jint(&o, "num_hidden_layers", c->L);
    jint(&o, "num_key_value_heads", c->NKV);
    jraw(&o, "pad_token_id", "null");
    jint(&o, "pretraining_tp", 1);
    jfloat(&o, "rms_norm_eps", c->eps);
    jfloat(&rope, "rope_theta", c->rope_theta);
    if (c->rope_factor > 0) {
        jstr(&rope, "rope_type", "llama3");
        jfloat(&rope, "factor", c->rope_factor);
        jfloat(&rope, "low_freq_factor", c->rope_low_freq_factor);
        jfloat(&rope, "high_freq_factor", c->rope_high_freq_factor);
        jint(&rope, "original_max_position_embeddings", (long long)c->rope_original_max_position);
    } else {
        jstr(&rope, "rope_type", "default");
    }
    char *r = jrender(&rope, 2);
    if (r) jraw(&o, "rope_parameters", r);
    else o.oom = 1;
    free(r);
    jraw(&o, "tie_word_embeddings", c->tied ? "true" : "false");
    jraw(&o, "use_cache", "true");
    jint(&o, "vocab_size", c->V);
    char *text = jrender(&o, 0);
    jfree(&o);
    jfree(&rope);
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
        file_key(ad, m, k, keys[k], sizeof keys[k], t[k].shape, &t[k].ndim);
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
        if (prefix_table(spec, c, vals, table, e)) goto done;
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

/* ---- reading ---------------------------------------------------------------------------------------- */

static char *read_text(const char *path, size_t *len, afx_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return afx_fail(e, "%s: cannot open: %s", path, strerror(errno)), NULL;
    char *buf = malloc(MAX_JSON_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_JSON_BYTES + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf) return afx_fail(e, "%s: out of memory", path), NULL;
    if (bad || n > MAX_JSON_BYTES) {
        free(buf);
        return afx_fail(e, "%s: %s", path, bad ? "read error" : "larger than 16 MiB"), NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* a JSON value that means "off": null, false, 0, "", [] or {} */
static int json_off(const cJSON *j) {
    if (!j || cJSON_IsNull(j) || cJSON_IsFalse(j)) return 1;
    if (cJSON_IsNumber(j)) return j->valuedouble == 0;
    if (cJSON_IsString(j)) return !*j->valuestring;
    if (cJSON_IsArray(j) || cJSON_IsObject(j)) return j->child == NULL;
    return 0;
}

static int json_int(const cJSON *j, int *out) {
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || fabs(j->valuedouble) > 1e9) return -1;
    *out = (int)j->valuedouble;
    return 0;
}

/* PEFT's model dimension field `key` must be `want` (the adapter was made for this model's shape) */
static int check_dim(const cJSON *root, const char *key, int want, const char *what, const char *label,
                     const LlamaConfig *c, afx_err *e) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    int v;
    if (!j || cJSON_IsNull(j)) return 0; /* PEFT fills it from the model when absent */
    if (json_int(j, &v)) return afx_fail(e, "%s: field '%s' must be an integer", label, key);
    if (v != want)
        return afx_fail(e, "%s: %s = %d, but this model's %s is %d: the adapter was made for another model "
                        "(hidden %d, layers %d, heads %d/%d, head_dim %d here)",
                        label, key, v, what, want, c->C, c->L, c->NH, c->NKV, c->HS);
    return 0;
}

/* LoRA target_modules: a list of module names (q_proj, ..., or full paths
 * model.layers.{l}.self_attn.q_proj as PEFT writes for all-linear), or "all-linear" */
static int lora_targets(const cJSON *j, const LlamaConfig *c, char *out, size_t n, const char *label, afx_err *e) {
    int sites[LIN_COUNT] = {0};
    unsigned char *cover = calloc((size_t)c->L * LIN_COUNT, 1); /* full paths: (layer, site) seen */
    int paths = 0, bad = 0;
    if (!cover) return afx_fail(e, "%s: out of memory", label);
    if (cJSON_IsString(j)) { /* PEFT: a string is a regular expression; only all-linear is read */
        if (strcmp(j->valuestring, "all-linear"))
            bad = afx_fail(e, "%s: target_modules '%.100s' (a regular expression) is not supported; give a list of "
                           "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or \"all-linear\"",
                           label, j->valuestring);
        for (int s = 0; s < LIN_COUNT; s++) sites[s] = 1;
    } else if (cJSON_IsArray(j) && j->child) {
        for (const cJSON *it = j->child; it && !bad; it = it->next) {
            const char *name = cJSON_IsString(it) ? it->valuestring : NULL, *leaf = name ? strrchr(name, '.') : NULL;
            leaf = leaf ? leaf + 1 : name;
            int k = -1, l = -1;
            for (int s = 0; leaf && s < LIN_COUNT; s++)
                if (!strcmp(leaf, LIN_MODULES[s])) k = s;
            if (k < 0) {
                bad = afx_fail(e, "%s: target module '%.100s' is not supported (q_proj, k_proj, v_proj, o_proj, "
                               "gate_proj, up_proj, down_proj)", label, name ? name : "(not a string)");
                break;
            }
            if (leaf != name) { /* a path: model.layers.{l}.<self_attn|mlp>.<module> */
                const char *lp = strstr(name, "layers.");
                char tail[64];
                if (!lp || sscanf(lp, "layers.%d.%63s", &l, tail) != 2 || l < 0 || l >= c->L) {
                    bad = afx_fail(e, "%s: target module '%.100s' is not a layer of this %d-layer model", label,
                                   name, c->L);
                    break;
                }
                cover[l * LIN_COUNT + k] = 1;
                paths = 1;
            } else { /* a module name: every layer */
                for (l = 0; l < c->L; l++) cover[l * LIN_COUNT + k] = 1;
            }
            sites[k] = 1;
        }
    } else {
        bad = afx_fail(e, "%s: target_modules must be a non-empty list of module names", label);
    }
    for (int s = 0; !bad && paths && s < LIN_COUNT; s++)
        for (int l = 0; sites[s] && l < c->L && !bad; l++)
            if (!cover[l * LIN_COUNT + s])
                bad = afx_fail(e, "%s: target_modules adapt %s in some layers but not in layer %d: affix's LoRA "
                               "adapts every layer", label, LIN_MODULES[s], l);
    free(cover);
    if (bad) return -1;
    size_t k = 0;
    out[0] = 0;
    for (int s = 0; s < LIN_COUNT; s++)
        if (sites[s]) k += (size_t)snprintf(out + k, n - k, "%s%s", k ? "," : "", LIN_SITE_NAMES[s]);
    return 0;
}

/* fields PEFT writes that never change the adapter's computation (metadata, init, training) */
static int harmless(const char *key) {
    static const char *const keys[] = {
        "auto_mapping", "base_model_name_or_path", "revision", "inference_mode", "peft_version", "peft_type",
        "task_type", "affix_note",
        /* prompt / prefix */
        "prompt_tuning_init_text", "tokenizer_name_or_path", "tokenizer_kwargs", "init_weights",
        /* lora: init and training only, or only read by a feature that is off */
        "init_lora_weights", "lora_dropout", "loftq_config", "eva_config", "corda_config", "lora_ga_config",
        "megatron_core", "megatron_config", "qalora_group_size", "layers_pattern"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(key, keys[i])) return 1;
    return 0;
}

/* adapter_config.json -> spec (the projection of a prefix is decided later, from the tensors) */
static int parse_adapter_config(const cJSON *root, const LlamaConfig *c, PeftAdapter *pa, int *proj_cfg, int *E_cfg,
                                const char *label, afx_err *e) {
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (!cJSON_IsString(pt)) return afx_fail(e, "%s: field 'peft_type' is missing", label);
    int m = -1;
    for (int k = 0; k < METHOD_FULL; k++)
        if (!strcmp(pt->valuestring, PEFT_TYPES[k])) m = k;
    if (m < 0)
        return afx_fail(e, "%s: peft_type '%.60s' is not supported (affix reads PROMPT_TUNING, PREFIX_TUNING, "
                        "ADAPTION_PROMPT and LORA)", label, pt->valuestring);
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(root, "task_type");
    if (tt && !cJSON_IsNull(tt) && !(cJSON_IsString(tt) && !strcmp(tt->valuestring, "CAUSAL_LM")))
        return afx_fail(e, "%s: task_type must be CAUSAL_LM (got %.60s)", label,
                        cJSON_IsString(tt) ? tt->valuestring : "not a string");
    if (method_spec_init(&pa->spec, METHOD_NAMES[m], e)) return -1;
    MethodSpec *s = &pa->spec;
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(root, "base_model_name_or_path");
    if (cJSON_IsString(bm)) snprintf(pa->base_model, sizeof pa->base_model, "%s", bm->valuestring);
    *proj_cfg = 0;
    *E_cfg = 0;
    char val[512];
    afx_err sub = {{0}};
    for (const cJSON *j = root->child; j; j = j->next) {
        const char *k = j->string;
        int iv;
        if (!strcmp(k, "affix_note")) pa->peft_loadable = 0; /* affix wrote it for a case PEFT cannot run */
        #define SET(opt, v)                                                                             \
            do {                                                                                        \
                if (method_spec_set(s, opt, v, &sub)) return afx_fail(e, "%s: %s", label, sub.msg);     \
            } while (0)
        #define INT_FIELD()                                                                             \
            do {                                                                                        \
                if (json_int(j, &iv) || iv <= 0)                                                        \
                    return afx_fail(e, "%s: field '%s' must be a positive integer", label, k);          \
                snprintf(val, sizeof val, "%d", iv);                                                    \
            } while (0)
        if (m == METHOD_PROMPT || m == METHOD_PREFIX) {
            if (!strcmp(k, "num_virtual_tokens")) {
                INT_FIELD();
                SET("num_virtual_tokens", val);
                continue;
            }
            if (!strcmp(k, "num_transformer_submodules")) {
                if (!cJSON_IsNull(j) && (json_int(j, &iv) || iv != 1))
                    return afx_fail(e, "%s: num_transformer_submodules must be 1 (a decoder-only model)", label);
                continue;
            }
            if (!strcmp(k, "token_dim") || !strcmp(k, "num_layers") || !strcmp(k, "num_attention_heads"))
                continue; /* checked below */
        }
        if (m == METHOD_PROMPT && !strcmp(k, "prompt_tuning_init")) {
            if (cJSON_IsString(j) && !strcmp(j->valuestring, "TEXT")) note_add(pa, "%s", "prompt_tuning_init TEXT (an init; ignored)");
            else if (cJSON_IsString(j)) SET("prompt_tuning_init", j->valuestring);
            continue;
        }
        if (m == METHOD_PREFIX) {
            if (!strcmp(k, "prefix_projection")) {
                if (!cJSON_IsBool(j)) return afx_fail(e, "%s: prefix_projection must be true or false", label);
                *proj_cfg = cJSON_IsTrue(j);
                continue;
            }
            if (!strcmp(k, "encoder_hidden_size")) {
                if (!cJSON_IsNull(j)) {
                    INT_FIELD();
                    *E_cfg = iv;
                }
                continue;
            }
            if (!strcmp(k, "affix_layers")) {
                size_t len = 0;
                val[0] = 0;
                for (const cJSON *it = cJSON_IsArray(j) ? j->child : NULL; it; it = it->next) {
                    if (json_int(it, &iv) || iv < 0) return afx_fail(e, "%s: affix_layers must list layer indices", label);
                    len += (size_t)snprintf(val + len, sizeof val - len, "%s%d", len ? "," : "", iv);
                    if (len >= sizeof val) return afx_fail(e, "%s: affix_layers is too long", label);
                }
                if (!len) return afx_fail(e, "%s: affix_layers must list layer indices", label);
                SET("layers", val);
                pa->peft_loadable = 0;
                continue;
            }
            if (!strcmp(k, "affix_position_offset")) {
                SET("position-offset", cJSON_IsString(j) ? j->valuestring : "?");
                pa->peft_loadable = 0;
                continue;
            }
            if (!strcmp(k, "affix_prefix_window")) {
                SET("prefix-window", cJSON_IsString(j) ? j->valuestring : "?");
                pa->peft_loadable = 0;
                continue;
            }
        }
        if (m == METHOD_LLAMA_ADAPTER) {
            if (!strcmp(k, "adapter_len") || !strcmp(k, "adapter_layers")) {
                INT_FIELD();
                SET(k, val);
                continue;
            }
            if (!strcmp(k, "target_modules")) {
                if (!cJSON_IsString(j) || strcmp(j->valuestring, "self_attn"))
                    return afx_fail(e, "%s: AdaptionPrompt target_modules must be \"self_attn\"", label);
                continue;
            }
            if (!strcmp(k, "affix_gate")) {
                SET("gate", cJSON_IsString(j) ? j->valuestring : "?");
                pa->peft_loadable = 0;
                continue;
            }
        }
        if (m == METHOD_LORA) {
            if (!strcmp(k, "r")) {
                INT_FIELD();
                SET("r", val);
                continue;
            }
            if (!strcmp(k, "lora_alpha")) {
                if (!cJSON_IsNumber(j)) return afx_fail(e, "%s: lora_alpha must be a number", label);
                snprintf(val, sizeof val, "%.17g", j->valuedouble);
                SET("lora_alpha", val);
                continue;
            }
            if (!strcmp(k, "use_rslora")) {
                if (!cJSON_IsBool(j)) return afx_fail(e, "%s: use_rslora must be true or false", label);
                SET("use_rslora", cJSON_IsTrue(j) ? "true" : "false");
                continue;
            }
            if (!strcmp(k, "target_modules")) {
                if (lora_targets(j, c, val, sizeof val, label, e)) return -1;
                SET("target_modules", val);
                continue;
            }
            if (!strcmp(k, "bias")) {
                if (!cJSON_IsString(j) || strcmp(j->valuestring, "none"))
                    return afx_fail(e, "%s: bias must be \"none\" (affix's LoRA trains no biases)", label);
                continue;
            }
            if (!strcmp(k, "lora_dropout") && !json_off(j)) note_add(pa, "%s", "lora_dropout (training only; affix has no dropout)");
        }
        #undef SET
        #undef INT_FIELD
        if (harmless(k) || json_off(j)) continue;
        if (!strncmp(k, "affix_", 6))
            return afx_fail(e, "%s: field '%s' is not one this affix knows for %s (written by a newer affix?)", label,
                            k, pt->valuestring);
        char *txt = cJSON_PrintUnformatted(j);
        afx_fail(e, "%s: field '%s' = %.80s changes the adapter and is not supported by affix", label, k,
                 txt ? txt : "?");
        free(txt);
        return -1;
    }
    /* the model's shape as PEFT recorded it (prompt learning only; the others show in the tensors) */
    if (m == METHOD_PROMPT) {
        if (check_dim(root, "token_dim", c->C, "hidden size", label, c, e) ||
            check_dim(root, "num_attention_heads", c->NH, "number of attention heads", label, c, e))
            return -1;
    }
    if (m == METHOD_PREFIX) {
        if (check_dim(root, "token_dim", c->NKV * c->HS, "KV width (kv heads * head_dim)", label, c, e) ||
            check_dim(root, "num_attention_heads", c->NKV, "number of KV heads", label, c, e))
            return -1;
    }
    if ((m == METHOD_PROMPT || m == METHOD_PREFIX) && check_dim(root, "num_layers", c->L, "number of layers", label, c, e))
        return -1;
    return 0;
}

static int same_config(const LlamaConfig *a, const LlamaConfig *b) {
    return a->V == b->V && a->C == b->C && a->FF == b->FF && a->L == b->L && a->NH == b->NH && a->NKV == b->NKV &&
           a->HS == b->HS && a->eps == b->eps && a->rope_theta == b->rope_theta && a->rope_factor == b->rope_factor &&
           a->rope_low_freq_factor == b->rope_low_freq_factor && a->rope_high_freq_factor == b->rope_high_freq_factor &&
           a->rope_original_max_position == b->rope_original_max_position && a->tied == b->tied &&
           a->max_pos == b->max_pos;
}

static void config_str(char *buf, size_t n, const LlamaConfig *c) {
    snprintf(buf, n, "vocab %d, hidden %d, ff %d, layers %d, heads %d/%d, head_dim %d, eps %g, theta %g%s%s, max_pos %d",
             c->V, c->C, c->FF, c->L, c->NH, c->NKV, c->HS, c->eps, c->rope_theta, c->rope_factor > 0 ? ", llama3 rope" : "",
             c->tied ? ", tied" : "", c->max_pos);
}

void peft_adapter_free(PeftAdapter *pa) {
    adapter_destroy(&pa->ad);
    free(pa->values);
    memset(pa, 0, sizeof *pa);
}

int peft_load(const char *dir, const LlamaConfig *cfg, PeftAdapter *pa, afx_err *e) {
    memset(pa, 0, sizeof *pa);
    pa->peft_loadable = 1;
    char cpath[4096], tpath[4096];
    snprintf(cpath, sizeof cpath, "%s/adapter_config.json", dir);
    int full = !file_exists(cpath);
    if (full) {
        snprintf(cpath, sizeof cpath, "%s/config.json", dir);
        if (!file_exists(cpath))
            return afx_fail(e, "%s: neither adapter_config.json (a PEFT adapter) nor config.json (a model) is there", dir);
    }
    snprintf(tpath, sizeof tpath, "%s/%s", dir, full ? "model.safetensors" : "adapter_model.safetensors");
    if (!file_exists(tpath)) {
        char bin[4096];
        snprintf(bin, sizeof bin, "%s/adapter_model.bin", dir);
        if (!full && file_exists(bin))
            return afx_fail(e, "%s: only adapter_model.safetensors is read (adapter_model.bin is a pickle; convert it "
                            "with safetensors)", bin);
        return afx_fail(e, "%s: missing%s", tpath, full ? " (sharded models: use the model loader)" : "");
    }

    int proj_cfg = 0, E_cfg = 0;
    st_file f = {0};
    cJSON *root = NULL;
    char *text = NULL;
    if (full) {
        LlamaConfig mc;
        if (llama_config_load(&mc, cpath, e)) return -1;
        if (!same_config(&mc, cfg)) {
            char a[256], b[256];
            config_str(a, sizeof a, &mc);
            config_str(b, sizeof b, cfg);
            return afx_fail(e, "%s: the model is (%s) but the expected one is (%s)", cpath, a, b);
        }
        method_spec_init(&pa->spec, "full", e);
    } else {
        size_t len;
        text = read_text(cpath, &len, e);
        if (!text) return -1;
        root = cJSON_ParseWithLength(text, len);
        if (!cJSON_IsObject(root)) {
            const char *where = cJSON_GetErrorPtr();
            long at = where && where >= text && where <= text + len ? (long)(where - text) : -1;
            afx_fail(e, "%s: not a JSON object (invalid JSON%s%ld)", cpath, at >= 0 ? " near byte " : "", at);
            goto fail;
        }
        if (parse_adapter_config(root, cfg, pa, &proj_cfg, &E_cfg, cpath, e)) goto fail;
    }
    if (st_open(&f, tpath, e)) goto fail;

    // a prefix: with affix's MLP in the file it is a projection; otherwise PEFT's table alone
    int m = (int)pa->spec.method;
    if (m == METHOD_PREFIX) {
        int has_mlp = st_find(&f, "affix.prefix.transform.0.weight") != NULL;
        char v[32];
        afx_err sub = {{0}};
        if (has_mlp && !proj_cfg) {
            afx_fail(e, "%s: prefix_projection is false, but %s holds a projection MLP (affix.prefix.*)", cpath, tpath);
            goto fail;
        }
        if (has_mlp) {
            if (method_spec_set(&pa->spec, "prefix_projection", "true", &sub) ||
                (E_cfg && (snprintf(v, sizeof v, "%d", E_cfg), method_spec_set(&pa->spec, "encoder_hidden_size", v, &sub)))) {
                afx_fail(e, "%s: %s", cpath, sub.msg);
                goto fail;
            }
        } else if (proj_cfg) {
            note_add(pa, "%s", "prefix_projection: PEFT saved only the MLP's output; loaded as that table, without "
                     "the projection");
        }
    }
    {
        afx_err sub = {{0}};
        if (method_spec_create(&pa->ad, &pa->spec, cfg, &sub)) {
            afx_fail(e, "%s: %s", full ? tpath : cpath, sub.msg);
            goto fail;
        }
    }
    pa->count = adapter_param_count(&pa->ad);
    pa->values = malloc((pa->count ? pa->count : 1) * sizeof(real));
    unsigned char *used = calloc(f.n_tensors ? f.n_tensors : 1, 1);
    if (!pa->values || !used) {
        free(used);
        afx_fail(e, "%s: out of memory", tpath);
        goto fail;
    }
    size_t off = 0;
    for (int k = 0; k < pa->ad.n_params; k++) {
        char key[192], want[96], got[160];
        size_t shape[4];
        int ndim;
        file_key(&pa->ad, m, k, key, sizeof key, shape, &ndim);
        const st_tensor *t = st_find(&f, key);
        if (!t) {
            free(used);
            afx_fail(e, "%s: tensor '%s' is missing (%s needs it)", tpath, key, cpath);
            goto fail;
        }
        used[t - f.tensors] = 1;
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = (uint64_t)t->shape[d] == shape[d];
        if (!same) {
            size_t ts[ST_MAX_DIMS];
            for (int d = 0; d < t->ndim; d++) ts[d] = (size_t)t->shape[d];
            shape_str(want, sizeof want, ndim, shape);
            shape_str(got, sizeof got, t->ndim, ts);
            afx_fail(e, "%s: tensor '%s' has shape %s, but this model needs %s: the adapter was made for another model "
                     "shape (hidden %d, layers %d, heads %d/%d, head_dim %d, ff %d here)",
                     tpath, key, got, want, cfg->C, cfg->L, cfg->NH, cfg->NKV, cfg->HS, cfg->FF);
            free(used);
            goto fail;
        }
        afx_err sub = {{0}};
        if (st_to_real(t, pa->values + off, &sub)) {
            free(used);
            afx_fail(e, "%s: %s", tpath, sub.msg);
            goto fail;
        }
        off += pa->ad.params[k].numel;
    }
    // the projection's table (PEFT's prompt_embeddings) must be what the MLP gives
    if (m == METHOD_PREFIX && pa->spec.projection) {
        const st_tensor *t = st_find(&f, "prompt_embeddings");
        size_t P = (size_t)pa->spec.num_virtual_tokens, wide = pa->ad.params[3].shape[0];
        real *mine = malloc(P * wide * sizeof(real)), *theirs = malloc(P * wide * sizeof(real));
        int bad = !mine || !theirs || !t || t->ndim != 2 || (size_t)t->shape[0] != P || (size_t)t->shape[1] != wide;
        afx_err sub = {{0}};
        if (!bad) bad = prefix_table(&pa->spec, cfg, pa->values, mine, &sub) || st_to_real(t, theirs, &sub);
        double worst = 0;
        for (size_t i = 0; !bad && i < P * wide; i++) {
            double d = fabs((double)mine[i] - theirs[i]) / fmax(1.0, fabs((double)mine[i]));
            if (d > worst) worst = d;
        }
        free(mine);
        free(theirs);
        if (bad || worst > 1e-5) {
            free(used);
            afx_fail(e, "%s: prompt_embeddings is missing, misshapen or not the output of the affix.prefix MLP "
                     "(relative difference %.2g)", tpath, worst);
            goto fail;
        }
        used[t - f.tensors] = 1;
    }
    for (size_t i = 0; !full && i < f.n_tensors; i++)
        if (!used[i]) {
            afx_fail(e, "%s: unexpected tensor '%.200s' (not part of the adapter %s describes)", tpath, f.tensors[i].name,
                     cpath);
            free(used);
            goto fail;
        }
    free(used);
    st_close(&f);
    cJSON_Delete(root);
    free(text);
    return 0;
fail:
    st_close(&f);
    cJSON_Delete(root);
    free(text);
    peft_adapter_free(pa);
    return -1;
}

int peft_adapter_apply(PeftAdapter *pa, afx_err *e) {
    size_t off = 0;
    for (int k = 0; k < pa->ad.n_params; k++)
        if (!pa->ad.params[k].w)
            return afx_fail(e, "peft: parameter '%s' is not bound (call adapter_set_init first)", pa->ad.params[k].name);
    for (int k = 0; k < pa->ad.n_params; k++) {
        memcpy(pa->ad.params[k].w, pa->values + off, pa->ad.params[k].numel * sizeof(real));
        off += pa->ad.params[k].numel;
    }
    return 0;
}
