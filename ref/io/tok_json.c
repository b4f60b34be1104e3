/* tok_json.c — a Tokenizer from a Hugging Face tokenizer.json (cJSON).
 *
 * What this reads: model BPE (vocab, merges as "a b" strings or ["a", "b"] pairs, unk_token,
 * byte_fallback, fuse_unk, ignore_merges), added_tokens (id, content, special, lstrip, rstrip),
 * normalizer (Sequence, Prepend, Replace with a String pattern), pre_tokenizer (Sequence, Split with
 * a Regex or String pattern and any behavior, ByteLevel, Metaspace), post_processor (Sequence,
 * ByteLevel, TemplateProcessing's "single" template), decoder (Sequence, ByteLevel, Replace,
 * ByteFallback, Fuse, Strip, Metaspace). A tokenizer_config.json beside the file gives bos_token /
 * eos_token, and, for the Llama tokenizer classes, add_bos_token / add_eos_token (what transformers'
 * LlamaTokenizerFast rebuilds its template from).
 * What this is not: anything else in that format (WordPiece/Unigram models, Unicode normalization
 * forms, single_word added tokens, BPE dropout): each is refused with its name.
 */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "tok_internal.h"
#include "json_read.h"
#include "tok_loaders.h"

typedef struct {
    Tokenizer *t;
    const char *path;
    afx_err *e;
} Ctx;

#define JSON_MAX_BYTES ((size_t)1 << 31) /* 2 GiB: no tokenizer file is that large */

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* optional bool member: absent or null -> def; another type -> error */
static int get_bool(Ctx *c, const cJSON *o, const char *key, int def, int *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) *out = def;
    else if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v);
    else return afx_fail(c->e, "%s: %s.%s must be true or false", c->path, where, key);
    return 0;
}

static int get_int(Ctx *c, const cJSON *v, int *out, const char *what) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > INT_MAX)
        return afx_fail(c->e, "%s: %s must be a non-negative integer", c->path, what);
    *out = (int)v->valuedouble;
    return 0;
}

static const char *get_str(Ctx *c, const cJSON *o, const char *key, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) {
        afx_fail(c->e, "%s: %s.%s must be a string", c->path, where, key);
        return NULL;
    }
    return v->valuestring;
}

/* a {"String": s} pattern (or, with regex_ok, {"Regex": r}) */
static const char *get_pattern(Ctx *c, const cJSON *o, int regex_ok, int *is_regex, const char *where) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "String"), *r = cJSON_GetObjectItemCaseSensitive(p, "Regex");
    if (cJSON_IsString(s)) {
        *is_regex = 0;
        return s->valuestring;
    }
    if (cJSON_IsString(r) && regex_ok) {
        *is_regex = 1;
        return r->valuestring;
    }
    afx_fail(c->e, "%s: %s.pattern must be {\"String\": ...}%s", c->path, where, regex_ok ? " or {\"Regex\": ...}" : "");
    return NULL;
}

static int prepend_scheme(Ctx *c, const cJSON *o, const char *where, int *out) {
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(o, "prepend_scheme");
    if (cJSON_IsString(ps)) {
        if (!strcmp(ps->valuestring, "always")) *out = TOK_PREPEND_ALWAYS;
        else if (!strcmp(ps->valuestring, "first")) *out = TOK_PREPEND_FIRST;
        else if (!strcmp(ps->valuestring, "never")) *out = TOK_PREPEND_NEVER;
        else return afx_fail(c->e, "%s: %s.prepend_scheme '%s' is not always/first/never", c->path, where, ps->valuestring);
        return 0;
    }
    int aps; /* files before prepend_scheme: add_prefix_space */
    if (get_bool(c, o, "add_prefix_space", 1, &aps, where)) return -1;
    *out = aps ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
    return 0;
}

/* ---- the pipeline parts ---- */

