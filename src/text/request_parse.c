/* request_parse.c - request body text -> ds4_request for the four APIs
 * (spec/text.md §2.2, §2.5, §3.1; server.md §3.3, §4.4, §7.4).
 *
 * The body is read with json_span so that tool schemas and non-string tool
 * arguments keep their exact source bytes. Fields the prompt does not depend
 * on are skipped. A wrong type in a field we read is a 400. */
#include <stdlib.h>
#include <string.h>

#include "text/chat.h"
#include "text/json_span.h"

static char *xstrndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) abort();
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}
static char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

int ds4_api_from_name(const char *name) {
    static const char *const names[][2] = {
        {"openai_chat", "chat"}, {"anthropic_messages", "anthropic"},
        {"openai_responses", "responses"}, {"openai_completions", "completions"},
    };
    for (int i = 0; i < DS4_API_COUNT; i++)
        if (!strcmp(name, names[i][0]) || !strcmp(name, names[i][1])) return i;
    return -1;
}

const char *ds4_think_mode_name(ds4_think_mode m) {
    return m == DS4_THINK_NONE ? "none" : m == DS4_THINK_MAX ? "max" : "high";
}

void ds4_request_free(ds4_request *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_msgs; i++) {
        ds4_message *m = &r->msgs[i];
        free(m->role); free(m->content); free(m->reasoning);
        for (size_t k = 0; k < m->n_calls; k++) {
            free(m->calls[k].id); free(m->calls[k].name); free(m->calls[k].arguments); free(m->calls[k].name_space);
        }
        free(m->calls);
        for (size_t k = 0; k < m->n_result_ids; k++) free(m->result_ids[k]);
        free(m->result_ids);
    }
    free(r->msgs);
    for (size_t i = 0; i < r->n_decls; i++) {
        free(r->decls[i].prompt_name); free(r->decls[i].name); free(r->decls[i].name_space);
    }
    free(r->decls);
    free(r->tools); free(r->model); free(r->prompt);
    memset(r, 0, sizeof *r);
}

/* ---- building blocks ---- */

typedef struct pctx {
    const char *body;
    ds4_request *r;
    ds4_err *err;
    ds4_sbuf tools;       /* schema lines */
    ds4_sbuf pending_reasoning; /* Responses */
    bool have_pending_reasoning;
} pctx;

static ds4_message *add_msg(pctx *c, const char *role) {
    ds4_request *r = c->r;
    r->msgs = realloc(r->msgs, (r->n_msgs + 1) * sizeof *r->msgs);
    if (!r->msgs) abort();
    ds4_message *m = &r->msgs[r->n_msgs++];
    memset(m, 0, sizeof *m);
    m->role = xstrdup(role);
    m->content = xstrdup("");
    return m;
}

static void msg_append(char **dst, size_t *len, const char *s, size_t n) {
    char *p = realloc(*dst, *len + n + 1);
    if (!p) abort();
    memcpy(p + *len, s, n);
    *len += n;
    p[*len] = 0;
    *dst = p;
}

static void add_result_id(ds4_message *m, const char *id) {
    m->result_ids = realloc(m->result_ids, (m->n_result_ids + 1) * sizeof *m->result_ids);
    if (!m->result_ids) abort();
    m->result_ids[m->n_result_ids++] = xstrdup(id);
}

static ds4_tool_call *add_call(ds4_message *m) {
    m->calls = realloc(m->calls, (m->n_calls + 1) * sizeof *m->calls);
    if (!m->calls) abort();
    ds4_tool_call *tc = &m->calls[m->n_calls++];
    memset(tc, 0, sizeof *tc);
    return tc;
}

/* arguments: a JSON string gives its decoded text, any other value its source. */
static void set_args(pctx *c, ds4_tool_call *tc, const js_node *a) {
    if (!a) { tc->arguments = xstrdup("{}"); tc->arguments_len = 2; return; }
    if (a->t == JS_STR) { tc->arguments = xstrndup(a->str, a->str_len); tc->arguments_len = a->str_len; return; }
    tc->arguments = xstrndup(c->body + a->start, a->end - a->start);
    tc->arguments_len = a->end - a->start;
}

