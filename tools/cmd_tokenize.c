/* cmd_tokenize.c — affix tokenize -m MODEL_OR_TOKENIZER [--no-bos] [--decode [--skip-special]]
 *
 * Encode: reads UTF-8 text on stdin (all of it, newlines included: `printf 'Hello'`, not `echo`,
 * for a text without one) and prints its token ids on one line, space-separated; BOS (the
 * tokenizer's template) unless --no-bos. Decode: reads ids (whitespace-separated) on stdin and
 * prints the text exactly, with no newline added, so that encode --no-bos | decode gives back the
 * input. MODEL_OR_TOKENIZER: an HF model directory, a tokenizer.json, a tiktoken tokenizer.model or
 * a .gguf file.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenizer.h"

static int usage(void) {
    fprintf(stderr, "usage: affix tokenize -m MODEL_OR_TOKENIZER [--no-bos] [--decode [--skip-special]] < input\n");
    return 2;
}

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap + 1);
    while (p) {
        n += fread(p + n, 1, cap - n, stdin);
        if (n < cap) break;
        char *q = realloc(p, 2 * cap + 1);
        if (!q) free(p);
        p = q, cap *= 2;
    }
    if (p && ferror(stdin)) {
        free(p);
        return NULL;
    }
    if (p) p[n] = 0;
    *len = n;
    return p;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int bos = 1, decode = 0, skip = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage();
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (i + 1 >= argc) { fprintf(stderr, "affix: error: tokenize: %s needs a value\n", argv[i]); return 2; }
            model = argv[++i];
        } else if (!strncmp(argv[i], "--model=", 8)) model = argv[i] + 8;
        else if (!strcmp(argv[i], "--no-bos")) bos = 0;
        else if (!strcmp(argv[i], "--decode")) decode = 1;
        else if (!strcmp(argv[i], "--skip-special")) skip = 1;
        else {
            fprintf(stderr, "affix: error: tokenize: unknown option '%s' (see affix tokenize --help)\n", argv[i]);
            return 2;
        }
    }
    if (!model) return usage();
    afx_err e;
    Tokenizer *t;
    if (tokenizer_load(&t, model, &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        return 1;
    }
    size_t len;
    char *in = read_stdin(&len);
    if (!in) {
        fprintf(stderr, "affix: error: tokenize: cannot read stdin\n");
        tokenizer_free(t);
        return 1;
    }
    int rc = 0;
    if (!decode) {
        int *ids, n;
        if (tokenizer_encode(t, in, len, bos, &ids, &n, &e)) {
            fprintf(stderr, "affix: error: %s\n", e.msg);
            rc = 1;
        } else {
            for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            printf("\n");
            free(ids);
        }
    } else {
        int n = 0, cap = 256;
        int *ids = malloc((size_t)cap * sizeof *ids);
        char *p = in, *end;
        while (ids && !rc) {
            while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
            if (!*p) break;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < 0 || v > INT_MAX || (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')) {
                int w = (int)strcspn(p, " \t\r\n");
                fprintf(stderr, "affix: error: tokenize --decode: '%.*s' is not a token id\n", w > 20 ? 20 : w, p);
                rc = 1;
                break;
            }
            if (n == cap) {
                int *q = realloc(ids, (size_t)(cap *= 2) * sizeof *q);
                if (!q) free(ids);
                ids = q;
                if (!ids) break;
            }
            ids[n++] = (int)v;
            p = end;
        }
        if (!ids) {
            fprintf(stderr, "affix: error: out of memory\n");
            rc = 1;
        }
        char *text;
        size_t tlen;
        if (!rc && tokenizer_decode(t, ids, n, skip, &text, &tlen, &e)) {
            fprintf(stderr, "affix: error: %s\n", e.msg);
            rc = 1;
        } else if (!rc) {
            fwrite(text, 1, tlen, stdout);
            free(text);
        }
        free(ids);
    }
    free(in);
    tokenizer_free(t);
    if (fflush(stdout)) {
        fprintf(stderr, "affix: error: tokenize: cannot write the output\n");
        return 1;
    }
    return rc;
}
