/* json_span.h - a small JSON reader that remembers where every value sits in
 * the source text. The text layer needs raw source bytes (tool schemas and
 * non-string tool arguments are copied into prompts verbatim, spec §2.5,
 * §3.1), which DOM libraries throw away. Internal to src/text. */
#ifndef DS4_TEXT_JSON_SPAN_H
#define DS4_TEXT_JSON_SPAN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/ds4_err.h"
#include "text/sbuf.h"

typedef enum js_type { JS_NULL, JS_FALSE, JS_TRUE, JS_NUM, JS_STR, JS_ARR, JS_OBJ } js_type;

typedef struct js_node {
    js_type t;
    size_t start, end;        /* source span [start, end) */
    char *str;                /* JS_STR: decoded, NUL-terminated (no NUL inside) */
    size_t str_len;
    struct js_node **kids;    /* JS_ARR elements / JS_OBJ values */
    char **keys;              /* JS_OBJ keys, decoded */
    size_t n;
} js_node;

/* Parses the whole text (one value, whitespace around allowed). Rejects
 * invalid UTF-8, lone surrogates, \u0000, control bytes in strings and
 * nesting deeper than 256. */
js_node *js_parse(const char *s, size_t n, ds4_err *err);
void js_free(js_node *j);
/* Member of an object (the last one if duplicated), NULL if absent/not obj. */
const js_node *js_get(const js_node *obj, const char *key);
/* A string member's value or NULL. */
const char *js_get_str(const js_node *obj, const char *key);

/* Appends src[0..n) with the whitespace outside strings removed. */
void js_minify(const char *src, size_t n, ds4_sbuf *out);
/* Appends s as a JSON string literal: \" \\ \n \r \t, \u00XX below 0x20,
 * everything else literal. */
void js_write_str(ds4_sbuf *out, const char *s, size_t n);

#endif
