/* test_cuda_gemm.c - the prefill GEMMs of src/engine/cuda/gemm.h against
 * their CPU twins (ds4_vec_dot_*_ref) and against the mat-vec kernels they
 * replace, at the real model's sizes: q_b 32768×1024, grouped out_a, the
 * 256-wide router, IQ2_XXS gate/up 2048×4096 and Q2_K down 4096×2048 with a
 * batch whose pairs crowd one expert (several token passes per warp) and
 * partial tiles everywhere (token counts not multiples of 8, rows not of 16).
 *
 * The bar is bit-identity: integer block sums on tensor cores are exact and
 * the float steps keep the CPU's order. Without a CUDA device every case is
 * reported as skipped; tests/gpu/run.sh runs them for real. */
#include <math.h>
#include <stdlib.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* harness helpers */
#include "harness.h"

#ifdef DS4_HAVE_CUDA
#include "engine/cuda/gemm.h"
#include "engine/cuda/ops.h"
#include "quant/quant.h"

static int have_gpu(void) {
    static int state = -1;
    if (state < 0) state = ds4cu_device_count() > 0 && ds4cu_init() == 0;
    if (!state) T_SKIP("no CUDA device"); /* counted as skipped, never as passed */
    return state;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)(urand() & 0xffffff) / 8388608.0f - 1.0f; } /* [-1, 1) */
static void fill(float *x, size_t n, float scale) { for (size_t i = 0; i < n; i++) x[i] = frand() * scale; }

static void *up(const void *h, size_t n) {
    void *d = ds4cu_malloc(n);
    if (!d || ds4cu_h2d(d, h, n)) T_FAIL("upload %zu bytes: %s", n, ds4cu_error());
    return d;
}
static void down(void *h, const void *d, size_t n) {
    if (ds4cu_sync() || ds4cu_d2h(h, d, n)) T_FAIL("download: %s", ds4cu_error());
}
static void same_floats(const char *what, const float *got, const float *want, size_t n, size_t width) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], 4) != 0)
            T_FAIL("%s: token %zu row %zu: gpu %.9g cpu %.9g", what, i / width, i % width, got[i], want[i]);
}

/* ---- Q8_0 ---- */
static void check_q8_0(int64_t in, int64_t out, int groups, int n) {
    const size_t rb = (size_t)ds4_row_bytes(DS4_TYPE_Q8_0, (uint64_t)in);
    uint8_t *w = malloc(rb * out);
    float *row = malloc(sizeof(float) * in);
    for (int64_t r = 0; r < out; r++) { fill(row, in, 0.05f); ds4_quantize_row_q8_0(row, w + r * rb, in); }
    const int64_t xw = in * groups;
    float *x = malloc(sizeof(float) * xw * n);
    fill(x, (size_t)xw * n, 2.0f);
    for (int64_t i = 0; i < 32; i++) x[i] = 0; /* a zero block (scale 0) */
    ds4_act_q8_0 *xq = malloc(sizeof *xq * (xw / 32) * n);
    for (int t = 0; t < n; t++) ds4_quantize_act_q8_0(x + t * xw, xq + t * (xw / 32), xw);
    float *want = malloc(sizeof(float) * out * n), *got = malloc(sizeof(float) * out * n);
    const int64_t rpg = out / groups;
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < out; r++)
            want[t * out + r] = ds4_vec_dot_q8_0_ref(in, w + r * rb, xq + t * (xw / 32) + (r / rpg) * (in / 32));
    void *dw = up(w, rb * out), *dxq = up(xq, sizeof *xq * (xw / 32) * n);
    float *dy = ds4cu_malloc(sizeof(float) * out * n);
    ds4cu_memset(dy, 0xff, sizeof(float) * out * n); /* NaNs: an output never written shows */
    ds4cu_gemm_q8_0(dw, rb, in, out, groups, dxq, n, dy);
    down(got, dy, sizeof(float) * out * n);
    same_floats("q8_0 gemm", got, want, (size_t)out * n, (size_t)out);
    ds4cu_free(dw); ds4cu_free(dxq); ds4cu_free(dy);
    free(w); free(row); free(x); free(xq); free(want); free(got);
}

