/* backend.h - the seam between the engine and a compute backend.
 *
 * The engine (session.c, snapshot.c, golden_run.c) owns token bookkeeping,
 * logits on the host, snapshots and the public API; a backend owns the
 * weights' device copy, the KV state and the forward pass. The CPU backend
 * (cpu/) is the bit-exact reference; others are tested against it op by op
 * and on the goldens. KV state crosses the seam only in the host "view"
 * layout below, which is exactly the snapshot's per-layer layout
 * (spec/model.md §5.5), so snapshots are backend-independent. */
#ifndef DS4_ENGINE_BACKEND_H
#define DS4_ENGINE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/ds4_err.h"

struct ds4_model;
struct ds4_session;

/* One layer's state in host memory. raw: n_raw rows, oldest first. Buffers
 * are sized by the caller from the counts (ds4_backend.kv_counts). */
typedef struct ds4_kv_view {
    float *raw;
    uint32_t n_raw;
    float *comp;
    uint32_t n_comp;
    float *cmp_sv, *cmp_sk;   /* frontier rows × lanes·head_dim */
    float *idx;
    uint32_t n_idx;
    float *icmp_sv, *icmp_sk; /* 8 × 2·idx_head_dim */
} ds4_kv_view;

typedef struct ds4_backend {
    const char *name;
    int prefill_chunk;     /* tokens per forward call in a session's prefill (0 = 256) */
    int default_fast;      /* ds4_model_opts.exact == 0 picks the fast (reassociated) kernels */
    int (*model_init)(struct ds4_model *m, ds4_err *err);
    void (*model_free)(struct ds4_model *m);
    int (*session_init)(struct ds4_session *s, ds4_err *err);
    void (*session_free)(struct ds4_session *s);
    void (*session_reset)(struct ds4_session *s);
    /* n new tokens at positions s->n...: logits of every row into logits_all
     * (n × n_vocab, host) when not NULL, always the last row into s->logits.
     * Does not touch s->n / s->tokens (the caller does). */
    int (*forward)(struct ds4_session *s, const int32_t *tokens, int n, float *logits_all, ds4_err *err);
    void (*kv_counts)(const struct ds4_session *s, uint32_t il, uint32_t *n_comp, uint32_t *n_idx);
    int (*kv_export)(const struct ds4_session *s, uint32_t il, ds4_kv_view *v, ds4_err *err);
    int (*kv_import)(struct ds4_session *s, uint32_t il, const ds4_kv_view *v, ds4_err *err);
    /* Optional (NULL = unsupported; rewinds then rebuild from position 0).
     * A "mark" copies the state that is not append-only — the raw window,
     * the compressor frontiers and the row counters — at the current
     * position; restoring it rewinds the session to that position, because
     * compressed rows written after it are simply overwritten later. */
    int (*mark_save)(struct ds4_session *s, ds4_err *err);
    void (*mark_restore)(struct ds4_session *s);
} ds4_backend;

extern const ds4_backend ds4_backend_cpu;
#ifdef DS4_HAVE_CUDA
extern const ds4_backend ds4_backend_cuda;
#endif

#endif
