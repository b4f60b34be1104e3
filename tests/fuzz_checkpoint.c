/* fuzz_checkpoint.c — libFuzzer harness for the training checkpoint reader (ckpt_load_buffer: the
 * safetensors file, its affix_* metadata — model and method fingerprints, step / epoch / index /
 * seeds in range — and every tensor finite). The first input byte picks the run the checkpoint is
 * read for (a prefix P = 2, or LoRA r = 2 on q,v, of the tiny model of tests/data/peft/base); the
 * rest is the file. Built by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/fuzz/checkpoint
 * The seeds were written by this file itself: cc -DFUZZ_CHECKPOINT_SEEDS=DIR (see the end).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "checkpoint.h"
#include "config.h"
#include "method_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char BASE[] = "{\"hidden_size\": 24, \"intermediate_size\": 40, \"num_hidden_layers\": 3, "
                           "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 6, "
                           "\"vocab_size\": 48, \"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-05, "
                           "\"tie_word_embeddings\": false, \"hidden_act\": \"silu\"}";

typedef struct {
    LlamaConfig c;
    LlamaParams w;
    MethodSpec spec;
    Adapter ad;
    AdapterSet s;
} Run;

/* run 0: prefix P = 2; run 1: LoRA r = 2 on q,v */
static int run_make(Run *r, int which, afx_err *e) {
    memset(r, 0, sizeof *r);
    if (llama_config_from_json(&r->c, BASE, sizeof BASE - 1, "base", e) || llama_params_alloc(&r->w, &r->c, e)) return -1;
    int bad = which ? method_spec_init(&r->spec, "lora", e) || method_spec_set(&r->spec, "r", "2", e)
                    : method_spec_init(&r->spec, "prefix", e) || method_spec_set(&r->spec, "num_virtual_tokens", "2", e);
    Adapter *p = &r->ad;
    if (bad || method_spec_create(&r->ad, &r->spec, &r->c, e)) { llama_params_free(&r->w); return -1; }
    if (adapter_set_init(&r->s, &p, 1, &r->w, e)) { adapter_destroy(&r->ad); llama_params_free(&r->w); return -1; }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static Run runs[2]; // made once (a harness may keep state; a load changes only the set's values)
    static int made[2];
    int which = data[0] & 1;
    afx_err e;
    if (!made[which] && run_make(&runs[which], which, &e)) abort();
    made[which] = 1;
    Run *rp = &runs[which];
    TrainState st;
    memset(&st, 0x5a, sizeof st);
    TrainState keep = st;
    if (ckpt_load_buffer(data + 1, size - 1, "fuzz", &rp->s, &rp->spec, 1, &st, &e)) {
        if (memcmp(&st, &keep, sizeof st)) abort(); // a refusal changes nothing
    } else if (st.step < 0 || st.epoch < 0 || st.index < 0 || st.step > CKPT_MAX_STEP || st.index > CKPT_MAX_INDEX)
        abort();
    return 0;
}

#ifdef FUZZ_CHECKPOINT_SEEDS
static void run_free(Run *r) {
    adapter_set_free(&r->s);
    adapter_destroy(&r->ad);
    llama_params_free(&r->w);
}

/* cc -DFUZZ_CHECKPOINT_SEEDS='"tests/data/fuzz/checkpoint"' -Iref/core -Iref/adapters -Iref/io \
 *    tests/fuzz_checkpoint.c build/libaffix.a -lcjson -lpcre2-8 -lm -fopenmp -o /tmp/seeds && /tmp/seeds
 * (add -L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas when the library was built with OpenBLAS)
 * writes one seed per run: its selector byte, then a checkpoint of that run at step 3 */
int main(void) {
    for (int which = 0; which < 2; which++) {
        Run r;
        afx_err e;
        if (run_make(&r, which, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
        for (size_t i = 0; i < r.s.count; i++) r.s.w[i] = (real)(0.01 * (double)(i % 17) - 0.05), r.s.v[i] = (real)1e-6;
        TrainState st = {.step = 3, .epoch = 0, .index = 12, .perm_seed = 42, .rng = 7};
        char tmp[256], out[256];
        snprintf(tmp, sizeof tmp, "/tmp/fuzz_ckpt_%d.safetensors", which);
        snprintf(out, sizeof out, "%s/%s.bin", FUZZ_CHECKPOINT_SEEDS, which ? "lora" : "prefix");
        if (ckpt_save(tmp, &r.s, &r.spec, 1, &st, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
        FILE *in = fopen(tmp, "rb"), *o = fopen(out, "wb");
        if (!in || !o) return 1;
        fputc(which, o);
        int ch;
        while ((ch = fgetc(in)) != EOF) fputc(ch, o);
        fclose(in), fclose(o), remove(tmp);
        run_free(&r);
    }
    return 0;
}
#endif
