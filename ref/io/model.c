/* model.c — a Llama model from a Hugging Face directory or a GGUF file (see model.h).
 *
 * What this is: the mapping from the two on-disk layouts onto the named tensors of llama.h
 * (llama_tensor_info gives every HF name and shape), with one loop per format over those tensors:
 * find, check the shape, convert to real. For a Hugging Face directory that loop is weights.h's
 * (the golden tests' loader too), with the index naming the shard of each tensor; for GGUF it is
 * here, and undoes the interleaved RoPE row order of q/k. The readers underneath (safetensors.h,
 * gguf.h, config.h) validate the bytes.
 * What this is not: a tokenizer loader, a writer, or a keeper of 16-bit weights (everything is
 * converted to `real`).
 */
#define _POSIX_C_SOURCE 200809L

#include "model.h"

#include "ops.h" /* rope_inv_freq: the llama3 bands */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "errmsg.h"
#include "files.h"
#include "gguf.h"
#include "safetensors.h"
#include "weights.h"

#define INDEX_MAX_BYTES ((size_t)64 << 20)

/* ---- Hugging Face directory ------------------------------------------------------------------- */

/* bos_token_id / eos_token_id of config.json: an integer, null/absent (-1), or (eos) a list */
static int token_id(const cJSON *root, const char *key, int *out, const char *path, afx_err *e) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = -1;
    if (!j || cJSON_IsNull(j)) return 0;
    if (cJSON_IsArray(j)) {
        if (cJSON_GetArraySize(j) == 0) return 0;
        j = j->child;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < 0 ||
        j->valuedouble > INT_MAX)
        return afx_fail(e, "%s: field '%s' must be a non-negative integer or a list of them", path, key);
    *out = (int)j->valuedouble;
    return 0;
}

static int hf_special_ids(Model *m, const char *cfg_path, afx_err *e) {
    char *txt;
    if (afx_read_file(cfg_path, LLAMA_CONFIG_MAX_BYTES, &txt, NULL, e)) return -1;
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    if (!root) return afx_fail(e, "%s: not valid JSON", cfg_path); /* llama_config_load said so first */
    int rc = token_id(root, "bos_token_id", &m->bos_id, cfg_path, e) ||
             token_id(root, "eos_token_id", &m->eos_id, cfg_path, e);
    cJSON_Delete(root);
    return rc ? -1 : 0;
}

typedef struct {
    st_file *files; /* n_files opened safetensors files */
    char **paths;   /* their paths */
    size_t n_files;
    cJSON *index;   /* the parsed index (sharded), or NULL (one file) */
    char index_path[1024];
} HfFiles;

static void hf_close(HfFiles *h) {
    for (size_t i = 0; i < h->n_files; i++) st_close(&h->files[i]), free(h->paths[i]);
    free(h->files);
    free(h->paths);
    cJSON_Delete(h->index);
    memset(h, 0, sizeof *h);
}

