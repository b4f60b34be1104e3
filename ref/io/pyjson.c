/* pyjson.c — JSON in Python's json.dumps(indent=2, sort_keys=True) style (see pyjson.h). */
#include "pyjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void pj_raw(PjObj *o, const char *key, const char *val) {
    if (o->n >= PJ_MAX_FIELDS) {
        o->oom = 1;
        return;
    }
    size_t len = strlen(val) + 1;
    char *v = malloc(len);
    if (!v) {
        o->oom = 1;
        return;
    }
    memcpy(v, val, len);
    snprintf(o->f[o->n].key, sizeof o->f[0].key, "%s", key);
    o->f[o->n++].val = v;
}

void pj_free(PjObj *o) {
    for (int i = 0; i < o->n; i++) free(o->f[i].val);
    o->n = 0;
}

/* a field whose value was built in b (then freed) */
static void pj_take(PjObj *o, const char *key, afx_buf *b) {
    if (b->oom) o->oom = 1;
    else pj_raw(o, key, b->p);
    afx_buf_free(b);
}

void pj_str(PjObj *o, const char *key, const char *s) {
    if (!s) {
        pj_raw(o, key, "null");
        return;
    }
    afx_buf b = {0}; /* '"', '\' and control characters escaped; other bytes (UTF-8) as they are */
    afx_buf_put(&b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') afx_buf_printf(&b, "\\%c", *c);
        else if (*c == '\n') afx_buf_puts(&b, "\\n");
        else if (*c == '\t') afx_buf_puts(&b, "\\t");
        else if (*c == '\r') afx_buf_puts(&b, "\\r");
        else if (*c < 0x20) afx_buf_printf(&b, "\\u%04x", *c);
        else afx_buf_put(&b, c, 1);
    }
    afx_buf_put(&b, "\"", 1);
    pj_take(o, key, &b);
}

void pj_int(PjObj *o, const char *key, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    pj_raw(o, key, buf);
}

/* Python's repr of a float: the shortest digits that round-trip; fixed notation for exponents -4..15
 * (with ".0" when integral), otherwise d.ddde+XX */
static void py_float(char *out, size_t n, double x) {
    char buf[40], digits[24];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, x);
        if (strtod(buf, NULL) == x) break;
    }
    const char *s = buf;
    int neg = *s == '-', nd = 0;
    if (neg) s++;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    int ex = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    size_t k = (size_t)snprintf(out, n, "%s", neg ? "-" : "");
    if (ex >= -4 && ex < 16) {
        if (ex < 0) {
            k += (size_t)snprintf(out + k, n - k, "0.");
            for (int i = 0; i < -ex - 1; i++) k += (size_t)snprintf(out + k, n - k, "0");
            snprintf(out + k, n - k, "%s", digits);
        } else {
            for (int i = 0; i <= ex; i++) k += (size_t)snprintf(out + k, n - k, "%c", i < nd ? digits[i] : '0');
            snprintf(out + k, n - k, ".%s", nd > ex + 1 ? digits + ex + 1 : "0");
        }
    } else {
        k += (size_t)snprintf(out + k, n - k, "%c", digits[0]);
        if (nd > 1) k += (size_t)snprintf(out + k, n - k, ".%s", digits + 1);
        snprintf(out + k, n - k, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    }
}

void pj_float(PjObj *o, const char *key, double v) {
    char buf[48];
    py_float(buf, sizeof buf, v);
    pj_raw(o, key, buf);
}

void pj_number(PjObj *o, const char *key, double v) {
    if (v == floor(v) && fabs(v) < 1e15) pj_int(o, key, (long long)v);
    else pj_float(o, key, v);
}

/* a list at depth 1: "[", one item per line indented by 4, "  ]" */
void pj_list(PjObj *o, const char *key, const char *const *items, int n) {
    if (n == 0) {
        pj_raw(o, key, "[]");
        return;
    }
    afx_buf b = {0};
    afx_buf_puts(&b, "[\n");
    for (int i = 0; i < n; i++) afx_buf_printf(&b, "    %s%s\n", items[i], i + 1 < n ? "," : "");
    afx_buf_puts(&b, "  ]");
    pj_take(o, key, &b);
}

static int cmp_field(const void *a, const void *b) { return strcmp(((const PjField *)a)->key, ((const PjField *)b)->key); }

char *pj_render(PjObj *o, int indent) {
    if (o->oom) return NULL;
    qsort(o->f, (size_t)o->n, sizeof o->f[0], cmp_field);
    afx_buf b = {0};
    afx_buf_puts(&b, "{\n");
    for (int i = 0; i < o->n; i++) {
        afx_buf_printf(&b, "%*s\"%s\": ", indent + 2, "", o->f[i].key);
        for (const char *v = o->f[i].val; *v; v++) { /* nested lines move by indent */
            afx_buf_put(&b, v, 1);
            if (*v == '\n') afx_buf_printf(&b, "%*s", indent, "");
        }
        afx_buf_printf(&b, "%s\n", i + 1 < o->n ? "," : "");
    }
    afx_buf_printf(&b, "%*s}", indent, "");
    if (b.oom) {
        afx_buf_free(&b);
        return NULL;
    }
    return b.p;
}
