/* real.h — the one number type of the reference, and the dimension alphabet.
 *
 * ref/ is compiled twice: as float (the normal build) and, with -DAFFIX_F64, as double (the f64
 * build that serves as a high-precision oracle for finite-difference checks and is compared with
 * the PyTorch golden files at ~1e-10). Nothing else changes between the two builds.
 *
 * Dimension alphabet, used in every shape comment of ref/:
 *   B  batch              T  tokens per row       C  hidden size (hidden_size)
 *   L  layers             V  vocabulary           FF MLP width (intermediate_size)
 *   NH query heads        NKV key/value heads     HS head size (head_dim, may differ from C/NH)
 *   S  keys per query row (T, or P+T with a prefix)
 *   N  rows of a flattened (B,T) batch, N = B*T
 *   R  LoRA rank          P  prompt/prefix length
 * Tensors are row-major; "(B,T,C)" means index [b][t][c]. Linear weights keep PyTorch's (out,in).
 */
#ifndef AFFIX_REAL_H
#define AFFIX_REAL_H

#ifdef AFFIX_F64
typedef double real;
#define AFFIX_REAL_NAME "f64"
#else
typedef float real;
#define AFFIX_REAL_NAME "f32"
#endif

#endif
