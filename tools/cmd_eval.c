/* cmd_eval.c — affix eval: zero-shot evaluation per language; affix score: metrics from a
 * predictions file alone.
 *
 *   affix eval -m MODEL [--adapter DIR] --task xquad|xnli|belebele|mgsm --data FILE... [--lang CODE]
 *              [--scoring generate|loglik] [--limit N] [--sample N] [--max-new-tokens N] [--seq-len N]
 *              [--temp T --top-p P --seed S] [--out DIR] [--strict]
 *   affix score --task T --data FILE... --predictions FILE [--lang CODE]
 *
 * Each file is one language (its code from --lang, else from the file name: xquad.de.json,
 * mgsm_de.tsv, deu_Latn.jsonl, ...). Generation mode decodes greedily (or samples) after the
 * task's prompt template and stops at EOS or the template's stop string; loglik mode (XNLI,
 * Belebele) picks the option whose tokens have the highest mean log-likelihood after the prompt.
 * Metrics: XQuAD EM/F1 with SQuAD's normalization (character level for languages written without
 * spaces), XNLI/Belebele accuracy, MGSM exact match on the last number. Output: a table on stdout,
 * and with --out: predictions.jsonl, results.json, results.svg (written atomically).
 * Under mpirun (tools/dist.h) example i of each file goes to rank i mod K; rank 0 puts the results
 * back in the file's order and writes the same files as one process. Sampling (--temp > 0) draws
 * from a state seeded per example (--seed, file, example), so it does not depend on K either.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h"
#include "buf.h"
#include "files.h"
#include "st_write.h"
#include "cli.h"
#include "data.h"
#include "decode.h"
#include "dist.h"
#include "hooks.h"
#include "kernels_simd.h"
#include "metrics.h"
#include "model.h"
#include "peft.h"
#include "predictions.h"
#include "report.h"
#include "sampler.h"
#include "templates.h"
#include "tokenizer.h"

#define MAX_FILES 64

typedef struct {
    const char *model, *adapter, *task, *out, *lang, *pred_file, *weights;
    const char *files[MAX_FILES];
    int n_files, limit, sample, max_new, seq_len, seq_given, strict, loglik, quiet, lm, yes_no;
    double temp, top_p;
    unsigned long long seed;
} EvalOpts;

/* eval task -> reader kind and the metrics it reports */
static int eval_kind(const char *task, TaskKind *kind) {
    if (!strcmp(task, "xquad") || !strcmp(task, "squad")) *kind = TASK_SQUAD;
    else if (!strcmp(task, "xnli") || !strcmp(task, "nli")) *kind = TASK_NLI;
    else if (!strcmp(task, "belebele")) *kind = TASK_BELEBELE;
    else if (!strcmp(task, "mgsm") || !strcmp(task, "gsm8k")) *kind = !strcmp(task, "mgsm") ? TASK_MGSM : TASK_GSM8K;
    else return -1;
    return 0;
}

static int usage(void) {
    fprintf(stderr,
            "usage: affix eval -m MODEL [--adapter DIR] --task xquad|xnli|belebele|mgsm|lm --data FILE... [--lang CODE]\n"
            "                  [--scoring generate|loglik] [--limit N] [--sample N] [--labels words|yes-no]\n"
            "                  [--max-new-tokens N] [--seq-len N] [--weights file|f32]\n"
            "                  [--temp T] [--top-p P] [--seed S] [--out DIR] [--strict] [--quiet]\n"
            "       affix score --task T --data FILE... --predictions FILE [--lang CODE]\n");
    return 2;
}

