/* test_cuda_ops.c - every CUDA kernel of src/engine/cuda/ops.h against its
 * CPU twin on random inputs, at the real model's sizes (DeepSeek V4 Flash:
 * width 4096, q_b 32768×1024, grouped out_a, 256-wide routers, 2048-wide
 * experts in IQ2_XXS / Q2_K / Q4_K).
 *
 * The bar is bit-identity wherever the CPU's float order can be kept on the
 * GPU (activation codes, block-order quantized dots, index-order F16 dots,
 * FP8/FP4 simulation, RoPE with host tables); RMSNorm's double sum is a tree
 * on the GPU, so it is allowed one float ulp. Without a CUDA device (or a
 * build without nvcc) every case is reported as skipped, so
 * CI machines without a GPU stay green; tests/gpu/run.sh runs them for real. */
#include <math.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* harness helpers */
#include "harness.h"

#ifdef DS4_HAVE_CUDA
#include "engine/cpu/moe.h"
#include "engine/cuda/ops.h"
#include "engine/internal.h"
#include "engine/numerics.h"
#include "quant/quant.h"

static int have_gpu(void) {
    static int state = -1;
    if (state < 0) state = ds4cu_device_count() > 0 && ds4cu_init() == 0;
    if (!state) T_SKIP("no CUDA device"); /* counted as skipped, never as passed */
    return state;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static void fill(float *x, size_t n, float scale) { for (size_t i = 0; i < n; i++) x[i] = frand() * scale; }

static void *up(const void *h, size_t n) {
    void *d = ds4cu_malloc(n);
    if (!d || ds4cu_h2d(d, h, n)) T_FAIL("upload %zu bytes: %s", n, ds4cu_error());
    return d;
}
static void down(void *h, const void *d, size_t n) {
    if (ds4cu_sync() || ds4cu_d2h(h, d, n)) T_FAIL("download: %s", ds4cu_error());
}
static void same_floats(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], 4) != 0)
            T_FAIL("%s: element %zu: gpu %.9g cpu %.9g", what, i, got[i], want[i]);
}

TEST(quant_q8_0_and_q8_K_codes) {
    if (!have_gpu()) return;
    const int rows = 5, W = 4096;
    float *x = malloc(sizeof(float) * rows * W);
    fill(x, (size_t)rows * W, 3.0f);
    x[7] = 0; for (int i = 0; i < 32; i++) x[64 + i] = 0; /* a zero block */
    ds4_act_q8_0 *a = malloc(sizeof *a * rows * W / 32), *ag = malloc(sizeof *ag * rows * W / 32);
    ds4_block_q8_K *k = malloc(sizeof *k * rows * W / 256), *kg = malloc(sizeof *kg * rows * W / 256);
    for (int r = 0; r < rows; r++) {
        ds4_quantize_act_q8_0(x + r * W, a + r * W / 32, W);
        ds4_quantize_q8_K(x + r * W, k + r * W / 256, W);
    }
    float *dx = up(x, sizeof(float) * rows * W);
    void *da = ds4cu_malloc(sizeof *a * rows * W / 32), *dk = ds4cu_malloc(sizeof *k * rows * W / 256);
    ds4cu_quant_q8_0(dx, da, rows, W);
    ds4cu_quant_q8_K(dx, dk, rows, W);
    down(ag, da, sizeof *a * rows * W / 32);
    down(kg, dk, sizeof *k * rows * W / 256);
    CHECK(memcmp(a, ag, sizeof *a * rows * W / 32) == 0);
    CHECK(memcmp(k, kg, sizeof *k * rows * W / 256) == 0);
    ds4cu_free(dx); ds4cu_free(da); ds4cu_free(dk);
    free(x); free(a); free(ag); free(k); free(kg);
}

/* Q8_0 weights [in, out] × n activation rows (groups as out_a). */
static void check_q8_0(int64_t in, int64_t out, int groups, int n) {
    const size_t rb = (size_t)ds4_row_bytes(DS4_TYPE_Q8_0, (uint64_t)in);
    uint8_t *w = malloc(rb * out);
    float *row = malloc(sizeof(float) * in);
    for (int64_t r = 0; r < out; r++) { fill(row, in, 0.05f); ds4_quantize_row_q8_0(row, w + r * rb, in); }
    const int64_t xw = in * groups;
    float *x = malloc(sizeof(float) * xw * n);
    fill(x, (size_t)xw * n, 2.0f);
    ds4_act_q8_0 *xq = malloc(sizeof *xq * (xw / 32) * n);
    for (int t = 0; t < n; t++) ds4_quantize_act_q8_0(x + t * xw, xq + t * (xw / 32), xw);
    float *want = malloc(sizeof(float) * out * n), *got = malloc(sizeof(float) * out * n);
    const int64_t rpg = out / groups;
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < out; r++)
            want[t * out + r] = ds4_vec_dot_q8_0_ref(in, w + r * rb, xq + t * (xw / 32) + (r / rpg) * (in / 32));
    void *dw = up(w, rb * out), *dxq = up(xq, sizeof *xq * (xw / 32) * n);
    float *dy = ds4cu_malloc(sizeof(float) * out * n);
    ds4cu_matvec_q8_0(dw, rb, in, out, groups, dxq, n, dy);
    down(got, dy, sizeof(float) * out * n);
    same_floats("q8_0 matvec", got, want, (size_t)out * n);
    ds4cu_free(dw); ds4cu_free(dxq); ds4cu_free(dy);
    free(w); free(row); free(x); free(xq); free(want); free(got);
}

TEST(matvec_q8_0_q_b_decode) { if (have_gpu()) check_q8_0(1024, 32768, 1, 1); }
TEST(matvec_q8_0_out_b_batch) { if (have_gpu()) check_q8_0(8192, 4096, 1, 11); }
TEST(matvec_q8_0_out_a_groups) { if (have_gpu()) check_q8_0(4096, 8192, 8, 3); }
TEST(matvec_q8_0_tiny_rows) { if (have_gpu()) check_q8_0(160, 96, 2, 9); }

static void check_f16(int64_t in, int64_t out, int n, int exact) {
    uint16_t *w = malloc(sizeof(uint16_t) * in * out);
    for (int64_t i = 0; i < in * out; i++) w[i] = ds4_f32_to_f16(frand() * 0.1f);
    float *x = malloc(sizeof(float) * in * n), *want = malloc(sizeof(float) * out * n), *got = malloc(sizeof(float) * out * n);
    fill(x, (size_t)in * n, 1.0f);
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < out; r++) want[t * out + r] = ds4_vec_dot_f16_f32_ref(in, w + r * in, x + t * in);
    void *dw = up(w, sizeof(uint16_t) * in * out);
    float *dx = up(x, sizeof(float) * in * n), *dy = ds4cu_malloc(sizeof(float) * out * n);
    ds4cu_matvec_f16(dw, sizeof(uint16_t) * in, in, out, 1, dx, n, dy, exact);
    down(got, dy, sizeof(float) * out * n);
    if (exact) same_floats("f16 matvec", got, want, (size_t)out * n);
    else
        for (int64_t i = 0; i < out * n; i++) CHECK_NEAR(got[i], want[i], 1e-4 * (1 + fabs(want[i])));
    ds4cu_free(dw); ds4cu_free(dx); ds4cu_free(dy);
    free(w); free(x); free(want); free(got);
}

TEST(matvec_f16_router_exact) { if (have_gpu()) check_f16(4096, 256, 3, 1); }
TEST(matvec_f16_hc_fn_exact) { if (have_gpu()) check_f16(16384, 24, 2, 1); }
TEST(matvec_f16_idx_q_b_fast) { if (have_gpu()) check_f16(1024, 8192, 1, 0); }

/* Routed experts: nexp experts of [in, rows], pairs gathered by index. */
static void check_experts(uint32_t type, int64_t in, int64_t rows, int nexp, int n_tok, int K) {
    const size_t rb = (size_t)ds4_row_bytes(type, (uint64_t)in);
    uint8_t *w = malloc(rb * rows * nexp);
    float *row = malloc(sizeof(float) * in);
    for (int64_t r = 0; r < rows * nexp; r++) {
        fill(row, in, 0.02f);
        if (type == DS4_TYPE_IQ2_XXS) ds4_quantize_row_iq2_xxs(row, w + r * rb, in);
        else if (type == DS4_TYPE_Q2_K) ds4_quantize_row_q2_K(row, w + r * rb, in);
        else ds4_quantize_row_q4_K(row, w + r * rb, in);
    }
    const int pairs = n_tok * K, x_div = K > 1 ? K : 1;
    const int nx = pairs / x_div;
    float *x = malloc(sizeof(float) * in * nx);
    fill(x, (size_t)in * nx, 1.5f);
    ds4_block_q8_K *xq = malloc(sizeof *xq * (in / 256) * nx);
    for (int i = 0; i < nx; i++) ds4_quantize_q8_K(x + i * in, xq + i * (in / 256), in);
    int32_t *sel = malloc(sizeof(int32_t) * pairs);
    for (int i = 0; i < pairs; i++) sel[i] = (int32_t)((rng = rng * 6364136223846793005ull + 1) >> 33) % nexp;
    float *want = malloc(sizeof(float) * pairs * rows), *got = malloc(sizeof(float) * pairs * rows);
    for (int i = 0; i < pairs; i++)
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *wr = w + ((size_t)sel[i] * rows + r) * rb;
            const ds4_block_q8_K *xr = xq + (i / x_div) * (in / 256);
            want[(size_t)i * rows + r] = type == DS4_TYPE_IQ2_XXS ? ds4_vec_dot_iq2_xxs_q8_K_ref(in, wr, xr)
                                       : type == DS4_TYPE_Q2_K   ? ds4_vec_dot_q2_K_q8_K_ref(in, wr, xr)
                                                                 : ds4_vec_dot_q4_K_q8_K_ref(in, wr, xr);
        }
    void *dw = up(w, rb * rows * nexp), *dxq = up(xq, sizeof *xq * (in / 256) * nx);
    int32_t *dsel = up(sel, sizeof(int32_t) * pairs);
    float *dy = ds4cu_malloc(sizeof(float) * pairs * rows);
    ds4cu_matvec_experts(type, dw, rb, in, rows, dsel, pairs, x_div, dxq, dy);
    down(got, dy, sizeof(float) * pairs * rows);
    same_floats(ds4_type_name(type), got, want, (size_t)pairs * rows);
    ds4cu_free(dw); ds4cu_free(dxq); ds4cu_free(dsel); ds4cu_free(dy);
    free(w); free(row); free(x); free(xq); free(sel); free(want); free(got);
}

TEST(experts_iq2_xxs_gate) { if (have_gpu()) check_experts(DS4_TYPE_IQ2_XXS, 4096, 2048, 8, 2, 6); }
TEST(experts_q2_K_down) { if (have_gpu()) check_experts(DS4_TYPE_Q2_K, 2048, 4096, 8, 12, 1); }
TEST(experts_q4_K_gate) { if (have_gpu()) check_experts(DS4_TYPE_Q4_K, 4096, 2048, 8, 1, 6); }
TEST(experts_q4_K_down) { if (have_gpu()) check_experts(DS4_TYPE_Q4_K, 2048, 4096, 8, 6, 1); }

/* ---- decode (one token) kernels: staged rows, several matrices per launch ---- */

static uint8_t *rand_q8_0_rows(int64_t in, int64_t out) {
    const size_t rb = (size_t)ds4_row_bytes(DS4_TYPE_Q8_0, (uint64_t)in);
    uint8_t *w = malloc(rb * out);
    float *row = malloc(sizeof(float) * in);
    for (int64_t r = 0; r < out; r++) { fill(row, in, 0.05f); ds4_quantize_row_q8_0(row, w + r * rb, in); }
    free(row);
    return w;
}

/* cnt matrices of width in (outs rows each) over one activation, groups as out_a. */
static void check_q8_0_dec(int64_t in, int cnt, const int64_t *outs, int groups) {
    const size_t rb = (size_t)ds4_row_bytes(DS4_TYPE_Q8_0, (uint64_t)in);
    const int64_t xw = in * groups;
    float *x = malloc(sizeof(float) * xw);
    fill(x, (size_t)xw, 2.0f);
    ds4_act_q8_0 *xq = malloc(sizeof *xq * (xw / 32));
    ds4_quantize_act_q8_0(x, xq, xw);
    void *dxq = up(xq, sizeof *xq * (xw / 32));
    uint8_t *w[6];
    const void *dw[6];
    float *dy[6];
    for (int k = 0; k < cnt; k++) {
        w[k] = rand_q8_0_rows(in, outs[k]);
        dw[k] = up(w[k], rb * outs[k]);
        dy[k] = ds4cu_malloc(sizeof(float) * outs[k]);
        ds4cu_fill(dy[k], NAN, (size_t)outs[k]); /* poisoned: every output must be written */
    }
    CHECK_EQ_INT(ds4cu_matvec_q8_0_dec(cnt, dw, rb, in, outs, groups, dxq, dy), 0);
    for (int k = 0; k < cnt; k++) {
        float *want = malloc(sizeof(float) * outs[k]), *got = malloc(sizeof(float) * outs[k]);
        const int64_t rpg = outs[k] / groups;
        for (int64_t r = 0; r < outs[k]; r++)
            want[r] = ds4_vec_dot_q8_0_ref(in, w[k] + r * rb, xq + (r / rpg) * (in / 32));
        down(got, dy[k], sizeof(float) * outs[k]);
        same_floats("q8_0 decode matvec", got, want, (size_t)outs[k]);
        free(want); free(got);
        ds4cu_free((void *)dw[k]); ds4cu_free(dy[k]); free(w[k]);
    }
    ds4cu_free(dxq);
    free(x); free(xq);
}

