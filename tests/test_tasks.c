/* test_tasks.c — the task layer (ref/tasks/): readers on slices of the real files and on malformed
 * input built in memory, the prompt templates verbatim, and the metrics on hand-computed cases (the
 * SQuAD v1.1 normalization, token and character F1, MGSM's last number, label extraction).
 * Expected values were worked out by hand (and agree with the Python semantics of the official
 * scripts). Run from the repository root (reads tests/data/tasks/). Ends with "N passed, M failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "files.h"
#include "tolerances.h"
#include "data.h"
#include "metrics.h"
#include "templates.h"
#include "unicode.h"

static void check_str(const char *got, const char *want, const char *what) {
    char d[600];
    snprintf(d, sizeof d, "got \"%s\", want \"%s\"", got ? got : "(null)", want);
    check(got && strcmp(got, want) == 0, what, got && strcmp(got, want) == 0 ? "" : d);
}

static void check_num(double got, double want, const char *what) {
    char d[96];
    snprintf(d, sizeof d, "got %.9g, want %.9g", got, want);
    check(fabs(got - want) < 1e-9, what, fabs(got - want) < 1e-9 ? "" : d);
}

#define DATA "tests/data/tasks/"

/* ---- metrics -------------------------------------------------------------------------------- */

static void norm_is(const char *in, SquadMode m, const char *want, const char *what) {
    afx_err e = {{0}};
    char *out = NULL;
    if (require(!squad_normalize(in, m, &out, &e), what, e.msg)) check_str(out, want, what);
    free(out);
}

static void score_is(const char *pred, const char *const *golds, int n, SquadMode m, double em, double f1,
                     const char *what) {
    afx_err e = {{0}};
    double gem = -1, gf1 = -1;
    char name[160];
    if (!require(!squad_score(pred, golds, n, m, &gem, &gf1, &e), what, e.msg)) return;
    snprintf(name, sizeof name, "%s: EM", what);
    check_num(gem, em, name);
    snprintf(name, sizeof name, "%s: F1", what);
    check_num(gf1, f1, name);
}

static void test_unicode(void) {
    const char *ok4 = "caf\xC3\xA9 \xE5\x8C\x97 \xF0\x9F\x98\x80";
    check(u8_valid(ok4, strlen(ok4)), "utf8: valid 1-4 byte sequences", "");
    check(!u8_valid("\xC0\x80", 2), "utf8: overlong NUL refused", "");
    check(!u8_valid("\xED\xA0\x80", 3), "utf8: surrogate refused", "");
    check(!u8_valid("\xF4\x90\x80\x80", 4), "utf8: above U+10FFFF refused", "");
    check(!u8_valid("\xE5\x8C", 2), "utf8: truncated sequence refused", "");
    check(!u8_valid("\x80", 1), "utf8: lone continuation byte refused", "");
    check(u8_byte_offset("\xE5\x8C\x97\xE4\xBA\xACx", 7, 2) == 6 && u8_byte_offset("ab", 2, 3) == -1,
          "utf8: code-point index -> byte offset", "");
    char out[64];
    const char *greek = "\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xCE\xA3\xCE\x91"; // ΟΔΟΣ ΣΑ
    u8_lower(greek, strlen(greek), out);
    check_str(out, "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82 \xCF\x83\xCE\xB1", "lower: Greek final sigma (οδος σα)");
    const char *latin = "\xC4\xB0stanbul STRA\xE1\xBA\x9E" "E \xC6\xAF"; // İstanbul STRAẞE Ư
    u8_lower(latin, strlen(latin), out);
    check_str(out, "i\xCC\x87stanbul stra\xC3\x9F" "e \xC6\xB0", "lower: İ -> i + U+0307, ẞ -> ß, Ư -> ư");
    check(uc_is_punct(0x3002) && uc_is_punct(0xFF0C) && uc_is_punct(0x0E5A) && uc_is_punct(0x0964) &&
              !uc_is_punct('$') && !uc_is_punct(0x4E00),
          "punct: 。 ， ๚ । are P*; $ and 一 are not", "");
    check(uc_digit(0x09EE) == 8 && uc_digit(0x0E53) == 3 && uc_digit('x') == -1, "digits: Bengali 8, Thai 3", "");
}

