/* simd_neon.c - AArch64 NEON kernels (NEON is part of the base ARMv8-A ISA,
 * so no run-time check is needed).
 *
 * Same rules as the x86 kernels: only the integer block sums are vectorised
 * (int8 x int8 products widened to int16 and pairwise-accumulated in int32,
 * which is exact), and every float step is the scalar reference's, in block
 * order. Built and run only on aarch64; on other targets the level reports
 * itself unavailable. NOTE: written against the scalar references but, at the
 * time of writing, only compile-checked (clang --target=aarch64-linux-gnu);
 * test_quant_dot runs it against the references on the first ARM machine. */
#include "quant/quant_impl.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <pthread.h>
#include <string.h>

static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_s8(vget_high_s8(a), vget_high_s8(b)));
}

static float dot_q8_0(int64_t n, const void *vw, const ds4_act_q8_0 *x) {
    const ds4_block_q8_0 *w = vw;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK8_0; i++) {
        int32x4_t acc = dot16(vdupq_n_s32(0), vld1q_s8(w[i].qs), vld1q_s8(x[i].qs));
        acc = dot16(acc, vld1q_s8(w[i].qs + 16), vld1q_s8(x[i].qs + 16));
        sumf += (ds4_f16_to_f32(w[i].d) * x[i].d) * (float)vaddvq_s32(acc);
    }
    return sumf;
}

static const uint64_t *SG;   /* signed grid + 64, see iq2_signed.c */

static float dot_iq2_xxs(int64_t n, const void *vw, const ds4_block_q8_K *y) {
    const ds4_block_iq2_xxs *x = vw;
    const int8x16_t off = vdupq_n_s8(64);
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
            int32x4_t acc = vdupq_n_s32(0);
            for (int k = 0; k < 4; k += 2) {
                uint64_t e0 = SG[((A >> (8 * k)) & 255) << 7 | ((B >> (7 * k)) & 127)];
                uint64_t e1 = SG[((A >> (8 * (k + 1))) & 255) << 7 | ((B >> (7 * (k + 1))) & 127)];
                int8x16_t gs = vsubq_s8(vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(e0), vcreate_u64(e1))), off);
                acc = dot16(acc, gs, vld1q_s8(q8 + 32 * g + 8 * k));
            }
            bsum += vaddvq_s32(acc) * (int32_t)(2 * (B >> 28) + 1);
        }
        sumf += d * (float)bsum;
    }
    return 0.125f * sumf;
}

static float dot_q2_K(int64_t n, const void *vw, const ds4_block_q8_K *y) {
    const ds4_block_q2_K *x = vw;
    const uint8x16_t m3 = vdupq_n_u8(3);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK_K; i++) {
        const uint8_t *sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * ds4_f16_to_f32(x[i].d);
        const float dmin = y[i].d * ds4_f16_to_f32(x[i].dmin);
        int isum = 0;
        for (int e = 0; e < 256; e += 16) {
            int h = e / 128, j = (e % 128) / 32, l0 = e % 32;
            uint8x16_t c = vandq_u8(vshlq_u8(vld1q_u8(x[i].qs + 32 * h + l0), vdupq_n_s8((int8_t)(-2 * j))), m3);
            isum += (sc[e / 16] & 15) * vaddvq_s32(dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(c), vld1q_s8(y[i].qs + e)));
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

static float dot_q4_K(int64_t n, const void *vw, const ds4_block_q8_K *y) {
    const ds4_block_q4_K *x = vw;
    const uint8x16_t m4 = vdupq_n_u8(15);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK_K; i++) {
        int isum = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            ds4_q4_K_scale_min(x[i].scales, j, &sc, &m);
            const uint8_t *q = x[i].qs + 32 * (j / 2);
            int32x4_t acc = vdupq_n_s32(0);
            for (int l = 0; l < 32; l += 16) {
                uint8x16_t b = vld1q_u8(q + l);
                uint8x16_t c = (j & 1) ? vshrq_n_u8(b, 4) : vandq_u8(b, m4);
                acc = dot16(acc, vreinterpretq_s8_u8(c), vld1q_s8(y[i].qs + 32 * j + l));
            }
            isum += sc * vaddvq_s32(acc);
            summs += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        const float dall = y[i].d * ds4_f16_to_f32(x[i].d);
        const float dmin = y[i].d * ds4_f16_to_f32(x[i].dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

static inline float32x4_t cvt4(const uint16_t *w) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w))); }

