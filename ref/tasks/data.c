/* data.c — the task readers (see data.h for the formats).
 *
 * What this is: one reader per format over a byte buffer, sharing the bookkeeping: an arena that
 * owns every string, the growing example array, and the problem list ("NAME:LINE: what", or the
 * error of the call in strict mode). JSON goes through cJSON; TSV is split on tabs without quoting,
 * as the XNLI/MNLI files are written. What this is not: a general CSV reader or a JSON layer.
 */
#define _POSIX_C_SOURCE 200809L /* fdopen, fcntl */
#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "metrics.h"
#include "unicode.h"

/* ---- arena: every string of a TaskSet ------------------------------------------------------- */

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    max_align_t data[];
} Chunk;

typedef struct {
    Chunk *head;
} Arena;

static void *arena_alloc(Arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        Chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = a->head, c->used = 0, c->cap = cap;
        a->head = c;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static char *arena_str(Arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    if (p) memcpy(p, s, n), p[n] = '\0';
    return p;
}

static void arena_free(Arena *a) {
    while (a && a->head) {
        Chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
}

/* ---- reader state --------------------------------------------------------------------------- */

typedef struct {
    TaskSet *s;
    Arena *a;
    const char *name;
    int strict;
    afx_err *e;
    size_t cap_ex, cap_prob;
    char lang[64];       // the language for examples without their own
    const char *buf;     // the buffer, for line numbers of JSON positions
    size_t len, pos;     // SQuAD: search cursor ...
    long pos_line;       // ... and the line it is on
    int id_lost;         // SQuAD: an id was not found; the line numbers of the rest are unknown
} Reader;

static int oom(Reader *r) { return afx_fail(r->e, "%s: out of memory", r->name); }

/* Records a problem at `line` (0: unknown). Returns 0 to skip the record and go on, or -1 (strict
 * mode: e holds the message; or out of memory). */
static int problem(Reader *r, long line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int problem(Reader *r, long line, const char *fmt, ...) {
    char what[400], msg[AFX_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (line > 0) snprintf(msg, sizeof msg, "%s:%ld: %s", r->name, line, what);
    else snprintf(msg, sizeof msg, "%s: %s", r->name, what);
    if (r->strict) return afx_fail(r->e, "%s", msg);
    TaskSet *s = r->s;
    if (s->n_problems == r->cap_prob) {
        size_t cap = r->cap_prob ? 2 * r->cap_prob : 16;
        char **p = realloc(s->problems, cap * sizeof *p);
        if (!p) return oom(r);
        s->problems = p, r->cap_prob = cap;
    }
    char *m = arena_str(r->a, msg, strlen(msg));
    if (!m) return oom(r);
    s->problems[s->n_problems++] = m;
    return 0;
}

/* A fresh example (label -1, language set), or NULL when out of memory (e set). */
static TaskExample *new_example(Reader *r, long line) {
    TaskSet *s = r->s;
    if (s->n == r->cap_ex) {
        size_t cap = r->cap_ex ? 2 * r->cap_ex : 64;
        TaskExample *p = realloc(s->ex, cap * sizeof *p);
        if (!p) {
            oom(r);
            return NULL;
        }
        s->ex = p, r->cap_ex = cap;
    }
    TaskExample *x = &s->ex[s->n++];
    memset(x, 0, sizeof *x);
    x->kind = s->kind;
    x->label = -1;
    x->line = line;
    x->lang = r->lang; // replaced by an arena copy in finish()
    return x;
}

static char *adup(Reader *r, const char *s) {
    char *p = arena_str(r->a, s, strlen(s));
    if (!p) oom(r);
    return p;
}

/* A short, printable quote of s for messages (cut at a character boundary). */
static const char *quote(const char *s, char *out, size_t cap) {
    size_t n = strlen(s), k = 0;
    while (k < n && k + 4 < cap) {
        unsigned cp;
        size_t j = u8_next(s, n, k, &cp);
        if (j + 4 > cap) break;
        k = j;
    }
    memcpy(out, s, k);
    strcpy(out + k, k < n ? "..." : "");
    for (size_t i = 0; i < k; i++)
        if ((unsigned char)out[i] < 0x20) out[i] = ' ';
    return out;
}

static int begin(Reader *r, TaskSet *s, TaskKind kind, const char *buf, size_t len, const char *name,
                 const TaskReadOpts *o, afx_err *e) {
    memset(s, 0, sizeof *s);
    memset(r, 0, sizeof *r);
    s->kind = kind;
    r->s = s, r->name = name ? name : "(buffer)", r->e = e;
    r->strict = o && o->strict;
    r->buf = buf, r->len = len, r->pos_line = 1;
    r->a = calloc(1, sizeof *r->a);
    if (!r->a) return oom(r);
    s->arena = r->a;
    if (o && o->lang) snprintf(r->lang, sizeof r->lang, "%s", o->lang);
    else if (!task_lang_from_name(r->name, r->lang, sizeof r->lang) && kind == TASK_GSM8K)
        strcpy(r->lang, "en"); // GSM8K exists in English only
    return 0;
}

/* Ends a read: the language strings move into the arena; an empty result is an error. */
static int finish(Reader *r, int rc) {
    TaskSet *s = r->s;
    if (rc == 0) {
        const char *lang = adup(r, r->lang);
        if (!lang) rc = -1;
        for (size_t i = 0; rc == 0 && i < s->n; i++)
            if (s->ex[i].lang == r->lang) s->ex[i].lang = lang;
    }
    if (rc == 0 && s->n == 0) {
        if (s->n_problems)
            afx_fail(r->e, "%s: no examples (%zu problems; the first: %s)", r->name, s->n_problems, s->problems[0]);
        else afx_fail(r->e, "%s: no examples", r->name);
        rc = -1;
    }
    if (rc) task_set_free(s);
    return rc;
}

void task_set_free(TaskSet *s) {
    if (!s) return;
    free(s->ex);
    free(s->problems);
    arena_free(s->arena);
    free(s->arena);
    memset(s, 0, sizeof *s);
}

/* ---- lines ---------------------------------------------------------------------------------- */

typedef struct {
    const char *p; // the line without its "\n" or "\r\n"
    size_t n;
    long no; // 1-based line number
} Line;

/* The next line of buf starting at *off (a UTF-8 BOM at the start of the buffer is skipped);
 * 0 at the end of the buffer. */
static int next_line(const char *buf, size_t len, size_t *off, long *no, Line *l) {
    if (*off == 0 && len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) *off = 3;
    if (*off >= len) return 0;
    const char *p = buf + *off, *nl = memchr(p, '\n', len - *off);
    size_t n = nl ? (size_t)(nl - p) : len - *off;
    *off += n + (nl != NULL);
    l->p = p, l->n = n, l->no = ++*no;
    if (l->n && p[l->n - 1] == '\r') l->n--;
    return 1;
}

/* ASCII white space (JSON's, and what ends a GSM8K rationale). */
static int ascii_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int blank(const Line *l) {
    for (size_t i = 0; i < l->n; i++)
        if (!ascii_ws(l->p[i])) return 0;
    return 1;
}

/* Raw byte checks every line must pass. Returns a description of the fault, or NULL. */
static const char *line_fault(const Line *l) {
    if (memchr(l->p, '\0', l->n)) return "NUL byte in the line";
    if (!u8_valid(l->p, l->n)) return "invalid UTF-8";
    return NULL;
}

/* Splits a line at tabs into at most max columns (pointer + length); returns the column count
 * (which may exceed max: then only the first max are stored). */
static int split_tabs(const Line *l, const char **col, size_t *len, int max) {
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= l->n; i++) {
        if (i < l->n && l->p[i] != '\t') continue;
        if (k < max) col[k] = l->p + start, len[k] = i - start;
        k++;
        start = i + 1;
    }
    return k;
}

static char *dupn(Reader *r, const char *s, size_t n) {
    char *p = arena_str(r->a, s, n);
    if (!p) oom(r);
    return p;
}

/* ---- JSON helpers --------------------------------------------------------------------------- */

static const char *jstr(const cJSON *obj, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* Line number of byte offset off in buf. */
static long line_of(const char *buf, size_t off) {
    long line = 1;
    for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
    return line;
}

/* Parses one JSON document in buf[0..n); on failure writes where it went wrong into what. */
static cJSON *parse_json(const char *buf, size_t n, char *what, size_t cap, size_t *err_off) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    if (!j) {
        *err_off = end && end >= buf && end <= buf + n ? (size_t)(end - buf) : 0;
        snprintf(what, cap, "invalid JSON near byte %zu", *err_off);
        return NULL;
    }
    for (const char *p = end; p < buf + n; p++) // only white space may follow
        if (!ascii_ws(*p)) {
            cJSON_Delete(j);
            *err_off = (size_t)(p - buf);
            snprintf(what, cap, "invalid JSON: text after the value at byte %zu", *err_off);
            return NULL;
        }
    return j;
}

/* One JSON value per line (Belebele, GSM8K): blank lines are skipped, a line that is not text or not
 * JSON is a problem; fn takes each parsed line (0 to go on, -1 to stop). */
typedef int (*JsonlLineFn)(Reader *r, const Line *l, const cJSON *j, const TaskReadOpts *o);
static int read_jsonl(Reader *r, const char *buf, size_t len, JsonlLineFn fn, const TaskReadOpts *o) {
    size_t off = 0;
    long no = 0;
    Line l;
    int rc = 0;
    while (rc == 0 && next_line(buf, len, &off, &no, &l)) {
        if (blank(&l)) continue;
        const char *fault = line_fault(&l);
        char what[128];
        size_t at;
        cJSON *j = fault ? NULL : parse_json(l.p, l.n, what, sizeof what, &at);
        if (fault || !j) {
            rc = problem(r, l.no, "%s", fault ? fault : what);
            continue;
        }
        rc = fn(r, &l, j, o);
        cJSON_Delete(j);
    }
    return rc;
}

/* ---- SQuAD / XQuAD -------------------------------------------------------------------------- */

/* The raw JSON string starting at buf[i] (a '"'), decoded: 1 if it equals id. Strings without a
 * backslash are compared in place; escaped ones (\uXXXX, \") are decoded by cJSON. *end is set
 * past the closing quote (or to len). */
static int json_string_is(const char *buf, size_t len, size_t i, const char *id, size_t m, size_t *end) {
    size_t j = i + 1;
    int esc = 0;
    while (j < len && buf[j] != '"') {
        if (buf[j] == '\\') esc = 1, j++;
        j++;
    }
    *end = j < len ? j + 1 : len;
    if (j >= len) return 0;
    if (!esc) return j - i - 1 == m && memcmp(buf + i + 1, id, m) == 0;
    cJSON *s = cJSON_ParseWithLength(buf + i, j + 1 - i);
    int same = cJSON_IsString(s) && strcmp(s->valuestring, id) == 0;
    cJSON_Delete(s);
    return same;
}

/* The line of the next question id equal to `id` at or after the cursor (question ids appear in
 * file order): the next key "id" whose string value (decoded, so ids written with \u escapes are
 * found) is id; 0 when not found. Linear over the file in all: the cursor only moves forward, and
 * after one failed search (an id the scan cannot find) no further search is made (the lines of
 * the questions after it are unknown, 0), so hostile files cannot make it quadratic. */
static long find_id_line(Reader *r, const char *id) {
    if (r->id_lost) return 0;
    size_t m = strlen(id);
    for (size_t i = r->pos; i + 4 <= r->len; i++) {
        if (r->buf[i] != '"' || memcmp(r->buf + i, "\"id\"", 4) != 0 || (i > 0 && r->buf[i - 1] == '\\')) continue;
        size_t k = i + 4;
        while (k < r->len && ascii_ws(r->buf[k])) k++;
        if (k >= r->len || r->buf[k] != ':') continue;
        k++;
        while (k < r->len && ascii_ws(r->buf[k])) k++;
        if (k >= r->len || r->buf[k] != '"') continue;
        size_t end;
        int same = json_string_is(r->buf, r->len, k, id, m, &end);
        if (!same) {
            i = end - 1; /* past this value */
            continue;
        }
        for (size_t q = r->pos; q < i; q++) r->pos_line += r->buf[q] == '\n';
        r->pos = i;
        return r->pos_line;
    }
    r->id_lost = 1;
    return 0;
}

/* Reads one question; 0 when read or skipped, -1 fatal. */
static int squad_question(Reader *r, const cJSON *qa, const char *context, int aidx, int pidx, int qidx) {
    const char *id = jstr(qa, "id"), *q = jstr(qa, "question");
    char where[96], qt[48], qt2[48];
    if (!id || !*id) {
        snprintf(where, sizeof where, "article %d, paragraph %d, question %d", aidx + 1, pidx + 1, qidx + 1);
        return problem(r, 0, "%s: no \"id\" string", where);
    }
    long line = find_id_line(r, id);
    snprintf(where, sizeof where, "question '%s'", quote(id, qt, sizeof qt));
    if (!u8_valid(id, strlen(id))) return problem(r, line, "%s: id is not valid UTF-8", where);
    if (!q) return problem(r, line, "%s: no \"question\" string", where);
    if (!u8_valid(q, strlen(q))) return problem(r, line, "%s: invalid UTF-8 in the question", where);
    if (!*q) return problem(r, line, "%s: empty question", where);
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(qa, "answers");
    int na = cJSON_IsArray(ans) ? cJSON_GetArraySize(ans) : -1;
    if (na < 0) return problem(r, line, "%s: no \"answers\" array", where);
    if (na == 0) return problem(r, line, "%s: no answers (unanswerable questions are not SQuAD v1.1)", where);
    size_t clen = strlen(context);
    TaskAnswer *a = arena_alloc(r->a, (size_t)na * sizeof *a);
    if (!a) return oom(r);
    for (int k = 0; k < na; k++) {
        const cJSON *an = cJSON_GetArrayItem(ans, k), *st = cJSON_GetObjectItemCaseSensitive(an, "answer_start");
        const char *t = jstr(an, "text");
        if (!t) return problem(r, line, "%s: answer %d has no \"text\" string", where, k + 1);
        if (!u8_valid(t, strlen(t))) return problem(r, line, "%s: answer %d: invalid UTF-8", where, k + 1);
        if (!*t) return problem(r, line, "%s: answer %d is empty", where, k + 1);
        if (!cJSON_IsNumber(st) || st->valuedouble < 0 || st->valuedouble > 1e15 ||
            st->valuedouble != (double)(long)st->valuedouble)
            return problem(r, line, "%s: answer %d: \"answer_start\" is not a non-negative integer", where, k + 1);
        long start = (long)st->valuedouble;
        long off = u8_byte_offset(context, clen, start);
        size_t tl = strlen(t);
        if (off < 0 || (size_t)off + tl > clen || memcmp(context + off, t, tl) != 0) {
            if (off < 0) return problem(r, line, "%s: answer %d: answer_start %ld is past the end of the context",
                                        where, k + 1, start);
            return problem(r, line, "%s: answer %d '%s' is not the context's text at answer_start %ld ('%s')", where,
                           k + 1, quote(t, qt, sizeof qt), start, quote(context + off, qt2, sizeof qt2));
        }
        a[k].text = adup(r, t);
        if (!a[k].text) return -1;
        a[k].start = start, a[k].start_byte = off;
    }
    TaskExample *x = new_example(r, line);
    if (!x) return -1;
    x->id = adup(r, id);
    x->question = adup(r, q);
    x->context = context;
    x->answers = a, x->n_answers = na;
    return x->id && x->question ? 0 : -1;
}

int task_read_squad(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o,
                    afx_err *e) {
    Reader r;
    if (begin(&r, s, TASK_SQUAD, buf, len, name, o, e)) return finish(&r, -1);
    char what[128];
    size_t off = 0;
    cJSON *root = parse_json(buf, len, what, sizeof what, &off);
    if (!root) {
        afx_fail(e, "%s:%ld: %s", r.name, line_of(buf, off), what);
        return finish(&r, -1);
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    int rc = 0;
    if (!cJSON_IsArray(data)) {
        afx_fail(e, "%s: not SQuAD JSON: no top-level \"data\" array", r.name);
        rc = -1;
    }
    int ai = 0;
    for (const cJSON *art = data ? data->child : NULL; rc == 0 && art; art = art->next, ai++) {
        const cJSON *paras = cJSON_GetObjectItemCaseSensitive(art, "paragraphs");
        if (!cJSON_IsArray(paras)) {
            rc = problem(&r, 0, "article %d: no \"paragraphs\" array", ai + 1);
            continue;
        }
        int pi = 0;
        for (const cJSON *p = paras->child; rc == 0 && p; p = p->next, pi++) {
            const char *ctx = jstr(p, "context");
            const cJSON *qas = cJSON_GetObjectItemCaseSensitive(p, "qas");
            const char *bad = !ctx                          ? "no \"context\" string"
                              : !cJSON_IsArray(qas)         ? "no \"qas\" array"
                              : !u8_valid(ctx, strlen(ctx)) ? "invalid UTF-8 in the context"
                              : !*ctx                       ? "empty context"
                                                            : NULL;
            if (bad) {
                const char *id0 = qas ? jstr(cJSON_GetArrayItem(qas, 0), "id") : NULL;
                rc = problem(&r, id0 ? find_id_line(&r, id0) : 0, "article %d, paragraph %d: %s (%d questions skipped)",
                             ai + 1, pi + 1, bad, cJSON_IsArray(qas) ? cJSON_GetArraySize(qas) : 0);
                continue;
            }
            const char *context = adup(&r, ctx);
            if (!context) rc = -1;
            int qi = 0;
            for (const cJSON *qa = qas->child; rc == 0 && qa; qa = qa->next, qi++)
                rc = squad_question(&r, qa, context, ai, pi, qi);
        }
    }
    cJSON_Delete(root);
    return finish(&r, rc);
}

/* ---- XNLI / MNLI ---------------------------------------------------------------------------- */

static const char *const NLI_WORDS[3] = {"entailment", "neutral", "contradiction"};
static const char *const NLI_YES_NO[3] = {"yes", "maybe", "no"}; /* entailment, neutral, contradiction */

static int ieq(const char *a, size_t n, const char *b) {
    if (strlen(b) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (x != y) return 0;
    }
    return 1;
}

static int nli_label(const char *s, size_t n) {
    for (int k = 0; k < 3; k++)
        if (ieq(s, n, NLI_WORDS[k])) return k;
    return ieq(s, n, "contradictory") ? NLI_CONTRADICTION : -1;
}

enum { NLI_MAX_COLS = 64 };

typedef struct {
    int ncol, prem, hyp, label, lang, id; // column indices (-1: none)
    char pair[8];                         // the XX of sentence1_XX, "" when unsuffixed
} NliLayout;

static int col_is(const char *c, size_t n, const char *name) { return strlen(name) == n && !memcmp(c, name, n); }

/* A language suffix of "sentence1_XX": 2-3 lowercase letters (not "parse", "binary_parse", ...). */
static int lang_suffix(const char *c, size_t n, const char *prefix, char *out) {
    size_t p = strlen(prefix);
    if (n < p + 2 || n > p + 3 || memcmp(c, prefix, p) != 0) return 0;
    for (size_t i = p; i < n; i++)
        if (c[i] < 'a' || c[i] > 'z') return 0;
    memcpy(out, c + p, n - p);
    out[n - p] = '\0';
    return 1;
}

static int nli_is_header(const char **col, const size_t *len, int k) {
    static const char *const names[] = {"premise", "hypothesis", "sentence1", "sentence2", "text_a",
                                        "text_b",  "label",      "gold_label"};
    char sfx[8];
    for (int i = 0; i < k && i < NLI_MAX_COLS; i++) {
        for (size_t m = 0; m < sizeof names / sizeof names[0]; m++)
            if (col_is(col[i], len[i], names[m])) return 1;
        if (lang_suffix(col[i], len[i], "sentence1_", sfx)) return 1;
    }
    return 0;
}

/* Builds the layout from a header line; -1 (fatal, e set) when a needed column is missing. */
static int nli_header(Reader *r, const Line *l, const TaskReadOpts *o, NliLayout *lay) {
    const char *col[NLI_MAX_COLS];
    size_t len[NLI_MAX_COLS];
    int k = split_tabs(l, col, len, NLI_MAX_COLS);
    if (k > NLI_MAX_COLS)
        return afx_fail(r->e, "%s:%ld: header has %d columns (at most %d)", r->name, l->no, k, NLI_MAX_COLS);
    *lay = (NliLayout){.ncol = k, .prem = -1, .hyp = -1, .label = -1, .lang = -1, .id = -1};
    char langs[NLI_MAX_COLS][8];
    int nl = 0, gold = -1;
    for (int i = 0; i < k; i++) {
        char sfx[8];
        if (col_is(col[i], len[i], "premise") || col_is(col[i], len[i], "sentence1") ||
            col_is(col[i], len[i], "text_a"))
            lay->prem = i;
        else if (col_is(col[i], len[i], "hypothesis") || col_is(col[i], len[i], "sentence2") ||
                 col_is(col[i], len[i], "text_b"))
            lay->hyp = i;
        else if (col_is(col[i], len[i], "gold_label")) gold = i;
        else if (col_is(col[i], len[i], "label")) lay->label = i;
        else if (col_is(col[i], len[i], "language")) lay->lang = i;
        else if (col_is(col[i], len[i], "pairID")) lay->id = i;
        else if (lang_suffix(col[i], len[i], "sentence1_", sfx)) strcpy(langs[nl++], sfx);
    }
    if (gold >= 0) lay->label = gold;
    if (lay->prem < 0 && nl > 0) { // sentence pairs named by language (myXNLI)
        int want = -1;
        char have[NLI_MAX_COLS * 6] = "";
        for (int i = 0; i < nl; i++) {
            if (r->lang[0] && !strcmp(langs[i], r->lang)) want = i;
            strcat(strcat(have, i ? ", " : ""), langs[i]);
        }
        if (want < 0 && nl == 1 && !(o && o->lang)) want = 0;
        if (want < 0)
            return afx_fail(r->e, "%s:%ld: sentence pairs for %s%s%s; choose one with the language option", r->name,
                            l->no, have, r->lang[0] ? ", none for " : "", r->lang);
        strcpy(lay->pair, langs[want]); // 2-3 letters (lang_suffix)
        char p1[24] = "sentence1_", p2[24] = "sentence2_";
        strcat(p1, lay->pair);
        strcat(p2, lay->pair);
        for (int i = 0; i < k; i++) {
            if (col_is(col[i], len[i], p1)) lay->prem = i;
            if (col_is(col[i], len[i], p2)) lay->hyp = i;
        }
        strcpy(r->lang, lay->pair);
    }
    const char *miss = lay->prem < 0 ? "premise (premise, sentence1, sentence1_XX or text_a)"
                       : lay->hyp < 0 ? "hypothesis (hypothesis, sentence2, sentence2_XX or text_b)"
                       : lay->label < 0 ? "label (gold_label or label)"
                                        : NULL;
    if (miss) return afx_fail(r->e, "%s:%ld: the header has no %s column", r->name, l->no, miss);
    return 0;
}

int task_read_nli(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o, afx_err *e) {
    Reader r;
    if (begin(&r, s, TASK_NLI, buf, len, name, o, e)) return finish(&r, -1);
    NliLayout lay = {.ncol = 3, .prem = 0, .hyp = 1, .label = 2, .lang = -1, .id = -1};
    int have_layout = 0, rc = 0;
    long row = 0; // data rows (of the chosen language), for ids
    size_t off = 0;
    long no = 0;
    Line l;
    const char **words = arena_alloc(r.a, 3 * sizeof *words);
    if (!words) rc = oom(&r);
    for (int k = 0; rc == 0 && k < 3; k++)
        if (!(words[k] = adup(&r, (o && o->nli_yes_no ? NLI_YES_NO : NLI_WORDS)[k]))) rc = -1;
    while (rc == 0 && next_line(buf, len, &off, &no, &l)) {
        if (l.n == 0) continue;
        const char *fault = line_fault(&l);
        const char *col[NLI_MAX_COLS];
        size_t cl[NLI_MAX_COLS];
        if (!have_layout) { // the first non-empty line decides the layout
            have_layout = 1;
            int k = fault ? 0 : split_tabs(&l, col, cl, NLI_MAX_COLS);
            TaskNliHeader h = o ? o->nli_header : TASK_NLI_AUTO;
            if (h == TASK_NLI_HEADER || (h == TASK_NLI_AUTO && !fault && nli_is_header(col, cl, k))) {
                if (fault) {
                    afx_fail(e, "%s:%ld: header: %s", r.name, l.no, fault);
                    rc = -1;
                } else rc = nli_header(&r, &l, o, &lay);
                continue;
            }
        }
        if (fault) {
            rc = problem(&r, l.no, "%s", fault);
            row++;
            continue;
        }
        int k = split_tabs(&l, col, cl, NLI_MAX_COLS);
        if (lay.lang >= 0 && k == lay.ncol && o && o->lang && !col_is(col[lay.lang], cl[lay.lang], o->lang))
            continue; // XNLI-1.0: another language's row
        row++;
        if (k != lay.ncol) {
            rc = problem(&r, l.no, "%d columns, expected %d", k, lay.ncol);
            continue;
        }
        int label = nli_label(col[lay.label], cl[lay.label]);
        char lt[48], tmp[48];
        if (label < 0) {
            size_t n = cl[lay.label] < sizeof tmp - 1 ? cl[lay.label] : sizeof tmp - 1;
            memcpy(tmp, col[lay.label], n), tmp[n] = '\0';
            rc = problem(&r, l.no, "unknown label '%s' (entailment, neutral, contradiction or contradictory)",
                         quote(tmp, lt, sizeof lt));
            continue;
        }
        if (cl[lay.prem] == 0 || cl[lay.hyp] == 0) {
            rc = problem(&r, l.no, "empty %s", cl[lay.prem] == 0 ? "premise" : "hypothesis");
            continue;
        }
        TaskExample *x = new_example(&r, l.no);
        if (!x) {
            rc = -1;
            break;
        }
        char idbuf[32];
        snprintf(idbuf, sizeof idbuf, "%ld", row);
        x->context = dupn(&r, col[lay.prem], cl[lay.prem]);
        x->question = dupn(&r, col[lay.hyp], cl[lay.hyp]);
        x->id = lay.id >= 0 ? dupn(&r, col[lay.id], cl[lay.id]) : adup(&r, idbuf);
        if (lay.lang >= 0) x->lang = dupn(&r, col[lay.lang], cl[lay.lang]);
        x->options = words, x->n_options = 3, x->label = label, x->yes_no = o && o->nli_yes_no;
        if (!x->context || !x->question || !x->id || !x->lang) rc = -1;
    }
    return finish(&r, rc);
}

/* ---- Belebele ------------------------------------------------------------------------------- */

enum { CHOICE_MAX = 26 };

/* Adds one question; 0 read or skipped, -1 fatal. answers[i] / correct[i] for n answers. */
static int choice_example(Reader *r, long line, const char *id, const char *passage, const char *question,
                          const char *const *answers, const int *correct, int n, const char *lang, const char *where) {
    if (!question) return problem(r, line, "%sno \"question\" string", where);
    if (!*question) return problem(r, line, "%sempty question", where);
    if (!u8_valid(question, strlen(question))) return problem(r, line, "%sinvalid UTF-8 in the question", where);
    if (n < 2 || n > CHOICE_MAX) return problem(r, line, "%s%d answers (2 to %d)", where, n, CHOICE_MAX);
    int label = -1, ncorrect = 0;
    for (int i = 0; i < n; i++) {
        if (!answers[i]) return problem(r, line, "%sanswer %d has no text", where, i + 1);
        if (!u8_valid(answers[i], strlen(answers[i])))
            return problem(r, line, "%sanswer %d: invalid UTF-8", where, i + 1);
        if (correct[i]) label = i, ncorrect++;
    }
    if (ncorrect != 1) return problem(r, line, "%s%d correct answers (exactly one expected)", where, ncorrect);
    const char **opts = arena_alloc(r->a, (size_t)n * sizeof *opts);
    if (!opts) return oom(r);
    for (int i = 0; i < n; i++)
        if (!(opts[i] = adup(r, answers[i]))) return -1;
    TaskExample *x = new_example(r, line);
    if (!x) return -1;
    x->id = adup(r, id);
    x->context = passage;
    x->question = adup(r, question);
    x->options = opts, x->n_options = n, x->label = label;
    if (lang && !(x->lang = adup(r, lang))) return -1;
    return x->id && x->question ? 0 : -1;
}

static int belebele_line(Reader *r, const Line *l, const cJSON *j, const char *lang_opt) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    const char *text = jstr(j, "text"), *flat = jstr(j, "flores_passage");
    const char *p = items ? text : flat;
    if (!items && !flat)
        return problem(r, l->no, "neither a regrouped line (\"items\") nor an official one (\"flores_passage\")");
    if (!p) return problem(r, l->no, "no passage (\"text\") string");
    if (!*p) return problem(r, l->no, "empty passage");
    if (!u8_valid(p, strlen(p))) return problem(r, l->no, "invalid UTF-8 in the passage");
    const char *passage = adup(r, p);
    if (!passage) return -1;
    char id[40];
    if (!items) { // official flat form: mc_answer1..4, correct_answer_num "1".."4", dialect
        const char *ans[4];
        int correct[4];
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "correct_answer_num");
        int num = 0;
        if (cJSON_IsNumber(c) && c->valuedouble >= 1 && c->valuedouble <= 4) num = (int)c->valuedouble;
        if (num != 0 && c->valuedouble != num) num = 0;
        if (cJSON_IsString(c) && c->valuestring[0] >= '1' && c->valuestring[0] <= '4' && !c->valuestring[1])
            num = c->valuestring[0] - '0';
        if (num < 1 || num > 4) return problem(r, l->no, "\"correct_answer_num\" is not 1, 2, 3 or 4");
        for (int i = 0; i < 4; i++) {
            char key[24];
            snprintf(key, sizeof key, "mc_answer%d", i + 1);
            ans[i] = jstr(j, key);
            correct[i] = i + 1 == num;
        }
        snprintf(id, sizeof id, "%ld", l->no);
        const char *lang = lang_opt ? NULL : jstr(j, "dialect");
        return choice_example(r, l->no, id, passage, jstr(j, "question"), ans, correct, 4, lang, "");
    }
    if (!cJSON_IsArray(items)) return problem(r, l->no, "\"items\" is not an array");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "metadata"), "extra");
    const char *lang = lang_opt ? NULL : jstr(meta, "language");
    int qi = 0, rc = 0;
    for (const cJSON *it = items->child; rc == 0 && it; it = it->next) {
        char where[32];
        snprintf(where, sizeof where, "question %d: ", ++qi);
        snprintf(id, sizeof id, "%ld.%d", l->no, qi);
        const cJSON *answers = cJSON_GetObjectItemCaseSensitive(it, "answers");
        if (!cJSON_IsArray(answers)) {
            rc = problem(r, l->no, "%sno \"answers\" array", where);
            continue;
        }
        const char *ans[CHOICE_MAX];
        int correct[CHOICE_MAX], n = 0, bad = 0;
        for (const cJSON *a = answers->child; a; a = a->next, n++) {
            if (n >= CHOICE_MAX) continue;
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "correct");
            ans[n] = jstr(a, "text");
            correct[n] = cJSON_IsTrue(c);
            if (!cJSON_IsBool(c)) bad = n + 1;
        }
        if (bad && n <= CHOICE_MAX) {
            rc = problem(r, l->no, "%sanswer %d: \"correct\" is not true or false", where, bad);
            continue;
        }
        rc = choice_example(r, l->no, id, passage, jstr(it, "question"), ans, correct, n, lang, where);
    }
    return rc;
}

