/* fuzz_tiktoken.c — libFuzzer harness for the tiktoken rank-file reader (tokenizer_from_tiktoken:
 * base64 tokens and ranks, one per line). Built by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/fuzz/tiktoken
 * (Only Llama 3's file of 128,000 ranks is accepted, so a fuzzed input ends in a refusal; the
 * harness checks that every refusal is clean.)
 */
#include <stdint.h>
#include <stdlib.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Tokenizer *t = NULL;
    afx_err e;
    if (tokenizer_from_tiktoken(&t, (const char *)data, size, "fuzz", &e) == 0) tokenizer_free(t);
    else if (t) abort();
    return 0;
}
