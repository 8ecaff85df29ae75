/* iq2_xxs_avx512.c - IQ2_XXS dot products without gathers (AVX-512
 * F/BW/VNNI/VBMI + GFNI): the multi-row kernel, and one row through it.
 *
 * Why this shape: the gather kernel it replaces spent about a third of its
 * time in the four 8-lane grid gathers per block; on this class of core each
 * costs about six port-0/5 uops besides its eight loads, so they starved the
 * vector ports (bench/RESULTS.md, matvec section). Here no grid entry is ever
 * loaded. A grid entry is 8 magnitudes from {8, 25, 43}; it is stored as two
 * bit planes (bit j of plane 0: magnitude j is 25; of plane 1: it is 43), one
 * byte each, and the 32 entries of a block are looked up with byte permutes
 * (two 128-byte vpermt2b and a blend per 64 lookups). The rest is GF(2)
 * affine transforms (vgf2p8affineqb, port 0 only, which the permutes leave
 * free):
 *  - with the planes of group g's four entries as the bit matrix of qword g
 *    and the constant bytes 1 << j as data, byte j of the result holds the
 *    two plane bits of weight j of all four sub-groups (a bit transpose);
 *  - one more affine map per sub-group turns its two bits into 64 + the
 *    magnitude (72 ^ 17 c0 ^ 35 c1 is 72, 89 or 107);
 *  - the sign fields get the same transpose; its data byte 7 is 0x7f, so the
 *    eighth sign comes out as the parity of the seven stored ones (the
 *    ksigns rule) with no table.
 * A sign is applied as 128 - (64 + m) under a byte mask, the unsigned bytes
 * multiply the activations in vpdpbusd (any code, -128 included), and the
 * offset 64 * sum(q8) is removed by starting each block's accumulator at
 * precomputed group sums. The group scale 2s+1 multiplies the group totals
 * of two blocks at once; integer block totals are reduced 16 at a time and
 * their float steps are exactly the reference's, added in block order (the
 * rows' additions interleaved, so that no row waits on its own chain).
 *
 * Activations are rewritten per chunk "sub-group major" (transpose_q8), so
 * qword g of every register is group g and every per-group quantity lines up
 * with a lane. */
#include "quant/iq2_xxs_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define KERNEL __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,gfni,avx2,f16c")))

#define PF_DIST 2048     /* software prefetch distance for the weights (see simd_avx2.c) */
#define QT_STRIDE 320    /* per block: 256 transposed activation bytes + 16 int32 offset corrections */
#define CHUNK 32         /* blocks of transposed activations on the stack (10 KiB) */
#define RG 8             /* rows whose float block sums are added in interleaved chains */

static uint8_t planes[2][256];     /* bit j: magnitude j of grid entry G is 25 (plane 0) / 43 (plane 1) */
static uint64_t mag[4];            /* affine matrices: transposed plane bits of sub-group h -> 64 + magnitude */
static uint8_t ctrl_s[64];         /* multishift: byte k of qword g <- bits 32+7k.. (sign field k of group g) */
static uint32_t ctrl_even[16], ctrl_odd[16];
static uint64_t ctrl_t1[2][8], ctrl_t2[2][8];   /* qword permutes of transpose_q8 */

