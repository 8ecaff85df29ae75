/* test_text_stream.c - the incremental output parser: for every parse case
 * and many random split points, the streamed events concatenate to the same
 * result as feeding everything at once, and (where the reference's one-shot
 * and streaming views agree by design) to the one-shot parse; plus the
 * hold-back rules, stop strings and the tool-end stop. */
#include "harness.h"
#include "text_testutil.h"

typedef struct collected {
    ds4_sbuf reasoning, text;
    ds4_sbuf names[8], args[8];
    int n_start, n_end;
    int order_ok;
    ds4_sbuf log;     /* every event in order, to check hold-back */
} collected;

static void on_event(void *ctx, const ds4_stream_event *ev) {
    collected *c = ctx;
    switch (ev->kind) {
    case DS4_EV_REASONING: ds4_sbuf_add(&c->reasoning, ev->data, ev->len); break;
    case DS4_EV_TEXT: ds4_sbuf_add(&c->text, ev->data, ev->len); break;
    case DS4_EV_TOOL_START:
        if (ev->tool_index != c->n_start) c->order_ok = 0;
        if (ev->tool_index < 8) ds4_sbuf_add(&c->names[ev->tool_index], ev->data, ev->len);
        c->n_start++;
        break;
    case DS4_EV_TOOL_ARGS:
        if (ev->tool_index != c->n_start - 1) c->order_ok = 0;
        if (ev->tool_index < 8) ds4_sbuf_add(&c->args[ev->tool_index], ev->data, ev->len);
        break;
    case DS4_EV_TOOL_END:
        if (ev->tool_index != c->n_end) c->order_ok = 0;
        c->n_end++;
        break;
    }
    char k = "RTSAE"[ev->kind];
    ds4_sbuf_addc(&c->log, k);
}

static void coll_free(collected *c) {
    ds4_sbuf_free(&c->reasoning); ds4_sbuf_free(&c->text); ds4_sbuf_free(&c->log);
    for (int i = 0; i < 8; i++) { ds4_sbuf_free(&c->names[i]); ds4_sbuf_free(&c->args[i]); }
}

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }

/* Feeds text split at random points (n_cuts cuts; 0 = one chunk, -1 = byte by byte). */
static ds4_stream_status run(const char *text, size_t n, const ds4_stream_opts *o, int n_cuts, collected *c, ds4_stream **keep) {
    memset(c, 0, sizeof *c);
    c->order_ok = 1;
    ds4_stream *s = ds4_stream_new(o);
    size_t cuts[64];
    int nc = 0;
    if (n_cuts < 0) { for (size_t i = 1; i < n && nc < 64; i++) cuts[nc++] = i; }
    else for (int i = 0; i < n_cuts && i < 64; i++) cuts[nc++] = n ? rnd() % (n + 1) : 0;
    for (int i = 1; i < nc; i++) for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) { size_t t = cuts[j]; cuts[j] = cuts[j - 1]; cuts[j - 1] = t; }
    size_t at = 0;
    ds4_stream_status st = DS4_STREAM_CONTINUE;
    if (n_cuts < 0) {
        for (size_t i = 0; i < n && st == DS4_STREAM_CONTINUE; i++) st = ds4_stream_feed(s, text + i, 1, on_event, c);
    } else {
        for (int i = 0; i <= nc && st == DS4_STREAM_CONTINUE; i++) {
            size_t to = i < nc ? cuts[i] : n;
            if (to > at) st = ds4_stream_feed(s, text + at, to - at, on_event, c);
            if (to > at) at = to;
        }
    }
    ds4_stream_finish(s, on_event, c);
    if (keep) *keep = s; else ds4_stream_free(s);
    return st;
}

static int same(const ds4_sbuf *a, const ds4_sbuf *b) { return a->len == b->len && (!a->len || !memcmp(a->p, b->p, a->len)); }

