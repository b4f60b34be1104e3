/* test_params.c — trainable-parameter counts of every method on the four shipped model configs
 * (the JSON files of tools/configs, read from the repo root), against the table of docs/methods.md §7 (P = 10),
 * whose numbers are hard-coded here: they are the spec. Also: the base counts, the refusals the
 * table implies (30 layers of a 16-layer model), the option parser's errors (one line naming the
 * option), and `affix params` itself when the binary sits next to this one.
 * Ends with "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "config.h"
#include "llama.h"
#include "method_spec.h"

enum { NM = 4 };
static const char *const MODEL[NM] = {"llama-3.1-8b", "llama-3.2-1b", "mistral-7b-v0.3", "mistral-small-24b"};
static const size_t BASE[NM] = {8030261248u, 1235814400u, 7248023552u, 23572403200u};

#define REFUSED ((size_t)-1)

/* methods.md §7, row by row (P = 10); REFUSED where the table says the model cannot have it */
static const struct {
    const char *what, *method, *args;
    size_t n[NM];
} TABLE[] = {
    {"soft prompt P*H", "prompt", "--num-virtual-tokens 10", {40960, 20480, 40960, 51200}},
    {"prefix, no proj, all layers", "prefix", "--num-virtual-tokens 10", {655360, 163840, 655360, 819200}},
    {"prefix, no proj, 30 layers", "prefix", "--num-virtual-tokens 10 --layers top:30",
     {614400, REFUSED, 614400, 614400}},
    {"prefix, proj (E = T default)", "prefix", "--num-virtual-tokens 10 --prefix-projection",
     {68234240, 8672768, 68234240, 85027840}},
    {"Llama-Adapter PEFT, 30 layers", "llama-adapter", "", {1228830, REFUSED, 1228830, 1536030}},
    {"Llama-Adapter official, 30 layers", "llama-adapter", "--gate official", {1229760, REFUSED, 1229760, 1536960}},
    {"LoRA r=4 q,v", "lora", "--r 4 --targets q,v", {1703936, 425984, 1703936, 2457600}},
    {"LoRA r=128 q,v", "lora", "--r 128 --targets q,v", {54525952, 13631488, 54525952, 78643200}},
    {"LoRA r=4 all-linear", "lora", "--r 4 --targets all-linear", {10485760, 2818048, 10485760, 23101440}},
    {"LoRA r=128 all-linear", "lora", "--r 128 --targets all-linear", {335544320, 90177536, 335544320, 739246080}},
};

/* the 16-layer model's entries of the Llama-Adapter rows ("16 layers max") */
static const struct {
    const char *what, *args;
    size_t n;
} ONE_B[] = {
    {"Llama-Adapter PEFT, 16 layers", "--adapter-layers 16", 327696},
    {"Llama-Adapter official, 16 layers", "--adapter-layers 16 --gate official", 328192},
};

/* split a space-separated argument string into argv (buf keeps the words) */
static int split(const char *args, char *buf, size_t n, char **argv, int max) {
    snprintf(buf, n, "%s", args);
    int argc = 0;
    for (char *p = strtok(buf, " "); p && argc < max; p = strtok(NULL, " ")) argv[argc++] = p;
    return argc;
}

/* creates the adapter; returns its count, or REFUSED with the message in e */
static size_t count(const LlamaConfig *c, const char *method, const char *args, afx_err *e) {
    char buf[512], *argv[32];
    int argc = split(args, buf, sizeof buf, argv, 32);
    Adapter ad;
    e->msg[0] = 0;
    if (method_spec_create_from_args(&ad, c, method, argc, argv, e)) return REFUSED;
    size_t n = adapter_param_count(&ad);
    adapter_destroy(&ad);
    return n;
}

static void expect_count(const LlamaConfig *c, const char *model, const char *what, const char *method,
                         const char *args, size_t want) {
    afx_err e;
    size_t got = count(c, method, args, &e);
    char name[256], detail[640];
    snprintf(name, sizeof name, "%-18s %-36s %zu", model, what, want);
    if (got == REFUSED) snprintf(detail, sizeof detail, "refused: %s", e.msg);
    else if (got != want) snprintf(detail, sizeof detail, "got %zu", got);
    else detail[0] = 0;
    check(got == want, name, detail);
}

/* refused, with a one-line message that contains n1 and n2 (either may be NULL) */
static void expect_error_on(const char *model, const LlamaConfig *c, const char *method, const char *args,
                            const char *n1, const char *n2) {
    afx_err e;
    size_t got = count(c, method, args, &e);
    char name[256], detail[640];
    snprintf(name, sizeof name, "%-18s refused: %s%s%s", model, method, *args ? " " : "", args);
    int ok = got == REFUSED && !strchr(e.msg, '\n') && (!n1 || strstr(e.msg, n1)) && (!n2 || strstr(e.msg, n2));
    if (got != REFUSED) snprintf(detail, sizeof detail, "accepted (%zu)", got);
    else snprintf(detail, sizeof detail, "%s", e.msg);
    check(ok, name, detail);
}

