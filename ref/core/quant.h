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
/* IEEE half and bfloat16 to float, exactly (NaN stays NaN) */
float quant_f16(uint16_t h);
float quant_bf16(uint16_t h);
/* Decode nblocks consecutive blocks of `type` at src into nblocks * block_elems values. */
void quant_decode(int type, const unsigned char *src, size_t nblocks, real *dst);
/* Elements c0 .. c0+n-1 of row r of m into dst (any c0, n: partial blocks are decoded whole and cut) */
void qmat_row(const QMat *m, int r, int c0, int n, real *dst);

#endif
