/* quant_weights.c - F32 -> weight blocks, for ds4-synth and the tests.
 *
 * These are simple, deterministic encoders, not GGML's search-based ones: the
 * synthetic models only need valid blocks that approximate their input, and
 * the engine only ever reads blocks. Each encoder picks its F16 super-scales
 * first and then codes every value against the rounded scales, so what the
 * decoder sees is what the encoder optimised for. Non-finite input never
 * crashes; it yields zero or saturated codes. */
#include "quant/quant_impl.h"

#include <math.h>
#include <string.h>

static int clampi(long v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : (int)v; }
static int rnd(float v) { return v == v ? clampi(lrintf(fmaxf(fminf(v, 1e9f), -1e9f)), -1000000000, 1000000000) : 0; }
/* A finite F16 scale >= 0 (inputs beyond F16 range saturate instead of inf). */
static uint16_t f16_scale(float v) {
    if (!(v > 0.0f)) return 0;
    if (v > 65504.0f) v = 65504.0f;
    return ds4_f32_to_f16(v);
}

void ds4_quantize_row_q8_0(const float *x, void *dst, int64_t n) {
    ds4_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / DS4_QK8_0; i++, x += DS4_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        b[i].d = f16_scale(amax / 127.0f);
        float d = ds4_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++) b[i].qs[j] = (int8_t)(d > 0.0f ? clampi(rnd(x[j] / d), -127, 127) : 0);
    }
}

/* Shared by Q2_K and Q4_K: sub-blocks of `len` values coded as
 * d*sc*c - dmin*m with c in [0, cmax], sc and m in [0, smax]. */
