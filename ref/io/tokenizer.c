/* tokenizer.c — encode and decode as the Hugging Face tokenizers do (the pipeline of tok_internal.h),
 * the building blocks the loaders use, and tokenizer_load, which picks a loader by the file.
 *
 * What this is: a straight reading of the HF `tokenizers` semantics for BPE models — added tokens
 * split out first (leftmost-longest), normalizer, pre-tokenizer (regexes through PCRE2 with UTF and
 * Unicode properties), BPE with a min-heap of candidate merges (lowest priority, then leftmost), the
 * template of the post-processor, and the decoder chain. Hash maps are open addressing; no globals.
 * What this is not: a general tokenizers port (no WordPiece/Unigram, no offsets, no truncation or
 * padding, no Unicode normalization forms). Unsupported parts of a file are refused by name.
 */
#define _POSIX_C_SOURCE 200809L
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tok_internal.h"

const char TOK_GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char TOK_LLAMA3_REGEX[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
                                "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ================================ UTF-8 and the byte-level map ================================ */

int tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, lo = 0x80, hi = 0xBF; /* the valid range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        if (c == 0xED) hi = 0x9F;      /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        if (c == 0xF4) hi = 0x8F;      /* > U+10FFFF */
    } else return 0;                   /* continuation byte, C0, C1, F5..FF */
    if ((size_t)len > n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    v = (v << 6) | (s[1] & 0x3F);
    for (int i = 2; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

/* length of the maximal prefix of a valid sequence at s (>= 1): what one U+FFFD replaces, as
 * Rust's String::from_utf8_lossy does (Unicode's "substitution of maximal subparts") */
static size_t utf8_invalid_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 1;
    size_t k = 1;
    if (k < n && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k < (size_t)len && k < n && (s[k] & 0xC0) == 0x80) k++;
    }
    return k;
}

size_t tok_utf8_put(char *out, uint32_t cp) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6)), o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12)), o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18)), o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

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

/* ======================================= growable buffers ===================================== */

typedef struct {
    char *p;
    size_t n, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p, b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *s, size_t n) {
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

typedef struct {
    int *p;
    int n, cap;
} IdBuf;

static int ids_put(IdBuf *b, int id) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        int *p = realloc(b->p, (size_t)cap * sizeof *p);
        if (!p) return -1;
        b->p = p, b->cap = cap;
    }
    b->p[b->n++] = id;
    return 0;
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
    return t->vkey_len[id] == n && !memcmp(t->arena + t->vkey_off[id], s, n);
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

static const TokPair *pair_find(const TokPairMap *m, int l, int r) {
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
    return t;
}

