/* forward.c - the CUDA backend's forward pass: cpu/forward.c step for step,
 * with every step a kernel of cuda/ops.h on one stream. Layer-major over a
 * batch of up to BATCH tokens; the cache-reading part runs token by token in
 * position order (as cpu/attention.c), so prefill and decode agree.
 *
 * RoPE cos/sin come from host tables computed with the CPU's own
 * ds4_rope_cs (glibc sinf/cosf), uploaded as positions are first reached. */
#ifdef DS4_HAVE_CUDA
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/cuda.h"
#include "engine/cuda/gemm.h"
#include "engine/cuda/ops.h"
#include "quant/quant.h"

/* Most tokens per batch; scratch grows to the largest batch a session hands
 * over (its prefill chunk: the backend's 2048 unless set), which the grouped
 * experts reward (H100, 8-layer synth: 3436 -> 4837 tok/s at 2k from 256- to
 * 1024-token chunks; 5305 at 8k with 2048).
 * DS4_CUDA_BATCH overrides it (prefill experiments). */
static int batch_tokens(void) {
    static int b;
    if (!b) {
        const char *e = getenv("DS4_CUDA_BATCH");
        b = e && atoi(e) >= 1 && atoi(e) <= 8192 ? atoi(e) : 2048;
    }
    return b;
}
#define BATCH batch_tokens()

/* Set while a decode step is captured into a CUDA graph: the indexer then
 * always runs (it decides on the device whether it has anything to do). */
static int g_graph;

void ds4_cuda_scratch_free(cu_scratch *sc) {
    float *f[] = {sc->X, sc->X2, sc->a, sc->xn, sc->fo, sc->pre, sc->post, sc->comb, sc->u, sc->mix, sc->qa,
                  sc->qr, sc->q, sc->o, sc->kvr, sc->kvv, sc->lo, sc->cmp_kv, sc->cmp_gate, sc->icmp_kv,
                  sc->icmp_gate, sc->qI, sc->wI, sc->moe, sc->shg, sc->shu, sc->lg, sc->w, sc->g, sc->up, sc->dout,
                  sc->hh, sc->ow, sc->y, sc->yn, sc->logits};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) ds4cu_free(f[i]);
    ds4cu_free(sc->sel);
    ds4cu_free(sc->tokens);
    ds4cu_free(sc->kvh);
    ds4cu_free(sc->isel);
    ds4cu_free(sc->xq);
    ds4cu_free(sc->xqK);
    ds4cu_free(sc->mqK);
    memset(sc, 0, sizeof *sc);
}

static int scratch_init(cu_scratch *sc, const ds4_config *c, int n) {
    const size_t N = (size_t)n, E = c->n_embd, HC = c->n_hc, D = c->head_dim, H = c->n_head, K = c->n_expert_used;
    const size_t P = N * K, F = c->ff_exp, M = 2 * HC + HC * HC;
    float **f[] = {&sc->X, &sc->X2, &sc->a, &sc->xn, &sc->fo, &sc->pre, &sc->post, &sc->comb, &sc->u, &sc->mix,
                   &sc->qa, &sc->qr, &sc->q, &sc->o, &sc->kvr, &sc->kvv, &sc->lo, &sc->cmp_kv, &sc->cmp_gate,
                   &sc->icmp_kv, &sc->icmp_gate, &sc->qI, &sc->wI, &sc->moe, &sc->shg, &sc->shu, &sc->lg, &sc->w,
                   &sc->g, &sc->up, &sc->dout, &sc->hh, &sc->ow, &sc->y, &sc->yn, &sc->logits};
    const size_t sz[] = {N * HC * E, N * HC * E, N * E, N * E, N * E, N * HC, N * HC, N * HC * HC, N * HC * E, N * M,
                         N * c->q_lora, N * c->q_lora, N * H * D, N * H * D, N * D, N * D,
                         N * c->o_groups * c->o_lora, N * 2 * D, N * 2 * D, N * 2 * c->idx_head_dim,
                         N * 2 * c->idx_head_dim, N * c->idx_head * c->idx_head_dim, N * c->idx_head, N * E, N * F,
                         N * F, N * c->n_expert, P, P * F, P * F, P * E, N * HC, N * HC, N * E, N * E,
                         N * c->n_vocab};
    _Static_assert(sizeof sz / sizeof sz[0] == sizeof f / sizeof f[0], "one size per scratch buffer");
    memset(sc, 0, sizeof *sc);
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++)
        if (!(*f[i] = ds4cu_malloc(sizeof(float) * (sz[i] ? sz[i] : 1)))) return -1;
    size_t wmax = H * D;
    const size_t others[] = {E, HC * E, c->q_lora, F, (size_t)c->o_groups * c->o_lora};
    for (size_t i = 0; i < 5; i++) if (others[i] > wmax) wmax = others[i];
    if (!(sc->sel = ds4cu_malloc(sizeof(int32_t) * P)) || !(sc->tokens = ds4cu_malloc(sizeof(int32_t) * N)) ||
        !(sc->kvh = ds4cu_malloc(sizeof(float) * N * D)) ||
        !(sc->isel = ds4cu_malloc(sizeof(int32_t) * N * (c->idx_top_k ? c->idx_top_k : 1))) ||
        !(sc->xq = ds4cu_malloc(sizeof(ds4_act_q8_0) * N * (wmax / 32 + 1))) ||
        !(sc->xqK = ds4cu_malloc(sizeof(ds4_block_q8_K) * N * (E / 256 + 1))) ||
        !(sc->mqK = ds4cu_malloc(sizeof(ds4_block_q8_K) * P * (F / 256 + 1))))
        return -1;
    sc->cap = n;
    return 0;
}

/* Cos/sin rows for positions [have, upto) of both RoPE kinds, on every
 * segment's device. */
