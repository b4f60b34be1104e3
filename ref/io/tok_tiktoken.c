/* tok_tiktoken.c — a Tokenizer from a tiktoken rank file (Meta's Llama 3 tokenizer.model).
 *
 * The file: one line per token, "base64(token bytes) rank", the rank being the token id. tiktoken
 * encodes a piece by merging, again and again, the adjacent pair whose concatenation has the lowest
 * rank (leftmost on ties), after taking the whole piece if it is a token. Here that becomes the
 * common pipeline: vocabulary keys are the bytes mapped through GPT-2's bytes_to_unicode (as HF's
 * TikTokenConverter does), merges (l, r) -> l+r with priority rank(l+r), ignore_merges, the Llama 3
 * pre-tokenizer regex, ByteLevel, and Llama 3's 256 special tokens 128000.. (not in the file; from
 * Meta's llama/tokenizer.py) with BOS <|begin_of_text|> prepended as HF's Llama 3 tokenizer does.
 * What this is not: a reader for other tiktoken vocabularies (their regexes and special tokens are
 * not in the file): any rank count other than Llama 3's 128000 is refused.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "files.h"
#include "tok_internal.h"
#include "tok_loaders.h"
#include "utf8.h"

#define LLAMA3_RANKS 128000
#define LLAMA3_SPECIALS 256

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* strict base64 (padded to a multiple of 4) -> out (at least 3*n/4 bytes); returns the length or -1 */
static long b64decode(const char *s, size_t n, unsigned char *out) {
    if (n == 0 || n % 4) return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0, pad++;
            } else {
                if (pad) return -1; /* data after '=' */
                if ((v[k] = b64val(c)) < 0) return -1;
            }
        }
        unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (unsigned char)(x >> 16);
        if (pad < 2) out[o++] = (unsigned char)(x >> 8);
        if (pad < 1) out[o++] = (unsigned char)x;
    }
    return o;
}

static int add_llama3_specials(Tokenizer *t, afx_err *e) {
    char name[64];
    for (int k = 0; k < LLAMA3_SPECIALS; k++) {
        /* 128000 begin_of_text, 128001 end_of_text, 128002..5 reserved 0..3, 128006 start_header_id,
         * 128007 end_header_id, 128008 reserved 4, 128009 eot_id, 128010.. reserved 5..250 */
        static const char *const fixed[] = {"<|begin_of_text|>", "<|end_of_text|>", NULL, NULL, NULL, NULL,
                                            "<|start_header_id|>", "<|end_header_id|>", NULL, "<|eot_id|>"};
        if (k < 10 && fixed[k]) snprintf(name, sizeof name, "%s", fixed[k]);
        else snprintf(name, sizeof name, "<|reserved_special_token_%d|>", k < 6 ? k - 2 : k == 8 ? 4 : k - 5);
        if (tok_add_added(t, LLAMA3_RANKS + k, name, strlen(name), 1, 0, 0, e)) return -1;
    }
    return 0;
}

static int load_stream(Tokenizer **out, FILE *f, const char *path, afx_err *e);

int tok_load_tiktoken(Tokenizer **out, const char *path, afx_err *e) {
    *out = NULL;
    FILE *f = afx_fopen_regular(path, e);
    return f ? load_stream(out, f, path, e) : -1;
}

int tokenizer_from_tiktoken(Tokenizer **out, const char *buf, size_t len, const char *label, afx_err *e) {
    *out = NULL;
    if (len == 0) return afx_fail(e, "%s: empty: not a tiktoken rank file", label);
    FILE *f = fmemopen((void *)(uintptr_t)buf, len, "r"); // read only: the cast drops const for the API
    if (!f) return afx_fail(e, "%s: cannot read the buffer", label);
    return load_stream(out, f, label, e);
}

