/* errors.c - builds the per-family error envelopes of spec/server.md §8.
 * Kept apart from the handlers so every status/type pairing is decided in one
 * table and unit tested. */
#include "server/errors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ds4s_error_type(ds4s_family fam, int status) {
    if (fam == DS4S_FAM_ANTHROPIC) {
        switch (status) {
        case 401: return "authentication_error";
        case 403: return "permission_error";
        case 404: return "not_found_error";
        case 413: return "request_too_large";
        case 429: return "rate_limit_error";
        case 503: case 529: return "overloaded_error";
        default: return status >= 500 ? "api_error" : "invalid_request_error";
        }
    }
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "invalid_request_error";
    case 503: return "unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static char *dump_nl(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *r = realloc(s, n + 2);
    if (!r) { free(s); return NULL; }
    r[n] = '\n';
    r[n + 1] = 0;
    return r;
}

static json_t *inner(ds4s_family fam, int status, const char *message) {
    json_t *e = json_object();
    if (fam == DS4S_FAM_ANTHROPIC) {
        json_object_set_new(e, "type", json_string(ds4s_error_type(fam, status)));
        json_object_set_new(e, "message", json_string(message ? message : ""));
    } else {
        json_object_set_new(e, "message", json_string(message ? message : ""));
        json_object_set_new(e, "type", json_string(ds4s_error_type(fam, status)));
        if (status == 503) json_object_set_new(e, "code", json_integer(503));
    }
    return e;
}

static json_t *wrap(ds4s_family fam, json_t *e) {
    json_t *o = json_object();
    if (fam == DS4S_FAM_ANTHROPIC) json_object_set_new(o, "type", json_string("error"));
    json_object_set_new(o, "error", e);
    return o;
}

char *ds4s_error_body(ds4s_family fam, int status, const char *message) {
    return dump_nl(wrap(fam, inner(fam, status, message)));
}

char *ds4s_error_ctx_body(ds4s_family fam, const char *param, int n_prompt, int n_ctx) {
    char msg[160];
    snprintf(msg, sizeof msg, "Prompt has %d tokens, but the configured context size is %d tokens", n_prompt, n_ctx);
    json_t *e = inner(fam, 400, msg);
    if (fam == DS4S_FAM_OPENAI) {
        json_object_set_new(e, "param", json_string(param));
        json_object_set_new(e, "code", json_string("context_length_exceeded"));
    }
    json_object_set_new(e, "n_prompt_tokens", json_integer(n_prompt));
    json_object_set_new(e, "n_ctx", json_integer(n_ctx));
    return dump_nl(wrap(fam, e));
}

char *ds4s_error_sse(ds4s_family fam, const char *message) {
    json_t *o = wrap(fam, inner(fam, 500, message));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return NULL;
    size_t n = strlen(s) + 32;
    char *r = malloc(n);
    if (r) snprintf(r, n, "event: error\ndata: %s\n\n", s);
    free(s);
    return r;
}
