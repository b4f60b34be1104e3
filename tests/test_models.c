/* test_models.c — loading real models: model.c over gguf.c / safetensors.c / config.c.
 *
 * What this is:
 *   (a) stories260K.gguf (a real pretrained Llama, tests/data/stories260K): its config, the
 *       position-0 logits from BOS against the float64 reference of shared/data/README.md §1, and
 *       the 64 greedy ids from BOS by full recompute, which must equal the reference exactly;
 *   (b) the tiny models written by real tools (tools/oracle/make_hf_dirs.py: transformers
 *       save_pretrained f32 / bf16 / sharded, gguf-py F16 / Q8_0 with llama.cpp's q/k permutation)
 *       against the oracle's logits on the weights each file really holds; sharded == f32 bitwise;
 *   (c) malformed input: GGUF files built in memory below (every prefix of a valid file, absurd
 *       counts, unknown types, bad offsets, duplicates, ...), GGUF models with a wrong architecture,
 *       missing tensors or shapes contradicting the config, the RoPE row permutation on a file
 *       whose rows are numbered, rope_freqs, and HF directories with a missing / malformed
 *       config.json, a missing shard, a wrong shape (written into a mkdtemp directory).
 * Every parse of an in-memory file runs on an exact-size heap copy, so the sanitizers see any read
 * past the end. Test-only code: one line per failed check; ends with "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "llama.h"
#include "model.h"
#include "safetensors.h"
#include "tolerances.h"

#ifdef AFFIX_F64
#define TOL_LOGITS (TOLERANCES[FAM_LOGITS].f64)
#else
#define TOL_LOGITS (TOLERANCES[FAM_LOGITS].f32)
#endif


/* ---- a byte buffer ---------------------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} Buf;

static void put(Buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            fprintf(stderr, "test_models: out of memory\n");
            exit(2);
        }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_le(Buf *b, uint64_t v, int bytes) {
    unsigned char c[8];
    for (int i = 0; i < bytes; i++) c[i] = (unsigned char)(v >> (8 * i));
    put(b, c, (size_t)bytes);
}
static void put_f32(Buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_le(b, u, 4);
}
static void put_gstr(Buf *b, const char *s) {
    put_le(b, strlen(s), 8);
    put(b, s, strlen(s));
}

/* ---- an in-memory GGUF writer ------------------------------------------------------------------ */

enum { MAXKV = 40, MAXT = 40 };
typedef struct {
    char key[96];
    uint32_t type;   /* value type */
    Buf val;         /* the encoded value (after the type) */
} GKv;
typedef struct {
    char name[96];
    uint32_t n_dims, type;
    uint64_t ne[4];
    Buf data;
    int64_t offset; /* -1: placed automatically */
} GT;
typedef struct {
    uint32_t version;
    GKv kv[MAXKV];
    int n_kv;
    GT t[MAXT];
    int n_t;
    uint32_t align;
} G;

static GKv *kv_add(G *g, const char *key, uint32_t type) {
    GKv *k = &g->kv[g->n_kv++];
    memset(k, 0, sizeof *k);
    snprintf(k->key, sizeof k->key, "%s", key);
    k->type = type;
    return k;
}
static void kv_u32(G *g, const char *key, uint32_t v) { put_le(&kv_add(g, key, GGUF_U32)->val, v, 4); }
static void kv_f32(G *g, const char *key, float v) { put_f32(&kv_add(g, key, GGUF_F32)->val, v); }
static void kv_str(G *g, const char *key, const char *s) { put_gstr(&kv_add(g, key, GGUF_STRING)->val, s); }

