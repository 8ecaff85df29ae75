/* quant_impl.h - internals shared by the quant/ sources and their tests:
 * the per-level kernel tables the dispatcher chooses from, and small block
 * helpers every kernel family needs (Q4_K scale unpacking).
 *
 * Tests include this to run every SIMD level the CPU supports against the
 * scalar references, not only the level the dispatcher picked. */
#ifndef DS4_QUANT_IMPL_H
#define DS4_QUANT_IMPL_H

#include "quant/quant.h"

typedef float (*ds4_dot_q8_0_fn)(int64_t n, const void *w, const ds4_act_q8_0 *x);
typedef float (*ds4_dot_q8_K_fn)(int64_t n, const void *w, const ds4_block_q8_K *y);
typedef float (*ds4_dot_f16_fn)(int64_t n, const uint16_t *w, const float *x);
typedef void (*ds4_rows_q8_0_fn)(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                 const ds4_act_q8_0 *x, float *out);
typedef void (*ds4_rows_q8_K_fn)(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                 const ds4_block_q8_K *y, float *out);
typedef void (*ds4_rows_f16_fn)(int64_t n, int64_t nrows, const uint16_t *w, size_t row_stride,
                                const float *x, float *out);

/* One SIMD level's kernels. Every entry is filled (a level without its own
 * version of a kernel points at the best lower one). */
typedef struct ds4_quant_kernels {
    const char *name;
    ds4_dot_q8_0_fn dot_q8_0;
    ds4_dot_q8_K_fn dot_iq2_xxs, dot_q2_K, dot_q4_K;
    ds4_dot_f16_fn dot_f16, dot_f16_fast;
    ds4_rows_q8_0_fn rows_q8_0;
    ds4_rows_q8_K_fn rows_iq2_xxs, rows_q2_K, rows_q4_K;
    ds4_rows_f16_fn rows_f16;
    /* Q8_0 with the block sums reassociated (lanes), like dot_f16_fast; a
     * level without its own leaves them NULL and gets the exact kernels. */
    ds4_dot_q8_0_fn dot_q8_0_fast;
    ds4_rows_q8_0_fn rows_q8_0_fast;
    /* Q8_0 activation quantization, bit-identical to ds4_quantize_act_q8_0
     * (NULL: the level uses that scalar one). */
    void (*act_q8_0)(const float *x, ds4_act_q8_0 *out, int64_t n);
} ds4_quant_kernels;

/* The table of a level ("scalar", "avx2", "avx512", "neon"), or NULL when this
 * build or CPU lacks it. "scalar" always exists. */
const ds4_quant_kernels *ds4_quant_kernels_for(const char *level);

/* Per-architecture tables (NULL when unsupported); defined in quant_*.c. */
extern const ds4_quant_kernels ds4_kernels_scalar;
const ds4_quant_kernels *ds4_kernels_avx2(void);
const ds4_quant_kernels *ds4_kernels_avx512(void);
const ds4_quant_kernels *ds4_kernels_neon(void);
/* Puts the AVX-512 VNNI Q8_0 kernels (simd_avx512_q8.c) into k when this CPU
 * has them; returns 0 if it left k unchanged. */
int ds4_avx512_q8_fill(ds4_quant_kernels *k);

/* IQ2_XXS grid with signs applied, offset by 64: entry (G << 7 | S) = the 8
 * weights of grid entry G under sign pattern S, each as u8 64 + w. Built on
 * first call (thread-safe). */
const uint64_t *ds4_iq2xxs_grid_off64(void);

/* Q4_K: scale and min code (6 bits each) of sub-block j in [0,8). */
static inline void ds4_q4_K_scale_min(const uint8_t *S, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = S[j] & 63;
        *m = S[j + 4] & 63;
    } else {
        *sc = (S[j + 4] & 15) | ((S[j - 4] >> 6) << 4);
        *m = (S[j + 4] >> 4) | ((S[j] >> 6) << 4);
    }
}

#endif
