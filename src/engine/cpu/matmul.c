/* matmul.c - see matmul.h.
 *
 * Decode reads every weight once per token, so what costs here besides the
 * kernels is per-call overhead: each parallel loop is a hand-off to the
 * workers and back, and anything done on the calling thread alone (input
 * quantization, activation functions) does not get faster with threads.
 * Hence the quantization split across the pool, the multi-weight loop for
 * projections of one input, and the shared expert's fused front half. */
#include "engine/cpu/matmul.h"

#include <stdlib.h>

#include "engine/numerics.h"
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

/* Q8_0 runs the exact multi-row kernel in both modes: the reassociated
 * ds4_vec_dot_q8_0_fast (one row at a time) measured slower in decode
 * (1 thread, dev machine: 6.2 against 7.7 t/s), because the exact kernel's 8
 * rows per pass keep more of memory busy and its 8 block-order chains in
 * lanes already cost nothing. So `exact` only changes the F16 products. */
static void q8_0_rows(int exact, int64_t n, int64_t nrows, const void *w, size_t stride, const ds4_act_q8_0 *x,
                      float *out) {
    (void)exact;
    ds4_vec_dot_q8_0_rows(n, nrows, w, stride, x, out);
}

static void mm_q8_0_range(void *vctx, int64_t r0, int64_t r1) {
    const mm_ctx *c = vctx;
    const int64_t blocks_in = c->in / 32, blocks_row = blocks_in * c->groups;
    FOR_GROUP_SEGMENTS(c, r0, r1, {
        for (int t = 0; t < c->n; t++)
            q8_0_rows(c->exact, c->in, hi - lo, c->W->data + (uint64_t)lo * c->W->row_bytes, c->W->row_bytes,
                      c->xq + t * blocks_row + g * blocks_in, c->y + (int64_t)t * c->out + lo);
    })
}

static void f16_rows(int exact, int64_t in, int64_t nrows, const ds4_wt *W, int64_t r0, const float *x, float *y) {
    const uint16_t *w0 = (const uint16_t *)(const void *)(W->data + (uint64_t)r0 * W->row_bytes);
    if (exact) {
        ds4_vec_dot_f16_f32_rows(in, nrows, w0, W->row_bytes, x, y);
        return;
    }
    for (int64_t r = 0; r < nrows; r++)
        y[r] = ds4_vec_dot_f16_f32_fast(in, (const uint16_t *)(const void *)(W->data + (uint64_t)(r0 + r) * W->row_bytes), x);
}

static void mm_f16_range(void *vctx, int64_t r0, int64_t r1) {
    const mm_ctx *c = vctx;
    const int64_t xw = c->in * c->groups;
    FOR_GROUP_SEGMENTS(c, r0, r1, {
        for (int t = 0; t < c->n; t++)
            f16_rows(c->exact, c->in, hi - lo, c->W, lo, c->x + t * xw + g * c->in, c->y + (int64_t)t * c->out + lo);
    })
}

static void f32_rows(const ds4_wt *W, int64_t in, int64_t r0, int64_t r1, const float *x, float *y) {
    for (int64_t r = r0; r < r1; r++) {
        const float *wrow = (const float *)(const void *)(W->data + (uint64_t)r * W->row_bytes);
        double s = 0.0;
        for (int64_t i = 0; i < in; i++) s += (double)wrow[i] * (double)x[i];
        y[r - r0] = (float)s;
    }
}

static void mm_f32_range(void *vctx, int64_t r0, int64_t r1) {
    const mm_ctx *c = vctx;
    const int64_t xw = c->in * c->groups;
    FOR_GROUP_SEGMENTS(c, r0, r1, {
        for (int t = 0; t < c->n; t++)
            f32_rows(c->W, c->in, lo, hi, c->x + t * xw + g * c->in, c->y + (int64_t)t * c->out + lo);
    })
}

/* Rows per part such that each part does at least ~64K multiply-adds
 * (below that, handing it to a worker costs more than it saves), and at
 * least 8: the multi-row kernels run 8 rows per pass. A decode step's small
 * wide products (the HC mixers: 24 rows of 16384) then still spread over
 * 3 threads instead of 1-2. */
static int64_t grain_for(int64_t in, int n) {
    const int64_t work = in * (n > 0 ? n : 1);
    const int64_t g = (65536 + work - 1) / (work > 0 ? work : 1);
    return g < 8 ? 8 : g;
}

typedef struct { const float *x; ds4_act_q8_0 *xq; } quant_ctx;

static void quant_range(void *vctx, int64_t b0, int64_t b1) {
    const quant_ctx *c = vctx;
    ds4_quantize_act_q8_0_simd(c->x + b0 * 32, c->xq + b0, (b1 - b0) * 32);
}

void ds4_cpu_quantize_q8_0(ds4_pool *pool, const float *x, void *xq, int64_t nblocks) {
    quant_ctx c = {x, xq};
    /* ~10 ns per block (SIMD): a decode step's largest input (1024 blocks) is
     * quantized faster than a hand-off to the workers would take */
    ds4_pool_for(pool, nblocks, 1024, quant_range, &c);
}

void ds4_cpu_matmul_q8_0_pre(ds4_pool *pool, const ds4_wt *W, const void *xq, int n, int groups, float *y, int exact) {
    mm_ctx c = {.W = W, .xq = xq, .y = y, .n = n, .groups = groups, .exact = exact, .in = (int64_t)W->ne[0],
                .out = (int64_t)W->ne[1]};
    c.rows_per_group = c.out / groups;
    ds4_pool_for(pool, c.out, grain_for(c.in, n), mm_q8_0_range, &c);
}

