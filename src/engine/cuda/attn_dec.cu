/* attn_dec.cu - the cache-reading kernels of one decoded token (n = 1):
 * sink attention as two grids and the compressor step, each spread over
 * enough threads that a token's step is not one block's serial walk.
 *
 * Why a file of its own: attn.cu's kernels walk a prefill batch token by
 * token; at decode that walk is one block, and its staging loops (a load,
 * then a store to shared memory that the compiler must keep in order behind
 * it) put one memory latency per element on the critical path: 35 us for a
 * 128-row score grid. Here every staging copy is cp.async (all in flight at
 * once) or a register batch.
 *
 * Order: every float chain is the CPU's (cpu/attention.c): a row's dot over
 * head_dim in index order, the softmax denominator and each output dim's sum
 * over rows in row order, a pooled feature's sums over window slots in slot
 * order, the compressor RMSNorm's double partials in attn.cu's tree. Only
 * max, counts and loads are parallel. test_cuda_ops compares each kernel with
 * attn.cu's (the goldens' reference) bit for bit. */
#include "engine/cuda/common.cuh"
#include "engine/cuda/numerics.cuh"

static __device__ __forceinline__ void cp16(void *smem, const void *g) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(g) : "memory");
}
static __device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> static __device__ __forceinline__ void cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* ---------------- sink attention ----------------
 * Visible rows of the token at p, as k_attention finds them: the n_raw newest
 * raw positions (the ring; p itself is written into the ring by the score
 * grid, which reads it from kv: the slot it overwrites is never visible, as
 * on the CPU, which stores the row before attending), then the compressed
 * rows, or sel[] when the indexer chose. */
struct dec_rows {
    float *raw;
    const float *kv, *comp;
    const int32_t *sel;
    int raw_cap, swa, ratio, top_k, D;
};

static __device__ __forceinline__ int dec_visible(const dec_rows &R, int64_t p, int n_comp0, int *n_raw,
                                                  const int32_t **sl) {
    *n_raw = (int)(p + 1 < R.swa ? p + 1 : R.swa);
    int n_sel = R.ratio ? n_comp0 + (int)((p + 1) / R.ratio - p / R.ratio) : 0;
    *sl = NULL;
    if (R.sel && n_sel > R.top_k) { *sl = R.sel; n_sel = R.top_k; }
    return *n_raw + n_sel;
}

static __device__ __forceinline__ const float *dec_row(const dec_rows &R, int64_t p, int n_raw, const int32_t *sl,
                                                       int j) {
    if (j < n_raw) return R.raw + ((p - n_raw + 1 + j) % R.raw_cap) * R.D;
    const int c = j - n_raw;
    return R.comp + (int64_t)(sl ? sl[c] : c) * R.D;
}

/* rp[0..nvis) = every visible row, U of each thread's sel[] loads in flight
 * at once (a load-then-store loop waits one memory latency per row). */
template <int U>
static __device__ __forceinline__ void dec_rows_fill(const dec_rows &R, int64_t p, int n_raw, const int32_t *sl,
                                                     int nvis, const float **rp) {
    const int64_t base = (p - n_raw + 1) % R.raw_cap; /* ring slot of the oldest raw row */
    for (int j0 = 0; j0 < nvis; j0 += U * (int)blockDim.x) {
        int32_t ix[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int j = j0 + u * (int)blockDim.x + (int)threadIdx.x, c = j - n_raw;
            ix[u] = j < nvis && c >= 0 && sl ? __ldg(sl + c) : c;
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int j = j0 + u * (int)blockDim.x + (int)threadIdx.x;
            if (j >= nvis) continue;
            if (j < n_raw) {
                int64_t slot = base + j;
                if (slot >= R.raw_cap) slot -= R.raw_cap;
                rp[j] = R.raw + slot * R.D;
            } else {
                rp[j] = R.comp + (int64_t)ix[u] * R.D;
            }
        }
    }
}