static void test_squad(void) {
    // the official normalization
    norm_is("The Denver Broncos!", SQUAD_WORDS, "denver broncos", "norm: lowercase, punctuation, article");
    norm_is("theater another banana", SQUAD_WORDS, "theater another banana", "norm: articles inside words stay");
    norm_is("A an THE a", SQUAD_WORDS, "", "norm: only articles -> empty");
    norm_is("the-end", SQUAD_WORDS, "theend", "norm: punctuation removed before articles (the-end -> theend)");
    norm_is("an\xE2\x80\x94the", SQUAD_WORDS, "\xE2\x80\x94", "norm: \\b around an em dash (an—the -> —)");
    norm_is("l'amour", SQUAD_WORDS, "lamour", "norm: apostrophe removed, no space");
    norm_is("  New\tYork\xC2\xA0" "City ", SQUAD_WORDS, "new york city", "norm: white space incl. NBSP");
    norm_is("\xE3\x80\x8C\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x80\x8D", SQUAD_WORDS, "\xE3\x80\x8C\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x80\x8D",
            "norm: word mode keeps CJK punctuation (official: ASCII only)");
    // EM / F1 (hand-computed)
    const char *g1[] = {"Broncos", "the Denver Broncos"};
    score_is("Denver Broncos", g1, 2, SQUAD_WORDS, 1, 1, "max over golds (2nd matches)");
    const char *g2[] = {"a cat on a mat today"};
    score_is("the cat sat on the mat", g2, 1, SQUAD_WORDS, 0, 0.75, "F1 3 shared of 4/4 tokens = 0.75");
    const char *g3[] = {"dog", "cat dog"};
    score_is("cat cat cat", g3, 2, SQUAD_WORDS, 0, 0.4, "F1 multiset: P 1/3, R 1/2 -> 0.4");
    const char *g4[] = {"Denver"};
    score_is("", g4, 1, SQUAD_WORDS, 0, 0, "empty prediction: 0, 0");
    const char *g5[] = {"a"};
    score_is("the", g5, 1, SQUAD_WORDS, 1, 0, "both normalize to empty: EM 1, F1 0 (v1.1)");
    afx_err e = {{0}};
    double em, f1;
    check(squad_score("x", g5, 0, SQUAD_WORDS, &em, &f1, &e) != 0, "no gold answers refused", e.msg);
    // character level
    check(squad_mode_for_lang("zh") == SQUAD_CHARS && squad_mode_for_lang("th") == SQUAD_CHARS &&
              squad_mode_for_lang("tha_Thai") == SQUAD_CHARS && squad_mode_for_lang("zh-CN") == SQUAD_CHARS &&
              squad_mode_for_lang("ja") == SQUAD_CHARS && squad_mode_for_lang("en") == SQUAD_WORDS &&
              squad_mode_for_lang("de") == SQUAD_WORDS && squad_mode_for_lang("") == SQUAD_WORDS &&
              squad_mode_for_lang(NULL) == SQUAD_WORDS,
          "char mode for zh/th/ja (any code form), words otherwise", "");
    norm_is("Hello, World! \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81", SQUAD_CHARS,
            "hello world \xE4\xBD\xA0 \xE5\xA5\xBD \xE4\xB8\x96 \xE7\x95\x8C", "chars: CJK one token each, ，！ removed");
    const char *zh[] = {"\xE5\x8C\x97\xE4\xBA\xAC"}; // 北京
    score_is("\xE5\x8C\x97\xE4\xBA\xAC\xE5\xA4\xA7\xE5\xAD\xA6\xE3\x80\x82", zh, 1, SQUAD_CHARS, 0, 2.0 / 3,
             "chars zh: 北京大学。 vs 北京 = 2/3");
    score_is("\xE5\x8C\x97\xE4\xBA\xAC\xE5\xA4\xA7\xE5\xAD\xA6\xE3\x80\x82", zh, 1, SQUAD_WORDS, 0, 0,
             "words zh: same pair scores 0 (one token each)");
    const char *zh2[] = {"\xE5\x8C\x97\xE4\xBA\xAC\xE5\xA5\xA5\xE8\xBF\x90\xE4\xBC\x9A"}; // 北京奥运会
    score_is("2008\xE5\xB9\xB4\xE5\x8C\x97\xE4\xBA\xAC\xE5\xA5\xA5\xE8\xBF\x90\xE4\xBC\x9A", zh2, 1, SQUAD_CHARS, 0,
             10.0 / 12, "chars zh mixed: 2008年北京奥运会 vs 北京奥运会 = 5/6");
    const char *th[] = {"\xE0\xB8\x81\xE0\xB8\xA3\xE0\xB8\xB8\xE0\xB8\x87\xE0\xB9\x80\xE0\xB8\x97\xE0\xB8\x9E"
                        "\xE0\xB8\xA1\xE0\xB8\xAB\xE0\xB8\xB2\xE0\xB8\x99\xE0\xB8\x84\xE0\xB8\xA3"}; // กรุงเทพมหานคร
    score_is("\xE0\xB8\x81\xE0\xB8\xA3\xE0\xB8\xB8\xE0\xB8\x87\xE0\xB9\x80\xE0\xB8\x97\xE0\xB8\x9E", th, 1, SQUAD_CHARS,
             0, 0.7, "chars th: กรุงเทพ (7 cp) vs กรุงเทพมหานคร (13 cp) = 0.7");
    const char *th2[] = {"\xE0\xB8\x81\xE0\xB8\xA3\xE0\xB8\xB8\xE0\xB8\x87\xE0\xB9\x80\xE0\xB8\x97\xE0\xB8\x9E"};
    score_is("\xE0\xB8\x81\xE0\xB8\xA3\xE0\xB8\xB8\xE0\xB8\x87\xE0\xB9\x80\xE0\xB8\x97\xE0\xB8\x9E\xE0\xB9\x9A", th2, 1,
             SQUAD_CHARS, 1, 1, "chars th: Thai punctuation ๚ removed -> EM 1");
    const char *en[] = {"Denver Broncos"};
    score_is("The Denver Broncos!", en, 1, SQUAD_CHARS, 0, 0.8, "chars: no article removal (the counts) = 0.8");
}

