/* api_openai_responses.c - POST /v1/responses output (spec/server.md §7.4,
 * §9.5, Appendix A.3) and the previous_response_id store (§12.5 REC).
 *
 * Stream: response.created + response.in_progress right away; a reasoning
 * item only when the client opted in with reasoning.summary; a message item
 * when visible text appears; function calls after generation (complete
 * items); exactly one terminal event. Every event carries an `event:` line
 * and a sequence_number (§18.9). The stored conversation for
 * previous_response_id keeps the reasoning even when it was hidden, so the
 * next turn re-renders exactly what the live KV holds. */
#include <stdlib.h>
#include <string.h>

#include "server/errors.h"
#include "server/gen.h"
#include "server/jsonu.h"
#include "server/sse.h"

typedef struct st {
    int seq;
    int next_index;
    int rs_open, rs_index;       /* reasoning item */
    char rs_id[48];
    ds4_sbuf rs_text;
    int msg_open, msg_index;     /* message item */
    char msg_id[48];
    ds4_sbuf msg_text;
    json_t *output;              /* completed items, in order */
} st;

static json_t *usage(const ds4s_gen *g) {
    return json_pack("{s:i,s:{s:i,s:i},s:i,s:{s:i},s:i}", "input_tokens", g->n_prompt, "input_tokens_details",
                     "cached_tokens", g->n_cached, "cache_write_tokens", g->n_prompt - g->n_cached, "output_tokens",
                     g->n_gen, "output_tokens_details", "reasoning_tokens", g->n_reasoning, "total_tokens", g->n_prompt + g->n_gen);
}

static void ev(ds4s_gen *g, const char *type, json_t *data) {
    st *s = g->st;
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "sequence_number", json_integer(s->seq++));
    json_object_update(o, data);
    json_decref(data);
    ds4s_gen_emit_json(g, type, o);
}

static json_t *response_obj(ds4s_gen *g, const char *status, json_t *output, int with_usage) {
    json_t *r = json_object();
    json_object_set_new(r, "id", json_string(g->id));
    json_object_set_new(r, "object", json_string("response"));
    json_object_set_new(r, "created_at", json_integer(g->created));
    json_object_set_new(r, "status", json_string(status));
    json_object_set_new(r, "model", ds4s_jcstr(g->job->req.model));
    if (!strcmp(status, "incomplete"))
        json_object_set_new(r, "incomplete_details", json_pack("{s:s}", "reason", "max_tokens"));
    if (!strcmp(status, "failed"))
        json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code", "server_error", "message",
                                                  g->error_msg ? g->error_msg : "generation failed"));
    json_object_set_new(r, "output", output ? output : json_array());
    if (with_usage) json_object_set_new(r, "usage", usage(g));
    return r;
}

static json_t *reasoning_item(const char *id, const char *status, const char *text, size_t len) {
    return json_pack("{s:s,s:s,s:s,s:[{s:s,s:o}]}", "id", id, "type", "reasoning", "status", status, "summary", "type",
                     "summary_text", "text", ds4s_jstr(text, len));
}

static json_t *message_item(const char *id, const char *status, const char *text, size_t len) {
    return json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:o,s:[]}]}", "id", id, "type", "message", "status", status, "role",
                     "assistant", "content", "type", "output_text", "text", ds4s_jstr(text, len), "annotations");
}

static const ds4_tool_decl *find_decl(const ds4_request *r, const char *name) {
    for (size_t i = 0; i < r->n_decls; i++)
        if (r->decls[i].prompt_name && !strcmp(r->decls[i].prompt_name, name)) return &r->decls[i];
    return NULL;
}

static int is_custom(const ds4s_gen *g, const char *name) {
    size_t i;
    json_t *n;
    json_array_foreach(g->job->custom_tools, i, n)
        if (!strcmp(json_string_value(n), name)) return 1;
    return 0;
}

/* A custom tool's freeform input: the model passes it as parameters; a single
 * string parameter is the input itself, anything else goes as JSON text. */
static json_t *custom_input(const ds4_parsed_call *c) {
    json_t *o = json_loadb(c->arguments, c->arguments_len, 0, NULL);
    json_t *r = NULL;
    if (json_is_object(o) && json_object_size(o) == 1) {
        json_t *v = json_object_iter_value(json_object_iter(o));
        if (json_is_string(v)) r = json_incref(v);
    }
    json_decref(o);
    return r ? r : ds4s_jstr(c->arguments, c->arguments_len);
}

