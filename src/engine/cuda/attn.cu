/* attn.cu - the cache-reading half of an attention sub-layer, one token at a
 * time as in cpu/attention.c: raw-window append, the compressor state
 * machines (pool, norm, RoPE, FP8 or Hadamard+FP4, F16 row), the indexer's
 * scores and top-k, and the sink attention over the visible rows.
 *
 * Order: every sequential float chain of the CPU (a row's dot over head_dim,
 * the softmax denominator, each output dim's sum over rows, a pooled
 * feature's sum over window slots) is one thread's loop in the same order;
 * only order-free steps (max, integer counts) are parallel reductions. */
#include "engine/cuda/common.cuh"
#include "engine/cuda/numerics.cuh"

static __device__ void compressor_step(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                       int w, int64_t p, int emit, const float *norm_w, float eps, const float *cs,
                                       int n_rot, int indexer, float *dst, float *P, double *part) {
    const int L = r == 4 ? 2 : 1, Wc = L * w;
    const int s = (int)(p % r), rho = r == 4 ? 4 + s : s;
    float *sv = SV + (int64_t)rho * Wc, *sk = SK + (int64_t)rho * Wc;
    const uint16_t *ap = ape + (int64_t)s * Wc;
    for (int j = threadIdx.x; j < Wc; j += blockDim.x) {
        sv[j] = v[j];
        sk[j] = g[j] + d_f16(ap[j]);
    }
    __syncthreads();
    if (!emit) return;
    for (int j = threadIdx.x; j < w; j += blockDim.x) {
        float m = -INFINITY;
        if (r == 4) {
            for (int t = 0; t < 4; t++) {
                const float a = SK[(int64_t)t * Wc + j], b = SK[(int64_t)(4 + t) * Wc + w + j];
                if (a > m) m = a;
                if (b > m) m = b;
            }
        } else {
            for (int t = 0; t < r; t++) {
                const float a = SK[(int64_t)t * Wc + j];
                if (a > m) m = a;
            }
        }
        if (m <= -0.5e30f) { P[j] = 0.0f; continue; }
        float denom = 0.0f, sum = 0.0f;
        if (r == 4) {
            for (int t = 0; t < 4; t++) {
                const float wp = d_expf(SK[(int64_t)t * Wc + j] - m);
                const float wc = d_expf(SK[(int64_t)(4 + t) * Wc + w + j] - m);
                denom += wp + wc;
                sum += wp * SV[(int64_t)t * Wc + j];
                sum += wc * SV[(int64_t)(4 + t) * Wc + w + j];
            }
        } else {
            for (int t = 0; t < r; t++) {
                const float wt = d_expf(SK[(int64_t)t * Wc + j] - m);
                denom += wt;
                sum += wt * SV[(int64_t)t * Wc + j];
            }
        }
        P[j] = sum / denom;
    }
    __syncthreads();
    double ss = 0.0;
    for (int j = threadIdx.x; j < w; j += blockDim.x) ss += (double)P[j] * (double)P[j];
    part[threadIdx.x] = ss;
    __syncthreads();
    for (int o = blockDim.x / 2; o; o >>= 1) {
        if ((int)threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    const float scale = 1.0f / sqrtf((float)(part[0] / w) + eps);
    for (int j = threadIdx.x; j < w; j += blockDim.x) P[j] = P[j] * scale * norm_w[j];
    __syncthreads();
    const int half = n_rot / 2;
    for (int k = threadIdx.x; k < half; k += blockDim.x) {
        float *x = P + (w - n_rot);
        const float x0 = x[2 * k], x1 = x[2 * k + 1];
        x[2 * k] = x0 * cs[k] - x1 * cs[half + k];
        x[2 * k + 1] = x0 * cs[half + k] + x1 * cs[k];
    }
    __syncthreads();
    if (indexer) d_iqat_block(P);
    else {
        if ((int)threadIdx.x < (w - n_rot + 63) / 64) d_fp8_block(P + 64 * threadIdx.x);
        __syncthreads();
    }
    for (int j = threadIdx.x; j < w; j += blockDim.x) dst[j] = d_f16r(P[j]);
    if (r == 4) {
        __syncthreads();
        for (int i = threadIdx.x; i < 4 * Wc; i += blockDim.x) {
            SV[i] = SV[4 * Wc + i];
            SK[i] = SK[4 * Wc + i];
        }
    }
    __syncthreads();
}

static __global__ void k_compressor(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                    int w, int64_t pos0, int n, const float *norm_w, float eps, const float *tab,
                                    int n_rot, int indexer, float *rows, int n_rows0, const int64_t *dpos) {
    extern __shared__ float P[]; /* w floats */
    if (dpos) {
        pos0 = *dpos;
        n_rows0 = (int)(pos0 / r);
    }
    __shared__ double part[256];
    const int L = r == 4 ? 2 : 1, Wc = L * w;
    int emitted = 0;
    for (int t = 0; t < n; t++) {
        const int64_t p = pos0 + t;
        const int emit = (p + 1) % r == 0;
        const float *cs = tab + (emit ? p + 1 - r : 0) * n_rot;
        compressor_step(SV, SK, v + (int64_t)t * Wc, g + (int64_t)t * Wc, ape, r, w, p, emit, norm_w, eps, cs, n_rot,
                        indexer, rows + (int64_t)(n_rows0 + emitted) * w, P, part);
        emitted += emit;
    }
    /* Unseen slots of the current window back to (0, -1e30) (forward.c's
     * canonical_frontiers on the CPU): the state then does not depend on how
     * tokens were batched. Those slots are always rewritten before they are
     * read, so doing it after every batch equals doing it once at the end. */
    const int64_t na = pos0 + n;
    const int s = (int)(na % r), first = r == 4 ? 4 + s : s, nrows = r == 4 ? 8 : r;
    for (int i = first * Wc + threadIdx.x; i < nrows * Wc; i += blockDim.x) {
        SV[i] = 0.0f;
        SK[i] = -1e30f;
    }
}

extern "C" void ds4cu_compressor_seq(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape,
                                     int r, int w, int64_t pos0, int n, const float *norm_w, float eps, const float *tab,
                                     int n_rot, int indexer, float *rows, int n_rows0) {
    e4m3_init();
    if (n > 0)
        k_compressor<<<1, 256, sizeof(float) * w, ds4cu_s>>>(SV, SK, v, g, ape, r, w, pos0, n, norm_w, eps, tab, n_rot,
                                                             indexer, rows, n_rows0, ds4cu_dpos);
    ds4cu_after("compressor");
}

/* One token: the spread kernel of attn_dec.cu (same state and rows). */
extern "C" void ds4cu_compressor(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                 int w, int64_t pos0, int n, const float *norm_w, float eps, const float *tab, int n_rot,
                                 int indexer, float *rows, int n_rows0) {
    if (n == 1 && !ds4cu_compressor_dec(SV, SK, v, g, ape, r, w, pos0, norm_w, eps, tab, n_rot, indexer, rows, n_rows0))
        return;
    ds4cu_compressor_seq(SV, SK, v, g, ape, r, w, pos0, n, norm_w, eps, tab, n_rot, indexer, rows, n_rows0);
}

static __global__ void k_frontier_reset(float *SV, float *SK, int row0, int rows, int Wc) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t n = (int64_t)(rows - row0) * Wc;
    if (i >= n) return;
    SV[(int64_t)row0 * Wc + i] = 0.0f;
    SK[(int64_t)row0 * Wc + i] = -1e30f;
}
extern "C" void ds4cu_frontier_reset(float *SV, float *SK, int row0, int rows, int Wc) {
    if (rows > row0) k_frontier_reset<<<cdiv((int64_t)(rows - row0) * Wc, 256), 256, 0, ds4cu_s>>>(SV, SK, row0, rows, Wc);
    ds4cu_after("frontier_reset");
}

/* ---------------- indexer ---------------- */
/* In device-position mode the row count is (p+1)/4 (this token's emission
 * included) and every kernel returns at once while it is <= k. */
static __device__ __forceinline__ int idx_rows(int n_comp, int k, const int64_t *dpos) {
    if (!dpos) return n_comp;
    const int n = (int)((*dpos + 1) / 4);
    return n > k ? n : 0;
}

static __global__ void k_idx_scores(const float *idx, int n_comp, const float *qI, const float *wI, int IH, int ID,
                                    float *scores, int k, const int64_t *dpos) {
    n_comp = idx_rows(n_comp, k, dpos);
    const int c = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x & 31;
    if (c >= n_comp) return;
    const float *K = idx + (int64_t)c * ID;
    float score = 0.0f;
    for (int hc = 0; hc < IH; hc += 32) {
        const int h = hc + lane;
        float d = 0.0f;
        if (h < IH) {
            const float *q = qI + (int64_t)h * ID;
            for (int i = 0; i < ID; i++) d += K[i] * q[i];
        }
        const int lim = IH - hc < 32 ? IH - hc : 32;
        for (int l = 0; l < lim; l++) {
            const float dl = __shfl_sync(0xffffffffu, d, l);
            score += (dl > 0.0f ? dl : 0.0f) * wI[hc + l];
        }
    }
    if (lane == 0) scores[c] = score;
}

/* The same scores with every (row, head) chain on its own thread: a block
 * takes 16 rows (staged, padded) and all heads (IH <= 64, ID == 128);
 * thread (row, group of 4 heads) runs 4 chains in index order, then one
 * thread per row adds the heads' terms in head order. The staging goes
 * through registers, all of a thread's loads before its stores: a load-store
 * loop (generic pointers may alias shared memory) waits out one memory
 * latency per element, 15 us at 2k context. */
static __global__ void __launch_bounds__(256) k_idx_scores16(const float *idx, int n_comp, const float *qI,
                                                             const float *wI, int IH, float *scores, int k,
                                                             const int64_t *dpos) {
    __shared__ float ks[16][129], dots[64][17], ws[64];
    __shared__ float4 qs4[64 * 32];
    float *qs = (float *)qs4;
    const float4 *q4 = (const float4 *)qI;
    float4 qv[8]; /* q and the head weights do not wait for the position */
#pragma unroll
    for (int u = 0; u < 8; u++) {
        const int i = threadIdx.x + 256 * u;
        if (i < IH * 32) qv[u] = __ldg(q4 + i);
    }
    const float wv = (int)threadIdx.x < IH ? __ldg(wI + threadIdx.x) : 0.0f;
    n_comp = idx_rows(n_comp, k, dpos);
    const int c0 = blockIdx.x * 16;
    if (c0 >= n_comp) return;
    const int nr = n_comp - c0 < 16 ? n_comp - c0 : 16;
    if ((int)threadIdx.x < IH) ws[threadIdx.x] = wv;
    {
        const float4 *k4 = (const float4 *)(idx + (int64_t)c0 * 128);
        float4 kv[2];
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const int i = threadIdx.x + 256 * u;
            kv[u] = i / 32 < nr ? __ldg(k4 + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int u = 0; u < 8; u++) {
            const int i = threadIdx.x + 256 * u;
            if (i < IH * 32) qs4[i] = qv[u];
        }
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const int i = threadIdx.x + 256 * u, r = i / 32, c = 4 * (i % 32);
            ks[r][c] = kv[u].x; ks[r][c + 1] = kv[u].y; ks[r][c + 2] = kv[u].z; ks[r][c + 3] = kv[u].w;
        }
    }
    __syncthreads();
    const int r = threadIdx.x & 15, g = threadIdx.x >> 4;
    for (int h0 = 4 * g; h0 < IH; h0 += 64) {
        const float *q0 = qs + h0 * 128;
        float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
        const int nh = IH - h0 < 4 ? IH - h0 : 4;
        for (int i = 0; i < 128; i++) {
            const float kv = ks[r][i];
            d0 += kv * q0[i];
            if (nh > 1) d1 += kv * q0[128 + i];
            if (nh > 2) d2 += kv * q0[256 + i];
            if (nh > 3) d3 += kv * q0[384 + i];
        }
        dots[h0][r] = d0;
        if (nh > 1) dots[h0 + 1][r] = d1;
        if (nh > 2) dots[h0 + 2][r] = d2;
        if (nh > 3) dots[h0 + 3][r] = d3;
    }
    __syncthreads();
    if ((int)threadIdx.x < nr) {
        float score = 0.0f;
        for (int h = 0; h < IH; h++) {
            const float d = dots[h][threadIdx.x];
            score += (d > 0.0f ? d : 0.0f) * ws[h];
        }
        scores[c0 + threadIdx.x] = score;
    }
}

