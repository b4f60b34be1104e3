/* test_tokenizer.c — the tokenizers against what Hugging Face's give, id for id.
 *
 * What this is: (1) llama.cpp's 46 test strings (tests/data/vocab/llama.cpp/ *.inp and *.out, made by HF
 * tokenizers) through every source that should reproduce them: the Llama SentencePiece GGUF vocab and
 * the Llama 2 tokenizer.json; the GPT-2 GGUF vocab; Llama 3 as Meta's tiktoken file and as the HF
 * tokenizer.json converted from it — encode and decode; (2) tests/data/vocab/multilingual.json
 * (tools/oracle/make_tokenizer_vectors.py): 74 texts (XQuAD, MGSM, XNLI paragraphs in 20 languages
 * and edge cases) with the ids and decodings of the real tokenizers, for each C source, plus decoder
 * edge cases (partial UTF-8, byte fallback, specials); (3) BOS/EOS, special tokens in text, NUL
 * bytes, invalid UTF-8, malformed files (errors name the file), speed.
 * What this is not: a test of other tokenizer families (see tokenizer.h). Test-only code: it prints
 * a summary per vector set and one line per failed check, and ends with "N passed, M failed".
 * Run from the repository root (make test does).
 */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "tokenizer.h"

#define VOCAB "tests/data/vocab/"
#define LLAMA3_JSON VOCAB "llama3/tokenizer.json"
#define LLAMA3_TIKTOKEN VOCAB "llama3-tiktoken/tokenizer.model"
#define LLAMA2_JSON VOCAB "llama2/tokenizer.json"
#define SPM_GGUF VOCAB "llama.cpp/ggml-vocab-llama-spm.gguf"
#define GPT2_GGUF VOCAB "llama.cpp/ggml-vocab-gpt-2.gguf"


static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) p[n] = 0, *len = (size_t)n;
    return p;
}

static Tokenizer *load(const char *path) {
    Tokenizer *t = NULL;
    afx_err e = {{0}};
    int rc = tokenizer_load(&t, path, &e);
    check_at(rc == 0 && t, __FILE__, __LINE__, "tokenizer_load", rc ? e.msg : path);
    return rc ? NULL : t;
}

static int ids_eq(const int *a, int na, const int *b, int nb) { return na == nb && (na == 0 || !memcmp(a, b, (size_t)na * sizeof *a)); }

static void show_ids(char *buf, size_t cap, const int *a, int n) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o + 16 < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? " " : "", a[i]);
}

/* encode text (no BOS) and compare; decode the expected ids and compare with dec (NULL: skip) */
static int check_case(const Tokenizer *t, const char *label, const char *text, size_t len, const int *want, int nwant,
                      const char *dec, const char *dec_skip, int *enc_ok, int *dec_ok) {
    afx_err e = {{0}};
    int *ids = NULL, n = 0, ok = 1;
    char detail[1200];
    if (tokenizer_encode(t, text, len, 0, &ids, &n, &e)) {
        snprintf(detail, sizeof detail, "encode failed: %s", e.msg);
        check_at(0, __FILE__, __LINE__, label, detail);
        return 0;
    }
    if (ids_eq(ids, n, want, nwant)) {
        check_at(1, __FILE__, __LINE__, label, NULL);
        (*enc_ok)++;
    } else {
        char a[400], b[400];
        show_ids(a, sizeof a, ids, n), show_ids(b, sizeof b, want, nwant);
        snprintf(detail, sizeof detail, "encode gives [%s], HF gives [%s]", a, b);
        ok = check_at(0, __FILE__, __LINE__, label, detail);
    }
    free(ids);
    for (int skip = 0; skip < 2; skip++) {
        const char *want_text = skip ? dec_skip : dec;
        if (!want_text) continue;
        char *out = NULL;
        size_t olen = 0;
        if (tokenizer_decode(t, want, nwant, skip, &out, &olen, &e)) {
            snprintf(detail, sizeof detail, "decode failed: %s", e.msg);
            ok = check_at(0, __FILE__, __LINE__, label, detail);
            continue;
        }
        if (olen == strlen(want_text) && !memcmp(out, want_text, olen)) {
            check_at(1, __FILE__, __LINE__, label, NULL);
            if (!skip) (*dec_ok)++;
        } else {
            snprintf(detail, sizeof detail, "decode%s gives '%.*s', HF gives '%.200s'", skip ? "(skip_special)" : "",
                     (int)(olen > 200 ? 200 : olen), out, want_text);
            ok = check_at(0, __FILE__, __LINE__, label, detail);
        }
        free(out);
    }
    return ok;
}

/* ---- (1) llama.cpp's .inp/.out vectors ---- */

typedef struct {
    char *inp;        /* the .inp file; the strings are cut out of it in place */
    char *str[64];
    size_t len[64];
    int *ids[64];
    int nids[64];
    int n;
} Vectors;