#define SC_RB 32 /* rows per score block (one per lane) */
#define SC_HB 8  /* heads per score block */
/* S[h][j] = (Σ_i q[h][i]·k[j][i], i in order)·scale. Block (8 heads, 32
 * rows): lane = row, each warp HPW heads (HPW = 2: 4 warps, each row read
 * serves two chains; HPW = 1: 8 warps, more warps to hide latency), the
 * chains from float4 reads of the staged row (row stride D+4 floats: the 8
 * lanes of a 16-byte phase hit different banks) and broadcast reads of q.
 * q, then the rows arrive by cp.async in two halves of D, the first half's
 * chains running while the second half lands. Block (0,0) also stores the
 * token's F16-rounded KV row into the ring. */
template <int HPW>
static __global__ void __launch_bounds__(32 * SC_HB / HPW) k_att_scores(const float *q, dec_rows R, int64_t pos0,
                                                                        int n_comp0, const int64_t *dpos, float scale,
                                                                        float *S, int nvis_max) {
    constexpr int NW = SC_HB / HPW;
    extern __shared__ float4 sm4[];
    __shared__ const float *rp[SC_RB];
    const int D = R.D, KS = D + 4;
    float *ks = (float *)sm4, *qs = ks + SC_RB * KS;
    const int D4 = D / 4, H4 = D4 / 2, lane = threadIdx.x & 31, w = threadIdx.x >> 5, h0 = blockIdx.x * SC_HB;
    /* q first: it does not wait for the position */
    for (int h = w; h < SC_HB; h += NW)
        for (int c = lane; c < D4; c += 32) cp16(qs + h * D + 4 * c, q + (int64_t)(h0 + h) * D + 4 * c);
    if (dpos) {
        pos0 = *dpos;
        n_comp0 = R.ratio ? (int)(pos0 / R.ratio) : 0;
    }
    const int64_t p = pos0;
    if (blockIdx.x == 0 && blockIdx.y == 0)
        for (int i = threadIdx.x; i < D; i += blockDim.x) R.raw[(p % R.raw_cap) * D + i] = d_f16r(R.kv[i]);
    int n_raw;
    const int32_t *sl;
    const int nvis = dec_visible(R, p, n_comp0, &n_raw, &sl);
    const int j0 = blockIdx.y * SC_RB;
    if (j0 >= nvis) { /* q's copies land before the block leaves */
        cp_commit();
        cp_wait<0>();
        return;
    }
    const int nr = nvis - j0 < SC_RB ? nvis - j0 : SC_RB, cur = n_raw - 1 - j0; /* p's row in this block, if any */
    if ((int)threadIdx.x < nr) rp[threadIdx.x] = dec_row(R, p, n_raw, sl, j0 + threadIdx.x);
    __syncthreads();
    for (int half = 0; half < 2; half++) { /* group 0: q and the rows' first half; group 1: their second half */
        for (int r = w; r < nr; r += NW)
            for (int c = half * H4 + lane; c < (half + 1) * H4 && r != cur; c += 32)
                cp16(ks + r * KS + 4 * c, rp[r] + 4 * c);
        cp_commit();
    }
    if (cur >= 0 && cur < nr)
        for (int i = threadIdx.x; i < D; i += blockDim.x) ks[cur * KS + i] = d_f16r(R.kv[i]);
    const float4 *kr = (const float4 *)(ks + lane * KS), *qh = (const float4 *)(qs + HPW * w * D);
    float d[HPW];
#pragma unroll
    for (int u = 0; u < HPW; u++) d[u] = 0.0f;
    for (int half = 0; half < 2; half++) {
        if (half == 0) cp_wait<1>();
        else cp_wait<0>();
        __syncthreads();
        /* the next step's operands are loaded before this step's adds, so
         * the chains wait only on each other, not on shared memory */
        const int c0 = half * H4, c1 = c0 + H4;
        float4 k = kr[c0], a[HPW];
#pragma unroll
        for (int u = 0; u < HPW; u++) a[u] = qh[u * D4 + c0];
#pragma unroll 4
        for (int c = c0; c < c1; c++) {
            const int cn = c + 1 < c1 ? c + 1 : c;
            const float4 kn = kr[cn];
            float4 an[HPW];
#pragma unroll
            for (int u = 0; u < HPW; u++) an[u] = qh[u * D4 + cn];
#pragma unroll
            for (int u = 0; u < HPW; u++) d[u] += a[u].x * k.x;
#pragma unroll
            for (int u = 0; u < HPW; u++) d[u] += a[u].y * k.y;
#pragma unroll
            for (int u = 0; u < HPW; u++) d[u] += a[u].z * k.z;
#pragma unroll
            for (int u = 0; u < HPW; u++) d[u] += a[u].w * k.w;
            k = kn;
#pragma unroll
            for (int u = 0; u < HPW; u++) a[u] = an[u];
        }
    }
    if (lane < nr)
#pragma unroll
        for (int u = 0; u < HPW; u++) S[(int64_t)(h0 + HPW * w + u) * nvis_max + j0 + lane] = d[u] * scale;
}

