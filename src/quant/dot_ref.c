/* dot_ref.c - scalar reference dot products (spec §3.8).
 *
 * These fix the float evaluation order the goldens were computed with: one
 * F32 accumulator, blocks added in order, each block's exact integer sum
 * converted to float and multiplied by its scale product as written below.
 * The SIMD kernels may compute the integer sums any way they like but must
 * reproduce these float steps exactly; the tests hold them to it. Keep the
 * explicit casts and parenthesisation: they are the specification. */
#include "quant/quant_impl.h"

#include <string.h>

float ds4_vec_dot_q8_0_ref(int64_t n, const void *w, const ds4_act_q8_0 *x) {
    const ds4_block_q8_0 *b = w;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK8_0; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += b[i].qs[j] * x[i].qs[j];
        sumf += (ds4_f16_to_f32(b[i].d) * x[i].d) * (float)isum;
    }
    return sumf;
}

float ds4_vec_dot_iq2_xxs_q8_K_ref(int64_t n, const void *w, const ds4_block_q8_K *y) {
    const ds4_block_iq2_xxs *x = w;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK_K; i++) {
        const float d = ds4_f16_to_f32(x[i].d) * y[i].d;
        const uint8_t *p = (const uint8_t *)x[i].qs;
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int g = 0; g < 8; g++) {
            uint32_t A, B;
            memcpy(&A, p + 8 * g, 4);
            memcpy(&B, p + 8 * g + 4, 4);
            int32_t ls = 2 * (int32_t)(B >> 28) + 1, sumi = 0;
            for (int k = 0; k < 4; k++) {
                uint64_t grid = ds4_iq2xxs_grid[(A >> (8 * k)) & 255];
                uint8_t signs = ds4_ksigns_iq2xs[(B >> (7 * k)) & 127];
                for (int j = 0; j < 8; j++) {
                    int v = (int)((grid >> (8 * j)) & 255) * q8[j];
                    sumi += (signs >> j) & 1 ? -v : v;
                }
                q8 += 8;
            }
            bsum += sumi * ls;
        }
        sumf += d * (float)bsum;
    }
    return 0.125f * sumf;
}

float ds4_vec_dot_q2_K_q8_K_ref(int64_t n, const void *w, const ds4_block_q8_K *y) {
    const ds4_block_q2_K *x = w;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK_K; i++) {
        const uint8_t *sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * ds4_f16_to_f32(x[i].d);
        const float dmin = y[i].d * ds4_f16_to_f32(x[i].dmin);
        int isum = 0;
        for (int e = 0; e < 256; e += 16) {
            int h = e / 128, j = (e % 128) / 32, l0 = e % 32, isuml = 0;
            for (int l = 0; l < 16; l++)
                isuml += y[i].qs[e + l] * ((x[i].qs[32 * h + l0 + l] >> (2 * j)) & 3);
            isum += (sc[e / 16] & 15) * isuml;
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

/* Q4_K is not on the reference's CPU path; this is the spec's "natural CPU
 * form", shaped exactly like Q2_K (the CUDA backend computes the same). */
float ds4_vec_dot_q4_K_q8_K_ref(int64_t n, const void *w, const ds4_block_q8_K *y) {
    const ds4_block_q4_K *x = w;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK_K; i++) {
        int isum = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m, isuml = 0;
            ds4_q4_K_scale_min(x[i].scales, j, &sc, &m);
            const uint8_t *q = x[i].qs + 32 * (j / 2);
            int shift = (j & 1) * 4;
            for (int l = 0; l < 32; l++) isuml += y[i].qs[32 * j + l] * ((q[l] >> shift) & 15);
            isum += sc * isuml;
            summs += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        const float dall = y[i].d * ds4_f16_to_f32(x[i].d);
        const float dmin = y[i].d * ds4_f16_to_f32(x[i].dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

float ds4_vec_dot_f16_f32_ref(int64_t n, const uint16_t *w, const float *x) {
    float sumf = 0.0f;
    for (int64_t i = 0; i < n; i++) sumf += ds4_f16_to_f32(w[i]) * x[i];
    return sumf;
}
