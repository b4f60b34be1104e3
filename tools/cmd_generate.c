/* cmd_generate.c — affix generate: load a model (HF directory or GGUF), tokenize a prompt, decode
 * with the KV cache, sample (greedy by default), print the text as it comes or the ids. Optionally
 * with an adapter (a PEFT-format directory, read as affix eval --adapter reads it), and the logits of
 * the last prompt position (the distribution of the first generated token) written to a file.
 *
 *   affix generate -m MODEL [--adapter DIR] [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S] [--ids]
 *                  [--no-bos] [--logits FILE]
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h"
#include "cli.h"
#include "decode.h"
#include "files.h"
#include "hooks.h"
#include "kernels_simd.h"
#include "model.h"
#include "peft.h"
#include "sampler.h"
#include "st_write.h"
#include "tokenizer.h"

static int usage(void) {
    fprintf(stderr,
            "usage: affix generate -m MODEL [--adapter DIR] [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S] [--ids]\n"
            "                      [--no-bos] [--logits FILE]\n"
            "  -m MODEL       a Hugging Face model directory or a .gguf file\n"
            "  --adapter DIR  a PEFT-format adapter directory (affix train's OUT/adapter, PEFT's save_pretrained)\n"
            "  -p PROMPT      text to continue (default: nothing, i.e. start from BOS)\n"
            "  -n N           tokens to generate (default 64; stops early at EOS)\n"
            "  --temp T       temperature, 0 = greedy (default 0)\n"
            "  --top-p P      nucleus sampling mass in (0,1] (default 1 = off)\n"
            "  --seed S       random seed for sampling (default 0)\n"
            "  --ids          print the generated token ids (one line, without the prompt's) instead of text\n"
            "  --no-bos       do not put BOS before the prompt\n"
            "  --weights W    file (default): a GGUF's quantized matrices stay as the file holds them, decoded in\n"
            "                 the kernels; f32: every weight converted to float32 on load (the same outputs)\n"
            "  --logits FILE  write the logits of the last prompt position (the first generated token's\n"
            "                 distribution, before temperature): V raw little-endian float32, atomically\n");
    return 2;
}

/* the V logits as little-endian float32, written atomically (st_write.h) */
static int write_logits(const char *file, const real *x, int V, afx_err *e) {
    unsigned char *b = malloc((size_t)V * 4);
    if (!b) return afx_fail(e, "%s: out of memory", file);
    for (int i = 0; i < V; i++) {
        float f = (float)x[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int k = 0; k < 4; k++) b[4 * (size_t)i + k] = (unsigned char)(u >> (8 * k));
    }
    int r = afx_text_write(file, (const char *)b, (size_t)V * 4, e);
    free(b);
    return r;
}

