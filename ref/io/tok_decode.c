/* tok_decode.c — tokenizer_decode and tokenizer_token_bytes: ids -> text as the Hugging Face
 * tokenizers' decoder chain does it (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace over
 * the list of token strings).
 *
 * What this is: each decoder step as a pass from one string list to the next; bytes that are not
 * UTF-8 become U+FFFD by Rust's from_utf8_lossy rule (utf8.h). No globals.
 * What this is not: transformers' clean_up_tokenization_spaces, or an encoder.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tok_internal.h"
#include "utf8.h"

typedef struct {
    afx_buf text; /* all strings back to back */
    size_t *st;   /* n + 1 boundaries */
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
    if (afx_buf_put(&l->text, s, n)) return -1;
    l->st[++l->n] = l->text.n;
    return 0;
}

/* appends one more byte string onto the last entry */
static int sl_extend(StrList *l, const char *s, size_t n) {
    if (afx_buf_put(&l->text, s, n)) return -1;
    l->st[l->n] = l->text.n;
    return 0;
}

static int put_lossy(afx_buf *b, const char *s, size_t n) { /* String::from_utf8_lossy */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = utf8_next(s + i, n - i, &cp);
        if (k) {
            if (afx_buf_put(b, s + i, (size_t)k)) return -1;
            i += (size_t)k;
        } else {
            if (afx_buf_put(b, "\xEF\xBF\xBD", 3)) return -1;
            i += utf8_invalid_len(s + i, n - i);
        }
    }
    return 0;
}

/* ByteLevel on one token: the bytes its characters stand for, or its own bytes if any character
 * is not one of the 256 */
static int bytelevel_token(const char *s, size_t n, afx_buf *out) {
    size_t mark = out->n;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = utf8_next(s + i, n - i, &cp);
        int b = k ? tok_cp_to_byte(cp) : -1;
        if (b < 0) {
            out->n = mark;
            return afx_buf_put(out, s, n);
        }
        unsigned char c = (unsigned char)b;
        if (afx_buf_put(out, &c, 1)) return -1;
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
    afx_buf tmp = {0};
    int rc = 0;
    if (d->kind == TOK_DEC_BYTELEVEL || d->kind == TOK_DEC_FUSE) {
        if (d->kind == TOK_DEC_FUSE) {
            rc = sl_add(out, in->text.p ? in->text.p + in->st[0] : "", in->n ? in->st[in->n] - in->st[0] : 0);
        } else {
            for (int i = 0; i < in->n && !rc; i++) rc = bytelevel_token(in->text.p + in->st[i], in->st[i + 1] - in->st[i], &tmp);
            afx_buf lossy = {0};
            if (!rc) rc = put_lossy(&lossy, tmp.p ? tmp.p : "", tmp.n);
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
                rc = afx_buf_put(&tmp, &c, 1);
                nbytes++;
                continue;
            }
            if (nbytes) {
                if (utf8_valid(tmp.p, tmp.n)) rc = sl_add(out, tmp.p, tmp.n);
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
    afx_buf out = {0};
    if (t->n_dec == 0) { /* no decoder: HF joins the token strings with spaces */
        for (int i = 0; i < a.n; i++)
            if ((i && afx_buf_put(&out, " ", 1)) || afx_buf_put(&out, a.text.p + a.st[i], a.st[i + 1] - a.st[i])) {
                free(out.p);
                goto oom;
            }
        if (!out.p && afx_buf_put(&out, "", 0)) goto oom;
    } else if (afx_buf_put(&out, a.n ? a.text.p + a.st[0] : "", a.n ? a.st[a.n] - a.st[0] : 0)) {
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
    afx_buf b = {0};
    int byte_level = 0, spm = 0;
    for (int i = 0; i < t->n_dec; i++) {
        byte_level |= t->dec[i].kind == TOK_DEC_BYTELEVEL;
        spm |= t->dec[i].kind == TOK_DEC_BYTEFALLBACK || t->dec[i].kind == TOK_DEC_REPLACE || t->dec[i].kind == TOK_DEC_METASPACE;
    }
    int rc = 0;
    if (byte_level) rc = bytelevel_token(s, n, &b);
    else if (spm && t->byte_fallback && byte_token_value(s, n) >= 0) {
        unsigned char c = (unsigned char)byte_token_value(s, n);
        rc = afx_buf_put(&b, &c, 1);
    } else if (spm) {
        for (size_t j = 0; j < n && !rc;) {
            if (j + 3 <= n && !memcmp(s + j, "\xE2\x96\x81", 3)) rc = afx_buf_put(&b, " ", 1), j += 3; /* ▁ */
            else rc = afx_buf_put(&b, s + j, 1), j++;
        }
    } else rc = afx_buf_put(&b, s, n);
    if (rc) {
        free(b.p);
        return -1;
    }
    *len = b.n;
    if (out && cap && b.n) memcpy(out, b.p, b.n < cap ? b.n : cap);
    free(b.p);
    return 0;
}
