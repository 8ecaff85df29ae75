/* ops.h - the CUDA backend's kernels behind a plain C interface.
 *
 * The forward pass (cuda/forward.c) and the op tests (tests/unit/test_cuda_*.c)
 * are C; every kernel lives in a .cu file and is reached through one of these
 * launch wrappers. All pointers are device pointers unless named h_*; every
 * launch goes to the backend's one stream, so calls are ordered. Each wrapper
 * reproduces one CPU function's evaluation order (named in its comment), so
 * the backend's logits are bit-identical to the CPU's (common.cuh explains
 * the libm twins; the one reassociation left is RMSNorm's double sum).
 *
 * Only compiled with DS4_HAVE_CUDA (the Makefile defines it when nvcc builds
 * the .cu files). */
#ifndef DS4_CUDA_OPS_H
#define DS4_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device, memory, errors (runtime.cu) ---- */
int ds4cu_device_count(void);                 /* 0 when no usable device or driver */
int ds4cu_init(void);                         /* select device 0, create the stream; 0 = ok */
/* Several GPUs (runtime.cu): a slot is a device ordinal with its own stream;
 * ds4cu_slot(dev, nth) opens (or finds) the nth slot of device dev (-1 and
 * an error naming the device when it does not exist); ds4cu_use(slot) makes
 * it current: cudaSetDevice, and ds4cu_s = its stream. */
int ds4cu_slot(int dev, int nth);
int ds4cu_use(int slot);
int ds4cu_current(void);
int ds4cu_slot_device(int slot);
/* 1 when copies between the slots' devices go directly (same device, or
 * peer access enabled); 0 = staged through the host. ds4cu_set_p2p(0)
 * (or DS4_CUDA_P2P=0) forces staging, for tests. */
int ds4cu_direct(int a, int b);
void ds4cu_set_p2p(int on);
/* Copy n bytes from src (slot src_slot, current) to dst (slot dst_slot),
 * ordered after src_slot's queued work and before dst_slot's next work;
 * stage: pinned host buffer of n bytes, used when the copy is not direct. */
int ds4cu_handover(void *dst, int dst_slot, const void *src, int src_slot, size_t n, void *stage);
void *ds4cu_host_alloc(size_t n);             /* pinned host memory */
void ds4cu_host_free(void *p);
const char *ds4cu_error(void);                /* last CUDA error text ("" if none) and clears it */
int ds4cu_check(void);                        /* 0 if no launch/runtime error is pending */
void *ds4cu_malloc(size_t n);                 /* NULL on failure */
void ds4cu_free(void *p);
int ds4cu_h2d(void *d, const void *h, size_t n);
int ds4cu_d2h(void *h, const void *d, size_t n);
int ds4cu_h2d_async(void *d, const void *h, size_t n); /* no sync: h pinned, untouched until the stream passes */
int ds4cu_host_register(void *p, size_t n);             /* page-lock a host buffer; -1: left pageable */
void ds4cu_host_unregister(void *p);
int ds4cu_d2d(void *d, const void *s, size_t n);
int ds4cu_memset(void *d, int v, size_t n);
int ds4cu_sync(void);
void ds4cu_fill(float *d, float v, size_t n);
void *ds4cu_stream(void);                     /* the cudaStream_t */
/* Clears the DS4_CUDA_PROFILE table (e.g. after a prefill, to profile decode). */
void ds4cu_prof_reset(void);
/* Device name, SM count, memory (for the bench). */
void ds4cu_device_info(char *name, size_t len, int *sms, size_t *mem);
/* Device-to-device copy bandwidth in bytes/s over `bytes` (copied `reps` times). */
double ds4cu_d2d_bandwidth(size_t bytes, int reps);

/* Device-position mode: until reset with NULL, RoPE, compressors, attention
 * and the indexer take the position of their (single) token from *d (a device
 * int64), and derive the compressed-row counts from it, so their launch
 * arguments do not change from one decode step to the next. */
void ds4cu_set_dpos(const int64_t *d);
/* CUDA graphs for the decode step: begin capture on the stream, end and
 * instantiate (returns an opaque handle), launch, destroy. */
int ds4cu_graph_begin(void);
void *ds4cu_graph_end(void);
int ds4cu_graph_launch(void *g);
void ds4cu_graph_free(void *g);

