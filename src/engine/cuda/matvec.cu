/* matvec.cu - weight × activation products, each weight byte read once per
 * group of tokens and decoded in registers.
 *
 * Exactness: a Q8_0 / K-quant dot is a sum over blocks of (scale product ×
 * exact integer block sum). The integer sums are computed in any order (DP4A);
 * the float sum over blocks is taken in block order by walking the warp's
 * lanes with shuffles, so every output is bit-identical to the CPU's
 * ds4_vec_dot_*_ref. F16 weights: one thread per output summing in index
 * order (exact) or a warp with a tree reduction (fast, m->exact < 0). */
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/common.cuh"

extern "C" {
#include "quant/quant.h"
}

#define FULL 0xffffffffu

/* ---------------- Q8_0 ---------------- */
/* A warp per row. With STAGE (rows 16-byte aligned, the real model), each
 * 32-block chunk of the row (1088 bytes) comes in with coalesced 16-byte
 * loads into the warp's shared buffer and is decoded from there. */
template <int NT, int STAGE>
static __global__ void k_mv_q8_0(const uint8_t *W, size_t rb, int64_t nb, int64_t out, int64_t rpg, int64_t xrb,
                                 const cu_act_q8_0 *xq, int n, float *y) {
    __shared__ __align__(16) uint8_t sbuf[STAGE ? 8 : 1][STAGE ? 1088 : 16];
    const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= out) return; /* whole warp */
    const int t0 = blockIdx.y * NT;
    const int64_t g = row / rpg;
    const uint8_t *wr = W + (size_t)row * rb;
    uint8_t *sw = sbuf[STAGE ? threadIdx.x / 32 : 0];
    float acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    for (int64_t c = 0; c < nb; c += 32) {
        const int64_t b = c + lane;
        const int lim = nb - c < 32 ? (int)(nb - c) : 32;
        const uint16_t *bp;
        if (STAGE) {
            const int n16 = (lim * 34 + 15) / 16;
            const uint4 *src = (const uint4 *)(wr + c * 34);
            for (int k = lane; k < n16; k += 32) ((uint4 *)sw)[k] = __ldg(src + k);
            __syncwarp();
            bp = (const uint16_t *)(sw + lane * 34);
        } else {
            bp = (const uint16_t *)(wr + b * 34);
        }
        float term[NT];
        for (int t = 0; t < NT; t++) term[t] = 0.0f;
        if (b < nb) {
            const float dw = d_f16(bp[0]);
            int wq[8];
            for (int k = 0; k < 8; k++) wq[k] = (int)((uint32_t)bp[1 + 2 * k] | ((uint32_t)bp[2 + 2 * k] << 16));
            for (int t = 0; t < NT; t++) {
                if (t0 + t >= n) break;
                const cu_act_q8_0 *xb = xq + (int64_t)(t0 + t) * xrb + g * nb + b;
                const int *xi = (const int *)xb->qs;
                int isum = 0;
                for (int k = 0; k < 8; k++) isum = __dp4a(wq[k], xi[k], isum);
                term[t] = (dw * xb->d) * (float)isum;
            }
        }
        if (STAGE) __syncwarp();
        for (int l = 0; l < lim; l++)
            for (int t = 0; t < NT; t++) acc[t] += __shfl_sync(FULL, term[t], l);
    }
    if (lane == 0)
        for (int t = 0; t < NT; t++)
            if (t0 + t < n) y[(int64_t)(t0 + t) * out + row] = acc[t];
}

extern "C" void ds4cu_matvec_q8_0(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const void *xq,
                                  int n, float *y) {
    const int64_t nb = in / 32, rpg = out / groups, xrb = nb * groups;
    const unsigned gx = cdiv(out, 8); /* 8 warps per block */
    const uint8_t *w = (const uint8_t *)W;
    const cu_act_q8_0 *x = (const cu_act_q8_0 *)xq;
    const int stage = ((uintptr_t)W & 15) == 0 && (row_bytes & 15) == 0;
    /* Tokens per weight read in a batch: DS4_CUDA_NT = 8 (default), 16 or 32 (prefill experiments). */
    static int nt = 0;
    if (!nt) {
        const char *e = getenv("DS4_CUDA_NT");
        nt = e && (atoi(e) == 16 || atoi(e) == 32) ? atoi(e) : 8;
    }
    if (n == 1 && stage) k_mv_q8_0<1, 1><<<dim3(gx, 1), 256, 0, ds4cu_s>>>(w, row_bytes, nb, out, rpg, xrb, x, n, y);
    else if (n == 1) k_mv_q8_0<1, 0><<<dim3(gx, 1), 256, 0, ds4cu_s>>>(w, row_bytes, nb, out, rpg, xrb, x, n, y);
    else if (!stage) k_mv_q8_0<8, 0><<<dim3(gx, cdiv(n, 8)), 256, 0, ds4cu_s>>>(w, row_bytes, nb, out, rpg, xrb, x, n, y);
    else if (nt == 32) k_mv_q8_0<32, 1><<<dim3(gx, cdiv(n, 32)), 256, 0, ds4cu_s>>>(w, row_bytes, nb, out, rpg, xrb, x, n, y);
    else if (nt == 16) k_mv_q8_0<16, 1><<<dim3(gx, cdiv(n, 16)), 256, 0, ds4cu_s>>>(w, row_bytes, nb, out, rpg, xrb, x, n, y);
    else k_mv_q8_0<8, 1><<<dim3(gx, cdiv(n, 8)), 256, 0, ds4cu_s>>>(w, row_bytes, nb, out, rpg, xrb, x, n, y);
    ds4cu_after("matvec_q8_0");
}

