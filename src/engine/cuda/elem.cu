/* elem.cu - the per-row and elementwise steps of the forward pass: RMSNorm,
 * RoPE, FP8/FP4 simulation, hyper-connections, steering, SwiGLU, expert sums
 * and routing. Each kernel keeps the float operation order of its CPU twin
 * (numerics.c, cpu/forward.c, cpu/moe.c); only RMSNorm's double sum of
 * squares is reduced as a tree (the squares are exact in double, so the order
 * changes at most the last bits of a double before its rounding to float). */
#include "engine/cuda/common.cuh"
#include "engine/cuda/numerics.cuh"
#include "engine/cuda/sinkhorn.cuh"

/* ---------------- RMSNorm ---------------- */
/* One block per row. __restrict__ and the two-phase shape let the loads of a
 * thread's elements (the weight row comes from DRAM: the weight stream
 * evicts it from L2 every token) be in flight together. */
static __global__ void k_rmsnorm(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y, int n,
                                 float eps) {
    __shared__ double part[32];
    const float *xr = x + (int64_t)blockIdx.x * n;
    float *yr = y + (int64_t)blockIdx.x * n;
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += (double)xr[i] * (double)xr[i];
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        double v = (int)threadIdx.x < (int)(blockDim.x / 32) ? part[threadIdx.x] : 0.0;
        for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf((float)(part[0] / n) + eps);
    if (w)
        for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
    else
        for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * scale;
}

extern "C" void ds4cu_rmsnorm(const float *x, const float *w, float *y, int rows, int n, float eps) {
    const int threads = n >= 4096 ? 1024 : (n >= 1024 ? 256 : 128);
    if (rows > 0) k_rmsnorm<<<rows, threads, 0, ds4cu_s>>>(x, w, y, n, eps);
    ds4cu_after("rmsnorm");
}

/* ---------------- RoPE ---------------- */
static __global__ void k_rope(float *x, int n_tok, int nh, int width, int n_rot, const float *tab, int64_t pos0,
                              int inverse, const int64_t *dpos) {
    if (dpos) pos0 = *dpos;
    const int half = n_rot / 2;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n_tok * nh * half) return;
    const int k = (int)(i % half);
    const int64_t th = i / half;
    const int64_t t = th / nh;
    const float *c = tab + (pos0 + t) * n_rot, *s = c + half;
    float *v = x + th * width + (width - n_rot);
    const float x0 = v[2 * k], x1 = v[2 * k + 1];
    const float sn = inverse ? -s[k] : s[k];
    v[2 * k] = x0 * c[k] - x1 * sn;
    v[2 * k + 1] = x0 * sn + x1 * c[k];
}

extern "C" void ds4cu_rope(float *x, int n_tok, int nh, int width, int n_rot, const float *tab, int64_t pos0,
                           int inverse) {
    const int64_t n = (int64_t)n_tok * nh * (n_rot / 2);
    if (n > 0) k_rope<<<cdiv(n, 256), 256, 0, ds4cu_s>>>(x, n_tok, nh, width, n_rot, tab, pos0, inverse, ds4cu_dpos);
    ds4cu_after("rope");
}

/* A warp per 64-block: the max is order-free, every lane computes the same
 * scale, each rounds its two values (d_fp8_block's arithmetic). */
