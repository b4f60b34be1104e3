/* unicode.h — the little Unicode the task layer needs: UTF-8 decoding and validation, and a few
 * character classes from small tables (punctuation, white space, lowercase, scripts written without
 * spaces, decimal digits of a few scripts).
 *
 * What this is: enough to reproduce the SQuAD v1.1 / MLQA answer normalization on the languages of
 * XQuAD, XNLI, Belebele and MGSM, and to read numbers out of generated text.
 * What this is not: a Unicode database. Each table covers the blocks named beside it and says so;
 * outside them a code point is "not punctuation", "not a space", "has no lowercase", "not a digit".
 * The tables were checked code point by code point against Python 3.11's unicodedata (Unicode 14)
 * over the blocks they cover.
 */
#ifndef AFFIX_TASKS_UNICODE_H
#define AFFIX_TASKS_UNICODE_H

#include <stddef.h>

/* 1 when s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). */
int u8_valid(const char *s, size_t n);

/* Decodes the code point at s[i] (i < n) into *cp and returns the index after it. A byte that does
 * not start a well-formed sequence decodes as U+FFFD and advances by one byte, so any byte string
 * can be walked. */
size_t u8_next(const char *s, size_t n, size_t i, unsigned *cp);

/* Writes cp as UTF-8 into out (room for 4 bytes); returns the number of bytes. */
size_t u8_put(unsigned cp, char *out);

/* The byte offset of code point number `index` (0-based) of s[0..n), or -1 when s has fewer code
 * points. (SQuAD's answer_start counts code points: Python string indices.) */
long u8_byte_offset(const char *s, size_t n, long index);

/* Python's str.isspace() (ASCII controls \t..\r, \x1c..\x1f, space, U+0085, U+00A0, U+1680,
 * U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000): exactly what str.split() splits on. */
int uc_is_space(unsigned cp);

/* Python's string.punctuation: the 32 ASCII characters !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ */
int uc_is_ascii_punct(unsigned cp);

/* Unicode general category P* (punctuation) over: ASCII, Latin-1, Greek, Armenian, Hebrew, Arabic,
 * Devanagari, Bengali, Telugu, Thai, Myanmar, Khmer, General Punctuation, Supplemental Punctuation,
 * CJK Symbols and Punctuation, Katakana, CJK compatibility/small forms, Fullwidth forms. */
int uc_is_punct(unsigned cp);

/* Simple lowercase mapping (Python's str.lower() per code point) over: ASCII, Latin-1, Latin
 * Extended-A; in Latin Extended-B the Vietnamese Ơ Ư, the pinyin run U+01CB..U+01EE (Ǎ Ǐ Ǒ Ǔ ...) and
 * U+01F2..U+021F (Romanian Ș Ț); Greek and Coptic (not polytonic Greek); Cyrillic; Armenian; Latin
 * Extended Additional (Vietnamese, ẞ); fullwidth A-Z. Elsewhere (the rest of Latin Extended-B,
 * Greek Extended, Georgian, ...) a code point is returned unchanged. U+0130 (İ) and the Greek final
 * sigma depend on length or context and are handled by u8_lower. */
unsigned uc_lower(unsigned cp);

/* Lowercases s[0..n) into out (room for 2*n+1 bytes; NUL-terminated), like Python's str.lower() on
 * the blocks uc_lower covers, with İ -> "i̇" (i + U+0307) and Σ -> ς at the end of a word. Bytes that
 * are not UTF-8 are copied unchanged. Returns the length written. */
size_t u8_lower(const char *s, size_t n, char *out);

/* Scripts written without spaces between words, whose every code point is one token in the
 * character-level SQuAD metric: CJK ideographs (URO, ext. A, ext. B+, compatibility), Hiragana,
 * Katakana (incl. halfwidth), Thai, Lao, Khmer, Myanmar. */
int uc_is_nospace_script(unsigned cp);

/* 0..9 for a decimal digit of ASCII, Arabic-Indic, Extended Arabic-Indic, Devanagari, Bengali, Telugu,
 * Thai, Myanmar or Fullwidth; -1 otherwise. */
int uc_digit(unsigned cp);

/* A letter or digit for the purpose of \b in the SQuAD article regex: ASCII alphanumerics and '_', and
 * every other non-ASCII code point that is not a space, not punctuation and not in the symbol blocks
 * (Latin-1 symbols, U+2000..U+2BFF, U+3000..U+303F). An approximation of Python's \w; see metrics.c. */
int uc_is_word(unsigned cp);

#endif