TEST(matvec_q8_0_dec_q_a_and_kv) {
    if (!have_gpu()) return;
    const int64_t outs[2] = {1024, 512};
    check_q8_0_dec(4096, 2, outs, 1);
}
TEST(matvec_q8_0_dec_q_b) { if (have_gpu()) { const int64_t o = 32768; check_q8_0_dec(1024, 1, &o, 1); } }
TEST(matvec_q8_0_dec_out_a_groups) { if (have_gpu()) { const int64_t o = 8192; check_q8_0_dec(4096, 1, &o, 8); } }
TEST(matvec_q8_0_dec_out_b_and_odd_rows) {
    if (!have_gpu()) return;
    const int64_t outs[3] = {4096, 37, 1}; /* partial last blocks */
    check_q8_0_dec(8192, 3, outs, 1);
}
/* The one-token Q8_0 products at the shared expert's down (2048 wide) and
 * at a head-like height with an odd row count (the staged kernel keeps
 * these shapes; out_a/out_b above run mv_dec.cu's tiles, partial ones too). */
TEST(matvec_q8_0_dec_sh_down_and_head_like) {
    if (!have_gpu()) return;
    const int64_t o1 = 4096, o2 = 33001;
    check_q8_0_dec(2048, 1, &o1, 1);
    check_q8_0_dec(4096, 1, &o2, 1);
}
TEST(matvec_q8_0_dec_refuses_unaligned_rows) {
    if (!have_gpu()) return;
    const int64_t o = 8;
    const void *w = (const void *)(uintptr_t)16;
    float *y = NULL;
    CHECK_EQ_INT(ds4cu_matvec_q8_0_dec(1, &w, 170, 160, &o, 1, NULL, &y), -1); /* 170-byte rows */
}

/* Fast F16 decode products (reassociated sums), several widths in one launch. */
TEST(matvec_f16_dec_multi_fast) {
    if (!have_gpu()) return;
    enum { CNT = 4 };
    const int64_t ins[CNT] = {4096, 4096, 1024, 4096}, outs[CNT] = {1024, 256, 8192, 64};
    const void *dw[CNT];
    const float *dx[CNT];
    float *dy[CNT];
    size_t rbs[CNT];
    uint16_t *w[CNT];
    float *x[CNT];
    for (int k = 0; k < CNT; k++) {
        w[k] = malloc(sizeof(uint16_t) * ins[k] * outs[k]);
        for (int64_t i = 0; i < ins[k] * outs[k]; i++) w[k][i] = ds4_f32_to_f16(frand() * 0.1f);
        x[k] = malloc(sizeof(float) * ins[k]);
        fill(x[k], (size_t)ins[k], 1.0f);
        rbs[k] = sizeof(uint16_t) * ins[k];
        dw[k] = up(w[k], rbs[k] * outs[k]);
        dx[k] = up(x[k], sizeof(float) * ins[k]);
        dy[k] = ds4cu_malloc(sizeof(float) * outs[k]);
        ds4cu_fill(dy[k], NAN, (size_t)outs[k]);
    }
    CHECK_EQ_INT(ds4cu_matvec_f16_dec(CNT, dw, rbs, ins, outs, dx, dy), 0);
    for (int k = 0; k < CNT; k++) {
        float *got = malloc(sizeof(float) * outs[k]);
        down(got, dy[k], sizeof(float) * outs[k]);
        for (int64_t r = 0; r < outs[k]; r++) {
            const float want = ds4_vec_dot_f16_f32_ref(ins[k], w[k] + r * ins[k], x[k]);
            if (!(fabsf(got[r] - want) <= 1e-4f * (1 + fabsf(want))))
                T_FAIL("f16 decode matrix %d row %lld: gpu %.9g cpu %.9g", k, (long long)r, got[r], want);
        }
        free(got);
        ds4cu_free((void *)dw[k]); ds4cu_free((void *)dx[k]); ds4cu_free(dy[k]); free(w[k]); free(x[k]);
    }
}

/* Index-order F16 decode products, bit for bit against the CPU's chain:
 * router, hc_fn, idx_q_b and a ragged shape (partial tile and block) in one
 * launch. The exact mode's decode kernel (DS4_CUDA_F16X=0 turns it off, and
 * skips this case). */
TEST(matvec_f16_exact_dec_multi) {
    if (!have_gpu()) return;
    if (getenv("DS4_CUDA_F16X") && atoi(getenv("DS4_CUDA_F16X")) == 0) T_SKIP("DS4_CUDA_F16X=0 (kernel off)");
    enum { CNT = 4 };
    const int64_t ins[CNT] = {4096, 16384, 1024, 1030}, outs[CNT] = {256, 24, 8192, 70};
    const void *dw[CNT];
    const float *dx[CNT];
    float *dy[CNT];
    size_t rbs[CNT];
    uint16_t *w[CNT];
    float *x[CNT];
    for (int k = 0; k < CNT; k++) {
        w[k] = malloc(sizeof(uint16_t) * ins[k] * outs[k]);
        for (int64_t i = 0; i < ins[k] * outs[k]; i++) w[k][i] = ds4_f32_to_f16(frand() * 0.1f);
        x[k] = malloc(sizeof(float) * ins[k]);
        fill(x[k], (size_t)ins[k], 1.0f);
        rbs[k] = sizeof(uint16_t) * ins[k];
        dw[k] = up(w[k], rbs[k] * outs[k]);
        dx[k] = up(x[k], sizeof(float) * ins[k]);
        dy[k] = ds4cu_malloc(sizeof(float) * outs[k]);
        ds4cu_fill(dy[k], NAN, (size_t)outs[k]);
    }
    CHECK_EQ_INT(ds4cu_matvec_f16_exact_dec(CNT, dw, rbs, ins, outs, dx, dy), 0);
    for (int k = 0; k < CNT; k++) {
        float *got = malloc(sizeof(float) * outs[k]), *want = malloc(sizeof(float) * outs[k]);
        for (int64_t r = 0; r < outs[k]; r++) want[r] = ds4_vec_dot_f16_f32_ref(ins[k], w[k] + r * ins[k], x[k]);
        down(got, dy[k], sizeof(float) * outs[k]);
        same_floats("f16 exact decode", got, want, (size_t)outs[k]);
        free(got); free(want);
        ds4cu_free((void *)dw[k]); ds4cu_free((void *)dx[k]); ds4cu_free(dy[k]); free(w[k]); free(x[k]);
    }
}

static uint8_t *rand_expert_rows(uint32_t type, int64_t in, int64_t rows) {
    const size_t rb = (size_t)ds4_row_bytes(type, (uint64_t)in);
    uint8_t *w = malloc(rb * rows);
    float *row = malloc(sizeof(float) * in);
    for (int64_t r = 0; r < rows; r++) {
        fill(row, in, 0.02f);
        if (type == DS4_TYPE_IQ2_XXS) ds4_quantize_row_iq2_xxs(row, w + r * rb, in);
        else if (type == DS4_TYPE_Q2_K) ds4_quantize_row_q2_K(row, w + r * rb, in);
        else ds4_quantize_row_q4_K(row, w + r * rb, in);
    }
    free(row);
    return w;
}
static float dot_q8K(uint32_t type, int64_t in, const uint8_t *w, const ds4_block_q8_K *x) {
    return type == DS4_TYPE_IQ2_XXS ? ds4_vec_dot_iq2_xxs_q8_K_ref(in, w, x)
         : type == DS4_TYPE_Q2_K   ? ds4_vec_dot_q2_K_q8_K_ref(in, w, x)
                                   : ds4_vec_dot_q4_K_q8_K_ref(in, w, x);
}

/* One token's gate and up (K pairs, one activation) against the CPU dots;
 * then the down projection with the sum over picks plus the shared output
 * against the CPU's dots summed in pick order (ds4cu_moe_sum's order). */
static void check_experts_dec(uint32_t tgu, uint32_t tdown, int64_t E, int64_t F, int nexp, int K) {
    const size_t rgu = (size_t)ds4_row_bytes(tgu, (uint64_t)E), rdn = (size_t)ds4_row_bytes(tdown, (uint64_t)F);
    uint8_t *wg = rand_expert_rows(tgu, E, F * nexp), *wu = rand_expert_rows(tgu, E, F * nexp);
    uint8_t *wd = rand_expert_rows(tdown, F, E * nexp);
    int32_t sel[16];
    for (int k = 0; k < K; k++) sel[k] = (int32_t)(((rng = rng * 6364136223846793005ull + 1) >> 33) % (uint64_t)nexp);
    sel[K - 1] = sel[0]; /* a repeated expert */
    float *x = malloc(sizeof(float) * E), *h = malloc(sizeof(float) * F * K), *add = malloc(sizeof(float) * E);
    fill(x, (size_t)E, 1.5f);
    fill(h, (size_t)F * K, 1.0f);
    fill(add, (size_t)E, 0.5f);
    ds4_block_q8_K *xq = malloc(sizeof *xq * (E / 256)), *hq = malloc(sizeof *hq * (F / 256) * K);
    ds4_quantize_q8_K(x, xq, E);
    for (int k = 0; k < K; k++) ds4_quantize_q8_K(h + k * F, hq + k * (F / 256), F);
    void *dwg = up(wg, rgu * F * nexp), *dwu = up(wu, rgu * F * nexp), *dwd = up(wd, rdn * E * nexp);
    void *dxq = up(xq, sizeof *xq * (E / 256)), *dhq = up(hq, sizeof *hq * (F / 256) * K);
    int32_t *dsel = up(sel, sizeof(int32_t) * K);
    float *dg = ds4cu_malloc(sizeof(float) * F * K), *du = ds4cu_malloc(sizeof(float) * F * K);
    float *dout = up(add, sizeof(float) * E);
    ds4cu_fill(dg, NAN, (size_t)F * K);
    ds4cu_fill(du, NAN, (size_t)F * K);
    CHECK_EQ_INT(ds4cu_experts_gate_up_dec(tgu, dwg, dwu, rgu, E, F, dsel, K, K, dxq, dg, du), 0);
    CHECK_EQ_INT(ds4cu_experts_down_sum_dec(tdown, dwd, rdn, F, E, dsel, K, dhq, dout, dout), 0);
    float *got = malloc(sizeof(float) * F * K), *want = malloc(sizeof(float) * F * K);
    for (int m2 = 0; m2 < 2; m2++) {
        const uint8_t *w = m2 ? wu : wg;
        for (int k = 0; k < K; k++)
            for (int64_t r = 0; r < F; r++) want[k * F + r] = dot_q8K(tgu, E, w + ((size_t)sel[k] * F + r) * rgu, xq);
        down(got, m2 ? du : dg, sizeof(float) * F * K);
        same_floats(m2 ? "experts up (decode)" : "experts gate (decode)", got, want, (size_t)F * K);
    }
    float *gout = malloc(sizeof(float) * E), *wout = malloc(sizeof(float) * E);
    for (int64_t r = 0; r < E; r++) {
        float acc = 0.0f;
        for (int k = 0; k < K; k++) acc += dot_q8K(tdown, F, wd + ((size_t)sel[k] * E + r) * rdn, hq + k * (F / 256));
        wout[r] = acc + add[r];
    }
    down(gout, dout, sizeof(float) * E);
    same_floats("experts down + sum (decode)", gout, wout, (size_t)E);
    ds4cu_free(dwg); ds4cu_free(dwu); ds4cu_free(dwd); ds4cu_free(dxq); ds4cu_free(dhq); ds4cu_free(dsel);
    ds4cu_free(dg); ds4cu_free(du); ds4cu_free(dout);
    free(wg); free(wu); free(wd); free(x); free(h); free(add); free(xq); free(hq); free(got); free(want);
    free(gout); free(wout);
}

TEST(experts_dec_iq2_xxs_q2_K) { if (have_gpu()) check_experts_dec(DS4_TYPE_IQ2_XXS, DS4_TYPE_Q2_K, 4096, 2048, 8, 6); }
TEST(experts_dec_q4_K) { if (have_gpu()) check_experts_dec(DS4_TYPE_Q4_K, DS4_TYPE_Q4_K, 4096, 2048, 7, 6); }

/* ex_dec.cu's kernels on shapes the real model does not have (the case above
 * runs them on its shapes through the wrappers): IQ2_XXS of width 2048 with
 * one activation row per 2 pairs and a row count no warp share divides; Q2_K
 * of width 1024 with 8 picks and no add[]. Bit-identical to the CPU. */