static int parse_normalizer(Ctx *c, const cJSON *o) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *ty = type_of(o);
    if (!ty) return afx_fail(c->e, "%s: normalizer without a type", c->path);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "normalizers"), *x;
        if (!cJSON_IsArray(a)) return afx_fail(c->e, "%s: normalizer Sequence without a normalizers list", c->path);
        cJSON_ArrayForEach(x, a) if (parse_normalizer(c, x)) return -1;
        return 0;
    }
    if (!strcmp(ty, "Prepend")) {
        const char *s = get_str(c, o, "prepend", "normalizer Prepend");
        return s ? tok_push_norm(c->t, TOK_NORM_PREPEND, s, strlen(s), "", 0, c->e) : -1;
    }
    if (!strcmp(ty, "Replace")) {
        int is_regex;
        const char *p = get_pattern(c, o, 0, &is_regex, "normalizer Replace");
        const char *s = p ? get_str(c, o, "content", "normalizer Replace") : NULL;
        return s ? tok_push_norm(c->t, TOK_NORM_REPLACE, p, strlen(p), s, strlen(s), c->e) : -1;
    }
    return afx_fail(c->e, "%s: unsupported normalizer '%s'", c->path, ty);
}

static int parse_pre(Ctx *c, const cJSON *o) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *ty = type_of(o);
    if (!ty) return afx_fail(c->e, "%s: pre_tokenizer without a type", c->path);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers"), *x;
        if (!cJSON_IsArray(a)) return afx_fail(c->e, "%s: pre_tokenizer Sequence without a pretokenizers list", c->path);
        cJSON_ArrayForEach(x, a) if (parse_pre(c, x)) return -1;
        return 0;
    }
    if (!strcmp(ty, "Split")) {
        int is_regex, invert;
        const char *p = get_pattern(c, o, 1, &is_regex, "pre_tokenizer Split");
        const char *b = p ? get_str(c, o, "behavior", "pre_tokenizer Split") : NULL;
        if (!b || get_bool(c, o, "invert", 0, &invert, "pre_tokenizer Split")) return -1;
        static const char *const names[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
        static const int kinds[] = {TOK_SPLIT_ISOLATED, TOK_SPLIT_REMOVED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT,
                                    TOK_SPLIT_CONTIGUOUS};
        for (int i = 0; i < 5; i++)
            if (!strcmp(b, names[i])) return tok_push_split(c->t, p, strlen(p), is_regex, kinds[i], invert, c->e);
        return afx_fail(c->e, "%s: unknown Split behavior '%s'", c->path, b);
    }
    if (!strcmp(ty, "ByteLevel")) {
        int aps, use_regex;
        if (get_bool(c, o, "add_prefix_space", 1, &aps, "pre_tokenizer ByteLevel") ||
            get_bool(c, o, "use_regex", 1, &use_regex, "pre_tokenizer ByteLevel"))
            return -1;
        return tok_push_bytelevel(c->t, aps, use_regex, c->e);
    }
    if (!strcmp(ty, "Metaspace")) {
        int scheme, split;
        const char *rep = get_str(c, o, "replacement", "pre_tokenizer Metaspace");
        if (!rep || prepend_scheme(c, o, "pre_tokenizer Metaspace", &scheme) ||
            get_bool(c, o, "split", 1, &split, "pre_tokenizer Metaspace"))
            return -1;
        return tok_push_metaspace(c->t, rep, scheme, split, c->e);
    }
    return afx_fail(c->e, "%s: unsupported pre_tokenizer '%s'", c->path, ty);
}