/* ---------------- F16 / F32 ---------------- */
static __global__ void k_mv_f16_exact(const uint8_t *W, size_t rb, int64_t in, int64_t out, int64_t rpg, int64_t xw,
                                      const float *x, int n, float *y) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= out * n) return;
    const int64_t row = i % out, t = i / out, g = row / rpg;
    const float *xr = x + t * xw + g * in;
    float s = 0.0f;
    if ((in & 7) == 0 && ((uintptr_t)W & 15) == 0 && (rb & 15) == 0) {
        const uint4 *w4 = (const uint4 *)(W + (size_t)row * rb);
        for (int64_t k = 0; k < in / 8; k++) {
            const uint4 q = __ldg(w4 + k);
            const uint32_t u[4] = {q.x, q.y, q.z, q.w};
            for (int j = 0; j < 4; j++) {
                s += d_f16((uint16_t)(u[j] & 0xffff)) * xr[8 * k + 2 * j];
                s += d_f16((uint16_t)(u[j] >> 16)) * xr[8 * k + 2 * j + 1];
            }
        }
    } else {
        const uint16_t *w = (const uint16_t *)(W + (size_t)row * rb);
        for (int64_t k = 0; k < in; k++) s += d_f16(w[k]) * xr[k];
    }
    y[t * out + row] = s;
}

static __global__ void k_mv_f16_fast(const uint8_t *W, size_t rb, int64_t in, int64_t out, int64_t rpg, int64_t xw,
                                     const float *x, int n, float *y) {
    const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31, t = blockIdx.y;
    if (row >= out) return;
    const int64_t g = row / rpg;
    const float *xr = x + (int64_t)t * xw + g * in;
    const uint16_t *w = (const uint16_t *)(W + (size_t)row * rb);
    float s = 0.0f;
    if ((in & 7) == 0 && ((uintptr_t)W & 15) == 0 && (rb & 15) == 0) {
        const uint4 *w4 = (const uint4 *)w;
        for (int64_t k = lane; k < in / 8; k += 32) {
            const uint4 q = __ldg(w4 + k);
            const uint32_t u[4] = {q.x, q.y, q.z, q.w};
            for (int j = 0; j < 4; j++) {
                s += d_f16((uint16_t)(u[j] & 0xffff)) * xr[8 * k + 2 * j];
                s += d_f16((uint16_t)(u[j] >> 16)) * xr[8 * k + 2 * j + 1];
            }
        }
    } else {
        for (int64_t k = lane; k < in; k += 32) s += d_f16(w[k]) * xr[k];
    }
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(FULL, s, o);
    if (lane == 0) y[(int64_t)t * out + row] = s;
}

/* Few long rows (the HC projections: 24 rows of 16384): a block per row. */
static __global__ void k_mv_f16_rowblock(const uint8_t *W, size_t rb, int64_t in, int64_t out, int64_t rpg, int64_t xw,
                                         const float *x, int n, float *y) {
    __shared__ float part[32];
    const int64_t row = blockIdx.x;
    const int t = blockIdx.y;
    const float *xr = x + (int64_t)t * xw + (row / rpg) * in;
    const uint16_t *w = (const uint16_t *)(W + (size_t)row * rb);
    float s = 0.0f;
    const uint4 *w4 = (const uint4 *)w;
    for (int64_t k = threadIdx.x; k < in / 8; k += blockDim.x) {
        const uint4 q = __ldg(w4 + k);
        const uint32_t u[4] = {q.x, q.y, q.z, q.w};
        for (int j = 0; j < 4; j++) {
            s += d_f16((uint16_t)(u[j] & 0xffff)) * xr[8 * k + 2 * j];
            s += d_f16((uint16_t)(u[j] >> 16)) * xr[8 * k + 2 * j + 1];
        }
    }
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(FULL, s, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float r = 0.0f;
        for (int i = 0; i < (int)(blockDim.x / 32); i++) r += part[i];
        y[(int64_t)t * out + row] = r;
    }
}

extern "C" void ds4cu_matvec_f16(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const float *x,
                                 int n, float *y, int exact) {
    const int64_t rpg = out / groups, xw = in * groups;
    if (exact)
        k_mv_f16_exact<<<cdiv(out * n, 64), 64, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, in, out, rpg, xw, x, n, y);
    else if (out < 264 && in >= 2048 && (in & 7) == 0 && ((uintptr_t)W & 15) == 0 && (row_bytes & 15) == 0)
        k_mv_f16_rowblock<<<dim3((unsigned)out, n), 256, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, in, out, rpg, xw,
                                                                        x, n, y);
    else
        k_mv_f16_fast<<<dim3(cdiv(out, 8), n), 256, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, in, out, rpg, xw, x,
                                                                   n, y);
    ds4cu_after("matvec_f16");
}

static __global__ void k_mv_f32(const uint8_t *W, size_t rb, int64_t in, int64_t out, int64_t rpg, int64_t xw,
                                const float *x, int n, float *y) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= out * n) return;
    const int64_t row = i % out, t = i / out, g = row / rpg;
    const float *w = (const float *)(W + (size_t)row * rb), *xr = x + t * xw + g * in;
    double s = 0.0;
    for (int64_t k = 0; k < in; k++) s += (double)w[k] * (double)xr[k];
    y[t * out + row] = (float)s;
}

extern "C" void ds4cu_matvec_f32(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const float *x,
                                 int n, float *y) {
    k_mv_f32<<<cdiv(out * n, 64), 64, 0, ds4cu_s>>>((const uint8_t *)W, row_bytes, in, out, out / groups, in * groups,
                                                    x, n, y);
    ds4cu_after("matvec_f32");
}

/* ---------------- routed experts: IQ2_XXS, Q2_K, Q4_K × Q8_K ---------------- */
/* Global, not __constant__: every block copies them to shared memory with
 * one coalesced read (constant memory would serialize 256 distinct addresses). */
__device__ uint64_t c_iq2_grid[256];
__device__ uint8_t c_iq2_signs[128];
static int tables_ready[64]; /* per device: each GPU of --gpus has its own copy of the symbols */

