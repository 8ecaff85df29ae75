/* synth_internal.h - what the ds4-synth pieces share: the counter-based RNG,
 * the token tables, the metadata writer and the per-tensor generators.
 *
 * Every random value is a pure function of (seed, tensor name, element or
 * block index): no generator state is carried from one value to the next.
 * That is what lets any number of threads fill disjoint row ranges in any
 * order and still produce the same bytes, and makes a reduced-depth model
 * the exact prefix (layer by layer) of the deeper one with the same seed. */
#ifndef DS4_SYNTH_INTERNAL_H
#define DS4_SYNTH_INTERNAL_H

#include <stdint.h>

#include "gguf/gguf.h"
#include "model/layout.h"
#include "synth/synth.h"
#include "text/tokenizer.h"

/* splitmix64's output function: a bijective 64-bit mixer. */
static inline uint64_t ds4_synth_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
/* The i-th random word of the stream `key`: splitmix64 jumped to step i
 * (its state advances by a constant, so any step is one multiply away). */
static inline uint64_t ds4_synth_rand(uint64_t key, uint64_t i) { return ds4_synth_mix(key + i * 0x9E3779B97F4A7C15ull); }
/* Approximately N(0,1) from one word: Irwin-Hall sum of four 16-bit uniforms
 * (bounded at ±3.46, which keeps quantization scales tame). */
static inline float ds4_synth_normal(uint64_t r) {
    const uint32_t s = (uint32_t)(r & 0xFFFF) + (uint32_t)((r >> 16) & 0xFFFF) + (uint32_t)((r >> 32) & 0xFFFF) +
                       (uint32_t)(r >> 48);
    return ((float)s + 2.0f - 131072.0f) * (1.7320508f / 65536.0f);
}
/* The stream key of one tensor. */
uint64_t ds4_synth_tensor_key(uint64_t seed, const char *name);

/* Token tables (text/tokenizer.h's ds4_token_table). */
int ds4_synth_vocab_bytes(size_t n_vocab, ds4_token_table *t, ds4_err *err);
int ds4_synth_vocab_table(const ds4_synth_opts *o, ds4_token_table *t, ds4_err *err);

/* All metadata, in the oracle's key order. */
int ds4_synth_meta(gguf_writer *w, const ds4_synth_opts *o, const ds4_token_table *t, ds4_err *err);

/* How a tensor's values are drawn. */
typedef enum synth_kind {
    SYNTH_NORMAL,   /* mean + std * N(0,1), then stored as the tensor's type */
    SYNTH_UNIFORM,  /* uniform in [lo, hi) */
    SYNTH_TID2EID,  /* per row: distinct expert ids */
    SYNTH_BLOCKS,   /* routed experts: random valid blocks with a target RMS */
} synth_kind;

typedef struct synth_tensor {
    ds4_tensor_spec spec;
    uint32_t type;        /* resolved (routed class -> recipe type) */
    synth_kind kind;
    float a, b;           /* NORMAL: mean, std; UNIFORM: lo, hi; BLOCKS: target RMS */
    uint64_t key;
    uint64_t rows, row_bytes; /* rows = elements / ne0 */
    uint32_t n_expert;    /* TID2EID */
} synth_tensor;

/* Decide type, kind and scale of one layout tensor (the table of scales lives here). */
void ds4_synth_tensor_init(synth_tensor *t, const ds4_tensor_spec *s, const ds4_synth_opts *o);
/* Fill rows [row0, row0 + n) of t into out (n * row_bytes bytes). scratch
 * holds at least ne0 floats. */
void ds4_synth_gen_rows(const synth_tensor *t, uint64_t row0, uint64_t n, uint8_t *out, float *scratch);

#endif
