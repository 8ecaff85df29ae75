/* iq2_xxs_avx512.h - the gather-free AVX-512 IQ2_XXS kernels
 * (iq2_xxs_avx512.c), which simd_avx512.c puts in its level's table. */
#ifndef DS4_IQ2_XXS_AVX512_H
#define DS4_IQ2_XXS_AVX512_H

#include "quant/quant_impl.h"

/* Builds the kernel's tables; call once (simd_avx512.c does, under its
 * pthread_once) before the kernel. The CPU must have AVX-512 F, BW, VNNI,
 * VBMI and GFNI. */
void ds4_iq2_xxs_avx512_init(void);

/* ds4_vec_dot_iq2_xxs_q8_K_rows, bit for bit. */
void ds4_iq2_xxs_rows_avx512(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                             const ds4_block_q8_K *y, float *out);

/* ds4_vec_dot_iq2_xxs_q8_K, bit for bit (the multi-row kernel on one row). */
float ds4_iq2_xxs_dot_avx512(int64_t n, const void *w, const ds4_block_q8_K *y);

#endif
