/* test_quant_codec.c - dequantization against blocks written out by hand,
 * activation quantization against the reference rule (spec §3.7, §3.8), and
 * the weight encoders: valid blocks, and dequant(quant(x)) close to x within
 * the per-format tolerances stated in quant_tolerance below. */
#pragma GCC diagnostic ignored "-Wclobbered"
#pragma GCC diagnostic ignored "-Wunused-function"
#include "harness.h"
#include "quant/quant.h"

static void check_row(const float *got, const float *want, int n, const char *what) {
    for (int i = 0; i < n; i++)
        if (!(got[i] == want[i])) T_FAIL("%s element %d: got %.9g, expected %.9g", what, i, got[i], want[i]);
}

TEST(dequant_f32_f16_bf16) {
    float f[3] = {1.5f, -0.0f, 3e38f}, out[3];
    ds4_dequantize_row(DS4_TYPE_F32, f, out, 3);
    check_row(out, f, 3, "F32");
    uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};
    float hw[4] = {1.0f, -2.0f, 0x1p-24f, 65504.0f}, o4[4];
    ds4_dequantize_row(DS4_TYPE_F16, h, o4, 4);
    check_row(o4, hw, 4, "F16");
    uint16_t b[3] = {0x3f80, 0xc040, 0x0000};
    float bw[3] = {1.0f, -3.0f, 0.0f};
    ds4_dequantize_row(DS4_TYPE_BF16, b, o4, 3);
    check_row(o4, bw, 3, "BF16");
}

TEST(dequant_q8_0_hand_block) {
    ds4_block_q8_0 blk[2] = {0};
    blk[0].d = 0x3800;                        /* 0.5 */
    blk[0].qs[0] = 1; blk[0].qs[1] = -2; blk[0].qs[2] = 127; blk[0].qs[3] = -128;
    blk[1].d = 0xc400;                        /* -4 */
    blk[1].qs[31] = 3;
    float want[64] = {0.5f, -1.0f, 63.5f, -64.0f}, out[64];
    want[63] = -12.0f;
    ds4_dequantize_row(DS4_TYPE_Q8_0, blk, out, 64);
    check_row(out, want, 64, "Q8_0");
}

TEST(dequant_q2_K_hand_block) {
    ds4_block_q2_K b = {0};
    b.d = 0x3c00; b.dmin = 0x3800;            /* d = 1, dmin = 0.5 */
    b.scales[0] = 0x21;                       /* sub-block 0: scale 1, min 2 */
    b.scales[2] = 0x12;                       /* sub-block 2: scale 2, min 1 */
    b.scales[4] = 0xF5;                       /* sub-block 4: scale 5, min 15 */
    b.scales[8] = 0x07;                       /* sub-block 8: scale 7, min 0 */
    b.qs[0] = 0xE4;                           /* codes 0,1,2,3 for e = 0, 32, 64, 96 */
    b.qs[32] = 0x03;                          /* code 3 for e = 128 */
    float want[256] = {0}, out[256];
    for (int e = 0; e < 16; e++) want[e] = -1.0f;      /* code 0: 0 - 0.5*2 */
    for (int e = 32; e < 48; e++) want[e] = -0.5f;     /* sub-block 2: code 0 -> -0.5*1 */
    for (int e = 64; e < 80; e++) want[e] = -7.5f;     /* sub-block 4: code 0 -> -0.5*15 */
    want[0] = -1.0f;                                   /* 1*1*0 - 1 */
    want[32] = 1.5f;                                   /* 1*2*1 - 0.5 */
    want[64] = 2.5f;                                   /* 1*5*2 - 7.5 */
    want[96] = 0.0f;                                   /* sub-block 6 is all zero */
    want[128] = 21.0f;                                 /* 1*7*3 */
    ds4_dequantize_row(DS4_TYPE_Q2_K, &b, out, 256);
    check_row(out, want, 256, "Q2_K");
}