void ds4_iq2_xxs_avx512_init(void) {
    for (int G = 0; G < 256; G++) {
        uint8_t p0 = 0, p1 = 0;
        for (int j = 0; j < 8; j++) {
            unsigned m = (unsigned)(ds4_iq2xxs_grid[G] >> (8 * j)) & 255;
            if (m == 25) p0 |= (uint8_t)(1u << j);
            if (m == 43) p1 |= (uint8_t)(1u << j);
        }
        planes[0][G] = p0;
        planes[1][G] = p1;
    }
    /* Result bit i of an affine byte map is parity(matrix byte 7-i & x) ^ imm
     * bit i. After the transpose, plane bits (c0, c1) of sub-group h sit at
     * bits 7-2h and 6-2h; the map adds 17 c0 ^ 35 c1 to the immediate 72. */
    for (int h = 0; h < 4; h++) {
        uint64_t m = 0;
        for (int i = 0; i < 8; i++) {
            unsigned row = (((17u >> i) & 1) << (7 - 2 * h)) | (((35u >> i) & 1) << (6 - 2 * h));
            m |= (uint64_t)row << (8 * (7 - i));
        }
        mag[h] = m;
    }
    for (int L = 0; L < 64; L++) ctrl_s[L] = (uint8_t)(32 + 7 * (L % 4));
    for (int l = 0; l < 16; l++) { ctrl_even[l] = (uint32_t)(2 * l); ctrl_odd[l] = (uint32_t)(2 * l + 1); }
    /* round 1, from block registers 2p, 2p+1 (groups 4p..4p+3): qword k =
     * sub-group 2*half + k/4 of group 4p + k%4; round 2: row h, qword g =
     * qword 4(h%2) + g%4 of the round-1 register of groups g/4 */
    for (int half = 0; half < 2; half++)
        for (int k = 0; k < 8; k++) {
            int h = 2 * half + k / 4, gl = k % 4;
            ctrl_t1[half][k] = (uint64_t)(8 * (gl / 2) + 4 * (gl % 2) + h);
        }
    for (int hm = 0; hm < 2; hm++)
        for (int g = 0; g < 8; g++) ctrl_t2[hm][g] = (uint64_t)(8 * (g / 4) + 4 * hm + g % 4);
}

/* For each block, 64-byte row h holds sub-group h of groups 0..7 (qword g =
 * q8[32g + 8h .. +7]); then 16 int32 whose lanes 2g, 2g+1 add up to -64 *
 * (sum of group g's q8). In qwords, row h takes qword 4g+h of the block:
 * two rounds of two-register qword permutes. */
KERNEL static void transpose_q8(const ds4_block_q8_K *y, int8_t *qt, int64_t nb) {
    const __m512i i1[2] = {_mm512_loadu_si512(ctrl_t1[0]), _mm512_loadu_si512(ctrl_t1[1])};
    const __m512i i2[2] = {_mm512_loadu_si512(ctrl_t2[0]), _mm512_loadu_si512(ctrl_t2[1])};
    const __m512i c64 = _mm512_set1_epi8(64);
    for (int64_t i = 0; i < nb; i++) {
        int8_t *o = qt + QT_STRIDE * i;
        __m512i R[4], V[2][2];
        for (int m = 0; m < 4; m++) R[m] = _mm512_loadu_si512(y[i].qs + 64 * m);
        for (int p = 0; p < 2; p++)
            for (int half = 0; half < 2; half++)
                V[p][half] = _mm512_permutex2var_epi64(R[2 * p], i1[half], R[2 * p + 1]);
        __m512i sum = _mm512_setzero_si512();
        for (int h = 0; h < 4; h++) {
            const __m512i O = _mm512_permutex2var_epi64(V[0][h / 2], i2[h % 2], V[1][h / 2]);
            _mm512_storeu_si512(o + 64 * h, O);
            sum = _mm512_dpbusd_epi32(sum, c64, O);
        }
        _mm512_storeu_si512(o + 256, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
    }
}

typedef struct {
    __m512i lo[4], hi[4];   /* the two plane tables, 64 entries per register */
    __m512i cs, xt, xs, mag[4], c128, ce, co, one;
} consts;

/* Blocks a and b (weights xa, xb; transposed activations qa, qb): int32
 * lane g = l_g * (group g's integer sum) of block a, lane 8+g of block b. */
KERNEL static inline __m512i pair(const consts *c, const ds4_block_iq2_xxs *xa, const ds4_block_iq2_xxs *xb,
                                  const int8_t *qa, const int8_t *qb) {
    const __m512i Pa = _mm512_loadu_si512(xa->qs), Pb = _mm512_loadu_si512(xb->qs);
    /* lane l: grid indices of groups 2l, 2l+1 of a, then of b */
    const __m512i X = _mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(Pa), _mm512_castsi512_ps(Pb), 0x88));
    const __mmask64 top = _mm512_movepi8_mask(X);
    const __m512i lo = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(c->lo[0], X, c->lo[1]),
                                              _mm512_permutex2var_epi8(c->lo[2], X, c->lo[3]));
    const __m512i hi = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(c->hi[0], X, c->hi[1]),
                                              _mm512_permutex2var_epi8(c->hi[2], X, c->hi[3]));
    /* qword g: plane 0, plane 1 of sub-groups 0..3 of group g */
    const __m512i C[2] = {_mm512_unpacklo_epi8(lo, hi), _mm512_unpackhi_epi8(lo, hi)};
    const __m512i P[2] = {Pa, Pb};
    __m512i acc[2];
