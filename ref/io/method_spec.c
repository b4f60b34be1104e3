/* method_spec.c — method options from name/value strings (see method_spec.h).
 *
 * What this is: one table of options (name, PEFT alias, the methods that take it, flag or not),
 * strict value parsers, the model-dependent checks, and the dispatch to the method constructors.
 * What this is not: any method's math, or a reader of files (a PEFT adapter_config.json reader
 * calls method_spec_set with its keys).
 */
#include "method_spec.h"

#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

const char *const METHOD_NAMES[METHOD_COUNT] = {"prompt", "prefix", "llama-adapter", "lora", "full"};

/* ---- the option table ----------------------------------------------------------------------- */

typedef enum {
    OPT_P, OPT_PROMPT_INIT, OPT_LAYERS, OPT_PROJECTION, OPT_E, OPT_OFFSET, OPT_WINDOW,
    OPT_ADAPTER_LEN, OPT_ADAPTER_LAYERS, OPT_GATE,
    OPT_R, OPT_ALPHA, OPT_RSLORA, OPT_TARGETS,
    OPT_COUNT
} opt_id;

#define M(k) (1u << (k))

static const struct {
    const char *name;  /* the command-line name, without "--" */
    const char *alias; /* PEFT's config key, or NULL when it is the same */
    unsigned methods;  /* M(METHOD_...) of the methods that take it */
    int flag;          /* 1: boolean, no value needed on the command line */
} OPTS[OPT_COUNT] = {
    [OPT_P] = {"num-virtual-tokens", NULL, M(METHOD_PROMPT) | M(METHOD_PREFIX), 0},
    [OPT_PROMPT_INIT] = {"prompt-init", "prompt_tuning_init", M(METHOD_PROMPT), 0},
    [OPT_LAYERS] = {"layers", NULL, M(METHOD_PREFIX), 0},
    [OPT_PROJECTION] = {"prefix-projection", NULL, M(METHOD_PREFIX), 1},
    [OPT_E] = {"encoder-hidden-size", NULL, M(METHOD_PREFIX), 0},
    [OPT_OFFSET] = {"position-offset", NULL, M(METHOD_PREFIX), 0},
    [OPT_WINDOW] = {"prefix-window", NULL, M(METHOD_PREFIX), 0},
    [OPT_ADAPTER_LEN] = {"adapter-len", NULL, M(METHOD_LLAMA_ADAPTER), 0},
    [OPT_ADAPTER_LAYERS] = {"adapter-layers", NULL, M(METHOD_LLAMA_ADAPTER), 0},
    [OPT_GATE] = {"gate", NULL, M(METHOD_LLAMA_ADAPTER), 0},
    [OPT_R] = {"r", NULL, M(METHOD_LORA), 0},
    [OPT_ALPHA] = {"alpha", "lora_alpha", M(METHOD_LORA), 0},
    [OPT_RSLORA] = {"rslora", "use_rslora", M(METHOD_LORA), 1},
    [OPT_TARGETS] = {"targets", "target_modules", M(METHOD_LORA), 0},
};

/* a == b, with '-' and '_' the same character */
static int name_eq(const char *a, const char *b) {
    for (;; a++, b++) {
        char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;
        if (x != y) return 0;
        if (!x) return 1;
    }
}

/* a == b ignoring ASCII case, with '-' and '_' the same character */
static int word_eq(const char *a, const char *b) {
    for (;; a++, b++) {
        char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
        if (!x) return 1;
    }
}

static const char *mname(const MethodSpec *s) { return METHOD_NAMES[s->method]; }

/* the methods that take option o, as "prompt, prefix" */
static void owners(opt_id o, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int m = 0; m < METHOD_COUNT; m++) {
        if (!(OPTS[o].methods & M(m))) continue;
        int k = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", METHOD_NAMES[m]);
        if (k < 0 || (size_t)k >= n - len) return;
        len += (size_t)k;
    }
}

/* ---- value parsers (0 ok, -1 bad) ------------------------------------------------------------- */

static int parse_int(const char *v, int lo, int hi, int *out) {
    if (!v || !*v || (*v != '-' && *v != '+' && (*v < '0' || *v > '9'))) return -1;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *out = (int)x;
    return 0;
}

static int parse_bool(const char *v, int *out) {
    if (!v) return *out = 1, 0;
    static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (word_eq(v, yes[i])) return *out = 1, 0;
        if (word_eq(v, no[i])) return *out = 0, 0;
    }
    return -1;
}

