/* test_gemma3_logits.c — one logits dump of `affix generate --logits` against PEFT's on Gemma 3.
 *
 *   build/test_gemma3_logits JSON LANG DUMP [--tol REL]   (tests/test_gemma3.sh part 3)
 *   build/test_gemma3_logits --list JSON                  the prompts, one a line: lang TAB prompt
 *
 * JSON: tests/data/gemma3/peft_{prefix,lora,prompt}_logits.json (tools/oracle/make_gemma3_peft.py):
 * transformers' Gemma3ForCausalLM (float32, eager) with a PEFT adapter, the logits at the last
 * position of BOS + prompt: per prompt top-20 ids and values, max |logit|, argmax, and the logits at
 * 200 spread ids. DUMP: what `affix generate -m GGUF --adapter DIR -p PROMPT -n 1 --logits DUMP`
 * wrote for the prompt whose lang is LANG (V raw little-endian float32).
 *
 * Checks, each printed as one line ("  ok    ..." or "FAIL ..."):
 *   size       the dump holds exactly V float32 values, all finite
 *   top20 ids  affix's 20 largest logits, rank by rank, are HF's; at a rank where they differ the
 *              two ids must be a tie in HF's values (|difference| <= TIE = 1e-4), or the tie group
 *              reaches HF's 20th value (the other id may lie just beyond the list)
 *   top20      |affix - HF| <= TOL_REL * max|HF logit| at HF's top-20 ids
 *   spread     the same at the 200 spread ids
 *   max_abs    | max|affix| - max|HF| | <= TOL_REL * max|HF logit|
 * TOL_REL = 1.5e-5 (--tol overrides): about 10x the worst measured (1.3e-6 relative, float build,
 * avx512/blas and ref kernels; tests/data/gemma3/README.md). Ends with "N passed, M failed"; exits 1
 * on any failure, 2 on bad arguments or unreadable files.
 */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_REL 1.5e-5
#define TIE 1e-4
#define NTOP 20

static int n_pass, n_fail;

static void check(int ok, const char *name, const char *what, const char *detail) {
    if (ok) n_pass++;
    else n_fail++;
    printf("%s %s: %s%s%s\n", ok ? "  ok   " : "FAIL", name, what, detail && *detail ? " -- " : "", detail ? detail : "");
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *p = NULL;
    long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (n >= 0 && !fseek(f, 0, SEEK_SET) && (p = malloc((size_t)n + 1))) {
        if (fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        } else {
            p[n] = 0;
            *len = (size_t)n;
        }
    }
    fclose(f);
    return p;
}

/* a JSON array of numbers into out[0..n) (n = its size); -1 if not that */
static int json_nums(const cJSON *a, double *out, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return -1;
    int i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        if (!cJSON_IsNumber(v)) return -1;
        out[i] = v->valuedouble;
    }
    return 0;
}

static int list(const cJSON *doc, const char *path) {
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(doc, "prompts");
    if (!cJSON_IsArray(ps)) {
        fprintf(stderr, "%s: no prompts\n", path);
        return 2;
    }
    for (const cJSON *p = ps->child; p; p = p->next) {
        const cJSON *jl = cJSON_GetObjectItemCaseSensitive(p, "lang"), *jp = cJSON_GetObjectItemCaseSensitive(p, "prompt");
        if (!cJSON_IsString(jl) || !cJSON_IsString(jp) || strpbrk(jp->valuestring, "\t\n")) {
            fprintf(stderr, "%s: a prompt without lang or prompt (no tab or newline)\n", path);
            return 2;
        }
        printf("%s\t%s\n", jl->valuestring, jp->valuestring);
    }
    return 0;
}

