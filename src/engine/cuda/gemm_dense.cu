/* gemm_dense.cu - prefill's dense projections: a batch of tokens against
 * Q8_0 or F16 weights, each weight tile read once for many tokens.
 *
 * Q8_0: a warp owns 16 rows × 8·GD_NT tokens; per 32-block the int8 tensor
 * core forms the exact integer block sums (gemm_mma.cuh) and the thread that
 * owns an output adds (d_w·d_x)·isum in block order, as
 * ds4_vec_dot_q8_0_ref: bit-identical to the CPU and to ds4cu_matvec_q8_0.
 * F16 exact: one thread per row and GF_NT tokens, each sum in index order
 * (ds4_vec_dot_f16_f32_ref); F16 fast: a warp per row and GF_NT tokens with
 * the lane-strided sums and xor tree of matvec.cu's fast kernel, so the same
 * values as it. Anything these do not cover (n == 1, odd shapes) goes to the
 * mat-vec kernels of matvec.cu. */
#include <stdlib.h>

#include "engine/cuda/common.cuh"
#include "engine/cuda/gemm.h"
#include "engine/cuda/gemm_mma.cuh"

#define FULL 0xffffffffu
#define GD_NT 4 /* token tiles of 8 per warp */
#define GF_NT 8 /* tokens per F16 weight read */

extern "C" int ds4cu_gemm_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("DS4_CUDA_GEMM");
        on = !(e && atoi(e) == 0);
    }
    return on;
}

/* Grid (out/64, n/(8·GD_NT)), 4 warps of 16 rows. Rows of one warp share a
 * group (rpg % 16 == 0). */
static __global__ void __launch_bounds__(128) k_gemm_q8_0(const uint8_t *W, size_t rb, int nb, int out, int rpg,
                                                          int xrb, const cu_act_q8_0 *xq, int n, float *y) {
    const int lane = threadIdx.x & 31, gid = lane >> 2, tid = lane & 3;
    const int row0 = (blockIdx.x * 4 + threadIdx.x / 32) * 16;
    if (row0 >= out) return; /* whole warp */
    const int rA = row0 + gid, rB = rA + 8;
    const bool vA = rA < out, vB = rB < out;
    const uint8_t *wA = W + (size_t)(vA ? rA : row0) * rb, *wB = W + (size_t)(vB ? rB : row0) * rb;
    const int g = row0 / rpg, t0 = blockIdx.y * 8 * GD_NT;
    const cu_act_q8_0 *xb[GD_NT], *xo[GD_NT][2];
#pragma unroll
    for (int j = 0; j < GD_NT; j++) {
        const int t = t0 + 8 * j + gid;
        xb[j] = t < n ? xq + (size_t)t * xrb + (size_t)g * nb : NULL;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int tt = t0 + 8 * j + 2 * tid + h;
            xo[j][h] = tt < n ? xq + (size_t)tt * xrb + (size_t)g * nb : NULL;
        }
    }
    float acc[GD_NT][4];
#pragma unroll
    for (int j = 0; j < GD_NT; j++)
#pragma unroll
        for (int q = 0; q < 4; q++) acc[j][q] = 0.0f;
    const int rem = n - t0;
    for (int b = 0; b < nb; b++) {
        const uint16_t *pA = (const uint16_t *)(wA + (size_t)b * 34), *pB = (const uint16_t *)(wB + (size_t)b * 34);
        uint32_t a[4] = {ld_u16x2(pA + 1 + 2 * tid), ld_u16x2(pB + 1 + 2 * tid), ld_u16x2(pA + 9 + 2 * tid),
                         ld_u16x2(pB + 9 + 2 * tid)};
        if (!vA) a[0] = a[2] = 0;
        if (!vB) a[1] = a[3] = 0;
        const float dA = d_f16(__ldg(pA)), dB = d_f16(__ldg(pB));
#pragma unroll
        for (int j = 0; j < GD_NT; j++) {
            if (8 * j >= rem) break;
            uint32_t b0 = 0, b1 = 0;
            if (xb[j]) {
                const int8_t *q8 = xb[j][b].qs;
                b0 = *(const uint32_t *)(q8 + 4 * tid);
                b1 = *(const uint32_t *)(q8 + 16 + 4 * tid);
            }
            int c[4] = {0, 0, 0, 0};
            mma_s8(c, a, b0, b1);
#pragma unroll
            for (int h = 0; h < 2; h++)
                if (xo[j][h]) {
                    const float xd = xo[j][h][b].d;
                    acc[j][h] += (dA * xd) * (float)c[h];
                    acc[j][2 + h] += (dB * xd) * (float)c[2 + h];
                }
        }
    }
#pragma unroll
    for (int j = 0; j < GD_NT; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int t = t0 + 8 * j + 2 * tid + h;
            if (t >= n) continue;
            if (vA) y[(size_t)t * out + rA] = acc[j][h];
            if (vB) y[(size_t)t * out + rB] = acc[j][2 + h];
        }
}

