/* test_peft.c — adapters in PEFT's format (peft.c), the atomic writer (st_write.c) and training
 * checkpoints (checkpoint.c).
 *
 * What this is:
 *   - interop, PEFT -> affix: every adapter the real peft wrote (tests/data/peft/from_peft/) loads
 *     with peft_load and gives PEFT's logits (tests/data/peft/expected.safetensors);
 *   - interop, affix -> PEFT: peft_save writes exactly the committed tests/data/peft/from_affix/
 *     bytes (which tools/oracle/make_peft_interop.py checked by loading them into peft /
 *     transformers and storing their logits), and affix's logits equal those; for the PEFT cases
 *     the tensors file is byte for byte PEFT's own;
 *   - save -> load is exact for every method and variant (full, projection, subset, zero offset,
 *     official gate), in F32 and F64; BF16 rounds as PyTorch does;
 *   - refusals with messages naming the file: corrupt JSON, unknown peft_type, unsupported fields,
 *     another model's adapter (both shapes named), missing / unexpected tensors;
 *   - a save that fails midway (file size limit, an unrepresentable value) leaves the previous
 *     files as they were and no temporary file behind;
 *   - checkpoints: bit-exact round trip (adapters and full fine-tuning), a resumed run takes the
 *     same next step bit for bit, another model / method is refused.
 * `test_peft --write-from-affix DIR` writes the from_affix directories (used by the oracle script).
 * Run from the repository root. Ends with "N passed, M failed".
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "check.h"
#include "checkpoint.h"
#include "config.h"
#include "llama.h"
#include "method_spec.h"
#include "optim.h"
#include "peft.h"
#include "safetensors.h"
#include "st_write.h"
#include "weights.h"

#define DATA "tests/data/peft"
#define TOL 1e-5 /* logits: max |err| / max(1, |ref|) against PEFT's float32 */

static afx_err ERR; /* main's last error; cleared after each check so that no message outlives its call */
static void clear_err(void) { ERR.msg[0] = 0; }

enum { B = 2, T = 6 };
static int IDS[B * T];

/* ---- files ------------------------------------------------------------------------------------- */

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
    *n = p && len >= 0 ? fread(p, 1, (size_t)len, f) : 0;
    fclose(f);
    return p;
}

static int same_bytes(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb);
    int same = pa && pb && na == nb && !memcmp(pa, pb, na);
    free(pa);
    free(pb);
    return same;
}

static int put_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(p, 1, n, f);
    return fclose(f) == 0 && k == n ? 0 : -1;
}

/* remove a directory tree (files and subdirectories) */
static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* number of temporary files (".NAME.tmp-...") left in dir */
static int tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) n += strstr(de->d_name, ".tmp-") != NULL;
    if (d) closedir(d);
    return n;
}

/* copy src/NAME to dst/NAME for both files of an adapter directory */
static void copy_adapter(const char *src, const char *dst) {
    static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors"};
    mkdir(dst, 0777);
    for (int i = 0; i < 2; i++) {
        char a[512], b[512];
        size_t n;
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dst, files[i]);
        unsigned char *p = slurp(a, &n);
        if (p) put_file(b, p, n);
        free(p);
    }
}

/* replace the first occurrence of `from` by `to` in a text file */
static void edit_file(const char *path, const char *from, const char *to) {
    size_t n;
    char *p = (char *)slurp(path, &n), *q;
    if (!p) return;
    char *text = malloc(n + 1 + strlen(to));
    memcpy(text, p, n);
    text[n] = 0;
    if ((q = strstr(text, from))) {
        size_t head = (size_t)(q - text), lf = strlen(from);
        char *out = malloc(n + strlen(to) + 1);
        memcpy(out, text, head);
        strcpy(out + head, to);
        strcat(out, text + head + lf);
        put_file(path, out, strlen(out));
        free(out);
    }
    free(text);
    free(p);
}

/* ---- the model ---------------------------------------------------------------------------------- */

/* logits (B, Tx, V) of the base w with adapters s (NULL: none); malloc'd, *Tx set */
static real *forward(const LlamaParams *w, AdapterSet *s, int *Tx, afx_err *e) {
    LlamaActs a;
    if (s && adapter_set_bind_acts(s, B, T, e)) return NULL;
    if (llama_acts_alloc(&a, &w->cfg, adapter_hooks(s), B, T, e)) return NULL;
    real *out = NULL;
    if (!llama_forward(w, adapter_hooks(s), &a, IDS, NULL, NULL, B, T, e)) {
        size_t n = (size_t)B * a.Tx * w->cfg.V;
        out = malloc(n * sizeof(real));
        memcpy(out, a.logits, n * sizeof(real));
        *Tx = a.Tx;
    }
    llama_acts_free(&a);
    return out;
}

/* worst max|err|/max(1,|ref|) of logits (B,Tx,V) against expected tensor `key`; -1 if absent/misshapen */
static double logit_err(const real *got, int Tx, int V, const st_file *ex, const char *key) {
    const st_tensor *t = st_find(ex, key);
    if (!got || !t || t->ndim != 3 || t->shape[0] != B || t->shape[1] != Tx || t->shape[2] != V) return -1;
    double *ref = malloc(t->numel * sizeof(double)), worst = 0;
    st_to_f64(t, ref, NULL);
    for (size_t i = 0; i < t->numel; i++) {
        double d = fabs((double)got[i] - ref[i]) / fmax(1.0, fabs(ref[i]));
        if (!(d <= worst)) worst = d; /* NaN wins */
    }
    free(ref);
    return worst;
}

