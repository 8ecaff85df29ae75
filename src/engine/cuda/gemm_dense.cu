/* gemm_dense.cu - prefill's dense projections: a batch of tokens against
 * Q8_0 or F16 weights, each weight tile read once for many tokens.
 *
 * Q8_0: a warp owns 16 rows × 8·GD_NT tokens; per 32-block the int8 tensor
 * core forms the exact integer block sums (gemm_mma.cuh) and the thread that
 * owns an output adds (d_w·d_x)·isum in block order, as
 * ds4_vec_dot_q8_0_ref: bit-identical to the CPU and to ds4cu_matvec_q8_0.
 * F16: shared-memory tiles (32×32; 64×64 with 4×4 outputs per thread for
 * large shapes; 32 rows × 8 tokens for few long rows), each output one
 * index-order chain (ds4_vec_dot_f16_f32_ref), in both modes. Anything these do not cover
 * (n == 1, odd shapes) goes to the mat-vec kernels of matvec.cu. */
#include <stdlib.h>

#include "engine/cuda/common.cuh"
#include "engine/cuda/gemm.h"
#include "engine/cuda/gemm_mma.cuh"

#define FULL 0xffffffffu
#define GD_NT 4 /* token tiles of 8 per warp */

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

/* The same tiles with each chunk of GQ_KB blocks staged in shared memory:
 * weights and activations come in with coalesced loads, are repacked so
 * every fragment is one aligned 32-bit read (rows padded against bank
 * conflicts), and the scales are converted once. Same float steps. */
#define GQ_KB 4
#define GQ_W (GQ_KB * 8 + 4) /* words per staged row */
static __global__ void __launch_bounds__(128) k_gemm_q8_0s(const uint8_t *W, size_t rb, int nb, int out, int rpg,
                                                           int xrb, const cu_act_q8_0 *xq, int n, float *y) {
    __shared__ uint32_t Aq[64][GQ_W], Bq[8 * GD_NT][GQ_W];
    __shared__ float Ad[64][GQ_KB], Bd[8 * GD_NT][GQ_KB];
    const int lane = threadIdx.x & 31, gid = lane >> 2, tid = lane & 3, wr = (threadIdx.x >> 5) * 16;
    const int row0 = blockIdx.x * 64, t0 = blockIdx.y * 8 * GD_NT;
    const int g = row0 / rpg;
    float acc[GD_NT][4];
#pragma unroll
    for (int j = 0; j < GD_NT; j++)
#pragma unroll
        for (int q = 0; q < 4; q++) acc[j][q] = 0.0f;
    for (int c = 0; c < nb; c += GQ_KB) {
        __syncthreads();
        for (int u = threadIdx.x; u < 64 * GQ_KB; u += blockDim.x) {
            const int r = u / GQ_KB, b = u % GQ_KB;
            if (row0 + r < out) {
                const uint16_t *src = (const uint16_t *)(W + (size_t)(row0 + r) * rb + (size_t)(c + b) * 34);
                Ad[r][b] = d_f16(__ldg(src));
#pragma unroll
                for (int w = 0; w < 8; w++) Aq[r][b * 8 + w] = ld_u16x2(src + 1 + 2 * w);
            } else {
                Ad[r][b] = 0.0f;
#pragma unroll
                for (int w = 0; w < 8; w++) Aq[r][b * 8 + w] = 0;
            }
        }
        for (int u = threadIdx.x; u < 8 * GD_NT * GQ_KB; u += blockDim.x) {
            const int t = u / GQ_KB, b = u % GQ_KB;
            if (t0 + t < n) {
                const uint32_t *src = (const uint32_t *)(xq + (size_t)(t0 + t) * xrb + (size_t)g * nb + c + b);
                Bd[t][b] = __uint_as_float(__ldg(src));
#pragma unroll
                for (int w = 0; w < 8; w++) Bq[t][b * 8 + w] = __ldg(src + 1 + w);
            } else {
                Bd[t][b] = 0.0f;
#pragma unroll
                for (int w = 0; w < 8; w++) Bq[t][b * 8 + w] = 0;
            }
        }
        __syncthreads();
#pragma unroll
        for (int b = 0; b < GQ_KB; b++) {
            const uint32_t a[4] = {Aq[wr + gid][b * 8 + tid], Aq[wr + gid + 8][b * 8 + tid],
                                   Aq[wr + gid][b * 8 + 4 + tid], Aq[wr + gid + 8][b * 8 + 4 + tid]};
            const float dA = Ad[wr + gid][b], dB = Ad[wr + gid + 8][b];
#pragma unroll
            for (int j = 0; j < GD_NT; j++) {
                int cc[4] = {0, 0, 0, 0};
                mma_s8(cc, a, Bq[8 * j + gid][b * 8 + tid], Bq[8 * j + gid][b * 8 + 4 + tid]);
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const float xd = Bd[8 * j + 2 * tid + h][b];
                    acc[j][h] += (dA * xd) * (float)cc[h];
                    acc[j][2 + h] += (dB * xd) * (float)cc[2 + h];
                }
            }
        }
    }
    const int rA = row0 + wr + gid, rB = rA + 8;
