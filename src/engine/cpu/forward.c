/* forward.c - the CPU backend's forward pass of spec/model.md §4 over a batch of new tokens,
 * layer-major (§4.10): every token through layer 0, then layer 1, ...; per
 * token the arithmetic is identical to single-token decode, so prefill and
 * decode give bit-identical logits. Read it top to bottom next to Appendix C.
 *
 * Heavy products go through cpu/matmul.c; the cache-reading part of attention
 * through cpu/attention.c; routed experts through cpu/moe.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/attention.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/moe.h"
#include "engine/cpu/cpu.h"
#include "quant/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct scratch {
    float *X, *X2;          /* n × HC·E hyper-connection state (current, next) */
    float *a, *xn, *fo;     /* n × E */
    float *post, *comb;     /* n × HC, n × HC·HC */
    float *u, *mix;         /* n × HC·E normalised state, n × (2HC+HC²) */
    float *qa, *qr;         /* n × LQ */
    float *q, *o;           /* n × H·D */
    float *kvr, *kvv;       /* n × D */
    float *lo;              /* n × G·LO */
    float *cmp_kv, *cmp_gate;    /* n × 2D */
    float *icmp_kv, *icmp_gate;  /* n × 2·128 */
    float *qI, *wI;
    float *moe, *shg, *shu;
} scratch;

static void *xalloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static int scratch_init(scratch *s, const ds4_config *c, int n) {
    const size_t N = (size_t)n, E = c->n_embd, HC = c->n_hc, D = c->head_dim, H = c->n_head;
    memset(s, 0, sizeof *s);
    float **all[] = {&s->X, &s->X2, &s->a, &s->xn, &s->fo, &s->post, &s->comb, &s->u, &s->mix, &s->qa, &s->qr,
                     &s->q, &s->o, &s->kvr, &s->kvv, &s->lo, &s->cmp_kv, &s->cmp_gate, &s->icmp_kv, &s->icmp_gate,
                     &s->qI, &s->wI, &s->moe, &s->shg, &s->shu};
    size_t sizes[] = {N * HC * E, N * HC * E, N * E, N * E, N * E, N * HC, N * HC * HC, N * HC * E,
                      N * (2 * HC + HC * HC), N * c->q_lora, N * c->q_lora, N * H * D, N * H * D, N * D, N * D,
                      N * c->o_groups * c->o_lora, N * 2 * D, N * 2 * D, N * 2 * c->idx_head_dim,
                      N * 2 * c->idx_head_dim, N * c->idx_head * c->idx_head_dim, N * c->idx_head, N * E,
                      N * c->ff_exp, N * c->ff_exp};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (!(*all[i] = xalloc(sizes[i]))) return -1;
    return 0;
}

static void scratch_free(scratch *s) {
    float *all[] = {s->X, s->X2, s->a, s->xn, s->fo, s->post, s->comb, s->u, s->mix, s->qa, s->qr, s->q, s->o,
                    s->kvr, s->kvv, s->lo, s->cmp_kv, s->cmp_gate, s->icmp_kv, s->icmp_gate, s->qI, s->wI,
                    s->moe, s->shg, s->shu};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

/* a[d] = sum over h in order of X[h][d]·w[h], starting from 0.0f: the same
 * chain per d as the plain loop, 8 values of d per vector (element-wise, so
 * exact; the compiler leaves the plain loop scalar). Serial work of every
 * decode step: 8 times 16384 values. */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static void hc_weighted_sum_avx2(const float *X, const float *w, int HC, int E,
                                                                 float *a) {
    int d = 0;
    for (; d + 8 <= E; d += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int h = 0; h < HC; h++)
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(X + (size_t)h * E + d), _mm256_set1_ps(w[h])));
        _mm256_storeu_ps(a + d, acc);
    }
    for (; d < E; d++) {
        float acc = 0.0f;
        for (int h = 0; h < HC; h++) acc += X[(size_t)h * E + d] * w[h];
        a[d] = acc;
    }
}
#endif

static void hc_weighted_sum(const float *X, const float *w, int HC, int E, float *a) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        hc_weighted_sum_avx2(X, w, HC, E, a);
        return;
    }
#endif
    for (int d = 0; d < E; d++) {
        float acc = 0.0f;
        for (int h = 0; h < HC; h++) acc += X[(size_t)h * E + d] * w[h];
        a[d] = acc;
    }
}

