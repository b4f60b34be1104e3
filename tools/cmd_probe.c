/* cmd_probe.c — affix probe: do the layers keep language-agnostic representations?
 *
 *   affix probe -m MODEL [--adapter DIR] --task xnli|xquad --data FILE... [--sample N] [--limit N]
 *               [--seq-len N] [--out DIR] [--quiet]
 *   affix probe -m MODEL --compare A B --task ... --data ...      (A, B: adapter directories or "base")
 *
 * The files are parallel across languages (XNLI test rows, XQuAD paragraphs), one of them English.
 * For each text (the NLI premise, the XQuAD context; the same rows in every language) the model
 * runs once, as at inference (with the adapter's virtual tokens or prefix), and the residual stream
 * is mean-pooled over the text's real tokens (BOS and virtual tokens excluded) at every depth:
 * layer 0 = the scaled embeddings, layer l = the output of block l (no final norm). Per layer and
 * language, linear CKA (ref/tasks/metrics.h) between the English texts' pooled states and that
 * language's: 1 = the same geometry, up to rotation and scale. Output: a table (layers x languages),
 * OUT/results.json, OUT/cka.svg (a heat map); --compare prints and draws B - A.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "adapter.h"
#include "buf.h"
#include "cli.h"
#include "data.h"
#include "decode.h"
#include "files.h"
#include "hooks.h"
#include "kernels_simd.h"
#include "metrics.h"
#include "model.h"
#include "peft.h"
#include "report.h"
#include "st_write.h"
#include "tokenizer.h"

#define MAX_FILES 32

typedef struct {
    const char *model, *adapter[2], *task, *out, *files[MAX_FILES], *weights;
    int n_files, n_cfg, limit, sample, seq_len, quiet;
} ProbeOpts;

static int usage(void) {
    fprintf(stderr, "usage: affix probe -m MODEL [--adapter DIR | --compare A B] --task xnli|xquad --data FILE...\n"
                    "                   [--sample N] [--limit N] [--seq-len N] [--weights file|f32] [--out DIR] [--quiet]\n"
                    "  A, B: adapter directories, or \"base\" for the model without one\n");
    return 2;
}

static int parse(ProbeOpts *o, int argc, char **argv) {
    *o = (ProbeOpts){.seq_len = 512, .task = "xnli", .n_cfg = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--data")) {
            if (cli_take_files(argc, argv, &i, o->files, &o->n_files, MAX_FILES)) return 2;
            continue;
        }
        if (!strcmp(a, "--compare")) {
            if (i + 2 >= argc) { fprintf(stderr, "affix: error: --compare needs two adapters (or base)\n"); return 2; }
            o->adapter[0] = strcmp(argv[i + 1], "base") ? argv[i + 1] : NULL;
            o->adapter[1] = strcmp(argv[i + 2], "base") ? argv[i + 2] : NULL;
            o->n_cfg = 2;
            i += 2;
            continue;
        }
        if (strcmp(a, "-m") && strcmp(a, "--adapter") && strcmp(a, "--task") && strcmp(a, "--out") && strcmp(a, "--sample") &&
            strcmp(a, "--limit") && strcmp(a, "--seq-len") && strcmp(a, "--weights")) {
            fprintf(stderr, "affix: error: probe: unknown option '%s' (try: affix probe --help)\n", a);
            return 2;
        }
        if (!v) { fprintf(stderr, "affix: error: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--adapter")) o->adapter[0] = v;
        else if (!strcmp(a, "--weights")) {
            ModelOpts mo;
            if (cli_weights(v, NULL, 0, &mo)) return 2; // checked here: one error line, before any work
            o->weights = v;
        }
        else if (!strcmp(a, "--task")) o->task = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--sample")) r = cli_int(a, v, 2, INT_MAX, &o->sample);
        else if (!strcmp(a, "--limit")) r = cli_int(a, v, 2, INT_MAX, &o->limit);
        else r = cli_int(a, v, 2, 1 << 20, &o->seq_len);
        if (r) return 2;
    }
    if (!o->model || !o->n_files) {
        fprintf(stderr, "affix: error: probe needs -m MODEL and --data FILE... (try: affix probe --help)\n");
        return 2;
    }
    if (strcmp(o->task, "xnli") && strcmp(o->task, "xquad")) {
        fprintf(stderr, "affix: error: probe --task '%s': use xnli or xquad (parallel texts)\n", o->task);
        return 2;
    }
    return 0;
}

/* the texts of one language: the file's distinct contexts, sampled like affix eval does */
typedef struct {
    char lang[16];
    TaskSet ts;
    size_t *pick, n;
} LangTexts;