static __global__ void k_fp8(float *x, int rows, int width, int nblk) {
    __shared__ float tab[127];
    for (int i = threadIdx.x; i < 127; i += blockDim.x) tab[i] = c_e4m3[i];
    __syncthreads();
    const int64_t b = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (b >= (int64_t)rows * nblk) return;
    float *xb = x + (b / nblk) * width + (b % nblk) * 64;
    const float v0 = xb[lane], v1 = xb[lane + 32];
    float amax = fmaxf(fabsf(v0), fabsf(v1));
    for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    if (amax < 1e-4f) amax = 1e-4f;
    const float scale = ldexpf(1.0f, (int)ceilf(d_log2f(amax / 448.0f)));
    const float vs[2] = {v0, v1};
    for (int k = 0; k < 2; k++) {
        float q = vs[k] / scale;
        q = q < -448.0f ? -448.0f : (q > 448.0f ? 448.0f : q);
        float a = fabsf(q);
        int lo = 0, hi = 126;
        while (lo < hi) {
            const int mid = (lo + hi + 1) / 2;
            if (tab[mid] <= a) lo = mid;
            else hi = mid - 1;
        }
        int i = lo;
        if (i < 126) {
            const float dn = a - tab[i], up = tab[i + 1] - a;
            if (up < dn || (up == dn && ((i + 1) % 2 == 0))) i = i + 1;
        }
        xb[lane + 32 * k] = (q < 0 ? -tab[i] : tab[i]) * scale;
    }
}

extern "C" void ds4cu_fp8_kv(float *x, int rows, int width, int n_nope) {
    e4m3_init();
    const int nblk = (n_nope + 63) / 64;
    if (rows > 0 && nblk > 0) k_fp8<<<cdiv((int64_t)rows * nblk, 8), 256, 0, ds4cu_s>>>(x, rows, width, nblk);
    ds4cu_after("fp8_kv");
}

static __global__ void k_iqat(float *x) {
    __shared__ float s[128];
    float *r = x + (int64_t)blockIdx.x * 128;
    s[threadIdx.x] = r[threadIdx.x];
    __syncthreads();
    d_iqat_block(s);
    r[threadIdx.x] = s[threadIdx.x];
}

extern "C" void ds4cu_iqat(float *x, int rows) {
    if (rows > 0) k_iqat<<<rows, 128, 0, ds4cu_s>>>(x);
    ds4cu_after("iqat");
}


/* ---------------- simple elementwise ---------------- */
static __global__ void k_scale(float *x, size_t n, float s) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = x[i] * s;
}
extern "C" void ds4cu_scale(float *x, size_t n, float s) {
    if (n) k_scale<<<cdiv((int64_t)n, 256), 256, 0, ds4cu_s>>>(x, n, s);
    ds4cu_after("scale");
}

static __global__ void k_add(float *y, const float *a, const float *b, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}
extern "C" void ds4cu_add(float *y, const float *a, const float *b, size_t n) {
    if (n) k_add<<<cdiv((int64_t)n, 256), 256, 0, ds4cu_s>>>(y, a, b, n);
    ds4cu_after("add");
}

static __global__ void k_embed(const uint16_t *emb, const int32_t *tokens, int n, int E, int HC, float *X) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * E) return;
    const int64_t t = i / E, d = i % E;
    const float v = d_f16(emb[(int64_t)tokens[t] * E + d]);
    for (int h = 0; h < HC; h++) X[(t * HC + h) * E + d] = v;
}
extern "C" void ds4cu_embed(const uint16_t *emb, const int32_t *tokens, int n, int E, int HC, float *X) {
    if (n > 0) k_embed<<<cdiv((int64_t)n * E, 256), 256, 0, ds4cu_s>>>(emb, tokens, n, E, HC, X);
    ds4cu_after("embed");
}

/* ---------------- hyper-connections ---------------- */
/* HC is a template constant where it can be (4 in every real and synthetic
 * model) so the 4x4 Sinkhorn matrix lives in registers; same operations. */
