/* session.c - one KV timeline (spec/model.md §5): allocation, sync to a token
 * prefix (reuse, rewind, chunked prefill), single-token decode.
 *
 * Caches are append-only, so a rewind rebuilds from position 0; the server
 * avoids rewinds by restoring snapshots (snapshot.c). */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

ds4_session *ds4_session_new(ds4_model *m, int ctx, ds4_err *err) {
    const ds4_config *c = &m->cfg;
    if (ctx <= 0 || ctx > (1 << 30)) {
        ds4_errf(err, "context size %d: expected 1..%d", ctx, 1 << 30);
        return NULL;
    }
    ds4_session *s = calloc(1, sizeof *s);
    if (!s) { ds4_errf(err, "out of memory"); return NULL; }
    s->m = m;
    s->ctx = ctx;
    s->chunk = m->be->prefill_chunk > 0 ? m->be->prefill_chunk : 256;
    s->raw_window = (uint32_t)ctx < c->swa ? (uint32_t)ctx : c->swa;
    s->mark_n = -1;
    s->tokens = calloc((size_t)ctx, sizeof(int32_t));
    s->logits = calloc(c->n_vocab, sizeof(float));
    if (!s->tokens || !s->logits) {
        ds4_errf(err, "out of memory for a session of context %d", ctx);
        ds4_session_free(s);
        return NULL;
    }
    if (m->be->session_init(s, err)) {
        ds4_session_free(s);
        return NULL;
    }
    return s;
}

void ds4_session_free(ds4_session *s) {
    if (!s) return;
    if (s->be) s->m->be->session_free(s);
    free(s->tokens);
    free(s->logits);
    free(s->mark_logits);
    free(s);
}

void ds4_session_reset(ds4_session *s) {
    s->n = 0;
    s->mark_n = -1;
    s->m->be->session_reset(s);
}

int ds4_forward(ds4_session *s, const int32_t *tokens, int n, float *logits_all, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    if (n <= 0) return 0;
    if (s->n + n > s->ctx)
        return ds4_errf(err, "context full: %d tokens processed + %d new > context size %d", s->n, n, s->ctx);
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= c->n_vocab)
            return ds4_errf(err, "token id %d at position %d: expected 0..%u", tokens[t], s->n + t, c->n_vocab - 1);
    if (s->m->be->forward(s, tokens, n, logits_all, err)) {
        /* The caches may hold part of the batch: start over rather than
         * continue from a state that matches no token prefix. */
        ds4_session_reset(s);
        return -1;
    }
    memcpy(s->tokens + s->n, tokens, sizeof(int32_t) * (size_t)n);
    s->n += n;
    return 0;
}

int ds4_session_ctx(const ds4_session *s) { return s->ctx; }
int ds4_session_n_tokens(const ds4_session *s) { return s->n; }
const int32_t *ds4_session_tokens(const ds4_session *s) { return s->tokens; }
const float *ds4_session_logits(const ds4_session *s) { return s->n > 0 ? s->logits : NULL; }

void ds4_session_set_steering(ds4_session *s, float ffn_scale, float attn_scale) {
    s->steer_ffn = ffn_scale;
    s->steer_attn = attn_scale;
}

void ds4_session_set_capture(ds4_session *s, ds4_capture_fn fn, void *ud) {
    s->capture = fn;
    s->capture_ud = ud;
}

void ds4_session_set_chunk(ds4_session *s, int chunk) {
    const int def = s->m->be->prefill_chunk > 0 ? s->m->be->prefill_chunk : 256;
    s->chunk = chunk > 0 ? chunk : def;
}

int ds4_session_common_prefix(const ds4_session *s, const int32_t *tokens, int n) {
    int k = 0;
    while (k < n && k < s->n && s->tokens[k] == tokens[k]) k++;
    return k;
}

int ds4_session_reusable(const ds4_session *s, const int32_t *tokens, int n) {
    const int k = ds4_session_common_prefix(s, tokens, n);
    if (k == s->n) return k;
    return s->mark_n > 0 && s->mark_n <= k ? s->mark_n : 0;
}

/* Mark the current position (see backend.h) so that a later sync to any
 * prompt extending tokens[0..n) can rewind here instead of rebuilding. */
static void set_mark(ds4_session *s) {
    const ds4_backend *be = s->m->be;
    if (!be->mark_save || s->n == 0 || s->mark_n == s->n) return;
    if (!s->mark_logits && !(s->mark_logits = malloc(sizeof(float) * s->m->cfg.n_vocab))) return;
    ds4_err ignored;
    if (be->mark_save(s, &ignored)) { s->mark_n = -1; return; }
    memcpy(s->mark_logits, s->logits, sizeof(float) * s->m->cfg.n_vocab);
    s->mark_n = s->n;
}

int ds4_session_sync(ds4_session *s, const int32_t *tokens, int n, int *reused, ds4_progress_fn progress, void *ud,
                     ds4_err *err) {
    if (n < 0 || n > s->ctx) return ds4_errf(err, "prompt of %d tokens: expected at most the context size %d", n, s->ctx);
    /* A session longer than the common prefix must go back: to the mark when
     * it lies within the prefix (a retried prompt, a rewound stop string, a
     * regenerated reply), else to position 0. When the prefix is the whole
     * prompt, its last token is re-evaluated through the mark too, since its
     * logits are the ones the caller samples from. */
    int k = ds4_session_reusable(s, tokens, n);
    if (k < s->n) {
        if (k > 0) {
            s->m->be->mark_restore(s);
            s->n = s->mark_n;
            memcpy(s->logits, s->mark_logits, sizeof(float) * s->m->cfg.n_vocab);
        } else {
            ds4_session_reset(s);
        }
    }
    if (reused) *reused = k;
    const int total = n - k;
    for (int done = 0; done < total;) {
        if (progress && progress(ud, done, total)) return 1;
        int len = total - done < s->chunk ? total - done : s->chunk;
        if (ds4_forward(s, tokens + k + done, len, NULL, err)) return -1;
        done += len;
    }
    if (progress && total > 0) progress(ud, total, total);
    set_mark(s);
    return 0;
}

int ds4_session_eval(ds4_session *s, int32_t token, ds4_err *err) { return ds4_forward(s, &token, 1, NULL, err); }
