/* cmd_train.c — affix train: fine-tune an adapter (or the whole model) on English task data.
 *
 *   affix train -m MODEL --method M [method options] --task T --data FILE... --out DIR [options]
 *
 * Each example is rendered with the task's template (ref/tasks/templates.h) into a prompt and a
 * target; the loss is computed on the target tokens only (prompt labels are -100). An example
 * longer than --seq-len loses tokens from the context side (the start of the prompt, after BOS),
 * and the count is reported. Batches are right-padded; the loss of one optimizer step is the sum
 * over its micro-batches divided by the number of target tokens of the whole step (HF Trainer's
 * num_items_in_batch reduction), so --grad-accum k with --batch b equals --batch k*b.
 * Outputs in DIR: train_log.csv, checkpoint.safetensors (resumable, atomic), adapter/ (PEFT's
 * format). --resume DIR continues bit-exactly. A NaN/Inf loss stops training and keeps the last
 * good checkpoint.
 * Under mpirun (tools/dist.h) each of K ranks takes --grad-accum micro-batches of every global step
 * of K x --batch x --grad-accum examples (rank r: the r-th share, in the example order), the
 * gradients are summed in rank order, and rank 0 alone writes the files: K ranks equal one process
 * with --grad-accum K x accum (bitwise with --grad-accum 1 on each rank).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "adapter.h"
#include "files.h"
#include "st_write.h"
#include "checkpoint.h"
#include "cli.h"
#include "train.h"
#include "data.h"
#include "dist.h"
#include "hooks.h"
#include "kernels_simd.h"
#include "method_spec.h"
#include "model.h"
#include "optim.h"
#include "peft.h"
#include "templates.h"
#include "tokenizer.h"

#define MAX_FILES 64

typedef struct {
    const char *model, *method, *task, *out, *resume, *lang, *eval_data, *dump_batches, *weights;
    const char *files[MAX_FILES];
    int n_files;
    int seq_len, seq_given, batch, accum, epochs, warmup, max_steps, stop_at, eval_every, save_every, limit, strict, quiet, save_init, yes_no, dump_only;
    double lr, clip, weight_decay;
    lr_schedule schedule;
    unsigned long long seed;
    char *method_argv[64];
    int method_argc;
} TrainOpts;

typedef struct {
    int *ids;    /* n tokens: prompt then target (+ EOS) */
    int *labels; /* -100 on the prompt */
    int n;
} Example;

static int usage(void) {
    fprintf(stderr,
            "usage: affix train -m MODEL --method prompt|prefix|llama-adapter|lora|full|lora+prefix|lora+llama-adapter|\n"
            "                   lora+prompt [method options]\n"
            "                   --task squad|nli|belebele|gsm8k|mgsm --data FILE... --out DIR [options]\n"
            "  --seq-len N (512)  --batch N (1)  --grad-accum N (1)  --lr X (1e-3)  --epochs N (1)\n"
            "  --warmup STEPS (0)  --schedule cosine|linear|constant (cosine)  --clip X (1.0, 0 = off)\n"
            "  --weight-decay X (0)  --seed N (42)  --max-steps N (0 = all)  --limit N (examples)\n"
            "  --eval-every N (0) [--eval-data FILE]  --save-every N (0 = at the end)  --lang CODE\n"
            "  --stop-at N (stop after step N, keeping the schedule of the full run; resume later)\n"
            "  --resume DIR  --strict  --quiet\n"
            "  --save-init (DIR/adapter-init: the adapter before step 1, PEFT format)\n"
            "  --dump-batches FILE (every micro-batch's ids and labels as JSON lines: to replay elsewhere)\n"
            "  --dump-only (with --dump-batches: write the run's batches, train nothing, save nothing)\n"
            "  --labels words|yes-no (NLI: the label words, or the one-token answers yes / maybe / no)\n"
            "  --weights file|f32 (file, except full: a GGUF's quantized frozen matrices stay in their blocks)\n"
            "method options: see `affix params --help` (e.g. --num-virtual-tokens 10 --layers top:30)\n");
    return 2;
}

static double now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_int(const char *opt, const char *v, int lo, int *out) { return cli_int(opt, v, lo, 1000000000, out); }

static int parse_double(const char *opt, const char *v, double *out) { return cli_double(opt, v, 0, DBL_MAX, out); }

