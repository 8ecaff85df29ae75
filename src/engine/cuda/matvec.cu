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
