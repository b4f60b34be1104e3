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

#include "adapter.h"
#include "arena.h"
#include "config.h"
#include "llama.h"
#include "optim.h"
#include "safetensors.h"
#include "train.h"
#include "weights.h"
#ifndef AFFIX_F64
#include "kernels_simd.h"
#endif

/* The kernel table the model runs on: AFFIX_KERNELS in the float build (default ref: make test runs
 * the suite once more per optimized table), always ref in the f64 build. NULL (with a message) for
 * a name that is unknown or not available here. */
static const Kernels *golden_kernels(afx_err *e) {
#ifdef AFFIX_F64
    (void)e;
    return &KERNELS_REF;
#else
    char msg[200];
    const Kernels *k = kernels_from_env("ref", msg, sizeof msg);
    if (!k) afx_fail(e, "AFFIX_KERNELS: %s", msg);
    return k;
#endif
}

double golden_tol(int family, int gemma3) {
#ifdef AFFIX_F64
    (void)gemma3;
    return TOLERANCES[family].f64;
#else
    return gemma3 ? TOLERANCES[family].f32_gemma3 : TOLERANCES[family].f32;
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
    int gemma3; /* a Gemma 3 case: its column of the tolerance table */
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
    double tol = golden_tol(family, x->gemma3);
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

/* a setup step of a check: a failure counts as a failed check (never a silent skip) */
static int gc_require(Ctx *x, int ok, const char *what, const char *detail) {
    if (!ok) {
        x->t->fail++;
        if (!x->t->quiet) printf("  FAIL  %-22s %s -- %s\n", x->label, what, detail ? detail : "");
    }
    return ok;
}

static void compare_scalar(Ctx *x, int family, const char *name, double v) {
    real r = (real)v;
    compare(x, family, name, &r, 0, NULL);
}

/* greedy generation by full recompute (no cache yet), compared id for id */
static void check_generation(Ctx *x, const LlamaParams *w, AdapterSet *set) {
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
        if ((set && adapter_set_bind_acts(set, 1, T, x->e)) || llama_acts_alloc(&a, &w->cfg, adapter_hooks(set), 1, T, x->e)) {
            x->broken = 1;
            ok = 0;
            break;
        }
        a.kern = golden_kernels(x->e);
        if (!a.kern) {
            llama_acts_free(&a);
            x->broken = 1;
            ok = 0;
            break;
        }
        if (llama_forward(w, adapter_hooks(set), &a, ids, NULL, NULL, 1, T, x->e)) {
            x->broken = 1;
            ok = 0;
        } else {
            const real *z = a.logits + (size_t)(a.Tx - 1) * w->cfg.V;
            int best = 0;
            for (int v = 1; v < w->cfg.V; v++) if (z[v] > z[best]) best = v;
            ids[T] = best;
            if (best != want[i]) ok = 0;
        }
        llama_acts_free(&a);
    }
    if (ok) x->t->pass++; else x->t->fail++;
    if ((!ok || x->t->verbose) && !x->t->quiet)
        printf("  %s  %-22s %-40s %d greedy ids %s\n", ok ? "ok  " : "FAIL", x->label, "gen.ids", ng,
               ok ? "equal" : "differ");
    free(ids);
    free(want);
}

/* metadata "methods" (a JSON list, golden/README.md) -> adapters */
static int json_int(const cJSON *o, const char *k, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : def;
}