static int parse_args(TrainOpts *o, int argc, char **argv) {
    *o = (TrainOpts){.seq_len = 512, .batch = 1, .accum = 1, .epochs = 1, .lr = 1e-3, .clip = 1.0, .seed = 42,
                     .schedule = SCHED_COSINE};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        if (!strcmp(a, "--strict")) { o->strict = 1; continue; }
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--save-init")) { o->save_init = 1; continue; }
        if (!strcmp(a, "--dump-only")) { o->dump_only = 1; continue; }
        if (!strcmp(a, "--data")) {
            if (cli_take_files(argc, argv, &i, o->files, &o->n_files, MAX_FILES)) return 2;
            continue;
        }
        int known = !strcmp(a, "-m") || !strcmp(a, "--method") || !strcmp(a, "--task") || !strcmp(a, "--out") ||
                    !strcmp(a, "--resume") || !strcmp(a, "--lang") || !strcmp(a, "--eval-data") ||
                    !strcmp(a, "--seq-len") || !strcmp(a, "--batch") || !strcmp(a, "--grad-accum") ||
                    !strcmp(a, "--epochs") || !strcmp(a, "--warmup") || !strcmp(a, "--max-steps") || !strcmp(a, "--stop-at") ||
                    !strcmp(a, "--eval-every") || !strcmp(a, "--save-every") || !strcmp(a, "--limit") ||
                    !strcmp(a, "--lr") || !strcmp(a, "--clip") || !strcmp(a, "--weight-decay") ||
                    !strcmp(a, "--seed") || !strcmp(a, "--schedule") || !strcmp(a, "--dump-batches") || !strcmp(a, "--labels") ||
                    !strcmp(a, "--weights");
        if (!known) { // a method option: the method's parser judges it
            if (o->method_argc + 2 > 64) { fprintf(stderr, "affix: error: too many method options\n"); return 2; }
            o->method_argv[o->method_argc++] = argv[i];
            if (v && strncmp(v, "--", 2) != 0 && !strchr(a, '=')) o->method_argv[o->method_argc++] = argv[++i];
            continue;
        }
        if (!v) { fprintf(stderr, "affix: error: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--method")) o->method = v;
        else if (!strcmp(a, "--task")) o->task = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--resume")) o->resume = v;
        else if (!strcmp(a, "--lang")) o->lang = v;
        else if (!strcmp(a, "--eval-data")) o->eval_data = v;
        else if (!strcmp(a, "--dump-batches")) o->dump_batches = v;
        else if (!strcmp(a, "--weights")) o->weights = v;
        else if (!strcmp(a, "--labels")) {
            if (!strcmp(v, "yes-no")) o->yes_no = 1;
            else if (strcmp(v, "words")) { fprintf(stderr, "affix: error: --labels '%s': use words or yes-no\n", v); return 2; }
        }
        else if (!strcmp(a, "--seq-len")) r = parse_int(a, v, 8, &o->seq_len), o->seq_given = 1;
        else if (!strcmp(a, "--batch")) r = cli_int(a, v, 1, 256, &o->batch);
        else if (!strcmp(a, "--grad-accum")) r = parse_int(a, v, 1, &o->accum);
        else if (!strcmp(a, "--epochs")) r = parse_int(a, v, 1, &o->epochs);
        else if (!strcmp(a, "--warmup")) r = parse_int(a, v, 0, &o->warmup);
        else if (!strcmp(a, "--max-steps")) r = parse_int(a, v, 0, &o->max_steps);
        else if (!strcmp(a, "--stop-at")) r = parse_int(a, v, 1, &o->stop_at);
        else if (!strcmp(a, "--eval-every")) r = parse_int(a, v, 0, &o->eval_every);
        else if (!strcmp(a, "--save-every")) r = parse_int(a, v, 0, &o->save_every);
        else if (!strcmp(a, "--limit")) r = parse_int(a, v, 1, &o->limit);
        else if (!strcmp(a, "--lr")) r = parse_double(a, v, &o->lr);
        else if (!strcmp(a, "--clip")) r = parse_double(a, v, &o->clip);
        else if (!strcmp(a, "--weight-decay")) r = parse_double(a, v, &o->weight_decay);
        else if (!strcmp(a, "--seed")) r = cli_u64(a, v, &o->seed);
        else if (!strcmp(a, "--schedule")) {
            if (!strcmp(v, "cosine")) o->schedule = SCHED_COSINE;
            else if (!strcmp(v, "linear")) o->schedule = SCHED_LINEAR;
            else if (!strcmp(v, "constant")) o->schedule = SCHED_CONSTANT;
            else { fprintf(stderr, "affix: error: --schedule '%s': use cosine, linear or constant\n", v); return 2; }
        }
        if (r) return 2;
    }
    if (!o->model || !o->method || !o->task || !o->n_files || !o->out) {
        fprintf(stderr, "affix: error: train needs -m MODEL, --method, --task, --data FILE... and --out DIR\n");
        return usage();
    }
    if (o->dump_only && !o->dump_batches) {
        fprintf(stderr, "affix: error: --dump-only needs --dump-batches FILE (what it writes)\n");
        return 2;
    }
    return 0;
}

/* ---- data: files -> rendered, tokenized, truncated examples ---------------------------------- */

static void free_examples(Example *ex, int n);

