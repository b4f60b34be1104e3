/* weights.c — LlamaParams from safetensors files (see weights.h).
 *
 * What this is: a loop over the tensor table of llama.h; no tensor name or shape is written here.
 * What this is not: a layout converter (no transposes, no renames beyond the prefix).
 */
#include "weights.h"

#include <stdio.h>
#include <string.h>

#include "errmsg.h"

void llama_dtype_note(char *acc, size_t n, const char *dtype) {
    if (!acc[0]) snprintf(acc, n, "%s", dtype);
    else if (strcmp(acc, dtype)) snprintf(acc, n, "mixed");
}

int llama_tensor_find(const LlamaConfig *c, const st_source *src, const char *prefix, int kind, int layer,
                    const st_tensor **out, const char **out_label, afx_err *e) {
    char name[256], full[512];
    size_t shape[2], fi = 0;
    int ndim;
    *out = NULL;
    if (!llama_tensor_exists(c, kind)) return 0; /* a tied lm_head is embed_tokens; Llama has no q_norm... */
    if (llama_tensor_info(c, kind, layer, name, sizeof name, shape, &ndim))
        return afx_fail(e, "%s: no tensor of kind %d, layer %d in this config", src->labels[0], kind, layer);
    int n = snprintf(full, sizeof full, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof full)
        return afx_fail(e, "%s: tensor name '%s%s' is too long", src->labels[0], prefix, name);
    if (src->locate && src->locate(src->ctx, full, &fi, e)) return -1;
    const char *label = src->labels[fi];

    const st_tensor *t = st_find(&src->files[fi], full);
    if (!t) return afx_fail(e, "%s: tensor '%s' is missing", label, full);

    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = (uint64_t)t->shape[i] == (uint64_t)shape[i];
    if (!same) {
        char got[160], want[64];
        int64_t w[2] = {(int64_t)shape[0], (int64_t)shape[1]};
        return afx_fail(e, "%s: tensor '%s' has shape %s, expected %s", label, full,
                        afx_shape_str(got, sizeof got, t->ndim, t->shape), afx_shape_str(want, sizeof want, ndim, w));
    }
    *out = t;
    *out_label = label;
    return 0;
}

static int load_one(LlamaParams *p, const st_source *src, const char *prefix, int kind, int layer, char *dtype,
                    size_t dtype_len, afx_err *e) {
    const st_tensor *t;
    const char *label = NULL;
    if (llama_tensor_find(&p->cfg, src, prefix, kind, layer, &t, &label, e)) return -1;
    if (!t) return 0;
    real *dst = llama_tensor_ptr(p, kind, layer);
    if (!dst) return afx_fail(e, "%s: tensor '%s' has no place in the parameters", label, t->name);
    if (st_to_real(t, dst, e)) return afx_relabel(e, label);
    if (dtype && t->ndim == 2) llama_dtype_note(dtype, dtype_len, st_dtype_name(t->dtype));
    return 0;
}

int llama_params_check(const LlamaConfig *c, const st_source *src, const char *prefix, afx_err *e) {
    if (!prefix) prefix = "";
    for (int kind = 0; kind < LT_COUNT; kind++) {
        int layers = llama_tensor_is_per_layer(kind) ? c->L : 1;
        for (int l = 0; l < layers; l++) {
            const st_tensor *t;
            const char *label;
            if (llama_tensor_find(c, src, prefix, kind, l, &t, &label, e)) return -1;
        }
    }
    return 0;
}

int llama_params_load(LlamaParams *p, const st_source *src, const char *prefix, char *dtype, size_t dtype_len,
                      afx_err *e) {
    return llama_params_load_except(p, src, prefix, 0, dtype, dtype_len, e);
}

int llama_params_load_except(LlamaParams *p, const st_source *src, const char *prefix, unsigned skip, char *dtype,
                             size_t dtype_len, afx_err *e) {
    if (!prefix) prefix = "";
    for (int kind = 0; kind < LT_COUNT; kind++) {
        if (skip >> kind & 1u) continue;
        int layers = llama_tensor_is_per_layer(kind) ? p->cfg.L : 1;
        for (int l = 0; l < layers; l++)
            if (load_one(p, src, prefix, kind, l, dtype, dtype_len, e)) return -1;
    }
    return 0;
}

int llama_params_load_st(LlamaParams *p, const st_file *f, const char *label, const char *prefix, afx_err *e) {
    const char *labels[1] = {label ? label : "safetensors"};
    st_source src = {.files = f, .labels = labels, .n = 1};
    return llama_params_load(p, &src, prefix, NULL, 0, e);
}
