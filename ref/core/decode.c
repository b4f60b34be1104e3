/* decode.c — the Llama forward with a KV cache, for generation (see decode.h).
 *
 * What it is: llama_forward's layer loop for a chunk of new tokens whose keys and values are
 * appended to a per-layer cache; queries attend to everything cached so far. What it is not: a
 * training path (no activations are kept, nothing here has a backward).
 * Cache rows of one batch row: [prefix keys (P_prefix rows, prefix layers only) | tokens...].
 */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "ops.h"

/* one table drives sizes and carving, as in llama.c */
typedef struct {
    void **slot;
    size_t count, elem;
} Part;

static size_t carve(Part *p, int n, void *mem) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        off = (off + 63) / 64 * 64;
        if (mem) *p[i].slot = (char *)mem + off;
        off += p[i].count * p[i].elem;
    }
    return off;
}

static int cache_parts(LlamaCache *c, Part *p) {
    const LlamaConfig *g = &c->cfg;
    size_t B = c->B, R = (size_t)c->cap + c->P_prefix, Tc = (size_t)c->chunk + c->P_prompt;
    size_t C = g->C, QD = (size_t)g->NH * g->HS, KD = (size_t)g->NKV * g->HS, FF = g->FF;
    int n = 0;
#define ADD(f, cnt, type) p[n++] = (Part){(void **)&c->f, (cnt), sizeof(type)}
    ADD(k, (size_t)g->L * B * R * KD, real);
    ADD(v, (size_t)g->L * B * R * KD, real);
    ADD(keymask, 2 * B * R, int);
    ADD(pos, B * Tc, int);
    ADD(rope_cos, B * Tc * (g->HS / 2), real);
    ADD(rope_sin, B * Tc * (g->HS / 2), real);
    ADD(x, B * Tc * C, real);
    ADD(rstd, B * Tc, real);
    ADD(ln, B * Tc * C, real);
    ADD(q, B * Tc * QD, real);
    ADD(kn, B * Tc * KD, real);
    ADD(vn, B * Tc * KD, real);
    ADD(qr, B * Tc * QD, real);
    ADD(kr, B * Tc * KD, real);
    ADD(att_out, B * Tc * QD, real);
    ADD(o, B * Tc * C, real);
    ADD(gate, B * Tc * FF, real);
    ADD(up, B * Tc * FF, real);
    ADD(sw, B * Tc * FF, real);
    ADD(mlp, B * Tc * C, real);
    ADD(att, (size_t)g->NH * Tc * R, real);
    ADD(logits, B * Tc * (size_t)g->V, real);
#undef ADD
    return n;
}

int llama_cache_alloc(LlamaCache *c, const LlamaConfig *cfg, AdapterSet *s, int B, int cap, int chunk, afx_err *e) {
    memset(c, 0, sizeof *c);
    if (B <= 0 || cap <= 0) return afx_fail(e, "cache: bad shape (B=%d, cap=%d)", B, cap);
    c->cfg = *cfg;
    c->kern = &KERNELS_REF;
    c->B = B;
    c->cap = cap;
    c->chunk = chunk > 0 && chunk < cap ? chunk : cap;
    for (int l = 0; s && l < cfg->L; l++) {
        int p = adapter_set_prefix_len(s, l);
        if (p > c->P_prefix) c->P_prefix = p;
    }
    c->P_prompt = s ? adapter_set_tokens(s, 0) : 0;
    c->cap = cap + c->P_prompt; // virtual tokens take cache rows too
    Part parts[32];
    int n = cache_parts(c, parts);
    size_t bytes = carve(parts, n, NULL);
    c->mem = calloc(1, bytes);
    if (!c->mem) return afx_fail(e, "cache: out of memory for %zu bytes", bytes);
    carve(parts, n, c->mem);
    // adapters keep per-call activations (LoRA, Llama-Adapter): bind them for the largest chunk
    if (s && adapter_set_bind_acts(s, B, c->chunk, e)) {
        llama_cache_free(c);
        return -1;
    }
    llama_cache_reset(c);
    return 0;
}

void llama_cache_free(LlamaCache *c) {
    free(c->mem);
    memset(c, 0, sizeof *c);
}

void llama_cache_reset(LlamaCache *c) {
    c->used = 0;
    c->next_pos = 0;
}

/* the cache of layer l, batch row b */
static real *krow(const LlamaCache *c, real *base, int l, int b) {
    size_t R = (size_t)c->cap + c->P_prefix, KD = (size_t)c->cfg.NKV * c->cfg.HS;
    return base + (((size_t)l * c->B + b) * R) * KD;
}

