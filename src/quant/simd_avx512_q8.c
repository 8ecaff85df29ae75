/* simd_avx512_q8.c - the exact multi-row Q8_0 kernel with AVX-512 VNNI
 * (VL forms on 256-bit registers), merged into the "avx512" table by
 * dispatch.c. Q8_0 carries most of a decode step's bytes (attention,
 * shared expert, output head), so this is the kernel that decides how close
 * the CPU decoder gets to memory bandwidth.
 *
 * Integer sums: vpdpbusd multiplies unsigned by signed bytes, so the weight
 * codes are offset to u = w + 128 (an xor with 0x80) and the offset's share,
 * 128 * (sum of 4 activation codes) per lane, is subtracted by starting the
 * accumulator at its negative. It is exact for every code pair (including
 * activation -128, which the AVX2 abs/sign trick cannot take), and the offset
 * depends only on the activation, so it is computed once per block for all
 * rows of a pass.
 *
 * Float steps: exactly the reference's. Rows are processed 8 at a time with
 * row k's accumulator in lane k: per block, (d_w * d_x) * (float)isum is
 * formed in lanes and added with one vector add, so each row sums its blocks
 * in block order (bit-identical to ds4_vec_dot_q8_0_ref) while 8 independent
 * chains run side by side.
 *
 * Also here: the Q8_0 activation quantization of the same level, the other
 * half of every Q8_0 product (bit-identical to act_quant.c's). */
#include "quant/quant_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>

#define AVX512Q8 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c")))

/* Software prefetch distance (bytes ahead in each row); see simd_avx2.c.
 * DS4_Q8_PF in the environment overrides it (bench experiments only).
 * Tried and dropped: a 16-row form in 512-bit registers (rows k and k+8 in
 * one register): slower in cache (2.64 against 2.18 ticks/block on the dev
 * machine), and on the 16-core device host decode was the same within noise
 * (bench/RESULTS.md, 2026-11-26 12:26). */
static int64_t pf_dist = 2048;

static ds4_dot_q8_0_fn one_row;   /* the level's one-row exact kernel, for leftover rows */

/* lane k = the sum of the 8 lanes of s[k]. */
AVX512Q8 static inline __m256i reduce8(const __m256i s[8]) {
    __m256i u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    __m256i u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

AVX512Q8 static void rows_q8_0(int64_t n, int64_t nrows, const void *vw, size_t stride, const ds4_act_q8_0 *x,
                               float *out) {
    const int64_t nb = n / DS4_QK8_0, rb = nb * (int64_t)sizeof(ds4_block_q8_0);
    const int64_t pfd = pf_dist;
    int64_t r = 0;
    if (nrows >= 8 && stride <= (size_t)INT32_MAX / 8) {
        const int st = (int)stride;
        const __m256i offd = _mm256_setr_epi32(0, st, 2 * st, 3 * st, 4 * st, 5 * st, 6 * st, 7 * st);
        const __m256i m80 = _mm256_set1_epi8((char)0x80);
        const __m256i zero = _mm256_setzero_si256();
        for (; r + 8 <= nrows; r += 8) {
            const char *w0 = (const char *)vw + (size_t)r * stride;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i = 0; i < nb; i++) {
                const char *b = w0 + i * (int64_t)sizeof(ds4_block_q8_0);
                /* past the row end, continue in the row this lane reads next */
                const char *pf = b + (i * 34 + pfd < rb ? pfd : pfd + 8 * (int64_t)stride - rb);
                const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
                const __m256i neg = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, m80, qx));
                __m256i s[8];
                for (int k = 0; k < 8; k++) {
                    _mm_prefetch(pf + (size_t)k * stride, _MM_HINT_T0);
                    __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b + (size_t)k * stride + 2)), m80);
                    s[k] = _mm256_dpbusd_epi32(neg, u, qx);
                }
                __m256i v = reduce8(s);
                __m256i dw32 = _mm256_i32gather_epi32((const int *)(const void *)b, offd, 1);
                __m256 dw = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(dw32));
                __m256 p = _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x[i].d)), _mm256_cvtepi32_ps(v));
                acc = _mm256_add_ps(acc, p);
            }
            _mm256_storeu_ps(out + r, acc);
        }
    }
    for (; r < nrows; r++) out[r] = one_row(n, (const char *)vw + (size_t)r * stride, x);
}

/* Activation quantization, exactly ds4_quantize_act_q8_0 (act_quant.c) per
 * block: amax by max (NaN lanes drop out, as the reference's strict > skips
 * them), the same scalar scale and inverse, v = x * id in lanes, and then
 * lrintf's x86-64 result reproduced: round to nearest even, NaN -> 0 (the
 * reference's rule), |v| >= 2^63 -> LONG_MIN, i.e. -128 after the clamp
 * (only an overflowing inverse scale makes such v), else clamp to [-128, 127]. */
AVX512Q8 static void act_q8_0(const float *x, ds4_act_q8_0 *out, int64_t n) {
    const __m512 lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f), big = _mm512_set1_ps(0x1p63f);
    for (int64_t b = 0; b < n / DS4_QK8_0; b++) {
        const float *xb = x + b * DS4_QK8_0;
        __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
        __m512 a0 = _mm512_abs_ps(x0), a1 = _mm512_abs_ps(x1);
        /* max(a, m) returns m when a is NaN */
        __m512 m = _mm512_max_ps(a1, _mm512_max_ps(a0, _mm512_setzero_ps()));
        const float amax = _mm512_reduce_max_ps(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = d;
        const __m512 idv = _mm512_set1_ps(id);
        __m128i q[2];
        for (int h = 0; h < 2; h++) {
            __m512 v = _mm512_mul_ps(h ? x1 : x0, idv);
            __m512 r = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m512 c = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
            __mmask16 ovf = _mm512_cmp_ps_mask(_mm512_abs_ps(v), big, _CMP_GE_OQ);
            __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            c = _mm512_mask_blend_ps(ovf, c, lo);
            c = _mm512_mask_blend_ps(nan, c, _mm512_setzero_ps());
            q[h] = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(c));
        }
        _mm_storeu_si128((__m128i *)(void *)out[b].qs, q[0]);
        _mm_storeu_si128((__m128i *)(void *)(out[b].qs + 16), q[1]);
    }
}

int ds4_avx512_q8_fill(ds4_quant_kernels *k) {
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512vnni"))
        return 0;
    const char *e = getenv("DS4_Q8_PF");
    if (e && atoll(e) >= 0) pf_dist = atoll(e);
    one_row = k->dot_q8_0;
    k->rows_q8_0 = rows_q8_0;
    k->act_q8_0 = act_q8_0;
    return 1;
}

#else
int ds4_avx512_q8_fill(ds4_quant_kernels *k) { (void)k; return 0; }
#endif