/* flag[i] = 1 when fewer than k rows beat row i (higher score, or equal score
 * and lower index): exactly the CPU's sorted top-k. A warp per row (the
 * count is an integer sum: any order). */
static __global__ void __launch_bounds__(256) k_topk_flag(const float *sc, int n, int k, int32_t *flag,
                                                          const int64_t *dpos) {
    n = idx_rows(n, k, dpos);
    const int i = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (i >= n) return;
    const float si = __ldg(sc + i);
    int rank = 0;
    for (int j = lane; j < n; j += 32) {
        const float sj = __ldg(sc + j);
        rank += (sj > si) || (sj == si && j < i);
    }
    for (int off = 16; off; off >>= 1) rank += __shfl_xor_sync(0xffffffffu, rank, off);
    if (lane == 0) flag[i] = rank < k;
}

/* The flagged rows' indices, ascending: ballots and a prefix over warps.
 * The first 8 chunks' flags are loaded before any is used (one memory
 * latency instead of one per chunk: 8192 rows at 32k context). */
static __device__ __forceinline__ void compact_chunk(int f, int i, int *off, int *wsum, int32_t *sel) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const unsigned b = __ballot_sync(0xffffffffu, f);
    if (lane == 0) wsum[wid] = __popc(b);
    __syncthreads();
    int before = 0, total = 0;
    for (int u = 0; u < 32; u++) {
        const int c = wsum[u];
        before += u < wid ? c : 0;
        total += c;
    }
    if (f) sel[*off + before + __popc(b & ((1u << lane) - 1u))] = i;
    *off += total;
    __syncthreads();
}

