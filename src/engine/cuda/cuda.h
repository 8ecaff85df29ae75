/* cuda.h - the CUDA backend's private state: the device copy of the weights
 * and, per session, the per-layer KV caches in device memory (the same
 * layout as cpu.h's, rows of F32 holding f16-rounded values), the RoPE
 * tables and the scratch of one batch. Compressed-row counts live on the
 * host: they are a function of the position alone. */
#ifndef DS4_ENGINE_CUDA_H
#define DS4_ENGINE_CUDA_H

#include "engine/internal.h"

typedef struct cu_model {
    uint8_t *dbase;        /* device copy of the GGUF tensor data section */
    const uint8_t *hbase;  /* its host (mmap) start */
    uint64_t bytes;
    float *steer;          /* device copy of m->steer (uploaded on first use) */
    const float *steer_src;
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

typedef struct cu_session {
    uint32_t raw_cap, comp_cap;
    cu_layer *kv;
    float *rope[2];        /* [dense, compressed]: ctx × n_rot (cos, sin) */
    int rope_have;         /* positions filled */
    float *isc;            /* indexer scores, comp_cap */
    int32_t *iflag;        /* comp_cap */
    cu_scratch s;
    /* CUDA-graph decode: one captured single-token step, replayed with the
     * position in dpos; rebuilt when what it baked in changes. */
    int64_t *dpos;
    void *graph;
    int graph_warm;
    float graph_steer_ffn, graph_steer_attn;
    const float *graph_steer;
} cu_session;

static inline cu_model *cu_m(const ds4_model *m) { return (cu_model *)m->be_model; }
static inline cu_session *cu_s(const ds4_session *s) { return (cu_session *)s->be; }
static inline const void *cu_w(const ds4_model *m, const ds4_wt *w) {
    return w->data ? cu_m(m)->dbase + (w->data - cu_m(m)->hbase) : NULL;
}

int ds4_cuda_forward(ds4_session *s, const int32_t *tokens, int n, float *logits_all, ds4_err *err);
void ds4_cuda_scratch_free(cu_scratch *sc);

#endif
