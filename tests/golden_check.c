/* golden_check.c — one golden case through the reference, every stored tensor compared.
 *
 * Order of a case: load config (metadata) + weights + inputs; forward and compare every activation;
 * loss (both reductions); backward and compare every weight gradient; AdamW steps 1 and 2 from the
 * golden gradients; clipping; greedy generation. Finally every tensor in the file must have been
 * compared — a golden tensor nobody checks is an error, not a pass.
 */
#include "golden_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "llama.h"
#include "optim.h"
#include "safetensors.h"
#include "weights.h"

double golden_tol(int family) {
#ifdef AFFIX_F64
    return TOLERANCES[family].f64;
#else
    return TOLERANCES[family].f32;
#endif
}

typedef struct {
    st_file f;
    const char *path;
    char label[128];    /* "config.case" */
    unsigned char *used; /* one flag per golden tensor */
    golden_tally *t;
    afx_err *e;
    int broken; /* a structural problem (missing tensor, wrong shape) was found */
} Ctx;

/* The golden tensor `name`, which must have exactly the given shape. */
static const st_tensor *need(Ctx *x, const char *name, int ndim, const long *shape) {
    const st_tensor *s = st_find(&x->f, name);
    if (!s) {
        afx_fail(x->e, "%s: golden tensor '%s' is missing", x->path, name);
        x->broken = 1;
        return NULL;
    }
    int ok = s->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = s->shape[i] == shape[i];
    if (!ok) {
        char a[96] = "", b[96] = "";
        for (int i = 0; i < s->ndim; i++)
            snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", i ? "," : "", (long long)s->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(b + strlen(b), sizeof b - strlen(b), "%s%ld", i ? "," : "", shape[i]);
        afx_fail(x->e, "%s: golden tensor '%s' has shape [%s], expected [%s]", x->path, name, a, b);
        x->broken = 1;
        return NULL;
    }
    x->used[s - x->f.tensors] = 1;
    return s;
}

/* Compare n values of got with golden tensor `name` under a family's metric; record the result. */
static void compare(Ctx *x, int family, const char *name, const real *got, int ndim, const long *shape) {
    const st_tensor *s = need(x, name, ndim, shape);
    if (!s) { x->t->fail++; return; }
    size_t n = s->numel;
    double *ref = malloc((n ? n : 1) * sizeof(double));
    if (!ref || st_to_f64(s, ref, x->e)) {
        free(ref);
        x->broken = 1;
        x->t->fail++;
        return;
    }
    double maxabs = 0, worst_abs = 0, worst = 0;
    for (size_t i = 0; i < n; i++) if (fabs(ref[i]) > maxabs) maxabs = fabs(ref[i]);
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!isfinite((double)got[i])) finite = 0;
        if (d > worst_abs) worst_abs = d;
        double m;
        if (family == FAM_GRAD || family == FAM_CLIP) m = d / (maxabs > 0 ? maxabs : 1e-300);
        else if (family == FAM_LOSS) m = d / (fabs(ref[i]) > 0 ? fabs(ref[i]) : 1e-300);
        else m = d / (fabs(ref[i]) > 1 ? fabs(ref[i]) : 1);
        if (m > worst) worst = m;
    }
    if (!finite) worst = INFINITY;
    free(ref);
    double tol = golden_tol(family);
    int ok = worst <= tol; // NaN/Inf never pass
    if (ok) x->t->pass++; else x->t->fail++;
    if (worst > x->t->worst[family] || !finite) x->t->worst[family] = worst;
    if ((!ok || x->t->verbose) && !x->t->quiet)
        printf("  %s  %-22s %-40s worst abs %.3e  %s %.3e  (tol %.0e)\n", ok ? "ok  " : "FAIL",
               x->label, name, worst_abs, TOLERANCES[family].metric, worst, tol);
}

static int load_ints(Ctx *x, const char *name, int *out, int B, int T) {
    long shape[2] = {B, T};
    const st_tensor *s = need(x, name, 2, shape);
    if (!s) return -1;
    return st_to_int(s, out, x->e);
}

/* compare all weight-shaped golden tensors "<prefix><hf name>" against p */
static void compare_params(Ctx *x, int family, const char *prefix, const LlamaParams *p) {
    const LlamaConfig *c = &p->cfg;
    for (int kind = 0; kind < LT_COUNT; kind++) {
        int nl = llama_tensor_is_per_layer(kind) ? c->L : 1;
        for (int l = 0; l < nl; l++) {
            char hf[160], name[200];
            size_t shp[2];
            int nd;
            if (llama_tensor_info(c, kind, l, hf, sizeof hf, shp, &nd)) continue;
            snprintf(name, sizeof name, "%s%s", prefix, hf);
            long shape[2] = {(long)shp[0], (long)shp[1]};
            compare(x, family, name, llama_tensor_ptr(p, kind, l), nd, shape);
        }
    }
}

