/* train.c — the library training step (see train.h). */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TrainSet train_trainable(AdapterSet *s) {
    if (s->trains_base) return (TrainSet){s->base->mem, s->base_g.mem, s->base_m.mem, s->base_v.mem, s->base->count};
    return (TrainSet){s->w, s->g, s->m, s->v, s->count};
}

void train_workspace_free(TrainWorkspace *ws) {
    free(ws->acts);
    free(ws->grads);
    free(ws->gsum);
    *ws = (TrainWorkspace){0};
}

static int workspace_fit(TrainWorkspace *ws, size_t acts_bytes, size_t grads_bytes, afx_err *e) {
    if (acts_bytes > ws->acts_cap) {
        free(ws->acts);
        ws->acts = arena_alloc(acts_bytes);
        ws->acts_cap = ws->acts ? acts_bytes : 0;
    }
    if (grads_bytes > ws->grads_cap) {
        free(ws->grads);
        ws->grads = arena_alloc(grads_bytes);
        ws->grads_cap = ws->grads ? grads_bytes : 0;
    }
    if (!ws->acts || (grads_bytes && !ws->grads))
        return afx_fail(e, "out of memory for %zu bytes of activations", acts_bytes + grads_bytes);
    return 0;
}

int train_batch(const LlamaParams *w, AdapterSet *s, TrainWorkspace *ws, const Kernels *k, const TrainBatch *b,
                int backward, double scale, double *loss_sum, long *count, afx_err *e) {
    const LlamaConfig *c = &w->cfg;
    ModelHooks *h = adapter_hooks(s);
    LlamaActs a;
    LlamaActGrads da;
    if (s && adapter_set_bind_acts(s, b->B, b->T, e)) return -1;
    // logits only on the rows whose target is kept: lm_head (V wide) is most of a small model's work
    long rows = llama_count_targets(b->labels, b->B, b->T, hooks_tokens(h, b->T) - b->T);
    if (rows > (long)b->B * (b->T + 1)) return afx_fail(e, "train batch: %ld targets in a (%d,%d) batch", rows, b->B, b->T);
    int cap = rows > 0 ? (int)rows : 1;
    // a frozen lm_head runs in chunks with its loss: no (rows, V) logits or gradient buffer
    int chunk = backward && !(s && s->trains_base) ? LLAMA_HEAD_CHUNK : 0;
    // and the views the backward does not read are not kept per layer
    unsigned lay = backward ? LLAMA_ACTS_TRAIN | (s && s->trains_base ? 0 : LLAMA_ACTS_FROZEN) : 0;
    size_t ab = llama_acts_bytes_chunk(c, h, b->B, b->T, cap, chunk, lay);
    size_t gb = backward ? llama_actgrads_count_chunk(c, h, b->B, b->T, cap, chunk) * sizeof(real) : 0;
    if (workspace_fit(ws, ab, gb, e)) return -1;
    llama_acts_bind_chunk(&a, c, h, b->B, b->T, cap, chunk, lay, ws->acts);
    a.kern = k;
    if (llama_select_rows(&a, b->labels, b->B, b->T, e) || llama_forward(w, h, &a, b->ids, b->mask, NULL, b->B, b->T, e) ||
        llama_loss(&a, b->labels, b->B, b->T, loss_sum, count, e))
        return -1;
    if (!backward) return 0;
    llama_actgrads_bind_chunk(&da, c, h, b->B, b->T, cap, chunk, ws->grads);
    return llama_backward(w, s && s->trains_base ? &s->base_g : NULL, h, &a, &da, b->labels, scale, b->B, b->T, e);
}


int train_step(const LlamaParams *w, AdapterSet *s, TrainWorkspace *ws, const Kernels *k, const TrainBatch *mb,
               int n_mb, const AdamWConfig *ac, double clip, long t, TrainStepResult *r, afx_err *e) {
    return train_step_comm(w, s, ws, k, mb, n_mb, NULL, ac, clip, t, r, e);
}

int train_step_comm(const LlamaParams *w, AdapterSet *s, TrainWorkspace *ws, const Kernels *k, const TrainBatch *mb,
                    int n_mb, const TrainComm *comm, const AdamWConfig *ac, double clip, long t, TrainStepResult *r,
                    afx_err *e) {
    if (n_mb < 1) return afx_fail(e, "train step: no micro-batch");
    TrainSet tr = train_trainable(s);
    long targets = 0;
    ModelHooks *h = adapter_hooks(s);
    for (int i = 0; i < n_mb; i++) targets += llama_count_targets(mb[i].labels, mb[i].B, mb[i].T, hooks_tokens(h, mb[i].T) - mb[i].T);
    if (comm && comm->sum_count(comm->ctx, &targets, e)) return -1; // the global batch's targets
    double scale = targets ? 1.0 / (double)targets : 0, loss_sum = 0;
    if (n_mb > 1 && ws->gsum_cap < tr.n) {
        free(ws->gsum);
        ws->gsum = arena_alloc(tr.n * sizeof(real));
        ws->gsum_cap = ws->gsum ? tr.n : 0;
        if (!ws->gsum) return afx_fail(e, "out of memory for the %zu gradient values of %d micro-batches", tr.n, n_mb);
    }
    adapter_set_zero_grad(s);
    for (int i = 0; i < n_mb; i++) {
        double ls;
        long cnt;
        if (i > 0) { // keep the sum so far; this micro-batch's gradient starts from zero
            memcpy(ws->gsum, tr.g, tr.n * sizeof(real));
            memset(tr.g, 0, tr.n * sizeof(real));
        }
        if (train_batch(w, s, ws, k, &mb[i], 1, scale, &ls, &cnt, e)) return -1;
        if (i > 0) { // g = (g_0 + ... + g_{i-1}) + g_i
            real *g = tr.g;
            const real *sum = ws->gsum;
#pragma omp parallel for schedule(static) if (tr.n > 65536)
            for (size_t j = 0; j < tr.n; j++) g[j] = sum[j] + g[j];
        }
        loss_sum += ls;
    }
    if (comm && comm->sum_grads(comm->ctx, tr.g, tr.n, &loss_sum, e)) return -1;
    r->targets = targets;
    r->loss = targets ? loss_sum / (double)targets : 0;
    r->grad_norm = grad_norm(tr.g, tr.n);
    r->finite = isfinite(r->loss) && isfinite(r->grad_norm);
    r->params_ok = 1, r->param_norm = r->param_max = NAN;
    if (!r->finite) return 0; // the caller decides what a non-finite step means; nothing changed
    if (clip > 0) grad_clip(tr.g, tr.n, clip, r->grad_norm);
    adamw_step(tr.w, tr.g, tr.m, tr.v, tr.n, ac, t);
    r->params_ok = train_params_check(tr.w, tr.n, TRAIN_PARAM_MAX, &r->param_norm, &r->param_max);
    return 0;
}

int train_params_check(const real *w, size_t n, double max_abs, double *norm, double *absmax) {
    double mx = 0;
    int nan = 0;
#pragma omp parallel for reduction(max : mx) reduction(| : nan) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) { // the max and the NaN flag do not depend on the order
        double x = fabs((double)w[i]);
        nan |= x != x;
        if (x > mx) mx = x;
    }
    if (nan) mx = NAN;
    *norm = sqrt(sum_squares(w, n)); // (chunked: the same value for any number of threads)
    *absmax = mx;
    return !nan && isfinite(mx) && mx <= max_abs;
}
