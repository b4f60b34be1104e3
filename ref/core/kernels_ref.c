/* kernels_ref.c — the reference kernel table: the scalar ops of ops.c. */
#include "kernels.h"
#include "ops.h"

const Kernels KERNELS_REF = {
    .name = "ref",
    .matmul_forward = matmul_forward,
    .matmul_backward = matmul_backward,
    .rmsnorm_forward = rmsnorm_forward,
    .rmsnorm_backward = rmsnorm_backward,
    .rope_forward = rope_forward,
    .rope_backward = rope_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .swiglu_forward = swiglu_forward,
    .swiglu_backward = swiglu_backward,
    .geglu_forward = geglu_forward,
    .geglu_backward = geglu_backward,
    .crossentropy_forward = crossentropy_forward,
    .crossentropy_backward = crossentropy_backward,
    .qmatmul_forward = qmatmul_forward,
    .qmatmul_backward = qmatmul_backward,
};
