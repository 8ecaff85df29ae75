/* backend_cuda.c - the CUDA backend's vtable: the weights' device copies,
 * device KV caches (allocation, reset, export to and import from the
 * snapshot view) and the forward pass of cuda/forward.c.
 *
 * With one GPU the whole tensor data section is one allocation (a weight's
 * device address is its file offset). With --gpus LIST the layers are split
 * into one contiguous segment per listed device (plan_split: even weight
 * bytes); each device gets only its segment's tensors, and each layer's KV
 * cache lives on the device that runs the layer. */
#ifdef DS4_HAVE_CUDA
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/cuda.h"
#include "engine/cuda/ops.h"

/* --gpus: comma-separated device ordinals, each 0..63, at most DS4CU_MAX_SEG. */
static int parse_gpus(const char *list, int *ids, int *n, ds4_err *err) {
    *n = 0;
    const char *p = list;
    if (!*p) return ds4_errf(err, "--gpus '': empty list (expected device ids like 0,1)");
    for (;;) {
        if (*p < '0' || *p > '9')
            return ds4_errf(err, "--gpus %s: '%s' is not a device id (expected ids like 0,1)", list, p);
        long v = 0;
        while (*p >= '0' && *p <= '9' && v < 1000) v = v * 10 + (*p++ - '0');
        if (v > 63) return ds4_errf(err, "--gpus %s: device id %ld out of range (0..63)", list, v);
        if (*n == DS4CU_MAX_SEG) return ds4_errf(err, "--gpus %s: more than %d devices", list, DS4CU_MAX_SEG);
        ids[(*n)++] = (int)v;
        if (!*p) return 0;
        if (*p != ',' || !p[1])
            return ds4_errf(err, "--gpus %s: unexpected '%s' (expected device ids like 0,1)", list, p);
        p++;
    }
}

/* The layer a tensor belongs to ("blk.N."), or -1 for a global one. */
static int tensor_layer(const gguf_tensor *t, uint32_t n_layer) {
    if (strncmp(t->name, "blk.", 4) != 0) return -1;
    char *end;
    const unsigned long il = strtoul(t->name + 4, &end, 10);
    return end != t->name + 4 && *end == '.' && il < n_layer ? (int)il : -1;
}

/* The segment holding tensor t: its layer's, the embedding on the first,
 * every other global (output head, its norms) on the last. */
static int tensor_seg(const ds4_model *m, const cu_model *cm, const gguf_tensor *t) {
    const int il = tensor_layer(t, m->cfg.n_layer);
    if (il >= 0) return ds4_cuda_layer_seg(m, (uint32_t)il);
    return t->data == m->w.embd.data ? 0 : cm->n_dev - 1;
}

/* Contiguous layer ranges whose weight bytes (plus the embedding on the
 * first and the head on the last) are as even as the layer granularity allows. */
static void plan_split(const ds4_model *m, cu_model *cm) {
    const gguf_file *f = m->gguf;
    const uint32_t L = m->cfg.n_layer;
    const int n = cm->n_dev;
    uint64_t *lb = calloc(L + 1, sizeof *lb), first = 0, total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const int il = tensor_layer(t, L);
        if (il >= 0 && lb) lb[il] += t->nbytes;
        else if (t->data == m->w.embd.data) first += t->nbytes;
        total += t->nbytes;
    }
    uint32_t prev = 0;
    cm->dev[0].l0 = 0;
    for (int k = 1; k < n; k++) {
        const double target = (double)total * k / n;
        uint64_t acc = first;
        for (uint32_t i = 0; i < prev; i++) acc += lb ? lb[i] : 0;
        uint32_t best = prev + 1;
        double best_d = -1;
        for (uint32_t c = prev + 1; c <= L - (uint32_t)(n - k); c++) {
            acc += lb ? lb[c - 1] : 0; /* acc = bytes before layer c */
            const double d = (double)acc > target ? (double)acc - target : target - (double)acc;
            if (best_d < 0 || d < best_d) { best_d = d; best = c; }
        }
        cm->dev[k - 1].l1 = cm->dev[k].l0 = best;
        prev = best;
    }
    cm->dev[n - 1].l1 = L;
    free(lb);
}

