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

static __global__ void k_quant_q8_0(const float *x, cu_act_q8_0 *out, int64_t nb) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nb) return;
    const float *xb = x + i * 32;
    float v[32], amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        v[j] = xb[j];
        const float a = fabsf(v[j]);
        if (a > amax) amax = a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[i].d = d;
    for (int j = 0; j < 32; j++) out[i].qs[j] = q8c(v[j] * id);
}

/* One 256-thread block per Q8_K block: the largest magnitude (first index
 * on ties, like the CPU's strict >) by reduction, then one code per thread. */
static __global__ void k_quant_q8_K(const float *x, cu_q8_K *out) {
    __shared__ float wa[8];
    __shared__ int wi[8];
    const int j = threadIdx.x, lane = j & 31, wp = j >> 5;
    const float *xb = x + (int64_t)blockIdx.x * 256;
    cu_q8_K *y = &out[blockIdx.x];
    const float xv = xb[j];
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
    const float iscale = -127.0f / xb[im];
    const int8_t q = q8c(iscale * xv);
    y->qs[j] = q;
    int s = q;
    for (int off = 8; off; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if ((lane & 15) == 0) y->bsums[j >> 4] = (int16_t)s;
    if (j == 0) y->d = 1.0f / iscale;
}

extern "C" void ds4cu_quant_q8_0(const float *x, void *xq, int rows, int64_t width) {
    const int64_t nb = (int64_t)rows * (width / 32);
    if (nb > 0) k_quant_q8_0<<<cdiv(nb, 128), 128, 0, ds4cu_s>>>(x, (cu_act_q8_0 *)xq, nb);
    ds4cu_after("quant_q8_0");
}

extern "C" void ds4cu_quant_q8_K(const float *x, void *xq, int rows, int64_t width) {
    const int64_t nb = (int64_t)rows * (width / 256);
    if (nb > 0) k_quant_q8_K<<<(unsigned)nb, 256, 0, ds4cu_s>>>(x, (cu_q8_K *)xq);
    ds4cu_after("quant_q8_K");
}