TEST(experts_dec_ex_odd_shapes) {
    if (!have_gpu()) return;
    const int64_t E = 2048, F = 37, E2 = 1024, R2 = 53;
    const int pairs = 5, x_div = 2, nx = (pairs + x_div - 1) / x_div, nexp = 7, K = 8;
    const size_t rgu = (size_t)ds4_row_bytes(DS4_TYPE_IQ2_XXS, (uint64_t)E);
    const size_t rdn = (size_t)ds4_row_bytes(DS4_TYPE_Q2_K, (uint64_t)E2);
    uint8_t *wg = rand_expert_rows(DS4_TYPE_IQ2_XXS, E, F * nexp), *wu = rand_expert_rows(DS4_TYPE_IQ2_XXS, E, F * nexp);
    uint8_t *wd = rand_expert_rows(DS4_TYPE_Q2_K, E2, R2 * nexp);
    int32_t sel[8];
    for (int k = 0; k < K; k++) sel[k] = (int32_t)(((rng = rng * 6364136223846793005ull + 1) >> 33) % (uint64_t)nexp);
    float *x = malloc(sizeof(float) * E * nx), *h = malloc(sizeof(float) * E2 * K);
    fill(x, (size_t)(E * nx), 1.5f);
    fill(h, (size_t)(E2 * K), 1.0f);
    ds4_block_q8_K *xq = malloc(sizeof *xq * (E / 256) * nx), *hq = malloc(sizeof *hq * (E2 / 256) * K);
    for (int i = 0; i < nx; i++) ds4_quantize_q8_K(x + i * E, xq + i * (E / 256), E);
    for (int k = 0; k < K; k++) ds4_quantize_q8_K(h + k * E2, hq + k * (E2 / 256), E2);
    void *dwg = up(wg, rgu * F * nexp), *dwu = up(wu, rgu * F * nexp), *dwd = up(wd, rdn * R2 * nexp);
    void *dxq = up(xq, sizeof *xq * (E / 256) * nx), *dhq = up(hq, sizeof *hq * (E2 / 256) * K);
    int32_t *dsel = up(sel, sizeof sel);
    float *dg = ds4cu_malloc(sizeof(float) * F * pairs), *du = ds4cu_malloc(sizeof(float) * F * pairs);
    float *dout = ds4cu_malloc(sizeof(float) * R2);
    ds4cu_fill(dg, NAN, (size_t)(F * pairs));
    ds4cu_fill(du, NAN, (size_t)(F * pairs));
    ds4cu_fill(dout, NAN, (size_t)R2);
    CHECK_EQ_INT(ds4cu_ex_iq2_gate_up_dec(dwg, dwu, rgu, E, F, dsel, pairs, x_div, dxq, dg, du), 0);
    CHECK_EQ_INT(ds4cu_ex_q2k_down_dec(dwd, rdn, E2, R2, dsel, K, dhq, NULL, dout), 0);
    float *got = malloc(sizeof(float) * F * pairs), *want = malloc(sizeof(float) * F * pairs);
    for (int m2 = 0; m2 < 2; m2++) {
        const uint8_t *w = m2 ? wu : wg;
        for (int p = 0; p < pairs; p++)
            for (int64_t r = 0; r < F; r++)
                want[p * F + r] = ds4_vec_dot_iq2_xxs_q8_K_ref(E, w + ((size_t)sel[p] * F + r) * rgu,
                                                               xq + (p / x_div) * (E / 256));
        down(got, m2 ? du : dg, sizeof(float) * F * pairs);
        same_floats(m2 ? "ex_dec up" : "ex_dec gate", got, want, (size_t)(F * pairs));
    }
    float *gout = malloc(sizeof(float) * R2), *wout = malloc(sizeof(float) * R2);
    for (int64_t r = 0; r < R2; r++) {
        float acc = 0.0f;
        for (int k = 0; k < K; k++)
            acc += ds4_vec_dot_q2_K_q8_K_ref(E2, wd + ((size_t)sel[k] * R2 + r) * rdn, hq + k * (E2 / 256));
        wout[r] = acc;
    }
    down(gout, dout, sizeof(float) * R2);
    same_floats("ex_dec down, no add", gout, wout, (size_t)R2);
    /* shapes outside the kernels: refused, nothing launched */
    CHECK_EQ_INT(ds4cu_ex_iq2_gate_up_dec(dwg, dwu, rgu, 8192, F, dsel, pairs, x_div, dxq, dg, du), -1);
    CHECK_EQ_INT(ds4cu_ex_q2k_down_dec(dwd, rdn, E2, R2, dsel, 9, dhq, NULL, dout), -1);
    ds4cu_free(dwg); ds4cu_free(dwu); ds4cu_free(dwd); ds4cu_free(dxq); ds4cu_free(dhq); ds4cu_free(dsel);
    ds4cu_free(dg); ds4cu_free(du); ds4cu_free(dout);
    free(wg); free(wu); free(wd); free(x); free(h); free(xq); free(hq); free(got); free(want); free(gout); free(wout);
}

/* ---- fused decode-step kernels (fused.cu) against their CPU twins ---- */

static int ulps_(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4); memcpy(&ib, &b, 4);
    return ia > ib ? ia - ib : ib - ia;
}

/* norm_quant: the norm (within 1 ulp, like rmsnorm_rows) and the codes of
 * the GPU's own normed values (bit for bit), plain input and HC stream sum. */
TEST(norm_quant_plain_and_streams) {
    if (!have_gpu()) return;
    const int E = 4096, HC = 4;
    float *X = malloc(sizeof(float) * HC * E), *pre = malloc(sizeof(float) * HC), *w = malloc(sizeof(float) * E);
    float *a = malloc(sizeof(float) * E), *want = malloc(sizeof(float) * E), *got = malloc(sizeof(float) * E);
    float *ga = malloc(sizeof(float) * E);
    fill(X, (size_t)HC * E, 3.0f);
    fill(pre, HC, 1.0f);
    fill(w, E, 1.0f);
    for (int i = 0; i < 256; i++) X[i] = 0.0f; /* a zero Q8_K block in the plain case */
    ds4_act_q8_0 *q0 = malloc(sizeof *q0 * E / 32), *g0 = malloc(sizeof *g0 * E / 32);
    ds4_block_q8_K *qk = malloc(sizeof *qk * E / 256), *gk = malloc(sizeof *gk * E / 256);
    float *dX = up(X, sizeof(float) * HC * E), *dpre = up(pre, sizeof(float) * HC), *dw = up(w, sizeof(float) * E);
    float *dy = ds4cu_malloc(sizeof(float) * E), *da = ds4cu_malloc(sizeof(float) * E);
    void *d0 = ds4cu_malloc(sizeof *q0 * E / 32), *dk = ds4cu_malloc(sizeof *qk * E / 256);
    for (int streams = 0; streams < 2; streams++) {
        const float *in = X;
        if (streams) {
            for (int d = 0; d < E; d++) {
                float acc = 0.0f;
                for (int h = 0; h < HC; h++) acc += X[(size_t)h * E + d] * pre[h];
                a[d] = acc;
            }
            in = a;
            ds4cu_norm_quant(dX, dpre, HC, NULL, da, dw, dy, 1, E, 1e-6f, d0, dk);
            down(ga, da, sizeof(float) * E);
            same_floats("norm_quant stream sum", ga, a, (size_t)E);
        } else {
            ds4cu_norm_quant(NULL, NULL, 0, dX, NULL, dw, dy, 1, E, 1e-6f, d0, dk);
        }
        ds4_rmsnorm(in, w, want, E, 1e-6f);
        down(got, dy, sizeof(float) * E);
        for (int i = 0; i < E; i++)
            if (ulps_(got[i], want[i]) > 1) T_FAIL("norm_quant %d: gpu %.9g cpu %.9g", i, got[i], want[i]);
        ds4_quantize_act_q8_0(got, q0, E);
        ds4_quantize_q8_K(got, qk, E);
        down(g0, d0, sizeof *q0 * E / 32);
        down(gk, dk, sizeof *qk * E / 256);
        CHECK(memcmp(q0, g0, sizeof *q0 * E / 32) == 0);
        CHECK(memcmp(qk, gk, sizeof *qk * E / 256) == 0);
    }
    ds4cu_free(dX); ds4cu_free(dpre); ds4cu_free(dw); ds4cu_free(dy); ds4cu_free(da); ds4cu_free(d0); ds4cu_free(dk);
    free(X); free(pre); free(w); free(a); free(want); free(got); free(ga); free(q0); free(g0); free(qk); free(gk);
}

/* Fast HC pre-mix against the exact chain of already-tested kernels
 * (rmsnorm, index-order F16 product, hc_pre, rmsnorm with weight). */
TEST(hc_pre_fast_vs_exact_chain) {
    if (!have_gpu()) return;
    const int E = 4096, HC = 4, M = 2 * HC + HC * HC, W = HC * E;
    float *X = malloc(sizeof(float) * W), *nw = malloc(sizeof(float) * E), *base = malloc(sizeof(float) * M);
    const float scale[3] = {0.7f, 0.9f, 1.3f};
    uint16_t *fn = malloc(sizeof(uint16_t) * W * M);
    fill(X, (size_t)W, 2.0f);
    fill(nw, E, 1.0f);
    fill(base, M, 0.5f);
    for (int i = 0; i < W * M; i++) fn[i] = ds4_f32_to_f16(frand() * 0.02f);
    float *dX = up(X, sizeof(float) * W), *dnw = up(nw, sizeof(float) * E), *dbase = up(base, sizeof(float) * M);
    float *dsc = up(scale, sizeof scale);
    void *dfn = up(fn, sizeof(uint16_t) * W * M);
    float *du = ds4cu_malloc(sizeof(float) * W), *dmix = ds4cu_malloc(sizeof(float) * M);
    float *dout = ds4cu_malloc(sizeof(float) * (3 * HC + HC * HC + 2 * E)); /* pre post comb a y, exact */
    float *fout = ds4cu_malloc(sizeof(float) * (3 * HC + HC * HC + 2 * E)); /* the same, fast */
    float *part = ds4cu_malloc(ds4cu_hc_fast_scratch(HC, E));
    void *xq = ds4cu_malloc(sizeof(ds4_act_q8_0) * E / 32);
    ds4cu_rmsnorm(dX, NULL, du, 1, W, 1e-6f);
    ds4cu_matvec_f16(dfn, sizeof(uint16_t) * W, W, M, 1, du, 1, dmix, 1);
    ds4cu_hc_pre(dmix, dsc, dbase, dX, 1, HC, E, 20, 1e-6f, dout, dout + HC, dout + 2 * HC, dout + 2 * HC + HC * HC);
    float *ea = dout + 2 * HC + HC * HC, *ey = ea + E;
    ds4cu_rmsnorm(ea, dnw, ey, 1, E, 1e-6f);
    CHECK_EQ_INT(ds4cu_hc_pre_fast(dfn, sizeof(uint16_t) * W, dsc, dbase, dX, HC, E, 20, 1e-6f, 1e-6f, part, fout,
                                   fout + HC, fout + 2 * HC, dnw, fout + 2 * HC + HC * HC + E, xq, NULL), 0);
    const int tot = 2 * HC + HC * HC;
    float *e = malloc(sizeof(float) * (tot + 2 * E)), *f = malloc(sizeof(float) * (tot + 2 * E));
    down(e, dout, sizeof(float) * (tot + 2 * E));
    down(f, fout, sizeof(float) * (tot + 2 * E));
    for (int i = 0; i < tot; i++) CHECK_NEAR(f[i], e[i], 2e-5 * (1 + fabs(e[i])));
    for (int i = tot + E; i < tot + 2 * E; i++) CHECK_NEAR(f[i], e[i], 1e-4 * (1 + fabs(e[i])));
    ds4_act_q8_0 *q = malloc(sizeof *q * E / 32), *gq = malloc(sizeof *gq * E / 32);
    ds4_quantize_act_q8_0(f + tot + E, q, E);
    down(gq, xq, sizeof *q * E / 32);
    CHECK(memcmp(q, gq, sizeof *q * E / 32) == 0);
    ds4cu_free(dX); ds4cu_free(dnw); ds4cu_free(dbase); ds4cu_free(dsc); ds4cu_free(dfn); ds4cu_free(du);
    ds4cu_free(dmix); ds4cu_free(dout); ds4cu_free(fout); ds4cu_free(part); ds4cu_free(xq);
    free(X); free(nw); free(base); free(fn); free(e); free(f); free(q); free(gq);
}

static float *rope_table(int n_pos, int nr) {
    ds4_rope rp;
    ds4_rope_init(&rp, nr, 160000.0f, 1, 16.0f, 65536, 32.0f, 1.0f);
    float *tab = malloc(sizeof(float) * n_pos * nr);
    for (int p = 0; p < n_pos; p++) ds4_rope_cs(&rp, p, tab + p * nr, tab + p * nr + nr / 2);
    return tab;
}

