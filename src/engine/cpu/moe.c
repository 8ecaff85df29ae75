/* moe.c - see moe.h. Work is flattened to (token, slot) pairs × rows so that
 * even a single decoded token spreads its 6 experts over all threads (by
 * rows, not by expert: 6 experts × 8 units of 256 rows for gate/up; for down,
 * units of 64 output rows, each with all 6 experts and their sum). */
#include "engine/cpu/moe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/matmul.h"
#include "quant/quant.h"

void ds4_route(const ds4_model *m, uint32_t il, const float *lg, int32_t token, int32_t *sel, float *w) {
    const ds4_config *c = &m->cfg;
    const ds4_layer_weights *L = &m->w.layer[il];
    const uint32_t X = c->n_expert, K = c->n_expert_used;
    float prob[4096];
    for (uint32_t e = 0; e < X; e++) prob[e] = sqrtf(ds4_softplus(lg[e]));
    if (ds4_is_hash_layer(c, il)) {
        const int32_t *row = (const int32_t *)(const void *)L->tid2eid.data + (size_t)token * K;
        for (uint32_t k = 0; k < K; k++) sel[k] = row[k];
    } else {
        const float *bias = L->exp_bias.data ? ds4_wt_f32(&L->exp_bias) : NULL;
        float score[4096];
        unsigned char taken[4096];
        for (uint32_t e = 0; e < X; e++) {
            score[e] = bias ? prob[e] + bias[e] : prob[e];
            taken[e] = 0;
        }
        for (uint32_t k = 0; k < K; k++) {
            int best = -1;
            for (uint32_t e = 0; e < X; e++)
                if (!taken[e] && (best < 0 || score[e] > score[best])) best = (int)e;
            taken[best] = 1;
            sel[k] = best;
        }
    }
    float sum = 0.0f;
    for (uint32_t k = 0; k < K; k++) {
        w[k] = prob[sel[k]];
        sum += w[k];
    }
    if (c->expert_norm) {
        const float Z = sum > 6.103515625e-5f ? sum : 6.103515625e-5f;
        for (uint32_t k = 0; k < K; k++) w[k] = w[k] / Z * c->expert_scale;
    } else {
        for (uint32_t k = 0; k < K; k++) w[k] = w[k] * c->expert_scale;
    }
}

typedef void (*rows_k_fn)(int64_t, int64_t, const void *, size_t, const ds4_block_q8_K *, float *);

static rows_k_fn rows_for(uint32_t type) {
    switch (type) {
    case DS4_TYPE_IQ2_XXS: return ds4_vec_dot_iq2_xxs_q8_K_rows;
    case DS4_TYPE_Q2_K: return ds4_vec_dot_q2_K_q8_K_rows;
    default: return ds4_vec_dot_q4_K_q8_K_rows;
    }
}

typedef struct moe_ctx {
    const ds4_layer_weights *L;
    uint32_t E, F, K;
    float clampv;
    const int32_t *sel;        /* n × K */
    const float *w;            /* n × K expert weights */
    const ds4_block_q8_K *xq;  /* n × E/256 */
    ds4_block_q8_K *mq;        /* pairs × F/256 */
    float *out;                /* n × E: the layer's routed-expert output */
} moe_ctx;

/* Unit u in [0, pairs × F/256) is 256 rows of gate and up of one (token,
 * slot) pair: the rows, the SwiGLU times the expert weight, and its Q8_K
 * block, all on one thread (the same arithmetic as row products, then the
 * activation loop, then ds4_quantize_q8_K; blocks are independent). */
