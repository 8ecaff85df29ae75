/* test_text_dsml.c - DSML parsing of generated text against every case of
 * tests/data/chat/parse_cases.jsonl (content, reasoning, calls with arguments
 * byte-for-byte, raw and canonical DSML), the replay bytes that fix the
 * single-newline quirk, and canonical rendering edge cases. */
#include "harness.h"
#include "text_testutil.h"

static void check_opt_str(const char *what, const char *name, json_t *want, const char *got, size_t gl) {
    if (json_is_null(want) || !want) {
        CHECKF(got == NULL, "%s: %s should be null, got \"%.*s\"", name, what, (int)gl, got ? got : "");
        return;
    }
    CHECKF(got != NULL, "%s: %s is null, want \"%s\"", name, what, json_string_value(want));
    CHECKF(gl == json_string_length(want) && memcmp(got, json_string_value(want), gl) == 0,
           "%s: %s = \"%.*s\", want \"%s\"", name, what, (int)gl, got, json_string_value(want));
}

TEST(all_parse_cases) {
    json_t *cases = tu_load_jsonl("chat/parse_cases.jsonl");
    CHECK(cases);
    CHECK_EQ_INT(json_array_size(cases), 25);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *gen = json_object_get(c, "generated");
        json_t *exp = json_object_get(c, "expect");
        ds4_parse_result r;
        ds4_dsml_parse(json_string_value(gen), json_string_length(gen), json_is_true(json_object_get(c, "thinking")), &r);
        bool ok = json_is_true(json_object_get(exp, "ok"));
        CHECKF(r.ok == ok, "%s: ok = %d", name, r.ok);
        if (!ok) {
            CHECKF(r.content_len == json_string_length(gen) && !memcmp(r.content, json_string_value(gen), r.content_len), "%s: failed parse must return the whole text", name);
            CHECK(r.reasoning == NULL && r.n_calls == 0 && r.block_started);
            ds4_parse_result_free(&r);
            continue;
        }
        check_opt_str("content", name, json_object_get(exp, "content"), r.content, r.content_len);
        check_opt_str("reasoning", name, json_object_get(exp, "reasoning"), r.reasoning, r.reasoning_len);
        check_opt_str("raw_dsml", name, json_object_get(exp, "raw_dsml"), r.raw_dsml, r.raw_dsml_len);
        check_opt_str("canonical_dsml", name, json_object_get(exp, "canonical_dsml"), r.canonical_dsml, r.canonical_dsml_len);
        json_t *calls = json_object_get(exp, "tool_calls");
        CHECKF(r.n_calls == json_array_size(calls), "%s: %zu calls", name, r.n_calls);
        for (size_t k = 0; k < r.n_calls; k++) {
            json_t *wc = json_array_get(calls, k);
            CHECK_EQ_STR(r.calls[k].name, json_string_value(json_object_get(wc, "name")));
            CHECK_EQ_STR(r.calls[k].arguments, json_string_value(json_object_get(wc, "arguments")));
        }
        /* replay bytes: content + replay == everything after the reasoning */
        if (r.raw_dsml) {
            CHECK(r.replay_dsml_len >= r.raw_dsml_len);
            CHECK(!memcmp(r.replay_dsml + r.replay_dsml_len - r.raw_dsml_len, r.raw_dsml, r.raw_dsml_len));
        }
        ds4_parse_result_free(&r);
    }
    json_decref(cases);
}

TEST(replay_bytes_keep_the_single_newline) {
    const char *g = "Sure.\n<\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>\n<\xef\xbd\x9c" "DSML\xef\xbd\x9cinvoke name=\"ls\">\n</\xef\xbd\x9c" "DSML\xef\xbd\x9cinvoke>\n</\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>";
    ds4_parse_result r;
    ds4_dsml_parse(g, strlen(g), false, &r);
    CHECK(r.ok);
    CHECK_EQ_STR(r.content, "Sure.");
    CHECK(r.replay_dsml[0] == '\n' && r.raw_dsml[0] == '<');
    ds4_sbuf all = {0};
    ds4_sbuf_add(&all, r.content, r.content_len);
    ds4_sbuf_add(&all, r.replay_dsml, r.replay_dsml_len);
    CHECK_EQ_STR(all.p, g);
    ds4_sbuf_free(&all);
    ds4_parse_result_free(&r);
}

