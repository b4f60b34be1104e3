/* weights.c — LlamaParams from a safetensors file (see weights.h).
 *
 * What this is: a loop over the tensor table of llama.h; no tensor name or shape is written here.
 * What this is not: a layout converter (no transposes, no renames beyond the prefix).
 */
#include "weights.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int load_one(LlamaParams *p, const st_file *f, const char *label, const char *prefix, int kind, int layer,
                    afx_err *e) {
    char name[256], full[512];
    size_t shape[2];
    int ndim;
    if (!llama_tensor_exists(&p->cfg, kind)) return 0; /* a tied lm_head is embed_tokens; Llama has no q_norm... */
    if (llama_tensor_info(&p->cfg, kind, layer, name, sizeof name, shape, &ndim))
        return afx_fail(e, "%s: no tensor of kind %d, layer %d in this config", label, kind, layer);
    int n = snprintf(full, sizeof full, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof full) return afx_fail(e, "%s: tensor name '%s%s' is too long", label, prefix, name);

    const st_tensor *t = st_find(f, full);
    if (!t) return afx_fail(e, "%s: tensor '%s' is missing", label, full);

    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = (uint64_t)t->shape[i] == (uint64_t)shape[i];
    if (!same) {
        char got[160] = "[", want[64];
        size_t k = 1;
        for (int i = 0; i < t->ndim && k < sizeof got; i++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%" PRId64, i ? "," : "", t->shape[i]);
        if (k < sizeof got) snprintf(got + k, sizeof got - k, "]");
        if (ndim == 1) snprintf(want, sizeof want, "[%zu]", shape[0]);
        else snprintf(want, sizeof want, "[%zu,%zu]", shape[0], shape[1]);
        return afx_fail(e, "%s: tensor '%s' has shape %s, expected %s", label, full, got, want);
    }

    real *dst = llama_tensor_ptr(p, kind, layer);
    if (!dst) return afx_fail(e, "%s: tensor '%s' has no place in the parameters", label, full);
    if (st_to_real(t, dst, e)) {
        char why[AFX_ERR_LEN];
        snprintf(why, sizeof why, "%s", e ? e->msg : "");
        return afx_fail(e, "%s: %s", label, why);
    }
    return 0;
}

int llama_params_load_st(LlamaParams *p, const st_file *f, const char *label, const char *prefix, afx_err *e) {
    if (!label) label = "safetensors";
    if (!prefix) prefix = "";
    for (int kind = 0; kind < LT_COUNT; kind++) {
        int layers = llama_tensor_is_per_layer(kind) ? p->cfg.L : 1;
        for (int l = 0; l < layers; l++)
            if (load_one(p, f, label, prefix, kind, l, e)) return -1;
    }
    return 0;
}
