/* data.h — readers for the task files as they are distributed.
 *
 *   SQuAD v1.1 / XQuAD  JSON {"data":[{"paragraphs":[{"context","qas":[{"id","question","answers":
 *                       [{"text","answer_start"}]}]}]}]}; answer_start counts code points (Python).
 *   XNLI / MNLI         TSV, no quoting. Columns by header name: premise = premise | sentence1 |
 *                       sentence1_XX | text_a; hypothesis = hypothesis | sentence2 | sentence2_XX |
 *                       text_b; label = gold_label | label; optional language, pairID. Covers myXNLI
 *                       (genre label sentence1_en sentence2_en sentence1_my sentence2_my), its sw/ur
 *                       files, ERNIE zh (text_a text_b label), KorNLI (sentence1 sentence2 gold_label),
 *                       XNLI-1.0 (language gold_label ... sentence1 sentence2 pairID ...) and MNLI.
 *                       A file without such a header (XGLUE de) is premise<TAB>hypothesis<TAB>label.
 *                       Labels: entailment, neutral, contradiction (also "contradictory", ERNIE zh)
 *                       -> 0, 1, 2. Numeric labels are refused: their meaning differs between copies.
 *   Belebele            JSONL. The regrouped form, one line per passage: {"text", "items":[{"question",
 *                       "answers":[{"text","correct"} x4]}], "metadata":{"extra":{"language"}}}; and
 *                       the official flat form: {"flores_passage","question","mc_answer1".."4",
 *                       "correct_answer_num" ("1".."4"),"dialect"}. Exactly one answer is correct.
 *   GSM8K               JSONL {"question","answer"}; the answer ends with a line "#### N".
 *   MGSM                TSV question<TAB>number, no header.
 *
 * What this is: validating readers that turn a byte buffer into a TaskSet of TaskExamples; every bad
 * record is a problem "NAME:LINE: what" (bad JSON, wrong column count, unknown label, an answer span
 * that is not the context's text at answer_start, invalid UTF-8, missing fields), skipped and kept in
 * the set's problem list, or, with strict = 1, the error of the call. A read that yields no example is
 * an error. What this is not: a tokenizer or a prompt builder (templates.h), or a metric (metrics.h).
 * The library prints nothing; the caller shows the problems.
 */
#ifndef AFFIX_TASKS_DATA_H
#define AFFIX_TASKS_DATA_H

#include <stddef.h>

#include "err.h"

typedef enum { TASK_SQUAD, TASK_NLI, TASK_BELEBELE, TASK_GSM8K, TASK_MGSM } TaskKind;

enum { NLI_ENTAILMENT = 0, NLI_NEUTRAL = 1, NLI_CONTRADICTION = 2 };

typedef struct {
    const char *text; // the answer as written in the file (UTF-8)
    long start;       // answer_start as in the file: a code-point offset into the context
    long start_byte;  // the same offset in bytes; context + start_byte begins with text
} TaskAnswer;

/* One example. Strings are UTF-8, NUL-terminated, owned by the TaskSet; a field a task does not have
 * is NULL (or 0 / -1). */
typedef struct {
    TaskKind kind;
    const char *id;       // SQuAD: the question id; NLI: pairID, else the data-row number; Belebele:
                          // "LINE.Q" (regrouped) or the line (flat); GSM8K/MGSM: the line number
    const char *lang;     // language code (see TaskReadOpts.lang), "" when unknown
    long line;            // line of the file where the example is (1-based)
    const char *context;  // SQuAD context | NLI premise | Belebele passage | NULL
    const char *question; // SQuAD question | NLI hypothesis | Belebele question | math question
    int n_options;        // NLI: 3 (the label words); Belebele: the answers (4)
    const char **options;
    int label;            // NLI label / Belebele correct option, 0-based; -1 for other tasks
    int n_answers;        // SQuAD gold answers (>= 1); 0 otherwise
    const TaskAnswer *answers;
    const char *number;    // GSM8K/MGSM final answer, normalized (metrics.h: "1,080" -> "1080")
    const char *rationale; // GSM8K: the answer text before the "#### N" line, as in the file
    int yes_no;            // NLI read with nli_yes_no: options are yes/maybe/no, its own prompt
} TaskExample;

typedef struct {
    TaskKind kind;
    TaskExample *ex; // n examples, in file order
    size_t n;
    char **problems; // n_problems messages "NAME:LINE: what", in file order
    size_t n_problems;
    void *arena; // owns every string above
} TaskSet;

typedef enum { TASK_NLI_AUTO = 0, TASK_NLI_HEADER, TASK_NLI_NO_HEADER } TaskNliHeader;

typedef struct {
    /* Language of the examples. NLI files with several sentence pairs (myXNLI: en and my) read the
     * pair sentence1_LANG/sentence2_LANG; XNLI-1.0 keeps only rows of this language. NULL: the
     * language in the file (Belebele metadata/dialect, the NLI column suffix or language column),
     * else the one in the file name (task_lang_from_name), else "" (GSM8K: "en"). */
    const char *lang;
    int strict;               // 1: the first problem fails the read (its message in the error)
    TaskNliHeader nli_header; // NLI only: detect (default), or force a header / no header
    int nli_yes_no;           // NLI only: the answers yes / maybe / no (one token each in most
                              // vocabularies) instead of the label words; template TMPL_NLI_YN_PROMPT
} TaskReadOpts;

/* Reads buf[0..len) (need not be NUL-terminated) into *s. name is the file name used in messages
 * and for guessing the language. o may be NULL (defaults). On failure *s is empty (nothing to free)
 * and e holds the message. One entry point per format (these are the fuzzing targets): */
int task_read_squad(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o, afx_err *e);
int task_read_nli(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o, afx_err *e);
int task_read_belebele(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o,
                       afx_err *e);
int task_read_gsm8k(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o, afx_err *e);
int task_read_mgsm(TaskSet *s, const char *buf, size_t len, const char *name, const TaskReadOpts *o, afx_err *e);

/* Dispatches on kind. */
int task_read(TaskSet *s, TaskKind kind, const char *buf, size_t len, const char *name, const TaskReadOpts *o,
              afx_err *e);
/* Reads the whole file at path, then task_read with name = path. */
int task_read_file(TaskSet *s, TaskKind kind, const char *path, const TaskReadOpts *o, afx_err *e);

void task_set_free(TaskSet *s);

/* "squad" (also "xquad"), "nli" ("xnli", "mnli"), "belebele", "gsm8k", "mgsm" -> kind; -1 if unknown. */
int task_kind_parse(const char *name);
const char *task_kind_name(TaskKind kind);

/* "entailment", "neutral", "contradiction" for 0, 1, 2; NULL otherwise. */
const char *task_nli_label_name(int label);

/* The language in a distributed file name, or 0 when none is recognized: xquad.LL.json, mgsm_LL.tsv,
 * LLL_Ssss.jsonl (Belebele), LL.genre.*.tsv (myXNLI), xnli.SPLIT.LL.tsv (KorNLI). Returns 1 and
 * writes the code (NUL-terminated, at most cap-1 bytes) into out, or 0. */
int task_lang_from_name(const char *path, char *out, size_t cap);

#endif
