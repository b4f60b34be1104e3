/* fuzz_gguf.c — libFuzzer harness for the GGUF reader. Built by `make fuzz` (Makefile: libFuzzer +
 * ASan/UBSan where the clang has it, else with the standalone driver tests/fuzz_main.c); run as
 *   build/fuzz/fuzz_gguf -max_total_time=120 -max_len=65536 CORPUS_DIR tests/data/tiny-gguf
 * (CORPUS_DIR first: libFuzzer writes the inputs it finds there.) .ci/run runs it 20 s from:
 * fuzz-seeds: tests/data/tiny-gguf
 *
 * Every input is parsed from an exact-size copy; when it parses, every accessor is called on every
 * key and every tensor of a supported type is dequantized, so that a parse that accepted a lie
 * would be caught by the sanitizers afterwards.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file f;
    afx_err e;
    if (gguf_parse(&f, data, size, "fuzz", &e)) return 0;
    for (size_t i = 0; i < f.n_kv; i++) {
        const gguf_kv *kv = &f.kvs[i];
        int64_t v;
        double d;
        gguf_str s;
        (void)gguf_kv_int(kv, &v), (void)gguf_kv_float(kv, &d), (void)gguf_kv_string(kv, &s);
        for (uint64_t j = 0; j < kv->n && kv->type == GGUF_ARRAY; j++) {
            (void)gguf_kv_arr_int(kv, j, &v), (void)gguf_kv_arr_float(kv, j, &d);
            if (gguf_kv_arr_string(kv, j, &s) == 0 && s.n) v += (unsigned char)s.p[s.n - 1];
        }
        if (gguf_find_kv(&f, kv->key) == NULL) abort();
    }
    for (size_t i = 0; i < f.n_tensors; i++) {
        const gguf_tensor *t = &f.tensors[i];
        if (gguf_find_tensor(&f, t->name) == NULL) abort();
        if (!gguf_type_supported(t->type) || t->numel > ((size_t)1 << 20)) continue;
        real *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (out && gguf_to_real(t, out, &e)) abort();
        free(out);
    }
    gguf_close(&f);
    return 0;
}
