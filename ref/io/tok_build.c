/* tok_build.c — the Tokenizer's building blocks (tok_internal.h): the string arena and the ids, the
 * vocabulary and merge hash maps, the pipeline steps (normalizers, pre-tokenizer regexes compiled
 * with PCRE2, decoders), the post-processor template, and tok_finish; tokenizer_free and the
 * queries of tokenizer.h.
 *
 * What this is: what every loader (tok_json.c, tok_tiktoken.c, tok_gguf.c) calls to fill a
 * Tokenizer; hash maps are open addressing; no globals.
 * What this is not: a loader (it never reads a file, nor picks one), or encode/decode
 * (tok_encode.c, tok_decode.c).
 */
#define _POSIX_C_SOURCE 200809L
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tok_internal.h"
#include "utf8.h"

const char TOK_GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char TOK_LLAMA3_REGEX[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
                                "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ======================================= the byte-level map ==================================== */

/* GPT-2's bytes_to_unicode: the printable bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF stand for
 * themselves; the other 68 (0x00..0x20, 0x7F..0xA0, 0xAD) become U+0100.. in byte order. */
uint32_t tok_byte_to_cp(unsigned char b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 0x100u + b;
    if (b <= 0xA0) return 0x100u + 33 + (b - 0x7Fu);
    return 0x100u + 33 + 34; /* 0xAD */
}

int tok_cp_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp >= 0x100 && cp < 0x100 + 33) return (int)(cp - 0x100);
    if (cp >= 0x100 + 33 && cp < 0x100 + 67) return (int)(cp - 0x100 - 33 + 0x7F);
    if (cp == 0x100 + 67) return 0xAD;
    return -1;
}

/* ========================================== hash maps ========================================= */

static uint64_t hash_bytes(const char *s, size_t n) { /* FNV-1a, then a final mix */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    h ^= h >> 29;
    return h * 0xBF58476D1CE4E5B9ULL;
}

static uint64_t hash_u64(uint64_t x) { /* splitmix64 finalizer */
    x ^= x >> 30, x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27, x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static int vkey_eq(const Tokenizer *t, uint32_t id, const char *s, size_t n) {
    return t->vkey_len[id] == n && (n == 0 || !memcmp(t->arena + t->vkey_off[id], s, n));
}

static int strmap_grow(Tokenizer *t) {
    TokStrMap *m = &t->vocab;
    size_t cap = m->cap ? 2 * m->cap : 1024;
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slot[i]) continue;
        uint32_t id = m->slot[i] - 1;
        size_t h = (size_t)hash_bytes(t->arena + t->vkey_off[id], t->vkey_len[id]) & (cap - 1);
        while (slot[h]) h = (h + 1) & (cap - 1);
        slot[h] = m->slot[i];
    }
    free(m->slot);
    m->slot = slot, m->cap = cap;
    return 0;
}

int tok_vocab_find(const Tokenizer *t, const char *s, size_t n) {
    const TokStrMap *m = &t->vocab;
    if (!m->cap) return -1;
    size_t h = (size_t)hash_bytes(s, n) & (m->cap - 1);
    while (m->slot[h]) {
        if (vkey_eq(t, m->slot[h] - 1, s, n)) return (int)(m->slot[h] - 1);
        h = (h + 1) & (m->cap - 1);
    }
    return -1;
}

const TokPair *tok_pair_find(const TokPairMap *m, int l, int r) {
    if (!m->cap) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    size_t h = (size_t)hash_u64(key) & (m->cap - 1);
    while (m->slot[h].key != UINT64_MAX) {
        if (m->slot[h].key == key) return &m->slot[h];
        h = (h + 1) & (m->cap - 1);
    }
    return NULL;
}

