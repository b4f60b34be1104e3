/* metrics.c — accuracy, SQuAD EM/F1 (word and character level), MGSM number match, label
 * extraction (see metrics.h).
 *
 * What this is: a re-statement in C of the semantics of the official SQuAD v1.1 evaluation script,
 * MLQA's mixed segmentation for scripts without spaces, and the MGSM final-number match, written
 * from their descriptions. Where Python's regex \b decides (the article rule), "word character" is
 * approximated by uc_is_word (unicode.h): it differs from Python only next to combining marks and
 * rare symbols. What this is not: a Unicode normalizer (NFC/NFKC are not applied, as in the
 * official script).
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

double metric_accuracy(const int *pred, const int *gold, size_t n) {
    if (n == 0) return 0.0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += pred[i] == gold[i];
    return (double)ok / (double)n;
}

/* ---- SQuAD: normalization and tokens -------------------------------------------------------- */

SquadMode squad_mode_for_lang(const char *lang) {
    static const char *const chars[] = {"zh", "zho", "ja", "jpn", "th", "tha", "my", "mya",
                                        "lo", "lao", "km", "khm", "yue"};
    if (!lang) return SQUAD_WORDS;
    size_t n = strcspn(lang, "_-"); // the language subtag: "zho_Hans" -> "zho", "zh-CN" -> "zh"
    for (size_t i = 0; i < sizeof chars / sizeof chars[0]; i++)
        if (strlen(chars[i]) == n && strncmp(lang, chars[i], n) == 0) return SQUAD_CHARS;
    return SQUAD_WORDS;
}

typedef struct {
    const char *p;
    size_t n;
} Tok;

