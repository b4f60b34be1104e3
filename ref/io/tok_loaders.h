/* tok_loaders.h — the tokenizer loaders, one per file format, for the dispatch of tokenizer_load
 * (tokenizer.c). Each builds a Tokenizer through tok_internal.h's building blocks; none of them,
 * and nothing they call, comes back here. Not part of the public API (tokenizer.h).
 *   tok_json.c      HF tokenizer.json (+ tokenizer_config.json beside it)
 *   tok_tiktoken.c  tiktoken rank files (Llama 3 tokenizer.model)
 *   tok_gguf.c      the tokenizer of a GGUF file (also tokenizer_from_gguf of tokenizer.h)
 */
#ifndef AFFIX_TOK_LOADERS_H
#define AFFIX_TOK_LOADERS_H

#include "err.h"
#include "tokenizer.h"

int tok_load_json(Tokenizer **t, const char *path, afx_err *e);
/* tokenizer.json in buf[0..len) (labelled path), with tokenizer_config.json in cbuf[0..clen)
 * (labelled cfg; cbuf NULL: none) */
int tok_from_json(Tokenizer **t, const char *buf, size_t len, const char *path, const char *cbuf, size_t clen,
                  const char *cfg, afx_err *e);
int tok_load_tiktoken(Tokenizer **t, const char *path, afx_err *e);
int tok_load_gguf_path(Tokenizer **t, const char *path, afx_err *e);

#endif