static int belebele_json(Reader *r, const Line *l, const cJSON *j, const TaskReadOpts *o) {
    return cJSON_IsObject(j) ? belebele_line(r, l, j, o ? o->lang : NULL) : problem(r, l->no, "not a JSON object");
}

int task_read_belebele(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o,
                       afx_err *e) {
    Reader r;
    if (begin(&r, s, TASK_BELEBELE, buf, len, name, o, e)) return finish(&r, -1);
    return finish(&r, read_jsonl(&r, buf, len, belebele_json, o));
}

/* ---- GSM8K ---------------------------------------------------------------------------------- */

/* one line {"question": ..., "answer": "... #### N"} */
static int gsm8k_line(Reader *r, const Line *l, const cJSON *j, const TaskReadOpts *o) {
    (void)o;
    const char *q = jstr(j, "question"), *a = jstr(j, "answer");
    const char *mark = NULL;
    for (const char *p = a; p && (p = strstr(p, "####")); p += 4) mark = p; // the last "####"
    char num[MGSM_NUM_MAX];
    if (!q || !a) return problem(r, l->no, "no \"%s\" string", !q ? "question" : "answer");
    if (!*q) return problem(r, l->no, "empty question");
    if (!u8_valid(q, strlen(q)) || !u8_valid(a, strlen(a))) return problem(r, l->no, "invalid UTF-8");
    if (!mark) return problem(r, l->no, "the answer has no \"#### N\" line");
    if (number_normalize(mark + 4, strlen(mark + 4), num, sizeof num))
        return problem(r, l->no, "the final answer after \"####\" is not a number");
    size_t rl = (size_t)(mark - a);
    while (rl > 0 && ascii_ws(a[rl - 1])) rl--;
    TaskExample *x = new_example(r, l->no);
    char id[32];
    snprintf(id, sizeof id, "%ld", l->no);
    if (!x || !(x->id = adup(r, id)) || !(x->question = adup(r, q)) || !(x->number = adup(r, num)) ||
        !(x->rationale = dupn(r, a, rl)))
        return -1;
    return 0;
}

