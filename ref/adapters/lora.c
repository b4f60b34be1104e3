/* lora.c — LoRA (Hu et al. 2021; PEFT LoraConfig), on any of the seven linear layers of a block.
 *
 * For a targeted linear y = x W^T (W frozen, (OC,IC)) with A (R,IC) and B (OC,R):
 *     y = x W^T + s (x A^T) B^T,      s = alpha/R   (or alpha/sqrt(R) with rsLoRA)
 * Backward, with xa = x A^T (N,R) kept from the forward:
 *     dB += s dy^T xa ;  dxa = s dy B ;  dA += dxa^T x ;  dx += dxa A
 * Init (PEFT): A ~ U(+-1/sqrt(IC)) (kaiming-uniform, a = sqrt 5), B = 0 — so at init the model is
 * unchanged and dA = 0 while dB is not. Merge: W += s B A (unmerge subtracts it).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"

typedef struct {
    LoraOptions o;
    double s;              /* scaling */
    int *idx;              /* (L, LIN_COUNT): parameter index of A (B follows), or -1 */
    int N;                 /* rows of the bound batch (B*Tx) */
    real *xa;              /* (L, LIN_COUNT, N, R) x A^T of every targeted linear */
    real *dxa;             /* (N, R) scratch */
} Lora;

static void site_dims(const LlamaConfig *c, lin_site site, int *IC, int *OC) {
    int C = c->C, QD = c->NH * c->HS, KD = c->NKV * c->HS, FF = c->FF;
    static const int ins[LIN_COUNT] = {0, 0, 0, 1, 0, 0, 2}; /* 0: C, 1: QD, 2: FF */
    int in = ins[site];
    *IC = in == 0 ? C : in == 1 ? QD : FF;
    *OC = site == LIN_Q ? QD : (site == LIN_K || site == LIN_V) ? KD : (site == LIN_O || site == LIN_DOWN) ? C : FF;
}

static int lora_acts_views(Adapter *ad, int B, int T, int Tx, ArenaView *v) {
    Lora *lo = ad->priv;
    (void)T;
    lo->N = B * Tx;
    size_t N = (size_t)lo->N, R = (size_t)lo->o.r;
    v[0] = (ArenaView){(void **)&lo->xa, (size_t)ad->cfg.L * LIN_COUNT * N * R, sizeof(real)}; /* x A^T per site */
    v[1] = (ArenaView){(void **)&lo->dxa, N * R, sizeof(real)};                               /* scratch */
    return 2;
}

static real *xa_of(const Adapter *ad, int layer, lin_site site) {
    const Lora *lo = ad->priv;
    return lo->xa + ((size_t)layer * LIN_COUNT + site) * lo->N * lo->o.r;
}

static void lora_linear_forward(Adapter *ad, int layer, lin_site site, real *y, const real *x, int N) {
    Lora *lo = ad->priv;
    int k = lo->idx[layer * LIN_COUNT + site], R = lo->o.r, IC, OC;
    if (k < 0) return;
    site_dims(&ad->cfg, site, &IC, &OC);
    const real *A = ad->params[k].w, *Bm = ad->params[k + 1].w;
    real *xa = xa_of(ad, layer, site);
    for (int n = 0; n < N; n++) {
        // xa = x A^T (R)
        for (int r = 0; r < R; r++) {
            real acc = 0;
            for (int i = 0; i < IC; i++) acc += x[(size_t)n * IC + i] * A[(size_t)r * IC + i];
            xa[(size_t)n * R + r] = acc;
        }
        // y += s xa B^T (OC)
        for (int o = 0; o < OC; o++) {
            real acc = 0;
            for (int r = 0; r < R; r++) acc += xa[(size_t)n * R + r] * Bm[(size_t)o * R + r];
            y[(size_t)n * OC + o] += (real)(lo->s * acc);
        }
    }
}

static void lora_linear_backward(Adapter *ad, int layer, lin_site site, real *dx, const real *dy, const real *x,
                                 int N) {
    Lora *lo = ad->priv;
    int k = lo->idx[layer * LIN_COUNT + site], R = lo->o.r, IC, OC;
    if (k < 0) return;
    site_dims(&ad->cfg, site, &IC, &OC);
    const real *A = ad->params[k].w, *Bm = ad->params[k + 1].w;
    real *dA = ad->params[k].g, *dB = ad->params[k + 1].g;
    const real *xa = xa_of(ad, layer, site);
    real s = (real)lo->s;
    // dB[o,r] += s sum_n dy[n,o] xa[n,r]
    for (int o = 0; o < OC; o++)
        for (int r = 0; r < R; r++) {
            real acc = 0;
            for (int n = 0; n < N; n++) acc += dy[(size_t)n * OC + o] * xa[(size_t)n * R + r];
            dB[(size_t)o * R + r] += s * acc;
        }
    // dxa[n,r] = s sum_o dy[n,o] B[o,r]
    for (int n = 0; n < N; n++)
        for (int r = 0; r < R; r++) {
            real acc = 0;
            for (int o = 0; o < OC; o++) acc += dy[(size_t)n * OC + o] * Bm[(size_t)o * R + r];
            lo->dxa[(size_t)n * R + r] = s * acc;
        }
    // dA[r,i] += sum_n dxa[n,r] x[n,i] ;  dx[n,i] += sum_r dxa[n,r] A[r,i]
    for (int r = 0; r < R; r++)
        for (int i = 0; i < IC; i++) {
            real acc = 0;
            for (int n = 0; n < N; n++) acc += lo->dxa[(size_t)n * R + r] * x[(size_t)n * IC + i];
            dA[(size_t)r * IC + i] += acc;
        }
    if (dx)
        for (int n = 0; n < N; n++)
            for (int r = 0; r < R; r++) {
                real d = lo->dxa[(size_t)n * R + r];
                for (int i = 0; i < IC; i++) dx[(size_t)n * IC + i] += d * A[(size_t)r * IC + i];
            }
}

