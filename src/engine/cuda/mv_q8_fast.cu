/* mv_q8_fast.cu - the fast mode's one-token Q8_0 mat-vec (m->exact == 0 only):
 * each row's float sum is reassociated, so no thread has to add a row's
 * terms in block order and nothing is staged for that.
 *
 * Why this shape: the exact kernels (matvec.cu, mv_dec.cu) are built around
 * the CPU's serial block-order add, which puts a chain of adds and block-wide
 * barriers on every tile's critical path (out_a/out_b 18.4 us for 35.65 MB,
 * 1.94 TB/s). Here a lane owns 8 consecutive blocks of a row (272 bytes, the
 * smallest run of 34-byte blocks that is a whole number of 16-byte pieces),
 * reads them as 17 16-byte words, and makes the 8 integer dots with dp4a
 * against the activation's codes (the blocks' 2-byte misalignment is undone
 * with constant funnel shifts, so all of it stays in registers). A row of G
 * such groups takes LPR = min(32, G) lanes (a power of two; lanes loop when
 * G > LPR), a warp 32 / LPR rows, then an xor-shuffle tree per row. Each lane
 * adds its own terms in block order (term = (d_w·d_x)·isum as the CPU forms
 * it), so rows of one group (in = 256, the tiny models) match the CPU bit for
 * bit; wider rows differ by rounding only.
 *
 * The activation's codes are staged once per block in shared memory, laid
 * out as 256 code bytes + 16 pad bytes per group (the 272-byte lane stride
 * makes the 16-byte reads conflict-free) and a separate array of scales.
 * Two ways to bring the weights in (DS4_CUDA_Q8FAST=1 or 2; 0 = the exact
 * kernels, as before, and for now the default: both variants passed every
 * test on an H100 (op tests at the real shapes, goldens unchanged), but
 * their speed has not been measured yet, see /work/notes/device-q8fast.md):
 *   1 direct: each lane's 17 16-byte loads straight into registers;
 *   2 staged: the warp's contiguous rows copied with coalesced 16-byte
 *     cp.async into its own shared slot (no block barrier), then read back
 *     per lane (conflict-free, same 272-byte stride).
 * Several matrices over one activation go in one launch (q_a+kv, shared
 * gate+up), groups as out_a (a block never straddles two input groups). */
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/common.cuh"

#define FULL 0xffffffffu
#define QF_JOBS 6
#define QF_WARPS 4    /* warps per block: small blocks so short matrices still fill 132 SMs */
#define QF_GROUP 272  /* bytes of 8 weight blocks */
#define QF_SLOT (32 * QF_GROUP) /* a warp's staged weights (variant 2) */

struct qf_job {
    const uint8_t *W;
    float *y;
    const cu_act_q8_0 *x;
    int64_t out, rpg;
    unsigned blk0;
};
struct qf_jobs {
    qf_job j[QF_JOBS];
    int n;
    int nb;  /* blocks per row */
    int lg;  /* log2 of lanes per row */
    size_t rb;
};

/* word i of the 17 16-byte pieces (i is a constant after unrolling, so q stays in registers) */
static __device__ __forceinline__ uint32_t qw(const uint4 (&q)[17], int i) {
    const uint4 v = q[i >> 2];
    return (i & 3) == 0 ? v.x : (i & 3) == 1 ? v.y : (i & 3) == 2 ? v.z : v.w;
}

/* One group of 8 weight blocks (68 words in q) against the codes xc (8 × 32
 * bytes, 16-byte aligned, shared) and scales xd; terms added to acc in block order. */