/* The output item of call i; args_empty: the in-progress shape. */
static json_t *call_item(ds4s_gen *g, size_t i, const char *fc_id, const char *status, int args_empty) {
    const ds4_parsed_call *c = &g->pr.calls[i];
    const ds4_tool_decl *d = find_decl(&g->job->req, c->name);
    json_t *it = json_object();
    json_object_set_new(it, "id", json_string(fc_id));
    if (is_custom(g, c->name)) {
        json_object_set_new(it, "type", json_string("custom_tool_call"));
        json_object_set_new(it, "status", json_string(status));
        json_object_set_new(it, "call_id", json_string(ds4s_gen_call_id(g, i)));
        json_object_set_new(it, "name", ds4s_jcstr(c->name));
        json_object_set_new(it, "input", args_empty ? json_string("") : custom_input(c));
        return it;
    }
    if (d && d->hosted_tool_search) {
        json_object_set_new(it, "type", json_string("tool_search_call"));
        json_object_set_new(it, "status", json_string(status));
        json_object_set_new(it, "call_id", json_string(ds4s_gen_call_id(g, i)));
        json_object_set_new(it, "execution", json_string("client"));
        json_t *a = args_empty ? NULL : json_loadb(c->arguments, c->arguments_len, 0, NULL);
        json_object_set_new(it, "arguments", a && json_is_object(a) ? a : json_object());
        if (a && !json_is_object(a)) json_decref(a);
        return it;
    }
    json_object_set_new(it, "type", json_string("function_call"));
    json_object_set_new(it, "status", json_string(status));
    json_object_set_new(it, "name", ds4s_jcstr(d ? d->name : c->name));
    if (d && d->name_space) json_object_set_new(it, "namespace", ds4s_jcstr(d->name_space));
    json_object_set_new(it, "call_id", json_string(ds4s_gen_call_id(g, i)));
    json_object_set_new(it, "arguments", args_empty ? json_string("") : ds4s_jstr(c->arguments, c->arguments_len));
    return it;
}

static void begin(ds4s_gen *g) {
    st *s = calloc(1, sizeof *s);
    s->output = json_array();
    g->st = s;
    ev(g, "response.created", json_pack("{s:o}", "response", response_obj(g, "in_progress", NULL, 0)));
    ev(g, "response.in_progress", json_pack("{s:o}", "response", response_obj(g, "in_progress", NULL, 0)));
}

static void close_reasoning(ds4s_gen *g, const char *status) {
    st *s = g->st;
    if (!s->rs_open) return;
    s->rs_open = 0;
    json_t *txt = ds4s_jstr(s->rs_text.p ? s->rs_text.p : "", s->rs_text.len);
    ev(g, "response.reasoning_summary_text.done", json_pack("{s:s,s:i,s:i,s:O}", "item_id", s->rs_id, "output_index",
                                                            s->rs_index, "summary_index", 0, "text", txt));
    ev(g, "response.reasoning_summary_part.done", json_pack("{s:s,s:i,s:i,s:{s:s,s:O}}", "item_id", s->rs_id, "output_index",
                                                            s->rs_index, "summary_index", 0, "part", "type", "summary_text", "text", txt));
    json_decref(txt);
    json_t *item = reasoning_item(s->rs_id, status, s->rs_text.p ? s->rs_text.p : "", s->rs_text.len);
    ev(g, "response.output_item.done", json_pack("{s:i,s:O}", "output_index", s->rs_index, "item", item));
    json_array_append_new(s->output, item);
}