static int load_examples(const TrainOpts *o, const char *const *files, int n_files, int limit, const Tokenizer *tok,
                         int eos, Example **out, int *n_out, long *n_truncated, int quiet) {
    int kind = task_kind_parse(o->task);
    if (kind < 0) { fprintf(stderr, "affix: error: unknown task '%s' (squad, nli, belebele, gsm8k, mgsm)\n", o->task); return -1; }
    Example *ex = NULL;
    int n = 0, cap = 0;
    *n_truncated = 0;
    for (int f = 0; f < n_files && (!limit || n < limit); f++) {
        TaskSet ts;
        TaskReadOpts ro = {.lang = o->lang, .strict = o->strict, .nli_yes_no = o->yes_no};
        afx_err e = {{0}};
        if (task_read_file(&ts, (TaskKind)kind, files[f], &ro, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); free_examples(ex, n); return -1; }
        for (size_t p = 0; p < ts.n_problems && !quiet; p++) fprintf(stderr, "affix: warning: %s (skipped)\n", ts.problems[p]);
        for (size_t i = 0; i < ts.n && (!limit || n < limit); i++) {
            TmplText tt;
            int *pi = NULL, *ti = NULL, np = 0, nt = 0;
            if (tmpl_render(&ts.ex[i], TMPL_TRAIN, &tt, &e) ||
                tokenizer_encode(tok, tt.prompt, strlen(tt.prompt), 1, &pi, &np, &e) ||
                tokenizer_encode(tok, tt.target, strlen(tt.target), 0, &ti, &nt, &e)) {
                fprintf(stderr, "affix: error: %s:%ld: %s\n", files[f], ts.ex[i].line, e.msg);
                tmpl_text_free(&tt);
                free(pi); free(ti); free_examples(ex, n); task_set_free(&ts);
                return -1;
            }
            tmpl_text_free(&tt);
            if (eos >= 0) { // the target ends with EOS so the model learns to stop
                int *t2 = realloc(ti, sizeof(int) * (size_t)(nt + 1));
                if (t2) { ti = t2; ti[nt++] = eos; }
            }
            // truncate from the context side: drop prompt tokens right after BOS
            int keep_front = np > 0 && pi[0] == tokenizer_bos(tok) ? 1 : 0;
            if (np + nt > o->seq_len) {
                int over = np + nt - o->seq_len, can = np - keep_front - 1; // keep at least one prompt token
                if (over > can) over = can > 0 ? can : 0;
                memmove(pi + keep_front, pi + keep_front + over, sizeof(int) * (size_t)(np - keep_front - over));
                np -= over;
                if (np + nt > o->seq_len) nt = o->seq_len - np; // the target alone is too long: cut its end
                (*n_truncated)++;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                Example *x2 = realloc(ex, sizeof *ex * (size_t)cap);
                if (!x2) { free(pi); free(ti); free_examples(ex, n); task_set_free(&ts); fprintf(stderr, "affix: error: out of memory\n"); return -1; }
                ex = x2;
            }
            Example *x = &ex[n++];
            x->n = np + nt;
            x->ids = malloc(sizeof(int) * (size_t)x->n);
            x->labels = malloc(sizeof(int) * (size_t)x->n);
            if (!x->ids || !x->labels) { fprintf(stderr, "affix: error: out of memory\n"); free(pi); free(ti); free_examples(ex, n); task_set_free(&ts); return -1; }
            for (int k = 0; k < np; k++) x->ids[k] = pi[k], x->labels[k] = -100;
            for (int k = 0; k < nt; k++) x->ids[np + k] = ti[k], x->labels[np + k] = ti[k];
            free(pi);
            free(ti);
        }
        task_set_free(&ts);
    }
    if (n == 0) { fprintf(stderr, "affix: error: %s: no usable examples\n", files[0]); free_examples(ex, n); return -1; }
    *out = ex;
    *n_out = n;
    return 0;
}

static void free_examples(Example *ex, int n) {
    for (int i = 0; i < n; i++) free(ex[i].ids), free(ex[i].labels);
    free(ex);
}

/* the data order of one epoch: a seeded Fisher-Yates permutation */
static void permutation(int *perm, int n, unsigned long long seed) {
    AfxRng r = {seed};
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(afx_rng_uniform(&r) * (i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* ---- one batch --------------------------------------------------------------------------------- */

typedef struct {
    int B, T;
    int *ids, *labels, *mask; /* (B,T) */
    long targets;             /* kept shifted targets */
    long tokens;              /* real tokens */
} Batch;

static void free_batch(Batch *b);

static int make_batch(Batch *b, const Example *ex, const int *which, int B, int pad, afx_err *e) {
    int T = 1;
    for (int i = 0; i < B; i++) if (ex[which[i]].n > T) T = ex[which[i]].n;
    b->B = B;
    b->T = T;
    b->ids = malloc(sizeof(int) * (size_t)B * T);
    b->labels = malloc(sizeof(int) * (size_t)B * T);
    b->mask = malloc(sizeof(int) * (size_t)B * T);
    if (!b->ids || !b->labels || !b->mask) {
        free_batch(b);
        return afx_fail(e, "out of memory for a batch of %d x %d tokens", B, T);
    }
    b->targets = b->tokens = 0;
    for (int i = 0; i < B; i++) {
        const Example *x = &ex[which[i]];
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)i * T + t;
            int in = t < x->n;
            b->ids[k] = in ? x->ids[t] : pad;
            b->labels[k] = in ? x->labels[t] : -100;
            b->mask[k] = in;
            b->tokens += in;
            if (t > 0 && in && x->labels[t] != -100) b->targets++;
        }
    }
    return 0;
}

static void free_batch(Batch *b) {
    free(b->ids);
    free(b->labels);
    free(b->mask);
    b->ids = b->labels = b->mask = NULL;
}

/* the library step's view of a batch (ref/adapters/train.h) */
static TrainBatch as_train_batch(const Batch *b) { return (TrainBatch){b->ids, b->mask, b->labels, b->B, b->T}; }

static double eval_loss(Model *m, AdapterSet *s, TrainWorkspace *ws, const Kernels *kern, const Example *ex, int n,
                        int B, int pad, afx_err *e) {
    double sum = 0;
    long cnt = 0;
    int *which = malloc((size_t)B * sizeof *which);
    if (!which) return NAN;
    for (int i = 0; i < n; i += B) {
        int bb = i + B <= n ? B : n - i;
        for (int k = 0; k < bb; k++) which[k] = i + k;
        Batch b;
        if (make_batch(&b, ex, which, bb, pad, e)) { free(which); return NAN; }
        double ls;
        long c;
        TrainBatch tb = as_train_batch(&b);
        int rc = train_batch(&m->w, s, ws, kern, &tb, 0, 0, &ls, &c, e);
        free_batch(&b);
        if (rc) { free(which); return NAN; }
        sum += ls;
        cnt += c;
    }
    free(which);
    return cnt ? sum / (double)cnt : NAN;
}

/* OUT/NAME in PEFT's format; a hybrid (n = 2) as one PEFT directory per part, OUT/NAME/METHOD/, and
 * OUT/NAME/affix_hybrid.json naming them in order (PEFT holds one adapter per directory) */
static int save_adapter(const char *out, const char *name, const char *model_path, const MethodSpec *spec, Adapter *ad,
                        int n, const Model *m, afx_err *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, name);
    PeftSaveOptions po;
    peft_save_options_init(&po);
    po.base_model = model_path;
    po.bos_id = m->bos_id;
    po.eos_id = m->eos_id;
    if (n == 1) return peft_save(path, spec, ad, &po, e);
    if (afx_mkdirs(path, e)) return -1;
    char manifest[512] = "{\n  \"format\": \"affix hybrid adapter: one PEFT directory per part, applied together\",\n  \"parts\": [";
    for (int i = 0; i < n; i++) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", path, METHOD_NAMES[spec[i].method]);
        if (peft_save(sub, &spec[i], &ad[i], &po, e)) return -1;
        snprintf(manifest + strlen(manifest), sizeof manifest - strlen(manifest), "%s\"%s\"", i ? ", " : "",
                 METHOD_NAMES[spec[i].method]);
    }
    snprintf(manifest + strlen(manifest), sizeof manifest - strlen(manifest), "]\n}\n");
    snprintf(path + strlen(path), sizeof path - strlen(path), "/affix_hybrid.json");
    return afx_text_write(path, manifest, strlen(manifest), e);
}