static void kquant_block(const float *x, int nsub, int len, int cmax, int smax,
                         uint16_t *d16, uint16_t *dmin16, uint8_t *sc, uint8_t *mc, uint8_t *codes) {
    float scale[16], min[16], maxscale = 0.0f, maxmin = 0.0f;
    for (int s = 0; s < nsub; s++) {
        float lo = 0.0f, hi = 0.0f;               /* the range always includes 0 */
        for (int l = 0; l < len; l++) {
            float v = x[s * len + l];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        scale[s] = (hi - lo) / (float)cmax;
        min[s] = -lo;
        if (scale[s] > maxscale) maxscale = scale[s];
        if (min[s] > maxmin) maxmin = min[s];
    }
    *d16 = f16_scale(maxscale / (float)smax);
    *dmin16 = f16_scale(maxmin / (float)smax);
    float d = ds4_f16_to_f32(*d16), dmin = ds4_f16_to_f32(*dmin16);
    for (int s = 0; s < nsub; s++) {
        sc[s] = (uint8_t)(d > 0.0f ? clampi(rnd(scale[s] / d), 0, smax) : 0);
        mc[s] = (uint8_t)(dmin > 0.0f ? clampi(rnd(min[s] / dmin), 0, smax) : 0);
        float step = d * (float)sc[s], off = dmin * (float)mc[s];
        for (int l = 0; l < len; l++)
            codes[s * len + l] = (uint8_t)(step > 0.0f ? clampi(rnd((x[s * len + l] + off) / step), 0, cmax) : 0);
    }
}

void ds4_quantize_row_q2_K(const float *x, void *dst, int64_t n) {
    ds4_block_q2_K *b = dst;
    for (int64_t i = 0; i < n / DS4_QK_K; i++, x += DS4_QK_K) {
        uint8_t sc[16], mc[16], c[256];
        kquant_block(x, 16, 16, 3, 15, &b[i].d, &b[i].dmin, sc, mc, c);
        for (int s = 0; s < 16; s++) b[i].scales[s] = (uint8_t)(sc[s] | mc[s] << 4);
        memset(b[i].qs, 0, sizeof b[i].qs);
        for (int e = 0; e < 256; e++) {
            int h = e / 128, j = (e % 128) / 32, l = e % 32;
            b[i].qs[32 * h + l] |= (uint8_t)(c[e] << (2 * j));
        }
    }
}

void ds4_quantize_row_q4_K(const float *x, void *dst, int64_t n) {
    ds4_block_q4_K *b = dst;
    for (int64_t i = 0; i < n / DS4_QK_K; i++, x += DS4_QK_K) {
        uint8_t sc[8], mc[8], c[256];
        kquant_block(x, 8, 32, 15, 63, &b[i].d, &b[i].dmin, sc, mc, c);
        uint8_t *S = b[i].scales;
        for (int j = 0; j < 4; j++) {
            S[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
            S[j + 4] = (uint8_t)(mc[j] | (mc[j + 4] >> 4) << 6);
            S[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mc[j + 4] & 15) << 4);
        }
        for (int c64 = 0; c64 < 4; c64++)
            for (int l = 0; l < 32; l++)
                b[i].qs[32 * c64 + l] = (uint8_t)(c[64 * c64 + l] | c[64 * c64 + 32 + l] << 4);
    }
}

/* IQ2_XXS: per group of 32 a scale code, per 8 values a grid entry and signs.
 * For a given group scale the best entry is found exhaustively: signs follow
 * the input, and when that gives an odd number of negatives (the format only
 * stores even ones) the cheapest element to flip is flipped, whose cost for
 * entry g is 4*gs*g_j*|x_j| on top of the magnitude error. */
void ds4_quantize_row_iq2_xxs(const float *x, void *dst, int64_t n) {
    ds4_block_iq2_xxs *b = dst;
    for (int64_t i = 0; i < n / DS4_QK_K; i++, x += DS4_QK_K) {
        float gamax[8], maxgs = 0.0f;
        for (int g = 0; g < 8; g++) {
            gamax[g] = 0.0f;
            for (int l = 0; l < 32; l++) gamax[g] = fmaxf(gamax[g], fabsf(x[32 * g + l]));
            if (gamax[g] / 43.0f > maxgs) maxgs = gamax[g] / 43.0f;
        }
        b[i].d = f16_scale(maxgs * 8.0f / 31.0f);     /* largest group uses s = 15 */
        float d = ds4_f16_to_f32(b[i].d);
        uint8_t *p = (uint8_t *)b[i].qs;
        for (int g = 0; g < 8; g++) {
            int s = d > 0.0f ? clampi(rnd((gamax[g] / 43.0f * 8.0f / d - 1.0f) * 0.5f), 0, 15) : 0;
            float gs = d * (float)(2 * s + 1) * 0.125f;
            uint32_t A = 0, B = (uint32_t)s << 28;
            for (int k = 0; k < 4; k++) {
                const float *v = x + 32 * g + 8 * k;
                int neg = 0, best = 0;
                for (int j = 0; j < 8; j++) if (v[j] < 0.0f) neg |= 1 << j;
                int odd = __builtin_popcount((unsigned)neg) & 1;
                float best_err = INFINITY;
                int best_flip = -1;
                for (int G = 0; G < 256; G++) {
                    float err = 0.0f, flip_cost = INFINITY;
                    int flip = -1;
                    for (int j = 0; j < 8; j++) {
                        float m = gs * (float)((ds4_iq2xxs_grid[G] >> (8 * j)) & 255), a = fabsf(v[j]);
                        err += (m - a) * (m - a);
                        if (odd && 4.0f * m * a < flip_cost) { flip_cost = 4.0f * m * a; flip = j; }
                    }
                    if (odd) err += flip_cost;
                    if (err < best_err) { best_err = err; best = G; best_flip = flip; }
                }
                int signs = neg;
                if (odd) signs ^= 1 << (best_flip < 0 ? 0 : best_flip);
                A |= (uint32_t)best << (8 * k);
                B |= (uint32_t)(signs & 127) << (7 * k);
            }
            memcpy(p + 8 * g, &A, 4);
            memcpy(p + 8 * g + 4, &B, 4);
        }
    }
}