static int hf_add_file(HfFiles *h, const char *path, afx_err *e) {
    st_file *nf = realloc(h->files, (h->n_files + 1) * sizeof *nf);
    if (nf) h->files = nf;
    char **np = realloc(h->paths, (h->n_files + 1) * sizeof *np);
    if (np) h->paths = np;
    char *copy = nf && np ? strdup(path) : NULL;
    if (!copy) return afx_fail(e, "%s: out of memory", path);
    if (st_open(&h->files[h->n_files], path, e)) {
        free(copy);
        return -1;
    }
    h->paths[h->n_files++] = copy;
    return 0;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* a shard name from the index: a plain file name in the model directory */
static int shard_name_ok(const char *s) {
    return *s && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/') && !strchr(s, '\\');
}

/* Open model.safetensors, or every shard that model.safetensors.index.json names. */
static int hf_open(HfFiles *h, const char *dir, afx_err *e) {
    char path[1024];
    memset(h, 0, sizeof *h);
    if (afx_path_join(path, sizeof path, dir, "model.safetensors", e)) return -1;
    if (afx_is_file(path)) return hf_add_file(h, path, e);
    if (afx_path_join(h->index_path, sizeof h->index_path, dir, "model.safetensors.index.json", e)) return -1;
    if (!afx_is_file(h->index_path))
        return afx_fail(e, "%s: no model.safetensors or model.safetensors.index.json in this directory", dir);

    char *txt;
    if (afx_read_file(h->index_path, INDEX_MAX_BYTES, &txt, NULL, e)) return -1;
    h->index = cJSON_Parse(txt);
    free(txt);
    if (!h->index) return afx_fail(e, "%s: not valid JSON", h->index_path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(h->index, "weight_map");
    if (!cJSON_IsObject(wm)) return afx_fail(e, "%s: \"weight_map\" is missing or not an object", h->index_path);
    /* the distinct shard names, sorted (the order of the tensor table), each opened once */
    size_t n = 0, ns = 0;
    for (const cJSON *c = wm->child; c; c = c->next) {
        if (!cJSON_IsString(c) || !shard_name_ok(c->valuestring))
            return afx_fail(e, "%s: weight_map entry '%.200s' is not a plain file name", h->index_path, c->string);
        n++;
    }
    if (!n) return afx_fail(e, "%s: the weight_map is empty", h->index_path);
    const char **names = malloc(n * sizeof *names);
    if (!names) return afx_fail(e, "%s: out of memory", h->index_path);
    for (const cJSON *c = wm->child; c; c = c->next) names[ns++] = c->valuestring;
    qsort(names, ns, sizeof *names, cmp_cstr);
    int rc = 0;
    for (size_t i = 0; i < ns && !rc; i++) {
        if (i && !strcmp(names[i], names[i - 1])) continue;
        if ((rc = afx_path_join(path, sizeof path, dir, names[i], e))) break;
        if ((rc = hf_add_file(h, path, e))) {
            const char *tensor = "?";
            for (const cJSON *c = wm->child; c; c = c->next)
                if (!strcmp(c->valuestring, names[i])) {
                    tensor = c->string;
                    break;
                }
            afx_annotate(e, " (the shard of tensor '%.200s' in %s)", tensor, h->index_path);
        }
    }
    free(names);
    return rc;
}

/* st_source.locate of a sharded directory: the file the index names for `name` */
static int hf_locate(const void *ctx, const char *name, size_t *fi, afx_err *e) {
    const HfFiles *h = ctx;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(h->index, "weight_map");
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(wm, name);
    if (!j) return afx_fail(e, "%s: tensor '%s' is not in the weight_map", h->index_path, name);
    const char *dir_end = strrchr(h->index_path, '/');
    size_t dl = dir_end ? (size_t)(dir_end - h->index_path) : 0;
    for (size_t i = 0; i < h->n_files; i++) {
        const char *p = h->paths[i];
        if (!strncmp(p, h->index_path, dl) && p[dl] == '/' && !strcmp(p + dl + 1, j->valuestring)) {
            *fi = i;
            return 0;
        }
    }
    return afx_fail(e, "%s: tensor '%s': shard '%s' was not opened", h->index_path, name, j->valuestring);
}

/* ---- sizes against the file's own tensors, before anything is allocated ---------------------- */

/* Where the tensors of a model are: safetensors (through src) or one GGUF file. */
typedef struct {
    const st_source *st;
    const gguf_file *gg;
} TensorSrc;

static const char *const GGUF_NAMES[LT_COUNT];
static int gguf_tensor_ok(const gguf_file *f, const LlamaConfig *c, int kind, int l, const char *path,
                          const gguf_tensor **out, afx_err *e);

/* the stored shape of tensor (kind, layer) in HF order (out, in); 0, or -1 when it is not there */
static int src_dims(const TensorSrc *ts, const LlamaConfig *c, int kind, int layer, int64_t dims[2], int *ndim,
                    char *name, size_t nn, const char **file) {
    size_t shape[2];
    int nd;
    if (llama_tensor_info(c, kind, layer, name, nn, shape, &nd)) return -1;
    if (ts->gg) {
        snprintf(name, nn, GGUF_NAMES[kind], layer);
        const gguf_tensor *t = gguf_find_tensor(ts->gg, name);
        if (!t) return -1;
        *ndim = t->n_dims;
        dims[0] = t->n_dims >= 2 ? t->ne[1] : t->ne[0]; /* ggml ne is (in, out) */
        dims[1] = t->n_dims >= 2 ? t->ne[0] : 1;
        *file = NULL;
        return 0;
    }
    size_t fi = 0;
    afx_err ignore;
    if (ts->st->locate && ts->st->locate(ts->st->ctx, name, &fi, &ignore)) return -1;
    const st_tensor *t = st_find(&ts->st->files[fi], name);
    if (!t) return -1;
    *ndim = t->ndim;
    dims[0] = t->ndim >= 1 ? t->shape[0] : 1;
    dims[1] = t->ndim >= 2 ? t->shape[1] : 1;
    *file = ts->st->labels[fi];
    return 0;
}

/* what the full check says of tensor (kind, layer): "FILE: tensor 'NAME' has shape [..], expected
 * [..]" (GGUF: "has ne [..], expected [..] for this config") or "FILE: tensor 'NAME' is missing" */
static void tensor_says(const TensorSrc *ts, const LlamaConfig *c, int kind, int layer, const char *label, char *out,
                        size_t n) {
    afx_err sub = {{0}};
    if (ts->gg) {
        if (!gguf_tensor_ok(ts->gg, c, kind, layer, label, NULL, &sub)) snprintf(sub.msg, sizeof sub.msg, "%s: ?", label);
    } else {
        const st_tensor *t;
        const char *lab;
        if (!llama_tensor_find(c, ts->st, "", kind, layer, &t, &lab, &sub)) snprintf(sub.msg, sizeof sub.msg, "%s: ?", label);
    }
    snprintf(out, n, "%s", sub.msg);
}

/* Each size of the config (fields[], in the file's own spelling) against the tensors that carry it,
 * before anything is allocated: "LABEL: FIELD = VALUE: FILE: tensor 'NAME' has shape [..], expected
 * [..]". Only a 2-D tensor whose other dimension agrees speaks for one field (the last layer's norm
 * for the layer count); anything else is left to the full check that follows. */
static int sizes_match(const TensorSrc *ts, const LlamaConfig *c, const char *const fields[7], const char *label,
                       const char *file_label, afx_err *e) {
    int64_t d[2];
    int nd;
    char name[256], says[AFX_ERR_LEN];
    const char *file;
#define SAYS(kind, layer) (tensor_says(ts, c, kind, layer, file_label, says, sizeof says), says)
#define ROWS_OFF(kind, want) (!src_dims(ts, c, kind, 0, d, &nd, name, sizeof name, &file) && nd == 2 && \
                              d[1] == c->C && d[0] != (int64_t)(want))
    if (!src_dims(ts, c, LT_EMBED, 0, d, &nd, name, sizeof name, &file) && nd == 2) {
        if (d[0] != c->V && d[1] == c->C)
            return afx_fail(e, "%s: %s = %d: %s", label, fields[0], c->V, SAYS(LT_EMBED, 0));
        if (d[1] != c->C && d[0] == c->V)
            return afx_fail(e, "%s: %s = %d: %s", label, fields[1], c->C, SAYS(LT_EMBED, 0));
    }
    if (ROWS_OFF(LT_WQ, (int64_t)c->NH * c->HS))
        return afx_fail(e, "%s: %s = %d with %s = %d: %s", label, fields[2], c->NH, fields[3], c->HS, SAYS(LT_WQ, 0));
    if (ROWS_OFF(LT_WK, (int64_t)c->NKV * c->HS))
        return afx_fail(e, "%s: %s = %d with %s = %d: %s", label, fields[4], c->NKV, fields[3], c->HS, SAYS(LT_WK, 0));
    if (ROWS_OFF(LT_WG, c->FF)) return afx_fail(e, "%s: %s = %d: %s", label, fields[5], c->FF, SAYS(LT_WG, 0));
    if (src_dims(ts, c, LT_LN1, c->L - 1, d, &nd, name, sizeof name, &file) &&
        !src_dims(ts, c, LT_LN1, 0, d, &nd, name, sizeof name, &file))
        return afx_fail(e, "%s: %s = %d: %s", label, fields[6], c->L, SAYS(LT_LN1, c->L - 1));
#undef ROWS_OFF
#undef SAYS
    return 0;
}

/* the parameters fit in memory (after the file agreed with the config) */
static int params_fit(const LlamaConfig *c, const char *label, afx_err *e) {
    size_t bytes;
    char what[1200];
    snprintf(what, sizeof what, "%.1000s: the %zu parameters", label, llama_params_count(c));
    if (afx_size_mul(llama_params_count(c), sizeof(real), &bytes)) bytes = SIZE_MAX;
    return afx_mem_check(bytes, what, e);
}

static const char *const HF_FIELDS[7] = {"vocab_size", "hidden_size", "num_attention_heads", "head_dim",
                                         "num_key_value_heads", "intermediate_size", "num_hidden_layers"};

/* 1 if the matrix kind can stay as the file's bytes: every layer's tensor is BF16 or F16 */
static int keepable_st(const LlamaConfig *c, const st_source *src, int kind, afx_err *e) {
    size_t shape[2];
    int ndim;
    if (llama_tensor_info(c, kind, 0, NULL, 0, shape, &ndim) || ndim != 2) return 0; /* the matrices only */
    int layers = llama_tensor_is_per_layer(kind) ? c->L : 1;
    for (int l = 0; l < layers; l++) {
        const st_tensor *t;
        const char *label;
        if (llama_tensor_find(c, src, "", kind, l, &t, &label, e) || !t) return 0; /* (checked before: found) */
        if (t->dtype != ST_BF16 && t->dtype != ST_F16) return 0;
    }
    return 1;
}

static int load_hf(Model *m, const char *dir, const ModelOpts *o, afx_err *e) {
    char cfg_path[1024];
    HfFiles h = {0};
    st_source src = {0};
    int rc = -1;
    if (afx_path_join(cfg_path, sizeof cfg_path, dir, "config.json", e) || llama_config_load(&m->cfg, cfg_path, e) ||
        hf_special_ids(m, cfg_path, e) || hf_open(&h, dir, e))
        goto done;
    /* the loader of weights.h, with the index deciding the shard of each tensor; every size of the
     * config is checked against the tensors before the parameters are allocated */
    src = (st_source){.files = h.files, .labels = (const char *const *)h.paths, .n = h.n_files,
                      .locate = h.index ? hf_locate : NULL, .ctx = &h};
    TensorSrc ts = {.st = &src};
    const LlamaConfig *c = &m->cfg;
    if (sizes_match(&ts, c, HF_FIELDS, cfg_path, dir, e) || llama_params_check(c, &src, "", e) || params_fit(c, dir, e))
        goto done;
    /* which kinds stay as the file's BF16 / F16 bytes (HF order already: no permutation) */
    unsigned kept = 0;
    size_t nq = 0;
    for (int kind = 0; kind < LT_COUNT && o && o->keep_blocks; kind++)
        if (llama_tensor_exists(c, kind) && keepable_st(c, &src, kind, e)) {
            kept |= 1u << kind;
            nq += llama_tensor_is_per_layer(kind) ? (size_t)c->L : 1;
        }
    size_t n = llama_params_count_kept(c, kept);
    real *mem = calloc(n ? n : 1, sizeof(real));
    m->qm = nq ? calloc(nq, sizeof *m->qm) : NULL;
    if (!mem || (nq && !m->qm)) {
        free(mem);
        afx_fail(e, "%s: out of memory allocating %zu parameters", dir, n);
        goto done;
    }
    llama_params_bind_kept(&m->w, c, mem, kept);
    m->w.owns = 1;
    m->kept = kept;
    QMat *qnext = m->qm;
    for (int kind = 0; kind < LT_COUNT; kind++) {
        if (!(kept >> kind & 1u)) continue;
        m->w.q[kind] = qnext;
        for (int l = 0; l < (llama_tensor_is_per_layer(kind) ? c->L : 1); l++) {
            const st_tensor *t;
            const char *label;
            if (llama_tensor_find(c, &src, "", kind, l, &t, &label, e)) goto done;
            QMat *q = qnext++;
            q->type = t->dtype == ST_BF16 ? QT_BF16 : QT_F16;
            q->rows = (int)t->shape[0], q->cols = (int)t->shape[1];
            q->row_bytes = (size_t)q->cols * 2;
            q->data = t->data;
            llama_dtype_note(m->source_dtype, sizeof m->source_dtype, st_dtype_name(t->dtype));
        }
    }
    if (c->tied && (kept >> LT_EMBED & 1u)) m->w.q[LT_LM_HEAD] = m->w.q[LT_EMBED];
    rc = llama_params_load_except(&m->w, &src, "", kept, m->source_dtype, sizeof m->source_dtype, e);
    if (!rc && kept) { /* the blocks point into the files' mappings: they stay with the model */
        m->stf = h.files, m->n_stf = h.n_files;
        h.files = NULL;
        for (size_t i = 0; i < h.n_files; i++) free(h.paths[i]);
        h.n_files = 0;
    }
done:
    hf_close(&h);
    return rc;
}

/* ---- GGUF ------------------------------------------------------------------------------------- */

static const char *const GGUF_NAMES[LT_COUNT] = { /* (declared above) */
    [LT_EMBED] = "token_embd.weight",        [LT_LN1] = "blk.%d.attn_norm.weight",
    [LT_WQ] = "blk.%d.attn_q.weight",        [LT_WK] = "blk.%d.attn_k.weight",
    [LT_WV] = "blk.%d.attn_v.weight",        [LT_WO] = "blk.%d.attn_output.weight",
    [LT_LN2] = "blk.%d.ffn_norm.weight",     [LT_WG] = "blk.%d.ffn_gate.weight",
    [LT_WU] = "blk.%d.ffn_up.weight",        [LT_WD] = "blk.%d.ffn_down.weight",
    [LT_LNF] = "output_norm.weight",         [LT_LM_HEAD] = "output.weight",
    /* Gemma 3 (ffn_norm is its pre_feedforward_layernorm, like Llama's pre-MLP norm) */
    [LT_QNORM] = "blk.%d.attn_q_norm.weight", [LT_KNORM] = "blk.%d.attn_k_norm.weight",
    [LT_ONORM] = "blk.%d.post_attention_norm.weight", [LT_MNORM] = "blk.%d.post_ffw_norm.weight",
};

/* "<arch>.<key>" for the architecture's metadata keys */
static const char *akey(char *buf, size_t n, const char *arch, const char *key) {
    snprintf(buf, n, "%s.%s", arch, key);
    return buf;
}

/* An integer key: 0 found, 1 absent (dflt stored), -1 error. Must be in [lo, INT_MAX]. */
static int kv_int(const gguf_file *f, const char *key, int required, int dflt, int lo, int *out, const char *path,
                  afx_err *e) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    int64_t v;
    if (!kv) {
        if (required) return afx_fail(e, "%s: metadata key '%s' is missing", path, key);
        *out = dflt;
        return 1;
    }
    if (gguf_kv_int(kv, &v))
        return afx_fail(e, "%s: metadata key '%s' has type %s, expected an integer", path, key,
                        gguf_vtype_name(kv->type));
    if (v < lo || v > INT_MAX)
        return afx_fail(e, "%s: metadata key '%s' = %lld is out of range", path, key, (long long)v);
    *out = (int)v;
    return 0;
}