TEST(gemm_q8_0_q_b_batch) { if (have_gpu()) check_q8_0(1024, 32768, 1, 37); }
TEST(gemm_q8_0_q_a_full_batch) { if (have_gpu()) check_q8_0(4096, 1024, 1, 256); }
TEST(gemm_q8_0_out_a_groups) { if (have_gpu()) check_q8_0(4096, 8192, 8, 19); }
TEST(gemm_q8_0_rows_not_16) { if (have_gpu()) check_q8_0(160, 200, 1, 9); }
TEST(gemm_q8_0_staged_partial_tiles) { if (have_gpu()) check_q8_0(256, 200, 1, 45); }
TEST(gemm_q8_0_groups_of_48_rows) { if (have_gpu()) check_q8_0(128, 96, 2, 9); }
TEST(gemm_q8_0_groups_not_16_falls_back) { if (have_gpu()) check_q8_0(160, 96, 4, 5); }
TEST(gemm_q8_0_single_token) { if (have_gpu()) check_q8_0(1024, 512, 1, 1); }

/* ---- F16 ---- */
static void check_f16(int64_t in, int64_t out, int groups, int n, int exact) {
    uint16_t *w = malloc(sizeof(uint16_t) * in * out);
    for (int64_t i = 0; i < in * out; i++) w[i] = ds4_f32_to_f16(frand() * 0.1f);
    const int64_t xw = in * groups, rpg = out / groups;
    float *x = malloc(sizeof(float) * xw * n), *want = malloc(sizeof(float) * out * n);
    float *got = malloc(sizeof(float) * out * n), *ref = malloc(sizeof(float) * out * n);
    fill(x, (size_t)xw * n, 1.0f);
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < out; r++)
            want[t * out + r] = ds4_vec_dot_f16_f32_ref(in, w + r * in, x + t * xw + (r / rpg) * in);
    void *dw = up(w, sizeof(uint16_t) * in * out);
    float *dx = up(x, sizeof(float) * xw * n), *dy = ds4cu_malloc(sizeof(float) * out * n);
    float *dr = ds4cu_malloc(sizeof(float) * out * n);
    ds4cu_gemm_f16(dw, sizeof(uint16_t) * in, in, out, groups, dx, n, dy, exact);
    ds4cu_matvec_f16(dw, sizeof(uint16_t) * in, in, out, groups, dx, n, dr, exact);
    down(got, dy, sizeof(float) * out * n);
    down(ref, dr, sizeof(float) * out * n);
    /* The tiled kernel keeps the index order in both modes: the CPU's values,
     * and in exact mode the mat-vec kernel's too. */
    same_floats(exact ? "f16 gemm exact vs cpu" : "f16 gemm fast vs cpu", got, want, (size_t)out * n, (size_t)out);
    if (exact) same_floats("f16 gemm vs matvec (exact)", got, ref, (size_t)out * n, (size_t)out);
    else
        for (int64_t i = 0; i < out * n; i++) CHECK_NEAR(ref[i], want[i], 1e-4 * (1 + fabs(want[i])));
    ds4cu_free(dw); ds4cu_free(dx); ds4cu_free(dy); ds4cu_free(dr);
    free(w); free(x); free(want); free(got); free(ref);
}

TEST(gemm_f16_router_exact) { if (have_gpu()) check_f16(4096, 256, 1, 37, 1); }
TEST(gemm_f16_router_fast) { if (have_gpu()) check_f16(4096, 256, 1, 37, 0); }
TEST(gemm_f16_grouped_exact) { if (have_gpu()) check_f16(512, 1024, 2, 11, 1); }
TEST(gemm_f16_idx_q_b_fast) { if (have_gpu()) check_f16(1024, 8192, 1, 20, 0); }
TEST(gemm_f16_idx_q_b_big_tiles) { if (have_gpu()) check_f16(1024, 8192, 1, 130, 1); }
TEST(gemm_f16_idx_proj_thin) { if (have_gpu()) check_f16(4096, 64, 1, 19, 1); }
TEST(gemm_f16_hc_fn_fast) { if (have_gpu()) check_f16(16384, 24, 1, 70, 0); }
TEST(gemm_f16_odd_width_falls_back) { if (have_gpu()) check_f16(200, 40, 1, 5, 1); }