static int parse_decoder(Ctx *c, const cJSON *o) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *ty = type_of(o);
    if (!ty) return afx_fail(c->e, "%s: decoder without a type", c->path);
    TokDec d = {.a = "", .b = ""};
    if (!strcmp(ty, "Sequence")) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "decoders"), *x;
        if (!cJSON_IsArray(a)) return afx_fail(c->e, "%s: decoder Sequence without a decoders list", c->path);
        cJSON_ArrayForEach(x, a) if (parse_decoder(c, x)) return -1;
        return 0;
    } else if (!strcmp(ty, "ByteLevel")) d.kind = TOK_DEC_BYTELEVEL;
    else if (!strcmp(ty, "ByteFallback")) d.kind = TOK_DEC_BYTEFALLBACK;
    else if (!strcmp(ty, "Fuse")) d.kind = TOK_DEC_FUSE;
    else if (!strcmp(ty, "Replace")) {
        int is_regex;
        const char *p = get_pattern(c, o, 0, &is_regex, "decoder Replace");
        const char *s = p ? get_str(c, o, "content", "decoder Replace") : NULL;
        if (!s) return -1;
        d.kind = TOK_DEC_REPLACE, d.a = (char *)p, d.na = strlen(p), d.b = (char *)s, d.nb = strlen(s);
    } else if (!strcmp(ty, "Strip") || !strcmp(ty, "Metaspace")) {
        int strip = ty[0] == 'S';
        const char *ch = get_str(c, o, strip ? "content" : "replacement", strip ? "decoder Strip" : "decoder Metaspace");
        if (!ch) return -1;
        if (strlen(ch) == 0 || strlen(ch) >= sizeof d.ch)
            return afx_fail(c->e, "%s: decoder %s: '%s' must be one character", c->path, ty, ch);
        memcpy(d.ch, ch, strlen(ch) + 1);
        if (strip) {
            d.kind = TOK_DEC_STRIP;
            if (get_int(c, cJSON_GetObjectItemCaseSensitive(o, "start"), &d.start, "decoder Strip start") ||
                get_int(c, cJSON_GetObjectItemCaseSensitive(o, "stop"), &d.stop, "decoder Strip stop"))
                return -1;
        } else {
            d.kind = TOK_DEC_METASPACE;
            if (prepend_scheme(c, o, "decoder Metaspace", &d.prepend_scheme)) return -1;
        }
    } else return afx_fail(c->e, "%s: unsupported decoder '%s'", c->path, ty);
    return tok_push_dec(c->t, &d, c->e);
}

/* TemplateProcessing "single": special-token ids before and after $A */
static int parse_post(Ctx *c, const cJSON *o, int **pre, int *npre, int **suf, int *nsuf) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *ty = type_of(o);
    if (!ty) return afx_fail(c->e, "%s: post_processor without a type", c->path);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "processors"), *x;
        if (!cJSON_IsArray(a)) return afx_fail(c->e, "%s: post_processor Sequence without a processors list", c->path);
        cJSON_ArrayForEach(x, a) if (parse_post(c, x, pre, npre, suf, nsuf)) return -1;
        return 0;
    }
    if (!strcmp(ty, "ByteLevel")) return 0; /* offsets only */
    if (strcmp(ty, "TemplateProcessing")) return afx_fail(c->e, "%s: unsupported post_processor '%s'", c->path, ty);
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(o, "single"), *specials = cJSON_GetObjectItemCaseSensitive(o, "special_tokens");
    if (!cJSON_IsArray(single)) return afx_fail(c->e, "%s: TemplateProcessing without a single template", c->path);
    int after = 0, seen_a = 0;
    *npre = *nsuf = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, single) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(x, "SpecialToken"), *sq = cJSON_GetObjectItemCaseSensitive(x, "Sequence");
        if (sq) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(sq, "id");
            if (!cJSON_IsString(id) || strcmp(id->valuestring, "A") || seen_a)
                return afx_fail(c->e, "%s: TemplateProcessing single must hold the sequence $A once", c->path);
            seen_a = after = 1;
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
        if (!cJSON_IsString(name)) return afx_fail(c->e, "%s: TemplateProcessing: bad template item", c->path);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(specials, name->valuestring), "ids"), *v;
        if (!cJSON_IsArray(ids))
            return afx_fail(c->e, "%s: TemplateProcessing: special token '%s' has no ids", c->path, name->valuestring);
        cJSON_ArrayForEach(v, ids) {
            int id;
            if (get_int(c, v, &id, "TemplateProcessing special token id")) return -1;
            int **dst = after ? suf : pre, *cnt = after ? nsuf : npre;
            int *p = realloc(*dst, (size_t)(*cnt + 1) * sizeof *p);
            if (!p) return afx_fail(c->e, "%s: out of memory", c->path);
            *dst = p;
            p[(*cnt)++] = id;
        }
    }
    if (!seen_a) return afx_fail(c->e, "%s: TemplateProcessing single must hold the sequence $A once", c->path);
    return 0;
}