static void add_schema_line(pctx *c, const char *s, size_t n) {
    if (c->tools.len) ds4_sbuf_addc(&c->tools, '\n');
    ds4_sbuf_add(&c->tools, s, n);
}

static void add_decl(pctx *c, const char *prompt_name, const char *name, const char *ns, bool hosted) {
    ds4_request *r = c->r;
    r->decls = realloc(r->decls, (r->n_decls + 1) * sizeof *r->decls);
    if (!r->decls) abort();
    ds4_tool_decl *d = &r->decls[r->n_decls++];
    d->prompt_name = xstrdup(prompt_name);
    d->name = xstrdup(name);
    d->name_space = ns ? xstrdup(ns) : NULL;
    d->hosted_tool_search = hosted;
}

static int bad_type(pctx *c, const char *field, const char *expected) {
    return ds4_errf(c->err, "invalid JSON request: field \"%s\" has the wrong type; expected %s", field, expected);
}

/* ---- thinking (§2.2) ---- */

typedef struct think_state { bool enabled, is_explicit; int effort; /* 0 none 1 high 2 max */ } think_state;

static int effort_from(pctx *c, const js_node *v, const char *field, think_state *t) {
    if (!v || v->t == JS_NULL) return 0;
    if (v->t != JS_STR) return bad_type(c, field, "a string or null");
    const char *s = v->str;
    if (!strcmp(s, "max")) t->effort = 2;
    else if (!strcmp(s, "xhigh") || !strcmp(s, "high") || !strcmp(s, "medium") || !strcmp(s, "low") || !strcmp(s, "minimal")) t->effort = 1;
    else if (!strcmp(s, "none")) t->effort = 0;
    else return ds4_errf(c->err, "invalid JSON request: %s \"%s\" is not one of max, xhigh, high, medium, low, minimal, none", field, s);
    return 0;
}

static int thinking_field(pctx *c, const js_node *root, think_state *t) {
    (void)c;
    const js_node *th = js_get(root, "thinking");
    if (th) {
        t->is_explicit = true; /* [ref] mere presence counts */
        if (th->t == JS_TRUE) t->enabled = true;
        else if (th->t == JS_FALSE) t->enabled = false;
        else if (th->t == JS_OBJ) {
            const char *ty = js_get_str(th, "type");
            if (ty && !strcmp(ty, "enabled")) t->enabled = true;
            else if (ty && !strcmp(ty, "disabled")) t->enabled = false;
        }
    }
    return 0;
}

static void resolve_think(pctx *c, think_state *t, uint32_t ctx_size) {
    ds4_request *r = c->r;
    if (!t->is_explicit && r->model) {
        if (!strcmp(r->model, "deepseek-chat")) t->enabled = false;
        else if (!strcmp(r->model, "deepseek-reasoner")) t->enabled = true;
    }
    ds4_think_mode m = (!t->enabled || t->effort == 0) ? DS4_THINK_NONE : t->effort == 2 ? DS4_THINK_MAX : DS4_THINK_HIGH;
    r->think_requested = m;
    r->think = (m == DS4_THINK_MAX && ctx_size < DS4_THINK_MAX_MIN_CTX) ? DS4_THINK_HIGH : m;
}

/* ---- content helpers ---- */

/* Chat content: string, null, or array of strings / objects with "text"
 * (concatenated, no separator; other parts dropped). */
static int chat_content(pctx *c, const js_node *v, char **dst, size_t *len, const char *field) {
    (void)c; (void)field;
    if (!v || v->t == JS_NULL) return 0;
    if (v->t == JS_STR) { msg_append(dst, len, v->str, v->str_len); return 0; }
    if (v->t != JS_ARR) return 0; /* server.md §7.2: any other JSON type renders as "" */
    for (size_t i = 0; i < v->n; i++) {
        const js_node *e = v->kids[i];
        if (e->t == JS_STR) msg_append(dst, len, e->str, e->str_len);
        else if (e->t == JS_OBJ) {
            const js_node *tx = js_get(e, "text");
            if (tx && tx->t == JS_STR) msg_append(dst, len, tx->str, tx->str_len);
        }
    }
    return 0;
}