static void compare_scalar(Ctx *x, int family, const char *name, double v) {
    real r = (real)v;
    compare(x, family, name, &r, 0, NULL);
}

/* greedy generation by full recompute (no cache yet), compared id for id */
static void check_generation(Ctx *x, const LlamaParams *w) {
    const st_tensor *sp = st_find(&x->f, "gen.prompt"), *si = st_find(&x->f, "gen.ids");
    if (!sp || !si || sp->ndim != 1 || si->ndim != 1) {
        afx_fail(x->e, "%s: gen.prompt/gen.ids missing or not 1-D", x->path);
        x->broken = 1;
        return;
    }
    x->used[sp - x->f.tensors] = x->used[si - x->f.tensors] = 1;
    int np = (int)sp->numel, ng = (int)si->numel;
    int *ids = malloc(sizeof(int) * (size_t)(np + ng)), *want = malloc(sizeof(int) * (size_t)(ng ? ng : 1));
    if (!ids || !want || st_to_int(sp, ids, x->e) || st_to_int(si, want, x->e)) {
        free(ids); free(want);
        x->broken = 1;
        return;
    }
    int ok = 1;
    for (int i = 0; i < ng && ok; i++) {
        int T = np + i;
        LlamaActs a;
        if (llama_acts_alloc(&a, &w->cfg, 1, T, x->e) || llama_forward(w, &a, ids, NULL, NULL, 1, T, x->e)) {
            x->broken = 1;
            ok = 0;
            break;
        }
        const real *z = a.logits + (size_t)(T - 1) * w->cfg.V;
        int best = 0;
        for (int v = 1; v < w->cfg.V; v++) if (z[v] > z[best]) best = v;
        ids[T] = best;
        if (best != want[i]) ok = 0;
        llama_acts_free(&a);
    }
    if (ok) x->t->pass++; else x->t->fail++;
    if ((!ok || x->t->verbose) && !x->t->quiet)
        printf("  %s  %-22s %-40s %d greedy ids %s\n", ok ? "ok  " : "FAIL", x->label, "gen.ids", ng,
               ok ? "equal" : "differ");
    free(ids);
    free(want);
}

/* {"lr":..,"beta1":..,"beta2":..,"eps":..,"weight_decay":..} -> AdamWConfig */
static int read_adamw(const char *json, AdamWConfig *ac) {
    cJSON *j = cJSON_Parse(json);
    const char *keys[5] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
    double *dst[5] = {&ac->lr, &ac->beta1, &ac->beta2, &ac->eps, &ac->weight_decay};
    int rc = j && cJSON_IsObject(j) ? 0 : -1;
    for (int i = 0; rc == 0 && i < 5; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (cJSON_IsNumber(v)) *dst[i] = v->valuedouble; else rc = -1;
    }
    cJSON_Delete(j);
    return rc;
}

