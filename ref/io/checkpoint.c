/* checkpoint.c — training checkpoints (see checkpoint.h).
 *
 * What this is: the list of (name, values) of a set — parameters, m, v — handed to st_write, and
 * the reverse with every check done before the first copy.
 * What this is not: an optimizer or a data loader.
 */
#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "st_write.h"

#define CKPT_VERSION "1"

enum { SLOT_W, SLOT_M, SLOT_V, SLOTS };
static const char SLOT_CH[SLOTS] = {'w', 'm', 'v'};

static const LlamaConfig *cfg_of(const AdapterSet *s) { return &s->ad[0]->cfg; }

/* the model fingerprint: every field of LlamaConfig */
static void config_fp(char *buf, size_t n, const LlamaConfig *c) {
    snprintf(buf, n,
             "V=%d C=%d FF=%d L=%d NH=%d NKV=%d HS=%d eps=%.17g rope_theta=%.17g rope_factor=%.17g "
             "rope_low=%.17g rope_high=%.17g rope_orig=%.17g tied=%d max_pos=%d",
             c->V, c->C, c->FF, c->L, c->NH, c->NKV, c->HS, c->eps, c->rope_theta, c->rope_factor,
             c->rope_low_freq_factor, c->rope_high_freq_factor, c->rope_original_max_position, c->tied, c->max_pos);
}

/* the methods fingerprint: "desc0 + desc1 + ..." */
static void methods_fp(char *buf, size_t n, const MethodSpec *specs, int k, const LlamaConfig *c) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < k && len < n; i++) {
        if (i) len += (size_t)snprintf(buf + len, n - len, " + ");
        if (len < n) len += method_spec_describe(&specs[i], c, buf + len, n - len);
    }
}

/* specs[i] must be what s->ad[i] was made from: same method, same parameter table */
static int check_specs(const AdapterSet *s, const MethodSpec *specs, int n_specs, const char *path, afx_err *e) {
    if (s->n < 1) return afx_fail(e, "%s: the adapter set is empty", path);
    if (n_specs != s->n) return afx_fail(e, "%s: %d specs for %d adapters", path, n_specs, s->n);
    for (int i = 0; i < s->n; i++) {
        Adapter ref;
        const Adapter *ad = s->ad[i];
        if (method_spec_create(&ref, &specs[i], &ad->cfg, e)) return -1;
        int ok = ref.n_params == ad->n_params && !strcmp(ref.ops->method, ad->ops->method);
        for (int k = 0; ok && k < ref.n_params; k++)
            ok = !strcmp(ref.params[k].name, ad->params[k].name) && ref.params[k].numel == ad->params[k].numel;
        adapter_destroy(&ref);
        if (!ok) return afx_fail(e, "%s: spec %d (%s) is not the one adapter %d (%s) was made from", path, i,
                                 METHOD_NAMES[specs[i].method], i, ad->ops->method);
    }
    return 0;
}

/* where slot (w, m, v) of parameter t of a set lives */
static real *slot_ptr(const AdapterSet *s, const AdapterTensor *t, int slot) {
    if (slot == SLOT_W) return t->w;
    if (s->trains_base) { /* base_m / base_v share the base's layout */
        const LlamaParams *mv = slot == SLOT_M ? &s->base_m : &s->base_v;
        return mv->mem + (t->w - s->base->mem);
    }
    return (slot == SLOT_M ? s->m : s->v) + (t->w - s->w);
}

static int count_tensors(const AdapterSet *s) {
    int n = 0;
    for (int i = 0; i < s->n; i++) n += s->ad[i]->n_params * SLOTS;
    return n;
}

static void tensor_name(char *buf, size_t n, int i, int slot, const char *name) {
    snprintf(buf, n, "%d.%c.%s", i, SLOT_CH[slot], name);
}

