/* engine.h - the engine's public face: load a model, run sessions, sample.
 *
 * Everything above this header (server, CLI, tools) sees tokens and logits,
 * never tensors. A ds4_model owns the mapped GGUF, the validated config, the
 * bound weights and the chosen backend. A ds4_session owns one KV timeline
 * (spec/model.md §5): the processed token ids, the per-layer caches and the
 * logits of the last processed token. Sessions are not thread-safe: one thread
 * drives a session at a time (the server's single worker). The backend may use
 * its own threads inside a call. */
#ifndef DS4_ENGINE_H
#define DS4_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/ds4_err.h"

typedef struct ds4_model ds4_model;
typedef struct ds4_session ds4_session;

typedef struct ds4_model_opts {
    const char *backend;   /* "cpu", "cuda" or NULL = fastest available */
    int n_threads;         /* CPU threads; 0 = all cores */
    int exact;             /* 1 = bit-exact reference order; -1 = fast (reassociated F16 sums, fused HC
                              pre-mix); 0 (default) = the backend's choice: exact on the CPU (fast gains
                              nothing there), fast on CUDA (4.5x faster decode) */
    const char *gpus;      /* CUDA devices the layers are split across, in order ("0,1"; the same one
                              twice, "0,0", is allowed); NULL = device 0 alone. Implies --backend cuda. */
} ds4_model_opts;

ds4_model *ds4_model_load(const char *path, const ds4_model_opts *opts, ds4_err *err);
void ds4_model_free(ds4_model *m);

/* Shape facts the layers above need. */
int ds4_model_n_vocab(const ds4_model *m);
int ds4_model_n_layer(const ds4_model *m);
int ds4_model_n_embd(const ds4_model *m);
const char *ds4_model_name(const ds4_model *m);      /* general.name or file stem */
const char *ds4_model_backend(const ds4_model *m);   /* "cpu" / "cuda" */
int ds4_model_exact(const ds4_model *m);             /* 1: exact reference order, 0: fast kernels */
/* 128-bit identity of the model (hash of GGUF metadata + tensor table), hex. */
const char *ds4_model_identity(const ds4_model *m);
/* The mapped GGUF (for the tokenizer). Opaque here: cast to gguf_file*. */
const void *ds4_model_gguf(const ds4_model *m);

/* Directional steering (spec/model.md §6). The file holds n_layer × n_embd F32.
 * Loading validates size, finiteness and unit norms. Scales are per session. */
int ds4_model_load_steering(ds4_model *m, const char *path, ds4_err *err);
int ds4_model_has_steering(const ds4_model *m);

/* ---- sessions ---- */
ds4_session *ds4_session_new(ds4_model *m, int ctx, ds4_err *err);
void ds4_session_free(ds4_session *s);

int ds4_session_ctx(const ds4_session *s);
int ds4_session_n_tokens(const ds4_session *s);
const int32_t *ds4_session_tokens(const ds4_session *s);
/* Logits (n_vocab floats) after the last processed token; NULL when empty. */
const float *ds4_session_logits(const ds4_session *s);

/* Steering scales for this session (0, 0 = unsteered; exact path). Changing
 * them invalidates nothing by itself; the caller decides whether KV computed
 * under other scales may be reused. */
void ds4_session_set_steering(ds4_session *s, float ffn_scale, float attn_scale);

/* Prefill chunk size (tokens per forward batch; default the backend's: 256 on
 * the CPU, 1024 on CUDA; <= 0 restores it). The math does
 * not depend on it; memory does. */
void ds4_session_set_chunk(ds4_session *s, int chunk);

/* Activation capture (for ds4-steer): called for every processed token and
 * layer with a sub-layer output before steering is applied — component 0 is
 * the attention output (after attn_output_b), 1 the FFN output (routed +
 * shared). pos is the token's absolute position. NULL turns it off. */
enum { DS4_CAPTURE_ATTN_OUT = 0, DS4_CAPTURE_FFN_OUT = 1 };
typedef void (*ds4_capture_fn)(void *ud, int layer, int component, int pos, const float *vec, int n_embd);
void ds4_session_set_capture(ds4_session *s, ds4_capture_fn fn, void *ud);

/* Progress / cancellation for long prefills: called between chunks with the
 * number of prompt tokens processed so far and the total; return nonzero to
 * cancel (sync then returns 1 with the session holding a valid shorter prefix). */
typedef int (*ds4_progress_fn)(void *ud, int done, int total);

/* Make the session's processed tokens equal tokens[0..n): keeps the longest
 * common prefix, rewinds when needed (rebuilds, since caches are append-only),
 * prefills the rest in chunks. Returns 0 on success, 1 if cancelled, -1 on
 * error (n > ctx, bad token id, ...). *reused gets the number of prefix tokens
 * that were not recomputed (may be NULL). */
int ds4_session_sync(ds4_session *s, const int32_t *tokens, int n, int *reused,
                     ds4_progress_fn progress, void *ud, ds4_err *err);
/* Append one token through the decode path. */
int ds4_session_eval(ds4_session *s, int32_t token, ds4_err *err);
/* Length of the common prefix between the session and tokens[0..n). */
int ds4_session_common_prefix(const ds4_session *s, const int32_t *tokens, int n);
/* How many of tokens[0..n) a ds4_session_sync would keep without computing:
 * the common prefix when it covers the session, else the position of the
 * session's rewind mark when that lies inside the prefix, else 0. */
int ds4_session_reusable(const ds4_session *s, const int32_t *tokens, int n);

/* Snapshots (spec/model.md §5.5): a self-describing byte blob that restores
 * the session exactly. Caller frees *blob with free(). */
int ds4_session_save(const ds4_session *s, uint8_t **blob, size_t *len, ds4_err *err);
int ds4_session_load(ds4_session *s, const uint8_t *blob, size_t len, ds4_err *err);

/* ---- sampling (spec/model.md §7) ---- */
typedef struct ds4_sampler {
    float temperature;  /* <= 0: greedy */
    int top_k;          /* <= 0: off */
    float top_p;        /* 1: off */
    float min_p;        /* relative to the top token; default 0.05 */
    uint64_t rng;       /* xorshift state; the seed */
} ds4_sampler;

void ds4_sampler_default(ds4_sampler *sp, uint64_t seed);
int ds4_sample(ds4_sampler *sp, const float *logits, int n_vocab);
int ds4_argmax(const float *logits, int n_vocab);
/* Log-probability of token `tok`, and the k most likely tokens with theirs
 * (ids[k], logps[k], descending; ties: lower id first). Returns the count. */
float ds4_logprob(const float *logits, int n_vocab, int tok);
int ds4_top_logprobs(const float *logits, int n_vocab, int k, int *ids, float *logps);

#endif
