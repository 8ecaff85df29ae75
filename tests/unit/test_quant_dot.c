/* test_quant_dot.c - dot products (spec §3.8).
 *
 * 1. The scalar references against hand-computed values and against
 *    dequantize-then-multiply in double (independent reading of the layouts).
 * 2. Every SIMD level this CPU and build support, one-row and multi-row forms,
 *    against the scalar references BIT FOR BIT on random blocks: many sizes,
 *    random and extreme scales and codes (F16 max, subnormal, zero, negative
 *    activation scales, -128 codes).
 * 3. The *_fast F16 and Q8_0 kernels within a stated relative tolerance. */
#pragma GCC diagnostic ignored "-Wclobbered"
#pragma GCC diagnostic ignored "-Wunused-function"
#include "harness.h"
#include "quant/quant_impl.h"

static uint64_t rs = 0x243f6a8885a308d3ull;
static uint32_t r32(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (uint32_t)(rs >> 11); }
static float ufl(void) { return (float)(r32() & 0xffffff) * 0x1p-24f; }   /* [0,1) */
static int quick(void) { return getenv("DS4_TEST_QUICK") != NULL; }

static uint32_t fb(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static int same(float a, float b) { return (isnan(a) && isnan(b)) || fb(a) == fb(b); }

/* A random F16 scale: mostly ordinary, sometimes extreme. */
static uint16_t rand_scale16(int extreme) {
    if (extreme) {
        switch (r32() % 6) {
        case 0: return 0x7bff;                  /* 65504 */
        case 1: return 0x0001;                  /* smallest subnormal */
        case 2: return 0x0000;
        case 3: return 0x83ff;                  /* negative subnormal */
        case 4: return (uint16_t)(r32() & 0x7bff);
        default: return 0xfbff;
        }
    }
    return ds4_f32_to_f16((ufl() * 2.0f - 1.0f) * 0.01f);
}
static float rand_act_scale(int extreme) {
    if (extreme) {
        switch (r32() % 4) {
        case 0: return 0.0f;
        case 1: return 1e30f;
        case 2: return -1e-30f;
        default: return (ufl() - 0.5f) * 1e6f;
        }
    }
    return (ufl() - 0.5f) * 0.1f;
}
static void rand_bytes(void *p, size_t n) { for (size_t i = 0; i < n; i++) ((uint8_t *)p)[i] = (uint8_t)r32(); }
static int8_t rand_q8(int extreme) {
    if (extreme) { int k = r32() % 4; return k == 0 ? -128 : k == 1 ? 127 : k == 2 ? -127 : 0; }
    return (int8_t)r32();
}

static void fill_w(uint32_t type, void *w, int nb, int extreme) {
    size_t bb = ds4_type_block_bytes(type);
    rand_bytes(w, bb * (size_t)nb);
    for (int i = 0; i < nb; i++) {
        uint8_t *b = (uint8_t *)w + bb * (size_t)i;
        int ex = extreme && r32() % 3 == 0;
        uint16_t d = rand_scale16(ex), d2 = rand_scale16(ex);
        if (type == DS4_TYPE_Q8_0) {
            memcpy(b, &d, 2);
            if (ex) for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)rand_q8(1);
        } else if (type == DS4_TYPE_IQ2_XXS) {
            memcpy(b, &d, 2);
        } else if (type == DS4_TYPE_Q2_K) {
            memcpy(b + 80, &d, 2); memcpy(b + 82, &d2, 2);
            if (ex) memset(b, 0xff, 16);
        } else if (type == DS4_TYPE_Q4_K) {
            memcpy(b, &d, 2); memcpy(b + 2, &d2, 2);
            if (ex) memset(b + 4, 0xff, 12);
        }
    }
}
/* Activation codes of -128 (which only non-finite input produces) only in
 * extreme blocks: they send the AVX2 Q8_0 kernel to its scalar fallback, and
 * most calls must exercise the fast path. Weights take any byte. */
