/* predictions.c — predictions.jsonl read back (predictions.h). */
#define _POSIX_C_SOURCE 200809L
#include "predictions.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_read.h"

/* by (lang, id), then file order: the first line of a repeated (lang, id) sorts first */
static int pred_cmp(const void *a, const void *b) {
    const Prediction *x = a, *y = b;
    int c = strcmp(x->lang, y->lang);
    if (!c) c = strcmp(x->id, y->id);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

void pred_set_free(PredSet *s) {
    for (size_t i = 0; i < s->n; i++) free(s->p[i].id), free(s->p[i].pred);
    free(s->p);
    s->p = NULL, s->n = 0;
}

int pred_set_read(PredSet *s, const char *buf, size_t len, const char *name, afx_err *e) {
    s->p = NULL, s->n = 0;
    size_t cap = 0, at = 0;
    long lineno = 0;
    while (at < len) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - buf) : len, n = end - at;
        lineno++;
        const char *line = buf + at;
        at = end + 1;
        char label[4200];
        snprintf(label, sizeof label, "%s:%ld", name, lineno);
        if (memchr(line, 0, n)) {
            pred_set_free(s);
            return afx_fail(e, "%s: a NUL byte in a prediction line", label);
        }
        if (afx_json_refuse_nul_escape(line, n, label, e)) { pred_set_free(s); return -1; }
        cJSON *j = cJSON_ParseWithLength(line, n);
        const cJSON *jl = cJSON_GetObjectItemCaseSensitive(j, "lang"), *ji = cJSON_GetObjectItemCaseSensitive(j, "id");
        const cJSON *jp = cJSON_GetObjectItemCaseSensitive(j, "prediction");
        if (!cJSON_IsString(jl) || !cJSON_IsString(ji) || !cJSON_IsString(jp)) {
            cJSON_Delete(j);
            pred_set_free(s);
            return afx_fail(e, "%s:%ld: not a prediction line ({\"lang\", \"id\", \"prediction\"})", name, lineno);
        }
        if (s->n == cap) {
            cap = cap ? 2 * cap : 1024;
            Prediction *p2 = realloc(s->p, sizeof *p2 * cap);
            if (!p2) { cJSON_Delete(j); pred_set_free(s); return afx_fail(e, "%s: out of memory", name); }
            s->p = p2;
        }
        Prediction *p = &s->p[s->n];
        snprintf(p->lang, sizeof p->lang, "%s", jl->valuestring);
        p->id = strdup(ji->valuestring);
        p->pred = strdup(jp->valuestring);
        p->order = s->n;
        cJSON_Delete(j);
        if (!p->id || !p->pred) {
            free(p->id), free(p->pred);
            pred_set_free(s);
            return afx_fail(e, "%s: out of memory", name);
        }
        s->n++;
    }
    if (s->n) qsort(s->p, s->n, sizeof *s->p, pred_cmp);
    return 0;
}

const Prediction *pred_set_find(const PredSet *s, const char *lang, const char *id) {
    size_t lo = 0, hi = s->n; /* the first entry >= (lang, id) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->p[mid].lang, lang);
        if (!c) c = strcmp(s->p[mid].id, id);
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n && !strcmp(s->p[lo].lang, lang) && !strcmp(s->p[lo].id, id) ? &s->p[lo] : NULL;
}
