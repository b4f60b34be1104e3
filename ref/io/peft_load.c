/* peft_load.c — peft_load: a PEFT adapter directory (or affix's full fine-tuning directory) back
 * into a MethodSpec, an Adapter and its values (see peft.h).
 *
 * What this is: a strict reader that turns PEFT's fields into method_spec options, refuses every
 * field that would change the computation and that affix does not implement, checks the model's
 * shape, and checks every tensor (name, shape, no extra ones).
 * What this is not: a writer (peft_save.c) or a model loader (model.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "errmsg.h"
#include "files.h"
#include "peft_internal.h"
#include "json_read.h"

#define MAX_JSON_BYTES ((size_t)16 << 20)

static void note_add(PeftAdapter *pa, const char *fmt, const char *what) {
    size_t k = strlen(pa->note);
    if (k + 3 >= sizeof pa->note) return;
    snprintf(pa->note + k, sizeof pa->note - k, "%s", k ? "; " : "");
    k = strlen(pa->note);
    snprintf(pa->note + k, sizeof pa->note - k, fmt, what);
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
                if (!strcmp(leaf, PEFT_LIN_MODULES[s])) k = s;
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
                               "adapts every layer", label, PEFT_LIN_MODULES[s], l);
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
    for (const cJSON *j = root->child; j; j = j->next) {
        const char *k = j->string;
        int iv;
        if (!strcmp(k, "affix_note")) pa->peft_loadable = 0; /* affix wrote it for a case PEFT cannot run */
        #define SET(opt, v)                                                                             \
            do {                                                                                        \
                if (method_spec_set(s, opt, v, e)) return afx_relabel(e, label);                        \
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

/* adapter_config.json's text (labelled cpath) into pa's spec, as PEFT (Python's json) reads it */
static int config_from_text(const char *text, size_t len, const char *cpath, const LlamaConfig *cfg, PeftAdapter *pa,
                            int *proj_cfg, int *E_cfg, afx_err *e) {
    if (afx_json_refuse_nul_escape(text, len, cpath, e)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    afx_json_last_wins(root); // a repeated key: the last value, as PEFT (Python) reads it
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        const char *where = cJSON_GetErrorPtr();
        long at = where && where >= text && where <= text + len ? (long)(where - text) : -1;
        afx_fail(e, "%s: not a JSON object (invalid JSON%s%ld)", cpath, at >= 0 ? " near byte " : "", at);
    } else rc = parse_adapter_config(root, cfg, pa, proj_cfg, E_cfg, cpath, e);
    cJSON_Delete(root);
    return rc;
}

static int load_tensors(st_file *fp, int full, const char *dir, const char *cpath, const char *tpath, int proj_cfg,
                        int E_cfg, const LlamaConfig *cfg, PeftAdapter *pa, afx_err *e);

int peft_load(const char *dir, const LlamaConfig *cfg, PeftAdapter *pa, afx_err *e) {
    memset(pa, 0, sizeof *pa);
    pa->peft_loadable = 1;
    char cpath[4096], tpath[4096];
    snprintf(cpath, sizeof cpath, "%s/adapter_config.json", dir);
    int full = !afx_is_file(cpath);
    if (full) {
        snprintf(cpath, sizeof cpath, "%s/config.json", dir);
        if (!afx_is_file(cpath))
            return afx_fail(e, "%s: neither adapter_config.json (a PEFT adapter) nor config.json (a model) is there", dir);
    }
    snprintf(tpath, sizeof tpath, "%s/%s", dir, full ? "model.safetensors" : "adapter_model.safetensors");
    if (!afx_is_file(tpath)) {
        char bin[4096];
        snprintf(bin, sizeof bin, "%s/adapter_model.bin", dir);
        if (!full && afx_is_file(bin))
            return afx_fail(e, "%s: only adapter_model.safetensors is read (adapter_model.bin is a pickle; convert it "
                            "with safetensors)", bin);
        return afx_fail(e, "%s: missing%s", tpath, full ? " (sharded models: use the model loader)" : "");
    }

    int proj_cfg = 0, E_cfg = 0, rc = -1;
    st_file f = {0};
    char *text = NULL;
    if (full) {
        LlamaConfig mc;
        if (llama_config_load(&mc, cpath, e)) goto done;
        if (!same_config(&mc, cfg)) {
            char a[256], b[256];
            config_str(a, sizeof a, &mc);
            config_str(b, sizeof b, cfg);
            afx_fail(e, "%s: the model is (%s) but the expected one is (%s)", cpath, a, b);
            goto done;
        }
        method_spec_init(&pa->spec, "full", e);
    } else {
        size_t len;
        if (afx_read_file(cpath, MAX_JSON_BYTES, &text, &len, e) ||
            config_from_text(text, len, cpath, cfg, pa, &proj_cfg, &E_cfg, e))
            goto done;
    }
    if (st_open(&f, tpath, e)) goto done;
    rc = load_tensors(&f, full, dir, cpath, tpath, proj_cfg, E_cfg, cfg, pa, e);
done:
    st_close(&f);
    free(text);
    if (rc) peft_adapter_free(pa);
    return rc;
}

/* the tensors of an adapter (or full model) file f, after its config was read into pa */
static int load_tensors(st_file *fp, int full, const char *dir, const char *cpath, const char *tpath, int proj_cfg,
                        int E_cfg, const LlamaConfig *cfg, PeftAdapter *pa, afx_err *e) {
    st_file f = *fp; // (read only: the caller closes it)
    int rc = -1;
    unsigned char *used = NULL; /* per tensor of the file: read as a parameter */

    // a prefix: with affix's MLP in the file it is a projection; otherwise PEFT's table alone
    int m = (int)pa->spec.method;
    if (m == METHOD_PREFIX) {
        int has_mlp = st_find(&f, "affix.prefix.transform.0.weight") != NULL;
        char v[32];
        if (has_mlp && !proj_cfg) {
            afx_fail(e, "%s: prefix_projection is false, but %s holds a projection MLP (affix.prefix.*)", cpath, tpath);
            goto done;
        }
        if (has_mlp) {
            if (method_spec_set(&pa->spec, "prefix_projection", "true", e) ||
                (E_cfg && (snprintf(v, sizeof v, "%d", E_cfg), method_spec_set(&pa->spec, "encoder_hidden_size", v, e)))) {
                afx_relabel(e, cpath);
                goto done;
            }
        } else if (proj_cfg) {
            note_add(pa, "%s", "prefix_projection: PEFT saved only the MLP's output; loaded as that table, without "
                     "the projection");
        }
    }
    if (method_spec_create(&pa->ad, &pa->spec, cfg, e)) {
        afx_relabel(e, full ? tpath : cpath);
        goto done;
    }
    // every tensor's name and shape first: the sizes of adapter_config.json (r, num_virtual_tokens,
    // ...) are not trusted before the file's own tensors agree with them; only then is memory taken
    used = calloc(f.n_tensors ? f.n_tensors : 1, 1);
    if (!used) {
        afx_fail(e, "%s: out of memory", tpath);
        goto done;
    }
    for (int k = 0; k < pa->ad.n_params; k++) {
        char key[192], want[96], got[160], desc[256];
        size_t shape[4];
        int ndim;
        peft_file_key(&pa->ad, m, k, key, sizeof key, shape, &ndim);
        const st_tensor *t = st_find(&f, key);
        method_spec_describe(&pa->spec, cfg, desc, sizeof desc);
        if (!t) {
            afx_fail(e, "%s: tensor '%s' is missing (%s needs it for %.200s)", tpath, key, cpath, desc);
            goto done;
        }
        used[t - f.tensors] = 1;
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = (uint64_t)t->shape[d] == shape[d];
        if (!same) {
            int64_t ws[4];
            for (int d = 0; d < ndim; d++) ws[d] = (int64_t)shape[d];
            afx_fail(e, "%s: %.200s: tensor '%s' in %s has shape %s, but these fields and this model (hidden %d, "
                     "layers %d, heads %d/%d, head_dim %d, ff %d) need %s",
                     full ? tpath : cpath, desc, key, tpath, afx_shape_str(got, sizeof got, t->ndim, t->shape),
                     cfg->C, cfg->L, cfg->NH, cfg->NKV, cfg->HS, cfg->FF, afx_shape_str(want, sizeof want, ndim, ws));
            goto done;
        }
    }
    pa->count = adapter_param_count(&pa->ad);
    {
        size_t bytes;
        char what[4200];
        snprintf(what, sizeof what, "%s: the adapter's %zu values", dir, pa->count);
        if (afx_size_mul(pa->count ? pa->count : 1, 5 * sizeof(real), &bytes)) bytes = SIZE_MAX;
        if (afx_mem_check(bytes, what, e)) goto done;
    }
    pa->values = malloc((pa->count ? pa->count : 1) * sizeof(real));
    if (!pa->values) {
        afx_fail(e, "%s: out of memory", tpath);
        goto done;
    }
    size_t off = 0;
    for (int k = 0; k < pa->ad.n_params; k++) {
        char key[192];
        size_t shape[4];
        int ndim;
        peft_file_key(&pa->ad, m, k, key, sizeof key, shape, &ndim);
        const st_tensor *t = st_find(&f, key);
        if (st_to_real(t, pa->values + off, e)) {
            afx_relabel(e, tpath);
            goto done;
        }
        size_t bad = 0; // a NaN or Inf is refused with its tensor (it would poison every output)
        for (size_t i = 0; i < pa->ad.params[k].numel; i++) bad += !isfinite(pa->values[off + i]);
        if (bad) {
            afx_fail(e, "%s: tensor %s holds %zu non-finite values (NaN or Inf)", tpath, key, bad);
            goto done;
        }
        off += pa->ad.params[k].numel;
    }
    // the projection's table (PEFT's prompt_embeddings) must be what the MLP gives
    if (m == METHOD_PREFIX && pa->spec.projection) {
        const st_tensor *t = st_find(&f, "prompt_embeddings");
        size_t P = (size_t)pa->spec.num_virtual_tokens, wide = pa->ad.params[3].shape[0];
        real *mine = malloc(P * wide * sizeof(real)), *theirs = malloc(P * wide * sizeof(real));
        int bad = !mine || !theirs || !t || t->ndim != 2 || (size_t)t->shape[0] != P || (size_t)t->shape[1] != wide;
        afx_err sub = {{0}}; /* why it is bad does not matter: the message says what it should be */
        if (!bad) bad = peft_prefix_table(&pa->spec, cfg, pa->values, mine, &sub) || st_to_real(t, theirs, &sub);
        double worst = 0;
        for (size_t i = 0; !bad && i < P * wide; i++) {
            double d = fabs((double)mine[i] - theirs[i]) / fmax(1.0, fabs((double)mine[i]));
            if (d > worst) worst = d;
        }
        free(mine);
        free(theirs);
        if (bad || worst > 1e-5) {
            afx_fail(e, "%s: prompt_embeddings is missing, misshapen or not the output of the affix.prefix MLP "
                     "(relative difference %.2g)", tpath, worst);
            goto done;
        }
        used[t - f.tensors] = 1;
    }
    for (size_t i = 0; !full && i < f.n_tensors; i++)
        if (!used[i]) {
            afx_fail(e, "%s: unexpected tensor '%.200s' (not part of the adapter %s describes)", tpath, f.tensors[i].name,
                     cpath);
            goto done;
        }
    rc = 0;
done:
    free(used);
    return rc;
}

int peft_load_buffers(const char *config_json, size_t config_len, const unsigned char *st, size_t st_len,
                      const LlamaConfig *cfg, PeftAdapter *pa, const char *label, afx_err *e) {
    memset(pa, 0, sizeof *pa);
    pa->peft_loadable = 1;
    char cpath[4096], tpath[4096];
    snprintf(cpath, sizeof cpath, "%s/adapter_config.json", label);
    snprintf(tpath, sizeof tpath, "%s/adapter_model.safetensors", label);
    int proj_cfg = 0, E_cfg = 0, rc = -1;
    st_file f = {0};
    if (!config_from_text(config_json, config_len, cpath, cfg, pa, &proj_cfg, &E_cfg, e) &&
        !st_parse(&f, st, st_len, tpath, e))
        rc = load_tensors(&f, 0, label, cpath, tpath, proj_cfg, E_cfg, cfg, pa, e);
    st_close(&f);
    if (rc) peft_adapter_free(pa);
    return rc;
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