static void test_mgsm(void) {
    char out[MGSM_NUM_MAX];
    struct {
        const char *in, *want;
    } norm[] = {{"1,234", "1234"}, {"-3.50", "-3.5"}, {"007", "7"},     {"5.", "5"},   {"-0.0", "0"},
                {".5", "0.5"},     {" +12 ", "12"},  {"2,125", "2125"}, {"1,234,567.80", "1234567.8"},
                {"\xE2\x88\x92" "4", "-4"}};
    for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "number_normalize(\"%s\")", norm[i].in);
        if (require(!number_normalize(norm[i].in, strlen(norm[i].in), out, sizeof out), what, "refused"))
            check_str(out, norm[i].want, what);
    }
    check(number_normalize("1,23", 4, out, sizeof out) != 0 && number_normalize("abc", 3, out, sizeof out) != 0 &&
              number_normalize("", 0, out, sizeof out) != 0 && number_normalize("3 4", 3, out, sizeof out) != 0 &&
              number_normalize("12", 2, out, 2) != 0,
          "number_normalize refuses 1,23 / abc / empty / '3 4' / too long", "");
    struct {
        const char *text, *want;
    } last[] = {{"The answer is 1,234.", "1234"},
                {"It drops to -5 degrees", "-5"},
                {"5-3=2, so 2-7", "7"},
                {"x-5", "5"},
                {"costs $2,125.00 in total", "2125"},
                {"is .5", "0.5"},
                {"She has 3.50 dollars", "3.5"},
                {"\xE0\xA7\xA7\xE0\xA7\xAE \xE0\xA6\x9F\xE0\xA6\xBE\xE0\xA6\x95\xE0\xA6\xBE", "18"}, // ১৮ টাকা
                {"1,23", "23"},
                {"The answer is 18.\n", "18"}};
    for (size_t i = 0; i < sizeof last / sizeof last[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "last number of \"%s\"", last[i].text);
        int r = mgsm_last_number(last[i].text, out, sizeof out);
        if (require(r == 1, what, "none found")) check_str(out, last[i].want, what);
    }
    check(mgsm_last_number("no number here", out, sizeof out) == 0 && out[0] == '\0', "no number -> 0", "");
    check(mgsm_correct("so 7 - 4 = 3.50, The answer is 3.50", "3.5") == 1, "MGSM: 3.50 = 3.5", "");
    check(mgsm_correct("The answer is 2125.", "2,125") == 1, "MGSM: 2125 = gold 2,125", "");
    check(mgsm_correct("The answer is -5.", "5") == 0, "MGSM: -5 != 5", "");
    check(mgsm_correct("The answer is 18, not 17", "18") == 0, "MGSM: the LAST number counts", "");
    check(mgsm_correct("I do not know", "0") == 0, "MGSM: no number is wrong", "");
    check(mgsm_correct("The answer is 1", "abc") == 0, "MGSM: a gold that is no number never matches", "");
}

static void test_labels(void) {
    check(nli_label_from_text(" Entailment.") == NLI_ENTAILMENT, "NLI: ' Entailment.' -> 0", "");
    check(nli_label_from_text("it is neutral, not contradiction") == NLI_NEUTRAL, "NLI: first label word wins", "");
    check(nli_label_from_text("CONTRADICTORY") == NLI_CONTRADICTION, "NLI: contradictory -> 2", "");
    check(nli_label_from_text("nonentailment") == -1 && nli_label_from_text("") == -1, "NLI: none -> -1", "");
    check(choice_from_text(" B", 4) == 1, "choice: ' B' -> 1", "");
    check(choice_from_text("(C) because", 4) == 2, "choice: '(C) because' -> 2", "");
    check(choice_from_text("Answer: D.", 4) == 3, "choice: 'Answer: D.' -> 3", "");
    check(choice_from_text("The answer is A dog", 4) == -1, "choice: 'A dog' is the article", "");
    check(choice_from_text("\xE7\xAD\x94\xE6\xA1\x88\xE6\x98\xAF" "B", 4) == 1, "choice: 答案是B -> 1", "");
    check(choice_from_text("E", 4) == -1 && choice_from_text("ABC", 4) == -1, "choice: E (4 options), ABC -> -1", "");
    double sc[4] = {-3, -1, -1, NAN};
    int nt[4] = {3, 1, 2, 1};
    check(choice_best(sc, NULL, 4) == 1, "best: tie -> lowest index, NaN never wins", "");
    check(choice_best(sc, nt, 4) == 2, "best: per-token mean (-1, -1, -0.5)", "");
    double nan4[2] = {NAN, NAN};
    check(choice_best(nan4, NULL, 2) == -1, "best: all NaN -> -1", "");
    int p[4] = {0, 1, 2, 1}, g[4] = {0, 1, 1, 1};
    check_num(metric_accuracy(p, g, 4), 0.75, "accuracy 3/4");
    check_num(metric_accuracy(p, g, 0), 0, "accuracy of nothing = 0");
}

/* ---- readers on the real slices ------------------------------------------------------------- */

static int read(TaskSet *s, TaskKind k, const char *path, const char *lang, const char *what) {
    afx_err e = {{0}};
    TaskReadOpts o = {.lang = lang, .strict = 1};
    return require(!task_read_file(s, k, path, &o, &e), what, e.msg) ? 0 : -1;
}

