/* attention.c - the sequential heart of an attention sub-layer on the CPU:
 * per token, in position order, the raw-window append, both compressor state
 * machines (§4.6.4), the lightning indexer's selection (§4.6.5) and the sink
 * attention over the visible rows (§4.6.6). Projections that depend only on
 * the token's own input (compressor kv/gate, indexer query and weights) are
 * batched by the caller; everything that reads the caches happens here, one
 * token after the other, so token p sees exactly the rows written up to p. */
#include "engine/cpu/attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Writes one compressor step into SV/SK; on emission pools into P (w values)
 * and returns 1. */
static int compressor_step(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, uint32_t r,
                           uint32_t w, int64_t p, float *P) {
    const uint32_t L = r == 4 ? 2 : 1, Wc = L * w;
    const uint32_t s = (uint32_t)(p % r), rho = r == 4 ? 4 + s : s;
    float *sv = SV + (size_t)rho * Wc, *sk = SK + (size_t)rho * Wc;
    const uint16_t *ap = ape + (size_t)s * Wc;
    for (uint32_t j = 0; j < Wc; j++) {
        sv[j] = v[j];
        sk[j] = g[j] + ds4_f16_to_f32(ap[j]);
    }
    if ((p + 1) % r != 0) return 0;
    for (uint32_t j = 0; j < w; j++) {
        float m = -INFINITY;
        if (r == 4) {
            for (uint32_t t = 0; t < 4; t++) {
                const float a = SK[(size_t)t * Wc + j], b = SK[(size_t)(4 + t) * Wc + w + j];
                if (a > m) m = a;
                if (b > m) m = b;
            }
        } else {
            for (uint32_t t = 0; t < r; t++) {
                const float a = SK[(size_t)t * Wc + j];
                if (a > m) m = a;
            }
        }
        if (m <= -0.5e30f) { P[j] = 0.0f; continue; }
        float denom = 0.0f, sum = 0.0f;
        if (r == 4) {
            for (uint32_t t = 0; t < 4; t++) {
                const float wp = expf(SK[(size_t)t * Wc + j] - m);
                const float wc = expf(SK[(size_t)(4 + t) * Wc + w + j] - m);
                denom += wp + wc;
                sum += wp * SV[(size_t)t * Wc + j];
                sum += wc * SV[(size_t)(4 + t) * Wc + w + j];
            }
        } else {
            for (uint32_t t = 0; t < r; t++) {
                const float wt = expf(SK[(size_t)t * Wc + j] - m);
                denom += wt;
                sum += wt * SV[(size_t)t * Wc + j];
            }
        }
        P[j] = sum / denom;
    }
    if (r == 4) {
        memcpy(SV, SV + (size_t)4 * Wc, sizeof(float) * 4 * Wc);
        memcpy(SK, SK + (size_t)4 * Wc, sizeof(float) * 4 * Wc);
    }
    return 1;
}

/* Normalise, rotate at the window's first position, simulate FP8 (attention)
 * or Hadamard+FP4 (indexer), round to F16, append. */
static void finish_row(const ds4_attn_args *a, const float *P, const float *norm_w, uint32_t w, int64_t first_pos,
                       int indexer, float *dst) {
    float tmp[1024 + 128];
    float *N = w <= sizeof tmp / sizeof tmp[0] ? tmp : malloc(sizeof(float) * w);
    ds4_rmsnorm(P, norm_w, N, (int)w, a->cfg->rms_eps);
    float c[512], s[512];
    ds4_rope_cs(a->rope, first_pos, c, s);
    ds4_rope_apply(N, 1, (int)w, (int)a->cfg->n_rot, c, s, 0);
    if (indexer) ds4_iqat(N);
    else ds4_fp8_kv(N, (int)(w - a->cfg->n_rot));
    for (uint32_t j = 0; j < w; j++) dst[j] = ds4_f16r(N[j]);
    if (N != tmp) free(N);
}

