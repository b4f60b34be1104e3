/* report.c — per-language results: table, JSON, SVG (see report.h). Files are written atomically. */
#include "report.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "files.h"
#include "st_write.h"

/* ---- languages of XQuAD, XNLI (+ my, ko), Belebele, MGSM ------------------------------------- */

static const struct { const char *code, *name, *script, *family; } LANGS[] = {
    {"en", "English", "Latin", "Germanic"},       {"de", "German", "Latin", "Germanic"},
    {"es", "Spanish", "Latin", "Romance"},        {"fr", "French", "Latin", "Romance"},
    {"ro", "Romanian", "Latin", "Romance"},       {"vi", "Vietnamese", "Latin", "Austroasiatic"},
    {"tr", "Turkish", "Latin", "Turkic"},         {"sw", "Swahili", "Latin", "Bantu"},
    {"el", "Greek", "Greek", "Hellenic"},         {"ru", "Russian", "Cyrillic", "Slavic"},
    {"bg", "Bulgarian", "Cyrillic", "Slavic"},    {"ar", "Arabic", "Arabic", "Semitic"},
    {"ur", "Urdu", "Arabic", "Indo-Aryan"},       {"hi", "Hindi", "Devanagari", "Indo-Aryan"},
    {"bn", "Bengali", "Bengali", "Indo-Aryan"},   {"te", "Telugu", "Telugu", "Dravidian"},
    {"th", "Thai", "Thai", "Kra-Dai"},            {"my", "Burmese", "Myanmar", "Sino-Tibetan"},
    {"zh", "Chinese", "Han", "Sino-Tibetan"},     {"ja", "Japanese", "Japanese", "Japonic"},
    {"ko", "Korean", "Hangul", "Koreanic"},
};
#define N_LANGS (sizeof LANGS / sizeof LANGS[0])

static int lang_index(const char *lang) {
    for (size_t i = 0; i < N_LANGS; i++)
        if (!strcmp(LANGS[i].code, lang)) return (int)i;
    return -1;
}

const char *lang_script(const char *lang) {
    int i = lang_index(lang);
    return i < 0 ? "other" : LANGS[i].script;
}

const char *lang_family(const char *lang) {
    int i = lang_index(lang);
    return i < 0 ? "other" : LANGS[i].family;
}

/* ---- text table ---------------------------------------------------------------------------- */

void report_print(FILE *f, const Report *r) {
    fprintf(f, "\n%s — %s%s%s\n", r->task, r->model, r->adapter ? " + " : "", r->adapter ? r->adapter : "");
    fprintf(f, "%-6s %-10s %-14s %6s", "lang", "script", "family", "n");
    for (int m = 0; m < r->n_metrics; m++) fprintf(f, " %8s", r->metric[m]);
    fprintf(f, "\n");
    double mean[REPORT_MAX_METRICS] = {0};
    for (int i = 0; i < r->n; i++) {
        const LangScore *s = &r->rows[i];
        fprintf(f, "%-6s %-10s %-14s %6d", s->lang, lang_script(s->lang), lang_family(s->lang), s->n);
        for (int m = 0; m < r->n_metrics; m++) {
            fprintf(f, " %8.2f", s->score[m]);
            mean[m] += s->score[m] / r->n;
        }
        if (s->skipped) fprintf(f, "   (%d skipped)", s->skipped);
        fprintf(f, "\n");
    }
    if (r->n > 1) {
        fprintf(f, "%-6s %-10s %-14s %6s", "mean", "", "", "");
        for (int m = 0; m < r->n_metrics; m++) fprintf(f, " %8.2f", mean[m]);
        fprintf(f, "\n");
    }
    if (r->note) fprintf(f, "note: %s\n", r->note);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

int report_write_json(const char *path, const Report *r, afx_err *e) {
    cJSON *root = cJSON_CreateObject(), *langs = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "task", r->task);
    cJSON_AddStringToObject(root, "model", r->model);
    if (r->adapter) cJSON_AddStringToObject(root, "adapter", r->adapter);
    else cJSON_AddNullToObject(root, "adapter");
    cJSON_AddStringToObject(root, "primary_metric", r->metric[r->primary]);
    if (r->note) cJSON_AddStringToObject(root, "note", r->note);
    for (int i = 0; i < r->n; i++) {
        const LangScore *s = &r->rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "lang", s->lang);
        cJSON_AddStringToObject(o, "script", lang_script(s->lang));
        cJSON_AddStringToObject(o, "family", lang_family(s->lang));
        cJSON_AddNumberToObject(o, "n", s->n);
        cJSON_AddNumberToObject(o, "skipped", s->skipped);
        for (int m = 0; m < r->n_metrics; m++) cJSON_AddNumberToObject(o, r->metric[m], s->score[m]);
        cJSON_AddItemToArray(langs, o);
    }
    cJSON_AddItemToObject(root, "languages", langs);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return afx_fail(e, "%s: out of memory", path);
    size_t len = strlen(text);
    char *withnl = realloc(text, len + 2);
    if (withnl) {
        text = withnl;
        text[len++] = '\n';
        text[len] = 0;
    }
    int rc = afx_text_write(path, text, len, e);
    free(text);
    return rc;
}

