/* simd_avx2.c - AVX2 (+F16C) kernels, compiled per function with
 * __attribute__((target)) so the build needs no global -m flags and the
 * binary still runs on CPUs without AVX2 (the dispatcher never calls these
 * there).
 *
 * Exactness: the integer block sums are computed with byte multiplies
 * (maddubs) whose pair sums provably fit int16, then widened; the float steps
 * (scale products, int->float, block-order accumulation) are the reference's,
 * element for element, with the per-block products formed in vector lanes
 * and added to one scalar accumulator in block order. A Q8_0 activation code
 * of -128 (only non-finite input makes one) would break the abs/sign trick,
 * so such a call is detected and recomputed by the scalar reference. */
#include "quant/quant_impl.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,f16c")))

static const uint64_t *SG;   /* IQ2_XXS signed grid + 64, set by ds4_kernels_avx2() */

AVX2 static inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

AVX2 static inline float f16(uint16_t h) { return _cvtsh_ss(h); }

/* Weights are streamed once per product; the kernels do enough arithmetic per
 * byte that the hardware prefetchers alone leave memory idle between
 * requests, so each block loop also asks for the data PF_DIST bytes ahead
 * (past the row end that is the next row, which is what comes next). */
#define PF_DIST 2048
#define PREFETCH_AHEAD(p) _mm_prefetch((const char *)(p) + PF_DIST, _MM_HINT_T0)

/* ---- Q8_0 ------------------------------------------------------------------ */

/* 8 int32 partial sums of w.qs . x.qs for one block: |w| (as unsigned, so
 * w = -128 is exact) times x carrying w's sign. Only x = -128 would break
 * the sign step; it is flagged in *bad (ds4_quantize_act_q8_0 never makes it
 * from finite input). */
AVX2 static inline __m256i q8_0_block(const ds4_block_q8_0 *w, const ds4_act_q8_0 *x, __m256i *bad) {
    __m256i qw = _mm256_loadu_si256((const __m256i *)w->qs);
    __m256i qx = _mm256_loadu_si256((const __m256i *)x->qs);
    *bad = _mm256_or_si256(*bad, _mm256_cmpeq_epi8(qx, _mm256_set1_epi8(-128)));
    __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(qw), _mm256_sign_epi8(qx, qw));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

AVX2 static float dot_q8_0(int64_t n, const void *vw, const ds4_act_q8_0 *x) {
    const ds4_block_q8_0 *w = vw;
    const int64_t nb = n / DS4_QK8_0;
    __m256i bad = _mm256_setzero_si256();
    const __m256i offw = _mm256_setr_epi32(0, 34, 68, 102, 136, 170, 204, 238);
    const __m256i offx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    const __m256i pick16 = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                            0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    float sumf = 0.0f;
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        PREFETCH_AHEAD(&w[i]); PREFETCH_AHEAD(&w[i + 4]);
        __m256i s0 = q8_0_block(&w[i + 0], &x[i + 0], &bad), s1 = q8_0_block(&w[i + 1], &x[i + 1], &bad);
        __m256i s2 = q8_0_block(&w[i + 2], &x[i + 2], &bad), s3 = q8_0_block(&w[i + 3], &x[i + 3], &bad);
        __m256i s4 = q8_0_block(&w[i + 4], &x[i + 4], &bad), s5 = q8_0_block(&w[i + 5], &x[i + 5], &bad);
        __m256i s6 = q8_0_block(&w[i + 6], &x[i + 6], &bad), s7 = q8_0_block(&w[i + 7], &x[i + 7], &bad);
        /* transpose-reduce: lane b of v = isum of block i+b */
        __m256i u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
        __m256i u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s4, s5), _mm256_hadd_epi32(s6, s7));
        __m256i v = _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
        /* the 8 F16 weight scales (stride 34 bytes) and 8 F32 activation scales (stride 36) */
        __m256i dw32 = _mm256_i32gather_epi32((const int *)&w[i], offw, 1);
        __m256i dw16 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(dw32, pick16), 0x08);
        __m256 dw = _mm256_cvtph_ps(_mm256_castsi256_si128(dw16));
        __m256 dx = _mm256_i32gather_ps(&x[i].d, offx, 4);
        __m256 p = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(v));
        float pf[8];
        _mm256_storeu_ps(pf, p);
        sumf += pf[0]; sumf += pf[1]; sumf += pf[2]; sumf += pf[3];
        sumf += pf[4]; sumf += pf[5]; sumf += pf[6]; sumf += pf[7];
    }
    for (; i < nb; i++) {
        int isum = hsum_i32(q8_0_block(&w[i], &x[i], &bad));
        sumf += (f16(w[i].d) * x[i].d) * (float)isum;
    }
    if (!_mm256_testz_si256(bad, bad)) return ds4_vec_dot_q8_0_ref(n, vw, x);
    return sumf;
}

