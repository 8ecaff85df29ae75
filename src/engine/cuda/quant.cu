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

static __global__ void k_quant_q8_K(const float *x, cu_q8_K *out, int64_t nb) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nb) return;
    const float *xb = x + i * 256;
    cu_q8_K *y = &out[i];
    float amax = 0.0f, mx = 0.0f;
    for (int j = 0; j < 256; j++) {
        const float a = fabsf(xb[j]);
        if (a > amax) { amax = a; mx = xb[j]; }
    }
    if (amax == 0.0f) {
        y->d = 0.0f;
        for (int j = 0; j < 256; j++) y->qs[j] = 0;
        for (int t = 0; t < 16; t++) y->bsums[t] = 0;
        return;
    }
    const float iscale = -127.0f / mx;
    for (int t = 0; t < 16; t++) {
        int s = 0;
        for (int l = 0; l < 16; l++) {
            const int8_t q = q8c(iscale * xb[16 * t + l]);
            y->qs[16 * t + l] = q;
            s += q;
        }
        y->bsums[t] = (int16_t)s;
    }
    y->d = 1.0f / iscale;
}

extern "C" void ds4cu_quant_q8_0(const float *x, void *xq, int rows, int64_t width) {
    const int64_t nb = (int64_t)rows * (width / 32);
    if (nb > 0) k_quant_q8_0<<<cdiv(nb, 128), 128, 0, ds4cu_s>>>(x, (cu_act_q8_0 *)xq, nb);
    ds4cu_after("quant_q8_0");
}

extern "C" void ds4cu_quant_q8_K(const float *x, void *xq, int rows, int64_t width) {
    const int64_t nb = (int64_t)rows * (width / 256);
    if (nb > 0) k_quant_q8_K<<<cdiv(nb, 64), 64, 0, ds4cu_s>>>(x, (cu_q8_K *)xq, nb);
    ds4cu_after("quant_q8_K");
}