static void fill_q8_0(ds4_act_q8_0 *x, int nb, int extreme) {
    for (int i = 0; i < nb; i++) {
        int ex = extreme && r32() % 3 == 0;
        x[i].d = rand_act_scale(ex);
        for (int j = 0; j < 32; j++) {
            x[i].qs[j] = rand_q8(ex);
            if (!ex && x[i].qs[j] == -128) x[i].qs[j] = -127;
        }
    }
}
static void fill_q8_K(ds4_block_q8_K *y, int nb, int extreme) {
    for (int i = 0; i < nb; i++) {
        int ex = extreme && r32() % 3 == 0;
        y[i].d = rand_act_scale(ex);
        for (int j = 0; j < 256; j++) y[i].qs[j] = rand_q8(ex);
        for (int t = 0; t < 16; t++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += y[i].qs[16 * t + j];
            y[i].bsums[t] = (int16_t)s;
        }
    }
}

/* ---- 1. references -------------------------------------------------------- */

TEST(ref_q8_0_hand) {
    ds4_block_q8_0 w[2] = {0};
    ds4_act_q8_0 x[2] = {0};
    w[0].d = 0x3800; w[0].qs[0] = 3; w[0].qs[5] = -7;     /* 0.5 */
    w[1].d = 0x4000; w[1].qs[31] = 100;                   /* 2 */
    x[0].d = 0.25f; x[0].qs[0] = 10; x[0].qs[5] = 2;      /* isum = 30 - 14 = 16 */
    x[1].d = -1.5f; x[1].qs[31] = -3;                     /* isum = -300 */
    /* (0.5*0.25)*16 + (2*-1.5)*-300 = 2 + 900 */
    CHECK(ds4_vec_dot_q8_0_ref(64, w, x) == 902.0f);
    CHECK(ds4_vec_dot_q8_0(64, w, x) == 902.0f);
}

TEST(ref_iq2_xxs_hand) {
    ds4_block_iq2_xxs w = {0};
    ds4_block_q8_K y = {0};
    w.d = 0x3c00;
    uint32_t A = 1, B = 3u << 28 | 1u;            /* group 0 sub 0: grid 1 (43,8,...), signs 0x81; s = 3 */
    memcpy((uint8_t *)w.qs, &A, 4);
    memcpy((uint8_t *)w.qs + 4, &B, 4);
    y.d = 2.0f;
    y.qs[0] = 1; y.qs[7] = 2; y.qs[8] = 5; y.qs[32] = -4;
    y.bsums[0] = 1 + 2 + 5; y.bsums[2] = -4;      /* a valid Q8_K block carries its bsums */
    /* group 0: sumi = -43*1 + -8*2 + 8*5 = -19, times (2*3+1) = -133;
     * group 1 (grid 0, s 0, no signs): 8*-4 = -32, times 1. bsum = -165.
     * result = 0.125 * (1*2) * -165 = -41.25 */
    CHECK(ds4_vec_dot_iq2_xxs_q8_K_ref(256, &w, &y) == -41.25f);
    CHECK(ds4_vec_dot_iq2_xxs_q8_K(256, &w, &y) == -41.25f);
}

TEST(ref_q2_K_hand) {
    ds4_block_q2_K w = {0};
    ds4_block_q8_K y = {0};
    w.d = 0x3c00; w.dmin = 0x3800;                /* 1, 0.5 */
    w.scales[0] = 0x21; w.scales[2] = 0x12;
    w.qs[0] = 0xE4;                               /* e0: 0, e32: 1, e64: 2, e96: 3 */
    y.d = 0.5f;
    y.qs[0] = 9; y.qs[32] = 10; y.qs[33] = 7;
    y.bsums[0] = 9; y.bsums[2] = 17;
    /* isum = 1*(0*9) + 2*(1*10 + code(e33)=0) = 20; summs = 2*9 + 1*17 = 35
     * result = 0.5*20 - 0.25*35 = 1.25 */
    CHECK(ds4_vec_dot_q2_K_q8_K_ref(256, &w, &y) == 1.25f);
    CHECK(ds4_vec_dot_q2_K_q8_K(256, &w, &y) == 1.25f);
}