typedef struct score_ix {
    float score;
    uint32_t ix;
} score_ix;

static int by_score_desc(const void *x, const void *y) {
    const score_ix *a = x, *b = y;
    if (a->score > b->score) return -1;
    if (a->score < b->score) return 1;
    return a->ix < b->ix ? -1 : (a->ix > b->ix);
}

static int by_ix(const void *x, const void *y) {
    const uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : (a > b);
}

/* Indexer: select top_k compressed rows for this token (§4.6.5). */
static uint32_t indexer_select(const ds4_attn_args *a, const float *qI, const float *wI, uint32_t n_comp,
                               uint32_t *sel, score_ix *buf) {
    const uint32_t IH = a->cfg->idx_head, ID = a->cfg->idx_head_dim;
    for (uint32_t c = 0; c < n_comp; c++) {
        const float *K = a->kv->idx + (size_t)c * ID;
        float score = 0.0f;
        uint32_t h = 0;
        /* Four heads' dot products interleaved: independent chains, each
         * still summed in index order. */
        for (; h + 4 <= IH; h += 4) {
            const float *q0 = qI + (size_t)h * ID, *q1 = q0 + ID, *q2 = q1 + ID, *q3 = q2 + ID;
            float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
            for (uint32_t i = 0; i < ID; i++) {
                d0 += K[i] * q0[i];
                d1 += K[i] * q1[i];
                d2 += K[i] * q2[i];
                d3 += K[i] * q3[i];
            }
            score += (d0 > 0.0f ? d0 : 0.0f) * wI[h];
            score += (d1 > 0.0f ? d1 : 0.0f) * wI[h + 1];
            score += (d2 > 0.0f ? d2 : 0.0f) * wI[h + 2];
            score += (d3 > 0.0f ? d3 : 0.0f) * wI[h + 3];
        }
        for (; h < IH; h++) {
            const float *q = qI + (size_t)h * ID;
            float d = 0.0f;
            for (uint32_t i = 0; i < ID; i++) d += K[i] * q[i];
            score += (d > 0.0f ? d : 0.0f) * wI[h];
        }
        buf[c].score = score;
        buf[c].ix = c;
    }
    qsort(buf, n_comp, sizeof *buf, by_score_desc);
    const uint32_t k = a->cfg->idx_top_k;
    for (uint32_t i = 0; i < k; i++) sel[i] = buf[i].ix;
    qsort(sel, k, sizeof *sel, by_ix);
    return k;
}

typedef struct head_ctx {
    const ds4_attn_args *a;
    const float *q;       /* this token's H × D query */
    float *o;             /* this token's H × D output */
    int64_t p;
    uint32_t n_raw;       /* visible raw rows */
    const uint32_t *sel;  /* visible compressed rows, or NULL = all n_comp */
    uint32_t n_sel;
    float *scores;        /* per worker scratch, allocated inside */
} head_ctx;

/* Scores of 8 cache rows against q: out[k] = (sum over i in order of
 * q[i]·row_k[i]) · scale, the same float chain per row as the scalar loop
 * below; the 8 chains run in vector lanes (an 8×8 transpose per 8 columns),
 * which is what lets a decode step's attention keep up with the weights. */
