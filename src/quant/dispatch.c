/* dispatch.c - picks the SIMD level once per process and routes the public,
 * un-suffixed kernels of quant.h to it.
 *
 * The choice is made on first use (pthread_once) from what the CPU reports
 * (__builtin_cpu_supports) and what this build compiled, capped by the
 * environment variable DS4_SIMD=scalar|avx2|avx512|neon so tests and benches
 * can pin a level. Every level is bit-identical to the scalar references
 * except the *_fast kernels, so the choice changes speed, never results. */
#include "quant/quant_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Multi-row loops for levels without a dedicated multi-row kernel. */
static void rows_q8_0_ref(int64_t n, int64_t nrows, const void *w, size_t stride,
                          const ds4_act_q8_0 *x, float *out) {
    for (int64_t r = 0; r < nrows; r++)
        out[r] = ds4_vec_dot_q8_0_ref(n, (const char *)w + (size_t)r * stride, x);
}
#define ROWS_Q8K_REF(name, fn) \
    static void name(int64_t n, int64_t nrows, const void *w, size_t stride, \
                     const ds4_block_q8_K *y, float *out) { \
        for (int64_t r = 0; r < nrows; r++) out[r] = fn(n, (const char *)w + (size_t)r * stride, y); \
    }
ROWS_Q8K_REF(rows_iq2_xxs_ref, ds4_vec_dot_iq2_xxs_q8_K_ref)
ROWS_Q8K_REF(rows_q2_K_ref, ds4_vec_dot_q2_K_q8_K_ref)
ROWS_Q8K_REF(rows_q4_K_ref, ds4_vec_dot_q4_K_q8_K_ref)
static void rows_f16_ref(int64_t n, int64_t nrows, const uint16_t *w, size_t stride, const float *x, float *out) {
    for (int64_t r = 0; r < nrows; r++)
        out[r] = ds4_vec_dot_f16_f32_ref(n, (const uint16_t *)((const char *)w + (size_t)r * stride), x);
}

const ds4_quant_kernels ds4_kernels_scalar = {
    .name = "scalar",
    .dot_q8_0 = ds4_vec_dot_q8_0_ref,
    .dot_iq2_xxs = ds4_vec_dot_iq2_xxs_q8_K_ref,
    .dot_q2_K = ds4_vec_dot_q2_K_q8_K_ref,
    .dot_q4_K = ds4_vec_dot_q4_K_q8_K_ref,
    .dot_f16 = ds4_vec_dot_f16_f32_ref,
    .dot_f16_fast = ds4_vec_dot_f16_f32_ref,
    .rows_q8_0 = rows_q8_0_ref,
    .rows_iq2_xxs = rows_iq2_xxs_ref,
    .rows_q2_K = rows_q2_K_ref,
    .rows_q4_K = rows_q4_K_ref,
    .rows_f16 = rows_f16_ref,
    .dot_q8_0_fast = ds4_vec_dot_q8_0_ref,
    .rows_q8_0_fast = rows_q8_0_ref,
};

static const ds4_quant_kernels *raw_level(int i) {
    switch (i) {
    case 0: return &ds4_kernels_scalar;
    case 1: return ds4_kernels_avx2();
    case 2: return ds4_kernels_avx512();
    case 3: return ds4_kernels_neon();
    }
    return NULL;
}

/* The tables handed out are completed copies: the AVX-512 Q8_0 kernels live
 * in their own file (simd_avx512_q8.c) and are merged in here, and a level
 * without fast Q8_0 kernels gets its exact ones. */
static ds4_quant_kernels done[4];
static int done_ok[4];
static pthread_once_t done_once = PTHREAD_ONCE_INIT;

static void complete_tables(void) {
    for (int i = 0; i < 4; i++) {
        const ds4_quant_kernels *k = raw_level(i);
        if (!k) continue;
        done[i] = *k;
        if (i == 2) ds4_avx512_q8_fill(&done[i]);
        if (!done[i].dot_q8_0_fast) done[i].dot_q8_0_fast = done[i].dot_q8_0;
        if (!done[i].rows_q8_0_fast) done[i].rows_q8_0_fast = done[i].rows_q8_0;
        if (!done[i].act_q8_0) done[i].act_q8_0 = ds4_quantize_act_q8_0;
        done_ok[i] = 1;
    }
}