static int read_vectors(Vectors *v, const char *name) {
    char path[256];
    size_t len, olen;
    memset(v, 0, sizeof *v);
    snprintf(path, sizeof path, VOCAB "llama.cpp/ggml-vocab-%s.gguf.inp", name);
    if (!(v->inp = read_file(path, &len))) return -1;
    snprintf(path, sizeof path, VOCAB "llama.cpp/ggml-vocab-%s.gguf.out", name);
    char *out = read_file(path, &olen);
    if (!out) return -1;
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = v->inp, *q;
    while (v->n < 64 && (q = strstr(p, sep))) {
        *q = 0;
        v->str[v->n] = p, v->len[v->n] = (size_t)(q - p);
        v->n++;
        p = q + strlen(sep);
    }
    char *line = out;
    for (int i = 0; i < v->n; i++) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = 0;
        v->ids[i] = malloc(256 * sizeof(int));
        for (char *s = line, *end; v->nids[i] < 256; s = end) {
            long x = strtol(s, &end, 10);
            if (end == s) break;
            v->ids[i][v->nids[i]++] = (int)x;
        }
        line = nl + 1;
    }
    free(out);
    return 0;
}

static void free_vectors(Vectors *v) {
    free(v->inp);
    for (int i = 0; i < v->n; i++) free(v->ids[i]);
}

static void run_vectors(const Tokenizer *t, const Vectors *v, const char *what) {
    int enc = 0, dec = 0;
    char label[128];
    for (int i = 0; i < v->n; i++) {
        snprintf(label, sizeof label, "%s vector %d", what, i);
        check_case(t, label, v->str[i], v->len[i], v->ids[i], v->nids[i], v->str[i], NULL, &enc, &dec);
    }
    printf("  %-44s %2d/%d encode, %2d/%d decode\n", what, enc, v->n, dec, v->n);
}

/* ---- (2) multilingual.json ---- */

static int *json_ids(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int *p = malloc((size_t)(*n + 1) * sizeof *p), i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) p[i++] = x->valueint;
    return p;
}

static void run_multilingual(const Tokenizer *t, const cJSON *doc, const char *key, const char *what) {
    const cJSON *texts = cJSON_GetObjectItem(doc, "texts");
    const cJSON *tk = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "tokenizers"), key);
    const cJSON *cases = cJSON_GetObjectItem(tk, "cases"), *only = cJSON_GetObjectItem(tk, "decode_only");
    CHECKM(cJSON_GetArraySize(texts) == cJSON_GetArraySize(cases) && cJSON_GetArraySize(texts) > 0, key);
    int enc = 0, dec = 0, ncase = 0, nrt = 0, rt = 0, nids = 0;
    char label[400];
    for (int i = 0; i < cJSON_GetArraySize(cases); i++) {
        const cJSON *tx = cJSON_GetArrayItem(texts, i), *c = cJSON_GetArrayItem(cases, i);
        const char *text = cJSON_GetObjectItem(tx, "text")->valuestring;
        const cJSON *d = cJSON_GetObjectItem(c, "decoded"), *ds = cJSON_GetObjectItem(c, "decoded_skip");
        const char *dec_text = d ? d->valuestring : text, *dec_skip = ds ? ds->valuestring : dec_text;
        int n, *ids = json_ids(cJSON_GetObjectItem(c, "ids"), &n);
        snprintf(label, sizeof label, "%s %s", what, cJSON_GetObjectItem(tx, "name")->valuestring);
        check_case(t, label, text, strlen(text), ids, n, dec_text, dec_skip, &enc, &dec);
        nids += n;
        /* decode(encode(x)) == x wherever HF's decode gives x back */
        if (!d) {
            afx_err e = {{0}};
            int *got, ng;
            char *back;
            size_t blen;
            nrt++;
            if (!tokenizer_encode(t, text, strlen(text), 0, &got, &ng, &e)) {
                if (!tokenizer_decode(t, got, ng, 0, &back, &blen, &e)) {
                    rt += blen == strlen(text) && !memcmp(back, text, blen);
                    free(back);
                }
                free(got);
            }
        }
        free(ids);
        ncase++;
    }
    check_at(rt == nrt, __FILE__, __LINE__, "decode(encode(x)) == x where HF's decode round-trips", what);
    int oenc = 0, odec = 0, nonly = 0;
    for (int i = 0; i < cJSON_GetArraySize(only); i++) {
        const cJSON *c = cJSON_GetArrayItem(only, i);
        int n, *ids = json_ids(cJSON_GetObjectItem(c, "ids"), &n);
        char *out;
        size_t olen;
        afx_err e = {{0}};
        for (int skip = 0; skip < 2; skip++) {
            const char *want = cJSON_GetObjectItem(c, skip ? "decoded_skip" : "decoded")->valuestring;
            int ok = !tokenizer_decode(t, ids, n, skip, &out, &olen, &e);
            ok = ok && olen == strlen(want) && !memcmp(out, want, olen);
            char ids_s[200];
            show_ids(ids_s, sizeof ids_s, ids, n);
            snprintf(label, sizeof label, "%s decode%s([%s])", what, skip ? "(skip_special)" : "", ids_s);
            check_at(ok, __FILE__, __LINE__, label, ok ? "" : e.msg);
            if (ok) odec++;
            if (out) free(out), out = NULL;
        }
        nonly++;
        free(ids);
        (void)oenc;
    }
    /* BOS: encode("", add_bos=1) is HF's encode("", add_special_tokens=True) */
    int nb, *bos = json_ids(cJSON_GetObjectItem(tk, "bos_ids"), &nb), *got, ng;
    afx_err e = {{0}};
    CHECKM(!tokenizer_encode(t, "", 0, 1, &got, &ng, &e) && ids_eq(got, ng, bos, nb), what);
    free(got), free(bos);
    printf("  %-44s %2d/%d encode (%d ids), %2d/%d decode, %2d/%d round trips, %2d/%d decoder cases\n", what, enc, ncase, nids, dec,
           ncase, rt, nrt, odec, 2 * nonly);
}

