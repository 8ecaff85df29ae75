/* internal.h - the engine's private structures: model, session, KV state.
 * Shared by the engine's own files only (forward pass, session, snapshots,
 * backends); nothing outside src/engine includes it. */
#ifndef DS4_ENGINE_INTERNAL_H
#define DS4_ENGINE_INTERNAL_H

#include <stdint.h>

#include "engine/backend.h"
#include "engine/cpu/pool.h"
#include "engine/engine.h"
#include "engine/numerics.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "model/weights.h"

struct ds4_model {
    gguf_file *gguf;
    ds4_config cfg;
    ds4_weights w;
    char identity[33];
    char name[128];
    ds4_rope rope_dense, rope_comp;
    float *steer;        /* n_layer × n_embd, or NULL */
    ds4_pool *pool;
    int exact;
    const ds4_backend *be;
    void *be_model;      /* backend's per-model state (device weights) */
    char gpus[128];      /* ds4_model_opts.gpus ("" = device 0 alone) */
};

struct ds4_session {
    ds4_model *m;
    int ctx;
    int n;               /* tokens processed = next position */
    int32_t *tokens;     /* ctx entries */
    float *logits;       /* n_vocab, valid when n > 0 */
    float steer_ffn, steer_attn;
    int chunk;           /* prefill chunk size */
    uint32_t raw_window; /* min(sliding window, ctx) */
    void *be;            /* backend's per-session state (KV caches) */
    ds4_capture_fn capture;
    void *capture_ud;
    int mark_n;          /* position of the backend's mark, -1 = none */
    float *mark_logits;  /* logits at the mark */
};

/* Lanes and frontier geometry of a compressor. */
static inline uint32_t ds4_cmp_lanes(uint32_t ratio) { return ratio == 4 ? 2 : 1; }
static inline uint32_t ds4_cmp_rows(uint32_t ratio) { return ratio == 4 ? 8 : ratio; }

/* One layer's KV state in float counts (spec/model.md §5.1), for a context of
 * ctx tokens: every backend allocates, and the snapshot serialises, exactly
 * these. Parts a layer does not have are 0. */
typedef struct ds4_kv_geom {
    size_t raw;                 /* raw window: raw_window rows × head_dim */
    size_t row, comp_cap;       /* compressed row width, capacity in rows */
    size_t frontier;            /* each of SV and SK */
    size_t irow, idx_cap;       /* indexer row width (128), capacity in rows */
    size_t ifrontier;           /* each of the indexer's SV and SK */
} ds4_kv_geom;

static inline ds4_kv_geom ds4_kv_geometry(const ds4_config *c, int ctx, uint32_t raw_window, uint32_t il) {
    const uint32_t r = c->compress_ratio[il];
    ds4_kv_geom g = {0};
    g.raw = (size_t)raw_window * c->head_dim;
    if (r) {
        g.row = c->head_dim;
        g.comp_cap = (size_t)ctx / r + 2;
        g.frontier = (size_t)ds4_cmp_rows(r) * ds4_cmp_lanes(r) * c->head_dim;
    }
    if (r == 4) {
        g.irow = c->idx_head_dim;
        g.idx_cap = (size_t)ctx / 4 + 2;
        g.ifrontier = 8 * 2 * (size_t)c->idx_head_dim;
    }
    return g;
}

/* Forward pass over n new tokens at positions s->n ... s->n+n-1 through the
 * model's backend. Writes the logits of every row into logits_all
 * (n × n_vocab) when it is not NULL, and always the last row into s->logits.
 * Updates s->n and s->tokens. */
int ds4_forward(ds4_session *s, const int32_t *tokens, int n, float *logits_all, ds4_err *err);

/* Reset the KV state to empty (position 0). */
void ds4_session_reset(ds4_session *s);

#endif
