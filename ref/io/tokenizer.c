/* tokenizer.c — tokenizer_load: which loader reads a path (tokenizer.h).
 *
 * What this is: the dispatch by directory contents, magic bytes and name to the loaders
 * (tok_loaders.h), each of which builds through tok_build.c; nothing builds back into here.
 * What this is not: a loader itself, or encode/decode (tok_encode.c, tok_decode.c).
 */
#define _POSIX_C_SOURCE 200809L

#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"
#include "tok_loaders.h"

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
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
        if (afx_is_file(p)) rc = tok_load_json(t, p, e);
        else {
            snprintf(p, n + 32, "%s/tokenizer.model", path);
            rc = afx_is_file(p) ? tok_load_tiktoken(t, p, e)
                                : afx_fail(e, "%s: no tokenizer.json or tokenizer.model in this directory", path);
        }
        free(p);
        return rc;
    }
    FILE *f = afx_fopen_regular(path, e); /* a FIFO or device is refused, never waited on */
    if (!f) return -1;
    unsigned char head[4] = {0};
    size_t got = fread(head, 1, 4, f);
    fclose(f);
    if (got == 4 && !memcmp(head, "GGUF", 4)) return tok_load_gguf_path(t, path, e);
    if (has_suffix(path, ".json") || (got >= 1 && head[0] == '{')) return tok_load_json(t, path, e);
    return tok_load_tiktoken(t, path, e);
}