static int cmp_range(const void *a, const void *b) {
    const cu_range *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* The merged file ranges of segment k's tensors, copied into one allocation
 * on its device (current). Kernels may read up to 15 bytes past a row in
 * 16-byte loads: every range gets 256 bytes of slack. */
static int upload_segment(const ds4_model *m, cu_model *cm, int k, ds4_err *err) {
    const gguf_file *f = m->gguf;
    cu_dev *d = &cm->dev[k];
    if (cm->n_dev == 1) { /* everything: the section as one range, as it is laid out */
        if (!(d->r = calloc(1, sizeof *d->r))) return ds4_errf(err, "out of memory");
        d->r[0].len = cm->bytes;
        d->n_r = 1;
    } else {
        if (!(d->r = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *d->r))) return ds4_errf(err, "out of memory");
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const gguf_tensor *t = &f->tensors[i];
            if (tensor_seg(m, cm, t) != k || !t->nbytes) continue;
            d->r[d->n_r].off = (uint64_t)(t->data - cm->hbase);
            d->r[d->n_r++].len = t->nbytes;
        }
        qsort(d->r, (size_t)d->n_r, sizeof *d->r, cmp_range);
        int w = 0; /* merge neighbours separated by alignment padding only */
        for (int i = 0; i < d->n_r; i++) {
            if (w && d->r[i].off <= d->r[w - 1].off + d->r[w - 1].len + 4096) {
                const uint64_t end = d->r[i].off + d->r[i].len;
                if (end > d->r[w - 1].off + d->r[w - 1].len) d->r[w - 1].len = end - d->r[w - 1].off;
            } else d->r[w++] = d->r[i];
        }
        d->n_r = w;
    }
    uint64_t bytes = 0;
    for (int i = 0; i < d->n_r; i++) bytes += (d->r[i].len + 256 + 255) & ~(uint64_t)255;
    d->bytes = bytes;
    if (!(d->dbase = ds4cu_malloc(bytes)))
        return ds4_errf(err, "%s: --gpus %s: device %d (layers %u-%u): cannot allocate %llu bytes of GPU memory for "
                        "the weights: %s", f->path, m->gpus[0] ? m->gpus : "0", d->id, d->l0, d->l1 - 1,
                        (unsigned long long)bytes, ds4cu_error());
    uint64_t at = 0;
    for (int i = 0; i < d->n_r; i++) {
        d->r[i].d = d->dbase + at;
        at += (d->r[i].len + 256 + 255) & ~(uint64_t)255;
        /* In pieces, so a huge mapping is faulted in gradually. */
        const uint64_t piece = 256ull << 20;
        for (uint64_t o = 0; o < d->r[i].len; o += piece) {
            const uint64_t len = d->r[i].len - o < piece ? d->r[i].len - o : piece;
            if (ds4cu_h2d(d->r[i].d + o, cm->hbase + d->r[i].off + o, len))
                return ds4_errf(err, "%s: copying the weights to GPU %d: %s", f->path, d->id, ds4cu_error());
        }
    }
    return 0;
}

int ds4_cuda_layer_seg(const ds4_model *m, uint32_t il) {
    const cu_model *cm = cu_m(m);
    for (int k = 0; k < cm->n_dev; k++)
        if (il < cm->dev[k].l1) return k;
    return cm->n_dev - 1;
}

int ds4_cuda_use(const ds4_model *m, cu_session *cs, int seg) {
    cu_model *cm = cu_m(m);
    if (cs && cs->cur != seg) {
        cs->seg[cs->cur].s = cs->s; /* the live copy (hc_post swaps X and X2 in it) */
        cu_seg *g = &cs->seg[seg];
        cs->s = g->s;
        cs->rope[0] = g->rope[0];
        cs->rope[1] = g->rope[1];
        cs->isc = g->isc;
        cs->iflag = g->iflag;
        cs->dpos = g->dpos;
        cs->cur = seg;
    }
    cm->cur = seg;
    cm->steer = cm->dev[seg].steer;
    return ds4cu_use(cm->dev[seg].slot);
}

static void cu_model_free(ds4_model *m);

