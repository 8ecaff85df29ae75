/* backend_cuda.c - the CUDA backend's vtable: the weights' device copy (the
 * whole tensor data section in one allocation, so a weight's device address
 * is its file offset), device KV caches (allocation, reset, export to and
 * import from the snapshot view) and the forward pass of cuda/forward.c. */
#ifdef DS4_HAVE_CUDA
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/cuda.h"
#include "engine/cuda/ops.h"

static int cu_model_init(ds4_model *m, ds4_err *err) {
    if (ds4cu_init()) return ds4_errf(err, "--backend cuda: %s", ds4cu_error());
    cu_model *cm = calloc(1, sizeof *cm);
    if (!cm) return ds4_errf(err, "out of memory");
    const gguf_file *f = m->gguf;
    cm->hbase = f->base + f->data_offset;
    cm->bytes = f->size - f->data_offset;
    cm->dbase = ds4cu_malloc(cm->bytes + 256); /* kernels may read up to 15 bytes past a row in 16-byte loads */
    if (!cm->dbase) {
        free(cm);
        return ds4_errf(err, "%s: cannot allocate %llu bytes of GPU memory for the weights: %s", f->path,
                        (unsigned long long)(f->size - f->data_offset), ds4cu_error());
    }
    /* In pieces, so a huge mapping is faulted in gradually. */
    const uint64_t piece = 256ull << 20;
    for (uint64_t o = 0; o < cm->bytes; o += piece) {
        const uint64_t len = cm->bytes - o < piece ? cm->bytes - o : piece;
        if (ds4cu_h2d(cm->dbase + o, cm->hbase + o, len)) {
            ds4cu_free(cm->dbase);
            free(cm);
            return ds4_errf(err, "%s: copying the weights to the GPU: %s", f->path, ds4cu_error());
        }
    }
    m->be_model = cm;
    return 0;
}

static void cu_model_free(ds4_model *m) {
    cu_model *cm = cu_m(m);
    if (!cm) return;
    ds4cu_free(cm->dbase);
    ds4cu_free(cm->steer);
    free(cm);
    m->be_model = NULL;
}

static void cu_session_free(ds4_session *s) {
    cu_session *cs = cu_s(s);
    if (!cs) return;
    if (cs->kv)
        for (uint32_t il = 0; il < s->m->cfg.n_layer; il++) {
            cu_layer *k = &cs->kv[il];
            float *all[] = {k->raw, k->comp, k->cmp_sv, k->cmp_sk, k->idx, k->icmp_sv, k->icmp_sk};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ds4cu_free(all[i]);
        }
    free(cs->kv);
    ds4cu_free(cs->rope[0]);
    ds4cu_free(cs->rope[1]);
    ds4cu_free(cs->isc);
    ds4cu_free(cs->iflag);
    ds4cu_free(cs->dpos);
    ds4cu_graph_free(cs->graph);
    ds4_cuda_scratch_free(&cs->s);
    free(cs);
    s->be = NULL;
}

static void cu_session_reset(ds4_session *s) {
    const ds4_config *c = &s->m->cfg;
    cu_session *cs = cu_s(s);
    for (uint32_t il = 0; il < c->n_layer; il++) {
        cu_layer *k = &cs->kv[il];
        const uint32_t r = c->compress_ratio[il];
        k->n_comp = k->n_idx = 0;
        if (r) {
            const uint32_t Wc = ds4_cmp_lanes(r) * c->head_dim;
            ds4cu_frontier_reset(k->cmp_sv, k->cmp_sk, 0, (int)ds4_cmp_rows(r), (int)Wc);
        }
        if (r == 4) ds4cu_frontier_reset(k->icmp_sv, k->icmp_sk, 0, 8, (int)(2 * c->idx_head_dim));
    }
    ds4cu_sync();
}

static float *dalloc(size_t n) { return ds4cu_malloc(sizeof(float) * (n ? n : 1)); }

static int cu_session_init(ds4_session *s, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    cu_session *cs = calloc(1, sizeof *cs);
    if (!cs) return ds4_errf(err, "out of memory");
    s->be = cs;
    cs->raw_cap = s->raw_window;
    cs->comp_cap = (uint32_t)(s->ctx / 4 + 2);
    cs->kv = calloc(c->n_layer, sizeof *cs->kv);
    if (!cs->kv) goto oom;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        cu_layer *k = &cs->kv[il];
        const ds4_kv_geom g = ds4_kv_geometry(c, s->ctx, s->raw_window, il);
        if (!(k->raw = dalloc(g.raw))) goto oom;
        if (g.frontier && (!(k->comp = dalloc(g.comp_cap * g.row)) || !(k->cmp_sv = dalloc(g.frontier)) ||
                           !(k->cmp_sk = dalloc(g.frontier))))
            goto oom;
        if (g.ifrontier && (!(k->idx = dalloc(g.idx_cap * g.irow)) || !(k->icmp_sv = dalloc(g.ifrontier)) ||
                            !(k->icmp_sk = dalloc(g.ifrontier))))
            goto oom;
    }
    if (!(cs->rope[0] = dalloc((size_t)s->ctx * c->n_rot)) || !(cs->rope[1] = dalloc((size_t)s->ctx * c->n_rot)) ||
        !(cs->isc = dalloc(cs->comp_cap)) || !(cs->iflag = ds4cu_malloc(sizeof(int32_t) * cs->comp_cap)) ||
        !(cs->dpos = ds4cu_malloc(sizeof(int64_t))))
        goto oom;
    cu_session_reset(s);
    return 0;
