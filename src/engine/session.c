/* session.c - one KV timeline (spec/model.md §5): allocation, sync to a token
 * prefix (reuse, rewind, chunked prefill), single-token decode.
 *
 * Caches are append-only, so a rewind rebuilds from position 0; the server
 * avoids rewinds by restoring snapshots (snapshot.c). */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

static void kv_free(ds4_session *s) {
    if (!s->kv) return;
    for (uint32_t il = 0; il < s->m->cfg.n_layer; il++) {
        ds4_layer_kv *k = &s->kv[il];
        free(k->raw); free(k->comp); free(k->cmp_sv); free(k->cmp_sk);
        free(k->idx); free(k->icmp_sv); free(k->icmp_sk);
    }
    free(s->kv);
    s->kv = NULL;
}

static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

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
    s->chunk = 256;
    s->raw_cap = (uint32_t)ctx < c->swa ? (uint32_t)ctx : c->swa;
    s->comp_cap = (uint32_t)(ctx / 4 + 2);
    s->tokens = calloc((size_t)ctx, sizeof(int32_t));
    s->logits = falloc(c->n_vocab);
    s->kv = calloc(c->n_layer, sizeof *s->kv);
    if (!s->tokens || !s->logits || !s->kv) goto oom;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        ds4_layer_kv *k = &s->kv[il];
        const uint32_t r = c->compress_ratio[il], D = c->head_dim;
        if (!(k->raw = falloc((size_t)s->raw_cap * D))) goto oom;
        if (r) {
            const size_t cap = (size_t)ctx / r + 2, Wc = (size_t)ds4_cmp_lanes(r) * D, rows = r == 4 ? 8 : r;
            if (!(k->comp = falloc(cap * D)) || !(k->cmp_sv = falloc(rows * Wc)) || !(k->cmp_sk = falloc(rows * Wc)))
                goto oom;
        }
        if (r == 4) {
            const size_t cap = (size_t)ctx / 4 + 2, Wi = 2 * (size_t)c->idx_head_dim;
            if (!(k->idx = falloc(cap * c->idx_head_dim)) || !(k->icmp_sv = falloc(8 * Wi)) ||
                !(k->icmp_sk = falloc(8 * Wi)))
                goto oom;
        }
    }
    ds4_session_reset(s);
    return s;
oom:
    ds4_errf(err, "out of memory for a session of context %d", ctx);
    ds4_session_free(s);
    return NULL;
}

void ds4_session_free(ds4_session *s) {
    if (!s) return;
    kv_free(s);
    free(s->tokens);
    free(s->logits);
    free(s);
}

void ds4_session_reset(ds4_session *s) {
    const ds4_config *c = &s->m->cfg;
    s->n = 0;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        ds4_layer_kv *k = &s->kv[il];
        const uint32_t r = c->compress_ratio[il];
        k->n_comp = k->n_idx = 0;
        if (r) {
            const size_t Wc = (size_t)ds4_cmp_lanes(r) * c->head_dim, rows = r == 4 ? 8 : r;
            memset(k->cmp_sv, 0, sizeof(float) * rows * Wc);
            for (size_t i = 0; i < rows * Wc; i++) k->cmp_sk[i] = -1e30f;
        }
        if (r == 4) {
            const size_t Wi = 2 * (size_t)c->idx_head_dim;
            memset(k->icmp_sv, 0, sizeof(float) * 8 * Wi);
            for (size_t i = 0; i < 8 * Wi; i++) k->icmp_sk[i] = -1e30f;
        }
    }
}

int ds4_session_ctx(const ds4_session *s) { return s->ctx; }
int ds4_session_n_tokens(const ds4_session *s) { return s->n; }
const int32_t *ds4_session_tokens(const ds4_session *s) { return s->tokens; }
const float *ds4_session_logits(const ds4_session *s) { return s->n > 0 ? s->logits : NULL; }

void ds4_session_set_steering(ds4_session *s, float ffn_scale, float attn_scale) {
    s->steer_ffn = ffn_scale;
    s->steer_attn = attn_scale;
}

void ds4_session_set_chunk(ds4_session *s, int chunk) { s->chunk = chunk > 0 ? chunk : 256; }

int ds4_session_common_prefix(const ds4_session *s, const int32_t *tokens, int n) {
    int k = 0;
    while (k < n && k < s->n && s->tokens[k] == tokens[k]) k++;
    return k;
}

int ds4_session_sync(ds4_session *s, const int32_t *tokens, int n, int *reused, ds4_progress_fn progress, void *ud,
                     ds4_err *err) {
    if (n < 0 || n > s->ctx) return ds4_errf(err, "prompt of %d tokens: expected at most the context size %d", n, s->ctx);
    int k = ds4_session_common_prefix(s, tokens, n);
    /* The last prompt token must be (re)evaluated when the session is longer:
     * its logits are the ones the caller samples from. */
    if (k < s->n) {
        ds4_session_reset(s);
        k = 0;
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
    return 0;
}

int ds4_session_eval(ds4_session *s, int32_t token, ds4_err *err) { return ds4_forward(s, &token, 1, NULL, err); }