TEST(ref_q4_K_hand) {
    ds4_block_q4_K w = {0};
    ds4_block_q8_K y = {0};
    w.d = 0x3c00; w.dmin = 0x3400;                /* 1, 0.25 */
    w.scales[0] = 3; w.scales[4] = 4;             /* sub 0: sc 3, m 4 */
    w.scales[1] = 0x80; w.scales[5] = 0x40; w.scales[9] = 0x21;   /* sub 5: sc 33, m 18 */
    w.qs[0] = 0x07; w.qs[64] = 0xA0;
    y.d = 1.0f;
    y.qs[0] = 2; y.qs[160] = -1;
    y.bsums[0] = 2; y.bsums[10] = -1;
    /* isum = 3*14 + 33*-10 = -288; summs = 4*2 + 18*-1 = -10; result = -288 + 2.5 */
    CHECK(ds4_vec_dot_q4_K_q8_K_ref(256, &w, &y) == -285.5f);
    CHECK(ds4_vec_dot_q4_K_q8_K(256, &w, &y) == -285.5f);
}

TEST(ref_f16_sequential_order) {
    /* 1e8 + 1 - 1e8 in F32 sequential order is 0, not 1 */
    uint16_t w[3] = {0x3c00, 0x3c00, 0x3c00};
    float x[3] = {1e8f, 1.0f, -1e8f};
    CHECK(ds4_vec_dot_f16_f32_ref(3, w, x) == 0.0f);
    CHECK(ds4_vec_dot_f16_f32(3, w, x) == 0.0f);
}

/* Dot of dequantized weights with dequantized activations, in double. */
static double dq_dot(uint32_t type, const void *w, int n, const float *xf) {
    float *wf = malloc(sizeof(float) * (size_t)n);
    ds4_dequantize_row(type, w, wf, n);
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)wf[i] * xf[i];
    free(wf);
    return s;
}

