/* simd_avx512.c - AVX-512 kernels (F, BW, VL, VNNI, VBMI, BITALG, GFNI),
 * compiled per function with __attribute__((target)). Only IQ2_XXS gains from
 * 512-bit registers here; the rest of this level's table reuses the AVX2
 * kernels. The IQ2_XXS multi-row kernel, which no longer gathers, lives in
 * iq2_xxs_avx512.c; this file keeps the one-row form.
 *
 * IQ2_XXS one row, per block of 256: four 8-lane gathers fetch the 32 grid
 * entries from a 2 KiB copy of the grid whose bytes are 64 + magnitude (it
 * stays in L1; the 256 KiB signed table the AVX2 kernel uses does not).
 * Signs come from the 7-bit fields via a multishift and a 128-byte ksigns
 * lookup and are applied as 64 - magnitude under a mask. The unsigned bytes
 * multiply the signed activations directly (pair sums <= 2*107*128, inside
 * int16), the group scale 2s+1 is applied in the widening multiply-add, and
 * the offset 64 * sum(q8) is removed exactly with the block's bsums. Integer
 * block totals are reduced 16 blocks at a time; their float steps are the
 * reference's, added in block order. It keeps the activations' own layout
 * (rewriting them per row would cost what it saves), paying a byte permute
 * per register for the signs and a word permute for the scales. */
#include "quant/quant_impl.h"
#include "quant/iq2_xxs_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512bitalg,avx2,f16c")))

#define PF_DIST 2048   /* software prefetch distance for the weights, see simd_avx2.c */

static uint64_t grid64[256];       /* bytes 64 + GRID[G][j] */
static uint8_t ctrl_s[64];         /* multishift: byte k of qword g <- bits 32+7k.. (S_k of B_g) */
static uint32_t ctrl_even[16], ctrl_odd[16];   /* pairwise-reduction permutes */
/* register h of the activations = groups 2h, 2h+1, sub-groups in order */
static uint8_t ctrl_gd[2][64];     /* dword lane 4g'+k <- byte k of A_g, g = g' / 4+g' */
static uint8_t ctrl_sbd[4][64];    /* byte 32i+8k+j <- sign byte 8(2h+i)+k */
static uint8_t bitsel[64];         /* byte L <- 1 << (L % 8) */
static uint16_t ctrl_ld[4][32];    /* int16 lanes 0-15 <- l of group 2h, 16-31 <- of 2h+1 */
static uint16_t ctrl_dup[32];      /* int16 lane t < 16 <- l of group t/2 (pairs with bsum[t]) */

static void init_tables(void) {
    for (int G = 0; G < 256; G++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++) v |= (uint64_t)(64 + ((ds4_iq2xxs_grid[G] >> (8 * j)) & 255)) << (8 * j);
        grid64[G] = v;
    }
    for (int L = 0; L < 64; L++) ctrl_s[L] = (uint8_t)(32 + 7 * (L % 4));
    for (int l = 0; l < 16; l++) { ctrl_even[l] = (uint32_t)(2 * l); ctrl_odd[l] = (uint32_t)(2 * l + 1); }
    for (int half = 0; half < 2; half++)
        for (int lane = 0; lane < 16; lane++)
            for (int b = 0; b < 4; b++)
                ctrl_gd[half][4 * lane + b] = (uint8_t)(8 * (4 * half + lane / 4) + lane % 4);
    for (int L = 0; L < 64; L++) {
        bitsel[L] = (uint8_t)(1u << (L % 8));
        for (int h = 0; h < 4; h++) ctrl_sbd[h][L] = (uint8_t)(8 * (2 * h + L / 32) + (L % 32) / 8);
    }
    for (int h = 0; h < 4; h++)
        for (int t = 0; t < 32; t++) ctrl_ld[h][t] = (uint16_t)(4 * (2 * h + t / 16) + 2);
    for (int t = 0; t < 32; t++) ctrl_dup[t] = (uint16_t)(4 * ((t % 16) / 2) + 2);
}

/* Lane b of the result = sum of the 16 lanes of v[b], for b < 16. */
AVX512 static inline __m512i reduce16(__m512i *v, __m512i ce, __m512i co) {
#pragma GCC unroll 4
    for (int width = 16; width > 1; width /= 2)
#pragma GCC unroll 8
        for (int k = 0; k < width / 2; k++)
            v[k] = _mm512_add_epi32(_mm512_permutex2var_epi32(v[2 * k], ce, v[2 * k + 1]),
                                    _mm512_permutex2var_epi32(v[2 * k], co, v[2 * k + 1]));
    return v[0];
}

typedef struct {
    __m512i cg0, cg1, cs, ks_lo, ks_hi, csb[4], bits, cl[4], cdup, c128, one, zero;
} iq2d_consts;

