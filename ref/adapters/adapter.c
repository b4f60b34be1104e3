/* adapter.c — what all methods share: the set of composed adapters, its arenas (trainable
 * parameters, gradients, AdamW moments, activations), lookups, and the initialization RNG.
 * What it is not: any method's math (that is in the method's own file).
 */
#include "adapter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* ---- one adapter -------------------------------------------------------------------------------- */

void adapter_destroy(Adapter *ad) {
    if (!ad) return;
    if (ad->ops && ad->ops->destroy) ad->ops->destroy(ad);
    free(ad->params);
    free(ad->acts);
    free(ad->priv);
    memset(ad, 0, sizeof *ad);
}

size_t adapter_param_count(const Adapter *ad) {
    size_t n = 0;
    for (int i = 0; i < ad->n_params; i++) n += ad->params[i].numel;
    return n;
}

/* ---- the set -------------------------------------------------------------------------------------- */

static int has_hook(const AdapterSet *s, size_t offset) {
    int n = 0;
    for (int i = 0; i < s->n; i++) n += *(void *const *)((const char *)s->ad[i]->ops + offset) != NULL;
    return n;
}

extern const ModelHookOps ADAPTER_SET_HOOKS;

int adapter_set_init(AdapterSet *s, Adapter **ads, int n, LlamaParams *base, afx_err *e) {
    memset(s, 0, sizeof *s);
    s->hooks.ops = &ADAPTER_SET_HOOKS;
    if (n < 0 || n > AFX_MAX_ADAPTERS) return afx_fail(e, "adapters: at most %d methods at once", AFX_MAX_ADAPTERS);
    s->n = n;
    s->base = base;
    for (int i = 0; i < n; i++) {
        s->ad[i] = ads[i];
        s->trains_base |= ads[i]->ops->trains_base;
    }
    // one method per place where an order would matter
    if (has_hook(s, offsetof(AdapterOps, virtual_tokens)) > 1)
        return afx_fail(e, "adapters: two prompt-tuning adapters cannot be combined");
    if (has_hook(s, offsetof(AdapterOps, prefix_len)) > 1)
        return afx_fail(e, "adapters: two prefix-tuning adapters cannot be combined");
    if (s->trains_base && n > 1)
        return afx_fail(e, "adapters: full fine-tuning trains every weight and is not combined with other methods");
    for (int k = 0; k < LT_COUNT && s->trains_base && base; k++)
        if (base->q[k])
            return afx_fail(e, "adapters: full fine-tuning trains every weight, but the base holds some in their file's "
                               "block format (load it with --weights f32)");
    // trainable arena: the parameters of every adapter, contiguous, in order
    size_t count = 0;
    for (int i = 0; i < n; i++)
        if (!ads[i]->ops->trains_base) count += adapter_param_count(ads[i]);
    s->count = count;
    if (count) {
        s->w = calloc(count, sizeof(real));
        s->g = calloc(count, sizeof(real));
        s->m = calloc(count, sizeof(real));
        s->v = calloc(count, sizeof(real));
        if (!s->w || !s->g || !s->m || !s->v) {
            adapter_set_free(s);
            return afx_fail(e, "adapters: out of memory for %zu trainable parameters", count);
        }
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        Adapter *ad = ads[i];
        if (ad->ops->trains_base) continue;
        for (int k = 0; k < ad->n_params; k++) {
            ad->params[k].w = s->w + off;
            ad->params[k].g = s->g + off;
            off += ad->params[k].numel;
        }
    }
    if (s->trains_base) {
        // full fine-tuning: gradients and moments of the base weights, the base's own layout
        if (llama_params_alloc(&s->base_g, &base->cfg, e) || llama_params_alloc(&s->base_m, &base->cfg, e) ||
            llama_params_alloc(&s->base_v, &base->cfg, e)) {
            adapter_set_free(s);
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (ads[i]->ops->bind_base) ads[i]->ops->bind_base(ads[i], base, &s->base_g);
    }
    return 0;
}

int adapter_set_init_params(AdapterSet *s, unsigned long long seed, afx_err *e) {
    AfxRng rng = {seed};
    for (int i = 0; i < s->n; i++)
        if (s->ad[i]->ops->init && s->ad[i]->ops->init(s->ad[i], s->base, &rng, e)) return -1;
    return 0;
}

int adapter_set_bind_acts(AdapterSet *s, int B, int T, afx_err *e) {
    int Tx = adapter_set_tokens(s, T);
    // every adapter's views, declared once: sized here, bound below from the same table
    ArenaView views[AFX_MAX_ADAPTERS][ADAPTER_MAX_VIEWS];
    int nv[AFX_MAX_ADAPTERS];
    size_t bytes = 0, offs[AFX_MAX_ADAPTERS];
    for (int i = 0; i < s->n; i++) {
        nv[i] = s->ad[i]->ops->acts_views ? s->ad[i]->ops->acts_views(s->ad[i], B, T, Tx, views[i]) : 0;
        offs[i] = bytes;
        bytes += (arena_layout(views[i], nv[i], NULL) + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    }
    free(s->acts);
    s->acts = NULL;
    if (bytes) {
        s->acts = arena_alloc(bytes);
        if (!s->acts) return afx_fail(e, "adapters: out of memory for %zu bytes of activations", bytes);
    }
    s->acts_bytes = bytes;
    for (int i = 0; i < s->n; i++) {
        arena_layout(views[i], nv[i], s->acts ? (char *)s->acts + offs[i] : NULL);
        if (s->ad[i]->ops->acts_bound) s->ad[i]->ops->acts_bound(s->ad[i], B, T, Tx);
    }
    s->B = s->hooks.B = B;
    s->T = s->hooks.T = T;
    return 0;
}

void adapter_set_free(AdapterSet *s) {
    free(s->w);
    free(s->g);
    free(s->m);
    free(s->v);
    free(s->acts);
    llama_params_free(&s->base_g);
    llama_params_free(&s->base_m);
    llama_params_free(&s->base_v);
    memset(s, 0, sizeof *s);
}

void adapter_set_zero_grad(AdapterSet *s) {
    if (s->g) memset(s->g, 0, s->count * sizeof(real));
    if (s->base_g.mem) memset(s->base_g.mem, 0, s->base_g.count * sizeof(real));
}

int adapter_set_tokens(const AdapterSet *s, int T) {
    for (int i = 0; i < s->n; i++)
        if (s->ad[i]->ops->virtual_tokens) return T + s->ad[i]->ops->virtual_tokens(s->ad[i]);
    return T;
}

int adapter_set_position_offset(const AdapterSet *s) {
    for (int i = 0; i < s->n; i++)
        if (s->ad[i]->ops->position_offset) return s->ad[i]->ops->position_offset(s->ad[i]);
    return 0;
}

int adapter_set_prefix_len(const AdapterSet *s, int layer) {
    for (int i = 0; i < s->n; i++)
        if (s->ad[i]->ops->prefix_len) return s->ad[i]->ops->prefix_len(s->ad[i], layer);
    return 0;
}

int adapter_set_prefix_exempt(const AdapterSet *s, int layer) {
    for (int i = 0; s && i < s->n; i++)
        if (s->ad[i]->ops->prefix_len && s->ad[i]->ops->prefix_len(s->ad[i], layer))
            return s->ad[i]->ops->prefix_exempt ? s->ad[i]->ops->prefix_exempt(s->ad[i]) : 0;
    return 0;
}

size_t adapter_set_param_count(const AdapterSet *s) {
    size_t n = 0;
    for (int i = 0; i < s->n; i++) n += adapter_param_count(s->ad[i]);
    return n;
}

const AdapterTensor *adapter_set_find_param(const AdapterSet *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->ad[i]->n_params; k++)
            if (!strcmp(s->ad[i]->params[k].name, name)) return &s->ad[i]->params[k];
    return NULL;
}

/* ---- the core's hooks (hooks.h): every adapter's hook at one place, in the order given ---------- */

/* hooks is the set's first member, so the set is found from its hooks */
static AdapterSet *set_of(ModelHooks *h) { return (AdapterSet *)h; }
static const AdapterSet *cset_of(const ModelHooks *h) { return (const AdapterSet *)h; }

#define EACH(s, hook) for (int i = 0; (s) && i < (s)->n; i++) if ((s)->ad[i]->ops->hook)

void adapters_begin_forward(AdapterSet *s, const LlamaParams *w) {
    EACH(s, begin_forward) s->ad[i]->ops->begin_forward(s->ad[i], w);
}
static int h_tokens(const ModelHooks *h, int T) { return adapter_set_tokens(cset_of(h), T); }
static int h_position_offset(const ModelHooks *h) { return adapter_set_position_offset(cset_of(h)); }
static int h_prefix_len(const ModelHooks *h, int layer) { return adapter_set_prefix_len(cset_of(h), layer); }
static int h_prefix_exempt(const ModelHooks *h, int layer) { return adapter_set_prefix_exempt(cset_of(h), layer); }
static int h_bind(ModelHooks *h, int B, int T, afx_err *e) { return adapter_set_bind_acts(set_of(h), B, T, e); }
static void h_begin_forward(ModelHooks *h, const LlamaParams *w) { adapters_begin_forward(set_of(h), w); }
static void h_embed_forward(ModelHooks *h, real *x, int B, int Tx) {
    AdapterSet *s = set_of(h);
    EACH(s, embed_forward) s->ad[i]->ops->embed_forward(s->ad[i], x, B, Tx);
}
static void h_embed_backward(ModelHooks *h, const real *dx, int B, int Tx) {
    AdapterSet *s = set_of(h);
    EACH(s, embed_backward) s->ad[i]->ops->embed_backward(s->ad[i], dx, B, Tx);
}
static void h_kv_forward(ModelHooks *h, int layer, real *kcat, real *vcat, int B, int S) {
    AdapterSet *s = set_of(h);
    EACH(s, kv_forward) s->ad[i]->ops->kv_forward(s->ad[i], layer, kcat, vcat, B, S);
}
static void h_kv_backward(ModelHooks *h, int layer, const real *dkcat, const real *dvcat, int B, int S) {
    AdapterSet *s = set_of(h);
    EACH(s, kv_backward) s->ad[i]->ops->kv_backward(s->ad[i], layer, dkcat, dvcat, B, S);
}
static void h_attn_forward(ModelHooks *h, const LlamaParams *w, int layer, real *att_out, const real *q_rope, int B,
                           int Tx) {
    AdapterSet *s = set_of(h);
    EACH(s, attn_forward) s->ad[i]->ops->attn_forward(s->ad[i], w, layer, att_out, q_rope, B, Tx);
}
static void h_attn_backward(ModelHooks *h, const LlamaParams *w, int layer, real *dq_rope, const real *datt_out,
                            const real *q_rope, int B, int Tx) {
    AdapterSet *s = set_of(h);
    EACH(s, attn_backward) s->ad[i]->ops->attn_backward(s->ad[i], w, layer, dq_rope, datt_out, q_rope, B, Tx);
}
static void h_linear_forward(ModelHooks *h, int layer, lin_site site, real *y, const real *x, int N) {
    AdapterSet *s = set_of(h);
    EACH(s, linear_forward) s->ad[i]->ops->linear_forward(s->ad[i], layer, site, y, x, N);
}
static void h_linear_backward(ModelHooks *h, int layer, lin_site site, real *dx, const real *dy, const real *x,
                              int N) {
    AdapterSet *s = set_of(h);
    EACH(s, linear_backward) s->ad[i]->ops->linear_backward(s->ad[i], layer, site, dx, dy, x, N);
}
static int h_linear_reads(const ModelHooks *h, lin_site site) {
    const AdapterSet *s = cset_of(h);
    EACH(s, linear_backward) if (!s->ad[i]->ops->linear_reads || s->ad[i]->ops->linear_reads(s->ad[i], site)) return 1;
    return 0;
}
static void h_end_backward(ModelHooks *h, const LlamaParams *w) {
    AdapterSet *s = set_of(h);
    EACH(s, end_backward) s->ad[i]->ops->end_backward(s->ad[i], w);
}

const ModelHookOps ADAPTER_SET_HOOKS = {
    .tokens = h_tokens,
    .position_offset = h_position_offset,
    .prefix_len = h_prefix_len,
    .prefix_exempt = h_prefix_exempt,
    .bind = h_bind,
    .begin_forward = h_begin_forward,
    .embed_forward = h_embed_forward,
    .embed_backward = h_embed_backward,
    .kv_forward = h_kv_forward,
    .kv_backward = h_kv_backward,
    .attn_forward = h_attn_forward,
    .attn_backward = h_attn_backward,
    .linear_forward = h_linear_forward,
    .linear_backward = h_linear_backward,
    .linear_reads = h_linear_reads,
    .end_backward = h_end_backward,
};
