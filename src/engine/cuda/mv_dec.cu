/* mv_dec.cu - the one-token Q8_0 and fast F16 mat-vecs of decode, shaped to
 * keep the memory system busy.
 *
 * Q8_0 (exact): the staged k_mv_q8_0_dec (matvec.cu) gives each block one
 * ~16 KB run of rows, loads it, decodes it, then lets one thread per row add
 * its terms in order, one phase after the other, in ~2 waves; on out_b (2
 * rows of 256 blocks per block) the last phase alone is a 256-add chain per
 * block. Here a block owns R rows (8, 16 or 32) and walks their columns in
 * tiles of R x C blocks (C = 256 / R, 8,704 bytes), three tiles in flight
 * (asynchronous 16-byte copies, four slots) while the 256 threads decode one
 * (a term each); then R threads add the tile's C terms to their row's
 * running sum, in block order. The float steps are ds4_vec_dot_q8_0_ref's:
 * bit-identical to the CPU. The kernel also takes whole-row tiles and several
 * row groups per block (fields lg, tpb); on the H100 those ran slower
 * (device-bw.md, call 2), so the planner uses it only where it won.
 *
 * Fast F16 (m->exact < 0 only, sums reassociated): no staging at all; a warp
 * streams a row with 16-byte loads, eight in flight per lane, summing in
 * exactly k_mv_f16_dec's order (lane-strided pieces, then the xor tree), so
 * the fast mode's results do not move. (Splitting short matrices' rows over
 * several warps was faster for the router, but that other order moved
 * tiny-b's position-0 logits out of the goldens' band: max |dlogprob| 2.08,
 * a discrete choice flipping, not rounding noise.) */
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/common.cuh"

#define FULL 0xffffffffu
#define MD_JOBS 6

struct md_job {
    const uint8_t *W;
    float *y;
    const void *x;
    int64_t out, rpg, in;
    size_t rb;
    int lg;        /* Q8_0: log2 of rows per tile; F16: log2 of warps per row */
    int tpb;       /* Q8_0: row groups (tiles of R rows) per block */
    unsigned blk0; /* first block of this job */
};
struct md_jobs {
    md_job j[MD_JOBS];
    int n;
};

static __device__ __forceinline__ md_job md_pick(const md_jobs &J) {
    md_job r = J.j[0];
#pragma unroll
    for (int k = 1; k < MD_JOBS; k++)
        if (k < J.n && blockIdx.x >= J.j[k].blk0) r = J.j[k];
    return r;
}

static __device__ __forceinline__ void md_cp16(void *s, const void *g) {
    const unsigned sa = (unsigned)__cvta_generic_to_shared(s);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(g));
}

/* ---------------- Q8_0, exact ---------------- */
#define MQ_TILE (256 * 34) /* bytes of one tile: R x C blocks */
#define MQ_SLOTS 4         /* tiles: one decoded, three in flight */
#define MQ_TERMS (2 * 32 * 12) /* floats: the largest [2][R][C+4] (R = 32) */

