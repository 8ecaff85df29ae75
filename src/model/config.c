/* config.c - model shape from GGUF metadata (spec/model.md §1).
 *
 * Every key of §1.1 is required with the exact value type the reference
 * accepts. Beyond types, the shape must be consistent with how the forward
 * pass slices tensors (block sizes, head splits, FP8/FP4 block widths); those
 * checks live here so the engine can assume them. */
#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define P "deepseek4."

static int get_u32(const gguf_file *f, const char *key, uint32_t *out, ds4_err *err) {
    return gguf_get_u32(f, key, out, err);
}

static int opt_u32_zero(const gguf_file *f, const char *key, uint32_t *out, ds4_err *err) {
    *out = 0;
    if (!gguf_find_kv(f, key)) return 0;
    if (gguf_get_u32(f, key, out, err)) return -1;
    if (*out != 0)
        return ds4_errf(err, "%s: %s: %u: expected absent or 0 (group-limited routing is not supported)",
                        f->path, key, *out);
    return 0;
}

static int positive(const gguf_file *f, const char *key, uint32_t v, ds4_err *err) {
    if (v == 0 || v > (1u << 24)) return ds4_errf(err, "%s: %s: %u: expected a positive size below 2^24", f->path, key, v);
    return 0;
}

int ds4_config_from_gguf(const gguf_file *f, ds4_config *c, ds4_err *err) {
    memset(c, 0, sizeof *c);
    gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch, err)) return -1;
    if (arch.len != 9 || memcmp(arch.ptr, "deepseek4", 9) != 0)
        return ds4_errf(err, "%s: general.architecture: \"%.*s\": expected \"deepseek4\"", f->path,
                        (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    const gguf_kv *kv = gguf_find_kv(f, "general.name");
    if (kv && kv->value.type == GGUF_STRING)
        snprintf(c->name, sizeof c->name, "%.*s", (int)(kv->value.v.s.len > 120 ? 120 : kv->value.v.s.len), kv->value.v.s.ptr);

    struct { const char *key; uint32_t *dst; } u32s[] = {
        {P "block_count", &c->n_layer},
        {P "embedding_length", &c->n_embd},
        {P "vocab_size", &c->n_vocab},
        {P "attention.head_count", &c->n_head},
        {P "attention.head_count_kv", &c->n_head_kv},
        {P "attention.key_length", &c->head_dim},
        {P "attention.value_length", &c->value_dim},
        {P "rope.dimension_count", &c->n_rot},
        {P "attention.q_lora_rank", &c->q_lora},
        {P "attention.output_lora_rank", &c->o_lora},
        {P "attention.output_group_count", &c->o_groups},
        {P "expert_count", &c->n_expert},
        {P "expert_used_count", &c->n_expert_used},
        {P "expert_shared_count", &c->n_expert_shared},
        {P "expert_feed_forward_length", &c->ff_exp},
        {P "hash_layer_count", &c->n_hash_layer},
        {P "attention.sliding_window", &c->swa},
        {P "attention.indexer.head_count", &c->idx_head},
        {P "attention.indexer.key_length", &c->idx_head_dim},
        {P "attention.indexer.top_k", &c->idx_top_k},
        {P "hyper_connection.count", &c->n_hc},
        {P "hyper_connection.sinkhorn_iterations", &c->sinkhorn_iter},
    };
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++)
        if (get_u32(f, u32s[i].key, u32s[i].dst, err)) return -1;
    if (opt_u32_zero(f, P "expert_group_count", &c->expert_group_count, err)) return -1;
    if (opt_u32_zero(f, P "expert_group_used_count", &c->expert_group_used, err)) return -1;

    struct { const char *key; float *dst; } f32s[] = {
        {P "hyper_connection.epsilon", &c->hc_eps},
        {P "attention.layer_norm_rms_epsilon", &c->rms_eps},
        {P "expert_weights_scale", &c->expert_scale},
        {P "rope.freq_base", &c->rope_base},
        {P "attention.compress_rope_freq_base", &c->compress_rope_base},
        {P "rope.scaling.factor", &c->yarn_factor},
        {P "rope.scaling.yarn_beta_fast", &c->yarn_beta_fast},
        {P "rope.scaling.yarn_beta_slow", &c->yarn_beta_slow},
    };
    for (size_t i = 0; i < sizeof f32s / sizeof f32s[0]; i++) {
        if (gguf_get_f32ish(f, f32s[i].key, f32s[i].dst, err)) return -1;
        if (!isfinite(*f32s[i].dst))
            return ds4_errf(err, "%s: %s: %g: expected a finite number", f->path, f32s[i].key, *f32s[i].dst);
    }
    if (gguf_get_bool(f, P "expert_weights_norm", &c->expert_norm, err)) return -1;
    if (gguf_get_u64ish(f, P "rope.scaling.original_context_length", &c->yarn_orig_ctx, err)) return -1;
    if (gguf_find_kv(f, P "context_length")) {
        if (gguf_get_u64ish(f, P "context_length", &c->train_ctx, err)) return -1;
    }

    const char *sizes[] = {P "block_count", P "embedding_length", P "vocab_size", P "attention.head_count",
                           P "attention.key_length", P "attention.q_lora_rank", P "attention.output_lora_rank",
                           P "attention.output_group_count", P "expert_count", P "expert_used_count",
                           P "expert_feed_forward_length", P "attention.sliding_window",
                           P "hyper_connection.count", P "hyper_connection.sinkhorn_iterations"};
    uint32_t *svals[] = {&c->n_layer, &c->n_embd, &c->n_vocab, &c->n_head, &c->head_dim, &c->q_lora, &c->o_lora,
                         &c->o_groups, &c->n_expert, &c->n_expert_used, &c->ff_exp, &c->swa, &c->n_hc,
                         &c->sinkhorn_iter};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (positive(f, sizes[i], *svals[i], err)) return -1;

#define REQ(cond, key, val, what) \
    do { if (!(cond)) return ds4_errf(err, "%s: %s: %llu: expected %s", f->path, key, (unsigned long long)(val), what); } while (0)
    REQ(c->n_layer <= DS4_MAX_LAYERS, P "block_count", c->n_layer, "at most 256 layers");
    REQ(c->n_head_kv == 1, P "attention.head_count_kv", c->n_head_kv, "1 (a single shared K=V head)");
    REQ(c->value_dim == c->head_dim, P "attention.value_length", c->value_dim, "equal to attention.key_length (K = V)");
    REQ(c->n_expert_shared == 1, P "expert_shared_count", c->n_expert_shared, "1");
    REQ(c->n_embd % 256 == 0, P "embedding_length", c->n_embd, "a multiple of 256 (Q8_K activation blocks)");
    REQ(c->ff_exp % 256 == 0, P "expert_feed_forward_length", c->ff_exp, "a multiple of 256");
    REQ(c->q_lora % 32 == 0, P "attention.q_lora_rank", c->q_lora, "a multiple of 32");
    REQ(c->o_lora % 32 == 0, P "attention.output_lora_rank", c->o_lora, "a multiple of 32");
    REQ(c->n_rot % 2 == 0 && c->n_rot > 0 && c->n_rot <= c->head_dim, P "rope.dimension_count", c->n_rot,
        "an even number no larger than the head width");
    REQ((c->head_dim - c->n_rot) % 64 == 0, P "attention.key_length", c->head_dim,
        "head width minus rotary width to be a multiple of 64 (FP8 KV blocks)");
    REQ(c->head_dim % 32 == 0, P "attention.key_length", c->head_dim, "a multiple of 32");
    REQ(c->n_head % c->o_groups == 0, P "attention.output_group_count", c->o_groups, "a divisor of the head count");
    REQ(c->n_expert_used <= c->n_expert && c->n_expert_used <= 64, P "expert_used_count", c->n_expert_used,
        "at most expert_count (and at most 64)");
    REQ(c->n_expert <= 4096, P "expert_count", c->n_expert, "at most 4096");
    REQ(c->n_hash_layer <= c->n_layer, P "hash_layer_count", c->n_hash_layer, "at most block_count");
    REQ(c->n_hc <= 16, P "hyper_connection.count", c->n_hc, "at most 16");
    REQ(c->sinkhorn_iter <= 1000, P "hyper_connection.sinkhorn_iterations", c->sinkhorn_iter, "at most 1000");

    const gguf_value *ratios, *clamps;
    if (gguf_get_arr(f, P "attention.compress_ratios", &ratios, err)) return -1;
    if (gguf_get_arr(f, P "swiglu_clamp_exp", &clamps, err)) return -1;
    REQ(ratios->v.arr.count >= c->n_layer, P "attention.compress_ratios", ratios->v.arr.count, "one entry per layer");
    REQ(clamps->v.arr.count >= c->n_layer, P "swiglu_clamp_exp", clamps->v.arr.count, "one entry per layer");
    int any_ratio4 = 0;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        int64_t r;
        double cl;
        if (gguf_arr_int(ratios, il, &r))
            return ds4_errf(err, "%s: %s[%u]: type %s: expected UINT32 or INT32", f->path, P "attention.compress_ratios",
                            il, gguf_vtype_name(ratios->v.arr.elem_type));
        if (r != 0 && r != 4 && r != 128)
            return ds4_errf(err, "%s: %s[%u]: %lld: expected 0, 4 or 128", f->path, P "attention.compress_ratios", il,
                            (long long)r);
        c->compress_ratio[il] = (uint32_t)r;
        any_ratio4 |= r == 4;
        if (gguf_arr_float(clamps, il, &cl))
            return ds4_errf(err, "%s: %s[%u]: type %s: expected FLOAT32 or FLOAT64", f->path, P "swiglu_clamp_exp", il,
                            gguf_vtype_name(clamps->v.arr.elem_type));
        if (!(cl > 0) || !isfinite(cl))
            return ds4_errf(err, "%s: %s[%u]: %g: expected a positive finite clamp", f->path, P "swiglu_clamp_exp", il, cl);
        c->swiglu_clamp[il] = (float)cl;
    }
    if (any_ratio4) {
        REQ(c->idx_head_dim == 128, P "attention.indexer.key_length", c->idx_head_dim, "128 (Hadamard-128)");
        REQ(c->n_rot <= 128, P "rope.dimension_count", c->n_rot, "at most the indexer head width 128");
        REQ(c->idx_head > 0 && c->idx_head <= 1024, P "attention.indexer.head_count", c->idx_head, "1..1024");
        REQ(c->idx_top_k > 0, P "attention.indexer.top_k", c->idx_top_k, "a positive count");
    }