/* §4.3: mixing weights from the normalised state, Sinkhorn, sub-layer input. */
static void hc_pre(const ds4_model *m, const ds4_wt *fn, const ds4_wt *scale_w, const ds4_wt *base_w, scratch *s,
                   int n) {
    const ds4_config *c = &m->cfg;
    const int HC = (int)c->n_hc, E = (int)c->n_embd, M = 2 * HC + HC * HC;
    const float eps = c->hc_eps;
    for (int t = 0; t < n; t++) ds4_rmsnorm(s->X + (size_t)t * HC * E, NULL, s->u + (size_t)t * HC * E, HC * E, c->rms_eps);
    ds4_cpu_matmul(m->pool, fn, s->u, n, 1, s->mix, m->exact);
    const float *scale = ds4_wt_f32(scale_w), *base = ds4_wt_f32(base_w);
    for (int t = 0; t < n; t++) {
        const float *mix = s->mix + (size_t)t * M;
        float pre[16], *post = s->post + (size_t)t * HC, *C = s->comb + (size_t)t * HC * HC;
        for (int i = 0; i < HC; i++) {
            pre[i] = ds4_sigmoid_plain(mix[i] * scale[0] + base[i]) + eps;
            post[i] = 2.0f / (1.0f + expf(-(mix[HC + i] * scale[1] + base[HC + i])));
        }
        for (int r = 0; r < HC; r++) {
            float z[16], mx = -INFINITY, sum = 0.0f;
            for (int k = 0; k < HC; k++) {
                z[k] = mix[2 * HC + HC * r + k] * scale[2] + base[2 * HC + HC * r + k];
                if (z[k] > mx) mx = z[k];
            }
            for (int k = 0; k < HC; k++) { z[k] = expf(z[k] - mx); sum += z[k]; }
            const float inv = 1.0f / sum;
            for (int k = 0; k < HC; k++) C[HC * r + k] = z[k] * inv + eps;
        }
        for (uint32_t it = 0; it < c->sinkhorn_iter; it++) {
            if (it > 0)
                for (int r = 0; r < HC; r++) {
                    float sum = 0.0f;
                    for (int k = 0; k < HC; k++) sum += C[HC * r + k];
                    const float inv = 1.0f / (sum + eps);
                    for (int k = 0; k < HC; k++) C[HC * r + k] *= inv;
                }
            for (int k = 0; k < HC; k++) {
                float sum = 0.0f;
                for (int r = 0; r < HC; r++) sum += C[HC * r + k];
                const float inv = 1.0f / (sum + eps);
                for (int r = 0; r < HC; r++) C[HC * r + k] *= inv;
            }
        }
        const float *X = s->X + (size_t)t * HC * E;
        float *a = s->a + (size_t)t * E;
        hc_weighted_sum(X, pre, HC, E, a);
    }
}

/* §4.4: X_new[i] = post[i]·F + Σ_j C[j][i]·X[j]; result lands in s->X.
 * Split across the pool in slices of 256 of d (each value's sum is the same). */
typedef struct { const ds4_config *c; scratch *s; } hc_post_ctx;

static void hc_post_range(void *vctx, int64_t u0, int64_t u1) {
    const hc_post_ctx *hp = vctx;
    const int HC = (int)hp->c->n_hc, E = (int)hp->c->n_embd, per_tok = (E + 255) / 256;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t t = u / per_tok;
        const int d0 = (int)(u % per_tok) * 256, d1 = d0 + 256 < E ? d0 + 256 : E;
        const float *X = hp->s->X + (size_t)t * HC * E, *F = hp->s->fo + (size_t)t * E;
        const float *post = hp->s->post + (size_t)t * HC, *C = hp->s->comb + (size_t)t * HC * HC;
        float *Y = hp->s->X2 + (size_t)t * HC * E;
        for (int i = 0; i < HC; i++)
            for (int d = d0; d < d1; d++) {
                float v = post[i] * F[d];
                for (int j = 0; j < HC; j++) v += C[HC * j + i] * X[(size_t)j * E + d];
                Y[(size_t)i * E + d] = v;
            }
    }
}

static void hc_post(const ds4_model *m, scratch *s, int n) {
    const ds4_config *c = &m->cfg;
    hc_post_ctx hp = {c, s};
    ds4_pool_for(m->pool, (int64_t)n * ((c->n_embd + 255) / 256), 2, hc_post_range, &hp);
    float *tmp = s->X;
    s->X = s->X2;
    s->X2 = tmp;
}