#pragma unroll
    for (int j = 0; j < GD_NT; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int t = t0 + 8 * j + 2 * tid + h;
            if (t >= n) continue;
            if (rA < out) y[(size_t)t * out + rA] = acc[j][h];
            if (rB < out) y[(size_t)t * out + rB] = acc[j][2 + h];
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
    if (nb % GQ_KB == 0 && (groups == 1 || rpg % 64 == 0))
        k_gemm_q8_0s<<<grid, 128, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, (int)nb, (int)out, (int)rpg,
                                                (int)(nb * groups), (const cu_act_q8_0 *)xq, n, y);
    else
        k_gemm_q8_0<<<grid, 128, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, (int)nb, (int)out, (int)rpg,
                                           (int)(nb * groups), (const cu_act_q8_0 *)xq, n, y);
    ds4cu_after("gemm_q8_0");
}

/* ---------------- F16 ---------------- */
/* Tiles of FB rows × FB tokens, k in chunks of FB staged in shared memory
 * (weights converted to float once per chunk); thread (ty, tx) owns rows
 * tx, tx+16 and tokens ty, ty+16, each sum one chain in index order, as
 * ds4_vec_dot_f16_f32_ref. Exact, so it serves the fast mode too (the fast
 * mode only permits reassociation). Rows of a tile share a group. */