/* the rank file read from f (closed here), labelled path */
static int load_stream(Tokenizer **out, FILE *f, const char *path, afx_err *e) {
    Tokenizer *t = tok_new(path, e);
    char *line = NULL, *mapped = NULL;
    unsigned char *raw = NULL;
    size_t cap = 0, mcap = 0;
    double *prio = NULL;
    long lineno = 0, n = 0;
    int rc = -1;
    if (!t) goto done;
    tok_limit_ids(t, (long long)LLAMA3_RANKS + LLAMA3_SPECIALS);
    int c0 = fgetc(f);
    if (c0 != EOF && c0 < 0x20) {
        afx_fail(e, "%s: binary data: not a tiktoken rank file (a SentencePiece .model? use tokenizer.json or GGUF)", path);
        goto done;
    }
    if (c0 != EOF) ungetc(c0, f);
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        size_t len = (size_t)got;
        if (line[len - 1] == '\n') len--;
        if (len == 0) continue; /* a blank line (trailing) */
        char *sp = memchr(line, ' ', len);
        if (!sp || sp == line || sp + 1 == line + len) {
            afx_fail(e, "%s: line %ld: expected 'base64 rank'", path, lineno);
            goto done;
        }
        size_t nb = (size_t)(sp - line);
        long rank = 0;
        for (char *p = sp + 1; p < line + len; p++) {
            if (*p < '0' || *p > '9' || rank > 100000000) {
                afx_fail(e, "%s: line %ld: the rank '%.*s' is not a number", path, lineno, (int)(line + len - sp - 1 > 20 ? 20 : line + len - sp - 1), sp + 1);
                goto done;
            }
            rank = rank * 10 + (*p - '0');
        }
        if (rank >= LLAMA3_RANKS) {
            afx_fail(e, "%s: line %ld: rank %ld is beyond Llama 3's %d ranks", path, lineno, rank, LLAMA3_RANKS);
            goto done;
        }
        if (mcap < nb * 2 + 8) {
            mcap = nb * 2 + 8;
            unsigned char *r = realloc(raw, mcap);
            if (r) raw = r;
            char *m = realloc(mapped, mcap);
            if (m) mapped = m;
            if (!r || !m) {
                afx_fail(e, "%s: out of memory", path);
                goto done;
            }
        }
        long nr = b64decode(line, nb, raw);
        if (nr <= 0) {
            afx_fail(e, "%s: line %ld: '%.*s' is not base64", path, lineno, (int)(nb > 40 ? 40 : nb), line);
            goto done;
        }
        size_t nm = 0;
        for (long i = 0; i < nr; i++) nm += utf8_put(mapped + nm, tok_byte_to_cp(raw[i]));
        if (t->n_ids > rank && (t->attr[rank] & TOK_ATTR_PRESENT)) {
            afx_fail(e, "%s: line %ld: rank %ld appears twice", path, lineno, rank);
            goto done;
        }
        if (tok_add_vocab(t, (int)rank, mapped, nm, e)) {
            afx_annotate(e, " (line %ld)", lineno);
            goto done;
        }
        n++;
    }
    if (ferror(f)) {
        afx_fail(e, "%s: read error", path);
        goto done;
    }
    if (n != LLAMA3_RANKS) {
        afx_fail(e, "%s: %ld ranks; only Llama 3's tiktoken file (%d ranks) is known (its regex and special tokens are not in the file)",
                 path, n, LLAMA3_RANKS);
        goto done;
    }
    /* merges: pair (l, r) -> l+r, lowest rank first */
    if (!(prio = malloc(LLAMA3_RANKS * sizeof *prio))) {
        afx_fail(e, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < LLAMA3_RANKS; i++) prio[i] = i;
    t->ignore_merges = 1;
    int bos = LLAMA3_RANKS;
    TokDec d = {.kind = TOK_DEC_BYTELEVEL, .a = "", .b = ""};
    if (tok_merges_from_vocab(t, prio, NULL, e) || add_llama3_specials(t, e) ||
        tok_push_split(t, TOK_LLAMA3_REGEX, strlen(TOK_LLAMA3_REGEX), 1, TOK_SPLIT_ISOLATED, 0, e) ||
        tok_push_bytelevel(t, 0, 0, e) || tok_push_dec(t, &d, e) || tok_set_template(t, &bos, 1, NULL, 0, e))
        goto done;
    t->bos = LLAMA3_RANKS, t->eos = LLAMA3_RANKS + 1;
    if (tok_finish(t, e)) goto done;
    *out = t, t = NULL;
    rc = 0;
done:
    fclose(f);
    free(line), free(raw), free(mapped), free(prio);
    tokenizer_free(t);
    return rc;
}
