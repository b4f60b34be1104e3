/* cli.h — the commands of the affix program, one file each (tools/cmd_*.c). Each takes the
 * arguments after its name, prints its results, reports errors as "affix: error: <what>" on
 * stderr, and returns the exit code (0 ok, 1 failure, 2 usage error). Only tools/ prints. */
#ifndef AFFIX_CLI_H
#define AFFIX_CLI_H

int cmd_info(int argc, char **argv);     /* tools/cmd_info.c      affix info -m MODEL */
int cmd_tokenize(int argc, char **argv); /* tools/cmd_tokenize.c  affix tokenize -m MODEL_OR_TOKENIZER */
int cmd_generate(int argc, char **argv); /* tools/cmd_generate.c  affix generate -m MODEL ... */
/* train and eval run as one rank of several under mpirun (d: tools/dist.h; rank 0 of 1 without) */
struct Dist;
int cmd_train(int argc, char **argv, const struct Dist *d); /* tools/cmd_train.c  affix train -m MODEL --method ... */
int cmd_eval(int argc, char **argv, const struct Dist *d);  /* tools/cmd_eval.c   affix eval -m MODEL --task ... */
int cmd_score(int argc, char **argv);    /* tools/cmd_eval.c      affix score --task ... --predictions F */
int cmd_probe(int argc, char **argv);    /* tools/cmd_probe.c     affix probe -m MODEL --data FILE... (CKA) */
int cmd_compare(int argc, char **argv);  /* tools/cmd_compare.c   affix compare A.safetensors B.safetensors */
int cmd_bench(int argc, char **argv);    /* tools/cmd_bench.c     affix bench [--configs ...] (make bench) */

/* "--data FILE..." at argv[*i]: appends the following arguments up to the next "--option" to
 * files[*n] (at most max); advances *i past them. Prints the error and returns 2 when too many. */
int cli_take_files(int argc, char **argv, int *i, const char **files, int *n, int max);

/* The one checked number parser of the command line. Each prints "affix: error: OPT 'V' ..." and
 * returns -1 when V is not a number of the type in [lo, hi] (no wrap, no silent truncation:
 * "-1" is not a u64, "4294967297" is not an int, "1e9" is not an integer), else 0. */
int cli_int(const char *opt, const char *v, long long lo, long long hi, int *out);
int cli_ll(const char *opt, const char *v, long long lo, long long hi, long long *out);
int cli_u64(const char *opt, const char *v, unsigned long long *out);
int cli_double(const char *opt, const char *v, double lo, double hi, double *out);

/* --adapter DIR of generate, eval and probe (tools/cli_adapters.c): a PEFT directory, affix's full
 * fine-tuning directory, or a hybrid (DIR/affix_hybrid.json: one PEFT directory per part), loaded
 * and bound to m. use = the set the decoder runs with (NULL for full fine-tuning, whose values were
 * copied into m's weights). note: what the loader read but did not keep ("" if nothing). */
#include "adapter.h"
#include "model.h"
#include "peft.h"
typedef struct {
    PeftAdapter pa[2];
    int n, have_set;
    AdapterSet set;
    AdapterSet *use;
    char note[1100];
} CliAdapters;
/* The frozen base's form (--weights f32|file; NULL: the default): file = a GGUF's block-format
 * matrices stay as the file holds them (ModelOpts.keep_blocks), f32 = every weight converted. The
 * default is file, except where the base weights are trained or replaced: full fine-tuning
 * (trains_base) and an --adapter directory that holds a whole model (no adapter_config.json, no
 * affix_hybrid.json). Prints the error and returns 2 for another value. */
int cli_weights(const char *weights, const char *adapter_dir, int trains_base, ModelOpts *mo);
int cli_adapters_open(CliAdapters *ca, const char *dir, Model *m, afx_err *e);
/* DIR/affix_state.json, which affix train writes around each save of its adapter directory:
 * {"step": N, "complete": false} before the files, {"step": N, "complete": true} after. Returns 1
 * (and the values), 0 when there is none (an adapter from elsewhere), -1 when it is malformed.
 * cli_adapters_open refuses a directory caught mid-save. */
int cli_adapter_state(const char *dir, long long *step, int *complete, afx_err *e);
void cli_adapters_close(CliAdapters *ca);

#endif