static int make_adapters(const char *json, const LlamaConfig *c, Adapter *ads, int *n, const char *path, afx_err *e) {
    cJSON *list = cJSON_Parse(json);
    int rc = 0, layers[256];
    *n = 0;
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        return afx_fail(e, "%s: metadata 'methods' is not a JSON list", path);
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "method");
        Adapter *ad = &ads[*n];
        if (*n == AFX_MAX_ADAPTERS || !cJSON_IsString(name)) { rc = afx_fail(e, "%s: bad 'methods' entry", path); break; }
        if (!strcmp(name->valuestring, "prompt")) {
            PromptOptions o = {.num_virtual_tokens = json_int(m, "num_virtual_tokens", 0)};
            rc = prompt_create(ad, c, &o, e);
        } else if (!strcmp(name->valuestring, "prefix")) {
            PrefixOptions o = {.num_virtual_tokens = json_int(m, "num_virtual_tokens", 0),
                               .encoder_hidden_size = json_int(m, "encoder_hidden_size", 0)};
            const cJSON *ls = cJSON_GetObjectItemCaseSensitive(m, "layers"), *it;
            cJSON_ArrayForEach(it, ls) if (o.n_layers < 256) layers[o.n_layers++] = it->valueint;
            o.layers = ls ? layers : NULL;
            o.projection = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "prefix_projection"));
            const cJSON *off = cJSON_GetObjectItemCaseSensitive(m, "position_offset");
            o.offset_zero = cJSON_IsString(off) && !strcmp(off->valuestring, "zero");
            const cJSON *win = cJSON_GetObjectItemCaseSensitive(m, "prefix_window"); // Gemma 3: "past" (PEFT) or "always"
            o.always_visible = cJSON_IsString(win) && !strcmp(win->valuestring, "always");
            rc = prefix_create(ad, c, &o, e);
        } else if (!strcmp(name->valuestring, "llama_adapter")) {
            const cJSON *gate = cJSON_GetObjectItemCaseSensitive(m, "gate");
            LlamaAdapterOptions o = {.adapter_len = json_int(m, "adapter_len", 0),
                                     .adapter_layers = json_int(m, "adapter_layers", 0),
                                     .gate = cJSON_IsString(gate) && !strcmp(gate->valuestring, "official") ? GATE_OFFICIAL : GATE_PEFT};
            rc = llama_adapter_create(ad, c, &o, e);
        } else if (!strcmp(name->valuestring, "lora")) {
            const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(m, "alpha"), *ts = cJSON_GetObjectItemCaseSensitive(m, "targets"), *it;
            LoraOptions o = {.r = json_int(m, "r", 0), .alpha = cJSON_IsNumber(alpha) ? alpha->valuedouble : 0,
                             .rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "use_rslora"))};
            cJSON_ArrayForEach(it, ts)
                for (int k = 0; k < LIN_COUNT; k++)
                    if (cJSON_IsString(it) && !strcmp(it->valuestring, LIN_SITE_NAMES[k])) o.targets[k] = 1;
            rc = lora_create(ad, c, &o, e);
        } else if (!strcmp(name->valuestring, "full")) {
            rc = full_create(ad, c, e);
        } else {
            rc = afx_fail(e, "%s: unknown method '%s'", path, name->valuestring);
        }
        if (rc) break;
        (*n)++;
    }
    cJSON_Delete(list);
    if (rc) {
        for (int i = 0; i < *n; i++) adapter_destroy(&ads[i]);
        *n = 0;
    }
    return rc;
}

static void compare_tensor(Ctx *x, int family, const char *prefix, const AdapterTensor *t, const real *values) {
    char name[200];
    long shape[4];
    snprintf(name, sizeof name, "%s%s", prefix, t->name);
    for (int i = 0; i < t->ndim; i++) shape[i] = (long)t->shape[i];
    compare(x, family, name, values, t->ndim, shape);
}

/* the adapters' trainable tensors: golden "<prefix><name>" -> buf laid out like the set's arena */
static int load_adapter_values(Ctx *x, const AdapterSet *s, const char *prefix, real *buf) {
    size_t off = 0;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->ad[i]->n_params; k++) {
            const AdapterTensor *t = &s->ad[i]->params[k];
            char name[200];
            long shape[4];
            snprintf(name, sizeof name, "%s%s", prefix, t->name);
            for (int d = 0; d < t->ndim; d++) shape[d] = (long)t->shape[d];
            const st_tensor *st = need(x, name, t->ndim, shape);
            if (!st || st_to_real(st, buf + off, x->e)) return -1;
            off += t->numel;
        }
    return 0;
}

static void compare_adapter_values(Ctx *x, int family, const AdapterSet *s, const char *prefix, const real *buf) {
    size_t off = 0;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->ad[i]->n_params; k++) {
            compare_tensor(x, family, prefix, &s->ad[i]->params[k], buf + off);
            off += s->ad[i]->params[k].numel;
        }
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

