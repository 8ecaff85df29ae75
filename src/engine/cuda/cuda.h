/* cuda.h - the CUDA backend's private state: the device copies of the weights
 * and, per session, the per-layer KV caches in device memory (the same
 * layout as cpu.h's, rows of F32 holding f16-rounded values), the RoPE
 * tables and the scratch of one batch. Compressed-row counts live on the
 * host: they are a function of the position alone. */
#ifndef DS4_ENGINE_CUDA_H
#define DS4_ENGINE_CUDA_H

#include "engine/internal.h"

/* Several GPUs (--gpus): the layers are split into contiguous segments, one
 * per listed device, balanced by weight bytes (the embedding counts for the
 * first, the output head for the last). A segment's device holds only its
 * tensors: their file ranges, merged where adjacent, packed into one
 * allocation. One device (the default) is one segment holding everything. */
#define DS4CU_MAX_SEG 16

typedef struct cu_range {
    uint64_t off, len;     /* file range, relative to the tensor data section */
    uint8_t *d;            /* its device copy */
} cu_range;

typedef struct cu_dev {
    int id, slot;          /* CUDA ordinal; runtime slot (device + stream) */
    uint32_t l0, l1;       /* layers [l0, l1) run here */
    uint8_t *dbase;        /* the one allocation the ranges live in */
    uint64_t bytes;
    cu_range *r;           /* sorted by off */
    int n_r;
    float *steer;          /* device copy of m->steer */
    const float *steer_src;
} cu_dev;

typedef struct cu_model {
    const uint8_t *hbase;  /* host (mmap) start of the tensor data section */
    uint64_t bytes;
    int n_dev, cur;        /* segments; the one kernels are launched for */
    cu_dev dev[DS4CU_MAX_SEG];
    float *steer;          /* dev[cur].steer (what steer() reads) */
    void *stage;           /* pinned host buffer for hand-overs without peer access */
    size_t stage_bytes;
} cu_model;

typedef struct cu_layer {
    float *raw, *comp, *cmp_sv, *cmp_sk, *idx, *icmp_sv, *icmp_sk;
    uint32_t n_comp, n_idx;
} cu_layer;

typedef struct cu_scratch {
    int cap;               /* tokens */
    float *X, *X2, *a, *xn, *fo, *pre, *post, *comb, *u, *mix;
    float *qa, *qr, *q, *o, *kvr, *kvv, *lo;
    float *cmp_kv, *cmp_gate, *icmp_kv, *icmp_gate, *qI, *wI;
    float *moe, *shg, *shu, *lg, *w, *g, *up, *dout, *hh, *ow, *y, *yn, *logits;
    float *kvh;            /* n × head_dim: the batch's KV rows rounded to F16 */
    int32_t *sel, *tokens, *isel; /* isel: n × top_k indexer choices */
    void *xq, *xqK, *mqK;
} cu_scratch;

/* A segment's per-session state on its device. */
typedef struct cu_seg {
    float *rope[2];
    float *isc;
    int32_t *iflag;
    int64_t *dpos;
    cu_scratch s;
    void *graph;           /* its decode step, captured */
    float *gx_in, *gx_out; /* the X the graph reads first and leaves its result in */
} cu_seg;

typedef struct cu_session {
    uint32_t raw_cap, comp_cap;
    cu_layer *kv;          /* each layer's caches on its segment's device */
    /* The rewind mark (backend.h): per layer, on the layer's device, a copy of
     * the raw window and compressor frontiers plus the row counts; comp/idx
     * stay NULL (compressed rows are append-only). Allocated on first use. */
    cu_layer *mark;
    /* The current segment's state (seg[cur], swapped by ds4_cuda_use), so
     * the per-layer code reads the tables and scratch of the device it runs on. */
    float *rope[2];        /* [dense, compressed]: ctx × n_rot (cos, sin) */
    int rope_have;         /* positions filled (every segment) */
    float *isc;            /* indexer scores, comp_cap */
    int32_t *iflag;        /* comp_cap */
    cu_scratch s;
    /* CUDA-graph decode: one captured single-token step per segment,
     * replayed with the position in dpos; rebuilt when what it baked in changes. */
    int64_t *dpos;
    /* A decode step's token and position, pinned, so their uploads are
     * enqueued without a sync; and whether the session's logits buffer is
     * page-locked (the step's one copy back then needs no staging). */
    struct cu_step_in { int64_t pos; int32_t token; } *hin;
    int logits_pinned;
    int graph_warm;
    float graph_steer_ffn, graph_steer_attn;
    const float *graph_steer;
    int n_seg, cur;
    cu_seg seg[DS4CU_MAX_SEG];
} cu_session;

static inline cu_model *cu_m(const ds4_model *m) { return (cu_model *)m->be_model; }
static inline cu_session *cu_s(const ds4_session *s) { return (cu_session *)s->be; }
/* A weight's address on the current segment's device (NULL when the tensor
 * is absent or, which would be a placement bug, not on that device). */
static inline const void *cu_w(const ds4_model *m, const ds4_wt *w) {
    if (!w->data) return NULL;
    const cu_model *cm = cu_m(m);
    const cu_dev *d = &cm->dev[cm->cur];
    const uint64_t off = (uint64_t)(w->data - cm->hbase);
    int lo = 0, hi = d->n_r - 1;
    while (lo < hi) { /* the last range starting at or before off */
        const int mid = (lo + hi + 1) / 2;
        if (d->r[mid].off <= off) lo = mid;
        else hi = mid - 1;
    }
    const cu_range *r = &d->r[lo];
    return off >= r->off && off < r->off + r->len ? r->d + (off - r->off) : NULL;
}

/* Make segment `seg` current: its device and stream, its weights (cu_w), its
 * steering copy and, when cs is given, its session tables and scratch. */
int ds4_cuda_use(const ds4_model *m, cu_session *cs, int seg);
/* The segment running layer il. */
int ds4_cuda_layer_seg(const ds4_model *m, uint32_t il);
int ds4_cuda_forward(ds4_session *s, const int32_t *tokens, int n, float *logits_all, ds4_err *err);
void ds4_cuda_scratch_free(cu_scratch *sc);

#endif
