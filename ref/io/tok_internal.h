/* tok_internal.h — the inside of a Tokenizer, shared by tok_build.c (the building blocks below),
 * tok_encode.c, tok_decode.c and the loaders (tok_loaders.h: tok_json.c, tok_tiktoken.c, tok_gguf.c).
 *
 * A Tokenizer is the Hugging Face `tokenizers` pipeline, reduced to what Llama-family files use:
 *   added tokens (matched literally in the raw text, leftmost-longest)
 *   -> normalizer steps (Prepend, Replace) on each text segment between them
 *   -> pre-tokenizer steps (Split by regex, ByteLevel, Metaspace) cutting segments into pieces
 *   -> BPE on each piece (symbols = UTF-8 characters; merges = pairs of ids with a priority:
 *      the merge rank, or minus the SentencePiece score; lowest priority first, leftmost on ties)
 *   -> post-processor template (ids before/after the sequence, e.g. BOS) when asked.
 * Decoding runs the decoder steps (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace) on the
 * token strings. Every loader only fills this struct through the tok_* functions below.
 * Not part of the public API (tokenizer.h).
 */
#ifndef AFFIX_TOK_INTERNAL_H
#define AFFIX_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tokenizer.h"

/* ---- hash maps (open addressing, linear probing, power-of-two capacity) ---------------------- */

typedef struct {
    uint32_t *slot; /* id + 1 per slot, 0 = empty; the key is the token string of that id */
    size_t cap;     /* power of two */
    size_t n;
} TokStrMap;

typedef struct {
    uint64_t key;   /* (left id << 32) | right id; UINT64_MAX = empty */
    double prio;    /* lower merges first */
    int32_t id;     /* the merged token */
} TokPair;

typedef struct {
    TokPair *slot;
    size_t cap;
    size_t n;
} TokPairMap;

/* ---- pipeline steps ----------------------------------------------------------------------- */

enum { TOK_NORM_PREPEND, TOK_NORM_REPLACE };
typedef struct {
    int kind;
    char *a, *b; /* PREPEND: a = text; REPLACE: a = pattern, b = content */
    size_t na, nb;
} TokNorm;

enum { TOK_PRE_SPLIT, TOK_PRE_BYTELEVEL, TOK_PRE_METASPACE };
enum { TOK_SPLIT_ISOLATED, TOK_SPLIT_REMOVED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT, TOK_SPLIT_CONTIGUOUS };
enum { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };
typedef struct {
    int kind;
    void *re;             /* pcre2_code_8 *: SPLIT, and BYTELEVEL with use_regex */
    int behavior, invert; /* SPLIT */
    int add_prefix_space; /* BYTELEVEL */
    char rep[8];          /* METASPACE: the replacement character (UTF-8, NUL-terminated) */
    int prepend_scheme, split;
} TokPre;

enum { TOK_DEC_BYTELEVEL, TOK_DEC_REPLACE, TOK_DEC_BYTEFALLBACK, TOK_DEC_FUSE, TOK_DEC_STRIP, TOK_DEC_METASPACE };
typedef struct {
    int kind;
    char *a, *b;        /* REPLACE: pattern, content */
    size_t na, nb;
    char ch[8];         /* STRIP: the character; METASPACE: the replacement */
    int start, stop;    /* STRIP */
    int prepend_scheme; /* METASPACE */
} TokDec;

typedef struct {
    int id;
    size_t off, len; /* content in the string arena */
    int lstrip, rstrip;
} TokAdded;

/* per-id attributes */
enum { TOK_ATTR_SPECIAL = 1, TOK_ATTR_ADDED = 2, TOK_ATTR_PRESENT = 4 };

struct Tokenizer {
    char *name; /* the path or label, for messages */

    /* strings of every id (HF id_to_token: the added token's content, else the model's vocab key) */
    char *arena;
    size_t arena_len, arena_cap;
    size_t *off;   /* n_ids */
    uint32_t *len; /* n_ids */
    unsigned char *attr;
    int n_ids, cap_ids;
    int max_ids; /* ids must be below this (the loader's count of the file's entries; 0: TOK_MAX_IDS) */

    TokStrMap vocab;   /* the model's vocabulary: string -> id (its keys: vkey_off/vkey_len) */
    size_t *vkey_off;
    uint32_t *vkey_len;
    TokPairMap merges;

    int unk, byte_fallback, fuse_unk, ignore_merges;
    int byte_id[256]; /* <0xNN> ids, -1 if absent (filled by tok_finish) */

