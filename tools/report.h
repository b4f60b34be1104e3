/* report.h — per-language evaluation results: a text table, results.json and results.svg (a bar
 * chart by language, grouped by script, readable in any browser without other tools). */
#ifndef AFFIX_REPORT_H
#define AFFIX_REPORT_H

#include <stdio.h>

#include "err.h"

#define REPORT_MAX_METRICS 4

typedef struct {
    char lang[16];                      /* ISO 639-1 code ("en", "zh", ...) or a file label */
    int n;                              /* examples scored */
    int skipped;                        /* examples skipped (malformed input) */
    double score[REPORT_MAX_METRICS];   /* percentages */
} LangScore;

typedef struct {
    const char *task;                   /* "xquad", "xnli", "belebele", "mgsm" */
    const char *model, *adapter;        /* what was evaluated (adapter may be NULL) */
    const char *metric[REPORT_MAX_METRICS];
    int n_metrics;
    int primary;                        /* the metric the chart plots */
    const char *note;                   /* a caveat printed under the table and the chart, or NULL */
    LangScore *rows;
    int n;
} Report;

/* script and language family of a language code ("Latin", "Germanic"); "other" when unknown */
const char *lang_script(const char *lang);
const char *lang_family(const char *lang);

void report_print(FILE *f, const Report *r);
int report_write_json(const char *path, const Report *r, afx_err *e);
int report_write_svg(const char *path, const Report *r, afx_err *e);

#endif