static int parse(EvalOpts *o, int argc, char **argv, int scoring_only) {
    *o = (EvalOpts){.max_new = 0, .seq_len = 1024, .top_p = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        if (!strcmp(a, "--strict")) { o->strict = 1; continue; }
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--data")) {
            if (cli_take_files(argc, argv, &i, o->files, &o->n_files, MAX_FILES)) return 2;
            continue;
        }
        int known = !strcmp(a, "--task") || !strcmp(a, "--lang") ||
                    (!scoring_only && (!strcmp(a, "-m") || !strcmp(a, "--adapter") || !strcmp(a, "--out") ||
                                       !strcmp(a, "--scoring") || !strcmp(a, "--limit") || !strcmp(a, "--sample") || !strcmp(a, "--labels") || !strcmp(a, "--max-new-tokens") ||
                                       !strcmp(a, "--seq-len") || !strcmp(a, "--temp") || !strcmp(a, "--top-p") ||
                                       !strcmp(a, "--seed") || !strcmp(a, "--weights"))) ||
                    (scoring_only && !strcmp(a, "--predictions"));
        if (!known) {
            fprintf(stderr, "affix: error: %s: unknown option '%s' (see affix %s --help)\n", scoring_only ? "score" : "eval", a,
                    scoring_only ? "score" : "eval");
            return 2;
        }
        if (!v) { fprintf(stderr, "affix: error: %s needs a value\n", a); return 2; }
        i++;
        int r = 0;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--adapter")) o->adapter = v;
        else if (!strcmp(a, "--weights")) o->weights = v;
        else if (!strcmp(a, "--task")) o->task = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--lang")) o->lang = v;
        else if (!strcmp(a, "--predictions")) o->pred_file = v;
        else if (!strcmp(a, "--scoring")) {
            if (!strcmp(v, "loglik")) o->loglik = 1;
            else if (strcmp(v, "generate")) { fprintf(stderr, "affix: error: --scoring '%s': use generate or loglik\n", v); return 2; }
        } else if (!strcmp(a, "--limit")) r = cli_int(a, v, 1, INT_MAX, &o->limit);
        else if (!strcmp(a, "--sample")) r = cli_int(a, v, 1, INT_MAX, &o->sample);
        else if (!strcmp(a, "--labels")) {
            if (!strcmp(v, "yes-no")) o->yes_no = 1;
            else if (strcmp(v, "words")) { fprintf(stderr, "affix: error: --labels '%s': use words or yes-no\n", v); return 2; }
        }
        else if (!strcmp(a, "--max-new-tokens")) r = cli_int(a, v, 1, 1000000, &o->max_new);
        else if (!strcmp(a, "--seq-len")) r = cli_int(a, v, 1, INT_MAX, &o->seq_len), o->seq_given = 1;
        else if (!strcmp(a, "--temp")) r = cli_double(a, v, 0, 1e6, &o->temp);
        else if (!strcmp(a, "--top-p")) {
            r = cli_double(a, v, 0, 1, &o->top_p);
            if (!r && !(o->top_p > 0)) { fprintf(stderr, "affix: error: --top-p '%s' must be in (0, 1]\n", v); return 2; }
        } else r = cli_u64(a, v, &o->seed);
        if (r) return 2;
    }
    if (!o->task || !o->n_files || (!scoring_only && !o->model) || (scoring_only && !o->pred_file)) return usage();
    if (o->lang && o->n_files > 1) {
        fprintf(stderr, "affix: error: --lang names the language of one file; with several files each name says it\n");
        return 2;
    }
    return 0;
}

/* ---- one example's prediction and its scores ----------------------------------------------------- */

typedef struct {
    char *pred;      /* generated text (or the chosen option's label) */
    int choice;      /* NLI/Belebele: the predicted option, -1 if none */
    double em, f1;   /* XQuAD (0..1); MGSM/accuracy tasks: em = correct */
} Scored;

static void score_example(TaskKind kind, const TaskExample *x, const char *lang, Scored *s) {
    s->em = s->f1 = 0;
    if (kind == TASK_SQUAD) {
        const char *golds[64];
        int n = x->n_answers < 64 ? x->n_answers : 64;
        for (int i = 0; i < n; i++) golds[i] = x->answers[i].text;
        afx_err e;
        if (squad_score(s->pred, golds, n, squad_mode_for_lang(lang), &s->em, &s->f1, &e)) s->em = s->f1 = 0;
    } else if (kind == TASK_NLI || kind == TASK_BELEBELE) {
        if (s->choice < 0)
            s->choice = kind == TASK_NLI ? (x->yes_no ? nli_yes_no_from_text(s->pred) : nli_label_from_text(s->pred))
                                         : choice_from_text(s->pred, x->n_options);
        s->em = s->choice == x->label;
    } else {
        s->em = mgsm_correct(s->pred, x->number);
    }
}

/* ---- generation ------------------------------------------------------------------------------------ */

typedef struct {
    Model *m;
    AdapterSet *set;
    Tokenizer *tok;
    const Kernels *kern;
    LlamaCache cache;
    Sampler smp;
    const EvalOpts *o;
    int *buf;
    int cap;
} Gen;

/* keep BOS, drop the oldest prompt tokens when prompt + budget exceed seq_len */
static int fit_prompt(int *ids, int n, int budget, int seq_len, int bos) {
    if (n + budget <= seq_len) return n;
    int keep_front = n > 0 && ids[0] == bos ? 1 : 0, over = n + budget - seq_len;
    if (over > n - keep_front - 1) over = n - keep_front - 1;
    memmove(ids + keep_front, ids + keep_front + over, sizeof(int) * (size_t)(n - keep_front - over));
    return n - over;
}

