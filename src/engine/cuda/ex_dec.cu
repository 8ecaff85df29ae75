/* ex_dec.cu - the routed experts of one decoded token on the real model's
 * formats: IQ2_XXS gate+up (6 pairs x 2 matrices of 2048 rows of 4096) and
 * Q2_K down with the in-order sum over picks (4096 rows of 2048 x 6).
 *
 * Why a kernel of its own: the staged k_ex_dec (matvec.cu) loads a block's
 * rows, then decodes, then adds, one phase after the other, in ~1.4 waves of
 * blocks that each re-read the activation and rebuild the IQ2 tables, and its
 * table look-ups collide in shared-memory banks: ~0.7 TB/s. Here the grid is
 * persistent (every warp owns the same number of rows) and each warp streams
 * its rows through its own ring of shared buffers with asynchronous 16-byte
 * copies, NS-1 rows ahead of the one it decodes, so bytes stay in flight
 * while it computes. Gate/up keep the activation codes a lane needs in
 * registers for all rows; the IQ2 grid and sign masks are replicated 16
 * times, copy c at bank pair c, so a half-warp's random 8-byte look-ups never
 * collide. On an H100 (8-layer model, bench/RESULTS.md) gate+up take 27.6 us
 * (0.94 TB/s; staged 37.9) and down 14.4 us (1.15 TB/s; staged 22.7): they
 * are bound by instructions, not bytes (IQ2_XXS costs ~12-15 per 8 weights:
 * two look-ups, their offsets, the signs, 4 dp4a), which is why the row loop
 * carries no divisions and the offsets are a byte_perm or shift-and-mask.
 * The first-call set-up (tables, shared-memory opt-in) runs outside graph
 * capture: the engine captures from a session's second decode step.
 *
 * Exactness: every block's integer sum is exact in any order; the float steps
 * are ds4_vec_dot_*_ref's (scale product times float(int sum), added in block
 * order by one lane from shared memory; down: the picks' dots added in pick
 * order, then add[]), so the results are bit-identical to the CPU. */
#include <string.h>

#include "engine/cuda/common.cuh"

extern "C" {
#include "quant/quant.h"
}

#define FULL 0xffffffffu
#define EXT_COPIES 16 /* table copies: one per bank pair of a half-warp */

__device__ uint64_t x_iq2_grid[256];
__device__ uint8_t x_iq2_signs[128];
static int x_tables_ready[64]; /* per device */

static int x_tables_init(void) {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return -1;
    if (x_tables_ready[dev]) return 0;
    if (cudaMemcpyToSymbol(x_iq2_grid, ds4_iq2xxs_grid, sizeof(uint64_t) * 256) != cudaSuccess ||
        cudaMemcpyToSymbol(x_iq2_signs, ds4_ksigns_iq2xs, 128) != cudaSuccess)
        return -1;
    x_tables_ready[dev] = 1;
    return 0;
}

