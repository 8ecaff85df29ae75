/* layout.c - see layout.h. The order below is the order ds4-synth writes. */
#include "model/layout.h"

#include <stdio.h>
#include <string.h>

#include "quant/quant.h"

const char *const ds4_component_names[DS4_C_COUNT] = {
    "token embedding", "output head", "output HC collapse", "HC projections", "norms",
    "attn_q_a", "attn_q_b", "attn_kv", "attn_sinks", "attn_output_a", "attn_output_b",
    "attention compressors", "indexer q_b + proj", "indexer compressors", "router",
    "router bias", "hash tables", "shared expert", "routed gate + up", "routed down",
};

typedef struct walker {
    ds4_layout_fn fn;
    void *ud;
    int rc;
} walker;

static void emit(walker *w, int layer, const char *suffix, uint32_t type, ds4_component comp, int optional,
                 uint32_t n_dims, uint64_t ne0, uint64_t ne1, uint64_t ne2) {
    if (w->rc) return;
    ds4_tensor_spec t;
    memset(&t, 0, sizeof t);
    if (layer < 0) snprintf(t.name, sizeof t.name, "%s", suffix);
    else snprintf(t.name, sizeof t.name, "blk.%d.%s", layer, suffix);
    t.layer = layer;
    t.type = type;
    t.comp = comp;
    t.optional = optional;
    t.n_dims = n_dims;
    t.ne[0] = ne0;
    t.ne[1] = ne1;
    t.ne[2] = ne2;
    w->rc = w->fn(w->ud, &t);
}

