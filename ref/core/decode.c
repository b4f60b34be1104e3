/* decode.c — the model forward with a KV cache, for generation (see decode.h).
 *
 * What it is: the block of block.c over a chunk of new tokens whose keys and values are appended
 * to a per-layer cache; queries attend to everything cached so far (a sliding layer: to its
 * window). What it is not: a training path (no activations are kept, nothing here has a backward).
 * Cache rows of one batch row: [prefix keys (P_prefix rows, prefix layers only) | tokens...].
 */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "arena.h"
#include "block.h"
#include "ops.h"

static int cache_parts(LlamaCache *c, ArenaView *p) {
    const LlamaConfig *g = &c->cfg;
    size_t B = c->B, R = (size_t)c->cap + c->P_prefix, Tc = (size_t)c->chunk + c->P_prompt;
    size_t C = g->C, QD = (size_t)g->NH * g->HS, KD = (size_t)g->NKV * g->HS, FF = g->FF;
    size_t G = g->arch == AFX_ARCH_GEMMA3, H2 = (size_t)g->HS / 2;
    int n = 0;
#define ADD(f, cnt, type) p[n++] = (ArenaView){(void **)&c->f, (cnt), sizeof(type)}
    ADD(k, (size_t)g->L * B * R * KD, real);
    ADD(v, (size_t)g->L * B * R * KD, real);
    ADD(keymask, B * R, int);
    ADD(pos, B * Tc, int);
    ADD(rope_cos, B * Tc * H2, real);
    ADD(rope_sin, B * Tc * H2, real);
    ADD(rope_lcos, G * B * Tc * H2, real);
    ADD(rope_lsin, G * B * Tc * H2, real);
    ADD(normg, llama_norm_count(g), real);
    ADD(x, B * Tc * C, real);
    ADD(rstd, B * Tc, real);
    ADD(ln, B * Tc * C, real);
    ADD(q, B * Tc * QD, real);
    ADD(kp, B * Tc * KD, real);
    ADD(vp, B * Tc * KD, real);
    ADD(qn, G * B * Tc * QD, real);
    ADD(qn_rstd, G * B * Tc * g->NH, real);
    ADD(kn, G * B * Tc * KD, real);
    ADD(kn_rstd, G * B * Tc * g->NKV, real);
    ADD(qr, B * Tc * QD, real);
    ADD(kr, B * Tc * KD, real);
    ADD(att_out, B * Tc * QD, real);
    ADD(o, B * Tc * C, real);
    ADD(on, G * B * Tc * C, real);
    ADD(on_rstd, G * B * Tc, real);
    ADD(gate, B * Tc * FF, real);
    ADD(up, B * Tc * FF, real);
    ADD(sw, B * Tc * FF, real);
    ADD(mlp, B * Tc * C, real);
    ADD(mn, G * B * Tc * C, real);
    ADD(mn_rstd, G * B * Tc, real);
    ADD(lse, (size_t)g->NH * Tc, real);
    ADD(logits, B * Tc * (size_t)g->V, real);
#undef ADD
    return n;
}