template <int HCT>
static __global__ void k_hc_mix(const float *mixv, const float *scale, const float *base, int n, int HCr, int iters,
                                float eps, float *pre_o, float *post_o, float *comb_o) {
    const int HC = HCT ? HCT : HCr;
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    const int M = 2 * HC + HC * HC;
    const float *mix = mixv + (int64_t)t * M;
    float *pre = pre_o + (int64_t)t * HC, *post = post_o + (int64_t)t * HC, *Cg = comb_o + (int64_t)t * HC * HC;
    float C[HCT ? HCT * HCT : 256];
#pragma unroll
    for (int i = 0; i < HC; i++) {
        pre[i] = 1.0f / (1.0f + d_expf(-(mix[i] * scale[0] + base[i]))) + eps;
        post[i] = 2.0f / (1.0f + d_expf(-(mix[HC + i] * scale[1] + base[HC + i])));
    }
    for (int r = 0; r < HC; r++) {
        float z[16], mx = -INFINITY, sum = 0.0f;
#pragma unroll
        for (int k = 0; k < HC; k++) {
            z[k] = mix[2 * HC + HC * r + k] * scale[2] + base[2 * HC + HC * r + k];
            if (z[k] > mx) mx = z[k];
        }
#pragma unroll
        for (int k = 0; k < HC; k++) { z[k] = d_expf(z[k] - mx); sum += z[k]; }
        const float inv = 1.0f / sum;
        for (int k = 0; k < HC; k++) C[HC * r + k] = z[k] * inv + eps;
    }
    for (int it = 0; it < iters; it++) {
        if (it > 0)
#pragma unroll
            for (int r = 0; r < HC; r++) {
                float sum = 0.0f;
                for (int k = 0; k < HC; k++) sum += C[HC * r + k];
                const float inv = 1.0f / (sum + eps);
                for (int k = 0; k < HC; k++) C[HC * r + k] *= inv;
            }
#pragma unroll
        for (int k = 0; k < HC; k++) {
            float sum = 0.0f;
            for (int r = 0; r < HC; r++) sum += C[HC * r + k];
            const float inv = 1.0f / (sum + eps);
            for (int r = 0; r < HC; r++) C[HC * r + k] *= inv;
        }
    }
    for (int i = 0; i < HC * HC; i++) Cg[i] = C[i];
}

/* hc_pre's scalar part and the weighted stream sum in one launch: a block per
 * token, its thread 0 runs k_hc_mix's code for that token, then the block
 * sums the streams (h in order). */
template <int HCT>
static __global__ void k_hc_pre(const float *mixv, const float *scale_g, const float *base_g, const float *X, int HCr,
                                int E, int iters, float eps, float *pre_o, float *post_o, float *comb_o, float *a) {
    __shared__ float pre_s[16], mix[2 * 16 + 256], base[2 * 16 + 256], scale[3];
    const int HC = HCT ? HCT : HCr;
    const int t = blockIdx.x;
    const int M = 2 * HC + HC * HC;
    /* parallel loads first: the serial part below must not wait on DRAM per value */
    for (int i = threadIdx.x; i < M; i += blockDim.x) {
        mix[i] = mixv[(int64_t)t * M + i];
        base[i] = base_g[i];
    }
    if (threadIdx.x < 3) scale[threadIdx.x] = scale_g[threadIdx.x];
    __syncthreads();
    if (threadIdx.x == 0) {
        float *pre = pre_o + (int64_t)t * HC, *post = post_o + (int64_t)t * HC, *Cg = comb_o + (int64_t)t * HC * HC;
        float C[HCT ? HCT * HCT : 256];
#pragma unroll
        for (int i = 0; i < HC; i++) {
            pre[i] = 1.0f / (1.0f + d_expf(-(mix[i] * scale[0] + base[i]))) + eps;
            pre_s[i] = pre[i];
            post[i] = 2.0f / (1.0f + d_expf(-(mix[HC + i] * scale[1] + base[HC + i])));
        }
        for (int r = 0; r < HC; r++) {
            float z[16], mx = -INFINITY, sum = 0.0f;
#pragma unroll
            for (int k = 0; k < HC; k++) {
                z[k] = mix[2 * HC + HC * r + k] * scale[2] + base[2 * HC + HC * r + k];
                if (z[k] > mx) mx = z[k];
            }
#pragma unroll
            for (int k = 0; k < HC; k++) { z[k] = d_expf(z[k] - mx); sum += z[k]; }
            const float inv = 1.0f / sum;
            for (int k = 0; k < HC; k++) C[HC * r + k] = z[k] * inv + eps;
        }
        for (int it = 0; it < iters; it++) {
            if (it > 0)
                for (int r = 0; r < HC; r++) {
                    float sum = 0.0f;
                    for (int k = 0; k < HC; k++) sum += C[HC * r + k];
                    const float inv = 1.0f / (sum + eps);
                    for (int k = 0; k < HC; k++) C[HC * r + k] *= inv;
                }
            for (int k = 0; k < HC; k++) {
                float sum = 0.0f;
                for (int r = 0; r < HC; r++) sum += C[HC * r + k];
                const float inv = 1.0f / (sum + eps);
                for (int r = 0; r < HC; r++) C[HC * r + k] *= inv;
            }
        }
        for (int i = 0; i < HC * HC; i++) Cg[i] = C[i];
    }
    __syncthreads();
    const float *x = X + (int64_t)t * HC * E;
    for (int d = threadIdx.x; d < E; d += blockDim.x) {
        float acc = 0.0f;
        for (int h = 0; h < HC; h++) acc += x[(int64_t)h * E + d] * pre_s[h];
        a[(int64_t)t * E + d] = acc;
    }
}

