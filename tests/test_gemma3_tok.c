/* test_gemma3_tok.c — affix's tokenizer of the Gemma 3 GGUF against Hugging Face, id for id.
 *
 *   build/test_gemma3_tok GGUF [VECTORS [GREEDY]]   (tests/test_gemma3.sh; make test-gemma3)
 *   build/test_gemma3_tok --list-greedy [GREEDY]     the prompts for tests/test_gemma3.sh, one a line:
 *                                                    lang TAB prompt TAB expected ids TAB top-2 gaps
 *
 * GGUF: gemma-3-270m-q4_k_m.gguf as tools/fetch_gemma3.sh puts it in the cache (not in the
 * repository: Gemma Terms of Use). VECTORS (default tests/data/gemma3/tokenizer.json, made by
 * tools/oracle/make_gemma3_vectors.py with transformers' GGUF tokenizer): for every text, encode
 * with BOS must give exactly HF's ids, and decode(ids) / decode(ids, skip_special) HF's strings.
 * GREEDY (default tests/data/gemma3/greedy.json, same script): each prompt must encode to HF's
 * prompt ids (the generation itself is tests/test_gemma3.sh's, through affix generate).
 * The tokenizer is read with tokenizer_load (the GGUF's tokenizer.ggml.* only), so this runs whether
 * or not the model loader knows the architecture. Prints one line per failure and ends with
 * "N passed, M failed"; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static int n_pass, n_fail;

static void check(int ok, const char *name, const char *what, const char *detail) {
    if (ok) {
        n_pass++;
        return;
    }
    n_fail++;
    printf("FAIL %s: %s%s%s\n", name, what, detail && *detail ? " -- " : "", detail ? detail : "");
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *p = NULL;
    long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (n >= 0 && !fseek(f, 0, SEEK_SET) && (p = malloc((size_t)n + 1))) {
        if (fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        } else {
            p[n] = 0;
        }
    }
    fclose(f);
    return p;
}

/* ids of a JSON array into *out (malloc'd); -1 if not an array of integers */
static int json_ids(const cJSON *a, int **out, int *n) {
    *out = NULL, *n = 0;
    if (!cJSON_IsArray(a)) return -1;
    int k = cJSON_GetArraySize(a);
    int *p = malloc((size_t)(k ? k : 1) * sizeof *p);
    if (!p) return -1;
    int i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        if (!cJSON_IsNumber(v)) {
            free(p);
            return -1;
        }
        p[i] = v->valueint;
    }
    *out = p, *n = k;
    return 0;
}

/* "at i: got [... g ...] want [... w ...]" around the first difference */
static void diff_ids(char *buf, size_t cap, const int *got, int ng, const int *want, int nw) {
    int i = 0;
    while (i < ng && i < nw && got[i] == want[i]) i++;
    size_t o = (size_t)snprintf(buf, cap, "%d ids, want %d; first difference at %d: got", ng, nw, i);
    for (int k = i; k < ng && k < i + 6 && o < cap; k++) o += (size_t)snprintf(buf + o, cap - o, " %d", got[k]);
    if (o < cap) o += (size_t)snprintf(buf + o, cap - o, " want");
    for (int k = i; k < nw && k < i + 6 && o < cap; k++) o += (size_t)snprintf(buf + o, cap - o, " %d", want[k]);
}

static void check_decode(const Tokenizer *t, const char *name, const int *ids, int n, int skip, const char *want) {
    char *text = NULL, msg[512];
    size_t len = 0;
    afx_err e;
    if (tokenizer_decode(t, ids, n, skip, &text, &len, &e)) {
        check(0, name, skip ? "decode(skip_special)" : "decode", e.msg);
        return;
    }
    int ok = len == strlen(want) && !memcmp(text, want, len);
    if (!ok) snprintf(msg, sizeof msg, "got '%.*s' want '%.*s'", (int)(len > 120 ? 120 : len), text, 120, want);
    check(ok, name, skip ? "decode(skip_special) = HF" : "decode = HF", ok ? NULL : msg);
    free(text);
}

/* --list-greedy: the prompts, tab-separated; the expected ids without a final EOS (HF's generate
 * keeps the EOS it stops at, affix generate does not print it) */
