/* chat_render.c - the DeepSeek V4 chat template as the reference engine
 * renders it (spec/text.md §2.3-§2.5, §3.1, server.md §4): one prompt string
 * with no separators between turns, tools block and system text hoisted after
 * BOS, reasoning of earlier turns kept only in tool context, and exact DSML
 * replay of remembered tool-call blocks. */
#include <string.h>

#include "text/chat.h"
#include "text/dsml.h"

#define BAR "\xef\xbd\x9c"
#define SP "\xe2\x96\x81"
#define S_BOS "<" BAR "begin" SP "of" SP "sentence" BAR ">"
#define S_EOS "<" BAR "end" SP "of" SP "sentence" BAR ">"
#define S_USER "<" BAR "User" BAR ">"
#define S_ASSISTANT "<" BAR "Assistant" BAR ">"

const char DS4_MAX_PREFIX[] =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic against all potential paths, edge cases, and adversarial scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, considered alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n";

const char DS4_TOOLS_HEAD[] =
    "## Tools\n\nYou have access to a set of tools to help answer the user question. You can invoke tools by writing a \"<" BAR "DSML" BAR "tool_calls>\" block like the following:\n\n"
    "<" BAR "DSML" BAR "tool_calls>\n<" BAR "DSML" BAR "invoke name=\"$TOOL_NAME\">\n"
    "<" BAR "DSML" BAR "parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE</" BAR "DSML" BAR "parameter>\n"
    "...\n</" BAR "DSML" BAR "invoke>\n<" BAR "DSML" BAR "invoke name=\"$TOOL_NAME2\">\n...\n</" BAR "DSML" BAR "invoke>\n</" BAR "DSML" BAR "tool_calls>\n\n"
    "String parameters should be specified as raw text and set `string=\"true\"`. Preserve characters such as `>`, `&`, and `&&` exactly; never replace normal string characters with XML or HTML entity escapes. "
    "Only if a string value itself contains the exact closing parameter tag `</" BAR "DSML" BAR "parameter>`, write that tag as `&lt;/" BAR "DSML" BAR "parameter>` inside the value. "
    "For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string=\"false\"`.\n\n"
    "If thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any tool calls or final response.\n\n"
    "Otherwise, output directly after </think> with tool calls or final response.\n\n### Available Tool Schemas\n\n";

const char DS4_TOOLS_TAIL[] =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls. Use the exact parameter names from the schemas.";

const char DS4_COMPLETIONS_SYSTEM[] = "You are a helpful assistant";

void ds4_escape_tool_result(ds4_sbuf *out, const char *s, size_t n) {
    static const char tag[] = "</tool_result>";
    const size_t tl = sizeof tag - 1;
    size_t i = 0, run = 0;
    while (i + tl <= n) {
        if (s[i] == '<' && memcmp(s + i, tag, tl) == 0) {
            ds4_sbuf_add(out, s + run, i - run);
            ds4_sbuf_adds(out, "&lt;");
            run = ++i;
            continue;
        }
        i++;
    }
    ds4_sbuf_add(out, s + run, n - run);
}

static bool is_role(const ds4_message *m, const char *r) { return m->role && !strcmp(m->role, r); }
static bool is_system(const ds4_message *m) { return is_role(m, "system") || is_role(m, "developer"); }
static bool is_tool(const ds4_message *m) { return is_role(m, "tool") || is_role(m, "function"); }

/* Exact replay (§3.7.1): every call id known and all mapping to the same
 * bytes -> those bytes; else NULL. */
static const char *replay_block(const ds4_message *m, const ds4_render_opts *o, size_t *len) {
    if (!o || !o->replay || !m->n_calls) return NULL;
    const char *first = NULL;
    size_t flen = 0;
    for (size_t i = 0; i < m->n_calls; i++) {
        if (!m->calls[i].id || !m->calls[i].id[0]) return NULL;
        size_t l = 0;
        const char *b = o->replay(o->replay_ctx, m->calls[i].id, &l);
        if (!b) return NULL;
        if (!first) { first = b; flen = l; }
        else if (l != flen || (b != first && memcmp(b, first, l) != 0)) return NULL;
    }
    *len = flen;
    return first;
}