/* A positive finite number key: 0 found, 1 absent (dflt), -1 error (also when required and absent). */
static int kv_num(const gguf_file *f, const char *key, int required, double dflt, double *out, const char *path,
                  afx_err *e) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) {
        if (required) return afx_fail(e, "%s: metadata key '%s' is missing", path, key);
        *out = dflt;
        return 1;
    }
    if (gguf_kv_float(kv, out))
        return afx_fail(e, "%s: metadata key '%s' has type %s, expected a number", path, key,
                        gguf_vtype_name(kv->type));
    /* An f32 value stands for the decimal the converter was given (1e-5, not 9.99999975e-06): take
     * the shortest decimal that rounds to the same float, as HF's float64 config would hold it. */
    if (kv->type == GGUF_F32 && isfinite(*out)) {
        char buf[40];
        for (int digits = 1; digits <= 9; digits++) {
            snprintf(buf, sizeof buf, "%.*g", digits, *out);
            double d = strtod(buf, NULL);
            if ((float)d == (float)*out) {
                *out = d;
                break;
            }
        }
    }
    if (!(*out > 0) || !isfinite(*out))
        return afx_fail(e, "%s: metadata key '%s' = %g is not positive", path, key, *out);
    return 0;
}

/* llama3 rope scaling: the divisor of frequency i (llama.cpp's rope_freqs[i]) */
/* llama3 rope scaling: the divisor of frequency i (llama.cpp's rope_freqs[i]), from the core's one
 * implementation of the bands (ops.h rope_inv_freq): unscaled / scaled inverse frequency */