static void set_bit(unsigned char *bits, int i) { bits[i / 8] |= (unsigned char)(1u << (i % 8)); }
static int get_bit(const unsigned char *bits, int i) { return (bits[i / 8] >> (i % 8)) & 1; }

/* "all" | "top:K" | items "i" or "A-B" separated by ',' */
static int parse_layers(MethodSpec *s, const char *v, afx_err *e) {
    if (word_eq(v, "all")) {
        s->layers = LAYERS_ALL;
        return 0;
    }
    if (!strncmp(v, "top:", 4)) {
        if (parse_int(v + 4, 1, METHOD_SPEC_MAX_LAYERS, &s->top_k))
            return afx_fail(e, "%s: --layers top:K needs a positive K (got '%s')", mname(s), v);
        s->layers = LAYERS_TOP;
        return 0;
    }
    memset(s->layer_bits, 0, sizeof s->layer_bits);
    const char *p = v;
    for (;;) {
        char item[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item)
            return afx_fail(e, "%s: --layers expects all, top:K, A-B or i,j,k (got '%s')", mname(s), v);
        memcpy(item, p, len);
        item[len] = 0;
        int a, b;
        char *dash = strchr(item + 1, '-'); /* item + 1: a leading '-' is a sign, refused below */
        if (dash) *dash = 0;
        if (parse_int(item, 0, INT_MAX, &a) || (dash ? parse_int(dash + 1, 0, INT_MAX, &b) : (b = a, 0)))
            return afx_fail(e, "%s: --layers expects all, top:K, A-B or i,j,k (got '%s')", mname(s), v);
        if (a > b) return afx_fail(e, "%s: --layers range %d-%d is backwards", mname(s), a, b);
        if (b >= METHOD_SPEC_MAX_LAYERS)
            return afx_fail(e, "%s: --layers names layer %d (at most %d)", mname(s), b, METHOD_SPEC_MAX_LAYERS - 1);
        for (int l = a; l <= b; l++) set_bit(s->layer_bits, l);
        p += len;
        if (!*p) break;
        p++;
    }
    s->layers = LAYERS_SET;
    return 0;
}

/* q,k,v,o,gate,up,down (or q_proj, ..., gate_proj) or all-linear */
static int parse_targets(MethodSpec *s, const char *v, afx_err *e) {
    int t[LIN_COUNT] = {0};
    const char *p = v;
    for (;;) {
        char item[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item)
            return afx_fail(e, "%s: --targets expects a list of q,k,v,o,gate,up,down or all-linear (got '%s')",
                            mname(s), v);
        memcpy(item, p, len);
        item[len] = 0;
        size_t il = strlen(item);
        if (il > 5 && !strcmp(item + il - 5, "_proj")) item[il - 5] = 0;
        int found = 0;
        if (word_eq(item, "all-linear")) {
            for (int k = 0; k < LIN_COUNT; k++) t[k] = 1;
            found = 1;
        }
        for (int k = 0; k < LIN_COUNT && !found; k++)
            if (!strcmp(item, LIN_SITE_NAMES[k])) t[k] = found = 1;
        if (!found)
            return afx_fail(e, "%s: --targets: unknown module '%.*s' (use q,k,v,o,gate,up,down or all-linear)",
                            mname(s), (int)len, p);
        p += len;
        if (!*p) break;
        p++;
    }
    memcpy(s->targets, t, sizeof t);
    return 0;
}

/* ---- the public functions ----------------------------------------------------------------------- */

int method_spec_init(MethodSpec *s, const char *method, afx_err *e) {
    memset(s, 0, sizeof *s);
    int m = -1;
    for (int k = 0; k < METHOD_COUNT && method; k++)
        if (name_eq(method, METHOD_NAMES[k])) m = k;
    if (m < 0)
        return afx_fail(e, "unknown method '%s' (use prompt, prefix, llama-adapter, lora or full)",
                        method ? method : "(none)");
    s->method = (method_kind)m;
    s->prompt_init = PROMPT_INIT_RANDOM;
    s->layers = LAYERS_ALL;
    s->adapter_len = 10;
    s->adapter_layers = 30;
    s->gate = GATE_PEFT;
    s->r = 8;
    s->alpha = 8;
    s->targets[LIN_Q] = s->targets[LIN_V] = 1;
    return 0;
}