const ds4_quant_kernels *ds4_quant_kernels_for(const char *level) {
    static const char *names[4] = {"scalar", "avx2", "avx512", "neon"};
    if (!level) return NULL;
    pthread_once(&done_once, complete_tables);
    for (int i = 0; i < 4; i++)
        if (!strcmp(level, names[i])) return done_ok[i] ? &done[i] : NULL;
    return NULL;
}

static const ds4_quant_kernels *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void pick(void) {
    /* Best first; DS4_SIMD names the highest level allowed. An unknown value
     * is ignored rather than fatal: the result is the same at every level. */
    static const char *order[] = {"avx512", "avx2", "neon", "scalar"};
    const char *cap = getenv("DS4_SIMD");
    int start = 0;
    if (cap) {
        for (int i = 0; i < 4; i++)
            if (!strcmp(cap, order[i])) start = i;
    }
    for (int i = start; i < 4; i++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(order[i]);
        if (k) { active = k; return; }
    }
}

static inline const ds4_quant_kernels *K(void) {
    pthread_once(&active_once, pick);
    return active;
}

const char *ds4_simd_level(void) { return K()->name; }

float ds4_vec_dot_q8_0(int64_t n, const void *w, const ds4_act_q8_0 *x) { return K()->dot_q8_0(n, w, x); }
float ds4_vec_dot_iq2_xxs_q8_K(int64_t n, const void *w, const ds4_block_q8_K *y) { return K()->dot_iq2_xxs(n, w, y); }
float ds4_vec_dot_q2_K_q8_K(int64_t n, const void *w, const ds4_block_q8_K *y) { return K()->dot_q2_K(n, w, y); }
float ds4_vec_dot_q4_K_q8_K(int64_t n, const void *w, const ds4_block_q8_K *y) { return K()->dot_q4_K(n, w, y); }
float ds4_vec_dot_f16_f32(int64_t n, const uint16_t *w, const float *x) { return K()->dot_f16(n, w, x); }
float ds4_vec_dot_f16_f32_fast(int64_t n, const uint16_t *w, const float *x) { return K()->dot_f16_fast(n, w, x); }

void ds4_vec_dot_q8_0_rows(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                           const ds4_act_q8_0 *x, float *out) {
    K()->rows_q8_0(n, nrows, w, row_stride, x, out);
}
void ds4_quantize_act_q8_0_simd(const float *x, ds4_act_q8_0 *out, int64_t n) { K()->act_q8_0(x, out, n); }
float ds4_vec_dot_q8_0_fast(int64_t n, const void *w, const ds4_act_q8_0 *x) { return K()->dot_q8_0_fast(n, w, x); }
void ds4_vec_dot_q8_0_rows_fast(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                const ds4_act_q8_0 *x, float *out) {
    K()->rows_q8_0_fast(n, nrows, w, row_stride, x, out);
}
void ds4_vec_dot_iq2_xxs_q8_K_rows(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                   const ds4_block_q8_K *y, float *out) {
    K()->rows_iq2_xxs(n, nrows, w, row_stride, y, out);
}
void ds4_vec_dot_q2_K_q8_K_rows(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                const ds4_block_q8_K *y, float *out) {
    K()->rows_q2_K(n, nrows, w, row_stride, y, out);
}
void ds4_vec_dot_q4_K_q8_K_rows(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                const ds4_block_q8_K *y, float *out) {
    K()->rows_q4_K(n, nrows, w, row_stride, y, out);
}
void ds4_vec_dot_f16_f32_rows(int64_t n, int64_t nrows, const uint16_t *w, size_t row_stride,
                              const float *x, float *out) {
    K()->rows_f16(n, nrows, w, row_stride, x, out);
}
