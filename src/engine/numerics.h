/* numerics.h - the scalar building blocks of the forward pass, each in the
 * exact evaluation order of the reference CPU path (spec/model.md §3.9, §4.1,
 * §4.6.2 and the conventions in tests/data/oracle/README.md). Every backend's
 * kernels are tested against these. Order of float operations is semantic
 * here: do not "simplify" an expression without checking the goldens. */
#ifndef DS4_ENGINE_NUMERICS_H
#define DS4_ENGINE_NUMERICS_H

#include <stdint.h>

/* y = x * (1/sqrt(mean(x^2) + eps)) [* w]; sum of squares in double. w may be NULL. */
void ds4_rmsnorm(const float *x, const float *w, float *y, int n, float eps);

float ds4_sigmoid_plain(float z);   /* 1/(1+e^-z) */
float ds4_sigmoid_stable(float z);  /* branch-stable form */
float ds4_silu(float z);
float ds4_softplus(float z);

/* RoPE with optional YaRN for one layer kind. */
typedef struct ds4_rope {
    int n_rot;          /* rotated tail width */
    float theta_scale;  /* base^(-2/n_rot) */
    float freq_scale;   /* 1 or 1/factor */
    int yarn;           /* 1 on compressed layers */
    float corr_lo, corr_hi;
} ds4_rope;

void ds4_rope_init(ds4_rope *r, int n_rot, float base, int yarn, float factor, uint64_t orig_ctx,
                   float beta_fast, float beta_slow);
/* cos/sin of each of the n_rot/2 pairs at position p (inverse: sin negated). */
void ds4_rope_cs(const ds4_rope *r, int64_t p, float *cos_out, float *sin_out);
/* Rotate the last n_rot values of each of nh heads of width `width`, given cos/sin. */
void ds4_rope_apply(float *x, int nh, int width, int n_rot, const float *c, const float *s, int inverse);

float ds4_e4m3_round(float v);  /* |v| <= 448 */
float ds4_e2m1_round(float v);  /* |v| <= 6 */
/* FP8 KV simulation on the first n_nope values (blocks of 64). */
void ds4_fp8_kv(float *x, int n_nope);
/* FP4 activation simulation, blocks of 32. */
void ds4_fp4_act(float *x, int n);
/* Walsh-Hadamard-128 scaled by 1/sqrt(128). */
void ds4_hadamard128(float *x);
/* Indexer QAT: FP4(Hadamard(x)) on a 128-vector. */
void ds4_iqat(float *x);

#endif
