/* api_misc.c - the cheap endpoints (spec/server.md §7.6, §7.7, §16 REC):
 * /health (llama.cpp shapes), /props (read-only settings), /tokenize,
 * /detokenize and /v1/messages/count_tokens. They never touch the worker or
 * the live session, so they answer even while a long generation runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/jsonu.h"
#include "server/kvcache.h"
#include "server/textexec.h"

void ds4s_reply_error(ds4s_reply *r, ds4s_family fam, int status, const char *msg) {
    r->status = status;
    r->body = ds4s_error_body(fam, status, msg);
    r->ctype = NULL;
}

static void reply_json(ds4s_reply *r, int status, json_t *o) {
    r->status = status;
    r->body = ds4s_jdump(o, 1);
    json_decref(o);
}

void ds4s_api_health(const ds4s_server *s, ds4s_reply *r) {
    if (!s->ready) {
        reply_json(r, 503, json_pack("{s:{s:i,s:s,s:s}}", "error", "code", 503, "message", "Loading model", "type",
                                     "unavailable_error"));
        return;
    }
    reply_json(r, 200, json_pack("{s:s,s:i,s:i,s:i}", "status", "ok", "queue_depth",
                                 __atomic_load_n(&s->metrics.queue_depth, __ATOMIC_RELAXED), "busy",
                                 __atomic_load_n(&s->metrics.busy, __ATOMIC_RELAXED), "session_tokens",
                                 __atomic_load_n(&s->metrics.session_tokens, __ATOMIC_RELAXED)));
}

void ds4s_api_props(const ds4s_server *s, ds4s_reply *r) {
    const ds4s_config *c = &s->cfg;
    static const char *think[] = {"none", "high", "max"};
    json_t *o = json_object();
    json_object_set_new(o, "model_path", ds4s_jcstr(c->model));
    json_object_set_new(o, "model_id", json_string(DS4S_MODEL_ID));
    json_object_set_new(o, "model_name", ds4s_jcstr(s->model ? ds4_model_name(s->model) : ""));
    json_object_set_new(o, "backend", ds4s_jcstr(s->model ? ds4_model_backend(s->model) : ""));
    json_object_set_new(o, "n_ctx", json_integer(c->ctx));
    json_object_set_new(o, "default_max_tokens", json_integer(c->tokens));
    json_object_set_new(o, "n_vocab", json_integer(s->n_vocab));
    json_object_set_new(o, "total_slots", json_integer(1));
    json_object_set_new(o, "think_default", json_string(think[c->think_default]));
    json_object_set_new(o, "think_max_min_ctx", json_integer(DS4_THINK_MAX_MIN_CTX));
    json_object_set_new(o, "default_generation_settings",
                        json_pack("{s:f,s:f,s:i,s:f}", "temperature", 1.0, "top_p", 1.0, "top_k", 0, "min_p", 0.05));
    json_object_set_new(o, "steering", json_pack("{s:o,s:f,s:f}", "file", c->steer_file ? json_string(c->steer_file) : json_null(),
                                                 "ffn", c->steer_ffn, "attn", c->steer_attn));
    json_object_set_new(o, "kv_disk_dir", c->kv_disk_dir ? json_string(c->kv_disk_dir) : json_null());
    json_object_set_new(o, "kv_disk_cache", json_string(ds4s_kvcache_enabled() ? "on" : c->kv_disk_dir ? "unavailable (see log)" : "off"));
    json_object_set_new(o, "exact_dsml_tool_replay", json_boolean(!c->disable_exact_replay));
    json_object_set_new(o, "api_key_required", json_boolean(c->api_key != NULL));
    json_object_set_new(o, "test_script", json_boolean(c->test_script != NULL));
    json_object_set_new(o, "session_tokens", json_integer(__atomic_load_n(&s->metrics.session_tokens, __ATOMIC_RELAXED)));
    json_object_set_new(o, "queue_depth", json_integer(__atomic_load_n(&s->metrics.queue_depth, __ATOMIC_RELAXED)));
    json_object_set_new(o, "build", json_pack("{s:s,s:s}", "date", __DATE__, "compiler", __VERSION__));
    reply_json(r, 200, o);
}

static json_t *load_obj(const char *body, size_t len, ds4s_reply *r, ds4s_family fam) {
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        ds4s_reply_error(r, fam, 400, "invalid JSON request");
        return NULL;
    }
    return j;
}

void ds4s_api_tokenize(ds4s_server *s, const char *body, size_t len, ds4s_reply *r) {
    json_t *j = load_obj(body, len, r, DS4S_FAM_OPENAI);
    if (!j) return;
    json_t *content = json_object_get(j, "content");
    json_t *add_special = json_object_get(j, "add_special"), *parse_special = json_object_get(j, "parse_special");
    json_t *with_pieces = json_object_get(j, "with_pieces");
    if (!json_is_string(content) || (add_special && !json_is_boolean(add_special)) ||
        (parse_special && !json_is_boolean(parse_special)) || (with_pieces && !json_is_boolean(with_pieces))) {
        json_decref(j);
        ds4s_reply_error(r, DS4S_FAM_OPENAI, 400, "invalid JSON request: expected {\"content\": string, \"add_special\"?: bool, "
                                                  "\"parse_special\"?: bool, \"with_pieces\"?: bool}");
        return;
    }
    ds4_tokens t = {0};
    if (json_is_true(add_special)) ds4_tokens_push(&t, ds4_vocab_special(s->vocab, DS4_SP_BOS));
    ds4_err e;
    int rc = !parse_special || json_is_true(parse_special)
                 ? ds4s_encode_rendered(s->vocab, json_string_value(content), json_string_length(content), &t, &e)
                 : ds4s_encode_text(s->vocab, json_string_value(content), json_string_length(content), &t, &e);
    if (rc) {
        ds4_tokens_free(&t);
        json_decref(j);
        ds4s_reply_error(r, DS4S_FAM_OPENAI, 400, e.msg);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < t.n; i++) {
        if (json_is_true(with_pieces)) {
            ds4_sbuf b = {0};
            ds4_token_bytes(s->vocab, t.ids[i], &b);
            json_array_append_new(arr, json_pack("{s:i,s:o}", "id", t.ids[i], "piece", ds4s_jstr(b.p ? b.p : "", b.len)));
            ds4_sbuf_free(&b);
        } else {
            json_array_append_new(arr, json_integer(t.ids[i]));
        }
    }
    ds4_tokens_free(&t);
    json_decref(j);
    reply_json(r, 200, json_pack("{s:o}", "tokens", arr));
}

void ds4s_api_detokenize(ds4s_server *s, const char *body, size_t len, ds4s_reply *r) {
    json_t *j = load_obj(body, len, r, DS4S_FAM_OPENAI);
    if (!j) return;
    json_t *toks = json_object_get(j, "tokens");
    if (!json_is_array(toks)) {
        json_decref(j);
        ds4s_reply_error(r, DS4S_FAM_OPENAI, 400, "invalid JSON request: expected {\"tokens\": [integer, ...]}");
        return;
    }
    size_t n = json_array_size(toks), i;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    json_t *v;
    json_array_foreach(toks, i, v) {
        json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
        if (x < 0 || x >= s->n_vocab) {
            char msg[160];
            snprintf(msg, sizeof msg, "invalid JSON request: tokens[%zu] is not a token id in 0..%d", i, s->n_vocab - 1);
            free(ids);
            json_decref(j);
            ds4s_reply_error(r, DS4S_FAM_OPENAI, 400, msg);
            return;
        }
        ids[i] = (int32_t)x;
    }
    ds4_sbuf out = {0};
    ds4_decode(s->vocab, ids, n, &out);
    free(ids);
    json_decref(j);
    reply_json(r, 200, json_pack("{s:o}", "content", ds4s_jstr(out.p ? out.p : "", out.len)));
    ds4_sbuf_free(&out);
}

void ds4s_api_count_tokens(ds4s_server *s, const char *body, size_t len, ds4s_reply *r) {
    ds4_request req;
    ds4_err e = {{0}};
    if (ds4_request_parse(DS4_API_ANTHROPIC_MESSAGES, body, len, (uint32_t)s->cfg.ctx, &req, &e) != 0) {
        ds4s_reply_error(r, DS4S_FAM_ANTHROPIC, 400, e.msg);
        return;
    }
    ds4_sbuf prompt = {0};
    ds4_render_opts ro = {s->toolmem ? ds4s_toolmem_lookup : NULL, s->toolmem};
    if (s->toolmem) ds4s_toolmem_lock(s->toolmem);
    int rc = ds4_render(&req, &ro, &prompt, &e);
    if (s->toolmem) ds4s_toolmem_unlock(s->toolmem);
    ds4_tokens t = {0};
    if (rc == 0) rc = ds4s_encode_rendered(s->vocab, prompt.p ? prompt.p : "", prompt.len, &t, &e);
    ds4_request_free(&req);
    ds4_sbuf_free(&prompt);
    if (rc) {
        ds4_tokens_free(&t);
        ds4s_reply_error(r, DS4S_FAM_ANTHROPIC, 400, e.msg);
        return;
    }
    reply_json(r, 200, json_pack("{s:i}", "input_tokens", (int)t.n));
    ds4_tokens_free(&t);
}