TEST(ref_matches_dequantized_dot) {
    for (int rep = 0; rep < 20; rep++) {
        int nb = 1 + (int)(r32() % 8), n = nb * 256;
        static uint8_t w[8 * 144];
        static ds4_block_q8_K y[8];
        static ds4_act_q8_0 a[64];
        float xf[2048];
        fill_q8_K(y, nb, 0);
        for (int i = 0; i < n; i++) xf[i] = y[i / 256].d * (float)y[i / 256].qs[i % 256];
        static const uint32_t types[3] = {DS4_TYPE_IQ2_XXS, DS4_TYPE_Q2_K, DS4_TYPE_Q4_K};
        for (int t = 0; t < 3; t++) {
            fill_w(types[t], w, nb, 0);
            float got = types[t] == DS4_TYPE_IQ2_XXS ? ds4_vec_dot_iq2_xxs_q8_K_ref(n, w, y)
                      : types[t] == DS4_TYPE_Q2_K ? ds4_vec_dot_q2_K_q8_K_ref(n, w, y)
                      : ds4_vec_dot_q4_K_q8_K_ref(n, w, y);
            double want = dq_dot(types[t], w, n, xf), mag = 0;
            float *wf = malloc(sizeof(float) * (size_t)n);
            ds4_dequantize_row(types[t], w, wf, n);
            for (int i = 0; i < n; i++) mag += fabs((double)wf[i] * xf[i]);
            free(wf);
            CHECKF(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s: got %.9g, dequantized %.9g", ds4_type_name(types[t]), got, want);
        }
        fill_q8_0(a, nb * 8, 0);
        fill_w(DS4_TYPE_Q8_0, w, nb * 8 > 30 ? 30 : nb * 8, 0);
        int n8 = (nb * 8 > 30 ? 30 : nb * 8) * 32;
        for (int i = 0; i < n8; i++) xf[i] = a[i / 32].d * (float)a[i / 32].qs[i % 32];
        float got = ds4_vec_dot_q8_0_ref(n8, w, a);
        double want = dq_dot(DS4_TYPE_Q8_0, w, n8, xf);
        CHECKF(fabs(got - want) <= 1e-5 * fabs(want) + 1e-6, "Q8_0: got %.9g, dequantized %.9g", got, want);
    }
}

/* ---- 2. SIMD levels, bit for bit ------------------------------------------ */

static const char *levels[] = {"scalar", "avx2", "avx512", "neon"};

static int check_level_q8_0(const ds4_quant_kernels *k, int nb, int extreme, int nrows) {
    size_t stride = (size_t)nb * 34 + (r32() % 2) * 34;
    uint8_t *w = malloc(stride * (size_t)nrows + 1);
    ds4_act_q8_0 *x = malloc(sizeof *x * (size_t)nb);
    float *out = malloc(sizeof(float) * (size_t)nrows);
    fill_w(DS4_TYPE_Q8_0, w, (int)(stride * (size_t)nrows / 34), extreme);
    fill_q8_0(x, nb, extreme);
    k->rows_q8_0(nb * 32, nrows, w, stride, x, out);
    int bad = -1;
    for (int r = 0; r < nrows && bad < 0; r++) {
        float ref = ds4_vec_dot_q8_0_ref(nb * 32, w + stride * (size_t)r, x);
        float one = k->dot_q8_0(nb * 32, w + stride * (size_t)r, x);
        if (!same(ref, one) || !same(ref, out[r])) {
            printf("# %s Q8_0 nb=%d row %d: ref %a, one-row %a, rows %a\n", k->name, nb, r, ref, one, out[r]);
            bad = r;
        }
    }
    free(w); free(x); free(out);
    return bad < 0;
}

static int check_level_q8_K(const ds4_quant_kernels *k, uint32_t type, int nb, int extreme, int nrows) {
    size_t bb = ds4_type_block_bytes(type);
    size_t stride = (size_t)nb * bb + (r32() % 2) * bb;
    uint8_t *w = malloc(stride * (size_t)nrows + 1);
    ds4_block_q8_K *y = malloc(sizeof *y * (size_t)nb);
    float *out = malloc(sizeof(float) * (size_t)nrows);
    fill_w(type, w, (int)(stride * (size_t)nrows / bb), extreme);
    fill_q8_K(y, nb, extreme);
    ds4_dot_q8_K_fn ref = type == DS4_TYPE_IQ2_XXS ? ds4_vec_dot_iq2_xxs_q8_K_ref
                        : type == DS4_TYPE_Q2_K ? ds4_vec_dot_q2_K_q8_K_ref : ds4_vec_dot_q4_K_q8_K_ref;
    ds4_dot_q8_K_fn one = type == DS4_TYPE_IQ2_XXS ? k->dot_iq2_xxs : type == DS4_TYPE_Q2_K ? k->dot_q2_K : k->dot_q4_K;
    ds4_rows_q8_K_fn rows = type == DS4_TYPE_IQ2_XXS ? k->rows_iq2_xxs : type == DS4_TYPE_Q2_K ? k->rows_q2_K : k->rows_q4_K;
    rows(nb * 256, nrows, w, stride, y, out);
    int bad = -1;
    for (int r = 0; r < nrows && bad < 0; r++) {
        float a = ref(nb * 256, w + stride * (size_t)r, y), b = one(nb * 256, w + stride * (size_t)r, y);
        if (!same(a, b) || !same(a, out[r])) {
            printf("# %s %s nb=%d row %d: ref %a, one-row %a, rows %a\n", k->name, ds4_type_name(type), nb, r, a, b, out[r]);
            bad = r;
        }
    }
    free(w); free(y); free(out);
    return bad < 0;
}

static int check_level_f16(const ds4_quant_kernels *k, int n, int extreme) {
    uint16_t *w = malloc(2 * (size_t)n + 2);
    float *x = malloc(4 * (size_t)n + 4);
    for (int i = 0; i < n; i++) {
        w[i] = extreme && r32() % 5 == 0 ? rand_scale16(1) : ds4_f32_to_f16(ufl() * 2 - 1);
        x[i] = extreme && r32() % 7 == 0 ? rand_act_scale(1) : ufl() * 2 - 1;
    }
    /* odd start offsets exercise unaligned loads */
    int off = n > 1 ? (int)(r32() % 2) : 0;
    float a = ds4_vec_dot_f16_f32_ref(n - off, w + off, x + off), b = k->dot_f16(n - off, w + off, x + off);
    int ok = same(a, b);
    if (!ok) printf("# %s F16 n=%d: ref %a, got %a\n", k->name, n - off, a, b);
    /* multi-row: rows are consecutive slices of w (stride n/nr elements) */
    int nr = 1 + (int)(r32() % 19), cols = n / nr;
    float out[19];
    k->rows_f16(cols, nr, w, (size_t)cols * 2, x, out);
    for (int r = 0; r < nr && ok; r++) {
        float want = ds4_vec_dot_f16_f32_ref(cols, w + (size_t)r * (size_t)cols, x);
        if (!same(want, out[r])) { ok = 0; printf("# %s F16 rows: row %d of %d, n=%d: ref %a, got %a\n", k->name, r, nr, cols, want, out[r]); }
    }
    free(w); free(x);
    return ok;
}

TEST(simd_levels_bit_identical) {
    int tested = 0;
    for (int l = 0; l < 4; l++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(levels[l]);
        if (!k) { printf("# level %s: not available here\n", levels[l]); continue; }
        tested++;
        int reps = quick() ? 60 : 400;
        for (int rep = 0; rep < reps; rep++) {
            int extreme = rep % 3 == 0;
            int nrows = 1 + (int)(r32() % 19);
            int nb = 1 + (int)(r32() % (rep % 10 == 0 ? 200 : 20));
            CHECKF(check_level_q8_0(k, nb, extreme, nrows), "%s Q8_0 differs from the reference", k->name);
            int nbk = 1 + (int)(r32() % (rep % 10 == 0 ? 24 : 6));
            CHECKF(check_level_q8_K(k, DS4_TYPE_IQ2_XXS, nbk, extreme, nrows), "%s IQ2_XXS differs", k->name);
            CHECKF(check_level_q8_K(k, DS4_TYPE_Q2_K, nbk, extreme, nrows), "%s Q2_K differs", k->name);
            CHECKF(check_level_q8_K(k, DS4_TYPE_Q4_K, nbk, extreme, nrows), "%s Q4_K differs", k->name);
            int n = (int)(r32() % (rep % 10 == 0 ? 5000 : 200));
            CHECKF(check_level_f16(k, n, extreme), "%s F16 differs", k->name);
        }
        printf("# level %s: bit-identical to the references\n", k->name);
    }
    CHECK(tested >= 1);
}

TEST(dispatcher_level_is_known) {
    const char *l = ds4_simd_level();
    CHECK(ds4_quant_kernels_for(l) != NULL);
    printf("# dispatcher picked %s\n", l);
#if defined(__x86_64__)
    if (!getenv("DS4_SIMD") && __builtin_cpu_supports("avx2"))
        CHECKF(strcmp(l, "scalar") != 0, "AVX2 CPU but dispatcher picked %s", l);
#endif
}

TEST(large_rows_bit_identical) {
    /* model-sized rows: 4096 (Q8_0: 128 blocks) and 2048/4096 (K formats) */
    for (int l = 0; l < 4; l++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(levels[l]);
        if (!k) continue;
        CHECK(check_level_q8_0(k, 128, 0, 8));
        CHECK(check_level_q8_0(k, 1024, 0, 3));
        CHECK(check_level_q8_K(k, DS4_TYPE_IQ2_XXS, 16, 0, 8));
        CHECK(check_level_q8_K(k, DS4_TYPE_Q2_K, 8, 0, 8));
        CHECK(check_level_q8_K(k, DS4_TYPE_Q4_K, 16, 0, 8));
        CHECK(check_level_f16(k, 16384, 0));
    }
}

/* ---- 3. fast F16 ----------------------------------------------------------- */

/* The fast kernel reassociates the sum across SIMD lanes. Bound: with F32
 * accumulators the error of any summation order is at most about
 * n * 2^-24 * sum|w_i x_i|; we require |fast - exact| <= 1e-6 * n/16 * sum|w x|
 * (~1e-7 relative per 16-element lane step), far looser than what is seen
 * (~1e-7 of sum|w x|) and far tighter than a wrong kernel. */
TEST(f16_fast_within_tolerance) {
    for (int l = 0; l < 4; l++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(levels[l]);
        if (!k) continue;
        for (int rep = 0; rep < 200; rep++) {
            int n = (int)(r32() % 3000);
            uint16_t *w = malloc(2 * (size_t)n + 2);
            float *x = malloc(4 * (size_t)n + 4);
            double exact = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                w[i] = ds4_f32_to_f16(ufl() * 2 - 1);
                x[i] = ufl() * 2 - 1;
                double p = (double)ds4_f16_to_f32(w[i]) * x[i];
                exact += p; mag += fabs(p);
            }
            float got = k->dot_f16_fast(n, w, x);
            double tol = 1e-6 * (n / 16.0 + 1) * mag + 1e-30;
            CHECKF(fabs(got - exact) <= tol, "%s fast F16 n=%d: got %.9g, exact %.9g", k->name, n, got, exact);
            CHECK(same(ds4_vec_dot_f16_f32_fast(n, w, x), ds4_quant_kernels_for(ds4_simd_level())->dot_f16_fast(n, w, x)));
            free(w); free(x);
        }
    }
}

