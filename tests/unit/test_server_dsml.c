/* test_server_dsml.c - the DSML structure tracker that makes tool-call
 * syntax greedy (spec/server.md §5.2): structure vs payload at every point of
 * a block, reasoning quoting DSML, closed blocks, the three spellings. */
/* harness.h's main() trips -Wclobbered at -O2 under some gcc versions. */
#pragma GCC diagnostic ignored "-Wclobbered"
#include "harness.h"

#include "server/dsml_track.h"

#define B "\xEF\xBD\x9C" "DSML" "\xEF\xBD\x9C"   /* ｜DSML｜ */

static int at(const char *s) { return ds4s_dsml_structural(s, strlen(s), 0); }

TEST(outside_blocks_is_free_text) {
    (void)t_data_path;
    CHECK_EQ_INT(at(""), 0);
    CHECK_EQ_INT(at("Hello, I will list files."), 0);
    CHECK_EQ_INT(at("thinking about <" B "tool_calls> here"), 1);           /* non-thinking mode: a block */
    const char *r = "thinking about <" B "tool_calls> here";
    CHECK_EQ_INT(ds4s_dsml_structural(r, strlen(r), 1), 0);                  /* still inside <think> */
    CHECK_EQ_INT(at("I quote <" B "tool_calls> in reasoning</think>Answer"), 0);
}

TEST(structure_and_payload_positions) {
    const char *p0 = "ok</think>Listing.\n\n<" B "tool_calls>\n";
    CHECK_EQ_INT(at(p0), 1);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s<" B "invoke name=\"bash\">\n<" B "parameter name=\"command\" string=\"true\"", p0);
    CHECK_EQ_INT(at(buf), 1);                                  /* header not finished */
    strcat(buf, ">ls -la");
    CHECK_EQ_INT(at(buf), 0);                                  /* string payload */
    strcat(buf, " && echo </div>");
    CHECK_EQ_INT(at(buf), 0);                                  /* "</" that is not the closing tag */
    strcat(buf, "</" B "param");
    CHECK_EQ_INT(at(buf), 1);                                  /* closing tag forming */
    strcat(buf, "eter>\n<" B "parameter name=\"n\" string=\"false\">[1, \"a");
    CHECK_EQ_INT(at(buf), 0);                                  /* inside a JSON string */
    strcat(buf, "\\\" b\", ");
    CHECK_EQ_INT(at(buf), 1);                                  /* JSON punctuation */
    strcat(buf, "2]</" B "parameter>\n</" B "invoke>\n");
    CHECK_EQ_INT(at(buf), 1);
    strcat(buf, "</" B "tool_calls>");
    CHECK_EQ_INT(at(buf), 0);                                  /* block closed */
}

TEST(other_spellings) {
    CHECK_EQ_INT(at("</think><tool_calls>\n<invoke name=\"f\">\n<parameter name=\"x\" string=\"true\">abc"), 0);
    CHECK_EQ_INT(at("</think><tool_calls>\n<invoke name=\"f\">\n<parameter name=\"x\" string=\"true\">abc</param"), 1);
    CHECK_EQ_INT(at("</think><DSML\xEF\xBD\x9Ctool_calls>\n<DSML\xEF\xBD\x9Cinvoke name=\"f\">"), 1);
    CHECK_EQ_INT(at("</think><tool_calls></tool_calls>"), 0);
}

/* The incremental tracker agrees with the one-shot scan at every prefix of
 * a realistic output, however the bytes are split. */
static void agree(const char *text, int thinking, size_t step) {
    ds4s_dsml_tracker t;
    ds4s_dsml_tracker_init(&t, thinking);
    size_t n = strlen(text);
    for (size_t len = 0; len < n;) {
        size_t add = step < n - len ? step : n - len;
        len += add;
        ds4s_dsml_tracker_update(&t, text, len, add);
        int want = ds4s_dsml_structural(text, len, thinking);
        int got = ds4s_dsml_tracker_structural(&t, text, len);
        CHECKF(want == got, "step %zu thinking %d at %zu: tracker %d, scan %d (\"%.*s\")", step, thinking, len, got, want,
               (int)len, text);
    }
}

TEST(incremental_tracker_matches_scan) {
    const char *out = "I may write <" B "tool_calls> here.</think>Sure.\n\n<" B "tool_calls>\n<" B "invoke name=\"bash\">\n<" B
                      "parameter name=\"command\" string=\"true\">ls </x> -la</" B "parameter>\n<" B
                      "parameter name=\"n\" string=\"false\">{\"a\": [1, \"x\\\"y\"]}</" B "parameter>\n</" B "invoke>\n</" B
                      "tool_calls>";
    for (size_t step = 1; step <= 7; step++) {
        agree(out, 1, step);
        agree(out, 0, step);
    }
}
