/* tok_encode.c — tokenizer_encode: text -> ids as the Hugging Face tokenizers do it (the pipeline
 * of tok_internal.h).
 *
 * What this is: a straight reading of the HF `tokenizers` semantics for BPE models — added tokens
 * split out first (leftmost-longest), normalizer, pre-tokenizer (regexes through PCRE2 with UTF and
 * Unicode properties), BPE with a min-heap of candidate merges (lowest priority, then leftmost), and
 * the template of the post-processor. All scratch space belongs to one call; no globals.
 * What this is not: a general tokenizers port (no WordPiece/Unigram, no offsets, no truncation or
 * padding, no Unicode normalization forms).
 */
#define _POSIX_C_SOURCE 200809L
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tok_internal.h"
#include "utf8.h"

/* ========================================= id buffer ========================================== */

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
    const TokPair *p = tok_pair_find(&t->merges, w->sym[pos].id, w->sym[nx].id);
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
        int k = utf8_next(s + i, n - i, &cp);
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
        const TokPair *p = tok_pair_find(&t->merges, a->id, b->id);
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
    afx_buf text;
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
    if (afx_buf_put(&p->text, s, n)) return -1;
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
            int c = utf8_next(s + ms, n - ms, &cp);
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
    afx_buf tmp = {0};
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
            if (p->add_prefix_space && s[0] != ' ' && afx_buf_put(&tmp, " ", 1)) goto oom;
            if (afx_buf_put(&tmp, s, n)) goto oom;
            Seg *g = NULL, whole = {0, tmp.n, 0};
            int ng = 1;
            if (p->re && regex_segments(t, p->re, w, tmp.p, tmp.n, &g, &ng, e)) {
                free(tmp.p);
                return -1;
            }
            afx_buf mapped = {0};
            for (int k = 0; k < ng && !rc; k++) {
                const Seg *sg = g ? &g[k] : &whole;
                mapped.n = 0;
                for (size_t j = sg->st; j < sg->en && !rc; j++) {
                    char u[4];
                    rc = afx_buf_put(&mapped, u, utf8_put(u, tok_byte_to_cp((unsigned char)tmp.p[j])));
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
            if (prepend && afx_buf_put(&tmp, p->rep, nr)) goto oom;
            for (size_t j = 0; j < n; j++)
                if (s[j] == ' ' ? afx_buf_put(&tmp, p->rep, nr) : afx_buf_put(&tmp, s + j, 1)) goto oom;
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
    afx_buf cur = {0}, nxt = {0};
    Pieces a = {0}, b = {0};
    int rc = -1;
    if (afx_buf_put(&cur, s, n)) goto oom;
    for (int i = 0; i < t->n_norm; i++) {
        const TokNorm *m = &t->norm[i];
        nxt.n = 0;
        if (m->kind == TOK_NORM_PREPEND) {
            if (cur.n && (afx_buf_put(&nxt, m->a, m->na) || afx_buf_put(&nxt, cur.p, cur.n))) goto oom;
        } else { /* REPLACE: every non-overlapping occurrence, left to right */
            for (size_t j = 0; j < cur.n;) {
                if (m->na && j + m->na <= cur.n && !memcmp(cur.p + j, m->a, m->na)) {
                    if (afx_buf_put(&nxt, m->b, m->nb)) goto oom;
                    j += m->na;
                } else {
                    if (afx_buf_put(&nxt, cur.p + j, 1)) goto oom;
                    j++;
                }
            }
        }
        afx_buf x = cur;
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

/* ========================================== encode ============================================ */

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_bos, int **ids, int *n, afx_err *e) {
    *ids = NULL, *n = 0;
    if (!text && len) return afx_fail(e, "%s: encode: NULL text", t->name);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = utf8_next(text + i, len - i, &cp);
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