/* Fast Q8_0: block products summed in lanes. Each block product
 * (d_w * d_x) * isum is exact up to two roundings, so only the order of the
 * additions differs; the bound is the F16 one above per block:
 * |fast - exact| <= 1e-6 * (nb/8 + 1) * sum|block products|, with the exact
 * sum taken in double. Extreme scales are left out (an overflow to inf in
 * one order and not the other is a legitimate difference), -128 codes are in. */
TEST(q8_0_fast_within_tolerance) {
    for (int l = 0; l < 4; l++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(levels[l]);
        if (!k) continue;
        for (int rep = 0; rep < 100; rep++) {
            int nb = 1 + (int)(r32() % 200), nr = 1 + (int)(r32() % 20);
            size_t stride = (size_t)nb * 34;
            uint8_t *w = malloc(stride * (size_t)nr);
            ds4_act_q8_0 *x = malloc(sizeof *x * (size_t)nb);
            float *out = malloc(sizeof(float) * (size_t)nr);
            fill_w(DS4_TYPE_Q8_0, w, nb * nr, 0);
            fill_q8_0(x, nb, 0);
            if (rep % 4 == 0) x[r32() % nb].qs[r32() % 32] = -128;
            k->rows_q8_0_fast(nb * 32, nr, w, stride, x, out);
            for (int r = 0; r < nr; r++) {
                const ds4_block_q8_0 *b = (const ds4_block_q8_0 *)(const void *)(w + stride * (size_t)r);
                double exact = 0, mag = 0;
                for (int i = 0; i < nb; i++) {
                    int isum = 0;
                    for (int j = 0; j < 32; j++) isum += b[i].qs[j] * x[i].qs[j];
                    double p = (double)ds4_f16_to_f32(b[i].d) * x[i].d * isum;
                    exact += p; mag += fabs(p);
                }
                double tol = 1e-6 * (nb / 8.0 + 1) * mag + 1e-30;
                float one = k->dot_q8_0_fast(nb * 32, b, x);
                CHECKF(fabs(out[r] - exact) <= tol && fabs(one - exact) <= tol,
                       "%s fast Q8_0 nb=%d row %d: rows %.9g one %.9g exact %.9g", k->name, nb, r, out[r], one, exact);
                CHECK(same(one, out[r]));   /* a row's result does not depend on its neighbours */
            }
            const ds4_quant_kernels *act = ds4_quant_kernels_for(ds4_simd_level());
            CHECK(same(ds4_vec_dot_q8_0_fast(nb * 32, w, x), act->dot_q8_0_fast(nb * 32, w, x)));
            float pub = 0;
            ds4_vec_dot_q8_0_rows_fast(nb * 32, 1, w, stride, x, &pub);
            CHECK(same(pub, act->dot_q8_0_fast(nb * 32, w, x)));
            free(w); free(x); free(out);
        }
    }
}

