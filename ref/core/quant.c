/* quant.c — the ggml block decoders (see quant.h).
 *
 * Each decoder is written as the gguf Python package (gguf/quants.py) computes it: every product and
 * sum is one float32 operation, in its order, one operation per statement (and contraction off, so
 * that no compiler fuses a*b + c into an fma; in these formats the product before a sum is exact in
 * float anyway), and only the float result is widened to real: the double build holds the same
 * values as the float build, and the roundings of the final sums (Q4_1, Q5_1, Q4_K, Q5_K) are
 * float32's. Fields are little-endian; "f16" is IEEE half (exact in float).
 */
#include "quant.h"

#include <string.h>

#pragma STDC FP_CONTRACT OFF

static uint16_t ld16(const unsigned char *p) { return (uint16_t)((unsigned)p[0] | (unsigned)p[1] << 8); }
static uint32_t ld32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static float f32_of_bits(uint32_t u) { return quant_bits_f32(u); }

static float f16_at(const unsigned char *p) { return quant_f16(ld16(p)); }
static int s8(unsigned char b) { return b < 128 ? (int)b : (int)b - 256; }

/* Q4_0 — 32 elements, 18 bytes: [0:2] f16 d; [2:18] 16 bytes qs, byte i holding element i in its
 * low nibble and element i+16 in its high nibble. Element = d * (q - 8). */
static void deq_q4_0(const unsigned char *b, real *y) {
    float d = f16_at(b);
    for (int i = 0; i < 16; i++) {
        y[i] = (real)(d * (float)((b[2 + i] & 15) - 8));
        y[i + 16] = (real)(d * (float)((b[2 + i] >> 4) - 8));
    }
}

/* Q4_1 — 32 elements, 20 bytes: [0:2] f16 d; [2:4] f16 m; [4:20] qs as in Q4_0.
 * Element = d * q + m (q in 0..15). */
static void deq_q4_1(const unsigned char *b, real *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    for (int i = 0; i < 32; i++) {
        int q = i < 16 ? b[4 + i] & 15 : b[4 + i - 16] >> 4;
        float dq = d * (float)q;
        y[i] = (real)(dq + m);
    }
}

/* the 5-bit code of element i (0..31) of a Q5_0 / Q5_1 block: the nibble of qs as in Q4_0, and bit
 * i of the 32-bit word qh as bit 4 */
static int q5_code(uint32_t qh, const unsigned char *qs, int i) {
    int lo = i < 16 ? qs[i] & 15 : qs[i - 16] >> 4;
    return lo | (int)((qh >> i) & 1) << 4;
}

/* Q5_0 — 32 elements, 22 bytes: [0:2] f16 d; [2:6] u32 qh (bit i = bit 4 of element i); [6:22] qs
 * as in Q4_0 (the low 4 bits). Element = d * (u - 16), u in 0..31. */
static void deq_q5_0(const unsigned char *b, real *y) {
    float d = f16_at(b);
    uint32_t qh = ld32(b + 2);
    for (int i = 0; i < 32; i++) y[i] = (real)(d * (float)(q5_code(qh, b + 6, i) - 16));
}

/* Q5_1 — 32 elements, 24 bytes: [0:2] f16 d; [2:4] f16 m; [4:8] u32 qh; [8:24] qs (as Q5_0).
 * Element = d * u + m, u in 0..31. */
static void deq_q5_1(const unsigned char *b, real *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh = ld32(b + 4);
    for (int i = 0; i < 32; i++) {
        float du = d * (float)q5_code(qh, b + 8, i);
        y[i] = (real)(du + m);
    }
}

/* Q8_0 — 32 elements, 34 bytes: [0:2] f16 d; [2:34] 32 int8 q. Element = d * q (exact in float). */
static void deq_q8_0(const unsigned char *b, real *y) {
    float d = f16_at(b);
    for (int i = 0; i < 32; i++) y[i] = (real)(d * (float)s8(b[2 + i]));
}