TEST(dequant_q4_K_hand_block) {
    ds4_block_q4_K b = {0};
    b.d = 0x3c00; b.dmin = 0x3400;            /* d = 1, dmin = 0.25 */
    /* sub-block 0: scale 3, min 4; sub-block 5: scale 33, min 18 (needs the
     * high bits packed into S[1] and S[5]) */
    b.scales[0] = 3; b.scales[4] = 4;
    b.scales[1] = 0x80; b.scales[5] = 0x40; b.scales[9] = 0x21;
    b.qs[0] = 0x07;                           /* e = 0: code 7 (sub-block 0) */
    b.qs[64] = 0xA0;                          /* e = 160: code 10 (sub-block 5) */
    float want[256] = {0}, out[256];
    for (int e = 0; e < 32; e++) want[e] = -1.0f;      /* code 0: 0 - 0.25*4 */
    for (int e = 160; e < 192; e++) want[e] = -4.5f;   /* code 0: 0 - 0.25*18 */
    want[0] = 20.0f;                                   /* 3*7 - 1 */
    want[160] = 325.5f;                                /* 33*10 - 4.5 */
    ds4_dequantize_row(DS4_TYPE_Q4_K, &b, out, 256);
    check_row(out, want, 256, "Q4_K");
}

TEST(dequant_iq2_xxs_hand_block) {
    ds4_block_iq2_xxs b = {0};
    b.d = 0x3c00;                             /* d = 1 */
    /* group 0: grid entries 1, 0, 0, 255; signs 1 (-> SIGNS 0x81: elements 0, 7),
     * 0, 0, 3 (elements 0, 1); scale code 3 -> (0.5+3)*0.25 = 0.875 */
    uint32_t A = 1u | 0u << 8 | 0u << 16 | 255u << 24;
    uint32_t B = 3u << 28 | 1u | 3u << 21;
    memcpy((uint8_t *)b.qs, &A, 4);
    memcpy((uint8_t *)b.qs + 4, &B, 4);
    float want[256], out[256];
    for (int e = 0; e < 256; e++) want[e] = 1.0f;      /* other groups: grid 8, scale 0.125 */
    for (int e = 0; e < 32; e++) want[e] = 7.0f;       /* 0.875*8 */
    want[0] = -37.625f;                                /* -0.875*43 */
    want[7] = -7.0f;
    /* entry 255 = 0x2b2b2b1908081908: magnitudes 8,25,8,8,25,43,43,43 */
    static const float g255[8] = {-7.0f, -21.875f, 7.0f, 7.0f, 21.875f, 37.625f, 37.625f, 37.625f};
    for (int j = 0; j < 8; j++) want[24 + j] = g255[j];
    ds4_dequantize_row(DS4_TYPE_IQ2_XXS, &b, out, 256);
    check_row(out, want, 256, "IQ2_XXS");
}

TEST(dequant_rejects_non_weight_types) {
    float out[256];
    uint8_t junk[292] = {0};
    ds4_dequantize_row(DS4_TYPE_Q8_K, junk, out, 256);
    CHECK(isnan(out[0]) && isnan(out[255]));
    ds4_dequantize_row(DS4_TYPE_Q8_0, junk, out, 33);   /* not a whole block */
    CHECK(isnan(out[0]) && isnan(out[32]));
    ds4_dequantize_row(77, junk, out, 4);
    CHECK(isnan(out[3]));
}

TEST(act_q8_0_rule) {
    float x[64] = {0};
    x[0] = 1.0f; x[1] = -2.54f; x[2] = 0.01f; x[3] = 2.54f * 0.5f / 127.0f * 127.0f;
    for (int i = 4; i < 32; i++) x[i] = (float)(i - 16) * 0.05f;
    /* second block all zero: d = 0, id = 0, q = 0 */
    ds4_act_q8_0 q[2];
    ds4_quantize_act_q8_0(x, q, 64);
    float d = 2.54f / 127.0f;                 /* F32, not rounded to F16 */
    CHECK(q[0].d == d);
    float id = 1.0f / d;
    for (int i = 0; i < 32; i++) {
        long want = lrintf(x[i] * id);
        CHECK_EQ_INT(q[0].qs[i], want);
    }
    CHECK_EQ_INT(q[0].qs[1], -127);
    CHECK(q[1].d == 0.0f);
    for (int i = 0; i < 32; i++) CHECK_EQ_INT(q[1].qs[i], 0);
}