/* §6: y <- y - s·(v·y)·v per token row. */
static void steer(const ds4_model *m, uint32_t il, float scale, float *y, int n) {
    if (scale == 0.0f || !m->steer) return;
    const int E = (int)m->cfg.n_embd;
    const float *v = m->steer + (size_t)il * E;
    for (int t = 0; t < n; t++) {
        float *r = y + (size_t)t * E, dot = 0.0f;
        for (int i = 0; i < E; i++) dot += r[i] * v[i];
        for (int i = 0; i < E; i++) r[i] = r[i] - scale * dot * v[i];
    }
}

static void capture(const ds4_session *ss, uint32_t il, int comp, const float *y, int n, int64_t pos0) {
    if (!ss->capture) return;
    const int E = (int)ss->m->cfg.n_embd;
    for (int t = 0; t < n; t++) ss->capture(ss->capture_ud, (int)il, comp, (int)(pos0 + t), y + (size_t)t * E, E);
}

static void rope_rows(const ds4_rope *rope, float *x, int n, int64_t pos0, int nh, int width, int inverse) {
    float c[512], s[512];
    for (int t = 0; t < n; t++) {
        ds4_rope_cs(rope, pos0 + t, c, s);
        ds4_rope_apply(x + (size_t)t * nh * width, nh, width, rope->n_rot, c, s, inverse);
    }
}

/* Per-head RMSNorm of q (no weight), then its RoPE, heads split across the
 * pool (both per head; the rotation table is recomputed per part, the same
 * values as the serial rope_rows'). */
typedef struct { float *q; int D, H; float eps; const ds4_rope *rope; int64_t pos0; } head_norm_ctx;

static void head_norm_range(void *vctx, int64_t h0, int64_t h1) {
    const head_norm_ctx *c = vctx;
    float cs[512], sn[512];
    int64_t t_cs = -1;
    for (int64_t h = h0; h < h1; h++) {
        const int64_t t = h / c->H;
        if (t != t_cs) { ds4_rope_cs(c->rope, c->pos0 + t, cs, sn); t_cs = t; }
        ds4_rmsnorm(c->q + h * c->D, NULL, c->q + h * c->D, c->D, c->eps);
        ds4_rope_apply(c->q + h * c->D, 1, c->D, c->rope->n_rot, cs, sn, 0);
    }
}

