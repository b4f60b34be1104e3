/* fuzz_peft.c — libFuzzer harness for the PEFT adapter reader (peft_load_buffers): the input is an
 * adapter_config.json, four NUL bytes, then an adapter_model.safetensors, read for the model of
 * tests/data/peft/base (hidden 24, 3 layers, heads 4/2, head_dim 6). Built by `make fuzz`; the
 * seeds are the adapters of tests/data/peft joined that way, made into the corpus by .ci/run:
 * fuzz-seeds-gen: sh tests/fuzz_peft_seeds.sh
 *
 * An adapter that loads is bound to a zero base model and applied, so that a reader that accepted
 * a lie (a shape, a count) is caught by the sanitizers afterwards.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "config.h"
#include "peft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char BASE[] = "{\"hidden_size\": 24, \"intermediate_size\": 40, \"num_hidden_layers\": 3, "
                           "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 6, "
                           "\"vocab_size\": 48, \"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-05, "
                           "\"tie_word_embeddings\": false, \"hidden_act\": \"silu\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    LlamaConfig c;
    afx_err e;
    if (llama_config_from_json(&c, BASE, sizeof BASE - 1, "base", &e)) abort();
    size_t cut = size;
    for (size_t i = 0; i + 4 <= size; i++)
        if (!memcmp(data + i, "\0\0\0\0", 4)) { cut = i; break; }
    if (cut == size) return 0; // not the two parts
    PeftAdapter pa;
    if (peft_load_buffers((const char *)data, cut, data + cut + 4, size - cut - 4, &c, &pa, "fuzz", &e)) {
        if (pa.values) abort(); // a refusal leaves pa empty
        return 0;
    }
    if (pa.spec.method != METHOD_FULL) {
        LlamaParams w;
        AdapterSet s;
        Adapter *p = &pa.ad;
        if (!llama_params_alloc(&w, &c, &e)) {
            if (!adapter_set_init(&s, &p, 1, &w, &e)) {
                (void)peft_adapter_apply(&pa, &e);
                adapter_set_free(&s);
            }
            llama_params_free(&w);
        }
    }
    peft_adapter_free(&pa);
    return 0;
}