static int rope_ensure(ds4_session *ss, int upto) {
    cu_session *cs = cu_s(ss);
    const ds4_model *m = ss->m;
    const int nr = (int)m->cfg.n_rot;
    if (upto <= cs->rope_have) return 0;
    /* Ahead in steps of 256 positions: a decode step then finds its row
     * there instead of paying a synchronous upload of its own. */
    upto = (upto + 255) / 256 * 256;
    if (upto > ss->ctx) upto = ss->ctx;
    const int from = cs->rope_have, cnt = upto - from, cur = cs->cur;
    float *h = malloc(sizeof(float) * (size_t)cnt * nr);
    if (!h) return -1;
    const ds4_rope *ropes[2] = {&m->rope_dense, &m->rope_comp};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < cnt; i++) ds4_rope_cs(ropes[k], from + i, h + (size_t)i * nr, h + (size_t)i * nr + nr / 2);
        for (int g = 0; g < cs->n_seg; g++)
            if (ds4_cuda_use(m, NULL, g) ||
                ds4cu_h2d(cs->seg[g].rope[k] + (size_t)from * nr, h, sizeof(float) * (size_t)cnt * nr)) {
                free(h);
                return -1;
            }
    }
    free(h);
    cs->rope_have = upto;
    return ds4_cuda_use(m, cs, cur);
}

/* Q8_0 products of `cnt` matrices of one width over the activation already
 * quantized in sc->xq: at decode one staged launch for all of them
 * (cuda/matvec.cu), else the general kernel per matrix. */
static void mv_q8_0(const ds4_model *m, cu_scratch *sc, int cnt, const ds4_wt *const *W, float *const *y, int n,
                    int groups) {
    const int64_t in = (int64_t)W[0]->ne[0];
    if (n == 1 && cnt <= 6) {
        const void *ws[6];
        int64_t outs[6];
        int ok = 1;
        for (int k = 0; k < cnt; k++) {
            ws[k] = cu_w(m, W[k]);
            outs[k] = (int64_t)W[k]->ne[1];
            ok &= W[k]->type == DS4_TYPE_Q8_0 && (int64_t)W[k]->ne[0] == in && W[k]->row_bytes == W[0]->row_bytes;
        }
        /* fast mode: reassociated row sums (mv_q8_fast.cu; DS4_CUDA_Q8FAST=0 keeps the exact kernels) */
        if (ok && !m->exact && !ds4cu_mv_q8_0_fast(cnt, ws, W[0]->row_bytes, in, outs, groups, sc->xq, y, 0)) return;
        if (ok && !ds4cu_matvec_q8_0_dec(cnt, ws, W[0]->row_bytes, in, outs, groups, sc->xq, y)) return;
    }
    for (int k = 0; k < cnt; k++)
        ds4cu_gemm_q8_0(cu_w(m, W[k]), W[k]->row_bytes, in, (int64_t)W[k]->ne[1], groups, sc->xq, n, y[k]);
}

/* Exact mode's F16 products at decode through the index-order decode kernel
 * (cuda/matvec.cu ds4cu_matvec_f16_exact_dec: a block per row, products in
 * parallel, one in-order chain); DS4_CUDA_F16X=0 falls back to the general
 * one-thread-per-output kernel. */
static int f16x_enabled(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DS4_CUDA_F16X");
        v = !(e && atoi(e) == 0);
    }
    return v;
}

/* y = W·x for a batch, activation handling per weight type (cpu/matmul.c). */
static void mm(const ds4_model *m, cu_scratch *sc, const ds4_wt *W, const float *x, int n, int groups, float *y) {
    const int64_t in = (int64_t)W->ne[0], out = (int64_t)W->ne[1];
    const void *w = cu_w(m, W);
    if (W->type == DS4_TYPE_Q8_0) {
        ds4cu_quant_q8_0(x, sc->xq, n, in * groups);
        mv_q8_0(m, sc, 1, &W, &y, n, groups);
    } else if (W->type == DS4_TYPE_F16) {
        if (n == 1 && !m->exact && groups == 1 && !ds4cu_matvec_f16_dec(1, &w, &W->row_bytes, &in, &out, &x, &y))
            return;
        if (n == 1 && m->exact && groups == 1 && f16x_enabled() &&
            !ds4cu_matvec_f16_exact_dec(1, &w, &W->row_bytes, &in, &out, &x, &y))
            return;
        ds4cu_gemm_f16(w, W->row_bytes, in, out, groups, x, n, y, m->exact);
    } else {
        ds4cu_matvec_f32(w, W->row_bytes, in, out, groups, x, n, y);
    }
}

/* Several F16 products (each its own input) in one decode launch when the
 * sums may be reassociated (m->exact < 0), or in index order (exact mode,
 * unless DS4_CUDA_F16X=0); else one mm each. */
static void mm_f16_multi(const ds4_model *m, cu_scratch *sc, int cnt, const ds4_wt *const *W, const float *const *x,
                         float *const *y, int n) {
    if (n == 1 && cnt <= 6 && (!m->exact || f16x_enabled())) {
        const void *ws[6];
        size_t rbs[6];
        int64_t ins[6], outs[6];
        int ok = 1;
        for (int k = 0; k < cnt; k++) {
            ws[k] = cu_w(m, W[k]);
            rbs[k] = W[k]->row_bytes;
            ins[k] = (int64_t)W[k]->ne[0];
            outs[k] = (int64_t)W[k]->ne[1];
            ok &= W[k]->type == DS4_TYPE_F16;
        }
        if (ok && !(m->exact ? ds4cu_matvec_f16_exact_dec : ds4cu_matvec_f16_dec)(cnt, ws, rbs, ins, outs, x, y))
            return;
    }
    for (int k = 0; k < cnt; k++) mm(m, sc, W[k], x[k], n, 1, y[k]);
}

/* Fast decode (m->exact < 0, one token): the HC pre-mix is done by the
 * sub-layer's first kernel (norm_in: cuda/hc_mixnorm.cu, else the two of
 * cuda/fused.cu), so hc_pre launches nothing. sc->moe (unused otherwise)
 * holds the slice partials. */
