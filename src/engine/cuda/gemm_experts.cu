/* gemm_experts.cu - prefill's routed experts, grouped by expert.
 *
 * ds4cu_matvec_experts reads an expert's rows once per (token, expert) pair,
 * so in a batch a popular expert is decoded many times. Here the pairs are
 * first bucketed by expert on the device (ds4cu_experts_group), then one
 * warp takes 16 rows of one expert and applies each decoded weight tile to
 * all of that expert's tokens with int8 tensor cores (gemm_mma.cuh).
 *
 * Exactness: IQ2_XXS grid values (±8, ±25, ±43) and Q2_K codes × 4-bit
 * scales (≤ 45) fit int8 and the activations are Q8_K int8, so every
 * sub-block integer sum is exact. Per output the float steps are those of
 * ds4_vec_dot_iq2_xxs_q8_K_ref / ds4_vec_dot_q2_K_q8_K_ref, blocks in order,
 * taken by the one thread that owns the output: bit-identical to the CPU
 * and to ds4cu_matvec_experts. The order of tokens inside a bucket (atomics)
 * changes nothing but which lane computes an output. Other types (Q4_K) and
 * row counts not a multiple of 16 go to ds4cu_matvec_experts.
 *
 * Weights stream through a per-warp double buffer in shared memory
 * (cp.async, two blocks per stage) so the next blocks' DRAM latency hides
 * behind the current decode; DS4_CUDA_GX_STAGE picks the path (A/B). */
#include <stdlib.h>

#include "engine/cuda/common.cuh"
#include "engine/cuda/gemm.h"
#include "engine/cuda/gemm_mma.cuh"

extern "C" {
#include "quant/quant.h"
}

#define FULL 0xffffffffu
#define GX_NT 4 /* token tiles of 8 per warp pass */

__device__ uint64_t gx_iq2_grid[256];
__device__ uint8_t gx_iq2_signs[128];
/* Per device (each GPU of a split model has its own symbols and table). */
#define GX_DEVS 64
static int gx_tables[GX_DEVS];

/* The bucket table: off[0..X] then list[pairs] (pair ids), grown on demand.
 * Only batches (n > 1) use it, never a captured decode graph. */
static int32_t *gx_ws[GX_DEVS];
static size_t gx_ws_n[GX_DEVS];

static int gx_dev(void) {
    int d = -1;
    return cudaGetDevice(&d) == cudaSuccess && d >= 0 && d < GX_DEVS ? d : -1;
}

static __global__ void k_group(const int32_t *sel, int pairs, int X, int32_t *off, int32_t *list) {
    __shared__ int cnt[257], pos[257];
    for (int i = threadIdx.x; i <= X; i += blockDim.x) cnt[i] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const int e = sel[i];
        if (e >= 0 && e < X) atomicAdd(&cnt[e], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int s = 0;
        for (int e = 0; e < X; e++) { pos[e] = s; off[e] = s; s += cnt[e]; }
        off[X] = s;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const int e = sel[i];
        if (e >= 0 && e < X) list[atomicAdd(&pos[e], 1)] = i;
    }
}

extern "C" const int32_t *ds4cu_experts_group(const int32_t *sel, int pairs, int X) {
    const int d = gx_dev();
    if (pairs <= 0 || X <= 0 || X > 256 || d < 0 || !ds4cu_gemm_enabled()) return NULL;
    const size_t need = (size_t)X + 1 + (size_t)pairs;
    if (need > gx_ws_n[d]) {
        ds4cu_free(gx_ws[d]);
        gx_ws_n[d] = 0;
        if (!(gx_ws[d] = (int32_t *)ds4cu_malloc(sizeof(int32_t) * need))) return NULL;
        gx_ws_n[d] = need;
    }
    k_group<<<1, 1024, 0, ds4cu_s>>>(sel, pairs, X, gx_ws[d], gx_ws[d] + X + 1);
    ds4cu_after("experts_group");
    return gx_ws[d];
}

/* Four signed int8 weights: half `h` of grid entry k of a 32-group whose
 * index word is q and sign/scale word s (as ds4_vec_dot_iq2_xxs_q8_K_ref).
 * sm[i]: the 8 sign bits of ksigns[i] widened to byte masks. */
