/* snapshot.c - session snapshots in the "DSV4" payload layout of
 * spec/model.md §5.5 (13 u32 header, token ids, logits, row counters, then per
 * layer the raw rows oldest first and the compressed rows and frontiers).
 * Loading checks every header field against this session and the exact total
 * length before touching the session, so a bad blob leaves it unchanged. */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

#define DSV4_MAGIC 0x34565344u
#define DSV4_VERSION 1u

static size_t payload_size(const ds4_session *s, uint32_t p, const uint32_t *n_comp, const uint32_t *n_idx) {
    const ds4_config *c = &s->m->cfg;
    const uint32_t raw_rows = p < s->raw_window ? p : s->raw_window;
    size_t floats = 0;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        const ds4_kv_geom g = ds4_kv_geometry(c, s->ctx, s->raw_window, il);
        floats += (size_t)raw_rows * c->head_dim + n_comp[il] * g.row + 2 * g.frontier + n_idx[il] * g.irow +
                  2 * g.ifrontier;
    }
    return 13 * 4 + (size_t)p * 4 + (size_t)c->n_vocab * 4 + (size_t)c->n_layer * 8 + floats * 4;
}

/* The per-layer part of the payload, in file order: raw rows, compressed rows,
 * SV, SK, indexer rows, indexer SV, SK (absent parts have length 0). */
typedef struct layer_parts {
    float *ptr[7];
    size_t floats[7];
} layer_parts;

static layer_parts parts_of(const ds4_session *s, uint32_t il, const ds4_kv_view *v) {
    const ds4_kv_geom g = ds4_kv_geometry(&s->m->cfg, s->ctx, s->raw_window, il);
    layer_parts lp = {{v->raw, v->comp, v->cmp_sv, v->cmp_sk, v->idx, v->icmp_sv, v->icmp_sk},
                      {(size_t)v->n_raw * s->m->cfg.head_dim, v->n_comp * g.row, g.frontier, g.frontier,
                       v->n_idx * g.irow, g.ifrontier, g.ifrontier}};
    return lp;
}

/* Host buffers for one layer's view, sized for the largest layer. */
typedef struct view_buf {
    ds4_kv_view v;
    float *mem;
} view_buf;

static int view_alloc(const ds4_session *s, uint32_t max_comp, view_buf *b, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    const size_t D = c->head_dim, ID = c->idx_head_dim;
    const size_t fr = 128 * D; /* largest frontier: ratio 128 (128 × D) vs ratio 4 (8 × 2D) */
    const size_t total = (size_t)s->raw_window * D + (size_t)max_comp * D + 2 * fr + (size_t)max_comp * ID + 2 * 16 * ID;
    b->mem = malloc(sizeof(float) * (total ? total : 1));
    if (!b->mem) return ds4_errf(err, "out of memory for a snapshot buffer");
    float *o = b->mem;
    b->v.raw = o; o += (size_t)s->raw_window * D;
    b->v.comp = o; o += (size_t)max_comp * D;
    b->v.cmp_sv = o; o += fr;
    b->v.cmp_sk = o; o += fr;
    b->v.idx = o; o += (size_t)max_comp * ID;
    b->v.icmp_sv = o; o += 16 * ID;
    b->v.icmp_sk = o;
    return 0;
}

static uint8_t *put(uint8_t *o, const void *src, size_t n) {
    if (n) memcpy(o, src, n);
    return o + n;
}

int ds4_session_save(const ds4_session *s, uint8_t **blob, size_t *len, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    const ds4_backend *be = s->m->be;
    const uint32_t p = (uint32_t)s->n, raw_rows = p < s->raw_window ? p : s->raw_window;
    uint32_t *n_comp = calloc(c->n_layer, 4), *n_idx = calloc(c->n_layer, 4);
    if (!n_comp || !n_idx) { free(n_comp); free(n_idx); return ds4_errf(err, "out of memory"); }
    uint32_t max_comp = 0;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        be->kv_counts(s, il, &n_comp[il], &n_idx[il]);
        if (n_comp[il] > max_comp) max_comp = n_comp[il];
    }
    const size_t sz = payload_size(s, p, n_comp, n_idx);
    view_buf vb;
    uint8_t *buf = malloc(sz), *o = buf;
    if (!buf || view_alloc(s, max_comp, &vb, err)) {
        free(buf); free(n_comp); free(n_idx);
        return ds4_errf(err, "out of memory for a %zu-byte snapshot", sz);
    }
    const uint32_t hdr[13] = {DSV4_MAGIC, DSV4_VERSION, (uint32_t)s->ctx, (uint32_t)s->chunk, s->raw_window,
                              s->raw_window, (uint32_t)(s->ctx / 4 + 2), p, c->n_layer, c->head_dim,
                              c->idx_head_dim, c->n_vocab, raw_rows};
    o = put(o, hdr, sizeof hdr);
    o = put(o, s->tokens, (size_t)p * 4);
    o = put(o, s->logits, (size_t)c->n_vocab * 4);
    o = put(o, n_comp, (size_t)c->n_layer * 4);
    o = put(o, n_idx, (size_t)c->n_layer * 4);
    int rc = 0;
    for (uint32_t il = 0; il < c->n_layer && rc == 0; il++) {
        vb.v.n_raw = raw_rows;
        vb.v.n_comp = n_comp[il];
        vb.v.n_idx = n_idx[il];
        if ((rc = be->kv_export(s, il, &vb.v, err))) break;
        const layer_parts lp = parts_of(s, il, &vb.v);
        for (int i = 0; i < 7; i++) o = put(o, lp.ptr[i], lp.floats[i] * 4);
    }
    free(vb.mem);
    free(n_comp);
    free(n_idx);
    if (rc) { free(buf); return -1; }
    *blob = buf;
    *len = sz;
    return 0;
}