TEST(canonical_render_edge_cases) {
    ds4_tool_call c[2] = {
        {NULL, (char *)"a\"<b>&", (char *)"{\"s\":\"x</\xef\xbd\x9c" "DSML\xef\xbd\x9cparameter>y 2>&1\",\"v\":[1, 2, {\"k\": \"v w\"}],\"z\":\"</\xef\xbd\x9c" "DSML\xef\xbd\x9cparameter>\"}", 0, NULL},
        {NULL, (char *)"f", (char *)"[1,2]", 5, NULL},
    };
    c[0].arguments_len = strlen(c[0].arguments);
    ds4_sbuf o = {0};
    ds4_dsml_render_calls(c, 2, &o);
#define B "\xef\xbd\x9c"
    CHECK_EQ_STR(o.p, "\n\n<" B "DSML" B "tool_calls>\n<" B "DSML" B "invoke name=\"a&quot;&lt;b&gt;&amp;\">\n"
        "<" B "DSML" B "parameter name=\"s\" string=\"true\">x&lt;/" B "DSML" B "parameter>y 2>&1</" B "DSML" B "parameter>\n"
        "<" B "DSML" B "parameter name=\"v\" string=\"false\">[1,2,{\"k\":\"v w\"}]</" B "DSML" B "parameter>\n"
        "<" B "DSML" B "parameter name=\"z\" string=\"true\">&lt;/" B "DSML" B "parameter></" B "DSML" B "parameter>\n"
        "</" B "DSML" B "invoke>\n<" B "DSML" B "invoke name=\"f\">\n"
        "<" B "DSML" B "parameter name=\"arguments\" string=\"true\">[1,2]</" B "DSML" B "parameter>\n</" B "DSML" B "invoke>\n</" B "DSML" B "tool_calls>");
    /* a parse of the canonical block gives the same arguments back */
    ds4_parse_result r;
    ds4_dsml_parse(o.p, o.len, false, &r);
    CHECK(r.ok);
    CHECK_EQ_INT(r.n_calls, 2);
    CHECK_EQ_STR(r.calls[0].name, "a\"<b>&");
    CHECK_EQ_STR(r.calls[0].arguments, "{\"s\":\"x</" B "DSML" B "parameter>y 2>&1\",\"v\":[1,2,{\"k\":\"v w\"}],\"z\":\"</" B "DSML" B "parameter>\"}");
#undef B
    ds4_parse_result_free(&r);
    ds4_sbuf_free(&o);
}

TEST(parser_survives_truncations_of_every_case) {
    json_t *cases = tu_load_jsonl("chat/parse_cases.jsonl");
    CHECK(cases);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *gen = json_object_get(c, "generated");
        size_t n = json_string_length(gen);
        for (size_t cut = 0; cut <= n; cut++) {
            char *buf = malloc(cut + 1);
            memcpy(buf, json_string_value(gen), cut); /* exact size: ASan sees overreads */
            ds4_parse_result r;
            ds4_dsml_parse(buf, cut, json_is_true(json_object_get(c, "thinking")), &r);
            CHECK(r.content != NULL);
            if (!r.ok) CHECK(r.content_len == cut);
            ds4_parse_result_free(&r);
            free(buf);
        }
    }
    json_decref(cases);
}

/* Found by fuzz_dsml: an empty JSON key came back unterminated from the span
 * reader (sbuf_take of an empty buffer) and strlen read past it. */
TEST(empty_key_and_empty_name) {
    ds4_tool_call c = {NULL, (char *)"", (char *)"{\"\":1,\"\":\"\"}", 12, NULL};
    ds4_sbuf o = {0};
    ds4_dsml_render_calls(&c, 1, &o);
    CHECK(strstr(o.p, "parameter name=\"\" string=\"false\">1<") != NULL);
    CHECK(strstr(o.p, "parameter name=\"\" string=\"true\"><") != NULL);
    ds4_sbuf_free(&o);
}

TEST(null_empty_input) {
    ds4_parse_result r;
    ds4_dsml_parse(NULL, 0, true, &r);
    CHECK(r.ok && r.content && r.content_len == 0 && !r.reasoning);
    ds4_parse_result_free(&r);
    ds4_dsml_parse(NULL, 0, false, &r);
    CHECK(r.ok && r.content_len == 0);
    ds4_parse_result_free(&r);
}