static void tables_init(void) {
    int dev = 0;
    cudaGetDevice(&dev);
    if (dev < 0 || dev >= 64 || tables_ready[dev]) return;
    cudaMemcpyToSymbol(c_iq2_grid, ds4_iq2xxs_grid, sizeof(uint64_t) * 256);
    cudaMemcpyToSymbol(c_iq2_signs, ds4_ksigns_iq2xs, 128);
    tables_ready[dev] = 1;
}

/* Bytes 0xff where the sign bit is set, for 4 signs. */
static __device__ __forceinline__ uint32_t sign_mask4(uint32_t s) {
    return ((s & 1) ? 0xffu : 0u) | ((s & 2) ? 0xff00u : 0u) | ((s & 4) ? 0xff0000u : 0u) | ((s & 8) ? 0xff000000u : 0u);
}

/* Two lanes per 256-block: lane parity `half` takes half of the block. Returns
 * this lane's (float scale, int sum) pair contributions, combined by caller. */
static __device__ __forceinline__ void blk_iq2(const uint8_t *bp, const cu_q8_K *yb, int half, const uint64_t *sg,
                                               const uint8_t *ss, float *dd, int *isum, int *summs) {
    const uint16_t *p = (const uint16_t *)bp;
    int bsum = 0;
    for (int gi = 0; gi < 4; gi++) {
        const int g = half * 4 + gi;
        const uint32_t A = (uint32_t)p[1 + 4 * g] | ((uint32_t)p[2 + 4 * g] << 16);
        const uint32_t B = (uint32_t)p[3 + 4 * g] | ((uint32_t)p[4 + 4 * g] << 16);
        const int ls = 2 * (int)(B >> 28) + 1;
        const int *q8 = (const int *)(yb->qs + 32 * g);
        int sumi = 0;
        for (int k = 0; k < 4; k++) {
            const uint64_t grid = sg[(A >> (8 * k)) & 255];
            const uint32_t signs = ss[(B >> (7 * k)) & 127];
            const uint32_t m0 = sign_mask4(signs & 15), m1 = sign_mask4(signs >> 4);
            /* per byte: m ? -g : g, as (g ^ m) + (m & 1); no carries since g >= 8 */
            const uint32_t v0 = ((uint32_t)grid ^ m0) + (m0 & 0x01010101u);
            const uint32_t v1 = ((uint32_t)(grid >> 32) ^ m1) + (m1 & 0x01010101u);
            sumi = __dp4a((int)v0, q8[2 * k], sumi);
            sumi = __dp4a((int)v1, q8[2 * k + 1], sumi);
        }
        bsum += sumi * ls;
    }
    *dd = d_f16(p[0]) * yb->d;
    *isum = bsum;
    *summs = 0;
}

static __device__ __forceinline__ void blk_q2_K(const uint8_t *bp, const cu_q8_K *yb, int h, float *dall, float *dmin,
                                                int *isum, int *summs) {
    const uint8_t *sc = bp, *qs = bp + 16;
    int is = 0, sm = 0;
    for (int j = 0; j < 4; j++)
        for (int l0 = 0; l0 < 32; l0 += 16) {
            int isuml = 0;
            for (int l4 = 0; l4 < 4; l4++) {
                const uint32_t w = *(const uint32_t *)(qs + 32 * h + l0 + 4 * l4);
                const int codes = (int)((w >> (2 * j)) & 0x03030303u);
                isuml = __dp4a(codes, *(const int *)(yb->qs + 128 * h + 32 * j + l0 + 4 * l4), isuml);
            }
            is += (sc[8 * h + 2 * j + l0 / 16] & 15) * isuml;
        }
    for (int j = 8 * h; j < 8 * h + 8; j++) sm += yb->bsums[j] * (sc[j] >> 4);
    const uint16_t *dp = (const uint16_t *)(bp + 80);
    *dall = yb->d * d_f16(dp[0]);
    *dmin = yb->d * d_f16(dp[1]);
    *isum = is;
    *summs = sm;
}

static __device__ __forceinline__ void q4_scale_min(const uint8_t *S, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = S[j] & 63;
        *m = S[j + 4] & 63;
    } else {
        *sc = (S[j + 4] & 15) | ((S[j - 4] >> 6) << 4);
        *m = (S[j + 4] >> 4) | ((S[j] >> 6) << 4);
    }
}

static __device__ __forceinline__ void blk_q4_K(const uint8_t *bp, const cu_q8_K *yb, int h, float *dall, float *dmin,
                                                int *isum, int *summs) {
    const uint8_t *S = bp + 4, *qs = bp + 16;
    int is = 0, sm = 0;
    for (int j = 4 * h; j < 4 * h + 4; j++) {
        int sc, m, isuml = 0;
        q4_scale_min(S, j, &sc, &m);
        const uint8_t *q = qs + 32 * (j / 2);
        const int shift = (j & 1) * 4;
        for (int l4 = 0; l4 < 8; l4++) {
            const uint32_t w = *(const uint32_t *)(q + 4 * l4);
            isuml = __dp4a((int)((w >> shift) & 0x0f0f0f0fu), *(const int *)(yb->qs + 32 * j + 4 * l4), isuml);
        }
        is += sc * isuml;
        sm += m * (yb->bsums[2 * j] + yb->bsums[2 * j + 1]);
    }
    const uint16_t *dp = (const uint16_t *)bp;
    *dall = yb->d * d_f16(dp[0]);
    *dmin = yb->d * d_f16(dp[1]);
    *isum = is;
    *summs = sm;
}

