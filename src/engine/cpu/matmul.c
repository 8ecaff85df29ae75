/* matmul.c - see matmul.h. */
#include "engine/cpu/matmul.h"

#include <stdlib.h>

#include "quant/quant.h"

typedef struct mm_ctx {
    const ds4_wt *W;
    const float *x;
    const ds4_act_q8_0 *xq;
    float *y;
    int n, groups, exact;
    int64_t in, out, rows_per_group;
} mm_ctx;

/* Calls seg(ctx, g, r0, r1) for each part of [r0, r1) inside one group. */
#define FOR_GROUP_SEGMENTS(c, r0, r1, body) \
    for (int64_t a_ = (r0); a_ < (r1);) { \
        const int64_t g = a_ / (c)->rows_per_group; \
        int64_t b_ = (g + 1) * (c)->rows_per_group; \
        if (b_ > (r1)) b_ = (r1); \
        const int64_t lo = a_, hi = b_; \
        body; \
        a_ = b_; \
    }

static void mm_q8_0_range(void *vctx, int64_t r0, int64_t r1) {
    const mm_ctx *c = vctx;
    const int64_t blocks_in = c->in / 32, blocks_row = blocks_in * c->groups;
    FOR_GROUP_SEGMENTS(c, r0, r1, {
        for (int t = 0; t < c->n; t++)
            ds4_vec_dot_q8_0_rows(c->in, hi - lo, c->W->data + (uint64_t)lo * c->W->row_bytes, c->W->row_bytes,
                                  c->xq + t * blocks_row + g * blocks_in, c->y + (int64_t)t * c->out + lo);
    })
}

static void mm_f16_range(void *vctx, int64_t r0, int64_t r1) {
    const mm_ctx *c = vctx;
    const int64_t xw = c->in * c->groups;
    FOR_GROUP_SEGMENTS(c, r0, r1, {
        const uint16_t *w0 = (const uint16_t *)(const void *)(c->W->data + (uint64_t)lo * c->W->row_bytes);
        for (int t = 0; t < c->n; t++) {
            const float *xr = c->x + t * xw + g * c->in;
            float *yr = c->y + (int64_t)t * c->out + lo;
            if (c->exact) ds4_vec_dot_f16_f32_rows(c->in, hi - lo, w0, c->W->row_bytes, xr, yr);
            else
                for (int64_t r = lo; r < hi; r++)
                    yr[r - lo] = ds4_vec_dot_f16_f32_fast(
                        c->in, (const uint16_t *)(const void *)(c->W->data + (uint64_t)r * c->W->row_bytes), xr);
        }
    })
}

static void mm_f32_range(void *vctx, int64_t r0, int64_t r1) {
    const mm_ctx *c = vctx;
    const int64_t xw = c->in * c->groups;
    for (int64_t r = r0; r < r1; r++) {
        const float *wrow = (const float *)(const void *)(c->W->data + (uint64_t)r * c->W->row_bytes);
        const int64_t g = r / c->rows_per_group;
        for (int t = 0; t < c->n; t++) {
            const float *xr = c->x + t * xw + g * c->in;
            double s = 0.0;
            for (int64_t i = 0; i < c->in; i++) s += (double)wrow[i] * (double)xr[i];
            c->y[(int64_t)t * c->out + r] = (float)s;
        }
    }
}

/* Rows per thread such that each part does at least ~256K multiply-adds:
 * below that, waking a worker costs more than it saves. */
static int64_t grain_for(int64_t in, int n) {
    const int64_t work = in * (n > 0 ? n : 1);
    const int64_t g = (262144 + work - 1) / (work > 0 ? work : 1);
    return g < 1 ? 1 : g;
}

void ds4_cpu_matmul_q8_0_pre(ds4_pool *pool, const ds4_wt *W, const void *xq, int n, int groups, float *y) {
    mm_ctx c = {.W = W, .xq = xq, .y = y, .n = n, .groups = groups, .in = (int64_t)W->ne[0], .out = (int64_t)W->ne[1]};
    c.rows_per_group = c.out / groups;
    ds4_pool_for(pool, c.out, grain_for(c.in, n), mm_q8_0_range, &c);
}

void ds4_cpu_matmul(ds4_pool *pool, const ds4_wt *W, const float *x, int n, int groups, float *y, int exact) {
    const int64_t in = (int64_t)W->ne[0];
    if (W->type == DS4_TYPE_Q8_0) {
        const int64_t blocks = in / 32 * groups;
        ds4_act_q8_0 *xq = malloc(sizeof *xq * (size_t)(blocks * n));
        for (int t = 0; t < n; t++) ds4_quantize_act_q8_0(x + (int64_t)t * in * groups, xq + t * blocks, in * groups);
        ds4_cpu_matmul_q8_0_pre(pool, W, xq, n, groups, y);
        free(xq);
        return;
    }
    mm_ctx c = {.W = W, .x = x, .y = y, .n = n, .groups = groups, .exact = exact, .in = in, .out = (int64_t)W->ne[1]};
    c.rows_per_group = c.out / groups;
    ds4_pool_for(pool, c.out, grain_for(in, n), W->type == DS4_TYPE_F16 ? mm_f16_range : mm_f32_range, &c);
}
