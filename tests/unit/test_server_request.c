/* test_server_request.c - the model-free server pieces: request
 * normalisation (§3.4-§3.6), error envelopes (§8), SSE framing (§9.1),
 * routing (§7), API-key check (§1.3) and JSON limits. */
/* harness.h's main() trips -Wclobbered at -O2 under some gcc versions. */
#pragma GCC diagnostic ignored "-Wclobbered"
#include "harness.h"

#include <jansson.h>

#include "server/auth.h"
#include "server/errors.h"
#include "server/jsonu.h"
#include "server/request.h"
#include "server/router.h"
#include "server/sse.h"

static int params(ds4_api api, const char *body, ds4s_params *p, ds4_err *e) {
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    if (!j) T_FAIL("bad test JSON: %s", body);
    int rc = ds4s_params_parse(api, j, p, e);
    json_decref(j);
    return rc;
}

TEST(params_defaults) {
    (void)t_data_path;
    ds4s_params p;
    ds4_err e;
    CHECK_EQ_INT(params(DS4_API_OPENAI_CHAT, "{\"messages\":[]}", &p, &e), 0);
    CHECK_EQ_INT(p.stream, 0);
    CHECK_EQ_INT(p.max_tokens, -1);
    CHECK_NEAR(p.temperature, 1.0, 0);
    CHECK_NEAR(p.top_p, 1.0, 0);
    CHECK_NEAR(p.min_p, 0.05, 0);
    CHECK_EQ_INT(p.top_k, 0);
    CHECK_EQ_INT((int)p.n_stop, 0);
    ds4s_params_free(&p);
}

TEST(params_chat_fields) {
    ds4s_params p;
    ds4_err e;
    CHECK_EQ_INT(params(DS4_API_OPENAI_CHAT,
                        "{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":5,"
                        "\"max_completion_tokens\":7,\"temperature\":0,\"top_p\":0.5,\"top_k\":2000,\"min_p\":-1,"
                        "\"seed\":9007199254740993,\"stop\":[\"a\",\"\",3,\"bc\"],\"logprobs\":true,\"top_logprobs\":3,"
                        "\"response_format\":{\"type\":\"text\"}}", &p, &e), 0);
    CHECK_EQ_INT(p.stream, 1);
    CHECK_EQ_INT(p.include_usage, 1);
    CHECK_EQ_INT(p.max_tokens, 7);
    CHECK_EQ_INT((int)p.n_stop, 2);
    CHECK_EQ_STR(p.stop[0], "a");
    CHECK_EQ_STR(p.stop[1], "bc");
    CHECK(p.seed == 9007199254740993ull);   /* 64-bit, not via double (§18.16) */
    CHECK_EQ_INT(p.logprobs, 1);
    CHECK_EQ_INT(p.top_logprobs, 3);
    ds4s_sampling s;
    ds4s_params_sampling(&p, 0, &s);
    CHECK_NEAR(s.temperature, 0, 0);
    CHECK_NEAR(s.top_p, 0.5, 1e-7);
    CHECK_EQ_INT(s.top_k, 1024);
    CHECK_NEAR(s.min_p, 0, 0);
    ds4s_params_sampling(&p, 1, &s);     /* thinking ignores client knobs */
    CHECK_NEAR(s.temperature, 1, 0);
    CHECK_NEAR(s.top_p, 1, 0);
    CHECK_EQ_INT(s.top_k, 0);
    CHECK_NEAR(s.min_p, 0.05, 1e-7);
    ds4s_params_free(&p);
}

TEST(params_stop_string_and_negative_clamp) {
    ds4s_params p;
    ds4_err e;
    CHECK_EQ_INT(params(DS4_API_OPENAI_COMPLETIONS, "{\"stop\":\"5\",\"max_tokens\":-4}", &p, &e), 0);
    CHECK_EQ_INT((int)p.n_stop, 1);
    CHECK_EQ_STR(p.stop[0], "5");
    CHECK_EQ_INT(p.max_tokens, 0);
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_ANTHROPIC_MESSAGES, "{\"stop_sequences\":[\"END\"],\"max_tokens\":100,\"top_k\":4}", &p, &e), 0);
    CHECK_EQ_STR(p.stop[0], "END");
    CHECK_EQ_INT(p.max_tokens, 100);
    CHECK_EQ_INT(p.top_k, 4);
    ds4s_params_free(&p);
}

