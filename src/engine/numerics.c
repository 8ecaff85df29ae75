/* numerics.c - see numerics.h. Compiled with -ffp-contract=off (Makefile), so
 * a*b+c is two roundings, as in the reference. */
#include "engine/numerics.h"

#include <float.h>
#include <math.h>

void ds4_rmsnorm(const float *x, const float *w, float *y, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    if (w)
        for (int i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
    else
        for (int i = 0; i < n; i++) y[i] = x[i] * scale;
}

float ds4_sigmoid_plain(float z) { return 1.0f / (1.0f + expf(-z)); }

float ds4_sigmoid_stable(float z) {
    if (z >= 0.0f) return 1.0f / (1.0f + expf(-z));
    const float e = expf(z);
    return e / (1.0f + e);
}

float ds4_silu(float z) { return z * ds4_sigmoid_stable(z); }

float ds4_softplus(float z) {
    if (z > 20.0f) return z;
    if (z < -20.0f) return expf(z);
    return log1pf(expf(z));
}

static float corr_dim(int n_dims, uint64_t n_ctx_orig, float beta, float base) {
    return (float)n_dims * logf((float)n_ctx_orig / (beta * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

void ds4_rope_init(ds4_rope *r, int n_rot, float base, int yarn, float factor, uint64_t orig_ctx,
                   float beta_fast, float beta_slow) {
    r->n_rot = n_rot;
    r->theta_scale = powf(base, -2.0f / (float)n_rot);
    r->yarn = yarn;
    r->freq_scale = yarn ? 1.0f / factor : 1.0f;
    r->corr_lo = r->corr_hi = 0;
    if (yarn) {
        float lo = floorf(corr_dim(n_rot, orig_ctx, beta_fast, base));
        float hi = ceilf(corr_dim(n_rot, orig_ctx, beta_slow, base));
        r->corr_lo = lo > 0.0f ? lo : 0.0f;
        r->corr_hi = hi < (float)(n_rot - 1) ? hi : (float)(n_rot - 1);
    }
}

void ds4_rope_cs(const ds4_rope *r, int64_t p, float *c, float *s) {
    float theta_ext = (float)p;
    for (int k = 0; k < r->n_rot / 2; k++) {
        float theta = theta_ext;
        if (r->yarn) {
            const float theta_int = r->freq_scale * theta_ext;
            float den = r->corr_hi - r->corr_lo;
            if (den < 0.001f) den = 0.001f;
            float y = ((float)k - r->corr_lo) / den;
            y = y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
            const float ramp = 1.0f - y;
            theta = theta_int * (1.0f - ramp) + theta_ext * ramp;
        }
        c[k] = cosf(theta);
        s[k] = sinf(theta);
        theta_ext *= r->theta_scale;
    }
}

void ds4_rope_apply(float *x, int nh, int width, int n_rot, const float *c, const float *s, int inverse) {
    for (int h = 0; h < nh; h++) {
        float *v = x + (int64_t)h * width + (width - n_rot);
        for (int k = 0; k < n_rot / 2; k++) {
            const float x0 = v[2 * k], x1 = v[2 * k + 1];
            const float sn = inverse ? -s[k] : s[k];
            v[2 * k] = x0 * c[k] - x1 * sn;
            v[2 * k + 1] = x0 * sn + x1 * c[k];
        }
    }
}

/* E4M3FN code i in [0,126] -> value. */
static float e4m3_value(int i) {
    const int e = i >> 3, m = i & 7;
    if (e == 0) return ldexpf((float)m, -9);
    return ldexpf(1.0f + (float)m / 8.0f, e - 7);
}

float ds4_e4m3_round(float v) {
    static float table[127];
    static int ready;
    if (!ready) { /* benign race: every thread writes the same values */
        for (int i = 0; i < 127; i++) table[i] = e4m3_value(i);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    float a = fabsf(v);
    if (a > 448.0f) a = 448.0f;
    /* largest code with value <= a (values are increasing in the code) */
    int lo = 0, hi = 126;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (table[mid] <= a) lo = mid; else hi = mid - 1;
    }
    int i = lo;
    if (i < 126) {
        const float dn = a - table[i], up = table[i + 1] - a;
        if (up < dn || (up == dn && ((i + 1) % 2 == 0))) i = i + 1;
    }
    return v < 0 ? -table[i] : table[i];
}

float ds4_e2m1_round(float v) {
    static const float vals[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float a = fabsf(v);
    if (a > 6.0f) a = 6.0f;
    int best = 0;
    float bd = fabsf(a - vals[0]);
    for (int i = 1; i < 8; i++) {
        const float d = fabsf(a - vals[i]);
        if (d < bd || (d == bd && (i % 2 == 0) && (best % 2 == 1))) { best = i; bd = d; }
    }
    return v < 0 ? -vals[best] : vals[best];
}

void ds4_fp8_kv(float *x, int n_nope) {
    for (int b = 0; b < n_nope; b += 64) {
        float amax = 0.0f;
        for (int i = 0; i < 64; i++) { const float a = fabsf(x[b + i]); if (a > amax) amax = a; }
        if (amax < 1e-4f) amax = 1e-4f;
        const float scale = ldexpf(1.0f, (int)ceilf(log2f(amax / 448.0f)));
        for (int i = 0; i < 64; i++) {
            float q = x[b + i] / scale;
            q = q < -448.0f ? -448.0f : (q > 448.0f ? 448.0f : q);
            x[b + i] = ds4_e4m3_round(q) * scale;
        }
    }
}

void ds4_fp4_act(float *x, int n) {
    for (int b = 0; b < n; b += 32) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) { const float a = fabsf(x[b + i]); if (a > amax) amax = a; }
        if (amax < 7.052966104933725e-38f) amax = 7.052966104933725e-38f;
        const float scale = ldexpf(1.0f, (int)ceilf(log2f(amax / 6.0f)));
        for (int i = 0; i < 32; i++) {
            float q = x[b + i] / scale;
            q = q < -6.0f ? -6.0f : (q > 6.0f ? 6.0f : q);
            x[b + i] = ds4_e2m1_round(q) * scale;
        }
    }
}

void ds4_hadamard128(float *x) {
    for (int t = 1; t < 128; t <<= 1)
        for (int i = 0; i < 128; i++)
            if ((i & t) == 0) {
                const float a = x[i], b = x[i + t];
                x[i] = a + b;
                x[i + t] = a - b;
            }
    for (int i = 0; i < 128; i++) x[i] *= 0.08838834764831845f;
}

void ds4_iqat(float *x) {
    ds4_hadamard128(x);
    ds4_fp4_act(x, 128);
}