static void check_dump(const cJSON *doc, const cJSON *p, const char *name, const float *x, int V, double tol) {
    char msg[512];
    double hv[NTOP], hid_d[NTOP], max_abs;
    int hid[NTOP];
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(p, "max_abs");
    const cJSON *jsi = cJSON_GetObjectItemCaseSensitive(doc, "spread_ids");
    const cJSON *jsv = cJSON_GetObjectItemCaseSensitive(p, "spread_values");
    int ns = cJSON_IsArray(jsi) ? cJSON_GetArraySize(jsi) : 0;
    double *si = malloc(sizeof(double) * (size_t)(ns ? ns : 1)), *sv = malloc(sizeof(double) * (size_t)(ns ? ns : 1));
    if (!si || !sv || json_nums(cJSON_GetObjectItemCaseSensitive(p, "top20_ids"), hid_d, NTOP) ||
        json_nums(cJSON_GetObjectItemCaseSensitive(p, "top20_values"), hv, NTOP) || !cJSON_IsNumber(jm) || !ns ||
        json_nums(jsi, si, ns) || json_nums(jsv, sv, ns)) {
        check(0, name, "reference", "the json lacks top20_ids/top20_values/max_abs/spread_ids/spread_values");
        free(si);
        free(sv);
        return;
    }
    max_abs = jm->valuedouble;
    double lim = tol * max_abs;
    for (int k = 0; k < NTOP; k++) hid[k] = (int)hid_d[k];

    // affix's top 20 (largest first; ties to the lower id, as torch.topk usually does)
    int top[NTOP];
    for (int k = 0; k < NTOP; k++) top[k] = -1;
    for (int i = 0; i < V; i++) {
        int k = NTOP;
        while (k > 0 && (top[k - 1] < 0 || x[i] > x[top[k - 1]])) k--;
        if (k == NTOP) continue;
        memmove(&top[k + 1], &top[k], sizeof(int) * (size_t)(NTOP - 1 - k));
        top[k] = i;
    }
    int ok = 1, n_tie = 0;
    msg[0] = 0;
    for (int k = 0; k < NTOP && ok; k++) {
        if (top[k] == hid[k]) continue;
        int j = 0;
        while (j < NTOP && hid[j] != top[k]) j++;
        if (j < NTOP ? fabs(hv[j] - hv[k]) <= TIE : hv[k] - hv[NTOP - 1] <= TIE) {
            n_tie++;
            continue;
        }
        ok = 0;
        snprintf(msg, sizeof msg, "rank %d: affix %d (%.6f), HF %d (%.6f)%s", k + 1, top[k], (double)x[top[k]], hid[k],
                 hv[k], j < NTOP ? "" : "; affix's id is not in HF's top 20");
    }
    if (ok) snprintf(msg, sizeof msg, "argmax %d%s", top[0], n_tie ? ", HF ties swapped" : "");
    check(ok, name, "top20 ids = HF's (ties within 1e-4 excepted)", msg);

    double worst = 0;
    int wi = -1;
    for (int k = 0; k < NTOP; k++) {
        double d = fabs((double)x[hid[k]] - hv[k]);
        if (d > worst || wi < 0) worst = d, wi = hid[k];
    }
    snprintf(msg, sizeof msg, "max |affix - HF| %.3g at id %d (%.3g of max|logit| %.4f; tolerance %.3g)", worst, wi,
             worst / max_abs, max_abs, tol);
    check(worst <= lim, name, "top20 values", msg);

    worst = 0, wi = -1;
    int bad_id = 0;
    for (int k = 0; k < ns; k++) {
        int id = (int)si[k];
        if (id < 0 || id >= V) {
            bad_id = 1;
            break;
        }
        double d = fabs((double)x[id] - sv[k]);
        if (d > worst || wi < 0) worst = d, wi = id;
    }
    if (bad_id) snprintf(msg, sizeof msg, "a spread id outside 0..%d", V - 1);
    else snprintf(msg, sizeof msg, "%d ids: max |affix - HF| %.3g at id %d (%.3g of max|logit|; tolerance %.3g)", ns,
                  worst, wi, worst / max_abs, tol);
    check(!bad_id && worst <= lim, name, "spread values", msg);

    double m = 0;
    for (int i = 0; i < V; i++) m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
    snprintf(msg, sizeof msg, "affix %.6f, HF %.6f", m, max_abs);
    check(fabs(m - max_abs) <= lim, name, "max |logit|", msg);
    free(si);
    free(sv);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--list")) {
        size_t n;
        char *js = (char *)read_all(argv[2], &n);
        cJSON *doc = js ? cJSON_Parse(js) : NULL;
        if (!doc) {
            fprintf(stderr, "%s: cannot read it as JSON (run from the repository root)\n", argv[2]);
            free(js);
            return 2;
        }
        int rc = list(doc, argv[2]);
        cJSON_Delete(doc);
        free(js);
        return rc;
    }
    double tol = TOL_REL;
    if (argc == 6 && !strcmp(argv[4], "--tol")) {
        char *end;
        tol = strtod(argv[5], &end);
        if (*end || !(tol > 0)) {
            fprintf(stderr, "--tol '%s' is not a positive number\n", argv[5]);
            return 2;
        }
    } else if (argc != 4) {
        fprintf(stderr, "usage: test_gemma3_logits JSON LANG DUMP [--tol REL]\n       test_gemma3_logits --list JSON\n");
        return 2;
    }
    const char *jpath = argv[1], *lang = argv[2], *dpath = argv[3];
    size_t jn, dn = 0;
    char *js = (char *)read_all(jpath, &jn);
    cJSON *doc = js ? cJSON_Parse(js) : NULL;
    if (!doc) {
        fprintf(stderr, "%s: cannot read it as JSON (run from the repository root)\n", jpath);
        free(js);
        return 2;
    }
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(doc, "vocab_size");
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(doc, "adapter");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(doc, "prompts"), *p = NULL;
    for (const cJSON *q = cJSON_IsArray(ps) ? ps->child : NULL; q && !p; q = q->next) {
        const cJSON *jl = cJSON_GetObjectItemCaseSensitive(q, "lang");
        if (cJSON_IsString(jl) && !strcmp(jl->valuestring, lang)) p = q;
    }
    if (!cJSON_IsNumber(jv) || jv->valueint <= 0 || !p) {
        fprintf(stderr, "%s: %s\n", jpath, p ? "no vocab_size" : "no prompt with that lang");
        cJSON_Delete(doc);
        free(js);
        return 2;
    }
    int V = jv->valueint;
    char name[128];
    snprintf(name, sizeof name, "%s %s", cJSON_IsString(ja) ? ja->valuestring : jpath, lang);
    unsigned char *raw = read_all(dpath, &dn);
    float *x = malloc(sizeof(float) * (size_t)V);
    char msg[512];
    int ok = raw && x && dn == (size_t)V * 4;
    if (ok)
        for (int i = 0; i < V; i++) { // little-endian float32, whatever this machine's order
            uint32_t u = 0;
            for (int k = 0; k < 4; k++) u |= (uint32_t)raw[4 * (size_t)i + k] << (8 * k);
            memcpy(&x[i], &u, 4);
            if (!isfinite(x[i])) {
                ok = 0;
                snprintf(msg, sizeof msg, "%s: value %d is not finite", dpath, i);
                break;
            }
        }
    if (!raw) snprintf(msg, sizeof msg, "%s: cannot read it", dpath);
    else if (!x) snprintf(msg, sizeof msg, "out of memory");
    else if (dn != (size_t)V * 4) snprintf(msg, sizeof msg, "%s: %zu bytes, want %d (V = %d float32)", dpath, dn, V * 4, V);
    else if (ok) snprintf(msg, sizeof msg, "%d float32", V);
    check(ok, name, "dump", msg);
    if (ok) check_dump(doc, p, name, x, V, tol);
    free(x);
    free(raw);
    cJSON_Delete(doc);
    free(js);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