static int list_greedy(const char *path) {
    char *js = read_file(path);
    cJSON *doc = js ? cJSON_Parse(js) : NULL;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(doc, "prompts");
    const cJSON *gc = cJSON_GetObjectItemCaseSensitive(doc, "generation_config");
    const cJSON *je = cJSON_GetObjectItemCaseSensitive(gc, "eos_token_id");
    int eos = cJSON_IsNumber(je) ? je->valueint : 1, rc = 0;
    if (!cJSON_IsArray(ps)) {
        fprintf(stderr, "%s: cannot read the prompts (run from the repository root)\n", path);
        rc = 1;
    }
    for (const cJSON *p = ps ? ps->child : NULL; p && !rc; p = p->next) {
        const cJSON *jl = cJSON_GetObjectItemCaseSensitive(p, "lang"), *jp = cJSON_GetObjectItemCaseSensitive(p, "prompt");
        const cJSON *jg = cJSON_GetObjectItemCaseSensitive(p, "step_top2_gap");
        int *ids, n;
        if (!cJSON_IsString(jl) || !cJSON_IsString(jp) || strpbrk(jp->valuestring, "\t\n") ||
            json_ids(cJSON_GetObjectItemCaseSensitive(p, "generated_ids"), &ids, &n)) {
            fprintf(stderr, "%s: a prompt without lang, prompt (no tab or newline) or generated_ids\n", path);
            rc = 1;
            break;
        }
        if (n > 0 && ids[n - 1] == eos) n--;
        printf("%s\t%s\t", jl->valuestring, jp->valuestring);
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\t");
        int i = 0;
        for (const cJSON *g = cJSON_IsArray(jg) ? jg->child : NULL; g && i < n; g = g->next, i++)
            printf(i ? " %.3g" : "%.3g", cJSON_IsNumber(g) ? g->valuedouble : -1.0);
        printf("\n");
        free(ids);
    }
    cJSON_Delete(doc);
    free(js);
    return rc;
}