#pragma GCC unroll 2
    for (int b = 0; b < 2; b++) {
        const int8_t *q = b ? qb : qa;
        const __m512i Y = _mm512_gf2p8affine_epi64_epi8(c->xt, C[b], 0);
        const __m512i T = _mm512_gf2p8affine_epi64_epi8(c->xs, _mm512_multishift_epi64_epi8(c->cs, P[b]), 0);
        __m512i a = _mm512_loadu_si512(q + 256);
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            __m512i w = _mm512_gf2p8affine_epi64_epi8(Y, c->mag[h], 72);
            const __mmask64 neg = _mm512_test_epi8_mask(T, _mm512_set1_epi8((char)(0x80 >> h)));
            w = _mm512_mask_sub_epi8(w, neg, c->c128, w);
            a = _mm512_dpbusd_epi32(a, w, _mm512_loadu_si512(q + 64 * h));
        }
        acc[b] = a;
    }
    const __m512i S = _mm512_add_epi32(_mm512_permutex2var_epi32(acc[0], c->ce, acc[1]),
                                       _mm512_permutex2var_epi32(acc[0], c->co, acc[1]));
    /* l = 2s+1 = (B >> 27) | 1, B the odd dwords */
    const __m512i L = _mm512_or_si512(_mm512_srli_epi32(_mm512_permutex2var_epi32(Pa, c->co, Pb), 27), c->one);
    return _mm512_mullo_epi32(S, L);
}

/* Lane b of the result = sum of lanes 8(b%2) .. +7 of v[b/2], for b < 16. */
KERNEL static inline __m512i reduce8(__m512i *v, __m512i ce, __m512i co) {
#pragma GCC unroll 4
    for (int width = 8; width > 1; width /= 2)
#pragma GCC unroll 8
        for (int k = 0; k < width / 2; k++)
            v[k] = _mm512_add_epi32(_mm512_permutex2var_epi32(v[2 * k], ce, v[2 * k + 1]),
                                    _mm512_permutex2var_epi32(v[2 * k], co, v[2 * k + 1]));
    return v[0];
}

/* sumf[r] continues row r's block-order accumulation over blocks [0, nb) of
 * this chunk (nb <= CHUNK; w: the rows at the chunk's first block). */
