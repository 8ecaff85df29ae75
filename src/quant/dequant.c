/* dequant.c - weight blocks to F32 (spec §3.2-§3.5), one row at a time.
 *
 * Written straight from the spec's per-element formulas rather than the
 * dot-product loop structure, so the unit tests that compare dot products
 * against dequantize-then-multiply check two independent readings of the
 * layout. Speed is secondary: the engine never dequantizes whole matrices on
 * the hot path (spec §3.8), only rows (embeddings) and test data. */
#include "quant/quant_impl.h"

#include <math.h>
#include <string.h>

static void dq_q8_0(const ds4_block_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = ds4_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++) y[i * 32 + j] = d * (float)b[i].qs[j];
    }
}

static void dq_q2_K(const ds4_block_q2_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = ds4_f16_to_f32(b[i].d), dmin = ds4_f16_to_f32(b[i].dmin);
        for (int e = 0; e < 256; e++) {
            int h = e / 128, j = (e % 128) / 32, l = e % 32, s = e / 16;
            int c = (b[i].qs[32 * h + l] >> (2 * j)) & 3;
            y[i * 256 + e] = d * (float)(b[i].scales[s] & 15) * (float)c
                           - dmin * (float)(b[i].scales[s] >> 4);
        }
    }
}

static void dq_q4_K(const ds4_block_q4_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = ds4_f16_to_f32(b[i].d), dmin = ds4_f16_to_f32(b[i].dmin);
        for (int e = 0; e < 256; e++) {
            int c64 = e / 64, r = e % 64, code, j, sc, m;
            if (r < 32) { code = b[i].qs[32 * c64 + r] & 15; j = 2 * c64; }
            else { code = b[i].qs[32 * c64 + r - 32] >> 4; j = 2 * c64 + 1; }
            ds4_q4_K_scale_min(b[i].scales, j, &sc, &m);
            y[i * 256 + e] = d * (float)sc * (float)code - dmin * (float)m;
        }
    }
}

static void dq_iq2_xxs(const ds4_block_iq2_xxs *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = ds4_f16_to_f32(b[i].d);
        const uint8_t *p = (const uint8_t *)b[i].qs;
        for (int g = 0; g < 8; g++) {
            uint32_t A, B;
            memcpy(&A, p + 8 * g, 4);   /* the format is little-endian, like every target */
            memcpy(&B, p + 8 * g + 4, 4);
            float scale = d * (0.5f + (float)(B >> 28)) * 0.25f;
            for (int k = 0; k < 4; k++) {
                uint64_t grid = ds4_iq2xxs_grid[(A >> (8 * k)) & 255];
                uint8_t signs = ds4_ksigns_iq2xs[(B >> (7 * k)) & 127];
                for (int j = 0; j < 8; j++) {
                    float v = scale * (float)((grid >> (8 * j)) & 255);
                    y[i * 256 + 32 * g + 8 * k + j] = (signs >> j) & 1 ? -v : v;
                }
            }
        }
    }
}

/* Types that are not weight formats (Q8_K, I32, unknown ids) and lengths that
 * are not a whole number of blocks have no meaning here; the row is filled
 * with NaN so a caller that skipped validation sees garbage at once instead of
 * stale memory. Validation itself belongs to the GGUF and model loaders. */
void ds4_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    if (n <= 0) return;
    uint32_t be = ds4_type_block_elems(type);
    int64_t nb = be ? n / be : 0;
    if (!be || n % be) type = 0xffffffffu;
    switch (type) {
    case DS4_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return;
    case DS4_TYPE_F16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = ds4_f16_to_f32(h[i]);
        return;
    }
    case DS4_TYPE_BF16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)h[i] << 16;
            memcpy(&dst[i], &u, 4);
        }
        return;
    }
    case DS4_TYPE_Q8_0: dq_q8_0(src, dst, nb); return;
    case DS4_TYPE_Q2_K: dq_q2_K(src, dst, nb); return;
    case DS4_TYPE_Q4_K: dq_q4_K(src, dst, nb); return;
    case DS4_TYPE_IQ2_XXS: dq_iq2_xxs(src, dst, nb); return;
    default:
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
    }
}