int ds4_session_load(ds4_session *s, const uint8_t *blob, size_t len, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    uint32_t hdr[13];
    if (len < sizeof hdr) return ds4_errf(err, "snapshot: %zu bytes: expected at least a 52-byte header", len);
    memcpy(hdr, blob, sizeof hdr);
    if (hdr[0] != DSV4_MAGIC) return ds4_errf(err, "snapshot: magic 0x%08x: expected 0x%08x (\"DSV4\")", hdr[0], DSV4_MAGIC);
    if (hdr[1] != DSV4_VERSION) return ds4_errf(err, "snapshot: version %u: expected %u", hdr[1], DSV4_VERSION);
    const uint32_t p = hdr[7];
    const struct { const char *what; uint32_t got, want; } chk[] = {
        {"raw window", hdr[5], s->raw_window},
        {"layer count", hdr[8], c->n_layer}, {"head width", hdr[9], c->head_dim},
        {"indexer head width", hdr[10], c->idx_head_dim}, {"vocabulary size", hdr[11], c->n_vocab},
        {"raw rows", hdr[12], p < s->raw_window ? p : s->raw_window},
    };
    for (size_t i = 0; i < sizeof chk / sizeof chk[0]; i++)
        if (chk[i].got != chk[i].want)
            return ds4_errf(err, "snapshot: %s %u: expected %u for this model and context", chk[i].what, chk[i].got,
                            chk[i].want);
    if (p > (uint32_t)s->ctx) return ds4_errf(err, "snapshot: %u tokens: expected at most the context size %d", p, s->ctx);
    const size_t fixed = sizeof hdr + (size_t)p * 4 + (size_t)c->n_vocab * 4 + (size_t)c->n_layer * 8;
    if (len < fixed) return ds4_errf(err, "snapshot: %zu bytes: truncated (header says %u tokens)", len, p);
    const uint8_t *in = blob + sizeof hdr;
    uint32_t *n_comp = malloc((size_t)c->n_layer * 4), *n_idx = malloc((size_t)c->n_layer * 4);
    if (!n_comp || !n_idx) { free(n_comp); free(n_idx); return ds4_errf(err, "out of memory"); }
    memcpy(n_comp, in + (size_t)p * 4 + (size_t)c->n_vocab * 4, (size_t)c->n_layer * 4);
    memcpy(n_idx, in + (size_t)p * 4 + (size_t)c->n_vocab * 4 + (size_t)c->n_layer * 4, (size_t)c->n_layer * 4);
    int bad = 0;
    for (uint32_t il = 0; il < c->n_layer && !bad; il++) {
        const uint32_t r = c->compress_ratio[il];
        const uint32_t want = r ? p / r : 0;
        if (n_comp[il] != want || n_idx[il] != (r == 4 ? want : 0)) {
            ds4_errf(err, "snapshot: layer %u row counts %u/%u: expected %u/%u for %u tokens", il, n_comp[il],
                     n_idx[il], want, r == 4 ? want : 0, p);
            bad = 1;
        }
    }
    if (!bad && payload_size(s, p, n_comp, n_idx) != len) {
        ds4_errf(err, "snapshot: %zu bytes: expected %zu for its header", len, payload_size(s, p, n_comp, n_idx));
        bad = 1;
    }
    for (uint32_t i = 0; !bad && i < p; i++) {
        int32_t t;
        memcpy(&t, in + (size_t)i * 4, 4);
        if (t < 0 || (uint32_t)t >= c->n_vocab) {
            ds4_errf(err, "snapshot: token %u = %d: expected 0..%u", i, t, c->n_vocab - 1);
            bad = 1;
        }
    }
    uint32_t max_comp = 0;
    for (uint32_t il = 0; il < c->n_layer; il++) if (n_comp[il] > max_comp) max_comp = n_comp[il];
    view_buf vb = {0};
    if (bad || view_alloc(s, max_comp, &vb, err)) { free(n_comp); free(n_idx); return -1; }

    ds4_session_reset(s); /* also drops the mark */
    memcpy(s->tokens, in, (size_t)p * 4);
    in += (size_t)p * 4;
    memcpy(s->logits, in, (size_t)c->n_vocab * 4);
    in += (size_t)c->n_vocab * 4 + (size_t)c->n_layer * 8;
    s->n = (int)p;
    const uint32_t raw_rows = p < s->raw_window ? p : s->raw_window;
    int rc = 0;
    for (uint32_t il = 0; il < c->n_layer && rc == 0; il++) {
        vb.v.n_raw = raw_rows;
        vb.v.n_comp = n_comp[il];
        vb.v.n_idx = n_idx[il];
        const layer_parts lp = parts_of(s, il, &vb.v);
        for (int i = 0; i < 7; i++) {
            if (lp.floats[i]) memcpy(lp.ptr[i], in, lp.floats[i] * 4);
            in += lp.floats[i] * 4;
        }
        rc = s->m->be->kv_import(s, il, &vb.v, err);
    }
    free(vb.mem);
    free(n_comp);
    free(n_idx);
    if (rc) { ds4_session_reset(s); return -1; }
    return 0;
}