/* Tools array shared by chat / anthropic / responses (§3.1). */
static int tools_array(pctx *c, const js_node *tools, bool responses) {
    if (!tools || tools->t == JS_NULL) return 0;
    if (tools->t != JS_ARR) return bad_type(c, "tools", "an array");
    for (size_t i = 0; i < tools->n; i++) {
        const js_node *t = tools->kids[i];
        if (t->t != JS_OBJ) { add_schema_line(c, c->body + t->start, t->end - t->start); continue; }
        const js_node *fn = js_get(t, "function");
        const char *type = js_get_str(t, "type");
        if (fn) {
            add_schema_line(c, c->body + fn->start, fn->end - fn->start);
            const char *nm = js_get_str(fn, "name");
            if (nm) add_decl(c, nm, nm, NULL, false);
            continue;
        }
        if (responses && type && !strcmp(type, "namespace")) {
            const char *ns = js_get_str(t, "name");
            const js_node *inner = js_get(t, "tools");
            if (!ns || !inner || inner->t != JS_ARR) return ds4_errf(c->err, "invalid JSON request: tools[%zu] namespace needs a string name and a tools array", i);
            for (size_t k = 0; k < inner->n; k++) {
                const js_node *f = inner->kids[k];
                const char *nm = js_get_str(f, "name");
                if (!nm) return ds4_errf(c->err, "invalid JSON request: tools[%zu].tools[%zu] has no name", i, k);
                ds4_sbuf line = {0}, full = {0};
                ds4_sbuf_adds(&full, ns);
                ds4_sbuf_adds(&full, nm);
                ds4_sbuf_adds(&line, "{\"name\":");
                js_write_str(&line, full.p, full.len);
                ds4_sbuf_adds(&line, ",\"description\":");
                const js_node *d = js_get(f, "description");
                if (d) ds4_sbuf_add(&line, c->body + d->start, d->end - d->start); else ds4_sbuf_adds(&line, "\"\"");
                ds4_sbuf_adds(&line, ",\"parameters\":");
                const js_node *pa = js_get(f, "parameters");
                if (pa) ds4_sbuf_add(&line, c->body + pa->start, pa->end - pa->start); else ds4_sbuf_adds(&line, "{\"type\":\"object\",\"properties\":{}}");
                ds4_sbuf_addc(&line, '}');
                add_schema_line(c, line.p, line.len);
                add_decl(c, full.p, nm, ns, false);
                ds4_sbuf_free(&line);
                ds4_sbuf_free(&full);
            }
            continue;
        }
        if (responses && type && !strcmp(type, "tool_search")) {
            ds4_sbuf line = {0};
            ds4_sbuf_adds(&line, "{\"name\":\"tool_search\",\"description\":");
            const js_node *d = js_get(t, "description");
            if (d) ds4_sbuf_add(&line, c->body + d->start, d->end - d->start); else ds4_sbuf_adds(&line, "\"Search available tools.\"");
            ds4_sbuf_adds(&line, ",\"parameters\":");
            const js_node *pa = js_get(t, "parameters");
            if (pa) ds4_sbuf_add(&line, c->body + pa->start, pa->end - pa->start); else ds4_sbuf_adds(&line, "{\"type\":\"object\",\"properties\":{}}");
            ds4_sbuf_addc(&line, '}');
            add_schema_line(c, line.p, line.len);
            add_decl(c, "tool_search", "tool_search", NULL, true);
            ds4_sbuf_free(&line);
            continue;
        }
        add_schema_line(c, c->body + t->start, t->end - t->start);
        const char *nm = js_get_str(t, "name");
        if (nm) add_decl(c, nm, nm, NULL, false);
    }
    return 0;
}

/* ---- OpenAI chat ---- */

