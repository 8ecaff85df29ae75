/* fused.cu - decode-step kernels that do in one launch what elem.cu and
 * quant.cu do in several. At batch 1 every launch costs a few microseconds
 * of a mostly idle GPU, far more than the work of these small steps, so the
 * chains between two mat-vecs are folded into one kernel each. Every value is
 * computed with the same float operations, in the same order, as the chain it
 * replaces (RMSNorm's double sum of squares is a tree, as in elem.cu), so the
 * results are those of the unfused ops; test_cuda_ops checks each against
 * its CPU twins. The hyper-connection pre-mix has a fast form too (sums
 * reassociated, m->exact < 0 only).
 *
 * Each kernel's comment names the ops it replaces. */
#include "engine/cuda/common.cuh"
#include "engine/cuda/numerics.cuh"
#include "engine/cuda/sinkhorn.cuh"

#define FULL 0xffffffffu

static __device__ __forceinline__ int8_t q8c(float v) {
    if (v != v) return 0;
    float r = rintf(v);
    if (r > 127.0f) return 127;
    if (r < -128.0f) return -128;
    return (int8_t)(int)r;
}

/* Block-wide sum of one double per thread (thread 0's result is returned to all). */
static __device__ double block_sum(double s, double *part) {
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(FULL, s, o);
    __syncthreads(); /* part may still be read by a previous call */
    if ((threadIdx.x & 31) == 0) part[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        double v = (int)threadIdx.x < (int)(blockDim.x / 32) ? part[threadIdx.x] : 0.0;
        for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    return part[0];
}

/* Q8_0 codes of v[0..n) (shared memory), a warp per 32-block (k_quant_q8_0). */
static __device__ void quant_q8_0_smem(const float *v, int n, cu_act_q8_0 *out) {
    const int lane = threadIdx.x & 31, nw = blockDim.x / 32;
    for (int b = threadIdx.x / 32; b < n / 32; b += nw) {
        const float x = v[32 * b + lane];
        float amax = fabsf(x);
        for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, off));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (lane == 0) out[b].d = d;
        out[b].qs[lane] = q8c(x * id);
    }
}

/* Q8_K codes of v[0..n) (shared memory), a warp per 256-block, 8 values a
 * lane (k_quant_q8_K: first largest magnitude, -127/max, bsums). */
static __device__ void quant_q8_K_smem(const float *v, int n, cu_q8_K *out) {
    const int lane = threadIdx.x & 31, nw = blockDim.x / 32;
    for (int kb = threadIdx.x / 32; kb < n / 256; kb += nw) {
        const float *xb = v + 256 * kb + 8 * lane;
        cu_q8_K *y = &out[kb];
        float a = fabsf(xb[0]);
        int ai = 8 * lane;
        for (int j = 1; j < 8; j++)
            if (fabsf(xb[j]) > a) { a = fabsf(xb[j]); ai = 8 * lane + j; }
        for (int off = 16; off; off >>= 1) {
            const float oa = __shfl_xor_sync(FULL, a, off);
            const int oi = __shfl_xor_sync(FULL, ai, off);
            if (oa > a || (oa == a && oi < ai)) { a = oa; ai = oi; }
        }
        if (a == 0.0f) {
            for (int j = 0; j < 8; j++) y->qs[8 * lane + j] = 0;
            if (lane < 16) y->bsums[lane] = 0;
            if (lane == 0) y->d = 0.0f;
            continue;
        }
        const float iscale = -127.0f / v[256 * kb + ai];
        int s = 0;
        for (int j = 0; j < 8; j++) {
            const int8_t q = q8c(iscale * xb[j]);
            y->qs[8 * lane + j] = q;
            s += q;
        }
        s += __shfl_xor_sync(FULL, s, 1);
        if ((lane & 1) == 0) y->bsums[lane / 2] = (int16_t)s;
        if (lane == 0) y->d = 1.0f / iscale;
    }
}