static int cu_model_init(ds4_model *m, ds4_err *err) {
    const char *list = m->gpus[0] ? m->gpus : "0";
    int ids[DS4CU_MAX_SEG], n = 0;
    if (parse_gpus(list, ids, &n, err)) return -1;
    if ((uint32_t)n > m->cfg.n_layer)
        return ds4_errf(err, "--gpus %s: %d devices for %u layers (at most one device per layer)", list, n,
                        m->cfg.n_layer);
    if (ds4cu_init()) return ds4_errf(err, "%s %s: %s", m->gpus[0] ? "--gpus" : "--backend", m->gpus[0] ? list : "cuda",
                                      ds4cu_error());
    cu_model *cm = calloc(1, sizeof *cm);
    if (!cm) return ds4_errf(err, "out of memory");
    const gguf_file *f = m->gguf;
    cm->hbase = f->base + f->data_offset;
    cm->bytes = f->size - f->data_offset;
    cm->n_dev = n;
    m->be_model = cm;
    for (int k = 0; k < n; k++) {
        int nth = 0; /* --gpus 0,0: the second segment on device 0 gets its own stream */
        for (int j = 0; j < k; j++) nth += ids[j] == ids[k];
        cm->dev[k].id = ids[k];
        if ((cm->dev[k].slot = ds4cu_slot(ids[k], nth)) < 0) {
            ds4_errf(err, "--gpus %s: %s", list, ds4cu_error());
            goto fail;
        }
    }
    plan_split(m, cm);
    for (int k = 0; k < n; k++)
        if (ds4_cuda_use(m, NULL, k) || upload_segment(m, cm, k, err)) {
            if (!err->msg[0]) ds4_errf(err, "--gpus %s: %s", list, ds4cu_error());
            goto fail;
        }
    /* Peer access between neighbours, enabled once here (not mid-forward). */
    for (int k = 1; k < n; k++) ds4cu_direct(cm->dev[k - 1].slot, cm->dev[k].slot);
    for (int k = 0; k < n && n > 1; k++)
        fprintf(stderr, "ds4: --gpus %s: layers %u-%u on GPU %d (%.2f GB of weights)%s\n", list, cm->dev[k].l0,
                cm->dev[k].l1 - 1, cm->dev[k].id, (double)cm->dev[k].bytes / 1e9,
                k == 0 ? ", embedding" : k == n - 1 ? ", output head" : "");
    ds4_cuda_use(m, NULL, 0);
    return 0;
fail:
    cu_model_free(m);
    return -1;
}

static void cu_model_free(ds4_model *m) {
    cu_model *cm = cu_m(m);
    if (!cm) return;
    for (int k = 0; k < cm->n_dev; k++) {
        if (cm->dev[k].slot >= 0 && cm->dev[k].dbase) ds4cu_use(cm->dev[k].slot);
        ds4cu_free(cm->dev[k].dbase);
        ds4cu_free(cm->dev[k].steer);
        free(cm->dev[k].r);
    }
    ds4cu_host_free(cm->stage);
    free(cm);
    m->be_model = NULL;
}

static void mark_free(ds4_session *s) {
    cu_session *cs = cu_s(s);
    if (cs->mark)
        for (uint32_t il = 0; il < s->m->cfg.n_layer; il++) {
            ds4_cuda_use(s->m, NULL, ds4_cuda_layer_seg(s->m, il));
            cu_layer *k = &cs->mark[il];
            float *all[] = {k->raw, k->cmp_sv, k->cmp_sk, k->icmp_sv, k->icmp_sk};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ds4cu_free(all[i]);
        }
    free(cs->mark);
    cs->mark = NULL;
}

static void cu_session_free(ds4_session *s) {
    cu_session *cs = cu_s(s);
    if (!cs) return;
    const ds4_model *m = s->m;
    ds4_cuda_use(m, cs, 0); /* back to segment 0, so seg[] holds every segment's state */
    cs->seg[0].s = cs->s;
    if (cs->kv)
        for (uint32_t il = 0; il < m->cfg.n_layer; il++) {
            ds4_cuda_use(m, NULL, ds4_cuda_layer_seg(m, il));
            cu_layer *k = &cs->kv[il];
            float *all[] = {k->raw, k->comp, k->cmp_sv, k->cmp_sk, k->idx, k->icmp_sv, k->icmp_sk};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ds4cu_free(all[i]);
        }
    free(cs->kv);
    mark_free(s);
    ds4cu_host_free(cs->hin);
    if (cs->logits_pinned) ds4cu_host_unregister(s->logits);
    for (int k = 0; k < cs->n_seg; k++) {
        cu_seg *g = &cs->seg[k];
        ds4_cuda_use(m, NULL, k);
        ds4cu_free(g->rope[0]);
        ds4cu_free(g->rope[1]);
        ds4cu_free(g->isc);
        ds4cu_free(g->iflag);
        ds4cu_free(g->dpos);
        ds4cu_graph_free(g->graph);
        ds4_cuda_scratch_free(&g->s);
    }
    ds4_cuda_use(m, NULL, 0);
    free(cs);
    s->be = NULL;
}