static int tok_cmp(const void *a, const void *b) {
    const Tok *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    if (c) return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* Is "a", "an" or "the" at s[i] a whole word (\b on both sides)? Returns its length, else 0. */
static size_t article_at(const char *s, size_t n, size_t i, unsigned prev) {
    static const char *const art[] = {"the", "an", "a"};
    if (uc_is_word(prev)) return 0;
    for (int k = 0; k < 3; k++) {
        size_t m = strlen(art[k]);
        if (n - i < m || memcmp(s + i, art[k], m) != 0) continue;
        unsigned next = ' ';
        if (i + m < n) u8_next(s, n, i + m, &next);
        if (!uc_is_word(next)) return m;
    }
    return 0;
}

/* Normalizes s into *buf (malloc'd) and splits it into *toks (malloc'd slices of *buf). */
static int squad_tokens(const char *s, SquadMode mode, char **buf, Tok **toks, size_t *nt, afx_err *e) {
    size_t n = strlen(s);
    char *low = malloc(2 * n + 1), *out = malloc(2 * n + 1);
    Tok *t = malloc((n + 1) * sizeof *t);
    if (!low || !out || !t) {
        free(low), free(out), free(t);
        return afx_fail(e, "squad: out of memory normalizing a %zu-byte answer", n);
    }
    // 1. lowercase (Python str.lower on the blocks of unicode.h)
    size_t m = u8_lower(s, n, low);
    // 2. remove punctuation: ASCII string.punctuation; in character mode also Unicode P*
    size_t k = 0;
    for (size_t i = 0; i < m;) {
        unsigned cp;
        size_t j = u8_next(low, m, i, &cp);
        int drop = uc_is_ascii_punct(cp) || (mode == SQUAD_CHARS && uc_is_punct(cp));
        if (!drop) memcpy(out + k, low + i, j - i), k += j - i;
        i = j;
    }
    // 3. word mode: the articles a / an / the become a space (re.sub(r'\b(a|an|the)\b', ' ', text))
    if (mode == SQUAD_WORDS) {
        size_t w = 0;
        unsigned prev = ' ';
        for (size_t i = 0; i < k;) {
            size_t a = article_at(out, k, i, prev);
            if (a) {
                low[w++] = ' ';
                prev = out[i + a - 1];
                i += a;
                continue;
            }
            size_t j = u8_next(out, k, i, &prev);
            memcpy(low + w, out + i, j - i), w += j - i;
            i = j;
        }
        memcpy(out, low, w);
        k = w;
    }
    free(low);
    // 4. tokens: white-space separated; in character mode a no-space-script code point is one token
    size_t count = 0, start = 0;
    int in_tok = 0;
    for (size_t i = 0; i < k;) {
        unsigned cp;
        size_t j = u8_next(out, k, i, &cp);
        int single = mode == SQUAD_CHARS && uc_is_nospace_script(cp);
        if (uc_is_space(cp) || single) {
            if (in_tok) t[count++] = (Tok){out + start, i - start};
            in_tok = 0;
            if (single) t[count++] = (Tok){out + i, j - i};
        } else if (!in_tok) {
            in_tok = 1;
            start = i;
        }
        i = j;
    }
    if (in_tok) t[count++] = (Tok){out + start, k - start};
    *buf = out;
    *toks = t;
    *nt = count;
    return 0;
}

int squad_normalize(const char *s, SquadMode mode, char **out, afx_err *e) {
    char *buf;
    Tok *t;
    size_t nt;
    if (squad_tokens(s, mode, &buf, &t, &nt, e)) return -1;
    size_t len = 0;
    for (size_t i = 0; i < nt; i++) len += t[i].n + 1;
    char *r = malloc(len + 1);
    if (!r) {
        free(buf), free(t);
        return afx_fail(e, "squad: out of memory");
    }
    size_t o = 0;
    for (size_t i = 0; i < nt; i++) {
        if (i) r[o++] = ' ';
        memcpy(r + o, t[i].p, t[i].n), o += t[i].n;
    }
    r[o] = '\0';
    free(buf), free(t);
    *out = r;
    return 0;
}

/* EM and F1 of two token lists; sorts both (the multiset intersection is a merge). */
static void em_f1(Tok *p, size_t np, Tok *g, size_t ng, double *em, double *f1) {
    *em = np == ng;
    for (size_t i = 0; i < np && *em; i++) *em = tok_cmp(&p[i], &g[i]) == 0;
    qsort(p, np, sizeof *p, tok_cmp);
    qsort(g, ng, sizeof *g, tok_cmp);
    size_t same = 0;
    for (size_t i = 0, j = 0; i < np && j < ng;) {
        int c = tok_cmp(&p[i], &g[j]);
        if (c == 0) same++, i++, j++;
        else if (c < 0) i++;
        else j++;
    }
    if (same == 0) { // also when both are empty: the v1.1 script gives F1 0 (and EM 1) there
        *f1 = 0;
        return;
    }
    double prec = (double)same / (double)np, rec = (double)same / (double)ng;
    *f1 = 2 * prec * rec / (prec + rec);
}

int squad_score(const char *pred, const char *const *golds, int n_golds, SquadMode mode, double *em, double *f1,
                afx_err *e) {
    if (n_golds < 1) return afx_fail(e, "squad_score: no gold answers");
    char *pbuf;
    Tok *pt;
    size_t np;
    if (squad_tokens(pred, mode, &pbuf, &pt, &np, e)) return -1;
    Tok *work = malloc((np + 1) * sizeof *work);
    if (!work) {
        free(pbuf), free(pt);
        return afx_fail(e, "squad: out of memory");
    }
    double best_em = 0, best_f1 = 0;
    for (int k = 0; k < n_golds; k++) {
        char *gbuf;
        Tok *gt;
        size_t ng;
        if (squad_tokens(golds[k], mode, &gbuf, &gt, &ng, e)) {
            free(pbuf), free(pt), free(work);
            return -1;
        }
        memcpy(work, pt, np * sizeof *work); // em_f1 sorts; keep the prediction's order for EM
        double m, f;
        em_f1(work, np, gt, ng, &m, &f);
        if (m > best_em) best_em = m;
        if (f > best_f1) best_f1 = f;
        free(gbuf), free(gt);
    }
    free(pbuf), free(pt), free(work);
    *em = best_em;
    *f1 = best_f1;
    return 0;
}

static int ascii_alpha(unsigned c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }

/* Letters of the Latin script (ASCII and Latin-1..Extended-B): a letter next to one of these is part
 * of a word. A CJK or Thai character next to it is not ("答案是B"). */
static int latin_alnum(unsigned cp) {
    return (cp < 0x80 && (ascii_alpha(cp) || (cp >= '0' && cp <= '9'))) ||
           (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7);
}

/* ---- numbers -------------------------------------------------------------------------------- */

/* Parses the body of a number at s[i] (a digit there, or '.' + digit when lead_dot): integer digits
 * with ',' + 3-digit groups, then '.' + fraction digits. Writes the canonical form (sign applied)
 * into out; returns the index after the number; *fits = 0 when the form needs more than cap bytes. */
static size_t number_body(const char *s, size_t n, size_t i, int neg, char *out, size_t cap, int *fits) {
    char ip[MGSM_NUM_MAX * 4], fp[MGSM_NUM_MAX * 4]; // digit strings (overflow only sets *fits = 0)
    size_t ni = 0, nf = 0, big = 0;
    unsigned cp;
    size_t j;
    // integer part
    while (i < n && (j = u8_next(s, n, i, &cp), uc_digit(cp) >= 0)) {
        if (ni < sizeof ip) ip[ni++] = (char)('0' + uc_digit(cp));
        else big = 1;
        i = j;
        if (i < n && s[i] == ',') { // a thousands group: exactly three digits, then no digit
            size_t q = i + 1, d = 0;
            unsigned c2;
            while (d < 4 && q < n) {
                size_t r = u8_next(s, n, q, &c2);
                if (uc_digit(c2) < 0) break;
                q = r, d++;
            }
            if (d == 3) i = i + 1; // continue with the group's digits
        }
    }
    // fraction
    if (i + 1 < n && s[i] == '.') {
        j = u8_next(s, n, i + 1, &cp);
        if (uc_digit(cp) >= 0) {
            i++;
            while (i < n && (j = u8_next(s, n, i, &cp), uc_digit(cp) >= 0)) {
                if (nf < sizeof fp) fp[nf++] = (char)('0' + uc_digit(cp));
                else big = 1;
                i = j;
            }
        }
    }
    // canonical form
    size_t a = 0;
    while (a + 1 < ni && ip[a] == '0') a++; // leading zeros
    while (nf > 0 && fp[nf - 1] == '0') nf--; // trailing fraction zeros
    int zero = nf == 0 && (ni == 0 || (ni - a == 1 && ip[a] == '0'));
    size_t need = (neg && !zero) + (ni ? ni - a : 1) + (nf ? 1 + nf : 0) + 1;
    *fits = !big && need <= cap;
    if (*fits) {
        size_t o = 0;
        if (neg && !zero) out[o++] = '-';
        if (ni) memcpy(out + o, ip + a, ni - a), o += ni - a;
        else out[o++] = '0';
        if (nf) out[o++] = '.', memcpy(out + o, fp, nf), o += nf;
        out[o] = '\0';
    }
    return i;
}

int number_normalize(const char *s, size_t len, char *out, size_t cap) {
    size_t i = 0, j;
    unsigned cp;
    while (i < len && (j = u8_next(s, len, i, &cp), uc_is_space(cp))) i = j;
    int neg = 0;
    if (i < len) {
        j = u8_next(s, len, i, &cp);
        if (cp == '-' || cp == 0x2212) neg = 1, i = j;
        else if (cp == '+') i = j;
    }
    if (i >= len) return -1;
    u8_next(s, len, i, &cp);
    if (uc_digit(cp) < 0) { // only ".5"
        if (s[i] != '.' || i + 1 >= len) return -1;
        u8_next(s, len, i + 1, &cp);
        if (uc_digit(cp) < 0) return -1;
    }
    int fits;
    i = number_body(s, len, i, neg, out, cap, &fits);
    if (i < len && s[i] == '.') i++; // "5."
    while (i < len && (j = u8_next(s, len, i, &cp), uc_is_space(cp))) i = j;
    if (i != len || !fits) return -1;
    return 0;
}


int mgsm_last_number(const char *text, char *out, size_t cap) {
    size_t n = strlen(text);
    int found = 0;
    unsigned prev = ' ', prev2 = ' '; // the two code points before i
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t j = u8_next(text, n, i, &cp);
        if (uc_digit(cp) < 0) {
            prev2 = prev, prev = cp;
            i = j;
            continue;
        }
        int neg = 0, start_dot = 0;
        unsigned before = prev, before2 = prev2;
        if (before == '.' && uc_digit(before2) < 0) start_dot = 1; // ".5"
        else if ((before == '-' || before == 0x2212) && !latin_alnum(before2) && uc_digit(before2) < 0) neg = 1;
        int fits;
        char tmp[MGSM_NUM_MAX];
        size_t end = number_body(text, n, start_dot ? i - 1 : i, neg, tmp, sizeof tmp, &fits);
        found = fits && strlen(tmp) < cap ? 1 : -1;
        if (found == 1) strcpy(out, tmp);
        prev2 = prev = '0'; // the number ended on a digit
        i = end;
    }
    if (found == 0 && cap) out[0] = '\0';
    return found;
}