#define OUT_HB 8    /* heads per output block */
#define OUT_CH 128  /* value rows per staged chunk (32 dims: 16 KB) */
#define OUT_NB 6    /* chunks in the ring: up to 640 rows in flight at once */
template <int NT> static __device__ __forceinline__ void bar_compute() {
    asm volatile("bar.sync 1, %0;\n" ::"n"(NT) : "memory");
}

/* o[h][i] = (Σ_j e[h][j]·v[j][i], j in order) / (e^(sink−m) + Σ_j e[h][j], j in order),
 * e[h][j] = exp(S[h][j] − m), m = max(sink, S[h][·]). Block (8 heads, 32
 * dims): compute warps (lane = dim, HPW heads each: with 2, each value read
 * serves two chains) and one more warp whose 8 lanes add the denominators
 * meanwhile. The value columns stream through a ring of cp.async chunks
 * (the compute warps sync on barrier 1). */
template <int HPW>
static __global__ void __launch_bounds__(32 * (OUT_HB / HPW + 1)) k_att_out(float *o, dec_rows R, int64_t pos0,
                                                                           int n_comp0, const int64_t *dpos,
                                                                           const float *sinks, const float *S,
                                                                           int nvis_max, int nvp, int nbuf) {
    constexpr int NW = OUT_HB / HPW, NT = 32 * NW;
    extern __shared__ float4 sm4[];
    float *es = (float *)sm4;                                              /* OUT_HB × nvp */
    float *vs = es + OUT_HB * nvp;                                         /* nbuf × OUT_CH × 32 */
    const float **rp = (const float **)(vs + (size_t)nbuf * OUT_CH * 32); /* nvis_max */
    __shared__ float mx[OUT_HB], inv[OUT_HB];
    if (dpos) {
        pos0 = *dpos;
        n_comp0 = R.ratio ? (int)(pos0 / R.ratio) : 0;
    }
    const int64_t p = pos0;
    int n_raw;
    const int32_t *sl;
    const int nvis = dec_visible(R, p, n_comp0, &n_raw, &sl);
    const int h0 = blockIdx.x * OUT_HB, i0 = blockIdx.y * 32;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    dec_rows_fill<8>(R, p, n_raw, sl, nvis, rp);
    __syncthreads();
    const int nch = (nvis + OUT_CH - 1) / OUT_CH;
    if (w < NW) {
        for (int c = 0; c < OUT_NB - 1; c++) {
            for (int idx = threadIdx.x; c < nch && idx < OUT_CH * 8; idx += NT) {
                const int r = idx >> 3, j = c * OUT_CH + r;
                if (j < nvis) cp16(vs + (c * OUT_CH + r) * 32 + 4 * (idx & 7), rp[j] + i0 + 4 * (idx & 7));
            }
            cp_commit();
        }
        for (int k = 0; k < HPW; k++) { /* a head's scores: each lane's loads in flight together */
            const int hh = HPW * w + k, h = h0 + hh;
            const float *Sh = S + (int64_t)h * nvis_max;
            float *e = es + hh * nvp;
            float m = sinks[h];
            for (int j0 = 0; j0 < nvis; j0 += 32 * 24) {
                float t[24];
#pragma unroll
                for (int u = 0; u < 24; u++) {
                    const int j = j0 + 32 * u + lane;
                    t[u] = j < nvis ? __ldg(Sh + j) : -INFINITY;
                }
#pragma unroll
                for (int u = 0; u < 24; u++) {
                    const int j = j0 + 32 * u + lane;
                    if (j < nvis) e[j] = t[u];
                    m = fmaxf(m, t[u]);
                }
            }
            for (int off = 16; off; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
            __syncwarp();
            for (int j = lane; j < nvis; j += 32) e[j] = d_expf(e[j] - m);
            if (lane == 0) mx[hh] = m;
        }
    }
    __syncthreads();
    float acc[HPW];
#pragma unroll
    for (int u = 0; u < HPW; u++) acc[u] = 0.0f;
    if (w == NW) {
        if (lane < OUT_HB) {
            const float *e = es + lane * nvp;
            float den = d_expf(sinks[h0 + lane] - mx[lane]);
            int j = 0;
            for (; j + 16 <= nvis; j += 16) { /* 16 loads in flight, then the adds in order */
                float t[16];
#pragma unroll
                for (int u = 0; u < 16; u++) t[u] = e[j + u];
#pragma unroll
                for (int u = 0; u < 16; u++) den += t[u];
            }
            for (; j < nvis; j++) den += e[j];
            inv[lane] = 1.0f / den;
        }
    } else {
        const float *eh = es + HPW * w * nvp;
        for (int c = 0; c < nch; c++) {
            cp_wait<OUT_NB - 2>();
            bar_compute<NT>();
            const int cn = c + OUT_NB - 1;
            for (int idx = threadIdx.x; cn < nch && idx < OUT_CH * 8; idx += NT) {
                const int r = idx >> 3, j = cn * OUT_CH + r;
                if (j < nvis)
                    cp16(vs + ((cn % OUT_NB) * OUT_CH + r) * 32 + 4 * (idx & 7), rp[j] + i0 + 4 * (idx & 7));
            }
            cp_commit();
            const float *vb = vs + (c % OUT_NB) * OUT_CH * 32 + lane;
            const int jb = c * OUT_CH, nr = nvis - jb < OUT_CH ? nvis - jb : OUT_CH;
            /* 8 rows a step, the next step's e and v loaded before this
             * step's adds (the chains wait on each other, not on shared memory) */
            const int ng = nr / 8;
            int r = ng * 8;
            if (ng > 0) {
                float4 e0[HPW], e1[HPW];
                float v[8];
#pragma unroll
                for (int u = 0; u < HPW; u++) {
                    e0[u] = *(const float4 *)(eh + u * nvp + jb);
                    e1[u] = *(const float4 *)(eh + u * nvp + jb + 4);
                }
#pragma unroll
                for (int t = 0; t < 8; t++) v[t] = vb[t * 32];
                for (int gi = 0; gi < ng; gi++) {
                    const int rn = (gi + 1 < ng ? gi + 1 : gi) * 8;
                    float4 n0[HPW], n1[HPW];
                    float nv[8];
#pragma unroll
                    for (int u = 0; u < HPW; u++) {
                        n0[u] = *(const float4 *)(eh + u * nvp + jb + rn);
                        n1[u] = *(const float4 *)(eh + u * nvp + jb + rn + 4);
                    }
#pragma unroll
                    for (int t = 0; t < 8; t++) nv[t] = vb[(rn + t) * 32];
#pragma unroll
                    for (int u = 0; u < HPW; u++) acc[u] += e0[u].x * v[0];
#pragma unroll
                    for (int u = 0; u < HPW; u++) acc[u] += e0[u].y * v[1];
#pragma unroll
                    for (int u = 0; u < HPW; u++) acc[u] += e0[u].z * v[2];
#pragma unroll
                    for (int u = 0; u < HPW; u++) acc[u] += e0[u].w * v[3];
#pragma unroll
                    for (int u = 0; u < HPW; u++) acc[u] += e1[u].x * v[4];
#pragma unroll
                    for (int u = 0; u < HPW; u++) acc[u] += e1[u].y * v[5];
#pragma unroll
                    for (int u = 0; u < HPW; u++) acc[u] += e1[u].z * v[6];
#pragma unroll
                    for (int u = 0; u < HPW; u++) acc[u] += e1[u].w * v[7];
#pragma unroll
                    for (int u = 0; u < HPW; u++) {
                        e0[u] = n0[u];
                        e1[u] = n1[u];
                    }
#pragma unroll
                    for (int t = 0; t < 8; t++) v[t] = nv[t];
                }
            }
            for (; r < nr; r++) {
                const float v = vb[r * 32];
#pragma unroll
                for (int u = 0; u < HPW; u++) acc[u] += eh[u * nvp + jb + r] * v;
            }
        }
        cp_wait<0>();
    }
    __syncthreads();
    if (w < NW)
#pragma unroll
        for (int u = 0; u < HPW; u++) o[(int64_t)(h0 + HPW * w + u) * R.D + i0 + lane] = acc[u] * inv[HPW * w + u];
}

extern "C" int ds4cu_attention_dec(const float *q, float *o, const float *kv, float *kvh, float *raw, int raw_cap,
                                   int64_t pos0, int swa, const float *comp, int n_comp0, int comp_cap, int ratio,
                                   const int32_t *sel, int top_k, const float *sinks, int H, int D, float scale,
                                   float *scratch, size_t scratch_floats) {
    (void)kvh; /* the ring gets the row directly (k_att_scores) */
    int max_comp = ratio ? n_comp0 + (int)((pos0 + 1) / ratio - pos0 / ratio) : 0;
    if (ds4cu_dpos) max_comp = ratio ? comp_cap : 0;
    if (sel && max_comp > top_k) max_comp = top_k;
    const int nvis_max = swa + max_comp;
    const int nvp = (nvis_max + 31) / 32 * 32 + 4; /* ≡ 4 mod 32: the 8 denominator lanes hit different banks */
    int nbuf = (nvis_max + OUT_CH - 1) / OUT_CH;
    if (nbuf > OUT_NB) nbuf = OUT_NB;
    const size_t sc_bytes = sizeof(float) * ((size_t)SC_RB * (D + 4) + (size_t)SC_HB * D);
    const size_t out_bytes = sizeof(float) * ((size_t)OUT_HB * nvp + (size_t)nbuf * OUT_CH * 32) +
                             sizeof(float *) * (size_t)nvis_max;
    const uintptr_t al = (uintptr_t)q | (uintptr_t)raw | (uintptr_t)comp;
    if (H % SC_HB || H % OUT_HB || D % 64 || (al & 15) || (size_t)H * nvis_max > scratch_floats ||
        sc_bytes > 200 * 1024 || out_bytes > 200 * 1024)
        return -1;
    /* scores: two heads per warp (each staged row read serves two chains);
     * output: one head per warp (more warps, and each loads its own scores:
     * 9.1 vs 11.5 us per call on an H100, 8-layer model at 2k) */
    const void *ks = (const void *)k_att_scores<2>, *ko = (const void *)k_att_out<1>;
    if ((sc_bytes > 48 * 1024 &&
         cudaFuncSetAttribute(ks, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sc_bytes) != cudaSuccess) ||
        (out_bytes > 48 * 1024 &&
         cudaFuncSetAttribute(ko, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)out_bytes) != cudaSuccess)) {
        cudaGetLastError();
        return -1;
    }
    const dec_rows R = {raw, kv, comp, sel, raw_cap, swa, ratio, top_k, D};
    const dim3 gs(H / SC_HB, (nvis_max + SC_RB - 1) / SC_RB), go(H / OUT_HB, D / 32);
    k_att_scores<2><<<gs, 16 * SC_HB, sc_bytes, ds4cu_s>>>(q, R, pos0, n_comp0, ds4cu_dpos, scale, scratch, nvis_max);
    k_att_out<1><<<go, 32 * (OUT_HB + 1), out_bytes, ds4cu_s>>>(o, R, pos0, n_comp0, ds4cu_dpos, sinks, scratch,
                                                                nvis_max, nvp, nbuf);
    ds4cu_after("attention_dec");
    return 0;
}