/* Hyper-connection mix of one token for HC = 4 on the 16 lanes of warp 0
 * that call it (lane = 4·r + k holds C[r][k]; lanes < 4 also pre/post):
 * each sum is gathered from its lanes and added in the serial code's order
 * (k_hc_pre's thread-0 loop), so the values are the same. mix, scale and
 * base are in shared memory. */
static __device__ void hc_mix4_lanes(const float *mix, const float *scale, const float *base, int iters, float eps,
                                     float *pre, float *post, float *Cg) {
    const int HC = 4, lane = threadIdx.x & 31, r = (lane >> 2) & 3, k = lane & 3;
    const unsigned m16 = 0xffffu;
    if (lane < HC) {
        pre[lane] = 1.0f / (1.0f + d_expf(-(mix[lane] * scale[0] + base[lane]))) + eps;
        post[lane] = 2.0f / (1.0f + d_expf(-(mix[HC + lane] * scale[1] + base[HC + lane])));
    }
    float z[4], mx = -INFINITY, sum = 0.0f;
#pragma unroll
    for (int j = 0; j < HC; j++) {
        z[j] = mix[2 * HC + HC * r + j] * scale[2] + base[2 * HC + HC * r + j];
        if (z[j] > mx) mx = z[j];
    }
#pragma unroll
    for (int j = 0; j < HC; j++) { z[j] = d_expf(z[j] - mx); sum += z[j]; }
    float C = z[k] * (1.0f / sum) + eps;
    for (int it = 0; it < iters; it++) {
        if (it > 0) {
            float rs = 0.0f;
#pragma unroll
            for (int j = 0; j < HC; j++) rs += __shfl_sync(m16, C, 4 * r + j);
            C *= 1.0f / (rs + eps);
        }
        float cs = 0.0f;
#pragma unroll
        for (int j = 0; j < HC; j++) cs += __shfl_sync(m16, C, 4 * j + k);
        C *= 1.0f / (cs + eps);
    }
    Cg[lane] = C;
}

/* ---------------- norm + quantization ----------------
 * Replaces [hc_reduce] + rmsnorm + quant_q8_0 [+ quant_q8_K], a block per
 * token. With X given, the input is first the HC stream sum Σ_h X[h]·pre[h]
 * (h in order, k_hc_pre's loop), stored to a_out when given. With partials
 * given (the fast HC pre-mix, below), the block first finishes that: the
 * mix values from the slice partials, then pre/post/comb. */