static int parse_chat_messages(pctx *c, const js_node *msgs) {
    if (!msgs || msgs->t == JS_NULL) return ds4_errf(c->err, "missing messages");
    if (msgs->t != JS_ARR) return bad_type(c, "messages", "an array");
    for (size_t i = 0; i < msgs->n; i++) {
        const js_node *mj = msgs->kids[i];
        if (mj->t != JS_OBJ) return bad_type(c, "messages[]", "an object");
        const js_node *role = js_get(mj, "role");
        if (role && role->t != JS_STR && role->t != JS_NULL) return bad_type(c, "role", "a string");
        ds4_message *m = add_msg(c, role && role->t == JS_STR ? role->str : "user");
        if (chat_content(c, js_get(mj, "content"), &m->content, &m->content_len, "content") < 0) return -1;
        const js_node *rc = js_get(mj, "reasoning_content");
        if (rc && (rc->t == JS_STR || rc->t == JS_ARR)) { /* same forms as content */
            m->reasoning = xstrdup("");
            chat_content(c, rc, &m->reasoning, &m->reasoning_len, "reasoning_content");
        }
        const js_node *tcid = js_get(mj, "tool_call_id");
        if (tcid && tcid->t == JS_STR) add_result_id(m, tcid->str);
        const js_node *tcs = js_get(mj, "tool_calls");
        if (tcs && tcs->t == JS_ARR) {
            for (size_t k = 0; k < tcs->n; k++) {
                const js_node *tj = tcs->kids[k];
                const js_node *fn = js_get(tj, "function");
                const char *name = js_get_str(fn, "name");
                const js_node *args = js_get(fn, "arguments");
                if (!name || !args) continue; /* [ref] dropped */
                ds4_tool_call *tc = add_call(m);
                const char *id = js_get_str(tj, "id");
                tc->id = id ? xstrdup(id) : NULL;
                tc->name = xstrdup(name);
                set_args(c, tc, args);
            }
        } else if (tcs && tcs->t != JS_NULL) return bad_type(c, "tool_calls", "an array or null");
    }
    return 0;
}

/* ---- Anthropic ---- */

static int parse_anthropic(pctx *c, const js_node *root) {
    const js_node *sys = js_get(root, "system");
    if (sys && sys->t != JS_NULL) {
        ds4_sbuf s = {0};
        if (sys->t == JS_STR) ds4_sbuf_add(&s, sys->str, sys->str_len);
        else if (sys->t == JS_ARR) {
            for (size_t i = 0; i < sys->n; i++) {
                const js_node *b = sys->kids[i];
                const js_node *tx = b->t == JS_STR ? b : js_get(b, "text");
                if (!tx || tx->t != JS_STR) continue;
                if (!strncmp(tx->str, "x-anthropic-", 12)) continue;
                if (s.len && s.p[s.len - 1] != '\n') ds4_sbuf_addc(&s, '\n');
                ds4_sbuf_add(&s, tx->str, tx->str_len);
            }
        } else { ds4_sbuf_free(&s); return bad_type(c, "system", "a string or an array of text blocks"); }
        ds4_message *m = add_msg(c, "system");
        free(m->content);
        m->content = ds4_sbuf_take(&s, &m->content_len);
    }
    const js_node *msgs = js_get(root, "messages");
    if (!msgs || msgs->t == JS_NULL) return ds4_errf(c->err, "missing messages");
    if (msgs->t != JS_ARR) return bad_type(c, "messages", "an array");
    for (size_t i = 0; i < msgs->n; i++) {
        const js_node *mj = msgs->kids[i];
        if (mj->t != JS_OBJ) return bad_type(c, "messages[]", "an object");
        const js_node *role = js_get(mj, "role");
        if (role && role->t != JS_STR) return bad_type(c, "role", "a string");
        ds4_message *m = add_msg(c, role ? role->str : "user");
        const js_node *ct = js_get(mj, "content");
        if (!ct || ct->t == JS_NULL) continue;
        if (ct->t == JS_STR) { msg_append(&m->content, &m->content_len, ct->str, ct->str_len); continue; }
        if (ct->t != JS_ARR) return bad_type(c, "content", "a string or an array of blocks");
        for (size_t k = 0; k < ct->n; k++) {
            const js_node *b = ct->kids[k];
            const char *ty = js_get_str(b, "type");
            if (b->t == JS_STR) { msg_append(&m->content, &m->content_len, b->str, b->str_len); continue; }
            if (!ty) continue;
            if (!strcmp(ty, "text")) {
                const js_node *tx = js_get(b, "text");
                if (tx && tx->t == JS_STR) msg_append(&m->content, &m->content_len, tx->str, tx->str_len);
            } else if (!strcmp(ty, "thinking")) {
                const js_node *tx = js_get(b, "thinking");
                if (tx && tx->t == JS_STR) {
                    if (!m->reasoning) m->reasoning = xstrdup("");
                    msg_append(&m->reasoning, &m->reasoning_len, tx->str, tx->str_len);
                }
            } else if (!strcmp(ty, "tool_use")) {
                const char *name = js_get_str(b, "name");
                if (!name) continue;
                ds4_tool_call *tc = add_call(m);
                const char *id = js_get_str(b, "id");
                tc->id = id ? xstrdup(id) : NULL;
                tc->name = xstrdup(name);
                const js_node *in = js_get(b, "input");
                if (in) { tc->arguments = xstrndup(c->body + in->start, in->end - in->start); tc->arguments_len = in->end - in->start; }
                else { tc->arguments = xstrdup("{}"); tc->arguments_len = 2; }
            } else if (!strcmp(ty, "tool_result")) {
                const char *id = js_get_str(b, "tool_use_id");
                if (id) add_result_id(m, id);
                ds4_sbuf txt = {0};
                const js_node *rc = js_get(b, "content");
                if (rc && rc->t == JS_STR) ds4_sbuf_add(&txt, rc->str, rc->str_len);
                else if (rc && rc->t == JS_ARR) {
                    for (size_t q = 0; q < rc->n; q++) {
                        const js_node *e = rc->kids[q];
                        const js_node *tx = e->t == JS_STR ? e : js_get(e, "text");
                        if (tx && tx->t == JS_STR) ds4_sbuf_add(&txt, tx->str, tx->str_len);
                    }
                }
                ds4_sbuf esc = {0};
                ds4_sbuf_adds(&esc, "<tool_result>");
                ds4_escape_tool_result(&esc, txt.p ? txt.p : "", txt.len);
                ds4_sbuf_adds(&esc, "</tool_result>");
                msg_append(&m->content, &m->content_len, esc.p, esc.len);
                ds4_sbuf_free(&esc);
                ds4_sbuf_free(&txt);
            }
        }
    }
    return 0;
}