/* ---- the from_affix cases --------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *from_peft;   /* values from this from_peft directory (NULL: generated here) */
    const char *method, *args;
    int peft;                /* PEFT (full: transformers) loads it: expected logits exist */
    int derived;             /* holds a computed tensor (the projection's table): its bytes depend on
                                the build's arithmetic, so they are compared in the float build only */
} AffixCase;

static const AffixCase AFFIX_CASES[] = {
    {"prompt", "prompt", NULL, NULL, 1, 0},
    {"prefix", "prefix", NULL, NULL, 1, 0},
    {"adaption", "adaption", NULL, NULL, 1, 0},
    {"lora_qv", "lora_qv", NULL, NULL, 1, 0},
    {"lora_all_rslora", "lora_all_rslora", NULL, NULL, 1, 0},
    {"prefix_proj", NULL, "prefix", "--num-virtual-tokens 3 --prefix-projection --encoder-hidden-size 10", 1, 1},
    {"prefix_subset", NULL, "prefix", "--num-virtual-tokens 3 --layers 1-2", 0, 0},
    {"prefix_zero", NULL, "prefix", "--num-virtual-tokens 3 --position-offset zero", 0, 0},
    {"adaption_official", NULL, "llama-adapter", "--adapter-len 3 --adapter-layers 2 --gate official", 0, 0},
    {"full", NULL, "full", "", 1, 0},
};
#define N_AFFIX (int)(sizeof AFFIX_CASES / sizeof AFFIX_CASES[0])

/* an exactly representable value in [-0.49, 0.49] (k/2048): the same bytes on every platform */
static real gen(int k, size_t j) {
    unsigned u = ((unsigned)k * 7919u + 1u) * 2654435761u ^ ((unsigned)j * 40503u + 17u) * 2246822519u;
    return (real)((double)((int)(u % 1999u) - 999) / 2048.0);
}

typedef struct {
    PeftAdapter pa; /* spec + adapter + values */
    LlamaParams w;  /* the model it adapts: a copy of the base (full fine-tuning changes it) */
    AdapterSet s;
} Built;

static void built_free(Built *b) {
    adapter_set_free(&b->s);
    peft_adapter_free(&b->pa);
    llama_params_free(&b->w);
}

static int spec_from_args(MethodSpec *s, const char *method, const char *args, afx_err *e) {
    char buf[256], *argv[16];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", args);
    for (char *tok = strtok(buf, " "); tok && argc < 16; tok = strtok(NULL, " ")) argv[argc++] = tok;
    return method_spec_init(s, method, e) || method_spec_parse_args(s, argc, argv, e);
}

static int build_case(const AffixCase *c, const LlamaParams *base, Built *b, afx_err *e) {
    memset(b, 0, sizeof *b);
    if (llama_params_alloc(&b->w, &base->cfg, e)) return -1;
    memcpy(b->w.mem, base->mem, base->count * sizeof(real));
    char dir[512];
    if (c->from_peft) {
        snprintf(dir, sizeof dir, DATA "/from_peft/%s", c->from_peft);
        if (peft_load(dir, &base->cfg, &b->pa, e)) return -1;
    } else {
        if (spec_from_args(&b->pa.spec, c->method, c->args, e) ||
            method_spec_create(&b->pa.ad, &b->pa.spec, &base->cfg, e))
            return -1;
        b->pa.count = adapter_param_count(&b->pa.ad);
        b->pa.values = malloc(b->pa.count * sizeof(real));
    }
    Adapter *p = &b->pa.ad;
    if (adapter_set_init(&b->s, &p, 1, &b->w, e)) return -1;
    if (!c->from_peft) { /* generated values; full fine-tuning: the base plus a small change */
        int full = b->pa.spec.method == METHOD_FULL;
        size_t off = 0;
        for (int k = 0; k < p->n_params; off += p->params[k].numel, k++)
            for (size_t j = 0; j < p->params[k].numel; j++)
                b->pa.values[off + j] = full ? p->params[k].w[j] + gen(k, j) / 16 : gen(k, j);
    }
    return peft_adapter_apply(&b->pa, e);
}

static int write_from_affix(const char *root, const LlamaParams *base) {
    mkdir(root, 0777);
    for (int i = 0; i < N_AFFIX; i++) {
        Built b;
        char dir[512];
        PeftSaveOptions o;
        peft_save_options_init(&o);
        o.base_model = DATA "/base";
        snprintf(dir, sizeof dir, "%s/%s", root, AFFIX_CASES[i].name);
        if (build_case(&AFFIX_CASES[i], base, &b, &ERR) || peft_save(dir, &b.pa.spec, &b.pa.ad, &o, &ERR)) {
            fprintf(stderr, "test_peft: %s: %s\n", AFFIX_CASES[i].name, ERR.msg);
            built_free(&b);
            return 1;
        }
        built_free(&b);
        printf("wrote %s\n", dir);
    }
    return 0;
}

/* ---- checkpoint helpers ---------------------------------------------------------------------- */