template <int TYPE, int STAGE>
static __global__ void k_mv_experts(const uint8_t *W, size_t rb, int64_t nb, int64_t rows, const int32_t *sel,
                                    int x_div, const cu_q8_K *xq, float *y) {
    __shared__ uint64_t sg[256];
    __shared__ uint8_t ss[128];
    /* With STAGE, 16 blocks of the row at a time come in with coalesced
     * 16-byte loads into the warp's shared buffer. */
    __shared__ __align__(16) uint8_t sbuf[STAGE ? 8 : 1][STAGE ? 16 * 144 : 16];
    if (TYPE == DS4_TYPE_IQ2_XXS) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) sg[i] = c_iq2_grid[i];
        for (int i = threadIdx.x; i < 128; i += blockDim.x) ss[i] = c_iq2_signs[i];
        __syncthreads();
    }
    const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31, pair = blockIdx.y;
    if (row >= rows) return;
    const int64_t e = sel[pair];
    const size_t bbytes = TYPE == DS4_TYPE_IQ2_XXS ? 66 : (TYPE == DS4_TYPE_Q2_K ? 84 : 144);
    const uint8_t *wr = W + ((size_t)e * rows + row) * rb;
    const cu_q8_K *x = xq + (int64_t)(pair / x_div) * nb;
    float acc = 0.0f;
    uint8_t *sw = sbuf[STAGE ? threadIdx.x / 32 : 0];
    for (int64_t c = 0; c < nb; c += 16) {
        const int64_t b = c + lane / 2;
        const int half = lane & 1;
        float d1 = 0.0f, d2 = 0.0f;
        int is = 0, sm = 0;
        const uint8_t *bp = wr + b * bbytes;
        if (STAGE) {
            const int nblk = nb - c < 16 ? (int)(nb - c) : 16;
            const int n16 = (int)((nblk * bbytes + 15) / 16);
            const uint4 *src = (const uint4 *)(wr + c * bbytes);
            for (int k = lane; k < n16; k += 32) ((uint4 *)sw)[k] = __ldg(src + k);
            __syncwarp();
            bp = sw + (lane / 2) * bbytes;
        }
        if (b < nb) {
            if (TYPE == DS4_TYPE_IQ2_XXS) blk_iq2(bp, x + b, half, sg, ss, &d1, &is, &sm);
            else if (TYPE == DS4_TYPE_Q2_K) blk_q2_K(bp, x + b, half, &d1, &d2, &is, &sm);
            else blk_q4_K(bp, x + b, half, &d1, &d2, &is, &sm);
        }
        if (STAGE) __syncwarp();
        is += __shfl_xor_sync(FULL, is, 1);
        sm += __shfl_xor_sync(FULL, sm, 1);
        const int lim = nb - c < 16 ? (int)(nb - c) : 16;
        for (int l = 0; l < lim; l++) {
            const float a = __shfl_sync(FULL, d1, 2 * l), bm = __shfl_sync(FULL, d2, 2 * l);
            const int ia = __shfl_sync(FULL, is, 2 * l), ib = __shfl_sync(FULL, sm, 2 * l);
            if (TYPE == DS4_TYPE_IQ2_XXS) acc += a * (float)ia;
            else acc += a * (float)ia - bm * (float)ib;
        }
    }
    if (lane == 0) y[(int64_t)pair * rows + row] = TYPE == DS4_TYPE_IQ2_XXS ? 0.125f * acc : acc;
}

extern "C" void ds4cu_matvec_experts(uint32_t type, const void *W, size_t row_bytes, int64_t in, int64_t rows,
                                     const int32_t *sel, int pairs, int x_div, const void *xq, float *y) {
    tables_init();
    if (pairs <= 0) return;
    const dim3 grid(cdiv(rows, 8), pairs);
    const int64_t nb = in / 256;
    const uint8_t *w = (const uint8_t *)W;
    const cu_q8_K *x = (const cu_q8_K *)xq;
    const int st = ((uintptr_t)W & 15) == 0 && (row_bytes & 15) == 0;
#define EXPERTS(T) \
    (st ? k_mv_experts<T, 1><<<grid, 256, 0, ds4cu_s>>>(w, row_bytes, nb, rows, sel, x_div, x, y) \
        : k_mv_experts<T, 0><<<grid, 256, 0, ds4cu_s>>>(w, row_bytes, nb, rows, sel, x_div, x, y))
    if (type == DS4_TYPE_IQ2_XXS) EXPERTS(DS4_TYPE_IQ2_XXS);
    else if (type == DS4_TYPE_Q2_K) EXPERTS(DS4_TYPE_Q2_K);
    else EXPERTS(DS4_TYPE_Q4_K);
#undef EXPERTS
    ds4cu_after("matvec_experts");
}

/* ================= decode (one token) =================
 * At batch 1 a mat-vec is a pure stream of weight bytes, so these kernels are
 * shaped for bytes in flight: a block takes a run of consecutive rows (one
 * contiguous range, ~16 KB), pulls all of it into shared memory with 16-byte
 * asynchronous copies issued at once, and only then decodes. Exactness is kept
 * by splitting the dot in two: every (row, block) term (scale product × exact
 * integer block sum) is computed in parallel into shared memory, then one
 * thread per row adds its terms in block order, as ds4_vec_dot_*_ref does.
 * Several matrices with the same input run in one launch (a job each). */

static __device__ __forceinline__ void cp16(void *s, const void *g) {
    const unsigned sa = (unsigned)__cvta_generic_to_shared(s);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(g));
}
static __device__ __forceinline__ void cp_wait_all(void) {
    asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;\n" ::: "memory");
}
/* n16 16-byte pieces from g to s, every thread of the block issuing its share. */
static __device__ __forceinline__ void stage_rows(uint8_t *s, const uint8_t *g, int n16) {
    for (int i = threadIdx.x; i < n16; i += blockDim.x) cp16(s + 16 * (size_t)i, g + 16 * (size_t)i);
    cp_wait_all();
    __syncthreads();
}

#define DEC_JOBS 6
#define DEC_BYTES 20480 /* weight bytes a block stages, at most */
struct dec_job {
    const uint8_t *W;
    float *y;
    const void *x;   /* activation (q8_0 blocks or floats) */
    int64_t out;     /* rows */
    int64_t rpg;     /* rows per group (Q8_0 grouped input) */
    int64_t in;
    size_t rb;
    int rows_blk;    /* rows per block */
    unsigned blk0;   /* first block of this job */
};
struct dec_jobs { dec_job j[DEC_JOBS]; int n; };

