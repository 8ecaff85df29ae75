/* fuzz_dsml.c - libFuzzer target for the text layer's parsers of untrusted
 * text: the one-shot DSML parser and the streaming output parser on model
 * output (streamed events must not depend on where the input is split), and,
 * when the first byte's top bit is set, request parsing + rendering of a
 * request body for one of the four APIs. Aborts on any inconsistency. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/text.h"

typedef struct acc { ds4_sbuf r, t, a; int starts, ends; } acc;

static void on_ev(void *ctx, const ds4_stream_event *ev) {
    acc *a = ctx;
    if (ev->kind == DS4_EV_REASONING) ds4_sbuf_add(&a->r, ev->data, ev->len);
    else if (ev->kind == DS4_EV_TEXT) ds4_sbuf_add(&a->t, ev->data, ev->len);
    else if (ev->kind == DS4_EV_TOOL_START) { a->starts++; ds4_sbuf_add(&a->a, ev->data, ev->len); ds4_sbuf_addc(&a->a, 0); }
    else if (ev->kind == DS4_EV_TOOL_ARGS) ds4_sbuf_add(&a->a, ev->data, ev->len);
    else a->ends++;
}

static void stream(const char *s, size_t n, bool thinking, size_t step, acc *a, const char *stop) {
    memset(a, 0, sizeof *a);
    const char *stops[1] = {stop};
    ds4_stream_opts o = {thinking, true, stops, NULL, stop ? 1 : 0};
    ds4_stream *st = ds4_stream_new(&o);
    for (size_t i = 0; i < n; i += step)
        if (ds4_stream_feed(st, s + i, n - i < step ? n - i : step, on_ev, a) != DS4_STREAM_CONTINUE) break;
    ds4_stream_finish(st, on_ev, a);
    ds4_stream_free(st);
}

static int eq(const ds4_sbuf *x, const ds4_sbuf *y) { return x->len == y->len && (!x->len || !memcmp(x->p, y->p, x->len)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    char *s = malloc(size);
    if (!s) return 0;
    memcpy(s, data + 1, size - 1);
    size_t n = size - 1;
    if (mode & 0x80) {
        ds4_sbuf out = {0};
        ds4_think_mode m;
        ds4_err e = {{0}};
        ds4_render_body((ds4_api)(mode % DS4_API_COUNT), s, n, (mode & 0x40) ? 393216 : 32768, NULL, &out, &m, &e);
        ds4_sbuf_free(&out);
        free(s);
        return 0;
    }
    bool thinking = mode & 1;
    ds4_parse_result r;
    ds4_dsml_parse(s, n, thinking, &r);
    if (!r.content) abort();
    if (!r.ok && r.content_len != n) abort();
    ds4_parse_result_free(&r);
    acc a, b;
    stream(s, n, thinking, n ? n : 1, &a, NULL);
    stream(s, n, thinking, 1 + (mode >> 1) % 7, &b, NULL);
    if (!eq(&a.r, &b.r) || !eq(&a.t, &b.t) || !eq(&a.a, &b.a) || a.starts != b.starts || a.ends != b.ends) {
        fprintf(stderr, "stream events depend on the split\n");
        abort();
    }
    ds4_sbuf_free(&a.r); ds4_sbuf_free(&a.t); ds4_sbuf_free(&a.a);
    ds4_sbuf_free(&b.r); ds4_sbuf_free(&b.t); ds4_sbuf_free(&b.a);
    /* with a stop string: only checks memory safety */
    stream(s, n, thinking, 3, &a, "</");
    ds4_sbuf_free(&a.r); ds4_sbuf_free(&a.t); ds4_sbuf_free(&a.a);
    free(s);
    return 0;
}
