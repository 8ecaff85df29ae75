/* gemm.h - the prefill products (gemm_dense.cu, gemm_experts.cu): batches of
 * tokens against one weight, each weight tile decoded once for many tokens,
 * integer block sums on int8 tensor cores, float steps in the CPU's order
 * (bit-identical to the mat-vec kernels of ops.h, which they fall back to for
 * n == 1 and for shapes they do not cover). Same pointer and stream rules as
 * ops.h; kept apart so the mat-vec interface and these evolve separately. */
#ifndef DS4_CUDA_GEMM_H
#define DS4_CUDA_GEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when DS4_CUDA_GEMM=0 is set: every product below takes its mat-vec
 * fallback (A/B timings on one machine). */
int ds4cu_gemm_enabled(void);

/* Same arguments and results as ds4cu_matvec_q8_0 / ds4cu_matvec_f16. */
void ds4cu_gemm_q8_0(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const void *xq, int n,
                     float *y);
void ds4cu_gemm_f16(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const float *x, int n,
                    float *y, int exact);

/* Buckets pairs [0, pairs) by expert sel[i] < X (X <= 256) on the device:
 * returns a device table (off[0..X], then the pair ids of expert e at
 * list[off[e]..off[e+1])) owned by gemm_experts.cu and valid until the next
 * call, or NULL (no memory, X out of range). Ids outside [0, X) are left out. */
const int32_t *ds4cu_experts_group(const int32_t *sel, int pairs, int X);
/* ds4cu_matvec_experts's arguments and result, from the table of
 * ds4cu_experts_group(sel, pairs, X); grp NULL or a type/shape the grouped
 * kernel does not cover (only IQ2_XXS and Q2_K, rows % 16 == 0) falls back. */
void ds4cu_experts_gemm(uint32_t type, const void *W, size_t row_bytes, int64_t in, int64_t rows, const int32_t *sel,
                        int pairs, int x_div, const void *xq, float *y, const int32_t *grp, int X);
int ds4cu_experts_grouped_ok(uint32_t type, int64_t in, int64_t rows, size_t row_bytes);

/* The indexer choices of n batch tokens at pos0.. (ratio 4): token t sees
 * rows [0, nc0 + (pos0+t+1)/4 - pos0/4) of idx and, when that count exceeds
 * k, gets the k chosen rows (ds4cu_indexer_select's set and order) at
 * sel[t·k ...]. Returns 1 when some token chose, 0 when none needs to, -1
 * when not covered (ID > 128, no memory): then select per token. */
int ds4cu_indexer_batch(const float *idx, int nc0, int64_t pos0, int n, const float *qI, const float *wI, int IH,
                        int ID, int k, int32_t *sel);

/* ds4cu_compressor's arguments and results (rows emitted, window state):
 * each emission of the batch in its own block, then the state the
 * token-by-token walk leaves. n < 2 (or an indexer width other than 128)
 * takes ds4cu_compressor itself. */
void ds4cu_compressor_gemm(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r, int w,
                           int64_t pos0, int n, const float *norm_w, float eps, const float *tab, int n_rot,
                           int indexer, float *rows, int n_rows0);

#ifdef __cplusplus
}
#endif
#endif