static double llama3_divisor(const LlamaConfig *c, int i) {
    double plain[1024], scaled[1024]; /* HS/2 <= 1024: gguf_rope_freqs checks numel == HS/2 <= 1024 first */
    if (c->HS / 2 > 1024 || i < 0 || i >= c->HS / 2) return 1;
    rope_inv_freq(plain, c->HS, c->rope_theta, 0, 0, 0, 0);
    rope_inv_freq(scaled, c->HS, c->rope_theta, c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor,
                  c->rope_original_max_position);
    return plain[i] / scaled[i];
}

/* rope_freqs.weight -> llama3 scaling parameters, verified value by value */
static int gguf_rope_freqs(const gguf_file *f, LlamaConfig *c, const char *path, afx_err *e) {
    const gguf_tensor *t = gguf_find_tensor(f, "rope_freqs.weight");
    if (!t) return 0;
    if (t->numel != (size_t)c->HS / 2 || t->type != GGML_F32)
        return afx_fail(e, "%s: tensor 'rope_freqs.weight' must be F32 with head_dim/2 = %d values (has %zu, %s)", path,
                        c->HS / 2, t->numel, gguf_type_name(t->type));
    real v[1024];
    if (t->numel > sizeof v / sizeof v[0]) return afx_fail(e, "%s: rope_freqs.weight is too long", path);
    if (gguf_to_real(t, v, e)) return afx_relabel(e, path);
    double factor = 1;
    for (size_t i = 0; i < t->numel; i++)
        if ((double)v[i] > factor) factor = (double)v[i];
    if (factor == 1) {
        for (size_t i = 0; i < t->numel; i++)
            if ((double)v[i] != 1)
                return afx_fail(e, "%s: rope_freqs.weight[%zu] = %g is below 1", path, i, (double)v[i]);
        return 0; /* all ones: no scaling */
    }
    int orig = 8192;
    if (kv_int(f, "llama.rope.scaling.original_context_length", 0, 8192, 1, &orig, path, e) < 0) return -1;
    c->rope_factor = factor;
    c->rope_low_freq_factor = 1;
    c->rope_high_freq_factor = 4;
    c->rope_original_max_position = orig;
    for (size_t i = 0; i < t->numel; i++) {
        double want = llama3_divisor(c, (int)i);
        if (fabs((double)v[i] - want) > 1e-4 * want)
            return afx_fail(
                e,
                "%s: rope_freqs.weight[%zu] = %g, but llama3 rope scaling with factor %g, low_freq_factor 1, "
                "high_freq_factor 4, original context %d gives %g (other rope_freqs are not supported)",
                path, i, (double)v[i], factor, orig, want);
    }
    return 0;
}

