/* common.cuh - what every kernel file shares: the stream, launch checks, F16
 * conversion and the transcendental functions.
 *
 * The CPU reference calls glibc's expf/log1pf/log2f. CUDA's single-precision
 * versions differ from glibc in the last bit far more often than glibc differs
 * from the correctly rounded result, so the kernels evaluate these in double
 * and round once: that is the correctly rounded float except in rare
 * near-midpoint cases, where glibc itself is not always correctly rounded
 * either. RoPE cosines and sines never run on the device: the host computes
 * them with glibc (cuda/forward.c uploads a table). */
#ifndef DS4_CUDA_COMMON_CUH
#define DS4_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "engine/cuda/ops.h"

extern cudaStream_t ds4cu_s;

/* Called after every launch: records the first launch error with the op's
 * name (and, with DS4_CUDA_SYNC=1 in the environment, synchronizes so that a
 * faulting kernel is named too). ds4cu_check/ds4cu_sync then report it. */
void ds4cu_after(const char *op);

static __device__ __forceinline__ float d_expf(float x) { return (float)exp((double)x); }
static __device__ __forceinline__ float d_log1pf(float x) { return (float)log1p((double)x); }
static __device__ __forceinline__ float d_log2f(float x) { return (float)log2((double)x); }

static __device__ __forceinline__ float d_f16(uint16_t h) { return __half2float(__ushort_as_half(h)); }
static __device__ __forceinline__ float d_f16r(float f) { return __half2float(__float2half_rn(f)); }

static __device__ __forceinline__ float d_sigmoid_stable(float z) {
    if (z >= 0.0f) return 1.0f / (1.0f + d_expf(-z));
    const float e = d_expf(z);
    return e / (1.0f + e);
}
static __device__ __forceinline__ float d_silu(float z) { return z * d_sigmoid_stable(z); }

/* Activation blocks, byte-exact with quant.h. */
struct cu_act_q8_0 { float d; int8_t qs[32]; };
struct cu_q8_K { float d; int8_t qs[256]; int16_t bsums[16]; };

static inline unsigned cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

#endif