int task_read_gsm8k(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o,
                    afx_err *e) {
    Reader r;
    if (begin(&r, s, TASK_GSM8K, buf, len, name, o, e)) return finish(&r, -1);
    return finish(&r, read_jsonl(&r, buf, len, gsm8k_line, o));
}

/* ---- MGSM ----------------------------------------------------------------------------------- */

int task_read_mgsm(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o, afx_err *e) {
    Reader r;
    if (begin(&r, s, TASK_MGSM, buf, len, name, o, e)) return finish(&r, -1);
    size_t off = 0;
    long no = 0;
    Line l;
    int rc = 0;
    while (rc == 0 && next_line(buf, len, &off, &no, &l)) {
        if (l.n == 0) continue;
        const char *fault = line_fault(&l);
        const char *col[2];
        size_t cl[2];
        int k = fault ? 0 : split_tabs(&l, col, cl, 2);
        char num[MGSM_NUM_MAX];
        if (fault) rc = problem(&r, l.no, "%s", fault);
        else if (k != 2) rc = problem(&r, l.no, "%d columns, expected 2 (question<TAB>answer)", k);
        else if (cl[0] == 0) rc = problem(&r, l.no, "empty question");
        else if (number_normalize(col[1], cl[1], num, sizeof num)) rc = problem(&r, l.no, "the answer is not a number");
        else {
            TaskExample *x = new_example(&r, l.no);
            char id[32];
            snprintf(id, sizeof id, "%ld", l.no);
            if (!x || !(x->id = adup(&r, id)) || !(x->question = dupn(&r, col[0], cl[0])) || !(x->number = adup(&r, num)))
                rc = -1;
        }
    }
    return finish(&r, rc);
}