/* the first non-finite value among the set's values and moments (v must also be >= 0): 0 if none */
static int find_nonfinite(const AdapterSet *s, char *where, size_t n) {
    for (int i = 0; i < s->n; i++)
        for (int p = 0; p < s->ad[i]->n_params; p++)
            for (int slot = 0; slot < SLOTS; slot++) {
                const AdapterTensor *a = &s->ad[i]->params[p];
                const real *x = slot_ptr(s, a, slot);
                for (size_t k = 0; k < a->numel; k++)
                    if (!isfinite((double)x[k]) || (slot == SLOT_V && x[k] < 0)) {
                        snprintf(where, n, "%s[%zu] (%s) = %g", a->name, k, slot == SLOT_W ? "value" : slot == SLOT_M ? "first moment" : "second moment", (double)x[k]);
                        return 1;
                    }
            }
    return 0;
}

static int check_state(const TrainState *st, const char *path, afx_err *e) {
    if (st->step < 0 || st->step > CKPT_MAX_STEP)
        return afx_fail(e, "%s: step = %lld is out of range (0..%lld)", path, st->step, (long long)CKPT_MAX_STEP);
    if (st->epoch < 0 || st->epoch > CKPT_MAX_STEP)
        return afx_fail(e, "%s: epoch = %lld is out of range (0..%lld)", path, st->epoch, (long long)CKPT_MAX_STEP);
    if (st->index < 0 || st->index > CKPT_MAX_INDEX)
        return afx_fail(e, "%s: index = %lld is out of range (0..%lld)", path, st->index, (long long)CKPT_MAX_INDEX);
    return 0;
}

int ckpt_save(const char *path, const AdapterSet *s, const MethodSpec *specs, int n_specs, const TrainState *st,
              afx_err *e) {
    if (check_specs(s, specs, n_specs, path, e) || check_state(st, path, e)) return -1;
    char bad[256];
    if (find_nonfinite(s, bad, sizeof bad))
        return afx_fail(e, "%s: not written: the state holds a non-finite value (%s); the file keeps what it held", path, bad);
    int nt = count_tensors(s), k = 0;
    st_wtensor *t = calloc((size_t)(nt ? nt : 1), sizeof *t);
    char (*names)[160] = calloc((size_t)(nt ? nt : 1), sizeof *names);
    char cfg[512], meth[4096], num[5][32];
    if (!t || !names) {
        free(t);
        free(names);
        return afx_fail(e, "%s: out of memory", path);
    }
    for (int i = 0; i < s->n; i++)
        for (int p = 0; p < s->ad[i]->n_params; p++)
            for (int slot = 0; slot < SLOTS; slot++, k++) {
                const AdapterTensor *a = &s->ad[i]->params[p];
                tensor_name(names[k], sizeof names[k], i, slot, a->name);
                t[k].name = names[k];
                t[k].ndim = a->ndim;
                memcpy(t[k].shape, a->shape, sizeof a->shape);
                t[k].data = slot_ptr(s, a, slot);
                t[k].src = ST_REAL;
            }
    config_fp(cfg, sizeof cfg, cfg_of(s));
    methods_fp(meth, sizeof meth, specs, n_specs, cfg_of(s));
    snprintf(num[0], sizeof num[0], "%lld", st->step);
    snprintf(num[1], sizeof num[1], "%lld", st->epoch);
    snprintf(num[2], sizeof num[2], "%lld", st->index);
    snprintf(num[3], sizeof num[3], "%llu", st->perm_seed);
    snprintf(num[4], sizeof num[4], "%llu", st->rng);
    const char *keys[] = {"affix_checkpoint", "real", "config", "methods", "step", "epoch", "index", "perm_seed",
                          "rng", "args"};
    const char *vals[] = {CKPT_VERSION, AFFIX_REAL_NAME, cfg, meth, num[0], num[1], num[2], num[3], num[4], st->args};
    int rc = st_write(path, ST_REAL, t, (size_t)nt, keys, vals, sizeof keys / sizeof keys[0], e);
    free(t);
    free(names);
    return rc;
}