/* llama_config_limits with the GGUF keys of architecture A as the field names */
static int gguf_limits(const LlamaConfig *c, const char *A, const char *path, afx_err *e) {
    static const char *const keys[8] = {"vocab_size", "embedding_length", "feed_forward_length", "block_count",
                                        "attention.head_count", "attention.head_count_kv", "attention.key_length",
                                        "context_length"};
    char nm[8][96];
    const char *names[8];
    for (int i = 0; i < 8; i++) snprintf(nm[i], sizeof nm[i], "%s.%s", A, keys[i]), names[i] = nm[i];
    return llama_config_limits(c, names, path, e);
}

static int gguf_config(Model *m, const gguf_file *f, const char *path, afx_err *e) {
    LlamaConfig *c = &m->cfg;
    const gguf_kv *kv = gguf_find_kv(f, "general.architecture");
    gguf_str arch;
    if (!kv) return afx_fail(e, "%s: metadata key 'general.architecture' is missing", path);
    if (gguf_kv_string(kv, &arch)) return afx_fail(e, "%s: general.architecture is not a string", path);
    const char *A;
    if (arch.n == 5 && !memcmp(arch.p, "llama", 5)) A = "llama";
    else if (arch.n == 6 && !memcmp(arch.p, "gemma3", 6)) A = "gemma3";
    else
        return afx_fail(e, "%s: general.architecture is '%.*s', affix loads 'llama' and 'gemma3'", path,
                        (int)(arch.n > 64 ? 64 : arch.n), arch.p);
    int gemma = A[0] == 'g';
    c->arch = gemma ? AFX_ARCH_GEMMA3 : AFX_ARCH_LLAMA;
    char k1[96];
#define K(name) akey(k1, sizeof k1, A, name)
    if (kv_int(f, K("embedding_length"), 1, 0, 1, &c->C, path, e) < 0 ||
        kv_int(f, K("feed_forward_length"), 1, 0, 1, &c->FF, path, e) < 0 ||
        kv_int(f, K("block_count"), 1, 0, 1, &c->L, path, e) < 0 ||
        kv_int(f, K("attention.head_count"), 1, 0, 1, &c->NH, path, e) < 0 ||
        kv_int(f, K("attention.head_count_kv"), 0, c->NH, 1, &c->NKV, path, e) < 0 ||
        kv_num(f, K("attention.layer_norm_rms_epsilon"), 1, 0, &c->eps, path, e) < 0 ||
        kv_num(f, K("rope.freq_base"), 0, gemma ? 1e6 : 10000, &c->rope_theta, path, e) < 0 ||
        kv_int(f, K("context_length"), 0, 2048, 1, &c->max_pos, path, e) < 0)
        return -1;
    {   /* the stated limits of the sizes just read, before anything is derived from them */
        LlamaConfig early = *c;
        early.V = early.HS = 0;
        if (gguf_limits(&early, A, path, e)) return -1;
    }
    int hs_dflt = c->C % c->NH ? 0 : c->C / c->NH, vl, rd;
    int k = kv_int(f, K("attention.key_length"), 0, hs_dflt, 1, &c->HS, path, e);
    if (k < 0) return -1;
    if (c->HS == 0)
        return afx_fail(e, "%s: %s.attention.key_length is missing and embedding_length %d is not a multiple of "
                           "head_count %d", path, A, c->C, c->NH);
    if (kv_int(f, K("attention.value_length"), 0, c->HS, 1, &vl, path, e) < 0) return -1;
    if (vl != c->HS)
        return afx_fail(e, "%s: %s.attention.value_length %d differs from key_length %d", path, A, vl, c->HS);
    if (kv_int(f, K("rope.dimension_count"), 0, c->HS, 1, &rd, path, e) < 0) return -1;
    if (rd != c->HS)
        return afx_fail(e,
                        "%s: %s.rope.dimension_count %d differs from head_dim %d (partial rotary is not supported)",
                        path, A, rd, c->HS);

    /* rope scaling other than llama3-through-rope_freqs is refused rather than ignored */
    if ((kv = gguf_find_kv(f, K("rope.scaling.type")))) {
        gguf_str s;
        if (gguf_kv_string(kv, &s)) return afx_fail(e, "%s: %s.rope.scaling.type is not a string", path, A);
        double fac = 1;
        if (kv_num(f, K("rope.scaling.factor"), 0, 1, &fac, path, e) < 0) return -1;
        int none = (s.n == 4 && !memcmp(s.p, "none", 4)) || fac == 1;
        if (!none)
            return afx_fail(e, "%s: rope scaling '%.*s' (factor %g) is not supported", path,
                            (int)(s.n > 32 ? 32 : s.n), s.p, fac);
    }
    double lin = 1;
    if (kv_num(f, K("rope.scale_linear"), 0, 1, &lin, path, e) < 0) return -1;
    if (lin != 1) return afx_fail(e, "%s: linear rope scaling %g is not supported", path, lin);
    if (!gemma && gguf_rope_freqs(f, c, path, e)) return -1;

    if (gemma) {
        /* Gemma 3 values a GGUF does not carry, from transformers' Gemma3TextConfig defaults (the
         * table of gemma3.md §2.4; affix info prints them): sliding layers' RoPE base 10000, layer i
         * full iff (i+1) % 6 == 0, no softcapping, GELU-tanh. The window must be in the file. */
        if (c->L > AFX_MAX_LAYERS) return afx_fail(e, "%s: %d layers, above the supported %d", path, c->L, AFX_MAX_LAYERS);
        if (kv_int(f, K("attention.sliding_window"), 1, 0, 1, &c->sliding_window, path, e) < 0 ||
            kv_num(f, K("rope.freq_base_swa"), 0, 10000, &c->rope_local_theta, path, e) < 0)
            return -1;
        for (int l = 0; l < c->L; l++) c->sliding[l] = (l + 1) % 6 != 0;
        /* query_pre_attn_scalar has no key: transformers takes 256. That is head_dim for the
         * 270M/1B/4B/12B models, not for 27B (168 vs 128): refuse what cannot be known. */
        double qpas = 256;
        if (kv_num(f, K("attention.query_pre_attn_scalar"), 0, 256, &qpas, path, e) < 0) return -1;
        if (!gguf_find_kv(f, K("attention.query_pre_attn_scalar")) && c->HS != 256)
            return afx_fail(e, "%s: gemma3 with head_dim %d: query_pre_attn_scalar is not in the file and cannot "
                               "be known (transformers would assume 256)", path, c->HS);
        c->query_pre_attn_scalar = qpas;
        if (gguf_find_kv(f, K("final_logit_softcapping")) || gguf_find_kv(f, K("attn_logit_softcapping")))
            return afx_fail(e, "%s: logit softcapping (Gemma 2) is not implemented", path);
    }
#undef K

    const gguf_tensor *emb = gguf_find_tensor(f, GGUF_NAMES[LT_EMBED]);
    if (!emb) return afx_fail(e, "%s: tensor '%s' is missing", path, GGUF_NAMES[LT_EMBED]);
    if (emb->n_dims != 2 || emb->ne[0] != c->C || emb->ne[1] < 1 || emb->ne[1] > INT_MAX)
        return afx_fail(e, "%s: tensor '%s' has ne [%lld,%lld] (n_dims %d), expected [%d, vocab]", path,
                        GGUF_NAMES[LT_EMBED], (long long)emb->ne[0], (long long)emb->ne[1], emb->n_dims, c->C);
    c->V = (int)emb->ne[1];
    int v_key;
    if (kv_int(f, akey(k1, sizeof k1, A, "vocab_size"), 0, c->V, 1, &v_key, path, e) < 0) return -1;
    if (v_key != c->V)
        return afx_fail(e, "%s: %s.vocab_size %d differs from the %d rows of token_embd", path, A, v_key, c->V);

    /* tied: no output.weight, or a byte-identical copy of the embedding */
    const gguf_tensor *out = gguf_find_tensor(f, GGUF_NAMES[LT_LM_HEAD]);
    c->tied = !out || (out->type == emb->type && out->nbytes == emb->nbytes && out->n_dims == emb->n_dims &&
                       !memcmp(out->ne, emb->ne, sizeof out->ne) && !memcmp(out->data, emb->data, emb->nbytes));

    if (gguf_limits(c, A, path, e)) return -1;
    if (llama_config_check(c, e)) return afx_relabel(e, path);
    if (kv_int(f, "tokenizer.ggml.bos_token_id", 0, -1, 0, &m->bos_id, path, e) < 0 ||
        kv_int(f, "tokenizer.ggml.eos_token_id", 0, -1, 0, &m->eos_id, path, e) < 0)
        return -1;
    return 0;
}