extern "C" void ds4cu_hc_pre(const float *mix, const float *scale, const float *base, const float *X, int n, int HC,
                             int E, int iters, float eps, float *pre, float *post, float *comb, float *a) {
    if (n > 0 && HC == 4)
        k_hc_pre<4><<<n, 256, 0, ds4cu_s>>>(mix, scale, base, X, HC, E, iters, eps, pre, post, comb, a);
    else if (n > 0 && HC <= 16)
        k_hc_pre<0><<<n, 256, 0, ds4cu_s>>>(mix, scale, base, X, HC, E, iters, eps, pre, post, comb, a);
    ds4cu_after("hc_pre");
}

extern "C" void ds4cu_hc_mix(const float *mix, const float *scale, const float *base, int n, int HC, int iters,
                             float eps, float *pre, float *post, float *comb) {
    if (n > 0 && HC == 4) k_hc_mix<4><<<cdiv(n, 64), 64, 0, ds4cu_s>>>(mix, scale, base, n, HC, iters, eps, pre, post, comb);
    else if (n > 0 && HC <= 16) k_hc_mix<0><<<cdiv(n, 64), 64, 0, ds4cu_s>>>(mix, scale, base, n, HC, iters, eps, pre, post, comb);
    ds4cu_after("hc_mix");
}

static __global__ void k_hc_reduce(const float *X, const float *pre, int n, int HC, int E, float *a) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * E) return;
    const int64_t t = i / E, d = i % E;
    const float *x = X + t * HC * E + d, *p = pre + t * HC;
    float acc = 0.0f;
    for (int h = 0; h < HC; h++) acc += x[(int64_t)h * E] * p[h];
    a[i] = acc;
}
extern "C" void ds4cu_hc_reduce(const float *X, const float *pre, int n, int HC, int E, float *a) {
    if (n > 0) k_hc_reduce<<<cdiv((int64_t)n * E, 256), 256, 0, ds4cu_s>>>(X, pre, n, HC, E, a);
    ds4cu_after("hc_reduce");
}

static __global__ void k_hc_post(const float *X, const float *F, const float *post, const float *comb, int n, int HC,
                                 int E, float *Y) {
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (int64_t)n * HC * E) return;
    const int64_t d = idx % E, ti = idx / E, i = ti % HC, t = ti / HC;
    const float *x = X + t * HC * E + d, *C = comb + t * HC * HC;
    float v = post[t * HC + i] * F[t * E + d];
    for (int j = 0; j < HC; j++) v += C[HC * j + i] * x[(int64_t)j * E];
    Y[idx] = v;
}
extern "C" void ds4cu_hc_post(const float *X, const float *F, const float *post, const float *comb, int n, int HC,
                              int E, float *Y) {
    if (n > 0) k_hc_post<<<cdiv((int64_t)n * HC * E, 256), 256, 0, ds4cu_s>>>(X, F, post, comb, n, HC, E, Y);
    ds4cu_after("hc_post");
}