static int meta_ll(const st_file *f, const char *key, int is_unsigned, long long *sv, unsigned long long *uv,
                   const char *path, afx_err *e) {
    const char *v = st_meta(f, key);
    char *end;
    if (!v || !*v) return afx_fail(e, "%s: metadata '%s' is missing", path, key);
    errno = 0;
    if (is_unsigned) *uv = strtoull(v, &end, 10);
    else *sv = strtoll(v, &end, 10);
    if (errno || *end || (is_unsigned && *v == '-'))
        return afx_fail(e, "%s: metadata '%s' = '%.40s' is not a%s integer", path, key, v,
                        is_unsigned ? "n unsigned" : "n");
    return 0;
}

/* the first element of a little-endian F32/F64 tensor that is Inf or NaN (or, when nonneg, below
 * zero), from its bytes; SIZE_MAX if none */
static size_t bad_element(const st_tensor *t, int nonneg) {
    size_t w = t->dtype == ST_F64 ? 8 : 4;
    for (size_t i = 0; i < t->numel; i++) {
        const unsigned char *b = t->data + i * w;
        unsigned hi = b[w - 1], exp = w == 8 ? ((hi & 0x7Fu) << 4) | (b[6] >> 4) : ((hi & 0x7Fu) << 1) | (b[2] >> 7);
        if (exp == (w == 8 ? 0x7FFu : 0xFFu)) return i;
        if (nonneg && (hi & 0x80u)) {
            int zero = (hi & 0x7Fu) == 0;
            for (size_t k = 0; zero && k + 1 < w; k++) zero = b[k] == 0;
            if (!zero) return i;
        }
    }
    return SIZE_MAX;
}

static int load_from(st_file *fp, const char *path, AdapterSet *s, const MethodSpec *specs, int n_specs, TrainState *st,
                     afx_err *e);

int ckpt_load(const char *path, AdapterSet *s, const MethodSpec *specs, int n_specs, TrainState *st, afx_err *e) {
    if (check_specs(s, specs, n_specs, path, e)) return -1;
    st_file f;
    if (st_open(&f, path, e)) return -1;
    return load_from(&f, path, s, specs, n_specs, st, e);
}

int ckpt_load_buffer(const unsigned char *buf, size_t len, const char *label, AdapterSet *s, const MethodSpec *specs,
                     int n_specs, TrainState *st, afx_err *e) {
    if (check_specs(s, specs, n_specs, label, e)) return -1;
    st_file f;
    if (st_parse(&f, buf, len, label, e)) return -1;
    return load_from(&f, label, s, specs, n_specs, st, e);
}