static int arena_put(Tokenizer *t, const char *s, size_t n, size_t *off) {
    if (t->arena_len + n > t->arena_cap) {
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
    if (id < 0 || id > (1 << 30)) return afx_fail(e, "%s: token id %d out of range", t->name, id);
    if (id >= t->cap_ids) {
        int cap = t->cap_ids ? t->cap_ids : 1024;
        while (cap <= id) cap *= 2;
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
    Buf b = {0};
    int in_class = 0, ok = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            i++;
            if (d == 's') ok = in_class ? buf_put(&b, WHITE_SPACE, strlen(WHITE_SPACE)) : buf_put(&b, "[" WHITE_SPACE "]", strlen(WHITE_SPACE) + 2);
            else if (d == 'S' && !in_class) ok = buf_put(&b, "[^" WHITE_SPACE "]", strlen(WHITE_SPACE) + 3);
            else if (d == 'S') ok = buf_put(&b, "\\S", 2); /* inside a class: left as PCRE2's */
            else ok = buf_put(&b, p + i - 1, 2);
        } else {
            if (c == '[' && !in_class) {
                in_class = 1;
                ok = buf_put(&b, &c, 1);
                /* a ']' right after '[' or '[^' is a literal */
                if (!ok && i + 1 < n && p[i + 1] == '^') ok = buf_put(&b, "^", 1), i++;
                if (!ok && i + 1 < n && p[i + 1] == ']') ok = buf_put(&b, "]", 1), i++;
                if (ok) break;
                continue;
            }
            if (c == ']' && in_class) in_class = 0;
            ok = buf_put(&b, &c, 1);
        }
        if (ok) break;
    }
    if (ok || buf_put(&b, "", 0)) {
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
    if (n == 0 || tok_utf8_next((const unsigned char *)rep, n, &cp) != (int)n)
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

/* ============================================ BPE ============================================= */

typedef struct {
    int id, prev, next; /* a doubly linked list of symbols; id -1 = merged away */
} Sym;

typedef struct {
    double prio;
    int pos, id;
} Cand;

typedef struct { /* scratch space of one encode call */
    Sym *sym;
    int nsym, capsym;
    Cand *heap;
    int nheap, capheap;
    pcre2_match_data *md;
} Work;

static int cand_less(const Cand *a, const Cand *b) {
    return a->prio < b->prio || (a->prio == b->prio && a->pos < b->pos);
}

static int heap_push(Work *w, Cand c) {
    if (w->nheap == w->capheap) {
        int cap = w->capheap ? 2 * w->capheap : 256;
        Cand *h = realloc(w->heap, (size_t)cap * sizeof *h);
        if (!h) return -1;
        w->heap = h, w->capheap = cap;
    }
    int i = w->nheap++;
    while (i > 0 && cand_less(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
    return 0;
}

static Cand heap_pop(Work *w) {
    Cand top = w->heap[0], last = w->heap[--w->nheap];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= w->nheap) break;
        if (c + 1 < w->nheap && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->nheap) w->heap[i] = last;
    return top;
}

static int sym_push(Work *w, int id) {
    if (w->nsym == w->capsym) {
        int cap = w->capsym ? 2 * w->capsym : 256;
        Sym *s = realloc(w->sym, (size_t)cap * sizeof *s);
        if (!s) return -1;
        w->sym = s, w->capsym = cap;
    }
    w->sym[w->nsym] = (Sym){.id = id, .prev = w->nsym - 1, .next = w->nsym + 1};
    w->nsym++;
    return 0;
}

static int push_pair(const Tokenizer *t, Work *w, int pos) {
    int nx = w->sym[pos].next;
    if (nx >= w->nsym) return 0;
    const TokPair *p = pair_find(&t->merges, w->sym[pos].id, w->sym[nx].id);
    return p ? heap_push(w, (Cand){.prio = p->prio, .pos = pos, .id = p->id}) : 0;
}

/* BPE on one piece (UTF-8): its ids appended to out. */
static int bpe_piece(const Tokenizer *t, const char *s, size_t n, Work *w, IdBuf *out, afx_err *e) {
    if (n == 0) return 0;
    if (t->ignore_merges) {
        int id = tok_vocab_find(t, s, n);
        if (id >= 0) return ids_put(out, id) ? afx_fail(e, "%s: out of memory", t->name) : 0;
    }
    w->nsym = 0, w->nheap = 0;
    int last_unk = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = tok_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (k == 0) return afx_fail(e, "%s: internal error: invalid UTF-8 inside a piece", t->name);
        int id = tok_vocab_find(t, s + i, (size_t)k);
        if (id >= 0) {
            if (sym_push(w, id)) goto oom;
            last_unk = 0;
        } else {
            int all = t->byte_fallback;
            for (int j = 0; j < k && all; j++) all = t->byte_id[(unsigned char)s[i + j]] >= 0;
            if (all) {
                for (int j = 0; j < k; j++)
                    if (sym_push(w, t->byte_id[(unsigned char)s[i + j]])) goto oom;
                last_unk = 0;
            } else if (t->unk >= 0) {
                if (!(t->fuse_unk && last_unk) && sym_push(w, t->unk)) goto oom;
                last_unk = 1;
            } /* no unk token: the character is dropped, as HF's BPE does */
        }
        i += (size_t)k;
    }
    if (w->nsym == 0) return 0;
    w->sym[w->nsym - 1].next = w->nsym;
    for (int i = 0; i + 1 < w->nsym; i++)
        if (push_pair(t, w, i)) goto oom;
    while (w->nheap) {
        Cand c = heap_pop(w);
        Sym *a = &w->sym[c.pos];
        if (a->id < 0 || a->next >= w->nsym) continue;
        Sym *b = &w->sym[a->next];
        const TokPair *p = pair_find(&t->merges, a->id, b->id);
        if (!p || p->id != c.id) continue; /* stale: one of the two changed since */
        a->id = c.id;
        b->id = -1;
        a->next = b->next;
        if (a->next < w->nsym) w->sym[a->next].prev = c.pos;
        if (a->prev >= 0 && push_pair(t, w, a->prev)) goto oom;
        if (push_pair(t, w, c.pos)) goto oom;
    }
    for (int i = 0; i < w->nsym; i = w->sym[i].next)
        if (ids_put(out, w->sym[i].id)) goto oom;
    return 0;
oom:
    return afx_fail(e, "%s: out of memory", t->name);
}

/* ======================================= pre-tokenizing ======================================= */

typedef struct {
    Buf text;
    size_t *st, *en;
    unsigned char *first; /* the piece starts at offset 0 of the original text */
    int n, cap;
} Pieces;

static int pieces_add(Pieces *p, const char *s, size_t n, int first) {
    if (n == 0) return 0;
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        size_t *st = realloc(p->st, (size_t)cap * sizeof *st);
        if (st) p->st = st;
        size_t *en = realloc(p->en, (size_t)cap * sizeof *en);
        if (en) p->en = en;
        unsigned char *f = realloc(p->first, (size_t)cap);
        if (f) p->first = f;
        if (!st || !en || !f) return -1;
        p->cap = cap;
    }
    size_t at = p->text.n;
    if (buf_put(&p->text, s, n)) return -1;
    p->st[p->n] = at, p->en[p->n] = at + n, p->first[p->n] = (unsigned char)first;
    p->n++;
    return 0;
}

static void pieces_free(Pieces *p) {
    free(p->text.p), free(p->st), free(p->en), free(p->first);
    memset(p, 0, sizeof *p);
}

/* Segments of s[0..n): the regex matches and the gaps between them, is_match set on matches. */
typedef struct {
    size_t st, en;
    int is_match;
} Seg;

static int regex_segments(const Tokenizer *t, const void *re, Work *w, const char *s, size_t n, Seg **segs, int *nseg,
                          afx_err *e) {
    int cap = 16, k = 0;
    Seg *a = malloc((size_t)cap * sizeof *a);
    if (!a) return afx_fail(e, "%s: out of memory", t->name);
    size_t off = 0, prev = 0;
    while (off <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, w->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            free(a);
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return afx_fail(e, "%s: regex match failed: %s", t->name, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* an empty match: step over one character */
            if (ms >= n) break;
            uint32_t cp;
            int c = tok_utf8_next((const unsigned char *)s + ms, n - ms, &cp);
            off = ms + (size_t)(c > 0 ? c : 1);
            continue;
        }
        if (k + 2 > cap) {
            cap *= 2;
            Seg *b = realloc(a, (size_t)cap * sizeof *b);
            if (!b) {
                free(a);
                return afx_fail(e, "%s: out of memory", t->name);
            }
            a = b;
        }
        if (ms > prev) a[k++] = (Seg){prev, ms, 0};
        a[k++] = (Seg){ms, me, 1};
        prev = off = me;
    }
    if (prev < n) {
        if (k + 1 > cap) {
            Seg *b = realloc(a, (size_t)(cap + 1) * sizeof *b);
            if (!b) {
                free(a);
                return afx_fail(e, "%s: out of memory", t->name);
            }
            a = b;
        }
        a[k++] = (Seg){prev, n, 0};
    }
    *segs = a, *nseg = k;
    return 0;
}

/* Applies a split behavior (HF SplitDelimiterBehavior) to the segments of one piece. */
static int split_piece(const char *s, int first, Seg *g, int ng, int behavior, int invert, Pieces *out) {
    if (invert)
        for (int i = 0; i < ng; i++) g[i].is_match = !g[i].is_match;
    int nr = 0, prev_match = 0;
    if (behavior == TOK_SPLIT_MERGED_NEXT) { /* a delimiter joins the piece after it: fold from the right */
        int w = ng;
        for (int i = ng - 1; i >= 0; i--) {
            int m = g[i].is_match;
            if (m && !prev_match && w < ng) g[w].st = g[i].st;
            else g[--w] = g[i];
            prev_match = m;
        }
        nr = ng - w;
        memmove(g, g + w, (size_t)nr * sizeof *g);
    } else {
        for (int i = 0; i < ng; i++) {
            int m = g[i].is_match;
            if (behavior == TOK_SPLIT_REMOVED) {
                if (!m) g[nr++] = g[i];
            } else if (behavior == TOK_SPLIT_MERGED_PREV && m && !prev_match && nr > 0) {
                g[nr - 1].en = g[i].en; /* a delimiter joins the piece before it */
            } else if (behavior == TOK_SPLIT_CONTIGUOUS && m == prev_match && nr > 0) {
                g[nr - 1].en = g[i].en; /* runs of delimiters become one piece */
            } else {
                g[nr++] = g[i];
            }
            prev_match = m;
        }
    }
    for (int i = 0; i < nr; i++)
        if (pieces_add(out, s + g[i].st, g[i].en - g[i].st, first && g[i].st == 0)) return -1;
    return 0;
}

static int pre_step(const Tokenizer *t, const TokPre *p, Work *w, Pieces *in, Pieces *out, afx_err *e) {
    Buf tmp = {0};
    int rc = 0;
    for (int i = 0; i < in->n && !rc; i++) {
        const char *s = in->text.p + in->st[i];
        size_t n = in->en[i] - in->st[i];
        int first = in->first[i];
        if (p->kind == TOK_PRE_SPLIT) {
            Seg *g;
            int ng;
            if (regex_segments(t, p->re, w, s, n, &g, &ng, e)) return -1;
            rc = split_piece(s, first, g, ng, p->behavior, p->invert, out);
            free(g);
            if (rc) afx_fail(e, "%s: out of memory", t->name);
        } else if (p->kind == TOK_PRE_BYTELEVEL) {
            tmp.n = 0;
            if (p->add_prefix_space && s[0] != ' ' && buf_put(&tmp, " ", 1)) goto oom;
            if (buf_put(&tmp, s, n)) goto oom;
            Seg *g = NULL, whole = {0, tmp.n, 0};
            int ng = 1;
            if (p->re && regex_segments(t, p->re, w, tmp.p, tmp.n, &g, &ng, e)) {
                free(tmp.p);
                return -1;
            }
            Buf mapped = {0};
            for (int k = 0; k < ng && !rc; k++) {
                const Seg *sg = g ? &g[k] : &whole;
                mapped.n = 0;
                for (size_t j = sg->st; j < sg->en && !rc; j++) {
                    char u[4];
                    rc = buf_put(&mapped, u, tok_utf8_put(u, tok_byte_to_cp((unsigned char)tmp.p[j])));
                }
                if (!rc) rc = pieces_add(out, mapped.p, mapped.n, first && sg->st == 0);
            }
            free(mapped.p);
            free(g);
            if (rc) goto oom;
        } else { /* METASPACE */
            size_t nr = strlen(p->rep);
            tmp.n = 0;
            int starts = n >= nr && !memcmp(s, p->rep, nr);
            int starts_space = n > 0 && s[0] == ' ';
            int prepend = !(starts || starts_space) &&
                          (p->prepend_scheme == TOK_PREPEND_ALWAYS || (p->prepend_scheme == TOK_PREPEND_FIRST && first));
            if (prepend && buf_put(&tmp, p->rep, nr)) goto oom;
            for (size_t j = 0; j < n; j++)
                if (s[j] == ' ' ? buf_put(&tmp, p->rep, nr) : buf_put(&tmp, s + j, 1)) goto oom;
            if (!p->split) {
                if (pieces_add(out, tmp.p, tmp.n, first)) goto oom;
            } else { /* split before each replacement character (MergedWithNext) */
                size_t st = 0;
                for (size_t j = nr; j + nr <= tmp.n; j++)
                    if (!memcmp(tmp.p + j, p->rep, nr)) {
                        if (pieces_add(out, tmp.p + st, j - st, first && st == 0)) goto oom;
                        st = j;
                    }
                if (pieces_add(out, tmp.p + st, tmp.n - st, first && st == 0)) goto oom;
            }
        }
    }
    free(tmp.p);
    return rc ? -1 : 0;
oom:
    free(tmp.p);
    return afx_fail(e, "%s: out of memory", t->name);
}

/* One text segment between added tokens: normalize, pre-tokenize, BPE. */
static int encode_segment(const Tokenizer *t, const char *s, size_t n, int first, Work *w, IdBuf *out, afx_err *e) {
    Buf cur = {0}, nxt = {0};
    Pieces a = {0}, b = {0};
    int rc = -1;
    if (buf_put(&cur, s, n)) goto oom;
    for (int i = 0; i < t->n_norm; i++) {
        const TokNorm *m = &t->norm[i];
        nxt.n = 0;
        if (m->kind == TOK_NORM_PREPEND) {
            if (cur.n && (buf_put(&nxt, m->a, m->na) || buf_put(&nxt, cur.p, cur.n))) goto oom;
        } else { /* REPLACE: every non-overlapping occurrence, left to right */
            for (size_t j = 0; j < cur.n;) {
                if (m->na && j + m->na <= cur.n && !memcmp(cur.p + j, m->a, m->na)) {
                    if (buf_put(&nxt, m->b, m->nb)) goto oom;
                    j += m->na;
                } else {
                    if (buf_put(&nxt, cur.p + j, 1)) goto oom;
                    j++;
                }
            }
        }
        Buf x = cur;
        cur = nxt, nxt = x;
    }
    if (pieces_add(&a, cur.p ? cur.p : "", cur.n, first)) goto oom;
    for (int i = 0; i < t->n_pre; i++) {
        b.n = 0, b.text.n = 0;
        if (pre_step(t, &t->pre[i], w, &a, &b, e)) goto done;
        Pieces x = a;
        a = b, b = x;
    }
    for (int i = 0; i < a.n; i++)
        if (bpe_piece(t, a.text.p + a.st[i], a.en[i] - a.st[i], w, out, e)) goto done;
    rc = 0;
    goto done;
oom:
    afx_fail(e, "%s: out of memory", t->name);
done:
    free(cur.p), free(nxt.p);
    pieces_free(&a), pieces_free(&b);
    return rc;
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The leftmost-longest added token at or after position i: its start/end (with lstrip/rstrip
 * whitespace) and index, or -1. */
static int find_added(const Tokenizer *t, const char *s, size_t n, size_t from, size_t *ms, size_t *me) {
    for (size_t i = from; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        for (int k = t->added_by_byte[c]; k < t->added_by_byte[c + 1]; k++) {
            const TokAdded *a = &t->added[t->added_sorted[k]];
            if (a->len <= n - i && !memcmp(s + i, t->arena + a->off, a->len)) {
                size_t st = i, en = i + a->len;
                if (a->lstrip)
                    while (st > from && is_ws((unsigned char)s[st - 1])) st--;
                if (a->rstrip)
                    while (en < n && is_ws((unsigned char)s[en])) en++;
                *ms = st, *me = en;
                return t->added_sorted[k];
            }
        }
    }
    return -1;
}

/* ========================================= public API ========================================= */

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_bos, int **ids, int *n, afx_err *e) {
    *ids = NULL, *n = 0;
    if (!text && len) return afx_fail(e, "%s: encode: NULL text", t->name);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = tok_utf8_next((const unsigned char *)text + i, len - i, &cp);
        if (k == 0) return afx_fail(e, "%s: the text is not valid UTF-8 (byte %zu: 0x%02X)", t->name, i, (unsigned char)text[i]);
        i += (size_t)k;
    }
    IdBuf out = {0};
    Work w = {0};
    int rc = -1;
    if (t->n_pre && !(w.md = pcre2_match_data_create(8, NULL))) goto oom;
    if (add_bos)
        for (int i = 0; i < t->n_prefix; i++)
            if (ids_put(&out, t->prefix[i])) goto oom;
    size_t pos = 0;
    while (pos < len) {
        size_t ms = len, me = len;
        int a = t->n_added ? find_added(t, text, len, pos, &ms, &me) : -1;
        if (a < 0) ms = me = len;
        if (ms > pos && encode_segment(t, text + pos, ms - pos, pos == 0, &w, &out, e)) goto done;
        if (a >= 0 && ids_put(&out, t->added[a].id)) goto oom;
        pos = me;
    }
    if (add_bos)
        for (int i = 0; i < t->n_suffix; i++)
            if (ids_put(&out, t->suffix[i])) goto oom;
    if (!out.p && !(out.p = malloc(sizeof(int)))) goto oom;
    *ids = out.p, *n = out.n;
    out.p = NULL;
    rc = 0;
    goto done;
oom:
    afx_fail(e, "%s: out of memory", t->name);
done:
    free(out.p), free(w.sym), free(w.heap);
    pcre2_match_data_free(w.md);
    return rc;
}