/* ---- routed experts, grouped ---- */
/* nexp experts of [in, rows]; n_tok tokens × K pairs (x_div K), or with
 * K == 1 one activation per pair (the down projection). `crowd`: share of
 * pairs sent to expert 1 (in 1/8), so one bucket holds many passes' tokens. */
static void check_grouped(uint32_t type, int64_t in, int64_t rows, int nexp, int n_tok, int K, int crowd) {
    const size_t rb = (size_t)ds4_row_bytes(type, (uint64_t)in);
    uint8_t *w = malloc(rb * rows * nexp);
    float *row = malloc(sizeof(float) * in);
    for (int64_t r = 0; r < rows * nexp; r++) {
        fill(row, in, 0.02f);
        if (type == DS4_TYPE_IQ2_XXS) ds4_quantize_row_iq2_xxs(row, w + r * rb, in);
        else ds4_quantize_row_q2_K(row, w + r * rb, in);
    }
    const int pairs = n_tok * K, x_div = K;
    const int nx = pairs / x_div;
    float *x = malloc(sizeof(float) * in * nx);
    fill(x, (size_t)in * nx, 1.5f);
    ds4_block_q8_K *xq = malloc(sizeof *xq * (in / 256) * nx);
    for (int i = 0; i < nx; i++) ds4_quantize_q8_K(x + i * in, xq + i * (in / 256), in);
    int32_t *sel = malloc(sizeof(int32_t) * pairs);
    for (int i = 0; i < pairs; i++) sel[i] = (int)(urand() % 8) < crowd ? 1 : (int32_t)(urand() % (uint32_t)nexp);
    float *want = malloc(sizeof(float) * pairs * rows), *got = malloc(sizeof(float) * pairs * rows);
    float *ref = malloc(sizeof(float) * pairs * rows);
    for (int i = 0; i < pairs; i++)
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *wr = w + ((size_t)sel[i] * rows + r) * rb;
            const ds4_block_q8_K *xr = xq + (i / x_div) * (in / 256);
            want[(size_t)i * rows + r] = type == DS4_TYPE_IQ2_XXS ? ds4_vec_dot_iq2_xxs_q8_K_ref(in, wr, xr)
                                                                  : ds4_vec_dot_q2_K_q8_K_ref(in, wr, xr);
        }
    void *dw = up(w, rb * rows * nexp), *dxq = up(xq, sizeof *xq * (in / 256) * nx);
    int32_t *dsel = up(sel, sizeof(int32_t) * pairs);
    float *dy = ds4cu_malloc(sizeof(float) * pairs * rows), *dr = ds4cu_malloc(sizeof(float) * pairs * rows);
    CHECK(ds4cu_experts_grouped_ok(type, in, rows, rb));
    ds4cu_matvec_experts(type, dw, rb, in, rows, dsel, pairs, x_div, dxq, dr);
    down(ref, dr, sizeof(float) * pairs * rows);
    /* Every weight path: unstaged, staged (cp.async double buffer), staged at 128 registers. */
    static const char *modes[] = {"0", "1", "2"};
    for (int m = 0; m < 3; m++) {
        setenv("DS4_CUDA_GX_STAGE", modes[m], 1);
        ds4cu_memset(dy, 0xff, sizeof(float) * pairs * rows);
        const int32_t *grp = ds4cu_experts_group(dsel, pairs, nexp);
        CHECK(grp != NULL);
        ds4cu_experts_gemm(type, dw, rb, in, rows, dsel, pairs, x_div, dxq, dy, grp, nexp);
        down(got, dy, sizeof(float) * pairs * rows);
        same_floats(modes[m][0] == '0' ? "grouped (unstaged)" : modes[m][0] == '1' ? "grouped (staged)"
                                                                                 : "grouped (staged, 128 regs)",
                    got, want, (size_t)pairs * rows, (size_t)rows);
        same_floats("grouped vs matvec_experts", got, ref, (size_t)pairs * rows, (size_t)rows);
    }
    unsetenv("DS4_CUDA_GX_STAGE");
    ds4cu_free(dw); ds4cu_free(dxq); ds4cu_free(dsel); ds4cu_free(dy); ds4cu_free(dr);
    free(w); free(row); free(x); free(xq); free(sel); free(want); free(got); free(ref);
}