static int generate(Gen *g, const char *prompt, const char *stop, int max_new, char **out, afx_err *e) {
    int *ids = NULL, n = 0;
    if (tokenizer_encode(g->tok, prompt, strlen(prompt), 1, &ids, &n, e)) return -1;
    n = fit_prompt(ids, n, max_new, g->o->seq_len, tokenizer_bos(g->tok));
    llama_cache_reset(&g->cache);
    const real *last;
    int rc = llama_decode(&g->m->w, adapter_hooks(g->set), &g->cache, ids, NULL, n, &last, NULL, e);
    free(ids);
    if (rc) return -1;
    int eos = tokenizer_eos(g->tok), k = 0;
    char *text = NULL;
    size_t len = 0;
    for (; k < max_new; k++) {
        int next = sampler_next(&g->smp, last);
        if (next == eos) break;
        g->buf[k] = next;
        free(text);
        text = NULL;
        if (tokenizer_decode(g->tok, g->buf, k + 1, 1, &text, &len, e)) return -1;
        char *hit = stop ? strstr(text, stop) : NULL;
        if (hit) { *hit = 0; break; }
        if (k + 1 < max_new && llama_decode(&g->m->w, adapter_hooks(g->set), &g->cache, &next, NULL, 1, &last, NULL, e)) {
            free(text);
            return -1;
        }
    }
    if (!text) text = calloc(1, 1);
    // the answer: trimmed of surrounding white space
    char *a = text;
    while (*a == ' ' || *a == '\n' || *a == '\t') a++;
    size_t l = strlen(a);
    while (l && (a[l - 1] == ' ' || a[l - 1] == '\n' || a[l - 1] == '\t')) a[--l] = 0;
    memmove(text, a, l + 1);
    *out = text;
    return 0;
}

/* log p(id | the position whose logits are z), in double */
static double log_prob(const real *z, int V, int id) {
    double mx = z[0], se = 0;
    for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
    for (int v = 0; v < V; v++) se += exp((double)z[v] - mx);
    return (double)z[id] - mx - log(se);
}

/* Mean log-likelihood of each option after the prompt. The prompt is decoded once into the KV cache
 * (logits of its last position only); each option then continues from that state: its first token's
 * log-probability comes from the prompt's last logits, its later tokens' from decoding the option's
 * own tokens, after which the cache is rewound to the prompt. The same numbers as one forward of
 * prompt + option per option (decode equals forward, tests/test_decode.c), without recomputing the
 * prompt or the vocabulary-wide logits of positions nobody reads. */
static int loglik_choice(Gen *g, const TaskExample *x, int *choice, afx_err *e) {
    int n_opt = tmpl_n_candidates(x), rc = -1;
    if (n_opt <= 0 || n_opt > 16) return afx_fail(e, "%s: no options to score", x->id);
    TmplText tt;
    if (tmpl_render(x, TMPL_EVAL, &tt, e)) return -1;
    int *p = NULL, np = 0, *c[16] = {0}, nc[16] = {0}, V = g->m->cfg.V;
    double score[16];
    if (tokenizer_encode(g->tok, tt.prompt, strlen(tt.prompt), 1, &p, &np, e)) goto out;
    int longest = 0;
    for (int i = 0; i < n_opt; i++) {
        char *cand;
        if (tmpl_candidate(x, i, TMPL_CAND_LABEL, &cand, e)) goto out;
        int r = tokenizer_encode(g->tok, cand, strlen(cand), 0, &c[i], &nc[i], e);
        free(cand);
        if (r) goto out;
        if (nc[i] == 0) { afx_fail(e, "%s: option %d has no tokens", x->id, i); goto out; }
        if (nc[i] > longest) longest = nc[i];
    }
    np = fit_prompt(p, np, longest, g->o->seq_len, tokenizer_bos(g->tok));
    const real *last;
    llama_cache_reset(&g->cache);
    g->cache.last_only = 1;
    if (llama_decode(&g->m->w, adapter_hooks(g->set), &g->cache, p, NULL, np, &last, NULL, e)) goto out;
    int used = g->cache.used, pos = g->cache.next_pos;
    for (int i = 0; i < n_opt; i++) score[i] = log_prob(last, V, c[i][0]);
    g->cache.last_only = 0; // an option's every position is read
    for (int i = 0; i < n_opt; i++) {
        if (llama_cache_rewind(&g->cache, used, pos, e)) goto out;
        for (int t = 0; t + 1 < nc[i];) { // tokens 0..nc-2 predict tokens 1..nc-1, a cache chunk at a time
            int n = nc[i] - 1 - t < g->cache.chunk ? nc[i] - 1 - t : g->cache.chunk, Tc;
            if (llama_decode(&g->m->w, adapter_hooks(g->set), &g->cache, c[i] + t, NULL, n, &last, &Tc, e)) goto out;
            for (int k = 0; k < n; k++) score[i] += log_prob(g->cache.logits + (size_t)(Tc - n + k) * V, V, c[i][t + k + 1]);
            t += n;
        }
    }
    *choice = choice_best(score, nc, n_opt);
    rc = 0;
out:
    g->cache.last_only = 1;
    tmpl_text_free(&tt);
    free(p);
    for (int i = 0; i < 16; i++) free(c[i]);
    return rc;
}

