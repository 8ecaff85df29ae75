/* api_openai_chat.c - POST /v1/chat/completions output (spec/server.md §7.2,
 * §9.3, Appendix A.1): the non-streaming body and the chunk stream.
 *
 * Streams: role chunk, reasoning_content / content deltas, tool_calls deltas
 * (the first delta of an index carries id, type and name with arguments "",
 * later ones only argument fragments, §17.1), finish chunk, optional usage
 * chunk, [DONE]. A failed generation sends an SSE error event instead of the
 * non-standard finish_reason "error" (§18.1). */
#include <stdlib.h>
#include <string.h>

#include "server/errors.h"
#include "server/gen.h"
#include "server/jsonu.h"
#include "server/sse.h"

static json_t *usage(const ds4s_gen *g) {
    return json_pack("{s:i,s:i,s:i,s:{s:i,s:i},s:{s:i}}", "prompt_tokens", g->n_prompt, "completion_tokens", g->n_gen,
                     "total_tokens", g->n_prompt + g->n_gen, "prompt_tokens_details", "cached_tokens", g->n_cached,
                     "cache_write_tokens", g->n_prompt - g->n_cached, "completion_tokens_details", "reasoning_tokens",
                     g->n_reasoning);
}

static json_t *chunk(ds4s_gen *g, json_t *delta, const char *finish) {
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "delta", delta);
    if (json_array_size(g->stream_lp)) {
        json_object_set_new(choice, "logprobs", json_pack("{s:o}", "content", json_copy(g->stream_lp)));
        json_array_clear(g->stream_lp);
    }
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(g->id));
    json_object_set_new(o, "object", json_string("chat.completion.chunk"));
    json_object_set_new(o, "created", json_integer(g->created));
    json_object_set_new(o, "model", ds4s_jcstr(g->job->req.model));
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    return o;
}

static void begin(ds4s_gen *g) {
    ds4s_gen_emit_json(g, NULL, chunk(g, json_pack("{s:s}", "role", "assistant"), NULL));
}

static json_t *tool_header(ds4s_gen *g, int index, const char *id, const char *name, const char *args, size_t args_len) {
    return json_pack("{s:i,s:s,s:s,s:{s:o,s:o}}", "index", index, "id", id, "type", "function", "function", "name",
                     ds4s_jcstr(name), "arguments", ds4s_jstr(args, args_len));
}

static void event(ds4s_gen *g, const ds4_stream_event *ev) {
    json_t *d = NULL;
    switch (ev->kind) {
    case DS4_EV_REASONING:
        d = json_pack("{s:o}", "reasoning_content", ds4s_jstr(ev->data, ev->len));
        break;
    case DS4_EV_TEXT:
        d = json_pack("{s:o}", "content", ds4s_jstr(ev->data, ev->len));
        break;
    case DS4_EV_TOOL_START: {
        const char *id = (size_t)ev->tool_index < g->n_stream_ids ? g->stream_ids[ev->tool_index] : "";
        d = json_pack("{s:[o]}", "tool_calls", tool_header(g, ev->tool_index, id, ev->data, "", 0));
        break;
    }
    case DS4_EV_TOOL_ARGS:
        d = json_pack("{s:[{s:i,s:{s:o}}]}", "tool_calls", "index", ev->tool_index, "function", "arguments",
                      ds4s_jstr(ev->data, ev->len));
        break;
    default:
        return;
    }
    if (d) ds4s_gen_emit_json(g, NULL, chunk(g, d, NULL));
}

static json_t *calls_json(ds4s_gen *g) {
    json_t *a = json_array();
    for (size_t i = 0; i < g->pr.n_calls; i++) {
        const ds4_parsed_call *c = &g->pr.calls[i];
        json_array_append_new(a, json_pack("{s:s,s:s,s:{s:o,s:o}}", "id", ds4s_gen_call_id(g, i), "type", "function",
                                           "function", "name", ds4s_jcstr(c->name), "arguments",
                                           ds4s_jstr(c->arguments, c->arguments_len)));
    }
    return a;
}

static void end(ds4s_gen *g) {
    ds4s_job *j = g->job;
    if (!g->stream) {
        if (g->finish == DS4S_FIN_ERROR) {
            ds4s_chan_start(j->ch, 500, 0);
            ds4s_gen_emit(g, ds4s_error_body(DS4S_FAM_OPENAI, 500, g->error_msg ? g->error_msg : "generation failed"));
            return;
        }
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        json_object_set_new(msg, "content", ds4s_jstr(g->pr.content, g->pr.content_len));
        if (g->pr.reasoning && g->pr.reasoning_len)
            json_object_set_new(msg, "reasoning_content", ds4s_jstr(g->pr.reasoning, g->pr.reasoning_len));
        if (g->pr.n_calls) json_object_set_new(msg, "tool_calls", calls_json(g));
        json_t *choice = json_pack("{s:i,s:o}", "index", 0, "message", msg);
        if (j->params.logprobs) json_object_set_new(choice, "logprobs", json_pack("{s:O}", "content", g->logprobs));
        json_object_set_new(choice, "finish_reason", json_string(ds4s_finish_openai(g->finish)));
        json_t *body = json_object();
        json_object_set_new(body, "id", json_string(g->id));
        json_object_set_new(body, "object", json_string("chat.completion"));
        json_object_set_new(body, "created", json_integer(g->created));
        json_object_set_new(body, "model", ds4s_jcstr(j->req.model));
        json_object_set_new(body, "choices", json_pack("[o]", choice));
        json_object_set_new(body, "usage", usage(g));
        ds4s_gen_body(g, body);
        return;
    }
    if (g->finish == DS4S_FIN_ERROR) {
        ds4s_gen_emit(g, ds4s_error_sse(DS4S_FAM_OPENAI, g->error_msg ? g->error_msg : "generation failed"));
        return;
    }
    if (g->streamed_tools && !g->pr.n_calls) {
        /* Tool deltas were shown but the final parse rejected the block:
         * say so instead of a silent stop (§18.19). */
        ds4s_gen_emit(g, ds4s_error_sse(DS4S_FAM_OPENAI, "invalid tool call returned by the model"));
        return;
    }
    /* Calls the live projection did not show go out in one chunk (§9.3). */
    if (g->pr.n_calls && !g->streamed_tools) {
        json_t *a = json_array();
        for (size_t i = 0; i < g->pr.n_calls; i++) {
            const ds4_parsed_call *c = &g->pr.calls[i];
            json_array_append_new(a, tool_header(g, (int)i, ds4s_gen_call_id(g, i), c->name, c->arguments, c->arguments_len));
        }
        ds4s_gen_emit_json(g, NULL, chunk(g, json_pack("{s:o}", "tool_calls", a), NULL));
    }
    ds4s_gen_emit_json(g, NULL, chunk(g, json_object(), ds4s_finish_openai(g->finish)));
    if (j->params.include_usage) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(g->id));
        json_object_set_new(o, "object", json_string("chat.completion.chunk"));
        json_object_set_new(o, "created", json_integer(g->created));
        json_object_set_new(o, "model", ds4s_jcstr(j->req.model));
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage(g));
        ds4s_gen_emit_json(g, NULL, o);
    }
    ds4s_gen_emit(g, ds4s_sse_raw(NULL, "[DONE]"));
}

/* SSE comment: the OpenAI SDK skips it, but it keeps proxies and sockets alive. */
static void keepalive(ds4s_gen *g) { ds4s_gen_emit(g, ds4s_sse_comment("prefill")); }

const ds4s_api_ops ds4s_ops_chat = {begin, event, end, keepalive};
