/* json_span.c - recursive-descent JSON reader with source spans (see
 * json_span.h). Strict RFC 8259 plus the server's safety rules: no NUL, no
 * lone surrogates, valid UTF-8, depth <= 256. Errors name the byte offset. */
#include "text/json_span.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JS_MAX_DEPTH 256

typedef struct jp {
    const char *s;
    size_t n, i;
    ds4_err *err;
} jp;

static void *xcalloc(size_t a, size_t b) {
    void *p = calloc(a ? a : 1, b ? b : 1);
    if (!p) abort();
    return p;
}

void js_free(js_node *j) {
    if (!j) return;
    for (size_t i = 0; i < j->n; i++) {
        js_free(j->kids[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->kids);
    free(j->keys);
    free(j->str);
    free(j);
}

static void ws(jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int fail(jp *p, const char *what) {
    return ds4_errf(p->err, "invalid JSON request: %s at byte %zu", what, p->i);
}

static int hex4(jp *p, uint32_t *out) {
    if (p->n - p->i < 4) return -1;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    p->i += 4;
    *out = v;
    return 0;
}

static void put_utf8(ds4_sbuf *b, uint32_t cp) {
    char t[4];
    size_t l;
    if (cp < 0x80) { t[0] = (char)cp; l = 1; }
    else if (cp < 0x800) { t[0] = (char)(0xC0 | (cp >> 6)); t[1] = (char)(0x80 | (cp & 0x3F)); l = 2; }
    else if (cp < 0x10000) { t[0] = (char)(0xE0 | (cp >> 12)); t[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[2] = (char)(0x80 | (cp & 0x3F)); l = 3; }
    else { t[0] = (char)(0xF0 | (cp >> 18)); t[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[3] = (char)(0x80 | (cp & 0x3F)); l = 4; }
    ds4_sbuf_add(b, t, l);
}

/* Length of a valid UTF-8 sequence at s[0..n), 0 if invalid. */
static size_t utf8_valid(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return len;
}

static int parse_string(jp *p, char **out, size_t *out_len) {
    ds4_sbuf b = {0};
    p->i++; /* opening quote */
    for (;;) {
        if (p->i >= p->n) { ds4_sbuf_free(&b); return fail(p, "unterminated string"); }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) { ds4_sbuf_free(&b); return fail(p, "control character in string"); }
        if (c == '\\') {
            p->i++;
            if (p->i >= p->n) { ds4_sbuf_free(&b); return fail(p, "unterminated escape"); }
            char e = p->s[p->i++];
            switch (e) {
            case '"': ds4_sbuf_addc(&b, '"'); break;
            case '\\': ds4_sbuf_addc(&b, '\\'); break;
            case '/': ds4_sbuf_addc(&b, '/'); break;
            case 'b': ds4_sbuf_addc(&b, '\b'); break;
            case 'f': ds4_sbuf_addc(&b, '\f'); break;
            case 'n': ds4_sbuf_addc(&b, '\n'); break;
            case 'r': ds4_sbuf_addc(&b, '\r'); break;
            case 't': ds4_sbuf_addc(&b, '\t'); break;
            case 'u': {
                uint32_t cp, lo;
                if (hex4(p, &cp) < 0) { ds4_sbuf_free(&b); return fail(p, "bad \\u escape"); }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') { ds4_sbuf_free(&b); return fail(p, "lone surrogate"); }
                    p->i += 2;
                    if (hex4(p, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) { ds4_sbuf_free(&b); return fail(p, "lone surrogate"); }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) { ds4_sbuf_free(&b); return fail(p, "lone surrogate"); }
                if (cp == 0) { ds4_sbuf_free(&b); return fail(p, "\\u0000 in string"); }
                put_utf8(&b, cp);
                break;
            }
            default: ds4_sbuf_free(&b); return fail(p, "invalid escape");
            }
            continue;
        }
        size_t l = utf8_valid((const unsigned char *)p->s + p->i, p->n - p->i);
        if (!l) { ds4_sbuf_free(&b); return fail(p, "invalid UTF-8"); }
        ds4_sbuf_add(&b, p->s + p->i, l);
        p->i += l;
    }
    *out = ds4_sbuf_take(&b, out_len);
    return 0;
}

static js_node *parse_value(jp *p, int depth);

static js_node *new_node(js_type t, size_t start) {
    js_node *j = xcalloc(1, sizeof *j);
    j->t = t;
    j->start = start;
    return j;
}

static js_node *parse_container(jp *p, int depth, bool obj) {
    js_node *j = new_node(obj ? JS_OBJ : JS_ARR, p->i);
    size_t cap = 0;
    p->i++;
    ws(p);
    char close = obj ? '}' : ']';
    if (p->i < p->n && p->s[p->i] == close) { p->i++; j->end = p->i; return j; }
    for (;;) {
        char *key = NULL;
        size_t kl;
        if (obj) {
            ws(p);
            if (p->i >= p->n || p->s[p->i] != '"') { fail(p, "expected a member name"); js_free(j); return NULL; }
            if (parse_string(p, &key, &kl) < 0) { js_free(j); return NULL; }
            ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { free(key); fail(p, "expected ':'"); js_free(j); return NULL; }
            p->i++;
        }
        js_node *v = parse_value(p, depth + 1);
        if (!v) { free(key); js_free(j); return NULL; }
        if (j->n == cap) {
            cap = cap ? cap * 2 : 4;
            j->kids = realloc(j->kids, cap * sizeof *j->kids);
            if (!j->kids) abort();
            if (obj) { j->keys = realloc(j->keys, cap * sizeof *j->keys); if (!j->keys) abort(); }
        }
        j->kids[j->n] = v;
        if (obj) j->keys[j->n] = key;
        j->n++;
        ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == close) { p->i++; j->end = p->i; return j; }
        fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        js_free(j);
        return NULL;
    }
}

static js_node *parse_value(jp *p, int depth) {
    if (depth > JS_MAX_DEPTH) { fail(p, "nesting deeper than 256"); return NULL; }
    ws(p);
    if (p->i >= p->n) { fail(p, "unexpected end"); return NULL; }
    char c = p->s[p->i];
    size_t start = p->i;
    if (c == '{' || c == '[') return parse_container(p, depth, c == '{');
    if (c == '"') {
        js_node *j = new_node(JS_STR, start);
        if (parse_string(p, &j->str, &j->str_len) < 0) { js_free(j); return NULL; }
        j->end = p->i;
        return j;
    }
    static const struct { const char *w; js_type t; } lits[] = {{"null", JS_NULL}, {"true", JS_TRUE}, {"false", JS_FALSE}};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(lits[k].w);
        if (p->n - p->i >= l && memcmp(p->s + p->i, lits[k].w, l) == 0) {
            p->i += l;
            js_node *j = new_node(lits[k].t, start);
            j->end = p->i;
            return j;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t i = p->i;
        if (p->s[i] == '-') i++;
        if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') { fail(p, "bad number"); return NULL; }
        if (p->s[i] == '0') i++;
        else while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
        if (i < p->n && p->s[i] == '.') {
            i++;
            if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') { p->i = i; fail(p, "bad number"); return NULL; }
            while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
        }
        if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
            i++;
            if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
            if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') { p->i = i; fail(p, "bad number"); return NULL; }
            while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
        }
        p->i = i;
        js_node *j = new_node(JS_NUM, start);
        j->end = i;
        return j;
    }
    fail(p, "unexpected character");
    return NULL;
}

js_node *js_parse(const char *s, size_t n, ds4_err *err) {
    jp p = {s, n, 0, err};
    js_node *j = parse_value(&p, 0);
    if (!j) return NULL;
    ws(&p);
    if (p.i != n) { fail(&p, "trailing data"); js_free(j); return NULL; }
    return j;
}

const js_node *js_get(const js_node *obj, const char *key) {
    if (!obj || obj->t != JS_OBJ) return NULL;
    for (size_t i = obj->n; i-- > 0;) if (strcmp(obj->keys[i], key) == 0) return obj->kids[i];
    return NULL;
}

const char *js_get_str(const js_node *obj, const char *key) {
    const js_node *v = js_get(obj, key);
    return v && v->t == JS_STR ? v->str : NULL;
}

void js_minify(const char *src, size_t n, ds4_sbuf *out) {
    bool in_str = false, esc = false;
    size_t run = 0; /* start of the pending run of bytes to copy */
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (in_str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') { in_str = true; continue; }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ds4_sbuf_add(out, src + run, i - run);
            run = i + 1;
        }
    }
    ds4_sbuf_add(out, src + run, n - run);
}

void js_write_str(ds4_sbuf *out, const char *s, size_t n) {
    ds4_sbuf_reserve(out, n + 2);
    ds4_sbuf_addc(out, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        char tmp[8];
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c == '\r') rep = "\\r";
        else if (c == '\t') rep = "\\t";
        else if (c < 0x20) { static const char hx[] = "0123456789abcdef"; tmp[0] = '\\'; tmp[1] = 'u'; tmp[2] = '0'; tmp[3] = '0'; tmp[4] = hx[c >> 4]; tmp[5] = hx[c & 15]; tmp[6] = 0; rep = tmp; }
        if (!rep) continue;
        ds4_sbuf_add(out, s + run, i - run);
        ds4_sbuf_adds(out, rep);
        run = i + 1;
    }
    ds4_sbuf_add(out, s + run, n - run);
    ds4_sbuf_addc(out, '"');
}