/* ---- dispatch, files, names ----------------------------------------------------------------- */

int task_read(TaskSet *s, TaskKind kind, const char *buf, size_t len, const char *name, const TaskReadOpts *o,
              afx_err *e) {
    switch (kind) {
    case TASK_SQUAD: return task_read_squad(s, buf, len, name, o, e);
    case TASK_NLI: return task_read_nli(s, buf, len, name, o, e);
    case TASK_BELEBELE: return task_read_belebele(s, buf, len, name, o, e);
    case TASK_GSM8K: return task_read_gsm8k(s, buf, len, name, o, e);
    case TASK_MGSM: return task_read_mgsm(s, buf, len, name, o, e);
    }
    memset(s, 0, sizeof *s);
    return afx_fail(e, "%s: unknown task kind %d", name ? name : "(buffer)", (int)kind);
}

int task_read_file(TaskSet *s, TaskKind kind, const char *path, const TaskReadOpts *o, afx_err *e) {
    memset(s, 0, sizeof *s);
    /* O_NONBLOCK: a FIFO or a device is refused, not waited on in open(2) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return afx_fail(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return afx_fail(e, "%s: not a regular file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return afx_fail(e, "%s: cannot open: %s", path, strerror(errno));
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t nc = cap ? 2 * cap : 1 << 20;
            char *p = realloc(buf, nc);
            if (!p) {
                free(buf), fclose(f);
                return afx_fail(e, "%s: out of memory reading the file", path);
            }
            buf = p, cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return afx_fail(e, "%s: read error", path);
    }
    int rc = task_read(s, kind, buf, n, path, o, e);
    free(buf);
    return rc;
}

int task_kind_parse(const char *name) {
    static const struct {
        const char *name;
        TaskKind kind;
    } k[] = {{"squad", TASK_SQUAD}, {"xquad", TASK_SQUAD}, {"nli", TASK_NLI},     {"xnli", TASK_NLI},
             {"mnli", TASK_NLI},    {"belebele", TASK_BELEBELE}, {"gsm8k", TASK_GSM8K}, {"mgsm", TASK_MGSM}};
    for (size_t i = 0; name && i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(name, k[i].name)) return (int)k[i].kind;
    return -1;
}

const char *task_kind_name(TaskKind kind) {
    switch (kind) {
    case TASK_SQUAD: return "squad";
    case TASK_NLI: return "nli";
    case TASK_BELEBELE: return "belebele";
    case TASK_GSM8K: return "gsm8k";
    case TASK_MGSM: return "mgsm";
    }
    return "?";
}

const char *task_nli_label_name(int label) { return label >= 0 && label < 3 ? NLI_WORDS[label] : NULL; }

/* 2-3 lowercase ASCII letters at s, followed by `end`: their count, else 0. */
static size_t code_len(const char *s, char end) {
    size_t k = 0;
    while (k < 4 && s[k] >= 'a' && s[k] <= 'z') k++;
    return k >= 2 && k <= 3 && s[k] == end ? k : 0;
}

static int put_lang(const char *s, size_t n, char *out, size_t cap) {
    if (n == 0 || n >= cap) return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

int task_lang_from_name(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base), k;
    if (!strncmp(base, "xquad.", 6) && (k = code_len(base + 6, '.'))) return put_lang(base + 6, k, out, cap);
    if (!strncmp(base, "mgsm_", 5) && (k = code_len(base + 5, '.'))) return put_lang(base + 5, k, out, cap);
    if ((k = code_len(base, '.')) && !strncmp(base + k, ".genre.", 7)) return put_lang(base, k, out, cap); // myXNLI
    // LLL_Ssss.jsonl (a FLORES-200 code)
    if (n >= 8 && code_len(base, '_') == 3 && base[4] >= 'A' && base[4] <= 'Z' && base[5] >= 'a' && base[5] <= 'z' &&
        base[6] >= 'a' && base[6] <= 'z' && base[7] >= 'a' && base[7] <= 'z' && (base[8] == '.' || base[8] == '\0'))
        return put_lang(base, 8, out, cap);
    // xnli.SPLIT.LL.tsv (KorNLI): the component before the extension
    if (!strncmp(base, "xnli.", 5)) {
        const char *last = strrchr(base, '.'), *prev = last;
        while (prev > base && prev[-1] != '.') prev--;
        if (prev > base + 5 && (k = code_len(prev, '.')) && prev + k == last) return put_lang(prev, k, out, cap);
    }
    return 0;
}