static void check_same(const char *name, const collected *a, const collected *b) {
    CHECKF(same(&a->reasoning, &b->reasoning), "%s: reasoning differs across splits", name);
    CHECKF(same(&a->text, &b->text), "%s: text differs across splits: \"%s\" vs \"%s\"", name, a->text.p ? a->text.p : "", b->text.p ? b->text.p : "");
    CHECKF(a->n_start == b->n_start && a->n_end == b->n_end, "%s: call counts differ across splits", name);
    for (int i = 0; i < a->n_start && i < 8; i++) {
        CHECKF(same(&a->names[i], &b->names[i]), "%s: call %d name differs", name, i);
        CHECKF(same(&a->args[i], &b->args[i]), "%s: call %d args differ: %s vs %s", name, i, a->args[i].p, b->args[i].p);
    }
}

static int str_eq(const ds4_sbuf *b, json_t *s) {
    return b->len == json_string_length(s) && (!b->len || !memcmp(b->p, json_string_value(s), b->len));
}

TEST(split_property_all_parse_cases) {
    json_t *cases = tu_load_jsonl("chat/parse_cases.jsonl");
    CHECK(cases);
    size_t i;
    json_t *c;
    int rounds = tu_quick() ? 20 : 200;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *gen = json_object_get(c, "generated");
        const char *g = json_string_value(gen);
        size_t n = json_string_length(gen);
        bool thinking = json_is_true(json_object_get(c, "thinking"));
        json_t *exp = json_object_get(c, "expect");
        ds4_stream_opts o = {thinking, true, NULL, NULL, 0};
        collected ref;
        run(g, n, &o, 0, &ref, NULL);
        CHECKF(ref.order_ok, "%s: event order", name);
        for (int r = 0; r < rounds; r++) {
            collected x;
            run(g, n, &o, r == 0 ? -1 : (int)(1 + rnd() % 12), &x, NULL);
            CHECKF(x.order_ok, "%s: event order (round %d)", name, r);
            check_same(name, &ref, &x);
            coll_free(&x);
        }
        /* against the one-shot parse */
        if (json_is_true(json_object_get(exp, "ok"))) {
            json_t *er = json_object_get(exp, "reasoning"), *ec = json_object_get(exp, "content");
            if (thinking && json_is_null(er)) {
                /* [ref] unclosed reasoning: one-shot says content, the stream said reasoning */
                CHECKF(str_eq(&ref.reasoning, ec) && ref.text.len == 0, "%s: unclosed reasoning", name);
            } else if (!thinking && !json_is_null(er)) {
                /* [ref] a stray </think> in none mode splits only in the one-shot */
                CHECKF(ref.text.len == n, "%s: none-mode text", name);
            } else {
                if (!json_is_null(er)) CHECKF(str_eq(&ref.reasoning, er), "%s: reasoning \"%s\"", name, ref.reasoning.p);
                CHECKF(str_eq(&ref.text, ec), "%s: text \"%s\" want \"%s\"", name, ref.text.p ? ref.text.p : "", json_string_value(ec));
                json_t *calls = json_object_get(exp, "tool_calls");
                CHECKF((size_t)ref.n_start == json_array_size(calls) && ref.n_end == ref.n_start, "%s: %d calls", name, ref.n_start);
                for (size_t k = 0; k < json_array_size(calls); k++) {
                    json_t *wc = json_array_get(calls, k);
                    CHECKF(str_eq(&ref.names[k], json_object_get(wc, "name")), "%s: name", name);
                    const char *wa = json_string_value(json_object_get(wc, "arguments"));
                    /* [ref-quirk] invalid JSON -> "{}" is only known at the end */
                    if (strcmp(wa, "{}") == 0 && ref.args[k].len > 2) continue;
                    CHECKF(str_eq(&ref.args[k], json_object_get(wc, "arguments")), "%s: args %s want %s", name, ref.args[k].p, wa);
                }
            }
        }
        coll_free(&ref);
    }
    json_decref(cases);
}

static void collect_all(const char *g, const ds4_stream_opts *o, collected *c, ds4_stream_status *st) {
    *st = run(g, strlen(g), o, -1, c, NULL);
}