static int parse_model(Ctx *c, const cJSON *m) {
    if (!cJSON_IsObject(m)) return afx_fail(c->e, "%s: no model object", c->path);
    const char *ty = type_of(m);
    if (ty && strcmp(ty, "BPE")) return afx_fail(c->e, "%s: unsupported model type '%s' (only BPE)", c->path, ty);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab"), *merges = cJSON_GetObjectItemCaseSensitive(m, "merges"), *x;
    if (!cJSON_IsObject(vocab)) return afx_fail(c->e, "%s: model.vocab must be an object", c->path);
    if (!cJSON_IsArray(merges)) return afx_fail(c->e, "%s: model.merges must be a list", c->path);
    cJSON_ArrayForEach(x, vocab) {
        int id;
        char what[96];
        snprintf(what, sizeof what, "model.vocab['%.40s']", x->string);
        if (get_int(c, x, &id, what) || tok_add_vocab(c->t, id, x->string, strlen(x->string), c->e)) return -1;
    }
    long rank = 0;
    cJSON_ArrayForEach(x, merges) {
        const char *a, *b;
        size_t na, nb;
        if (cJSON_IsString(x)) {
            const char *sp = strchr(x->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' ')) return afx_fail(c->e, "%s: merge %ld '%.80s' is not 'left right'", c->path, rank, x->valuestring);
            a = x->valuestring, na = (size_t)(sp - a), b = sp + 1, nb = strlen(b);
        } else if (cJSON_IsArray(x) && cJSON_GetArraySize(x) == 2 && cJSON_IsString(cJSON_GetArrayItem(x, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(x, 1))) {
            a = cJSON_GetArrayItem(x, 0)->valuestring, b = cJSON_GetArrayItem(x, 1)->valuestring;
            na = strlen(a), nb = strlen(b);
        } else return afx_fail(c->e, "%s: merge %ld is neither 'left right' nor [left, right]", c->path, rank);
        char *ab = malloc(na + nb + 1);
        if (!ab) return afx_fail(c->e, "%s: out of memory", c->path);
        memcpy(ab, a, na), memcpy(ab + na, b, nb);
        int l = tok_vocab_find(c->t, a, na), r = tok_vocab_find(c->t, b, nb), lr = tok_vocab_find(c->t, ab, na + nb);
        free(ab);
        if (l < 0 || r < 0 || lr < 0)
            return afx_fail(c->e, "%s: merge %ld ('%.*s' '%.*s'): %s is not in the vocabulary", c->path, rank, (int)(na > 40 ? 40 : na), a,
                            (int)(nb > 40 ? 40 : nb), b, l < 0 ? "the left part" : r < 0 ? "the right part" : "their concatenation");
        if (tok_add_merge(c->t, l, r, lr, (double)rank, c->e)) return -1;
        rank++;
    }
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(m, "unk_token");
    if (cJSON_IsString(unk)) {
        c->t->unk = tok_vocab_find(c->t, unk->valuestring, strlen(unk->valuestring));
        if (c->t->unk < 0) return afx_fail(c->e, "%s: unk_token '%.40s' is not in the vocabulary", c->path, unk->valuestring);
    } else if (unk && !cJSON_IsNull(unk)) return afx_fail(c->e, "%s: model.unk_token must be a string or null", c->path);
    if (get_bool(c, m, "byte_fallback", 0, &c->t->byte_fallback, "model") || get_bool(c, m, "fuse_unk", 0, &c->t->fuse_unk, "model") ||
        get_bool(c, m, "ignore_merges", 0, &c->t->ignore_merges, "model"))
        return -1;
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(m, "dropout");
    if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0))
        return afx_fail(c->e, "%s: BPE dropout is not supported (it is random)", c->path);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, affixes[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return afx_fail(c->e, "%s: model.%s is not supported", c->path, affixes[i]);
    }
    return 0;
}