#if defined(__x86_64__)
#define ATT_AVX2 __attribute__((target("avx2")))
ATT_AVX2 static void scores8_avx2(const float *q, const float *const *rows, uint32_t D, float scale, float *out) {
    __m256 acc = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 8 <= D; i += 8) {
        __m256 r0 = _mm256_loadu_ps(rows[0] + i), r1 = _mm256_loadu_ps(rows[1] + i);
        __m256 r2 = _mm256_loadu_ps(rows[2] + i), r3 = _mm256_loadu_ps(rows[3] + i);
        __m256 r4 = _mm256_loadu_ps(rows[4] + i), r5 = _mm256_loadu_ps(rows[5] + i);
        __m256 r6 = _mm256_loadu_ps(rows[6] + i), r7 = _mm256_loadu_ps(rows[7] + i);
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        /* column j (lane k = row k's element i + j) */
        __m256 c[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                       _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                       _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                       _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
        for (int j = 0; j < 8; j++) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(q[i + j]), c[j]));
    }
    float d[8];
    _mm256_storeu_ps(d, acc);
    for (int k = 0; k < 8; k++) {
        for (uint32_t e = i; e < D; e++) d[k] += q[e] * rows[k][e];
        out[k] = d[k] * scale;
    }
}
/* o[i] = o[i] + w·row[i]: element-wise, so vector lanes change nothing
 * (the compiler leaves this scalar: it cannot rule out o aliasing row). */
ATT_AVX2 static void axpy_avx2(float *o, float w, const float *row, uint32_t D) {
    const __m256 wv = _mm256_set1_ps(w);
    uint32_t i = 0;
    for (; i + 8 <= D; i += 8)
        _mm256_storeu_ps(o + i, _mm256_add_ps(_mm256_loadu_ps(o + i), _mm256_mul_ps(wv, _mm256_loadu_ps(row + i))));
    for (; i < D; i++) o[i] += w * row[i];
}
static int have_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
static void axpy_avx2(float *o, float w, const float *row, uint32_t D) { (void)o; (void)w; (void)row; (void)D; }
static void scores8_avx2(const float *q, const float *const *rows, uint32_t D, float scale, float *out) {
    (void)q; (void)rows; (void)D; (void)scale; (void)out;
}
static int have_avx2(void) { return 0; }
#endif

static void heads_range(void *vctx, int64_t h0, int64_t h1) {
    const head_ctx *hc = vctx;
    const ds4_attn_args *a = hc->a;
    const uint32_t D = a->cfg->head_dim;
    const float scale = 1.0f / sqrtf((float)D);
    const uint32_t nvis = hc->n_raw + hc->n_sel;
    const int simd = have_avx2();
    float rc[512], rs[512];
    float *sc = malloc(sizeof(float) * (nvis ? nvis : 1));
    const float **rows = malloc(sizeof(float *) * (nvis ? nvis : 1));
    uint32_t k = 0;
    for (uint32_t i = 0; i < hc->n_raw; i++) {
        const int64_t pos = hc->p - hc->n_raw + 1 + i;
        rows[k++] = a->kv->raw + (size_t)(pos % a->raw_cap) * D;
    }
    for (uint32_t i = 0; i < hc->n_sel; i++)
        rows[k++] = a->kv->comp + (size_t)(hc->sel ? hc->sel[i] : i) * D;
    for (int64_t h = h0; h < h1; h++) {
        const float *q = hc->q + (size_t)h * D;
        const float sink = a->sinks[h];
        float M = sink;
        uint32_t t = 0;
        if (simd)
            for (; t + 8 <= nvis; t += 8) scores8_avx2(q, rows + t, D, scale, sc + t);
        for (; t + 4 <= nvis; t += 4) { /* four rows' chains interleaved */
            const float *k0 = rows[t], *k1 = rows[t + 1], *k2 = rows[t + 2], *k3 = rows[t + 3];
            float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
            for (uint32_t i = 0; i < D; i++) {
                d0 += q[i] * k0[i];
                d1 += q[i] * k1[i];
                d2 += q[i] * k2[i];
                d3 += q[i] * k3[i];
            }
            sc[t] = d0 * scale; sc[t + 1] = d1 * scale; sc[t + 2] = d2 * scale; sc[t + 3] = d3 * scale;
        }
        for (; t < nvis; t++) {
            float d = 0.0f;
            for (uint32_t i = 0; i < D; i++) d += q[i] * rows[t][i];
            sc[t] = d * scale;
        }
        for (t = 0; t < nvis; t++)
            if (sc[t] > M) M = sc[t];
        float *o = hc->o + (size_t)h * D;
        for (uint32_t i = 0; i < D; i++) o[i] = 0.0f;
        float den = expf(sink - M);
        for (uint32_t t = 0; t < nvis; t++) {
            const float wt = expf(sc[t] - M);
            den += wt;
            if (simd) axpy_avx2(o, wt, rows[t], D);
            else
                for (uint32_t i = 0; i < D; i++) o[i] += wt * rows[t][i];
        }
        const float inv = 1.0f / den;
        for (uint32_t i = 0; i < D; i++) o[i] *= inv;
        /* the output's inverse RoPE (§4.6.6), per head, here rather than in
         * a serial pass over all heads afterwards */
        if (h == h0) ds4_rope_cs(a->rope, hc->p, rc, rs);
        ds4_rope_apply(o, 1, (int)D, a->rope->n_rot, rc, rs, 1);
    }
    free(sc);
    free(rows);
}