#define FB 32
static __global__ void __launch_bounds__(256) k_gemm_f16(const uint8_t *W, size_t rb, int in, int out, int rpg, int64_t xw,
                                                         const float *x, int n, float *y) {
    __shared__ float Ws[FB][FB + 1], Xs[FB][FB + 1];
    const int row0 = blockIdx.x * FB, t0 = blockIdx.y * FB;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int lr = threadIdx.x >> 3, lk = (threadIdx.x & 7) * 4; /* loader: row/token lr, k lk..lk+3 */
    const float *xg = x + (int64_t)(row0 / rpg) * in;
    const bool wv = row0 + lr < out, xv = t0 + lr < n;
    const uint16_t *wrow = (const uint16_t *)(W + (size_t)(wv ? row0 + lr : 0) * rb);
    const float *xrow = xg + (int64_t)(xv ? t0 + lr : 0) * xw;
    float s00 = 0.0f, s01 = 0.0f, s10 = 0.0f, s11 = 0.0f;
    for (int k0 = 0; k0 < in; k0 += FB) {
        const uint2 wq = wv ? __ldg((const uint2 *)(wrow + k0 + lk)) : make_uint2(0, 0);
        const float4 xq = xv ? __ldg((const float4 *)(xrow + k0 + lk)) : make_float4(0, 0, 0, 0);
        __syncthreads();
        Ws[lr][lk] = d_f16((uint16_t)(wq.x & 0xffff));
        Ws[lr][lk + 1] = d_f16((uint16_t)(wq.x >> 16));
        Ws[lr][lk + 2] = d_f16((uint16_t)(wq.y & 0xffff));
        Ws[lr][lk + 3] = d_f16((uint16_t)(wq.y >> 16));
        Xs[lr][lk] = xq.x;
        Xs[lr][lk + 1] = xq.y;
        Xs[lr][lk + 2] = xq.z;
        Xs[lr][lk + 3] = xq.w;
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < FB; kk++) {
            const float a0 = Ws[tx][kk], a1 = Ws[tx + 16][kk], b0 = Xs[ty][kk], b1 = Xs[ty + 16][kk];
            s00 += a0 * b0;
            s01 += a0 * b1;
            s10 += a1 * b0;
            s11 += a1 * b1;
        }
    }
    const int r0 = row0 + tx, r1 = r0 + 16, u0 = t0 + ty, u1 = u0 + 16;
    if (r0 < out && u0 < n) y[(int64_t)u0 * out + r0] = s00;
    if (r0 < out && u1 < n) y[(int64_t)u1 * out + r0] = s01;
    if (r1 < out && u0 < n) y[(int64_t)u0 * out + r1] = s10;
    if (r1 < out && u1 < n) y[(int64_t)u1 * out + r1] = s11;
}

/* The same with 64×64 tiles and 4×4 outputs per thread (rows tx+16i,
 * tokens ty+16j) for the large shapes: four times the arithmetic per shared
 * read and sixteen independent chains per thread. Same chains. */
#define FB2 64
static __global__ void __launch_bounds__(256) k_gemm_f16_big(const uint8_t *W, size_t rb, int in, int out, int rpg,
                                                             int64_t xw, const float *x, int n, float *y) {
    __shared__ float Ws[FB2][FB + 1], Xs[FB2][FB + 1];
    const int row0 = blockIdx.x * FB2, t0 = blockIdx.y * FB2;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int lr = threadIdx.x >> 2, lk = (threadIdx.x & 3) * 8; /* loader: row/token lr, k lk..lk+7 */
    const float *xg = x + (int64_t)(row0 / rpg) * in;
    const bool wv = row0 + lr < out, xv = t0 + lr < n;
    const uint16_t *wrow = (const uint16_t *)(W + (size_t)(wv ? row0 + lr : 0) * rb);
    const float *xrow = xg + (int64_t)(xv ? t0 + lr : 0) * xw;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < in; k0 += FB) {
        const uint4 wq = wv ? __ldg((const uint4 *)(wrow + k0 + lk)) : make_uint4(0, 0, 0, 0);
        const float4 xa = xv ? __ldg((const float4 *)(xrow + k0 + lk)) : make_float4(0, 0, 0, 0);
        const float4 xb = xv ? __ldg((const float4 *)(xrow + k0 + lk + 4)) : make_float4(0, 0, 0, 0);
        __syncthreads();
        const uint32_t u[4] = {wq.x, wq.y, wq.z, wq.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            Ws[lr][lk + 2 * e] = d_f16((uint16_t)(u[e] & 0xffff));
            Ws[lr][lk + 2 * e + 1] = d_f16((uint16_t)(u[e] >> 16));
        }
        Xs[lr][lk] = xa.x;
        Xs[lr][lk + 1] = xa.y;
        Xs[lr][lk + 2] = xa.z;
        Xs[lr][lk + 3] = xa.w;
        Xs[lr][lk + 4] = xb.x;
        Xs[lr][lk + 5] = xb.y;
        Xs[lr][lk + 6] = xb.z;
        Xs[lr][lk + 7] = xb.w;
        __syncthreads();
#pragma unroll 4
        for (int kk = 0; kk < FB; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = Ws[tx + 16 * i][kk];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = Xs[ty + 16 * j][kk];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int r = row0 + tx + 16 * i, t = t0 + ty + 16 * j;
            if (r < out && t < n) y[(int64_t)t * out + r] = acc[i][j];
        }
}