static void event(ds4s_gen *g, const ds4_stream_event *e) {
    st *s = g->st;
    if (e->kind == DS4_EV_REASONING) {
        if (!g->job->params.summary) return;
        if (!s->rs_open && !s->msg_open) {
            s->rs_open = 1;
            s->rs_index = s->next_index++;
            ds4s_random_id(s->rs_id, sizeof s->rs_id, "rs_", 12);
            ev(g, "response.output_item.added", json_pack("{s:i,s:{s:s,s:s,s:s,s:[]}}", "output_index", s->rs_index, "item",
                                                          "id", s->rs_id, "type", "reasoning", "status", "in_progress", "summary"));
            ev(g, "response.reasoning_summary_part.added", json_pack("{s:s,s:i,s:i,s:{s:s,s:s}}", "item_id", s->rs_id,
                                                                     "output_index", s->rs_index, "summary_index", 0,
                                                                     "part", "type", "summary_text", "text", ""));
        }
        if (!s->rs_open) return;
        ds4_sbuf_add(&s->rs_text, e->data, e->len);
        ev(g, "response.reasoning_summary_text.delta", json_pack("{s:s,s:i,s:i,s:o}", "item_id", s->rs_id, "output_index",
                                                                 s->rs_index, "summary_index", 0, "delta", ds4s_jstr(e->data, e->len)));
        return;
    }
    if (e->kind != DS4_EV_TEXT) return;
    close_reasoning(g, "completed");
    if (!s->msg_open) {
        s->msg_open = 1;
        s->msg_index = s->next_index++;
        ds4s_random_id(s->msg_id, sizeof s->msg_id, "msg_", 12);
        ev(g, "response.output_item.added", json_pack("{s:i,s:{s:s,s:s,s:s,s:s,s:[]}}", "output_index", s->msg_index, "item",
                                                      "id", s->msg_id, "type", "message", "status", "in_progress", "role",
                                                      "assistant", "content"));
        ev(g, "response.content_part.added", json_pack("{s:s,s:i,s:i,s:{s:s,s:s,s:[]}}", "item_id", s->msg_id, "output_index",
                                                       s->msg_index, "content_index", 0, "part", "type", "output_text",
                                                       "text", "", "annotations"));
    }
    ds4_sbuf_add(&s->msg_text, e->data, e->len);
    ev(g, "response.output_text.delta", json_pack("{s:s,s:i,s:i,s:o}", "item_id", s->msg_id, "output_index", s->msg_index,
                                                  "content_index", 0, "delta", ds4s_jstr(e->data, e->len)));
}

/* Conversation for previous_response_id: input items + this turn's output,
 * replayable (status completed; reasoning kept even if it was hidden). */
static void store(ds4s_gen *g, json_t *output) {
    ds4s_job *j = g->job;
    if (!g->srv->resp || g->finish == DS4S_FIN_ERROR) return;
    json_t *items = j->resp_input ? json_deep_copy(j->resp_input) : json_array();
    if (g->pr.reasoning_len && g->think_closed && !g->job->params.summary) {
        char id[48];
        ds4s_random_id(id, sizeof id, "rs_", 12);
        json_array_append_new(items, reasoning_item(id, "completed", g->pr.reasoning, g->pr.reasoning_len));
    }
    size_t i;
    json_t *it;
    json_array_foreach(output, i, it) {
        json_t *c = json_deep_copy(it);
        json_object_set_new(c, "status", json_string("completed"));
        if (!strcmp(json_string_value(json_object_get(c, "type")), "reasoning") && !g->think_closed) { json_decref(c); continue; }
        json_array_append_new(items, c);
    }
    ds4s_respstore_put(g->srv->resp, g->id, items);
}

static const char *status_of(const ds4s_gen *g) {
    return g->finish == DS4S_FIN_LENGTH ? "incomplete" : g->finish == DS4S_FIN_ERROR ? "failed" : "completed";
}