static void gate_up_range(void *vctx, int64_t u0, int64_t u1) {
    const moe_ctx *c = vctx;
    const rows_k_fn fg = rows_for(c->L->gate_exps.type), fu = rows_for(c->L->up_exps.type);
    const uint64_t rb_g = c->L->gate_exps.row_bytes, rb_u = c->L->up_exps.row_bytes;
    const int64_t per_pair = c->F / 256;
    float g[256], v[256];
    for (int64_t u = u0; u < u1; u++) {
        const int64_t pair = u / per_pair, f = (u % per_pair) * 256;
        const uint64_t e = (uint64_t)c->sel[pair];
        const ds4_block_q8_K *x = c->xq + (pair / c->K) * (c->E / 256);
        fg(c->E, 256, c->L->gate_exps.data + (e * c->F + (uint64_t)f) * rb_g, rb_g, x, g);
        fu(c->E, 256, c->L->up_exps.data + (e * c->F + (uint64_t)f) * rb_u, rb_u, x, v);
        const float wk = c->w[pair], clampv = c->clampv;
        for (int i = 0; i < 256; i++) {
            float gv = g[i], uv = v[i];
            if (gv > clampv) gv = clampv;
            uv = uv < -clampv ? -clampv : (uv > clampv ? clampv : uv);
            g[i] = ds4_silu(gv) * uv * wk;
        }
        ds4_quantize_q8_K(g, c->mq + u, 256);
    }
}

/* Unit u in [0, n × E/64) is 64 output rows d of one token: the down
 * product of each of its K experts for those rows, then their sum in slot
 * order from 0.0f (the reference's per-d sum, done here instead of in a
 * serial pass over all tokens and rows afterwards). */
#define DOWN_ROWS 64
static void down_range(void *vctx, int64_t u0, int64_t u1) {
    const moe_ctx *c = vctx;
    const rows_k_fn fd = rows_for(c->L->down_exps.type);
    const uint64_t rb = c->L->down_exps.row_bytes;
    const int64_t per_tok = (c->E + DOWN_ROWS - 1) / DOWN_ROWS;
    float part[DOWN_ROWS];
    for (int64_t u = u0; u < u1; u++) {
        const int64_t t = u / per_tok, d0 = (u % per_tok) * DOWN_ROWS;
        const int64_t nr = d0 + DOWN_ROWS <= (int64_t)c->E ? DOWN_ROWS : (int64_t)c->E - d0;
        float *o = c->out + t * c->E + d0;
        for (int64_t i = 0; i < nr; i++) o[i] = 0.0f;
        for (uint32_t k = 0; k < c->K; k++) {
            const int64_t pair = t * c->K + k;
            const uint64_t e = (uint64_t)c->sel[pair];
            fd(c->F, nr, c->L->down_exps.data + (e * c->E + (uint64_t)d0) * rb, rb, c->mq + pair * (c->F / 256), part);
            for (int64_t i = 0; i < nr; i++) o[i] += part[i];
        }
    }
}

void ds4_cpu_moe(const ds4_model *m, uint32_t il, const float *xf, const int32_t *tokens, int n, float *moe) {
    const ds4_config *c = &m->cfg;
    const ds4_layer_weights *L = &m->w.layer[il];
    const uint32_t E = c->n_embd, F = c->ff_exp, K = c->n_expert_used, X = c->n_expert;
    const float clampv = c->swiglu_clamp[il];
    const size_t pairs = (size_t)n * K;
    float *lg = malloc(sizeof(float) * (size_t)n * X);
    int32_t *sel = malloc(sizeof(int32_t) * pairs);
    float *w = malloc(sizeof(float) * pairs);
    ds4_cpu_matmul(m->pool, &L->gate_inp, xf, n, 1, lg, m->exact);
    for (int t = 0; t < n; t++) ds4_route(m, il, lg + (size_t)t * X, tokens[t], sel + (size_t)t * K, w + (size_t)t * K);

    ds4_block_q8_K *xq = malloc(sizeof *xq * (size_t)n * (E / 256));
    for (int t = 0; t < n; t++) ds4_quantize_q8_K(xf + (size_t)t * E, xq + (size_t)t * (E / 256), E);
    ds4_block_q8_K *mq = malloc(sizeof *mq * pairs * (F / 256));
    moe_ctx mc = {L, E, F, K, clampv, sel, w, xq, mq, moe};
    ds4_pool_for(m->pool, (int64_t)(pairs * (F / 256)), 1, gate_up_range, &mc);
    ds4_pool_for(m->pool, (int64_t)n * ((E + DOWN_ROWS - 1) / DOWN_ROWS), 1, down_range, &mc);
    free(lg); free(sel); free(w); free(xq); free(mq);
}
