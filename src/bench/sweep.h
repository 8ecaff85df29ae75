/* sweep.h - the context sweep of ds4-bench (sweep.c). */
#ifndef DS4_BENCH_SWEEP_H
#define DS4_BENCH_SWEEP_H

#include "bench/bench.h"
#include "engine/engine.h"

typedef struct ds4_sweep_opts {
    int ctx_start, ctx_max, step, gen_tokens;
} ds4_sweep_opts;

typedef void (*ds4_sweep_row_fn)(void *ud, const ds4_bench_row *r);

/* Frontiers ctx_start, +step, ... and ctx_max last; toks must hold at least
 * ctx_max tokens. bandwidth in bytes/s (<= 0: fraction left 0). Rows are
 * malloc'd (caller frees); on_row (may be NULL) sees each as it is measured. */
int ds4_bench_sweep(ds4_model *m, const int32_t *toks, int n_toks, const ds4_sweep_opts *o, double bandwidth,
                    ds4_bench_row **rows, size_t *n_rows, ds4_sweep_row_fn on_row, void *ud, ds4_err *err);

#endif
