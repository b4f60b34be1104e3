/* unicode.c — UTF-8 and small character tables for the task layer (see unicode.h).
 *
 * What this is: table lookups over the blocks the benchmark languages use, each table written as
 * ranges so it can be read against the Unicode charts. What this is not: a Unicode database; a code
 * point outside the listed blocks falls through to the "no" answer.
 */
#include "unicode.h"

#include "utf8.h"

#include <stdint.h>

typedef struct {
    unsigned lo, hi;
} Range;

static int in_ranges(unsigned cp, const Range *r, size_t n) {
    size_t a = 0, b = n; // binary search over sorted, disjoint ranges
    while (a < b) {
        size_t m = (a + b) / 2;
        if (cp < r[m].lo) b = m;
        else if (cp > r[m].hi) a = m + 1;
        else return 1;
    }
    return 0;
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

/* the decoder of ref/core/utf8.h, with the task layer's walking rule: an ill-formed byte is U+FFFD
 * and advances by one */
int u8_valid(const char *s, size_t n) { return utf8_valid(s, n); }

size_t u8_next(const char *s, size_t n, size_t i, unsigned *cp) {
    uint32_t c;
    int len = utf8_next(s + i, n - i, &c);
    if (!len) {
        *cp = 0xFFFD;
        return i + 1;
    }
    *cp = c;
    return i + (size_t)len;
}

size_t u8_put(unsigned cp, char *out) { return utf8_put(out, cp); }

long u8_byte_offset(const char *s, size_t n, long index) {
    size_t i = 0;
    unsigned cp;
    for (long k = 0; k < index; k++) {
        if (i >= n) return -1;
        i = u8_next(s, n, i, &cp);
    }
    return (long)i;
}

/* ---- character classes ---------------------------------------------------------------------- */

int uc_is_space(unsigned cp) {
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int uc_is_ascii_punct(unsigned cp) {
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
           (cp >= 0x7B && cp <= 0x7E);
}

/* General category P* in the blocks listed in unicode.h. ASCII $ + < = > ^ ` | ~ are symbols (S*),
 * not punctuation; string.punctuation adds them back where the metric wants them. */
static const Range PUNCT[] = {
    {0x0021, 0x0023}, {0x0025, 0x002A}, {0x002C, 0x002F}, {0x003A, 0x003B}, {0x003F, 0x0040},
    {0x005B, 0x005D}, {0x005F, 0x005F}, {0x007B, 0x007B}, {0x007D, 0x007D},                   // ASCII
    {0x00A1, 0x00A1}, {0x00A7, 0x00A7}, {0x00AB, 0x00AB}, {0x00B6, 0x00B7}, {0x00BB, 0x00BB},
    {0x00BF, 0x00BF},                                                                         // Latin-1
    {0x037E, 0x037E}, {0x0387, 0x0387},                                                       // Greek
    {0x055A, 0x055F}, {0x0589, 0x058A},                                                       // Armenian
    {0x05BE, 0x05BE}, {0x05C0, 0x05C0}, {0x05C3, 0x05C3}, {0x05C6, 0x05C6}, {0x05F3, 0x05F4}, // Hebrew
    {0x0609, 0x060A}, {0x060C, 0x060D}, {0x061B, 0x061B}, {0x061D, 0x061F}, {0x066A, 0x066D},
    {0x06D4, 0x06D4},                                                                         // Arabic
    {0x0964, 0x0965}, {0x0970, 0x0970}, {0x09FD, 0x09FD},                                     // Devanagari, Bengali
    {0x0C77, 0x0C77},                                                                         // Telugu
    {0x0E4F, 0x0E4F}, {0x0E5A, 0x0E5B},                                                       // Thai
    {0x104A, 0x104F},                                                                         // Myanmar
    {0x17D4, 0x17D6}, {0x17D8, 0x17DA},                                                       // Khmer
    {0x2010, 0x2027}, {0x2030, 0x2043}, {0x2045, 0x2051}, {0x2053, 0x205E},                   // General Punctuation
    {0x2E00, 0x2E2E}, {0x2E30, 0x2E4F}, {0x2E52, 0x2E5D},                                     // Supplemental Punct.
    {0x3001, 0x3003}, {0x3008, 0x3011}, {0x3014, 0x301F}, {0x3030, 0x3030}, {0x303D, 0x303D}, // CJK Symbols & Punct.
    {0x30A0, 0x30A0}, {0x30FB, 0x30FB},                                                       // Katakana
    {0xFE10, 0xFE19}, {0xFE30, 0xFE52}, {0xFE54, 0xFE61}, {0xFE63, 0xFE63}, {0xFE68, 0xFE68},
    {0xFE6A, 0xFE6B},                                                           // vertical, compatibility, small forms
    {0xFF01, 0xFF03}, {0xFF05, 0xFF0A}, {0xFF0C, 0xFF0F}, {0xFF1A, 0xFF1B}, {0xFF1F, 0xFF20},
    {0xFF3B, 0xFF3D}, {0xFF3F, 0xFF3F}, {0xFF5B, 0xFF5B}, {0xFF5D, 0xFF5D}, {0xFF5F, 0xFF65}, // Fullwidth
};

int uc_is_punct(unsigned cp) { return in_ranges(cp, PUNCT, sizeof PUNCT / sizeof PUNCT[0]); }

/* Lowercase: lo..hi map to cp + delta; step 2 means only every other code point, starting at lo
 * (the alternating upper/lower pairs of Latin Extended-A, Cyrillic, Vietnamese). */
typedef struct {
    unsigned lo, hi;
    int delta, step;
} CaseRun;

static const CaseRun LOWER[] = {
    {0x0041, 0x005A, 32, 1},                                                                 // ASCII
    {0x00C0, 0x00D6, 32, 1},    {0x00D8, 0x00DE, 32, 1},                                     // Latin-1
    {0x0100, 0x012E, 1, 2},     {0x0132, 0x0136, 1, 2},  {0x0139, 0x0147, 1, 2},
    {0x014A, 0x0176, 1, 2},     {0x0178, 0x0178, -121, 1}, {0x0179, 0x017D, 1, 2},           // Latin Ext-A
    {0x01A0, 0x01A4, 1, 2},     {0x01AF, 0x01AF, 1, 1},  {0x01CB, 0x01DB, 1, 2},
    {0x01DE, 0x01EE, 1, 2},     {0x01F2, 0x01F4, 1, 2},  {0x01F6, 0x01F6, -97, 1},
    {0x01F7, 0x01F7, -56, 1},   {0x01F8, 0x021E, 1, 2},                                      // Latin Ext-B (Ơ Ư ǎ Ș Ț)
    {0x0370, 0x0372, 1, 2},     {0x0376, 0x0376, 1, 1},  {0x037F, 0x037F, 116, 1},
    {0x0386, 0x0386, 38, 1},    {0x0388, 0x038A, 37, 1}, {0x038C, 0x038C, 64, 1},
    {0x038E, 0x038F, 63, 1},    {0x0391, 0x03A1, 32, 1}, {0x03A3, 0x03AB, 32, 1},
    {0x03CF, 0x03CF, 8, 1},     {0x03D8, 0x03EE, 1, 2},  {0x03F4, 0x03F4, -60, 1},
    {0x03F7, 0x03F7, 1, 1},     {0x03F9, 0x03F9, -7, 1}, {0x03FA, 0x03FA, 1, 1},
    {0x03FD, 0x03FF, -130, 1},                                                               // Greek and Coptic
    {0x0400, 0x040F, 80, 1},    {0x0410, 0x042F, 32, 1}, {0x0460, 0x0480, 1, 2},
    {0x048A, 0x04BE, 1, 2},     {0x04C0, 0x04C0, 15, 1}, {0x04C1, 0x04CD, 1, 2},
    {0x04D0, 0x052E, 1, 2},                                                                  // Cyrillic
    {0x0531, 0x0556, 48, 1},                                                                 // Armenian
    {0x1E00, 0x1E94, 1, 2},     {0x1E9E, 0x1E9E, -7615, 1}, {0x1EA0, 0x1EFE, 1, 2},          // Latin Ext. Additional
    {0xFF21, 0xFF3A, 32, 1},                                                                 // Fullwidth A-Z
};

unsigned uc_lower(unsigned cp) {
    for (size_t i = 0; i < sizeof LOWER / sizeof LOWER[0]; i++) {
        const CaseRun *r = &LOWER[i];
        if (cp < r->lo || cp > r->hi) continue;
        if (r->step == 2 && ((cp - r->lo) & 1)) return cp;
        return (unsigned)((int)cp + r->delta);
    }
    return cp;
}

static int is_letter(unsigned cp) { return uc_is_word(cp) && uc_digit(cp) < 0 && cp != '_'; }

size_t u8_lower(const char *s, size_t n, char *out) {
    size_t o = 0;
    unsigned prev = ' ';
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t j = u8_next(s, n, i, &cp);
        if (cp == 0xFFFD && j == i + 1 && (unsigned char)s[i] >= 0x80) { // not UTF-8: copy the byte
            out[o++] = s[i];
            prev = cp;
            i = j;
            continue;
        }
        if (cp == 0x0130) { // İ -> i + combining dot above
            out[o++] = 'i';
            o += u8_put(0x0307, out + o);
        } else if (cp == 0x03A3) { // Σ: final ς after a letter when no letter follows
            unsigned next = ' ';
            if (j < n) u8_next(s, n, j, &next);
            o += u8_put(is_letter(prev) && !is_letter(next) ? 0x03C2 : 0x03C3, out + o);
        } else {
            o += u8_put(uc_lower(cp), out + o);
        }
        prev = cp;
        i = j;
    }
    out[o] = '\0';
    return o;
}

static const Range NOSPACE[] = {
    {0x0E00, 0x0E7F},   {0x0E80, 0x0EFF}, {0x1000, 0x109F}, {0x1780, 0x17FF}, // Thai, Lao, Myanmar, Khmer
    {0x3040, 0x309F},   {0x30A0, 0x30FF}, {0x31F0, 0x31FF},                   // Hiragana, Katakana (+ext.)
    {0x3400, 0x4DBF},   {0x4E00, 0x9FFF}, {0xF900, 0xFAFF},                   // CJK ext. A, URO, compat.
    {0xFF66, 0xFF9F},                                                         // halfwidth Katakana
    {0x20000, 0x3134F},                                                       // CJK ext. B..G
};

int uc_is_nospace_script(unsigned cp) { return in_ranges(cp, NOSPACE, sizeof NOSPACE / sizeof NOSPACE[0]); }

int uc_digit(unsigned cp) {
    static const unsigned zero[] = {0x0030, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0C66, 0x0E50, 0x1040, 0xFF10};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (cp >= zero[i] && cp <= zero[i] + 9) return (int)(cp - zero[i]);
    return -1;
}

static const Range SYMBOL[] = {
    {0x00A2, 0x00A9}, {0x00AC, 0x00B1}, {0x00B4, 0x00B4}, {0x00B8, 0x00B8},
    {0x00D7, 0x00D7}, {0x00F7, 0x00F7}, {0x2000, 0x2BFF}, {0x3000, 0x303F},
};

int uc_is_word(unsigned cp) {
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    return !uc_is_space(cp) && !uc_is_punct(cp) && !in_ranges(cp, SYMBOL, sizeof SYMBOL / sizeof SYMBOL[0]);
}