static int read_texts(const ProbeOpts *o, const char *path, LangTexts *t, afx_err *e) {
    if (!task_lang_from_name(path, t->lang, sizeof t->lang) || !t->lang[0])
        return afx_fail(e, "%s: cannot tell the language from the file name (xnli.test.LL.tsv, xquad.LL.json)", path);
    TaskReadOpts ro = {.lang = t->lang};
    if (task_read_file(&t->ts, !strcmp(o->task, "xnli") ? TASK_NLI : TASK_SQUAD, path, &ro, e)) return -1;
    size_t nu = 0;
    t->pick = malloc(sizeof(size_t) * (t->ts.n ? t->ts.n : 1));
    if (!t->pick) return afx_fail(e, "out of memory");
    for (size_t i = 0; i < t->ts.n; i++) // one text per paragraph (XQuAD questions share a context)
        if (t->ts.ex[i].context && (!nu || strcmp(t->ts.ex[t->pick[nu - 1]].context, t->ts.ex[i].context))) t->pick[nu++] = i;
    size_t pool = o->limit && (size_t)o->limit < nu ? (size_t)o->limit : nu;
    t->n = o->sample && (size_t)o->sample < pool ? (size_t)o->sample : pool;
    for (size_t i = 0; i < t->n; i++) t->pick[i] = t->pick[i * pool / t->n];
    return 0;
}

/* the observer: sums of the residual stream over a text's real tokens, per depth */
typedef struct {
    double *sum; // (L+1, C)
    int C, seen, bos_skipped;
} Pool;

static void observe(void *ctx, int l, const real *x, int B, int Tx, int Pv) {
    Pool *p = ctx;
    (void)B;
    int from = Pv + (p->bos_skipped ? 0 : 1); // BOS is the same token in every language: left out
    for (int t = from; t < Tx; t++)
        for (int c = 0; c < p->C; c++) p->sum[(size_t)l * p->C + c] += x[(size_t)t * p->C + c];
    if (l == 0) p->seen += Tx - from > 0 ? Tx - from : 0;
}

/* pooled (L+1, n, C): every text of t through the model */
static int pool_lang(Model *m, AdapterSet *set, Tokenizer *tok, LlamaCache *c, const ProbeOpts *o, const LangTexts *t,
                     double *pooled, afx_err *e) {
    int L = m->cfg.L, C = m->cfg.C;
    Pool p = {.sum = calloc((size_t)(L + 1) * C, sizeof(double)), .C = C};
    if (!p.sum) return afx_fail(e, "out of memory");
    c->observe = observe;
    c->observe_ctx = &p;
    int rc = 0;
    for (size_t i = 0; i < t->n && !rc; i++) {
        const TaskExample *x = &t->ts.ex[t->pick[i]];
        int *ids = NULL, n = 0;
        if (tokenizer_encode(tok, x->context, strlen(x->context), 1, &ids, &n, e)) { rc = -1; break; }
        if (n > o->seq_len) n = o->seq_len;
        memset(p.sum, 0, sizeof(double) * (size_t)(L + 1) * C);
        p.seen = p.bos_skipped = 0;
        llama_cache_reset(c);
        for (int off = 0; off < n && !rc;) {
            int k = n - off < c->chunk ? n - off : c->chunk;
            const real *last;
            if (llama_decode(&m->w, adapter_hooks(set), c, ids + off, NULL, k, &last, NULL, e)) rc = -1;
            p.bos_skipped = 1;
            off += k;
        }
        free(ids);
        if (!rc && p.seen < 1) rc = afx_fail(e, "%s:%ld: a text without tokens", t->lang, x->line);
        for (int l = 0; !rc && l <= L; l++)
            for (int k = 0; k < C; k++) pooled[((size_t)l * t->n + i) * C + k] = p.sum[(size_t)l * C + k] / p.seen;
        if (!o->quiet) fprintf(stderr, "\rprobe %s: %zu/%zu  ", t->lang, i + 1, t->n);
    }
    if (!o->quiet) fprintf(stderr, "\n");
    c->observe = NULL;
    free(p.sum);
    return rc;
}

