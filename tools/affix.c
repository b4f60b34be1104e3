/* affix.c — the command-line program. It parses arguments, calls libaffix, prints results and
 * errors ("affix: error: <what>") and chooses the exit code; the library itself never prints.
 *
 * Commands so far:  affix config CONFIG.json   the parsed config and its parameter count
 *                   affix version               version, number type, OpenMP threads
 * (generate / train / eval / bench arrive with their issues.)
 */
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "config.h"
#include "llama.h"

#define AFFIX_VERSION "0.1.0"

static int usage(FILE *out) {
    fprintf(out,
            "usage: affix <command> [options]\n"
            "\n"
            "commands:\n"
            "  config CONFIG.json   print a Llama/Mistral config.json as affix reads it, with its\n"
            "                       parameter count\n"
            "  version              print the version, the number type and the OpenMP threads\n"
            "  help                 this text\n");
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

int main(int argc, char **argv) {
    if (argc < 2) return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return usage(stdout);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        int threads = 1;
#ifdef _OPENMP
        threads = omp_get_max_threads();
#endif
        printf("affix %s (%s reference, %d OpenMP thread%s)\n", AFFIX_VERSION, AFFIX_REAL_NAME, threads,
               threads == 1 ? "" : "s");
        return 0;
    }
    if (!strcmp(cmd, "config")) return cmd_config(argc - 2, argv + 2);
    fprintf(stderr, "affix: error: unknown command '%s' (try: affix help)\n", cmd);
    return 2;
}
