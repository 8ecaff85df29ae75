/* meta.c - the metadata of a synthetic file, key for key and type for type as
 * the oracle's tiny models carry it (tests/data/oracle/README.md "GGUF
 * contents"), which is what the real file's llama.cpp converter writes: shape
 * keys u32, compress_ratios an array of i32, swiglu_clamp_exp an array of f32,
 * the YaRN original context u32, the training context u64, then the
 * tokenizer.ggml.* keys with bos/eos ids as u32. */
#include <stdlib.h>
#include <string.h>

#include "synth/synth_internal.h"

#define P "deepseek4."

int ds4_synth_meta(gguf_writer *w, const ds4_synth_opts *o, const ds4_token_table *t, ds4_err *err) {
    const ds4_config *c = &o->shape;
    int rc = 0;
    rc |= gguf_writer_kv_str(w, "general.architecture", "deepseek4");
    rc |= gguf_writer_kv_str(w, "general.name", c->name[0] ? c->name : "ds4-synth");
    rc |= gguf_writer_kv_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT);
    rc |= gguf_writer_kv_u64(w, P "context_length", c->train_ctx);
    const struct { const char *key; uint32_t v; } u32s[] = {
        {P "block_count", c->n_layer},
        {P "embedding_length", c->n_embd},
        {P "vocab_size", c->n_vocab},
        {P "attention.head_count", c->n_head},
        {P "attention.head_count_kv", c->n_head_kv},
        {P "attention.key_length", c->head_dim},
        {P "attention.value_length", c->head_dim},
        {P "rope.dimension_count", c->n_rot},
        {P "attention.q_lora_rank", c->q_lora},
        {P "attention.output_lora_rank", c->o_lora},
        {P "attention.output_group_count", c->o_groups},
        {P "expert_count", c->n_expert},
        {P "expert_used_count", c->n_expert_used},
        {P "expert_feed_forward_length", c->ff_exp},
        {P "expert_shared_count", c->n_expert_shared},
        {P "hash_layer_count", c->n_hash_layer},
    };
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++) rc |= gguf_writer_kv_u32(w, u32s[i].key, u32s[i].v);
    if (o->expert_group_keys) {
        rc |= gguf_writer_kv_u32(w, P "expert_group_count", 0);
        rc |= gguf_writer_kv_u32(w, P "expert_group_used_count", 0);
    }
    rc |= gguf_writer_kv_u32(w, P "attention.sliding_window", c->swa);
    rc |= gguf_writer_kv_u32(w, P "attention.indexer.head_count", c->idx_head);
    rc |= gguf_writer_kv_u32(w, P "attention.indexer.key_length", c->idx_head_dim);
    rc |= gguf_writer_kv_u32(w, P "attention.indexer.top_k", c->idx_top_k);
    rc |= gguf_writer_kv_u32(w, P "hyper_connection.count", c->n_hc);
    rc |= gguf_writer_kv_u32(w, P "hyper_connection.sinkhorn_iterations", c->sinkhorn_iter);
    rc |= gguf_writer_kv_f32(w, P "hyper_connection.epsilon", c->hc_eps);
    int32_t ratios[DS4_MAX_LAYERS];
    float clamps[DS4_MAX_LAYERS];
    for (uint32_t il = 0; il < c->n_layer; il++) {
        ratios[il] = (int32_t)c->compress_ratio[il];
        clamps[il] = c->swiglu_clamp[il];
    }
    rc |= gguf_writer_kv_arr(w, P "attention.compress_ratios", GGUF_I32, ratios, c->n_layer);
    rc |= gguf_writer_kv_f32(w, P "attention.compress_rope_freq_base", c->compress_rope_base);
    rc |= gguf_writer_kv_arr(w, P "swiglu_clamp_exp", GGUF_F32, clamps, c->n_layer);
    rc |= gguf_writer_kv_f32(w, P "rope.freq_base", c->rope_base);
    rc |= gguf_writer_kv_str(w, P "rope.scaling.type", "yarn");
    rc |= gguf_writer_kv_f32(w, P "rope.scaling.factor", c->yarn_factor);
    rc |= gguf_writer_kv_u32(w, P "rope.scaling.original_context_length", (uint32_t)c->yarn_orig_ctx);
    rc |= gguf_writer_kv_f32(w, P "rope.scaling.yarn_beta_fast", c->yarn_beta_fast);
    rc |= gguf_writer_kv_f32(w, P "rope.scaling.yarn_beta_slow", c->yarn_beta_slow);
    rc |= gguf_writer_kv_f32(w, P "expert_weights_scale", c->expert_scale);
    rc |= gguf_writer_kv_bool(w, P "expert_weights_norm", c->expert_norm);
    rc |= gguf_writer_kv_f32(w, P "attention.layer_norm_rms_epsilon", c->rms_eps);

    rc |= gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
    rc |= gguf_writer_kv_str(w, "tokenizer.ggml.pre", "joyai-llm");
    rc |= gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)t->tokens, t->token_lens, t->n_tokens);
    rc |= gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", GGUF_I32, t->types, t->n_tokens);
    rc |= gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", (const char *const *)t->merges, t->merge_lens, t->n_merges);
    int32_t bos = -1, eos = -1;
    for (size_t i = 0; i < t->n_tokens && (bos < 0 || eos < 0); i++) {
        if (bos < 0 && t->tokens[i] && !strcmp(t->tokens[i], ds4_special_str(DS4_SP_BOS))) bos = (int32_t)i;
        if (eos < 0 && t->tokens[i] && !strcmp(t->tokens[i], ds4_special_str(DS4_SP_EOS))) eos = (int32_t)i;
    }
    if (bos < 0 || eos < 0) return ds4_errf(err, "token table: no BOS/EOS token string; expected both (spec/text.md §1.2)");
    rc |= gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    rc |= gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    rc |= gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", true);
    rc |= gguf_writer_kv_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (rc) return ds4_errf(err, "metadata: %s", gguf_writer_error(w) ? gguf_writer_error(w) : "writer refused a key");
    return 0;
}