oom:
    cu_session_free(s);
    return ds4_errf(err, "out of GPU memory for the KV cache of a %d-token context", s->ctx);
}

static void cu_kv_counts(const ds4_session *s, uint32_t il, uint32_t *n_comp, uint32_t *n_idx) {
    *n_comp = cu_s(s)->kv[il].n_comp;
    *n_idx = cu_s(s)->kv[il].n_idx;
}

static int cu_kv_export(const ds4_session *s, uint32_t il, ds4_kv_view *v, ds4_err *err) {
    const cu_session *cs = cu_s(s);
    const cu_layer *k = &cs->kv[il];
    const ds4_kv_geom g = ds4_kv_geometry(&s->m->cfg, s->ctx, s->raw_window, il);
    const uint32_t D = s->m->cfg.head_dim;
    int rc = 0;
    for (uint32_t i = 0; i < v->n_raw; i++) {
        const uint32_t pos = (uint32_t)s->n - v->n_raw + i;
        rc |= ds4cu_d2h(v->raw + (size_t)i * D, k->raw + (size_t)(pos % cs->raw_cap) * D, sizeof(float) * D);
    }
    if (g.frontier) {
        rc |= ds4cu_d2h(v->comp, k->comp, sizeof(float) * k->n_comp * g.row);
        rc |= ds4cu_d2h(v->cmp_sv, k->cmp_sv, sizeof(float) * g.frontier);
        rc |= ds4cu_d2h(v->cmp_sk, k->cmp_sk, sizeof(float) * g.frontier);
    }
    if (g.ifrontier) {
        rc |= ds4cu_d2h(v->idx, k->idx, sizeof(float) * k->n_idx * g.irow);
        rc |= ds4cu_d2h(v->icmp_sv, k->icmp_sv, sizeof(float) * g.ifrontier);
        rc |= ds4cu_d2h(v->icmp_sk, k->icmp_sk, sizeof(float) * g.ifrontier);
    }
    if (rc) return ds4_errf(err, "snapshot: layer %u: reading the GPU KV cache: %s", il, ds4cu_error());
    return 0;
}

static int cu_kv_import(ds4_session *s, uint32_t il, const ds4_kv_view *v, ds4_err *err) {
    cu_session *cs = cu_s(s);
    cu_layer *k = &cs->kv[il];
    const ds4_kv_geom g = ds4_kv_geometry(&s->m->cfg, s->ctx, s->raw_window, il);
    const uint32_t D = s->m->cfg.head_dim;
    if (v->n_comp > g.comp_cap || v->n_idx > g.idx_cap)
        return ds4_errf(err, "snapshot: layer %u: %u compressed rows do not fit the context", il, v->n_comp);
    int rc = 0;
    for (uint32_t i = 0; i < v->n_raw; i++) {
        const uint32_t pos = (uint32_t)s->n - v->n_raw + i;
        rc |= ds4cu_h2d(k->raw + (size_t)(pos % cs->raw_cap) * D, v->raw + (size_t)i * D, sizeof(float) * D);
    }
    k->n_comp = v->n_comp;
    k->n_idx = v->n_idx;
    if (g.frontier) {
        rc |= ds4cu_h2d(k->comp, v->comp, sizeof(float) * v->n_comp * g.row);
        rc |= ds4cu_h2d(k->cmp_sv, v->cmp_sv, sizeof(float) * g.frontier);
        rc |= ds4cu_h2d(k->cmp_sk, v->cmp_sk, sizeof(float) * g.frontier);
    }
    if (g.ifrontier) {
        rc |= ds4cu_h2d(k->idx, v->idx, sizeof(float) * v->n_idx * g.irow);
        rc |= ds4cu_h2d(k->icmp_sv, v->icmp_sv, sizeof(float) * g.ifrontier);
        rc |= ds4cu_h2d(k->icmp_sk, v->icmp_sk, sizeof(float) * g.ifrontier);
    }
    if (rc) return ds4_errf(err, "snapshot: layer %u: writing the GPU KV cache: %s", il, ds4cu_error());
    return 0;
}

const ds4_backend ds4_backend_cuda = {
    .name = "cuda",
    .model_init = cu_model_init,
    .model_free = cu_model_free,
    .session_init = cu_session_init,
    .session_free = cu_session_free,
    .session_reset = cu_session_reset,
    .forward = ds4_cuda_forward,
    .kv_counts = cu_kv_counts,
    .kv_export = cu_kv_export,
    .kv_import = cu_kv_import,
};
#else
typedef int ds4_cuda_backend_unused;
#endif