static __device__ __forceinline__ void x_cp16(void *s, const void *g) {
    const unsigned sa = (unsigned)__cvta_generic_to_shared(s);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(g));
}
static __device__ __forceinline__ void x_commit(void) { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> static __device__ __forceinline__ void x_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
/* One row (rb bytes, 16-byte aligned) into a ring slot, the warp's lanes sharing it. */
static __device__ __forceinline__ void x_row(uint8_t *dst, const uint8_t *src, int n16, int lane) {
    for (int k = lane; k < n16; k += 32) x_cp16(dst + 16 * k, src + 16 * k);
}

/* Bytes 0xff where the sign bit is set, for 8 signs. */
static __device__ __forceinline__ uint64_t x_sign_mask8(uint32_t s) {
    uint64_t m = 0;
    for (int j = 0; j < 8; j++)
        if ((s >> j) & 1) m |= (uint64_t)0xff << (8 * j);
    return m;
}

/* ---------------- IQ2_XXS gate + up ----------------
 * Lane l of a warp owns half h = l & 1 of 256-block b = l >> 1 of every row
 * (nb <= 16): 4 groups of 32 codes. Signs are applied through the identity
 * sum(s*g*q) = dp4a(g ^ m, q) - dp4a(m, q) for byte masks m (0xff where
 * negative, read as -1), both exact integer sums. */
#define XG_WARPS 12
#define XG_NS 4
#define XG_TS 32768 /* byte offset of the sign masks in shared memory */
struct xg_args {
    const uint8_t *W0, *W1;
    float *y0, *y1;
    int rb, nb;
    int64_t rows;
    int pairs, x_div, per_warp;
    const int32_t *sel;
    const cu_q8_K *xq;
};

/* Position of one item (row r of pair p of matrix z), stepped without divisions. */
struct xg_cur {
    int z, p;
    int64_t r;
};
static __device__ __forceinline__ void xg_next(xg_cur &c, const xg_args &a) {
    if (++c.r == a.rows) {
        c.r = 0;
        if (++c.p == a.pairs) {
            c.p = 0;
            c.z++;
        }
    }
}

static __global__ void __launch_bounds__(32 * XG_WARPS, 2) k_ex_iq2_gu(const xg_args a) {
    extern __shared__ __align__(16) uint8_t smx[];
    /* grid at byte 0: entry i, copy c at (i << 7) | (c << 3); sign masks the same from XG_TS */
    float *terms = (float *)(smx + XG_TS + 128 * 128 + 256); /* [warps][32] */
    uint8_t *ring = (uint8_t *)(terms + 32 * XG_WARPS);
    const int lane = threadIdx.x & 31, wib = threadIdx.x >> 5;
    const int64_t gw = (int64_t)blockIdx.x * XG_WARPS + wib;
    const int64_t N = 2 * (int64_t)a.pairs * a.rows;
    const int64_t i0 = gw * a.per_warp;
    const int cnt = (int)(i0 >= N ? 0 : (N - i0 < a.per_warp ? N - i0 : a.per_warp));
    uint8_t *myring = ring + (size_t)wib * XG_NS * a.rb;
    float *myterms = terms + 32 * wib;
    const int n16 = a.rb / 16;
    xg_cur cc; /* the item being decoded */
    {
        const int64_t zp = i0 / a.rows;
        cc.r = i0 - zp * a.rows;
        cc.z = (int)(zp / a.pairs);
        cc.p = (int)(zp - (int64_t)cc.z * a.pairs);
    }
    xg_cur ci = cc; /* the next item to fetch */
    auto issue = [&](int j) {
        const uint8_t *src = (ci.z ? a.W1 : a.W0) + ((size_t)__ldg(a.sel + ci.p) * a.rows + ci.r) * a.rb;
        x_row(myring + (size_t)(j % XG_NS) * a.rb, src, n16, lane);
        xg_next(ci, a);
    };
    /* the first rows are on their way while the tables are built */
    for (int s = 0; s < XG_NS - 1; s++) {
        if (s < cnt) issue(s);
        x_commit();
    }
    for (int i = threadIdx.x; i < 256 * EXT_COPIES; i += blockDim.x)
        ((uint64_t *)smx)[i] = x_iq2_grid[i / EXT_COPIES];
    for (int i = threadIdx.x; i < 128 * EXT_COPIES; i += blockDim.x)
        ((uint64_t *)(smx + XG_TS))[i] = x_sign_mask8(x_iq2_signs[i / EXT_COPIES]);
    __syncthreads();
    if (!cnt) return;
    const int b = lane >> 1, h = lane & 1, act = b < a.nb;
    const uint8_t *tgl = smx + ((lane & (EXT_COPIES - 1)) << 3); /* this lane's copies */
    const uint8_t *tsl = tgl + XG_TS;
    const int o = 66 * b + 2 + 32 * h, wb = o & ~3;
    const unsigned sh = (o & 2) ? 16u : 0u;
    int xr = -1;
    int xv[32];
    float xd = 0.0f;
    for (int j = 0; j < cnt; j++) {
        if (j + XG_NS - 1 < cnt) issue(j + XG_NS - 1);
        x_commit();
        const int want = a.x_div == 1 ? cc.p : cc.p / a.x_div;
        if (want != xr) { /* the activation row of this pair, kept in registers */
            xr = want;
            if (act) {
                const cu_q8_K *x = a.xq + (int64_t)xr * a.nb + b;
                const int *q = (const int *)(x->qs + 128 * h);
#pragma unroll
                for (int k = 0; k < 32; k++) xv[k] = __ldg(q + k);
                xd = __ldg(&x->d);
            }
        }
        x_wait<XG_NS - 1>();
        __syncwarp();
        const uint8_t *row = myring + (size_t)(j % XG_NS) * a.rb;
        int bsum = 0;
        float dw = 0.0f;
        if (act) {
            uint32_t w[9];
#pragma unroll
            for (int k = 0; k < 9; k++) w[k] = *(const uint32_t *)(row + wb + 4 * k);
            dw = d_f16(*(const uint16_t *)(row + 66 * b));
#pragma unroll
            for (int gi = 0; gi < 4; gi++) {
                const uint32_t A = __funnelshift_r(w[2 * gi], w[2 * gi + 1], sh);
                const uint32_t B = __funnelshift_r(w[2 * gi + 1], w[2 * gi + 2], sh);
                int s = 0, c = 0;
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const uint2 g = *(const uint2 *)(tgl + (__byte_perm(A, 0, 0x4440 | k) << 7));
                    const uint2 m = *(const uint2 *)(tsl + (k ? (B >> (7 * k - 7)) & 0x3f80u : (B << 7) & 0x3f80u));
                    const int x0 = xv[8 * gi + 2 * k], x1 = xv[8 * gi + 2 * k + 1];
                    s = __dp4a((int)(g.x ^ m.x), x0, s);
                    s = __dp4a((int)(g.y ^ m.y), x1, s);
                    c = __dp4a((int)m.x, x0, c);
                    c = __dp4a((int)m.y, x1, c);
                }
                bsum += (s - c) * (int)(2 * (B >> 28) + 1);
            }
        }
        bsum += __shfl_xor_sync(FULL, bsum, 1);
        if (act && !h) myterms[b] = (dw * xd) * (float)bsum;
        __syncwarp(); /* terms written; every lane is done with the slot refilled next */
        if (lane == 0) {
            float acc = 0.0f;
            int k = 0;
            for (; k + 4 <= a.nb; k += 4) {
                const float4 t4 = *(const float4 *)(myterms + k);
                acc += t4.x;
                acc += t4.y;
                acc += t4.z;
                acc += t4.w;
            }
            for (; k < a.nb; k++) acc += myterms[k];
            (cc.z ? a.y1 : a.y0)[(int64_t)cc.p * a.rows + cc.r] = 0.125f * acc;
        }
        xg_next(cc, a);
        __syncwarp(); /* lane 0 has read the terms before they are rewritten */
    }
}