/* ---- Responses ---- */

static int resp_text_blocks(pctx *c, const js_node *v, ds4_sbuf *out, const char *field, bool strict) {
    if (!v || v->t == JS_NULL) return 0;
    if (v->t == JS_STR) { ds4_sbuf_add(out, v->str, v->str_len); return 0; }
    if (v->t != JS_ARR) return bad_type(c, field, "a string or an array of text blocks");
    static const char *const ok[] = {"input_text", "output_text", "text", "summary_text", "reasoning_text"};
    for (size_t i = 0; i < v->n; i++) {
        const js_node *e = v->kids[i];
        if (e->t == JS_STR) { ds4_sbuf_add(out, e->str, e->str_len); continue; }
        if (e->t != JS_OBJ) return ds4_errf(c->err, "invalid JSON request: %s[%zu] is not a string or a text block", field, i);
        const char *ty = js_get_str(e, "type");
        bool good = false;
        for (size_t k = 0; ty && k < sizeof ok / sizeof ok[0]; k++) if (!strcmp(ty, ok[k])) good = true;
        const js_node *tx = js_get(e, "text");
        if (strict && (!good || !tx)) return ds4_errf(c->err, "invalid JSON request: %s[%zu] of type \"%s\" is not supported; expected a text block", field, i, ty ? ty : "(none)");
        if (tx && tx->t == JS_STR) ds4_sbuf_add(out, tx->str, tx->str_len);
    }
    return 0;
}

static void flush_pending_reasoning(pctx *c) {
    if (!c->have_pending_reasoning) return;
    ds4_message *m = add_msg(c, "assistant");
    m->reasoning = ds4_sbuf_take(&c->pending_reasoning, &m->reasoning_len);
    c->have_pending_reasoning = false;
}

static ds4_message *resp_call_target(pctx *c, bool prev_was_assistant) {
    ds4_request *r = c->r;
    ds4_message *m;
    if (prev_was_assistant && !c->have_pending_reasoning) m = &r->msgs[r->n_msgs - 1];
    else m = add_msg(c, "assistant");
    if (c->have_pending_reasoning) {
        free(m->reasoning);
        m->reasoning = ds4_sbuf_take(&c->pending_reasoning, &m->reasoning_len);
        c->have_pending_reasoning = false;
    }
    return m;
}