static int parse_added(Ctx *c, const cJSON *a) {
    if (!a || cJSON_IsNull(a)) return 0;
    if (!cJSON_IsArray(a)) return afx_fail(c->e, "%s: added_tokens must be a list", c->path);
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        int id, special, lstrip, rstrip, single;
        const char *s = get_str(c, x, "content", "added_tokens[]");
        if (!s || get_int(c, cJSON_GetObjectItemCaseSensitive(x, "id"), &id, "added_tokens[].id") ||
            get_bool(c, x, "special", 0, &special, "added_tokens[]") || get_bool(c, x, "lstrip", 0, &lstrip, "added_tokens[]") ||
            get_bool(c, x, "rstrip", 0, &rstrip, "added_tokens[]") || get_bool(c, x, "single_word", 0, &single, "added_tokens[]"))
            return -1;
        if (single) return afx_fail(c->e, "%s: added token '%.40s': single_word is not supported", c->path, s);
        if (tok_add_added(c->t, id, s, strlen(s), special, lstrip, rstrip, c->e)) return -1;
    }
    return 0;
}

/* bos/eos (and, for the Llama classes, add_bos_token/add_eos_token) from tokenizer_config.json */
static int token_named(const Tokenizer *t, const cJSON *v) {
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? tokenizer_token_id(t, v->valuestring) : -1;
}

/* tokenizer_config.json (buf[0..len), labelled cfg): bos/eos, and Llama's add_bos/add_eos template */
static int apply_config(Ctx *c, const char *buf, size_t len, const char *cfg, int **pre, int *npre, int **suf, int *nsuf) {
    cJSON *root = NULL;
    int rc = -1;
    if (afx_json_refuse_nul_escape(buf, len, cfg, c->e)) goto done;
    root = cJSON_ParseWithLength(buf, len);
    afx_json_last_wins(root);
    if (!cJSON_IsObject(root)) {
        afx_fail(c->e, "%s: not a JSON object", cfg);
        goto done;
    }
    Tokenizer *t = c->t;
    int bos = token_named(t, cJSON_GetObjectItemCaseSensitive(root, "bos_token"));
    int eos = token_named(t, cJSON_GetObjectItemCaseSensitive(root, "eos_token"));
    if (bos >= 0) t->bos = bos;
    if (eos >= 0) t->eos = eos;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(root, "tokenizer_class");
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(root, "add_bos_token"), *ae = cJSON_GetObjectItemCaseSensitive(root, "add_eos_token");
    rc = 0;
    if (cJSON_IsString(cls) && strstr(cls->valuestring, "Llama") && (cJSON_IsBool(ab) || cJSON_IsBool(ae))) {
        int *p = realloc(*pre, sizeof **pre), *q = p ? realloc(*suf, sizeof **suf) : NULL;
        if (p) *pre = p;
        if (q) *suf = q;
        if (!p || !q) rc = afx_fail(c->e, "%s: out of memory", c->path);
        *npre = *nsuf = 0;
        if (!rc && cJSON_IsTrue(ab) && t->bos >= 0) (*pre)[(*npre)++] = t->bos;
        if (!rc && cJSON_IsTrue(ae) && t->eos >= 0) (*suf)[(*nsuf)++] = t->eos;
    }
done:
    cJSON_Delete(root);
    return rc;
}

