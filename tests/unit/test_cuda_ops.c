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
#include "engine/cuda/ops.h"
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

#else
TEST(cuda_not_built) { T_SKIP("built without nvcc"); }
#endif
