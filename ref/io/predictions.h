/* predictions.h — the predictions.jsonl that `affix eval` writes, read back for `affix score`: one
 * JSON object per line with the strings "lang", "id" and "prediction" (other keys ignored). Lines are
 * looked up by (lang, id); when a pair repeats, its first line is the one used.
 * Errors: "NAME:LINE: what is wrong" (a line that is not such an object, a string holding \u0000).
 */
#ifndef AFFIX_PREDICTIONS_H
#define AFFIX_PREDICTIONS_H

#include <stddef.h>

#include "err.h"

typedef struct {
    char lang[16];
    char *id, *pred;
    size_t order; /* the line's place in the file */
} Prediction;

typedef struct {
    Prediction *p; /* n entries, sorted by (lang, id, order) */
    size_t n;
} PredSet;

/* buf[0..len) (need not be NUL-terminated), labelled name in messages; on failure *s is empty */
int pred_set_read(PredSet *s, const char *buf, size_t len, const char *name, afx_err *e);
/* the prediction of (lang, id) (its first line), or NULL */
const Prediction *pred_set_find(const PredSet *s, const char *lang, const char *id);
void pred_set_free(PredSet *s);

#endif
