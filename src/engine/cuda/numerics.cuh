/* numerics.cuh - FP8-E4M3 / FP4-E2M1 simulation and the indexer's
 * Hadamard+FP4, on the device, in the order of numerics.c. Included by each
 * .cu file that needs them (no relocatable device code): every translation
 * unit has its own copy of the E4M3 table, on every device, and must call
 * e4m3_init() (current device) before its first launch there. */
#ifndef DS4_CUDA_NUMERICS_CUH
#define DS4_CUDA_NUMERICS_CUH

#include "engine/cuda/common.cuh"

static __constant__ float c_e4m3[127];
static int e4m3_ready[64]; /* per device: each GPU of --gpus has its own copy of the symbol */

static void e4m3_init(void) {
    int dev = 0;
    cudaGetDevice(&dev);
    if (dev < 0 || dev >= 64 || e4m3_ready[dev]) return;
    float t[127];
    for (int i = 0; i < 127; i++) {
        const int e = i >> 3, m = i & 7;
        t[i] = e == 0 ? ldexpf((float)m, -9) : ldexpf(1.0f + (float)m / 8.0f, e - 7);
    }
    cudaMemcpyToSymbol(c_e4m3, t, sizeof t);
    /* The copy goes through the legacy stream; the kernels run on non-blocking
     * streams, which do not wait for it. */
    cudaDeviceSynchronize();
    e4m3_ready[dev] = 1;
}

static __device__ float d_e4m3_round(float v) {
    float a = fabsf(v);
    if (a > 448.0f) a = 448.0f;
    int lo = 0, hi = 126;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (c_e4m3[mid] <= a) lo = mid;
        else hi = mid - 1;
    }
    int i = lo;
    if (i < 126) {
        const float dn = a - c_e4m3[i], up = c_e4m3[i + 1] - a;
        if (up < dn || (up == dn && ((i + 1) % 2 == 0))) i = i + 1;
    }
    return v < 0 ? -c_e4m3[i] : c_e4m3[i];
}

static __device__ float d_e2m1_round(float v) {
    const float vals[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float a = fabsf(v);
    if (a > 6.0f) a = 6.0f;
    int best = 0;
    float bd = fabsf(a - vals[0]);
    for (int i = 1; i < 8; i++) {
        const float d = fabsf(a - vals[i]);
        if (d < bd || (d == bd && (i % 2 == 0) && (best % 2 == 1))) { best = i; bd = d; }
    }
    return v < 0 ? -vals[best] : vals[best];
}

static __device__ void d_fp8_block(float *x) {
    float amax = 0.0f;
    for (int i = 0; i < 64; i++) { const float a = fabsf(x[i]); if (a > amax) amax = a; }
    if (amax < 1e-4f) amax = 1e-4f;
    const float scale = ldexpf(1.0f, (int)ceilf(d_log2f(amax / 448.0f)));
    for (int i = 0; i < 64; i++) {
        float q = x[i] / scale;
        q = q < -448.0f ? -448.0f : (q > 448.0f ? 448.0f : q);
        x[i] = d_e4m3_round(q) * scale;
    }
}

static __device__ void d_fp4_block(float *x) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) { const float a = fabsf(x[i]); if (a > amax) amax = a; }
    if (amax < 7.052966104933725e-38f) amax = 7.052966104933725e-38f;
    const float scale = ldexpf(1.0f, (int)ceilf(d_log2f(amax / 6.0f)));
    for (int i = 0; i < 32; i++) {
        float q = x[i] / scale;
        q = q < -6.0f ? -6.0f : (q > 6.0f ? 6.0f : q);
        x[i] = d_e2m1_round(q) * scale;
    }
}

/* Hadamard-128 butterflies (the same pairs and a+b / a-b as
 * ds4_hadamard128; pairs of one stage are disjoint, so they run in parallel),
 * the 1/sqrt(128) scale, then FP4 per 32. x is shared memory; every thread of
 * the block must call it. */
static __device__ void d_iqat_block(float *x) {
    for (int t = 1; t < 128; t <<= 1) {
        for (int q = threadIdx.x; q < 64; q += blockDim.x) {
            const int i = (q / t) * 2 * t + q % t;
            const float a = x[i], b = x[i + t];
            x[i] = a + b;
            x[i + t] = a - b;
        }
        __syncthreads();
    }
    for (int i = threadIdx.x; i < 128; i += blockDim.x) x[i] *= 0.08838834764831845f;
    __syncthreads();
    if (threadIdx.x < 4) d_fp4_block(x + 32 * threadIdx.x);
    __syncthreads();
}

#endif