static void expect_error(const LlamaConfig *c, const char *method, const char *args, const char *n1, const char *n2) {
    expect_error_on("llama-3.1-8b", c, method, args, n1, n2);
}

/* `affix params ...` through the shell: its last output line and whether it exited 0 */
static int run_cli(const char *affix, const char *args, char *last, size_t n) {
    char cmd[1024], line[1024];
    snprintf(cmd, sizeof cmd, "'%s' params %s 2>&1", affix, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    last[0] = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        snprintf(last, n, "%s", line);
    }
    return pclose(p) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    (void)argc;
    LlamaConfig cfg[NM];
    afx_err e;

    printf("-- base counts (llama_params_count of tools/configs)\n");
    for (int m = 0; m < NM; m++) {
        char path[256], name[256], detail[600] = "";
        snprintf(path, sizeof path, "tools/configs/%s.json", MODEL[m]);
        int bad = llama_config_load(&cfg[m], path, &e);
        if (bad) {
            snprintf(detail, sizeof detail, "%s", e.msg);
            memset(&cfg[m], 0, sizeof cfg[m]);
        } else if (llama_params_count(&cfg[m]) != BASE[m]) {
            snprintf(detail, sizeof detail, "got %zu", llama_params_count(&cfg[m]));
        }
        snprintf(name, sizeof name, "%-18s base %zu", MODEL[m], BASE[m]);
        check(!bad && llama_params_count(&cfg[m]) == BASE[m], name, detail);
        if (bad) {
            printf("cannot go on without %s (run from the repo root)\n", path);
            return check_summary();
        }
    }

    printf("-- methods.md section 7 (P = 10)\n");
    for (size_t r = 0; r < sizeof TABLE / sizeof TABLE[0]; r++)
        for (int m = 0; m < NM; m++) {
            if (TABLE[r].n[m] != REFUSED) {
                expect_count(&cfg[m], MODEL[m], TABLE[r].what, TABLE[r].method, TABLE[r].args, TABLE[r].n[m]);
                continue;
            }
            /* "n/a (16 layers)": asking for 30 layers is refused, naming 30 and 16 */
            expect_error_on(MODEL[m], &cfg[m], TABLE[r].method, TABLE[r].args, "30", "16");
        }
    for (size_t r = 0; r < sizeof ONE_B / sizeof ONE_B[0]; r++)
        expect_count(&cfg[1], MODEL[1], ONE_B[r].what, "llama-adapter", ONE_B[r].args, ONE_B[r].n);
    for (int m = 0; m < NM; m++) expect_count(&cfg[m], MODEL[m], "full = base", "full", "", BASE[m]);

    printf("-- other spellings and options (counts from the formulas of methods.md)\n");
    const LlamaConfig *c8 = &cfg[0];
    expect_count(c8, MODEL[0], "LoRA defaults r=8 q,v", "lora", "", 2 * 1703936);
    expect_count(c8, MODEL[0], "LoRA PEFT keys, --x=v form", "lora",
                 "--r=4 --lora_alpha=16 --target_modules=q_proj,v_proj --use-rslora", 1703936);
    expect_count(c8, MODEL[0], "llama_adapter spelling, 30 layers", "llama_adapter", "--adapter-layers 30", 1228830);
    expect_count(c8, MODEL[0], "prefix proj E=512: 10*1024+1024*512+512+512*65536+65536", "prefix",
                 "--num-virtual-tokens 10 --prefix-projection --encoder-hidden-size 512", 34155008);
    expect_count(c8, MODEL[0], "prefix layers 0-3,7: 10*5*2*1024", "prefix", "--num-virtual-tokens 10 --layers 0-3,7",
                 102400);
    expect_count(c8, MODEL[0], "prefix E without projection is unused", "prefix",
                 "--num-virtual-tokens 10 --encoder-hidden-size 512", 655360);
    expect_count(c8, MODEL[0], "prompt vocab init", "prompt", "--num-virtual-tokens 10 --prompt-init vocab", 40960);

    {
        MethodSpec s;
        char buf[512], *av[8], desc[512];
        int ac = split("--num-virtual-tokens 10 --layers top:30 --position-offset zero", buf, sizeof buf, av, 8);
        Adapter ad;
        int ok = !method_spec_init(&s, "prefix", &e) && !method_spec_parse_args(&s, ac, av, &e) &&
                 !method_spec_create(&ad, &s, c8, &e);
        method_spec_describe(&s, c8, desc, sizeof desc);
        check(ok && strstr(desc, "layers 2-31 of 32") && strstr(desc, "position_offset=zero"),
              "describe: top:30 of 32 is layers 2-31; offset zero", desc);
        if (require(ok, "prefix --position-offset zero: create", e.msg)) {
            check(ad.ops->position_offset && ad.ops->position_offset(&ad) == 0, "prefix --position-offset zero: offset 0",
                  "");
            adapter_destroy(&ad);
        }
        ac = split("--num-virtual-tokens 10", buf, sizeof buf, av, 8);
        ok = !method_spec_create_from_args(&ad, c8, "prefix", ac, av, &e);
        check(ok && ad.ops->position_offset(&ad) == 10, "prefix default offset: real tokens at P", "");
        if (ok) adapter_destroy(&ad);
        ac = split("--r 16 --alpha 32 --rslora", buf, sizeof buf, av, 8);
        ok = !method_spec_init(&s, "lora", &e) && !method_spec_parse_args(&s, ac, av, &e);
        method_spec_describe(&s, c8, desc, sizeof desc);
        check(ok && strstr(desc, "scaling=8 ") && strstr(desc, "targets=q,v"), "describe: rslora 32/sqrt(16) = 8", desc);
        size_t need = method_spec_describe(&s, c8, desc, 8);
        check(need > 8 && strlen(desc) == 7, "describe truncates and returns the length it needed", "");
    }

    printf("-- refusals: one line naming the option\n");
    expect_error(c8, "adalora", "", "adalora", NULL);
    expect_error(c8, "lora", "--foo 1", "--foo", "unknown");
    expect_error(c8, "lora", "--num-virtual-tokens 10", "--num-virtual-tokens", "prompt, prefix");
    expect_error(c8, "full", "--r 4", "--r", "full");
    expect_error(c8, "lora", "--r 0", "--r", "'0'");
    expect_error(c8, "lora", "--r 4x", "--r", "'4x'");
    expect_error(c8, "lora", "--r", "--r", "needs a value");
    expect_error(c8, "lora", "--r 4 --r 8", "--r", "twice");
    expect_error(c8, "lora", "--alpha -1", "--alpha", "'-1'");
    expect_error(c8, "lora", "--targets q,x", "--targets", "'x'");
    expect_error(c8, "lora", "--rslora=maybe", "--rslora", "'maybe'");
    expect_error(c8, "lora", "r 4", "unexpected argument", "'r'");
    expect_error(c8, "prompt", "", "--num-virtual-tokens", "required");
    expect_error(c8, "prefix", "--layers all", "--num-virtual-tokens", "required");
    expect_error(c8, "prompt", "--num-virtual-tokens 10 --prompt-init text", "--prompt-init", "tokenizer");
    expect_error(c8, "prompt", "--num-virtual-tokens ten", "--num-virtual-tokens", "'ten'");
    expect_error(c8, "prefix", "--num-virtual-tokens 10 --layers 5-2", "--layers", "5-2");
    expect_error(c8, "prefix", "--num-virtual-tokens 10 --layers top:0", "--layers", "top:0");
    expect_error(c8, "prefix", "--num-virtual-tokens 10 --layers 3,40", "layer 40", "32");
    expect_error(c8, "prefix", "--num-virtual-tokens 10 --layers top:33", "33", "32");
    expect_error(c8, "prefix", "--num-virtual-tokens 10 --position-offset middle", "--position-offset", "'middle'");
    expect_error(c8, "llama-adapter", "--gate sigmoid", "--gate", "'sigmoid'");
    expect_error(c8, "llama-adapter", "--adapter-layers 33", "33", "32");
    expect_error_on(MODEL[1], &cfg[1], "llama-adapter", "", "30 (the default)", "16");

    printf("-- affix params\n");
    char affix[1024];
    snprintf(affix, sizeof affix, "%s", argv[0]);
    char *slash = strrchr(affix, '/');
    if (slash) snprintf(slash + 1, sizeof affix - (size_t)(slash + 1 - affix), "affix");
    else snprintf(affix, sizeof affix, "./affix");
    FILE *f = fopen(affix, "rb");
    if (require(f != NULL, "the affix program is built next to this test (make test builds it)", affix)) {
        fclose(f);
        char last[1024];
        int rc = run_cli(affix, "--config tools/configs/mistral-small-24b.json --method llama-adapter", last, sizeof last);
        check(rc == 0 && !strcmp(last, "trainable 1536030"), "affix params ... llama-adapter: last line 'trainable 1536030'",
              last);
        rc = run_cli(affix, "--method=lora --r 4 --targets all-linear --config=tools/configs/llama-3.2-1b.json", last,
                     sizeof last);
        check(rc == 0 && !strcmp(last, "trainable 2818048"), "affix params, options in any order", last);
        rc = run_cli(affix, "--config tools/configs/llama-3.2-1b.json --method prefix --num-virtual-tokens 10 --layers top:30",
                     last, sizeof last);
        check(rc == 1 && !strncmp(last, "affix: error: ", 14) && strstr(last, "16"), "affix params: error, exit != 0", last);
        rc = run_cli(affix, "--config tools/configs/nope.json --method full", last, sizeof last);
        check(rc == 1 && !strncmp(last, "affix: error: ", 14), "affix params: missing config is an error", last);
    }

    return check_summary();
}