void lora_merge(const Adapter *ad, LlamaParams *base, int sign) {
    static const int kind_of[LIN_COUNT] = {LT_WQ, LT_WK, LT_WV, LT_WO, LT_WG, LT_WU, LT_WD};
    const Lora *lo = ad->priv;
    int R = lo->o.r;
    for (int l = 0; l < ad->cfg.L; l++)
        for (int site = 0; site < LIN_COUNT; site++) {
            int k = lo->idx[l * LIN_COUNT + site], IC, OC;
            if (k < 0) continue;
            site_dims(&ad->cfg, (lin_site)site, &IC, &OC);
            const real *A = ad->params[k].w, *Bm = ad->params[k + 1].w;
            real *W = llama_tensor_ptr(base, kind_of[site], l);
            for (int o = 0; o < OC; o++) // W[o,i] +-= s sum_r B[o,r] A[r,i], the delta in double
                for (int i = 0; i < IC; i++) {
                    double d = 0;
                    for (int r = 0; r < R; r++) d += (double)Bm[(size_t)o * R + r] * A[(size_t)r * IC + i];
                    W[(size_t)o * IC + i] = (real)(W[(size_t)o * IC + i] + sign * lo->s * d);
                }
        }
}

/* the A gradient reads x at every site LoRA is on */
static int lora_linear_reads(const Adapter *ad, lin_site site) {
    const Lora *lo = ad->priv;
    for (int l = 0; l < ad->cfg.L; l++)
        if (lo->idx[l * LIN_COUNT + site] >= 0) return 1;
    return 0;
}

static int lora_init(Adapter *ad, const LlamaParams *base, AfxRng *rng, afx_err *e) {
    (void)base, (void)e;
    for (int k = 0; k < ad->n_params; k += 2) {
        AdapterTensor *A = &ad->params[k], *Bm = &ad->params[k + 1];
        double bound = 1.0 / sqrt((double)A->shape[1]);
        for (size_t j = 0; j < A->numel; j++) A->w[j] = (real)(bound * (2 * afx_rng_uniform(rng) - 1));
        memset(Bm->w, 0, Bm->numel * sizeof(real));
    }
    return 0;
}

static void lora_destroy(Adapter *ad) { free(((Lora *)ad->priv)->idx); }

static const AdapterOps LORA_OPS = {
    .method = "lora",
    .init = lora_init,
    .acts_views = lora_acts_views,
    .linear_forward = lora_linear_forward,
    .linear_backward = lora_linear_backward,
    .linear_reads = lora_linear_reads,
    .destroy = lora_destroy,
};

int lora_create(Adapter *ad, const LlamaConfig *c, const LoraOptions *o, afx_err *e) {
    static const char *const module[LIN_COUNT] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                  "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    memset(ad, 0, sizeof *ad);
    if (o->r <= 0) return afx_fail(e, "lora: r must be positive (got %d)", o->r);
    int nt = 0;
    for (int t = 0; t < LIN_COUNT; t++) nt += o->targets[t] != 0;
    if (nt == 0) return afx_fail(e, "lora: no target module");
    Lora *lo = calloc(1, sizeof *lo);
    int *idx = malloc((size_t)c->L * LIN_COUNT * sizeof(int));
    ad->params = calloc(2 * (size_t)c->L * nt, sizeof *ad->params);
    if (!lo || !idx || !ad->params) {
        free(lo);
        free(idx);
        free(ad->params);
        return afx_fail(e, "lora: out of memory");
    }
    lo->o = *o;
    lo->s = o->rslora ? o->alpha / sqrt((double)o->r) : o->alpha / o->r;
    lo->idx = idx;
    ad->ops = &LORA_OPS;
    ad->cfg = *c;
    ad->priv = lo;
    int k = 0;
    for (int l = 0; l < c->L; l++)
        for (int t = 0; t < LIN_COUNT; t++) {
            idx[l * LIN_COUNT + t] = o->targets[t] ? k : -1;
            if (!o->targets[t]) continue;
            int IC, OC;
            site_dims(c, (lin_site)t, &IC, &OC);
            AdapterTensor *A = &ad->params[k++], *Bm = &ad->params[k++];
            snprintf(A->name, sizeof A->name, "model.layers.%d.%s.lora_A.weight", l, module[t]);
            A->ndim = 2, A->shape[0] = (size_t)o->r, A->shape[1] = (size_t)IC, A->numel = (size_t)o->r * IC;
            snprintf(Bm->name, sizeof Bm->name, "model.layers.%d.%s.lora_B.weight", l, module[t]);
            Bm->ndim = 2, Bm->shape[0] = (size_t)OC, Bm->shape[1] = (size_t)o->r, Bm->numel = (size_t)OC * o->r;
        }
    ad->n_params = k;
    return 0;
}