TEST(params_wrong_types_refused) {
    ds4s_params p;
    ds4_err e;
    const char *bad[] = {"{\"stream\":1}", "{\"temperature\":\"hot\"}", "{\"max_tokens\":1.5}", "{\"stop\":5}",
                         "{\"stream_options\":[]}", "{\"seed\":1.5}", "{\"logprobs\":\"yes\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(params(DS4_API_OPENAI_CHAT, bad[i], &p, &e) == -1, "accepted %s", bad[i]);
        CHECKF(strstr(e.msg, "invalid JSON request") != NULL, "message for %s: %s", bad[i], e.msg);
        ds4s_params_free(&p);
    }
    CHECK_EQ_INT(params(DS4_API_OPENAI_CHAT, "[]", &p, &e), -1);
    ds4s_params_free(&p);
}

TEST(params_unsupported_features_refused) {
    ds4s_params p;
    ds4_err e;
    CHECK_EQ_INT(params(DS4_API_OPENAI_CHAT, "{\"response_format\":{\"type\":\"json_object\"}}", &p, &e), -1);
    CHECK(strstr(e.msg, "json_object") && strstr(e.msg, "constrained decoding"));
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_OPENAI_CHAT, "{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}}}", &p, &e), -1);
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_OPENAI_RESPONSES, "{\"text\":{\"format\":{\"type\":\"json_schema\"}}}", &p, &e), -1);
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_OPENAI_RESPONSES, "{\"text\":{\"verbosity\":\"low\"}}", &p, &e), 0);
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_OPENAI_CHAT, "{\"n\":2}", &p, &e), -1);
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_OPENAI_CHAT, "{\"top_logprobs\":2}", &p, &e), -1);
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_OPENAI_CHAT, "{\"logprobs\":true,\"top_logprobs\":21}", &p, &e), -1);
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_OPENAI_COMPLETIONS, "{\"logprobs\":6}", &p, &e), -1);
    ds4s_params_free(&p);
}

TEST(params_responses) {
    ds4s_params p;
    ds4_err e;
    CHECK_EQ_INT(params(DS4_API_OPENAI_RESPONSES,
                        "{\"max_output_tokens\":12,\"reasoning\":{\"effort\":\"high\",\"summary\":\"auto\"},"
                        "\"previous_response_id\":\"resp_1\"}", &p, &e), 0);
    CHECK_EQ_INT(p.max_tokens, 12);
    CHECK_EQ_INT(p.summary, 1);
    CHECK_EQ_STR(p.previous_response_id, "resp_1");
    ds4s_params_free(&p);
    CHECK_EQ_INT(params(DS4_API_OPENAI_RESPONSES, "{\"reasoning\":{\"summary\":\"none\"},\"previous_response_id\":null}", &p, &e), 0);
    CHECK_EQ_INT(p.summary, 0);
    CHECK(p.previous_response_id == NULL);
    ds4s_params_free(&p);
}

TEST(budget_clamps_to_free_context) {
    ds4s_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = -1;
    CHECK_EQ_INT(ds4s_params_budget(&p, 393216, 1000, 900), 100);
    p.max_tokens = 10;
    CHECK_EQ_INT(ds4s_params_budget(&p, 393216, 1000, 900), 10);
    p.max_tokens = 0;
    CHECK_EQ_INT(ds4s_params_budget(&p, 393216, 1000, 900), 0);
    p.max_tokens = 50;
    CHECK_EQ_INT(ds4s_params_budget(&p, 393216, 1000, 1000), 0);
}