/* writes data to a new file in a temporary directory; returns its path (static buffer) */
static char tmpdir[64];
static char made[1024][128]; /* every file temp_file made, removed at the end */
static int n_made;
static const char *temp_file(const void *data, size_t n, const char *suffix) {
    static char path[128];
    static int count;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/affix_tok_XXXXXX");
        if (!mkdtemp(tmpdir)) return "/nonexistent";
    }
    snprintf(path, sizeof path, "%s/%d%s", tmpdir, count++, suffix);
    if (n_made < (int)(sizeof made / sizeof made[0])) snprintf(made[n_made++], sizeof made[0], "%s", path);
    FILE *f = fopen(path, "wb");
    if (!f) return "/nonexistent";
    fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

/* load must fail, naming the file and saying what (want) */
static void check_load_fails(const char *content, size_t n, const char *suffix, const char *want, int line) {
    const char *path = temp_file(content, n, suffix);
    Tokenizer *t = NULL;
    afx_err e = {{0}};
    int rc = tokenizer_load(&t, path, &e);
    char what[160];
    snprintf(what, sizeof what, "malformed file refused: %s", want);
    check_at(rc == -1 && !t && strstr(e.msg, path) && strstr(e.msg, want), __FILE__, line, what, e.msg);
    tokenizer_free(t);
    unlink(path);
}

/* a minimal GGUF v3 with string key/values only */
static size_t gguf_strings(unsigned char *buf, const char *const *kv, int nkv) {
    size_t o = 0;
    uint32_t u32;
    uint64_t u64;
#define PUT(x) (memcpy(buf + o, &(x), sizeof(x)), o += sizeof(x))
    memcpy(buf, "GGUF", 4), o = 4;
    u32 = 3, PUT(u32);
    u64 = 0, PUT(u64);
    u64 = (uint64_t)nkv, PUT(u64);
    for (int i = 0; i < nkv; i++) {
        u64 = strlen(kv[2 * i]), PUT(u64);
        memcpy(buf + o, kv[2 * i], u64), o += u64;
        u32 = 8, PUT(u32); /* string */
        u64 = strlen(kv[2 * i + 1]), PUT(u64);
        memcpy(buf + o, kv[2 * i + 1], u64), o += u64;
    }
#undef PUT
    return o;
}

static void test_invalid_utf8(const Tokenizer *t, const char *what) {
    static const struct {
        const char *s;
        const char *name;
    } bad[] = {{"abc\xE2\x82", "truncated 3-byte sequence"}, {"\xC0\xAF", "overlong '/'"}, {"x\xE0\x80\x80", "overlong 3-byte"},
               {"\xED\xA0\x80", "surrogate U+D800"}, {"ok \xFF", "byte 0xFF"}, {"\x80", "lone continuation byte"},
               {"\xF4\x90\x80\x80", "above U+10FFFF"}, {"\xF0\x9F\xA6", "truncated 4-byte sequence"}};
    int ok = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int *ids = (int *)&ok, n = -1;
        afx_err e = {{0}};
        int rc = tokenizer_encode(t, bad[i].s, strlen(bad[i].s), 1, &ids, &n, &e);
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s: %s", what, bad[i].name, e.msg);
        check_at(rc == -1 && ids == NULL && n == 0 && strstr(e.msg, "UTF-8"), __FILE__, __LINE__, "invalid UTF-8 is an error", msg);
        ok += rc == -1;
    }
    int *ids, n;
    afx_err e = {{0}};
    CHECKM(!tokenizer_encode(t, "\xF4\x8F\xBF\xBF", 4, 0, &ids, &n, &e) && n > 0, what); /* U+10FFFF is valid */
    free(ids);
}