/* ---- SVG ------------------------------------------------------------------------------------- */

/* XML-escape a short string into out */
static const char *esc(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s && k + 6 < n; s++) {
        const char *r = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : NULL;
        if (r) { strcpy(out + k, r); k += strlen(r); } else out[k++] = *s;
    }
    out[k] = 0;
    return out;
}

int report_write_svg(const char *path, const Report *r, afx_err *e) {
    // order the bars by script group (in LANGS order), then by language
    int *order = malloc(sizeof(int) * (size_t)(r->n ? r->n : 1));
    if (!order) return afx_fail(e, "%s: out of memory", path);
    int k = 0;
    for (size_t li = 0; li <= N_LANGS; li++) { // known scripts first, then "other"
        const char *script = li < N_LANGS ? LANGS[li].script : "other";
        int first_of_script = 1;
        for (size_t lj = 0; lj < li && li < N_LANGS; lj++)
            if (!strcmp(LANGS[lj].script, script)) first_of_script = 0;
        if (!first_of_script) continue;
        for (int i = 0; i < r->n; i++)
            if (!strcmp(lang_script(r->rows[i].lang), script)) order[k++] = i;
    }
    const int bar = 34, gap = 10, group_gap = 26, left = 60, top = 60, height = 260;
    int width = left + 40;
    for (int j = 0; j < r->n; j++)
        width += bar + gap + (j > 0 && strcmp(lang_script(r->rows[order[j]].lang), lang_script(r->rows[order[j - 1]].lang)) ? group_gap : 0);
    if (width < 480) width = 480;
    if (r->note && width < left + 20 + (int)(strlen(r->note) * 7)) width = left + 20 + (int)(strlen(r->note) * 7);
    int total_h = top + height + 90 + (r->note ? 40 : 0);
    static const char *const colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                         "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
    afx_buf b = {0};
    char t1[256], t2[256];
    afx_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    afx_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                  "font-family=\"sans-serif\" font-size=\"12\">\n", width, total_h, width, total_h);
    afx_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    afx_buf_printf(&b, "<text x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\">%s — %s by language</text>\n", left,
              esc(r->task, t1, sizeof t1), esc(r->metric[r->primary], t2, sizeof t2));
    afx_buf_printf(&b, "<text x=\"%d\" y=\"42\" fill=\"#555\">%s%s%s</text>\n", left, esc(r->model, t1, sizeof t1),
              r->adapter ? " + " : "", r->adapter ? esc(r->adapter, t2, sizeof t2) : "");
    for (int g = 0; g <= 100; g += 20) { // y axis, 0..100 %
        int y = top + height - g * height / 100;
        afx_buf_printf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n", left, y, width - 20, y);
        afx_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">%d</text>\n", left - 6, y + 4, g);
    }
    int x = left + 10, color = -1;
    const char *prev = NULL;
    int group_start = x;
    for (int j = 0; j <= r->n; j++) {
        const char *script = j < r->n ? lang_script(r->rows[order[j]].lang) : NULL;
        if (prev && (!script || strcmp(script, prev))) { // close the previous group with its label
            afx_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#333\">%s</text>\n",
                      (group_start + x - gap) / 2, top + height + 40, esc(prev, t1, sizeof t1));
            if (script) x += group_gap;
        }
        if (!script) break;
        if (!prev || strcmp(script, prev)) { color = (color + 1) % 10; group_start = x; }
        const LangScore *s = &r->rows[order[j]];
        double v = s->score[r->primary];
        if (v < 0) v = 0;
        if (v > 100) v = 100;
        int h = (int)(v * height / 100 + 0.5);
        afx_buf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>%s: %.2f (n=%d)</title></rect>\n",
                  x, top + height - h, bar, h, colors[color], esc(s->lang, t1, sizeof t1), s->score[r->primary], s->n);
        afx_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%.1f</text>\n", x + bar / 2,
                  top + height - h - 4, s->score[r->primary]);
        afx_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x + bar / 2, top + height + 16,
                  esc(s->lang, t1, sizeof t1));
        x += bar + gap;
        prev = script;
    }
    afx_buf_printf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", left, top + height, width - 20,
              top + height);
    if (r->note) {
        char note[1024];
        afx_buf_printf(&b, "<text x=\"%d\" y=\"%d\" fill=\"#a33\">%s</text>\n", left, top + height + 70,
                  esc(r->note, note, sizeof note));
    }
    afx_buf_printf(&b, "</svg>\n");
    free(order);
    if (b.oom) { afx_buf_free(&b); return afx_fail(e, "%s: out of memory", path); }
    int rc = afx_text_write(path, b.p, b.n, e);
    afx_buf_free(&b);
    return rc;
}