/* ---- activation quantization (quant.cu): ds4_quantize_act_q8_0 / ds4_quantize_q8_K per row ---- */
void ds4cu_quant_q8_0(const float *x, void *xq, int rows, int64_t width);
void ds4cu_quant_q8_K(const float *x, void *xq, int rows, int64_t width);
/* Fused SwiGLU + quantization (the CPU's two steps, same values):
 * shared expert: q8_0 of silu(min(g,c))·clamp(u,±c); routed: q8_K of
 * silu(min(g,c))·clamp(u,±c)·w[row]. */
void ds4cu_swiglu_q8_0(const float *g, const float *u, void *xq, int rows, int64_t width, float clamp);
void ds4cu_swiglu_q8_K(const float *g, const float *u, const float *w, void *xq, int rows, int64_t width, float clamp);

/* ---- mat-vec products (matvec.cu) ----
 * y[t][r] = W_r · x_t for t < n, r < out; groups as ds4_cpu_matmul (part g of
 * the rows reads slice g of width `in` of each activation row).
 * Q8_0: xq = ds4_act_q8_0 rows of groups·in/32 blocks; block-order float sum
 * exactly as ds4_vec_dot_q8_0_ref. F16: exact=1 sums in index order like
 * ds4_vec_dot_f16_f32 (one thread per output), exact=0 reassociates (warp). */
void ds4cu_matvec_q8_0(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const void *xq, int n,
                       float *y);
void ds4cu_matvec_f16(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const float *x, int n,
                      float *y, int exact);
void ds4cu_matvec_f32(const void *W, size_t row_bytes, int64_t in, int64_t out, int groups, const float *x, int n,
                      float *y);
/* Routed experts gathered by index: for pair i < pairs, expert e = sel[i],
 * rows [0, rows) of matrix e (rows·row_bytes apart), activation q8_K row
 * i / x_div. type: DS4_TYPE_IQ2_XXS, Q2_K or Q4_K. y: pairs × rows. */
void ds4cu_matvec_experts(uint32_t type, const void *W, size_t row_bytes, int64_t in, int64_t rows, const int32_t *sel,
                          int pairs, int x_div, const void *xq, float *y);

/* ---- decode (one token) mat-vecs (matvec.cu): staged rows, same values ----
 * Each returns -1 (and launches nothing) when a matrix does not fit the
 * staged shape (16-byte aligned rows of at most 16 KB); the caller then uses
 * the general kernels above. Up to 6 matrices per launch.
 * Q8_0: count matrices of width `in` over one activation xq (n = 1), results
 * bit-identical to ds4cu_matvec_q8_0. F16 (fast sums, m->exact < 0 only): each
 * matrix its own width and F32 input. */
int ds4cu_matvec_q8_0_dec(int count, const void *const *W, size_t row_bytes, int64_t in, const int64_t *out,
                          int groups, const void *xq, float *const *y);
int ds4cu_matvec_f16_dec(int count, const void *const *W, const size_t *row_bytes, const int64_t *in,
                         const int64_t *out, const float *const *x, float *const *y);
/* The same two where they ran faster on an H100 (mv_dec.cu; the two above
 * try them first, -1 elsewhere): Q8_0 out_a/out_b-like launches (rows of
 * 128+ blocks), blocks walking R rows' columns in tiles, three in flight;
 * F16 launches of 4096+ rows, a warp per row with eight 16-byte loads in
 * flight, in k_mv_f16_dec's float order. */
int ds4cu_mv_q8_0_dc(int count, const void *const *W, size_t row_bytes, int64_t in, const int64_t *out, int groups,
                     const void *xq, float *const *y);
/* Fast mode only (m->exact == 0; row sums reassociated, mv_q8_fast.cu): the
 * one-token Q8_0 product, same arguments as ds4cu_matvec_q8_0_dec; in a
 * multiple of 256. variant 1 = weights loaded straight to registers, 2 =
 * staged per warp through shared memory, 0 = DS4_CUDA_Q8FAST (0 or unset
 * there: -1, the caller keeps the exact kernels). -1 (nothing launched) where
 * the shape does not fit. */
int ds4cu_mv_q8_0_fast(int count, const void *const *W, size_t row_bytes, int64_t in, const int64_t *out, int groups,
                       const void *xq, float *const *y, int variant);
int ds4cu_mv_f16_dw(int count, const void *const *W, const size_t *row_bytes, const int64_t *in, const int64_t *out,
                    const float *const *x, float *const *y);
/* Index-order F16 products at decode (bit-identical to ds4cu_matvec_f16 with
 * exact = 1): rows staged through shared memory, a thread per output chain.
 * Rows need 4-byte alignment and an even width, else -1. */
