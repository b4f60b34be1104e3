/* fuzz_config.c — libFuzzer harness for the config.json reader (llama_config_from_json: every
 * field type-checked, sizes against the stated limits). Built by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/tiny-hf/f32 tests/data/tiny-hf/bf16 tests/data/peft/base
 *
 * An accepted config must pass its own limits check again, and its parameter count must be
 * computable without overflow (the check the loaders do before allocating).
 */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    LlamaConfig c;
    afx_err e;
    if (llama_config_from_json(&c, (const char *)data, size, "fuzz", &e)) return 0;
    if (llama_config_limits(&c, NULL, "fuzz", &e) || llama_config_check(&c, &e)) abort();
    if (llama_params_count(&c) == 0) abort();
    return 0;
}
