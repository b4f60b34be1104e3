/* fuzz_tokenizer_json.c — libFuzzer harness for the tokenizer.json loader (tokenizer_from_json),
 * with an optional tokenizer_config.json: the bytes after the first "\0\0\0\0" of the input. Built
 * by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/fuzz/tokenizer_json
 *
 * When the input loads, a fixed multilingual text (with a special token and invalid-UTF-8-free
 * bytes of every length) is encoded and decoded, and every id's bytes are read back, so that a
 * loader that accepted a lie is caught by the sanitizers afterwards.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TEXT[] = "ab abc aé Ãb <|end|> <s></s> Grüße, 世界! 12345 \t\n x";

static void exercise(const Tokenizer *t) {
    int *ids = NULL, n = 0;
    afx_err e;
    for (int bos = 0; bos < 2; bos++) {
        if (tokenizer_encode(t, TEXT, sizeof TEXT - 1, bos, &ids, &n, &e) == 0) {
            char *text = NULL;
            size_t len;
            for (int skip = 0; skip < 2; skip++)
                if (tokenizer_decode(t, ids, n, skip, &text, &len, &e) == 0) free(text);
            free(ids);
        }
    }
    char buf[64];
    size_t len;
    for (int id = -1; id <= tokenizer_vocab_size(t); id++) (void)tokenizer_token_bytes(t, id, buf, sizeof buf, &len);
    (void)tokenizer_bos(t), (void)tokenizer_eos(t), (void)tokenizer_adds_bos(t), (void)tokenizer_token_id(t, "ab");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *cfg = NULL;
    size_t n = size, cn = 0;
    for (size_t i = 0; i + 4 <= size; i++)
        if (!memcmp(p + i, "\0\0\0\0", 4)) { n = i, cfg = p + i + 4, cn = size - i - 4; break; }
    Tokenizer *t = NULL;
    afx_err e;
    if (tokenizer_from_json(&t, p, n, cfg, cn, "fuzz", &e) == 0) {
        if (!t) abort();
        exercise(t);
        tokenizer_free(t);
    } else if (t) abort(); /* a refusal leaves nothing */
    return 0;
}