int ds4cu_matvec_f16_exact_dec(int count, const void *const *W, const size_t *row_bytes, const int64_t *in,
                               const int64_t *out, const float *const *x, float *const *y);
/* Routed experts at decode, bit-identical to ds4cu_matvec_experts (+ moe_sum):
 * gate and up of all pairs in one launch (activation row pair / x_div); the
 * down projection of the K pairs with their sum in pick order, plus add[]
 * (the shared expert; may be NULL, may equal out), written to out (rows). */
int ds4cu_experts_gate_up_dec(uint32_t type, const void *Wg, const void *Wu, size_t row_bytes, int64_t in,
                              int64_t rows, const int32_t *sel, int pairs, int x_div, const void *xq, float *g,
                              float *u);
int ds4cu_experts_down_sum_dec(uint32_t type, const void *W, size_t row_bytes, int64_t in, int64_t rows,
                               const int32_t *sel, int K, const void *xq, const float *add, float *out);
/* The same two on the real model's formats (ex_dec.cu: persistent warps
 * streaming rows through shared rings): IQ2_XXS gate+up of width <= 4096,
 * Q2_K down of width <= 2048 with K <= 8. The two above try these first;
 * -1 (nothing launched) for any other shape. */
int ds4cu_ex_iq2_gate_up_dec(const void *Wg, const void *Wu, size_t row_bytes, int64_t in, int64_t rows,
                             const int32_t *sel, int pairs, int x_div, const void *xq, float *g, float *u);
int ds4cu_ex_q2k_down_dec(const void *W, size_t row_bytes, int64_t in, int64_t rows, const int32_t *sel, int K,
                          const void *xq, const float *add, float *out);

/* ---- fused decode-step kernels (fused.cu): the listed ops in one launch, same values ----
 * norm_quant: [a = Σ_h X[h]·pre[h] (X given; stored to a_out if given)] or x,
 * then y = rmsnorm(·, w) (y may be NULL), then its Q8_0 and/or Q8_K codes
 * (either may be NULL). One block per row of width n. */
void ds4cu_norm_quant(const float *X, const float *pre, int HC, const float *x, float *a_out, const float *w,
                      float *y, int rows, int n, float eps, void *q8_0, void *q8_K);
/* Fast HC pre-mix of one token (m->exact < 0: reassociated sums): rmsnorm(X)
 * + F16 fn product + Sinkhorn mix (pre, post, comb) + stream sum + the
 * norm_quant above with weight w, in two launches. part: scratch of
 * ds4cu_hc_fast_scratch bytes (8-byte aligned). -1 when the shape does not fit. */
size_t ds4cu_hc_fast_scratch(int HC, int E);
int ds4cu_hc_pre_fast(const void *fn, size_t fn_rb, const float *scale, const float *base, const float *X, int HC,
                      int E, int iters, float hc_eps, float eps, float *part, float *pre, float *post, float *comb,
                      const float *w, float *y, void *q8_0, void *q8_K);
/* The same fast pre-mix in ONE launch (hc_mixnorm.cu: 64 blocks meeting at a
 * grid barrier), with rmsnorm(X) before the product as on the CPU. With F
 * given, the input is first hc_post(X, F, post_in, comb_in) (the previous
 * sub-layer's, k_hc_post's operations), written to Xout (not X). part:
 * ds4cu_hc_mixnorm_scratch() bytes. -1 (nothing launched) when the shape or
 * the device does not fit (HC 4, E a multiple of 256 up to 5376, ...). */
size_t ds4cu_hc_mixnorm_scratch(void);
/* Tests: the Sinkhorn on 16 lanes (1, the default) or one thread (0, the
 * same values; DS4_CUDA_HCM_SINK=1 too); lean = 1: the products of the raw
 * slices scaled after the barrier (only the norm blocks load all of X, while
 * they wait; DS4_CUDA_HCM_LEAN=1 too; A/B only: 11.0 vs 11.7 us on an H100,
 * but fast_a_c02's greedy token 9 flips with it); -1: from the environment. Per-block
 * phase clocks into dbg (device, 64 × 8 u64: clock64 at start, after the X
 * pass, after the products, after the barrier, mid-tail, end; globaltimer at
 * start and after the barrier) while dbg is not NULL. */
void ds4cu_hc_mixnorm_debug(unsigned long long *dbg, int sink_lanes, int lean);
int ds4cu_hc_mixnorm(const void *fn, size_t fn_rb, const float *scale, const float *base, const float *X,
                     const float *F, const float *post_in, const float *comb_in, float *Xout, int HC, int E,
                     int iters, float hc_eps, float eps, float *part, float *pre, float *post, float *comb,
                     const float *w, float *y, void *q8_0, void *q8_K);