TEST(act_q8_0_ties_to_even) {
    /* amax 127 -> d = 1, id = 1: x*id are the values themselves */
    float x[32] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f};
    ds4_act_q8_0 q;
    ds4_quantize_act_q8_0(x, &q, 32);
    CHECK(q.d == 1.0f);
    static const int want[8] = {127, 0, 2, 2, 0, -2, -2, 4};
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(q.qs[i], want[i]);
}

TEST(act_q8_K_rule) {
    float x[512] = {0};
    for (int i = 0; i < 256; i++) x[i] = sinf((float)i * 0.37f) * 3.0f;
    x[17] = 5.0f; x[40] = -5.0f;              /* tie in |x|: first index wins, m = +5 */
    ds4_block_q8_K q[2];
    ds4_quantize_q8_K(x, q, 512);
    float iscale = -127.0f / 5.0f;
    CHECK(q[0].d == 1.0f / iscale);
    CHECK(q[0].d < 0.0f);
    CHECK_EQ_INT(q[0].qs[17], -127);
    CHECK_EQ_INT(q[0].qs[40], 127);
    for (int i = 0; i < 256; i++) CHECK_EQ_INT(q[0].qs[i], lrintf(iscale * x[i]));
    for (int t = 0; t < 16; t++) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += q[0].qs[16 * t + i];
        CHECK_EQ_INT(q[0].bsums[t], s);
    }
    CHECK(q[1].d == 0.0f);                    /* all-zero block */
    for (int i = 0; i < 256; i++) CHECK_EQ_INT(q[1].qs[i], 0);
    for (int t = 0; t < 16; t++) CHECK_EQ_INT(q[1].bsums[t], 0);
    /* negative maximum: d positive */
    x[17] = -6.0f;
    ds4_quantize_q8_K(x, q, 256);
    CHECK(q[0].d == 1.0f / (-127.0f / -6.0f));
    CHECK_EQ_INT(q[0].qs[17], -127);
}

TEST(act_quant_non_finite_does_not_crash) {
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = (float)i;
    x[3] = NAN; x[9] = INFINITY;
    ds4_act_q8_0 a[8];
    ds4_block_q8_K k;
    ds4_quantize_act_q8_0(x, a, 256);
    ds4_quantize_q8_K(x, &k, 256);
    for (int i = 0; i < 32; i++) CHECK(a[0].qs[i] >= -128 && a[0].qs[i] <= 127);
}

/* --- weight encoders ----------------------------------------------------- */

static uint64_t rs = 12345;
static double urand(void) { rs = rs * 6364136223846793005ull + 1442695040888963407ull; return (double)(rs >> 11) * 0x1p-53; }
static float gauss(void) { return (float)(sqrt(-2.0 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand())); }

/* Relative RMS error bounds for Gaussian data, per format: measured values are
 * about 0.005 (Q8_0), 0.078 (Q4_K), 0.33 (Q2_K) and 0.36 (IQ2_XXS); the bounds
 * leave room but still fail an encoder that is off by a code or a scale. */
static double rel_rms_err(uint32_t type, void (*q)(const float *, void *, int64_t), const float *x, int n) {
    void *blk = malloc(ds4_row_bytes(type, (uint64_t)n));
    float *y = malloc(sizeof(float) * (size_t)n);
    q(x, blk, n);
    ds4_dequantize_row(type, blk, y, n);
    double e = 0, s = 0;
    for (int i = 0; i < n; i++) { e += (double)(y[i] - x[i]) * (y[i] - x[i]); s += (double)x[i] * x[i]; }
    free(blk); free(y);
    return sqrt(e / s);
}

TEST(weight_encoders_roundtrip) {
    int n = 256 * 64;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) x[i] = gauss() * 0.02f;
    double e8 = rel_rms_err(DS4_TYPE_Q8_0, ds4_quantize_row_q8_0, x, n);
    double e4 = rel_rms_err(DS4_TYPE_Q4_K, ds4_quantize_row_q4_K, x, n);
    double e2 = rel_rms_err(DS4_TYPE_Q2_K, ds4_quantize_row_q2_K, x, n);
    double ei = rel_rms_err(DS4_TYPE_IQ2_XXS, ds4_quantize_row_iq2_xxs, x, n);
    printf("# relative RMS error: Q8_0 %.4f Q4_K %.4f Q2_K %.4f IQ2_XXS %.4f\n", e8, e4, e2, ei);
    CHECKF(e8 < 0.01, "Q8_0 error %g", e8);
    CHECKF(e4 < 0.12, "Q4_K error %g", e4);
    CHECKF(e2 < 0.42, "Q2_K error %g", e2);
    CHECKF(ei < 0.50, "IQ2_XXS error %g", ei);
    free(x);
}