static GT *t_add(G *g, const char *name, uint32_t type, int nd, uint64_t ne0, uint64_t ne1) {
    GT *t = &g->t[g->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = (uint32_t)nd;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->offset = -1;
    return t;
}

/* F32 values v(i) = scale * (i + 1) * (-1)^i + shift */
static GT *t_f32(G *g, const char *name, int nd, uint64_t ne0, uint64_t ne1, float scale, float shift) {
    GT *t = t_add(g, name, GGML_F32, nd, ne0, ne1);
    uint64_t n = ne0 * (nd > 1 ? ne1 : 1);
    for (uint64_t i = 0; i < n; i++) put_f32(&t->data, scale * (float)(i % 7 + 1) * (i % 2 ? -1.0f : 1.0f) + shift);
    return t;
}

static void g_free(G *g) {
    for (int i = 0; i < g->n_kv; i++) free(g->kv[i].val.p);
    for (int i = 0; i < g->n_t; i++) free(g->t[i].data.p);
    memset(g, 0, sizeof *g);
}

/* The file: header, KVs, infos, padding, data (each tensor aligned; the last one ends the file). */
static Buf g_build(const G *g) {
    Buf b = {0}, data = {0};
    size_t a = g->align ? g->align : 32;
    put(&b, "GGUF", 4);
    put_le(&b, g->version ? g->version : 3, 4);
    put_le(&b, (uint64_t)g->n_t, 8);
    put_le(&b, (uint64_t)g->n_kv, 8);
    for (int i = 0; i < g->n_kv; i++) {
        put_gstr(&b, g->kv[i].key);
        put_le(&b, g->kv[i].type, 4);
        put(&b, g->kv[i].val.p, g->kv[i].val.n);
    }
    for (int i = 0; i < g->n_t; i++) {
        const GT *t = &g->t[i];
        while (data.n % a) put(&data, "", 1);
        uint64_t off = t->offset >= 0 ? (uint64_t)t->offset : data.n;
        put_gstr(&b, t->name);
        put_le(&b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++) put_le(&b, t->ne[d], 8);
        put_le(&b, t->type, 4);
        put_le(&b, off, 8);
        put(&data, t->data.p, t->data.n);
    }
    while (b.n % a) put(&b, "", 1);
    put(&b, data.p, data.n);
    free(data.p);
    return b;
}

/* a small valid llama model: C=8, NH=2, NKV=1, HS=4, FF=12, L=1, V=10 */
static void g_llama(G *g) {
    memset(g, 0, sizeof *g);
    kv_str(g, "general.architecture", "llama");
    kv_u32(g, "llama.embedding_length", 8);
    kv_u32(g, "llama.feed_forward_length", 12);
    kv_u32(g, "llama.block_count", 1);
    kv_u32(g, "llama.attention.head_count", 2);
    kv_u32(g, "llama.attention.head_count_kv", 1);
    kv_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_u32(g, "llama.context_length", 64);
    kv_u32(g, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(g, "tokenizer.ggml.eos_token_id", 2);
    t_f32(g, "token_embd.weight", 2, 8, 10, 0.1f, 0);
    t_f32(g, "blk.0.attn_norm.weight", 1, 8, 1, 0.01f, 1);
    t_f32(g, "blk.0.attn_q.weight", 2, 8, 8, 0.05f, 0);
    t_f32(g, "blk.0.attn_k.weight", 2, 8, 4, 0.05f, 0);
    t_f32(g, "blk.0.attn_v.weight", 2, 8, 4, 0.05f, 0);
    t_f32(g, "blk.0.attn_output.weight", 2, 8, 8, 0.05f, 0);
    t_f32(g, "blk.0.ffn_norm.weight", 1, 8, 1, 0.01f, 1);
    t_f32(g, "blk.0.ffn_gate.weight", 2, 8, 12, 0.05f, 0);
    t_f32(g, "blk.0.ffn_up.weight", 2, 8, 12, 0.05f, 0);
    t_f32(g, "blk.0.ffn_down.weight", 2, 12, 8, 0.05f, 0);
    t_f32(g, "output_norm.weight", 1, 8, 1, 0.01f, 1);
}

static GT *g_tensor(G *g, const char *name) {
    for (int i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}
static GKv *g_kv(G *g, const char *key) {
    for (int i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}
static void g_drop_tensor(G *g, const char *name) {
    GT *t = g_tensor(g, name);
    if (!t) return;
    free(t->data.p);
    int i = (int)(t - g->t);
    memmove(&g->t[i], &g->t[i + 1], (size_t)(g->n_t - i - 1) * sizeof *t);
    g->n_t--;
}

/* parse an exact-size heap copy; returns the parse result, f is closed afterwards unless keep */
static int parse_copy(const unsigned char *p, size_t n, afx_err *e) {
    unsigned char *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, p, n);
    gguf_file f;
    int rc = gguf_parse(&f, copy, n, "mem.gguf", e);
    gguf_close(&f);
    free(copy);
    return rc;
}

static int parse_buf(const Buf *b, afx_err *e) { return parse_copy(b->p, b->n, e); }

static int write_file(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    int ok = fwrite(p, 1, n, fp) == n;
    return fclose(fp) == 0 && ok ? 0 : -1;
}

/* ---- helpers for models ----------------------------------------------------------------------- */

static int argmax(const real *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* logits (B,T,V) of the model for ids (B,T) into a malloc'd array */
static real *logits_of(const Model *m, const int *ids, int B, int T, afx_err *e) {
    LlamaActs a;
    if (llama_acts_alloc(&a, &m->cfg, NULL, B, T, e)) return NULL;
    real *out = NULL;
    if (llama_forward(&m->w, NULL, &a, ids, NULL, NULL, B, T, e) == 0) {
        size_t n = (size_t)B * T * m->cfg.V;
        out = malloc(n * sizeof *out);
        if (out) memcpy(out, a.logits, n * sizeof *out);
    }
    llama_acts_free(&a);
    return out;
}

/* ---- (a) stories260K --------------------------------------------------------------------------- */

static const int STORIES_IDS[64] = {
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
    328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267,
    337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};

static void test_stories(void) {
    const char *path = "tests/data/stories260K/stories260K.gguf";
    Model m;
    afx_err e = {{0}};
    int rc = model_load(&m, path, &e);
    CHECKM(rc == 0, e.msg);
    if (rc) return;
    const LlamaConfig *c = &m.cfg;
    CHECK(m.format == MODEL_GGUF);
    CHECK(c->V == 512 && c->C == 64 && c->FF == 172 && c->L == 5 && c->NH == 8 && c->NKV == 4 && c->HS == 8);
    CHECK(fabs(c->eps - 1e-5) < 1e-12 && c->rope_theta == 10000 && c->rope_factor == 0 && c->max_pos == 2048);
    CHECK(c->tied == 1); /* output.weight is a byte copy of token_embd */
    CHECK(llama_params_count(c) == 260032);
    CHECK(m.bos_id == 1 && m.eos_id == 2);
    CHECK(!strcmp(m.source_dtype, "F32"));

    /* position-0 logits from BOS (reference: float64, printed to 6 significant digits) */
    int bos = 1;
    real *lg = logits_of(&m, &bos, 1, 1, &e);
    CHECKM(lg != NULL, e.msg);
    if (lg) {
        const double ref[4] = {-6.22291, 8.40434, -6.22374, -6.22254};
        double worst = 0;
        for (int i = 0; i < 4; i++) worst = fmax(worst, fabs((double)lg[i] - ref[i]));
        int top = argmax(lg, c->V);
        char msg[200];
        snprintf(msg, sizeof msg, "logits[0..3] worst |err| %.2e; top-1 %d = %.5f; logit[385] = %.5f", worst, top,
                 (double)lg[top], (double)lg[385]);
        printf("  stories260K position 0: %s\n", msg);
        CHECKM(worst < 1e-4, msg);
        CHECKM(top == 403 && fabs((double)lg[403] - 17.0235) < 1e-4, msg);
        CHECKM(fabs((double)lg[385] - 15.4062) < 1e-4, msg);
        free(lg);
    }

    /* greedy from BOS, full recompute at every step */
    int ids[65] = {1}, n = 1, first_bad = -1;
    for (int step = 0; step < 64; step++) {
        real *l = logits_of(&m, ids, 1, n, &e);
        if (!l) break;
        ids[n] = argmax(l + (size_t)(n - 1) * c->V, c->V);
        if (ids[n] != STORIES_IDS[step] && first_bad < 0) first_bad = step;
        n++;
        free(l);
    }
    char msg[120];
    snprintf(msg, sizeof msg, "%d ids generated, first mismatch at step %d", n - 1, first_bad);
    printf("  stories260K greedy: %s\n", msg);
    CHECKM(n == 65 && first_bad < 0, msg);
    model_free(&m);
}

/* ---- (b) the tiny models of real tools --------------------------------------------------------- */

typedef struct {
    st_file f;
    int B, T, V;
    int ids[64];
} Expected;

static int expected_open(Expected *x, afx_err *e) {
    if (st_open(&x->f, "tests/data/tiny-hf/expected.safetensors", e)) return -1;
    const st_tensor *t = st_find(&x->f, "input_ids");
    if (!t || t->ndim != 2 || t->numel > 64) return afx_fail(e, "expected.safetensors: bad input_ids");
    x->B = (int)t->shape[0];
    x->T = (int)t->shape[1];
    return st_to_int(t, x->ids, e);
}

/* max_i |got - ref| / max(1, |ref|) of the model's logits vs expected tensor `key` */
static double logits_err(const Model *m, const Expected *x, const char *key, real **keep, afx_err *e) {
    const st_tensor *t = st_find(&x->f, key);
    if (!t || t->numel != (size_t)x->B * x->T * m->cfg.V) {
        afx_fail(e, "expected.safetensors: %s missing or of the wrong size", key);
        return INFINITY;
    }
    double *ref = malloc(t->numel * sizeof *ref);
    real *got = logits_of(m, x->ids, x->B, x->T, e);
    double worst = INFINITY;
    if (ref && got && st_to_f64(t, ref, e) == 0) {
        worst = 0;
        for (size_t i = 0; i < t->numel; i++)
            worst = fmax(worst, fabs((double)got[i] - ref[i]) / fmax(1, fabs(ref[i])));
    }
    free(ref);
    if (keep) *keep = got;
    else free(got);
    return worst;
}

static void test_tiny(void) {
    Expected x;
    afx_err e = {{0}};
    memset(&x, 0, sizeof x);
    int rc = expected_open(&x, &e);
    CHECKM(rc == 0, e.msg);
    if (rc) {
        st_close(&x.f);
        return;
    }
    static const struct {
        const char *path, *key, *dtype;
        model_format format;
    } CASES[] = {
        {"tests/data/tiny-hf/f32", "logits.f32", "F32", MODEL_HF_DIR},
        {"tests/data/tiny-hf/bf16", "logits.bf16", "BF16", MODEL_HF_DIR},
        {"tests/data/tiny-hf/sharded", "logits.f32", "F32", MODEL_HF_DIR},
        {"tests/data/tiny-gguf/tiny-f16.gguf", "logits.gguf_f16", "F16", MODEL_GGUF},
        {"tests/data/tiny-gguf/tiny-q8_0.gguf", "logits.gguf_q8_0", "Q8_0", MODEL_GGUF},
    };
    Model ms[5];
    real *lg[5] = {0};
    int ok[5] = {0};
    for (int i = 0; i < 5; i++) {
        rc = model_load(&ms[i], CASES[i].path, &e);
        CHECKM(rc == 0, e.msg);
        if (rc) continue;
        ok[i] = 1;
        const Model *m = &ms[i];
        CHECK(m->format == CASES[i].format);
        CHECK(m->cfg.V == 48 && m->cfg.C == 32 && m->cfg.FF == 64 && m->cfg.L == 2 && m->cfg.NH == 4 &&
              m->cfg.NKV == 2 && m->cfg.HS == 8 && !m->cfg.tied && m->cfg.max_pos == 128);
        CHECK(m->bos_id == 1 && m->eos_id == 2); /* config.json has eos [2, 3]: the first */
        CHECKM(!strcmp(m->source_dtype, CASES[i].dtype), m->source_dtype);
        double err = logits_err(m, &x, CASES[i].key, &lg[i], &e);
        char msg[300];
        snprintf(msg, sizeof msg, "%s vs %s: max|err|/max(1,|ref|) = %.2e (tolerance %.0e)", CASES[i].path,
                 CASES[i].key, err, TOL_LOGITS);
        printf("  %s\n", msg);
        CHECKM(err <= TOL_LOGITS, msg);
    }
    if (ok[0] && ok[2]) {
        CHECK(ms[0].w.count == ms[2].w.count && !memcmp(ms[0].w.mem, ms[2].w.mem, ms[0].w.count * sizeof(real)));
        size_t n = (size_t)x.B * x.T * ms[0].cfg.V;
        CHECK(lg[0] && lg[2] && !memcmp(lg[0], lg[2], n * sizeof(real)));
    }
    /* the permutation, directly: the F16 GGUF's q/k (after un-permuting) are the HF rows rounded */
    if (ok[0] && ok[3]) {
        int bad = 0;
        for (int l = 0; l < 2; l++)
            for (int kind = LT_WQ; kind <= LT_WK; kind++) {
                const real *a = llama_tensor_ptr(&ms[0].w, kind, l), *b = llama_tensor_ptr(&ms[3].w, kind, l);
                for (size_t i = 0; i < llama_tensor_numel(&ms[0].cfg, kind); i++)
                    bad += fabs((double)a[i] - (double)b[i]) > fabs((double)a[i]) / 1024 + 1e-7;
            }
        CHECK(bad == 0);
    }
    /* the head in chunks (llama_loss runs lm_head + cross-entropy + its gradient 3 rows at a time)
     * against the whole-rows head: the same loss and the same gradient of the residual stream */
    if (ok[0]) {
        const Model *m = &ms[0];
        int B = x.B, T = x.T, *labels = malloc(sizeof(int) * (size_t)B * T);
        for (int i = 0; i < B * T; i++) labels[i] = i % 5 == 3 ? -100 : x.ids[i];
        long rows = llama_count_targets(labels, B, T, 0);
        double loss[2] = {0, 0}, se = 0, sr = 0;
        long cnt[2] = {0, 0};
        real *dres[2] = {NULL, NULL};
        size_t nres = (size_t)B * T * m->cfg.C;
        for (int pass = 0; pass < 2; pass++) {
            int chunk = pass ? 3 : 0;
            LlamaActs a;
            LlamaActGrads d;
            // pass 1 also in the training layout of a frozen base (views the backward does not read: one slot)
            unsigned lay = pass ? LLAMA_ACTS_TRAIN | LLAMA_ACTS_FROZEN : 0;
            size_t ab = llama_acts_bytes_chunk(&m->cfg, NULL, B, T, (int)rows, chunk, lay);
            if (pass) CHECKM(ab < llama_acts_bytes_chunk(&m->cfg, NULL, B, T, (int)rows, chunk, 0), "lean layout not smaller");
            void *am = malloc(ab);
            real *dm = malloc(llama_actgrads_count_chunk(&m->cfg, NULL, B, T, (int)rows, chunk) * sizeof(real));
            llama_acts_bind_chunk(&a, &m->cfg, NULL, B, T, (int)rows, chunk, lay, am);
            llama_actgrads_bind_chunk(&d, &m->cfg, NULL, B, T, (int)rows, chunk, dm);
            int r = llama_select_rows(&a, labels, B, T, &e) || llama_forward(&m->w, NULL, &a, x.ids, NULL, NULL, B, T, &e) ||
                    llama_loss(&a, labels, B, T, &loss[pass], &cnt[pass], &e) ||
                    llama_backward(&m->w, NULL, NULL, &a, &d, labels, 1.0 / (double)rows, B, T, &e);
            CHECKM(r == 0 && (pass == 0 || a.head_chunk == 3), e.msg);
            dres[pass] = malloc(nres * sizeof(real));
            memcpy(dres[pass], d.dres, nres * sizeof(real));
            free(am), free(dm);
        }
        for (size_t i = 0; i < nres; i++) {
            double df = (double)dres[1][i] - (double)dres[0][i];
            se += df * df, sr += (double)dres[0][i] * dres[0][i];
        }
        char msg[200];
        snprintf(msg, sizeof msg, "head in chunks of 3 (%ld rows): loss %.9g vs %.9g, count %ld vs %ld, residual gradient nmse %.1e",
                 rows, loss[1], loss[0], cnt[1], cnt[0], sr > 0 ? se / sr : se);
        printf("  %s\n", msg);
        CHECKM(cnt[0] == rows && cnt[1] == rows && fabs(loss[1] - loss[0]) <= 1e-6 * fabs(loss[0]) && sr > 0 &&
                   se / sr <= 1e-10, msg);
        free(dres[0]), free(dres[1]), free(labels);
    }
    /* the same GGUFs and the BF16 safetensors with their matrices kept in the file's blocks (--weights
     * file): the block kinds hold no room in the arena, and the logits are those of the converted
     * model, bit for bit; an F32 safetensors model keeps nothing (there is nothing to save) */
    for (int i = 0; i < 5; i++) {
        if (i == 2) continue; /* (the sharded copy of case 0) */
        Model mk;
        ModelOpts mo = {.keep_blocks = 1};
        rc = model_load_opts(&mk, CASES[i].path, &mo, &e);
        CHECKM(rc == 0, e.msg);
        if (rc || !ok[i]) continue;
        if (i == 0) {
            CHECK(mk.kept == 0 && mk.n_stf == 0 && mk.w.count == ms[i].w.count);
            model_free(&mk);
            continue;
        }
        unsigned want = 1u << LT_EMBED | 1u << LT_WQ | 1u << LT_WK | 1u << LT_WV | 1u << LT_WO | 1u << LT_WG | 1u << LT_WU |
                        1u << LT_WD | 1u << LT_LM_HEAD;
        int mapped = CASES[i].format == MODEL_GGUF ? mk.map != NULL : mk.n_stf == 1 && mk.map == NULL;
        char msg[200];
        snprintf(msg, sizeof msg, "%s kept kinds %#x (want %#x), arena %zu of %zu reals", CASES[i].path, mk.kept, want,
                 mk.w.count, ms[i].w.count);
        CHECKM(mk.kept == want && mk.w.count == 2 * (size_t)2 * 32 + 32 && mapped, msg);
        CHECK(mk.w.t[LT_WQ] == NULL && llama_tensor_q(&mk.w, LT_WQ, 1) && !llama_tensor_q(&mk.w, LT_LN1, 0));
        CHECK(llama_params_bytes(&mk.w) < llama_params_bytes(&ms[i].w));
        real *got = logits_of(&mk, x.ids, x.B, x.T, &e);
        size_t n = (size_t)x.B * x.T * mk.cfg.V, differ = 0;
        for (size_t j = 0; got && lg[i] && j < n; j++) differ += memcmp(&got[j], &lg[i][j], sizeof(real)) != 0;
        snprintf(msg, sizeof msg, "%s kept in blocks: %zu of %zu logits differ from the converted model's", CASES[i].path,
                 differ, n);
        printf("  %s\n", msg);
        CHECKM(got && lg[i] && differ == 0, msg);
        free(got);
        model_free(&mk);
    }
    for (int i = 0; i < 5; i++) {
        free(lg[i]);
        if (ok[i]) model_free(&ms[i]);
    }
    st_close(&x.f);
}

/* ---- (c) malformed GGUF in memory --------------------------------------------------------------- */

static void expect_fail(const Buf *b, const char *needle, int line) {
    afx_err e = {{0}};
    int rc = parse_buf(b, &e);
    check_at(rc == -1 && !strncmp(e.msg, "mem.gguf: ", 10) && strstr(e.msg, needle), __FILE__, line, needle, e.msg);
}
#define EXPECT_FAIL(b, needle) expect_fail(b, needle, __LINE__)

static void test_gguf_parse(void) {
    afx_err e = {{0}};
    G g;
    g_llama(&g);
    /* a string array, an f64, a bool, an i8 array */
    GKv *k = kv_add(&g, "tokenizer.ggml.tokens", GGUF_ARRAY);
    put_le(&k->val, GGUF_STRING, 4);
    put_le(&k->val, 3, 8);
    put_gstr(&k->val, "<unk>");
    put_gstr(&k->val, "");
    put_gstr(&k->val, "hello");
    k = kv_add(&g, "x.f64", GGUF_F64);
    put_le(&k->val, 0x400921fb54442d18ull, 8); /* pi */
    k = kv_add(&g, "x.bool", GGUF_BOOL);
    put_le(&k->val, 1, 1);
    k = kv_add(&g, "x.i8s", GGUF_ARRAY);
    put_le(&k->val, GGUF_I8, 4);
    put_le(&k->val, 2, 8);
    put_le(&k->val, 0xff, 1);
    put_le(&k->val, 0x7f, 1);
    Buf b = g_build(&g);

    /* valid */
    unsigned char *copy = malloc(b.n);
    memcpy(copy, b.p, b.n);
    gguf_file f;
    int rc = gguf_parse(&f, copy, b.n, "mem.gguf", &e);
    CHECKM(rc == 0, e.msg);
    if (rc == 0) {
        CHECK(f.version == 3 && f.n_tensors == 11 && f.alignment == 32 && f.data_offset % 32 == 0);
        const gguf_kv *kv = gguf_find_kv(&f, "tokenizer.ggml.tokens");
        gguf_str s;
        CHECK(kv && kv->type == GGUF_ARRAY && kv->elem == GGUF_STRING && kv->n == 3);
        CHECK(kv && gguf_kv_arr_string(kv, 2, &s) == 0 && s.n == 5 && !memcmp(s.p, "hello", 5));
        CHECK(kv && gguf_kv_arr_string(kv, 1, &s) == 0 && s.n == 0);
        CHECK(kv && gguf_kv_arr_string(kv, 3, &s) == -1);
        int64_t iv;
        double dv;
        CHECK((kv = gguf_find_kv(&f, "x.i8s")) && gguf_kv_arr_int(kv, 0, &iv) == 0 && iv == -1 &&
              gguf_kv_arr_int(kv, 1, &iv) == 0 && iv == 127);
        CHECK((kv = gguf_find_kv(&f, "x.f64")) && gguf_kv_float(kv, &dv) == 0 && dv == 3.141592653589793);
        CHECK((kv = gguf_find_kv(&f, "x.bool")) && gguf_kv_int(kv, &iv) == 0 && iv == 1);
        CHECK((kv = gguf_find_kv(&f, "general.architecture")) && gguf_kv_string(kv, &s) == 0 && s.n == 5 &&
              gguf_kv_int(kv, &iv) == -1);
        CHECK(gguf_find_kv(&f, "nope") == NULL && gguf_find_tensor(&f, "nope") == NULL);
        const gguf_tensor *t = gguf_find_tensor(&f, "blk.0.ffn_down.weight");
        CHECK(t && t->n_dims == 2 && t->ne[0] == 12 && t->ne[1] == 8 && t->numel == 96 && t->nbytes == 384);
        real v[96];
        CHECK(t && gguf_to_real(t, v, &e) == 0 && v[0] == (real)0.05f && v[1] == (real)-0.1f);
        gguf_close(&f);
    }
    free(copy);

    /* every prefix fails cleanly, naming the file */
    int prefix_bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        afx_err pe = {{0}};
        if (parse_copy(b.p, n, &pe) != -1 || strncmp(pe.msg, "mem.gguf: ", 10)) prefix_bad++;
    }
    CHECK(prefix_bad == 0);
    /* a deterministic byte-flip sweep: any result is fine, as long as it is clean (sanitizers) */
    unsigned long long s = 12345;
    for (int it = 0; it < 3000; it++) {
        Buf m = {0};
        put(&m, b.p, b.n);
        for (int j = 0; j < 1 + it % 4; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(s >> 33) % (m.n < 400 ? m.n : 400); /* the headers live in front */
            m.p[at] = (unsigned char)(s >> 20);
        }
        afx_err fe;
        rc = parse_buf(&m, &fe);
        free(m.p);
        if (rc != 0 && rc != -1) break;
    }
    CHECK(rc == 0 || rc == -1);
    free(b.p);

    /* header-level errors */
    Buf h = {0};
    put(&h, "GGUX", 4);
    put_le(&h, 3, 4);
    put_le(&h, 0, 8);
    put_le(&h, 0, 8);
    EXPECT_FAIL(&h, "not a GGUF file");
    memcpy(h.p, "GGUF", 4);
    h.p[4] = 1;
    EXPECT_FAIL(&h, "version 1");
    h.p[4] = 0, h.p[7] = 3;
    EXPECT_FAIL(&h, "big-endian");
    h.p[7] = 0, h.p[4] = 7;
    EXPECT_FAIL(&h, "unknown GGUF version 7");
    h.p[4] = 3;
    CHECK(parse_buf(&h, &e) == 0); /* an empty v3 file is valid */
    h.p[4] = 2;
    CHECK(parse_buf(&h, &e) == 0);
    h.n = 8;
    put_le(&h, (uint64_t)1 << 60, 8);
    put_le(&h, 0, 8);
    EXPECT_FAIL(&h, "tensor count");
    h.n = 8;
    put_le(&h, 0, 8);
    put_le(&h, (uint64_t)1 << 62, 8);
    EXPECT_FAIL(&h, "metadata count");
    free(h.p);

    /* KV-level errors, each on top of the valid model */
    G g2;
#define WITH(edit_block, needle)                                                                                \
    do {                                                                                                        \
        g_llama(&g2);                                                                                           \
        edit_block;                                                                                             \
        Buf bb = g_build(&g2);                                                                                  \
        EXPECT_FAIL(&bb, needle);                                                                               \
        free(bb.p);                                                                                             \
        g_free(&g2);                                                                                            \
    } while (0)
    WITH({ put_le(&kv_add(&g2, "x", 13)->val, 0, 4); }, "unknown value type 13");
    WITH(
        {
            GKv *a = kv_add(&g2, "x", GGUF_ARRAY);
            put_le(&a->val, GGUF_U32, 4);
            put_le(&a->val, (uint64_t)1 << 61, 8);
        },
        "cannot fit");
    WITH(
        {
            GKv *a = kv_add(&g2, "x", GGUF_ARRAY);
            put_le(&a->val, GGUF_STRING, 4);
            put_le(&a->val, 100000, 8);
        },
        "cannot fit");
    WITH(
        {
            GKv *a = kv_add(&g2, "x", GGUF_ARRAY);
            put_le(&a->val, 99, 4);
            put_le(&a->val, 1, 8);
        },
        "unknown array element type 99");
    WITH(
        {
            GKv *a = kv_add(&g2, "x", GGUF_ARRAY);
            put_le(&a->val, GGUF_ARRAY, 4);
            put_le(&a->val, 1, 8);
        },
        "arrays of arrays");
    WITH({ put_le(&kv_add(&g2, "x", GGUF_STRING)->val, (uint64_t)1 << 40, 8); }, "has length");
    WITH({ put_le(&kv_add(&g2, "x", GGUF_BOOL)->val, 2, 1); }, "bool value 2");
    WITH({ kv_u32(&g2, "llama.block_count", 2); }, "duplicate metadata key 'llama.block_count'");
    WITH({ kv_str(&g2, "general.alignment", "32"); }, "general.alignment has type string");
    WITH({ kv_u32(&g2, "general.alignment", 24); }, "not a power of two");
    WITH({ kv_u32(&g2, "general.alignment", 0); }, "not a power of two");
    /* tensor-level errors */
    WITH({ g_tensor(&g2, "blk.0.attn_q.weight")->type = 4; }, "unknown ggml type 4");
    WITH({ g_tensor(&g2, "blk.0.attn_q.weight")->type = 99; }, "unknown ggml type 99");
    WITH({ g_tensor(&g2, "blk.0.attn_q.weight")->n_dims = 5; }, "5 dims");
    WITH(
        {
            GT *t = t_add(&g2, "huge", GGML_F32, 3, (uint64_t)1 << 40, (uint64_t)1 << 40);
            t->ne[2] = 1 << 20;
        },
        "overflows");
    WITH({ t_add(&g2, "neg", GGML_F32, 1, (uint64_t)1 << 63, 1); }, "negative");
    WITH({ t_add(&g2, "blk.0.attn_q.weight", GGML_F32, 1, 0, 1); }, "duplicate tensor name 'blk.0.attn_q.weight'");
    WITH({ g_tensor(&g2, "blk.0.attn_q.weight")->offset = 4; }, "not a multiple of the alignment");
    WITH({ g_tensor(&g2, "blk.0.attn_k.weight")->offset = 0; }, "overlap");
    WITH({ g_tensor(&g2, "output_norm.weight")->offset = 1 << 20; }, "outside the data section");
    WITH({ g_tensor(&g2, "output_norm.weight")->ne[0] = 9; }, "outside the data section");
    WITH({ t_add(&g2, "q8", GGML_Q8_0, 1, 33, 1); }, "not a multiple of its block size 32");
    WITH({ put_le(&kv_add(&g2, "", GGUF_U8)->val, 0, 1); }, "is empty");
#undef WITH

    /* NUL inside a key, written by hand */
    g_llama(&g2);
    Buf nb = g_build(&g2);
    for (size_t i = 0; i + 17 <= nb.n; i++)
        if (!memcmp(nb.p + i, "llama.block_count", 17)) {
            nb.p[i + 5] = 0;
            break;
        }
    EXPECT_FAIL(&nb, "NUL byte");
    free(nb.p);
    g_free(&g2);

    /* conversion: Q8_0 by hand, and an unsupported type by name */
    g_llama(&g2);
    GT *q = t_add(&g2, "q8", GGML_Q8_0, 2, 32, 2);
    for (int blk = 0; blk < 2; blk++) {
        put_le(&q->data, blk ? 0xB800 : 0x3800, 2); /* d = 0.5, -0.5 */
        for (int j = 0; j < 32; j++) put_le(&q->data, (uint64_t)(unsigned char)(signed char)(j * 8 - 128), 1);
    }
    GT *q4 = t_add(&g2, "q4", 10 /* Q2_K: a type affix does not convert */, 1, 256, 1);
    put(&q4->data, (unsigned char[84]){0}, 84);
    Buf qb = g_build(&g2);
    copy = malloc(qb.n);
    memcpy(copy, qb.p, qb.n);
    rc = gguf_parse(&f, copy, qb.n, "mem.gguf", &e);
    CHECKM(rc == 0, e.msg);
    if (rc == 0) {
        real v[256];
        const gguf_tensor *t = gguf_find_tensor(&f, "q8");
        CHECK(t && t->nbytes == 68 && gguf_to_real(t, v, &e) == 0 && v[0] == -64 && v[1] == -60 && v[31] == 60 &&
              v[32] == 64 && v[63] == -60);
        t = gguf_find_tensor(&f, "q4");
        CHECK(t && gguf_to_real(t, v, &e) == -1 && strstr(e.msg, "'q4'") && strstr(e.msg, "Q2_K"));
        gguf_close(&f);
    }
    free(copy);
    free(qb.p);
    g_free(&g2);
    g_free(&g);
}

/* ---- (c) GGUF models from files ---------------------------------------------------------------- */

static int load_g(G *g, const char *path, Model *m, afx_err *e) {
    Buf b = g_build(g);
    int rc = write_file(path, b.p, b.n);
    free(b.p);
    if (rc) return afx_fail(e, "%s: cannot write", path);
    return model_load(m, path, e);
}

static void expect_model_fail(G *g, const char *path, const char *needle, int line) {
    Model m;
    afx_err e = {{0}};
    int rc = load_g(g, path, &m, &e);
    check_at(rc == -1 && !strncmp(e.msg, path, strlen(path)) && strstr(e.msg, needle), __FILE__, line, needle, e.msg);
    if (rc == 0) model_free(&m);
    g_free(g);
}

static void test_gguf_models(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    afx_err e = {{0}};
    Model m;
    G g;

    /* the valid small model: config, tied (no output.weight), bos/eos */
    g_llama(&g);
    int rc = load_g(&g, path, &m, &e);
    CHECKM(rc == 0, e.msg);
    if (rc == 0) {
        CHECK(m.cfg.V == 10 && m.cfg.C == 8 && m.cfg.FF == 12 && m.cfg.L == 1 && m.cfg.NH == 2 && m.cfg.NKV == 1 &&
              m.cfg.HS == 4 && m.cfg.tied && m.cfg.max_pos == 64 && m.cfg.rope_theta == 10000);
        CHECK(m.bos_id == 1 && m.eos_id == 2 && !strcmp(m.source_dtype, "F32") && m.format == MODEL_GGUF);
        model_free(&m);
    }
    g_free(&g);

    /* the RoPE permutation: attn_q / attn_k row r holds the value r; HF row h*HS + a*HS/2 + i must
     * then hold h*HS + 2i + a. An output.weight different from token_embd makes the model untied. */
    g_llama(&g);
    for (int kk = 0; kk < 2; kk++) {
        GT *t = g_tensor(&g, kk ? "blk.0.attn_k.weight" : "blk.0.attn_q.weight");
        t->data.n = 0;
        for (uint64_t r = 0; r < t->ne[1]; r++)
            for (uint64_t c = 0; c < t->ne[0]; c++) put_f32(&t->data, (float)r);
    }
    t_f32(&g, "output.weight", 2, 8, 10, 0.2f, 0);
    rc = load_g(&g, path, &m, &e);
    CHECKM(rc == 0, e.msg);
    if (rc == 0) {
        int bad = 0, HS = m.cfg.HS;
        for (int kk = 0; kk < 2; kk++) {
            const real *w = llama_tensor_ptr(&m.w, kk ? LT_WK : LT_WQ, 0);
            int nh = kk ? m.cfg.NKV : m.cfg.NH;
            for (int h = 0; h < nh; h++)
                for (int a = 0; a < 2; a++)
                    for (int i = 0; i < HS / 2; i++)
                        for (int c = 0; c < m.cfg.C; c++)
                            bad += w[(size_t)(h * HS + a * HS / 2 + i) * m.cfg.C + c] != (real)(h * HS + 2 * i + a);
        }
        CHECK(bad == 0);
        CHECK(!m.cfg.tied);
        model_free(&m);
    }
    g_free(&g);

    /* an output.weight byte-identical to token_embd: tied */
    g_llama(&g);
    t_f32(&g, "output.weight", 2, 8, 10, 0.1f, 0);
    rc = load_g(&g, path, &m, &e);
    CHECKM(rc == 0 && m.cfg.tied, e.msg);
    if (rc == 0) model_free(&m);
    g_free(&g);

    /* rope_freqs: llama3 scaling (factor 8, low 1, high 4, original 8192) with HS = 4, theta 5e5
     * gives frequencies in every band when original is small: use original_context_length 16 */
    g_llama(&g);
    kv_f32(&g, "llama.rope.freq_base", 10000.0f);
    kv_u32(&g, "llama.rope.scaling.original_context_length", 64);
    {
        /* HS = 4: inv_freq = 1, 0.01; wavelengths 2*pi, 628: hi_wl = 16, lo_wl = 64 -> 1 (high), 8 (low) */
        GT *t = t_add(&g, "rope_freqs.weight", GGML_F32, 1, 2, 1);
        put_f32(&t->data, 1.0f);
        put_f32(&t->data, 8.0f);
    }
    rc = load_g(&g, path, &m, &e);
    CHECKM(rc == 0, e.msg);
    if (rc == 0) {
        CHECK(m.cfg.rope_factor == 8 && m.cfg.rope_low_freq_factor == 1 && m.cfg.rope_high_freq_factor == 4 &&
              m.cfg.rope_original_max_position == 64);
        model_free(&m);
    }
    g_free(&g);
    g_llama(&g);
    {
        GT *t = t_add(&g, "rope_freqs.weight", GGML_F32, 1, 2, 1);
        put_f32(&t->data, 1.5f);
        put_f32(&t->data, 8.0f);
    }
    expect_model_fail(&g, path, "rope_freqs.weight[0] = 1.5", __LINE__);

    /* model-level errors */
    g_llama(&g);
    g_kv(&g, "general.architecture")->val.n = 0;
    put_gstr(&g_kv(&g, "general.architecture")->val, "gpt2");
    expect_model_fail(&g, path, "general.architecture is 'gpt2'", __LINE__);
    g_llama(&g);
    g_drop_tensor(&g, "blk.0.ffn_up.weight");
    expect_model_fail(&g, path, "tensor 'blk.0.ffn_up.weight' is missing", __LINE__);
    g_llama(&g);
    g_tensor(&g, "blk.0.attn_k.weight")->ne[1] = 2; /* 16 values: fits its bytes, contradicts NKV*HS = 4 */
    expect_model_fail(&g, path, "tensor 'blk.0.attn_k.weight' has ne [8,2], expected [8,4]", __LINE__);
    g_llama(&g);
    g_kv(&g, "llama.embedding_length")->key[0] = 'x';
    expect_model_fail(&g, path, "'llama.embedding_length' is missing", __LINE__);
    g_llama(&g);
    kv_u32(&g, "llama.rope.dimension_count", 2);
    expect_model_fail(&g, path, "partial rotary", __LINE__);
    g_llama(&g);
    kv_str(&g, "llama.rope.scaling.type", "yarn");
    kv_f32(&g, "llama.rope.scaling.factor", 4);
    expect_model_fail(&g, path, "rope scaling 'yarn'", __LINE__);
    g_llama(&g);
    kv_u32(&g, "llama.vocab_size", 11);
    expect_model_fail(&g, path, "llama.vocab_size 11", __LINE__);
    g_llama(&g);
    g_kv(&g, "llama.attention.head_count_kv")->key[0] = 'x';
    kv_str(&g, "llama.attention.head_count_kv", "one");
    expect_model_fail(&g, path, "'llama.attention.head_count_kv' has type string", __LINE__);
    g_llama(&g);
    {
        GT *t = g_tensor(&g, "blk.0.ffn_up.weight"); /* F64: parsed, but not a type affix converts */
        t->type = 28;
        t->data.n = 0;
        for (int i = 0; i < 96; i++) put_le(&t->data, 0x3ff0000000000000ull, 8);
    }
    expect_model_fail(&g, path, "tensor 'blk.0.ffn_up.weight' has type F64", __LINE__);
    unlink(path);

    /* not a GGUF at all, and a path that does not exist */
    write_file(path, "hello", 5);
    rc = model_load(&m, path, &e);
    CHECKM(rc == -1 && strstr(e.msg, path) && strstr(e.msg, "GGUF"), e.msg);
    unlink(path);
    rc = model_load(&m, path, &e);
    CHECKM(rc == -1 && strstr(e.msg, path) && strstr(e.msg, "cannot open"), e.msg);
}

/* ---- (c) HF directories ------------------------------------------------------------------------ */

static const char *TINY_CONFIG =
    "{\"vocab_size\": 6, \"hidden_size\": 4, \"intermediate_size\": 6, \"num_hidden_layers\": 1,"
    " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-5,"
    " \"tie_word_embeddings\": true, \"bos_token_id\": 0, \"eos_token_id\": 5}";

/* model.safetensors for TINY_CONFIG (head_dim 2); bad = the name of a tensor to give shape [3] */
static Buf tiny_st(const char *bad, const char *skip, int extra) {
    static const struct {
        const char *name;
        int d0, d1;
    } T[] = {
        {"model.embed_tokens.weight", 6, 4},
        {"model.layers.0.input_layernorm.weight", 4, 0},
        {"model.layers.0.self_attn.q_proj.weight", 4, 4},
        {"model.layers.0.self_attn.k_proj.weight", 2, 4},
        {"model.layers.0.self_attn.v_proj.weight", 2, 4},
        {"model.layers.0.self_attn.o_proj.weight", 4, 4},
        {"model.layers.0.post_attention_layernorm.weight", 4, 0},
        {"model.layers.0.mlp.gate_proj.weight", 6, 4},
        {"model.layers.0.mlp.up_proj.weight", 6, 4},
        {"model.layers.0.mlp.down_proj.weight", 4, 6},
        {"model.norm.weight", 4, 0},
        {"lm_head.weight", 6, 4},                              /* tied: ignored */
        {"model.layers.0.self_attn.rotary_emb.inv_freq", 1, 0}, /* unknown: ignored */
    };
    Buf h = {0}, data = {0};
    char tmp[300];
    put(&h, "{", 1);
    int first = 1;
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        if (skip && !strcmp(T[i].name, skip)) continue;
        if (!extra && i >= 11) continue;
        int d0 = T[i].d0, d1 = T[i].d1;
        if (bad && !strcmp(T[i].name, bad)) d0 = 3, d1 = 0;
        size_t n = (size_t)d0 * (d1 ? d1 : 1);
        if (d1) snprintf(tmp, sizeof tmp, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                         first ? "" : ",", T[i].name, d0, d1, data.n, data.n + 4 * n);
        else snprintf(tmp, sizeof tmp, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                      first ? "" : ",", T[i].name, d0, data.n, data.n + 4 * n);
        put(&h, tmp, strlen(tmp));
        for (size_t j = 0; j < n; j++) put_f32(&data, 0.1f * (float)(j % 5) - 0.2f);
        first = 0;
    }
    put(&h, "}", 1);
    Buf b = {0};
    put_le(&b, h.n, 8);
    put(&b, h.p, h.n);
    put(&b, data.p, data.n);
    free(h.p);
    free(data.p);
    return b;
}

static void write_text(const char *dir, const char *name, const char *text) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_file(p, text, strlen(text));
}

static void write_buf(const char *dir, const char *name, Buf b) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_file(p, b.p, b.n);
    free(b.p);
}

