/* golden_run.c - computes a DS4GOLD1 result with this engine: prefill rows
 * from one layer-major pass (in chunks, optionally through a snapshot round
 * trip), incremental rows from single-token decode, then the greedy
 * continuation. Used by `ds4 golden` and by the golden tests. */
#include <stdlib.h>
#include <string.h>

#include "engine/golden.h"
#include "engine/internal.h"

static int prefill_rows(ds4_model *m, const ds4_golden *ref, const ds4_golden_opts *o, ds4_golden *out,
                        ds4_session **sess_out, ds4_err *err) {
    const int T = (int)ref->n_tokens, V = (int)ref->n_vocab;
    ds4_session *s = ds4_session_new(m, T + (int)ref->n_greedy + 1, err);
    if (!s) return -1;
    ds4_session_set_steering(s, o->steer_ffn, o->steer_attn);
    const int chunk = o->chunk > 0 ? o->chunk : T;
    float *rows = malloc(sizeof(float) * (size_t)chunk * V);
    uint32_t next_pos = 0;
    int rc = rows ? 0 : ds4_errf(err, "out of memory");
    for (int done = 0; rc == 0 && done < T;) {
        int len = T - done < chunk ? T - done : chunk;
        if (o->snapshot_at > done && o->snapshot_at < done + len) len = o->snapshot_at - done;
        if ((rc = ds4_forward(s, ref->tokens + done, len, rows, err))) break;
        while (next_pos < ref->n_pos && ref->positions[next_pos] < done + len) {
            memcpy(out->prefill + (size_t)next_pos * V, rows + (size_t)(ref->positions[next_pos] - done) * V,
                   sizeof(float) * V);
            next_pos++;
        }
        done += len;
        if (o->snapshot_at == done) {
            uint8_t *blob;
            size_t blen;
            if ((rc = ds4_session_save(s, &blob, &blen, err))) break;
            ds4_session *s2 = ds4_session_new(m, s->ctx, err);
            if (!s2) { free(blob); rc = -1; break; }
            ds4_session_set_steering(s2, o->steer_ffn, o->steer_attn);
            ds4_session_free(s);
            s = s2;
            rc = ds4_session_load(s, blob, blen, err);
            free(blob);
        }
    }
    free(rows);
    if (rc) { ds4_session_free(s); return -1; }
    *sess_out = s;
    return 0;
}

int ds4_golden_compute(ds4_model *m, const ds4_golden *ref, const ds4_golden_opts *o, ds4_golden *out, ds4_err *err) {
    const size_t V = ref->n_vocab;
    if (ref->n_vocab != (uint32_t)ds4_model_n_vocab(m))
        return ds4_errf(err, "golden vocabulary %u: expected the model's %d", ref->n_vocab, ds4_model_n_vocab(m));
    memset(out, 0, sizeof *out);
    out->n_vocab = ref->n_vocab; out->n_tokens = ref->n_tokens; out->n_pos = ref->n_pos;
    out->n_greedy = ref->n_greedy; out->flags = 3;
    out->tokens = malloc(4 * (size_t)ref->n_tokens + 4);
    out->positions = malloc(4 * (size_t)ref->n_pos + 4);
    out->prefill = malloc(4 * ref->n_pos * V + 4);
    out->incremental = malloc(4 * ref->n_pos * V + 4);
    out->greedy_tokens = malloc(4 * (size_t)ref->n_greedy + 4);
    out->greedy_logits = malloc(4 * ref->n_greedy * V + 4);
    if (!out->tokens || !out->positions || !out->prefill || !out->incremental || !out->greedy_tokens ||
        !out->greedy_logits) { ds4_golden_free(out); return ds4_errf(err, "out of memory"); }
    memcpy(out->tokens, ref->tokens, 4 * (size_t)ref->n_tokens);
    memcpy(out->positions, ref->positions, 4 * (size_t)ref->n_pos);

    ds4_session *s = NULL;
    if (prefill_rows(m, ref, o, out, &s, err)) { ds4_golden_free(out); return -1; }

    /* Greedy continuation from the prefilled session. */
    int rc = 0;
    for (uint32_t i = 0; i < ref->n_greedy && rc == 0; i++) {
        const float *l = ds4_session_logits(s);
        memcpy(out->greedy_logits + i * V, l, sizeof(float) * V);
        out->greedy_tokens[i] = ds4_argmax(l, (int)V);
        if (i + 1 < ref->n_greedy) rc = ds4_session_eval(s, out->greedy_tokens[i], err);
    }
    ds4_session_free(s);
    if (rc) { ds4_golden_free(out); return -1; }

    if (o->skip_incremental) {
        memcpy(out->incremental, out->prefill, 4 * ref->n_pos * V);
        return 0;
    }
    s = ds4_session_new(m, (int)ref->n_tokens + 1, err);
    if (!s) { ds4_golden_free(out); return -1; }
    ds4_session_set_steering(s, o->steer_ffn, o->steer_attn);
    uint32_t next = 0;
    for (uint32_t t = 0; t < ref->n_tokens && next < ref->n_pos && rc == 0; t++) {
        if ((rc = ds4_session_eval(s, ref->tokens[t], err))) break;
        if ((int32_t)t == ref->positions[next]) {
            memcpy(out->incremental + next * V, ds4_session_logits(s), sizeof(float) * V);
            next++;
        }
    }
    ds4_session_free(s);
    if (rc) { ds4_golden_free(out); return -1; }
    return 0;
}