/* lane k = the sum of the 8 lanes of s[k] (a transposing reduction). */
AVX2 static inline __m256i reduce8_i32(const __m256i s[8]) {
    __m256i u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    __m256i u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

AVX2 static int has_m128(const ds4_act_q8_0 *x, int64_t nb) {
    __m256i bad = _mm256_setzero_si256();
    for (int64_t i = 0; i < nb; i++)
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)x[i].qs), _mm256_set1_epi8(-128)));
    return !_mm256_testz_si256(bad, bad);
}

/* Exact, 8 rows per pass with row k's float chain in lane k: per block, the
 * 8 rows' integer sums are reduced into one vector, scaled as the reference
 * does, and added with one vector add, so every row still sums its blocks in
 * order while the 8 chains run side by side (the one-row kernel's serial
 * scalar adds were its bottleneck). Prefetch runs PF_DIST bytes ahead in each
 * row; near a row's end it continues where this row's lane goes next, the
 * same block of the row 8 below. */
AVX2 static void rows_q8_0(int64_t n, int64_t nrows, const void *vw, size_t stride, const ds4_act_q8_0 *x, float *out) {
    const int64_t nb = n / DS4_QK8_0, rb = nb * (int64_t)sizeof(ds4_block_q8_0);
    int64_t r = 0;
    if (nrows >= 8 && stride <= (size_t)INT32_MAX / 8 && !has_m128(x, nb)) {
        const int st = (int)stride;
        const __m256i offd = _mm256_setr_epi32(0, st, 2 * st, 3 * st, 4 * st, 5 * st, 6 * st, 7 * st);
        const __m256i pick16 = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                                0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
        const __m256i ones = _mm256_set1_epi16(1);
        for (; r + 8 <= nrows; r += 8) {
            const char *w0 = (const char *)vw + (size_t)r * stride;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i = 0; i < nb; i++) {
                const char *b = w0 + i * (int64_t)sizeof(ds4_block_q8_0);
                const char *pf = b + (i * 34 + PF_DIST < rb ? PF_DIST : PF_DIST + 8 * (int64_t)stride - rb);
                const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
                __m256i s[8];
                for (int k = 0; k < 8; k++) {
                    _mm_prefetch(pf + (size_t)k * stride, _MM_HINT_T0);
                    __m256i qw = _mm256_loadu_si256((const __m256i *)(b + (size_t)k * stride + 2));
                    s[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(qw), _mm256_sign_epi8(qx, qw)), ones);
                }
                __m256i v = reduce8_i32(s);
                __m256i dw32 = _mm256_i32gather_epi32((const int *)(const void *)b, offd, 1);
                __m256i dw16 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(dw32, pick16), 0x08);
                __m256 dw = _mm256_cvtph_ps(_mm256_castsi256_si128(dw16));
                __m256 p = _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x[i].d)), _mm256_cvtepi32_ps(v));
                acc = _mm256_add_ps(acc, p);
            }
            _mm256_storeu_ps(out + r, acc);
        }
    }
    for (; r < nrows; r++) out[r] = dot_q8_0(n, (const char *)vw + (size_t)r * stride, x);
}

/* Fast (reassociated): dot_q8_0 with the 8 block products of a step added
 * into 8 lane accumulators, summed at the end. */