static int hc_fused(const ds4_model *m, const cu_scratch *sc, const ds4_wt *fn, int n) {
    const ds4_config *c = &m->cfg;
    return n == 1 && !m->exact && c->n_hc == 4 && fn->type == DS4_TYPE_F16 && fn->row_bytes % 16 == 0 &&
           ((uintptr_t)cu_w(m, fn) & 15) == 0 && (c->n_hc * c->n_embd) % 8 == 0 && c->n_embd <= 12288 &&
           ds4cu_hc_fast_scratch(4, (int)c->n_embd) <= sizeof(float) * (size_t)sc->cap * c->n_embd;
}

/* DS4_CUDA_HCMIX=0: the two-launch fast pre-mix (k_hc_part + a one-block
 * finish) instead of hc_mixnorm.cu's one launch; DS4_CUDA_HCFOLD=0: hc_post
 * as its own launch instead of inside the next pre-mix (A/B knobs). */
static int env_on(const char *name) {
    const char *e = getenv(name);
    return !(e && atoi(e) == 0);
}
static int hcmix_enabled(void) {
    static int v = -1;
    if (v < 0) v = env_on("DS4_CUDA_HCMIX");
    return v;
}
static int hcfold_enabled(void) {
    static int v = -1;
    if (v < 0) v = env_on("DS4_CUDA_HCFOLD");
    return v;
}
/* DS4_CUDA_HCM_DEFER=0: the pre-mix runs its own Sinkhorn (A/B knob). */
static int hcdefer_enabled(void) {
    static int v = -1;
    if (v < 0) v = env_on("DS4_CUDA_HCM_DEFER");
    return v;
}

/* Deferred hc_post (fast decode): t_fold is set while the one-launch pre-mix
 * runs in this forward pass; hc_post then only marks itself pending
 * (t_pending) and the next pre-mix computes it from X, fo, post and comb
 * (nothing reads X in between); whatever else would read X flushes it first
 * (hc_flush), and forward_kernels flushes after its layers. Per thread: a
 * forward pass runs on one thread. */
static _Thread_local int t_fold, t_pending;

/* Deferred Sinkhorn (fast decode): when the sub-layer has a later kernel
 * that can carry it (k_qkv_post, k_route: both outlast its ~3 us), the
 * pre-mix leaves the 16 exps in comb (t_sink) and that kernel's extra block
 * makes the comb in place (sink_take); the pre-mix's own tail was the
 * Sinkhorn's 40 dependent steps. Whatever reads comb first resolves it
 * (sink_flush: one small launch), so a carrier that never comes only costs
 * time. */
static _Thread_local int t_sink;

static void sink_flush(const ds4_config *c, cu_scratch *sc) {
    if (!t_sink) return;
    ds4cu_hc_sinkhorn(sc->comb, (int)c->sinkhorn_iter, c->hc_eps);
    t_sink = 0;
}
static float *sink_take(cu_scratch *sc) {
    if (!t_sink) return NULL;
    t_sink = 0;
    return sc->comb;
}

static void swap_x(cu_scratch *sc) {
    float *t = sc->X;
    sc->X = sc->X2;
    sc->X2 = t;
}

static void hc_flush(const ds4_config *c, cu_scratch *sc) {
    if (!t_pending) return;
    sink_flush(c, sc);
    ds4cu_hc_post(sc->X, sc->fo, sc->post, sc->comb, 1, (int)c->n_hc, (int)c->n_embd, sc->X2);
    swap_x(sc);
    t_pending = 0;
}

/* A decoded token's sub-layer input: the HC pre-mix (when fused), its
 * RMSNorm with weight w into y, and the activation codes the sub-layer's
 * products need (q8_0 into sc->xq, q8_K into sc->xqK when want_k): one
 * launch (hc_mixnorm.cu, with the pending hc_post folded in), else one or
 * two. defer: the caller launches a Sinkhorn carrier next (sink_take). */
static void norm_in(const ds4_model *m, cu_scratch *sc, const ds4_wt *fn, const ds4_wt *scale, const ds4_wt *base,
                    const ds4_wt *w, float *y, int want_k, int defer) {
    const ds4_config *c = &m->cfg;
    const int E = (int)c->n_embd;
    sink_flush(c, sc); /* the folded hc_post reads comb */
    if (hc_fused(m, sc, fn, 1)) {
        const int fold = t_pending && hcfold_enabled();
        if (!fold) hc_flush(c, sc);
        defer = defer && hcdefer_enabled();
        if (hcmix_enabled() && ds4cu_hc_mixnorm_scratch() <= sizeof(float) * (size_t)sc->cap * c->n_embd &&
            !ds4cu_hc_mixnorm_ex(cu_w(m, fn), fn->row_bytes, cu_w(m, scale), cu_w(m, base), sc->X,
                                 fold ? sc->fo : NULL, sc->post, sc->comb, sc->X2, (int)c->n_hc, E,
                                 (int)c->sinkhorn_iter, c->hc_eps, c->rms_eps, sc->moe, sc->pre, sc->post, sc->comb,
                                 cu_w(m, w), y, sc->xq, want_k ? sc->xqK : NULL, defer)) {
            if (fold) {
                swap_x(sc);
                t_pending = 0;
            }
            t_fold = 1;
            t_sink = defer;
            return;
        }
        hc_flush(c, sc);
        t_fold = 0;
        if (!ds4cu_hc_pre_fast(cu_w(m, fn), fn->row_bytes, cu_w(m, scale), cu_w(m, base), sc->X, (int)c->n_hc, E,
                               (int)c->sinkhorn_iter, c->hc_eps, c->rms_eps, sc->moe, sc->pre, sc->post, sc->comb,
                               cu_w(m, w), y, sc->xq, want_k ? sc->xqK : NULL))
            return;
    }
    hc_flush(c, sc);
    ds4cu_norm_quant(NULL, NULL, 0, sc->a, NULL, cu_w(m, w), y, 1, E, c->rms_eps, sc->xq, want_k ? sc->xqK : NULL);
}