void ds4_cpu_matmul(ds4_pool *pool, const ds4_wt *W, const float *x, int n, int groups, float *y, int exact) {
    const int64_t in = (int64_t)W->ne[0];
    if (W->type == DS4_TYPE_Q8_0) {
        const int64_t blocks = in / 32 * groups;
        ds4_act_q8_0 *xq = malloc(sizeof *xq * (size_t)(blocks * n));
        ds4_cpu_quantize_q8_0(pool, x, xq, blocks * n);
        ds4_cpu_matmul_q8_0_pre(pool, W, xq, n, groups, y, exact);
        free(xq);
        return;
    }
    mm_ctx c = {.W = W, .x = x, .y = y, .n = n, .groups = groups, .exact = exact, .in = in, .out = (int64_t)W->ne[1]};
    c.rows_per_group = c.out / groups;
    ds4_pool_for(pool, c.out, grain_for(in, n), W->type == DS4_TYPE_F16 ? mm_f16_range : mm_f32_range, &c);
}

/* ---- several weights, one input ------------------------------------------- */

typedef struct multi_ctx {
    int nw, n, exact;
    const ds4_wt *const *W;
    float *const *y;
    int64_t first[9];        /* global row index of each weight's row 0; first[nw] = total */
    int64_t in;
    const float *x;
    const ds4_act_q8_0 *xq;
} multi_ctx;

static void multi_range(void *vctx, int64_t r0, int64_t r1) {
    const multi_ctx *c = vctx;
    for (int j = 0; j < c->nw; j++) {
        int64_t lo = r0 > c->first[j] ? r0 : c->first[j], hi = r1 < c->first[j + 1] ? r1 : c->first[j + 1];
        if (lo >= hi) continue;
        const ds4_wt *W = c->W[j];
        const int64_t out = (int64_t)W->ne[1];
        lo -= c->first[j];
        hi -= c->first[j];
        for (int t = 0; t < c->n; t++) {
            float *y = c->y[j] + (int64_t)t * out + lo;
            if (W->type == DS4_TYPE_Q8_0)
                q8_0_rows(c->exact, c->in, hi - lo, W->data + (uint64_t)lo * W->row_bytes, W->row_bytes,
                          c->xq + t * (c->in / 32), y);
            else if (W->type == DS4_TYPE_F16) f16_rows(c->exact, c->in, hi - lo, W, lo, c->x + t * c->in, y);
            else f32_rows(W, c->in, lo, hi, c->x + t * c->in, y);
        }
    }
}

void ds4_cpu_matmul_multi(ds4_pool *pool, int nw, const ds4_wt *const *W, const float *x, int n, float *const *y,
                          int exact) {
    multi_ctx c = {.nw = nw, .n = n, .exact = exact, .W = W, .y = y, .in = (int64_t)W[0]->ne[0], .x = x};
    int any_q8 = 0;
    c.first[0] = 0;
    for (int j = 0; j < nw; j++) {
        c.first[j + 1] = c.first[j] + (int64_t)W[j]->ne[1];
        any_q8 |= W[j]->type == DS4_TYPE_Q8_0;
    }
    ds4_act_q8_0 *xq = NULL;
    if (any_q8) {
        xq = malloc(sizeof *xq * (size_t)(c.in / 32 * n));
        ds4_cpu_quantize_q8_0(pool, x, xq, c.in / 32 * n);
        c.xq = xq;
    }
    ds4_pool_for(pool, c.first[nw], grain_for(c.in, n), multi_range, &c);
    free(xq);
}

/* ---- shared expert front half ---------------------------------------------- */

typedef struct swiglu_ctx {
    const ds4_wt *Wg, *Wu;
    const ds4_act_q8_0 *xq;
    ds4_act_q8_0 *hq;
    int n, exact;
    float clampv;
    int64_t in, F;
} swiglu_ctx;

/* Units of 32 output rows (one Q8_0 block of h) per token. */
static void swiglu_range(void *vctx, int64_t u0, int64_t u1) {
    const swiglu_ctx *c = vctx;
    const int64_t per_tok = c->F / 32;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t t = u / per_tok, r = (u % per_tok) * 32;
        float g[32], v[32];
        const ds4_act_q8_0 *x = c->xq + t * (c->in / 32);
        q8_0_rows(c->exact, c->in, 32, c->Wg->data + (uint64_t)r * c->Wg->row_bytes, c->Wg->row_bytes, x, g);
        q8_0_rows(c->exact, c->in, 32, c->Wu->data + (uint64_t)r * c->Wu->row_bytes, c->Wu->row_bytes, x, v);
        for (int i = 0; i < 32; i++) {
            float gv = g[i], uv = v[i];
            if (gv > c->clampv) gv = c->clampv;
            uv = uv < -c->clampv ? -c->clampv : (uv > c->clampv ? c->clampv : uv);
            g[i] = ds4_silu(gv) * uv;
        }
        ds4_quantize_act_q8_0_simd(g, c->hq + t * per_tok + r / 32, 32);
    }
}

void ds4_cpu_swiglu_q8_0(ds4_pool *pool, const ds4_wt *Wg, const ds4_wt *Wu, const void *xq, int n, float clampv,
                         void *hq, int exact) {
    swiglu_ctx c = {.Wg = Wg, .Wu = Wu, .xq = xq, .hq = hq, .n = n, .exact = exact, .clampv = clampv,
                    .in = (int64_t)Wg->ne[0], .F = (int64_t)Wg->ne[1]};
    /* one unit (32 rows of two weights) is already worth a hand-off */
    ds4_pool_for(pool, (int64_t)n * (c.F / 32), 1, swiglu_range, &c);
}