/* rows of one q or k matrix (nh heads of HS rows, C columns) from GGUF's interleaved-pair order
 * into HF's rotate-half order: HF row h*HS + a*HS/2 + i = GGUF row h*HS + 2i + a. */
static void unpermute_rows(real *dst, const real *src, int nh, int HS, int C) {
    for (int h = 0; h < nh; h++)
        for (int a = 0; a < 2; a++)
            for (int i = 0; i < HS / 2; i++)
                memcpy(dst + ((size_t)h * HS + (size_t)a * (HS / 2) + i) * C, src + ((size_t)h * HS + 2 * i + a) * C,
                       (size_t)C * sizeof *dst);
}

/* tensor (kind, layer) of c is in f with the ne of the HF shape reversed (padded with 1) */
static int gguf_tensor_ok(const gguf_file *f, const LlamaConfig *c, int kind, int l, const char *path,
                          const gguf_tensor **out, afx_err *e) {
    char name[64], hfname[256];
    size_t shape[2];
    int ndim;
    snprintf(name, sizeof name, GGUF_NAMES[kind], l);
    if (llama_tensor_info(c, kind, l, hfname, sizeof hfname, shape, &ndim))
        return afx_fail(e, "%s: no tensor of kind %d, layer %d", path, kind, l);
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return afx_fail(e, "%s: tensor '%s' is missing", path, name);
    int64_t want[GGUF_MAX_DIMS] = {1, 1, 1, 1};
    for (int i = 0; i < ndim; i++) want[i] = (int64_t)shape[ndim - 1 - i];
    int same = 1;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) same &= t->ne[i] == want[i];
    if (!same) {
        char g[128], w[64];
        return afx_fail(e, "%s: tensor '%s' has ne %s, expected %s for this config", path, name,
                        afx_shape_str(g, sizeof g, t->n_dims, t->ne), afx_shape_str(w, sizeof w, ndim, want));
    }
    if (out) *out = t;
    return 0;
}

/* 1 if the matrix kind can stay in blocks: every layer's tensor is in a block format quant.h decodes
 * (not F32: that is converted as before) and whole blocks make each row */
static int keepable(const gguf_file *f, const LlamaConfig *c, int kind) {
    size_t shape[2];
    int ndim;
    if (llama_tensor_info(c, kind, 0, NULL, 0, shape, &ndim) || ndim != 2) return 0; /* the matrices only */
    int layers = llama_tensor_is_per_layer(kind) ? c->L : 1;
    for (int l = 0; l < layers; l++) {
        char name[64];
        snprintf(name, sizeof name, GGUF_NAMES[kind], l);
        const gguf_tensor *t = gguf_find_tensor(f, name);
        int be = t ? quant_block_elems((int)t->type) : 0;
        if (!t || t->type == GGML_F32 || !quant_supported((int)t->type) || be <= 0 || t->ne[0] % be) return 0;
    }
    return 1;
}