int method_spec_set(MethodSpec *s, const char *name, const char *value, afx_err *e) {
    const char *n = name;
    if (!strncmp(n, "--", 2)) n += 2;
    int o = -1;
    for (int k = 0; k < OPT_COUNT && o < 0; k++)
        if (name_eq(n, OPTS[k].name) || (OPTS[k].alias && name_eq(n, OPTS[k].alias))) o = k;
    if (o < 0) return afx_fail(e, "%s: unknown option '--%s'", mname(s), n);
    const char *opt = OPTS[o].name;
    if (!(OPTS[o].methods & M(s->method))) {
        char who[64];
        owners((opt_id)o, who, sizeof who);
        return afx_fail(e, "%s: --%s is not an option of %s (it belongs to %s)", mname(s), opt, mname(s), who);
    }
    if (s->given & M(o)) return afx_fail(e, "%s: --%s is given twice", mname(s), opt);
    if (!value && !OPTS[o].flag) return afx_fail(e, "%s: --%s needs a value", mname(s), opt);
    switch ((opt_id)o) {
    case OPT_P:
        if (parse_int(value, 1, INT_MAX, &s->num_virtual_tokens))
            return afx_fail(e, "%s: --%s must be a positive integer (got '%s')", mname(s), opt, value);
        break;
    case OPT_PROMPT_INIT:
        if (word_eq(value, "random")) s->prompt_init = PROMPT_INIT_RANDOM;
        else if (word_eq(value, "vocab") || word_eq(value, "sample-vocab")) s->prompt_init = PROMPT_INIT_VOCAB;
        else if (word_eq(value, "text"))
            return afx_fail(e, "%s: --%s text needs a tokenizer, which affix does not have yet (use random or vocab)",
                            mname(s), opt);
        else return afx_fail(e, "%s: --%s must be random or vocab (got '%s')", mname(s), opt, value);
        break;
    case OPT_LAYERS:
        if (parse_layers(s, value, e)) return -1;
        break;
    case OPT_PROJECTION:
    case OPT_RSLORA:
        if (parse_bool(value, o == OPT_PROJECTION ? &s->projection : &s->rslora))
            return afx_fail(e, "%s: --%s is a flag; its value must be true or false (got '%s')", mname(s), opt, value);
        break;
    case OPT_E:
        if (parse_int(value, 1, INT_MAX, &s->encoder_hidden_size))
            return afx_fail(e, "%s: --%s must be a positive integer (got '%s')", mname(s), opt, value);
        break;
    case OPT_OFFSET:
        if (word_eq(value, "prefix")) s->offset_zero = 0;
        else if (word_eq(value, "zero")) s->offset_zero = 1;
        else return afx_fail(e, "%s: --%s must be prefix or zero (got '%s')", mname(s), opt, value);
        break;
    case OPT_WINDOW:
        if (word_eq(value, "past")) s->always_visible = 0;
        else if (word_eq(value, "always")) s->always_visible = 1;
        else return afx_fail(e, "%s: --%s must be past or always (got '%s')", mname(s), opt, value);
        break;
    case OPT_ADAPTER_LEN:
    case OPT_ADAPTER_LAYERS:
        if (parse_int(value, 1, INT_MAX, o == OPT_ADAPTER_LEN ? &s->adapter_len : &s->adapter_layers))
            return afx_fail(e, "%s: --%s must be a positive integer (got '%s')", mname(s), opt, value);
        break;
    case OPT_GATE:
        if (word_eq(value, "peft")) s->gate = GATE_PEFT;
        else if (word_eq(value, "official")) s->gate = GATE_OFFICIAL;
        else return afx_fail(e, "%s: --%s must be peft or official (got '%s')", mname(s), opt, value);
        break;
    case OPT_R:
        if (parse_int(value, 1, INT_MAX, &s->r))
            return afx_fail(e, "%s: --%s must be a positive integer (got '%s')", mname(s), opt, value);
        break;
    case OPT_ALPHA: {
        char *end;
        errno = 0;
        double a = *value ? strtod(value, &end) : 0;
        if (!*value || errno || *end || !isfinite(a) || a <= 0)
            return afx_fail(e, "%s: --%s must be a positive number (got '%s')", mname(s), opt, value);
        s->alpha = a;
        break;
    }
    case OPT_TARGETS:
        if (parse_targets(s, value, e)) return -1;
        break;
    case OPT_COUNT:
        break;
    }
    s->given |= M(o);
    return 0;
}

