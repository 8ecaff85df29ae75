/* submit.c - intake of a generation request on its connection thread
 * (spec/server.md §1.1, §3, §3.7): limits, sampling knobs, the text layer's
 * parse + render + tokenize, role and emptiness checks, the context check,
 * then the queue. Everything that can be refused is refused here with a 400
 * in the right envelope, before the worker spends a single token on it.
 *
 * Responses previous_response_id (§12.5 REC): the stored conversation of that
 * response is prepended to this request's input and the field removed, so the
 * text layer sees an ordinary full replay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/errors.h"
#include "server/jsonu.h"
#include "server/textexec.h"
#include "server/trace.h"

#define MAX_JSON_DEPTH 256

static ds4_api api_of(ds4s_route r) {
    switch (r) {
    case R_CHAT: return DS4_API_OPENAI_CHAT;
    case R_COMPLETIONS: return DS4_API_OPENAI_COMPLETIONS;
    case R_RESPONSES: return DS4_API_OPENAI_RESPONSES;
    default: return DS4_API_ANTHROPIC_MESSAGES;
    }
}

static const char *ctx_param(ds4_api a) {
    return a == DS4_API_OPENAI_COMPLETIONS ? "prompt" : a == DS4_API_OPENAI_RESPONSES ? "input" : "messages";
}

/* Responses input as an item array (a string is one user message). */
static json_t *input_items(const json_t *input) {
    if (json_is_string(input))
        return json_pack("[{s:s,s:s,s:O}]", "type", "message", "role", "user", "content", input);
    if (json_is_array(input)) return json_deep_copy(input);
    return json_array();
}

static int known_id(void *ctx, const char *id) { return ctx && ds4s_toolmem_has(ctx, id); }

void ds4s_api_generate(ds4s_server *s, ds4s_route route, const char *body, size_t len, ds4s_chan *ch, ds4s_reply *r) {
    ds4_api api = api_of(route);
    ds4s_family fam = api == DS4_API_ANTHROPIC_MESSAGES ? DS4S_FAM_ANTHROPIC : DS4S_FAM_OPENAI;
    memset(r, 0, sizeof *r);
    if (!s->ready) { ds4s_reply_error(r, fam, 503, "Loading model"); return; }
    if (ds4s_json_depth(body, len, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
        ds4s_reply_error(r, fam, 400, "invalid JSON request: nesting deeper than 256 levels");
        return;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root || !json_is_object(root)) {
        char msg[300];
        if (root) snprintf(msg, sizeof msg, "invalid JSON request: the body must be a JSON object");
        else snprintf(msg, sizeof msg, "invalid JSON request: %s at line %d column %d", je.text, je.line, je.column);
        json_decref(root);
        ds4s_reply_error(r, fam, 400, msg);
        return;
    }
    ds4s_job *j = calloc(1, sizeof *j);
    j->srv = s;
    j->route = route;
    j->api = api;
    ds4_err e = {{0}};
    char *owned_body = NULL;
    if (ds4s_params_parse(api, root, &j->params, &e) != 0) goto bad;
    if (j->params.steer_set && !ds4_model_has_steering(s->model)) {
        ds4_errf(&e, "ds4.steering needs steering vectors: start the server with --dir-steering-file FILE");
        goto bad;
    }

    if (ds4s_body_check(api, root, &e) != 0) goto bad;
    if (api == DS4_API_OPENAI_RESPONSES) {
        json_t *input = json_object_get(root, "input");
        if (j->params.previous_response_id) {
            json_t *prev = ds4s_respstore_get(s->resp, j->params.previous_response_id);
            if (!prev) {
                ds4_errf(&e, "Previous response with id '%.100s' not found (responses are kept in memory only, for a bounded number of turns); replay the full input instead",
                         j->params.previous_response_id);
                goto bad;
            }
            if (input && !json_is_null(input)) {
                json_t *more = input_items(input);
                json_array_extend(prev, more);
                json_decref(more);
            }
            json_object_set_new(root, "input", prev);
            json_object_del(root, "previous_response_id");
            owned_body = ds4s_jdump(root, 0);
            body = owned_body;
            len = strlen(owned_body);
        }
        input = json_object_get(root, "input");
        if (input && !json_is_null(input)) j->resp_input = input_items(input);
        /* Freeform tools come back as custom_tool_call items (§18.9). */
        json_t *tools = json_object_get(root, "tools"), *t;
        size_t ti;
        json_array_foreach(tools, ti, t) {
            json_t *ty = json_object_get(t, "type"), *nm = json_object_get(t, "name");
            if (json_is_string(ty) && !strcmp(json_string_value(ty), "custom") && json_is_string(nm)) {
                if (!j->custom_tools) j->custom_tools = json_array();
                json_array_append(j->custom_tools, nm);
            }
        }
    }

    if (ds4_request_parse(api, body, len, (uint32_t)s->cfg.ctx, &j->req, &e) != 0) goto bad;
    if (ds4s_trace_on()) {
        j->body = malloc(len + 1);
        if (j->body) { memcpy(j->body, body, len); j->body[len] = 0; j->body_len = len; }
    }
    if (ds4s_check_roles(&j->req, api, &e) != 0) goto bad;
    if (ds4s_check_tool_results(&j->req, known_id, s->toolmem, &e) != 0) goto bad;
    /* --think changes the default only; the text layer resolved explicit asks. */
    ds4s_apply_think_default(&j->req, root, s->cfg.think_default, s->cfg.ctx);
    ds4_sbuf prompt = {0};
    ds4_render_opts ro = {s->toolmem ? ds4s_toolmem_lookup : NULL, s->toolmem};
    if (s->toolmem) ds4s_toolmem_lock(s->toolmem);
    int rc = ds4_render(&j->req, &ro, &prompt, &e);
    if (s->toolmem) ds4s_toolmem_unlock(s->toolmem);
    if (rc) { ds4_sbuf_free(&prompt); goto bad; }
    j->prompt = ds4_sbuf_take(&prompt, &j->prompt_len);
    if (ds4s_encode_rendered(s->vocab, j->prompt, j->prompt_len, &j->toks, &e) != 0) goto bad;
    if ((int)j->toks.n >= s->cfg.ctx) {
        r->status = 400;
        r->body = ds4s_error_ctx_body(fam, ctx_param(api), (int)j->toks.n, s->cfg.ctx);
        goto fail;
    }
    ds4s_chan_ref(ch);
    j->ch = ch;
    if (ds4s_worker_enqueue(s, j) != 0) {
        ds4s_reply_error(r, fam, 503, s->stopping ? "server shutting down" : "server busy: generation queue is full");
        goto fail;
    }
    r->queued = 1;
    json_decref(root);
    free(owned_body);
    return;
bad:
    ds4s_reply_error(r, fam, 400, e.msg[0] ? e.msg : "invalid JSON request");
fail:
    ds4s_job_free(j);
    json_decref(root);
    free(owned_body);
}