static __global__ void __launch_bounds__(1024) k_compact(const int32_t *flag, int n, int32_t *sel, int k,
                                                         const int64_t *dpos) {
    __shared__ int wsum[32];
    n = idx_rows(n, k, dpos);
    int fl[8], off = 0;
#pragma unroll
    for (int u = 0; u < 8; u++) {
        const int i = u * 1024 + threadIdx.x;
        fl[u] = i < n ? flag[i] : 0;
    }
#pragma unroll
    for (int u = 0; u < 8; u++)
        if (u * 1024 < n) compact_chunk(fl[u], u * 1024 + threadIdx.x, &off, wsum, sel);
    for (int base = 8 * 1024; base < n; base += 1024) {
        const int i = base + threadIdx.x;
        compact_chunk(i < n ? flag[i] : 0, i, &off, wsum, sel);
    }
}

extern "C" void ds4cu_indexer_select(const float *idx, int n_comp, const float *qI, const float *wI, int IH, int ID,
                                     int k, float *scores, int32_t *flags, int32_t *sel) {
    if (n_comp <= 0) return;
    if (ID == 128 && IH <= 64 && (((uintptr_t)idx | (uintptr_t)qI) & 15) == 0)
        k_idx_scores16<<<cdiv(n_comp, 16), 256, 0, ds4cu_s>>>(idx, n_comp, qI, wI, IH, scores, k, ds4cu_dpos);
    else
        k_idx_scores<<<cdiv(n_comp, 8), 256, 0, ds4cu_s>>>(idx, n_comp, qI, wI, IH, ID, scores, k, ds4cu_dpos);
    k_topk_flag<<<cdiv(n_comp, 8), 256, 0, ds4cu_s>>>(scores, n_comp, k, flags, ds4cu_dpos);
    k_compact<<<1, 1024, 0, ds4cu_s>>>(flags, n_comp, sel, k, ds4cu_dpos);
    ds4cu_after("indexer_select");
}