/* ---- a Llama 3 GGUF vocabulary (tokenizer.ggml.pre = llama-bpe), written here from the Llama 3
 * tokenizer.json, as llama.cpp's converter stores it: the real 8 MB file is not in the repository ---- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} Out;

static void out_put(Out *o, const void *s, size_t n) {
    if (o->n + n > o->cap) {
        while (o->n + n > o->cap) o->cap = o->cap ? 2 * o->cap : 1 << 20;
        o->p = realloc(o->p, o->cap);
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}
static void out_u32(Out *o, uint32_t v) { out_put(o, &v, 4); }
static void out_u64(Out *o, uint64_t v) { out_put(o, &v, 8); }
static void out_str(Out *o, const char *s) { out_u64(o, strlen(s)), out_put(o, s, strlen(s)); }

static Tokenizer *llama3_gguf_from_json(const char *json_path) {
    size_t len;
    char *text = read_file(json_path, &len);
    cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    if (!j) return NULL;
    const cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "vocab");
    const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "merges"), *x;
    int n = 128256;
    const char **tok = calloc((size_t)n, sizeof *tok);
    int32_t *type = calloc((size_t)n, sizeof *type);
    cJSON_ArrayForEach(x, vocab) tok[x->valueint] = x->string, type[x->valueint] = 1;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(j, "added_tokens")) {
        int id = cJSON_GetObjectItem(x, "id")->valueint;
        tok[id] = cJSON_GetObjectItem(x, "content")->valuestring, type[id] = 3; /* control */
    }
    Out o = {0};
    out_put(&o, "GGUF", 4), out_u32(&o, 3), out_u64(&o, 0), out_u64(&o, 8);
    out_str(&o, "tokenizer.ggml.model"), out_u32(&o, 8), out_str(&o, "gpt2");
    out_str(&o, "tokenizer.ggml.pre"), out_u32(&o, 8), out_str(&o, "llama-bpe");
    out_str(&o, "tokenizer.ggml.tokens"), out_u32(&o, 9), out_u32(&o, 8), out_u64(&o, (uint64_t)n);
    for (int i = 0; i < n; i++) out_str(&o, tok[i] ? tok[i] : "");
    out_str(&o, "tokenizer.ggml.token_type"), out_u32(&o, 9), out_u32(&o, 5), out_u64(&o, (uint64_t)n);
    out_put(&o, type, (size_t)n * 4);
    out_str(&o, "tokenizer.ggml.merges"), out_u32(&o, 9), out_u32(&o, 8), out_u64(&o, (uint64_t)cJSON_GetArraySize(merges));
    cJSON_ArrayForEach(x, merges) out_str(&o, x->valuestring);
    out_str(&o, "tokenizer.ggml.bos_token_id"), out_u32(&o, 4), out_u32(&o, 128000);
    out_str(&o, "tokenizer.ggml.eos_token_id"), out_u32(&o, 4), out_u32(&o, 128001);
    out_str(&o, "tokenizer.ggml.add_bos_token"), out_u32(&o, 7), out_put(&o, "\1", 1);
    while (o.n % 32) out_put(&o, "", 1);
    gguf_file f;
    memset(&f, 0, sizeof f);
    Tokenizer *t = NULL;
    afx_err e = {{0}};
    int rc = gguf_parse(&f, o.p, o.n, "llama3 (built) .gguf", &e) || tokenizer_from_gguf(&t, &f, "llama3 (built) .gguf", &e);
    check_at(rc == 0, __FILE__, __LINE__, "a llama-bpe GGUF vocabulary loads", e.msg);
    gguf_close(&f);
    free(o.p), free(tok), free(type);
    cJSON_Delete(j);
    return t;
}