static int pair_put(TokPairMap *m, uint64_t key, double prio, int id) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 1024;
        TokPair *slot = malloc(cap * sizeof *slot);
        if (!slot) return -1;
        for (size_t i = 0; i < cap; i++) slot[i].key = UINT64_MAX;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slot[i].key == UINT64_MAX) continue;
            size_t h = (size_t)hash_u64(m->slot[i].key) & (cap - 1);
            while (slot[h].key != UINT64_MAX) h = (h + 1) & (cap - 1);
            slot[h] = m->slot[i];
        }
        free(m->slot);
        m->slot = slot, m->cap = cap;
    }
    size_t h = (size_t)hash_u64(key) & (m->cap - 1);
    while (m->slot[h].key != UINT64_MAX && m->slot[h].key != key) h = (h + 1) & (m->cap - 1);
    if (m->slot[h].key == UINT64_MAX) m->n++;
    m->slot[h].key = key, m->slot[h].prio = prio, m->slot[h].id = id; /* a repeated pair: the last wins (HF) */
    return 0;
}

/* ========================================== building ========================================== */

Tokenizer *tok_new(const char *name, afx_err *e) {
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name ? name : "tokenizer"))) {
        free(t);
        afx_fail(e, "%s: out of memory", name ? name : "tokenizer");
        return NULL;
    }
    t->unk = t->bos = t->eos = -1;
    /* the arena always exists: a vocabulary of empty strings points into it, never at NULL */
    t->arena_cap = 1 << 12;
    if (!(t->arena = malloc(t->arena_cap))) {
        free(t->name), free(t);
        afx_fail(e, "%s: out of memory", name ? name : "tokenizer");
        return NULL;
    }
    return t;
}

void tok_limit_ids(Tokenizer *t, long long n) {
    n += TOK_ID_SLACK; /* a small gap is left to tok_finish, which names the first missing id */
    t->max_ids = n > TOK_MAX_IDS ? TOK_MAX_IDS : (int)n;
}

static int arena_put(Tokenizer *t, const char *s, size_t n, size_t *off) {
    if (t->arena_len + n > t->arena_cap) {
        if (n > SIZE_MAX / 4 - t->arena_len) return -1;
        size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
        while (cap < t->arena_len + n) cap *= 2;
        char *p = realloc(t->arena, cap);
        if (!p) return -1;
        t->arena = p, t->arena_cap = cap;
    }
    if (n) memcpy(t->arena + t->arena_len, s, n);
    *off = t->arena_len;
    t->arena_len += n;
    return 0;
}

static int ensure_id(Tokenizer *t, int id, afx_err *e) {
    int limit = t->max_ids > 0 ? t->max_ids : TOK_MAX_IDS;
    if (id < 0 || id >= limit) {
        if (t->max_ids > 0 && t->max_ids < TOK_MAX_IDS)
            return afx_fail(e, "%s: token id %d is out of range: the file holds %d entries and ids are dense, so "
                            "they must be below %d", t->name, id, t->max_ids - TOK_ID_SLACK, t->max_ids);
        return afx_fail(e, "%s: token id %d is out of range (ids must be below %d)", t->name, id, limit);
    }
    if (id >= t->cap_ids) { /* doubling, capped at the limit: never beyond it, never overflowing */
        int cap = t->cap_ids ? t->cap_ids : 1024;
        while (cap <= id) cap = cap > limit / 2 ? limit : 2 * cap;
        size_t *off = realloc(t->off, (size_t)cap * sizeof *off);
        if (off) t->off = off;
        uint32_t *len = realloc(t->len, (size_t)cap * sizeof *len);
        if (len) t->len = len;
        unsigned char *attr = realloc(t->attr, (size_t)cap);
        if (attr) t->attr = attr;
        size_t *vo = realloc(t->vkey_off, (size_t)cap * sizeof *vo);
        if (vo) t->vkey_off = vo;
        uint32_t *vl = realloc(t->vkey_len, (size_t)cap * sizeof *vl);
        if (vl) t->vkey_len = vl;
        if (!off || !len || !attr || !vo || !vl) return afx_fail(e, "%s: out of memory", t->name);
        for (int i = t->cap_ids; i < cap; i++) t->off[i] = 0, t->len[i] = 0, t->attr[i] = 0, t->vkey_off[i] = 0, t->vkey_len[i] = 0;
        t->cap_ids = cap;
    }
    if (id >= t->n_ids) t->n_ids = id + 1;
    return 0;
}

