/* weights.c - binds GGUF tensors to ds4_weights fields (see weights.h). */
#include "model/weights.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model/layout.h"
#include "quant/quant.h"

/* Layout name suffix -> field offset inside ds4_layer_weights / ds4_weights. */
static const struct { const char *suffix; size_t off; } layer_fields[] = {
#define F(s, f) {s, offsetof(ds4_layer_weights, f)}
    F("hc_attn_fn.weight", hc_attn_fn), F("hc_attn_scale.weight", hc_attn_scale),
    F("hc_attn_base.weight", hc_attn_base), F("attn_norm.weight", attn_norm), F("attn_q_a.weight", q_a),
    F("attn_q_a_norm.weight", q_a_norm), F("attn_q_b.weight", q_b), F("attn_kv.weight", kv),
    F("attn_kv_a_norm.weight", kv_norm), F("attn_sinks.weight", sinks), F("attn_output_a.weight", out_a),
    F("attn_output_b.weight", out_b), F("attn_compressor_ape.weight", cmp_ape),
    F("attn_compressor_kv.weight", cmp_kv), F("attn_compressor_gate.weight", cmp_gate),
    F("attn_compressor_norm.weight", cmp_norm), F("indexer.attn_q_b.weight", idx_q_b),
    F("indexer.proj.weight", idx_proj), F("indexer_compressor_ape.weight", icmp_ape),
    F("indexer_compressor_kv.weight", icmp_kv), F("indexer_compressor_gate.weight", icmp_gate),
    F("indexer_compressor_norm.weight", icmp_norm), F("hc_ffn_fn.weight", hc_ffn_fn),
    F("hc_ffn_scale.weight", hc_ffn_scale), F("hc_ffn_base.weight", hc_ffn_base), F("ffn_norm.weight", ffn_norm),
    F("ffn_gate_inp.weight", gate_inp), F("exp_probs_b.bias", exp_bias), F("ffn_gate_tid2eid.weight", tid2eid),
    F("ffn_gate_exps.weight", gate_exps), F("ffn_up_exps.weight", up_exps), F("ffn_down_exps.weight", down_exps),
    F("ffn_gate_shexp.weight", gate_sh), F("ffn_up_shexp.weight", up_sh), F("ffn_down_shexp.weight", down_sh),
#undef F
};
static const struct { const char *name; size_t off; } global_fields[] = {
#define F(s, f) {s, offsetof(ds4_weights, f)}
    F("token_embd.weight", embd), F("output_hc_fn.weight", out_hc_fn), F("output_hc_scale.weight", out_hc_scale),
    F("output_hc_base.weight", out_hc_base), F("output_norm.weight", out_norm), F("output.weight", output),
#undef F
};

typedef struct bind_ctx {
    const gguf_file *f;
    ds4_weights *w;
    ds4_err *err;
} bind_ctx;

static int is_routed_type(uint32_t t) {
    return t == DS4_TYPE_IQ2_XXS || t == DS4_TYPE_Q2_K || t == DS4_TYPE_Q4_K;
}

static ds4_wt *field_for(ds4_weights *w, const ds4_tensor_spec *s) {
    if (s->layer < 0) {
        for (size_t i = 0; i < sizeof global_fields / sizeof global_fields[0]; i++)
            if (!strcmp(s->name, global_fields[i].name)) return (ds4_wt *)((char *)w + global_fields[i].off);
        return NULL;
    }
    const char *suffix = strchr(s->name + 4, '.') + 1; /* after "blk.N." */
    for (size_t i = 0; i < sizeof layer_fields / sizeof layer_fields[0]; i++)
        if (!strcmp(suffix, layer_fields[i].suffix))
            return (ds4_wt *)((char *)&w->layer[s->layer] + layer_fields[i].off);
    return NULL;
}

