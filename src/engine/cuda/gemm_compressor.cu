/* gemm_compressor.cu - prefill's compressor emissions, all of a batch at once
 * (the gemm_ files hold the prefill batch kernels).
 *
 * ds4cu_compressor (attn.cu) walks the batch's tokens in order in one block,
 * because each token writes its slot of the window state and each emission
 * (every r tokens) pools the window. But an emission reads nothing but its
 * window's slots, and each slot is either a token of this batch (its
 * projections, here in v/g) or a token before it (in the state as the
 * previous call left it). So one block per emission computes its row from
 * those directly, and then one element-wise kernel writes the state the
 * sequential walk would have left (its last window(s), frontier reset).
 *
 * Exactness: the emission is compressor_step's arithmetic line for line (max,
 * exp-weighted sums in slot order, RMSNorm's double partial sums over 256
 * threads and the same tree, RoPE, FP8 / Hadamard+FP4, F16), so rows and
 * state are bit-identical to ds4cu_compressor's; test_cuda_gemm compares them
 * over consecutive batches of every alignment. */
#include "engine/cuda/common.cuh"
#include "engine/cuda/gemm.h"
#include "engine/cuda/numerics.cuh"

/* Slot value of token q for state row `row_old` (when q is before the batch)
 * at column col: (sv, sk) as compressor_step stores them. */
static __device__ __forceinline__ void slot(const float *SV, const float *SK, const float *v, const float *g,
                                            const uint16_t *ape, int r, int Wc, int64_t pos0, int64_t q, int row_old,
                                            int col, float *sv, float *sk) {
    if (q >= pos0) {
        const int64_t tb = q - pos0;
        *sv = v[tb * Wc + col];
        *sk = g[tb * Wc + col] + d_f16(ape[(int64_t)(q % r) * Wc + col]);
    } else {
        *sv = SV[(int64_t)row_old * Wc + col];
        *sk = SK[(int64_t)row_old * Wc + col];
    }
}