/* The same; defer = 1: the Sinkhorn is left out, comb holds the 16 softmax
 * numerators (exps) until ds4cu_hc_sinkhorn or a kernel given comb below
 * (ds4cu_qkv_post_sk, ds4cu_route_sk) turns them into the comb in place,
 * bit-identical to defer = 0's (sinkhorn.cuh). */
int ds4cu_hc_mixnorm_ex(const void *fn, size_t fn_rb, const float *scale, const float *base, const float *X,
                        const float *F, const float *post_in, const float *comb_in, float *Xout, int HC, int E,
                        int iters, float hc_eps, float eps, float *part, float *pre, float *post, float *comb,
                        const float *w, float *y, void *q8_0, void *q8_K, int defer);
/* comb (HC 4) in place from a deferred pre-mix's exps: one small launch. */
void ds4cu_hc_sinkhorn(float *comb, int iters, float eps);
/* rmsnorm of each query head (in place) and of kvr (weight kv_w) into kvv,
 * RoPE of both at pos0 + t, FP8 round trip of kvv's first n_nope values. */
void ds4cu_qkv_post(float *q, const float *kvr, const float *kv_w, float *kvv, int n, int H, int D, int n_rot,
                    const float *tab, int64_t pos0, float eps, int n_nope);
/* The same, plus (comb not NULL) ds4cu_hc_sinkhorn's work in one extra block. */
void ds4cu_qkv_post_sk(float *q, const float *kvr, const float *kv_w, float *kvv, int n, int H, int D, int n_rot,
                       const float *tab, int64_t pos0, float eps, int n_nope, float *comb, int iters, float hc_eps);
/* rope(qI) + iqat(qI) + wI *= wscale (ID must be 128, else -1). */
int ds4cu_idx_post(float *qI, float *wI, int n, int IH, int ID, int n_rot, const float *tab, int64_t pos0,
                   float wscale);
/* Q8_0 codes of rope(o, inverse) (o unchanged). */
int ds4cu_unrope_q8_0(const float *o, int n, int H, int D, int n_rot, const float *tab, int64_t pos0, void *xq);

/* ---- elementwise and per-row ops (elem.cu) ---- */
/* ds4_rmsnorm on each of `rows` rows of width n (w may be NULL). */
void ds4cu_rmsnorm(const float *x, const float *w, float *y, int rows, int n, float eps);
/* ds4_rope_apply on n_tok tokens × nh heads of `width`; tab holds, per
 * absolute position, n_rot/2 cosines then n_rot/2 sines (ds4_rope_cs). */
void ds4cu_rope(float *x, int n_tok, int nh, int width, int n_rot, const float *tab, int64_t pos0, int inverse);
void ds4cu_fp8_kv(float *x, int rows, int width, int n_nope);    /* ds4_fp8_kv per row */
void ds4cu_iqat(float *x, int rows);                               /* ds4_iqat per 128-row */
void ds4cu_scale(float *x, size_t n, float s);                     /* x *= s */
void ds4cu_add(float *y, const float *a, const float *b, size_t n);/* y = a + b */
void ds4cu_embed(const uint16_t *emb, const int32_t *tokens, int n, int E, int HC, float *X);
/* hc_pre's scalar part per token: pre, post, Sinkhorn comb (forward.c order). */
void ds4cu_hc_mix(const float *mix, const float *scale, const float *base, int n, int HC, int iters, float eps,
                  float *pre, float *post, float *comb);
/* Both of the above in one launch (a block per token). */
void ds4cu_hc_pre(const float *mix, const float *scale, const float *base, const float *X, int n, int HC, int E,
                  int iters, float eps, float *pre, float *post, float *comb, float *a);
/* a[t][d] = Σ_h X[t][h][d]·pre[t][h], h in order. */
void ds4cu_hc_reduce(const float *X, const float *pre, int n, int HC, int E, float *a);
/* Y[t][i][d] = post[i]·F[d] + Σ_j C[j·HC+i]·X[j][d]. */
void ds4cu_hc_post(const float *X, const float *F, const float *post, const float *comb, int n, int HC, int E, float *Y);
/* Output-head stream weights: w = sigmoid_stable(hh·scale + base) + eps. */
void ds4cu_out_weights(const float *hh, const float *scale, const float *base, int n, int HC, float eps, float *w);
void ds4cu_steer(float *y, const float *v, int n, int E, float scale);
/* g = silu(min(g,c))·clamp(u,±c) [·w[row / 1]] over rows × F. w may be NULL. */
void ds4cu_swiglu(float *g, const float *u, const float *w, int rows, int F, float clamp);
/* moe[t][d] = Σ_k dout[t·K+k][d], k in order; then moe[t][d] + add[t][d]
 * when add is given (the shared expert), written to out. */
