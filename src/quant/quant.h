/* quant.h - the number formats of spec/model.md §3: block layouts, F16
 * conversion, dequantization, activation quantization and dot products.
 *
 * Every kernel exists as a portable scalar reference (the *_ref functions) and,
 * where it pays, SIMD variants (AVX2, AVX-512, NEON) picked once at run time.
 * The public, un-suffixed functions dispatch to the best variant. Integer
 * block sums are exact in any order, and every float accumulation that the
 * reference performs in a fixed order (block order for quantized dots, index
 * order for F16·F32) is kept in that order by every variant unless the name
 * says *_fast; so the default kernels are bit-identical to the references. */
#ifndef DS4_QUANT_H
#define DS4_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* GGML type ids (the values stored in GGUF tensor infos). */
typedef enum ds4_type {
    DS4_TYPE_F32 = 0,
    DS4_TYPE_F16 = 1,
    DS4_TYPE_Q8_0 = 8,
    DS4_TYPE_Q2_K = 10,
    DS4_TYPE_Q4_K = 12,
    DS4_TYPE_Q8_K = 15,
    DS4_TYPE_IQ2_XXS = 16,
    DS4_TYPE_I32 = 26,
    DS4_TYPE_BF16 = 30,
} ds4_type;

#define DS4_QK8_0 32
#define DS4_QK_K 256

/* Weight blocks, byte-exact with GGML. */
typedef struct { uint16_t d; int8_t qs[32]; } ds4_block_q8_0;                        /* 34 B */
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d; uint16_t dmin; } ds4_block_q2_K; /* 84 B */
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; } ds4_block_q4_K; /* 144 B */
typedef struct { uint16_t d; uint16_t qs[32]; } ds4_block_iq2_xxs;                   /* 66 B */

/* Activation blocks (never stored in files). */
typedef struct { float d; int8_t qs[32]; } ds4_act_q8_0;                    /* F32 scale, not F16 */
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } ds4_block_q8_K;

/* Type table. Unknown types: block_elems/block_bytes return 0, name "unknown". */
int ds4_type_known(uint32_t type);
uint32_t ds4_type_block_elems(uint32_t type);
uint32_t ds4_type_block_bytes(uint32_t type);
const char *ds4_type_name(uint32_t type);
/* Bytes of a row of n elements (n must be a multiple of the block size; returns 0 if not). */
uint64_t ds4_row_bytes(uint32_t type, uint64_t n);

/* IEEE binary16 <-> binary32, exact/RNE as spec §3.1. */
float ds4_f16_to_f32(uint16_t h);
uint16_t ds4_f32_to_f16(float f);
static inline float ds4_f16r(float f) { return ds4_f16_to_f32(ds4_f32_to_f16(f)); }

/* GGML's IQ2_XXS grid (256 × u64) and sign table (128 bytes). */
extern const uint64_t ds4_iq2xxs_grid[256];
extern const uint8_t ds4_ksigns_iq2xs[128];

/* Dequantize n elements (a multiple of the block size) of any weight type.
 * A non-weight type or a partial block fills dst with NaN. */
void ds4_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Activation quantization, exactly the reference rule (spec §3.7, §3.8). n is a
 * multiple of 32 (q8_0) or 256 (q8_K). */
void ds4_quantize_act_q8_0(const float *x, ds4_act_q8_0 *out, int64_t n);
void ds4_quantize_q8_K(const float *x, ds4_block_q8_K *out, int64_t n);
/* ds4_quantize_act_q8_0 on the dispatched SIMD level: the same codes and
 * scales bit for bit (NaN, infinities and overflowing scales included),
 * ~10x faster; what the CPU engine calls on the decode path. */
void ds4_quantize_act_q8_0_simd(const float *x, ds4_act_q8_0 *out, int64_t n);

/* Weight quantization from F32 (used by ds4-synth and tests). Any reasonable
 * encoder; it need not be GGML's search-based one, only produce valid blocks. */
void ds4_quantize_row_q8_0(const float *x, void *dst, int64_t n);
void ds4_quantize_row_q2_K(const float *x, void *dst, int64_t n);
void ds4_quantize_row_q4_K(const float *x, void *dst, int64_t n);
void ds4_quantize_row_iq2_xxs(const float *x, void *dst, int64_t n);

