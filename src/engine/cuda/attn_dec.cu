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

#define SC_RB 32 /* rows per score block (one per lane) */
#define SC_HB 8  /* heads per score block: two per warp */
/* S[h][j] = (Σ_i q[h][i]·k[j][i], i in order)·scale. Block (8 heads, 32
 * rows), 128 threads: lane = row, warp w = heads 2w and 2w+1, both chains
 * from float4 reads of the staged row (row stride D+4 floats: the 8 lanes of
 * a 16-byte phase hit different banks) and broadcast reads of q. The rows
 * and q arrive by cp.async in two halves of D, the first half's chains
 * running while the second half lands. Block (0,0) also stores the token's
 * F16-rounded KV row into the ring. */
static __global__ void __launch_bounds__(128) k_att_scores(const float *q, dec_rows R, int64_t pos0, int n_comp0,
                                                           const int64_t *dpos, float scale, float *S, int nvis_max) {
    extern __shared__ float4 sm4[];
    __shared__ const float *rp[SC_RB];
    const int D = R.D, KS = D + 4;
    float *ks = (float *)sm4, *qs = ks + SC_RB * KS;
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
    const int j0 = blockIdx.y * SC_RB, h0 = blockIdx.x * SC_HB;
    if (j0 >= nvis) return;
    const int nr = nvis - j0 < SC_RB ? nvis - j0 : SC_RB, cur = n_raw - 1 - j0; /* p's row in this block, if any */
    if ((int)threadIdx.x < nr) rp[threadIdx.x] = dec_row(R, p, n_raw, sl, j0 + threadIdx.x);
    __syncthreads();
    const int D4 = D / 4, H4 = D4 / 2;
    for (int half = 0; half < 2; half++) {
        for (int idx = threadIdx.x; idx < SC_HB * H4; idx += blockDim.x) {
            const int h = idx / H4, c = half * H4 + idx % H4;
            cp16(qs + h * D + 4 * c, q + (int64_t)(h0 + h) * D + 4 * c);
        }
        for (int idx = threadIdx.x; idx < nr * H4; idx += blockDim.x) {
            const int r = idx / H4, c = half * H4 + idx % H4;
            if (r != cur) cp16(ks + r * KS + 4 * c, rp[r] + 4 * c);
        }
        cp_commit();
    }
    if (cur >= 0 && cur < nr)
        for (int i = threadIdx.x; i < D; i += blockDim.x) ks[cur * KS + i] = d_f16r(R.kv[i]);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const float4 *kr = (const float4 *)(ks + lane * KS), *qa = (const float4 *)(qs + 2 * w * D), *qb = qa + D4;
    float da = 0.0f, db = 0.0f;
    cp_wait<1>();
    __syncthreads();
#pragma unroll 4
    for (int c = 0; c < H4; c++) {
        const float4 k = kr[c], a = qa[c], b = qb[c];
        da += a.x * k.x; da += a.y * k.y; da += a.z * k.z; da += a.w * k.w;
        db += b.x * k.x; db += b.y * k.y; db += b.z * k.z; db += b.w * k.w;
    }
    cp_wait<0>();
    __syncthreads();
#pragma unroll 4
    for (int c = H4; c < D4; c++) {
        const float4 k = kr[c], a = qa[c], b = qb[c];
        da += a.x * k.x; da += a.y * k.y; da += a.z * k.z; da += a.w * k.w;
        db += b.x * k.x; db += b.y * k.y; db += b.z * k.z; db += b.w * k.w;
    }
    if (lane < nr) {
        S[(int64_t)(h0 + 2 * w) * nvis_max + j0 + lane] = da * scale;
        S[(int64_t)(h0 + 2 * w + 1) * nvis_max + j0 + lane] = db * scale;
    }
}