/* the checks and the copy of ckpt_load, on an open file (closed here) */
static int load_from(st_file *fp, const char *path, AdapterSet *s, const MethodSpec *specs, int n_specs, TrainState *st,
                     afx_err *e) {
    st_file f = *fp;
    char cfg[512], meth[4096];
    const char *v;
    int rc = -1, nt = count_tensors(s);
    const st_tensor **found = calloc((size_t)(nt ? nt : 1), sizeof *found);
    TrainState ns;
    memset(&ns, 0, sizeof ns);
    if (!found) {
        afx_fail(e, "%s: out of memory", path);
        goto done;
    }
    // what the file is, and for what
    v = st_meta(&f, "affix_checkpoint");
    if (!v) {
        afx_fail(e, "%s: not an affix training checkpoint (no affix_checkpoint metadata)", path);
        goto done;
    }
    if (strcmp(v, CKPT_VERSION)) {
        afx_fail(e, "%s: checkpoint format %.20s, this affix reads %s", path, v, CKPT_VERSION);
        goto done;
    }
    v = st_meta(&f, "real");
    if (!v || strcmp(v, AFFIX_REAL_NAME)) {
        afx_fail(e, "%s: the checkpoint holds %.20s values but this build computes in %s (resume with the build "
                 "that wrote it)", path, v ? v : "(unknown)", AFFIX_REAL_NAME);
        goto done;
    }
    config_fp(cfg, sizeof cfg, cfg_of(s));
    v = st_meta(&f, "config");
    if (!v || strcmp(v, cfg)) {
        afx_fail(e, "%s: the checkpoint was made for another model: %.200s; this model: %.200s", path,
                 v ? v : "(unknown)", cfg);
        goto done;
    }
    methods_fp(meth, sizeof meth, specs, n_specs, cfg_of(s));
    v = st_meta(&f, "methods");
    if (!v || strcmp(v, meth)) {
        afx_fail(e, "%s: the checkpoint was made for methods '%.200s', not '%.200s'", path, v ? v : "(unknown)", meth);
        goto done;
    }
    if (meta_ll(&f, "step", 0, &ns.step, NULL, path, e) || meta_ll(&f, "epoch", 0, &ns.epoch, NULL, path, e) ||
        meta_ll(&f, "index", 0, &ns.index, NULL, path, e) ||
        meta_ll(&f, "perm_seed", 1, NULL, &ns.perm_seed, path, e) || meta_ll(&f, "rng", 1, NULL, &ns.rng, path, e))
        goto done;
    if (check_state(&ns, path, e)) goto done;
    v = st_meta(&f, "args");
    snprintf(ns.args, sizeof ns.args, "%s", v ? v : "");

    // every tensor present, in this build's dtype, with the parameter's shape
    const st_dtype want = ST_REAL;
    int k = 0;
    for (int i = 0; i < s->n; i++)
        for (int p = 0; p < s->ad[i]->n_params; p++)
            for (int slot = 0; slot < SLOTS; slot++, k++) {
                const AdapterTensor *a = &s->ad[i]->params[p];
                char name[160];
                tensor_name(name, sizeof name, i, slot, a->name);
                const st_tensor *t = st_find(&f, name);
                if (!t) {
                    afx_fail(e, "%s: tensor '%s' is missing", path, name);
                    goto done;
                }
                int same = t->dtype == want && t->ndim == a->ndim;
                for (int d = 0; same && d < a->ndim; d++) same = (uint64_t)t->shape[d] == a->shape[d];
                if (!same) {
                    afx_fail(e, "%s: tensor '%s' is %s with %d dims, expected %s with the shape of the parameter", path,
                             name, st_dtype_name(t->dtype), t->ndim, st_dtype_name(want));
                    goto done;
                }
                found[k] = t;
            }
    if (f.n_tensors != (size_t)nt) {
        afx_fail(e, "%s: %zu tensors, expected %d (another set of adapters?)", path, f.n_tensors, nt);
        goto done;
    }
    // every value finite (and every second moment >= 0), read from the bytes before anything is copied
    k = 0;
    for (int i = 0; i < s->n; i++)
        for (int p = 0; p < s->ad[i]->n_params; p++)
            for (int slot = 0; slot < SLOTS; slot++, k++) {
                size_t at = bad_element(found[k], slot == SLOT_V);
                if (at != SIZE_MAX) {
                    afx_fail(e, "%s: tensor '%s' holds a non-finite%s value at element %zu: not a state to resume from",
                             path, found[k]->name, slot == SLOT_V ? " or negative" : "", at);
                    goto done;
                }
            }
    // all checked: copy (F32 -> float and F64 -> double are exact)
    k = 0;
    for (int i = 0; i < s->n; i++)
        for (int p = 0; p < s->ad[i]->n_params; p++)
            for (int slot = 0; slot < SLOTS; slot++, k++)
                if (st_to_real(found[k], slot_ptr(s, &s->ad[i]->params[p], slot), e)) goto done;
    *st = ns;
    rc = 0;
done:
    free(found);
    st_close(&f);
    return rc;
}