static void test_files(void) {
    TaskSet s;
    char d[200];
    // XQuAD zh: code-point answer_start, byte offset, language from the name
    if (!read(&s, TASK_SQUAD, DATA "xquad.zh.json", NULL, "read xquad.zh")) {
        const TaskExample *x = &s.ex[0];
        snprintf(d, sizeof d, "n=%zu lang=%s start=%ld byte=%ld", s.n, x->lang, x->answers[0].start, x->answers[0].start_byte);
        check(s.n == 3 && s.n_problems == 0 && !strcmp(x->lang, "zh") && x->n_answers == 1 &&
                  x->answers[0].start == 10 && x->answers[0].start_byte == 28 && !strcmp(x->answers[0].text, "308") &&
                  !strcmp(x->id, "56beb4343aeaaa14008c925b") && x->line == 16 && s.ex[2].line == 36,
              "xquad.zh: 3 questions, answer_start 10 = byte 28, lines 16..36", d);
        check(squad_mode_for_lang(x->lang) == SQUAD_CHARS, "xquad.zh scores by characters", "");
        task_set_free(&s);
    }
    if (!read(&s, TASK_SQUAD, DATA "xquad.th.json", NULL, "read xquad.th")) {
        check(s.n == 2 && !strcmp(s.ex[1].answers[0].text, "136") && s.ex[1].answers[0].start == 594 &&
                  !strcmp(s.ex[0].lang, "th"),
              "xquad.th: 2 questions, Thai answer_start 594 verified", "");
        task_set_free(&s);
    }
    if (!read(&s, TASK_SQUAD, DATA "squad-train.json", "en", "read squad-train")) {
        check(s.n == 2 && !strcmp(s.ex[1].answers[0].text, "a copper statue of Christ") &&
                  s.ex[1].answers[0].start == 188 && s.ex[1].answers[0].start_byte == 188 && !strcmp(s.ex[0].lang, "en"),
              "squad train: 2 questions, ASCII offsets", "");
        task_set_free(&s);
    }
    // XNLI layouts
    struct {
        const char *file, *lang, *want_lang;
        int labels[3];
    } nli[] = {{"my.genre.dev.tsv", NULL, "my", {1, 2, 0}}, {"my.genre.dev.tsv", "en", "en", {1, 2, 0}},
               {"sw.genre.test.tsv", NULL, "sw", {2, 0, 1}}, {"zh-ernie.test.tsv", "zh", "zh", {2, 0, 1}},
               {"xnli.test.ko.tsv", NULL, "ko", {2, 0, 1}},  {"de-xglue.test.txt", "de", "de", {2, 0, 1}}};
    for (size_t i = 0; i < sizeof nli / sizeof nli[0]; i++) {
        char path[128], what[96];
        snprintf(path, sizeof path, DATA "%s", nli[i].file);
        snprintf(what, sizeof what, "xnli %s (%s): 3 pairs, labels, language", nli[i].file, nli[i].want_lang);
        if (read(&s, TASK_NLI, path, nli[i].lang, what)) continue;
        int ok = s.n == 3 && s.n_problems == 0;
        for (size_t k = 0; ok && k < 3; k++)
            ok = s.ex[k].label == nli[i].labels[k] && !strcmp(s.ex[k].lang, nli[i].want_lang) && s.ex[k].n_options == 3;
        snprintf(d, sizeof d, "n=%zu lang=%s labels %d %d %d", s.n, s.n ? s.ex[0].lang : "", s.n ? s.ex[0].label : -9,
                 s.n > 1 ? s.ex[1].label : -9, s.n > 2 ? s.ex[2].label : -9);
        check(ok, what, ok ? "" : d);
        if (i == 1)
            check_str(s.ex[0].context, "And he said, Mama, I'm home.", "myXNLI with lang en reads the English premise");
        if (i == 0) check(strncmp(s.ex[0].context, "\xE1\x80", 2) == 0, "myXNLI default (name: my) reads Myanmar", "");
        task_set_free(&s);
    }
    // Belebele
    if (!read(&s, TASK_BELEBELE, DATA "eng_Latn.jsonl", NULL, "read eng_Latn")) {
        check(s.n == 2 && s.ex[0].n_options == 4 && s.ex[0].label == 0 && s.ex[1].label == 0 &&
                  !strcmp(s.ex[1].id, "1.2") && !strcmp(s.ex[1].lang, "eng_Latn") && s.ex[0].context == s.ex[1].context &&
                  !strcmp(s.ex[1].options[2], "Less pressure"),
              "belebele eng: 1 passage, 2 questions, 4 options, ids 1.1/1.2", "");
        task_set_free(&s);
    }
    if (!read(&s, TASK_BELEBELE, DATA "deu_Latn.jsonl", NULL, "read deu_Latn")) {
        check(s.n == 2 && !strcmp(s.ex[0].lang, "deu_Latn"), "belebele deu: language from metadata", "");
        task_set_free(&s);
    }
    // GSM8K / MGSM
    if (!read(&s, TASK_GSM8K, DATA "gsm8k-test.jsonl", NULL, "read gsm8k-test")) {
        check(s.n == 2 && !strcmp(s.ex[0].number, "18") && !strcmp(s.ex[1].number, "3") && !strcmp(s.ex[0].lang, "en") &&
                  strstr(s.ex[0].rationale, "<<16-3-4=9>>") && !strstr(s.ex[0].rationale, "####") &&
                  s.ex[0].rationale[strlen(s.ex[0].rationale) - 1] == '.',
              "gsm8k test: numbers 18, 3; rationale without '#### N'", "");
        task_set_free(&s);
    }
    if (!read(&s, TASK_GSM8K, DATA "gsm8k-train.jsonl", NULL, "read gsm8k-train")) {
        check(s.n == 2 && !strcmp(s.ex[0].number, "72") && !strcmp(s.ex[1].number, "10"), "gsm8k train: 72, 10", "");
        task_set_free(&s);
    }
    const char *mg[][2] = {{"mgsm_en.tsv", "en"}, {"mgsm_th.tsv", "th"}, {"mgsm_zh.tsv", "zh"}};
    for (int i = 0; i < 3; i++) {
        char path[96], what[64];
        snprintf(path, sizeof path, DATA "%s", mg[i][0]);
        snprintf(what, sizeof what, "mgsm %s: numbers 18, 3 (, 70000)", mg[i][1]);
        if (read(&s, TASK_MGSM, path, NULL, what)) continue;
        check(s.n >= 2 && !strcmp(s.ex[0].number, "18") && !strcmp(s.ex[1].number, "3") && !strcmp(s.ex[0].lang, mg[i][1]) &&
                  (s.n == 2 || !strcmp(s.ex[2].number, "70000")) && !strcmp(s.ex[1].id, "2"),
              what, "");
        task_set_free(&s);
    }
}

/* ---- readers on malformed input ------------------------------------------------------------- */

static int read_buf(TaskSet *s, TaskKind k, const char *buf, const char *name, int strict, const char *lang,
                    afx_err *e) {
    TaskReadOpts o = {.lang = lang, .strict = strict};
    return task_read(s, k, buf, strlen(buf), name, &o, e);
}

/* Reads buf leniently and checks: n examples, the problems start with NAME:LINE for the lines given
 * (0 ends the list) and contain `needle`s; then strictly: fails naming the first line. */
