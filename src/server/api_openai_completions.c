/* api_openai_completions.c - POST /v1/completions output (spec/server.md
 * §7.3, Appendix A.4). The generated text is returned raw: in a thinking mode
 * that is reasoning + "</think>" + answer, unparsed. No role chunk; the end is
 * one chunk with text "" and the finish reason, then usage (if asked), then
 * [DONE]. Logprobs use the legacy completions shape. */
#include <stdlib.h>
#include <string.h>

#include "server/errors.h"
#include "server/gen.h"
#include "server/jsonu.h"
#include "server/sse.h"

static json_t *usage(const ds4s_gen *g) {
    return json_pack("{s:i,s:i,s:i,s:{s:i,s:i}}", "prompt_tokens", g->n_prompt, "completion_tokens", g->n_gen,
                     "total_tokens", g->n_prompt + g->n_gen, "prompt_tokens_details", "cached_tokens", g->n_cached,
                     "cache_write_tokens", g->n_prompt - g->n_cached);
}

/* Chat-format entries -> {tokens, token_logprobs, top_logprobs, text_offset}. */
static json_t *legacy_logprobs(json_t *entries, size_t *offset) {
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        json_t *tok = json_object_get(e, "token");
        json_array_append(toks, tok);
        json_array_append(lps, json_object_get(e, "logprob"));
        json_t *m = json_object();
        size_t k;
        json_t *t;
        json_array_foreach(json_object_get(e, "top_logprobs"), k, t)
            json_object_set(m, json_string_value(json_object_get(t, "token")), json_object_get(t, "logprob"));
        json_array_append_new(tops, m);
        json_array_append_new(offs, json_integer((json_int_t)*offset));
        *offset += json_array_size(json_object_get(e, "bytes"));
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs", tops, "text_offset", offs);
}

typedef struct st { size_t lp_offset; } st;

static json_t *chunk(ds4s_gen *g, json_t *text, const char *finish) {
    json_t *choice = json_object();
    json_object_set_new(choice, "text", text);
    json_object_set_new(choice, "index", json_integer(0));
    if (json_array_size(g->stream_lp)) {
        st *s = g->st;
        json_object_set_new(choice, "logprobs", legacy_logprobs(g->stream_lp, &s->lp_offset));
        json_array_clear(g->stream_lp);
    } else if (g->job->params.logprobs) {
        json_object_set_new(choice, "logprobs", json_null());
    }
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(g->id));
    json_object_set_new(o, "object", json_string("text_completion"));
    json_object_set_new(o, "created", json_integer(g->created));
    json_object_set_new(o, "model", ds4s_jcstr(g->job->req.model));
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    return o;
}

static void begin(ds4s_gen *g) {
    g->st = calloc(1, sizeof(st));
}

static void event(ds4s_gen *g, const ds4_stream_event *ev) {
    if (ev->kind != DS4_EV_TEXT && ev->kind != DS4_EV_REASONING) return;
    ds4s_gen_emit_json(g, NULL, chunk(g, ds4s_jstr(ev->data, ev->len), NULL));
}

static void end(ds4s_gen *g) {
    ds4s_job *j = g->job;
    if (!g->stream) {
        if (g->finish == DS4S_FIN_ERROR) {
            ds4s_chan_start(j->ch, 500, 0);
            ds4s_gen_emit(g, ds4s_error_body(DS4S_FAM_OPENAI, 500, g->error_msg ? g->error_msg : "generation failed"));
            return;
        }
        json_t *choice = json_object();
        json_object_set_new(choice, "text", ds4s_jstr(g->text, g->text_len));
        json_object_set_new(choice, "index", json_integer(0));
        if (j->params.logprobs) {
            size_t off = 0;
            json_object_set_new(choice, "logprobs", legacy_logprobs(g->logprobs, &off));
        }
        json_object_set_new(choice, "finish_reason", json_string(ds4s_finish_openai(g->finish)));
        json_t *body = json_object();
        json_object_set_new(body, "id", json_string(g->id));
        json_object_set_new(body, "object", json_string("text_completion"));
        json_object_set_new(body, "created", json_integer(g->created));
        json_object_set_new(body, "model", ds4s_jcstr(j->req.model));
        json_object_set_new(body, "choices", json_pack("[o]", choice));
        json_object_set_new(body, "usage", usage(g));
        ds4s_gen_body(g, body);
        return;
    }
    if (g->finish == DS4S_FIN_ERROR) {
        ds4s_gen_emit(g, ds4s_error_sse(DS4S_FAM_OPENAI, g->error_msg ? g->error_msg : "generation failed"));
    } else {
        ds4s_gen_emit_json(g, NULL, chunk(g, json_string(""), ds4s_finish_openai(g->finish)));
        if (j->params.include_usage) {
            json_t *o = json_object();
            json_object_set_new(o, "id", json_string(g->id));
            json_object_set_new(o, "object", json_string("text_completion"));
            json_object_set_new(o, "created", json_integer(g->created));
            json_object_set_new(o, "model", ds4s_jcstr(j->req.model));
            json_object_set_new(o, "choices", json_array());
            json_object_set_new(o, "usage", usage(g));
            ds4s_gen_emit_json(g, NULL, o);
        }
        ds4s_gen_emit(g, ds4s_sse_raw(NULL, "[DONE]"));
    }
    free(g->st);
    g->st = NULL;
}

static void keepalive(ds4s_gen *g) { ds4s_gen_emit(g, ds4s_sse_comment("prefill")); }

const ds4s_api_ops ds4s_ops_completions = {begin, event, end, keepalive};