#undef REQ
    c->is_real = false;
    char why[256];
    ds4_config_real_diff(c, why, sizeof why);
    c->is_real = why[0] == 0;
    return 0;
}

void ds4_config_real_diff(const ds4_config *c, char *buf, int len) {
    struct { const char *what; uint64_t got, want; } k[] = {
        {"layers", c->n_layer, 43}, {"embedding width", c->n_embd, 4096}, {"vocabulary", c->n_vocab, 129280},
        {"query heads", c->n_head, 64}, {"head width", c->head_dim, 512}, {"rotary width", c->n_rot, 64},
        {"q LoRA rank", c->q_lora, 1024}, {"output LoRA rank", c->o_lora, 1024}, {"output groups", c->o_groups, 8},
        {"routed experts", c->n_expert, 256}, {"experts per token", c->n_expert_used, 6},
        {"expert FF width", c->ff_exp, 2048}, {"hash layers", c->n_hash_layer, 3}, {"sliding window", c->swa, 128},
        {"indexer heads", c->idx_head, 64}, {"indexer head width", c->idx_head_dim, 128},
        {"indexer top-k", c->idx_top_k, 512}, {"HC streams", c->n_hc, 4}, {"Sinkhorn iterations", c->sinkhorn_iter, 20},
        {"YaRN original context", c->yarn_orig_ctx, 65536},
    };
    buf[0] = 0;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].got != k[i].want) {
            snprintf(buf, (size_t)len, "%s is %llu, DeepSeek V4 Flash has %llu", k[i].what,
                     (unsigned long long)k[i].got, (unsigned long long)k[i].want);
            return;
        }
    for (uint32_t il = 0; il < c->n_layer; il++) {
        uint32_t want = il < 2 ? 0 : (il % 2 == 0 ? 4 : 128);
        if (c->compress_ratio[il] != want) {
            snprintf(buf, (size_t)len, "layer %u compression ratio is %u, DeepSeek V4 Flash has %u", il,
                     c->compress_ratio[il], want);
            return;
        }
    }
    struct { const char *what; float got, want; } fl[] = {
        {"HC epsilon", c->hc_eps, 1e-6f}, {"RMSNorm epsilon", c->rms_eps, 1e-6f},
        {"expert weight scale", c->expert_scale, 1.5f}, {"RoPE base", c->rope_base, 10000.0f},
        {"compressed RoPE base", c->compress_rope_base, 160000.0f}, {"YaRN factor", c->yarn_factor, 16.0f},
        {"YaRN beta_fast", c->yarn_beta_fast, 32.0f}, {"YaRN beta_slow", c->yarn_beta_slow, 1.0f},
    };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        float w = fl[i].want, tol = 1e-6f * (fabsf(w) > 1 ? fabsf(w) : 1);
        if (fabsf(fl[i].got - w) > tol) {
            snprintf(buf, (size_t)len, "%s is %g, DeepSeek V4 Flash has %g", fl[i].what, fl[i].got, w);
            return;
        }
    }
    if (!c->expert_norm) snprintf(buf, (size_t)len, "expert weights are not normalised, DeepSeek V4 Flash normalises them");
}