void ds4_cpu_attention(const ds4_attn_args *a) {
    const ds4_config *cfg = a->cfg;
    const uint32_t D = cfg->head_dim, H = cfg->n_head, r = a->ratio;
    const uint32_t ID = cfg->idx_head_dim, IH = cfg->idx_head;
    ds4_layer_kv *kv = a->kv;
    float P[1024];
    float *Pbig = D > 1024 ? malloc(sizeof(float) * D) : P;
    uint32_t *sel = NULL;
    score_ix *sbuf = NULL;
    if (r == 4) {
        sel = malloc(sizeof *sel * (cfg->idx_top_k + 1));
        sbuf = malloc(sizeof *sbuf * (a->comp_cap + 1));
    }
    for (int t = 0; t < a->n; t++) {
        const int64_t p = a->pos0 + t;
        float *raw = kv->raw + (size_t)(p % a->raw_cap) * D;
        const float *kvt = a->kvrow + (size_t)t * D;
        for (uint32_t i = 0; i < D; i++) raw[i] = ds4_f16r(kvt[i]);
        if (r) {
            const uint32_t Wc = ds4_cmp_lanes(r) * D;
            if (compressor_step(kv->cmp_sv, kv->cmp_sk, a->cmp_kv + (size_t)t * Wc, a->cmp_gate + (size_t)t * Wc,
                                a->cmp_ape, r, D, p, Pbig))
                finish_row(a, Pbig, a->cmp_norm, D, p + 1 - r, 0, kv->comp + (size_t)kv->n_comp++ * D);
        }
        if (r == 4) {
            float Pi[128];
            if (compressor_step(kv->icmp_sv, kv->icmp_sk, a->icmp_kv + (size_t)t * 2 * ID,
                                a->icmp_gate + (size_t)t * 2 * ID, a->icmp_ape, 4, ID, p, Pi))
                finish_row(a, Pi, a->icmp_norm, ID, p + 1 - 4, 1, kv->idx + (size_t)kv->n_idx++ * ID);
        }
        head_ctx hc = {.a = a, .q = a->q + (size_t)t * H * D, .o = a->o + (size_t)t * H * D, .p = p};
        hc.n_raw = (uint32_t)(p + 1 < (int64_t)cfg->swa ? p + 1 : cfg->swa);
        hc.n_sel = r ? kv->n_comp : 0;
        if (r == 4 && kv->n_comp > cfg->idx_top_k) {
            hc.n_sel = indexer_select(a, a->qI + (size_t)t * IH * ID, a->wI + (size_t)t * IH, kv->n_comp, sel, sbuf);
            hc.sel = sel;
        }
        const int64_t per_head = (int64_t)(hc.n_raw + hc.n_sel) * D * 2;
        ds4_pool_for(a->pool, H, 262144 / (per_head + 1) + 1, heads_range, &hc);
    }
    if (Pbig != P) free(Pbig);
    free(sel);
    free(sbuf);
}