static double now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_generate(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *adapter = NULL, *logits_path = NULL;
    int n_gen = 64, n_given = 0, print_ids = 0, no_bos = 0;
    double temp = 0, top_p = 1;
    const char *weights = NULL;
    unsigned long long seed = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0;
        if (!strcmp(a, "--ids")) { print_ids = 1; continue; }
        if (!strcmp(a, "--no-bos")) { no_bos = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        int known = !strcmp(a, "-m") || !strcmp(a, "-p") || !strcmp(a, "--adapter") || !strcmp(a, "--logits") ||
                    !strcmp(a, "-n") || !strcmp(a, "--temp") || !strcmp(a, "--top-p") || !strcmp(a, "--seed") ||
                    !strcmp(a, "--weights");
        if (!known) { fprintf(stderr, "affix: error: generate: unknown option '%s' (see affix generate --help)\n", a); return 2; }
        if (!v) { fprintf(stderr, "affix: error: generate: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "-m")) path = v;
        else if (!strcmp(a, "-p")) prompt = v;
        else if (!strcmp(a, "--adapter")) adapter = v;
        else if (!strcmp(a, "--logits")) logits_path = v;
        else if (!strcmp(a, "--weights")) weights = v;
        else if (!strcmp(a, "-n")) r = cli_int(a, v, 0, INT_MAX, &n_gen), n_given = 1;
        else if (!strcmp(a, "--temp")) r = cli_double(a, v, 0, 1e6, &temp);
        else if (!strcmp(a, "--top-p")) {
            r = cli_double(a, v, 0, 1, &top_p);
            if (!r && !(top_p > 0)) { fprintf(stderr, "affix: error: --top-p '%s' must be in (0, 1]\n", v); return 2; }
        } else r = cli_u64(a, v, &seed);
        if (r) return 2;
    }
    if (!path) { fprintf(stderr, "affix: error: generate needs -m MODEL (see affix generate --help)\n"); return 2; }

    afx_err e = {{0}};
    Model m;
    Tokenizer *tok = NULL;
    LlamaCache cache;
    Sampler smp;
    CliAdapters ca;
    AdapterSet *use_set = NULL; // the set the decoder runs with (NULL: none, or full fine-tuning)
    int *ids = NULL, n_ids = 0, rc = 1, have_cache = 0, have_sampler = 0;
    char *text = NULL;
    memset(&ca, 0, sizeof ca);
    ModelOpts mo;
    if (cli_weights(weights, adapter, 0, &mo)) return 2;
    if (model_load_opts(&m, path, &mo, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); return 1; }
    if (adapter) { // as affix eval --adapter (tools/cli_adapters.c)
        if (cli_adapters_open(&ca, adapter, &m, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        if (ca.note[0]) fprintf(stderr, "affix: note: %s\n", ca.note);
        use_set = ca.use;
    }
    // the tokenizer is needed for a prompt and for printing text; --ids from BOS works without one
    if (tokenizer_load(&tok, path, &e)) {
        if (prompt || !print_ids) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        tok = NULL;
    }
    if (prompt) {
        if (tokenizer_encode(tok, prompt, strlen(prompt), !no_bos, &ids, &n_ids, &e)) {
            fprintf(stderr, "affix: error: prompt: %s\n", e.msg);
            goto done;
        }
    }
    if (n_ids == 0) { // nothing to condition on: start from BOS
        int bos = tok ? tokenizer_bos(tok) : m.bos_id;
        if (bos < 0) { fprintf(stderr, "affix: error: %s: no prompt and no BOS token to start from\n", path); goto done; }
        free(ids);
        ids = malloc(sizeof(int));
        if (!ids) { fprintf(stderr, "affix: error: out of memory\n"); goto done; }
        ids[0] = bos;
        n_ids = 1;
    }
    int eos = tok ? tokenizer_eos(tok) : m.eos_id;
    // every position is below max_position_embeddings (virtual tokens of an adapter take some):
    // an explicit -n beyond it is refused before anything is allocated; the default is cut to fit
    {
        ModelHooks *h = adapter_hooks(use_set);
        long long taken = (long long)(h ? hooks_tokens(h, 0) + hooks_position_offset(h) : 0) + n_ids;
        long long room = (long long)m.cfg.max_pos - taken;
        if (room < 0) room = 0;
        if ((long long)n_gen > room) {
            if (n_given) {
                fprintf(stderr, "affix: error: -n %d: the prompt's %d tokens%s and %d new ones exceed %s's "
                        "max_position_embeddings = %d (at most -n %lld here)\n", n_gen, n_ids,
                        taken > n_ids ? " (plus the adapter's virtual tokens)" : "", n_gen, path, m.cfg.max_pos, room);
                goto done;
            }
            n_gen = (int)room;
        }
        // the KV cache: 2 (K, V) x layers x (tokens + virtual ones) x kv width, checked before it is made
        size_t f[5] = {2, (size_t)m.cfg.L, (size_t)(n_ids + n_gen) + (h ? (size_t)hooks_tokens(h, 0) : 0) + 256,
                       (size_t)m.cfg.NKV * (size_t)m.cfg.HS, sizeof(real)};
        if (afx_mem_check(afx_size_prod(f, 5), "generate: the KV cache", &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    }
    if (n_ids + n_gen < 1) { fprintf(stderr, "affix: error: %s: nothing to generate\n", path); goto done; }
    if (llama_cache_alloc(&cache, &m.cfg, adapter_hooks(use_set), 1, n_ids + n_gen, 256, &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        goto done;
    }
    have_cache = 1;
    cache.last_only = 1; // sampling (and --logits) read the last position only
    if (sampler_init(&smp, m.cfg.V, temp, top_p, seed, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    have_sampler = 1;
    char kmsg[256];
    cache.kern = kernels_from_env("auto", kmsg, sizeof kmsg); // AFFIX_KERNELS=ref|simd|blas|...
    if (!cache.kern) { fprintf(stderr, "affix: error: AFFIX_KERNELS: %s\n", kmsg); goto done; }
    int *out = realloc(ids, sizeof(int) * (size_t)(n_ids + n_gen + 1));
    if (!out) { fprintf(stderr, "affix: error: out of memory\n"); goto done; }
    ids = out;

    double t0 = now();
    const real *last;
    if (llama_decode(&m.w, adapter_hooks(use_set), &cache, ids, NULL, n_ids, &last, NULL, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    double t_prefill = now() - t0;
    if (logits_path && write_logits(logits_path, last, m.cfg.V, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    size_t printed = 0;
    if (!print_ids && tok) { // the prompt as the tokenizer reads it back
        if (tokenizer_decode(tok, ids, n_ids, 1, &text, &printed, &e) == 0) fputs(text, stdout);
        free(text);
        text = NULL;
        fflush(stdout);
    }
    int n = 0;
    for (; n < n_gen; n++) {
        int next = sampler_next(&smp, last);
        if (next == eos) break;
        ids[n_ids + n] = next;
        if (print_ids) {
            printf("%s%d", n ? " " : "", next);
        } else { // print what the new token adds to the decoded text
            size_t len;
            if (tokenizer_decode(tok, ids, n_ids + n + 1, 1, &text, &len, &e) == 0 && len >= printed) {
                fwrite(text + printed, 1, len - printed, stdout);
                fflush(stdout);
                printed = len;
            }
            free(text);
            text = NULL;
        }
        if (n + 1 < n_gen && llama_decode(&m.w, adapter_hooks(use_set), &cache, &next, NULL, 1, &last, NULL, &e)) {
            fprintf(stderr, "\naffix: error: %s\n", e.msg);
            goto done;
        }
    }
    printf("\n");
    fflush(stdout);
    double dt = now() - t0 - t_prefill;
    fprintf(stderr, "affix: %d prompt tokens in %.3f s, %d generated in %.3f s (%.1f tok/s)\n", n_ids, t_prefill, n,
            dt, n > 0 && dt > 0 ? n / dt : 0.0);
    rc = 0;
done:
    if (have_sampler) sampler_free(&smp);
    if (have_cache) llama_cache_free(&cache);
    cli_adapters_close(&ca);
    free(ids);
    tokenizer_free(tok);
    model_free(&m);
    return rc;
}
