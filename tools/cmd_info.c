/* cmd_info.c — affix info -m MODEL: what a model file or directory holds.
 *
 * Prints the format, the config as affix reads it (the lines of `affix config`), the source dtype,
 * the parameter count, bos/eos, and the tensor table of the file(s) (name, dtype, shape as stored:
 * safetensors (out, in); GGUF ggml ne order (in, out)). The model is loaded in full first, so a
 * model that `info` accepts is one that every other command can use.
 * What this is not: a tokenizer inspector (affix tokenize) or a checksum tool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"

static void print_config(const LlamaConfig *c) {
    printf("model_type              %s\n", c->arch == AFX_ARCH_GEMMA3 ? "gemma3_text" : "llama");
    printf("vocab_size              %d\n", c->V);
    printf("hidden_size             %d\n", c->C);
    printf("intermediate_size       %d\n", c->FF);
    printf("num_hidden_layers       %d\n", c->L);
    printf("num_attention_heads     %d\n", c->NH);
    printf("num_key_value_heads     %d\n", c->NKV);
    printf("head_dim                %d\n", c->HS);
    printf("rms_norm_eps            %g\n", c->eps);
    printf("rope_theta              %g\n", c->rope_theta);
    if (c->rope_factor > 0)
        printf("rope_scaling            llama3 factor %g low %g high %g original %g\n", c->rope_factor,
               c->rope_low_freq_factor, c->rope_high_freq_factor, c->rope_original_max_position);
    else
        printf("rope_scaling            none\n");
    printf("tie_word_embeddings     %s\n", c->tied ? "true" : "false");
    printf("max_position_embeddings %d\n", c->max_pos);
    if (c->arch == AFX_ARCH_GEMMA3) {
        // values a Gemma GGUF does not carry come from transformers' Gemma3TextConfig defaults
        // (ref/io/model.c, ref/io/config.c); printed so that nothing is a silent guess
        printf("hidden_activation       gelu_pytorch_tanh\n");
        printf("query_pre_attn_scalar   %g\n", c->query_pre_attn_scalar);
        printf("sliding_window          %d\n", c->sliding_window);
        printf("rope_local_base_freq    %g   (rope of the sliding layers)\n", c->rope_local_theta);
        printf("layer_types             ");
        for (int l = 0; l < c->L; l++) printf("%s%c", l ? " " : "", c->sliding[l] ? 's' : 'F');
        printf("   (s sliding, F full attention)\n");
        printf("embedding scale         sqrt(hidden_size) = %.9g\n", (double)llama_embed_scale(c));
        printf("norms                   RMSNorm x (1 + w); q_norm/k_norm; sandwich (4 per layer)\n");
        printf("softcapping             none (final and attention)\n");
        printf("defaults used for GGUF  rope_local_base_freq 10000, layer i full iff (i+1) %% 6 == 0,\n"
               "                        query_pre_attn_scalar 256 (= head_dim here), no softcapping\n");
    }
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: affix info -m MODEL   (a Hugging Face model directory or a .gguf file)\n");
            return 0;
        }
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 >= argc) {
            fprintf(stderr, "affix: error: info: %s needs a value (usage: affix info -m MODEL)\n", argv[i]);
            return 2;
        }
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && !path) path = argv[++i];
        else if (!strncmp(argv[i], "--model=", 8) && !path) path = argv[i] + 8;
        else {
            fprintf(stderr, "affix: error: info: %s '%s' (usage: affix info -m MODEL)\n",
                    argv[i][0] == '-' ? "unknown option" : "unexpected argument", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "affix: error: info needs -m MODEL (a Hugging Face directory or a .gguf file)\n");
        return 2;
    }
    Model m;
    afx_err e;
    ModelTensor *rows = NULL;
    size_t n = 0;
    if (model_load(&m, path, &e) || model_list_tensors(path, &rows, &n, &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        model_free(&m);
        return 1;
    }
    printf("model                   %s\n", m.path);
    printf("format                  %s\n", m.format == MODEL_GGUF ? "GGUF" : "Hugging Face directory (safetensors)");
    print_config(&m.cfg);
    printf("source_dtype            %s\n", m.source_dtype);
    printf("parameters              %zu\n", llama_params_count(&m.cfg));
    printf("bos_token_id            %d\n", m.bos_id);
    printf("eos_token_id            %d\n", m.eos_id);
    printf("tensors                 %zu%s\n", n, m.format == MODEL_GGUF ? " (shape in ggml ne order: ne0 first)" : "");
    int multi = 0;
    for (size_t i = 1; i < n; i++) multi |= strcmp(rows[i].file, rows[0].file) != 0;
    for (size_t i = 0; i < n; i++) {
        char shape[160];
        size_t k = (size_t)snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < rows[i].ndim && k < sizeof shape; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", d ? ", " : "", rows[i].shape[d]);
        if (k < sizeof shape) snprintf(shape + k, sizeof shape - k, "]");
        printf("  %-48s %-6s %-16s%s%s\n", rows[i].name, rows[i].dtype, shape, multi ? " " : "",
               multi ? rows[i].file : "");
    }
    free(rows);
    model_free(&m);
    return 0;
}