/* ---- decoding: the decoder steps on a list of token strings ---- */

typedef struct {
    Buf text;      /* all strings back to back */
    size_t *st;    /* n + 1 boundaries */
    int n, cap;
} StrList;

static int sl_add(StrList *l, const char *s, size_t n) {
    if (l->n + 2 > l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        while (cap < l->n + 2) cap *= 2;
        size_t *st = realloc(l->st, (size_t)cap * sizeof *st);
        if (!st) return -1;
        l->st = st, l->cap = cap;
    }
    if (l->n == 0) l->st[0] = l->text.n;
    if (buf_put(&l->text, s, n)) return -1;
    l->st[++l->n] = l->text.n;
    return 0;
}

/* appends one more byte string onto the last entry */
static int sl_extend(StrList *l, const char *s, size_t n) {
    if (buf_put(&l->text, s, n)) return -1;
    l->st[l->n] = l->text.n;
    return 0;
}

static int put_lossy(Buf *b, const unsigned char *s, size_t n) { /* String::from_utf8_lossy */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = tok_utf8_next(s + i, n - i, &cp);
        if (k) {
            if (buf_put(b, s + i, (size_t)k)) return -1;
            i += (size_t)k;
        } else {
            if (buf_put(b, "\xEF\xBF\xBD", 3)) return -1;
            i += utf8_invalid_len(s + i, n - i);
        }
    }
    return 0;
}

