/* bench.h - the pieces of ds4-bench (src/bin/ds4-bench.c): the physical limit
 * (weight bytes read per decoded token, measured memory bandwidth), the
 * context sweep, and the CSV/SVG writers.
 *
 * design.md "Measuring speed": a benchmark reports its ratio to the physical
 * limit measured in the same run. Decode at batch 1 reads every active weight
 * once per token, so tokens/s x bytes/token / bandwidth is the fraction of the
 * memory system the decoder uses. */
#ifndef DS4_BENCH_H
#define DS4_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/ds4_err.h"
#include "gguf/gguf.h"

/* Weight bytes read to decode one token at context `ctx` (spec/model.md
 * §10.2), from the file's own tensors: every non-expert tensor in full,
 * n_expert_used of n_expert routed experts per layer, one embedding row, one
 * hash-table row on hash layers, and the indexer query/proj only once a
 * ratio-4 layer holds more than idx_top_k compressed rows (before that the
 * indexer is skipped). Returns 0 and fills *bytes, or -1 with err. */
int ds4_bench_weight_bytes(const gguf_file *f, uint64_t ctx, uint64_t *bytes, ds4_err *err);

/* Streaming-read bandwidth in bytes/s: n_threads threads sum disjoint slices
 * of a buffer of buf_bytes (touched first so no page faults are timed); the
 * best of `passes` passes. Returns a value <= 0 if the buffer cannot be had. */
double ds4_bench_bandwidth(size_t buf_bytes, int n_threads, int passes);

/* One measured frontier. */
typedef struct ds4_bench_row {
    int frontier;              /* context tokens after the prefill interval */
    double prefill_tps;        /* tokens of the interval / its prefill time */
    double decode_tps;         /* greedy tokens generated / time */
    uint64_t kv_bytes;         /* snapshot size at the frontier */
    uint64_t weight_bytes;     /* per decoded token at this context */
    double bw_fraction;        /* decode_tps * weight_bytes / bandwidth */
} ds4_bench_row;

int ds4_bench_write_csv(FILE *f, const ds4_bench_row *rows, size_t n);

/* SVG line plot of prefill and decode t/s against context, written with
 * fprintf only. title/subtitle may be NULL. */
int ds4_bench_write_svg(FILE *f, const ds4_bench_row *rows, size_t n, const char *title, const char *subtitle);

#endif