/* ---------------- compressor step of one token ----------------
 * compressor_step + finish_row (attn.cu k_compressor with n = 1) with the
 * per-feature work spread over threads: thread j of block 0 owns feature j,
 * i.e. state column j (and w+j, the second lane, when r = 4): it writes the
 * token's slot, and on an emission pools its feature from registers, shifts
 * or clears its columns; then the row is finished by the whole block
 * (RMSNorm with k_compressor's 256 double partials and tree, RoPE, FP8 per
 * 64 by a warp each or Hadamard + FP4 per 32 by a warp each, F16). Blocks
 * 1.. clear the unseen slots behind the token's when it does not emit (a
 * ratio-128 window is up to 127 × w floats of each array), which leaves the
 * state exactly as k_compressor leaves it. */

/* d_e4m3_round with the table in shared memory: the same search, but the
 * lanes' different probes do not serialize in the constant cache. */
static __device__ float e4m3_round_sm(const float *t, float v) {
    float a = fabsf(v);
    if (a > 448.0f) a = 448.0f;
    int lo = 0, hi = 126;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (t[mid] <= a) lo = mid;
        else hi = mid - 1;
    }
    int i = lo;
    if (i < 126) {
        const float dn = a - t[i], up = t[i + 1] - a;
        if (up < dn || (up == dn && ((i + 1) % 2 == 0))) i = i + 1;
    }
    return v < 0 ? -t[i] : t[i];
}