/* ---------------- Q2_K down + sum over picks ----------------
 * A warp owns whole output rows: for row r it streams the K picks' rows r
 * (one ring slot each) and lane l handles quarter q = l & 3 of 256-block
 * b = l >> 2 (nb <= 8): half h = q >> 1 of the block, codes 16·(q & 1) ..
 * +16 of each of the 4 shifts. The activation codes of all K pairs sit in
 * shared memory laid out per lane ([pair][shift][lane] 16 bytes), so each
 * read is one conflict-free 16-byte access. */
#define XD_WARPS 16
#define XD_NS 6
#define XD_MAXK 8
struct xd_args {
    const uint8_t *W;
    float *out;
    const float *add;
    int rb, nb, K, per_warp;
    int64_t rows;
    const int32_t *sel;
    const cu_q8_K *xq;
};

/* Unsigned codes times signed activations: dp4a.u32.s32 (the masked 2-bit
 * fields below stay in place, up to 0xc0, which a signed byte cannot hold). */
static __device__ __forceinline__ int x_dp4a_us(uint32_t a, int b, int c) {
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

static __global__ void __launch_bounds__(32 * XD_WARPS, 2) k_ex_q2k_down(const xd_args a) {
    extern __shared__ __align__(16) uint8_t smx[];
    int4 *xq4 = (int4 *)smx;                      /* [K][4][32] */
    int4 *xbs = xq4 + XD_MAXK * 4 * 32;           /* [K][32]: 4 bsums (int) */
    float *xdd = (float *)(xbs + XD_MAXK * 32);   /* [K][8] */
    float *terms = xdd + XD_MAXK * 8 + XD_MAXK;   /* [warps][64] */
    uint8_t *ring = (uint8_t *)(terms + 64 * XD_WARPS);
    const int lane = threadIdx.x & 31, wib = threadIdx.x >> 5;
    const int64_t gw = (int64_t)blockIdx.x * XD_WARPS + wib;
    const int64_t r0 = gw * a.per_warp;
    const int nrows = (int)(r0 >= a.rows ? 0 : (a.rows - r0 < a.per_warp ? a.rows - r0 : a.per_warp));
    const int cnt = nrows * a.K; /* ring items: (row, pick) */
    uint8_t *myring = ring + (size_t)wib * XD_NS * a.rb;
    float *myterms = terms + 64 * wib;
    const int n16 = a.rb / 16;
    int ir = 0, ik = 0; /* the next item to fetch */
    auto issue = [&](int j) {
        x_row(myring + (size_t)(j % XD_NS) * a.rb, a.W + ((size_t)__ldg(a.sel + ik) * a.rows + r0 + ir) * a.rb, n16,
              lane);
        if (++ik == a.K) {
            ik = 0;
            ir++;
        }
    };
    /* the first rows are on their way while the activation is laid out */
    for (int s = 0; s < XD_NS - 1; s++) {
        if (s < cnt) issue(s);
        x_commit();
    }
    /* activation codes, re-laid per lane */
    for (int i = threadIdx.x; i < a.K * 4 * 32; i += blockDim.x) {
        const int k = i / 128, j = (i / 32) & 3, l = i & 31, bb = l >> 2, q = l & 3;
        int4 v = make_int4(0, 0, 0, 0);
        if (bb < a.nb) {
            const int *src = (const int *)(a.xq[(int64_t)k * a.nb + bb].qs + 128 * (q >> 1) + 32 * j + 16 * (q & 1));
            v = make_int4(__ldg(src), __ldg(src + 1), __ldg(src + 2), __ldg(src + 3));
        }
        xq4[i] = v;
    }
    for (int i = threadIdx.x; i < a.K * 32; i += blockDim.x) {
        const int k = i / 32, l = i & 31, bb = l >> 2, q = l & 3;
        int4 v = make_int4(0, 0, 0, 0);
        if (bb < a.nb) {
            const int16_t *bs = a.xq[(int64_t)k * a.nb + bb].bsums + 8 * (q >> 1) + (q & 1);
            v = make_int4(bs[0], bs[2], bs[4], bs[6]);
        }
        xbs[i] = v;
    }
    for (int i = threadIdx.x; i < a.K * 8; i += blockDim.x)
        xdd[i] = (i & 7) < a.nb ? a.xq[(int64_t)(i >> 3) * a.nb + (i & 7)].d : 0.0f;
    __syncthreads();
    if (!cnt) return;
    const int b = lane >> 2, q = lane & 3, hh = q >> 1, hf = q & 1, act = b < a.nb;
    int rr = 0, k = 0; /* the item being decoded */
    for (int j = 0; j < cnt; j++) {
        if (j + XD_NS - 1 < cnt) issue(j + XD_NS - 1);
        x_commit();
        x_wait<XD_NS - 1>();
        __syncwarp();
        const uint8_t *bp = myring + (size_t)(j % XD_NS) * a.rb + 84 * b;
        int is = 0, sm = 0;
        float dall = 0.0f, dmin = 0.0f;
        if (act) {
            const uint32_t *qw = (const uint32_t *)(bp + 16 + 32 * hh + 16 * hf);
            const uint32_t w0 = qw[0], w1 = qw[1], w2 = qw[2], w3 = qw[3];
            const uint32_t s0 = *(const uint32_t *)(bp + 8 * hh), s1 = *(const uint32_t *)(bp + 8 * hh + 4);
            const uint32_t dd = *(const uint32_t *)(bp + 80);
            const int4 bs = xbs[k * 32 + lane];
            const int bsv[4] = {bs.x, bs.y, bs.z, bs.w};
#pragma unroll
            for (int jj = 0; jj < 4; jj++) {
                const int4 xv = xq4[(k * 4 + jj) * 32 + lane];
                const uint32_t mk = 0x03030303u << (2 * jj);
                /* the codes left in place: 4^jj times the sum, divided back exactly */
                int isuml = x_dp4a_us(w0 & mk, xv.x, 0);
                isuml = x_dp4a_us(w1 & mk, xv.y, isuml);
                isuml = x_dp4a_us(w2 & mk, xv.z, isuml);
                isuml = x_dp4a_us(w3 & mk, xv.w, isuml);
                isuml >>= 2 * jj;
                const int sc = (int)(((jj < 2 ? s0 : s1) >> (8 * (hf + 2 * (jj & 1)))) & 255);
                is += (sc & 15) * isuml;
                sm += bsv[jj] * (sc >> 4);
            }
            const float xd = xdd[k * 8 + b];
            dall = xd * d_f16((uint16_t)(dd & 0xffff));
            dmin = xd * d_f16((uint16_t)(dd >> 16));
        }
        is += __shfl_xor_sync(FULL, is, 1);
        sm += __shfl_xor_sync(FULL, sm, 1);
        is += __shfl_xor_sync(FULL, is, 2);
        sm += __shfl_xor_sync(FULL, sm, 2);
        if (act && !q) myterms[k * 8 + b] = dall * (float)is - dmin * (float)sm;
        __syncwarp();
        if (++k == a.K) {
            if (lane == 0) {
                float sum = 0.0f;
                for (int kk = 0; kk < a.K; kk++) {
                    float acc = 0.0f;
                    for (int bb = 0; bb < a.nb; bb++) acc += myterms[kk * 8 + bb];
                    sum += acc;
                }
                const int64_t row = r0 + rr;
                a.out[row] = a.add ? sum + a.add[row] : sum;
            }
            k = 0;
            rr++;
            __syncwarp();
        }
    }
}

/* Blocks per SM and SM count of the current device, and the shared-memory
 * opt-in of both kernels, once per device. */
struct x_dev {
    int ready, sms, g_per_sm, d_per_sm;
};
static x_dev x_devs[64];
static const size_t XG_FIXED = sizeof(uint64_t) * 384 * EXT_COPIES + 64 * 4 + 32 * 4 * XG_WARPS + 16;
static const size_t XD_FIXED = 16 * XD_MAXK * 4 * 32 + 16 * XD_MAXK * 32 + 4 * XD_MAXK * 8 + 4 * XD_MAXK +
                               64 * 4 * XD_WARPS + 16;
#define XG_RB 1056 /* the shapes the occupancy is planned for (rows of 4096 IQ2_XXS, 2048 Q2_K) */
#define XD_RB 672

static x_dev *x_dev_get(void) {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return NULL;
    x_dev *d = &x_devs[dev];
    if (d->ready) return d->ready > 0 ? d : NULL;
    d->ready = -1;
    const size_t sg = XG_FIXED + (size_t)XG_WARPS * XG_NS * XG_RB, sd = XD_FIXED + (size_t)XD_WARPS * XD_NS * XD_RB;
    if (cudaDeviceGetAttribute(&d->sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaFuncSetAttribute(k_ex_iq2_gu, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sg) != cudaSuccess ||
        cudaFuncSetAttribute(k_ex_q2k_down, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sd) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&d->g_per_sm, k_ex_iq2_gu, 32 * XG_WARPS, sg) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&d->d_per_sm, k_ex_q2k_down, 32 * XD_WARPS, sd) != cudaSuccess ||
        d->g_per_sm < 1 || d->d_per_sm < 1) {
        cudaGetLastError();
        return NULL;
    }
    d->ready = 1;
    return d;
}

