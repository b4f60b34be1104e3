/* templates.c — rendering of the templates in templates.h.
 *
 * What this is: a {field} substitution over a TaskExample and the choice of template per task and
 * use. What this is not: the place of the template strings (templates.h holds them, verbatim) or a
 * tokenizer.
 */
#include "templates.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>

typedef afx_buf Buf; /* ref/core/buf.h */

static void put(Buf *b, const char *s, size_t n) { afx_buf_put(b, s, n); }
static void puts_(Buf *b, const char *s) { afx_buf_puts(b, s); }

/* The GSM8K rationale without calculator annotations "<<16-3-4=9>>". */
static void put_rationale(Buf *b, const char *r) {
    while (*r) {
        const char *open = strstr(r, "<<");
        const char *close = open ? strstr(open + 2, ">>") : NULL;
        if (!close) {
            puts_(b, r);
            return;
        }
        put(b, r, (size_t)(open - r));
        r = close + 2;
    }
}

/* 0 when ok, else -1 with the message that x has no field `field`. */
static int need(const TaskExample *x, int ok, const char *field, afx_err *e) {
    if (ok) return 0;
    return afx_fail(e, "template: {%s} does not apply to %s example '%s'", field, task_kind_name(x->kind), x->id);
}

/* Appends field `name` of x; -1 (with e) when x has no such field. */
static int put_field(Buf *b, const char *name, const TaskExample *x, afx_err *e) {
    int choice = x->kind == TASK_BELEBELE && x->options && x->n_options >= 1 && x->n_options <= 26;
    if (!strcmp(name, "context") || !strcmp(name, "premise") || !strcmp(name, "passage")) {
        if (need(x, x->context != NULL, name, e)) return -1;
        puts_(b, x->context);
    } else if (!strcmp(name, "question") || !strcmp(name, "hypothesis")) {
        if (need(x, x->question != NULL, name, e)) return -1;
        puts_(b, x->question);
    } else if (!strcmp(name, "answer")) {
        if (need(x, x->n_answers >= 1, name, e)) return -1;
        puts_(b, x->answers[0].text);
    } else if (!strcmp(name, "label")) {
        if (need(x, x->kind == TASK_NLI && x->label >= 0 && x->label < x->n_options, name, e)) return -1;
        puts_(b, x->options[x->label]);
    } else if (!strcmp(name, "letter")) {
        if (need(x, choice && x->label >= 0 && x->label < x->n_options, name, e)) return -1;
        char c = (char)('A' + x->label);
        put(b, &c, 1);
    } else if (!strcmp(name, "letters")) {
        if (need(x, choice, name, e)) return -1;
        for (int i = 0; i < x->n_options; i++) {
            char c = (char)('A' + i);
            if (i) puts_(b, i == x->n_options - 1 ? " or " : ", ");
            put(b, &c, 1);
        }
    } else if (!strcmp(name, "options")) {
        if (need(x, choice, name, e)) return -1;
        for (int i = 0; i < x->n_options; i++) {
            char head[4] = {(char)('A' + i), '.', ' ', '\0'};
            if (i) puts_(b, "\n");
            puts_(b, head);
            puts_(b, x->options[i]);
        }
    } else if (!strcmp(name, "number")) {
        if (need(x, x->number != NULL, name, e)) return -1;
        puts_(b, x->number);
    } else if (!strcmp(name, "rationale")) {
        if (need(x, x->rationale != NULL, name, e)) return -1;
        put_rationale(b, x->rationale);
    } else {
        return afx_fail(e, "template: unknown field {%s}", name);
    }
    return 0;
}

int tmpl_format(const char *tmpl, const TaskExample *x, char **out, afx_err *e) {
    Buf b = {0};
    puts_(&b, ""); // an empty template gives "", not NULL
    for (const char *t = tmpl; *t;) {
        const char *open = strchr(t, '{');
        if (!open) {
            puts_(&b, t);
            break;
        }
        put(&b, t, (size_t)(open - t));
        const char *close = strchr(open, '}');
        char name[32];
        size_t len = close ? (size_t)(close - open - 1) : 0;
        if (!close || len == 0 || len >= sizeof name) {
            free(b.p);
            return afx_fail(e, "template: unterminated or bad field at \"%.20s\"", open);
        }
        memcpy(name, open + 1, len);
        name[len] = '\0';
        if (put_field(&b, name, x, e)) {
            free(b.p);
            return -1;
        }
        t = close + 1;
    }
    if (b.oom) {
        free(b.p);
        return afx_fail(e, "template: out of memory rendering example '%s'", x->id);
    }
    *out = b.p;
    return 0;
}

int tmpl_render(const TaskExample *x, TmplUse use, TmplText *out, afx_err *e) {
    const char *prompt, *target;
    switch (x->kind) {
    case TASK_SQUAD: prompt = TMPL_SQUAD_PROMPT, target = TMPL_SQUAD_TARGET; break;
    case TASK_NLI: prompt = x->yes_no ? TMPL_NLI_YN_PROMPT : TMPL_NLI_PROMPT, target = TMPL_NLI_TARGET; break;
    case TASK_BELEBELE: prompt = TMPL_CHOICE_PROMPT, target = TMPL_CHOICE_TARGET; break;
    case TASK_GSM8K:
    case TASK_MGSM:
        prompt = TMPL_MATH_PROMPT;
        target = use == TMPL_EVAL ? TMPL_MATH_TARGET_EVAL
                 : x->rationale   ? TMPL_MATH_TARGET_TRAIN
                                  : TMPL_MATH_TARGET_NO_RATIONALE;
        break;
    default: return afx_fail(e, "template: unknown task kind %d", (int)x->kind);
    }
    out->prompt = out->target = NULL;
    if (tmpl_format(prompt, x, &out->prompt, e) || tmpl_format(target, x, &out->target, e)) {
        tmpl_text_free(out);
        return -1;
    }
    return 0;
}

void tmpl_text_free(TmplText *t) {
    free(t->prompt);
    free(t->target);
    t->prompt = t->target = NULL;
}

int tmpl_n_candidates(const TaskExample *x) {
    return (x->kind == TASK_NLI || x->kind == TASK_BELEBELE) && x->options ? x->n_options : 0;
}

int tmpl_candidate(const TaskExample *x, int i, TmplCand how, char **out, afx_err *e) {
    if (i < 0 || i >= tmpl_n_candidates(x))
        return afx_fail(e, "template: candidate %d of %s example '%s' (it has %d)", i, task_kind_name(x->kind), x->id,
                        tmpl_n_candidates(x));
    const char *text = x->options[i];
    char letter[2] = {(char)('A' + i), '\0'};
    if (x->kind == TASK_BELEBELE && how == TMPL_CAND_LABEL) text = letter;
    size_t n = strlen(text);
    char *s = malloc(n + 2);
    if (!s) return afx_fail(e, "template: out of memory");
    s[0] = ' ';
    memcpy(s + 1, text, n + 1);
    *out = s;
    return 0;
}

const char *tmpl_stop(TaskKind kind) {
    return kind == TASK_GSM8K || kind == TASK_MGSM ? TMPL_STOP_MATH : TMPL_STOP_LINE;
}