extern "C" void ds4cu_gemm_q8_0(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const void *xq,
                                int n, float *y) {
    const int64_t nb = in / 32, rpg = out / groups;
    if (n < 2 || !ds4cu_gemm_enabled() || (groups > 1 && rpg % 16 != 0) || ((uintptr_t)W & 1) || (row_bytes & 1) ||
        out > 0x7fffffff) {
        ds4cu_matvec_q8_0(W, row_bytes, in, out, groups, xq, n, y);
        return;
    }
    const dim3 grid(cdiv(out, 64), cdiv(n, 8 * GD_NT));
    k_gemm_q8_0<<<grid, 128, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, (int)nb, (int)out, (int)rpg,
                                           (int)(nb * groups), (const cu_act_q8_0 *)xq, n, y);
    ds4cu_after("gemm_q8_0");
}

/* ---------------- F16 ---------------- */
/* One thread per row, GF_NT tokens from blockIdx.y·GF_NT; index-order sums. */
static __global__ void k_gemm_f16_exact(const uint8_t *W, size_t rb, int64_t in, int64_t out, int64_t rpg, int64_t xw,
                                        const float *x, int n, float *y) {
    const int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= out) return;
    const int t0 = blockIdx.y * GF_NT;
    const float *xr = x + (size_t)t0 * xw + (row / rpg) * in;
    const uint4 *w4 = (const uint4 *)(W + (size_t)row * rb);
    float s[GF_NT];
#pragma unroll
    for (int t = 0; t < GF_NT; t++) s[t] = 0.0f;
    const int nt = n - t0 < GF_NT ? n - t0 : GF_NT;
    for (int64_t k = 0; k < in / 8; k++) {
        const uint4 q = __ldg(w4 + k);
        const uint32_t u[4] = {q.x, q.y, q.z, q.w};
        float wv[8];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            wv[2 * j] = d_f16((uint16_t)(u[j] & 0xffff));
            wv[2 * j + 1] = d_f16((uint16_t)(u[j] >> 16));
        }
#pragma unroll
        for (int t = 0; t < GF_NT; t++) {
            if (t >= nt) break;
            const float *xk = xr + (size_t)t * xw + 8 * k;
#pragma unroll
            for (int i = 0; i < 8; i++) s[t] += wv[i] * xk[i];
        }
    }
#pragma unroll
    for (int t = 0; t < GF_NT; t++)
        if (t < nt) y[(size_t)(t0 + t) * out + row] = s[t];
}

/* A warp per row, GF_NT tokens: the fast kernel's lane split and xor tree. */
static __global__ void k_gemm_f16_fast(const uint8_t *W, size_t rb, int64_t in, int64_t out, int64_t rpg, int64_t xw,
                                       const float *x, int n, float *y) {
    const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= out) return;
    const int t0 = blockIdx.y * GF_NT;
    const int nt = n - t0 < GF_NT ? n - t0 : GF_NT;
    const float *xr = x + (size_t)t0 * xw + (row / rpg) * in;
    const uint4 *w4 = (const uint4 *)(W + (size_t)row * rb);
    float s[GF_NT];
#pragma unroll
    for (int t = 0; t < GF_NT; t++) s[t] = 0.0f;
    for (int64_t k = lane; k < in / 8; k += 32) {
        const uint4 q = __ldg(w4 + k);
        const uint32_t u[4] = {q.x, q.y, q.z, q.w};
        float wv[8];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            wv[2 * j] = d_f16((uint16_t)(u[j] & 0xffff));
            wv[2 * j + 1] = d_f16((uint16_t)(u[j] >> 16));
        }
#pragma unroll
        for (int t = 0; t < GF_NT; t++) {
            if (t >= nt) break;
            const float *xk = xr + (size_t)t * xw + 8 * k;
#pragma unroll
            for (int i = 0; i < 8; i++) s[t] += wv[i] * xk[i];
        }
    }
#pragma unroll
    for (int t = 0; t < GF_NT; t++) {
        float v = s[t];
        for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
        if (lane == 0 && t < nt) y[(size_t)(t0 + t) * out + row] = v;
    }
}

extern "C" void ds4cu_gemm_f16(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const float *x,
                               int n, float *y, int exact) {
    const int64_t rpg = out / groups, xw = in * groups;
    const int aligned = (in & 7) == 0 && ((uintptr_t)W & 15) == 0 && (row_bytes & 15) == 0;
    /* The few-long-rows shape (HC projections) keeps matvec.cu's block per row in fast mode. */
    const int rowblock = !exact && out < 264 && in >= 2048;
    if (n < 2 || !ds4cu_gemm_enabled() || !aligned || rowblock) {
        ds4cu_matvec_f16(W, row_bytes, in, out, groups, x, n, y, exact);
        return;
    }
    const uint8_t *w = (const uint8_t *)W;
    if (exact)
        k_gemm_f16_exact<<<dim3(cdiv(out, 64), cdiv(n, GF_NT)), 64, 0, ds4cu_s>>>(w, row_bytes, in, out, rpg, xw, x,
                                                                                  n, y);
    else
        k_gemm_f16_fast<<<dim3(cdiv(out, 8), cdiv(n, GF_NT)), 256, 0, ds4cu_s>>>(w, row_bytes, in, out, rpg, xw, x,
                                                                                 n, y);
    ds4cu_after("gemm_f16");
}
