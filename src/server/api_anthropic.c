/* api_anthropic.c - POST /v1/messages output (spec/server.md §7.5, §9.4,
 * Appendix A.2): content blocks thinking -> text -> tool_use, each opened when
 * its first byte appears and closed when the next kind starts; indices are
 * consecutive in emission order. Message ids are msg_ + random hex and the
 * thinking signature is that id (opaque, stable; §18.3). Stop-string hits
 * report stop_reason "stop_sequence" with the matched string (§18.5); a failed
 * generation sends an `error` event (api_error) instead of end_turn (§18.1). */
#include <stdlib.h>
#include <string.h>

#include "server/errors.h"
#include "server/gen.h"
#include "server/jsonu.h"
#include "server/sse.h"

enum { B_NONE = 0, B_THINKING, B_TEXT, B_TOOL };

typedef struct st {
    int open;          /* kind of the open block */
    int index;         /* index of the open block */
    int next;          /* next block index */
    int any_visible;   /* a text or tool block was sent */
    int any_block;
} st;

static json_t *usage_in(const ds4s_gen *g, int with_output) {
    json_t *u = json_object();
    json_object_set_new(u, "input_tokens", json_integer(0));
    json_object_set_new(u, "output_tokens", json_integer(with_output ? g->n_gen : 0));
    json_object_set_new(u, "cache_read_input_tokens", json_integer(g->n_cached));
    json_object_set_new(u, "cache_creation_input_tokens", json_integer(g->n_prompt - g->n_cached));
    return u;
}

static const char *stop_reason(const ds4s_gen *g) {
    if (g->finish == DS4S_FIN_TOOLS) return "tool_use";
    if (g->finish == DS4S_FIN_LENGTH) return "max_tokens";
    if (g->stop_hit) return "stop_sequence";
    return "end_turn";
}

static void ev(ds4s_gen *g, const char *type, json_t *data) {
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    json_object_update(o, data);
    json_decref(data);
    ds4s_gen_emit_json(g, type, o);
}

static void close_block(ds4s_gen *g) {
    st *s = g->st;
    if (s->open == B_NONE) return;
    if (s->open == B_THINKING)
        ev(g, "content_block_delta", json_pack("{s:i,s:{s:s,s:s}}", "index", s->index, "delta", "type",
                                               "signature_delta", "signature", g->id));
    ev(g, "content_block_stop", json_pack("{s:i}", "index", s->index));
    s->open = B_NONE;
}

static void open_block(ds4s_gen *g, int kind, json_t *block) {
    st *s = g->st;
    close_block(g);
    s->index = s->next++;
    s->open = kind;
    s->any_block = 1;
    if (kind != B_THINKING) s->any_visible = 1;
    ev(g, "content_block_start", json_pack("{s:i,s:o}", "index", s->index, "content_block", block));
}

static void begin(ds4s_gen *g) {
    g->st = calloc(1, sizeof(st));
    json_t *m = json_object();
    json_object_set_new(m, "id", json_string(g->id));
    json_object_set_new(m, "type", json_string("message"));
    json_object_set_new(m, "role", json_string("assistant"));
    json_object_set_new(m, "model", ds4s_jcstr(g->job->req.model));
    json_object_set_new(m, "content", json_array());
    json_object_set_new(m, "stop_reason", json_null());
    json_object_set_new(m, "stop_sequence", json_null());
    json_object_set_new(m, "usage", usage_in(g, 0));
    ev(g, "message_start", json_pack("{s:o}", "message", m));
}

static void event(ds4s_gen *g, const ds4_stream_event *e) {
    st *s = g->st;
    switch (e->kind) {
    case DS4_EV_REASONING:
        if (s->open != B_THINKING)
            open_block(g, B_THINKING, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "", "signature", ""));
        ev(g, "content_block_delta", json_pack("{s:i,s:{s:s,s:o}}", "index", s->index, "delta", "type", "thinking_delta",
                                               "thinking", ds4s_jstr(e->data, e->len)));
        break;
    case DS4_EV_TEXT:
        if (s->open != B_TEXT) open_block(g, B_TEXT, json_pack("{s:s,s:s}", "type", "text", "text", ""));
        ev(g, "content_block_delta", json_pack("{s:i,s:{s:s,s:o}}", "index", s->index, "delta", "type", "text_delta",
                                               "text", ds4s_jstr(e->data, e->len)));
        break;
    case DS4_EV_TOOL_START: {
        const char *id = (size_t)e->tool_index < g->n_stream_ids ? g->stream_ids[e->tool_index] : "";
        open_block(g, B_TOOL, json_pack("{s:s,s:s,s:o,s:{}}", "type", "tool_use", "id", id, "name", ds4s_jcstr(e->data), "input"));
        break;
    }
    case DS4_EV_TOOL_ARGS:
        if (s->open == B_TOOL)
            ev(g, "content_block_delta", json_pack("{s:i,s:{s:s,s:o}}", "index", s->index, "delta", "type",
                                                   "input_json_delta", "partial_json", ds4s_jstr(e->data, e->len)));
        break;
    case DS4_EV_TOOL_END:
        if (s->open == B_TOOL) close_block(g);
        break;
    }
}

