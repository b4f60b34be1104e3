/* fuzz_tokenizer_gguf.c — libFuzzer harness for the tokenizer stored in a GGUF file
 * (tokenizer.ggml.*: SentencePiece scores or GPT-2 merges; tokenizer_from_gguf), then an encode and
 * decode of a fixed text. Built by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/stories260K tests/data/vocab/llama.cpp
 * (-max_len must hold a vocabulary: 65536 keeps the start of these files; most inputs end in a
 * refusal, which is what is checked to be clean.)
 */
#include <stdint.h>
#include <stdlib.h>

#include "gguf.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TEXT[] = "Once upon a time, Grüße 世界 <s></s> 123";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file f;
    afx_err e;
    if (gguf_parse(&f, data, size, "fuzz", &e)) return 0;
    Tokenizer *t = NULL;
    if (tokenizer_from_gguf(&t, &f, "fuzz", &e) == 0) {
        int *ids = NULL, n = 0;
        if (tokenizer_encode(t, TEXT, sizeof TEXT - 1, 1, &ids, &n, &e) == 0) {
            char *text = NULL;
            size_t len;
            if (tokenizer_decode(t, ids, n, 0, &text, &len, &e) == 0) free(text);
            free(ids);
        }
        tokenizer_free(t);
    } else if (t) abort();
    gguf_close(&f);
    return 0;
}
