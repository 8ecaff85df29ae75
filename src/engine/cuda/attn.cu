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

static __global__ void k_raw_append(float *row, const float *kv, int D) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < D) row[i] = d_f16r(kv[i]);
}
extern "C" void ds4cu_raw_append(float *raw_row, const float *kv, int D) {
    k_raw_append<<<cdiv(D, 256), 256, 0, ds4cu_s>>>(raw_row, kv, D);
    ds4cu_after("raw_append");
}

static __global__ void k_compressor(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                    int w, int64_t p, int emit, const float *norm_w, float eps, const float *cs,
                                    int n_rot, int indexer, float *dst) {
    extern __shared__ float P[]; /* w floats */
    __shared__ double part[256];
    const int L = r == 4 ? 2 : 1, Wc = L * w;
    const int s = (int)(p % r), rho = r == 4 ? 4 + s : s;
    float *sv = SV + (int64_t)rho * Wc, *sk = SK + (int64_t)rho * Wc;
    const uint16_t *ap = ape + (int64_t)s * Wc;
    for (int j = threadIdx.x; j < Wc; j += blockDim.x) {
        sv[j] = v[j];
        sk[j] = g[j] + d_f16(ap[j]);
    }
    if (!emit) return;
    __syncthreads();
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
}

extern "C" void ds4cu_compressor(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                 int w, int64_t p, int emit, const float *norm_w, float eps, const float *cs, int n_rot,
                                 int indexer, float *dst) {
    e4m3_init();
    k_compressor<<<1, 256, sizeof(float) * w, ds4cu_s>>>(SV, SK, v, g, ape, r, w, p, emit, norm_w, eps, cs, n_rot,
                                                         indexer, dst);
    ds4cu_after("compressor");
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
static __global__ void k_idx_scores(const float *idx, int n_comp, const float *qI, const float *wI, int IH, int ID,
                                    float *scores) {
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

/* flag[i] = 1 when fewer than k rows beat row i (higher score, or equal score
 * and lower index): exactly the CPU's sorted top-k. */
static __global__ void k_topk_flag(const float *sc, int n, int k, int32_t *flag) {
    __shared__ float tile[256];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const float si = i < n ? sc[i] : 0.0f;
    int rank = 0;
    for (int base = 0; base < n; base += 256) {
        const int j = base + threadIdx.x;
        tile[threadIdx.x] = j < n ? sc[j] : 0.0f;
        __syncthreads();
        const int lim = n - base < 256 ? n - base : 256;
        for (int l = 0; l < lim; l++) {
            const float sj = tile[l];
            rank += (sj > si) || (sj == si && base + l < i);
        }
        __syncthreads();
    }
    if (i < n) flag[i] = rank < k;
}

static __global__ void k_compact(const int32_t *flag, int n, int32_t *sel) {
    __shared__ int32_t pre[1024];
    int off = 0;
    for (int base = 0; base < n; base += 1024) {
        const int i = base + threadIdx.x;
        const int f = i < n ? flag[i] : 0;
        pre[threadIdx.x] = f;
        __syncthreads();
        for (int o = 1; o < 1024; o <<= 1) {
            const int v = (int)threadIdx.x >= o ? pre[threadIdx.x - o] : 0;
            __syncthreads();
            pre[threadIdx.x] += v;
            __syncthreads();
        }
        if (f) sel[off + pre[threadIdx.x] - 1] = i;
        off += pre[1023];
        __syncthreads();
    }
}

extern "C" void ds4cu_indexer_select(const float *idx, int n_comp, const float *qI, const float *wI, int IH, int ID,
                                     int k, float *scores, int32_t *flags, int32_t *sel) {
    if (n_comp <= 0) return;
    k_idx_scores<<<cdiv(n_comp, 8), 256, 0, ds4cu_s>>>(idx, n_comp, qI, wI, IH, ID, scores);
    k_topk_flag<<<cdiv(n_comp, 256), 256, 0, ds4cu_s>>>(scores, n_comp, k, flags);
    k_compact<<<1, 1024, 0, ds4cu_s>>>(flags, n_comp, sel);
    ds4cu_after("indexer_select");
}

/* ---------------- sink attention, one block per head ---------------- */
static __device__ __forceinline__ const float *vis_row(const float *raw, int raw_cap, int64_t p, int n_raw,
                                                       const float *comp, const int32_t *sel, int t, int D) {
    if (t < n_raw) return raw + ((p - n_raw + 1 + t) % raw_cap) * D;
    const int c = t - n_raw;
    return comp + (int64_t)(sel ? sel[c] : c) * D;
}

static __global__ void k_attention(const float *q, float *o, const float *raw, int raw_cap, int64_t p, int n_raw,
                                   const float *comp, const int32_t *sel, int n_sel, const float *sinks, int D,
                                   float scale) {
    extern __shared__ float sm[];
    __shared__ float red[256];
    __shared__ float inv_s;
    float *qs = sm, *sc = sm + D;
    const int h = blockIdx.x, nvis = n_raw + n_sel;
    for (int i = threadIdx.x; i < D; i += blockDim.x) qs[i] = q[(int64_t)h * D + i];
    __syncthreads();
    const float sink = sinks[h];
    float mx = sink;
    for (int t = threadIdx.x; t < nvis; t += blockDim.x) {
        const float4 *k4 = (const float4 *)vis_row(raw, raw_cap, p, n_raw, comp, sel, t, D);
        float d = 0.0f;
        for (int i = 0; i < D / 4; i++) {
            const float4 k = k4[i];
            d += qs[4 * i] * k.x;
            d += qs[4 * i + 1] * k.y;
            d += qs[4 * i + 2] * k.z;
            d += qs[4 * i + 3] * k.w;
        }
        sc[t] = d * scale;
        if (sc[t] > mx) mx = sc[t];
    }
    red[threadIdx.x] = mx;
    __syncthreads();
    for (int s = blockDim.x / 2; s; s >>= 1) {
        if ((int)threadIdx.x < s && red[threadIdx.x + s] > red[threadIdx.x]) red[threadIdx.x] = red[threadIdx.x + s];
        __syncthreads();
    }
    const float M = red[0];
    for (int t = threadIdx.x; t < nvis; t += blockDim.x) sc[t] = d_expf(sc[t] - M);
    __syncthreads();
    if (threadIdx.x == 0) {
        float den = d_expf(sink - M);
        for (int t = 0; t < nvis; t++) den += sc[t];
        inv_s = 1.0f / den;
    }
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float acc = 0.0f;
        for (int t = 0; t < nvis; t++) acc += sc[t] * vis_row(raw, raw_cap, p, n_raw, comp, sel, t, D)[i];
        o[(int64_t)h * D + i] = acc;
    }
    __syncthreads();
    const float inv = inv_s;
    for (int i = threadIdx.x; i < D; i += blockDim.x) o[(int64_t)h * D + i] = o[(int64_t)h * D + i] * inv;
}

extern "C" void ds4cu_attention(const float *q, float *o, const float *raw, int raw_cap, int64_t p, int n_raw,
                                const float *comp, const int32_t *sel, int n_sel, const float *sinks, int H, int D,
                                float scale) {
    const size_t smem = sizeof(float) * (size_t)(D + n_raw + n_sel);
    if (smem > 48 * 1024) cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    k_attention<<<H, 256, smem, ds4cu_s>>>(q, o, raw, raw_cap, p, n_raw, comp, sel, n_sel, sinks, D, scale);
    ds4cu_after("attention");
}