/* cka[l * n_lang + j] for one configuration (model + adapter or none) */
static int probe_config(const ProbeOpts *o, const char *adapter, LangTexts *lt, int n_lang, int en, double *cka, int *L_out,
                        afx_err *e) {
    Model m;
    Tokenizer *tok = NULL;
    CliAdapters ca;
    LlamaCache c;
    int have_c = 0, rc = -1;
    double **pooled = calloc((size_t)n_lang, sizeof(double *));
    memset(&ca, 0, sizeof ca);
    if (!pooled) return afx_fail(e, "out of memory");
    ModelOpts mo;
    if (cli_weights(o->weights, adapter, 0, &mo)) { free(pooled); return afx_fail(e, "--weights '%s'", o->weights); } // (parse checked it)
    if (model_load_opts(&m, o->model, &mo, e)) { free(pooled); return -1; }
    if (tokenizer_load(&tok, o->model, e)) goto done;
    if (adapter && cli_adapters_open(&ca, adapter, &m, e)) goto done; // as affix eval --adapter
    AdapterSet *use = ca.use;
    if (llama_cache_alloc(&c, &m.cfg, adapter_hooks(use), 1, o->seq_len, 256, e)) goto done;
    have_c = 1;
    c.last_only = 1;
    char kmsg[256];
    c.kern = kernels_from_env("auto", kmsg, sizeof kmsg);
    if (!c.kern) { afx_fail(e, "AFFIX_KERNELS: %s", kmsg); goto done; }
    int L = m.cfg.L, C = m.cfg.C;
    *L_out = L;
    for (int j = 0; j < n_lang; j++) {
        pooled[j] = malloc(sizeof(double) * (size_t)(L + 1) * lt[j].n * C);
        if (!pooled[j]) { afx_fail(e, "out of memory"); goto done; }
        if (pool_lang(&m, use, tok, &c, o, &lt[j], pooled[j], e)) goto done;
    }
    for (int l = 0; l <= L; l++)
        for (int j = 0; j < n_lang; j++)
            cka[(size_t)l * n_lang + j] = cka_linear(pooled[en] + (size_t)l * lt[en].n * C, C,
                                                     pooled[j] + (size_t)l * lt[j].n * C, C, (int)lt[en].n);
    rc = 0;
done:
    for (int j = 0; j < n_lang; j++) free(pooled[j]);
    free(pooled);
    if (have_c) llama_cache_free(&c);
    cli_adapters_close(&ca);
    tokenizer_free(tok);
    model_free(&m);
    return rc;
}

/* a heat map: rows = layers, columns = languages; values in [lo, hi] */
static int write_svg(const char *path, const char *title, const LangTexts *lt, int n_lang, int en, const double *v, int L,
                     int diff, afx_err *e) {
    afx_buf b = {0};
    int cw = 56, rh = 18, left = 70, top = 50, W = left + cw * (n_lang - 1) + 30, H = top + rh * (L + 1) + 40;
    afx_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
                       "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                       "<text x=\"10\" y=\"20\" font-size=\"14\">%s</text>\n", W, H, title);
    int col = 0;
    for (int j = 0; j < n_lang; j++) {
        if (j == en) continue;
        afx_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", left + col * cw + cw / 2, top - 6, lt[j].lang);
        for (int l = 0; l <= L; l++) {
            double x = v[(size_t)l * n_lang + j];
            int r, g, bl;
            if (diff) { // blue = lower, red = higher, white = 0 (|d| = 0.2 saturates)
                double s = isfinite(x) ? fmax(-1, fmin(1, x / 0.2)) : 0;
                r = s < 0 ? (int)(255 * (1 + s)) : 255, g = (int)(255 * (1 - fabs(s))), bl = s > 0 ? (int)(255 * (1 - s)) : 255;
            } else { // white (0) to dark blue (1)
                double s = isfinite(x) ? fmax(0, fmin(1, x)) : 0;
                r = (int)(255 - 200 * s), g = (int)(255 - 150 * s), bl = (int)(255 - 60 * s);
            }
            afx_buf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\"/>"
                               "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.2f</text>\n",
                           left + col * cw, top + l * rh, cw - 2, rh - 2, r, g, bl, left + col * cw + cw / 2, top + l * rh + 12, x);
        }
        col++;
    }
    for (int l = 0; l <= L; l++)
        afx_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s %d</text>\n", left - 6, top + l * rh + 12,
                       l ? "layer" : "embed", l);
    afx_buf_printf(&b, "</svg>\n");
    int rc = b.p ? afx_text_write(path, b.p, b.n, e) : afx_fail(e, "out of memory");
    afx_buf_free(&b);
    return rc;
}

