/* json_read.c — Python's reading of JSON on top of cJSON (json_read.h). */
#include "json_read.h"

#include <stdlib.h>
#include <string.h>

int afx_json_refuse_nul_escape(const char *buf, size_t len, const char *name, afx_err *e) {
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (!in_str) {
            if (c == '"') in_str = 1;
            continue;
        }
        if (c == '"') {
            in_str = 0;
        } else if (c == '\\' && i + 1 < len) {
            if (buf[i + 1] == 'u' && i + 5 < len && !memcmp(buf + i + 2, "0000", 4))
                return afx_fail(e, "%s: byte %zu: a \\u0000 escape (a NUL character in a string, which affix cannot hold)",
                                name, i);
            i++; // the escaped character (\" does not end the string)
        }
    }
    return 0;
}

typedef struct {
    const char *key;
    size_t order;
    cJSON *item;
} Member;

static int member_cmp(const void *a, const void *b) {
    const Member *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

size_t afx_json_last_wins(cJSON *node) {
    size_t dropped = 0;
    if (!node) return 0;
    for (cJSON *c = node->child; c; c = c->next) dropped += afx_json_last_wins(c);
    if (!cJSON_IsObject(node)) return dropped;
    size_t n = 0;
    for (cJSON *c = node->child; c; c = c->next) n++;
    if (n < 2) return dropped;
    Member *m = malloc(sizeof *m * n);
    if (!m) return dropped; // (without memory the first value stays: cJSON's reading)
    size_t k = 0;
    for (cJSON *c = node->child; c; c = c->next, k++) m[k] = (Member){c->string ? c->string : "", k, c};
    qsort(m, n, sizeof *m, member_cmp);
    for (size_t i = 0; i + 1 < n; i++)
        if (!strcmp(m[i].key, m[i + 1].key)) { // a later member has this key: this one goes
            cJSON_Delete(cJSON_DetachItemViaPointer(node, m[i].item));
            dropped++;
        }
    free(m);
    return dropped;
}