int tok_add_vocab(Tokenizer *t, int id, const char *s, size_t n, afx_err *e) {
    if (ensure_id(t, id, e)) return -1;
    if (n > UINT32_MAX) return afx_fail(e, "%s: token %d is too long", t->name, id);
    if (t->vkey_len[id] || (t->attr[id] & TOK_ATTR_PRESENT && !(t->attr[id] & TOK_ATTR_ADDED)))
        return afx_fail(e, "%s: token id %d appears twice in the vocabulary", t->name, id);
    if (tok_vocab_find(t, s, n) >= 0)
        return afx_fail(e, "%s: token '%.*s' appears twice in the vocabulary", t->name, (int)(n > 64 ? 64 : n), s);
    size_t off;
    if (arena_put(t, s, n, &off)) return afx_fail(e, "%s: out of memory", t->name);
    t->vkey_off[id] = off, t->vkey_len[id] = (uint32_t)n;
    if (!(t->attr[id] & TOK_ATTR_ADDED)) t->off[id] = off, t->len[id] = (uint32_t)n; /* an added token's content wins */
    t->attr[id] |= TOK_ATTR_PRESENT;
    if (2 * (t->vocab.n + 1) > t->vocab.cap && strmap_grow(t)) return afx_fail(e, "%s: out of memory", t->name);
    size_t h = (size_t)hash_bytes(s, n) & (t->vocab.cap - 1);
    while (t->vocab.slot[h]) h = (h + 1) & (t->vocab.cap - 1);
    t->vocab.slot[h] = (uint32_t)id + 1;
    t->vocab.n++;
    return 0;
}

int tok_add_unmapped(Tokenizer *t, int id, const char *s, size_t n, afx_err *e) {
    if (ensure_id(t, id, e)) return -1;
    if (n > UINT32_MAX) return afx_fail(e, "%s: token %d is too long", t->name, id);
    if (t->attr[id] & TOK_ATTR_PRESENT) return afx_fail(e, "%s: token id %d appears twice in the vocabulary", t->name, id);
    size_t off;
    if (arena_put(t, s, n, &off)) return afx_fail(e, "%s: out of memory", t->name);
    t->off[id] = off, t->len[id] = (uint32_t)n;
    t->attr[id] |= TOK_ATTR_PRESENT;
    return 0;
}

int tok_add_added(Tokenizer *t, int id, const char *s, size_t n, int special, int lstrip, int rstrip, afx_err *e) {
    if (ensure_id(t, id, e)) return -1;
    if (n == 0) return afx_fail(e, "%s: added token %d is empty", t->name, id);
    if (n > UINT32_MAX) return afx_fail(e, "%s: added token %d is too long", t->name, id);
    if (t->attr[id] & TOK_ATTR_ADDED) return afx_fail(e, "%s: added token id %d appears twice", t->name, id);
    if (t->n_added == t->cap_added) {
        int cap = t->cap_added ? 2 * t->cap_added : 16;
        TokAdded *a = realloc(t->added, (size_t)cap * sizeof *a);
        if (!a) return afx_fail(e, "%s: out of memory", t->name);
        t->added = a, t->cap_added = cap;
    }
    size_t off;
    if (arena_put(t, s, n, &off)) return afx_fail(e, "%s: out of memory", t->name);
    t->added[t->n_added++] = (TokAdded){.id = id, .off = off, .len = n, .lstrip = lstrip, .rstrip = rstrip};
    t->off[id] = off, t->len[id] = (uint32_t)n;
    t->attr[id] |= TOK_ATTR_ADDED | TOK_ATTR_PRESENT | (special ? TOK_ATTR_SPECIAL : 0);
    return 0;
}

int tok_add_merge(Tokenizer *t, int left, int right, int merged, double prio, afx_err *e) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    if (pair_put(&t->merges, key, prio, merged)) return afx_fail(e, "%s: out of memory", t->name);
    return 0;
}