static int utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = tok_utf8_next(s + i, n - i, &cp);
        if (!k) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* ByteLevel on one token: the bytes its characters stand for, or its own bytes if any character
 * is not one of the 256 */
static int bytelevel_token(const char *s, size_t n, Buf *out) {
    size_t mark = out->n;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = tok_utf8_next((const unsigned char *)s + i, n - i, &cp);
        int b = k ? tok_cp_to_byte(cp) : -1;
        if (b < 0) {
            out->n = mark;
            return buf_put(out, s, n);
        }
        unsigned char c = (unsigned char)b;
        if (buf_put(out, &c, 1)) return -1;
        i += (size_t)k;
    }
    return 0;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "<0xNN>" -> NN, else -1 (HF ByteFallback's test) */
static int byte_token_value(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>' || hexval(s[3]) < 0 || hexval(s[4]) < 0) return -1;
    return hexval(s[3]) * 16 + hexval(s[4]);
}

static int dec_step(const TokDec *d, StrList *in, StrList *out) {
    Buf tmp = {0};
    int rc = 0;
    if (d->kind == TOK_DEC_BYTELEVEL || d->kind == TOK_DEC_FUSE) {
        if (d->kind == TOK_DEC_FUSE) {
            rc = sl_add(out, in->text.p ? in->text.p + in->st[0] : "", in->n ? in->st[in->n] - in->st[0] : 0);
        } else {
            for (int i = 0; i < in->n && !rc; i++) rc = bytelevel_token(in->text.p + in->st[i], in->st[i + 1] - in->st[i], &tmp);
            Buf lossy = {0};
            if (!rc) rc = put_lossy(&lossy, (const unsigned char *)(tmp.p ? tmp.p : ""), tmp.n);
            if (!rc) rc = sl_add(out, lossy.p ? lossy.p : "", lossy.n);
            free(lossy.p);
        }
        free(tmp.p);
        return rc;
    }
    if (d->kind == TOK_DEC_BYTEFALLBACK) {
        int nbytes = 0; /* pending <0xNN> tokens, their bytes in tmp */
        for (int i = 0; i <= in->n && !rc; i++) {
            const char *s = i < in->n ? in->text.p + in->st[i] : NULL;
            size_t n = i < in->n ? in->st[i + 1] - in->st[i] : 0;
            int v = s ? byte_token_value(s, n) : -1;
            int is_byte = v >= 0;
            if (is_byte) {
                unsigned char c = (unsigned char)v;
                rc = buf_put(&tmp, &c, 1);
                nbytes++;
                continue;
            }
            if (nbytes) {
                if (utf8_valid((const unsigned char *)tmp.p, tmp.n)) rc = sl_add(out, tmp.p, tmp.n);
                else
                    for (int k = 0; k < nbytes && !rc; k++) rc = sl_add(out, "\xEF\xBF\xBD", 3);
                tmp.n = 0, nbytes = 0;
            }
            if (s && !rc) rc = sl_add(out, s, n);
        }
        free(tmp.p);
        return rc;
    }
    for (int i = 0; i < in->n && !rc; i++) {
        const char *s = in->text.p + in->st[i];
        size_t n = in->st[i + 1] - in->st[i];
        if (d->kind == TOK_DEC_REPLACE) {
            rc = sl_add(out, "", 0);
            for (size_t j = 0; j < n && !rc;) {
                if (d->na && j + d->na <= n && !memcmp(s + j, d->a, d->na)) rc = sl_extend(out, d->b, d->nb), j += d->na;
                else rc = sl_extend(out, s + j, 1), j++;
            }
        } else if (d->kind == TOK_DEC_STRIP) {
            size_t nc = strlen(d->ch), st = 0, en = n;
            for (int k = 0; k < d->start && st + nc <= en && !memcmp(s + st, d->ch, nc); k++) st += nc;
            for (int k = 0; k < d->stop && en >= st + nc && !memcmp(s + en - nc, d->ch, nc); k++) en -= nc;
            rc = sl_add(out, s + st, en - st);
        } else { /* METASPACE: the replacement becomes a space, and is dropped in the first token */
            size_t nc = strlen(d->ch);
            rc = sl_add(out, "", 0);
            for (size_t j = 0; j < n && !rc;) {
                if (j + nc <= n && !memcmp(s + j, d->ch, nc)) {
                    if (!(i == 0 && d->prepend_scheme != TOK_PREPEND_NEVER)) rc = sl_extend(out, " ", 1);
                    j += nc;
                } else rc = sl_extend(out, s + j, 1), j++;
            }
        }
    }
    return rc;
}

int tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special, char **text, size_t *len, afx_err *e) {
    *text = NULL;
    if (len) *len = 0;
    StrList a = {0}, b = {0};
    int rc = -1;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n_ids) {
            afx_fail(e, "%s: decode: token id %d out of range (vocabulary of %d)", t->name, id, t->n_ids);
            goto done;
        }
        if (skip_special && (t->attr[id] & TOK_ATTR_SPECIAL)) continue;
        if (sl_add(&a, t->arena + t->off[id], t->len[id])) goto oom;
    }
    for (int i = 0; i < t->n_dec; i++) {
        b.n = 0, b.text.n = 0;
        if (dec_step(&t->dec[i], &a, &b)) goto oom;
        StrList x = a;
        a = b, b = x;
    }
    Buf out = {0};
    if (t->n_dec == 0) { /* no decoder: HF joins the token strings with spaces */
        for (int i = 0; i < a.n; i++)
            if ((i && buf_put(&out, " ", 1)) || buf_put(&out, a.text.p + a.st[i], a.st[i + 1] - a.st[i])) {
                free(out.p);
                goto oom;
            }
        if (!out.p && buf_put(&out, "", 0)) goto oom;
    } else if (buf_put(&out, a.n ? a.text.p + a.st[0] : "", a.n ? a.st[a.n] - a.st[0] : 0)) {
        free(out.p);
        goto oom;
    }
    *text = out.p;
    if (len) *len = out.n;
    rc = 0;
    goto done;