static int parse_responses_input(pctx *c, const js_node *in) {
    if (!in) return ds4_errf(c->err, "missing input");
    if (in->t == JS_STR) {
        ds4_message *m = add_msg(c, "user");
        msg_append(&m->content, &m->content_len, in->str, in->str_len);
        return 0;
    }
    if (in->t != JS_ARR) return bad_type(c, "input", "a string or an array of items");
    bool prev_assistant = false;
    for (size_t i = 0; i < in->n; i++) {
        const js_node *it = in->kids[i];
        if (it->t != JS_OBJ) return ds4_errf(c->err, "invalid JSON request: input[%zu] is not an object", i);
        const char *ty = js_get_str(it, "type");
        if (!ty) ty = "message";
        const js_node *st = js_get(it, "status");
        if (st && st->t != JS_NULL && !(st->t == JS_STR && !strcmp(st->str, "completed")))
            return ds4_errf(c->err, "invalid JSON request: input[%zu] (%s) has status %.*s; only completed items can be replayed", i, ty, (int)(st->end - st->start), c->body + st->start);
        bool this_assistant = false;
        if (!strcmp(ty, "message")) {
            const char *role = js_get_str(it, "role");
            if (!role) role = "user";
            bool is_asst = !strcmp(role, "assistant");
            if (!is_asst && strcmp(role, "system") && strcmp(role, "developer")) flush_pending_reasoning(c);
            ds4_sbuf txt = {0};
            if (resp_text_blocks(c, js_get(it, "content"), &txt, "content", true) < 0) { ds4_sbuf_free(&txt); return -1; }
            ds4_message *m = add_msg(c, role);
            free(m->content);
            m->content = ds4_sbuf_take(&txt, &m->content_len);
            if (is_asst && c->have_pending_reasoning) {
                m->reasoning = ds4_sbuf_take(&c->pending_reasoning, &m->reasoning_len);
                c->have_pending_reasoning = false;
            }
            this_assistant = is_asst;
        } else if (!strcmp(ty, "reasoning")) {
            ds4_sbuf s = {0}, t = {0};
            if (resp_text_blocks(c, js_get(it, "summary"), &s, "summary", false) < 0 ||
                resp_text_blocks(c, js_get(it, "content"), &t, "content", false) < 0) { ds4_sbuf_free(&s); ds4_sbuf_free(&t); return -1; }
            const ds4_sbuf *parts[2] = {&s, &t};
            for (int k = 0; k < 2; k++) {
                if (!parts[k]->len) continue;
                if (c->have_pending_reasoning && c->pending_reasoning.len) ds4_sbuf_addc(&c->pending_reasoning, '\n');
                ds4_sbuf_add(&c->pending_reasoning, parts[k]->p, parts[k]->len);
                c->have_pending_reasoning = true;
            }
            /* An item with no visible text (e.g. only encrypted_content)
             * carries nothing to render and opens no assistant turn. */
            ds4_sbuf_free(&s);
            ds4_sbuf_free(&t);
            this_assistant = false; /* a call after reasoning starts a new assistant message */
        } else if (!strcmp(ty, "function_call") || !strcmp(ty, "custom_tool_call") || !strcmp(ty, "local_shell_call") ||
                   !strcmp(ty, "web_search_call") || !strcmp(ty, "tool_search_call") || !strcmp(ty, "image_generation_call")) {
            ds4_message *m = resp_call_target(c, prev_assistant);
            ds4_tool_call *tc = add_call(m);
            const char *id = js_get_str(it, "call_id");
            if (!id) id = js_get_str(it, "id");
            tc->id = xstrdup(id ? id : "");
            const char *name = js_get_str(it, "name");
            const char *ns = js_get_str(it, "namespace");
            if (!strcmp(ty, "local_shell_call")) name = "local_shell";
            else if (!strcmp(ty, "web_search_call")) name = "web_search_call";
            else if (!strcmp(ty, "tool_search_call")) name = "tool_search";
            else if (!strcmp(ty, "image_generation_call")) name = "image_generation_call";
            if (!name) name = "";
            if (!strcmp(ty, "function_call") && ns && *ns) {
                size_t a = strlen(ns), b = strlen(name);
                tc->name = malloc(a + b + 1);
                if (!tc->name) abort();
                memcpy(tc->name, ns, a);
                memcpy(tc->name + a, name, b + 1);
                tc->name_space = xstrdup(ns);
            } else tc->name = xstrdup(name);
            /* hosted calls carry an "action"; every kind falls back to
             * arguments, then input, then {} */
            bool hosted = strcmp(ty, "function_call") != 0 && strcmp(ty, "custom_tool_call") != 0;
            const js_node *args = hosted ? js_get(it, "action") : NULL;
            if (!args) args = js_get(it, "arguments");
            if (!args) args = js_get(it, "input");
            set_args(c, tc, args);
            this_assistant = true;
        } else if (!strcmp(ty, "function_call_output") || !strcmp(ty, "custom_tool_call_output") ||
                   !strcmp(ty, "local_shell_call_output") || !strcmp(ty, "web_search_call_output") ||
                   !strcmp(ty, "tool_search_output") || !strcmp(ty, "tool_search_call_output") ||
                   !strcmp(ty, "image_generation_call_output")) {
            flush_pending_reasoning(c);
            ds4_message *m = add_msg(c, "tool");
            const char *id = js_get_str(it, "call_id");
            if (!id) id = js_get_str(it, "id");
            if (id) add_result_id(m, id);
            const js_node *out = js_get(it, "output");
            if (!out) out = js_get(it, "result");
            if (!out) out = js_get(it, "tools");
            if (out && out->t == JS_STR) msg_append(&m->content, &m->content_len, out->str, out->str_len);
            else if (out && out->t == JS_ARR && (!strcmp(ty, "function_call_output") || !strcmp(ty, "custom_tool_call_output"))) {
                ds4_sbuf txt = {0};
                if (resp_text_blocks(c, out, &txt, "output", true) < 0) { ds4_sbuf_free(&txt); return -1; }
                msg_append(&m->content, &m->content_len, txt.p ? txt.p : "", txt.len);
                ds4_sbuf_free(&txt);
            } else if (out && out->t != JS_NULL) msg_append(&m->content, &m->content_len, c->body + out->start, out->end - out->start);
            if (!strcmp(ty, "tool_search_output")) {
                const js_node *tl = js_get(it, "tools");
                if (tl && tl->t != JS_ARR) return bad_type(c, "tool_search_output.tools", "an array");
                if (tl && tools_array(c, tl, true) < 0) return -1;
            }
        } else if (!strcmp(ty, "compaction") || !strcmp(ty, "context_compaction")) {
            this_assistant = prev_assistant;
        } else {
            return ds4_errf(c->err, "invalid JSON request: input[%zu] has unsupported type \"%s\"", i, ty);
        }
        prev_assistant = this_assistant;
    }
    flush_pending_reasoning(c);
    return 0;
}