int mgsm_correct(const char *generated, const char *gold) {
    char g[MGSM_NUM_MAX], p[MGSM_NUM_MAX];
    if (number_normalize(gold, strlen(gold), g, sizeof g)) return 0;
    if (mgsm_last_number(generated, p, sizeof p) != 1) return 0;
    return strcmp(g, p) == 0;
}

/* ---- labels from text ----------------------------------------------------------------------- */

int nli_label_from_text(const char *text) {
    static const struct {
        const char *w;
        int label;
    } words[] = {{"entailment", 0}, {"neutral", 1}, {"contradiction", 2}, {"contradictory", 2}};
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && ascii_alpha((unsigned char)text[i - 1])) continue; // start of a word
        for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
            size_t m = strlen(words[k].w), q = 0;
            while (q < m && i + q < n && (text[i + q] | 32) == words[k].w[q]) q++;
            if (q == m) return words[k].label;
        }
    }
    return -1;
}

int nli_yes_no_from_text(const char *text) {
    static const char *const w[3] = {"yes", "maybe", "no"};
    size_t i = 0;
    while (text[i] && !ascii_alpha((unsigned char)text[i])) i++; // the first word
    size_t j = i;
    while (text[j] && ascii_alpha((unsigned char)text[j])) j++;
    for (int k = 0; k < 3; k++)
        if (j - i == strlen(w[k])) {
            size_t q = 0;
            while (q < j - i && (text[i + q] | 32) == w[k][q]) q++;
            if (q == j - i) return k;
        }
    return -1;
}