/* one chunk of Tx rows (virtual tokens first when this is the first call) */
static int decode_chunk(const LlamaParams *w, AdapterSet *s, LlamaCache *c, const int *ids, const int *mask,
                        int T, int Pv, afx_err *e) {
    const LlamaConfig *g = &c->cfg;
    const Kernels *K = c->kern;
    int B = c->B, Tx = Pv + T, L = g->L;
    size_t R = (size_t)c->cap + c->P_prefix, C = g->C, FF = g->FF, N = (size_t)B * Tx;
    size_t QD = (size_t)g->NH * g->HS, KD = (size_t)g->NKV * g->HS, H2 = (size_t)g->HS / 2;
    if (c->used + Tx > (int)R) return afx_fail(e, "decode: the cache holds %d tokens, %d more do not fit", c->cap, Tx);
    int row0 = c->used; // first cache row of this chunk
    // inputs: ids, visibility, positions
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Tx; t++) {
            int real_t = t - Pv, m = real_t < 0 ? 1 : (mask ? mask[(size_t)b * T + real_t] != 0 : 1);
            if (real_t >= 0 && (ids[(size_t)b * T + real_t] < 0 || ids[(size_t)b * T + real_t] >= g->V))
                return afx_fail(e, "decode: token id %d is outside the vocabulary [0,%d)", ids[(size_t)b * T + real_t], g->V);
            c->pos[(size_t)b * Tx + t] = c->next_pos + t;
            c->keymask[(size_t)b * R + row0 + t] = m;     // layers with a prefix
            c->keymask[((size_t)B + b) * R + row0 + t] = m; // layers without
        }
    if (c->next_pos + Tx > g->max_pos)
        return afx_fail(e, "decode: position %d reaches max_position_embeddings %d", c->next_pos + Tx, g->max_pos);
    double inv_freq[512];
    rope_inv_freq(inv_freq, g->HS, g->rope_theta, g->rope_factor, g->rope_low_freq_factor, g->rope_high_freq_factor,
                  g->rope_original_max_position);
    rope_table(c->rope_cos, c->rope_sin, c->pos, inv_freq, (int)N, g->HS);

    for (int b = 0; b < B; b++)
        embedding_forward(c->x + ((size_t)b * Tx + Pv) * C, ids + (size_t)b * T, w->t[LT_EMBED], T, (int)C);
    if (Pv) adapters_embed_forward(s, c->x, B, Tx);

    for (int l = 0; l < L; l++) {
        // attention half
        K->rmsnorm_forward(c->ln, c->rstd, c->x, llama_tensor_ptr(w, LT_LN1, l), (int)N, (int)C, g->eps);
        K->matmul_forward(c->q, c->ln, llama_tensor_ptr(w, LT_WQ, l), (int)N, (int)C, (int)QD);
        adapters_linear_forward(s, l, LIN_Q, c->q, c->ln, (int)N);
        K->matmul_forward(c->kn, c->ln, llama_tensor_ptr(w, LT_WK, l), (int)N, (int)C, (int)KD);
        adapters_linear_forward(s, l, LIN_K, c->kn, c->ln, (int)N);
        K->matmul_forward(c->vn, c->ln, llama_tensor_ptr(w, LT_WV, l), (int)N, (int)C, (int)KD);
        adapters_linear_forward(s, l, LIN_V, c->vn, c->ln, (int)N);
        K->rope_forward(c->qr, c->q, c->rope_cos, c->rope_sin, (int)N, g->NH, g->HS);
        K->rope_forward(c->kr, c->kn, c->rope_cos, c->rope_sin, (int)N, g->NKV, g->HS);
        int has_prefix = s && adapter_set_prefix_len(s, l) > 0;
        const int *km = c->keymask + (has_prefix ? 0 : (size_t)B * R);
        int S = row0 + Tx;
        for (int b = 0; b < B; b++) {
            // append this chunk's rotated keys and values, then attend to every cached row
            memcpy(krow(c, c->k, l, b) + (size_t)row0 * KD, c->kr + (size_t)b * Tx * KD, (size_t)Tx * KD * sizeof(real));
            memcpy(krow(c, c->v, l, b) + (size_t)row0 * KD, c->vn + (size_t)b * Tx * KD, (size_t)Tx * KD * sizeof(real));
            K->attention_forward(c->att_out + (size_t)b * Tx * QD, c->att, c->qr + (size_t)b * Tx * QD, krow(c, c->k, l, b),
                              krow(c, c->v, l, b), km + (size_t)b * R, 1, Tx, S, g->NH, g->NKV, g->HS);
        }
        adapters_attn_forward(s, w, l, c->att_out, c->qr, B, Tx);
        K->matmul_forward(c->o, c->att_out, llama_tensor_ptr(w, LT_WO, l), (int)N, (int)QD, (int)C);
        adapters_linear_forward(s, l, LIN_O, c->o, c->att_out, (int)N);
        residual_forward(c->x, c->x, c->o, N * C);
        // MLP half
        K->rmsnorm_forward(c->ln, c->rstd, c->x, llama_tensor_ptr(w, LT_LN2, l), (int)N, (int)C, g->eps);
        K->matmul_forward(c->gate, c->ln, llama_tensor_ptr(w, LT_WG, l), (int)N, (int)C, (int)FF);
        adapters_linear_forward(s, l, LIN_GATE, c->gate, c->ln, (int)N);
        K->matmul_forward(c->up, c->ln, llama_tensor_ptr(w, LT_WU, l), (int)N, (int)C, (int)FF);
        adapters_linear_forward(s, l, LIN_UP, c->up, c->ln, (int)N);
        K->swiglu_forward(c->sw, c->gate, c->up, N * FF);
        K->matmul_forward(c->mlp, c->sw, llama_tensor_ptr(w, LT_WD, l), (int)N, (int)FF, (int)C);
        adapters_linear_forward(s, l, LIN_DOWN, c->mlp, c->sw, (int)N);
        residual_forward(c->x, c->x, c->mlp, N * C);
    }
    K->rmsnorm_forward(c->ln, c->rstd, c->x, w->t[LT_LNF], (int)N, (int)C, g->eps);
    K->matmul_forward(c->logits, c->ln, w->t[LT_LM_HEAD], (int)N, (int)C, g->V);
    c->used += Tx;
    c->next_pos += Tx;
    (void)H2;
    return 0;
}