/* The job of this block, picked with constant indices (no local-memory copy). */
static __device__ __forceinline__ dec_job pick_job(const dec_jobs &J) {
    dec_job r = J.j[0];
#pragma unroll
    for (int k = 1; k < DEC_JOBS; k++)
        if (k < J.n && blockIdx.x >= J.j[k].blk0) r = J.j[k];
    return r;
}

static __global__ void __launch_bounds__(256) k_mv_q8_0_dec(dec_jobs J) {
    extern __shared__ __align__(16) uint8_t sm[];
    const dec_job jb = pick_job(J);
    const int nb = (int)(jb.in / 32);
    const int64_t row0 = (int64_t)(blockIdx.x - jb.blk0) * jb.rows_blk;
    const int nr = (int)(jb.out - row0 < jb.rows_blk ? jb.out - row0 : jb.rows_blk);
    const int n16 = (int)((size_t)nr * jb.rb / 16);
    for (int i = threadIdx.x; i < n16; i += blockDim.x) cp16(sm + 16 * (size_t)i, jb.W + (size_t)row0 * jb.rb + 16 * (size_t)i);
    float *terms = (float *)(sm + (size_t)jb.rows_blk * jb.rb); /* nr × (nb+1) */
    /* the block's rows share one input group (dec_plan), whose codes come into shared memory too */
    uint32_t *xw = (uint32_t *)(terms + jb.rows_blk * (nb + 1));
    const uint32_t *xsrc = (const uint32_t *)((const cu_act_q8_0 *)jb.x + (row0 / jb.rpg) * nb);
    for (int i = threadIdx.x; i < nb * 9; i += blockDim.x) xw[i] = __ldg(xsrc + i);
    cp_wait_all();
    __syncthreads();
    const cu_act_q8_0 *xs = (const cu_act_q8_0 *)xw;
    for (int i = threadIdx.x; i < nr * nb; i += blockDim.x) {
        const int r = i / nb, b = i - r * nb;
        /* a 34-byte block is 2-byte aligned: read aligned words, shift the codes out */
        const uint8_t *bp = sm + (size_t)r * jb.rb + (size_t)b * 34;
        const uint32_t *wp = (const uint32_t *)((uintptr_t)bp & ~(uintptr_t)3);
        const int odd = (int)(((uintptr_t)bp >> 1) & 1);
        const uint32_t w0 = wp[0];
        const uint32_t *wq = wp + odd;
        const unsigned sh = odd ? 0u : 16u;
        const int *xi = (const int *)xs[b].qs;
        int isum = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) isum = __dp4a((int)__funnelshift_r(wq[k], wq[k + 1], sh), xi[k], isum);
        terms[r * (nb + 1) + b] = (d_f16((uint16_t)(odd ? w0 >> 16 : w0 & 0xffffu)) * xs[b].d) * (float)isum;
    }
    __syncthreads();
    if ((int)threadIdx.x < nr) {
        const float *t = terms + threadIdx.x * (nb + 1);
        float acc = 0.0f;
        for (int b = 0; b < nb; b++) acc += t[b];
        jb.y[row0 + threadIdx.x] = acc;
    }
}

/* Fast F16 (m->exact < 0 only: sums reassociated): a warp per staged row. */
static __global__ void __launch_bounds__(256) k_mv_f16_dec(dec_jobs J) {
    extern __shared__ __align__(16) uint8_t sm[];
    const dec_job jb = pick_job(J);
    const int64_t row0 = (int64_t)(blockIdx.x - jb.blk0) * jb.rows_blk;
    const int nr = (int)(jb.out - row0 < jb.rows_blk ? jb.out - row0 : jb.rows_blk);
    stage_rows(sm, jb.W + (size_t)row0 * jb.rb, (int)((size_t)nr * jb.rb / 16));
    const int lane = threadIdx.x & 31, n8 = (int)(jb.in / 8);
    const float4 *x4 = (const float4 *)jb.x;
    for (int r = threadIdx.x / 32; r < nr; r += blockDim.x / 32) {
        const uint4 *w4 = (const uint4 *)(sm + (size_t)r * jb.rb);
        float s = 0.0f;
        for (int k = lane; k < n8; k += 32) {
            const uint4 q = w4[k];
            const float4 xa = __ldg(x4 + 2 * k), xb = __ldg(x4 + 2 * k + 1);
            const __half2 *h = (const __half2 *)&q;
            const float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]), f2 = __half22float2(h[2]),
                         f3 = __half22float2(h[3]);
            s += f0.x * xa.x + f0.y * xa.y + f1.x * xa.z + f1.y * xa.w + f2.x * xb.x + f2.y * xb.y + f3.x * xb.z +
                 f3.y * xb.w;
        }
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(FULL, s, o);
        if (lane == 0) jb.y[row0 + r] = s;
    }
}

/* Lays the jobs out over the grid; 0 when some job does not fit the staged
 * shape (16-byte aligned rows of at most DEC_BYTES), so the caller falls back.
 * Q8_0 (x_bytes > 0: the input codes staged per block): a power of two of
 * rows per block that divides the rows per group, so a block reads one group. */
static int dec_plan(dec_jobs *J, size_t term_bytes_per_row, size_t x_bytes_per_block, size_t *smem) {
    unsigned blk = 0;
    *smem = 0;
    for (int k = 0; k < J->n; k++) {
        dec_job *j = &J->j[k];
        if (((uintptr_t)j->W & 15) || (j->rb & 15) || j->rb > DEC_BYTES || j->out < 1) return 0;
        j->rows_blk = (int)(DEC_BYTES / j->rb);
        if (j->rows_blk > 64) j->rows_blk = 64;
        if (x_bytes_per_block) {
            int p = 1;
            while (2 * p <= j->rows_blk) p *= 2;
            while (j->rpg % p) p /= 2;
            j->rows_blk = p;
        }
        j->blk0 = blk;
        blk += cdiv(j->out, j->rows_blk);
        const size_t need = (size_t)j->rows_blk * (j->rb + term_bytes_per_row * (size_t)(j->in / 32 + 1)) +
                            (x_bytes_per_block ? x_bytes_per_block * (size_t)(j->in / 32) : 0);
        if (need > 48 * 1024) return 0;
        if (need > *smem) *smem = need;
    }
    for (int k = J->n; k < DEC_JOBS; k++) J->j[k].blk0 = ~0u;
    return (int)blk;
}