static __global__ void k_out_weights(const float *hh, const float *scale, const float *base, int n, int HC, float eps,
                                     float *w) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * HC) return;
    w[i] = d_sigmoid_stable(hh[i] * scale[0] + base[i % HC]) + eps;
}
extern "C" void ds4cu_out_weights(const float *hh, const float *scale, const float *base, int n, int HC, float eps,
                                  float *w) {
    if (n > 0) k_out_weights<<<cdiv(n * HC, 64), 64, 0, ds4cu_s>>>(hh, scale, base, n, HC, eps, w);
    ds4cu_after("out_weights");
}

/* ---------------- steering, SwiGLU, expert sum ---------------- */
static __global__ void k_steer(float *y, const float *v, int E, float scale) {
    __shared__ float dot_s;
    float *r = y + (int64_t)blockIdx.x * E;
    if (threadIdx.x == 0) {
        float dot = 0.0f;
        for (int i = 0; i < E; i++) dot += r[i] * v[i];
        dot_s = dot;
    }
    __syncthreads();
    const float dot = dot_s;
    for (int i = threadIdx.x; i < E; i += blockDim.x) r[i] = r[i] - scale * dot * v[i];
}
extern "C" void ds4cu_steer(float *y, const float *v, int n, int E, float scale) {
    if (n > 0) k_steer<<<n, 256, 0, ds4cu_s>>>(y, v, E, scale);
    ds4cu_after("steer");
}

static __global__ void k_swiglu(float *g, const float *u, const float *w, int rows, int F, float c) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)rows * F) return;
    float gv = g[i], uv = u[i];
    if (gv > c) gv = c;
    uv = uv < -c ? -c : (uv > c ? c : uv);
    g[i] = w ? d_silu(gv) * uv * w[i / F] : d_silu(gv) * uv;
}
extern "C" void ds4cu_swiglu(float *g, const float *u, const float *w, int rows, int F, float clamp) {
    if (rows > 0) k_swiglu<<<cdiv((int64_t)rows * F, 256), 256, 0, ds4cu_s>>>(g, u, w, rows, F, clamp);
    ds4cu_after("swiglu");
}

static __global__ void k_moe_sum(const float *dout, int n, int K, int E, const float *add, float *out) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * E) return;
    const int64_t t = i / E, d = i % E;
    float acc = 0.0f;
    for (int k = 0; k < K; k++) acc += dout[(t * K + k) * E + d];
    out[i] = add ? acc + add[i] : acc;
}
extern "C" void ds4cu_moe_sum(const float *dout, int n, int K, int E, const float *add, float *out) {
    if (n > 0) k_moe_sum<<<cdiv((int64_t)n * E, 256), 256, 0, ds4cu_s>>>(dout, n, K, E, add, out);
    ds4cu_after("moe_sum");
}

/* ---------------- routing (ds4_route), a block per token ----------------
 * 256 threads: the probabilities one expert per thread (the per-element
 * softplus/sqrt chain was the old one-warp kernel's serial part); then warp 0
 * picks the K best with the expert scores in registers (8 a lane, expert
 * 32·i + lane): each pick is a lane-local scan plus a warp argmax with the
 * CPU's rule (strictly greater wins, ties go to the lower index). A NaN
 * score counts as -inf (the CPU's pick then depends on where it stands), so
 * every pick is a valid, distinct expert. The weight sum runs in pick order. */
