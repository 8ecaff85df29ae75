/* chat_logprobs.c - `ds4 --dump-logprobs FILE`: one JSON line per sampled
 * token with its log-probability and the top K alternatives (spec/model.md
 * §7.3), for comparing runs and backends offline.
 *
 * A token may be part of a UTF-8 character, so "token" is a readable string
 * (invalid bytes shown as U+FFFD) and "bytes" holds the exact bytes, the way
 * the server's logprobs do. */
#include <jansson.h>
#include <stdlib.h>

#include "cli/chat_internal.h"

static json_t *token_obj(const ds4_vocab *v, int id, double lp) {
    ds4_sbuf b = {0};
    ds4_token_bytes(v, id, &b);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_t *s = json_stringn(b.p ? b.p : "", b.len);
    if (!s) { /* not valid UTF-8 on its own */
        ds4_sbuf l = {0};
        for (size_t i = 0; i < b.len; i++) {
            unsigned char ch = (unsigned char)b.p[i];
            if (ch < 0x80) ds4_sbuf_addc(&l, (char)ch);
            else ds4_sbuf_adds(&l, "\xef\xbf\xbd");
        }
        s = json_stringn(l.p ? l.p : "", l.len);
        ds4_sbuf_free(&l);
    }
    json_object_set_new(o, "token", s ? s : json_string(""));
    json_t *bytes = json_array();
    for (size_t i = 0; i < b.len; i++) json_array_append_new(bytes, json_integer((unsigned char)b.p[i]));
    json_object_set_new(o, "bytes", bytes);
    json_object_set_new(o, "logprob", json_real(lp));
    ds4_sbuf_free(&b);
    return o;
}

int chat_logprobs_write(FILE *f, const ds4_vocab *v, int turn, int pos, const float *logits, int n_vocab,
                        int tok, int k) {
    json_t *o = json_object();
    json_object_set_new(o, "turn", json_integer(turn));
    json_object_set_new(o, "pos", json_integer(pos));
    json_object_update_new(o, token_obj(v, tok, ds4_logprob(logits, n_vocab, tok)));
    json_t *top = json_array();
    if (k > 0) {
        int *ids = malloc(sizeof(int) * (size_t)k);
        float *lps = malloc(sizeof(float) * (size_t)k);
        if (ids && lps) {
            int n = ds4_top_logprobs(logits, n_vocab, k, ids, lps);
            for (int i = 0; i < n; i++) json_array_append_new(top, token_obj(v, ids[i], lps[i]));
        }
        free(ids);
        free(lps);
    }
    json_object_set_new(o, "top", top);
    int rc = json_dumpf(o, f, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (rc == 0 && fputc('\n', f) == EOF) rc = -1;
    return rc;
}