/* AdamW steps 1-2 and clipping from the golden gradients, on the base (full) or on the adapters */
static int check_optimizer(Ctx *x, const LlamaParams *w, AdapterSet *set, const AdamWConfig *ac, double max_norm) {
    int rc = -1;
    size_t n = set ? set->count : w->count;
    real *p = calloc(n ? n : 1, sizeof(real)), *g = calloc(n ? n : 1, sizeof(real));
    real *m = calloc(n ? n : 1, sizeof(real)), *v = calloc(n ? n : 1, sizeof(real));
    LlamaParams view; // the base layout over one of these buffers
    if (!p || !g || !m || !v) goto out;
    if (set) {
        memcpy(p, set->w, n * sizeof(real));
        if (load_adapter_values(x, set, "grad.adapter.", g)) goto out;
    } else {
        memcpy(p, w->mem, n * sizeof(real));
        llama_params_bind(&view, &w->cfg, g);
        if (llama_params_load_st(&view, &x->f, x->path, "grad.", x->e)) goto out;
    }
    for (int step = 1; step <= 2; step++) {
        if (step == 2) for (size_t i = 0; i < n; i++) g[i] = (real)(-0.5 * g[i]); // g2 = -g/2
        adamw_step(p, g, m, v, n, ac, step);
        const char *prefix = step == 1 ? "adamw.step1." : "adamw.step2.";
        if (set) {
            char pre[64];
            snprintf(pre, sizeof pre, "%sadapter.", prefix);
            compare_adapter_values(x, FAM_ADAMW, set, pre, p);
        } else {
            llama_params_bind(&view, &w->cfg, p);
            compare_params(x, FAM_ADAMW, prefix, &view);
        }
    }
    // clipping of the golden gradients
    if (set) {
        if (load_adapter_values(x, set, "grad.adapter.", g)) goto out;
    } else {
        llama_params_bind(&view, &w->cfg, g);
        if (llama_params_load_st(&view, &x->f, x->path, "grad.", x->e)) goto out;
    }
    double norm = grad_norm(g, n);
    compare_scalar(x, FAM_CLIP, "clip.total_norm", norm);
    grad_clip(g, n, max_norm, norm);
    if (set) {
        compare_adapter_values(x, FAM_CLIP, set, "clip.grad.adapter.", g);
    } else {
        llama_params_bind(&view, &w->cfg, g);
        compare_params(x, FAM_CLIP, "clip.grad.", &view);
    }
    rc = 0;
out:
    if (rc && !x->e->msg[0]) afx_fail(x->e, "out of memory");
    free(p);
    free(g);
    free(m);
    free(v);
    return rc;
}

/* ---- the data-parallel contract (train.h TrainComm; tools/dist.c sums over MPI ranks so) ----
 * Two ranks of one row each, their gradients and losses added in rank order, must make the update
 * of one process that takes the same two rows as two micro-batches: bitwise, on every case. Rank 1
 * runs first with a comm that keeps its gradient and stops before the update; rank 0 then adds it. */
typedef struct {
    real *g1;
    double loss1;
    long other_targets;
    int record; /* 1: rank 1's pass (keep g, stop) */
} FakeRanks;

static int fake_count(void *ctx, long *targets, afx_err *e) {
    (void)e;
    *targets += ((FakeRanks *)ctx)->other_targets;
    return 0;
}

static int fake_grads(void *ctx, real *g, size_t n, double *loss_sum, afx_err *e) {
    FakeRanks *f = ctx;
    if (f->record) {
        memcpy(f->g1, g, n * sizeof(real));
        f->loss1 = *loss_sum;
        return afx_fail(e, "rank 1 recorded");
    }
    for (size_t j = 0; j < n; j++) g[j] = g[j] + f->g1[j]; // S_1 = g_0 + g_1
    *loss_sum = *loss_sum + f->loss1;
    return 0;
}

