/* sbuf.c - growable byte buffer (see sbuf.h). Doubling growth keeps appends
 * amortized O(1); out-of-memory aborts because every caller would have to. */
#include "text/sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ds4_sbuf_reserve(ds4_sbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { fprintf(stderr, "ds4: out of memory (text buffer of %zu bytes)\n", cap); abort(); }
    b->p = p;
    b->cap = cap;
}

void ds4_sbuf_add(ds4_sbuf *b, const void *data, size_t n) {
    ds4_sbuf_reserve(b, n);
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
}

void ds4_sbuf_adds(ds4_sbuf *b, const char *s) { ds4_sbuf_add(b, s, strlen(s)); }

void ds4_sbuf_addc(ds4_sbuf *b, char c) { ds4_sbuf_add(b, &c, 1); }

void ds4_sbuf_clear(ds4_sbuf *b) {
    b->len = 0;
    if (b->p) b->p[0] = 0;
}

void ds4_sbuf_free(ds4_sbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

char *ds4_sbuf_take(ds4_sbuf *b, size_t *len) {
    ds4_sbuf_reserve(b, 0);
    b->p[b->len] = 0; /* a fresh empty buffer has no terminator yet */
    char *p = b->p;
    if (len) *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}
