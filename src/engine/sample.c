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

/* The first largest finite logit. The running maximum stays in a register
 * (starting at -inf, which every finite value beats; NaN and -inf never pass
 * the `>`, +inf never passes the `<`): on a 129k vocabulary this is part of
 * every greedy decode step. */
int ds4_argmax(const float *l, int n) {
    int best = -1;
    float bv = -INFINITY;
    for (int i = 0; i < n; i++) {
        const float v = l[i];
        if (v > bv && v < INFINITY) {
            bv = v;
            best = i;
        }
    }
    return best < 0 ? 0 : best;
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