/* d_fp8_block by one warp (lane: x[lane], x[lane+32]); max is exact in any order. */
static __device__ void fp8_block_warp(float *x, int lane, const float *t) {
    float amax = fmaxf(0.0f, fmaxf(fabsf(x[lane]), fabsf(x[lane + 32]))); /* a NaN is skipped, as there */
    for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    if (amax < 1e-4f) amax = 1e-4f;
    const float scale = ldexpf(1.0f, (int)ceilf(d_log2f(amax / 448.0f)));
    for (int i = lane; i < 64; i += 32) {
        float qv = x[i] / scale;
        qv = qv < -448.0f ? -448.0f : (qv > 448.0f ? 448.0f : qv);
        x[i] = e4m3_round_sm(t, qv) * scale;
    }
}

/* d_fp4_block by one warp (lane: x[lane]). */
static __device__ void fp4_block_warp(float *x, int lane) {
    float amax = fmaxf(0.0f, fabsf(x[lane]));
    for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    if (amax < 7.052966104933725e-38f) amax = 7.052966104933725e-38f;
    const float scale = ldexpf(1.0f, (int)ceilf(d_log2f(amax / 6.0f)));
    float qv = x[lane] / scale;
    qv = qv < -6.0f ? -6.0f : (qv > 6.0f ? 6.0f : qv);
    x[lane] = d_e2m1_round(qv) * scale;
}

