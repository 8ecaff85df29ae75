/* gemm_mma.cuh - the int8 tensor-core step the prefill GEMMs share.
 *
 * mma.sync m16n8k32 s8×s8→s32: a warp multiplies a 16×32 int8 tile A (weight
 * rows × k) by a 32×8 int8 tile B (k × tokens). Integer sums are exact in any
 * order, so the tensor core may form each 32-element block sum; the float
 * steps (scale products, sum over blocks in block order) stay with the one
 * thread that owns an output, as the CPU's ds4_vec_dot_*_ref take them.
 *
 * Fragments (PTX ISA, lane = 4·gid + tid):
 *   a[0] = A[gid][4tid..+3]   a[1] = A[gid+8][4tid..+3]
 *   a[2] = A[gid][16+4tid..]  a[3] = A[gid+8][16+4tid..]
 *   b[0] = B[4tid..+3][gid]   b[1] = B[16+4tid..+3][gid]
 *   c[0] = C[gid][2tid]  c[1] = C[gid][2tid+1]  c[2] = C[gid+8][2tid]  c[3] = C[gid+8][2tid+1] */
#ifndef DS4_CUDA_GEMM_MMA_CUH
#define DS4_CUDA_GEMM_MMA_CUH

#include <stdint.h>

/* c += A·B (c in, c out). */
static __device__ __forceinline__ void mma_s8(int c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Two unaligned-to-4 u16 halves as one little-endian word. */
static __device__ __forceinline__ uint32_t ld_u16x2(const uint16_t *p) {
    return (uint32_t)__ldg(p) | ((uint32_t)__ldg(p + 1) << 16);
}

#endif
