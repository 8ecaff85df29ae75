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
 * groups·ne[0]/32 blocks), so one quantization can serve several weights. */
void ds4_cpu_matmul_q8_0_pre(ds4_pool *pool, const ds4_wt *W, const void *xq, int n, int groups, float *y);

#endif
