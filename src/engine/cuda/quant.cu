/* quant.cu - activation quantization on the device, one thread per block,
 * exactly ds4_quantize_act_q8_0 (amax/127, F32 scale, round half to even) and
 * ds4_quantize_q8_K (signed max of the first largest magnitude, -127/max,
 * bsums): the integer dots downstream then see the CPU's codes bit for bit. */
#include "engine/cuda/common.cuh"

static __device__ __forceinline__ int8_t q8c(float v) {
    if (v != v) return 0;
    float r = rintf(v);
    if (r > 127.0f) return 127;
    if (r < -128.0f) return -128;
    return (int8_t)(int)r;
}

/* A warp per 32-block (one value per lane): the max is order-free, every
 * lane then applies the same d and 1/d. With g (and u) given, the value is
 * first the SwiGLU of the shared expert, silu(min(g,c))·clamp(u,±c), so the
 * hidden vector is never written out. */
static __global__ void k_quant_q8_0(const float *x, cu_act_q8_0 *out, int64_t nb, const float *u, float c) {
    const int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (i >= nb) return;
    float v = x[i * 32 + lane];
    if (u) {
        float g = v, uv = u[i * 32 + lane];
        if (g > c) g = c;
        uv = uv < -c ? -c : (uv > c ? c : uv);
        v = d_silu(g) * uv;
    }
    float amax = fabsf(v);
    for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (lane == 0) out[i].d = d;
    out[i].qs[lane] = q8c(v * id);
}

/* One 256-thread block per Q8_K block: the largest magnitude (first index
 * on ties, like the CPU's strict >) by reduction, then one code per thread. */
static __global__ void k_quant_q8_K(const float *x, cu_q8_K *out, const float *u, const float *w, int bpr, float c) {
    __shared__ float wa[8], xs[256];
    __shared__ int wi[8];
    const int j = threadIdx.x, lane = j & 31, wp = j >> 5;
    const float *xb = x + (int64_t)blockIdx.x * 256;
    cu_q8_K *y = &out[blockIdx.x];
    float xv = xb[j];
    if (u) { /* routed SwiGLU first: silu(min(g,c))·clamp(u,±c)·w[row] */
        float uv = u[(int64_t)blockIdx.x * 256 + j];
        if (xv > c) xv = c;
        uv = uv < -c ? -c : (uv > c ? c : uv);
        xv = d_silu(xv) * uv * w[blockIdx.x / bpr];
    }
    xs[j] = xv;
    float a = fabsf(xv);
    int ai = j;
    for (int off = 16; off; off >>= 1) {
        const float oa = __shfl_xor_sync(0xffffffffu, a, off);
        const int oi = __shfl_xor_sync(0xffffffffu, ai, off);
        if (oa > a || (oa == a && oi < ai)) { a = oa; ai = oi; }
    }
    if (lane == 0) { wa[wp] = a; wi[wp] = ai; }
    __syncthreads();
    float amax = wa[0];
    int im = wi[0];
    for (int k = 1; k < 8; k++)
        if (wa[k] > amax || (wa[k] == amax && wi[k] < im)) { amax = wa[k]; im = wi[k]; }
    if (amax == 0.0f) {
        y->qs[j] = 0;
        if (j < 16) y->bsums[j] = 0;
        if (j == 0) y->d = 0.0f;
        return;
    }
    __syncthreads();
    const float iscale = -127.0f / xs[im];
    const int8_t q = q8c(iscale * xv);
    y->qs[j] = q;
    int s = q;
    for (int off = 8; off; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if ((lane & 15) == 0) y->bsums[j >> 4] = (int16_t)s;
    if (j == 0) y->d = 1.0f / iscale;
}

extern "C" void ds4cu_quant_q8_0(const float *x, void *xq, int rows, int64_t width) {
    const int64_t nb = (int64_t)rows * (width / 32);
    if (nb > 0) k_quant_q8_0<<<cdiv(nb, 8), 256, 0, ds4cu_s>>>(x, (cu_act_q8_0 *)xq, nb, NULL, 0.0f);
    ds4cu_after("quant_q8_0");
}

extern "C" void ds4cu_swiglu_q8_0(const float *g, const float *u, void *xq, int rows, int64_t width, float clamp) {
    const int64_t nb = (int64_t)rows * (width / 32);
    if (nb > 0) k_quant_q8_0<<<cdiv(nb, 8), 256, 0, ds4cu_s>>>(g, (cu_act_q8_0 *)xq, nb, u, clamp);
    ds4cu_after("swiglu_q8_0");
}

extern "C" void ds4cu_quant_q8_K(const float *x, void *xq, int rows, int64_t width) {
    const int64_t nb = (int64_t)rows * (width / 256);
    if (nb > 0) k_quant_q8_K<<<(unsigned)nb, 256, 0, ds4cu_s>>>(x, (cu_q8_K *)xq, NULL, NULL, 1, 0.0f);
    ds4cu_after("quant_q8_K");
}

extern "C" void ds4cu_swiglu_q8_K(const float *g, const float *u, const float *w, void *xq, int rows, int64_t width,
                                  float clamp) {
    const int64_t nb = (int64_t)rows * (width / 256);
    if (nb > 0) k_quant_q8_K<<<(unsigned)nb, 256, 0, ds4cu_s>>>(g, (cu_q8_K *)xq, u, w, (int)(width / 256), clamp);
    ds4cu_after("swiglu_q8_K");
}
