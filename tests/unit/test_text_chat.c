/* test_text_chat.c - request body -> rendered prompt -> ids for every case of
 * tests/data/chat/cases.jsonl (byte-exact), plus exact DSML replay, the
 * thinking-mode controls and request errors. */
#include "harness.h"
#include "text_testutil.h"

static const char *mode_name(ds4_think_mode m) { return ds4_think_mode_name(m); }

static void show_diff(const char *name, const char *got, size_t gl, const char *want, size_t wl) {
    size_t i = 0;
    while (i < gl && i < wl && got[i] == want[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    T_FAIL("%s: rendered differs at byte %zu (got %zu bytes, want %zu)\n  got:  ...%.*s\n  want: ...%.*s", name, i, gl, wl,
           (int)((gl - from) > 160 ? 160 : gl - from), got + from, (int)((wl - from) > 160 ? 160 : wl - from), want + from);
}

TEST(all_chat_cases_render_byte_exact_and_tokenize) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    json_t *cases = tu_load_jsonl("chat/cases.jsonl");
    CHECK(cases);
    CHECK_EQ_INT(json_array_size(cases), 49);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        int api = ds4_api_from_name(json_string_value(json_object_get(c, "api")));
        CHECKF(api >= 0, "%s: api", name);
        json_t *body = json_object_get(c, "body");
        json_t *want = json_object_get(c, "rendered");
        ds4_sbuf out = {0};
        ds4_think_mode mode;
        ds4_err e = {{0}};
        int rc = ds4_render_body((ds4_api)api, json_string_value(body), json_string_length(body),
                                 (uint32_t)json_integer_value(json_object_get(c, "ctx_size")), NULL, &out, &mode, &e);
        CHECKF(rc == 0, "%s: %s", name, e.msg);
        CHECKF(!strcmp(mode_name(mode), json_string_value(json_object_get(c, "think_mode"))), "%s: mode %s", name, mode_name(mode));
        if (out.len != json_string_length(want) || memcmp(out.p, json_string_value(want), out.len) != 0)
            show_diff(name, out.p, out.len, json_string_value(want), json_string_length(want));
        ds4_tokens t = {0};
        CHECK_EQ_INT(ds4_encode_rendered(v, out.p, out.len, &t, &e), 0);
        json_t *ids = json_object_get(c, "ids");
        CHECKF(t.n == json_array_size(ids), "%s: %zu ids, want %zu", name, t.n, json_array_size(ids));
        CHECK_EQ_INT(t.n, json_integer_value(json_object_get(c, "prompt_tokens")));
        for (size_t k = 0; k < t.n; k++)
            CHECKF(t.ids[k] == json_integer_value(json_array_get(ids, k)), "%s: id[%zu] = %d", name, k, t.ids[k]);
        ds4_tokens_free(&t);
        ds4_sbuf_free(&out);
    }
    json_decref(cases);
}

static const char *lookup_fixed(void *ctx, const char *id, size_t *len) {
    const char *const *tab = ctx;
    for (int i = 0; tab[i]; i += 2)
        if (!strcmp(tab[i], id)) { *len = strlen(tab[i + 1]); return tab[i + 1]; }
    return NULL;
}