/* ---- entry ---- */

int ds4_request_parse(ds4_api api, const char *body, size_t len, uint32_t ctx_size, ds4_request *out, ds4_err *err) {
    memset(out, 0, sizeof *out);
    out->api = api;
    if ((unsigned)api >= DS4_API_COUNT) return ds4_errf(err, "unknown API %d", (int)api);
    js_node *root = js_parse(body, len, err);
    if (!root) return -1;
    pctx c = {.body = body, .r = out, .err = err};
    think_state th = {true, false, 1};
    int rc = -1;
    if (root->t != JS_OBJ) { ds4_errf(err, "invalid JSON request: the body is not a JSON object"); goto done; }
    const js_node *model = js_get(root, "model");
    if (model && model->t != JS_STR && model->t != JS_NULL) { bad_type(&c, "model", "a string"); goto done; }
    out->model = xstrdup(model && model->t == JS_STR ? model->str : "deepseek-v4-flash");
    bool tools_off = false;
    const js_node *tch = js_get(root, "tool_choice");
    switch (api) {
    case DS4_API_OPENAI_CHAT:
    case DS4_API_OPENAI_COMPLETIONS: {
        if (thinking_field(&c, root, &th) < 0) goto done;
        const js_node *tk = js_get(root, "think");
        if (tk) {
            if (tk->t != JS_TRUE && tk->t != JS_FALSE) { bad_type(&c, "think", "a boolean"); goto done; }
            th.is_explicit = true;
            th.enabled = tk->t == JS_TRUE;
        }
        if (effort_from(&c, js_get(root, "reasoning_effort"), "reasoning_effort", &th) < 0) goto done;
        if (api == DS4_API_OPENAI_COMPLETIONS) {
            /* server.md §7.3: required; a string, or an array whose first
             * element is used if it is a string; anything else is "" */
            const js_node *p = js_get(root, "prompt");
            if (!p) { ds4_errf(err, "missing prompt"); goto done; }
            if (p->t == JS_ARR) p = p->n ? p->kids[0] : NULL;
            if (p && p->t != JS_STR) p = NULL;
            out->prompt = xstrndup(p ? p->str : "", p ? p->str_len : 0);
            out->prompt_len = p ? p->str_len : 0;
            break;
        }
        if (tch && tch->t == JS_STR && !strcmp(tch->str, "none")) tools_off = true;
        if (parse_chat_messages(&c, js_get(root, "messages")) < 0) goto done;
        if (tools_array(&c, js_get(root, "tools"), false) < 0) goto done;
        break;
    }
    case DS4_API_ANTHROPIC_MESSAGES: {
        if (thinking_field(&c, root, &th) < 0) goto done;
        if (effort_from(&c, js_get(root, "reasoning_effort"), "reasoning_effort", &th) < 0) goto done;
        const js_node *oc = js_get(root, "output_config");
        if (oc && oc->t == JS_OBJ && effort_from(&c, js_get(oc, "effort"), "output_config.effort", &th) < 0) goto done;
        if (tch && tch->t == JS_OBJ) { const char *ty = js_get_str(tch, "type"); if (ty && !strcmp(ty, "none")) tools_off = true; }
        if (parse_anthropic(&c, root) < 0) goto done;
        if (tools_array(&c, js_get(root, "tools"), false) < 0) goto done;
        break;
    }
    case DS4_API_OPENAI_RESPONSES: {
        const js_node *rs = js_get(root, "reasoning");
        if (rs && rs->t != JS_OBJ && rs->t != JS_NULL) { bad_type(&c, "reasoning", "an object or null"); goto done; }
        const js_node *ef = rs && rs->t == JS_OBJ ? js_get(rs, "effort") : NULL;
        if (ef && ef->t != JS_NULL) {
            th.is_explicit = true;
            if (effort_from(&c, ef, "reasoning.effort", &th) < 0) goto done;
        }
        const js_node *prev = js_get(root, "previous_response_id");
        if (prev && prev->t != JS_NULL) { ds4_errf(err, "previous_response_id is not supported; replay full input instead"); goto done; }
        const js_node *conv = js_get(root, "conversation");
        if (conv && conv->t != JS_NULL) { ds4_errf(err, "conversation is not supported; replay full input instead"); goto done; }
        if (tch && tch->t == JS_STR) {
            if (!strcmp(tch->str, "none")) tools_off = true;
            else if (strcmp(tch->str, "auto") != 0) { ds4_errf(err, "tool_choice=%s not supported", tch->str); goto done; }
        } else if (tch && tch->t == JS_OBJ) { ds4_errf(err, "forced tool_choice not supported"); goto done; }
        const js_node *ins = js_get(root, "instructions");
        if (ins && ins->t == JS_STR) {
            ds4_message *m = add_msg(&c, "system");
            msg_append(&m->content, &m->content_len, ins->str, ins->str_len);
        } else if (ins && ins->t != JS_NULL) { bad_type(&c, "instructions", "a string or null"); goto done; }
        if (tools_array(&c, js_get(root, "tools"), true) < 0) goto done;
        if (parse_responses_input(&c, js_get(root, "input")) < 0) goto done;
        break;
    }
    default: break;
    }
    resolve_think(&c, &th, ctx_size);
    if (!tools_off && c.tools.len) {
        out->tools = ds4_sbuf_take(&c.tools, &out->tools_len);
        out->tools_active = true;
    } else {
        out->tools = xstrdup("");
        out->tools_len = 0;
    }
    rc = 0;
done:
    ds4_sbuf_free(&c.tools);
    ds4_sbuf_free(&c.pending_reasoning);
    js_free(root);
    if (rc < 0) ds4_request_free(out);
    return rc;
}
