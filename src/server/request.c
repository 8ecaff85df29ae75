/* request.c - see request.h. Field names per family follow spec/server.md
 * §7.2-§7.5; unknown fields are ignored (clients send many). */
#include "server/request.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int bad_type(ds4_err *err, const char *field, const char *want) {
    return ds4_errf(err, "invalid JSON request: field '%s' must be %s", field, want);
}

/* Present and not null. */
static const json_t *get(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return v && !json_is_null(v) ? v : NULL;
}

static int get_bool(const json_t *o, const char *k, int *out, ds4_err *err) {
    const json_t *v = get(o, k);
    if (!v) return 0;
    if (!json_is_boolean(v)) return bad_type(err, k, "a boolean");
    *out = json_is_true(v);
    return 0;
}

static int get_num(const json_t *o, const char *k, double *out, ds4_err *err) {
    const json_t *v = get(o, k);
    if (!v) return 0;
    if (!json_is_number(v)) return bad_type(err, k, "a number");
    double d = json_number_value(v);
    if (!isfinite(d)) return bad_type(err, k, "a finite number");
    *out = d;
    return 0;
}

/* Integers: negative clamps to 0, above INT_MAX to INT_MAX (§3.1). */
static int get_int(const json_t *o, const char *k, int *out, ds4_err *err) {
    const json_t *v = get(o, k);
    if (!v) return 0;
    if (!json_is_number(v)) return bad_type(err, k, "an integer");
    double d = json_number_value(v);
    if (json_is_real(v) && d != floor(d)) return bad_type(err, k, "an integer");
    *out = d < 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
    return 0;
}

static int add_stop(ds4s_params *p, const char *s, size_t n, ds4_err *err) {
    if (n == 0) return 0;
    if (p->n_stop >= DS4S_MAX_STOP)
        return ds4_errf(err, "invalid JSON request: at most %d stop sequences are supported", DS4S_MAX_STOP);
    if (n > 512) return ds4_errf(err, "invalid JSON request: stop sequence longer than 512 bytes");
    char *c = malloc(n + 1);
    if (!c) return ds4_errf(err, "out of memory");
    memcpy(c, s, n);
    c[n] = 0;
    p->stop[p->n_stop++] = c;
    return 0;
}

static int get_stop(const json_t *o, const char *k, ds4s_params *p, ds4_err *err) {
    const json_t *v = get(o, k);
    if (!v) return 0;
    if (json_is_string(v)) return add_stop(p, json_string_value(v), json_string_length(v), err);
    if (!json_is_array(v)) return bad_type(err, k, "a string or an array of strings");
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) continue;   /* non-string members skipped (§3.6) */
        if (add_stop(p, json_string_value(e), json_string_length(e), err)) return -1;
    }
    return 0;
}

/* response_format / text.format: plain text is fine; JSON modes would need
 * constrained decoding, which this server does not have. */
static int check_format(const json_t *fmt, const char *field, ds4_err *err) {
    if (!fmt) return 0;
    if (!json_is_object(fmt)) return bad_type(err, field, "an object");
    const json_t *t = get(fmt, "type");
    if (!t) return 0;
    if (!json_is_string(t)) return bad_type(err, field, "an object with a string 'type'");
    const char *s = json_string_value(t);
    if (!strcmp(s, "text")) return 0;
    return ds4_errf(err, "%s type '%s' is not supported: this server has no constrained decoding "
                         "(only type 'text' is accepted)", field, s);
}

/* ds4's own extension object, valid on every API: per-request steering
 * scales (spec/model.md §6) overriding --dir-steering-ffn/-attn. */
static int parse_ds4_ext(const json_t *body, ds4s_params *p, ds4_err *err) {
    const json_t *ext = get(body, "ds4");
    if (!ext) return 0;
    if (!json_is_object(ext)) return bad_type(err, "ds4", "an object");
    const json_t *st = get(ext, "steering");
    if (!st) return 0;
    if (!json_is_object(st)) return bad_type(err, "ds4.steering", "an object");
    p->steer_set = 1;
    p->steer_ffn = p->steer_attn = NAN;
    const char *keys[2] = {"ffn", "attn"};
    double *dst[2] = {&p->steer_ffn, &p->steer_attn};
    for (int i = 0; i < 2; i++) {
        const json_t *v = get(st, keys[i]);
        if (!v) continue;
        const double d = json_is_number(v) ? json_number_value(v) : NAN;
        if (!isfinite(d) || d < -100 || d > 100)
            return ds4_errf(err, "invalid ds4.steering.%s: expected a number between -100 and 100", keys[i]);
        *dst[i] = d;
    }
    return 0;
}

