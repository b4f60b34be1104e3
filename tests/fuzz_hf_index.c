/* fuzz_hf_index.c — libFuzzer harness for the sharded Hugging Face reader: the input is written as
 * model.safetensors.index.json into a scratch copy of tests/data/tiny-hf/sharded (its config and
 * its three real shards), then the directory is loaded (model_load: the weight_map's shard names,
 * each shard opened once, every tensor located through the index, sizes checked against the
 * config) and listed (model_list_tensors). Any index gives 0 or -1 with a message, never a bad
 * read, a read outside the directory or a leak. Run from the repository root (the shards are read
 * from tests/data). Built by `make fuzz`; .ci/run runs it from:
 * fuzz-seeds: tests/data/fuzz/hf_index
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const FILES[] = {"config.json", "generation_config.json", "model-00001-of-00003.safetensors",
                                    "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"};

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    int ok = a && b;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b && fclose(b)) ok = 0;
    return ok ? 0 : -1;
}

static char scratch_dir[256]; /* the scratch directory, made once per process (a harness may keep state; the library may not) */

static void remove_scratch(void) {
    char p[512];
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) snprintf(p, sizeof p, "%s/%s", scratch_dir, FILES[i]), remove(p);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", scratch_dir), remove(p);
    remove(scratch_dir);
}

static const char *scratch(void) {
    if (scratch_dir[0]) return scratch_dir;
    char tmpl[] = "/tmp/affix-fuzz-hf-XXXXXX";
    if (!mkdtemp(tmpl)) abort();
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        char from[512], to[512];
        snprintf(from, sizeof from, "tests/data/tiny-hf/sharded/%s", FILES[i]);
        snprintf(to, sizeof to, "%s/%s", tmpl, FILES[i]);
        if (copy_file(from, to)) {
            fprintf(stderr, "fuzz_hf_index: cannot copy %s to %s (run from the repository root)\n", from, to);
            abort();
        }
    }
    snprintf(scratch_dir, sizeof scratch_dir, "%s", tmpl);
    atexit(remove_scratch);
    return scratch_dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = scratch();
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) abort();
    Model m;
    afx_err e;
    if (model_load(&m, dir, &e) == 0) {
        if (!m.w.mem) abort();
        model_free(&m);
    } else if (!e.msg[0]) abort(); /* a refusal says why */
    ModelTensor *rows = NULL;
    size_t n = 0;
    if (model_list_tensors(dir, &rows, &n, &e) == 0) {
        for (size_t i = 0; i < n; i++)
            if (!rows[i].name[0]) abort();
    }
    free(rows);
    return 0;
}
