/* tokenizer.h — text <-> token ids exactly as the Hugging Face tokenizers do it.
 *
 * Kinds: byte-level BPE (GPT-2 / Llama 3: a pre-tokenizer regex with Unicode categories, bytes
 * mapped to printable characters, merges by rank) and SentencePiece-style BPE (Llama 2 / Mistral:
 * merges by score, "▁" for spaces, byte-fallback tokens <0xNN>). Sources: an HF tokenizer.json,
 * a tiktoken rank file (Llama 3 tokenizer.model, with Llama 3's special tokens and regex), or the
 * tokenizer stored in a GGUF file (tokenizer.ggml.model = llama with scores, or gpt2 with merges).
 * Special tokens written in the text (e.g. <|begin_of_text|>) become their ids.
 * Invalid UTF-8 input is an error, never a crash.
 */
#ifndef AFFIX_TOKENIZER_H
#define AFFIX_TOKENIZER_H

#include <stddef.h>

#include "err.h"

typedef struct Tokenizer Tokenizer;

/* path: an HF model directory (tokenizer.json, else tokenizer.model), a tokenizer.json, a tiktoken
 * tokenizer.model, or a .gguf file. */
int tokenizer_load(Tokenizer **t, const char *path, afx_err *e);
void tokenizer_free(Tokenizer *t);

/* Encodes text[0..len) into *ids (malloc'd, caller frees) / *n. add_bos: prepend BOS as the
 * tokenizer's config says (1), never (0). */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_bos, int **ids, int *n,
                     afx_err *e);
/* Decodes ids into *text (malloc'd, NUL-terminated, caller frees). Special tokens are skipped when
 * skip_special is 1. */
int tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special, char **text, size_t *len,
                     afx_err *e);

int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_bos(const Tokenizer *t); /* -1 if none */
int tokenizer_eos(const Tokenizer *t); /* -1 if none */
/* Whether encode(add_bos = 1) prepends BOS (the tokenizer config's add_bos_token / post-processor). */
int tokenizer_adds_bos(const Tokenizer *t);

#endif