/* ---- --task lm: how well the model still models a language (forgetting) ------------------------ */

/* Negative log-likelihood (nats) of a text's tokens after BOS, each predicted from the tokens before
 * it (and the adapter's virtual tokens or prefix, as at inference); the first --seq-len tokens. */
static int lm_text(Gen *g, const char *text, double *nll, long *count, afx_err *e) {
    int *ids = NULL, n = 0, V = g->m->cfg.V, rc = 0;
    if (tokenizer_encode(g->tok, text, strlen(text), 1, &ids, &n, e)) return -1;
    if (n > g->o->seq_len) n = g->o->seq_len;
    double s = 0;
    llama_cache_reset(&g->cache);
    g->cache.last_only = 0;
    for (int off = 0; off + 1 < n;) { // inputs ids[0..n-2] predict ids[1..n-1], a cache chunk at a time
        int k = n - 1 - off < g->cache.chunk ? n - 1 - off : g->cache.chunk, Tc;
        const real *last;
        if (llama_decode(&g->m->w, adapter_hooks(g->set), &g->cache, ids + off, NULL, k, &last, &Tc, e)) { rc = -1; break; }
        for (int r = 0; r < k; r++) s -= log_prob(g->cache.logits + (size_t)(Tc - k + r) * V, V, ids[off + r + 1]);
        off += k;
    }
    g->cache.last_only = 1;
    free(ids);
    *nll = s;
    *count = n > 1 ? n - 1 : 0;
    return rc;
}

/* The examples of one file were dealt round-robin (rank r computed i = r, r + K, ...): each rank's
 * lines (one per example, "\n"-ended) and nv values per example. Rank 0 gets them back in example
 * order: the lines appended to preds, the values in vals[i * nv ...] (n x nv). The other ranks: nothing. */
static int merge_records(const Dist *d, size_t n, const afx_buf *lines, const double *v, int nv, afx_buf *preds,
                         double *vals, afx_err *e) {
    int K = d->size;
    size_t mine = n > (size_t)d->rank ? (n - (size_t)d->rank + (size_t)K - 1) / (size_t)K : 0;
    char *all_l = NULL, *all_v = NULL;
    size_t *ll = calloc((size_t)K, sizeof *ll), *lv = calloc((size_t)K, sizeof *lv);
    const char **at = calloc((size_t)K, sizeof *at);
    const double **vr = calloc((size_t)K, sizeof *vr);
    int rc = !ll || !lv || !at || !vr ? afx_fail(e, "out of memory") : 0;
    if (!rc) rc = dist_gather(d, lines->p ? lines->p : "", lines->n, &all_l, ll, e);
    if (!rc) rc = dist_gather(d, v, mine * (size_t)nv * sizeof(double), &all_v, lv, e);
    if (!rc && d->rank == 0) {
        size_t off_l = 0, off_v = 0;
        for (int r = 0; r < K && !rc; r++) { // rank r computed mine_r examples: as many values
            size_t mine_r = n > (size_t)r ? (n - (size_t)r + (size_t)K - 1) / (size_t)K : 0;
            if (lv[r] != mine_r * (size_t)nv * sizeof(double))
                rc = afx_fail(e, "rank %d sent %zu result bytes for its %zu examples", r, lv[r], mine_r);
            at[r] = all_l + off_l, vr[r] = (const double *)(void *)(all_v + off_v);
            off_l += ll[r], off_v += lv[r];
            ll[r] = off_l; // from here: where rank r's lines end
        }
        for (size_t i = 0; i < n && !rc; i++) {
            int r = (int)(i % (size_t)K);
            const char *end = memchr(at[r], '\n', (size_t)(all_l + ll[r] - at[r]));
            if (!end) { rc = afx_fail(e, "rank %d sent fewer lines than its examples", r); break; }
            if (afx_buf_put(preds, at[r], (size_t)(end - at[r]) + 1)) rc = afx_fail(e, "out of memory");
            at[r] = end + 1;
            memcpy(vals + i * (size_t)nv, vr[r] + (i / (size_t)K) * (size_t)nv, sizeof(double) * (size_t)nv);
        }
    }
    free(all_l);
    free(all_v);
    free(ll);
    free(lv);
    free(at);
    free(vr);
    return rc;
}