TEST(grouped_iq2_xxs_gate) { if (have_gpu()) check_grouped(DS4_TYPE_IQ2_XXS, 4096, 2048, 8, 29, 6, 3); }
TEST(grouped_q2_K_down) { if (have_gpu()) check_grouped(DS4_TYPE_Q2_K, 2048, 4096, 8, 29 * 6, 1, 4); }
TEST(grouped_iq2_xxs_sparse) { if (have_gpu()) check_grouped(DS4_TYPE_IQ2_XXS, 512, 48, 16, 3, 2, 0); }

/* The bucket table: every in-range pair exactly once, under its expert. */
TEST(experts_group_table) {
    if (!have_gpu()) return;
    const int X = 256, pairs = 1536 + 5;
    int32_t *sel = malloc(sizeof(int32_t) * pairs), *tab = malloc(sizeof(int32_t) * (X + 1 + pairs));
    for (int i = 0; i < pairs; i++) sel[i] = (int32_t)(urand() % 300) - 20; /* some out of range */
    int32_t *dsel = up(sel, sizeof(int32_t) * pairs);
    const int32_t *grp = ds4cu_experts_group(dsel, pairs, X);
    CHECK(grp != NULL);
    down(tab, grp, sizeof(int32_t) * (X + 1 + pairs));
    int valid = 0;
    for (int i = 0; i < pairs; i++) valid += sel[i] >= 0 && sel[i] < X;
    CHECK_EQ_INT(tab[0], 0);
    CHECK_EQ_INT(tab[X], valid);
    char *seen = calloc((size_t)pairs, 1);
    for (int e = 0; e < X; e++) {
        CHECK(tab[e] <= tab[e + 1]);
        for (int k = tab[e]; k < tab[e + 1]; k++) {
            const int p = tab[X + 1 + k];
            CHECKF(p >= 0 && p < pairs && sel[p] == e && !seen[p], "bucket %d slot %d: pair %d", e, k, p);
            if (p >= 0 && p < pairs) seen[p] = 1;
        }
    }
    CHECK(ds4cu_experts_group(dsel, pairs, 257) == NULL);
    ds4cu_free(dsel);
    free(sel); free(tab); free(seen);
}

/* ---- indexer choices for a batch ---- */
typedef struct { float s; int i; } ix_pair;
static int ix_cmp(const void *a, const void *b) { /* score descending, then index ascending */
    const ix_pair *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i - y->i;
}
static int int_cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* n tokens at pos0 (nc0 = pos0/4 rows before the batch), IH heads of ID:
 * the batch kernel, the per-token ds4cu_indexer_select and a CPU sort must
 * choose the same rows in the same order. Some rows are copies of one
 * another and some are zero (score exactly 0), so ties straddle the cut. */