static void bad_input(TaskKind k, const char *buf, const char *name, const char *lang, size_t n_ok,
                      const long *lines, const char *const *needles, const char *what) {
    TaskSet s;
    afx_err e = {{0}};
    char d[700], want[128];
    int rc = read_buf(&s, k, buf, name, 0, lang, &e);
    size_t np = 0;
    while (lines[np]) np++;
    int ok = rc == 0 && s.n == n_ok && s.n_problems == np;
    snprintf(d, sizeof d, "rc=%d (%s) n=%zu problems=%zu", rc, rc ? e.msg : "", rc ? 0 : s.n, rc ? 0 : s.n_problems);
    for (size_t i = 0; ok && i < np; i++) {
        snprintf(want, sizeof want, "%s:%ld: ", name, lines[i]);
        ok = strncmp(s.problems[i], want, strlen(want)) == 0 && strstr(s.problems[i], needles[i]) != NULL;
        if (!ok) snprintf(d, sizeof d, "problem %zu: \"%s\", want \"%s...%s\"", i, s.problems[i], want, needles[i]);
    }
    check(ok, what, ok ? "" : d);
    if (rc == 0) task_set_free(&s);
    rc = read_buf(&s, k, buf, name, 1, lang, &e);
    snprintf(want, sizeof want, "%s:%ld: ", name, lines[0]);
    char sw[160];
    snprintf(sw, sizeof sw, "%s (strict mode fails at the first)", what);
    check(rc != 0 && strncmp(e.msg, want, strlen(want)) == 0 && s.n == 0 && s.ex == NULL, sw, e.msg);
}

