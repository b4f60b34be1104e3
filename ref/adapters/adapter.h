/* adapter.h — the one interface every adaptation method implements.
 *
 * A method is one file (prompt.c, prefix.c, llama_adapter.c, lora.c, full.c). It declares
 *   - a parameter table: named trainable tensors with their shapes (PEFT-style names, see
 *     golden/README.md) and how to initialize them;
 *   - an activation table: what it keeps from the forward for its backward (also named, so the
 *     golden tests compare it);
 *   - hooks at the places of the Llama block where it acts, each forward hook with its backward:
 *       embeddings      prompt tuning: P virtual tokens before the input
 *       attention K/V   prefix tuning: P learned keys/values before the real ones
 *       attention out   Llama-Adapter: a gated attention over P adapter tokens, added before o_proj
 *       linear layers   LoRA: y += s (x A^T) B^T
 *   - full fine-tuning declares the base weights trainable instead.
 * Methods compose because each only adds hooks: the model calls every adapter's hook at each place.
 * Backward hooks accumulate (+=) into gradients, like every backward of ops.h.
 */
#ifndef AFFIX_ADAPTER_H
#define AFFIX_ADAPTER_H

#include <stddef.h>

#include "arena.h"
#include "err.h"
#include "hooks.h" /* the core's extension points, which an AdapterSet implements; lin_site */
#include "llama.h"
#include "real.h"
#include "rng.h" /* AfxRng: deterministic initialization */

/* a named tensor of an adapter: a trainable parameter or a kept activation */
typedef struct {
    char name[128];   /* e.g. "prompt_embeddings", "layers.2.adaption_gate" */
    int ndim;
    size_t shape[4];
    size_t numel;
    real *w;          /* the values (view into an arena) */
    real *g;          /* the gradient (parameters only; NULL for activations) */
} AdapterTensor;

typedef struct Adapter Adapter;


typedef struct {
    const char *method;  /* "prompt", "prefix", "llama_adapter", "lora", "full" */
    int trains_base;     /* 1: the base weights are trainable (full fine-tuning) */
    /* trains_base only: point the parameter table at the base weights and their gradients */
    void (*bind_base)(Adapter *ad, LlamaParams *base, LlamaParams *grads);

    /* initialization of the parameters (PEFT's defaults unless the options say otherwise) */
    int (*init)(Adapter *ad, const LlamaParams *base, AfxRng *rng, afx_err *e);
    /* activations kept for the backward of one (B,T) batch, T = real tokens, Tx = model tokens */
    /* declares them once (arena.h): writes at most ADAPTER_MAX_VIEWS views, returns how many; the
     * set sizes its arena and binds the views from that one table, then calls acts_bound (which
     * may point the named activation tensors at the bound views) */
    int (*acts_views)(Adapter *ad, int B, int T, int Tx, ArenaView *v);
    void (*acts_bound)(Adapter *ad, int B, int T, int Tx);

    /* ---- hooks (any may be NULL) ---- */
    int (*virtual_tokens)(const Adapter *ad);                /* prompt: P tokens before the input */
    int (*prefix_len)(const Adapter *ad, int layer);         /* prefix: P keys before the real ones */
    int (*position_offset)(const Adapter *ad);               /* prefix: first real position */
    int (*prefix_exempt)(const Adapter *ad);                 /* prefix: 1 = a sliding window never cuts it */
    void (*begin_forward)(Adapter *ad, const LlamaParams *w);/* once per forward (e.g. prefix MLP) */
    /* x (B,Tx,C): write rows 0..P-1 of each batch row */
    void (*embed_forward)(Adapter *ad, real *x, int B, int Tx);
    void (*embed_backward)(Adapter *ad, const real *dx, int B, int Tx);
    /* kcat, vcat (B,S,NKV*HS): write rows 0..P-1 of each batch row */
    void (*kv_forward)(Adapter *ad, int layer, real *kcat, real *vcat, int B, int S);
    void (*kv_backward)(Adapter *ad, int layer, const real *dkcat, const real *dvcat, int B, int S);
    /* att_out (B,Tx,NH*HS) += adapter term; q_rope (B,Tx,NH*HS) */
    void (*attn_forward)(Adapter *ad, const LlamaParams *w, int layer, real *att_out,
                         const real *q_rope, int B, int Tx);
    void (*attn_backward)(Adapter *ad, const LlamaParams *w, int layer, real *dq_rope,
                          const real *datt_out, const real *q_rope, int B, int Tx);
    /* y (N,OC) += adapter term of x (N,IC) at one linear layer */
    void (*linear_forward)(Adapter *ad, int layer, lin_site site, real *y, const real *x, int N);
    /* 1: linear_backward at this site (some layer) reads x; NULL with a linear_backward: assumed 1 */
    int (*linear_reads)(const Adapter *ad, lin_site site);
    void (*linear_backward)(Adapter *ad, int layer, lin_site site, real *dx, const real *dy,
                            const real *x, int N);
    void (*end_backward)(Adapter *ad, const LlamaParams *w); /* once per backward (e.g. prefix MLP) */

    void (*destroy)(Adapter *ad);
} AdapterOps;

struct Adapter {
    const AdapterOps *ops;
    LlamaConfig cfg;
    AdapterTensor *params; /* parameter table */
    int n_params;
    AdapterTensor *acts;   /* activation table (views valid after the set bound the activations) */
    int n_acts;
    void *priv;            /* the method's options and working views */
};