static void check_indexer(int64_t pos0, int n, int IH, int ID, int k) {
    const int nc0 = (int)(pos0 / 4), nmax = nc0 + (int)((pos0 + n) / 4 - pos0 / 4);
    float *idx = malloc(sizeof(float) * nmax * ID), *q = malloc(sizeof(float) * n * IH * ID);
    float *w = malloc(sizeof(float) * n * IH);
    fill(idx, (size_t)nmax * ID, 1.0f);
    fill(q, (size_t)n * IH * ID, 1.0f);
    fill(w, (size_t)n * IH, 0.2f);
    for (int r = 7; r < nmax; r += 13) memcpy(idx + (size_t)r * ID, idx + 3 * ID, sizeof(float) * ID);
    for (int r = 11; r < nmax; r += 3) memset(idx + (size_t)r * ID, 0, sizeof(float) * ID);
    int32_t *want = malloc(sizeof(int32_t) * n * k), *got = malloc(sizeof(int32_t) * n * k);
    int32_t *one = malloc(sizeof(int32_t) * n * k);
    ix_pair *pr = malloc(sizeof *pr * nmax);
    int chosen = 0;
    for (int t = 0; t < n; t++) {
        const int rows = nc0 + (int)((pos0 + t + 1) / 4 - pos0 / 4);
        if (rows <= k) continue;
        chosen++;
        for (int c = 0; c < rows; c++) {
            float score = 0.0f;
            for (int h = 0; h < IH; h++) {
                float d = 0.0f;
                for (int i = 0; i < ID; i++) d += idx[(size_t)c * ID + i] * q[((size_t)t * IH + h) * ID + i];
                score += (d > 0.0f ? d : 0.0f) * w[(size_t)t * IH + h];
            }
            pr[c].s = score;
            pr[c].i = c;
        }
        qsort(pr, (size_t)rows, sizeof *pr, ix_cmp);
        for (int j = 0; j < k; j++) want[t * k + j] = pr[j].i;
        qsort(want + t * k, (size_t)k, sizeof(int32_t), int_cmp);
    }
    float *didx = up(idx, sizeof(float) * nmax * ID), *dq = up(q, sizeof(float) * n * IH * ID);
    float *dw = up(w, sizeof(float) * n * IH), *dsc = ds4cu_malloc(sizeof(float) * nmax);
    int32_t *dsel = ds4cu_malloc(sizeof(int32_t) * n * k), *done = ds4cu_malloc(sizeof(int32_t) * n * k);
    int32_t *dflag = ds4cu_malloc(sizeof(int32_t) * nmax);
    ds4cu_memset(dsel, 0xff, sizeof(int32_t) * n * k);
    const int rc = ds4cu_indexer_batch(didx, nc0, pos0, n, dq, dw, IH, ID, k, dsel);
    CHECK_EQ_INT(rc, chosen > 0 ? 1 : 0);
    for (int t = 0; t < n; t++) {
        const int rows = nc0 + (int)((pos0 + t + 1) / 4 - pos0 / 4);
        if (rows > k)
            ds4cu_indexer_select(didx, rows, dq + (size_t)t * IH * ID, dw + (size_t)t * IH, IH, ID, k, dsc, dflag,
                                 done + (size_t)t * k);
    }
    down(got, dsel, sizeof(int32_t) * n * k);
    down(one, done, sizeof(int32_t) * n * k);
    for (int t = 0; t < n; t++) {
        const int rows = nc0 + (int)((pos0 + t + 1) / 4 - pos0 / 4);
        if (rows <= k) continue;
        for (int j = 0; j < k; j++) {
            CHECKF(got[t * k + j] == want[t * k + j], "token %d choice %d: batch %d cpu %d", t, j, got[t * k + j],
                   want[t * k + j]);
            CHECKF(got[t * k + j] == one[t * k + j], "token %d choice %d: batch %d per-token %d", t, j,
                   got[t * k + j], one[t * k + j]);
            if (got[t * k + j] != want[t * k + j] || got[t * k + j] != one[t * k + j]) return;
        }
    }
    ds4cu_free(didx); ds4cu_free(dq); ds4cu_free(dw); ds4cu_free(dsc); ds4cu_free(dsel); ds4cu_free(done);
    ds4cu_free(dflag);
    free(idx); free(q); free(w); free(want); free(got); free(one); free(pr);
}

TEST(indexer_batch_past_top_k) { if (have_gpu()) check_indexer(2401, 37, 64, 128, 512); }
TEST(indexer_batch_crossing_top_k) { if (have_gpu()) check_indexer(2040, 45, 64, 128, 512); }
TEST(indexer_batch_small_heads) { if (have_gpu()) check_indexer(301, 70, 4, 32, 64); }
TEST(indexer_batch_none_needed) { if (have_gpu()) check_indexer(100, 20, 4, 32, 64); }

/* ---- compressor: all emissions of a batch at once ---- */
/* Two copies of one compressor (ratio r, width w) fed the same batches of
 * every size and alignment: the batch kernels and ds4cu_compressor must emit
 * the same rows and leave the same window state, bit for bit. */