int method_spec_parse_args(MethodSpec *s, int argc, char **argv, afx_err *e) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) return afx_fail(e, "%s: unexpected argument '%s'", mname(s), a);
        char name[64];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name) return afx_fail(e, "%s: unknown option '%.40s...'", mname(s), a);
        memcpy(name, a, len);
        name[len] = 0;
        const char *value = eq ? eq + 1 : NULL;
        if (!eq) {
            /* a flag takes no value; every other option takes the next argument */
            int flag = 0;
            for (int k = 0; k < OPT_COUNT; k++)
                if (name_eq(name + 2, OPTS[k].name) || (OPTS[k].alias && name_eq(name + 2, OPTS[k].alias)))
                    flag = OPTS[k].flag;
            if (!flag && i + 1 < argc) value = argv[++i];
        }
        if (method_spec_set(s, name, value, e)) return -1;
    }
    return 0;
}

int method_spec_parse_hybrid(MethodSpec *specs, int max, int *n, const char *method, int argc, char **argv, afx_err *e) {
    char names[4][32];
    int k = 0;
    *n = 0;
    for (const char *p = method; k < 4;) { // "a+b" -> names[0] = "a", names[1] = "b"
        const char *plus = strchr(p, '+');
        size_t len = plus ? (size_t)(plus - p) : strlen(p);
        if (!len || len >= sizeof names[0]) return afx_fail(e, "method '%s': expected METHOD or METHOD+METHOD", method);
        memcpy(names[k], p, len);
        names[k++][len] = 0;
        if (!plus) break;
        p = plus + 1;
        if (k == 4) return afx_fail(e, "method '%s': too many parts", method);
    }
    if (k > max) return afx_fail(e, "method '%s': at most %d methods in a hybrid", method, max);
    for (int i = 0; i < k; i++) {
        if (method_spec_init(&specs[i], names[i], e)) return -1;
        if (k > 1 && specs[i].method == METHOD_FULL)
            return afx_fail(e, "method '%s': full fine-tuning trains every weight; it is not part of a hybrid", method);
        for (int j = 0; j < i; j++)
            if (specs[j].method == specs[i].method) return afx_fail(e, "method '%s': %s is named twice", method, names[i]);
    }
    // each option (and its value) to the part that takes it
    char **part[4];
    int pn[4] = {0};
    for (int i = 0; i < k; i++) {
        part[i] = malloc(sizeof(char *) * (size_t)(argc ? argc : 1));
        if (!part[i]) {
            for (int j = 0; j < i; j++) free(part[j]);
            return afx_fail(e, "out of memory");
        }
    }
    int rc = 0;
    for (int a = 0; a < argc && !rc; a++) {
        const char *arg = argv[a], *eq = strchr(arg, '=');
        char name[64];
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) || len >= sizeof name) { rc = afx_fail(e, "%s: unexpected argument '%.60s'", method, arg); break; }
        memcpy(name, arg + 2, len - 2);
        name[len - 2] = 0;
        int o = -1, owner = -1;
        for (int q = 0; q < OPT_COUNT && o < 0; q++)
            if (name_eq(name, OPTS[q].name) || (OPTS[q].alias && name_eq(name, OPTS[q].alias))) o = q;
        for (int i = 0; i < k && o >= 0 && owner < 0; i++)
            if (OPTS[o].methods & M(specs[i].method)) owner = i;
        if (owner < 0 && k == 1) owner = 0; // one method: its own parser names the problem
        if (owner < 0) { rc = afx_fail(e, "%s: no part of the hybrid takes --%s", method, name); break; }
        part[owner][pn[owner]++] = argv[a];
        if (!eq && o >= 0 && !OPTS[o].flag && a + 1 < argc) part[owner][pn[owner]++] = argv[++a];
    }
    for (int i = 0; i < k && !rc; i++) rc = method_spec_parse_args(&specs[i], pn[i], part[i], e);
    for (int i = 0; i < k; i++) free(part[i]);
    if (!rc) *n = k;
    return rc;
}

