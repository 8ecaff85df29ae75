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

static ds4_kv_geom geom(const ds4_session *s, uint32_t il) {
    return ds4_kv_geometry(&s->m->cfg, s->ctx, s->raw_window, il);
}

/* Empty frontier: value 0, score -1e30 ("minus infinity", spec §4.6.4). */
static void frontier_reset(float *sv, float *sk, size_t n) {
    if (!n) return;
    memset(sv, 0, sizeof(float) * n);
    for (size_t i = 0; i < n; i++) sk[i] = -1e30f;
}

static void cpu_session_reset(ds4_session *s) {
    ds4_cpu_session *cs = ds4_cpu(s);
    for (uint32_t il = 0; il < s->m->cfg.n_layer; il++) {
        const ds4_kv_geom g = geom(s, il);
        ds4_layer_kv *k = &cs->kv[il];
        k->n_comp = k->n_idx = 0;
        frontier_reset(k->cmp_sv, k->cmp_sk, g.frontier);
        frontier_reset(k->icmp_sv, k->icmp_sk, g.ifrontier);
    }
}

/* Allocates the arrays of one layer for geometry g (frontiers and, unless
 * frontiers_only, the raw window and the row caches); 0 or -1. */
static int layer_alloc(ds4_layer_kv *k, const ds4_kv_geom *g, int frontiers_only) {
    const int has_c = g->frontier > 0, has_i = g->ifrontier > 0;
    if (!(k->raw = falloc(g->raw))) return -1;
    if (has_c && (!(k->cmp_sv = falloc(g->frontier)) || !(k->cmp_sk = falloc(g->frontier)))) return -1;
    if (has_i && (!(k->icmp_sv = falloc(g->ifrontier)) || !(k->icmp_sk = falloc(g->ifrontier)))) return -1;
    if (frontiers_only) return 0;
    if (has_c && !(k->comp = falloc(g->comp_cap * g->row))) return -1;
    if (has_i && !(k->idx = falloc(g->idx_cap * g->irow))) return -1;
    return 0;
}

static int cpu_session_init(ds4_session *s, ds4_err *err) {
    ds4_cpu_session *cs = calloc(1, sizeof *cs);
    if (!cs) return ds4_errf(err, "out of memory");
    s->be = cs;
    cs->raw_cap = s->raw_window;
    cs->comp_cap = (uint32_t)(s->ctx / 4 + 2);
    cs->kv = calloc(s->m->cfg.n_layer, sizeof *cs->kv);
    int bad = !cs->kv;
    for (uint32_t il = 0; !bad && il < s->m->cfg.n_layer; il++) {
        const ds4_kv_geom g = geom(s, il);
        bad = layer_alloc(&cs->kv[il], &g, 0);
    }
    if (bad) {
        cpu_session_free(s);
        return ds4_errf(err, "out of memory for the KV cache of a %d-token context", s->ctx);
    }
    cpu_session_reset(s);
    return 0;
}

static void cpu_kv_counts(const ds4_session *s, uint32_t il, uint32_t *n_comp, uint32_t *n_idx) {
    *n_comp = ds4_cpu(s)->kv[il].n_comp;
    *n_idx = ds4_cpu(s)->kv[il].n_idx;
}

/* Copies everything but the raw window between a live layer and another
 * ds4_layer_kv laid out the same way (a mark, or the view's arrays). */
static void copy_frontiers(ds4_layer_kv *dst, const ds4_layer_kv *src, const ds4_kv_geom *g) {
    if (g->frontier) {
        memcpy(dst->cmp_sv, src->cmp_sv, sizeof(float) * g->frontier);
        memcpy(dst->cmp_sk, src->cmp_sk, sizeof(float) * g->frontier);
    }
    if (g->ifrontier) {
        memcpy(dst->icmp_sv, src->icmp_sv, sizeof(float) * g->ifrontier);
        memcpy(dst->icmp_sk, src->icmp_sk, sizeof(float) * g->ifrontier);
    }
    dst->n_comp = src->n_comp;
    dst->n_idx = src->n_idx;
}

