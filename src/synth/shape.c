/* shape.c - ds4-synth's shape presets and the layer schedule.
 *
 * A preset is a filled ds4_config: the same struct the engine reads back from
 * the file's metadata, so what is written and what is validated cannot drift.
 * The float constants (epsilons, RoPE/YaRN, expert scale) are always the real
 * model's; only sizes vary between presets. */
#include <stdio.h>
#include <string.h>

#include "quant/quant.h"
#include "synth/synth.h"

uint32_t ds4_synth_default_ratio(uint32_t il) { return il < 2 ? 0 : (il % 2 == 0 ? 4 : 128); }

static void real_constants(ds4_config *c) {
    c->hc_eps = 1e-6f;
    c->rms_eps = 1e-6f;
    c->expert_scale = 1.5f;
    c->expert_norm = true;
    c->rope_base = 10000.0f;
    c->compress_rope_base = 160000.0f;
    c->yarn_factor = 16.0f;
    c->yarn_beta_fast = 32.0f;
    c->yarn_beta_slow = 1.0f;
    c->yarn_orig_ctx = 65536;
    c->train_ctx = 1048576;
    c->n_head_kv = 1;
    c->n_expert_shared = 1;
    c->n_hc = 4;
    c->sinkhorn_iter = 20;
    c->idx_head_dim = 128;
    for (uint32_t il = 0; il < DS4_MAX_LAYERS; il++) {
        c->compress_ratio[il] = ds4_synth_default_ratio(il);
        c->swiglu_clamp[il] = 10.0f;
    }
}

int ds4_synth_preset(const char *name, ds4_synth_opts *o, ds4_err *err) {
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->recipe = DS4_SYNTH_Q2;
    o->vocab = DS4_SYNTH_VOCAB_DEEPSEEK;
    o->progress = 1;
    ds4_config *c = &o->shape;
    real_constants(c);
    if (!strcmp(name, "full")) {
        c->n_layer = 43; c->n_embd = 4096; c->n_vocab = 129280;
        c->n_head = 64; c->head_dim = 512; c->n_rot = 64;
        c->q_lora = 1024; c->o_lora = 1024; c->o_groups = 8;
        c->n_expert = 256; c->n_expert_used = 6; c->ff_exp = 2048; c->n_hash_layer = 3;
        c->swa = 128; c->idx_head = 64; c->idx_top_k = 512;
        snprintf(c->name, sizeof c->name, "ds4-synth-full");
    } else if (!strcmp(name, "tiny") || !strcmp(name, "demo")) {
        const int demo = !strcmp(name, "demo");
        c->n_layer = 6; c->n_embd = 256; c->n_vocab = 129280;
        c->n_head = 8; c->head_dim = 192; c->n_rot = 64;
        c->q_lora = 128; c->o_lora = 64; c->o_groups = 4;
        c->n_expert = 16; c->n_expert_used = 6; c->ff_exp = 256; c->n_hash_layer = 3;
        /* tiny: a short window and top-k so a 40-token test crosses both;
         * demo: the real window, a top-k that a chat turn does exceed. */
        c->swa = demo ? 128 : 32; c->idx_head = 4; c->idx_top_k = demo ? 64 : 8;
        snprintf(c->name, sizeof c->name, "ds4-synth-%s", name);
    } else {
        return ds4_errf(err, "--preset %s: unknown preset; expected full, tiny or demo", name);
    }
    return 0;
}

uint32_t ds4_synth_bytes_vocab_default(const char *preset) { return strcmp(preset, "full") ? 512 : 129280; }

int ds4_synth_set_layers(ds4_synth_opts *o, uint32_t n, ds4_err *err) {
    if (n == 0 || n > DS4_MAX_LAYERS)
        return ds4_errf(err, "--layers %u: expected 1..%d", n, DS4_MAX_LAYERS);
    ds4_config *c = &o->shape;
    if (c->n_hash_layer > n) c->n_hash_layer = n;
    c->n_layer = n;
    return 0;
}

uint32_t ds4_synth_routed_type(ds4_synth_recipe r, const char *name) {
    if (r == DS4_SYNTH_Q4) return DS4_TYPE_Q4_K;
    return strstr(name, "ffn_down_exps") ? DS4_TYPE_Q2_K : DS4_TYPE_IQ2_XXS;
}