/* the descriptor of a kept tensor; Llama q/k rows permuted into HF order in *own (bytes) */
static void keep_tensor(QMat *q, const gguf_tensor *t, const LlamaConfig *c, int kind, unsigned char **own) {
    q->type = (int)t->type;
    q->cols = (int)t->ne[0];
    q->rows = (int)t->ne[1];
    q->row_bytes = (size_t)q->cols / (size_t)quant_block_elems(q->type) * quant_block_bytes(q->type);
    q->data = t->data;
    if ((kind == LT_WQ || kind == LT_WK) && c->arch == AFX_ARCH_LLAMA) { /* as unpermute_rows, whole rows of blocks */
        int nh = kind == LT_WQ ? c->NH : c->NKV, HS = c->HS;
        unsigned char *dst = *own;
        for (int h = 0; h < nh; h++)
            for (int a = 0; a < 2; a++)
                for (int i = 0; i < HS / 2; i++)
                    memcpy(dst + ((size_t)h * HS + (size_t)a * (HS / 2) + i) * q->row_bytes,
                           t->data + ((size_t)h * HS + 2 * i + a) * q->row_bytes, q->row_bytes);
        q->data = dst;
        *own += (size_t)q->rows * q->row_bytes;
    }
}

static int load_gguf(Model *m, const char *path, const ModelOpts *o, afx_err *e) {
    gguf_file f;
    if (gguf_open(&f, path, e)) return -1;
    int rc = gguf_config(m, &f, path, e);
    const LlamaConfig *c = &m->cfg;
    if (!rc) { /* every size against the tensors, then every tensor's shape, before any allocation */
        char fl[7][96];
        const char *fields[7];
        static const char *const keys[7] = {"vocab_size", "embedding_length", "attention.head_count",
                                            "attention.key_length", "attention.head_count_kv",
                                            "feed_forward_length", "block_count"};
        const char *A = c->arch == AFX_ARCH_GEMMA3 ? "gemma3" : "llama";
        for (int i = 0; i < 7; i++) snprintf(fl[i], sizeof fl[i], "%s.%s", A, keys[i]), fields[i] = fl[i];
        TensorSrc ts = {.gg = &f};
        rc = sizes_match(&ts, c, fields, path, path, e);
    }
    for (int kind = 0; kind < LT_COUNT && !rc; kind++) {
        if (!llama_tensor_exists(c, kind)) continue;
        int layers = llama_tensor_is_per_layer(kind) ? c->L : 1;
        for (int l = 0; l < layers && !rc; l++) rc = gguf_tensor_ok(&f, c, kind, l, path, NULL, e);
    }
    if (!rc) rc = params_fit(c, path, e);
    /* which kinds stay in blocks, and the bytes the permuted ones need */
    unsigned kept = 0;
    size_t nq = 0, own_bytes = 0;
    for (int kind = 0; kind < LT_COUNT && !rc && o && o->keep_blocks; kind++) {
        if (!keepable(&f, c, kind)) continue;
        kept |= 1u << kind;
        int layers = llama_tensor_is_per_layer(kind) ? c->L : 1;
        nq += (size_t)layers;
        if ((kind == LT_WQ || kind == LT_WK) && c->arch == AFX_ARCH_LLAMA)
            for (int l = 0; l < layers; l++) {
                char name[64];
                snprintf(name, sizeof name, GGUF_NAMES[kind], l);
                own_bytes += gguf_find_tensor(&f, name)->nbytes;
            }
    }
    if (!rc && kept) {
        m->qm = calloc(nq, sizeof *m->qm);
        m->qown = own_bytes ? malloc(own_bytes) : NULL;
        if (!m->qm || (own_bytes && !m->qown)) rc = afx_fail(e, "%s: out of memory", path);
    }
    if (!rc) {
        size_t n = llama_params_count_kept(c, kept);
        real *mem = calloc(n ? n : 1, sizeof(real));
        if (!mem) rc = afx_fail(e, "%s: out of memory allocating %zu parameters", path, n);
        else {
            llama_params_bind_kept(&m->w, c, mem, kept);
            m->w.owns = 1;
            m->kept = kept;
        }
    }
    real *tmp = NULL;
    if (!rc) {
        tmp = malloc((size_t)(c->NH > c->NKV ? c->NH : c->NKV) * c->HS * c->C * sizeof *tmp);
        if (!tmp) rc = afx_fail(e, "%s: out of memory", path);
    }
    QMat *qnext = m->qm;
    unsigned char *own = m->qown;
    for (int kind = 0; kind < LT_COUNT && !rc; kind++) {
        if (!llama_tensor_exists(c, kind)) continue;
        int layers = llama_tensor_is_per_layer(kind) ? c->L : 1;
        if (kept >> kind & 1u) m->w.q[kind] = qnext;
        for (int l = 0; l < layers && !rc; l++) {
            const gguf_tensor *t;
            int ndim;
            if ((rc = gguf_tensor_ok(&f, c, kind, l, path, &t, e))) break;
            char hfname[256];
            size_t shape[2];
            llama_tensor_info(c, kind, l, hfname, sizeof hfname, shape, &ndim);
            if (ndim == 2) llama_dtype_note(m->source_dtype, sizeof m->source_dtype, gguf_type_name(t->type));
            if (kept >> kind & 1u) {
                keep_tensor(qnext++, t, c, kind, &own);
                continue;
            }
            real *dst = llama_tensor_ptr(&m->w, kind, l);
            /* llama.cpp interleaves q/k rows for 'llama' only; Gemma's are in HF order (gemma3.md §2.3) */
            int rope = (kind == LT_WQ || kind == LT_WK) && c->arch == AFX_ARCH_LLAMA;
            if (gguf_to_real(t, rope ? tmp : dst, e)) {
                rc = afx_relabel(e, path);
                break;
            }
            if (rope) unpermute_rows(dst, tmp, kind == LT_WQ ? c->NH : c->NKV, c->HS, c->C);
            /* Gemma's GGUF stores every norm as the multiplier 1 + w; affix keeps HF's w (exact) */
            if (c->arch == AFX_ARCH_GEMMA3 && llama_tensor_is_norm(kind))
                for (size_t i = 0; i < t->numel; i++) dst[i] -= 1;
        }
    }
    if (c->tied && (kept >> LT_EMBED & 1u)) m->w.q[LT_LM_HEAD] = m->w.q[LT_EMBED];
    free(tmp);
    if (!rc && kept) { /* the blocks point into the mapping: it stays with the model */
        m->map = f.map_;
        m->map_size = f.map_size_;
        f.map_ = NULL;
        f.map_size_ = 0;
    }
    gguf_close(&f);
    return rc;
}