/* every distinct context of the file once (its questions share it), --limit/--sample as for the
 * other tasks; NLL = the token-weighted mean over the texts, PPL = exp(NLL) */
static int lm_file(Gen *g, const Dist *d, const TaskSet *ts, const char *path, LangScore *row, afx_buf *preds, afx_err *e) {
    size_t n_uniq = 0, *uniq = malloc(sizeof(size_t) * (ts->n ? ts->n : 1));
    if (!uniq) return afx_fail(e, "out of memory");
    for (size_t i = 0; i < ts->n; i++)
        if (ts->ex[i].context && (!n_uniq || strcmp(ts->ex[uniq[n_uniq - 1]].context, ts->ex[i].context)))
            uniq[n_uniq++] = i;
    size_t pool = g->o->limit && (size_t)g->o->limit < n_uniq ? (size_t)g->o->limit : n_uniq;
    size_t n = g->o->sample && (size_t)g->o->sample < pool ? (size_t)g->o->sample : pool;
    double sum = 0;
    long tokens = 0;
    afx_buf lines = {0}; // this rank's texts i = rank, rank + K, ...: a JSON line and (nll, tokens) each
    double *v = malloc(sizeof(double) * 2 * (n / (size_t)d->size + 1)), *all = d->rank == 0 ? malloc(sizeof(double) * 2 * (n ? n : 1)) : NULL;
    size_t j = 0;
    if (!v || (d->rank == 0 && !all)) { free(v); free(all); free(uniq); return afx_fail(e, "out of memory"); }
    for (size_t i = (size_t)d->rank; i < n; i += (size_t)d->size) {
        const TaskExample *x = &ts->ex[uniq[i * pool / n]];
        double nll;
        long c;
        if (lm_text(g, x->context, &nll, &c, e)) {
            char why[200];
            snprintf(why, sizeof why, "%.199s", e->msg);
            free(uniq), free(v), free(all), afx_buf_free(&lines);
            return afx_fail(e, "%.3000s:%ld: %s", path, x->line, why);
        }
        v[2 * j] = nll, v[2 * j + 1] = (double)c, j++;
        char line[320];
        snprintf(line, sizeof line, "{\"lang\":\"%.15s\",\"line\":%ld,\"tokens\":%ld,\"nll\":%.6f}\n", row->lang, x->line, c,
                 c ? nll / (double)c : 0.0);
        if (afx_buf_puts(&lines, line)) { free(uniq), free(v), free(all), afx_buf_free(&lines); return afx_fail(e, "out of memory"); }
        if (!g->o->quiet && d->rank == 0) fprintf(stderr, "\rlm %s: %zu/%zu  ", row->lang, i + 1, n);
    }
    if (!g->o->quiet && d->rank == 0) fprintf(stderr, "\n");
    free(uniq);
    int rc = merge_records(d, n, &lines, v, 2, preds, all, e);
    afx_buf_free(&lines);
    free(v);
    for (size_t i = 0; !rc && all && i < n; i++) sum += all[2 * i], tokens += (long)all[2 * i + 1];
    free(all);
    if (rc) return -1;
    row->n = (int)n;
    row->score[0] = tokens ? sum / (double)tokens : 0;
    row->score[1] = exp(row->score[0]);
    return 0;
}

/* ---- output ----------------------------------------------------------------------------------------- */

static const char *metric_names(TaskKind kind, int *n, int *primary) {
    *primary = 0;
    if (kind == TASK_SQUAD) { *n = 2; *primary = 1; return "EM F1"; }
    *n = 1;
    return kind == TASK_MGSM || kind == TASK_GSM8K ? "EM" : "accuracy";
}

static void fill_report(Report *r, TaskKind kind, const char *task) {
    int n, primary;
    metric_names(kind, &n, &primary);
    r->task = task;
    r->n_metrics = n;
    r->primary = primary;
    if (kind == TASK_SQUAD) r->metric[0] = "EM", r->metric[1] = "F1";
    else r->metric[0] = kind == TASK_MGSM || kind == TASK_GSM8K ? "EM" : "accuracy";
}

static const char *TINY_NOTE = "stories260K is a tiny English-only story model: these numbers show the pipeline, not the method";