/* Head norms + RoPE + FP8 against ds4_rmsnorm, ds4_rope_apply, ds4_fp8_kv. */
TEST(qkv_post_vs_cpu) {
    if (!have_gpu()) return;
    const int H = 64, D = 512, NR = 64, P = 3001;
    float *tab = rope_table(P + 1, NR);
    float *q = malloc(sizeof(float) * H * D), *kvr = malloc(sizeof(float) * D), *w = malloc(sizeof(float) * D);
    float *kvv = malloc(sizeof(float) * D), *gq = malloc(sizeof(float) * H * D), *gkv = malloc(sizeof(float) * D);
    fill(q, (size_t)H * D, 2.0f);
    fill(kvr, D, 2.0f);
    fill(w, D, 1.0f);
    float *dq = up(q, sizeof(float) * H * D), *dkvr = up(kvr, sizeof(float) * D), *dw = up(w, sizeof(float) * D);
    float *dtab = up(tab, sizeof(float) * (P + 1) * NR), *dkvv = ds4cu_malloc(sizeof(float) * D);
    ds4cu_qkv_post(dq, dkvr, dw, dkvv, 1, H, D, NR, dtab, P, 1e-6f, D - NR);
    for (int h = 0; h < H; h++) ds4_rmsnorm(q + h * D, NULL, q + h * D, D, 1e-6f);
    ds4_rmsnorm(kvr, w, kvv, D, 1e-6f);
    ds4_rope_apply(q, H, D, NR, tab + P * NR, tab + P * NR + NR / 2, 0);
    ds4_rope_apply(kvv, 1, D, NR, tab + P * NR, tab + P * NR + NR / 2, 0);
    ds4_fp8_kv(kvv, D - NR);
    down(gq, dq, sizeof(float) * H * D);
    down(gkv, dkvv, sizeof(float) * D);
    same_floats("qkv_post q", gq, q, (size_t)H * D);
    same_floats("qkv_post kv", gkv, kvv, (size_t)D);
    ds4cu_free(dq); ds4cu_free(dkvr); ds4cu_free(dw); ds4cu_free(dtab); ds4cu_free(dkvv);
    free(tab); free(q); free(kvr); free(w); free(kvv); free(gq); free(gkv);
}

/* Indexer query post-processing and the un-rotation + Q8_0 codes of o. */
TEST(idx_post_and_unrope_q8_0_vs_cpu) {
    if (!have_gpu()) return;
    const int IH = 64, ID = 128, H = 64, D = 512, NR = 64, P = 777;
    float *tab = rope_table(P + 1, NR), *dtab = up(tab, sizeof(float) * (P + 1) * NR);
    float *qI = malloc(sizeof(float) * IH * ID), *wI = malloc(sizeof(float) * IH), *o = malloc(sizeof(float) * H * D);
    float *g = malloc(sizeof(float) * H * D);
    fill(qI, (size_t)IH * ID, 2.0f);
    fill(wI, IH, 1.0f);
    fill(o, (size_t)H * D, 1.5f);
    float *dqI = up(qI, sizeof(float) * IH * ID), *dwI = up(wI, sizeof(float) * IH), *dO = up(o, sizeof(float) * H * D);
    const float ws = 1.0f / sqrtf((float)(ID * IH));
    CHECK_EQ_INT(ds4cu_idx_post(dqI, dwI, 1, IH, ID, NR, dtab, P, ws), 0);
    ds4_rope_apply(qI, IH, ID, NR, tab + P * NR, tab + P * NR + NR / 2, 0);
    for (int h = 0; h < IH; h++) ds4_iqat(qI + h * ID);
    for (int h = 0; h < IH; h++) wI[h] = wI[h] * ws;
    down(g, dqI, sizeof(float) * IH * ID);
    same_floats("idx_post qI", g, qI, (size_t)IH * ID);
    down(g, dwI, sizeof(float) * IH);
    same_floats("idx_post wI", g, wI, (size_t)IH);
    void *dxq = ds4cu_malloc(sizeof(ds4_act_q8_0) * H * D / 32);
    CHECK_EQ_INT(ds4cu_unrope_q8_0(dO, 1, H, D, NR, dtab, P, dxq), 0);
    ds4_rope_apply(o, H, D, NR, tab + P * NR, tab + P * NR + NR / 2, 1);
    ds4_act_q8_0 *want = malloc(sizeof *want * H * D / 32), *got = malloc(sizeof *got * H * D / 32);
    ds4_quantize_act_q8_0(o, want, H * D);
    down(got, dxq, sizeof *got * H * D / 32);
    CHECK(memcmp(want, got, sizeof *got * H * D / 32) == 0);
    ds4cu_free(dtab); ds4cu_free(dqI); ds4cu_free(dwI); ds4cu_free(dO); ds4cu_free(dxq);
    free(tab); free(qI); free(wI); free(o); free(g); free(want); free(got);
}

/* Decode attention (two grids, attn_dec.cu) against ds4cu_attention (the
 * batch kernel the goldens check) on the same cache, bit for bit: raw window
 * only, compressed rows, top-k selected rows; with device positions (the
 * graph's mode: grids sized for comp_cap rows) and without; a partial raw
 * window; more value rows than the staging ring holds. */
static void check_attention_dec_at(int ratio, int use_sel, int n_comp, int64_t pos0, int use_dpos) {
    const int H = 64, D = 512, swa = 128, raw_cap = 128, top_k = 512;
    if (pos0 < 0) pos0 = ratio ? (int64_t)n_comp * ratio + ratio - 2 : 700;
    float *q = malloc(sizeof(float) * H * D), *kv = malloc(sizeof(float) * D), *raw = malloc(sizeof(float) * raw_cap * D);
    float *comp = malloc(sizeof(float) * (n_comp + 2) * D), *sinks = malloc(sizeof(float) * H);
    fill(q, (size_t)H * D, 0.2f);
    fill(kv, D, 1.0f);
    fill(raw, (size_t)raw_cap * D, 1.0f);
    fill(comp, (size_t)(n_comp + 2) * D, 1.0f);
    fill(sinks, H, 2.0f);
    int32_t *sel = malloc(sizeof(int32_t) * top_k);
    for (int i = 0; i < top_k; i++) sel[i] = (i * 7) % (n_comp - 1) + (i > 300); /* scattered, ascending-ish */
    float *dq = up(q, sizeof(float) * H * D), *dkv = up(kv, sizeof(float) * D);
    float *draw1 = up(raw, sizeof(float) * raw_cap * D), *draw2 = up(raw, sizeof(float) * raw_cap * D);
    float *dcomp = up(comp, sizeof(float) * (n_comp + 2) * D), *dsinks = up(sinks, sizeof(float) * H);
    int32_t *dsel = up(sel, sizeof(int32_t) * top_k);
    int64_t *dpos = up(&pos0, sizeof pos0);
    float *o1 = ds4cu_malloc(sizeof(float) * H * D), *o2 = ds4cu_malloc(sizeof(float) * H * D);
    float *kvh1 = ds4cu_malloc(sizeof(float) * D), *kvh2 = ds4cu_malloc(sizeof(float) * D);
    const size_t scr = (size_t)H * (swa + n_comp + 2);
    float *dscr = ds4cu_malloc(sizeof(float) * scr);
    const int nc0 = ratio ? (int)(pos0 / ratio) : 0, cap = ratio ? n_comp + 2 : 0;
    const float scale = 1.0f / sqrtf((float)D);
    ds4cu_attention(dq, o1, dkv, kvh1, draw1, raw_cap, pos0, 1, swa, dcomp, nc0, cap, ratio, use_sel ? dsel : NULL,
                    top_k, dsinks, H, D, scale);
    if (use_dpos) ds4cu_set_dpos(dpos);
    /* with device positions the host position and count are stale on purpose */
    CHECK_EQ_INT(ds4cu_attention_dec(dq, o2, dkv, kvh2, draw2, raw_cap, use_dpos ? 1 : pos0, swa, dcomp,
                                     use_dpos ? 0 : nc0, cap, ratio, use_sel ? dsel : NULL, top_k, dsinks, H, D, scale,
                                     dscr, scr), 0);
    ds4cu_set_dpos(NULL);
    float *g1 = malloc(sizeof(float) * H * D), *g2 = malloc(sizeof(float) * H * D);
    down(g1, o1, sizeof(float) * H * D);
    down(g2, o2, sizeof(float) * H * D);
    same_floats("attention_dec output", g2, g1, (size_t)H * D);
    float *r1 = malloc(sizeof(float) * raw_cap * D), *r2 = malloc(sizeof(float) * raw_cap * D);
    down(r1, draw1, sizeof(float) * raw_cap * D);
    down(r2, draw2, sizeof(float) * raw_cap * D);
    same_floats("attention_dec raw ring", r2, r1, (size_t)raw_cap * D);
    ds4cu_free(dq); ds4cu_free(dkv); ds4cu_free(draw1); ds4cu_free(draw2); ds4cu_free(dcomp); ds4cu_free(dsinks);
    ds4cu_free(dsel); ds4cu_free(o1); ds4cu_free(o2); ds4cu_free(kvh1); ds4cu_free(kvh2); ds4cu_free(dscr);
    ds4cu_free(dpos);
    free(q); free(kv); free(raw); free(comp); free(sinks); free(sel); free(g1); free(g2); free(r1); free(r2);
}
static void check_attention_dec(int ratio, int use_sel) { check_attention_dec_at(ratio, use_sel, 600, -1, 0); }

TEST(attention_dec_raw_only) { if (have_gpu()) check_attention_dec(0, 0); }
TEST(attention_dec_ratio128) { if (have_gpu()) check_attention_dec(128, 0); }
TEST(attention_dec_topk_rows) { if (have_gpu()) check_attention_dec(4, 1); }
TEST(attention_dec_device_positions) {
    if (!have_gpu()) return;
    check_attention_dec_at(0, 0, 600, 2050, 1);     /* ratio-0 layer at 2k */
    check_attention_dec_at(4, 1, 600, 2403, 1);     /* top-k rows, emitting position */
    check_attention_dec_at(4, 1, 600, 2001, 1);     /* n_comp <= top_k: the first 500 rows */
    check_attention_dec_at(128, 0, 600, 2175, 1);   /* ratio 128 at 2k: 16 rows of a 602-row cap */
    check_attention_dec_at(128, 0, 600, 600 * 128 + 127, 1);
}
TEST(attention_dec_partial_window_and_long_ring) {
    if (!have_gpu()) return;
    check_attention_dec_at(0, 0, 600, 5, 0);        /* six raw rows */
    check_attention_dec_at(128, 0, 1000, -1, 0);    /* 1128 rows: the value ring wraps */
    check_attention_dec_at(4, 1, 600, 37, 0);       /* 38 raw + 9 compressed */
}

/* Indexer scores (one thread per row-head chain) and top-k, against the
 * CPU's loop (attention.c indexer_select: index-order dots, head-order sum)
 * and its sorted choice (higher score first, ties to the lower row). */
TEST(indexer_select_scores_and_topk) {
    if (!have_gpu()) return;
    const int n = 700, IH = 64, ID = 128, k = 512;
    float *idx = malloc(sizeof(float) * n * ID), *qI = malloc(sizeof(float) * IH * ID), *wI = malloc(sizeof(float) * IH);
    fill(idx, (size_t)n * ID, 1.0f);
    fill(qI, (size_t)IH * ID, 1.0f);
    fill(wI, IH, 1.0f);
    memcpy(idx + 5 * ID, idx + 9 * ID, sizeof(float) * ID); /* a tie: rows 5 and 9 */
    float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    for (int c = 0; c < n; c++) {
        float score = 0.0f;
        for (int h = 0; h < IH; h++) {
            float d = 0.0f;
            for (int i = 0; i < ID; i++) d += idx[c * ID + i] * qI[h * ID + i];
            score += (d > 0.0f ? d : 0.0f) * wI[h];
        }
        want[c] = score;
    }
    float *didx = up(idx, sizeof(float) * n * ID), *dq = up(qI, sizeof(float) * IH * ID), *dw = up(wI, sizeof(float) * IH);
    float *dsc = ds4cu_malloc(sizeof(float) * n);
    int32_t *dfl = ds4cu_malloc(sizeof(int32_t) * n), *dsel = ds4cu_malloc(sizeof(int32_t) * k);
    ds4cu_indexer_select(didx, n, dq, dw, IH, ID, k, dsc, dfl, dsel);
    down(got, dsc, sizeof(float) * n);
    same_floats("indexer scores", got, want, (size_t)n);
    int32_t *sel = malloc(sizeof(int32_t) * k), m = 0;
    down(sel, dsel, sizeof(int32_t) * k);
    for (int c = 0; c < n; c++) {
        int rank = 0;
        for (int j = 0; j < n; j++) rank += want[j] > want[c] || (want[j] == want[c] && j < c);
        if (rank < k) {
            if (m >= k || sel[m] != c) T_FAIL("top-k entry %d: gpu %d cpu %d", m, m < k ? sel[m] : -1, c);
            m++;
        }
    }
    CHECK_EQ_INT(m, k);
    ds4cu_free(didx); ds4cu_free(dq); ds4cu_free(dw); ds4cu_free(dsc); ds4cu_free(dfl); ds4cu_free(dsel);
    free(idx); free(qI); free(wI); free(want); free(got); free(sel);
}

/* The one-token compressor (attn_dec.cu) against the sequential one
 * (attn.cu, the goldens' path), bit for bit in the emitted rows and the whole
 * window state after every step, from a random (not canonical) state over
 * consecutive positions that emit and that do not: ratio 4 (w 512, FP8),
 * the indexer's ratio 4 (w 128, Hadamard + FP4), ratio 128 (w 512); with
 * host and with device positions. */