/* The 12 scale bytes s of Q4_K and Q5_K: eight 6-bit scales sc and eight 6-bit mins mn, one pair per
 * 32-element sub-block j. j < 4: sc = s[j] & 63, mn = s[j+4] & 63. j >= 4: the low 4 bits are in
 * s[j+4] (sc low nibble, mn high nibble), the high 2 bits are the top bits of s[j-4] (sc) and s[j]
 * (mn). */
void quant_k_scale_min(const unsigned char *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q4_K — 256 elements (8 sub-blocks of 32), 144 bytes: [0:2] f16 d; [2:4] f16 dmin; [4:16] the
 * scales (quant_k_scale_min); [16:144] 128 bytes qs in 4 groups of 32: group g holds sub-block 2g in the
 * low nibbles and sub-block 2g+1 in the high nibbles. Element 32j + i = (d*sc_j) * q - (dmin*mn_j). */
static void deq_q4_k(const unsigned char *b, real *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    const unsigned char *qs = b + 16;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        quant_k_scale_min(b + 4, j, &sc, &mn);
        float ds = d * (float)sc, dm = dmin * (float)mn;
        const unsigned char *g = qs + 32 * (j / 2);
        int sh = 4 * (j % 2);
        for (int i = 0; i < 32; i++) {
            float dq = ds * (float)((g[i] >> sh) & 15);
            y[32 * j + i] = (real)(dq - dm);
        }
    }
}

/* Q5_K — 256 elements (8 sub-blocks of 32), 176 bytes: [0:2] f16 d; [2:4] f16 dmin; [4:16] the
 * scales (quant_k_scale_min); [16:48] 32 bytes qh, bit j of qh[i] = bit 4 of element 32j + i; [48:176]
 * 128 bytes qs, the low 4 bits as in Q4_K. Element 32j + i = (d*sc_j) * u - (dmin*mn_j), u in 0..31. */
static void deq_q5_k(const unsigned char *b, real *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    const unsigned char *qh = b + 16, *qs = b + 48;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        quant_k_scale_min(b + 4, j, &sc, &mn);
        float ds = d * (float)sc, dm = dmin * (float)mn;
        for (int i = 0; i < 32; i++) {
            int u = ((qs[32 * (j / 2) + i] >> 4 * (j % 2)) & 15) | ((qh[i] >> j) & 1) << 4;
            float du = ds * (float)u;
            y[32 * j + i] = (real)(du - dm);
        }
    }
}

/* Q6_K — 256 elements (16 sub-blocks of 16), 210 bytes: [0:128] ql (low 4 bits); [128:192] qh (high
 * 2 bits); [192:208] 16 int8 scales; [208:210] f16 d, at the END. Two halves h of 128 elements; for
 * element e = 128h + r: low = (ql[64h + r%64] >> 4*(r/64)) & 15, high = (qh[32h + r%32] >> 2*(r/32))
 * & 3, code = (low | high << 4) - 32. Element = (d * scale[e/16]) * code. */
static void deq_q6_k(const unsigned char *b, real *y) {
    const unsigned char *ql = b, *qh = b + 128, *scales = b + 192;
    float d = f16_at(b + 208);
    for (int s = 0; s < 16; s++) { /* sub-block s: elements 16s .. 16s+15 share one scale */
        float ds = d * (float)s8(scales[s]);
        for (int e = 16 * s; e < 16 * s + 16; e++) {
            int h = e / 128, r = e % 128;
            int lo = (ql[64 * h + r % 64] >> 4 * (r / 64)) & 15;
            int hi = (qh[32 * h + r % 32] >> 2 * (r / 32)) & 3;
            y[e] = (real)(ds * (float)((lo | hi << 4) - 32));
        }
    }
}

typedef void (*block_decoder)(const unsigned char *block, real *y);