static __device__ __forceinline__ float qf_group(const uint4 (&q)[17], const uint4 *xc, const float *xd, float acc) {
    const float4 d0 = *(const float4 *)xd, d1 = *(const float4 *)(xd + 4);
    const float xs[8] = {d0.x, d0.y, d0.z, d0.w, d1.x, d1.y, d1.z, d1.w};
#pragma unroll
    for (int k = 0; k < 8; k++) {
        const uint4 xa = xc[2 * k], xb = xc[2 * k + 1];
        const int xi[8] = {(int)xa.x, (int)xa.y, (int)xa.z, (int)xa.w, (int)xb.x, (int)xb.y, (int)xb.z, (int)xb.w};
        int isum = 0;
        uint32_t dbits;
        if (k % 2 == 0) { /* block at a word boundary: scale in the low half, codes from byte 2 */
            const int wb = 17 * k / 2;
            dbits = qw(q, wb) & 0xffffu;
#pragma unroll
            for (int i = 0; i < 8; i++) isum = __dp4a((int)__funnelshift_r(qw(q, wb + i), qw(q, wb + i + 1), 16), xi[i], isum);
        } else { /* block at a half word: scale in the high half, codes word-aligned */
            const int wb = (17 * k - 1) / 2;
            dbits = qw(q, wb) >> 16;
#pragma unroll
            for (int i = 0; i < 8; i++) isum = __dp4a((int)qw(q, wb + 1 + i), xi[i], isum);
        }
        acc += (d_f16((uint16_t)dbits) * xs[k]) * (float)isum;
    }
    return acc;
}

template <int V>
static __global__ void __launch_bounds__(32 * QF_WARPS) k_mv_q8_fast(const qf_jobs J) {
    extern __shared__ __align__(16) uint8_t sm[];
    qf_job jb = J.j[0];
#pragma unroll
    for (int k = 1; k < QF_JOBS; k++)
        if (k < J.n && blockIdx.x >= J.j[k].blk0) jb = J.j[k];
    const int nb = J.nb, G = nb / 8, lg = J.lg, LPR = 1 << lg, RW = 32 >> lg;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, j = lane & (LPR - 1);
    const int64_t brow = (int64_t)(blockIdx.x - jb.blk0) * QF_WARPS * RW; /* first row of this block */
    const int64_t wrow = brow + (int64_t)warp * RW;                       /* first row of this warp */
    const int64_t row = wrow + (lane >> lg);
    const bool valid = row < jb.out;
    uint8_t *xc = sm;                             /* [G][272]: codes, 16 pad bytes per group */
    float *xd = (float *)(sm + (size_t)G * QF_GROUP); /* [nb] scales */
    uint4 q[17];
    if (V == 2) {
        /* the warp's rows are one contiguous run (G == LPR: RW rows of 32/RW groups) */
        uint8_t *slot = sm + (size_t)G * QF_GROUP + 4 * (size_t)nb + (size_t)warp * QF_SLOT;
        const int64_t nr = jb.out - wrow < RW ? jb.out - wrow : RW;
        const int n16 = nr > 0 ? (int)(nr * (int64_t)J.rb / 16) : 0;
        const uint8_t *src = jb.W + (size_t)wrow * J.rb;
#pragma unroll
        for (int i = 0; i < 17; i++) {
            const int k = lane + 32 * i;
            if (k < n16) {
                const unsigned sa = (unsigned)__cvta_generic_to_shared(slot + 16 * k);
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(src + 16 * (size_t)k));
            }
        }
        asm volatile("cp.async.commit_group;\n" ::: "memory");
    } else if (valid) { /* the first group's loads before the activation is staged */
        const uint4 *wp = (const uint4 *)(jb.W + (size_t)row * J.rb + (size_t)j * QF_GROUP);
#pragma unroll
        for (int i = 0; i < 17; i++) q[i] = __ldg(wp + i);
    }
    /* this block's input group, 9 words a block: scale, then 8 words of codes */
    const uint32_t *xsrc = (const uint32_t *)(jb.x + (brow / jb.rpg) * nb);
    for (int i = threadIdx.x; i < nb * 9; i += 32 * QF_WARPS) {
        const int b = i / 9, k = i - 9 * b;
        const uint32_t v = __ldg(xsrc + i);
        if (k == 0) xd[b] = __uint_as_float(v);
        else *(uint32_t *)(xc + (b >> 3) * QF_GROUP + (b & 7) * 32 + 4 * (k - 1)) = v;
    }
    float acc = 0.0f;
    if (V == 2) {
        asm volatile("cp.async.wait_group 0;\n" ::: "memory");
        __syncthreads(); /* activation (block) and this warp's slot visible */
        if (valid) {
            const uint4 *sp = (const uint4 *)(sm + (size_t)G * QF_GROUP + 4 * (size_t)nb + (size_t)warp * QF_SLOT +
                                              (size_t)lane * QF_GROUP);
#pragma unroll
            for (int i = 0; i < 17; i++) q[i] = sp[i];
            acc = qf_group(q, (const uint4 *)(xc + (size_t)j * QF_GROUP), xd + 8 * j, acc);
        }
    } else {
        __syncthreads();
        if (valid) {
            for (int g = j;;) {
                acc = qf_group(q, (const uint4 *)(xc + (size_t)g * QF_GROUP), xd + 8 * g, acc);
                g += LPR;
                if (g >= G) break;
                const uint4 *wp = (const uint4 *)(jb.W + (size_t)row * J.rb + (size_t)g * QF_GROUP);
#pragma unroll
                for (int i = 0; i < 17; i++) q[i] = __ldg(wp + i);
            }
        }
    }
    for (int o = LPR >> 1; o; o >>= 1) acc += __shfl_xor_sync(FULL, acc, o);
    if (valid && j == 0) jb.y[row] = acc;
}