extern "C" int ds4cu_matvec_q8_0_dec(int count, const void *const *W, size_t row_bytes, int64_t in, const int64_t *out,
                                     int groups, const void *xq, float *const *y) {
    if (!ds4cu_mv_q8_0_dc(count, W, row_bytes, in, out, groups, xq, y)) return 0;
    if (count < 1 || count > DEC_JOBS || in % 32) return -1;
    dec_jobs J;
    memset(&J, 0, sizeof J);
    J.n = count;
    for (int k = 0; k < count; k++)
        J.j[k] = dec_job{(const uint8_t *)W[k], y[k], xq, out[k], out[k] / groups, in, row_bytes, 0, 0};
    size_t smem;
    const int blocks = dec_plan(&J, sizeof(float), sizeof(cu_act_q8_0), &smem);
    if (!blocks) return -1;
    k_mv_q8_0_dec<<<blocks, 256, smem, ds4cu_s>>>(J);
    ds4cu_after("matvec_q8_0_dec");
    return 0;
}

extern "C" int ds4cu_matvec_f16_dec(int count, const void *const *W, const size_t *row_bytes, const int64_t *in,
                                    const int64_t *out, const float *const *x, float *const *y) {
    if (!ds4cu_mv_f16_dw(count, W, row_bytes, in, out, x, y)) return 0;
    if (count < 1 || count > DEC_JOBS) return -1;
    dec_jobs J;
    memset(&J, 0, sizeof J);
    J.n = count;
    for (int k = 0; k < count; k++) {
        if (in[k] % 8 || ((uintptr_t)x[k] & 15)) return -1;
        J.j[k] = dec_job{(const uint8_t *)W[k], y[k], x[k], out[k], out[k], in[k], row_bytes[k], 0, 0};
    }
    size_t smem;
    const int blocks = dec_plan(&J, 0, 0, &smem);
    if (!blocks) return -1;
    k_mv_f16_dec<<<blocks, 256, smem, ds4cu_s>>>(J);
    ds4cu_after("matvec_f16_dec");
    return 0;
}

/* Routed experts at decode. A block stages `rows_blk` consecutive rows of the
 * expert matrix of each of its np pairs (np = 1: grid.y runs the pairs, and
 * grid.z picks gate or up, both in one launch; np = K: the down projection,
 * whose block then also adds the K products in pick order and the shared
 * expert's output, exactly as ds4cu_moe_sum, so no separate sum kernel).
 * Two threads per 256-block compute its integer sums as blk_*; one thread per
 * (pair, row) adds the block terms in order. */
template <int TYPE>
static __global__ void __launch_bounds__(256)
    k_ex_dec(const uint8_t *W0, const uint8_t *W1, float *y0, float *y1, size_t rb, int nb, int64_t rows, int rows_blk,
             int np, const int32_t *sel, int x_div, const cu_q8_K *xq, const float *add) {
    extern __shared__ __align__(16) uint8_t sm[];
    __shared__ uint64_t sg[TYPE == DS4_TYPE_IQ2_XXS ? 256 : 1];
    __shared__ uint8_t ss[TYPE == DS4_TYPE_IQ2_XXS ? 128 : 1];
    const uint8_t *W = blockIdx.z ? W1 : W0;
    float *y = blockIdx.z ? y1 : y0;
    const int64_t row0 = (int64_t)blockIdx.x * rows_blk;
    const int nr = (int)(rows - row0 < rows_blk ? rows - row0 : rows_blk);
    const int p0 = blockIdx.y * np;
    const size_t chunk = (size_t)rows_blk * rb; /* staged bytes per pair (stride) */
    for (int p = 0; p < np; p++) {
        const int64_t e = sel[p0 + p];
        const uint8_t *src = W + ((size_t)e * rows + row0) * rb;
        uint8_t *dst = sm + p * chunk;
        const int n16 = (int)((size_t)nr * rb / 16);
        for (int i = threadIdx.x; i < n16; i += blockDim.x) cp16(dst + 16 * (size_t)i, src + 16 * (size_t)i);
    }
    if (TYPE == DS4_TYPE_IQ2_XXS) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) sg[i] = c_iq2_grid[i];
        for (int i = threadIdx.x; i < 128; i += blockDim.x) ss[i] = c_iq2_signs[i];
    }
    const size_t bbytes = TYPE == DS4_TYPE_IQ2_XXS ? 66 : (TYPE == DS4_TYPE_Q2_K ? 84 : 144);
    /* terms: per (pair, row, block) the float factor(s) and integer sum(s) */
    const int T = np * nr * nb;
    float *d1s = (float *)(sm + np * chunk), *d2s = d1s + np * rows_blk * nb;
    int *i1s = (int *)(d2s + np * rows_blk * nb), *i2s = i1s + np * rows_blk * nb;
    /* the activation rows too: the dots read each of their words many times */
    uint32_t *xw = (uint32_t *)(i2s + np * rows_blk * nb);
    const int xrw = nb * (int)(sizeof(cu_q8_K) / 4);
    for (int p = 0; p < np; p++) {
        const uint32_t *src = (const uint32_t *)(xq + (int64_t)((p0 + p) / x_div) * nb);
        for (int i = threadIdx.x; i < xrw; i += blockDim.x) xw[p * xrw + i] = __ldg(src + i);
    }
    const cu_q8_K *xs = (const cu_q8_K *)xw;
    cp_wait_all();
    __syncthreads();
    for (int base = 0; base < 2 * T; base += blockDim.x) { /* uniform trip count: the shuffles see the whole warp */
        const int it = base + (int)threadIdx.x, half = it & 1, t = it >> 1;
        float d1 = 0.0f, d2 = 0.0f;
        int is = 0, sm2 = 0;
        if (t < T) {
            const int p = t / (nr * nb), rem = t - p * nr * nb, r = rem / nb, b = rem - r * nb;
            const uint8_t *bp = sm + p * chunk + (size_t)r * rb + (size_t)b * bbytes;
            const cu_q8_K *x = xs + p * nb + b;
            if (TYPE == DS4_TYPE_IQ2_XXS) blk_iq2(bp, x, half, sg, ss, &d1, &is, &sm2);
            else if (TYPE == DS4_TYPE_Q2_K) blk_q2_K(bp, x, half, &d1, &d2, &is, &sm2);
            else blk_q4_K(bp, x, half, &d1, &d2, &is, &sm2);
        }
        is += __shfl_xor_sync(FULL, is, 1);
        sm2 += __shfl_xor_sync(FULL, sm2, 1);
        if (t < T && !half) {
            const int p = t / (nr * nb), rem = t - p * nr * nb, r = rem / nb, b = rem - r * nb;
            const int o = (p * rows_blk + r) * nb + b;
            d1s[o] = d1;
            d2s[o] = d2;
            i1s[o] = is;
            i2s[o] = sm2;
        }
    }
    __syncthreads();
    if ((int)threadIdx.x >= nr) return;
    const int r = threadIdx.x;
    float sum = 0.0f;
    for (int p = 0; p < np; p++) {
        const int o = (p * rows_blk + r) * nb;
        float acc = 0.0f;
        for (int b = 0; b < nb; b++) {
            if (TYPE == DS4_TYPE_IQ2_XXS) acc += d1s[o + b] * (float)i1s[o + b];
            else acc += d1s[o + b] * (float)i1s[o + b] - d2s[o + b] * (float)i2s[o + b];
        }
        if (TYPE == DS4_TYPE_IQ2_XXS) acc = 0.125f * acc;
        if (np == 1) y[(int64_t)(p0 + p) * rows + row0 + r] = acc;
        else sum += acc;
    }
    if (np > 1) y[row0 + r] = add ? sum + add[row0 + r] : sum;
}

