/* backend_cpu.c - the CPU backend's vtable: host KV caches (allocation,
 * reset, export to and import from the snapshot view) and the forward pass
 * of cpu/forward.c. Weights are used in place from the mmap. */
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu.h"

static int cpu_model_init(ds4_model *m, ds4_err *err) { (void)m; (void)err; return 0; }
static void cpu_model_free(ds4_model *m) { (void)m; }

static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void free_layers(ds4_layer_kv *kv, uint32_t n_layer) {
    if (!kv) return;
    for (uint32_t il = 0; il < n_layer; il++) {
        ds4_layer_kv *k = &kv[il];
        free(k->raw); free(k->comp); free(k->cmp_sv); free(k->cmp_sk);
        free(k->idx); free(k->icmp_sv); free(k->icmp_sk);
    }
    free(kv);
}

static void cpu_session_free(ds4_session *s) {
    ds4_cpu_session *cs = ds4_cpu(s);
    if (!cs) return;
    free_layers(cs->kv, s->m->cfg.n_layer);
    free_layers(cs->mark, s->m->cfg.n_layer);
    free(cs);
    s->be = NULL;
}

static void cpu_session_reset(ds4_session *s) {
    const ds4_config *c = &s->m->cfg;
    ds4_cpu_session *cs = ds4_cpu(s);
    for (uint32_t il = 0; il < c->n_layer; il++) {
        ds4_layer_kv *k = &cs->kv[il];
        const uint32_t r = c->compress_ratio[il];
        k->n_comp = k->n_idx = 0;
        if (r) {
            const size_t n = (size_t)ds4_cmp_rows(r) * ds4_cmp_lanes(r) * c->head_dim;
            memset(k->cmp_sv, 0, sizeof(float) * n);
            for (size_t i = 0; i < n; i++) k->cmp_sk[i] = -1e30f;
        }
        if (r == 4) {
            const size_t n = 8 * 2 * (size_t)c->idx_head_dim;
            memset(k->icmp_sv, 0, sizeof(float) * n);
            for (size_t i = 0; i < n; i++) k->icmp_sk[i] = -1e30f;
        }
    }
}

static int cpu_session_init(ds4_session *s, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    ds4_cpu_session *cs = calloc(1, sizeof *cs);
    if (!cs) return ds4_errf(err, "out of memory");
    s->be = cs;
    cs->raw_cap = s->raw_window;
    cs->comp_cap = (uint32_t)(s->ctx / 4 + 2);
    cs->kv = calloc(c->n_layer, sizeof *cs->kv);
    if (!cs->kv) goto oom;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        ds4_layer_kv *k = &cs->kv[il];
        const uint32_t r = c->compress_ratio[il], D = c->head_dim;
        if (!(k->raw = falloc((size_t)cs->raw_cap * D))) goto oom;
        if (r) {
            const size_t cap = (size_t)s->ctx / r + 2, Wc = (size_t)ds4_cmp_lanes(r) * D, rows = ds4_cmp_rows(r);
            if (!(k->comp = falloc(cap * D)) || !(k->cmp_sv = falloc(rows * Wc)) || !(k->cmp_sk = falloc(rows * Wc)))
                goto oom;
        }
        if (r == 4) {
            const size_t cap = (size_t)s->ctx / 4 + 2, Wi = 2 * (size_t)c->idx_head_dim;
            if (!(k->idx = falloc(cap * c->idx_head_dim)) || !(k->icmp_sv = falloc(8 * Wi)) ||
                !(k->icmp_sk = falloc(8 * Wi)))
                goto oom;
        }
    }
    cpu_session_reset(s);
    return 0;
oom:
    cpu_session_free(s);
    return ds4_errf(err, "out of memory for the KV cache of a %d-token context", s->ctx);
}

static void cpu_kv_counts(const ds4_session *s, uint32_t il, uint32_t *n_comp, uint32_t *n_idx) {
    *n_comp = ds4_cpu(s)->kv[il].n_comp;
    *n_idx = ds4_cpu(s)->kv[il].n_idx;
}

static int cpu_kv_export(const ds4_session *s, uint32_t il, ds4_kv_view *v, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    const ds4_cpu_session *cs = ds4_cpu(s);
    const ds4_layer_kv *k = &cs->kv[il];
    const uint32_t r = c->compress_ratio[il], D = c->head_dim;
    (void)err;
    for (uint32_t i = 0; i < v->n_raw; i++) {
        const uint32_t pos = (uint32_t)s->n - v->n_raw + i;
        memcpy(v->raw + (size_t)i * D, k->raw + (size_t)(pos % cs->raw_cap) * D, sizeof(float) * D);
    }
    if (r) {
        const size_t fr = (size_t)ds4_cmp_rows(r) * ds4_cmp_lanes(r) * D;
        memcpy(v->comp, k->comp, sizeof(float) * k->n_comp * D);
        memcpy(v->cmp_sv, k->cmp_sv, sizeof(float) * fr);
        memcpy(v->cmp_sk, k->cmp_sk, sizeof(float) * fr);
    }
    if (r == 4) {
        const size_t fi = 8 * 2 * (size_t)c->idx_head_dim;
        memcpy(v->idx, k->idx, sizeof(float) * k->n_idx * c->idx_head_dim);
        memcpy(v->icmp_sv, k->icmp_sv, sizeof(float) * fi);
        memcpy(v->icmp_sk, k->icmp_sk, sizeof(float) * fi);
    }
    return 0;
}

