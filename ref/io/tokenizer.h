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
#include "gguf.h"

typedef struct Tokenizer Tokenizer;

/* path: an HF model directory (tokenizer.json, else tokenizer.model; a tokenizer_config.json there
 * gives bos/eos), a tokenizer.json, a tiktoken tokenizer.model, or a .gguf file. Parts of a file
 * that are not implemented (other model types, normalizers, pre-tokenizers, decoders, single_word
 * added tokens; SentencePiece protobuf .model files) are refused with their name. Ignored: what does
 * not change the ids of one sequence (offsets, the pair template); added tokens are matched in the
 * raw text even when marked "normalized", and lstrip/rstrip take ASCII whitespace only. */
int tokenizer_load(Tokenizer **t, const char *path, afx_err *e);
void tokenizer_free(Tokenizer *t);

/* The tokenizer of an open GGUF file (tokenizer.ggml.*); label names it in messages. The strings
 * are copied: f may be closed afterwards. */
int tokenizer_from_gguf(Tokenizer **t, const gguf_file *f, const char *label, afx_err *e);

/* The buffer entry points of the file loaders (fuzzing; embedding without files): an HF
 * tokenizer.json in json[0..len) with, optionally, its tokenizer_config.json in cfg[0..cfg_len)
 * (cfg NULL: none); a tiktoken rank file in buf[0..len). label names the source in messages. */
int tokenizer_from_json(Tokenizer **t, const char *json, size_t len, const char *cfg, size_t cfg_len, const char *label,
                        afx_err *e);
int tokenizer_from_tiktoken(Tokenizer **t, const char *buf, size_t len, const char *label, afx_err *e);

/* Encodes text[0..len) into *ids (malloc'd, caller frees) / *n. add_bos: prepend BOS as the
 * tokenizer's config says (1), never (0). With 1 the whole post-processor template is applied (HF's
 * add_special_tokens=True: BOS for Llama, plus EOS where a config asks for it). Text that is not
 * valid UTF-8 is an error naming the byte offset. */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_bos, int **ids, int *n,
                     afx_err *e);
/* Decodes ids into *text (malloc'd, NUL-terminated, caller frees). Special tokens are skipped when
 * skip_special is 1. HF's decoder chain: bytes that do not form UTF-8 become U+FFFD (ByteLevel: one
 * per maximal invalid run; ByteFallback: one per byte token), the SentencePiece dummy-prefix space
 * is stripped; no transformers clean_up_tokenization_spaces. Ids out of range are an error. */
int tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special, char **text, size_t *len,
                     afx_err *e);

int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_bos(const Tokenizer *t); /* -1 if none */
int tokenizer_eos(const Tokenizer *t); /* -1 if none */
/* Whether encode(add_bos = 1) prepends BOS (the tokenizer config's add_bos_token / post-processor). */
int tokenizer_adds_bos(const Tokenizer *t);

/* The id of a token given by its string (an added/special token such as "<|eot_id|>", else the
 * model vocabulary's key, e.g. "▁the" or "Ġthe"); -1 if there is none. */
int tokenizer_token_id(const Tokenizer *t, const char *s);
/* 1 if id is a special token (what decode's skip_special drops). */
int tokenizer_is_special(const Tokenizer *t, int id);
/* The raw bytes one token stands for, for streaming output: byte-level tokens mapped back to bytes,
 * "▁" -> ' ', <0xNN> -> the byte; no dummy-prefix strip and no UTF-8 repair (a multi-byte
 * character may span tokens). Writes min(*len, cap) bytes to out (out may be NULL when cap is 0)
 * and the full length to *len. Returns -1 for an id out of range. */
int tokenizer_token_bytes(const Tokenizer *t, int id, char *out, size_t cap, size_t *len);

#endif
