/* sweep.c - ds4-steer sweep: greedy generations at several steering scales,
 * summarised as average tokens, words and repetition (share of repeated token
 * trigrams), so a user can pick a strength that changes behaviour without
 * breaking the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steer/steer.h"

static double repetition(const int32_t *t, int n) {
    if (n < 4) return 0.0;
    int repeats = 0;
    for (int i = 2; i < n; i++)
        for (int j = 2; j < i; j++)
            if (t[j] == t[i] && t[j - 1] == t[i - 1] && t[j - 2] == t[i - 2]) { repeats++; break; }
    return (double)repeats / (n - 2);
}

static int count_words(const char *s, size_t n) {
    int w = 0, in = 0;
    for (size_t i = 0; i < n; i++) {
        const int sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
        if (!sp && !in) w++;
        in = !sp;
    }
    return w;
}

int ds4_steer_sweep(ds4_model *m, const ds4_vocab *v, const ds4_prompts *p, const float *scales, int n_scales,
                    int component, int max_tokens, int show, ds4_sweep_row *rows, ds4_err *err) {
    const int V = ds4_model_n_vocab(m);
    const int32_t eos = ds4_vocab_special(v, DS4_SP_EOS);
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)(max_tokens + 1));
    if (!gen) return ds4_errf(err, "out of memory");
    int rc = 0;
    for (int si = 0; si < n_scales && rc == 0; si++) {
        ds4_sweep_row *r = &rows[si];
        memset(r, 0, sizeof *r);
        r->scale = scales[si];
        for (int pi = 0; pi < p->n && rc == 0; pi++) {
            ds4_tokens t = {0};
            if ((rc = ds4_steer_prompt_tokens(v, p->items[pi], &t, err))) break;
            ds4_session *s = ds4_session_new(m, (int)t.n + max_tokens + 1, err);
            if (!s) { ds4_tokens_free(&t); rc = -1; break; }
            ds4_session_set_steering(s, component == DS4_CAPTURE_FFN_OUT ? scales[si] : 0.0f,
                                     component == DS4_CAPTURE_ATTN_OUT ? scales[si] : 0.0f);
            rc = ds4_session_sync(s, t.ids, (int)t.n, NULL, NULL, NULL, err);
            ds4_tokens_free(&t);
            int n = 0;
            while (rc == 0 && n < max_tokens) {
                const int32_t tok = ds4_argmax(ds4_session_logits(s), V);
                if (tok == eos) { r->eos_stops++; break; }
                gen[n++] = tok;
                if (n < max_tokens) rc = ds4_session_eval(s, tok, err);
            }
            ds4_session_free(s);
            if (rc) break;
            ds4_sbuf text = {0};
            ds4_decode(v, gen, (size_t)n, &text);
            r->tokens += n;
            r->words += count_words(text.p ? text.p : "", text.len);
            r->repetition += repetition(gen, n);
            if (show) printf("--- scale %g, prompt %d: %.*s\n", scales[si], pi + 1, (int)text.len, text.p ? text.p : "");
            ds4_sbuf_free(&text);
        }
        r->tokens /= p->n;
        r->words /= p->n;
        r->repetition /= p->n;
    }
    free(gen);
    return rc;
}
