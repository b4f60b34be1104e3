/* fuzz_main.c — a main() for the libFuzzer harnesses (tests/fuzz_*.c) where libFuzzer is not
 * available: `make fuzz` links it instead of -fsanitize=fuzzer, so the harnesses always compile and
 * still run (with ASan/UBSan when the compiler has them).
 *
 *   fuzz_gguf [-libfuzzer-flags ...] FILE|DIR ...
 *
 * Every FILE is one input; a DIR gives each regular file in it (not recursive); with no FILE or DIR,
 * stdin is one input. Each input is passed as an exact-size heap copy (a read past its end is an
 * ASan report), then its prefixes (at most 64 lengths), then mutants (1-4 bytes overwritten, from a
 * fixed seed): 256 rounds over all inputs, or, with -max_total_time=N, rounds until N seconds have
 * passed. No coverage guidance, but the refusal paths run. Other arguments starting with '-' are
 * libFuzzer's options and ignored. Exit 0 when every input was read; a harness reports a bug by
 * crashing (abort, sanitizer).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ROUNDS 256
#define MAX_INPUTS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint8_t *p;
    size_t n;
} Input;

static Input inputs[MAX_INPUTS];
static int n_inputs;
static long runs;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng >> 17;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "fuzz_main: out of memory\n");
        exit(2);
    }
    return p;
}

static void run_one(const uint8_t *p, size_t n) {
    uint8_t *copy = xmalloc(n);
    if (n) memcpy(copy, p, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    runs++;
}

/* the whole stream; NULL on a read error */
static Input slurp(FILE *f) {
    Input in = {xmalloc(1 << 16), 0};
    size_t cap = 1 << 16, k;
    while ((k = fread(in.p + in.n, 1, cap - in.n, f)) > 0)
        if ((in.n += k) == cap) {
            uint8_t *b = realloc(in.p, cap *= 2);
            if (!b) exit(2);
            in.p = b;
        }
    if (ferror(f)) free(in.p), in.p = NULL;
    return in;
}

static int add_file(const char *path) {
    FILE *f = fopen(path, "rb");
    Input in = {NULL, 0};
    if (f) in = slurp(f), fclose(f);
    if (!in.p || n_inputs == MAX_INPUTS) {
        fprintf(stderr, "fuzz_main: cannot read %s%s\n", path, in.p ? " (too many inputs)" : "");
        free(in.p);
        return -1;
    }
    inputs[n_inputs++] = in;
    return 0;
}

static int add_path(const char *path) {
    struct stat sb;
    if (stat(path, &sb)) {
        fprintf(stderr, "fuzz_main: cannot open %s\n", path);
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) return add_file(path);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "fuzz_main: cannot read the directory %s\n", path);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        if (de->d_name[0] != '.' && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) rc |= add_file(p);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv) {
    int rc = 0, named = 0;
    time_t deadline = 0;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "-max_total_time=", 16)) deadline = time(NULL) + atol(argv[i] + 16);
        if (argv[i][0] == '-') continue;
        named++;
        rc |= add_path(argv[i]);
    }
    if (!named) {
        Input in = slurp(stdin);
        if (!in.p) return 1;
        inputs[n_inputs++] = in;
    }
    for (int i = 0; i < n_inputs; i++) { /* each input as it is, and its prefixes */
        run_one(inputs[i].p, inputs[i].n);
        for (size_t k = 0, step = inputs[i].n / 64 + 1; k < inputs[i].n; k += step) run_one(inputs[i].p, k);
    }
    uint8_t *m = NULL;
    for (int round = 0; n_inputs && (deadline ? time(NULL) < deadline : round < ROUNDS); round++)
        for (int i = 0; i < n_inputs; i++) {
            size_t n = inputs[i].n;
            if (!n) continue;
            free(m);
            m = xmalloc(n);
            memcpy(m, inputs[i].p, n);
            for (int k = 0, flips = 1 + (int)(next() % 4); k < flips; k++)
                m[next() % 4 ? next() % (n < 512 ? n : 512) : next() % n] = (uint8_t)next(); /* headers first */
            run_one(m, n);
        }
    free(m);
    for (int i = 0; i < n_inputs; i++) free(inputs[i].p);
    printf("%s: %ld runs on %d inputs (standalone driver: no coverage guidance)\n", argv[0], runs, n_inputs);
    return rc ? 1 : 0;
}
