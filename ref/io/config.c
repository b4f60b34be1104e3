/* config.c — LlamaConfig from a Hugging Face config.json (see config.h).
 *
 * What this is: field-by-field reading with one message per problem ("LABEL: field ..."), then
 * llama_config_check for the cross-field rules (divisibility of heads, even head_dim, ...).
 * What this is not: a general JSON layer (cJSON is used directly) or a model-type dispatcher.
 */
#include "config.h"
#include "json_read.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "errmsg.h"
#include "files.h"

static const char *json_type(const cJSON *j) {
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "invalid";
}

/* The member `key` of obj, or NULL when absent or null (both mean "use the default"). */
static const cJSON *member(const cJSON *obj, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(j) ? NULL : j;
}

/* A positive integer field. `where` prefixes the field name ("" or "rope_scaling."). */
static int get_pos_int(const cJSON *obj, const char *where, const char *key, int required, int dflt, int *out,
                       const char *label, afx_err *e) {
    const cJSON *j = member(obj, key);
    if (!j) {
        if (required) return afx_fail(e, "%s: field '%s%s' is missing", label, where, key);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(j))
        return afx_fail(e, "%s: field '%s%s' must be an integer, not %s", label, where, key, json_type(j));
    double v = j->valuedouble;
    if (v != floor(v) || !(v >= 1 && v <= INT_MAX))
        return afx_fail(e, "%s: field '%s%s' must be a positive integer (got %g)", label, where, key, v);
    *out = (int)v;
    return 0;
}

/* A positive finite number field; `dflt` < 0 means required. */
static int get_pos_num(const cJSON *obj, const char *where, const char *key, double dflt, double *out,
                       const char *label, afx_err *e) {
    const cJSON *j = member(obj, key);
    if (!j) {
        if (dflt < 0) return afx_fail(e, "%s: field '%s%s' is missing", label, where, key);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(j))
        return afx_fail(e, "%s: field '%s%s' must be a number, not %s", label, where, key, json_type(j));
    if (!(isfinite(j->valuedouble) && j->valuedouble > 0))
        return afx_fail(e, "%s: field '%s%s' must be a positive number (got %g)", label, where, key, j->valuedouble);
    *out = j->valuedouble;
    return 0;
}

static int get_bool(const cJSON *obj, const char *key, int dflt, int *out, const char *label, afx_err *e) {
    const cJSON *j = member(obj, key);
    if (!j) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(j)) return afx_fail(e, "%s: field '%s' must be true or false, not %s", label, key, json_type(j));
    *out = cJSON_IsTrue(j) ? 1 : 0;
    return 0;
}

/* One rope object (rope_scaling or rope_parameters, named `field`): "default" or "llama3". */
static int read_rope(LlamaConfig *c, const cJSON *r, const char *field, const char *label, afx_err *e) {
    if (!cJSON_IsObject(r)) return afx_fail(e, "%s: field '%s' must be an object or null, not %s", label, field, json_type(r));
    const cJSON *ty = member(r, "rope_type");
    if (!ty) ty = member(r, "type"); /* the older spelling */
    if (!ty) return afx_fail(e, "%s: field '%s' has no 'rope_type'", label, field);
    if (!cJSON_IsString(ty))
        return afx_fail(e, "%s: field '%s.rope_type' must be a string, not %s", label, field, json_type(ty));
    if (strcmp(ty->valuestring, "default") == 0) return 0;
    if (strcmp(ty->valuestring, "llama3") != 0)
        return afx_fail(e, "%s: %s rope_type '%.60s' is not supported (only 'default' and 'llama3')", label, field,
                        ty->valuestring);
    char where[40];
    snprintf(where, sizeof where, "%s.", field);
    int orig;
    if (get_pos_num(r, where, "factor", -1, &c->rope_factor, label, e) ||
        get_pos_num(r, where, "low_freq_factor", -1, &c->rope_low_freq_factor, label, e) ||
        get_pos_num(r, where, "high_freq_factor", -1, &c->rope_high_freq_factor, label, e) ||
        get_pos_int(r, where, "original_max_position_embeddings", 1, 0, &orig, label, e))
        return -1;
    c->rope_original_max_position = orig;
    return 0;
}

/* 1 if obj[key] is absent or null; otherwise a message (a key that would change the model) */
static int must_be_null(const cJSON *obj, const char *key, const char *why, const char *label, afx_err *e) {
    if (!member(obj, key)) return 0;
    return afx_fail(e, "%s: field '%s' is set; %s", label, key, why);
}

/* Gemma 3 text (model_type gemma3_text, or the text_config of a gemma3 config). Defaults are those
 * of transformers' Gemma3TextConfig, taken explicitly here (affix info prints the result):
 * query_pre_attn_scalar 256, sliding_window 4096, sliding_window_pattern 6 (layer i is full iff
 * (i+1) % 6 == 0), rope_theta 1e6, rope_local_base_freq 1e4, tie_word_embeddings true,
 * hidden_activation gelu_pytorch_tanh, no softcapping. */