/* Few rows (the HC projections: 24 of 16384; idx_proj: 64): tiles of 32
 * rows × 8 tokens, one output per thread, so a batch still fills the card
 * with the long chains. Same chains. */
static __global__ void __launch_bounds__(256) k_gemm_f16_thin(const uint8_t *W, size_t rb, int in, int out, int rpg,
                                                              int64_t xw, const float *x, int n, float *y) {
    __shared__ float Ws[FB][FB + 1], Xs[8][FB];
    const int row0 = blockIdx.x * FB, t0 = blockIdx.y * 8;
    const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    const int lr = threadIdx.x >> 3, lk = (threadIdx.x & 7) * 4;
    const float *xg = x + (int64_t)(row0 / rpg) * in;
    const bool wv = row0 + lr < out, xv = t0 + ty < n;
    const uint16_t *wrow = (const uint16_t *)(W + (size_t)(wv ? row0 + lr : 0) * rb);
    const float *xrow = xg + (int64_t)(xv ? t0 + ty : 0) * xw;
    float acc = 0.0f;
    for (int k0 = 0; k0 < in; k0 += FB) {
        const uint2 wq = wv ? __ldg((const uint2 *)(wrow + k0 + lk)) : make_uint2(0, 0);
        const float xq = xv ? __ldg(xrow + k0 + tx) : 0.0f;
        __syncthreads();
        Ws[lr][lk] = d_f16((uint16_t)(wq.x & 0xffff));
        Ws[lr][lk + 1] = d_f16((uint16_t)(wq.x >> 16));
        Ws[lr][lk + 2] = d_f16((uint16_t)(wq.y & 0xffff));
        Ws[lr][lk + 3] = d_f16((uint16_t)(wq.y >> 16));
        Xs[ty][tx] = xq;
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < FB; kk++) acc += Ws[tx][kk] * Xs[ty][kk];
    }
    const int r = row0 + tx, t = t0 + ty;
    if (r < out && t < n) y[(int64_t)t * out + r] = acc;
}

extern "C" void ds4cu_gemm_f16(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const float *x,
                               int n, float *y, int exact) {
    const int64_t rpg = out / groups, xw = in * groups;
    const int ok = in % FB == 0 && ((uintptr_t)W & 7) == 0 && (row_bytes & 7) == 0 && ((uintptr_t)x & 15) == 0 &&
                   (groups == 1 || rpg % FB == 0) && in < 0x7fffffff && out < 0x7fffffff;
    if (n < 2 || !ds4cu_gemm_enabled() || !ok) {
        ds4cu_matvec_f16(W, row_bytes, in, out, groups, x, n, y, exact);
        return;
    }
    const int big = ((uintptr_t)W & 15) == 0 && (row_bytes & 15) == 0 && (groups == 1 || rpg % FB2 == 0) &&
                    (int64_t)cdiv(out, FB2) * cdiv(n, FB2) >= 264; /* two waves of 132 SMs */
    if (out <= 64)
        k_gemm_f16_thin<<<dim3(cdiv(out, FB), cdiv(n, 8)), 256, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, (int)in,
                                                                            (int)out, (int)rpg, xw, x, n, y);
    else if (big)
        k_gemm_f16_big<<<dim3(cdiv(out, FB2), cdiv(n, FB2)), 256, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, (int)in,
                                                                               (int)out, (int)rpg, xw, x, n, y);
    else
        k_gemm_f16<<<dim3(cdiv(out, FB), cdiv(n, FB)), 256, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, (int)in,
                                                                         (int)out, (int)rpg, xw, x, n, y);
    ds4cu_after("gemm_f16");
}