TEST(weight_encoders_exact_when_representable) {
    /* values already on a Q8_0 grid come back exactly */
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)((i * 37) % 255 - 127) * 0.25f;
    ds4_block_q8_0 b[2];
    float y[64];
    ds4_quantize_row_q8_0(x, b, 64);
    ds4_dequantize_row(DS4_TYPE_Q8_0, b, y, 64);
    check_row(y, x, 64, "Q8_0 representable");
    /* an IQ2_XXS block decoded and re-encoded reproduces its values */
    ds4_block_iq2_xxs src, re;
    src.d = 0x3c00;
    for (int i = 0; i < 32; i++) src.qs[i] = (uint16_t)(urand() * 65536);
    uint8_t *p = (uint8_t *)src.qs;
    for (int g = 0; g < 8; g++) p[8 * g + 7] = (uint8_t)((p[8 * g + 7] & 0x0f) | 0xf0);   /* s = 15 everywhere */
    float v[256], v2[256];
    ds4_dequantize_row(DS4_TYPE_IQ2_XXS, &src, v, 256);
    ds4_quantize_row_iq2_xxs(v, &re, 256);
    ds4_dequantize_row(DS4_TYPE_IQ2_XXS, &re, v2, 256);
    check_row(v2, v, 256, "IQ2_XXS re-encoded");
}

TEST(weight_encoders_valid_blocks) {
    int n = 256 * 8;
    float x[256 * 8];
    for (int i = 0; i < n; i++) x[i] = gauss() * (i < 256 ? 1e-3f : i < 512 ? 1e4f : 1.0f);
    for (int i = 1024; i < 1280; i++) x[i] = 0.0f;       /* an all-zero block */
    x[1500] = INFINITY; x[1600] = NAN;                    /* must not crash */
    ds4_block_q8_0 q8[64];
    ds4_block_q2_K q2[8];
    ds4_block_q4_K q4[8];
    ds4_block_iq2_xxs iq[8];
    ds4_quantize_row_q8_0(x, q8, n);
    ds4_quantize_row_q2_K(x, q2, n);
    ds4_quantize_row_q4_K(x, q4, n);
    ds4_quantize_row_iq2_xxs(x, iq, n);
    /* valid: every F16 scale finite and non-negative; Q8_0 codes within +-127;
     * IQ2_XXS sign fields decode to an even number of negatives by construction */
    for (int i = 0; i < 64; i++) {
        float d = ds4_f16_to_f32(q8[i].d);
        CHECKF(isfinite(d) && d >= 0, "Q8_0 block %d d=%g", i, d);
        for (int j = 0; j < 32; j++) CHECK(q8[i].qs[j] >= -127);
    }
    for (int i = 0; i < 8; i++) {
        float s[6] = {ds4_f16_to_f32(q2[i].d), ds4_f16_to_f32(q2[i].dmin), ds4_f16_to_f32(q4[i].d),
                      ds4_f16_to_f32(q4[i].dmin), ds4_f16_to_f32(iq[i].d), 0};
        for (int k = 0; k < 5; k++) CHECKF(isfinite(s[k]) && s[k] >= 0, "block %d scale %d = %g", i, k, s[k]);
    }
    float y[256 * 8];
    ds4_dequantize_row(DS4_TYPE_IQ2_XXS, iq, y, 256);
    double e = 0, s = 0;
    for (int i = 0; i < 256; i++) { e += (double)(y[i] - x[i]) * (y[i] - x[i]); s += (double)x[i] * x[i]; }
    CHECKF(sqrt(e / s) < 0.6, "tiny-scale IQ2_XXS block error %g", sqrt(e / s));   /* small scales (subnormal F16 d) still coded */
    ds4_dequantize_row(DS4_TYPE_Q4_K, q4, y, n);
    for (int i = 1024; i < 1280; i++) CHECK(y[i] == 0.0f);
}
