/* fuzz_tokenizer.c - libFuzzer target for the tokenizer: any bytes through
 * encode_text and encode_rendered must round-trip through decode, and the
 * streaming detokenizer must release exactly the same bytes. Aborts on any
 * mismatch so the fuzzer reports it. Run from the repository root (the V4
 * vocabulary is built from tests/data/tokenizer/tokenizer.json once). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/text.h"

static ds4_vocab *vocab(void) {
    static ds4_vocab *v;
    if (!v) {
        ds4_err e = {{0}};
        v = ds4_vocab_from_hf_json("tests/data/tokenizer/tokenizer.json", &e);
        if (!v) { fprintf(stderr, "fuzz_tokenizer: %s\n", e.msg); abort(); }
    }
    return v;
}

static void round_trip(const ds4_vocab *v, const char *s, size_t n, int rendered) {
    ds4_tokens t = {0};
    ds4_err e = {{0}};
    int rc = rendered ? ds4_encode_rendered(v, s, n, &t, &e) : ds4_encode_text(v, s, n, &t, &e);
    if (rc < 0) { fprintf(stderr, "encode failed: %s\n", e.msg); abort(); }
    ds4_sbuf b = {0};
    if (ds4_decode(v, t.ids, t.n, &b) < 0) abort();
    if (b.len != n || (n && memcmp(b.p, s, n) != 0)) { fprintf(stderr, "round trip differs\n"); abort(); }
    ds4_detok d;
    ds4_detok_init(&d, v);
    ds4_sbuf st = {0};
    for (size_t i = 0; i < t.n; i++) {
        size_t before = st.len;
        ds4_detok_push(&d, t.ids[i], &st);
        if (d.pend.len > 3) abort();
        (void)before;
    }
    ds4_detok_flush(&d, &st);
    if (st.len != n || (n && memcmp(st.p, s, n) != 0)) { fprintf(stderr, "streamed decode differs\n"); abort(); }
    ds4_detok_free(&d);
    ds4_sbuf_free(&st);
    ds4_sbuf_free(&b);
    ds4_tokens_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ds4_vocab *v = vocab();
    /* exact-size copy so ASan catches any read past the end */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    round_trip(v, s, size, 0);
    round_trip(v, s, size, 1);
    free(s);
    return 0;
}
