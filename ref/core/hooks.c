/* hooks.c — NULL-safe dispatch of the model's hooks (hooks.h): a NULL set, or a set whose method
 * lacks a hook, leaves the model unchanged. */
#include "hooks.h"

const char *const LIN_SITE_NAMES[LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};

#define HAS(f) (h && h->ops && h->ops->f)

int hooks_tokens(const ModelHooks *h, int T) { return HAS(tokens) ? h->ops->tokens(h, T) : T; }
int hooks_position_offset(const ModelHooks *h) { return HAS(position_offset) ? h->ops->position_offset(h) : 0; }
int hooks_prefix_len(const ModelHooks *h, int layer) { return HAS(prefix_len) ? h->ops->prefix_len(h, layer) : 0; }
int hooks_prefix_exempt(const ModelHooks *h, int layer) {
    return HAS(prefix_exempt) ? h->ops->prefix_exempt(h, layer) : 0;
}
int hooks_bind(ModelHooks *h, int B, int T, afx_err *e) { return HAS(bind) ? h->ops->bind(h, B, T, e) : 0; }
void hooks_begin_forward(ModelHooks *h, const LlamaParams *w) {
    if (HAS(begin_forward)) h->ops->begin_forward(h, w);
}
void hooks_embed_forward(ModelHooks *h, real *x, int B, int Tx) {
    if (HAS(embed_forward)) h->ops->embed_forward(h, x, B, Tx);
}
void hooks_embed_backward(ModelHooks *h, const real *dx, int B, int Tx) {
    if (HAS(embed_backward)) h->ops->embed_backward(h, dx, B, Tx);
}
void hooks_kv_forward(ModelHooks *h, int layer, real *kcat, real *vcat, int B, int S) {
    if (HAS(kv_forward)) h->ops->kv_forward(h, layer, kcat, vcat, B, S);
}
void hooks_kv_backward(ModelHooks *h, int layer, const real *dkcat, const real *dvcat, int B, int S) {
    if (HAS(kv_backward)) h->ops->kv_backward(h, layer, dkcat, dvcat, B, S);
}
void hooks_attn_forward(ModelHooks *h, const LlamaParams *w, int layer, real *att_out, const real *q_rope, int B,
                        int Tx) {
    if (HAS(attn_forward)) h->ops->attn_forward(h, w, layer, att_out, q_rope, B, Tx);
}
void hooks_attn_backward(ModelHooks *h, const LlamaParams *w, int layer, real *dq_rope, const real *datt_out,
                         const real *q_rope, int B, int Tx) {
    if (HAS(attn_backward)) h->ops->attn_backward(h, w, layer, dq_rope, datt_out, q_rope, B, Tx);
}
void hooks_linear_forward(ModelHooks *h, int layer, lin_site site, real *y, const real *x, int N) {
    if (HAS(linear_forward)) h->ops->linear_forward(h, layer, site, y, x, N);
}
void hooks_linear_backward(ModelHooks *h, int layer, lin_site site, real *dx, const real *dy, const real *x, int N) {
    if (HAS(linear_backward)) h->ops->linear_backward(h, layer, site, dx, dy, x, N);
}
int hooks_linear_reads(const ModelHooks *h, lin_site site) {
    if (HAS(linear_reads)) return h->ops->linear_reads(h, site);
    return HAS(linear_backward); // (a backward that does not say: assume it reads x)
}
void hooks_end_backward(ModelHooks *h, const LlamaParams *w) {
    if (HAS(end_backward)) h->ops->end_backward(h, w);
}