static block_decoder decoder_of(int type) {
    switch (type) {
    case QT_Q4_0: return deq_q4_0;
    case QT_Q4_1: return deq_q4_1;
    case QT_Q5_0: return deq_q5_0;
    case QT_Q5_1: return deq_q5_1;
    case QT_Q8_0: return deq_q8_0;
    case QT_Q4_K: return deq_q4_k;
    case QT_Q5_K: return deq_q5_k;
    case QT_Q6_K: return deq_q6_k;
    default: return NULL;
    }
}

int quant_supported(int type) {
    return type == QT_F32 || type == QT_F16 || type == QT_BF16 || decoder_of(type) != NULL;
}

int quant_block_elems(int type) {
    switch (type) {
    case QT_F32: case QT_F16: case QT_BF16: return 1;
    case QT_Q4_K: case QT_Q5_K: case QT_Q6_K: return 256;
    default: return decoder_of(type) ? 32 : 0;
    }
}

size_t quant_block_bytes(int type) {
    switch (type) {
    case QT_F32: return 4;
    case QT_F16: case QT_BF16: return 2;
    case QT_Q4_0: return 18;
    case QT_Q4_1: return 20;
    case QT_Q5_0: return 22;
    case QT_Q5_1: return 24;
    case QT_Q8_0: return 34;
    case QT_Q4_K: return 144;
    case QT_Q5_K: return 176;
    case QT_Q6_K: return 210;
    default: return 0;
    }
}

void quant_decode(int type, const unsigned char *src, size_t nblocks, real *dst) {
    switch (type) {
    case QT_F32:
        for (size_t i = 0; i < nblocks; i++) dst[i] = (real)f32_of_bits(ld32(src + 4 * i));
        return;
    case QT_F16:
        for (size_t i = 0; i < nblocks; i++) dst[i] = (real)quant_f16(ld16(src + 2 * i));
        return;
    case QT_BF16:
        for (size_t i = 0; i < nblocks; i++) dst[i] = (real)quant_bf16(ld16(src + 2 * i));
        return;
    default: {
        block_decoder dec = decoder_of(type);
        size_t be = (size_t)quant_block_elems(type), bb = quant_block_bytes(type);
        if (dec)
            for (size_t i = 0; i < nblocks; i++) dec(src + bb * i, dst + be * i);
    }
    }
}

/* nb blocks of m's type: with dec, or quant_decode */
static void decode_with(const QMat *m, quant_blocks_fn dec, const unsigned char *src, size_t nb, real *dst) {
    if (dec) dec(src, nb, dst);
    else quant_decode(m->type, src, nb, dst);
}

void qmat_row_with(const QMat *m, int r, int c0, int n, real *dst, quant_blocks_fn dec) {
    int be = quant_block_elems(m->type);
    size_t bb = quant_block_bytes(m->type);
    const unsigned char *row = m->data + (size_t)r * m->row_bytes;
    if (n <= 0 || be <= 0) return;
    int end = c0 + n, b = c0 / be;
    real tmp[QUANT_MAX_BLOCK];
    if (c0 % be) { /* a partial first block: decode it whole, keep the part asked for */
        int lo = b * be, to = lo + be < end ? lo + be : end;
        decode_with(m, dec, row + bb * (size_t)b, 1, tmp);
        memcpy(dst, tmp + (c0 - lo), (size_t)(to - c0) * sizeof(real));
        if (to == end) return;
        b++;
    }
    int full = (end - b * be) / be; /* whole blocks, decoded in place */
    decode_with(m, dec, row + bb * (size_t)b, (size_t)full, dst + (b * be - c0));
    b += full;
    if (b * be < end) { /* a partial last block */
        decode_with(m, dec, row + bb * (size_t)b, 1, tmp);
        memcpy(dst + (b * be - c0), tmp, (size_t)(end - b * be) * sizeof(real));
    }
}

void qmat_row(const QMat *m, int r, int c0, int n, real *dst) { qmat_row_with(m, r, c0, n, dst, NULL); }
