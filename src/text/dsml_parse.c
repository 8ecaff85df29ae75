/* dsml_parse.c - generated text -> reasoning, content, tool calls
 * (spec/text.md §2.6, §3.5; server.md §6). This one-shot parse is the
 * authoritative result of a turn; stream_parse.c is only a live view.
 *
 * Shape: find the think gate, find the block start (six spellings, first that
 * occurs wins and fixes the tag family), split the text before it, then a
 * strict recursive reader over the block. Any surprise fails the whole parse
 * and the caller shows the raw text as content. */
#include <stdlib.h>
#include <string.h>

#include "text/dsml.h"
#include "text/dsml_tags.h"
#include "text/json_span.h"

static const char *find(const char *h, size_t hn, const char *needle) {
    size_t nl = strlen(needle);
    if (nl > hn) return NULL;
    return memmem(h, hn, needle, nl);
}

static const char *find_last(const char *h, size_t hn, const char *needle) {
    size_t nl = strlen(needle);
    const char *last = NULL, *p = h;
    while ((size_t)(h + hn - p) >= nl && (p = memmem(p, (size_t)(h + hn - p), needle, nl))) { last = p; p++; }
    return last;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) abort();
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

const ds4_dsml_tags ds4_dsml_families[DS4_DSML_NFAMILY] = {
#define BAR "\xef\xbd\x9c"
    {"<" BAR "DSML" BAR "tool_calls>", "</" BAR "DSML" BAR "tool_calls>", "<" BAR "DSML" BAR "invoke", "</" BAR "DSML" BAR "invoke>",
     "<" BAR "DSML" BAR "parameter", "</" BAR "DSML" BAR "parameter>"},
    {"<DSML" BAR "tool_calls>", "</DSML" BAR "tool_calls>", "<DSML" BAR "invoke", "</DSML" BAR "invoke>",
     "<DSML" BAR "parameter", "</DSML" BAR "parameter>"},
    {"<tool_calls>", "</tool_calls>", "<invoke", "</invoke>", "<parameter", "</parameter>"},
#undef BAR
};

int ds4_dsml_find_start(const char *s, size_t n, size_t *start, size_t *open_end) {
    for (int f = 0; f < DS4_DSML_NFAMILY; f++) {
        const char *open = ds4_dsml_families[f].open;
        for (int nl = 1; nl >= 0; nl--) {
            /* "\n\n" + tag first, then the bare tag */
            const char *p = find(s, n, open);
            while (p && nl && !((size_t)(p - s) >= 2 && p[-1] == '\n' && p[-2] == '\n')) p = find(p + 1, (size_t)(s + n - p - 1), open);
            if (!p) continue;
            *start = (size_t)(p - s) - (nl ? 2 : 0);
            *open_end = (size_t)(p - s) + strlen(open);
            return f;
        }
    }
    return -1;
}

void ds4_dsml_entity_decode(ds4_sbuf *out, const char *s, size_t n) {
    static const struct { const char *e; char c; } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t i = 0, run = 0;
    while (i < n) {
        if (s[i] != '&') { i++; continue; }
        int hit = -1;
        for (int k = 0; k < 5; k++) {
            size_t l = strlen(ents[k].e);
            if (n - i >= l && memcmp(s + i, ents[k].e, l) == 0) { hit = k; break; }
        }
        if (hit < 0) { i++; continue; }
        ds4_sbuf_add(out, s + run, i - run);
        ds4_sbuf_addc(out, ents[hit].c);
        i += strlen(ents[hit].e);
        run = i;
    }
    ds4_sbuf_add(out, s + run, n - run);
}

/* attr="value" inside tag text t[0..n); decoded into out. 0 found, -1 not. */
int ds4_dsml_attr(const char *t, size_t n, const char *attr, ds4_sbuf *out) {
    char pat[32];
    size_t al = strlen(attr);
    if (al + 3 > sizeof pat) return -1;
    memcpy(pat, attr, al);
    memcpy(pat + al, "=\"", 3);
    const char *p = t;
    for (;;) {
        p = find(p, (size_t)(t + n - p), pat);
        if (!p) return -1;
        /* must start an attribute, not end a longer one ("xname=") */
        if (p == t || is_ws(p[-1])) break;
        p++;
    }
    const char *v = p + al + 2;
    const char *q = memchr(v, '"', (size_t)(t + n - v));
    if (!q) return -1;
    ds4_dsml_entity_decode(out, v, (size_t)(q - v));
    return 0;
}

typedef struct rd {
    const char *s;
    size_t n, i;
    const ds4_dsml_tags *tg;
} rd;

