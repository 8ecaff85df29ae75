/* matmul.h - CPU matrix products of a bound weight with a batch of activation
 * rows, with the activation handling of spec/model.md §3.8 per weight type:
 * Q8_0 weights quantize each activation row (per 32 values, F32 scale) once
 * and use integer block dots; F16 and F32 weights take F32 activations.
 * Rows of the output are split across the pool; each output value is one
 * sequential dot product, so results do not depend on the thread count. */
#ifndef DS4_CPU_MATMUL_H
#define DS4_CPU_MATMUL_H

#include <stdint.h>

#include "engine/cpu/pool.h"
#include "model/weights.h"

/* y[t][r] = W_r · x_t for t < n, r < W->ne[1].
 * With groups > 1 the output rows split into `groups` equal parts and part g
 * reads the g-th slice (of width W->ne[0]) of each activation row, whose full
 * width is then groups × ne[0] (the grouped attention output, §4.6.7). */
void ds4_cpu_matmul(ds4_pool *pool, const ds4_wt *W, const float *x, int n, int groups, float *y, int exact);

/* Same with caller-provided quantized Q8_0 activations (n rows of
 * groups·ne[0]/32 blocks), so one quantization can serve several weights.
 * Q8_0 products are exact in both modes (see matmul.c). */
void ds4_cpu_matmul_q8_0_pre(ds4_pool *pool, const ds4_wt *W, const void *xq, int n, int groups, float *y, int exact);

/* Q8_0 activation quantization of nblocks consecutive 32-value blocks, split
 * across the pool when large (blocks are independent: identical codes). */
void ds4_cpu_quantize_q8_0(ds4_pool *pool, const float *x, void *xq, int64_t nblocks);

/* y_j = W_j · x for several weights that read the same input (equal ne[0],
 * groups 1): one activation quantization and ONE parallel loop over all
 * their rows instead of one per weight. Results are identical to separate
 * ds4_cpu_matmul calls. At most 8 weights. */
void ds4_cpu_matmul_multi(ds4_pool *pool, int nw, const ds4_wt *const *W, const float *x, int n, float *const *y,
                          int exact);

/* Shared-expert front half (spec §4.7.3) in one parallel loop: for rows in
 * units of 32, g = Wg·x and u = Wu·x from the quantized input xq, then
 * h = silu(min(g, c))·clamp(u, ±c) quantized to Q8_0 into hq (n rows of
 * ne[1]/32 blocks): exactly what the separate products, the activation loop
 * and ds4_quantize_act_q8_0 of h give. */
void ds4_cpu_swiglu_q8_0(ds4_pool *pool, const ds4_wt *Wg, const ds4_wt *Wu, const void *xq, int n, float clampv,
                         void *hq, int exact);

#endif
