/* fuzz_model.c — libFuzzer harness for the GGUF model loader with its matrices kept in the file's
 * blocks (model_load_opts, --weights file) against the same file converted to real (--weights f32).
 * The input is written as a .gguf file in a scratch directory and loaded both ways:
 *   - both loads accept it or both refuse it, and a refusal says why;
 *   - when both accept it and the model is small, the logits of a few tokens are computed from each
 *     (the reference kernels) and must be the same bits: a kept block that decodes to other values
 *     than the converted tensor, or a descriptor that points outside the mapping, is caught here (by
 *     the comparison or by the sanitizers).
 * Built by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/tiny-gguf
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch_path[256]; /* the scratch file, made once per process (a harness may keep state; the library may not) */
static char scratch_dir[256];

static void remove_scratch(void) {
    remove(scratch_path);
    remove(scratch_dir);
}

static const char *scratch(void) {
    if (scratch_path[0]) return scratch_path;
    char tmpl[] = "/tmp/affix-fuzz-model-XXXXXX";
    if (!mkdtemp(tmpl)) abort();
    snprintf(scratch_dir, sizeof scratch_dir, "%s", tmpl);
    snprintf(scratch_path, sizeof scratch_path, "%s/model.gguf", tmpl);
    atexit(remove_scratch);
    return scratch_path;
}

/* the logits of T tokens (ids 0..T-1 mod V), B = 1, or NULL when the model is too large to run here */
static real *logits(const Model *m, int T) {
    const LlamaConfig *c = &m->cfg;
    if ((double)llama_params_count(c) > (double)(1 << 22) || (double)c->V * T > (double)(1 << 20)) return NULL;
    int ids[8];
    for (int t = 0; t < T; t++) ids[t] = t % c->V;
    LlamaActs a;
    afx_err e;
    if (llama_acts_alloc(&a, c, NULL, 1, T, &e)) return NULL;
    real *out = NULL;
    if (llama_forward(&m->w, NULL, &a, ids, NULL, NULL, 1, T, &e) == 0) {
        out = malloc((size_t)c->V * T * sizeof *out);
        if (out) memcpy(out, a.logits, (size_t)c->V * T * sizeof *out);
    }
    llama_acts_free(&a);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = scratch();
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) abort();
    Model mk, mf;
    afx_err ek = {{0}}, ef = {{0}};
    ModelOpts keep = {.keep_blocks = 1}, conv = {.keep_blocks = 0};
    int rk = model_load_opts(&mk, path, &keep, &ek), rf = model_load_opts(&mf, path, &conv, &ef);
    if ((rk == 0) != (rf == 0)) abort();      /* the two ways accept the same files */
    if ((rk && !ek.msg[0]) || (rf && !ef.msg[0])) abort(); /* a refusal says why */
    if (rk == 0) {
        int T = 4;
        real *a = logits(&mk, T), *b = logits(&mf, T);
        if ((a == NULL) != (b == NULL)) abort();
        if (a && memcmp(a, b, (size_t)mk.cfg.V * T * sizeof *a)) abort(); /* kept = converted, bit for bit */
        free(a);
        free(b);
        model_free(&mk);
        model_free(&mf);
    }
    return 0;
}