static void hc_pre(const ds4_model *m, cu_scratch *sc, const ds4_wt *fn, const ds4_wt *scale, const ds4_wt *base,
                   int n) {
    const ds4_config *c = &m->cfg;
    const int HC = (int)c->n_hc, E = (int)c->n_embd;
    if (hc_fused(m, sc, fn, n)) return;
    hc_flush(c, sc);
    sink_flush(c, sc); /* hc_pre rewrites comb: a pending one must not run on it later */
    t_fold = 0;
    ds4cu_rmsnorm(sc->X, NULL, sc->u, n, HC * E, c->rms_eps);
    mm(m, sc, fn, sc->u, n, 1, sc->mix);
    ds4cu_hc_pre(sc->mix, cu_w(m, scale), cu_w(m, base), sc->X, n, HC, E, (int)c->sinkhorn_iter, c->hc_eps, sc->pre,
                 sc->post, sc->comb, sc->a);
}

static void hc_post(const ds4_config *c, cu_scratch *sc, int n) {
    hc_flush(c, sc);
    if (n == 1 && t_fold && hcfold_enabled()) {
        t_pending = 1;
        return;
    }
    sink_flush(c, sc);
    ds4cu_hc_post(sc->X, sc->fo, sc->post, sc->comb, n, (int)c->n_hc, (int)c->n_embd, sc->X2);
    swap_x(sc);
}

static void steer(ds4_model *m, uint32_t il, float scale, float *y, int n) {
    if (scale == 0.0f || !m->steer) return;
    ds4cu_steer(y, cu_m(m)->steer + (size_t)il * m->cfg.n_embd, n, (int)m->cfg.n_embd, scale);
}

static void attention_layer(ds4_session *ss, uint32_t il, cu_scratch *sc, int n, int64_t pos0) {
    const ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    const ds4_layer_weights *L = &m->w.layer[il];
    cu_session *cs = cu_s(ss);
    cu_layer *kv = &cs->kv[il];
    const int E = (int)c->n_embd, D = (int)c->head_dim, H = (int)c->n_head, nr = (int)c->n_rot;
    const uint32_t r = c->compress_ratio[il];
    const float *tab = cs->rope[r ? 1 : 0];

    if (n == 1 && L->q_a.type == DS4_TYPE_Q8_0 && L->kv.type == DS4_TYPE_Q8_0 && L->q_b.type == DS4_TYPE_Q8_0) {
        /* decode: norm + codes, q_a and kv in one launch, q_a_norm + codes, q_b,
         * then the head norms, RoPE and FP8 in one launch (cuda/fused.cu) */
        norm_in(m, sc, &L->hc_attn_fn, &L->hc_attn_scale, &L->hc_attn_base, &L->attn_norm, sc->xn, 0, 1);
        const ds4_wt *ws[2] = {&L->q_a, &L->kv};
        float *ys[2] = {sc->qa, sc->kvr};
        mv_q8_0(m, sc, 2, ws, ys, n, 1);
        ds4cu_norm_quant(NULL, NULL, 0, sc->qa, NULL, cu_w(m, &L->q_a_norm), sc->qr, 1, (int)c->q_lora, c->rms_eps,
                         sc->xq, NULL);
        const ds4_wt *qb = &L->q_b;
        mv_q8_0(m, sc, 1, &qb, &sc->q, n, 1);
        ds4cu_qkv_post_sk(sc->q, sc->kvr, cu_w(m, &L->kv_norm), sc->kvv, 1, H, D, nr, tab, pos0, c->rms_eps, D - nr,
                          sink_take(sc), (int)c->sinkhorn_iter, c->hc_eps);
    } else {
        if (hc_fused(m, sc, &L->hc_attn_fn, n))
            norm_in(m, sc, &L->hc_attn_fn, &L->hc_attn_scale, &L->hc_attn_base, &L->attn_norm, sc->xn, 0, 0);
        else
            ds4cu_rmsnorm(sc->a, cu_w(m, &L->attn_norm), sc->xn, n, E, c->rms_eps);
        if (L->q_a.type == DS4_TYPE_Q8_0 && L->kv.type == DS4_TYPE_Q8_0) { /* one quantization of xn for both */
            ds4cu_quant_q8_0(sc->xn, sc->xq, n, E);
            const ds4_wt *ws[2] = {&L->q_a, &L->kv};
            float *ys[2] = {sc->qa, sc->kvr};
            mv_q8_0(m, sc, 2, ws, ys, n, 1);
        } else {
            mm(m, sc, &L->q_a, sc->xn, n, 1, sc->qa);
            mm(m, sc, &L->kv, sc->xn, n, 1, sc->kvr);
        }
        ds4cu_rmsnorm(sc->qa, cu_w(m, &L->q_a_norm), sc->qr, n, (int)c->q_lora, c->rms_eps);
        mm(m, sc, &L->q_b, sc->qr, n, 1, sc->q);
        ds4cu_rmsnorm(sc->q, NULL, sc->q, n * H, D, c->rms_eps);
        ds4cu_rmsnorm(sc->kvr, cu_w(m, &L->kv_norm), sc->kvv, n, D, c->rms_eps);
        ds4cu_rope(sc->q, n, H, D, nr, tab, pos0, 0);
        ds4cu_rope(sc->kvv, n, 1, D, nr, tab, pos0, 0);
        ds4cu_fp8_kv(sc->kvv, n, D, D - nr);
    }
    const int IH = (int)c->idx_head, ID = (int)c->idx_head_dim;
    if (r) { /* the compressor and indexer projections, one launch at decode */
        const ds4_wt *ws[6] = {&L->cmp_kv, &L->cmp_gate, &L->icmp_kv, &L->icmp_gate, &L->idx_q_b, &L->idx_proj};
        const float *xs[6] = {sc->xn, sc->xn, sc->xn, sc->xn, sc->qr, sc->xn};
        float *ys[6] = {sc->cmp_kv, sc->cmp_gate, sc->icmp_kv, sc->icmp_gate, sc->qI, sc->wI};
        mm_f16_multi(m, sc, r == 4 ? 6 : 2, ws, xs, ys, n);
    }
    if (r == 4) {
        if (n != 1 || ds4cu_idx_post(sc->qI, sc->wI, n, IH, ID, nr, tab, pos0, 1.0f / sqrtf((float)(ID * IH)))) {
            ds4cu_rope(sc->qI, n, IH, ID, nr, tab, pos0, 0);
            ds4cu_iqat(sc->qI, n * IH);
            ds4cu_scale(sc->wI, (size_t)n * IH, 1.0f / sqrtf((float)(ID * IH)));
        }
    }
    /* The compressors first, for the whole batch (they read only projections);
     * then each token's indexer choice; then all tokens' attention at once. */
    const uint32_t nc0 = kv->n_comp;
    const int emitted = r ? (int)((pos0 + n) / r - pos0 / r) : 0;
    if (r) {
        ds4cu_compressor_gemm(kv->cmp_sv, kv->cmp_sk, sc->cmp_kv, sc->cmp_gate, cu_w(m, &L->cmp_ape), (int)r, D, pos0, n,
                              cu_w(m, &L->cmp_norm), c->rms_eps, tab, nr, 0, kv->comp, (int)kv->n_comp);
        kv->n_comp += (uint32_t)emitted;
    }
    const int32_t *sel = NULL;
    if (r == 4) {
        ds4cu_compressor_gemm(kv->icmp_sv, kv->icmp_sk, sc->icmp_kv, sc->icmp_gate, cu_w(m, &L->icmp_ape), 4, ID, pos0, n,
                              cu_w(m, &L->icmp_norm), c->rms_eps, tab, nr, 1, kv->idx, (int)kv->n_idx);
        kv->n_idx += (uint32_t)emitted;
        if (g_graph) {
            ds4cu_indexer_select(kv->idx, (int)cs->comp_cap, sc->qI, sc->wI, IH, ID, (int)c->idx_top_k, cs->isc,
                                 cs->iflag, sc->isel);
            sel = sc->isel;
        }
        /* prefill: every token's choice at once (-1: not covered, per token below) */
        const int ib = !g_graph && n > 1 ? ds4cu_indexer_batch(kv->idx, (int)nc0, pos0, n, sc->qI, sc->wI, IH, ID,
                                                              (int)c->idx_top_k, sc->isel)
                                         : -1;
        if (ib > 0) sel = sc->isel;
        for (int t = 0; t < n && !g_graph && ib < 0; t++) {
            const int64_t p = pos0 + t;
            const int nct = (int)nc0 + (int)((p + 1) / 4 - pos0 / 4);
            if (nct <= (int)c->idx_top_k) continue;
            ds4cu_indexer_select(kv->idx, nct, sc->qI + (size_t)t * IH * ID, sc->wI + (size_t)t * IH, IH, ID,
                                 (int)c->idx_top_k, cs->isc, cs->iflag, sc->isel + (size_t)t * c->idx_top_k);
            sel = sc->isel;
        }
    }
    /* decode: the scores and the weighted sums as two grids (cuda/attn.cu); the
     * logits buffer is free until the output head, and holds the scores */
    if (n != 1 ||
        ds4cu_attention_dec(sc->q, sc->o, sc->kvv, sc->kvh, kv->raw, (int)cs->raw_cap, pos0, (int)c->swa, kv->comp,
                            (int)nc0, r ? (int)((uint32_t)ss->ctx / r + 2) : 0, (int)r, sel, (int)c->idx_top_k,
                            cu_w(m, &L->sinks), H, D, 1.0f / sqrtf((float)D), sc->logits,
                            (size_t)sc->cap * c->n_vocab))
        ds4cu_attention(sc->q, sc->o, sc->kvv, sc->kvh, kv->raw, (int)cs->raw_cap, pos0, n, (int)c->swa, kv->comp,
                        (int)nc0, r ? (int)((uint32_t)ss->ctx / r + 2) : 0, (int)r, sel, (int)c->idx_top_k,
                        cu_w(m, &L->sinks), H, D, 1.0f / sqrtf((float)D));
    const ds4_wt *oa = &L->out_a;
    if (n == 1 && oa->type == DS4_TYPE_Q8_0 && !ds4cu_unrope_q8_0(sc->o, 1, H, D, nr, tab, pos0, sc->xq)) {
        mv_q8_0(m, sc, 1, &oa, &sc->lo, 1, (int)c->o_groups); /* decode: un-rotation fused with the codes */
    } else {
        ds4cu_rope(sc->o, n, H, D, nr, tab, pos0, 1);
        mm(m, sc, &L->out_a, sc->o, n, (int)c->o_groups, sc->lo);
    }
    mm(m, sc, &L->out_b, sc->lo, n, 1, sc->fo);
}