static size_t ex_bbytes(uint32_t type) { return type == DS4_TYPE_IQ2_XXS ? 66 : (type == DS4_TYPE_Q2_K ? 84 : 144); }

/* Shared memory of one block: np staged chunks plus 16 bytes of terms per (pair, row, block). */
static int ex_plan(uint32_t type, size_t rb, int64_t in, int64_t rows, int np, int *rows_blk, size_t *smem) {
    if ((rb & 15) || in % 256 || (size_t)(in / 256) * ex_bbytes(type) != rb || rb * np > DEC_BYTES * 2) return -1;
    int rbk = (int)(DEC_BYTES / (rb * np));
    if (rbk < 1) rbk = 1;
    if (rbk > 64) rbk = 64;
    if (rbk > rows) rbk = (int)rows;
    *rows_blk = rbk;
    *smem = (size_t)np * rbk * (rb + 16 * (size_t)(in / 256)) + (size_t)np * (in / 256) * sizeof(cu_q8_K);
    return *smem <= 48 * 1024 ? 0 : -1;
}

/* DS4_CUDA_EX_OLD=1: the staged k_ex_dec for every type (A/B against ex_dec.cu). */
static int ex_old(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DS4_CUDA_EX_OLD");
        v = e && atoi(e) > 0;
    }
    return v;
}

#define EX_DEC_LAUNCH(T, grid, smem, ...)                                                  \
    do {                                                                                   \
        if ((T) == DS4_TYPE_IQ2_XXS) k_ex_dec<DS4_TYPE_IQ2_XXS><<<grid, 256, smem, ds4cu_s>>>(__VA_ARGS__); \
        else if ((T) == DS4_TYPE_Q2_K) k_ex_dec<DS4_TYPE_Q2_K><<<grid, 256, smem, ds4cu_s>>>(__VA_ARGS__);  \
        else k_ex_dec<DS4_TYPE_Q4_K><<<grid, 256, smem, ds4cu_s>>>(__VA_ARGS__);                             \
    } while (0)

extern "C" int ds4cu_experts_gate_up_dec(uint32_t type, const void *Wg, const void *Wu, size_t row_bytes, int64_t in,
                                         int64_t rows, const int32_t *sel, int pairs, int x_div, const void *xq,
                                         float *g, float *u) {
    if (type == DS4_TYPE_IQ2_XXS && !ex_old() &&
        !ds4cu_ex_iq2_gate_up_dec(Wg, Wu, row_bytes, in, rows, sel, pairs, x_div, xq, g, u))
        return 0;
    int rbk;
    size_t smem;
    if (pairs < 1 || ((uintptr_t)Wg & 15) || ((uintptr_t)Wu & 15) || ex_plan(type, row_bytes, in, rows, 1, &rbk, &smem))
        return -1;
    tables_init();
    const dim3 grid(cdiv(rows, rbk), pairs, 2);
    EX_DEC_LAUNCH(type, grid, smem, (const uint8_t *)Wg, (const uint8_t *)Wu, g, u, row_bytes, (int)(in / 256), rows,
                  rbk, 1, sel, x_div, (const cu_q8_K *)xq, (const float *)NULL);
    ds4cu_after("experts_gate_up_dec");
    return 0;
}