static void skip_ws(rd *r) { while (r->i < r->n && is_ws(r->s[r->i])) r->i++; }
static bool at(rd *r, const char *tag) {
    size_t l = strlen(tag);
    return r->n - r->i >= l && memcmp(r->s + r->i, tag, l) == 0;
}

/* Reads "<...parameter ATTRS>" at r->i; fills name and kind (1 string, 0 json,
 * -1 no attribute). */
static int read_param_open(rd *r, ds4_sbuf *name, int *kind) {
    size_t ol = strlen(r->tg->param);
    const char *gt = memchr(r->s + r->i + ol, '>', r->n - r->i - ol);
    if (!gt) return -1;
    const char *t = r->s + r->i + ol;
    size_t tn = (size_t)(gt - t);
    if (tn && !is_ws(t[0])) return -1; /* "<parameterX" is not our tag */
    if (ds4_dsml_attr(t, tn, "name", name) < 0) return -1;
    ds4_sbuf sv = {0};
    if (ds4_dsml_attr(t, tn, "string", &sv) < 0) *kind = -1;
    else *kind = (sv.len == 4 && !memcmp(sv.p, "true", 4)) ? 1 : 0;
    ds4_sbuf_free(&sv);
    r->i = (size_t)(gt - r->s) + 1;
    return 0;
}

/* Leaf value up to the closing parameter tag, appended as JSON to obj. */
static int read_leaf_value(rd *r, int kind, ds4_sbuf *obj) {
    const char *close = find(r->s + r->i, r->n - r->i, r->tg->param_close);
    if (!close) return -1;
    const char *v = r->s + r->i;
    size_t vn = (size_t)(close - v);
    if (kind != 0) {
        ds4_sbuf d = {0};
        ds4_dsml_entity_decode(&d, v, vn);
        js_write_str(obj, d.p ? d.p : "", d.len);
        ds4_sbuf_free(&d);
    } else {
        size_t before = obj->len;
        js_minify(v, vn, obj);
        if (obj->len == before) ds4_sbuf_adds(obj, "null");
    }
    r->i = (size_t)(close - r->s) + strlen(r->tg->param_close);
    return 0;
}

static int read_params(rd *r, ds4_sbuf *obj, bool nested) {
    bool first = true;
    ds4_sbuf_addc(obj, '{');
    for (;;) {
        skip_ws(r);
        if (!at(r, r->tg->param)) break;
        ds4_sbuf name = {0};
        int kind;
        if (read_param_open(r, &name, &kind) < 0) { ds4_sbuf_free(&name); return -1; }
        if (!first) ds4_sbuf_addc(obj, ',');
        first = false;
        js_write_str(obj, name.p ? name.p : "", name.len);
        ds4_sbuf_free(&name);
        ds4_sbuf_addc(obj, ':');
        size_t save = r->i;
        skip_ws(r);
        if (!nested && kind == -1 && at(r, r->tg->param)) {
            /* loose nesting: an object of leaf parameters */
            if (read_params(r, obj, true) < 0) return -1;
            skip_ws(r);
            if (at(r, r->tg->param_close)) r->i += strlen(r->tg->param_close);
            continue;
        }
        r->i = save;
        if (read_leaf_value(r, kind, obj) < 0) return -1;
    }
    ds4_sbuf_addc(obj, '}');
    return 0;
}

/* Parses the block body after the opening tag. Returns the end offset (one
 * past the closing tool_calls tag) or -1. */
static long read_block(rd *r, ds4_parsed_call **calls, size_t *n_calls) {
    for (;;) {
        skip_ws(r);
        if (at(r, r->tg->close)) return (long)(r->i + strlen(r->tg->close));
        if (!at(r, r->tg->invoke)) return -1;
        size_t il = strlen(r->tg->invoke);
        const char *gt = memchr(r->s + r->i + il, '>', r->n - r->i - il);
        if (!gt) return -1;
        const char *t = r->s + r->i + il;
        size_t tn = (size_t)(gt - t);
        if (tn && !is_ws(t[0])) return -1;
        ds4_sbuf name = {0};
        if (ds4_dsml_attr(t, tn, "name", &name) < 0) { ds4_sbuf_free(&name); return -1; }
        r->i = (size_t)(gt - r->s) + 1;
        ds4_sbuf obj = {0};
        if (read_params(r, &obj, false) < 0) { ds4_sbuf_free(&name); ds4_sbuf_free(&obj); return -1; }
        skip_ws(r);
        if (!at(r, r->tg->invoke_close)) { ds4_sbuf_free(&name); ds4_sbuf_free(&obj); return -1; }
        r->i += strlen(r->tg->invoke_close);
        *calls = realloc(*calls, (*n_calls + 1) * sizeof **calls);
        if (!*calls) abort();
        ds4_parsed_call *c = &(*calls)[(*n_calls)++];
        c->name = ds4_sbuf_take(&name, NULL);
        /* [ref-quirk] an object that is not valid JSON reaches the client as {} */
        ds4_sbuf compact = {0};
        if (ds4_json_compact(obj.p, obj.len, &compact) < 0) ds4_sbuf_adds(&compact, "{}");
        c->arguments = ds4_sbuf_take(&compact, &c->arguments_len);
        ds4_sbuf_free(&obj);
    }
}