/* The FFN of one decoded token after norm_in (xn, its q8_0 and q8_K codes;
 * mm(gate_inp) leaves xq alone: the router is F16): the shared expert first
 * (into fo), then the routed experts in two staged launches, the second
 * adding the K products and fo as ds4cu_moe_sum does. Returns 0 (nothing
 * launched) when the routed or shared tensors do not fit that shape. */
static int ffn_decode(ds4_session *ss, uint32_t il, cu_scratch *sc) {
    const ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    const ds4_layer_weights *L = &m->w.layer[il];
    const int E = (int)c->n_embd, F = (int)c->ff_exp, K = (int)c->n_expert_used, X = (int)c->n_expert;
    const float clampv = c->swiglu_clamp[il];
    const ds4_wt *ge = &L->gate_exps, *ue = &L->up_exps, *de = &L->down_exps;
    if (L->gate_sh.type != DS4_TYPE_Q8_0 || L->up_sh.type != DS4_TYPE_Q8_0 || L->down_sh.type != DS4_TYPE_Q8_0 ||
        ge->row_bytes % 16 || de->row_bytes % 16 || ((uintptr_t)cu_w(m, ge) & 15) || ((uintptr_t)cu_w(m, ue) & 15) ||
        ((uintptr_t)cu_w(m, de) & 15) || (size_t)K * de->row_bytes > 32768 || ge->row_bytes > 16384)
        return 0;
    float *xf = sc->xn;
    mm(m, sc, &L->gate_inp, xf, 1, 1, sc->lg);
    const int hash = ds4_is_hash_layer(c, il);
    ds4cu_route_sk(sc->lg, 1, X, K, sc->tokens, hash ? cu_w(m, &L->tid2eid) : NULL,
                   (!hash && L->exp_bias.data) ? cu_w(m, &L->exp_bias) : NULL, c->expert_norm, c->expert_scale,
                   sc->sel, sc->w, sink_take(sc), (int)c->sinkhorn_iter, c->hc_eps);
    const ds4_wt *sh[2] = {&L->gate_sh, &L->up_sh};
    float *shy[2] = {sc->shg, sc->shu};
    mv_q8_0(m, sc, 2, sh, shy, 1, 1);
    ds4cu_swiglu_q8_0(sc->shg, sc->shu, sc->xq, 1, F, clampv);
    const ds4_wt *dsh = &L->down_sh;
    mv_q8_0(m, sc, 1, &dsh, &sc->fo, 1, 1);
    if (ds4cu_experts_gate_up_dec(ge->type, cu_w(m, ge), cu_w(m, ue), ge->row_bytes, E, F, sc->sel, K, K, sc->xqK,
                                  sc->g, sc->up)) {
        ds4cu_matvec_experts(ge->type, cu_w(m, ge), ge->row_bytes, E, F, sc->sel, K, K, sc->xqK, sc->g);
        ds4cu_matvec_experts(ue->type, cu_w(m, ue), ue->row_bytes, E, F, sc->sel, K, K, sc->xqK, sc->up);
    }
    ds4cu_swiglu_q8_K(sc->g, sc->up, sc->w, sc->mqK, K, F, clampv);
    if (ds4cu_experts_down_sum_dec(de->type, cu_w(m, de), de->row_bytes, F, E, sc->sel, K, sc->mqK, sc->fo, sc->fo)) {
        ds4cu_matvec_experts(de->type, cu_w(m, de), de->row_bytes, F, E, sc->sel, K, 1, sc->mqK, sc->dout);
        ds4cu_moe_sum(sc->dout, 1, K, E, sc->fo, sc->fo);
    }
    return 1;
}