static __global__ void __launch_bounds__(1024)
    k_norm_quant(const float *X, const float *pre_in, int HC, const float *hc_part, int n_part, float hc_ss_n,
                 const float *hc_scale, const float *hc_base, int iters, float hc_eps, float *pre_o, float *post_o,
                 float *comb_o, const float *x, float *a_out, const float *w, float *y, int n, float eps,
                 cu_act_q8_0 *q0, cu_q8_K *qK) {
    extern __shared__ float v[]; /* n floats */
    __shared__ double part[32];
    __shared__ float pre_s[16], mix_s[2 * 16 + 256];
    const int t = blockIdx.x;
    /* the weight's first four columns per thread now: it comes from DRAM and
     * is otherwise first loaded after the block's sum (~1 us in series) */
    float wr[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const int i = (int)threadIdx.x + k * (int)blockDim.x;
        wr[k] = w && i < n ? w[i] : 0.0f;
    }
    if (hc_part) {
        /* every partial comes in at once (they are in L2), then short sums from shared memory */
        __shared__ float ps[2048], sc_s[3], base_s[2 * 16 + 256];
        __shared__ double ssp_s[128];
        const int M = 2 * HC + HC * HC;
        const double *ssp = (const double *)(hc_part + (size_t)M * n_part);
        for (int i = threadIdx.x; i < M * n_part; i += blockDim.x) ps[i] = hc_part[i];
        for (int i = threadIdx.x; i < n_part; i += blockDim.x) ssp_s[i] = ssp[i];
        for (int i = threadIdx.x; i < M; i += blockDim.x) base_s[i] = hc_base[i];
        if (threadIdx.x < 3) sc_s[threadIdx.x] = hc_scale[threadIdx.x];
        __syncthreads();
        if ((int)threadIdx.x < M) {
            float acc = 0.0f;
            for (int j = 0; j < n_part; j++) acc += ps[j * M + threadIdx.x];
            double ss = 0.0;
            for (int j = 0; j < n_part; j++) ss += ssp_s[j];
            mix_s[threadIdx.x] = acc * (1.0f / sqrtf((float)(ss / hc_ss_n) + eps));
        }
        __syncthreads();
        if (threadIdx.x < 16) hc_mix4_lanes(mix_s, sc_s, base_s, iters, hc_eps, pre_s, post_o, comb_o);
        __syncthreads();
        if ((int)threadIdx.x < HC) pre_o[threadIdx.x] = pre_s[threadIdx.x];
    } else if (X && (int)threadIdx.x < HC) {
        pre_s[threadIdx.x] = pre_in[(size_t)t * HC + threadIdx.x];
    }
    __syncthreads();
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float xi;
        if (X) {
            const float *xr = X + (size_t)t * HC * n + i;
            float acc = 0.0f;
            for (int h = 0; h < HC; h++) acc += xr[(size_t)h * n] * pre_s[h];
            if (a_out) a_out[(size_t)t * n + i] = acc;
            xi = acc;
        } else {
            xi = x[(size_t)t * n + i];
        }
        v[i] = xi;
        s += (double)xi * (double)xi;
    }
    const double tot = block_sum(s, part);
    const float scale = 1.0f / sqrtf((float)(tot / n) + eps);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const int i = (int)threadIdx.x + k * (int)blockDim.x;
        if (i >= n) break;
        const float yi = w ? v[i] * scale * wr[k] : v[i] * scale;
        v[i] = yi;
        if (y) y[(size_t)t * n + i] = yi;
    }
    for (int i = threadIdx.x + 4 * blockDim.x; i < n; i += blockDim.x) {
        const float yi = w ? v[i] * scale * w[i] : v[i] * scale;
        v[i] = yi;
        if (y) y[(size_t)t * n + i] = yi;
    }
    __syncthreads();
    if (q0) quant_q8_0_smem(v, n, q0 + (size_t)t * (n / 32));
    if (qK) quant_q8_K_smem(v, n, qK + (size_t)t * (n / 256));
}

/* A thread per value from 1024 on (q_a_norm's 1024: one Q8_0 block per warp,
 * no second pass over the codes). */
static int norm_threads(int n) { return n >= 1024 ? 1024 : (n >= 256 ? 256 : 128); }