int choice_from_text(const char *text, int n_options) {
    if (n_options < 1 || n_options > 26) return -1;
    size_t n = strlen(text), i = 0, j;
    unsigned cp, next;
    // a letter right at the start
    while (i < n && (j = u8_next(text, n, i, &cp), uc_is_space(cp) || cp == '(' || cp == '[' || cp == '*')) i = j;
    if (i < n) {
        j = u8_next(text, n, i, &cp);
        next = ' ';
        if (j < n) u8_next(text, n, j, &next);
        if (cp >= 'A' && cp < 'A' + (unsigned)n_options && !latin_alnum(next)) return (int)(cp - 'A');
    }
    // else the first letter standing alone
    unsigned prev = ' ';
    for (i = 0; i < n;) {
        j = u8_next(text, n, i, &cp);
        if (cp >= 'A' && cp < 'A' + (unsigned)n_options && !latin_alnum(prev)) {
            next = ' ';
            size_t k = j;
            if (j < n) k = u8_next(text, n, j, &next);
            if (!latin_alnum(next)) {
                unsigned after = ' ';
                if (k < n) u8_next(text, n, k, &after);
                int article = cp == 'A' && next == ' ' && after >= 'a' && after <= 'z';
                if (!article) return (int)(cp - 'A');
            }
        }
        prev = cp;
        i = j;
    }
    return -1;
}

int choice_best(const double *score, const int *ntok, int n_options) {
    int best = -1;
    double bv = 0;
    for (int i = 0; i < n_options; i++) {
        if (ntok && ntok[i] <= 0) continue;
        double v = ntok ? score[i] / ntok[i] : score[i];
        if (isnan(v)) continue;
        if (best < 0 || v > bv) best = i, bv = v;
    }
    return best;
}

/* the centered Gram matrix Kc = H X X^T H (H = I - 11^T/n) of X (n, d) into K (n, n) */
static void gram_centered(const double *X, int d, int n, double *K) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += X[(size_t)i * d + k] * X[(size_t)j * d + k];
            K[(size_t)i * n + j] = K[(size_t)j * n + i] = s;
        }
    double all = 0;
    for (size_t i = 0; i < (size_t)n * n; i++) all += K[i];
    all /= (double)n * n;
    for (int i = 0; i < n; i++) { // row means = column means (symmetric)
        double r = 0;
        for (int j = 0; j < n; j++) r += K[(size_t)i * n + j];
        K[(size_t)n * n + i] = r / n; // scratch row past the matrix
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) K[(size_t)i * n + j] += all - K[(size_t)n * n + i] - K[(size_t)n * n + j];
}

double cka_linear(const double *X, int dx, const double *Y, int dy, int n) {
    if (n < 2 || dx < 1 || dy < 1) return NAN;
    double *K = malloc(sizeof(double) * ((size_t)n * n + n)), *L = malloc(sizeof(double) * ((size_t)n * n + n));
    double r = NAN;
    if (K && L) {
        gram_centered(X, dx, n, K);
        gram_centered(Y, dy, n, L);
        double kl = 0, kk = 0, ll = 0;
        for (size_t i = 0; i < (size_t)n * n; i++) kl += K[i] * L[i], kk += K[i] * K[i], ll += L[i] * L[i];
        if (kk > 0 && ll > 0) r = kl / (sqrt(kk) * sqrt(ll));
    }
    free(K);
    free(L);
    return r;
}