static void ffn_layer(ds4_session *ss, uint32_t il, cu_scratch *sc, int n) {
    const ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    const ds4_layer_weights *L = &m->w.layer[il];
    const int E = (int)c->n_embd, F = (int)c->ff_exp, K = (int)c->n_expert_used, X = (int)c->n_expert;
    const float clampv = c->swiglu_clamp[il];
    float *xf = sc->xn;
    if (n == 1) norm_in(m, sc, &L->hc_ffn_fn, &L->hc_ffn_scale, &L->hc_ffn_base, &L->ffn_norm, xf, 1, 1);
    else ds4cu_rmsnorm(sc->a, cu_w(m, &L->ffn_norm), xf, n, E, c->rms_eps);

    /* routed experts (cpu/moe.c) */
    const int pairs = n * K;
    if (n == 1 && ffn_decode(ss, il, sc)) return;
    mm(m, sc, &L->gate_inp, xf, n, 1, sc->lg);
    const int hash = ds4_is_hash_layer(c, il);
    ds4cu_route(sc->lg, n, X, K, sc->tokens, hash ? cu_w(m, &L->tid2eid) : NULL,
                (!hash && L->exp_bias.data) ? cu_w(m, &L->exp_bias) : NULL, c->expert_norm, c->expert_scale, sc->sel,
                sc->w);
    const int32_t *grp = n > 1 ? ds4cu_experts_group(sc->sel, pairs, X) : NULL; /* prefill: by expert */
    ds4cu_quant_q8_K(xf, sc->xqK, n, E);
    ds4cu_experts_gemm(L->gate_exps.type, cu_w(m, &L->gate_exps), L->gate_exps.row_bytes, E, F, sc->sel, pairs, K,
                       sc->xqK, sc->g, grp, X);
    ds4cu_experts_gemm(L->up_exps.type, cu_w(m, &L->up_exps), L->up_exps.row_bytes, E, F, sc->sel, pairs, K,
                       sc->xqK, sc->up, grp, X);
    ds4cu_swiglu_q8_K(sc->g, sc->up, sc->w, sc->mqK, pairs, F, clampv);
    ds4cu_experts_gemm(L->down_exps.type, cu_w(m, &L->down_exps), L->down_exps.row_bytes, F, E, sc->sel, pairs, 1,
                       sc->mqK, sc->dout, grp, X);

    /* shared expert: one Q8_0 quantization of xf serves gate and up */
    ds4cu_quant_q8_0(xf, sc->xq, n, E);
    ds4cu_gemm_q8_0(cu_w(m, &L->gate_sh), L->gate_sh.row_bytes, E, F, 1, sc->xq, n, sc->shg);
    ds4cu_gemm_q8_0(cu_w(m, &L->up_sh), L->up_sh.row_bytes, E, F, 1, sc->xq, n, sc->shu);
    if (L->down_sh.type == DS4_TYPE_Q8_0) {
        ds4cu_swiglu_q8_0(sc->shg, sc->shu, sc->xq, n, F, clampv);
        ds4cu_gemm_q8_0(cu_w(m, &L->down_sh), L->down_sh.row_bytes, F, E, 1, sc->xq, n, sc->fo);
    } else {
        ds4cu_swiglu(sc->shg, sc->shu, NULL, n, F, clampv);
        mm(m, sc, &L->down_sh, sc->shg, n, 1, sc->fo);
    }
    ds4cu_moe_sum(sc->dout, n, K, E, sc->fo, sc->fo); /* moe + shared, as the CPU adds them */
}