static void test_bad(void) {
    // SQuAD: span mismatch, missing answers, invalid UTF-8 in an answer; problems carry the id's line
    const char *squad = "{\"data\": [{\"paragraphs\": [{\"context\": \"Caf\xC3\xA9 Paris opened in 1900.\",\n"
                        "  \"qas\": [\n"
                        "   {\"id\": \"q1\", \"question\": \"When?\", \"answers\": [{\"text\": \"1900\", \"answer_start\": 21}]},\n"
                        "   {\"id\": \"q2\", \"question\": \"What?\", \"answers\": [{\"text\": \"Paris\", \"answer_start\": 4}]},\n"
                        "   {\"id\": \"q3\", \"question\": \"Who?\", \"answers\": []},\n"
                        "   {\"id\": \"q4\", \"question\": \"Which?\", \"answers\": [{\"text\": \"Caf\xC3\", \"answer_start\": 0}]},\n"
                        "   {\"id\": \"q5\", \"question\": \"Where?\", \"answers\": [{\"text\": \"Paris\", \"answer_start\": 99}]}\n"
                        "  ]}]}], \"version\": \"1.1\"}\n";
    long sl[] = {4, 5, 6, 7, 0};
    const char *sn[] = {"is not the context's text at answer_start 4", "no answers", "invalid UTF-8", "past the end"};
    bad_input(TASK_SQUAD, squad, "t.json", "fr", 1, sl, sn, "squad: bad span / no answers / bad UTF-8 skipped");
    TaskSet s;
    afx_err e = {{0}};
    int rc = read_buf(&s, TASK_SQUAD, squad, "t.json", 0, "fr", &e);
    if (require(rc == 0, "squad: read t.json leniently", e.msg)) {
        check(s.ex[0].answers[0].start == 21 && s.ex[0].answers[0].start_byte == 22,
              "squad: answer_start counts code points (é is 2 bytes)", "");
        task_set_free(&s);
    }
    rc = read_buf(&s, TASK_SQUAD, "{\"data\": [\n{\"paragraphs\": [}\n]}", "j.json", 0, NULL, &e);
    check(rc != 0 && strncmp(e.msg, "j.json:2: invalid JSON", 22) == 0, "squad: invalid JSON names its line", e.msg);
    rc = read_buf(&s, TASK_SQUAD, "{\"data\": []}", "j.json", 0, NULL, &e);
    check(rc != 0 && strstr(e.msg, "no examples"), "squad: empty data is an error", e.msg);
    rc = read_buf(&s, TASK_SQUAD, "[1, 2]", "j.json", 0, NULL, &e);
    check(rc != 0 && strstr(e.msg, "\"data\""), "squad: no data array is an error", e.msg);
    rc = read_buf(&s, TASK_SQUAD, "", "j.json", 0, NULL, &e);
    check(rc != 0, "squad: empty file is an error", e.msg);

    // NLI: wrong column count, unknown label, invalid UTF-8, empty premise, numeric label
    const char *nli = "genre\tlabel\tsentence1_xx\tsentence2_xx\n"
                      "f\tentailment\tA man sleeps.\tA person sleeps.\n"
                      "f\tneutral\tonly three columns\n"
                      "f\tmaybe\tA.\tB.\n"
                      "f\tneutral\tbad \xC3\x28 byte\tB.\n"
                      "\n"
                      "f\tcontradiction\t\tB.\n"
                      "f\t0\tA.\tB.\n"
                      "f\tContradictory\tA dog.\tNo dog.\r\n";
    long nl[] = {3, 4, 5, 7, 8, 0};
    const char *nn[] = {"3 columns, expected 4", "unknown label 'maybe'", "invalid UTF-8", "empty premise",
                        "unknown label '0'"};
    bad_input(TASK_NLI, nli, "n.tsv", NULL, 2, nl, nn, "nli: bad rows skipped with FILE:LINE");
    rc = read_buf(&s, TASK_NLI, nli, "n.tsv", 0, NULL, &e);
    if (require(rc == 0, "nli: read n.tsv leniently", e.msg)) {
        check(s.ex[1].label == NLI_CONTRADICTION && !strcmp(s.ex[1].question, "No dog.") && !strcmp(s.ex[1].id, "7") &&
                  !strcmp(s.ex[0].lang, "xx"),
              "nli: CRLF stripped, row ids count skipped rows, language from the column suffix", "");
        task_set_free(&s);
    }
    rc = read_buf(&s, TASK_NLI, "label\tsentence1_en\tsentence2_en\tsentence1_my\tsentence2_my\nneutral\ta\tb\tc\td\n",
                  "pairs.tsv", 0, NULL, &e);
    check(rc != 0 && strstr(e.msg, "en, my"), "nli: two sentence pairs and no language is an error", e.msg);
    rc = read_buf(&s, TASK_NLI, "label\tsentence1_en\tsentence2_en\tsentence1_my\tsentence2_my\nneutral\ta\tb\tc\td\n",
                  "pairs.tsv", 0, "my", &e);
    check(rc == 0 && s.n == 1 && !strcmp(s.ex[0].context, "c"), "nli: language chooses the pair", e.msg);
    if (rc == 0) task_set_free(&s);
    const char *x10 = "language\tgold_label\tsentence1\tsentence2\tpairID\n"
                      "de\tneutral\tEin Hund.\tEin Tier.\t7\nfr\tentailment\tUn chien.\tUn animal.\t7\n"
                      "de\tentailment\tZwei.\tDrei.\t8\n";
    rc = read_buf(&s, TASK_NLI, x10, "xnli.test.tsv", 0, "fr", &e);
    check(rc == 0 && s.n == 1 && !strcmp(s.ex[0].lang, "fr") && !strcmp(s.ex[0].id, "7") && s.ex[0].label == 0,
          "nli: XNLI-1.0 layout filtered by language, pairID as id", e.msg);
    if (rc == 0) task_set_free(&s);
    rc = read_buf(&s, TASK_NLI, x10, "xnli.test.tsv", 0, NULL, &e);
    check(rc == 0 && s.n == 3 && !strcmp(s.ex[1].lang, "fr") && !strcmp(s.ex[2].lang, "de"),
          "nli: XNLI-1.0 without a language keeps every row with its own", e.msg);
    if (rc == 0) task_set_free(&s);
    rc = read_buf(&s, TASK_NLI, "genre\tlabel\tpremise\n", "h.tsv", 0, NULL, &e);
    check(rc != 0 && strstr(e.msg, "h.tsv:1:") && strstr(e.msg, "hypothesis"), "nli: header without hypothesis", e.msg);

    // Belebele: a bad item in a good passage, bad JSON, a line of neither form, the official flat form
    const char *bb =
        "{\"text\": \"P1\", \"items\": [{\"question\": \"Q1\", \"answers\": [{\"text\": \"a\", \"correct\": false}, "
        "{\"text\": \"b\", \"correct\": true}, {\"text\": \"c\", \"correct\": false}, {\"text\": \"d\", \"correct\": false}]}, "
        "{\"question\": \"Q2\", \"answers\": [{\"text\": \"a\", \"correct\": true}, {\"text\": \"b\", \"correct\": true}, "
        "{\"text\": \"c\", \"correct\": false}, {\"text\": \"d\", \"correct\": false}]}], \"metadata\": {\"extra\": "
        "{\"language\": \"fra_Latn\"}}}\n"
        "{\"text\": \"P2\", \"items\": [\n"
        "{\"flores_passage\": \"P3\", \"question\": \"Q3\", \"mc_answer1\": \"w\", \"mc_answer2\": \"x\", "
        "\"mc_answer3\": \"y\", \"mc_answer4\": \"z\", \"correct_answer_num\": \"4\", \"dialect\": \"swh_Latn\"}\n"
        "\n"
        "{\"passage\": \"P4\"}\n"
        "{\"flores_passage\": \"P5\", \"question\": \"Q5\", \"mc_answer1\": \"w\", \"mc_answer2\": \"x\", "
        "\"mc_answer3\": \"y\", \"mc_answer4\": \"z\", \"correct_answer_num\": \"5\"}\n";
    long bl[] = {1, 2, 5, 6, 0};
    const char *bn[] = {"question 2: 2 correct answers", "invalid JSON", "neither", "correct_answer_num"};
    bad_input(TASK_BELEBELE, bb, "b.jsonl", NULL, 2, bl, bn, "belebele: bad item / JSON / form skipped");
    rc = read_buf(&s, TASK_BELEBELE, bb, "b.jsonl", 0, NULL, &e);
    if (require(rc == 0, "belebele: read b.jsonl leniently", e.msg)) {
        check(s.ex[0].label == 1 && !strcmp(s.ex[0].lang, "fra_Latn") && !strcmp(s.ex[0].id, "1.1") &&
                  s.ex[1].label == 3 && !strcmp(s.ex[1].lang, "swh_Latn") && !strcmp(s.ex[1].context, "P3") &&
                  !strcmp(s.ex[1].id, "3"),
              "belebele: both forms read (labels 1 and 3, languages from the file)", "");
        task_set_free(&s);
    }

    // GSM8K and MGSM
    const char *gs = "{\"question\": \"Q1\", \"answer\": \"1+1=<<1+1=2>>2\\n#### 2\"}\n"
                     "{\"question\": \"Q2\", \"answer\": \"no final line\"}\n"
                     "{\"question\": \"Q3\", \"answer\": \"x\\n#### many\"}\n"
                     "{\"question\": \"Q4\" \"answer\": \"1\"}\n"
                     "{\"question\": \"Q5\", \"answer\": \"a\\n#### 1,080\"}\n";
    long gl[] = {2, 3, 4, 0};
    const char *gn[] = {"no \"#### N\" line", "not a number", "invalid JSON"};
    bad_input(TASK_GSM8K, gs, "g.jsonl", NULL, 2, gl, gn, "gsm8k: bad lines skipped");
    rc = read_buf(&s, TASK_GSM8K, gs, "g.jsonl", 0, NULL, &e);
    if (require(rc == 0, "gsm8k: read g.jsonl leniently", e.msg)) {
        check(!strcmp(s.ex[1].number, "1080") && !strcmp(s.ex[0].rationale, "1+1=<<1+1=2>>2"),
              "gsm8k: '#### 1,080' -> 1080, rationale kept raw", "");
        task_set_free(&s);
    }
    const char *mg = "How many?\t18\nThree\tcolumns\there\nHow much?\tlots\n\tonly answer\n\xFF\xFE\t5\nOk?\t-2\n";
    long ml[] = {2, 3, 4, 5, 0};
    const char *mn[] = {"3 columns", "not a number", "empty question", "invalid UTF-8"};
    bad_input(TASK_MGSM, mg, "mgsm_xx.tsv", NULL, 2, ml, mn, "mgsm: bad rows skipped");
    rc = read_buf(&s, TASK_MGSM, "a\tb\nc\td\n", "m.tsv", 0, NULL, &e);
    check(rc != 0 && strstr(e.msg, "no examples (2 problems; the first: m.tsv:1:"),
          "mgsm: nothing usable is an error naming the first problem", e.msg);
    rc = task_read_file(&s, TASK_MGSM, DATA "does-not-exist.tsv", NULL, &e);
    check(rc != 0 && strstr(e.msg, "does-not-exist.tsv: cannot open"), "missing file named", e.msg);
}