/* ---------------- sink attention: one block per (head, token) ----------------
 * Token t of the batch is at p = pos0 + t. Its raw rows are positions
 * p-n_raw+1 .. p: those before pos0 come from the ring (not yet overwritten:
 * the batch's rows are appended after this kernel), the batch's own from kvh
 * (its f16-rounded KV rows). Its compressed rows are the first n_comp(t) of
 * comp (all emissions of the batch were computed before), or sel[t] when the
 * indexer chose. */
static __global__ void k_kvh(const float *kv, float *kvh, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) kvh[i] = d_f16r(kv[i]);
}

/* HPB heads per block share every row load (the rows are the same for all
 * heads of a token); each head keeps its own chains in the CPU's order. */
template <int HPB>
static __global__ void k_attention(const float *q, float *o, const float *raw, int raw_cap, const float *kvh,
                                   int64_t pos0, int swa, const float *comp, int n_comp0, int ratio, const int32_t *sel,
                                   int top_k, const float *sinks, int H, int D, float scale, const int64_t *dpos) {
    extern __shared__ float sm[];
    __shared__ float red[HPB][32];
    __shared__ float inv_s[HPB];
    if (dpos) {
        pos0 = *dpos;
        n_comp0 = ratio ? (int)(pos0 / ratio) : 0;
    }
    const int h0 = blockIdx.x * HPB, t = blockIdx.y;
    const int64_t p = pos0 + t;
    const int n_raw = (int)(p + 1 < swa ? p + 1 : swa);
    int n_sel = 0;
    if (ratio) n_sel = n_comp0 + (int)((p + 1) / ratio - pos0 / ratio);
    const int32_t *sl = NULL;
    if (sel && n_sel > top_k) { sl = sel + (int64_t)t * top_k; n_sel = top_k; }
    const int nvis = n_raw + n_sel, nvp = (nvis + 1) & ~1;
    float *qs = sm, *sc = sm + HPB * D;
    const float **rows = (const float **)(sc + HPB * nvp);
    for (int i = threadIdx.x; i < HPB * D; i += blockDim.x) qs[i] = q[((int64_t)t * H + h0) * D + i];
    for (int j = threadIdx.x; j < nvis; j += blockDim.x) {
        if (j < n_raw) {
            const int64_t pos = p - n_raw + 1 + j;
            rows[j] = pos >= pos0 ? kvh + (pos - pos0) * D : raw + (pos % raw_cap) * D;
        } else {
            const int c = j - n_raw;
            rows[j] = comp + (int64_t)(sl ? sl[c] : c) * D;
        }
    }
    __syncthreads();
    float mx[HPB];
    for (int hh = 0; hh < HPB; hh++) mx[hh] = sinks[h0 + hh];
    for (int j = threadIdx.x; j < nvis; j += blockDim.x) {
        const float4 *k4 = (const float4 *)rows[j];
        float d[HPB];
        for (int hh = 0; hh < HPB; hh++) d[hh] = 0.0f;
        for (int i = 0; i < D / 4; i++) {
            const float4 k = k4[i];
            for (int hh = 0; hh < HPB; hh++) {
                const float *qh = qs + hh * D + 4 * i;
                d[hh] += qh[0] * k.x;
                d[hh] += qh[1] * k.y;
                d[hh] += qh[2] * k.z;
                d[hh] += qh[3] * k.w;
            }
        }
        for (int hh = 0; hh < HPB; hh++) {
            sc[hh * nvp + j] = d[hh] * scale;
            mx[hh] = fmaxf(mx[hh], sc[hh * nvp + j]);
        }
    }
    const int nw = blockDim.x / 32;
    for (int hh = 0; hh < HPB; hh++) {
        float v = mx[hh];
        for (int off = 16; off; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
        if ((threadIdx.x & 31) == 0) red[hh][threadIdx.x / 32] = v;
    }
    __syncthreads();
    if (threadIdx.x < 32)
        for (int hh = 0; hh < HPB; hh++) {
            float v = (int)threadIdx.x < nw ? red[hh][threadIdx.x] : sinks[h0 + hh];
            for (int off = 16; off; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
            if (threadIdx.x == 0) red[hh][0] = v;
        }
    __syncthreads();
    for (int i = threadIdx.x; i < HPB * nvis; i += blockDim.x) {
        const int hh = i / nvis, j = i % nvis;
        sc[hh * nvp + j] = d_expf(sc[hh * nvp + j] - red[hh][0]);
    }
    __syncthreads();
    if (threadIdx.x < HPB) {
        const int hh = threadIdx.x;
        float den = d_expf(sinks[h0 + hh] - red[hh][0]);
        for (int j = 0; j < nvis; j++) den += sc[hh * nvp + j];
        inv_s[hh] = 1.0f / den;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float acc[HPB];
        for (int hh = 0; hh < HPB; hh++) acc[hh] = 0.0f;
        int j = 0;
        for (; j + 8 <= nvis; j += 8) { /* eight loads in flight, adds still in row order */
            float v[8];
            for (int u = 0; u < 8; u++) v[u] = rows[j + u][i];
            for (int u = 0; u < 8; u++)
                for (int hh = 0; hh < HPB; hh++) acc[hh] += sc[hh * nvp + j + u] * v[u];
        }
        for (; j < nvis; j++) {
            const float v = rows[j][i];
            for (int hh = 0; hh < HPB; hh++) acc[hh] += sc[hh * nvp + j] * v;
        }
        for (int hh = 0; hh < HPB; hh++) o[((int64_t)t * H + h0 + hh) * D + i] = acc[hh] * inv_s[hh];
    }
}

/* The batch's rows into the ring after attention: only the last raw_cap matter. */
static __global__ void k_raw_store(float *raw, int raw_cap, const float *kvh, int64_t pos0, int n, int D,
                            const int64_t *dpos) {
    if (dpos) pos0 = *dpos;
    const int first = n > raw_cap ? n - raw_cap : 0;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)(n - first) * D) return;
    const int t = first + (int)(i / D), d = (int)(i % D);
    raw[((pos0 + t) % raw_cap) * D + d] = kvh[(int64_t)t * D + d];
}