int ds4_layout_walk(const ds4_config *c, ds4_layout_fn fn, void *ud) {
    walker w = {fn, ud, 0};
    const uint64_t E = c->n_embd, V = c->n_vocab, HC = c->n_hc, M = 2 * HC + HC * HC;
    const uint64_t D = c->head_dim, H = c->n_head, X = c->n_expert, F = c->ff_exp;
    const uint64_t LQ = c->q_lora, LO = c->o_lora, G = c->o_groups;
    const uint32_t F16 = DS4_TYPE_F16, F32 = DS4_TYPE_F32, Q8 = DS4_TYPE_Q8_0;

    emit(&w, -1, "token_embd.weight", F16, DS4_C_EMBED, 0, 2, E, V, 1);
    emit(&w, -1, "output_hc_fn.weight", F16, DS4_C_OUTPUT_HC, 0, 2, HC * E, HC, 1);
    emit(&w, -1, "output_hc_scale.weight", F32, DS4_C_OUTPUT_HC, 0, 1, 1, 1, 1);
    emit(&w, -1, "output_hc_base.weight", F32, DS4_C_OUTPUT_HC, 0, 1, HC, 1, 1);
    emit(&w, -1, "output_norm.weight", F32, DS4_C_OUTPUT_HC, 0, 1, E, 1, 1);
    emit(&w, -1, "output.weight", Q8, DS4_C_OUTPUT, 0, 2, E, V, 1);

    for (int il = 0; il < (int)c->n_layer; il++) {
        const uint32_t r = c->compress_ratio[il];
        emit(&w, il, "hc_attn_fn.weight", F16, DS4_C_HC, 0, 2, HC * E, M, 1);
        emit(&w, il, "hc_attn_scale.weight", F32, DS4_C_HC, 0, 1, 3, 1, 1);
        emit(&w, il, "hc_attn_base.weight", F32, DS4_C_HC, 0, 1, M, 1, 1);
        emit(&w, il, "attn_norm.weight", F32, DS4_C_NORM, 0, 1, E, 1, 1);
        emit(&w, il, "attn_q_a.weight", Q8, DS4_C_ATTN_QA, 0, 2, E, LQ, 1);
        emit(&w, il, "attn_q_a_norm.weight", F32, DS4_C_NORM, 0, 1, LQ, 1, 1);
        emit(&w, il, "attn_q_b.weight", Q8, DS4_C_ATTN_QB, 0, 2, LQ, H * D, 1);
        emit(&w, il, "attn_kv.weight", Q8, DS4_C_ATTN_KV, 0, 2, E, D, 1);
        emit(&w, il, "attn_kv_a_norm.weight", F32, DS4_C_NORM, 0, 1, D, 1, 1);
        emit(&w, il, "attn_sinks.weight", F32, DS4_C_ATTN_SINKS, 0, 1, H, 1, 1);
        emit(&w, il, "attn_output_a.weight", Q8, DS4_C_ATTN_OUT_A, 0, 2, D * H / G, G * LO, 1);
        emit(&w, il, "attn_output_b.weight", Q8, DS4_C_ATTN_OUT_B, 0, 2, G * LO, E, 1);
        if (r) {
            const uint64_t Wc = (r == 4 ? 2 : 1) * D;
            emit(&w, il, "attn_compressor_ape.weight", F16, DS4_C_COMPRESSOR, 0, 2, Wc, r, 1);
            emit(&w, il, "attn_compressor_kv.weight", F16, DS4_C_COMPRESSOR, 0, 2, E, Wc, 1);
            emit(&w, il, "attn_compressor_gate.weight", F16, DS4_C_COMPRESSOR, 0, 2, E, Wc, 1);
            emit(&w, il, "attn_compressor_norm.weight", F32, DS4_C_COMPRESSOR, 0, 1, D, 1, 1);
        }
        if (r == 4) {
            const uint64_t IH = c->idx_head, ID = c->idx_head_dim;
            emit(&w, il, "indexer.attn_q_b.weight", F16, DS4_C_INDEXER, 0, 2, LQ, IH * ID, 1);
            emit(&w, il, "indexer.proj.weight", F16, DS4_C_INDEXER, 0, 2, E, IH, 1);
            emit(&w, il, "indexer_compressor_ape.weight", F16, DS4_C_INDEXER_COMPRESSOR, 0, 2, 2 * ID, 4, 1);
            emit(&w, il, "indexer_compressor_kv.weight", F16, DS4_C_INDEXER_COMPRESSOR, 0, 2, E, 2 * ID, 1);
            emit(&w, il, "indexer_compressor_gate.weight", F16, DS4_C_INDEXER_COMPRESSOR, 0, 2, E, 2 * ID, 1);
            emit(&w, il, "indexer_compressor_norm.weight", F32, DS4_C_INDEXER_COMPRESSOR, 0, 1, ID, 1, 1);
        }
        emit(&w, il, "hc_ffn_fn.weight", F16, DS4_C_HC, 0, 2, HC * E, M, 1);
        emit(&w, il, "hc_ffn_scale.weight", F32, DS4_C_HC, 0, 1, 3, 1, 1);
        emit(&w, il, "hc_ffn_base.weight", F32, DS4_C_HC, 0, 1, M, 1, 1);
        emit(&w, il, "ffn_norm.weight", F32, DS4_C_NORM, 0, 1, E, 1, 1);
        emit(&w, il, "ffn_gate_inp.weight", F16, DS4_C_ROUTER, 0, 2, E, X, 1);
        if (ds4_is_hash_layer(c, (uint32_t)il))
            emit(&w, il, "ffn_gate_tid2eid.weight", DS4_TYPE_I32, DS4_C_HASH, 0, 2, c->n_expert_used, V, 1);
        else
            emit(&w, il, "exp_probs_b.bias", F32, DS4_C_ROUTER_BIAS, 1, 1, X, 1, 1);
        emit(&w, il, "ffn_gate_exps.weight", DS4_TCLASS_ROUTED, DS4_C_ROUTED_GATE_UP, 0, 3, E, F, X);
        emit(&w, il, "ffn_up_exps.weight", DS4_TCLASS_ROUTED, DS4_C_ROUTED_GATE_UP, 0, 3, E, F, X);
        emit(&w, il, "ffn_down_exps.weight", DS4_TCLASS_ROUTED, DS4_C_ROUTED_DOWN, 0, 3, F, E, X);
        emit(&w, il, "ffn_gate_shexp.weight", Q8, DS4_C_SHARED, 0, 2, E, F, 1);
        emit(&w, il, "ffn_up_shexp.weight", Q8, DS4_C_SHARED, 0, 2, E, F, 1);
        emit(&w, il, "ffn_down_shexp.weight", Q8, DS4_C_SHARED, 0, 2, F, E, 1);
    }
    return w.rc;
}