/* §4.8 for rows [t0, t0+rows) of the batch; logits land in sc->logits. */
static void output_head(const ds4_model *m, cu_scratch *sc, int t0, int rows) {
    const ds4_config *c = &m->cfg;
    const int HC = (int)c->n_hc, E = (int)c->n_embd;
    const float *X = sc->X + (size_t)t0 * HC * E;
    ds4cu_rmsnorm(X, NULL, sc->u, rows, HC * E, c->rms_eps);
    mm(m, sc, &m->w.out_hc_fn, sc->u, rows, 1, sc->hh);
    ds4cu_out_weights(sc->hh, cu_w(m, &m->w.out_hc_scale), cu_w(m, &m->w.out_hc_base), rows, HC, c->hc_eps, sc->ow);
    if (m->w.output.type == DS4_TYPE_Q8_0) { /* stream sum + norm + codes in one launch */
        ds4cu_norm_quant(X, sc->ow, HC, NULL, sc->y, cu_w(m, &m->w.out_norm), sc->yn, rows, E, c->rms_eps, sc->xq,
                         NULL);
        const ds4_wt *ow = &m->w.output;
        mv_q8_0(m, sc, 1, &ow, &sc->logits, rows, 1);
        return;
    }
    ds4cu_hc_reduce(X, sc->ow, rows, HC, E, sc->y);
    ds4cu_rmsnorm(sc->y, cu_w(m, &m->w.out_norm), sc->yn, rows, E, c->rms_eps);
    mm(m, sc, &m->w.output, sc->yn, rows, 1, sc->logits);
}

/* m->steer to every segment's device (again when the host vectors change). */
static int upload_steer(ds4_model *m) {
    cu_model *cm = cu_m(m);
    if (!m->steer) return 0;
    const size_t n = (size_t)m->cfg.n_layer * m->cfg.n_embd;
    const int cur = cm->cur;
    for (int k = 0; k < cm->n_dev; k++) {
        cu_dev *d = &cm->dev[k];
        if (d->steer_src == m->steer) continue;
        if (ds4_cuda_use(m, NULL, k)) return -1;
        ds4cu_free(d->steer);
        d->steer = NULL;
        d->steer_src = NULL;
        if (!(d->steer = ds4cu_malloc(sizeof(float) * n))) return -1;
        if (ds4cu_h2d(d->steer, m->steer, sizeof(float) * n)) return -1;
        d->steer_src = m->steer;
    }
    return ds4_cuda_use(m, NULL, cur);
}

/* Every kernel of segment k for one batch, no transfers (so a decode step
 * can be captured): the embedding on the first, its layers, the head on the
 * last. The segment is current (ds4_cuda_use). */
static void forward_kernels(ds4_session *ss, int k, int n, int64_t pos0, int all_rows, int last) {
    ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    const cu_model *cm = cu_m(m);
    cu_scratch *sc = &cu_s(ss)->s;
    if (k == 0) ds4cu_embed(cu_w(m, &m->w.embd), sc->tokens, n, (int)c->n_embd, (int)c->n_hc, sc->X);
    for (uint32_t il = cm->dev[k].l0; il < cm->dev[k].l1; il++) {
        const ds4_layer_weights *L = &m->w.layer[il];
        hc_pre(m, sc, &L->hc_attn_fn, &L->hc_attn_scale, &L->hc_attn_base, n);
        attention_layer(ss, il, sc, n, pos0);
        steer(m, il, ss->steer_attn, sc->fo, n);
        hc_post(c, sc, n);
        hc_pre(m, sc, &L->hc_ffn_fn, &L->hc_ffn_scale, &L->hc_ffn_base, n);
        ffn_layer(ss, il, sc, n);
        steer(m, il, ss->steer_ffn, sc->fo, n);
        hc_post(c, sc, n);
    }
    hc_flush(c, sc); /* X complete for the head or the next segment */
    t_fold = 0;
    if (k < cm->n_dev - 1) return;
    if (all_rows) output_head(m, sc, 0, n);
    else if (last) output_head(m, sc, n - 1, 1);
}

/* The batch's tokens into every segment's scratch (hash-routed layers read
 * them wherever they run). */
static int upload_tokens(ds4_session *ss, const int32_t *tokens, int n) {
    cu_session *cs = cu_s(ss);
    for (int k = cs->n_seg - 1; k >= 0; k--)
        if (ds4_cuda_use(ss->m, cs, k) || ds4cu_h2d(cs->s.tokens, tokens, sizeof(int32_t) * (size_t)n)) return -1;
    return 0;
}

/* The hidden state X (n × n_hc × n_embd) from segment k-1 (current, its live
 * X is `from`) to segment k's `to`, then segment k current. */
static int hand_over(ds4_session *ss, int k, float *to, const float *from, int n) {
    const ds4_config *c = &ss->m->cfg;
    cu_model *cm = cu_m(ss->m);
    const size_t bytes = sizeof(float) * (size_t)n * c->n_hc * c->n_embd;
    if (ds4cu_handover(to, cm->dev[k].slot, from, cm->dev[k - 1].slot, bytes, cm->stage)) return -1;
    return ds4_cuda_use(ss->m, cu_s(ss), k);
}

static int forward_batch(ds4_session *ss, const int32_t *tokens, int n, int64_t pos0, float *logits_all, int last) {
    const ds4_config *c = &ss->m->cfg;
    cu_session *cs = cu_s(ss);
    if (upload_tokens(ss, tokens, n)) return -1; /* leaves segment 0 current */
    for (int k = 0; k < cs->n_seg; k++) {
        if (k > 0 && hand_over(ss, k, cs->seg[k].s.X, cs->s.X, n)) return -1;
        forward_kernels(ss, k, n, pos0, logits_all != NULL, last);
    }
    cu_scratch *sc = &cs->s; /* the last segment's: the logits */
    const size_t V = c->n_vocab;
    if (logits_all) {
        if (ds4cu_d2h(logits_all, sc->logits, sizeof(float) * V * (size_t)n)) return -1;
        if (last) memcpy(ss->logits, logits_all + (size_t)(n - 1) * V, sizeof(float) * V);
    } else if (last) {
        if (ds4cu_d2h(ss->logits, sc->logits, sizeof(float) * V)) return -1;
    }
    return ds4cu_sync();
}

static int graphs_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *g = getenv("DS4_CUDA_GRAPH"), *s = getenv("DS4_CUDA_SYNC"), *p = getenv("DS4_CUDA_PROFILE");
        on = !(g && atoi(g) == 0) && !(s && atoi(s) > 0) && !(p && atoi(p) > 0);
    }
    return on;
}

static void graphs_free(cu_session *cs) {
    for (int k = 0; k < cs->n_seg; k++) {
        ds4cu_graph_free(cs->seg[k].graph);
        cs->seg[k].graph = NULL;
    }
}