static void check_compressor_dec(int r, int w, int indexer, int64_t p0, int steps, int use_dpos) {
    const int L = r == 4 ? 2 : 1, Wc = L * w, nrows = r == 4 ? 8 : r, nr = 64, n_rows = (int)((p0 + steps) / r) + 2;
    const size_t st = (size_t)nrows * Wc;
    float *SV = malloc(sizeof(float) * st), *SK = malloc(sizeof(float) * st), *nw = malloc(sizeof(float) * w);
    float *v = malloc(sizeof(float) * Wc * steps), *g = malloc(sizeof(float) * Wc * steps);
    uint16_t *ape = malloc(sizeof(uint16_t) * r * Wc);
    fill(SV, st, 2.0f);
    fill(SK, st, 3.0f);
    for (size_t i = 0; i < st; i += 7) SK[i] = -1e30f; /* some cleared slots */
    fill(nw, w, 1.0f);
    fill(v, (size_t)Wc * steps, 2.0f);
    fill(g, (size_t)Wc * steps, 3.0f);
    for (int i = 0; i < r * Wc; i++) ape[i] = ds4_f32_to_f16(frand());
    float *tab = rope_table((int)(p0 + steps + 1), nr);
    float *dSV1 = up(SV, sizeof(float) * st), *dSK1 = up(SK, sizeof(float) * st);
    float *dSV2 = up(SV, sizeof(float) * st), *dSK2 = up(SK, sizeof(float) * st);
    float *dv = up(v, sizeof(float) * Wc * steps), *dg = up(g, sizeof(float) * Wc * steps), *dnw = up(nw, sizeof(float) * w);
    uint16_t *dape = up(ape, sizeof(uint16_t) * r * Wc);
    float *dtab = up(tab, sizeof(float) * (p0 + steps + 1) * nr);
    float *rows = calloc((size_t)n_rows * w, sizeof(float));
    float *drows1 = up(rows, sizeof(float) * n_rows * w), *drows2 = up(rows, sizeof(float) * n_rows * w);
    int64_t *dpos = ds4cu_malloc(sizeof(int64_t));
    float *a = malloc(sizeof(float) * st), *b = malloc(sizeof(float) * st);
    float *ra = malloc(sizeof(float) * n_rows * w), *rb = malloc(sizeof(float) * n_rows * w);
    int emitted = 0;
    for (int t = 0; t < steps; t++) {
        const int64_t p = p0 + t;
        const int nrow0 = (int)(p / r);
        ds4cu_compressor_seq(dSV1, dSK1, dv + (size_t)t * Wc, dg + (size_t)t * Wc, dape, r, w, p, 1, dnw, 1e-6f, dtab,
                             nr, indexer, drows1, nrow0);
        if (use_dpos) {
            ds4cu_h2d(dpos, &p, sizeof p);
            ds4cu_set_dpos(dpos);
        }
        CHECK_EQ_INT(ds4cu_compressor_dec(dSV2, dSK2, dv + (size_t)t * Wc, dg + (size_t)t * Wc, dape, r, w,
                                          use_dpos ? 0 : p, dnw, 1e-6f, dtab, nr, indexer, drows2,
                                          use_dpos ? 0 : nrow0), 0);
        ds4cu_set_dpos(NULL);
        emitted += (p + 1) % r == 0;
        down(a, dSV1, sizeof(float) * st);
        down(b, dSV2, sizeof(float) * st);
        same_floats("compressor state SV", b, a, st);
        down(a, dSK1, sizeof(float) * st);
        down(b, dSK2, sizeof(float) * st);
        same_floats("compressor state SK", b, a, st);
        down(ra, drows1, sizeof(float) * n_rows * w);
        down(rb, drows2, sizeof(float) * n_rows * w);
        same_floats("compressor rows", rb, ra, (size_t)n_rows * w);
    }
    CHECK(emitted > 0);
    int nonzero = 0;
    for (int i = 0; i < n_rows * w; i++) nonzero += ra[i] != 0.0f;
    CHECK(nonzero > w / 2); /* rows were really written */
    ds4cu_free(dSV1); ds4cu_free(dSK1); ds4cu_free(dSV2); ds4cu_free(dSK2); ds4cu_free(dv); ds4cu_free(dg);
    ds4cu_free(dnw); ds4cu_free(dape); ds4cu_free(dtab); ds4cu_free(drows1); ds4cu_free(drows2); ds4cu_free(dpos);
    free(SV); free(SK); free(nw); free(v); free(g); free(ape); free(tab); free(rows); free(a); free(b); free(ra);
    free(rb);
}

TEST(compressor_dec_ratio4) {
    if (!have_gpu()) return;
    check_compressor_dec(4, 512, 0, 2045, 9, 0);
    check_compressor_dec(4, 512, 0, 2, 6, 1); /* the first window: previous slots cleared or random */
}
TEST(compressor_dec_indexer) { if (have_gpu()) check_compressor_dec(4, 128, 1, 2045, 9, 1); }
TEST(compressor_dec_ratio128) {
    if (!have_gpu()) return;
    check_compressor_dec(128, 512, 0, 2044, 6, 0); /* emits at 2047 */
    check_compressor_dec(128, 512, 0, 125, 4, 1);
}

/* Indexer choice at 8k context (2048 rows, top 512) and with device
 * positions: nothing happens while (p+1)/4 <= k, the real choice after. */
static void check_indexer(int n, int use_dpos, int64_t pos, int ties) {
    const int IH = 64, ID = 128, k = 512;
    float *idx = malloc(sizeof(float) * n * ID), *qI = malloc(sizeof(float) * IH * ID), *wI = malloc(sizeof(float) * IH);
    fill(idx, (size_t)n * ID, 1.0f);
    fill(qI, (size_t)IH * ID, 1.0f);
    fill(wI, IH, 1.0f);
    for (int c = 0; c < ties; c++) memcpy(idx + (size_t)(100 + 3 * c) * ID, idx + 7 * ID, sizeof(float) * ID);
    const int nv = use_dpos ? (int)((pos + 1) / 4) : n; /* rows the kernels see */
    float *want = malloc(sizeof(float) * n);
    for (int c = 0; c < nv; c++) {
        float score = 0.0f;
        for (int h = 0; h < IH; h++) {
            float d = 0.0f;
            for (int i = 0; i < ID; i++) d += idx[c * ID + i] * qI[h * ID + i];
            score += (d > 0.0f ? d : 0.0f) * wI[h];
        }
        want[c] = score;
    }
    float *didx = up(idx, sizeof(float) * n * ID), *dq = up(qI, sizeof(float) * IH * ID), *dw = up(wI, sizeof(float) * IH);
    float *dsc = ds4cu_malloc(sizeof(float) * n);
    int32_t *dfl = ds4cu_malloc(sizeof(int32_t) * n), *dsel = ds4cu_malloc(sizeof(int32_t) * k);
    int32_t *sel = malloc(sizeof(int32_t) * k);
    for (int i = 0; i < k; i++) sel[i] = -7;
    ds4cu_h2d(dsel, sel, sizeof(int32_t) * k);
    int64_t *dpos = up(&pos, sizeof pos);
    if (use_dpos) ds4cu_set_dpos(dpos);
    ds4cu_indexer_select(didx, n, dq, dw, IH, ID, k, dsc, dfl, dsel);
    ds4cu_set_dpos(NULL);
    down(sel, dsel, sizeof(int32_t) * k);
    if (nv <= k) {
        for (int i = 0; i < k; i++) CHECK_EQ_INT(sel[i], -7); /* untouched */
    } else {
        float *got = malloc(sizeof(float) * nv);
        down(got, dsc, sizeof(float) * nv);
        same_floats("indexer scores", got, want, (size_t)nv);
        free(got);
        int m = 0;
        for (int c = 0; c < nv; c++) {
            int rank = 0;
            for (int j = 0; j < nv; j++) rank += want[j] > want[c] || (want[j] == want[c] && j < c);
            if (rank < k) {
                if (m >= k || sel[m] != c) T_FAIL("top-k entry %d: gpu %d cpu %d", m, m < k ? sel[m] : -1, c);
                m++;
            }
        }
        CHECK_EQ_INT(m, k);
    }
    ds4cu_free(didx); ds4cu_free(dq); ds4cu_free(dw); ds4cu_free(dsc); ds4cu_free(dfl); ds4cu_free(dsel);
    ds4cu_free(dpos);
    free(idx); free(qI); free(wI); free(want); free(sel);
}

TEST(indexer_select_8k_and_device_positions) {
    if (!have_gpu()) return;
    check_indexer(2050, 0, 0, 40);          /* 8k context, 40 tied rows */
    check_indexer(514, 1, 2046, 0);         /* 2k cap, (p+1)/4 = 511: no choice */
    check_indexer(514, 1, 2051, 3);         /* 513 rows: one dropped */
    check_indexer(2050, 1, 8190, 600);      /* 2047 rows, many ties across the cut */
    check_indexer(9000, 0, 0, 10);          /* past the 8 chunks whose flags k_compact preloads */
}

static int ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4); memcpy(&ib, &b, 4);
    return ia > ib ? ia - ib : ib - ia;
}

TEST(rmsnorm_rows) {
    if (!have_gpu()) return;
    const int rows = 4, n = 16384;
    float *x = malloc(sizeof(float) * rows * n), *w = malloc(sizeof(float) * n);
    float *want = malloc(sizeof(float) * rows * n), *got = malloc(sizeof(float) * rows * n);
    fill(x, (size_t)rows * n, 4.0f);
    fill(w, n, 1.0f);
    for (int r = 0; r < rows; r++) ds4_rmsnorm(x + r * n, r & 1 ? w : NULL, want + r * n, n, 1e-6f);
    float *dx = up(x, sizeof(float) * rows * n), *dw = up(w, sizeof(float) * n), *dy = ds4cu_malloc(sizeof(float) * rows * n);
    for (int r = 0; r < rows; r++) ds4cu_rmsnorm(dx + r * n, r & 1 ? dw : NULL, dy + r * n, 1, n, 1e-6f);
    down(got, dy, sizeof(float) * rows * n);
    for (int i = 0; i < rows * n; i++)
        if (ulps(got[i], want[i]) > 1) T_FAIL("rmsnorm %d: gpu %.9g cpu %.9g", i, got[i], want[i]);
    ds4cu_free(dx); ds4cu_free(dw); ds4cu_free(dy);
    free(x); free(w); free(want); free(got);
}

TEST(fp8_kv_and_iqat) {
    if (!have_gpu()) return;
    const int rows = 64, D = 512, R = 64;
    float *x = malloc(sizeof(float) * rows * D), *got = malloc(sizeof(float) * rows * D);
    fill(x, (size_t)rows * D, 3.0f);
    for (int i = 0; i < 64; i++) x[i] *= 1e-6f; /* a block under the amax floor */
    float *dx = up(x, sizeof(float) * rows * D);
    for (int r = 0; r < rows; r++) ds4_fp8_kv(x + r * D, D - R);
    ds4cu_fp8_kv(dx, rows, D, D - R);
    down(got, dx, sizeof(float) * rows * D);
    same_floats("fp8_kv", got, x, (size_t)rows * D);
    fill(x, (size_t)rows * 128, 2.0f);
    ds4cu_h2d(dx, x, sizeof(float) * rows * 128);
    for (int r = 0; r < rows; r++) ds4_iqat(x + r * 128);
    ds4cu_iqat(dx, rows);
    down(got, dx, sizeof(float) * rows * 128);
    same_floats("iqat", got, x, (size_t)rows * 128);
    ds4cu_free(dx);
    free(x); free(got);
}

TEST(rope_forward_inverse) {
    if (!have_gpu()) return;
    ds4_rope rp;
    ds4_rope_init(&rp, 64, 160000.0f, 1, 16.0f, 65536, 32.0f, 1.0f);
    const int n = 7, H = 64, D = 512, P0 = 4090, NR = 64;
    float *tab = malloc(sizeof(float) * (P0 + n) * NR);
    for (int p = 0; p < P0 + n; p++) ds4_rope_cs(&rp, p, tab + p * NR, tab + p * NR + NR / 2);
    float *x = malloc(sizeof(float) * n * H * D), *got = malloc(sizeof(float) * n * H * D);
    fill(x, (size_t)n * H * D, 1.0f);
    float *dx = up(x, sizeof(float) * n * H * D), *dt = up(tab, sizeof(float) * (P0 + n) * NR);
    for (int inv = 0; inv < 2; inv++) {
        for (int t = 0; t < n; t++) ds4_rope_apply(x + t * H * D, H, D, NR, tab + (P0 + t) * NR, tab + (P0 + t) * NR + NR / 2, inv);
        ds4cu_rope(dx, n, H, D, NR, dt, P0, inv);
        down(got, dx, sizeof(float) * n * H * D);
        same_floats(inv ? "rope inverse" : "rope", got, x, (size_t)n * H * D);
    }
    ds4cu_free(dx); ds4cu_free(dt);
    free(tab); free(x); free(got);
}

/* expf and log1pf: the device twins against this machine's glibc, bit for bit,
 * on every 256th float bit pattern (16.7 M arguments, all magnitudes). */