void ds4cu_moe_sum(const float *dout, int n, int K, int E, const float *add, float *out);
/* ds4_route per token (bias / tid2eid may be NULL). */
/* e = expf(x), l = log1pf(x) with the device's glibc twins (tests). */
void ds4cu_libm(const float *x, float *e, float *l, int n);
void ds4cu_route(const float *lg, int n, int X, int K, const int32_t *tokens, const int32_t *tid2eid,
                 const float *bias, int norm, float scale, int32_t *sel, float *w);
/* The same, plus (comb not NULL) ds4cu_hc_sinkhorn's work in one extra block. */
void ds4cu_route_sk(const float *lg, int n, int X, int K, const int32_t *tokens, const int32_t *tid2eid,
                    const float *bias, int norm, float scale, int32_t *sel, float *w, float *comb, int iters,
                    float hc_eps);

/* ---- attention state machines and attention (attn.cu) ---- */
/* The compressor state machine of attention.c (compressor_step + finish_row)
 * over n tokens at positions pos0..: emitted rows (norm, RoPE from tab at the
 * window's first position, FP8 or Hadamard+FP4, F16) go to rows[n_rows0...]. */
void ds4cu_compressor(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r, int w,
                      int64_t pos0, int n, const float *norm_w, float eps, const float *tab, int n_rot, int indexer,
                      float *rows, int n_rows0);
/* The same, one block walking the tokens in order (the reference of the
 * spread one-token kernel; ds4cu_compressor picks that one for n = 1). */
void ds4cu_compressor_seq(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r, int w,
                          int64_t pos0, int n, const float *norm_w, float eps, const float *tab, int n_rot,
                          int indexer, float *rows, int n_rows0);
/* One token (attn_dec.cu), same state and row as ds4cu_compressor_seq: -1
 * (nothing launched) when the width does not fit. */
int ds4cu_compressor_dec(float *SV, float *SK, const float *v, const float *g, const uint16_t *ape, int r, int w,
                         int64_t pos0, const float *norm_w, float eps, const float *tab, int n_rot, int indexer,
                         float *rows, int n_rows0);
/* Frontier rows [row0, rows) back to (0, -1e30). */
void ds4cu_frontier_reset(float *SV, float *SK, int row0, int rows, int Wc);
/* Indexer scores of n_comp rows (attention.c indexer_select order), then the
 * top k (ties: lower index) written ascending into sel. scratch: n_comp ints. */
void ds4cu_indexer_select(const float *idx, int n_comp, const float *qI, const float *wI, int IH, int ID, int k,
                          float *scores, int32_t *flags, int32_t *sel);
/* Sink attention (heads_range) of n tokens at pos0..: kv holds their KV rows
 * (rotated + FP8), rounded to F16 into kvh and, after the attention, stored
 * into the raw ring. Token t sees the n_raw newest raw rows and the first
 * n_comp0 + (its emissions) compressed rows, or sel[t·top_k ...] when sel is
 * given and that count exceeds top_k. */
void ds4cu_attention(const float *q, float *o, const float *kv, float *kvh, float *raw, int raw_cap, int64_t pos0,
                     int n, int swa, const float *comp, int n_comp0, int comp_cap, int ratio, const int32_t *sel,
                     int top_k, const float *sinks, int H, int D, float scale);

/* Sink attention of one token (n = 1, attn_dec.cu), same values and raw ring
 * as ds4cu_attention: scores and weighted sums as two grids over (heads ×
 * rows) and (heads × dims); the score grid stores the F16 KV row into the
 * ring itself (kvh is not written). scratch: H × (swa + visible compressed
 * rows) floats. -1 (nothing launched) when the shape (H a multiple of 8, D
 * of 64, 16-byte aligned q/raw/comp) or the scratch does not fit. */
int ds4cu_attention_dec(const float *q, float *o, const float *kv, float *kvh, float *raw, int raw_cap, int64_t pos0,
                        int swa, const float *comp, int n_comp0, int comp_cap, int ratio, const int32_t *sel,
                        int top_k, const float *sinks, int H, int D, float scale, float *scratch,
                        size_t scratch_floats);

#ifdef __cplusplus
}
#endif
#endif