#define ROUTE_MAX 256
static __global__ void __launch_bounds__(ROUTE_MAX)
    k_route(const float *lgv, int X, int K, const int32_t *tokens, const int32_t *tid2eid, const float *bias,
            int norm, float escale, int32_t *sel_o, float *w_o, float *comb, int iters, float hc_eps) {
    __shared__ float prob[ROUTE_MAX], score[ROUTE_MAX];
    __shared__ int32_t sel[16];
    const int t = blockIdx.x, tid = threadIdx.x, lane = tid & 31;
    if (comb && t == (int)gridDim.x - 1) { /* the deferred Sinkhorn of the pre-mix (sinkhorn.cuh) */
        if (tid < 16) d_sinkhorn4_inplace(comb, iters, hc_eps);
        return;
    }
    if (tid < X) {
        const float z = lgv[(int64_t)t * X + tid];
        const float b = bias ? bias[tid] : 0.0f;
        const float sp = z > 20.0f ? z : (z < -20.0f ? d_expf(z) : d_log1pf(d_expf(z)));
        const float p = sqrtf(sp);
        prob[tid] = p;
        score[tid] = bias ? p + b : p;
    }
    if (tid2eid) {
        if (tid < K) sel[tid] = tid2eid[(int64_t)tokens[t] * K + tid];
        __syncthreads();
    } else {
        __syncthreads();
        if (tid >= 32) return;
        float sv[ROUTE_MAX / 32];
#pragma unroll
        for (int i = 0; i < ROUTE_MAX / 32; i++) { /* NaN as -inf: a total order, so every lane agrees */
            const float sc = 32 * i + lane < X ? score[32 * i + lane] : -INFINITY;
            sv[i] = sc != sc ? -INFINITY : sc;
        }
        unsigned taken = 0; /* bit i: expert 32·i + lane already picked */
        for (int k = 0; k < K; k++) {
            float bv = 0.0f;
            int bi = -1;
#pragma unroll
            for (int i = 0; i < ROUTE_MAX / 32; i++) {
                const int e = 32 * i + lane;
                if (e < X && !(taken >> i & 1) && (bi < 0 || sv[i] > bv)) { bv = sv[i]; bi = e; }
            }
            for (int off = 16; off; off >>= 1) {
                const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
                const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
                if (oi >= 0 && (bi < 0 || ov > bv || (ov == bv && oi < bi))) { bv = ov; bi = oi; }
            }
            if (bi >= 0 && (bi & 31) == lane) taken |= 1u << (bi >> 5);
            if (lane == 0) sel[k] = bi;
        }
        __syncwarp();
    }
    /* lane k < K: the weight sum in pick order (every lane the same), then
     * its own weight (the K divisions at once, not in series) */
    if (tid < K) {
        float sum = 0.0f;
        for (int k = 0; k < K; k++) sum += prob[sel[k]];
        const float wk = prob[sel[tid]];
        const float Z = sum > 6.103515625e-5f ? sum : 6.103515625e-5f;
        sel_o[(int64_t)t * K + tid] = sel[tid];
        w_o[(int64_t)t * K + tid] = norm ? wk / Z * escale : wk * escale;
    }
}
extern "C" void ds4cu_route_sk(const float *lg, int n, int X, int K, const int32_t *tokens, const int32_t *tid2eid,
                               const float *bias, int norm, float scale, int32_t *sel, float *w, float *comb, int iters,
                               float hc_eps) {
    if (n < 0) n = 0;
    if (n > 0 || comb)
        k_route<<<n + (comb != NULL), ROUTE_MAX, 0, ds4cu_s>>>(lg, X, K, tokens, tid2eid, bias, norm, scale, sel, w,
                                                              comb, iters, hc_eps);
    ds4cu_after("route");
}
extern "C" void ds4cu_route(const float *lg, int n, int X, int K, const int32_t *tokens, const int32_t *tid2eid,
                            const float *bias, int norm, float scale, int32_t *sel, float *w) {
    ds4cu_route_sk(lg, n, X, K, tokens, tid2eid, bias, norm, scale, sel, w, NULL, 0, 0.0f);
}

/* ---------------- libm twins, for the op tests ---------------- */
static __global__ void k_libm(const float *x, float *e, float *l, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    e[i] = d_expf(x[i]);
    l[i] = d_log1pf(x[i]);
}
extern "C" void ds4cu_libm(const float *x, float *e, float *l, int n) {
    if (n > 0) k_libm<<<cdiv(n, 256), 256, 0, ds4cu_s>>>(x, e, l, n);
    ds4cu_after("libm");
}