static void check_prompts(const Tokenizer *t, const char *path) {
    char *js = read_file(path);
    cJSON *doc = js ? cJSON_Parse(js) : NULL;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(doc, "prompts");
    int n_ok = 0, n_all = 0;
    if (!cJSON_IsArray(ps)) check(0, path, "readable, with prompts", NULL);
    for (const cJSON *p = ps ? ps->child : NULL; p; p = p->next, n_all++) {
        const cJSON *jl = cJSON_GetObjectItemCaseSensitive(p, "lang"), *jp = cJSON_GetObjectItemCaseSensitive(p, "prompt");
        const char *name = cJSON_IsString(jl) ? jl->valuestring : "?";
        int *want, nw, *got, ng;
        char msg[512];
        afx_err e;
        if (!cJSON_IsString(jp) || json_ids(cJSON_GetObjectItemCaseSensitive(p, "prompt_ids"), &want, &nw)) {
            check(0, name, "a prompt has prompt and prompt_ids", NULL);
            continue;
        }
        if (tokenizer_encode(t, jp->valuestring, strlen(jp->valuestring), 1, &got, &ng, &e)) {
            check(0, name, "encode(prompt)", e.msg);
        } else {
            int ok = ng == nw && !memcmp(got, want, (size_t)nw * sizeof *got);
            if (!ok) diff_ids(msg, sizeof msg, got, ng, want, nw);
            check(ok, name, "encode(prompt) = HF prompt_ids", ok ? NULL : msg);
            n_ok += ok;
            free(got);
        }
        free(want);
    }
    printf("gemma3 greedy prompts (%s): %d/%d encode to HF's prompt ids\n", path, n_ok, n_all);
    cJSON_Delete(doc);
    free(js);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--list-greedy"))
        return list_greedy(argc > 2 ? argv[2] : "tests/data/gemma3/greedy.json");
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: test_gemma3_tok GEMMA3.gguf [tests/data/gemma3/tokenizer.json [tests/data/gemma3/greedy.json]]\n"
                        "       test_gemma3_tok --list-greedy [tests/data/gemma3/greedy.json]\n");
        printf("0 passed, 1 failed\n");
        return 2;
    }
    const char *gguf = argv[1], *vec = argc > 2 ? argv[2] : "tests/data/gemma3/tokenizer.json";
    const char *greedy = argc > 3 ? argv[3] : "tests/data/gemma3/greedy.json";
    char *js = read_file(vec);
    cJSON *doc = js ? cJSON_Parse(js) : NULL;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    if (!cJSON_IsArray(cases)) {
        printf("%s: cannot read the vectors (run from the repository root)\n0 passed, 1 failed\n", vec);
        return 1;
    }
    afx_err e;
    Tokenizer *t;
    if (tokenizer_load(&t, gguf, &e)) {
        printf("FAIL tokenizer_load: %s\n0 passed, 1 failed\n", e.msg);
        return 1;
    }
    check(tokenizer_vocab_size(t) == 262144, "tokenizer", "vocab size 262144", NULL);
    check(tokenizer_bos(t) == 2 && tokenizer_eos(t) == 1 && tokenizer_adds_bos(t), "tokenizer", "BOS 2, EOS 1, adds BOS", NULL);
    /* the respelled space runs: ordinary vocabulary under their "▁" spelling */
    check(tokenizer_token_id(t, "\xE2\x96\x81\xE2\x96\x81") == 138 && tokenizer_token_id(t, "  ") == -1 && !tokenizer_is_special(t, 138),
          "tokenizer", "id 138 is \"\xE2\x96\x81\xE2\x96\x81\" (not \"  \"), not special", NULL);

    int *want = NULL, nw = 0;
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(doc, "bos_ids");
    if (json_ids(bos, &want, &nw) == 0) {
        int *got, ng;
        if (tokenizer_encode(t, "", 0, 1, &got, &ng, &e) == 0) {
            check(ng == nw && !memcmp(got, want, (size_t)nw * sizeof *got), "bos_ids", "encode(\"\") = HF", NULL);
            free(got);
        } else {
            check(0, "bos_ids", "encode(\"\")", e.msg);
        }
    } else {
        check(0, "bos_ids", "bos_ids is an array of ids", NULL);
    }
    free(want);
    char *bos_text = NULL;
    size_t bos_len = 0;
    {
        int b = tokenizer_bos(t);
        if (tokenizer_decode(t, &b, 1, 0, &bos_text, &bos_len, &e)) bos_text = NULL;
    }

    int n_cases = 0, n_ids = 0, ok_cases = 0;
    for (const cJSON *c = cases->child; c; c = c->next, n_cases++) {
        const cJSON *jn = cJSON_GetObjectItemCaseSensitive(c, "name"), *jt = cJSON_GetObjectItemCaseSensitive(c, "text");
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(c, "decoded"), *js2 = cJSON_GetObjectItemCaseSensitive(c, "decoded_skip");
        const char *name = cJSON_IsString(jn) ? jn->valuestring : "?";
        if (!cJSON_IsString(jt) || json_ids(cJSON_GetObjectItemCaseSensitive(c, "ids"), &want, &nw)) {
            check(0, name, "a case has text and ids", NULL);
            continue;
        }
        const char *text = jt->valuestring;
        int *got = NULL, ng = 0, fails = n_fail;
        char msg[512];
        if (tokenizer_encode(t, text, strlen(text), 1, &got, &ng, &e)) {
            check(0, name, "encode", e.msg);
        } else {
            int ok = ng == nw && !memcmp(got, want, (size_t)nw * sizeof *got);
            if (!ok) diff_ids(msg, sizeof msg, got, ng, want, nw);
            check(ok, name, "encode = HF", ok ? NULL : msg);
        }
        /* decode HF's ids (absent strings: "<bos>" + text, and text) */
        size_t tl = strlen(text);
        char *dflt = malloc(bos_len + tl + 1);
        if (dflt && bos_text) {
            memcpy(dflt, bos_text, bos_len), memcpy(dflt + bos_len, text, tl + 1);
            check_decode(t, name, want, nw, 0, cJSON_IsString(jd) ? jd->valuestring : dflt);
        } else {
            check(0, name, "decode of BOS", NULL);
        }
        check_decode(t, name, want, nw, 1, cJSON_IsString(js2) ? js2->valuestring : text);
        free(dflt);
        ok_cases += n_fail == fails;
        n_ids += nw;
        free(got), free(want);
        want = NULL;
    }
    printf("gemma3 tokenizer vs HF (%s): %d/%d texts identical (%d ids; encode with BOS, decode, decode skip_special)\n",
           vec, ok_cases, n_cases, n_ids);
    check_prompts(t, greedy);
    free(bos_text);
    tokenizer_free(t);
    cJSON_Delete(doc);
    free(js);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
