/* check.h — the one harness of the C test programs: the counters, one line per check, and the
 * closing line tests/run.sh sums. Header-only: every test program includes it once (its counters
 * are that program's own).
 *
 *   check(ok, what, detail)     counts a pass or a failure; prints "  ok    what -- detail" or
 *                               "  FAIL  what -- detail" (failures only when check_quiet is set)
 *   require(ok, what, detail)   a setup step: silent and uncounted when it works; when it does not,
 *                               a counted failure (printed as check prints one). Returns ok, so that
 *                               the checks that depend on it are skipped only with a failure on record:
 *                                   if (require(load(...) == 0, "load the model", e.msg)) { checks }
 *   CHECK(cond), CHECKM(cond, detail), REQUIRE(cond), REQUIREM(cond, detail)
 *                               the same, quiet: nothing on a pass; a failure prints
 *                               "FAIL file.c:LINE: cond -- detail" (check_at / require_at take the line)
 *   check_add(passed, failed)   counts a tally kept elsewhere (the golden suite's)
 *   return check_summary();     prints "N passed, M failed" and returns the exit code: 1 on any
 *                               failure and when no check ran at all, else 0
 *
 * Every line is one line: newlines in what/detail print as \n.
 */
#ifndef AFFIX_TEST_CHECK_H
#define AFFIX_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_pass, check_fail;
static int check_quiet;             /* 1: check() prints failures only */
static void (*check_after)(void);   /* called after every counted check (e.g. to clear an error) */

static inline void check_put_line_(const char *s) {
    for (; s && *s; s++) {
        if (*s == '\n') fputs("\\n", stdout);
        else putchar(*s);
    }
}

static inline void check_print_(int ok, const char *where, int line, const char *what, const char *detail) {
    if (where) printf("FAIL %s:%d: ", where, line);
    else printf("  %s  ", ok ? "ok  " : "FAIL");
    check_put_line_(what);
    if (detail && *detail) fputs(" -- ", stdout), check_put_line_(detail);
    putchar('\n');
}

static inline int check(int ok, const char *what, const char *detail) {
    ok = ok != 0;
    if (ok) check_pass++;
    else check_fail++;
    if (!ok || !check_quiet) check_print_(ok, NULL, 0, what, detail);
    if (check_after) check_after();
    return ok;
}

static inline int require(int ok, const char *what, const char *detail) {
    if (!ok) check(0, what, detail);
    return ok != 0;
}

/* file: __FILE__ (printed without its directory) */
static inline int check_at(int ok, const char *file, int line, const char *what, const char *detail) {
    ok = ok != 0;
    if (ok) {
        check_pass++;
    } else {
        const char *base = strrchr(file, '/');
        check_fail++;
        check_print_(0, base ? base + 1 : file, line, what, detail);
    }
    if (check_after) check_after();
    return ok;
}

static inline int require_at(int ok, const char *file, int line, const char *what, const char *detail) {
    if (!ok) check_at(0, file, line, what, detail);
    return ok != 0;
}

#define CHECK(cond) check_at((cond) ? 1 : 0, __FILE__, __LINE__, #cond, NULL)
#define CHECKM(cond, detail) check_at((cond) ? 1 : 0, __FILE__, __LINE__, #cond, detail)
#define REQUIRE(cond) require_at((cond) ? 1 : 0, __FILE__, __LINE__, #cond, NULL)
#define REQUIREM(cond, detail) require_at((cond) ? 1 : 0, __FILE__, __LINE__, #cond, detail)

static inline void check_add(int passed, int failed) {
    check_pass += passed;
    check_fail += failed;
}

static inline int check_summary(void) {
    printf("%d passed, %d failed\n", check_pass, check_fail);
    fflush(stdout);
    return check_fail || check_pass + check_fail == 0 ? 1 : 0;
}

#endif