static void check_data_parallel(Ctx *x, const LlamaParams *w, AdapterSet *S, const Kernels *k, const int *ids,
                                const int *mask, const int *labels, int B, int T, const AdamWConfig *ac, double clip) {
    if (!S || B < 2) return;
    TrainSet tr = train_trainable(S);
    size_t n = tr.n, nb = n * sizeof(real);
    real *keep = malloc(3 * nb + 1), *one = malloc(nb + 1), *g1 = malloc(nb + 1);
    TrainWorkspace ws = {0};
    TrainStepResult ra = {0}, rb = {0};
    TrainBatch rows[2] = {{ids, mask, labels, 1, T}, {ids + T, mask + T, labels + T, 1, T}};
    if (!gc_require(x, keep && one && g1, "data parallel: allocate", "out of memory")) goto out;
    memcpy(keep, tr.w, nb), memcpy(keep + n, tr.m, nb), memcpy(keep + 2 * n, tr.v, nb);
    int ok = train_step(w, S, &ws, k, rows, 2, ac, clip, 1, &ra, x->e) == 0; // one process, 2 micro-batches
    if (ok) memcpy(one, tr.w, nb);
    memcpy(tr.w, keep, nb), memcpy(tr.m, keep + n, nb), memcpy(tr.v, keep + 2 * n, nb);
    ModelHooks *h = adapter_hooks(S);
    long t0 = llama_count_targets(rows[0].labels, 1, T, hooks_tokens(h, T) - T);
    long t1 = llama_count_targets(rows[1].labels, 1, T, hooks_tokens(h, T) - T);
    FakeRanks f = {.g1 = g1, .other_targets = t0, .record = 1};
    TrainComm c = {&f, fake_count, fake_grads};
    ok = ok && train_step_comm(w, S, &ws, k, &rows[1], 1, &c, ac, clip, 1, &rb, x->e) != 0; // rank 1
    if (ok) x->e->msg[0] = 0; // (the recording comm's stop)
    f.record = 0, f.other_targets = t1;
    ok = ok && train_step_comm(w, S, &ws, k, &rows[0], 1, &c, ac, clip, 1, &rb, x->e) == 0; // rank 0
    int same = ok && !memcmp(one, tr.w, nb) && ra.loss == rb.loss && ra.targets == rb.targets;
    size_t first = 0;
    while (ok && first < n && one[first] == tr.w[first]) first++;
    char msg[200];
    snprintf(msg, sizeof msg, "loss %.17g vs %.17g, first differing value %zu of %zu", ra.loss, rb.loss, first, n);
    if (same) x->t->pass++; else x->t->fail++;
    if ((!same || x->t->verbose) && !x->t->quiet)
        printf("  %s  %-22s %-40s %s\n", same ? "ok  " : "FAIL", x->label, "2 ranks = 2 micro-batches, bitwise",
               same ? "" : ok ? msg : x->e->msg);
    memcpy(tr.w, keep, nb), memcpy(tr.m, keep + n, nb), memcpy(tr.v, keep + 2 * n, nb); // the case as it was
out:
    train_workspace_free(&ws);
    free(keep);
    free(one);
    free(g1);
}