int cmd_eval(int argc, char **argv, const Dist *d) {
    EvalOpts o;
    int prc = parse(&o, argc, argv, 0);
    if (prc) return prc;
    TaskKind kind;
    o.lm = !strcmp(o.task, "lm"); // language modelling of the files' contexts (read as SQuAD/XQuAD JSON)
    if (o.lm) kind = TASK_SQUAD;
    else if (eval_kind(o.task, &kind)) { fprintf(stderr, "affix: error: unknown task '%s' (xquad, xnli, belebele, mgsm, lm)\n", o.task); return 2; }
    if (o.loglik && (o.lm || (kind != TASK_NLI && kind != TASK_BELEBELE))) {
        fprintf(stderr, "affix: error: --scoring loglik needs options to score (xnli, belebele)\n");
        return 2;
    }
    if (!o.max_new) o.max_new = kind == TASK_SQUAD ? 32 : kind == TASK_MGSM || kind == TASK_GSM8K ? 128 : 8;
    afx_err e = {{0}};
    Model m;
    Gen g = {0};
    CliAdapters ca;
    int have_cache = 0, have_smp = 0, rc = 1;
    LangScore rows[MAX_FILES];
    afx_buf preds = {0}; /* predictions.jsonl */
    memset(&ca, 0, sizeof ca);
    ModelOpts mo;
    if (cli_weights(o.weights, o.adapter, 0, &mo)) return 2;
    if (model_load_opts(&m, o.model, &mo, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); return 1; }
    if (tokenizer_load(&g.tok, o.model, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    if (o.adapter) {
        if (cli_adapters_open(&ca, o.adapter, &m, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        if (ca.note[0] && !o.quiet) fprintf(stderr, "affix: note: %s\n", ca.note);
    }
    g.m = &m;
    g.set = ca.use;
    { // positions stay below max_position_embeddings: an explicit --seq-len beyond it is refused
        ModelHooks *h = adapter_hooks(g.set);
        long long room = (long long)m.cfg.max_pos - (h ? hooks_tokens(h, 0) + hooks_position_offset(h) : 0);
        if (room < 1) { fprintf(stderr, "affix: error: %s: the adapter's virtual tokens leave no position of %s's %d\n", o.adapter, o.model, m.cfg.max_pos); goto done; }
        if (o.seq_len > room) {
            if (o.seq_given) {
                fprintf(stderr, "affix: error: --seq-len %d exceeds %s's max_position_embeddings = %d%s (at most %lld)\n",
                        o.seq_len, o.model, m.cfg.max_pos, room < m.cfg.max_pos ? " less the adapter's virtual tokens" : "", room);
                goto done;
            }
            o.seq_len = (int)room;
        }
        if (!o.lm && o.max_new >= o.seq_len) {
            fprintf(stderr, "affix: error: --max-new-tokens %d leaves no room for a prompt in --seq-len %d\n", o.max_new, o.seq_len);
            goto done;
        }
    }
    {
        ModelHooks *h = adapter_hooks(g.set);
        size_t f[5] = {2, (size_t)m.cfg.L, (size_t)o.seq_len + (h ? (size_t)hooks_tokens(h, 0) : 0) + 256,
                       (size_t)m.cfg.NKV * (size_t)m.cfg.HS, sizeof(real)};
        if (afx_mem_check(afx_size_prod(f, 5), "eval: the KV cache", &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    }
    g.o = &o;
    g.buf = malloc(sizeof(int) * (size_t)(o.max_new + 1));
    if (!g.buf || llama_cache_alloc(&g.cache, &m.cfg, adapter_hooks(g.set), 1, o.seq_len, 256, &e)) {
        fprintf(stderr, "affix: error: %s\n", g.buf ? e.msg : "out of memory");
        goto done;
    }
    have_cache = 1;
    g.cache.last_only = 1; // generation reads the last position's logits only
    char kmsg[256];
    g.kern = g.cache.kern = kernels_from_env("auto", kmsg, sizeof kmsg);
    if (!g.kern) { fprintf(stderr, "affix: error: AFFIX_KERNELS: %s\n", kmsg); goto done; }
    if (sampler_init(&g.smp, m.cfg.V, o.temp, o.top_p, o.seed, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    have_smp = 1;
    if (o.out && d->rank == 0 && afx_mkdirs(o.out, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }

    for (int f = 0; f < o.n_files; f++) {
        LangScore *row = &rows[f];
        memset(row, 0, sizeof *row);
        if (o.lang) snprintf(row->lang, sizeof row->lang, "%s", o.lang);
        else if (!task_lang_from_name(o.files[f], row->lang, sizeof row->lang) || !row->lang[0]) {
            fprintf(stderr, "affix: error: %s: cannot tell the language from the file name; give --lang\n", o.files[f]);
            goto done;
        }
        TaskSet ts;
        TaskReadOpts ro = {.lang = row->lang, .strict = o.strict, .nli_yes_no = o.yes_no};
        if (task_read_file(&ts, kind, o.files[f], &ro, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        for (size_t p = 0; p < ts.n_problems && !o.quiet; p++) fprintf(stderr, "affix: warning: %s (skipped)\n", ts.problems[p]);
        row->skipped = (int)ts.n_problems;
        if (o.lm) {
            int r = lm_file(&g, d, &ts, o.files[f], row, &preds, &e);
            task_set_free(&ts);
            if (r) { fprintf(stderr, "\naffix: error: %s\n", e.msg); goto done; }
            continue;
        }
        // --limit: the first N examples; --sample: N examples spread evenly over the file (example
        // floor(i*n/N)), so a genre-ordered file (XNLI) is sampled across its genres; parallel files
        // give parallel samples
        size_t pool = o.limit && (size_t)o.limit < ts.n ? (size_t)o.limit : ts.n;
        size_t n = o.sample && (size_t)o.sample < pool ? (size_t)o.sample : pool;
        double sum_em = 0, sum_f1 = 0;
        double t0 = (double)clock() / CLOCKS_PER_SEC;
        afx_buf lines = {0}; // this rank's examples i = rank, rank + K, ...: a JSON line and (em, f1) each
        double *sc = malloc(sizeof(double) * 2 * (n / (size_t)d->size + 1)), *all = d->rank == 0 ? malloc(sizeof(double) * 2 * (n ? n : 1)) : NULL;
        size_t mi = 0; // this rank's examples so far
        if (!sc || (d->rank == 0 && !all)) { free(sc); free(all); fprintf(stderr, "affix: error: out of memory\n"); task_set_free(&ts); goto done; }
        for (size_t i = (size_t)d->rank; i < n; i += (size_t)d->size) {
            const TaskExample *x = &ts.ex[i * pool / n];
            Scored s = {.choice = -1};
            int r;
            g.smp.rng = o.seed + 0x9E3779B97F4A7C15ULL * ((unsigned long long)f * 1000003ULL + i + 1); // per example
            if (o.loglik) {
                r = loglik_choice(&g, x, &s.choice, &e);
                if (!r) s.pred = strdup(s.choice >= 0 && s.choice < x->n_options ? x->options[s.choice] : "");
            } else {
                TmplText tt;
                r = tmpl_render(x, TMPL_EVAL, &tt, &e);
                if (!r) r = generate(&g, tt.prompt, tmpl_stop(kind), o.max_new, &s.pred, &e);
                if (!r) tmpl_text_free(&tt);
            }
            if (r) { fprintf(stderr, "\naffix: error: %s:%ld: %s\n", o.files[f], x->line, e.msg); afx_buf_free(&lines); free(sc); free(all); task_set_free(&ts); goto done; }
            score_example(kind, x, row->lang, &s);
            sc[2 * mi] = s.em, sc[2 * mi + 1] = s.f1, mi++;
            // predictions.jsonl: one line per example
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "lang", row->lang);
            cJSON_AddStringToObject(j, "id", x->id);
            cJSON_AddStringToObject(j, "prediction", s.pred ? s.pred : "");
            if (s.choice >= 0) cJSON_AddNumberToObject(j, "choice", s.choice);
            if (kind == TASK_SQUAD) {
                cJSON_AddNumberToObject(j, "em", s.em);
                cJSON_AddNumberToObject(j, "f1", s.f1);
            } else {
                cJSON_AddBoolToObject(j, "correct", s.em > 0);
            }
            char *line = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (!line || afx_buf_puts(&lines, line) || afx_buf_puts(&lines, "\n")) {
                free(line);
                fprintf(stderr, "affix: error: out of memory\n");
                afx_buf_free(&lines); free(sc); free(all); task_set_free(&ts);
                goto done;
            }
            free(line);
            free(s.pred);
            if (!o.quiet && d->rank == 0) {
                double el = (double)clock() / CLOCKS_PER_SEC - t0;
                fprintf(stderr, "\r%s %s: %zu/%zu  %.1f s  ", o.task, row->lang, i + 1, n, el);
            }
        }
        if (!o.quiet && d->rank == 0) fprintf(stderr, "\n");
        // back in the file's order on rank 0; the sums in that order (the numbers of one process)
        int mr = merge_records(d, n, &lines, sc, 2, &preds, all, &e);
        afx_buf_free(&lines);
        free(sc);
        for (size_t i = 0; !mr && all && i < n; i++) sum_em += all[2 * i], sum_f1 += all[2 * i + 1];
        free(all);
        if (mr) { fprintf(stderr, "affix: error: %s: %s\n", o.files[f], e.msg); task_set_free(&ts); goto done; }
        row->n = (int)n;
        row->score[0] = n ? 100.0 * sum_em / (double)n : 0;
        row->score[1] = n ? 100.0 * sum_f1 / (double)n : 0;
        task_set_free(&ts);
    }
    Report rep = {.model = o.model, .adapter = o.adapter, .rows = rows, .n = o.n_files};
    fill_report(&rep, kind, o.task);
    if (o.lm) rep.n_metrics = 2, rep.metric[0] = "NLL", rep.metric[1] = "PPL", rep.primary = 1;
    if (strstr(o.model, "stories260K")) rep.note = TINY_NOTE;
    if (d->rank != 0) { rc = 0; goto done; } // rank 0 reports and writes
    report_print(stdout, &rep);
    if (o.out) {
        char path[4096];
        snprintf(path, sizeof path, "%s/predictions.jsonl", o.out);
        if (afx_text_write(path, preds.p ? preds.p : "", preds.n, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        snprintf(path, sizeof path, "%s/results.json", o.out);
        if (report_write_json(path, &rep, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        snprintf(path, sizeof path, "%s/results.svg", o.out);
        if (report_write_svg(path, &rep, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        fprintf(stderr, "affix: wrote %s/predictions.jsonl, results.json, results.svg\n", o.out);
    }
    rc = 0;
done:
    afx_buf_free(&preds);
    free(g.buf);
    if (have_smp) sampler_free(&g.smp);
    if (have_cache) llama_cache_free(&g.cache);
    cli_adapters_close(&ca);
    tokenizer_free(g.tok);
    model_free(&m);
    return rc;
}

/* ---- affix score: the metrics of a predictions.jsonl ------------------------------------------ */

int cmd_score(int argc, char **argv) {
    EvalOpts o;
    int prc = parse(&o, argc, argv, 1);
    if (prc) return prc;
    TaskKind kind;
    if (eval_kind(o.task, &kind)) { fprintf(stderr, "affix: error: unknown task '%s'\n", o.task); return 2; }
    afx_err e = {{0}};
    // predictions: (lang, id) -> prediction text, sorted for a binary search (not a scan per example)
    PredSet ps = {0};
    char *buf = NULL;
    size_t blen = 0;
    int rc = 1;
    LangScore rows[MAX_FILES];
    if (afx_read_file(o.pred_file, (size_t)1 << 31, &buf, &blen, &e) || pred_set_read(&ps, buf, blen, o.pred_file, &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        free(buf);
        return 1;
    }
    free(buf);
    if (!ps.n) { fprintf(stderr, "affix: error: %s: no predictions\n", o.pred_file); pred_set_free(&ps); return 1; }

    for (int f = 0; f < o.n_files; f++) {
        LangScore *row = &rows[f];
        memset(row, 0, sizeof *row);
        if (o.lang) snprintf(row->lang, sizeof row->lang, "%s", o.lang);
        else task_lang_from_name(o.files[f], row->lang, sizeof row->lang);
        TaskSet ts;
        TaskReadOpts ro = {.lang = row->lang};
        if (task_read_file(&ts, kind, o.files[f], &ro, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto out; }
        double em = 0, f1 = 0;
        int n = 0;
        for (size_t i = 0; i < ts.n; i++) {
            const Prediction *hit = pred_set_find(&ps, row->lang, ts.ex[i].id);
            if (!hit) continue; // scored examples only (an eval may have used --limit)
            Scored s = {.pred = hit->pred, .choice = -1};
            if (kind == TASK_NLI || kind == TASK_BELEBELE) // the prediction may be the option text itself
                for (int c = 0; c < ts.ex[i].n_options; c++)
                    if (!strcmp(hit->pred, ts.ex[i].options[c])) s.choice = c;
            score_example(kind, &ts.ex[i], row->lang, &s);
            em += s.em;
            f1 += s.f1;
            n++;
        }
        row->n = n;
        row->score[0] = n ? 100 * em / n : 0;
        row->score[1] = n ? 100 * f1 / n : 0;
        task_set_free(&ts);
        if (!n) { fprintf(stderr, "affix: error: %s: no prediction in %s matches an example of this file\n", o.pred_file, o.files[f]); goto out; }
    }
    Report rep = {.model = "(predictions)", .adapter = o.pred_file, .rows = rows, .n = o.n_files};
    fill_report(&rep, kind, o.task);
    if (o.lm) rep.n_metrics = 2, rep.metric[0] = "NLL", rep.metric[1] = "PPL", rep.primary = 1;
    report_print(stdout, &rep);
    rc = 0;
out:
    pred_set_free(&ps);
    return rc;
}