static json_t *input_obj(const ds4_parsed_call *c) {
    json_t *o = json_loadb(c->arguments, c->arguments_len, 0, NULL);
    if (!o || !json_is_object(o)) { json_decref(o); o = json_object(); }
    return o;
}

static void end(ds4s_gen *g) {
    ds4s_job *j = g->job;
    if (!g->stream) {
        if (g->finish == DS4S_FIN_ERROR) {
            ds4s_chan_start(j->ch, 500, 0);
            ds4s_gen_emit(g, ds4s_error_body(DS4S_FAM_ANTHROPIC, 500, g->error_msg ? g->error_msg : "generation failed"));
            return;
        }
        json_t *content = json_array();
        int visible = 0;
        if (g->pr.reasoning && g->pr.reasoning_len)
            json_array_append_new(content, json_pack("{s:s,s:o,s:s}", "type", "thinking", "thinking",
                                                     ds4s_jstr(g->pr.reasoning, g->pr.reasoning_len), "signature", g->id));
        if (g->pr.content_len) {
            json_array_append_new(content, json_pack("{s:s,s:o}", "type", "text", "text", ds4s_jstr(g->pr.content, g->pr.content_len)));
            visible = 1;
        }
        for (size_t i = 0; i < g->pr.n_calls; i++) {
            json_array_append_new(content, json_pack("{s:s,s:s,s:o,s:o}", "type", "tool_use", "id", ds4s_gen_call_id(g, i),
                                                     "name", ds4s_jcstr(g->pr.calls[i].name), "input", input_obj(&g->pr.calls[i])));
            visible = 1;
        }
        if (!visible) json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", ""));
        json_t *body = json_object();
        json_object_set_new(body, "id", json_string(g->id));
        json_object_set_new(body, "type", json_string("message"));
        json_object_set_new(body, "role", json_string("assistant"));
        json_object_set_new(body, "model", ds4s_jcstr(j->req.model));
        json_object_set_new(body, "content", content);
        json_object_set_new(body, "stop_reason", json_string(stop_reason(g)));
        json_object_set_new(body, "stop_sequence", g->stop_hit ? ds4s_jcstr(g->stop_hit) : json_null());
        json_object_set_new(body, "usage", usage_in(g, 1));
        ds4s_gen_body(g, body);
        return;
    }
    st *s = g->st;
    if (g->finish == DS4S_FIN_ERROR || (g->streamed_tools && !g->pr.n_calls)) {
        close_block(g);
        const char *msg = g->finish == DS4S_FIN_ERROR ? (g->error_msg ? g->error_msg : "generation failed")
                                                      : "invalid tool call returned by the model";
        ds4s_gen_emit(g, ds4s_error_sse(DS4S_FAM_ANTHROPIC, msg));
        free(g->st);
        g->st = NULL;
        return;
    }
    close_block(g);
    if (g->pr.n_calls && !g->streamed_tools) {
        for (size_t i = 0; i < g->pr.n_calls; i++) {
            const ds4_parsed_call *c = &g->pr.calls[i];
            open_block(g, B_TOOL, json_pack("{s:s,s:s,s:o,s:{}}", "type", "tool_use", "id", ds4s_gen_call_id(g, i), "name",
                                            ds4s_jcstr(c->name), "input"));
            ev(g, "content_block_delta", json_pack("{s:i,s:{s:s,s:o}}", "index", s->index, "delta", "type",
                                                   "input_json_delta", "partial_json", ds4s_jstr(c->arguments, c->arguments_len)));
            close_block(g);
        }
    }
    if (s->any_block && !s->any_visible) {
        open_block(g, B_TEXT, json_pack("{s:s,s:s}", "type", "text", "text", ""));
        close_block(g);
    }
    ev(g, "message_delta", json_pack("{s:{s:s,s:o},s:{s:i}}", "delta", "stop_reason", stop_reason(g), "stop_sequence",
                                     g->stop_hit ? ds4s_jcstr(g->stop_hit) : json_null(), "usage", "output_tokens", g->n_gen));
    ev(g, "message_stop", json_object());
    free(g->st);
    g->st = NULL;
}

/* `ping` is an event (Claude Code's idle watchdog counts events, not comments). */
static void keepalive(ds4s_gen *g) { ev(g, "ping", json_object()); }

const ds4s_api_ops ds4s_ops_anthropic = {begin, event, end, keepalive};