extern "C" int ds4cu_experts_down_sum_dec(uint32_t type, const void *W, size_t row_bytes, int64_t in, int64_t rows,
                                          const int32_t *sel, int K, const void *xq, const float *add, float *out) {
    if (type == DS4_TYPE_Q2_K && !ex_old() && !ds4cu_ex_q2k_down_dec(W, row_bytes, in, rows, sel, K, xq, add, out))
        return 0;
    int rbk;
    size_t smem;
    if (K < 1 || ((uintptr_t)W & 15) || ex_plan(type, row_bytes, in, rows, K, &rbk, &smem)) return -1;
    tables_init();
    const dim3 grid(cdiv(rows, rbk), 1, 1);
    EX_DEC_LAUNCH(type, grid, smem, (const uint8_t *)W, (const uint8_t *)W, out, out, row_bytes, (int)(in / 256), rows,
                  rbk, K, sel, 1, (const cu_q8_K *)xq, add);
    ds4cu_after("experts_down_sum_dec");
    return 0;
}

/* Index-order F16 products at decode (exact mode). Each output is one float
 * chain over its whole row (cpu: ds4_vec_dot_f16_f32_ref), so a row can take
 * no less than its length times an add's latency (~37 us for hc_fn's 16,384);
 * the products themselves are order-free. So one block per row: warps 1-3
 * compute the next tile's products into shared memory (16-byte loads of the
 * row and of x) while lane 0 of warp 0 adds the current tile's in index
 * order. Every row runs at once on its own SM slot, instead of 64 rows per
 * block sharing one block's loads (which left hc_fn at ~490 us a call and the
 * compressor products at ~170 us on the H100). Several matrices per launch,
 * as ds4cu_matvec_f16_dec. */
#define F16C_T 2048
#define F16C_THREADS 128
static __global__ void __launch_bounds__(F16C_THREADS) k_mv_f16_chain(dec_jobs J) {
    __shared__ __align__(16) float P[2][F16C_T];
    const dec_job jb = pick_job(J);
    const int64_t row = (int64_t)(blockIdx.x - jb.blk0), in = jb.in;
    const uint8_t *wr = jb.W + (size_t)row * jb.rb;
    const float *x = (const float *)jb.x;
    const int nt = (int)((in + F16C_T - 1) / F16C_T);
    const bool vec = (in % 8) == 0 && (jb.rb % 16) == 0 && ((uintptr_t)jb.W & 15) == 0 && ((uintptr_t)x & 15) == 0;
    /* the products of tile t into P[t & 1], by the threads from `lo` up */
    auto prod = [&](int t, int lo) {
        const int64_t c0 = (int64_t)t * F16C_T;
        const int len = (int)(in - c0 < F16C_T ? in - c0 : F16C_T), step = F16C_THREADS - lo;
        float *pt = P[t & 1];
        if (vec) {
            const uint4 *w8 = (const uint4 *)(wr + 2 * c0);
            const float4 *x4 = (const float4 *)(x + c0);
#pragma unroll 4
            for (int v = (int)threadIdx.x - lo; v < len / 8; v += step) {
                const uint4 q = __ldg(w8 + v);
                const float4 xa = __ldg(x4 + 2 * v), xb = __ldg(x4 + 2 * v + 1);
                float4 pa, pb;
                pa.x = d_f16((uint16_t)(q.x & 0xffff)) * xa.x;
                pa.y = d_f16((uint16_t)(q.x >> 16)) * xa.y;
                pa.z = d_f16((uint16_t)(q.y & 0xffff)) * xa.z;
                pa.w = d_f16((uint16_t)(q.y >> 16)) * xa.w;
                pb.x = d_f16((uint16_t)(q.z & 0xffff)) * xb.x;
                pb.y = d_f16((uint16_t)(q.z >> 16)) * xb.y;
                pb.z = d_f16((uint16_t)(q.w & 0xffff)) * xb.z;
                pb.w = d_f16((uint16_t)(q.w >> 16)) * xb.w;
                ((float4 *)pt)[2 * v] = pa;
                ((float4 *)pt)[2 * v + 1] = pb;
            }
        } else {
            const uint16_t *w = (const uint16_t *)wr + c0;
            for (int j = (int)threadIdx.x - lo; j < len; j += step) pt[j] = d_f16(w[j]) * __ldg(x + c0 + j);
        }
    };
    prod(0, 0);
    float s = 0.0f;
    for (int t = 0; t < nt; t++) {
        /* P[t & 1] is complete, and the chain of tile t-1 has finished
         * reading P[(t + 1) & 1], which the helpers now refill */
        __syncthreads();
        if (threadIdx.x == 0) {
            const int64_t c0 = (int64_t)t * F16C_T;
            const int len = (int)(in - c0 < F16C_T ? in - c0 : F16C_T);
            const float *pt = P[t & 1];
#pragma unroll 16
            for (int j = 0; j < len; j++) s += pt[j];
        } else if (threadIdx.x >= 32 && t + 1 < nt) {
            prod(t + 1, 32);
        }
    }
    if (threadIdx.x == 0) jb.y[row] = s;
}

extern "C" int ds4cu_matvec_f16_exact_dec(int count, const void *const *W, const size_t *row_bytes, const int64_t *in,
                                          const int64_t *out, const float *const *x, float *const *y) {
    if (count < 1 || count > DEC_JOBS) return -1;
    dec_jobs J;
    memset(&J, 0, sizeof J);
    J.n = count;
    unsigned blk = 0;
    for (int k = 0; k < count; k++) {
        if (in[k] < 1 || (row_bytes[k] & 1) || ((uintptr_t)W[k] & 1) || out[k] < 1 || out[k] > (1 << 24)) return -1;
        J.j[k] = dec_job{(const uint8_t *)W[k], y[k], x[k], out[k], out[k], in[k], row_bytes[k], 1, blk};
        blk += (unsigned)out[k];
    }
    for (int k = count; k < DEC_JOBS; k++) J.j[k].blk0 = ~0u;
    k_mv_f16_chain<<<blk, F16C_THREADS, 0, ds4cu_s>>>(J);
    ds4cu_after("matvec_f16_chain");
    return 0;
}