int method_spec_check(const MethodSpec *s, const LlamaConfig *c, afx_err *e) {
    switch (s->method) {
    case METHOD_PROMPT:
    case METHOD_PREFIX:
        if (!(s->given & M(OPT_P)))
            return afx_fail(e, "%s: --num-virtual-tokens is required (PEFT has no default)", mname(s));
        if (s->num_virtual_tokens < 1 || s->num_virtual_tokens >= c->max_pos)
            return afx_fail(e, "%s: num_virtual_tokens = %d: must be 1..%d (below the model's max_position_embeddings "
                            "%d: virtual tokens take positions or are attended from every one)", mname(s),
                            s->num_virtual_tokens, c->max_pos - 1, c->max_pos);
        if (s->method == METHOD_PREFIX && s->projection && s->encoder_hidden_size > METHOD_SPEC_MAX_WIDTH)
            return afx_fail(e, "prefix: encoder_hidden_size = %d is above the limit of %d", s->encoder_hidden_size,
                            METHOD_SPEC_MAX_WIDTH);
        if (s->method == METHOD_PREFIX && s->layers == LAYERS_TOP && s->top_k > c->L)
            return afx_fail(e, "prefix: --layers top:%d asks for %d layers but the model has %d", s->top_k,
                            s->top_k, c->L);
        if (s->method == METHOD_PREFIX && s->layers == LAYERS_SET)
            for (int l = c->L; l < METHOD_SPEC_MAX_LAYERS; l++)
                if (get_bit(s->layer_bits, l))
                    return afx_fail(e, "prefix: --layers names layer %d but the model has %d layers (0-%d)", l,
                                    c->L, c->L - 1);
        break;
    case METHOD_LLAMA_ADAPTER:
        if (s->adapter_layers > c->L)
            return afx_fail(e, "llama-adapter: adapter_layers %d%s is more than the model's %d layers (PEFT refuses it "
                            "too); use --adapter-layers %d or fewer",
                            s->adapter_layers, s->given & M(OPT_ADAPTER_LAYERS) ? "" : " (the default)", c->L, c->L);
        break;
    case METHOD_LORA:
        if (s->r < 1 || s->r > METHOD_SPEC_MAX_WIDTH)
            return afx_fail(e, "lora: r = %d: must be 1..%d", s->r, METHOD_SPEC_MAX_WIDTH);
        break;
    case METHOD_FULL:
    case METHOD_COUNT:
        break;
    }
    return 0;
}

int method_spec_fits(const Adapter *ad, const MethodSpec *s, afx_err *e) {
    size_t n = adapter_param_count(ad), bytes;
    if (afx_size_mul(n, (s->method == METHOD_FULL ? 3 : 4) * sizeof(real), &bytes)) bytes = SIZE_MAX;
    char what[256], desc[160];
    method_spec_describe(s, &ad->cfg, desc, sizeof desc);
    snprintf(what, sizeof what, "%.150s: training its %zu parameters", desc, n);
    return afx_mem_check(bytes, what, e);
}

int method_spec_create(Adapter *ad, const MethodSpec *s, const LlamaConfig *c, afx_err *e) {
    memset(ad, 0, sizeof *ad);
    if (method_spec_check(s, c, e)) return -1;
    switch (s->method) {
    case METHOD_PROMPT: {
        PromptOptions o = {.num_virtual_tokens = s->num_virtual_tokens, .init = s->prompt_init};
        return prompt_create(ad, c, &o, e);
    }
    case METHOD_PREFIX: {
        PrefixOptions o = {.num_virtual_tokens = s->num_virtual_tokens,
                           .projection = s->projection,
                           .encoder_hidden_size = s->projection ? s->encoder_hidden_size : 0,
                           .offset_zero = s->offset_zero,
                           .always_visible = s->always_visible};
        int *layers = NULL;
        if (s->layers != LAYERS_ALL) {
            layers = malloc((size_t)c->L * sizeof *layers);
            if (!layers) return afx_fail(e, "prefix: out of memory");
            for (int l = 0; l < c->L; l++)
                if (s->layers == LAYERS_TOP ? l >= c->L - s->top_k : get_bit(s->layer_bits, l))
                    layers[o.n_layers++] = l;
            o.layers = layers;
        }
        int rc = prefix_create(ad, c, &o, e); /* copies the layer list */
        free(layers);
        return rc;
    }
    case METHOD_LLAMA_ADAPTER: {
        LlamaAdapterOptions o = {.adapter_len = s->adapter_len, .adapter_layers = s->adapter_layers, .gate = s->gate};
        return llama_adapter_create(ad, c, &o, e);
    }
    case METHOD_LORA: {
        LoraOptions o = {.r = s->r, .alpha = s->alpha, .rslora = s->rslora};
        memcpy(o.targets, s->targets, sizeof o.targets);
        return lora_create(ad, c, &o, e);
    }
    case METHOD_FULL:
        return full_create(ad, c, e);
    case METHOD_COUNT:
        break;
    }
    return afx_fail(e, "method_spec: bad method %d", (int)s->method);
}

