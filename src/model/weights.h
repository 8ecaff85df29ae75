/* weights.h - the model's tensors bound to named fields, after checking each
 * against the layout (model/layout.h): present, exact type (routed experts:
 * one of the routed types, gate and up alike), exact dims, data aligned for
 * direct access. The forward pass reads weights only through these fields. */
#ifndef DS4_MODEL_WEIGHTS_H
#define DS4_MODEL_WEIGHTS_H

#include <stdint.h>

#include "gguf/gguf.h"
#include "model/config.h"

typedef struct ds4_wt {
    const uint8_t *data;   /* NULL when absent (optional tensors only) */
    uint32_t type;
    uint64_t ne[3];
    uint64_t row_bytes;    /* bytes of one ne0-row */
    uint64_t nbytes;
} ds4_wt;

typedef struct ds4_layer_weights {
    ds4_wt hc_attn_fn, hc_attn_scale, hc_attn_base, attn_norm;
    ds4_wt q_a, q_a_norm, q_b, kv, kv_norm, sinks, out_a, out_b;
    ds4_wt cmp_ape, cmp_kv, cmp_gate, cmp_norm;                       /* ratio != 0 */
    ds4_wt idx_q_b, idx_proj, icmp_ape, icmp_kv, icmp_gate, icmp_norm; /* ratio == 4 */
    ds4_wt hc_ffn_fn, hc_ffn_scale, hc_ffn_base, ffn_norm;
    ds4_wt gate_inp, exp_bias, tid2eid;
    ds4_wt gate_exps, up_exps, down_exps;
    ds4_wt gate_sh, up_sh, down_sh;
} ds4_layer_weights;

typedef struct ds4_weights {
    ds4_wt embd, out_hc_fn, out_hc_scale, out_hc_base, out_norm, output;
    ds4_layer_weights layer[DS4_MAX_LAYERS];
    uint64_t total_bytes;
} ds4_weights;

int ds4_weights_bind(const gguf_file *f, const ds4_config *c, ds4_weights *w, ds4_err *err);

static inline const float *ds4_wt_f32(const ds4_wt *t) { return (const float *)(const void *)t->data; }
static inline const uint16_t *ds4_wt_f16(const ds4_wt *t) { return (const uint16_t *)(const void *)t->data; }

#endif