int ds4s_params_parse(ds4_api api, const json_t *body, ds4s_params *p, ds4_err *err) {
    memset(p, 0, sizeof *p);
    p->max_tokens = -1;
    p->temperature = 1.0;
    p->top_p = 1.0;
    p->min_p = 0.05;
    if (!json_is_object(body)) return ds4_errf(err, "invalid JSON request: the body must be a JSON object");
    if (get_bool(body, "stream", &p->stream, err)) return -1;
    const json_t *so = get(body, "stream_options");
    if (so) {
        if (!json_is_object(so)) return bad_type(err, "stream_options", "an object");
        if (get_bool(so, "include_usage", &p->include_usage, err)) return -1;
    }
    if (get_num(body, "temperature", &p->temperature, err)) return -1;
    if (get_num(body, "top_p", &p->top_p, err)) return -1;
    if (parse_ds4_ext(body, p, err)) return -1;

    switch (api) {
    case DS4_API_OPENAI_CHAT:
    case DS4_API_OPENAI_COMPLETIONS: {
        if (get_int(body, "max_tokens", &p->max_tokens, err)) return -1;
        if (api == DS4_API_OPENAI_CHAT && get_int(body, "max_completion_tokens", &p->max_tokens, err)) return -1;
        if (get_int(body, "top_k", &p->top_k, err)) return -1;
        if (get_num(body, "min_p", &p->min_p, err)) return -1;
        const json_t *seed = get(body, "seed");
        if (seed) {
            if (!json_is_integer(seed)) return bad_type(err, "seed", "an integer");
            json_int_t s = json_integer_value(seed);
            p->seed = s <= 0 ? 0 : (uint64_t)s;
        }
        if (get_stop(body, "stop", p, err)) return -1;
        int n = 1;
        if (get_int(body, "n", &n, err)) return -1;
        if (n > 1) return ds4_errf(err, "n=%d is not supported: this server generates one choice per request", n);
        if (api == DS4_API_OPENAI_CHAT) {
            if (get_bool(body, "logprobs", &p->logprobs, err)) return -1;
            if (get_int(body, "top_logprobs", &p->top_logprobs, err)) return -1;
            if (p->top_logprobs > DS4S_MAX_TOP_LOGPROBS)
                return ds4_errf(err, "invalid JSON request: top_logprobs %d is above the maximum %d", p->top_logprobs, DS4S_MAX_TOP_LOGPROBS);
            if (p->top_logprobs > 0 && !p->logprobs)
                return ds4_errf(err, "invalid JSON request: top_logprobs requires logprobs=true");
            if (check_format(get(body, "response_format"), "response_format", err)) return -1;
        } else {
            /* Completions: logprobs is an integer count of alternatives (0..5). */
            const json_t *lp = get(body, "logprobs");
            if (lp) {
                if (!json_is_integer(lp)) return bad_type(err, "logprobs", "an integer 0..5");
                json_int_t k = json_integer_value(lp);
                if (k < 0 || k > 5) return ds4_errf(err, "invalid JSON request: logprobs %lld is outside 0..5", (long long)k);
                p->logprobs = 1;
                p->top_logprobs = (int)k;
            }
            if (check_format(get(body, "response_format"), "response_format", err)) return -1;
        }
        break;
    }
    case DS4_API_OPENAI_RESPONSES: {
        if (get_int(body, "max_tokens", &p->max_tokens, err)) return -1;
        if (get_int(body, "max_output_tokens", &p->max_tokens, err)) return -1;
        const json_t *r = get(body, "reasoning");
        if (r) {
            if (!json_is_object(r)) return bad_type(err, "reasoning", "an object");
            const json_t *s = get(r, "summary");
            if (s && json_is_string(s)) {
                const char *v = json_string_value(s);
                p->summary = !strcmp(v, "auto") || !strcmp(v, "concise") || !strcmp(v, "detailed");
            }
        }
        const json_t *prev = get(body, "previous_response_id");
        if (prev) {
            if (!json_is_string(prev)) return bad_type(err, "previous_response_id", "a string");
            p->previous_response_id = strdup(json_string_value(prev));
        }
        const json_t *text = get(body, "text");
        if (text) {
            if (!json_is_object(text)) return bad_type(err, "text", "an object");
            if (check_format(get(text, "format"), "text.format", err)) return -1;
        }
        int tl = 0;
        if (get_int(body, "top_logprobs", &tl, err)) return -1;
        if (tl > 0) return ds4_errf(err, "top_logprobs is not supported on /v1/responses; use /v1/chat/completions");
        break;
    }
    case DS4_API_ANTHROPIC_MESSAGES:
        if (get_int(body, "max_tokens", &p->max_tokens, err)) return -1;
        if (get_int(body, "top_k", &p->top_k, err)) return -1;
        if (get_stop(body, "stop_sequences", p, err)) return -1;
        break;
    default:
        return ds4_errf(err, "internal: unknown API %d", (int)api);
    }
    return 0;
}

void ds4s_params_free(ds4s_params *p) {
    for (size_t i = 0; i < p->n_stop; i++) free(p->stop[i]);
    free(p->previous_response_id);
    memset(p, 0, sizeof *p);
}