static int train_step(const LlamaParams *w, AdapterSet *s, long t, afx_err *e) {
    LlamaActs a;
    LlamaActGrads d;
    double sum;
    long cnt;
    int rc = -1;
    if (adapter_set_bind_acts(s, B, T, e) || llama_acts_alloc(&a, &w->cfg, adapter_hooks(s), B, T, e)) return -1;
    if (llama_actgrads_alloc(&d, &w->cfg, adapter_hooks(s), B, T, e)) {
        llama_acts_free(&a);
        return -1;
    }
    adapter_set_zero_grad(s);
    if (!llama_forward(w, adapter_hooks(s), &a, IDS, NULL, NULL, B, T, e) && !llama_loss(&a, IDS, B, T, &sum, &cnt, e) &&
        !llama_backward(w, s->trains_base ? &s->base_g : NULL, adapter_hooks(s), &a, &d, IDS, 1.0 / (double)cnt, B, T, e)) {
        AdamWConfig ac = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
        if (s->trains_base) adamw_step(s->base->mem, s->base_g.mem, s->base_m.mem, s->base_v.mem, s->base->count, &ac, t);
        else adamw_step(s->w, s->g, s->m, s->v, s->count, &ac, t);
        rc = 0;
    }
    llama_acts_free(&a);
    llama_actgrads_free(&d);
    return rc;
}

/* a set of lora (q,v) + prefix on w, params from a seed */
typedef struct {
    MethodSpec spec[2];
    Adapter ad[2];
    AdapterSet s;
} Composed;

static int composed_make(Composed *c, LlamaParams *w, const char *lora_args, afx_err *e) {
    memset(c, 0, sizeof *c);
    Adapter *p[2] = {&c->ad[0], &c->ad[1]};
    if (spec_from_args(&c->spec[0], "lora", lora_args, e) ||
        spec_from_args(&c->spec[1], "prefix", "--num-virtual-tokens 2 --layers top:2", e) ||
        method_spec_create(&c->ad[0], &c->spec[0], &w->cfg, e) || method_spec_create(&c->ad[1], &c->spec[1], &w->cfg, e))
        return -1;
    if (adapter_set_init(&c->s, p, 2, w, e) || adapter_set_init_params(&c->s, 7, e)) return -1;
    for (size_t j = 0; j < c->s.count; j++) c->s.w[j] += gen(99, j) / 8; /* lora_B != 0 */
    return 0;
}

static void composed_free(Composed *c) {
    adapter_set_free(&c->s);
    adapter_destroy(&c->ad[0]);
    adapter_destroy(&c->ad[1]);
}