/* Many rows of model width, activations with -128 codes: the multi-row exact
 * kernels' full passes (8 rows), leftovers and prefetch wrap-around. */
TEST(q8_0_many_rows_bit_identical) {
    for (int l = 0; l < 4; l++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(levels[l]);
        if (!k) continue;
        for (int rep = 0; rep < 6; rep++) {
            int nb = rep < 3 ? 128 : 32, nr = 8 * (1 + rep) + rep;
            size_t stride = (size_t)nb * 34 + (rep % 2) * 68;
            uint8_t *w = malloc(stride * (size_t)nr);
            ds4_act_q8_0 *x = malloc(sizeof *x * (size_t)nb);
            float *out = malloc(sizeof(float) * (size_t)nr);
            fill_w(DS4_TYPE_Q8_0, w, (int)(stride * (size_t)nr / 34), rep % 3 == 0);
            fill_q8_0(x, nb, rep % 3 == 0);
            if (rep % 2) x[r32() % nb].qs[r32() % 32] = -128;
            k->rows_q8_0(nb * 32, nr, w, stride, x, out);
            for (int r = 0; r < nr; r++) {
                float ref = ds4_vec_dot_q8_0_ref(nb * 32, w + stride * (size_t)r, x);
                CHECKF(same(ref, out[r]), "%s Q8_0 rows nb=%d row %d of %d: ref %a rows %a", k->name, nb, r, nr, ref, out[r]);
            }
            free(w); free(x); free(out);
        }
    }
}

