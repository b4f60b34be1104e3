/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader (st_parse: "any bytes give 0 or
 * -1, never a bad read"). Built by `make fuzz` (Makefile: libFuzzer + ASan/UBSan where the clang
 * has it, else with the standalone driver tests/fuzz_main.c); run as
 *   build/fuzz/fuzz_safetensors -max_total_time=60 -max_len=65536 CORPUS_DIR tests/data/tiny-hf/bf16
 * (CORPUS_DIR first: libFuzzer writes the inputs it finds there.) .ci/run runs it 20 s from:
 * fuzz-seeds: tests/data/tiny-hf/bf16 tests/data/tiny-hf/f32 tests/data/peft/from_peft/lora_qv
 *
 * Every input is parsed in place (libFuzzer's buffer is exact-size); when it parses, every tensor and
 * metadata key is looked up by name, every tensor's bytes must lie inside the input, and every tensor
 * is decoded with all three converters (whole up to 256 elements, else its first and last 256),
 * so that a parse that accepted a lie would be caught by the sanitizers afterwards.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    afx_err e;
    if (st_parse(&f, data, size, "fuzz", &e)) {
        if (f.n_tensors || f.tensors) abort(); /* a refusal leaves f empty */
        return 0;
    }
    for (size_t i = 0; i < f.n_meta; i++)
        if (st_meta(&f, f.meta_keys[i]) == NULL) abort();
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (st_find(&f, t->name) != t) abort();
        if (i && strcmp(f.tensors[i - 1].name, t->name) >= 0) abort(); /* sorted, no duplicates */
        if (t->nbytes != t->numel * st_dtype_size(t->dtype)) abort();
        if (t->nbytes && (t->data < data || t->nbytes > size || (size_t)(t->data - data) > size - t->nbytes))
            abort(); /* the data lies inside the input */
        /* decode with all three converters: the whole tensor when small, else its first and its last
         * DEC elements (a lie about either end is read there; the range check above covers the rest) */
        enum { DEC = 256 };
        for (int part = 0; part < (t->numel > DEC ? 2 : 1); part++) {
            st_tensor h = *t;
            if (t->numel > DEC) {
                size_t es = st_dtype_size(t->dtype);
                h.numel = DEC, h.nbytes = DEC * es, h.ndim = 1, h.shape[0] = DEC;
                if (part) h.data = t->data + (t->numel - DEC) * es;
            }
            void *out = malloc((h.numel ? h.numel : 1) * sizeof(double)); /* room for any of the three */
            if (out && (st_to_f64(&h, out, &e) | st_to_real(&h, out, &e) | st_to_int(&h, out, &e)) > 0) abort(); /* 0 or -1 */
            free(out);
        }
    }
    st_close(&f);
    return 0;
}
