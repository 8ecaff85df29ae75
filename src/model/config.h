/* config.h - the model shape, read from GGUF metadata and checked.
 *
 * The engine is shape-generic: every constant of spec/model.md §1.1 comes from
 * the file, so a 2 MB synthetic model runs the same code as the 87 GB one. A
 * shape is accepted when it is internally consistent (the checks below are
 * what the forward pass relies on); separately, `is_real` says whether it is
 * exactly DeepSeek V4 Flash. */
#ifndef DS4_MODEL_CONFIG_H
#define DS4_MODEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ds4_err.h"
#include "gguf/gguf.h"

#define DS4_MAX_LAYERS 256

typedef struct ds4_config {
    uint32_t n_layer, n_embd, n_vocab;
    uint32_t n_head, n_head_kv, head_dim, value_dim, n_rot;
    uint32_t q_lora, o_lora, o_groups;
    uint32_t n_expert, n_expert_used, n_expert_shared, ff_exp;
    uint32_t n_hash_layer, expert_group_count, expert_group_used;
    uint32_t swa;                                 /* sliding window, incl. current token */
    uint32_t idx_head, idx_head_dim, idx_top_k;
    uint32_t n_hc, sinkhorn_iter;
    float hc_eps, rms_eps, expert_scale;
    bool expert_norm;
    float rope_base, compress_rope_base;
    float yarn_factor, yarn_beta_fast, yarn_beta_slow;
    uint64_t yarn_orig_ctx;
    uint64_t train_ctx;                           /* informational */
    uint32_t compress_ratio[DS4_MAX_LAYERS];      /* 0, 4 or 128 */
    float swiglu_clamp[DS4_MAX_LAYERS];
    char name[128];
    bool is_real;                                 /* exactly DeepSeek V4 Flash */
} ds4_config;

/* Read and validate. Errors name the file, the key, the value and what was expected. */
int ds4_config_from_gguf(const gguf_file *f, ds4_config *c, ds4_err *err);

/* One line explaining why the shape is not the real model ("" when it is). */
void ds4_config_real_diff(const ds4_config *c, char *buf, int len);

static inline uint32_t ds4_ratio(const ds4_config *c, uint32_t il) { return c->compress_ratio[il]; }
static inline int ds4_is_hash_layer(const ds4_config *c, uint32_t il) { return il < c->n_hash_layer; }

#endif