int ds4_json_compact(const char *text, size_t n, ds4_sbuf *out) {
    js_node *j = js_parse(text, n, NULL);
    if (!j) return -1;
    js_free(j);
    /* Our object text is built compactly already: string values through
     * js_write_str, other values minified. Re-minifying keeps the bytes. */
    js_minify(text, n, out);
    return 0;
}

/* Reasoning/content split of §2.6 on s[0..n). */
static void split_reasoning(const char *s, size_t n, ds4_parse_result *out) {
    if (n >= 7 && !memcmp(s, "<think>", 7)) { s += 7; n -= 7; }
    const char *e = find(s, n, "</think>");
    if (!e) {
        out->content = dupn(s - 0, n);
        out->content_len = n;
        return;
    }
    out->reasoning = dupn(s, (size_t)(e - s));
    out->reasoning_len = (size_t)(e - s);
    out->content = dupn(e + 8, (size_t)(s + n - e - 8));
    out->content_len = (size_t)(s + n - e - 8);
}

void ds4_parse_result_free(ds4_parse_result *r) {
    if (!r) return;
    free(r->content); free(r->reasoning); free(r->raw_dsml); free(r->replay_dsml); free(r->canonical_dsml);
    for (size_t i = 0; i < r->n_calls; i++) { free(r->calls[i].name); free(r->calls[i].arguments); }
    free(r->calls);
    memset(r, 0, sizeof *r);
}

void ds4_dsml_parse(const char *text, size_t n, bool thinking, ds4_parse_result *out) {
    memset(out, 0, sizeof *out);
    out->ok = true;
    size_t gate = 0;
    bool searchable = true;
    if (thinking) {
        const char *lt = find_last(text, n, "</think>");
        if (lt) gate = (size_t)(lt - text) + 8;
        else searchable = false;
    }
    size_t start = 0, open_end = 0;
    int fam = searchable ? ds4_dsml_find_start(text + gate, n - gate, &start, &open_end) : -1;
    if (fam < 0) {
        /* no trailing-whitespace trim without a block (§6.3) */
        split_reasoning(text, n, out);
        out->canonical_dsml = dupn("", 0);
        return;
    }
    start += gate;
    open_end += gate;
    out->block_started = true;
    rd r = {text, n, open_end, &ds4_dsml_families[fam]};
    long end = read_block(&r, &out->calls, &out->n_calls);
    if (end < 0) {
        for (size_t i = 0; i < out->n_calls; i++) { free(out->calls[i].name); free(out->calls[i].arguments); }
        free(out->calls);
        out->calls = NULL;
        out->n_calls = 0;
        out->ok = false;
        out->content = dupn(text, n);
        out->content_len = n;
        out->canonical_dsml = dupn("", 0);
        return;
    }
    size_t cend = start;
    while (cend > 0 && is_ws(text[cend - 1])) cend--;
    split_reasoning(text, cend, out);
    /* the trim must not eat into a "</think>" gate: whitespace only */
    out->raw_dsml = dupn(text + start, (size_t)end - start);
    out->raw_dsml_len = (size_t)end - start;
    out->replay_dsml = dupn(text + cend, (size_t)end - cend);
    out->replay_dsml_len = (size_t)end - cend;
    ds4_tool_call *tc = calloc(out->n_calls ? out->n_calls : 1, sizeof *tc);
    if (!tc) abort();
    for (size_t i = 0; i < out->n_calls; i++) {
        tc[i].name = out->calls[i].name;
        tc[i].arguments = out->calls[i].arguments;
        tc[i].arguments_len = out->calls[i].arguments_len;
    }
    ds4_sbuf cb = {0};
    ds4_dsml_render_calls(tc, out->n_calls, &cb);
    free(tc);
    out->canonical_dsml = ds4_sbuf_take(&cb, &out->canonical_dsml_len);
}