int golden_run_case(const char *path, golden_tally *t, afx_err *e) {
    Ctx x;
    memset(&x, 0, sizeof x);
    x.path = path;
    x.t = t;
    x.e = e;
    LlamaParams w = {0}, g = {0}, gref = {0}, p1 = {0}, mom_m = {0}, mom_v = {0};
    LlamaActs a = {0};
    LlamaActGrads da = {0};
    int *ids = NULL, *mask = NULL, *labels = NULL, rc = -1;

    if (st_open(&x.f, path, e)) return -1;
    x.used = calloc(x.f.n_tensors + 1, 1);
    const char *cfg_json = st_meta(&x.f, "config"), *case_name = st_meta(&x.f, "case");
    const char *cfg_name = st_meta(&x.f, "config_name"), *adamw_json = st_meta(&x.f, "adamw");
    const char *clip_s = st_meta(&x.f, "clip_max_norm");
    if (!cfg_json || !case_name || !cfg_name || !adamw_json || !clip_s) {
        afx_fail(e, "%s: __metadata__ lacks config/case/config_name/adamw/clip_max_norm", path);
        goto done;
    }
    snprintf(x.label, sizeof x.label, "%s.%s", cfg_name, case_name);
    LlamaConfig cfg;
    if (llama_config_from_json(&cfg, cfg_json, strlen(cfg_json), path, e)) goto done;

    const st_tensor *sid = st_find(&x.f, "input_ids");
    if (!sid || sid->ndim != 2 || sid->shape[0] < 1 || sid->shape[1] < 1 || sid->shape[0] > 64 ||
        sid->shape[1] > 4096) {
        afx_fail(e, "%s: input_ids missing or not a small [B,T] tensor", path);
        goto done;
    }
    int B = (int)sid->shape[0], T = (int)sid->shape[1];
    size_t N = (size_t)B * T;
    ids = malloc(N * sizeof(int));
    mask = malloc(N * sizeof(int));
    labels = malloc(N * sizeof(int));
    if (!ids || !mask || !labels) { afx_fail(e, "out of memory"); goto done; }
    if (load_ints(&x, "input_ids", ids, B, T) || load_ints(&x, "attention_mask", mask, B, T) ||
        load_ints(&x, "labels", labels, B, T))
        goto done;

    // weights: every tensor of the model must be there with its exact shape
    if (llama_params_alloc(&w, &cfg, e) || llama_params_load_st(&w, &x.f, path, "", e)) goto done;
    for (int kind = 0; kind < LT_COUNT; kind++) { // mark them as used: they are inputs
        int nl = llama_tensor_is_per_layer(kind) ? cfg.L : 1;
        for (int l = 0; l < nl; l++) {
            char hf[160];
            size_t shp[2];
            int nd;
            if (llama_tensor_info(&cfg, kind, l, hf, sizeof hf, shp, &nd)) continue;
            const st_tensor *s = st_find(&x.f, hf);
            if (s) x.used[s - x.f.tensors] = 1;
        }
    }

    // ---- forward: every activation ----
    if (llama_acts_alloc(&a, &cfg, B, T, e) || llama_forward(&w, &a, ids, mask, NULL, B, T, e)) goto done;
    long H2 = cfg.HS / 2, C = cfg.C, QD = (long)cfg.NH * cfg.HS, KD = (long)cfg.NKV * cfg.HS;
    long FF = cfg.FF;
    {
        long sh[2] = {T, H2};
        compare(&x, FAM_ACT, "act.rope_cos", a.rope_cos, 2, sh); // row b = 0 holds positions 0..T-1
        compare(&x, FAM_ACT, "act.rope_sin", a.rope_sin, 2, sh);
        long s3[3] = {B, T, C};
        compare(&x, FAM_ACT, "act.embed", a.embed, 3, s3);
    }
    for (int l = 0; l < cfg.L; l++) {
        struct { const char *n; const real *p; long last; } per[] = {
            {"ln1", a.ln1, C}, {"q", a.q, QD}, {"k", a.k, KD}, {"v", a.v, KD},
            {"q_rope", a.q_rope, QD}, {"k_rope", a.k_rope, KD}, {"att_out", a.att_out, QD},
            {"o", a.o, C}, {"res1", a.res1, C}, {"ln2", a.ln2, C}, {"gate", a.gate, FF},
            {"up", a.up, FF}, {"swiglu", a.swiglu, FF}, {"mlp", a.mlp, C}, {"out", a.out, C},
        };
        for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
            char name[128];
            snprintf(name, sizeof name, "act.layers.%d.%s", l, per[i].n);
            long sh[3] = {B, T, per[i].last};
            compare(&x, FAM_ACT, name, per[i].p + (size_t)l * N * per[i].last, 3, sh);
        }
        char name[128];
        snprintf(name, sizeof name, "act.layers.%d.att", l);
        long sh4[4] = {B, cfg.NH, T, T};
        compare(&x, FAM_ACT, name, a.att + (size_t)l * B * cfg.NH * T * T, 4, sh4);
    }
    {
        long s3[3] = {B, T, C}, sl[3] = {B, T, cfg.V};
        compare(&x, FAM_ACT, "act.norm", a.lnf, 3, s3);
        compare(&x, FAM_LOGITS, "act.logits", a.logits, 3, sl);
    }

    // ---- loss, both reductions ----
    double loss_sum;
    long count;
    if (llama_loss(&a, labels, B, T, &loss_sum, &count, e)) goto done;
    long items = llama_count_items(labels, B, T);
    compare_scalar(&x, FAM_LOSS, "loss", loss_sum / (double)count);
    compare_scalar(&x, FAM_LOSS, "loss_sum", loss_sum);
    compare_scalar(&x, FAM_LOSS, "loss_num_items", loss_sum / (double)items);
    {
        const st_tensor *s = need(&x, "num_items", 0, NULL);
        int ni = -1;
        if (!s || st_to_int(s, &ni, e)) goto done;
        int ok = ni == items;
        if (ok) t->pass++; else t->fail++;
        if ((!ok || t->verbose) && !t->quiet)
            printf("  %s  %-22s %-40s %ld (golden %d)\n", ok ? "ok  " : "FAIL", x.label, "num_items", items, ni);
    }

    // ---- backward: the gradient of every weight ----
    if (llama_params_alloc(&g, &cfg, e) || llama_actgrads_alloc(&da, &cfg, B, T, e)) goto done;
    if (llama_backward(&w, &g, &a, &da, labels, 1.0 / (double)count, B, T, e)) goto done;
    compare_params(&x, FAM_GRAD, "grad.", &g);

    // ---- AdamW from the golden gradients (isolates the optimizer from gradient error) ----
    {
        AdamWConfig ac = {0};
        if (read_adamw(adamw_json, &ac)) {
            afx_fail(e, "%s: cannot read adamw metadata '%s'", path, adamw_json);
            goto done;
        }
        if (llama_params_alloc(&gref, &cfg, e) || llama_params_load_st(&gref, &x.f, path, "grad.", e) ||
            llama_params_alloc(&p1, &cfg, e) || llama_params_alloc(&mom_m, &cfg, e) ||
            llama_params_alloc(&mom_v, &cfg, e))
            goto done;
        memcpy(p1.mem, w.mem, w.count * sizeof(real));
        adamw_step(p1.mem, gref.mem, mom_m.mem, mom_v.mem, p1.count, &ac, 1);
        compare_params(&x, FAM_ADAMW, "adamw.step1.", &p1);
        for (size_t i = 0; i < gref.count; i++) gref.mem[i] = (real)(-0.5 * gref.mem[i]);
        adamw_step(p1.mem, gref.mem, mom_m.mem, mom_v.mem, p1.count, &ac, 2);
        compare_params(&x, FAM_ADAMW, "adamw.step2.", &p1);

        // ---- clipping of the golden gradients ----
        if (llama_params_load_st(&gref, &x.f, path, "grad.", e)) goto done;
        double max_norm = strtod(clip_s, NULL);
        double norm = grad_norm(gref.mem, gref.count);
        compare_scalar(&x, FAM_CLIP, "clip.total_norm", norm);
        grad_clip(gref.mem, gref.count, max_norm, norm);
        compare_params(&x, FAM_CLIP, "clip.grad.", &gref);
    }

    // ---- greedy generation ----
    check_generation(&x, &w);

    if (x.broken) goto done;
    // every golden tensor must have been looked at
    for (size_t i = 0; i < x.f.n_tensors; i++)
        if (!x.used[i]) {
            afx_fail(e, "%s: golden tensor '%s' is not checked by any test", path, x.f.tensors[i].name);
            goto done;
        }
    rc = 0;
