/* affix.c — the command-line program. It parses arguments, calls libaffix, prints results and
 * errors ("affix: error: <what>") and chooses the exit code; the library itself never prints.
 *
 * Here: dispatch, config, params, version, help. Every other command has its own file
 * (tools/cmd_*.c, declared in cli.h): info, tokenize, generate, train, eval, score, bench.
 * Global option, anywhere on the line: --kernels ref|simd|blas|auto|avx2|avx512|neon (default: the
 * AFFIX_KERNELS variable, else auto). It is checked here and passed on in AFFIX_KERNELS, where
 * every command takes its kernel table from (kernels_from_env("auto", ...), simd/kernels_simd.h).
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "adapter.h"
#include "cli.h"
#include "dist.h"
#include "config.h"
#include "kernels_simd.h"
#include "llama.h"
#include "method_spec.h"

#define AFFIX_VERSION "0.1.0"
#ifndef AFFIX_COMMIT
#define AFFIX_COMMIT "unknown"
#endif

static int usage(FILE *out) {
    fprintf(out,
            "usage: affix <command> [options]\n"
            "\n"
            "commands (each has --help):\n"
            "  info -m MODEL        format, config, dtype, parameters, BOS/EOS and tensors of a\n"
            "                       Hugging Face directory or a GGUF file\n"
            "  tokenize -m MODEL_OR_TOKENIZER [--no-bos] [--decode]\n"
            "                       UTF-8 text on stdin -> token ids on one line (or back)\n"
            "  generate -m MODEL [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S] [--ids]\n"
            "                       continue a prompt (greedy by default, KV cache)\n"
            "  train -m MODEL --method METHOD [options] --task T --data FILE... --out DIR\n"
            "                       fine-tune on a task (squad, nli, belebele, gsm8k, mgsm); writes a\n"
            "                       PEFT-format adapter, a resumable checkpoint and train_log.csv\n"
            "  eval -m MODEL [--adapter DIR] --task T --data FILE... [--out DIR]\n"
            "                       zero-shot evaluation per language (xquad, xnli, belebele, mgsm), or\n"
            "                       --task lm (NLL per token): table, predictions.jsonl, results.json/.svg\n"
            "  probe -m MODEL [--adapter DIR | --compare A B] --task xnli|xquad --data FILE...\n"
            "                       linear CKA with English per layer on parallel texts (heat map)\n"
            "  score --task T --data FILE... --predictions FILE\n"
            "                       the metrics of a predictions file alone\n"
            "  compare A.safetensors B.safetensors [--tol X]\n"
            "                       the same tensors? max |a-b| per tensor relative to max |a|\n"
            "  (train and eval run data-parallel under mpirun -np K: README \"More than one machine\")\n"
            "  bench                speed of training steps, forward, decoding and GEMMs\n"
            "  config CONFIG.json   print a Llama/Mistral config.json as affix reads it, with its\n"
            "                       parameter count\n"
            "  params --config CONFIG.json --method METHOD [options]\n"
            "                       count the trainable parameters of a method on a model (no\n"
            "                       weights are read); the last line is 'trainable N'\n"
            "  version              print the version, the number type, the OpenMP threads and the\n"
            "                       kernel table\n"
            "  help                 this text\n"
            "\n"
            "methods and their options (defaults are PEFT's):\n"
            "  prompt         --num-virtual-tokens P (required)  --prompt-init random|vocab\n"
            "  prefix         --num-virtual-tokens P (required)  --layers all|top:K|A-B|i,j,k (all)\n"
            "                 --prefix-projection  --encoder-hidden-size E (KV width)\n"
            "                 --position-offset prefix|zero (prefix: real tokens at P..)\n"
            "                 --prefix-window past|always (Gemma 3 sliding layers; past = PEFT)\n"
            "  llama-adapter  --adapter-len P (10)  --adapter-layers N (30, the top N)\n"
            "                 --gate peft|official (peft: one raw scalar per layer; official:\n"
            "                 tanh, one per head)\n"
            "  lora           --r R (8)  --alpha A (8)  --rslora  --targets q,v (any of\n"
            "                 q,k,v,o,gate,up,down, or all-linear)\n"
            "  full           no options: every base weight\n"
            "  --name=value works too; PEFT's keys are accepted as aliases (lora_alpha,\n"
            "  use_rslora, target_modules, prompt_tuning_init).\n"
            "\n"
            "global option (anywhere):\n"
            "  --kernels NAME       the kernels the model runs on: ref (scalar reference), simd (best\n"
            "                       of avx512/avx2/neon), blas (OpenBLAS GEMMs + simd), auto (the\n"
            "                       fastest here; default), or one of avx2, avx512, neon. Default:\n"
            "                       the AFFIX_KERNELS environment variable, else auto.\n");
    return out == stdout ? 0 : 2;
}

static int cmd_config(int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "affix: error: config takes exactly one CONFIG.json\n");
        return 2;
    }
    LlamaConfig c;
    afx_err e;
    if (llama_config_load(&c, argv[0], &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        return 1;
    }
    printf("vocab_size              %d\n", c.V);
    printf("hidden_size             %d\n", c.C);
    printf("intermediate_size       %d\n", c.FF);
    printf("num_hidden_layers       %d\n", c.L);
    printf("num_attention_heads     %d\n", c.NH);
    printf("num_key_value_heads     %d\n", c.NKV);
    printf("head_dim                %d\n", c.HS);
    printf("rms_norm_eps            %g\n", c.eps);
    printf("rope_theta              %g\n", c.rope_theta);
    if (c.rope_factor > 0)
        printf("rope_scaling            llama3 factor %g low %g high %g original %g\n", c.rope_factor,
               c.rope_low_freq_factor, c.rope_high_freq_factor, c.rope_original_max_position);
    else
        printf("rope_scaling            none\n");
    printf("tie_word_embeddings     %s\n", c.tied ? "true" : "false");
    printf("max_position_embeddings %d\n", c.max_pos);
    printf("parameters              %zu\n", llama_params_count(&c));
    return 0;
}

/* "model.layers.12.self_attn.q_proj.lora_A.weight" -> "model.layers.*.self_attn.q_proj.lora_A.weight" */
static void group_name(const char *name, char *out, size_t n) {
    size_t o = 0;
    for (const char *p = name; *p && o + 1 < n;) {
        int after_layers = p - name >= 7 && !strncmp(p - 7, "layers.", 7);
        if (after_layers && *p >= '0' && *p <= '9') {
            while (*p >= '0' && *p <= '9') p++;
            out[o++] = '*';
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
}

static int cmd_params(int argc, char **argv) {
    const char *config = NULL, *method = NULL;
    char **rest = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *rest);
    int nrest = 0;
    if (!rest) {
        fprintf(stderr, "affix: error: out of memory\n");
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        const char **dst = !strncmp(argv[i], "--config", 8) ? &config : !strncmp(argv[i], "--method", 8) ? &method : NULL;
        const char *tail = argv[i] + 8;
        if (!dst || (*tail && *tail != '=')) {
            rest[nrest++] = argv[i];
            continue;
        }
        if (*dst) {
            fprintf(stderr, "affix: error: params: %.8s is given twice\n", argv[i]);
            free(rest);
            return 2;
        }
        if (*tail == '=') {
            *dst = tail + 1;
        } else if (i + 1 < argc) {
            *dst = argv[++i];
        } else {
            fprintf(stderr, "affix: error: params: %s needs a value\n", argv[i]);
            free(rest);
            return 2;
        }
    }
    if (!config || !method) {
        fprintf(stderr, "affix: error: params needs --config CONFIG.json and --method METHOD (try: affix help)\n");
        free(rest);
        return 2;
    }
    LlamaConfig c;
    MethodSpec s;
    Adapter ad;
    afx_err e;
    if (llama_config_load(&c, config, &e) || method_spec_init(&s, method, &e) ||
        method_spec_parse_args(&s, nrest, rest, &e) || method_spec_create(&ad, &s, &c, &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        free(rest);
        return 1;
    }
    free(rest);

    size_t base = llama_params_count(&c), n = adapter_param_count(&ad);
    char desc[1024];
    method_spec_describe(&s, &c, desc, sizeof desc);
    printf("config     %s: V=%d C=%d FF=%d L=%d NH=%d NKV=%d HS=%d tied=%s\n", config, c.V, c.C, c.FF, c.L, c.NH,
           c.NKV, c.HS, c.tied ? "true" : "false");
    printf("base       %zu\n", base);
    printf("method     %s\n", desc);

    /* the parameter table grouped over layer indices, in first-seen order */
    int ng = 0;
    char (*gname)[128] = malloc((size_t)(ad.n_params > 0 ? ad.n_params : 1) * sizeof *gname);
    size_t *gnumel = calloc((size_t)(ad.n_params > 0 ? ad.n_params : 1), sizeof *gnumel);
    int *gcount = calloc((size_t)(ad.n_params > 0 ? ad.n_params : 1), sizeof *gcount);
    if (!gname || !gnumel || !gcount) {
        fprintf(stderr, "affix: error: out of memory\n");
        free(gname), free(gnumel), free(gcount);
        adapter_destroy(&ad);
        return 1;
    }
    for (int i = 0; i < ad.n_params; i++) {
        char g[128];
        group_name(ad.params[i].name, g, sizeof g);
        int k = 0;
        while (k < ng && strcmp(gname[k], g)) k++;
        if (k == ng) strcpy(gname[ng++], g);
        gnumel[k] += ad.params[i].numel;
        gcount[k]++;
    }
    for (int k = 0; k < ng; k++)
        printf("  %-50s %4d tensor%s %12zu\n", gname[k], gcount[k], gcount[k] == 1 ? " " : "s", gnumel[k]);
    free(gname), free(gnumel), free(gcount);
    printf("share      %.6f%% of the base\n", base ? 100.0 * (double)n / (double)base : 0.0);
    printf("trainable %zu\n", n);
    adapter_destroy(&ad);
    return 0;
}

/* Removes --kernels NAME / --kernels=NAME from argv, checks the name and exports it as AFFIX_KERNELS.
 * Returns 0, or 2 (usage error, message printed). */
static int take_kernels_option(int *argc, char **argv) {
    const char *name = NULL;
    int n = 1;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "--kernels")) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "affix: error: --kernels needs a value (ref|simd|blas|auto|avx2|avx512|neon)\n");
                return 2;
            }
            name = argv[++i];
        } else if (!strncmp(argv[i], "--kernels=", 10)) {
            name = argv[i] + 10;
        } else {
            argv[n++] = argv[i];
        }
    }
    *argc = n;
    argv[n] = NULL;
    char msg[256];
    const Kernels *k = kernels_from_env("auto", msg, sizeof msg);
    if (name) k = kernels_select(name, msg, sizeof msg);
    if (!k) {
        fprintf(stderr, "affix: error: %s%s\n", name ? "--kernels: " : "AFFIX_KERNELS: ", msg);
        return 2;
    }
    if (name && setenv("AFFIX_KERNELS", name, 1)) {
        fprintf(stderr, "affix: error: cannot set AFFIX_KERNELS\n");
        return 1;
    }
    return 0;
}