/* DS4_CUDA_Q8FAST: 0 = off (the exact kernels), 1 = direct, 2 = staged; unset = QF_DEFAULT,
 * staged: on the H100 (8-layer model, 2k, one call, same card) the Q8_0
 * products of a token took 763 us against 795 with the exact kernels and 2k
 * decode ran 504 / 516 tok/s against 494-507 / 514 (variant 1: 496).
 * DS4_CUDA_Q8FAST_HEAD=0 keeps launches of more than 65,536 rows (the output
 * head) on the exact kernels. */
#define QF_DEFAULT 2
static int qf_env(const char *name, int dflt) {
    const char *e = getenv(name);
    return e && *e ? atoi(e) : dflt;
}

extern "C" int ds4cu_mv_q8_0_fast(int count, const void *const *W, size_t row_bytes, int64_t in, const int64_t *out,
                                  int groups, const void *xq, float *const *y, int variant) {
    static int env_v = -1, env_head = -1;
    if (env_v < 0) {
        env_v = qf_env("DS4_CUDA_Q8FAST", QF_DEFAULT);
        env_head = qf_env("DS4_CUDA_Q8FAST_HEAD", 1);
    }
    int64_t rows_all = 0;
    for (int k = 0; k < count && k < QF_JOBS; k++) rows_all += out[k];
    if (variant == 0) {
        variant = env_v;
        if (rows_all > 65536 && !env_head) return -1;
    }
    if (variant < 1 || variant > 2 || count < 1 || count > QF_JOBS || in < 256 || in % 256 || groups < 1 ||
        row_bytes != (size_t)(in / 32) * 34 || ((uintptr_t)xq & 15))
        return -1;
    const int nb = (int)(in / 32), G = nb / 8;
    int lg = 0;
    while (lg < 5 && (2 << lg) <= G) lg++;
    if (variant == 2 && G != (1 << lg)) variant = 1; /* staging wants a warp's rows contiguous */
    const int RW = 32 >> lg, rows_blk = QF_WARPS * RW;
    const size_t smem = (size_t)G * QF_GROUP + 4 * (size_t)nb + (variant == 2 ? (size_t)QF_WARPS * QF_SLOT : 0);
    if (smem > 48 * 1024) return -1;
    qf_jobs J;
    memset(&J, 0, sizeof J);
    J.n = count;
    J.nb = nb;
    J.lg = lg;
    J.rb = row_bytes;
    unsigned blk = 0;
    for (int k = 0; k < count; k++) {
        if (((uintptr_t)W[k] & 15) || out[k] < 1 || out[k] % groups) return -1;
        const int64_t rpg = out[k] / groups;
        if (groups > 1 && rpg % rows_blk) return -1; /* a block must read one input group */
        J.j[k] = qf_job{(const uint8_t *)W[k], y[k], (const cu_act_q8_0 *)xq, out[k], rpg, blk};
        blk += cdiv(out[k], rows_blk);
    }
    for (int k = count; k < QF_JOBS; k++) J.j[k].blk0 = ~0u;
    if (variant == 2) k_mv_q8_fast<2><<<blk, 32 * QF_WARPS, smem, ds4cu_s>>>(J);
    else k_mv_q8_fast<1><<<blk, 32 * QF_WARPS, smem, ds4cu_s>>>(J);
    ds4cu_after("mv_q8_0_fast");
    return 0;
}