int ds4_render(const ds4_request *r, const ds4_render_opts *opts, ds4_sbuf *out, ds4_err *err) {
    bool think = r->think != DS4_THINK_NONE;
    if (r->api == DS4_API_OPENAI_COMPLETIONS) {
        ds4_sbuf_adds(out, S_BOS);
        if (r->think == DS4_THINK_MAX) ds4_sbuf_adds(out, DS4_MAX_PREFIX);
        ds4_sbuf_adds(out, DS4_COMPLETIONS_SYSTEM);
        ds4_sbuf_adds(out, S_USER);
        ds4_sbuf_add(out, r->prompt ? r->prompt : "", r->prompt_len);
        ds4_sbuf_adds(out, S_ASSISTANT);
        ds4_sbuf_adds(out, think ? "<think>" : "</think>");
        return 0;
    }
    bool tool_ctx = r->tools_active && r->tools_len > 0;
    long last_user = -1;
    for (size_t i = 0; i < r->n_msgs; i++) {
        const ds4_message *m = &r->msgs[i];
        if (is_role(m, "assistant") && m->n_calls) tool_ctx = true;
        if (is_tool(m)) tool_ctx = true;
        if (is_role(m, "user") || is_tool(m)) last_user = (long)i;
    }
    ds4_sbuf_adds(out, S_BOS);
    if (r->think == DS4_THINK_MAX) ds4_sbuf_adds(out, DS4_MAX_PREFIX);
    bool sys_any = false;
    if (r->tools_active && r->tools_len) {
        ds4_sbuf_adds(out, DS4_TOOLS_HEAD);
        ds4_sbuf_add(out, r->tools, r->tools_len);
        ds4_sbuf_adds(out, DS4_TOOLS_TAIL);
        sys_any = true;
    }
    for (size_t i = 0; i < r->n_msgs; i++) {
        const ds4_message *m = &r->msgs[i];
        if (!is_system(m)) continue;
        if (sys_any) ds4_sbuf_adds(out, "\n\n");
        ds4_sbuf_add(out, m->content, m->content_len);
        /* "\n\n" only between non-empty parts: the reference tests whether
         * the accumulated system string is empty. */
        sys_any = sys_any || m->content_len > 0;
    }
    bool pending_asst = false, pending_tool = false;
    for (size_t i = 0; i < r->n_msgs; i++) {
        const ds4_message *m = &r->msgs[i];
        if (is_system(m)) continue;
        if (is_role(m, "user")) {
            ds4_sbuf_adds(out, S_USER);
            ds4_sbuf_add(out, m->content, m->content_len);
            pending_asst = true;
            pending_tool = false;
        } else if (is_tool(m)) {
            if (!pending_tool) ds4_sbuf_adds(out, S_USER);
            ds4_sbuf_adds(out, "<tool_result>");
            ds4_escape_tool_result(out, m->content, m->content_len);
            ds4_sbuf_adds(out, "</tool_result>");
            pending_asst = true;
            pending_tool = true;
        } else if (is_role(m, "assistant")) {
            if (pending_asst) {
                ds4_sbuf_adds(out, S_ASSISTANT);
                if (think && (tool_ctx || (long)i > last_user)) {
                    ds4_sbuf_adds(out, "<think>");
                    if (m->reasoning) ds4_sbuf_add(out, m->reasoning, m->reasoning_len);
                    ds4_sbuf_adds(out, "</think>");
                } else {
                    ds4_sbuf_adds(out, "</think>");
                }
            }
            ds4_sbuf_add(out, m->content, m->content_len);
            size_t rl = 0;
            const char *rb = replay_block(m, opts, &rl);
            if (rb) ds4_sbuf_add(out, rb, rl);
            else ds4_dsml_render_calls(m->calls, m->n_calls, out);
            ds4_sbuf_adds(out, S_EOS);
            pending_asst = false;
            pending_tool = false;
        }
        /* any other role: dropped */
    }
    if (pending_asst) {
        ds4_sbuf_adds(out, S_ASSISTANT);
        ds4_sbuf_adds(out, think ? "<think>" : "</think>");
    }
    (void)err;
    return 0;
}

int ds4_render_body(ds4_api api, const char *body, size_t len, uint32_t ctx_size,
                    const ds4_render_opts *opts, ds4_sbuf *out, ds4_think_mode *mode, ds4_err *err) {
    ds4_request r;
    if (ds4_request_parse(api, body, len, ctx_size, &r, err) < 0) return -1;
    int rc = ds4_render(&r, opts, out, err);
    if (mode) *mode = r.think;
    ds4_request_free(&r);
    return rc;
}
