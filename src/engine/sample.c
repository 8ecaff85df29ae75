/* sample.c - the sampler and log-probabilities of spec/model.md §7: the
 * reference's xorshift64* generator, greedy / min_p / top_p / top_k paths, and
 * log-softmax in double. Non-finite logits are never picked. */
#include <math.h>
#include <stdlib.h>

#include "engine/engine.h"

static float rng_uniform(uint64_t *x) {
    if (*x == 0) *x = 0x9E3779B97F4A7C15ull;
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    const uint64_t out = *x * 0x2545F4914F6CDD1Dull;
    return (float)((out >> 40) & 0xFFFFFF) / 16777216.0f;
}

void ds4_sampler_default(ds4_sampler *sp, uint64_t seed) {
    sp->temperature = 1.0f;
    sp->top_k = 0;
    sp->top_p = 1.0f;
    sp->min_p = 0.05f;
    sp->rng = seed;
}

/* The first largest finite logit (NaN and ±inf are never picked; 0 when
 * nothing is finite). On every greedy decode step the host reads the whole
 * vocabulary (129k floats, fresh from the GPU, so from DRAM): a one-chain
 * scan took ~95 us per token on the H100 host, 5% of a decoded token. So two
 * passes: the largest finite value with independent lanes (SSE2 on x86-64),
 * then the first index holding a value equal to it (-0 == +0 as in the
 * one-chain scan, which keeps the first of equal values). */
#if defined(__SSE2__)
#include <emmintrin.h>
static float max_finite(const float *l, int n, int *done) {
    const __m128 inf = _mm_set1_ps(INFINITY);
    __m128 m0 = _mm_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128 v0 = _mm_loadu_ps(l + i), v1 = _mm_loadu_ps(l + i + 4);
        const __m128 v2 = _mm_loadu_ps(l + i + 8), v3 = _mm_loadu_ps(l + i + 12);
        /* take v where v > m and v < inf (both false for NaN) */
        const __m128 k0 = _mm_and_ps(_mm_cmpgt_ps(v0, m0), _mm_cmplt_ps(v0, inf));
        const __m128 k1 = _mm_and_ps(_mm_cmpgt_ps(v1, m1), _mm_cmplt_ps(v1, inf));
        const __m128 k2 = _mm_and_ps(_mm_cmpgt_ps(v2, m2), _mm_cmplt_ps(v2, inf));
        const __m128 k3 = _mm_and_ps(_mm_cmpgt_ps(v3, m3), _mm_cmplt_ps(v3, inf));
        m0 = _mm_or_ps(_mm_and_ps(k0, v0), _mm_andnot_ps(k0, m0));
        m1 = _mm_or_ps(_mm_and_ps(k1, v1), _mm_andnot_ps(k1, m1));
        m2 = _mm_or_ps(_mm_and_ps(k2, v2), _mm_andnot_ps(k2, m2));
        m3 = _mm_or_ps(_mm_and_ps(k3, v3), _mm_andnot_ps(k3, m3));
    }
    float lanes[16];
    _mm_storeu_ps(lanes, m0);
    _mm_storeu_ps(lanes + 4, m1);
    _mm_storeu_ps(lanes + 8, m2);
    _mm_storeu_ps(lanes + 12, m3);
    float m = -INFINITY;
    for (int k = 0; k < 16; k++)
        if (lanes[k] > m) m = lanes[k];
    *done = i;
    return m;
}
/* The first index in [0, n) whose value equals m (finite), or -1. */
static int first_equal(const float *l, int n, float m) {
    const __m128 mv = _mm_set1_ps(m);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const int b0 = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(l + i), mv));
        const int b1 = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(l + i + 4), mv));
        const int b2 = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(l + i + 8), mv));
        const int b3 = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(l + i + 12), mv));
        const int bits = b0 | b1 << 4 | b2 << 8 | b3 << 12;
        if (bits) return i + __builtin_ctz((unsigned)bits);
    }
    for (; i < n; i++)
        if (l[i] == m) return i;
    return -1;
}
#else
static float max_finite(const float *l, int n, int *done) {
    float m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            if (l[i + k] > m[k] && l[i + k] < INFINITY) m[k] = l[i + k];
    *done = i;
    for (int k = 1; k < 4; k++)
        if (m[k] > m[0]) m[0] = m[k];
    return m[0];
}
static int first_equal(const float *l, int n, float m) {
    for (int i = 0; i < n; i++)
        if (l[i] == m) return i;
    return -1;
}
#endif