static void attention_layer(ds4_session *ss, uint32_t il, scratch *s, int n, int64_t pos0) {
    const ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    const ds4_layer_weights *L = &m->w.layer[il];
    const uint32_t E = c->n_embd, D = c->head_dim, H = c->n_head, r = c->compress_ratio[il];
    const ds4_rope *rope = r ? &m->rope_comp : &m->rope_dense;

    for (int t = 0; t < n; t++)
        ds4_rmsnorm(s->a + (size_t)t * E, ds4_wt_f32(&L->attn_norm), s->xn + (size_t)t * E, (int)E, c->rms_eps);
    /* Every projection of xn in one parallel loop (one hand-off, one input
     * quantization): q_a, kv, and the compressors' and indexer's. */
    const int idx_on = r == 4 && (pos0 + n) / 4 > (int64_t)c->idx_top_k;
    const ds4_wt *pw[7] = {&L->q_a, &L->kv};
    float *py[7] = {s->qa, s->kvr};
    int np = 2;
    if (r) { pw[np] = &L->cmp_kv; py[np++] = s->cmp_kv; pw[np] = &L->cmp_gate; py[np++] = s->cmp_gate; }
    if (r == 4) { pw[np] = &L->icmp_kv; py[np++] = s->icmp_kv; pw[np] = &L->icmp_gate; py[np++] = s->icmp_gate; }
    if (idx_on) { pw[np] = &L->idx_proj; py[np++] = s->wI; }
    ds4_cpu_matmul_multi(m->pool, np, pw, s->xn, n, py, m->exact);
    for (int t = 0; t < n; t++)
        ds4_rmsnorm(s->qa + (size_t)t * c->q_lora, ds4_wt_f32(&L->q_a_norm), s->qr + (size_t)t * c->q_lora,
                    (int)c->q_lora, c->rms_eps);
    ds4_cpu_matmul(m->pool, &L->q_b, s->qr, n, 1, s->q, m->exact);
    head_norm_ctx hn = {s->q, (int)D, (int)H, c->rms_eps, rope, pos0};
    ds4_pool_for(m->pool, (int64_t)n * H, 8, head_norm_range, &hn);
    for (int t = 0; t < n; t++)
        ds4_rmsnorm(s->kvr + (size_t)t * D, ds4_wt_f32(&L->kv_norm), s->kvv + (size_t)t * D, (int)D, c->rms_eps);
    rope_rows(rope, s->kvv, n, pos0, 1, (int)D, 0);
    for (int t = 0; t < n; t++) ds4_fp8_kv(s->kvv + (size_t)t * D, (int)(D - c->n_rot));

    ds4_attn_args a = {.cfg = c, .pool = m->pool, .kv = &ds4_cpu(ss)->kv[il], .ratio = r,
                       .raw_cap = ds4_cpu(ss)->raw_cap, .comp_cap = ds4_cpu(ss)->comp_cap, .rope = rope, .n = n, .pos0 = pos0, .q = s->q, .kvrow = s->kvv,
                       .sinks = ds4_wt_f32(&L->sinks), .o = s->o};
    if (r) {
        a.cmp_kv = s->cmp_kv;
        a.cmp_gate = s->cmp_gate;
        a.cmp_ape = ds4_wt_f16(&L->cmp_ape);
        a.cmp_norm = ds4_wt_f32(&L->cmp_norm);
    }
    if (r == 4) {
        const uint32_t IH = c->idx_head, ID = c->idx_head_dim;
        a.icmp_kv = s->icmp_kv;
        a.icmp_gate = s->icmp_gate;
        a.icmp_ape = ds4_wt_f16(&L->icmp_ape);
        a.icmp_norm = ds4_wt_f32(&L->icmp_norm);
        /* The indexer query and head weights are read only once the cache
         * outgrows top-k (spec §4.6.5); before that (context below ~4·top-k)
         * skipping them saves reading their weights, ~4% of a decode step. */
        if (idx_on) {
            ds4_cpu_matmul(m->pool, &L->idx_q_b, s->qr, n, 1, s->qI, m->exact);
            rope_rows(rope, s->qI, n, pos0, (int)IH, (int)ID, 0);
            for (size_t h = 0; h < (size_t)n * IH; h++) ds4_iqat(s->qI + h * ID);
            const float wscale = 1.0f / sqrtf((float)(ID * IH));
            for (size_t h = 0; h < (size_t)n * IH; h++) s->wI[h] = s->wI[h] * wscale;
            a.qI = s->qI;
            a.wI = s->wI;
        }
    }
    ds4_cpu_attention(&a);
    ds4_cpu_matmul(m->pool, &L->out_a, s->o, n, (int)c->o_groups, s->lo, m->exact);
    ds4_cpu_matmul(m->pool, &L->out_b, s->lo, n, 1, s->fo, m->exact);
}

static void ffn_layer(ds4_session *ss, uint32_t il, scratch *s, int n, const int32_t *tokens) {
    const ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    const ds4_layer_weights *L = &m->w.layer[il];
    const uint32_t E = c->n_embd, F = c->ff_exp;
    const float clampv = c->swiglu_clamp[il];
    float *xf = s->xn; /* the attention's normed input is dead by now */
    for (int t = 0; t < n; t++)
        ds4_rmsnorm(s->a + (size_t)t * E, ds4_wt_f32(&L->ffn_norm), xf + (size_t)t * E, (int)E, c->rms_eps);
    ds4_cpu_moe(m, il, xf, tokens, n, s->moe);

    /* Shared expert: one Q8_0 quantization of xf serves gate and up; their
     * rows, the SwiGLU and its quantization run in one parallel loop. */
    const size_t blocks = E / 32;
    ds4_act_q8_0 *xq = malloc(sizeof *xq * blocks * (size_t)n), *hq = malloc(sizeof *hq * (F / 32) * (size_t)n);
    ds4_cpu_quantize_q8_0(m->pool, xf, xq, (int64_t)(blocks * (size_t)n));
    ds4_cpu_swiglu_q8_0(m->pool, &L->gate_sh, &L->up_sh, xq, n, clampv, hq, m->exact);
    ds4_cpu_matmul_q8_0_pre(m->pool, &L->down_sh, hq, n, 1, s->fo, m->exact);
    free(xq);
    free(hq);
    for (size_t i = 0; i < (size_t)n * E; i++) s->fo[i] = s->moe[i] + s->fo[i];
}