/* Exact: products in lanes, sum in index order. */
static float dot_f16(int64_t n, const uint16_t *w, const float *x) {
    float sumf = 0.0f;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float p[4];
        vst1q_f32(p, vmulq_f32(cvt4(w + i), vld1q_f32(x + i)));
        sumf += p[0]; sumf += p[1]; sumf += p[2]; sumf += p[3];
    }
    for (; i < n; i++) sumf += ds4_f16_to_f32(w[i]) * x[i];
    return sumf;
}

/* Fast: 16 lane accumulators (reassociated; no fused multiply-add). */
static float dot_f16_fast(int64_t n, const uint16_t *w, const float *x) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vaddq_f32(a0, vmulq_f32(cvt4(w + i), vld1q_f32(x + i)));
        a1 = vaddq_f32(a1, vmulq_f32(cvt4(w + i + 4), vld1q_f32(x + i + 4)));
        a2 = vaddq_f32(a2, vmulq_f32(cvt4(w + i + 8), vld1q_f32(x + i + 8)));
        a3 = vaddq_f32(a3, vmulq_f32(cvt4(w + i + 12), vld1q_f32(x + i + 12)));
    }
    float sumf = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sumf += ds4_f16_to_f32(w[i]) * x[i];
    return sumf;
}

static void rows_q8_0(int64_t n, int64_t nrows, const void *w, size_t stride, const ds4_act_q8_0 *x, float *out) {
    for (int64_t r = 0; r < nrows; r++) out[r] = dot_q8_0(n, (const char *)w + (size_t)r * stride, x);
}
#define ROWS_Q8K(name, fn) \
    static void name(int64_t n, int64_t nrows, const void *w, size_t stride, const ds4_block_q8_K *y, float *out) { \
        for (int64_t r = 0; r < nrows; r++) out[r] = fn(n, (const char *)w + (size_t)r * stride, y); \
    }
ROWS_Q8K(rows_iq2_xxs, dot_iq2_xxs)
ROWS_Q8K(rows_q2_K, dot_q2_K)
ROWS_Q8K(rows_q4_K, dot_q4_K)
static void rows_f16(int64_t n, int64_t nrows, const uint16_t *w, size_t stride, const float *x, float *out) {
    for (int64_t r = 0; r < nrows; r++) out[r] = dot_f16(n, (const uint16_t *)((const char *)w + (size_t)r * stride), x);
}

static const ds4_quant_kernels neon = {
    .name = "neon",
    .dot_q8_0 = dot_q8_0,
    .dot_iq2_xxs = dot_iq2_xxs,
    .dot_q2_K = dot_q2_K,
    .dot_q4_K = dot_q4_K,
    .dot_f16 = dot_f16,
    .dot_f16_fast = dot_f16_fast,
    .rows_q8_0 = rows_q8_0,
    .rows_iq2_xxs = rows_iq2_xxs,
    .rows_q2_K = rows_q2_K,
    .rows_q4_K = rows_q4_K,
    .rows_f16 = rows_f16,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void init(void) { SG = ds4_iq2xxs_grid_off64(); }

const ds4_quant_kernels *ds4_kernels_neon(void) {
    pthread_once(&once, init);
    return &neon;
}

#else
const ds4_quant_kernels *ds4_kernels_neon(void) { return 0; }
#endif