TEST(holdback_rules) {
    collected c;
    ds4_stream_status st;
    ds4_stream_opts o = {true, true, NULL, NULL, 0};
    /* a leading <think> is skipped; </think> split across bytes is never leaked */
    collect_all("<think>abc</think>hello", &o, &c, &st);
    CHECK_EQ_STR(c.reasoning.p, "abc");
    CHECK_EQ_STR(c.text.p, "hello");
    coll_free(&c);
    /* partial UTF-8 is never emitted mid-character */
    ds4_stream *s = ds4_stream_new(&(ds4_stream_opts){false, false, NULL, NULL, 0});
    memset(&c, 0, sizeof c);
    ds4_stream_feed(s, "a\xf0\x9f", 3, on_event, &c);
    CHECK_EQ_STR(c.text.p, "a");
    ds4_stream_feed(s, "\x98\x80", 2, on_event, &c);
    CHECK_EQ_STR(c.text.p, "a\xf0\x9f\x98\x80");
    ds4_stream_free(s);
    coll_free(&c);
    /* with tools: trailing whitespace and a '<' are held until proven text */
    s = ds4_stream_new(&(ds4_stream_opts){false, true, NULL, NULL, 0});
    memset(&c, 0, sizeof c);
    ds4_stream_feed(s, "x = 1 \n\n<", 9, on_event, &c);
    CHECK_EQ_STR(c.text.p, "x = 1");
    ds4_stream_feed(s, "b>", 2, on_event, &c);
    CHECK_EQ_STR(c.text.p, "x = 1");     /* '<' within the last 80 bytes */
    char filler[100];
    memset(filler, 'y', sizeof filler);
    ds4_stream_feed(s, filler, sizeof filler, on_event, &c);
    CHECK(c.text.len == 5 + 4 + 2 + 100);
    ds4_stream_finish(s, on_event, &c);
    ds4_stream_free(s);
    coll_free(&c);
    /* without tools, text is not held for '<' */
    s = ds4_stream_new(&(ds4_stream_opts){false, false, NULL, NULL, 0});
    memset(&c, 0, sizeof c);
    ds4_stream_feed(s, "a <b ", 5, on_event, &c);
    CHECK_EQ_STR(c.text.p, "a <b ");
    ds4_stream_free(s);
    coll_free(&c);
}

TEST(tool_markup_inside_think_is_reasoning) {
    const char *g = "plan: <\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>\n<\xef\xbd\x9c" "DSML\xef\xbd\x9cinvoke name=\"x\">\n</\xef\xbd\x9c" "DSML\xef\xbd\x9cinvoke>\n</\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls></think>ok";
    collected c;
    ds4_stream_status st;
    ds4_stream_opts o = {true, true, NULL, NULL, 0};
    collect_all(g, &o, &c, &st);
    CHECK_EQ_INT(st, DS4_STREAM_CONTINUE);
    CHECK_EQ_INT(c.n_start, 0);
    CHECK_EQ_STR(c.text.p, "ok");
    CHECK(strstr(c.reasoning.p, "invoke name") != NULL);
    coll_free(&c);
}

TEST(tool_end_stops_and_unterminated_is_reported) {
    const char *g = "Sure.\n\n<\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>\n<\xef\xbd\x9c" "DSML\xef\xbd\x9cinvoke name=\"bash\">\n<\xef\xbd\x9c" "DSML\xef\xbd\x9cparameter name=\"c\" string=\"true\">a &amp;&amp; b</\xef\xbd\x9c" "DSML\xef\xbd\x9cparameter>\n</\xef\xbd\x9c" "DSML\xef\xbd\x9cinvoke>\n</\xef\xbd\x9c" "DSML\xef\xbd\x9ctool_calls>AFTER";
    collected c;
    ds4_stream *s;
    ds4_stream_opts o = {false, true, NULL, NULL, 0};
    ds4_stream_status st = run(g, strlen(g), &o, -1, &c, &s);
    CHECK_EQ_INT(st, DS4_STREAM_TOOL_END);
    CHECK(ds4_stream_tool_started(s) && ds4_stream_tool_ended(s) && !ds4_stream_bad_dsml(s));
    CHECK_EQ_STR(c.text.p, "Sure.");
    CHECK_EQ_STR(c.names[0].p, "bash");
    CHECK_EQ_STR(c.args[0].p, "{\"c\":\"a && b\"}");
    ds4_stream_free(s);
    coll_free(&c);
    /* cut inside the block: started, not ended */
    st = run(g, 60, &o, 3, &c, &s);
    CHECK_EQ_INT(st, DS4_STREAM_CONTINUE);
    CHECK(ds4_stream_tool_started(s) && !ds4_stream_tool_ended(s));
    ds4_stream_free(s);
    coll_free(&c);
}