/* ---- method constructors (each in its own file) ---------------------------------------------- */

typedef enum { PROMPT_INIT_RANDOM, PROMPT_INIT_VOCAB, PROMPT_INIT_TEXT } prompt_init;
typedef struct {
    int num_virtual_tokens;    /* P */
    prompt_init init;          /* RANDOM: N(0,1) (PEFT default); VOCAB: rows of random ids; TEXT */
    const int *init_ids;       /* TEXT: token ids of the init text (repeated / cut to P) */
    int n_init_ids;
} PromptOptions;
int prompt_create(Adapter *ad, const LlamaConfig *c, const PromptOptions *o, afx_err *e);

typedef struct {
    int num_virtual_tokens;    /* P */
    const int *layers;         /* ascending layer indices; NULL = all layers */
    int n_layers;
    int projection;            /* Linear(KV,E)-tanh-Linear(E, n*2*KV) reparameterization */
    int encoder_hidden_size;   /* E (0 = KV, PEFT's default) */
    int offset_zero;           /* 1: real tokens at 0..T-1 instead of P..P+T-1 */
    int always_visible;        /* Gemma 3 sliding layers: 0 = the prefix is ordinary past and leaves
                                  the window (PEFT); 1 = every query sees it (the paper's intent) */
} PrefixOptions;
int prefix_create(Adapter *ad, const LlamaConfig *c, const PrefixOptions *o, afx_err *e);

typedef enum { GATE_PEFT, GATE_OFFICIAL } gate_kind;
typedef struct {
    int adapter_len;           /* P */
    int adapter_layers;        /* La: the top La layers */
    gate_kind gate;            /* PEFT: one raw scalar per layer; OFFICIAL: tanh, one per head */
} LlamaAdapterOptions;
int llama_adapter_create(Adapter *ad, const LlamaConfig *c, const LlamaAdapterOptions *o, afx_err *e);

typedef struct {
    int r;
    double alpha;
    int rslora;                /* scaling alpha/sqrt(r) instead of alpha/r */
    int targets[LIN_COUNT];    /* 1 = adapt this linear (PEFT default for Llama: q, v) */
} LoraOptions;
int lora_create(Adapter *ad, const LlamaConfig *c, const LoraOptions *o, afx_err *e);
/* W <- W + s B A (sign +1) or W - s B A (sign -1) for every adapted linear of base */
void lora_merge(const Adapter *ad, LlamaParams *base, int sign);

int full_create(Adapter *ad, const LlamaConfig *c, afx_err *e);

void adapter_destroy(Adapter *ad);

/* Trainable parameter count of one method on a config, without allocating anything. */
size_t adapter_param_count(const Adapter *ad);

/* ---- a set of composed adapters and their arenas ----------------------------------------------- */

#define AFX_MAX_ADAPTERS 8
#define ADAPTER_MAX_VIEWS 16

typedef struct AdapterSet {
    ModelHooks hooks; /* the core's hook interface (hooks.h), implemented by this set: pass &s->hooks
                         (or adapter_hooks(s)) to llama_forward / llama_backward / llama_decode */
    Adapter *ad[AFX_MAX_ADAPTERS];
    int n;
    /* trainable arena of the adapters (contiguous) + gradients + AdamW moments, same layout */
    real *w, *g, *m, *v;
    size_t count;
    /* full fine-tuning: the base weights are trained; their gradients and moments */
    LlamaParams *base;
    LlamaParams base_g, base_m, base_v;
    int trains_base;
    /* adapter activations for one (B,T) */
    void *acts;
    size_t acts_bytes;
    int B, T;
} AdapterSet;

/* Takes the adapters (created by *_create), allocates their parameter arenas (zero) and binds the
 * tables. base is the model they adapt. Methods that cannot be combined are refused. */
int adapter_set_init(AdapterSet *s, Adapter **ads, int n, LlamaParams *base, afx_err *e);
/* Initializes every adapter's parameters as its method does by default. */
int adapter_set_init_params(AdapterSet *s, unsigned long long seed, afx_err *e);
/* (Re)binds the adapters' activations for a (B,T) batch. */
int adapter_set_bind_acts(AdapterSet *s, int B, int T, afx_err *e);
void adapter_set_free(AdapterSet *s);
/* zero every trainable gradient (adapters and, for full fine-tuning, the base) */
void adapter_set_zero_grad(AdapterSet *s);
/* total model tokens for T real tokens (prompt tuning adds P); the first real position; the number
 * of prefix keys of a layer */
int adapter_set_tokens(const AdapterSet *s, int T);
int adapter_set_position_offset(const AdapterSet *s);
int adapter_set_prefix_len(const AdapterSet *s, int layer);
/* 1 if the prefix of this layer is exempt from a sliding window (PrefixOptions.always_visible) */
int adapter_set_prefix_exempt(const AdapterSet *s, int layer);
size_t adapter_set_param_count(const AdapterSet *s);
/* a parameter or activation by name ("prompt_embeddings", "layers.1.adapter_z", ...) */
const AdapterTensor *adapter_set_find_param(const AdapterSet *s, const char *name);

/* the hooks of a set, or NULL for no set (the plain model) */
static inline ModelHooks *adapter_hooks(AdapterSet *s) { return s ? &s->hooks : NULL; }

/* Every adapter's begin_forward hook (e.g. the prefix MLP), outside a model forward. */
void adapters_begin_forward(AdapterSet *s, const LlamaParams *w);

#endif
