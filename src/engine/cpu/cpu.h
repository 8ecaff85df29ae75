/* cpu.h - the CPU backend's private state: per-layer KV caches in host
 * memory (spec/model.md §5.1). Rows are F32 arrays holding f16-rounded values;
 * frontiers hold unrounded projections and scores. */
#ifndef DS4_ENGINE_CPU_H
#define DS4_ENGINE_CPU_H

#include "engine/internal.h"

typedef struct ds4_layer_kv {
    float *raw;          /* raw_cap rows × head_dim, row of position p at p % raw_cap */
    float *comp;         /* comp_cap rows × head_dim */
    uint32_t n_comp;
    float *cmp_sv, *cmp_sk;   /* ds4_cmp_rows(r) rows × lanes·head_dim */
    float *idx;          /* comp_cap rows × idx_head_dim (ratio 4) */
    uint32_t n_idx;
    float *icmp_sv, *icmp_sk; /* 8 rows × 2·idx_head_dim */
} ds4_layer_kv;

typedef struct ds4_cpu_session {
    uint32_t raw_cap;    /* = session raw_window */
    uint32_t comp_cap;   /* ctx/4 + 2 rows */
    ds4_layer_kv *kv;
    ds4_layer_kv *mark;  /* copies of the non-append-only state (backend.h), lazily allocated */
} ds4_cpu_session;

static inline ds4_cpu_session *ds4_cpu(const ds4_session *s) { return (ds4_cpu_session *)s->be; }

int ds4_cpu_forward(ds4_session *s, const int32_t *tokens, int n, float *logits_all, ds4_err *err);

#endif