static void cu_session_reset(ds4_session *s) {
    const ds4_config *c = &s->m->cfg;
    cu_session *cs = cu_s(s);
    const int cur = cs->cur;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        cu_layer *k = &cs->kv[il];
        const uint32_t r = c->compress_ratio[il];
        k->n_comp = k->n_idx = 0;
        ds4_cuda_use(s->m, cs, ds4_cuda_layer_seg(s->m, il));
        if (r) {
            const uint32_t Wc = ds4_cmp_lanes(r) * c->head_dim;
            ds4cu_frontier_reset(k->cmp_sv, k->cmp_sk, 0, (int)ds4_cmp_rows(r), (int)Wc);
        }
        if (r == 4) ds4cu_frontier_reset(k->icmp_sv, k->icmp_sk, 0, 8, (int)(2 * c->idx_head_dim));
        ds4cu_sync();
    }
    ds4_cuda_use(s->m, cs, cur);
}

static float *dalloc(size_t n) { return ds4cu_malloc(sizeof(float) * (n ? n : 1)); }

static int cu_session_init(ds4_session *s, ds4_err *err) {
    const ds4_config *c = &s->m->cfg;
    const cu_model *cm = cu_m(s->m);
    cu_session *cs = calloc(1, sizeof *cs);
    if (!cs) return ds4_errf(err, "out of memory");
    s->be = cs;
    cs->n_seg = cm->n_dev;
    cs->raw_cap = s->raw_window;
    cs->comp_cap = (uint32_t)(s->ctx / 4 + 2);
    cs->kv = calloc(c->n_layer, sizeof *cs->kv);
    int dev = cm->dev[0].id;
    if (!cs->kv) goto oom;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        cu_layer *k = &cs->kv[il];
        const int seg = ds4_cuda_layer_seg(s->m, il);
        dev = cm->dev[seg].id;
        if (ds4_cuda_use(s->m, NULL, seg)) goto oom;
        const ds4_kv_geom g = ds4_kv_geometry(c, s->ctx, s->raw_window, il);
        if (!(k->raw = dalloc(g.raw))) goto oom;
        if (g.frontier && (!(k->comp = dalloc(g.comp_cap * g.row)) || !(k->cmp_sv = dalloc(g.frontier)) ||
                           !(k->cmp_sk = dalloc(g.frontier))))
            goto oom;
        if (g.ifrontier && (!(k->idx = dalloc(g.idx_cap * g.irow)) || !(k->icmp_sv = dalloc(g.ifrontier)) ||
                            !(k->icmp_sk = dalloc(g.ifrontier))))
            goto oom;
    }
    for (int k = 0; k < cs->n_seg; k++) {
        cu_seg *g = &cs->seg[k];
        dev = cm->dev[k].id;
        if (ds4_cuda_use(s->m, NULL, k)) goto oom;
        if (!(g->rope[0] = dalloc((size_t)s->ctx * c->n_rot)) || !(g->rope[1] = dalloc((size_t)s->ctx * c->n_rot)) ||
            !(g->isc = dalloc(cs->comp_cap)) || !(g->iflag = ds4cu_malloc(sizeof(int32_t) * cs->comp_cap)) ||
            !(g->dpos = ds4cu_malloc(sizeof(int64_t))))
            goto oom;
    }
    if (!(cs->hin = ds4cu_host_alloc(sizeof *cs->hin))) goto oom;
    cs->logits_pinned = !ds4cu_host_register(s->logits, sizeof(float) * c->n_vocab);
    /* The view of segment 0 (ds4_cuda_use copies from seg[] only on a change). */
    cs->cur = 1;
    ds4_cuda_use(s->m, cs, 0);
    cu_session_reset(s);
    return 0;
oom:
    cu_session_free(s);
    if (cm->n_dev > 1)
        return ds4_errf(err, "out of GPU memory on device %d for the KV cache of a %d-token context", dev, s->ctx);
    return ds4_errf(err, "out of GPU memory for the KV cache of a %d-token context", s->ctx);
}

static void cu_kv_counts(const ds4_session *s, uint32_t il, uint32_t *n_comp, uint32_t *n_idx) {
    *n_comp = cu_s(s)->kv[il].n_comp;
    *n_idx = cu_s(s)->kv[il].n_idx;
}