/* OUT/adapter/affix_state.json (cli.h: cli_adapter_state): the step the directory holds, and whether
 * its files are all written */
static int write_state(const char *out, long long step, int complete, afx_err *e) {
    char path[4200], text[96];
    snprintf(path, sizeof path, "%s/adapter", out);
    if (afx_mkdirs(path, e)) return -1;
    snprintf(path, sizeof path, "%s/adapter/affix_state.json", out);
    snprintf(text, sizeof text, "{\"step\": %lld, \"complete\": %s}\n", step, complete ? "true" : "false");
    return afx_text_write(path, text, strlen(text), e);
}

/* the adapter directory at the state's step, bracketed by its affix_state.json */
static int save_adapter_dir(const char *out, const char *model_path, const MethodSpec *spec, Adapter *ad, int n,
                            const TrainState *st, const Model *m, afx_err *e) {
    return write_state(out, st->step, 0, e) || save_adapter(out, "adapter", model_path, spec, ad, n, m, e) ||
                   write_state(out, st->step, 1, e)
               ? -1
               : 0;
}

/* the checkpoint first (the state a resume starts from), then the adapter directory: a crash between
 * them leaves an adapter whose affix_state.json says what it holds */
static int save_all(const char *out, const char *model_path, const MethodSpec *spec, Adapter *ad, int n, AdapterSet *s,
                    const TrainState *st, const Model *m, afx_err *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
    if (ckpt_save(path, s, spec, n, st, e)) return -1;
    return save_adapter_dir(out, model_path, spec, ad, n, st, m, e);
}

/* --dump-batches: one JSON line per micro-batch, each row cut to its real tokens (right padding) */
static int dump_batch(FILE *f, long long step, int micro, const Batch *b) {
    int w = fprintf(f, "{\"step\":%lld,\"micro\":%d,\"ids\":[", step, micro);
    for (int pass = 0; pass < 2 && w >= 0; pass++) {
        const int *a = pass ? b->labels : b->ids;
        if (pass) w = fprintf(f, "],\"labels\":[");
        for (int i = 0; i < b->B && w >= 0; i++) {
            w = fprintf(f, "%s[", i ? "," : "");
            for (int t = 0, k = 0; t < b->T && w >= 0; t++)
                if (b->mask[(size_t)i * b->T + t]) w = fprintf(f, "%s%d", k++ ? "," : "", a[(size_t)i * b->T + t]);
            if (w >= 0) w = fprintf(f, "]");
        }
    }
    if (w >= 0) w = fprintf(f, "]}\n");
    return w < 0 ? -1 : 0;
}

static void progress(const TrainOpts *o, long step, long total, double loss, double lr, double tps, double eta) {
    if (o->quiet) return;
    int tty = isatty(2);
    long every = total / 10 > 0 ? total / 10 : 1;
    if (!tty && step % every != 0 && step != total) return; // a log, not an animation
    int width = 24, done = total ? (int)(width * step / total) : width;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < done ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "%s[%s] step %ld/%ld  loss %.4f  lr %.2e  %.0f tok/s  ETA %02d:%02d %s", tty ? "\r" : "", bar, step,
            total, loss, lr, tps, (int)(eta / 60), (int)eta % 60, tty ? "" : "\n");
    fflush(stderr);
}

