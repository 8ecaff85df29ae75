/* detok.c - ids -> bytes (spec/text.md §1.8) and the streaming decoder that
 * never releases half a UTF-8 character. Token bytes are precomputed at vocab
 * build time, so decoding is a table copy. */
#include <string.h>

#include "text/vocab_internal.h"

int ds4_token_bytes(const ds4_vocab *v, int32_t id, ds4_sbuf *out) {
    if (id < 0 || (size_t)id >= v->n) return -1;
    ds4_sbuf_add(out, v->byte_arena + v->byte_off[id], v->byte_len[id]);
    return 0;
}

int ds4_decode(const ds4_vocab *v, const int32_t *ids, size_t n, ds4_sbuf *out) {
    int rc = 0;
    for (size_t i = 0; i < n; i++) if (ds4_token_bytes(v, ids[i], out) < 0) rc = -1;
    return rc;
}

static size_t lead_len(unsigned char c) {
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

size_t ds4_utf8_holdback(const char *buf, size_t n) {
    const unsigned char *b = (const unsigned char *)buf;
    size_t cont = 0;
    while (cont < 4 && cont < n && (b[n - 1 - cont] & 0xC0) == 0x80) cont++;
    if (cont == 0) return n && lead_len(b[n - 1]) ? 1 : 0;
    if (cont == n) return cont < 4 ? cont : 0; /* continuation bytes reach the start: hold them */
    size_t need = lead_len(b[n - 1 - cont]);
    if (need && need > cont + 1) return cont + 1;
    return 0;
}

void ds4_detok_init(ds4_detok *d, const ds4_vocab *v) {
    memset(d, 0, sizeof *d);
    d->v = v;
}

int ds4_detok_push(ds4_detok *d, int32_t id, ds4_sbuf *out) {
    int rc = ds4_token_bytes(d->v, id, &d->pend);
    size_t hold = ds4_utf8_holdback(d->pend.p ? d->pend.p : "", d->pend.len);
    ds4_sbuf_add(out, d->pend.p, d->pend.len - hold);
    memmove(d->pend.p, d->pend.p + d->pend.len - hold, hold);
    d->pend.len = hold;
    return rc;
}

void ds4_detok_flush(ds4_detok *d, ds4_sbuf *out) {
    ds4_sbuf_add(out, d->pend.p, d->pend.len);
    ds4_sbuf_clear(&d->pend);
}

void ds4_detok_free(ds4_detok *d) { ds4_sbuf_free(&d->pend); }