/* ---- main -------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    char msg[1024], path[1024], tmp[] = "/tmp/affix-test-peft-XXXXXX";
    LlamaConfig cfg;
    LlamaParams base = {0};
    st_file bf = {0}, ex = {0};

    check_after = clear_err;
    // the tiny base model (transformers' save_pretrained) and the expected logits
    if (!require(!llama_config_load(&cfg, DATA "/base/config.json", &ERR) && !st_open(&bf, DATA "/base/model.safetensors", &ERR) &&
                     !llama_params_alloc(&base, &cfg, &ERR) &&
                     !llama_params_load_st(&base, &bf, DATA "/base/model.safetensors", "", &ERR),
                 "setup: the base model", ERR.msg))
        return check_summary();
    st_close(&bf);
    if (argc == 3 && !strcmp(argv[1], "--write-from-affix")) {
        st_file ids = {0};
        int rc = st_open(&ids, DATA "/expected.safetensors", &ERR) || !st_find(&ids, "input_ids") ||
                 st_to_int(st_find(&ids, "input_ids"), IDS, &ERR);
        st_close(&ids);
        rc = rc || write_from_affix(argv[2], &base);
        llama_params_free(&base);
        return rc;
    }
    if (!require(!st_open(&ex, DATA "/expected.safetensors", &ERR) && st_find(&ex, "input_ids") &&
                     st_find(&ex, "input_ids")->numel == B * T && !st_to_int(st_find(&ex, "input_ids"), IDS, &ERR) && mkdtemp(tmp),
                 "setup: expected.safetensors (input_ids) and a temporary directory", ERR.msg))
        return check_summary();
    int V = cfg.V, Tx;

    printf("-- base model (transformers)\n");
    {
        real *lg = forward(&base, NULL, &Tx, &ERR);
        double d = logit_err(lg, Tx, V, &ex, "base.logits");
        snprintf(msg, sizeof msg, "max err %.2e", d);
        check(d >= 0 && d <= TOL, "base logits equal transformers'", msg);
        free(lg);
    }

    printf("-- PEFT -> affix: directories written by peft's save_pretrained\n");
    static const char *const FROM_PEFT[] = {"prompt", "prefix", "prefix_proj", "adaption", "lora_qv", "lora_all_rslora"};
    double worst_in = 0;
    for (int i = 0; i < 6; i++) {
        Built b;
        memset(&b, 0, sizeof b);
        AffixCase c = {FROM_PEFT[i], FROM_PEFT[i], NULL, NULL, 1, 0};
        char what[128], key[128];
        snprintf(what, sizeof what, "from_peft/%s: peft_load + forward gives PEFT's logits", FROM_PEFT[i]);
        if (!require(!build_case(&c, &base, &b, &ERR), what, ERR.msg)) {
            built_free(&b);
            continue;
        }
        real *lg = forward(&b.w, &b.s, &Tx, &ERR);
        snprintf(key, sizeof key, "from_peft.%s.logits", FROM_PEFT[i]);
        double d = logit_err(lg, Tx, V, &ex, key);
        char desc[256];
        method_spec_describe(&b.pa.spec, &cfg, desc, sizeof desc);
        snprintf(msg, sizeof msg, "max err %.2e (%d rows; %s)%s%s", d, Tx, desc, b.pa.note[0] ? "; note: " : "", b.pa.note);
        check(d >= 0 && d <= TOL && b.pa.peft_loadable, what, msg);
        if (d > worst_in) worst_in = d;
        if (!strcmp(FROM_PEFT[i], "prefix_proj"))
            check(!b.pa.spec.projection && strstr(b.pa.note, "projection"),
                  "from_peft/prefix_proj: PEFT kept only the table; loaded as a prefix without projection, with a note", b.pa.note);
        free(lg);
        built_free(&b);
    }

    printf("-- affix -> PEFT: peft_save writes the committed from_affix bytes; PEFT's logits match\n");
    double worst_out = 0;
    for (int i = 0; i < N_AFFIX; i++) {
        const AffixCase *c = &AFFIX_CASES[i];
        Built b;
        char dir[512], what[256];
        PeftSaveOptions o;
        peft_save_options_init(&o);
        o.base_model = DATA "/base";
        snprintf(dir, sizeof dir, "%s/%s", tmp, c->name);
        snprintf(what, sizeof what, "from_affix/%s: build and save", c->name);
        if (!require(!build_case(c, &base, &b, &ERR) && !peft_save(dir, &b.pa.spec, &b.pa.ad, &o, &ERR), what, ERR.msg)) {
            built_free(&b);
            continue;
        }
        int full = b.pa.spec.method == METHOD_FULL;
        const char *files[2] = {full ? "config.json" : "adapter_config.json",
                                full ? "model.safetensors" : "adapter_model.safetensors"};
        for (int f = 0; f < 2; f++) {
            char mine[1024], committed[1024];
            snprintf(mine, sizeof mine, "%s/%s", dir, files[f]);
            snprintf(committed, sizeof committed, DATA "/from_affix/%s/%s", c->name, files[f]);
            snprintf(what, sizeof what, "from_affix/%s/%s: peft_save writes the committed bytes", c->name, files[f]);
            if (f == 1 && c->derived && sizeof(real) == sizeof(double)) continue; /* see AffixCase.derived */
            check(same_bytes(mine, committed), what, "");
        }
        if (c->from_peft) {
            char theirs[1024], mine[1024];
            snprintf(mine, sizeof mine, "%s/adapter_model.safetensors", dir);
            snprintf(theirs, sizeof theirs, DATA "/from_peft/%s/adapter_model.safetensors", c->from_peft);
            snprintf(what, sizeof what, "from_affix/%s: adapter_model.safetensors is byte for byte what PEFT wrote", c->name);
            check(same_bytes(mine, theirs), what, "");
        }
        real *lg = forward(&b.w, &b.s, &Tx, &ERR);
        if (c->peft) {
            char key[128];
            snprintf(key, sizeof key, "from_affix.%s.logits", c->name);
            double d = logit_err(lg, Tx, V, &ex, key);
            snprintf(msg, sizeof msg, "max err %.2e", d);
            snprintf(what, sizeof what, "from_affix/%s: %s gives affix's logits", c->name, full ? "transformers" : "PEFT");
            check(d >= 0 && d <= TOL, what, msg);
            if (d > worst_out) worst_out = d;
        }
        // round trip: the loaded values are bit for bit the saved ones, the spec is the same
        PeftAdapter back;
        snprintf(what, sizeof what, "from_affix/%s: save -> load is exact (values, spec, logits)", c->name);
        if (require(!peft_load(dir, &cfg, &back, &ERR), what, ERR.msg)) {
            char d1[512], d2[512];
            method_spec_describe(&b.pa.spec, &cfg, d1, sizeof d1);
            method_spec_describe(&back.spec, &cfg, d2, sizeof d2);
            size_t off = 0;
            int same = back.count == b.pa.count && !strcmp(d1, d2) && back.peft_loadable == c->peft;
            /* exact: F32 holds every value (in the f64 build, what F32 keeps of it) */
            for (int k = 0; same && k < b.pa.ad.n_params; off += b.pa.ad.params[k].numel, k++)
                for (size_t j = 0; same && j < b.pa.ad.params[k].numel; j++)
                    same = back.values[off + j] == (real)(float)b.pa.ad.params[k].w[j];
            snprintf(msg, sizeof msg, "%s%s", d2, back.peft_loadable ? "" : " (affix_* fields: PEFT cannot load it)");
            check(same, what, msg);
            peft_adapter_free(&back);
        }
        free(lg);
        built_free(&b);
    }

    printf("-- dtypes\n");
    {
        Built b;
        AffixCase c = {"lora_all_rslora", "lora_all_rslora", NULL, NULL, 1, 0};
        memset(&b, 0, sizeof b);
        if (require(!build_case(&c, &base, &b, &ERR), "dtypes: build lora_all_rslora", ERR.msg)) {
            PeftSaveOptions o;
            peft_save_options_init(&o);
            PeftAdapter back;
            snprintf(path, sizeof path, "%s/f64", tmp);
            o.dtype = ST_F64;
            int ok = !peft_save(path, &b.pa.spec, &b.pa.ad, &o, &ERR) && !peft_load(path, &cfg, &back, &ERR);
            ok = ok && !memcmp(back.values, b.pa.values, b.pa.count * sizeof(real));
            check(ok, "save as F64 -> load is exact", ERR.msg);
            if (ok) peft_adapter_free(&back);
            snprintf(path, sizeof path, "%s/bf16", tmp);
            o.dtype = ST_BF16;
            ok = !peft_save(path, &b.pa.spec, &b.pa.ad, &o, &ERR) && !peft_load(path, &cfg, &back, &ERR);
            double worst = 0;
            int rne = 1;
            for (size_t j = 0; ok && j < b.pa.count; j++) {
                double x = b.pa.values[j], y = back.values[j];
                worst = fmax(worst, fabs(x - y) / fmax(fabs(x), 1e-30));
                float f = (float)x; /* PyTorch: float32 -> bfloat16, nearest even */
                unsigned u;
                memcpy(&u, &f, 4);
                u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
                memcpy(&f, &u, 4);
                rne &= (double)f == y;
            }
            snprintf(msg, sizeof msg, "max relative change %.2e (bf16: <= 2^-8 = %.2e)", worst, ldexp(1, -8));
            check(ok && worst <= ldexp(1, -8) && rne, "save as BF16 -> load rounds to nearest even, as PyTorch", msg);
            if (ok) peft_adapter_free(&back);
        }
        built_free(&b);
    }

    printf("-- refusals (each message names the file)\n");
    {
        PeftAdapter pa;
        char d[512];
        // corrupt JSON
        snprintf(d, sizeof d, "%s/bad_json", tmp);
        copy_adapter(DATA "/from_peft/lora_qv", d);
        snprintf(path, sizeof path, "%s/adapter_config.json", d);
        put_file(path, "{\"peft_type\": \"LORA\", \"r\": ", 27);
        check(peft_load(d, &cfg, &pa, &ERR) && strstr(ERR.msg, "adapter_config.json") && strstr(ERR.msg, "JSON"),
              "corrupt adapter_config.json", ERR.msg);
        // unknown peft_type
        copy_adapter(DATA "/from_peft/lora_qv", d);
        edit_file(path, "\"LORA\"", "\"IA3\"");
        check(peft_load(d, &cfg, &pa, &ERR) && strstr(ERR.msg, "adapter_config.json") && strstr(ERR.msg, "IA3"),
              "unknown peft_type", ERR.msg);
        // a field that changes the adapter
        copy_adapter(DATA "/from_peft/lora_qv", d);
        edit_file(path, "\"use_dora\": false", "\"use_dora\": true");
        check(peft_load(d, &cfg, &pa, &ERR) && strstr(ERR.msg, "adapter_config.json") && strstr(ERR.msg, "use_dora"),
              "use_dora = true is refused", ERR.msg);
        // LoRA targets as module paths (PEFT writes them for all-linear): every layer, or refused
        copy_adapter(DATA "/from_peft/lora_qv", d);
        {
            static const char *const head = "{\"peft_type\": \"LORA\", \"task_type\": \"CAUSAL_LM\", \"r\": 2, "
                                            "\"lora_alpha\": 4, \"target_modules\": [";
            char text[1024];
            size_t k = (size_t)snprintf(text, sizeof text, "%s", head);
            for (int l = 0; l < 3; l++)
                k += (size_t)snprintf(text + k, sizeof text - k, "\"model.layers.%d.self_attn.q_proj\", "
                                      "\"model.layers.%d.self_attn.v_proj\"%s", l, l, l < 2 ? ", " : "]}");
            put_file(path, text, k);
            PeftAdapter ref;
            int ok = !peft_load(d, &cfg, &pa, &ERR) && !peft_load(DATA "/from_peft/lora_qv", &cfg, &ref, &ERR) &&
                     pa.count == ref.count && !memcmp(pa.values, ref.values, pa.count * sizeof(real));
            check(ok, "LoRA target_modules as paths of every layer load like q_proj, v_proj", ERR.msg);
            if (ok) peft_adapter_free(&pa), peft_adapter_free(&ref);
            char *two = strstr(text, ", \"model.layers.2.self_attn.q_proj\"");
            memmove(two, two + strlen(", \"model.layers.2.self_attn.q_proj\""),
                    strlen(two + strlen(", \"model.layers.2.self_attn.q_proj\"")) + 1);
            put_file(path, text, strlen(text));
            check(peft_load(d, &cfg, &pa, &ERR) && strstr(ERR.msg, "q_proj") && strstr(ERR.msg, "layer 2"),
                  "LoRA on a subset of layers is refused", ERR.msg);
        }
        // a missing tensor, an unexpected tensor
        copy_adapter(DATA "/from_peft/lora_qv", d);
        {
            st_file f;
            snprintf(path, sizeof path, DATA "/from_peft/lora_qv/adapter_model.safetensors");
            if (require(!st_open(&f, path, &ERR) && f.n_tensors > 1, "a missing / an unexpected tensor: read lora_qv's tensors",
                        ERR.msg)) {
                st_wtensor t[32];
                real *vals[32];
                size_t n = f.n_tensors < 31 ? f.n_tensors : 31;
                for (size_t i = 0; i < n; i++) {
                    vals[i] = malloc(f.tensors[i].numel * sizeof(real));
                    st_to_real(&f.tensors[i], vals[i], &ERR);
                    t[i] = (st_wtensor){.name = f.tensors[i].name, .ndim = f.tensors[i].ndim, .data = vals[i], .src = ST_REAL};
                    for (int k = 0; k < t[i].ndim; k++) t[i].shape[k] = (size_t)f.tensors[i].shape[k];
                }
                snprintf(path, sizeof path, "%s/adapter_model.safetensors", d);
                require(!st_write(path, ST_F32, t + 1, n - 1, NULL, NULL, 0, &ERR), "a missing tensor: write the file", ERR.msg);
                check(peft_load(d, &cfg, &pa, &ERR) && strstr(ERR.msg, "adapter_model.safetensors") && strstr(ERR.msg, "missing") &&
                          strstr(ERR.msg, f.tensors[0].name),
                      "a missing tensor", ERR.msg);
                t[n] = t[0];
                t[n].name = "base_model.model.lm_head.lora_A.weight";
                require(!st_write(path, ST_F32, t, n + 1, NULL, NULL, 0, &ERR), "an unexpected tensor: write the file", ERR.msg);
                check(peft_load(d, &cfg, &pa, &ERR) && strstr(ERR.msg, "unexpected tensor") && strstr(ERR.msg, "lm_head"),
                      "an unexpected tensor", ERR.msg);
                for (size_t i = 0; i < n; i++) free(vals[i]);
            }
            st_close(&f);
        }
        // a truncated tensors file
        copy_adapter(DATA "/from_peft/lora_qv", d);
        {
            size_t n;
            unsigned char *p = slurp(path, &n);
            put_file(path, p, n / 2);
            free(p);
            check(peft_load(d, &cfg, &pa, &ERR) && strstr(ERR.msg, "adapter_model.safetensors"), "a truncated tensors file", ERR.msg);
        }
        // an adapter made for another model
        LlamaConfig other = cfg;
        other.C = 32;
        check(peft_load(DATA "/from_peft/prompt", &other, &pa, &ERR) && strstr(ERR.msg, "adapter_config.json") &&
                  strstr(ERR.msg, "token_dim = 24") && strstr(ERR.msg, "is 32"),
              "a prompt for hidden 24 on a hidden-32 model names both", ERR.msg);
        other = cfg;
        other.NKV = 4;
        check(peft_load(DATA "/from_peft/prefix", &other, &pa, &ERR) && strstr(ERR.msg, "token_dim = 12") && strstr(ERR.msg, "is 24"),
              "a prefix for KV width 12 on a KV-24 model names both", ERR.msg);
        other = cfg;
        other.FF = 48;
        check(peft_load(DATA "/from_peft/lora_all_rslora", &other, &pa, &ERR) && strstr(ERR.msg, "adapter_model.safetensors") &&
                  strstr(ERR.msg, "[40,2]") && strstr(ERR.msg, "[48,2]"),
              "a LoRA for ff 40 on an ff-48 model names both shapes", ERR.msg);
        other = cfg;
        other.C = 32;
        check(peft_load(DATA "/from_peft/adaption", &other, &pa, &ERR) && strstr(ERR.msg, "[1,3,24]") && strstr(ERR.msg, "[1,3,32]"),
              "an adaption prompt for hidden 24 on a hidden-32 model names both shapes", ERR.msg);
        other = cfg;
        other.L = 1;
        check(peft_load(DATA "/from_peft/adaption", &other, &pa, &ERR) && strstr(ERR.msg, "adapter_layers"),
              "adapter_layers beyond the model's layers", ERR.msg);
        snprintf(path, sizeof path, "%s/full", tmp);
        check(peft_load(path, &other, &pa, &ERR) && strstr(ERR.msg, "config.json") && strstr(ERR.msg, "layers 3") &&
                  strstr(ERR.msg, "layers 1"),
              "a full fine-tuning directory for another model names both", ERR.msg);
        snprintf(path, sizeof path, "%s/nothing", tmp);
        check(peft_load(path, &cfg, &pa, &ERR) && strstr(ERR.msg, "nothing"), "a directory without an adapter", ERR.msg);
    }

    printf("-- interrupted saves leave the previous files and no temporary file\n");
    {
        Built a, b;
        char d[512], cfgp[1024], tsp[1024];
        memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
        AffixCase ca = {"prompt", "prompt", NULL, NULL, 1, 0}, cb = {"lora_all_rslora", "lora_all_rslora", NULL, NULL, 1, 0};
        snprintf(d, sizeof d, "%s/keep", tmp);
        snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", d);
        snprintf(tsp, sizeof tsp, "%s/adapter_model.safetensors", d);
        if (require(!build_case(&ca, &base, &a, &ERR) && !build_case(&cb, &base, &b, &ERR) &&
                        !peft_save(d, &a.pa.spec, &a.pa.ad, NULL, &ERR),
                    "interrupted saves: setup", ERR.msg)) {
            size_t n1, n2;
            unsigned char *c0 = slurp(cfgp, &n1), *t0 = slurp(tsp, &n2);
            // the file system refuses to grow a file beyond 300 bytes (as a full disk would)
            struct rlimit old, lim;
            getrlimit(RLIMIT_FSIZE, &old);
            lim = old;
            lim.rlim_cur = 300;
            signal(SIGXFSZ, SIG_IGN);
            fflush(stdout);
            setrlimit(RLIMIT_FSIZE, &lim);
            int rc = peft_save(d, &b.pa.spec, &b.pa.ad, NULL, &ERR);
            setrlimit(RLIMIT_FSIZE, &old);
            size_t m1, m2;
            unsigned char *c1 = slurp(cfgp, &m1), *t1 = slurp(tsp, &m2);
            int same = c1 && t1 && m1 == n1 && m2 == n2 && !memcmp(c0, c1, n1) && !memcmp(t0, t1, n2);
            snprintf(msg, sizeof msg, "%s", ERR.msg);
            check(rc != 0 && same && tmp_files(d) == 0, "peft_save failing mid-write (file size limit)", msg);
            PeftAdapter pa;
            check(!peft_load(d, &cfg, &pa, &ERR) && pa.spec.method == METHOD_PROMPT, "... and the old adapter still loads", ERR.msg);
            peft_adapter_free(&pa);
            free(c0), free(t0), free(c1), free(t1);
            // a value F32 cannot hold, discovered after the header and part of the data were written
            double big[600];
            for (int i = 0; i < 600; i++) big[i] = i < 599 ? i : 1e300;
            st_wtensor t = {.name = "x", .ndim = 1, .shape = {600}, .data = big, .src = ST_F64};
            unsigned char *before = slurp(tsp, &n2);
            rc = st_write(tsp, ST_F32, &t, 1, NULL, NULL, 0, &ERR);
            unsigned char *after = slurp(tsp, &m2);
            check(rc != 0 && strstr(ERR.msg, "outside the range") && n2 == m2 && !memcmp(before, after, n2) && tmp_files(d) == 0,
                  "st_write failing on an unrepresentable value", ERR.msg);
            free(before), free(after);
            snprintf(path, sizeof path, "%s/no/such/dir", tmp);
            check(peft_save(path, &a.pa.spec, &a.pa.ad, NULL, &ERR) != 0 && strstr(ERR.msg, "no/such"),
                  "peft_save into a missing parent directory", ERR.msg);
            check(peft_save(d, &b.pa.spec, &a.pa.ad, NULL, &ERR) != 0 && strstr(ERR.msg, "spec"),
                  "peft_save with a spec that is not the adapter's", ERR.msg);
        }
        built_free(&a);
        built_free(&b);
    }

    printf("-- st_write\n");
    {
        float x[5] = {1, -2.5f, 3e-8f, 0, 65504};
        st_wtensor t[2] = {{.name = "b\"q", .ndim = 2, .shape = {1, 5}, .data = x, .src = ST_F32},
                           {.name = "a", .ndim = 0, .data = x + 1, .src = ST_F32}};
        const char *k[] = {"z", "a\n"}, *v[] = {"1", "line\nbreak \"quoted\" \\"};
        char p1[1024], p2[1024];
        snprintf(p1, sizeof p1, "%s/one.safetensors", tmp);
        snprintf(p2, sizeof p2, "%s/two.safetensors", tmp);
        st_file f;
        int ok = !st_write(p1, ST_F32, t, 2, k, v, 2, &ERR) && !st_write(p2, ST_F32, t, 2, k, v, 2, &ERR) && same_bytes(p1, p2);
        check(ok, "the same tensors give the same bytes", ERR.msg);
        size_t n;
        unsigned char *p = slurp(p1, &n);
        unsigned long long hl = 0;
        for (int i = 0; i < 8 && p && n >= 8; i++) hl |= (unsigned long long)p[i] << (8 * i);
        check(p && (8 + hl) % 8 == 0 && p[8 + hl - 1] == ' ' && !memcmp(p + 8, "{\"__metadata__\":{\"a\\n\":", 23),
              "header: metadata first with sorted keys, padded with spaces to 8 bytes", "");
        free(p);
        ok = !st_open(&f, p1, &ERR) && f.n_tensors == 2 && !strcmp(f.tensors[0].name, "a") && f.tensors[0].ndim == 0 &&
             st_meta(&f, "a\n") && !strcmp(st_meta(&f, "a\n"), v[1]) && f.tensors[1].data == f.tensors[0].data + 4;
        if (ok) {
            real r[5];
            st_to_real(&f.tensors[1], r, &ERR);
            for (int i = 0; i < 5; i++) ok &= r[i] == (real)x[i];
        }
        check(ok, "read back by the validating reader: names, escapes, values, sorted data", ERR.msg);
        st_close(&f);
        check(st_write(p1, ST_F32, (st_wtensor[]){t[1], t[1]}, 2, NULL, NULL, 0, &ERR) && strstr(ERR.msg, "twice"),
              "a duplicate name is refused", ERR.msg);
    }

    printf("-- checkpoints\n");
    {
        Composed c1, c2, c3;
        TrainState st = {.step = 2, .epoch = 1, .index = 5, .perm_seed = 77, .rng = 0xfedcba9876543210ULL}, back;
        snprintf(st.args, sizeof st.args, "--lr 1e-2 \"quoted\"");
        char ck[1024];
        snprintf(ck, sizeof ck, "%s/run.ckpt.safetensors", tmp);
        if (require(!composed_make(&c1, &base, "--r 2 --alpha 4 --targets q,v", &ERR) && !train_step(&base, &c1.s, 1, &ERR) &&
                        !train_step(&base, &c1.s, 2, &ERR) && !ckpt_save(ck, &c1.s, c1.spec, 2, &st, &ERR) &&
                        !composed_make(&c2, &base, "--r 2 --alpha 4 --targets q,v", &ERR),
                    "checkpoint setup", ERR.msg)) {
            memset(&back, 0, sizeof back);
            size_t bytes = c1.s.count * sizeof(real);
            int ok = !ckpt_load(ck, &c2.s, c2.spec, 2, &back, &ERR);
            check(ok && !memcmp(c1.s.w, c2.s.w, bytes) && !memcmp(c1.s.m, c2.s.m, bytes) && !memcmp(c1.s.v, c2.s.v, bytes),
                  "lora + prefix: parameters and AdamW moments restored bit for bit", ERR.msg);
            check(back.step == st.step && back.epoch == st.epoch && back.index == st.index &&
                      back.perm_seed == st.perm_seed && back.rng == st.rng && !strcmp(back.args, st.args),
                  "step, data position, RNG state and args restored", "");
            int t3 = !train_step(&base, &c1.s, 3, &ERR) && !train_step(&base, &c2.s, 3, &ERR);
            check(t3 && !memcmp(c1.s.w, c2.s.w, bytes) && !memcmp(c1.s.m, c2.s.m, bytes),
                  "the resumed run takes the same next step, bit for bit", ERR.msg);
            // refusals: other method options, another model, other adapters; nothing is touched
            memcpy(c2.s.w, c1.s.w, bytes);
            if (require(!composed_make(&c3, &base, "--r 2 --alpha 8 --targets q,v", &ERR), "checkpoint: make lora alpha 8", ERR.msg)) {
                check(ckpt_load(ck, &c3.s, c3.spec, 2, &back, &ERR) && strstr(ERR.msg, "methods") && strstr(ERR.msg, "alpha=4") &&
                          strstr(ERR.msg, "alpha=8"),
                      "a checkpoint for other method options is refused, naming both", ERR.msg);
                composed_free(&c3);
            }
            LlamaParams w2;
            LlamaConfig c2cfg = cfg;
            c2cfg.eps = 1e-6;
            if (require(!llama_params_alloc(&w2, &c2cfg, &ERR) && !composed_make(&c3, &w2, "--r 2 --alpha 4 --targets q,v", &ERR),
                        "checkpoint: make lora on a model with eps 1e-6", ERR.msg)) {
                check(ckpt_load(ck, &c3.s, c3.spec, 2, &back, &ERR) && strstr(ERR.msg, "another model") &&
                          strstr(ERR.msg, "eps=1.0000000000000001e-05") && strstr(ERR.msg, "eps=9.9999999999999995e-07"),
                      "a checkpoint for another model config is refused, naming both", ERR.msg);
                composed_free(&c3);
            }
            llama_params_free(&w2);
            check(ckpt_load(ck, &c2.s, c2.spec, 1, &back, &ERR) && strstr(ERR.msg, "specs"), "a spec list of another length is refused",
                  ERR.msg);
            check(!memcmp(c1.s.w, c2.s.w, bytes), "refused loads leave the set untouched", "");
            check(ckpt_load(DATA "/from_peft/lora_qv/adapter_model.safetensors", &c2.s, c2.spec, 2, &back, &ERR) &&
                      strstr(ERR.msg, "not an affix training checkpoint"),
                  "a file that is not a checkpoint is refused", ERR.msg);
            // an interrupted checkpoint save
            size_t n0, n1;
            unsigned char *before = slurp(ck, &n0);
            struct rlimit old, lim;
            getrlimit(RLIMIT_FSIZE, &old);
            lim = old;
            lim.rlim_cur = 1000;
            fflush(stdout);
            setrlimit(RLIMIT_FSIZE, &lim);
            st.step = 3;
            int rc = ckpt_save(ck, &c1.s, c1.spec, 2, &st, &ERR);
            setrlimit(RLIMIT_FSIZE, &old);
            unsigned char *after = slurp(ck, &n1);
            check(rc && n0 == n1 && !memcmp(before, after, n0) && tmp_files(tmp) == 0,
                  "a checkpoint save failing mid-write leaves the old checkpoint", ERR.msg);
            free(before), free(after);
        }
        composed_free(&c1);
        composed_free(&c2);

        // full fine-tuning: the base weights and their moments
        Built f1, f2;
        AffixCase cf = {"full", NULL, "full", "", 1, 0};
        if (require(!build_case(&cf, &base, &f1, &ERR) && !build_case(&cf, &base, &f2, &ERR) && !train_step(&f1.w, &f1.s, 1, &ERR),
                    "full checkpoint setup", ERR.msg)) {
            snprintf(ck, sizeof ck, "%s/full.ckpt.safetensors", tmp);
            size_t bytes = f1.w.count * sizeof(real);
            int ok = !ckpt_save(ck, &f1.s, &f1.pa.spec, 1, &st, &ERR) && !ckpt_load(ck, &f2.s, &f2.pa.spec, 1, &back, &ERR);
            check(ok && !memcmp(f1.w.mem, f2.w.mem, bytes) && !memcmp(f1.s.base_m.mem, f2.s.base_m.mem, bytes) &&
                      !memcmp(f1.s.base_v.mem, f2.s.base_v.mem, bytes),
                  "full fine-tuning: weights and AdamW moments restored bit for bit", ERR.msg);
            Composed c4;
            if (require(!composed_make(&c4, &base, "--r 2 --alpha 4 --targets q,v", &ERR), "full checkpoint: make a lora run", ERR.msg)) {
                check(ckpt_load(ck, &c4.s, c4.spec, 2, &back, &ERR) && strstr(ERR.msg, "methods"),
                      "a full fine-tuning checkpoint for an adapter run is refused", ERR.msg);
                composed_free(&c4);
            }
        }
        built_free(&f1);
        built_free(&f2);
    }

    printf("worst logit error: PEFT -> affix %.2e, affix -> PEFT %.2e (tolerance %.0e)\n", worst_in, worst_out, TOL);
    rm_tree(tmp);
    st_close(&ex);
    llama_params_free(&base);
    return check_summary();
}
