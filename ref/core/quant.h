/* quant.h — a weight matrix kept in the block format it was loaded in (GGUF's ggml types), and the
 * block decoders every consumer shares (the loader, the kernels, the embedding lookup).
 *
 * What it is: QMat, a read-only (rows, cols) matrix whose row r is cols elements stored as
 * cols / block_elems blocks of block_bytes (ggml's layout: ne[0] = cols is the contiguous axis, the
 * HF (out, in) matrix has rows = out); the decoders of F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
 * Q5_K and Q6_K, each written as the gguf Python package computes it (every product and sum one float
 * operation in its order, contraction off), so that the values are those of gguf_to_real bit for bit
 * in every build. What it is not: a quantizer (affix never writes these formats) or a kernel (the
 * products with a QMat are the kernel table's qmatmul entries).
 */
#ifndef AFFIX_QUANT_H
#define AFFIX_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"

/* the ggml type ids of the formats affix decodes (GGUF's tensor type field) */
enum {
    QT_F32 = 0, QT_F16 = 1, QT_Q4_0 = 2, QT_Q4_1 = 3, QT_Q5_0 = 6, QT_Q5_1 = 7, QT_Q8_0 = 8,
    QT_Q4_K = 12, QT_Q5_K = 13, QT_Q6_K = 14, QT_BF16 = 30
};
#define QUANT_MAX_BLOCK 256 /* the largest block, in elements (the K-quants) */

typedef struct QMat {
    int type;                   /* QT_* */
    int rows, cols;             /* cols is a multiple of quant_block_elems(type) */
    size_t row_bytes;           /* cols / block_elems * block_bytes */
    const unsigned char *data;  /* rows * row_bytes bytes, row r at data + r * row_bytes */
} QMat;

/* 1 for the types quant_decode handles (F32 too) */
int quant_supported(int type);
/* elements and bytes of one block; 0 for a type quant_decode does not handle */
int quant_block_elems(int type);
size_t quant_block_bytes(int type);
/* IEEE half and bfloat16 to float, exactly (NaN stays NaN); inline: the kernels decode one per block */
static inline float quant_bits_f32(uint32_t u) {
    union { uint32_t u; float f; } v;
    v.u = u;
    return v.f;
}
static inline float quant_f16(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (ex == 0) { /* zero and subnormals: man * 2^-24, exact in float */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    if (ex == 31) return quant_bits_f32(sign | 0x7f800000u | man << 13); /* inf, nan */
    return quant_bits_f32(sign | (ex + 112) << 23 | man << 13);
}
static inline float quant_bf16(uint16_t h) { return quant_bits_f32((uint32_t)h << 16); }
/* Q4_K / Q5_K: the 6-bit scale and min of sub-block j (0..7) from the block's 12 scale bytes s */
void quant_k_scale_min(const unsigned char *s, int j, int *sc, int *mn);
/* Decode nblocks consecutive blocks of `type` at src into nblocks * block_elems values. */
void quant_decode(int type, const unsigned char *src, size_t nblocks, real *dst);
/* Elements c0 .. c0+n-1 of row r of m into dst (any c0, n: partial blocks are decoded whole and cut) */
void qmat_row(const QMat *m, int r, int c0, int n, real *dst);
/* the same with another decoder of m's blocks (nb consecutive blocks into nb * block elements; the
 * kernels pass their vectorized ones) */
typedef void (*quant_blocks_fn)(const unsigned char *blocks, size_t nb, real *y);
void qmat_row_with(const QMat *m, int r, int c0, int n, real *dst, quant_blocks_fn dec);

#endif