/* ---- templates ------------------------------------------------------------------------------ */

static void test_templates(void) {
    afx_err e = {{0}};
    TmplText t;
    const char *nli_opts[3] = {"entailment", "neutral", "contradiction"};
    TaskExample nli = {.kind = TASK_NLI, .id = "1", .lang = "de", .context = "Ein Mann schl\xC3\xA4" "ft.",
                       .question = "Ein Mensch schl\xC3\xA4" "ft.", .n_options = 3, .options = nli_opts, .label = 0};
    if (require(!tmpl_render(&nli, TMPL_EVAL, &t, &e), "render NLI", e.msg)) {
        check_str(t.prompt,
                  "Does the premise entail the hypothesis? Answer with entailment, neutral or contradiction.\n\n"
                  "Premise: Ein Mann schl\xC3\xA4" "ft.\nHypothesis: Ein Mensch schl\xC3\xA4" "ft.\nAnswer:",
                  "NLI prompt verbatim (English instruction, German text)");
        check_str(t.target, " entailment", "NLI target: English label word");
        tmpl_text_free(&t);
    }
    // --labels yes-no: read from a real XNLI slice with nli_yes_no, its own instruction, one-token answers
    {
        TaskSet ts;
        TaskReadOpts ro = {.nli_yes_no = 1};
        if (require(!task_read_file(&ts, TASK_NLI, DATA "sw.genre.test.tsv", &ro, &e) && ts.n > 0, "read NLI yes-no", e.msg)) {
            const TaskExample *x = &ts.ex[0];
            check(x->yes_no && !strcmp(x->options[0], "yes") && !strcmp(x->options[1], "maybe") && !strcmp(x->options[2], "no"),
                  "NLI yes-no: the options are yes / maybe / no", "");
            if (require(!tmpl_render(x, TMPL_TRAIN, &t, &e), "render NLI yes-no", e.msg)) {
                const char *head = "Does the premise entail the hypothesis? Answer with yes, maybe or no.\n\nPremise: ";
                check(!strncmp(t.prompt, head, strlen(head)) && strstr(t.prompt, "\nAnswer:"), "NLI yes-no prompt verbatim", t.prompt);
                char want[16];
                snprintf(want, sizeof want, " %s", x->options[x->label]);
                check_str(t.target, want, "NLI yes-no target: the answer word of the label");
                tmpl_text_free(&t);
            }
            task_set_free(&ts);
        }
        check(nli_yes_no_from_text(" Yes, it does") == 0 && nli_yes_no_from_text("maybe") == 1 && nli_yes_no_from_text("no.") == 2 &&
              nli_yes_no_from_text("nope") == -1 && nli_yes_no_from_text("entailment") == -1 && nli_yes_no_from_text("") == -1,
              "NLI yes-no: the answer from generated text (first word)", "");
    }
    const char *opts[4] = {"More speed", "More force", "Less pressure", "Less finger motion"};
    TaskExample bb = {.kind = TASK_BELEBELE, .id = "1.2", .lang = "eng_Latn", .context = "Passage text.",
                      .question = "Which?", .n_options = 4, .options = opts, .label = 2};
    if (require(!tmpl_render(&bb, TMPL_TRAIN, &t, &e), "render Belebele", e.msg)) {
        check_str(t.prompt,
                  "Read the passage and answer the question. Answer with A, B, C or D.\n\nPassage: Passage text.\n"
                  "Question: Which?\nA. More speed\nB. More force\nC. Less pressure\nD. Less finger motion\nAnswer:",
                  "Belebele prompt verbatim");
        check_str(t.target, " C", "Belebele target: the letter");
        tmpl_text_free(&t);
    }
    char *c = NULL;
    check(tmpl_n_candidates(&bb) == 4 && tmpl_candidate(&bb, 1, TMPL_CAND_LABEL, &c, &e) == 0 && !strcmp(c, " B"),
          "candidate letter ' B'", e.msg);
    free(c);
    check(tmpl_candidate(&bb, 3, TMPL_CAND_TEXT, &c, &e) == 0 && !strcmp(c, " Less finger motion"),
          "candidate text ' Less finger motion'", e.msg);
    free(c);
    check(tmpl_candidate(&nli, 2, TMPL_CAND_TEXT, &c, &e) == 0 && !strcmp(c, " contradiction"), "NLI candidate",
          e.msg);
    free(c);
    check(tmpl_candidate(&bb, 4, TMPL_CAND_LABEL, &c, &e) != 0, "candidate out of range refused", e.msg);

    TaskAnswer ans = {.text = "308", .start = 10, .start_byte = 28};
    TaskExample sq = {.kind = TASK_SQUAD, .id = "q", .lang = "zh", .context = "C.", .question = "Q?", .n_answers = 1,
                      .answers = &ans};
    if (require(!tmpl_render(&sq, TMPL_TRAIN, &t, &e), "render SQuAD", e.msg)) {
        check_str(t.prompt,
                  "Answer the question with a short span copied from the context.\n\nContext: C.\nQuestion: Q?\nAnswer:",
                  "SQuAD prompt verbatim");
        check_str(t.target, " 308", "SQuAD target: first gold answer");
        tmpl_text_free(&t);
    }
    TaskExample gs = {.kind = TASK_GSM8K, .id = "1", .lang = "en", .question = "How many?", .number = "18",
                      .rationale = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = "
                                   "$<<9*2=18>>18 every day."};
    if (require(!tmpl_render(&gs, TMPL_TRAIN, &t, &e), "render GSM8K", e.msg)) {
        check_str(t.prompt,
                  "Solve the problem step by step and end with \"The answer is N.\"\n\nQuestion: How many?\nAnswer:",
                  "math prompt verbatim");
        check_str(t.target,
                  " Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day.\nThe answer is 18.",
                  "GSM8K train target: rationale without <<...>>, then 'The answer is 18.'");
        tmpl_text_free(&t);
    }
    TaskExample mg = {.kind = TASK_MGSM, .id = "1", .lang = "th", .question = "Q", .number = "18"};
    if (require(!tmpl_render(&mg, TMPL_EVAL, &t, &e), "render MGSM", e.msg)) {
        check_str(t.target, " 18", "MGSM eval target: the number");
        check(mgsm_correct("Step... The answer is 18.", "18"), "MGSM target scores with mgsm_correct", "");
        tmpl_text_free(&t);
    }
    if (require(!tmpl_render(&mg, TMPL_TRAIN, &t, &e), "render MGSM train", e.msg)) {
        check_str(t.target, " The answer is 18.", "MGSM train target (no rationale)");
        tmpl_text_free(&t);
    }
    char *s = NULL;
    check(tmpl_format("x {nope} y", &mg, &s, &e) != 0 && strstr(e.msg, "{nope}"), "unknown field refused", e.msg);
    check(tmpl_format("{rationale}", &mg, &s, &e) != 0 && strstr(e.msg, "rationale"), "missing field refused", e.msg);
    check(tmpl_format("{question", &mg, &s, &e) != 0, "unterminated field refused", e.msg);
    check(!strcmp(tmpl_stop(TASK_MGSM), "\nQuestion:") && !strcmp(tmpl_stop(TASK_SQUAD), "\n"), "stop strings", "");
}