/* The AVX-512 IQ2_XXS multi-row kernel rewrites the activations 32 blocks at
 * a time, takes blocks in pairs and 16 at a time, and adds the float block
 * sums of 8 rows in interleaved chains: rows longer than one chunk (odd and
 * even remainders) and row counts around multiples of 8 must still be bit
 * for bit the reference. */
TEST(iq2_xxs_rows_across_chunks) {
    static const int nbs[] = {15, 17, 31, 32, 33, 48, 63, 64, 65, 97};
    static const int nrs[] = {1, 7, 8, 9, 16, 17};
    for (int l = 0; l < 4; l++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(levels[l]);
        if (!k) continue;
        for (size_t a = 0; a < sizeof nbs / sizeof nbs[0]; a++)
            for (size_t b = 0; b < sizeof nrs / sizeof nrs[0]; b++)
                CHECKF(check_level_q8_K(k, DS4_TYPE_IQ2_XXS, nbs[a], (int)(a + b) % 2, nrs[b]),
                       "%s IQ2_XXS nb=%d rows=%d differs", k->name, nbs[a], nrs[b]);
    }
}

/* SIMD Q8_0 activation quantization against ds4_quantize_act_q8_0, bit for
 * bit: ordinary blocks, blocks of one scale (ties at .5 after scaling),
 * NaN, infinities, huge values, zeros of both signs, and subnormal blocks
 * whose inverse scale overflows to inf (codes from lrintf(+-inf)). */
TEST(act_q8_0_simd_bit_identical) {
    const int nb = 64;
    float x[64 * 32];
    ds4_act_q8_0 want[64], got[64];
    int checked = 0;
    for (int l = 0; l < 4; l++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(levels[l]);
        if (!k) continue;
        for (int rep = 0; rep < 300; rep++) {
            for (int b = 0; b < nb; b++) {
                float *xb = x + 32 * b;
                const int kind = (int)(r32() % 8);
                const float scale = kind == 0 ? 1e-41f : kind == 1 ? 3e38f : (ufl() + 0.01f) * 10.0f;
                for (int j = 0; j < 32; j++) {
                    float v = (ufl() * 2.0f - 1.0f) * scale;
                    if (kind == 2) v = (float)((int)(r32() % 255) - 127) * 0.5f;   /* many ties */
                    if (kind == 3 && r32() % 4 == 0) {
                        const float sp[6] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, -NAN};
                        v = sp[r32() % 6];
                    }
                    if (kind == 4) v = j == 5 ? 127.0f : (float)((int)(r32() % 255) - 127);
                    if (kind == 5) v = 0.0f;
                    xb[j] = v;
                }
            }
            ds4_quantize_act_q8_0(x, want, nb * 32);
            memset(got, 0x5a, sizeof got);
            k->act_q8_0(x, got, nb * 32);
            for (int b = 0; b < nb; b++) {
                int ok = fb(got[b].d) == fb(want[b].d) && !memcmp(got[b].qs, want[b].qs, 32);
                if (!ok) printf("# %s act block %d: d %a vs %a, first %d vs %d\n", k->name, b, got[b].d, want[b].d,
                                got[b].qs[0], want[b].qs[0]);
                CHECKF(ok, "%s act_q8_0 block %d differs", k->name, b);
                if (!ok) return;
            }
            checked++;
        }
    }
    ds4_quantize_act_q8_0_simd(x, got, nb * 32);
    CHECK(!memcmp(got, want, sizeof got));
    CHECK(checked > 0);
}

