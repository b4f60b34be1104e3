/* pyjson.h — a JSON object written as Python's json.dumps(obj, indent=2, sort_keys=True) writes it:
 * the form of the adapter_config.json / config.json files PEFT and transformers save (peft_save.c).
 *
 * What this is: an object of up to PJ_MAX_FIELDS fields, each value rendered as text when it is
 * added (null/true/false/{} as given, integers, Python's repr of a float, strings, lists of
 * rendered items, nested objects from pj_render), then sorted by key and laid out with Python's
 * indentation. A failure to allocate sets oom and makes pj_render return NULL.
 * What this is not: a general JSON writer (no arrays of objects, no keys that need escaping) or a
 * reader (cJSON reads).
 */
#ifndef AFFIX_PYJSON_H
#define AFFIX_PYJSON_H

#define PJ_MAX_FIELDS 64

typedef struct {
    char key[64];
    char *val; /* rendered for a field at depth 1 (nested lines indented by 4, closing by 2) */
} PjField;

typedef struct {
    PjField f[PJ_MAX_FIELDS];
    int n, oom;
} PjObj; /* zero-initialize: PjObj o = {.n = 0} */

void pj_raw(PjObj *o, const char *key, const char *val);     /* val as is: "null", "true", "{}", ... */
void pj_str(PjObj *o, const char *key, const char *s);       /* a string literal; NULL: null */
void pj_int(PjObj *o, const char *key, long long v);
void pj_float(PjObj *o, const char *key, double v);          /* Python's repr: 0.0, 1e-05, 0.02 */
void pj_number(PjObj *o, const char *key, double v);         /* an integer when integral (lora_alpha 16) */
void pj_list(PjObj *o, const char *key, const char *const *items, int n); /* items already rendered */

/* The object, keys sorted; indent = the depth's indentation (0 top level, 2 for a nested value).
 * malloc'd (caller frees), NULL when out of memory. */
char *pj_render(PjObj *o, int indent);
void pj_free(PjObj *o);

#endif
