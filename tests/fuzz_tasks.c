/* fuzz_tasks.c — libFuzzer harness for the task readers (SQuAD/XQuAD JSON, XNLI/MNLI TSV, Belebele
 * JSONL, GSM8K JSONL, MGSM TSV: task_read) and what runs on every example they give: the prompt
 * templates, the log-likelihood candidates and the metrics. The first input byte picks the format
 * and the options (strict, NLI header mode, yes/no answers, a language or none); the rest is the
 * file. Built by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/tasks tests/data/demo
 * (a seed's first byte is part of its choice: every file is tried under the format its byte picks)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "metrics.h"
#include "templates.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const TaskExample *x) {
    afx_err e;
    TmplText tt;
    for (int use = 0; use < 2; use++)
        if (tmpl_render(x, (TmplUse)use, &tt, &e) == 0) tmpl_text_free(&tt);
    for (int i = 0; i < tmpl_n_candidates(x); i++)
        for (int how = 0; how < 2; how++) {
            char *c = NULL;
            if (tmpl_candidate(x, i, (TmplCand)how, &c, &e) == 0) free(c);
        }
    if (x->n_answers > 0) { // the metrics against the example's own gold answers
        const char *golds[8];
        int n = x->n_answers < 8 ? x->n_answers : 8;
        for (int i = 0; i < n; i++) golds[i] = x->answers[i].text;
        double em, f1;
        (void)squad_score(golds[0], golds, n, squad_mode_for_lang(x->lang), &em, &f1, &e);
        (void)squad_score(x->context ? x->context : "", golds, n, SQUAD_CHARS, &em, &f1, &e);
    }
    char num[MGSM_NUM_MAX];
    if (x->question) (void)mgsm_last_number(x->question, num, sizeof num);
    if (x->rationale) (void)mgsm_last_number(x->rationale, num, sizeof num);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *const langs[4] = {NULL, "en", "zh", "my"};
    unsigned sel = data[0];
    TaskReadOpts o = {.lang = langs[(sel >> 3) & 3], .strict = (sel >> 5) & 1,
                      .nli_header = (TaskNliHeader)((sel >> 6) % 3), .nli_yes_no = (sel >> 7) & 1};
    TaskSet s;
    afx_err e;
    if (task_read(&s, (TaskKind)(sel % 5), (const char *)data + 1, size - 1, "fuzz.en.tsv", &o, &e)) return 0;
    for (size_t i = 0; i < s.n; i++) exercise(&s.ex[i]);
    for (size_t i = 0; i < s.n_problems; i++)
        if (!s.problems[i] || !strchr(s.problems[i], ':')) abort(); // "NAME:LINE: what"
    task_set_free(&s);
    return 0;
}