/* s->n is already the snapshot's token count when this runs. */
static int cpu_kv_import(ds4_session *s, uint32_t il, const ds4_kv_view *v, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    ds4_cpu_session *cs = ds4_cpu(s);
    ds4_layer_kv *k = &cs->kv[il];
    const uint32_t r = c->compress_ratio[il], D = c->head_dim;
    if (v->n_comp > (r ? (uint32_t)s->ctx / r + 2 : 0) || v->n_idx > (r == 4 ? cs->comp_cap : 0))
        return ds4_errf(err, "snapshot: layer %u: %u compressed rows do not fit the context", il, v->n_comp);
    for (uint32_t i = 0; i < v->n_raw; i++) {
        const uint32_t pos = (uint32_t)s->n - v->n_raw + i;
        memcpy(k->raw + (size_t)(pos % cs->raw_cap) * D, v->raw + (size_t)i * D, sizeof(float) * D);
    }
    k->n_comp = v->n_comp;
    k->n_idx = v->n_idx;
    if (r) {
        const size_t fr = (size_t)ds4_cmp_rows(r) * ds4_cmp_lanes(r) * D;
        memcpy(k->comp, v->comp, sizeof(float) * v->n_comp * D);
        memcpy(k->cmp_sv, v->cmp_sv, sizeof(float) * fr);
        memcpy(k->cmp_sk, v->cmp_sk, sizeof(float) * fr);
    }
    if (r == 4) {
        const size_t fi = 8 * 2 * (size_t)c->idx_head_dim;
        memcpy(k->idx, v->idx, sizeof(float) * v->n_idx * c->idx_head_dim);
        memcpy(k->icmp_sv, v->icmp_sv, sizeof(float) * fi);
        memcpy(k->icmp_sk, v->icmp_sk, sizeof(float) * fi);
    }
    return 0;
}

/* Sizes of the parts a mark copies, per layer: raw ring, attention and
 * indexer frontiers (each SV and SK). */
static void mark_sizes(const ds4_session *s, uint32_t il, size_t *raw, size_t *fr, size_t *fi) {
    const ds4_config *c = &s->m->cfg;
    const uint32_t r = c->compress_ratio[il];
    *raw = (size_t)ds4_cpu(s)->raw_cap * c->head_dim;
    *fr = r ? (size_t)ds4_cmp_rows(r) * ds4_cmp_lanes(r) * c->head_dim : 0;
    *fi = r == 4 ? 8 * 2 * (size_t)c->idx_head_dim : 0;
}

static int cpu_mark_save(ds4_session *s, ds4_err *err) {
    ds4_cpu_session *cs = ds4_cpu(s);
    const uint32_t L = s->m->cfg.n_layer;
    if (!cs->mark) {
        cs->mark = calloc(L, sizeof *cs->mark);
        for (uint32_t il = 0; cs->mark && il < L; il++) {
            size_t raw, fr, fi;
            mark_sizes(s, il, &raw, &fr, &fi);
            ds4_layer_kv *k = &cs->mark[il];
            k->raw = falloc(raw);
            k->cmp_sv = falloc(fr);
            k->cmp_sk = falloc(fr);
            k->icmp_sv = falloc(fi);
            k->icmp_sk = falloc(fi);
            if (!k->raw || !k->cmp_sv || !k->cmp_sk || !k->icmp_sv || !k->icmp_sk) {
                free_layers(cs->mark, L);
                cs->mark = NULL;
            }
        }
        if (!cs->mark) return ds4_errf(err, "out of memory for a session mark");
    }
    for (uint32_t il = 0; il < L; il++) {
        size_t raw, fr, fi;
        mark_sizes(s, il, &raw, &fr, &fi);
        const ds4_layer_kv *k = &cs->kv[il];
        ds4_layer_kv *m = &cs->mark[il];
        memcpy(m->raw, k->raw, sizeof(float) * raw);
        if (fr) { memcpy(m->cmp_sv, k->cmp_sv, sizeof(float) * fr); memcpy(m->cmp_sk, k->cmp_sk, sizeof(float) * fr); }
        if (fi) { memcpy(m->icmp_sv, k->icmp_sv, sizeof(float) * fi); memcpy(m->icmp_sk, k->icmp_sk, sizeof(float) * fi); }
        m->n_comp = k->n_comp;
        m->n_idx = k->n_idx;
    }
    return 0;
}

static void cpu_mark_restore(ds4_session *s) {
    ds4_cpu_session *cs = ds4_cpu(s);
    for (uint32_t il = 0; il < s->m->cfg.n_layer; il++) {
        size_t raw, fr, fi;
        mark_sizes(s, il, &raw, &fr, &fi);
        ds4_layer_kv *k = &cs->kv[il];
        const ds4_layer_kv *m = &cs->mark[il];
        memcpy(k->raw, m->raw, sizeof(float) * raw);
        if (fr) { memcpy(k->cmp_sv, m->cmp_sv, sizeof(float) * fr); memcpy(k->cmp_sk, m->cmp_sk, sizeof(float) * fr); }
        if (fi) { memcpy(k->icmp_sv, m->icmp_sv, sizeof(float) * fi); memcpy(k->icmp_sk, m->icmp_sk, sizeof(float) * fi); }
        k->n_comp = m->n_comp;
        k->n_idx = m->n_idx;
    }
}

const ds4_backend ds4_backend_cpu = {
    .name = "cpu",
    .model_init = cpu_model_init,
    .model_free = cpu_model_free,
    .session_init = cpu_session_init,
    .session_free = cpu_session_free,
    .session_reset = cpu_session_reset,
    .forward = ds4_cpu_forward,
    .kv_counts = cpu_kv_counts,
    .kv_export = cpu_kv_export,
    .kv_import = cpu_kv_import,
    .mark_save = cpu_mark_save,
    .mark_restore = cpu_mark_restore,
};