int tok_merges_from_vocab(Tokenizer *t, const double *prio, const unsigned char *eligible, afx_err *e) {
    for (int m = 0; m < t->n_ids; m++) {
        if (!t->vkey_len[m] || (eligible && !eligible[m])) continue;
        const char *s = t->arena + t->vkey_off[m];
        size_t n = t->vkey_len[m];
        for (size_t k = 1; k < n; k++) {
            if (((unsigned char)s[k] & 0xC0) == 0x80) continue; /* not a character boundary */
            int l = tok_vocab_find(t, s, k), r = l < 0 ? -1 : tok_vocab_find(t, s + k, n - k);
            if (r >= 0 && tok_add_merge(t, l, r, m, prio[m], e)) return -1;
        }
    }
    return 0;
}

int tok_push_norm(Tokenizer *t, int kind, const char *a, size_t na, const char *b, size_t nb, afx_err *e) {
    TokNorm *p = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *p);
    if (!p) return afx_fail(e, "%s: out of memory", t->name);
    t->norm = p;
    TokNorm *s = &t->norm[t->n_norm];
    *s = (TokNorm){.kind = kind, .a = malloc(na + 1), .b = malloc(nb + 1), .na = na, .nb = nb};
    if (!s->a || !s->b) {
        free(s->a), free(s->b);
        return afx_fail(e, "%s: out of memory", t->name);
    }
    if (na) memcpy(s->a, a, na);
    if (nb) memcpy(s->b, b, nb);
    s->a[na] = 0, s->b[nb] = 0;
    t->n_norm++;
    return 0;
}

/* The pattern with \s and \S turned into the Unicode White_Space set (Oniguruma's and Rust regex's
 * \s; PCRE2's UCP \s leaves out U+0085). */
#define WHITE_SPACE "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static char *rewrite_space_classes(const char *p, size_t n) {
    afx_buf b = {0};
    int in_class = 0, ok = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            i++;
            if (d == 's') ok = in_class ? afx_buf_put(&b, WHITE_SPACE, strlen(WHITE_SPACE)) : afx_buf_put(&b, "[" WHITE_SPACE "]", strlen(WHITE_SPACE) + 2);
            else if (d == 'S' && !in_class) ok = afx_buf_put(&b, "[^" WHITE_SPACE "]", strlen(WHITE_SPACE) + 3);
            else if (d == 'S') ok = afx_buf_put(&b, "\\S", 2); /* inside a class: left as PCRE2's */
            else ok = afx_buf_put(&b, p + i - 1, 2);
        } else {
            if (c == '[' && !in_class) {
                in_class = 1;
                ok = afx_buf_put(&b, &c, 1);
                /* a ']' right after '[' or '[^' is a literal */
                if (!ok && i + 1 < n && p[i + 1] == '^') ok = afx_buf_put(&b, "^", 1), i++;
                if (!ok && i + 1 < n && p[i + 1] == ']') ok = afx_buf_put(&b, "]", 1), i++;
                if (ok) break;
                continue;
            }
            if (c == ']' && in_class) in_class = 0;
            ok = afx_buf_put(&b, &c, 1);
        }
        if (ok) break;
    }
    if (ok || afx_buf_put(&b, "", 0)) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static void *compile_regex(Tokenizer *t, const char *pattern, size_t n, int is_regex, afx_err *e) {
    char *pat = is_regex ? rewrite_space_classes(pattern, n) : NULL;
    if (is_regex && !pat) {
        afx_fail(e, "%s: out of memory", t->name);
        return NULL;
    }
    int err;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(is_regex ? pat : pattern), is_regex ? PCRE2_ZERO_TERMINATED : n,
                                   is_regex ? PCRE2_UTF | PCRE2_UCP : PCRE2_UTF | PCRE2_LITERAL, &err, &erroff, NULL);
    free(pat);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        afx_fail(e, "%s: pre-tokenizer regex '%.*s': %s", t->name, (int)(n > 120 ? 120 : n), pattern, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* a speed-up where PCRE2 has a JIT; fine without */
    return re;
}