int llama_cache_alloc(LlamaCache *c, const LlamaConfig *cfg, ModelHooks *s, int B, int cap, int chunk, afx_err *e) {
    memset(c, 0, sizeof *c);
    if (B <= 0 || cap <= 0) return afx_fail(e, "cache: bad shape (B=%d, cap=%d)", B, cap);
    c->cfg = *cfg;
    c->kern = &KERNELS_REF;
    c->B = B;
    c->cap = cap;
    c->chunk = chunk > 0 && chunk < cap ? chunk : cap;
    for (int l = 0; s && l < cfg->L; l++) {
        int p = hooks_prefix_len(s, l);
        if (p > c->P_prefix) c->P_prefix = p;
    }
    c->P_prompt = s ? hooks_tokens(s, 0) : 0;
    c->cap = cap + c->P_prompt; // virtual tokens take cache rows too
    ArenaView parts[48];
    int n = cache_parts(c, parts);
    size_t bytes = arena_layout(parts, n, NULL);
    c->mem = arena_alloc(bytes);
    if (!c->mem) return afx_fail(e, "cache: out of memory for %zu bytes", bytes);
    arena_layout(parts, n, c->mem);
    // adapters keep per-call activations (LoRA, Llama-Adapter): bind them for the largest chunk
    if (s && hooks_bind(s, B, c->chunk, e)) {
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

int llama_cache_rewind(LlamaCache *c, int used, int next_pos, afx_err *e) {
    if (used < 0 || used > c->used || next_pos < 0 || next_pos > c->next_pos || (used == 0 && next_pos != 0))
        return afx_fail(e, "decode: cannot rewind to %d rows (position %d) from %d rows", used, next_pos, c->used);
    c->used = used;
    c->next_pos = next_pos;
    return 0;
}

/* the cache of layer l, batch row b */
static real *krow(const LlamaCache *c, real *base, int l, int b) {
    size_t R = (size_t)c->cap + c->P_prefix, KD = (size_t)c->cfg.NKV * c->cfg.HS;
    return base + (((size_t)l * c->B + b) * R) * KD;
}

/* layer l in decoding: the shared scratch, and the layer's cache rows from slot row0 on; a layer with a
 * prefix attends to its prefix slots 0..P_prefix-1, one without starts after them */
typedef struct {
    LlamaCache *c;
    ModelHooks *s;
    int row0, Tx, Pv;
} DecodePlace;

static void decode_place(void *ctx, int l, BlockActs *ba, KeyStore *ks) {
    DecodePlace *dp = ctx;
    LlamaCache *c = dp->c;
    if (c->observe) c->observe(c->observe_ctx, l, c->x, c->B, dp->Tx, dp->Pv); // layer l's input
    *ba = (BlockActs){.ln1 = c->ln, .ln1_rstd = c->rstd, .q = c->q, .k = c->kp, .v = c->vp,
                      .qn = c->qn, .qn_rstd = c->qn_rstd, .kn = c->kn, .kn_rstd = c->kn_rstd, .qr = c->qr, .kr = c->kr,
                      .lse = c->lse, .lse_shared = 1, .att_out = c->att_out, .o = c->o, .on = c->on, .on_rstd = c->on_rstd,
                      .res1 = c->x, .ln2 = c->ln, .ln2_rstd = c->rstd, .gate = c->gate, .up = c->up, .act = c->sw,
                      .mlp = c->mlp, .mn = c->mn, .mn_rstd = c->mn_rstd, .out = c->x};
    int Pl = hooks_prefix_len(dp->s, l), skip = Pl > 0 ? 0 : c->P_prefix, R = c->cap + c->P_prefix;
    size_t KD = (size_t)c->cfg.NKV * c->cfg.HS;
    *ks = (KeyStore){krow(c, c->k, l, 0) + (size_t)skip * KD, krow(c, c->v, l, 0) + (size_t)skip * KD,
                     c->keymask + skip, R, dp->row0 - skip, Pl > 0 && hooks_prefix_exempt(dp->s, l) ? Pl : 0};
}

/* one chunk of Tx rows (virtual tokens first when this is the first call) */
static int decode_chunk(const LlamaParams *w, ModelHooks *s, LlamaCache *c, const int *ids, const int *mask,
                        int T, int Pv, int last_chunk, afx_err *e) {
    const LlamaConfig *g = &c->cfg;
    int B = c->B, Tx = Pv + T, R = c->cap + c->P_prefix;
    size_t C = g->C, N = (size_t)B * Tx;
    if (c->used + Tx > R) return afx_fail(e, "decode: the cache holds %d tokens, %d more do not fit", c->cap, Tx);
    int row0 = c->used; // first cache slot of this chunk
    // inputs: ids, visibility, positions
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Tx; t++) {
            int real_t = t - Pv, m = real_t < 0 ? 1 : (mask ? mask[(size_t)b * T + real_t] != 0 : 1);
            if (real_t >= 0 && (ids[(size_t)b * T + real_t] < 0 || ids[(size_t)b * T + real_t] >= g->V))
                return afx_fail(e, "decode: token id %d is outside the vocabulary [0,%d)", ids[(size_t)b * T + real_t], g->V);
            c->pos[(size_t)b * Tx + t] = c->next_pos + t;
            c->keymask[(size_t)b * R + row0 + t] = m;
        }
    if (c->next_pos + Tx > g->max_pos)
        return afx_fail(e, "decode: position %d reaches max_position_embeddings %d", c->next_pos + Tx, g->max_pos);
    if (llama_rope_tables(g, c->pos, (int)N, c->rope_cos, c->rope_sin, c->rope_lcos, c->rope_lsin))
        return afx_fail(e, "decode: head_dim %d above the supported 1024", g->HS);
    if (c->normg) llama_norm_fill(c->normg, w);

    real es = llama_embed_scale(g);
    for (int b = 0; b < B; b++) {
        real *xb = c->x + ((size_t)b * Tx + Pv) * C;
        llama_embed_rows(w, ids + (size_t)b * T, T, xb);
        if (es != 1)
            for (size_t i = 0; i < (size_t)T * C; i++) xb[i] *= es;
    }
    if (Pv) hooks_embed_forward(s, c->x, B, Tx);

    // the block over every layer: one scratch set, the residual stream updated in place, keys in the cache
    BlockRun run = {c->kern, w, c->normg, c->rope_cos, c->rope_sin, c->rope_lcos, c->rope_lsin, s, B, Tx};
    DecodePlace dp = {c, s, row0, Tx, Pv};
    blocks_forward(&run, c->x, decode_place, &dp);
    if (c->observe) c->observe(c->observe_ctx, g->L, c->x, B, Tx, Pv);
    if (c->last_only && last_chunk) { // the final norm and lm_head only where the logits are read
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)b * Tx + Tx - 1;
            c->kern->rmsnorm_forward(c->ln + r * C, c->rstd + r, c->x + r * C, block_norm(&run, LT_LNF, 0), 1, (int)C, g->eps);
            if (!llama_tensor_q(w, LT_LM_HEAD, 0))
                c->kern->matmul_forward(c->logits + r * g->V, c->ln + r * C, w->t[LT_LM_HEAD], 1, (int)C, g->V);
            else if (r != (size_t)b) // a kept lm_head is decoded once for all B rows: gather them first
                memcpy(c->ln + (size_t)b * C, c->ln + r * C, C * sizeof(real));
        }
        if (llama_tensor_q(w, LT_LM_HEAD, 0)) { // rows 0..B-1, then each to its place (last first: no overlap)
            c->kern->qmatmul_forward(c->logits, c->ln, llama_tensor_q(w, LT_LM_HEAD, 0), B);
            for (int b = B - 1; b >= 0 && Tx > 1; b--)
                memmove(c->logits + ((size_t)b * Tx + Tx - 1) * g->V, c->logits + (size_t)b * g->V, (size_t)g->V * sizeof(real));
        }
    } else if (last_chunk) {
        c->kern->rmsnorm_forward(c->ln, c->rstd, c->x, block_norm(&run, LT_LNF, 0), (int)N, (int)C, g->eps);
        llama_linear_forward(c->kern, w, LT_LM_HEAD, 0, c->logits, c->ln, (int)N, (int)C, g->V);
    }
    c->used += Tx;
    c->next_pos += Tx;
    return 0;
}

int llama_decode(const LlamaParams *w, ModelHooks *s, LlamaCache *c, const int *ids, const int *mask, int T,
                 const real **last, int *Tc, afx_err *e) {
    if (T <= 0) return afx_fail(e, "decode: no tokens");
    int first = c->used == 0;
    if (first) {
        // a new sequence: prefix rows first (layers without a prefix see them masked out)
        int Pp = c->P_prefix, B = c->B;
        size_t R = (size_t)c->cap + Pp;
        if (Pp) {
            hooks_begin_forward(s, w);
            for (int l = 0; l < c->cfg.L; l++)
                for (int b = 0; b < B; b++)
                    if (hooks_prefix_len(s, l)) hooks_kv_forward(s, l, krow(c, c->k, l, b), krow(c, c->v, l, b), 1, (int)R);
            for (int b = 0; b < B; b++)
                for (int r = 0; r < Pp; r++) c->keymask[(size_t)b * R + r] = 1;
        } else if (s) {
            hooks_begin_forward(s, w);
        }
        c->used = Pp;
        c->next_pos = s ? hooks_position_offset(s) : 0;
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
                              n, Pv, done + n == T, e);
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