/* Block e: the emission at the batch's e-th window end. 256 threads. */
static __global__ void __launch_bounds__(256) k_cmp_emit(const float *SV, const float *SK, const float *v, const float *g,
                                                         const uint16_t *ape, int r, int w, int64_t pos0,
                                                         const float *norm_w, float eps, const float *tab, int n_rot,
                                                         int indexer, float *rows, int n_rows0) {
    extern __shared__ float P[]; /* w floats */
    __shared__ double part[256];
    const int e = blockIdx.x;
    const int L = r == 4 ? 2 : 1, Wc = L * w;
    const int64_t p = (pos0 / r) * r + r - 1 + (int64_t)e * r, Ws = p + 1 - r;
    const float *cs = tab + (p + 1 - r) * n_rot;
    for (int j = threadIdx.x; j < w; j += blockDim.x) {
        float m = -INFINITY;
        float pv[4], pk[4], cv[4], ck[4];
        if (r == 4) {
            for (int t = 0; t < 4; t++) {
                slot(SV, SK, v, g, ape, r, Wc, pos0, Ws - 4 + t, Ws <= pos0 ? t : 4 + t, j, &pv[t], &pk[t]);
                slot(SV, SK, v, g, ape, r, Wc, pos0, Ws + t, 4 + t, w + j, &cv[t], &ck[t]);
            }
            for (int t = 0; t < 4; t++) {
                const float a = pk[t], b = ck[t];
                if (a > m) m = a;
                if (b > m) m = b;
            }
        } else {
            for (int t = 0; t < r; t++) {
                float sv, sk;
                slot(SV, SK, v, g, ape, r, Wc, pos0, Ws + t, t, j, &sv, &sk);
                if (sk > m) m = sk;
            }
        }
        if (m <= -0.5e30f) { P[j] = 0.0f; continue; }
        float denom = 0.0f, sum = 0.0f;
        if (r == 4) {
            for (int t = 0; t < 4; t++) {
                const float wp = d_expf(pk[t] - m);
                const float wc = d_expf(ck[t] - m);
                denom += wp + wc;
                sum += wp * pv[t];
                sum += wc * cv[t];
            }
        } else {
            for (int t = 0; t < r; t++) {
                float sv, sk;
                slot(SV, SK, v, g, ape, r, Wc, pos0, Ws + t, t, j, &sv, &sk);
                const float wt = d_expf(sk - m);
                denom += wt;
                sum += wt * sv;
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
    float *dst = rows + (int64_t)(n_rows0 + e) * w;
    for (int j = threadIdx.x; j < w; j += blockDim.x) dst[j] = d_f16r(P[j]);
}

/* The state after the batch, one thread per column (old values are read
 * before that column's rows are overwritten). */
static __global__ void k_cmp_state(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                   int w, int64_t pos0, int n) {
    const int L = r == 4 ? 2 : 1, Wc = L * w;
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= Wc) return;
    const int64_t a = pos0 + n;
    const int s_next = (int)(a % r);
    const int64_t Wcur = a - s_next;
    if (r == 4) {
        if (Wcur > pos0) { /* an emission at Wcur-1 copied window Wcur-4 into rows 0..3 */
            float nv[4], nk[4];
            for (int t = 0; t < 4; t++) slot(SV, SK, v, g, ape, r, Wc, pos0, Wcur - 4 + t, 4 + t, col, &nv[t], &nk[t]);
            for (int t = 0; t < 4; t++) {
                SV[(int64_t)t * Wc + col] = nv[t];
                SK[(int64_t)t * Wc + col] = nk[t];
            }
        }
        for (int s = 0; s < 4; s++) {
            float sv, sk;
            if (s < s_next) {
                const int64_t q = Wcur + s;
                if (q < pos0) continue; /* written before the batch, untouched */
                slot(SV, SK, v, g, ape, r, Wc, pos0, q, 4 + s, col, &sv, &sk);
            } else {
                sv = 0.0f;
                sk = -1e30f;
            }
            SV[(int64_t)(4 + s) * Wc + col] = sv;
            SK[(int64_t)(4 + s) * Wc + col] = sk;
        }
    } else {
        for (int s = 0; s < r; s++) {
            float sv, sk;
            if (s < s_next) {
                const int64_t q = Wcur + s;
                if (q < pos0) continue;
                slot(SV, SK, v, g, ape, r, Wc, pos0, q, s, col, &sv, &sk);
            } else {
                sv = 0.0f;
                sk = -1e30f;
            }
            SV[(int64_t)s * Wc + col] = sv;
            SK[(int64_t)s * Wc + col] = sk;
        }
    }
}

extern "C" void ds4cu_compressor_gemm(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r,
                                      int w, int64_t pos0, int n, const float *norm_w, float eps, const float *tab,
                                      int n_rot, int indexer, float *rows, int n_rows0) {
    if (n < 2 || r < 1 || !ds4cu_gemm_enabled() || (indexer && w != 128)) {
        ds4cu_compressor(SV, SK, v, g, ape, r, w, pos0, n, norm_w, eps, tab, n_rot, indexer, rows, n_rows0);
        return;
    }
    e4m3_init();
    const int emitted = (int)((pos0 + n) / r - pos0 / r);
    if (emitted > 0)
        k_cmp_emit<<<(unsigned)emitted, 256, sizeof(float) * w, ds4cu_s>>>(SV, SK, v, g, ape, r, w, pos0, norm_w, eps,
                                                                          tab, n_rot, indexer, rows, n_rows0);
    const int Wc = (r == 4 ? 2 : 1) * w;
    k_cmp_state<<<cdiv(Wc, 128), 128, 0, ds4cu_s>>>(SV, SK, v, g, ape, r, w, pos0, n);
    ds4cu_after("compressor_gemm");
}