static void test_names(void) {
    char l[16];
    struct {
        const char *path, *want;
    } c[] = {{"a/xquad.th.json", "th"},      {"mgsm_bn.tsv", "bn"},        {"x/eng_Latn.jsonl", "eng_Latn"},
             {"my.genre.test.tsv", "my"},    {"xnli.dev.ko.tsv", "ko"},    {"test.txt", ""},
             {"train-v1.1.json", ""},        {"xnli.test.tsv", ""}};
    int ok = 1;
    char d[128] = "";
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int r = task_lang_from_name(c[i].path, l, sizeof l);
        if (!r) l[0] = '\0';
        if (strcmp(l, c[i].want) || r != (c[i].want[0] != '\0')) {
            ok = 0;
            snprintf(d, sizeof d, "%s -> '%s', want '%s'", c[i].path, l, c[i].want);
        }
    }
    check(ok, "language from distributed file names", d);
    check(task_kind_parse("xquad") == TASK_SQUAD && task_kind_parse("mnli") == TASK_NLI && task_kind_parse("x") == -1 &&
              !strcmp(task_kind_name(TASK_BELEBELE), "belebele") && !strcmp(task_nli_label_name(2), "contradiction"),
          "task kind names", "");
}

/* linear CKA against numpy's feature-space formula (tests/data/probe/cka.json, made by
 * tools/oracle/make_cka_vectors.py), and its invariances */
static void test_cka(void) {
    char *buf = NULL;
    size_t len = 0;
    afx_err e = {{0}};
    if (!require(afx_read_file("tests/data/probe/cka.json", 1 << 24, &buf, &len, &e) == 0, "cka: read the vectors", e.msg)) return;
    cJSON *root = cJSON_Parse(buf), *cases = root ? cJSON_GetObjectItem(root, "cases") : NULL;
    double worst = 0;
    int n_cases = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        int n = cJSON_GetObjectItem(c, "n")->valueint, dx = cJSON_GetObjectItem(c, "dx")->valueint,
            dy = cJSON_GetObjectItem(c, "dy")->valueint;
        double *X = malloc(sizeof(double) * (size_t)n * dx), *Y = malloc(sizeof(double) * (size_t)n * dy);
        int i = 0;
        cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "X")) X[i++] = v->valuedouble;
        i = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "Y")) Y[i++] = v->valuedouble;
        double want = cJSON_GetObjectItem(c, "cka")->valuedouble, got = cka_linear(X, dx, Y, dy, n);
        double err = fabs(got - want) / fmax(1e-300, fabs(want)), sym = cka_linear(Y, dy, X, dx, n);
        char what[160], d[160];
        snprintf(what, sizeof what, "cka: %s = numpy's %.12f", cJSON_GetObjectItem(c, "name")->valuestring, want);
        snprintf(d, sizeof d, "got %.15f, relative error %.1e (tolerance %.0e)", got, err, TOL_CKA);
        check(err <= TOL_CKA && fabs(sym - got) <= TOL_CKA, what, d);
        if (err > worst) worst = err;
        if (!n_cases++) check(fabs(cka_linear(X, dx, X, dx, n) - 1) <= TOL_CKA, "cka: X with itself is 1", "");
        free(X);
        free(Y);
    }
    char d[64];
    snprintf(d, sizeof d, "worst relative error %.1e", worst);
    check(n_cases == 5, "cka: all 5 committed cases were compared", d);
    double one[2] = {1, 1};
    check(isnan(cka_linear(one, 1, one, 1, 2)), "cka: a set without variance gives NaN", "");
    cJSON_Delete(root);
    free(buf);
}

int main(void) {
    test_cka();
    test_unicode();
    test_squad();
    test_mgsm();
    test_labels();
    test_files();
    test_bad();
    test_templates();
    test_names();
    return check_summary();
}