AVX512 static inline __m512i iq2_block_direct(const iq2d_consts *c, const ds4_block_iq2_xxs *x, const ds4_block_q8_K *y) {
    const int8_t *q8 = y->qs;
    __m512i P = _mm512_loadu_si512(x->qs);
    __m512i i0 = _mm512_maskz_permutexvar_epi8(0x1111111111111111ull, c->cg0, P);
    __m512i i1 = _mm512_maskz_permutexvar_epi8(0x1111111111111111ull, c->cg1, P);
    __m512i g[4];
    g[0] = _mm512_i32gather_epi64(_mm512_castsi512_si256(i0), (const void *)grid64, 8);
    g[1] = _mm512_i32gather_epi64(_mm512_extracti64x4_epi64(i0, 1), (const void *)grid64, 8);
    g[2] = _mm512_i32gather_epi64(_mm512_castsi512_si256(i1), (const void *)grid64, 8);
    g[3] = _mm512_i32gather_epi64(_mm512_extracti64x4_epi64(i1, 1), (const void *)grid64, 8);
    __m512i sb = _mm512_permutex2var_epi8(c->ks_lo, _mm512_multishift_epi64_epi8(c->cs, P), c->ks_hi);
    __m512i ls = _mm512_or_si512(_mm512_srli_epi32(P, 27), c->one);
    __m512i bs = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)y->bsums));
    __m512i corr = _mm512_dpwssd_epi32(c->zero, bs, _mm512_slli_epi16(_mm512_permutexvar_epi16(c->cdup, ls), 6));
    __m512i a0 = c->zero, a1 = c->zero;
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++) {
        __mmask64 neg = _mm512_test_epi8_mask(_mm512_permutexvar_epi8(c->csb[h], sb), c->bits);
        __m512i w = _mm512_mask_sub_epi8(g[h], neg, c->c128, g[h]);
        __m512i p = _mm512_maddubs_epi16(w, _mm512_loadu_si512(q8 + 64 * h));
        if (h & 1) a1 = _mm512_dpwssd_epi32(a1, p, _mm512_permutexvar_epi16(c->cl[h], ls));
        else a0 = _mm512_dpwssd_epi32(a0, p, _mm512_permutexvar_epi16(c->cl[h], ls));
    }
    return _mm512_sub_epi32(_mm512_add_epi32(a0, a1), corr);
}

AVX512 static float dot_iq2_xxs(int64_t n, const void *vw, const ds4_block_q8_K *y) {
    const ds4_block_iq2_xxs *x = vw;
    iq2d_consts c;
    c.cg0 = _mm512_loadu_si512(ctrl_gd[0]);
    c.cg1 = _mm512_loadu_si512(ctrl_gd[1]);
    c.cs = _mm512_loadu_si512(ctrl_s);
    c.ks_lo = _mm512_loadu_si512(ds4_ksigns_iq2xs);
    c.ks_hi = _mm512_loadu_si512(ds4_ksigns_iq2xs + 64);
    for (int h = 0; h < 4; h++) { c.csb[h] = _mm512_loadu_si512(ctrl_sbd[h]); c.cl[h] = _mm512_loadu_si512(ctrl_ld[h]); }
    c.bits = _mm512_loadu_si512(bitsel);
    c.cdup = _mm512_loadu_si512(ctrl_dup);
    c.c128 = _mm512_set1_epi8((char)128);
    c.one = _mm512_set1_epi32(1);
    c.zero = _mm512_setzero_si512();
    const __m512i ce = _mm512_loadu_si512(ctrl_even), co = _mm512_loadu_si512(ctrl_odd);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i offx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(66));
    const __m512i offy = _mm512_mullo_epi32(lane, _mm512_set1_epi32(292));
    const int64_t nb = n / DS4_QK_K;
    float s = 0.0f;
    int64_t i = 0;
    for (; i + 16 <= nb; i += 16) {
        __m512i v[16];
#pragma GCC unroll 16
        for (int b = 0; b < 16; b++) {
            _mm_prefetch((const char *)&x[i + b] + PF_DIST, _MM_HINT_T0);
            v[b] = iq2_block_direct(&c, &x[i + b], &y[i + b]);
        }
        __m512 isum = _mm512_cvtepi32_ps(reduce16(v, ce, co));
        __m512 dx = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(offx, (const void *)&x[i], 1)));
        __m512 dy = _mm512_i32gather_ps(offy, (const void *)&y[i].d, 1);
        float pf[16];
        _mm512_storeu_ps(pf, _mm512_mul_ps(_mm512_mul_ps(dx, dy), isum));
        for (int b = 0; b < 16; b++) s += pf[b];
    }
    for (; i < nb; i++) {
        const float d = _cvtsh_ss(x[i].d) * y[i].d;
        s += d * (float)_mm512_reduce_add_epi32(iq2_block_direct(&c, &x[i], &y[i]));
    }
    return 0.125f * s;
}

static ds4_quant_kernels avx512;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    init_tables();
    ds4_iq2_xxs_avx512_init();
    avx512 = *ds4_kernels_avx2();
    avx512.name = "avx512";
    avx512.dot_iq2_xxs = dot_iq2_xxs;
    avx512.rows_iq2_xxs = ds4_iq2_xxs_rows_avx512;
}

const ds4_quant_kernels *ds4_kernels_avx512(void) {
    if (!ds4_kernels_avx2() || !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512vnni") ||
        !__builtin_cpu_supports("avx512vbmi") || !__builtin_cpu_supports("avx512bitalg") ||
        !__builtin_cpu_supports("gfni"))
        return NULL;
    pthread_once(&once, build);
    return &avx512;
}

#else
const ds4_quant_kernels *ds4_kernels_avx512(void) { return 0; }
#endif