/* One token through the captured graphs, one per segment, X handed over
 * between them (captured on the second decode step of a session, after a
 * plain one has initialised every lazy table on every device). */
static int decode_graph(ds4_session *ss, int32_t token, float *logits_row) {
    ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    cu_session *cs = cu_s(ss);
    const int64_t p = ss->n;
    const int ns = cs->n_seg;
    if (cs->seg[0].graph && (cs->graph_steer_ffn != ss->steer_ffn || cs->graph_steer_attn != ss->steer_attn ||
                             cs->graph_steer != m->steer))
        graphs_free(cs);
    if (!cs->seg[0].graph && !cs->graph_warm) {
        cs->graph_warm = 1;
        return forward_batch(ss, &token, 1, p, logits_row, 1);
    }
    /* Enqueued, not waited for (the graph's first kernels come after them
     * on the same stream): two synchronous copies per step cost ~30 us. */
    cs->hin->pos = p;
    cs->hin->token = token;
    for (int k = ns - 1; k >= 0; k--)
        if (ds4_cuda_use(m, cs, k) || ds4cu_h2d_async(cs->s.tokens, &cs->hin->token, sizeof(int32_t)) ||
            ds4cu_h2d_async(cs->dpos, &cs->hin->pos, sizeof(int64_t)))
            return -1;
    if (!cs->seg[0].graph) {
        for (int k = 0; k < ns; k++) {
            if (ds4_cuda_use(m, cs, k) || ds4cu_sync() || ds4cu_graph_begin()) { graphs_free(cs); return -1; }
            ds4cu_set_dpos(cs->dpos);
            g_graph = 1;
            cs->seg[k].gx_in = cs->s.X; /* where the graph reads X and, after its layers, leaves it */
            forward_kernels(ss, k, 1, p, 0, 1);
            cs->seg[k].gx_out = cs->s.X;
            g_graph = 0;
            ds4cu_set_dpos(NULL);
            if (!(cs->seg[k].graph = ds4cu_graph_end())) { graphs_free(cs); return -1; }
        }
        cs->graph_steer_ffn = ss->steer_ffn;
        cs->graph_steer_attn = ss->steer_attn;
        cs->graph_steer = m->steer;
    }
    for (int k = 0; k < ns; k++) {
        if (k > 0 ? hand_over(ss, k, cs->seg[k].gx_in, cs->seg[k - 1].gx_out, 1) : ds4_cuda_use(m, cs, 0)) return -1;
        if (ds4cu_graph_launch(cs->seg[k].graph)) return -1;
    }
    const size_t V = c->n_vocab;
    if (ds4cu_d2h(ss->logits, cs->s.logits, sizeof(float) * V)) return -1;
    if (logits_row) memcpy(logits_row, ss->logits, sizeof(float) * V);
    /* The host's compressed-row counts, as the replayed kernels advanced them. */
    for (uint32_t il = 0; il < c->n_layer; il++) {
        const uint32_t r = c->compress_ratio[il];
        if (!r) continue;
        cs->kv[il].n_comp = (uint32_t)((p + 1) / r);
        if (r == 4) cs->kv[il].n_idx = cs->kv[il].n_comp;
    }
    return ds4cu_sync();
}

int ds4_cuda_forward(ds4_session *ss, const int32_t *tokens, int n, float *logits_all, ds4_err *err) {
    ds4_model *m = ss->m;
    const ds4_config *c = &m->cfg;
    cu_session *cs = cu_s(ss);
    cu_model *cm = cu_m(m);
    if (c->n_expert > 256 || c->n_expert_used > 16)
        return ds4_errf(err, "--backend cuda: %u experts, %u used: at most 256 and 16 supported", c->n_expert,
                        c->n_expert_used);
    const int want = n < BATCH ? n : BATCH;
    for (int k = 0; k < cs->n_seg; k++) {
        if (ds4_cuda_use(m, cs, k)) return ds4_errf(err, "--backend cuda: device %d: %s", cm->dev[k].id, ds4cu_error());
        if (cs->s.cap >= want) continue;
        graphs_free(cs); /* they baked in the old scratch pointers */
        ds4_cuda_scratch_free(&cs->s);
        if (scratch_init(&cs->s, c, want)) {
            ds4_cuda_scratch_free(&cs->s);
            return ds4_errf(err, "out of GPU memory on device %d for a batch of %d tokens: %s", cm->dev[k].id, want,
                            ds4cu_error());
        }
    }
    const size_t xbytes = sizeof(float) * (size_t)want * c->n_hc * c->n_embd;
    if (cs->n_seg > 1 && cm->stage_bytes < xbytes) { /* for hand-overs without peer access */
        ds4cu_host_free(cm->stage);
        cm->stage_bytes = 0;
        if (!(cm->stage = ds4cu_host_alloc(xbytes)))
            return ds4_errf(err, "--backend cuda: %zu bytes of pinned host memory: %s", xbytes, ds4cu_error());
        cm->stage_bytes = xbytes;
    }
    if (upload_steer(m) || rope_ensure(ss, ss->n + n) || ds4_cuda_use(m, cs, 0))
        return ds4_errf(err, "--backend cuda: uploading tables: %s", ds4cu_error());
    if (n == 1 && graphs_enabled()) {
        if (decode_graph(ss, tokens[0], logits_all))
            return ds4_errf(err, "--backend cuda: decode step (graph) at position %d: %s", ss->n, ds4cu_error());
        return 0;
    }
    for (int done = 0; done < n;) {
        const int len = n - done < cs->s.cap ? n - done : cs->s.cap;
        if (forward_batch(ss, tokens + done, len, (int64_t)ss->n + done,
                          logits_all ? logits_all + (size_t)done * c->n_vocab : NULL, done + len == n))
            return ds4_errf(err, "--backend cuda: forward pass at position %d: %s", ss->n + done, ds4cu_error());
        done += len;
    }
    if (ds4cu_sync()) return ds4_errf(err, "--backend cuda: %s", ds4cu_error());
    return 0;
}
#else
typedef int ds4_cuda_forward_unused;
#endif