TEST(error_envelopes) {
    char *s = ds4s_error_body(DS4S_FAM_OPENAI, 404, "unknown endpoint");
    CHECK_EQ_STR(s, "{\"error\":{\"message\":\"unknown endpoint\",\"type\":\"invalid_request_error\"}}\n");
    free(s);
    s = ds4s_error_body(DS4S_FAM_ANTHROPIC, 400, "missing messages");
    CHECK_EQ_STR(s, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"missing messages\"}}\n");
    free(s);
    s = ds4s_error_body(DS4S_FAM_ANTHROPIC, 401, "x");
    CHECK(strstr(s, "\"authentication_error\"") != NULL);
    free(s);
    s = ds4s_error_body(DS4S_FAM_ANTHROPIC, 503, "x");
    CHECK(strstr(s, "\"overloaded_error\"") != NULL);
    free(s);
    s = ds4s_error_body(DS4S_FAM_OPENAI, 500, "boom");
    CHECK(strstr(s, "\"server_error\"") != NULL);
    free(s);
    s = ds4s_error_ctx_body(DS4S_FAM_OPENAI, "messages", 40123, 32768);
    CHECK_EQ_STR(s, "{\"error\":{\"message\":\"Prompt has 40123 tokens, but the configured context size is 32768 tokens\","
                    "\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":\"context_length_exceeded\","
                    "\"n_prompt_tokens\":40123,\"n_ctx\":32768}}\n");
    free(s);
    s = ds4s_error_ctx_body(DS4S_FAM_ANTHROPIC, "messages", 5, 4);
    CHECK_EQ_STR(s, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"Prompt has 5 tokens, "
                    "but the configured context size is 4 tokens\",\"n_prompt_tokens\":5,\"n_ctx\":4}}\n");
    free(s);
    s = ds4s_error_sse(DS4S_FAM_ANTHROPIC, "prefill failed");
    CHECK_EQ_STR(s, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"prefill failed\"}}\n\n");
    free(s);
    s = ds4s_error_sse(DS4S_FAM_OPENAI, "prefill failed");
    CHECK_EQ_STR(s, "event: error\ndata: {\"error\":{\"message\":\"prefill failed\",\"type\":\"server_error\"}}\n\n");
    free(s);
}

TEST(sse_frames) {
    json_t *o = json_pack("{s:s,s:s}", "type", "ping", "t", "a\nb\"\x01 é");
    char *s = ds4s_sse_event("ping", o);
    CHECK_EQ_STR(s, "event: ping\ndata: {\"type\":\"ping\",\"t\":\"a\\nb\\\"\\u0001 é\"}\n\n");
    free(s);
    s = ds4s_sse_event(NULL, o);
    CHECK_EQ_STR(s, "data: {\"type\":\"ping\",\"t\":\"a\\nb\\\"\\u0001 é\"}\n\n");
    free(s);
    json_decref(o);
    s = ds4s_sse_raw(NULL, "[DONE]");
    CHECK_EQ_STR(s, "data: [DONE]\n\n");
    free(s);
    s = ds4s_sse_comment("prefill");
    CHECK_EQ_STR(s, ": prefill\n\n");
    free(s);
}