static void dims_str(char *buf, size_t len, uint32_t n, const uint64_t *ne) {
    size_t o = (size_t)snprintf(buf, len, "[");
    for (uint32_t i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%llu", i ? ", " : "", (unsigned long long)ne[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

static int bind_one(void *ud, const ds4_tensor_spec *s) {
    bind_ctx *b = ud;
    const gguf_tensor *t = gguf_find_tensor(b->f, s->name);
    ds4_wt *dst = field_for(b->w, s);
    if (!dst) return ds4_errf(b->err, "internal: no weight field for %s", s->name);
    memset(dst, 0, sizeof *dst);
    if (!t) {
        if (s->optional) return 0;
        return ds4_errf(b->err, "%s: tensor %s: missing: expected %s %s", b->f->path, s->name,
                        s->type == DS4_TCLASS_ROUTED ? "a routed type (IQ2_XXS, Q2_K or Q4_K)" : ds4_type_name(s->type),
                        "as spec/model.md §2 lists");
    }
    if (s->type == DS4_TCLASS_ROUTED ? !is_routed_type(t->type) : t->type != s->type)
        return ds4_errf(b->err, "%s: tensor %s: type %s: expected %s", b->f->path, s->name, ds4_type_name(t->type),
                        s->type == DS4_TCLASS_ROUTED ? "IQ2_XXS, Q2_K or Q4_K" : ds4_type_name(s->type));
    uint64_t want[GGUF_MAX_DIMS] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (uint32_t i = 0; i < s->n_dims; i++) want[i] = s->ne[i];
    int same = t->n_dims == s->n_dims;
    for (uint32_t i = 0; same && i < GGUF_MAX_DIMS; i++) same = t->ne[i] == want[i];
    if (!same) {
        char got[128], exp[128];
        dims_str(got, sizeof got, t->n_dims, t->ne);
        dims_str(exp, sizeof exp, s->n_dims, s->ne);
        return ds4_errf(b->err, "%s: tensor %s: dims %s: expected %s", b->f->path, s->name, got, exp);
    }
    uint32_t align = t->type == DS4_TYPE_F32 || t->type == DS4_TYPE_I32 ? 4 : 2;
    if ((uintptr_t)t->data % align)
        return ds4_errf(b->err, "%s: tensor %s: data offset %llu: expected a multiple of %u", b->f->path, s->name,
                        (unsigned long long)t->offset, align);
    dst->data = t->data;
    dst->type = t->type;
    for (int i = 0; i < 3; i++) dst->ne[i] = s->ne[i] ? s->ne[i] : 1;
    if (s->n_dims < 3) dst->ne[2] = 1;
    if (s->n_dims < 2) dst->ne[1] = 1;
    dst->row_bytes = ds4_row_bytes(t->type, s->ne[0]);
    dst->nbytes = t->nbytes;
    b->w->total_bytes += t->nbytes;
    return 0;
}

int ds4_weights_bind(const gguf_file *f, const ds4_config *c, ds4_weights *w, ds4_err *err) {
    memset(w, 0, sizeof *w);
    bind_ctx b = {f, w, err};
    if (ds4_layout_walk(c, bind_one, &b)) return -1;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        const ds4_layer_weights *L = &w->layer[il];
        if (L->gate_exps.type != L->up_exps.type)
            return ds4_errf(err, "%s: tensor blk.%u.ffn_up_exps.weight: type %s: expected the gate's type %s", f->path,
                            il, ds4_type_name(L->up_exps.type), ds4_type_name(L->gate_exps.type));
        if (ds4_is_hash_layer(c, il)) {
            const int32_t *ids = (const int32_t *)(const void *)L->tid2eid.data;
            uint64_t n = (uint64_t)c->n_expert_used * c->n_vocab;
            for (uint64_t i = 0; i < n; i++)
                if (ids[i] < 0 || (uint32_t)ids[i] >= c->n_expert)
                    return ds4_errf(err, "%s: tensor blk.%u.ffn_gate_tid2eid.weight: element %llu = %d: expected an expert id below %u",
                                    f->path, il, (unsigned long long)i, ids[i], c->n_expert);
        }
    }
    return 0;
}