static void rm(const char *dir, const char *name) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

/* model_load(dir) must fail with a message that starts with dir and holds every needle */
static void expect_dir_fail(const char *dir, const char *n1, const char *n2, int line) {
    Model m;
    afx_err e = {{0}};
    int rc = model_load(&m, dir, &e);
    int ok = rc == -1 && !strncmp(e.msg, dir, strlen(dir)) && strstr(e.msg, n1) && (!n2 || strstr(e.msg, n2));
    check_at(ok, __FILE__, line, n1, e.msg);
    if (rc == 0) model_free(&m);
}

static void test_hf_dirs(const char *tmp) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/hf", tmp);
    mkdir(dir, 0700);
    Model m;
    afx_err e = {{0}};

    expect_dir_fail(dir, "config.json: cannot open", NULL, __LINE__);
    write_text(dir, "config.json", "{\"vocab_size\": 6,");
    expect_dir_fail(dir, "config.json", "JSON", __LINE__);
    write_text(dir, "config.json", TINY_CONFIG);
    expect_dir_fail(dir, "no model.safetensors", NULL, __LINE__);

    /* valid, with an ignored lm_head (tied) and an ignored rotary_emb.inv_freq */
    write_buf(dir, "model.safetensors", tiny_st(NULL, NULL, 1));
    int rc = model_load(&m, dir, &e);
    CHECKM(rc == 0, e.msg);
    if (rc == 0) {
        CHECK(m.format == MODEL_HF_DIR && m.cfg.tied && m.cfg.HS == 2 && m.bos_id == 0 && m.eos_id == 5);
        CHECK(m.w.mem[0] == (real)-0.2f);
        model_free(&m);
    }
    write_buf(dir, "model.safetensors", tiny_st("model.layers.0.self_attn.k_proj.weight", NULL, 0));
    expect_dir_fail(dir,
                    "model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [3], expected [2,4]",
                    NULL, __LINE__);
    write_buf(dir, "model.safetensors", tiny_st(NULL, "model.norm.weight", 0));
    expect_dir_fail(dir, "model.safetensors: tensor 'model.norm.weight' is missing", NULL, __LINE__);
    write_text(dir, "model.safetensors", "not a safetensors file");
    expect_dir_fail(dir, "model.safetensors: ", NULL, __LINE__);
    rm(dir, "model.safetensors");

    /* sharded: the real index of tiny-hf/sharded with one shard missing / one renamed */
    char src[700], *txt = NULL;
    FILE *fp = fopen("tests/data/tiny-hf/sharded/model.safetensors.index.json", "rb");
    size_t len = 0;
    if (fp) {
        txt = calloc(1, 1 << 16);
        len = fread(txt, 1, (1 << 16) - 1, fp);
        fclose(fp);
    }
    CHECK(txt && len > 0);
    if (txt) {
        write_text(dir, "model.safetensors.index.json", txt);
        write_text(dir, "config.json", "{}");
        expect_dir_fail(dir, "config.json: field 'vocab_size' is missing", NULL, __LINE__);
        /* the tiny-hf config, copied */
        FILE *cf = fopen("tests/data/tiny-hf/sharded/config.json", "rb");
        char cfg[4096] = {0};
        if (REQUIREM(cf != NULL, "tests/data/tiny-hf/sharded/config.json")) {
            size_t cn = fread(cfg, 1, sizeof cfg - 1, cf);
            cfg[cn] = 0;
            fclose(cf);
        }
        write_text(dir, "config.json", cfg);
        for (int i = 1; i <= 2; i++) { /* shards 1 and 2 present, 3 missing */
            char name[64];
            snprintf(name, sizeof name, "model-0000%d-of-00003.safetensors", i);
            snprintf(src, sizeof src, "tests/data/tiny-hf/sharded/%s", name);
            FILE *sf = fopen(src, "rb");
            Buf b = {0};
            if (REQUIREM(sf != NULL, src)) {
                unsigned char chunk[4096];
                size_t k;
                while ((k = fread(chunk, 1, sizeof chunk, sf)) > 0) put(&b, chunk, k);
                fclose(sf);
            }
            write_buf(dir, name, b);
        }
        expect_dir_fail(dir, "model-00003-of-00003.safetensors: cannot open", "tensor 'lm_head.weight'", __LINE__);
        /* a tensor whose shard does not hold it: every shard-3 entry pointed at shard 2 */
        for (char *p = txt; (p = strstr(p, "model-00003-of")); p++) p[10] = '2';
        write_text(dir, "model.safetensors.index.json", txt);
        expect_dir_fail(dir,
                        "model-00002-of-00003.safetensors: tensor 'model.layers.1.input_layernorm.weight' is missing",
                        NULL, __LINE__);
        write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"lm_head.weight\": \"../x.safetensors\"}}");
        expect_dir_fail(dir, "model.safetensors.index.json: weight_map entry 'lm_head.weight' is not a plain file name",
                        NULL, __LINE__);
        write_text(dir, "model.safetensors.index.json",
                   "{\"weight_map\": {\"lm_head.weight\": \"model-00001-of-00003.safetensors\"}}");
        expect_dir_fail(dir,
                        "model.safetensors.index.json: tensor 'model.embed_tokens.weight' is not in the weight_map",
                        NULL, __LINE__);
        write_text(dir, "model.safetensors.index.json", "{\"weight_map\": [1]}");
        expect_dir_fail(dir, "model.safetensors.index.json: \"weight_map\" is missing", NULL, __LINE__);
        write_text(dir, "model.safetensors.index.json", "{");
        expect_dir_fail(dir, "model.safetensors.index.json: not valid JSON", NULL, __LINE__);
        rm(dir, "model-00001-of-00003.safetensors");
        rm(dir, "model-00002-of-00003.safetensors");
        rm(dir, "model.safetensors.index.json");
        free(txt);
    }
    rm(dir, "config.json");
    rmdir(dir);
}