int main(void) {
    Vectors spm, gpt2, l3;
    if (!require_at(!read_vectors(&spm, "llama-spm") && !read_vectors(&gpt2, "gpt-2") && !read_vectors(&l3, "llama-bpe"), __FILE__,
                    __LINE__, "read tests/data/vocab/llama.cpp/*.inp/.out", "run from the repository root"))
        return check_summary();
    CHECK(spm.n == 46 && gpt2.n == 46 && l3.n == 46);

    clock_t t0 = clock();
    Tokenizer *tk_spm = load(SPM_GGUF), *tk_l2 = load(LLAMA2_JSON), *tk_gpt2 = load(GPT2_GGUF);
    Tokenizer *tk_l3j = load(LLAMA3_JSON), *tk_l3t = load(LLAMA3_TIKTOKEN);
    printf("  loading the 5 tokenizers: %.0f ms\n", 1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC);
    if (!REQUIREM(tk_spm && tk_l2 && tk_gpt2 && tk_l3j && tk_l3t, "cannot go on without the 5 tokenizers")) return check_summary();

    printf("llama.cpp test vectors (from HF tokenizers):\n");
    run_vectors(tk_spm, &spm, "llama-spm: ggml-vocab-llama-spm.gguf");
    run_vectors(tk_l2, &spm, "llama-spm: llama2/tokenizer.json");
    run_vectors(tk_gpt2, &gpt2, "gpt-2: ggml-vocab-gpt-2.gguf");
    run_vectors(tk_l3t, &l3, "llama-bpe: llama3-tiktoken/tokenizer.model");
    run_vectors(tk_l3j, &l3, "llama-bpe: llama3/tokenizer.json");

    Tokenizer *tk_l3g = llama3_gguf_from_json(LLAMA3_JSON);
    if (tk_l3g) run_vectors(tk_l3g, &l3, "llama-bpe: GGUF (llama-bpe) built from .json");

    /* the transformers 5 (Metaspace) variant of the Llama 2 tokenizer.json */
    Tokenizer *tk_ms = NULL;
    size_t jlen;
    char *jtext = read_file(LLAMA2_JSON, &jlen);
    cJSON *j = jtext ? cJSON_ParseWithLength(jtext, jlen) : NULL;
    free(jtext);
    if (j) {
        cJSON_ReplaceItemInObject(j, "normalizer", cJSON_CreateNull());
        cJSON *ms = cJSON_CreateObject();
        cJSON_AddStringToObject(ms, "type", "Metaspace");
        cJSON_AddStringToObject(ms, "replacement", "\xE2\x96\x81");
        cJSON_AddStringToObject(ms, "prepend_scheme", "first");
        cJSON_AddFalseToObject(ms, "split");
        cJSON_ReplaceItemInObject(j, "pre_tokenizer", ms);
        char *s = cJSON_PrintUnformatted(j);
        const char *path = temp_file(s, strlen(s), ".json");
        tk_ms = load(path);
        unlink(path);
        free(s);
        cJSON_Delete(j);
    }
    CHECK(tk_ms != NULL);

    printf("multilingual.json (XQuAD, MGSM, XNLI, edge cases; ids and decodings from HF tokenizers):\n");
    char *mtext = read_file(VOCAB "multilingual.json", &jlen);
    cJSON *doc = mtext ? cJSON_ParseWithLength(mtext, jlen) : NULL;
    free(mtext);
    CHECKM(doc != NULL, "tests/data/vocab/multilingual.json parses");
    if (doc) {
        run_multilingual(tk_l3j, doc, "llama3", "llama3: llama3/tokenizer.json");
        run_multilingual(tk_l3t, doc, "llama3", "llama3: llama3-tiktoken/tokenizer.model");
        if (tk_l3g) run_multilingual(tk_l3g, doc, "llama3", "llama3: GGUF (llama-bpe) built from .json");
        run_multilingual(tk_l2, doc, "llama2", "llama2: llama2/tokenizer.json");
        run_multilingual(tk_spm, doc, "llama2", "llama2: ggml-vocab-llama-spm.gguf");
        if (tk_ms) run_multilingual(tk_ms, doc, "llama2-metaspace", "llama2-metaspace: tokenizer.json variant");
        run_multilingual(tk_gpt2, doc, "gpt2", "gpt2: ggml-vocab-gpt-2.gguf");
    }

    /* ---- (3) BOS/EOS, specials, NUL, invalid UTF-8 ---- */
    struct {
        Tokenizer *t;
        const char *what;
        int V, bos, eos, adds_bos;
    } all[] = {{tk_spm, "spm gguf", 32000, 1, 2, 1},      {tk_l2, "llama2 json", 32000, 1, 2, 1},
               {tk_gpt2, "gpt2 gguf", 50257, 50256, 50256, 0}, {tk_l3j, "llama3 json", 128256, 128000, 128001, 1},
               {tk_l3t, "llama3 tiktoken", 128256, 128000, 128001, 1}, {tk_l3g, "llama3 gguf", 128256, 128000, 128001, 1}};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const Tokenizer *t = all[i].t;
        if (!t) continue;
        CHECKM(tokenizer_vocab_size(t) == all[i].V && tokenizer_bos(t) == all[i].bos && tokenizer_eos(t) == all[i].eos, all[i].what);
        CHECKM(tokenizer_adds_bos(t) == all[i].adds_bos, all[i].what);
        int *a = NULL, na = 0, *b = NULL, nb = 0;
        afx_err e = {{0}};
        CHECKM(!tokenizer_encode(t, "Hello world", 11, 1, &a, &na, &e) && !tokenizer_encode(t, "Hello world", 11, 0, &b, &nb, &e) &&
                   na == nb + all[i].adds_bos && (!all[i].adds_bos || a[0] == all[i].bos) && !memcmp(a + all[i].adds_bos, b, (size_t)nb * sizeof *b),
               all[i].what);
        free(a), free(b);
        test_invalid_utf8(t, all[i].what);
        char *s;
        size_t sl;
        int bad[2] = {5, all[i].V};
        CHECKM(tokenizer_decode(t, bad, 2, 0, &s, &sl, &e) == -1 && s == NULL && strstr(e.msg, "out of range"), e.msg);
        bad[1] = -1;
        CHECKM(tokenizer_decode(t, bad, 2, 0, &s, &sl, &e) == -1 && s == NULL, e.msg);
    }
    /* NUL bytes are text like any other (ids from HF tokenizers; cJSON cannot carry them) */
    {
        static const int bl[] = {220, 188, 220, 188, 188}, l2[] = {259, 3, 29871, 3, 3};
        int enc = 0, dec = 0;
        check_case(tk_l3j, "llama3 json NUL", " \0 \0\0", 5, bl, 5, NULL, NULL, &enc, &dec);
        check_case(tk_l3t, "llama3 tiktoken NUL", " \0 \0\0", 5, bl, 5, NULL, NULL, &enc, &dec);
        check_case(tk_gpt2, "gpt2 NUL", " \0 \0\0", 5, bl, 5, NULL, NULL, &enc, &dec);
        check_case(tk_l2, "llama2 json NUL", " \0 \0\0", 5, l2, 5, NULL, NULL, &enc, &dec);
        check_case(tk_spm, "spm gguf NUL", " \0 \0\0", 5, l2, 5, NULL, NULL, &enc, &dec);
        char *s;
        size_t sl;
        afx_err e = {{0}};
        CHECK(!tokenizer_decode(tk_l3t, bl, 5, 0, &s, &sl, &e) && sl == 5 && !memcmp(s, " \0 \0\0", 5));
        free(s);
        CHECK(!tokenizer_decode(tk_spm, l2, 5, 0, &s, &sl, &e) && sl == 5 && !memcmp(s, " \0 \0\0", 5));
        free(s);
    }
    /* special tokens: looked up by name, matched in text, BOS added before them */
    {
        CHECK(tokenizer_token_id(tk_l3t, "<|eot_id|>") == 128009 && tokenizer_token_id(tk_l3j, "<|eot_id|>") == 128009);
        CHECK(tokenizer_token_id(tk_l3t, "<|reserved_special_token_250|>") == 128255 &&
              tokenizer_token_id(tk_l3t, "<|reserved_special_token_4|>") == 128008);
        CHECK(tokenizer_is_special(tk_l3t, 128009) && !tokenizer_is_special(tk_l3t, 9906) && tokenizer_is_special(tk_spm, 1));
        CHECK(tokenizer_token_id(tk_spm, "\xE2\x96\x81Hello") == 15043 && tokenizer_token_id(tk_gpt2, "<|endoftext|>") == 50256);
        int *ids, n;
        afx_err e = {{0}};
        static const int want[] = {128000, 128000, 9906, 128009};
        CHECK(!tokenizer_encode(tk_l3t, "<|begin_of_text|>Hello<|eot_id|>", 32, 1, &ids, &n, &e) && ids_eq(ids, n, want, 4));
        free(ids);
        static const int want2[] = {1, 1, 15043, 2}; /* the dummy prefix after a special token (HF legacy) */
        CHECK(!tokenizer_encode(tk_spm, "<s>Hello</s>", 12, 1, &ids, &n, &e) && ids_eq(ids, n, want2, 4));
        free(ids);
        char buf[16];
        size_t bl;
        CHECK(!tokenizer_token_bytes(tk_l3t, 220, buf, sizeof buf, &bl) && bl == 1 && buf[0] == ' ');
        CHECK(!tokenizer_token_bytes(tk_spm, 15043, buf, sizeof buf, &bl) && bl == 6 && !memcmp(buf, " Hello", 6));
        CHECK(!tokenizer_token_bytes(tk_spm, 3 + 0xE2, buf, sizeof buf, &bl) && bl == 1 && (unsigned char)buf[0] == 0xE2);
        CHECK(!tokenizer_token_bytes(tk_gpt2, 50256, NULL, 0, &bl) && bl == 13 && tokenizer_token_bytes(tk_gpt2, 50257, NULL, 0, &bl) == -1);
    }
    /* stories260K's own SentencePiece vocab (512 tokens): its reference greedy output decodes */
    {
        Tokenizer *t = load("tests/data/stories260K/stories260K.gguf");
        static const int gen[] = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408};
        char *s;
        size_t sl;
        afx_err e = {{0}};
        if (t) {
            const char *want = "Once upon a time, there was a little girl named Lily. She loved";
            CHECK(!tokenizer_decode(t, gen, 22, 0, &s, &sl, &e) && sl >= strlen(want) && !strncmp(s, want, strlen(want)));
            free(s);
            int *ids, n;
            CHECK(!tokenizer_encode(t, "Once upon a time", 16, 1, &ids, &n, &e) && n >= 4 && ids[0] == 1 && ids[1] == 403 && ids[2] == 407);
            free(ids);
            tokenizer_free(t);
        }
    }

    /* ---- synthetic.json: the pipeline parts the Llama files do not use, against HF ---- */
    {
        char *stext = read_file(VOCAB "synthetic.json", &jlen);
        cJSON *syn = stext ? cJSON_ParseWithLength(stext, jlen) : NULL;
        free(stext);
        CHECKM(syn != NULL, "tests/data/vocab/synthetic.json parses");
        const cJSON *x;
        int ntok = 0, ncase = 0, nok = 0;
        char *trunc_src = NULL;
        cJSON_ArrayForEach(x, cJSON_GetObjectItem(syn, "tokenizers")) {
            const char *name = cJSON_GetObjectItem(x, "name")->valuestring;
            char *js = cJSON_PrintUnformatted(cJSON_GetObjectItem(x, "tokenizer"));
            Tokenizer *t = load(temp_file(js, strlen(js), ".json"));
            if (!trunc_src) trunc_src = js;
            else free(js);
            ntok++;
            const cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetObjectItem(x, "cases")) {
                const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
                int n, nb, *ids = json_ids(cJSON_GetObjectItem(c, "ids"), &n), *idsb = json_ids(cJSON_GetObjectItem(c, "ids_bos"), &nb);
                char label[200];
                int e1 = 0, d1 = 0;
                snprintf(label, sizeof label, "synthetic %s '%s'", name, text);
                ncase++;
                if (t) {
                    int ok = check_case(t, label, text, strlen(text), ids, n, cJSON_GetObjectItem(c, "decoded")->valuestring,
                                        cJSON_GetObjectItem(c, "decoded_skip")->valuestring, &e1, &d1);
                    int *got = NULL, ng = 0;
                    afx_err e = {{0}};
                    int okb = !tokenizer_encode(t, text, strlen(text), 1, &got, &ng, &e) && ids_eq(got, ng, idsb, nb);
                    check_at(okb, __FILE__, __LINE__, "synthetic: encode with the template (add_special_tokens=True)", label);
                    free(got);
                    nok += ok && okb;
                }
                free(ids), free(idsb);
            }
            tokenizer_free(t);
        }
        printf("  synthetic.json: %d tokenizers, %d/%d cases (encode, decode, decode skip_special, template)\n", ntok, nok, ncase);
        /* every truncation of a valid tokenizer.json is refused, without a crash */
        int refused = 0, tried = 0;
        size_t tl = trunc_src ? strlen(trunc_src) : 0;
        for (size_t cut = 0; cut < tl; cut += 1 + tl / 150) {
            Tokenizer *t = NULL;
            afx_err e = {{0}};
            const char *path = temp_file(trunc_src, cut, ".json");
            refused += tokenizer_load(&t, path, &e) == -1 && !t && strstr(e.msg, path);
            tokenizer_free(t);
            unlink(path);
            tried++;
        }
        check_at(refused == tried && tried > 100, __FILE__, __LINE__, "every truncated tokenizer.json is refused", "");
        /* an HF model directory: tokenizer.json + tokenizer_config.json (bos/eos names; a Llama class's
         * add_bos_token / add_eos_token rebuild the template, as transformers' LlamaTokenizerFast does) */
        if (REQUIRE(trunc_src && tmpdir[0])) {
            char dir[128], p1[160], p2[160];
            snprintf(dir, sizeof dir, "%s/model", tmpdir);
            snprintf(p1, sizeof p1, "%s/tokenizer.json", dir);
            snprintf(p2, sizeof p2, "%s/tokenizer_config.json", dir);
            const char *cfg = "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"add_bos_token\": false, \"add_eos_token\": true, "
                              "\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"}}";
            FILE *f1 = mkdir(dir, 0700) == 0 ? fopen(p1, "wb") : NULL, *f2 = f1 ? fopen(p2, "wb") : NULL;
            if (f1) fputs(trunc_src, f1), fclose(f1);
            if (f2) fputs(cfg, f2), fclose(f2);
            Tokenizer *t = load(dir);
            if (t) {
                int *ids, n;
                afx_err e = {{0}};
                CHECK(tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2 && !tokenizer_adds_bos(t));
                CHECK(!tokenizer_encode(t, "ab", 2, 1, &ids, &n, &e) && n == 2 && ids[1] == 2 && ids[0] != 1);
                free(ids);
                tokenizer_free(t);
            }
            unlink(p1), unlink(p2), rmdir(dir);
        }
        free(trunc_src);
        cJSON_Delete(syn);
    }

    /* ---- random text: encode never fails on valid UTF-8 and decode(encode(x)) == x ---- */
    {
        static const uint32_t pool[] = {'a', 'b', 'Z', '0', '7', ' ', ' ', ' ', '\n', '\t', '\r', '\'', 's', '.', '!', 0x85, 0xA0, 0xE9,
                                        0x300, 0x3B1, 0x416, 0x5D0, 0x627, 0x905, 0xE01, 0x1100, 0x2009, 0x2028, 0x3000, 0x4E2D, 0xAC00,
                                        0xFEFF, 0xFFFD, 0x1F999, 0x1F600, 0x20000, 0x10FFFF, 0x1, 0x7F};
        unsigned long long rng = 12345;
        Tokenizer *ts[] = {tk_spm, tk_l2, tk_gpt2, tk_l3j, tk_l3t};
        int good = 0, total = 0;
        for (int k = 0; k < 300; k++) {
            char text[256];
            size_t len = 0;
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            int nch = (int)(rng >> 58);
            for (int c = 0; c < nch; c++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                uint32_t cp = pool[(rng >> 33) % (sizeof pool / sizeof pool[0])];
                /* UTF-8 by hand */
                if (cp < 0x80) text[len++] = (char)cp;
                else if (cp < 0x800) text[len++] = (char)(0xC0 | cp >> 6), text[len++] = (char)(0x80 | (cp & 63));
                else if (cp < 0x10000)
                    text[len++] = (char)(0xE0 | cp >> 12), text[len++] = (char)(0x80 | (cp >> 6 & 63)), text[len++] = (char)(0x80 | (cp & 63));
                else
                    text[len++] = (char)(0xF0 | cp >> 18), text[len++] = (char)(0x80 | (cp >> 12 & 63)),
                    text[len++] = (char)(0x80 | (cp >> 6 & 63)), text[len++] = (char)(0x80 | (cp & 63));
            }
            for (int i = 0; i < 5; i++) {
                int *ids, n;
                char *back;
                size_t bl;
                afx_err e = {{0}};
                total++;
                if (tokenizer_encode(ts[i], text, len, 0, &ids, &n, &e)) continue;
                if (!tokenizer_decode(ts[i], ids, n, 0, &back, &bl, &e)) {
                    good += bl == len && !memcmp(back, text, len);
                    free(back);
                }
                free(ids);
            }
        }
        check_at(good == total, __FILE__, __LINE__, "random text: decode(encode(x)) == x", "");
        printf("  random text: %d/%d round trips\n", good, total);
    }

    /* ---- malformed files: errors name the file ---- */
    printf("malformed files:\n");
    {
        const char *bad_json[][2] = {
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []", "not valid JSON"},
            {"[1, 2]", "not a tokenizer.json"},
            {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "unsupported model type 'WordPiece'"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "is not in the vocabulary"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b c\"]}}", "is not 'left right'"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", "must be a non-negative integer"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", "appears twice"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": []}}", "token id 1 is missing"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"NFKC\"}}",
             "unsupported normalizer 'NFKC'"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": "
             "{\"Regex\": \"(a\"}, \"behavior\": \"Isolated\", \"invert\": false}}",
             "regex"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"WordPiece\"}}",
             "unsupported decoder 'WordPiece'"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1}}", "dropout"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": [{\"id\": 1, \"content\": \"\"}]}",
             "is empty"},
            {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"post_processor\": {\"type\": \"TemplateProcessing\", "
             "\"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "
             "\"special_tokens\": {}}}",
             "has no ids"},
        };
        for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++)
            check_load_fails(bad_json[i][0], strlen(bad_json[i][0]), ".json", bad_json[i][1], __LINE__);
        /* tiktoken lines: the first lines of the real file, then one broken line */
        size_t tlen;
        char *tik = read_file(LLAMA3_TIKTOKEN, &tlen);
        CHECK(tik != NULL);
        if (tik) {
            size_t head = 0;
            for (int k = 0; k < 4; k++) head = (size_t)(strchr(tik + head, '\n') - tik) + 1;
            const char *tails[][2] = {{"/w== 3\n", "line 5: rank 3 appears twice"},
                                      {"!!!! 4\n", "line 5: '!!!!' is not base64"},
                                      {"IQ==\n", "line 5: expected 'base64 rank'"},
                                      {"IQ== x4\n", "line 5: the rank 'x4' is not a number"},
                                      {"IQ= 4\n", "line 5: 'IQ=' is not base64"},
                                      {"IQ== 128000\n", "beyond Llama 3's 128000 ranks"},
                                      {"", "4 ranks; only Llama 3's tiktoken file (128000 ranks) is known"}};
            for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
                char *buf = malloc(head + 32);
                memcpy(buf, tik, head);
                memcpy(buf + head, tails[i][0], strlen(tails[i][0]));
                check_load_fails(buf, head + strlen(tails[i][0]), ".model", tails[i][1], __LINE__);
                free(buf);
            }
            check_load_fails("\x0a\x0b\x0a\x05<unk>", 9, ".model", "binary data", __LINE__);
            /* a token that appears twice: the whole real file with line 6 = line 5 */
            char *dup = malloc(tlen + 1);
            memcpy(dup, tik, tlen);
            size_t l5 = head, l6 = (size_t)(strchr(tik + l5, '\n') - tik) + 1;
            memcpy(dup + l6, tik + l5, 4); /* same base64 (both 4 chars: "IQ==" / "Ig==") */
            check_load_fails(dup, tlen, ".model", "appears twice in the vocabulary (line 6)", __LINE__);
            free(dup), free(tik);
        }
        unsigned char g[512];
        const char *kv1[] = {"general.architecture", "llama"};
        check_load_fails((const char *)g, gguf_strings(g, kv1, 1), ".gguf", "no tokenizer in this GGUF file", __LINE__);
        const char *kv2[] = {"general.architecture", "bert", "tokenizer.ggml.model", "bert"};
        check_load_fails((const char *)g, gguf_strings(g, kv2, 2), ".gguf", "tokenizer.ggml.model 'bert' is not supported", __LINE__);
        const char *kv3[] = {"tokenizer.ggml.model", "llama"};
        check_load_fails((const char *)g, gguf_strings(g, kv3, 1), ".gguf", "tokenizer.ggml.tokens must be", __LINE__);
        check_load_fails("GGUF\x03", 5, ".gguf", "", __LINE__);
        Tokenizer *t = NULL;
        afx_err e = {{0}};
        CHECK(tokenizer_load(&t, "tests/data/vocab/no-such-file.json", &e) == -1 && !t && strstr(e.msg, "no-such-file.json"));
        CHECK(tokenizer_load(&t, "tests/data", &e) == -1 && !t && strstr(e.msg, "no tokenizer.json or tokenizer.model"));
        CHECK(tokenizer_load(&t, VOCAB "llama3", &e) == 0 && t && tokenizer_vocab_size(t) == 128256); /* a directory */
        tokenizer_free(t);
        printf("  %d checks so far\n", check_pass + check_fail);
    }

    /* ---- speed: a few KB must take milliseconds; 50 KB as one SentencePiece "word" too ---- */
    if (doc) {
        size_t cap = 1 << 20, len = 0;
        char *big = malloc(cap);
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItem(doc, "texts")) {
            const char *s = cJSON_GetObjectItem(x, "text")->valuestring;
            size_t n = strlen(s);
            if (len + n + 1 < cap) memcpy(big + len, s, n), len += n, big[len++] = '\n';
        }
        Tokenizer *ts[] = {tk_spm, tk_l2, tk_gpt2, tk_l3j, tk_l3t};
        const char *names[] = {"spm gguf", "llama2 json", "gpt2 gguf", "llama3 json", "llama3 tiktoken"};
        printf("speed (%zu bytes of multilingual text):\n", len);
        for (int i = 0; i < 5; i++) {
            int *ids, n;
            afx_err e = {{0}};
            clock_t c0 = clock();
            int rc = tokenizer_encode(ts[i], big, len, 1, &ids, &n, &e);
            double ms = 1000.0 * (double)(clock() - c0) / CLOCKS_PER_SEC;
            char *back;
            size_t bl;
            c0 = clock();
            int rd = rc ? -1 : tokenizer_decode(ts[i], ids, n, 1, &back, &bl, &e);
            double dms = 1000.0 * (double)(clock() - c0) / CLOCKS_PER_SEC;
            printf("  %-16s encode %7.1f ms (%6d ids), decode %6.1f ms\n", names[i], ms, rc ? 0 : n, dms);
            CHECKM(rc == 0 && rd == 0 && ms < 2000, names[i]); /* generous for sanitizer builds; ~10 ms at -O2 */
            if (!rc) free(ids);
            if (!rd) free(back);
        }
        free(big);
    }

    for (int i = 0; i < n_made; i++) unlink(made[i]);
    if (tmpdir[0] && rmdir(tmpdir)) printf("note: could not remove %s\n", tmpdir);
    cJSON_Delete(doc);
    tokenizer_free(tk_spm), tokenizer_free(tk_l2), tokenizer_free(tk_gpt2), tokenizer_free(tk_l3j), tokenizer_free(tk_l3t), tokenizer_free(tk_ms);
    tokenizer_free(tk_l3g);
    free_vectors(&spm), free_vectors(&gpt2), free_vectors(&l3);
    return check_summary();
}
