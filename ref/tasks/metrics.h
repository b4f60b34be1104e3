/* metrics.h — scoring of model outputs for the tasks of data.h.
 *
 *   accuracy          mean of pred[i] == gold[i] (NLI labels, Belebele options)
 *   SQuAD EM / F1     the official SQuAD v1.1 evaluation: normalize (lowercase; remove the ASCII
 *                     characters of Python's string.punctuation; remove the words a / an / the, where
 *                     \b-delimited; collapse white space), split on white space, EM = equal strings,
 *                     F1 = 2PR/(P+R) over the multiset of shared tokens (0 when none is shared, also
 *                     when both are empty); the maximum over the gold answers. Scores are 0..1.
 *   SQuAD, characters for scripts written without spaces (MLQA's "mixed segmentation" for zh): the
 *                     same lowercasing; removes string.punctuation and every Unicode punctuation
 *                     character (category P*); no article removal; tokens are white-space separated
 *                     words, except that each code point of a no-space script (CJK, kana, Thai, Lao,
 *                     Khmer, Myanmar) is a token by itself. Used for zh, ja, th, my, lo, km (also
 *                     their 3-letter and FLORES codes: zho_Hans, jpn_Jpan, tha_Thai, ...; yue).
 *   MGSM              exact match of the last number in the generated text against the gold number,
 *                     compared as decimal values ("1,234" = "1234", "3.50" = "3.5", "-0" = "0").
 *   label extraction  the first NLI label word / Belebele letter in generated text, and the best
 *                     option by log-likelihood scores (which the model code computes).
 *
 * What this is not: the generation itself, or averaging over a data set (a caller sums per-example
 * scores). Functions that allocate return 0 / -1 with afx_err (out of memory only); the rest cannot
 * fail.
 */
#ifndef AFFIX_TASKS_METRICS_H
#define AFFIX_TASKS_METRICS_H

#include <stddef.h>

#include "err.h"

/* Fraction of i < n with pred[i] == gold[i]; 0 when n == 0. */
double metric_accuracy(const int *pred, const int *gold, size_t n);

/* ---- SQuAD ---------------------------------------------------------------------------------- */

typedef enum { SQUAD_WORDS = 0, SQUAD_CHARS = 1 } SquadMode;

/* SQUAD_CHARS for zh, ja, th, my, lo, km, yue (any of "zh", "zho", "zh-CN", "zho_Hans", ...);
 * SQUAD_WORDS for every other language, and for NULL or "". */
SquadMode squad_mode_for_lang(const char *lang);

/* The normalized answer: the tokens joined by single spaces (malloc'd, caller frees). */
int squad_normalize(const char *s, SquadMode mode, char **out, afx_err *e);

/* EM and F1 (each 0..1) of prediction pred against n_golds >= 1 gold answers, maximum over golds. */
int squad_score(const char *pred, const char *const *golds, int n_golds, SquadMode mode, double *em, double *f1,
                afx_err *e);

/* ---- MGSM / GSM8K --------------------------------------------------------------------------- */

/* Longest normalized number the functions below write, with its NUL. */
#define MGSM_NUM_MAX 64

/* The canonical form of the number literal s[0..len) (surrounding white space allowed): an optional
 * sign (- + or U+2212), digits (ASCII, or the decimal digits of unicode.h's scripts) with optional
 * ',' thousands groups of exactly three digits, an optional '.' and fraction. The form has no
 * thousands separators, no leading zeros, no trailing fraction zeros, no '.' without a fraction, and
 * no sign on zero: "1,234" -> "1234", "-3.50" -> "-3.5", "007" -> "7", "5." -> "5", "-0.0" -> "0",
 * ".5" -> "0.5". Returns 0, or -1 when s is not such a literal or the form does not fit cap bytes. */
int number_normalize(const char *s, size_t len, char *out, size_t cap);

/* The last number in text, normalized into out: 1 found, 0 none, -1 longer than cap.
 * A number is a run of digits, with ',' + three digits continuing it as a thousands group and '.' +
 * digits as a fraction; '-' (or U+2212) right before it is its sign unless a Latin letter or a digit
 * precedes the '-' ("5-3" holds 5 and 3); a '.' right before it after a non-digit makes it a fraction (".5").
 * A sentence-final '.' is not a fraction: "The answer is 1,234." -> "1234". */
int mgsm_last_number(const char *text, char *out, size_t cap);

/* 1 when the last number of generated equals gold (both normalized), else 0 (also when generated has
 * no number or gold is not a number). The caller cuts the generation at the template's stop string. */
int mgsm_correct(const char *generated, const char *gold);

/* ---- classification from generated text / scores --------------------------------------------- */

/* The first of the words entailment / neutral / contradiction (or contradictory) in text, compared
 * without ASCII case and starting at a word boundary: 0, 1, 2; -1 when none occurs. */
int nli_label_from_text(const char *text);
/* The --labels yes-no variant: the first word of text, "yes" 0, "maybe" 1, "no" 2 (any case), else -1. */
int nli_yes_no_from_text(const char *text);

/* The option letter (A, B, ... for n_options options) the text answers with: a letter right at the
 * start of the text (after white space and "(" or "["), else the first letter that stands alone
 * (not part of a word; "A" followed by a space and a lowercase word is read as the article, not an
 * option). 0..n_options-1, or -1 when none. */
int choice_from_text(const char *text, int n_options);

/* The index of the highest score (NaN never wins; ties go to the lowest index); with ntok not NULL
 * the score of option i is score[i] / ntok[i] (mean log-likelihood per token; ntok[i] <= 0 skips
 * option i). -1 when no option has a score. */
int choice_best(const double *score, const int *ntok, int n_options);

/* Linear CKA (Kornblith et al. 2019) between two sets of representations of the same n items:
 * X (n, dx) and Y (n, dy), row-major. With the columns centered,
 *     CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F),
 * computed through the centered n x n Gram matrices (<Kc, Lc> / (||Kc|| ||Lc||), K = X X^T), in
 * double. 1 for representations equal up to rotation and isotropic scaling, near 0 for unrelated
 * ones. Returns NAN when n < 2 or a set has no variance. */
double cka_linear(const double *X, int dx, const double *Y, int dy, int n);

#endif