/* ---- the tensor table (affix info) ------------------------------------------------------------ */

static void test_tensor_table(void) {
    ModelTensor *rows;
    size_t n;
    afx_err e = {{0}};
    int rc = model_list_tensors("tests/data/stories260K/stories260K.gguf", &rows, &n, &e);
    CHECKM(rc == 0, e.msg);
    if (rc == 0) {
        CHECK(n == 48 && !strcmp(rows[0].name, "token_embd.weight") && !strcmp(rows[0].dtype, "F32") &&
              rows[0].ndim == 2 && rows[0].shape[0] == 64 && rows[0].shape[1] == 512);
        free(rows);
    }
    rc = model_list_tensors("tests/data/tiny-hf/sharded", &rows, &n, &e);
    CHECKM(rc == 0, e.msg);
    if (rc == 0) {
        int shards = 1;
        for (size_t i = 1; i < n; i++) shards += strcmp(rows[i].file, rows[i - 1].file) != 0;
        CHECK(n == 21 && shards == 3 && !strcmp(rows[0].file, "model-00001-of-00003.safetensors"));
        free(rows);
    }
}

int main(void) {
    char dirbuf[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(dirbuf, sizeof dirbuf, "%s/affix_test_models_XXXXXX", tmp && *tmp ? tmp : "/tmp");

    test_stories();
    test_tiny();
    test_gguf_parse();
    test_tensor_table();
    if (require_at(mkdtemp(dirbuf) != NULL, __FILE__, __LINE__, "create a temporary directory", dirbuf)) {
        test_gguf_models(dirbuf);
        test_hf_dirs(dirbuf);
        rmdir(dirbuf);
    }
    return check_summary();
}
