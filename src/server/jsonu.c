/* jsonu.c - see jsonu.h. */
#include "server/jsonu.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if invalid or
 * incomplete within n bytes. Rejects overlongs, surrogates and > U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0xFF >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

size_t ds4s_utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = utf8_seq(u + i, n - i);
        if (!l) break;
        i += l;
    }
    return i;
}

json_t *ds4s_jstr(const char *s, size_t n) {
    if (!s) return json_string("");
    if (ds4s_utf8_valid_prefix(s, n) == n && !memchr(s, 0, n)) return json_stringn(s, n);
    /* Replace each invalid byte (and NUL) with U+FFFD. */
    char *b = malloc(n * 3 + 1);
    if (!b) return json_string("");
    size_t o = 0, i = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (i < n) {
        size_t l = utf8_seq(u + i, n - i);
        if (l && u[i] != 0) { memcpy(b + o, s + i, l); o += l; i += l; }
        else { memcpy(b + o, "\xEF\xBF\xBD", 3); o += 3; i++; }
    }
    json_t *j = json_stringn(b, o);
    free(b);
    return j ? j : json_string("");
}

json_t *ds4s_jcstr(const char *s) { return ds4s_jstr(s ? s : "", s ? strlen(s) : 0); }

char *ds4s_jdump(const json_t *o, int nl) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!s || !nl) return s;
    size_t n = strlen(s);
    char *r = realloc(s, n + 2);
    if (!r) { free(s); return NULL; }
    r[n] = '\n';
    r[n + 1] = 0;
    return r;
}

int ds4s_json_depth(const char *s, size_t n, int limit) {
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
            if (max > limit) return limit + 1;
        } else if ((c == '}' || c == ']') && depth > 0) depth--;
    }
    return max;
}