/* Items per warp so that every warp of a full-occupancy grid gets the same
 * count (the last warps fewer), and the blocks that takes. */
static unsigned x_grid(int64_t items, int warps_per_block, int slots, int *per_warp) {
    const int64_t max_warps = (int64_t)slots * warps_per_block;
    const int64_t pw = (items + max_warps - 1) / max_warps;
    *per_warp = (int)pw;
    const int64_t warps = (items + pw - 1) / pw;
    return (unsigned)((warps + warps_per_block - 1) / warps_per_block);
}

extern "C" int ds4cu_ex_iq2_gate_up_dec(const void *Wg, const void *Wu, size_t row_bytes, int64_t in, int64_t rows,
                                        const int32_t *sel, int pairs, int x_div, const void *xq, float *g, float *u) {
    const int nb = (int)(in / 256);
    if (in % 256 || nb < 1 || nb > 16 || row_bytes != (size_t)nb * 66 || row_bytes % 16 || row_bytes > XG_RB ||
        pairs < 1 || pairs > 64 || x_div < 1 || rows < 1 || ((uintptr_t)Wg & 15) || ((uintptr_t)Wu & 15))
        return -1;
    x_dev *d = x_dev_get();
    if (!d || x_tables_init()) return -1;
    xg_args a;
    memset(&a, 0, sizeof a);
    a.W0 = (const uint8_t *)Wg;
    a.W1 = (const uint8_t *)Wu;
    a.y0 = g;
    a.y1 = u;
    a.rb = (int)row_bytes;
    a.nb = nb;
    a.rows = rows;
    a.pairs = pairs;
    a.x_div = x_div;
    a.sel = sel;
    a.xq = (const cu_q8_K *)xq;
    const unsigned blocks = x_grid(2 * (int64_t)pairs * rows, XG_WARPS, d->sms * d->g_per_sm, &a.per_warp);
    const size_t smem = XG_FIXED + (size_t)XG_WARPS * XG_NS * row_bytes;
    k_ex_iq2_gu<<<blocks, 32 * XG_WARPS, smem, ds4cu_s>>>(a);
    ds4cu_after("ex_iq2_gate_up_dec");
    return 0;
}