static __global__ void __launch_bounds__(256) k_mv_q8_0_dc(const md_jobs J) {
    extern __shared__ __align__(16) uint8_t sm[];
    const md_job jb = md_pick(J);
    /* lg = log2 R (rows per tile); the block owns T = jb.rpg_t row groups of R rows */
    const int lg = jb.lg, R = 1 << lg, C = 256 >> lg, CS = C + 4;
    const int nb = (int)(jb.in / 32);
    const int nch = (nb + C - 1) / C; /* column chunks per row group (1 unless nb > 256) */
    const int64_t rowb = (int64_t)(blockIdx.x - jb.blk0) * jb.tpb * R; /* first row of this block */
    const int64_t left = (jb.out - rowb + R - 1) / R;
    const int ntiles = (int)(left < jb.tpb ? left : jb.tpb) * nch;
    const int seg = C * 34; /* bytes per row per tile, a multiple of 16 (C % 8 == 0) */
    float *terms = (float *)(sm + MQ_SLOTS * MQ_TILE + 16); /* [2][R][C+4] */
    uint32_t *xw = (uint32_t *)(terms + MQ_TERMS);
    const int t = threadIdx.x;
    auto issue = [&](int q) {
        const int g = q / nch, c = q - g * nch;
        const int64_t row0 = rowb + (int64_t)g * R;
        const int nr = (int)(jb.out - row0 < R ? jb.out - row0 : R);
        const int nblk = nb - c * C < C ? nb - c * C : C;
        const int n16 = (nblk * 34 + 15) / 16; /* never past the row: rb and c·seg are multiples of 16 */
        const uint8_t *src = jb.W + (size_t)row0 * jb.rb + (size_t)c * seg;
        uint8_t *dst = sm + (q % MQ_SLOTS) * MQ_TILE;
        for (int i = t; i < nr * n16; i += 256) {
            const int r = i / n16, k = i - r * n16;
            md_cp16(dst + r * seg + 16 * k, src + (size_t)r * jb.rb + 16 * k);
        }
        asm volatile("cp.async.commit_group;\n" ::: "memory");
    };
    for (int q = 0; q < MQ_SLOTS - 1; q++) {
        if (q < ntiles) issue(q);
        else asm volatile("cp.async.commit_group;\n" ::: "memory");
    }
    /* this block's input group (dc_plan keeps a block inside one), in shared memory for all tiles */
    const uint32_t *xsrc = (const uint32_t *)((const cu_act_q8_0 *)jb.x + (rowb / jb.rpg) * nb);
    for (int i = t; i < nb * 9; i += 256) xw[i] = __ldg(xsrc + i);
    const cu_act_q8_0 *xs = (const cu_act_q8_0 *)xw;
    const int r = t >> (8 - lg), b = t & (C - 1);
    float acc = 0.0f;
    for (int q = 0; q < ntiles; q++) {
        if (q + MQ_SLOTS - 1 < ntiles) issue(q + MQ_SLOTS - 1);
        else asm volatile("cp.async.commit_group;\n" ::: "memory");
        asm volatile("cp.async.wait_group %0;\n" ::"n"(MQ_SLOTS - 1) : "memory");
        __syncthreads(); /* tile q (and the input) visible to all */
        const int g = q / nch, c = q - g * nch;
        const int64_t row0 = rowb + (int64_t)g * R;
        const int nr = (int)(jb.out - row0 < R ? jb.out - row0 : R);
        float *tc = terms + (q & 1) * R * CS;
        const int bg = c * C + b;
        if (r < nr && bg < nb) {
            const uint8_t *bp = sm + (q % MQ_SLOTS) * MQ_TILE + r * seg + b * 34;
            /* a 34-byte block is 2-byte aligned: read aligned words, shift the codes out */
            const uint32_t *wp = (const uint32_t *)((uintptr_t)bp & ~(uintptr_t)3);
            const int odd = (int)(((uintptr_t)bp >> 1) & 1);
            const uint32_t w0 = wp[0];
            const uint32_t *wq = wp + odd;
            const unsigned sh = odd ? 0u : 16u;
            const int *xi = (const int *)xs[bg].qs;
            int isum = 0;
#pragma unroll
            for (int k = 0; k < 8; k++) isum = __dp4a((int)__funnelshift_r(wq[k], wq[k + 1], sh), xi[k], isum);
            tc[r * CS + b] = (d_f16((uint16_t)(odd ? w0 >> 16 : w0 & 0xffffu)) * xs[bg].d) * (float)isum;
        }
        __syncthreads(); /* terms complete; tile q's slot may be refilled */
        if (t < nr) { /* row t's terms of this chunk, in block order */
            const int lim = nb - c * C < C ? nb - c * C : C;
            const float *tr = tc + t * CS;
            int k = 0;
            for (; k + 4 <= lim; k += 4) {
                const float4 v = *(const float4 *)(tr + k);
                acc += v.x;
                acc += v.y;
                acc += v.z;
                acc += v.w;
            }
            for (; k < lim; k++) acc += tr[k];
            if (c == nch - 1) {
                jb.y[row0 + t] = acc;
                acc = 0.0f;
            }
        }
    }
}

static size_t mq_smem(int64_t nb) { return MQ_SLOTS * MQ_TILE + 16 + sizeof(float) * MQ_TERMS + 36 * (size_t)nb; }

/* DS4_CUDA_Q8_OLD=1: the staged kernel of matvec.cu (A/B). */
static int mq_old(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DS4_CUDA_Q8_OLD");
        v = e && atoi(e) > 0;
    }
    return v;
}

extern "C" int ds4cu_mv_q8_0_dc(int count, const void *const *W, size_t row_bytes, int64_t in, const int64_t *out,
                                int groups, const void *xq, float *const *y) {
    if (mq_old() || count < 1 || count > MD_JOBS || in % 256 || groups < 1 || (row_bytes & 15) ||
        row_bytes != (size_t)(in / 32) * 34 || mq_smem(in / 32) > 48 * 1024)
        return -1;
    md_jobs J;
    memset(&J, 0, sizeof J);
    J.n = count;
    /* Where the tiles beat the staged kernel on an H100 (device-bw.md, call 3:
     * out_a 18.4 vs 19.4 us, out_b 18.2 vs 20.6) and only there: out_a
     * (8192 rows of 128 blocks) and out_b (rows of 256 blocks). It lost on
     * the shared gate+up (11.2 vs 10.7), q_b (1,088-byte rows), the short
     * q_a+kv and shared down, and the head (209 vs 188, call 1), which keep
     * k_mv_q8_0_dec. A block owns R rows (one row group, T = 1) and walks
     * their columns. */
    const int64_t nb = in / 32;
    int64_t rows_all = 0;
    for (int k = 0; k < count; k++) rows_all += out[k];
    if (nb < 128 || (nb < 256 && rows_all < 8192) || rows_all > 16384) return -1;
    unsigned blk = 0;
    for (int k = 0; k < count; k++) {
        if (((uintptr_t)W[k] & 15) || out[k] < 1 || out[k] % groups) return -1;
        const int64_t rpg = out[k] / groups;
        int lg = out[k] >= 32 * 1024 ? 5 : out[k] >= 16 * 512 ? 4 : 3;
        while (groups > 1 && lg > 3 && rpg % (1 << lg)) lg--;
        if (groups > 1 && rpg % (1 << lg)) return -1; /* a block must read one input group */
        J.j[k] = md_job{(const uint8_t *)W[k], y[k], xq, out[k], rpg, in, row_bytes, lg, 1, blk};
        blk += cdiv(out[k], (int64_t)1 << lg);
    }
    k_mv_q8_0_dc<<<blk, 256, mq_smem(in / 32), ds4cu_s>>>(J);
    ds4cu_after("mv_q8_0_dc");
    return 0;
}

