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

/* Forward pass over n new tokens at positions s->n ... s->n+n-1 through the
 * model's backend. Writes the logits of every row into logits_all
 * (n × n_vocab) when it is not NULL, and always the last row into s->logits.
 * Updates s->n and s->tokens. */
int ds4_forward(ds4_session *s, const int32_t *tokens, int n, float *logits_all, ds4_err *err);

/* Reset the KV state to empty (position 0). */
void ds4_session_reset(ds4_session *s);

#endif