TEST(libm_expf_log1pf_bits) {
    if (!have_gpu()) return;
    const int n = 1 << 24;
    float *x = malloc(sizeof(float) * n), *e = malloc(sizeof(float) * n), *l = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) {
        const uint32_t u = (uint32_t)i << 8 | (uint32_t)(i * 37 & 255);
        memcpy(&x[i], &u, 4);
        if (x[i] != x[i]) x[i] = 1.0f;
    }
    float *dx = up(x, sizeof(float) * n), *de = ds4cu_malloc(sizeof(float) * n), *dl = ds4cu_malloc(sizeof(float) * n);
    ds4cu_libm(dx, de, dl, n);
    down(e, de, sizeof(float) * n);
    down(l, dl, sizeof(float) * n);
    long bad_e = 0, bad_l = 0;
    for (int i = 0; i < n; i++) {
        const float we = expf(x[i]);
        if (memcmp(&we, &e[i], 4)) { if (!bad_e) printf("# expf(%a): gpu %a glibc %a\n", x[i], e[i], we); bad_e++; }
        if (x[i] >= -1.0f) {
            const float wl = log1pf(x[i]);
            if (memcmp(&wl, &l[i], 4)) { if (!bad_l) printf("# log1pf(%a): gpu %a glibc %a\n", x[i], l[i], wl); bad_l++; }
        }
    }
    CHECKF(bad_e == 0 && bad_l == 0, "%ld expf and %ld log1pf results differ from glibc", bad_e, bad_l);
    ds4cu_free(dx); ds4cu_free(de); ds4cu_free(dl);
    free(x); free(e); free(l);
}

/* ---- fused decode kernels, session 3 (hc_mixnorm.cu, k_route) ---- */

/* One-launch fast HC pre-mix (with and without the folded hc_post) against
 * the exact chain of already-tested kernels: hc_post, rmsnorm, index-order
 * F16 product, hc_pre, rmsnorm with weight. The folded X is bit-identical to
 * hc_post's; pre/post/comb and y within the fast form's bounds (reassociated
 * slice sums of the 24 products); the codes are those of the GPU's own y.
 * Three launches in a row per case exercise the grid barrier's counter. */
static void check_hc_mixnorm(int fold, int want_k, int lean) {
    const int E = 4096, HC = 4, M = 2 * HC + HC * HC, W = HC * E, tot = 2 * HC + HC * HC;
    float *X = malloc(sizeof(float) * W), *Fv = malloc(sizeof(float) * E), *nw = malloc(sizeof(float) * E);
    float *base = malloc(sizeof(float) * M), pc[20];
    const float scale[3] = {0.7f, 0.9f, 1.3f};
    uint16_t *fn = malloc(sizeof(uint16_t) * W * M);
    fill(X, (size_t)W, 2.0f);
    fill(Fv, E, 1.5f);
    fill(nw, E, 1.0f);
    fill(base, M, 0.5f);
    fill(pc, 20, 1.0f);
    for (int i = 0; i < 256; i++) Fv[i] = 0.0f;
    if (!fold) for (int h = 0; h < HC; h++) for (int i = 0; i < 256; i++) X[h * E + i] = 0.0f; /* a zero Q8_K block */
    for (int i = 0; i < W * M; i++) fn[i] = ds4_f32_to_f16(frand() * 0.02f);
    float *dX = up(X, sizeof(float) * W), *dF = up(Fv, sizeof(float) * E), *dnw = up(nw, sizeof(float) * E);
    float *dbase = up(base, sizeof(float) * M), *dsc = up(scale, sizeof scale), *dpc = up(pc, sizeof pc);
    void *dfn = up(fn, sizeof(uint16_t) * W * M);
    float *dXn = ds4cu_malloc(sizeof(float) * W), *dXf = ds4cu_malloc(sizeof(float) * W);
    float *du = ds4cu_malloc(sizeof(float) * W), *dmix = ds4cu_malloc(sizeof(float) * M);
    float *dout = ds4cu_malloc(sizeof(float) * (tot + 2 * E)); /* pre post comb a y, exact chain */
    float *fout = ds4cu_malloc(sizeof(float) * (tot + E));     /* pre post comb y, one launch */
    float *fpc = ds4cu_malloc(sizeof(float) * 20);              /* the fold's post_in/comb_in, overwritten */
    float *part = ds4cu_malloc(ds4cu_hc_mixnorm_scratch());
    void *xq = ds4cu_malloc(sizeof(ds4_act_q8_0) * E / 32), *xk = ds4cu_malloc(sizeof(ds4_block_q8_K) * E / 256);
    const float *xin = dX;
    if (fold) { /* the reference: hc_post's own X first */
        ds4cu_hc_post(dX, dF, dpc, dpc + HC, 1, HC, E, dXn);
        xin = dXn;
    }
    ds4cu_rmsnorm(xin, NULL, du, 1, W, 1e-6f);
    ds4cu_matvec_f16(dfn, sizeof(uint16_t) * W, W, M, 1, du, 1, dmix, 1);
    ds4cu_hc_pre(dmix, dsc, dbase, xin, 1, HC, E, 20, 1e-6f, dout, dout + HC, dout + 2 * HC, dout + tot);
    ds4cu_rmsnorm(dout + tot, dnw, dout + tot + E, 1, E, 1e-6f);
    float *e = malloc(sizeof(float) * (tot + 2 * E)), *f = malloc(sizeof(float) * (tot + E)), *f0 = NULL;
    float *xn = malloc(sizeof(float) * W), *xf = malloc(sizeof(float) * W);
    down(e, dout, sizeof(float) * (tot + 2 * E));
    if (fold) down(xn, dXn, sizeof(float) * W);
    ds4_act_q8_0 *q = malloc(sizeof *q * E / 32), *gq = malloc(sizeof *gq * E / 32);
    ds4_block_q8_K *qk = malloc(sizeof *qk * E / 256), *gk = malloc(sizeof *gk * E / 256);
    ds4cu_hc_mixnorm_debug(NULL, 1, lean);
    for (int rep = 0; rep < 3; rep++) {
        if (fold && ds4cu_h2d(fpc, pc, sizeof pc)) T_FAIL("upload: %s", ds4cu_error());
        CHECK_EQ_INT(ds4cu_hc_mixnorm(dfn, sizeof(uint16_t) * W, dsc, dbase, dX, fold ? dF : NULL, fpc, fpc + HC, dXf,
                                      HC, E, 20, 1e-6f, 1e-6f, part, fout, fold ? fpc : fout + HC,
                                      fold ? fpc + HC : fout + 2 * HC, dnw, fout + tot, xq, want_k ? xk : NULL),
                     0);
        down(f, fout, sizeof(float) * (tot + E));
        if (fold) { /* post and comb went to fpc (in place, as forward.c passes them) */
            down(f + HC, fpc, sizeof(float) * (HC + HC * HC));
            down(xf, dXf, sizeof(float) * W);
            same_floats("hc_mixnorm folded hc_post", xf, xn, (size_t)W);
        }
        for (int i = 0; i < tot; i++) CHECK_NEAR(f[i], e[i], 2e-5 * (1 + fabs(e[i])));
        for (int i = 0; i < E; i++) CHECK_NEAR(f[tot + i], e[tot + E + i], 1e-4 * (1 + fabs(e[tot + E + i])));
        ds4_quantize_act_q8_0(f + tot, q, E);
        down(gq, xq, sizeof *q * E / 32);
        CHECK(memcmp(q, gq, sizeof *q * E / 32) == 0);
        if (want_k) {
            ds4_quantize_q8_K(f + tot, qk, E);
            down(gk, xk, sizeof *qk * E / 256);
            CHECK(memcmp(qk, gk, sizeof *qk * E / 256) == 0);
        }
        if (!f0) { f0 = malloc(sizeof(float) * (tot + E)); memcpy(f0, f, sizeof(float) * (tot + E)); }
        else same_floats("hc_mixnorm repeated launch", f, f0, (size_t)(tot + E));
    }
    ds4cu_hc_mixnorm_debug(NULL, -1, -1);
    ds4cu_free(dX); ds4cu_free(dF); ds4cu_free(dnw); ds4cu_free(dbase); ds4cu_free(dsc); ds4cu_free(dpc);
    ds4cu_free(dfn); ds4cu_free(dXn); ds4cu_free(dXf); ds4cu_free(du); ds4cu_free(dmix); ds4cu_free(dout);
    ds4cu_free(fout); ds4cu_free(fpc); ds4cu_free(part); ds4cu_free(xq); ds4cu_free(xk);
    free(X); free(Fv); free(nw); free(base); free(fn); free(e); free(f); free(f0); free(xn); free(xf);
    free(q); free(gq); free(qk); free(gk);
}
TEST(hc_mixnorm_one_launch) { if (have_gpu()) check_hc_mixnorm(0, 0, 0); }
TEST(hc_mixnorm_folded_post_and_q8_K) { if (have_gpu()) check_hc_mixnorm(1, 1, 0); }
TEST(hc_mixnorm_lean_one_launch) { if (have_gpu()) check_hc_mixnorm(0, 1, 1); }
TEST(hc_mixnorm_lean_folded_post) { if (have_gpu()) check_hc_mixnorm(1, 0, 1); }
TEST(hc_mixnorm_two_barriers) { if (have_gpu()) check_hc_mixnorm(0, 1, 2); }
TEST(hc_mixnorm_two_barriers_folded_post) { if (have_gpu()) check_hc_mixnorm(1, 1, 2); }
TEST(hc_mixnorm_refuses_bad_shapes) {
    if (!have_gpu()) return;
    CHECK_EQ_INT(ds4cu_hc_mixnorm(NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 3, 4096, 20, 1e-6f, 1e-6f, NULL,
                                  NULL, NULL, NULL, NULL, NULL, NULL, NULL), -1);
    CHECK_EQ_INT(ds4cu_hc_mixnorm(NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 4, 8192, 20, 1e-6f, 1e-6f, NULL,
                                  NULL, NULL, NULL, NULL, NULL, NULL, NULL), -1);
}

/* Where the one-launch pre-mix spends its time (printed, per phase, with L2
 * flushed before each launch as in a decode step where hc_fn comes from
 * DRAM), for both Sinkhorn forms, which must agree bit for bit. */
TEST(hc_mixnorm_phase_clocks_and_sinkhorn_forms) {
    if (!have_gpu()) return;
    const int E = 4096, HC = 4, M = 24, W = HC * E, tot = 2 * HC + HC * HC;
    float *X = malloc(sizeof(float) * W), *Fv = malloc(sizeof(float) * E), *nw = malloc(sizeof(float) * E);
    float base[24], pc[20];
    const float scale[3] = {0.7f, 0.9f, 1.3f};
    uint16_t *fn = malloc(sizeof(uint16_t) * W * M);
    fill(X, (size_t)W, 2.0f);
    fill(Fv, E, 1.5f);
    fill(nw, E, 1.0f);
    fill(base, M, 0.5f);
    fill(pc, 20, 1.0f);
    for (int i = 0; i < W * M; i++) fn[i] = ds4_f32_to_f16(frand() * 0.02f);
    float *dX = up(X, sizeof(float) * W), *dF = up(Fv, sizeof(float) * E), *dnw = up(nw, sizeof(float) * E);
    float *dbase = up(base, sizeof base), *dsc = up(scale, sizeof scale), *dpc = up(pc, sizeof pc);
    void *dfn = up(fn, sizeof(uint16_t) * W * M);
    float *dXf = ds4cu_malloc(sizeof(float) * W), *fout = ds4cu_malloc(sizeof(float) * (tot + E));
    float *part = ds4cu_malloc(ds4cu_hc_mixnorm_scratch());
    void *xq = ds4cu_malloc(sizeof(ds4_act_q8_0) * E / 32), *xk = ds4cu_malloc(sizeof(ds4_block_q8_K) * E / 256);
    const size_t flush = (size_t)192 << 20;
    void *dflush = ds4cu_malloc(flush);
    unsigned long long *ddbg = ds4cu_malloc(sizeof(unsigned long long) * 64 * 8), h[64 * 8];
    float comb[4][16];
    for (int cfg = 0; cfg < 4; cfg++) { /* 16-lane Sinkhorn, 1-thread Sinkhorn, lean, two barriers */
        const int lanes = cfg != 1, lean = cfg == 2 ? 1 : (cfg == 3 ? 2 : 0);
        double acc[3][6] = {{0}};
        long long skew = 0, bar_ns = 0;
        const int reps = 10, blk[3] = {0, 32, 63};
        for (int rep = 0; rep < reps; rep++) {
            if (ds4cu_memset(dflush, rep, flush) || ds4cu_memset(ddbg, 0, sizeof h)) T_FAIL("memset: %s", ds4cu_error());
            ds4cu_hc_mixnorm_debug(ddbg, lanes, lean);
            CHECK_EQ_INT(ds4cu_hc_mixnorm(dfn, sizeof(uint16_t) * W, dsc, dbase, dX, dF, dpc, dpc + HC, dXf, HC, E, 20,
                                          1e-6f, 1e-6f, part, fout, fout + HC, fout + 2 * HC, dnw, fout + tot, xq, xk),
                         0);
            ds4cu_hc_mixnorm_debug(NULL, -1, -1);
            down(h, ddbg, sizeof h);
            unsigned long long t0 = ~0ull, t1 = 0, tb = 0;
            for (int b = 0; b < 64; b++) {
                if (h[8 * b + 6] < t0) t0 = h[8 * b + 6];
                if (h[8 * b + 6] > t1) t1 = h[8 * b + 6];
                if (h[8 * b + 7] > tb) tb = h[8 * b + 7];
            }
            skew += (long long)(t1 - t0);
            bar_ns += (long long)(tb - t0);
            for (int q = 0; q < 3; q++)
                for (int k = 1; k < 6; k++)
                    if (h[8 * blk[q] + k]) acc[q][k] += (double)(h[8 * blk[q] + k] - h[8 * blk[q] + k - 1]);
            if (ds4cu_h2d(dpc, pc, sizeof pc)) T_FAIL("upload: %s", ds4cu_error());
        }
        printf("# hc_mixnorm (Sinkhorn on %s%s), clock cycles per phase, mean of %d:\n", lanes ? "16 lanes" : "1 thread",
               lean == 1 ? ", lean" : (lean == 2 ? ", two barriers: X pass = slice + first barrier" : ""), reps);
        const char *nm[3] = {"norm block 0", "plain block 32", "mix block 63"};
        for (int q = 0; q < 3; q++)
            printf("#   %-14s X pass %6.0f  products %6.0f  barrier %6.0f  tail-a %6.0f  tail-b %6.0f\n", nm[q],
                   acc[q][1] / reps, acc[q][2] / reps, acc[q][3] / reps, acc[q][4] / reps, acc[q][5] / reps);
        printf("#   block start spread %lld ns, first start to last barrier exit %lld ns\n", skew / reps, bar_ns / reps);
        down(comb[cfg], fout + 2 * HC, sizeof comb[0]);
    }
    CHECK(memcmp(comb[0], comb[1], sizeof comb[0]) == 0);
    for (int i = 0; i < 16; i++) CHECK_NEAR(comb[2][i], comb[0][i], 2e-5 * (1 + fabs(comb[0][i])));
    CHECK(memcmp(comb[3], comb[0], sizeof comb[0]) == 0);
    ds4cu_free(dX); ds4cu_free(dF); ds4cu_free(dnw); ds4cu_free(dbase); ds4cu_free(dsc); ds4cu_free(dpc);
    ds4cu_free(dfn); ds4cu_free(dXf); ds4cu_free(fout); ds4cu_free(part); ds4cu_free(xq); ds4cu_free(xk);
    ds4cu_free(dflush); ds4cu_free(ddbg);
    free(X); free(Fv); free(nw); free(fn);
}