static int cu_kv_export(const ds4_session *s, uint32_t il, ds4_kv_view *v, ds4_err *err) {
    const cu_session *cs = cu_s(s);
    if (ds4_cuda_use(s->m, NULL, ds4_cuda_layer_seg(s->m, il)))
        return ds4_errf(err, "snapshot: layer %u: %s", il, ds4cu_error());
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
    if (ds4_cuda_use(s->m, NULL, ds4_cuda_layer_seg(s->m, il)))
        return ds4_errf(err, "snapshot: layer %u: %s", il, ds4cu_error());
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

/* Device-to-device copies of what a mark holds (raw window, frontiers, row
 * counts) from layer src to layer dst, on the layer's device. */
static int copy_state(const ds4_session *s, uint32_t il, cu_layer *dst, const cu_layer *src) {
    const ds4_kv_geom g = ds4_kv_geometry(&s->m->cfg, s->ctx, s->raw_window, il);
    int rc = ds4_cuda_use(s->m, NULL, ds4_cuda_layer_seg(s->m, il));
    rc |= ds4cu_d2d(dst->raw, src->raw, sizeof(float) * g.raw);
    if (g.frontier) {
        rc |= ds4cu_d2d(dst->cmp_sv, src->cmp_sv, sizeof(float) * g.frontier);
        rc |= ds4cu_d2d(dst->cmp_sk, src->cmp_sk, sizeof(float) * g.frontier);
    }
    if (g.ifrontier) {
        rc |= ds4cu_d2d(dst->icmp_sv, src->icmp_sv, sizeof(float) * g.ifrontier);
        rc |= ds4cu_d2d(dst->icmp_sk, src->icmp_sk, sizeof(float) * g.ifrontier);
    }
    dst->n_comp = src->n_comp;
    dst->n_idx = src->n_idx;
    return rc;
}

static int cu_mark_save(ds4_session *s, ds4_err *err) {
    cu_session *cs = cu_s(s);
    const ds4_config *c = &s->m->cfg;
    const int cur = cs->cur;
    int rc = 0;
    if (!cs->mark) {
        if (!(cs->mark = calloc(c->n_layer, sizeof *cs->mark))) return ds4_errf(err, "out of memory for a session mark");
        for (uint32_t il = 0; il < c->n_layer && !rc; il++) {
            const ds4_kv_geom g = ds4_kv_geometry(c, s->ctx, s->raw_window, il);
            cu_layer *k = &cs->mark[il];
            rc = ds4_cuda_use(s->m, NULL, ds4_cuda_layer_seg(s->m, il)) || !(k->raw = dalloc(g.raw)) ||
                 (g.frontier && (!(k->cmp_sv = dalloc(g.frontier)) || !(k->cmp_sk = dalloc(g.frontier)))) ||
                 (g.ifrontier && (!(k->icmp_sv = dalloc(g.ifrontier)) || !(k->icmp_sk = dalloc(g.ifrontier))));
        }
        if (rc) mark_free(s);
    }
    for (uint32_t il = 0; il < c->n_layer && !rc; il++) rc = copy_state(s, il, &cs->mark[il], &cs->kv[il]);
    for (int k = 0; k < cs->n_seg && !rc; k++) rc = ds4_cuda_use(s->m, NULL, k) || ds4cu_sync();
    ds4_cuda_use(s->m, cs, cur);
    /* A failed mark is only a lost shortcut: session.c then rebuilds from 0. */
    if (rc) return ds4_errf(err, "session mark: GPU memory or copy failed: %s", ds4cu_error());
    return 0;
}

static void cu_mark_restore(ds4_session *s) {
    cu_session *cs = cu_s(s);
    const int cur = cs->cur;
    for (uint32_t il = 0; il < s->m->cfg.n_layer; il++) copy_state(s, il, &cs->kv[il], &cs->mark[il]);
    for (int k = 0; k < cs->n_seg; k++) {
        ds4_cuda_use(s->m, NULL, k);
        ds4cu_sync();
    }
    ds4_cuda_use(s->m, cs, cur);
}

const ds4_backend ds4_backend_cuda = {
    .name = "cuda",
    /* The grouped-expert GEMMs reward big batches: 8-layer synth on an H100,
     * prefill at 8k 3,514 / 4,959 / 5,305 tok/s with 256- / 1024- / 2048-token
     * chunks (bench/RESULTS.md). */
    .prefill_chunk = 2048,
    /* Decode: 304 tok/s with the fast F16 sums and fused HC pre-mix against 68
     * in the exact reference order (same H100, same model): the exact order
     * is there with --quality / --exact, and the goldens hold it bit-exact. */
    .default_fast = 1,
    .model_init = cu_model_init,
    .model_free = cu_model_free,
    .session_init = cu_session_init,
    .session_free = cu_session_free,
    .session_reset = cu_session_reset,
    .forward = ds4_cuda_forward,
    .kv_counts = cu_kv_counts,
    .kv_export = cu_kv_export,
    .kv_import = cu_kv_import,
    .mark_save = cu_mark_save,
    .mark_restore = cu_mark_restore,
};
#else
typedef int ds4_cuda_backend_unused;
#endif