KERNEL static void chunk(int64_t nb, int64_t nrows, const uint8_t *w, size_t stride, const ds4_block_q8_K *y,
                         const int8_t *qt, float *sumf) {
    consts c;
    for (int t = 0; t < 4; t++) {
        c.lo[t] = _mm512_loadu_si512(planes[0] + 64 * t);
        c.hi[t] = _mm512_loadu_si512(planes[1] + 64 * t);
        c.mag[t] = _mm512_set1_epi64((long long)mag[t]);
    }
    c.cs = _mm512_loadu_si512(ctrl_s);
    c.xt = _mm512_set1_epi64((long long)0x8040201008040201ull);
    c.xs = _mm512_set1_epi64((long long)0x7f40201008040201ull);
    c.c128 = _mm512_set1_epi8((char)128);
    c.ce = _mm512_loadu_si512(ctrl_even);
    c.co = _mm512_loadu_si512(ctrl_odd);
    c.one = _mm512_set1_epi32(1);
    const __m512i offx = _mm512_mullo_epi32(_mm512_loadu_si512(ctrl_even), _mm512_set1_epi32(33));   /* 66 * lane */
    float dy[CHUNK], pf[RG][CHUNK];
    for (int64_t i = 0; i < nb; i++) dy[i] = y[i].d;
    for (int64_t r0 = 0; r0 < nrows; r0 += RG) {
        const int rg = nrows - r0 < RG ? (int)(nrows - r0) : RG;
        for (int rr = 0; rr < rg; rr++) {
            const ds4_block_iq2_xxs *x = (const ds4_block_iq2_xxs *)(w + (size_t)(r0 + rr) * stride);
            int64_t i = 0;
            for (; i + 16 <= nb; i += 16) {
                __m512i v[8];
#pragma GCC unroll 8
                for (int p = 0; p < 8; p++) {
                    /* 132 bytes per pair: lines at +0, +64, +128 leave no line between two prefetches */
                    const char *pf0 = (const char *)&x[i + 2 * p] + PF_DIST;
                    _mm_prefetch(pf0, _MM_HINT_T0);
                    _mm_prefetch(pf0 + 64, _MM_HINT_T0);
                    _mm_prefetch(pf0 + 128, _MM_HINT_T0);
                    v[p] = pair(&c, &x[i + 2 * p], &x[i + 2 * p + 1], qt + QT_STRIDE * (i + 2 * p),
                                qt + QT_STRIDE * (i + 2 * p + 1));
                }
                const __m512 isum = _mm512_cvtepi32_ps(reduce8(v, c.ce, c.co));
                const __m512 dx = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(offx, (const void *)&x[i], 1)));
                _mm512_storeu_ps(&pf[rr][i], _mm512_mul_ps(_mm512_mul_ps(dx, _mm512_loadu_ps(dy + i)), isum));
            }
            for (; i < nb; i += 2) {
                const int64_t j = i + 1 < nb ? i + 1 : i;   /* an odd last block is paired with itself */
                const __m512i v = pair(&c, &x[i], &x[j], qt + QT_STRIDE * i, qt + QT_STRIDE * j);
                pf[rr][i] = (_cvtsh_ss(x[i].d) * dy[i]) * (float)_mm512_mask_reduce_add_epi32(0x00ff, v);
                if (j != i) pf[rr][j] = (_cvtsh_ss(x[j].d) * dy[j]) * (float)_mm512_mask_reduce_add_epi32(0xff00, v);
            }
        }
        if (rg < RG) {
            for (int rr = 0; rr < rg; rr++) {
                float s = sumf[r0 + rr];
                for (int64_t i = 0; i < nb; i++) s += pf[rr][i];
                sumf[r0 + rr] = s;
            }
            continue;
        }
        float s[RG];
        for (int rr = 0; rr < RG; rr++) s[rr] = sumf[r0 + rr];
        for (int64_t i = 0; i < nb; i++)
#pragma GCC unroll 8
            for (int rr = 0; rr < RG; rr++) s[rr] += pf[rr][i];
        for (int rr = 0; rr < RG; rr++) sumf[r0 + rr] = s[rr];
    }
}

void ds4_iq2_xxs_rows_avx512(int64_t n, int64_t nrows, const void *w, size_t stride, const ds4_block_q8_K *y, float *out) {
    int8_t qt[CHUNK * QT_STRIDE] __attribute__((aligned(64)));
    const int64_t nb = n / DS4_QK_K;
    for (int64_t r = 0; r < nrows; r++) out[r] = 0.0f;
    for (int64_t i0 = 0; i0 < nb; i0 += CHUNK) {
        const int64_t cnb = nb - i0 < CHUNK ? nb - i0 : CHUNK;
        transpose_q8(y + i0, qt, cnb);
        chunk(cnb, nrows, (const uint8_t *)w + (size_t)i0 * sizeof(ds4_block_iq2_xxs), stride, y + i0, qt, out);
    }
    for (int64_t r = 0; r < nrows; r++) out[r] = 0.125f * out[r];
}

/* One row is the same computation. Rewriting the activations for a single
 * row costs about what the former one-row kernel (gathers, the activations'
 * own layout) paid instead: both ~27 ticks per block in cache. Keeping one
 * kernel keeps one thing to get right; the engine uses the multi-row form. */
float ds4_iq2_xxs_dot_avx512(int64_t n, const void *w, const ds4_block_q8_K *y) {
    float out;
    ds4_iq2_xxs_rows_avx512(n, 1, w, 0, y, &out);
    return out;
}

#endif
