/* full.c — full fine-tuning: every base weight is trainable.
 *
 * No hook: the model's own backward (llama.c) already computes the gradient of every weight when
 * it is given a gradient set — including both uses of a tied embedding. This file only declares the
 * base tensors (HF names, one entry per layer) as the parameter table and binds it to the base
 * weights and to the gradient arena the adapter set allocates for them.
 */
#include <stdlib.h>
#include <string.h>

#include "adapter.h"

static void full_bind_base(Adapter *ad, LlamaParams *base, LlamaParams *grads) {
    int k = 0;
    for (int kind = 0; kind < LT_COUNT; kind++) {
        int nl = llama_tensor_is_per_layer(kind) ? ad->cfg.L : 1;
        for (int l = 0; l < nl; l++) {
            size_t shape[2];
            int nd;
            if (llama_tensor_info(&ad->cfg, kind, l, NULL, 0, shape, &nd)) continue;
            ad->params[k].w = llama_tensor_ptr(base, kind, l);
            ad->params[k].g = llama_tensor_ptr(grads, kind, l);
            k++;
        }
    }
}

static const AdapterOps FULL_OPS = {
    .method = "full",
    .trains_base = 1,
    .bind_base = full_bind_base,
};

int full_create(Adapter *ad, const LlamaConfig *c, afx_err *e) {
    memset(ad, 0, sizeof *ad);
    int n = 0;
    for (int kind = 0; kind < LT_COUNT; kind++)
        n += kind == LT_LM_HEAD && c->tied ? 0 : llama_tensor_is_per_layer(kind) ? c->L : 1;
    ad->params = calloc((size_t)n, sizeof *ad->params);
    if (!ad->params) return afx_fail(e, "full: out of memory");
    ad->ops = &FULL_OPS;
    ad->cfg = *c;
    int k = 0;
    for (int kind = 0; kind < LT_COUNT; kind++) {
        int nl = llama_tensor_is_per_layer(kind) ? c->L : 1;
        for (int l = 0; l < nl; l++) {
            AdapterTensor *t = &ad->params[k];
            if (llama_tensor_info(c, kind, l, t->name, sizeof t->name, t->shape, &t->ndim)) continue;
            t->numel = t->ndim == 2 ? t->shape[0] * t->shape[1] : t->shape[0];
            k++;
        }
    }
    ad->n_params = k;
    return 0;
}