extern "C" void ds4cu_norm_quant(const float *X, const float *pre, int HC, const float *x, float *a_out, const float *w,
                                 float *y, int rows, int n, float eps, void *q8_0, void *q8_K) {
    if (rows < 1) return;
    const size_t smem = sizeof(float) * (size_t)n;
    if (smem > 48 * 1024) cudaFuncSetAttribute(k_norm_quant, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    k_norm_quant<<<rows, norm_threads(n), smem, ds4cu_s>>>(X, pre, HC, NULL, 0, 0.0f, NULL, NULL, 0, 0.0f, NULL,
                                                              NULL, NULL, x, a_out, w, y, n, eps,
                                                              (cu_act_q8_0 *)q8_0, (cu_q8_K *)q8_K);
    ds4cu_after("norm_quant");
}

/* ---------------- fast HC pre-mix (m->exact < 0) ----------------
 * Replaces rmsnorm(X) + the F16 hc_fn product + hc_pre for one token: block
 * j reads columns [512j, 512j+512) of every hc_fn row and of X, and writes
 * its M partial dots and its partial sum of squares; a second, one-block
 * kernel (k_norm_quant with hc_part) adds the partials in slice order,
 * scales by the RMS (dot(W, x)·s instead of dot(W, x·s): reassociated),
 * runs the Sinkhorn mix and goes on with the stream sum, norm and codes. */
#define HC_SLICE 512
static __global__ void __launch_bounds__(256) k_hc_part(const uint16_t *W, size_t rb, int M, int width, const float *X,
                                                        float *part) {
    __shared__ float xs[HC_SLICE];
    __shared__ double ssw[8];
    const int j = blockIdx.x, c0 = j * HC_SLICE;
    const int cn = width - c0 < HC_SLICE ? width - c0 : HC_SLICE;
    double ss = 0.0;
    for (int i = threadIdx.x; i < cn; i += blockDim.x) {
        const float xv = X[c0 + i];
        xs[i] = xv;
        ss += (double)xv * (double)xv;
    }
    for (int o = 16; o; o >>= 1) ss += __shfl_xor_sync(FULL, ss, o);
    if ((threadIdx.x & 31) == 0) ssw[threadIdx.x / 32] = ss;
    __syncthreads();
    const int lane = threadIdx.x & 31, wp = threadIdx.x / 32, n8 = cn / 8;
    for (int r = wp; r < M; r += blockDim.x / 32) {
        const uint4 *w4 = (const uint4 *)((const uint8_t *)W + (size_t)r * rb + (size_t)c0 * 2);
        float s = 0.0f;
        for (int k = lane; k < n8; k += 32) {
            const uint4 q = __ldg(w4 + k);
            const __half2 *h = (const __half2 *)&q;
            const float *xv = xs + 8 * k;
            const float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]), f2 = __half22float2(h[2]),
                         f3 = __half22float2(h[3]);
            s += f0.x * xv[0] + f0.y * xv[1] + f1.x * xv[2] + f1.y * xv[3] + f2.x * xv[4] + f2.y * xv[5] +
                 f3.x * xv[6] + f3.y * xv[7];
        }
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(FULL, s, o);
        if (lane == 0) part[(size_t)j * M + r] = s;
    }
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int k = 0; k < (int)(blockDim.x / 32); k++) t += ssw[k];
        ((double *)(part + (size_t)M * gridDim.x))[j] = t;
    }
}

extern "C" size_t ds4cu_hc_fast_scratch(int HC, int E) {
    const int M = 2 * HC + HC * HC, S = (HC * E + HC_SLICE - 1) / HC_SLICE;
    return sizeof(float) * (size_t)M * S + sizeof(double) * (size_t)S;
}

