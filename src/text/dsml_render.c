/* dsml_render.c - canonical DSML for assistant tool calls in history
 * (spec/text.md §3.3, server.md §4.5): a deterministic function of the JSON
 * arguments, so two requests with the same JSON render the same bytes. */
#include <string.h>

#include "text/dsml.h"
#include "text/json_span.h"

#define BAR "\xef\xbd\x9c"
#define PARAM_CLOSE "</" BAR "DSML" BAR "parameter>"

static void attr_escape(ds4_sbuf *out, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;" : s[i] == '"' ? "&quot;" : NULL;
        if (!rep) continue;
        ds4_sbuf_add(out, s + run, i - run);
        ds4_sbuf_adds(out, rep);
        run = i + 1;
    }
    ds4_sbuf_add(out, s + run, n - run);
}

/* Appends s with every PARAM_CLOSE written as prefix + the tag minus its '<'. */
static void escape_close(ds4_sbuf *out, const char *s, size_t n, const char *lt) {
    static const size_t cl = sizeof PARAM_CLOSE - 1;
    size_t i = 0, run = 0;
    while (i + cl <= n) {
        if (s[i] == '<' && memcmp(s + i, PARAM_CLOSE, cl) == 0) {
            ds4_sbuf_add(out, s + run, i - run);
            ds4_sbuf_adds(out, lt);
            i++;
            run = i;
            continue;
        }
        i++;
    }
    ds4_sbuf_add(out, s + run, n - run);
}

static void param(ds4_sbuf *out, const char *key, size_t kl, bool is_str) {
    ds4_sbuf_adds(out, "<" BAR "DSML" BAR "parameter name=\"");
    attr_escape(out, key, kl);
    ds4_sbuf_adds(out, is_str ? "\" string=\"true\">" : "\" string=\"false\">");
}

void ds4_dsml_render_calls(const ds4_tool_call *calls, size_t n, ds4_sbuf *out) {
    if (!n) return;
    ds4_sbuf_adds(out, "\n\n<" BAR "DSML" BAR "tool_calls>\n");
    for (size_t i = 0; i < n; i++) {
        const ds4_tool_call *c = &calls[i];
        ds4_sbuf_adds(out, "<" BAR "DSML" BAR "invoke name=\"");
        attr_escape(out, c->name ? c->name : "", c->name ? strlen(c->name) : 0);
        ds4_sbuf_adds(out, "\">\n");
        const char *a = c->arguments ? c->arguments : "";
        js_node *j = js_parse(a, c->arguments_len, NULL);
        if (j && j->t == JS_OBJ) {
            for (size_t k = 0; k < j->n; k++) {
                const js_node *v = j->kids[k];
                param(out, j->keys[k], strlen(j->keys[k]), v->t == JS_STR);
                if (v->t == JS_STR) escape_close(out, v->str, v->str_len, "&lt;");
                else {
                    ds4_sbuf m = {0};
                    js_minify(a + v->start, v->end - v->start, &m);
                    escape_close(out, m.p ? m.p : "", m.len, "\\u003c");
                    ds4_sbuf_free(&m);
                }
                ds4_sbuf_adds(out, PARAM_CLOSE "\n");
            }
        } else {
            param(out, "arguments", 9, true);
            escape_close(out, a, c->arguments_len, "&lt;");
            ds4_sbuf_adds(out, PARAM_CLOSE "\n");
        }
        js_free(j);
        ds4_sbuf_adds(out, "</" BAR "DSML" BAR "invoke>\n");
    }
    ds4_sbuf_adds(out, "</" BAR "DSML" BAR "tool_calls>");
}
