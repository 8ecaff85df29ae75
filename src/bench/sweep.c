/* sweep.c - ds4-bench's measurement: prefill a token stream incrementally to
 * each context frontier, and at each one time a fixed greedy generation from
 * a snapshot that is restored afterwards, so every generation starts from the
 * same prompt prefix and the next interval continues the prompt, not the
 * generated text.
 *
 * Timed: the sync of each interval (prefill t/s) and the N decode steps
 * (sample + forward). Not timed: snapshot save/restore and the bookkeeping. */
#include <stdlib.h>
#include <time.h>

#include "bench/bench.h"
#include "bench/sweep.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int ds4_bench_sweep(ds4_model *m, const int32_t *toks, int n_toks, const ds4_sweep_opts *o, double bandwidth,
                    ds4_bench_row **rows_out, size_t *n_rows, ds4_sweep_row_fn on_row, void *ud, ds4_err *err) {
    if (o->ctx_start < 1 || o->ctx_max < o->ctx_start || o->step < 1 || o->gen_tokens < 1)
        return ds4_errf(err, "ctx-start %d, ctx-max %d, step-incr %d, gen-tokens %d: expected 1 <= ctx-start <= ctx-max, "
                             "step-incr >= 1, gen-tokens >= 1", o->ctx_start, o->ctx_max, o->step, o->gen_tokens);
    if (n_toks < o->ctx_max) return ds4_errf(err, "%d prompt tokens: expected at least ctx-max %d", n_toks, o->ctx_max);
    const gguf_file *g = ds4_model_gguf(m);
    const int n_vocab = ds4_model_n_vocab(m);
    ds4_session *s = ds4_session_new(m, o->ctx_max + o->gen_tokens, err);
    if (!s) return -1;
    size_t cap = (size_t)((o->ctx_max - o->ctx_start) / o->step) + 2, n = 0;
    ds4_bench_row *rows = calloc(cap, sizeof *rows);
    if (!rows) { ds4_session_free(s); return ds4_errf(err, "out of memory"); }
    int prev = 0, rc = 0;
    for (int f = o->ctx_start;; f += o->step) {
        if (f > o->ctx_max) {
            if (prev == o->ctx_max) break;
            f = o->ctx_max; /* the last frontier is ctx-max even off the step grid */
        }
        ds4_bench_row *r = &rows[n];
        r->frontier = f;
        double t0 = now_s();
        if (ds4_session_sync(s, toks, f, NULL, NULL, NULL, err)) { ds4_err_prefix(err, "prefill to %d", f); rc = -1; break; }
        double t1 = now_s();
        r->prefill_tps = t1 > t0 ? (f - prev) / (t1 - t0) : 0;
        uint8_t *snap = NULL;
        size_t snap_len = 0;
        if (ds4_session_save(s, &snap, &snap_len, err)) { ds4_err_prefix(err, "snapshot at %d", f); rc = -1; break; }
        r->kv_bytes = snap_len;
        double d0 = now_s();
        for (int i = 0; i < o->gen_tokens && rc == 0; i++) {
            int32_t tok = ds4_argmax(ds4_session_logits(s), n_vocab);
            if (ds4_session_eval(s, tok, err)) { ds4_err_prefix(err, "decode at %d", f + i); rc = -1; }
        }
        double d1 = now_s();
        if (rc == 0 && ds4_session_load(s, snap, snap_len, err)) { ds4_err_prefix(err, "restore at %d", f); rc = -1; }
        free(snap);
        if (rc) break;
        r->decode_tps = d1 > d0 ? o->gen_tokens / (d1 - d0) : 0;
        if (ds4_bench_weight_bytes(g, (uint64_t)f, &r->weight_bytes, err)) { rc = -1; break; }
        r->bw_fraction = bandwidth > 0 ? r->decode_tps * (double)r->weight_bytes / bandwidth : 0;
        n++;
        if (on_row) on_row(ud, r);
        prev = f;
        if (f == o->ctx_max) break;
    }
    ds4_session_free(s);
    if (rc) { free(rows); return -1; }
    *rows_out = rows;
    *n_rows = n;
    return 0;
}
