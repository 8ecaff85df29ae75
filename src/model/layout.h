/* layout.h - the tensor inventory of a DeepSeek V4 Flash file for a given shape
 * (spec/model.md §2.2–§2.4): every tensor's name, allowed type(s) and dims.
 *
 * One table serves three users: the weight binder (what must be present and
 * how it must look), ds4-synth (what to write) and `ds4 inspect` (what a
 * component costs). Keeping it in one place is what makes a synthetic file
 * exactly the real layout. */
#ifndef DS4_MODEL_LAYOUT_H
#define DS4_MODEL_LAYOUT_H

#include <stdint.h>

#include "model/config.h"

/* Type classes: a tensor either has one exact type or is a routed expert
 * (IQ2_XXS, Q2_K or Q4_K). */
#define DS4_TCLASS_ROUTED 0xFFFFu

typedef enum ds4_component {
    DS4_C_EMBED, DS4_C_OUTPUT, DS4_C_OUTPUT_HC, DS4_C_HC, DS4_C_NORM, DS4_C_ATTN_QA, DS4_C_ATTN_QB,
    DS4_C_ATTN_KV, DS4_C_ATTN_SINKS, DS4_C_ATTN_OUT_A, DS4_C_ATTN_OUT_B, DS4_C_COMPRESSOR,
    DS4_C_INDEXER, DS4_C_INDEXER_COMPRESSOR, DS4_C_ROUTER, DS4_C_ROUTER_BIAS, DS4_C_HASH,
    DS4_C_SHARED, DS4_C_ROUTED_GATE_UP, DS4_C_ROUTED_DOWN,
    DS4_C_COUNT
} ds4_component;

extern const char *const ds4_component_names[DS4_C_COUNT];

typedef struct ds4_tensor_spec {
    char name[64];
    int layer;             /* -1 for global tensors */
    uint32_t type;         /* ds4_type, or DS4_TCLASS_ROUTED */
    uint32_t n_dims;
    uint64_t ne[3];
    int optional;          /* may be absent (exp_probs_b.bias) */
    ds4_component comp;
} ds4_tensor_spec;

/* Calls fn for every tensor of the layout in file order (globals first, then
 * layer by layer). Stops and returns fn's value if it is nonzero. */
typedef int (*ds4_layout_fn)(void *ud, const ds4_tensor_spec *t);
int ds4_layout_walk(const ds4_config *c, ds4_layout_fn fn, void *ud);

#endif
