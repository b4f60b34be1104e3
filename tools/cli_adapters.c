/* cli_adapters.c — what --adapter DIR names, loaded and bound to a model, for every command that
 * runs a model (generate, eval, probe): a PEFT directory, affix's full fine-tuning directory (an HF
 * model directory), or a hybrid written by `affix train --method lora+prefix` (DIR/affix_hybrid.json
 * listing its parts, one PEFT directory each, applied together in that order).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "files.h"

int cli_adapter_state(const char *dir, long long *step, int *complete, afx_err *e) {
    char path[4200], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/affix_state.json", dir);
    if (!afx_is_file(path)) return 0;
    if (afx_read_file(path, 1 << 12, &buf, &len, e)) return -1;
    cJSON *j = cJSON_ParseWithLength(buf, len);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step"), *c = cJSON_GetObjectItemCaseSensitive(j, "complete");
    int ok = cJSON_IsNumber(s) && cJSON_IsBool(c) && s->valuedouble >= 0 && s->valuedouble <= 1e15;
    if (ok) *step = (long long)s->valuedouble, *complete = cJSON_IsTrue(c);
    cJSON_Delete(j);
    free(buf);
    return ok ? 1 : afx_fail(e, "%s: not {\"step\": N, \"complete\": true|false}", path);
}

int cli_weights(const char *weights, const char *adapter_dir, int trains_base, ModelOpts *mo) {
    memset(mo, 0, sizeof *mo);
    if (weights && strcmp(weights, "f32") && strcmp(weights, "file")) {
        fprintf(stderr, "affix: error: --weights '%s' must be f32 or file\n", weights);
        return 2;
    }
    if (weights) {
        mo->keep_blocks = !strcmp(weights, "file");
        return 0;
    }
    int whole_model = 0;
    if (adapter_dir) {
        char a[4200], h[4200];
        snprintf(a, sizeof a, "%s/adapter_config.json", adapter_dir);
        snprintf(h, sizeof h, "%s/affix_hybrid.json", adapter_dir);
        whole_model = !afx_is_file(a) && !afx_is_file(h);
    }
    mo->keep_blocks = !trains_base && !whole_model;
    return 0;
}

int cli_adapters_open(CliAdapters *ca, const char *dir, Model *m, afx_err *e) {
    memset(ca, 0, sizeof *ca);
    char parts[2][32] = {"", ""}, path[4200];
    int n = 1;
    { // written by affix train around each save: an adapter caught mid-save is refused
        long long step = 0;
        int complete = 1, st = cli_adapter_state(dir, &step, &complete, e);
        if (st < 0) return -1;
        if (st && !complete)
            return afx_fail(e, "%s: its training run stopped while writing it (step %lld); resume the run (--resume) to "
                               "write it again from the checkpoint", dir, step);
    }
    snprintf(path, sizeof path, "%s/affix_hybrid.json", dir);
    if (afx_is_file(path)) { // a hybrid: its parts, in order
        char *buf = NULL;
        size_t len = 0;
        if (afx_read_file(path, 1 << 16, &buf, &len, e)) return -1;
        cJSON *j = cJSON_ParseWithLength(buf, len), *list = j ? cJSON_GetObjectItem(j, "parts") : NULL, *it;
        n = 0;
        int bad = !cJSON_IsArray(list);
        cJSON_ArrayForEach(it, list) {
            const char *s = cJSON_GetStringValue(it);
            if (!s || n == 2 || strlen(s) >= sizeof parts[0] || strspn(s, "abcdefghijklmnopqrstuvwxyz-") != strlen(s) || !s[0]) {
                bad = 1;
                break;
            }
            snprintf(parts[n++], sizeof parts[0], "%s", s);
        }
        cJSON_Delete(j);
        free(buf);
        if (bad || n < 1) return afx_fail(e, "%s: \"parts\" must list 1 or 2 method directories (e.g. [\"lora\", \"prefix\"])", path);
    }
    Adapter *ptr[2];
    for (int i = 0; i < n; i++) {
        if (parts[i][0]) snprintf(path, sizeof path, "%s/%s", dir, parts[i]);
        else snprintf(path, sizeof path, "%s", dir);
        if (peft_load(path, &m->cfg, &ca->pa[i], e)) { cli_adapters_close(ca); return -1; }
        ca->n = i + 1;
        ptr[i] = &ca->pa[i].ad;
        if (ca->pa[i].note[0])
            snprintf(ca->note + strlen(ca->note), sizeof ca->note - strlen(ca->note), "%s%s", ca->note[0] ? "; " : "", ca->pa[i].note);
    }
    if (adapter_set_init(&ca->set, ptr, n, &m->w, e)) {
        char why[400];
        snprintf(why, sizeof why, "%.399s", e->msg);
        cli_adapters_close(ca);
        return afx_fail(e, "%s: %s", dir, why);
    }
    ca->have_set = 1;
    for (int i = 0; i < n; i++)
        if (peft_adapter_apply(&ca->pa[i], e)) {
            char why[400];
            snprintf(why, sizeof why, "%.399s", e->msg);
            cli_adapters_close(ca);
            return afx_fail(e, "%s: %s", dir, why);
        }
    ca->use = ca->set.trains_base ? NULL : &ca->set; // full fine-tuning: the values are the base weights
    return 0;
}

void cli_adapters_close(CliAdapters *ca) {
    if (ca->have_set) adapter_set_free(&ca->set);
    for (int i = 0; i < ca->n; i++) peft_adapter_free(&ca->pa[i]);
    memset(ca, 0, sizeof *ca);
}
