/* gemm_indexer.cu - prefill's indexer choices for a whole batch at once.
 *
 * ds4cu_indexer_select (attn.cu) serves one token: three launches, and a
 * top-k that ranks every row against every other (n_comp² compares). A
 * prefill chunk past 4·top_k positions called it once per token and layer.
 * Here one tiled kernel scores every (token, row) pair of the batch and one
 * block per token selects its top k by radix select on the scores' bits.
 *
 * Exactness: each score is k_idx_scores's chain, taken by one thread: per
 * head h in order, d = Σ_i K[i]·q[i] in index order, score += relu(d)·w[h].
 * The selection is the same set as k_topk_flag's (rank by higher score, ties
 * to the lower index) for scores that are not NaN, written in ascending row
 * order as k_compact does, so attention reads the same rows. */
#include "engine/cuda/common.cuh"
#include "engine/cuda/gemm.h"

#define FULL 0xffffffffu
#define IX_TT 32 /* tokens per score tile */
#define IX_TC 32 /* rows per score tile */
#define IX_DEVS 64

static float *ix_ws[IX_DEVS];
static size_t ix_ws_n[IX_DEVS];

/* Compressed rows token t of the batch sees (ratio 4, as forward.c counts them). */
static __device__ __forceinline__ int ix_rows(int nc0, int64_t pos0, int t) {
    return nc0 + (int)((pos0 + t + 1) / 4 - pos0 / 4);
}

/* Grid (rows/IX_TC, n/IX_TT), 256 threads: thread (ty, tx) owns tokens
 * ty, ty+16 and rows tx, tx+16 of the tile. Shared rows padded to ID+1
 * floats so neither the row nor the token reads collide on banks. */