TEST(exact_replay_uses_remembered_block_only_when_all_ids_agree) {
    const char *block = "\n<\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>SAMPLED</\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>";
    const char *tab[] = {"call_a", block, "call_b", block, "call_c", "OTHER", NULL};
    ds4_render_opts o = {lookup_fixed, (void *)tab};
    const char *body2 = "{\"think\":false,\"messages\":[{\"role\":\"user\",\"content\":\"go\"},{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":["
                        "{\"id\":\"call_a\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},{\"id\":\"call_b\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}]}";
    ds4_sbuf out = {0};
    CHECK_EQ_INT(ds4_render_body(DS4_API_OPENAI_CHAT, body2, strlen(body2), 32768, &o, &out, NULL, NULL), 0);
    CHECK(strstr(out.p, "x\n<\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>SAMPLED<") != NULL);
    ds4_sbuf_free(&out);
    /* ids mapping to different blocks -> canonical */
    const char *body3 = "{\"think\":false,\"messages\":[{\"role\":\"user\",\"content\":\"go\"},{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":["
                        "{\"id\":\"call_a\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},{\"id\":\"call_c\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}]}";
    CHECK_EQ_INT(ds4_render_body(DS4_API_OPENAI_CHAT, body3, strlen(body3), 32768, &o, &out, NULL, NULL), 0);
    CHECK(strstr(out.p, "SAMPLED") == NULL && strstr(out.p, "OTHER") == NULL);
    CHECK(strstr(out.p, "x\n\n<\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>\n<\xef\xbd\x9c" "DSML\xef\xbd\x9cinvoke name=\"f\">\n</") != NULL);
    ds4_sbuf_free(&out);
    /* unknown id -> canonical */
    const char *body4 = "{\"think\":false,\"messages\":[{\"role\":\"user\",\"content\":\"go\"},{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":["
                        "{\"id\":\"call_zz\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}";
    CHECK_EQ_INT(ds4_render_body(DS4_API_OPENAI_CHAT, body4, strlen(body4), 32768, &o, &out, NULL, NULL), 0);
    CHECK(strstr(out.p, "SAMPLED") == NULL);
    ds4_sbuf_free(&out);
}

static int mode_of(ds4_api api, const char *body, uint32_t ctx, ds4_think_mode *m, ds4_err *e) {
    ds4_request r;
    if (ds4_request_parse(api, body, strlen(body), ctx, &r, e) < 0) return -1;
    *m = r.think;
    ds4_request_free(&r);
    return 0;
}

TEST(thinking_controls) {
    ds4_think_mode m;
    ds4_err e = {{0}};
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char b[512];
    static const struct { int api; const char *f; uint32_t ctx; int rc; ds4_think_mode want; } t[] = {
        {DS4_API_OPENAI_CHAT, "\"thinking\":true,", 1000, 0, DS4_THINK_HIGH},
        {DS4_API_OPENAI_CHAT, "\"thinking\":null,\"model\":\"deepseek-chat\",", 1000, 0, DS4_THINK_HIGH},
        {DS4_API_OPENAI_CHAT, "\"model\":\"deepseek-chat\",", 1000, 0, DS4_THINK_NONE},
        {DS4_API_OPENAI_CHAT, "\"reasoning_effort\":\"low\",", 1000, 0, DS4_THINK_HIGH},
        {DS4_API_OPENAI_CHAT, "\"reasoning_effort\":\"bogus\",", 1000, -1, DS4_THINK_HIGH},
        {DS4_API_OPENAI_CHAT, "\"reasoning_effort\":null,", 1000, 0, DS4_THINK_HIGH},
        {DS4_API_OPENAI_CHAT, "\"reasoning_effort\":\"max\",", 393216, 0, DS4_THINK_MAX},
        {DS4_API_OPENAI_CHAT, "\"reasoning_effort\":\"max\",", 393215, 0, DS4_THINK_HIGH},
        {DS4_API_OPENAI_CHAT, "\"think\":\"yes\",", 1000, -1, DS4_THINK_HIGH},
        {DS4_API_ANTHROPIC_MESSAGES, "\"thinking\":{\"type\":\"adaptive\"},", 1000, 0, DS4_THINK_HIGH},
        {DS4_API_ANTHROPIC_MESSAGES, "\"output_config\":{\"effort\":\"none\"},", 1000, 0, DS4_THINK_NONE},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(b, sizeof b, "{%s%s}", t[i].f, msgs);
        int rc = mode_of((ds4_api)t[i].api, b, t[i].ctx, &m, &e);
        CHECKF(rc == t[i].rc, "case %zu: rc %d (%s)", i, rc, e.msg);
        if (rc == 0) CHECKF(m == t[i].want, "case %zu: mode %s", i, ds4_think_mode_name(m));
    }
    /* Responses */
    CHECK_EQ_INT(mode_of(DS4_API_OPENAI_RESPONSES, "{\"model\":\"deepseek-chat\",\"input\":\"x\"}", 1000, &m, &e), 0);
    CHECK_EQ_INT(m, DS4_THINK_NONE);
    CHECK_EQ_INT(mode_of(DS4_API_OPENAI_RESPONSES, "{\"model\":\"deepseek-chat\",\"reasoning\":{\"effort\":\"minimal\"},\"input\":\"x\"}", 1000, &m, &e), 0);
    CHECK_EQ_INT(m, DS4_THINK_HIGH);
}

TEST(request_errors_are_reported_not_crashes) {
    ds4_request r;
    ds4_err e = {{0}};
    static const struct { int api; const char *b; const char *msg; } bad[] = {
        {DS4_API_OPENAI_CHAT, "[1,2]", "not a JSON object"},
        {DS4_API_OPENAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\ud800\"}]}", "lone surrogate"},
        {DS4_API_OPENAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", "\\u0000"},
        {DS4_API_OPENAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\xff\"}]}", "UTF-8"},
        {DS4_API_OPENAI_CHAT, "{\"messages\":", "unexpected end"},
        {DS4_API_OPENAI_CHAT, "{\"messages\":5}", "messages"},
        {DS4_API_OPENAI_CHAT, "{\"model\":\"x\"}", "missing messages"},
        {DS4_API_ANTHROPIC_MESSAGES, "{\"max_tokens\":5}", "missing messages"},
        {DS4_API_OPENAI_COMPLETIONS, "{\"max_tokens\":5}", "missing prompt"},
        {DS4_API_OPENAI_RESPONSES, "{}", "missing input"},
        {DS4_API_OPENAI_RESPONSES, "{\"input\":\"x\",\"previous_response_id\":\"r\"}", "previous_response_id"},
        {DS4_API_OPENAI_RESPONSES, "{\"input\":\"x\",\"tool_choice\":\"required\"}", "tool_choice=required"},
        {DS4_API_OPENAI_RESPONSES, "{\"input\":\"x\",\"tool_choice\":{\"type\":\"function\"}}", "forced tool_choice"},
        {DS4_API_OPENAI_RESPONSES, "{\"input\":[{\"type\":\"mcp_call\"}]}", "mcp_call"},
        {DS4_API_OPENAI_RESPONSES, "{\"input\":[{\"type\":\"message\",\"status\":\"in_progress\",\"content\":\"x\"}]}", "status"},
        {DS4_API_OPENAI_RESPONSES, "{\"input\":[{\"type\":\"message\",\"content\":[{\"type\":\"input_image\"}]}]}", "input_image"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = 0;
        CHECKF(ds4_request_parse((ds4_api)bad[i].api, bad[i].b, strlen(bad[i].b), 1000, &r, &e) == -1, "case %zu accepted", i);
        CHECKF(strstr(e.msg, bad[i].msg) != NULL, "case %zu: message \"%s\" lacks \"%s\"", i, e.msg, bad[i].msg);
    }
    /* deep nesting is refused, not a stack overflow */
    char deep[4000];
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"messages\":");
    for (int k = 0; k < 1000; k++) deep[n++] = '[';
    deep[n] = 0;
    CHECK_EQ_INT(ds4_request_parse(DS4_API_OPENAI_CHAT, deep, n, 1000, &r, &e), -1);
    CHECK(strstr(e.msg, "256") != NULL);
}

TEST(responses_namespace_and_tool_search) {
    const char *b = "{\"input\":\"x\",\"tools\":[{\"type\":\"namespace\",\"name\":\"fs_\",\"tools\":[{\"type\":\"function\",\"name\":\"read\",\"description\":\"Read.\",\"parameters\":{\"type\":\"object\"}}]},{\"type\":\"tool_search\"}]}";
    ds4_request r;
    ds4_err e = {{0}};
    CHECKF(ds4_request_parse(DS4_API_OPENAI_RESPONSES, b, strlen(b), 1000, &r, &e) == 0, "%s", e.msg);
    CHECK_EQ_STR(r.tools, "{\"name\":\"fs_read\",\"description\":\"Read.\",\"parameters\":{\"type\":\"object\"}}\n"
                          "{\"name\":\"tool_search\",\"description\":\"Search available tools.\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}");
    CHECK_EQ_INT(r.n_decls, 2);
    CHECK_EQ_STR(r.decls[0].prompt_name, "fs_read");
    CHECK_EQ_STR(r.decls[0].name, "read");
    CHECK_EQ_STR(r.decls[0].name_space, "fs_");
    CHECK(r.decls[1].hosted_tool_search);
    ds4_request_free(&r);
}

TEST(responses_items_merge_calls_and_attach_reasoning) {
    const char *b = "{\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":\"q\"},"
        "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"A\"}],\"encrypted_content\":null},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":\"g\",\"namespace\":\"ns_\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"o1\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c2\",\"output\":[{\"type\":\"input_text\",\"text\":\"o2\"}]},"
        "{\"type\":\"reasoning\",\"summary\":[],\"content\":[{\"type\":\"reasoning_text\",\"text\":\"B\"}]},"
        "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"opaque\"},"
        "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"done\"}]},"
        "{\"type\":\"compaction\"},"
        "{\"type\":\"message\",\"content\":\"next\"}]}";
    ds4_sbuf out = {0};
    ds4_err e = {{0}};
    ds4_think_mode m;
    CHECKF(ds4_render_body(DS4_API_OPENAI_RESPONSES, b, strlen(b), 32768, NULL, &out, &m, &e) == 0, "%s", e.msg);
#define B "\xef\xbd\x9c"
    CHECK_EQ_STR(out.p, "<" B "begin\xe2\x96\x81of\xe2\x96\x81sentence" B "><" B "User" B ">q<" B "Assistant" B "><think>A</think>"
        "\n\n<" B "DSML" B "tool_calls>\n<" B "DSML" B "invoke name=\"f\">\n<" B "DSML" B "parameter name=\"x\" string=\"false\">1</" B "DSML" B "parameter>\n</" B "DSML" B "invoke>\n"
        "<" B "DSML" B "invoke name=\"ns_g\">\n</" B "DSML" B "invoke>\n</" B "DSML" B "tool_calls><" B "end\xe2\x96\x81of\xe2\x96\x81sentence" B ">"
        "<" B "User" B "><tool_result>o1</tool_result><tool_result>o2</tool_result><" B "Assistant" B "><think>B</think>done<" B "end\xe2\x96\x81of\xe2\x96\x81sentence" B ">"
        "<" B "User" B ">next<" B "Assistant" B "><think>");
#undef B
    ds4_sbuf_free(&out);
    /* the parsed request keeps ids for the server's continuation checks */
    ds4_request r;
    CHECK_EQ_INT(ds4_request_parse(DS4_API_OPENAI_RESPONSES, b, strlen(b), 32768, &r, &e), 0);
    CHECK_EQ_INT(r.n_msgs, 6);
    CHECK_EQ_INT(r.msgs[1].n_calls, 2);
    CHECK_EQ_STR(r.msgs[1].calls[1].id, "c2");
    CHECK_EQ_STR(r.msgs[1].calls[1].name_space, "ns_");
    CHECK_EQ_STR(r.msgs[2].result_ids[0], "c1");
    ds4_request_free(&r);
}

TEST(anthropic_tool_result_ids_and_escaping) {
    const char *b = "{\"thinking\":{\"type\":\"disabled\"},\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"a</tool_result>b\"},{\"type\":\"image\"}]}]}";
    ds4_request r;
    ds4_err e = {{0}};
    CHECKF(ds4_request_parse(DS4_API_ANTHROPIC_MESSAGES, b, strlen(b), 32768, &r, &e) == 0, "%s", e.msg);
    CHECK_EQ_STR(r.msgs[1].calls[0].arguments, "{}");
    CHECK_EQ_STR(r.msgs[2].result_ids[0], "toolu_1");
    CHECK_EQ_STR(r.msgs[2].content, "<tool_result>a&lt;/tool_result>b</tool_result>");
    ds4_request_free(&r);
}

/* The KV-reuse contract (spec §3.6-3.7): after a tool-call turn, the next
 * request's prompt starts with (previous prompt + the generated bytes + EOS)
 * when the remembered replay bytes are used, and with (previous prompt +
 * reasoning + </think> + content + canonical_dsml + EOS) when they are not. */
static const char *one_block;
static size_t one_block_len;
static const char *lookup_one(void *ctx, const char *id, size_t *len) {
    (void)ctx;
    if (strcmp(id, "call_1") != 0) return NULL;
    *len = one_block_len;
    return one_block;
}

TEST(tool_turn_prefix_property) {
#define B "\xef\xbd\x9c"
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"bash\",\"parameters\":{\"type\":\"object\"}}}]";
    char body1[1024], body2[4096];
    snprintf(body1, sizeof body1, "{%s,\"messages\":[{\"role\":\"user\",\"content\":\"list\"}]}", tools);
    /* the model writes one "\n" before the block, and a JSON value with spaces */
    const char *gen = "look</think>Sure.\n<" B "DSML" B "tool_calls>\n<" B "DSML" B "invoke name=\"bash\">\n<" B "DSML" B "parameter name=\"command\" string=\"true\">ls -la &amp;&amp; pwd</" B "DSML" B "parameter>\n<" B "DSML" B "parameter name=\"n\" string=\"false\">[1, 2]</" B "DSML" B "parameter>\n</" B "DSML" B "invoke>\n</" B "DSML" B "tool_calls>";
    ds4_sbuf p1 = {0};
    CHECK_EQ_INT(ds4_render_body(DS4_API_OPENAI_CHAT, body1, strlen(body1), 32768, NULL, &p1, NULL, NULL), 0);
    ds4_parse_result pr;
    ds4_dsml_parse(gen, strlen(gen), true, &pr);
    CHECK(pr.ok);
    CHECK_EQ_INT(pr.n_calls, 1);
    CHECK_EQ_STR(pr.calls[0].arguments, "{\"command\":\"ls -la && pwd\",\"n\":[1,2]}");
    /* the client echoes the turn back as JSON */
    ds4_sbuf args = {0};
    {
        const char *a = pr.calls[0].arguments;
        ds4_sbuf_addc(&args, '"');
        for (const char *q = a; *q; q++) { if (*q == '"' || *q == '\\') ds4_sbuf_addc(&args, '\\'); ds4_sbuf_addc(&args, *q); }
        ds4_sbuf_addc(&args, '"');
    }
    snprintf(body2, sizeof body2, "{%s,\"messages\":[{\"role\":\"user\",\"content\":\"list\"},"
             "{\"role\":\"assistant\",\"content\":\"%s\",\"reasoning_content\":\"%s\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"bash\",\"arguments\":%s}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"a b\"}]}", tools, pr.content, pr.reasoning, args.p);
    ds4_sbuf want = {0};
    ds4_sbuf_add(&want, p1.p, p1.len);
    ds4_sbuf_adds(&want, gen);
    ds4_sbuf_adds(&want, "<" B "end\xe2\x96\x81of\xe2\x96\x81sentence" B ">");
    /* with exact replay: byte-identical continuation */
    one_block = pr.replay_dsml;
    one_block_len = pr.replay_dsml_len;
    ds4_render_opts o = {lookup_one, NULL};
    ds4_sbuf p2 = {0};
    ds4_err e = {{0}};
    CHECKF(ds4_render_body(DS4_API_OPENAI_CHAT, body2, strlen(body2), 32768, &o, &p2, NULL, &e) == 0, "%s", e.msg);
    CHECKF(p2.len > want.len && !memcmp(p2.p, want.p, want.len), "replayed prompt does not extend prompt + generated bytes");
    /* without it: prompt + canonical form */
    ds4_sbuf canon = {0};
    ds4_sbuf_add(&canon, p1.p, p1.len);
    ds4_sbuf_add(&canon, pr.reasoning, pr.reasoning_len);
    ds4_sbuf_adds(&canon, "</think>");
    ds4_sbuf_add(&canon, pr.content, pr.content_len);
    ds4_sbuf_add(&canon, pr.canonical_dsml, pr.canonical_dsml_len);
    ds4_sbuf_adds(&canon, "<" B "end\xe2\x96\x81of\xe2\x96\x81sentence" B ">");
    ds4_sbuf p3 = {0};
    CHECK_EQ_INT(ds4_render_body(DS4_API_OPENAI_CHAT, body2, strlen(body2), 32768, NULL, &p3, NULL, &e), 0);
    CHECKF(p3.len > canon.len && !memcmp(p3.p, canon.p, canon.len), "canonical prompt does not extend prompt + canonical_dsml");
    CHECK(memcmp(p3.p, want.p, want.len) != 0); /* and it is not the sampled bytes */
#undef B
    ds4_sbuf_free(&p1); ds4_sbuf_free(&p2); ds4_sbuf_free(&p3); ds4_sbuf_free(&want); ds4_sbuf_free(&canon); ds4_sbuf_free(&args);
    ds4_parse_result_free(&pr);
}

TEST(responses_hosted_tool_history) {
    const char *b = "{\"reasoning\":{\"effort\":\"none\"},\"input\":[{\"role\":\"user\",\"content\":\"q\"},"
        "{\"type\":\"web_search_call\",\"id\":\"ws_1\",\"action\":{\"query\":\"x\"}},"
        "{\"type\":\"web_search_call_output\",\"id\":\"ws_1\",\"output\":\"found\"},"
        "{\"type\":\"custom_tool_call\",\"call_id\":\"c9\",\"name\":\"apply_patch\",\"input\":\"*** patch\"},"
        "{\"type\":\"custom_tool_call_output\",\"call_id\":\"c9\",\"output\":{\"ok\":true}}]}";
    ds4_request r;
    ds4_err e = {{0}};
    CHECKF(ds4_request_parse(DS4_API_OPENAI_RESPONSES, b, strlen(b), 32768, &r, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(r.n_msgs, 5);
    CHECK_EQ_STR(r.msgs[1].calls[0].name, "web_search_call");
    CHECK_EQ_STR(r.msgs[1].calls[0].arguments, "{\"query\":\"x\"}");
    CHECK_EQ_STR(r.msgs[2].content, "found");
    CHECK_EQ_STR(r.msgs[3].calls[0].arguments, "*** patch");
    CHECK_EQ_STR(r.msgs[4].content, "{\"ok\":true}");
    CHECK_EQ_INT(r.think, DS4_THINK_NONE);
    ds4_request_free(&r);
}

TEST(chat_content_other_types_render_empty) {
    const char *b = "{\"think\":false,\"messages\":[{\"role\":\"user\",\"content\":42},{\"role\":\"assistant\",\"content\":true,\"reasoning_content\":[\"r\"]},{\"content\":\"x\"}]}";
    ds4_request r;
    ds4_err e = {{0}};
    CHECKF(ds4_request_parse(DS4_API_OPENAI_CHAT, b, strlen(b), 32768, &r, &e) == 0, "%s", e.msg);
    CHECK_EQ_STR(r.msgs[0].content, "");
    CHECK_EQ_STR(r.msgs[1].content, "");
    CHECK_EQ_STR(r.msgs[1].reasoning, "r");
    CHECK_EQ_STR(r.msgs[2].role, "user");
    ds4_request_free(&r);
    /* an empty messages array is accepted */
    CHECK_EQ_INT(ds4_request_parse(DS4_API_OPENAI_CHAT, "{\"messages\":[]}", 15, 32768, &r, &e), 0);
    ds4_request_free(&r);
}

TEST(completions_prompt_forms) {
    static const struct { const char *b; const char *want; } t[] = {
        {"{\"think\":false,\"prompt\":[\"first\",\"second\"]}", "first"},
        {"{\"think\":false,\"prompt\":[[1,2],\"x\"]}", ""},
        {"{\"think\":false,\"prompt\":7}", ""},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        ds4_sbuf out = {0};
        ds4_err e = {{0}};
        CHECKF(ds4_render_body(DS4_API_OPENAI_COMPLETIONS, t[i].b, strlen(t[i].b), 32768, NULL, &out, NULL, &e) == 0, "%s", e.msg);
        char want[256];
        snprintf(want, sizeof want, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>You are a helpful assistant<\xef\xbd\x9cUser\xef\xbd\x9c>%s<\xef\xbd\x9c" "Assistant\xef\xbd\x9c></think>", t[i].want);
        CHECK_EQ_STR(out.p, want);
        ds4_sbuf_free(&out);
    }
}