TEST(json_strings_never_fail) {
    json_t *j = ds4s_jstr("ok\xff\xc3", 4);
    CHECK(j != NULL);
    CHECK_EQ_STR(json_string_value(j), "ok\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(j);
    j = ds4s_jstr("a\0b", 3);
    CHECK_EQ_INT((int)json_string_length(j), 5);
    json_decref(j);
    CHECK_EQ_INT((int)ds4s_utf8_valid_prefix("ab\xe2\x82", 4), 2);
    CHECK_EQ_INT((int)ds4s_utf8_valid_prefix("\xed\xa0\x80", 3), 0);   /* surrogate */
    CHECK_EQ_INT((int)ds4s_utf8_valid_prefix("\xc0\xaf", 2), 0);       /* overlong */
}

TEST(json_depth_limit) {
    CHECK_EQ_INT(ds4s_json_depth("{\"a\":[1,{\"b\":\"[[[[\"}]}", 22, 256), 3);
    char deep[600];
    for (int i = 0; i < 300; i++) deep[i] = '[';
    for (int i = 0; i < 300; i++) deep[300 + i] = ']';
    CHECK_EQ_INT(ds4s_json_depth(deep, 600, 256), 257);
    CHECK_EQ_INT(ds4s_json_depth("\"\\\"[\"", 5, 256), 0);
}

TEST(routes) {
    const char *id;
    CHECK_EQ_INT(ds4s_route_match("POST", "/v1/chat/completions", NULL), R_CHAT);
    CHECK_EQ_INT(ds4s_route_match("POST", "/v1/messages?beta=true", NULL), R_MESSAGES);
    CHECK_EQ_INT(ds4s_route_match("POST", "/v1/messages/count_tokens?beta=true", NULL), R_COUNT_TOKENS);
    CHECK_EQ_INT(ds4s_route_match("GET", "/v1/models?client_version=1.0", NULL), R_MODELS);
    CHECK_EQ_INT(ds4s_route_match("GET", "/v1/models/deepseek-v4-flash", &id), R_MODEL_ONE);
    CHECK_EQ_STR(id, "deepseek-v4-flash");
    CHECK_EQ_INT(ds4s_route_match("GET", "/v1/models/a/b", NULL), R_NOT_FOUND);
    CHECK_EQ_INT(ds4s_route_match("GET", "/v1/chat/completions", NULL), R_METHOD_NOT_ALLOWED);
    CHECK_EQ_INT(ds4s_route_match("POST", "/v1/chat/completions/", NULL), R_NOT_FOUND);
    CHECK_EQ_INT(ds4s_route_match("POST", "/V1/chat/completions", NULL), R_NOT_FOUND);
    CHECK_EQ_INT(ds4s_route_match("OPTIONS", "/anything", NULL), R_OPTIONS);
    CHECK_EQ_INT(ds4s_route_match("HEAD", "/health", NULL), R_METHOD_NOT_ALLOWED);
    CHECK_EQ_INT(ds4s_route_match("GET", "/health", NULL), R_HEALTH);
    CHECK_EQ_INT(ds4s_route_family("/v1/messages/count_tokens"), DS4S_FAM_ANTHROPIC);
    CHECK_EQ_INT(ds4s_route_family("/v1/responses"), DS4S_FAM_OPENAI);
    CHECK(ds4s_route_public(R_HEALTH) && !ds4s_route_public(R_CHAT) && !ds4s_route_public(R_METRICS));
}

TEST(api_key_check) {
    CHECK(ds4s_auth_ok(NULL, NULL, NULL));
    CHECK(!ds4s_auth_ok("sekret", NULL, NULL));
    CHECK(ds4s_auth_ok("sekret", "Bearer sekret", NULL));
    CHECK(ds4s_auth_ok("sekret", "bearer sekret", NULL));
    CHECK(ds4s_auth_ok("sekret", NULL, "sekret"));
    CHECK(!ds4s_auth_ok("sekret", "Bearer sekret2", NULL));
    CHECK(!ds4s_auth_ok("sekret", "Bearer sekre", "nope"));
    CHECK(!ds4s_auth_ok("sekret", "sekret", NULL));
}

static json_t *J(const char *s) {
    json_t *j = json_loads(s, 0, NULL);
    if (!j) T_FAIL("bad test JSON: %s", s);
    return j;
}

TEST(body_checks) {
    ds4_err e;
    json_t *j = J("{\"model\":\"x\"}");
    CHECK_EQ_INT(ds4s_body_check(DS4_API_OPENAI_CHAT, j, &e), -1);
    CHECK_EQ_STR(e.msg, "missing messages");
    CHECK_EQ_INT(ds4s_body_check(DS4_API_OPENAI_RESPONSES, j, &e), -1);
    CHECK_EQ_STR(e.msg, "missing input");
    CHECK_EQ_INT(ds4s_body_check(DS4_API_OPENAI_COMPLETIONS, j, &e), -1);
    CHECK_EQ_STR(e.msg, "missing prompt");
    json_decref(j);
    j = J("{\"messages\":null}");
    CHECK_EQ_INT(ds4s_body_check(DS4_API_ANTHROPIC_MESSAGES, j, &e), -1);
    json_decref(j);
    j = J("{\"messages\":[]}");
    CHECK_EQ_INT(ds4s_body_check(DS4_API_ANTHROPIC_MESSAGES, j, &e), -1);
    CHECK(strstr(e.msg, "must not be empty") != NULL);
    json_decref(j);
    j = J("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"input\":[],\"prompt\":\"\"}");
    CHECK_EQ_INT(ds4s_body_check(DS4_API_OPENAI_CHAT, j, &e), 0);
    CHECK_EQ_INT(ds4s_body_check(DS4_API_OPENAI_RESPONSES, j, &e), 0);
    CHECK_EQ_INT(ds4s_body_check(DS4_API_OPENAI_COMPLETIONS, j, &e), 0);
    json_decref(j);
}

TEST(roles_checked) {
    ds4_err e;
    ds4_message m[2];
    memset(m, 0, sizeof m);
    m[0].role = (char *)"developer";
    m[1].role = (char *)"tool";
    ds4_request r;
    memset(&r, 0, sizeof r);
    r.msgs = m;
    r.n_msgs = 2;
    CHECK_EQ_INT(ds4s_check_roles(&r, DS4_API_OPENAI_CHAT, &e), 0);
    CHECK_EQ_INT(ds4s_check_roles(&r, DS4_API_ANTHROPIC_MESSAGES, &e), -1);
    CHECK(strstr(e.msg, "\"developer\"") != NULL);
    m[0].role = (char *)"latest_reminder";
    CHECK_EQ_INT(ds4s_check_roles(&r, DS4_API_OPENAI_CHAT, &e), -1);
    CHECK_EQ_INT(ds4s_check_roles(&r, DS4_API_OPENAI_RESPONSES, &e), 0);   /* roles parsed by the text layer there */
}

TEST(think_default_flag) {
    ds4_request r;
    memset(&r, 0, sizeof r);
    r.api = DS4_API_OPENAI_CHAT;
    r.think = r.think_requested = DS4_THINK_HIGH;
    json_t *plain = J("{\"messages\":[]}");
    ds4s_apply_think_default(&r, plain, 0, 4096);           /* --think none */
    CHECK_EQ_INT(r.think, DS4_THINK_NONE);
    r.think = DS4_THINK_HIGH;
    ds4s_apply_think_default(&r, plain, 2, 4096);           /* --think max, small ctx: gated */
    CHECK_EQ_INT(r.think, DS4_THINK_HIGH);
    CHECK_EQ_INT(r.think_requested, DS4_THINK_MAX);
    ds4s_apply_think_default(&r, plain, 2, 393216);
    CHECK_EQ_INT(r.think, DS4_THINK_MAX);
    json_decref(plain);
    const char *explicit_[] = {"{\"thinking\":null}", "{\"think\":true}", "{\"reasoning_effort\":\"high\"}",
                               "{\"output_config\":{\"effort\":\"low\"}}", "{\"reasoning\":{\"effort\":\"medium\"}}",
                               "{\"model\":\"deepseek-reasoner\"}"};
    for (size_t i = 0; i < sizeof explicit_ / sizeof explicit_[0]; i++) {
        json_t *j = J(explicit_[i]);
        r.think = DS4_THINK_HIGH;
        ds4s_apply_think_default(&r, j, 0, 4096);
        CHECKF(r.think == DS4_THINK_HIGH, "--think none overrode an explicit %s", explicit_[i]);
        json_decref(j);
    }
}

static int known_stub(void *ctx, const char *id) { return ctx && !strcmp(id, (const char *)ctx); }

TEST(orphan_tool_results) {
    ds4_err e;
    ds4_tool_call call = {.id = (char *)"call_1", .name = (char *)"f", .arguments = (char *)"{}"};
    char *rid[] = {(char *)"call_1"};
    char *orphan[] = {(char *)"call_9"};
    ds4_message m[2];
    memset(m, 0, sizeof m);
    m[0].role = (char *)"assistant";
    m[0].calls = &call;
    m[0].n_calls = 1;
    m[1].role = (char *)"tool";
    m[1].result_ids = rid;
    m[1].n_result_ids = 1;
    ds4_request r;
    memset(&r, 0, sizeof r);
    r.msgs = m;
    r.n_msgs = 2;
    r.api = DS4_API_OPENAI_RESPONSES;
    CHECK_EQ_INT(ds4s_check_tool_results(&r, known_stub, NULL, &e), 0);
    m[1].result_ids = orphan;
    CHECK_EQ_INT(ds4s_check_tool_results(&r, known_stub, NULL, &e), -1);
    CHECK_EQ_STR(e.msg, "Responses continuation state is not available for call_id call_9; retry by replaying the full input history");
    CHECK_EQ_INT(ds4s_check_tool_results(&r, known_stub, (void *)"call_9", &e), 0);   /* a call this server made */
    r.api = DS4_API_ANTHROPIC_MESSAGES;
    CHECK_EQ_INT(ds4s_check_tool_results(&r, known_stub, NULL, &e), -1);
    CHECK(strstr(e.msg, "Anthropic continuation state is not available for tool_use_id call_9") != NULL);
    r.api = DS4_API_OPENAI_CHAT;
    CHECK_EQ_INT(ds4s_check_tool_results(&r, known_stub, NULL, &e), 0);
    /* A result before its call does not count as answered. */
    r.api = DS4_API_ANTHROPIC_MESSAGES;
    m[1].result_ids = rid;
    ds4_message swapped[2] = {m[1], m[0]};
    r.msgs = swapped;
    CHECK_EQ_INT(ds4s_check_tool_results(&r, known_stub, NULL, &e), -1);
}