static __global__ void __launch_bounds__(256) k_ix_scores(const float *idx, int nc0, int64_t pos0, int n,
                                                          const float *qI, const float *wI, int IH, int ID, int k,
                                                          int ldS, float *S) {
    extern __shared__ float ixs[];
    const int t0 = blockIdx.y * IX_TT, c0 = blockIdx.x * IX_TC;
    const int tl = (t0 + IX_TT < n ? t0 + IX_TT : n) - 1; /* the tile's last token sees the most rows */
    const int rmax = ix_rows(nc0, pos0, tl);
    if (rmax <= k || c0 >= rmax) return; /* whole block */
    const int P = ID + 1;
    float *Ks = ixs, *Qs = ixs + IX_TC * P;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    for (int j = threadIdx.x; j < IX_TC * ID; j += blockDim.x) {
        const int r = j / ID, i = j % ID;
        Ks[r * P + i] = c0 + r < rmax ? idx[(int64_t)(c0 + r) * ID + i] : 0.0f;
    }
    float score[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
    for (int h = 0; h < IH; h++) {
        __syncthreads();
        for (int j = threadIdx.x; j < IX_TT * ID; j += blockDim.x) {
            const int r = j / ID, i = j % ID;
            Qs[r * P + i] = t0 + r < n ? qI[((int64_t)(t0 + r) * IH + h) * ID + i] : 0.0f;
        }
        __syncthreads();
        float d[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
        const float *k0 = Ks + tx * P, *k1 = Ks + (tx + 16) * P, *q0 = Qs + ty * P, *q1 = Qs + (ty + 16) * P;
        for (int i = 0; i < ID; i++) {
            const float a0 = k0[i], a1 = k1[i], b0 = q0[i], b1 = q1[i];
            d[0][0] += a0 * b0;
            d[0][1] += a1 * b0;
            d[1][0] += a0 * b1;
            d[1][1] += a1 * b1;
        }
#pragma unroll
        for (int a = 0; a < 2; a++) {
            const int t = t0 + ty + 16 * a;
            const float w = t < n ? wI[(int64_t)t * IH + h] : 0.0f;
#pragma unroll
            for (int b = 0; b < 2; b++) score[a][b] += (d[a][b] > 0.0f ? d[a][b] : 0.0f) * w;
        }
    }
#pragma unroll
    for (int a = 0; a < 2; a++) {
        const int t = t0 + ty + 16 * a;
        if (t >= n) continue;
        const int rows = ix_rows(nc0, pos0, t);
#pragma unroll
        for (int b = 0; b < 2; b++) {
            const int c = c0 + tx + 16 * b;
            if (c < rows) S[(int64_t)t * ldS + c] = score[a][b];
        }
    }
}

/* Order-preserving key: larger float, larger key (±0 alike). */
static __device__ __forceinline__ uint32_t fkey(float f) {
    if (f == 0.0f) f = 0.0f;
    const uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Exclusive prefix of flag over the block (1024 threads) and the total. */
static __device__ __forceinline__ int block_scan(int flag, int *warp_tot, int *total) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const uint32_t bal = __ballot_sync(FULL, flag);
    const int in_warp = __popc(bal & ((1u << lane) - 1u));
    if (lane == 0) warp_tot[w] = __popc(bal);
    __syncthreads();
    int before = 0, all = 0;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) {
        const int v = warp_tot[i];
        before += i < w ? v : 0;
        all += v;
    }
    __syncthreads();
    *total = all;
    return before + in_warp;
}

/* One block per token: the k-th largest key by 4 passes of 8-bit radix
 * select, then rows with a larger key and the first `need` with an equal
 * one (lowest indices), ascending, into sel[t·k ...]. */
static __global__ void __launch_bounds__(1024) k_ix_topk(const float *S, int ldS, int nc0, int64_t pos0, int n, int k,
                                                         int32_t *sel) {
    __shared__ int hist[256];
    __shared__ int warp_tot[32];
    __shared__ uint32_t s_prefix;
    __shared__ int s_want;
    const int t = blockIdx.x;
    const int rows = ix_rows(nc0, pos0, t);
    if (t >= n || rows <= k) return;
    const float *s = S + (int64_t)t * ldS;
    uint32_t prefix = 0, mask = 0;
    int want = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < rows; i += blockDim.x) {
            const uint32_t key = fkey(s[i]);
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255], 1);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int cum = 0, dg = 0;
            for (dg = 255; dg > 0; dg--) {
                if (cum + hist[dg] >= want) break;
                cum += hist[dg];
            }
            s_prefix = prefix | ((uint32_t)dg << shift);
            s_want = want - cum;
        }
        __syncthreads();
        prefix = s_prefix;
        want = s_want;
        mask |= 255u << shift;
        __syncthreads();
    }
    const uint32_t T = prefix;
    const int need = want; /* rows equal to T that make the cut */
    int out = 0, eq_seen = 0;
    int32_t *o = sel + (int64_t)t * k;
    for (int base = 0; base < rows; base += blockDim.x) {
        const int i = base + threadIdx.x;
        const uint32_t key = i < rows ? fkey(s[i]) : 0u;
        const int gt = i < rows && key > T, eq = i < rows && key == T;
        int eq_tot, take_tot;
        const int eq_rank = eq_seen + block_scan(eq, warp_tot, &eq_tot);
        const int take = gt || (eq && eq_rank < need);
        const int pos = out + block_scan(take, warp_tot, &take_tot);
        if (take && pos < k) o[pos] = i;
        out += take_tot;
        eq_seen += eq_tot;
    }
}

extern "C" int ds4cu_indexer_batch(const float *idx, int nc0, int64_t pos0, int n, const float *qI, const float *wI,
                                   int IH, int ID, int k, int32_t *sel) {
    if (n < 1 || k < 1 || ID < 1 || ID > 128 || IH < 1 || !ds4cu_gemm_enabled()) return -1;
    const int64_t nmax = (int64_t)nc0 + (pos0 + n) / 4 - pos0 / 4;
    if (nmax <= k) return 0;
    int d = -1;
    if (cudaGetDevice(&d) != cudaSuccess || d < 0 || d >= IX_DEVS) return -1;
    const size_t need = (size_t)n * (size_t)nmax;
    if (need > ix_ws_n[d]) {
        ds4cu_free(ix_ws[d]);
        ix_ws_n[d] = 0;
        if (!(ix_ws[d] = (float *)ds4cu_malloc(sizeof(float) * need))) return -1;
        ix_ws_n[d] = need;
    }
    const size_t smem = sizeof(float) * (size_t)(IX_TC + IX_TT) * (size_t)(ID + 1);
    k_ix_scores<<<dim3(cdiv(nmax, IX_TC), cdiv(n, IX_TT)), 256, smem, ds4cu_s>>>(idx, nc0, pos0, n, qI, wI, IH, ID, k,
                                                                                 (int)nmax, ix_ws[d]);
    k_ix_topk<<<(unsigned)n, 1024, 0, ds4cu_s>>>(ix_ws[d], (int)nmax, nc0, pos0, n, k, sel);
    ds4cu_after("indexer_batch");
    return 1;
}