int cli_ll(const char *opt, const char *v, long long lo, long long hi, long long *out) {
    const char *p = v ? v : "";
    if (*p == '+' || *p == '-') p++;
    int digits = *p >= '0' && *p <= '9';
    char *end = NULL;
    errno = 0;
    long long x = digits ? strtoll(v, &end, 10) : 0;
    if (!digits || errno || *end || x < lo || x > hi) {
        if (digits && !*end && (errno == ERANGE || x < lo || x > hi))
            fprintf(stderr, "affix: error: %s '%s' is out of range (%lld..%lld)\n", opt, v, lo, hi);
        else fprintf(stderr, "affix: error: %s '%s' is not an integer (%lld..%lld)\n", opt, v ? v : "", lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_int(const char *opt, const char *v, long long lo, long long hi, int *out) {
    long long x;
    if (lo < INT_MIN) lo = INT_MIN;
    if (hi > INT_MAX) hi = INT_MAX;
    if (cli_ll(opt, v, lo, hi, &x)) return -1;
    *out = (int)x;
    return 0;
}

int cli_u64(const char *opt, const char *v, unsigned long long *out) {
    const char *p = v ? v : "";
    char *end = NULL;
    errno = 0;
    unsigned long long x = *p >= '0' && *p <= '9' ? strtoull(p, &end, 10) : 0;
    if (!(*p >= '0' && *p <= '9') || errno || *end) {
        fprintf(stderr, "affix: error: %s '%s' is not %s (0..%llu)\n", opt, p,
                errno == ERANGE ? "in range" : "a non-negative integer", ULLONG_MAX);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_double(const char *opt, const char *v, double lo, double hi, double *out) {
    const char *p = v ? v : "";
    char *end = NULL;
    double x = *p ? strtod(p, &end) : NAN;
    if (!*p || *end || !isfinite(x)) {
        fprintf(stderr, "affix: error: %s '%s' is not a finite number\n", opt, p);
        return -1;
    }
    if (x < lo || x > hi) {
        fprintf(stderr, "affix: error: %s '%s' is out of range (%g..%g)\n", opt, p, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_take_files(int argc, char **argv, int *i, const char **files, int *n, int max) {
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
        if (*n == max) {
            fprintf(stderr, "affix: error: at most %d data files\n", max);
            return 2;
        }
        files[(*n)++] = argv[++*i];
    }
    return 0;
}

int main(int argc, char **argv) {
    int rc = take_kernels_option(&argc, argv);
    if (rc) return rc;
    if (argc < 2) return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return usage(stdout);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        int threads = 1;
#ifdef _OPENMP
        threads = omp_get_max_threads();
#endif
        printf("affix %s, commit %s (%s reference, %d OpenMP thread%s)\n", AFFIX_VERSION, AFFIX_COMMIT, AFFIX_REAL_NAME,
               threads, threads == 1 ? "" : "s");
        char msg[256];
        const Kernels *k = kernels_from_env("auto", msg, sizeof msg);
        printf("kernels %s (built: %s)\n", k ? k->name : "?", kernels_built());
        printf("MPI %s\n", dist_built_with_mpi() ? "yes (train and eval under mpirun -np K)" : "no (built without it)");
        return 0;
    }
    if (!strcmp(cmd, "config")) return cmd_config(argc - 2, argv + 2);
    if (!strcmp(cmd, "params")) return cmd_params(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 2, argv + 2);
    if (!strcmp(cmd, "train") || !strcmp(cmd, "eval")) { // under mpirun: one rank of several (tools/dist.h)
        Dist d;
        afx_err e = {{0}};
        int train = !strcmp(cmd, "train");
        if (dist_init(&d, &argc, &argv, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); return 1; }
        return dist_end(&d, train ? cmd_train(argc - 2, argv + 2, &d) : cmd_eval(argc - 2, argv + 2, &d));
    }
    if (!strcmp(cmd, "score")) return cmd_score(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "probe")) return cmd_probe(argc - 2, argv + 2);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 2, argv + 2);
    fprintf(stderr, "affix: error: unknown command '%s' (try: affix help)\n", cmd);
    return 2;
}