static int cpu_kv_export(const ds4_session *s, uint32_t il, ds4_kv_view *v, ds4_err *err) {
    const ds4_cpu_session *cs = ds4_cpu(s);
    const ds4_layer_kv *k = &cs->kv[il];
    const ds4_kv_geom g = geom(s, il);
    const uint32_t D = s->m->cfg.head_dim;
    (void)err;
    for (uint32_t i = 0; i < v->n_raw; i++) {
        const uint32_t pos = (uint32_t)s->n - v->n_raw + i;
        memcpy(v->raw + (size_t)i * D, k->raw + (size_t)(pos % cs->raw_cap) * D, sizeof(float) * D);
    }
    ds4_layer_kv out = {.cmp_sv = v->cmp_sv, .cmp_sk = v->cmp_sk, .icmp_sv = v->icmp_sv, .icmp_sk = v->icmp_sk};
    copy_frontiers(&out, k, &g);
    if (g.row) memcpy(v->comp, k->comp, sizeof(float) * k->n_comp * g.row);
    if (g.irow) memcpy(v->idx, k->idx, sizeof(float) * k->n_idx * g.irow);
    return 0;
}

/* s->n is already the snapshot's token count when this runs. */
static int cpu_kv_import(ds4_session *s, uint32_t il, const ds4_kv_view *v, ds4_err *err) {
    ds4_cpu_session *cs = ds4_cpu(s);
    ds4_layer_kv *k = &cs->kv[il];
    const ds4_kv_geom g = geom(s, il);
    const uint32_t D = s->m->cfg.head_dim;
    if (v->n_comp > g.comp_cap || v->n_idx > g.idx_cap)
        return ds4_errf(err, "snapshot: layer %u: %u compressed rows do not fit the context", il, v->n_comp);
    for (uint32_t i = 0; i < v->n_raw; i++) {
        const uint32_t pos = (uint32_t)s->n - v->n_raw + i;
        memcpy(k->raw + (size_t)(pos % cs->raw_cap) * D, v->raw + (size_t)i * D, sizeof(float) * D);
    }
    const ds4_layer_kv in = {.cmp_sv = v->cmp_sv, .cmp_sk = v->cmp_sk, .icmp_sv = v->icmp_sv,
                             .icmp_sk = v->icmp_sk, .n_comp = v->n_comp, .n_idx = v->n_idx};
    copy_frontiers(k, &in, &g);
    if (g.row) memcpy(k->comp, v->comp, sizeof(float) * v->n_comp * g.row);
    if (g.irow) memcpy(k->idx, v->idx, sizeof(float) * v->n_idx * g.irow);
    return 0;
}

static int cpu_mark_save(ds4_session *s, ds4_err *err) {
    ds4_cpu_session *cs = ds4_cpu(s);
    const uint32_t L = s->m->cfg.n_layer;
    if (!cs->mark) {
        int bad = !(cs->mark = calloc(L, sizeof *cs->mark));
        for (uint32_t il = 0; !bad && il < L; il++) {
            const ds4_kv_geom g = geom(s, il);
            bad = layer_alloc(&cs->mark[il], &g, 1);
        }
        if (bad) {
            free_layers(cs->mark, L);
            cs->mark = NULL;
            return ds4_errf(err, "out of memory for a session mark");
        }
    }
    for (uint32_t il = 0; il < L; il++) {
        const ds4_kv_geom g = geom(s, il);
        memcpy(cs->mark[il].raw, cs->kv[il].raw, sizeof(float) * g.raw);
        copy_frontiers(&cs->mark[il], &cs->kv[il], &g);
    }
    return 0;
}

static void cpu_mark_restore(ds4_session *s) {
    ds4_cpu_session *cs = ds4_cpu(s);
    for (uint32_t il = 0; il < s->m->cfg.n_layer; il++) {
        const ds4_kv_geom g = geom(s, il);
        memcpy(cs->kv[il].raw, cs->mark[il].raw, sizeof(float) * g.raw);
        copy_frontiers(&cs->kv[il], &cs->mark[il], &g);
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