int llama_decode(const LlamaParams *w, AdapterSet *s, LlamaCache *c, const int *ids, const int *mask, int T,
                 const real **last, int *Tc, afx_err *e) {
    if (T <= 0) return afx_fail(e, "decode: no tokens");
    int first = c->used == 0;
    if (first) {
        // a new sequence: prefix rows first (layers without a prefix see them masked out)
        int Pp = c->P_prefix, B = c->B;
        size_t R = (size_t)c->cap + Pp;
        if (Pp) {
            adapters_begin_forward(s, w);
            for (int l = 0; l < c->cfg.L; l++)
                for (int b = 0; b < B; b++)
                    if (adapter_set_prefix_len(s, l)) adapters_kv_forward(s, l, krow(c, c->k, l, b), krow(c, c->v, l, b), 1, (int)R);
            for (int b = 0; b < B; b++)
                for (int r = 0; r < Pp; r++) {
                    c->keymask[(size_t)b * R + r] = 1;
                    c->keymask[((size_t)B + b) * R + r] = 0;
                }
        } else if (s) {
            adapters_begin_forward(s, w);
        }
        c->used = Pp;
        c->next_pos = s ? adapter_set_position_offset(s) : 0;
    }
    // split T into chunks; the virtual tokens of a prompt ride with the first one
    int done = 0, Pv = first ? c->P_prompt : 0, n = 0;
    while (done < T) {
        n = T - done < c->chunk ? T - done : c->chunk;
        int *sub_ids = NULL, *sub_mask = NULL;
        if (c->B > 1 && n != T) { // rows of a (B,T) array are not contiguous in a chunk: copy
            sub_ids = malloc((size_t)c->B * n * sizeof(int));
            sub_mask = mask ? malloc((size_t)c->B * n * sizeof(int)) : NULL;
            if (!sub_ids || (mask && !sub_mask)) { free(sub_ids); free(sub_mask); return afx_fail(e, "decode: out of memory"); }
            for (int b = 0; b < c->B; b++) {
                memcpy(sub_ids + (size_t)b * n, ids + (size_t)b * T + done, (size_t)n * sizeof(int));
                if (mask) memcpy(sub_mask + (size_t)b * n, mask + (size_t)b * T + done, (size_t)n * sizeof(int));
            }
        }
        int rc = decode_chunk(w, s, c, sub_ids ? sub_ids : ids + done, sub_ids ? sub_mask : (mask ? mask + done : NULL),
                              n, Pv, e);
        free(sub_ids);
        free(sub_mask);
        if (rc) return -1;
        done += n;
        n += Pv;
        Pv = 0;
    }
    if (Tc) *Tc = n;
    if (last) *last = c->logits + (size_t)(n - 1) * c->cfg.V;
    return 0;
}