int golden_run_case(const char *path, golden_tally *t, afx_err *e) {
    Ctx x;
    memset(&x, 0, sizeof x);
    x.path = path;
    x.t = t;
    x.e = e;
    e->msg[0] = 0;
    LlamaParams w = {0}, g = {0};
    LlamaActs a = {0};
    LlamaActGrads da = {0};
    AdapterSet set;
    memset(&set, 0, sizeof set);
    Adapter ads[AFX_MAX_ADAPTERS];
    int nad = 0, has_set = 0;
    int *ids = NULL, *mask = NULL, *labels = NULL, rc = -1;

    if (st_open(&x.f, path, e)) return -1;
    x.used = calloc(x.f.n_tensors + 1, 1);
    const char *cfg_json = st_meta(&x.f, "config"), *case_name = st_meta(&x.f, "case");
    const char *cfg_name = st_meta(&x.f, "config_name"), *adamw_json = st_meta(&x.f, "adamw");
    const char *clip_s = st_meta(&x.f, "clip_max_norm"), *methods = st_meta(&x.f, "methods");
    if (!cfg_json || !case_name || !cfg_name || !adamw_json || !clip_s) {
        afx_fail(e, "%s: __metadata__ lacks config/case/config_name/adamw/clip_max_norm", path);
        goto done;
    }
    snprintf(x.label, sizeof x.label, "%s.%s", cfg_name, case_name);
    LlamaConfig cfg;
    AdamWConfig ac = {0};
    if (llama_config_from_json(&cfg, cfg_json, strlen(cfg_json), path, e)) goto done;
    x.gemma3 = cfg.arch == AFX_ARCH_GEMMA3;
    if (read_adamw(adamw_json, &ac)) {
        afx_fail(e, "%s: cannot read adamw metadata '%s'", path, adamw_json);
        goto done;
    }

    const st_tensor *sid = st_find(&x.f, "input_ids");
    if (!sid || sid->ndim != 2 || sid->shape[0] < 1 || sid->shape[1] < 1 || sid->shape[0] > 64 ||
        sid->shape[1] > 4096) {
        afx_fail(e, "%s: input_ids missing or not a small [B,T] tensor", path);
        goto done;
    }
    int B = (int)sid->shape[0], T = (int)sid->shape[1];
    size_t NT = (size_t)B * T;
    ids = malloc(NT * sizeof(int));
    mask = malloc(NT * sizeof(int));
    labels = malloc(NT * sizeof(int));
    if (!ids || !mask || !labels) { afx_fail(e, "out of memory"); goto done; }
    if (load_ints(&x, "input_ids", ids, B, T) || load_ints(&x, "attention_mask", mask, B, T) ||
        load_ints(&x, "labels", labels, B, T))
        goto done;

    // base weights: every tensor of the model must be there with its exact shape
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

    // adapters: the methods of the case, with the golden values of their parameters
    if (methods) {
        Adapter *ptrs[AFX_MAX_ADAPTERS];
        if (make_adapters(methods, &cfg, ads, &nad, path, e)) goto done;
        for (int i = 0; i < nad; i++) ptrs[i] = &ads[i];
        if (adapter_set_init(&set, ptrs, nad, &w, e)) goto done;
        has_set = 1;
        if (load_adapter_values(&x, &set, "adapter.", set.w)) goto done;
        if (adapter_set_bind_acts(&set, B, T, e)) goto done;
    }
    AdapterSet *S = has_set ? &set : NULL;

    // ---- forward: every activation ----
    if (llama_acts_alloc(&a, &cfg, adapter_hooks(S), B, T, e) || !(a.kern = golden_kernels(e)) ||
        llama_forward(&w, adapter_hooks(S), &a, ids, mask, NULL, B, T, e))
        goto done;
    int Tx = a.Tx;
    size_t N = (size_t)B * Tx;
    long H2 = cfg.HS / 2, C = cfg.C, QD = (long)cfg.NH * cfg.HS, KD = (long)cfg.NKV * cfg.HS;
    long FF = cfg.FF;
    {
        long sh[2] = {Tx, H2};
        compare(&x, FAM_ACT, "act.rope_cos", a.rope_cos, 2, sh); // row b = 0: every row has the same positions
        compare(&x, FAM_ACT, "act.rope_sin", a.rope_sin, 2, sh);
        if (cfg.arch == AFX_ARCH_GEMMA3) { // the sliding layers' RoPE base
            compare(&x, FAM_ACT, "act.rope_local_cos", a.rope_lcos, 2, sh);
            compare(&x, FAM_ACT, "act.rope_local_sin", a.rope_lsin, 2, sh);
        }
        long s3[3] = {B, Tx, C};
        compare(&x, FAM_ACT, "act.embed", a.embed, 3, s3);
    }
    for (int l = 0; l < cfg.L; l++) {
        struct { const char *n; const real *p; long last; } per[] = {
            {"ln1", a.ln1, C}, {"q", a.q, QD}, {"k", a.k, KD}, {"v", a.v, KD},
            {"q_rope", a.q_rope, QD}, {"k_rope", a.k_rope, KD}, {"att_out", a.att_out, QD},
            {"o", a.o, C}, {"res1", a.res1, C}, {"ln2", a.ln2, C}, {"gate", a.gate, FF},
            {"up", a.up, FF}, {"swiglu", a.swiglu, FF}, {"mlp", a.mlp, C}, {"out", a.out, C},
            /* Gemma 3: the head norms and the sandwich norms (NULL views for Llama) */
            {"q_norm", a.qn, QD}, {"k_norm", a.kn, KD}, {"o_norm", a.on, C}, {"mlp_norm", a.mn, C},
        };
        for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
            if (!per[i].p) continue;
            char name[128];
            snprintf(name, sizeof name, "act.layers.%d.%s", l, per[i].n);
            long sh[3] = {B, Tx, per[i].last};
            compare(&x, FAM_ACT, name, per[i].p + (size_t)l * N * per[i].last, 3, sh);
        }
        char name[128];
        snprintf(name, sizeof name, "act.layers.%d.att", l);
        long Sl = (S ? adapter_set_prefix_len(S, l) : 0) + Tx;
        long sh4[4] = {B, cfg.NH, Tx, Sl};
        compare(&x, FAM_ACT, name, a.att + (size_t)l * B * cfg.NH * Tx * a.S, 4, sh4);
    }
    for (int i = 0; i < nad; i++) // what each method keeps: prefix table/keys/values, adapter attention
        for (int k = 0; k < ads[i].n_acts; k++) compare_tensor(&x, FAM_ACT, "act.", &ads[i].acts[k], ads[i].acts[k].w);
    {
        long s3[3] = {B, Tx, C}, sl[3] = {B, Tx, cfg.V};
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

    // ---- backward: the gradient of every trainable tensor ----
    if (llama_actgrads_alloc(&da, &cfg, adapter_hooks(S), B, T, e)) goto done;
    if (S) {
        adapter_set_zero_grad(S);
        LlamaParams *gb = S->trains_base ? &S->base_g : NULL; // the base is frozen unless full FT
        if (llama_backward(&w, gb, adapter_hooks(S), &a, &da, labels, 1.0 / (double)count, B, T, e)) goto done;
        if (S->trains_base) compare_params(&x, FAM_GRAD, "grad.", &S->base_g);
        else compare_adapter_values(&x, FAM_GRAD, S, "grad.adapter.", S->g);
    } else {
        if (llama_params_alloc(&g, &cfg, e)) goto done;
        if (llama_backward(&w, &g, NULL, &a, &da, labels, 1.0 / (double)count, B, T, e)) goto done;
        compare_params(&x, FAM_GRAD, "grad.", &g);
    }

    // ---- training's path, as train_batch binds it: logits only on the rows with a kept target
    //      (llama_select_rows), a frozen head in chunks, and the training layout (views the backward
    //      does not read in one slot; with a frozen base also the frozen linears' inputs) must give
    //      the same loss and gradients ----
    {
        long rows = llama_count_targets(labels, B, T, a.P);
        int cap = rows > 0 ? (int)rows : 1, frozen = S && !S->trains_base;
        int chunk = frozen ? LLAMA_HEAD_CHUNK : 0;
        unsigned lay = LLAMA_ACTS_TRAIN | (frozen ? LLAMA_ACTS_FROZEN : 0);
        LlamaActs ar;
        LlamaActGrads dr;
        void *am = arena_alloc(llama_acts_bytes_chunk(&cfg, adapter_hooks(S), B, T, cap, chunk, lay));
        real *dm = arena_alloc(llama_actgrads_count_chunk(&cfg, adapter_hooks(S), B, T, cap, chunk) * sizeof(real));
        double rsum;
        long rcnt;
        int ok = gc_require(&x, am && dm, "selected rows: allocate", "out of memory");
        if (ok) {
            llama_acts_bind_chunk(&ar, &cfg, adapter_hooks(S), B, T, cap, chunk, lay, am);
            llama_actgrads_bind_chunk(&dr, &cfg, adapter_hooks(S), B, T, cap, chunk, dm);
            ar.kern = a.kern;
            ok = gc_require(&x, !llama_select_rows(&ar, labels, B, T, e) &&
                             !llama_forward(&w, adapter_hooks(S), &ar, ids, mask, NULL, B, T, e) &&
                             !llama_loss(&ar, labels, B, T, &rsum, &rcnt, e),
                         "selected rows: forward and loss", e->msg);
        }
        if (ok) {
            compare_scalar(&x, FAM_LOSS, "loss", rsum / (double)rcnt);
            if (S) adapter_set_zero_grad(S);
            else memset(g.mem, 0, g.count * sizeof(real));
            LlamaParams *gb = S ? (S->trains_base ? &S->base_g : NULL) : &g;
            if (gc_require(&x, !llama_backward(&w, gb, adapter_hooks(S), &ar, &dr, labels, 1.0 / (double)rcnt, B, T, e),
                        "selected rows: backward", e->msg)) {
                if (S && !S->trains_base) compare_adapter_values(&x, FAM_GRAD, S, "grad.adapter.", S->g);
                else compare_params(&x, FAM_GRAD, "grad.", gb);
            }
        }
        free(am);
        free(dm);
    }

    // ---- AdamW and clipping from the golden gradients (isolates the optimizer from gradient error) ----
    if (check_optimizer(&x, &w, S && !S->trains_base ? S : NULL, &ac, strtod(clip_s, NULL))) goto done;

    // ---- greedy generation ----
    check_generation(&x, &w, S);

    // ---- two simulated ranks = two micro-batches (after the checks that read the case's values) ----
    check_data_parallel(&x, &w, S, a.kern, ids, mask, labels, B, T, &ac, strtod(clip_s, NULL));

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
    if (has_set) adapter_set_free(&set);
    for (int i = 0; i < nad; i++) adapter_destroy(&ads[i]);
    llama_params_free(&w);
    llama_params_free(&g);
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
               golden_tol(f, 0));
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