static int push_pre(Tokenizer *t, TokPre p, afx_err *e) {
    TokPre *a = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *a);
    if (!a) {
        pcre2_code_free(p.re);
        return afx_fail(e, "%s: out of memory", t->name);
    }
    t->pre = a;
    t->pre[t->n_pre++] = p;
    return 0;
}

int tok_push_split(Tokenizer *t, const char *pattern, size_t n, int is_regex, int behavior, int invert, afx_err *e) {
    void *re = compile_regex(t, pattern, n, is_regex, e);
    if (!re) return -1;
    return push_pre(t, (TokPre){.kind = TOK_PRE_SPLIT, .re = re, .behavior = behavior, .invert = invert}, e);
}

int tok_push_bytelevel(Tokenizer *t, int add_prefix_space, int use_regex, afx_err *e) {
    void *re = NULL;
    if (use_regex && !(re = compile_regex(t, TOK_GPT2_REGEX, strlen(TOK_GPT2_REGEX), 1, e))) return -1;
    return push_pre(t, (TokPre){.kind = TOK_PRE_BYTELEVEL, .re = re, .add_prefix_space = add_prefix_space}, e);
}

int tok_push_metaspace(Tokenizer *t, const char *rep, int prepend_scheme, int split, afx_err *e) {
    uint32_t cp;
    size_t n = strlen(rep);
    if (n == 0 || utf8_next(rep, n, &cp) != (int)n)
        return afx_fail(e, "%s: Metaspace replacement must be one character", t->name);
    TokPre p = {.kind = TOK_PRE_METASPACE, .prepend_scheme = prepend_scheme, .split = split};
    memcpy(p.rep, rep, n + 1);
    return push_pre(t, p, e);
}

int tok_push_dec(Tokenizer *t, const TokDec *d, afx_err *e) {
    TokDec *a = realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *a);
    if (!a) return afx_fail(e, "%s: out of memory", t->name);
    t->dec = a;
    TokDec s = *d;
    s.a = malloc(d->na + 1), s.b = malloc(d->nb + 1);
    if (!s.a || !s.b) {
        free(s.a), free(s.b);
        return afx_fail(e, "%s: out of memory", t->name);
    }
    if (d->na) memcpy(s.a, d->a, d->na);
    if (d->nb) memcpy(s.b, d->b, d->nb);
    s.a[d->na] = 0, s.b[d->nb] = 0;
    t->dec[t->n_dec++] = s;
    return 0;
}

int tok_set_template(Tokenizer *t, const int *prefix, int n_prefix, const int *suffix, int n_suffix, afx_err *e) {
    free(t->prefix), free(t->suffix);
    t->prefix = malloc((size_t)(n_prefix + 1) * sizeof *prefix);
    t->suffix = malloc((size_t)(n_suffix + 1) * sizeof *suffix);
    t->n_prefix = t->n_suffix = 0;
    if (!t->prefix || !t->suffix) return afx_fail(e, "%s: out of memory", t->name);
    if (n_prefix) memcpy(t->prefix, prefix, (size_t)n_prefix * sizeof *prefix);
    if (n_suffix) memcpy(t->suffix, suffix, (size_t)n_suffix * sizeof *suffix);
    t->n_prefix = n_prefix, t->n_suffix = n_suffix;
    return 0;
}

static int added_before(const Tokenizer *t, int a, int b) { /* longer first, then lower index */
    if (t->added[a].len != t->added[b].len) return t->added[a].len > t->added[b].len ? -1 : 1;
    return a < b ? -1 : a > b;
}