/* ---- entry points ----------------------------------------------------------------------------- */

#define QROW_CHECK 1024 /* elements decoded at a time by check_finite */

/* every weight finite: a NaN or Inf in the file is refused with the tensor's name (computing with it
 * would turn every output into NaN without saying why) */
static int check_finite(const Model *m, const char *path, afx_err *e) {
    const LlamaConfig *c = &m->w.cfg;
    for (int k = 0; k < LT_COUNT; k++) {
        if (!llama_tensor_exists(c, k)) continue;
        int layers = llama_tensor_is_per_layer(k) ? c->L : 1;
        size_t n = llama_tensor_numel(c, k);
        for (int l = 0; l < layers; l++) {
            const real *p = llama_tensor_ptr(&m->w, k, l);
            const QMat *q = llama_tensor_q(&m->w, k, l);
            size_t bad = 0, first = 0;
            if (q) { /* a kept tensor: decoded a row at a time */
                real row[QROW_CHECK];
                for (int r = 0; r < q->rows; r++)
                    for (int c0 = 0; c0 < q->cols; c0 += QROW_CHECK) {
                        int len = q->cols - c0 < QROW_CHECK ? q->cols - c0 : QROW_CHECK;
                        qmat_row(q, r, c0, len, row);
                        for (int i = 0; i < len; i++)
                            if (!isfinite(row[i]) && !bad++) first = (size_t)r * q->cols + (size_t)c0 + (size_t)i;
                    }
            }
            for (size_t i = 0; i < n && p; i++)
                if (!isfinite(p[i]) && !bad++) first = i;
            if (bad) {
                char name[160];
                size_t shape[2];
                int nd;
                llama_tensor_info(c, k, l, name, sizeof name, shape, &nd);
                return afx_fail(e, "%s: tensor %s holds %zu non-finite values (NaN or Inf; the first at element %zu)", path,
                                name, bad, first);
            }
        }
    }
    return 0;
}

int model_load(Model *m, const char *path, afx_err *e) { return model_load_opts(m, path, NULL, e); }

int model_load_opts(Model *m, const char *path, const ModelOpts *o, afx_err *e) {
    memset(m, 0, sizeof *m);
    m->bos_id = m->eos_id = -1;
    if (strlen(path) >= sizeof m->path) return afx_fail(e, "%.200s...: path too long", path);
    snprintf(m->path, sizeof m->path, "%s", path);
    struct stat sb;
    if (stat(path, &sb) != 0) return afx_fail(e, "%s: cannot open: %s", path, strerror(errno));
    int rc;
    if (S_ISDIR(sb.st_mode)) {
        m->format = MODEL_HF_DIR;
        rc = load_hf(m, path, o, e);
    } else {
        m->format = MODEL_GGUF;
        rc = load_gguf(m, path, o, e);
    }
    if (!rc) rc = check_finite(m, path, e);
    if (rc) {
        model_free(m);
        return -1;
    }
    return 0;
}

void model_free(Model *m) {
    llama_params_free(&m->w);
    free(m->qm);
    free(m->qown);
    afx_unmap_file(m->map, m->map_size);
    for (size_t i = 0; i < m->n_stf; i++) st_close(&m->stf[i]);
    free(m->stf);
    memset(m, 0, sizeof *m);
    m->bos_id = m->eos_id = -1;
}

/* ---- tensor table ----------------------------------------------------------------------------- */

static int add_row(ModelTensor **rows, size_t *n, size_t *cap, const char *name, const char *dtype, int ndim,
                   const long long *shape, const char *file, afx_err *e) {
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        ModelTensor *r = realloc(*rows, nc * sizeof *r);
        if (!r) return afx_fail(e, "%s: out of memory", file);
        *rows = r;
        *cap = nc;
    }
    ModelTensor *t = &(*rows)[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->ndim = ndim;
    for (int i = 0; i < ndim && i < 8; i++) t->shape[i] = shape[i];
    const char *base = strrchr(file, '/');
    snprintf(t->file, sizeof t->file, "%s", base ? base + 1 : file);
    return 0;
}

int model_list_tensors(const char *path, ModelTensor **rows, size_t *n, afx_err *e) {
    size_t cap = 0;
    int rc = 0;
    *rows = NULL;
    *n = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return afx_fail(e, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        HfFiles h;
        rc = hf_open(&h, path, e);
        for (size_t fi = 0; fi < h.n_files && !rc; fi++)
            for (size_t i = 0; i < h.files[fi].n_tensors && !rc; i++) {
                const st_tensor *t = &h.files[fi].tensors[i];
                long long sh[ST_MAX_DIMS];
                for (int d = 0; d < t->ndim; d++) sh[d] = (long long)t->shape[d];
                rc = add_row(rows, n, &cap, t->name, st_dtype_name(t->dtype), t->ndim, sh, h.paths[fi], e);
            }
        hf_close(&h);
    } else {
        gguf_file f;
        if (gguf_open(&f, path, e)) return -1;
        for (size_t i = 0; i < f.n_tensors && !rc; i++) {
            const gguf_tensor *t = &f.tensors[i];
            long long sh[GGUF_MAX_DIMS];
            for (int d = 0; d < t->n_dims; d++) sh[d] = (long long)t->ne[d];
            rc = add_row(rows, n, &cap, t->name, gguf_type_name(t->type), t->n_dims, sh, path, e);
        }
        gguf_close(&f);
    }
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}