static __global__ void k_cmp_dec(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                 int w, int64_t pos0, const float *norm_w, float eps, const float *tab, int n_rot,
                                 int indexer, float *rows, int n_rows0, const int64_t *dpos) {
    extern __shared__ float P[]; /* w floats */
    __shared__ double part[256];
    __shared__ float e4m3[127];
    if (dpos) {
        pos0 = *dpos;
        n_rows0 = (int)(pos0 / r);
    }
    const int64_t p = pos0;
    const int L = r == 4 ? 2 : 1, Wc = L * w, nrows = r == 4 ? 8 : r;
    if (blockIdx.x == 0 && threadIdx.x < 127) e4m3[threadIdx.x] = c_e4m3[threadIdx.x];
    const int s = (int)(p % r), rho = r == 4 ? 4 + s : s, emit = (p + 1) % r == 0;
    if (blockIdx.x > 0) {
        if (emit) return; /* block 0 clears after reading */
        const int64_t first = (int64_t)(rho + 1) * Wc, total = (int64_t)(nrows - rho - 1) * Wc;
        for (int64_t i = (int64_t)(blockIdx.x - 1) * blockDim.x + threadIdx.x; i < total;
             i += (int64_t)(gridDim.x - 1) * blockDim.x) {
            SV[first + i] = 0.0f;
            SK[first + i] = -1e30f;
        }
        return;
    }
    const int j = threadIdx.x, half = n_rot / 2;
    const uint16_t *ap = ape + (int64_t)s * Wc;
    /* the finish's operands, loaded now so their latency hides behind the pooling */
    const float *cs = tab + (emit ? p + 1 - r : 0) * n_rot;
    const float nwj = emit && j < w ? norm_w[j] : 0.0f;
    const float cj = emit && j < half ? cs[j] : 0.0f, sj = emit && j < half ? cs[half + j] : 0.0f;
    if (j < w) {
        if (r == 4) {
            const int c0 = j, c1 = w + j;
            const float nv0 = v[c0], nk0 = g[c0] + d_f16(ap[c0]), nv1 = v[c1], nk1 = g[c1] + d_f16(ap[c1]);
            if (!emit) {
                SV[(int64_t)rho * Wc + c0] = nv0;
                SK[(int64_t)rho * Wc + c0] = nk0;
                SV[(int64_t)rho * Wc + c1] = nv1;
                SK[(int64_t)rho * Wc + c1] = nk1;
            } else { /* rho = 7 */
                float pv[4], pk[4], cv[4], ck[4], av[4], ak[4];
                for (int t = 0; t < 4; t++) {
                    pv[t] = SV[(int64_t)t * Wc + c0];
                    pk[t] = SK[(int64_t)t * Wc + c0];
                }
                for (int t = 0; t < 3; t++) {
                    cv[t] = SV[(int64_t)(4 + t) * Wc + c1];
                    ck[t] = SK[(int64_t)(4 + t) * Wc + c1];
                    av[t] = SV[(int64_t)(4 + t) * Wc + c0];
                    ak[t] = SK[(int64_t)(4 + t) * Wc + c0];
                }
                cv[3] = nv1; ck[3] = nk1; av[3] = nv0; ak[3] = nk0;
                float m = -INFINITY;
                for (int t = 0; t < 4; t++) {
                    if (pk[t] > m) m = pk[t];
                    if (ck[t] > m) m = ck[t];
                }
                float out = 0.0f;
                if (!(m <= -0.5e30f)) {
                    float denom = 0.0f, sum = 0.0f;
                    for (int t = 0; t < 4; t++) {
                        const float wp = d_expf(pk[t] - m);
                        const float wc = d_expf(ck[t] - m);
                        denom += wp + wc;
                        sum += wp * pv[t];
                        sum += wc * cv[t];
                    }
                    out = sum / denom;
                }
                P[j] = out;
                for (int t = 0; t < 4; t++) { /* rows 4..7 → 0..3, then 4..7 cleared */
                    SV[(int64_t)t * Wc + c0] = av[t];
                    SK[(int64_t)t * Wc + c0] = ak[t];
                    SV[(int64_t)t * Wc + c1] = cv[t];
                    SK[(int64_t)t * Wc + c1] = ck[t];
                    SV[(int64_t)(4 + t) * Wc + c0] = 0.0f;
                    SK[(int64_t)(4 + t) * Wc + c0] = -1e30f;
                    SV[(int64_t)(4 + t) * Wc + c1] = 0.0f;
                    SK[(int64_t)(4 + t) * Wc + c1] = -1e30f;
                }
            }
        } else {
            const float nv = v[j], nk = g[j] + d_f16(ap[j]);
            if (!emit) {
                SV[(int64_t)rho * Wc + j] = nv;
                SK[(int64_t)rho * Wc + j] = nk;
            } else { /* slot r-1 is this token's */
                float m = -INFINITY;
#pragma unroll 8
                for (int t = 0; t < r - 1; t++) {
                    const float a = SK[(int64_t)t * Wc + j];
                    if (a > m) m = a;
                }
                if (nk > m) m = nk;
                float out = 0.0f;
                if (!(m <= -0.5e30f)) {
                    float denom = 0.0f, sum = 0.0f;
#pragma unroll 8
                    for (int t = 0; t < r - 1; t++) {
                        const float wt = d_expf(SK[(int64_t)t * Wc + j] - m);
                        denom += wt;
                        sum += wt * SV[(int64_t)t * Wc + j];
                    }
                    const float wt = d_expf(nk - m);
                    denom += wt;
                    sum += wt * nv;
                    out = sum / denom;
                }
                P[j] = out;
                for (int t = 0; t < r; t++) {
                    SV[(int64_t)t * Wc + j] = 0.0f;
                    SK[(int64_t)t * Wc + j] = -1e30f;
                }
            }
        }
    }
    if (!emit) return; /* block-uniform */
    __syncthreads();
    if (threadIdx.x < 256) {
        double ss = 0.0;
        for (int jj = threadIdx.x; jj < w; jj += 256) ss += (double)P[jj] * (double)P[jj];
        part[threadIdx.x] = ss;
    }
    __syncthreads();
    for (int o = 128; o >= 32; o >>= 1) {
        if ((int)threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x < 32) { /* the tree's last five levels, same pairs, in warp 0's registers */
        double v = part[threadIdx.x];
        for (int o = 16; o; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf((float)(part[0] / w) + eps);
    if (j < w) P[j] = P[j] * scale * nwj;
    __syncthreads();
    if (j < half) {
        float *x = P + (w - n_rot);
        const float x0 = x[2 * j], x1 = x[2 * j + 1];
        x[2 * j] = x0 * cj - x1 * sj;
        x[2 * j + 1] = x0 * sj + x1 * cj;
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
    if (indexer) { /* d_iqat_block with the FP4 blocks a warp each */
        for (int t = 1; t < 128; t <<= 1) {
            if (j < 64) {
                const int i = (j / t) * 2 * t + j % t;
                const float a = P[i], b = P[i + t];
                P[i] = a + b;
                P[i + t] = a - b;
            }
            __syncthreads();
        }
        if (j < 128) P[j] *= 0.08838834764831845f;
        __syncthreads();
        if (wp < 4) fp4_block_warp(P + 32 * wp, lane);
    } else if (wp < (w - n_rot + 63) / 64) {
        fp8_block_warp(P + 64 * wp, lane, e4m3);
    }
    __syncthreads();
    float *dst = rows + (int64_t)n_rows0 * w;
    if (j < w) dst[j] = d_f16r(P[j]);
}

extern "C" int ds4cu_compressor_dec(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                    int w, int64_t pos0, const float *norm_w, float eps, const float *tab, int n_rot,
                                    int indexer, float *rows, int n_rows0) {
    const int threads = w <= 256 ? 256 : (w + 31) / 32 * 32;
    if (r < 1 || w < 64 || threads > 1024 || (indexer && w != 128) || n_rot > 2 * threads ||
        (w - n_rot + 63) / 64 > threads / 32)
        return -1;
    e4m3_init();
    const int Wc = (r == 4 ? 2 : 1) * w, nrows = r == 4 ? 8 : r;
    /* helpers clear up to (nrows - 1) × Wc floats of each array: ~8 per thread */
    int helpers = (int)(((int64_t)(nrows - 1) * Wc + 2047) / 2048);
    if (helpers < 1) helpers = 1;
    if (helpers > 64) helpers = 64;
    k_cmp_dec<<<1 + helpers, threads, sizeof(float) * w, ds4cu_s>>>(SV, SK, v, g, ape, r, w, pos0, norm_w, eps, tab,
                                                                   n_rot, indexer, rows, n_rows0, ds4cu_dpos);
    ds4cu_after("compressor_dec");
    return 0;
}