/* a tokenizer.json file, and the tokenizer_config.json beside it when there is one */
int tok_load_json(Tokenizer **out, const char *path, afx_err *e) {
    *out = NULL;
    const char *slash = strrchr(path, '/');
    size_t dn = slash ? (size_t)(slash - path) + 1 : 0;
    char *cfg = malloc(dn + 32), *buf = NULL, *cbuf = NULL;
    size_t len = 0, clen = 0;
    int rc = -1;
    if (!cfg) return afx_fail(e, "%s: out of memory", path);
    memcpy(cfg, path, dn);
    strcpy(cfg + dn, "tokenizer_config.json");
    if (!afx_read_file(path, JSON_MAX_BYTES, &buf, &len, e) &&
        (!afx_is_file(cfg) || !afx_read_file(cfg, JSON_MAX_BYTES, &cbuf, &clen, e)))
        rc = tok_from_json(out, buf, len, path, cbuf, clen, cfg, e);
    free(buf), free(cbuf), free(cfg);
    return rc;
}

int tokenizer_from_json(Tokenizer **t, const char *json, size_t len, const char *cfg, size_t cfg_len, const char *label,
                        afx_err *e) {
    return tok_from_json(t, json, len, label, cfg, cfg_len, "tokenizer_config.json", e);
}

int tok_from_json(Tokenizer **out, const char *buf, size_t len, const char *path, const char *cbuf, size_t clen,
                  const char *cfg, afx_err *e) {
    *out = NULL;
    const char *end = NULL;
    if (afx_json_refuse_nul_escape(buf, len, path, e)) return -1;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t at = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        return afx_fail(e, "%s: not valid JSON (near byte %zu)", path, at);
    }
    afx_json_last_wins(root); // a repeated key: the last value, as the tokenizers library (serde) and Python read it
    Ctx c = {.path = path, .e = e};
    int *pre = NULL, *suf = NULL, npre = 0, nsuf = 0, rc = -1;
    if (!cJSON_IsObject(root)) {
        afx_fail(e, "%s: not a tokenizer.json (the top level is not an object)", path);
        goto done;
    }
    if (!(c.t = tok_new(path, e))) goto done;
    { /* ids must be below the number of entries the file holds (vocabulary + added tokens) */
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"), "vocab");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
        tok_limit_ids(c.t, (long long)(cJSON_IsObject(v) ? cJSON_GetArraySize(v) : 0) +
                               (cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0));
    }
    if (parse_model(&c, cJSON_GetObjectItemCaseSensitive(root, "model")) ||
        parse_added(&c, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) ||
        parse_normalizer(&c, cJSON_GetObjectItemCaseSensitive(root, "normalizer")) ||
        parse_pre(&c, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer")) ||
        parse_decoder(&c, cJSON_GetObjectItemCaseSensitive(root, "decoder")) ||
        parse_post(&c, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), &pre, &npre, &suf, &nsuf))
        goto done;
    /* bos/eos: the template's first token, else well-known names; tokenizer_config.json overrides */
    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", NULL};
    static const char *const eos_names[] = {"<|end_of_text|>", "</s>", "<|endoftext|>", NULL};
    c.t->bos = npre ? pre[0] : -1;
    for (int i = 0; bos_names[i] && c.t->bos < 0; i++) c.t->bos = tokenizer_token_id(c.t, bos_names[i]);
    for (int i = 0; eos_names[i] && c.t->eos < 0; i++) c.t->eos = tokenizer_token_id(c.t, eos_names[i]);
    if ((cbuf && apply_config(&c, cbuf, clen, cfg, &pre, &npre, &suf, &nsuf)) || tok_set_template(c.t, pre, npre, suf, nsuf, e) || tok_finish(c.t, e)) goto done;
    *out = c.t, c.t = NULL;
    rc = 0;
done:
    tokenizer_free(c.t);
    free(pre), free(suf);
    cJSON_Delete(root);
    return rc;
}
