/* weights.c - weight bytes read per decoded token (spec/model.md §10.2),
 * counted from the file's tensor table through the model layout, so it is
 * right for any shape and recipe (a 4-layer synthetic model, q2 or q4).
 *
 * What one decode step reads: every tensor of the layout in full, except
 *   - token_embd: one row (the token's embedding);
 *   - ffn_gate_tid2eid (hash layers): one row (the token's expert ids);
 *   - routed experts: n_expert_used / n_expert of each expert tensor;
 *   - indexer.attn_q_b / indexer.proj: only once a ratio-4 layer holds more
 *     than idx_top_k compressed rows; below that every row is attended and the
 *     indexer is not run (§4.6.5, attention.c).
 * KV reads are not weights and are left out (they are in kv_bytes). */
#include "bench/bench.h"
#include "model/config.h"
#include "model/layout.h"

typedef struct acc {
    const gguf_file *f;
    const ds4_config *c;
    uint64_t ctx;
    uint64_t bytes;
    const char *missing;
} acc;

static int add(void *ud, const ds4_tensor_spec *s) {
    acc *a = ud;
    const gguf_tensor *t = gguf_find_tensor(a->f, s->name);
    if (!t) {
        if (!s->optional) a->missing = s->name;
        return 0;
    }
    switch (s->comp) {
    case DS4_C_EMBED:
    case DS4_C_HASH:
        a->bytes += t->ne[1] ? t->nbytes / t->ne[1] : 0;
        break;
    case DS4_C_ROUTED_GATE_UP:
    case DS4_C_ROUTED_DOWN:
        a->bytes += a->c->n_expert ? t->nbytes / a->c->n_expert * a->c->n_expert_used : 0;
        break;
    case DS4_C_INDEXER:
        if (a->ctx / 4 > a->c->idx_top_k) a->bytes += t->nbytes;
        break;
    default:
        a->bytes += t->nbytes;
        break;
    }
    return 0;
}

int ds4_bench_weight_bytes(const gguf_file *f, uint64_t ctx, uint64_t *bytes, ds4_err *err) {
    ds4_config c;
    if (ds4_config_from_gguf(f, &c, err)) return -1;
    acc a = {f, &c, ctx, 0, NULL};
    ds4_layout_walk(&c, add, &a);
    if (a.missing) return ds4_errf(err, "%s: tensor %s: missing, expected by the model layout", f->path, a.missing);
    *bytes = a.bytes;
    return 0;
}