/* §4.8 for one token's state X (HC × E). */
static void output_head(const ds4_model *m, const float *X, float *u, float *logits) {
    const ds4_config *c = &m->cfg;
    const int HC = (int)c->n_hc, E = (int)c->n_embd;
    ds4_rmsnorm(X, NULL, u, HC * E, c->rms_eps);
    float hh[16], w[16];
    for (int i = 0; i < HC; i++)
        hh[i] = ds4_vec_dot_f16_f32((int64_t)HC * E,
                                    ds4_wt_f16(&m->w.out_hc_fn) + (size_t)i * HC * E, u);
    const float *scale = ds4_wt_f32(&m->w.out_hc_scale), *base = ds4_wt_f32(&m->w.out_hc_base);
    for (int i = 0; i < HC; i++) w[i] = ds4_sigmoid_stable(hh[i] * scale[0] + base[i]) + c->hc_eps;
    float *y = malloc(sizeof(float) * 2 * (size_t)E), *yn = y + E;
    hc_weighted_sum(X, w, HC, E, y);
    ds4_rmsnorm(y, ds4_wt_f32(&m->w.out_norm), yn, E, c->rms_eps);
    ds4_cpu_matmul(m->pool, &m->w.output, yn, 1, 1, logits, m->exact);
    free(y);
}

/* Unseen slots of the current compressor window go back to (0, -1e30) so the
 * state does not depend on how the tokens were batched (spec §4.10). */
static void canonical_frontiers(ds4_session *ss, int n_after) {
    const ds4_config *c = &ss->m->cfg;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        const uint32_t r = c->compress_ratio[il];
        if (!r) continue;
        ds4_layer_kv *kv = &ds4_cpu(ss)->kv[il];
        const uint32_t s = (uint32_t)(n_after % (int)r), first = r == 4 ? 4 + s : s, rows = r == 4 ? 8 : r;
        const uint32_t Wc = ds4_cmp_lanes(r) * c->head_dim;
        for (uint32_t row = first; row < rows; row++)
            for (uint32_t j = 0; j < Wc; j++) {
                kv->cmp_sv[(size_t)row * Wc + j] = 0.0f;
                kv->cmp_sk[(size_t)row * Wc + j] = -1e30f;
            }
        if (r == 4) {
            const uint32_t Wi = 2 * c->idx_head_dim;
            for (uint32_t row = first; row < 8; row++)
                for (uint32_t j = 0; j < Wi; j++) {
                    kv->icmp_sv[(size_t)row * Wi + j] = 0.0f;
                    kv->icmp_sk[(size_t)row * Wi + j] = -1e30f;
                }
        }
    }
}

int ds4_cpu_forward(ds4_session *ss, const int32_t *tokens, int n, float *logits_all, ds4_err *err) {
    ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    scratch s;
    if (scratch_init(&s, c, n)) {
        scratch_free(&s);
        return ds4_errf(err, "out of memory for a batch of %d tokens", n);
    }
    const uint32_t E = c->n_embd, HC = c->n_hc;
    const int64_t pos0 = ss->n;
    for (int t = 0; t < n; t++) {
        const uint16_t *row = ds4_wt_f16(&m->w.embd) + (size_t)tokens[t] * E;
        float *X = s.X + (size_t)t * HC * E;
        for (uint32_t d = 0; d < E; d++) X[d] = ds4_f16_to_f32(row[d]);
        for (uint32_t h = 1; h < HC; h++) memcpy(X + (size_t)h * E, X, sizeof(float) * E);
    }
    for (uint32_t il = 0; il < c->n_layer; il++) {
        const ds4_layer_weights *L = &m->w.layer[il];
        hc_pre(m, &L->hc_attn_fn, &L->hc_attn_scale, &L->hc_attn_base, &s, n);
        attention_layer(ss, il, &s, n, pos0);
        capture(ss, il, DS4_CAPTURE_ATTN_OUT, s.fo, n, pos0);
        steer(m, il, ss->steer_attn, s.fo, n);
        hc_post(m, &s, n);
        hc_pre(m, &L->hc_ffn_fn, &L->hc_ffn_scale, &L->hc_ffn_base, &s, n);
        ffn_layer(ss, il, &s, n, tokens);
        capture(ss, il, DS4_CAPTURE_FFN_OUT, s.fo, n, pos0);
        steer(m, il, ss->steer_ffn, s.fo, n);
        hc_post(m, &s, n);
    }
    for (int t = 0; t < n; t++) {
        if (!logits_all && t != n - 1) continue;
        float *dst = logits_all ? logits_all + (size_t)t * c->n_vocab : ss->logits;
        output_head(m, s.X + (size_t)t * HC * E, s.u, dst);
        if (logits_all && t == n - 1) memcpy(ss->logits, dst, sizeof(float) * c->n_vocab);
    }
    canonical_frontiers(ss, ss->n + n);
    scratch_free(&s);
    return 0;
}