extern "C" int ds4cu_ex_q2k_down_dec(const void *W, size_t row_bytes, int64_t in, int64_t rows, const int32_t *sel,
                                     int K, const void *xq, const float *add, float *out) {
    const int nb = (int)(in / 256);
    if (in % 256 || nb < 1 || nb > 8 || row_bytes != (size_t)nb * 84 || row_bytes % 16 || row_bytes > XD_RB ||
        K < 1 || K > XD_MAXK || rows < 1 || ((uintptr_t)W & 15))
        return -1;
    x_dev *d = x_dev_get();
    if (!d) return -1;
    xd_args a;
    memset(&a, 0, sizeof a);
    a.W = (const uint8_t *)W;
    a.out = out;
    a.add = add;
    a.rb = (int)row_bytes;
    a.nb = nb;
    a.K = K;
    a.rows = rows;
    a.sel = sel;
    a.xq = (const cu_q8_K *)xq;
    const unsigned blocks = x_grid(rows, XD_WARPS, d->sms * d->d_per_sm, &a.per_warp);
    const size_t smem = XD_FIXED + (size_t)XD_WARPS * XD_NS * row_bytes;
    k_ex_q2k_down<<<blocks, 32 * XD_WARPS, smem, ds4cu_s>>>(a);
    ds4cu_after("ex_q2k_down_dec");
    return 0;
}