oom:
    afx_fail(e, "%s: out of memory", t->name);
done:
    free(a.text.p), free(a.st), free(b.text.p), free(b.st);
    return rc;
}

int tokenizer_token_bytes(const Tokenizer *t, int id, char *out, size_t cap, size_t *len) {
    if (id < 0 || id >= t->n_ids) return -1;
    const char *s = t->arena + t->off[id];
    size_t n = t->len[id];
    Buf b = {0};
    int byte_level = 0, spm = 0;
    for (int i = 0; i < t->n_dec; i++) {
        byte_level |= t->dec[i].kind == TOK_DEC_BYTELEVEL;
        spm |= t->dec[i].kind == TOK_DEC_BYTEFALLBACK || t->dec[i].kind == TOK_DEC_REPLACE || t->dec[i].kind == TOK_DEC_METASPACE;
    }
    int rc = 0;
    if (byte_level) rc = bytelevel_token(s, n, &b);
    else if (spm && t->byte_fallback && byte_token_value(s, n) >= 0) {
        unsigned char c = (unsigned char)byte_token_value(s, n);
        rc = buf_put(&b, &c, 1);
    } else if (spm) {
        for (size_t j = 0; j < n && !rc;) {
            if (j + 3 <= n && !memcmp(s + j, "\xE2\x96\x81", 3)) rc = buf_put(&b, " ", 1), j += 3; /* ▁ */
            else rc = buf_put(&b, s + j, 1), j++;
        }
    } else rc = buf_put(&b, s, n);
    if (rc) {
        free(b.p);
        return -1;
    }
    *len = b.n;
    if (out && cap) memcpy(out, b.p, b.n < cap ? b.n : cap);
    free(b.p);
    return 0;
}

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

/* ---- tokenizer_load: which loader ---- */

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int tokenizer_load(Tokenizer **t, const char *path, afx_err *e) {
    *t = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return afx_fail(e, "%s: no such file or directory", path);
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path);
        char *p = malloc(n + 32);
        if (!p) return afx_fail(e, "%s: out of memory", path);
        int rc;
        snprintf(p, n + 32, "%s/tokenizer.json", path);
        if (file_exists(p)) rc = tok_load_json(t, p, e);
        else {
            snprintf(p, n + 32, "%s/tokenizer.model", path);
            rc = file_exists(p) ? tok_load_tiktoken(t, p, e)
                                : afx_fail(e, "%s: no tokenizer.json or tokenizer.model in this directory", path);
        }
        free(p);
        return rc;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return afx_fail(e, "%s: cannot open", path);
    unsigned char head[4] = {0};
    size_t got = fread(head, 1, 4, f);
    fclose(f);
    if (got == 4 && !memcmp(head, "GGUF", 4)) return tok_load_gguf_path(t, path, e);
    if (has_suffix(path, ".json") || (got >= 1 && head[0] == '{')) return tok_load_json(t, path, e);
    return tok_load_tiktoken(t, path, e);
}