done:
    if (x.broken && rc == 0) rc = -1;
    llama_params_free(&w);
    llama_params_free(&g);
    llama_params_free(&gref);
    llama_params_free(&p1);
    llama_params_free(&mom_m);
    llama_params_free(&mom_v);
    llama_acts_free(&a);
    llama_actgrads_free(&da);
    free(ids);
    free(mask);
    free(labels);
    free(x.used);
    st_close(&x.f);
    return rc;
}

void golden_print_summary(const golden_tally *t) {
    printf("worst error per family (%s build):\n", AFFIX_REAL_NAME);
    printf("  %-12s %-6s %-10s %-10s\n", "family", "metric", "worst", "tolerance");
    for (int f = 0; f < FAM_COUNT; f++)
        printf("  %-12s %-6s %-10.2e %-10.0e\n", TOLERANCES[f].name, TOLERANCES[f].metric, t->worst[f],
               golden_tol(f));
}

int golden_read_manifest(const char *path, char names[][256], int max, afx_err *e) {
    FILE *fp = fopen(path, "r");
    if (!fp) return afx_fail(e, "%s: cannot open the golden MANIFEST", path);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char first[256];
        if (sscanf(line, "%255s", first) != 1) continue;
        size_t len = strlen(first);
        if (len < 12 || strcmp(first + len - 12, ".safetensors") != 0) continue;
        if (n == max) { fclose(fp); return afx_fail(e, "%s: more than %d golden files", path, max); }
        snprintf(names[n++], 256, "%s", first);
    }
    fclose(fp);
    if (n == 0) return afx_fail(e, "%s: lists no golden files", path);
    return n;
}