static void check_compressor(int r, int w, int n_rot, int indexer, const int *sizes, int nsizes) {
    const int L = r == 4 ? 2 : 1, Wc = L * w, nrows = r == 4 ? 8 : r;
    int total = 0;
    for (int i = 0; i < nsizes; i++) total += sizes[i];
    float *v = malloc(sizeof(float) * total * Wc), *g = malloc(sizeof(float) * total * Wc);
    float *nw = malloc(sizeof(float) * w), *tab = malloc(sizeof(float) * (total + 1) * n_rot);
    uint16_t *ape = malloc(sizeof(uint16_t) * r * Wc);
    fill(v, (size_t)total * Wc, 1.0f);
    fill(g, (size_t)total * Wc, 2.0f);
    fill(nw, (size_t)w, 1.0f);
    fill(tab, (size_t)(total + 1) * n_rot, 1.0f);
    for (int i = 0; i < r * Wc; i++) ape[i] = ds4_f32_to_f16(frand() * 0.5f);
    const size_t sbytes = sizeof(float) * nrows * Wc, rbytes = sizeof(float) * (total / r + 1) * w;
    float *dv = up(v, sizeof(float) * total * Wc), *dg = up(g, sizeof(float) * total * Wc);
    float *dnw = up(nw, sizeof(float) * w), *dtab = up(tab, sizeof(float) * (total + 1) * n_rot);
    uint16_t *dape = up(ape, sizeof(uint16_t) * r * Wc);
    float *sv[2], *sk[2], *rows[2];
    for (int k = 0; k < 2; k++) {
        sv[k] = ds4cu_malloc(sbytes);
        sk[k] = ds4cu_malloc(sbytes);
        rows[k] = ds4cu_malloc(rbytes);
        ds4cu_memset(rows[k], 0, rbytes);
        ds4cu_frontier_reset(sv[k], sk[k], 0, nrows, Wc);
    }
    float *h[2] = {malloc(rbytes), malloc(rbytes)}, *hs[2] = {malloc(sbytes), malloc(sbytes)};
    int pos = 0;
    for (int i = 0; i < nsizes; i++) {
        const int n = sizes[i], nr0 = pos / r;
        ds4cu_compressor(sv[0], sk[0], dv + (size_t)pos * Wc, dg + (size_t)pos * Wc, dape, r, w, pos, n, dnw, 1e-6f,
                         dtab, n_rot, indexer, rows[0], nr0);
        ds4cu_compressor_gemm(sv[1], sk[1], dv + (size_t)pos * Wc, dg + (size_t)pos * Wc, dape, r, w, pos, n, dnw,
                              1e-6f, dtab, n_rot, indexer, rows[1], nr0);
        pos += n;
        for (int k = 0; k < 2; k++) down(hs[k], sv[k], sbytes);
        CHECKF(memcmp(hs[0], hs[1], sbytes) == 0, "r %d w %d: SV differs after batch %d (%d tokens, now at %d)", r, w,
               i, n, pos);
        for (int k = 0; k < 2; k++) down(hs[k], sk[k], sbytes);
        CHECKF(memcmp(hs[0], hs[1], sbytes) == 0, "r %d w %d: SK differs after batch %d (%d tokens, now at %d)", r, w,
               i, n, pos);
    }
    for (int k = 0; k < 2; k++) down(h[k], rows[k], rbytes);
    same_floats("compressed rows", h[1], h[0], (size_t)(pos / r) * w, (size_t)w);
    CHECK(pos / r > 2);
    for (int k = 0; k < 2; k++) { ds4cu_free(sv[k]); ds4cu_free(sk[k]); ds4cu_free(rows[k]); free(h[k]); free(hs[k]); }
    ds4cu_free(dv); ds4cu_free(dg); ds4cu_free(dnw); ds4cu_free(dtab); ds4cu_free(dape);
    free(v); free(g); free(nw); free(tab); free(ape);
}

static const int cmp_sizes[] = {7, 3, 1, 13, 2, 40, 6, 19, 256, 5, 130, 77};
TEST(compressor_ratio4_attn) { if (have_gpu()) check_compressor(4, 512, 64, 0, cmp_sizes, 12); }
TEST(compressor_ratio4_indexer) { if (have_gpu()) check_compressor(4, 128, 64, 1, cmp_sizes, 12); }
TEST(compressor_ratio128) {
    static const int sizes[] = {100, 27, 1, 256, 3, 129, 256, 250};
    if (have_gpu()) check_compressor(128, 512, 64, 0, sizes, 8);
}

#else
TEST(cuda_not_built) { T_SKIP("built without nvcc"); }
#endif