AVX2 static float dot_q8_0_fast(int64_t n, const void *vw, const ds4_act_q8_0 *x) {
    const ds4_block_q8_0 *w = vw;
    const int64_t nb = n / DS4_QK8_0;
    __m256i bad = _mm256_setzero_si256();
    const __m256i offw = _mm256_setr_epi32(0, 34, 68, 102, 136, 170, 204, 238);
    const __m256i offx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    const __m256i pick16 = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                            0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        PREFETCH_AHEAD(&w[i]); PREFETCH_AHEAD(&w[i + 4]);
        __m256i s[8];
        for (int k = 0; k < 8; k++) s[k] = q8_0_block(&w[i + k], &x[i + k], &bad);
        __m256i v = reduce8_i32(s);
        __m256i dw32 = _mm256_i32gather_epi32((const int *)&w[i], offw, 1);
        __m256i dw16 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(dw32, pick16), 0x08);
        __m256 dw = _mm256_cvtph_ps(_mm256_castsi256_si128(dw16));
        __m256 dx = _mm256_i32gather_ps(&x[i].d, offx, 4);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(v)));
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float sumf = _mm_cvtss_f32(h);
    for (; i < nb; i++) {
        int isum = hsum_i32(q8_0_block(&w[i], &x[i], &bad));
        sumf += (f16(w[i].d) * x[i].d) * (float)isum;
    }
    if (!_mm256_testz_si256(bad, bad)) return ds4_vec_dot_q8_0_ref(n, vw, x);
    return sumf;
}

static void rows_q8_0_fast(int64_t n, int64_t nrows, const void *w, size_t stride, const ds4_act_q8_0 *x, float *out) {
    for (int64_t r = 0; r < nrows; r++) out[r] = dot_q8_0_fast(n, (const char *)w + (size_t)r * stride, x);
}

/* ---- IQ2_XXS --------------------------------------------------------------- */

/* Gather-index vectors for the 4 groups held in one 32-byte half of a block's
 * payload (A0 B0 A1 B1 | A2 B2 A3 B3): lanes = (G << 7 | S) for sub-groups
 * k = 0..3 of groups {0,2} (ia) and {1,3} (ib) of this half. */
AVX2 static inline void iq2_indices(__m256i P, __m256i *ia, __m256i *ib) {
    const __m256i gA = _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1,
                                        0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1);
    const __m256i gB = _mm256_setr_epi8(8, -1, -1, -1, 9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1,
                                        8, -1, -1, -1, 9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1);
    const __m256i bA = _mm256_setr_epi8(4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7,
                                        4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
    const __m256i bB = _mm256_setr_epi8(12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15,
                                        12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15);
    const __m256i sh = _mm256_setr_epi32(0, 7, 14, 21, 0, 7, 14, 21);
    const __m256i m7 = _mm256_set1_epi32(127);
    *ia = _mm256_or_si256(_mm256_slli_epi32(_mm256_shuffle_epi8(P, gA), 7),
                          _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(P, bA), sh), m7));
    *ib = _mm256_or_si256(_mm256_slli_epi32(_mm256_shuffle_epi8(P, gB), 7),
                          _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(P, bB), sh), m7));
}

/* One group of 32: (2s+1) * (64 + signed grid) . q8, as 8 int32 lanes. The
 * u8 x s8 pair sums are at most 2*107*128, inside int16. */
AVX2 static inline __m256i iq2_group(__m128i idx, const int8_t *q8, __m256i ls) {
    __m256i g = _mm256_i32gather_epi64((const long long *)SG, idx, 8);
    __m256i p = _mm256_maddubs_epi16(g, _mm256_loadu_si256((const __m256i *)q8));
    return _mm256_madd_epi16(p, ls);
}

