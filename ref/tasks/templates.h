/* templates.h — THE prompt templates: the one place where task examples become text, for training
 * and for evaluation.
 *
 * The paper does not publish its templates (../shared/docs/methods.md §0: prompt / chat template
 * UNKNOWN). These are plain instruction-style completions, the same for every method and every
 * model; no chat template, no BOS/EOS (the training side tokenizes, adds BOS, and appends EOS to the
 * target). Zero-shot cross-lingual transfer: the instructions, field names and label words stay in
 * English for every language; only the example's own text (context, question, passage, options) is
 * in the evaluation language.
 *
 * prompt = everything the model conditions on; target = the text the loss is computed on (training),
 * or the expected answer (evaluation). prompt + target is the training text; every target starts
 * with one space, since every prompt ends with "Answer:". {field} is replaced by the example's text:
 *   {context} {premise} {passage}  the context / premise / passage      {question} {hypothesis}
 *   {answer}   the first gold answer (SQuAD)                           {label}    the label word
 *   {letter}   the correct option's letter      {letters} "A, B, C or D" (as many as there are options)
 *   {options}  one line "A. <text>" per option  {number}  the final number (normalized: no commas)
 *   {rationale} the GSM8K solution before "#### N", with the calculator annotations <<...>> removed
 *
 * Rendered, a Belebele example reads
 *   Read the passage and answer the question. Answer with A, B, C or D.
 *
 *   Passage: Make sure your hand is as relaxed as possible ...
 *   Question: When playing the accordion, which of the following will help to increase the volume?
 *   A. More speed
 *   B. More force
 *   C. Less pressure
 *   D. Less finger motion
 *   Answer:
 * with target " A".
 */
#ifndef AFFIX_TASKS_TEMPLATES_H
#define AFFIX_TASKS_TEMPLATES_H

#include "data.h"
#include "err.h"

/* ---- the templates, verbatim ---------------------------------------------------------------- */

/* SQuAD (train) / XQuAD (eval): extractive QA, generation of the answer span. */
#define TMPL_SQUAD_PROMPT                                                                          \
    "Answer the question with a short span copied from the context.\n\nContext: {context}\n"      \
    "Question: {question}\nAnswer:"
#define TMPL_SQUAD_TARGET " {answer}"

/* MNLI / XNLI-en (train) / XNLI (eval): the English label word, whatever the language. */
#define TMPL_NLI_PROMPT                                                                            \
    "Does the premise entail the hypothesis? Answer with entailment, neutral or contradiction.\n\n" \
    "Premise: {premise}\nHypothesis: {hypothesis}\nAnswer:"
#define TMPL_NLI_TARGET " {label}"
/* the same with one-token answers (affix train/eval --labels yes-no): yes = entailment, maybe =
 * neutral, no = contradiction; {label} is then the answer word */
#define TMPL_NLI_YN_PROMPT                                                                         \
    "Does the premise entail the hypothesis? Answer with yes, maybe or no.\n\n"                 \
    "Premise: {premise}\nHypothesis: {hypothesis}\nAnswer:"

/* Belebele (train and eval): multiple choice, the option's letter. */
#define TMPL_CHOICE_PROMPT                                                                         \
    "Read the passage and answer the question. Answer with {letters}.\n\nPassage: {passage}\n"    \
    "Question: {question}\n{options}\nAnswer:"
#define TMPL_CHOICE_TARGET " {letter}"

/* GSM8K (train) / MGSM (eval): chain of thought ending in "The answer is N."; the evaluation target
 * is the number, which metrics.h's mgsm_correct finds as the last number of the generation. */
#define TMPL_MATH_PROMPT                                                                           \
    "Solve the problem step by step and end with \"The answer is N.\"\n\nQuestion: {question}\n"  \
    "Answer:"
#define TMPL_MATH_TARGET_TRAIN " {rationale}\nThe answer is {number}."
#define TMPL_MATH_TARGET_NO_RATIONALE " The answer is {number}." // training on MGSM rows (no rationale)
#define TMPL_MATH_TARGET_EVAL " {number}"

/* Generation stops at EOS or at this string (not part of the answer): one line for the short
 * answers, the start of a next problem for math. */
#define TMPL_STOP_LINE "\n"
#define TMPL_STOP_MATH "\nQuestion:"

/* ---- rendering ------------------------------------------------------------------------------ */

typedef enum { TMPL_TRAIN = 0, TMPL_EVAL = 1 } TmplUse;

typedef struct {
    char *prompt; // malloc'd, NUL-terminated
    char *target;
} TmplText;

/* Renders x with the templates of its kind. The targets differ between uses only for math: TRAIN
 * gives the rationale (GSM8K) or " The answer is N." (MGSM), EVAL gives " N". */
int tmpl_render(const TaskExample *x, TmplUse use, TmplText *out, afx_err *e);
void tmpl_text_free(TmplText *t);

/* Renders an arbitrary template string against x (the function tmpl_render uses). *out malloc'd.
 * An unknown {field}, or one the example does not have, is an error naming it. */
int tmpl_format(const char *tmpl, const TaskExample *x, char **out, afx_err *e);

/* Candidates for scoring by log-likelihood after the prompt (metrics.h: choice_best): NLI 3,
 * Belebele one per option, other kinds 0. Candidate i is " " + the label word (NLI), " " + the
 * letter (Belebele, TMPL_CAND_LABEL) or " " + the option's text (Belebele, TMPL_CAND_TEXT). */
typedef enum { TMPL_CAND_LABEL = 0, TMPL_CAND_TEXT = 1 } TmplCand;
int tmpl_n_candidates(const TaskExample *x);
int tmpl_candidate(const TaskExample *x, int i, TmplCand how, char **out, afx_err *e);

/* TMPL_STOP_MATH for GSM8K/MGSM, TMPL_STOP_LINE for the others. */
const char *tmpl_stop(TaskKind kind);

#endif
