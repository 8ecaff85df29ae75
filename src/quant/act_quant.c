/* act_quant.c - activation quantization (spec §3.7, §3.8), the reference rule
 * reproduced exactly: every later integer dot product, and so every golden
 * logit, depends on these codes bit for bit.
 *
 * Q8_0 activations keep their scale in F32 (GGML would round it to F16; the
 * reference engine does not). Q8_K takes the signed value of the first element
 * of largest magnitude and a negative scale, GGML's convention that lets the
 * IQ2 kernels avoid -128. Rounding is lrintf (ties to even in the default
 * rounding mode), then clamped: finite inputs never leave [-127, 127], the
 * clamp only keeps non-finite inputs from producing wild codes. */
#include "quant/quant.h"

#include <math.h>
#include <string.h>

static int8_t q8_clamp(float v) {
    long r = lrintf(v);
    if (v != v) return 0;                  /* NaN: lrintf is unspecified, pick 0 */
    if (r > 127) return 127;
    if (r < -128) return -128;
    return (int8_t)r;
}

void ds4_quantize_act_q8_0(const float *x, ds4_act_q8_0 *out, int64_t n) {
    for (int64_t b = 0; b < n / DS4_QK8_0; b++) {
        const float *xb = x + b * DS4_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < DS4_QK8_0; j++) {
            float a = fabsf(xb[j]);
            if (a > amax) amax = a;
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = d;
        for (int j = 0; j < DS4_QK8_0; j++) out[b].qs[j] = q8_clamp(xb[j] * id);
    }
}

void ds4_quantize_q8_K(const float *x, ds4_block_q8_K *out, int64_t n) {
    for (int64_t b = 0; b < n / DS4_QK_K; b++) {
        const float *xb = x + b * DS4_QK_K;
        ds4_block_q8_K *y = &out[b];
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < DS4_QK_K; j++) {
            float a = fabsf(xb[j]);
            if (a > amax) { amax = a; max = xb[j]; }   /* strict >: first index wins */
        }
        if (amax == 0.0f) {
            memset(y, 0, sizeof *y);
            continue;
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < DS4_QK_K; j++) y->qs[j] = q8_clamp(iscale * xb[j]);
        for (int t = 0; t < 16; t++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += y->qs[16 * t + i];
            y->bsums[t] = (int16_t)s;
        }
        y->d = 1.0f / iscale;
    }
}
