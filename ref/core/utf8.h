/* utf8.h — UTF-8 decoding, encoding and validation for the readers, the tokenizer and the task layer
 * (in ref/core so that every layer may include it).
 *
 * What this is: the strict decoder of the Unicode standard (no overlong forms, no surrogates,
 * nothing above U+10FFFF), and the "maximal subpart" rule by which invalid bytes become U+FFFD
 * (Rust's String::from_utf8_lossy, hence HF tokenizers' decoders). libc only, no I/O.
 * What this is not: character classes or case mapping (ref/tasks/unicode.h has the few the
 * metrics need, on top of this decoder).
 */
#ifndef AFFIX_UTF8_H
#define AFFIX_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length (1..4) of the well-formed sequence s[0..n) starts with, its code point in *cp; 0 when
 * s[0..n) does not start with one (ill-formed, truncated, or n == 0). */
int utf8_next(const char *s, size_t n, uint32_t *cp);

/* The number of bytes (>= 1, n > 0) one U+FFFD stands for at an invalid s[0..n): the maximal
 * prefix of a well-formed sequence ("substitution of maximal subparts"). */
size_t utf8_invalid_len(const char *s, size_t n);

/* 1 when all of s[0..n) is well-formed. */
int utf8_valid(const char *s, size_t n);

/* Writes cp (<= U+10FFFF) into out (room for 4 bytes); returns the number of bytes, 1..4. */
size_t utf8_put(char *out, uint32_t cp);

#endif