extern "C" int ds4cu_hc_pre_fast(const void *fn, size_t fn_rb, const float *scale, const float *base, const float *X,
                                 int HC, int E, int iters, float hc_eps, float eps, float *part, float *pre, float *post,
                                 float *comb, const float *w, float *y, void *q8_0, void *q8_K) {
    const int M = 2 * HC + HC * HC, width = HC * E, S = (width + HC_SLICE - 1) / HC_SLICE;
    if (HC != 4 || width % 8 || (fn_rb & 15) || ((uintptr_t)fn & 15) || ((uintptr_t)part & 7) || E > 12288 ||
        S > 2048 / M)
        return -1;
    k_hc_part<<<S, 256, 0, ds4cu_s>>>((const uint16_t *)fn, fn_rb, M, width, X, part);
    ds4cu_after("hc_part");
    const size_t smem = sizeof(float) * (size_t)E;
    if (smem > 48 * 1024) cudaFuncSetAttribute(k_norm_quant, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    k_norm_quant<<<1, norm_threads(E), smem, ds4cu_s>>>(X, NULL, HC, part, S, (float)width, scale, base, iters,
                                                           hc_eps, pre, post, comb, NULL, NULL, w, y, E, eps,
                                                           (cu_act_q8_0 *)q8_0, (cu_q8_K *)q8_K);
    ds4cu_after("hc_norm_quant");
    return 0;
}

/* ---------------- attention: after the projections ----------------
 * Replaces rmsnorm(q heads) + rmsnorm(kv, kv_norm) + rope(q) + rope(kv) +
 * fp8_kv: block h < H normalizes and rotates query head h in place; block H
 * normalizes kvr into kvv, rotates it and rounds its first n_nope values
 * through FP8 (a warp per 64-block, k_fp8's arithmetic). grid.y: tokens. */
static __global__ void k_qkv_post(float *q, const float *kvr, const float *kv_w, float *kvv, int H, int D, int n_rot,
                                  const float *tab, int64_t pos0, const int64_t *dpos, float eps, int n_nope,
                                  float *comb, int iters, float hc_eps) {
    extern __shared__ float v[]; /* D floats */
    __shared__ double part[32];
    __shared__ float e4[127];
    const int h = blockIdx.x, t = blockIdx.y;
    if (h == H + 1) { /* the deferred Sinkhorn of the pre-mix (sinkhorn.cuh), off the critical path */
        if (comb && t == 0 && threadIdx.x < 16) d_sinkhorn4_inplace(comb, iters, hc_eps);
        return;
    }
    if (dpos) pos0 = *dpos;
    const int kv = h == H;
    const float *src = kv ? kvr + (size_t)t * D : q + ((size_t)t * H + h) * D;
    float *dst = kv ? kvv + (size_t)t * D : q + ((size_t)t * H + h) * D;
    const int half = n_rot / 2;
    const float *c = tab + (pos0 + t) * n_rot, *sn = c + half;
    float c0 = 0.0f, s0 = 0.0f; /* the first pair's cos/sin, loaded with the row */
    if ((int)threadIdx.x < half) { c0 = c[threadIdx.x]; s0 = sn[threadIdx.x]; }
    const float kw0 = kv && (int)threadIdx.x < D ? kv_w[threadIdx.x] : 0.0f; /* kv_norm's weight too (DRAM) */
    double s = 0.0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        const float x = src[i];
        v[i] = x;
        s += (double)x * (double)x;
    }
    if (kv) /* numerics.cuh's table, computed in place (exact float ops) instead of divergent constant loads */
        for (int i = threadIdx.x; i < 127; i += blockDim.x) {
            const int e = i >> 3, mt = i & 7;
            e4[i] = e == 0 ? ldexpf((float)mt, -9) : ldexpf(1.0f + (float)mt / 8.0f, e - 7);
        }
    const double tot = block_sum(s, part);
    const float scale = 1.0f / sqrtf((float)(tot / D) + eps);
    for (int i = threadIdx.x; i < D; i += blockDim.x)
        v[i] = kv ? v[i] * scale * (i == (int)threadIdx.x ? kw0 : kv_w[i]) : v[i] * scale;
    __syncthreads();
    for (int k = threadIdx.x; k < half; k += blockDim.x) {
        float *r = v + (D - n_rot);
        const float ck = k == (int)threadIdx.x ? c0 : c[k], sk = k == (int)threadIdx.x ? s0 : sn[k];
        const float x0 = r[2 * k], x1 = r[2 * k + 1];
        r[2 * k] = x0 * ck - x1 * sk;
        r[2 * k + 1] = x0 * sk + x1 * ck;
    }
    __syncthreads();
    if (kv) {
        const int lane = threadIdx.x & 31, nblk = (n_nope + 63) / 64;
        for (int b = threadIdx.x / 32; b < nblk; b += blockDim.x / 32) {
            float *xb = v + 64 * b;
            const float v0 = xb[lane], v1 = xb[lane + 32];
            float amax = fmaxf(fabsf(v0), fabsf(v1));
            for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, off));
            if (amax < 1e-4f) amax = 1e-4f;
            const float fs = ldexpf(1.0f, (int)ceilf(d_log2f(amax / 448.0f)));
            const float vs[2] = {v0, v1};
            for (int k = 0; k < 2; k++) {
                float qv = vs[k] / fs;
                qv = qv < -448.0f ? -448.0f : (qv > 448.0f ? 448.0f : qv);
                const float a = fabsf(qv);
                int lo = 0, hi = 126;
                while (lo < hi) {
                    const int mid = (lo + hi + 1) / 2;
                    if (e4[mid] <= a) lo = mid;
                    else hi = mid - 1;
                }
                int i = lo;
                if (i < 126) {
                    const float dn = a - e4[i], up = e4[i + 1] - a;
                    if (up < dn || (up == dn && ((i + 1) % 2 == 0))) i = i + 1;
                }
                xb[lane + 32 * k] = (qv < 0 ? -e4[i] : e4[i]) * fs;
            }
        }
        __syncthreads();
    }
    for (int i = threadIdx.x; i < D; i += blockDim.x) dst[i] = v[i];
}