/* ---------------- F16, fast ---------------- */
#define MF_WARPS 8
#define MF_UNROLL 8

static __global__ void __launch_bounds__(32 * MF_WARPS) k_mv_f16_dw(const md_jobs J) {
    const md_job jb = md_pick(J);
    const int lane = threadIdx.x & 31;
    const int64_t row = (int64_t)(blockIdx.x - jb.blk0) * MF_WARPS + (threadIdx.x >> 5);
    if (row >= jb.out) return; /* whole warp */
    const int64_t n8 = jb.in / 8; /* 16-byte pieces of the row */
    const uint4 *w4 = (const uint4 *)(jb.W + (size_t)row * jb.rb);
    const float4 *x4 = (const float4 *)jb.x;
    float acc = 0.0f;
    for (int64_t k = lane; k < n8; k += 32 * MF_UNROLL) { /* MF_UNROLL 16-byte loads in flight per lane */
        uint4 q[MF_UNROLL];
#pragma unroll
        for (int u = 0; u < MF_UNROLL; u++)
            if (k + 32 * u < n8) q[u] = __ldg(w4 + k + 32 * u);
#pragma unroll
        for (int u = 0; u < MF_UNROLL; u++) {
            if (k + 32 * u >= n8) break;
            const float4 xa = __ldg(x4 + 2 * (k + 32 * u)), xb = __ldg(x4 + 2 * (k + 32 * u) + 1);
            const __half2 *hh = (const __half2 *)&q[u];
            const float2 f0 = __half22float2(hh[0]), f1 = __half22float2(hh[1]), f2 = __half22float2(hh[2]),
                         f3 = __half22float2(hh[3]);
            acc += f0.x * xa.x + f0.y * xa.y + f1.x * xa.z + f1.y * xa.w + f2.x * xb.x + f2.y * xb.y + f3.x * xb.z +
                   f3.y * xb.w;
        }
    }
    for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(FULL, acc, o);
    if (lane == 0) jb.y[row] = acc;
}

/* DS4_CUDA_F16_OLD=1: the staged kernel of matvec.cu (A/B). */
static int mf_old(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DS4_CUDA_F16_OLD");
        v = e && atoi(e) > 0;
    }
    return v;
}

extern "C" int ds4cu_mv_f16_dw(int count, const void *const *W, const size_t *row_bytes, const int64_t *in,
                               const int64_t *out, const float *const *x, float *const *y) {
    if (mf_old() || count < 1 || count > MD_JOBS) return -1;
    md_jobs J;
    memset(&J, 0, sizeof J);
    J.n = count;
    unsigned blk = 0;
    /* Only for launches of >= 4096 rows in all (the ratio-4 layer's six
     * projections: 19.1-19.8 us vs 22.3-23.0 on an H100, device-bw.md call 3);
     * the router (256 rows) and the ratio-128 pair (1024) ran 0.5 us slower
     * here than staged in k_mv_f16_dec, which keeps them. */
    int64_t rows_all = 0;
    for (int k = 0; k < count; k++) rows_all += out[k];
    if (rows_all < 4096) return -1;
    for (int k = 0; k < count; k++) {
        /* the shapes k_mv_f16_dec takes (rows of at most 20 KB), so the fast
         * mode's float order, and with it the goldens' band, stay as they were */
        if (out[k] < 1 || in[k] < 8 || in[k] % 8 || ((uintptr_t)W[k] & 15) || (row_bytes[k] & 15) ||
            row_bytes[k] > 20480 || ((uintptr_t)x[k] & 15))
            return -1;
        J.j[k] = md_job{(const uint8_t *)W[k], y[k], x[k], out[k], out[k], in[k], row_bytes[k], 0, 0, blk};
        blk += cdiv(out[k], MF_WARPS);
    }
    for (int k = count; k < MD_JOBS; k++) J.j[k].blk0 = ~0u;
    k_mv_f16_dw<<<blk, 32 * MF_WARPS, 0, ds4cu_s>>>(J);
    ds4cu_after("mv_f16_dw");
    return 0;
}