int tok_finish(Tokenizer *t, afx_err *e) {
    if (t->n_ids == 0) return afx_fail(e, "%s: the vocabulary is empty", t->name);
    int nonempty = 0;
    for (int id = 0; id < t->n_ids && !nonempty; id++) nonempty = t->len[id] > 0;
    if (!nonempty) return afx_fail(e, "%s: every one of the %d tokens is an empty string", t->name, t->n_ids);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        t->byte_id[b] = tok_vocab_find(t, s, 6);
    }
    for (int id = 0; id < t->n_ids; id++)
        if (!(t->attr[id] & TOK_ATTR_PRESENT)) return afx_fail(e, "%s: token id %d is missing (ids must be 0..%d)", t->name, id, t->n_ids - 1);
    /* added tokens bucketed by first byte, longest first: leftmost-longest matching */
    t->added_by_byte = calloc(257, sizeof *t->added_by_byte);
    t->added_sorted = malloc((size_t)(t->n_added + 1) * sizeof *t->added_sorted);
    if (!t->added_by_byte || !t->added_sorted) return afx_fail(e, "%s: out of memory", t->name);
    for (int i = 0; i < t->n_added; i++) t->added_by_byte[(unsigned char)t->arena[t->added[i].off] + 1]++;
    for (int b = 0; b < 256; b++) t->added_by_byte[b + 1] += t->added_by_byte[b];
    int *fill = malloc(256 * sizeof *fill);
    if (!fill) return afx_fail(e, "%s: out of memory", t->name);
    memcpy(fill, t->added_by_byte, 256 * sizeof *fill);
    for (int i = 0; i < t->n_added; i++) t->added_sorted[fill[(unsigned char)t->arena[t->added[i].off]]++] = i;
    free(fill);
    for (int b = 0; b < 256; b++) /* insertion sort inside each bucket (buckets are small) */
        for (int i = t->added_by_byte[b] + 1; i < t->added_by_byte[b + 1]; i++)
            for (int j = i; j > t->added_by_byte[b] && added_before(t, t->added_sorted[j], t->added_sorted[j - 1]) < 0; j--) {
                int x = t->added_sorted[j];
                t->added_sorted[j] = t->added_sorted[j - 1], t->added_sorted[j - 1] = x;
            }
    for (int i = 0; i < t->n_prefix; i++)
        if (t->prefix[i] < 0 || t->prefix[i] >= t->n_ids) return afx_fail(e, "%s: template token id %d out of range", t->name, t->prefix[i]);
    for (int i = 0; i < t->n_suffix; i++)
        if (t->suffix[i] < 0 || t->suffix[i] >= t->n_ids) return afx_fail(e, "%s: template token id %d out of range", t->name, t->suffix[i]);
    if (t->bos >= t->n_ids || t->eos >= t->n_ids || t->unk >= t->n_ids)
        return afx_fail(e, "%s: bos/eos/unk id out of range (vocabulary of %d)", t->name, t->n_ids);
    return 0;
}

/* ========================================== queries =========================================== */

int tokenizer_token_id(const Tokenizer *t, const char *s) {
    size_t n = strlen(s);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->arena + t->added[i].off, s, n)) return t->added[i].id;
    return tok_vocab_find(t, s, n);
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->n_ids; }
int tokenizer_bos(const Tokenizer *t) { return t->bos; }
int tokenizer_eos(const Tokenizer *t) { return t->eos; }
int tokenizer_adds_bos(const Tokenizer *t) { return t->n_prefix > 0 && t->bos >= 0 && t->prefix[0] == t->bos; }
int tokenizer_is_special(const Tokenizer *t, int id) { return id >= 0 && id < t->n_ids && (t->attr[id] & TOK_ATTR_SPECIAL); }

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free(t->name), free(t->arena), free(t->off), free(t->len), free(t->attr), free(t->vkey_off), free(t->vkey_len);
    free(t->vocab.slot), free(t->merges.slot), free(t->added), free(t->added_by_byte), free(t->added_sorted);
    for (int i = 0; i < t->n_norm; i++) free(t->norm[i].a), free(t->norm[i].b);
    for (int i = 0; i < t->n_pre; i++) pcre2_code_free(t->pre[i].re);
    for (int i = 0; i < t->n_dec; i++) free(t->dec[i].a), free(t->dec[i].b);
    free(t->norm), free(t->pre), free(t->dec), free(t->prefix), free(t->suffix);
    free(t);
}