/* the same directory (by device and inode: "out" and "out/" and "./out" are one) */
static int same_dir(const char *a, const char *b) {
    struct stat x, y;
    if (stat(a, &x) || stat(b, &y)) return !strcmp(a, b);
    return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* train_log.csv of a run resumed in place: the header and the rows up to `step` kept, atomically */
/* keeps a log's lines up to step `step`: `header` lines first, then lines that begin with `lead`, the
 * step number and `after` (train_log.csv: "", ','; --dump-batches: {"step":, ','); a torn last line
 * and everything from the first line past `step` go */
static int lines_truncate(const char *path, long long step, int header, const char *lead, afx_err *e) {
    char *buf;
    size_t len, ll = strlen(lead);
    if (afx_read_file(path, (size_t)1 << 30, &buf, &len, e)) return -1;
    size_t keep = 0, at = 0;
    int line = 0;
    while (at < len) {
        const char *nlp = memchr(buf + at, '\n', len - at);
        size_t end = nlp ? (size_t)(nlp - buf) + 1 : len;
        if (!nlp) break; // a torn last line (a crash while writing it) is dropped
        if (line++ < header) keep = end;
        else {
            char *q;
            errno = 0;
            if (end - at <= ll || memcmp(buf + at, lead, ll)) break;
            long long k = strtoll(buf + at + ll, &q, 10);
            if (errno || q == buf + at + ll || *q != ',' || k > step) break;
            keep = end;
        }
        at = end;
    }
    int rc = 0;
    if (keep != len) rc = afx_text_write(path, buf, keep, e);
    free(buf);
    return rc;
}

static int log_truncate(const char *path, long long step, afx_err *e) { return lines_truncate(path, step, 1, "", e); }

/* train_log.csv opened for writing (fresh: truncated; else appended) without blocking on a FIFO */
static FILE *open_log(const char *path, int fresh, afx_err *e) {
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | (fresh ? O_TRUNC : O_APPEND), 0644);
    if (fd < 0) {
        afx_fail(e, "%s: cannot write: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !(S_ISREG(sb.st_mode) || S_ISCHR(sb.st_mode))) {
        close(fd);
        afx_fail(e, "%s: not a regular file", path);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, fresh ? "w" : "a");
    if (!f) {
        afx_fail(e, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

/* the ".NAME.tmp-*" files a run killed while saving left in DIR and DIR/adapter */
static int remove_stale(const char *out, afx_err *e) {
    static const char *const top[] = {"checkpoint.safetensors", "train_log.csv"};
    static const char *const sub[] = {"adapter_model.safetensors", "adapter_config.json", "model.safetensors",
                                      "config.json", "README.md", "affix_state.json"};
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/adapter", out);
    return afx_remove_stale_tmp(out, top, 2, NULL, e) || afx_remove_stale_tmp(dir, sub, 6, NULL, e) ? -1 : 0;
}

int cmd_train(int argc, char **argv, const Dist *d) {
    TrainOpts o;
    int prc = parse_args(&o, argc, argv);
    if (prc) return prc;
    int K = d->size, lead = d->rank == 0; // lead: the rank that writes (and talks)
    afx_err e = {{0}};
    Model m;
    Tokenizer *tok = NULL;
    MethodSpec spec[2]; // one method, or a hybrid of two (lora+prefix, lora+llama-adapter, lora+prompt)
    Adapter ad[2];
    int n_ad = 0;
    AdapterSet set;
    int have_model = 0, have_ad = 0, have_set = 0, rc = 1, n_ex = 0, n_eval = 0;
    Example *ex = NULL, *eval = NULL;
    int *perm = NULL;
    FILE *dump = NULL;
    FILE *csv = NULL;
    TrainWorkspace ws = {0};
    Batch *mb = NULL; // one optimizer step's micro-batches (--grad-accum of them, no upper limit)
    TrainBatch *tbs = NULL;
    int *which = NULL;
    char kmsg[256];
    const Kernels *kern = kernels_from_env("auto", kmsg, sizeof kmsg); // AFFIX_KERNELS=ref|simd|blas|...
    memset(&set, 0, sizeof set);
    if (!kern) { fprintf(stderr, "affix: error: AFFIX_KERNELS: %s\n", kmsg); return 2; }

    ModelOpts mo;
    if (cli_weights(o.weights, NULL, o.method && !strcmp(o.method, "full"), &mo)) return 2;
    if (model_load_opts(&m, o.model, &mo, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); return 1; }
    have_model = 1;
    if (tokenizer_load(&tok, o.model, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    int n_spec = 0;
    if (method_spec_parse_hybrid(spec, 2, &n_spec, o.method, o.method_argc, o.method_argv, &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        goto done;
    }
    for (int i = 0; i < n_spec; i++) {
        if (method_spec_create(&ad[i], &spec[i], &m.cfg, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        n_ad = i + 1, have_ad = 1;
        if (method_spec_fits(&ad[i], &spec[i], &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    }
    Adapter *ptr[2] = {&ad[0], &ad[1]};
    if (adapter_set_init(&set, ptr, n_ad, &m.w, &e) || adapter_set_init_params(&set, o.seed, &e)) {
        fprintf(stderr, "affix: error: %s\n", e.msg);
        goto done;
    }
    have_set = 1;
    { // every position below max_position_embeddings (virtual tokens take some): an explicit
      // --seq-len beyond it is refused, the default is cut to fit, so no example fails mid-run
        ModelHooks *h = adapter_hooks(&set);
        long long room = (long long)m.cfg.max_pos - (hooks_tokens(h, 0) + hooks_position_offset(h));
        if (room < 8) { fprintf(stderr, "affix: error: %s: the method's virtual tokens leave %lld of the %d positions\n", o.model, room < 0 ? 0 : room, m.cfg.max_pos); goto done; }
        if (o.seq_len > room) {
            if (o.seq_given) {
                fprintf(stderr, "affix: error: --seq-len %d exceeds %s's max_position_embeddings = %d%s (at most %lld)\n",
                        o.seq_len, o.model, m.cfg.max_pos, room < m.cfg.max_pos ? " less the virtual tokens" : "", room);
                goto done;
            }
            o.seq_len = (int)room;
        }
    }
    int eos = tokenizer_eos(tok), pad = eos >= 0 ? eos : 0;
    long truncated = 0, trunc_eval = 0;
    if (load_examples(&o, o.files, o.n_files, o.limit, tok, eos, &ex, &n_ex, &truncated, o.quiet || !lead)) goto done;
    if (o.eval_every) {
        const char *ef[1] = {o.eval_data};
        if (o.eval_data) {
            if (load_examples(&o, ef, 1, 64, tok, eos, &eval, &n_eval, &trunc_eval, 1)) goto done;
        } else {
            eval = ex; // the first training examples (a loss curve, not a held-out score)
            n_eval = n_ex < 64 ? n_ex : 64;
        }
    }
    if (lead && !o.quiet)
        fprintf(stderr, "affix: %d examples (%ld truncated from the context side to --seq-len %d), %zu trainable parameters, "
                        "kernels %s\n", n_ex, truncated, o.seq_len, adapter_set_param_count(&set), kern->name);
    if (K > 1) { // every rank the same program, kernels and data, or their sums mean nothing
        char v[256];
        unsigned long long h = 1469598103934665603ULL; // FNV-1a of every token and label
        for (int i = 0; i < n_ex; i++)
            for (int t = 0; t < ex[i].n; t++) h = (h ^ (unsigned)ex[i].ids[t] ^ ((unsigned long long)(unsigned)ex[i].labels[t] << 32)) * 1099511628211ULL;
        snprintf(v, sizeof v, "%d examples (token hash %016llx)", n_ex, h);
        if (dist_same(d, "the training data", v, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        snprintf(v, sizeof v, "%s, %zu trainable values, seq-len %d, batch %d, grad-accum %d", kern->name,
                 adapter_set_param_count(&set), o.seq_len, o.batch, o.accum);
        if (dist_same(d, "the kernels and options", v, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        if (lead && !o.quiet) {
            TrainSet tr = train_trainable(&set);
            int threads = 1;
#ifdef _OPENMP
            threads = omp_get_max_threads();
#endif
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            fprintf(stderr, "affix: %d ranks (%d on this machine, %d OpenMP thread%s each): a step is %d x %d x %d = %d "
                            "examples; each step sums %zu gradient values (%.1f MB) over the ranks\n",
                    K, d->local_size, threads, threads == 1 ? "" : "s", K, o.batch, o.accum, K * o.batch * o.accum, tr.n,
                    (double)tr.n * sizeof(real) / 1e6);
            if (cores > 0 && (long)d->local_size * threads > cores)
                fprintf(stderr, "affix: warning: %d ranks x %d threads on this machine's %ld cores: they will wait for "
                                "one another (mpirun -x OMP_NUM_THREADS=%ld)\n",
                        d->local_size, threads, cores, cores / d->local_size > 0 ? cores / d->local_size : 1);
        }
    }
    if (lead && !o.quiet) { // the memory the run will hold, before it holds it: weights, optimizer state, the largest batch
        int T = 1, tg = 1;
        for (int i = 0; i < n_ex; i++) {
            int t = 0;
            for (int k = 1; k < ex[i].n; k++) t += ex[i].labels[k] != -100;
            if (ex[i].n > T) T = ex[i].n;
            if (t > tg) tg = t;
        }
        ModelHooks *h = adapter_hooks(&set);
        TrainSet tr = train_trainable(&set);
        double gb = 1e-9, wbytes = llama_params_bytes(&m.w),
               sbytes = (o.accum > 1 ? 4.0 : 3.0) * (double)tr.n * sizeof(real); // g, m, v (+ the micro-batch sum)
        int chunk = set.trains_base ? 0 : LLAMA_HEAD_CHUNK; // as train_batch binds them
        unsigned lay = LLAMA_ACTS_TRAIN | (set.trains_base ? 0 : LLAMA_ACTS_FROZEN);
        double abytes = (double)llama_acts_bytes_chunk(&m.cfg, h, o.batch, T, o.batch * tg, chunk, lay) +
                        (double)llama_actgrads_count_chunk(&m.cfg, h, o.batch, T, o.batch * tg, chunk) * sizeof(real);
        fprintf(stderr, "affix: planned memory: model weights %.2f GB, gradients + AdamW moments %.3f GB, activations and "
                        "their gradients <= %.2f GB (batch %d x %d tokens, %d answer tokens each at most): %.2f GB\n",
                wbytes * gb, sbytes * gb, abytes * gb, o.batch, T, tg, (wbytes + sbytes + abytes) * gb);
    }

    long per_step_ex = (long)K * o.batch * o.accum; // examples of one global step
    long per_epoch = (n_ex + per_step_ex - 1) / per_step_ex;
    long total = per_epoch * o.epochs;
    if (o.max_steps && o.max_steps < total) total = o.max_steps;
    if (o.max_steps > total) total = o.max_steps; // more steps than epochs: keep cycling the data

    TrainState st = {.perm_seed = o.seed ^ 0x5eedULL, .rng = o.seed};
    if (lead && afx_mkdirs(o.out, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    if (lead && remove_stale(o.out, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    char good[4200] = ""; // the checkpoint holding the last good state of this run ("" = none yet)
    long long good_step = -1;
    if (o.resume) {
        char path[4096];
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", o.resume);
        if (ckpt_load(path, &set, spec, n_ad, &st, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        // the data position must be one of this data: index within the examples, epoch reachable
        long long per_step = per_step_ex;
        double reach = (double)st.step * (double)per_step / (double)(n_ex ? n_ex : 1) + 2; // epochs begun, at most
        if (st.index > n_ex) {
            fprintf(stderr, "affix: error: %s: index = %lld is beyond the %d examples of this run's data (made with "
                            "other --data or --limit?)\n", path, st.index, n_ex);
            goto done;
        }
        if ((double)st.epoch > reach) {
            fprintf(stderr, "affix: error: %s: epoch = %lld cannot be reached in %lld steps of %lld examples over %d\n",
                    path, st.epoch, st.step, per_step, n_ex);
            goto done;
        }
        snprintf(good, sizeof good, "%s", path);
        good_step = st.step;
        if (lead && !o.quiet) fprintf(stderr, "affix: resumed from %s at step %lld\n", path, st.step);
        // in place: an adapter directory that a crash left behind the checkpoint (or mid-write) is
        // written again from the checkpoint's state before anything else
        char adir[4200];
        snprintf(adir, sizeof adir, "%s/adapter", o.out);
        long long astep = -1;
        int in_place = lead && same_dir(o.resume, o.out), complete = 0;
        int have = in_place ? cli_adapter_state(adir, &astep, &complete, &e) : 0;
        if (have < 0) e.msg[0] = 0, have = 0; // malformed: written again below
        if (in_place && (!have || !complete || astep != st.step)) {
            if (save_adapter_dir(o.out, o.model, spec, ad, n_ad, &st, &m, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
            if (!o.quiet)
                fprintf(stderr, "affix: %s/adapter was %s; written again at the checkpoint's step %lld\n", o.out,
                        !have ? "without its affix_state.json" : !complete ? "caught mid-save" : "at another step", st.step);
        }
    }
    perm = malloc(sizeof(int) * (size_t)n_ex);
    if (!perm) { fprintf(stderr, "affix: error: out of memory\n"); goto done; }
    permutation(perm, n_ex, st.perm_seed + (unsigned long long)st.epoch);

    char path[4096];
    snprintf(path, sizeof path, "%s/train_log.csv", o.out);
    if (lead) { // the log, the initial adapter and the batch dump: rank 0 alone writes
        int fresh_log = !(o.resume && same_dir(o.resume, o.out));
        // resuming in place: the rows after the checkpoint's step were never committed with it (a crash
        // or a stop after them): dropped, so that no step is logged twice
        if (!fresh_log && afx_is_file(path) && log_truncate(path, st.step, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        if (!fresh_log && !afx_is_file(path)) fresh_log = 1;
        csv = open_log(path, fresh_log, &e);
        if (!csv) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
        if ((fresh_log && fprintf(csv, "step,loss,lr,grad_norm,tokens_per_s,eval_loss\n") < 0) || fflush(csv)) {
            fprintf(stderr, "affix: error: %s: cannot write: %s\n", path, strerror(errno));
            goto done;
        }

        if (o.save_init && st.step == 0 && save_adapter(o.out, "adapter-init", o.model, spec, ad, n_ad, &m, &e)) {
            fprintf(stderr, "affix: error: %s\n", e.msg);
            goto done;
        }
        // resuming: the dump keeps the steps up to the checkpoint (a crash may have written later ones)
        if (o.dump_batches && st.step && afx_is_file(o.dump_batches) && lines_truncate(o.dump_batches, st.step, 0, "{\"step\":", &e)) {
            fprintf(stderr, "affix: error: %s\n", e.msg);
            goto done;
        }
        if (o.dump_batches && !(dump = fopen(o.dump_batches, st.step ? "a" : "w"))) {
            fprintf(stderr, "affix: error: %s: cannot write: %s\n", o.dump_batches, strerror(errno));
            goto done;
        }
    }

    AdamWConfig ac = {.lr = o.lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = o.weight_decay};
    int n_all = K * o.accum; // the global step's micro-batches; this rank trains [rank x accum, +accum)
    TrainComm comm = dist_train_comm(d);
    mb = calloc((size_t)n_all, sizeof *mb);
    tbs = calloc((size_t)n_all, sizeof *tbs);
    which = malloc((size_t)o.batch * sizeof *which);
    if (!mb || !tbs || !which) {
        fprintf(stderr, "affix: error: out of memory for %d micro-batches of %d examples\n", n_all, o.batch);
        goto done;
    }
    const char *nl = lead && !o.quiet && isatty(2) ? "\n" : ""; // ends a progress bar drawn with \r
    double t_start = now();
    long steps_here = 0;
    long last = o.stop_at && o.stop_at < total ? o.stop_at : total;
    while (st.step < last) {
        double t0 = now();
        // the micro-batches of this step, taken in the epoch's order (every rank makes all of them:
        // a few ints each; rank 0 dumps them all, each rank trains its own)
        int n_mb = n_all, failed = 0;
        long tokens = 0;
        for (int k = 0; k < n_mb && !failed; k++) {
            for (int i = 0; i < o.batch; i++) {
                if (st.index >= n_ex) { // next epoch, next order
                    st.epoch++;
                    st.index = 0;
                    permutation(perm, n_ex, st.perm_seed + (unsigned long long)st.epoch);
                }
                which[i] = perm[st.index++];
            }
            if (make_batch(&mb[k], ex, which, o.batch, pad, &e)) failed = 1;
            else tokens += mb[k].tokens, tbs[k] = as_train_batch(&mb[k]);
            if (!failed && dump && dump_batch(dump, st.step + 1, k, &mb[k])) {
                afx_fail(&e, "%s: cannot write: %s", o.dump_batches, strerror(errno));
                failed = 1;
            }
        }
        if (o.dump_only && !failed) { // the batches alone: the order is the run's whatever the parameters are
            for (int k = 0; k < n_mb; k++) free_batch(&mb[k]);
            st.step++;
            continue;
        }
        // zero_grad -> forward -> loss -> backward over the micro-batches -> clip -> AdamW (train.h)
        double lr = o.lr * lr_factor(o.schedule, st.step, o.warmup, total);
        ac.lr = lr;
        TrainStepResult r = {0};
        if (!failed && train_step_comm(&m.w, &set, &ws, kern, tbs + d->rank * o.accum, o.accum, K > 1 ? &comm : NULL, &ac,
                                       o.clip, st.step + 1, &r, &e))
            failed = 1;
        for (int k = 0; k < n_mb; k++) free_batch(&mb[k]);
        if (failed) { fprintf(stderr, "%saffix: error: %s\n", nl, e.msg); goto done; }
        double loss = r.loss, gnorm = r.grad_norm;
        // a non-finite step, or an update that made the parameters diverge, is never saved
        if (!r.finite || !r.params_ok) {
            char why[256], where[4400];
            if (!r.finite)
                snprintf(why, sizeof why, "the %s became %s", isfinite(loss) ? "gradient norm" : "loss",
                         isfinite(loss) ? (isnan(gnorm) ? "NaN" : "Inf") : (isnan(loss) ? "NaN" : "Inf"));
            else
                snprintf(why, sizeof why, "the update made the parameters diverge (max |w| = %g, above the guard of %g; "
                         "--lr %g too large?)", r.param_max, TRAIN_PARAM_MAX, o.lr);
            if (good[0]) snprintf(where, sizeof where, "the last good state is %s (step %lld)", good, good_step);
            else snprintf(where, sizeof where, "no checkpoint of this run holds a good state (none was saved yet)");
            fprintf(stderr, "%saffix: error: step %lld: %s; training stopped, nothing of this step was saved; %s\n", nl,
                    st.step + 1, why, where);
            goto done;
        }
        st.step++;
        steps_here++;
        double dt = now() - t0, tps = dt > 0 ? tokens / dt : 0;
        double eval_l = NAN;
        if (!lead) continue; // the log, the progress and the checkpoints are rank 0's
        if (o.eval_every && st.step % o.eval_every == 0) eval_l = eval_loss(&m, &set, &ws, kern, eval, n_eval, o.batch, pad, &e);
        int w = fprintf(csv, "%lld,%.6f,%.6e,%.6f,%.1f,", st.step, loss, lr, gnorm, tps);
        if (w >= 0 && isfinite(eval_l)) w = fprintf(csv, "%.6f", eval_l);
        if (w >= 0) w = fprintf(csv, "\n");
        if (w < 0 || fflush(csv)) {
            fprintf(stderr, "%saffix: error: %s: cannot write: %s (stopped at step %lld; %s%s)\n", nl, path, strerror(errno),
                    st.step, good[0] ? "the last good state is " : "no checkpoint was saved", good);
            goto done;
        }
        double elapsed = now() - t_start, eta = elapsed / steps_here * (double)(total - st.step);
        progress(&o, st.step, total, loss, lr, tps, eta);
        if (o.save_every && st.step % o.save_every == 0 && st.step < last) {
            if (save_all(o.out, o.model, spec, ad, n_ad, &set, &st, &m, &e)) {
                fprintf(stderr, "%saffix: error: %s\n", nl, e.msg);
                goto done;
            }
            snprintf(good, sizeof good, "%s/checkpoint.safetensors", o.out);
            good_step = st.step;
        }
    }
    if (nl[0]) fprintf(stderr, "\n");
    if (!lead || o.dump_only) { rc = 0; goto done; }
    if (save_all(o.out, o.model, spec, ad, n_ad, &set, &st, &m, &e)) { fprintf(stderr, "affix: error: %s\n", e.msg); goto done; }
    if (st.step < total && !o.quiet)
        fprintf(stderr, "affix: stopped at step %lld of %ld (--stop-at); continue with --resume %s\n", st.step, total, o.out);
    if (!o.quiet)
        fprintf(stderr, "affix: %lld steps done; adapter in %s/adapter (PEFT format), checkpoint and train_log.csv in %s\n",
                st.step, o.out, o.out);
    rc = 0;
done:
    train_workspace_free(&ws);
    free(mb);
    free(tbs);
    free(which);
    if (csv) fclose(csv);
    if (dump && fclose(dump) && rc == 0) {
        fprintf(stderr, "affix: error: %s: cannot write: %s\n", o.dump_batches, strerror(errno));
        rc = -1;
    }
    free(perm);
    if (eval && eval != ex) free_examples(eval, n_eval);
    if (ex) free_examples(ex, n_ex);
    if (have_set) adapter_set_free(&set);
    for (int i = 0; have_ad && i < n_ad; i++) adapter_destroy(&ad[i]);
    tokenizer_free(tok);
    if (have_model) model_free(&m);
    return rc;
}