AVX2 static float dot_iq2_xxs(int64_t n, const void *vw, const ds4_block_q8_K *y) {
    const ds4_block_iq2_xxs *x = vw;
    const __m256i dupA = _mm256_setr_epi8(4, 5, 4, 5, 12, 13, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                          4, 5, 4, 5, 12, 13, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i dupB = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, 4, 5, 4, 5, 12, 13, 12, 13,
                                          -1, -1, -1, -1, -1, -1, -1, -1, 4, 5, 4, 5, 12, 13, 12, 13);
    const __m256i one = _mm256_set1_epi32(1);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK_K; i++) {
        PREFETCH_AHEAD(&x[i]);
        const uint8_t *p = (const uint8_t *)x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i P0 = _mm256_loadu_si256((const __m256i *)p), P1 = _mm256_loadu_si256((const __m256i *)(p + 32));
        /* group scales l = 2s+1 = (B >> 27) | 1; D = int16 lanes (l0 l0 l1 l1 ... l7 l7),
         * so dword g of D is l_g in both halves (a madd multiplier for group g) */
        __m256i Q0 = _mm256_or_si256(_mm256_srli_epi32(P0, 27), one), Q1 = _mm256_or_si256(_mm256_srli_epi32(P1, 27), one);
        __m256i D = _mm256_permute4x64_epi64(_mm256_or_si256(_mm256_shuffle_epi8(Q0, dupA), _mm256_shuffle_epi8(Q1, dupB)), 0xD8);
        /* the +64 offset contributes 64 * sum_g l_g * (bsum[2g] + bsum[2g+1]) */
        __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[i].bsums), _mm256_slli_epi16(D, 6));
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ia, ib;
            iq2_indices(h ? P1 : P0, &ia, &ib);
            int g = 4 * h;
            const int8_t *q = q8 + 128 * h;
            acc = _mm256_add_epi32(acc, iq2_group(_mm256_castsi256_si128(ia), q, _mm256_permutevar8x32_epi32(D, _mm256_set1_epi32(g))));
            acc = _mm256_add_epi32(acc, iq2_group(_mm256_castsi256_si128(ib), q + 32, _mm256_permutevar8x32_epi32(D, _mm256_set1_epi32(g + 1))));
            acc = _mm256_add_epi32(acc, iq2_group(_mm256_extracti128_si256(ia, 1), q + 64, _mm256_permutevar8x32_epi32(D, _mm256_set1_epi32(g + 2))));
            acc = _mm256_add_epi32(acc, iq2_group(_mm256_extracti128_si256(ib, 1), q + 96, _mm256_permutevar8x32_epi32(D, _mm256_set1_epi32(g + 3))));
        }
        const float d = f16(x[i].d) * y[i].d;
        sumf += d * (float)hsum_i32(_mm256_sub_epi32(acc, corr));
    }
    return 0.125f * sumf;
}

/* ---- Q2_K ------------------------------------------------------------------ */

/* pshufb controls: for step t = 4h + j (32 weights, sub-blocks s = 2t, 2t+1),
 * int16 lanes 0-7 <- scale byte s, lanes 8-15 <- scale byte s+1 */
static uint8_t q2_pick[8][32] __attribute__((aligned(32)));

static void init_q2_pick(void) {
    for (int t = 0; t < 8; t++)
        for (int b = 0; b < 32; b++) q2_pick[t][b] = b % 2 ? 0x80 : (uint8_t)(2 * t + b / 16);
}

AVX2 static float dot_q2_K(int64_t n, const void *vw, const ds4_block_q8_K *y) {
    const ds4_block_q2_K *x = vw;
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(15);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK_K; i++) {
        PREFETCH_AHEAD(&x[i]);
        __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        __m128i mins8 = _mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(15));
        __m256i mins = _mm256_cvtepu8_epi16(mins8);
        __m256i ms = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)y[i].bsums));
        __m256i scales = _mm256_broadcastsi128_si256(_mm_and_si128(sc8, _mm256_castsi256_si128(m4)));
        __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i pick = _mm256_load_si256((const __m256i *)q2_pick[4 * h + j]);
                __m256i c = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                __m256i q = _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * j));
                __m256i p = _mm256_maddubs_epi16(c, q);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, pick)));
            }
        }
        /* both integer totals from one reduction: hadd pairs acc with ms */
        __m256i u = _mm256_hadd_epi32(acc, ms);
        u = _mm256_hadd_epi32(u, u);
        __m128i v = _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
        int isum = _mm_cvtsi128_si32(v), summs = _mm_extract_epi32(v, 1);
        const float dall = y[i].d * f16(x[i].d);
        const float dmin = y[i].d * f16(x[i].dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

/* ---- Q4_K ------------------------------------------------------------------ */

AVX2 static float dot_q4_K(int64_t n, const void *vw, const ds4_block_q8_K *y) {
    const ds4_block_q4_K *x = vw;
    const __m256i m4 = _mm256_set1_epi8(15);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / DS4_QK_K; i++) {
        PREFETCH_AHEAD(&x[i]);
        int sc[8], m[8], summs = 0;
        for (int j = 0; j < 8; j++) {
            ds4_q4_K_scale_min(x[i].scales, j, &sc[j], &m[j]);
            summs += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c)));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c + 32)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, _mm256_set1_epi16((short)sc[2 * c])));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, _mm256_set1_epi16((short)sc[2 * c + 1])));
        }
        const float dall = y[i].d * f16(x[i].d);
        const float dmin = y[i].d * f16(x[i].dmin);
        sumf += dall * (float)hsum_i32(acc) - dmin * (float)summs;
    }
    return sumf;
}