static __device__ __forceinline__ uint32_t iq2_word(const uint64_t *sg, const uint64_t *sm, uint32_t q, uint32_t s,
                                                    int k, int h) {
    const uint64_t grid = sg[(q >> (8 * k)) & 255];
    const uint64_t mask = sm[(s >> (7 * k)) & 127];
    const uint32_t m = h ? (uint32_t)(mask >> 32) : (uint32_t)mask;
    const uint32_t g = h ? (uint32_t)(grid >> 32) : (uint32_t)grid;
    return (g ^ m) + (m & 0x01010101u); /* -g where the sign is set; g >= 8, no carries */
}

/* Weight reads: from the warp's staged copy in shared memory (plain loads)
 * or straight from global memory (read-only path). */
template <int STAGE> static __device__ __forceinline__ uint32_t w16(const uint16_t *p) {
    return STAGE ? (uint32_t)*p : (uint32_t)__ldg(p);
}
template <int STAGE> static __device__ __forceinline__ uint32_t w32(const uint32_t *p) { return STAGE ? *p : __ldg(p); }

/* One weight block (bA: row gid, bB: row gid+8) against the pass's tokens:
 * integer sums on the tensor core, then each owned output's float step. */
template <int TYPE, int STAGE>
static __device__ __forceinline__ void grouped_block(const uint8_t *bA, const uint8_t *bB, int b, int rem, int tid,
                                                     const uint64_t *sg, const uint64_t *ss,
                                                     const cu_q8_K *const (&xb)[GX_NT],
                                                     const cu_q8_K *const (&xo)[GX_NT][2], float (&acc)[GX_NT][4]) {
    int is[GX_NT][4];
#pragma unroll
    for (int j = 0; j < GX_NT; j++)
#pragma unroll
        for (int q = 0; q < 4; q++) is[j][q] = 0;
    if (TYPE == DS4_TYPE_IQ2_XXS) {
        const uint16_t *pA = (const uint16_t *)bA, *pB = (const uint16_t *)bB;
#pragma unroll 2
        for (int g = 0; g < 8; g++) {
            const uint32_t qA = w16<STAGE>(pA + 1 + 4 * g) | (w16<STAGE>(pA + 2 + 4 * g) << 16);
            const uint32_t sA = w16<STAGE>(pA + 3 + 4 * g) | (w16<STAGE>(pA + 4 + 4 * g) << 16);
            const uint32_t qB = w16<STAGE>(pB + 1 + 4 * g) | (w16<STAGE>(pB + 2 + 4 * g) << 16);
            const uint32_t sB = w16<STAGE>(pB + 3 + 4 * g) | (w16<STAGE>(pB + 4 + 4 * g) << 16);
            const uint32_t a[4] = {iq2_word(sg, ss, qA, sA, tid >> 1, tid & 1), iq2_word(sg, ss, qB, sB, tid >> 1, tid & 1),
                                   iq2_word(sg, ss, qA, sA, 2 + (tid >> 1), tid & 1),
                                   iq2_word(sg, ss, qB, sB, 2 + (tid >> 1), tid & 1)};
            const int lsA = 2 * (int)(sA >> 28) + 1, lsB = 2 * (int)(sB >> 28) + 1;
#pragma unroll
            for (int j = 0; j < GX_NT; j++) {
                if (8 * j >= rem) break;
                uint32_t b0 = 0, b1 = 0;
                if (xb[j]) {
                    const int8_t *q8 = xb[j][b].qs + 32 * g;
                    b0 = *(const uint32_t *)(q8 + 4 * tid);
                    b1 = *(const uint32_t *)(q8 + 16 + 4 * tid);
                }
                int c[4] = {0, 0, 0, 0};
                mma_s8(c, a, b0, b1);
                is[j][0] += lsA * c[0];
                is[j][1] += lsA * c[1];
                is[j][2] += lsB * c[2];
                is[j][3] += lsB * c[3];
            }
        }
        const float dA = d_f16((uint16_t)w16<STAGE>(pA)), dB = d_f16((uint16_t)w16<STAGE>(pB));
#pragma unroll
        for (int j = 0; j < GX_NT; j++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                if (xo[j][h]) {
                    const float yd = xo[j][h][b].d;
                    acc[j][h] += (dA * yd) * (float)is[j][h];
                    acc[j][2 + h] += (dB * yd) * (float)is[j][2 + h];
                }
    } else { /* Q2_K: scales[16] qs[64] d dmin */
        uint32_t scA[4], scB[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            scA[i] = w32<STAGE>((const uint32_t *)bA + i);
            scB[i] = w32<STAGE>((const uint32_t *)bB + i);
        }
#pragma unroll
        for (int g = 0; g < 8; g++) {
            const int h = g >> 2, j2 = g & 3, s0 = 8 * h + 2 * j2;
            const uint32_t sAl = (scA[s0 / 4] >> (8 * (s0 % 4))) & 15, sAh = (scA[s0 / 4] >> (8 * (s0 % 4) + 8)) & 15;
            const uint32_t sBl = (scB[s0 / 4] >> (8 * (s0 % 4))) & 15, sBh = (scB[s0 / 4] >> (8 * (s0 % 4) + 8)) & 15;
            const uint32_t *qA = (const uint32_t *)(bA + 16 + 32 * h), *qB = (const uint32_t *)(bB + 16 + 32 * h);
            const uint32_t a[4] = {((w32<STAGE>(qA + tid) >> (2 * j2)) & 0x03030303u) * sAl,
                                   ((w32<STAGE>(qB + tid) >> (2 * j2)) & 0x03030303u) * sBl,
                                   ((w32<STAGE>(qA + 4 + tid) >> (2 * j2)) & 0x03030303u) * sAh,
                                   ((w32<STAGE>(qB + 4 + tid) >> (2 * j2)) & 0x03030303u) * sBh};
#pragma unroll
            for (int j = 0; j < GX_NT; j++) {
                if (8 * j >= rem) break;
                uint32_t b0 = 0, b1 = 0;
                if (xb[j]) {
                    const int8_t *q8 = xb[j][b].qs + 32 * g;
                    b0 = *(const uint32_t *)(q8 + 4 * tid);
                    b1 = *(const uint32_t *)(q8 + 16 + 4 * tid);
                }
                mma_s8(is[j], a, b0, b1);
            }
        }
        const uint16_t *dpA = (const uint16_t *)(bA + 80), *dpB = (const uint16_t *)(bB + 80);
        const float dA = d_f16((uint16_t)w16<STAGE>(dpA)), mA = d_f16((uint16_t)w16<STAGE>(dpA + 1));
        const float dB = d_f16((uint16_t)w16<STAGE>(dpB)), mB = d_f16((uint16_t)w16<STAGE>(dpB + 1));
#pragma unroll
        for (int j = 0; j < GX_NT; j++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                if (xo[j][h]) {
                    const cu_q8_K *yb = xo[j][h] + b;
                    int smA = 0, smB = 0;
#pragma unroll
                    for (int k = 0; k < 16; k++) {
                        const int bs = yb->bsums[k];
                        smA += bs * (int)((scA[k / 4] >> (8 * (k % 4) + 4)) & 15);
                        smB += bs * (int)((scB[k / 4] >> (8 * (k % 4) + 4)) & 15);
                    }
                    const float yd = yb->d;
                    const float dallA = yd * dA, dminA = yd * mA, dallB = yd * dB, dminB = yd * mB;
                    acc[j][h] += dallA * (float)is[j][h] - dminA * (float)smA;
                    acc[j][2 + h] += dallB * (float)is[j][2 + h] - dminB * (float)smB;
                }
    }
}

/* With STAGE, each warp copies its 16 rows' next two blocks into shared
 * memory with cp.async while it decodes the current two (double buffer),
 * so the weight stream's DRAM latency overlaps the decode. */
#define GX_SW 42 /* words per staged row: two blocks of at most 84 bytes */
static __device__ __forceinline__ void stage_pair(uint32_t *buf, const uint8_t *w0, size_t rb, int words, size_t off,
                                                  int lane) {
    for (int k = lane; k < 16 * words; k += 32) {
        const int r = k / words, o = k % words;
        const uint32_t *src = (const uint32_t *)(w0 + (size_t)r * rb + off) + o;
        const unsigned dst = (unsigned)__cvta_generic_to_shared(buf + r * GX_SW + o);
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src) : "memory");
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/* Grid (rows/64, X): block = 4 warps of 16 rows of expert blockIdx.y.
 * STAGE 2 is STAGE 1 held to 128 registers (4 blocks per SM, a few spills). */
template <int TYPE, int STAGE>
static __global__ void __launch_bounds__(128, STAGE == 2 ? 4 : 1) k_grouped(const uint8_t *W, size_t rb, int nb, int rows,
                                                        const int32_t *off, const int32_t *list, int x_div,
                                                        const cu_q8_K *xq, float *y) {
    __shared__ uint64_t sg[256], ss[128];
    __shared__ __align__(16) uint32_t wbuf[STAGE ? 4 : 1][STAGE ? 2 * 16 * GX_SW : 1];
    const int e = blockIdx.y;
    const int beg = off[e], cnt = off[e + 1] - beg;
    if (cnt <= 0) return; /* whole block */
    if (TYPE == DS4_TYPE_IQ2_XXS) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) sg[i] = gx_iq2_grid[i];
        for (int i = threadIdx.x; i < 128; i += blockDim.x) {
            const uint32_t b = gx_iq2_signs[i];
            uint64_t m = 0;
            for (int j = 0; j < 8; j++) m |= (b >> j & 1) ? 0xffull << (8 * j) : 0ull;
            ss[i] = m;
        }
        __syncthreads();
    }
    const int lane = threadIdx.x & 31, gid = lane >> 2, tid = lane & 3;
    const int row0 = (blockIdx.x * 4 + threadIdx.x / 32) * 16;
    if (row0 >= rows) return; /* whole warp */
    const int rA = row0 + gid, rB = rA + 8;
    const size_t bbytes = TYPE == DS4_TYPE_IQ2_XXS ? 66 : 84;
    const int pwords = (int)(2 * bbytes / 4);
    const uint8_t *w0 = W + ((size_t)e * rows + row0) * rb;
    const uint8_t *wA = w0 + (size_t)gid * rb, *wB = wA + 8 * rb;
    uint32_t *buf = wbuf[STAGE ? threadIdx.x / 32 : 0];
    for (int c0 = 0; c0 < cnt; c0 += 8 * GX_NT) {
        const int rem = cnt - c0;
        const cu_q8_K *xb[GX_NT], *xo[GX_NT][2];
        int po[GX_NT][2];
#pragma unroll
        for (int j = 0; j < GX_NT; j++) {
            const int k = c0 + 8 * j + gid;
            xb[j] = k < cnt ? xq + (size_t)(list[beg + k] / x_div) * nb : NULL;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int kk = c0 + 8 * j + 2 * tid + h;
                po[j][h] = kk < cnt ? list[beg + kk] : -1;
                xo[j][h] = kk < cnt ? xq + (size_t)(po[j][h] / x_div) * nb : NULL;
            }
        }
        float acc[GX_NT][4];
#pragma unroll
        for (int j = 0; j < GX_NT; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[j][q] = 0.0f;
        if (STAGE) {
            const int np = nb / 2;
            stage_pair(buf, w0, rb, pwords, 0, lane);
            for (int p = 0; p < np; p++) {
                if (p + 1 < np) {
                    stage_pair(buf + ((p + 1) & 1) * 16 * GX_SW, w0, rb, pwords, (size_t)(p + 1) * 2 * bbytes, lane);
                    asm volatile("cp.async.wait_group 1;\n" ::: "memory");
                } else {
                    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
                }
                __syncwarp();
                const uint8_t *sA = (const uint8_t *)(buf + (p & 1) * 16 * GX_SW + gid * GX_SW);
                const uint8_t *sB = sA + 8 * GX_SW * 4;
                grouped_block<TYPE, 1>(sA, sB, 2 * p, rem, tid, sg, ss, xb, xo, acc);
                grouped_block<TYPE, 1>(sA + bbytes, sB + bbytes, 2 * p + 1, rem, tid, sg, ss, xb, xo, acc);
                __syncwarp(); /* this buffer is refilled two pairs on */
            }
        } else {
            for (int b = 0; b < nb; b++)
                grouped_block<TYPE, 0>(wA + (size_t)b * bbytes, wB + (size_t)b * bbytes, b, rem, tid, sg, ss, xb, xo,
                                       acc);
        }
#pragma unroll
        for (int j = 0; j < GX_NT; j++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                if (po[j][h] >= 0) {
                    const float sA = TYPE == DS4_TYPE_IQ2_XXS ? 0.125f * acc[j][h] : acc[j][h];
                    const float sB = TYPE == DS4_TYPE_IQ2_XXS ? 0.125f * acc[j][2 + h] : acc[j][2 + h];
                    y[(size_t)po[j][h] * rows + rA] = sA;
                    y[(size_t)po[j][h] * rows + rB] = sB;
                }
    }
}

/* DS4_CUDA_GX_STAGE=0 (unstaged), 1 (staged) or 2 (staged, 128 registers,
 * the default: on an H100 prefill at 2k 3198 / 3436 / 3694 tok/s for 0 / 1 / 2,
 * 8-layer synth, 256-token chunks); read at every launch so a test can run each. */
static int gx_stage(void) {
    const char *e = getenv("DS4_CUDA_GX_STAGE");
    const int v = e ? atoi(e) : 2;
    return v >= 0 && v <= 2 ? v : 2;
}

extern "C" int ds4cu_experts_grouped_ok(uint32_t type, int64_t in, int64_t rows, size_t row_bytes) {
    return (type == DS4_TYPE_IQ2_XXS || type == DS4_TYPE_Q2_K) && in % 256 == 0 && rows % 16 == 0 &&
           (type != DS4_TYPE_Q2_K || row_bytes % 4 == 0);
}

extern "C" void ds4cu_experts_gemm(uint32_t type, const void *W, size_t row_bytes, int64_t in, int64_t rows,
                                   const int32_t *sel, int pairs, int x_div, const void *xq, float *y,
                                   const int32_t *grp, int X) {
    if (pairs <= 0) return;
    if (!grp || !ds4cu_experts_grouped_ok(type, in, rows, row_bytes) || ((uintptr_t)W & 3)) {
        ds4cu_matvec_experts(type, W, row_bytes, in, rows, sel, pairs, x_div, xq, y);
        return;
    }
    const int d = gx_dev();
    if (d >= 0 && !gx_tables[d]) {
        cudaMemcpyToSymbol(gx_iq2_grid, ds4_iq2xxs_grid, sizeof(uint64_t) * 256);
        cudaMemcpyToSymbol(gx_iq2_signs, ds4_ksigns_iq2xs, 128);
        gx_tables[d] = 1;
    }
    const dim3 grid(cdiv(rows, 64), (unsigned)X);
    const uint8_t *w = (const uint8_t *)W;
    const cu_q8_K *x = (const cu_q8_K *)xq;
    const int nb = (int)(in / 256);
    /* Staging copies 4-byte words of block pairs: rows and pairs 4-aligned. */
    const int st = nb % 2 == 0 && ((uintptr_t)W & 3) == 0 && (row_bytes & 3) == 0 ? gx_stage() : 0;
    const int32_t *lst = grp + X + 1;
#define GROUPED(T, S) k_grouped<T, S><<<grid, 128, 0, ds4cu_s>>>(w, row_bytes, nb, (int)rows, grp, lst, x_div, x, y)
    if (type == DS4_TYPE_IQ2_XXS) {
        if (st == 2) GROUPED(DS4_TYPE_IQ2_XXS, 2);
        else if (st) GROUPED(DS4_TYPE_IQ2_XXS, 1);
        else GROUPED(DS4_TYPE_IQ2_XXS, 0);
    } else {
        if (st == 2) GROUPED(DS4_TYPE_Q2_K, 2);
        else if (st) GROUPED(DS4_TYPE_Q2_K, 1);
        else GROUPED(DS4_TYPE_Q2_K, 0);
    }
#undef GROUPED
    ds4cu_after("experts_gemm");
}