/* q_a_norm's shape: 1024 values, a thread each (norm_threads), weight,
 * Q8_0 codes; the norm within 1 ulp (double tree), codes of the GPU's own y. */
TEST(norm_quant_q_a_1024) {
    if (!have_gpu()) return;
    const int n = 1024;
    float *x = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
    float *got = malloc(sizeof(float) * n);
    fill(x, n, 3.0f);
    fill(w, n, 1.0f);
    for (int i = 0; i < 32; i++) x[64 + i] = 0.0f; /* a zero block */
    float *dx = up(x, sizeof(float) * n), *dw = up(w, sizeof(float) * n), *dy = ds4cu_malloc(sizeof(float) * n);
    void *dq = ds4cu_malloc(sizeof(ds4_act_q8_0) * n / 32);
    ds4cu_norm_quant(NULL, NULL, 0, dx, NULL, dw, dy, 1, n, 1e-6f, dq, NULL);
    ds4_rmsnorm(x, w, want, n, 1e-6f);
    down(got, dy, sizeof(float) * n);
    for (int i = 0; i < n; i++)
        if (ulps_(got[i], want[i]) > 1) T_FAIL("norm_quant 1024 %d: gpu %.9g cpu %.9g", i, got[i], want[i]);
    ds4_act_q8_0 *q = malloc(sizeof *q * n / 32), *gq = malloc(sizeof *gq * n / 32);
    ds4_quantize_act_q8_0(got, q, n);
    down(gq, dq, sizeof *q * n / 32);
    CHECK(memcmp(q, gq, sizeof *q * n / 32) == 0);
    ds4cu_free(dx); ds4cu_free(dw); ds4cu_free(dy); ds4cu_free(dq);
    free(x); free(w); free(want); free(got); free(q); free(gq);
}

/* k_route against ds4_route itself (a model with only the routing fields):
 * 256 experts top-6, biased and unbiased, normalized or scaled, ties and
 * both softplus tails in the logits, and hash layers (tid2eid rows). Picks
 * and weights bit for bit. */
static void check_route(int hash, int use_bias, int norm) {
    const int X = 256, K = 6, n = 7, V = 11;
    ds4_model *m = calloc(1, sizeof *m);
    m->cfg.n_expert = X;
    m->cfg.n_expert_used = K;
    m->cfg.expert_norm = norm;
    m->cfg.expert_scale = 1.5f;
    m->cfg.n_hash_layer = 3;
    const uint32_t il = hash ? 1 : 5;
    float *lg = malloc(sizeof(float) * n * X), *bias = malloc(sizeof(float) * X), *w = malloc(sizeof(float) * n * K);
    float *gw = malloc(sizeof(float) * n * K);
    int32_t *tid2eid = malloc(sizeof(int32_t) * V * K), *sel = malloc(sizeof(int32_t) * n * K);
    int32_t *gsel = malloc(sizeof(int32_t) * n * K), tokens[7] = {3, 0, 10, 7, 7, 1, 5};
    fill(lg, (size_t)n * X, 4.0f);
    fill(bias, X, 0.3f);
    for (int i = 0; i < X; i += 16) lg[X + i] = 25.0f;            /* token 1: 16 tied winners above the tail */
    for (int i = 0; i < X; i++) lg[2 * X + i] = -30.0f + i % 3;  /* token 2: the low tail, ties everywhere */
    for (int i = 0; i < X; i++) lg[3 * X + i] = 1.0f;            /* token 3: all equal */
    for (int i = 0; i < V * K; i++) tid2eid[i] = (int32_t)((i * 37 + 11) % X);
    m->w.layer[il].exp_bias.data = use_bias ? (const uint8_t *)bias : NULL;
    m->w.layer[il].tid2eid.data = (const uint8_t *)tid2eid;
    for (int t = 0; t < n; t++) ds4_route(m, il, lg + (size_t)t * X, tokens[t], sel + (size_t)t * K, w + (size_t)t * K);
    float *dlg = up(lg, sizeof(float) * n * X), *dbias = up(bias, sizeof(float) * X);
    int32_t *dtid = up(tid2eid, sizeof(int32_t) * V * K), *dtok = up(tokens, sizeof tokens);
    int32_t *dsel = ds4cu_malloc(sizeof(int32_t) * n * K);
    float *dw = ds4cu_malloc(sizeof(float) * n * K);
    ds4cu_route(dlg, n, X, K, dtok, hash ? dtid : NULL, use_bias && !hash ? dbias : NULL, norm, 1.5f, dsel, dw);
    down(gsel, dsel, sizeof(int32_t) * n * K);
    down(gw, dw, sizeof(float) * n * K);
    for (int i = 0; i < n * K; i++)
        if (gsel[i] != sel[i]) T_FAIL("route pick %d (token %d): gpu %d cpu %d", i % K, i / K, gsel[i], sel[i]);
    same_floats("route weights", gw, w, (size_t)n * K);
    ds4cu_free(dlg); ds4cu_free(dbias); ds4cu_free(dtid); ds4cu_free(dtok); ds4cu_free(dsel); ds4cu_free(dw);
    free(m); free(lg); free(bias); free(w); free(gw); free(tid2eid); free(sel); free(gsel);
}
TEST(route_top6_biased_normalized) { if (have_gpu()) check_route(0, 1, 1); }
TEST(route_top6_plain_scaled) { if (have_gpu()) check_route(0, 0, 0); }
TEST(route_hash_layer) { if (have_gpu()) check_route(1, 0, 1); }

/* ---- deferred Sinkhorn, session 3 round 2 (sinkhorn.cuh) ---- */

/* cpu/forward.c hc_pre's Sinkhorn from the 16 softmax numerators (HC 4). */
static void sinkhorn4_cpu(const float *ez, int iters, float eps, float *C) {
    for (int r = 0; r < 4; r++) {
        float sum = 0.0f;
        for (int k = 0; k < 4; k++) sum += ez[4 * r + k];
        const float inv = 1.0f / sum;
        for (int k = 0; k < 4; k++) C[4 * r + k] = ez[4 * r + k] * inv + eps;
    }
    for (int it = 0; it < iters; it++) {
        if (it > 0)
            for (int r = 0; r < 4; r++) {
                float sum = 0.0f;
                for (int k = 0; k < 4; k++) sum += C[4 * r + k];
                const float inv = 1.0f / (sum + eps);
                for (int k = 0; k < 4; k++) C[4 * r + k] *= inv;
            }
        for (int k = 0; k < 4; k++) {
            float sum = 0.0f;
            for (int r = 0; r < 4; r++) sum += C[4 * r + k];
            const float inv = 1.0f / (sum + eps);
            for (int r = 0; r < 4; r++) C[4 * r + k] *= inv;
        }
    }
}

/* The pre-mix with defer = 1 (folded hc_post, comb in place as forward.c
 * passes it) against defer = 0: every output but comb bit for bit; comb
 * holds the exps (their CPU Sinkhorn is defer = 0's comb, bit for bit); then
 * each carrier (the lone launch, k_qkv_post's and k_route's extra block)
 * turns them into that comb in place, and leaves its own outputs unchanged. */