TEST(stop_strings) {
    const char *stops[] = {"STOP", "", "xyz"};
    ds4_stream_opts o = {false, false, stops, NULL, 3};
    for (int mode = -1; mode < 6; mode++) {
        collected c;
        ds4_stream *s;
        const char *g = "hello wor ST STOP and more";
        ds4_stream_status st = run(g, strlen(g), &o, mode, &c, &s);
        CHECK_EQ_INT(st, DS4_STREAM_STOP_STRING);
        CHECK_EQ_STR(c.text.p, "hello wor ST ");
        size_t l;
        ds4_stream_text(s, &l);
        CHECK_EQ_INT(l, 13);
        ds4_stream_free(s);
        coll_free(&c);
    }
    /* held tail: never emits a possible stop prefix until disproved */
    ds4_stream *s = ds4_stream_new(&o);
    collected c;
    memset(&c, 0, sizeof c);
    ds4_stream_feed(s, "abcST", 5, on_event, &c);
    CHECK(c.text.len <= 2);
    ds4_stream_feed(s, "ARTS", 4, on_event, &c);
    ds4_stream_finish(s, on_event, &c);
    CHECK_EQ_STR(c.text.p, "abcSTARTS");
    ds4_stream_free(s);
    coll_free(&c);
    /* a stop string inside the reasoning cuts it there too */
    const char *st1[] = {"</th"};
    ds4_stream_opts o2 = {true, false, st1, NULL, 1};
    ds4_stream_status stt = run("abc</think>d", 12, &o2, 2, &c, NULL);
    CHECK_EQ_INT(stt, DS4_STREAM_STOP_STRING);
    CHECK_EQ_STR(c.reasoning.p, "abc");
    coll_free(&c);
}

TEST(random_garbage_never_crashes) {
    static const char *const frags[] = {"<", ">", "</", "\xef\xbd\x9c", "DSML", "tool_calls", "invoke", "parameter", " name=\"",
        "\"", " string=\"true\"", " string=\"false\"", "&amp;", "&", "\n", " ", "</think>", "<think>", "x", "{\"a\": [1, 2]}", "\xf0\x9f"};
    int rounds = tu_quick() ? 300 : 3000;
    for (int r = 0; r < rounds; r++) {
        char buf[400];
        size_t n = 0;
        while (n < 300) {
            const char *f = frags[rnd() % (sizeof frags / sizeof frags[0])];
            size_t l = strlen(f);
            memcpy(buf + n, f, l);
            n += l;
        }
        ds4_stream_opts o = {rnd() & 1, true, NULL, NULL, 0};
        collected a, b;
        run(buf, n, &o, 0, &a, NULL);
        run(buf, n, &o, (int)(rnd() % 20), &b, NULL);
        check_same("garbage", &a, &b);
        coll_free(&a);
        coll_free(&b);
        ds4_parse_result pr;
        ds4_dsml_parse(buf, n, o.thinking, &pr);
        ds4_parse_result_free(&pr);
    }
}

TEST(empty_generation) {
    for (int th = 0; th < 2; th++) {
        collected c;
        ds4_stream *s;
        ds4_stream_opts o = {th, true, NULL, NULL, 0};
        run("", 0, &o, 0, &c, &s);
        CHECK_EQ_INT(c.reasoning.len + c.text.len, 0);
        CHECK(!ds4_stream_tool_started(s));
        size_t l;
        CHECK_EQ_STR(ds4_stream_text(s, &l), "");
        ds4_stream_free(s);
        coll_free(&c);
    }
}