static int read_gemma3(LlamaConfig *c, const cJSON *root, const char *label, afx_err *e) {
    c->arch = AFX_ARCH_GEMMA3;
    int pattern;
    if (get_bool(root, "tie_word_embeddings", 1, &c->tied, label, e) ||
        get_pos_num(root, "", "query_pre_attn_scalar", 256, &c->query_pre_attn_scalar, label, e) ||
        get_pos_int(root, "", "sliding_window", 0, 4096, &c->sliding_window, label, e) ||
        get_pos_int(root, "", "sliding_window_pattern", 0, 6, &pattern, label, e) ||
        get_pos_num(root, "", "rope_theta", 1e6, &c->rope_theta, label, e) ||
        get_pos_num(root, "", "rope_local_base_freq", 1e4, &c->rope_local_theta, label, e))
        return -1;
    if (c->L > AFX_MAX_LAYERS)
        return afx_fail(e, "%s: num_hidden_layers %d above the supported %d", label, c->L, AFX_MAX_LAYERS);
    const cJSON *lt = member(root, "layer_types");
    if (lt) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->L)
            return afx_fail(e, "%s: field 'layer_types' must be an array of %d strings", label, c->L);
        for (int l = 0; l < c->L; l++) {
            const cJSON *t = cJSON_GetArrayItem(lt, l);
            if (cJSON_IsString(t) && !strcmp(t->valuestring, "sliding_attention")) c->sliding[l] = 1;
            else if (cJSON_IsString(t) && !strcmp(t->valuestring, "full_attention")) c->sliding[l] = 0;
            else return afx_fail(e, "%s: layer_types[%d] must be \"sliding_attention\" or \"full_attention\"", label, l);
        }
    } else {
        for (int l = 0; l < c->L; l++) c->sliding[l] = (l + 1) % pattern != 0;
    }
    /* rope: transformers 5 nests one object per layer type; both must be plain ("default") */
    const cJSON *rp = member(root, "rope_parameters");
    if (rp) {
        static const char *const kinds[2] = {"full_attention", "sliding_attention"};
        for (int k = 0; k < 2; k++) {
            const cJSON *r = member(rp, kinds[k]);
            char field[64];
            snprintf(field, sizeof field, "rope_parameters.%s", kinds[k]);
            if (!r) return afx_fail(e, "%s: field '%s' is missing", label, field);
            LlamaConfig probe = *c;
            if (read_rope(&probe, r, field, label, e)) return -1;
            if (probe.rope_factor > 0)
                return afx_fail(e, "%s: %s uses rope scaling, which affix does not implement for Gemma 3", label, field);
            char where[80];
            snprintf(where, sizeof where, "%s.", field);
            if (get_pos_num(r, where, "rope_theta", -1, k ? &c->rope_local_theta : &c->rope_theta, label, e)) return -1;
        }
    } else if (must_be_null(root, "rope_scaling", "rope scaling is not implemented for Gemma 3", label, e)) {
        return -1;
    }
    const cJSON *act = member(root, "hidden_activation");
    if (!act) act = member(root, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu_pytorch_tanh")))
        return afx_fail(e, "%s: hidden_activation must be \"gelu_pytorch_tanh\" for Gemma 3", label);
    int bidir;
    if (must_be_null(root, "final_logit_softcapping", "logit softcapping is not implemented", label, e) ||
        must_be_null(root, "attn_logit_softcapping", "logit softcapping is not implemented", label, e) ||
        get_bool(root, "use_bidirectional_attention", 0, &bidir, label, e))
        return -1;
    if (bidir) return afx_fail(e, "%s: use_bidirectional_attention is true; affix is causal only", label);
    return 0;
}

int llama_config_limits(const LlamaConfig *c, const char *const *names, const char *label, afx_err *e) {
    static const char *const hf2[8] = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                       "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings"};
    if (!names) names = hf2;
    const int v[8] = {c->V, c->C, c->FF, c->L, c->NH, c->NKV, c->HS, c->max_pos};
    const int lim[8] = {LLAMA_MAX_VOCAB, LLAMA_MAX_HIDDEN, LLAMA_MAX_FF, LLAMA_MAX_LAYERS_ANY, LLAMA_MAX_HEADS,
                        LLAMA_MAX_HEADS, LLAMA_MAX_HEAD_DIM, LLAMA_MAX_POSITIONS};
    for (int i = 0; i < 8; i++)
        if (v[i] > lim[i])
            return afx_fail(e, "%s: %s = %d is above the limit of %d", label, names[i], v[i], lim[i]);
    return 0;
}