/* Dot products of one weight row (n elements) with a quantized activation.
 * Results are bit-identical to the *_ref versions. Q8_K blocks must be
 * consistent (bsums = sums of their qs, as ds4_quantize_q8_K makes them):
 * the K-format kernels read bsums instead of re-adding the codes. */
float ds4_vec_dot_q8_0(int64_t n, const void *w, const ds4_act_q8_0 *x);
float ds4_vec_dot_iq2_xxs_q8_K(int64_t n, const void *w, const ds4_block_q8_K *y);
float ds4_vec_dot_q2_K_q8_K(int64_t n, const void *w, const ds4_block_q8_K *y);
float ds4_vec_dot_q4_K_q8_K(int64_t n, const void *w, const ds4_block_q8_K *y);
/* F16 weights times F32 activations, accumulated in F32 in index order. */
float ds4_vec_dot_f16_f32(int64_t n, const uint16_t *w, const float *x);
/* Same, reassociated for speed (SIMD lanes); differs in the last bits. */
float ds4_vec_dot_f16_f32_fast(int64_t n, const uint16_t *w, const float *x);

/* Multi-row forms: out[r] = ds4_vec_dot_*(n, (const char *)w + r*row_stride, x)
 * for r < nrows, bit-identical to the one-row call. Prefer them for
 * matrix-vector products: IQ2_XXS on AVX-512 prepares the activation once per
 * call (~15% faster), F16 runs 8 rows' index-order chains in vector lanes
 * (~4.5x), Q8_0 likewise runs 8 rows' block-order chains in lanes (8 weight
 * streams in flight: one thread streams at its full read bandwidth); the
 * other formats loop over the one-row kernel. */
void ds4_vec_dot_q8_0_rows(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                           const ds4_act_q8_0 *x, float *out);
void ds4_vec_dot_iq2_xxs_q8_K_rows(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                   const ds4_block_q8_K *y, float *out);
void ds4_vec_dot_q2_K_q8_K_rows(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                const ds4_block_q8_K *y, float *out);
void ds4_vec_dot_q4_K_q8_K_rows(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                const ds4_block_q8_K *y, float *out);
/* F16 rows (row_stride in bytes), each accumulated in index order exactly as
 * ds4_vec_dot_f16_f32; the SIMD form runs 8 rows' chains in vector lanes. */
void ds4_vec_dot_f16_f32_rows(int64_t n, int64_t nrows, const uint16_t *w, size_t row_stride,
                              const float *x, float *out);

/* Q8_0 with the float block products summed in SIMD lanes and combined at
 * the end (reassociated, like the F16 fast kernel): not bit-identical to the
 * reference, used only when the engine runs with exact = -1. Each row is one
 * dot, so results still do not depend on how rows are split. */
float ds4_vec_dot_q8_0_fast(int64_t n, const void *w, const ds4_act_q8_0 *x);
void ds4_vec_dot_q8_0_rows_fast(int64_t n, int64_t nrows, const void *w, size_t row_stride,
                                const ds4_act_q8_0 *x, float *out);

/* Scalar references (always available; tests compare the dispatched kernels to these). */
float ds4_vec_dot_q8_0_ref(int64_t n, const void *w, const ds4_act_q8_0 *x);
float ds4_vec_dot_iq2_xxs_q8_K_ref(int64_t n, const void *w, const ds4_block_q8_K *y);
float ds4_vec_dot_q2_K_q8_K_ref(int64_t n, const void *w, const ds4_block_q8_K *y);
float ds4_vec_dot_q4_K_q8_K_ref(int64_t n, const void *w, const ds4_block_q8_K *y);
float ds4_vec_dot_f16_f32_ref(int64_t n, const uint16_t *w, const float *x);

/* Which SIMD level the dispatcher picked ("avx512", "avx2", "neon", "scalar");
 * DS4_SIMD=scalar|avx2|avx512 in the environment caps it (for tests, benches). */
const char *ds4_simd_level(void);

#endif