#define ROWS_Q8K(name, fn) \
    static void name(int64_t n, int64_t nrows, const void *w, size_t stride, const ds4_block_q8_K *y, float *out) { \
        for (int64_t r = 0; r < nrows; r++) out[r] = fn(n, (const char *)w + (size_t)r * stride, y); \
    }
ROWS_Q8K(rows_iq2_xxs, dot_iq2_xxs)
ROWS_Q8K(rows_q2_K, dot_q2_K)
ROWS_Q8K(rows_q4_K, dot_q4_K)

/* ---- F16 . F32 ------------------------------------------------------------- */

/* Exact: products in lanes (identical to the scalar products), sum in index order. */
AVX2 static float dot_f16(int64_t n, const uint16_t *w, const float *x) {
    float sumf = 0.0f;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 p = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i));
        float pf[8];
        _mm256_storeu_ps(pf, p);
        sumf += pf[0]; sumf += pf[1]; sumf += pf[2]; sumf += pf[3];
        sumf += pf[4]; sumf += pf[5]; sumf += pf[6]; sumf += pf[7];
    }
    for (; i < n; i++) sumf += f16(w[i]) * x[i];
    return sumf;
}

/* 8 rows at a time, row r's chain in lane r: the 8x8 block of products is
 * transposed so that each vector add advances every row by one index. */
AVX2 static void rows_f16(int64_t n, int64_t nrows, const uint16_t *w, size_t stride, const float *x, float *out) {
    int64_t r = 0;
    for (; r + 8 <= nrows; r += 8) {
        const uint16_t *wr[8];
        for (int k = 0; k < 8; k++) wr[k] = (const uint16_t *)((const char *)w + (size_t)(r + k) * stride);
        __m256 acc = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i), p[8];
            for (int k = 0; k < 8; k++) p[k] = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wr[k] + i))), xv);
            __m256 t0 = _mm256_unpacklo_ps(p[0], p[1]), t1 = _mm256_unpackhi_ps(p[0], p[1]);
            __m256 t2 = _mm256_unpacklo_ps(p[2], p[3]), t3 = _mm256_unpackhi_ps(p[2], p[3]);
            __m256 t4 = _mm256_unpacklo_ps(p[4], p[5]), t5 = _mm256_unpackhi_ps(p[4], p[5]);
            __m256 t6 = _mm256_unpacklo_ps(p[6], p[7]), t7 = _mm256_unpackhi_ps(p[6], p[7]);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u0, u4, 0x20));
            acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u1, u5, 0x20));
            acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u2, u6, 0x20));
            acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u3, u7, 0x20));
            acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u0, u4, 0x31));
            acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u1, u5, 0x31));
            acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u2, u6, 0x31));
            acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        float s[8];
        _mm256_storeu_ps(s, acc);
        for (int k = 0; k < 8; k++) {
            for (int64_t j = i; j < n; j++) s[k] += f16(wr[k][j]) * x[j];
            out[r + k] = s[k];
        }
    }
    for (; r < nrows; r++) out[r] = dot_f16(n, (const uint16_t *)((const char *)w + (size_t)r * stride), x);
}

/* Fast: 32 lane accumulators, combined at the end (reassociated). */
AVX2 static float dot_f16_fast(int64_t n, const uint16_t *w, const float *x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))), _mm256_loadu_ps(x + i + 8)));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 16))), _mm256_loadu_ps(x + i + 16)));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 24))), _mm256_loadu_ps(x + i + 24)));
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i)));
    __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float sumf = _mm_cvtss_f32(s);
    for (; i < n; i++) sumf += f16(w[i]) * x[i];
    return sumf;
}

static const ds4_quant_kernels avx2 = {
    .name = "avx2",
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
    .dot_q8_0_fast = dot_q8_0_fast,
    .rows_q8_0_fast = rows_q8_0_fast,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
    init_q2_pick();
    SG = ds4_iq2xxs_grid_off64();
}

/* F16C through CPUID (leaf 1, ECX bit 29): clang 14's __builtin_cpu_supports
 * does not know "f16c", and the fuzz build compiles this file with clang. */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

const ds4_quant_kernels *ds4_kernels_avx2(void) {
    if (!__builtin_cpu_supports("avx2") || !has_f16c()) return NULL;
    pthread_once(&once, init);
    return &avx2;
}

#else
const ds4_quant_kernels *ds4_kernels_avx2(void) { return 0; }
#endif