extern "C" void ds4cu_qkv_post_sk(float *q, const float *kvr, const float *kv_w, float *kvv, int n, int H, int D,
                                  int n_rot, const float *tab, int64_t pos0, float eps, int n_nope, float *comb,
                                  int iters, float hc_eps) {
    e4m3_init();
    if (n < 1) {
        if (comb) ds4cu_hc_sinkhorn(comb, iters, hc_eps);
        return;
    }
    const int threads = D >= 512 ? 512 : (D >= 128 ? 128 : 64);
    k_qkv_post<<<dim3(H + 1 + (comb != NULL), n), threads, sizeof(float) * D, ds4cu_s>>>(
        q, kvr, kv_w, kvv, H, D, n_rot, tab, pos0, ds4cu_dpos, eps, n_nope, comb, iters, hc_eps);
    ds4cu_after("qkv_post");
}
extern "C" void ds4cu_qkv_post(float *q, const float *kvr, const float *kv_w, float *kvv, int n, int H, int D, int n_rot,
                               const float *tab, int64_t pos0, float eps, int n_nope) {
    ds4cu_qkv_post_sk(q, kvr, kv_w, kvv, n, H, D, n_rot, tab, pos0, eps, n_nope, NULL, 0, 0.0f);
}

/* d_iqat_block for a 128-thread block with the FP4 step a warp per 32-block,
 * a value per lane (d_fp4_block ran it on 4 threads, 32 values each in
 * series: most of k_idx_post's 9 us). The block max is order-free (NaN and
 * negative magnitudes ignored, as the CPU's strict > from 0 does) and every
 * lane derives the same scale, so the values are d_fp4_block's. */
static __device__ void iqat_block_warps(float *x) {
    const int tid = threadIdx.x;
    for (int t = 1; t < 128; t <<= 1) {
        if (tid < 64) {
            const int i = (tid / t) * 2 * t + tid % t;
            const float a = x[i], c = x[i + t];
            x[i] = a + c;
            x[i + t] = a - c;
        }
        __syncthreads();
    }
    const float v = x[tid] * 0.08838834764831845f;
    float amax = fabsf(v);
    if (!(amax > 0.0f)) amax = 0.0f;
    for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, off));
    if (amax < 7.052966104933725e-38f) amax = 7.052966104933725e-38f;
    const float scale = ldexpf(1.0f, (int)ceilf(d_log2f(amax / 6.0f)));
    float q = v / scale;
    q = q < -6.0f ? -6.0f : (q > 6.0f ? 6.0f : q);
    x[tid] = d_e2m1_round(q) * scale;
    __syncthreads();
}

/* Replaces rope(qI) + iqat(qI) + scale(wI): block h of token t rotates
 * indexer head h, runs the Hadamard + FP4 round trip, and scales wI[t][h].
 * The cos/sin loads are issued with the row's. */