#define OUT_HB 8    /* heads per output block: two per compute warp */
#define OUT_CH 128  /* value rows per staged chunk (32 dims: 16 KB) */
#define OUT_NB 6    /* chunks in the ring: up to 640 rows in flight at once */
static __device__ __forceinline__ void bar_compute() { asm volatile("bar.sync 1, 128;\n" ::: "memory"); }

/* o[h][i] = (Σ_j e[h][j]·v[j][i], j in order) / (e^(sink−m) + Σ_j e[h][j], j in order),
 * e[h][j] = exp(S[h][j] − m), m = max(sink, S[h][·]). Block (8 heads, 32
 * dims), 160 threads: four compute warps (lane = dim, warp w = heads 2w and
 * 2w+1: each value read serves two chains, each float4 of e four rows) and
 * one warp whose 8 lanes add the denominators meanwhile. The value columns
 * stream through a ring of cp.async chunks (compute warps sync on barrier 1). */
static __global__ void __launch_bounds__(160) k_att_out(float *o, dec_rows R, int64_t pos0, int n_comp0,
                                                        const int64_t *dpos, const float *sinks, const float *S,
                                                        int nvis_max, int nvp, int nbuf) {
    extern __shared__ float4 sm4[];
    float *es = (float *)sm4;                        /* OUT_HB × nvp */
    float *vs = es + OUT_HB * nvp;                   /* nbuf × OUT_CH × 32 */
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
    for (int j = threadIdx.x; j < nvis; j += blockDim.x) rp[j] = dec_row(R, p, n_raw, sl, j);
    __syncthreads();
    const int nch = (nvis + OUT_CH - 1) / OUT_CH;
    if (w < 4) {
        for (int c = 0; c < OUT_NB - 1; c++) {
            for (int idx = threadIdx.x; c < nch && idx < OUT_CH * 8; idx += 128) {
                const int r = idx >> 3, j = c * OUT_CH + r;
                if (j < nvis) cp16(vs + (c * OUT_CH + r) * 32 + 4 * (idx & 7), rp[j] + i0 + 4 * (idx & 7));
            }
            cp_commit();
        }
        for (int k = 0; k < 2; k++) {
            const int hh = 2 * w + k, h = h0 + hh;
            const float *Sh = S + (int64_t)h * nvis_max;
            float *e = es + hh * nvp;
            float m = sinks[h];
            for (int j = lane; j < nvis; j += 32) {
                const float v = __ldg(Sh + j);
                e[j] = v;
                m = fmaxf(m, v);
            }
            for (int off = 16; off; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
            __syncwarp();
            for (int j = lane; j < nvis; j += 32) e[j] = d_expf(e[j] - m);
            if (lane == 0) mx[hh] = m;
        }
    }
    __syncthreads();
    float acc_a = 0.0f, acc_b = 0.0f;
    if (w == 4) {
        if (lane < OUT_HB) {
            const float *e = es + lane * nvp;
            float den = d_expf(sinks[h0 + lane] - mx[lane]);
            for (int j = 0; j < nvis; j++) den += e[j];
            inv[lane] = 1.0f / den;
        }
    } else {
        const float *ea = es + 2 * w * nvp, *eb = ea + nvp;
        for (int c = 0; c < nch; c++) {
            cp_wait<OUT_NB - 2>();
            bar_compute();
            const int cn = c + OUT_NB - 1;
            for (int idx = threadIdx.x; cn < nch && idx < OUT_CH * 8; idx += 128) {
                const int r = idx >> 3, j = cn * OUT_CH + r;
                if (j < nvis) cp16(vs + ((cn % OUT_NB) * OUT_CH + r) * 32 + 4 * (idx & 7), rp[j] + i0 + 4 * (idx & 7));
            }
            cp_commit();
            const float *vb = vs + (c % OUT_NB) * OUT_CH * 32 + lane;
            const int jb = c * OUT_CH, nr = nvis - jb < OUT_CH ? nvis - jb : OUT_CH;
            int r = 0;
            for (; r + 4 <= nr; r += 4) {
                const float4 a = *(const float4 *)(ea + jb + r), b = *(const float4 *)(eb + jb + r);
                const float v0 = vb[r * 32], v1 = vb[(r + 1) * 32], v2 = vb[(r + 2) * 32], v3 = vb[(r + 3) * 32];
                acc_a += a.x * v0; acc_b += b.x * v0;
                acc_a += a.y * v1; acc_b += b.y * v1;
                acc_a += a.z * v2; acc_b += b.z * v2;
                acc_a += a.w * v3; acc_b += b.w * v3;
            }
            for (; r < nr; r++) {
                const float v = vb[r * 32];
                acc_a += ea[jb + r] * v;
                acc_b += eb[jb + r] * v;
            }
        }
        cp_wait<0>();
    }
    __syncthreads();
    if (w < 4) {
        o[(int64_t)(h0 + 2 * w) * R.D + i0 + lane] = acc_a * inv[2 * w];
        o[(int64_t)(h0 + 2 * w + 1) * R.D + i0 + lane] = acc_b * inv[2 * w + 1];
    }
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
    if ((sc_bytes > 48 * 1024 &&
         cudaFuncSetAttribute(k_att_scores, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sc_bytes) != cudaSuccess) ||
        (out_bytes > 48 * 1024 &&
         cudaFuncSetAttribute(k_att_out, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)out_bytes) != cudaSuccess)) {
        cudaGetLastError();
        return -1;
    }
    const dec_rows R = {raw, kv, comp, sel, raw_cap, swa, ratio, top_k, D};
    k_att_scores<<<dim3(H / SC_HB, (nvis_max + SC_RB - 1) / SC_RB), 128, sc_bytes, ds4cu_s>>>(
        q, R, pos0, n_comp0, ds4cu_dpos, scale, scratch, nvis_max);
    k_att_out<<<dim3(H / OUT_HB, D / 32), 160, out_bytes, ds4cu_s>>>(o, R, pos0, n_comp0, ds4cu_dpos, sinks, scratch,
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

/* d_fp8_block by one warp (lane: x[lane], x[lane+32]); max is exact in any order. */
static __device__ void fp8_block_warp(float *x, int lane) {
    float amax = fmaxf(0.0f, fmaxf(fabsf(x[lane]), fabsf(x[lane + 32]))); /* a NaN is skipped, as there */
    for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    if (amax < 1e-4f) amax = 1e-4f;
    const float scale = ldexpf(1.0f, (int)ceilf(d_log2f(amax / 448.0f)));
    for (int i = lane; i < 64; i += 32) {
        float qv = x[i] / scale;
        qv = qv < -448.0f ? -448.0f : (qv > 448.0f ? 448.0f : qv);
        x[i] = d_e4m3_round(qv) * scale;
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
    if (dpos) {
        pos0 = *dpos;
        n_rows0 = (int)(pos0 / r);
    }
    const int64_t p = pos0;
    const int L = r == 4 ? 2 : 1, Wc = L * w, nrows = r == 4 ? 8 : r;
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
    const int j = threadIdx.x;
    const uint16_t *ap = ape + (int64_t)s * Wc;
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
    for (int o = 128; o; o >>= 1) {
        if ((int)threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    const float scale = 1.0f / sqrtf((float)(part[0] / w) + eps);
    if (j < w) P[j] = P[j] * scale * norm_w[j];
    __syncthreads();
    const int half = n_rot / 2;
    const float *cs = tab + (p + 1 - r) * n_rot;
    if (j < half) {
        float *x = P + (w - n_rot);
        const float x0 = x[2 * j], x1 = x[2 * j + 1];
        x[2 * j] = x0 * cs[j] - x1 * cs[half + j];
        x[2 * j + 1] = x0 * cs[half + j] + x1 * cs[j];
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
        fp8_block_warp(P + 64 * wp, lane);
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
