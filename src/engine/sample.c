/* sample.c - the sampler and log-probabilities of spec/model.md §7: the
 * reference's xorshift64* generator, greedy / min_p / top_p / top_k paths, and
 * log-softmax in double. Non-finite logits are never picked. */
#include <float.h>
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

/* A min-heap of candidates under by_logit_desc's order (its root is the
 * candidate that sorts last), holding the top_k seen so far. */
static void heap_sift_down(cand *h, int n, int i) {
    for (;;) {
        int w = i;
        const int a = 2 * i + 1, b = a + 1;
        if (a < n && by_logit_desc(&h[a], &h[w]) > 0) w = a;
        if (b < n && by_logit_desc(&h[b], &h[w]) > 0) w = b;
        if (w == i) return;
        const cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}
static void heap_push(cand *h, int n, cand x) {
    int i = n;
    h[i] = x;
    while (i > 0 && by_logit_desc(&h[i], &h[(i - 1) / 2]) > 0) {
        const cand t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}
static void heap_replace_top(cand *h, int n, cand x) {
    h[0] = x;
    heap_sift_down(h, n, 0);
}

/* A logit below M + T·(x_cut - margin) has p = expf((l - M) / T) < e^x_cut:
 * the float subtraction and division move x by a few ulps, the 0.05 margin
 * covers that and expf's error many times over. Comparing logits against it
 * spares the expf of every token that cannot matter (the vocabulary is 129k,
 * the tokens that matter a few hundred): the sampler took 0.65 ms per token
 * with the defaults and 22 ms with top_p or top_k (a sort of the whole
 * vocabulary), a whole decode step or ten. */
static double logit_floor(float M, float T, double x_cut) { return (double)M + (double)T * (x_cut - 0.05); }
/* the largest float not above v (so a logit below it is below v) */
static float floor_f(double v) {
    if (!(v > -FLT_MAX)) return -FLT_MAX;
    const float f = (float)v;
    return (double)f > v ? nextafterf(f, -INFINITY) : f;
}

/* Each candidate's p with the temperature, and their sum S in list order. */
static float fill_p(cand *c, int nc, float M, float T) {
    float S = 0.0f;
    for (int i = 0; i < nc; i++) {
        c[i].p = expf((c[i].logit - M) / T);
        S += c[i].p;
    }
    return S;
}

/* The reference's top-k / top-p walk over candidates c[0..nc) sorted by
 * logit (descending, ties: lower id), with their p filled in; returns the
 * pick, or -1 when the walk ran to index `stop` without ending (the caller
 * then holds too few candidates to decide). */
static int walk(ds4_sampler *sp, cand *c, int nc, int stop, float S, float min_p, float top_p) {
    const float thr = (c[0].p / S) * min_p;
    int taken = 0;
    float cum = 0.0f, St = 0.0f;
    for (int i = 0; i < nc; i++) {
        if (i == stop) return -1;
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
    return pick;
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
        /* tokens with p < min_p are skipped by both passes: with min_p > 0,
         * those below the logit floor are skipped without their expf (the
         * floor rounded down to a float; -FLT_MAX keeps out only -inf) */
        const float lo = min_p > 0.0f ? floor_f(logit_floor(M, T, log((double)min_p))) : -FLT_MAX;
        float S = 0.0f;
        for (int i = 0; i < n; i++) {
            if (!(l[i] >= lo && l[i] < INFINITY)) continue; /* NaN and ±inf too */
            const float p = expf((l[i] - M) / T);
            if (p >= min_p) S += p;
        }
        float r = rng_uniform(&sp->rng) * S;
        for (int i = 0; i < n; i++) {
            if (!(l[i] >= lo && l[i] < INFINITY)) continue;
            const float p = expf((l[i] - M) / T);
            if (p < min_p) continue;
            r -= p;
            if (r <= 0.0f) return i;
        }
        return best;
    }
    /* top_k and/or top_p: candidates sorted by logit, descending (ties: lower
     * id), cut to top_k; S sums their p in that order. */
    cand *c = malloc(sizeof *c * (size_t)(top_k > 0 ? top_k : n));
    if (!c) return best;
    int nc = 0, pick;
    if (top_k > 0) { /* the top_k candidates themselves: a bounded heap, then a sort */
        for (int i = 0; i < n; i++) {
            if (!isfinite(l[i])) continue;
            const cand x = {l[i], 0.0f, i};
            if (nc < top_k) heap_push(c, nc++, x);
            else if (by_logit_desc(&x, &c[0]) < 0) heap_replace_top(c, nc, x);
        }
        qsort(c, (size_t)nc, sizeof *c, by_logit_desc);
        const float S = fill_p(c, nc, M, T);
        pick = nc ? walk(sp, c, nc, -1, S, min_p, top_p) : best; /* nothing finite: argmax's 0 */
        free(c);
        return pick;
    }
    /* top_p alone: S starts with the top candidate's p = 1, so a candidate
     * with p < 2^-25 (under half an ulp of S) leaves it unchanged, and so does
     * every later one (smaller still). So only the candidates above the logit
     * floor of 2^-25 are sorted; the walk over them decides unless it runs past
     * them, and then the whole vocabulary is sorted as before. */
    const double lo = logit_floor(M, T, -25.0 * log(2.0));
    int nf = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(l[i])) continue;
        nf++;
        if ((double)l[i] >= lo) c[nc++] = (cand){l[i], 0.0f, i};
    }
    qsort(c, (size_t)nc, sizeof *c, by_logit_desc);
    float S = fill_p(c, nc, M, T);
    if (!nf) { free(c); return best; } /* nothing finite: argmax's 0 */
    const uint64_t rng0 = sp->rng;
    pick = walk(sp, c, nf, nc < nf ? nc : -1, S, min_p, top_p);
    if (pick < 0) { /* the walk needs candidates past the floor: all of them */
        sp->rng = rng0;
        nc = 0;
        for (int i = 0; i < n; i++)
            if (isfinite(l[i])) c[nc++] = (cand){l[i], 0.0f, i};
        qsort(c, (size_t)nc, sizeof *c, by_logit_desc);
        S = fill_p(c, nc, M, T);
        pick = walk(sp, c, nc, -1, S, min_p, top_p);
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