int method_spec_create_from_args(Adapter *ad, const LlamaConfig *c, const char *method, int argc, char **argv,
                                 afx_err *e) {
    MethodSpec s;
    memset(ad, 0, sizeof *ad);
    if (method_spec_init(&s, method, e) || method_spec_parse_args(&s, argc, argv, e)) return -1;
    return method_spec_create(ad, &s, c, e);
}

/* ---- description ---------------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t n, len;
} Out;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(Out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->len < o->n ? o->buf + o->len : NULL, o->len < o->n ? o->n - o->len : 0, fmt, ap);
    va_end(ap);
    if (k > 0) o->len += (size_t)k;
}

/* layers lo..L-1 as "A-B of L" */
static void put_top(Out *o, int k, int L) {
    if (k <= L) put(o, " (layers %d-%d of %d)", L - k, L - 1, L);
    else put(o, " (more than the model's %d)", L);
}

size_t method_spec_describe(const MethodSpec *s, const LlamaConfig *c, char *buf, size_t n) {
    Out o = {buf, n, 0};
    if (n) buf[0] = 0;
    put(&o, "%s", mname(s));
    switch (s->method) {
    case METHOD_PROMPT:
    case METHOD_PREFIX:
        if (s->given & M(OPT_P)) put(&o, " num_virtual_tokens=%d", s->num_virtual_tokens);
        else put(&o, " num_virtual_tokens=(missing)");
        if (s->method == METHOD_PROMPT) {
            put(&o, " prompt_init=%s", s->prompt_init == PROMPT_INIT_VOCAB ? "vocab" : "random");
            break;
        }
        if (s->layers == LAYERS_ALL) {
            put(&o, " layers=all (%d)", c->L);
        } else if (s->layers == LAYERS_TOP) {
            put(&o, " layers=top:%d", s->top_k);
            put_top(&o, s->top_k, c->L);
        } else {
            put(&o, " layers=");
            int count = 0, first = 1;
            for (int l = 0; l < METHOD_SPEC_MAX_LAYERS; l++) {
                if (!get_bit(s->layer_bits, l)) continue;
                int b = l;
                while (b + 1 < METHOD_SPEC_MAX_LAYERS && get_bit(s->layer_bits, b + 1)) b++;
                put(&o, "%s%d", first ? "" : ",", l);
                if (b > l) put(&o, "-%d", b);
                count += b - l + 1;
                first = 0;
                l = b;
            }
            put(&o, " (%d of %d)", count, c->L);
        }
        put(&o, " prefix_projection=%s", s->projection ? "true" : "false");
        if (s->projection)
            put(&o, " encoder_hidden_size=%d%s", s->encoder_hidden_size ? s->encoder_hidden_size : c->NKV * c->HS,
                s->encoder_hidden_size ? "" : " (KV width)");
        else if (s->given & M(OPT_E))
            put(&o, " encoder_hidden_size=%d (unused without prefix_projection)", s->encoder_hidden_size);
        put(&o, " position_offset=%s", s->offset_zero ? "zero" : "prefix");
        if (c->arch == AFX_ARCH_GEMMA3 || s->always_visible)
            put(&o, " prefix_window=%s", s->always_visible ? "always" : "past (PEFT: leaves the sliding window)");
        break;
    case METHOD_LLAMA_ADAPTER:
        put(&o, " adapter_len=%d adapter_layers=%d", s->adapter_len, s->adapter_layers);
        put_top(&o, s->adapter_layers, c->L);
        put(&o, " gate=%s", s->gate == GATE_PEFT ? "peft (one raw scalar per layer)" : "official (tanh, one per head)");
        break;
    case METHOD_LORA: {
        double scaling = s->rslora ? s->alpha / sqrt((double)s->r) : s->alpha / s->r;
        put(&o, " r=%d alpha=%g rslora=%s scaling=%g targets=", s->r, s->alpha, s->rslora ? "true" : "false",
            scaling);
        int first = 1;
        for (int k = 0; k < LIN_COUNT; k++)
            if (s->targets[k]) put(&o, "%s%s", first ? "" : ",", LIN_SITE_NAMES[k]), first = 0;
        break;
    }
    case METHOD_FULL:
        put(&o, " (every base weight)");
        break;
    case METHOD_COUNT:
        break;
    }
    return o.len;
}