extern "C" void ds4cu_attention(const float *q, float *o, const float *kv, float *kvh, float *raw, int raw_cap,
                                int64_t pos0, int n, int swa, const float *comp, int n_comp0, int comp_cap, int ratio,
                                const int32_t *sel, int top_k, const float *sinks, int H, int D, float scale) {
    const size_t nk = (size_t)n * D;
    k_kvh<<<cdiv((int64_t)nk, 256), 256, 0, ds4cu_s>>>(kv, kvh, nk);
    int max_comp = ratio ? n_comp0 + (int)((pos0 + n) / ratio - pos0 / ratio) : 0;
    if (ds4cu_dpos) max_comp = ratio ? comp_cap : 0; /* sized for any later step */
    if (sel && max_comp > top_k) max_comp = top_k;
    /* Sharing rows across 4 heads pays in prefill; decode needs the blocks. */
    const int nvis = swa + max_comp, hpb = H % 4 == 0 && n * H / 4 >= 256 ? 4 : 1;
    const size_t smem = sizeof(float) * (size_t)hpb * (D + ((nvis + 1) & ~1)) + sizeof(float *) * (size_t)nvis;
    const int threads = D >= 512 ? 512 : 256;
    if (hpb == 4) {
        if (smem > 48 * 1024) cudaFuncSetAttribute(k_attention<4>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        k_attention<4><<<dim3(H / 4, n), threads, smem, ds4cu_s>>>(q, o, raw, raw_cap, kvh, pos0, swa, comp, n_comp0,
                                                                  ratio, sel, top_k, sinks, H, D, scale, ds4cu_dpos);
    } else {
        if (smem > 48 * 1024) cudaFuncSetAttribute(k_attention<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        k_attention<1><<<dim3(H, n), threads, smem, ds4cu_s>>>(q, o, raw, raw_cap, kvh, pos0, swa, comp, n_comp0, ratio,
                                                              sel, top_k, sinks, H, D, scale, ds4cu_dpos);
    }
    k_raw_store<<<cdiv((int64_t)(n < raw_cap ? n : raw_cap) * D, 256), 256, 0, ds4cu_s>>>(raw, raw_cap, kvh, pos0, n, D, ds4cu_dpos);
    ds4cu_after("attention");
}

/* One decoded token's attention (n = 1): attn_dec.cu. */
