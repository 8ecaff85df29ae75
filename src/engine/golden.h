/* golden.h - the DS4GOLD1 file format of tests/data/oracle/README.md: token
 * sequence, positions, prefill and incremental logit rows, greedy
 * continuation. Read by tests and `ds4 golden`, written by `ds4 golden`. */
#ifndef DS4_ENGINE_GOLDEN_H
#define DS4_ENGINE_GOLDEN_H

#include <stdint.h>

#include "common/ds4_err.h"

typedef struct ds4_golden {
    uint32_t n_vocab, n_tokens, n_pos, n_greedy, flags;
    int32_t *tokens, *positions, *greedy_tokens;
    float *prefill, *incremental, *greedy_logits; /* rows × n_vocab */
} ds4_golden;

int ds4_golden_read(const char *path, ds4_golden *g, ds4_err *err);
int ds4_golden_write(const char *path, const ds4_golden *g, ds4_err *err);
void ds4_golden_free(ds4_golden *g);

#endif

#ifndef DS4_ENGINE_GOLDEN_RUN
#define DS4_ENGINE_GOLDEN_RUN
#include "engine/engine.h"

typedef struct ds4_golden_opts {
    int chunk;          /* prefill chunk size (0 = whole sequence in one batch) */
    int snapshot_at;    /* > 0: save after this many prefill tokens, restore into a new session, continue */
    float steer_ffn, steer_attn;
    int skip_incremental; /* copy prefill rows instead of running the decode path */
} ds4_golden_opts;

/* Computes, for ref's tokens/positions/greedy length, the same quantities with
 * this engine (see tests/data/oracle/README.md) into out. */
int ds4_golden_compute(ds4_model *m, const ds4_golden *ref, const ds4_golden_opts *o, ds4_golden *out, ds4_err *err);
#endif