static __global__ void __launch_bounds__(128) k_idx_post(float *qI, float *wI, int IH, int ID, int n_rot,
                                                         const float *tab, int64_t pos0, const int64_t *dpos,
                                                         float wscale) {
    __shared__ float v[128];
    if (dpos) pos0 = *dpos;
    const int h = blockIdx.x, t = blockIdx.y;
    float *row = qI + ((size_t)t * IH + h) * ID;
    const int half = n_rot / 2, k = threadIdx.x;
    const float *c = tab + (pos0 + t) * n_rot, *sn = c + half;
    float ck = 0.0f, sk = 0.0f;
    if (k < half) { ck = c[k]; sk = sn[k]; }
    v[threadIdx.x] = row[threadIdx.x];
    __syncthreads();
    if (k < half) {
        float *r = v + (ID - n_rot);
        const float x0 = r[2 * k], x1 = r[2 * k + 1];
        r[2 * k] = x0 * ck - x1 * sk;
        r[2 * k + 1] = x0 * sk + x1 * ck;
    }
    __syncthreads();
    iqat_block_warps(v);
    row[threadIdx.x] = v[threadIdx.x];
    if (threadIdx.x == 0) wI[(size_t)t * IH + h] = wI[(size_t)t * IH + h] * wscale;
}

extern "C" int ds4cu_idx_post(float *qI, float *wI, int n, int IH, int ID, int n_rot, const float *tab, int64_t pos0,
                              float wscale) {
    if (ID != 128 || n_rot > ID) return -1;
    if (n > 0) k_idx_post<<<dim3(IH, n), 128, 0, ds4cu_s>>>(qI, wI, IH, ID, n_rot, tab, pos0, ds4cu_dpos, wscale);
    ds4cu_after("idx_post");
    return 0;
}

/* Replaces rope(o, inverse) + quant_q8_0(o): block h of token t un-rotates
 * head h (kept in shared memory; o itself is left as it was) and writes its
 * Q8_0 codes. */
static __global__ void k_unrope_q8_0(const float *o, int H, int D, int n_rot, const float *tab, int64_t pos0,
                                     const int64_t *dpos, cu_act_q8_0 *xq) {
    extern __shared__ float v[];
    if (dpos) pos0 = *dpos;
    const int h = blockIdx.x, t = blockIdx.y;
    const float *row = o + ((size_t)t * H + h) * D;
    const int half = n_rot / 2;
    const float *c = tab + (pos0 + t) * n_rot, *s = c + half;
    float c0 = 0.0f, s0 = 0.0f; /* the first pair's cos/sin, loaded with the row */
    if ((int)threadIdx.x < half) { c0 = c[threadIdx.x]; s0 = s[threadIdx.x]; }
    for (int i = threadIdx.x; i < D; i += blockDim.x) v[i] = row[i];
    __syncthreads();
    for (int k = threadIdx.x; k < half; k += blockDim.x) {
        float *r = v + (D - n_rot);
        const float ck = k == (int)threadIdx.x ? c0 : c[k], sn = -(k == (int)threadIdx.x ? s0 : s[k]);
        const float x0 = r[2 * k], x1 = r[2 * k + 1];
        r[2 * k] = x0 * ck - x1 * sn;
        r[2 * k + 1] = x0 * sn + x1 * ck;
    }
    __syncthreads();
    quant_q8_0_smem(v, D, xq + ((size_t)t * H + h) * (D / 32));
}

extern "C" int ds4cu_unrope_q8_0(const float *o, int n, int H, int D, int n_rot, const float *tab, int64_t pos0,
                                 void *xq) {
    if (D % 32 || D > 8192) return -1;
    if (n > 0)
        k_unrope_q8_0<<<dim3(H, n), D >= 512 ? 512 : 256, sizeof(float) * D, ds4cu_s>>>(o, H, D, n_rot, tab, pos0, ds4cu_dpos,
                                                                         (cu_act_q8_0 *)xq);
    ds4cu_after("unrope_q8_0");
    return 0;
}