    TokAdded *added;
    int n_added, cap_added;
    int *added_by_byte;   /* 257 offsets into added_sorted, by the content's first byte */
    int *added_sorted;    /* indices into added, bucketed by first byte, longest first */

    TokNorm *norm;
    int n_norm;
    TokPre *pre;
    int n_pre;
    TokDec *dec;
    int n_dec;

    int *prefix, n_prefix; /* post-processor template: ids before the sequence ... */
    int *suffix, n_suffix; /* ... and after it */
    int bos, eos;
};

/* ---- building (tok_build.c; what the loaders call) ------------------------------------------ */

/* No vocabulary has more ids than this (Llama 3: 128256, Gemma 3: 262144). */
#define TOK_MAX_IDS (1 << 24)

Tokenizer *tok_new(const char *name, afx_err *e);
/* Ids must be below n + TOK_ID_SLACK, n the number of vocabulary and added-token entries the file
 * holds (ids are dense, so a larger one is a lie: a file of a few entries cannot ask for gigabytes
 * of id tables); capped at TOK_MAX_IDS. The slack lets tok_finish name the first missing id of a
 * small gap. */
#define TOK_ID_SLACK 1024
void tok_limit_ids(Tokenizer *t, long long n);
/* The model vocabulary: id gets string s (also its id_to_token string). Duplicate strings or ids
 * are errors. */
int tok_add_vocab(Tokenizer *t, int id, const char *s, size_t n, afx_err *e);
/* An id with a string that BPE never produces (a duplicate string in a GGUF vocabulary). */
int tok_add_unmapped(Tokenizer *t, int id, const char *s, size_t n, afx_err *e);
/* An added token: matched literally in the text; special ones are dropped by decode(skip_special). */
int tok_add_added(Tokenizer *t, int id, const char *s, size_t n, int special, int lstrip, int rstrip, afx_err *e);
int tok_add_merge(Tokenizer *t, int left, int right, int merged, double prio, afx_err *e);
/* Merges implied by the vocabulary (SentencePiece scores, tiktoken ranks): for every token m with
 * eligible[m] (NULL: all) and every split of it into two vocabulary tokens l + r (at UTF-8 character
 * boundaries), the merge (l, r) -> m with priority prio[m]. */
int tok_merges_from_vocab(Tokenizer *t, const double *prio, const unsigned char *eligible, afx_err *e);
int tok_vocab_find(const Tokenizer *t, const char *s, size_t n); /* -1 if absent */

int tok_push_norm(Tokenizer *t, int kind, const char *a, size_t na, const char *b, size_t nb, afx_err *e);
/* SPLIT (regex: pattern is a regex; else a literal string), BYTELEVEL (pattern: NULL or the regex
 * when use_regex), METASPACE (rep = the replacement character). The pattern's \s and \S mean the
 * Unicode White_Space property, as in Oniguruma (HF tokenizers) and Rust's regex (tiktoken). */
int tok_push_split(Tokenizer *t, const char *pattern, size_t n, int is_regex, int behavior, int invert, afx_err *e);
int tok_push_bytelevel(Tokenizer *t, int add_prefix_space, int use_regex, afx_err *e);
int tok_push_metaspace(Tokenizer *t, const char *rep, int prepend_scheme, int split, afx_err *e);
int tok_push_dec(Tokenizer *t, const TokDec *d, afx_err *e); /* copies a, b */
int tok_set_template(Tokenizer *t, const int *prefix, int n_prefix, const int *suffix, int n_suffix, afx_err *e);
/* Checks ids are dense where used, fills byte_id and the added-token index. */
int tok_finish(Tokenizer *t, afx_err *e);

/* the GPT-2 pre-tokenizer regex (ByteLevel use_regex) and Llama 3's */
extern const char TOK_GPT2_REGEX[];
extern const char TOK_LLAMA3_REGEX[];

/* ---- helpers (UTF-8 itself: utf8.h) ----------------------------------------------------------- */

/* Byte-level BPE's bytes <-> printable code points (GPT-2's bytes_to_unicode). */
uint32_t tok_byte_to_cp(unsigned char b);
int tok_cp_to_byte(uint32_t cp); /* -1 if cp is not one of the 256 */
/* The merge of the pair (l, r), or NULL (encode's lookup into t->merges). */
const TokPair *tok_pair_find(const TokPairMap *m, int l, int r);

#endif