TEST(hc_mixnorm_deferred_sinkhorn_and_carriers) {
    if (!have_gpu()) return;
    const int E = 4096, HC = 4, M = 24, W = HC * E, tot = 2 * HC + HC * HC, it = 20;
    const float heps = 1e-6f;
    float *X = malloc(sizeof(float) * W), *Fv = malloc(sizeof(float) * E), *nw = malloc(sizeof(float) * E);
    float base[24], pc[20];
    const float scale[3] = {0.7f, 0.9f, 1.3f};
    uint16_t *fn = malloc(sizeof(uint16_t) * W * M);
    fill(X, (size_t)W, 2.0f);
    fill(Fv, E, 1.5f);
    fill(nw, E, 1.0f);
    fill(base, M, 2.5f); /* wide logits: the exps are far from a doubly stochastic comb */
    fill(pc, 20, 1.0f);
    for (int i = 0; i < W * M; i++) fn[i] = ds4_f32_to_f16(frand() * 0.05f);
    float *dX = up(X, sizeof(float) * W), *dF = up(Fv, sizeof(float) * E), *dnw = up(nw, sizeof(float) * E);
    float *dbase = up(base, sizeof base), *dsc = up(scale, sizeof scale);
    void *dfn = up(fn, sizeof(uint16_t) * W * M);
    float *dXf = ds4cu_malloc(sizeof(float) * W), *fout = ds4cu_malloc(sizeof(float) * (tot + E));
    float *fpc = ds4cu_malloc(sizeof(float) * 20);
    float *part = ds4cu_malloc(ds4cu_hc_mixnorm_scratch());
    void *xq = ds4cu_malloc(sizeof(ds4_act_q8_0) * E / 32), *xk = ds4cu_malloc(sizeof(ds4_block_q8_K) * E / 256);
    const size_t nq = sizeof(ds4_act_q8_0) * E / 32, nk = sizeof(ds4_block_q8_K) * E / 256;
    float *r_out = malloc(sizeof(float) * (tot + E)), *d_out = malloc(sizeof(float) * (tot + E));
    float *r_x = malloc(sizeof(float) * W), *d_x = malloc(sizeof(float) * W), r_pc[20], d_pc[20], cpu[16], got[16];
    unsigned char *r_q = malloc(nq + nk), *d_q = malloc(nq + nk);
    float *t_out = malloc(sizeof(float) * (tot + E)), *t_x = malloc(sizeof(float) * W), t_pc[20];
    unsigned char *t_q = malloc(nq + nk);
    /* cfg 0: plain (the reference), 1: deferred, 2, 3: the same with two barriers (DS4_CUDA_HCM_TWO) */
    for (int cfg = 0; cfg < 4; cfg++) {
        const int defer = cfg & 1, two = cfg >> 1;
        float *o_out = cfg == 0 ? r_out : (cfg == 1 ? d_out : t_out), *o_x = cfg == 0 ? r_x : (cfg == 1 ? d_x : t_x);
        float *o_pc = cfg == 0 ? r_pc : (cfg == 1 ? d_pc : t_pc);
        unsigned char *o_q = cfg == 0 ? r_q : (cfg == 1 ? d_q : t_q);
        if (ds4cu_h2d(fpc, pc, sizeof pc) || ds4cu_memset(fout, 0, sizeof(float) * (tot + E)))
            T_FAIL("upload: %s", ds4cu_error());
        ds4cu_hc_mixnorm_debug(NULL, 1, two ? 2 : 0);
        CHECK_EQ_INT(ds4cu_hc_mixnorm_ex(dfn, sizeof(uint16_t) * W, dsc, dbase, dX, dF, fpc, fpc + HC, dXf, HC, E, it,
                                         heps, 1e-6f, part, fout, fpc, fpc + HC, dnw, fout + tot, xq, xk, defer),
                     0);
        ds4cu_hc_mixnorm_debug(NULL, -1, -1);
        down(o_out, fout, sizeof(float) * (tot + E));
        down(o_pc, fpc, sizeof pc);
        down(o_x, dXf, sizeof(float) * W);
        down(o_q, xq, nq);
        down(o_q + nq, xk, nk);
        if (cfg >= 2) { /* two barriers: everything as the one-barrier form of the same defer */
            const float *want_pc = defer ? d_pc : r_pc;
            same_floats("two-barrier pre", t_out, r_out, HC);
            same_floats("two-barrier y", t_out + tot, r_out + tot, (size_t)E);
            same_floats("two-barrier post and comb (or exps)", t_pc, want_pc, 20);
            same_floats("two-barrier folded X", t_x, r_x, (size_t)W);
            CHECK(memcmp(t_q, r_q, nq + nk) == 0);
        }
    }
    same_floats("deferred pre", d_out, r_out, HC);
    same_floats("deferred y", d_out + tot, r_out + tot, (size_t)E);
    same_floats("deferred post", d_pc, r_pc, HC);
    same_floats("deferred folded X", d_x, r_x, (size_t)W);
    CHECK(memcmp(d_q, r_q, nq + nk) == 0);
    CHECK(memcmp(d_pc + HC, r_pc + HC, sizeof(float) * 16) != 0); /* comb really holds the exps */
    sinkhorn4_cpu(d_pc + HC, it, heps, cpu);
    same_floats("CPU Sinkhorn of the deferred exps", cpu, r_pc + HC, 16);

    /* carrier 1: the lone launch */
    float *dcomb = up(d_pc + HC, sizeof(float) * 16);
    ds4cu_hc_sinkhorn(dcomb, it, heps);
    down(got, dcomb, sizeof got);
    same_floats("ds4cu_hc_sinkhorn", got, r_pc + HC, 16);

    /* carrier 2: k_qkv_post's extra block */
    {
        const int H = 64, D = 512, NR = 64, P = 1234;
        float *tab = rope_table(P + 1, NR), *dtab = up(tab, sizeof(float) * (P + 1) * NR);
        float *q = malloc(sizeof(float) * H * D), *kvr = malloc(sizeof(float) * D), *w = malloc(sizeof(float) * D);
        float *q1 = malloc(sizeof(float) * H * D), *q2 = malloc(sizeof(float) * H * D);
        float *kv1 = malloc(sizeof(float) * D), *kv2 = malloc(sizeof(float) * D);
        fill(q, (size_t)H * D, 2.0f);
        fill(kvr, D, 2.0f);
        fill(w, D, 1.0f);
        float *dkvr = up(kvr, sizeof(float) * D), *dw = up(w, sizeof(float) * D), *dkvv = ds4cu_malloc(sizeof(float) * D);
        for (int c = 0; c < 2; c++) {
            float *dq = up(q, sizeof(float) * H * D);
            if (ds4cu_h2d(dcomb, d_pc + HC, sizeof(float) * 16)) T_FAIL("upload: %s", ds4cu_error());
            ds4cu_qkv_post_sk(dq, dkvr, dw, dkvv, 1, H, D, NR, dtab, P, 1e-6f, D - NR, c ? dcomb : NULL, it, heps);
            down(c ? q2 : q1, dq, sizeof(float) * H * D);
            down(c ? kv2 : kv1, dkvv, sizeof(float) * D);
            ds4cu_free(dq);
        }
        down(got, dcomb, sizeof got);
        same_floats("k_qkv_post's Sinkhorn block", got, r_pc + HC, 16);
        same_floats("qkv_post q with the Sinkhorn block", q2, q1, (size_t)H * D);
        same_floats("qkv_post kv with the Sinkhorn block", kv2, kv1, (size_t)D);
        ds4cu_free(dtab); ds4cu_free(dkvr); ds4cu_free(dw); ds4cu_free(dkvv);
        free(tab); free(q); free(kvr); free(w); free(q1); free(q2); free(kv1); free(kv2);
    }

    /* carrier 3: k_route's extra block (two tokens, biased, normalized) */
    {
        const int Xe = 256, K = 6, n = 2;
        float *lg = malloc(sizeof(float) * n * Xe), *bias = malloc(sizeof(float) * Xe), w1[12], w2[12];
        int32_t tok[2] = {0, 1}, s1[12], s2[12];
        fill(lg, (size_t)n * Xe, 4.0f);
        fill(bias, Xe, 0.3f);
        float *dlg = up(lg, sizeof(float) * n * Xe), *dbias = up(bias, sizeof(float) * Xe), *dwt = ds4cu_malloc(sizeof w1);
        int32_t *dtok = up(tok, sizeof tok), *dsel = ds4cu_malloc(sizeof s1);
        for (int c = 0; c < 2; c++) {
            if (ds4cu_h2d(dcomb, d_pc + HC, sizeof(float) * 16) || ds4cu_memset(dsel, 0xff, sizeof s1))
                T_FAIL("upload: %s", ds4cu_error());
            ds4cu_route_sk(dlg, n, Xe, K, dtok, NULL, dbias, 1, 1.5f, dsel, dwt, c ? dcomb : NULL, it, heps);
            down(c ? s2 : s1, dsel, sizeof s1);
            down(c ? w2 : w1, dwt, sizeof w1);
        }
        down(got, dcomb, sizeof got);
        same_floats("k_route's Sinkhorn block", got, r_pc + HC, 16);
        CHECK(memcmp(s1, s2, sizeof s1) == 0);
        same_floats("route weights with the Sinkhorn block", w2, w1, 12);
        /* no tokens: the Sinkhorn block alone */
        if (ds4cu_h2d(dcomb, d_pc + HC, sizeof(float) * 16)) T_FAIL("upload: %s", ds4cu_error());
        ds4cu_route_sk(dlg, 0, Xe, K, dtok, NULL, dbias, 1, 1.5f, dsel, dwt, dcomb, it, heps);
        down(got, dcomb, sizeof got);
        same_floats("k_route's Sinkhorn block, no tokens", got, r_pc + HC, 16);
        ds4cu_free(dlg); ds4cu_free(dbias); ds4cu_free(dwt); ds4cu_free(dtok); ds4cu_free(dsel);
        free(lg); free(bias);
    }
    ds4cu_free(dcomb);
    ds4cu_free(dX); ds4cu_free(dF); ds4cu_free(dnw); ds4cu_free(dbase); ds4cu_free(dsc); ds4cu_free(dfn);
    ds4cu_free(dXf); ds4cu_free(fout); ds4cu_free(fpc); ds4cu_free(part); ds4cu_free(xq); ds4cu_free(xk);
    free(X); free(Fv); free(nw); free(fn); free(r_out); free(d_out); free(r_x); free(d_x); free(r_q); free(d_q);
    free(t_out); free(t_x); free(t_q);
}


/* ---- fast-mode Q8_0 decode products (mv_q8_fast.cu): reassociated row sums ----
 * Bound: |gpu - cpu| <= 1e-5 · Σ_b |(d_w·d_x)·isum_b| per row (two orders of
 * a 256-term float sum differ by a few units of 2^-24 of that sum in practice;
 * a lost or doubled block, a wrong scale or a misread code is far above it).
 * Rows of one 8-block group (in = 256, the tiny models) keep the CPU's order:
 * bit-identical there. Weights are random bytes with random F16 scales (fast
 * to make at the head's 563 MB). Both weight paths (1 direct, 2 staged). */
static uint8_t *rand_q8_0_bytes(int64_t in, int64_t out) {
    const int64_t nb = in / 32;
    uint8_t *w = malloc((size_t)nb * 34 * out);
    for (int64_t b = 0; b < nb * out; b++) {
        ds4_block_q8_0 blk;
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        blk.d = (uint16_t)(0x1400 | (rng & 0x83ff)); /* ±[2^-10, 2^-9) */
        for (int j = 0; j < 32; j += 8) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            memcpy(blk.qs + j, &rng, 8);
        }
        memcpy(w + b * 34, &blk, 34);
    }
    return w;
}

static float q8_0_abs_terms(int64_t in, const uint8_t *w, const ds4_act_q8_0 *x) {
    float s = 0.0f;
    for (int64_t b = 0; b < in / 32; b++) {
        ds4_block_q8_0 blk;
        memcpy(&blk, w + b * 34, 34);
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += blk.qs[j] * x[b].qs[j];
        s += fabsf((ds4_f16_to_f32(blk.d) * x[b].d) * (float)isum);
    }
    return s;
}

static void check_q8_0_fast(int64_t in, int cnt, const int64_t *outs, int groups, int variant) {
    const size_t rb = (size_t)ds4_row_bytes(DS4_TYPE_Q8_0, (uint64_t)in);
    const int64_t xw = in * groups;
    float *x = malloc(sizeof(float) * xw);
    fill(x, (size_t)xw, 2.0f);
    ds4_act_q8_0 *xq = malloc(sizeof *xq * (xw / 32));
    ds4_quantize_act_q8_0(x, xq, xw);
    void *dxq = up(xq, sizeof *xq * (xw / 32));
    uint8_t *w[6];
    const void *dw[6];
    float *dy[6];
    for (int k = 0; k < cnt; k++) {
        w[k] = rand_q8_0_bytes(in, outs[k]);
        dw[k] = up(w[k], rb * outs[k]);
        dy[k] = ds4cu_malloc(sizeof(float) * outs[k]);
        ds4cu_fill(dy[k], NAN, (size_t)outs[k]); /* poisoned: every output must be written */
    }
    CHECK_EQ_INT(ds4cu_mv_q8_0_fast(cnt, dw, rb, in, outs, groups, dxq, dy, variant), 0);
    for (int k = 0; k < cnt; k++) {
        float *got = malloc(sizeof(float) * outs[k]);
        const int64_t rpg = outs[k] / groups;
        down(got, dy[k], sizeof(float) * outs[k]);
        for (int64_t r = 0; r < outs[k]; r++) {
            const ds4_act_q8_0 *xr = xq + (r / rpg) * (in / 32);
            const float want = ds4_vec_dot_q8_0_ref(in, w[k] + r * rb, xr);
            const float tol = in == 256 ? 0.0f : 1e-5f * q8_0_abs_terms(in, w[k] + r * rb, xr);
            if (!(fabsf(got[r] - want) <= tol))
                T_FAIL("q8_0 fast %lld->%lld (variant %d) matrix %d row %lld: gpu %.9g cpu %.9g (bound %.3g)",
                       (long long)in, (long long)outs[k], variant, k, (long long)r, got[r], want, tol);
        }
        free(got);
        ds4cu_free((void *)dw[k]); ds4cu_free(dy[k]); free(w[k]);
    }
    ds4cu_free(dxq);
    free(x); free(xq);
}

TEST(mv_q8_0_fast_q_a_kv_q_b) {
    if (!have_gpu()) return;
    const int64_t qakv[2] = {1024, 512}, qb = 32768;
    for (int v = 1; v <= 2; v++) { check_q8_0_fast(4096, 2, qakv, 1, v); check_q8_0_fast(1024, 1, &qb, 1, v); }
}
TEST(mv_q8_0_fast_out_a_groups_out_b) {
    if (!have_gpu()) return;
    const int64_t oa = 8192, ob[3] = {4096, 37, 1}; /* partial last blocks and warps */
    for (int v = 1; v <= 2; v++) { check_q8_0_fast(4096, 1, &oa, 8, v); check_q8_0_fast(8192, 3, ob, 1, v); }
}
TEST(mv_q8_0_fast_shared_expert) {
    if (!have_gpu()) return;
    const int64_t gu[2] = {2048, 2048}, dn = 4096;
    for (int v = 1; v <= 2; v++) { check_q8_0_fast(4096, 2, gu, 1, v); check_q8_0_fast(2048, 1, &dn, 1, v); }
}
TEST(mv_q8_0_fast_head) {
    if (!have_gpu()) return;
    const int64_t o = 129280;
    for (int v = 1; v <= 2; v++) check_q8_0_fast(4096, 1, &o, 1, v);
}
/* tiny-model widths (one group a row: bit-identical), a width of 5 groups
 * (lanes loop; variant 2 falls back to 1), a width of 48 groups, and refusals */
TEST(mv_q8_0_fast_odd_shapes_and_refusals) {
    if (!have_gpu()) return;
    const int64_t t2[2] = {128, 192}, o1 = 333, o2 = 77, o3 = 1024;
    for (int v = 1; v <= 2; v++) {
        check_q8_0_fast(256, 2, t2, 1, v);
        check_q8_0_fast(256, 1, &o3, 4, v);
        check_q8_0_fast(1280, 1, &o1, 1, v);
        check_q8_0_fast(12288, 1, &o2, 1, v);
    }
    const int64_t o = 64;
    const void *wz = (const void *)(uintptr_t)16;
    float *y = NULL;
    CHECK_EQ_INT(ds4cu_mv_q8_0_fast(1, &wz, 170, 160, &o, 1, (const void *)(uintptr_t)16, &y, 1), -1); /* in % 256 */
    CHECK_EQ_INT(ds4cu_mv_q8_0_fast(1, &wz, 34 * 8, 256, &o, 3, (const void *)(uintptr_t)16, &y, 1), -1); /* groups */
    CHECK_EQ_INT(ds4cu_mv_q8_0_fast(1, &wz, 34 * 8, 256, &o, 1, (const void *)(uintptr_t)16, &y, 3), -1); /* variant */
}

#else
TEST(cuda_not_built) { T_SKIP("built without nvcc"); }
#endif