static void end(ds4s_gen *g) {
    const char *status = status_of(g);
    const char *item_status = strcmp(status, "completed") ? "incomplete" : "completed";
    if (!g->stream) {
        json_t *out = json_array();
        if (g->job->params.summary && g->pr.reasoning_len) {
            char id[48];
            ds4s_random_id(id, sizeof id, "rs_", 12);
            json_array_append_new(out, reasoning_item(id, g->think_closed ? "completed" : "incomplete", g->pr.reasoning,
                                                      g->pr.reasoning_len));
        }
        if (g->pr.content_len) {
            char id[48];
            ds4s_random_id(id, sizeof id, "msg_", 12);
            json_array_append_new(out, message_item(id, item_status, g->pr.content, g->pr.content_len));
        }
        for (size_t i = 0; i < g->pr.n_calls; i++) {
            char id[48];
            ds4s_random_id(id, sizeof id, is_custom(g, g->pr.calls[i].name) ? "ctc_" : "fc_", 12);
            json_array_append_new(out, call_item(g, i, id, item_status, 0));
        }
        store(g, out);
        ds4s_gen_body(g, response_obj(g, status, out, 1));
        return;
    }
    st *s = g->st;
    close_reasoning(g, g->think_closed ? "completed" : "incomplete");
    /* Malformed DSML: the stream stopped at the marker; send the rest of the
     * final text so the deltas add up to the message (§9.5). */
    if (g->pr.content_len > s->msg_text.len && (!s->msg_text.len || !memcmp(g->pr.content, s->msg_text.p, s->msg_text.len)) &&
        !g->pr.n_calls) {
        ds4_stream_event e = {DS4_EV_TEXT, 0, g->pr.content + s->msg_text.len, g->pr.content_len - s->msg_text.len};
        event(g, &e);
    }
    if (s->msg_open) {
        json_t *txt = ds4s_jstr(s->msg_text.p ? s->msg_text.p : "", s->msg_text.len);
        ev(g, "response.output_text.done", json_pack("{s:s,s:i,s:i,s:O}", "item_id", s->msg_id, "output_index", s->msg_index,
                                                     "content_index", 0, "text", txt));
        ev(g, "response.content_part.done", json_pack("{s:s,s:i,s:i,s:{s:s,s:O,s:[]}}", "item_id", s->msg_id, "output_index",
                                                      s->msg_index, "content_index", 0, "part", "type", "output_text", "text",
                                                      txt, "annotations"));
        json_decref(txt);
        json_t *item = message_item(s->msg_id, item_status, s->msg_text.p ? s->msg_text.p : "", s->msg_text.len);
        ev(g, "response.output_item.done", json_pack("{s:i,s:O}", "output_index", s->msg_index, "item", item));
        json_array_append_new(s->output, item);
    }
    for (size_t i = 0; i < g->pr.n_calls; i++) {
        char id[48];
        ds4s_random_id(id, sizeof id, is_custom(g, g->pr.calls[i].name) ? "ctc_" : "fc_", 12);
        int idx = s->next_index++;
        json_t *added = call_item(g, i, id, "in_progress", 1);
        const char *type = json_string_value(json_object_get(added, "type"));
        int hosted = !strcmp(type, "tool_search_call"), custom = !strcmp(type, "custom_tool_call");
        ev(g, "response.output_item.added", json_pack("{s:i,s:o}", "output_index", idx, "item", added));
        if (custom) {
            json_t *in = custom_input(&g->pr.calls[i]);
            ev(g, "response.custom_tool_call_input.delta", json_pack("{s:s,s:i,s:O}", "item_id", id, "output_index", idx, "delta", in));
            ev(g, "response.custom_tool_call_input.done", json_pack("{s:s,s:i,s:o}", "item_id", id, "output_index", idx, "input", in));
        } else if (!hosted) {
            const ds4_parsed_call *c = &g->pr.calls[i];
            ev(g, "response.function_call_arguments.delta", json_pack("{s:s,s:i,s:o}", "item_id", id, "output_index", idx,
                                                                      "delta", ds4s_jstr(c->arguments, c->arguments_len)));
            json_t *done = json_pack("{s:s,s:i,s:o}", "item_id", id, "output_index", idx, "name", ds4s_jcstr(c->name));
            const ds4_tool_decl *d = find_decl(&g->job->req, c->name);
            if (d) json_object_set_new(done, "name", ds4s_jcstr(d->name));
            if (d && d->name_space) json_object_set_new(done, "namespace", ds4s_jcstr(d->name_space));
            json_object_set_new(done, "arguments", ds4s_jstr(c->arguments, c->arguments_len));
            ev(g, "response.function_call_arguments.done", done);
        }
        json_t *item = call_item(g, i, id, item_status, 0);
        ev(g, "response.output_item.done", json_pack("{s:i,s:O}", "output_index", idx, "item", item));
        json_array_append_new(s->output, item);
    }
    store(g, s->output);
    const char *term = !strcmp(status, "completed") ? "response.completed"
                       : !strcmp(status, "incomplete") ? "response.incomplete" : "response.failed";
    ev(g, term, json_pack("{s:o}", "response", response_obj(g, status, json_incref(s->output), 1)));
    json_decref(s->output);
    ds4_sbuf_free(&s->rs_text);
    ds4_sbuf_free(&s->msg_text);
    free(s);
    g->st = NULL;
}

/* Repeated response.in_progress: Codex's idle timer counts events (§9.1). */
static void keepalive(ds4s_gen *g) {
    ev(g, "response.in_progress", json_pack("{s:o}", "response", response_obj(g, "in_progress", NULL, 0)));
}

const ds4s_api_ops ds4s_ops_responses = {begin, event, end, keepalive};
