/* common.cuh - what every kernel file shares: the stream, launch checks, F16
 * conversion and the transcendental functions.
 *
 * The CPU reference calls glibc 2.36's expf and log1pf, and the goldens depend
 * on their last bits. CUDA's own expf/log1pf round differently, so the
 * kernels use re-implementations of the algorithms glibc uses on x86-64:
 * expf is the table-driven double-precision evaluation (2^(i/32) table,
 * degree-3 polynomial with fused multiply-adds, one rounding to float), the
 * version glibc selects on CPUs with FMA; log1pf is the classic fdlibm float
 * algorithm. test_cuda_ops checks both against the host's libm bit for bit
 * over millions of arguments. log2f only feeds ceilf() of FP8/FP4 scales and
 * is evaluated in double. RoPE cosines and sines never run on the device: the
 * host computes them with glibc (cuda/forward.c uploads a table). */
#ifndef DS4_CUDA_COMMON_CUH
#define DS4_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "engine/cuda/ops.h"

extern cudaStream_t ds4cu_s;
/* Device-position mode (CUDA-graph decode): when set, the position-dependent
 * kernels read their first position from this device int64 instead of their
 * pos0 argument, so a captured graph stays valid from one token to the next. */
extern const int64_t *ds4cu_dpos;

/* Called after every launch: records the first launch error with the op's
 * name (and, with DS4_CUDA_SYNC=1 in the environment, synchronizes so that a
 * faulting kernel is named too). ds4cu_check/ds4cu_sync then report it. */
void ds4cu_after(const char *op);

/* 2^(i/32) as double bits, minus i << 47 (so adding k << 47 scales by 2^k). */
static __device__ const uint64_t d_exp2_tab[32] = {
    0x3ff0000000000000ull, 0x3fefd9b0d3158574ull, 0x3fefb5586cf9890full, 0x3fef9301d0125b51ull,
    0x3fef72b83c7d517bull, 0x3fef54873168b9aaull, 0x3fef387a6e756238ull, 0x3fef1e9df51fdee1ull,
    0x3fef06fe0a31b715ull, 0x3feef1a7373aa9cbull, 0x3feedea64c123422ull, 0x3feece086061892dull,
    0x3feebfdad5362a27ull, 0x3feeb42b569d4f82ull, 0x3feeab07dd485429ull, 0x3feea47eb03a5585ull,
    0x3feea09e667f3bcdull, 0x3fee9f75e8ec5f74ull, 0x3feea11473eb0187ull, 0x3feea589994cce13ull,
    0x3feeace5422aa0dbull, 0x3feeb737b0cdc5e5ull, 0x3feec49182a3f090ull, 0x3feed503b23e255dull,
    0x3feee89f995ad3adull, 0x3feeff76f2fb5e47ull, 0x3fef199bdd85529cull, 0x3fef3720dcef9069ull,
    0x3fef5818dcfba487ull, 0x3fef7c97337b9b5full, 0x3fefa4afa2a490daull, 0x3fefd0765b6e4540ull,
};

static __device__ __forceinline__ float d_expf(float x) {
    if (x != x) return x + x;
    if (x > 0x1.62e42ep6f) return __int_as_float(0x7f800000);
    if (x < -0x1.9fe368p6f) return 0.0f;
    const double inv_ln2_n = 0x1.71547652b82fep+0 * 32, z = inv_ln2_n * (double)x;
    double kd = z + 0x1.8p+52;
    const uint64_t ki = (uint64_t)__double_as_longlong(kd);
    kd -= 0x1.8p+52;
    const double r = __fma_rn(inv_ln2_n, (double)x, -kd); /* glibc's FMA build contracts z - kd */
    const double s = __longlong_as_double((long long)(d_exp2_tab[ki % 32] + (ki << 47)));
    const double c0 = 0x1.c6af84b912394p-5 / (32.0 * 32.0 * 32.0), c1 = 0x1.ebfce50fac4f3p-3 / (32.0 * 32.0),
                 c2 = 0x1.62e42ff0c52d6p-1 / 32.0;
    const double zz = __fma_rn(c0, r, c1), r2 = r * r;
    double y = __fma_rn(c2, r, 1.0);
    y = __fma_rn(zz, r2, y);
    return (float)(y * s);
}

static __device__ __forceinline__ float d_log1pf(float x) {
    const float ln2_hi = 6.9313812256e-01f, ln2_lo = 9.0580006145e-06f;
    const float Lp1 = 6.6666668653e-01f, Lp2 = 4.0000000596e-01f, Lp3 = 2.8571429849e-01f,
                Lp4 = 2.2222198546e-01f, Lp5 = 1.8183572590e-01f, Lp6 = 1.5313838422e-01f,
                Lp7 = 1.4798198640e-01f;
    float hfsq, f = 0.0f, c = 0.0f, s, z, R, u;
    int32_t k = 1, hu = 0;
    const int32_t hx = __float_as_int(x), ax = hx & 0x7fffffff;
    if (hx < 0x3ed413d7) {
        if (ax >= 0x3f800000) return x == -1.0f ? __int_as_float((int)0xff800000) : __int_as_float(0x7fc00000);
        if (ax < 0x31000000) return ax < 0x24800000 ? x : x - x * x * 0.5f;
        if (hx > 0 || hx <= (int32_t)0xbe95f61f) { k = 0; f = x; hu = 1; }
    } else if (hx >= 0x7f800000) return x + x;
    if (k != 0) {
        if (hx < 0x5a000000) {
            u = 1.0f + x;
            hu = __float_as_int(u);
            k = (hu >> 23) - 127;
            c = (k > 0) ? 1.0f - (u - x) : x - (u - 1.0f);
            c /= u;
        } else {
            u = x;
            hu = __float_as_int(u);
            k = (hu >> 23) - 127;
            c = 0.0f;
        }
        hu &= 0x007fffff;
        if (hu < 0x3504f7) u = __int_as_float(hu | 0x3f800000);
        else {
            k += 1;
            u = __int_as_float(hu | 0x3f000000);
            hu = (0x00800000 - hu) >> 2;
        }
        f = u - 1.0f;
    }
    hfsq = 0.5f * f * f;
    if (hu == 0) {
        if (f == 0.0f) {
            if (k == 0) return 0.0f;
            c += k * ln2_lo;
            return k * ln2_hi + c;
        }
        R = hfsq * (1.0f - 0.66666666666666666f * f);
        if (k == 0) return f - R;
        return k * ln2_hi - ((R - (k * ln2_lo + c)) - f);
    }
    s = f / (2.0f + f);
    z = s * s;
    R = z * (Lp1 + z * (Lp2 + z * (Lp3 + z * (Lp4 + z * (Lp5 + z * (Lp6 + z * Lp7))))));
    if (k == 0) return f - (hfsq - s * (hfsq + R));
    return k * ln2_hi - ((hfsq - (s * (hfsq + R) + (k * ln2_lo + c))) - f);
}

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