void ds4s_params_sampling(const ds4s_params *p, int thinking, ds4s_sampling *out) {
    out->seed = p->seed;
    if (thinking) {
        out->temperature = 1.0f;
        out->top_p = 1.0f;
        out->top_k = 0;
        out->min_p = 0.05f;
        return;
    }
    out->temperature = (float)p->temperature;
    out->top_p = p->top_p > 0 && p->top_p <= 1 ? (float)p->top_p : 1.0f;
    out->min_p = p->min_p < 0 ? 0.0f : (float)p->min_p;
    out->top_k = p->top_k > 1024 ? 1024 : p->top_k;
}

int ds4s_body_check(ds4_api api, const json_t *root, ds4_err *err) {
    const char *req = api == DS4_API_OPENAI_COMPLETIONS ? "prompt" : api == DS4_API_OPENAI_RESPONSES ? "input" : "messages";
    const json_t *v = get(root, req);
    if (!v) return ds4_errf(err, "missing %s", req);
    if ((api == DS4_API_ANTHROPIC_MESSAGES || api == DS4_API_OPENAI_CHAT) && json_is_array(v) && json_array_size(v) == 0)
        return ds4_errf(err, "invalid JSON request: messages must not be empty");
    return 0;
}

int ds4s_check_roles(const ds4_request *req, ds4_api api, ds4_err *err) {
    static const char *chat[] = {"system", "developer", "user", "assistant", "tool", "function"};
    static const char *anth[] = {"system", "user", "assistant"};
    if (api == DS4_API_OPENAI_COMPLETIONS || api == DS4_API_OPENAI_RESPONSES) return 0;
    const char **ok = api == DS4_API_ANTHROPIC_MESSAGES ? anth : chat;
    size_t nok = api == DS4_API_ANTHROPIC_MESSAGES ? 3 : 6;
    for (size_t i = 0; i < req->n_msgs; i++) {
        const char *r = req->msgs[i].role ? req->msgs[i].role : "";
        int good = 0;
        for (size_t k = 0; k < nok; k++) good |= !strcmp(r, ok[k]);
        if (!good)
            return ds4_errf(err, "invalid JSON request: message role \"%.64s\" is not one of %s", r,
                            api == DS4_API_ANTHROPIC_MESSAGES ? "user, assistant" : "system, developer, user, assistant, tool, function");
    }
    return 0;
}

int ds4s_check_tool_results(const ds4_request *req, int (*known)(void *ctx, const char *id), void *ctx, ds4_err *err) {
    if (req->api != DS4_API_OPENAI_RESPONSES && req->api != DS4_API_ANTHROPIC_MESSAGES) return 0;
    for (size_t i = 0; i < req->n_msgs; i++) {
        const ds4_message *m = &req->msgs[i];
        for (size_t r = 0; r < m->n_result_ids; r++) {
            const char *id = m->result_ids[r];
            if (!id || !*id) continue;
            int found = known && known(ctx, id);
            for (size_t k = 0; k < i && !found; k++)
                for (size_t c = 0; c < req->msgs[k].n_calls && !found; c++)
                    found = req->msgs[k].calls[c].id && !strcmp(req->msgs[k].calls[c].id, id);
            if (found) continue;
            if (req->api == DS4_API_OPENAI_RESPONSES)
                return ds4_errf(err, "Responses continuation state is not available for call_id %.200s; retry by replaying the full input history", id);
            return ds4_errf(err, "Anthropic continuation state is not available for tool_use_id %.200s; retry by replaying the full messages history", id);
        }
    }
    return 0;
}

void ds4s_apply_think_default(ds4_request *req, const json_t *root, int think_default, int ctx) {
    if (think_default == 1 || req->api == DS4_API_COUNT) return;
    if (json_object_get(root, "thinking") || get(root, "think") || get(root, "reasoning_effort")) return;
    const json_t *oc = get(root, "output_config"), *rs = get(root, "reasoning");
    if ((oc && get(oc, "effort")) || (rs && get(rs, "effort"))) return;
    const json_t *m = get(root, "model");
    if (m && json_is_string(m) &&
        (!strcmp(json_string_value(m), "deepseek-chat") || !strcmp(json_string_value(m), "deepseek-reasoner")))
        return;
    ds4_think_mode want = think_default == 0 ? DS4_THINK_NONE : DS4_THINK_MAX;
    req->think_requested = want;
    req->think = want == DS4_THINK_MAX && ctx < (int)DS4_THINK_MAX_MIN_CTX ? DS4_THINK_HIGH : want;
}

int ds4s_params_budget(const ds4s_params *p, int def, int ctx, int n_prompt) {
    int want = p->max_tokens >= 0 ? p->max_tokens : def;
    int room = ctx - n_prompt;
    if (room < 0) room = 0;
    return want < room ? want : room;
}