int cmd_probe(int argc, char **argv) {
    ProbeOpts o;
    int prc = parse(&o, argc, argv);
    if (prc) return prc;
    afx_err e = {{0}};
    LangTexts lt[MAX_FILES];
    memset(lt, 0, sizeof lt);
    int n_lang = 0, en = -1, L = 0, rc = 1;
    double *cka[2] = {NULL, NULL};
    for (; n_lang < o.n_files; n_lang++) {
        if (read_texts(&o, o.files[n_lang], &lt[n_lang], &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        if (!strcmp(lt[n_lang].lang, "en")) en = n_lang;
    }
    if (en < 0) { fprintf(stderr, "affix: error: probe: no English file among --data (CKA is against English)\n"); goto done; }
    for (int j = 0; j < n_lang; j++)
        if (lt[j].n != lt[en].n || lt[j].n < 2) {
            fprintf(stderr, "affix: error: %s: %zu texts, English has %zu: the files must be parallel (at least 2 texts)\n",
                    o.files[j], lt[j].n, lt[en].n);
            goto done;
        }
    for (int k = 0; k < o.n_cfg; k++) {
        cka[k] = calloc((size_t)(AFX_MAX_LAYERS + 1) * n_lang, sizeof(double));
        if (!cka[k]) { fprintf(stderr, "affix: error: out of memory\n"); goto done; }
        if (probe_config(&o, o.adapter[k], lt, n_lang, en, cka[k], &L, &e)) {
            fprintf(stderr, "affix: error: %s\n", e.msg);
            goto done;
        }
    }
    double *show = cka[0];
    if (o.n_cfg == 2)
        for (size_t i = 0; i < (size_t)(L + 1) * n_lang; i++) cka[1][i] -= cka[0][i], show = cka[1];
    // the table
    printf("probe %s: linear CKA with English per layer (%zu texts per language)%s\n", o.task, lt[en].n,
           o.n_cfg == 2 ? ", B - A" : "");
    if (o.n_cfg == 2) printf("A = %s, B = %s\n", o.adapter[0] ? o.adapter[0] : "base", o.adapter[1] ? o.adapter[1] : "base");
    else printf("adapter: %s\n", o.adapter[0] ? o.adapter[0] : "none (base model)");
    printf("layer ");
    for (int j = 0; j < n_lang; j++) if (j != en) printf(" %7s", lt[j].lang);
    printf("\n");
    for (int l = 0; l <= L; l++) {
        printf("%5d ", l);
        for (int j = 0; j < n_lang; j++) if (j != en) printf(o.n_cfg == 2 ? " %+7.3f" : " %7.3f", show[(size_t)l * n_lang + j]);
        printf("\n");
    }
    if (o.out) {
        if (afx_mkdirs(o.out, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        cJSON *j = cJSON_CreateObject(); // {task, texts_per_language, layers, A/cka: {adapter, cka: {lang: [..]}}, B}
        cJSON_AddStringToObject(j, "task", o.task);
        cJSON_AddNumberToObject(j, "texts_per_language", (double)lt[en].n);
        cJSON_AddNumberToObject(j, "layers", L + 1);
        for (int k = 0; k < o.n_cfg; k++) {
            cJSON *cfg = cJSON_AddObjectToObject(j, k ? "B" : (o.n_cfg == 2 ? "A" : "probe"));
            if (o.adapter[k]) cJSON_AddStringToObject(cfg, "adapter", o.adapter[k]);
            else cJSON_AddNullToObject(cfg, "adapter");
            cJSON *t = cJSON_AddObjectToObject(cfg, k ? "cka_minus_A" : "cka");
            for (int q = 0; q < n_lang; q++) {
                if (q == en) continue;
                cJSON *arr = cJSON_AddArrayToObject(t, lt[q].lang);
                for (int l = 0; l <= L; l++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(cka[k][(size_t)l * n_lang + q]));
            }
        }
        char *text = cJSON_Print(j), path[4096];
        cJSON_Delete(j);
        snprintf(path, sizeof path, "%s/results.json", o.out);
        int w = text ? afx_text_write(path, text, strlen(text), &e) : afx_fail(&e, "out of memory");
        free(text);
        if (w) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        snprintf(path, sizeof path, "%s/cka.svg", o.out);
        if (write_svg(path, o.n_cfg == 2 ? "CKA with English, B - A (red: B higher)" : "linear CKA with English per layer", lt,
                      n_lang, en, show, L, o.n_cfg == 2, &e)) {
            fprintf(stderr, "affix: error: %s\n", e.msg);
            goto done;
        }
        if (!o.quiet) fprintf(stderr, "affix: wrote %s/results.json, %s/cka.svg\n", o.out, o.out);
    }
    rc = 0;
done:
    for (int j = 0; j < o.n_files; j++) { task_set_free(&lt[j].ts); free(lt[j].pick); } // (zeroed when never read)
    free(cka[0]);
    free(cka[1]);
    return rc;
}