/* The public, dispatched entry points (whatever level DS4_SIMD leaves). */
TEST(public_functions_bit_identical) {
    int nb = 16, nr = 5;
    static uint8_t w[5 * 128 * 34];    /* the largest use: 5 rows of 128 Q8_0 blocks */
    static ds4_block_q8_K y[16];
    static ds4_act_q8_0 a[128];
    float out[5];
    fill_q8_K(y, nb, 0);
    fill_q8_0(a, 128, 0);
    fill_w(DS4_TYPE_Q8_0, w, 128 * nr, 0);
    ds4_vec_dot_q8_0_rows(4096, nr, w, 128 * 34, a, out);
    for (int r = 0; r < nr; r++) {
        float ref = ds4_vec_dot_q8_0_ref(4096, w + r * 128 * 34, a);
        CHECK(same(ref, ds4_vec_dot_q8_0(4096, w + r * 128 * 34, a)) && same(ref, out[r]));
    }
    static const uint32_t types[3] = {DS4_TYPE_IQ2_XXS, DS4_TYPE_Q2_K, DS4_TYPE_Q4_K};
    for (int t = 0; t < 3; t++) {
        size_t rb = ds4_row_bytes(types[t], 4096);
        fill_w(types[t], w, nb * nr, 0);
        if (t == 0) ds4_vec_dot_iq2_xxs_q8_K_rows(4096, nr, w, rb, y, out);
        if (t == 1) ds4_vec_dot_q2_K_q8_K_rows(4096, nr, w, rb, y, out);
        if (t == 2) ds4_vec_dot_q4_K_q8_K_rows(4096, nr, w, rb, y, out);
        for (int r = 0; r < nr; r++) {
            const uint8_t *row = w + r * rb;
            float ref = t == 0 ? ds4_vec_dot_iq2_xxs_q8_K_ref(4096, row, y) : t == 1 ? ds4_vec_dot_q2_K_q8_K_ref(4096, row, y)
                                                                                    : ds4_vec_dot_q4_K_q8_K_ref(4096, row, y);
            float one = t == 0 ? ds4_vec_dot_iq2_xxs_q8_K(4096, row, y) : t == 1 ? ds4_vec_dot_q2_K_q8_K(4096, row, y)
                                                                                 : ds4_vec_dot_q4_K_q8_K(4096, row, y);
            CHECKF(same(ref, one) && same(ref, out[r]), "%s row %d: ref %a one %a rows %a", ds4_type_name(types[t]), r, ref, one, out[r]);
        }
    }
    uint16_t *h = (uint16_t *)w;
    static float x[1000];
    for (int i = 0; i < 5 * 1000; i++) h[i] = ds4_f32_to_f16(ufl() - 0.5f);
    for (int i = 0; i < 1000; i++) x[i] = ufl() - 0.5f;
    ds4_vec_dot_f16_f32_rows(1000, 5, h, 2000, x, out);
    for (int r = 0; r < 5; r++) {
        float ref = ds4_vec_dot_f16_f32_ref(1000, h + 1000 * r, x);
        CHECK(same(ref, ds4_vec_dot_f16_f32(1000, h + 1000 * r, x)) && same(ref, out[r]));
    }
}