int ds4_argmax(const float *l, int n) {
    int i;
    float m = max_finite(l, n, &i);
    for (; i < n; i++)
        if (l[i] > m && l[i] < INFINITY) m = l[i];
    if (m == -INFINITY) return 0; /* nothing finite */
    i = first_equal(l, n, m);
    return i < 0 ? 0 : i;
}

typedef struct cand {
    float logit, p;
    int id;
} cand;

static int by_logit_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return x->id - y->id;
}

int ds4_sample(ds4_sampler *sp, const float *l, int n) {
    float T = sp->temperature, top_p = sp->top_p, min_p = sp->min_p;
    int top_k = sp->top_k;
    if (!(T > 0.0f)) return ds4_argmax(l, n);
    if (!(top_p > 0.0f && top_p <= 1.0f)) top_p = 1.0f;
    if (!(min_p >= 0.0f)) min_p = 0.0f;
    if (top_k > 1024) top_k = 1024;
    const int best = ds4_argmax(l, n);
    const float M = l[best];
    if (top_k <= 0 && top_p >= 1.0f) {
        float S = 0.0f;
        for (int i = 0; i < n; i++) {
            if (!isfinite(l[i])) continue;
            const float p = expf((l[i] - M) / T);
            if (p >= min_p) S += p;
        }
        float r = rng_uniform(&sp->rng) * S;
        for (int i = 0; i < n; i++) {
            if (!isfinite(l[i])) continue;
            const float p = expf((l[i] - M) / T);
            if (p < min_p) continue;
            r -= p;
            if (r <= 0.0f) return i;
        }
        return best;
    }
    /* top_k and/or top_p: candidates sorted by logit, descending (ties: lower id). */
    int nc = 0;
    cand *c = malloc(sizeof *c * (size_t)n);
    if (!c) return best;
    for (int i = 0; i < n; i++)
        if (isfinite(l[i])) c[nc++] = (cand){l[i], 0.0f, i};
    qsort(c, (size_t)nc, sizeof *c, by_logit_desc);
    if (top_k > 0 && nc > top_k) nc = top_k;
    float S = 0.0f;
    for (int i = 0; i < nc; i++) { c[i].p = expf((c[i].logit - M) / T); S += c[i].p; }
    const float thr = (c[0].p / S) * min_p;
    int taken = 0;
    float cum = 0.0f, St = 0.0f;
    for (int i = 0; i < nc; i++) {
        const float q = c[i].p / S;
        if (i > 0 && q < thr) break;
        taken++;
        St += c[i].p;
        cum += q;
        if (cum >= top_p) break;
    }
    float r = rng_uniform(&sp->rng) * St;
    int pick = c[0].id;
    for (int i = 0; i < taken; i++) {
        r -= c[i].p;
        if (r <= 0.0f) { pick = c[i].id; break; }
    }
    free(c);
    return pick;
}

static double log_z(const float *l, int n) {
    const int best = ds4_argmax(l, n);
    const double M = l[best];
    double s = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(l[i])) s += exp((double)l[i] - M);
    return M + log(s);
}

float ds4_logprob(const float *l, int n, int tok) {
    if (tok < 0 || tok >= n || !isfinite(l[tok])) return -INFINITY;
    return (float)((double)l[tok] - log_z(l, n));
}

int ds4_top_logprobs(const float *l, int n, int k, int *ids, float *logps) {
    if (k <= 0) return 0;
    const double lz = log_z(l, n);
    int cnt = 0;
    /* insertion into a small sorted list: k is at most a few dozen */
    for (int i = 0; i < n; i++) {
        if (!isfinite(l[i])) continue;
        if (cnt == k && !(l[i] > l[ids[cnt - 1]])) continue;
        int j = cnt < k ? cnt++ : k - 1;
        while (j > 0 && l[i] > l[ids[j - 1]]) { ids[j] = ids[j - 1]; j--; }
        ids[j] = i;
    }
    for (int i = 0; i < cnt; i++) logps[i] = (float)((double)l[ids[i]] - lz);
    return cnt;
}
