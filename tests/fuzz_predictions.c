/* fuzz_predictions.c — libFuzzer harness for the predictions.jsonl reader of `affix score`
 * (pred_set_read). Built by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/fuzz/predictions
 *
 * An accepted file must find every one of its own entries again (and the first line of a repeated
 * pair); a refusal leaves the set empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "predictions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PredSet s;
    afx_err e;
    if (pred_set_read(&s, (const char *)data, size, "fuzz", &e)) {
        if (s.p || s.n) abort();
        return 0;
    }
    for (size_t i = 0; i < s.n; i++) {
        const Prediction *p = pred_set_find(&s, s.p[i].lang, s.p[i].id);
        if (!p || strcmp(p->id, s.p[i].id) || p->order > s.p[i].order) abort();
    }
    pred_set_free(&s);
    return 0;
}