static int read_config(LlamaConfig *c, const cJSON *root, const char *label, afx_err *e) {
    if (!cJSON_IsObject(root)) return afx_fail(e, "%s: config is not a JSON object", label);
    const cJSON *mt = member(root, "model_type");
    if (mt && cJSON_IsString(mt) && !strcmp(mt->valuestring, "gemma3")) { /* the multimodal wrapper */
        const cJSON *tc = member(root, "text_config");
        if (!cJSON_IsObject(tc)) return afx_fail(e, "%s: a gemma3 config without a text_config object", label);
        root = tc;
        mt = NULL;
        c->arch = AFX_ARCH_GEMMA3;
    }
    if (mt && (!cJSON_IsString(mt) || strcmp(mt->valuestring, "gemma3_text") == 0)) c->arch = AFX_ARCH_GEMMA3;
    if (get_pos_int(root, "", "vocab_size", 1, 0, &c->V, label, e) ||
        get_pos_int(root, "", "hidden_size", 1, 0, &c->C, label, e) ||
        get_pos_int(root, "", "intermediate_size", 1, 0, &c->FF, label, e) ||
        get_pos_int(root, "", "num_hidden_layers", 1, 0, &c->L, label, e) ||
        get_pos_int(root, "", "num_attention_heads", 1, 0, &c->NH, label, e) ||
        get_pos_int(root, "", "num_key_value_heads", 0, c->NH, &c->NKV, label, e))
        return -1;
    if (!member(root, "head_dim") && c->C % c->NH != 0)
        return afx_fail(e, "%s: field 'head_dim' is missing and hidden_size %d is not divisible by "
                        "num_attention_heads %d", label, c->C, c->NH);
    if (get_pos_int(root, "", "head_dim", 0, c->C / c->NH, &c->HS, label, e) ||
        get_pos_num(root, "", "rms_norm_eps", 1e-6, &c->eps, label, e) ||
        get_pos_int(root, "", "max_position_embeddings", 0, 2048, &c->max_pos, label, e))
        return -1;
    if (c->arch == AFX_ARCH_GEMMA3) {
        if (read_gemma3(c, root, label, e)) return -1;
        goto check;
    }
    if (get_pos_num(root, "", "rope_theta", 10000.0, &c->rope_theta, label, e) ||
        get_bool(root, "tie_word_embeddings", 0, &c->tied, label, e))
        return -1;

    /* rope: transformers-5 rope_parameters wins over the legacy rope_scaling + rope_theta */
    const cJSON *rp = member(root, "rope_parameters");
    if (rp) {
        if (read_rope(c, rp, "rope_parameters", label, e)) return -1;
        if (member(rp, "rope_theta") && get_pos_num(rp, "rope_parameters.", "rope_theta", 0, &c->rope_theta, label, e))
            return -1;
    } else {
        const cJSON *rs = member(root, "rope_scaling");
        if (rs && read_rope(c, rs, "rope_scaling", label, e)) return -1;
    }

    /* keys that would change the model if we ignored them */
    const cJSON *act = member(root, "hidden_act");
    if (act && !cJSON_IsString(act))
        return afx_fail(e, "%s: field 'hidden_act' must be a string, not %s", label, json_type(act));
    if (act && strcmp(act->valuestring, "silu") != 0)
        return afx_fail(e, "%s: field 'hidden_act' is \"%.40s\"; only \"silu\" is supported", label,
                        act->valuestring);
    int bias;
    if (get_bool(root, "attention_bias", 0, &bias, label, e)) return -1;
    if (bias) return afx_fail(e, "%s: field 'attention_bias' is true; biases are not supported", label);
    if (get_bool(root, "mlp_bias", 0, &bias, label, e)) return -1;
    if (bias) return afx_fail(e, "%s: field 'mlp_bias' is true; biases are not supported", label);

check:
    if (llama_config_limits(c, NULL, label, e)) return -1;
    if (llama_config_check(c, e)) return afx_relabel(e, label);
    return 0;
}

int llama_config_from_json(LlamaConfig *c, const char *json, size_t len, const char *label, afx_err *e) {
    memset(c, 0, sizeof *c);
    if (!label) label = "config.json";
    if (memchr(json, 0, len)) return afx_fail(e, "%s: config contains a NUL byte", label);
    char *txt = malloc(len + 1); /* cJSON gets a NUL-terminated copy */
    if (!txt) return afx_fail(e, "%s: out of memory for %zu bytes", label, len);
    memcpy(txt, json, len);
    txt[len] = '\0';
    const char *stop = NULL;
    if (afx_json_refuse_nul_escape(txt, len, label, e)) { free(txt); return -1; }
    cJSON *root = cJSON_ParseWithOpts(txt, &stop, 1);
    if (!root) {
        size_t at = stop && stop >= txt && stop <= txt + len ? (size_t)(stop - txt) : 0;
        free(txt);
        return afx_fail(e, "%s: not valid JSON (error near byte %zu)", label, at);
    }
    free(txt);
    afx_json_last_wins(root); // a repeated key: the last value, as transformers (Python) reads it
    int rc = read_config(c, root, label, e);
    cJSON_Delete(root);
    if (rc) memset(c, 0, sizeof *c);
    return rc;
}

int llama_config_load(LlamaConfig *c, const char *path, afx_err *e) {
    memset(c, 0, sizeof *c);
    char *buf;
    size_t len;
    if (afx_read_file(path, LLAMA_CONFIG_MAX_BYTES, &buf, &len, e)) return -1;
    int rc = llama_config_from_json(c, buf, len, path, e);
    free(buf);
    return rc;
}
